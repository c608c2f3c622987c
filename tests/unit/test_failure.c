/* tests/unit/test_failure.c - failure and resource control through the
 * public API (axon/failure.h): stop reasons, monitors across workers, DOWN
 * for a dead target, demonitor racing a DOWN in flight, links with and
 * without trapping, restart in place (queued messages delivered or
 * dropped), stale references, sponsor exhaustion for each resource and
 * both policies, revocation with timers and pending reads, cancellation of
 * an old incarnation's completions.
 *
 * Multi-worker engines run unpinned on a synthetic topology, so the tests
 * pass on one CPU (taskset -c 0).  Behaviours never call cmocka: they
 * record into a static struct of atomics that the test thread checks after
 * a bounded wait.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/failure.h"
#include "axon/io.h"
#include "axon/request.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define ENGINE_TEST_NAME "test_failure"
#define ENGINE_TEST_HANG "a lost DOWN/EXIT, a restart that never happens, or a stop blocked by I/O"
#include "engine_test.h"

#define SYNTH "pack:1 numa:1 l3:1 core:4 pu:1"

/* Commands (user message types). */
enum {
    C_NOP = 1, C_MONITOR, C_KILL, C_LINK, C_UNLINK, C_TRAP, C_DEMON, C_FAIL, C_STOP, C_SEQ,
    C_MON_KILL_DEMON, C_BYE_TO, C_BYE, C_DEMON_ON_BYE, C_SEND_N, C_SPAWN_N, C_BLOB_N, C_SPIN,
    C_IO, C_TICK, C_FLOOD_FAIL, C_RESTART, C_RESTART_DROP, C_RELEASE, C_SPAWN_MON, C_SPONSOR,
    C_FLOOD_SLOW, C_SLOW_NOP, C_KILL_RESTART, C_TELL, C_SYNC, C_EXHAUST,
};

/* What the actors saw. */
typedef struct sh {
    _Atomic uint64_t downs, exits, inits, finis, seqs, seq_errors, ticks, ticks_new, nops;
    _Atomic uint64_t rc_events, last_rc, rc2, ok_sends, edquot, other_err, stopped_seen;
    _Atomic uint64_t restarts_sent, spawned_ok, sponsor_match, io_started, syncs;
    /* the last DOWN / EXIT, written before the counter (release) */
    ax_ref_t down_target, exit_from;
    uint64_t down_mon, mon_id;
    ax_reason_t down_reason, exit_reason;
    _Atomic uint64_t fini_kind; /* several workers' finis write it */
    uint64_t down_kinds[8]; /* DOWNs per reason kind */
    ax_ref_t spawned_ref;
    int64_t oom_rc[4]; /* C_EXHAUST: monitor, link, restartable spawn, monitor after */
    uint64_t oom_blobs;
} sh_t;

static sh_t g_sh;
static _Atomic int g_ready_sent;
static int g_pipe[2] = {-1, -1};

typedef struct probe {
    uint64_t mon;
    ax_ref_t bye_to;
    bool demon_on_bye;
    uint64_t seq;
    uint64_t incarnation_msgs;
} probe_t;

static void reset(void)
{
    memset(&g_sh, 0, sizeof g_sh);
}

static uint64_t u64_of(const ax_msg_t *m)
{
    uint64_t v = 0;
    if (ax_msg_len(m) >= sizeof v)
        memcpy(&v, ax_msg_data(m), sizeof v);
    return v;
}

static void note_rc(int rc)
{
    atomic_store(&g_sh.last_rc, (uint64_t)(int64_t)rc);
    atomic_fetch_add(&g_sh.rc_events, 1);
}

static void probe_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx, (void)state, (void)arg, (void)len;
    atomic_fetch_add(&g_sh.inits, 1);
}

static void probe_fini(ax_ctx_t *ctx, void *state)
{
    probe_t *p = state;
    const ax_reason_t *r = ax_stop_reason(ctx);
    if (r)
        atomic_store(&g_sh.fini_kind, r->kind);
    if (p->bye_to)
        ax_send_u64(ctx, p->bye_to, C_BYE, 0);
    atomic_fetch_add(&g_sh.finis, 1);
}

static void fail_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)state, (void)arg, (void)len;
    atomic_fetch_add(&g_sh.inits, 1);
    ax_fail(ctx, 99, "init says no");
}

static void probe(ax_ctx_t *ctx, void *state, const ax_msg_t *m);

static void record_down(const ax_msg_t *m)
{
    ax_down_t d;
    if (ax_down_decode(m, &d) != 0)
        return;
    g_sh.down_target = d.target;
    g_sh.down_mon = d.monitor;
    g_sh.down_reason = d.reason;
    if (d.reason.kind < 8)
        g_sh.down_kinds[d.reason.kind]++;
    atomic_fetch_add(&g_sh.downs, 1); /* release: the fields above are visible */
}

