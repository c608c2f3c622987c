/* tools/bench/main.c - axon-bench: the throughput suite.
 *
 *   axon-bench [--workers N] [--config FILE] [--only a,b] [--quick] [--repeat K]
 *              [--json FILE] [--csv FILE] [--plot FILE] [--list] [--param name=value]
 *              [--cluster N]
 *
 * Measures the machine's limits (perf/limits.c) and then every workload
 * (wl_*.c) in one process, so each result is shown beside the limit measured
 * in the same run, with the vCPU placement (near/far) it ran in.  Each result
 * is the median, min and max of K repeats; every repeat runs on a fresh
 * engine and verifies its own answer: a failed check fails the run (exit 1)
 * instead of reporting a speed.
 *
 * The cluster mode (--cluster N or --only cluster; cluster.c) forks axon
 * nodes on this machine and runs ucx_perftest and Erlang distribution
 * beside them; its results go through the same table, JSON and CSV.
 *
 * Exit: 0 all verified; 1 a workload failed (check, engine error, timeout);
 * 2 bad flags, parameters or config; 130 interrupted (results so far are
 * printed and written).
 *
 * Threading: the main thread drives everything; the engine's workers run the
 * actors; the SIGINT handler only sets a flag and posts the current run's
 * semaphore (both async-signal-safe).
 * Memory: results live in a growing array freed at exit.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "bench.h"
#include "limits.h"

#define MAX_WORKERS_SHOWN 64
#define MAX_OVERRIDES 64

/* ---- workloads and parameters ------------------------------------------------ */

static const bench_workload_t *const g_wls[] = {
    &bench_wl_pingpong_local, &bench_wl_pingpong_remote, &bench_wl_counting,
    &bench_wl_threadring,     &bench_wl_fjcreate,        &bench_wl_fjthrput,
    &bench_wl_fjthrput_drivers,
    &bench_wl_big,            &bench_wl_chameneos,       &bench_wl_fib,
    &bench_wl_bank,           &bench_wl_skynet,
};
#define NWLS (sizeof g_wls / sizeof g_wls[0])
/* Workloads of the scaling sweep (1, 2, 4, ... workers). */
#define NSWEEP_WLS 6

/* Harness parameters, addressed as bench.X, limits.X, scaling.X. */
enum { G_SCALE_PCT, G_TIMEOUT, G_FAR_PCT, G_PREFAULT, G_LIMITS, NG };
static const bench_param_def_t g_bench_params[] = {
    {"scale_pct", 100, 100, false, 1, 1000000, "percent: every count (scaled params) x scale/100"},
    {"timeout_s", 60, 30, false, 1, 3600, "a run that does not finish in time fails the bench"},
    {"far_pct", 250, 250, false, 110, 10000, "a placement sample above far_pct% of the best is far"},
    {"prefault", 1, 1, false, 0, 1, "1: prefault the arenas (page faults are not timed)"},
    {"limits", 1, 1, false, 0, 1, "0: skip the limits (profilers: only engine work)"},
    {NULL, 0, 0, false, 0, 0, NULL},
};
enum { L_RTT_N, L_RING_N, L_RING_SLOTS, L_DISPATCH_N, L_CREATE_N, NL };
static const bench_param_def_t g_limit_params[] = {
    {"rtt_n", 2000000, 500000, true, 1000, UINT64_MAX / 4, "cache-line round trips"},
    {"ring_n", 20000000, 5000000, true, 1000, UINT64_MAX / 4, "ring items (64-byte slots)"},
    {"ring_slots", 0, 0, false, 0, 1u << 20, "ring slots; 0: the engine's ring_slots"},
    {"dispatch_n", 50000000, 10000000, true, 1000, UINT64_MAX / 4, "same-thread dispatches"},
    {"create_n", 5000000, 1000000, true, 1000, UINT64_MAX / 4, "malloc+dispatch+free actors"},
    {NULL, 0, 0, false, 0, 0, NULL},
};
enum { C_NODES_MAX, C_PP_N, C_OW_N, C_WINDOW, C_BIG_PINGS, C_BIG_ACTORS, C_MESH_N,
       C_MESH_ACTORS, C_ERL_PP_N, C_ERL_OW_N, C_UCX, C_ERLANG, C_WAKEUP, C_TCP, C_MULTI, C_PAIRS, C_MULTI2,
       C_TIMEOUT, NC_ };
