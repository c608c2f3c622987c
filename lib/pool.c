/* lib/pool.c - work pools (axon/pool.h): executor actors with fixed
 * per-item scratch arenas, a bounded slot table, completions as messages or
 * futures.  A layer above the engine: uses only the public API.
 *
 * Threading: submit and cancel from any thread (behaviours and outside
 * threads); each executor runs on its worker; create on an outside thread.
 *
 * ---- The slot protocol (exactly-once completion) ---------------------------------
 *   The pool has queue_len slots; a free slot's index sits in `freeq`, a
 *   bounded MPMC queue (Vyukov), so "pool full" is "freeq empty": -EAGAIN.
 *   A slot's `state` packs (generation << 2 | FREE/QUEUED/RUNNING/CANCELLED);
 *   an item id is (generation << 24 | index), so an id outlives nothing.
 *     submitter: pop index, fill the slot, state = gen|QUEUED, send the
 *                index to an executor (the send orders the fill before the
 *                executor's reads: ring R1/A1 or the inbox xchg)
 *     cancel:    CAS gen|QUEUED -> gen|CANCELLED        (anyone, once)
 *     executor:  CAS gen|QUEUED -> gen|RUNNING; run it, or see CANCELLED;
 *                either way send the one completion, then
 *                state = (gen+1)|FREE and push the index back
 *   Only the executor that receives the index completes and frees the slot,
 *   and it receives it once: one completion per item.  A cancel that loses
 *   the CAS (RUNNING, or a newer generation) answers -EBUSY.  If the engine
 *   stops with items queued, their messages are dropped: the last executor
 *   to stop sweeps the table (CAS QUEUED/CANCELLED -> RUNNING, so no one
 *   else touches them) and completes futures with -ESHUTDOWN.
 *
 * ---- Futures ---------------------------------------------------------------------
 *   state 0 pending, 2 pending with a sleeping waiter, 1 done.  Completer:
 *   write done, R1: exchange(state, 1, release); if it was 2, futex wake.
 *   Waiter: A1: load(acquire) == 1 -> read done; else CAS 0 -> 2 and futex
 *   wait on value 2 (a completion in between changes the value: no lost wake).
 *
 * Memory: slots, input copies and the free queue are one allocation each
 * from malloc; each executor's scratch arena is mapped on its worker's NUMA
 * node (libnuma) when the plan is pinned.  The pool is freed when its
 * creator has called destroy and every executor has stopped (refs).
 */
#include <errno.h>
#include <linux/futex.h>
#include <numa.h>
#include <sched.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/pool.h"
#include "axon/watchdog.h"

#include "poison.h"

#define CACHELINE 64
#define MSG_RUN 1u  /* payload: one slot index (a submitter on another worker, or outside) */
#define MSG_STOP 2u
#define MSG_KICK 3u /* no payload: run what waits in the executor's local queue */
#define LQ_NONE UINT32_MAX
/* A drain of the local queue plans for about DRAIN_NS of items (by the
 * executor's mean item time) and at most DRAIN_MAX of them, so one message
 * never holds the worker much longer than one item did before batching. */
#define DRAIN_NS 20000u
#define DRAIN_MAX 64u

enum { ST_FREE = 0, ST_QUEUED = 1, ST_RUNNING = 2, ST_CANCELLED = 3 };
#define IDX_BITS 24u
#define GEN_MASK ((UINT64_C(1) << 40) - 1)

typedef struct slot {
    _Atomic uint64_t state; /* gen << 2 | ST_* */
    ax_pool_fn fn;
    const void *in;
    size_t in_len;
    void *out;
    size_t out_cap;
    uint64_t tag;
    ax_ref_t reply_to;       /* AX_REF_NONE: complete fut */
    struct future *fut;
    uint32_t reply_type;
    uint32_t in_mode;
    uint32_t next; /* the local queue's link (see executor_t) */
} slot_t;

typedef struct future {
    _Atomic uint32_t state; /* see the file comment */
    uint32_t pad_;
    ax_pool_done_t done;
} future_t;
_Static_assert(sizeof(future_t) <= sizeof(ax_pool_future_t), "future fits its public storage");
_Static_assert(alignof(future_t) <= alignof(ax_pool_future_t), "future alignment");

typedef struct fq_cell {
    _Atomic uint64_t seq;
    uint32_t val;
} fq_cell_t;

/* One executor: its own cache lines; counters written by its worker only. */
typedef struct executor {
    alignas(CACHELINE) struct ax_pool *pool;
    ax_ref_t ref;
    uint32_t worker; /* planned worker */
    uint32_t ran_on; /* where init ran (== worker, or create fails) */
    int node;        /* NUMA node of its scratch, -1: unbound */
    unsigned char *scratch;
    size_t scratch_len; /* mapped bytes */
    _Atomic uint64_t completed, ok, failed, scratch_exhausted, cancelled, overflow, nomem,
        over_budget, budget_reported, max_ns, lost, dropped;
    /* Mean item time (ns, EWMA over every 16th item), written by the
     * executor, read by submitters to price its queue (pick_executor). */
    _Atomic uint64_t avg_ns;
    uint32_t sample; /* executor-private: items since the last timed one */
    uint64_t last_ns; /* executor-private: the last timed item's time */
    /* The local queue: items submitted by behaviours on this executor's own
     * worker, linked through slot.next, and one MSG_KICK for all of them
     * rather than a message per item.  Only that worker's thread touches
     * these four (the submitters and the executor are all behaviours
     * there), so they need no atomics.  Invariant between behaviours: the
     * queue is non-empty only while a MSG_KICK is on its way (lq_kicked). */
    uint32_t lq_head, lq_tail;
    bool lq_kicked;
    /* Items the local queue took (single writer: this worker), so a local
     * submit does no locked add.  Backlog = sent + sent_local - completed. */
    _Atomic uint64_t sent_local;
    /* Items sent to this executor from other workers and outside threads
     * (fetch_add).  A line of its own: every such submitter writes it. */
    alignas(CACHELINE) _Atomic uint64_t sent;
} executor_t;

