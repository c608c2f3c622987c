/* tools/bench/cluster.c - axon-bench's cluster mode (issue 15): axon nodes
 * on this machine, each beside its limit and its peer measured in the same
 * run.
 *
 * For each launch the harness forks N node processes (standalone cluster
 * mode: node 0 listens on 127.0.0.1:0 and is the others' seed; a random
 * cookie per launch; UCX_TLS set in the children).  Node 0 drives every
 * repeat of every workload and writes one line per repeat into a pipe the
 * harness reads; the other nodes serve until node 0 registers "end".  Each
 * node runs one worker, pinned to a CPU of its own when the process may use
 * as many CPUs as there are nodes (then the workers spin), else unpinned
 * (then they park at once: scheduler.spin_us = -1).
 *
 * Workloads (every actor checks what it receives; a mismatch fails the run):
 *   pingpong  node 0's actor and node 1's bounce one message; per round
 *             trip times, the median (p50) is the figure (ucx_perftest's
 *             latency is a p50 too), the mean is in the note
 *   oneway    node 0's actor streams n messages to node 1's, credit window
 *             (acks every window/4); rate from the first send to the last ack
 *   big       Savina big: actors spread over the nodes, each pings random
 *             actors (any node) one at a time and answers pings; pings+pongs/s
 *   mesh      every actor sends n messages to random actors of every node
 *             (chunks of 64 per turn); per-pair order and exactly-once are
 *             checked (each receiver knows its expected count: the targets
 *             come from a seeded generator every node can replay)
 * Every message carries AX_INLINE_MAX (40) bytes: one 64-byte record on the
 * wire after the 40-byte wire header, so ucx_perftest runs at 104 bytes,
 * and the Erlang peer carries a 40-byte binary.
 *
 * The limit is perf/scripts/ucx-limits.sh (ucx_perftest ucp_am_lat and
 * ucp_am_bw, same UCX_TLS, same message count) and the peer
 * perf/scripts/erlang-dist.sh (two or more Erlang nodes over distribution:
 * pingpong, oneway, big and mesh on the same work, mesh with the same
 * actors per node, messages per actor, chunks of 64 and checks),
 * run by this process between the axon launches.
 *
 * Threading: in a node process the main thread fills the reference table
 * and publishes it (g_table, release; actors acquire) before it registers
 * itself ready; node 0 kicks work only after every node is ready.  Results
 * go from the driver actor to node 0's main thread through g_done (sem_post
 * / sem_wait: full barrier).  The harness side is single-threaded.
 * Memory: a node's tables are freed when it exits; the harness keeps
 * nothing beyond the results it hands to bench_cl_emit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/cluster.h"
#include "bench.h"

#ifndef AXON_PERF_SCRIPTS
#define AXON_PERF_SCRIPTS "perf/scripts"
#endif

enum { CT_PP_GO = 1, CT_PING, CT_PONG, CT_OW_GO, CT_FLOOD, CT_ACK, CT_CONT, CT_BIG_GO,
       CT_BIG_START, CT_BIG_PING, CT_BIG_PONG, CT_DONE, CT_MESH_GO, CT_MESH_START, CT_MESH,
       CT_MESH_CONT };
enum { W_PP, W_OW, W_BIG, W_MESH, NW_ };
static const char *const WNAME[NW_] = { "pingpong", "oneway", "big", "mesh" };

#define CL_MAX_ACTORS 512u /* every node's actors together */
#define CL_MAX_NODES 8u
#define MESH_CHUNK 64u
#define OW_CHUNK 128u /* a turn's batch: 128 x 64 + 40 bytes, below UCX's rendezvous */
#define WIRE_BYTES 104u /* 40-byte wire header + one 64-byte record (docs/cluster.md) */

typedef struct cl_job {
    uint32_t nodes;
    const char *tls; /* UCX_TLS for the nodes; NULL: the caller's environment */
    uint32_t progress;
    int32_t spin_us; /* scheduler.spin_us for the nodes (0: default) */
    bool pin;
    int cpus[CL_MAX_NODES];
    bool run[NW_];
    uint64_t pp_n, ow_n, window, big_pings, mesh_n;
    uint32_t big_per, mesh_per; /* actors per node */
    uint32_t reps, timeout_s;
    char cookie[40];
    const ax_config_t *base;
} cl_job_t;

/* ---- node process ---------------------------------------------------------------------- */

typedef struct cla {
    uint32_t node, k;
    uint32_t mode; /* driver: W_* running */
    uint32_t rep;  /* mesh: the repeat the counters below are for */
    uint64_t i, n, warm, t_prev, t0, sent, acked, dones, want;
    bool cont, m_done, m_cont;
    uint64_t left, rng, got;
    uint64_t m_sent, m_recv, m_expect;
    uint32_t out[CL_MAX_ACTORS], in[CL_MAX_ACTORS];
} cla_t;

static const cl_job_t *J;
static uint32_t g_node, g_per;
static ax_ref_t g_ref[CL_MAX_ACTORS];
static _Atomic int g_table; /* 1 once g_ref is complete (release; actors acquire) */
static uint32_t *g_mexp;    /* mesh: expected arrivals, [rep - 1][local actor] */
static sem_t g_done;
static _Atomic int g_fail;
static char g_why[256];
static uint64_t *g_samples; /* pingpong: round-trip times, ns */
static uint64_t g_t1;       /* driver: end stamp of the repeat */

static void cl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cl_fail(const char *fmt, ...)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&g_fail, &expect, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_why, sizeof g_why, fmt, ap);
    va_end(ap);
    sem_post(&g_done);
}

static void cl_send(ax_ctx_t *ctx, ax_ref_t to, uint32_t type, uint64_t a, uint64_t b)
{
    uint64_t buf[AX_INLINE_MAX / 8] = { a, b, 0x5a5a5a5a5a5a5a5aull, 0, 0 };
    int rc = ax_send(ctx, to, type, buf, sizeof buf);
    if (rc)
        cl_fail("node %u: ax_send of type %u to %#llx (node %u) failed: %s", g_node, type,
                (unsigned long long)to, ax_ref_node(to), strerror(-rc));
}

static uint64_t mesh_seed(uint32_t rep, uint32_t src)
{
    return 0x9E3779B97F4A7C15ull ^ ((uint64_t)rep << 40) ^ ((uint64_t)src << 8) ^ 1;
}

