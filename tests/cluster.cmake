# Cluster tests (issue 15): several nodes (processes) on loopback.  Label
# "cluster"; the 2-node standalone mesh is also "unit" so CI runs it under
# ASan (UCX is not TSan-instrumented: see docs/cluster.md).
if(NOT TARGET axon_engine)
  return()
endif()
set(_cl_libs axon_engine)
set(_cl_defs)
if(TARGET axon_cluster_mpi)
  list(APPEND _cl_libs axon_cluster_mpi)
  set(_cl_defs AXON_HAVE_MPI=1)
endif()
axon_test(cluster_node SOURCES cluster/cluster_node.c LIBS ${_cl_libs} LABELS cluster TIMEOUT 180
          ARGS --fork 2 --seconds 120)
if(_cl_defs)
  target_compile_definitions(cluster_node PRIVATE ${_cl_defs})
endif()
set_tests_properties(cluster_node PROPERTIES LABELS "cluster;unit")
# The control plane alone against a scripted peer: two connections dialled
# at once must not cost a live node (no UCX: runs under ASan and TSan).
axon_test(test_ctl_dup SOURCES cluster/test_ctl_dup.c LIBS axon_cluster LABELS cluster unit
          TIMEOUT 60)
# A scripted node 0 joins a real node and forges records with no sender (a
# request, MONITOR, DEMONITOR): each refused on arrival (wire_errors), never
# delivered; then it leaves with LEAVE (a leave, not a node down).
axon_test(test_cluster_forge SOURCES cluster/test_cluster_forge.c LIBS axon_engine PkgConfig::UCX
          LABELS cluster unit TIMEOUT 120)
add_test(NAME cluster_standalone_3 COMMAND cluster_node --fork 3 --workers 2 --actors 2 --msgs 100 --seconds 120)
add_test(NAME cluster_kill9_3 COMMAND cluster_node --fork 3 --scenario kill --actors 2 --msgs 300 --seconds 120)
# Kill -9 and restart with the same node id: a new incarnation, stale
# references dead letters (dead_stale), new ones answered (docs/cluster.md).
add_test(NAME cluster_rejoin_2 COMMAND cluster_node --fork 2 --scenario rejoin --seconds 120)
# Node 1 stops cleanly (30 s heartbeat timeout): DOWN with AX_REASON_NODE_STOPPED
# at once through the LEAVE frame, no node down counted, then it rejoins.
add_test(NAME cluster_leave_2 COMMAND cluster_node --fork 2 --scenario leave --seconds 120)
# Node 1 killed (SIGKILL) at random points of its join, 40 times: node 0
# survives, ends with nobody up, joins <= downs <= starts.  Default
# transports (shared memory between nodes of one host); with UCX_TLS=tcp
# UCX 1.13 can abort node 0 (docs/cluster.md, Failure): not in CI.
# UCX alone, the same kills (manual: docs/cluster.md, Failure); not a test:
# with UCX 1.13 over TCP every mode aborts the survivor sooner or later
# (in seconds with `800 5 0 addr pub`).
add_executable(ucx_joinkill cluster/ucx_joinkill.c)
target_link_libraries(ucx_joinkill PRIVATE PkgConfig::UCX)
set_target_properties(ucx_joinkill PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME cluster_joinkill_2 COMMAND cluster_node --fork 2 --scenario joinkill --rounds 40 --kill-ms 1200 --seconds 60)
# Node 1 stopped (SIGSTOP) in the middle of traffic, over UCX TCP.  Over
# shared memory (the default between nodes on one host) about 1 run in 40
# under load freezes node 1 halfway through a send and wedges a survivor's
# UCX receive FIFO for every sender (docs/cluster.md, Failure, "A node
# frozen in a shared-memory send"): an open defect of issue 15, reproduced
# by running this command without UCX_TLS; a stalled run fails 30 s after
# the last arrival with "stalled".  The test pins TCP so that CI checks what
# the transport-independent detection and survival do, and stays green.
add_test(NAME cluster_stopped_node_3 COMMAND cluster_node --fork 3 --scenario stop --actors 2 --msgs 300 --seconds 120)
set_tests_properties(cluster_stopped_node_3 PROPERTIES ENVIRONMENT "UCX_TLS=tcp")
add_test(NAME cluster_garbage COMMAND cluster_node --fork 2 --garbage --actors 2 --msgs 100 --seconds 120)
# cluster.progress = spin: no UCX wakeup, so UCX_TLS=shm works (with wakeup
# UCX 1.13 has no shared-memory transport to offer; docs/cluster.md
# "Progress"): the mesh, blobs to 4 MiB (rendezvous) included, over shm.
add_test(NAME cluster_spin_shm_2 COMMAND cluster_node --fork 2 --progress spin --actors 2 --msgs 100 --seconds 120)
set_tests_properties(cluster_spin_shm_2 PROPERTIES ENVIRONMENT "UCX_TLS=shm")
# Four single-worker nodes not bound to CPUs (workers.unpinned), as
# axon-bench's big/4n runs them: the mesh (order, exactly-once, blobs to
# 4 MiB) while idle workers yield before parking (cluster.yield_us); fails
# if they never yield.
add_test(NAME cluster_unpinned_4 COMMAND cluster_node --fork 4 --workers 1 --unpinned --actors 4 --msgs 200 --seconds 120)
add_test(NAME cluster_refuse_cookie COMMAND cluster_node --fork 2 --scenario refuse --cookie1 wrong)
add_test(NAME cluster_refuse_version COMMAND cluster_node --fork 2 --scenario refuse --wire1 99)
set_tests_properties(cluster_standalone_3 cluster_kill9_3 cluster_rejoin_2 cluster_leave_2 cluster_joinkill_2
                     cluster_stopped_node_3 cluster_garbage
                     cluster_spin_shm_2 cluster_unpinned_4
                     cluster_refuse_cookie cluster_refuse_version
                     PROPERTIES LABELS cluster TIMEOUT 180)
