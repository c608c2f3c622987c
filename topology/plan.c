/* topology/plan.c - the placement planner: topology + config -> which PU,
 * core, L3 group and NUMA node each worker gets, and what memory it costs.
 *
 * Order: selected cores are sorted by (NUMA node, L3 group, core), so worker
 * i and i+1 share an L3 and a node wherever the selection allows; with
 * smt = all the siblings of a core are adjacent.  A worker count below the
 * selection takes the first cores in that order (compact: fewest nodes);
 * reserve_cores removes the LAST selected cores, leaving them to the
 * embedding program.
 *
 * Threading: ax_plan_create reads the topology only; a plan is immutable.
 * Memory: the plan owns its workers array and warning strings (one malloc
 * each); ax_plan_destroy frees them.  Nothing points into the topology.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/topo_internal.h"

#define RING_CONTROL_LINES 3u /* head, tail and read-only lines of a ring */
#define CACHELINE 64u


/* Append a formatted warning to a warnings array (the plan's and the
 * cluster plan's): -ENOMEM if it cannot be kept.  malloc, not strdup, so the
 * tests' allocation-failure injection reaches it. */
int ax__warn_append(char ***warnings, uint32_t *nwarnings, const char *fmt, va_list ap)
{
    char buf[600];
    vsnprintf(buf, sizeof buf, fmt, ap);
    char **w = realloc(*warnings, (*nwarnings + 1) * sizeof *w);
    if (!w)
        return -ENOMEM;
    *warnings = w;
    size_t n = strlen(buf) + 1;
    if (!(w[*nwarnings] = malloc(n)))
        return -ENOMEM;
    memcpy(w[(*nwarnings)++], buf, n);
    return 0;
}

static int warn(ax_plan_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int warn(ax_plan_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ax__warn_append(&p->warnings, &p->nwarnings, fmt, ap);
    va_end(ap);
    return rc;
}

/* b bytes as "N B" or "x.y KiB".."EiB" (also the cluster plan's). */
void ax__fmt_bytes(uint64_t b, char *buf, size_t len)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)b;
    unsigned u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", b);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
}

/* scheduler.ring_slots = 0: size rings so each worker's inbound rings take
 * about AX_RING_AUTO_BYTES, as a power of two in [256, 4096] slots.  Few
 * workers get deep rings (a burst from one sender rarely spills into the
 * overflow queue); 64 workers get 256 slots (63 inbound rings, ~1 MiB).
 * Not static: docs and tests quote it. */
uint32_t ax_plan_auto_ring_slots(const ax_config_t *cfg, uint32_t nworkers)
{
    if (cfg && cfg->ring_slots)
        return cfg->ring_slots;
    uint64_t per = nworkers > 1 ? AX_RING_AUTO_BYTES / (64u * (uint64_t)(nworkers - 1)) : 4096;
    uint32_t slots = 256;
    while (slots < 4096 && (uint64_t)slots * 2 <= per)
        slots *= 2;
    return slots;
}

/* qsort_r (glibc) carries the topology: no global, two planners may run. */
static int core_order(const void *a, const void *b, void *ctx)
{
    const ax_topo_t *t = ctx;
    const ax_topo_core_t *x = &t->cores[*(const uint32_t *)a];
    const ax_topo_core_t *y = &t->cores[*(const uint32_t *)b];
    if (x->numa_idx != y->numa_idx)
        return x->numa_idx < y->numa_idx ? -1 : 1;
    if (x->l3 != y->l3)
        return x->l3 < y->l3 ? -1 : 1; /* AX_TOPO_NONE sorts last */
    return x->logical < y->logical ? -1 : x->logical > y->logical;
}

typedef struct slot {
    uint32_t core; /* index into topo->cores */
    uint32_t pu;   /* PU OS index */
} slot_t;

void ax_plan_destroy(ax_plan_t *plan)
{
    if (!plan)
        return;
    for (uint32_t i = 0; i < plan->nwarnings; i++)
        free(plan->warnings[i]);
    free(plan->warnings);
    free(plan->workers);
    free(plan);
}