struct ax_pool {
    ax_engine_t *eng;
    ax_pool_config_t cfg;
    char name[48];
    uint32_t nexec, queue_len;
    uint32_t nmapped; /* executors with scratch mapped (pool_free unmaps them) */
    executor_t *ex;
    int32_t *local; /* per worker: the index of an executor there, or -1 */
    uint32_t nworkers;
    slot_t *slots;
    unsigned char *inbuf; /* queue_len * in_max */
    fq_cell_t *cells;
    uint64_t fq_mask;
    /* The free queue's two ends on lines of their own (submitters pop,
     * executors push). */
    alignas(CACHELINE) _Atomic uint64_t fq_head;
    alignas(CACHELINE) _Atomic uint64_t fq_tail;
    alignas(CACHELINE) _Atomic uint32_t closing;
    _Atomic uint64_t rejected_full;
    alignas(CACHELINE) _Atomic uint32_t inited; /* executors whose init ran (futex) */
    _Atomic uint32_t live;                     /* executors not yet stopped */
    _Atomic uint32_t refs;                     /* creator + inited executors */
};

struct ax_pool_job {
    unsigned char *base;
    size_t used, cap;
    bool exhausted;
    uint32_t worker;
};

static _Thread_local char last_error[256];
const char *ax_pool_last_error(void) { return last_error; }
static void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Relaxed add to a counter only one thread writes (readers: stats). */
static inline void stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *ts)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, ts, NULL, 0);
}
static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

/* ---- the free-slot queue: Vyukov's bounded MPMC queue ------------------------------
 * Cell i's seq says whose turn it is: seq == pos for a producer at pos,
 * seq == pos + 1 for a consumer at pos.  The value is written before the
 * release store of seq and read after the acquire load that saw it (R2/A2). */

/* Never fails: the queue holds at most queue_len indices in at least
 * 2 * queue_len cells.  Still, a cell can look occupied (dif < 0) while the
 * consumer that took it from the queue, long ago by positions, has not yet
 * stored its seq (it was preempted between its CAS and its store); giving
 * up there would leak the slot, so we wait for that store, yielding. */
static void fq_push(ax_pool_t *p, uint32_t v)
{
    uint64_t pos = atomic_load_explicit(&p->fq_tail, memory_order_relaxed);
    fq_cell_t *c;
    for (uint32_t spins = 0;; spins++) {
        c = &p->cells[pos & p->fq_mask];
        /* A2: pairs with R2 in fq_pop: the consumer is done with the cell. */
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&p->fq_tail, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else {
            if (dif < 0 && spins > 64)
                sched_yield(); /* a stalled consumer: see above */
            pos = atomic_load_explicit(&p->fq_tail, memory_order_relaxed);
        }
    }
    c->val = v;
    /* R2: pairs with A2 in fq_pop: val is written. */
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
}

/* Push v[0..n) with one claim of n consecutive cells (one CAS instead of
 * n), in order.  Claiming pos..pos+n-1 at once is sound for the same reason
 * a single claim is: a producer writes only cells below the tail it moved,
 * and each cell's seq says its consumer is done with it.  If a cell ahead is
 * not free yet (the stalled consumer of fq_push), push one at a time. */
static void fq_push_n(ax_pool_t *p, const uint32_t *v, uint32_t n)
{
    uint64_t pos = atomic_load_explicit(&p->fq_tail, memory_order_relaxed);
    for (uint32_t tries = 0; n > 1 && tries < 4; tries++) {
        uint32_t i = 0;
        /* A2: pairs with R2 in fq_pop, per cell. */
        while (i < n && atomic_load_explicit(&p->cells[(pos + i) & p->fq_mask].seq,
                                             memory_order_acquire) == pos + i)
            i++;
        if (i == n) {
            if (atomic_compare_exchange_weak_explicit(&p->fq_tail, &pos, pos + n, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                for (i = 0; i < n; i++) {
                    fq_cell_t *c = &p->cells[(pos + i) & p->fq_mask];
                    c->val = v[i];
                    /* R2: pairs with A2 in fq_pop: val is written. */
                    atomic_store_explicit(&c->seq, pos + i + 1, memory_order_release);
                }
                return;
            }
        } else {
            pos = atomic_load_explicit(&p->fq_tail, memory_order_relaxed);
        }
    }
    for (uint32_t i = 0; i < n; i++)
        fq_push(p, v[i]);
}

static bool fq_pop(ax_pool_t *p, uint32_t *v)
{
    uint64_t pos = atomic_load_explicit(&p->fq_head, memory_order_relaxed);
    fq_cell_t *c;
    for (uint32_t spins = 0;; spins++) {
        c = &p->cells[pos & p->fq_mask];
        /* A2: pairs with R2 in fq_push. */
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - (pos + 1));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&p->fq_head, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (dif < 0) {
            /* Not published at pos.  Empty if no push has claimed it
             * (tail == pos): every slot is in flight.  Else an executor is
             * between its claim and its publish, a few instructions: wait
             * for it a little rather than answer "full" while a slot is
             * coming back, which could leave a submitter with nothing in
             * flight and so no completion to retry on (test_pool caught
             * that).  A pusher preempted for longer still gets -EAGAIN. */
            if (atomic_load_explicit(&p->fq_tail, memory_order_relaxed) == pos || spins > 256)
                return false;
            __builtin_ia32_pause();
            pos = atomic_load_explicit(&p->fq_head, memory_order_relaxed);
        } else {
            pos = atomic_load_explicit(&p->fq_head, memory_order_relaxed);
        }
    }
    *v = c->val;
    /* R2: pairs with A2 in fq_push: we have read val; the cell is free. */
    atomic_store_explicit(&c->seq, pos + p->fq_mask + 1, memory_order_release);
    return true;
}

