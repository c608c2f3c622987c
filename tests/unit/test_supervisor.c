/* tests/unit/test_supervisor.c - supervisors (lib/supervisor.c): each
 * strategy, restart policies, intensity escalation, restart in place with
 * the queued messages delivered or dropped, trees with reverse-order
 * shutdown and every fini once.
 *
 * Children record what happens to them (init, fini, pings, in order) in
 * globals indexed by a per-test child id passed as their init argument.
 * A watcher actor spawns the root supervisor (monitoring it) and records
 * its DOWN.  One worker unless a test says otherwise (they run under
 * `taskset -c 0`); the cross-worker case uses unpinned synthetic workers.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "axon/axon.h"
#include "axon/failure.h"
#include "axon/supervisor.h"

#define ENGINE_TEST_NAME "test_supervisor"
#define ENGINE_TEST_HANG "a DOWN that never came, or a supervisor stuck in a stop sequence"
#include "unit/engine_test.h"

enum { T_FAIL = 1, T_STOP, T_PING, T_GO, T_BURST };

#define MAXC 16
#define LOGN 256

static _Atomic uint64_t g_inits[MAXC], g_finis[MAXC], g_pings[MAXC], g_ref[MAXC];
static _Atomic uint64_t g_init_n, g_fini_n;
static _Atomic uint32_t g_init_log[LOGN], g_fini_log[LOGN];
static _Atomic uint64_t g_ev[4];
static _Atomic uint64_t g_sup_downs, g_sup_ref;
static ax_reason_t g_sup_reason; /* written before g_sup_downs is bumped (seq_cst) */

static void reset(void)
{
    for (int i = 0; i < MAXC; i++) {
        atomic_store(&g_inits[i], 0);
        atomic_store(&g_finis[i], 0);
        atomic_store(&g_pings[i], 0);
        atomic_store(&g_ref[i], 0);
    }
    for (int i = 0; i < LOGN; i++) {
        atomic_store(&g_init_log[i], 0);
        atomic_store(&g_fini_log[i], 0);
    }
    atomic_store(&g_init_n, 0);
    atomic_store(&g_fini_n, 0);
    for (int i = 0; i < 4; i++)
        atomic_store(&g_ev[i], 0);
    atomic_store(&g_sup_downs, 0);
    atomic_store(&g_sup_ref, 0);
    memset(&g_sup_reason, 0, sizeof g_sup_reason);
}

/* ---- the children -------------------------------------------------------------- */

typedef struct kid {
    uint32_t id;
} kid_t;

static void kid_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    kid_t *k = state;
    assert_int_equal(len, sizeof k->id);
    memcpy(&k->id, arg, sizeof k->id);
    atomic_store(&g_ref[k->id], ax_self(ctx));
    uint64_t n = atomic_fetch_add(&g_init_n, 1);
    if (n < LOGN)
        atomic_store(&g_init_log[n], k->id);
    atomic_fetch_add(&g_inits[k->id], 1);
}

static void kid_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    kid_t *k = state;
    uint64_t n = atomic_fetch_add(&g_fini_n, 1);
    if (n < LOGN)
        atomic_store(&g_fini_log[n], k->id);
    atomic_fetch_add(&g_finis[k->id], 1);
}

static void kid(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    kid_t *k = state;
    switch (m->type) {
    case T_FAIL:
        ax_fail(ctx, 7, "asked to");
        break;
    case T_STOP:
        ax_stop_self(ctx);
        break;
    case T_PING:
        atomic_fetch_add(&g_pings[k->id], 1);
        break;
    default:
        break;
    }
}

static const uint32_t IDS[MAXC] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

#define KID(idv, pol)                                                                       \
    { .restart = (pol), .name = "kid" #idv, .fn = kid, .state_size = sizeof(kid_t),         \
      .init = kid_init, .fini = kid_fini, .arg = &IDS[idv], .arg_len = sizeof(uint32_t) }

static void on_event(void *user, const ax_sup_event_t *ev)
{
    (void)user;
    atomic_fetch_add(&g_ev[ev->kind], 1);
}

/* ---- watcher and driver ------------------------------------------------------------ */

