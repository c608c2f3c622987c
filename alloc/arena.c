/* alloc/arena.c - NUMA-local fixed arenas: reservation, binding, size-class
 * refill and the remote-free protocol.  The fast paths (alloc, free,
 * free_any) are inline in arena.h; this file holds the cold paths.
 *
 * Threading: group create/destroy on one thread while no arena is in use;
 * everything taking an ax_arena_t * runs on that arena's owner thread; the
 * one cross-thread structure is the per-pair return ring (protocol below).
 * Memory: the group owns one mmap reservation; every arena header lives at
 * the start of its own slice (so on its node); blocks belong to the arena
 * whose slice contains them, whoever frees them.
 *
 * ---- layout ---------------------------------------------------------------
 * reservation (2 MiB aligned, stride = 2^shift >= slice_bytes):
 *   base + i*stride: [header runs][data runs ............][PROT_NONE gap]
 * The header (struct ax_arena, run_class[], rings[], pending[], dirty[]) takes whole
 * 64 KiB runs so data runs stay 64 KiB aligned.  Owner lookup is
 * (p - base) >> shift; the run's class is run_class[(p - slice) >> 16].
 *
 * ---- remote free protocol --------------------------------------------------
 * Every ordered pair (sender S, owner O) has a single-producer single-consumer
 * ring of block pointers, O->rings[S], in O's header (so on O's node).
 * Sender S frees a block b owned by O (ax_arena_free_any, inline):
 *   slot[tail % RING] = b; tail++ (S-private counter in S->pending[O]);
 *   every AX_ARENA_BATCH blocks, and at ax_arena_flush, S publishes:
 *       store(&ring->tail, tail)                          (R1, release)
 * Owner O (ax_arena_reclaim), for each sender:
 *       t = load(&ring->tail)                             (A1, acquire)
 *       file slot[head .. t) in the class free lists
 *       store(&ring->head, t)                             (R2, release)
 * S reads the owner's head only when its cached copy says the ring is full:
 *       head_seen = load(&ring->head)                     (A2, acquire)
 * R1/A1: the slots (and S's use of the blocks before freeing them) are
 * visible to O.  R2/A2: O has read the slots before S overwrites them.
 * The owner reads the pointers sequentially (no pointer chasing through
 * blocks that are hot in the sender's cache) and links each block into its
 * own free list with a store, which does not stall on the remote line.
 * Full ring: the block goes on S's private overflow list for O (linked
 * through the block, no loss, no waiting) and ax_arena_flush moves it into
 * the ring once O has made room.  Nothing blocks, nothing is dropped; a
 * sender whose owner never reclaims keeps its blocks queued (remote_pending).
 * Blocks in transit still count in O's used_bytes until O reclaims them, so
 * "all memory came back" is used_bytes == 0 after the senders flushed and
 * the owner reclaimed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "alloc/arena.h"
#include "axon/config.h" /* AX_WORKERS_MAX */

#include <errno.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define AX__HUGE_ALIGN ((size_t)2 << 20)
#define AX__MAX_ARENAS 1024u /* header holds one 2 KiB return ring per peer */
_Static_assert(AX__MAX_ARENAS >= AX_WORKERS_MAX, "an engine's workers.count limit is this one");
#define AX__MAX_NODE_BITS 1024u /* mbind mask width: node OS indexes < 1024 */

struct ax_arena_group {
    void *map;          /* whole reservation as mapped, for munmap */
    size_t map_len;
    uintptr_t base;     /* 2 MiB aligned start; slice i at base + i*stride */
    size_t stride, slice_bytes;
    uint32_t shift, narenas;
    ax_arena_t *arenas[];
};

/* ---- size classes ----------------------------------------------------------- */

const uint16_t ax__arena_class_bytes[AX_ARENA_NCLASSES] = {
    16,   32,   48,   64,   80,   96,   112,  128,            /* step 16 */
    160,  192,  224,  256,  320,  384,  448,  512,            /* 4 per doubling */
    640,  768,  896,  1024, 1280, 1536, 1792, 2048,
    2560, 3072, 3584, 4096,
};