/* ---- scratch --------------------------------------------------------------------------- */

void *ax_pool_alloc(ax_pool_job_t *job, size_t len)
{
    if (!job)
        return NULL;
    if (len > job->cap || job->used > job->cap - ((len + 15) & ~(size_t)15)) {
        job->exhausted = true; /* the item fails, whatever it returns */
        return NULL;
    }
    size_t need = (len + 15) & ~(size_t)15;
    void *r = job->base + job->used;
    job->used += need;
    UNPOISON(r, need);
    return r;
}

uint32_t ax_pool_job_worker(const ax_pool_job_t *job) { return job ? job->worker : UINT32_MAX; }

/* ---- lifetime ------------------------------------------------------------------------- */

static void pool_free(ax_pool_t *p)
{
    if (!p)
        return;
    if (p->ex)
        for (uint32_t i = 0; i < p->nmapped; i++)
            if (p->ex[i].scratch) {
                UNPOISON(p->ex[i].scratch, p->ex[i].scratch_len);
                munmap(p->ex[i].scratch, p->ex[i].scratch_len);
            }
    free(p->ex);
    free(p->local);
    free(p->slots);
    free(p->inbuf);
    free(p->cells);
    free(p);
}

static void pool_release(ax_pool_t *p)
{
    /* acq_rel: the last releaser sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        pool_free(p);
}

/* ---- completion ---------------------------------------------------------------------- */

static void future_complete(future_t *f, const ax_pool_done_t *d)
{
    f->done = *d;
    /* R1: pairs with A1 in ax_pool_future_wait: done is written. */
    if (atomic_exchange_explicit(&f->state, 1, memory_order_acq_rel) == 2)
        futex_wake_all(&f->state);
}

/* A new generation for slot idx, so stale ids no longer match; the index
 * goes back to the free queue next (slot_free, or a drain's batch). */
static void slot_retire(ax_pool_t *p, uint32_t idx, uint64_t gen)
{
    /* Release: the next submitter's fill happens after our reads (it pops
     * the index through the queue, R2/A2, which also orders this). */
    atomic_store_explicit(&p->slots[idx].state, (((gen + 1) & GEN_MASK) << 2) | ST_FREE,
                          memory_order_release);
}

static void slot_free(ax_pool_t *p, uint32_t idx, uint64_t gen)
{
    slot_retire(p, idx, gen);
    fq_push(p, idx);
}

/* ---- the executor actor --------------------------------------------------------------- */

typedef struct exec_state {
    executor_t *ex;
} exec_state_t;

static void exec_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    exec_state_t *s = state;
    (void)ctx;
    (void)len;
    memcpy(&s->ex, arg, sizeof s->ex);
    ax_pool_t *p = s->ex->pool;
    s->ex->ran_on = ax_worker_id(ctx); /* checked by ax_pool_create: the local queue needs it */
    POISON(s->ex->scratch, s->ex->scratch_len); /* nothing is allocated yet */
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    /* Release: pairs with the acquire in ax_pool_create's wait. */
    atomic_fetch_add_explicit(&p->inited, 1, memory_order_release);
    futex_wake_all(&p->inited);
}

static void sweep_dropped(ax_pool_t *p, executor_t *ex)
{
    for (uint32_t i = 0; i < p->queue_len; i++) {
        slot_t *s = &p->slots[i];
        uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        uint32_t kind = (uint32_t)(st & 3);
        if (kind != ST_QUEUED && kind != ST_CANCELLED)
            continue;
        if (!atomic_compare_exchange_strong_explicit(&s->state, &st, (st & ~(uint64_t)3) | ST_RUNNING,
                                                     memory_order_acq_rel, memory_order_relaxed))
            continue;
        ax_pool_done_t d = {.id = ((st >> 2) << IDX_BITS) | i,
                            .tag = s->tag,
                            .status = -ESHUTDOWN,
                            .reason = AX_POOL_R_SHUTDOWN,
                            .worker = UINT32_MAX};
        if (s->fut)
            future_complete(s->fut, &d);
        stat_add(&ex->dropped, 1);
        stat_add(&ex->completed, 1);
        slot_free(p, i, st >> 2);
    }
}

static void exec_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    exec_state_t *s = state;
    ax_pool_t *p = s->ex->pool;
    /* acq_rel: the last executor to stop sees the others' slot updates. */
    if (atomic_fetch_sub_explicit(&p->live, 1, memory_order_acq_rel) == 1)
        sweep_dropped(p, s->ex);
    pool_release(p);
}

/* An item ran dt ns, over the pool's budget: tell the engine's watchdog,
 * if it has one (it reports on its own thread: stderr, hook, counter,
 * probe); the stats count it either way. */
static void report_over_budget(ax_ctx_t *ctx, executor_t *ex, ax_pool_fn fn, uint64_t id,
                               uint64_t tag, uint64_t dt)
{
    ax_pool_t *p = ex->pool;
    char what[160];
    /* The watchdog adds the function's name and how long it ran. */
    snprintf(what, sizeof what, "pool \"%s\" item 0x%llx (tag %llu) over its budget of %llu us",
             p->name, (unsigned long long)id, (unsigned long long)tag,
             (unsigned long long)(p->cfg.budget_ns / 1000));
    if (ax_watchdog_report(ctx, (const void *)(uintptr_t)fn, what, dt) == 0)
        stat_add(&ex->budget_reported, 1);
}