if(TARGET axon_cluster_mpi)
  foreach(n 2 4)
    add_test(NAME cluster_mpirun_${n}
             COMMAND ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe -n ${n}
                     $<TARGET_FILE:cluster_node> --mpi --workers 2 --actors 2 --msgs 100 --seconds 120)
    set_tests_properties(cluster_mpirun_${n} PROPERTIES LABELS cluster TIMEOUT 240
                         ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
  endforeach()
endif()
# Two nodes in two network namespaces joined by a veth pair, UCX over TCP on
# the veth only (clusteredge's tests/cluster/netns.sh; skipped, 77, without
# root or `ip netns`).  The sleeps: UCX refuses a veth whose link is not up yet.
add_test(NAME cluster_netns_2
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cluster/netns.sh run --timeout 150
                 --b "sleep 1; UCX_TLS=tcp UCX_NET_DEVICES=\$AXON_NETNS_IF $<TARGET_FILE:cluster_node> --node 0 --nodes 2 --listen \$AXON_NETNS_B:7400 --actors 2 --msgs 100 --seconds 120"
                 --a "sleep 1.5; UCX_TLS=tcp UCX_NET_DEVICES=\$AXON_NETNS_IF $<TARGET_FILE:cluster_node> --node 1 --nodes 2 --listen \$AXON_NETNS_A:7401 --peers \$AXON_NETNS_B:7400 --actors 2 --msgs 100 --seconds 120")
set_tests_properties(cluster_netns_2 PROPERTIES LABELS cluster TIMEOUT 200 SKIP_RETURN_CODE 77)
# Sends from outside threads, requests (replies, errors, timeouts, DOWN,
# node death) and sponsors across two nodes (tests/cluster/cluster_req.c).
axon_test(cluster_req SOURCES cluster/cluster_req.c LIBS axon_engine LABELS cluster TIMEOUT 300
          ARGS --seconds 120)
set_tests_properties(cluster_req PROPERTIES LABELS "cluster;unit")