/* index (size + 15) / 16 -> smallest class >= size (generated from the list
 * above; test_arena checks every size 1..4096 against it). */
const uint8_t ax__arena_size_class[AX_ARENA_MAX_CLASS / 16 + 1] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9, 10, 10, 11,
    11, 12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15,
    15, 16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17,
    17, 18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19,
    19, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
    20, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21,
    21, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22,
    22, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,
    23, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
    24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
    24, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25,
    25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25,
    25, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27,
    27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27,
    27,
};

/* ceil(2^32 / class size): offset / size by multiply in the debug check */
const uint32_t ax__arena_class_inv[AX_ARENA_NCLASSES] = {
#define INV(x) (uint32_t)((((uint64_t)1 << 32) + (x) - 1) / (x))
    INV(16),   INV(32),   INV(48),   INV(64),   INV(80),   INV(96),   INV(112),
    INV(128),  INV(160),  INV(192),  INV(224),  INV(256),  INV(320),  INV(384),
    INV(448),  INV(512),  INV(640),  INV(768),  INV(896),  INV(1024), INV(1280),
    INV(1536), INV(1792), INV(2048), INV(2560), INV(3072), INV(3584), INV(4096),
#undef INV
};

int ax_arena_class_of(size_t size)
{
    if (size == 0 || size > AX_ARENA_MAX_CLASS)
        return -1;
    return ax__arena_size_class[(size + 15) >> 4];
}

size_t ax_arena_class_size(unsigned cls)
{
    return cls < AX_ARENA_NCLASSES ? ax__arena_class_bytes[cls] : 0;
}

/* ---- cold paths called from the inline fast paths ---------------------------- */

void *ax__arena_bad_request(ax_arena_t *a, size_t size)
{
    (void)size;
    a->bad_requests++;
    return NULL;
}

/* Hands out b from the slow path, counted like the inline fast path. */
static void *hand_out(ax_arena_t *a, ax__arena_class_t *k, ax__arena_block_t *b, size_t cs)
{
    AX__UNPOISON(b, cs);
    return ax__arena_hand_out(a, k, b, cs);
}

/* Fresh blocks come in batches of up to AX__ARENA_CARVE_BYTES, at most
 * AX__ARENA_CARVE_MAX blocks, so an alloc+free loop swaps lists once per
 * batch instead of on every alloc, and a class used once touches at most
 * 32 KiB. */
#define AX__ARENA_CARVE_BYTES 32768u
#define AX__ARENA_CARVE_MAX 32u

/* Carves a batch of fresh blocks for class c from its run, or from a new run
 * when that one is used up; links all but the first onto alist (in front of
 * what is there) and returns the first.  NULL when no run is left, or, with
 * `spare`, when taking one would leave no run or an eighth of the runs or
 * fewer: spare blocks must not be what exhausts the arena. */
static ax__arena_block_t *carve(ax_arena_t *a, unsigned c, bool spare)
{
    ax__arena_class_t *k = &a->cls[c];
    size_t cs = ax__arena_class_bytes[c];
    uintptr_t p = a->run_cur[c];
    if (p + cs > a->run_end[c]) {
        uintptr_t left = a->next_run < a->data_hi ? a->data_hi - a->next_run : 0;
        if (left == 0 ||
            (spare && (left <= AX_ARENA_RUN_BYTES || left <= (a->data_hi - a->data_lo) / 8)))
            return NULL;
        /* A new run for this class; the old run's tail (< cs bytes) is lost. */
        p = a->next_run;
        a->next_run += AX_ARENA_RUN_BYTES;
        a->run_class[(p - a->slice) >> AX_ARENA_RUN_SHIFT] = (uint8_t)c;
        a->run_end[c] = p + AX_ARENA_RUN_BYTES;
    }
    size_t n = (a->run_end[c] - p) / cs, want = AX__ARENA_CARVE_BYTES / cs;
    if (want > AX__ARENA_CARVE_MAX)
        want = AX__ARENA_CARVE_MAX;
    if (n > want)
        n = want; /* n >= 1: the run has room for p; want >= 8 */
    ax__arena_block_t *next = k->alist;
    for (size_t i = n - 1; i >= 1; i--) {
        ax__arena_block_t *f = (ax__arena_block_t *)(p + i * cs);
        ax__blk_link(f, next);
        next = f;
    }
    k->alist = next;
    a->run_cur[c] = p + n * cs;
    a->bump_bytes += n * cs;
    return (ax__arena_block_t *)p;
}

