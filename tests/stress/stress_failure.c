/* tests/stress/stress_failure.c - many injected failures with monitors
 * across workers: every DOWN arrives exactly once, every restart in place
 * reaches a zeroed incarnation, no monitor record leaks, and actors that
 * never fail keep per-pair order throughout.  Public API only.
 *
 * One supervisor per worker, each with --children restartable children
 * spread over all workers (mostly on other workers than the supervisor),
 * spawned with AX_SPAWN_F_MONITOR.  A supervisor keeps one interaction in
 * flight per child: WORK(action) where action is chosen from the seed:
 *   ok    the child answers PONG;
 *   fail  the child calls ax_fail(code);
 *   stop  the child calls ax_stop_self;
 *   kill  the supervisor calls ax_kill instead of sending WORK.
 * A DOWN must carry the monitor id the supervisor holds for that child, and
 * the reason of the action it injected; a second DOWN for the same
 * incarnation, one with a stale id or one for a child not expected to stop
 * is an error.  The supervisor then restarts the child in place
 * (ax_restart with AX_RESTART_F_MONITOR) and sends the next WORK at once:
 * per-pair order puts it behind the restart.  A child checks at init that
 * its state was zeroed.
 *
 * Beside them, --pairs sender/receiver pairs on different workers stream
 * sequence numbers (window-controlled by ACKs); the receiver checks each is
 * the next one.
 *
 * Stops after --failures injected failures or --seconds (0: no time bound),
 * whichever comes first; then every child is left alive, the engine goes
 * quiet, and the checks run: failures == DOWNs == restarts, no order error,
 * and each worker's 32-byte arena class (monitor records) holds exactly what
 * it held before the storm.  The 1,000,000-failure run:
 *   stress_failure --failures 1000000 --seconds 0
 *
 * Threading: a supervisor's table is written only by that supervisor;
 * counters shared with main are atomics.
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
#include <unistd.h>

#include "axon/axon.h"
#include "axon/failure.h"
#include "test_util.h"

enum { T_GO = 1, T_WORK, T_PONG, T_DATA, T_ACK, T_TICK };
enum { A_OK = 0, A_FAIL, A_STOP, A_KILL };
#define MAGIC 0x5157a7e1u
#define WINDOW 64u

static struct {
    uint64_t seed, failures;
    uint32_t workers, children, pairs, seconds;
    char synthetic[AX_CONFIG_STR_MAX];
} opt = {0, 200000, 2, 16, 8, 20, ""};

static char g_rerun[512];
static _Atomic bool g_stop;
static _Atomic uint64_t g_injected, g_downs, g_restarts, g_errors, g_pongs, g_quiet, g_inits;
static _Atomic uint64_t g_data, g_order_errors, g_senders_done;
static _Atomic uint64_t g_first_error; /* a code for the first error seen */

static void error(uint64_t code)
{
    uint64_t z = 0;
    atomic_compare_exchange_strong(&g_first_error, &z, code);
    atomic_fetch_add(&g_errors, 1);
}

/* ---- children ------------------------------------------------------------------------ */

typedef struct child {
    uint32_t magic;
    uint32_t msgs;
} child_t;

static void child_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    child_t *c = state;
    (void)ctx, (void)arg, (void)len;
    if (c->magic || c->msgs)
        error(1); /* a restart must zero the state */
    c->magic = MAGIC;
    atomic_fetch_add_explicit(&g_inits, 1, memory_order_relaxed);
}

static void child(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    child_t *c = state;
    if (c->magic != MAGIC)
        error(2);
    c->msgs++;
    if (m->type != T_WORK) {
        error(3);
        return;
    }
    switch (m->payload.u64[0]) {
    case A_OK:
        if (ax_send_u64(ctx, ax_sender(ctx), T_PONG, 0) != 0)
            error(4);
        break;
    case A_FAIL:
        ax_fail(ctx, 42, "injected");
        break;
    case A_STOP:
        ax_stop_self(ctx);
        break;
    default:
        error(5);
    }
}

/* ---- supervisors ------------------------------------------------------------------------ */

typedef struct kid {
    ax_ref_t ref;
    uint64_t mon;
    uint32_t expect; /* the reason kind its pending action ends with; UINT32_MAX: none */
    bool quiet;
} kid_t;

typedef struct sup {
    uint32_t idx;
    uint64_t rng;
    kid_t *kids; /* malloc'ed by main before start; freed by main */
} sup_t;

static kid_t *g_kids; /* workers * children */

static uint32_t find_kid(sup_t *s, ax_ref_t r)
{
    for (uint32_t i = 0; i < opt.children; i++)
        if (s->kids[i].ref == r)
            return i;
    return UINT32_MAX;
}