static const bench_param_def_t g_cluster_params[] = {
    {"nodes_max", 4, 4, false, 2, 8, "big and mesh run on 2 and on this many nodes"},
    {"pp_n", 100000, 2000, true, 100, 100000000, "ping-pong round trips (tcp: a tenth)"},
    {"ow_n", 1000000, 20000, true, 100, 1000000000, "one-way messages (tcp: a tenth)"},
    {"window", 4096, 4096, false, 4, 1u << 20, "one-way: messages in flight (acks every 1/4)"},
    {"big_pings", 2000, 20, true, 10, 100000000, "Savina big: pings per actor"},
    {"big_actors", 64, 16, false, 2, 512, "Savina big: actors over all nodes"},
    {"mesh_n", 5000, 100, true, 1, 100000000, "mesh: messages per actor"},
    {"mesh_actors", 16, 4, false, 1, 64, "mesh: actors per node"},
    {"erl_pp_n", 20000, 1000, true, 100, 100000000, "Erlang ping-pong round trips"},
    {"erl_ow_n", 200000, 5000, true, 100, 1000000000, "Erlang one-way messages"},
    {"ucx", 1, 1, false, 0, 1, "0: skip the ucx_perftest limits"},
    {"erlang", 1, 1, false, 0, 1, "0: skip the Erlang distribution peer"},
    {"wakeup", 1, 1, false, 0, 1, "0: skip the ping-pong with cluster.progress = wakeup"},
    {"tcp", 1, 1, false, 0, 1, "0: skip the UCX_TLS=tcp runs"},
    {"multi", 1, 1, false, 0, 1, "0: skip big and mesh (ping-pong and one-way only)"},
    {"pairs", 1, 1, false, 0, 1, "0: skip the 2-node ping-pong and one-way runs (big and mesh only)"},
    {"multi_2n", 1, 1, false, 0, 1, "0: run big and mesh on nodes_max nodes only, not on 2"},
    {"timeout_s", 60, 30, false, 5, 3600, "one repeat (or script) longer than this fails"},
    {NULL, 0, 0, false, 0, 0, NULL},
};
enum { S_MAX_WORKERS, NS_ };
static const bench_param_def_t g_scaling_params[] = {
    {"max_workers", 0, 0, false, 0, 4096, "largest worker count of the sweep; 0: --workers"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

typedef struct override {
    char scope[32]; /* "" (every workload with the key), a workload, group, bench, ... */
    char key[32];
    uint64_t value;
    bool used;
    char text[96];
} override_t;

static override_t g_ov[MAX_OVERRIDES];
static int g_nov;

/* ---- options and machine ---------------------------------------------------------- */

static struct {
    uint32_t workers; /* 0: the plan's */
    const char *config_file;
    char *only;
    bool quick;
    int repeat;
    const char *json, *csv, *plot;
    bool tty;
    uint32_t cluster; /* --cluster N: nodes_max; 0: not given */
} g_opt;

static ax_config_t g_cfg;
static ax_plan_t *g_plan;
static char g_cpu_model[128] = "unknown";
static char g_kernel[256] = "unknown";
static uint64_t g_gp[NG], g_lp[NL], g_sp[NS_], g_cp[NC_];
static int g_cpu_a = -1, g_cpu_b = -1;
static double g_best_rtt; /* best placement sample, ns */
static int g_place_samples, g_place_far;

/* ---- results --------------------------------------------------------------------------- */

typedef struct wstat {
    double remote_share, idle_share;
    uint64_t handled, ring_full, sent_remote;
    uint64_t turns, parks, wakes_sent; /* counts: per message, they say how the work ran */
} wstat_t;

typedef struct result {
    char name[64];
    const bench_workload_t *wl; /* NULL for limits */
    const char *unit;
    bool lower_better;
    char params[320];
    uint32_t workers;
    int nruns;
    double runs[BENCH_MAX_REPEAT];
    double median, min, max, ns_per_op;
    int limit; /* BL_* or BL_NONE */
    double limit_rate, pct;
    int placement;
    double rtt_lo, rtt_hi;
    double other_pct; /* most CPU other processes took during one repeat, % */
    uint64_t ops;     /* messages (or actors) timed in one repeat */
    bool verified, failed, skipped;
    char why[400];
    char note[160];
    char limit_text[64]; /* cluster results: the limit's result name (limit is BL_NONE) */
    char peer[64];       /* cluster results: the peer's result name, "" none */
    char counts[200];    /* cluster results: node 0's data-path counts, "" none */
    double peer_value, x_peer; /* the peer's median; how many times better than it */
    double cpu_pct;      /* cluster results: node 0's CPU time over wall time, % */
    double remote_share, idle_share;
    uint64_t ring_full, dead_letters, dropped;
    uint32_t nw;
    wstat_t w[MAX_WORKERS_SHOWN];
} result_t;

static result_t *g_res;
static size_t g_nres, g_capres;
static int g_failed;
static volatile sig_atomic_t g_interrupted;
static bench_run_t *volatile g_current; /* the run the SIGINT handler wakes */
static int g_progress_done, g_progress_total;
static uint64_t g_t_start;

static result_t *result_new(void)
{
    if (g_nres == g_capres) {
        size_t cap = g_capres ? 2 * g_capres : 32;
        result_t *n = realloc(g_res, cap * sizeof *n);
        if (!n) {
            fprintf(stderr, "axon-bench: out of memory for %zu results\n", cap);
            exit(1);
        }
        g_res = n;
        g_capres = cap;
    }
    result_t *r = &g_res[g_nres++];
    memset(r, 0, sizeof *r);
    r->limit = BL_NONE;
    return r;
}

/* ---- small helpers --------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: axon-bench [--workers N] [--config FILE] [--only a,b] [--quick] [--repeat K]\n"
            "                  [--json FILE] [--csv FILE] [--plot FILE] [--list] [--param name=value]\n"
            "  --workers N     engine workers (default: the plan's, one per core)\n"
            "  --config FILE   engine config file (then AXON_* environment overrides)\n"
            "  --only a,b      workloads, groups, 'limits' or 'scaling' (see --list)\n"
            "  --quick         smaller counts and 1 repeat (< 30 s)\n"
            "  --repeat K      repeats per result (default 3, 1 with --quick; max %d)\n"
            "  --json FILE     machine, config and results as JSON\n"
            "  --csv FILE      one row per result\n"
            "  --plot FILE     SVG chart (needs gnuplot): scaling sweep and %% of limit\n"
            "  --list          workloads and their parameters, then exit\n"
            "  --param k=v     override a parameter: WORKLOAD.key=v, GROUP.key=v, key=v (every\n"
            "                  workload with that key), bench.*, limits.*, scaling.*,\n"
            "                  cluster.*; counts take k/M/G suffixes (x1000)\n"
            "  --cluster N     the cluster mode alone (same as --only cluster): axon nodes\n"
            "                  forked on this machine, ping-pong and one-way over UCX shm and\n"
            "                  tcp beside ucx_perftest, Savina big and a random mesh on 2 and N\n"
            "                  nodes, Erlang distribution as the peer (docs/benchmarks.md)\n",
            BENCH_MAX_REPEAT);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("axon-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return -EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -errno;
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1000, end++;
    else if (*end == 'M')
        mul = 1000000, end++;
    else if (*end == 'G')
        mul = 1000000000, end++;
    if (*end)
        return -EINVAL;
    if (v && mul > UINT64_MAX / v)
        return -ERANGE;
    *out = (uint64_t)v * mul;
    return 0;
}

static void fmt_count(char *buf, size_t n, uint64_t v)
{
    if (v >= 1000000000 && v % 1000000000 == 0)
        snprintf(buf, n, "%lluG", (unsigned long long)(v / 1000000000));
    else if (v >= 1000000 && v % 1000000 == 0)
        snprintf(buf, n, "%lluM", (unsigned long long)(v / 1000000));
    else if (v >= 1000 && v % 1000 == 0)
        snprintf(buf, n, "%lluk", (unsigned long long)(v / 1000));
    else
        snprintf(buf, n, "%llu", (unsigned long long)v);
}

/* 3 significant-ish digits with an SI suffix: "185 M", "12.3 k", "52.1". */
static void fmt_si(char *buf, size_t n, double v)
{
    const char *suf = "";
    if (v >= 1e9)
        v /= 1e9, suf = " G";
    else if (v >= 1e6)
        v /= 1e6, suf = " M";
    else if (v >= 1e3)
        v /= 1e3, suf = " k";
    snprintf(buf, n, v >= 100 ? "%.0f%s" : v >= 10 ? "%.1f%s" : "%.2f%s", v, suf);
}

static bool scope_matches(const char *scope, const bench_workload_t *wl, const char *harness)
{
    if (harness)
        return strcmp(scope, harness) == 0;
    return !*scope || !strcmp(scope, wl->name) || !strcmp(scope, wl->group);
}

/* Effective parameters: default (full or quick), x scale for counts, then
 * --param overrides in command-line order. */
static void resolve_params(const bench_param_def_t *defs, const bench_workload_t *wl,
                           const char *harness, uint64_t *out)
{
    for (int i = 0; defs[i].name; i++) {
        uint64_t v = g_opt.quick ? defs[i].quick : defs[i].full;
        if (defs[i].scaled && g_gp[G_SCALE_PCT] != 100) {
            double d = (double)v * (double)g_gp[G_SCALE_PCT] / 100.0;
            v = d < (double)defs[i].min ? defs[i].min : (uint64_t)d;
        }
        for (int k = 0; k < g_nov; k++) {
            if (strcmp(g_ov[k].key, defs[i].name) || !scope_matches(g_ov[k].scope, wl, harness))
                continue;
            if (!*g_ov[k].scope && harness)
                continue; /* bare keys are for workloads only */
            v = g_ov[k].value;
            g_ov[k].used = true;
        }
        out[i] = v;
    }
}

static void params_text(const bench_param_def_t *defs, const uint64_t *p, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; defs[i].name && off < n; i++) {
        char v[32];
        fmt_count(v, sizeof v, p[i]);
        int w = snprintf(buf + off, n - off, "%s%s=%s", off ? " " : "", defs[i].name, v);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

/* Check every override names a known scope and key, and its range. */
static void check_overrides(void)
{
    for (int k = 0; k < g_nov; k++) {
        override_t *o = &g_ov[k];
        bool found = false;
        const bench_param_def_t *hv[4] = {g_bench_params, g_limit_params, g_scaling_params,
                                          g_cluster_params};
        const char *hn[4] = {"bench", "limits", "scaling", "cluster"};
        for (int h = 0; h < 4; h++) {
            if (strcmp(o->scope, hn[h]))
                continue;
            for (int i = 0; hv[h][i].name; i++)
                if (!strcmp(hv[h][i].name, o->key)) {
                    found = true;
                    if (o->value < hv[h][i].min || o->value > hv[h][i].max)
                        die_usage("--param %s: %s.%s must be in %llu..%llu", o->text, hn[h],
                                  o->key, (unsigned long long)hv[h][i].min,
                                  (unsigned long long)hv[h][i].max);
                }
        }
        for (size_t w = 0; w < NWLS; w++) {
            if (!scope_matches(o->scope, g_wls[w], NULL))
                continue;
            for (int i = 0; g_wls[w]->params[i].name; i++) {
                const bench_param_def_t *d = &g_wls[w]->params[i];
                if (strcmp(d->name, o->key))
                    continue;
                found = true;
                if (o->value < d->min || o->value > d->max)
                    die_usage("--param %s: %s.%s must be in %llu..%llu", o->text, g_wls[w]->group,
                              o->key, (unsigned long long)d->min, (unsigned long long)d->max);
            }
        }
        if (!found)
            die_usage("--param %s: no parameter %s%s%s (see --list for every workload's "
                      "parameters)",
                      o->text, o->scope, *o->scope ? "." : "", o->key);
    }
}

static void add_override(const char *arg)
{
    if (g_nov == MAX_OVERRIDES)
        die_usage("too many --param options (%d at most)", MAX_OVERRIDES);
    override_t *o = &g_ov[g_nov];
    snprintf(o->text, sizeof o->text, "%s", arg);
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        die_usage("--param %s: expected name=value, e.g. --param counting.n=1M", arg);
    const char *dot = memchr(arg, '.', (size_t)(eq - arg));
    size_t sl = dot ? (size_t)(dot - arg) : 0;
    const char *key = dot ? dot + 1 : arg;
    size_t kl = (size_t)(eq - key);
    if (sl >= sizeof o->scope || kl == 0 || kl >= sizeof o->key)
        die_usage("--param %s: name too long or empty", arg);
    memcpy(o->scope, arg, sl);
    o->scope[sl] = 0;
    memcpy(o->key, key, kl);
    o->key[kl] = 0;
    if (parse_u64(eq + 1, &o->value) < 0)
        die_usage("--param %s: value '%s' is not a non-negative integer (k/M/G suffixes allowed)",
                  arg, eq + 1);
    g_nov++;
}

static bool only_selected(const char *name, const char *group)
{
    if (!g_opt.only)
        return true;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", g_opt.only);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (!strcmp(t, name) || (group && !strcmp(t, group)))
            return true;
    return false;
}

static void check_only(void)
{
    if (!g_opt.only)
        return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", g_opt.only);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        bool ok = !strcmp(t, "limits") || !strcmp(t, "scaling") || !strcmp(t, "cluster");
        for (size_t w = 0; w < NWLS && !ok; w++)
            ok = !strcmp(t, g_wls[w]->name) || !strcmp(t, g_wls[w]->group);
        if (!ok)
            die_usage("--only: unknown workload '%s' (see --list)", t);
    }
}

static void print_defs(const char *scope, const bench_param_def_t *d)
{
    for (int i = 0; d[i].name; i++) {
        char f[32], q[32];
        fmt_count(f, sizeof f, d[i].full);
        fmt_count(q, sizeof q, d[i].quick);
        char nm[64];
        snprintf(nm, sizeof nm, "%s.%s", scope, d[i].name);
        printf("    %-24s %6s (quick %s)%s  %s\n", nm, f, q, d[i].scaled ? ", scaled" : "",
               d[i].help);
    }
}

static void list_workloads(void)
{
    printf("workloads (--only takes a name or a group; --param GROUP.key=value):\n");
    for (size_t w = 0; w < NWLS; w++) {
        const bench_workload_t *wl = g_wls[w];
        printf("  %-16s group %-10s %s [%s]%s\n", wl->name, wl->group, wl->what, wl->unit,
               wl->min_workers > 1 ? " (needs 2+ workers)" : "");
        if (w + 1 < NWLS && g_wls[w + 1]->params == wl->params)
            continue; /* the group's next member lists the shared parameters */
        print_defs(wl->group, wl->params);
    }
    printf("  %-16s fjthrput, fjthrput_drivers, big, skynet, fib and fjcreate at 1, 2, 4, ...\n"
           "  %-16s workers, up to --workers\n", "scaling", "");
    print_defs("scaling", g_scaling_params);
    printf("  %-16s axon nodes on this machine: ping-pong, one-way, Savina big, random mesh,\n"
           "  %-16s beside ucx_perftest and Erlang distribution (only with --only cluster or\n"
           "  %-16s --cluster N; needs ucx-utils and erlang-base for the references)\n",
           "cluster", "", "");
    print_defs("cluster", g_cluster_params);
    printf("  %-16s cache-line round trip, SPSC ring, local dispatch, create (always run)\n",
           "limits");
    print_defs("limits", g_limit_params);
    printf("harness:\n");
    print_defs("bench", g_bench_params);
}

/* ---- progress ------------------------------------------------------------------------------ */

static void progress(const char *what, int rep, int reps)
{
    double el = (double)(bench_now_ns() - g_t_start) / 1e9;
    if (g_opt.tty)
        fprintf(stderr, "\r\033[K[%3d/%d] %-22s run %d/%d  %5.1f s", g_progress_done + 1,
                g_progress_total, what, rep, reps, el);
    else
        fprintf(stderr, "axon-bench: [%d/%d] %s run %d/%d (%.1f s)\n", g_progress_done + 1,
                g_progress_total, what, rep, reps, el);
}

static void progress_clear(void)
{
    if (g_opt.tty)
        fputs("\r\033[K", stderr);
}

/* ---- statistics ----------------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(result_t *r)
{
    double s[BENCH_MAX_REPEAT];
    memcpy(s, r->runs, (size_t)r->nruns * sizeof s[0]);
    qsort(s, (size_t)r->nruns, sizeof s[0], cmp_d);
    int n = r->nruns;
    r->min = s[0];
    r->max = s[n - 1];
    r->median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    r->ns_per_op = (!r->lower_better && r->median > 0) ? 1e9 / r->median : 0;
}

static double limit_rate(int bl);

static const char *limit_name(int bl)
{
    switch (bl) {
    case BL_BOUNCE: return "limits/cacheline_rtt";
    case BL_RING: return "limits/spsc_ring";
    case BL_DISPATCH2: return "limits/dispatch2";
    case BL_DISPATCH503: return "limits/dispatch503";
    case BL_CREATE: return "limits/create";
    default: return "";
    }
}

static const char *res_limit(const result_t *r)
{
    return r->limit_text[0] ? r->limit_text : limit_name(r->limit);
}

static const result_t *find_result(const char *name)
{
    for (size_t i = 0; i < g_nres; i++)
        if (!strcmp(g_res[i].name, name) && g_res[i].nruns > 0)
            return &g_res[i];
    return NULL;
}

/* A limit as a rate in the workload's unit per second. */
static double limit_rate(int bl)
{
    const result_t *r = find_result(limit_name(bl));
    if (!r || r->median <= 0)
        return 0;
    if (bl == BL_BOUNCE)
        return 2e9 / r->median; /* 2 messages per round trip */
    return r->median;
}

/* ---- other work on the machine ------------------------------------------------------------ */

/* CPU time the rest of the machine used during a run, as a share of all
 * CPUs: /proc/stat busy time minus this process's own (getrusage).  Other
 * helpers compiling on a shared 2-vCPU VM move every figure; a run with
 * much other work is flagged instead of silently reported. */
typedef struct load_mark {
    double busy_s, self_s;
    uint64_t t_ns;
} load_mark_t;

static double proc_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long u = 0, n = 0, sy = 0, id = 0, io = 0, irq = 0, sirq = 0, st = 0;
    int got = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &sy, &id, &io,
                         &irq, &sirq, &st)
                : 0;
    if (f)
        fclose(f);
    if (got < 8)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)(u + n + sy + irq + sirq + st) / (double)(hz > 0 ? hz : 100);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void load_mark(load_mark_t *m)
{
    m->busy_s = proc_busy_s();
    m->self_s = self_cpu_s();
    m->t_ns = bench_now_ns();
}

