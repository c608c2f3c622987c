/* topology/cluster_plan.c - the cluster planner: a hostfile (or a list of
 * XML topologies) plus a config -> one engine plan per axon node, the
 * memory per node and per host, and cluster totals (docs/cluster-plan.md).
 *
 * Each host's topology is loaded once; its N nodes each get a contiguous
 * share of its selected cores (ax__plan_create_share), so two nodes on a
 * two-socket host get a socket each.  Only arenas and the local ring mesh
 * are counted: the transport's own buffers (UCX) are not in the plan.
 *
 * Threading: single-threaded; a cluster plan is immutable once made.
 * Memory: the plan owns its hosts, nodes, node plans and warnings;
 * ax_cluster_plan_destroy frees them all.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topology/topo_internal.h"

static int cwarn(ax_cluster_plan_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cwarn(ax_cluster_plan_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ax__warn_append(&p->warnings, &p->nwarnings, fmt, ap);
    va_end(ap);
    return rc;
}

void ax_cluster_plan_destroy(ax_cluster_plan_t *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nnodes; i++)
        ax_plan_destroy(p->nodes[i].plan);
    for (uint32_t i = 0; i < p->nwarnings; i++)
        free(p->warnings[i]);
    free(p->warnings);
    free(p->nodes);
    free(p->hosts);
    free(p);
}

/* "hosts.txt:3: host a" or "host a" (no file line). */
static void host_where(const ax_hostfile_t *hf, const ax_hostfile_host_t *h, char *buf,
                       size_t len)
{
    if (h->line)
        snprintf(buf, len, "%s:%u: host %s", hf->path, h->line, h->name);
    else
        snprintf(buf, len, "host %s", h->name);
}

static bool is_local_name(const char *name)
{
    if (!strcmp(name, "localhost") || !strcmp(name, "127.0.0.1") || !strcmp(name, "::1") ||
        !strcmp(name, "[::1]"))
        return true;
    char me[AX_HOST_NAME_MAX];
    if (gethostname(me, sizeof me) != 0)
        return false;
    me[sizeof me - 1] = '\0';
    if (!strcmp(name, me))
        return true;
    /* "node1" matches "node1.example.org" either way round. */
    size_t a = strcspn(name, "."), b = strcspn(me, ".");
    return a == b && !strncmp(name, me, a) && (!name[a] || !me[b]);
}

/* Load host h's topology by the documented order. */
static int load_host_topo(const ax_hostfile_t *hf, const ax_hostfile_host_t *h,
                          const ax_config_t *cfg, const char *dir, ax_topo_t **out, char *err,
                          size_t errlen)
{
    char where[AX_CONFIG_STR_MAX + AX_HOST_NAME_MAX + 32], why[1024];
    host_where(hf, h, where, sizeof where);
    int rc;
    const char *how;
    char path[2 * AX_CONFIG_STR_MAX + AX_HOST_NAME_MAX];
    if (h->xml[0]) {
        how = "its '# axon: xml='";
        rc = ax_topo_load_xml(h->xml, out, why, sizeof why);
    } else if (h->synthetic[0]) {
        how = "its '# axon: synthetic='";
        rc = ax_topo_load_synthetic(h->synthetic, out, why, sizeof why);
    } else if (dir && *dir) {
        how = "--topology-dir";
        snprintf(path, sizeof path, "%s/%s.xml", dir, h->name);
        if (access(path, R_OK) != 0) {
            ax__seterr(err, errlen, "%s: no readable %s (topology directory): export it on %s "
                       "with 'lstopo-no-graphics --of xml > %s.xml'", where, path, h->name,
                       h->name);
            return -ENOENT;
        }
        rc = ax_topo_load_xml(path, out, why, sizeof why);
    } else if (cfg->topology_synthetic[0] || cfg->topology_xml[0]) {
        how = "the config's topology";
        rc = ax_topo_load_config(cfg, out, why, sizeof why);
    } else if (is_local_name(h->name)) {
        how = "this machine";
        rc = ax_topo_load_system(out, why, sizeof why);
    } else {
        ax__seterr(err, errlen, "%s: no topology for this host: add '# axon: xml=FILE' or "
                   "'# axon: synthetic=DESC' to its line, give a topology directory holding "
                   "%s.xml, or one --synthetic / --xml for every host", where, h->name);
        return -EINVAL;
    }
    if (rc < 0)
        ax__seterr(err, errlen, "%s: %s: %s", where, how, why);
    return rc;
}

