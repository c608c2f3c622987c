/* examples/pingpong.c - two actors on two workers bounce a counter, as
 * requests and replies of typed messages.
 *
 *   pingpong [ROUND_TRIPS]        (default 100000)
 *
 * The smallest complete axon program, written the idiomatic way: declare
 * the messages once (axon/typed.h), make an engine, spawn two actors before
 * starting it, kick the game off with a message from outside, ask with
 * ax_request and continue in the continuation when the answer comes (or the
 * timeout passes), let the last continuation stop the engine, wait, read the
 * result, destroy.  Only the public API is used.  AXON_* environment
 * variables tune the engine, e.g. AXON_SCHEDULER_SPIN_US=0.
 *
 * Threading: main() is the engine's creator; the behaviours and
 * continuations run on the worker threads.  The result struct is written by
 * the pinger and read by main() only after ax_engine_wait(), whose join
 * orders the two.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "axon/axon.h"
#include "axon/request.h"
#include "axon/typed.h"

/* The messages, declared once: name, type id (below AX_TYPE_LIB), C type.
 * Each gives start_send / ping_request / pong_reply / ping_get ... */
struct start { ax_ref_t peer; };
struct ball { uint64_t n; };
AX_MESSAGE(start, 1, struct start);
AX_MESSAGE(ping, 2, struct ball);
AX_MESSAGE(pong, 3, struct ball);

#define TIMEOUT_MS 5000 /* a lost ball ends the game with an error */

struct result {
    uint64_t round_trips;
    uint64_t ns;
    int error; /* first failure, 0 if none */
};

/* The pinger's private state (zeroed by the engine, filled by its init). */
struct pinger {
    struct result *out;
    uint64_t want, done, t0;
    ax_ref_t peer;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC); /* C11: no feature macro needed */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void game_over(ax_ctx_t *ctx, struct pinger *p, int error)
{
    p->out->round_trips = p->done;
    p->out->ns = now_ns() - p->t0;
    p->out->error = error;
    ax_engine_stop(ax_ctx_engine(ctx)); /* a behaviour may stop its engine */
}

static void on_pong(ax_ctx_t *ctx, void *state, void *cont, int status, const ax_msg_t *reply);

/* Ask the peer; the engine runs on_pong exactly once: with the reply, or
 * with -ETIMEDOUT, or with -ESRCH if the peer is gone. */
static void serve(ax_ctx_t *ctx, struct pinger *p)
{
    struct ball b = { p->done };
    int rc = ping_request(ctx, p->peer, &b, TIMEOUT_MS, on_pong, NULL, 0);
    if (rc != 0)
        game_over(ctx, p, rc);
}

/* The continuation runs on the pinger's worker, as the pinger. */
static void on_pong(ax_ctx_t *ctx, void *state, void *cont, int status, const ax_msg_t *reply)
{
    struct pinger *p = state;
    (void)cont;
    const struct ball *b = status == 0 ? pong_get(reply) : NULL;
    if (!b || b->n != p->done) {
        game_over(ctx, p, status != 0 ? status : -EPROTO);
        return;
    }
    if (++p->done == p->want) {
        game_over(ctx, p, 0);
        return;
    }
    serve(ctx, p);
}

/* init runs on the pinger's worker before its first message; arg is a copy. */
static void pinger_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    (void)len;
    memcpy(state, arg, sizeof(struct pinger));
}

/* The pinger's behaviour only takes the start message: the rest of the game
 * happens in continuations. */
static void pinger(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    struct pinger *p = state;
    const struct start *s = start_get(msg);
    if (!s)
        return; /* not ours: ignore */
    p->peer = s->peer;
    p->t0 = now_ns();
    serve(ctx, p);
}

/* The ponger needs no state: it answers each ping request with a pong. */
static void ponger(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    (void)state;
    const struct ball *b = ping_get(msg);
    if (b)
        pong_reply(ctx, b);
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
    struct pinger init = { &res, want, 0, 0, AX_REF_NONE };
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

    struct start s = { b };
    if ((rc = ax_engine_start(eng)) != 0 ||
        (rc = ax_engine_send(eng, a, start_TYPE, &s, sizeof s)) != 0) {
        fprintf(stderr, "pingpong: start failed: %s\n", strerror(-rc));
        ax_engine_destroy(eng);
        return 1;
    }
    rc = ax_engine_wait(eng); /* until the pinger stops the engine */

    ax_worker_stats_t st;
    ax_engine_stats(eng, &st);
    ax_engine_destroy(eng);
    if (rc != 0 || res.error != 0 || res.round_trips != want) {
        fprintf(stderr, "pingpong: failed: wait %d, error %d (%s), %llu of %llu round trips\n",
                rc, res.error, strerror(res.error < 0 ? -res.error : res.error),
                (unsigned long long)res.round_trips, (unsigned long long)want);
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
