/* engine/ring.h - single-producer, single-consumer ring of 64-byte messages
 * between two workers.  Hot path: everything here is static inline.
 *
 * Threading: one producer (the sending worker), one consumer (the receiving
 * worker); no other thread touches a ring between ax_engine_start and the
 * shutdown barrier.
 *
 * Protocol.  Indices run free (uint32_t, wrapping) and are masked on use, so
 * full (tail - head == capacity) and empty (tail == head) differ with no
 * spare slot.  The producer writes slots in place (ax_ring_reserve returns
 * the slot), and makes a whole batch visible with one release store of the
 * tail (ax_ring_publish, once per loop turn).  The consumer dispatches
 * straight from the slot (no copy) and hands a batch of slots back with one
 * release store of the head (ax_ring_release).  Each side keeps a cached copy
 * of the other's index and re-reads the shared one only when the ring looks
 * full (producer) or empty (consumer), so in steady state a batch costs one
 * cache-line transfer for the slots' lines plus one for each index.
 *
 * Memory: the slots array and this struct come from the engine (allocated on
 * the consumer's NUMA node) and are freed by it at destroy.
 */
#ifndef AXON_ENGINE_RING_H
#define AXON_ENGINE_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "axon/axon.h"

#define AX_CACHELINE 64

typedef struct ax_ring {
    /* consumer's line: written by the consumer only */
    alignas(AX_CACHELINE) _Atomic uint32_t head;
    uint32_t c_tail_seen; /* consumer's copy of tail */
    uint32_t c_head;      /* consumer's private head (published by release) */
    uint32_t c_mask;
    ax_msg_t *c_slots;

    /* producer's line: written by the producer only */
    alignas(AX_CACHELINE) _Atomic uint32_t tail;
    uint32_t p_head_seen; /* producer's copy of head */
    uint32_t p_tail;      /* next slot to write; published by ax_ring_publish */
    uint32_t p_mask;
    ax_msg_t *p_slots;
} ax_ring_t;

_Static_assert(sizeof(ax_ring_t) == 2 * AX_CACHELINE, "ring control is two lines, one per side");

static inline void ax_ring_init(ax_ring_t *r, ax_msg_t *slots, uint32_t capacity)
{
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->c_tail_seen = r->c_head = 0;
    r->p_head_seen = r->p_tail = 0;
    r->c_mask = r->p_mask = capacity - 1;
    r->c_slots = r->p_slots = slots;
}

/* Producer: a slot to write, or NULL when the ring is full.  The slot becomes
 * visible to the consumer at the next ax_ring_publish. */
static inline ax_msg_t *ax_ring_reserve(ax_ring_t *r)
{
    if (__builtin_expect(r->p_tail - r->p_head_seen > r->p_mask, 0)) {
        /* A2: pairs with R2 in ax_ring_release: the consumer is done with
         * every slot below head, so we may overwrite them. */
        r->p_head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (r->p_tail - r->p_head_seen > r->p_mask)
            return 0;
    }
    return &r->p_slots[r->p_tail++ & r->p_mask];
}

/* Producer: make every reserved slot visible.  Returns true if anything new
 * was published (the caller then rings the doorbell / checks for a parked
 * consumer). */
static inline bool ax_ring_publish(ax_ring_t *r)
{
    if (atomic_load_explicit(&r->tail, memory_order_relaxed) == r->p_tail)
        return false;
    /* R1: the slot writes before this store are visible to a consumer that
     * reads the new tail.  Pairs with A1 in ax_ring_peek. */
    atomic_store_explicit(&r->tail, r->p_tail, memory_order_release);
    return true;
}

/* Producer: messages reserved but not yet consumed (an upper bound). */
static inline uint32_t ax_ring_p_depth(const ax_ring_t *r) { return r->p_tail - r->p_head_seen; }

/* Consumer: the next message, or NULL when the ring is empty.  The slot stays
 * valid (and unwritten by the producer) until ax_ring_release. */
static inline ax_msg_t *ax_ring_peek(ax_ring_t *r)
{
    if (r->c_head == r->c_tail_seen) {
        /* A1: pairs with R1 in ax_ring_publish: every slot below tail has
         * been written. */
        r->c_tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (r->c_head == r->c_tail_seen)
            return 0;
    }
    return &r->c_slots[r->c_head & r->c_mask];
}

/* Consumer: done with the peeked message (private; not yet visible). */
static inline void ax_ring_advance(ax_ring_t *r) { r->c_head++; }

/* Consumer: hand every advanced slot back to the producer. */
static inline void ax_ring_release(ax_ring_t *r)
{
    /* R2: our reads of the released slots happen before the producer
     * rewrites them.  Pairs with A2 in ax_ring_reserve. */
    atomic_store_explicit(&r->head, r->c_head, memory_order_release);
}

/* Consumer: true if the ring has messages we have not peeked (fresh load). */
static inline bool ax_ring_c_nonempty(ax_ring_t *r)
{
    if (r->c_head != r->c_tail_seen)
        return true;
    r->c_tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire); /* A1 */
    return r->c_head != r->c_tail_seen;
}

#endif /* AXON_ENGINE_RING_H */
