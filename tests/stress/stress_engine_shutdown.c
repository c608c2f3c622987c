/* tests/stress/stress_engine_shutdown.c - stop an engine while its actors
 * flood each other and a foreign thread floods it from outside.  Public
 * API only.
 *
 * Each iteration: 64 actors; every message handled sends one or two more
 * (two while fewer than a cap are in flight), some as blobs, so the load
 * never dies down by itself.  After a random 10-150 ms the engine is
 * stopped, either by this thread or by a behaviour (ax_engine_stop from
 * inside).  Then:
 *   - ax_engine_wait returns (a SIGALRM watchdog fails the run if not);
 *   - nothing is silent: handled + dropped_at_stop == sent, where sent
 *     counts every send that returned 0 (from actors and from outside);
 *   - the engine's handled counters equal what the behaviours saw;
 *   - every actor's fini ran exactly once;
 *   - sends refused after stop say -ESHUTDOWN, never anything else.
 * Leaks and use-after-free show in the ASan build (blobs in flight at stop
 * must be freed by the engine).
 *
 * Threading: actors touch only atomics; fini counts are atomics; the main
 * thread reads everything after ax_engine_wait.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
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

enum { T_FLOOD = 1, T_BLOB = 2, T_STOPNOW = 3 };
#define NACTORS      64
#define INFLIGHT_CAP 20000u
#define STOP_WAIT_S  60u

static uint64_t g_seed;
static uint32_t g_seconds = 20, g_max_iters = 40;
static char g_rerun[256];
static _Atomic uint64_t g_iter;

static ax_ref_t g_refs[NACTORS];
static _Atomic uint64_t g_sent, g_handled, g_refused, g_bad_rc, g_ext_sent, g_fini, g_blob_fail, g_bad_msg;
static _Atomic int g_first_bad_rc;
static atomic_bool g_ext_stop;

static void note_rc(int rc)
{
    if (rc == 0) {
        atomic_fetch_add_explicit(&g_sent, 1, memory_order_relaxed);
    } else if (rc == -ESHUTDOWN) {
        atomic_fetch_add_explicit(&g_refused, 1, memory_order_relaxed);
    } else {
        int zero = 0;
        atomic_compare_exchange_strong(&g_first_bad_rc, &zero, rc);
        atomic_fetch_add(&g_bad_rc, 1);
    }
}

typedef struct st {
    uint64_t rng;
} st_t;

static void fin(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add_explicit(&g_fini, 1, memory_order_relaxed);
}

static void flooder(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    st_t *s = state;
    atomic_fetch_add_explicit(&g_handled, 1, memory_order_relaxed);
    if (m->type == T_STOPNOW) {
        ax_engine_stop(ax_ctx_engine(ctx)); /* stop from inside a behaviour */
        return;
    }
    if (m->type == T_BLOB) {
        const unsigned char *b = ax_msg_data(m);
        size_t len = ax_msg_len(m);
        if (len < 1 || b[0] != (unsigned char)len || b[len - 1] != (unsigned char)len)
            atomic_fetch_add(&g_bad_msg, 1);
    }
    if (s->rng == 0)
        s->rng = mix(g_seed ^ ax_self(ctx)) | 1;
    uint64_t sent = atomic_load_explicit(&g_sent, memory_order_relaxed);
    uint64_t handled = atomic_load_explicit(&g_handled, memory_order_relaxed);
    int n = sent > handled && sent - handled > INFLIGHT_CAP ? 1 : 2;
    for (int k = 0; k < n; k++) {
        s->rng = mix(s->rng);
        ax_ref_t to = g_refs[s->rng % NACTORS];
        if ((s->rng >> 20) % 8 == 0) {
            size_t len = 16 + (size_t)((s->rng >> 32) % 600);
            unsigned char *b = ax_blob_alloc(ctx, len);
            if (!b) {
                atomic_fetch_add(&g_blob_fail, 1);
                continue;
            }
            memset(b, (unsigned char)len, len);
            int rc = ax_send_blob(ctx, to, T_BLOB, b, len);
            if (rc != 0)
                ax_blob_free(ctx, b); /* still ours on error */
            note_rc(rc);
        } else {
            note_rc(ax_send_u64(ctx, to, T_FLOOD, s->rng));
        }
    }
}

typedef struct ext_arg {
    ax_engine_t *eng;
    uint64_t rng;
} ext_arg_t;

/* Floods from outside until the engine refuses (-ESHUTDOWN) or told to quit. */
static void *ext_thread(void *p)
{
    ext_arg_t *a = p;
    while (!atomic_load(&g_ext_stop)) {
        a->rng = mix(a->rng);
        int rc = ax_engine_send(a->eng, g_refs[a->rng % NACTORS], T_FLOOD, &a->rng, sizeof a->rng);
        if (rc == 0) {
            atomic_fetch_add(&g_ext_sent, 1);
            atomic_fetch_add(&g_sent, 1);
        } else if (rc == -ESHUTDOWN) {
            atomic_fetch_add(&g_refused, 1);
            break;
        } else if (rc == -ENOMEM || rc == -EAGAIN) {
            sleep_us(100); /* inbox full: back off (counted by nothing: nothing was sent) */
        } else {
            note_rc(rc);
            break;
        }
        if ((a->rng & 0xff) == 0)
            sleep_us(50);
    }
    return NULL;
}

