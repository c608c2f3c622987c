# pool: a data-parallel image blur on a work pool (lib/pool.c, public API
# only), linked against the shared libaxon.  ctest: tests/pool.cmake.
if(TARGET axon_lib)
  add_executable(pool ${CMAKE_CURRENT_LIST_DIR}/pool.c)
  target_link_libraries(pool PRIVATE axon)
endif()
