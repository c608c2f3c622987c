/* engine/io_api.c - the actor-facing I/O API (axon/io.h): timers, TCP and
 * files on the worker's io_uring, completions turned into messages.
 *
 * Every request gets a record from the worker's arena; its address is the
 * io layer's token, so a completion finds the asking actor, the kind of
 * request and the caller's tag without any lookup.  A record lives until the
 * request's last completion (multishot accept and recv: the terminal one).
 *
 * Threading: the worker's own thread only (behaviours, and the worker loop
 * calling ax__io_complete / ax__timer_fire).
 * Memory: records and timer arrays come from the worker's arena (the large
 * allocator above AX_ARENA_MAX_CLASS); data to write, and to send up to
 * AX_ARENA_MAX_CLASS, is copied into a blob at the call and freed at its
 * completion; a larger send is copied into the io's resident send pool
 * (ax_io_tcp_send_copy), or into a blob when the pool is full; received bytes are copied
 * out of the provided buffer into a blob that travels with AX_IO_DATA (the
 * provided buffer goes back to the kernel at once, so a slow actor never
 * starves the worker's receive ring; zero-copy delivery needs a
 * "message handled" hook from the dispatcher: see docs/architecture.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "axon/io.h"
#include "engine/engine_internal.h"
#include "io/file.h"
#include "io/tcp.h"
#include "io/timer.h"
#include "io/uring.h"

enum { R_TIMER = 1, R_ACCEPT, R_CONNECT, R_RECV, R_SEND, R_SHUT, R_CLOSE, R_READ, R_WRITE };

/* A request's record: on the worker's list (next/pprev) until freed, and
 * while its actor lives on the actor's I/O list too (inext/ipprev, head in
 * the actor's AX_REC_IO record: engine/failure.c), so a stop can cancel
 * it.  to == AX_REF_NONE: orphaned (its actor stopped); a late completion
 * is counted in io_cancelled and dropped. */
typedef struct io_req {
    struct io_req *next, **pprev; /* w->io_reqs: every live record */
    ax_ref_t to;
    struct io_req *inext, **ipprev;
    uint64_t tid; /* R_TIMER: the timer's id */
    uint32_t kind;
    uint32_t type;  /* R_TIMER: the user's message type */
    uint64_t user;
    ax_conn_t handle;
    void *buf;      /* R_SEND/R_WRITE: copy of the data; R_READ: target */
    uint64_t period; /* R_TIMER */
    uint16_t plen;
    unsigned char payload[AX_INLINE_MAX];
} io_req_t;

static void req_unlink(io_req_t *r)
{
    if (!r->ipprev)
        return;
    *r->ipprev = r->inext;
    if (r->inext)
        r->inext->ipprev = r->ipprev;
    r->ipprev = NULL;
    r->inext = NULL;
}

