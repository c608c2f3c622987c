/* perf/bench_engine.c - engine microbenchmarks against the machine's limits
 * (issue 4), in one binary and one run so the ratios hold on a noisy VM:
 *
 *   limits/cacheline_rtt    ns per round trip of one cache line, 2 pinned threads
 *   limits/spsc_ring        bare SPSC ring of 64-byte slots, items/s
 *   limits/dispatch2        bare same-thread FIFO + indirect call between 2
 *                           actors, ns per dispatch (floor of local_send)
 *   limits/create           bare malloc + queue + dispatch + free, actors/s
 *                           (floor of spawn)
 *   engine/local_send       same-worker send + dispatch, ns per message
 *   fault/sponsored_send    the same under a bounded sponsor (message budget)
 *   engine/remote_send      2 pinned workers, one-way, items/s
 *   engine/pingpong_rtt     cross-worker round trip, ns
 *   engine/wake_rtt         round trip between two parked workers, us
 *   engine/spawn            spawn + one message + stop, actors/s (items/s)
 *   engine/idle_actor_bytes 1,000,000 idle actors: arena (and RSS) bytes each
 *
 * Every engine figure uses manual time stamped inside the actors, so engine
 * creation and thread start are never timed.  Cross-worker benchmarks sample
 * the vCPU placement before and after (counter far: 0 near, 1 far, 0.5 mixed)
 * and measure their own limit in the same call (counters pct_of_ring,
 * x_bounce, x_dispatch), because this VM's host moves its vCPUs.
 *
 * Threading: each benchmark call creates and destroys its own engine(s);
 * actors hand results back with sem_post.  Memory: freed per call.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "axon/axon.h"
#include "axon/failure.h"
#include "axon_bench.h"
#include "limits.h"

/* ---- shared plumbing ------------------------------------------------------------- */

typedef struct eb_run {
    sem_t done;
    _Atomic int failed;
    char why[200];
    uint64_t n;       /* iterations asked for */
    uint64_t t0, t1;  /* stamped by actors */
    uint64_t c0, c1;  /* the stamping thread's CPU time (blob benchmarks) */
    uint64_t window, chunk;
    _Atomic uint64_t counter; /* for actors that report by count */
    ax_ref_t peer;
} eb_run_t;

static uint64_t eb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread: unlike the wall clock, it leaves out the
 * time the worker was preempted, which on a loaded machine dominates. */
static uint64_t eb_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void eb_fail(eb_run_t *r, const char *what, int rc)
{
    int z = 0;
    if (atomic_compare_exchange_strong(&r->failed, &z, 1)) {
        snprintf(r->why, sizeof r->why, "%s: %s", what, strerror(rc < 0 ? -rc : rc));
        sem_post(&r->done);
    }
}

static void eb_done(eb_run_t *r)
{
    r->t1 = eb_now();
    sem_post(&r->done); /* pairs with sem_wait in eb_wait: t0/t1 visible */
}

static int eb_engine(uint32_t workers, int32_t spin_us, uint32_t max_actors, ax_engine_t **out)
{
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = workers;
    cfg.spin_us = spin_us;
    cfg.max_actors = max_actors;
    return ax_engine_create(&cfg, out);
}

static void eb_init_copy(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    memcpy(state, arg, len);
}

/* Spawn an actor whose state starts with an eb_run_t pointer. */
static int eb_spawn(ax_engine_t *e, ax_behaviour_fn fn, size_t size, uint32_t worker, eb_run_t *r,
                    ax_ref_t *out)
{
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = worker,
                         .init = eb_init_copy, .arg = &r, .arg_len = sizeof r};
    return ax_engine_spawn(e, fn, size, &o, out);
}

static long eb_rss_kib(void);

/* What eb_go reads after the actors finished and before the engine stops
 * (a stopped engine has run every fini: its actors are gone). */
typedef struct eb_snap {
    ax_worker_stats_t w0;
    long rss_kib;
} eb_snap_t;

