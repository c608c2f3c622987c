/* tests/unit/test_engine_hooks.c - worker hooks (ax_engine_add_worker_hooks):
 * every worker thread runs on_start once before any behaviour and on_stop
 * once after the last fini, on_turn between turns, on_park/on_unpark in
 * pairs around each sleep and never while a behaviour runs; sets run in
 * order; the bad calls are refused.  2 workers, oversubscribe allowed. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "axon/axon.h"

#define ENGINE_TEST_NAME "test_engine_hooks"
#define ENGINE_TEST_HANG "a worker never started, parked or stopped"
#include "unit/engine_test.h"

typedef struct counts {
    _Atomic uint64_t start, stop, turn, park, unpark, bad, order;
    _Atomic uint64_t in_behaviour; /* a behaviour is running (per engine, 1 actor) */
    _Atomic uint64_t msgs;
    _Atomic uint32_t parked[2];   /* per worker: between on_park and on_unpark */
    _Atomic uint32_t started[2];
} counts_t;

static counts_t g_c;

static void h_start(void *u, uint32_t w)
{
    if (u != &g_c || w >= 2 || atomic_fetch_add(&g_c.started[w], 1) != 0)
        atomic_fetch_add(&g_c.bad, 1);
    atomic_fetch_add(&g_c.start, 1);
}
static void h_stop(void *u, uint32_t w)
{
    (void)u;
    if (w >= 2 || atomic_load(&g_c.started[w]) != 1 || atomic_load(&g_c.parked[w]))
        atomic_fetch_add(&g_c.bad, 1);
    atomic_fetch_add(&g_c.stop, 1);
}
static void h_turn(void *u, uint32_t w)
{
    (void)u;
    if (w >= 2 || atomic_load(&g_c.in_behaviour) || atomic_load(&g_c.parked[w]))
        atomic_fetch_add(&g_c.bad, 1);
    atomic_fetch_add(&g_c.turn, 1);
}
static void h_park(void *u, uint32_t w)
{
    (void)u;
    if (w >= 2 || atomic_fetch_add(&g_c.parked[w], 1) != 0)
        atomic_fetch_add(&g_c.bad, 1);
    atomic_fetch_add(&g_c.park, 1);
}
static void h_unpark(void *u, uint32_t w)
{
    (void)u;
    if (w >= 2 || atomic_fetch_sub(&g_c.parked[w], 1) != 1)
        atomic_fetch_add(&g_c.bad, 1);
    atomic_fetch_add(&g_c.unpark, 1);
}
/* A second set: must run after the first for the same event. */
static void h2_start(void *u, uint32_t w)
{
    (void)u;
    if (w >= 2 || atomic_load(&g_c.started[w]) != 1)
        atomic_fetch_add(&g_c.bad, 1);
    atomic_fetch_add(&g_c.order, 1);
}

static void actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    (void)ctx, (void)st, (void)m;
    atomic_fetch_add(&g_c.in_behaviour, 1);
    if (atomic_load(&g_c.start) != 2 && atomic_load(&g_c.started[ax_worker_id(ctx)]) != 1)
        atomic_fetch_add(&g_c.bad, 1); /* a behaviour before its worker's on_start */
    atomic_fetch_sub(&g_c.in_behaviour, 1);
    atomic_fetch_add_explicit(&g_c.msgs, 1, memory_order_release);
}

static void hooks_run_on_every_worker_in_pairs(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_c, 0, sizeof g_c);
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_config_init(&cfg);
    cfg.workers = 2;
    cfg.oversubscribe = true;
    cfg.spin_us = -1; /* park at once when idle */
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    ax_worker_hooks_t h = {.size = sizeof h, .user = &g_c, .on_start = h_start, .on_stop = h_stop,
                           .on_turn = h_turn, .on_park = h_park, .on_unpark = h_unpark};
    ax_worker_hooks_t h2 = {.size = sizeof h2, .on_start = h2_start};
    assert_int_equal(ax_engine_add_worker_hooks(eng, NULL), -EINVAL);
    h.size = 8;
    assert_int_equal(ax_engine_add_worker_hooks(eng, &h), -EINVAL);
    h.size = sizeof h;
    assert_int_equal(ax_engine_add_worker_hooks(eng, &h), 0);
    assert_int_equal(ax_engine_add_worker_hooks(eng, &h2), 0);
    ax_ref_t a;
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 1};
    assert_int_equal(ax_engine_spawn(eng, actor, 0, &o, &a), 0);
    assert_false(ax_engine_running(eng));
    assert_int_equal(ax_engine_start(eng), 0);
    assert_true(ax_engine_running(eng));
    assert_int_equal(ax_engine_add_worker_hooks(eng, &h2), -EALREADY);
    for (int i = 0; i < 50; i++) { /* each send wakes a parked worker */
        assert_int_equal(ax_engine_send(eng, a, 1, NULL, 0), 0);
        sleep_us(2000);
    }
    assert_true(wait_at_least(&g_c.msgs, 50));
    ax_engine_stop(eng);
    assert_false(ax_engine_running(eng));
    ax_engine_wait(eng);
    assert_int_equal(atomic_load(&g_c.bad), 0);
    assert_int_equal(atomic_load(&g_c.start), 2);
    assert_int_equal(atomic_load(&g_c.order), 2);
    assert_int_equal(atomic_load(&g_c.stop), 2);
    assert_true(atomic_load(&g_c.turn) >= 50);
    assert_true(atomic_load(&g_c.park) >= 1);
    assert_int_equal(atomic_load(&g_c.park), atomic_load(&g_c.unpark));
    ax_engine_destroy(eng);
}

static void at_most_four_hook_sets(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_config_init(&cfg);
    cfg.workers = 1;
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    ax_worker_hooks_t h = {.size = sizeof h};
    for (uint32_t i = 0; i < AX_WORKER_HOOKS_MAX; i++)
        assert_int_equal(ax_engine_add_worker_hooks(eng, &h), 0);
    assert_int_equal(ax_engine_add_worker_hooks(eng, &h), -ENOSPC);
    assert_int_equal(ax_engine_start(eng), 0); /* NULL members are skipped */
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
}

int main(void)
{
    signal(SIGALRM, watchdog);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hooks_run_on_every_worker_in_pairs, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(at_most_four_hook_sets, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("engine/hooks", tests, NULL, NULL);
}
