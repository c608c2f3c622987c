# io module tests: the ring, wakeups, TCP and files (test_io), timers
# (test_timer), and the wakeup ping-pong stress (a lost wake hangs it; a
# watchdog alarm turns the hang into a failure).
axon_test(test_io SOURCES unit/test_io.c LIBS axon_io LABELS unit TIMEOUT 60)
axon_test(test_timer SOURCES unit/test_timer.c LIBS axon_io LABELS unit TIMEOUT 30)
axon_test(stress_io_wake SOURCES stress/stress_io_wake.c LIBS axon_io LABELS stress TIMEOUT 300
          ARGS --wakes 100000)
