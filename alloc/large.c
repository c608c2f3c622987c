/* alloc/large.c - large and variable-size allocations: one jemalloc arena per
 * NUMA node, whose extent hooks bind every new extent to that node.
 *
 * Threading: every function is thread-safe.  A node's jemalloc arena is
 * created on first use (mutex, slow path once per node); afterwards the fast
 * path is one acquire load and a mallocx.
 * Memory: blocks belong to jemalloc; the caller owns a block from
 * ax_large_alloc until ax_large_free.  The node arenas live as long as the
 * process (jemalloc arenas are never destroyed here: blocks may outlive any
 * engine).
 *
 * Why MALLOCX_TCACHE_NONE: with the thread cache, mallocx(MALLOCX_ARENA(a))
 * may return a cached object of another arena (PLAYBOOK 3, seen here), which
 * would silently break the node guarantee.  Large blocks are rare enough that
 * the cache does not matter.
 *
 * Under sanitizers (AXON_SANITIZE_address / _thread, set by CMake) the libc
 * allocator is used instead: ASan/TSan replace malloc, cannot see inside
 * mallocx memory, and arenas.lookup on their pointers crashes jemalloc.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "alloc/arena.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

static _Atomic uint64_t large_failed;

uint64_t ax_large_failed_allocs(void)
{
    return atomic_load_explicit(&large_failed, memory_order_relaxed);
}

#if defined(AXON_SANITIZE_address) || defined(AXON_SANITIZE_thread)

void *ax_large_alloc(int node, size_t size)
{
    /* above PTRDIFF_MAX, rounding up to 64 below would wrap */
    if (size == 0 || size > PTRDIFF_MAX || node >= AX_LARGE_MAX_NODES) {
        atomic_fetch_add_explicit(&large_failed, 1, memory_order_relaxed);
        return NULL;
    }
    void *p = aligned_alloc(64, (size + 63) & ~(size_t)63);
    if (!p)
        atomic_fetch_add_explicit(&large_failed, 1, memory_order_relaxed);
    return p;
}

void ax_large_free(void *p, size_t size)
{
    (void)size;
    free(p);
}

#else /* jemalloc */

#include <jemalloc/jemalloc.h>
#include <numaif.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* One hook table per node; the hooks find their node from the table pointer
 * jemalloc passes back (the arena index is not known while arenas.create
 * itself allocates through the hooks). */
typedef struct node_hooks {
    extent_hooks_t h; /* first member: &nh->h == (extent_hooks_t *)nh */
    int node;
} node_hooks_t;

static extent_hooks_t *dflt; /* jemalloc's default hooks, set once */
static pthread_once_t dflt_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
static node_hooks_t hooks[AX_LARGE_MAX_NODES];
/* jemalloc arena index per node, 0 = not created yet (arena 0 is automatic,
 * never one of ours).  Written under create_lock. */
static _Atomic unsigned node_arena[AX_LARGE_MAX_NODES];

static int node_of(extent_hooks_t *h) { return ((node_hooks_t *)h)->node; }

