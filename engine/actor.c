/* engine/actor.c - actors: spawn, send, dispatch, become, stop, blobs,
 * dead letters, external sends, and a worker's shutdown.
 *
 * Threading: everything taking ax_ctx_t runs on that worker's thread (inside
 * a behaviour).  ax_engine_send / ax_engine_spawn run on any thread and only
 * touch the target worker through its MPSC inbox and its atomic `fresh`
 * slot counter.
 *
 * Memory: an actor is one arena block (64-byte header + state) on its
 * worker; its table slot is 16 bytes.  A blob comes from the sender's arena
 * (or jemalloc on the sender's node when larger than the biggest class) and
 * is freed by whoever owns it last, from any worker (arena remote free).
 *
 * Slots and generations.  Only the owner writes its table (actor pointer
 * and generation).  A stop bumps the slot's generation (never to 0) so stale
 * refs fail the compare.  Free slots live in three places:
 *   - fresh slots (never used, generation 0) beyond the atomic `fresh`
 *     counter: the owner claims them 64 at a time, other threads one;
 *   - a Treiber stack holding every slot a stop freed, popped by every
 *     spawner (owner, other workers, outside threads) before it takes a
 *     fresh slot, so no kind of spawn exhausts the table while slots are
 *     free;
 *   - the owner's private cache in front of it: a stop pushes there, the
 *     owner's own spawns pop there first, so a spawn + stop costs no atomic
 *     RMW.  The cache spills to the stack in one CAS when it holds
 *     AX_PFREE_MAX slots and at the end of every turn, and refills from it
 *     PFREE_GRAB slots per CAS (or, while nobody else has touched the
 *     stack since, takes its own last spilled chain back whole, without
 *     walking the links: free_grab).  So a freed slot is hidden from other
 *     spawners at most until the owner's turn ends (an earlier design kept
 *     up to 64 slots from remote and external spawns indefinitely).
 * A spawn onto another worker reserves a slot (stack, else fresh), reads its
 * generation, and sends AX_SYS_SPAWN to that ref in order with everything
 * else the spawner sends there.  A message that reaches a reserved slot
 * first (the new ref was passed on through another ring) waits in an
 * "embryo" until the request arrives, then is delivered in order.  Only a
 * slot the spawner marked as claimed (SLOT_RESERVED in next_free) keeps
 * such mail: a message whose generation merely matches an empty slot may
 * come from another engine or a forged ref, and is a dead letter.
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cluster_glue.h"
#include "engine/engine_internal.h"

/* ---- slots ------------------------------------------------------------------------------- */

static int claim_fresh(ax_worker_t *t, uint32_t want, uint32_t *first, uint32_t *got)
{
    uint32_t cur = atomic_load_explicit(&t->fresh, memory_order_relaxed), take;
    do {
        if (cur >= t->max_slots)
            return -ENOMEM;
        take = t->max_slots - cur < want ? t->max_slots - cur : want;
        /* Relaxed: a claimed index reaches the owner only inside a message,
         * whose ring or inbox publication orders it. */
    } while (!atomic_compare_exchange_weak_explicit(&t->fresh, &cur, cur + take,
                                                    memory_order_relaxed, memory_order_relaxed));
    *first = cur;
    *got = take;
    return 0;
}

/* Pop the free stack (any thread, the owner included).  A3': the acquire
 * pairs with the release CAS in free_push, so the slot's next_free and gen
 * are read as the pusher (ultimately the owner, who wrote gen) left them. */
