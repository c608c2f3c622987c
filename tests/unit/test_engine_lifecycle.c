/* tests/unit/test_engine_lifecycle.c - engine create/start/stop/destroy, bad
 * configs, and the per-worker stats, through the public API only.
 *
 * Covered: 100 create/destroy cycles (started and not) with no fd growth
 * (/proc/self/fd) and no leak (run it in the ASan build: LSan reports at
 * exit); bad configs fail with -EINVAL and a readable ax_engine_last_error;
 * start twice is -EALREADY; destroy without stop stops; stats add up to
 * the messages the test made the actors send.
 *
 * Threading: behaviours record into a struct the test owns (atomics, or
 * plain fields read after ax_engine_wait's join); only the test thread
 * calls cmocka's assert_*.  A SIGALRM watchdog turns a hang into a failure.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define ENGINE_TEST_NAME "test_engine_lifecycle"
#define ENGINE_TEST_HANG "a stop or wait that never completes"
#include "engine_test.h"
#include "test_cpus.h"

#define SYNTH64 "pack:2 numa:2 l3:2 core:8 pu:2"

enum { T_GO = 1, T_LOCAL, T_REMOTE, T_REPLY, T_PING };

/* This machine: pinned workers when the process has the cores, else the
 * same count unpinned (test_cpus.h), so every case runs under taskset -c 0. */
static void cfg_real(ax_config_t *c, uint32_t workers)
{
    ax_config_init(c);
    test_cfg_workers(c, workers);
    c->arena_bytes = 8u << 20;
    c->max_actors = 4096;
}

/* ---- a small workload with known counts ------------------------------------------ */

typedef struct hdr {
    void *sh;
    uint64_t id;
} hdr_t;

typedef struct wl_sh {
    ax_ref_t a0, a1, b; /* a0, a1 on worker 0; b on worker 1 */
    uint32_t local_per_go, remote_per_go;
    _Atomic uint64_t sent_local, sent_remote, handled, send_fail, replies;
} wl_sh_t;

static void init_hdr(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    (void)ctx;
    if (arg && arg_len == sizeof(hdr_t))
        memcpy(state, arg, sizeof(hdr_t));
}

/* a0: per GO, local_per_go messages to a1 and remote_per_go to b; b replies
 * to each with one message back to a0 (cross-worker). */
static void wl_actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *h = state;
    wl_sh_t *sh = h->sh;
    if (!sh)
        return;
    atomic_fetch_add_explicit(&sh->handled, 1, memory_order_release);
    if (m->type == T_GO) {
        for (uint32_t i = 0; i < sh->local_per_go; i++) {
            if (ax_send_u64(ctx, sh->a1, T_LOCAL, i) == 0)
                atomic_fetch_add(&sh->sent_local, 1);
            else
                atomic_fetch_add(&sh->send_fail, 1);
        }
        for (uint32_t i = 0; i < sh->remote_per_go; i++) {
            if (ax_send_u64(ctx, sh->b, T_REMOTE, i) == 0)
                atomic_fetch_add(&sh->sent_remote, 1);
            else
                atomic_fetch_add(&sh->send_fail, 1);
        }
    } else if (m->type == T_REMOTE) {
        if (ax_send_u64(ctx, ax_sender(ctx), T_REPLY, 0) == 0)
            atomic_fetch_add(&sh->sent_remote, 1);
        else
            atomic_fetch_add(&sh->send_fail, 1);
    } else if (m->type == T_REPLY) {
        atomic_fetch_add_explicit(&sh->replies, 1, memory_order_release);
    }
}

static ax_ref_t spawn_on(ax_engine_t *e, uint32_t worker, wl_sh_t *sh, uint64_t id)
{
    hdr_t h = { sh, id };
    ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_WORKER, .worker = worker,
                          .init = init_hdr, .arg = &h, .arg_len = sizeof h };
    ax_ref_t r = AX_REF_NONE;
    int rc = ax_engine_spawn(e, wl_actor, sizeof(hdr_t), &o, &r);
    if (rc != 0)
        fail_msg("%s: ax_engine_spawn on worker %u returned %d", g_test, worker, rc);
    return r;
}

static ax_engine_t *make_engine(const ax_config_t *c)
{
    ax_engine_t *e = NULL;
    int rc = ax_engine_create(c, &e);
    if (rc != 0)
        fail_msg("%s: ax_engine_create returned %d: %s", g_test, rc, ax_engine_last_error());
    assert_non_null(e);
    return e;
}

