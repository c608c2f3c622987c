# topology: discovery, planner, config parser, axon-topo and the config fuzzer.
axon_test(test_topology SOURCES unit/test_topology.c LIBS axon_topology LABELS unit TIMEOUT 30)
axon_test(test_plan SOURCES unit/test_plan.c LIBS axon_topology LABELS unit TIMEOUT 30)
axon_test(test_config SOURCES unit/test_config.c LIBS axon_topology LABELS unit TIMEOUT 30)
axon_test(test_cluster_plan SOURCES unit/test_cluster_plan.c
          LIBS axon_topology PkgConfig::HWLOC LABELS unit TIMEOUT 30)
# Every allocation of the hostfile parser and the cluster planner failed in
# turn (-Wl,--wrap: the library carries no hook).
axon_test(test_cluster_plan_faults SOURCES unit/test_cluster_plan_faults.c LIBS axon_topology
          LABELS unit TIMEOUT 120 WRAP malloc calloc realloc free)

# axon-topo end to end: JSON parses, --check on good and bad files, bad flags.
if(TARGET axon-topo)
  add_test(NAME axon_topo_tool
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/tools/test_axon_topo.sh
                   $<TARGET_FILE:axon-topo> ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_config)
  set_tests_properties(axon_topo_tool PROPERTIES LABELS tool TIMEOUT 60)
endif()

# libFuzzer run of the config parser: builds its own target with clang-14
# (independent of this build's compiler), bounded to about 15 s.
add_test(NAME fuzz_config
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzz.sh ${CMAKE_BINARY_DIR}/fuzz
                 ${PROJECT_SOURCE_DIR} 15)
set_tests_properties(fuzz_config PROPERTIES LABELS fuzz TIMEOUT 180)

# libFuzzer run of the hostfile parser (cluster plans), about 10 s.
add_test(NAME fuzz_hostfile
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzz_hostfile.sh ${CMAKE_BINARY_DIR}/fuzz
                 ${PROJECT_SOURCE_DIR} 10)
set_tests_properties(fuzz_hostfile PROPERTIES LABELS fuzz TIMEOUT 180)