static ax_ref_t big_ref(uint32_t t) { return g_ref[(t / J->big_per) * g_per + t % J->big_per]; }
static ax_ref_t mesh_ref(uint32_t t) { return g_ref[(t / J->mesh_per) * g_per + t % J->mesh_per]; }

static void ow_pump(ax_ctx_t *ctx, cla_t *a)
{
    ax_ref_t sink = g_ref[1 * g_per];
    for (uint32_t i = 0; i < OW_CHUNK && a->sent < a->n && a->sent - a->acked < J->window; i++) {
        cl_send(ctx, sink, CT_FLOOD, a->sent, a->n);
        a->sent++;
    }
    if (a->sent < a->n && a->sent - a->acked < J->window && !a->cont) {
        a->cont = true;
        cl_send(ctx, ax_self(ctx), CT_CONT, 0, 0);
    }
}

static void mesh_enter(cla_t *a, uint32_t rep)
{
    if (a->rep == rep)
        return;
    if (rep == 0 || rep > J->reps) {
        cl_fail("node %u: mesh message of repeat %u", g_node, rep);
        return;
    }
    a->rep = rep;
    memset(a->out, 0, sizeof a->out);
    memset(a->in, 0, sizeof a->in);
    a->m_recv = 0;
    a->m_done = false;
    a->m_expect = g_mexp[(size_t)(rep - 1) * J->mesh_per + a->k];
}

static void mesh_check_done(ax_ctx_t *ctx, cla_t *a)
{
    if (!a->m_done && a->m_recv == a->m_expect) {
        a->m_done = true;
        cl_send(ctx, g_ref[0], CT_DONE, a->rep, W_MESH);
    }
}

static void mesh_pump(ax_ctx_t *ctx, cla_t *a)
{
    uint32_t nm = J->nodes * J->mesh_per, me = a->node * J->mesh_per + a->k;
    for (uint32_t i = 0; i < MESH_CHUNK && a->m_sent < J->mesh_n; i++, a->m_sent++) {
        uint32_t t = (uint32_t)(bench_rand(&a->rng) % nm);
        cl_send(ctx, mesh_ref(t), CT_MESH, (uint64_t)me | (uint64_t)a->rep << 32, a->out[t]++);
    }
    if (a->m_sent < J->mesh_n && !a->m_cont) {
        a->m_cont = true;
        cl_send(ctx, ax_self(ctx), CT_MESH_CONT, 0, 0);
    }
}

static void big_ping(ax_ctx_t *ctx, cla_t *a)
{
    uint32_t nb = J->nodes * J->big_per;
    cl_send(ctx, big_ref((uint32_t)(bench_rand(&a->rng) % nb)), CT_BIG_PING, 0, 0);
}

static void driver_done(cla_t *a)
{
    g_t1 = bench_now_ns();
    a->mode = NW_;
    sem_post(&g_done); /* pairs with node 0's sem_wait: g_t1, g_samples visible */
}

static void on_cl(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    cla_t *a = state;
    if (!atomic_load_explicit(&g_table, memory_order_acquire)) {
        cl_fail("node %u: a message before the reference table was complete", g_node);
        return;
    }
    if (atomic_load_explicit(&g_fail, memory_order_relaxed))
        return;
    uint64_t p0 = m->payload.u64[0], p1 = m->payload.u64[1];
    switch (m->type) {
    case CT_PP_GO:
        a->mode = W_PP;
        a->n = p0;
        a->warm = p0 / 10 + 1;
        a->i = 0;
        a->t_prev = bench_now_ns();
        cl_send(ctx, g_ref[1 * g_per], CT_PING, 0, 0);
        return;
    case CT_PING:
        cl_send(ctx, ax_sender(ctx), CT_PONG, p0, 0);
        return;
    case CT_PONG: {
        uint64_t t = bench_now_ns();
        if (a->mode != W_PP || p0 != a->i) {
            cl_fail("pingpong: pong %llu, expected %llu", (unsigned long long)p0,
                    (unsigned long long)a->i);
            return;
        }
        if (a->i >= a->warm)
            g_samples[a->i - a->warm] = t - a->t_prev;
        a->t_prev = t;
        if (++a->i < a->warm + a->n)
            cl_send(ctx, ax_sender(ctx), CT_PING, a->i, 0);
        else
            driver_done(a);
        return;
    }
    case CT_OW_GO:
        a->mode = W_OW;
        a->n = p0;
        a->sent = a->acked = 0;
        a->cont = false;
        a->t0 = bench_now_ns();
        ow_pump(ctx, a);
        return;
    case CT_CONT:
        a->cont = false;
        ow_pump(ctx, a);
        return;
    case CT_FLOOD: {
        if (p0 == 0)
            a->got = 0;
        if (p0 != a->got) {
            cl_fail("oneway: message %llu arrived as number %llu (order or exactly-once broken)",
                    (unsigned long long)p0, (unsigned long long)a->got);
            return;
        }
        a->got++;
        uint64_t every = J->window / 4 ? J->window / 4 : 1;
        if (a->got % every == 0 || a->got == p1)
            cl_send(ctx, ax_sender(ctx), CT_ACK, a->got, 0);
        return;
    }
    case CT_ACK:
        if (a->mode != W_OW || p0 < a->acked || p0 > a->sent) {
            cl_fail("oneway: ack %llu with %llu sent", (unsigned long long)p0,
                    (unsigned long long)a->sent);
            return;
        }
        a->acked = p0;
        if (a->acked == a->n)
            driver_done(a);
        else if (!a->cont)
            ow_pump(ctx, a);
        return;
    case CT_BIG_GO:
        a->mode = W_BIG;
        a->dones = 0;
        a->want = (uint64_t)J->nodes * J->big_per;
        a->t0 = bench_now_ns();
        for (uint32_t t = 0; t < a->want; t++)
            cl_send(ctx, big_ref(t), CT_BIG_START, p0, 0);
        return;
    case CT_BIG_START:
        a->left = J->big_pings;
        a->rng = mesh_seed((uint32_t)p0, a->node * g_per + a->k) ^ 0xB16;
        big_ping(ctx, a);
        return;
    case CT_BIG_PING:
        cl_send(ctx, ax_sender(ctx), CT_BIG_PONG, 0, 0);
        return;
    case CT_BIG_PONG:
        if (--a->left)
            big_ping(ctx, a);
        else
            cl_send(ctx, g_ref[0], CT_DONE, 0, W_BIG);
        return;
    case CT_MESH_GO:
        a->mode = W_MESH;
        a->dones = 0;
        a->want = (uint64_t)J->nodes * J->mesh_per;
        a->t0 = bench_now_ns();
        for (uint32_t t = 0; t < a->want; t++)
            cl_send(ctx, mesh_ref(t), CT_MESH_START, p0, 0);
        return;
    case CT_MESH_START:
        mesh_enter(a, (uint32_t)p0);
        a->m_sent = 0;
        a->m_cont = false;
        a->rng = mesh_seed((uint32_t)p0, a->node * J->mesh_per + a->k);
        mesh_pump(ctx, a);
        mesh_check_done(ctx, a);
        return;
    case CT_MESH_CONT:
        a->m_cont = false;
        mesh_pump(ctx, a);
        return;
    case CT_MESH: {
        uint32_t src = (uint32_t)p0, rep = (uint32_t)(p0 >> 32);
        mesh_enter(a, rep);
        if (src >= J->nodes * J->mesh_per || p1 != a->in[src]) {
            cl_fail("mesh: pair %u->%u: got seq %llu, expected %u (order or exactly-once broken)",
                    src, a->node * J->mesh_per + a->k, (unsigned long long)p1,
                    src < CL_MAX_ACTORS ? a->in[src] : 0);
            return;
        }
        a->in[src]++;
        if (++a->m_recv > a->m_expect) {
            cl_fail("mesh: actor %u received more than the %llu messages sent to it",
                    a->node * J->mesh_per + a->k, (unsigned long long)a->m_expect);
            return;
        }
        mesh_check_done(ctx, a);
        return;
    }
    case CT_DONE:
        if (a->mode != p1) {
            cl_fail("a DONE of %s while %s runs", WNAME[p1 % NW_],
                    a->mode < NW_ ? WNAME[a->mode] : "nothing");
            return;
        }
        if (++a->dones == a->want)
            driver_done(a);
        return;
    default:
        cl_fail("node %u: unexpected message type %u", g_node, m->type);
    }
}

