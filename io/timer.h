/* io/timer.h - per-worker timers: one-shot and periodic, cancellable, with
 * nanosecond deadlines on CLOCK_MONOTONIC.
 *
 * Structure: a 4-ary min-heap of (deadline, slot) pairs plus a slot table
 * that holds each timer's token, period, generation and heap position.
 * Why a heap and not a hashed wheel: the worker needs the exact next
 * deadline every time it parks (a wheel must scan buckets for it, or
 * quantise it to its tick), cancellation must be O(log n) and exact, and a
 * worker holds thousands of timers, not millions (axon-kv sweeps expiry on
 * one periodic timer per shard).  4-ary rather than binary: half the depth,
 * and the four children of a node share one 64-byte line (16-byte entries).
 *
 * Semantics: a cancelled timer never fires, also when it was due in the same
 * ax_timers_expire call (a callback may cancel any timer, itself included).
 * A periodic timer fires at start + k*period: its next deadline is computed
 * from the previous deadline, not from when it fired; when the worker falls
 * more than a period behind, the missed ticks are skipped (one call per
 * expire) and the phase is kept.
 *
 * Threading: one owner thread (the worker); no locks, no atomics.
 * Memory: the heap and slot arrays come from the caller's allocator (the
 * engine backs it with its arena for small sizes and the large allocator
 * above AX_ARENA_MAX_CLASS); NULL means libc.  Arrays double when full.
 */
#ifndef AXON_IO_TIMER_H
#define AXON_IO_TIMER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct ax_timers ax_timers_t;

typedef struct ax_timers_alloc {
    void *(*alloc)(void *ctx, size_t size); /* 16-byte aligned, NULL on failure */
    void (*free)(void *ctx, void *p, size_t size);
    void *ctx;
} ax_timers_alloc_t;

#define AX_TIMER_NONE 0u                /* never a valid id */
#define AX_TIMERS_NO_DEADLINE UINT64_MAX

/* 0 or -ENOMEM.  alloc may be NULL (libc); it is copied. */
int ax_timers_create(const ax_timers_alloc_t *alloc, ax_timers_t **out);
/* Frees everything; pending timers never fire.  NULL: does nothing. */
void ax_timers_destroy(ax_timers_t *t);

/* Arm a timer due at deadline_ns (absolute, ax_now_ns clock); period_ns 0:
 * one-shot, else periodic.  *out_id identifies it for cancel.  0, -ENOMEM
 * (nothing armed). */
int ax_timers_add(ax_timers_t *t, uint64_t deadline_ns, uint64_t period_ns, uint64_t token,
                  uint64_t *out_id);
/* 0, or -ENOENT (already fired one-shot, cancelled, or never existed). */
int ax_timers_cancel(ax_timers_t *t, uint64_t id);
/* Same, and hands back the cancelled timer's token (to free what it names). */
int ax_timers_cancel_token(ax_timers_t *t, uint64_t id, uint64_t *token);

/* Earliest deadline, AX_TIMERS_NO_DEADLINE when none.  O(1). */
uint64_t ax_timers_next_deadline_ns(const ax_timers_t *t);

typedef void (*ax_timer_fn)(void *user, uint64_t id, uint64_t token);
/* Fire every timer due at now_ns, earliest first (ties: arming order not
 * promised).  Returns how many fired. */
uint32_t ax_timers_expire(ax_timers_t *t, uint64_t now_ns, ax_timer_fn fn, void *user);
/* Armed timers. */
uint32_t ax_timers_count(const ax_timers_t *t);

static inline uint64_t ax_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* AXON_IO_TIMER_H */