static void probe(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    probe_t *p = state;
    uint64_t v = u64_of(m);
    int rc;
    p->incarnation_msgs++;
    switch (m->type) {
    case AX_TYPE_DOWN:
        record_down(m);
        return;
    case AX_TYPE_EXIT: {
        ax_exit_t x;
        if (ax_exit_decode(m, &x) == 0) {
            g_sh.exit_from = x.from;
            g_sh.exit_reason = x.reason;
            atomic_fetch_add(&g_sh.exits, 1);
        }
        return;
    }
    case C_NOP:
        atomic_fetch_add(&g_sh.nops, 1);
        return;
    case C_SYNC:
        atomic_fetch_add(&g_sh.syncs, 1);
        return;
    case C_TELL: /* forward {to, type, value}: ordered after what we sent to `to` */
        if (ax_send_u64(ctx, (ax_ref_t)m->payload.u64[0], (uint32_t)m->payload.u64[1],
                        m->payload.u64[2]) != 0)
            note_rc(-1);
        return;
    case C_MONITOR:
        rc = ax_monitor(ctx, (ax_ref_t)v, &p->mon);
        g_sh.mon_id = p->mon;
        note_rc(rc);
        return;
    case C_KILL:
        note_rc(ax_kill(ctx, (ax_ref_t)v));
        return;
    case C_LINK:
        note_rc(ax_link(ctx, (ax_ref_t)v));
        return;
    case C_UNLINK:
        note_rc(ax_unlink(ctx, (ax_ref_t)v));
        return;
    case C_TRAP:
        ax_trap_exits(ctx, v != 0);
        note_rc(0);
        return;
    case C_DEMON:
        rc = ax_demonitor(ctx, p->mon);
        atomic_store(&g_sh.rc2, (uint64_t)(int64_t)ax_demonitor(ctx, p->mon)); /* idempotent */
        note_rc(rc);
        return;
    case C_FAIL:
        ax_fail(ctx, (int32_t)v, "boom: a text longer than sixteen bytes");
        return;
    case C_STOP:
        ax_stop_self(ctx);
        return;
    case C_SEQ:
        if (v != p->seq)
            atomic_fetch_add(&g_sh.seq_errors, 1);
        p->seq = v + 1;
        atomic_fetch_add(&g_sh.seqs, 1);
        return;
    case C_MON_KILL_DEMON: /* DOWN is queued behind C_DEMON on this worker */
        rc = ax_monitor(ctx, (ax_ref_t)v, &p->mon);
        if (rc == 0)
            rc = ax_kill(ctx, (ax_ref_t)v);
        if (rc == 0)
            rc = ax_send_u64(ctx, ax_self(ctx), C_DEMON, 0);
        if (rc != 0)
            note_rc(rc);
        return;
    case C_BYE_TO:
        p->bye_to = (ax_ref_t)v;
        note_rc(0);
        return;
    case C_DEMON_ON_BYE: /* monitor v, then kill it: its fini's BYE precedes its DOWN */
        p->demon_on_bye = true;
        rc = ax_monitor(ctx, (ax_ref_t)v, &p->mon);
        if (rc == 0)
            rc = ax_kill(ctx, (ax_ref_t)v);
        if (rc != 0)
            note_rc(rc);
        return;
    case C_BYE:
        if (p->demon_on_bye) {
            rc = ax_demonitor(ctx, p->mon);
            atomic_store(&g_sh.rc2, (uint64_t)(int64_t)ax_demonitor(ctx, p->mon));
            note_rc(rc);
        }
        return;
    case C_SEND_N: /* send v messages to self's NOP sink (the test's target) */
        for (uint64_t i = 0; i < v; i++) {
            rc = ax_send_u64(ctx, g_sh.spawned_ref, C_NOP, i);
            if (rc == 0)
                atomic_fetch_add(&g_sh.ok_sends, 1);
            else if (rc == -EDQUOT)
                atomic_fetch_add(&g_sh.edquot, 1);
            else
                atomic_fetch_add(&g_sh.other_err, 1);
        }
        note_rc(0);
        return;
    case C_SPAWN_N:
        for (uint64_t i = 0; i < v; i++) {
            ax_ref_t r;
            rc = ax_spawn(ctx, probe, sizeof(probe_t), NULL, &r);
            if (rc == 0) {
                atomic_fetch_add(&g_sh.spawned_ok, 1);
                g_sh.spawned_ref = r;
                if (ax_send_u64(ctx, r, C_SPONSOR, (uint64_t)(uintptr_t)ax_sponsor_self(ctx)) != 0)
                    atomic_fetch_add(&g_sh.other_err, 1);
            } else if (rc == -EDQUOT) {
                atomic_fetch_add(&g_sh.edquot, 1);
            } else {
                atomic_fetch_add(&g_sh.other_err, 1);
            }
        }
        note_rc(0);
        return;
    case C_SPONSOR: /* a child checks it inherited its parent's sponsor */
        if ((uint64_t)(uintptr_t)ax_sponsor_self(ctx) == v)
            atomic_fetch_add(&g_sh.sponsor_match, 1);
        return;
    case C_BLOB_N:
        for (uint64_t i = 0; i < v; i++) {
            errno = 0;
            void *b = ax_blob_alloc(ctx, 1000);
            if (b) {
                atomic_fetch_add(&g_sh.ok_sends, 1);
                ax_blob_free(ctx, b);
            } else if (errno == EDQUOT) {
                atomic_fetch_add(&g_sh.edquot, 1);
            } else {
                atomic_fetch_add(&g_sh.other_err, 1);
            }
        }
        note_rc(0);
        return;
    case C_SPIN: {
        uint64_t end = now_ns() + v * 1000000u;
        while (now_ns() < end) {
        }
        note_rc(0);
        return;
    }
    case C_IO: { /* a periodic timer and a read that never completes */
        uint64_t tid;
        rc = ax_timer_every(ctx, 5, C_TICK, NULL, 0, &tid);
        if (rc == 0)
            rc = ax_file_read(ctx, g_pipe[0], 16, 0, 7); /* a pipe: the offset is ignored */
        if (rc == 0)
            atomic_fetch_add(&g_sh.io_started, 1);
        else
            note_rc(rc);
        return;
    }
    case C_TICK:
        atomic_fetch_add(&g_sh.ticks, 1);
        return;
    case C_FLOOD_FAIL: {
        /* A one-shot timer due now, then enough messages to self that the
         * C_FAIL at their end is still queued when the timer is posted
         * behind it (batch 8 per turn). */
        uint64_t tid;
        if (ax_timer_after(ctx, 1, C_TICK, NULL, 0, &tid) != 0)
            note_rc(-1);
        for (int i = 0; i < 64; i++)
            ax_send_u64(ctx, ax_self(ctx), C_NOP, 0);
        ax_send_u64(ctx, ax_self(ctx), C_FAIL, 5);
        uint64_t end = now_ns() + 5000000u; /* the timer is due before this returns */
        while (now_ns() < end) {
        }
        return;
    }
    case C_FLOOD_SLOW: {
        /* A one-shot timer that is due before this returns, and 3000 slow
         * messages to self; the 100th asks the supervisor (g_sh.spawned_ref)
         * to kill and restart this actor while the timer's message waits in
         * the FIFO behind the rest. */
        uint64_t tid;
        if (ax_timer_after(ctx, 1, C_TICK, NULL, 0, &tid) != 0)
            note_rc(-1);
        for (int i = 0; i < 3000; i++)
            ax_send_u64(ctx, ax_self(ctx), C_SLOW_NOP, 0);
        uint64_t end = now_ns() + 5000000u;
        while (now_ns() < end) {
        }
        return;
    }
    case C_SLOW_NOP: {
        uint64_t end = now_ns() + 50000u;
        while (now_ns() < end) {
        }
        if (atomic_fetch_add(&g_sh.nops, 1) == 100 && !atomic_exchange(&g_ready_sent, 1))
            ax_send_u64(ctx, g_sh.spawned_ref, C_KILL_RESTART, ax_self(ctx));
        return;
    }
    case C_KILL_RESTART: {
        uint64_t mon;
        rc = ax_kill(ctx, (ax_ref_t)v);
        if (rc == 0)
            rc = ax_restart(ctx, (ax_ref_t)v, AX_RESTART_F_MONITOR, &mon);
        note_rc(rc);
        return;
    }
    case C_RESTART:
    case C_RESTART_DROP: {
        uint64_t mon = 0;
        rc = ax_restart(ctx, (ax_ref_t)v,
                        AX_RESTART_F_MONITOR | (m->type == C_RESTART_DROP ? AX_RESTART_F_DROP_QUEUED : 0),
                        &mon);
        p->mon = mon;
        atomic_fetch_add(&g_sh.restarts_sent, 1);
        note_rc(rc);
        return;
    }
    case C_RELEASE:
        note_rc(ax_release(ctx, (ax_ref_t)v));
        return;
    case C_EXHAUST: { /* fill the arena with blobs, try, free, try again */
        void *list = NULL, *b;
        uint64_t n = 0;
        while ((b = ax_blob_alloc(ctx, 32))) { /* the records' class */
            *(void **)b = list;
            list = b;
            n++;
        }
        ax_ref_t r;
        ax_spawn_opts_t o = {.size = sizeof o, .flags = AX_SPAWN_F_RESTARTABLE};
        g_sh.oom_rc[0] = ax_monitor(ctx, (ax_ref_t)v, &p->mon);
        g_sh.oom_rc[1] = ax_link(ctx, (ax_ref_t)v);
        g_sh.oom_rc[2] = ax_spawn(ctx, probe, 8, &o, &r);
        while (list) {
            b = list;
            list = *(void **)b;
            ax_blob_free(ctx, b);
        }
        g_sh.oom_rc[3] = ax_monitor(ctx, (ax_ref_t)v, &p->mon);
        g_sh.oom_blobs = n;
        note_rc(0);
        return;
    }
    case C_SPAWN_MON: { /* spawn a child whose init fails, monitored from before init */
        ax_ref_t r;
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = (uint32_t)v,
                             .init = fail_init, .flags = AX_SPAWN_F_MONITOR, .monitor = &p->mon};
        rc = ax_spawn(ctx, probe, sizeof(probe_t), &o, &r);
        g_sh.spawned_ref = r;
        g_sh.mon_id = p->mon;
        note_rc(rc);
        return;
    }
    default:
        return;
    }
}

