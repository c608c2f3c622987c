/* tools/bench/wl_skynet.c - skynet: a tree of actors, `width` children per
 * node, `leaves` leaves (the skynet benchmark: 1,000,000 leaves numbered
 * 0 .. leaves-1 in the original, width 10).  A node spawns its children,
 * sends each its request (first leaf number, leaf count), sums their
 * replies, replies to its parent and stops; a leaf replies its number.
 * Result: actors per second (every node and leaf).
 *
 * Placement: every spawn uses default options (no `where`), as a program a
 * new user writes would: this measures what the engine's default placement
 * makes of a tree (docs/tuning.md, "Default placement").  here=1 spawns
 * every child on its parent's worker instead (AX_ON_SELF).
 *
 * The default is 100,000 leaves, not the original 1,000,000: the children
 * of a node run after every node of the level above has spawned its own
 * (FIFO order), so nearly the whole tree is alive at once, and 1,111,111
 * actors need more than the default actor table on one worker
 * (scheduler.max_actors = 1048576; raise it with --config to run 1 M).
 *
 * Check: the root's sum equals leaves (leaves - 1) / 2, and the engine
 * counted every actor's spawn.
 */
#include "bench.h"

#include <errno.h>

enum { P_LEAVES, P_WIDTH, P_HERE };
static const bench_param_def_t sky_params[] = {
    {"leaves", 100000, 10000, true, 1, 1ull << 32, "leaves (a power of width)"},
    {"width", 10, 10, false, 2, 64, "children per node"},
    {"here", 0, 0, false, 0, 1, "1: every child on its parent's worker (AX_ON_SELF)"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_REQ, T_RES };

typedef struct sky_actor {
    bench_hdr_t h; /* idx: first leaf, a: leaves below */
    ax_ref_t parent;
    uint64_t sum, got;
} sky_actor_t;

/* Actors in a tree of `leaves` leaves (leaves a power of width). */
static uint64_t sky_total(uint64_t leaves, uint64_t width)
{
    uint64_t total = 0;
    for (uint64_t l = leaves; l >= 1; l /= width) {
        total += l;
        if (l == 1)
            break;
    }
    return total;
}

static void sky_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    sky_actor_t *s = st;
    bench_run_t *run = s->h.run;
    const uint64_t width = run->p[P_WIDTH];
    switch (m->type) {
    case T_REQ: {
        uint64_t first = m->payload.u64[0], size = m->payload.u64[1];
        s->parent = ax_sender(ctx);
        if (size == 1) {
            bench_send_u64(ctx, run, s->parent, T_RES, first);
            ax_stop_self(ctx);
            return;
        }
        if (bench_aborted(run))
            return;
        uint64_t part = size / width;
        for (uint64_t i = 0; i < width; i++) {
            bench_hdr_t h = {.run = run};
            ax_ref_t c;
            uint64_t req[2] = {first + i * part, part};
            if (!bench_spawn(ctx, run, sky_beh, sizeof(sky_actor_t),
                             run->p[P_HERE] ? BENCH_HERE : BENCH_DEFAULT, &h, &c) ||
                !bench_send(ctx, run, c, T_REQ, req, sizeof req))
                return;
        }
        break;
    }
    case T_RES:
        s->sum += m->payload.u64[0];
        if (++s->got == width) {
            bench_send_u64(ctx, run, s->parent, T_RES, s->sum);
            ax_stop_self(ctx);
        }
        break;
    default:
        bench_fail(run, "skynet: actor got unexpected message type %u", m->type);
    }
}

static void sky_root_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    sky_actor_t *s = st;
    bench_run_t *run = s->h.run;
    const uint64_t leaves = run->p[P_LEAVES];
    switch (m->type) {
    case T_START: {
        bench_start(run);
        bench_hdr_t h = {.run = run};
        ax_ref_t c;
        uint64_t req[2] = {0, leaves};
        if (bench_spawn(ctx, run, sky_beh, sizeof(sky_actor_t),
                        run->p[P_HERE] ? BENCH_HERE : BENCH_DEFAULT, &h, &c))
            bench_send(ctx, run, c, T_REQ, req, sizeof req);
        break;
    }
    case T_RES: {
        uint64_t want = leaves % 2 ? leaves * ((leaves - 1) / 2) : (leaves / 2) * (leaves - 1);
        if (m->payload.u64[0] != want)
            bench_fail(run, "skynet: the leaves sum to %llu, expected %llu",
                       (unsigned long long)m->payload.u64[0], (unsigned long long)want);
        else
            bench_finish(run, sky_total(leaves, run->p[P_WIDTH]));
        break;
    }
    default:
        bench_fail(run, "skynet: root got unexpected message type %u", m->type);
    }
}

static int sky_setup(bench_run_t *run)
{
    uint64_t l = run->p[P_LEAVES], w = run->p[P_WIDTH];
    while (l > 1 && l % w == 0)
        l /= w;
    if (l != 1) {
        bench_fail(run, "skynet: leaves = %llu is not a power of width = %llu: pick e.g. %llu",
                   (unsigned long long)run->p[P_LEAVES], (unsigned long long)w,
                   (unsigned long long)(w * w * w * w * w));
        return -EINVAL;
    }
    bench_hdr_t h = {.run = run};
    run->remote = false; /* decided by the engine's placement */
    return bench_spawn_ext(run, sky_root_beh, sizeof(sky_actor_t), 0, &h, &run->entry);
}

static int sky_check(bench_run_t *run, const ax_worker_stats_t *sum)
{
    uint64_t want = sky_total(run->p[P_LEAVES], run->p[P_WIDTH]);
    if (sum->actors_spawned < want) {
        bench_fail(run, "skynet: the engine counted %llu spawns, expected %llu",
                   (unsigned long long)sum->actors_spawned, (unsigned long long)want);
        return -EIO;
    }
    return 0;
}

const bench_workload_t bench_wl_skynet = {
    .name = "skynet",
    .group = "skynet",
    .what = "a tree of actors (width children per node) summing its leaves' numbers",
    .unit = "actors/s",
    .limit = BL_NONE,
    .limit_remote = BL_NONE,
    .min_workers = 1,
    .params = sky_params,
    .setup = sky_setup,
    .kick = bench_kick_entry,
    .check_stats = sky_check,
};