/* Run (or cancel) the item in slot idx and send its one completion.  The
 * slot goes back to the free queue now, or, with freed, into freed[] for
 * the caller to push in one batch (fq_push_n).  Returns how long fn ran if
 * it was timed, else 0. */
static uint64_t run_item(ax_ctx_t *ctx, executor_t *ex, uint32_t idx, uint32_t *freed)
{
    uint64_t ran_ns = 0;
    ax_pool_t *p = ex->pool;
    slot_t *s = &p->slots[idx];
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    uint64_t gen = st >> 2;
    ax_pool_done_t d = {.id = (gen << IDX_BITS) | idx, .tag = s->tag, .worker = ex->worker};
    unsigned char *blob = NULL;
    uint64_t want = gen << 2 | ST_QUEUED;
    /* acq_rel: pairs with the CAS in ax_pool_cancel; exactly one wins. */
    bool run = atomic_compare_exchange_strong_explicit(&s->state, &want, gen << 2 | ST_RUNNING,
                                                       memory_order_acq_rel, memory_order_relaxed);
    if (!run) {
        d.status = -ECANCELED;
        d.reason = AX_POOL_R_CANCELLED;
        stat_add(&ex->cancelled, 1);
    } else {
        void *out = s->out;
        bool small = !out && s->out_cap <= AX_POOL_SMALL_MAX;
        if (small) {
            out = d.small;
        } else if (!out) {
            blob = ax_blob_alloc(ctx, sizeof d + s->out_cap);
            out = blob ? blob + sizeof d : NULL;
        }
        if (!out && s->out_cap) {
            d.status = -ENOMEM;
            d.reason = AX_POOL_R_NOMEM;
            stat_add(&ex->nomem, 1);
        } else {
            ax_pool_job_t job = {.base = ex->scratch, .cap = ex->scratch_len, .worker = d.worker};
            size_t out_len = 0;
            const void *in = s->in_mode == AX_POOL_IN_COPY ? p->inbuf + (size_t)idx * p->cfg.in_max : s->in;
            /* Timed with a budget, and every 16th item for the mean. */
            bool timed = p->cfg.budget_ns || (++ex->sample & 15) == 1;
            uint64_t t0 = timed ? now_ns() : 0;
            int rc = s->fn(&job, in, s->in_len, out, s->out_cap, &out_len);
            if (timed) {
                uint64_t dt = ran_ns = now_ns() - t0;
                /* The mean takes the shorter of the last two timed items:
                 * one item preempted by the kernel (ms on a loaded machine)
                 * must not make tiny items look long for the next thousand
                 * (one kick per item, items sent away); two long ones in a
                 * row are a real change. */
                uint64_t v = dt < ex->last_ns || !ex->last_ns ? dt : ex->last_ns;
                ex->last_ns = dt;
                uint64_t avg = atomic_load_explicit(&ex->avg_ns, memory_order_relaxed);
                atomic_store_explicit(&ex->avg_ns, avg ? (avg * 7 + v) / 8 : v, memory_order_relaxed);
                if (p->cfg.budget_ns) {
                    if (dt > atomic_load_explicit(&ex->max_ns, memory_order_relaxed))
                        atomic_store_explicit(&ex->max_ns, dt, memory_order_relaxed);
                    if (dt > p->cfg.budget_ns) {
                        d.flags |= AX_POOL_DONE_OVER_BUDGET;
                        stat_add(&ex->over_budget, 1);
                        report_over_budget(ctx, ex, s->fn, d.id, s->tag, dt);
                    }
                }
            }
            /* Reset: the next item starts from an empty arena, and under
             * ASan a pointer this item kept faults on use. */
            POISON(job.base, job.used);
            if (job.exhausted) {
                d.status = -ENOMEM;
                d.reason = AX_POOL_R_SCRATCH;
                stat_add(&ex->scratch_exhausted, 1);
            } else if (rc < 0) {
                d.status = rc;
                d.reason = AX_POOL_R_FAILED;
                stat_add(&ex->failed, 1);
            } else if (out_len > s->out_cap) {
                d.status = -EOVERFLOW;
                d.reason = AX_POOL_R_OVERFLOW;
                stat_add(&ex->overflow, 1);
            } else {
                d.out_len = (uint32_t)out_len;
                stat_add(&ex->ok, 1);
            }
        }
    }
    /* Everything we need from the slot, before it can be reused. */
    future_t *fut = s->fut;
    ax_ref_t to = s->reply_to;
    uint32_t type = s->reply_type;
    if (s->in_mode == AX_POOL_IN_BLOB)
        ax_blob_free(ctx, (void *)(uintptr_t)s->in);
    if (freed) {
        slot_retire(p, idx, gen);
        *freed = idx;
    } else {
        slot_free(p, idx, gen);
    }
    stat_add(&ex->completed, 1);
    if (fut) {
        if (blob)
            ax_blob_free(ctx, blob);
        future_complete(fut, &d);
        return ran_ns;
    }
    int rc;
    if (blob) {
        if (d.status == 0)
            d.flags |= AX_POOL_DONE_RESULT_BLOB;
        memcpy(blob, &d, sizeof d);
        rc = ax_send_blob(ctx, to, type, blob, sizeof d + (d.status == 0 ? d.out_len : 0));
        if (rc < 0)
            ax_blob_free(ctx, blob);
    } else {
        rc = ax_send(ctx, to, type, &d, sizeof d);
    }
    if (rc < 0)
        stat_add(&ex->lost, 1); /* counted, never silent: see ax_pool_stats */
    return ran_ns;
}