/* ---- engine helpers --------------------------------------------------------------- */

static uint32_t g_ring_slots; /* 0: default */

static ax_engine_t *make(uint32_t workers, uint32_t batch)
{
    ax_config_t c;
    ax_config_init(&c);
    snprintf(c.topology_synthetic, sizeof c.topology_synthetic, "%s", SYNTH);
    c.oversubscribe = true;
    c.workers = workers;
    c.arena_bytes = 16u << 20;
    c.max_actors = 4096;
    c.batch = batch;
    c.ring_slots = g_ring_slots;
    ax_engine_t *e = NULL;
    int rc = ax_engine_create(&c, &e);
    if (rc != 0)
        fail_msg("%s: ax_engine_create: %d %s", g_test, rc, ax_engine_last_error());
    return e;
}

static ax_ref_t spawn_on(ax_engine_t *e, uint32_t worker, uint32_t flags, ax_sponsor_t *sp)
{
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = worker,
                         .init = probe_init, .fini = probe_fini, .flags = flags, .sponsor = sp};
    ax_ref_t r = AX_REF_NONE;
    int rc = ax_engine_spawn(e, probe, sizeof(probe_t), &o, &r);
    if (rc != 0)
        fail_msg("%s: ax_engine_spawn: %d", g_test, rc);
    return r;
}

static void cmd(ax_engine_t *e, ax_ref_t to, uint32_t type, uint64_t v)
{
    int rc = ax_engine_send(e, to, type, &v, sizeof v);
    if (rc != 0)
        fail_msg("%s: ax_engine_send(%u): %d", g_test, type, rc);
}

/* Have `via` send `to` a command: it arrives after whatever `via` sent `to`
 * before (a monitor or link request), which a command from outside (the
 * inbox) could overtake. */
static void tell(ax_engine_t *e, ax_ref_t via, ax_ref_t to, uint32_t type, uint64_t v)
{
    uint64_t p[3] = {to, type, v};
    int rc = ax_engine_send(e, via, C_TELL, p, sizeof p);
    if (rc != 0)
        fail_msg("%s: ax_engine_send(C_TELL): %d", g_test, rc);
}

/* Wait until what `via` sent `to` so far has been handled. */
static void sync_to(ax_engine_t *e, ax_ref_t via, ax_ref_t to)
{
    uint64_t n = atomic_load(&g_sh.syncs);
    tell(e, via, to, C_SYNC, 0);
    WAIT_FOR(g_sh.syncs, n + 1);
}

/* Send a command and wait for the actor to record its result. */
static int64_t call(ax_engine_t *e, ax_ref_t to, uint32_t type, uint64_t v)
{
    uint64_t n = atomic_load(&g_sh.rc_events);
    cmd(e, to, type, v);
    WAIT_FOR(g_sh.rc_events, n + 1);
    return (int64_t)atomic_load(&g_sh.last_rc);
}

static void finish(ax_engine_t *e, ax_worker_stats_t *st)
{
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
    if (st)
        ax_engine_stats(e, st);
    ax_engine_destroy(e);
}

/* Wait until the engine has been quiet for a while: lets in-flight
 * notifications land before checking that none arrived. */
static void settle(void) { sleep_us(50000); }

/* ---- monitors ---------------------------------------------------------------------- */

static void monitor_reports_failure_with_code_and_text_across_workers(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t w = spawn_on(e, 0, 0, NULL), t = spawn_on(e, 1, 0, NULL);
    assert_int_equal(call(e, w, C_MONITOR, t), 0);
    assert_true(g_sh.mon_id != 0);
    tell(e, w, t, C_FAIL, 7);
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_target, t);
    assert_int_equal(g_sh.down_mon, g_sh.mon_id);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_FAILED);
    assert_int_equal(g_sh.down_reason.code, 7);
    assert_string_equal(g_sh.down_reason.text, "boom: a text lo"); /* 15 bytes kept */
    assert_int_equal(atomic_load(&g_sh.fini_kind), AX_REASON_FAILED);     /* fini was told */
    assert_string_equal(ax_reason_name(AX_REASON_FAILED), "failed");
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(atomic_load(&g_sh.downs), 1);
    assert_int_equal(st.actors_failed, 1);
    assert_int_equal(st.downs_sent, 1);
}

