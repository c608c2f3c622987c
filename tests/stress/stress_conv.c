/* tests/stress/stress_conv.c - requests under pressure: every continuation
 * must run exactly once, whatever the target does, and every outside call
 * must return exactly once, leaving nothing behind.  Public API only.
 *
 * Askers (spread over the workers) keep up to 8 requests outstanding to
 * random servers, with random timeouts of 1..40 ms; half of them watch
 * their targets (ax_request_watch).  A server, per request, by a hash of
 * its payload: answers at once (blob replies for some), holds it and
 * answers later (often after the timeout: a late reply), forwards it to
 * another server, answers with an error, ignores it (the timeout ends it),
 * stashes it and replays the stash on its next message, or stops (requests
 * queued behind become -ESRCH; a watched asker hears the DOWN).  Stopped
 * servers are replaced by their asker-side ref going stale, so later
 * requests to them are -ESRCH at once.  Outside threads meanwhile call
 * random servers with ax_engine_call and short timeouts, and now and then
 * with a no-timeout ax_engine_request they wait on briefly and free.
 *
 * A quarter of the requests have no timeout: they monitor their target
 * (request.h), so one a server ignores, holds or stashes forever completes
 * with -ESRCH when the servers are told to quit at the end of the asking
 * phase; the drain would hang if any did not.
 *
 * Each request carries a token (asker << 32 | seq); its continuation bumps
 * done[token].  At the end every issued token must have run exactly once,
 * and the counters must add up: requests = replies + timeouts + gone.
 *
 * Seeded and time-boxed (--seconds bounds the asking phase; the rest
 * drains within the longest timeout).  ASan/LSan catch leaked records,
 * stashes and futures; TSan the registry and the wakeups.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/request.h"
#include "test_util.h"

enum { T_GO = 1, T_ASK = 2, T_FWD = 3, T_BIG = 4, T_ANS = 5, T_QUIT = 6 };
#define ASKERS 16u
#define SERVERS 32u
#define WINDOW 8u
#define PER_ASKER (1u << 20)
#define CALLERS 4u

static struct {
    uint64_t seed;
    uint32_t workers, seconds;
    char synthetic[AX_CONFIG_STR_MAX];
} opt = { 0, 4, 10, "pack:2 numa:2 l3:2 core:8 pu:2" };

static ax_ref_t g_servers[SERVERS];
static uint8_t *g_done[ASKERS];          /* per token: continuation runs (written by its asker) */
static _Atomic uint64_t g_issued[ASKERS]; /* tokens issued */
static _Atomic uint64_t g_completed[ASKERS];
static atomic_bool g_stop;
static _Atomic uint64_t g_err, g_status[6], g_calls_ok, g_calls_timeout, g_calls_other;
static _Atomic uint64_t g_no_timeout, g_futures_freed_pending;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- servers ------------------------------------------------------------------------ */

typedef struct server {
    ax_req_t held[16];
    uint64_t held_token[16];
    uint32_t nheld;
    uint32_t index;
    uint32_t replay; /* messages still to come back from the stash */
    bool stashing;
} server_t;

static void server_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)len;
    memcpy(&((server_t *)state)->index, arg, sizeof(uint32_t));
    ax_stash_limit(ctx, 32);
}

static void answer(ax_ctx_t *ctx, ax_req_t req, uint64_t token, bool big)
{
    if (big) {
        uint64_t *b = ax_blob_alloc(ctx, 256);
        if (!b)
            return;
        b[0] = token;
        b[31] = ~token;
        if (ax_reply_blob_to(ctx, req, T_BIG, b, 256) != 0)
            ax_blob_free(ctx, b);
    } else {
        ax_reply_to(ctx, req, T_ANS, &token, sizeof token);
    }
}