/* One full cycle: create, 3 actors, start, GO x gos, wait, stop, destroy. */
static void one_cycle(uint32_t gos, uint32_t mode)
{
    static wl_sh_t sh;
    memset(&sh, 0, sizeof sh);
    sh.local_per_go = 3;
    sh.remote_per_go = 2;
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    sh.a0 = spawn_on(e, 0, &sh, 0);
    sh.a1 = spawn_on(e, 0, &sh, 1);
    sh.b = spawn_on(e, 1, &sh, 2);
    if (mode == 0) { /* never started */
        ax_engine_destroy(e);
        return;
    }
    assert_int_equal(ax_engine_start(e), 0);
    for (uint32_t i = 0; i < gos; i++) {
        uint64_t v = i;
        assert_int_equal(ax_engine_send(e, sh.a0, T_GO, &v, sizeof v), 0);
    }
    if (!wait_at_least(&sh.replies, (uint64_t)gos * sh.remote_per_go))
        fail_msg("%s: replies stuck at %llu of %u", g_test,
                 (unsigned long long)atomic_load(&sh.replies), gos * sh.remote_per_go);
    if (mode == 1) {
        ax_engine_stop_when_idle(e);
        assert_int_equal(ax_engine_wait(e), 0);
    } else if (mode == 2) {
        ax_engine_stop(e);
        assert_int_equal(ax_engine_wait(e), 0);
    } /* mode 3: destroy a running engine; it stops and waits itself */
    ax_engine_destroy(e);
}

static void create_and_destroy_100_engines_leaks_no_fd(void **state)
{
    (void)state;
    g_test = __func__;
    int before = count_fds();
    assert_true(before > 0);
    int after_first = -1;
    for (uint32_t i = 0; i < 100; i++) {
        one_cycle(10, i % 4);
        if (i == 0)
            after_first = count_fds();
    }
    int after = count_fds();
    if (after != before)
        fail_msg("%s: %d fds open before, %d after the first engine, %d after 100 engines: "
                 "ax_engine_destroy leaves file descriptors open", g_test, before, after_first, after);
}

static void create_and_destroy_100_unstarted_engines_with_default_config(void **state)
{
    (void)state;
    g_test = __func__;
    int before = count_fds();
    for (int i = 0; i < 100; i++) {
        ax_engine_t *e = NULL;
        int rc = ax_engine_create(NULL, &e); /* NULL: every default */
        if (rc != 0)
            fail_msg("%s: ax_engine_create(NULL) returned %d: %s", g_test, rc, ax_engine_last_error());
        assert_true(ax_engine_workers(e) >= 1);
        ax_engine_destroy(e);
    }
    assert_int_equal(count_fds(), before);
    ax_engine_destroy(NULL); /* does nothing */
}

/* ---- bad configs ------------------------------------------------------------------ */

static void expect_bad_config(const ax_config_t *c, const char *what, const char *mention)
{
    ax_engine_t *e = NULL;
    int fds = count_fds();
    int rc = ax_engine_create(c, &e);
    if (rc != -EINVAL) {
        if (rc == 0)
            ax_engine_destroy(e);
        fail_msg("%s: %s: ax_engine_create returned %d, expected -EINVAL", g_test, what, rc);
    }
    const char *msg = ax_engine_last_error();
    if (!msg || strlen(msg) < 16)
        fail_msg("%s: %s: ax_engine_last_error is '%s': expected a sentence saying what was wrong",
                 g_test, what, msg ? msg : "(null)");
    if (mention && !strstr(msg, mention))
        fail_msg("%s: %s: ax_engine_last_error '%s' does not name '%s'", g_test, what, msg, mention);
    assert_int_equal(count_fds(), fds); /* a failed call did nothing */
}

