/* tests/unit/engine_test.h - what the engine's cmocka tests share: the name
 * of the running test, a SIGALRM watchdog that turns a hang into a failure,
 * per-test setup/teardown that arm and disarm it, and a bounded wait on a
 * counter the actors bump.
 *
 * Include after cmocka.h, with ENGINE_TEST_NAME (the binary's name) and
 * ENGINE_TEST_HANG (what a hang there most likely means) defined.  main()
 * installs the watchdog with signal(SIGALRM, watchdog) and wraps each test
 * with cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown).
 * Header-only: every test file gets its own static copies. */
#ifndef AXON_TESTS_ENGINE_TEST_H
#define AXON_TESTS_ENGINE_TEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "test_util.h"

#define WAIT_S 60u     /* how long a wait may take before it counts as a hang */
#define WATCHDOG_S 200 /* whole-test bound; under ctest's TIMEOUT */

static const char *volatile g_test = "(none)";

static void watchdog(int sig)
{
    (void)sig;
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     ENGINE_TEST_NAME ": watchdog: test '%s' still running after %d s: "
                     ENGINE_TEST_HANG "\n", g_test, WATCHDOG_S);
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n);
        (void)w;
    }
    _exit(3);
}

static int test_setup(void **state)
{
    (void)state;
    alarm(WATCHDOG_S);
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}

/* Poll until *v >= want; false after WAIT_S seconds (the caller fails the
 * test with the value found). */
static bool wait_at_least(_Atomic uint64_t *v, uint64_t want)
{
    uint64_t end = now_ns() + WAIT_S * 1000000000ull;
    while (atomic_load_explicit(v, memory_order_acquire) < want) {
        if (now_ns() > end)
            return false;
        sleep_us(200);
    }
    return true;
}

/* Fail the test, naming the counter and its value, unless it reaches want
 * within WAIT_S seconds. */
#define WAIT_FOR(counter, want)                                                             \
    do {                                                                                    \
        if (!wait_at_least(&(counter), (want)))                                             \
            fail_msg("%s: waited %u s for %s to reach %llu, it is %llu", g_test, WAIT_S,    \
                     #counter, (unsigned long long)(want),                                  \
                     (unsigned long long)atomic_load(&(counter)));                          \
    } while (0)

#endif
