/* tests/stress/stress_engine_mesh.c - a random mesh of actors exchanging
 * checked messages; every message must be delivered exactly once and in
 * per-pair order.  Public API only.
 *
 * Each actor i has K random peers (self allowed).  Driven by self-sent
 * TICKs, it sends bursts of 1..16 messages to random peers, each carrying
 * (sender i, peer slot j, per-pair sequence, two filler words, checksum):
 * the whole 40-byte payload is checked.  The receiver checks the checksum,
 * that it is peers[i][j], that msg.from is i's reference and that the
 * sequence is exactly the next one for that pair (a loss, a duplicate or a
 * reorder all show as a mismatch).  At the end every pair's received count
 * must equal its sent count, and the engine's handled counters must equal
 * the messages sent.  8-slot rings force the overflow path (checked: the
 * run fails if no ring ever filled).
 *
 * Actors have no backpressure, so an unbounded flood would fill a worker's
 * overflow queue until its arena is exhausted (send then returns -ENOMEM,
 * which is the documented behaviour, not what this test is about): while
 * more than --inflight messages are outstanding, a tick sends nothing and
 * just re-ticks.  Overflow queues still grow to tens of thousands.
 *
 * Seeded and time-boxed: --seconds bounds the sending phase; then every
 * actor finishes its current tick, the engine drains, and the checks run.
 *
 * Threading: sent_seq[p] is written only by the sending actor of pair p and
 * expect_seq[p] only by its receiving actor (an actor runs on one worker,
 * never concurrently with itself); the main thread reads both after
 * ax_engine_wait.  Counters read while running are atomics.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "test_cpus.h"
#include "test_util.h"

enum { T_TICK = 1, T_DATA = 2 };
#define BURST_MAX 16u

static struct {
    uint64_t seed;
    uint32_t workers, actors, peers, msgs, ring_slots, seconds;
    int32_t spin_us;
    uint64_t arena_mib;
    uint64_t inflight; /* sent - received above this: actors pause (re-tick without sending) */
    char synthetic[AX_CONFIG_STR_MAX];
} opt = { 0, 2, 10000, 8, 300, 8, 20, 0, 64, 100000, "" };

static ax_ref_t *g_refs;       /* actor index -> ref (written before start) */
static uint32_t *g_peers;      /* actors * peers */
static uint32_t *g_sent_seq;   /* per pair, by the sender */
static uint32_t *g_expect_seq; /* per pair, by the receiver */
static atomic_bool g_stop_sending;
static _Atomic uint64_t g_sent, g_ticks, g_received, g_done_actors;
static _Atomic uint64_t g_err_order, g_err_sum, g_err_route, g_err_from, g_err_send, g_err_type;
static _Atomic uint64_t g_first_err; /* pair << 32 | got seq (order errors) */
static _Atomic int g_first_send_rc;
static char g_rerun[1024];

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };
    nanosleep(&ts, NULL);
}

typedef struct mesh_st {
    uint32_t idx;
    uint32_t left; /* messages still to send */
    uint64_t rng;
} mesh_st_t;

static uint64_t rnd(mesh_st_t *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545F4914F6CDD1Dull;
}

static void make_payload(uint64_t p[5], uint32_t sender, uint32_t j, uint32_t seq)
{
    p[0] = (uint64_t)sender << 8 | j;
    p[1] = seq;
    p[2] = mix(opt.seed ^ p[0] ^ (p[1] << 24));
    p[3] = mix(p[2] ^ 0x5555);
    p[4] = mix(p[0] ^ mix(p[1] ^ mix(p[2] ^ mix(p[3]))));
}

static void mesh_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    mesh_st_t *s = state;
    uint32_t idx = 0;
    if (arg && len == sizeof idx)
        memcpy(&idx, arg, sizeof idx);
    s->idx = idx;
    s->left = opt.msgs;
    s->rng = mix(opt.seed ^ ((uint64_t)idx << 17)) | 1;
}

