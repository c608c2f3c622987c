/* engine/ring.h - single-producer, single-consumer ring of 64-byte messages
 * between two workers.  Hot path: everything here is static inline.
 *
 * Threading: one producer (the sending worker), one consumer (the receiving
 * worker); no other thread touches a ring between ax_engine_start and the
 * shutdown barrier.
 *
 * Protocol.  Indices run free (uint32_t, wrapping) and are masked on use, so
 * full (p_tail - head == capacity) and empty differ with no spare slot.
 * A message becomes visible through its own slot, not a shared tail index:
 * the producer fills the slot in place and stores the slot's header word
 * last, with release (R1, in ax_ring_commit), carrying a lap stamp (lap + 1,
 * 8 bits).  The consumer reads the header word of the slot at its head with
 * acquire (A1, ax_ring_peek) and takes the slot when the stamp is the one
 * its lap expects.  A message therefore costs the consumer one cache-line
 * transfer, its slot's, which is the floor for moving 64 bytes between
 * cores; a separate tail index would add a second transfer per batch and
 * delay visibility until the batch is published.  The consumer hands slots
 * back in batches with one release store of `head` (R2, ax_ring_release); the
 * producer re-reads head (A2) only when the ring looks full.  The drain
 * finds the ready run of slots first (ax_ring_ready: one A1 load per slot,
 * issued back to back so the slots' line transfers overlap) and then runs
 * them: each slot is still taken only after its own A1 saw its stamp.
 *
 * Stamps: a slot holds the stamp of the lap that last wrote it; the consumer
 * expects lap L's stamp where the slot can only hold lap L's or lap L-1's,
 * so 8 bits tell them apart; the zeroed slots of a new ring hold stamp 0,
 * which lap 0 (stamp 1) does not accept.
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
    /* consumer's line: written by the consumer only.  The consumer's head
     * is a cursor, not an index: the slot it points at and the stamp that
     * slot carries once ready, so a peek is two loads and a compare (no
     * mask, no variable shift: the spin and the drain start with one, on
     * the critical path of a request/reply exchange, issue 14).  The index
     * is c_base + (c_next - c_slots), computed at a release. */
    alignas(AX_CACHELINE) _Atomic uint32_t head;
    uint32_t c_base;  /* index of slot 0 in the consumer's lap */
    uint32_t c_want;  /* stamp of that lap, ax__ring_stamp(c_base, c_shift) */
    uint32_t c_shift; /* log2(capacity): lap = index >> shift */
    ax_msg_t *c_next; /* the consumer's head slot (private; published by release) */
    ax_msg_t *c_slots;
    ax_msg_t *c_end;  /* c_slots + capacity */

    /* producer's line: written by the producer only */
    alignas(AX_CACHELINE) uint32_t p_tail; /* next slot to write */
    /* The producer's copy of head plus the capacity: the ring is full
     * when p_tail reaches it (one comparison, no mask in the test). */
    uint32_t p_limit;
    uint32_t p_mask;
    /* The stamp of p_tail's lap, (p_tail >> log2(capacity)) + 1, kept up
     * to date at each wrap: the send needs no variable shift (and no
     * register for one).  Equal to the consumer's mod 256 also when the
     * indices wrap at 2^32, since 2^32 / capacity laps is a multiple of
     * 256 for any capacity up to 2^24. */
    uint32_t p_stamp;
    ax_msg_t *p_slots;
    /* The slot p_tail names and the end of the slot array: the send
     * steps a pointer and needs no mask or index register for the slot. */
    ax_msg_t *p_next, *p_end;
    /* 1 while this ring is in its producer's dirty list (published at
     * its next flush): kept on the line the send writes anyway. */
    uint32_t p_dirty;
    /* 1 while the producer's overflow queue to this ring is non-empty
     * (engine: set at the queue's first push, cleared when drain_overflow
     * empties it): a send must then queue behind it, not reserve.  Here,
     * on the line the send reads anyway, not in the queue's own struct. */
    uint32_t p_ovf;

    /* consumer's doorbell line, read by the producer (only with
     * scheduler.doorbell on): 1 while the consumer does not poll this ring,
     * so a producer that publishes to it must ring the consumer's bell.
     * The consumer writes it only when it starts or stops polling the ring
     * (protocol and proof: engine.c, "Doorbell"), so the producer's load of
     * it at each flush is a hit in its own cache, not a line transfer. */
    alignas(AX_CACHELINE) _Atomic uint32_t asleep;
} ax_ring_t;