/* Percent of the machine other processes used since `a`; -1 if unknown. */
static double load_other_pct(const load_mark_t *a)
{
    load_mark_t b;
    load_mark(&b);
    if (a->busy_s < 0 || b.busy_s < 0 || b.t_ns <= a->t_ns)
        return -1;
    double wall = (double)(b.t_ns - a->t_ns) / 1e9;
    double other = (b.busy_s - a->busy_s) - (b.self_s - a->self_s);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (other < 0.02) /* below the tick granularity: nothing seen */
        return 0;
    double pct = 100.0 * other / (wall * (double)(ncpu > 0 ? ncpu : 1));
    return pct > 100 ? 100 : pct;
}

/* ---- placement ------------------------------------------------------------------------ */

static int place_sample(double *rtt)
{
    if (g_cpu_a < 0)
        return AX_PLACE_UNKNOWN;
    double r = 0;
    int p = ax_limits_sample_placement(g_cpu_a, g_cpu_b, (double)g_gp[G_FAR_PCT] / 100.0,
                                       &g_best_rtt, &r);
    if (p != AX_PLACE_UNKNOWN) {
        g_place_samples++;
        g_place_far += p == AX_PLACE_FAR;
        if (rtt)
            *rtt = r;
    }
    return p;
}

static void place_note(result_t *r, int p, double rtt)
{
    r->placement = ax_limits_placement_merge(r->placement, p);
    if (p == AX_PLACE_UNKNOWN)
        return;
    if (r->rtt_lo == 0 || rtt < r->rtt_lo)
        r->rtt_lo = rtt;
    if (rtt > r->rtt_hi)
        r->rtt_hi = rtt;
}

/* ---- the limits ----------------------------------------------------------------------- */

static void run_limits(int reps)
{
    static const struct {
        const char *name, *unit;
        bool lower;
    } L[] = {
        {"limits/cacheline_rtt", "ns/rt", true}, {"limits/spsc_ring", "items/s", false},
        {"limits/dispatch2", "msgs/s", false},   {"limits/dispatch503", "msgs/s", false},
        {"limits/create", "actors/s", false},
    };
    enum { NLIM = sizeof L / sizeof L[0] };
    result_t *r[NLIM];
    uint64_t capped[NLIM] = {0}; /* smallest n of a repeat stopped by the 1 s cap */
    uint32_t slots = g_lp[L_RING_SLOTS] ? (uint32_t)g_lp[L_RING_SLOTS] : ax_config_ring_slots(&g_cfg);
    if (slots < 64)
        slots = 64; /* the bare ring publishes every 64 items */
    char nb[5][32];
    fmt_count(nb[0], sizeof nb[0], g_lp[L_RTT_N]);
    fmt_count(nb[1], sizeof nb[1], g_lp[L_RING_N]);
    fmt_count(nb[2], sizeof nb[2], g_lp[L_DISPATCH_N]);
    fmt_count(nb[3], sizeof nb[3], g_lp[L_CREATE_N]);
    for (int i = 0; i < NLIM; i++) {
        r[i] = result_new();
        snprintf(r[i]->name, sizeof r[i]->name, "%s", L[i].name);
        r[i]->unit = L[i].unit;
        r[i]->lower_better = L[i].lower;
        r[i]->workers = i < 2 ? 2 : 1;
        r[i]->verified = true;
    }
    snprintf(r[0]->params, sizeof r[0]->params, "n=%s cpus=%d,%d", nb[0], g_cpu_a, g_cpu_b);
    snprintf(r[1]->params, sizeof r[1]->params, "n=%s slots=%u slot=64B batch=64 cpus=%d,%d",
             nb[1], slots, g_cpu_a, g_cpu_b);
    snprintf(r[2]->params, sizeof r[2]->params, "n=%s actors=2", nb[2]);
    snprintf(r[3]->params, sizeof r[3]->params, "n=%s actors=503", nb[2]);
    snprintf(r[4]->params, sizeof r[4]->params, "n=%s", nb[3]);
    for (int rep = 1; rep <= reps && !g_interrupted; rep++) {
        for (int i = 0; i < NLIM && !g_interrupted; i++) {
            progress(L[i].name, rep, reps);
            double ns = 0, rtt = 0;
            int rc = 0;
            uint64_t n = 0;
            if (i < 2 && g_cpu_a < 0) {
                r[i]->skipped = true;
                snprintf(r[i]->why, sizeof r[i]->why, "fewer than 2 CPUs allowed");
                continue;
            }
            int p0 = i < 2 ? place_sample(&rtt) : AX_PLACE_UNKNOWN;
            if (i < 2)
                place_note(r[i], p0, rtt);
            load_mark_t lm;
            load_mark(&lm);
            /* In 10 slices, so Ctrl-C is served within a slice and a loaded
             * or far-placed machine (5 us round trips) stops after ~1 s. */
            const uint64_t want = i == 0 ? g_lp[L_RTT_N] : i == 1 ? g_lp[L_RING_N]
                                : i < 4  ? g_lp[L_DISPATCH_N] : g_lp[L_CREATE_N];
            const uint64_t slice = want / 10 ? want / 10 : want;
            const uint64_t t_lim = bench_now_ns();
            while (n < want && rc == 0 && !g_interrupted &&
                   (n == 0 || bench_now_ns() - t_lim < 1000000000ull)) {
                double part = 0;
                switch (i) {
                case 0: rc = ax_limits_cacheline_rtt(g_cpu_a, g_cpu_b, slice, &part); break;
                case 1: rc = ax_limits_spsc_ring(g_cpu_a, g_cpu_b, slice, slots, &part); break;
                case 2: rc = ax_limits_dispatch(2, slice, &part); break;
                case 3: rc = ax_limits_dispatch(503, slice, &part); break;
                default: rc = ax_limits_create(slice, &part); break;
                }
                ns += part;
                n += slice;
            }
            if (g_interrupted && n < want) {
                if (!r[i]->nruns) {
                    r[i]->skipped = true;
                    snprintf(r[i]->why, sizeof r[i]->why, "interrupted");
                }
                break;
            }
            double other = load_other_pct(&lm);
            if (other > r[i]->other_pct)
                r[i]->other_pct = other;
            if (i < 2) {
                int p1 = place_sample(&rtt);
                place_note(r[i], p1, rtt);
            }
            if (rc < 0 || ns <= 0) {
                r[i]->failed = true;
                r[i]->verified = false;
                snprintf(r[i]->why, sizeof r[i]->why, "%s failed: %s", L[i].name, strerror(-rc));
                g_failed++;
                continue;
            }
            r[i]->runs[r[i]->nruns++] = i == 0 ? ns / (double)n : (double)n * 1e9 / ns;
            if (n < want && (capped[i] == 0 || n < capped[i]))
                capped[i] = n;
        }
        g_progress_done++;
    }
    for (int i = 0; i < NLIM; i++) {
        if (r[i]->nruns)
            summarize(r[i]);
        if (capped[i]) {
            char c[32];
            fmt_count(c, sizeof c, capped[i]);
            snprintf(r[i]->note, sizeof r[i]->note, "1 s cap: a repeat measured only n=%s; ", c);
        }
        size_t nl = strlen(r[i]->note);
        if (i == 0 && r[i]->nruns)
            snprintf(r[i]->note + nl, sizeof r[i]->note - nl, "one-way %.1f ns", r[i]->median / 2);
        if (i == 1 && r[i]->nruns)
            snprintf(r[i]->note + nl, sizeof r[i]->note - nl, "%.1f GB/s",
                     r[i]->median * 64 / 1e9);
        nl = strlen(r[i]->note);
        if (nl >= 2 && r[i]->note[nl - 2] == ';')
            r[i]->note[nl - 2] = 0; /* a cap note alone: no dangling "; " */
    }
}

