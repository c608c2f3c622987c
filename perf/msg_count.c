/* perf/msg_count.c - axon-msg-count: a fixed number of messages through the
 * engine's hot paths on one thread, for instruction counts under callgrind
 * (repeatable on a noisy machine, unlike time):
 *
 *   valgrind --tool=callgrind build/bin/axon-msg-count WORKLOAD N
 *
 * perf/scripts/instr-count.sh runs two N and divides the difference of the
 * instruction totals by the difference of the counts, so engine creation,
 * start-up and exit cancel out.  Workloads (the shapes of perf/bench_engine.c):
 *
 *   local_send    one actor sends itself a chain of N messages (ax_send_u64):
 *                 same-worker send + dispatch, per message
 *   remote_send   an actor on worker 0 sends N messages to one on worker 1,
 *                 1024 per dispatch, 2048 in flight, an ack every 512:
 *                 sender + receiver, per message
 *   remote_full   the same with 16384 in flight: the ring fills and most
 *                 sends take the overflow path (and later the copy into the
 *                 ring)
 *   pingpong      N round trips between an actor on worker 0 and one on
 *                 worker 1: both hops, per round trip
 *   pingpong_hop  the same, counting only the critical path of one hop:
 *                 from the start of worker 1's turn to the return of the
 *                 send of its reply (callgrind --collect-atstart=no; the
 *                 client requests turn collection on and off)
 *   spawn         N times: spawn an actor, send it one message, it stops;
 *                 per actor
 *   dispatch2     the bare-C floor of local_send (perf/limits.c), per dispatch
 *   create        the bare-C floor of spawn (malloc, queue, dispatch, free)
 *
 * How the engine runs: it is created but never started (as in
 * perf/bench_engine_turn.c); this thread runs each worker's whole loop turn
 * (ax__run_turn: preamble, drains, io poll, flush) in a fixed order, with
 * the worker's io_uring set up as the worker thread would.  So every
 * instruction a worker executes per message is counted except the idle spin
 * between turns (a few loads per check, and workers under valgrind would
 * spin an unrepeatable number of times).  The order: remote_send runs
 * worker 0's turn, then worker 1's until it finds nothing; pingpong
 * alternates one turn each (one hop per turn, as in a real exchange).
 *
 * Prints "WORKLOAD N units" and the engine's ring_full count (0 expected:
 * the workloads measure the ring path, not the overflow path).
 * Exit 0, 1 when the workload did not complete, 2 on bad arguments.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "limits.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define MC_HAVE_CALLGRIND 1
#endif
#endif
#ifndef MC_HAVE_CALLGRIND
#define CALLGRIND_TOGGLE_COLLECT ((void)0)
#endif

/* pingpong_hop: collection is on from the start of worker 1's turn until
 * pp_pong's send returned (or the turn ended without one). */
static bool mc_hop, mc_collecting;
static void mc_collect(bool on)
{
    if (mc_hop && on != mc_collecting) {
        CALLGRIND_TOGGLE_COLLECT;
        mc_collecting = on;
    }
}

enum { T_START = 1, T_MSG, T_ACK, T_CONT };

typedef struct mc_run {
    uint64_t n;
    uint64_t done;   /* units completed, written by the actors (one thread) */
    int failed;
    ax_ref_t peer;
} mc_run_t;

typedef struct mc_state {
    mc_run_t *r;
    uint64_t count, sent, acked;
    ax_ref_t peer;
    bool cont_pending;
} mc_state_t;

/* In flight: below the 4096-slot ring of 2 workers (no overflow), except
 * for remote_full, which keeps 4 rings' worth in flight. */
static uint64_t mc_window = 2048;
#define MC_WINDOW mc_window
#define MC_CHUNK 1024u

static void mc_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    memcpy(state, arg, len);
}

static int mc_spawn(ax_engine_t *e, ax_behaviour_fn fn, uint32_t worker, mc_run_t *r, ax_ref_t *out)
{
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = worker,
                         .init = mc_init, .arg = &r, .arg_len = sizeof r};
    return ax_engine_spawn(e, fn, sizeof(mc_state_t), &o, out);
}

/* ---- local_send -------------------------------------------------------------------- */