static void cla_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    (void)len;
    cla_t *a = state;
    memset(a, 0, sizeof *a);
    uint32_t id[2];
    memcpy(id, arg, sizeof id);
    a->node = id[0];
    a->k = id[1];
    a->mode = NW_;
}

static double now_s(void) { return (double)bench_now_ns() / 1e9; }

/* Wait until `name` is registered somewhere (or the deadline). */
static ax_ref_t wait_name(ax_engine_t *eng, const char *name, double deadline)
{
    for (;;) {
        ax_ref_t r = ax_cluster_whereis(eng, name);
        if (r != AX_REF_NONE || now_s() > deadline)
            return r;
        usleep(1000);
    }
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Node 0's counts around a repeat: load-independent figures of the data
 * path (messages per active message, wake-ups, UCP progress calls and
 * context switches per message handled), printed as a CNT line. */
typedef struct cl_cnt {
    uint64_t handled, am_sent, msgs_sent, am_recv, msgs_recv, parks, prog, prog_busy, arms,
        fd_wakes, csw, parked_ns;
} cl_cnt_t;

static void cnt_take(ax_engine_t *eng, cl_cnt_t *c)
{
    ax_worker_stats_t ws;
    ax_engine_stats(eng, &ws);
    ax_cluster_stats_t cs;
    ax_cluster_get_stats(eng, &cs);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    c->handled = ws.msgs_local + ws.msgs_remote + ws.msgs_external;
    c->parks = ws.parks;
    c->am_sent = cs.batches_sent;
    c->msgs_sent = cs.msgs_sent;
    c->am_recv = cs.batches_received;
    c->msgs_recv = cs.msgs_received;
    c->prog = cs.progress_calls;
    c->prog_busy = cs.progress_busy;
    c->arms = cs.arms;
    c->fd_wakes = cs.fd_wakes;
    c->csw = (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
    c->parked_ns = ws.parked_ns;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Node 0: every repeat of every workload, one line each into out. */
static int drive(ax_engine_t *eng, FILE *out)
{
    uint32_t mesh_rep = 0, big_rep = 0;
    if (J->run[W_BIG] || J->run[W_MESH]) {
        /* Warm-up, not reported: one round of big makes every endpoint
         * (UCX wires them up on first use), as Erlang's connect does. */
        uint64_t buf[AX_INLINE_MAX / 8] = { 0 };
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)J->timeout_s;
        if (ax_engine_send(eng, g_ref[0], CT_BIG_GO, buf, sizeof buf) != 0) {
            fprintf(out, "FAIL warm-up send\n");
            return 1;
        }
        while (sem_timedwait(&g_done, &ts) != 0 && errno == EINTR)
            ;
        if (atomic_load(&g_fail) || !g_t1) {
            fprintf(out, "FAIL warm-up: %s\n", g_fail ? g_why : "did not finish");
            return 1;
        }
        g_t1 = 0;
    }
    for (int w = 0; w < NW_; w++) {
        if (!J->run[w])
            continue;
        for (uint32_t rep = 1; rep <= J->reps; rep++) {
            uint64_t arg = 0, ops = 0;
            uint32_t type = 0;
            switch (w) {
            case W_PP: type = CT_PP_GO, arg = ops = J->pp_n; break;
            case W_OW: type = CT_OW_GO, arg = ops = J->ow_n; break;
            case W_BIG:
                type = CT_BIG_GO, arg = ++big_rep;
                ops = 2 * J->big_pings * J->nodes * J->big_per;
                break;
            default:
                type = CT_MESH_GO, arg = ++mesh_rep;
                ops = J->mesh_n * J->nodes * J->mesh_per;
                break;
            }
            cl_cnt_t k0, k1;
            cnt_take(eng, &k0);
            double c0 = cpu_s();
            uint64_t t0 = bench_now_ns();
            uint64_t buf[AX_INLINE_MAX / 8] = { arg };
            int rc = ax_engine_send(eng, g_ref[0], type, buf, sizeof buf);
            if (rc) {
                fprintf(out, "FAIL ax_engine_send: %s\n", strerror(-rc));
                return 1;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += (time_t)J->timeout_s;
            while (sem_timedwait(&g_done, &ts) != 0 && errno == EINTR)
                ;
            if (atomic_load(&g_fail)) {
                fprintf(out, "FAIL %s\n", g_why);
                return 1;
            }
            if (!g_t1) {
                fprintf(out, "FAIL %s repeat %u did not finish in %u s (cluster.timeout_s)\n",
                        WNAME[w], rep, J->timeout_s);
                return 1;
            }
            double cpu = cpu_s() - c0;
            cnt_take(eng, &k1);
            /* parked: per mille of the repeat's wall time the worker slept
             * in the kernel (a few long parks are 0.000 per message) */
            fprintf(out, "CNT %s %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu\n",
                    WNAME[w],
                    (unsigned long long)(k1.handled - k0.handled),
                    (unsigned long long)(k1.am_sent - k0.am_sent),
                    (unsigned long long)(k1.msgs_sent - k0.msgs_sent),
                    (unsigned long long)(k1.am_recv - k0.am_recv),
                    (unsigned long long)(k1.msgs_recv - k0.msgs_recv),
                    (unsigned long long)(k1.parks - k0.parks),
                    (unsigned long long)(k1.prog - k0.prog),
                    (unsigned long long)(k1.prog_busy - k0.prog_busy),
                    (unsigned long long)(k1.arms - k0.arms),
                    (unsigned long long)(k1.fd_wakes - k0.fd_wakes),
                    (unsigned long long)(k1.csw - k0.csw),
                    (unsigned long long)((k1.parked_ns - k0.parked_ns) * 1000 /
                                         (g_t1 > t0 ? g_t1 - t0 : 1)));
            /* the driver's own t0 for streams; ours (the kick) is a few us
             * earlier and includes the start broadcast, as Erlang's does */
            double el = (double)(g_t1 - t0) / 1e9;
            if (w == W_PP) {
                qsort(g_samples, J->pp_n, sizeof *g_samples, cmp_u64);
                double sum = 0;
                for (uint64_t i = 0; i < J->pp_n; i++)
                    sum += (double)g_samples[i];
                fprintf(out, "RUN %s %u %.4f %.4f %.1f\n", WNAME[w], rep,
                        (double)g_samples[J->pp_n / 2] / 1e3, sum / (double)J->pp_n / 1e3,
                        100.0 * cpu / el);
            } else {
                fprintf(out, "RUN %s %u %.1f 0 %.1f\n", WNAME[w], rep, (double)ops / el,
                        100.0 * cpu / el);
            }
            fflush(out);
            g_t1 = 0;
        }
    }
    return 0;
}

static int node_run(uint32_t node, const char *seed, FILE *out)
{
    g_node = node;
    g_per = J->big_per > J->mesh_per ? J->big_per : J->mesh_per;
    if (g_per == 0)
        g_per = 1;
    sem_init(&g_done, 0, 0);
    if (J->tls)
        setenv("UCX_TLS", J->tls, 1);
    ax_config_t c = *J->base;
    c.workers = 1;
    c.prefault = false;
    c.watchdog_ms = AX_WATCHDOG_OFF;
    c.max_actors = 4096;
    c.spin_us = J->spin_us;
    if (J->pin) {
        snprintf(c.cpus, sizeof c.cpus, "%d", J->cpus[node]);
        c.oversubscribe = false;
    } else {
        /* Unpinned for real: without workers.unpinned each node's one
         * worker was bound to the first allowed CPU, so all the nodes ran
         * on that one CPU (docs/benchmarks.md, "Cluster"). */
        c.cpus[0] = 0;
        c.oversubscribe = true;
        c.unpinned = true;
    }
    c.cluster_node_id = node;
    snprintf(c.cluster_listen, sizeof c.cluster_listen, "127.0.0.1:0");
    snprintf(c.cluster_peers, sizeof c.cluster_peers, "%s", seed);
    snprintf(c.cluster_cookie, sizeof c.cluster_cookie, "%s", J->cookie);
    c.cluster_progress = J->progress;
    c.cluster_heartbeat_ms = 100;
    c.cluster_timeout_ms = 5000;
    if (node == 0 && J->run[W_PP] && !(g_samples = calloc(J->pp_n, sizeof *g_samples))) {
        fprintf(out, "FAIL out of memory for %llu samples\n", (unsigned long long)J->pp_n);
        return 1;
    }
    if (J->run[W_MESH]) {
        g_mexp = calloc((size_t)J->reps * J->mesh_per, sizeof *g_mexp);
        if (!g_mexp)
            return 1;
        uint32_t nm = J->nodes * J->mesh_per;
        for (uint32_t rep = 1; rep <= J->reps; rep++)
            for (uint32_t s = 0; s < nm; s++) {
                uint64_t rng = mesh_seed(rep, s);
                for (uint64_t i = 0; i < J->mesh_n; i++) {
                    uint32_t t = (uint32_t)(bench_rand(&rng) % nm);
                    if (t / J->mesh_per == node)
                        g_mexp[(size_t)(rep - 1) * J->mesh_per + t % J->mesh_per]++;
                }
            }
    }
    ax_engine_t *eng;
    if (ax_engine_create(&c, &eng)) {
        if (out)
            fprintf(out, "FAIL node %u: ax_engine_create: %s\n", node, ax_engine_last_error());
        fprintf(stderr, "axon-bench: cluster node %u: ax_engine_create: %s\n", node,
                ax_engine_last_error());
        return 1;
    }
    int rc = 1;
    ax_ref_t mine[CL_MAX_ACTORS];
    for (uint32_t k = 0; k < g_per; k++) {
        uint32_t id[2] = { node, k };
        ax_spawn_opts_t o = { .size = sizeof o, .init = cla_init, .arg = id, .arg_len = sizeof id };
        if (ax_engine_spawn(eng, on_cl, sizeof(cla_t), &o, &mine[k])) {
            fprintf(stderr, "axon-bench: cluster node %u: spawn failed\n", node);
            goto out;
        }
    }
    if (ax_engine_start(eng))
        goto out;
    if (node == 0) {
        char addr[64];
        if (ax_cluster_listen_address(eng, addr, sizeof addr) != 0)
            goto out;
        fprintf(out, "ADDR %s\n", addr);
        fflush(out);
    }
    char name[32];
    for (uint32_t k = 0; k < g_per; k++) {
        snprintf(name, sizeof name, "c%u.%u", node, k);
        if (ax_cluster_register(eng, name, mine[k]) != 0)
            goto out;
    }
    double deadline = now_s() + 30;
    for (uint32_t n = 0; n < J->nodes; n++)
        for (uint32_t k = 0; k < g_per; k++) {
            snprintf(name, sizeof name, "c%u.%u", n, k);
            if ((g_ref[n * g_per + k] = wait_name(eng, name, deadline)) == AX_REF_NONE) {
                if (out)
                    fprintf(out, "FAIL node %u: %s not registered after 30 s (the nodes did "
                                 "not join)\n", node, name);
                goto out;
            }
        }
    atomic_store_explicit(&g_table, 1, memory_order_release); /* actors acquire */
    snprintf(name, sizeof name, "r%u", node);
    ax_cluster_register(eng, name, mine[0]);
    if (node == 0) {
        for (uint32_t n = 1; n < J->nodes; n++) {
            snprintf(name, sizeof name, "r%u", n);
            if (wait_name(eng, name, deadline) == AX_REF_NONE) {
                fprintf(out, "FAIL node %u never got ready\n", n);
                goto out;
            }
        }
        rc = drive(eng, out);
        ax_cluster_register(eng, "end", mine[0]);
        /* the others leave once they see "end"; wait for that (3 s at most) */
        double t = now_s() + 3;
        for (uint32_t n = 1; n < J->nodes && now_s() < t; n++)
            while (ax_cluster_node_up(eng, n) && now_s() < t)
                usleep(2000);
        fprintf(out, "END\n");
        fflush(out);
    } else {
        double d = now_s() + (double)J->timeout_s * 4 * J->reps + 60;
        rc = wait_name(eng, "end", d) == AX_REF_NONE;
        if (rc)
            fprintf(stderr, "axon-bench: cluster node %u: node 0 never ended\n", node);
    }
out:
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
    return rc;
}

/* ---- harness side -------------------------------------------------------------------------- */

typedef struct job_out {
    int nruns[NW_];
    double v[NW_][BENCH_MAX_REPEAT], alt[NW_][BENCH_MAX_REPEAT], cpu[NW_][BENCH_MAX_REPEAT];
    int ncnt[NW_];
    uint64_t cnt[NW_][BENCH_MAX_REPEAT][12]; /* node 0's CNT lines (cl_cnt_t order) */
    bool failed;
    char why[400];
} job_out_t;

static volatile sig_atomic_t *g_intr;

static pid_t fork_node(uint32_t node, const char *seed, int wfd, int rfd)
{
    fflush(NULL);
    pid_t p = fork();
    if (p != 0)
        return p;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (rfd >= 0)
        close(rfd);
    FILE *out = wfd >= 0 ? fdopen(wfd, "w") : NULL;
    int rc = node_run(node, seed, out);
    if (out)
        fclose(out);
    fflush(NULL);
    _exit(rc);
}

static void reap(pid_t *pids, uint32_t n, double grace_s, job_out_t *o)
{
    double end = now_s() + grace_s;
    for (uint32_t i = 0; i < n; i++) {
        if (pids[i] <= 0)
            continue;
        int st;
        pid_t r;
        while ((r = waitpid(pids[i], &st, WNOHANG)) == 0 && now_s() < end)
            usleep(10000);
        if (r == 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], &st, 0);
            if (!o->failed) {
                o->failed = true;
                snprintf(o->why, sizeof o->why, "cluster node %u did not exit; killed", i);
            }
        } else if (r > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !o->failed) {
            o->failed = true;
            snprintf(o->why, sizeof o->why, "cluster node %u failed (status %#x; its stderr "
                     "says why)", i, st);
        }
        pids[i] = 0;
    }
}

static void run_job(const cl_job_t *j, job_out_t *o)
{
    memset(o, 0, sizeof *o);
    J = j;
    int pfd[2];
    if (pipe(pfd) < 0) {
        o->failed = true;
        snprintf(o->why, sizeof o->why, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pids[CL_MAX_NODES] = { 0 };
    pids[0] = fork_node(0, "", pfd[1], pfd[0]);
    close(pfd[1]);
    if (pids[0] < 0) {
        o->failed = true;
        snprintf(o->why, sizeof o->why, "fork: %s", strerror(errno));
        close(pfd[0]);
        return;
    }
    FILE *in = fdopen(pfd[0], "r");
    char line[600];
    double deadline = now_s() + 60 + (double)j->timeout_s * j->reps * 4;
    bool ended = false;
    while (!ended) {
        struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
        int pr = poll(&pf, 1, 200);
        if (g_intr && *g_intr) {
            o->failed = true;
            snprintf(o->why, sizeof o->why, "interrupted");
            break;
        }
        if (now_s() > deadline) {
            o->failed = true;
            snprintf(o->why, sizeof o->why, "the cluster run did not finish in time");
            break;
        }
        if (pr <= 0)
            continue;
        if (!fgets(line, sizeof line, in))
            break; /* node 0 exited */
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "ADDR ", 5)) {
            for (uint32_t n = 1; n < j->nodes; n++)
                pids[n] = fork_node(n, line + 5, -1, pfd[0]);
        } else if (!strncmp(line, "RUN ", 4)) {
            char wl[32];
            unsigned rep;
            double v, alt, cpu;
            if (sscanf(line + 4, "%31s %u %lf %lf %lf", wl, &rep, &v, &alt, &cpu) == 5)
                for (int w = 0; w < NW_; w++)
                    if (!strcmp(wl, WNAME[w]) && o->nruns[w] < BENCH_MAX_REPEAT) {
                        o->v[w][o->nruns[w]] = v;
                        o->alt[w][o->nruns[w]] = alt;
                        o->cpu[w][o->nruns[w]++] = cpu;
                    }
        } else if (!strncmp(line, "CNT ", 4)) {
            char wl[32];
            unsigned long long k[12];
            if (sscanf(line + 4, "%31s %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", wl,
                       &k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &k[6], &k[7], &k[8], &k[9],
                       &k[10], &k[11]) == 13)
                for (int w = 0; w < NW_; w++)
                    if (!strcmp(wl, WNAME[w]) && o->ncnt[w] < BENCH_MAX_REPEAT) {
                        for (int i = 0; i < 12; i++)
                            o->cnt[w][o->ncnt[w]][i] = k[i];
                        o->ncnt[w]++;
                    }
        } else if (!strncmp(line, "FAIL ", 5)) {
            o->failed = true;
            snprintf(o->why, sizeof o->why, "%.390s", line + 5);
        } else if (!strcmp(line, "END")) {
            ended = true;
        }
    }
    if (!ended && !o->failed) {
        o->failed = true;
        snprintf(o->why, sizeof o->why, "cluster node 0 ended without a result");
    }
    if (!ended) /* timed out or interrupted: stop everyone now */
        for (uint32_t n = 0; n < j->nodes; n++)
            if (pids[n] > 0)
                kill(pids[n], SIGKILL);
    fclose(in);
    reap(pids, j->nodes, o->failed ? 2 : 15, o);
}

/* ---- the limit and the peer: the scripts ------------------------------------------------------- */

static bool have_cmd(const char *c)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", c);
    return system(cmd) == 0;
}

