# axon-topo: print the topology and the placement plan (or check a config).
add_executable(axon-topo ${CMAKE_CURRENT_LIST_DIR}/axon-topo.c)
target_link_libraries(axon-topo PRIVATE axon_topology)