static void local_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    mc_state_t *s = st;
    uint64_t v = m->type == T_START ? s->r->n : m->payload.u64[0];
    if (m->type != T_START)
        s->r->done++;
    if (v == 0)
        return;
    if (ax_send_u64(ctx, ax_self(ctx), T_MSG, v - 1))
        s->r->failed = 1;
}

/* ---- remote_send --------------------------------------------------------------------- */

static void rs_consumer(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    mc_state_t *s = st;
    (void)m;
    s->r->done = ++s->count;
    if (s->count % (MC_WINDOW / 4) == 0 && ax_send_u64(ctx, ax_sender(ctx), T_ACK, s->count))
        s->r->failed = 1;
}

static void rs_pump(ax_ctx_t *ctx, mc_state_t *s)
{
    mc_run_t *r = s->r;
    uint64_t k = 0;
    while (k < MC_CHUNK && s->sent < r->n && s->sent - s->acked < MC_WINDOW) {
        if (ax_send_u64(ctx, s->peer, T_MSG, s->sent)) {
            r->failed = 1;
            return;
        }
        s->sent++;
        k++;
    }
    if (s->sent < r->n && s->sent - s->acked < MC_WINDOW) {
        s->cont_pending = true;
        if (ax_send_u64(ctx, ax_self(ctx), T_CONT, 0))
            r->failed = 1;
    }
}