static io_req_t *req_new(ax_worker_t *w, uint32_t kind, uint64_t user)
{
    io_req_t **head = ax__fault_io_head(w);
    if (!head)
        return NULL;
    io_req_t *r = ax_arena_alloc(w->arena, sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->to = w->head.self;
    r->kind = kind;
    r->user = user;
    /* Linked so that shutdown finds the records whose completion never
     * comes (ax__io_reqs_free): a pending read or send owns its buffer,
     * which above 4 KiB is not arena memory and would outlive the engine. */
    r->next = w->io_reqs;
    if (r->next)
        r->next->pprev = &r->next;
    r->pprev = &w->io_reqs;
    w->io_reqs = r;
    r->inext = *head;
    if (r->inext)
        r->inext->ipprev = &r->inext;
    r->ipprev = head;
    *head = r;
    return r;
}

static void req_free(ax_worker_t *w, io_req_t *r)
{
    *r->pprev = r->next;
    if (r->next)
        r->next->pprev = r->pprev;
    req_unlink(r);
    if (r->buf)
        ax__blob_free(w, r->buf);
    ax_arena_free(w->arena, r);
}

void ax__io_cancel_list(ax_worker_t *w, io_req_t **head)
{
    io_req_t *r;
    while ((r = *head)) {
        req_unlink(r);
        AX_STAT_INC(w->st.io_cancelled);
        uint32_t id = (uint32_t)r->handle;
        switch (r->kind) {
        case R_TIMER:
            /* Listed timers are armed (a fired one-shot was freed). */
            if (w->timers)
                (void)ax_timers_cancel_token(w->timers, r->tid, NULL);
            req_free(w, r);
            continue;
        case R_READ:
        case R_WRITE:
            if (w->io)
                (void)ax_io_cancel(w->io, (uint64_t)(uintptr_t)r);
            break;
        case R_ACCEPT:
        case R_RECV:
            /* The listener or connection was this actor's to receive on:
             * close it; the multishot ends with its terminal completion. */
            if (w->io)
                (void)ax_io_tcp_close(w->io, id, 0);
            break;
        default: /* connect, send, shutdown, close: complete soon; dropped then */
            break;
        }
        r->to = AX_REF_NONE; /* freed at its (last) completion */
    }
}

/* Shutdown: the actor's records go, its requests stay on the worker's list
 * for ax__io_reqs_free after the ring is torn down. */
void ax__io_detach_list(ax_worker_t *w, io_req_t **head)
{
    io_req_t *r;
    (void)w;
    while ((r = *head))
        req_unlink(r);
}

/* A completion for a request whose actor stopped: count it, free what it
 * holds, never post it. */
static void orphan_complete(ax_worker_t *w, io_req_t *r, int32_t res, uint32_t flags)
{
    AX_STAT_INC(w->st.io_cancelled);
    if (r->kind == R_RECV && res > 0) {
        ax_io_tcp_buf_release(w->io, AX_IO_BUF_ID(flags));
        return; /* more may follow until the close ends the stream */
    }
    if (r->kind == R_ACCEPT && res >= 0) {
        ax_io_tcp_close(w->io, (uint32_t)res, 0); /* nobody to take it */
        if (flags & AX_IO_F_MORE)
            return;
    }
    if (r->kind == R_CONNECT && res >= 0)
        ax_io_tcp_close(w->io, (uint32_t)res, 0);
    if ((r->kind == R_ACCEPT || r->kind == R_RECV) && (flags & AX_IO_F_MORE))
        return;
    req_free(w, r);
}

/* Shutdown, after the ring was torn down (every request cancelled and
 * reaped, so the kernel no longer touches any buffer) and the timers were
 * destroyed: free what no completion will. */
void ax__io_reqs_free(ax_worker_t *w)
{
    while (w->io_reqs)
        req_free(w, w->io_reqs);
}

static inline uint64_t tok(io_req_t *r) { return (uint64_t)(uintptr_t)r; }

static inline ax_conn_t mk_handle(const ax_worker_t *w, uint32_t id)
{
    return ((uint64_t)(w->id + 1) << 32) | id;
}

/* The io id of c if it belongs to this worker; -EXDEV / -EBADF otherwise. */
static int io_id(const ax_worker_t *w, ax_conn_t c, uint32_t *id)
{
    if ((c >> 32) == 0)
        return -EBADF;
    if ((uint32_t)(c >> 32) - 1 != w->id)
        return -EXDEV;
    *id = (uint32_t)c;
    return 0;
}

/* Common entry checks: an I/O ring and a running actor to answer. */
static int enter(ax_ctx_t *w)
{
    if (!w || !w->cur)
        return -EINVAL;
    if (!w->io)
        return -ENOSYS;
    return 0;
}

static void post_event(ax_worker_t *w, ax_ref_t to, uint32_t type, int64_t res, ax_conn_t h,
                       uint64_t user)
{
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = to;
    m.type = type;
    m.len = (uint16_t)sizeof(ax_io_event_t);
    m.payload.u64[0] = (uint64_t)res;
    m.payload.u64[1] = h;
    m.payload.u64[2] = user;
    m.flags = AX_MSG_F_IO; /* cancelled in the FIFO if its actor stops first */
    if (ax__post_local(w, &m) < 0)
        fprintf(stderr, "axon: worker %u: I/O completion type %#x for actor %#llx lost: the "
                        "arena is exhausted; raise arena_bytes\n",
                w->id, type, (unsigned long long)to);
}

static void post_blob(ax_worker_t *w, ax_ref_t to, uint32_t type, void *blob, size_t len,
                      ax_conn_t h, uint64_t user)
{
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = to;
    m.type = type;
    m.flags = AX_MSG_F_BLOB | AX_MSG_F_IO;
    m.payload.blob.ptr = blob;
    m.payload.blob.len = len;
    m.payload.u64[2] = h;
    m.payload.u64[3] = user;
    if (ax__post_local(w, &m) < 0) {
        fprintf(stderr, "axon: worker %u: %zu received bytes for actor %#llx lost: the arena "
                        "is exhausted; raise arena_bytes\n",
                w->id, len, (unsigned long long)to);
        ax__blob_free(w, blob);
    }
}

/* ---- completions ------------------------------------------------------------------ */

void ax__io_complete(ax_worker_t *w, uint64_t token, int32_t res, uint32_t flags)
{
    io_req_t *r = (io_req_t *)(uintptr_t)token;
    if (r->to == AX_REF_NONE) {
        orphan_complete(w, r, res, flags);
        return;
    }
    switch (r->kind) {
    case R_ACCEPT:
        if (res >= 0)
            post_event(w, r->to, AX_IO_ACCEPTED, 0, mk_handle(w, (uint32_t)res), r->user);
        else
            post_event(w, r->to, AX_IO_ACCEPTED, res, r->handle, r->user);
        if (!(flags & AX_IO_F_MORE))
            req_free(w, r);
        return;
    case R_CONNECT:
        post_event(w, r->to, AX_IO_CONNECTED, res < 0 ? res : 0,
                   res < 0 ? 0 : mk_handle(w, (uint32_t)res), r->user);
        req_free(w, r);
        return;
    case R_RECV:
        if (res > 0) {
            uint32_t bid = AX_IO_BUF_ID(flags);
            void *blob = ax_blob_alloc(w, (size_t)res);
            if (blob)
                memcpy(blob, ax_io_tcp_buf(w->io, bid), (size_t)res);
            ax_io_tcp_buf_release(w->io, bid);
            if (blob) {
                post_blob(w, r->to, AX_IO_DATA, blob, (size_t)res, r->handle, r->user);
            } else {
                /* Dropping bytes would corrupt the stream: close instead. */
                fprintf(stderr, "axon: worker %u: no memory for %d received bytes on "
                                "connection %#llx; closing it (raise arena_bytes)\n",
                        w->id, res, (unsigned long long)r->handle);
                ax_io_tcp_close(w->io, (uint32_t)r->handle, 0);
            }
            return;
        }
        post_event(w, r->to, AX_IO_RECV_END, res, r->handle, r->user);
        req_free(w, r);
        return;
    case R_SEND:
        post_event(w, r->to, AX_IO_SENT, res, r->handle, r->user);
        req_free(w, r);
        return;
    case R_SHUT:
        post_event(w, r->to, AX_IO_SHUTDOWN, res, r->handle, r->user);
        req_free(w, r);
        return;
    case R_CLOSE:
        post_event(w, r->to, AX_IO_CLOSED, res, r->handle, r->user);
        req_free(w, r);
        return;
    case R_READ:
        if (res > 0) {
            void *b = r->buf;
            r->buf = NULL; /* travels with the message now */
            post_blob(w, r->to, AX_IO_READ, b, (size_t)res, 0, r->user);
        } else {
            post_event(w, r->to, AX_IO_READ, res, 0, r->user);
        }
        req_free(w, r);
        return;
    case R_WRITE:
        post_event(w, r->to, AX_IO_WRITTEN, res, 0, r->user);
        req_free(w, r);
        return;
    default:
        fprintf(stderr, "axon: worker %u: completion with unknown request kind %u (token "
                        "%#llx); dropped\n",
                w->id, r->kind, (unsigned long long)token);
    }
}

/* ---- timers ------------------------------------------------------------------------ */

static void *tm_alloc(void *ctx, size_t size)
{
    ax_worker_t *w = ctx;
    return size <= AX_ARENA_MAX_CLASS ? ax_arena_alloc(w->arena, size) : ax_large_alloc(-1, size);
}

static void tm_free(void *ctx, void *p, size_t size)
{
    ax_worker_t *w = ctx;
    if (size <= AX_ARENA_MAX_CLASS)
        ax_arena_free(w->arena, p);
    else
        ax_large_free(p, size);
}

/* The worker creates w->timers at start (io_glue.c); this is the fallback
 * if that failed or has not happened. */
static int timers_of(ax_worker_t *w, ax_timers_t **out)
{
    if (!w->timers) {
        ax_timers_alloc_t a = {tm_alloc, tm_free, w};
        int rc = ax_timers_create(&a, &w->timers);
        if (rc < 0)
            return rc;
    }
    *out = w->timers;
    return 0;
}

static int timer_add(ax_ctx_t *w, uint64_t ms, uint64_t period_ms, uint32_t type,
                     const void *payload, size_t len, uint64_t *id)
{
    if (!w || !w->cur || type >= AX_TYPE_SYSTEM || len > AX_INLINE_MAX || (len && !payload))
        return -EINVAL;
    /* Both bounded by 2^42 ms = 4.4e18 ns < 2^62, and the monotonic clock
     * stays below 2^62 ns (146 years of uptime): the deadline below, and
     * every later one (deadline + period, timer.c), stay below 2^64.
     * Unchecked, ms * 1000000 wrapped: UINT64_MAX fired at once, and a
     * period of 2^58 + 1 ms became 1 ms. */
    if (ms > AX_TIMER_MAX_MS || period_ms > AX_TIMER_MAX_MS)
        return -EINVAL;
    ax_timers_t *t;
    int rc = timers_of(w, &t);
    if (rc < 0)
        return rc;
    io_req_t *r = req_new(w, R_TIMER, 0);
    if (!r)
        return -ENOMEM;
    r->type = type;
    r->plen = (uint16_t)len;
    if (len)
        memcpy(r->payload, payload, len);
    r->period = period_ms * 1000000u;
    uint64_t tid;
    rc = ax_timers_add(t, ax_now_ns() + ms * 1000000u, r->period, tok(r), &tid);
    if (rc < 0) {
        req_free(w, r);
        return rc;
    }
    r->tid = tid;
    if (id)
        *id = tid;
    return 0;
}

int ax_timer_after(ax_ctx_t *ctx, uint64_t ms, uint32_t type, const void *payload, size_t len,
                   uint64_t *id)
{
    return timer_add(ctx, ms, 0, type, payload, len, id);
}

int ax_timer_every(ax_ctx_t *ctx, uint64_t period_ms, uint32_t type, const void *payload,
                   size_t len, uint64_t *id)
{
    if (period_ms == 0)
        return -EINVAL;
    return timer_add(ctx, period_ms, period_ms, type, payload, len, id);
}

int ax_timer_cancel(ax_ctx_t *ctx, uint64_t id)
{
    if (!ctx || !ctx->timers)
        return -ENOENT;
    uint64_t token;
    int rc = ax_timers_cancel_token(ctx->timers, id, &token);
    if (rc == 0)
        req_free(ctx, (io_req_t *)(uintptr_t)token);
    return rc;
}

/* Called by the worker loop (engine/io_glue.c) for each expired timer. */
void ax__timer_fire(ax_worker_t *w, uint64_t id, uint64_t token)
{
    (void)id;
    if (token & 1) { /* a request's timeout (request.c); io records are aligned */
        ax__request_timeout_fire(w, token >> 1);
        return;
    }
    io_req_t *r = (io_req_t *)(uintptr_t)token;
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = r->to;
    m.type = r->type;
    m.len = r->plen;
    m.flags = AX_MSG_F_IO; /* cancelled in the FIFO if its actor stops first */
    memcpy(m.payload.data, r->payload, r->plen);
    if (ax__post_local(w, &m) < 0)
        fprintf(stderr, "axon: worker %u: timer message %#x for actor %#llx lost: the arena is "
                        "exhausted; raise arena_bytes\n",
                w->id, r->type, (unsigned long long)r->to);
    if (!r->period)
        req_free(w, r);
}

/* ---- TCP ------------------------------------------------------------------------------- */

int ax_tcp_listen(ax_ctx_t *w, const char *addr, uint16_t port, int backlog, uint64_t user,
                  ax_conn_t *out)
{
    int rc = enter(w);
    if (rc < 0)
        return rc;
    struct sockaddr_storage ss;
    socklen_t sl;
    if ((rc = ax_sockaddr_parse(addr, port, &ss, &sl)) < 0)
        return rc;
    io_req_t *r = req_new(w, R_ACCEPT, user);
    if (!r)
        return -ENOMEM;
    uint32_t id;
    rc = ax_io_tcp_listen(w->io, (struct sockaddr *)&ss, sl, backlog, tok(r), &id);
    if (rc < 0) {
        req_free(w, r);
        return rc;
    }
    r->handle = mk_handle(w, id);
    if (out)
        *out = r->handle;
    return 0;
}

int ax_tcp_port(ax_ctx_t *w, ax_conn_t c)
{
    uint32_t id;
    int rc = w && w->io ? io_id(w, c, &id) : -ENOSYS;
    return rc < 0 ? rc : ax_io_tcp_local_port(w->io, id);
}

int ax_tcp_connect(ax_ctx_t *w, const char *addr, uint16_t port, uint64_t user)
{
    int rc = enter(w);
    if (rc < 0)
        return rc;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!addr || !*addr || (rc = ax_sockaddr_parse(addr, port, &ss, &sl)) < 0)
        return -EINVAL;
    io_req_t *r = req_new(w, R_CONNECT, user);
    if (!r)
        return -ENOMEM;
    rc = ax_io_tcp_connect(w->io, (struct sockaddr *)&ss, sl, tok(r));
    if (rc < 0)
        req_free(w, r);
    return rc;
}

