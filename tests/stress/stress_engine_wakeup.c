/* tests/stress/stress_engine_wakeup.c - workers park between bursts; a lost
 * wakeup hangs a round, and the per-round timed wait turns that into a
 * failure naming the seed, the round and the counters.  Public API only.
 *
 * Phases (the time box is split between them):
 *   1. 2 pinned workers, spin_us < 0 (park at once when idle)
 *   2. 2 pinned workers, spin_us = 3 (park right after a short spin: the
 *      window between "spin ended" and "asleep" is hit often)
 *   3. 8 unpinned workers on a synthetic topology (oversubscribed: they
 *      must park, never spin)
 *   4. the same with the doorbell on (scheduler.doorbell: rings go to
 *      sleep, senders ring on the transition, rings are made on first use)
 *   5. 64 unpinned workers (doorbell on by default at that count)
 * Each round is either a burst of external sends from this thread to
 * random actors, or a few cross-worker ping-pong chains started from
 * outside, each hop going to an actor on another worker.  Between rounds
 * the test sleeps 0-5 ms so every worker goes idle and parks.
 *
 * Threading: actors only touch atomics here; the main thread waits on them
 * with a deadline.
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

enum { T_EXT = 1, T_HOP = 2 };
#define PER_WORKER   4
#define MAX_ACTORS   (64 * PER_WORKER)
#define ROUND_WAIT_S 20u /* a healthy round takes milliseconds */

static uint64_t g_seed;
static uint32_t g_seconds = 20;
static char g_rerun[256];

static ax_ref_t g_refs[MAX_ACTORS];
static uint32_t g_nactors, g_nworkers;
static _Atomic uint64_t g_handled, g_chains_done, g_hops, g_errors;
static _Atomic uint64_t g_round; /* for the watchdog message */
static const char *volatile g_phase = "setup";

/* Hop payload: remaining hops, and a per-chain random walk state. */
static void actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == T_EXT) {
        atomic_fetch_add_explicit(&g_handled, 1, memory_order_release);
        return;
    }
    uint64_t p[2];
    if (m->type != T_HOP || ax_msg_len(m) != sizeof p) {
        atomic_fetch_add(&g_errors, 1);
        return;
    }
    memcpy(p, ax_msg_data(m), sizeof p);
    atomic_fetch_add_explicit(&g_hops, 1, memory_order_relaxed);
    if (p[0] == 0) {
        atomic_fetch_add_explicit(&g_chains_done, 1, memory_order_release);
        return;
    }
    p[0]--;
    p[1] = mix(p[1]);
    /* the next hop lives on another worker: every hop crosses */
    uint32_t me = ax_worker_id(ctx);
    uint32_t w = (me + 1 + (uint32_t)(p[1] % (g_nworkers - 1))) % g_nworkers;
    uint32_t i = w * PER_WORKER + (uint32_t)((p[1] >> 32) % PER_WORKER);
    if (ax_send(ctx, g_refs[i], T_HOP, p, sizeof p) != 0)
        atomic_fetch_add(&g_errors, 1);
}

static void watchdog(int sig)
{
    (void)sig;
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "stress_engine_wakeup: FAIL: watchdog: phase %s round %llu still running: a lost "
                     "wakeup or a hang in stop; %s\n", g_phase,
                     (unsigned long long)atomic_load(&g_round), g_rerun);
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n);
        (void)w;
    }
    _exit(2);
}

static bool wait_for(_Atomic uint64_t *v, uint64_t want)
{
    uint64_t end = now_ns() + ROUND_WAIT_S * 1000000000ull;
    while (atomic_load_explicit(v, memory_order_acquire) < want) {
        if (now_ns() > end)
            return false;
        sleep_us(50);
    }
    return true;
}

static void print_stats(ax_engine_t *e)
{
    for (uint32_t w = 0; w < g_nworkers; w++) {
        ax_worker_stats_t st;
        if (ax_engine_worker_stats(e, w, &st, NULL) == 0)
            fprintf(stderr, "  worker %u: handled local %llu remote %llu external %llu, parks %llu "
                    "wakes_sent %llu\n", w, (unsigned long long)st.msgs_local,
                    (unsigned long long)st.msgs_remote, (unsigned long long)st.msgs_external,
                    (unsigned long long)st.parks, (unsigned long long)st.wakes_sent);
    }
}