typedef struct watcher {
    ax_ref_t sup;
    uint64_t mon;
} watcher_t;

/* T_GO (payload: spec pointer): spawn the supervisor, monitored.  DOWN:
 * record its reason. */
static void watcher(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    watcher_t *w = state;
    if (m->type == T_GO) {
        const ax_sup_spec_t *spec = (const ax_sup_spec_t *)(uintptr_t)m->payload.u64[0];
        ax_spawn_opts_t o = {.size = sizeof o, .flags = AX_SPAWN_F_MONITOR, .monitor = &w->mon};
        assert_int_equal(ax_sup_spawn(ctx, spec, &o, &w->sup), 0);
        atomic_store(&g_sup_ref, w->sup);
    } else if (m->type == AX_TYPE_DOWN) {
        ax_down_t d;
        assert_int_equal(ax_down_decode(m, &d), 0);
        assert_int_equal(d.target, w->sup);
        assert_int_equal(d.monitor, w->mon);
        g_sup_reason = d.reason;
        atomic_fetch_add(&g_sup_downs, 1);
    }
}

/* T_BURST (payload: target, n): send the target T_FAIL and then n pings, in
 * order from one sender, so the pings reach it while it is down. */
static void driver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type != T_BURST)
        return;
    ax_ref_t to = m->payload.u64[0];
    assert_int_equal(ax_send(ctx, to, T_FAIL, NULL, 0), 0);
    for (uint64_t i = 0; i < m->payload.u64[1]; i++)
        assert_int_equal(ax_send(ctx, to, T_PING, NULL, 0), 0);
}

typedef struct rig {
    ax_engine_t *e;
    ax_ref_t watcher, driver;
} rig_t;

static void rig_start(rig_t *r, const ax_sup_spec_t *spec, uint32_t workers)
{
    ax_config_t c;
    ax_config_init(&c);
    if (workers > 1) {
        snprintf(c.topology_synthetic, sizeof c.topology_synthetic, "pack:1 core:%u pu:1", workers);
        c.oversubscribe = true;
    }
    c.workers = workers;
    c.arena_bytes = 16u << 20;
    c.max_actors = 4096;
    reset();
    int rc = ax_engine_create(&c, &r->e);
    if (rc)
        fail_msg("ax_engine_create: %d: %s", rc, ax_engine_last_error());
    ax_spawn_opts_t on0 = {.size = sizeof on0, .where = AX_ON_WORKER, .worker = 0};
    assert_int_equal(ax_engine_spawn(r->e, watcher, sizeof(watcher_t), &on0, &r->watcher), 0);
    assert_int_equal(ax_engine_spawn(r->e, driver, 0, &on0, &r->driver), 0);
    assert_int_equal(ax_engine_start(r->e), 0);
    uint64_t p = (uint64_t)(uintptr_t)spec;
    assert_int_equal(ax_engine_send(r->e, r->watcher, T_GO, &p, sizeof p), 0);
}

static void rig_stop(rig_t *r, ax_worker_stats_t *st)
{
    ax_engine_stop(r->e);
    assert_int_equal(ax_engine_wait(r->e), 0);
    if (st)
        ax_engine_stats(r->e, st);
    ax_engine_destroy(r->e);
}

static void send_to(rig_t *r, uint32_t id, uint32_t type)
{
    assert_int_equal(ax_engine_send(r->e, atomic_load(&g_ref[id]), type, NULL, 0), 0);
}

static void burst(rig_t *r, uint32_t id, uint64_t pings)
{
    uint64_t p[2] = {atomic_load(&g_ref[id]), pings};
    assert_int_equal(ax_engine_send(r->e, r->driver, T_BURST, p, sizeof p), 0);
}

static void shutdown_root(rig_t *r)
{
    assert_int_equal(ax_engine_sup_shutdown(r->e, atomic_load(&g_sup_ref)), 0);
    WAIT_FOR(g_sup_downs, 1);
    assert_int_equal(g_sup_reason.kind, AX_REASON_NORMAL);
}

