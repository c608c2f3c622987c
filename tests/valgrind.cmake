# valgrind memcheck over the single-threaded module tests: leaks (definite,
# indirect) and invalid accesses fail the test.  The engine and io tests are
# not here: valgrind 3.19 hangs on a thread blocked in io_uring_enter
# (PLAYBOOK 7); they run under ASan+LSan and TSan instead (./run.sh test).
# test_arena is not here either: its fault-injection test checks VmSize,
# which valgrind's own mappings change.
find_program(AXON_VALGRIND valgrind)
if(AXON_VALGRIND AND NOT AXON_SANITIZE)
  foreach(t test_config test_plan test_cluster_plan test_topology test_timer test_kv_resp
            test_kv_store)
    if(TARGET ${t})
      add_test(NAME valgrind_${t}
               COMMAND ${AXON_VALGRIND} -q --error-exitcode=99 --leak-check=full
                       --suppressions=${CMAKE_CURRENT_SOURCE_DIR}/valgrind.supp
                       --errors-for-leak-kinds=definite,indirect $<TARGET_FILE:${t}>)
      set_tests_properties(valgrind_${t} PROPERTIES LABELS valgrind TIMEOUT 600)
    endif()
  endforeach()
endif()