static void rs_producer(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    mc_state_t *s = st;
    switch (m->type) {
    case T_START:
        s->peer = s->r->peer;
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

/* ---- pingpong ------------------------------------------------------------------------- */

static void pp_pong(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    mc_state_t *s = st;
    int rc = ax_send_u64(ctx, ax_sender(ctx), T_MSG, m->payload.u64[0]);
    mc_collect(false); /* pingpong_hop: the reply is stored */
    if (rc)
        s->r->failed = 1;
}

static void pp_ping(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    mc_state_t *s = st;
    mc_run_t *r = s->r;
    if (m->type != T_START && (r->done = ++s->count) == r->n)
        return;
    if (ax_send_u64(ctx, r->peer, T_MSG, s->count))
        r->failed = 1;
}

/* ---- spawn ------------------------------------------------------------------------------ */

static void sp_child(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    mc_state_t *s = st;
    (void)m;
    s->r->done++;
    ax_stop_self(ctx);
}

static void sp_driver(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    mc_state_t *s = st;
    mc_run_t *r = s->r;
    (void)m;
    for (uint64_t k = 0; k < 1000 && s->sent < r->n && s->sent - r->done < 10000; k++) {
        ax_spawn_opts_t o = {.size = sizeof o, .init = mc_init, .arg = &r, .arg_len = sizeof r};
        ax_ref_t c;
        if (ax_spawn(ctx, sp_child, sizeof(mc_state_t), &o, &c) ||
            ax_send_u64(ctx, c, T_MSG, s->sent)) {
            r->failed = 1;
            return;
        }
        s->sent++;
    }
    if (s->sent < r->n && ax_send_u64(ctx, ax_self(ctx), T_CONT, 0))
        r->failed = 1;
}

/* ---- driving ------------------------------------------------------------------------------ */

static ax_engine_t *mc_engine(uint32_t workers)
{
    ax_config_t cfg;
    ax_engine_t *e;
    ax_config_init(&cfg);
    cfg.workers = workers;
    /* Unpinned synthetic topology: the calling thread plays every worker. */
    snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "pack:1 core:%u pu:1", workers);
    if (ax_engine_create(&cfg, &e) < 0) {
        fprintf(stderr, "axon-msg-count: engine create: %s\n", ax_engine_last_error());
        return NULL;
    }
    for (uint32_t i = 0; i < workers; i++)
        ax__io_start(e->w[i]); /* as the worker thread would: io_poll runs for real */
    return e;
}

static void mc_engine_destroy(ax_engine_t *e)
{
    for (uint32_t i = 0; i < e->n; i++)
        ax__io_stop(e->w[i]);
    ax_engine_destroy(e);
}

/* Run the engine until r->done reaches r->n (or nothing moves).  0 or -EIO. */
static int mc_drive(ax_engine_t *e, mc_run_t *r, ax_ref_t start, int order)
{
    uint64_t z = 0;
    int rc = ax_engine_send(e, start, T_START, &z, sizeof z);
    if (rc < 0)
        return rc;
    uint32_t idle = 0;
    while (r->done < r->n && !r->failed && idle < 4) {
        uint32_t did = ax__run_turn(e->w[0]);
        if (e->n > 1) {
            uint32_t got;
            if (order == 0) { /* worker 1 drains everything it has */
                while ((got = ax__run_turn(e->w[1])) != 0)
                    did += got;
            } else {
                mc_collect(true);
                did += ax__run_turn(e->w[1]);
                mc_collect(false);
            }
        }
        idle = did ? 0 : idle + 1;
    }
    return r->done == r->n && !r->failed ? 0 : -EIO;
}

static int run_engine(const char *wl, uint64_t n, uint64_t *ring_full)
{
    mc_run_t r = {.n = n};
    ax_ref_t a = 0;
    int rc = -EINVAL, order = 1;
    mc_hop = strcmp(wl, "pingpong_hop") == 0;
    if (mc_hop)
        wl = "pingpong";
    if (strcmp(wl, "remote_full") == 0) {
        wl = "remote_send";
        mc_window = 16384;
    }
    uint32_t workers = strcmp(wl, "remote_send") == 0 || strcmp(wl, "pingpong") == 0 ? 2 : 1;
    ax_engine_t *e = mc_engine(workers);
    if (!e)
        return -ENOMEM;
    if (strcmp(wl, "local_send") == 0) {
        rc = mc_spawn(e, local_beh, 0, &r, &a);
    } else if (strcmp(wl, "remote_send") == 0) {
        order = 0;
        if ((rc = mc_spawn(e, rs_consumer, 1, &r, &r.peer)) == 0)
            rc = mc_spawn(e, rs_producer, 0, &r, &a);
    } else if (strcmp(wl, "pingpong") == 0) {
        if ((rc = mc_spawn(e, pp_pong, 1, &r, &r.peer)) == 0)
            rc = mc_spawn(e, pp_ping, 0, &r, &a);
    } else if (strcmp(wl, "spawn") == 0) {
        rc = mc_spawn(e, sp_driver, 0, &r, &a);
    }
    if (rc == 0)
        rc = mc_drive(e, &r, a, order);
    if (rc < 0)
        fprintf(stderr, "axon-msg-count: %s: %llu of %llu done%s\n", wl,
                (unsigned long long)r.done, (unsigned long long)n, r.failed ? " (a send failed)" : "");
    ax_worker_stats_t ws;
    ax_engine_stats(e, &ws);
    *ring_full = ws.ring_full;
    mc_engine_destroy(e);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const wls[] = {"local_send", "remote_send", "remote_full", "pingpong", "pingpong_hop",
                                      "spawn", "dispatch2", "create"};
    const char *wl = argc > 1 ? argv[1] : "";
    bool known = false;
    for (size_t i = 0; i < sizeof wls / sizeof wls[0]; i++)
        known |= strcmp(wl, wls[i]) == 0;
    char *end = NULL;
    unsigned long long n = argc > 2 ? strtoull(argv[2], &end, 10) : 0;
    if (argc != 3 || !known || !end || *end || n == 0 || n > (1ull << 40)) {
        fprintf(stderr, "usage: %s local_send|remote_send|remote_full|pingpong|pingpong_hop|spawn|dispatch2|create N\n"
                        "  N: messages (round trips, actors) to run, 1..2^40\n", argv[0]);
        return 2;
    }
    uint64_t ring_full = 0;
    double ns;
    int rc;
    if (strcmp(wl, "dispatch2") == 0)
        rc = ax_limits_dispatch(2, n, &ns);
    else if (strcmp(wl, "create") == 0)
        rc = ax_limits_create(n, &ns);
    else
        rc = run_engine(wl, n, &ring_full);
    if (rc < 0) {
        fprintf(stderr, "axon-msg-count: %s %llu failed: %s\n", wl, n, strerror(-rc));
        return 1;
    }
    printf("%s %llu units, ring_full %llu\n", wl, n, (unsigned long long)ring_full);
    return 0;
}
