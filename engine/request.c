/* engine/request.c - conversations (axon/request.h): requests with timeouts
 * and continuations, replies, forwarding, the stash, and requests from
 * threads outside the engine.
 *
 * Why in the engine: the reply path must find its continuation and the
 * timeout must cancel it, both on the asker's worker, and a request that
 * cannot be delivered (dead letter, stopped target, shutdown) must complete
 * its asker.  Actors that never ask cost nothing: dispatch tests one more
 * header bit (AX_MSG_F_REPLY) in the word it already reads, and the
 * after-behaviour test covers stop and unstash in one flag test.
 *
 * Correlation.  Each worker keeps a table of pending requests (records).  A
 * request id is (generation << 24 | record index), the generation a 40-bit
 * counter per record bumped on every reuse, so an id is never reused while a
 * late reply can plausibly arrive (2^40 reuses of one record).  The id rides
 * in the last payload word of the request and of its reply; the reply is
 * addressed to the asker, so it arrives on the asker's worker, where the
 * record is looked up by index and compared by id.  A reply whose record is
 * gone (completed, timed out, asker stopped) is a late reply: counted,
 * dropped.
 *
 * Exactly once.  A record is freed by whichever comes first: the reply, the
 * timeout message (the timer posts AX_SYS_REQ_TIMEOUT to the asker, so the
 * continuation never runs inside timer expiry), an -ESRCH reply sent back by
 * the worker that found the request undeliverable, or the asker's stop
 * (-ECANCELED).  Every later one finds no record with its id and does
 * nothing (a reply counts as late).
 *
 * Threading: records, stashes and per-actor state belong to one worker and
 * are touched only on its thread.  The outside-call registry (struct
 * ax_calls) is shared by outside threads and workers and guarded by one
 * mutex: outside calls are a cold path, correctness first.
 * Memory: record tables, stash buffers and large contexts come from the
 * worker's arena (jemalloc on its node beyond 4 KiB) and are freed at the
 * actor's stop or the worker's shutdown; futures are malloc'ed by the
 * calling thread and freed by ax_future_free.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "axon/failure.h"
#include "axon/request.h"
#include "engine/engine_internal.h"
#include "io/timer.h"

#define REQ_IDX_BITS 24u
#define REQ_IDX_MASK ((1u << REQ_IDX_BITS) - 1)
#define REQ_GEN_MASK ((1ull << 40) - 1)
#define CONT_INLINE 16u

typedef struct pend {
    uint64_t id;        /* 0: free */
    ax_ref_t asker;
    ax_cont_fn fn;
    uint64_t timer;     /* AX_TIMER_NONE: no timeout armed */
    void *big;          /* context longer than CONT_INLINE */
    uint32_t next_free; /* index + 1 on the free list */
    uint32_t cont_len;
    unsigned char cont[CONT_INLINE];
    uint64_t gen;       /* bumped on every reuse; the id's high bits */
    uint64_t mon;       /* monitor on the target (ax_request_watch), 0: none */
} pend_t;

/* Conversation state of one actor (AX_ACTOR_CONV). */
typedef struct conv_actor {
    uint32_t npending; /* records whose asker is this actor */
    uint32_t limit;    /* stash bound */
    uint32_t cap;      /* stash buffer slots (== limit once allocated) */
    uint32_t head, count;
    bool closing; /* its stop is cancelling its requests: it may not ask */
    bool watch;   /* ax_request_watch: monitor each request's target */
    ax_msg_t *buf;
} conv_actor_t;

struct ax_conv {
    pend_t *p;
    uint32_t cap, free_head, live;
    conv_actor_t **by_slot;
    uint32_t by_cap;
    struct {
        _Atomic uint64_t requests, replies, timeouts, gone, cancelled, late, pending, stashed,
            stash_full, stash_dropped;
    } st;
};

/* ---- memory ---------------------------------------------------------------------- */

static void *w_alloc(ax_worker_t *w, size_t bytes)
{
    if (bytes <= AX_ARENA_MAX_CLASS)
        return ax_arena_alloc(w->arena, bytes);
    return ax_large_alloc(w->eng->plan->pinned ? (int)w->eng->plan->workers[w->id].numa : -1,
                          bytes);
}

static void w_free(ax_worker_t *w, void *p, size_t bytes)
{
    if (!p)
        return;
    if (bytes <= AX_ARENA_MAX_CLASS)
        ax_arena_free(w->arena, p);
    else
        ax_large_free(p, bytes);
}

/* ---- per-actor state ---------------------------------------------------------------- */

static conv_actor_t *conv_actor(ax_worker_t *w, uint32_t slot)
{
    struct ax_conv *c = w->conv;
    return slot < c->by_cap ? c->by_slot[slot] : NULL;
}

/* The running actor's conversation state, created on first use. */
static conv_actor_t *conv_actor_get(ax_worker_t *w, ax_actor_t *a)
{
    struct ax_conv *c = w->conv;
    if (a->flags & AX_ACTOR_CONV)
        return c->by_slot[ax__actor_slot(a)];
    if (ax__actor_slot(a) >= c->by_cap) {
        uint32_t ncap = c->by_cap ? c->by_cap : 64;
        while (ncap <= ax__actor_slot(a))
            ncap *= 2;
        conv_actor_t **nb = w_alloc(w, (size_t)ncap * sizeof *nb);
        if (!nb)
            return NULL;
        memset(nb, 0, (size_t)ncap * sizeof *nb);
        if (c->by_cap)
            memcpy(nb, c->by_slot, (size_t)c->by_cap * sizeof *nb);
        w_free(w, c->by_slot, (size_t)c->by_cap * sizeof *nb);
        c->by_slot = nb;
        c->by_cap = ncap;
    }
    conv_actor_t *ca = w_alloc(w, sizeof *ca);
    if (!ca)
        return NULL;
    memset(ca, 0, sizeof *ca);
    ca->limit = AX_STASH_DEFAULT;
    c->by_slot[ax__actor_slot(a)] = ca;
    a->flags |= AX_ACTOR_CONV;
    return ca;
}

