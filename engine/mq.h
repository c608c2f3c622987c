/* engine/mq.h - unbounded single-thread FIFO of 64-byte messages in 4 KiB
 * chunks from the owning worker's arena.  Used for the per-destination
 * overflow queues behind full rings and for the messages that reach a
 * remotely spawned actor before its spawn request.  (The same-worker FIFO
 * is a growable ring instead: fewer instructions per message.)
 *
 * Threading: owner thread only; no atomics.
 * Memory: chunks come from the arena given at each push and go back to it
 * when drained; one drained chunk is kept as a spare so a queue that
 * oscillates around a chunk boundary does not allocate.  A push that needs a
 * chunk the arena cannot give returns NULL: the caller reports -ENOMEM.
 */
#ifndef AXON_ENGINE_MQ_H
#define AXON_ENGINE_MQ_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/arena.h"
#include "axon/axon.h"

#define AX_MQ_CHUNK_MSGS 63u

typedef struct ax_mq_chunk {
    struct ax_mq_chunk *next;
    char pad[64 - sizeof(void *)];
    ax_msg_t m[AX_MQ_CHUNK_MSGS];
} ax_mq_chunk_t;
_Static_assert(sizeof(ax_mq_chunk_t) == 4096, "a chunk is one 4 KiB arena class");

typedef struct ax_mq {
    ax_mq_chunk_t *head, *tail, *spare;
    uint32_t hi, ti; /* read index in head, write index in tail */
    uint64_t count;
} ax_mq_t;

static inline void ax_mq_init(ax_mq_t *q)
{
    q->head = q->tail = q->spare = NULL;
    q->hi = q->ti = 0;
    q->count = 0;
}

/* A slot at the tail to fill, or NULL when no chunk could be had. */
static inline ax_msg_t *ax_mq_push(ax_mq_t *q, ax_arena_t *a)
{
    if (__builtin_expect(!q->tail || q->ti == AX_MQ_CHUNK_MSGS, 0)) {
        ax_mq_chunk_t *c = q->spare;
        if (c)
            q->spare = NULL;
        else if (!(c = (ax_mq_chunk_t *)ax_arena_alloc(a, sizeof(ax_mq_chunk_t))))
            return NULL;
        c->next = NULL;
        if (q->tail)
            q->tail->next = c;
        else
            q->head = c, q->hi = 0;
        q->tail = c;
        q->ti = 0;
    }
    q->count++;
    return &q->tail->m[q->ti++];
}

/* ax_mq_push when the tail chunk has room, else NULL (the caller then
 * pushes with ax_mq_push): makes no call, so a caller's fast path needs no
 * stack frame. */
static inline ax_msg_t *ax_mq_try_push(ax_mq_t *q)
{
    if (__builtin_expect(!q->tail || q->ti == AX_MQ_CHUNK_MSGS, 0))
        return NULL;
    q->count++;
    return &q->tail->m[q->ti++];
}

/* The oldest message, or NULL when empty.  Valid until ax_mq_pop. */
static inline ax_msg_t *ax_mq_peek(const ax_mq_t *q)
{
    return q->count ? &q->head->m[q->hi] : NULL;
}

/* How many of the oldest messages lie in order from *first (all in the
 * head chunk): 0 when empty.  Valid until ax_mq_pop_n. */
static inline uint32_t ax_mq_run(const ax_mq_t *q, ax_msg_t **first)
{
    if (!q->count)
        return 0;
    *first = &q->head->m[q->hi];
    return (q->head == q->tail ? q->ti : AX_MQ_CHUNK_MSGS) - q->hi;
}

/* Drop the n oldest messages, n at most what ax_mq_run returned (so they
 * are in the head chunk). */
static inline void ax_mq_pop_n(ax_mq_t *q, uint32_t n, ax_arena_t *a)
{
    q->count -= n;
    q->hi += n;
    if (q->hi == AX_MQ_CHUNK_MSGS || (q->head == q->tail && q->hi == q->ti)) {
        ax_mq_chunk_t *c = q->head;
        if (c == q->tail) { /* drained: keep the chunk for reuse */
            q->hi = q->ti = 0;
            return;
        }
        q->head = c->next;
        q->hi = 0;
        if (!q->spare)
            q->spare = c;
        else
            ax_arena_free(a, c);
    }
}

static inline void ax_mq_pop(ax_mq_t *q, ax_arena_t *a) { ax_mq_pop_n(q, 1, a); }

/* Free every chunk (messages still inside are the caller's business). */
static inline void ax_mq_fini(ax_mq_t *q, ax_arena_t *a)
{
    ax_mq_chunk_t *c = q->head;
    while (c) {
        ax_mq_chunk_t *n = c->next;
        ax_arena_free(a, c);
        c = n;
    }
    if (q->spare)
        ax_arena_free(a, q->spare);
    ax_mq_init(q);
}

#endif /* AXON_ENGINE_MQ_H */