/* Distinct cores among a plan's workers (smt = all puts several on one). */
static uint32_t plan_cores(const ax_plan_t *p)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->nworkers; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = p->workers[j].core == p->workers[i].core;
        n += !seen;
    }
    return n;
}

int ax_cluster_plan_create(const ax_hostfile_t *hf, const ax_config_t *cfg_in,
                           const char *topology_dir, ax_cluster_plan_t **out, char *err,
                           size_t errlen)
{
    if (!hf || !out || !hf->nhosts || !hf->hosts) {
        ax__seterr(err, errlen, "ax_cluster_plan_create: no hosts; parse a hostfile or add "
                   "hosts first");
        return -EINVAL;
    }
    *out = NULL;
    if (err && errlen)
        err[0] = '\0'; /* so an out-of-memory below can tell whether it was explained */
    ax_config_t defaults;
    ax_config_init(&defaults);
    const ax_config_t *cfg = cfg_in ? cfg_in : &defaults;
    ax_config_error_t cerr;
    if (ax_config_validate(cfg, &cerr) < 0) {
        ax__seterr(err, errlen, "%s", cerr.message);
        return -EINVAL;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < hf->nhosts; i++) {
        if (hf->hosts[i].slots == 0 || hf->hosts[i].slots > AX_HOST_SLOTS_MAX) {
            ax__seterr(err, errlen, "host %s: slots = %u: expected 1 to %u", hf->hosts[i].name,
                       hf->hosts[i].slots, AX_HOST_SLOTS_MAX);
            return -EINVAL;
        }
        total += hf->hosts[i].slots;
    }
    if (total > AX_CLUSTER_NODES_MAX) {
        ax__seterr(err, errlen, "%s: %" PRIu64 " nodes; a plan takes at most %u", hf->path,
                   total, AX_CLUSTER_NODES_MAX);
        return -EINVAL;
    }

    ax_cluster_plan_t *p = calloc(1, sizeof *p);
    if (!p || !(p->hosts = calloc(hf->nhosts, sizeof *p->hosts)) ||
        !(p->nodes = calloc((size_t)total, sizeof *p->nodes))) {
        ax_cluster_plan_destroy(p);
        ax__seterr(err, errlen, "out of memory for a plan of %" PRIu64 " nodes", total);
        return -ENOMEM;
    }
    snprintf(p->source, sizeof p->source, "%s", hf->path[0] ? hf->path : "node list");
    p->nhosts = hf->nhosts;
    int rc = 0;
    char where[AX_CONFIG_STR_MAX + AX_HOST_NAME_MAX + 32], why[1024];
    char a[32], b[32];
    for (uint32_t hi = 0; hi < hf->nhosts && rc == 0; hi++) {
        const ax_hostfile_host_t *h = &hf->hosts[hi];
        ax_cluster_host_t *ch = &p->hosts[hi];
        host_where(hf, h, where, sizeof where);
        snprintf(ch->name, sizeof ch->name, "%s", h->name);
        ch->line = h->line;
        ch->first_node = p->nnodes;
        ch->nodes = h->slots;
        ax_topo_t *topo = NULL;
        if ((rc = load_host_topo(hf, h, cfg, topology_dir, &topo, err, errlen)) < 0)
            break;
        ax_topo_summary(topo, &ch->topo);
        if (h->slots > 1) {
            /* How many cores does the host's selection have?  A full plan
             * (one worker per selected core or PU) answers with the same
             * rules every node plan uses. */
            ax_config_t whole = *cfg;
            whole.workers = 0;
            whole.oversubscribe = false;
            ax_plan_t *all = NULL;
            if ((rc = ax_plan_create(topo, &whole, &all, why, sizeof why)) < 0) {
                ax__seterr(err, errlen, "%s: %s", where, why);
                ax_topo_destroy(topo);
                break;
            }
            uint32_t ncores = plan_cores(all);
            ax_plan_destroy(all);
            if (h->slots > ncores && !cfg->oversubscribe) {
                ax__seterr(err, errlen, "%s: slots = %u but its selection has %u core%s: each "
                           "node needs one; lower slots, or set workers.oversubscribe = true "
                           "to let nodes share cores (functional tests only)", where, h->slots,
                           ncores, ncores == 1 ? "" : "s");
                ax_topo_destroy(topo);
                rc = -EINVAL;
                break;
            }
            if (h->slots > ncores &&
                cwarn(p, "host %s: %u nodes share %u core%s: OVERSUBSCRIBED, for functional "
                      "tests only", h->name, h->slots, ncores, ncores == 1 ? "" : "s") < 0)
                rc = -ENOMEM;
        }
        if (!h->slots_given && h->line &&
            cwarn(p, "%s: no slots=: planned as one node, but mpirun gives a host without "
                  "slots= one slot per core; write slots=1", where) < 0)
            rc = -ENOMEM;
        for (uint32_t k = 0; k < h->slots && rc == 0; k++) {
            ax_cluster_node_t *n = &p->nodes[p->nnodes];
            n->node = p->nnodes;
            n->host = hi;
            n->local = k;
            rc = ax__plan_create_share(topo, cfg, k, h->slots, &n->plan, why, sizeof why);
            if (rc < 0) {
                if (h->slots > 1)
                    ax__seterr(err, errlen, "%s, node %u (%u of %u there): %s", where, n->node,
                               k + 1, h->slots, why);
                else
                    ax__seterr(err, errlen, "%s, node %u: %s", where, n->node, why);
                break;
            }
            p->nnodes++;
            const ax_plan_t *np = n->plan;
            p->workers += np->nworkers;
            p->arena_total_bytes += np->arena_total_bytes;
            p->ring_mesh_bytes += np->ring_budget_bytes; /* what total_bytes counts */
            p->total_bytes += np->total_bytes;
            ch->total_bytes += np->total_bytes;
        }
        ax_topo_destroy(topo);
        if (rc == 0 && ch->topo.memory_bytes && ch->total_bytes > ch->topo.memory_bytes) {
            ax__fmt_bytes(ch->total_bytes, a, sizeof a);
            ax__fmt_bytes(ch->topo.memory_bytes, b, sizeof b);
            if (cwarn(p, "host %s: its %u node%s need%s %s (arenas + rings) but it has %s; "
                      "lower memory.arena_bytes, scheduler.ring_slots, the worker count or "
                      "slots", h->name, h->slots, h->slots == 1 ? "" : "s",
                      h->slots == 1 ? "s" : "", a, b) < 0)
                rc = -ENOMEM;
        }
    }
    if (rc == -ENOMEM && !(err && *err))
        ax__seterr(err, errlen, "out of memory writing the cluster plan");
    if (rc < 0) {
        ax_cluster_plan_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ---- output ---------------------------------------------------------------- */

/* The NUMA nodes a plan's workers use, as an OS-index list "0-3" or "0,2". */
static void numa_list(const ax_plan_t *p, char *buf, size_t len)
{
    /* NUMA OS indexes are below AX_IDLIST_LIMIT; a plan has at most 1024
     * workers, so sort their node ids and print runs. */
    uint32_t ids[AX_WORKERS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->nworkers && n < AX_WORKERS_MAX; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < n && !seen; j++)
            seen = ids[j] == p->workers[i].numa;
        if (!seen)
            ids[n++] = p->workers[i].numa;
    }
    for (uint32_t i = 1; i < n; i++) /* insertion sort: few nodes */
        for (uint32_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            uint32_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n && off < len;) {
        uint32_t j = i;
        while (j + 1 < n && ids[j + 1] == ids[j] + 1)
            j++;
        int w = j > i ? snprintf(buf + off, len - off, "%s%u-%u", i ? "," : "", ids[i], ids[j])
                      : snprintf(buf + off, len - off, "%s%u", i ? "," : "", ids[i]);
        if (w < 0)
            break;
        off += (size_t)w;
        i = j + 1;
    }
}

static bool plan_has_warning(const ax_plan_t *p, const char *text)
{
    for (uint32_t v = 0; v < p->nwarnings; v++)
        if (!strcmp(p->warnings[v], text))
            return true;
    return false;
}

/* Print node warnings once each, with the nodes that have them as a list of
 * runs: "nodes 0-3: <text>", "nodes 0,2: <text>". */
static void print_node_warnings(const ax_cluster_plan_t *p, FILE *out)
{
    for (uint32_t i = 0; i < p->nnodes; i++) {
        const ax_plan_t *np = p->nodes[i].plan;
        for (uint32_t w = 0; w < np->nwarnings; w++) {
            const char *text = np->warnings[w];
            bool before = false; /* printed already for an earlier node? */
            for (uint32_t j = 0; j < i && !before; j++)
                before = plan_has_warning(p->nodes[j].plan, text);
            if (before)
                continue;
            char list[96];
            size_t off = 0;
            uint32_t count = 0;
            bool cut = false;
            for (uint32_t j = i; j < p->nnodes; j++) {
                if (!plan_has_warning(p->nodes[j].plan, text))
                    continue;
                uint32_t k = j;
                while (k + 1 < p->nnodes && plan_has_warning(p->nodes[k + 1].plan, text))
                    k++;
                count += k - j + 1;
                if (!cut) {
                    int n = k > j ? snprintf(list + off, sizeof list - off, "%s%u-%u",
                                             off ? "," : "", j, k)
                                  : snprintf(list + off, sizeof list - off, "%s%u",
                                             off ? "," : "", j);
                    if (n < 0 || (size_t)n >= sizeof list - off - 4) {
                        snprintf(list + off, sizeof list - off, ",...");
                        cut = true;
                    } else
                        off += (size_t)n;
                }
                j = k;
            }
            fprintf(out, "  - node%s %s: %s\n", count == 1 ? "" : "s", list, text);
        }
    }
}

void ax_cluster_plan_print(const ax_cluster_plan_t *p, bool node_plans, FILE *out)
{
    if (!p || !out)
        return;
    char t[32], a[32], r[32], m[32], nl[64];
    ax__fmt_bytes(p->total_bytes, t, sizeof t);
    fprintf(out, "cluster plan: %s\n  %u node%s on %u host%s, %" PRIu64 " workers, %s planned "
            "(arenas + rings; the transport's buffers are not counted)\n", p->source, p->nnodes,
            p->nnodes == 1 ? "" : "s", p->nhosts, p->nhosts == 1 ? "" : "s", p->workers, t);
    fprintf(out, "\nnodes:\n  %4s  %-16s  %5s  %7s  %-9s  %8s  %10s  %10s  %10s\n", "node",
            "host", "local", "workers", "numa", "pinned", "arenas", "rings", "total");
    for (uint32_t i = 0; i < p->nnodes; i++) {
        const ax_cluster_node_t *n = &p->nodes[i];
        const ax_plan_t *np = n->plan;
        ax__fmt_bytes(np->arena_total_bytes, a, sizeof a);
        ax__fmt_bytes(np->ring_budget_bytes, r, sizeof r);
        ax__fmt_bytes(np->total_bytes, t, sizeof t);
        numa_list(np, nl, sizeof nl);
        fprintf(out, "  %4u  %-16s  %5u  %7u  %-9s  %8s  %10s  %10s  %10s\n", n->node,
                p->hosts[n->host].name, n->local, np->nworkers, nl, np->pinned ? "yes" : "no",
                a, r, t);
    }
    fprintf(out, "\nhosts:\n");
    for (uint32_t i = 0; i < p->nhosts; i++) {
        const ax_cluster_host_t *h = &p->hosts[i];
        ax__fmt_bytes(h->topo.memory_bytes, m, sizeof m);
        ax__fmt_bytes(h->total_bytes, t, sizeof t);
        char range[32];
        if (h->nodes == 1)
            snprintf(range, sizeof range, "%u", h->first_node);
        else
            snprintf(range, sizeof range, "%u-%u", h->first_node, h->first_node + h->nodes - 1);
        fprintf(out, "  %s: %u node%s (%s); %u core%s, %u PU%s, %u NUMA node%s, %s memory; "
                "planned %s; topology %s\n", h->name, h->nodes, h->nodes == 1 ? "" : "s",
                range, h->topo.cores,
                h->topo.cores == 1 ? "" : "s", h->topo.pus, h->topo.pus == 1 ? "" : "s",
                h->topo.numa_nodes, h->topo.numa_nodes == 1 ? "" : "s", m, t, h->topo.source);
    }
    ax__fmt_bytes(p->arena_total_bytes, a, sizeof a);
    ax__fmt_bytes(p->ring_mesh_bytes, r, sizeof r);
    ax__fmt_bytes(p->total_bytes, t, sizeof t);
    fprintf(out, "\ntotals:\n  nodes    %12u\n  workers  %12" PRIu64 "\n  arenas   %12s  (%"
            PRIu64 " bytes)\n  rings    %12s  (%" PRIu64 " bytes, each node's ring budget)\n"
            "  total    %12s  (%" PRIu64 " bytes)\n", p->nnodes, p->workers, a,
            p->arena_total_bytes, r, p->ring_mesh_bytes, t, p->total_bytes);
    uint32_t nw = p->nwarnings;
    for (uint32_t i = 0; i < p->nnodes; i++)
        nw += p->nodes[i].plan->nwarnings;
    fprintf(out, "\nwarnings:%s\n", nw ? "" : " none");
    for (uint32_t i = 0; i < p->nwarnings; i++)
        fprintf(out, "  - %s\n", p->warnings[i]);
    print_node_warnings(p, out);
    if (node_plans)
        for (uint32_t i = 0; i < p->nnodes; i++) {
            fprintf(out, "\n==== node %u (host %s, %u of %u there) ====\n", i,
                    p->hosts[p->nodes[i].host].name, p->nodes[i].local + 1,
                    p->hosts[p->nodes[i].host].nodes);
            ax_plan_print(p->nodes[i].plan, out);
        }
}

void ax_cluster_plan_print_json(const ax_cluster_plan_t *p, FILE *out)
{
    if (!p || !out)
        return;
    fprintf(out, "{\"cluster\":{\"source\":");
    ax__json_str(p->source, out);
    fprintf(out, ",\"nodes\":%u,\"hosts\":%u,\"workers\":%" PRIu64 ",\"arena_total_bytes\":%"
            PRIu64 ",\"ring_mesh_bytes\":%" PRIu64 ",\"total_bytes\":%" PRIu64 "},\n\"hosts\":[",
            p->nnodes, p->nhosts, p->workers, p->arena_total_bytes, p->ring_mesh_bytes,
            p->total_bytes);
    for (uint32_t i = 0; i < p->nhosts; i++) {
        const ax_cluster_host_t *h = &p->hosts[i];
        fprintf(out, "%s\n {\"name\":", i ? "," : "");
        ax__json_str(h->name, out);
        fprintf(out, ",\"line\":%u,\"first_node\":%u,\"nodes\":%u,\"total_bytes\":%" PRIu64
                ",\"topology\":{\"source\":", h->line, h->first_node, h->nodes, h->total_bytes);
        ax__json_str(h->topo.source, out);
        fprintf(out, ",\"packages\":%u,\"numa_nodes\":%u,\"l3_groups\":%u,\"cores\":%u,"
                "\"pus\":%u,\"memory_bytes\":%" PRIu64 "}}", h->topo.packages,
                h->topo.numa_nodes, h->topo.l3_groups, h->topo.cores, h->topo.pus,
                h->topo.memory_bytes);
    }
    fprintf(out, "],\n\"nodes\":[");
    for (uint32_t i = 0; i < p->nnodes; i++) {
        const ax_cluster_node_t *n = &p->nodes[i];
        const ax_plan_t *np = n->plan;
        fprintf(out, "%s\n {\"node\":%u,\"host\":", i ? "," : "", n->node);
        ax__json_str(p->hosts[n->host].name, out);
        fprintf(out, ",\"local\":%u,\"workers\":%u,\"cores\":%u,\"numa_nodes\":[", n->local,
                np->nworkers, plan_cores(np));
        uint32_t printed = 0;
        for (uint32_t w = 0; w < np->nworkers; w++) {
            bool seen = false;
            for (uint32_t v = 0; v < w && !seen; v++)
                seen = np->workers[v].numa == np->workers[w].numa;
            if (!seen)
                fprintf(out, "%s%u", printed++ ? "," : "", np->workers[w].numa);
        }
        fprintf(out, "],\"pus\":[");
        for (uint32_t w = 0; w < np->nworkers; w++)
            fprintf(out, "%s%u", w ? "," : "", np->workers[w].pu);
        fprintf(out, "],\"memory\":{\"arena_bytes\":%" PRIu64 ",\"arena_total_bytes\":%" PRIu64
                ",\"ring_slots\":%u,\"ring_bytes\":%" PRIu64 ",\"ring_mesh_bytes\":%" PRIu64
                ",\"total_bytes\":%" PRIu64 "},\"pinned\":%s,\"oversubscribed\":%s,"
                "\"warnings\":[", np->arena_bytes, np->arena_total_bytes, np->ring_slots,
                np->ring_bytes, np->ring_mesh_bytes, np->total_bytes,
                np->pinned ? "true" : "false", np->oversubscribed ? "true" : "false");
        for (uint32_t w = 0; w < np->nwarnings; w++) {
            if (w)
                fputc(',', out);
            ax__json_str(np->warnings[w], out);
        }
        fprintf(out, "]}");
    }
    fprintf(out, "],\n\"warnings\":[");
    for (uint32_t i = 0; i < p->nwarnings; i++) {
        if (i)
            fputc(',', out);
        fputs("\n ", out);
        ax__json_str(p->warnings[i], out);
    }
    fprintf(out, "]}\n");
}
