/* examples/pingpong.c - two actors on two workers bounce a counter.
 *
 *   pingpong [ROUND_TRIPS]        (default 100000)
 *
 * The smallest complete axon program: make an engine, spawn two actors
 * before starting it, kick the game off with a message from outside, let a
 * behaviour stop the engine when the game is over, wait, read the result,
 * destroy.  Only the public API (axon/axon.h) is used.  AXON_* environment
 * variables tune the engine, e.g. AXON_SCHEDULER_SPIN_US=0.
 *
 * Threading: main() is the engine's creator; the behaviours run on the
 * worker threads.  The result struct is written by the pinger and read by
 * main() only after ax_engine_wait(), whose join orders the two.
 */
/* clock_gettime and CLOCK_MONOTONIC are POSIX, not ISO C: ask for them, so
 * the example builds with -std=c11 outside this tree. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "axon/axon.h"

enum { MSG_START = 1, MSG_PING = 2, MSG_PONG = 3 }; /* user types: below AX_TYPE_SYSTEM */

struct result {
    uint64_t round_trips;
    uint64_t ns;
    int error; /* first failed send, 0 if none */
};

/* The pinger's private state (zeroed by the engine, filled by its init). */
struct pinger {
    struct result *out;
    uint64_t want, done, t0;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* init runs on the pinger's worker before its first message; arg is a copy. */
static void pinger_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    (void)len;
    memcpy(state, arg, sizeof(struct pinger));
}

static void pinger(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    struct pinger *p = state;
    ax_ref_t peer;
    if (msg->type == MSG_START) {
        memcpy(&peer, ax_msg_data(msg), sizeof peer); /* main told us who to play with */
        p->t0 = now_ns();
    } else {
        peer = ax_sender(ctx); /* a PONG: answer whoever sent it */
        if (++p->done == p->want) {
            p->out->round_trips = p->done;
            p->out->ns = now_ns() - p->t0;
            ax_engine_stop(ax_ctx_engine(ctx)); /* a behaviour may stop its engine */
            return;
        }
    }
    int rc = ax_send_u64(ctx, peer, MSG_PING, p->done);
    if (rc != 0) {
        p->out->error = rc;
        ax_engine_stop(ax_ctx_engine(ctx));
    }
}

/* The ponger needs no state: it answers each PING with a PONG. */
static void ponger(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    (void)state;
    uint64_t v;
    memcpy(&v, ax_msg_data(msg), sizeof v);
    ax_send_u64(ctx, ax_sender(ctx), MSG_PONG, v);
}

int main(int argc, char **argv)
{
    uint64_t want = argc > 1 ? strtoull(argv[1], NULL, 0) : 100000;
    if (want == 0) {
        fprintf(stderr, "usage: %s [ROUND_TRIPS >= 1]\n", argv[0]);
        return 2;
    }

    /* Config: zero means default; the environment may override. */
    ax_config_t cfg;
    ax_config_error_t cerr;
    ax_config_init(&cfg);
    if (ax_config_apply_env(&cfg, NULL, &cerr) != 0) {
        fprintf(stderr, "pingpong: %s\n", cerr.message);
        return 1;
    }
    ax_engine_t *eng;
    int rc = ax_engine_create(&cfg, &eng);
    if (rc != 0) {
        fprintf(stderr, "pingpong: cannot create the engine (%s): %s\n", strerror(-rc),
                ax_engine_last_error());
        return 1;
    }

    /* One actor on the first worker and one on the last: every message
     * crosses between cores (on a 1-worker engine both share worker 0). */
    struct result res = { 0, 0, 0 };
    struct pinger init = { &res, want, 0, 0 };
    uint32_t last = ax_engine_workers(eng) - 1;
    ax_spawn_opts_t on_first = { .size = sizeof on_first, .where = AX_ON_WORKER, .worker = 0,
                                 .init = pinger_init, .arg = &init, .arg_len = sizeof init };
    ax_spawn_opts_t on_last = { .size = sizeof on_last, .where = AX_ON_WORKER, .worker = last };
    ax_ref_t a, b;
    if ((rc = ax_engine_spawn(eng, pinger, sizeof(struct pinger), &on_first, &a)) != 0 ||
        (rc = ax_engine_spawn(eng, ponger, 0, &on_last, &b)) != 0) {
        fprintf(stderr, "pingpong: spawn failed: %s\n", strerror(-rc));
        ax_engine_destroy(eng);
        return 1;
    }

    if ((rc = ax_engine_start(eng)) != 0 ||
        (rc = ax_engine_send(eng, a, MSG_START, &b, sizeof b)) != 0) {
        fprintf(stderr, "pingpong: start failed: %s\n", strerror(-rc));
        ax_engine_destroy(eng);
        return 1;
    }
    rc = ax_engine_wait(eng); /* until the pinger stops the engine */

    ax_worker_stats_t st;
    ax_engine_stats(eng, &st);
    ax_engine_destroy(eng);
    if (rc != 0 || res.error != 0 || res.round_trips != want) {
        fprintf(stderr, "pingpong: failed: wait %d, send error %d, %llu of %llu round trips\n", rc,
                res.error, (unsigned long long)res.round_trips, (unsigned long long)want);
        return 1;
    }
    printf("pingpong: %llu round trips between worker 0 and worker %u in %.3f ms "
           "(%.0f ns per round trip; %llu messages handled, %llu parks)\n",
           (unsigned long long)res.round_trips, last, (double)res.ns / 1e6,
           (double)res.ns / (double)res.round_trips,
           (unsigned long long)(st.msgs_local + st.msgs_remote + st.msgs_external),
           (unsigned long long)st.parks);
    return 0;
}
