/* io/timer.c - 4-ary min-heap of timers with a slot table for cancel.
 * Threading and memory: see timer.h (owner thread; caller's allocator).
 *
 * Invariants: heap[i].deadline <= heap[4i+1..4i+4].deadline;
 * slots[heap[i].slot].pos == i for every armed timer; a free slot has
 * pos == NOT_ARMED and sits on the free chain.  An id is
 * (generation << 32 | slot); the generation bumps whenever a slot is freed,
 * so a stale id never matches a reused slot.
 */
#include "io/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NOT_ARMED UINT32_MAX
#define NO_SLOT UINT32_MAX

typedef struct {
    uint64_t deadline;
    uint32_t slot;
    uint32_t pad;
} hent_t;

typedef struct {
    uint64_t token;
    uint64_t period;
    uint32_t gen;
    uint32_t pos;       /* index in heap, NOT_ARMED when free */
    uint32_t next_free;
    uint32_t pad;
} slot_t;

struct ax_timers {
    ax_timers_alloc_t a;
    hent_t *heap;
    slot_t *slots;
    uint32_t n, cap; /* heap entries; both arrays have cap entries */
    uint32_t free_head;
};

static void *lib_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}
static void lib_free(void *ctx, void *p, size_t size)
{
    (void)ctx, (void)size;
    free(p);
}

int ax_timers_create(const ax_timers_alloc_t *alloc, ax_timers_t **out)
{
    ax_timers_alloc_t a = {lib_alloc, lib_free, NULL};
    if (alloc && alloc->alloc && alloc->free)
        a = *alloc;
    ax_timers_t *t = a.alloc(a.ctx, sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t, 0, sizeof *t);
    t->a = a;
    t->free_head = NO_SLOT;
    *out = t;
    return 0;
}

void ax_timers_destroy(ax_timers_t *t)
{
    if (!t)
        return;
    if (t->cap) {
        t->a.free(t->a.ctx, t->heap, (size_t)t->cap * sizeof *t->heap);
        t->a.free(t->a.ctx, t->slots, (size_t)t->cap * sizeof *t->slots);
    }
    t->a.free(t->a.ctx, t, sizeof *t);
}

static int grow(ax_timers_t *t)
{
    uint32_t ncap = t->cap ? t->cap * 2 : 64;
    if (ncap > (1u << 30))
        return -ENOMEM;
    hent_t *h = t->a.alloc(t->a.ctx, (size_t)ncap * sizeof *h);
    slot_t *s = t->a.alloc(t->a.ctx, (size_t)ncap * sizeof *s);
    if (!h || !s) {
        if (h)
            t->a.free(t->a.ctx, h, (size_t)ncap * sizeof *h);
        if (s)
            t->a.free(t->a.ctx, s, (size_t)ncap * sizeof *s);
        return -ENOMEM;
    }
    if (t->cap) {
        memcpy(h, t->heap, (size_t)t->n * sizeof *h);
        memcpy(s, t->slots, (size_t)t->cap * sizeof *s);
        t->a.free(t->a.ctx, t->heap, (size_t)t->cap * sizeof *t->heap);
        t->a.free(t->a.ctx, t->slots, (size_t)t->cap * sizeof *t->slots);
    }
    /* new slots go on the free chain in index order */
    for (uint32_t i = t->cap; i < ncap; i++) {
        s[i].gen = 1;
        s[i].pos = NOT_ARMED;
        s[i].next_free = (i + 1 < ncap) ? i + 1 : t->free_head;
    }
    t->free_head = t->cap;
    t->heap = h;
    t->slots = s;
    t->cap = ncap;
    return 0;
}

static inline void place(ax_timers_t *t, uint32_t i, hent_t e)
{
    t->heap[i] = e;
    t->slots[e.slot].pos = i;
}

static void sift_up(ax_timers_t *t, uint32_t i)
{
    hent_t e = t->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 4;
        if (t->heap[p].deadline <= e.deadline)
            break;
        place(t, i, t->heap[p]);
        i = p;
    }
    place(t, i, e);
}

