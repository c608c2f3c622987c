# axon-kv: a sharded RESP2 (Redis protocol) server on the axon engine.
# axon_kvcore holds the parts that need no engine (parser, reply writer,
# store) so the unit tests and the fuzzer link them alone.
add_library(axon_kvcore STATIC
  ${PROJECT_SOURCE_DIR}/examples/kv/resp.c
  ${PROJECT_SOURCE_DIR}/examples/kv/store.c)
target_include_directories(axon_kvcore PUBLIC ${PROJECT_SOURCE_DIR}/examples/kv)