/* alist and flist are both empty (ax_arena_alloc swaps flist in itself). */
void *ax__arena_refill(ax_arena_t *a, unsigned c)
{
    ax__arena_class_t *k = &a->cls[c];
    size_t cs = ax__arena_class_bytes[c];
    ax__arena_block_t *b = carve(a, c, false);
    if (ax_unlikely(!b)) {
        /* Out of fresh runs: blocks other threads returned may be waiting. */
        if (ax_arena_reclaim_all(a) && (k->alist || k->flist))
            return ax_arena_alloc(a, cs);
        a->failed_allocs++;
        return NULL;
    }
    return hand_out(a, k, b, cs);
}

/* ax_arena_alloc swapped in an flist of one block, b: no block of this class
 * is spare, as when a fixed number stay live and each free is followed by
 * an alloc.  Every alloc would swap again.  Hand out b, and put a batch of
 * fresh blocks on alist, so the next swap brings a batch back (the arena
 * grows by one batch, once, and only while runs are plentiful). */
void *ax__arena_swap_one(ax_arena_t *a, unsigned c, ax__arena_block_t *b)
{
    ax__arena_class_t *k = &a->cls[c];
    ax__arena_block_t *f = carve(a, c, true);
    if (f) {
        ax__blk_link(f, k->alist);
        k->alist = f;
    }
    return hand_out(a, k, b, ax__arena_class_bytes[c]);
}

void ax__arena_bad_free(const ax_arena_t *a, const void *p, const char *why)
{
    fprintf(stderr,
            "axon alloc: freeing %p to arena %u failed: %s. This is a bug in the caller; "
            "rebuild with -DAXON_SANITIZE=address to see where the block was allocated "
            "and first freed\n",
            p, a->index, why);
    abort();
}

static ax__arena_ring_t *ring_to(ax_arena_t *self, uint32_t o)
{
    return &self->peers[o]->rings[self->index];
}

