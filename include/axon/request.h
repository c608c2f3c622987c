/* axon/request.h - conversations: request/reply with timeouts, stash, and
 * calls from threads outside the engine.
 *
 * A request is an ordinary message that also carries a correlation id (the
 * engine keeps it in the message; behaviours never see it).  The asker gives
 * a continuation - a function and a small context the engine copies into the
 * asking worker's arena - and the engine runs it exactly once, on the
 * asker's worker, as the asker (ax_self is the asker, its state is passed):
 *   status 0           with the reply message,
 *   -ETIMEDOUT         the timeout passed first,
 *   -ESRCH             the target had stopped (or stopped with the request
 *                      still queued, or stashed; or stopped while holding
 *                      it, when the request watches its target: always
 *                      without a timeout, with one under ax_request_watch),
 *   -ECANCELED         the asker itself stopped first (the continuation runs
 *                      before the asker's fini; sends from it fail),
 *   another -errno     the replier answered with ax_reply_error().
 * A reply that arrives after its request completed (timed out, say) is
 * counted (ax_conv_stats_t.late_replies) and dropped: ids are 64-bit and
 * never reused, so it can never reach another continuation.
 *
 * The target replies with ax_reply() while it handles the request, or keeps
 * the request's ax_req_t and answers later with ax_reply_to(), from any
 * worker; ax_forward() passes a request on so a third actor answers it (its
 * ax_sender() is then the original asker).
 *
 * Threading: [behaviour] unless marked [any].  Request payloads: at most
 * AX_REQUEST_INLINE_MAX bytes inline (the id takes the last word), or a blob.
 */
#ifndef AXON_REQUEST_H
#define AXON_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "axon/axon.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Inline bytes of a request or a reply (the correlation id uses the rest). */
#define AX_REQUEST_INLINE_MAX 32u
/* Bytes of continuation context copied per request (16 live in the request's
 * record; more come from the worker's arena). */
#define AX_REQUEST_CTX_MAX 256u
/* Longest timeout: 30 days (ms).  0 means none: the request then monitors
 * its target, so a reply, the target's stop (even while it holds the
 * request) or the asker's stop completes it. */
#define AX_TIMEOUT_MAX_MS (30ull * 24 * 3600 * 1000)

/* The continuation.  cont: the context copied at ax_request (NULL if none),
 * valid until it returns.  reply: the reply (status 0) or NULL. */
typedef void (*ax_cont_fn)(ax_ctx_t *ctx, void *state, void *cont, int status,
                           const ax_msg_t *reply);

/* Who asked, and which request: enough to reply from anywhere, later. */
typedef struct ax_req {
    ax_ref_t asker; /* AX_REF_NONE for a thread outside the engine */
    uint64_t id;    /* 0: not a request */
} ax_req_t;

/* Is m a request (one that expects a reply)? */
static inline int ax_msg_is_request(const ax_msg_t *m)
{
    return m && (m->flags & AX_MSG_F_REQUEST) != 0;
}
/* The request m carries ({0, 0} if m is not one). */
static inline ax_req_t ax_request_of(const ax_msg_t *m)
{
    ax_req_t r = {AX_REF_NONE, 0};
    if (ax_msg_is_request(m)) {
        r.asker = m->from;
        r.id = m->payload.u64[AX_INLINE_MAX / 8 - 1];
    }
    return r;
}

/* Ask `to` (len <= AX_REQUEST_INLINE_MAX bytes copied) and run fn when the
 * request completes.  cont/cont_len (<= AX_REQUEST_CTX_MAX) is copied.
 * timeout_ms: 0 none, else 1..AX_TIMEOUT_MAX_MS.  Without a timeout the
 * request monitors its target (as ax_request_watch does) so that it always
 * ends: a target that stops, fails or is killed while holding it completes
 * it with -ESRCH.  That costs a monitor message before the request, a
 * demonitor message after it completes and 64 bytes of arena while it is
 * pending; its DOWN never reaches the asker's behaviour.  A request with a
 * timeout pays none of it (it ends at the timeout) unless watching is on.
 * A dormant restartable target (axon/failure.h) holds the request for its
 * next incarnation, which is not watched: only a reply, its drop (-ESRCH)
 * or a timeout ends it then. 
 * 0, -EINVAL, -ENOMEM, -ESHUTDOWN, -EDQUOT (the monitor message: sponsor
 * budget); on error nothing was sent and fn will not run.  A stale `to` is
 * not an error: fn runs with -ESRCH. */
AX_API int ax_request(ax_ctx_t *ctx, ax_ref_t to, uint32_t type, const void *buf, size_t len,
                      uint64_t timeout_ms, ax_cont_fn fn, const void *cont, size_t cont_len);
/* Same with a blob payload (ownership as ax_send_blob). */
AX_API int ax_request_blob(ax_ctx_t *ctx, ax_ref_t to, uint32_t type, void *blob, size_t len,
                           uint64_t timeout_ms, ax_cont_fn fn, const void *cont,
                           size_t cont_len);

/* From now on (on: true) the running actor's requests with a timeout also
 * monitor their target (axon/failure.h), so a target that stops while it
 * holds one completes it with -ESRCH at once, without waiting for the
 * timeout.  Costs a monitor and a demonitor message per request; off by
 * default.  (Requests without a timeout always monitor their target.)
 * 0, -EINVAL, -ENOMEM. */
AX_API int ax_request_watch(ax_ctx_t *ctx, bool on);

/* Reply to the request being handled: len <= AX_REQUEST_INLINE_MAX.
 * 0, -EINVAL (the current message is not a request, bad type/len), -ENOMEM,
 * -ESHUTDOWN.  Replying twice is allowed: the second is a late reply. */
