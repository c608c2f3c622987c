# containers: a memory price table and an LMDB ledger shared by actors
# (lib/container.c, public API only), linked against the shared libaxon.
# ctest: tests/pool.cmake.
if(TARGET axon_lib)
  add_executable(containers ${CMAKE_CURRENT_LIST_DIR}/containers.c)
  target_link_libraries(containers PRIVATE axon)
endif()