static void monitor_reports_normal_stop_and_kill_with_the_killer(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t w = spawn_on(e, 0, 0, NULL), t1 = spawn_on(e, 1, 0, NULL), t2 = spawn_on(e, 1, 0, NULL);
    ax_ref_t killer = spawn_on(e, 1, 0, NULL);
    assert_int_equal(call(e, w, C_MONITOR, t1), 0);
    tell(e, w, t1, C_STOP, 0);
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_NORMAL);
    assert_int_equal(call(e, w, C_MONITOR, t2), 0);
    sync_to(e, w, t2);
    assert_int_equal(call(e, killer, C_KILL, t2), 0);
    WAIT_FOR(g_sh.downs, 2);
    assert_int_equal(g_sh.down_target, t2);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_KILLED);
    assert_int_equal(g_sh.down_reason.peer, killer);
    /* ax_engine_kill: no killer */
    assert_int_equal(call(e, w, C_MONITOR, killer), 0);
    sync_to(e, w, killer);
    assert_int_equal(ax_engine_kill(e, killer), 0);
    WAIT_FOR(g_sh.downs, 3);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_KILLED);
    assert_int_equal(g_sh.down_reason.peer, AX_REF_NONE);
    finish(e, NULL);
    assert_int_equal(atomic_load(&g_sh.downs), 3);
}

static void monitor_of_a_dead_actor_gives_down_no_such_actor_at_once(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t w = spawn_on(e, 0, 0, NULL), local = spawn_on(e, 0, 0, NULL), remote = spawn_on(e, 1, 0, NULL);
    cmd(e, local, C_STOP, 0);
    cmd(e, remote, C_STOP, 0);
    WAIT_FOR(g_sh.finis, 2);
    assert_int_equal(call(e, w, C_MONITOR, local), 0);
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_NO_ACTOR);
    assert_int_equal(g_sh.down_target, local);
    assert_int_equal(g_sh.down_mon, g_sh.mon_id);
    assert_int_equal(call(e, w, C_MONITOR, remote), 0);
    WAIT_FOR(g_sh.downs, 2);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_NO_ACTOR);
    assert_int_equal(g_sh.down_target, remote);
    /* a reference that never existed (a slot nobody used) */
    assert_int_equal(call(e, w, C_MONITOR, remote + 1000), 0);
    WAIT_FOR(g_sh.downs, 3);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_NO_ACTOR);
    finish(e, NULL);
    assert_int_equal(atomic_load(&g_sh.downs), 3);
}

static void spawn_with_monitor_reports_an_init_failure_with_its_reason(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t w = spawn_on(e, 0, 0, NULL);
    assert_int_equal(call(e, w, C_SPAWN_MON, 0), 0); /* local */
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_FAILED);
    assert_int_equal(g_sh.down_reason.code, 99);
    assert_int_equal(g_sh.down_mon, g_sh.mon_id);
    assert_int_equal(g_sh.down_target, g_sh.spawned_ref);
    assert_int_equal(call(e, w, C_SPAWN_MON, 1), 0); /* remote */
    WAIT_FOR(g_sh.downs, 2);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_FAILED);
    assert_int_equal(g_sh.down_target, g_sh.spawned_ref);
    assert_int_equal(atomic_load(&g_sh.inits), 3); /* w, and each child once */
    finish(e, NULL);
}

static void demonitor_filters_a_down_already_queued_on_the_same_worker(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(1, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t w = spawn_on(e, 0, 0, NULL), t = spawn_on(e, 0, 0, NULL);
    assert_int_equal(call(e, w, C_MON_KILL_DEMON, t), 0);
    WAIT_FOR(g_sh.finis, 1);
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(atomic_load(&g_sh.downs), 0);  /* filtered */
    assert_int_equal((int64_t)atomic_load(&g_sh.rc2), -ENOENT); /* second demonitor */
    assert_int_equal(st.downs_sent, 1);
    assert_int_equal(st.downs_filtered, 1);
}

static void demonitor_filters_a_down_in_flight_from_another_worker(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t w = spawn_on(e, 0, 0, NULL), t = spawn_on(e, 1, 0, NULL);
    assert_int_equal(call(e, t, C_BYE_TO, w), 0);
    /* w monitors and kills t; t's fini sends BYE before its DOWN goes out on
     * the same ring, so w demonitors while the DOWN is in flight. */
    assert_int_equal(call(e, w, C_DEMON_ON_BYE, t), 0);
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(atomic_load(&g_sh.downs), 0);
    assert_int_equal((int64_t)atomic_load(&g_sh.rc2), -ENOENT);
    assert_int_equal(st.downs_sent, 1);
    assert_int_equal(st.downs_filtered, 1);
}

static void demonitor_before_the_stop_means_no_down(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t w = spawn_on(e, 0, 0, NULL), t = spawn_on(e, 1, 0, NULL);
    assert_int_equal(call(e, w, C_MONITOR, t), 0);
    assert_int_equal(call(e, w, C_DEMON, 0), 0);
    tell(e, w, t, C_FAIL, 1);
    WAIT_FOR(g_sh.finis, 1);
    settle();
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(atomic_load(&g_sh.downs), 0);
    assert_int_equal(st.downs_sent, 0); /* the target dropped its record first */
}

/* ---- links ------------------------------------------------------------------------- */

static void link_failure_stops_the_peer_with_reason_linked(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t obs = spawn_on(e, 0, 0, NULL), a = spawn_on(e, 0, 0, NULL), b = spawn_on(e, 1, 0, NULL);
    assert_int_equal(call(e, obs, C_MONITOR, a), 0);
    assert_int_equal(call(e, a, C_LINK, b), 0);
    assert_int_equal(call(e, a, C_LINK, b), 0); /* twice: one link */
    sync_to(e, obs, a);
    tell(e, a, b, C_FAIL, 3);
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_target, a);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_LINKED);
    assert_int_equal(g_sh.down_reason.peer, b);
    assert_int_equal(g_sh.down_reason.code, AX_REASON_FAILED);
    WAIT_FOR(g_sh.finis, 2);
    finish(e, NULL);
    assert_int_equal(atomic_load(&g_sh.downs), 1);
    assert_int_equal(atomic_load(&g_sh.exits), 0);
}

static void link_to_a_trapping_peer_delivers_exit_and_keeps_it_alive(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t a = spawn_on(e, 0, 0, NULL), b = spawn_on(e, 1, 0, NULL), c = spawn_on(e, 1, 0, NULL);
    assert_int_equal(call(e, a, C_TRAP, 1), 0);
    assert_int_equal(call(e, a, C_LINK, b), 0);
    assert_int_equal(call(e, a, C_LINK, c), 0);
    tell(e, a, b, C_FAIL, 4);
    WAIT_FOR(g_sh.exits, 1);
    assert_int_equal(g_sh.exit_from, b);
    assert_int_equal(g_sh.exit_reason.kind, AX_REASON_FAILED);
    assert_int_equal(g_sh.exit_reason.code, 4);
    tell(e, a, c, C_STOP, 0); /* a trapping actor hears of normal stops too */
    WAIT_FOR(g_sh.exits, 2);
    assert_int_equal(g_sh.exit_reason.kind, AX_REASON_NORMAL);
    cmd(e, a, C_NOP, 0);
    WAIT_FOR(g_sh.nops, 1); /* still alive */
    assert_int_equal(atomic_load(&g_sh.finis), 2);
    /* a link to a dead actor: EXIT no-such-actor */
    assert_int_equal(call(e, a, C_LINK, b), 0);
    WAIT_FOR(g_sh.exits, 3);
    assert_int_equal(g_sh.exit_reason.kind, AX_REASON_NO_ACTOR);
    finish(e, NULL);
}