AX_API int ax_reply(ax_ctx_t *ctx, uint32_t type, const void *buf, size_t len);
/* Reply to a request kept from earlier (any worker, any actor). */
AX_API int ax_reply_to(ax_ctx_t *ctx, ax_req_t req, uint32_t type, const void *buf, size_t len);
AX_API int ax_reply_blob_to(ax_ctx_t *ctx, ax_req_t req, uint32_t type, void *blob, size_t len);
/* Complete the request with a negative errno instead of a message (the
 * continuation sees that status; an outside caller gets it returned). */
AX_API int ax_reply_error(ax_ctx_t *ctx, ax_req_t req, int status);
/* Pass a request on: `to` receives a request whose reply (from ax_reply
 * there) goes straight to the original asker.  -EXDEV: the asker is a
 * thread outside the engine and `to` an actor of another cluster node. */
AX_API int ax_forward(ax_ctx_t *ctx, ax_ref_t to, ax_req_t req, uint32_t type, const void *buf,
                      size_t len);

/* ---- stash ------------------------------------------------------------------ */

/* Default bound of an actor's stash (messages). */
#define AX_STASH_DEFAULT 64u
#define AX_STASH_MAX 65536u
/* Set the current message aside (its blob, if any, is kept with it; a
 * request stays answerable).  0, -EINVAL (not in a behaviour, or the
 * message is a reply), -ENOBUFS (stash full: counted), -ENOMEM. */
AX_API int ax_stash(ax_ctx_t *ctx);
/* Take every stashed message back: after this behaviour returns, they are
 * handled again, in the order stashed, before any other message to this
 * actor.  Usually called right after ax_become.  0 or -EINVAL. */
AX_API int ax_unstash_all(ax_ctx_t *ctx);
/* Change the running actor's stash bound (1..AX_STASH_MAX); before its
 * first ax_stash, or when the stash is empty.  0, -EINVAL, -EBUSY. */
AX_API int ax_stash_limit(ax_ctx_t *ctx, uint32_t max);
/* Messages in the running actor's stash. */
AX_API uint32_t ax_stash_count(ax_ctx_t *ctx);

/* ---- calls from threads outside the engine ---------------------------------- */

typedef struct ax_future ax_future_t;

/* Send a request from any thread; the reply completes *out.  timeout_ms as
 * for ax_request (0: none; the request then monitors its target, so a
 * target that stops, fails or is killed while holding it completes the
 * future with -ESRCH: one more message before the request and one after
 * the reply or ax_future_free).  0, -EINVAL, -ENOMEM, -ESHUTDOWN, -EXDEV
 * (to is an actor of another cluster node: ask it through a local actor's
 * ax_request; docs/cluster.md).  [any] */
AX_API int ax_engine_request(ax_engine_t *eng, ax_ref_t to, uint32_t type, const void *buf,
                             size_t len, uint64_t timeout_ms, ax_future_t **out);
/* 0 when complete, -EAGAIN while pending.  [any] */
AX_API int ax_future_poll(ax_future_t *f);
/* Wait up to wait_ms (UINT64_MAX: until complete).  0 when complete,
 * -EAGAIN if the wait ended first.  [any] */
AX_API int ax_future_wait(ax_future_t *f, uint64_t wait_ms);
/* The outcome of a complete future: 0 (a reply: its type, bytes copied up
 * to cap into buf, full length in *len), -ETIMEDOUT, -ESRCH, -ESHUTDOWN, an
 * error from ax_reply_error, -EAGAIN (not complete), or -EMSGSIZE (the
 * reply is longer than cap: *len says how long).  Pointers may be NULL. */
AX_API int ax_future_result(const ax_future_t *f, uint32_t *type, void *buf, size_t cap,
                            size_t *len);
/* Free a future, complete or not: a reply that comes later is counted and
 * dropped.  NULL: nothing.  Free every future before ax_engine_destroy.  [any] */
AX_API void ax_future_free(ax_future_t *f);
/* Request, wait, copy the reply, free: gen_server:call for C.  Returns as
 * ax_future_result (-ETIMEDOUT after timeout_ms, which must be > 0).  [any] */
AX_API int ax_engine_call(ax_engine_t *eng, ax_ref_t to, uint32_t type, const void *buf,
                          size_t len, uint64_t timeout_ms, uint32_t *reply_type, void *reply,
                          size_t cap, size_t *reply_len);

/* ---- counters ----------------------------------------------------------------- */

typedef struct ax_conv_stats {
    uint64_t requests;       /* ax_request/ax_request_blob sent by actors */
    uint64_t replies;        /* continuations run with a reply (status 0 or error reply) */
    uint64_t timeouts;       /* continuations run with -ETIMEDOUT */
    uint64_t target_gone;    /* continuations run with -ESRCH */
    uint64_t cancelled;      /* continuations run with -ECANCELED (asker stopped) */
    uint64_t late_replies;   /* replies to completed requests: dropped */
    uint64_t pending;        /* requests waiting for their completion now */
    uint64_t stashed;        /* ax_stash successes */
    uint64_t stash_full;     /* ax_stash refused: -ENOBUFS */
    uint64_t stash_dropped;  /* stashed messages freed when their actor stopped */
    uint64_t outside_calls;  /* ax_engine_request calls */
    uint64_t outside_late;   /* replies to outside futures already freed or timed out */
} ax_conv_stats_t;
/* Summed over workers (pending: an instant's view).  [any] */
AX_API void ax_engine_conv_stats(const ax_engine_t *eng, ax_conv_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* AXON_REQUEST_H */