/* ---- pending records -------------------------------------------------------------------- */

static pend_t *pend_alloc(ax_worker_t *w)
{
    struct ax_conv *c = w->conv;
    if (!c->free_head) {
        uint32_t ncap = c->cap ? c->cap * 2 : 64;
        if (ncap > (1u << REQ_IDX_BITS))
            return NULL;
        pend_t *np = w_alloc(w, (size_t)ncap * sizeof *np);
        if (!np)
            return NULL;
        memset(np, 0, (size_t)ncap * sizeof *np);
        if (c->cap)
            memcpy(np, c->p, (size_t)c->cap * sizeof *np);
        w_free(w, c->p, (size_t)c->cap * sizeof *np);
        for (uint32_t i = ncap; i-- > c->cap;) {
            np[i].next_free = c->free_head;
            c->free_head = i + 1;
        }
        c->p = np;
        c->cap = ncap;
    }
    uint32_t idx = c->free_head - 1;
    pend_t *r = &c->p[idx];
    c->free_head = r->next_free;
    r->gen = (r->gen + 1) & REQ_GEN_MASK;
    if (!r->gen)
        r->gen = 1; /* id 0 means "not a request" */
    r->id = (r->gen << REQ_IDX_BITS) | idx;
    c->live++;
    AX_STAT_INC(c->st.pending);
    return r;
}

static void pend_release(ax_worker_t *w, pend_t *r)
{
    struct ax_conv *c = w->conv;
    uint32_t idx = (uint32_t)(r->id & REQ_IDX_MASK);
    r->id = 0;
    r->fn = NULL;
    r->next_free = c->free_head;
    c->free_head = idx + 1;
    c->live--;
    AX_STAT_ADD(c->st.pending, -1);
}

static pend_t *pend_find(ax_worker_t *w, uint64_t id)
{
    struct ax_conv *c = w->conv;
    uint32_t idx = (uint32_t)(id & REQ_IDX_MASK);
    if (!id || idx >= c->cap || c->p[idx].id != id)
        return NULL;
    return &c->p[idx];
}

/* Run r's continuation once, as its asker, then free r.  Called with no
 * actor running (from dispatch), or (cancel) from the asker's stop. */
static void complete(ax_worker_t *w, pend_t *r, int status, const ax_msg_t *reply,
                     _Atomic uint64_t *counter, bool stopping)
{
    ax_ref_t asker = r->asker;
    ax_cont_fn fn = r->fn;
    uint32_t slot = ax__ref_slot(asker), len = r->cont_len;
    unsigned char inl[CONT_INLINE];
    void *big = r->big, *cont = NULL;
    uint64_t mon = r->mon;
    r->mon = 0;
    if (r->timer != AX_TIMER_NONE && w->timers)
        ax_timers_cancel(w->timers, r->timer); /* -ENOENT if it fired: its message finds no id */
    if (len && !big) {
        memcpy(inl, r->cont, len);
        cont = inl;
    } else if (big) {
        cont = big;
    }
    r->big = NULL;
    pend_release(w, r); /* first: the continuation may ask again */
    ax_actor_t *a = w->table[slot].actor;
    conv_actor_t *ca = conv_actor(w, slot);
    if (ca)
        ca->npending--;
    ax_actor_t *sv_cur = w->cur;
    ax_ref_t sv_self = w->head.self;
    const ax_msg_t *sv_msg = w->head.msg;
    AX_WD_SET(w->cur, a); /* relaxed atomic stores: the watchdog samples them */
    AX_WD_SET(w->head.self, asker);
    AX_WD_SET(w->head.msg, (const ax_msg_t *)reply);
    if (mon) /* as the asker: its monitor; a DOWN already on its way is filtered */
        ax_demonitor(w, mon);
    fn(w, a->state, cont, status, reply);
    if (reply && (reply->flags & AX_MSG_F_BLOB))
        ax__blob_release(w, reply);
    AX_WD_SET(w->cur, sv_cur);
    AX_WD_SET(w->head.self, sv_self);
    AX_WD_SET(w->head.msg, sv_msg);
    w_free(w, big, len);
    AX_STAT_INC(*counter);
    if (!stopping && (a->flags & (AX_ACTOR_STOPPING | AX_ACTOR_UNSTASH)))
        ax__actor_after(w, a, asker);
}

