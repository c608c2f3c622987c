# axon-kv tests: parser and store units (no engine), the fuzz run, and the
# integration tests that drive build/bin/axon-kv with the real redis tools.
axon_test(test_kv_resp SOURCES unit/test_kv_resp.c LIBS axon_kvcore LABELS unit TIMEOUT 60)
axon_test(test_kv_store SOURCES unit/test_kv_store.c LIBS axon_kvcore LABELS unit TIMEOUT 60)
