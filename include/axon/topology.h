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
    uint64_t ring_mesh_bytes;  /* all N*(N-1) rings */
    uint64_t arena_total_bytes;
    uint64_t total_bytes;      /* arenas + ring mesh */
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

/* ---- cluster plans (docs/cluster-plan.md) ----------------------------------
 * A cluster is one axon node (one engine, one process) per slot of a host.
 * A hostfile is Open MPI's: one host per line, `NAME [slots=N]
 * [max_slots=N]`, `#` comments; a comment `# axon: xml=FILE` or
 * `# axon: synthetic=DESC` names the host's topology for the planner
 * (mpirun ignores comments, so one file launches and plans). */

#define AX_HOST_NAME_MAX 256       /* host name plus its NUL */
#define AX_HOST_SLOTS_MAX 4096u    /* axon nodes on one host */
#define AX_CLUSTER_NODES_MAX 65536u /* nodes (slots) in one plan */

typedef struct ax_hostfile_host {
    char name[AX_HOST_NAME_MAX];
    uint32_t slots;     /* axon nodes on this host; 1 when the line has no slots= */
    uint32_t max_slots; /* 0: not given */
    bool slots_given;   /* false: Open MPI would give one slot per core */
    uint32_t line;      /* line in the hostfile, 0 when added by ax_hostfile_add_host */
    char xml[AX_CONFIG_STR_MAX];       /* "# axon: xml=", relative to the hostfile's directory */
    char synthetic[AX_CONFIG_STR_MAX]; /* "# axon: synthetic=" */
} ax_hostfile_host_t;

typedef struct ax_hostfile {
    uint32_t nhosts;
    ax_hostfile_host_t *hosts; /* file order: mpirun fills host 0's slots first */
    uint32_t total_slots;      /* at most AX_CLUSTER_NODES_MAX */
    char path[AX_CONFIG_STR_MAX];
} ax_hostfile_t;

/* Parse len bytes of text (not NUL-terminated); name is the file name used
 * in "FILE:LINE: ..." errors and as the directory xml= paths are relative
 * to.  Returns 0, or a negative errno with err saying what was wrong where. */
AX_API int ax_hostfile_parse(const char *text, size_t len, const char *name, ax_hostfile_t **out,
                             char *err, size_t errlen);
AX_API int ax_hostfile_load(const char *path, ax_hostfile_t **out, char *err, size_t errlen);
/* Append a host (creating *hf when NULL): how a list of XML files becomes a
 * cluster.  xml and synthetic may be NULL or "", not both non-empty. */
AX_API int ax_hostfile_add_host(ax_hostfile_t **hf, const char *name, uint32_t slots,
                                const char *xml, const char *synthetic, char *err,
                                size_t errlen);
AX_API void ax_hostfile_destroy(ax_hostfile_t *hf); /* NULL: does nothing */

typedef struct ax_cluster_host {
    char name[AX_HOST_NAME_MAX];
    uint32_t line;          /* hostfile line, 0 when not from a file */
    uint32_t first_node;    /* its nodes are first_node .. first_node + nodes - 1 */
    uint32_t nodes;         /* = slots */
    ax_topo_summary_t topo; /* the host's topology */
    uint64_t total_bytes;   /* arenas + rings of all its nodes */
} ax_cluster_host_t;

typedef struct ax_cluster_node {
    uint32_t node;  /* rank under `mpirun -np <nodes> --hostfile F` (by slot) */
    uint32_t host;  /* index into hosts */
    uint32_t local; /* 0 .. slots-1 on its host */
    ax_plan_t *plan; /* this node's engine plan (its share of the host's cores) */
} ax_cluster_node_t;

typedef struct ax_cluster_plan {
    uint32_t nhosts, nnodes;
    ax_cluster_host_t *hosts;
    ax_cluster_node_t *nodes;
    uint64_t workers;           /* all nodes */
    uint64_t arena_total_bytes; /* all nodes */
    uint64_t ring_mesh_bytes;   /* all nodes' local ring meshes */
    uint64_t total_bytes;       /* arenas + rings; not the transport's buffers */
    uint32_t nwarnings;
    char **warnings;            /* cluster-wide; per-node ones are in each plan */
    char source[AX_CONFIG_STR_MAX]; /* hostfile path or "node list" */
} ax_cluster_plan_t;

/* Plan every node of `hosts` with cfg (NULL: defaults; workers.count, when
 * set, is per node).  A host with slots = N splits its selected cores into
 * N contiguous shares in plan order (NUMA node, then L3), one per node.
 * A host's topology is, in order: its "# axon:" comment, topology_dir/NAME.xml
 * (topology_dir may be NULL), cfg's topology.synthetic / topology.xml, this
 * machine when NAME is localhost or this host's name; else an error naming
 * the hostfile line.  Returns 0 or a negative errno with err. */
AX_API int ax_cluster_plan_create(const ax_hostfile_t *hosts, const ax_config_t *cfg,
                                  const char *topology_dir, ax_cluster_plan_t **out, char *err,
                                  size_t errlen);
AX_API void ax_cluster_plan_destroy(ax_cluster_plan_t *plan); /* NULL: does nothing */
/* Text: one row per node, one per host, totals, warnings; with node_plans,
 * each node's full ax_plan_print after it. */
AX_API void ax_cluster_plan_print(const ax_cluster_plan_t *plan, bool node_plans, FILE *out);
/* JSON: {"cluster":{...totals},"hosts":[...],"nodes":[{"node":0,"host":"a",
 * "local":0,"workers":64,"numa_nodes":[0,1],"memory":{...},"pinned":false,
 * "warnings":[...]}],"warnings":[...]} */
AX_API void ax_cluster_plan_print_json(const ax_cluster_plan_t *plan, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* AXON_TOPOLOGY_H */
