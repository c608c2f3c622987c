/* alloc/arena.h - NUMA-local fixed arenas with size classes and remote free.
 *
 * A group holds N arenas (one per worker) carved from one virtual
 * reservation with a fixed power-of-two stride, so the owner of any block is
 * found from its address in O(1).  Each arena's slice is bound to its NUMA
 * node at create (mbind), optionally pre-faulted and huge-page backed.
 *
 * Threading: ax_arena_alloc/ax_arena_free/ax_arena_reclaim/ax_arena_flush run
 * on the owning thread only (no atomics on that path).  ax_arena_free_any may
 * be called by the thread that owns `self` for a block of ANY arena of the
 * group: a foreign block is queued and returned to its owner in batches over
 * a lock-free per-pair return path (see arena.c for the protocol).
 * Group create/destroy: one thread, while no arena is in use.
 *
 * Knows nothing of actors or workers: an "owner" is just the thread that
 * uses arena i.
 *
 * INTERFACE CONTRACT used by engine/: keep these names and semantics.
 *
 * ---- implementation notes (alloc/arena.c has the full protocol) -----------
 * Slice layout: [header runs | data runs ... | PROT_NONE gap up to the stride].
 * The data part is cut into 64 KiB runs (AX_ARENA_RUN_BYTES); a run serves a
 * single size class for its whole life, and the header keeps one class byte
 * per run, so an unsized free finds the class in O(1):
 *     class = run_class[(p - slice) >> 16]
 * Size classes (28, AX_ARENA_NCLASSES):
 *     16 32 48 64 80 96 112 128                  (step 16)
 *     160 192 224 256  320 384 448 512           (4 per doubling)
 *     640 768 896 1024  1280 1536 1792 2048  2560 3072 3584 4096
 * Worst-case internal waste: < 16 B for requests <= 128 B, and below 25 % of
 * the request above (a request of 2^k + 1 gets 2^k + 2^k/4: e.g. 129 -> 160).
 * Every request that is a multiple of 64 maps to a class that is a multiple
 * of 64, and runs are 64 KiB aligned, so those blocks are 64-byte aligned.
 * Run tails (65536 mod class size, at most 1 KiB for 3584) are never used.
 *
 * Debug checks (AXON_ARENA_DEBUG: on in sanitizer and Debug builds, where CI
 * runs the tests that prove them; off in the release build, where they were
 * more than half the instructions of an alloc+free pair; -DAXON_DEBUG_CHECKS=ON|OFF
 * overrides, NDEBUG always turns them off):
 * ax_arena_free checks that p lies in a's data runs, on a block boundary of
 * its class, and that it is not already free: a free block carries a marker
 * word (AX__ARENA_FREE_MARK ^ address) in its second word, written on free
 * and cleared on alloc, so a double free (local or remote, by any thread)
 * aborts with a message.  Cost: one compare and one store per free, one store
 * per alloc, plus the boundary check.
 * Under AddressSanitizer free blocks and unused bump memory are poisoned.
 */
#ifndef AXON_ALLOC_ARENA_H
#define AXON_ALLOC_ARENA_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ax_arena ax_arena_t;
typedef struct ax_arena_group ax_arena_group_t;

typedef struct ax_arena_group_opts {
    uint32_t narenas;
    uint64_t arena_bytes; /* usable bytes per arena (rounded up to 64 KiB runs) */
    const int *nodes;     /* narenas NUMA OS indexes; NULL or -1: do not bind */
    bool prefault;
    bool hugepages;       /* try THP/hugetlb; fall back silently but record it */
} ax_arena_group_opts_t;