/* A request on an existing connection: checks, record, then `submit`. */
static int conn_req(ax_ctx_t *w, ax_conn_t c, uint32_t kind, uint64_t user, io_req_t **out,
                    uint32_t *id)
{
    int rc = enter(w);
    if (rc < 0 || (rc = io_id(w, c, id)) < 0)
        return rc;
    io_req_t *r = req_new(w, kind, user);
    if (!r)
        return -ENOMEM;
    r->handle = c;
    *out = r;
    return 0;
}

int ax_tcp_recv_start(ax_ctx_t *w, ax_conn_t c, uint64_t user)
{
    io_req_t *r;
    uint32_t id;
    int rc = conn_req(w, c, R_RECV, user, &r, &id);
    if (rc < 0)
        return rc;
    if ((rc = ax_io_tcp_recv_start(w->io, id, tok(r))) < 0)
        req_free(w, r);
    return rc;
}

int ax_tcp_recv_pause(ax_ctx_t *w, ax_conn_t c)
{
    uint32_t id;
    int rc = enter(w);
    if (rc < 0 || (rc = io_id(w, c, &id)) < 0)
        return rc;
    return ax_io_tcp_recv_pause(w->io, id);
}

int ax_tcp_recv_resume(ax_ctx_t *w, ax_conn_t c)
{
    uint32_t id;
    int rc = enter(w);
    if (rc < 0 || (rc = io_id(w, c, &id)) < 0)
        return rc;
    return ax_io_tcp_recv_resume(w->io, id);
}