/* A listed id that the topology does not have is an error, not a silent
 * shrink of the selection: "cpus = 0-127" on a 64-PU box is a wrong file. */
/* The topology's source is named because it may be this machine restricted
 * to the process's CPUs: "cpus = 0" under taskset -c 1 must say why. */
/* Every error names the file and line (or the variable) of the key that
 * caused it when it came from one (ax__config_where). */
static int check_ids(const ax_config_t *cfg, const uint64_t *want, const uint64_t *have,
                     const char *key, const char *val, const char *what, const char *source,
                     char *err, size_t errlen)
{
    char where[AX_CONFIG_STR_MAX + 32];
    for (uint32_t i = 0; i < AX_IDLIST_LIMIT; i++)
        if (ax__bit_test(want, i) && !ax__bit_test(have, i)) {
            ax__config_where(cfg, key, where, sizeof where);
            ax__seterr(err, errlen, "%s%s = %s: %s %u does not exist in this topology (%s); list "
                   "only existing ones (see axon-topo)", where, key, val, what, i, source);
            return -EINVAL;
        }
    return 0;
}

/* share/nshares: a cluster host running nshares nodes gives node `share`
 * its contiguous slice of the selected cores (after reserve_cores), so the
 * nodes of one host split it along NUMA and L3 boundaries where counts
 * allow; with more nodes than cores, node k gets core k mod ncores (the
 * caller allows that only when oversubscription is). */