typedef struct ax_arena_stats {
    uint64_t reserved_bytes;   /* size of the arena's slice (header + data runs) */
    uint64_t used_bytes;       /* handed out and not freed (by class size) */
    uint64_t high_water_bytes; /* max of used_bytes */
    uint64_t bump_bytes;       /* fresh memory consumed by the bump pointer */
    uint64_t remote_frees_received;
    uint64_t remote_frees_sent;
    uint64_t failed_allocs;
    uint32_t nclasses;
    uint64_t class_size[32];
    uint64_t class_in_use[32]; /* blocks */
    bool hugepages;            /* huge pages actually in use */
    int node;                  /* bound NUMA node, -1 if unbound */
    /* added by the alloc module */
    uint64_t data_bytes;       /* usable bytes (data runs) */
    uint64_t runs_total;       /* data runs in the slice */
    uint64_t runs_used;        /* runs handed to a class so far */
    uint64_t bad_requests;     /* size 0 or > AX_ARENA_MAX_CLASS (not counted as failed) */
    uint64_t remote_pending;   /* foreign blocks queued here, not yet published */
    const char *hugepages_note; /* why huge pages are or are not in use (static string) */
} ax_arena_stats_t;

/* 0, -EINVAL (bad opts, or mbind refused a node: not a node of this machine),
 * -ENOMEM (reservation or binding failed; nothing left mapped). */
int ax_arena_group_create(const ax_arena_group_opts_t *opts, ax_arena_group_t **out);
void ax_arena_group_destroy(ax_arena_group_t *g); /* NULL: does nothing */
ax_arena_t *ax_arena_group_get(ax_arena_group_t *g, uint32_t i);
uint32_t ax_arena_group_size(const ax_arena_group_t *g);

/* The arena owning p (any block of the group), or NULL if p is not in it. O(1). */
ax_arena_t *ax_arena_owner(const ax_arena_group_t *g, const void *p);
uint32_t ax_arena_index(const ax_arena_t *a);

/* Largest size served by size classes; above it ax_arena_alloc returns NULL
 * (callers use ax_large_alloc). */
#define AX_ARENA_MAX_CLASS 4096u

/* Owner thread.  size 1..AX_ARENA_MAX_CLASS; 16-byte aligned (64-byte aligned
 * for sizes that are multiples of 64).  NULL on exhaustion (counted). */
static inline void *ax_arena_alloc(ax_arena_t *a, size_t size);
/* Owner thread; p was allocated from a. */
static inline void ax_arena_free(ax_arena_t *a, void *p);
/* Thread of `self`; p from any arena of the group (local: plain free;
 * foreign: queued for its owner, pushed by ax_arena_flush or when a batch
 * fills). */
static inline void ax_arena_free_any(ax_arena_t *self, void *p);
/* Push queued foreign frees now (a worker calls it once per loop turn). */
void ax_arena_flush(ax_arena_t *self);
/* Take back blocks other threads returned to self.  Returns blocks reclaimed.
 * Cheap when there is nothing (one relaxed/acquire load per source). */
size_t ax_arena_reclaim(ax_arena_t *self);
/* Same, visiting every sender's ring, not only the ones whose doorbell bit
 * is set (a hint that can be missed; see arena.c).  Owner thread. */
size_t ax_arena_reclaim_all(ax_arena_t *self);
/* Usable size of the block at p (its class size). */
size_t ax_arena_block_size(const ax_arena_t *a, const void *p);

/* Owner thread, or any thread while the owner does not use the arena. */
void ax_arena_get_stats(const ax_arena_t *a, ax_arena_stats_t *out);
/* stats.reserved_bytes, which never changes after create: any thread. */
uint64_t ax_arena_reserved_bytes(const ax_arena_t *a);

/* Size class of a request (0..AX_ARENA_NCLASSES-1), or -1 if size is 0 or
 * above AX_ARENA_MAX_CLASS; and the size of a class. */
int ax_arena_class_of(size_t size);
size_t ax_arena_class_size(unsigned cls);

/* ---- large allocations: jemalloc, one arena per NUMA node -------------------
 * Thread-safe.  node -1: no binding.  Under sanitizers these fall back to the
 * libc allocator (ASan/TSan replace malloc and cannot see into mallocx).
 * ax_large_alloc: NULL for size 0 or above PTRDIFF_MAX, a node >=
 * AX_LARGE_MAX_NODES, or when the
 * node's memory cannot be had (never served from another node); 64-byte
 * aligned.  ax_large_free: size is the size passed to ax_large_alloc (or 0 if
 * unknown); NULL does nothing. */