static void server(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    server_t *s = state;
    uint64_t token;
    if (m->type == T_QUIT) { /* end of the asking phase: whatever it holds ends -ESRCH */
        ax_stop_self(ctx);
        return;
    }
    if (ax_msg_len(m) < sizeof token || !ax_msg_is_request(m))
        return;
    memcpy(&token, ax_msg_data(m), sizeof token);
    ax_req_t req = ax_request_of(m);
    if (s->replay) { /* replayed from the stash: answered now */
        s->replay--;
        answer(ctx, req, token, false);
        return;
    }
    if (s->stashing) { /* the previous messages stashed: replay right after this one */
        s->stashing = false;
        s->replay = ax_stash_count(ctx);
        ax_unstash_all(ctx);
    }
    /* Release held requests now and then (often after their timeout: late). */
    if (s->nheld && (mix(token) & 3) == 0) {
        for (uint32_t i = 0; i < s->nheld; i++)
            answer(ctx, s->held[i], s->held_token[i], false);
        s->nheld = 0;
    }
    if (m->type == T_FWD) { /* forwarded: always answered here */
        answer(ctx, req, token, false);
        return;
    }
    uint64_t r = mix(token ^ opt.seed) % 100;
    if (r < 55) {
        answer(ctx, req, token, (r & 7) == 0);
    } else if (r < 70) {
        if (s->nheld < 16) {
            s->held_token[s->nheld] = token;
            s->held[s->nheld++] = req;
        }
    } else if (r < 80) {
        ax_ref_t to = g_servers[mix(token) % SERVERS];
        if (ax_forward(ctx, to, req, T_FWD, &token, sizeof token) != 0)
            answer(ctx, req, token, false);
    } else if (r < 85) {
        ax_reply_error(ctx, req, -EPERM);
    } else if (r < 90) {
        /* ignore: the timeout ends it */
    } else if (r < 97) {
        if (ax_stash(ctx) == 0)
            s->stashing = true; /* answered when replayed (the stash keeps the request) */
        else
            answer(ctx, req, token, false);
    } else if (r < 98 && s->index % 4 == 1) {
        ax_stop_self(ctx); /* queued, held and stashed requests: -ESRCH / DOWN / timeout */
    } else {
        answer(ctx, req, token, false);
    }
}

/* ---- askers -------------------------------------------------------------------------- */

typedef struct asker {
    uint32_t id;
    uint32_t outstanding;
    uint64_t seq, rng;
    bool watch;
} asker_t;

static void ask(ax_ctx_t *ctx, asker_t *a);

static void on_done(ax_ctx_t *ctx, void *state, void *cont, int status, const ax_msg_t *reply)
{
    asker_t *a = state;
    uint64_t token;
    memcpy(&token, cont, sizeof token);
    uint64_t seq = token & 0xFFFFFFFFu;
    if ((token >> 32) != a->id || seq >= PER_ASKER) {
        atomic_fetch_add(&g_err, 1);
        return;
    }
    if (++g_done[a->id][seq] != 1)
        atomic_fetch_add(&g_err, 1); /* ran twice */
    if (status == 0) {
        uint64_t got = 0;
        if (reply->type == T_BIG && ax_msg_len(reply) == 256) {
            const uint64_t *b = ax_msg_data(reply);
            got = b[0] == ~b[31] ? b[0] : 0;
        } else if (reply->type == T_ANS && ax_msg_len(reply) == sizeof got) {
            memcpy(&got, ax_msg_data(reply), sizeof got);
        }
        if (got != token) /* a reply for another request (or a late one) */
            atomic_fetch_add(&g_err, 1);
        atomic_fetch_add(&g_status[0], 1);
    } else if (status == -ETIMEDOUT) {
        atomic_fetch_add(&g_status[1], 1);
    } else if (status == -ESRCH) {
        atomic_fetch_add(&g_status[2], 1);
    } else if (status == -EPERM) {
        atomic_fetch_add(&g_status[3], 1);
    } else {
        atomic_fetch_add(&g_status[4], 1);
        atomic_fetch_add(&g_err, 1);
    }
    a->outstanding--;
    atomic_fetch_add(&g_completed[a->id], 1);
    ask(ctx, a);
}

static void ask(ax_ctx_t *ctx, asker_t *a)
{
    while (a->outstanding < WINDOW && !atomic_load_explicit(&g_stop, memory_order_relaxed) &&
           a->seq < PER_ASKER) {
        a->rng = mix(a->rng);
        uint64_t token = ((uint64_t)a->id << 32) | a->seq;
        ax_ref_t to = g_servers[a->rng % SERVERS];
        uint64_t timeout = 1 + (a->rng >> 20) % 40;
        if (((a->rng >> 8) & 3) == 0)
            timeout = 0; /* watches its target: ends with a reply or the target's stop */
        int rc = ax_request(ctx, to, T_ASK, &token, sizeof token, timeout, on_done, &token,
                            sizeof token);
        if (rc != 0) {
            atomic_fetch_add(&g_err, 1);
            return;
        }
        if (!timeout)
            atomic_fetch_add(&g_no_timeout, 1);
        a->seq++;
        a->outstanding++;
        atomic_fetch_add(&g_issued[a->id], 1);
    }
}