/* A reply or a timeout reached the asker's worker. */
bool ax__conv_dispatch(ax_worker_t *w, ax_msg_t *m)
{
    struct ax_conv *c = w->conv;
    if (m->type == AX_SYS_REQ_TIMEOUT) {
        pend_t *r = pend_find(w, m->payload.u64[0]);
        if (r && r->asker == m->to) {
            r->timer = AX_TIMER_NONE; /* fired */
            complete(w, r, -ETIMEDOUT, NULL, &c->st.timeouts, false);
            return true;
        }
        return false; /* the reply came first: nothing to do */
    }
    pend_t *r = pend_find(w, m->payload.u64[AX_REQ_ID_WORD]);
    if (!r || r->asker != m->to) {
        AX_STAT_INC(c->st.late);
        if (m->flags & AX_MSG_F_BLOB)
            ax__blob_free(w, m->payload.blob.ptr);
        return false;
    }
    if (m->type == AX_SYS_REQ_FAIL) {
        /* -ESRCH comes from the engine (undeliverable); others from
         * ax_reply_error (a reply), maybe on another node: a status that
         * is not negative cannot come from there, so it is a protocol
         * error, never a success without a reply. */
        int st = (int)(int64_t)m->payload.u64[0];
        if (st >= 0)
            st = -EPROTO;
        complete(w, r, st, NULL, st == -ESRCH ? &c->st.gone : &c->st.replies, false);
    } else {
        complete(w, r, 0, m, &c->st.replies, false);
    }
    return true;
}

/* A DOWN for one of a's monitors reached it (failure.c removed the
 * monitor's record): if the monitor belongs to a request, the target
 * stopped without answering: complete it with -ESRCH.
 * Except a DOWN with AX_REASON_NO_ACTOR: the target was already gone or
 * dormant when the monitor (sent before the request) arrived, so it never
 * held the request; the request itself then answers: a dead letter gives
 * -ESRCH, a dormant restartable target holds it for its next incarnation
 * (or answers -ESRCH when it drops or releases it).  Completing here would
 * cut short a request a supervisor's restart will deliver.  (Known limit:
 * that next incarnation is not watched, so if it too stops holding the
 * request unanswered, only a timeout ends it.) */
bool ax__conv_down(ax_worker_t *w, ax_actor_t *a, ax_ref_t asker, uint64_t mon, uint32_t kind)
{
    struct ax_conv *c = w->conv;
    conv_actor_t *ca = conv_actor(w, ax__actor_slot(a));
    if (!ca || !ca->npending)
        return false;
    for (uint32_t i = 0; i < c->cap; i++)
        if (c->p[i].id && c->p[i].mon == mon && c->p[i].asker == asker) {
            c->p[i].mon = 0; /* its record is gone already */
            if (kind != AX_REASON_NO_ACTOR)
                complete(w, &c->p[i], -ESRCH, NULL, &c->st.gone, false);
            return true;
        }
    return false;
}

int ax_request_watch(ax_ctx_t *w, bool on)
{
    if (!w || !w->cur)
        return -EINVAL;
    conv_actor_t *ca = conv_actor_get(w, w->cur);
    if (!ca)
        return -ENOMEM;
    ca->watch = on;
    return 0;
}

/* Timer expiry (io_api.c): post the timeout to the asker, in order with its
 * other local messages, so the continuation runs from dispatch. */
void ax__request_timeout_fire(ax_worker_t *w, uint64_t token)
{
    struct ax_conv *c = w->conv;
    uint32_t idx = (uint32_t)token;
    if (idx >= c->cap || !c->p[idx].id)
        return;
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = c->p[idx].asker;
    m.type = AX_SYS_REQ_TIMEOUT;
    m.payload.u64[0] = c->p[idx].id;
    if (ax__post_local(w, &m) < 0) {
        /* The record stays: its reply or its asker's stop completes it. */
        c->p[idx].timer = AX_TIMER_NONE;
        fprintf(stderr, "axon: worker %u: a request of actor %#llx timed out but the timeout "
                        "message found no memory (arena exhausted: raise arena_bytes); it "
                        "completes with its reply or its asker's stop\n",
                w->id, (unsigned long long)m.to);
    }
}

/* ---- asking ------------------------------------------------------------------------------- */