#define AX_LARGE_MAX_NODES 64
void *ax_large_alloc(int node, size_t size);
void ax_large_free(void *p, size_t size);
/* Allocations ax_large_alloc refused or could not serve, process-wide. */
uint64_t ax_large_failed_allocs(void);

/* ======================= inline fast paths (private) ======================= */

#ifndef ax_likely
#define ax_likely(x) __builtin_expect(!!(x), 1)
#define ax_unlikely(x) __builtin_expect(!!(x), 0)
#endif

#if !defined(NDEBUG) && !defined(AXON_ARENA_DEBUG) && !defined(AXON_NO_DEBUG_CHECKS)
#define AXON_ARENA_DEBUG 1
#endif

#if defined(__SANITIZE_ADDRESS__)
#define AX__ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AX__ARENA_ASAN 1
#endif
#endif
#ifdef AX__ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define AX__POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define AX__UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define AX__POISON(p, n) ((void)(p), (void)(n))
#define AX__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define AX_ARENA_NCLASSES 28u
#define AX_ARENA_RUN_SHIFT 16u
#define AX_ARENA_RUN_BYTES (1u << AX_ARENA_RUN_SHIFT)
#define AX_ARENA_BATCH 64u          /* foreign frees per published batch */
#define AX_ARENA_RING 256u          /* slots per (sender, owner) return ring */
#define AX__ARENA_NO_CLASS 0xffu    /* run_class of header runs and unused runs */
#define AX__ARENA_FREE_MARK ((uintptr_t)0x9e3779b97f4a7c15ull)

/* A free block: word 0 links it, word 1 marks it free (debug builds). */
typedef struct ax__arena_block {
    struct ax__arena_block *next;
    uintptr_t mark;
} ax__arena_block_t;

/* Return ring from one sender to one owner; lives in the OWNER's header
 * (rings[sender]).  Indices run free and are masked on use. */
typedef struct ax__arena_ring {
    alignas(64) _Atomic uint32_t tail; /* sender publishes (R1) */
    alignas(64) _Atomic uint32_t head; /* owner consumes (R2) */
    alignas(64) ax__arena_block_t *slot[AX_ARENA_RING];
} ax__arena_ring_t;

/* The sender's private side of its ring to one owner (in the SENDER's header). */
typedef struct ax__arena_pending {
    uint32_t tail;        /* next slot to write */
    uint32_t pub;         /* tail as last published */
    uint32_t head_seen;   /* owner's head as last read */
    uint32_t ovf_count;   /* blocks in the overflow list (ring was full) */
    ax__arena_block_t *ovf; /* intrusive list, retried at flush */
    bool listed;          /* owner index is in the sender's dirty list */
} ax__arena_pending_t;

extern const uint8_t ax__arena_size_class[AX_ARENA_MAX_CLASS / 16 + 1];
extern const uint16_t ax__arena_class_bytes[AX_ARENA_NCLASSES];

/* Per size class, owner only.  Two free lists, mimalloc-style: alloc pops
 * `alist`, free pushes `flist`, and alloc takes the whole of `flist` only
 * when `alist` runs dry (and calls ax__arena_refill, which carves fresh
 * blocks in batches, only when both are).  Keeping the two apart breaks the store-to-load chain an
 * alloc+free pair would otherwise run through one list head (free writes the
 * head, the next alloc reads it back, then reads the link the free wrote):
 * alloc now depends only on the previous alloc, free on nothing.  A freed
 * block comes back once the blocks already on alist are used up, which in
 * an alloc+free loop is one batch: it stays hot.
 * Blocks in use = nalloc - nfree: two counters, one per side, for the same
 * reason.  Fresh blocks are carved onto alist in batches (at most 32 blocks
 * or 32 KiB), so an alloc+free loop swaps lists once per batch. */
typedef struct ax__arena_class {
    ax__arena_block_t *alist;
    ax__arena_block_t *flist;
    uint64_t nalloc, nfree;
} ax__arena_class_t;

/* The header at the start of each slice (so it is on the arena's node).
 * Written only by the owner thread, except the return rings' tails and slots
 * (written by their sender, own cache lines). */
