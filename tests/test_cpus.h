/* tests/test_cpus.h - size engine tests to the CPUs this process may use.
 *
 * A test that asks for two pinned workers fails under `taskset -c 0` (the
 * planner refuses more pinned workers than selected cores).  Tests ask here
 * instead: they get pinned workers when the process has the cores, and
 * otherwise the same number of workers oversubscribed on this machine
 * (unpinned, no busy-spin: the engine's functional-test mode), so the
 * cross-worker paths (rings, wakeups, remote frees) still run on one CPU.
 * Oversubscribing this machine rather than a synthetic one keeps its real
 * NUMA nodes, so placement by node behaves as it does pinned.
 *
 * Header-only; needs the engine library (topology) linked.  Call from the
 * test thread (the count is cached in a plain static).
 */
#ifndef AXON_TESTS_TEST_CPUS_H
#define AXON_TESTS_TEST_CPUS_H

#include <stdbool.h>
#include <stdint.h>

#include "axon/config.h"
#include "axon/topology.h"

/* How many pinned workers this process can have: the cores in its CPU
 * affinity, as the planner counts them (at least 1). */
static inline uint32_t test_pinnable_workers(void)
{
    static uint32_t cached;
    if (cached)
        return cached;
    uint32_t n = 1;
    ax_topo_t *t = NULL;
    ax_plan_t *p = NULL;
    if (ax_topo_load_system(&t, NULL, 0) == 0) {
        ax_config_t c;
        ax_config_init(&c);
        if (ax_plan_create(t, &c, &p, NULL, 0) == 0 && p->nworkers > 0)
            n = p->nworkers;
        ax_plan_destroy(p);
        ax_topo_destroy(t);
    }
    return cached = n;
}

/* Ask c for `workers` workers on this machine: pinned when the process has
 * that many cores, else oversubscribed (unpinned).  True when pinned. */
static inline bool test_cfg_workers(ax_config_t *c, uint32_t workers)
{
    c->workers = workers;
    c->oversubscribe = workers > test_pinnable_workers();
    return !c->oversubscribe;
}

#endif