static int request_common(ax_worker_t *w, ax_ref_t to, uint32_t type, const void *buf, size_t len,
                          void *blob, uint64_t timeout_ms, ax_cont_fn fn, const void *cont,
                          size_t cont_len)
{
    if (!w || !w->cur || !fn || type >= AX_TYPE_SYSTEM || cont_len > AX_REQUEST_CTX_MAX ||
        (cont_len && !cont) || timeout_ms > AX_TIMEOUT_MAX_MS)
        return -EINVAL;
    if (!blob && (len > AX_REQUEST_INLINE_MAX || (len && !buf)))
        return -EINVAL;
    if (w->closing)
        return -ESHUTDOWN;
    if (timeout_ms && !w->timers)
        return -ENOMEM; /* the worker could not create its timers at start */
    ax_actor_t *a = w->cur;
    if (a->flags & AX_ACTOR_STOPPING)
        return -ESHUTDOWN; /* its requests would be cancelled at once */
    conv_actor_t *ca = conv_actor_get(w, a);
    if (!ca)
        return -ENOMEM;
    if (ca->closing)
        return -ESHUTDOWN;
    pend_t *r = pend_alloc(w);
    if (!r)
        return -ENOMEM;
    r->asker = w->head.self;
    r->fn = fn;
    r->timer = AX_TIMER_NONE;
    r->big = NULL;
    r->cont_len = (uint32_t)cont_len;
    r->mon = 0;
    if (cont_len > CONT_INLINE) {
        if (!(r->big = w_alloc(w, cont_len)))
            goto nomem;
        memcpy(r->big, cont, cont_len);
    } else if (cont_len) {
        memcpy(r->cont, cont, cont_len);
    }
    uint32_t idx = (uint32_t)(r->id & REQ_IDX_MASK);
    /* Watch the target when the request has no timeout (else a target that
     * stops while holding it - received, stashed or kept, never answered -
     * would leave it pending forever: exactly once needs an end), or when
     * ax_request_watch asked for it.  Cost, only then: a monitor message
     * before the request, a demonitor message after the completion, and 64
     * bytes of arena (a record on each side) while it is pending.  A request
     * with a timeout relies on the timeout and pays none of it.
     * Before the request, in the same per-pair order: the target's worker
     * sees the monitor first, so a target that stops while holding the
     * request sends DOWN (ax__conv_down), one already gone or dormant
     * answers DOWN(NO_ACTOR) at once, which only drops the monitor: the
     * request itself is then a dead letter (-ESRCH) or held for a restart. */
    int mrc = (ca->watch || !timeout_ms) ? ax_monitor(w, to, &r->mon) : 0;
    if (mrc < 0) { /* -ENOMEM, -EDQUOT (sponsor), -EINVAL (bad ref): nothing sent */
        r->mon = 0;
        w_free(w, r->big, cont_len);
        r->big = NULL;
        pend_release(w, r);
        return mrc;
    }
    if (timeout_ms &&
        ax_timers_add(w->timers, ax_now_ns() + timeout_ms * 1000000u, 0, ((uint64_t)idx << 1) | 1,
                      &r->timer) < 0)
        goto nomem;
    int err;
    uint8_t stamp;
    ax_msg_t *m = ax__msg_slot_fast(w, to, &err, &stamp);
    if (!m) {
        if (r->timer != AX_TIMER_NONE)
            ax_timers_cancel(w->timers, r->timer);
        if (r->mon)
            ax_demonitor(w, r->mon);
        w_free(w, r->big, cont_len);
        r->big = NULL;
        pend_release(w, r);
        return err;
    }
    if (blob) {
        m->payload.blob.ptr = blob;
        m->payload.blob.len = len;
    } else if (len) {
        memcpy(m->payload.data, buf, len);
    }
    m->payload.u64[AX_REQ_ID_WORD] = r->id;
    ax_msg_commit(m, type, blob ? 0 : (uint16_t)len,
                  (uint8_t)(AX_MSG_F_REQUEST | (blob ? AX_MSG_F_BLOB : 0)), stamp);
    AX_TRACE_SEND(w->id, to, type);
    ca->npending++;
    AX_STAT_INC(w->conv->st.requests);
    return 0;
nomem:
    if (r->mon)
        ax_demonitor(w, r->mon);
    r->mon = 0;
    w_free(w, r->big, cont_len);
    r->big = NULL;
    pend_release(w, r);
    return -ENOMEM;
}

int ax_request(ax_ctx_t *w, ax_ref_t to, uint32_t type, const void *buf, size_t len,
               uint64_t timeout_ms, ax_cont_fn fn, const void *cont, size_t cont_len)
{
    return request_common(w, to, type, buf, len, NULL, timeout_ms, fn, cont, cont_len);
}

int ax_request_blob(ax_ctx_t *w, ax_ref_t to, uint32_t type, void *blob, size_t len,
                    uint64_t timeout_ms, ax_cont_fn fn, const void *cont, size_t cont_len)
{
    if (!blob)
        return -EINVAL;
    return request_common(w, to, type, NULL, len, blob, timeout_ms, fn, cont, cont_len);
}

/* ---- replying ------------------------------------------------------------------------------ */

static int calls_complete(ax_engine_t *eng, uint64_t id, int status, uint32_t type,
                          const void *data, size_t len);

/* One reply message to an actor asker; from is set by the slot (the replier). */
static int send_reply(ax_worker_t *w, ax_req_t req, uint32_t type, const void *buf, size_t len,
                      void *blob, bool sys)
{
    int err;
    uint8_t stamp;
    ax_msg_t *m = ax__msg_slot_fast(w, req.asker, &err, &stamp);
    if (!m)
        return err;
    if (blob) {
        m->payload.blob.ptr = blob;
        m->payload.blob.len = len;
    } else if (len && buf) {
        memcpy(m->payload.data, buf, len);
    }
    m->payload.u64[AX_REQ_ID_WORD] = req.id;
    (void)sys;
    ax_msg_commit(m, type, blob ? 0 : (uint16_t)len,
                  (uint8_t)(AX_MSG_F_REPLY | (blob ? AX_MSG_F_BLOB : 0)), stamp);
    AX_TRACE_SEND(w->id, req.asker, type);
    return 0;
}

int ax_reply_to(ax_ctx_t *w, ax_req_t req, uint32_t type, const void *buf, size_t len)
{
    if (!w || !req.id || type >= AX_TYPE_SYSTEM || len > AX_REQUEST_INLINE_MAX || (len && !buf))
        return -EINVAL;
    if (req.asker == AX_REF_NONE)
        return calls_complete(w->eng, req.id, 0, type, buf, len);
    return send_reply(w, req, type, buf, len, NULL, false);
}

int ax_reply(ax_ctx_t *w, uint32_t type, const void *buf, size_t len)
{
    if (!w)
        return -EINVAL;
    return ax_reply_to(w, ax_request_of(w->head.msg), type, buf, len);
}

