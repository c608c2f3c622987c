/* tools/axon-topo.c - what axon would do on a machine: topology summary,
 * placement plan, memory budget and warnings, as text or JSON; or just check
 * a config file.  With --hostfile or --node-xml, the same for a cluster:
 * one plan per axon node, memory per node and host, totals
 * (docs/cluster-plan.md).
 *
 * Config precedence: struct defaults < --config FILE < AXON_* environment <
 * command-line flags (--synthetic, --xml, --workers, ...), so a flag typed
 * now always wins over a file written earlier.
 * Exit status: 0 ok, 1 bad config or unsatisfiable plan, 2 bad usage.
 * Threading: single-threaded.  Memory: everything is freed before exit.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/axon.h"
#include "axon/config.h"
#include "axon/topology.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: axon-topo [--synthetic STR | --xml FILE] [--config FILE] [--workers N]\n"
            "                 [--smt core|all] [--oversubscribe] [--json] [--check]\n"
            "       axon-topo --hostfile FILE [--topology-dir DIR] [--node-xml FILE]...\n"
            "                 [--node-plans] [same options as above]\n"
            "\n"
            "Print the hardware topology and the placement plan axon would use: one row per\n"
            "worker (PU, core, L3 group, NUMA node), the memory budget, and warnings.\n"
            "With --hostfile or --node-xml: the cluster plan, one row per axon node (one\n"
            "engine per process), memory per node and per host, and cluster totals.\n"
            "\n"
            "  --synthetic STR  plan for an hwloc synthetic machine, e.g.\n"
            "                   'pack:2 numa:2 l3:2 core:8 pu:2' (64 cores, 4 nodes)\n"
            "  --xml FILE       plan for a machine exported with lstopo-no-graphics --of xml\n"
            "  --config FILE    read a config file (see docs/tuning.md)\n"
            "  --workers N      worker count, at most 1024 (0: one per selected core)\n"
            "  --smt core|all   one worker per core (default) or per hardware thread\n"
            "  --oversubscribe  allow more workers than cores (unpinned)\n"
            "  --json           print the plan as JSON\n"
            "  --check          only check the config (file + AXON_* environment + flags):\n"
            "                   its values, the topology it names and the plan; exit 0 when\n"
            "                   good, 1 with the error on stderr\n"
            "  --hostfile FILE  Open MPI hostfile: 'NAME [slots=N] [max_slots=N]' per line;\n"
            "                   a comment '# axon: xml=FILE' or '# axon: synthetic=DESC'\n"
            "                   gives the host's topology (mpirun ignores comments)\n"
            "  --topology-dir DIR  hosts without '# axon:' use DIR/NAME.xml\n"
            "  --node-xml FILE  one more node whose machine is this XML export (repeat it;\n"
            "                   the host is named after the file)\n"
            "  --node-plans     also print every node's full plan (text output)\n"
            "                   In cluster mode --synthetic / --xml is the topology of every\n"
            "                   host that names none, and --workers is per node.\n"
            "  --help           this text\n"
            "\n"
            "Precedence: defaults < --config file < AXON_* environment < these flags.\n");
}

static int copy_str(char *dst, const char *src, const char *flag)
{
    if (strlen(src) >= AX_CONFIG_STR_MAX) {
        fprintf(stderr, "axon-topo: %s is %zu characters; at most %d fit\n", flag, strlen(src),
                AX_CONFIG_STR_MAX - 1);
        return -1;
    }
    snprintf(dst, AX_CONFIG_STR_MAX, "%s", src);
    return 0;
}

/* "dir/node7.xml" -> "node7": the host a --node-xml file stands for. */
static void host_from_path(const char *path, char *name, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".xml") == 0)
        n -= 4;
    if (n == 0) {
        base = path;
        n = strlen(path);
    }
    if (n >= len)
        n = len - 1;
    memcpy(name, base, n);
    name[n] = '\0';
}

/* Cluster mode: hostfile hosts first (mpirun's rank order), then one node per
 * --node-xml file.  Returns the exit status. */