static const char *scripts_dir(void)
{
    const char *e = getenv("AXON_PERF_SCRIPTS");
    return e && *e ? e : AXON_PERF_SCRIPTS;
}

/* Value of key= in a RESULT line, or -1. */
static double kv(const char *line, const char *key)
{
    char k[48];
    snprintf(k, sizeof k, " %s=", key);
    const char *p = strstr(line, k);
    return p ? strtod(p + strlen(k), NULL) : -1;
}

/* Run a script; fill r with the per-repeat values of `key` from its
 * RESULT lines (rep=1..) matching `match`.  r->why on failure. */
static void run_script(const char *cmdline, const char *match, const char *key, double scale,
                       bench_cl_res_t *r)
{
    FILE *p = popen(cmdline, "r");
    if (!p) {
        r->failed = true;
        snprintf(r->why, sizeof r->why, "cannot run %.200s: %s", cmdline, strerror(errno));
        return;
    }
    char line[1024];
    while (fgets(line, sizeof line, p)) {
        if (strncmp(line, "RESULT ", 7) || !strstr(line, match) || strstr(line, " rep=median"))
            continue;
        double v = kv(line, key);
        if (v > 0 && r->nruns < BENCH_MAX_REPEAT)
            r->runs[r->nruns++] = v * scale;
    }
    int st = pclose(p);
    if (st != 0 || r->nruns == 0) {
        r->failed = true;
        snprintf(r->why, sizeof r->why, "%.250s exited with status %d and %d result(s) (its "
                 "stderr above says why)", cmdline, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                 r->nruns);
    }
}

