/* tools/bench/wl_pingpong.c - pingpong: two actors exchange a counter for n
 * round trips (Savina PingPong; the peers' pingpong).  One message per turn,
 * so no flow control is needed.
 *
 *   pingpong_local   ping and pong on worker 0: the same-worker send and
 *                    dispatch path; limit: same-thread dispatch of 2 actors
 *   pingpong_remote  ping on worker 0, pong on worker 1: every message
 *                    crosses cores; limit: the cache-line round trip
 *
 * Check: ping sees every value come back in order, and pong reports that it
 * received exactly n pings, each one more than the last.
 * Threading/memory: actor state only; run is read-only here.
 */
#include "bench.h"

enum { P_N };
static const bench_param_def_t pp_params[] = {
    {"n", 3000000, 200000, true, 1, UINT64_MAX / 4, "round trips"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_PING, T_PONG, T_REPORT, T_COUNT };

typedef struct ping_state {
    bench_hdr_t h; /* a = pong's ref */
    uint64_t next;
    uint64_t t1; /* the clock stops at the last pong, before the report */
} ping_state_t;

typedef struct pong_state {
    bench_hdr_t h;
    uint64_t count;
    uint64_t bad; /* pings out of order */
} pong_state_t;

static void pong_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    pong_state_t *s = st;
    switch (m->type) {
    case T_PING:
        s->count++;
        if (m->payload.u64[0] != s->count)
            s->bad++;
        bench_send_u64(ctx, s->h.run, ax_sender(ctx), T_PONG, m->payload.u64[0]);
        break;
    case T_REPORT:
        bench_send_u64(ctx, s->h.run, ax_sender(ctx), T_COUNT, s->bad ? UINT64_MAX : s->count);
        break;
    default:
        bench_fail(s->h.run, "pingpong: pong got unexpected message type %u", m->type);
    }
}

static void ping_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    ping_state_t *s = st;
    bench_run_t *run = s->h.run;
    const uint64_t n = run->p[P_N];
    switch (m->type) {
    case T_START:
        bench_start(run);
        s->next = 1;
        bench_send_u64(ctx, run, (ax_ref_t)s->h.a, T_PING, 1);
        break;
    case T_PONG:
        if (m->payload.u64[0] != s->next) {
            bench_fail(run, "pingpong: ping expected %llu back, got %llu",
                       (unsigned long long)s->next, (unsigned long long)m->payload.u64[0]);
            return;
        }
        if (s->next == n) {
            /* the clock stops here; the report round trip is not timed */
            s->t1 = bench_now_ns();
            bench_send_u64(ctx, run, (ax_ref_t)s->h.a, T_REPORT, 0);
            return;
        }
        if (bench_aborted(run))
            return;
        bench_send_u64(ctx, run, (ax_ref_t)s->h.a, T_PING, ++s->next);
        break;
    case T_COUNT: {
        uint64_t c = m->payload.u64[0];
        if (c != n) {
            bench_fail(run, "pingpong: pong received %s%llu pings, expected %llu",
                       c == UINT64_MAX ? "out-of-order " : "", (unsigned long long)c,
                       (unsigned long long)n);
            return;
        }
        bench_finish_at(run, 2 * n, s->t1);
        break;
    }
    default:
        bench_fail(run, "pingpong: ping got unexpected message type %u", m->type);
    }
}

static int pp_setup(bench_run_t *run, uint32_t pong_worker)
{
    ax_ref_t pong;
    bench_hdr_t h = {.run = run};
    int rc = bench_spawn_ext(run, pong_beh, sizeof(pong_state_t), pong_worker, &h, &pong);
    if (rc)
        return rc;
    h.a = pong;
    run->remote = pong_worker != 0;
    return bench_spawn_ext(run, ping_beh, sizeof(ping_state_t), 0, &h, &run->entry);
}

static int pp_setup_local(bench_run_t *run) { return pp_setup(run, 0); }
static int pp_setup_remote(bench_run_t *run) { return pp_setup(run, 1); }

const bench_workload_t bench_wl_pingpong_local = {
    .name = "pingpong_local",
    .group = "pingpong",
    .what = "2 actors on one worker exchange a counter (n round trips)",
    .unit = "msgs/s",
    .limit = BL_DISPATCH2,
    .min_workers = 1,
    .params = pp_params,
    .setup = pp_setup_local,
    .kick = bench_kick_entry,
};

const bench_workload_t bench_wl_pingpong_remote = {
    .name = "pingpong_remote",
    .group = "pingpong",
    .what = "2 actors on workers 0 and 1 exchange a counter (n round trips)",
    .unit = "msgs/s",
    .limit = BL_NONE,
    .limit_remote = BL_BOUNCE,
    .min_workers = 2,
    .params = pp_params,
    .setup = pp_setup_remote,
    .kick = bench_kick_entry,
};