/* Start, kick `to` with type 1, wait (30 s at most), snapshot (if snap is not
 * NULL), stop.  0 or -errno. */
static int eb_go_snap(ax_engine_t *e, eb_run_t *r, ax_ref_t to, axon_bench_state *st,
                      eb_snap_t *snap)
{
    int rc = ax_engine_start(e);
    if (rc) {
        axon_bench_skip(st, "ax_engine_start failed");
        return rc;
    }
    uint64_t z = 0;
    rc = ax_engine_send(e, to, 1, &z, sizeof z);
    if (rc == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 30;
        while ((rc = sem_timedwait(&r->done, &ts)) < 0 && errno == EINTR)
            ;
        if (rc < 0) {
            fprintf(stderr, "bench_engine: no result after 30 s (lost message or wakeup?)\n");
            axon_bench_skip(st, "timed out after 30 s");
            abort(); /* a hung engine cannot be stopped cleanly */
        }
        if (snap) {
            /* a running worker publishes its arena use when it goes idle:
             * give it 50 ms to get there */
            struct timespec nap = {0, 50 * 1000 * 1000};
            nanosleep(&nap, NULL);
            snap->rss_kib = eb_rss_kib();
            ax_engine_worker_stats(e, 0, &snap->w0, NULL);
        }
    }
    ax_engine_stop(e);
    ax_engine_wait(e);
    if (atomic_load(&r->failed)) {
        axon_bench_skip(st, r->why);
        return -EIO;
    }
    return rc;
}

static int eb_go(ax_engine_t *e, eb_run_t *r, ax_ref_t to, axon_bench_state *st)
{
    return eb_go_snap(e, r, to, st, NULL);
}

/* Best placement sample of this process: "far" is relative to it. */
static double eb_best_rtt;

static void eb_place(axon_bench_state *st, int before)
{
    int a, b;
    double rtt = 0;
    if (ax_limits_pick_cpus(&a, &b) < 0)
        return;
    int p0 = ax_limits_sample_placement(a, b, 2.5, &eb_best_rtt, &rtt);
    int p = ax_limits_placement_merge(before, p0);
    axon_bench_counter(st, "far", p == AX_PLACE_FAR ? 1.0 : p == AX_PLACE_MIXED ? 0.5 : 0.0,
                       AXON_COUNTER_PLAIN);
    axon_bench_counter(st, "xcore_rtt_ns", rtt, AXON_COUNTER_PLAIN);
}

static int eb_place_before(void)
{
    int a, b;
    double rtt;
    if (ax_limits_pick_cpus(&a, &b) < 0)
        return AX_PLACE_UNKNOWN;
    if (eb_best_rtt <= 0) /* calibrate: the best of 10 samples is "near" */
        for (int i = 0; i < 9; i++)
            ax_limits_sample_placement(a, b, 2.5, &eb_best_rtt, &rtt);
    return ax_limits_sample_placement(a, b, 2.5, &eb_best_rtt, &rtt);
}

/* ---- limits ------------------------------------------------------------------------ */

static void bm_cacheline_rtt(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    int a, b;
    double ns;
    if (ax_limits_pick_cpus(&a, &b) < 0) {
        axon_bench_skip(st, "needs 2 CPUs");
        return;
    }
    int p = eb_place_before();
    if (ax_limits_cacheline_rtt(a, b, iters, &ns) < 0) {
        axon_bench_skip(st, "cache-line bounce failed (pinning?)");
        return;
    }
    axon_bench_set_iteration_time(st, ns / 1e9);
    eb_place(st, p);
}