static int select_slots(const ax_topo_t *t, const ax_config_t *cfg, uint32_t share,
                        uint32_t nshares, slot_t **out, uint32_t *nslots, uint32_t *ncores_sel,
                        char *err, size_t errlen)
{
    const size_t words = AX_IDLIST_LIMIT / 64;
    uint64_t *cpus = NULL, *nodes = NULL, *have = calloc(words, sizeof *have);
    uint32_t *order = calloc(t->ncores, sizeof *order);
    slot_t *slots = calloc(t->npus, sizeof *slots);
    uint32_t *core_first = calloc(t->ncores + 1, sizeof *core_first);
    int rc = -ENOMEM;
    char why[200], where[AX_CONFIG_STR_MAX + 32];
    if (!have || !order || !slots || !core_first) {
        ax__seterr(err, errlen, "out of memory planning %u cores", t->ncores);
        goto out;
    }
    rc = -EINVAL;
    if (cfg->cpus[0]) {
        if (!(cpus = calloc(words, sizeof *cpus))) {
            ax__seterr(err, errlen, "out of memory planning %u cores", t->ncores);
            rc = -ENOMEM;
            goto out;
        }
        if (ax__idlist_parse(cfg->cpus, cpus, AX_IDLIST_LIMIT, why, sizeof why) < 0) {
            ax__seterr(err, errlen, "workers.cpus = %s: %s", cfg->cpus, why);
            goto out;
        }
        for (uint32_t i = 0; i < t->npus; i++)
            if (t->pu_os[i] < AX_IDLIST_LIMIT)
                have[t->pu_os[i] / 64] |= 1ull << (t->pu_os[i] % 64);
        if (check_ids(cfg, cpus, have, "workers.cpus", cfg->cpus, "PU", t->summary.source, err,
                      errlen) < 0)
            goto out;
    }
    if (cfg->numa_nodes[0]) {
        if (!(nodes = calloc(words, sizeof *nodes))) {
            ax__seterr(err, errlen, "out of memory planning %u cores", t->ncores);
            rc = -ENOMEM;
            goto out;
        }
        if (ax__idlist_parse(cfg->numa_nodes, nodes, AX_IDLIST_LIMIT, why, sizeof why) < 0) {
            ax__seterr(err, errlen, "workers.numa_nodes = %s: %s", cfg->numa_nodes, why);
            goto out;
        }
        memset(have, 0, words * sizeof *have);
        for (uint32_t i = 0; i < t->nnodes; i++)
            if (t->nodes[i].os < AX_IDLIST_LIMIT)
                have[t->nodes[i].os / 64] |= 1ull << (t->nodes[i].os % 64);
        if (check_ids(cfg, nodes, have, "workers.numa_nodes", cfg->numa_nodes, "NUMA node",
                      t->summary.source, err, errlen) < 0)
            goto out;
    }

    for (uint32_t i = 0; i < t->ncores; i++)
        order[i] = i;
    qsort_r(order, t->ncores, sizeof *order, core_order, (void *)t);

    uint32_t n = 0, ncore = 0;
    for (uint32_t oi = 0; oi < t->ncores; oi++) {
        const ax_topo_core_t *c = &t->cores[order[oi]];
        if (nodes && (c->numa >= AX_IDLIST_LIMIT || !ax__bit_test(nodes, c->numa)))
            continue;
        uint32_t before = n;
        for (uint32_t k = 0; k < c->npus; k++) {
            uint32_t pu = t->pu_os[c->pu_first + k];
            if (cpus && (pu >= AX_IDLIST_LIMIT || !ax__bit_test(cpus, pu)))
                continue;
            slots[n++] = (slot_t){ .core = order[oi], .pu = pu };
            if (cfg->smt == AX_SMT_CORE)
                break; /* the first selected PU of the core */
        }
        if (n > before)
            core_first[ncore++] = before;
    }
    core_first[ncore] = n;
    if (ncore == 0) {
        ax__config_where(cfg, cfg->cpus[0] ? "workers.cpus" : "workers.numa_nodes", where,
                         sizeof where);
        ax__seterr(err, errlen, "%sworkers.cpus = '%s' and workers.numa_nodes = '%s' select no "
               "core of this topology; widen the selection", where, cfg->cpus, cfg->numa_nodes);
        goto out;
    }
    if (cfg->reserve_cores >= ncore) {
        ax__config_where(cfg, "workers.reserve_cores", where, sizeof where);
        ax__seterr(err, errlen, "%sworkers.reserve_cores = %u: the selection has only %u core%s, "
               "so no worker would be left; lower reserve_cores or select more CPUs", where,
               cfg->reserve_cores, ncore, ncore == 1 ? "" : "s");
        goto out;
    }
    ncore -= cfg->reserve_cores;
    if (nshares > 1) {
        /* ncore <= 2^32 / AX_HOST_SLOTS_MAX is not guaranteed: 64-bit products. */
        uint32_t from = nshares <= ncore ? (uint32_t)((uint64_t)ncore * share / nshares)
                                         : share % ncore;
        uint32_t to = nshares <= ncore ? (uint32_t)((uint64_t)ncore * (share + 1) / nshares)
                                       : from + 1;
        uint32_t first = core_first[from];
        memmove(slots, slots + first, (core_first[to] - first) * sizeof *slots);
        for (uint32_t i = from; i <= to; i++)
            core_first[i - from] = core_first[i] - first;
        ncore = to - from;
    }
    *nslots = core_first[ncore];
    *ncores_sel = ncore;
    *out = slots;
    slots = NULL;
    rc = 0;
out:
    free(cpus);
    free(nodes);
    free(have);
    free(order);
    free(slots);
    free(core_first);
    return rc;
}

