/* tools/bench/wl_fib.c - fib: computes fib(n) with an actor per call (Savina
 * Fibonacci).  Each actor gets a request, and for n > 2 spawns two children,
 * sums their replies, replies to its parent and stops.  Result: messages/s
 * (a request and a reply per actor; 2 fib(n) - 1 actors).
 *
 * Placement: the first child next to its parent; the second on the next
 * worker when its n >= remote_min (0: never), so big subtrees spread over
 * the workers and small ones stay local.
 *
 * Check: the root's answer equals fib(n) computed by a loop, and the engine
 * counted 2 fib(n) - 1 spawns.
 */
#include "bench.h"

#include <errno.h>

enum { P_N, P_REMOTE_MIN };
static const bench_param_def_t fib_params[] = {
    {"n", 25, 22, false, 1, 40, "fib(n); 2 fib(n) - 1 actors"},
    {"remote_min", 15, 15, false, 0, 64, "second child on the next worker when its n >= this"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_REQ, T_RES };

typedef struct fib_actor {
    bench_hdr_t h; /* idx = n */
    ax_ref_t parent;
    uint64_t sum, got, t1;
} fib_actor_t;

static uint64_t fib_loop(uint64_t n)
{
    uint64_t a = 1, b = 1;
    for (uint64_t i = 3; i <= n; i++) {
        uint64_t c = a + b;
        a = b;
        b = c;
    }
    return b;
}

static void fib_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m);

static bool fib_child(ax_ctx_t *ctx, fib_actor_t *s, uint64_t n, bool remote)
{
    bench_run_t *run = s->h.run;
    bench_hdr_t h = {.run = run, .idx = n};
    ax_ref_t c;
    int64_t w = remote ? (int64_t)ax_worker_id(ctx) + 1 : -1;
    return bench_spawn(ctx, run, fib_beh, sizeof(fib_actor_t), w, &h, &c) &&
           bench_send_u64(ctx, run, c, T_REQ, n);
}

static void fib_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    fib_actor_t *s = st;
    bench_run_t *run = s->h.run;
    switch (m->type) {
    case T_REQ: {
        uint64_t n = m->payload.u64[0];
        s->parent = ax_sender(ctx);
        if (n <= 2) {
            bench_send_u64(ctx, run, s->parent, T_RES, 1);
            ax_stop_self(ctx);
            return;
        }
        uint64_t rmin = run->p[P_REMOTE_MIN];
        if (bench_aborted(run) || !fib_child(ctx, s, n - 1, false))
            return;
        fib_child(ctx, s, n - 2, rmin && n - 2 >= rmin && run->workers > 1);
        break;
    }
    case T_RES:
        s->sum += m->payload.u64[0];
        if (++s->got == 2) {
            bench_send_u64(ctx, run, s->parent, T_RES, s->sum);
            ax_stop_self(ctx);
        }
        break;
    default:
        bench_fail(run, "fib: actor got unexpected message type %u", m->type);
    }
}

static void fib_root_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    fib_actor_t *s = st;
    bench_run_t *run = s->h.run;
    const uint64_t n = run->p[P_N];
    switch (m->type) {
    case T_START:
        bench_start(run);
        fib_child(ctx, s, n, false);
        break;
    case T_RES: {
        uint64_t want = fib_loop(n);
        if (m->payload.u64[0] != want)
            bench_fail(run, "fib: fib(%llu) came back as %llu, expected %llu",
                       (unsigned long long)n, (unsigned long long)m->payload.u64[0],
                       (unsigned long long)want);
        else
            bench_finish(run, 2 * (2 * want - 1));
        break;
    }
    default:
        bench_fail(run, "fib: root got unexpected message type %u", m->type);
    }
}

static int fib_setup(bench_run_t *run)
{
    bench_hdr_t h = {.run = run};
    run->remote = run->p[P_REMOTE_MIN] && run->workers > 1;
    return bench_spawn_ext(run, fib_root_beh, sizeof(fib_actor_t), 0, &h, &run->entry);
}

static int fib_check(bench_run_t *run, const ax_worker_stats_t *sum)
{
    uint64_t want = 2 * fib_loop(run->p[P_N]) - 1;
    if (sum->actors_spawned < want) {
        bench_fail(run, "fib: the engine counted %llu spawns, expected %llu",
                   (unsigned long long)sum->actors_spawned, (unsigned long long)want);
        return -EIO;
    }
    return 0;
}

const bench_workload_t bench_wl_fib = {
    .name = "fib",
    .group = "fib",
    .what = "fib(n) with an actor per call (spawn, request, reply, stop)",
    .unit = "msgs/s",
    .limit = BL_NONE,
    .limit_remote = BL_NONE,
    .min_workers = 1,
    .params = fib_params,
    .setup = fib_setup,
    .kick = bench_kick_entry,
    .check_stats = fib_check,
};
