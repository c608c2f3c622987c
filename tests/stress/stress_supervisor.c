/* tests/stress/stress_supervisor.c - many injected failures under a
 * two-level supervision tree: every failure is heard exactly once (one DOWN,
 * one restart in place), no message to a restarted actor is lost or
 * reordered, nothing leaks.  Public API only (axon.h, failure.h,
 * supervisor.h).
 *
 * Tree: a root supervisor (one-for-one) on worker 0 with MIDS child
 * supervisors spread over the workers, each with LEAVES leaf children
 * spread over the workers.  Injectors (one per worker, up to 16) send random
 * leaves T_SEQ messages (a per-(injector, leaf) sequence) and, for a chosen
 * fraction, T_FAIL; a leaf answers T_FAIL with an ack and fails
 * (ax_fail).  Messages that reach a leaf while it is down are held and
 * delivered to its next incarnation, so the sequence each leaf sees from
 * each injector must have no gap, duplicate or reordering across any number
 * of restarts.  Each injector keeps at most WINDOW failures unacknowledged.
 *
 * Checks, after every injector got its last ack:
 *   - restarts (the mid supervisors' event hook, per leaf) == failures
 *     handled (per leaf): a lost DOWN leaves a leaf down for good (its held
 *     messages never arrive and this wait times out); a duplicated one
 *     shows as an extra restart;
 *   - every injected T_FAIL failed a leaf exactly once;
 *   - the engine's downs_sent equals the failures (monitors of leaves only);
 *   - each (injector, leaf) sequence arrived complete and in order;
 *   - after the root's shutdown, each leaf's fini ran once per incarnation
 *     and actors_live is the non-tree actors only; ASan/LSan see no leak.
 *
 * Threading: per-leaf counters are atomics written by the leaf's (or its
 * supervisor's) worker; g_seen[leaf][injector] is written only by the
 * leaf's worker (one actor runs on one worker, never concurrently).
 *
 * usage: stress_supervisor [--failures N] [--workers W] [--synthetic DESC]
 *                          [--seed S]
 *   W = 0: min(2, CPUs this process may use), pinned.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/failure.h"
#include "axon/supervisor.h"
#include "test_util.h"

enum { T_SEQ = 1, T_FAIL, T_ACK, T_GO, T_TICK };

#define MIDS 8u
#define LEAVES 16u
#define NLEAF (MIDS * LEAVES)
#define MAXINJ 16u
#define WINDOW 32u

static struct {
    uint64_t failures, seed;
    uint32_t workers;
    char synthetic[AX_CONFIG_STR_MAX];
} opt = {1000000, 0, 0, ""};

static ax_engine_t *g_eng;
static uint32_t g_ninj;
/* Leaf refs (stable across restarts), from the mid supervisors' STARTED
 * events; read by injectors only after main saw every leaf started. */
static _Atomic uint64_t g_leaf[NLEAF];
static _Atomic uint64_t g_started;   /* leaf first starts seen */
static _Atomic uint64_t g_fails[NLEAF], g_restarts[NLEAF], g_inits[NLEAF], g_finis[NLEAF];
static _Atomic uint64_t g_seen[NLEAF][MAXINJ]; /* last sequence from each injector */
static _Atomic uint64_t g_err_order, g_err_send, g_escalated, g_acks_done, g_first_err;
static _Atomic uint64_t g_root_downs, g_root, g_err_ref;
static _Atomic int g_first_send_rc;
static ax_reason_t g_root_reason;

static void send_error(int rc)
{
    int z = 0;
    atomic_compare_exchange_strong(&g_first_send_rc, &z, rc);
    atomic_fetch_add(&g_err_send, 1);
}

/* ---- leaves ------------------------------------------------------------------------ */

typedef struct leaf {
    uint32_t id;
} leaf_t;