static int add_warnings(ax_plan_t *p, const ax_topo_t *t, uint32_t nslots)
{
    int rc = 0;
    char a[32], b[32], c[32];
    if (!p->this_system)
        rc |= warn(p, "the topology is not this machine (%s): this plan is for review; an "
                   "engine started from it here runs its workers unpinned", p->topo.source);
    if (p->oversubscribed)
        rc |= warn(p, "OVERSUBSCRIBED: %u workers on %u %s; workers are UNPINNED and must not "
                   "busy-spin; use this for functional tests only, never to measure speed",
                   p->nworkers, nslots, p->config.smt == AX_SMT_ALL ? "PUs" : "cores");

    /* Workers sharing a core (smt = all, or oversubscription): name a few. */
    uint32_t *count = calloc(t->ncores, sizeof *count);
    uint32_t *first = calloc(t->ncores, sizeof *first);
    if (!count || !first) {
        free(count);
        free(first);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < p->nworkers; i++) {
        uint32_t core = p->workers[i].core;
        if (core < t->ncores && count[core]++ == 0)
            first[core] = i;
    }
    uint32_t shared = 0, named = 0;
    for (uint32_t core = 0; core < t->ncores; core++) {
        if (count[core] < 2)
            continue;
        shared++;
        if (named < 4) {
            named++;
            uint32_t second = first[core] + 1;
            while (second < p->nworkers && p->workers[second].core != core)
                second++;
            rc |= warn(p, "workers %u and %u%s share core %u: they compete for its execution "
                       "units%s", first[core], second, count[core] > 2 ? " (and others)" : "",
                       core, p->config.smt == AX_SMT_ALL ? " (smt = all)" : "");
        }
    }
    if (shared > named)
        rc |= warn(p, "... and %u more cores run more than one worker", shared - named);
    free(count);
    free(first);

    /* Rings: each worker receives on ring_peers rings, placed on its own node. */
    uint64_t inbound = p->nworkers ? p->ring_budget_bytes / p->nworkers : 0;
    if (inbound > p->arena_bytes) {
        ax__fmt_bytes(inbound, a, sizeof a);
        ax__fmt_bytes(p->arena_bytes, b, sizeof b);
        rc |= warn(p, "rings will not fit the arenas: each worker's %u inbound rings take %s, "
                   "more than its %s arena; lower scheduler.ring_slots or raise "
                   "memory.arena_bytes", p->ring_peers, a, b);
    }
    for (uint32_t n = 0; n < t->nnodes; n++) {
        uint64_t cap = t->nodes[n].memory_bytes;
        uint32_t on = 0;
        for (uint32_t i = 0; i < p->nworkers; i++)
            on += p->workers[i].numa == t->nodes[n].os;
        if (!on || !cap)
            continue;
        uint64_t rings = on * inbound, need = rings + on * p->arena_bytes;
        ax__fmt_bytes(need, a, sizeof a);
        ax__fmt_bytes(cap, b, sizeof b);
        ax__fmt_bytes(rings, c, sizeof c);
        if (need > cap)
            rc |= warn(p, "NUMA node %u: its %u workers need %s (arenas + inbound rings) but "
                       "the node has %s; lower memory.arena_bytes, scheduler.ring_slots or the "
                       "worker count", t->nodes[n].os, on, a, b);
        else if (rings > cap / 4)
            rc |= warn(p, "NUMA node %u: rings take %s, more than a quarter of its %s; lower "
                       "scheduler.ring_slots", t->nodes[n].os, c, b);
    }
    return rc ? -ENOMEM : 0;
}

int ax_plan_create(const ax_topo_t *topo, const ax_config_t *cfg_in, ax_plan_t **out,
                   char *err, size_t errlen)
{
    return ax__plan_create_share(topo, cfg_in, 0, 1, out, err, errlen);
}

