/* tests/cluster/cluster_node.c - one cluster node for the multi-node tests,
 * and a launcher that forks several on loopback.
 *
 *   cluster_node --fork N [options]   fork N nodes: node 0 listens on
 *                                     127.0.0.1:0 and is the others' seed
 *   cluster_node --mpi [options]      one node per MPI rank (mpirun -n N)
 *
 * Scenario "mesh" (default): every node runs A actors per worker, registers
 * each under a name, finds every other node's through the registry, then
 * every actor sends K messages to every actor of every node (interleaved in
 * a seeded random order) and, from each node's actor 0 to every other
 * node's actor 0, blobs of 1 B to 4 MiB after them.  Each receiver checks
 * per-pair order and exactly-once (message i of pair (s, t) is the i-th to
 * arrive, none missing, none twice) and every blob byte.  Also checked:
 * ax_cluster_lookup's answer from a behaviour matches the registry.
 *
 * Scenario "kill": node 1 is killed with SIGKILL in the middle of traffic
 * (by the launcher); the survivors' actors monitor node 1's actors and
 * must each receive DOWN with AX_REASON_UNREACHABLE within the configured
 * time, keep running, and deliver everything between survivors.
 *
 * Scenario "rejoin" (2 nodes): node 1 keeps its incarnation tag in a
 * cluster.state_file.  Node 0 monitors node 1's actor "v1" and pings it;
 * the launcher kills node 1 (SIGKILL) and starts it again with the same
 * node id and state file.  Node 0 must see: DOWN (unreachable) for the old
 * actor; node 1 back under another incarnation tag (no refused_incarnation);
 * a send to the old reference a dead letter counted in dead_stale (and seen
 * by the dead-letter hook); the new reference answering.
 *
 * Scenario "leave" (2 nodes): "rejoin", but node 1's first start stops
 * cleanly (ax_engine_stop, destroy) instead of being killed, with a 30 s
 * heartbeat timeout.  Node 0 must get DOWN with AX_REASON_NODE_STOPPED
 * within 5 s of the stop (without the LEAVE frame only the UCX endpoint
 * error or the 30 s timeout could tell, with AX_REASON_UNREACHABLE), count
 * a leave and no node down, and take node 1 back under a new tag.
 *
 * Options: --workers W (2) --actors A (4) --msgs K (200) --seconds S (60)
 *          --scenario mesh|kill|stop|refuse|rejoin|leave|joinkill  --rounds R --kill-ms M  --cookie C --wire-version V (refuse)
 *          --progress auto|wakeup|spin (cluster.progress; spin keeps UCX shm)
 *          --unpinned (workers.unpinned: the mesh also checks that idle workers
 *          yielded before parking, cluster.yield_us)
 * Exit 0 on success; the launcher exits 0 when every node did.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "cluster_test.h"
#include "axon/cluster.h"
#include "axon/failure.h"
#include "axon/topology.h"
#ifdef AXON_HAVE_MPI
#include "axon/cluster_mpi.h"
#endif

enum { T_START = 1, T_SEQ, T_BLOB, T_LOOKUP, T_DOWN_SEEN, T_SPAWNED, T_PING, T_PONG, T_PP,
       T_FLOOD, T_FLOOD_GO, T_WATCH, T_AGAIN, T_WATCH2 };
static const size_t BLOB_SIZES[] = { 1, 7, 100, 4095, 4096, 4097, 8192, 65536, 1u << 20, 4u << 20 };
#define NBLOB (sizeof BLOB_SIZES / sizeof BLOB_SIZES[0])
#define MAXA 1024

static uint32_t g_node, g_nodes = 2, g_workers = 2, g_actors = 4, g_msgs = 200, g_seconds = 60;
static const char *g_scenario = "mesh";
static bool g_leave; /* scenario "leave": node 1's first start stops cleanly */
static uint32_t g_progress = AX_CLUSTER_PROGRESS_AUTO;
static ax_ref_t g_all[MAXA]; /* every actor of every node, by global index: published before START */
static uint32_t g_total;
static ax_engine_t *g_eng;
static _Atomic uint64_t g_errors, g_received, g_downs, g_blobs_ok, g_stale_downs;
static _Atomic uint32_t g_lookups_ok;
static _Atomic uint64_t g_from_victim;
static _Atomic uint32_t g_spawn_ok, g_spawn_enoent; /* remote spawn by behaviour name */ /* kill/stop: messages from node 1 (not counted) */
static double g_last_down;
/* Shared with the launcher (MAP_SHARED before fork): when it killed node 1. */
static _Atomic double *g_kill_ts;
static bool g_garbage; /* the launcher sends garbage to node 0's listener first */
static bool g_unpinned; /* workers.unpinned: the workers yield before parking (cluster.yield_us) */
static const char *g_state_file = ""; /* rejoin: node 1's cluster.state_file */
static int g_ready_fd = -1; /* node 1 (kill/stop): tells the launcher traffic runs */



static uint32_t gidx(uint32_t node, uint32_t local) { return node * g_workers * g_actors + local; }
static bool victim_scenario(void) { return !strcmp(g_scenario, "kill") || !strcmp(g_scenario, "stop"); }
static bool node_alive(uint32_t node) { return !victim_scenario() || node != 1; }

typedef struct actor {
    uint32_t me;        /* global index */
    uint32_t next[MAXA]; /* next expected seq from each source */
    uint32_t downs;
} actor_t;

static uint8_t pat(uint32_t src, uint32_t seq, size_t i) { return (uint8_t)(src * 31u + seq * 7u + i * 13u); }

static uint32_t expected_from(uint32_t src, uint32_t dst)
{
    uint32_t per = g_workers * g_actors;
    bool blobs = src % per == 0 && dst % per == 0 && src / per != dst / per;
    return g_msgs + (blobs ? (uint32_t)NBLOB : 0);
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* "echo", spawned by name from another node: answers PING with its init arg. */
static void echo_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    if (len == 8)
        memcpy(state, arg, 8);
}
static void on_echo(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    if (m->type == T_PING)
        ax_send(ctx, ax_sender(ctx), T_PONG, state, 8);
}

/* Scenario "pingpong": node 0's first actor and node 1's exchange T_PP
 * g_msgs times (round trip), then node 0's sends g_msgs T_FLOOD one way. */
static _Atomic uint64_t g_pp_done, g_flood_got;
static double g_pp_t0, g_pp_t1, g_flood_t0, g_flood_t1;
static void on_pp(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    uint64_t *n = state;
    if (m->type == T_START) {
        g_pp_t0 = now_s();
        ax_send_u64(ctx, g_all[gidx(1, 0)], T_PP, 0);
    } else if (m->type == T_PP) {
        uint64_t v = m->payload.u64[0];
        if (g_node == 1) {
            ax_send_u64(ctx, ax_sender(ctx), T_PP, v + 1);
        } else if (v + 1 < 2ull * g_msgs) {
            ax_send_u64(ctx, ax_sender(ctx), T_PP, v + 1);
        } else {
            g_pp_t1 = now_s();
            atomic_store(&g_pp_done, 1);
            g_flood_t0 = now_s();
            for (uint64_t i = 0; i < g_msgs; i++)
                while (ax_send_u64(ctx, g_all[gidx(1, 0)], T_FLOOD, i) == -ENOMEM)
                    ;
        }
    } else if (m->type == T_FLOOD) {
        if (m->payload.u64[0] != (*n)++)
            ERR("flood out of order");
        if (*n == g_msgs) {
            g_flood_t1 = now_s();
            atomic_store(&g_flood_got, *n);
            ax_send_u64(ctx, ax_sender(ctx), T_FLOOD_GO, 0);
        }
    } else if (m->type == T_FLOOD_GO) {
        g_flood_t1 = now_s();
        atomic_store(&g_flood_got, g_msgs);
    }
}