static void normal_stop_and_unlinked_failure_do_not_propagate(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t a = spawn_on(e, 0, 0, NULL), b = spawn_on(e, 1, 0, NULL), c = spawn_on(e, 1, 0, NULL);
    assert_int_equal(call(e, a, C_LINK, b), 0);
    assert_int_equal(call(e, a, C_LINK, c), 0);
    tell(e, a, b, C_STOP, 0);
    WAIT_FOR(g_sh.finis, 1);
    assert_int_equal(call(e, a, C_UNLINK, c), 0);
    assert_int_equal(call(e, a, C_UNLINK, c), -ENOENT);
    tell(e, a, c, C_FAIL, 1);
    WAIT_FOR(g_sh.finis, 2);
    settle();
    cmd(e, a, C_NOP, 0);
    WAIT_FOR(g_sh.nops, 1);
    assert_int_equal(atomic_load(&g_sh.finis), 2); /* a survived both */
    finish(e, NULL);
}

/* ---- restart in place ---------------------------------------------------------------- */

static void restart(bool drop)
{
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t sup = spawn_on(e, 0, 0, NULL);
    ax_ref_t child = spawn_on(e, 1, AX_SPAWN_F_RESTARTABLE, NULL);
    assert_int_equal(call(e, sup, C_MONITOR, child), 0);
    sync_to(e, sup, child);
    for (uint64_t i = 0; i < 5; i++)
        cmd(e, child, C_SEQ, i);
    WAIT_FOR(g_sh.seqs, 5);
    /* The failure and then messages for the failed incarnation: they wait. */
    cmd(e, child, C_FAIL, 11);
    for (uint64_t i = 0; i < 3; i++)
        cmd(e, child, C_SEQ, i); /* the new incarnation's state starts at seq 0 */
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_FAILED);
    settle(); /* the three are held by the dormant actor */
    assert_int_equal(atomic_load(&g_sh.seqs), 5);
    assert_int_equal(call(e, sup, drop ? C_RESTART_DROP : C_RESTART, child), 0);
    WAIT_FOR(g_sh.inits, 3); /* sup, child, child again */
    if (!drop)
        WAIT_FOR(g_sh.seqs, 8);
    /* The same reference reaches the new incarnation. */
    cmd(e, child, C_SEQ, drop ? 0 : 3);
    WAIT_FOR(g_sh.seqs, drop ? 6 : 9);
    /* The restart monitored it again: a second failure is a second DOWN. */
    cmd(e, child, C_FAIL, 12);
    WAIT_FOR(g_sh.downs, 2);
    assert_int_equal(g_sh.down_target, child);
    assert_int_equal(g_sh.down_reason.code, 12);
    assert_int_equal(call(e, sup, C_RELEASE, child), 0);
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(atomic_load(&g_sh.seq_errors), 0);
    assert_int_equal(st.actors_restarted, 1);
    assert_int_equal(st.restart_dropped, drop ? 3 : 0);
    assert_int_equal(atomic_load(&g_sh.finis), 3); /* two child incarnations + sup */
}

static void restart_in_place_delivers_queued_messages_to_the_new_incarnation(void **s)
{
    (void)s;
    g_test = __func__;
    restart(false);
}

static void restart_in_place_can_count_and_drop_queued_messages(void **s)
{
    (void)s;
    g_test = __func__;
    restart(true);
}

static _Atomic uint64_t g_dead;
static void on_dead(void *user, const ax_msg_t *m)
{
    (void)user, (void)m;
    atomic_fetch_add(&g_dead, 1);
}

static void stale_refs_after_a_plain_stop_or_a_release_are_dead_letters(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    atomic_store(&g_dead, 0);
    ax_engine_t *e = make(2, 0);
    ax_engine_set_dead_letter_hook(e, on_dead, NULL);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t sup = spawn_on(e, 0, 0, NULL);
    ax_ref_t plain = spawn_on(e, 1, 0, NULL);
    ax_ref_t rs = spawn_on(e, 1, AX_SPAWN_F_RESTARTABLE, NULL);
    cmd(e, plain, C_STOP, 0);
    WAIT_FOR(g_sh.finis, 1);
    cmd(e, plain, C_NOP, 0);
    WAIT_FOR(g_dead, 1);
    /* Slot reuse: a new actor on the same worker; the old ref stays dead. */
    ax_ref_t again = spawn_on(e, 1, 0, NULL);
    assert_true(again != plain);
    cmd(e, plain, C_NOP, 0);
    WAIT_FOR(g_dead, 2);
    /* A restartable actor that is released: held messages, then the ref, dead. */
    cmd(e, rs, C_STOP, 0);
    WAIT_FOR(g_sh.finis, 2);
    cmd(e, rs, C_NOP, 0);
    cmd(e, rs, C_NOP, 0);
    settle();
    assert_int_equal(atomic_load(&g_dead), 2); /* held, not dead */
    assert_int_equal(call(e, sup, C_RELEASE, rs), 0);
    WAIT_FOR(g_dead, 4);
    cmd(e, rs, C_NOP, 0);
    WAIT_FOR(g_dead, 5);
    /* Restarting a released actor does nothing; its monitor gets DOWN. */
    assert_int_equal(call(e, sup, C_RESTART, rs), 0);
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_NO_ACTOR);
    finish(e, NULL);
    assert_int_equal(atomic_load(&g_sh.nops), 0);
}

/* ---- sponsors ------------------------------------------------------------------------ */

static ax_sponsor_t *sponsor(ax_engine_t *e, uint32_t res, uint64_t limit, uint32_t policy)
{
    ax_sponsor_limits_t l = {.size = sizeof l, .policy = policy};
    l.limit[res] = limit;
    ax_sponsor_t *sp = NULL;
    assert_int_equal(ax_sponsor_create(e, &l, &sp), 0);
    return sp;
}

