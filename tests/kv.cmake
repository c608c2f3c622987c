# axon-kv tests: parser and store units (no engine), the fuzz run, and the
# integration tests that drive build/bin/axon-kv with the real redis tools.
axon_test(test_kv_resp SOURCES unit/test_kv_resp.c LIBS axon_kvcore LABELS unit TIMEOUT 60)
axon_test(test_kv_store SOURCES unit/test_kv_store.c LIBS axon_kvcore LABELS unit TIMEOUT 60)

# libFuzzer run (clang): builds its own binary, bounded to 15 s.
add_test(NAME fuzz_resp COMMAND sh ${PROJECT_SOURCE_DIR}/tests/fuzz/run_fuzz_resp.sh ${CMAKE_BINARY_DIR} 15)
set_tests_properties(fuzz_resp PROPERTIES LABELS fuzz TIMEOUT 120)