static void on_msg(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    actor_t *a = state;
    switch (m->type) {
    case T_START: {
        a->me = (uint32_t)m->payload.u64[0];
        /* The registry from a behaviour: the answer is a message. */
        char name[32];
        uint32_t peer = a->me;
        do /* an actor of the next live node */
            peer = (peer + g_workers * g_actors) % g_total;
        while (!node_alive(peer / (g_workers * g_actors)));
        snprintf(name, sizeof name, "a%u", peer);
        if (ax_cluster_lookup(ctx, name, T_LOOKUP) != 0)
            ERR("ax_cluster_lookup failed");
        if (a->me % (g_workers * g_actors) == 0 && !victim_scenario()) {
            /* Remote spawn by name on the next node, and a name it lacks. */
            uint32_t n = (g_node + 1) % g_nodes;
            uint64_t me = a->me;
            if (ax_cluster_spawn(ctx, n, "echo", &me, sizeof me, T_SPAWNED) != 0 ||
                ax_cluster_spawn(ctx, n, "no-such-behaviour", NULL, 0, T_SPAWNED) != 0)
                ERR("ax_cluster_spawn refused");
        }
        uint32_t order[MAXA];
        uint64_t seed = 0x9E3779B97F4A7C15ull ^ a->me;
        for (uint32_t k = 0; k < g_msgs; k++) {
            for (uint32_t t = 0; t < g_total; t++)
                order[t] = t;
            for (uint32_t t = g_total - 1; t > 0; t--) {
                uint32_t j = (uint32_t)(rng(&seed) % (t + 1)), x = order[t];
                order[t] = order[j];
                order[j] = x;
            }
            for (uint32_t i = 0; i < g_total; i++) {
                uint32_t t = order[i];
                if (!node_alive(t / (g_workers * g_actors)))
                    continue;
                uint64_t v[2] = { a->me, k };
                int rc;
                while ((rc = ax_send(ctx, g_all[t], T_SEQ, v, sizeof v)) == -ENOMEM)
                    ;
                if (rc)
                    ERR("send to %u: %d", t, rc);
            }
        }
        uint32_t per = g_workers * g_actors;
        if (a->me % per == 0)
            for (uint32_t n = 0; n < g_nodes; n++) {
                if (n == g_node || !node_alive(n))
                    continue;
                for (uint32_t b = 0; b < NBLOB; b++) {
                    size_t len = BLOB_SIZES[b];
                    unsigned char *p = ax_blob_alloc(ctx, len);
                    if (!p) {
                        ERR("blob alloc %zu", len);
                        continue;
                    }
                    for (size_t i = 0; i < len; i++)
                        p[i] = pat(a->me, g_msgs + b, i);
                    int rc = ax_send_blob(ctx, g_all[gidx(n, 0)], T_BLOB, p, len);
                    if (rc) {
                        ERR("blob send %zu: %d", len, rc);
                        ax_blob_free(ctx, p);
                    }
                }
            }
        return;
    }
    case T_SPAWNED: {
        ax_ref_t r = m->payload.u64[0];
        int64_t rc;
        memcpy(&rc, &m->payload.u64[1], 8);
        const char *bn = (const char *)m->payload.data + 16;
        if (!strcmp(bn, "echo")) {
            if (rc != 0 || ax_ref_node(r) != (g_node + 1) % g_nodes)
                ERR("remote spawn of echo: rc %lld, node %u", (long long)rc, ax_ref_node(r));
            else
                ax_send_u64(ctx, r, T_PING, 0);
        } else if (rc == -ENOENT && r == AX_REF_NONE) {
            atomic_fetch_add(&g_spawn_enoent, 1);
        } else {
            ERR("remote spawn of %s: rc %lld, expected -ENOENT", bn, (long long)rc);
        }
        return;
    }
    case T_PONG: {
        uint64_t v;
        memcpy(&v, m->payload.data, 8);
        if (v != a->me)
            ERR("the echo spawned remotely got init arg %llu, expected %u", (unsigned long long)v, a->me);
        else
            atomic_fetch_add(&g_spawn_ok, 1);
        return;
    }
    case T_LOOKUP: {
        ax_ref_t r;
        memcpy(&r, m->payload.data, 8);
        const char *name = (const char *)m->payload.data + 8;
        uint32_t idx = (uint32_t)atoi(name + 1);
        if (idx >= g_total || r != g_all[idx])
            ERR("lookup %s answered %#llx, expected %#llx", name, (unsigned long long)r,
                (unsigned long long)(idx < g_total ? g_all[idx] : 0));
        else
            atomic_fetch_add(&g_lookups_ok, 1);
        return;
    }
    case T_SEQ: {
        uint64_t v[2];
        memcpy(v, m->payload.data, sizeof v);
        if (v[0] >= g_total) {
            ERR("bad source %llu", (unsigned long long)v[0]);
            return;
        }
        if (v[1] != a->next[v[0]])
            ERR("pair %llu->%u: got seq %llu, expected %u (order or exactly-once broken)",
                (unsigned long long)v[0], a->me, (unsigned long long)v[1], a->next[v[0]]);
        a->next[v[0]] = (uint32_t)v[1] + 1;
        if (node_alive((uint32_t)v[0] / (g_workers * g_actors)))
            atomic_fetch_add(&g_received, 1);
        else
            atomic_fetch_add(&g_from_victim, 1);
        return;
    }
    case T_BLOB: {
        /* The sender is the message's from: find its index. */
        uint32_t src = UINT32_MAX;
        for (uint32_t i = 0; i < g_total; i++)
            if (g_all[i] == ax_sender(ctx))
                src = i;
        /* A faster node's blob can come before this node's program has
         * filled g_all (it starts its own actors only after); the sender's
         * name came first on the same channel (its NAME_SYNC precedes its
         * actors' traffic), so the registry knows it. */
        for (uint32_t i = 0; src == UINT32_MAX && i < g_total; i++) {
            char name[32];
            snprintf(name, sizeof name, "a%u", i);
            if (ax_cluster_whereis(ax_ctx_engine(ctx), name) == ax_sender(ctx))
                src = i;
        }
        if (src == UINT32_MAX) {
            ERR("blob from unknown sender %#llx", (unsigned long long)ax_sender(ctx));
            return;
        }
        uint32_t seq = a->next[src];
        bool from_victim = !node_alive(src / (g_workers * g_actors));
        if (seq < g_msgs || seq >= g_msgs + NBLOB) {
            ERR("blob from %u at seq %u: out of order", src, seq);
            return;
        }
        size_t len = ax_msg_len(m), want = BLOB_SIZES[seq - g_msgs];
        const unsigned char *p = ax_msg_data(m);
        if (len != want)
            ERR("blob %u from %u: %zu bytes, expected %zu", seq, src, len, want);
        else {
            size_t bad = 0;
            for (size_t i = 0; i < len; i++)
                bad += p[i] != pat(src, seq, i);
            if (bad)
                ERR("blob of %zu bytes from %u: %zu bytes corrupt", len, src, bad);
            else if (!from_victim)
                atomic_fetch_add(&g_blobs_ok, 1);
        }
        a->next[src] = seq + 1;
        /* The victim's blobs (sent before it died, when it got that far)
         * are not part of what the survivors must deliver: counted apart,
         * like its T_SEQ messages (counting them as survivors' blobs once
         * read as "18 blobs intact, expected 10"). */
        atomic_fetch_add(from_victim ? &g_from_victim : &g_received, 1);
        return;
    }
    default:
        if (m->type == AX_TYPE_DOWN) {
            ax_down_t d;
            if (ax_down_decode(m, &d) == 0) {
                if (d.reason.kind != AX_REASON_UNREACHABLE || ax_ref_node(d.target) != 1)
                    ERR("DOWN for %#llx with reason kind %u, expected unreachable",
                        (unsigned long long)d.target, d.reason.kind);
                g_last_down = now_s();
                atomic_fetch_add(&g_downs, 1);
            }
        }
        return;
    }
}