static void mesh_tick(ax_ctx_t *ctx, mesh_st_t *s)
{
    uint32_t burst = (uint32_t)(rnd(s) % BURST_MAX) + 1;
    uint64_t out = atomic_load_explicit(&g_sent, memory_order_relaxed) -
                   atomic_load_explicit(&g_received, memory_order_relaxed);
    if (out > opt.inflight && out < (1ull << 62)) /* (a stale pair of loads can go "negative") */
        burst = 0;
    uint64_t sent = 0;
    for (uint32_t k = 0; k < burst && s->left > 0; k++) {
        uint32_t j = (uint32_t)(rnd(s) % opt.peers);
        size_t pair = (size_t)s->idx * opt.peers + j;
        uint64_t p[5];
        make_payload(p, s->idx, j, g_sent_seq[pair]);
        int rc = ax_send(ctx, g_refs[g_peers[pair]], T_DATA, p, sizeof p);
        if (rc != 0) {
            int zero = 0;
            atomic_compare_exchange_strong(&g_first_send_rc, &zero, rc);
            atomic_fetch_add(&g_err_send, 1);
            continue; /* nothing was sent: the sequence does not advance */
        }
        g_sent_seq[pair]++;
        s->left--;
        sent++;
    }
    atomic_fetch_add_explicit(&g_sent, sent, memory_order_relaxed);
    bool more = s->left > 0 && !atomic_load_explicit(&g_stop_sending, memory_order_relaxed);
    if (more && ax_send_u64(ctx, ax_self(ctx), T_TICK, 0) == 0) {
        atomic_fetch_add_explicit(&g_ticks, 1, memory_order_relaxed);
        return;
    }
    if (more)
        atomic_fetch_add(&g_err_send, 1);
    /* release: the sends above are counted before done is seen (main's acquire) */
    atomic_fetch_add_explicit(&g_done_actors, 1, memory_order_release);
}

static void mesh_data(ax_ctx_t *ctx, mesh_st_t *s, const ax_msg_t *m)
{
    uint64_t p[5], want[5];
    if (ax_msg_len(m) != sizeof p) {
        atomic_fetch_add(&g_err_type, 1);
        return;
    }
    memcpy(p, ax_msg_data(m), sizeof p);
    uint32_t sender = (uint32_t)(p[0] >> 8), j = (uint32_t)(p[0] & 0xff);
    if (sender >= opt.actors || j >= opt.peers) {
        atomic_fetch_add(&g_err_sum, 1);
        return;
    }
    make_payload(want, sender, j, (uint32_t)p[1]);
    if (memcmp(p, want, sizeof p) != 0 || p[1] > UINT32_MAX) {
        atomic_fetch_add(&g_err_sum, 1);
        return;
    }
    size_t pair = (size_t)sender * opt.peers + j;
    if (g_peers[pair] != s->idx || m->to != ax_self(ctx))
        atomic_fetch_add(&g_err_route, 1);
    if (m->from != g_refs[sender] || ax_sender(ctx) != g_refs[sender])
        atomic_fetch_add(&g_err_from, 1);
    if (p[1] != g_expect_seq[pair]) {
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&g_first_err, &zero, (uint64_t)pair << 32 | (p[1] & 0xffffffffu));
        atomic_fetch_add(&g_err_order, 1);
    }
    g_expect_seq[pair] = (uint32_t)p[1] + 1;
    atomic_fetch_add_explicit(&g_received, 1, memory_order_relaxed);
}

static void mesh_actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    mesh_st_t *s = state;
    if (m->type == T_TICK)
        mesh_tick(ctx, s);
    else if (m->type == T_DATA)
        mesh_data(ctx, s, m);
    else
        atomic_fetch_add(&g_err_type, 1);
}