/* Returns 0 or 1 (failed; reported). */
static int run_phase(const char *name, uint32_t workers, const char *synthetic, int32_t spin_us,
                     uint32_t doorbell, double seconds, uint64_t *rng)
{
    g_phase = name;
    atomic_store(&g_handled, 0);
    atomic_store(&g_chains_done, 0);
    atomic_store(&g_hops, 0);
    ax_config_t cfg;
    ax_config_init(&cfg);
    test_cfg_workers(&cfg, workers); /* unpinned when the process has fewer cores */
    cfg.spin_us = spin_us;
    cfg.doorbell = doorbell;
    cfg.arena_bytes = (workers > 8 ? 2u : 8u) << 20;
    cfg.max_actors = 1024;
    if (synthetic) {
        snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "%s", synthetic);
        cfg.oversubscribe = true;
    }
    ax_engine_t *e = NULL;
    int rc = ax_engine_create(&cfg, &e);
    if (rc != 0) {
        fprintf(stderr, "stress_engine_wakeup: %s: ax_engine_create: %d: %s; %s\n", name, rc,
                ax_engine_last_error(), g_rerun);
        return 1;
    }
    g_nworkers = ax_engine_workers(e);
    g_nactors = g_nworkers * PER_WORKER;
    for (uint32_t i = 0; i < g_nactors; i++) {
        ax_spawn_opts_t so = { .size = sizeof so, .where = AX_ON_WORKER, .worker = i / PER_WORKER };
        if ((rc = ax_engine_spawn(e, actor, 16, &so, &g_refs[i])) != 0) {
            fprintf(stderr, "stress_engine_wakeup: %s: spawn: %d\n", name, rc);
            ax_engine_destroy(e);
            return 1;
        }
    }
    if ((rc = ax_engine_start(e)) != 0) {
        fprintf(stderr, "stress_engine_wakeup: %s: start: %d\n", name, rc);
        ax_engine_destroy(e);
        return 1;
    }
    uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    uint64_t want_handled = 0, want_chains = 0, rounds = 0, max_round_us = 0;
    int bad = 0;
    while (now_ns() < deadline && !bad) {
        atomic_store(&g_round, rounds);
        *rng = mix(*rng);
        uint64_t r = *rng, t0 = now_ns();
        bool ok;
        const char *what;
        if (r % 2 == 0) {
            what = "external burst";
            uint32_t k = 1 + (uint32_t)((r >> 8) % 64);
            for (uint32_t i = 0; i < k; i++) {
                uint64_t v = i;
                uint32_t to = (uint32_t)(mix(r + i) % g_nactors);
                if ((rc = ax_engine_send(e, g_refs[to], T_EXT, &v, sizeof v)) != 0) {
                    fprintf(stderr, "stress_engine_wakeup: ax_engine_send: %d\n", rc);
                    bad = 1;
                }
            }
            want_handled += k;
            ok = wait_for(&g_handled, want_handled);
        } else {
            what = "ping-pong chains";
            uint32_t chains = 1 + (uint32_t)((r >> 8) % 4);
            for (uint32_t c = 0; c < chains; c++) {
                uint64_t p[2] = { 1 + (mix(r ^ c) % 200), mix(r + c) };
                uint32_t to = (uint32_t)(p[1] % g_nactors);
                if ((rc = ax_engine_send(e, g_refs[to], T_HOP, p, sizeof p)) != 0) {
                    fprintf(stderr, "stress_engine_wakeup: ax_engine_send: %d\n", rc);
                    bad = 1;
                }
            }
            want_chains += chains;
            ok = wait_for(&g_chains_done, want_chains);
        }
        uint64_t us = (now_ns() - t0) / 1000;
        if (us > max_round_us)
            max_round_us = us;
        if (!ok) {
            fprintf(stderr, "stress_engine_wakeup: FAIL: %s: round %llu (%s) did not finish in %u s: "
                    "external handled %llu of %llu, chains done %llu of %llu, hops %llu: a lost "
                    "wakeup; %s\n", name, (unsigned long long)rounds, what, ROUND_WAIT_S,
                    (unsigned long long)atomic_load(&g_handled), (unsigned long long)want_handled,
                    (unsigned long long)atomic_load(&g_chains_done), (unsigned long long)want_chains,
                    (unsigned long long)atomic_load(&g_hops), g_rerun);
            print_stats(e);
            bad = 1;
            break;
        }
        rounds++;
        sleep_us((unsigned)((r >> 40) % 5000)); /* let every worker go idle and park */
    }
    ax_engine_stop_when_idle(e);
    if ((rc = ax_engine_wait(e)) != 0) {
        fprintf(stderr, "stress_engine_wakeup: %s: wait: %d\n", name, rc);
        bad = 1;
    }
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    printf("stress_engine_wakeup: %s: %llu rounds, slowest %llu us; parks %llu wakes_sent %llu "
           "parked %.1f ms\n", name, (unsigned long long)rounds, (unsigned long long)max_round_us,
           (unsigned long long)st.parks, (unsigned long long)st.wakes_sent, (double)st.parked_ns / 1e6);
    if (!bad && st.parks == 0) {
        fprintf(stderr, "stress_engine_wakeup: FAIL: %s: no worker ever parked: the test did not "
                "exercise the wakeup path; %s\n", name, g_rerun);
        bad = 1;
    }
    if (!bad && atomic_load(&g_errors)) {
        fprintf(stderr, "stress_engine_wakeup: FAIL: %s: %llu send errors or bad messages; %s\n", name,
                (unsigned long long)atomic_load(&g_errors), g_rerun);
        bad = 1;
    }
    uint64_t handled = st.msgs_local + st.msgs_remote + st.msgs_external;
    if (!bad && handled != want_handled + atomic_load(&g_hops)) {
        fprintf(stderr, "stress_engine_wakeup: FAIL: %s: engine handled %llu, actors saw %llu; %s\n",
                name, (unsigned long long)handled,
                (unsigned long long)(want_handled + atomic_load(&g_hops)), g_rerun);
        bad = 1;
    }
    ax_engine_destroy(e);
    return bad;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct option lo[] = { { "seed", 1, 0, 's' }, { "seconds", 1, 0, 't' }, { 0, 0, 0, 0 } };
    g_seed = mix(now_ns() ^ (uint64_t)getpid()) % 1000000000u;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 's')
            g_seed = strtoull(optarg, NULL, 0);
        else if (c == 't')
            g_seconds = (uint32_t)strtoul(optarg, NULL, 0);
        else {
            fprintf(stderr, "usage: %s [--seed N] [--seconds T]\n", argv[0]);
            return 2;
        }
    }
    snprintf(g_rerun, sizeof g_rerun, "rerun: stress_engine_wakeup --seed %llu --seconds %u",
             (unsigned long long)g_seed, g_seconds);
    printf("stress_engine_wakeup: seed %llu (%s)\n", (unsigned long long)g_seed, g_rerun);
    signal(SIGALRM, watchdog);
    alarm(g_seconds + 5 * ROUND_WAIT_S + 60);
    uint64_t rng = mix(g_seed);
    double fifth = (double)g_seconds / 5.0;
    /* With one core the two workers run unpinned, and unpinned workers never
     * spin: both phases then park at once, still across two workers. */
    bool pinned = test_pinnable_workers() >= 2;
    int bad = run_phase(pinned ? "2 pinned workers, no spin" : "2 unpinned workers (1 core), no spin",
                        2, NULL, -1, AX_DOORBELL_AUTO, fifth, &rng);
    if (!bad)
        bad = run_phase(pinned ? "2 pinned workers, 3 us spin"
                               : "2 unpinned workers (1 core), 3 us spin asked",
                        2, NULL, 3, AX_DOORBELL_AUTO, fifth, &rng);
    if (!bad)
        bad = run_phase("8 oversubscribed workers", 8, "pack:2 numa:2 l3:2 core:8 pu:2", 0,
                        AX_DOORBELL_OFF, fifth, &rng);
    if (!bad)
        bad = run_phase("8 oversubscribed workers, doorbell on", 8,
                        "pack:2 numa:2 l3:2 core:8 pu:2", 0, AX_DOORBELL_ON, fifth, &rng);
    if (!bad)
        bad = run_phase("64 oversubscribed workers (doorbell)", 64,
                        "pack:2 numa:2 l3:2 core:8 pu:2", 0, AX_DOORBELL_AUTO, fifth, &rng);
    if (bad)
        return 1;
    printf("stress_engine_wakeup: PASS\n");
    return 0;
}
