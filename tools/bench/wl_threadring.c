/* tools/bench/wl_threadring.c - threadring: `actors` actors in a ring pass a
 * token `hops` times (Savina ThreadRing; the peers' threadring).
 *
 * Actor 0 (the master) spawns the others from its first message, in reverse
 * order so each knows its successor at spawn, closing the ring on itself.
 * By default every actor lives on worker 0 (axon's default placement: next
 * to the parent), which is the same-worker dispatch path; spread=1 puts actor
 * i on worker i % workers so every hop crosses cores.
 *
 * Check: the token reaches 0 at actor hops % actors, and a tally passed
 * around the ring afterwards counts hops + 1 token deliveries in all.
 */
#include "bench.h"

enum { P_ACTORS, P_HOPS, P_SPREAD };
static const bench_param_def_t tr_params[] = {
    {"actors", 503, 503, false, 2, 1000000, "actors in the ring"},
    {"hops", 30000000, 2000000, true, 1, UINT64_MAX / 4, "token passes"},
    {"spread", 0, 0, false, 0, 1, "1: actor i on worker i % workers"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_TOKEN, T_DONE, T_TALLY };

typedef struct ring_state {
    bench_hdr_t h; /* idx = position; a = next; b = master */
    uint64_t count;
    uint64_t t1;
} ring_state_t;

/* Both the members and the master pass the token this way. */
static void ring_token(ax_ctx_t *ctx, ring_state_t *s, uint64_t v)
{
    bench_run_t *run = s->h.run;
    s->count++;
    if (v == 0) {
        bench_send_u64(ctx, run, (ax_ref_t)s->h.b, T_DONE, s->h.idx);
        return;
    }
    if (bench_aborted(run))
        return;
    bench_send_u64(ctx, run, (ax_ref_t)s->h.a, T_TOKEN, v - 1);
}

static void member_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    ring_state_t *s = st;
    switch (m->type) {
    case T_TOKEN:
        ring_token(ctx, s, m->payload.u64[0]);
        break;
    case T_TALLY:
        bench_send_u64(ctx, s->h.run, (ax_ref_t)s->h.a, T_TALLY, m->payload.u64[0] + s->count);
        break;
    default:
        bench_fail(s->h.run, "threadring: actor %llu got unexpected message type %u",
                   (unsigned long long)s->h.idx, m->type);
    }
}

static void master_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    ring_state_t *s = st;
    bench_run_t *run = s->h.run;
    const uint64_t nact = run->p[P_ACTORS], hops = run->p[P_HOPS];
    switch (m->type) {
    case T_START: {
        ax_ref_t next = ax_self(ctx);
        for (uint64_t i = nact - 1; i >= 1; i--) {
            bench_hdr_t h = {.run = run, .idx = i, .a = next, .b = ax_self(ctx)};
            int64_t w = run->p[P_SPREAD] ? (int64_t)i : -1;
            if (!bench_spawn(ctx, run, member_beh, sizeof(ring_state_t), w, &h, &next))
                return;
        }
        s->h.a = next;
        s->h.b = ax_self(ctx);
        bench_start(run);
        ring_token(ctx, s, hops);
        break;
    }
    case T_TOKEN:
        ring_token(ctx, s, m->payload.u64[0]);
        break;
    case T_DONE:
        s->t1 = bench_now_ns();
        if (m->payload.u64[0] != hops % nact) {
            bench_fail(run, "threadring: the token reached 0 at actor %llu, expected %llu",
                       (unsigned long long)m->payload.u64[0], (unsigned long long)(hops % nact));
            return;
        }
        bench_send_u64(ctx, run, (ax_ref_t)s->h.a, T_TALLY, 0);
        break;
    case T_TALLY: {
        uint64_t total = m->payload.u64[0] + s->count;
        if (total != hops + 1)
            bench_fail(run, "threadring: the ring delivered the token %llu times, expected %llu",
                       (unsigned long long)total, (unsigned long long)(hops + 1));
        else
            bench_finish_at(run, hops + 1, s->t1);
        break;
    }
    default:
        bench_fail(run, "threadring: master got unexpected message type %u", m->type);
    }
}

static int tr_setup(bench_run_t *run)
{
    bench_hdr_t h = {.run = run};
    run->remote = run->p[P_SPREAD] && run->workers > 1;
    return bench_spawn_ext(run, master_beh, sizeof(ring_state_t), 0, &h, &run->entry);
}

const bench_workload_t bench_wl_threadring = {
    .name = "threadring",
    .group = "threadring",
    .what = "a ring of 503 actors passes a token (hops)",
    .unit = "msgs/s",
    .limit = BL_DISPATCH503,
    .limit_remote = BL_BOUNCE,
    .min_workers = 1,
    .params = tr_params,
    .setup = tr_setup,
    .kick = bench_kick_entry,
};
