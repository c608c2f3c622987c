/* axon/pool.h - work pools: items run to completion on executor actors,
 * each with a fixed scratch arena on its NUMA node.
 *
 * A pool is N executors (actors): one per worker by default, one per NUMA
 * node, or on listed workers.  An item is a function, its input, and where
 * its result goes.  Submit from a behaviour (the completion arrives as a
 * message to the submitting actor) or from any thread (the completion fills
 * a future the thread can wait on with a timeout).  The queue is bounded: a
 * full pool answers -EAGAIN at once, so a behaviour never waits.
 *
 * Each executor owns a scratch arena of cfg.scratch_bytes on its node,
 * reset after every item: an item sees nothing of another item's memory,
 * and a failed item leaves nothing behind.  An allocation that does not fit
 * returns NULL and the item fails (AX_POOL_R_SCRATCH), whatever it returns.
 *
 * Every submitted item gets exactly one completion: done, failed, cancelled
 * while queued, or (futures only) dropped because the engine stopped.
 *
 * Who may call what: [behaviour] from inside a behaviour with its ctx;
 * [any] any thread.  Errors are negative errnos; a failed call did nothing.
 * lib/ is a layer above the engine: it uses only axon/axon.h.
 */
#ifndef AXON_POOL_H
#define AXON_POOL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "axon/axon.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ax_pool ax_pool_t;         /* opaque */
typedef struct ax_pool_job ax_pool_job_t; /* the running item (scratch arena) */

/* An item: run on an executor's worker, outside any behaviour of the caller.
 * Writes at most out_cap bytes at out and sets *out_len (0 if it sets
 * nothing).  Returns 0 or a negative errno (the item failed: its result is
 * reported as AX_POOL_R_FAILED with that status).  It must not block for
 * long: it occupies a worker (time it against cfg.budget_ns). */
typedef int (*ax_pool_fn)(ax_pool_job_t *job, const void *in, size_t in_len, void *out,
                          size_t out_cap, size_t *out_len);

/* Scratch memory for the running item, 16-byte aligned, valid until the
 * item returns.  NULL when the executor's arena is exhausted: the item then
 * fails with -ENOMEM, reason AX_POOL_R_SCRATCH. [inside an ax_pool_fn] */
AX_API void *ax_pool_alloc(ax_pool_job_t *job, size_t len);
/* The worker the item runs on. [inside an ax_pool_fn] */
AX_API uint32_t ax_pool_job_worker(const ax_pool_job_t *job);

/* Where executors go (ax_pool_config_t.place). */
enum ax_pool_place {
    AX_POOL_PER_WORKER = 0, /* one executor on every worker (default) */
    AX_POOL_PER_NODE = 1,   /* one on the first worker of each NUMA node */
    AX_POOL_ON_WORKERS = 2, /* one on each of cfg.workers[0..nworkers) */
};

typedef struct ax_pool_config {
    uint32_t size;           /* sizeof(ax_pool_config_t): use AX_POOL_CONFIG_INIT */
    uint32_t place;          /* enum ax_pool_place */
    const uint32_t *workers; /* AX_POOL_ON_WORKERS: worker ids (copied) */
    uint32_t nworkers;
    uint32_t queue_len;      /* items submitted and not yet completed, pool-wide;
                                0: 1024; at most 1 << 24 */
    uint64_t scratch_bytes;  /* per executor; 0: 64 KiB; at most 1 GiB */
    uint32_t in_max;         /* bytes of input copied per item (AX_POOL_IN_COPY);
                                0: 64; at most 64 KiB */
    uint32_t pad_;
    uint64_t budget_ns;      /* per-item time budget; 0: none.  An item that
                                overruns it completes normally, flagged
                                AX_POOL_DONE_OVER_BUDGET, counts in stats, and
                                is reported through the engine's watchdog when
                                the engine has one (ax_watchdog_report) */
    const char *name;        /* names the pool in watchdog reports (copied, up
                                to 47 bytes); NULL: "pool@<address>" */
} ax_pool_config_t;
#define AX_POOL_CONFIG_INIT {sizeof(ax_pool_config_t), 0, NULL, 0, 0, 0, 0, 0, 0, NULL}