/* Run items from the local queue: about DRAIN_NS worth by the mean item
 * time (one while it is unknown), all of them when all is set.  If some
 * remain, kick ourselves again, so other actors on this worker get their
 * turn in between; if that send fails (arena exhausted, engine stopping),
 * run the rest now rather than strand them without a message.  The freed
 * slots go back to the free queue in one batch at the end (a few us later
 * than one by one: a submitter on another thread meanwhile may see -EAGAIN,
 * as with any slot on its way back; those on this worker cannot run). */
static void drain_local(ax_ctx_t *ctx, executor_t *ex, bool all)
{
    ax_pool_t *p = ex->pool;
    uint32_t freed[DRAIN_MAX], nfreed = 0;
    uint64_t avg = atomic_load_explicit(&ex->avg_ns, memory_order_relaxed);
    uint64_t max = all ? UINT64_MAX : avg ? DRAIN_NS / avg : 1;
    if (max < 1)
        max = 1;
    else if (max > DRAIN_MAX && !all)
        max = DRAIN_MAX;
    for (uint64_t n = 0; ex->lq_head != LQ_NONE; n++) {
        if (n == max) {
            if (ax_send(ctx, ex->ref, MSG_KICK, NULL, 0) == 0) {
                ex->lq_kicked = true;
                break;
            }
            max = UINT64_MAX;
        }
        if (nfreed == DRAIN_MAX) { /* all, or a failed kick */
            fq_push_n(p, freed, nfreed);
            nfreed = 0;
        }
        uint32_t idx = ex->lq_head;
        ex->lq_head = p->slots[idx].next;
        if (ex->lq_head == LQ_NONE)
            ex->lq_tail = LQ_NONE;
        /* An item that ran long ends the drain: the mean is stale. */
        if (run_item(ctx, ex, idx, &freed[nfreed++]) > DRAIN_NS && !all)
            max = n + 1;
    }
    if (nfreed)
        fq_push_n(p, freed, nfreed);
}

static void exec_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    exec_state_t *s = state;
    if (m->type == MSG_KICK) {
        s->ex->lq_kicked = false; /* this was the kick on its way */
        drain_local(ctx, s->ex, false);
    } else if (m->type == MSG_RUN && m->len == sizeof(uint64_t)) {
        uint64_t idx = m->payload.u64[0];
        if (idx < s->ex->pool->queue_len)
            run_item(ctx, s->ex, (uint32_t)idx, NULL);
    } else if (m->type == MSG_STOP) {
        /* The items already queued still run (ax_pool_destroy's promise):
         * the local queue's kick may be behind this message. */
        drain_local(ctx, s->ex, true);
        ax_stop_self(ctx);
    }
}

/* ---- create / destroy --------------------------------------------------------------- */

static int map_scratch(executor_t *ex, size_t len, const ax_plan_t *plan)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t mlen = (len + page - 1) & ~(page - 1);
    void *m = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    ex->scratch = m;
    ex->scratch_len = len; /* items get exactly the configured size */
    ex->node = -1;
    if (plan->pinned && numa_available() >= 0) {
        /* On the executor's node, so an item's memory is node-local. */
        ex->node = (int)plan->workers[ex->worker].numa;
        numa_tonode_memory(m, mlen, ex->node);
    }
    return 0;
}

static int pick_workers(const ax_pool_config_t *c, const ax_plan_t *plan, uint32_t *w, uint32_t *n)
{
    uint32_t nw = plan->nworkers, k = 0;
    switch (c->place) {
    case AX_POOL_PER_WORKER:
        for (uint32_t i = 0; i < nw; i++)
            w[k++] = i;
        break;
    case AX_POOL_PER_NODE:
        for (uint32_t i = 0; i < nw; i++) {
            bool seen = false;
            for (uint32_t j = 0; j < i && !seen; j++)
                seen = plan->workers[j].numa == plan->workers[i].numa;
            if (!seen)
                w[k++] = i;
        }
        break;
    case AX_POOL_ON_WORKERS:
        if (!c->workers || c->nworkers == 0 || c->nworkers > nw) {
            set_error("ax_pool_create: place = AX_POOL_ON_WORKERS needs workers[] with 1..%u "
                      "entries, got %u",
                      nw, c->nworkers);
            return -EINVAL;
        }
        for (uint32_t i = 0; i < c->nworkers; i++) {
            if (c->workers[i] >= nw) {
                set_error("ax_pool_create: workers[%u] = %u, but the engine has workers 0..%u", i,
                          c->workers[i], nw - 1);
                return -EINVAL;
            }
            w[k++] = c->workers[i];
        }
        break;
    default:
        set_error("ax_pool_create: place = %u: expected AX_POOL_PER_WORKER, AX_POOL_PER_NODE or "
                  "AX_POOL_ON_WORKERS",
                  c->place);
        return -EINVAL;
    }
    *n = k;
    return 0;
}