void ax__arena_publish(ax_arena_t *self, uint32_t o)
{
    ax__arena_pending_t *pd = &self->pending[o];
    /* R1: the slots written since the last publish are visible to the owner
     * that reads this tail.  Pairs with A1 in ax_arena_reclaim(). */
    atomic_store_explicit(&ring_to(self, o)->tail, pd->tail, memory_order_release);
    /* R3: the tail above is visible to an owner whose exchange of this word
     * (A3 in ax_arena_reclaim) reads our bit.  Skipping the RMW when the bit
     * is already set can race with the owner clearing it, so the bell is a
     * hint: the owner scans every ring on every 64th reclaim and whenever it
     * runs out of memory, and a block is never lost, only returned later. */
    _Atomic uint64_t *bell = &self->peers[o]->ret_bell[self->index / 64];
    uint64_t bit = 1ull << (self->index % 64);
    if (!(atomic_load_explicit(bell, memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(bell, bit, memory_order_release);
    self->remote_frees_sent += pd->tail - pd->pub;
    self->remote_pending -= pd->tail - pd->pub;
    pd->pub = pd->tail;
}

/* Moves overflow blocks into the ring while it has room; true if the
 * overflow list is empty afterwards. */
static bool drain_overflow(ax_arena_t *self, uint32_t o)
{
    ax__arena_pending_t *pd = &self->pending[o];
    ax__arena_ring_t *r = ring_to(self, o);
    while (pd->ovf && pd->tail - pd->head_seen < AX_ARENA_RING) {
        ax__arena_block_t *b = pd->ovf;
        pd->ovf = ax__blk_next(b);
        pd->ovf_count--;
        r->slot[pd->tail++ % AX_ARENA_RING] = b;
    }
    return pd->ovf == NULL;
}

void ax__arena_send_slow(ax_arena_t *self, uint32_t o, ax__arena_block_t *b)
{
    ax__arena_pending_t *pd = &self->pending[o];
    /* A2: pairs with R2 in ax_arena_reclaim(): the owner has read every slot
     * below head, so we may overwrite them. */
    pd->head_seen = atomic_load_explicit(&ring_to(self, o)->head, memory_order_acquire);
    drain_overflow(self, o);
    if (pd->tail - pd->head_seen < AX_ARENA_RING) {
        ring_to(self, o)->slot[pd->tail++ % AX_ARENA_RING] = b;
    } else {
        ax__blk_link(b, pd->ovf); /* the owner is behind: keep it, retry at flush */
        pd->ovf = b;
        pd->ovf_count++;
    }
    if (pd->tail - pd->pub >= AX_ARENA_BATCH)
        ax__arena_publish(self, o);
}

void ax_arena_flush(ax_arena_t *self)
{
    uint32_t keep = 0;
    for (uint32_t i = 0; i < self->ndirty; i++) {
        uint32_t o = self->dirty[i];
        ax__arena_pending_t *pd = &self->pending[o];
        if (pd->ovf) {
            /* A2 as in ax__arena_send_slow(). */
            pd->head_seen = atomic_load_explicit(&ring_to(self, o)->head, memory_order_acquire);
            drain_overflow(self, o);
        }
        if (pd->tail != pd->pub)
            ax__arena_publish(self, o);
        if (pd->ovf)
            self->dirty[keep++] = o; /* still queued: retry at the next flush */
        else
            pd->listed = false;
    }
    self->ndirty = keep;
}

/* Take back every block sender s has published to us. */
static size_t reclaim_from(ax_arena_t *self, uint32_t s)
{
    size_t n = 0;
    ax__arena_ring_t *r = &self->rings[s];
    /* A1: pairs with R1 in ax__arena_publish(); slots below t are written. */
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed); /* ours */
    if (t == h)
        return 0;
    for (; h != t; h++) {
        ax__arena_block_t *b = r->slot[h % AX_ARENA_RING];
        unsigned c = self->run_class[((uintptr_t)b - self->slice) >> AX_ARENA_RUN_SHIFT];
#ifdef AXON_ARENA_DEBUG
        if (ax_unlikely(c >= AX_ARENA_NCLASSES || (uintptr_t)b < self->data_lo ||
                        (uintptr_t)b >= self->next_run))
            ax__arena_bad_free(self, b, "a returned block is not a block of this arena");
#endif
        /* onto alist, not flist: the link store just pulled the line into
         * our cache, so hand these out next (a block waiting on flist for a
         * whole alist to drain goes cold, and popping it is a miss) */
        ax__arena_class_t *k = &self->cls[c];
        ax__blk_link(b, k->alist);
        k->alist = b;
        k->nfree++;
        self->hw_limit += ax__arena_class_bytes[c];
        n++;
    }
    /* R2: we are done reading the slots below h.  Pairs with A2 in
     * ax__arena_send_slow() / ax_arena_flush(). */
    atomic_store_explicit(&r->head, h, memory_order_release);
    return n;
}

size_t ax_arena_reclaim_all(ax_arena_t *self)
{
    size_t n = 0;
    for (uint32_t k = 0; k < (self->narenas + 63) / 64; k++)
        atomic_exchange_explicit(&self->ret_bell[k], 0, memory_order_acquire); /* A3 */
    for (uint32_t s = 0; s < self->narenas; s++)
        n += reclaim_from(self, s);
    self->remote_frees_received += n;
    return n;
}

size_t ax_arena_reclaim(ax_arena_t *self)
{
    if ((++self->reclaim_calls & 63) == 0)
        return ax_arena_reclaim_all(self);
    size_t n = 0;
    for (uint32_t k = 0; k < (self->narenas + 63) / 64; k++) {
        if (!atomic_load_explicit(&self->ret_bell[k], memory_order_relaxed))
            continue;
        /* A3: pairs with R3 in ax__arena_publish(). */
        uint64_t bits = atomic_exchange_explicit(&self->ret_bell[k], 0, memory_order_acquire);
        while (bits) {
            n += reclaim_from(self, k * 64 + (uint32_t)__builtin_ctzll(bits));
            bits &= bits - 1;
        }
    }
    self->remote_frees_received += n;
    return n;
}

size_t ax_arena_block_size(const ax_arena_t *a, const void *p)
{
    uintptr_t u = (uintptr_t)p;
    if (u < a->data_lo || u >= a->data_hi)
        return 0;
    unsigned c = a->run_class[(u - a->slice) >> AX_ARENA_RUN_SHIFT];
    return c < AX_ARENA_NCLASSES ? ax__arena_class_bytes[c] : 0;
}

uint64_t ax_arena_reserved_bytes(const ax_arena_t *a) { return a->data_hi - a->slice; }

void ax_arena_get_stats(const ax_arena_t *a, ax_arena_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->reserved_bytes = ax_arena_reserved_bytes(a);
    out->data_bytes = a->data_hi - a->data_lo;
    uint64_t freed = 0; /* bytes freed, by class counts (see hw_limit) */
    for (unsigned c = 0; c < AX_ARENA_NCLASSES; c++)
        freed += a->cls[c].nfree * ax__arena_class_bytes[c];
    out->used_bytes = a->alloc_bytes - freed;
    out->high_water_bytes = a->hw_limit - freed;
    out->bump_bytes = a->bump_bytes;
    out->remote_frees_received = a->remote_frees_received;
    out->remote_frees_sent = a->remote_frees_sent;
    out->failed_allocs = a->failed_allocs;
    out->bad_requests = a->bad_requests;
    out->remote_pending = a->remote_pending;
    out->nclasses = AX_ARENA_NCLASSES;
    for (unsigned c = 0; c < AX_ARENA_NCLASSES; c++) {
        out->class_size[c] = ax__arena_class_bytes[c];
        out->class_in_use[c] = a->cls[c].nalloc - a->cls[c].nfree;
    }
    out->runs_total = (a->data_hi - a->data_lo) >> AX_ARENA_RUN_SHIFT;
    out->runs_used = (a->next_run - a->data_lo) >> AX_ARENA_RUN_SHIFT;
    out->hugepages = a->hugepages;
    out->hugepages_note = a->hugepages_note;
    out->node = a->node;
}

/* ---- group ----------------------------------------------------------------------- */

ax_arena_t *ax_arena_group_get(ax_arena_group_t *g, uint32_t i)
{
    return i < g->narenas ? g->arenas[i] : NULL;
}

uint32_t ax_arena_group_size(const ax_arena_group_t *g) { return g->narenas; }
uint32_t ax_arena_index(const ax_arena_t *a) { return a->index; }

ax_arena_t *ax_arena_owner(const ax_arena_group_t *g, const void *p)
{
    uintptr_t u = (uintptr_t)p;
    if (u < g->base || u - g->base >= (uintptr_t)g->narenas * g->stride)
        return NULL;
    ax_arena_t *a = g->arenas[(u - g->base) >> g->shift];
    return u >= a->data_lo && u < a->data_hi ? a : NULL;
}

static size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

/* Header layout for a slice of `runs` runs: struct, run_class[runs],
 * rings[narenas], pending[narenas], dirty[narenas]; offsets out, total back. */
static size_t header_layout(size_t runs, uint32_t narenas, size_t *rings, size_t *pending,
                            size_t *dirty)
{
    size_t h = round_up(offsetof(struct ax_arena, run_class) + runs, 64);
    *rings = h;
    h = round_up(h + (size_t)narenas * sizeof(ax__arena_ring_t), 64);
    *pending = h;
    h = round_up(h + (size_t)narenas * sizeof(ax__arena_pending_t), 64);
    *dirty = h;
    return h + (size_t)narenas * sizeof(uint32_t);
}

/* Whether transparent huge pages can be had through madvise here. */
static const char *thp_state(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f)
        return "no transparent_hugepage in sysfs: 4 KiB pages";
    char buf[128] = "";
    char *ok = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!ok || strstr(buf, "[never]"))
        return "THP disabled (transparent_hugepage/enabled = never): 4 KiB pages; "
               "set it to madvise to use huge pages";
    return NULL;
}