static void sift_down(ax_timers_t *t, uint32_t i)
{
    hent_t e = t->heap[i];
    for (;;) {
        uint32_t c = 4 * i + 1;
        if (c >= t->n)
            break;
        uint32_t m = c;
        uint32_t end = c + 4 < t->n ? c + 4 : t->n;
        for (uint32_t k = c + 1; k < end; k++)
            if (t->heap[k].deadline < t->heap[m].deadline)
                m = k;
        if (t->heap[m].deadline >= e.deadline)
            break;
        place(t, i, t->heap[m]);
        i = m;
    }
    place(t, i, e);
}

/* Take heap entry i out, keeping the heap shape. */
static void heap_remove(ax_timers_t *t, uint32_t i)
{
    uint32_t slot = t->heap[i].slot;
    t->slots[slot].pos = NOT_ARMED;
    t->n--;
    if (i == t->n)
        return;
    place(t, i, t->heap[t->n]);
    if (i > 0 && t->heap[(i - 1) / 4].deadline > t->heap[i].deadline)
        sift_up(t, i);
    else
        sift_down(t, i);
}

static void slot_release(ax_timers_t *t, uint32_t slot)
{
    slot_t *s = &t->slots[slot];
    s->gen = s->gen == UINT32_MAX ? 1 : s->gen + 1;
    s->pos = NOT_ARMED;
    s->next_free = t->free_head;
    t->free_head = slot;
}

int ax_timers_add(ax_timers_t *t, uint64_t deadline_ns, uint64_t period_ns, uint64_t token,
                  uint64_t *out_id)
{
    if (t->free_head == NO_SLOT && grow(t) < 0)
        return -ENOMEM;
    uint32_t slot = t->free_head;
    slot_t *s = &t->slots[slot];
    t->free_head = s->next_free;
    s->token = token;
    s->period = period_ns;
    uint32_t i = t->n++;
    t->heap[i] = (hent_t){.deadline = deadline_ns, .slot = slot};
    sift_up(t, i);
    *out_id = ((uint64_t)s->gen << 32) | slot;
    return 0;
}

static slot_t *lookup(ax_timers_t *t, uint64_t id, uint32_t *slot)
{
    uint32_t sl = (uint32_t)id;
    if (sl >= t->cap)
        return NULL;
    slot_t *s = &t->slots[sl];
    if (s->gen != (uint32_t)(id >> 32) || s->pos == NOT_ARMED)
        return NULL;
    *slot = sl;
    return s;
}

int ax_timers_cancel(ax_timers_t *t, uint64_t id) { return ax_timers_cancel_token(t, id, NULL); }

int ax_timers_cancel_token(ax_timers_t *t, uint64_t id, uint64_t *token)
{
    uint32_t slot;
    slot_t *s = lookup(t, id, &slot);
    if (!s)
        return -ENOENT;
    if (token)
        *token = s->token;
    heap_remove(t, s->pos);
    slot_release(t, slot);
    return 0;
}

uint64_t ax_timers_next_deadline_ns(const ax_timers_t *t)
{
    return t->n ? t->heap[0].deadline : AX_TIMERS_NO_DEADLINE;
}

uint32_t ax_timers_count(const ax_timers_t *t) { return t->n; }

uint32_t ax_timers_expire(ax_timers_t *t, uint64_t now_ns, ax_timer_fn fn, void *user)
{
    uint32_t fired = 0;
    /* A periodic timer is re-armed strictly after now_ns, so each timer fires
     * at most once per call and the loop ends. */
    while (t->n && t->heap[0].deadline <= now_ns) {
        hent_t e = t->heap[0];
        slot_t *s = &t->slots[e.slot];
        uint64_t id = ((uint64_t)s->gen << 32) | e.slot;
        uint64_t token = s->token;
        if (s->period) {
            /* next = start + k*period > now: keep the phase, skip what was
             * missed.  Re-armed before the callback so that the callback can
             * cancel it like any other armed timer. */
            uint64_t next = e.deadline + s->period;
            if (next <= now_ns)
                next += ((now_ns - next) / s->period + 1) * s->period;
            t->heap[0].deadline = next;
            sift_down(t, 0);
        } else {
            heap_remove(t, 0);
            slot_release(t, e.slot);
        }
        fired++;
        fn(user, id, token);
    }
    return fired;
}