/* Send the child its next action (or leave it alone once stopping). */
static void next_action(ax_ctx_t *ctx, sup_t *s, kid_t *k)
{
    if (atomic_load_explicit(&g_stop, memory_order_relaxed) ||
        atomic_load_explicit(&g_injected, memory_order_relaxed) >= opt.failures) {
        if (!k->quiet) {
            k->quiet = true;
            atomic_fetch_add(&g_quiet, 1);
        }
        return;
    }
    s->rng = mix(s->rng);
    uint32_t a = (uint32_t)(s->rng % 8);
    a = a < 3 ? A_OK : a < 5 ? A_FAIL : a < 7 ? A_STOP : A_KILL;
    int rc;
    if (a == A_KILL) {
        k->expect = AX_REASON_KILLED;
        rc = ax_kill(ctx, k->ref);
    } else {
        k->expect = a == A_OK ? UINT32_MAX : a == A_FAIL ? AX_REASON_FAILED : AX_REASON_NORMAL;
        rc = ax_send_u64(ctx, k->ref, T_WORK, a);
    }
    if (rc != 0)
        error(10);
    if (a != A_OK)
        atomic_fetch_add_explicit(&g_injected, 1, memory_order_relaxed);
}

static void sup(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    sup_t *s = state;
    if (m->type == T_GO) {
        for (uint32_t i = 0; i < opt.children; i++)
            next_action(ctx, s, &s->kids[i]);
        return;
    }
    if (m->type == T_PONG) {
        uint32_t i = find_kid(s, ax_sender(ctx));
        if (i == UINT32_MAX || s->kids[i].expect != UINT32_MAX) {
            error(11);
            return;
        }
        atomic_fetch_add_explicit(&g_pongs, 1, memory_order_relaxed);
        next_action(ctx, s, &s->kids[i]);
        return;
    }
    if (m->type != AX_TYPE_DOWN) {
        error(12);
        return;
    }
    ax_down_t d;
    if (ax_down_decode(m, &d) != 0) {
        error(13);
        return;
    }
    uint32_t i = find_kid(s, d.target);
    if (i == UINT32_MAX) {
        error(14);
        return;
    }
    kid_t *k = &s->kids[i];
    if (d.monitor != k->mon || k->expect == UINT32_MAX) {
        error(15); /* stale id, or a second DOWN for one stop */
        return;
    }
    if (d.reason.kind != k->expect || (k->expect == AX_REASON_FAILED && d.reason.code != 42) ||
        (k->expect == AX_REASON_KILLED && d.reason.peer != ax_self(ctx))) {
        error(16);
        return;
    }
    atomic_fetch_add_explicit(&g_downs, 1, memory_order_relaxed);
    k->expect = UINT32_MAX;
    k->mon = 0;
    if (ax_restart(ctx, k->ref, AX_RESTART_F_MONITOR, &k->mon) != 0) {
        error(17);
        return;
    }
    atomic_fetch_add_explicit(&g_restarts, 1, memory_order_relaxed);
    next_action(ctx, s, k);
}

static void sup_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    sup_t *s = state;
    (void)len;
    memcpy(s, arg, sizeof *s);
    /* Spawn the children, monitored from before their init. */
    for (uint32_t i = 0; i < opt.children; i++) {
        kid_t *k = &s->kids[i];
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER,
                             .worker = (s->idx + 1 + i) % opt.workers, .init = child_init,
                             .flags = AX_SPAWN_F_RESTARTABLE | AX_SPAWN_F_MONITOR,
                             .monitor = &k->mon};
        k->expect = UINT32_MAX;
        if (ax_spawn(ctx, child, sizeof(child_t), &o, &k->ref) != 0)
            error(20);
    }
}

/* ---- survivors: per-pair order under the storm ------------------------------------------ */

typedef struct sender {
    ax_ref_t to;
    uint64_t next, acked;
    bool done;
} sender_t;

typedef struct receiver {
    uint64_t expect;
} receiver_t;

static void sender_pump(ax_ctx_t *ctx, sender_t *s)
{
    if (atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        if (!s->done) {
            s->done = true;
            atomic_fetch_add(&g_senders_done, 1);
        }
        return;
    }
    while (s->next - s->acked < WINDOW) {
        if (ax_send_u64(ctx, s->to, T_DATA, s->next) != 0) {
            error(30);
            return;
        }
        s->next++;
    }
}

static void sender(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    sender_t *s = state;
    if (m->type == T_GO)
        memcpy(&s->to, ax_msg_data(m), sizeof s->to);
    else if (m->type == T_ACK && m->payload.u64[0] > s->acked)
        s->acked = m->payload.u64[0];
    sender_pump(ctx, s);
    /* A window that stays full (no ACK yet) needs no tick: the ACK comes. */
    if (m->type == T_GO && !s->done && s->next - s->acked < WINDOW)
        ax_send_u64(ctx, ax_self(ctx), T_TICK, 0);
}

