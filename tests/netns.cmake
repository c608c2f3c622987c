# Two network namespaces joined by a veth pair (tests/cluster/netns.sh), the
# harness the cluster tests use to run two nodes as two hosts over UCX TCP
# (issue 15).  Needs root and `ip netns`; skipped (77) otherwise.
add_test(NAME netns_selftest COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cluster/netns.sh selftest)
add_test(NAME netns_cleanup COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cluster/test_netns.sh)
set_tests_properties(netns_selftest netns_cleanup PROPERTIES
                     LABELS cluster TIMEOUT 120 SKIP_RETURN_CODE 77)