static void leaf_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    leaf_t *l = state;
    (void)len;
    memcpy(&l->id, arg, sizeof l->id);
    if (atomic_load_explicit(&g_leaf[l->id], memory_order_relaxed) != ax_self(ctx) &&
        atomic_load_explicit(&g_inits[l->id], memory_order_relaxed) > 0)
        atomic_fetch_add(&g_err_ref, 1); /* restart in place keeps the reference */
    atomic_fetch_add_explicit(&g_inits[l->id], 1, memory_order_relaxed);
}

static void leaf_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    atomic_fetch_add_explicit(&g_finis[((leaf_t *)state)->id], 1, memory_order_relaxed);
}

static void leaf(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    leaf_t *l = state;
    uint32_t inj = (uint32_t)m->payload.u64[0];
    uint64_t seq = m->payload.u64[1];
    if (inj >= MAXINJ)
        return;
    uint64_t want = atomic_load_explicit(&g_seen[l->id][inj], memory_order_relaxed) + 1;
    if (seq != want) {
        uint64_t z = 0;
        atomic_compare_exchange_strong(&g_first_err, &z, ((uint64_t)l->id << 40) | ((uint64_t)inj << 32) | (seq & 0xFFFFFFFFu));
        atomic_fetch_add(&g_err_order, 1);
    }
    atomic_store_explicit(&g_seen[l->id][inj], seq, memory_order_relaxed);
    if (m->type == T_FAIL) {
        atomic_fetch_add_explicit(&g_fails[l->id], 1, memory_order_relaxed);
        int rc = ax_send_u64(ctx, ax_sender(ctx), T_ACK, l->id);
        if (rc < 0)
            send_error(rc);
        ax_fail(ctx, 3, "injected");
    }
}

static void mid_event(void *user, const ax_sup_event_t *ev)
{
    uint32_t base = *(const uint32_t *)user;
    if (ev->kind == AX_SUP_EV_STARTED) {
        atomic_store_explicit(&g_leaf[base + ev->index], ev->child, memory_order_relaxed);
        atomic_fetch_add(&g_started, 1); /* seq_cst: after the ref, for main */
    }
    else if (ev->kind == AX_SUP_EV_RESTARTED)
        atomic_fetch_add_explicit(&g_restarts[base + ev->index], 1, memory_order_relaxed);
    else if (ev->kind == AX_SUP_EV_ESCALATED)
        atomic_fetch_add(&g_escalated, 1);
}

/* ---- injectors -------------------------------------------------------------------------- */

typedef struct injector {
    uint32_t idx;
    uint64_t rng, fails_left, outstanding;
    uint64_t next_seq[NLEAF];
    bool tick_pending;
} injector_t;

static void inj_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    injector_t *s = state;
    memcpy(&s->idx, arg, len);
    s->rng = mix(opt.seed ^ ((uint64_t)s->idx << 20)) | 1;
    s->fails_left = opt.failures / g_ninj + (s->idx < opt.failures % g_ninj);
}

