/* tests/stress/stress_arena.c - arenas under cross-thread traffic.
 *
 * T threads, one arena each.  Every thread allocates random sizes from its own
 * arena, tags each block (owner, serial, size, pattern) and hands it to a
 * random thread (itself included) through a per-pair SPSC ring of pointers;
 * the receiver checks the tag and frees it with ax_arena_free_any, so most
 * frees are remote and travel back through the return path.  A global
 * "live" bitmap (one bit per 16 B) proves that no block is handed out twice
 * while live (alloc sets the bit, it must have been clear; free clears it).
 * At the end every thread drains, flushes and reclaims, and each arena's
 * used_bytes must be 0 with sent == received summed over the group.
 *
 * Phases: 2 threads, then 8 threads (oversubscribed on this 2-core VM).
 * Seeded and time-boxed:  stress_arena [--seed N] [--seconds S]
 */
#include "alloc/arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 256u
#define MAXT 8

typedef struct ring {
    _Alignas(64) _Atomic uint32_t head; /* consumer */
    _Alignas(64) _Atomic uint32_t tail; /* producer */
    void *slot[RING];
} ring_t;

typedef struct tag {
    uint32_t owner, size;
    uint64_t serial;
} tag_t;

static ax_arena_group_t *grp;
static int nthreads;
static ring_t rings[MAXT][MAXT]; /* rings[src][dst] */
static _Atomic uint64_t *live[MAXT];
static _Atomic int stop, producing;
static _Atomic int failures;
static pthread_barrier_t bar;
static _Atomic uint64_t left[2]; /* blocks still queued, per wind-down round */
static uint64_t seed;

#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "stress_arena: " __VA_ARGS__); \
    fputc('\n', stderr); atomic_fetch_add(&failures, 1); } } while (0)

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool ring_push(ring_t *r, void *p)
{
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    /* A: pairs with the consumer's release of head; the slot is free. */
    if (t - atomic_load_explicit(&r->head, memory_order_acquire) == RING)
        return false;
    r->slot[t % RING] = p;
    /* R: slot and the block's contents before tail; pairs with ring_pop's acquire. */
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return true;
}

static void *ring_pop(ring_t *r)
{
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&r->tail, memory_order_acquire))
        return NULL;
    void *p = r->slot[h % RING];
    /* R: we are done with the slot; pairs with ring_push's acquire of head. */
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return p;
}

/* live bit of p: owner arena, 16 B granule inside its slice */
static void live_bit(void *p, _Atomic uint64_t **word, uint64_t *bit)
{
    ax_arena_t *a = ax_arena_owner(grp, p);
    size_t g = ((uintptr_t)p - (uintptr_t)a) / 16;
    *word = &live[ax_arena_index(a)][g / 64];
    *bit = 1ull << (g % 64);
}

static void fill(void *p, const tag_t *t)
{
    memcpy(p, t, sizeof *t);
    unsigned char *c = p;
    for (uint32_t i = sizeof *t; i < t->size; i++)
        c[i] = (unsigned char)(t->serial + i);
}

static void verify_and_free(ax_arena_t *self, void *p)
{
    tag_t t;
    memcpy(&t, p, sizeof t);
    ax_arena_t *own = ax_arena_owner(grp, p);
    CHECK(own && ax_arena_index(own) == t.owner, "block %p: tag says owner %u, address says %d",
          p, t.owner, own ? (int)ax_arena_index(own) : -1);
    const unsigned char *c = p;
    for (uint32_t i = sizeof t; i < t.size; i += 7)
        if (c[i] != (unsigned char)(t.serial + i)) {
            CHECK(0, "block %p (owner %u serial %llu) overwritten at byte %u", p, t.owner,
                  (unsigned long long)t.serial, i);
            break;
        }
    _Atomic uint64_t *w;
    uint64_t bit;
    live_bit(p, &w, &bit);
    CHECK(atomic_fetch_and_explicit(w, ~bit, memory_order_relaxed) & bit,
          "block %p freed while not live", p);
    ax_arena_free_any(self, p);
}

