# ring: 503 actors pass a token around (the thread-ring), public API only,
# linked against the shared libaxon.  Its ctest (example_ring, LABELS tool)
# is registered in tests/engine.cmake (see examples/pingpong.cmake for why).
if(TARGET axon_engine)
  add_executable(ring ${CMAKE_CURRENT_LIST_DIR}/ring.c)
  target_link_libraries(ring PRIVATE axon)
endif()