_Static_assert(sizeof(ax_ring_t) == 3 * AX_CACHELINE,
               "ring control is three lines: consumer, producer, doorbell state");

static inline uint8_t ax__ring_stamp(uint32_t index, uint32_t shift)
{
    return (uint8_t)((index >> shift) + 1u);
}

static inline void ax_ring_init(ax_ring_t *r, ax_msg_t *slots, uint32_t capacity)
{
    uint32_t shift = (uint32_t)__builtin_ctz(capacity);
    atomic_init(&r->head, 0);
    atomic_init(&r->asleep, 1); /* not polled until its first bell */
    r->c_base = r->p_tail = r->p_dirty = r->p_ovf = 0;
    r->p_limit = capacity;
    r->p_mask = capacity - 1;
    r->c_shift = shift;
    r->c_want = r->p_stamp = ax__ring_stamp(0, shift);
    r->c_next = r->c_slots = r->p_slots = r->p_next = slots;
    r->c_end = r->p_end = slots + capacity;
}

/* Consumer: the free-running index of the head slot (what a release
 * publishes). */
static inline uint32_t ax_ring_c_index(const ax_ring_t *r)
{
    return r->c_base + (uint32_t)(r->c_next - r->c_slots);
}

/* Consumer: put the head at free-running index i (ring set-up and tests;
 * never while the consumer holds unreleased slots). */
static inline void ax_ring_c_seek(ax_ring_t *r, uint32_t i)
{
    uint32_t mask = (uint32_t)(r->c_end - r->c_slots) - 1u;
    r->c_base = i & ~mask;
    r->c_want = ax__ring_stamp(i, r->c_shift);
    r->c_next = r->c_slots + (i & mask);
}

/* Consumer: the head passed the array's last slot; the next lap starts at
 * slot 0 with the next stamp (mod 256, as ax__ring_stamp: 2^32 / capacity
 * laps is a multiple of 256 for every capacity up to 2^24). */
static inline void ax__ring_c_lap(ax_ring_t *r)
{
    r->c_next = r->c_slots;
    r->c_base += (uint32_t)(r->c_end - r->c_slots);
    r->c_want = (uint8_t)(r->c_want + 1u);
}

/* A ring that is always full (no slots; head never moves): a send to it
 * takes the caller's cold path.  Nothing consumes from it. */
static inline void ax_ring_init_full(ax_ring_t *r)
{
    atomic_init(&r->head, 0);
    atomic_init(&r->asleep, 1);
    r->c_base = r->c_want = r->p_tail = r->p_limit = r->p_dirty = r->p_ovf = 0;
    r->p_mask = UINT32_MAX; /* capacity 0: a reloaded limit is head + 0 */
    r->c_shift = r->p_stamp = 0;
    r->c_next = r->c_slots = r->c_end = r->p_slots = r->p_next = r->p_end = 0;
}

/* Both sides of an empty ring at index `start` (tests of the 2^32 wrap);
 * the slots must hold the previous lap's stamp. */
static inline void ax_ring_set_index(ax_ring_t *r, uint32_t start)
{
    atomic_store_explicit(&r->head, start, memory_order_relaxed);
    ax_ring_c_seek(r, start);
    r->p_tail = start;
    r->p_limit = start + r->p_mask + 1u;
    r->p_stamp = ax__ring_stamp(start, r->c_shift);
    r->p_next = r->p_slots + (start & r->p_mask);
}

/* Producer: false when the ring is full; else *m is the slot to fill and
 * *stamp the stamp to commit it with.  (A bool, not a NULL slot pointer,
 * so that an inlined caller branches once, on fullness.) */