static void watchdog(int sig)
{
    (void)sig;
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "stress_engine_shutdown: FAIL: watchdog: iteration %llu: the engine did not stop "
                     "within %u s of ax_engine_stop under load (sent %llu, handled %llu); %s\n",
                     (unsigned long long)atomic_load(&g_iter), STOP_WAIT_S,
                     (unsigned long long)atomic_load(&g_sent), (unsigned long long)atomic_load(&g_handled),
                     g_rerun);
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n);
        (void)w;
    }
    _exit(2);
}

static int iteration(uint64_t it, uint64_t r)
{
    atomic_store(&g_iter, it);
    atomic_store(&g_sent, 0);
    atomic_store(&g_handled, 0);
    atomic_store(&g_refused, 0);
    atomic_store(&g_ext_sent, 0);
    atomic_store(&g_fini, 0);
    atomic_store(&g_ext_stop, false);
    bool synth = r % 3 == 0;
    bool tiny_rings = (r >> 4) % 2 == 0;
    bool stop_inside = (r >> 8) % 4 == 0;
    unsigned run_ms = 10 + (unsigned)((r >> 16) % 140);
    ax_config_t cfg;
    ax_config_init(&cfg);
    bool pinned = synth ? false : test_cfg_workers(&cfg, 2); /* unpinned on one core */
    cfg.workers = synth ? 8 : 2;
    cfg.arena_bytes = 32u << 20;
    cfg.max_actors = 1024;
    cfg.ring_slots = tiny_rings ? 8 : 0;
    if (synth) {
        snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "%s", "pack:2 numa:2 l3:2 core:8 pu:2");
        cfg.oversubscribe = true;
    }
    char desc[160];
    snprintf(desc, sizeof desc, "iteration %llu: %u %s workers, %s rings, stop after %u ms from %s",
             (unsigned long long)it, cfg.workers, synth ? "oversubscribed" : pinned ? "pinned" : "unpinned (1 core)",
             tiny_rings ? "8-slot" : "default", run_ms, stop_inside ? "a behaviour" : "the test thread");
    ax_engine_t *e = NULL;
    int rc = ax_engine_create(&cfg, &e);
    if (rc != 0) {
        fprintf(stderr, "stress_engine_shutdown: %s: create: %d: %s\n", desc, rc, ax_engine_last_error());
        return 1;
    }
    for (uint32_t i = 0; i < NACTORS; i++) {
        ax_spawn_opts_t so = { .size = sizeof so, .where = AX_ON_WORKER, .worker = i % cfg.workers,
                               .fini = fin };
        if ((rc = ax_engine_spawn(e, flooder, sizeof(st_t), &so, &g_refs[i])) != 0) {
            fprintf(stderr, "stress_engine_shutdown: %s: spawn: %d\n", desc, rc);
            ax_engine_destroy(e);
            return 1;
        }
    }
    if ((rc = ax_engine_start(e)) != 0) {
        fprintf(stderr, "stress_engine_shutdown: %s: start: %d\n", desc, rc);
        ax_engine_destroy(e);
        return 1;
    }
    for (uint32_t i = 0; i < NACTORS; i++) {
        uint64_t v = i;
        if (ax_engine_send(e, g_refs[i], T_FLOOD, &v, sizeof v) == 0) {
            atomic_fetch_add(&g_sent, 1);
            atomic_fetch_add(&g_ext_sent, 1);
        }
    }
    pthread_t th;
    ext_arg_t ea = { e, mix(r ^ 0xABCD) };
    if (pthread_create(&th, NULL, ext_thread, &ea) != 0) {
        fprintf(stderr, "stress_engine_shutdown: pthread_create failed\n");
        return 1;
    }
    sleep_us(run_ms * 1000u);
    alarm(STOP_WAIT_S);
    if (stop_inside) {
        uint64_t v = 0;
        rc = ax_engine_send(e, g_refs[r % NACTORS], T_STOPNOW, &v, sizeof v);
        if (rc == 0) {
            atomic_fetch_add(&g_sent, 1);
            atomic_fetch_add(&g_ext_sent, 1);
        } else {
            ax_engine_stop(e);
        }
    } else {
        ax_engine_stop(e);
    }
    rc = ax_engine_wait(e);
    alarm(0);
    atomic_store(&g_ext_stop, true);
    pthread_join(th, NULL);
    int bad = 0;
    if (rc != 0) {
        fprintf(stderr, "stress_engine_shutdown: %s: ax_engine_wait: %d\n", desc, rc);
        bad = 1;
    }
    /* after wait, sends from outside are refused */
    uint64_t v = 0;
    if ((rc = ax_engine_send(e, g_refs[0], T_FLOOD, &v, sizeof v)) != -ESHUTDOWN) {
        fprintf(stderr, "stress_engine_shutdown: %s: ax_engine_send after wait returned %d, expected "
                "-ESHUTDOWN\n", desc, rc);
        bad = 1;
        if (rc == 0)
            atomic_fetch_add(&g_sent, 1);
    }
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    uint64_t sent = atomic_load(&g_sent), handled = atomic_load(&g_handled);
    uint64_t eng_handled = st.msgs_local + st.msgs_remote + st.msgs_external;
    printf("stress_engine_shutdown: %s: sent %llu (external %llu), handled %llu, dropped_at_stop %llu, "
           "dead %llu, refused %llu, ring_full %llu\n", desc, (unsigned long long)sent,
           (unsigned long long)atomic_load(&g_ext_sent), (unsigned long long)handled,
           (unsigned long long)st.dropped_at_stop, (unsigned long long)st.dead_letters,
           (unsigned long long)atomic_load(&g_refused), (unsigned long long)st.ring_full);
    if (handled + st.dropped_at_stop != sent) {
        fprintf(stderr, "stress_engine_shutdown: FAIL: %s: handled %llu + dropped_at_stop %llu = %llu, "
                "but %llu sends succeeded: %lld messages unaccounted for (dead letters %llu)\n", desc,
                (unsigned long long)handled, (unsigned long long)st.dropped_at_stop,
                (unsigned long long)(handled + st.dropped_at_stop), (unsigned long long)sent,
                (long long)(sent - handled - st.dropped_at_stop), (unsigned long long)st.dead_letters);
        bad = 1;
    }
    if (eng_handled != handled) {
        fprintf(stderr, "stress_engine_shutdown: FAIL: %s: the engine counts %llu handled, the "
                "behaviours ran %llu times\n", desc, (unsigned long long)eng_handled,
                (unsigned long long)handled);
        bad = 1;
    }
    if (atomic_load(&g_fini) != NACTORS) {
        fprintf(stderr, "stress_engine_shutdown: FAIL: %s: fini ran %llu times for %u actors\n", desc,
                (unsigned long long)atomic_load(&g_fini), NACTORS);
        bad = 1;
    }
    if (atomic_load(&g_bad_rc) || atomic_load(&g_bad_msg) || atomic_load(&g_blob_fail)) {
        fprintf(stderr, "stress_engine_shutdown: FAIL: %s: %llu sends failed with an error other than "
                "-ESHUTDOWN (first %d), %llu corrupt blobs, %llu blob allocations failed\n", desc,
                (unsigned long long)atomic_load(&g_bad_rc), atomic_load(&g_first_bad_rc),
                (unsigned long long)atomic_load(&g_bad_msg), (unsigned long long)atomic_load(&g_blob_fail));
        bad = 1;
    }
    ax_engine_destroy(e);
    /* destroy must not run fini again */
    if (atomic_load(&g_fini) != NACTORS) {
        fprintf(stderr, "stress_engine_shutdown: FAIL: %s: after destroy fini has run %llu times for "
                "%u actors\n", desc, (unsigned long long)atomic_load(&g_fini), NACTORS);
        bad = 1;
    }
    return bad;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct option lo[] = { { "seed", 1, 0, 's' }, { "seconds", 1, 0, 't' },
                                        { "iterations", 1, 0, 'i' }, { 0, 0, 0, 0 } };
    g_seed = mix(now_ns() ^ (uint64_t)getpid()) % 1000000000u;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 's')
            g_seed = strtoull(optarg, NULL, 0);
        else if (c == 't')
            g_seconds = (uint32_t)strtoul(optarg, NULL, 0);
        else if (c == 'i')
            g_max_iters = (uint32_t)strtoul(optarg, NULL, 0);
        else {
            fprintf(stderr, "usage: %s [--seed N] [--seconds T] [--iterations N]\n", argv[0]);
            return 2;
        }
    }
    snprintf(g_rerun, sizeof g_rerun, "rerun: stress_engine_shutdown --seed %llu --seconds %u --iterations %u",
             (unsigned long long)g_seed, g_seconds, g_max_iters);
    printf("stress_engine_shutdown: seed %llu (%s)\n", (unsigned long long)g_seed, g_rerun);
    signal(SIGALRM, watchdog);
    uint64_t deadline = now_ns() + (uint64_t)g_seconds * 1000000000ull;
    uint64_t r = mix(g_seed);
    uint32_t it = 0;
    int bad = 0;
    for (; it < g_max_iters && now_ns() < deadline && !bad; it++) {
        r = mix(r);
        bad = iteration(it, r);
    }
    if (bad) {
        fprintf(stderr, "stress_engine_shutdown: FAIL at iteration %u; %s\n", it - 1, g_rerun);
        return 1;
    }
    printf("stress_engine_shutdown: PASS (%u iterations)\n", it);
    return 0;
}