/* ---- one workload run ---------------------------------------------------------------- */

static void on_sigint(int sig)
{
    (void)sig;
    if (g_interrupted) {
        static const char m[] = "\naxon-bench: second interrupt, exiting at once\n";
        ssize_t w = write(2, m, sizeof m - 1);
        (void)w;
        _exit(130);
    }
    g_interrupted = 1;
    bench_run_t *r = g_current;
    if (r) {
        atomic_store(&r->abort, 1);
        sem_post(&r->done);
    }
}

typedef struct run_out {
    double rate;
    uint64_t ops;
    bool remote; /* run->remote: messages crossed workers */
    double other_pct;
    uint32_t nw;
    wstat_t w[MAX_WORKERS_SHOWN];
    double remote_share, idle_share;
    uint64_t ring_full, dead_letters, dropped;
    char why[400];
} run_out_t;

static void stats_sub(ax_worker_stats_t *d, const ax_worker_stats_t *a, const ax_worker_stats_t *b)
{
    const uint64_t *pa = (const uint64_t *)a, *pb = (const uint64_t *)b;
    uint64_t *pd = (uint64_t *)d;
    for (size_t i = 0; i < sizeof *d / sizeof(uint64_t); i++)
        pd[i] = pa[i] - pb[i];
}

static void stats_add(ax_worker_stats_t *d, const ax_worker_stats_t *a)
{
    const uint64_t *pa = (const uint64_t *)a;
    uint64_t *pd = (uint64_t *)d;
    for (size_t i = 0; i < sizeof *d / sizeof(uint64_t); i++)
        pd[i] += pa[i];
}

/* 0: verified, rate in out; -1: failed (out->why); 1: interrupted;
 * -2: timed out (the engine is left running: do not touch run or eng). */
static int run_once(const bench_workload_t *wl, uint32_t workers, const uint64_t *p, run_out_t *out)
{
    bench_run_t *run = calloc(1, sizeof *run);
    ax_worker_stats_t *before = calloc(workers, sizeof *before);
    ax_worker_stats_t *after = calloc(workers, sizeof *after);
    int ret = -1;
    if (!run || !before || !after) {
        snprintf(out->why, sizeof out->why, "out of memory");
        goto out_free;
    }
    run->workers = workers;
    run->wl = wl;
    memcpy(run->p, p, sizeof run->p);
    sem_init(&run->done, 0, 0);

    ax_config_t cfg = g_cfg;
    cfg.workers = workers;
    if (g_gp[G_PREFAULT])
        cfg.prefault = true;
    int rc = ax_engine_create(&cfg, &run->eng);
    if (rc) {
        snprintf(out->why, sizeof out->why, "ax_engine_create with %u workers failed: %s: %s",
                 workers, strerror(-rc), ax_engine_last_error());
        goto out_sem;
    }
    if (wl->setup(run) < 0) {
        snprintf(out->why, sizeof out->why, "setup failed: %s", run->why);
        goto out_engine;
    }
    rc = ax_engine_start(run->eng);
    if (rc) {
        snprintf(out->why, sizeof out->why, "ax_engine_start failed: %s", strerror(-rc));
        goto out_engine;
    }
    for (uint32_t w = 0; w < workers; w++)
        ax_engine_worker_stats(run->eng, w, &before[w], NULL);
    g_current = run;
    load_mark_t lm;
    load_mark(&lm);
    uint64_t t_kick = lm.t_ns;
    if (g_interrupted || wl->kick(run) < 0) {
        ret = g_interrupted ? 1 : -1;
        snprintf(out->why, sizeof out->why, "%s", g_interrupted ? "interrupted" : run->why);
        goto out_stop;
    }
    uint64_t deadline = t_kick + g_gp[G_TIMEOUT] * 1000000000ull;
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500000000; /* wake twice a second to refresh the progress line */
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        if (sem_timedwait(&run->done, &ts) == 0)
            break;
        if (errno == EINTR && g_interrupted)
            break;
        if (g_opt.tty && !g_interrupted)
            fprintf(stderr, "\r\033[K[%3d/%d] %-22s %5.1f s", g_progress_done + 1,
                    g_progress_total, wl->name, (double)(bench_now_ns() - g_t_start) / 1e9);
        if (bench_now_ns() > deadline) {
            /* A hung engine cannot be stopped or destroyed safely: leave it
             * (and run) to the process exit; the caller writes the results
             * so far and exits 1. */
            g_current = NULL;
            snprintf(out->why, sizeof out->why,
                     "no result after %llu s: a lost message, a lost wakeup or a hang (raise "
                     "--param bench.timeout_s=N if the machine is just slow); the engine was "
                     "left running",
                     (unsigned long long)g_gp[G_TIMEOUT]);
            return -2;
        }
    }
    uint64_t t_done = bench_now_ns();
    out->other_pct = load_other_pct(&lm);
    g_current = NULL;
    for (uint32_t w = 0; w < workers; w++)
        ax_engine_worker_stats(run->eng, w, &after[w], NULL);
    if (atomic_load(&run->failed)) {
        snprintf(out->why, sizeof out->why, "%s", run->why);
        goto out_stop;
    }
    if (g_interrupted && !atomic_load(&run->finished)) {
        ret = 1;
        goto out_stop;
    }
    if (run->t1_ns <= run->t0_ns || run->ops == 0) {
        snprintf(out->why, sizeof out->why, "the workload stamped no time (t0 %llu, t1 %llu)",
                 (unsigned long long)run->t0_ns, (unsigned long long)run->t1_ns);
        goto out_stop;
    }
    out->rate = (double)run->ops * 1e9 / (double)(run->t1_ns - run->t0_ns);
    out->remote = run->remote;
    out->ops = run->ops;
    /* per-worker shares over the main thread's window [kick, done] */
    double wall = (double)(t_done - t_kick);
    uint64_t handled_all = 0, remote_all = 0;
    double idle_all = 0;
    out->nw = workers < MAX_WORKERS_SHOWN ? workers : MAX_WORKERS_SHOWN;
    out->ring_full = 0;
    for (uint32_t w = 0; w < workers; w++) {
        ax_worker_stats_t d;
        stats_sub(&d, &after[w], &before[w]);
        uint64_t handled = d.msgs_local + d.msgs_remote + d.msgs_external;
        double idle = (double)(d.idle_ns + d.parked_ns) / wall;
        /* The engine adds a park's time when the worker wakes, so a worker
         * parked through the whole run shows ~0; one that handled nothing
         * in the window was idle all of it. */
        if (idle > 1 || handled == 0)
            idle = 1;
        handled_all += handled;
        remote_all += d.msgs_remote;
        idle_all += idle;
        out->ring_full += d.ring_full;
        if (w < out->nw)
            out->w[w] = (wstat_t){.remote_share = handled ? (double)d.msgs_remote / (double)handled : 0,
                                  .idle_share = idle,
                                  .handled = handled,
                                  .ring_full = d.ring_full,
                                  .sent_remote = d.msgs_sent_remote,
                                  .turns = d.turns,
                                  .parks = d.parks,
                                  .wakes_sent = d.wakes_sent};
    }
    out->remote_share = handled_all ? (double)remote_all / (double)handled_all : 0;
    out->idle_share = idle_all / workers;
    ret = 0;

out_stop:
    g_current = NULL;
    atomic_store(&run->abort, 1);
    ax_engine_stop(run->eng);
    ax_engine_wait(run->eng);
    if (ret == 0) {
        ax_worker_stats_t sum = {0}, fin;
        for (uint32_t w = 0; w < workers; w++) {
            ax_worker_stats_t d;
            ax_engine_worker_stats(run->eng, w, &fin, NULL);
            stats_sub(&d, &fin, &before[w]);
            stats_add(&sum, &d);
        }
        out->dead_letters = sum.dead_letters;
        out->dropped = sum.dropped_at_stop;
        if (sum.dead_letters) {
            snprintf(out->why, sizeof out->why,
                     "%llu dead letters: a message went to a stopped actor or a stale reference",
                     (unsigned long long)sum.dead_letters);
            ret = -1;
        } else if (wl->check_stats && wl->check_stats(run, &sum) < 0) {
            snprintf(out->why, sizeof out->why, "%s", run->why);
            ret = -1;
        }
    }
out_engine:
    ax_engine_destroy(run->eng);
    if (wl->cleanup)
        wl->cleanup(run);
out_sem:
    sem_destroy(&run->done);
out_free:
    free(after);
    free(before);
    free(run);
    return ret;
}

static void print_row(const result_t *r);
static int finish(bool interrupted);
static double g_sweep_base; /* scaling sweep: the 1-worker median, 0 outside */
static uint32_t g_sweep_max = 1; /* largest worker count of the sweep (plot axis) */