int ax_reply_blob_to(ax_ctx_t *w, ax_req_t req, uint32_t type, void *blob, size_t len)
{
    if (!w || !req.id || !blob || type >= AX_TYPE_SYSTEM)
        return -EINVAL;
    if (req.asker == AX_REF_NONE) {
        int rc = calls_complete(w->eng, req.id, 0, type, blob, len);
        if (rc == 0)
            ax__blob_free(w, blob); /* copied into the future */
        return rc;
    }
    return send_reply(w, req, type, NULL, len, blob, false);
}

int ax_reply_error(ax_ctx_t *w, ax_req_t req, int status)
{
    if (!w || !req.id || status >= 0)
        return -EINVAL;
    if (req.asker == AX_REF_NONE)
        return calls_complete(w->eng, req.id, status, 0, NULL, 0);
    uint64_t v = (uint64_t)(int64_t)status;
    return send_reply(w, req, AX_SYS_REQ_FAIL, &v, sizeof v, NULL, true);
}

/* A reference on another cluster node (not a stale one of this node). */
static bool other_node(const ax_engine_t *eng, ax_ref_t to)
{
    return eng->cl && to != AX_REF_NONE && ax_ref_node(to) != eng->home >> 14 &&
           ax__ref_dest(eng->home, to) >= eng->n;
}

int ax_forward(ax_ctx_t *w, ax_ref_t to, ax_req_t req, uint32_t type, const void *buf, size_t len)
{
    if (!w || !req.id || type >= AX_TYPE_SYSTEM || len > AX_REQUEST_INLINE_MAX || (len && !buf))
        return -EINVAL;
    /* An outside caller's request (asker AX_REF_NONE) answered on another
     * node would complete a future of that node's engine, not ours. */
    if (req.asker == AX_REF_NONE && other_node(w->eng, to))
        return -EXDEV;
    int err;
    uint8_t stamp;
    ax_msg_t *m = ax__msg_slot_fast(w, to, &err, &stamp);
    if (!m)
        return err;
    m->from = req.asker; /* the reply goes to the asker, not to us */
    if (len)
        memcpy(m->payload.data, buf, len);
    m->payload.u64[AX_REQ_ID_WORD] = req.id;
    ax_msg_commit(m, type, (uint16_t)len, AX_MSG_F_REQUEST, stamp);
    AX_TRACE_SEND(w->id, to, type);
    return 0;
}

/* A request nobody will handle: tell its asker. */
void ax__request_undeliverable(ax_worker_t *w, const ax_msg_t *m, int status)
{
    ax_req_t req = {m->from, m->payload.u64[AX_REQ_ID_WORD]};
    if (req.asker == AX_REF_NONE) {
        calls_complete(w->eng, req.id, status, 0, NULL, 0);
        return;
    }
    if (w->closing)
        return; /* shutdown: the asker's stop completes it with -ECANCELED */
    uint64_t v = (uint64_t)(int64_t)status;
    if (send_reply(w, req, AX_SYS_REQ_FAIL, &v, sizeof v, NULL, true) < 0)
        fprintf(stderr, "axon: worker %u: cannot tell actor %#llx that its request went to a "
                        "stopped actor (no memory): it completes at its timeout, if it has one\n",
                w->id, (unsigned long long)req.asker);
}

/* ---- stash ---------------------------------------------------------------------------------- */

int ax_stash(ax_ctx_t *w)
{
    if (!w || !w->cur || !w->head.msg || (w->head.msg->flags & AX_MSG_F_REPLY))
        return -EINVAL;
    conv_actor_t *ca = conv_actor_get(w, w->cur);
    if (!ca)
        return -ENOMEM;
    if (ca->count >= ca->limit) {
        AX_STAT_INC(w->conv->st.stash_full);
        return -ENOBUFS;
    }
    if (!ca->buf) {
        if (!(ca->buf = w_alloc(w, (size_t)ca->limit * sizeof(ax_msg_t))))
            return -ENOMEM;
        ca->cap = ca->limit;
        ca->head = 0;
    }
    ax_msg_t *dst = &ca->buf[(ca->head + ca->count) % ca->cap];
    *dst = *w->head.msg;
    dst->seq = 0;
    ca->count++;
    if (dst->flags & AX_MSG_F_BLOB)
        w->cur_blob_kept = true; /* the stash owns the blob now */
    AX_STAT_INC(w->conv->st.stashed);
    return 0;
}

int ax_unstash_all(ax_ctx_t *w)
{
    if (!w || !w->cur)
        return -EINVAL;
    if ((w->cur->flags & AX_ACTOR_CONV) && conv_actor(w, ax__actor_slot(w->cur))->count) {
        w->cur->flags |= AX_ACTOR_UNSTASH;
        w->after = 1; /* the drain loops' hint (worker.h) */
    }
    return 0;
}

int ax_stash_limit(ax_ctx_t *w, uint32_t max)
{
    if (!w || !w->cur || max == 0 || max > AX_STASH_MAX)
        return -EINVAL;
    conv_actor_t *ca = conv_actor_get(w, w->cur);
    if (!ca)
        return -ENOMEM;
    if (ca->count)
        return -EBUSY;
    w_free(w, ca->buf, (size_t)ca->cap * sizeof(ax_msg_t));
    ca->buf = NULL;
    ca->cap = 0;
    ca->limit = max;
    return 0;
}

uint32_t ax_stash_count(ax_ctx_t *w)
{
    if (!w || !w->cur || !(w->cur->flags & AX_ACTOR_CONV))
        return 0;
    return conv_actor(w, ax__actor_slot(w->cur))->count;
}