static void bm_spsc_ring(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    int a, b;
    double ns;
    if (ax_limits_pick_cpus(&a, &b) < 0) {
        axon_bench_skip(st, "needs 2 CPUs");
        return;
    }
    int p = eb_place_before();
    int rc = ax_limits_spsc_ring(a, b, iters, 256, &ns);
    if (rc < 0) {
        axon_bench_skip(st, rc == -EIO ? "SPSC checksum mismatch" : "SPSC ring failed");
        return;
    }
    axon_bench_set_iteration_time(st, ns / 1e9);
    axon_bench_items(st, (int64_t)iters);
    eb_place(st, p);
}

/* The same-thread floors axon-bench also measures (perf/limits.c), so that
 * engine/local_send and engine/spawn have theirs in the same run. */
static void bm_dispatch2(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    double ns;
    if (ax_limits_dispatch(2, iters, &ns) < 0) {
        axon_bench_skip(st, "bare dispatch failed (out of memory?)");
        return;
    }
    axon_bench_set_iteration_time(st, ns / 1e9);
}

static void bm_create(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    double ns;
    if (ax_limits_create(iters, &ns) < 0) {
        axon_bench_skip(st, "bare create failed (out of memory?)");
        return;
    }
    axon_bench_set_iteration_time(st, ns / 1e9);
    axon_bench_items(st, (int64_t)iters);
}

/* ---- engine/local_send: an actor sends itself n messages, one per turn ----------- */

enum { T_START = 1, T_MSG, T_ACK, T_PONG, T_CONT };

typedef struct eb_state {
    eb_run_t *r;
    uint64_t count, sent, acked;
    ax_ref_t peer;
    bool cont_pending;
} eb_state_t;

static void local_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    eb_run_t *r = s->r;
    uint64_t v = m->payload.u64[0];
    if (m->type == T_START) {
        r->t0 = eb_now();
        v = r->n;
    } else if (v == 0) {
        eb_done(r);
        return;
    }
    int rc = ax_send_u64(ctx, ax_self(ctx), T_MSG, v - 1);
    if (rc)
        eb_fail(r, "ax_send_u64 to self", rc);
}

static void bm_local_send(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    eb_run_t r = {.n = iters};
    ax_engine_t *e;
    ax_ref_t a;
    sem_init(&r.done, 0, 0);
    if (eb_engine(1, 0, 0, &e) < 0) {
        axon_bench_skip(st, "ax_engine_create failed");
        return;
    }
    if (eb_spawn(e, local_beh, sizeof(eb_state_t), 0, &r, &a) == 0 && eb_go(e, &r, a, st) == 0) {
        /* n sends + n dispatches after the start message */
        axon_bench_set_iteration_time(st, (double)(r.t1 - r.t0) / 1e9);
        if (iters >= 100000) {
            double ns;
            if (ax_limits_dispatch(2, iters, &ns) == 0)
                axon_bench_counter(st, "x_dispatch",
                                   (double)(r.t1 - r.t0) / ns, AXON_COUNTER_PLAIN);
        }
    }
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

/* ---- engine/local_send_blob: the same chain, each message a 64-byte blob -------------
 * ax_blob_alloc + ax_send_blob + dispatch + the engine's free after the
 * behaviour: the blob path end to end, with its checks (docs/memory.md). */

static void blob_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    eb_run_t *r = s->r;
    uint64_t v;
    if (m->type == T_START) {
        r->t0 = eb_now();
        r->c0 = eb_thread_cpu();
        v = r->n;
    } else {
        v = *(const uint64_t *)ax_msg_data(m);
        if (v == 0) {
            r->c1 = eb_thread_cpu();
            eb_done(r);
            return;
        }
    }
    uint64_t *b = ax_blob_alloc(ctx, 64);
    if (!b) {
        eb_fail(r, "ax_blob_alloc", -ENOMEM);
        return;
    }
    b[0] = v - 1;
    int rc = ax_send_blob(ctx, ax_self(ctx), T_MSG, b, 64);
    if (rc)
        eb_fail(r, "ax_send_blob to self", rc);
}

/* ---- engine/blob_alloc_free: ax_blob_alloc + ax_blob_free in one behaviour ----------- */