int ax_pool_create(ax_engine_t *eng, const ax_pool_config_t *cfg, ax_pool_t **out)
{
    last_error[0] = 0;
    if (!eng || !cfg || !out) {
        set_error("ax_pool_create: eng, cfg and out must not be NULL");
        return -EINVAL;
    }
    *out = NULL;
    if (cfg->size != sizeof(ax_pool_config_t)) {
        set_error("ax_pool_create: cfg->size is %u, expected %zu: initialise the config with "
                  "AX_POOL_CONFIG_INIT",
                  cfg->size, sizeof(ax_pool_config_t));
        return -EINVAL;
    }
    if (!ax_engine_running(eng)) {
        set_error("ax_pool_create: the engine is not running: create pools after ax_engine_start "
                  "and before ax_engine_stop");
        return -EINVAL;
    }
    ax_pool_config_t c = *cfg;
    if (!c.queue_len)
        c.queue_len = 1024;
    if (!c.scratch_bytes)
        c.scratch_bytes = 64 * 1024;
    if (!c.in_max)
        c.in_max = 64;
    if (c.queue_len > (1u << IDX_BITS) || c.scratch_bytes > (UINT64_C(1) << 30) ||
        c.in_max > 65536) {
        set_error("ax_pool_create: queue_len %u (at most %u), scratch_bytes %llu (at most 1 GiB), "
                  "in_max %u (at most 65536): lower the one that is too large",
                  c.queue_len, 1u << IDX_BITS, (unsigned long long)c.scratch_bytes, c.in_max);
        return -EINVAL;
    }
    c.in_max = (c.in_max + 15) & ~15u; /* keeps every copy 16-byte aligned */
    const ax_plan_t *plan = ax_engine_plan(eng);
    ax_pool_t *p = aligned_alloc(CACHELINE, (sizeof *p + CACHELINE - 1) & ~(size_t)(CACHELINE - 1));
    if (!p)
        return -ENOMEM;
    memset(p, 0, sizeof *p);
    p->eng = eng;
    p->cfg = c;
    p->cfg.workers = NULL; /* not kept: the caller's array */
    p->cfg.name = NULL;    /* nor the caller's string: copied to name */
    if (c.name)
        snprintf(p->name, sizeof p->name, "%s", c.name);
    else
        snprintf(p->name, sizeof p->name, "pool@%p", (void *)p);
    p->queue_len = c.queue_len;
    uint32_t *ws = calloc(plan->nworkers, sizeof *ws);
    int rc = ws ? pick_workers(&c, plan, ws, &p->nexec) : -ENOMEM;
    if (rc < 0)
        goto fail;
    uint64_t cap = 1;
    while (cap < 2 * (uint64_t)c.queue_len) /* see fq_push */
        cap <<= 1;
    p->fq_mask = cap - 1;
    p->ex = aligned_alloc(CACHELINE, sizeof(executor_t) * p->nexec);
    p->nworkers = plan->nworkers;
    p->local = malloc(sizeof *p->local * plan->nworkers);
    p->slots = calloc(c.queue_len, sizeof *p->slots);
    p->inbuf = aligned_alloc(16, (size_t)c.queue_len * c.in_max);
    p->cells = calloc(cap, sizeof *p->cells);
    if (!p->ex || !p->local || !p->slots || !p->inbuf || !p->cells) {
        rc = -ENOMEM;
        goto fail;
    }
    memset(p->ex, 0, sizeof(executor_t) * p->nexec);
    p->nmapped = p->nexec;
    for (uint32_t i = 0; i < plan->nworkers; i++)
        p->local[i] = -1;
    for (uint32_t i = p->nexec; i-- > 0;)
        p->local[ws[i]] = (int32_t)i;
    for (uint64_t i = 0; i < cap; i++)
        atomic_init(&p->cells[i].seq, i);
    for (uint32_t i = 0; i < c.queue_len; i++)
        fq_push(p, i); /* single-threaded here */
    for (uint32_t i = 0; i < p->nexec; i++) {
        p->ex[i].pool = p;
        p->ex[i].worker = ws[i];
        p->ex[i].lq_head = p->ex[i].lq_tail = LQ_NONE;
        if ((rc = map_scratch(&p->ex[i], (size_t)c.scratch_bytes, plan)) < 0) {
            set_error("ax_pool_create: cannot map %llu bytes of scratch for executor %u",
                      (unsigned long long)c.scratch_bytes, i);
            goto fail;
        }
    }
    free(ws);
    ws = NULL;
    /* refs: the creator now, each executor from its init; live: executors
     * that have not stopped (set before any can stop). */
    atomic_store_explicit(&p->refs, 1, memory_order_relaxed);
    atomic_store_explicit(&p->live, p->nexec, memory_order_relaxed);
    uint32_t spawned = 0;
    for (; spawned < p->nexec; spawned++) {
        executor_t *ex = &p->ex[spawned];
        ax_spawn_opts_t o = {.size = sizeof o,
                             .where = AX_ON_WORKER,
                             .worker = ex->worker,
                             .init = exec_init,
                             .fini = exec_fini,
                             .arg = &ex,
                             .arg_len = sizeof ex};
        if ((rc = ax_engine_spawn(eng, exec_behaviour, sizeof(exec_state_t), &o, &ex->ref)) < 0)
            break;
    }
    /* Wait until every spawned executor has run its init: from then on its
     * fini is certain to run (when stopped, or at engine shutdown), so the
     * refs balance.  If the engine stops meanwhile, spawns may be dropped:
     * give up after it stopped (the pool then stays allocated: a leak only
     * on that race, documented in docs/pools.md). */
    uint32_t got;
    /* Acquire: pairs with the release in exec_init. */
    while ((got = atomic_load_explicit(&p->inited, memory_order_acquire)) < spawned) {
        if (!ax_engine_running(eng)) {
            set_error("ax_pool_create: the engine stopped while the executors were starting");
            return -ESHUTDOWN;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        futex_wait(&p->inited, got, &ts);
    }
    if (spawned == p->nexec)
        for (uint32_t i = 0; i < p->nexec; i++)
            if (p->ex[i].ran_on != p->ex[i].worker) {
                /* The local queue is touched without atomics by the
                 * executor and the submitters on its worker: they must
                 * share one thread.  An engine that placed the actor
                 * elsewhere breaks that, so refuse rather than race. */
                set_error("ax_pool_create: executor %u was spawned on worker %u but runs on "
                          "worker %u",
                          i, p->ex[i].worker, p->ex[i].ran_on);
                ax_pool_destroy(p);
                return -EIO;
            }
    if (spawned < p->nexec) { /* stop those that did start, then give up */
        set_error("ax_pool_create: spawning executor %u on worker %u failed: %s", spawned,
                  p->ex[spawned].worker, strerror(-rc));
        atomic_fetch_sub_explicit(&p->live, p->nexec - spawned, memory_order_relaxed);
        p->nexec = spawned;
        ax_pool_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
fail:
    free(ws);
    pool_free(p);
    return rc;
}

void ax_pool_destroy(ax_pool_t *p)
{
    if (!p)
        return;
    atomic_store_explicit(&p->closing, 1, memory_order_relaxed);
    /* STOP follows the items already queued from this thread; a failed send
     * means the engine stops, which runs every executor's fini anyway. */
    for (uint32_t i = 0; i < p->nexec; i++)
        (void)ax_engine_send(p->eng, p->ex[i].ref, MSG_STOP, NULL, 0);
    pool_release(p);
}

/* ---- submit / cancel / wait -------------------------------------------------------------- */

/* Backlog of executor e: items sent to it and not yet completed (both
 * relaxed: a hint, a stale value only makes the choice less good). */
static uint64_t backlog(const executor_t *e)
{
    return atomic_load_explicit(&e->sent, memory_order_relaxed) +
           atomic_load_explicit(&e->sent_local, memory_order_relaxed) -
           atomic_load_explicit(&e->completed, memory_order_relaxed);
}

/* Where an item goes: the executor on the caller's worker unless another
 * has a shorter backlog; from outside threads the shorter of two
 * candidates.  The other candidate comes from the slot index: indices leave
 * the free queue in FIFO order, so idx % n cycles like a round robin
 * without a shared counter (a fetch_add there was 40% of submit's samples
 * in pool/submit_complete).  Keeping tiny items on the submitting worker
 * saves a cross-worker hop and its wake-up each way; the backlog comparison
 * spreads work as soon as the local executor lags. */
static uint32_t pick_executor(ax_ctx_t *ctx, ax_pool_t *p, uint32_t idx, bool *local)
{
    uint32_t n = p->nexec;
    int32_t l = -1;
    if (ctx) {
        uint32_t w = ax_worker_id(ctx);
        l = w < p->nworkers ? p->local[w] : -1;
    }
    uint32_t b = l >= 0 ? (uint32_t)l : (idx + 1) % n;
    /* The local executor takes the item while the wait in its queue
     * (backlog x mean item time) is below what moving the item costs (a
     * cross-worker hop there and back, a wake-up: about 2 us), without a
     * look at the other executor's counters, which live in the other
     * worker's cache.  Tiny items so stay on the submitting worker (2.0 M/s
     * against 0.8 M/s split over two workers in pool/submit_complete); items
     * that take longer spread as soon as one is queued. */
    uint64_t lb = backlog(&p->ex[b]);
    uint64_t avg = atomic_load_explicit(&p->ex[b].avg_ns, memory_order_relaxed);
    uint32_t e;
    if (ctx && avg && avg <= 2000 && lb * avg <= 2000) { /* avg 0: not measured yet */
        e = b; /* the common case for tiny items: no division, no second look */
    } else {
        uint32_t a = idx % n;
        e = a == b || lb <= backlog(&p->ex[a]) ? b : a;
    }
    *local = l >= 0 && e == (uint32_t)l;
    if (*local) /* single writer: this worker (see executor_t) */
        stat_add(&p->ex[e].sent_local, 1);
    else
        atomic_fetch_add_explicit(&p->ex[e].sent, 1, memory_order_relaxed);
    return e;
}

static int submit(ax_ctx_t *ctx, ax_pool_t *p, const ax_pool_item_t *it, ax_ref_t reply_to,
                  uint32_t reply_type, future_t *fut, uint64_t *id)
{
    if (!p || !it || !it->fn || it->in_mode > AX_POOL_IN_BLOB || (it->in_len && !it->in))
        return -EINVAL;
    if (it->in_mode == AX_POOL_IN_COPY && it->in_len > p->cfg.in_max)
        return -EINVAL;
    if (it->out_cap > UINT32_MAX || (!it->out && it->out_cap > AX_POOL_SMALL_MAX &&
                                     it->out_cap > UINT32_MAX - sizeof(ax_pool_done_t)))
        return -EINVAL;
    if (atomic_load_explicit(&p->closing, memory_order_relaxed))
        return -ESHUTDOWN;
    uint32_t idx;
    if (!fq_pop(p, &idx)) {
        atomic_fetch_add_explicit(&p->rejected_full, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    slot_t *s = &p->slots[idx];
    uint64_t gen = atomic_load_explicit(&s->state, memory_order_relaxed) >> 2;
    s->fn = it->fn;
    s->in_len = it->in_len;
    s->in_mode = it->in_mode;
    if (it->in_mode == AX_POOL_IN_COPY) {
        if (it->in_len)
            memcpy(p->inbuf + (size_t)idx * p->cfg.in_max, it->in, it->in_len);
        s->in = NULL;
    } else {
        s->in = it->in;
    }
    s->out = it->out;
    s->out_cap = it->out_cap;
    s->tag = it->tag;
    s->reply_to = reply_to;
    s->reply_type = reply_type;
    s->fut = fut;
    /* Release: a cancel that reads QUEUED reads this generation's id. */
    atomic_store_explicit(&s->state, gen << 2 | ST_QUEUED, memory_order_release);
    bool local;
    uint32_t e = pick_executor(ctx, p, idx, &local);
    executor_t *ex = &p->ex[e];
    int rc = 0;
    if (local) {
        /* Same thread as the executor: append to its local queue, and send
         * one kick for the queue, not a message per item. */
        s->next = LQ_NONE;
        if (!ex->lq_kicked) {
            /* The queue is empty (invariant, executor_t), so a failed kick
             * leaves nothing behind. */
            rc = ax_send(ctx, ex->ref, MSG_KICK, NULL, 0);
            ex->lq_kicked = rc == 0;
        }
        if (rc == 0) {
            if (ex->lq_tail == LQ_NONE)
                ex->lq_head = idx;
            else
                p->slots[ex->lq_tail].next = idx;
            ex->lq_tail = idx;
        } else {
            stat_add(&ex->sent_local, (uint64_t)-1);
        }
    } else {
        uint64_t v = idx;
        /* The send orders the fill above before the executor's reads. */
        rc = ctx ? ax_send(ctx, ex->ref, MSG_RUN, &v, sizeof v)
                 : ax_engine_send(p->eng, ex->ref, MSG_RUN, &v, sizeof v);
        if (rc < 0)
            atomic_fetch_sub_explicit(&ex->sent, 1, memory_order_relaxed);
    }
    if (rc < 0) {
        /* Not sent: nobody else knows the id yet (we have not returned it),
         * but a cancel guessing it may have flipped QUEUED: either way the
         * slot is ours to free. */
        slot_free(p, idx, gen);
        return rc;
    }
    if (id)
        *id = (gen << IDX_BITS) | idx;
    return 0;
}

int ax_pool_submit(ax_ctx_t *ctx, ax_pool_t *p, const ax_pool_item_t *it, uint32_t reply_type,
                   uint64_t *id)
{
    if (!ctx || reply_type >= AX_TYPE_SYSTEM || ax_self(ctx) == AX_REF_NONE)
        return -EINVAL;
    return submit(ctx, p, it, ax_self(ctx), reply_type, NULL, id);
}

int ax_pool_submit_future(ax_pool_t *p, const ax_pool_item_t *it, ax_pool_future_t *pf, uint64_t *id)
{
    if (!pf || !it || it->in_mode == AX_POOL_IN_BLOB || (!it->out && it->out_cap > AX_POOL_SMALL_MAX))
        return -EINVAL;
    future_t *f = (future_t *)(void *)pf;
    memset(f, 0, sizeof *f);
    atomic_init(&f->state, 0);
    return submit(NULL, p, it, AX_REF_NONE, 0, f, id);
}

int ax_pool_future_wait(ax_pool_future_t *pf, int64_t timeout_ns, ax_pool_done_t *done)
{
    if (!pf)
        return -EINVAL;
    future_t *f = (future_t *)(void *)pf;
    uint64_t deadline = timeout_ns >= 0 ? now_ns() + (uint64_t)timeout_ns : 0;
    for (;;) {
        /* A1: pairs with R1 in future_complete. */
        uint32_t st = atomic_load_explicit(&f->state, memory_order_acquire);
        if (st == 1) {
            if (done)
                *done = f->done;
            return 0;
        }
        struct timespec ts, *tp = NULL;
        if (timeout_ns >= 0) {
            uint64_t now = now_ns();
            if (now >= deadline)
                return -ETIMEDOUT;
            uint64_t left = deadline - now;
            ts.tv_sec = (time_t)(left / 1000000000u);
            ts.tv_nsec = (long)(left % 1000000000u);
            tp = &ts;
        }
        if (st == 0 && !atomic_compare_exchange_strong_explicit(&f->state, &st, 2, memory_order_acquire,
                                                                memory_order_acquire))
            continue; /* completed meanwhile: st is 1 now */
        futex_wait(&f->state, 2, tp);
    }
}

int ax_pool_cancel(ax_pool_t *p, uint64_t id)
{
    if (!p)
        return -EINVAL;
    uint32_t idx = (uint32_t)(id & ((1u << IDX_BITS) - 1));
    if (idx >= p->queue_len)
        return -EINVAL;
    uint64_t want = ((id >> IDX_BITS) & GEN_MASK) << 2 | ST_QUEUED;
    /* acq_rel: pairs with the executor's CAS in run_item: one wins. */
    if (atomic_compare_exchange_strong_explicit(&p->slots[idx].state, &want,
                                                (want & ~(uint64_t)3) | ST_CANCELLED,
                                                memory_order_acq_rel, memory_order_relaxed))
        return 0;
    return -EBUSY;
}

int ax_pool_stats(const ax_pool_t *p, ax_pool_stats_t *o)
{
    if (!p || !o)
        return -EINVAL;
    memset(o, 0, sizeof *o);
    o->executors = p->nexec;
    o->queue_len = p->queue_len;
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    for (uint32_t i = 0; i < p->nexec; i++) {
        const executor_t *ex = &p->ex[i];
        o->completed += LD(ex->completed);
        o->ok += LD(ex->ok);
        o->failed += LD(ex->failed);
        o->scratch_exhausted += LD(ex->scratch_exhausted);
        o->cancelled += LD(ex->cancelled);
        o->overflow += LD(ex->overflow);
        o->nomem += LD(ex->nomem);
        o->over_budget += LD(ex->over_budget);
        o->over_budget_reported += LD(ex->budget_reported);
        o->completion_lost += LD(ex->lost);
        o->dropped_at_stop += LD(ex->dropped);
        if (LD(ex->max_ns) > o->max_item_ns)
            o->max_item_ns = LD(ex->max_ns);
    }
    o->rejected_full = LD(p->rejected_full);
    /* Free slots = tail - head of the free queue; the rest are in flight. */
    uint64_t head = LD(p->fq_head), tail = LD(p->fq_tail);
    uint64_t free_n = tail >= head ? tail - head : 0;
    o->in_flight = free_n >= p->queue_len ? 0 : p->queue_len - free_n;
#undef LD
    return 0;
}