struct ax_arena {
    /* hot, owner-written: free lists and accounting.  alloc_bytes: bytes
     * ever handed out; hw_limit: high-water mark + bytes ever freed, raised
     * to alloc_bytes when it passes it.  With freed = sum of nfree * class
     * size (ax_arena_get_stats), used = alloc_bytes - freed and high water =
     * hw_limit - freed, both exact.  Free adds to hw_limit; alloc reads it
     * only for a branch that is almost never taken, so neither side waits
     * on the other's store. */
    alignas(64) ax__arena_class_t cls[AX_ARENA_NCLASSES];
    uint64_t alloc_bytes, hw_limit;
    /* read-only after create */
    uintptr_t slice;      /* this slice's first byte (= this header) */
    uintptr_t data_lo, data_hi; /* data runs [data_lo, data_hi) */
    uintptr_t gbase;      /* group reservation base (owner lookup) */
    uint32_t shift;       /* log2(stride) */
    uint32_t index, narenas;
    struct ax_arena **peers; /* the group's arenas, by index */
    /* owner-written, colder */
    ax__arena_pending_t *pending; /* [narenas], foreign frees by owner */
    ax__arena_ring_t *rings;      /* [narenas], rings[s]: returns from sender s */
    uint32_t *dirty;      /* owners with pending blocks, ndirty of them */
    uint32_t ndirty;
    uint64_t remote_pending;
    uintptr_t run_cur[AX_ARENA_NCLASSES], run_end[AX_ARENA_NCLASSES];
    uintptr_t next_run;   /* bump pointer over data runs */
    uint64_t bump_bytes;
    uint64_t remote_frees_received, remote_frees_sent, failed_allocs, bad_requests;
    int node;
    bool hugepages;
    const char *hugepages_note;
    uint32_t reclaim_calls; /* every 64th ax_arena_reclaim scans every ring */
    /* Return doorbell: bit s set by sender s after it published to
     * rings[s] (R3), taken by the owner with exchange (A3), so reclaim visits
     * only the rings that have blocks instead of all narenas of them.  16
     * words cover the group limit of 1024 arenas. */
    alignas(64) _Atomic uint64_t ret_bell[16];
    alignas(64) uint8_t run_class[]; /* one per 64 KiB of the slice */
};

/* Out of line, cold (arena.c). */
void *ax__arena_refill(ax_arena_t *a, unsigned cls);
void *ax__arena_swap_one(ax_arena_t *a, unsigned cls, ax__arena_block_t *b);
void *ax__arena_bad_request(ax_arena_t *a, size_t size);
void ax__arena_publish(ax_arena_t *self, uint32_t owner);
void ax__arena_send_slow(ax_arena_t *self, uint32_t owner, ax__arena_block_t *b);
extern const uint32_t ax__arena_class_inv[AX_ARENA_NCLASSES];
_Noreturn void ax__arena_bad_free(const ax_arena_t *a, const void *p, const char *why)
    __attribute__((cold));

/* Link words of a free block.  Under ASan the block stays poisoned except
 * while the allocator itself reads or writes them. */
static inline ax__arena_block_t *ax__blk_next(ax__arena_block_t *b)
{
    AX__UNPOISON(b, sizeof *b);
    ax__arena_block_t *n = b->next;
    AX__POISON(b, sizeof *b);
    return n;
}
static inline void ax__blk_link(ax__arena_block_t *b, ax__arena_block_t *next)
{
    AX__UNPOISON(b, sizeof *b);
    b->next = next;
#ifdef AXON_ARENA_DEBUG
    b->mark = AX__ARENA_FREE_MARK ^ (uintptr_t)b;
#endif
    AX__POISON(b, sizeof *b);
}

#ifdef AXON_ARENA_DEBUG
/* Aborts with a message if p cannot be a live block of a.  hi: a->next_run
 * on the owner thread; a->data_hi elsewhere (next_run moves under the owner,
 * while p's run_class byte was written before p was handed out). */