int ax__plan_create_share(const ax_topo_t *topo, const ax_config_t *cfg_in, uint32_t share,
                          uint32_t nshares, ax_plan_t **out, char *err, size_t errlen)
{
    if (nshares == 0 || share >= nshares) {
        ax__seterr(err, errlen, "ax__plan_create_share: share %u of %u", share, nshares);
        return -EINVAL;
    }
    if (!topo || !out) {
        ax__seterr(err, errlen, "ax_plan_create: topology or out is NULL; load a topology first");
        return -EINVAL;
    }
    *out = NULL;
    ax_config_t defaults;
    ax_config_init(&defaults);
    const ax_config_t *cfg = cfg_in ? cfg_in : &defaults;
    ax_config_error_t cerr;
    if (ax_config_validate(cfg, &cerr) < 0) {
        ax__seterr(err, errlen, "%s", cerr.message);
        return -EINVAL;
    }

    slot_t *slots = NULL;
    uint32_t nslots = 0, ncores = 0;
    int rc = select_slots(topo, cfg, share, nshares, &slots, &nslots, &ncores, err, errlen);
    if (rc < 0)
        return rc;
    const char *unit = cfg->smt == AX_SMT_ALL ? "PUs" : "cores";
    uint32_t want = cfg->workers ? cfg->workers : nslots;
    char where[AX_CONFIG_STR_MAX + 32];
    ax__config_where(cfg, "workers.count", where, sizeof where);
    /* The engine's limit, checked here so a plan never promises what
     * ax_engine_create then refuses (blaming memory.arena_bytes). */
    if (want > AX_WORKERS_MAX) {
        if (cfg->workers)
            ax__seterr(err, errlen, "%sworkers.count = %u: an engine runs at most %u workers; "
                       "lower the count", where, want, AX_WORKERS_MAX);
        else
            ax__seterr(err, errlen, "workers.count = 0 means one worker per selected %s, and "
                       "this topology (%s) has %u: an engine runs at most %u workers; set "
                       "workers.count, or narrow workers.cpus or workers.numa_nodes",
                       cfg->smt == AX_SMT_ALL ? "PU" : "core", topo->summary.source, nslots,
                       AX_WORKERS_MAX);
        free(slots);
        return -EINVAL;
    }
    if (want > nslots && !cfg->oversubscribe) {
        ax__seterr(err, errlen, "%sworkers.count = %u: the selection has %u %s (smt = %s, %u "
               "reserved); lower the count, select more CPUs%s, or set workers.oversubscribe = "
               "true to run unpinned (functional tests only)", where, want, nslots, unit,
               cfg->smt == AX_SMT_ALL ? "all" : "core", cfg->reserve_cores,
               cfg->smt == AX_SMT_ALL ? "" : " or set workers.smt = all");
        free(slots);
        return -EINVAL;
    }

    ax_plan_t *p = calloc(1, sizeof *p);
    if (!p || !(p->workers = calloc(want, sizeof *p->workers))) {
        free(p);
        free(slots);
        ax__seterr(err, errlen, "out of memory for a plan of %u workers", want);
        return -ENOMEM;
    }
    p->nworkers = want;
    p->config = *cfg;
    p->topo = topo->summary;
    p->this_system = topo->this_system;
    p->oversubscribed = want > nslots;
    /* workers.unpinned: the kernel places the workers.  Without it a
     * single-worker process is bound to the first CPU of its selection,
     * and several such processes on one host (cluster nodes) all share
     * that one CPU while the others stay idle. */
    p->pinned = p->this_system && !p->oversubscribed && !cfg->unpinned;
    for (uint32_t i = 0; i < want; i++) {
        const slot_t *s = &slots[i % nslots]; /* round-robin only when oversubscribed */
        const ax_topo_core_t *c = &topo->cores[s->core];
        p->workers[i] = (ax_plan_worker_t){ .worker = i, .pu = s->pu, .core = c->logical,
                                            .l3 = c->l3, .numa = c->numa,
                                            .package = c->package };
    }
    p->arena_bytes = ax_config_arena_bytes(cfg);
    p->ring_slots = ax_plan_auto_ring_slots(cfg, p->nworkers);
    p->ring_bytes = (uint64_t)p->ring_slots * CACHELINE + RING_CONTROL_LINES * CACHELINE;
    /* want <= AX_WORKERS_MAX (1024): 1024*1023 rings of at most 4 MiB stays
     * far below 2^64. */
    p->ring_mesh_bytes = (uint64_t)want * (want - 1) * p->ring_bytes;
    p->arena_total_bytes = (uint64_t)want * p->arena_bytes;
    /* The engine's layout (engine.c alloc_rings): per receiver, the
     * control blocks of the rings opened to it packed in whole pages,
     * then each ring's slots.  Without the doorbell every ring is made at
     * create; with it only the rings of pairs that talk. */
    p->rings_lazy = cfg->doorbell == AX_DOORBELL_ON ||
                    (cfg->doorbell == AX_DOORBELL_AUTO && want > AX_DOORBELL_AUTO_MIN);
    p->ring_peers = want > 1 ? want - 1 : 0;
    if (p->rings_lazy && cfg->ring_peers && cfg->ring_peers < p->ring_peers)
        p->ring_peers = cfg->ring_peers;
    uint64_t ctl = ((uint64_t)p->ring_peers * RING_CONTROL_LINES * CACHELINE + 4095) & ~4095ull;
    p->ring_budget_bytes =
        (uint64_t)want * ((uint64_t)p->ring_peers * p->ring_slots * CACHELINE + ctl);
    p->total_bytes = p->arena_total_bytes + p->ring_budget_bytes;
    (void)ncores;
    rc = add_warnings(p, topo, nslots);
    free(slots);
    if (rc < 0) {
        ax_plan_destroy(p);
        ax__seterr(err, errlen, "out of memory writing the plan's warnings");
        return rc;
    }
    *out = p;
    return 0;
}