/* How an item's input travels (ax_pool_item_t.in_mode). */
enum ax_pool_in_mode {
    AX_POOL_IN_COPY = 0, /* in_len <= cfg.in_max bytes, copied at submit */
    AX_POOL_IN_REF = 1,  /* the caller keeps in valid until the completion */
    AX_POOL_IN_BLOB = 2, /* in is a blob from ax_blob_alloc: on success the pool
                            owns it and frees it after the item ([behaviour] only) */
};

/* Results up to this size can come back inside the completion. */
#define AX_POOL_SMALL_MAX 8u

typedef struct ax_pool_item {
    ax_pool_fn fn;
    const void *in;
    size_t in_len;
    uint32_t in_mode; /* enum ax_pool_in_mode */
    uint32_t pad_;
    /* The result: out != NULL: the caller's buffer of out_cap bytes, valid
     * until the completion (the executor writes it; the completion orders
     * the writes before the caller's reads).  out == NULL and out_cap <=
     * AX_POOL_SMALL_MAX: returned in ax_pool_done_t.small.  out == NULL and
     * out_cap larger: returned in a blob with the completion ([behaviour]
     * submitters only; see ax_pool_done_result). */
    void *out;
    size_t out_cap;
    uint64_t tag; /* the caller's, returned in the completion */
} ax_pool_item_t;

/* Why an item completed the way it did (ax_pool_done_t.reason). */
enum ax_pool_reason {
    AX_POOL_R_OK = 0,        /* status 0 */
    AX_POOL_R_FAILED = 1,    /* the function returned status < 0 */
    AX_POOL_R_SCRATCH = 2,   /* scratch arena exhausted: status -ENOMEM */
    AX_POOL_R_CANCELLED = 3, /* cancelled while queued: status -ECANCELED */
    AX_POOL_R_NOMEM = 4,     /* no memory for the result blob: status -ENOMEM */
    AX_POOL_R_OVERFLOW = 5,  /* the function set *out_len > out_cap: -EOVERFLOW */
    AX_POOL_R_SHUTDOWN = 6,  /* the engine stopped first: status -ESHUTDOWN */
};
#define AX_POOL_DONE_OVER_BUDGET 0x1u /* ran longer than cfg.budget_ns */
#define AX_POOL_DONE_RESULT_BLOB 0x2u /* the result follows in the message's blob */

/* A completion: the payload of the message sent to the submitting actor
 * (type = the reply_type given at submit), and what a future holds. */
typedef struct ax_pool_done {
    uint64_t id;      /* from submit */
    uint64_t tag;     /* ax_pool_item_t.tag */
    int32_t status;   /* 0 or a negative errno, see reason */
    uint16_t reason;  /* enum ax_pool_reason */
    uint16_t flags;   /* AX_POOL_DONE_* */
    uint32_t out_len; /* result bytes written */
    uint32_t worker;  /* the executor's worker (UINT32_MAX: never ran) */
    unsigned char small[AX_POOL_SMALL_MAX]; /* result when out == NULL, out_cap <= 8 */
} ax_pool_done_t;
#ifndef __cplusplus
_Static_assert(sizeof(ax_pool_done_t) == AX_INLINE_MAX, "a completion fits a message inline");
#endif

/* Read a completion message.  0, or -EINVAL if msg is not one. [behaviour] */
static inline int ax_pool_done_get(const ax_msg_t *msg, ax_pool_done_t *out)
{
    if (ax_msg_len(msg) < sizeof *out)
        return -EINVAL;
    memcpy(out, ax_msg_data(msg), sizeof *out);
    return 0;
}
/* The result of a completion flagged AX_POOL_DONE_RESULT_BLOB (done.out_len
 * bytes), valid while the message is (or keep its blob); else NULL. */
static inline const void *ax_pool_done_result(const ax_msg_t *msg)
{
    const unsigned char *p = (const unsigned char *)ax_msg_data(msg);
    ax_pool_done_t d;
    if (ax_pool_done_get(msg, &d) < 0 || !(d.flags & AX_POOL_DONE_RESULT_BLOB))
        return NULL;
    return p + sizeof d;
}

