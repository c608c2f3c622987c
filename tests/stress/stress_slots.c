/* tests/stress/stress_slots.c - slot reuse under churn: every worker spawns
 * and stops local actors in bursts (its private free-slot cache, spilled to
 * the shared stack when full and at the end of each turn, refilled from it
 * in batches), spawns actors on the next worker (remote claims on that
 * worker's stack), and an outside thread spawns onto random workers
 * (external claims), all at once, on a small actor table.  Public API only.
 *
 * Live actors per worker stay far below the table (at most a burst of local
 * children, REMOTE_CAP remote ones and EXT_CAP external ones, plus what the
 * owner's caches hold), so a spawn that fails with -ENOMEM means slots were
 * lost or hidden.  At the end: every spawn that succeeded ran its fini once,
 * no message became a dead letter, no actor is left.  Races show in the
 * TSan build, double use of a slot as a wrong generation (dead letters) or
 * in ASan.
 *
 * Threading: behaviours touch only atomics; the outside thread uses
 * ax_engine_spawn/ax_engine_send; the main thread checks after
 * ax_engine_wait.
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
#include <unistd.h>

#include "axon/axon.h"
#include "test_util.h"

enum { T_GO = 1, T_STOP };
#define WORKERS 3u
#define TABLE 1024u     /* actor slots per worker */
#define BURST_MAX 96u   /* local children per burst */
#define REMOTE_CAP 64u  /* remote children alive per target worker at most */
#define EXT_CAP 32u     /* outside children alive at most */

static uint64_t g_seed;
static uint32_t g_seconds = 10;
static char g_rerun[200];
static _Atomic uint64_t g_spawned, g_fini, g_fail, g_rounds;
static _Atomic int g_first_rc;
static _Atomic uint64_t g_remote_live[WORKERS], g_ext_live;
static atomic_bool g_stop;

static void note_fail(int rc)
{
    int zero = 0;
    atomic_compare_exchange_strong(&g_first_rc, &zero, rc);
    atomic_fetch_add(&g_fail, 1);
}

typedef struct kid {
    uint32_t kind; /* 0 local, 1 remote (target worker + 1 in `target`), 2 outside */
    uint32_t target;
} kid_t;

static void kid_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    memcpy(state, arg, len);
}

static void kid_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    kid_t *k = state;
    if (k->kind == 1)
        atomic_fetch_sub(&g_remote_live[k->target], 1);
    else if (k->kind == 2)
        atomic_fetch_sub(&g_ext_live, 1);
    atomic_fetch_add(&g_fini, 1);
}

static void kid(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == T_STOP)
        ax_stop_self(ctx);
}

typedef struct churner {
    uint64_t rng;
} churner_t;

static void churner(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    churner_t *s = state;
    if (m->type != T_GO || atomic_load_explicit(&g_stop, memory_order_relaxed))
        return;
    if (!s->rng)
        s->rng = mix(g_seed + ax_worker_id(ctx) + 1);
    s->rng = mix(s->rng);
    uint32_t self = ax_worker_id(ctx), next = (self + 1) % WORKERS;
    /* local burst: spawned and stopped before the next T_GO (FIFO) */
    uint32_t burst = 1 + (uint32_t)(s->rng % BURST_MAX);
    kid_t kl = {.kind = 0};
    ax_spawn_opts_t ol = {.size = sizeof ol, .where = AX_ON_SELF, .init = kid_init,
                          .fini = kid_fini, .arg = &kl, .arg_len = sizeof kl};
    for (uint32_t i = 0; i < burst; i++) {
        ax_ref_t r;
        int rc = ax_spawn(ctx, kid, sizeof(kid_t), &ol, &r);
        if (rc) {
            note_fail(rc);
            return;
        }
        atomic_fetch_add(&g_spawned, 1);
        /* some stop at once, some after the rest of the burst */
        if ((rc = ax_send_u64(ctx, r, T_STOP, 0)) != 0) {
            note_fail(rc);
            return;
        }
    }
    /* remote: a few on the next worker, bounded by the ones alive there */
    kid_t kr = {.kind = 1, .target = next};
    ax_spawn_opts_t orm = {.size = sizeof orm, .where = AX_ON_WORKER, .worker = next,
                           .init = kid_init, .fini = kid_fini, .arg = &kr, .arg_len = sizeof kr};
    for (uint32_t i = 0; i < 8 && atomic_load(&g_remote_live[next]) < REMOTE_CAP; i++) {
        ax_ref_t r;
        atomic_fetch_add(&g_remote_live[next], 1);
        int rc = ax_spawn(ctx, kid, sizeof(kid_t), &orm, &r);
        if (rc) {
            atomic_fetch_sub(&g_remote_live[next], 1);
            note_fail(rc);
            return;
        }
        atomic_fetch_add(&g_spawned, 1);
        if ((rc = ax_send_u64(ctx, r, T_STOP, 0)) != 0) {
            note_fail(rc);
            return;
        }
    }
    atomic_fetch_add(&g_rounds, 1);
    int rc = ax_send_u64(ctx, ax_self(ctx), T_GO, 0);
    if (rc)
        note_fail(rc);
}