static void ucx_limits(const bench_cl_opts_t *op, const char *tls, uint64_t n, const char *cpus,
                       bench_cl_res_t *lat, bench_cl_res_t *bw)
{
    bench_cl_res_t *rs[2] = { lat, bw };
    const char *test[2] = { "am_lat", "am_bw" };
    for (int i = 0; i < 2; i++) {
        bench_cl_res_t *r = rs[i];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "cluster/ucx/%s/%s", test[i], tls);
        r->unit = i == 0 ? "us/rt" : "msgs/s";
        r->lower_better = i == 0;
        r->nodes = 2;
        uint64_t it = i == 0 ? n : op->ow_n;
        snprintf(r->params, sizeof r->params, "tls=%s size=%u iters=%llu%s cpus=%s", tls,
                 WIRE_BYTES, (unsigned long long)it, strcmp(tls, "tcp") ? "" : "/10", cpus);
        if (!have_cmd("ucx_perftest")) {
            r->skipped = true;
            snprintf(r->why, sizeof r->why, "ucx_perftest not found: apt-get install ucx-utils");
            continue;
        }
        op->progress(r->name, 1, 1);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "bash '%s/ucx-limits.sh' --tls %s --tests %s --size %u "
                 "--iters %llu --reps %u --cpus %s --timeout %u", scripts_dir(), tls, test[i],
                 WIRE_BYTES, (unsigned long long)it, op->reps, cpus, op->timeout_s);
        char match[64];
        snprintf(match, sizeof match, " test=%s ", test[i]);
        run_script(cmd, match, i == 0 ? "rtt_us" : "msgs_per_s", 1, r);
    }
}