static void create_rejects_bad_configs_with_einval_and_a_readable_reason(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t c;

    cfg_real(&c, 2);
    c.ring_slots = 12;
    expect_bad_config(&c, "ring_slots = 12 (not a power of two)", "ring_slots");

    cfg_real(&c, 2);
    c.ring_slots = 4;
    expect_bad_config(&c, "ring_slots = 4 (below 8)", "ring_slots");

    cfg_real(&c, 2);
    c.ring_slots = 1u << 20;
    expect_bad_config(&c, "ring_slots = 1048576 (above 65536)", "ring_slots");

    cfg_real(&c, 2);
    c.arena_bytes = 4096;
    expect_bad_config(&c, "arena_bytes = 4096 (below 1 MiB)", "arena");

    cfg_real(&c, 2);
    c.batch = 100000;
    expect_bad_config(&c, "batch = 100000 (above 65536)", "batch");

    cfg_real(&c, 2);
    c.smt = 7;
    expect_bad_config(&c, "smt = 7", "smt");

    cfg_real(&c, 96); /* more than this machine's cores */
    c.oversubscribe = false;
    expect_bad_config(&c, "workers = 96 without oversubscribe", "oversubscribe");

    /* Above the engine's limits: refused by the config, not clamped in
     * silence (max_actors) or failed later blaming the arena (workers). */
    cfg_real(&c, AX_WORKERS_MAX + 1);
    c.oversubscribe = true;
    expect_bad_config(&c, "workers = 1025, oversubscribed", "workers.count = 1025: expected");
    cfg_real(&c, 2);
    c.max_actors = AX_ACTORS_MAX + 1;
    expect_bad_config(&c, "max_actors = 16 Mi + 1", "scheduler.max_actors = 16777217");

    cfg_real(&c, 2);
    snprintf(c.topology_synthetic, sizeof c.topology_synthetic, "%s", "bogus:3 nonsense");
    expect_bad_config(&c, "an unparsable synthetic topology", NULL);

    cfg_real(&c, 2);
    snprintf(c.topology_xml, sizeof c.topology_xml, "%s", "/nonexistent/axon-topology.xml");
    ax_engine_t *e = NULL;
    int rc = ax_engine_create(&c, &e);
    if (rc == 0) {
        ax_engine_destroy(e);
        fail_msg("%s: a missing topology XML file was accepted", g_test);
    }
    assert_true(strlen(ax_engine_last_error()) >= 16);

    cfg_real(&c, 2);
    assert_int_equal(ax_engine_create(&c, NULL), -EINVAL);
}

static void start_twice_returns_ealready(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    assert_int_equal(ax_engine_start(e), 0);
    assert_int_equal(ax_engine_start(e), -EALREADY);
    ax_engine_stop(e);
    assert_int_equal(ax_engine_wait(e), 0);
    ax_engine_destroy(e);
}

static void stop_before_start_then_destroy_does_not_hang(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_engine_stop(e);
    ax_engine_destroy(e);
}

static void plan_matches_the_config(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t c;
    cfg_real(&c, 2);
    c.ring_slots = 64;
    ax_engine_t *e = make_engine(&c);
    const ax_plan_t *p = ax_engine_plan(e);
    assert_non_null(p);
    assert_int_equal(p->nworkers, 2);
    assert_int_equal(ax_engine_workers(e), 2);
    assert_true(p->this_system);
    assert_int_equal(p->pinned, test_pinnable_workers() >= 2);
    assert_int_equal(p->ring_slots, 64);
    assert_int_equal(p->arena_bytes, c.arena_bytes);
    ax_engine_destroy(e);

    ax_config_init(&c);
    snprintf(c.topology_synthetic, sizeof c.topology_synthetic, "%s", SYNTH64);
    c.oversubscribe = true;
    c.arena_bytes = 2u << 20;
    c.ring_slots = 8;
    c.max_actors = 1024;
    e = make_engine(&c);
    p = ax_engine_plan(e);
    assert_int_equal(p->nworkers, 64);
    assert_false(p->pinned);
    assert_false(p->this_system);
    ax_engine_destroy(e);
}

/* ---- stats ------------------------------------------------------------------------ */

