/* axon/topology.h - hardware topology and the placement plan.
 *
 * A topology comes from this machine (hwloc discovery), from an hwloc
 * synthetic description or from an hwloc XML export, so a plan can be made
 * and reviewed for a server you are not on.  The planner turns topology and
 * config into a plan: for each worker its PU, core, L3 group and NUMA node,
 * plus the memory budget.  The engine runs a plan; axon-topo prints one.
 *
 * Threading: a topology and a plan are immutable after creation and may be
 * read from any thread; create/destroy from one thread.
 */
#ifndef AXON_TOPOLOGY_H
#define AXON_TOPOLOGY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "axon/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ax_topo ax_topo_t;

/* Returns 0 or a negative errno; err (errlen bytes, may be NULL) gets a
 * sentence saying what was wrong, e.g. a bad synthetic string. */
AX_API int ax_topo_load_system(ax_topo_t **out, char *err, size_t errlen);
AX_API int ax_topo_load_synthetic(const char *desc, ax_topo_t **out, char *err, size_t errlen);
AX_API int ax_topo_load_xml(const char *path, ax_topo_t **out, char *err, size_t errlen);
/* From cfg->topology_synthetic / topology_xml, else this machine. */
AX_API int ax_topo_load_config(const ax_config_t *cfg, ax_topo_t **out, char *err, size_t errlen);
AX_API void ax_topo_destroy(ax_topo_t *topo); /* NULL: does nothing */

/* True only when the topology is this machine and hwloc can bind threads on
 * it: a synthetic or XML topology is never "this system". */
AX_API bool ax_topo_is_this_system(const ax_topo_t *topo);

typedef struct ax_topo_summary {
    uint32_t packages, numa_nodes, l3_groups, cores, pus;
    uint64_t memory_bytes; /* total, as hwloc reports it */
    char source[AX_CONFIG_STR_MAX]; /* "this machine", "synthetic: ...", "xml: path" */
} ax_topo_summary_t;
AX_API void ax_topo_summary(const ax_topo_t *topo, ax_topo_summary_t *out);

/* One planned worker.  Indexes are logical (0..n-1 in hwloc order) except
 * `pu` and `numa`, which are OS indexes (what taskset and numactl take). */
typedef struct ax_plan_worker {
    uint32_t worker;  /* 0..nworkers-1; neighbours share L3 and node */
    uint32_t pu;      /* PU OS index (the CPU number Linux uses) */
    uint32_t core;    /* core logical index */
    uint32_t l3;      /* L3 group logical index */
    uint32_t numa;    /* NUMA node OS index */
    uint32_t package; /* package logical index */
} ax_plan_worker_t;

typedef struct ax_plan {
    uint32_t nworkers;
    ax_plan_worker_t *workers; /* nworkers entries */
    bool pinned;               /* false: oversubscribed or foreign topology: unpinned */
    bool oversubscribed;       /* more workers than selected PUs */
    bool this_system;          /* the topology is this machine */
    uint64_t arena_bytes;      /* per worker */
    uint32_t ring_slots;       /* per ordered pair */
    uint64_t ring_bytes;       /* one ring: slots * 64 + control lines */
    uint64_t ring_mesh_bytes;  /* all N*(N-1) rings (what is reserved) */
    uint64_t arena_total_bytes;
    uint64_t total_bytes;      /* arenas + ring budget */
    /* Rings are made on first use when the doorbell is on (more than 8
     * workers by default): then the budget counts ring_peers rings per
     * receiver (scheduler.ring_peers; all N-1 when 0 or without the
     * doorbell), each receiver's control blocks packed in whole pages. */
    bool rings_lazy;
    uint32_t ring_peers;
    uint64_t ring_budget_bytes;
    uint32_t nwarnings;
    char **warnings;           /* sentences, e.g. "workers 0 and 1 share core 0" */
    ax_config_t config;        /* the config the plan was made from */
    ax_topo_summary_t topo;    /* the topology the plan was made for */
} ax_plan_t;

/* Make a plan.  Returns 0, or -EINVAL with err explaining what cannot be
 * satisfied (e.g. "workers = 96: the selection has 64 cores; lower it or set
 * oversubscribe = true").  The plan does not reference topo after return. */
AX_API int ax_plan_create(const ax_topo_t *topo, const ax_config_t *cfg, ax_plan_t **out,
                          char *err, size_t errlen);
AX_API void ax_plan_destroy(ax_plan_t *plan); /* NULL: does nothing */

/* The ring capacity a plan uses: cfg->ring_slots, or when that is 0 a power
 * of two in [256, 4096] giving each worker about 1 MiB of inbound rings
 * (256 slots at 64 workers, 4096 at 2). */
#define AX_RING_AUTO_BYTES (1u << 20)
AX_API uint32_t ax_plan_auto_ring_slots(const ax_config_t *cfg, uint32_t nworkers);

/* Human-readable: topology summary, worker table, memory budget, warnings. */
AX_API void ax_plan_print(const ax_plan_t *plan, FILE *out);
/* JSON: {"topology":{...},"workers":[{"worker":0,"pu":0,"core":0,"l3":0,"numa":0,
 * "package":0},...],"memory":{"arena_bytes":..,"ring_bytes":..,...},
 * "pinned":true,"oversubscribed":false,"warnings":[...]} */
AX_API void ax_plan_print_json(const ax_plan_t *plan, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* AXON_TOPOLOGY_H */