static void blob_af_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    eb_run_t *r = s->r;
    (void)m;
    r->t0 = eb_now();
    r->c0 = eb_thread_cpu();
    for (uint64_t i = 0; i < r->n; i++) {
        void *b = ax_blob_alloc(ctx, 64);
        if (!b) {
            eb_fail(r, "ax_blob_alloc", -ENOMEM);
            return;
        }
        __asm__ volatile("" : : "r"(b) : "memory");
        ax_blob_free(ctx, b);
    }
    r->c1 = eb_thread_cpu();
    eb_done(r);
}

static void bm_blob(axon_bench_state *st, uint64_t iters, ax_behaviour_fn fn)
{
    eb_run_t r = {.n = iters};
    ax_engine_t *e;
    ax_ref_t a;
    sem_init(&r.done, 0, 0);
    if (eb_engine(1, 0, 0, &e) < 0) {
        axon_bench_skip(st, "ax_engine_create failed");
        return;
    }
    if (eb_spawn(e, fn, sizeof(eb_state_t), 0, &r, &a) == 0 && eb_go(e, &r, a, st) == 0) {
        axon_bench_set_iteration_time(st, (double)(r.t1 - r.t0) / 1e9);
        /* the worker's CPU ns per iteration: robust to preemption */
        axon_bench_counter(st, "worker_cpu_ns", (double)(r.c1 - r.c0) / (double)iters,
                           AXON_COUNTER_PLAIN);
    }
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

/* ---- fault/sponsored_send: engine/local_send under a bounded sponsor -------------------
 * The sponsor bounds messages (the budget is the run's count plus a little,
 * so every send is checked against a real, finite budget and the lease
 * refills every few hundred sends), so the difference with
 * engine/local_send is what a sponsored send costs over an unsponsored one.
 * Issue 11's goal: at most 2 ns more. */
static void bm_sponsored_send(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    eb_run_t r = {.n = iters};
    ax_engine_t *e;
    ax_sponsor_t *sp = NULL;
    ax_ref_t a;
    sem_init(&r.done, 0, 0);
    if (eb_engine(1, 0, 0, &e) < 0) {
        axon_bench_skip(st, "ax_engine_create failed");
        sem_destroy(&r.done);
        return;
    }
    ax_sponsor_limits_t lim = {.size = sizeof lim, .policy = AX_SPONSOR_FAIL_CALL};
    lim.limit[AX_RES_MSGS] = iters + 16;
    if (ax_sponsor_create(e, &lim, &sp) < 0) {
        axon_bench_skip(st, "ax_sponsor_create failed");
    } else {
        eb_run_t *rp = &r;
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 0,
                             .init = eb_init_copy, .arg = &rp, .arg_len = sizeof rp,
                             .sponsor = sp};
        if (ax_engine_spawn(e, local_beh, sizeof(eb_state_t), &o, &a) == 0 &&
            eb_go(e, &r, a, st) == 0)
            axon_bench_set_iteration_time(st, (double)(r.t1 - r.t0) / 1e9);
    }
    ax_engine_destroy(e);
    ax_sponsor_destroy(sp);
    sem_destroy(&r.done);
}

static void bm_local_send_blob(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    bm_blob(st, iters, blob_beh);
}

static void bm_blob_alloc_free(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    bm_blob(st, iters, blob_af_beh);
}

/* ---- engine/remote_send: w0 -> w1 one way, windowed ----------------------------------- */

static void rs_consumer(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    eb_run_t *r = s->r;
    (void)m;
    s->count++;
    if (s->count == r->n) {
        eb_done(r);
        return;
    }
    if (s->count % (r->window / 4) == 0) {
        int rc = ax_send_u64(ctx, ax_sender(ctx), T_ACK, s->count);
        if (rc)
            eb_fail(r, "ack", rc);
    }
}