/* A sponsored actor on worker 0 sends `per_call` messages in each of
 * `calls` commands to an actor on worker `to` under a 100-message budget
 * (fail-call policy): exactly 100 go, the rest answer -EDQUOT and are
 * counted, and the actor stays alive.  The engine is left running. */
static ax_engine_t *budget_run(ax_sponsor_t **psp, uint32_t to, uint32_t calls, uint64_t per_call)
{
    reset();
    ax_engine_t *e = make(2, 0);
    ax_sponsor_t *sp = *psp = sponsor(e, AX_RES_MSGS, 100, AX_SPONSOR_FAIL_CALL);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t a = spawn_on(e, 0, 0, sp);
    g_sh.spawned_ref = spawn_on(e, to, 0, NULL);
    for (uint32_t i = 0; i < calls; i++)
        assert_int_equal(call(e, a, C_SEND_N, per_call), 0);
    uint64_t over = calls * per_call - 100;
    assert_int_equal(atomic_load(&g_sh.ok_sends), 100);
    assert_int_equal(atomic_load(&g_sh.edquot), over);
    assert_int_equal(atomic_load(&g_sh.other_err), 0);
    ax_sponsor_stats_t ss;
    assert_int_equal(ax_sponsor_stats(sp, &ss), 0);
    assert_int_equal(ss.used[AX_RES_MSGS], 100);
    assert_int_equal(ss.limit[AX_RES_MSGS], 100);
    assert_int_equal(ss.quota_failures, over);
    assert_int_equal(ss.actors_live, 1);
    cmd(e, a, C_NOP, 0); /* the policy was fail-call: still alive */
    WAIT_FOR(g_sh.nops, 1);
    return e;
}

static void sponsor_message_budget_answers_edquot_and_counts(void **s)
{
    (void)s;
    g_test = __func__;
    ax_sponsor_t *sp;
    ax_engine_t *e = budget_run(&sp, 1, 2, 60); /* to the other worker, through its ring */
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(st.quota_failures, 20);
    ax_sponsor_stats_t ss;
    assert_int_equal(ax_sponsor_stats(sp, &ss), 0);
    assert_int_equal(ss.actors_live, 0);
    ax_sponsor_destroy(sp);
}

/* The send's fast path charges the lease before it looks for a slot and
 * gives the charge back when it finds none (issue 14: here the local FIFO
 * is full at 64 and grows in the slow path, which charges again).  A lost
 * give-back would let fewer than the budget's 100 sends through. */
static void sponsor_message_budget_is_exact_when_the_fifo_grows(void **s)
{
    (void)s;
    g_test = __func__;
    ax_sponsor_t *sp;
    ax_engine_t *e = budget_run(&sp, 0, 1, 120); /* same worker: through the local FIFO */
    finish(e, NULL);
    ax_sponsor_destroy(sp);
}

static void sponsor_fail_actor_policy_stops_the_actor_with_reason_quota(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    ax_sponsor_t *sp = sponsor(e, AX_RES_MSGS, 10, AX_SPONSOR_FAIL_ACTOR);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t obs = spawn_on(e, 1, 0, NULL), a = spawn_on(e, 0, 0, sp);
    g_sh.spawned_ref = obs;
    assert_int_equal(call(e, obs, C_MONITOR, a), 0);
    sync_to(e, obs, a);
    cmd(e, a, C_SEND_N, 20);
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_QUOTA);
    assert_int_equal(g_sh.down_reason.code, AX_RES_MSGS);
    /* every call past the budget failed: nothing was sent silently */
    assert_int_equal(atomic_load(&g_sh.ok_sends), 10);
    assert_int_equal(atomic_load(&g_sh.edquot), 10);
    finish(e, NULL);
    ax_sponsor_destroy(sp);
}

static void sponsor_spawn_budget_is_inherited_by_children(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    ax_sponsor_t *sp = sponsor(e, AX_RES_SPAWNS, 4, AX_SPONSOR_FAIL_CALL);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t a = spawn_on(e, 0, 0, sp); /* 1 of 4 */
    assert_int_equal(call(e, a, C_SPAWN_N, 5), 0);
    assert_int_equal(atomic_load(&g_sh.spawned_ok), 3);
    assert_int_equal(atomic_load(&g_sh.edquot), 2);
    WAIT_FOR(g_sh.sponsor_match, 3);
    ax_sponsor_stats_t ss;
    assert_int_equal(ax_sponsor_stats(sp, &ss), 0);
    assert_int_equal(ss.used[AX_RES_SPAWNS], 4);
    assert_int_equal(ss.actors_live, 4);
    assert_true(ss.used[AX_RES_BYTES] >= 4 * sizeof(probe_t));
    /* from outside too */
    ax_spawn_opts_t o = {.size = sizeof o, .sponsor = sp};
    ax_ref_t r;
    assert_int_equal(ax_engine_spawn(e, probe, 8, &o, &r), -EDQUOT);
    finish(e, NULL);
    ax_sponsor_destroy(sp);
}

static void sponsor_byte_budget_refuses_blobs(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(1, 0);
    /* The actor itself costs its header and state (at most 4 KiB), then
     * blobs of 1000 bytes until the budget is spent. */
    ax_sponsor_t *sp = sponsor(e, AX_RES_BYTES, 10000, AX_SPONSOR_FAIL_CALL);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t a = spawn_on(e, 0, 0, sp);
    ax_sponsor_stats_t ss;
    assert_int_equal(ax_sponsor_stats(sp, &ss), 0);
    uint64_t own = ss.used[AX_RES_BYTES];
    assert_true(own >= sizeof(probe_t) && own < 4096);
    uint64_t fit = (10000 - own) / 1000;
    assert_int_equal(call(e, a, C_BLOB_N, fit + 2), 0);
    assert_int_equal(atomic_load(&g_sh.ok_sends), fit);
    assert_int_equal(atomic_load(&g_sh.edquot), 2);
    assert_int_equal(ax_sponsor_stats(sp, &ss), 0);
    assert_int_equal(ss.used[AX_RES_BYTES], own + fit * 1000);
    assert_int_equal(ss.quota_failures, 2);
    finish(e, NULL);
    ax_sponsor_destroy(sp);
}

