# axon-kv tests: parser and store units (no engine), the fuzz run, and the
# integration tests that drive build/bin/axon-kv with the real redis tools.
axon_test(test_kv_resp SOURCES unit/test_kv_resp.c LIBS axon_kvcore LABELS unit TIMEOUT 60)
axon_test(test_kv_store SOURCES unit/test_kv_store.c LIBS axon_kvcore LABELS unit TIMEOUT 60)

# libFuzzer run (clang): builds its own binary, bounded to 15 s.
add_test(NAME fuzz_resp COMMAND sh ${PROJECT_SOURCE_DIR}/tests/fuzz/run_fuzz_resp.sh ${CMAKE_BINARY_DIR} 15)
set_tests_properties(fuzz_resp PROPERTIES LABELS fuzz TIMEOUT 120)

# Integration: the real redis-cli / redis-benchmark against build/bin/axon-kv,
# and 1,000 hostile connections next to a well-behaved one.
if(TARGET axon-kv)
  add_test(NAME kv_cli COMMAND bash ${PROJECT_SOURCE_DIR}/tests/kv/test_kv_cli.sh ${CMAKE_BINARY_DIR})
  add_test(NAME kv_robust COMMAND bash ${PROJECT_SOURCE_DIR}/tests/kv/test_kv_robust.sh ${CMAKE_BINARY_DIR})
  # Random commands to axon-kv and to a redis-server it starts on a free
  # loopback port; every reply compared (seed printed, rerun with it).
  add_test(NAME kv_diff COMMAND bash ${PROJECT_SOURCE_DIR}/tests/kv/test_kv_diff.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(kv_cli kv_robust kv_diff PROPERTIES LABELS tool TIMEOUT 240)
  # SIGTERM with sends in flight to a client that does not read: labelled
  # stress so that CI runs it in the ASan and TSan builds (the leak check).
  add_test(NAME kv_term COMMAND bash ${PROJECT_SOURCE_DIR}/tests/kv/test_kv_term.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(kv_term PROPERTIES LABELS stress TIMEOUT 120)
endif()
