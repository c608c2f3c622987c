# alloc module tests.  test_arena wraps mbind for fault injection (mbind is
# called by arena.c and by the jemalloc extent hooks in large.c).
axon_test(test_arena SOURCES unit/test_arena.c LIBS axon_alloc LABELS unit TIMEOUT 60
          WRAP mbind)
axon_test(stress_arena SOURCES stress/stress_arena.c LIBS axon_alloc LABELS stress TIMEOUT 300
          ARGS --seconds 5)