/* The Erlang peer of workload wl on `nodes` nodes (perf/scripts/erlang-dist.sh
 * runs perf/erlang/dist_bench.erl): pingpong and oneway on two nodes, big and
 * mesh with as many actors and messages per actor as axon's runs. */
static void erlang_peer(const bench_cl_opts_t *op, const char *wl, uint32_t nodes,
                        bench_cl_res_t *r)
{
    memset(r, 0, sizeof *r);
    bool big = !strcmp(wl, "big"), mesh = !strcmp(wl, "mesh");
    if (big || mesh)
        snprintf(r->name, sizeof r->name, "cluster/erlang/%s/%un", wl, nodes);
    else
        snprintf(r->name, sizeof r->name, "cluster/erlang/%s", wl);
    r->unit = !strcmp(wl, "pingpong") ? "us/rt" : "msgs/s";
    r->lower_better = !strcmp(wl, "pingpong");
    r->nodes = nodes;
    /* big and mesh: the script runs n / 100 per actor */
    uint64_t n = !strcmp(wl, "pingpong") ? op->erl_pp_n
                 : !strcmp(wl, "oneway") ? op->erl_ow_n
                 : big                   ? op->big_pings * 100
                                         : op->mesh_n * 100;
    /* big: big_actors over all nodes; mesh: mesh_actors on each node, as axon's */
    uint32_t actors = mesh ? nodes * op->mesh_actors : op->big_actors;
    snprintf(r->params, sizeof r->params, "n=%llu size=%u nodes=%u",
             (unsigned long long)(big || mesh ? n / 100 : n), AX_INLINE_MAX, nodes);
    if (big || mesh)
        snprintf(r->params + strlen(r->params), sizeof r->params - strlen(r->params),
                 " actors=%u", actors);
    if (!have_cmd("erl")) {
        r->skipped = true;
        snprintf(r->why, sizeof r->why, "erl not found: apt-get install erlang-base");
        return;
    }
    op->progress(r->name, 1, 1);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s/erlang-dist.sh' --workloads %s --n %llu --size %u "
             "--actors %u --nodes %u --reps %u --timeout %u", scripts_dir(), wl,
             (unsigned long long)n, AX_INLINE_MAX, actors, nodes, op->reps,
             op->timeout_s * 2);
    run_script(cmd, " peer=erlang_dist ", r->lower_better ? "rtt_us" : "msgs_per_s", 1, r);
}

/* ---- the cluster mode ------------------------------------------------------------------------------- */

static int allowed_cpus(int *cpus, int max)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 0;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    return n;
}