/* K repeats of one workload at `workers`; appends a result. */
static void run_workload(const bench_workload_t *wl, uint32_t workers, const char *name, int reps)
{
    result_t *r = result_new();
    snprintf(r->name, sizeof r->name, "%s", name);
    r->wl = wl;
    r->unit = wl->unit;
    r->workers = workers;
    uint64_t p[BENCH_MAX_PARAMS] = {0};
    resolve_params(wl->params, wl, NULL, p);
    params_text(wl->params, p, r->params, sizeof r->params);
    if (workers < wl->min_workers) {
        r->skipped = true;
        snprintf(r->why, sizeof r->why, "needs %u workers, the engine has %u", wl->min_workers,
                 workers);
        g_progress_done += reps;
        print_row(r);
        return;
    }
    run_out_t best_out; /* stats of the run closest to the median */
    run_out_t outs[BENCH_MAX_REPEAT];
    int bl = BL_NONE;
    for (int rep = 1; rep <= reps && !g_interrupted; rep++) {
        progress(name, rep, reps);
        double rtt = 0;
        place_note(r, place_sample(&rtt), rtt);
        run_out_t *o = &outs[rep - 1];
        memset(o, 0, sizeof *o);
        int rc = run_once(wl, workers, p, o);
        place_note(r, place_sample(&rtt), rtt);
        g_progress_done++;
        if (rc == 1) {
            if (!r->nruns) {
                r->skipped = true;
                snprintf(r->why, sizeof r->why, "interrupted before a run finished");
            }
            break;
        }
        if (rc < 0) {
            r->failed = true;
            snprintf(r->why, sizeof r->why, "run %d/%d: %s", rep, reps, o->why);
            progress_clear();
            fprintf(stderr, "axon-bench: FAILED %s (%u workers), run %d/%d: %s\n", name, workers,
                    rep, reps, o->why);
            g_failed++;
            if (rc == -2) { /* timed out: no clean way on; report and leave */
                print_row(r);
                fflush(stdout);
                finish(false);
                fflush(NULL);
                _exit(1);
            }
            g_progress_done += reps - rep;
            break;
        }
        r->runs[r->nruns++] = o->rate;
        r->ops = o->ops;
        if (o->other_pct > r->other_pct)
            r->other_pct = o->other_pct;
    }
    if (r->nruns && !r->failed) {
        summarize(r);
        r->verified = true;
        int k = 0;
        for (int i = 1; i < r->nruns; i++)
            if (fabs(r->runs[i] - r->median) < fabs(r->runs[k] - r->median))
                k = i;
        best_out = outs[k];
        r->remote_share = best_out.remote_share;
        r->idle_share = best_out.idle_share;
        r->ring_full = best_out.ring_full;
        r->dead_letters = best_out.dead_letters;
        r->dropped = best_out.dropped;
        r->nw = best_out.nw;
        memcpy(r->w, best_out.w, sizeof r->w);
        /* the remote limit when the workload's setup placed actors on
         * several workers, else the local one */
        bl = best_out.remote ? wl->limit_remote : wl->limit;
        r->limit = bl;
        r->limit_rate = limit_rate(bl);
        if (r->limit_rate > 0)
            r->pct = 100.0 * r->median / r->limit_rate;
        if (!strncmp(wl->name, "pingpong", 8))
            snprintf(r->note, sizeof r->note, "rtt %.0f ns", 2e9 / r->median);
        if (g_sweep_base > 0)
            snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note),
                     "%sspeedup x%.2f over 1 worker", r->note[0] ? "; " : "",
                     r->median / g_sweep_base);
        /* The ceiling a message-rate workload can reach at this many workers
         * when every message that crosses costs a line each way (the
         * sender's write takes the slot's line, the receiver's read takes
         * it back): each worker pays its one-worker time per message, t1,
         * plus L lines per message it handles (2 x the remote share: one
         * read per message received from a ring, one write per message
         * sent to one), each at the bare SPSC ring's cost per slot, c,
         * measured in this run.  speedup <= w t1 / (t1 + L c).  An upper
         * bound: it assumes the transfers overlap as well as the bare
         * ring's do and that nothing waits on latency.  docs/benchmarks.md,
         * "Savina big on 2 workers". */
        double ring = limit_rate(BL_RING);
        if (g_sweep_base > 0 && workers > 1 && ring > 0 && r->remote_share > 0 &&
            !strcmp(wl->unit, "msgs/s")) {
            double t1 = 1e9 / g_sweep_base, c = 1e9 / ring, lines = 2 * r->remote_share;
            snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note),
                     "; ceiling x%.3g (%.2f lines per message per worker at the ring's %.1f ns)",
                     workers * t1 / (t1 + lines * c), lines, c);
        }
        if (r->dropped)
            snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note),
                     "%s%llu dropped at stop", r->note[0] ? "; " : "",
                     (unsigned long long)r->dropped);
    }
    print_row(r);
}

/* ---- output: table ----------------------------------------------------------------------- */

static void print_header(void)
{
    ax_topo_summary_t *t = &g_plan->topo;
    printf("axon-bench %s: %u worker%s %s (PU%s", "0.1.0", g_plan->nworkers,
           g_plan->nworkers == 1 ? "" : "s", g_plan->pinned ? "pinned" : "UNPINNED",
           g_plan->nworkers == 1 ? "" : "s");
    for (uint32_t i = 0; i < g_plan->nworkers && i < 16; i++)
        printf("%s%u", i ? "," : " ", g_plan->workers[i].pu);
    printf("%s) | %u package(s), %u NUMA node(s), %u cores, %u PUs | %s | %s\n",
           g_plan->nworkers > 16 ? ",..." : "", t->packages, t->numa_nodes, t->cores, t->pus,
           g_cpu_model, g_kernel);
    printf("%s run, %d repeat%s (median, min, max); ", g_opt.quick ? "quick" : "full",
           g_opt.repeat, g_opt.repeat > 1 ? "s" : "");
    if (g_cpu_a >= 0)
        printf("limits measured in this run on CPUs %d,%d\n", g_cpu_a, g_cpu_b);
    else
        printf("%s\n", g_gp[G_LIMITS] ? "fewer than 2 CPUs: no cross-core limits"
                                      : "limits not measured (bench.limits=0)");
    if (g_best_rtt > 0)
        printf("vCPU placement: best cache-line round trip %.1f ns; a sample above %.1f ns "
               "(%llu%%) counts as far\n",
               g_best_rtt, g_best_rtt * (double)g_gp[G_FAR_PCT] / 100.0,
               (unsigned long long)g_gp[G_FAR_PCT]);
    printf("(place: vCPU placement sampled around each repeat; other: most CPU other processes "
           "took during a repeat, %% of the machine)\n");
    printf("\n%-24s %9s %9s %9s %-9s %8s %7s %-6s %5s %s\n", "name", "median", "min", "max",
           "unit", "ns/op", "%limit", "place", "other", "params");
}

static void print_row(const result_t *r)
{
    progress_clear();
    if (r->skipped || r->failed || r->nruns == 0) {
        printf("%-24s %9s %9s %9s %-9s %8s %7s %-6s %5s %s\n", r->name,
               r->failed ? "FAILED" : "skipped", "-", "-", r->unit, "-", "-", "-", "-", r->params);
        if (r->why[0])
            printf("    %s: %s\n", r->failed ? "FAILED" : "skipped", r->why);
        fflush(stdout);
        return;
    }
    char md[32], mn[32], mx[32], ns[32] = "-", pct[32] = "-";
    if (r->lower_better) { /* small figures (us per round trip) keep 3 digits */
        bool small = r->median < 10;
        snprintf(md, sizeof md, small ? "%.2f" : "%.1f", r->median);
        snprintf(mn, sizeof mn, small ? "%.2f" : "%.1f", r->min);
        snprintf(mx, sizeof mx, small ? "%.2f" : "%.1f", r->max);
    } else {
        fmt_si(md, sizeof md, r->median);
        fmt_si(mn, sizeof mn, r->min);
        fmt_si(mx, sizeof mx, r->max);
        snprintf(ns, sizeof ns, "%.2f", r->ns_per_op);
    }
    if (r->limit_rate > 0)
        snprintf(pct, sizeof pct, "%.1f%%", r->pct);
    const char *place = r->placement == AX_PLACE_UNKNOWN ? "-" : ax_limits_placement_name(r->placement);
    char other[16] = "?";
    if (r->other_pct >= 0)
        snprintf(other, sizeof other, "%.0f%%", r->other_pct);
    printf("%-24s %9s %9s %9s %-9s %8s %7s %-6s %5s %s\n", r->name, md, mn, mx, r->unit, ns, pct,
           place, other, r->params);
    if (r->note[0] || r->limit_rate > 0)
        printf("    %s%s%s%s\n", r->note, r->note[0] && r->limit_rate > 0 ? "; " : "",
               r->limit_rate > 0 ? "limit: " : "", r->limit_rate > 0 ? res_limit(r) : "");
    if (r->wl && r->nw) {
        printf("    workers:");
        for (uint32_t w = 0; w < r->nw; w++)
            printf("%s w%u remote %.0f%% ring-full %llu idle %.0f%%", w ? " |" : "", w,
                   100 * r->w[w].remote_share, (unsigned long long)r->w[w].ring_full,
                   100 * r->w[w].idle_share);
        printf("\n");
        /* Counts per message handled (not times: they hold on a loaded
         * machine): messages a turn served, and parks and wakes sent per
         * thousand messages.  A busy exchange serves many messages a turn
         * and parks almost never. */
        printf("    per worker:");
        for (uint32_t w = 0; w < r->nw; w++) {
            const wstat_t *s = &r->w[w];
            double k = s->handled ? 1000.0 / (double)s->handled : 0;
            printf("%s w%u msgs/turn %.1f parks/kmsg %.3f wakes/kmsg %.3f", w ? " |" : "", w,
                   s->turns ? (double)s->handled / (double)s->turns : 0, (double)s->parks * k,
                   (double)s->wakes_sent * k);
        }
        printf("\n");
    }
    fflush(stdout);
}