static inline void ax__arena_check_free(const ax_arena_t *a, const void *p, uintptr_t hi)
{
    uintptr_t u = (uintptr_t)p;
    if (ax_unlikely(u < a->data_lo || u >= hi))
        ax__arena_bad_free(a, p, "not a block of this arena (foreign arena or wild pointer)");
    unsigned c = a->run_class[(u - a->slice) >> AX_ARENA_RUN_SHIFT];
    if (ax_unlikely(c >= AX_ARENA_NCLASSES))
        ax__arena_bad_free(a, p, "points into a run that serves no class");
    /* offset in run / class size by reciprocal (exact for offsets < 2^16
     * and sizes <= 2^12), so the check costs a multiply, not a divide */
    uint32_t off = (uint32_t)((u - a->slice) & (AX_ARENA_RUN_BYTES - 1));
    uint32_t q = (uint32_t)(((uint64_t)off * ax__arena_class_inv[c]) >> 32);
    if (ax_unlikely(q * ax__arena_class_bytes[c] != off))
        ax__arena_bad_free(a, p, "not at the start of a block");
#ifdef AX__ARENA_ASAN
    if (__asan_address_is_poisoned(p))
        ax__arena_bad_free(a, p, "double free (block is poisoned: already free)");
#endif
    if (ax_unlikely(((const ax__arena_block_t *)p)->mark == (AX__ARENA_FREE_MARK ^ u)))
        ax__arena_bad_free(a, p, "double free (block carries the free marker)");
}
#endif

/* ---- block checks available in every build ------------------------------
 * For callers that hand blocks across an API boundary (engine blobs): is p
 * the start of a block of class memory of a, and is it free?  NULL when p
 * looks like a live block, else what is wrong.  "Free" is the marker word
 * (word 1) a caller writes with ax_arena_mark_free before it frees the
 * block and clears with ax_arena_mark_live when it hands it out; debug
 * builds write it on every free anyway.  Reads only bytes written before p
 * was handed out (run_class) and p's own words: any thread.  Cost: a load
 * of the run's class byte, a multiply and two compares. */
static inline const char *ax_arena_check_block(const ax_arena_t *a, const void *p)
{
    uintptr_t u = (uintptr_t)p;
    if (ax_unlikely(u < a->data_lo || u >= a->data_hi))
        return "not a block of any arena (foreign or wild pointer)";
    unsigned c = a->run_class[(u - a->slice) >> AX_ARENA_RUN_SHIFT];
    if (ax_unlikely(c >= AX_ARENA_NCLASSES))
        return "points into arena memory that was never handed out (wild pointer)";
    /* offset in run / class size by reciprocal (exact for offsets < 2^16
     * and sizes <= 2^12): a multiply, not a divide */
    uint32_t off = (uint32_t)((u - a->slice) & (AX_ARENA_RUN_BYTES - 1));
    uint32_t q = (uint32_t)(((uint64_t)off * ax__arena_class_inv[c]) >> 32);
    if (ax_unlikely(q * ax__arena_class_bytes[c] != off))
        return "points inside a block, not at its start";
#ifdef AX__ARENA_ASAN
    if (__asan_address_is_poisoned(p))
        return "already free (double free)";
#endif
    if (ax_unlikely(((const ax__arena_block_t *)p)->mark == (AX__ARENA_FREE_MARK ^ u)))
        return "already free (double free)";
    return NULL;
}
static inline void ax_arena_mark_free(void *p)
{
    ((ax__arena_block_t *)p)->mark = AX__ARENA_FREE_MARK ^ (uintptr_t)p;
}
static inline void ax_arena_mark_live(void *p) { ((ax__arena_block_t *)p)->mark = 0; }

/* Counts b, an unpoisoned block of class k (cs bytes), out to the caller:
 * the fast path's and the refill paths' common end. */
static inline void *ax__arena_hand_out(ax_arena_t *a, ax__arena_class_t *k, ax__arena_block_t *b,
                                       size_t cs)
{
#ifdef AXON_ARENA_DEBUG
    b->mark = 0;
#endif
    k->nalloc++;
    uint64_t ab = a->alloc_bytes + cs;
    a->alloc_bytes = ab;
    if (ax_unlikely(ab > a->hw_limit)) /* a new high-water mark */
        a->hw_limit = ab;
    return b;
}

