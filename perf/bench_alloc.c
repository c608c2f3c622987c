/* perf/bench_alloc.c - the arena against glibc and jemalloc, and remote free.
 *
 * alloc/<allocator>/<bytes>: same-thread alloc+free pairs (LIFO: the classic
 * fast path of every allocator), allocator one of
 *   arena    ax_arena_alloc / ax_arena_free (inline fast paths)
 *   glibc    __libc_malloc / __libc_free: this binary links jemalloc, which
 *            replaces malloc, so glibc's allocator is reached through the
 *            names glibc exports for itself; checked with dladdr at run time
 *   jemalloc mallocx / sdallocx with the thread cache (its fast path)
 * alloc/remote_free: a producer pinned to cpu 0 allocates 64 B blocks from
 * arena 0 and hands them over an SPSC pointer ring to a consumer pinned to
 * cpu 1, which frees them with ax_arena_free_any (arena 1); they return to
 * arena 0 in batches and the producer reclaims them.  blocks/s counts blocks
 * that made the whole trip (alloc, hand-off, remote free, reclaim).
 *
 * Threading: each benchmark owns its arenas; remote_free starts one consumer
 * thread per batch call.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "axon_bench.h"
#include "alloc/arena.h"

#include <dlfcn.h>
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);

static ax_arena_group_t *grp; /* two 64 MiB arenas, created on first use */
static pthread_once_t grp_once = PTHREAD_ONCE_INIT;

static void make_group(void)
{
    ax_arena_group_opts_t o = {.narenas = 2, .arena_bytes = 64u << 20};
    if (ax_arena_group_create(&o, &grp) != 0)
        grp = NULL;
}

static ax_arena_group_t *group(axon_bench_state *st)
{
    pthread_once(&grp_once, make_group);
    if (!grp)
        axon_bench_skip(st, "ax_arena_group_create failed");
    return grp;
}

static void bm_arena(axon_bench_state *st, uint64_t iters, void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    if (!group(st))
        return;
    ax_arena_t *a = ax_arena_group_get(grp, 0);
    for (uint64_t i = 0; i < iters; i++) {
        void *p = ax_arena_alloc(a, size);
        AXON_ESCAPE(p);
        ax_arena_free(a, p);
    }
    axon_bench_items(st, (int64_t)iters);
}

/* Whether __libc_malloc really is glibc's allocator (skips the benchmark
 * with the reason if not). */
static bool glibc_usable(axon_bench_state *st)
{
    static bool checked, ok;
    if (!checked) {
        Dl_info di;
        ok = dladdr((void *)(uintptr_t)__libc_malloc, &di) && di.dli_fname &&
             strstr(di.dli_fname, "libc.so");
        checked = true;
    }
    if (!ok)
        axon_bench_skip(st, "__libc_malloc does not resolve into libc.so");
    return ok;
}

static void bm_glibc(axon_bench_state *st, uint64_t iters, void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    if (!glibc_usable(st))
        return;
    for (uint64_t i = 0; i < iters; i++) {
        void *p = __libc_malloc(size);
        AXON_ESCAPE(p);
        __libc_free(p);
    }
    axon_bench_items(st, (int64_t)iters);
}

static void bm_jemalloc(axon_bench_state *st, uint64_t iters, void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < iters; i++) {
        void *p = mallocx(size, 0);
        AXON_ESCAPE(p);
        sdallocx(p, size, 0);
    }
    axon_bench_items(st, (int64_t)iters);
}

/* ---- many live blocks ------------------------------------------------------------- */

/* alloc/<allocator>_fifo/<live> (arena, glibc, jemalloc): `live` 64 B blocks
 * stay allocated in a FIFO; each iteration frees the oldest and allocates a
 * new one.  The working set (live x 64 B) outgrows L1 at 4096 blocks and L2
 * at 65536, and no block is spare, so every arena alloc finds its alloc list
 * empty and swaps in the one block just freed: the split lists' worst case,
 * where the same-thread pair above is their best. */
#define FIFO_MAX 65536u
static void *fifo_slot[FIFO_MAX];

static void bm_arena_fifo(axon_bench_state *st, uint64_t iters, void *arg)
{
    size_t live = (size_t)(uintptr_t)arg;
    if (!group(st))
        return;
    ax_arena_t *a = ax_arena_group_get(grp, 0);
    for (size_t i = 0; i < live; i++)
        fifo_slot[i] = ax_arena_alloc(a, 64);
    for (uint64_t i = 0; i < iters; i++) {
        size_t k = (size_t)(i % live);
        ax_arena_free(a, fifo_slot[k]);
        void *p = ax_arena_alloc(a, 64);
        AXON_ESCAPE(p);
        fifo_slot[k] = p;
    }
    for (size_t i = 0; i < live; i++)
        ax_arena_free(a, fifo_slot[i]);
    axon_bench_items(st, (int64_t)iters);
}

static void bm_glibc_fifo(axon_bench_state *st, uint64_t iters, void *arg)
{
    size_t live = (size_t)(uintptr_t)arg;
    if (!glibc_usable(st))
        return;
    for (size_t i = 0; i < live; i++)
        fifo_slot[i] = __libc_malloc(64);
    for (uint64_t i = 0; i < iters; i++) {
        size_t k = (size_t)(i % live);
        __libc_free(fifo_slot[k]);
        void *p = __libc_malloc(64);
        AXON_ESCAPE(p);
        fifo_slot[k] = p;
    }
    for (size_t i = 0; i < live; i++)
        __libc_free(fifo_slot[i]);
    axon_bench_items(st, (int64_t)iters);
}

