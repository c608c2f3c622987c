# pingpong: two actors on two workers bounce a counter (public API only).
# Linked against the shared libaxon, as an embedding program would be.
# Its ctest (example_pingpong, LABELS tool) is registered in tests/engine.cmake:
# add_test() here would be dropped, since this directory is processed before
# the root CMakeLists.txt calls enable_testing().
if(TARGET axon_engine)
  add_executable(pingpong ${CMAKE_CURRENT_LIST_DIR}/pingpong.c)
  target_link_libraries(pingpong PRIVATE axon)
endif()