static void asker(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    asker_t *a = state;
    if (m->type != T_GO)
        return;
    memcpy(&a->id, ax_msg_data(m), sizeof a->id);
    a->rng = mix(opt.seed ^ a->id) | 1;
    a->watch = a->id & 1;
    if (a->watch)
        ax_request_watch(ctx, true);
    ask(ctx, a);
}

/* ---- outside callers --------------------------------------------------------------------- */

typedef struct caller {
    ax_engine_t *e;
    uint64_t rng;
} caller_t;

static void *caller_main(void *arg)
{
    caller_t *c = arg;
    while (!atomic_load(&g_stop)) {
        c->rng = mix(c->rng);
        uint64_t token = c->rng & 0xFFFFFFFFFFull; /* any: servers echo it (or not) */
        uint64_t got = 0;
        if (((c->rng >> 8) & 7) == 0) { /* no timeout: wait a little, then let go */
            ax_future_t *f;
            if (ax_engine_request(c->e, g_servers[c->rng % SERVERS], T_ASK, &token, sizeof token,
                                  0, &f) != 0) {
                atomic_fetch_add(&g_err, 1);
                continue;
            }
            if (ax_future_wait(f, (c->rng >> 40) % 10) != 0)
                atomic_fetch_add(&g_futures_freed_pending, 1); /* its monitor goes too */
            ax_future_free(f);
            continue;
        }
        int rc = ax_engine_call(c->e, g_servers[c->rng % SERVERS], T_ASK, &token, sizeof token,
                                1 + (c->rng >> 40) % 20, NULL, &got, sizeof got, NULL);
        if (rc == 0 || rc == -EMSGSIZE)
            atomic_fetch_add(&g_calls_ok, 1);
        else if (rc == -ETIMEDOUT)
            atomic_fetch_add(&g_calls_timeout, 1);
        else
            atomic_fetch_add(&g_calls_other, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "seed", 1, 0, 's' }, { "workers", 1, 0, 'w' }, { "seconds", 1, 0, 't' },
        { "synthetic", 1, 0, 'y' }, { 0, 0, 0, 0 },
    };
    opt.seed = mix(now_ns() ^ (uint64_t)getpid()) % 1000000000u;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 's': opt.seed = strtoull(optarg, NULL, 0); break;
        case 'w': opt.workers = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 't': opt.seconds = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'y': snprintf(opt.synthetic, sizeof opt.synthetic, "%s", optarg); break;
        default:
            fprintf(stderr, "usage: %s [--seed N] [--workers N] [--seconds T] [--synthetic D]\n",
                    argv[0]);
            return 2;
        }
    }
    printf("stress_conv: seed %llu (rerun: stress_conv --seed %llu --workers %u --seconds %u "
           "--synthetic '%s')\n",
           (unsigned long long)opt.seed, (unsigned long long)opt.seed, opt.workers, opt.seconds,
           opt.synthetic);
    ax_config_t cfg;
    ax_config_init(&cfg);
    snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "%s", opt.synthetic);
    cfg.oversubscribe = true;
    cfg.workers = opt.workers;
    cfg.arena_bytes = 64u << 20;
    ax_engine_t *e;
    if (ax_engine_create(&cfg, &e) != 0) {
        fprintf(stderr, "stress_conv: engine: %s\n", ax_engine_last_error());
        return 1;
    }
    for (uint32_t i = 0; i < ASKERS; i++)
        if (!(g_done[i] = calloc(PER_ASKER, 1)))
            return 1;
    ax_spawn_opts_t so = { .size = sizeof so, .where = AX_ON_ANY, .init = server_init,
                           .arg_len = sizeof(uint32_t) };
    for (uint32_t i = 0; i < SERVERS; i++) {
        so.arg = &i;
        if (ax_engine_spawn(e, server, sizeof(server_t), &so, &g_servers[i]) != 0)
            return 1;
    }
    ax_ref_t askers[ASKERS];
    ax_spawn_opts_t ao = { .size = sizeof ao, .where = AX_ON_ANY };
    for (uint32_t i = 0; i < ASKERS; i++)
        if (ax_engine_spawn(e, asker, sizeof(asker_t), &ao, &askers[i]) != 0)
            return 1;
    if (ax_engine_start(e) != 0)
        return 1;
    for (uint32_t i = 0; i < ASKERS; i++)
        ax_engine_send(e, askers[i], T_GO, &i, sizeof i);
    pthread_t th[CALLERS];
    caller_t cl[CALLERS];
    for (uint32_t i = 0; i < CALLERS; i++) {
        cl[i] = (caller_t){ e, mix(opt.seed + 1000 + i) | 1 };
        pthread_create(&th[i], NULL, caller_main, &cl[i]);
    }
    sleep_ms(opt.seconds * 1000u);
    atomic_store(&g_stop, true);
    for (uint32_t i = 0; i < CALLERS; i++)
        pthread_join(th[i], NULL);
    /* Servers quit (a stopped one's ref is stale: that send fails, fine):
     * no-timeout requests they ignored, hold or stashed end with -ESRCH. */
    for (uint32_t i = 0; i < SERVERS; i++)
        (void)ax_engine_send(e, g_servers[i], T_QUIT, NULL, 0);
    /* Drain: every outstanding request ends within its timeout (40 ms). */
    uint64_t end = now_ns() + 60ull * 1000000000u;
    for (;;) {
        uint64_t issued = 0, done = 0;
        for (uint32_t i = 0; i < ASKERS; i++) {
            issued += atomic_load(&g_issued[i]);
            done += atomic_load(&g_completed[i]);
        }
        if (issued == done)
            break;
        if (now_ns() > end) {
            fprintf(stderr, "stress_conv: %llu of %llu requests never completed (seed %llu)\n",
                    (unsigned long long)(issued - done), (unsigned long long)issued,
                    (unsigned long long)opt.seed);
            return 1;
        }
        sleep_ms(10);
    }
    ax_engine_stop_when_idle(e);
    ax_engine_wait(e);
    ax_conv_stats_t cs;
    ax_engine_conv_stats(e, &cs);
    ax_engine_destroy(e);

    uint64_t issued = 0, once = 0;
    for (uint32_t i = 0; i < ASKERS; i++) {
        uint64_t n = atomic_load(&g_issued[i]);
        issued += n;
        for (uint64_t s = 0; s < n; s++)
            once += g_done[i][s] == 1;
        for (uint64_t s = n; s < PER_ASKER; s++)
            if (g_done[i][s])
                atomic_fetch_add(&g_err, 1);
        free(g_done[i]);
    }
    printf("stress_conv: %llu requests: %llu replies, %llu timeouts, %llu gone, %llu errors "
           "replied; %llu late replies dropped; stash %llu (full %llu, dropped %llu); outside "
           "calls %llu ok, %llu timed out, %llu other, %llu late; %llu requests without a "
           "timeout; %llu outside futures freed pending\n",
           (unsigned long long)issued, (unsigned long long)atomic_load(&g_status[0]),
           (unsigned long long)atomic_load(&g_status[1]),
           (unsigned long long)atomic_load(&g_status[2]),
           (unsigned long long)atomic_load(&g_status[3]), (unsigned long long)cs.late_replies,
           (unsigned long long)cs.stashed, (unsigned long long)cs.stash_full,
           (unsigned long long)cs.stash_dropped, (unsigned long long)atomic_load(&g_calls_ok),
           (unsigned long long)atomic_load(&g_calls_timeout),
           (unsigned long long)atomic_load(&g_calls_other), (unsigned long long)cs.outside_late,
           (unsigned long long)atomic_load(&g_no_timeout),
           (unsigned long long)atomic_load(&g_futures_freed_pending));
    bool ok = atomic_load(&g_err) == 0 && once == issued && issued > 0 &&
              cs.requests == issued && cs.pending == 0 &&
              cs.replies + cs.timeouts + cs.target_gone + cs.cancelled == issued &&
              atomic_load(&g_status[1]) > 0 && cs.late_replies > 0 &&
              atomic_load(&g_no_timeout) > 0;
    if (!ok) {
        fprintf(stderr, "stress_conv: FAILED (seed %llu): errors %llu, exactly-once %llu of %llu, "
                        "engine requests %llu pending %llu replies %llu timeouts %llu gone %llu\n",
                (unsigned long long)opt.seed, (unsigned long long)atomic_load(&g_err),
                (unsigned long long)once, (unsigned long long)issued,
                (unsigned long long)cs.requests, (unsigned long long)cs.pending,
                (unsigned long long)cs.replies, (unsigned long long)cs.timeouts,
                (unsigned long long)cs.target_gone);
        return 1;
    }
    printf("stress_conv: ok\n");
    return 0;
}
