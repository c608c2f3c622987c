# Work pools (lib/pool.c, issue 13): unit tests of every completion kind and
# a seeded stress of submit/cancel/complete from behaviours and outside
# threads (exactly-once).  Public API only; linked with axon_lib.
if(NOT TARGET axon_lib)
  return()
endif()
axon_test(test_pool SOURCES unit/test_pool.c LIBS axon_lib LABELS unit TIMEOUT 240)
axon_test(stress_pool SOURCES stress/stress_pool.c LIBS axon_lib LABELS stress TIMEOUT 300
          ARGS --seconds 10)

# Shared containers (lib/container.c, issue 13): names, both kinds from
# behaviours and outside threads, LMDB acknowledgements, the kill -9 crash
# test, open/close churn (unit); readers and writers on every worker with
# invariants and a reclaim stress (stress).
axon_test(test_container SOURCES unit/test_container.c LIBS axon_lib PkgConfig::LMDB
          LABELS unit TIMEOUT 240)
# The memory kind when its index cannot grow (aligned_alloc refused on the
# test thread): -ENOMEM from the put or from a one-put section's leave,
# nothing changed, and the same put goes in once memory is back.
axon_test(test_container_nomem SOURCES unit/test_container_nomem.c LIBS axon_lib
          WRAP aligned_alloc)
axon_test(stress_container SOURCES stress/stress_container.c LIBS axon_lib LABELS stress
          TIMEOUT 300 ARGS --seconds 10)

# The examples (examples/pool.c, examples/containers.c); axon_example_test
# is defined in tests/engine.cmake.
if(TARGET pool)
  axon_example_test(example_pool pool "^pool: output matches the serial blur" 640 480 8)
endif()
if(TARGET containers)
  axon_example_test(example_containers containers "ledger matches")
endif()

# The engine's worker hooks, which lib/container.c registers liburcu with
# (kept here, beside their user, so engine.cmake stays untouched).
axon_test(test_engine_hooks SOURCES unit/test_engine_hooks.c LIBS axon_engine LABELS unit)
