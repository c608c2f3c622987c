/* tests/unit/test_engine_stop.c - ax_engine_stop takes effect even when the
 * actors never run out of work (every turn busy), and what is left is
 * counted, not lost.  A hang is caught by a timed join, not by ctest's
 * timeout, so the failure says what happened. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "axon/axon.h"
#include "test_util.h"
#include "test_cpus.h"

static _Atomic uint64_t g_bounces; /* messages handled, for the test thread */

/* Each message makes another: the exchange never ends by itself. */
static void bouncer(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    atomic_fetch_add_explicit(&g_bounces, 1, memory_order_relaxed);
    ax_ref_t peer = *(ax_ref_t *)state;
    if (m->type == 2) { /* introduction: learn the peer, start bouncing */
        *(ax_ref_t *)state = m->payload.u64[0];
        peer = m->payload.u64[0];
    }
    ax_send_u64(ctx, peer, 1, m->payload.u64[0] + 1);
}

typedef struct { ax_engine_t *eng; _Atomic int done; } waiter_t;

static void *wait_engine(void *arg)
{
    waiter_t *w = arg;
    ax_engine_wait(w->eng);
    atomic_store(&w->done, 1);
    return NULL;
}

static void run(uint32_t workers, uint32_t where_b)
{
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_ref_t a, b;
    ax_config_init(&cfg);
    test_cfg_workers(&cfg, workers); /* unpinned when the process has fewer cores */
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    ax_spawn_opts_t oa = {.where = AX_ON_WORKER, .worker = 0};
    ax_spawn_opts_t ob = {.where = AX_ON_WORKER, .worker = where_b};
    assert_int_equal(ax_engine_spawn(eng, bouncer, sizeof(ax_ref_t), &oa, &a), 0);
    assert_int_equal(ax_engine_spawn(eng, bouncer, sizeof(ax_ref_t), &ob, &b), 0);
    assert_int_equal(ax_engine_send(eng, a, 2, &b, sizeof b), 0);
    assert_int_equal(ax_engine_send(eng, b, 2, &a, sizeof a), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    /* Let them get going: until 1000 messages were handled, not for a fixed
     * time (two unpinned workers sharing one CPU under TSan handle fewer
     * than 1000 in 50 ms).  Counted by the actors: the engine's stats are
     * read live, one counter at a time, so their sum is no snapshot. */
    atomic_store(&g_bounces, 0);
    uint64_t t_go = now_ns();
    while (atomic_load_explicit(&g_bounces, memory_order_relaxed) <= 1000 &&
           now_ns() - t_go < 10ull * 1000000000ull)
        sleep_us(1000);
    ax_engine_stop(eng);
    waiter_t wt = {.eng = eng};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_engine, &wt), 0);
    uint64_t t0 = now_ns();
    while (!atomic_load(&wt.done) && now_ns() - t0 < 10ull * 1000000000ull)
        sleep_us(1000);
    if (!atomic_load(&wt.done))
        fail_msg("ax_engine_stop did not take effect within 10 s while the actors kept "
                 "each other busy (%u workers)", workers);
    pthread_join(t, NULL);
    ax_worker_stats_t s;
    ax_engine_stats(eng, &s);
    /* Nothing silent: every message was handled or dropped at stop. */
    assert_true(s.msgs_local + s.msgs_remote + s.msgs_external > 1000);
    assert_true(s.dropped_at_stop >= 1);
    ax_engine_destroy(eng);
}

static void stop_takes_effect_while_actors_on_one_worker_stay_busy(void **state)
{
    (void)state;
    run(1, 0);
}

static void stop_takes_effect_while_actors_on_two_workers_stay_busy(void **state)
{
    (void)state;
    run(2, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_takes_effect_while_actors_on_one_worker_stay_busy),
        cmocka_unit_test(stop_takes_effect_while_actors_on_two_workers_stay_busy),
    };
    return cmocka_run_group_tests_name("engine/stop", tests, NULL, NULL);
}