/* ---- output: JSON and CSV ------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

/* "n=1M chunk=1000" -> {"n": 1000000, "chunk": 1000}; non-numeric values as strings */
static void json_params(FILE *f, const char *text)
{
    char buf[320];
    snprintf(buf, sizeof buf, "%s", text);
    fputc('{', f);
    int first = 1;
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(t, '=');
        if (!eq)
            continue;
        *eq = 0;
        fprintf(f, "%s", first ? "" : ", ");
        first = 0;
        json_str(f, t);
        fputs(": ", f);
        uint64_t v;
        if (parse_u64(eq + 1, &v) == 0)
            fprintf(f, "%llu", (unsigned long long)v);
        else
            json_str(f, eq + 1);
    }
    fputc('}', f);
}

static int write_json(const char *path, bool interrupted)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "axon-bench: cannot write --json %s: %s\n", path, strerror(errno));
        return -1;
    }
    ax_topo_summary_t *t = &g_plan->topo;
    fprintf(f, "{\n  \"machine\": {\"cpu_model\": ");
    json_str(f, g_cpu_model);
    fprintf(f, ", \"kernel\": ");
    json_str(f, g_kernel);
    fprintf(f, ",\n    \"topology\": {\"packages\": %u, \"numa_nodes\": %u, \"l3_groups\": %u, "
               "\"cores\": %u, \"pus\": %u, \"memory_bytes\": %llu, \"source\": ",
            t->packages, t->numa_nodes, t->l3_groups, t->cores, t->pus,
            (unsigned long long)t->memory_bytes);
    json_str(f, t->source);
    fprintf(f, "},\n    \"placement\": {\"limit_cpus\": [%d, %d], \"best_rtt_ns\": ", g_cpu_a, g_cpu_b);
    json_num(f, g_best_rtt);
    fprintf(f, ", \"far_threshold_ns\": ");
    json_num(f, g_best_rtt * (double)g_gp[G_FAR_PCT] / 100.0);
    fprintf(f, ", \"samples\": %d, \"far_samples\": %d}},\n", g_place_samples, g_place_far);
    fprintf(f, "  \"config\": {\"workers\": %u, \"pinned\": %s, \"oversubscribed\": %s, "
               "\"pus\": [",
            g_plan->nworkers, g_plan->pinned ? "true" : "false",
            g_plan->oversubscribed ? "true" : "false");
    for (uint32_t i = 0; i < g_plan->nworkers; i++)
        fprintf(f, "%s%u", i ? ", " : "", g_plan->workers[i].pu);
    fprintf(f, "], \"ring_slots\": %u, \"batch\": %u, \"arena_bytes\": %llu, \"spin_us\": %d, "
               "\"prefault\": %s,\n    \"quick\": %s, \"repeat\": %d, \"only\": ",
            g_plan->ring_slots, ax_config_batch(&g_cfg), (unsigned long long)g_plan->arena_bytes,
            g_cfg.spin_us, g_gp[G_PREFAULT] || g_cfg.prefault ? "true" : "false",
            g_opt.quick ? "true" : "false", g_opt.repeat);
    if (g_opt.only)
        json_str(f, g_opt.only);
    else
        fputs("null", f);
    fputs(", \"config_file\": ", f);
    if (g_opt.config_file)
        json_str(f, g_opt.config_file);
    else
        fputs("null", f);
    fputs(", \"param_overrides\": [", f);
    for (int k = 0; k < g_nov; k++) {
        fputs(k ? ", " : "", f);
        json_str(f, g_ov[k].text);
    }
    fprintf(f, "], \"interrupted\": %s, \"failed\": %d},\n  \"results\": [\n",
            interrupted ? "true" : "false", g_failed);
    for (size_t i = 0; i < g_nres; i++) {
        const result_t *r = &g_res[i];
        fprintf(f, "    {\"name\": ");
        json_str(f, r->name);
        fprintf(f, ", \"unit\": ");
        json_str(f, r->unit);
        fprintf(f, ", \"workers\": %u, \"params\": ", r->workers);
        json_params(f, r->params);
        fprintf(f, ",\n     \"median\": ");
        json_num(f, r->nruns ? r->median : NAN);
        fprintf(f, ", \"min\": ");
        json_num(f, r->nruns ? r->min : NAN);
        fprintf(f, ", \"max\": ");
        json_num(f, r->nruns ? r->max : NAN);
        fprintf(f, ", \"runs\": [");
        for (int k = 0; k < r->nruns; k++) {
            fputs(k ? ", " : "", f);
            json_num(f, r->runs[k]);
        }
        fprintf(f, "], \"ops_per_run\": %llu, \"lower_is_better\": %s, \"ns_per_op\": ",
                (unsigned long long)r->ops, r->lower_better ? "true" : "false");
        json_num(f, r->nruns && !r->lower_better ? r->ns_per_op : NAN);
        fprintf(f, ",\n     \"limit\": ");
        if (r->limit_rate > 0) {
            json_str(f, res_limit(r));
            fprintf(f, ", \"limit_rate\": ");
            json_num(f, r->limit_rate);
            fprintf(f, ", \"pct_of_limit\": ");
            json_num(f, r->pct);
        } else {
            fputs("null, \"limit_rate\": null, \"pct_of_limit\": null", f);
        }
        fprintf(f, ", \"placement\": ");
        json_str(f, r->placement == AX_PLACE_UNKNOWN ? "unknown" : ax_limits_placement_name(r->placement));
        fprintf(f, ", \"placement_rtt_ns\": [");
        json_num(f, r->rtt_lo);
        fputs(", ", f);
        json_num(f, r->rtt_hi);
        fprintf(f, "], \"other_load_pct\": ");
        json_num(f, r->other_pct);
        fprintf(f, ",\n     \"verified\": %s, \"failed\": %s, \"skipped\": %s, \"why\": ",
                r->verified ? "true" : "false", r->failed ? "true" : "false",
                r->skipped ? "true" : "false");
        json_str(f, r->why);
        fprintf(f, ", \"note\": ");
        json_str(f, r->note);
        if (r->counts[0]) {
            fprintf(f, ", \"counts\": ");
            json_str(f, r->counts);
        }
        if (r->peer[0]) {
            fprintf(f, ", \"peer\": ");
            json_str(f, r->peer);
            fprintf(f, ", \"peer_value\": ");
            json_num(f, r->peer_value > 0 ? r->peer_value : NAN);
            fprintf(f, ", \"x_peer\": ");
            json_num(f, r->x_peer > 0 ? r->x_peer : NAN);
        }
        if (!strncmp(r->name, "cluster/", 8) && r->limit_rate > 0) {
            fprintf(f, ", \"x_limit\": "); /* latency: how many times the limit's */
            json_num(f, r->median / r->limit_rate);
        }
        if (r->cpu_pct > 0) {
            fprintf(f, ", \"cpu_pct_node0\": ");
            json_num(f, r->cpu_pct);
        }
        if (r->wl) {
            fprintf(f, ",\n     \"stats\": {\"remote_share\": ");
            json_num(f, r->remote_share);
            fprintf(f, ", \"idle_share\": ");
            json_num(f, r->idle_share);
            fprintf(f, ", \"ring_full\": %llu, \"dead_letters\": %llu, \"dropped_at_stop\": %llu, "
                       "\"per_worker\": [",
                    (unsigned long long)r->ring_full, (unsigned long long)r->dead_letters,
                    (unsigned long long)r->dropped);
            for (uint32_t w = 0; w < r->nw; w++) {
                fprintf(f, "%s{\"worker\": %u, \"handled\": %llu, \"remote_share\": ", w ? ", " : "",
                        w, (unsigned long long)r->w[w].handled);
                json_num(f, r->w[w].remote_share);
                fprintf(f, ", \"ring_full\": %llu, \"sent_remote\": %llu, \"turns\": %llu, "
                           "\"parks\": %llu, \"wakes_sent\": %llu, \"idle_share\": ",
                        (unsigned long long)r->w[w].ring_full,
                        (unsigned long long)r->w[w].sent_remote, (unsigned long long)r->w[w].turns,
                        (unsigned long long)r->w[w].parks, (unsigned long long)r->w[w].wakes_sent);
                json_num(f, r->w[w].idle_share);
                fputc('}', f);
            }
            fputs("]}", f);
        }
        fprintf(f, "}%s\n", i + 1 < g_nres ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "axon-bench: writing --json %s failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_csv(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "axon-bench: cannot write --csv %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "name,unit,workers,median,min,max,runs,ns_per_op,limit,limit_rate,pct_of_limit,"
               "placement,other_load_pct,remote_share,ring_full,idle_share,verified,params,peer,"
               "peer_value,x_peer\n");
    for (size_t i = 0; i < g_nres; i++) {
        const result_t *r = &g_res[i];
        fprintf(f, "%s,%s,%u,", r->name, r->unit, r->workers);
        if (r->nruns)
            fprintf(f, "%.6g,%.6g,%.6g,", r->median, r->min, r->max);
        else
            fprintf(f, ",,,");
        fputc('"', f);
        for (int k = 0; k < r->nruns; k++)
            fprintf(f, "%s%.6g", k ? ";" : "", r->runs[k]);
        fputs("\",", f);
        if (r->nruns && !r->lower_better)
            fprintf(f, "%.4g", r->ns_per_op);
        fprintf(f, ",%s,", r->limit_rate > 0 ? res_limit(r) : "");
        if (r->limit_rate > 0)
            fprintf(f, "%.6g,%.2f", r->limit_rate, r->pct);
        else
            fputc(',', f);
        fprintf(f, ",%s,%.0f,", r->placement == AX_PLACE_UNKNOWN ? "" : ax_limits_placement_name(r->placement),
                r->other_pct);
        if (r->wl && r->nruns)
            fprintf(f, "%.4f,%llu,%.4f", r->remote_share, (unsigned long long)r->ring_full,
                    r->idle_share);
        else
            fputs(",,", f);
        fprintf(f, ",%s,\"%s\",%s,", r->verified ? "true" : "false", r->params, r->peer);
        if (r->peer[0] && r->x_peer > 0)
            fprintf(f, "%.6g,%.4g\n", r->peer_value, r->x_peer);
        else
            fputs(",\n", f);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "axon-bench: writing --csv %s failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- output: plot (gnuplot) ------------------------------------------------------------------ */

static bool have_gnuplot(void)
{
    return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static int write_plot(const char *path)
{
    char dir[] = "/tmp/axon-bench-plot.XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "axon-bench: --plot: cannot make a temporary directory: %s\n", strerror(errno));
        return -1;
    }
    char sc[300], lim[300], gp[300];
    snprintf(sc, sizeof sc, "%s/scaling.dat", dir);
    snprintf(lim, sizeof lim, "%s/limits.dat", dir);
    snprintf(gp, sizeof gp, "%s/plot.gp", dir);
    FILE *fs = fopen(sc, "w"), *fl = fopen(lim, "w"), *fg = fopen(gp, "w");
    if (!fs || !fl || !fg) {
        fprintf(stderr, "axon-bench: --plot: cannot write in %s: %s\n", dir, strerror(errno));
        if (fs) fclose(fs);
        if (fl) fclose(fl);
        if (fg) fclose(fg);
        return -1;
    }
    /* scaling.dat: one block per workload that ran: workers median min max */
    int nsc = 0;
    const char *sw[NSWEEP_WLS] = {"fjthrput", "fjthrput_drivers", "big", "skynet", "fib", "fjcreate"};
    char plotcmd[1200] = "";
    for (int k = 0; k < NSWEEP_WLS; k++) {
        int rows = 0;
        char pre[64];
        snprintf(pre, sizeof pre, "scaling/%s/", sw[k]);
        for (size_t i = 0; i < g_nres; i++) {
            if (strncmp(g_res[i].name, pre, strlen(pre)) || !g_res[i].nruns)
                continue;
            if (!rows++)
                fprintf(fs, "%s# %s\n", nsc ? "\n\n" : "", sw[k]);
            fprintf(fs, "%u %g %g %g\n", g_res[i].workers, g_res[i].median / 1e6,
                    g_res[i].min / 1e6, g_res[i].max / 1e6);
        }
        if (!rows)
            continue;
        size_t off = strlen(plotcmd);
        snprintf(plotcmd + off, sizeof plotcmd - off,
                 "%s'%s' index %d using 1:2:3:4 with yerrorlines lw 2 title '%s'",
                 nsc ? ", " : "plot ", sc, nsc, sw[k]);
        nsc++;
    }
    if (!nsc) /* nothing to draw: say so instead of an empty or failing plot */
        snprintf(plotcmd, sizeof plotcmd,
                 "set label 1 'scaling sweep not run (--only)' at graph 0.5,0.5 center\n"
                 "set yrange [0:1]\nplot 2 notitle");
    int nl = 0;
    for (size_t i = 0; i < g_nres; i++)
        if (g_res[i].wl && g_res[i].limit_rate > 0 && strncmp(g_res[i].name, "scaling/", 8))
        {
            /* two-line tic labels: "pingpong\nlocal" (rotated text renders
             * badly in some SVG viewers) */
            char lab[64];
            snprintf(lab, sizeof lab, "%s", g_res[i].name);
            fputc('"', fl);
            for (const char *c = lab; *c; c++)
                fputs(*c == '_' ? "\\n" : (char[2]){*c, 0}, fl);
            fprintf(fl, "\" %g\n", g_res[i].pct);
            nl++;
        }
    if (!nl)
        fprintf(fl, "\"none\" 0\n");
    fclose(fs);
    fclose(fl);
    fprintf(fg,
            "set terminal svg size 1200,520 dynamic font 'sans,11'\n"
            "set output '%s'\n"
            "set multiplot layout 1,2 title 'axon-bench: %s, %u workers, %s'\n"
            "set title 'scaling sweep (median, min-max bars)'\n"
            "set xlabel 'workers'\nset ylabel 'M msgs/s'\nset key top left\nset grid\n"
            "set xtics 1\nset yrange [0:*]\nset xrange [0.5:%u.5]\nset bmargin 7\n"
            "%s\n"
            "unset label 1\n"
            "set title 'each workload as %% of its limit, measured in the same run'\n"
            "set xlabel ''\nset ylabel '%% of limit'\nset style fill solid 0.6\nset boxwidth 0.6\n"
            "set yrange [0:*]\nset offsets 0,0,graph 0.1,0\nset xrange [-0.6:*]\nunset key\nset xtics norotate font ',10'\n"
            "plot '%s' using 0:2:xtic(1) with boxes, '' using 0:2:(sprintf('%%.1f%%%%',$2)) "
            "with labels offset 0,0.8\n"
            "unset multiplot\n",
            path, g_cpu_model, g_plan->nworkers, g_opt.quick ? "quick run" : "full run",
            g_sweep_max, plotcmd, lim);
    fclose(fg);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>'%s/err.txt'", gp, dir);
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "axon-bench: --plot: gnuplot failed (status %d); its script and errors "
                        "are in %s\n", rc, dir);
        return -1;
    }
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "axon-bench: --plot: could not remove %s\n", dir);
    return 0;
}

