/* engine/inbox.c - a worker's inbox for messages from threads outside the
 * engine: an intrusive multi-producer, single-consumer queue (Vyukov).
 *
 * Threading: ax__inbox_push from any thread; pop/nonempty on the owning
 * worker only (or the creator before start / after join).
 * Memory: nodes are malloc'ed by the sending thread and freed by the worker
 * after dispatch; this is the cold path (correctness first).
 *
 * Protocol.  A producer swaps itself in as the new tail (exchange, acq_rel),
 * then links the previous tail to itself (release store, R4).  The consumer
 * follows `next` pointers with acquire loads (A4).  Between a producer's
 * exchange and its link the chain is briefly broken: the consumer then sees
 * no successor although tail moved on, and simply reports "empty for now";
 * the producer's wake (or the worker's next turn) brings it back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

ax_inbox_node_t *ax__inbox_node_alloc(void)
{
    ax_inbox_node_t *n = aligned_alloc(64, sizeof *n);
    if (n)
        atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    return n;
}

void ax__inbox_node_free(ax_inbox_node_t *n) { free(n); }

int ax__inbox_init(ax_worker_t *w)
{
    ax_inbox_node_t *stub = ax__inbox_node_alloc();
    if (!stub)
        return -ENOMEM;
    memset(&stub->msg, 0, sizeof stub->msg);
    w->inbox_stub = stub;
    w->inbox_head = stub;
    atomic_store_explicit(&w->inbox_tail, stub, memory_order_relaxed);
    return 0;
}

void ax__inbox_fini(ax_worker_t *w)
{
    ax_inbox_node_t *n;
    if (!w->inbox_stub)
        return;
    while ((n = ax__inbox_pop(w)))
        ax__inbox_node_free(n);
    ax__inbox_node_free(w->inbox_stub);
    w->inbox_stub = NULL;
}

void ax__inbox_push(ax_worker_t *w, ax_inbox_node_t *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    ax_inbox_node_t *prev = atomic_exchange_explicit(&w->inbox_tail, n, memory_order_acq_rel);
    /* R4: n's contents are visible to the consumer that follows this link.
     * Pairs with A4 in ax__inbox_pop. */
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

ax_inbox_node_t *ax__inbox_pop(ax_worker_t *w)
{
    ax_inbox_node_t *head = w->inbox_head;
    ax_inbox_node_t *next = atomic_load_explicit(&head->next, memory_order_acquire); /* A4 */
    if (head == w->inbox_stub) {
        if (!next)
            return NULL;
        w->inbox_head = head = next;
        next = atomic_load_explicit(&head->next, memory_order_acquire); /* A4 */
    }
    if (next) {
        w->inbox_head = next;
        return head;
    }
    if (head != atomic_load_explicit(&w->inbox_tail, memory_order_acquire))
        return NULL; /* a producer is between its exchange and its link */
    /* head is the last node: put the stub behind it so head can be taken. */
    ax__inbox_push(w, w->inbox_stub);
    next = atomic_load_explicit(&head->next, memory_order_acquire); /* A4 */
    if (next) {
        w->inbox_head = next;
        return head;
    }
    return NULL;
}

bool ax__inbox_nonempty(ax_worker_t *w)
{
    ax_inbox_node_t *head = w->inbox_head;
    if (head != w->inbox_stub)
        return true;
    return atomic_load_explicit(&head->next, memory_order_acquire) != NULL ||
           atomic_load_explicit(&w->inbox_tail, memory_order_acquire) != head;
}
