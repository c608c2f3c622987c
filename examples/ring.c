/* examples/ring.c - the thread ring: 503 actors pass a token around.
 *
 *   ring [HOPS]        (default 1000000)
 *
 * Actor 1 gets the token with value HOPS; each actor passes the token, less
 * one, to the next actor in the ring; the actor that receives 0 is the
 * answer, (HOPS % 503) + 1 (the Computer Language Benchmarks Game's
 * "thread-ring").  The actors are spread round robin over the workers, so
 * most hops cross between cores.  Only the public API (axon/axon.h).
 *
 * Shows: a read-only table published before ax_engine_start (every actor's
 * reference, filled in by main), and ax_engine_stop_when_idle: the engine
 * stops by itself once the last token has been handled.
 *
 * Threading: main() is the creator.  The table is written before start and
 * only read afterwards; the answer is written by one behaviour and read by
 * main() after ax_engine_wait().
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

#define RING_SIZE 503
enum { MSG_TOKEN = 1 };

struct ring {
    ax_ref_t actor[RING_SIZE]; /* filled before start, read-only after */
    uint32_t winner;           /* 1-based id of the actor that saw 0 */
    int error;
};

/* Each actor's state: its place in the ring. */
struct member {
    struct ring *ring;
    uint32_t index; /* 0-based */
};

static void member_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    (void)len;
    memcpy(state, arg, sizeof(struct member));
}

static void member(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    struct member *m = state;
    uint64_t token;
    memcpy(&token, ax_msg_data(msg), sizeof token);
    if (token == 0) {
        m->ring->winner = m->index + 1;
        return; /* nothing more to send: the engine goes idle and stops */
    }
    ax_ref_t next = m->ring->actor[(m->index + 1) % RING_SIZE];
    int rc = ax_send_u64(ctx, next, MSG_TOKEN, token - 1);
    if (rc != 0)
        m->ring->error = rc;
}

int main(int argc, char **argv)
{
    uint64_t hops = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;

    ax_config_t cfg;
    ax_config_error_t cerr;
    ax_config_init(&cfg);
    if (ax_config_apply_env(&cfg, NULL, &cerr) != 0) {
        fprintf(stderr, "ring: %s\n", cerr.message);
        return 1;
    }
    ax_engine_t *eng;
    int rc = ax_engine_create(&cfg, &eng);
    if (rc != 0) {
        fprintf(stderr, "ring: cannot create the engine (%s): %s\n", strerror(-rc),
                ax_engine_last_error());
        return 1;
    }

    static struct ring ring; /* static: 4 KiB, and it must outlive the engine's use */
    for (uint32_t i = 0; i < RING_SIZE; i++) {
        struct member init = { &ring, i };
        ax_spawn_opts_t o = { .size = sizeof o, .init = member_init, .arg = &init,
                              .arg_len = sizeof init }; /* default: round robin */
        if ((rc = ax_engine_spawn(eng, member, sizeof(struct member), &o, &ring.actor[i])) != 0) {
            fprintf(stderr, "ring: spawning actor %u failed: %s\n", i + 1, strerror(-rc));
            ax_engine_destroy(eng);
            return 1;
        }
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((rc = ax_engine_start(eng)) != 0 ||
        (rc = ax_engine_send(eng, ring.actor[0], MSG_TOKEN, &hops, sizeof hops)) != 0) {
        fprintf(stderr, "ring: start failed: %s\n", strerror(-rc));
        ax_engine_destroy(eng);
        return 1;
    }
    ax_engine_stop_when_idle(eng); /* the game ends when nobody has a message */
    rc = ax_engine_wait(eng);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint32_t workers = ax_engine_workers(eng);
    ax_engine_destroy(eng);

    uint32_t expect = (uint32_t)(hops % RING_SIZE) + 1;
    if (rc != 0 || ring.error != 0 || ring.winner != expect) {
        fprintf(stderr, "ring: failed: wait %d, send error %d, winner %u (expected %u)\n", rc,
                ring.error, ring.winner, expect);
        return 1;
    }
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("ring: %llu hops around %u actors on %u workers in %.3f ms (%.0f ns per hop)\n",
           (unsigned long long)hops, RING_SIZE, workers, ms, hops ? ms * 1e6 / (double)hops : 0.0);
    printf("ring: result %u\n", ring.winner);
    return 0;
}