static inline void *ax_arena_alloc(ax_arena_t *a, size_t size)
{
    if (ax_unlikely(size - 1 >= AX_ARENA_MAX_CLASS)) /* 0 wraps around */
        return ax__arena_bad_request(a, size);
    unsigned c = ax__arena_size_class[(size + 15) >> 4];
    ax__arena_class_t *k = &a->cls[c];
    ax__arena_block_t *b = k->alist;
    if (ax_unlikely(!b)) {
        /* Swap in the freed blocks here, not in the call: in a steady
         * state with no spare block (free the oldest, allocate one) every
         * alloc lands here with one block on flist. */
        b = k->flist;
        if (!b)
            return ax__arena_refill(a, c);
        k->flist = NULL;
        if (ax_unlikely(!ax__blk_next(b))) /* nothing spare: see arena.c */
            return ax__arena_swap_one(a, c, b);
    }
    size_t cs = ax__arena_class_bytes[c];
    AX__UNPOISON(b, cs);
    k->alist = b->next;
    return ax__arena_hand_out(a, k, b, cs);
}

static inline void ax_arena_free(ax_arena_t *a, void *p)
{
#ifdef AXON_ARENA_DEBUG
    ax__arena_check_free(a, p, a->next_run);
#endif
    unsigned c = a->run_class[((uintptr_t)p - a->slice) >> AX_ARENA_RUN_SHIFT];
    size_t cs = ax__arena_class_bytes[c];
    ax__arena_class_t *k = &a->cls[c];
    ax__arena_block_t *b = (ax__arena_block_t *)p;
    b->next = k->flist;
#ifdef AXON_ARENA_DEBUG
    b->mark = AX__ARENA_FREE_MARK ^ (uintptr_t)b;
#endif
    AX__POISON(b, cs);
    k->flist = b;
    k->nfree++;
    a->hw_limit += cs;
}

static inline void ax_arena_free_any(ax_arena_t *self, void *p)
{
    uint32_t o = (uint32_t)(((uintptr_t)p - self->gbase) >> self->shift);
    if (ax_likely(o == self->index)) {
        ax_arena_free(self, p);
        return;
    }
#ifdef AXON_ARENA_DEBUG
    if (ax_unlikely(o >= self->narenas))
        ax__arena_bad_free(self, p, "not a block of this arena group");
    ax__arena_check_free(self->peers[o], p, self->peers[o]->data_hi);
#endif
    ax__arena_pending_t *pd = &self->pending[o];
    ax__arena_block_t *b = (ax__arena_block_t *)p;
#ifdef AXON_ARENA_DEBUG
    b->mark = AX__ARENA_FREE_MARK ^ (uintptr_t)b; /* a second free_any sees it */
#endif
#ifdef AX__ARENA_ASAN
    {   /* poison the whole block while it travels; run_class of p's run was
         * written before p was handed out, so reading it here is safe */
        const ax_arena_t *ow = self->peers[o];
        AX__POISON(b, ax__arena_class_bytes[ow->run_class[((uintptr_t)p - ow->slice) >>
                                                          AX_ARENA_RUN_SHIFT]]);
    }
#endif
    if (!pd->listed) {
        pd->listed = true;
        self->dirty[self->ndirty++] = o;
    }
    self->remote_pending++;
    if (ax_unlikely(pd->tail - pd->head_seen >= AX_ARENA_RING)) {
        ax__arena_send_slow(self, o, b); /* ring looks full: re-read head or queue */
        return;
    }
    /* The slot is ours: the owner released it (R2) and we acquired that (A2)
     * when head_seen was read.  Published with the batch (R1). */
    self->peers[o]->rings[self->index].slot[pd->tail % AX_ARENA_RING] = b;
    if (ax_unlikely(++pd->tail - pd->pub >= AX_ARENA_BATCH))
        ax__arena_publish(self, o);
}

#endif /* AXON_ALLOC_ARENA_H */
