/* tools/bench/wl_big.c - big: `actors` actors spread over all workers each
 * send `pings` pings, one at a time, to random other actors, which answer
 * with a pong (Savina Big).  Result: messages/s (2 per ping).
 *
 * Actor i lives on worker i % workers.  The reference table is written by
 * the main thread before ax_engine_start and only read afterwards (the
 * read-mostly sharing DESIGN.md allows).  Each actor has one ping
 * outstanding, which is its flow control.
 *
 * Check: every pong echoes the token of the ping it answers; the sink hears
 * `done` from every actor; afterwards the actors report the pings they
 * received, which must add up to actors x pings.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>

enum { P_ACTORS, P_PINGS };
static const bench_param_def_t big_params[] = {
    {"actors", 120, 120, false, 2, 1000000, "actors, round robin over workers"},
    {"pings", 50000, 5000, true, 1, 1ull << 31, "pings each actor sends"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_GO, T_PING, T_PONG, T_DONE, T_REPORT, T_COUNT };

typedef struct big_actor {
    bench_hdr_t h; /* idx; a = sink */
    uint64_t rng, seq, token, received;
} big_actor_t;

typedef struct big_sink {
    bench_hdr_t h;
    uint64_t done, reports, received, t1;
} big_sink_t;

static bool big_ping(ax_ctx_t *ctx, big_actor_t *s)
{
    bench_run_t *run = s->h.run;
    const ax_ref_t *refs = run->priv;
    const uint64_t na = run->p[P_ACTORS];
    uint64_t j = bench_rand(&s->rng) % (na - 1);
    if (j >= s->h.idx)
        j++; /* never ourselves */
    s->token = (s->h.idx << 32) | ++s->seq;
    return bench_send_u64(ctx, run, refs[j], T_PING, s->token);
}

static void big_actor_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    big_actor_t *s = st;
    bench_run_t *run = s->h.run;
    switch (m->type) {
    case T_GO:
        s->rng = (s->h.idx + 1) * 0x9E3779B97F4A7C15ULL;
        big_ping(ctx, s);
        break;
    case T_PING:
        s->received++;
        bench_send_u64(ctx, run, ax_sender(ctx), T_PONG, m->payload.u64[0]);
        break;
    case T_PONG:
        if (m->payload.u64[0] != s->token) {
            bench_fail(run, "big: actor %llu got pong %#llx, expected %#llx",
                       (unsigned long long)s->h.idx, (unsigned long long)m->payload.u64[0],
                       (unsigned long long)s->token);
            return;
        }
        if (s->seq == run->p[P_PINGS])
            bench_send_u64(ctx, run, (ax_ref_t)s->h.a, T_DONE, s->h.idx);
        else if (!bench_aborted(run))
            big_ping(ctx, s);
        break;
    case T_REPORT:
        bench_send_u64(ctx, run, ax_sender(ctx), T_COUNT, s->received);
        break;
    default:
        bench_fail(run, "big: actor got unexpected message type %u", m->type);
    }
}

static void big_sink_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    big_sink_t *s = st;
    bench_run_t *run = s->h.run;
    const ax_ref_t *refs = run->priv;
    const uint64_t na = run->p[P_ACTORS], pings = run->p[P_PINGS];
    switch (m->type) {
    case T_START:
        bench_start(run);
        for (uint64_t i = 0; i < na; i++)
            if (!bench_send_u64(ctx, run, refs[i], T_GO, 0))
                return;
        break;
    case T_DONE:
        if (++s->done == na) {
            s->t1 = bench_now_ns();
            for (uint64_t i = 0; i < na; i++)
                if (!bench_send_u64(ctx, run, refs[i], T_REPORT, 0))
                    return;
        }
        break;
    case T_COUNT:
        s->received += m->payload.u64[0];
        if (++s->reports == na) {
            if (s->received != na * pings)
                bench_fail(run, "big: actors received %llu pings in all, expected %llu",
                           (unsigned long long)s->received, (unsigned long long)(na * pings));
            else
                bench_finish_at(run, 2 * na * pings, s->t1);
        }
        break;
    default:
        bench_fail(run, "big: sink got unexpected message type %u", m->type);
    }
}

static int big_setup(bench_run_t *run)
{
    const uint64_t na = run->p[P_ACTORS];
    ax_ref_t *refs = calloc(na, sizeof *refs);
    if (!refs) {
        bench_fail(run, "big: no memory for %llu references", (unsigned long long)na);
        return -ENOMEM;
    }
    run->priv = refs;
    run->remote = run->workers > 1;
    bench_hdr_t h = {.run = run};
    int rc = bench_spawn_ext(run, big_sink_beh, sizeof(big_sink_t), 0, &h, &run->entry);
    for (uint64_t i = 0; rc == 0 && i < na; i++) {
        bench_hdr_t a = {.run = run, .idx = i, .a = run->entry};
        rc = bench_spawn_ext(run, big_actor_beh, sizeof(big_actor_t), (uint32_t)(i % run->workers),
                             &a, &refs[i]);
    }
    return rc;
}

static void big_cleanup(bench_run_t *run)
{
    free(run->priv);
    run->priv = NULL;
}

const bench_workload_t bench_wl_big = {
    .name = "big",
    .group = "big",
    .what = "120 actors on all workers ping random peers and wait for the pong",
    .unit = "msgs/s",
    .limit = BL_NONE,
    .limit_remote = BL_NONE,
    .min_workers = 1,
    .params = big_params,
    .setup = big_setup,
    .kick = bench_kick_entry,
    .cleanup = big_cleanup,
};