/* Monitors of node 1's actors, set up from a behaviour. */
static void on_watcher(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    if (m->type == T_START) {
        for (uint32_t i = 0; i < g_workers * g_actors; i++) {
            uint64_t id;
            if (ax_monitor(ctx, g_all[gidx(1, i)], &id) != 0)
                ERR("ax_monitor of node 1's actor %u failed", i);
        }
    }
    on_msg(ctx, state, m);
}

static int run_node(uint32_t node, const char *listen, const char *peers, const char *cookie)
{
    g_node = node;
    g_total = g_nodes * g_workers * g_actors;
    if (g_total > MAXA) {
        fprintf(stderr, "too many actors\n");
        return 2;
    }
    ax_config_t c;
    ax_config_init(&c);
    c.workers = g_workers;
    c.oversubscribe = true; /* more workers than CPUs allowed (then unpinned) */
    c.unpinned = g_unpinned;
    c.arena_bytes = 64u << 20;
    c.max_actors = 4096;
    c.watchdog_ms = AX_WATCHDOG_OFF; /* the START behaviour sends thousands: not a stall */
    c.cluster_node_id = node;
    snprintf(c.cluster_listen, sizeof c.cluster_listen, "%s", listen);
    snprintf(c.cluster_peers, sizeof c.cluster_peers, "%s", peers);
    snprintf(c.cluster_cookie, sizeof c.cluster_cookie, "%s", cookie);
    c.cluster_heartbeat_ms = 100;
    /* leave: only the LEAVE frame can tell node 0 in time.  The plain mesh
     * tests delivery, not detection, so it gives a loaded CI machine 10 s
     * (a node silent for 2 s under load was once declared unreachable in
     * cluster_mpirun_2, which then failed on its dead letters); kill, stop,
     * rejoin and joinkill keep 2 s, which kill and stop time themselves
     * against. */
    c.cluster_timeout_ms = g_leave ? 30000 : !strcmp(g_scenario, "mesh") ? 10000 : 2000;
    c.cluster_progress = g_progress;
    snprintf(c.cluster_state_file, sizeof c.cluster_state_file, "%s", g_state_file);
    int rc = ax_engine_create(&c, &g_eng);
    if (rc) {
        fprintf(stderr, "node %u: ax_engine_create: %s\n", node, ax_engine_last_error());
        return 1;
    }
    return 0;
}