int ax_tcp_send(ax_ctx_t *w, ax_conn_t c, const void *buf, size_t len, uint64_t user)
{
    if (len == 0 || len > AX_IO_MAX_BYTES || !buf)
        return -EINVAL;
    io_req_t *r;
    uint32_t id;
    int rc = conn_req(w, c, R_SEND, user, &r, &id);
    if (rc < 0)
        return rc;
    if (len > AX_ARENA_MAX_CLASS) {
        /* Above the arena's classes a copy of its own would be fresh
         * jemalloc memory, faulted in per send: the io's resident send
         * pool instead, or such a copy only when the pool is full. */
        rc = ax_io_tcp_send_copy(w->io, id, buf, (uint32_t)len, tok(r));
        if (rc != -EAGAIN) {
            if (rc < 0)
                req_free(w, r);
            return rc;
        }
    }
    r->buf = ax_blob_alloc(w, len);
    if (!r->buf) {
        req_free(w, r);
        return -ENOMEM;
    }
    memcpy(r->buf, buf, len);
    if ((rc = ax_io_tcp_send(w->io, id, r->buf, (uint32_t)len, tok(r))) < 0)
        req_free(w, r);
    return rc;
}

int ax_tcp_shutdown(ax_ctx_t *w, ax_conn_t c, int how, uint64_t user)
{
    io_req_t *r;
    uint32_t id;
    int rc = conn_req(w, c, R_SHUT, user, &r, &id);
    if (rc < 0)
        return rc;
    if ((rc = ax_io_tcp_shutdown(w->io, id, how, tok(r))) < 0)
        req_free(w, r);
    return rc;
}

