# supervisor: a small supervision tree that survives injected failures and
# prints its restarts (public API only, linked against the shared libaxon).
# Its ctest (example_supervisor) is registered in tests/lib.cmake.
if(TARGET axon_lib)
  add_executable(supervisor ${CMAKE_CURRENT_LIST_DIR}/supervisor.c)
  target_link_libraries(supervisor PRIVATE axon)
endif()
