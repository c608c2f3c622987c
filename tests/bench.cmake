# axon-bench and the profiling scripts (issue 5), end to end.  Speed is never
# asserted: these check that every workload verifies its own result, that the
# outputs parse, that bad input is refused and that the scripts run here.
if(TARGET axon-bench)
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_FOUND)
    add_test(NAME axon_bench_quick_json
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/tools/test_axon_bench.py
                     $<TARGET_FILE:axon-bench> ${CMAKE_BINARY_DIR}/test-axon-bench)
    set_tests_properties(axon_bench_quick_json PROPERTIES LABELS tool TIMEOUT 180)
    # The cluster mode (issue 15): forks nodes, runs ucx_perftest and Erlang
    # beside them; checks the output is well-formed with nonzero figures.
    add_test(NAME axon_bench_cluster
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/tools/test_axon_bench_cluster.py
                     $<TARGET_FILE:axon-bench> ${CMAKE_BINARY_DIR}/test-axon-bench-cluster)
    set_tests_properties(axon_bench_cluster PROPERTIES LABELS "tool;bench" TIMEOUT 300)
  else()
    message(STATUS "axon_bench_quick_json: python3 not found, test not added")
  endif()
  add_test(NAME perf_scripts_help
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/tools/test_perf_scripts.sh
                   ${PROJECT_SOURCE_DIR}/perf/scripts $<TARGET_FILE:axon-bench> help)
  set_tests_properties(perf_scripts_help PROPERTIES LABELS tool TIMEOUT 60)
  add_test(NAME perf_stat_script
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/tools/test_perf_scripts.sh
                   ${PROJECT_SOURCE_DIR}/perf/scripts $<TARGET_FILE:axon-bench> stat)
  set_tests_properties(perf_stat_script PROPERTIES LABELS tool TIMEOUT 120 SKIP_RETURN_CODE 77)
  if(TARGET axon-msg-count)
    add_test(NAME instr_count_script
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/tools/test_perf_scripts.sh
                     ${PROJECT_SOURCE_DIR}/perf/scripts $<TARGET_FILE:axon-msg-count> instr)
    set_tests_properties(instr_count_script PROPERTIES LABELS tool TIMEOUT 300 SKIP_RETURN_CODE 77)
  endif()
  # Limits and peer of the cluster benchmarks (issue 15), in quick mode.
  foreach(mode ucx erlang)
    add_test(NAME perf_script_${mode}
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/tools/test_perf_scripts.sh
                     ${PROJECT_SOURCE_DIR}/perf/scripts $<TARGET_FILE:axon-bench> ${mode})
    set_tests_properties(perf_script_${mode} PROPERTIES LABELS tool TIMEOUT 180
                         SKIP_RETURN_CODE 77)
  endforeach()
endif()
