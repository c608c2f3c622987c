/* tools/bench/wl_fjcreate.c - fjcreate: a driver spawns n actors, sends each
 * one message; each replies and stops (Savina Fork-Join Create; the peers'
 * fjcreate).  The result is actors per second, spawn to last reply.
 *
 * The driver spawns `chunk` actors per turn, then continues itself, and
 * keeps at most `window` actors alive (spawned and not yet replied).  By
 * default they are spawned next to the driver (axon's default placement);
 * spread=1 spawns actor i on worker i % workers.
 *
 * Check: n replies whose values sum to n(n+1)/2, and the engine counted n
 * more spawns (ax_engine_stats) than the driver itself.
 */
#include "bench.h"

#include <errno.h>

enum { P_N, P_CHUNK, P_WINDOW, P_SPREAD };
static const bench_param_def_t fjc_params[] = {
    {"n", 3000000, 200000, true, 1, 1ull << 40, "actors created"},
    {"chunk", 1000, 1000, false, 1, 1000000, "spawns per driver turn"},
    {"window", 10000, 10000, false, 1, 1u << 24, "actors alive at most"},
    {"spread", 0, 0, false, 0, 1, "1: actor i on worker i % workers"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_CONT, T_WORK, T_REPLY };

typedef struct fjc_driver {
    bench_hdr_t h;
    uint64_t spawned, replies, sum;
    bool cont_pending;
} fjc_driver_t;

typedef struct fjc_worker {
    bench_hdr_t h;
} fjc_worker_t;

static void fjc_worker_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    fjc_worker_t *s = st;
    if (m->type != T_WORK) {
        bench_fail(s->h.run, "fjcreate: worker got unexpected message type %u", m->type);
        return;
    }
    bench_send_u64(ctx, s->h.run, ax_sender(ctx), T_REPLY, m->payload.u64[0]);
    ax_stop_self(ctx);
}

static void fjc_pump(ax_ctx_t *ctx, fjc_driver_t *s)
{
    bench_run_t *run = s->h.run;
    const uint64_t n = run->p[P_N], window = run->p[P_WINDOW];
    if (bench_aborted(run))
        return;
    for (uint64_t k = 0; k < run->p[P_CHUNK] && s->spawned < n && s->spawned - s->replies < window;
         k++) {
        bench_hdr_t h = {.run = run, .idx = s->spawned};
        ax_ref_t w;
        if (!bench_spawn(ctx, run, fjc_worker_beh, sizeof(fjc_worker_t),
                         run->p[P_SPREAD] ? (int64_t)s->spawned : -1, &h, &w))
            return;
        s->spawned++;
        if (!bench_send_u64(ctx, run, w, T_WORK, s->spawned))
            return;
    }
    if (s->spawned < n && s->spawned - s->replies < window) {
        s->cont_pending = true;
        bench_send_u64(ctx, run, ax_self(ctx), T_CONT, 0);
    }
}

static void fjc_driver_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    fjc_driver_t *s = st;
    bench_run_t *run = s->h.run;
    const uint64_t n = run->p[P_N];
    switch (m->type) {
    case T_START:
        bench_start(run);
        fjc_pump(ctx, s);
        break;
    case T_CONT:
        s->cont_pending = false;
        fjc_pump(ctx, s);
        break;
    case T_REPLY:
        s->replies++;
        s->sum += m->payload.u64[0];
        if (s->replies == n) {
            uint64_t want = n % 2 ? n * ((n + 1) / 2) : (n / 2) * (n + 1);
            if (s->sum != want)
                bench_fail(run, "fjcreate: replies sum to %llu, expected %llu",
                           (unsigned long long)s->sum, (unsigned long long)want);
            else
                bench_finish(run, n);
        } else if (!s->cont_pending) {
            fjc_pump(ctx, s);
        }
        break;
    default:
        bench_fail(run, "fjcreate: driver got unexpected message type %u", m->type);
    }
}

static int fjc_setup(bench_run_t *run)
{
    bench_hdr_t h = {.run = run};
    run->remote = run->p[P_SPREAD] && run->workers > 1;
    return bench_spawn_ext(run, fjc_driver_beh, sizeof(fjc_driver_t), 0, &h, &run->entry);
}

static int fjc_check(bench_run_t *run, const ax_worker_stats_t *sum)
{
    /* the driver was spawned before the stats baseline: n spawns after it */
    if (sum->actors_spawned < run->p[P_N]) {
        bench_fail(run, "fjcreate: the engine counted %llu spawns during the run, expected %llu",
                   (unsigned long long)sum->actors_spawned, (unsigned long long)run->p[P_N]);
        return -EIO;
    }
    return 0;
}

const bench_workload_t bench_wl_fjcreate = {
    .name = "fjcreate",
    .group = "fjcreate",
    .what = "spawn n actors, one message each, each replies and stops",
    .unit = "actors/s",
    .limit = BL_CREATE,
    .limit_remote = BL_NONE,
    .min_workers = 1,
    .params = fjc_params,
    .setup = fjc_setup,
    .kick = bench_kick_entry,
    .check_stats = fjc_check,
};