static void expect_log(_Atomic uint32_t *log, uint64_t from, const uint32_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&log[from + i]) != want[i])
            fail_msg("%s: log entry %zu is child %u, expected %u", g_test, (size_t)from + i,
                     atomic_load(&log[from + i]), want[i]);
}

/* ---- tests --------------------------------------------------------------------------- */

static void one_for_one(uint32_t workers)
{
    static const ax_child_spec_t kids[] = {KID(0, AX_CHILD_PERMANENT), KID(1, AX_CHILD_PERMANENT),
                                           KID(2, AX_CHILD_PERMANENT)};
    static ax_child_spec_t placed[3];
    static ax_sup_spec_t spec;
    memcpy(placed, kids, sizeof kids);
    for (int i = 0; i < 3; i++) { /* children on the last worker, the supervisor on 0 */
        placed[i].where = AX_ON_WORKER;
        placed[i].worker = workers - 1;
    }
    spec = (ax_sup_spec_t){.strategy = AX_SUP_ONE_FOR_ONE, .nchildren = 3, .children = placed,
                           .on_event = on_event};
    rig_t r;
    rig_start(&r, &spec, workers);
    WAIT_FOR(g_init_n, 3);
    uint64_t ref1 = atomic_load(&g_ref[1]);
    assert_int_equal(ax_ref_worker(ref1), workers - 1);
    send_to(&r, 1, T_FAIL);
    WAIT_FOR(g_inits[1], 2);
    assert_int_equal(atomic_load(&g_ref[1]), ref1); /* restarted in place */
    assert_int_equal(atomic_load(&g_inits[0]), 1);
    assert_int_equal(atomic_load(&g_inits[2]), 1);
    assert_int_equal(atomic_load(&g_finis[1]), 1);
    assert_int_equal(atomic_load(&g_ev[AX_SUP_EV_RESTARTED]), 1);
    /* The same reference keeps working. */
    send_to(&r, 1, T_PING);
    WAIT_FOR(g_pings[1], 1);
    shutdown_root(&r);
    static const uint32_t order[] = {1, 2, 1, 0}; /* the failure, then reverse start order */
    expect_log(g_fini_log, 0, order, 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&g_finis[i]), (uint64_t)(i == 1 ? 2 : 1));
    /* A shut-down child is gone for good (released), not dormant: its
     * reference is a dead letter, not a message held for a restart. */
    ax_worker_stats_t before;
    ax_engine_stats(r.e, &before);
    send_to(&r, 0, T_PING);
    ax_worker_stats_t now;
    uint64_t end = now_ns() + WAIT_S * 1000000000ull;
    do {
        sleep_us(200);
        ax_engine_stats(r.e, &now);
    } while (now.dead_letters == before.dead_letters && now_ns() < end);
    assert_int_equal(now.dead_letters, before.dead_letters + 1);
    ax_worker_stats_t st;
    rig_stop(&r, &st);
    assert_int_equal(st.actors_restarted, 1);
}

static void one_for_one_restarts_only_the_failed_child(void **state)
{
    (void)state;
    one_for_one(1);
}

static void one_for_one_across_workers(void **state)
{
    (void)state;
    one_for_one(2);
}

static void one_for_all_restarts_every_child_in_order(void **state)
{
    (void)state;
    static const ax_child_spec_t kids[] = {KID(0, AX_CHILD_PERMANENT), KID(1, AX_CHILD_PERMANENT),
                                           KID(2, AX_CHILD_PERMANENT)};
    static const ax_sup_spec_t spec = {.strategy = AX_SUP_ONE_FOR_ALL, .nchildren = 3,
                                       .children = kids, .on_event = on_event};
    rig_t r;
    rig_start(&r, &spec, 1);
    WAIT_FOR(g_init_n, 3);
    uint64_t refs[3];
    for (int i = 0; i < 3; i++)
        refs[i] = atomic_load(&g_ref[i]);
    send_to(&r, 1, T_FAIL);
    WAIT_FOR(g_init_n, 6);
    static const uint32_t fini_order[] = {1, 2, 0}; /* failed, then the others in reverse */
    static const uint32_t init_order[] = {0, 1, 2, 0, 1, 2};
    expect_log(g_fini_log, 0, fini_order, 3);
    expect_log(g_init_log, 0, init_order, 6);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&g_ref[i]), refs[i]);
        assert_int_equal(atomic_load(&g_finis[i]), 1);
    }
    shutdown_root(&r);
    rig_stop(&r, NULL);
}