/* ---- output --------------------------------------------------------------- */

static void print_summary(const ax_topo_summary_t *s, FILE *out)
{
    char m[32];
    ax__fmt_bytes(s->memory_bytes, m, sizeof m);
    fprintf(out, "topology: %s\n", s->source);
    fprintf(out, "  %u package%s, %u NUMA node%s, %u L3 group%s, %u core%s, %u PU%s, %s memory\n",
            s->packages, s->packages == 1 ? "" : "s", s->numa_nodes,
            s->numa_nodes == 1 ? "" : "s", s->l3_groups, s->l3_groups == 1 ? "" : "s",
            s->cores, s->cores == 1 ? "" : "s", s->pus, s->pus == 1 ? "" : "s", m);
}

void ax_plan_print(const ax_plan_t *p, FILE *out)
{
    if (!p || !out)
        return;
    print_summary(&p->topo, out);
    fprintf(out, "\nplan: %u worker%s, %s, %s\n", p->nworkers, p->nworkers == 1 ? "" : "s",
            p->config.smt == AX_SMT_ALL ? "one per PU (smt = all)" : "one per core (smt = core)",
            p->pinned             ? "pinned"
            : p->oversubscribed   ? "UNPINNED (oversubscribed)"
            : !p->this_system     ? "UNPINNED (not this machine)"
                                  : "UNPINNED (workers.unpinned)");
    fprintf(out, "  worker    pu  core    l3  numa  package\n");
    for (uint32_t i = 0; i < p->nworkers; i++) {
        const ax_plan_worker_t *w = &p->workers[i];
        char l3[16];
        if (w->l3 == AX_TOPO_NONE)
            snprintf(l3, sizeof l3, "-");
        else
            snprintf(l3, sizeof l3, "%u", w->l3);
        fprintf(out, "  %6u  %4u  %4u  %4s  %4u  %7u\n", w->worker, w->pu, w->core, l3, w->numa,
                w->package);
    }
    char a[32], b[32], c[32], d[32], e[32];
    ax__fmt_bytes(p->arena_bytes, a, sizeof a);
    ax__fmt_bytes(p->arena_total_bytes, b, sizeof b);
    ax__fmt_bytes(p->ring_bytes, c, sizeof c);
    ax__fmt_bytes(p->ring_mesh_bytes, d, sizeof d);
    ax__fmt_bytes(p->total_bytes, e, sizeof e);
    uint64_t rings = p->nworkers > 1 ? (uint64_t)p->nworkers * (p->nworkers - 1) : 0;
    fprintf(out, "\nmemory budget:\n");
    fprintf(out, "  arena per worker  %12s  (%" PRIu64 " bytes)\n", a, p->arena_bytes);
    fprintf(out, "  arenas total      %12s  (%" PRIu64 " bytes, %u workers)\n", b,
            p->arena_total_bytes, p->nworkers);
    fprintf(out, "  one ring          %12s  (%u slots x 64 B + %u control lines)\n", c,
            p->ring_slots, RING_CONTROL_LINES);
    fprintf(out, "  ring mesh         %12s  (%" PRIu64 " bytes, %" PRIu64 " rings = N*(N-1)%s)\n",
            d, p->ring_mesh_bytes, rings, p->rings_lazy ? ", reserved, not touched" : "");
    char f[32];
    ax__fmt_bytes(p->ring_budget_bytes, f, sizeof f);
    if (p->rings_lazy)
        fprintf(out, "  rings in use      %12s  (%" PRIu64 " bytes: made on first use; %u peers per "
                     "worker%s)\n", f, p->ring_budget_bytes, p->ring_peers,
                p->config.ring_peers ? ", scheduler.ring_peers" : ", all: set scheduler.ring_peers");
    else
        fprintf(out, "  rings in use      %12s  (%" PRIu64 " bytes: all made at create, doorbell "
                     "off)\n", f, p->ring_budget_bytes);
    fprintf(out, "  total             %12s  (%" PRIu64 " bytes)\n", e, p->total_bytes);
    fprintf(out, "\nwarnings:%s\n", p->nwarnings ? "" : " none");
    for (uint32_t i = 0; i < p->nwarnings; i++)
        fprintf(out, "  - %s\n", p->warnings[i]);
}

