/* topology/topo_internal.h - what topo.c, plan.c and bind.c share.
 *
 * A topology is loaded once and flattened here into plain arrays (cores in
 * hwloc logical order, each with its PUs, L3 group, NUMA node and package),
 * so the planner never walks hwloc objects and a plan never points into the
 * topology.  The hwloc handle stays for binding (bind.c) and XML export.
 *
 * Threading: immutable after ax_topo_load_*; read from any thread.
 * Memory: everything below belongs to the ax_topo_t; ax_topo_destroy frees it.
 */
#ifndef AXON_TOPOLOGY_TOPO_INTERNAL_H
#define AXON_TOPOLOGY_TOPO_INTERNAL_H

#include <hwloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "axon/topology.h"

#define AX_TOPO_NONE UINT32_MAX /* "this core has no L3 cache" */

typedef struct ax_topo_core {
    uint32_t logical;  /* core logical index */
    uint32_t l3;       /* L3 logical index, AX_TOPO_NONE when there is none */
    uint32_t numa;     /* local NUMA node OS index */
    uint32_t numa_idx; /* same node, logical index (orders workers) */
    uint32_t package;  /* package logical index (0 when hwloc reports none) */
    uint32_t pu_first; /* index into ax_topo.pu_os */
    uint32_t npus;     /* PUs of this core, siblings in cpuset order */
} ax_topo_core_t;

typedef struct ax_topo_node {
    uint32_t os;           /* NUMA node OS index */
    uint64_t memory_bytes; /* local memory as hwloc reports it (0: unknown) */
} ax_topo_node_t;

struct ax_topo {
    hwloc_topology_t hw;
    bool this_system; /* is_thissystem && thread cpubind supported */
    ax_topo_summary_t summary;
    uint32_t ncores;
    ax_topo_core_t *cores;
    uint32_t npus;
    uint32_t *pu_os; /* PU OS indexes grouped by core */
    uint32_t nnodes;
    ax_topo_node_t *nodes; /* logical order */
};

/* Parse a list such as "0-7,16" of non-negative integers below `limit` into
 * a bitmap of (limit + 63) / 64 words the caller zeroed.  Returns 0, or
 * -EINVAL with `why` (whylen bytes) saying what was wrong.  Lives in config.c
 * so the config fuzzer needs no hwloc. */
int ax__idlist_parse(const char *s, uint64_t *bits, uint32_t limit, char *why, size_t whylen);
#define AX_IDLIST_LIMIT 65536u /* largest PU / node OS index + 1 we accept */

static inline bool ax__bit_test(const uint64_t *bits, uint32_t i)
{
    return (bits[i / 64] >> (i % 64)) & 1u;
}

/* For tests: load a synthetic topology and restrict it exactly as the
 * system topology is restricted for a process bound to the PUs in `cpus`
 * ("0-3,8", OS indexes), so multi-node restriction can be checked on a
 * one-node machine.  Same returns and ownership as ax_topo_load_synthetic. */
int ax__topo_load_synthetic_bound(const char *desc, const char *cpus, ax_topo_t **out,
                                  char *err, size_t errlen);

/* Where key ("workers.count") got its value, as a prefix for an error
 * message: "FILE:LINE: ", "AXON_WORKERS_COUNT (environment): ", or "" when
 * it was set in C or never set.  Lives in config.c. */
void ax__config_where(const ax_config_t *cfg, const char *key, char *buf, size_t len);

/* ax_plan_create for node `share` (0..nshares-1) of nshares sharing one
 * host: it gets a contiguous slice of the selected cores (plan.c). */
int ax__plan_create_share(const ax_topo_t *topo, const ax_config_t *cfg, uint32_t share,
                          uint32_t nshares, ax_plan_t **out, char *err, size_t errlen);

/* Format a sentence into err (errlen bytes; err may be NULL). */
void ax__seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append a formatted warning to (*warnings, *nwarnings): 0 or -ENOMEM. */
int ax__warn_append(char ***warnings, uint32_t *nwarnings, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* b bytes, human readable ("N B", "x.y KiB" .. "EiB"), into buf. */
void ax__fmt_bytes(uint64_t b, char *buf, size_t len);

/* Write s to out as a JSON string literal (quotes, escapes). */
void ax__json_str(const char *s, FILE *out);

#endif /* AXON_TOPOLOGY_TOPO_INTERNAL_H */