static void rest_for_one_restarts_the_later_children(void **state)
{
    (void)state;
    static const ax_child_spec_t kids[] = {KID(0, AX_CHILD_PERMANENT), KID(1, AX_CHILD_PERMANENT),
                                           KID(2, AX_CHILD_PERMANENT), KID(3, AX_CHILD_PERMANENT)};
    static const ax_sup_spec_t spec = {.strategy = AX_SUP_REST_FOR_ONE, .nchildren = 4,
                                       .children = kids, .on_event = on_event};
    rig_t r;
    rig_start(&r, &spec, 1);
    WAIT_FOR(g_init_n, 4);
    send_to(&r, 1, T_FAIL);
    WAIT_FOR(g_init_n, 7);
    static const uint32_t fini_order[] = {1, 3, 2};
    static const uint32_t init_order[] = {0, 1, 2, 3, 1, 2, 3};
    expect_log(g_fini_log, 0, fini_order, 3);
    expect_log(g_init_log, 0, init_order, 7);
    assert_int_equal(atomic_load(&g_inits[0]), 1);
    assert_int_equal(atomic_load(&g_finis[0]), 0);
    shutdown_root(&r);
    rig_stop(&r, NULL);
}

static void restart_policies_decide_who_comes_back(void **state)
{
    (void)state;
    static const ax_child_spec_t kids[] = {KID(0, AX_CHILD_TRANSIENT), KID(1, AX_CHILD_TEMPORARY),
                                           KID(2, AX_CHILD_TRANSIENT)};
    static const ax_sup_spec_t spec = {.strategy = AX_SUP_ONE_FOR_ONE, .nchildren = 3,
                                       .children = kids, .on_event = on_event};
    rig_t r;
    rig_start(&r, &spec, 1);
    WAIT_FOR(g_init_n, 3);
    ax_ref_t tmp = atomic_load(&g_ref[1]);
    send_to(&r, 0, T_STOP); /* transient, normal stop: stays down */
    WAIT_FOR(g_ev[AX_SUP_EV_STOPPED], 1);
    send_to(&r, 1, T_FAIL); /* temporary: never restarted */
    WAIT_FOR(g_ev[AX_SUP_EV_STOPPED], 2);
    send_to(&r, 2, T_FAIL); /* transient, abnormal: restarted */
    WAIT_FOR(g_inits[2], 2);
    assert_int_equal(atomic_load(&g_inits[0]), 1);
    assert_int_equal(atomic_load(&g_inits[1]), 1);
    /* The temporary child's reference is stale now: a dead letter. */
    ax_worker_stats_t before;
    ax_engine_stats(r.e, &before);
    assert_int_equal(ax_engine_send(r.e, tmp, T_PING, NULL, 0), 0);
    send_to(&r, 2, T_PING);
    WAIT_FOR(g_pings[2], 1);
    ax_worker_stats_t after;
    ax_engine_stats(r.e, &after);
    assert_int_equal(after.dead_letters, before.dead_letters + 1);
    assert_int_equal(atomic_load(&g_pings[1]), 0);
    shutdown_root(&r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&g_finis[i]), (uint64_t)(i == 2 ? 2 : 1));
    rig_stop(&r, NULL);
}