static void rs_pump(ax_ctx_t *ctx, eb_state_t *s)
{
    eb_run_t *r = s->r;
    uint64_t k = 0;
    while (k < r->chunk && s->sent < r->n && s->sent - s->acked < r->window) {
        int rc = ax_send_u64(ctx, s->peer, T_MSG, s->sent);
        if (rc) {
            eb_fail(r, "ax_send_u64 to the other worker", rc);
            return;
        }
        s->sent++;
        k++;
    }
    if (s->sent < r->n && s->sent - s->acked < r->window) {
        s->cont_pending = true;
        int rc = ax_send_u64(ctx, ax_self(ctx), T_CONT, 0);
        if (rc)
            eb_fail(r, "continue", rc);
    }
}

static void rs_producer(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    switch (m->type) {
    case T_START:
        s->peer = s->r->peer;
        s->r->t0 = eb_now();
        rs_pump(ctx, s);
        break;
    case T_CONT:
        s->cont_pending = false;
        rs_pump(ctx, s);
        break;
    case T_ACK:
        if (m->payload.u64[0] > s->acked)
            s->acked = m->payload.u64[0];
        if (!s->cont_pending)
            rs_pump(ctx, s);
        break;
    default:
        break;
    }
}

static void bm_remote_send(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    eb_run_t r = {.n = iters, .window = 8192, .chunk = 1024};
    ax_engine_t *e;
    ax_ref_t prod;
    sem_init(&r.done, 0, 0);
    int p = eb_place_before();
    if (eb_engine(2, 0, 0, &e) < 0) {
        axon_bench_skip(st, "ax_engine_create with 2 workers failed");
        return;
    }
    if (eb_spawn(e, rs_consumer, sizeof(eb_state_t), 1, &r, &r.peer) == 0 &&
        eb_spawn(e, rs_producer, sizeof(eb_state_t), 0, &r, &prod) == 0 &&
        eb_go(e, &r, prod, st) == 0) {
        double ns = (double)(r.t1 - r.t0);
        axon_bench_set_iteration_time(st, ns / 1e9);
        axon_bench_items(st, (int64_t)iters);
        ax_worker_stats_t ws;
        ax_engine_worker_stats(e, 0, &ws, NULL);
        axon_bench_counter(st, "ring_full", (double)ws.ring_full, AXON_COUNTER_PLAIN);
        int a, b;
        double rns;
        if (iters >= 100000 && ax_limits_pick_cpus(&a, &b) == 0 &&
            ax_limits_spsc_ring(a, b, iters, 256, &rns) == 0)
            axon_bench_counter(st, "pct_of_ring", 100.0 * rns / ns, AXON_COUNTER_PLAIN);
        eb_place(st, p);
    }
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

/* ---- engine/pingpong_rtt and engine/wake_rtt ------------------------------------------ */

static void pp_pong(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    int rc = ax_send_u64(ctx, ax_sender(ctx), T_PONG, m->payload.u64[0]);
    if (rc)
        eb_fail(s->r, "pong", rc);
}

static void pp_ping(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    eb_run_t *r = s->r;
    if (m->type == T_START) {
        r->t0 = eb_now();
    } else if (++s->count == r->n) {
        eb_done(r);
        return;
    }
    int rc = ax_send_u64(ctx, r->peer, T_MSG, s->count);
    if (rc)
        eb_fail(r, "ping", rc);
}

static int pp_run(axon_bench_state *st, uint64_t iters, int32_t spin_us, double *ns_out,
                  uint64_t *parks)
{
    eb_run_t r = {.n = iters};
    ax_engine_t *e;
    ax_ref_t ping;
    int rc;
    sem_init(&r.done, 0, 0);
    if ((rc = eb_engine(2, spin_us, 0, &e)) < 0) {
        axon_bench_skip(st, "ax_engine_create with 2 workers failed");
        sem_destroy(&r.done);
        return rc;
    }
    if ((rc = eb_spawn(e, pp_pong, sizeof(eb_state_t), 1, &r, &r.peer)) == 0 &&
        (rc = eb_spawn(e, pp_ping, sizeof(eb_state_t), 0, &r, &ping)) == 0 &&
        (rc = eb_go(e, &r, ping, st)) == 0) {
        *ns_out = (double)(r.t1 - r.t0);
        ax_worker_stats_t ws;
        ax_engine_stats(e, &ws);
        *parks = ws.parks;
    }
    ax_engine_destroy(e);
    sem_destroy(&r.done);
    return rc;
}

static void bm_pingpong_rtt(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    double ns;
    uint64_t parks;
    int p = eb_place_before();
    if (pp_run(st, iters, 0, &ns, &parks) < 0)
        return;
    axon_bench_set_iteration_time(st, ns / 1e9);
    int a, b;
    double bns;
    if (iters >= 10000 && ax_limits_pick_cpus(&a, &b) == 0 &&
        ax_limits_cacheline_rtt(a, b, iters, &bns) == 0)
        axon_bench_counter(st, "x_bounce", ns / bns, AXON_COUNTER_PLAIN);
    eb_place(st, p);
}

static void bm_wake_rtt(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    double ns;
    uint64_t parks;
    /* spin_us < 0: a worker with nothing to do parks at once, so every
     * message wakes a sleeping worker */
    if (pp_run(st, iters, -1, &ns, &parks) < 0)
        return;
    axon_bench_set_iteration_time(st, ns / 1e9);
    axon_bench_counter(st, "parks_per_rt", (double)parks / (double)iters, AXON_COUNTER_PLAIN);
}

/* ---- engine/spawn: spawn + one message + stop ------------------------------------------- */

static void sp_child(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    (void)m;
    /* relaxed: read by the driver on the same worker, or after sem_post */
    atomic_fetch_add_explicit(&s->r->counter, 1, memory_order_relaxed);
    ax_stop_self(ctx);
}

static void sp_driver(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    eb_run_t *r = s->r;
    if (m->type == T_START)
        r->t0 = eb_now();
    uint64_t done = atomic_load_explicit(&r->counter, memory_order_relaxed);
    if (done == r->n) {
        eb_done(r);
        return;
    }
    for (uint64_t k = 0; k < r->chunk && s->sent < r->n && s->sent - done < r->window; k++) {
        ax_spawn_opts_t o = {.size = sizeof o, .init = eb_init_copy, .arg = &r, .arg_len = sizeof r};
        ax_ref_t c;
        int rc = ax_spawn(ctx, sp_child, sizeof(eb_state_t), &o, &c);
        if (rc == 0)
            rc = ax_send_u64(ctx, c, T_MSG, s->sent);
        if (rc) {
            eb_fail(r, "spawn + send", rc);
            return;
        }
        s->sent++;
    }
    int rc = ax_send_u64(ctx, ax_self(ctx), T_CONT, 0); /* after the children's messages */
    if (rc)
        eb_fail(r, "continue", rc);
}

static void bm_spawn(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    eb_run_t r = {.n = iters, .chunk = 1000, .window = 10000};
    ax_engine_t *e;
    ax_ref_t d;
    sem_init(&r.done, 0, 0);
    if (eb_engine(1, 0, 0, &e) < 0) {
        axon_bench_skip(st, "ax_engine_create failed");
        return;
    }
    if (eb_spawn(e, sp_driver, sizeof(eb_state_t), 0, &r, &d) == 0 && eb_go(e, &r, d, st) == 0) {
        axon_bench_set_iteration_time(st, (double)(r.t1 - r.t0) / 1e9);
        axon_bench_items(st, (int64_t)iters);
        if (iters >= 100000) {
            double ns;
            if (ax_limits_create(iters, &ns) == 0)
                axon_bench_counter(st, "x_create", (double)(r.t1 - r.t0) / ns, AXON_COUNTER_PLAIN);
        }
    }
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

/* ---- engine/idle_actor_bytes ---------------------------------------------------------------- */

static void idle_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    (void)ctx;
    (void)st;
    (void)m; /* never gets a message: it only exists */
}

static void idle_driver(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    eb_state_t *s = st;
    eb_run_t *r = s->r;
    (void)m;
    if (m->type == T_START)
        r->t0 = eb_now();
    for (uint64_t k = 0; k < 10000 && s->sent < r->n; k++, s->sent++) {
        ax_ref_t c;
        int rc = ax_spawn(ctx, idle_beh, 0, NULL, &c);
        if (rc) {
            eb_fail(r, "ax_spawn of an idle actor", rc);
            return;
        }
    }
    if (s->sent == r->n) {
        eb_done(r);
        return;
    }
    int rc = ax_send_u64(ctx, ax_self(ctx), T_CONT, 0);
    if (rc)
        eb_fail(r, "continue", rc);
}

static long eb_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

#define IDLE_ACTORS 1000000u

static void bm_idle_actor_bytes(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    (void)iters; /* registered with 1 iteration: the figure is the counter */
    eb_run_t r = {.n = IDLE_ACTORS};
    ax_engine_t *e;
    ax_ref_t d;
    sem_init(&r.done, 0, 0);
    /* room for the driver and a million actors */
    if (eb_engine(1, 0, IDLE_ACTORS + 1024, &e) < 0) {
        axon_bench_skip(st, "ax_engine_create failed");
        return;
    }
    ax_worker_stats_t before;
    eb_snap_t after;
    if (eb_spawn(e, idle_driver, sizeof(eb_state_t), 0, &r, &d) == 0) {
        ax_engine_worker_stats(e, 0, &before, NULL);
        long rss0 = eb_rss_kib();
        /* the driver exists before `before`; its start message then spawns
         * the million, and the snapshot is taken while they are alive */
        if (eb_go_snap(e, &r, d, st, &after) == 0) {
            axon_bench_set_iteration_time(st, (double)(r.t1 - r.t0) / 1e9);
            axon_bench_counter(st, "arena_bytes_per_actor",
                               (double)(after.w0.arena_used_bytes - before.arena_used_bytes) /
                                   IDLE_ACTORS,
                               AXON_COUNTER_PLAIN);
            axon_bench_counter(st, "rss_bytes_per_actor",
                               (double)(after.rss_kib - rss0) * 1024.0 / IDLE_ACTORS,
                               AXON_COUNTER_PLAIN);
            axon_bench_counter(st, "actors_live",
                               (double)(after.w0.actors_live - before.actors_live),
                               AXON_COUNTER_PLAIN);
        }
    }
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

/* A benchmark that times itself (manual time), reported in ns. */
static void *register_timed(const char *name, axon_bench_fn fn)
{
    void *b = axon_bench_register(name, fn, NULL);
    axon_bench_manual_time(b);
    axon_bench_unit_ns(b);
    return b;
}

AXON_BENCHMARK(register_engine_benchmarks)
{
    register_timed("limits/cacheline_rtt", bm_cacheline_rtt);
    register_timed("limits/spsc_ring", bm_spsc_ring);
    register_timed("limits/dispatch2", bm_dispatch2);
    register_timed("limits/create", bm_create);
    register_timed("engine/local_send", bm_local_send);
    register_timed("fault/sponsored_send", bm_sponsored_send);
    register_timed("engine/local_send_blob", bm_local_send_blob);
    register_timed("engine/blob_alloc_free", bm_blob_alloc_free);
    register_timed("engine/remote_send", bm_remote_send);
    register_timed("engine/pingpong_rtt", bm_pingpong_rtt);
    axon_bench_unit_us(register_timed("engine/wake_rtt", bm_wake_rtt));
    register_timed("engine/spawn", bm_spawn);
    void *b = register_timed("engine/idle_actor_bytes", bm_idle_actor_bytes);
    axon_bench_iterations(b, 1);
    axon_bench_unit_us(b);
}