static int mesh(FILE *addr_out)
{
    ax_engine_t *e = g_eng;
    uint32_t per = g_workers * g_actors;
    ax_ref_t mine[MAXA];
    for (uint32_t i = 0; i < per; i++) {
        ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_WORKER, .worker = i % g_workers };
        bool watcher = victim_scenario() && g_node != 1;
        bool pp = !strcmp(g_scenario, "pingpong");
        if (ax_engine_spawn(e, pp ? on_pp : watcher ? on_watcher : on_msg, sizeof(actor_t), &o,
                            &mine[i])) {
            fprintf(stderr, "spawn failed\n");
            return 1;
        }
        char name[32];
        snprintf(name, sizeof name, "a%u", gidx(g_node, i));
        if (ax_cluster_register(e, name, mine[i]) != 0) {
            fprintf(stderr, "register failed\n");
            return 1;
        }
    }
    if (ax_cluster_behaviour_register(e, "echo", on_echo, 8, echo_init, NULL) != 0) {
        fprintf(stderr, "behaviour register failed\n");
        return 1;
    }
    if (ax_engine_start(e)) {
        fprintf(stderr, "start: %s\n", ax_engine_last_error());
        return 1;
    }
    seed_write(e, addr_out);
    double t0 = now_s();
    if (ax_cluster_wait_nodes(e, g_nodes - 1, g_seconds * 1000u) != 0) {
        fprintf(stderr, "node %u: only %llu of %u other nodes up after %u s\n", g_node,
                (unsigned long long)0, g_nodes - 1, g_seconds);
        return 1;
    }
    /* Every name from every node, through the registry. */
    for (;;) {
        uint32_t found = 0;
        for (uint32_t i = 0; i < g_total; i++) {
            char name[32];
            snprintf(name, sizeof name, "a%u", i);
            g_all[i] = ax_cluster_whereis(e, name);
            found += g_all[i] != AX_REF_NONE;
        }
        if (found == g_total)
            break;
        if (now_s() - t0 > g_seconds) {
            fprintf(stderr, "node %u: %u of %u names after %u s\n", g_node, found, g_total, g_seconds);
            return 1;
        }
        usleep(2000);
    }
    for (uint32_t i = 0; i < g_total; i++)
        if (ax_ref_node(g_all[i]) != i / per)
            ERR("name a%u names node %u", i, ax_ref_node(g_all[i]));
    {
        char up[32]; /* every other node is up here (kill: the victim waits for these) */
        snprintf(up, sizeof up, "up%u", g_node);
        ax_cluster_register(e, up, mine[0]);
    }
    if (!strcmp(g_scenario, "pingpong")) {
        if (g_node == 0 && ax_engine_send(e, mine[0], T_START, NULL, 0))
            ERR("start");
        while (atomic_load(&g_flood_got) < g_msgs && now_s() - t0 < g_seconds)
            usleep(1000);
        if (g_node == 0)
            printf("pingpong: %u round trips, mean RTT %.2f us; one-way %u messages in %.3f s = "
                   "%.0f msg/s (first send to last ack)\n", g_msgs,
                   (g_pp_t1 - g_pp_t0) / g_msgs * 1e6, g_msgs, g_flood_t1 - g_flood_t0,
                   g_msgs / (g_flood_t1 - g_flood_t0));
        fflush(stdout);
        usleep(300000);
        ax_engine_stop(e);
        ax_engine_wait(e);
        ax_engine_destroy(e);
        return atomic_load(&g_flood_got) == g_msgs && !atomic_load(&g_errors) ? 0 : 1;
    }
    bool kill = victim_scenario();
    for (uint32_t i = 0; i < per; i++)
        if (ax_engine_send(e, mine[i], T_START, &(uint64_t){ gidx(g_node, i) }, 8))
            ERR("start send");
    if (kill && g_node == 1) {
        /* The victim: traffic is flowing; the launcher kills (or stops) us
         * once every survivor has it up (wired: cluster_glue.c "wiring";
         * a node that dies while it joins meets a UCX 1.13 bug). */
        for (uint32_t n = 0; n < g_nodes; n++) {
            char up[32];
            snprintf(up, sizeof up, "up%u", n);
            while (n != 1 && ax_cluster_whereis(e, up) == AX_REF_NONE && now_s() - t0 < g_seconds)
                usleep(2000);
        }
        usleep(100000);
        if (write(g_ready_fd, "r", 1) != 1)
            return 1;
        for (;;)
            pause();
    }
    /* Expected arrivals on this node. */
    uint64_t expect = 0;
    for (uint32_t t = 0; t < per; t++)
        for (uint32_t s = 0; s < g_total; s++)
            if (node_alive(s / per))
                expect += expected_from(s, gidx(g_node, t));
    uint64_t downs_expect = kill && g_node != 1 ? (uint64_t)per * per : 0;
    uint32_t spawns = kill ? 0 : 1;
    /* A stall fails fast: every message is sent within the first second or
     * so, so STALL_S without one arrival while some are missing is no slow
     * run but traffic between live nodes that stopped (docs/cluster.md,
     * Failure: "A node frozen in a shared-memory send").  It used to wait
     * out --seconds (120 s in ctest) with no hint. */
    const double STALL_S = 30.0;
    bool stalled = false;
    uint64_t last_rx = atomic_load(&g_received);
    double last_rx_t = now_s();
    while (atomic_load(&g_received) < expect || atomic_load(&g_downs) < downs_expect ||
           atomic_load(&g_lookups_ok) < per || atomic_load(&g_spawn_ok) < spawns ||
           atomic_load(&g_spawn_enoent) < spawns) {
        uint64_t rx = atomic_load(&g_received);
        if (rx != last_rx) {
            last_rx = rx;
            last_rx_t = now_s();
        } else if (rx < expect && now_s() - last_rx_t > STALL_S) {
            ERR("stalled: received %llu of %llu and nothing for %.0f s (DOWN %llu of %llu): "
                "messages from a live node stopped coming (docs/cluster.md, Failure, \"A node "
                "frozen in a shared-memory send\")",
                (unsigned long long)rx, (unsigned long long)expect, STALL_S,
                (unsigned long long)atomic_load(&g_downs), (unsigned long long)downs_expect);
            stalled = true;
            break;
        }
        if (now_s() - t0 > g_seconds) {
            ERR("timeout: received %llu of %llu, DOWN %llu of %llu, lookups %u of %u, remote "
                "spawns %u+%u of %u+%u",
                (unsigned long long)atomic_load(&g_received), (unsigned long long)expect,
                (unsigned long long)atomic_load(&g_downs), (unsigned long long)downs_expect,
                atomic_load(&g_lookups_ok), per, atomic_load(&g_spawn_ok),
                atomic_load(&g_spawn_enoent), spawns, spawns);
            break;
        }
        if (kill && g_node == 1) {
            usleep(1000);
            continue;
        }
        usleep(2000);
    }
    /* Dead letters while every node is still here (later, nodes leave and
     * what is in flight to them, registry traffic, dies with them). */
    ax_worker_stats_t ws0;
    ax_engine_stats(e, &ws0);
    /* Done here: say so, and wait until every other (live) node is too, so
     * nobody leaves while its messages are still on their way. */
    char name[32];
    snprintf(name, sizeof name, "done%u", g_node);
    ax_ref_t any = g_all[gidx(g_node, 0)];
    ax_cluster_register(e, name, any);
    double tb = now_s();
    for (;;) {
        uint32_t done = 0, want = 0;
        for (uint32_t n = 0; n < g_nodes; n++) {
            if (!node_alive(n))
                continue;
            want++;
            snprintf(name, sizeof name, "done%u", n);
            done += ax_cluster_whereis(e, name) != AX_REF_NONE;
        }
        /* Stalled: the others' "done" may be stuck behind the stall too.
         * The others finish within seconds of us: STALL_S without their
         * "done" is the same stall on the registry's path (seen: every
         * message in, a survivor's "done" never, then it left). */
        if (done == want || stalled || now_s() - t0 > g_seconds)
            break;
        if (now_s() - tb > STALL_S) {
            ERR("stalled: %u of %u nodes said done, none more for %.0f s: registry messages "
                "from a live node stopped coming (docs/cluster.md, Failure, \"A node frozen "
                "in a shared-memory send\")", done, want, STALL_S);
            break;
        }
        usleep(2000);
    }
    usleep(300000); /* our own "done" reaches the others before we leave */
    ax_cluster_stats_t cs;
    ax_cluster_get_stats(e, &cs);
    ax_worker_stats_t ws;
    ax_engine_stats(e, &ws);
    printf("node %u: remote spawns ok %u, refused (no such behaviour) %u\n", g_node,
           atomic_load(&g_spawn_ok), atomic_load(&g_spawn_enoent));
    printf("node %u: received %llu/%llu blobs_ok %llu downs %llu lookups %u errors %llu | "
           "sent %llu recv %llu batches %llu/%llu reordered %llu dead(unreach %llu stale %llu) "
           "wire_errors %llu dead_letters %llu %.2f s\n",
           g_node, (unsigned long long)atomic_load(&g_received), (unsigned long long)expect,
           (unsigned long long)atomic_load(&g_blobs_ok), (unsigned long long)atomic_load(&g_downs),
           atomic_load(&g_lookups_ok), (unsigned long long)atomic_load(&g_errors),
           (unsigned long long)cs.msgs_sent, (unsigned long long)cs.msgs_received,
           (unsigned long long)cs.batches_sent, (unsigned long long)cs.batches_received,
           (unsigned long long)cs.reordered, (unsigned long long)cs.dead_unreachable,
           (unsigned long long)cs.dead_stale, (unsigned long long)cs.wire_errors,
           (unsigned long long)ws.dead_letters, now_s() - t0);
    if (kill) {
        double lat = g_last_down - atomic_load(g_kill_ts);
        double limit = 2.0 + 4.0; /* cluster.timeout_ms = 2000, plus scheduling slack */
        printf("node %u: every DOWN (%llu) %.3f s after node 1 was %s; %llu messages came "
               "from it before\n", g_node, (unsigned long long)atomic_load(&g_downs), lat,
               strcmp(g_scenario, "kill") ? "stopped" : "killed",
               (unsigned long long)atomic_load(&g_from_victim));
        if (lat > limit)
            ERR("node loss noticed after %.3f s, more than %.1f s", lat, limit);
    }
    if (g_garbage && g_node == 0) {
        printf("node 0: %llu garbage connections dropped\n", (unsigned long long)cs.refused_garbage);
        if (cs.refused_garbage < 3)
            ERR("the garbage sent to the listener was not noticed (%llu)",
                (unsigned long long)cs.refused_garbage);
    }
    if (cs.wire_errors)
        ERR("%llu wire errors", (unsigned long long)cs.wire_errors);
    /* Unpinned, every worker that went idle after remote traffic yielded
     * first (engine.c); pinned ones never yield. */
    printf("node %u: %llu yields before parking, %llu parks on UCP's fd (%llu fired)\n", g_node,
           (unsigned long long)cs.yields, (unsigned long long)cs.arms,
           (unsigned long long)cs.fd_wakes);
    if (g_unpinned && !cs.yields)
        ERR("unpinned workers never yielded before parking (cluster.yield_us)");
    if (!g_unpinned && ax_engine_plan(e)->pinned && cs.yields)
        ERR("%llu yields on pinned workers", (unsigned long long)cs.yields);
    if (!kill && ws0.dead_letters)
        ERR("dead letters without a failure");
    uint64_t blobs_expect = (uint64_t)(g_nodes - 1) * NBLOB;
    if (kill)
        blobs_expect = g_node == 1 ? 0 : (uint64_t)(g_nodes - 2) * NBLOB;
    if (atomic_load(&g_blobs_ok) != blobs_expect)
        ERR("%llu blobs intact, expected %llu", (unsigned long long)atomic_load(&g_blobs_ok),
            (unsigned long long)blobs_expect);
    fflush(stdout);
    ax_engine_stop(e);
    ax_engine_wait(e);
    ax_engine_destroy(e);
    return atomic_load(&g_errors) ? 1 : 0;
}