/* Binds, advises and pre-faults slice i, then writes its header.
 * Returns 0 or a negative errno; on error the caller unmaps everything. */
static int arena_init(ax_arena_group_t *g, uint32_t i, const ax_arena_group_opts_t *o,
                      size_t hdr_runs, const char *thp_note)
{
    uintptr_t slice = g->base + (uintptr_t)i * g->stride;
    int node = o->nodes ? o->nodes[i] : -1;
    if (mprotect((void *)slice, g->slice_bytes, PROT_READ | PROT_WRITE) != 0)
        return -ENOMEM;

    bool huge = false;
    const char *note = "huge pages not requested";
    if (o->hugepages) {
        /* MAP_HUGETLB needs a preallocated hugetlbfs pool (usually empty), so
         * THP through madvise is the one path tried. */
        if (thp_note) {
            note = thp_note;
        } else if (madvise((void *)slice, g->slice_bytes, MADV_HUGEPAGE) == 0) {
            huge = true;
            note = "THP via madvise(MADV_HUGEPAGE); the kernel may still use 4 KiB "
                   "pages where a 2 MiB page is not available";
        } else {
            note = "madvise(MADV_HUGEPAGE) failed: 4 KiB pages";
        }
    }

    if (node >= 0) {
        if ((unsigned)node >= AX__MAX_NODE_BITS)
            return -EINVAL;
        unsigned long mask[AX__MAX_NODE_BITS / (8 * sizeof(unsigned long))] = {0};
        mask[(unsigned)node / (8 * sizeof(unsigned long))] =
            1UL << ((unsigned)node % (8 * sizeof(unsigned long)));
        /* Before first touch, so every page is faulted in on `node`.  maxnode
         * is bits + 1: the kernel reads maxnode - 1 bits. */
        if (mbind((void *)slice, g->slice_bytes, MPOL_BIND, mask, AX__MAX_NODE_BITS + 1,
                  MPOL_MF_STRICT | MPOL_MF_MOVE) != 0) {
            int e = errno;
            if (e == ENOSYS && node == 0) {
                node = -1; /* kernel without NUMA: everything is node 0 anyway */
            } else {
                fprintf(stderr,
                        "axon alloc: binding arena %u (%zu KiB) to NUMA node %d failed: "
                        "%s; check the node exists (numactl -H) and is allowed by the "
                        "cpuset, or leave the node unset\n",
                        i, g->slice_bytes >> 10, node, strerror(e));
                return e == EINVAL ? -EINVAL : -ENOMEM;
            }
        }
    }

    if (o->prefault) {
        int done = -1;
#ifdef MADV_POPULATE_WRITE
        done = madvise((void *)slice, g->slice_bytes, MADV_POPULATE_WRITE);
#endif
        if (done != 0) {
            long pg = sysconf(_SC_PAGESIZE);
            for (size_t off = 0; off < g->slice_bytes; off += (size_t)pg)
                ((volatile char *)slice)[off] = 0;
        }
    }

    ax_arena_t *a = (ax_arena_t *)slice;
    size_t runs = g->slice_bytes >> AX_ARENA_RUN_SHIFT;
    size_t ro, po, dof;
    size_t hb = header_layout(runs, g->narenas, &ro, &po, &dof);
    memset(a, 0, hb);
    a->slice = slice;
    a->data_lo = slice + hdr_runs * AX_ARENA_RUN_BYTES;
    a->data_hi = slice + g->slice_bytes;
    a->next_run = a->data_lo;
    a->gbase = g->base;
    a->shift = g->shift;
    a->index = i;
    a->narenas = g->narenas;
    a->peers = g->arenas;
    a->rings = (ax__arena_ring_t *)(slice + ro);
    a->pending = (ax__arena_pending_t *)(slice + po);
    a->dirty = (uint32_t *)(slice + dof);
    memset(a->run_class, AX__ARENA_NO_CLASS, runs);
    for (uint32_t s = 0; s < g->narenas; s++) {
        atomic_init(&a->rings[s].tail, 0);
        atomic_init(&a->rings[s].head, 0);
    }
    a->node = node;
    a->hugepages = huge;
    a->hugepages_note = note;
    g->arenas[i] = a;
    return 0;
}

