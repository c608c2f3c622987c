# io module tests: the ring, wakeups, TCP and files (test_io), timers
# (test_timer), and the wakeup ping-pong stress (a lost wake hangs it; a
# watchdog alarm turns the hang into a failure).
axon_test(test_io SOURCES unit/test_io.c LIBS axon_io LABELS unit TIMEOUT 60)
axon_test(test_timer SOURCES unit/test_timer.c LIBS axon_io LABELS unit TIMEOUT 30)
axon_test(stress_io_wake SOURCES stress/stress_io_wake.c LIBS axon_io LABELS stress TIMEOUT 300
          ARGS --wakes 100000)
# The actor-facing API (axon/io.h) on a running engine.
if(TARGET axon_engine)
  axon_test(test_io_api SOURCES unit/test_io_api.c LIBS axon_engine LABELS unit TIMEOUT 60)
  # Sizes, counts and times at the edges of their types (issue 10, items 4, 5).
  axon_test(test_api_edges SOURCES unit/test_api_edges.c LIBS axon_engine LABELS unit TIMEOUT 60)
endif()
# examples/echo: 10 MiB through 4 loopback connections, every byte checked in
# order, then engine shutdown with an fd-count check (axon-echo --selftest).
if(TARGET axon-echo)
  add_test(NAME echo_10mb COMMAND axon-echo --selftest --mb 10 --conns 4)
  set_tests_properties(echo_10mb PROPERTIES LABELS tool TIMEOUT 120)
endif()