/* ---- scenario "rejoin" ------------------------------------------------------- */
static _Atomic int *g_phase;   /* launcher <-> node 0 (shared page): 1 = kill node 1 now */
static uint64_t g_life = 1;    /* node 1: which start of it this is (its echo answers it) */
static double g_stop_t;        /* node 0: when it told node 1 to stop (leave) */
static _Atomic double g_down_t; /* node 0: when the DOWN for the old v1 arrived */
static _Atomic uint32_t g_down_kind; /* ... and its reason */
static _Atomic uint64_t g_pongs[3], g_stale_hooked;
static ax_ref_t g_old_ref;     /* node 0: node 1's "v1" before the kill */

static void on_dead(void *user, const ax_msg_t *m)
{
    (void)user;
    if (m->to == g_old_ref && m->type == T_PING)
        atomic_fetch_add(&g_stale_hooked, 1);
}

static void on_prober(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == T_WATCH) { /* u64[0]: node 1's v1: monitor it, ping it */
        uint64_t id;
        if (ax_monitor(ctx, m->payload.u64[0], &id) != 0)
            ERR("ax_monitor of node 1's v1 failed");
        if (ax_send_u64(ctx, m->payload.u64[0], T_PING, 0) != 0)
            ERR("ping of node 1's v1 refused");
    } else if (m->type == T_WATCH2) { /* leave: monitor the old v1, its node gone */
        uint64_t id;
        if (ax_monitor(ctx, m->payload.u64[0], &id) != 0)
            ERR("ax_monitor of node 1's v1 after it left failed");
    } else if (m->type == T_AGAIN) { /* u64[0] old v1, u64[1] new v1: ping both, watch the old */
        int rc0 = ax_send_u64(ctx, m->payload.u64[0], T_PING, 0);
        int rc1 = ax_send_u64(ctx, m->payload.u64[1], T_PING, 0);
        if (rc0 || rc1)
            ERR("ping after the rejoin: old reference %d, new %d (expected 0 and 0)", rc0, rc1);
        uint64_t id;
        if (ax_monitor(ctx, m->payload.u64[0], &id) != 0) /* its node is up: a stale ref */
            ERR("ax_monitor of the old v1 after the rejoin failed");
    } else if (m->type == T_PONG) {
        uint64_t life;
        memcpy(&life, m->payload.data, 8);
        if (life < 1 || life > 2)
            ERR("PONG from start %llu of node 1", (unsigned long long)life);
        else
            atomic_fetch_add(&g_pongs[life], 1);
    } else if (m->type == AX_TYPE_DOWN) {
        ax_down_t d;
        if (ax_down_decode(m, &d) == 0 && d.reason.kind == AX_REASON_NO_ACTOR &&
            d.target == g_old_ref) {
            atomic_fetch_add(&g_stale_downs, 1); /* the monitor set after the rejoin */
        } else if (ax_down_decode(m, &d) == 0) {
            uint32_t want = g_leave ? AX_REASON_NODE_STOPPED : AX_REASON_UNREACHABLE;
            if (d.reason.kind != want || d.target != g_old_ref)
                ERR("DOWN for %#llx with reason %s, expected node 1's old v1, %s",
                    (unsigned long long)d.target, ax_reason_name(d.reason.kind),
                    ax_reason_name(want));
            atomic_store(&g_down_t, now_s());
            atomic_store(&g_down_kind, d.reason.kind);
            atomic_fetch_add(&g_downs, 1);
        }
    }
}

/* Wait until name resolves to a reference other than `except`. */
static ax_ref_t wait_name(const char *name, ax_ref_t except, double t0)
{
    for (;;) {
        ax_ref_t r = ax_cluster_whereis(g_eng, name);
        if (r != AX_REF_NONE && r != except)
            return r;
        if (now_s() - t0 > g_seconds)
            return AX_REF_NONE;
        usleep(2000);
    }
}

#define WAIT_FOR(cond, what) \
    do { \
        while (!(cond) && now_s() - t0 < g_seconds) \
            usleep(2000); \
        if (!(cond)) { \
            ERR("timeout waiting for %s", what); \
            goto out; \
        } \
    } while (0)