static void job_base(const bench_cl_opts_t *op, cl_job_t *j, uint32_t nodes)
{
    memset(j, 0, sizeof *j);
    j->nodes = nodes;
    j->base = op->cfg;
    j->reps = op->reps;
    j->timeout_s = op->timeout_s;
    j->window = op->window;
    j->pp_n = op->pp_n;
    j->ow_n = op->ow_n;
    j->big_pings = op->big_pings;
    j->mesh_n = op->mesh_n;
    j->progress = op->cfg->cluster_progress;
    j->spin_us = op->cfg->spin_us;
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (unsigned char)(bench_now_ns() >> (i % 8 * 8));
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(j->cookie + 2 * i, 3, "%02x", rnd[i]);
    int cpus[64];
    int nc = allowed_cpus(cpus, 64);
    j->pin = nc >= (int)nodes;
    for (uint32_t i = 0; i < nodes && j->pin; i++)
        j->cpus[i] = cpus[i];
    /* More nodes than CPUs: an idle worker's spin (scheduler.spin_us)
     * takes the CPU a node with work is waiting for.  Measured quiet, 4
     * nodes on 2 vCPUs: big/4n 290 k msgs/s spinning, 964 k never spinning
     * (docs/benchmarks.md, "Cluster").  So unpinned nodes park at once. */
    if (!j->pin)
        j->spin_us = -1;
}

static const char *progress_name(uint32_t p)
{
    return p == AX_CLUSTER_PROGRESS_SPIN ? "spin" : p == AX_CLUSTER_PROGRESS_WAKEUP ? "wakeup"
                                                                                   : "auto-wakeup";
}

static void emit_axon(const bench_cl_opts_t *op, const cl_job_t *j, const job_out_t *o, int w,
                      const char *name, const char *limit, const char *peer)
{
    bench_cl_res_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "%s", name);
    r.unit = w == W_PP ? "us/rt" : "msgs/s";
    r.lower_better = w == W_PP;
    r.nodes = j->nodes;
    snprintf(r.limit, sizeof r.limit, "%s", limit ? limit : "");
    snprintf(r.peer, sizeof r.peer, "%s", peer ? peer : "");
    char cpus[32] = "unpinned";
    if (j->pin) {
        int off = 0;
        for (uint32_t i = 0; i < j->nodes && off < (int)sizeof cpus - 4; i++)
            off += snprintf(cpus + off, sizeof cpus - (size_t)off, "%s%d", i ? "," : "", j->cpus[i]);
    }
    uint64_t n = w == W_PP ? j->pp_n : w == W_OW ? j->ow_n : w == W_BIG ? j->big_pings : j->mesh_n;
    snprintf(r.params, sizeof r.params, "nodes=%u tls=%s progress=%s n=%llu", j->nodes,
             j->tls ? j->tls : "ucx-default", progress_name(j->progress), (unsigned long long)n);
    size_t l = strlen(r.params);
    if (w == W_OW)
        snprintf(r.params + l, sizeof r.params - l, " window=%llu", (unsigned long long)j->window);
    else if (w == W_BIG)
        snprintf(r.params + l, sizeof r.params - l, " actors=%u", j->nodes * j->big_per);
    else if (w == W_MESH)
        snprintf(r.params + l, sizeof r.params - l, " actors=%u", j->nodes * j->mesh_per);
    l = strlen(r.params);
    snprintf(r.params + l, sizeof r.params - l, " cpus=%s", cpus);
    r.nruns = o->nruns[w];
    for (int i = 0; i < r.nruns; i++) {
        r.runs[i] = o->v[w][i];
        r.alt[i] = o->alt[w][i];
        r.cpu_pct[i] = o->cpu[w][i];
    }
    r.has_alt = w == W_PP;
    if (o->ncnt[w] > 0) {
        /* Per repeat, then the median: msgs/AM out and in, and per message
         * handled: parks, event-fd wake-ups, UCP progress calls (busy ones),
         * context switches (every thread of node 0); and the share of the
         * repeat node 0's worker spent parked (a few long parks round to
         * 0.000 parks per message). */
        double q[9][BENCH_MAX_REPEAT];
        int nc = o->ncnt[w];
        for (int i = 0; i < nc; i++) {
            const uint64_t *k = o->cnt[w][i];
            double h = k[0] ? (double)k[0] : 1;
            q[0][i] = k[1] ? (double)k[2] / (double)k[1] : 0;
            q[1][i] = k[3] ? (double)k[4] / (double)k[3] : 0;
            q[2][i] = (double)k[5] / h;
            q[3][i] = (double)k[9] / h;
            q[4][i] = (double)k[6] / h;
            q[5][i] = (double)k[7] / h;
            q[6][i] = (double)k[10] / h;
            q[7][i] = (double)k[0];
            q[8][i] = (double)k[11] / 10;
        }
        double md[9];
        for (int x = 0; x < 9; x++) {
            double t[BENCH_MAX_REPEAT];
            memcpy(t, q[x], sizeof(double) * (size_t)nc);
            for (int a = 1; a < nc; a++) /* insertion sort: a handful of repeats */
                for (int b = a; b > 0 && t[b - 1] > t[b]; b--) {
                    double y = t[b];
                    t[b] = t[b - 1];
                    t[b - 1] = y;
                }
            md[x] = nc % 2 ? t[nc / 2] : (t[nc / 2 - 1] + t[nc / 2]) / 2;
        }
        snprintf(r.counts, sizeof r.counts,
                 "msgs/AM out %.2f in %.2f; parks %.3f; fd wakes %.3f; ucp progress %.2f (busy "
                 "%.2f); csw %.3f; parked %.1f%% of the time; (%.0f msgs)",
                 md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[8], md[7]);
    }
    if (o->failed && r.nruns < (int)j->reps) {
        r.failed = true;
        snprintf(r.why, sizeof r.why, "%s", o->why);
    }
    op->emit(&r);
}

static void emit_ref(const bench_cl_opts_t *op, const bench_cl_res_t *r) { op->emit(r); }

