/* perf/bench_engine_turn.c - what a worker's loop turn costs with many
 * inbound rings, with and without the doorbell bitmap (scheduler.doorbell).
 *
 * The engine is created (workers, rings, arenas) but never started: the
 * benchmark thread plays worker 0 (the receiver) and, for the "one sender"
 * case, worker N/2 (a sender), calling the engine's own turn and flush.  So
 * this measures the receiver's CPU cost of finding work among N-1 rings on
 * one core; the cross-core cache traffic of a real 64-core machine comes on
 * top and grows with the number of ring lines polled, which is what the
 * doorbell avoids.
 *
 *   engine/turn_empty/<workers>/<doorbell 0|1>        ns per turn, no work
 *   engine/turn_one_sender/<workers>/<doorbell 0|1>   ns per message, one busy ring
 */
#include <stdio.h>
#include <string.h>

#include "axon_bench.h"
#include "engine/engine_internal.h"

static void sink(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    *(uint64_t *)state += m->payload.u64[0];
}

static ax_engine_t *make_engine(uint32_t workers, bool bell, char *why, size_t whylen)
{
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_config_init(&cfg);
    snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "pack:1 core:%u pu:1", workers);
    cfg.doorbell = bell ? AX_DOORBELL_ON : AX_DOORBELL_OFF;
    cfg.arena_bytes = 4u << 20;
    cfg.max_actors = 1024;
    if (ax_engine_create(&cfg, &eng) < 0) {
        snprintf(why, whylen, "engine create: %s", ax_engine_last_error());
        return NULL;
    }
    return eng;
}

/* The engine for a benchmark's arguments (workers, doorbell), or NULL after
 * marking the benchmark as failed. */
static ax_engine_t *bench_engine(axon_bench_state *st)
{
    char why[600];
    uint32_t n = (uint32_t)axon_bench_range(st, 0);
    ax_engine_t *eng = make_engine(n, axon_bench_range(st, 1) != 0, why, sizeof why);
    if (!eng)
        axon_bench_skip(st, why);
    return eng;
}

static void bm_turn_empty(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    ax_engine_t *eng = bench_engine(st);
    if (!eng)
        return;
    ax_worker_t *w0 = eng->w[0];
    uint64_t found = 0;
    for (uint64_t i = 0; i < iters; i++)
        found += ax__run_turn(w0);
    AXON_ESCAPE(&found);
    if (found)
        axon_bench_skip(st, "an empty engine found work");
    ax_engine_destroy(eng);
}

static void bm_turn_one_sender(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    uint32_t n = (uint32_t)axon_bench_range(st, 0);
    ax_engine_t *eng = bench_engine(st);
    if (!eng)
        return;
    ax_ref_t ref;
    ax_spawn_opts_t o = {.where = AX_ON_WORKER, .worker = 0};
    ax_worker_t *w0 = eng->w[0], *ws = eng->w[n / 2];
    if (ax_engine_spawn(eng, sink, sizeof(uint64_t), &o, &ref) < 0 || ax__run_turn(w0) != 1) {
        axon_bench_skip(st, "could not place the receiving actor");
        ax_engine_destroy(eng);
        return;
    }
    uint64_t got = 0;
    for (uint64_t i = 0; i < iters; i++) {
        uint8_t stamp;
        int err;
        /* As worker n/2; the cold path opens the ring on the first send
         * when the doorbell is on (rings are made on first use). */
        ax_msg_t *m = ax__msg_slot_fast(ws, ref, &err, &stamp);
        if (!m)
            break;
        m->payload.u64[0] = 1;
        ax_msg_commit(m, 1, 8, 0, stamp);
        ax__flush(ws); /* doorbell + parked check, as at the end of its turn */
        got += ax__run_turn(w0);
    }
    AXON_ESCAPE(&got);
    if (got != iters)
        axon_bench_skip(st, "a message was not delivered in its turn");
    ax_engine_destroy(eng);
}

AXON_BENCHMARK(register_engine_turn)
{
    static const int64_t workers[] = {8, 64};
    for (unsigned k = 0; k < 2; k++)
        for (int64_t bell = 0; bell <= 1; bell++) {
            void *b = axon_bench_register("engine/turn_empty", bm_turn_empty, NULL);
            axon_bench_args2(b, workers[k], bell);
            axon_bench_unit_ns(b);
            b = axon_bench_register("engine/turn_one_sender", bm_turn_one_sender, NULL);
            axon_bench_args2(b, workers[k], bell);
            axon_bench_unit_ns(b);
        }
}