static int cluster(const ax_config_t *cfg, const char *hostfile, const char *topodir,
                   const char **node_xml, size_t n_node_xml, bool json, bool check,
                   bool node_plans, const char *config)
{
    char err[1024];
    ax_hostfile_t *hf = NULL;
    if (hostfile && ax_hostfile_load(hostfile, &hf, err, sizeof err) < 0) {
        fprintf(stderr, "axon-topo: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < n_node_xml; i++) {
        char name[AX_HOST_NAME_MAX];
        host_from_path(node_xml[i], name, sizeof name);
        if (ax_hostfile_add_host(&hf, name, 1, node_xml[i], NULL, err, sizeof err) < 0) {
            fprintf(stderr, "axon-topo: --node-xml %s: %s\n", node_xml[i], err);
            ax_hostfile_destroy(hf);
            return 1;
        }
    }
    if (!hostfile)
        snprintf(hf->path, sizeof hf->path, "--node-xml list (%zu file%s)", n_node_xml,
                 n_node_xml == 1 ? "" : "s");
    ax_cluster_plan_t *plan = NULL;
    int rc = ax_cluster_plan_create(hf, cfg, topodir, &plan, err, sizeof err);
    ax_hostfile_destroy(hf);
    if (rc < 0) {
        fprintf(stderr, "axon-topo: %s\n", err);
        return 1;
    }
#ifdef AX_REF_NODES_MAX
    /* The reference layout names the node in a few bits (docs/cluster.md):
     * a plan with more nodes could not address them all. */
    if (plan->nnodes > AX_REF_NODES_MAX) {
        fprintf(stderr, "axon-topo: %s: %u nodes, but an actor reference names at most %u "
                "nodes; lower slots or list fewer hosts\n", plan->source, plan->nnodes,
                AX_REF_NODES_MAX);
        ax_cluster_plan_destroy(plan);
        return 1;
    }
#endif
    if (check)
        printf("%s: ok (%u node%s, %llu workers on %s)\n",
               config ? config : "defaults and environment", plan->nnodes,
               plan->nnodes == 1 ? "" : "s", (unsigned long long)plan->workers, plan->source);
    else if (json)
        ax_cluster_plan_print_json(plan, stdout);
    else
        ax_cluster_plan_print(plan, node_plans, stdout);
    ax_cluster_plan_destroy(plan);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    enum { OPT_SYNTH = 1, OPT_XML, OPT_CONFIG, OPT_WORKERS, OPT_SMT, OPT_OVER, OPT_JSON,
           OPT_CHECK, OPT_HELP, OPT_HOSTFILE, OPT_TOPODIR, OPT_NODEXML, OPT_NODEPLANS };
    static const struct option opts[] = {
        { "synthetic", required_argument, NULL, OPT_SYNTH },
        { "xml", required_argument, NULL, OPT_XML },
        { "config", required_argument, NULL, OPT_CONFIG },
        { "workers", required_argument, NULL, OPT_WORKERS },
        { "smt", required_argument, NULL, OPT_SMT },
        { "oversubscribe", no_argument, NULL, OPT_OVER },
        { "json", no_argument, NULL, OPT_JSON },
        { "check", no_argument, NULL, OPT_CHECK },
        { "help", no_argument, NULL, OPT_HELP },
        { "hostfile", required_argument, NULL, OPT_HOSTFILE },
        { "topology-dir", required_argument, NULL, OPT_TOPODIR },
        { "node-xml", required_argument, NULL, OPT_NODEXML },
        { "node-plans", no_argument, NULL, OPT_NODEPLANS },
        { NULL, 0, NULL, 0 },
    };
    const char *synth = NULL, *xml = NULL, *config = NULL, *smt = NULL;
    const char *hostfile = NULL, *topodir = NULL;
    const char **node_xml = NULL; /* argv pointers, --node-xml order */
    size_t n_node_xml = 0;
    long workers = -1;
    bool json = false, check = false, over = false, node_plans = false;
    int status = 2;
    int c;
    opterr = 0; /* we print our own message, then the usage */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SYNTH: synth = optarg; break;
        case OPT_XML: xml = optarg; break;
        case OPT_CONFIG: config = optarg; break;
        case OPT_SMT: smt = optarg; break;
        case OPT_OVER: over = true; break;
        case OPT_JSON: json = true; break;
        case OPT_CHECK: check = true; break;
        case OPT_HELP: usage(stdout); free(node_xml); return 0;
        case OPT_HOSTFILE: hostfile = optarg; break;
        case OPT_TOPODIR: topodir = optarg; break;
        case OPT_NODEPLANS: node_plans = true; break;
        case OPT_NODEXML: {
            const char **grown = realloc(node_xml, (n_node_xml + 1) * sizeof *grown);
            if (!grown) {
                fprintf(stderr, "axon-topo: out of memory\n");
                goto out;
            }
            node_xml = grown;
            node_xml[n_node_xml++] = optarg;
            break;
        }
        case OPT_WORKERS: {
            char *end;
            errno = 0;
            workers = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || workers < 0 || workers > AX_WORKERS_MAX) {
                fprintf(stderr, "axon-topo: --workers %s: expected a number from 0 to %u\n",
                        optarg, AX_WORKERS_MAX);
                usage(stderr);
                goto out;
            }
            break;
        }
        default:
            if (optopt && optopt < OPT_SYNTH + 20 && optopt >= OPT_SYNTH)
                fprintf(stderr, "axon-topo: %s needs a value\n", argv[optind - 1]);
            else
                fprintf(stderr, "axon-topo: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "axon-topo: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        goto out;
    }
    if (synth && xml) {
        fprintf(stderr, "axon-topo: --synthetic and --xml both given: choose one machine\n");
        usage(stderr);
        goto out;
    }
    if (smt && strcmp(smt, "core") && strcmp(smt, "all")) {
        fprintf(stderr, "axon-topo: --smt %s: expected core or all\n", smt);
        usage(stderr);
        goto out;
    }
    if (topodir && !hostfile) {
        fprintf(stderr, "axon-topo: --topology-dir needs --hostfile (it holds NAME.xml for "
                "each host of the hostfile)\n");
        usage(stderr);
        goto out;
    }
    if (node_plans && !hostfile && !n_node_xml) {
        fprintf(stderr, "axon-topo: --node-plans needs --hostfile or --node-xml\n");
        usage(stderr);
        goto out;
    }
    status = 1;

    ax_config_t cfg;
    ax_config_init(&cfg);
    ax_config_error_t cerr;
    if (config && ax_config_load_file(&cfg, config, &cerr) < 0) {
        fprintf(stderr, "axon-topo: %s\n", cerr.message);
        goto out;
    }
    if (ax_config_apply_env(&cfg, NULL, &cerr) < 0) {
        fprintf(stderr, "axon-topo: %s\n", cerr.message);
        goto out;
    }
    /* Flags last: a topology flag replaces whatever the file chose. */
    if (synth || xml) {
        cfg.topology_synthetic[0] = cfg.topology_xml[0] = '\0';
        if (copy_str(synth ? cfg.topology_synthetic : cfg.topology_xml, synth ? synth : xml,
                     synth ? "--synthetic" : "--xml") < 0) {
            status = 2;
            goto out;
        }
    }
    if (workers >= 0)
        cfg.workers = (uint32_t)workers;
    if (smt)
        cfg.smt = strcmp(smt, "all") == 0 ? AX_SMT_ALL : AX_SMT_CORE;
    if (over)
        cfg.oversubscribe = true;
    if (ax_config_validate(&cfg, &cerr) < 0) {
        fprintf(stderr, "axon-topo: %s\n", cerr.message);
        goto out;
    }
    if (hostfile || n_node_xml) {
        status = cluster(&cfg, hostfile, topodir, node_xml, n_node_xml, json, check,
                         node_plans, config);
        goto out;
    }

    /* --check goes as far as an engine would before allocating: the topology
     * the config names must load (a bogus synthetic string, a missing XML
     * file) and the plan must be possible (counts, CPU and node lists). */
    char err[1024];
    ax_topo_t *topo = NULL;
    if (ax_topo_load_config(&cfg, &topo, err, sizeof err) < 0) {
        fprintf(stderr, "axon-topo: %s\n", err);
        goto out;
    }
    ax_plan_t *plan = NULL;
    int rc = ax_plan_create(topo, &cfg, &plan, err, sizeof err);
    ax_topo_destroy(topo);
    if (rc < 0) {
        fprintf(stderr, "axon-topo: %s\n", err);
        goto out;
    }
    if (check) {
        printf("%s: ok (%u worker%s on %s)\n", config ? config : "defaults and environment",
               plan->nworkers, plan->nworkers == 1 ? "" : "s", plan->topo.source);
        ax_plan_destroy(plan);
        status = 0;
        goto out;
    }
    if (json)
        ax_plan_print_json(plan, stdout);
    else
        ax_plan_print(plan, stdout);
    ax_plan_destroy(plan);
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    free(node_xml);
    return status;
}