int bench_cluster_run(const bench_cl_opts_t *op)
{
    g_intr = op->interrupted;
    int cpus[64];
    int nc = allowed_cpus(cpus, 64);
    char pcpus[32] = "none";
    if (nc >= 2)
        snprintf(pcpus, sizeof pcpus, "%d,%d", cpus[0], cpus[1]);
    struct stat sb;
    bool scripts = stat(scripts_dir(), &sb) == 0;
    bench_cl_res_t ref[2];

    /* The peer first: Erlang distribution on the same work. */
    if (op->erlang && op->pairs) {
        const char *ew[2] = { "pingpong", "oneway" };
        for (int i = 0; i < 2 && !*op->interrupted; i++) {
            erlang_peer(op, ew[i], 2, &ref[0]);
            if (!scripts && !ref[0].skipped) {
                ref[0].failed = false, ref[0].skipped = true, ref[0].nruns = 0;
                snprintf(ref[0].why, sizeof ref[0].why, "no perf scripts at %s: set "
                         "AXON_PERF_SCRIPTS to the source tree's perf/scripts", scripts_dir());
            }
            emit_ref(op, &ref[0]);
        }
    }
    /* Two nodes, one transport at a time: the limit, then axon. */
    /* shm twice: cluster.progress as configured (auto: wakeup), then spin
     * (both spin while busy; they differ in how an idle worker waits: on
     * UCP's event fd, or parked with a timer poll) */
    const char *tls[3] = { "shm", "shm", "tcp" };
    for (int t = 0; t < (op->tcp ? 3 : 2) && op->pairs && !*op->interrupted; t++) {
        cl_job_t j;
        job_base(op, &j, 2);
        j.tls = tls[t];
        if (t == 1)
            j.progress = AX_CLUSTER_PROGRESS_SPIN;
        j.run[W_PP] = j.run[W_OW] = true;
        if (t == 2) { /* TCP: a tenth of the messages, as ucx-limits.sh does */
            j.pp_n = j.pp_n / 10 > 1000 ? j.pp_n / 10 : (j.pp_n < 1000 ? j.pp_n : 1000);
            j.ow_n = j.ow_n / 10 > 1000 ? j.ow_n / 10 : (j.ow_n < 1000 ? j.ow_n : 1000);
        }
        char lat[64] = "", bw[64] = "";
        if (t == 1 && op->ucx) { /* the limits just measured for shm */
            snprintf(lat, sizeof lat, "cluster/ucx/am_lat/shm");
            snprintf(bw, sizeof bw, "cluster/ucx/am_bw/shm");
        } else if (op->ucx) {
            ucx_limits(op, tls[t], op->pp_n, j.pin ? pcpus : "none", &ref[0], &ref[1]);
            for (int i = 0; i < 2; i++) {
                if (!scripts && !ref[i].skipped) {
                    ref[i].failed = false, ref[i].skipped = true, ref[i].nruns = 0;
                    snprintf(ref[i].why, sizeof ref[i].why, "no perf scripts at %s: set "
                             "AXON_PERF_SCRIPTS to the source tree's perf/scripts", scripts_dir());
                }
                emit_ref(op, &ref[i]);
            }
            snprintf(lat, sizeof lat, "%s", ref[0].name);
            snprintf(bw, sizeof bw, "%s", ref[1].name);
        }
        char what[64];
        const char *sfx = t == 1 ? "shm-spin" : tls[t];
        snprintf(what, sizeof what, "cluster 2 nodes %s", sfx);
        op->progress(what, 1, 1);
        job_out_t o;
        run_job(&j, &o);
        char nm[64];
        snprintf(nm, sizeof nm, "cluster/pingpong/%s", sfx);
        emit_axon(op, &j, &o, W_PP, nm, lat, op->erlang ? "cluster/erlang/pingpong" : NULL);
        snprintf(nm, sizeof nm, "cluster/oneway/%s", sfx);
        emit_axon(op, &j, &o, W_OW, nm, bw, op->erlang ? "cluster/erlang/oneway" : NULL);
    }
    /* The other end of the trade-off: cluster.progress = wakeup and no spin
     * (scheduler.spin_us < 0): the worker sleeps on UCP's event fd between
     * messages; UCX's own transport choice (shared memory here). */
    if (op->wakeup && op->pairs && !*op->interrupted) {
        cl_job_t j;
        job_base(op, &j, 2);
        j.progress = AX_CLUSTER_PROGRESS_WAKEUP;
        j.spin_us = -1;
        j.pp_n = j.pp_n / 10 > 1000 ? j.pp_n / 10 : (j.pp_n < 1000 ? j.pp_n : 1000);
        j.run[W_PP] = true;
        op->progress("cluster 2 nodes nospin", 1, 1);
        job_out_t o;
        run_job(&j, &o);
        emit_axon(op, &j, &o, W_PP, "cluster/pingpong/nospin", op->ucx ? "cluster/ucx/am_lat/shm" : NULL,
                  op->erlang ? "cluster/erlang/pingpong" : NULL);
    }
    /* Savina big and the random mesh on 2 and nodes_max nodes. */
    uint32_t ns[2] = { 2, op->nodes_max };
    for (int i = op->multi_2n || op->nodes_max == 2 ? 0 : 1;
         i < (op->nodes_max > 2 ? 2 : 1) && op->multi && !*op->interrupted; i++) {
        char peer[2][64] = { "", "" };
        const char *pw[2] = { "big", "mesh" };
        for (int e = 0; e < 2 && op->erlang && !*op->interrupted; e++) {
            erlang_peer(op, pw[e], ns[i], &ref[e]);
            if (!scripts && !ref[e].skipped) {
                ref[e].failed = false, ref[e].skipped = true, ref[e].nruns = 0;
                snprintf(ref[e].why, sizeof ref[e].why, "no perf scripts at %s", scripts_dir());
            }
            emit_ref(op, &ref[e]);
            snprintf(peer[e], sizeof peer[e], "%.63s", ref[e].name);
        }
        cl_job_t j;
        job_base(op, &j, ns[i]);
        j.run[W_BIG] = j.run[W_MESH] = true;
        j.big_per = op->big_actors / ns[i] ? op->big_actors / ns[i] : 1;
        j.mesh_per = op->mesh_actors;
        if ((uint64_t)ns[i] * (j.big_per > j.mesh_per ? j.big_per : j.mesh_per) > CL_MAX_ACTORS) {
            bench_cl_res_t r;
            memset(&r, 0, sizeof r);
            snprintf(r.name, sizeof r.name, "cluster/big/%un", ns[i]);
            r.unit = "msgs/s";
            r.failed = true;
            snprintf(r.why, sizeof r.why, "at most %u actors over all nodes", CL_MAX_ACTORS);
            op->emit(&r);
            continue;
        }
        char what[64];
        snprintf(what, sizeof what, "cluster %u nodes big+mesh", ns[i]);
        op->progress(what, 1, 1);
        job_out_t o;
        run_job(&j, &o);
        char nm[64];
        snprintf(nm, sizeof nm, "cluster/big/%un", ns[i]);
        emit_axon(op, &j, &o, W_BIG, nm, NULL, peer[0][0] ? peer[0] : NULL);
        snprintf(nm, sizeof nm, "cluster/mesh/%un", ns[i]);
        emit_axon(op, &j, &o, W_MESH, nm, NULL, peer[1][0] ? peer[1] : NULL);
    }
    return 0;
}