/* Handle the stashed messages again, oldest first, until the actor stops
 * or no unstash is asked for.  A message stashed again during the replay
 * goes to the back: it is replayed by the next ax_unstash_all. */
static void replay(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref)
{
    conv_actor_t *ca = conv_actor(w, ax__actor_slot(a));
    while ((a->flags & AX_ACTOR_UNSTASH) && !(a->flags & AX_ACTOR_STOPPING)) {
        a->flags &= ~(uint32_t)AX_ACTOR_UNSTASH;
        for (uint32_t n = ca->count; n && !(a->flags & AX_ACTOR_STOPPING); n--) {
            ax_msg_t m = ca->buf[ca->head];
            ca->head = (ca->head + 1) % ca->cap;
            ca->count--;
            m.to = ref; /* ax__run takes self from it; a forwarded request keeps its from */
            ax__run(w, a, &m);
        }
    }
}

void ax__actor_after(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref)
{
    if (a->flags & AX_ACTOR_UNSTASH)
        replay(w, a, ref);
    if (a->flags & AX_ACTOR_STOPPING)
        ax__actor_stop(w, a);
}

/* The asker's stop: its requests complete with -ECANCELED (before its fini),
 * its stash goes as dead letters (requests in it get -ESRCH). */
void ax__conv_actor_stop(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref)
{
    struct ax_conv *c = w->conv;
    conv_actor_t *ca = conv_actor(w, ax__actor_slot(a));
    a->flags &= ~(uint32_t)AX_ACTOR_UNSTASH;
    if (ca)
        ca->closing = true; /* continuations below cannot ask again */
    for (uint32_t i = 0; ca && ca->npending && i < c->cap; i++)
        if (c->p[i].id && c->p[i].asker == ref)
            complete(w, &c->p[i], -ECANCELED, NULL, &c->st.cancelled, true);
    if (!ca)
        return;
    while (ca->count) {
        ax_msg_t m = ca->buf[ca->head];
        ca->head = (ca->head + 1) % ca->cap;
        ca->count--;
        AX_STAT_INC(c->st.stash_dropped);
        ax__dead_letter(w, &m);
    }
    w_free(w, ca->buf, (size_t)ca->cap * sizeof(ax_msg_t));
    c->by_slot[ax__actor_slot(a)] = NULL;
    w_free(w, ca, sizeof *ca);
    a->flags &= ~(uint32_t)AX_ACTOR_CONV;
}

/* Worker shutdown, after every actor stopped. */
void ax__conv_fini(ax_worker_t *w)
{
    struct ax_conv *c = w->conv;
    if (!c)
        return;
    w_free(w, c->p, (size_t)c->cap * sizeof *c->p);
    c->p = NULL;
    c->cap = c->free_head = c->live = 0;
    w_free(w, c->by_slot, (size_t)c->by_cap * sizeof *c->by_slot);
    c->by_slot = NULL;
    c->by_cap = 0;
}

/* ---- outside callers ------------------------------------------------------------------------ */

#define CALL_BUCKETS 256u

struct ax_future {
    struct ax_future *next; /* bucket chain, while in the registry */
    struct ax_calls *calls;
    uint64_t id;
    uint64_t deadline_ns;   /* 0: none */
    ax_ref_t target;        /* watched (no timeout): demonitor when done early */
    bool watch;             /* a monitor with watcher AX_REF_NONE, id = this id */
    pthread_cond_t cond;
    bool in_table, done;
    int status;
    uint32_t type;
    size_t len;
    unsigned char *data;    /* malloc'ed copy of the reply */
};

/* Shared by the engine and every future made from it; freed by whichever
 * lets go last (so a future may outlive its engine). */
struct ax_calls {
    pthread_mutex_t mu;
    ax_future_t *bucket[CALL_BUCKETS];
    uint64_t next_id;
    uint64_t calls, late;
    uint32_t refs; /* the engine + live futures; under mu */
    ax_engine_t *eng; /* NULL once the engine let go (ax__calls_fini); under mu */
};

static void calls_unref_locked(struct ax_calls *k)
{
    /* Caller holds k->mu; unlocks it. */
    bool last = --k->refs == 0;
    pthread_mutex_unlock(&k->mu);
    if (last) {
        pthread_mutex_destroy(&k->mu);
        free(k);
    }
}

int ax__calls_init(ax_engine_t *eng)
{
    struct ax_calls *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    if (pthread_mutex_init(&k->mu, NULL) != 0) {
        free(k);
        return -ENOMEM;
    }
    k->next_id = 1;
    k->refs = 1;
    k->eng = eng;
    for (uint32_t i = 0; i < eng->n; i++) {
        if (!(eng->w[i]->conv = calloc(1, sizeof(struct ax_conv)))) {
            for (uint32_t j = 0; j < i; j++) {
                free(eng->w[j]->conv);
                eng->w[j]->conv = NULL;
            }
            pthread_mutex_destroy(&k->mu);
            free(k);
            return -ENOMEM;
        }
    }
    eng->calls = k;
    return 0;
}

static ax_future_t **bucket_of(struct ax_calls *k, uint64_t id)
{
    return &k->bucket[(id * 0x9E3779B97F4A7C15ull) >> 56];
}

static void unlink_locked(struct ax_calls *k, ax_future_t *f)
{
    ax_future_t **pp = bucket_of(k, f->id);
    while (*pp && *pp != f)
        pp = &(*pp)->next;
    if (*pp)
        *pp = f->next;
    f->next = NULL;
    f->in_table = false;
}