/* A future: storage owned by the outside thread that submits with it; it
 * must stay valid until the completion has arrived (wait returned 0), also
 * after a wait timed out.  Layout private. */
typedef struct ax_pool_future {
    uint64_t opaque_[8];
} ax_pool_future_t;

/* Create a pool on a started engine: maps the executors' scratch arenas
 * (on their nodes), spawns the executors and waits until each has started.
 * [a thread outside the engine]  0, -EINVAL (bad config, or the engine is
 * not started: the reason is in ax_pool_last_error()), -ENOMEM,
 * -ESHUTDOWN (the engine is stopping), or the error of ax_engine_spawn. */
AX_API int ax_pool_create(ax_engine_t *eng, const ax_pool_config_t *cfg, ax_pool_t **out);
/* Why the last ax_pool_create in this thread failed. [any] */
AX_API const char *ax_pool_last_error(void);
/* Stop the executors after the items already queued (those still run and
 * complete) and free the pool once the last executor has stopped (now, if
 * the engine has stopped already).  No submit may race with destroy; call it
 * before ax_engine_destroy or after ax_engine_wait.  NULL: does nothing.
 * [any] */
AX_API void ax_pool_destroy(ax_pool_t *pool);

/* Submit an item; its completion arrives at the calling actor as a message
 * of type reply_type (< AX_TYPE_SYSTEM) whose payload is an ax_pool_done_t.
 * *id (may be NULL) names the item for ax_pool_cancel.  [behaviour]
 * 0, -EAGAIN (queue_len items in flight: the pool is full; rarely also
 * while a slot is on its way back: retry on a completion, or by a message
 * to yourself if none of yours is in flight), -EINVAL (bad
 * item: NULL fn, input larger than in_max, bad mode), -ESHUTDOWN (pool
 * destroyed or engine stopping), or the error of ax_send. */
AX_API int ax_pool_submit(ax_ctx_t *ctx, ax_pool_t *pool, const ax_pool_item_t *item,
                          uint32_t reply_type, uint64_t *id);
/* Submit from a thread outside the engine; the completion fills fut
 * (initialised here).  A blob result (out == NULL, out_cap > 8) and
 * AX_POOL_IN_BLOB are refused (-EINVAL).  [any]  Errors as ax_pool_submit. */
AX_API int ax_pool_submit_future(ax_pool_t *pool, const ax_pool_item_t *item,
                                 ax_pool_future_t *fut, uint64_t *id);
/* Wait up to timeout_ns (< 0: forever) for fut's completion and copy it to
 * *done.  0, or -ETIMEDOUT (fut stays armed: wait again).  [any] */
AX_API int ax_pool_future_wait(ax_pool_future_t *fut, int64_t timeout_ns, ax_pool_done_t *done);

/* Cancel a queued item.  0: it will not run, and its completion (reason
 * AX_POOL_R_CANCELLED, status -ECANCELED) is still delivered, once;
 * -EBUSY: it already runs or has completed; -EINVAL: bad pool or id. [any] */
AX_API int ax_pool_cancel(ax_pool_t *pool, uint64_t id);

typedef struct ax_pool_stats {
    uint32_t executors;
    uint32_t queue_len;          /* the bound */
    uint64_t in_flight;          /* submitted, not yet completed (approximate) */
    uint64_t completed;          /* completions delivered, of any kind */
    uint64_t ok, failed, scratch_exhausted, cancelled, overflow, nomem;
    uint64_t rejected_full;      /* submits answered -EAGAIN */
    uint64_t over_budget;        /* items that ran longer than budget_ns */
    uint64_t over_budget_reported; /* of those, reported through the engine's
                                    watchdog (0 when it has none; fewer when
                                    its per-worker box was full) */
    uint64_t max_item_ns;        /* longest item seen (only timed with a budget) */
    uint64_t completion_lost;    /* a completion message could not be sent
                                    (ax_send failed: arena exhausted or the
                                    engine stopping); never silent */
    uint64_t dropped_at_stop;    /* queued when the engine stopped */
} ax_pool_stats_t;
/* Counters, read without stopping anything. [any] 0 or -EINVAL. */
AX_API int ax_pool_stats(const ax_pool_t *pool, ax_pool_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* AXON_POOL_H */