/* ---- machine ---------------------------------------------------------------------------------- */

static void read_machine(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(g_cpu_model, sizeof g_cpu_model, "%s", c);
            }
            break;
        }
    }
    if (f)
        fclose(f);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(g_kernel, sizeof g_kernel, "%s %s %s", u.sysname, u.release, u.machine);
}

static void load_config(void)
{
    ax_config_error_t err;
    ax_config_init(&g_cfg);
    if (g_opt.config_file && ax_config_load_file(&g_cfg, g_opt.config_file, &err) < 0) {
        fprintf(stderr, "axon-bench: --config: %s\n", err.message);
        exit(2);
    }
    if (ax_config_apply_env(&g_cfg, NULL, &err) < 0) {
        fprintf(stderr, "axon-bench: environment: %s\n", err.message);
        exit(2);
    }
    if (g_opt.workers)
        g_cfg.workers = g_opt.workers;
    if (ax_config_validate(&g_cfg, &err) < 0) {
        fprintf(stderr, "axon-bench: config: %s\n", err.message);
        exit(2);
    }
    char msg[512] = "";
    ax_topo_t *topo = NULL;
    int rc = ax_topo_load_config(&g_cfg, &topo, msg, sizeof msg);
    if (rc == 0)
        rc = ax_plan_create(topo, &g_cfg, &g_plan, msg, sizeof msg);
    ax_topo_destroy(topo);
    if (rc < 0) {
        fprintf(stderr, "axon-bench: cannot plan the engine: %s\n", msg[0] ? msg : strerror(-rc));
        exit(2);
    }
}

/* ---- main -------------------------------------------------------------------------------------- */

static int finish(bool interrupted)
{
    progress_clear();
    int bad = 0;
    if (g_opt.json && write_json(g_opt.json, interrupted) < 0)
        bad = 1;
    if (g_opt.csv && write_csv(g_opt.csv) < 0)
        bad = 1;
    if (g_opt.plot && write_plot(g_opt.plot) < 0)
        bad = 1;
    double el = (double)(bench_now_ns() - g_t_start) / 1e9;
    if (interrupted) {
        printf("\naxon-bench: interrupted after %.1f s; the results above are the runs that "
               "finished\n", el);
        return 130;
    }
    if (g_failed) {
        printf("\naxon-bench: FAILED: %d workload(s) failed their checks or did not run:", g_failed);
        for (size_t i = 0; i < g_nres; i++)
            if (g_res[i].failed)
                printf(" %s", g_res[i].name);
        printf("\n");
        return 1;
    }
    printf("\naxon-bench: all results verified; %.1f s; placement samples: %d, far: %d\n", el,
           g_place_samples, g_place_far);
    return bad;
}

/* ---- the cluster mode (cluster.c) ------------------------------------------------------------- */

static double median_of(const double *v, int n)
{
    double s[BENCH_MAX_REPEAT];
    memcpy(s, v, (size_t)n * sizeof s[0]);
    qsort(s, (size_t)n, sizeof s[0], cmp_d);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* A cluster result: the figure, its limit's ratio (found by name among the
 * results so far: the limit runs just before), the peer's, node 0's CPU. */
static void cluster_emit(const bench_cl_res_t *c)
{
    result_t *r = result_new();
    snprintf(r->name, sizeof r->name, "%s", c->name);
    r->unit = c->unit ? c->unit : "";
    r->lower_better = c->lower_better;
    r->workers = c->nodes;
    r->placement = AX_PLACE_UNKNOWN;
    snprintf(r->params, sizeof r->params, "%s", c->params);
    snprintf(r->why, sizeof r->why, "%s", c->why);
    r->nruns = c->nruns;
    memcpy(r->runs, c->runs, sizeof r->runs);
    r->failed = c->failed;
    r->skipped = c->skipped;
    snprintf(r->counts, sizeof r->counts, "%s", c->counts);
    g_progress_done++;
    if (r->failed) {
        g_failed++;
        progress_clear();
        fprintf(stderr, "axon-bench: FAILED %s: %s\n", r->name, r->why);
    }
    if (r->nruns && !r->failed) {
        summarize(r);
        r->verified = true;
        size_t nl = 0;
        if (c->has_alt) {
            nl += (size_t)snprintf(r->note + nl, sizeof r->note - nl, "mean %.2f us",
                                   median_of(c->alt, c->nruns));
        }
        double cpu = 0;
        for (int i = 0; i < c->nruns; i++)
            cpu += c->cpu_pct[i];
        if (cpu > 0) {
            r->cpu_pct = median_of(c->cpu_pct, c->nruns);
            nl += (size_t)snprintf(r->note + nl, sizeof r->note - nl, "%snode0 cpu %.0f%%",
                                   nl ? "; " : "", r->cpu_pct);
        }
        const result_t *l = c->limit[0] ? find_result(c->limit) : NULL;
        if (l && l->median > 0 && !l->failed) {
            snprintf(r->limit_text, sizeof r->limit_text, "%s", c->limit);
            r->limit_rate = l->median;
            /* %limit: speed as a share of the limit's (for a latency, limit / ours) */
            r->pct = r->lower_better ? 100.0 * l->median / r->median
                                     : 100.0 * r->median / l->median;
            if (nl < sizeof r->note)
                nl += (size_t)snprintf(r->note + nl, sizeof r->note - nl, "%s%s x%.2f",
                                       nl ? "; " : "", r->lower_better ? "rtt" : "rate",
                                       r->median / l->median);
        }
        const result_t *p = c->peer[0] ? find_result(c->peer) : NULL;
        if (p && p->median > 0 && !p->failed) {
            double mine = c->has_alt ? median_of(c->alt, c->nruns) : r->median;
            snprintf(r->peer, sizeof r->peer, "%s", c->peer);
            r->peer_value = p->median;
            r->x_peer = r->lower_better ? p->median / mine : mine / p->median;
            if (nl < sizeof r->note)
                snprintf(r->note + nl, sizeof r->note - nl, "%s%.1fx erlang%s",
                         nl ? "; " : "", r->x_peer, c->has_alt ? " (means)" : "");
        }
    }
    print_row(r);
    if (r->counts[0] && !r->failed)
        printf("    %-34s node 0 per message handled: %s\n", "", r->counts);
}