static bool free_pop(ax_worker_t *t, uint32_t *slot)
{
    uint64_t h = atomic_load_explicit(&t->shared_free, memory_order_acquire);
    while ((uint32_t)h) {
        uint32_t s = (uint32_t)h - 1;
        uint32_t next = atomic_load_explicit(&t->table[s].next_free, memory_order_relaxed);
        uint64_t nh = (((h >> 32) + 1) << 32) | next;
        if (atomic_compare_exchange_weak_explicit(&t->shared_free, &h, nh, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *slot = s;
            return true;
        }
    }
    return false;
}

/* Push onto t's free stack: the owner after a stop, or a spawner giving
 * back a slot it claimed and never used (any thread). */
static void free_push(ax_worker_t *t, uint32_t slot)
{
    uint64_t h = atomic_load_explicit(&t->shared_free, memory_order_relaxed), nh;
    do {
        atomic_store_explicit(&t->table[slot].next_free, (uint32_t)h, memory_order_relaxed);
        nh = (((h >> 32) + 1) << 32) | (slot + 1);
        /* R3': publishes the slot's gen and next_free to free_pop. */
    } while (!atomic_compare_exchange_weak_explicit(&t->shared_free, &h, nh, memory_order_release,
                                                    memory_order_relaxed));
}

/* next_free of a slot a spawner claimed for a spawn request in flight:
 * messages that reach it first wait for the request (slot_is_reserved).
 * Never a stack link (those are slot + 1 <= AX_MAX_SLOTS). */
#define SLOT_RESERVED UINT32_MAX

int ax__claim_slot(ax_worker_t *t, uint32_t *slot, uint32_t *gen)
{
    uint32_t got;
    if (free_pop(t, slot)) {
        *gen = t->table[*slot].gen;
    } else {
        if (claim_fresh(t, 1, slot, &got) < 0)
            return -ENOMEM;
        *gen = 0;
    }
    /* Relaxed: reaches the owner with the messages that carry the ref
     * (see slot_is_reserved).  The owner overwrites it only by pushing
     * the slot after the actor placed here stops (or failed to spawn). */
    atomic_store_explicit(&t->table[*slot].next_free, SLOT_RESERVED, memory_order_relaxed);
    return 0;
}

/* A slot claimed by ax__claim_slot whose spawn request was never sent: no
 * reference to it exists, so it goes back as it is (same generation). */
static void claim_return(ax_worker_t *t, uint32_t slot) { free_push(t, slot); }

/* Owner: a slot from its private cache, else a batch of freed slots from
 * the shared stack (one CAS for up to PFREE_GRAB), else a fresh one from
 * the owner's bulk claim.  Every freed slot reaches the shared stack by the
 * end of the owner's turn (ax__slots_publish), so local, remote and
 * external spawns all reuse them. */
#define PFREE_GRAB 32u

/* Take up to PFREE_GRAB slots off the shared stack into the (empty)
 * private cache.  The walk reads links of slots another popper may take
 * meanwhile; then the tag has moved and the CAS fails, so a successful CAS
 * took exactly the chain that was read.  A3'' : the acquire pairs with R3'
 * (free_push) and R3'' (slots_spill), as in free_pop. */
static bool free_grab(ax_worker_t *w)
{
    uint64_t h = atomic_load_explicit(&w->shared_free, memory_order_acquire);
    if (w->spill_nrec && h == w->spill_h) {
        /* Nobody but this owner touched the stack since its recorded
         * spills (the tag moves on every push and pop): its top is the
         * last recorded chain, whose tail, length and link below are
         * known, so take it whole without walking it (at most
         * AX_PFREE_MAX slots, the private cache's bound).  A3'' as below. */
        const ax_spill_rec_t *r = &w->spill_rec[w->spill_nrec - 1];
        uint64_t nh = (((h >> 32) + 1) << 32) | r->below;
        if (atomic_compare_exchange_strong_explicit(&w->shared_free, &h, nh, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            atomic_store_explicit(&w->table[r->tail - 1].next_free, 0, memory_order_relaxed);
            w->pfree = r->first;
            w->pfree_tail = r->tail;
            w->pfree_n = r->n;
            w->spill_nrec--;
            w->spill_h = nh; /* the next record's chain is on top now */
            return true;
        }
    }
    w->spill_nrec = 0; /* someone else moved the stack (or the walk below will) */
    while ((uint32_t)h) {
        uint32_t first = (uint32_t)h, last = first, n = 1, next;
        while ((next = atomic_load_explicit(&w->table[last - 1].next_free, memory_order_relaxed)) &&
               n < PFREE_GRAB && next <= w->max_slots) {
            last = next;
            n++;
        }
        uint64_t nh = (((h >> 32) + 1) << 32) | next;
        if (atomic_compare_exchange_weak_explicit(&w->shared_free, &h, nh, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            atomic_store_explicit(&w->table[last - 1].next_free, 0, memory_order_relaxed);
            w->pfree = first;
            w->pfree_tail = last;
            w->pfree_n = n;
            return true;
        }
    }
    return false;
}

static inline int slot_alloc(ax_worker_t *w, uint32_t *slot)
{
    if (__builtin_expect(!w->pfree, 0) && !free_grab(w)) {
        if (w->fresh_next == w->fresh_end) {
            /* Claim fresh slots 64 at a time: one atomic per 64 spawns. */
            uint32_t first, got;
            if (claim_fresh(w, 64, &first, &got) < 0)
                return -ENOMEM;
            w->fresh_next = first;
            w->fresh_end = first + got;
        }
        *slot = w->fresh_next++;
        return 0;
    }
    uint32_t s = w->pfree - 1;
    /* Relaxed: only the owner links its private cache. */
    w->pfree = atomic_load_explicit(&w->table[s].next_free, memory_order_relaxed);
    w->pfree_n--;
    *slot = s;
    return 0;
}

/* Push the whole private cache onto the shared stack (one CAS). */
void ax__slots_spill(ax_worker_t *w)
{
    uint32_t first = w->pfree, last = w->pfree_tail;
    uint64_t h = atomic_load_explicit(&w->shared_free, memory_order_relaxed), nh;
    do {
        atomic_store_explicit(&w->table[last - 1].next_free, (uint32_t)h, memory_order_relaxed);
        nh = (((h >> 32) + 1) << 32) | first;
        /* R3'': publishes the chain's gens and links to free_pop/free_grab. */
    } while (!atomic_compare_exchange_weak_explicit(&w->shared_free, &h, nh, memory_order_release,
                                                    memory_order_relaxed));
    /* What free_grab needs to take this chain back whole while nobody
     * else has touched the stack (owner-only fields).  The records stand
     * for the stack's top only while its head is the one they expect. */
    if (h != w->spill_h || w->spill_nrec == AX_SPILL_RECS)
        w->spill_nrec = 0;
    w->spill_rec[w->spill_nrec++] = (ax_spill_rec_t){first, last, w->pfree_n, (uint32_t)h};
    w->spill_h = nh;
    w->pfree = 0;
    w->pfree_n = 0;
}

static inline void slot_free(ax_worker_t *w, uint32_t slot)
{
    ax_slot_t *e = &w->table[slot];
    e->actor = NULL;
    e->gen = (e->gen + 1) & AX_REF_GEN_MASK;
    if (!e->gen)
        e->gen = 1; /* generation 0 marks never-used (fresh) slots */
    uint32_t head = w->pfree; /* read once: the atomic store below would reload it */
    /* Relaxed: a private link, published by ax__slots_spill's release. */
    atomic_store_explicit(&e->next_free, head, memory_order_relaxed);
    if (!head)
        w->pfree_tail = slot + 1;
    w->pfree = slot + 1;
    if (__builtin_expect(++w->pfree_n >= AX_PFREE_MAX, 0))
        ax__slots_spill(w);
}

void ax__slot_free(ax_worker_t *w, uint32_t slot) { slot_free(w, slot); }

/* May a message for (slot, gen) be waiting for its actor's spawn request?
 * Only when the slot is empty with that generation AND a spawner claimed
 * it (ax__claim_slot marked it SLOT_RESERVED; a free slot's next_free is a
 * stack link, a fresh one's 0).  A generation alone proves nothing: a ref
 * from another engine, or a forged one, may match a free slot's next
 * generation, and must be a dead letter, not mail for a future tenant. */
static bool slot_is_reserved(ax_worker_t *w, uint32_t slot, uint32_t gen)
{
    ax_slot_t *e = &w->table[slot];
    /* Relaxed: the claimer's store is ordered before every message that
     * carries the new ref by that message's own publication (ring commit
     * or inbox push, release; our drain, acquire). */
    return !e->actor && e->gen == gen &&
           atomic_load_explicit(&e->next_free, memory_order_relaxed) == SLOT_RESERVED;
}

/* ---- actor blocks ---------------------------------------------------------------------- */

__attribute__((noinline, cold)) static ax_actor_t *actor_alloc_large(ax_worker_t *w, size_t bytes)
{
    int node = w->eng->plan->pinned ? (int)w->eng->plan->workers[w->id].numa : -1;
    ax_actor_t *a = ax_large_alloc(node, bytes);
    if (a) {
        memset(a, 0, bytes);
        a->flags = AX_ACTOR_LARGE;
    }
    return a;
}

/* A zeroed actor block (header fields the caller sets are left to it:
 * fn, fini, slot).  Inline in the spawn, and the state is zeroed with
 * stores of 16 bytes, not a memset call: an arena block is a class size,
 * a multiple of 16 at least sizeof(ax_actor_t) + state_size rounded up to
 * 16, so the rounded-up state fits (and ASan unpoisoned the whole class). */
static inline ax_actor_t *actor_alloc(ax_worker_t *w, size_t state_size)
{
    size_t bytes = sizeof(ax_actor_t) + state_size;
    ax_actor_t *a;
    if (__builtin_expect(bytes > AX_ARENA_MAX_CLASS, 0)) {
        a = actor_alloc_large(w, bytes);
    } else {
        a = ax_arena_alloc(w->arena, bytes);
        if (!a)
            return NULL;
        a->flags = 0;
        unsigned char *p = a->state, *end = p + ((state_size + 15) & ~(size_t)15);
        for (; p < end; p += 16) {
            __builtin_memset(p, 0, 16);
            /* opaque p: gcc would turn the loop back into a memset call */
            __asm__("" : "+r"(p));
        }
    }
    if (!a)
        return NULL;
    a->sp = NULL;
    a->recs = NULL;
    a->state_size = (uint32_t)state_size;
    return a;
}

static inline void actor_free(ax_worker_t *w, ax_actor_t *a)
{
    if (__builtin_expect((a->flags & AX_ACTOR_LARGE) != 0, 0))
        ax_large_free(a, sizeof(ax_actor_t) + a->state_size);
    else
        ax_arena_free(w->arena, a);
}

void ax__actor_free(ax_worker_t *w, ax_actor_t *a) { actor_free(w, a); }

/* Run fn-like hook as actor a (init/fini), saving the running context
 * (including a stop reason the running actor has set: a nested init that
 * fails must not overwrite it). */
#define AS_ACTOR(w, a, ref, stmt)                                                          \
    do {                                                                                   \
        ax_actor_t *sv_cur = (w)->cur;                                                     \
        ax_ref_t sv_ref = (w)->head.self;                                                  \
        const ax_msg_t *sv_msg = (w)->head.msg;                                            \
        bool sv_kept = (w)->cur_blob_kept;                                                 \
        ax_actor_t *sv_pend_actor = (w)->pend_actor;                                       \
        ax_reason_t sv_pend;                                                               \
        if (sv_pend_actor) /* copied only while a stop is pending */                      \
            sv_pend = (w)->pend;                                                           \
        AX_WD_SET((w)->cur, (a));                                                          \
        AX_WD_SET((w)->head.self, (ref));                                                  \
        AX_WD_SET((w)->head.msg, (const ax_msg_t *)NULL);                                  \
        stmt;                                                                              \
        AX_WD_SET((w)->cur, sv_cur);                                                       \
        AX_WD_SET((w)->head.self, sv_ref);                                                 \
        AX_WD_SET((w)->head.msg, sv_msg);                                                  \
        (w)->cur_blob_kept = sv_kept;                                                      \
        (w)->pend_actor = sv_pend_actor;                                                   \
        if (sv_pend_actor)                                                                 \
            (w)->pend = sv_pend;                                                           \
    } while (0)

static const ax_reason_t reason_normal = {.kind = AX_REASON_NORMAL};
static const ax_reason_t reason_shutdown = {.kind = AX_REASON_SHUTDOWN};

/* The reason a's stop request carries: what it set with ax_fail (or a
 * quota), else normal. */
static const ax_reason_t *pending_reason(ax_worker_t *w, ax_actor_t *a)
{
    return w->pend_actor == a ? &w->pend : &reason_normal;
}

/* The plain stop's end for a large block (cold). */
__attribute__((noinline, cold)) static void stop_large(ax_worker_t *w, ax_actor_t *a)
{
    uint32_t slot = ax__actor_slot(a);
    actor_free(w, a);
    slot_free(w, slot);
}

/* After a behaviour that called ax_stop_self.  The common stop (normal
 * reason, no fini, no records, sponsor or conversation) is inline here: it
 * only counts, frees the slot and frees the block. */
__attribute__((always_inline)) static inline void actor_stop(ax_worker_t *w, ax_actor_t *a)
{
    if (__builtin_expect(a->fini != NULL || (a->flags & (AX_ACTOR_CONV | AX_ACTOR_EXT)) != 0 ||
                             w->pend_actor == a, 0)) {
        ax__actor_stop_why(w, a, pending_reason(w, a), false);
        return;
    }
    AX_TRACE_STOP(w->id, a->ref);
    AX_STAT_INC(w->st.stopped); /* owner-only: no locked add */
    /* The block first, then the slot (nothing between them reads either:
     * the table is the owner's), and a large block out of line: nothing
     * stays live across a call (slot_free's rare spill is the last), so
     * the stop needs no callee-saved register. */
    if (__builtin_expect((a->flags & AX_ACTOR_LARGE) != 0, 0)) {
        stop_large(w, a);
        return;
    }
    uint32_t slot = ax__actor_slot(a);
    ax_arena_free(w->arena, a);
    slot_free(w, slot);
}

void ax__actor_stop(ax_worker_t *w, ax_actor_t *a) { actor_stop(w, a); }

/* Stop a with a reason: fini (told why), then, only if a has records or a
 * sponsor (one flag test otherwise), DOWN/EXIT/cancellation and maybe
 * dormancy (engine/failure.c); else the slot and the block are freed. */
void ax__actor_stop_why(ax_worker_t *w, ax_actor_t *a, const ax_reason_t *why_in, bool final)
{
    const ax_reason_t *why = why_in;
    ax_reason_t why_copy;
    ax_ref_t ref = a->ref;
    a->flags &= ~AX_ACTOR_STOPPING;
    if (w->pend_actor == a)
        w->pend_actor = NULL;
    if (__builtin_expect(a->fini != NULL || (a->flags & AX_ACTOR_CONV) != 0, 0)) {
        why_copy = *why_in; /* why_in may be w->pend, which fini may change */
        why = &why_copy;
        if (a->flags & AX_ACTOR_CONV) /* continuations run before fini, state intact */
            ax__conv_actor_stop(w, a, ref);
        if (a->fini) {
            ax_fini_fn fini = a->fini;
            const ax_reason_t *sv = w->fini_reason;
            a->fini = NULL;
            w->fini_reason = why;
            AS_ACTOR(w, a, ref, fini(w, a->state));
            w->fini_reason = sv;
        }
    }
    AX_TRACE_STOP(w->id, ref);
    AX_STAT_INC(w->st.stopped); /* owner-only: no locked add */
    if (why->kind != AX_REASON_NORMAL && why->kind != AX_REASON_SHUTDOWN)
        AX_STAT_INC(w->st.failed);
    if (__builtin_expect((a->flags & AX_ACTOR_EXT) != 0, 0) &&
        ax__fault_stop(w, a, ref, why, final))
        return; /* dormant: keeps its slot and reference */
    ax__slot_free(w, ax__actor_slot(a));
    ax__actor_free(w, a);
}

/* Inlined into actor_place (every spawn with an init runs it). */
__attribute__((always_inline)) static inline void run_init(ax_worker_t *w, ax_actor_t *a,
                                                           ax_ref_t ref, ax_init_fn init,
                                                           const void *arg, size_t arg_len)
{
    bool stop = false;
    ax_reason_t why;
    AS_ACTOR(w, a, ref, {
        init(w, a->state, arg, arg_len);
        if (a->flags & AX_ACTOR_STOPPING) { /* read before AS_ACTOR restores pend */
            stop = true;
            why = *pending_reason(w, a);
        }
    });
    if (__builtin_expect(stop, 0))
        ax__actor_stop_why(w, a, &why, false);
}

void ax__actor_run_init(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref, ax_init_fn init,
                        const void *arg, size_t arg_len)
{
    if (init)
        run_init(w, a, ref, init, arg, arg_len);
}

/* After an init run by run_init_fast that asked to stop (or left a pending
 * reason): what run_init does with the context already restored. */
__attribute__((noinline, cold)) static void init_after(ax_worker_t *w, ax_actor_t *a)
{
    ax_reason_t why = *pending_reason(w, a);
    w->pend_actor = NULL; /* as before init: nothing was pending */
    if (a->flags & AX_ACTOR_STOPPING)
        ax__actor_stop_why(w, a, &why, false);
}

/* run_init when no stop is pending (w->pend_actor == NULL, the common
 * case), with less to save: w->pend needs no copy, and w->pend_actor is
 * NULL again afterwards unless init asked to stop (init_after, cold).
 * w->cur_blob_kept is not saved either: nothing sets it while head.msg is
 * NULL (ax_msg_keep_blob and ax_stash need the current message), which it
 * is for the whole init, nested spawns' inits included. */
__attribute__((always_inline)) static inline void run_init_fast(ax_worker_t *w, ax_actor_t *a,
                                                                ax_ref_t ref, ax_init_fn init,
                                                                const void *arg, size_t arg_len)
{
    ax_actor_t *sv_cur = w->cur;
    ax_ref_t sv_ref = w->head.self;
    const ax_msg_t *sv_msg = w->head.msg;
    AX_WD_SET(w->cur, a);
    AX_WD_SET(w->head.self, ref);
    AX_WD_SET(w->head.msg, (const ax_msg_t *)NULL);
    init(w, a->state, arg, arg_len);
    AX_WD_SET(w->cur, sv_cur);
    AX_WD_SET(w->head.self, sv_ref);
    AX_WD_SET(w->head.msg, sv_msg);
    if (__builtin_expect((a->flags & AX_ACTOR_STOPPING) != 0 || w->pend_actor != NULL, 0))
        init_after(w, a);
}

/* Place an actor in `slot` (already reserved, its reference ref) and run
 * its init.  rq (NULL when there is no sponsor and no AX_SPAWN_F_* flag,
 * the common case, which then builds no request) carries the sponsor and
 * the flags; the argument (arg, arg_len) is not copied unless the actor is
 * restartable.  The sponsor reference in rq (if any) passes to the actor
 * on success; on failure the caller still holds it. */
__attribute__((always_inline)) static inline int
actor_place(ax_worker_t *w, uint32_t slot, ax_ref_t ref, ax_behaviour_fn fn,
                       ax_init_fn init, ax_fini_fn fini, size_t state_size,
                       const ax_spawn_req_t *rq, const void *arg, size_t arg_len)
{
    ax_actor_t *a = actor_alloc(w, state_size);
    if (!a)
        return -ENOMEM;
    a->fn = fn;
    a->fini = fini;
    a->ref = ref;
    w->table[slot].actor = a;
    if (rq && ax__fault_place(w, a, ref, rq, arg, arg_len) < 0) {
        w->table[slot].actor = NULL;
        ax__actor_free(w, a);
        return -ENOMEM;
    }
    AX_STAT_INC(w->st.spawned); /* owner-only: no locked add */
    AX_TRACE_SPAWN(w->id, ref);
    if (init) {
        if (__builtin_expect(w->pend_actor == NULL, 1))
            run_init_fast(w, a, ref, init, arg, arg_len);
        else
            ax__actor_run_init(w, a, ref, init, arg, arg_len);
    }
    return 0;
}

/* ---- blobs ----------------------------------------------------------------------------- */

/* A large blob (above the arena's classes) carries a 16-byte header: its
 * allocation size, so any worker can free it, and a cookie (LIVE or FREED,
 * xor its address) that tells a blob from a foreign pointer or a blob freed
 * before.  An arena blob's checks use the arena's own metadata (the run's
 * class byte and the block's marker word, see ax_arena_check_block).  These
 * checks run in every build: a double free or a foreign pointer would
 * otherwise corrupt a size class silently (every later allocation returning
 * the same block) in the build people deploy.  Cost: docs/memory.md. */
#define LARGE_HDR 16u
#define BLOB_LIVE ((uint64_t)0x6178626c6f62a11eull)
#define BLOB_FREED ((uint64_t)0x6178626c6f62f4eeull)
/* Largest len ax_blob_alloc takes: len + LARGE_HDR, rounded up to 64 by the
 * large allocator, must not wrap (nor exceed what one C object may span). */
#define BLOB_MAX ((size_t)PTRDIFF_MAX - LARGE_HDR - 64u)

static void *blob_alloc(ax_worker_t *w, size_t len)
{
    if (!w || !len || len > BLOB_MAX)
        return NULL;
    if (len <= AX_ARENA_MAX_CLASS) {
        void *b = ax_arena_alloc(w->arena, len);
        if (b)
            ax_arena_mark_live(b); /* a free marker left from an earlier life goes */
        return b;
    }
    int node = w->eng->plan->pinned ? (int)w->eng->plan->workers[w->id].numa : -1;
    unsigned char *p = ax_large_alloc(node, len + LARGE_HDR);
    if (!p)
        return NULL;
    ((uint64_t *)p)[0] = len + LARGE_HDR;
    ((uint64_t *)p)[1] = BLOB_LIVE ^ (uint64_t)(uintptr_t)p;
    return p + LARGE_HDR;
}

void *ax_blob_alloc(ax_ctx_t *w, size_t len)
{
    if (!w || !len)
        return NULL;
    ax_actor_t *ca = w->cur;
    if (__builtin_expect(ca && ca->sp, 0)) { /* bounded sponsor: charge the bytes */
        if (ax__sp_take(w, ca, AX_RES_BYTES, len) < 0) {
            errno = EDQUOT;
            return NULL;
        }
        void *b = blob_alloc(w, len);
        if (!b)
            ax__sp_refund(ca, AX_RES_BYTES, len);
        return b;
    }
    return blob_alloc(w, len);
}

__attribute__((cold, noreturn)) static void bad_blob_free(const ax_worker_t *w, const void *blob,
                                                          const char *why)
{
    fprintf(stderr,
            "axon: ax_blob_free(%p) on worker %u: %s. A blob may be freed once, by its owner: "
            "the sender until ax_send_blob succeeds, the receiver only after "
            "ax_msg_keep_blob (otherwise the engine frees it when the behaviour returns). "
            "Rebuild with -DAXON_SANITIZE=address to see where it was allocated and freed\n",
            blob, w->id, why);
    abort();
}

void ax__blob_free(ax_worker_t *w, void *blob)
{
    if (!blob)
        return;
    ax_arena_t *a = ax_arena_owner(w->eng->arenas, blob);
    if (a) {
        const char *why = ax_arena_check_block(a, blob);
        if (__builtin_expect(why != NULL, 0))
            bad_blob_free(w, blob, why);
#ifndef AXON_ARENA_DEBUG
        ax_arena_mark_free(blob); /* debug builds' ax_arena_free_any writes it */
#endif
        ax_arena_free_any(w->arena, blob);
    } else {
        uint64_t *h = (uint64_t *)(void *)((unsigned char *)blob - LARGE_HDR);
#ifdef AX__ARENA_ASAN
        if (__asan_address_is_poisoned(h)) /* freed: the allocator poisoned it */
            bad_blob_free(w, blob, "not a live blob: already freed (double free), or a "
                                  "pointer ax_blob_alloc did not return");
#endif
        uint64_t cookie = h[1] ^ (uint64_t)(uintptr_t)h;
        if (__builtin_expect(cookie != BLOB_LIVE, 0))
            bad_blob_free(w, blob, cookie == BLOB_FREED
                                       ? "already free (double free)"
                                       : "not a live blob: a pointer ax_blob_alloc did not "
                                         "return (foreign, or inside a blob), or a blob "
                                         "already freed (double free) whose memory was reused");
        h[1] = BLOB_FREED ^ (uint64_t)(uintptr_t)h;
        ax_large_free(h, h[0]);
    }
}

/* NULL ctx: nothing is freed (an arena block can only be queued for its
 * owner through the freeing worker's arena; api.md says so). */
void ax_blob_free(ax_ctx_t *w, void *blob)
{
    if (w)
        ax__blob_free(w, blob);
}

void *ax_msg_keep_blob(ax_ctx_t *w, const ax_msg_t *m)
{
    if (!w || !m || !(m->flags & AX_MSG_F_BLOB) || m != w->head.msg)
        return NULL;
    w->cur_blob_kept = true;
    return m->payload.blob.ptr;
}

/* ---- the local FIFO ---------------------------------------------------------------------- */

static ax_msg_t *lq_alloc(ax_worker_t *w, uint32_t cap)
{
    size_t bytes = (size_t)cap * sizeof(ax_msg_t);
    if (bytes <= AX_ARENA_MAX_CLASS)
        return ax_arena_alloc(w->arena, bytes);
    return ax_large_alloc(w->eng->plan->pinned ? (int)w->eng->plan->workers[w->id].numa : -1, bytes);
}

static void lq_free(ax_worker_t *w, ax_msg_t *buf, uint32_t cap)
{
    size_t bytes = (size_t)cap * sizeof(ax_msg_t);
    if (!buf)
        return;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* Scribble: a behaviour still reading its message from a freed buffer
     * (tests/unit/test_engine_fifo.c) then sees garbage even where the
     * allocator below is not instrumented (large buffers). */
    memset(buf, 0xa5, bytes);
#endif
    if (bytes <= AX_ARENA_MAX_CLASS)
        ax_arena_free(w->arena, buf);
    else
        ax_large_free(buf, bytes);
}

ax_msg_t *ax__lq_grow(ax_worker_t *w)
{
    uint32_t cap = w->lq ? w->lq_mask + 1 : 0, ncap = cap ? cap * 2 : 64;
    if (ncap < cap) /* 2^32 messages: give up */
        return NULL;
    ax_msg_t *nb = lq_alloc(w, ncap);
    if (!nb)
        return NULL;
    for (uint32_t i = w->lq_head; i != w->lq_tail; i++)
        nb[i & (ncap - 1)] = w->lq[i & w->lq_mask];
    /* The buffer a running behaviour was dispatched from must outlive the
     * behaviour; an intermediate one (grown twice in one behaviour) holds
     * no message anybody points to.  drain_local empties lq_old before it
     * dispatches, so the first buffer kept here is the one it reads. */
    if (!w->lq_old) {
        w->lq_old = w->lq;
        w->lq_old_cap = cap;
        w->after = 1; /* the drain loops' hint: free lq_old after the behaviour */
    } else {
        lq_free(w, w->lq, cap);
    }
    w->lq = nb;
    w->lq_mask = ncap - 1;
    return &w->lq[w->lq_tail++ & w->lq_mask];
}

void ax__lq_release_old(ax_worker_t *w)
{
    lq_free(w, w->lq_old, w->lq_old_cap);
    w->lq_old = NULL;
}

void ax__lq_fini(ax_worker_t *w)
{
    ax__lq_release_old(w);
    lq_free(w, w->lq, w->lq ? w->lq_mask + 1 : 0);
    w->lq = NULL;
    w->lq_mask = w->lq_head = w->lq_tail = 0;
}

/* ---- sending ----------------------------------------------------------------------------- */

/* After a push into the overflow queue to worker d (another worker of this
 * engine, its ring open) behind its full ring or behind older overflowed
 * messages, which keeps the pair's order: drain_overflow (engine.c) moves
 * them into the ring, oldest first, before anything newer goes there.
 * Lists the queue, keeps the high-water mark, counts a remote send and a
 * ring_full and fires the ring_full probe (the ring path's sends are
 * counted at the flush; these are not dirty).  Owner-only counters: plain
 * adds, not locked ones. */
__attribute__((always_inline)) static inline void ovf_pushed(ax_worker_t *w, uint32_t d)
{
    const ax_mq_t *q = &w->ovf[d];
    AX_TRACE_RING_FULL(w->id, d);
    AX_STAT_INC(w->st.ring_full);
    if (q->count == 1) {
        w->ovf_list[w->novf++] = d;
        w->out[d]->p_ovf = 1; /* sends queue behind it until drain_overflow empties it */
    }
    if (q->count > atomic_load_explicit(&w->st.overflow_hwm, memory_order_relaxed))
        atomic_store_explicit(&w->st.overflow_hwm, q->count, memory_order_relaxed);
    AX_STAT_INC(w->st.msgs_sent_remote);
}

/* The overflow path of a send that ax__msg_slot_try_d refused, when the
 * refusal can only be the ring to d being full or older messages waiting
 * in its overflow: d is another worker of this engine (not closing: d <
 * send_nw), its ring is open, and no sponsor is charged.  Then the message
 * goes straight into the overflow queue without the general slow path's
 * checks (remote_full: one call instead of two and ~60 fewer instructions
 * per message).  NULL: the caller takes the general slow path, which
 * handles every case (and -ENOMEM), also the push that needs a new chunk
 * (one in 63), so that this path makes no call and needs no stack frame. */
__attribute__((always_inline)) static inline ax_msg_t *ovf_slot(ax_worker_t *w, ax_ref_t to, uint32_t d)
{
    if (d >= w->send_nw || d == w->id || w->out[d] == w->no_ring || (w->cur && w->cur->sp))
        return NULL;
    ax_msg_t *m = ax_mq_try_push(&w->ovf[d]); /* NULL: a chunk is needed */
    if (__builtin_expect(m != NULL, 1)) {
        ovf_pushed(w, d);
        m->to = to;
        m->from = w->head.self;
        w->sent++;
    }
    return m;
}

ax_msg_t *ax__msg_slot_slow(ax_worker_t *w, ax_ref_t to, int *err, uint8_t *stamp)
{
    uint32_t d = ax__ref_dest(w->home, to);
    ax_msg_t *m;
    ax_actor_t *ca = w->cur;
    bool sponsored = ca && ca->sp, ovf_charged = false;
    *stamp = 0;
    if (__builtin_expect(d >= w->nworkers, 0)) {
        /* Another node (or another incarnation of this one) on a cluster
         * node: its transport queues it (engine/cluster_glue.c).  Its
         * sponsor pays as for a ring send (a message) that overflowed (the
         * channel's queue entry is arena memory until the turn's flush),
         * and is refunded if the send fails. */
        if (!w->cl || w->closing) {
            *err = w->closing ? -ESHUTDOWN : -EINVAL;
            return NULL;
        }
        if (sponsored) {
            if (ax__sp_take(w, ca, AX_RES_MSGS, 1) < 0) {
                *err = -EDQUOT;
                return NULL;
            }
            if (ax__sp_take(w, ca, AX_RES_BYTES, sizeof(ax_msg_t)) < 0) {
                ax__sp_refund(ca, AX_RES_MSGS, 1);
                *err = -EDQUOT;
                return NULL;
            }
        }
        m = ax__cluster_slot(w, to, err);
        if (!m && sponsored) {
            ax__sp_refund(ca, AX_RES_MSGS, 1);
            ax__sp_refund(ca, AX_RES_BYTES, sizeof(ax_msg_t));
        }
        return m;
    }
    if (__builtin_expect(w->closing, 0)) {
        *err = -ESHUTDOWN;
        return NULL;
    }
    if (sponsored && ax__sp_take(w, ca, AX_RES_MSGS, 1) < 0) {
        *err = -EDQUOT;
        return NULL;
    }
    if (__builtin_expect(w->out[d] == w->no_ring, 0))
        ax__ring_open(w, d); /* first message to d (doorbell on): engine.c */
    if (d == w->id) {
        m = ax__lq_push(w);
        if (!m)
            m = ax__lq_grow(w);
    } else if (w->ovf[d].count == 0 && (m = ax_ring_reserve(w->out[d], stamp))) {
        if (!w->out[d]->p_dirty) {
            w->out[d]->p_dirty = 1;
            w->dirty[w->ndirty++] = d;
        }
        w->sent_remote++; /* into st.msgs_sent_remote at the flush */
    } else {
        /* Ring full (or older messages already waiting): keep order by
         * queueing behind them; drained before anything newer. */
        /* An overflowed message is arena memory its sender's sponsor pays. */
        if (sponsored) {
            if (ax__sp_take(w, ca, AX_RES_BYTES, sizeof(ax_msg_t)) < 0) {
                ax__sp_refund(ca, AX_RES_MSGS, 1);
                *err = -EDQUOT;
                return NULL;
            }
            ovf_charged = true;
        }
        if ((m = ax_mq_push(&w->ovf[d], w->arena)))
            ovf_pushed(w, d);
    }
    if (__builtin_expect(!m, 0)) {
        if (sponsored) {
            ax__sp_refund(ca, AX_RES_MSGS, 1);
            if (ovf_charged)
                ax__sp_refund(ca, AX_RES_BYTES, sizeof(ax_msg_t));
        }
        *err = -ENOMEM;
        return NULL;
    }
    m->to = to;
    m->from = w->head.self;
    w->sent++;
    return m;
}

static inline void fill_inline(ax_worker_t *w, ax_msg_t *m, uint32_t type, const void *buf,
                               size_t len, uint8_t stamp)
{
    if (len) /* memcpy(p, NULL, 0) is undefined */
        memcpy(m->payload.data, buf, len);
    ax_msg_commit(m, type, (uint16_t)len, 0, stamp);
    AX_TRACE_SEND(w->id, m->to, type);
}

/* Cold half of ax_send: the slot needs a chunk, an overflow queue, or the
 * send is an error.  Kept apart so the fast path is frameless. */
__attribute__((noinline, cold)) static int send_slow(ax_worker_t *w, ax_ref_t to, uint32_t type,
                                                     const void *buf, size_t len)
{
    int err;
    uint8_t stamp;
    ax_msg_t *m = ax__msg_slot_slow(w, to, &err, &stamp);
    if (!m)
        return err;
    fill_inline(w, m, type, buf, len, stamp);
    return 0;
}

/* send_other's way out when the ring path refused: the overflow queue
 * directly when that is all it can be (ovf_slot), else the slow path. */
__attribute__((noinline)) static int send_ovf(ax_worker_t *w, ax_ref_t to, uint32_t type,
                                              const void *buf, size_t len, uint32_t d)
{
    if (type >= AX_TYPE_SYSTEM) /* checked by ax_send: lets ax_msg_commit fold its test */
        __builtin_unreachable();
    ax_msg_t *m = ovf_slot(w, to, d);
    if (__builtin_expect(!m, 0))
        return send_slow(w, to, type, buf, len);
    fill_inline(w, m, type, buf, len, 0);
    return 0;
}

/* ax_send to anything but this worker's inline path (another worker, or
 * this one while closing or traced): out of line and reached by a tail
 * call, so that the same-worker send needs no stack frame (the ring's
 * reserve needs registers the local push does not). */
__attribute__((noinline)) static int send_other(ax_worker_t *w, ax_ref_t to, uint32_t type,
                                                const void *buf, size_t len, uint32_t d)
{
    uint8_t stamp;
    if (type >= AX_TYPE_SYSTEM) /* checked by ax_send: lets ax_msg_commit fold its test */
        __builtin_unreachable();
    ax_msg_t *m = ax__msg_slot_try_d(w, to, d, &stamp);
    if (__builtin_expect(!m, 0))
        return send_ovf(w, to, type, buf, len, d);
    fill_inline(w, m, type, buf, len, stamp);
    return 0;
}

/* The same-worker path fires no send probe: it is taken only while the
 * probe's semaphore read 0 at the start of the turn (w->send_self); with
 * the probe attached every send goes through send_other, which fires it. */
int ax_send(ax_ctx_t *w, ax_ref_t to, uint32_t type, const void *buf, size_t len)
{
    if (__builtin_expect(!w || len > AX_INLINE_MAX || type >= AX_TYPE_SYSTEM || (len && !buf), 0))
        return -EINVAL;
    uint32_t hi = (uint32_t)(to >> AX_REF_WORKER_SHIFT); /* = ax__ref_dest + home */
    if (hi != w->send_self)
        return send_other(w, to, type, buf, len, hi - w->home);
    ax_msg_t *m;
    if (__builtin_expect(!ax__msg_slot_local(w, &m), 0))
        return send_slow(w, to, type, buf, len);
    if (len) /* memcpy(p, NULL, 0) is undefined */
        memcpy(m->payload.data, buf, len);
    ax_msg_commit(m, type, (uint16_t)len, 0, 0);
    ax__msg_local_done(w, m, to);
    return 0;
}

__attribute__((noinline, cold)) static int send_u64_slow(ax_worker_t *w, ax_ref_t to,
                                                         uint32_t type, uint64_t v)
{
    int err;
    uint8_t stamp;
    if (!w || type >= AX_TYPE_SYSTEM)
        return -EINVAL;
    ax_msg_t *m = ax__msg_slot_slow(w, to, &err, &stamp);
    if (!m)
        return err;
    m->payload.u64[0] = v; /* not send_slow's memcpy of a run-time length */
    ax_msg_commit(m, type, sizeof v, 0, stamp);
    AX_TRACE_SEND(w->id, to, type);
    return 0;
}

/* As send_ovf, for ax_send_u64. */
__attribute__((noinline)) static int send_u64_ovf(ax_worker_t *w, ax_ref_t to, uint32_t type,
                                                  uint64_t v, uint32_t d)
{
    if (type >= AX_TYPE_SYSTEM) /* checked by ax_send_u64: lets ax_msg_commit fold its test */
        __builtin_unreachable();
    ax_msg_t *m = ovf_slot(w, to, d);
    if (__builtin_expect(!m, 0))
        return send_u64_slow(w, to, type, v);
    m->payload.u64[0] = v;
    ax_msg_commit(m, type, sizeof v, 0, 0);
    AX_TRACE_SEND(w->id, to, type);
    return 0;
}

/* As send_other, for ax_send_u64. */
__attribute__((noinline)) static int send_u64_other(ax_worker_t *w, ax_ref_t to, uint32_t type,
                                                    uint64_t v, uint32_t d)
{
    ax_msg_t *m;
    uint8_t stamp;
    if (type >= AX_TYPE_SYSTEM) /* checked by ax_send_u64: lets ax_msg_commit fold its test */
        __builtin_unreachable();
    if (__builtin_expect(!(m = ax__msg_slot_try_d(w, to, d, &stamp)), 0))
        return send_u64_ovf(w, to, type, v, d);
    m->payload.u64[0] = v;
    ax_msg_commit(m, type, sizeof v, 0, stamp);
    AX_TRACE_SEND(w->id, to, type);
    return 0;
}

int ax_send_u64(ax_ctx_t *w, ax_ref_t to, uint32_t type, uint64_t v)
{
    ax_msg_t *m;
    if (__builtin_expect(type >= AX_TYPE_SYSTEM || !w, 0))
        goto slow;
    uint32_t hi = (uint32_t)(to >> AX_REF_WORKER_SHIFT); /* = ax__ref_dest + home */
    if (hi != w->send_self)
        return send_u64_other(w, to, type, v, hi - w->home);
    if (__builtin_expect(!ax__msg_slot_local(w, &m), 0))
        goto slow;
    m->payload.u64[0] = v;
    ax_msg_commit(m, type, sizeof v, 0, 0); /* no probe: see ax_send */
    ax__msg_local_done(w, m, to);
    return 0;
slow:
    return send_u64_slow(w, to, type, v);
}

#ifdef AXON_ARENA_DEBUG
/* Bytes a blob can hold, 0 if blob is not one (debug builds: a len larger
 * than the blob would let the receiver read past it). */
static size_t blob_capacity(const ax_worker_t *w, const void *blob)
{
    const ax_arena_t *a = ax_arena_owner(w->eng->arenas, blob);
    if (a)
        return ax_arena_check_block(a, blob) ? 0 : ax_arena_block_size(a, blob);
    const uint64_t *h = (const uint64_t *)(const void *)((const unsigned char *)blob - LARGE_HDR);
#ifdef AX__ARENA_ASAN
    if (__asan_address_is_poisoned(h))
        return 0;
#endif
    return (h[1] ^ (uint64_t)(uintptr_t)h) == BLOB_LIVE ? h[0] - LARGE_HDR : 0;
}
#endif

int ax_send_blob(ax_ctx_t *w, ax_ref_t to, uint32_t type, void *blob, size_t len)
{
    int err;
    uint8_t stamp;
    if (!w || type >= AX_TYPE_SYSTEM || !blob)
        return -EINVAL;
#ifdef AXON_ARENA_DEBUG
    if (len > blob_capacity(w, blob))
        return -EINVAL;
#endif
    ax_msg_t *m = ax__msg_slot_fast(w, to, &err, &stamp);
    if (!m)
        return err;
    m->payload.blob.ptr = blob;
    m->payload.blob.len = len;
    ax_msg_commit(m, type, 0, AX_MSG_F_BLOB, stamp);
    AX_TRACE_SEND(w->id, to, type);
    return 0;
}

int ax__post_local(ax_worker_t *w, const ax_msg_t *src)
{
    if (w->closing) /* shutdown: the local FIFO is gone (io completions reaped late) */
        return -ESHUTDOWN;
    ax_msg_t *m = ax__lq_push(w);
    if (!m && !(m = ax__lq_grow(w)))
        return -ENOMEM;
    *m = *src;
    if (m->type - AX_TYPE_SYSTEM < AX_TYPE_IO - AX_TYPE_SYSTEM)
        m->flags |= AX_MSG_F_SYS; /* as ax_msg_commit */
    w->sent++;
    return 0;
}

/* After a behaviour run by a drain loop (ax__batch_run) that left w->after
 * set: a stop or an unstash of a (the running actor, ref `to`), and the
 * FIFO buffer it ran from if a growth replaced it.  Anything that set the
 * hint outside a drain loop only costs this call's look at the flags. */
void ax__after_batch(ax_worker_t *w, ax_actor_t *a, ax_ref_t to)
{
    w->after = 0;
    uint32_t af = a->flags;
    if (af & (AX_ACTOR_STOPPING | AX_ACTOR_UNSTASH)) {
        ax__run_clear(w);
        if (af & AX_ACTOR_UNSTASH)
            ax__actor_after(w, a, to);
        else
            actor_stop(w, a); /* a plain stop: inline, no detour through ax__actor_after */
    }
    if (w->lq_old) /* the behaviour (or the stop) grew the FIFO */
        ax__lq_release_old(w);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
void ax__sys_flag_missing(const ax_msg_t *m)
{
    if (m->flags & AX_MSG_F_SYS)
        return;
    fprintf(stderr, "axon: internal error: system message type 0x%x without AX_MSG_F_SYS in a drain loop\n",
            m->type);
    abort();
}
#endif

/* ---- spawning ---------------------------------------------------------------------------- */

/* Round robin over the workers i for which same(plan[i], plan[ref]) holds. */
static int pick_among(ax_engine_t *eng, uint32_t ref, int key, uint32_t *out)
{
    const ax_plan_worker_t *pw = eng->plan->workers;
    uint32_t count = 0;
#define SAME(i) (key == 0 ? pw[i].numa == pw[ref].numa : pw[i].l3 == pw[ref].l3)
    for (uint32_t i = 0; i < eng->n; i++)
        count += SAME(i);
    uint32_t k = atomic_fetch_add_explicit(&eng->spawn_rr, 1, memory_order_relaxed) % count;
    for (uint32_t i = 0; i < eng->n; i++)
        if (SAME(i) && k-- == 0) {
            *out = i;
            return 0;
        }
#undef SAME
    return -EINVAL; /* unreachable: ref itself matches */
}

/* The worker with the lowest published load, scanning from the caller's
 * own worker so ties keep actors near it.  One relaxed load per worker;
 * the pick adds one to its figure so a burst of spawns spreads before the
 * workers publish again. */
static uint32_t pick_least_loaded(ax_engine_t *eng, uint32_t self)
{
    uint32_t best = self, n = eng->n;
    uint64_t best_load = UINT64_MAX;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (self + k) % n;
        uint64_t l = atomic_load_explicit(&eng->w[i]->load, memory_order_relaxed);
        if (l < best_load) {
            best_load = l;
            best = i;
        }
    }
    atomic_fetch_add_explicit(&eng->w[best]->load, 1, memory_order_relaxed);
    return best;
}

static int pick_worker(ax_engine_t *eng, const ax_spawn_opts_t *o, uint32_t self, uint32_t *out)
{
    uint32_t where = o ? o->where : AX_ON_DEFAULT;
    switch (where) {
    case AX_ON_ANY:
        *out = atomic_fetch_add_explicit(&eng->spawn_rr, 1, memory_order_relaxed) % eng->n;
        return 0;
    case AX_ON_MY_NODE:
        return pick_among(eng, self == UINT32_MAX ? 0 : self, 0, out);
    case AX_ON_MY_L3:
        return pick_among(eng, self == UINT32_MAX ? 0 : self, 1, out);
    case AX_ON_LEAST_LOADED:
        *out = pick_least_loaded(eng, self == UINT32_MAX ? 0 : self);
        return 0;
    case AX_ON_DEFAULT: /* from a behaviour: default_worker */
    case AX_ON_SELF:
        if (self == UINT32_MAX) /* external: round robin */
            self = atomic_fetch_add_explicit(&eng->spawn_rr, 1, memory_order_relaxed) % eng->n;
        *out = self;
        return 0;
    case AX_ON_WORKER:
        if (o->worker >= eng->n)
            return -EINVAL;
        *out = o->worker;
        return 0;
    case AX_ON_NODE: {
        uint32_t count = 0;
        for (uint32_t i = 0; i < eng->n; i++)
            count += eng->plan->workers[i].numa == o->node;
        if (!count)
            return -EINVAL;
        uint32_t k = atomic_fetch_add_explicit(&eng->spawn_rr, 1, memory_order_relaxed) % count;
        for (uint32_t i = 0; i < eng->n; i++)
            if (eng->plan->workers[i].numa == o->node && k-- == 0) {
                *out = i;
                return 0;
            }
        return -EINVAL;
    }
    default:
        return -EINVAL;
    }
}

#define SPAWN_FLAGS (AX_SPAWN_F_RESTARTABLE | AX_SPAWN_F_MONITOR | AX_SPAWN_F_LINK)

/* Largest state_size: the header records it in 32 bits, header included
 * (4 GiB - 49 bytes; api.md). */
#define AX_STATE_MAX ((size_t)UINT32_MAX - sizeof(ax_actor_t))

/* Checks shared by ax_spawn and ax_engine_spawn.  state_size must fit the
 * actor header's 32-bit field with the header added (the block is
 * sizeof(ax_actor_t) + state_size): larger is -EINVAL, never truncated. */
static inline int check_spawn(ax_behaviour_fn fn, size_t state_size, const ax_spawn_opts_t *o)
{
    if (!fn || state_size > AX_STATE_MAX)
        return -EINVAL;
    if (!o)
        return 0;
    if (__builtin_expect((o->size && o->size != sizeof(ax_spawn_opts_t)) ||
                             o->arg_len > AX_SPAWN_ARG_MAX || ((o->flags & ~SPAWN_FLAGS) | o->pad_),
                         0))
        return -EINVAL;
    if (__builtin_expect(o->arg_len != 0 && !o->arg, 0))
        return -EINVAL;
    if (__builtin_expect((o->flags & AX_SPAWN_F_MONITOR) != 0 && !o->monitor, 0))
        return -EINVAL;
    return 0;
}

/* Everything but the argument (copied by the caller when it must travel). */
static void fill_req(ax_spawn_req_t *r, ax_behaviour_fn fn, size_t state_size,
                     const ax_spawn_opts_t *o, ax_sponsor_t *sp)
{
    memset(r, 0, offsetof(ax_spawn_req_t, arg));
    r->fn = fn;
    r->init = o ? o->init : NULL;
    r->fini = o ? o->fini : NULL;
    r->state_size = (uint32_t)state_size;
    r->arg_len = o ? (uint32_t)o->arg_len : 0;
    r->sponsor = sp;
    r->flags = o ? o->flags : 0;
}

/* The sponsor a spawn runs under: the one named, else the spawner's. */
static ax_sponsor_t *spawn_sponsor(const ax_worker_t *w, const ax_spawn_opts_t *o)
{
    if (o && o->sponsor)
        return o->sponsor;
    return w && w->cur && w->cur->sp ? w->cur->sp->sp : NULL;
}

/* AX_ON_DEFAULT, when the caller has a backlog (default_worker): every
 * other such spawn goes to a parked worker, if one is.  Relaxed loads: the
 * figures are hints (a worker that woke meanwhile only gets the actor
 * anyway); nothing is published through them. */
__attribute__((noinline)) static uint32_t spread_pick(ax_worker_t *w)
{
    ax_engine_t *eng = w->eng;
    uint32_t n = eng->n;
    /* No engine-wide idle count any more (parks are per-worker, issue
     * 14): the scan below finds a parked worker or none. */
    if (n == 1 || !(w->spread_tick++ & 1))
        return w->id;
    /* Rotate among the others: start at offset 1 + start from the caller,
     * go round, skip the caller.  One divide (none on 2 workers): this runs
     * for every other spawn while the caller has a backlog. */
    uint32_t start = n == 2 ? 0 : (w->spread_tick >> 1) % (n - 1);
    uint32_t i = w->id + 1 + start;
    if (i >= n)
        i -= n;
    for (uint32_t k = 0; k < n - 1; k++) {
        if (atomic_load_explicit(&eng->w[i]->parked, memory_order_relaxed) == 1)
            return i;
        if (++i == n)
            i = 0;
        if (i == w->id && ++i == n)
            i = 0;
    }
    return w->id;
}

/* The default placement (docs/tuning.md, "Default placement"): next to
 * the caller, unless its local FIFO already holds a batch or more (more
 * work than its next turn runs) while another worker is parked; then half
 * of such spawns go to parked workers.  Actors never move after spawn, so
 * this is where a tree or a fork-join program gets its second core; a
 * program whose worker keeps up (a ring, a pipeline, a request/reply pair)
 * stays on one worker and keeps same-worker sends.  Costs one compare on
 * the common path. */
static inline uint32_t default_worker(ax_worker_t *w)
{
    if (__builtin_expect(ax__lq_count(w) < w->batch, 1) || w->nworkers == 1)
        return w->id;
    return spread_pick(w);
}

/* ax_spawn's common case, taken from it by a tail call: on the calling
 * worker, under the root sponsor (none named, the spawner has none), no
 * AX_SPAWN_F_* flag, so no request is built and nothing can be undone but
 * the slot.  The same steps as the general path's local branch, without
 * its frame and tests. */
__attribute__((noinline)) static int spawn_here(ax_worker_t *w, ax_behaviour_fn fn,
                                                size_t state_size, const ax_spawn_opts_t *o,
                                                ax_ref_t *out)
{
    uint32_t slot;
    int rc;
    /* Checked by ax_spawn: lets the arena's own size test fold into
     * actor_alloc's (the block, header included, cannot wrap to 0). */
    if (state_size > AX_STATE_MAX)
        __builtin_unreachable();
    if ((rc = slot_alloc(w, &slot)) < 0)
        return rc;
    /* = ax__ref_make(w->home, w->id, gen, slot): a slot's gen is stored
     * masked (slot_free), so it needs no mask here. */
    ax_ref_t ref = w->ref_base | (uint64_t)w->table[slot].gen << AX_REF_SLOT_BITS | slot;
    *out = ref; /* set before init runs, so init may hand it out */
    rc = actor_place(w, slot, ref, fn, o ? o->init : NULL, o ? o->fini : NULL, state_size, NULL,
                     o ? o->arg : NULL, o ? o->arg_len : 0);
    if (rc < 0) {
        ax__slot_free(w, slot);
        *out = AX_REF_NONE;
    }
    return rc;
}

/* Every other spawn (arguments checked by ax_spawn).  `to`: the worker
 * ax_spawn's default placement already picked (another worker), else
 * SPAWN_PICK: decide here. */
#define SPAWN_PICK UINT32_MAX
__attribute__((noinline)) static int spawn_general(ax_worker_t *w, ax_behaviour_fn fn,
                                                   size_t state_size, const ax_spawn_opts_t *o,
                                                   ax_ref_t *out, uint32_t to)
{
    uint32_t t, slot;
    int rc;
    uint32_t flags = o ? o->flags : 0;
    if ((flags & (AX_SPAWN_F_MONITOR | AX_SPAWN_F_LINK)) && !w->cur)
        return -EINVAL; /* nobody to monitor or link from */
    if (w->closing)
        return -ESHUTDOWN;
    if (to != SPAWN_PICK)
        t = to;
    else if (!o || o->where == AX_ON_DEFAULT)
        t = default_worker(w);
    else if (o->where == AX_ON_SELF)
        t = w->id;
    else if ((rc = pick_worker(w->eng, o, w->id, &t)) < 0)
        return rc;
    ax_sponsor_t *sp = spawn_sponsor(w, o);
    if (sp && sp->eng != w->eng)
        return -EINVAL; /* another engine's sponsor */
    if (sp && (rc = ax__fault_spawn_charge(w, sp, state_size)) < 0)
        return rc;
    ax_spawn_req_t rq;
    uint64_t mon = 0;
    if (t == w->id) {
        if ((rc = slot_alloc(w, &slot)) < 0) {
            ax__fault_spawn_undo(sp);
            return rc;
        }
        ax_ref_t ref = ax__ref_make(w->home, w->id, w->table[slot].gen, slot);
        const ax_spawn_req_t *rqp = NULL; /* no sponsor, no flags: no request */
        if (sp || flags) {
            fill_req(&rq, fn, state_size, o, sp);
            rqp = &rq;
        }
        if (flags & (AX_SPAWN_F_MONITOR | AX_SPAWN_F_LINK)) {
            if ((rc = ax__fault_spawner_recs(w, ref, flags, &mon)) < 0) {
                ax__slot_free(w, slot);
                ax__fault_spawn_undo(sp);
                return rc;
            }
            rq.peer = w->head.self;
            rq.mon_id = mon;
            if (flags & AX_SPAWN_F_MONITOR)
                *o->monitor = mon;
        }
        *out = ref; /* set before init runs, so init may hand it out */
        rc = actor_place(w, slot, ref, fn, o ? o->init : NULL, o ? o->fini : NULL, state_size, rqp,
                         o ? o->arg : NULL, o ? o->arg_len : 0);
        if (rc < 0) {
            ax__fault_spawner_undo(w, ref, flags, mon);
            ax__slot_free(w, slot);
            ax__fault_spawn_undo(sp);
            *out = AX_REF_NONE;
        }
        return rc;
    }
    fill_req(&rq, fn, state_size, o, sp);
    /* Remote: reserve a fresh slot there, send the request in order with
     * everything else this worker sends to t. */
    ax_worker_t *tw = w->eng->w[t];
    size_t req_len = offsetof(ax_spawn_req_t, arg) + (o ? o->arg_len : 0);
    /* a blob (freed as one by free_payload), not charged to a sponsor */
    ax_spawn_req_t *req = blob_alloc(w, req_len);
    if (!req) {
        ax__fault_spawn_undo(sp);
        return -ENOMEM;
    }
    memcpy(req, &rq, offsetof(ax_spawn_req_t, arg));
    if (rq.arg_len)
        memcpy(req->arg, o->arg, rq.arg_len);
    uint32_t gen;
    if ((rc = ax__claim_slot(tw, &slot, &gen)) < 0) {
        ax_arena_free(w->arena, req);
        ax__fault_spawn_undo(sp);
        return rc;
    }
    ax_ref_t ref = ax__ref_make(w->home, t, gen, slot);
    if (flags & (AX_SPAWN_F_MONITOR | AX_SPAWN_F_LINK)) {
        if ((rc = ax__fault_spawner_recs(w, ref, flags, &mon)) < 0) {
            claim_return(tw, slot); /* no ref to it was handed out */
            ax_arena_free(w->arena, req);
            ax__fault_spawn_undo(sp);
            return rc;
        }
        req->peer = w->head.self;
        req->mon_id = mon;
    }
    uint8_t stamp;
    ax_msg_t *m = ax__msg_slot_fast(w, ref, &rc, &stamp);
    if (!m) {
        /* Only reachable when this worker's arena or budget is exhausted.
         * No ref to the slot was handed out: give it back. */
        ax__fault_spawner_undo(w, ref, flags, mon);
        claim_return(tw, slot);
        ax_arena_free(w->arena, req);
        ax__fault_spawn_undo(sp);
        return rc;
    }
    m->payload.blob.ptr = req;
    m->payload.blob.len = req_len;
    ax_msg_commit(m, AX_SYS_SPAWN, 0, AX_MSG_F_BLOB, stamp);
    if (flags & AX_SPAWN_F_MONITOR)
        *o->monitor = mon;
    *out = ref;
    return 0;
}

int ax_spawn(ax_ctx_t *w, ax_behaviour_fn fn, size_t state_size, const ax_spawn_opts_t *o,
             ax_ref_t *out)
{
    if (__builtin_expect(!w || !out || !fn || state_size > AX_STATE_MAX, 0))
        return -EINVAL;
    /* The common case (spawn_here): default placement or AX_ON_SELF with
     * no backlog to spread, no flags, no sponsor; not closing.  Both
     * halves are reached by a tail call: neither pays the other's frame.
     * Its options are checked first, with what they make redundant in
     * check_spawn left out (no flag, so no monitor pointer to check);
     * anything else goes through check_spawn. */
    bool self = false;
    if (o) {
        /* flags and pad_ are adjacent: one load tests both, with the
         * sponsor (all three must be 0 here). */
        uint64_t flags_pad;
        memcpy(&flags_pad, &o->flags, sizeof flags_pad);
        _Static_assert(offsetof(ax_spawn_opts_t, pad_) == offsetof(ax_spawn_opts_t, flags) + 4,
                       "flags and pad_ adjacent");
        if (__builtin_expect(!((o->size == sizeof *o || o->size == 0) &&
                               (flags_pad | (uintptr_t)o->sponsor) == 0 && o->arg_len <= AX_SPAWN_ARG_MAX &&
                               (o->arg || !o->arg_len) &&
                               ((self = o->where == AX_ON_SELF) || o->where == AX_ON_DEFAULT)),
                             0)) {
            if (check_spawn(fn, state_size, o) < 0)
                return -EINVAL;
            return spawn_general(w, fn, state_size, o, out, SPAWN_PICK);
        }
    }
    if (__builtin_expect((w->cur && w->cur->sp) || w->closing, 0))
        return spawn_general(w, fn, state_size, o, out, SPAWN_PICK);
    /* The default placement decides here (default_worker): a spawn it
     * keeps on this worker takes the common path even with a backlog (no
     * detour through spawn_general's frame and tests). */
    uint32_t t = self ? w->id : default_worker(w);
    if (__builtin_expect(t == w->id, 1))
        return spawn_here(w, fn, state_size, o, out);
    return spawn_general(w, fn, state_size, o, out, t);
}

/* Shutdown handshake for callers outside the engine: announce ourselves
 * (ext_inflight) before reading `closed`; the stopping side stores `closed`
 * before waiting for ext_inflight to drain.  Both seq_cst: either we see
 * closed and refuse, or the drain waits for our push to land, and the
 * shutdown path then finds (and counts) the message. */
static bool ext_enter(ax_engine_t *eng)
{
    atomic_fetch_add_explicit(&eng->ext_inflight, 1, memory_order_seq_cst);
    if (!atomic_load_explicit(&eng->ext_closed, memory_order_seq_cst))
        return true;
    atomic_fetch_sub_explicit(&eng->ext_inflight, 1, memory_order_seq_cst);
    return false;
}

/* Leave after ext_enter, whether or not a message was delivered.  A
 * quiescence check that ran while we were in flight refused
 * (ext_inflight != 0), and may have been the last one: a delivered message
 * can be handled, and its worker parked again (its check refused because of
 * us), before we get here, and a failed call wakes nobody.  So check here:
 * the seq_cst decrement, then this seq_cst load, pair with the checker's
 * store of stop_when_idle (or a parker's seq_cst store of its idle_seq) and
 * its later seq_cst load of ext_inflight: either it saw us gone, or we see
 * the flag and run the check.  Costs one load of a read-mostly line per
 * outside call. */
static void ext_leave(ax_engine_t *eng)
{
    atomic_fetch_sub_explicit(&eng->ext_inflight, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&eng->stop_when_idle, memory_order_seq_cst) &&
        atomic_load_explicit(&eng->started, memory_order_acquire))
        ax__try_quiesce(eng);
}

/* Push to worker t's inbox and wake it; then leave (after ext_enter). */
static void ext_deliver(ax_engine_t *eng, uint32_t t, ax_inbox_node_t *node)
{
    atomic_fetch_add_explicit(&eng->ext_sent, 1, memory_order_seq_cst); /* quiescence */
    ax__inbox_push(eng->w[t], node);
    /* F3: pairs with F1 in park(), as F2 does for rings. */
    AX_FENCE_SEQ_CST(eng);
    if (atomic_load_explicit(&eng->started, memory_order_acquire))
        ax__wake(eng, NULL, t);
    ext_leave(eng);
}

int ax_engine_spawn(ax_engine_t *eng, ax_behaviour_fn fn, size_t state_size,
                    const ax_spawn_opts_t *o, ax_ref_t *out)
{
    uint32_t t, slot;
    int rc;
    if (!eng || !out || (rc = check_spawn(fn, state_size, o)) < 0)
        return -EINVAL;
    if (o && (o->flags & (AX_SPAWN_F_MONITOR | AX_SPAWN_F_LINK)))
        return -EINVAL; /* no actor outside the engine to monitor or link from */
    if ((rc = pick_worker(eng, o, UINT32_MAX, &t)) < 0)
        return rc;
    ax_sponsor_t *sp = o ? o->sponsor : NULL;
    if (sp && sp->eng != eng)
        return -EINVAL;
    ax_spawn_req_t *req = malloc(sizeof *req);
    ax_inbox_node_t *node = ax__inbox_node_alloc();
    if (!req || !node) {
        free(req);
        ax__inbox_node_free(node);
        return -ENOMEM;
    }
    fill_req(req, fn, state_size, o, sp);
    if (req->arg_len)
        memcpy(req->arg, o->arg, req->arg_len);
    if (!ext_enter(eng)) {
        free(req);
        ax__inbox_node_free(node);
        return -ESHUTDOWN;
    }
    if ((rc = ax__fault_spawn_charge(NULL, sp, state_size)) < 0) {
        ext_leave(eng);
        free(req);
        ax__inbox_node_free(node);
        return rc;
    }
    uint32_t gen;
    if ((rc = ax__claim_slot(eng->w[t], &slot, &gen)) < 0) {
        ext_leave(eng);
        ax__fault_spawn_undo(sp);
        free(req);
        ax__inbox_node_free(node);
        return rc;
    }
    ax_ref_t ref = ax__ref_make(eng->home, t, gen, slot);
    memset(&node->msg, 0, sizeof node->msg);
    node->msg.to = ref;
    node->msg.type = AX_SYS_SPAWN_EXT;
    node->msg.payload.u64[0] = (uint64_t)(uintptr_t)req;
    *out = ref;
    ext_deliver(eng, t, node);
    return 0;
}

int ax__ext_post(ax_engine_t *eng, const ax_msg_t *msg)
{
    uint32_t t = eng ? ax__ref_dest(eng->home, msg->to) : 0;
    if (!eng || t >= eng->n)
        return -EINVAL;
    ax_inbox_node_t *node = ax__inbox_node_alloc();
    if (!node)
        return -ENOMEM;
    node->msg = *msg;
    if (!ext_enter(eng)) {
        ax__inbox_node_free(node);
        return -ESHUTDOWN;
    }
    ext_deliver(eng, t, node);
    return 0;
}

int ax_engine_send(ax_engine_t *eng, ax_ref_t to, uint32_t type, const void *buf, size_t len)
{
    if (!eng || len > AX_INLINE_MAX || type >= AX_TYPE_SYSTEM || (len && !buf))
        return -EINVAL;
    uint32_t t = ax__ref_dest(eng->home, to);
    if (t >= eng->n) {
        /* Another node's actor (a cluster node): through the inbox of the
         * local worker its reference maps to, which forwards it on its
         * channel (ax__dispatch_slow); -EHOSTUNREACH if the node is not up. */
        int rc = eng->cl ? ax__cluster_ext_route(eng, to, &t) : -EINVAL;
        if (rc < 0)
            return rc;
    }
    ax_inbox_node_t *node = ax__inbox_node_alloc();
    if (!node)
        return -ENOMEM;
    memset(&node->msg, 0, sizeof node->msg);
    node->msg.to = to;
    node->msg.type = type;
    node->msg.len = (uint16_t)len;
    if (len)
        memcpy(node->msg.payload.data, buf, len);
    if (!ext_enter(eng)) {
        ax__inbox_node_free(node);
        return -ESHUTDOWN;
    }
    ext_deliver(eng, t, node);
    return 0;
}

/* ---- behaviour-side calls --------------------------------------------------------------------- */

void ax_become(ax_ctx_t *w, ax_behaviour_fn fn)
{
    if (w && w->cur && fn)
        w->cur->fn = fn;
}

void ax_stop_self(ax_ctx_t *w)
{
    if (w && w->cur) {
        w->cur->flags |= AX_ACTOR_STOPPING;
        w->after = 1;
        if (w->pend_actor == w->cur) /* the last of ax_fail / ax_stop_self wins */
            w->pend_actor = NULL;    /* no pending reason: normal */
    }
}

uint32_t ax_worker_id(const ax_ctx_t *w) { return w ? w->id : UINT32_MAX; }
ax_engine_t *ax_ctx_engine(const ax_ctx_t *w) { return w ? w->eng : NULL; }

/* ---- dispatch ---------------------------------------------------------------------------------- */

static void free_spawn_req(ax_worker_t *w, const ax_msg_t *m)
{
    ax_spawn_req_t *req = m->type == AX_SYS_SPAWN_EXT
                              ? (ax_spawn_req_t *)(uintptr_t)m->payload.u64[0]
                              : (ax_spawn_req_t *)m->payload.blob.ptr;
    ax__fault_spawn_undo(req->sponsor); /* never placed: its sponsor reference goes */
    if (m->type == AX_SYS_SPAWN_EXT)
        free(req);
    else
        ax__blob_free(w, req);
}

/* Free what a message owns when it will not be handled. */
void ax__free_payload(ax_worker_t *w, const ax_msg_t *m)
{
    if (m->type == AX_SYS_SPAWN_EXT || m->type == AX_SYS_SPAWN)
        free_spawn_req(w, m);
    else if (m->type >= AX_SYS_FAULT_FIRST && m->type <= AX_SYS_FAULT_LAST)
        ax__fault_free_payload(w, m);
    else if (m->flags & AX_MSG_F_BLOB)
        ax__blob_free(w, m->payload.blob.ptr);
}
#define free_payload ax__free_payload

static void uncount_source(ax_worker_t *w);

static void dead_letter(ax_worker_t *w, const ax_msg_t *m)
{
    uncount_source(w);
    ax__dead_letter(w, m);
}

/* Count, hook, answer a request with -ESRCH (a monitor or link with DOWN
 * or EXIT), free: also for stashed
 * messages of a stopping actor (request.c), which no drain loop counted. */
void ax__dead_letter(ax_worker_t *w, const ax_msg_t *m)
{
    atomic_fetch_add_explicit(&w->st.dead_letters, 1, memory_order_relaxed);
    if (w->eng->dl_fn)
        w->eng->dl_fn(w->eng->dl_user, m);
    if (__builtin_expect((m->flags & AX_MSG_F_REQUEST) != 0, 0))
        ax__request_undeliverable(w, m, -ESRCH);
    else if (m->type == AX_SYS_MONITOR || m->type == AX_SYS_LINK)
        ax__fault_dead_request(w, m); /* the watcher hears DOWN, the linker EXIT */
    free_payload(w, m);
}

/* After a blob message's behaviour: free the blob unless it was kept.  The
 * kept flag is false outside this window (reset here, so the common
 * no-blob dispatch never touches it). */
void ax__blob_release(ax_worker_t *w, const ax_msg_t *m)
{
    if (!w->cur_blob_kept)
        ax__blob_free(w, m->payload.blob.ptr);
    w->cur_blob_kept = false;
}

/* The spawn request for a fresh slot: place the actor, then deliver what
 * waited in its embryo. */
static void handle_spawn(ax_worker_t *w, ax_msg_t *m)
{
    uint32_t slot = ax__ref_slot(m->to);
    ax_spawn_req_t *req = m->type == AX_SYS_SPAWN_EXT
                              ? (ax_spawn_req_t *)(uintptr_t)m->payload.u64[0]
                              : (ax_spawn_req_t *)m->payload.blob.ptr;
    ax_embryo_t *emb = NULL;
    ax_slot_t *e = &w->table[slot];
    if (e->actor) {
        emb = (ax_embryo_t *)e->actor; /* only embryos can sit in a fresh slot */
        e->actor = NULL;
    }
    int rc = -EDQUOT;
    if (!req->sponsor || !atomic_load_explicit(&req->sponsor->revoked, memory_order_acquire))
        rc = actor_place(w, slot, m->to, req->fn, req->init, req->fini, req->state_size,
                         req->sponsor || req->flags ? req : NULL, req->arg, req->arg_len);
    if (rc < 0) {
        atomic_fetch_add_explicit(&w->st.spawn_failed, 1, memory_order_relaxed);
        ax__fault_spawn_failed(w, m->to, req); /* DOWN / EXIT to the spawner */
        ax__slot_free(w, slot); /* later messages to the ref are dead letters */
        free_payload(w, m);     /* drops the sponsor reference too */
    } else if (m->type == AX_SYS_SPAWN_EXT) {
        free(req); /* the sponsor reference moved to the actor */
    } else {
        ax__blob_free(w, req);
    }
    if (emb) {
        ax_msg_t *em;
        uint32_t src = w->cur_src;
        while ((em = ax_mq_peek(&emb->early))) {
            if (em->to == AX_REF_NONE) { /* a source marker: not a message */
                w->cur_src = (uint32_t)em->payload.u64[0];
            } else {
                w->handled++; /* embryo_keep took it back out of `handled` */
                ax__dispatch(w, em); /* a dead letter is uncounted from cur_src */
            }
            ax_mq_pop(&emb->early, w->arena);
        }
        w->cur_src = src; /* the batch the spawn request came in goes on */
        ax_mq_fini(&emb->early, w->arena);
        ax_arena_free(w->arena, emb);
    }
}

#define EMB_SRC_NONE (UINT32_MAX - 2) /* no message kept yet (not an AX_SRC_*) */

/* Keep a message for a slot whose spawn request has not arrived yet. */
static bool embryo_keep(ax_worker_t *w, uint32_t slot, const ax_msg_t *m)
{
    ax_slot_t *e = &w->table[slot];
    ax_embryo_t *emb = (ax_embryo_t *)e->actor;
    if (!emb) {
        emb = ax_arena_alloc(w->arena, sizeof *emb);
        if (!emb)
            return false;
        memset(emb, 0, sizeof *emb);
        emb->hdr.flags = AX_ACTOR_EMBRYO;
        ax_mq_init(&emb->early);
        emb->src = EMB_SRC_NONE;
        e->actor = &emb->hdr;
    }
    ax_msg_t *slotm;
    if (emb->src != w->cur_src) { /* the drain loop counted m under cur_src */
        if (!(slotm = ax_mq_push(&emb->early, w->arena)))
            return false;
        memset(slotm, 0, sizeof *slotm); /* to = AX_REF_NONE: a marker */
        slotm->payload.u64[0] = w->cur_src;
        emb->src = w->cur_src;
    }
    if (!(slotm = ax_mq_push(&emb->early, w->arena)))
        return false;
    *slotm = *m;
    w->handled--; /* the drain loop counted it; it is handled when replayed */
    return true;
}

/* The drain loops count every message they take under its source; a
 * system message or a dead letter is not one an actor handled, so the slow
 * path takes it back out (rare, so the fast path stays count-free). */
static void uncount_source(ax_worker_t *w)
{
    if (w->cur_src == w->batch_src) { /* its batch is not counted yet: see batch_count */
        w->batch_unc++;
        return;
    }
    if (w->cur_src == AX_SRC_LOCAL) {
        AX_STAT_ADD(w->st.msgs_local, -1);
    } else if (w->cur_src == AX_SRC_EXTERNAL) {
        AX_STAT_ADD(w->st.msgs_external, -1);
    } else if (w->cur_src < w->nworkers) {
        AX_STAT_ADD(w->st.msgs_remote, -1);
        AX_STAT_ADD(w->st.from[w->cur_src], -1);
    }
}

/* Everything ax__dispatch does not handle inline. */
void ax__dispatch_slow(ax_worker_t *w, ax_msg_t *m)
{
    uint32_t slot = ax__ref_slot(m->to), dest = ax__ref_dest(w->home, m->to);
    if (dest != w->id || slot >= w->max_slots) {
        if (dest >= w->nworkers && w->cl && w->cur_src == AX_SRC_EXTERNAL) {
            /* An outside thread's ax_engine_send to another node's actor,
             * routed through this worker's inbox (cluster_glue.c): onto
             * this worker's channel, in the order the thread sent.  Not a
             * message an actor handled here. */
            uncount_source(w);
            ax__cluster_forward(w, m);
            return;
        }
        dead_letter(w, m);
        return;
    }
    ax_slot_t *e = &w->table[slot];
    ax_actor_t *a = e->actor;
    if ((m->flags & AX_MSG_F_REPLY) || m->type == AX_SYS_REQ_TIMEOUT) {
        /* A reply a continuation handled counts like any handled message;
         * a late one (dropped) and the engine's own timeout posts do not. */
        bool timeout = m->type == AX_SYS_REQ_TIMEOUT;
        if (!ax__conv_dispatch(w, m) || timeout)
            uncount_source(w);
        return;
    }
    bool reserved = a ? (a->flags & AX_ACTOR_EMBRYO) != 0
                      : slot_is_reserved(w, slot, ax__ref_gen(m->to));
    if (m->type >= AX_TYPE_SYSTEM && m->type < AX_TYPE_IO) {
        if ((m->type == AX_SYS_SPAWN || m->type == AX_SYS_SPAWN_EXT) &&
            e->gen == ax__ref_gen(m->to) && (!a || (a->flags & AX_ACTOR_EMBRYO))) {
            uncount_source(w);
            handle_spawn(w, m);
        } else if (m->type >= AX_SYS_CLUSTER_FIRST && m->type <= AX_SYS_CLUSTER_LAST) {
            uncount_source(w);
            ax__cluster_dispatch(w, m);
        } else if (m->type >= AX_SYS_FAULT_FIRST && m->type <= AX_SYS_FAULT_LAST) {
            /* A request for an actor whose spawn request is still on its
             * way waits with the early messages (not a revoke: it names a
             * worker, not an actor). */
            if (reserved && m->type != AX_SYS_REVOKE && e->gen == ax__ref_gen(m->to) &&
                embryo_keep(w, slot, m))
                return;
            uncount_source(w);
            ax__fault_dispatch(w, m);
        } else {
            dead_letter(w, m);
        }
        return;
    }
    if (a && (a->flags & AX_ACTOR_EMBRYO)) {
        if (!embryo_keep(w, slot, m))
            dead_letter(w, m);
        return;
    }
    if (a && e->gen == ax__ref_gen(m->to) && (a->flags & (AX_ACTOR_DORMANT | AX_ACTOR_CPU))) {
        ax__fault_dispatch(w, m); /* held while dormant, or metered */
        return;
    }
    if (!a && reserved && embryo_keep(w, slot, m))
        return;
    dead_letter(w, m); /* stopped actor or stale generation */
}

/* ---- shutdown --------------------------------------------------------------------------------- */

static void drop(ax_worker_t *w, const ax_msg_t *m)
{
    atomic_fetch_add_explicit(&w->st.dropped_at_stop, 1, memory_order_relaxed);
    w->handled++;
    if (m->flags & AX_MSG_F_REQUEST) /* an outside caller stops waiting */
        ax__request_undeliverable(w, m, -ESHUTDOWN);
    free_payload(w, m);
}

/* Free slot `slot`'s embryo; its mail is dropped at stop (counted), and
 * taken back out of the source it was counted under when it was kept. */
static void embryo_drop(ax_worker_t *w, uint32_t slot)
{
    ax_embryo_t *emb = (ax_embryo_t *)w->table[slot].actor;
    ax_msg_t *m;
    while ((m = ax_mq_peek(&emb->early))) {
        if (m->to == AX_REF_NONE) { /* source marker */
            w->cur_src = (uint32_t)m->payload.u64[0];
        } else {
            uncount_source(w); /* counted as handled when kept: it never was */
            drop(w, m);
        }
        ax_mq_pop(&emb->early, w->arena);
    }
    ax_mq_fini(&emb->early, w->arena);
    w->table[slot].actor = NULL;
    ax_arena_free(w->arena, emb);
}

/* A message for this worker found at stop.  A spawn request whose spawn
 * returned 0 to its caller places the actor (its init runs, with sends and
 * spawns refused as -ESHUTDOWN; its fini runs in stop_all_actors), so every
 * successful spawn gets init and fini exactly once.  Anything else is
 * dropped, counted. */
static void stop_msg(ax_worker_t *w, ax_msg_t *m)
{
    uint32_t slot = ax__ref_slot(m->to);
    if ((m->type == AX_SYS_SPAWN || m->type == AX_SYS_SPAWN_EXT) && ax__ref_dest(w->home, m->to) == w->id &&
        slot < w->max_slots && w->table[slot].gen == ax__ref_gen(m->to)) {
        ax_actor_t *a = w->table[slot].actor;
        if (!a || (a->flags & AX_ACTOR_EMBRYO)) {
            if (a)
                embryo_drop(w, slot); /* early mail is dropped, as all mail now */
            w->handled++;
            handle_spawn(w, m); /* frees the request */
            return;
        }
    }
    drop(w, m);
}

/* Walk a queue without taking anything out of it (its owner frees it). */
static void stop_mq(ax_worker_t *w, const ax_mq_t *q)
{
    const ax_mq_chunk_t *c = q->head;
    uint32_t i = q->hi;
    for (uint64_t left = q->count; left; left--, i++) {
        if (i == AX_MQ_CHUNK_MSGS) {
            c = c->next;
            i = 0;
        }
        stop_msg(w, (ax_msg_t *)&c->m[i]);
    }
}

/* Stop phase 1 (every worker between the first two barriers): handle
 * everything still queued FOR this worker, oldest first per sender: the
 * local FIFO, each inbound ring and then the sender's overflow behind it
 * (the sender leaves its overflow alone until the next barrier), the
 * external inbox.  Every message is counted (dropped_at_stop) or, if a
 * spawn request, placed. */
static void stop_inbound(ax_worker_t *w)
{
    ax_msg_t *m;
    while (w->lq_head != w->lq_tail) {
        stop_msg(w, &w->lq[w->lq_head & w->lq_mask]);
        w->lq_head++;
    }
    for (uint32_t s = 0; s < w->nworkers; s++) {
        if (s == w->id)
            continue;
        /* A ring opened but not rung yet: its sender published it (R8),
         * and the shutdown barrier orders that before this load. */
        ax_ring_t *r = w->in[s] ? w->in[s]
                                : atomic_load_explicit(&w->ring_pub[s], memory_order_acquire);
        if (r) {
            while ((m = ax_ring_peek(r))) {
                stop_msg(w, m);
                ax_ring_advance(r);
            }
            ax_ring_release(r);
        }
        stop_mq(w, &w->eng->w[s]->ovf[w->id]);
    }
    ax_inbox_node_t *node;
    while ((node = ax__inbox_pop(w))) {
        stop_msg(w, &node->msg);
        ax__inbox_node_free(node);
    }
}

/* Stop phase 2: free this worker's own queues (their messages were
 * counted by their receivers in phase 1). */
static void stop_free_queues(ax_worker_t *w)
{
    w->lq_head = w->lq_tail; /* a phase-1 init's local sends were refused: empty */
    ax__lq_fini(w);
    for (uint32_t d = 0; d < w->nworkers; d++)
        if (d != w->id)
            ax_mq_fini(&w->ovf[d], w->arena);
    w->novf = 0;
}

/* Run every live actor's fini and free it; free embryos and their mail. */
static void stop_all_actors(ax_worker_t *w)
{
    uint32_t used = atomic_load_explicit(&w->fresh, memory_order_relaxed);
    if (used > w->max_slots)
        used = w->max_slots;
    for (uint32_t s = 0; s < used; s++) {
        ax_actor_t *a = w->table[s].actor;
        if (!a)
            continue;
        if (a->flags & AX_ACTOR_EMBRYO) { /* its spawn request never came */
            embryo_drop(w, s);
            continue;
        }
        if (a->flags & AX_ACTOR_DORMANT) { /* fini ran when it stopped */
            ax__fault_discard(w, a);
            w->table[s].actor = NULL;
            ax__actor_free(w, a);
            continue;
        }
        ax__actor_stop_why(w, a, &reason_shutdown, true);
    }
}

void ax__worker_shutdown(ax_worker_t *w)
{
    ax_engine_t *eng = w->eng;
    /* External senders that passed the `closed` check finish their push
     * before we look at the inbox for the last time. */
    while (atomic_load_explicit(&eng->ext_inflight, memory_order_seq_cst))
        sched_yield();
    ax__flush(w);
    if (w->cl)
        ax__cluster_flush(w); /* what behaviours sent to other nodes leaves now */
    pthread_barrier_wait(&eng->stop_barrier); /* nobody dispatches any more */
    w->closing = true;                        /* sends from init and fini: -ESHUTDOWN */
    w->send_nw = 0;                           /* ... and none takes the fast path */
    w->send_self = AX_SEND_SELF_OFF;
    stop_inbound(w);                          /* reads the others' overflow to us */
    pthread_barrier_wait(&eng->stop_barrier); /* ... and is done with it */
    stop_free_queues(w);
    stop_all_actors(w);
    ax__conv_fini(w);
    ax__io_stop(w);
    ax__cluster_worker_stop(w); /* arrivals dropped (counted), endpoints closed */
    atomic_store_explicit(&w->pub_sent, w->sent, memory_order_release);
    atomic_store_explicit(&w->pub_handled, w->handled, memory_order_release);
    pthread_barrier_wait(&eng->stop_barrier); /* every blob freed before arenas go */
}

void ax__worker_discard(ax_worker_t *w)
{
    /* Never started: only external spawns/sends can be queued, in the inbox.
     * A worker whose create failed half way may have no inbox yet (its
     * stub is what ax__inbox_init sets last): nothing can be queued then. */
    w->closing = true;
    w->send_nw = 0;
    w->send_self = AX_SEND_SELF_OFF;
    if (!w->inbox_stub)
        return;
    ax_inbox_node_t *node;
    while ((node = ax__inbox_pop(w))) {
        free_payload(w, &node->msg);
        ax__inbox_node_free(node);
    }
}