static void too_many_restarts_escalate_to_the_parent(void **state)
{
    (void)state;
    static const ax_child_spec_t kids[] = {KID(0, AX_CHILD_PERMANENT), KID(1, AX_CHILD_PERMANENT)};
    static const ax_sup_spec_t spec = {.strategy = AX_SUP_ONE_FOR_ONE, .intensity = 2,
                                       .period_ms = 600000, .nchildren = 2, .children = kids,
                                       .on_event = on_event};
    rig_t r;
    rig_start(&r, &spec, 1);
    WAIT_FOR(g_init_n, 2);
    send_to(&r, 0, T_FAIL);
    WAIT_FOR(g_inits[0], 2);
    send_to(&r, 0, T_FAIL);
    WAIT_FOR(g_inits[0], 3);
    assert_int_equal(atomic_load(&g_sup_downs), 0); /* two restarts are allowed */
    send_to(&r, 0, T_FAIL);                         /* the third is one too many */
    WAIT_FOR(g_sup_downs, 1);
    assert_int_equal(g_sup_reason.kind, AX_REASON_FAILED);
    assert_int_equal(g_sup_reason.code, AX_SUP_ESCALATED);
    assert_int_equal(atomic_load(&g_ev[AX_SUP_EV_ESCALATED]), 1);
    assert_int_equal(atomic_load(&g_inits[0]), 3);
    assert_int_equal(atomic_load(&g_finis[0]), 3); /* each incarnation's fini once */
    assert_int_equal(atomic_load(&g_finis[1]), 1); /* stopped by the supervisor */
    rig_stop(&r, NULL);
}

static void queued_messages_are_delivered_or_dropped_as_the_spec_says(void **state)
{
    (void)state;
    static ax_child_spec_t kids[] = {KID(0, AX_CHILD_PERMANENT), KID(1, AX_CHILD_PERMANENT)};
    kids[1].flags = AX_CHILD_F_DROP_QUEUED;
    static const ax_sup_spec_t spec = {.strategy = AX_SUP_ONE_FOR_ONE, .nchildren = 2,
                                       .children = kids, .on_event = on_event};
    rig_t r;
    rig_start(&r, &spec, 1);
    WAIT_FOR(g_init_n, 2);
    burst(&r, 0, 5); /* fail, then 5 pings that wait for the new incarnation */
    WAIT_FOR(g_pings[0], 5);
    assert_int_equal(atomic_load(&g_inits[0]), 2);
    burst(&r, 1, 5); /* the same, dropped */
    WAIT_FOR(g_inits[1], 2);
    send_to(&r, 1, T_PING); /* after the restart: delivered */
    WAIT_FOR(g_pings[1], 1);
    shutdown_root(&r);
    ax_worker_stats_t st;
    rig_stop(&r, &st);
    assert_int_equal(atomic_load(&g_pings[0]), 5);
    assert_int_equal(atomic_load(&g_pings[1]), 1);
    assert_int_equal(st.restart_dropped, 5);
}

/* A child whose init always fails: each restart fails again at once, so
 * the supervisor gives up after `intensity` restarts; the child it started
 * before keeps its single fini. */
static void bad_init_fails(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    kid_init(ctx, state, arg, len);
    ax_fail(ctx, 99, "cannot init");
}

static void a_child_that_cannot_init_escalates(void **state)
{
    (void)state;
    static const ax_child_spec_t kids[] = {
        KID(0, AX_CHILD_PERMANENT),
        {.restart = AX_CHILD_PERMANENT, .name = "bad", .fn = kid, .state_size = sizeof(kid_t),
         .init = bad_init_fails, .fini = kid_fini, .arg = &IDS[1], .arg_len = sizeof(uint32_t)}};
    static const ax_sup_spec_t spec = {.strategy = AX_SUP_ONE_FOR_ONE, .intensity = 3,
                                       .period_ms = 600000, .nchildren = 2, .children = kids,
                                       .on_event = on_event};
    rig_t r;
    rig_start(&r, &spec, 1);
    WAIT_FOR(g_sup_downs, 1);
    assert_int_equal(g_sup_reason.kind, AX_REASON_FAILED);
    assert_int_equal(g_sup_reason.code, AX_SUP_ESCALATED);
    assert_int_equal(atomic_load(&g_inits[1]), 4); /* the start and 3 restarts */
    assert_int_equal(atomic_load(&g_finis[1]), 4);
    assert_int_equal(atomic_load(&g_finis[0]), 1);
    assert_int_equal(atomic_load(&g_ev[AX_SUP_EV_RESTARTED]), 3);
    rig_stop(&r, NULL);
}