static int drain(ax_arena_t *self, int me)
{
    int n = 0;
    for (int s = 0; s < nthreads; s++) {
        void *p;
        while ((p = ring_pop(&rings[s][me])) != NULL) {
            verify_and_free(self, p);
            n++;
        }
    }
    return n;
}

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    ax_arena_t *self = ax_arena_group_get(grp, (uint32_t)me);
    uint64_t rs = seed * 0x9e3779b97f4a7c15ull + (uint64_t)me + 1, serial = 0;
    uint64_t allocs = 0, fails = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int burst = (int)(rnd(&rs) % 64) + 1;
        for (int k = 0; k < burst; k++) {
            size_t size = rnd(&rs) % 8 ? 16 + rnd(&rs) % 496 : 1 + rnd(&rs) % AX_ARENA_MAX_CLASS;
            if (size < sizeof(tag_t))
                size = sizeof(tag_t);
            void *p = ax_arena_alloc(self, size);
            if (!p) {
                fails++;
                break;
            }
            allocs++;
            _Atomic uint64_t *w;
            uint64_t bit;
            live_bit(p, &w, &bit);
            CHECK(!(atomic_fetch_or_explicit(w, bit, memory_order_relaxed) & bit),
                  "block %p handed out twice (arena %d)", p, me);
            tag_t t = {(uint32_t)me, (uint32_t)size, serial++};
            fill(p, &t);
            int dst = (int)(rnd(&rs) % (uint64_t)nthreads);
            if (!ring_push(&rings[me][dst], p))
                verify_and_free(self, p);
        }
        drain(self, me);
        if (rnd(&rs) % 4 == 0)
            ax_arena_flush(self);
        ax_arena_reclaim(self);
    }
    /* Wind down: wait until nobody produces, then empty my rings. */
    atomic_fetch_sub(&producing, 1);
    while (atomic_load(&producing) > 0)
        drain(self, me);
    drain(self, me);
    /* Rounds of flush / reclaim until nobody holds queued blocks: a sender
     * whose return ring was full keeps blocks on its overflow list until the
     * owner has made room, so one round is not always enough. */
    for (int r = 0;; r++) {
        ax_arena_flush(self);
        pthread_barrier_wait(&bar); /* every sender has flushed this round */
        ax_arena_reclaim(self);
        ax_arena_stats_t q;
        ax_arena_get_stats(self, &q);
        atomic_fetch_add(&left[r & 1], q.remote_pending);
        pthread_barrier_wait(&bar); /* every count is in */
        uint64_t total = atomic_load(&left[r & 1]);
        if (me == 0)
            atomic_store(&left[(r + 1) & 1], 0); /* before anyone adds to it */
        if (total == 0)
            break;
        CHECK(r < 100000, "arena %d: blocks still queued after %d rounds", me, r);
        if (r >= 100000)
            break;
    }
    ax_arena_stats_t s;
    ax_arena_get_stats(self, &s);
    CHECK(s.used_bytes == 0, "arena %d: %llu bytes still in use after reclaim", me,
          (unsigned long long)s.used_bytes);
    CHECK(s.remote_pending == 0, "arena %d: %llu blocks still queued", me,
          (unsigned long long)s.remote_pending);
    printf("  arena %d: %llu allocs, %llu exhausted, %llu remote frees received, %llu sent, "
           "high water %llu KiB\n", me, (unsigned long long)allocs, (unsigned long long)fails,
           (unsigned long long)s.remote_frees_received, (unsigned long long)s.remote_frees_sent,
           (unsigned long long)(s.high_water_bytes >> 10));
    return NULL;
}

static void phase(int threads, double seconds)
{
    nthreads = threads;
    memset(rings, 0, sizeof rings);
    /* small arenas so that exhaustion happens too */
    ax_arena_group_opts_t o = {.narenas = (uint32_t)threads, .arena_bytes = 2u << 20};
    if (ax_arena_group_create(&o, &grp) != 0) {
        fprintf(stderr, "stress_arena: group create failed\n");
        exit(1);
    }
    for (int i = 0; i < threads; i++) {
        ax_arena_stats_t s;
        ax_arena_get_stats(ax_arena_group_get(grp, (uint32_t)i), &s);
        live[i] = calloc(s.reserved_bytes / 16 / 64 + 1, sizeof(uint64_t));
    }
    atomic_store(&stop, 0);
    atomic_store(&producing, threads);
    atomic_store(&left[0], 0);
    atomic_store(&left[1], 0);
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    printf("phase: %d threads, %.1f s\n", threads, seconds);
    pthread_t th[MAXT];
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    uint64_t sent = 0, recv = 0;
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < threads; i++) {
        ax_arena_stats_t s;
        ax_arena_get_stats(ax_arena_group_get(grp, (uint32_t)i), &s);
        sent += s.remote_frees_sent;
        recv += s.remote_frees_received;
        for (size_t k = 0; k < s.reserved_bytes / 16 / 64 + 1; k++)
            CHECK(atomic_load(&live[i][k]) == 0, "arena %d: a block is still marked live", i);
        free(live[i]);
    }
    CHECK(sent == recv, "remote frees: %llu sent, %llu received", (unsigned long long)sent,
          (unsigned long long)recv);
    CHECK(sent > 0, "no remote free happened");
    pthread_barrier_destroy(&bar);
    ax_arena_group_destroy(grp);
}

int main(int argc, char **argv)
{
    double seconds = 4;
    seed = (uint64_t)time(NULL);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
    }
    printf("stress_arena: seed %llu (rerun: stress_arena --seed %llu)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    phase(2, seconds / 2);
    phase(MAXT, seconds / 2);
    int f = atomic_load(&failures);
    printf("stress_arena: %s\n", f ? "FAIL" : "PASS");
    return f ? 1 : 0;
}