static void bm_jemalloc_fifo(axon_bench_state *st, uint64_t iters, void *arg)
{
    size_t live = (size_t)(uintptr_t)arg;
    for (size_t i = 0; i < live; i++)
        fifo_slot[i] = mallocx(64, 0);
    for (uint64_t i = 0; i < iters; i++) {
        size_t k = (size_t)(i % live);
        sdallocx(fifo_slot[k], 64, 0);
        void *p = mallocx(64, 0);
        AXON_ESCAPE(p);
        fifo_slot[k] = p;
    }
    for (size_t i = 0; i < live; i++)
        sdallocx(fifo_slot[i], 64, 0);
    axon_bench_items(st, (int64_t)iters);
}

/* ---- remote free ---------------------------------------------------------------- */

#define XRING 4096u
typedef struct xring {
    _Alignas(64) _Atomic uint64_t head; /* consumer writes */
    uint64_t tail_seen;
    _Alignas(64) _Atomic uint64_t tail; /* producer writes */
    uint64_t head_seen;
    _Alignas(64) void *slot[XRING];
} xring_t;

typedef struct rf {
    xring_t ring;
    uint64_t n; /* blocks to consume */
    int ok;
} rf_t;

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *consumer(void *arg)
{
    rf_t *r = arg;
    ax_arena_t *me = ax_arena_group_get(grp, 1);
    r->ok = pin(1) == 0;
    uint64_t h = atomic_load_explicit(&r->ring.head, memory_order_relaxed);
    uint64_t end = h + r->n;
    while (h < end) {
        /* A: pairs with the producer's release of tail; slots below are written. */
        uint64_t t = atomic_load_explicit(&r->ring.tail, memory_order_acquire);
        if (t == h) {
            ax_arena_flush(me); /* idle: push the partial batch */
            continue;
        }
        for (; h < t; h++)
            ax_arena_free_any(me, r->ring.slot[h % XRING]);
        /* R: slots below h are free again; pairs with the producer's acquire. */
        atomic_store_explicit(&r->ring.head, h, memory_order_release);
    }
    ax_arena_flush(me);
    return NULL;
}

static void bm_remote_free(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    if (!group(st))
        return;
    ax_arena_t *a = ax_arena_group_get(grp, 0);
    static rf_t r; /* 32 KiB ring: static, one benchmark at a time */
    memset(&r, 0, sizeof r);
    r.n = iters;
    cpu_set_t old;
    pthread_getaffinity_np(pthread_self(), sizeof old, &old);
    if (pin(0) != 0) {
        axon_bench_skip(st, "cannot pin the producer to cpu 0");
        return;
    }
    pthread_t th;
    pthread_create(&th, NULL, consumer, &r);
    uint64_t t = 0, head = 0;
    for (uint64_t i = 0; i < iters;) {
        if (t - head == XRING) {
            head = atomic_load_explicit(&r.ring.head, memory_order_acquire);
            if (t - head == XRING) {
                ax_arena_reclaim(a);
                continue;
            }
        }
        uint64_t room = XRING - (t - head), k = iters - i < room ? iters - i : room;
        if (k > 256)
            k = 256; /* publish in chunks so the consumer starts early */
        for (uint64_t j = 0; j < k; j++) {
            void *p = ax_arena_alloc(a, 64);
            if (!p) { /* every block is in flight: take some back */
                ax_arena_reclaim(a);
                k = j;
                break;
            }
            r.ring.slot[(t + j) % XRING] = p;
        }
        t += k;
        i += k;
        /* R: slot writes before tail; pairs with A in consumer(). */
        atomic_store_explicit(&r.ring.tail, t, memory_order_release);
        ax_arena_reclaim(a);
    }
    pthread_join(th, NULL);
    /* After the join this thread may act for arena 1: blocks the consumer
     * had to keep queued (its ring was full) go out now. */
    ax_arena_t *c = ax_arena_group_get(grp, 1);
    ax_arena_stats_t cs;
    do {
        ax_arena_reclaim(a);
        ax_arena_flush(c);
        ax_arena_get_stats(c, &cs);
    } while (cs.remote_pending);
    ax_arena_reclaim(a);
    pthread_setaffinity_np(pthread_self(), sizeof old, &old);
    if (!r.ok)
        axon_bench_skip(st, "cannot pin the consumer to cpu 1");
    ax_arena_stats_t s;
    ax_arena_get_stats(a, &s);
    if (s.used_bytes != 0)
        axon_bench_skip(st, "blocks did not all come back");
    axon_bench_items(st, (int64_t)iters);
    axon_bench_counter(st, "blocks/s", (double)iters, AXON_COUNTER_RATE);
}

/* alloc/<allocator><family>/<v> for each of the three allocators and each v. */
static void register_allocators(const char *family, const unsigned *v, int nv, axon_bench_fn arena,
                                axon_bench_fn glibc, axon_bench_fn jemalloc)
{
    static const char *const names[3] = {"arena", "glibc", "jemalloc"};
    axon_bench_fn fns[3] = {arena, glibc, jemalloc};
    char name[64];
    for (int i = 0; i < nv; i++)
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "alloc/%s%s/%u", names[k], family, v[i]);
            axon_bench_unit_ns(axon_bench_register(name, fns[k], (void *)(uintptr_t)v[i]));
        }
}

AXON_BENCHMARK(register_alloc)
{
    static const unsigned sizes[] = {64, 256, 1024}, lives[] = {4096, 65536};
    register_allocators("", sizes, 3, bm_arena, bm_glibc, bm_jemalloc);
    register_allocators("_fifo", lives, 2, bm_arena_fifo, bm_glibc_fifo, bm_jemalloc_fifo);
    void *b = axon_bench_register("alloc/remote_free", bm_remote_free, NULL);
    axon_bench_unit_ns(b);
    axon_bench_real_time(b);
}