static void receiver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    receiver_t *r = state;
    if (m->type != T_DATA)
        return;
    if (m->payload.u64[0] != r->expect)
        atomic_fetch_add(&g_order_errors, 1);
    r->expect = m->payload.u64[0] + 1;
    atomic_fetch_add_explicit(&g_data, 1, memory_order_relaxed);
    if (r->expect % (WINDOW / 4) == 0 && ax_send_u64(ctx, ax_sender(ctx), T_ACK, r->expect) != 0)
        error(31);
}

/* ---- main -------------------------------------------------------------------------------- */

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "stress_failure: watchdog: no progress; a lost DOWN, restart or "
                              "ACK (see the rerun line above)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

static int fail(const char *what)
{
    fprintf(stderr, "stress_failure: FAIL: %s\n  %s\n", what, g_rerun);
    return 1;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--seed N] [--workers N] [--synthetic TOPO] [--children N] "
                    "[--pairs N] [--failures N] [--seconds N (0: no bound)]\n", argv0);
    exit(2);
}

/* Records (32 bytes) in use per worker, summed. */
static uint64_t records_in_use(ax_engine_t *e)
{
    uint64_t n = 0;
    for (uint32_t w = 0; w < opt.workers; w++) {
        ax_arena_class_stats_t cs[64];
        int k = ax_engine_arena_classes(e, w, cs, 64);
        for (int c = 0; c < k && c < 64; c++)
            if (cs[c].block_bytes == 32)
                n += cs[c].in_use;
    }
    return n;
}

/* Wait until the engine has been idle (every counter still) for 200 ms, so
 * the workers published their arena figures. */