static int rejoin_survivor(FILE *addr_out)
{
    ax_engine_t *e = g_eng;
    ax_ref_t prober;
    ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_WORKER, .worker = 0 };
    if (ax_engine_spawn(e, on_prober, 8, &o, &prober))
        return 1;
    ax_engine_set_dead_letter_hook(e, on_dead, NULL);
    if (ax_engine_start(e))
        return 1;
    seed_write(e, addr_out);
    double t0 = now_s();
    ax_cluster_stats_t cs0, cs1;
    ax_ref_t old = wait_name("v1", AX_REF_NONE, t0), neu = AX_REF_NONE;
    if (old == AX_REF_NONE || ax_ref_node(old) != 1) {
        ERR("node 1's v1 never registered");
        goto out;
    }
    g_old_ref = old; /* before the messages that may make dead letters of it */
    ax_engine_send(e, prober, T_WATCH, &old, sizeof old);
    WAIT_FOR(atomic_load(&g_pongs[1]) == 1, "the first start of node 1 to answer");
    g_stop_t = now_s();
    ax_cluster_get_stats(e, &cs0);
    atomic_store(g_phase, 1); /* node 1 stops (leave) or the launcher kills it; then again */
    WAIT_FOR(atomic_load(&g_downs) == 1, "DOWN for the old v1");
    if (g_leave) {
        double dt = atomic_load(&g_down_t) - g_stop_t;
        ax_cluster_get_stats(e, &cs1);
        printf("node 0: node 1 stopped cleanly: DOWN (%s) %.3f s after it was told to stop "
               "(heartbeat timeout 30 s); leaves %llu downs %llu, dead_stopped +%llu "
               "dead_unreachable +%llu\n", ax_reason_name(atomic_load(&g_down_kind)), dt,
               (unsigned long long)cs1.node_leaves, (unsigned long long)cs1.node_downs,
               (unsigned long long)(cs1.dead_stopped - cs0.dead_stopped),
               (unsigned long long)(cs1.dead_unreachable - cs0.dead_unreachable));
        if (dt > 5.0)
            ERR("DOWN came %.3f s after the clean stop, expected well before the 30 s heartbeat "
                "timeout (within 5 s)", dt);
        if (cs1.node_leaves != 1 || cs1.node_downs != 0 ||
            cs1.dead_unreachable != cs0.dead_unreachable)
            ERR("a clean stop counted as a failure: leaves %llu downs %llu, dead_unreachable "
                "+%llu (expected 1, 0, +0)", (unsigned long long)cs1.node_leaves,
                (unsigned long long)cs1.node_downs,
                (unsigned long long)(cs1.dead_unreachable - cs0.dead_unreachable));
        /* Its node is down and left: a new monitor answers at once, with
         * the same reason (ax_monitor). */
        ax_engine_send(e, prober, T_WATCH2, &old, sizeof old);
        WAIT_FOR(atomic_load(&g_downs) == 2, "DOWN for a monitor set after the leave");
        atomic_store(g_phase, 2); /* the launcher starts node 1 again */
    }
    neu = wait_name("v1", old, t0);
    if (neu == AX_REF_NONE || ax_ref_node(neu) != 1) {
        ERR("node 1 did not come back (its v1 not registered again)");
        goto out;
    }
    printf("node 0: node 1's v1 was %#llx (incarnation tag %u), now %#llx (tag %u)\n",
           (unsigned long long)old, ax_ref_incarnation(old), (unsigned long long)neu,
           ax_ref_incarnation(neu));
    if (ax_ref_incarnation(neu) == ax_ref_incarnation(old))
        ERR("node 1 rejoined under its old incarnation tag %u", ax_ref_incarnation(old));
    ax_cluster_get_stats(e, &cs0);
    uint64_t both[2] = { old, neu };
    ax_engine_send(e, prober, T_AGAIN, both, sizeof both);
    WAIT_FOR(atomic_load(&g_pongs[2]) == 1 && atomic_load(&g_stale_hooked) == 1 &&
                 atomic_load(&g_stale_downs) == 1,
             "the new v1's answer, the old one's dead letter and DOWN (no actor) for a "
             "monitor of the old one");
    usleep(200000); /* nothing more may come */
    ax_cluster_get_stats(e, &cs1);
    printf("node 0: rejoin: joins %llu downs %llu refused_incarnation %llu; the ping to the old "
           "reference: dead_stale +%llu, hooked %llu; answers old %llu new %llu\n",
           (unsigned long long)cs1.joins, (unsigned long long)cs1.node_downs,
           (unsigned long long)cs1.refused_incarnation,
           (unsigned long long)(cs1.dead_stale - cs0.dead_stale),
           (unsigned long long)atomic_load(&g_stale_hooked),
           (unsigned long long)atomic_load(&g_pongs[1]),
           (unsigned long long)atomic_load(&g_pongs[2]));
    if (cs1.dead_stale - cs0.dead_stale != 2)
        ERR("dead_stale grew by %llu for one send and one monitor to a stale reference",
            (unsigned long long)(cs1.dead_stale - cs0.dead_stale));
    if (atomic_load(&g_pongs[1]) != 1 || atomic_load(&g_pongs[2]) != 1 ||
        atomic_load(&g_stale_hooked) != 1 || atomic_load(&g_downs) != (g_leave ? 2u : 1u) ||
        atomic_load(&g_stale_downs) != 1)
        ERR("a stale message was delivered, or an answer or DOWN came twice");
    if (cs1.refused_incarnation || cs1.node_downs != (g_leave ? 0u : 1u) ||
        cs1.node_leaves != (g_leave ? 1u : 0u) || cs1.joins != 2)
        ERR("membership: refused_incarnation %llu, downs %llu, leaves %llu, joins %llu "
            "(expected 0, %u, %u, 2)", (unsigned long long)cs1.refused_incarnation,
            (unsigned long long)cs1.node_downs, (unsigned long long)cs1.node_leaves,
            (unsigned long long)cs1.joins, g_leave ? 0u : 1u, g_leave ? 1u : 0u);
out:
    ax_cluster_register(e, "done0", prober);
    usleep(500000); /* "done0" reaches node 1 before we leave */
    ax_engine_stop(e);
    ax_engine_wait(e);
    ax_engine_destroy(e);
    return atomic_load(&g_errors) ? 1 : 0;
}

static int rejoin_victim(void)
{
    ax_engine_t *e = g_eng;
    ax_ref_t v;
    uint64_t life = g_life;
    ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_WORKER, .worker = 0,
                          .init = echo_init, .arg = &life, .arg_len = sizeof life };
    if (ax_engine_spawn(e, on_echo, 8, &o, &v) || ax_cluster_register(e, "v1", v) ||
        ax_engine_start(e))
        return 1;
    printf("node 1 (start %llu): v1 is %#llx, incarnation tag %u\n", (unsigned long long)life,
           (unsigned long long)v, ax_ref_incarnation(v));
    fflush(stdout);
    double t0 = now_s();
    if (life == 1 && !g_leave)
        for (;;)
            pause(); /* the launcher kills us */
    if (life == 1) { /* leave: stop cleanly when node 0 says so */
        while (atomic_load(g_phase) == 0 && now_s() - t0 < g_seconds)
            usleep(2000);
        bool told = atomic_load(g_phase) != 0;
        ax_engine_stop(e);
        ax_engine_wait(e);
        ax_engine_destroy(e);
        return told ? 0 : 1;
    }
    while (ax_cluster_whereis(e, "done0") == AX_REF_NONE && now_s() - t0 < g_seconds)
        usleep(2000);
    bool done = ax_cluster_whereis(e, "done0") != AX_REF_NONE;
    ax_engine_stop(e);
    ax_engine_wait(e);
    ax_engine_destroy(e);
    return done ? 0 : 1;
}

/* The two-node scenarios around one survivor (rejoin, joinkill): a
 * directory for node 1's state file (state), the shared phase word, and
 * node 0 forked to run survivor; its seed address is read into seed.
 * Returns node 0's pid, or -1. */
static pid_t fork_survivor(char *dir, char *state, size_t state_len, const char *cookie,
                           int (*survivor)(FILE *), char *seed, size_t seed_len)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(state, state_len, "%s/node1.inc", dir);
    g_phase = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_phase == MAP_FAILED)
        return -1;
    int pfd[2];
    if (pipe(pfd))
        return -1;
    fflush(stdout);
    pid_t p0 = fork();
    if (p0 == 0) {
        close(pfd[0]);
        FILE *out = fdopen(pfd[1], "w");
        if (run_node(0, "127.0.0.1:0", "", cookie))
            exit(1);
        exit(survivor(out));
    }
    close(pfd[1]);
    if (seed_read(pfd[0], p0, seed, seed_len))
        return -1;
    return p0;
}