static inline bool ax_ring_try_reserve(ax_ring_t *r, ax_msg_t **m, uint8_t *stamp)
{
    uint32_t tail = r->p_tail;
    if (__builtin_expect(tail == r->p_limit, 0)) {
        /* A2: pairs with R2 in ax_ring_release: the consumer is done with
         * every slot below head, so we may overwrite them. */
        r->p_limit = atomic_load_explicit(&r->head, memory_order_acquire) + r->p_mask + 1u;
        if (tail == r->p_limit)
            return false;
    }
    ax_msg_t *s = r->p_next;
    uint32_t stamp_now = r->p_stamp;
    *stamp = (uint8_t)stamp_now;
    *m = s;
    r->p_tail = tail + 1;
    if (__builtin_expect(++s == r->p_end, 0)) { /* the next slot starts a lap */
        s = r->p_slots;
        r->p_stamp = stamp_now + 1;
    }
    r->p_next = s;
    return true;
}

/* Producer: reserve a run of up to `want` (>= 1) consecutive slots that
 * lie in order from *first, all of one lap (the run stops at the end of the
 * slot array), and return its length: 0 when the ring is full.  *stamp is
 * the stamp to commit every slot of the run with; each slot is still
 * published by its own R1 (ax_msg_commit / ax_msg_commit_copy), in order.
 * head is re-read (A2) only when the cached room is smaller than `want`,
 * so a batch costs at most one load of the consumer's line. */
static inline uint32_t ax_ring_try_reserve_run(ax_ring_t *r, uint32_t want, ax_msg_t **first,
                                               uint8_t *stamp)
{
    uint32_t tail = r->p_tail, room = r->p_limit - tail;
    if (room < want) {
        /* A2: pairs with R2 in ax_ring_release, as in ax_ring_try_reserve. */
        r->p_limit = atomic_load_explicit(&r->head, memory_order_acquire) + r->p_mask + 1u;
        room = r->p_limit - tail;
        if (room == 0u)
            return 0;
        if (want > room)
            want = room;
    }
    ax_msg_t *s = r->p_next;
    uint32_t to_end = (uint32_t)(r->p_end - s); /* one lap per run */
    if (want > to_end)
        want = to_end;
    *stamp = (uint8_t)r->p_stamp;
    *first = s;
    r->p_tail = tail + want;
    if (want == to_end) { /* the next slot starts a lap */
        s = r->p_slots;
        r->p_stamp++;
    } else {
        s += want;
    }
    r->p_next = s;
    return want;
}

/* Producer: a slot to fill, or NULL when the ring is full.  *stamp gets the
 * stamp to commit the slot with. */
static inline ax_msg_t *ax_ring_reserve(ax_ring_t *r, uint8_t *stamp)
{
    ax_msg_t *m;
    return ax_ring_try_reserve(r, &m, stamp) ? m : 0;
}

/* AX_MSG_F_SYS (engine_internal.h): marks a system type (in [AX_TYPE_SYSTEM,
 * AX_TYPE_IO)), so that the drain loops need one flag test. */
#define AX__MSG_F_SYS 0x40u

/* Producer (or anyone filling a message, stamp 0 for non-ring slots): store
 * the header word last, with AX_MSG_F_SYS added for a system type (a test
 * the compiler folds away where the type is known).  R1: every other store
 * to the slot is visible to a consumer whose A1 load sees this word.  Pairs
 * with A1 in ax_ring_peek. */
static inline void ax_msg_commit(ax_msg_t *m, uint32_t type, uint16_t len, uint8_t flags,
                                 uint8_t stamp)
{
    if (type - AX_TYPE_SYSTEM < AX_TYPE_IO - AX_TYPE_SYSTEM)
        flags |= AX__MSG_F_SYS;
    uint64_t hdr = (uint64_t)type | ((uint64_t)len << 32) | ((uint64_t)flags << 48) |
                   ((uint64_t)stamp << 56);
    __atomic_store_n(&m->hdr, hdr, __ATOMIC_RELEASE);
}

/* As ax_msg_commit (R1), for a copy of a message that ax_msg_commit wrote
 * before: its flags already carry AX_MSG_F_SYS where the type needs it. */
