# axon-bench: the throughput suite (tools/bench/), with the machine limits
# from perf/limits.c measured in the same run.  Workloads use only the public
# API (axon/axon.h); linking the module libraries keeps the USDT probes and
# their semaphores inside the binary, so `perf probe -x build/bin/axon-bench`
# finds them.
if(TARGET axon_engine)
  file(GLOB AXON_BENCH_TOOL_SOURCES ${CMAKE_CURRENT_LIST_DIR}/bench/*.c)
  add_executable(axon-bench ${AXON_BENCH_TOOL_SOURCES} ${PROJECT_SOURCE_DIR}/perf/limits.c)
  target_include_directories(axon-bench PRIVATE ${CMAKE_CURRENT_LIST_DIR}/bench
                             ${PROJECT_SOURCE_DIR}/perf)
  target_link_libraries(axon-bench PRIVATE axon_engine axon_topology axon_alloc axon_io
                        Threads::Threads m)
  # the cluster mode runs perf/scripts/ucx-limits.sh and erlang-dist.sh from
  # the source tree (AXON_PERF_SCRIPTS in the environment overrides it)
  target_compile_definitions(axon-bench PRIVATE
                             AXON_PERF_SCRIPTS="${PROJECT_SOURCE_DIR}/perf/scripts")
else()
  message(STATUS "axon-bench: engine/ not built yet, skipping")
endif()
