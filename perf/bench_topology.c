/* perf/bench_topology.c - planner speed on the 64-core, 4-node, SMT-2
 * synthetic server: ax_plan_create + ax_plan_destroy per iteration (the
 * topology is loaded once; hwloc discovery is not what is measured).
 * Threading: one benchmark thread.  Memory: the topology lives for the run.
 */
#include <stdio.h>
#include <string.h>

#include "axon/topology.h"
#include "axon_bench.h"

#define SERVER "pack:2 numa:2 l3:2 core:8 pu:2"

static void bm_plan_64core(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    ax_topo_t *t = NULL;
    char err[512];
    if (ax_topo_load_synthetic(SERVER, &t, err, sizeof err) < 0) {
        axon_bench_skip(st, err);
        return;
    }
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.smt = axon_bench_range(st, 0) ? AX_SMT_ALL : AX_SMT_CORE;
    for (uint64_t i = 0; i < iters; i++) {
        ax_plan_t *p = NULL;
        if (ax_plan_create(t, &cfg, &p, err, sizeof err) < 0) {
            axon_bench_skip(st, err);
            break;
        }
        AXON_ESCAPE(p);
        ax_plan_destroy(p);
    }
    axon_bench_items(st, (int64_t)iters);
    ax_topo_destroy(t);
}

AXON_BENCHMARK(register_topology)
{
    /* arg 0: smt = core (64 workers); arg 1: smt = all (128 workers) */
    void *b = axon_bench_register("topology/plan_64core", bm_plan_64core, NULL);
    axon_bench_arg(b, 0);
    axon_bench_arg(b, 1);
    axon_bench_unit_us(b);
}