/* root (one-for-one): A, S1 (one-for-one, intensity 1: B, C), D */
static void trees_restart_subtrees_and_shut_down_in_reverse_order(void **state)
{
    (void)state;
    static const ax_child_spec_t s1_kids[] = {KID(1, AX_CHILD_PERMANENT),
                                              KID(2, AX_CHILD_PERMANENT)};
    static const ax_sup_spec_t s1 = {.strategy = AX_SUP_ONE_FOR_ONE, .intensity = 1,
                                     .period_ms = 600000, .nchildren = 2, .children = s1_kids,
                                     .on_event = on_event};
    static const ax_child_spec_t root_kids[] = {
        KID(0, AX_CHILD_PERMANENT),
        {.restart = AX_CHILD_PERMANENT, .name = "s1", .sup = &s1},
        KID(3, AX_CHILD_PERMANENT)};
    static const ax_sup_spec_t root = {.strategy = AX_SUP_ONE_FOR_ONE, .nchildren = 3,
                                       .children = root_kids, .on_event = on_event};
    rig_t r;
    rig_start(&r, &root, 1);
    WAIT_FOR(g_init_n, 4);
    static const uint32_t start_order[] = {0, 1, 2, 3};
    expect_log(g_init_log, 0, start_order, 4);
    send_to(&r, 1, T_FAIL); /* B: S1 restarts it (its one allowed restart) */
    WAIT_FOR(g_inits[1], 2);
    send_to(&r, 1, T_FAIL); /* B again: S1 gives up; the root restarts S1 in place */
    WAIT_FOR(g_inits[1], 3);
    WAIT_FOR(g_inits[2], 2);
    assert_int_equal(atomic_load(&g_sup_downs), 0); /* the root did not give up */
    assert_int_equal(atomic_load(&g_inits[0]), 1);
    assert_int_equal(atomic_load(&g_inits[3]), 1);
    uint64_t before = atomic_load(&g_fini_n);
    assert_int_equal(before, 3); /* B, B, C (S1 shutting down; B was down already) */
    shutdown_root(&r);
    static const uint32_t stop_order[] = {3, 2, 1, 0};
    expect_log(g_fini_log, before, stop_order, 4);
    assert_int_equal(atomic_load(&g_finis[0]), 1);
    assert_int_equal(atomic_load(&g_finis[1]), 3);
    assert_int_equal(atomic_load(&g_finis[2]), 2);
    assert_int_equal(atomic_load(&g_finis[3]), 1);
    rig_stop(&r, NULL);
}

/* An engine that stops under a running tree runs every fini once, leaks
 * nothing (ASan/LSan) and delivers no DOWN. */
static void engine_stop_under_a_tree_runs_each_fini_once(void **state)
{
    (void)state;
    static const ax_child_spec_t s1_kids[] = {KID(1, AX_CHILD_PERMANENT),
                                              KID(2, AX_CHILD_PERMANENT)};
    static const ax_sup_spec_t s1 = {.nchildren = 2, .children = s1_kids};
    static const ax_child_spec_t root_kids[] = {KID(0, AX_CHILD_PERMANENT),
                                                {.name = "s1", .sup = &s1}};
    static const ax_sup_spec_t root = {.nchildren = 2, .children = root_kids};
    rig_t r;
    rig_start(&r, &root, 1);
    WAIT_FOR(g_init_n, 3);
    rig_stop(&r, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&g_finis[i]), 1);
}

/* A supervisor killed from outside (or by anyone) cannot restart its
 * children any more: its links stop them, and they must end for good, not
 * go dormant with their slots held and their mail kept for a restart that
 * never comes.  Checked by the mail: a ping to each child afterwards is a
 * counted dead letter, and the children are no longer live. */
