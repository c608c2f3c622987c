# axon-kv: a sharded RESP2 (Redis protocol) server on the axon engine.
# axon_kvcore holds the parts that need no engine (parser, reply writer,
# store) so the unit tests and the fuzzer link them alone.
add_library(axon_kvcore STATIC
  ${PROJECT_SOURCE_DIR}/examples/kv/resp.c
  ${PROJECT_SOURCE_DIR}/examples/kv/store.c)
target_include_directories(axon_kvcore PUBLIC ${PROJECT_SOURCE_DIR}/examples/kv)

# The server: needs the engine (and through it io/, alloc/, topology/).
if(TARGET axon_engine)
  add_executable(axon-kv ${PROJECT_SOURCE_DIR}/examples/kv/kv.c)
  target_link_libraries(axon-kv PRIVATE axon_kvcore axon_engine)
endif()
