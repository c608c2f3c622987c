/* tests/stress/stress_io_wake.c - two threads, each owning a ring, play
 * ping-pong with ax_io_wake: publish a counter, wake the peer, park in
 * ax_io_wait with NO timeout until the peer's counter moves.  Each wake
 * picks MSG_RING (from = own ring) or the eventfd path (from = NULL) at
 * random, and sometimes sends a burst of extra wakes (coalescing).  A lost
 * wake leaves both threads parked forever: the watchdog alarm() turns that
 * into a failure with a message.
 *
 * Usage: stress_io_wake [--wakes N] [--seed S] [--seconds LIMIT]
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "io/timer.h"
#include "io/uring.h"

typedef struct player {
    ax_io_t *io;
    _Atomic uint64_t count; /* my last move, read by the peer */
    struct player *peer;
    uint64_t seed;
    int err;
    uint64_t parks;
} player_t;

static uint64_t nwakes = 100000;
static pthread_barrier_t bar;
static _Atomic uint64_t progress;

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void no_io(void *arg, uint64_t token, int32_t res, uint32_t flags)
{
    (void)arg, (void)token, (void)res, (void)flags;
}

static void *play(void *arg)
{
    player_t *me = arg;
    me->err = ax_io_create(NULL, &me->io);
    pthread_barrier_wait(&bar); /* both rings exist (or one failed) */
    if (me->err || me->peer->err)
        return NULL;
    bool first = me < me->peer;
    for (uint64_t i = 1; i <= nwakes; i++) {
        if (!first || i > 1) {
            /* wait for the peer's move i (first player) or i (second) */
            uint64_t want = first ? i - 1 : i;
            /* A: pairs with the peer's release store of count below. */
            while (atomic_load_explicit(&me->peer->count, memory_order_acquire) < want) {
                int rc = ax_io_wait(me->io, -1, no_io, NULL);
                me->parks++;
                if (rc < 0) {
                    me->err = rc;
                    return NULL;
                }
            }
        }
        /* R: the move is visible to the peer once it sees the wake. */
        atomic_store_explicit(&me->count, i, memory_order_release);
        int extra = (rnd(&me->seed) % 16 == 0) ? (int)(rnd(&me->seed) % 8) : 0;
        for (int k = 0; k <= extra; k++) {
            ax_io_t *from = (rnd(&me->seed) & 1) ? me->io : NULL;
            int rc = ax_io_wake(from, me->peer->io);
            if (rc < 0) {
                me->err = rc;
                return NULL;
            }
        }
        /* drain our own ring now and then without parking */
        if ((i & 63) == 0)
            ax_io_poll(me->io, no_io, NULL);
        atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    }
    /* keep the ring alive until the peer finished (MSG_RINGs target it) */
    pthread_barrier_wait(&bar);
    return NULL;
}

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "stress_io_wake: FAIL: no progress before the time limit: a wake "
                              "was lost (both players parked) or the machine is overloaded\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(2);
}

int main(int argc, char **argv)
{
    uint64_t seed = (uint64_t)time(NULL);
    unsigned limit = 240;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--wakes"))
            nwakes = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--seconds"))
            limit = (unsigned)strtoul(argv[i + 1], NULL, 0);
    }
    printf("stress_io_wake: seed %llu (rerun: stress_io_wake --seed %llu --wakes %llu)\n",
           (unsigned long long)seed, (unsigned long long)seed, (unsigned long long)nwakes);
    fflush(stdout);
    signal(SIGALRM, watchdog);
    alarm(limit);

    static player_t a, b;
    a.peer = &b;
    b.peer = &a;
    a.seed = seed;
    b.seed = seed ^ 0x9e3779b97f4a7c15ull;
    pthread_barrier_init(&bar, NULL, 2);
    uint64_t t0 = ax_now_ns();
    pthread_t ta, tb;
    pthread_create(&ta, NULL, play, &a);
    pthread_create(&tb, NULL, play, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    double s = (double)(ax_now_ns() - t0) / 1e9;
    alarm(0);
    int err = a.err ? a.err : b.err;
    uint64_t ca = atomic_load(&a.count), cb = atomic_load(&b.count);
    ax_io_stats_t sa = {0}, sb = {0};
    if (a.io)
        ax_io_get_stats(a.io, &sa);
    if (b.io)
        ax_io_get_stats(b.io, &sb);
    printf("stress_io_wake: %llu round trips in %.2f s (%.1f us each); parks %llu+%llu; "
           "wakes received %llu+%llu (msg_ring sent %llu+%llu)\n",
           (unsigned long long)nwakes, s, s * 1e6 / (double)nwakes, (unsigned long long)a.parks,
           (unsigned long long)b.parks, (unsigned long long)sa.wakes_received,
           (unsigned long long)sb.wakes_received, (unsigned long long)sa.wakes_msg_ring,
           (unsigned long long)sb.wakes_msg_ring);
    ax_io_destroy(a.io);
    ax_io_destroy(b.io);
    pthread_barrier_destroy(&bar);
    if (err || ca != nwakes || cb != nwakes) {
        printf("stress_io_wake: FAIL (err %d, counts %llu %llu)\n", err, (unsigned long long)ca,
               (unsigned long long)cb);
        return 1;
    }
    printf("stress_io_wake: PASS\n");
    return 0;
}