static void watchdog(int sig)
{
    (void)sig;
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "stress_engine_mesh: FAIL: watchdog fired: sent %llu received %llu, %llu of %u "
                     "actors done: the engine hangs (lost wakeup or lost message); %s\n",
                     (unsigned long long)atomic_load(&g_sent), (unsigned long long)atomic_load(&g_received),
                     (unsigned long long)atomic_load(&g_done_actors), opt.actors, g_rerun);
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n);
        (void)w;
    }
    _exit(2);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--seed N] [--workers N] [--synthetic 'hwloc desc'] [--actors N] [--peers K]\n"
            "          [--msgs M per actor] [--ring-slots S] [--seconds T] [--spin-us U] [--arena-mib A]\n"
            "          [--inflight N]\n",
            argv0);
    exit(2);
}

static int fail(const char *what)
{
    fprintf(stderr, "stress_engine_mesh: FAIL: %s; %s\n", what, g_rerun);
    return 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct option lo[] = {
        { "seed", 1, 0, 's' },     { "workers", 1, 0, 'w' }, { "synthetic", 1, 0, 'y' },
        { "actors", 1, 0, 'a' },   { "peers", 1, 0, 'k' },   { "msgs", 1, 0, 'm' },
        { "ring-slots", 1, 0, 'r' }, { "seconds", 1, 0, 't' }, { "spin-us", 1, 0, 'u' },
        { "arena-mib", 1, 0, 'A' }, { "inflight", 1, 0, 'i' }, { 0, 0, 0, 0 },
    };
    opt.seed = mix(now_ns() ^ (uint64_t)getpid()) % 1000000000u;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 's': opt.seed = strtoull(optarg, NULL, 0); break;
        case 'w': opt.workers = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'y': snprintf(opt.synthetic, sizeof opt.synthetic, "%s", optarg); break;
        case 'a': opt.actors = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'k': opt.peers = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'm': opt.msgs = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'r': opt.ring_slots = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 't': opt.seconds = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'u': opt.spin_us = (int32_t)strtol(optarg, NULL, 0); break;
        case 'A': opt.arena_mib = strtoull(optarg, NULL, 0); break;
        case 'i': opt.inflight = strtoull(optarg, NULL, 0); break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || opt.actors < 1 || opt.actors >= (1u << 24) || opt.peers < 1 ||
        opt.peers > 255 || opt.workers < 1)
        usage(argv[0]);
    snprintf(g_rerun, sizeof g_rerun,
             "rerun: stress_engine_mesh --seed %llu --workers %u%s%s%s --actors %u --peers %u "
             "--msgs %u --ring-slots %u --seconds %u --inflight %llu --arena-mib %llu",
             (unsigned long long)opt.seed, opt.workers, opt.synthetic[0] ? " --synthetic '" : "",
             opt.synthetic, opt.synthetic[0] ? "'" : "", opt.actors, opt.peers, opt.msgs,
             opt.ring_slots, opt.seconds, (unsigned long long)opt.inflight,
             (unsigned long long)opt.arena_mib);
    printf("stress_engine_mesh: seed %llu (%s)\n", (unsigned long long)opt.seed, g_rerun);
    signal(SIGALRM, watchdog);
    alarm(opt.seconds + 240);

    size_t npairs = (size_t)opt.actors * opt.peers;
    g_refs = calloc(opt.actors, sizeof *g_refs);
    g_peers = calloc(npairs, sizeof *g_peers);
    g_sent_seq = calloc(npairs, sizeof *g_sent_seq);
    g_expect_seq = calloc(npairs, sizeof *g_expect_seq);
    if (!g_refs || !g_peers || !g_sent_seq || !g_expect_seq)
        return fail("out of memory for the test's tables");
    uint64_t r = mix(opt.seed);
    for (size_t p = 0; p < npairs; p++) {
        r = mix(r);
        g_peers[p] = (uint32_t)(r % opt.actors);
    }

    ax_config_t cfg;
    ax_config_init(&cfg);
    test_cfg_workers(&cfg, opt.workers); /* unpinned when the process has fewer cores */
    if (opt.synthetic[0]) {
        snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "%s", opt.synthetic);
        cfg.oversubscribe = true;
    }
    cfg.ring_slots = opt.ring_slots;
    cfg.spin_us = opt.spin_us;
    cfg.arena_bytes = opt.arena_mib << 20;
    uint32_t per = 2 * opt.actors / opt.workers + 64, ma = 64;
    while (ma < per)
        ma <<= 1;
    cfg.max_actors = ma;
    ax_engine_t *eng = NULL;
    int rc = ax_engine_create(&cfg, &eng);
    if (rc != 0) {
        fprintf(stderr, "stress_engine_mesh: ax_engine_create: %d: %s\n", rc, ax_engine_last_error());
        return fail("engine create failed");
    }
    uint32_t nw = ax_engine_workers(eng);
    const ax_plan_t *plan = ax_engine_plan(eng);
    printf("stress_engine_mesh: %u actors x %u peers, %u msgs each, %u workers (%s), ring %u slots\n",
           opt.actors, opt.peers, opt.msgs, nw, plan->pinned ? "pinned" : "unpinned", opt.ring_slots);

    for (uint32_t i = 0; i < opt.actors; i++) {
        r = mix(r);
        ax_spawn_opts_t so = { .size = sizeof so, .where = AX_ON_WORKER, .worker = (uint32_t)(r % nw),
                               .init = mesh_init, .arg = &i, .arg_len = sizeof i };
        rc = ax_engine_spawn(eng, mesh_actor, sizeof(mesh_st_t), &so, &g_refs[i]);
        if (rc != 0) {
            fprintf(stderr, "stress_engine_mesh: spawn %u: %d\n", i, rc);
            return fail("spawn failed");
        }
    }
    uint64_t t0 = now_ns();
    if ((rc = ax_engine_start(eng)) != 0) {
        fprintf(stderr, "stress_engine_mesh: start: %d\n", rc);
        return fail("engine start failed");
    }
    for (uint32_t i = 0; i < opt.actors; i++) {
        uint64_t v = 0;
        if ((rc = ax_engine_send(eng, g_refs[i], T_TICK, &v, sizeof v)) != 0) {
            fprintf(stderr, "stress_engine_mesh: external send %u: %d\n", i, rc);
            return fail("external send failed");
        }
    }
    /* sending phase, time-boxed */
    uint64_t deadline = t0 + (uint64_t)opt.seconds * 1000000000ull;
    while (atomic_load_explicit(&g_done_actors, memory_order_acquire) < opt.actors && now_ns() < deadline)
        sleep_ms(10);
    bool boxed = atomic_load(&g_done_actors) < opt.actors;
    atomic_store(&g_stop_sending, true);
    /* every actor ends at its next tick; then all sends are counted */
    uint64_t end = now_ns() + 120ull * 1000000000ull;
    while (atomic_load_explicit(&g_done_actors, memory_order_acquire) < opt.actors && now_ns() < end)
        sleep_ms(10);
    if (atomic_load(&g_done_actors) < opt.actors) {
        fprintf(stderr, "stress_engine_mesh: %llu of %u actors finished their last tick in 120 s\n",
                (unsigned long long)atomic_load(&g_done_actors), opt.actors);
        return fail("actors stopped making progress (a lost TICK or a hang)");
    }
    uint64_t sent = atomic_load(&g_sent);
    while (atomic_load(&g_received) < sent && now_ns() < end)
        sleep_ms(10);
    uint64_t t1 = now_ns();
    ax_engine_stop_when_idle(eng);
    if ((rc = ax_engine_wait(eng)) != 0)
        fprintf(stderr, "stress_engine_mesh: ax_engine_wait: %d\n", rc);

    ax_worker_stats_t st;
    ax_engine_stats(eng, &st);
    uint64_t handled = st.msgs_local + st.msgs_remote + st.msgs_external;
    uint64_t received = atomic_load(&g_received), ticks = atomic_load(&g_ticks);
    double secs = (double)(t1 - t0) / 1e9;
    printf("stress_engine_mesh: %s: sent %llu received %llu in %.2f s (%.0f msgs/s); handled %llu "
           "(local %llu remote %llu external %llu); ring_full %llu overflow_hwm %llu parks %llu "
           "dead %llu dropped %llu\n",
           boxed ? "time box reached" : "all budgets sent", (unsigned long long)sent,
           (unsigned long long)received, secs, (double)received / secs, (unsigned long long)handled,
           (unsigned long long)st.msgs_local, (unsigned long long)st.msgs_remote,
           (unsigned long long)st.msgs_external, (unsigned long long)st.ring_full,
           (unsigned long long)st.overflow_hwm, (unsigned long long)st.parks,
           (unsigned long long)st.dead_letters, (unsigned long long)st.dropped_at_stop);

    int bad = 0;
    if (atomic_load(&g_err_send)) {
        fprintf(stderr, "stress_engine_mesh: %llu sends failed, first with %d\n",
                (unsigned long long)atomic_load(&g_err_send), atomic_load(&g_first_send_rc));
        bad = 1;
    }
    if (atomic_load(&g_err_order)) {
        uint64_t fe = atomic_load(&g_first_err);
        size_t pair = (size_t)(fe >> 32);
        fprintf(stderr, "stress_engine_mesh: %llu messages out of per-pair order; first: pair %zu "
                "(actor %zu -> actor %u) got seq %llu\n", (unsigned long long)atomic_load(&g_err_order),
                pair, pair / opt.peers, g_peers[pair], (unsigned long long)(fe & 0xffffffffu));
        bad = 1;
    }
    if (atomic_load(&g_err_sum) || atomic_load(&g_err_route) || atomic_load(&g_err_from) ||
        atomic_load(&g_err_type)) {
        fprintf(stderr, "stress_engine_mesh: corrupt payloads %llu, misrouted %llu, wrong from %llu, "
                "unexpected types %llu\n", (unsigned long long)atomic_load(&g_err_sum),
                (unsigned long long)atomic_load(&g_err_route), (unsigned long long)atomic_load(&g_err_from),
                (unsigned long long)atomic_load(&g_err_type));
        bad = 1;
    }
    size_t short_pairs = 0, long_pairs = 0;
    for (size_t p = 0; p < npairs; p++) {
        short_pairs += g_expect_seq[p] < g_sent_seq[p];
        long_pairs += g_expect_seq[p] > g_sent_seq[p];
    }
    if (short_pairs || long_pairs || received != sent) {
        fprintf(stderr, "stress_engine_mesh: %zu pairs lost messages, %zu pairs got more than sent; "
                "sent %llu received %llu\n", short_pairs, long_pairs, (unsigned long long)sent,
                (unsigned long long)received);
        bad = 1;
    }
    uint64_t want_handled = sent + ticks + opt.actors;
    if (handled != want_handled) {
        fprintf(stderr, "stress_engine_mesh: the engine counts %llu messages handled, the actors "
                "saw %llu (data %llu + ticks %llu + %u starts)\n", (unsigned long long)handled,
                (unsigned long long)want_handled, (unsigned long long)sent, (unsigned long long)ticks,
                opt.actors);
        bad = 1;
    }
    if (st.dead_letters || st.dropped_at_stop) {
        fprintf(stderr, "stress_engine_mesh: %llu dead letters and %llu dropped at stop where none "
                "were expected\n", (unsigned long long)st.dead_letters, (unsigned long long)st.dropped_at_stop);
        bad = 1;
    }
    if (nw > 1 && opt.ring_slots <= 8 && st.ring_full == 0) {
        fprintf(stderr, "stress_engine_mesh: no ring ever filled: the overflow path was not exercised\n");
        bad = 1;
    }
    ax_engine_destroy(eng);
    free(g_refs);
    free(g_peers);
    free(g_sent_seq);
    free(g_expect_seq);
    if (bad)
        return fail("see above");
    printf("stress_engine_mesh: PASS\n");
    return 0;
}