static void *outside(void *arg)
{
    ax_engine_t *e = arg;
    uint64_t rng = mix(g_seed ^ 0x5eed);
    kid_t kx = {.kind = 2};
    while (!atomic_load(&g_stop)) {
        if (atomic_load(&g_ext_live) >= EXT_CAP) {
            sched_yield();
            continue;
        }
        rng = mix(rng);
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER,
                             .worker = (uint32_t)(rng % WORKERS), .init = kid_init,
                             .fini = kid_fini, .arg = &kx, .arg_len = sizeof kx};
        ax_ref_t r;
        atomic_fetch_add(&g_ext_live, 1);
        int rc = ax_engine_spawn(e, kid, sizeof(kid_t), &o, &r);
        if (rc) {
            atomic_fetch_sub(&g_ext_live, 1);
            note_fail(rc);
            break;
        }
        atomic_fetch_add(&g_spawned, 1);
        if ((rc = ax_engine_send(e, r, T_STOP, NULL, 0)) != 0) {
            note_fail(rc);
            break;
        }
    }
    return NULL;
}

static void watchdog(int sig)
{
    (void)sig;
    char buf[300];
    int n = snprintf(buf, sizeof buf, "stress_slots: FAIL: watchdog: still running; %s\n", g_rerun);
    if (n > 0 && write(2, buf, (size_t)n) < 0)
        _exit(3);
    _exit(3);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct option lo[] = {{"seed", 1, 0, 's'}, {"seconds", 1, 0, 't'}, {0, 0, 0, 0}};
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
    snprintf(g_rerun, sizeof g_rerun, "rerun: stress_slots --seed %llu --seconds %u",
             (unsigned long long)g_seed, g_seconds);
    printf("stress_slots: seed %llu (%s)\n", (unsigned long long)g_seed, g_rerun);
    signal(SIGALRM, watchdog);
    alarm(g_seconds + 120);

    ax_config_t cfg;
    ax_config_init(&cfg);
    snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "pack:1 core:%u pu:1", WORKERS);
    cfg.oversubscribe = true;
    cfg.workers = WORKERS;
    cfg.arena_bytes = 8u << 20;
    cfg.max_actors = TABLE;
    ax_engine_t *e = NULL;
    if (ax_engine_create(&cfg, &e) != 0) {
        fprintf(stderr, "stress_slots: FAIL: ax_engine_create: %s\n", ax_engine_last_error());
        return 1;
    }
    ax_ref_t ch[WORKERS];
    for (uint32_t w = 0; w < WORKERS; w++) {
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = w};
        if (ax_engine_spawn(e, churner, sizeof(churner_t), &o, &ch[w]) != 0) {
            fprintf(stderr, "stress_slots: FAIL: spawning churner %u\n", w);
            return 1;
        }
    }
    if (ax_engine_start(e) != 0) {
        fprintf(stderr, "stress_slots: FAIL: ax_engine_start\n");
        return 1;
    }
    for (uint32_t w = 0; w < WORKERS; w++)
        ax_engine_send(e, ch[w], T_GO, NULL, 0);
    pthread_t th;
    pthread_create(&th, NULL, outside, e);
    uint64_t end = now_ns() + (uint64_t)g_seconds * 1000000000ull;
    while (now_ns() < end && !atomic_load(&g_fail))
        sleep_us(10000);
    atomic_store(&g_stop, true);
    pthread_join(th, NULL);
    ax_engine_stop_when_idle(e);
    int wrc = ax_engine_wait(e);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    ax_engine_destroy(e);
    uint64_t spawned = atomic_load(&g_spawned), fini = atomic_load(&g_fini);
    printf("stress_slots: %llu spawns in %llu rounds on a table of %u slots per worker\n",
           (unsigned long long)spawned, (unsigned long long)atomic_load(&g_rounds), TABLE);
    int bad = 0;
    if (atomic_load(&g_fail)) {
        fprintf(stderr, "stress_slots: FAIL: %llu spawns or sends failed, first with %d (-ENOMEM "
                "means freed slots were lost or hidden from a spawner)\n",
                (unsigned long long)atomic_load(&g_fail), atomic_load(&g_first_rc));
        bad = 1;
    }
    if (wrc != 0 || fini != spawned || st.actors_live != 0 || st.dead_letters != 0) {
        fprintf(stderr, "stress_slots: FAIL: wait %d, %llu fini for %llu spawns, %llu actors left, "
                "%llu dead letters\n", wrc, (unsigned long long)fini, (unsigned long long)spawned,
                (unsigned long long)st.actors_live, (unsigned long long)st.dead_letters);
        bad = 1;
    }
    if (bad) {
        fprintf(stderr, "stress_slots: %s\n", g_rerun);
        return 1;
    }
    printf("stress_slots: PASS\n");
    return 0;
}