static int launch_rejoin(const char *cookie)
{
    char dir[] = "/tmp/axon-rejoin-XXXXXX", state[128], seed[64] = "";
    pid_t p0 = fork_survivor(dir, state, sizeof state, cookie, rejoin_survivor, seed, sizeof seed);
    if (p0 < 0)
        return 1;
    int bad = 0, st, st0 = 0;
    bool reaped0 = false;
    pid_t p1 = -1;
    for (uint64_t life = 1; life <= 2; life++) {
        fflush(stdout);
        p1 = fork();
        if (p1 == 0) {
            g_state_file = state;
            g_life = life;
            if (run_node(1, "127.0.0.1:0", seed, cookie))
                exit(1);
            exit(rejoin_victim());
        }
        if (life == 2)
            break;
        double t0 = now_s();
        while (atomic_load(g_phase) != 1 && now_s() - t0 < g_seconds && !reaped0) {
            reaped0 = waitpid(p0, &st0, WNOHANG) == p0;
            usleep(2000);
        }
        if (atomic_load(g_phase) != 1) {
            fprintf(stderr, "launcher: node 0 never saw node 1's first start\n");
            bad = 1;
            if (!reaped0)
                kill(p0, SIGKILL);
        }
        if (g_leave && !bad) {
            waitpid(p1, &st, 0); /* it stops by itself */
            if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                fprintf(stderr, "launcher: node 1 (first start) did not stop cleanly (status "
                                "%#x)\n", st);
                bad = 1;
            }
            printf("launcher: node 1 (pid %d) stopped cleanly\n", (int)p1);
            while (atomic_load(g_phase) != 2 && now_s() - t0 < g_seconds && !reaped0) {
                reaped0 = waitpid(p0, &st0, WNOHANG) == p0;
                usleep(2000);
            }
            if (atomic_load(g_phase) != 2) {
                fprintf(stderr, "launcher: node 0 never saw node 1 leave\n");
                bad = 1;
                if (!reaped0)
                    kill(p0, SIGKILL);
                break;
            }
            printf("launcher: starting node 1 again\n");
        } else {
            kill(p1, SIGKILL);
            waitpid(p1, &st, 0);
            printf("launcher: killed node 1 (pid %d), starting it again\n", (int)p1);
        }
        if (bad)
            break;
    }
    if (!bad) {
        waitpid(p1, &st, 0);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            fprintf(stderr, "launcher: node 1 (second start) failed (status %#x)\n", st);
            bad = 1;
        }
    }
    if (!reaped0)
        waitpid(p0, &st0, 0);
    if (!(WIFEXITED(st0) && WEXITSTATUS(st0) == 0)) {
        fprintf(stderr, "launcher: node 0 failed (status %#x)\n", st0);
        bad = 1;
    }
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", state);
    unlink(tmp);
    unlink(state);
    rmdir(dir);
    printf("cluster_node %s x2: %s\n", g_scenario, bad ? "FAIL" : "PASS");
    return bad;
}

/* ---- scenario "joinkill" ------------------------------------------------------ */
/* Node 0 runs; node 1 (a cluster.state_file: a new tag every start) is
 * started --rounds times and killed with SIGKILL at a random point of its
 * join, from before its engine exists to after it is up (0 .. --kill-ms
 * after the fork).  Node 0 must survive every kill (UCX 1.13 could abort it
 * when wireup messages were still queued to the dead node: docs/cluster.md,
 * Failure), end with nobody up, have taken down every start that got up
 * (joins <= downs <= starts: a start killed after its ADDRS but before
 * READY is known, never up, and goes down too), and stop cleanly
 * (leak-checked under ASan). */
static uint32_t g_rounds = 20, g_kill_ms = 400;

static int joinkill_survivor(FILE *addr_out)
{
    ax_engine_t *e = g_eng;
    if (ax_engine_start(e))
        return 1;
    seed_write(e, addr_out);
    while (atomic_load(g_phase) != 1) /* the launcher's rounds */
        usleep(10000);
    double t0 = now_s();
    ax_cluster_stats_t cs;
    /* The last victim may still be in its heartbeat timeout. */
    do {
        usleep(10000);
        ax_cluster_get_stats(e, &cs);
    } while ((cs.nodes_up || ax_cluster_node_up(e, 1)) && now_s() - t0 < g_seconds);
    printf("node 0: %u starts of node 1 killed while joining: joins %llu downs %llu leaves %llu "
           "nodes up %llu refused_incarnation %llu\n", g_rounds, (unsigned long long)cs.joins,
           (unsigned long long)cs.node_downs, (unsigned long long)cs.node_leaves,
           (unsigned long long)cs.nodes_up, (unsigned long long)cs.refused_incarnation);
    /* Every start that got up went down; one that was known (its ADDRS in)
     * but not up yet goes down too without a join; none twice. */
    if (cs.nodes_up || cs.node_downs < cs.joins || cs.node_downs > g_rounds || cs.node_leaves)
        ERR("after the kills: %llu nodes up, %llu joins, %llu downs, %llu leaves (expected 0 up, "
            "joins <= downs <= starts, no leave)", (unsigned long long)cs.nodes_up,
            (unsigned long long)cs.joins, (unsigned long long)cs.node_downs,
            (unsigned long long)cs.node_leaves);
    ax_engine_stop(e);
    ax_engine_wait(e);
    ax_engine_destroy(e);
    return atomic_load(&g_errors) ? 1 : 0;
}