/* s as a JSON string (also the cluster plan's, cluster_plan.c). */
void ax__json_str(const char *s, FILE *out)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

void ax_plan_print_json(const ax_plan_t *p, FILE *out)
{
    if (!p || !out)
        return;
    const ax_topo_summary_t *s = &p->topo;
    fprintf(out, "{\"topology\":{\"source\":");
    ax__json_str(s->source, out);
    fprintf(out, ",\"packages\":%u,\"numa_nodes\":%u,\"l3_groups\":%u,\"cores\":%u,\"pus\":%u,"
            "\"memory_bytes\":%" PRIu64 "},\n\"workers\":[", s->packages, s->numa_nodes,
            s->l3_groups, s->cores, s->pus, s->memory_bytes);
    for (uint32_t i = 0; i < p->nworkers; i++) {
        const ax_plan_worker_t *w = &p->workers[i];
        char l3[16];
        if (w->l3 == AX_TOPO_NONE)
            snprintf(l3, sizeof l3, "null");
        else
            snprintf(l3, sizeof l3, "%u", w->l3);
        fprintf(out, "%s\n {\"worker\":%u,\"pu\":%u,\"core\":%u,\"l3\":%s,\"numa\":%u,"
                "\"package\":%u}", i ? "," : "", w->worker, w->pu, w->core, l3, w->numa,
                w->package);
    }
    fprintf(out, "],\n\"memory\":{\"arena_bytes\":%" PRIu64 ",\"arena_total_bytes\":%" PRIu64
            ",\"ring_slots\":%u,\"ring_bytes\":%" PRIu64 ",\"ring_mesh_bytes\":%" PRIu64
            ",\"rings_lazy\":%s,\"ring_peers\":%u,\"ring_budget_bytes\":%" PRIu64
            ",\"total_bytes\":%" PRIu64 "},\n", p->arena_bytes, p->arena_total_bytes,
            p->ring_slots, p->ring_bytes, p->ring_mesh_bytes, p->rings_lazy ? "true" : "false",
            p->ring_peers, p->ring_budget_bytes, p->total_bytes);
    fprintf(out, "\"smt\":\"%s\",\"pinned\":%s,\"oversubscribed\":%s,\"this_system\":%s,"
            "\"warnings\":[", p->config.smt == AX_SMT_ALL ? "all" : "core",
            p->pinned ? "true" : "false", p->oversubscribed ? "true" : "false",
            p->this_system ? "true" : "false");
    for (uint32_t i = 0; i < p->nwarnings; i++) {
        if (i)
            fputc(',', out);
        fputs("\n ", out);
        ax__json_str(p->warnings[i], out);
    }
    fprintf(out, "]}\n");
}
