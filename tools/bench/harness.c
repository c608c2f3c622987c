/* tools/bench/harness.c - helpers the workloads' actors call (bench.h).
 *
 * Threading: bench_start/finish/fail run on workers; each writes its fields
 * and then posts run->done, whose sem_wait in the main thread orders those
 * writes before the main thread reads them.  bench_spawn_ext and bench_kick
 * run on the main thread.
 * Memory: nothing is allocated here.
 */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_start(bench_run_t *run)
{
    /* Only one actor stamps the start in every workload; a plain store is
     * enough because sem_post in bench_finish publishes it. */
    if (run->t0_ns == 0)
        run->t0_ns = bench_now_ns();
}

void bench_finish(bench_run_t *run, uint64_t ops) { bench_finish_at(run, ops, bench_now_ns()); }

void bench_finish_at(bench_run_t *run, uint64_t ops, uint64_t t1)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&run->finished, &expect, 1))
        return; /* finished twice: the workload's bug, the first one counts */
    run->t1_ns = t1;
    run->ops = ops;
    sem_post(&run->done); /* pairs with the main thread's sem_wait */
}

void bench_fail(bench_run_t *run, const char *fmt, ...)
{
    int expect = 0;
    atomic_store(&run->abort, 1);
    if (!atomic_compare_exchange_strong(&run->failed, &expect, 1))
        return; /* keep the first reason */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run->why, sizeof run->why, fmt, ap);
    va_end(ap);
    sem_post(&run->done);
}

bool bench_send_u64(ax_ctx_t *ctx, bench_run_t *run, ax_ref_t to, uint32_t type, uint64_t v)
{
    int rc = ax_send_u64(ctx, to, type, v);
    if (rc == 0)
        return true;
    bench_fail(run, "%s: ax_send_u64 from worker %u to actor %#llx (worker %u) type %u failed: %s",
               run->wl->name, ax_worker_id(ctx), (unsigned long long)to, ax_ref_worker(to), type,
               strerror(-rc));
    return false;
}

bool bench_send(ax_ctx_t *ctx, bench_run_t *run, ax_ref_t to, uint32_t type, const void *buf,
                size_t len)
{
    int rc = ax_send(ctx, to, type, buf, len);
    if (rc == 0)
        return true;
    bench_fail(run, "%s: ax_send of %zu bytes from worker %u to actor %#llx type %u failed: %s",
               run->wl->name, len, ax_worker_id(ctx), (unsigned long long)to, type,
               strerror(-rc));
    return false;
}

static void bench_init_copy(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    memcpy(state, arg, len);
}

bool bench_spawn(ax_ctx_t *ctx, bench_run_t *run, ax_behaviour_fn fn, size_t state_size,
                 int64_t worker, const bench_hdr_t *hdr, ax_ref_t *out)
{
    ax_spawn_opts_t o = {.size = sizeof o, .init = bench_init_copy, .arg = hdr,
                         .arg_len = sizeof *hdr};
    if (worker == BENCH_HERE) {
        o.where = AX_ON_SELF;
    } else if (worker >= 0) {
        o.where = AX_ON_WORKER;
        o.worker = (uint32_t)((uint64_t)worker % run->workers);
    }
    int rc = ax_spawn(ctx, fn, state_size, &o, out);
    if (rc == 0)
        return true;
    bench_fail(run, "%s: ax_spawn of a %zu-byte actor on worker %lld failed: %s%s", run->wl->name,
               state_size, (long long)worker, strerror(-rc),
               rc == -ENOMEM ? " (arena or actor table full: raise arena_bytes / max_actors "
                               "in --config, or lower the workload's counts with --param)"
                             : "");
    return false;
}

int bench_spawn_ext(bench_run_t *run, ax_behaviour_fn fn, size_t state_size, uint32_t worker,
                    const bench_hdr_t *hdr, ax_ref_t *out)
{
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = worker % run->workers,
                         .init = bench_init_copy, .arg = hdr, .arg_len = sizeof *hdr};
    int rc = ax_engine_spawn(run->eng, fn, state_size, &o, out);
    if (rc)
        bench_fail(run, "%s: ax_engine_spawn on worker %u failed: %s", run->wl->name,
                   worker % run->workers, strerror(-rc));
    return rc;
}

int bench_kick(bench_run_t *run, ax_ref_t to, uint32_t type, uint64_t v)
{
    int rc = ax_engine_send(run->eng, to, type, &v, sizeof v);
    if (rc)
        bench_fail(run, "%s: ax_engine_send to actor %#llx failed: %s", run->wl->name,
                   (unsigned long long)to, strerror(-rc));
    return rc;
}

int bench_kick_entry(bench_run_t *run) { return bench_kick(run, run->entry, 1, 0); }