static int launch_joinkill(const char *cookie)
{
    char dir[] = "/tmp/axon-joinkill-XXXXXX", state[128], seed[64] = "";
    pid_t p0 = fork_survivor(dir, state, sizeof state, cookie, joinkill_survivor, seed, sizeof seed);
    if (p0 < 0)
        return 1;
    int bad = 0, st0 = 0;
    uint64_t r = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull | 1;
    for (uint32_t i = 0; i < g_rounds && !bad; i++) {
        uint32_t ms = (uint32_t)(rng(&r) % (g_kill_ms + 1));
        fflush(stdout);
        pid_t p1 = fork();
        if (p1 == 0) {
            g_state_file = state;
            if (run_node(1, "127.0.0.1:0", seed, cookie))
                exit(1);
            if (ax_engine_start(g_eng))
                exit(1);
            for (;;)
                pause(); /* killed */
        }
        usleep(ms * 1000);
        kill(p1, SIGKILL);
        waitpid(p1, NULL, 0);
        if (waitpid(p0, &st0, WNOHANG) == p0) {
            fprintf(stderr, "launcher: node 0 died in round %u (node 1 killed %u ms after its "
                            "fork): status %#x%s\n", i, ms, st0,
                    WIFSIGNALED(st0) ? " (a signal: UCX aborted?)" : "");
            bad = 2;
        }
    }
    if (bad != 2) {
        printf("launcher: %u starts of node 1 killed at random points of their join\n", g_rounds);
        atomic_store(g_phase, 1);
        waitpid(p0, &st0, 0);
        if (!(WIFEXITED(st0) && WEXITSTATUS(st0) == 0)) {
            fprintf(stderr, "launcher: node 0 failed (status %#x)\n", st0);
            bad = 1;
        }
    }
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", state);
    unlink(tmp);
    unlink(state);
    rmdir(dir);
    printf("cluster_node joinkill x2: %s\n", bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}

/* Scenario "refuse": node 1 must not join node 0 (other cookie or wire
 * version); node 0 counts the refusal, node 1 sees nobody up. */
static int refuse(bool is_seed, FILE *addr_out)
{
    ax_engine_t *e = g_eng;
    if (ax_engine_start(e))
        return 1;
    seed_write(e, addr_out);
    double t0 = now_s();
    int rc = 1;
    while (now_s() - t0 < 10) {
        ax_cluster_stats_t cs;
        ax_cluster_get_stats(e, &cs);
        if (cs.nodes_up) {
            fprintf(stderr, "node %u: a node with another cookie or wire version joined\n", g_node);
            rc = 1;
            break;
        }
        if (cs.refused_cookie + cs.refused_version) {
            printf("node %u: refused (cookie %llu, version %llu)\n", g_node,
                   (unsigned long long)cs.refused_cookie, (unsigned long long)cs.refused_version);
            rc = 0;
            if (now_s() - t0 > 1)
                break;
        }
        usleep(10000);
    }
    (void)is_seed;
    fflush(stdout);
    ax_engine_destroy(e);
    return rc;
}

/* Three connections to the listener: random bytes; a frame header that
 * announces 2 GiB; a HELLO with a bad magic.  Each must cost only itself. */
static int send_garbage(const char *addr)
{
    char host[64];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (!colon)
        return 1;
    *colon = 0;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    inet_pton(AF_INET, host, &sa.sin_addr);
    unsigned char junk[3][512];
    size_t len[3] = { sizeof junk[0], 8, 8 + 100 };
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof junk[0]; i++)
        junk[0][i] = (unsigned char)((x ^= x << 13, x ^= x >> 7, x ^= x << 17) & 0xff);
    uint32_t h[2] = { 1, 0x7fffffffu };
    memcpy(junk[1], h, 8);
    uint32_t h2[2] = { 1, 100 };
    memcpy(junk[2], h2, 8);
    memset(junk[2] + 8, 'x', 100);
    for (int k = 0; k < 3; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            perror("garbage connect");
            return 1;
        }
        if (write(fd, junk[k], len[k]) < 0)
            perror("garbage write");
        usleep(50000);
        close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *cookie = "axon-test-cookie", *cookie1 = NULL;
    uint32_t fork_n = 0;
    bool mpi = false;
    int single = -1; /* --node N: run one node (with --listen, --peers, --nodes) */
    const char *listen = "", *peers = "";
    int wire1 = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--fork")) fork_n = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--mpi")) mpi = true;
        else if (!strcmp(a, "--workers")) g_workers = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--actors")) g_actors = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--msgs")) g_msgs = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--seconds")) g_seconds = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--scenario")) g_scenario = v, i++;
        else if (!strcmp(a, "--cookie1")) cookie1 = v, i++;  /* node 1's cookie (refuse) */
        else if (!strcmp(a, "--wire1")) wire1 = atoi(v), i++; /* node 1's wire version (refuse) */
        else if (!strcmp(a, "--garbage")) g_garbage = true;
        else if (!strcmp(a, "--unpinned")) g_unpinned = true;
        else if (!strcmp(a, "--rounds")) g_rounds = (uint32_t)atoi(v), i++;   /* joinkill */
        else if (!strcmp(a, "--kill-ms")) g_kill_ms = (uint32_t)atoi(v), i++; /* joinkill */
        else if (!strcmp(a, "--node")) single = atoi(v), i++;
        else if (!strcmp(a, "--nodes")) g_nodes = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--listen")) listen = v, i++;
        else if (!strcmp(a, "--peers")) peers = v, i++;
        else if (!strcmp(a, "--progress")) {
            g_progress = !strcmp(v, "spin") ? AX_CLUSTER_PROGRESS_SPIN
                         : !strcmp(v, "wakeup") ? AX_CLUSTER_PROGRESS_WAKEUP
                                                : AX_CLUSTER_PROGRESS_AUTO;
            i++;
        }
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (mpi) {
#ifdef AXON_HAVE_MPI
        ax_config_t c;
        ax_config_init(&c);
        int rank = 0, size = 0;
        if (ax_cluster_mpi_init(&argc, &argv, &c, &rank, &size) != 0)
            return 1;
        g_nodes = (uint32_t)size;
        g_node = (uint32_t)rank;
        g_total = g_nodes * g_workers * g_actors;
        c.workers = g_workers;
        c.oversubscribe = true;
        c.arena_bytes = 64u << 20;
        c.max_actors = 4096;
        c.watchdog_ms = AX_WATCHDOG_OFF;
        snprintf(c.cluster_cookie, sizeof c.cluster_cookie, "%s", cookie);
        c.cluster_heartbeat_ms = 100;
        c.cluster_timeout_ms = 10000; /* delivery, not detection: see run_node */
        if (ax_engine_create(&c, &g_eng)) {
            fprintf(stderr, "rank %d: %s\n", rank, ax_engine_last_error());
            return 1;
        }
        if (ax_cluster_mpi_exchange(g_eng) != 0)
            return 1;
        return mesh(NULL);
#else
        fprintf(stderr, "built without MPI\n");
        return 2;
#endif
    }
    if (single >= 0) {
        if (run_node((uint32_t)single, listen, peers, cookie))
            return 1;
        int rc = mesh(NULL);
        printf("cluster_node node %d of %u: %s\n", single, g_nodes, rc ? "FAIL" : "PASS");
        return rc;
    }
    if (!fork_n) {
        fprintf(stderr, "usage: cluster_node --fork N | --mpi | --node I --nodes N --listen A "
                        "[--peers B] [options]\n");
        return 2;
    }
    g_nodes = fork_n;
    g_leave = !strcmp(g_scenario, "leave");
    if (!strcmp(g_scenario, "rejoin") || g_leave)
        return launch_rejoin(cookie);
    if (!strcmp(g_scenario, "joinkill"))
        return launch_joinkill(cookie);
    int pfd[2], rfd[2];
    if (pipe(pfd) || pipe(rfd))
        return 1;
    g_kill_ts = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_kill_ts == MAP_FAILED)
        return 1;
    atomic_store(g_kill_ts, 1e18);
    pid_t pids[64];
    char seed[64] = "";
    for (uint32_t n = 0; n < fork_n; n++) {
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) {
            if (n == 0) {
                close(pfd[0]);
                FILE *out = fdopen(pfd[1], "w");
                if (run_node(0, "127.0.0.1:0", "", cookie))
                    exit(1);
                exit(!strcmp(g_scenario, "refuse") ? refuse(true, out) : mesh(out));
            }
            close(pfd[0]);
            close(pfd[1]);
            close(rfd[0]);
            g_ready_fd = rfd[1];
            if (n == 1 && wire1) {
                char v[16];
                snprintf(v, sizeof v, "%d", wire1);
                setenv("AXON_TEST_WIRE_VERSION", v, 1);
            }
            /* Node n lists only the seed; it finds the others through it. */
            if (run_node(n, "127.0.0.1:0", seed, n == 1 && cookie1 ? cookie1 : cookie))
                exit(1);
            exit(!strcmp(g_scenario, "refuse") ? refuse(false, NULL) : mesh(NULL));
        }
        pids[n] = p;
        if (n == 0) {
            close(pfd[1]);
            if (seed_read(pfd[0], p, seed, sizeof seed))
                return 1;
            if (g_garbage && send_garbage(seed) != 0)
                return 1;
        }
    }
    close(rfd[1]);
    if (victim_scenario()) {
        /* When node 1's traffic runs, kill it (SIGKILL: its sockets close)
         * or stop it (SIGSTOP: silence, only heartbeats notice). */
        char c;
        if (read(rfd[0], &c, 1) != 1) {
            fprintf(stderr, "launcher: node 1 never got ready\n");
            for (uint32_t n = 0; n < fork_n; n++)
                kill(pids[n], SIGKILL);
            return 1;
        }
        atomic_store(g_kill_ts, now_s());
        kill(pids[1], strcmp(g_scenario, "kill") ? SIGSTOP : SIGKILL);
        printf("launcher: %s node 1 (pid %d)\n", strcmp(g_scenario, "kill") ? "stopped" : "killed",
               (int)pids[1]);
        fflush(stdout);
    }
    int bad = 0;
    for (uint32_t n = 0; n < fork_n; n++) {
        int st;
        if (victim_scenario() && n == 1)
            continue;
        waitpid(pids[n], &st, 0);
        bool killed = false;
        if (!killed && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            fprintf(stderr, "launcher: node %u failed (status %#x)\n", n, st);
            bad = 1;
        }
    }
    if (victim_scenario()) {
        int st;
        kill(pids[1], SIGKILL);
        waitpid(pids[1], &st, 0);
    }
    printf("cluster_node %s x%u: %s\n", g_scenario, fork_n, bad ? "FAIL" : "PASS");
    return bad;
}