static void *node_alloc(extent_hooks_t *h, void *addr, size_t size, size_t align, bool *zero,
                        bool *commit, unsigned ind)
{
    void *p = dflt->alloc(dflt, addr, size, align, zero, commit, ind);
    if (!p)
        return NULL;
    int node = node_of(h);
    unsigned long mask[AX_LARGE_MAX_NODES / (8 * sizeof(unsigned long))] = {0};
    mask[(unsigned)node / (8 * sizeof(unsigned long))] =
        1UL << ((unsigned)node % (8 * sizeof(unsigned long)));
    /* MPOL_MF_MOVE: a recycled extent may already have pages elsewhere. */
    if (mbind(p, size, MPOL_BIND, mask, AX_LARGE_MAX_NODES + 1, MPOL_MF_MOVE) != 0) {
        /* Never hand out memory we could not bind: give it back, fail. */
        if (dflt->dalloc(dflt, p, size, *commit, ind))
            dflt->destroy(dflt, p, size, *commit, ind);
        return NULL;
    }
    return p;
}
/* The rest delegate: jemalloc needs the table fully populated. */
static bool node_dalloc(extent_hooks_t *h, void *a, size_t s, bool c, unsigned i)
{
    (void)h;
    return dflt->dalloc(dflt, a, s, c, i);
}
static void node_destroy(extent_hooks_t *h, void *a, size_t s, bool c, unsigned i)
{
    (void)h;
    dflt->destroy(dflt, a, s, c, i);
}
static bool node_commit(extent_hooks_t *h, void *a, size_t s, size_t o, size_t l, unsigned i)
{
    (void)h;
    return dflt->commit(dflt, a, s, o, l, i);
}
static bool node_decommit(extent_hooks_t *h, void *a, size_t s, size_t o, size_t l, unsigned i)
{
    (void)h;
    return dflt->decommit(dflt, a, s, o, l, i);
}
static bool node_purge_lazy(extent_hooks_t *h, void *a, size_t s, size_t o, size_t l,
                            unsigned i)
{
    (void)h;
    return dflt->purge_lazy ? dflt->purge_lazy(dflt, a, s, o, l, i) : true;
}
static bool node_purge_forced(extent_hooks_t *h, void *a, size_t s, size_t o, size_t l,
                              unsigned i)
{
    (void)h;
    return dflt->purge_forced ? dflt->purge_forced(dflt, a, s, o, l, i) : true;
}
static bool node_split(extent_hooks_t *h, void *a, size_t s, size_t sa, size_t sb, bool c,
                       unsigned i)
{
    (void)h;
    return dflt->split ? dflt->split(dflt, a, s, sa, sb, c, i) : true;
}
static bool node_merge(extent_hooks_t *h, void *a, size_t sa, void *b, size_t sb, bool c,
                       unsigned i)
{
    (void)h;
    return dflt->merge ? dflt->merge(dflt, a, sa, b, sb, c, i) : true;
}

static void read_default_hooks(void)
{
    size_t sz = sizeof dflt;
    if (mallctl("arena.0.extent_hooks", &dflt, &sz, NULL, 0) != 0)
        dflt = NULL;
}

/* Slow path: the node's arena, created on first use.  0 on failure. */
__attribute__((cold)) static unsigned create_node_arena(int node)
{
    pthread_once(&dflt_once, read_default_hooks);
    if (!dflt)
        return 0;
    pthread_mutex_lock(&create_lock);
    unsigned ind = atomic_load_explicit(&node_arena[node], memory_order_relaxed);
    if (ind == 0) {
        node_hooks_t *nh = &hooks[node];
        nh->h = (extent_hooks_t){node_alloc,   node_dalloc,     node_destroy,
                                 node_commit,  node_decommit,   node_purge_lazy,
                                 node_purge_forced, node_split, node_merge};
        nh->node = node;
        extent_hooks_t *hp = &nh->h;
        size_t sz = sizeof ind;
        if (mallctl("arenas.create", &ind, &sz, &hp, sizeof hp) != 0) {
            fprintf(stderr, "axon alloc: creating the jemalloc arena for NUMA node %d "
                            "failed; large allocations on that node return NULL\n", node);
            ind = 0;
        } else {
            /* R2: the hook table above is complete before the index is
             * visible.  Pairs with A2 in ax_large_alloc(). */
            atomic_store_explicit(&node_arena[node], ind, memory_order_release);
        }
    }
    pthread_mutex_unlock(&create_lock);
    return ind;
}

void *ax_large_alloc(int node, size_t size)
{
    if (size == 0 || size > PTRDIFF_MAX || node >= AX_LARGE_MAX_NODES)
        goto fail; /* no object may be larger than PTRDIFF_MAX */
    int flags = MALLOCX_ALIGN(64) | MALLOCX_TCACHE_NONE;
    if (node >= 0) {
        /* A2: pairs with R2 in create_node_arena(). */
        unsigned ind = atomic_load_explicit(&node_arena[node], memory_order_acquire);
        if (ax_unlikely(ind == 0) && (ind = create_node_arena(node)) == 0)
            goto fail;
        flags |= MALLOCX_ARENA(ind);
    }
    void *p = mallocx(size, flags);
    if (p)
        return p;
fail:
    atomic_fetch_add_explicit(&large_failed, 1, memory_order_relaxed);
    return NULL;
}

void ax_large_free(void *p, size_t size)
{
    if (!p)
        return;
    if (size)
        sdallocx(p, size, MALLOCX_ALIGN(64) | MALLOCX_TCACHE_NONE);
    else
        dallocx(p, MALLOCX_TCACHE_NONE);
}

#endif