static uint64_t rnd(injector_t *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

/* Send up to WINDOW outstanding failures, each after 0..3 plain sequenced
 * messages to random leaves; re-tick while there is room and work. */
static void inj_pump(ax_ctx_t *ctx, injector_t *s)
{
    for (uint32_t k = 0; k < 8 && s->fails_left && s->outstanding < WINDOW; k++) {
        uint64_t r = rnd(s);
        uint32_t extra = (uint32_t)(r & 3);
        for (uint32_t e = 0; e <= extra; e++) {
            uint32_t L = (uint32_t)((r >> (8 + 7 * e)) % NLEAF);
            bool fail = e == extra;
            uint64_t p[2] = {s->idx, ++s->next_seq[L]};
            ax_ref_t to = atomic_load_explicit(&g_leaf[L], memory_order_relaxed);
            int rc = ax_send(ctx, to, fail ? T_FAIL : T_SEQ, p, sizeof p);
            if (rc < 0) {
                send_error(rc);
                s->next_seq[L]--;
                return;
            }
        }
        s->fails_left--;
        s->outstanding++;
    }
    if (s->fails_left && s->outstanding < WINDOW && !s->tick_pending) {
        s->tick_pending = true;
        if (ax_send(ctx, ax_self(ctx), T_TICK, NULL, 0) < 0)
            atomic_fetch_add(&g_err_send, 1);
    }
}

static void injector(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    injector_t *s = state;
    switch (m->type) {
    case T_GO:
        inj_pump(ctx, s);
        break;
    case T_TICK:
        s->tick_pending = false;
        inj_pump(ctx, s);
        break;
    case T_ACK:
        s->outstanding--;
        if (!s->fails_left && !s->outstanding)
            atomic_fetch_add(&g_acks_done, 1);
        else
            inj_pump(ctx, s);
        break;
    default:
        break;
    }
}

/* ---- the watcher of the root ---------------------------------------------------------------- */

typedef struct watcher {
    ax_ref_t root;
    uint64_t mon;
} watcher_t;

static const ax_sup_spec_t *g_root_spec;

static void watcher(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    watcher_t *w = state;
    if (m->type == T_GO) {
        ax_spawn_opts_t o = {.size = sizeof o, .flags = AX_SPAWN_F_MONITOR, .monitor = &w->mon};
        if (ax_sup_spawn(ctx, g_root_spec, &o, &w->root) < 0)
            atomic_fetch_add(&g_err_send, 1);
        atomic_store(&g_root, w->root);
    } else if (m->type == AX_TYPE_DOWN) {
        ax_down_t d;
        ax_down_decode(m, &d);
        g_root_reason = d.reason;
        atomic_fetch_add(&g_root_downs, 1); /* seq_cst: g_root_reason is visible */
    }
}

/* ---- main ------------------------------------------------------------------------------------ */

static int fail_check(const char *what, unsigned long long got, unsigned long long want)
{
    fprintf(stderr, "stress_supervisor: FAILED: %s: %llu, expected %llu (seed %llu)\n", what, got,
            want, (unsigned long long)opt.seed);
    return 1;
}

static bool wait_for(_Atomic uint64_t *v, uint64_t want, unsigned seconds)
{
    uint64_t end = now_ns() + (uint64_t)seconds * 1000000000u;
    while (atomic_load(v) < want) {
        if (now_ns() > end || atomic_load(&g_err_send)) /* a failed send stalls its injector */
            return false;
        sleep_us(1000);
    }
    return true;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"failures", 1, 0, 'f'}, {"workers", 1, 0, 'w'},
                                       {"synthetic", 1, 0, 'y'}, {"seed", 1, 0, 's'},
                                       {0, 0, 0, 0}};
    int c;
    opt.seed = mix(now_ns() ^ (uint64_t)getpid()) % 1000000000u;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'f': opt.failures = strtoull(optarg, NULL, 0); break;
        case 'w': opt.workers = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'y': snprintf(opt.synthetic, sizeof opt.synthetic, "%s", optarg); break;
        case 's': opt.seed = strtoull(optarg, NULL, 0); break;
        default:
            fprintf(stderr, "usage: %s [--failures N] [--workers W] [--synthetic DESC] [--seed S]\n",
                    argv[0]);
            return 2;
        }
    }
    ax_config_t cfg;
    ax_config_init(&cfg);
    if (opt.synthetic[0]) {
        snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "%s", opt.synthetic);
        cfg.oversubscribe = true;
        cfg.arena_bytes = 8u << 20;
    } else if (!opt.workers) {
        cpu_set_t set;
        opt.workers = 2;
        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < 2)
            opt.workers = 1; /* taskset -c 0 */
    }
    cfg.workers = opt.workers;
    cfg.max_actors = 4096;
    printf("stress_supervisor: seed %llu (rerun: stress_supervisor --failures %llu --workers %u%s%s%s "
           "--seed %llu)\n",
           (unsigned long long)opt.seed, (unsigned long long)opt.failures, opt.workers,
           opt.synthetic[0] ? " --synthetic '" : "", opt.synthetic, opt.synthetic[0] ? "'" : "",
           (unsigned long long)opt.seed);
    fflush(stdout);
    if (ax_engine_create(&cfg, &g_eng) < 0) {
        fprintf(stderr, "stress_supervisor: ax_engine_create: %s\n", ax_engine_last_error());
        return 1;
    }
    uint32_t nw = ax_engine_workers(g_eng);

    /* The tree's specs live until the end of main. */
    static uint32_t ids[NLEAF], bases[MIDS];
    static ax_child_spec_t leaves[MIDS][LEAVES], mids[MIDS];
    static ax_sup_spec_t mid_spec[MIDS], root_spec;
    for (uint32_t k = 0; k < MIDS; k++) {
        bases[k] = k * LEAVES;
        for (uint32_t j = 0; j < LEAVES; j++) {
            uint32_t id = k * LEAVES + j;
            ids[id] = id;
            leaves[k][j] = (ax_child_spec_t){
                .restart = AX_CHILD_PERMANENT, .name = "leaf", .fn = leaf,
                .state_size = sizeof(leaf_t), .init = leaf_init, .fini = leaf_fini,
                .arg = &ids[id], .arg_len = sizeof ids[id], .where = AX_ON_WORKER,
                .worker = (uint32_t)(mix(opt.seed + id) % nw)};
        }
        /* Failures are the point here: an intensity no rate reaches (4096
         * restarts of one mid's 16 leaves in 1 ms; checked: an escalation
         * fails the run).  32 KiB of history per mid. */
        mid_spec[k] = (ax_sup_spec_t){.strategy = AX_SUP_ONE_FOR_ONE, .intensity = 4096,
                                      .period_ms = 1, .nchildren = LEAVES, .children = leaves[k],
                                      .on_event = mid_event, .user = &bases[k]};
        mids[k] = (ax_child_spec_t){.restart = AX_CHILD_PERMANENT, .name = "mid",
                                    .sup = &mid_spec[k], .where = AX_ON_WORKER,
                                    .worker = k * nw / MIDS};
    }
    root_spec = (ax_sup_spec_t){.strategy = AX_SUP_ONE_FOR_ONE, .nchildren = MIDS, .children = mids};
    g_root_spec = &root_spec;

    ax_ref_t w, inj[MAXINJ];
    ax_spawn_opts_t on0 = {.size = sizeof on0, .where = AX_ON_WORKER, .worker = 0};
    g_ninj = nw < MAXINJ ? nw : MAXINJ;
    static uint32_t inj_ids[MAXINJ];
    int rc = ax_engine_spawn(g_eng, watcher, sizeof(watcher_t), &on0, &w);
    for (uint32_t i = 0; i < g_ninj && !rc; i++) {
        inj_ids[i] = i;
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = i * nw / g_ninj,
                             .init = inj_init, .arg = &inj_ids[i], .arg_len = sizeof inj_ids[i]};
        rc = ax_engine_spawn(g_eng, injector, sizeof(injector_t), &o, &inj[i]);
    }
    if (rc || ax_engine_start(g_eng) || ax_engine_send(g_eng, w, T_GO, NULL, 0)) {
        fprintf(stderr, "stress_supervisor: setup failed\n");
        return 1;
    }
    if (!wait_for(&g_started, NLEAF, 120))
        return fail_check("leaves started", atomic_load(&g_started), NLEAF);
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < g_ninj; i++)
        ax_engine_send(g_eng, inj[i], T_GO, NULL, 0);
    if (!wait_for(&g_acks_done, g_ninj, 3000))
        return fail_check("injectors done (a lost restart holds its messages forever)",
                          atomic_load(&g_acks_done), g_ninj);
    /* Every ack was sent by a leaf before it failed; wait for the restarts. */
    uint64_t fails = 0, restarts = 0, end = now_ns() + 120000000000ull;
    do {
        fails = restarts = 0;
        for (uint32_t i = 0; i < NLEAF; i++) {
            fails += atomic_load(&g_fails[i]);
            restarts += atomic_load(&g_restarts[i]);
        }
        if (restarts >= fails)
            break;
        sleep_us(1000);
    } while (now_ns() < end);
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("stress_supervisor: %llu failures and restarts in %.2f s on %u workers (%.0f per second)\n",
           (unsigned long long)fails, secs, nw, (double)fails / secs);
    int bad = 0;
    if (fails != opt.failures)
        bad |= fail_check("leaf failures", fails, opt.failures);
    for (uint32_t i = 0; i < NLEAF; i++) {
        uint64_t f = atomic_load(&g_fails[i]), r = atomic_load(&g_restarts[i]);
        if (f != r) {
            fprintf(stderr, "leaf %u: %llu failures, %llu restarts\n", i, (unsigned long long)f,
                    (unsigned long long)r);
            bad |= fail_check("restarts per leaf (a lost or duplicated DOWN)", r, f);
            break;
        }
    }
    if (atomic_load(&g_err_order))
        bad |= fail_check("per-pair order errors (first: leaf<<40|injector<<32|seq)",
                          atomic_load(&g_first_err), 0);
    if (atomic_load(&g_err_send)) {
        fprintf(stderr, "first send error: %s\n", strerror(-atomic_load(&g_first_send_rc)));
        bad |= fail_check("send errors", atomic_load(&g_err_send), 0);
    }
    if (atomic_load(&g_err_ref))
        bad |= fail_check("restarted leaves with a new reference", atomic_load(&g_err_ref), 0);
    if (atomic_load(&g_escalated))
        bad |= fail_check("escalations", atomic_load(&g_escalated), 0);
    /* A supervisor reports RESTARTED when it sends the restart request; the
     * engine counts the restart when the leaf's worker handles it, a moment
     * later: wait (bounded) for the last requests to land. */
    ax_worker_stats_t st;
    uint64_t settle = now_ns() + 30000000000ull;
    for (;;) {
        ax_engine_stats(g_eng, &st);
        if (st.actors_restarted >= fails || now_ns() > settle)
            break;
        sleep_us(1000);
    }
    if (st.downs_sent != fails)
        bad |= fail_check("DOWNs sent", st.downs_sent, fails);
    if (st.actors_restarted != fails)
        bad |= fail_check("actors restarted (engine)", st.actors_restarted, fails);

    /* Shut the tree down: every leaf's fini once per incarnation. */
    if (ax_engine_sup_shutdown(g_eng, atomic_load(&g_root)) < 0 || !wait_for(&g_root_downs, 1, 300))
        bad |= fail_check("root DOWN after its shutdown", atomic_load(&g_root_downs), 1);
    else if (g_root_reason.kind != AX_REASON_NORMAL)
        bad |= fail_check("root stop reason", g_root_reason.kind, AX_REASON_NORMAL);
    ax_engine_stats(g_eng, &st);
    if (st.actors_live != 1 + g_ninj) /* the watcher and the injectors */
        bad |= fail_check("actors live after the tree's shutdown", st.actors_live, 1 + g_ninj);
    ax_engine_stop(g_eng);
    ax_engine_wait(g_eng);
    for (uint32_t i = 0; i < NLEAF; i++) {
        uint64_t in = atomic_load(&g_inits[i]), fi = atomic_load(&g_finis[i]);
        if (in != atomic_load(&g_fails[i]) + 1 || fi != in) {
            fprintf(stderr, "leaf %u: %llu inits, %llu finis, %llu failures\n", i,
                    (unsigned long long)in, (unsigned long long)fi,
                    (unsigned long long)atomic_load(&g_fails[i]));
            bad |= fail_check("fini once per incarnation", fi, in);
            break;
        }
    }
    ax_engine_destroy(g_eng);
    if (!bad)
        printf("stress_supervisor: OK\n");
    return bad;
}