int ax_tcp_close(ax_ctx_t *w, ax_conn_t c, uint64_t user)
{
    io_req_t *r;
    uint32_t id;
    int rc = conn_req(w, c, R_CLOSE, user, &r, &id);
    if (rc < 0)
        return rc;
    if ((rc = ax_io_tcp_close(w->io, id, tok(r))) < 0)
        req_free(w, r);
    return rc;
}

/* ---- files ------------------------------------------------------------------------------ */

/* len 1..AX_IO_MAX_BYTES (larger wrapped the SQE's 32-bit length and the
 * completion's 32-bit result), off + len at most INT64_MAX (an offset of
 * UINT64_MAX would mean "the file position" to io_uring, not an error). */
static bool io_range_ok(size_t len, uint64_t off)
{
    return len != 0 && len <= AX_IO_MAX_BYTES && off <= (uint64_t)INT64_MAX - len;
}

int ax_file_read(ax_ctx_t *w, int fd, size_t len, uint64_t off, uint64_t user)
{
    int rc = enter(w);
    if (rc < 0)
        return rc;
    if (fd < 0 || !io_range_ok(len, off))
        return -EINVAL;
    io_req_t *r = req_new(w, R_READ, user);
    if (!r)
        return -ENOMEM;
    r->buf = ax_blob_alloc(w, len);
    if (!r->buf) {
        req_free(w, r);
        return -ENOMEM;
    }
    if ((rc = ax_io_file_read(w->io, fd, r->buf, (uint32_t)len, off, tok(r))) < 0)
        req_free(w, r);
    return rc;
}

int ax_file_write(ax_ctx_t *w, int fd, const void *buf, size_t len, uint64_t off, uint64_t user)
{
    int rc = enter(w);
    if (rc < 0)
        return rc;
    if (fd < 0 || !io_range_ok(len, off) || !buf)
        return -EINVAL;
    io_req_t *r = req_new(w, R_WRITE, user);
    if (!r)
        return -ENOMEM;
    r->buf = ax_blob_alloc(w, len);
    if (!r->buf) {
        req_free(w, r);
        return -ENOMEM;
    }
    memcpy(r->buf, buf, len);
    if ((rc = ax_io_file_write(w->io, fd, r->buf, (uint32_t)len, off, tok(r))) < 0)
        req_free(w, r);
    return rc;
}