static void finish_locked(ax_future_t *f, int status)
{
    f->status = status;
    f->done = true;
    pthread_cond_broadcast(&f->cond);
}

void ax__calls_fini(ax_engine_t *eng)
{
    struct ax_calls *k = eng->calls;
    if (eng->w)
        for (uint32_t i = 0; i < eng->n; i++)
            if (eng->w[i]) {
                free(eng->w[i]->conv);
                eng->w[i]->conv = NULL;
            }
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    for (uint32_t b = 0; b < CALL_BUCKETS; b++)
        while (k->bucket[b]) {
            ax_future_t *f = k->bucket[b];
            unlink_locked(k, f);
            finish_locked(f, -ESHUTDOWN);
        }
    eng->calls = NULL;
    k->eng = NULL;
    calls_unref_locked(k);
}

/* Monitor (type AX_SYS_MONITOR) or stop monitoring (AX_SYS_DEMONITOR)
 * `target` for outside future `id`: the watcher is AX_REF_NONE, so the
 * target's stop calls ax__calls_down instead of sending a DOWN.  [any] */
static int calls_watch(ax_engine_t *eng, ax_ref_t target, uint64_t id, uint32_t type)
{
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = target;
    m.from = AX_REF_NONE;
    m.type = type;
    m.len = AX_INLINE_MAX;
    m.payload.u64[0] = id;
    return ax__ext_post(eng, &m);
}

/* As ax__conv_down, for outside futures (NO_ACTOR: the request itself,
 * posted after the monitor from the same thread, answers). */
void ax__calls_down(ax_engine_t *eng, uint64_t id, uint32_t kind)
{
    struct ax_calls *k = eng->calls;
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    ax_future_t *f = *bucket_of(k, id);
    while (f && f->id != id)
        f = f->next;
    if (f) { /* else answered, freed or shut down first: nothing to do */
        f->watch = false; /* the monitor's record went with the target */
        if (kind != AX_REASON_NO_ACTOR) {
            unlink_locked(k, f);
            finish_locked(f, -ESRCH);
        }
    }
    pthread_mutex_unlock(&k->mu);
}

/* A reply (or failure) for an outside caller, from any worker. */
static int calls_complete(ax_engine_t *eng, uint64_t id, int status, uint32_t type,
                          const void *data, size_t len)
{
    struct ax_calls *k = eng->calls;
    unsigned char *copy = NULL;
    if (len && !(copy = malloc(len)))
        return -ENOMEM;
    if (len)
        memcpy(copy, data, len);
    pthread_mutex_lock(&k->mu);
    ax_future_t *f = *bucket_of(k, id);
    while (f && f->id != id)
        f = f->next;
    if (!f) {
        k->late++;
        pthread_mutex_unlock(&k->mu);
        free(copy);
        return 0; /* timed out or freed: a late reply, counted */
    }
    unlink_locked(k, f);
    f->type = type;
    f->len = len;
    f->data = copy;
    /* Remove the target's watcher record (a no-op if it stopped), posted
     * before the waiter can see the future complete: whatever it sends the
     * target next arrives after the demonitor. */
    if (f->watch)
        (void)calls_watch(eng, f->target, id, AX_SYS_DEMONITOR);
    f->watch = false;
    finish_locked(f, status);
    pthread_mutex_unlock(&k->mu);
    return 0;
}