static void a_killed_supervisor_leaves_no_dormant_children(void **state)
{
    (void)state;
    g_test = __func__;
    static const ax_child_spec_t kids[] = {KID(0, AX_CHILD_PERMANENT), KID(1, AX_CHILD_TRANSIENT),
                                           KID(2, AX_CHILD_PERMANENT)};
    static const ax_sup_spec_t spec = {.strategy = AX_SUP_ONE_FOR_ONE, .nchildren = 3,
                                       .children = kids};
    rig_t r;
    rig_start(&r, &spec, 1);
    WAIT_FOR(g_init_n, 3);
    ax_worker_stats_t before;
    ax_engine_stats(r.e, &before);
    assert_int_equal(before.actors_live, 2 + 1 + 3); /* watcher, driver, supervisor, kids */
    assert_int_equal(ax_engine_kill(r.e, atomic_load(&g_sup_ref)), 0);
    WAIT_FOR(g_sup_downs, 1);
    assert_int_equal(g_sup_reason.kind, AX_REASON_KILLED);
    WAIT_FOR(g_fini_n, 3); /* the links stopped every child */
    ax_engine_stats(r.e, &before);
    for (uint32_t i = 0; i < 3; i++)
        send_to(&r, i, T_PING);
    ax_worker_stats_t now;
    uint64_t end = now_ns() + WAIT_S * 1000000000ull;
    do {
        sleep_us(200);
        ax_engine_stats(r.e, &now);
    } while (now.dead_letters < before.dead_letters + 3 && now_ns() < end);
    if (now.dead_letters != before.dead_letters + 3 || now.actors_live != 2)
        fail_msg("%s: after the supervisor was killed, 3 pings to its children made %llu dead "
                 "letters (want 3) and %llu actors are live (want 2: the children went dormant "
                 "and nobody can restart or release them)",
                 g_test, (unsigned long long)(now.dead_letters - before.dead_letters),
                 (unsigned long long)now.actors_live);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&g_finis[i]), 1);
        assert_int_equal(atomic_load(&g_pings[i]), 0);
    }
    ax_worker_stats_t st;
    rig_stop(&r, &st);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&g_finis[i]), 1); /* no second fini at engine stop */
    assert_int_equal(st.actors_restarted, 0);
}

static void bad_specs_are_refused_with_a_reason(void **state)
{
    (void)state;
    char why[200];
    static const ax_child_spec_t nofn[] = {{.name = "x"}};
    ax_sup_spec_t s = {.nchildren = 1, .children = nofn};
    assert_int_equal(ax_sup_check(&s, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "child 0 (x): fn is NULL"));
    s = (ax_sup_spec_t){.strategy = 9};
    assert_int_equal(ax_sup_check(&s, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "strategy 9"));
    s = (ax_sup_spec_t){.nchildren = 2};
    assert_int_equal(ax_sup_check(&s, why, sizeof why), -EINVAL);
    s = (ax_sup_spec_t){.intensity = 2000000};
    assert_int_equal(ax_sup_check(&s, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "intensity"));
    static ax_child_spec_t self_kid[1];
    static ax_sup_spec_t loop = {.nchildren = 1, .children = self_kid};
    self_kid[0] = (ax_child_spec_t){.sup = &loop};
    assert_int_equal(ax_sup_check(&loop, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "nest"));
    assert_int_equal(ax_sup_check(NULL, why, sizeof why), -EINVAL);
    s = (ax_sup_spec_t){0};
    assert_int_equal(ax_sup_check(&s, why, sizeof why), 0); /* no children is fine */
    ax_ref_t ref;
    ax_spawn_opts_t withinit = {.size = sizeof withinit, .init = kid_init};
    assert_int_equal(ax_engine_sup_spawn(NULL, &s, &withinit, &ref), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)

int main(void)
{
    signal(SIGALRM, watchdog);
    const struct CMUnitTest tests[] = {
        T(one_for_one_restarts_only_the_failed_child),
        T(one_for_one_across_workers),
        T(one_for_all_restarts_every_child_in_order),
        T(rest_for_one_restarts_the_later_children),
        T(restart_policies_decide_who_comes_back),
        T(too_many_restarts_escalate_to_the_parent),
        T(queued_messages_are_delivered_or_dropped_as_the_spec_says),
        T(a_child_that_cannot_init_escalates),
        T(trees_restart_subtrees_and_shut_down_in_reverse_order),
        T(engine_stop_under_a_tree_runs_each_fini_once),
        T(a_killed_supervisor_leaves_no_dormant_children),
        T(bad_specs_are_refused_with_a_reason),
    };
    return cmocka_run_group_tests_name("lib/supervisor", tests, NULL, NULL);
}