static void sponsor_byte_budget_counts_overflowed_messages(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    g_ring_slots = 8;
    ax_engine_t *e = make(2, 0);
    g_ring_slots = 0;
    ax_sponsor_t *sp = sponsor(e, AX_RES_BYTES, 4096 + 64 * 20, AX_SPONSOR_FAIL_CALL);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t a = spawn_on(e, 0, 0, sp), busy = spawn_on(e, 1, 0, NULL);
    ax_sponsor_stats_t ss;
    assert_int_equal(ax_sponsor_stats(sp, &ss), 0);
    uint64_t own = ss.used[AX_RES_BYTES];
    g_sh.spawned_ref = busy;
    cmd(e, busy, C_SPIN, 500); /* worker 1 drains nothing meanwhile */
    sleep_us(50000);
    assert_int_equal(call(e, a, C_SEND_N, 300), 0);
    uint64_t ok = atomic_load(&g_sh.ok_sends), dq = atomic_load(&g_sh.edquot);
    assert_int_equal(ok + dq, 300);
    assert_int_equal(atomic_load(&g_sh.other_err), 0);
    assert_true(dq > 0); /* the ring filled, the overflow queue ran out of budget */
    assert_int_equal(ax_sponsor_stats(sp, &ss), 0);
    assert_true(ss.used[AX_RES_BYTES] > own);
    assert_true(ss.used[AX_RES_BYTES] <= ss.limit[AX_RES_BYTES]);
    assert_int_equal((ss.used[AX_RES_BYTES] - own) % sizeof(ax_msg_t), 0);
    assert_int_equal(ss.quota_failures, dq);
    finish(e, NULL);
    ax_sponsor_destroy(sp);
}

static void sponsor_cpu_budget_stops_a_spinning_actor(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    /* Generous margins: the spin is wall time on a shared machine. */
    ax_sponsor_t *sp = sponsor(e, AX_RES_CPU_NS, 200 * 1000000ull, AX_SPONSOR_FAIL_CALL);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t obs = spawn_on(e, 1, 0, NULL), a = spawn_on(e, 0, 0, sp);
    assert_int_equal(call(e, obs, C_MONITOR, a), 0);
    sync_to(e, obs, a);
    assert_int_equal(call(e, a, C_SPIN, 1), 0); /* within budget */
    cmd(e, a, C_SPIN, 300);                     /* over: stopped after it */
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_QUOTA);
    assert_int_equal(g_sh.down_reason.code, AX_RES_CPU_NS);
    ax_sponsor_stats_t ss;
    assert_int_equal(ax_sponsor_stats(sp, &ss), 0);
    assert_true(ss.used[AX_RES_CPU_NS] >= 1000000ull);
    assert_true(ss.used[AX_RES_CPU_NS] <= ss.limit[AX_RES_CPU_NS]);
    finish(e, NULL);
    ax_sponsor_destroy(sp);
}

static void sponsor_revoke_kills_its_actors_and_cancels_timers_and_reads(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    assert_int_equal(pipe(g_pipe), 0);
    ax_engine_t *e = make(2, 0);
    ax_sponsor_t *sp = sponsor(e, AX_RES_MSGS, 0, AX_SPONSOR_FAIL_CALL); /* unbounded, revocable */
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t obs = spawn_on(e, 0, 0, NULL);
    ax_ref_t kids[4];
    for (uint32_t i = 0; i < 4; i++) {
        kids[i] = spawn_on(e, i % 2, i == 3 ? AX_SPAWN_F_RESTARTABLE : 0, sp);
        assert_int_equal(call(e, obs, C_MONITOR, kids[i]), 0);
        sync_to(e, obs, kids[i]);
        cmd(e, kids[i], C_IO, 0);
    }
    WAIT_FOR(g_sh.io_started, 4);
    WAIT_FOR(g_sh.ticks, 4); /* the timers run */
    assert_int_equal(ax_sponsor_revoke(sp), 0);
    assert_int_equal(ax_sponsor_revoke(sp), 0); /* idempotent */
    WAIT_FOR(g_sh.downs, 4);
    assert_int_equal(g_sh.down_kinds[AX_REASON_KILLED], 4);
    uint64_t ticks = atomic_load(&g_sh.ticks);
    settle();
    assert_int_equal(atomic_load(&g_sh.ticks), ticks); /* no timer fires any more */
    ax_sponsor_stats_t ss;
    assert_int_equal(ax_sponsor_stats(sp, &ss), 0);
    assert_int_equal(ss.revoked, 1);
    assert_int_equal(ss.killed_by_revoke, 4);
    assert_int_equal(ss.actors_live, 0);
    ax_spawn_opts_t o = {.size = sizeof o, .sponsor = sp};
    ax_ref_t r;
    assert_int_equal(ax_engine_spawn(e, probe, 8, &o, &r), -EDQUOT);
    ax_worker_stats_t st;
    /* The pending reads were cancelled: the engine can go idle and stop. */
    finish(e, &st);
    assert_true(st.io_cancelled >= 8); /* 4 timers + 4 reads */
    assert_int_equal(atomic_load(&g_sh.finis), 5);
    ax_sponsor_destroy(sp);
    close(g_pipe[0]);
    close(g_pipe[1]);
}

/* ---- cancellation -------------------------------------------------------------------- */

static void completion_posted_for_a_failed_incarnation_never_reaches_the_next(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(1, 8); /* batch 8: the C_FAIL waits a turn */
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t sup = spawn_on(e, 0, 0, NULL);
    ax_ref_t child = spawn_on(e, 0, AX_SPAWN_F_RESTARTABLE, NULL);
    assert_int_equal(call(e, sup, C_MONITOR, child), 0);
    sync_to(e, sup, child);
    cmd(e, child, C_FLOOD_FAIL, 0);
    WAIT_FOR(g_sh.downs, 1);
    assert_int_equal(g_sh.down_reason.kind, AX_REASON_FAILED);
    assert_int_equal(call(e, sup, C_RESTART, child), 0);
    WAIT_FOR(g_sh.inits, 3);
    settle();
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(atomic_load(&g_sh.ticks), 0);
    assert_int_equal(st.io_cancelled, 1); /* the tick posted behind C_FAIL */
}

static void completion_posted_before_a_kill_and_restart_is_cancelled_in_the_fifo(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    atomic_store(&g_ready_sent, 0);
    ax_engine_t *e = make(2, 8); /* batch 8: the FIFO drains slowly */
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t sup = spawn_on(e, 1, 0, NULL);
    ax_ref_t child = spawn_on(e, 0, AX_SPAWN_F_RESTARTABLE, NULL);
    g_sh.spawned_ref = sup;
    uint64_t rcs = atomic_load(&g_sh.rc_events);
    cmd(e, child, C_FLOOD_SLOW, 0);
    WAIT_FOR(g_sh.rc_events, rcs + 1); /* kill + restart sent */
    assert_int_equal((int64_t)atomic_load(&g_sh.last_rc), 0);
    WAIT_FOR(g_sh.inits, 3);
    WAIT_FOR(g_sh.nops, 3000); /* the rest reached the new incarnation */
    settle();
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(atomic_load(&g_sh.ticks), 0);
    assert_true(st.io_cancelled >= 1);
    assert_int_equal(st.actors_restarted, 1);
}