int ax_engine_request(ax_engine_t *eng, ax_ref_t to, uint32_t type, const void *buf, size_t len,
                      uint64_t timeout_ms, ax_future_t **out)
{
    if (!eng || !out || type >= AX_TYPE_SYSTEM || len > AX_REQUEST_INLINE_MAX || (len && !buf) ||
        timeout_ms > AX_TIMEOUT_MAX_MS || !eng->calls)
        return -EINVAL;
    /* A future lives in this engine's registry: a replier on another node
     * could only complete one of its own engine's.  Ask through a local
     * actor (ax_request) instead; docs/cluster.md. */
    if (other_node(eng, to))
        return -EXDEV;
    if (ax__ref_dest(eng->home, to) >= eng->n)
        return -EINVAL;
    *out = NULL;
    struct ax_calls *k = eng->calls;
    ax_future_t *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int prc = pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (prc != 0) {
        free(f);
        return -ENOMEM;
    }
    f->calls = k;
    f->deadline_ns = timeout_ms ? ax_now_ns() + timeout_ms * 1000000u : 0;
    f->target = to;
    f->watch = timeout_ms == 0; /* before it is shared: set under no lock */
    pthread_mutex_lock(&k->mu);
    f->id = k->next_id++;
    k->calls++;
    k->refs++;
    ax_future_t **b = bucket_of(k, f->id);
    f->next = *b;
    *b = f;
    f->in_table = true;
    pthread_mutex_unlock(&k->mu);

    /* No timeout: watch the target, as ax_request does, so a target that
     * stops, fails or is killed while holding the request completes the
     * future with -ESRCH instead of leaving it pending forever.  Costs a
     * monitor message, a demonitor message when the reply comes and 32
     * bytes of arena at the target while pending; with a timeout, none.
     * Posted before the request (same thread, same inbox: in order); even
     * out of order it would be right: a target gone before the monitor
     * arrives answers at once (ax__calls_down), after a reply: a no-op. */
    if (!timeout_ms) {
        int mrc = calls_watch(eng, to, f->id, AX_SYS_MONITOR);
        if (mrc < 0) {
            f->watch = false; /* nothing was posted: no worker knows f */
            ax_future_free(f);
            return mrc;
        }
    }
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = to;
    m.type = type;
    m.len = (uint16_t)len;
    m.flags = AX_MSG_F_REQUEST;
    if (len)
        memcpy(m.payload.data, buf, len);
    m.payload.u64[AX_REQ_ID_WORD] = f->id;
    int rc = ax__ext_post(eng, &m);
    if (rc < 0) {
        ax_future_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* Under mu: time the future out if its deadline passed. */
static void check_deadline_locked(ax_future_t *f, uint64_t now)
{
    if (!f->done && f->deadline_ns && now >= f->deadline_ns) {
        unlink_locked(f->calls, f);
        finish_locked(f, -ETIMEDOUT);
    }
}

int ax_future_poll(ax_future_t *f)
{
    if (!f)
        return -EINVAL;
    pthread_mutex_lock(&f->calls->mu);
    check_deadline_locked(f, ax_now_ns());
    int rc = f->done ? 0 : -EAGAIN;
    pthread_mutex_unlock(&f->calls->mu);
    return rc;
}

int ax_future_wait(ax_future_t *f, uint64_t wait_ms)
{
    if (!f)
        return -EINVAL;
    struct ax_calls *k = f->calls;
    uint64_t now = ax_now_ns();
    uint64_t end = wait_ms == UINT64_MAX || wait_ms > AX_TIMEOUT_MAX_MS ? UINT64_MAX
                                                                       : now + wait_ms * 1000000u;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        check_deadline_locked(f, now);
        if (f->done || now >= end)
            break;
        uint64_t until = end;
        if (f->deadline_ns && f->deadline_ns < until)
            until = f->deadline_ns;
        if (until == UINT64_MAX) {
            pthread_cond_wait(&f->cond, &k->mu);
        } else {
            struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
            pthread_cond_timedwait(&f->cond, &k->mu, &ts);
        }
        now = ax_now_ns();
    }
    int rc = f->done ? 0 : -EAGAIN;
    pthread_mutex_unlock(&k->mu);
    return rc;
}

int ax_future_result(const ax_future_t *f, uint32_t *type, void *buf, size_t cap, size_t *len)
{
    if (!f)
        return -EINVAL;
    pthread_mutex_lock(&f->calls->mu);
    int rc;
    if (!f->done) {
        rc = -EAGAIN;
    } else {
        rc = f->status;
        if (rc == 0) {
            if (type)
                *type = f->type;
            if (len)
                *len = f->len;
            if (f->len > cap || (f->len && !buf))
                rc = -EMSGSIZE;
            else if (f->len)
                memcpy(buf, f->data, f->len);
        }
    }
    pthread_mutex_unlock(&f->calls->mu);
    return rc;
}

void ax_future_free(ax_future_t *f)
{
    if (!f)
        return;
    struct ax_calls *k = f->calls;
    pthread_mutex_lock(&k->mu);
    if (f->in_table)
        unlink_locked(k, f); /* a reply that comes now is late: counted */
    /* Freed while pending and watching: remove the target's watcher record.
     * Under mu: ax__calls_fini (which clears k->eng) waits for us, so the
     * engine is alive; a stopped engine refuses the post (-ESHUTDOWN) and
     * frees its records itself. */
    if (f->watch && k->eng)
        (void)calls_watch(k->eng, f->target, f->id, AX_SYS_DEMONITOR);
    free(f->data);
    pthread_cond_destroy(&f->cond);
    free(f);
    calls_unref_locked(k);
}

int ax_engine_call(ax_engine_t *eng, ax_ref_t to, uint32_t type, const void *buf, size_t len,
                   uint64_t timeout_ms, uint32_t *reply_type, void *reply, size_t cap,
                   size_t *reply_len)
{
    if (!timeout_ms)
        return -EINVAL;
    ax_future_t *f;
    int rc = ax_engine_request(eng, to, type, buf, len, timeout_ms, &f);
    if (rc < 0)
        return rc;
    ax_future_wait(f, UINT64_MAX); /* ends at the reply or the deadline */
    rc = ax_future_result(f, reply_type, reply, cap, reply_len);
    ax_future_free(f);
    return rc;
}

/* ---- counters ---------------------------------------------------------------------------------- */

void ax_engine_conv_stats(const ax_engine_t *eng, ax_conv_stats_t *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    if (!eng)
        return;
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    for (uint32_t i = 0; i < eng->n; i++) {
        struct ax_conv *c = eng->w[i]->conv;
        if (!c)
            continue;
        o->requests += LD(c->st.requests);
        o->replies += LD(c->st.replies);
        o->timeouts += LD(c->st.timeouts);
        o->target_gone += LD(c->st.gone);
        o->cancelled += LD(c->st.cancelled);
        o->late_replies += LD(c->st.late);
        o->pending += LD(c->st.pending);
        o->stashed += LD(c->st.stashed);
        o->stash_full += LD(c->st.stash_full);
        o->stash_dropped += LD(c->st.stash_dropped);
    }
#undef LD
    struct ax_calls *k = eng->calls;
    if (k) {
        pthread_mutex_lock(&k->mu);
        o->outside_calls = k->calls;
        o->outside_late = k->late;
        pthread_mutex_unlock(&k->mu);
    }
}