static inline void ax_msg_commit_copy(ax_msg_t *m, uint32_t type, uint16_t len, uint8_t flags,
                                      uint8_t stamp)
{
    uint64_t hdr = (uint64_t)type | ((uint64_t)len << 32) | ((uint64_t)flags << 48) |
                   ((uint64_t)stamp << 56);
    __atomic_store_n(&m->hdr, hdr, __ATOMIC_RELEASE);
}

/* Consumer: the next message, or NULL when the ring is empty.  The slot stays
 * valid (and unwritten by the producer) until ax_ring_release. */
static inline ax_msg_t *ax_ring_peek(ax_ring_t *r)
{
    ax_msg_t *m = r->c_next;
    /* A1: pairs with R1 in ax_msg_commit: a matching stamp means the whole
     * slot has been written for this lap. */
    uint64_t hdr = __atomic_load_n(&m->hdr, __ATOMIC_ACQUIRE);
    return (hdr >> 56) == r->c_want ? m : 0;
}

/* Consumer: take the slot at the head inside a run that ax_ring_ready
 * counted (a run never passes the array's last slot, so no wrap test here:
 * the caller ends the run with ax_ring_run_end). */
static inline void ax_ring_take(ax_ring_t *r) { r->c_next++; }

/* Consumer: after a run's last ax_ring_take: start the next lap if the run
 * ended at the array's end.  True if it did. */
static inline bool ax_ring_run_end(ax_ring_t *r)
{
    if (__builtin_expect(r->c_next != r->c_end, 1))
        return false;
    ax__ring_c_lap(r);
    return true;
}

/* Consumer: done with the peeked message (private; not yet visible). */
static inline void ax_ring_advance(ax_ring_t *r)
{
    ax_ring_take(r);
    ax_ring_run_end(r);
}

/* Consumer: the slot at the head (valid only when ax_ring_ready said so). */
static inline ax_msg_t *ax_ring_head(const ax_ring_t *r) { return r->c_next; }

/* Consumer: how many messages are ready at the head, at most max (max >= 1:
 * a drain asks for what is left of its batch, never for nothing) and never
 * past the end of the slot array, so they lie in order from
 * ax_ring_head.  Their header words are read back to back, independent
 * loads whose line transfers overlap; a drain that peeked one slot per
 * dispatch paid each transfer in full (issue 14).  The slots stay valid
 * (and unwritten by the producer) until ax_ring_release; ax_ring_take takes
 * them, one at a time, and ax_ring_run_end ends the run. */
static inline uint32_t ax_ring_ready(const ax_ring_t *r, uint32_t max)
{
    const ax_msg_t *s = r->c_next;
    /* Every slot up to the end of the array belongs to the head's lap. */
    uint64_t want = r->c_want;
    /* A1 (as in ax_ring_peek), per slot: pairs with that slot's R1.  The
     * head slot first, alone: an empty ring costs what a peek costs. */
    if ((__atomic_load_n(&s[0].hdr, __ATOMIC_ACQUIRE) >> 56) != want)
        return 0;
    /* A run of one (a request/reply pair's usual case) answered before
     * the bound is clamped: the second slot's A1 decides. */
    if (max == 1u || s + 1 == r->c_end ||
        (__atomic_load_n(&s[1].hdr, __ATOMIC_ACQUIRE) >> 56) != want)
        return 1;
    uint32_t i = 2, room = (uint32_t)(r->c_end - s);
    if (max > room)
        max = room;
    while (i < max && (__atomic_load_n(&s[i].hdr, __ATOMIC_ACQUIRE) >> 56) == want)
        i++;
    return i;
}

/* Consumer: hand every advanced slot back to the producer. */
static inline void ax_ring_release(ax_ring_t *r)
{
    /* R2: our reads of the released slots happen before the producer
     * rewrites them.  Pairs with A2 in ax_ring_reserve. */
    atomic_store_explicit(&r->head, ax_ring_c_index(r), memory_order_release);
}

/* Consumer: true if the ring has a message we have not taken. */
static inline bool ax_ring_c_nonempty(const ax_ring_t *r)
{
    /* A1, as in ax_ring_peek */
    return (__atomic_load_n(&r->c_next->hdr, __ATOMIC_ACQUIRE) >> 56) == r->c_want;
}

#endif /* AXON_ENGINE_RING_H */