static void settle(void)
{
    uint64_t last = ~0ull;
    for (int i = 0; i < 200; i++) {
        sleep_us(100000);
        uint64_t now = atomic_load(&g_data) + atomic_load(&g_downs) + atomic_load(&g_pongs);
        if (now == last)
            break;
        last = now;
    }
    sleep_us(200000);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct option lo[] = {
        {"seed", 1, 0, 's'},     {"workers", 1, 0, 'w'}, {"synthetic", 1, 0, 'y'},
        {"children", 1, 0, 'c'}, {"pairs", 1, 0, 'p'},   {"failures", 1, 0, 'f'},
        {"seconds", 1, 0, 't'},  {0, 0, 0, 0},
    };
    opt.seed = mix(now_ns() ^ (uint64_t)getpid()) % 1000000000u;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 's': opt.seed = strtoull(optarg, NULL, 0); break;
        case 'w': opt.workers = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'y': snprintf(opt.synthetic, sizeof opt.synthetic, "%s", optarg); break;
        case 'c': opt.children = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'p': opt.pairs = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'f': opt.failures = strtoull(optarg, NULL, 0); break;
        case 't': opt.seconds = (uint32_t)strtoul(optarg, NULL, 0); break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || opt.workers < 1 || opt.children < 1 || opt.children > 4096)
        usage(argv[0]);
    snprintf(g_rerun, sizeof g_rerun,
             "rerun: stress_failure --seed %llu --workers %u%s%s%s --children %u --pairs %u "
             "--failures %llu --seconds %u",
             (unsigned long long)opt.seed, opt.workers, opt.synthetic[0] ? " --synthetic '" : "",
             opt.synthetic, opt.synthetic[0] ? "'" : "", opt.children, opt.pairs,
             (unsigned long long)opt.failures, opt.seconds);
    printf("stress_failure: seed %llu (%s)\n", (unsigned long long)opt.seed, g_rerun);
    signal(SIGALRM, watchdog);

    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = opt.workers;
    cfg.oversubscribe = true; /* 2 workers on one CPU (taskset -c 0) run unpinned */
    if (opt.synthetic[0])
        snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "%s", opt.synthetic);
    cfg.arena_bytes = 32u << 20;
    cfg.max_actors = 65536;
    ax_engine_t *e = NULL;
    if (ax_engine_create(&cfg, &e) != 0) {
        fprintf(stderr, "stress_failure: ax_engine_create: %s\n", ax_engine_last_error());
        return 1;
    }
    g_kids = calloc((size_t)opt.workers * opt.children, sizeof *g_kids);
    ax_ref_t *sups = calloc(opt.workers, sizeof *sups);
    if (!g_kids || !sups)
        return fail("out of memory");
    for (uint32_t w = 0; w < opt.workers; w++) {
        sup_t s = {.idx = w, .rng = mix(opt.seed ^ ((uint64_t)w << 20)) | 1,
                   .kids = &g_kids[(size_t)w * opt.children]};
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = w,
                             .init = sup_init, .arg = &s, .arg_len = sizeof s};
        if (ax_engine_spawn(e, sup, sizeof(sup_t), &o, &sups[w]) != 0)
            return fail("spawning a supervisor");
    }
    ax_ref_t *pairs = calloc((size_t)opt.pairs * 2, sizeof *pairs);
    if (opt.pairs && !pairs)
        return fail("out of memory");
    for (uint32_t p = 0; p < opt.pairs; p++) {
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = p % opt.workers};
        ax_spawn_opts_t q = {.size = sizeof q, .where = AX_ON_WORKER,
                             .worker = (p + 1) % opt.workers};
        if (ax_engine_spawn(e, sender, sizeof(sender_t), &o, &pairs[2 * p]) != 0 ||
            ax_engine_spawn(e, receiver, sizeof(receiver_t), &q, &pairs[2 * p + 1]) != 0)
            return fail("spawning a pair");
    }
    if (ax_engine_start(e) != 0)
        return fail("ax_engine_start");
    alarm(60);
    uint64_t want_inits = (uint64_t)opt.workers * opt.children;
    while (atomic_load(&g_inits) < want_inits)
        sleep_us(1000);
    settle();
    uint64_t recs0 = records_in_use(e);

    for (uint32_t p = 0; p < opt.pairs; p++)
        ax_engine_send(e, pairs[2 * p], T_GO, &pairs[2 * p + 1], sizeof(ax_ref_t));
    for (uint32_t w = 0; w < opt.workers; w++)
        ax_engine_send(e, sups[w], T_GO, NULL, 0);

    uint64_t t0 = now_ns(), last = 0;
    for (;;) {
        sleep_us(100000);
        uint64_t inj = atomic_load(&g_injected), downs = atomic_load(&g_downs);
        if (inj != last) {
            alarm(60); /* progress */
            last = inj;
        }
        if (atomic_load(&g_errors))
            break;
        if (inj >= opt.failures ||
            (opt.seconds && now_ns() - t0 >= (uint64_t)opt.seconds * 1000000000u))
            break;
        (void)downs;
    }
    atomic_store(&g_stop, true);
    uint64_t nkids = (uint64_t)opt.workers * opt.children;
    while (!atomic_load(&g_errors) &&
           (atomic_load(&g_quiet) < nkids || atomic_load(&g_senders_done) < opt.pairs))
        sleep_us(1000);
    settle();
    uint64_t recs1 = records_in_use(e);
    double secs = (double)(now_ns() - t0) / 1e9;
    ax_engine_stop_when_idle(e);
    ax_engine_wait(e);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    ax_engine_destroy(e);

    uint64_t inj = atomic_load(&g_injected), downs = atomic_load(&g_downs);
    printf("stress_failure: %llu failures injected in %.1f s (%.0f/s) on %u workers, %llu DOWNs, "
           "%llu restarts, %llu pongs, %llu survivor messages; records %llu -> %llu; "
           "io_cancelled %llu, downs_filtered %llu\n",
           (unsigned long long)inj, secs, (double)inj / secs, opt.workers,
           (unsigned long long)downs, (unsigned long long)atomic_load(&g_restarts),
           (unsigned long long)atomic_load(&g_pongs), (unsigned long long)atomic_load(&g_data),
           (unsigned long long)recs0, (unsigned long long)recs1,
           (unsigned long long)st.io_cancelled, (unsigned long long)st.downs_filtered);
    free(g_kids);
    free(sups);
    free(pairs);
    if (atomic_load(&g_errors)) {
        char b[64];
        snprintf(b, sizeof b, "%llu errors, first code %llu",
                 (unsigned long long)atomic_load(&g_errors),
                 (unsigned long long)atomic_load(&g_first_error));
        return fail(b);
    }
    if (downs != inj)
        return fail("DOWNs received differ from failures injected");
    if (atomic_load(&g_restarts) != downs)
        return fail("restarts differ from DOWNs");
    if (atomic_load(&g_order_errors))
        return fail("a survivor pair saw a message out of order");
    if (st.downs_sent != downs || st.downs_filtered != 0)
        return fail("the engine sent or filtered DOWNs nobody asked for");
    if (st.actors_restarted != downs)
        return fail("engine restart count differs");
    if (recs1 != recs0)
        return fail("monitor records leaked (32-byte arena class in use changed)");
    if (inj == 0 || atomic_load(&g_data) == 0)
        return fail("nothing happened");
    printf("stress_failure: PASS\n");
    return 0;
}