static void stats_add_up_to_the_messages_sent(void **state)
{
    (void)state;
    g_test = __func__;
    static wl_sh_t sh;
    memset(&sh, 0, sizeof sh);
    enum { GOS = 10 };
    sh.local_per_go = 5;
    sh.remote_per_go = 7;
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    sh.a0 = spawn_on(e, 0, &sh, 0);
    sh.a1 = spawn_on(e, 0, &sh, 1);
    sh.b = spawn_on(e, 1, &sh, 2);
    assert_int_equal(ax_engine_start(e), 0);
    for (uint32_t i = 0; i < GOS; i++) {
        uint64_t v = i;
        assert_int_equal(ax_engine_send(e, sh.a0, T_GO, &v, sizeof v), 0);
    }
    assert_true(wait_at_least(&sh.replies, GOS * 7));
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
    assert_int_equal(atomic_load(&sh.send_fail), 0);

    const uint64_t local = GOS * 5, remote_each_way = GOS * 7, external = GOS;
    assert_int_equal(atomic_load(&sh.sent_local), local);
    assert_int_equal(atomic_load(&sh.sent_remote), 2 * remote_each_way);
    /* every message a behaviour saw, counted by the test */
    assert_int_equal(atomic_load(&sh.handled), external + local + 2 * remote_each_way);

    ax_worker_stats_t w[2];
    uint64_t from[2][2];
    for (uint32_t i = 0; i < 2; i++)
        assert_int_equal(ax_engine_worker_stats(e, i, &w[i], from[i]), 0);
    ax_worker_stats_t bad;
    assert_int_equal(ax_engine_worker_stats(e, 2, &bad, NULL), -EINVAL);

    /* worker 0: a0 and a1; worker 1: b */
    assert_int_equal(w[0].msgs_external, external);
    assert_int_equal(w[0].msgs_local, local);
    assert_int_equal(w[0].msgs_remote, remote_each_way); /* the replies */
    assert_int_equal(w[1].msgs_external, 0);
    assert_int_equal(w[1].msgs_local, 0);
    assert_int_equal(w[1].msgs_remote, remote_each_way);
    assert_int_equal(w[0].msgs_sent_remote, remote_each_way);
    assert_int_equal(w[1].msgs_sent_remote, remote_each_way);
    assert_int_equal(from[0][1], remote_each_way);
    assert_int_equal(from[1][0], remote_each_way);
    for (uint32_t i = 0; i < 2; i++) {
        assert_int_equal(w[i].dead_letters, 0);
        assert_int_equal(w[i].dropped_at_stop, 0);
        assert_int_equal(w[i].ring_full, 0); /* 70 in flight at most, 256-slot rings */
        assert_true(w[i].arena_reserved_bytes > 0);
        assert_true(w[i].arena_used_bytes <= w[i].arena_reserved_bytes);
        assert_int_equal(w[i].arena_failed_allocs, 0);
    }
    assert_int_equal(w[0].actors_spawned, 2);
    assert_int_equal(w[1].actors_spawned, 1);
    /* turns: every worker handled messages, so it ran turns; a turn takes
     * at most `batch` (64 by default) from each of its sources (local FIFO,
     * the other worker's ring, the inbox), so the messages bound them from
     * below; the turns while idle between messages are counted too. */
    for (uint32_t i = 0; i < 2; i++) {
        uint64_t handled = w[i].msgs_local + w[i].msgs_remote + w[i].msgs_external;
        assert_true(w[i].turns >= 1);
        assert_true(w[i].turns * 3 * 64 >= handled);
    }

    /* handled == sent, and the engine-wide sum is the sum of the workers */
    ax_worker_stats_t sum;
    ax_engine_stats(e, &sum);
    assert_int_equal(sum.msgs_local + sum.msgs_remote + sum.msgs_external,
                     atomic_load(&sh.sent_local) + atomic_load(&sh.sent_remote) + external);
    assert_int_equal(sum.msgs_remote, sum.msgs_sent_remote);
    assert_int_equal(sum.msgs_local, w[0].msgs_local + w[1].msgs_local);
    assert_int_equal(sum.msgs_remote, w[0].msgs_remote + w[1].msgs_remote);
    assert_int_equal(sum.actors_spawned, 3);
    assert_int_equal(sum.turns, w[0].turns + w[1].turns);
    assert_int_equal(sum.arena_reserved_bytes, w[0].arena_reserved_bytes + w[1].arena_reserved_bytes);
    ax_engine_destroy(e);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, watchdog);
    /* AXON_TEST_FILTER / AXON_TEST_SKIP: cmocka patterns (* and ?) to run or
     * skip some tests, e.g. to get past one that aborts the binary. */
    if (getenv("AXON_TEST_FILTER"))
        cmocka_set_test_filter(getenv("AXON_TEST_FILTER"));
    if (getenv("AXON_TEST_SKIP"))
        cmocka_set_skip_filter(getenv("AXON_TEST_SKIP"));
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(create_and_destroy_100_engines_leaks_no_fd),
        T(create_and_destroy_100_unstarted_engines_with_default_config),
        T(create_rejects_bad_configs_with_einval_and_a_readable_reason),
        T(start_twice_returns_ealready),
        T(stop_before_start_then_destroy_does_not_hang),
        T(plan_matches_the_config),
        T(stats_add_up_to_the_messages_sent),
    };
#undef T
    return cmocka_run_group_tests_name("engine/lifecycle", tests, NULL, NULL);
}