int ax_arena_group_create(const ax_arena_group_opts_t *o, ax_arena_group_t **out)
{
    if (!o || !out || o->narenas == 0 || o->narenas > AX__MAX_ARENAS ||
        o->arena_bytes == 0 || o->arena_bytes > ((uint64_t)1 << 40))
        return -EINVAL;
    *out = NULL;

    size_t data = round_up((size_t)o->arena_bytes, AX_ARENA_RUN_BYTES);
    size_t hdr_runs = 1;
    size_t ro, po, dof;
    while (hdr_runs * AX_ARENA_RUN_BYTES <
           header_layout(hdr_runs + data / AX_ARENA_RUN_BYTES, o->narenas, &ro, &po, &dof))
        hdr_runs++;
    size_t slice = hdr_runs * AX_ARENA_RUN_BYTES + data;
    uint32_t shift = AX_ARENA_RUN_SHIFT;
    while (((size_t)1 << shift) < slice)
        shift++;
    size_t stride = (size_t)1 << shift, total;
    if (__builtin_mul_overflow(stride, (size_t)o->narenas, &total) ||
        total > ((size_t)1 << 46))
        return -ENOMEM;

    ax_arena_group_t *g = calloc(1, sizeof *g + o->narenas * sizeof(ax_arena_t *));
    if (!g)
        return -ENOMEM;
    /* PROT_NONE + NORESERVE: address space only; slices become RW one by one,
     * the gap after each stays PROT_NONE and catches overruns. */
    g->map_len = total + AX__HUGE_ALIGN;
    g->map = mmap(NULL, g->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
    if (g->map == MAP_FAILED) {
        free(g);
        return -ENOMEM;
    }
    g->base = round_up((uintptr_t)g->map, AX__HUGE_ALIGN);
    g->stride = stride;
    g->slice_bytes = slice;
    g->shift = shift;
    g->narenas = o->narenas;

    const char *thp_note = o->hugepages ? thp_state() : NULL;
    for (uint32_t i = 0; i < o->narenas; i++) {
        int rc = arena_init(g, i, o, hdr_runs, thp_note);
        if (rc != 0) {
            munmap(g->map, g->map_len);
            free(g);
            return rc;
        }
    }
    /* Fresh memory is poisoned until the bump pointer hands it out. */
    for (uint32_t i = 0; i < o->narenas; i++)
        AX__POISON((void *)g->arenas[i]->data_lo, data);
    *out = g;
    return 0;
}

void ax_arena_group_destroy(ax_arena_group_t *g)
{
    if (!g)
        return;
    /* Unpoison before unmapping: ASan's shadow would otherwise outlive the
     * mapping and fault the next user of these addresses. */
    for (uint32_t i = 0; i < g->narenas; i++)
        AX__UNPOISON((void *)g->arenas[i]->data_lo, g->arenas[i]->data_hi - g->arenas[i]->data_lo);
    munmap(g->map, g->map_len);
    free(g);
}