static void failure_calls_fail_cleanly_when_the_arena_is_exhausted(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(1, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t w = spawn_on(e, 0, 0, NULL), t = spawn_on(e, 0, 0, NULL);
    assert_int_equal(call(e, w, C_EXHAUST, t), 0);
    assert_true(g_sh.oom_blobs > 1000);
    assert_int_equal(g_sh.oom_rc[0], -ENOMEM);
    assert_int_equal(g_sh.oom_rc[1], -ENOMEM);
    assert_int_equal(g_sh.oom_rc[2], -ENOMEM);
    assert_int_equal(g_sh.oom_rc[3], 0); /* memory back: works again */
    tell(e, w, t, C_STOP, 0);
    WAIT_FOR(g_sh.downs, 1); /* exactly one: the failed monitor left nothing */
    settle();
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(atomic_load(&g_sh.downs), 1);
    assert_int_equal(atomic_load(&g_sh.exits), 0);
    assert_int_equal(st.downs_sent, 1);
}

static void requests_held_by_a_dormant_actor_are_answered_when_dropped(void **s)
{
    (void)s;
    g_test = __func__;
    reset();
    ax_engine_t *e = make(2, 0);
    assert_int_equal(ax_engine_start(e), 0);
    ax_ref_t sup = spawn_on(e, 0, 0, NULL);
    ax_ref_t child = spawn_on(e, 1, AX_SPAWN_F_RESTARTABLE, NULL);
    cmd(e, child, C_STOP, 0);
    WAIT_FOR(g_sh.finis, 1); /* dormant */
    ax_future_t *f = NULL;
    uint64_t v = 0;
    assert_int_equal(ax_engine_request(e, child, C_NOP, &v, sizeof v, 0, &f), 0);
    settle(); /* held: no answer yet */
    assert_int_equal(ax_future_poll(f), -EAGAIN);
    assert_int_equal(call(e, sup, C_RESTART_DROP, child), 0);
    assert_int_equal(ax_future_wait(f, 30000), 0);
    assert_int_equal(ax_future_result(f, NULL, NULL, 0, NULL), -ESRCH);
    ax_future_free(f);
    ax_worker_stats_t st;
    finish(e, &st);
    assert_int_equal(st.restart_dropped, 1);
    assert_int_equal(atomic_load(&g_sh.nops), 0);
}

static void failure_calls_reject_bad_arguments(void **s)
{
    (void)s;
    g_test = __func__;
    ax_engine_t *e = make(1, 0);
    ax_sponsor_limits_t bad = {.size = 3};
    ax_sponsor_t *sp = NULL;
    assert_int_equal(ax_sponsor_create(e, &bad, &sp), -EINVAL);
    bad.size = sizeof bad;
    bad.policy = 9;
    assert_int_equal(ax_sponsor_create(e, &bad, &sp), -EINVAL);
    assert_int_equal(ax_sponsor_create(NULL, NULL, &sp), -EINVAL);
    assert_int_equal(ax_sponsor_revoke(NULL), -EINVAL);
    assert_int_equal(ax_sponsor_stats(NULL, NULL), -EINVAL);
    ax_sponsor_destroy(NULL);
    ax_spawn_opts_t o = {.size = sizeof o, .flags = 0x100};
    ax_ref_t r;
    assert_int_equal(ax_engine_spawn(e, probe, 8, &o, &r), -EINVAL);
    o.flags = AX_SPAWN_F_MONITOR; /* no actor outside the engine to monitor from */
    assert_int_equal(ax_engine_spawn(e, probe, 8, &o, &r), -EINVAL);
    assert_int_equal(ax_engine_kill(e, AX_REF_NONE), -EINVAL);
    ax_engine_t *e2 = make(1, 0); /* another engine's sponsor */
    ax_sponsor_t *sp2 = NULL;
    assert_int_equal(ax_sponsor_create(e2, NULL, &sp2), 0);
    o.flags = 0;
    o.sponsor = sp2;
    assert_int_equal(ax_engine_spawn(e, probe, 8, &o, &r), -EINVAL);
    ax_engine_destroy(e2);
    ax_sponsor_destroy(sp2);
    assert_int_equal(ax_monitor(NULL, 1, NULL), -EINVAL);
    assert_int_equal(ax_demonitor(NULL, 1), -ENOENT);
    assert_null(ax_stop_reason(NULL));
    assert_string_equal(ax_reason_name(1234), "unknown");
    ax_engine_destroy(e);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, watchdog);
    if (getenv("AXON_TEST_FILTER"))
        cmocka_set_test_filter(getenv("AXON_TEST_FILTER"));
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(monitor_reports_failure_with_code_and_text_across_workers),
        T(monitor_reports_normal_stop_and_kill_with_the_killer),
        T(monitor_of_a_dead_actor_gives_down_no_such_actor_at_once),
        T(spawn_with_monitor_reports_an_init_failure_with_its_reason),
        T(demonitor_filters_a_down_already_queued_on_the_same_worker),
        T(demonitor_filters_a_down_in_flight_from_another_worker),
        T(demonitor_before_the_stop_means_no_down),
        T(link_failure_stops_the_peer_with_reason_linked),
        T(link_to_a_trapping_peer_delivers_exit_and_keeps_it_alive),
        T(normal_stop_and_unlinked_failure_do_not_propagate),
        T(restart_in_place_delivers_queued_messages_to_the_new_incarnation),
        T(restart_in_place_can_count_and_drop_queued_messages),
        T(stale_refs_after_a_plain_stop_or_a_release_are_dead_letters),
        T(sponsor_message_budget_answers_edquot_and_counts),
        T(sponsor_message_budget_is_exact_when_the_fifo_grows),
        T(sponsor_fail_actor_policy_stops_the_actor_with_reason_quota),
        T(sponsor_spawn_budget_is_inherited_by_children),
        T(sponsor_byte_budget_refuses_blobs),
        T(sponsor_byte_budget_counts_overflowed_messages),
        T(sponsor_cpu_budget_stops_a_spinning_actor),
        T(sponsor_revoke_kills_its_actors_and_cancels_timers_and_reads),
        T(completion_posted_for_a_failed_incarnation_never_reaches_the_next),
        T(completion_posted_before_a_kill_and_restart_is_cancelled_in_the_fifo),
        T(failure_calls_fail_cleanly_when_the_arena_is_exhausted),
        T(requests_held_by_a_dormant_actor_are_answered_when_dropped),
        T(failure_calls_reject_bad_arguments),
    };
    return cmocka_run_group_tests_name("engine/failure", tests, NULL, NULL);
}