static void cluster_progress(const char *what, int rep, int reps) { progress(what, rep, reps); }

static void run_cluster(int reps)
{
    printf("\ncluster mode: axon nodes forked on this machine, one worker each; the limit "
           "(ucx_perftest, same UCX_TLS) and the peer (Erlang distribution) run in this "
           "process's session, just before\n");
    fflush(stdout);
    bench_cl_opts_t o = {
        .cfg = &g_cfg,
        .reps = (uint32_t)reps,
        .timeout_s = (uint32_t)g_cp[C_TIMEOUT],
        .nodes_max = (uint32_t)g_cp[C_NODES_MAX],
        .pp_n = g_cp[C_PP_N],
        .ow_n = g_cp[C_OW_N],
        .window = g_cp[C_WINDOW],
        .big_pings = g_cp[C_BIG_PINGS],
        .mesh_n = g_cp[C_MESH_N],
        .erl_pp_n = g_cp[C_ERL_PP_N],
        .erl_ow_n = g_cp[C_ERL_OW_N],
        .big_actors = (uint32_t)g_cp[C_BIG_ACTORS],
        .mesh_actors = (uint32_t)g_cp[C_MESH_ACTORS],
        .ucx = g_cp[C_UCX] != 0,
        .erlang = g_cp[C_ERLANG] != 0,
        .wakeup = g_cp[C_WAKEUP] != 0,
        .tcp = g_cp[C_TCP] != 0,
        .multi = g_cp[C_MULTI] != 0,
        .pairs = g_cp[C_PAIRS] != 0,
        .multi_2n = g_cp[C_MULTI2] != 0,
        .interrupted = &g_interrupted,
        .progress = cluster_progress,
        .emit = cluster_emit,
    };
    bench_cluster_run(&o);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"workers", required_argument, 0, 'w'}, {"config", required_argument, 0, 'c'},
        {"only", required_argument, 0, 'o'},    {"quick", no_argument, 0, 'q'},
        {"repeat", required_argument, 0, 'r'},  {"json", required_argument, 0, 'j'},
        {"csv", required_argument, 0, 'C'},     {"plot", required_argument, 0, 'p'},
        {"list", no_argument, 0, 'l'},          {"param", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},          {"cluster", required_argument, 0, 'N'},
        {0, 0, 0, 0},
    };
    bool list = false;
    int c;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "w:c:o:qr:j:C:p:lP:hN:", lo, NULL)) != -1) {
        switch (c) {
        case 'w':
            if (parse_u64(optarg, &v) < 0 || v == 0 || v > 4096)
                die_usage("--workers %s: expected 1..4096", optarg);
            g_opt.workers = (uint32_t)v;
            break;
        case 'c': g_opt.config_file = optarg; break;
        case 'o': g_opt.only = optarg; break;
        case 'q': g_opt.quick = true; break;
        case 'r':
            if (parse_u64(optarg, &v) < 0 || v == 0 || v > BENCH_MAX_REPEAT)
                die_usage("--repeat %s: expected 1..%d", optarg, BENCH_MAX_REPEAT);
            g_opt.repeat = (int)v;
            break;
        case 'j': g_opt.json = optarg; break;
        case 'C': g_opt.csv = optarg; break;
        case 'p': g_opt.plot = optarg; break;
        case 'l': list = true; break;
        case 'P': add_override(optarg); break;
        case 'h': usage(stdout); return 0;
        case 'N':
            if (parse_u64(optarg, &v) < 0 || v < 2 || v > 8)
                die_usage("--cluster %s: expected a node count from 2 to 8", optarg);
            g_opt.cluster = (uint32_t)v;
            break;
        default:
            if (optopt)
                die_usage("option -%c: unknown, or its value is missing", optopt);
            die_usage("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (g_opt.cluster && !g_opt.only)
        g_opt.only = (char *)"cluster";
    check_overrides();
    check_only();
    if (list) {
        list_workloads();
        return 0;
    }
    if (!g_opt.repeat)
        g_opt.repeat = g_opt.quick ? 1 : 3;
    if (g_opt.plot && !have_gnuplot()) {
        fprintf(stderr, "axon-bench: --plot needs gnuplot, which is not installed "
                        "(apt-get install gnuplot-nox), or drop --plot\n");
        return 2;
    }
    /* bench.* first: bench.scale_pct scales the counts of everything else */
    g_gp[G_SCALE_PCT] = 100;
    resolve_params(g_bench_params, NULL, "bench", g_gp);
    resolve_params(g_limit_params, NULL, "limits", g_lp);
    resolve_params(g_scaling_params, NULL, "scaling", g_sp);
    resolve_params(g_cluster_params, NULL, "cluster", g_cp);
    if (g_opt.cluster)
        g_cp[C_NODES_MAX] = g_opt.cluster;
    read_machine();
    load_config();
    g_opt.tty = isatty(2);
    g_t_start = bench_now_ns();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* bench.limits=0 also skips placement sampling: under valgrind the two
     * spinning threads of a bounce would crawl */
    if (!g_gp[G_LIMITS] || ax_limits_pick_cpus(&g_cpu_a, &g_cpu_b) < 0)
        g_cpu_a = g_cpu_b = -1;
    if (g_cpu_a >= 0 && g_plan->nworkers >= 2 && g_plan->pinned) {
        /* measure the limits between the CPUs the first two workers use */
        g_cpu_a = (int)g_plan->workers[0].pu;
        g_cpu_b = (int)g_plan->workers[1].pu;
    }
    /* calibrate: the best of 10 samples is "near" (the host may start far) */
    for (int i = 0; i < 10 && g_cpu_a >= 0; i++) {
        place_sample(NULL);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    g_place_samples = g_place_far = 0;

    const uint32_t nw = g_plan->nworkers;
    uint32_t sweep_max = g_sp[S_MAX_WORKERS] ? (uint32_t)g_sp[S_MAX_WORKERS] : nw;
    uint32_t sweep[32];
    int nsweep = 0;
    for (uint32_t w = 1; w < sweep_max && nsweep < 31; w *= 2)
        sweep[nsweep++] = w;
    sweep[nsweep++] = sweep_max;
    g_sweep_max = sweep_max;
    bool limits_only = g_opt.only && only_selected("limits", NULL) && !strchr(g_opt.only, ',');
    int reps = g_opt.repeat;
    g_progress_total = reps; /* limits */
    for (size_t w = 0; w < NWLS && !limits_only; w++)
        if (only_selected(g_wls[w]->name, g_wls[w]->group))
            g_progress_total += reps;
    if (!limits_only && only_selected("scaling", NULL))
        g_progress_total += NSWEEP_WLS * nsweep * reps;

    /* the cluster mode: only when asked for (it forks nodes, needs ucx-utils
     * and erlang-base for its references, and takes minutes) */
    bool cluster = g_opt.only && only_selected("cluster", NULL);
    bool cluster_only = cluster && !strchr(g_opt.only, ',');
    if (cluster)
        g_progress_total += 20; /* its results, limits and peers included */
    if (!g_gp[G_LIMITS] || cluster_only)
        g_progress_total -= reps;
    print_header();
    if (cluster_only) {
        printf("(machine limits not run: the cluster mode measures its own, ucx_perftest)\n");
    } else if (g_gp[G_LIMITS]) {
        run_limits(reps);
        for (size_t i = 0; i < g_nres; i++)
            print_row(&g_res[i]);
        printf("\n");
    } else {
        printf("(limits skipped: bench.limits=0; no %% of limit is shown)\n\n");
    }
    for (size_t w = 0; w < NWLS && !limits_only && !g_interrupted; w++)
        if (only_selected(g_wls[w]->name, g_wls[w]->group))
            run_workload(g_wls[w], nw, g_wls[w]->name, reps);
    if (!limits_only && only_selected("scaling", NULL) && !g_interrupted) {
        printf("\nscaling sweep (speedup against 1 worker):\n");
        const bench_workload_t *sw[NSWEEP_WLS] = {&bench_wl_fjthrput, &bench_wl_fjthrput_drivers,
                                                  &bench_wl_big,      &bench_wl_skynet,
                                                  &bench_wl_fib,      &bench_wl_fjcreate};
        for (int k = 0; k < NSWEEP_WLS && !g_interrupted; k++) {
            g_sweep_base = 0;
            for (int i = 0; i < nsweep && !g_interrupted; i++) {
                char name[64];
                snprintf(name, sizeof name, "scaling/%s/%uw", sw[k]->name, sweep[i]);
                run_workload(sw[k], sweep[i], name, reps);
                const result_t *r = &g_res[g_nres - 1];
                if (r->nruns && sweep[i] == 1)
                    g_sweep_base = r->median;
            }
        }
        g_sweep_base = 0;
    }
    if (cluster && !g_interrupted)
        run_cluster(reps);
    int rc = finish(g_interrupted != 0);
    ax_plan_destroy(g_plan);
    free(g_res);
    return rc;
}
