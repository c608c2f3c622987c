/* axon/io.h - timers, TCP and file I/O for actors.
 *
 * Every call takes the behaviour's ctx and runs on that actor's worker,
 * through the worker's own io_uring.  Results come back later as ordinary
 * messages to the actor that asked, with types AX_IO_* (AX_TYPE_IO + k);
 * their payload is an ax_io_event_t (read it with ax_io_event()), whose res
 * is >= 0 on success or a negative errno from the kernel.  AX_IO_DATA is the
 * exception: its payload is a blob holding the received bytes
 * (ax_msg_data/ax_msg_len), with the connection and tag in ax_io_event().
 *
 * Threading: [behaviour] for everything here.  Connections and listeners
 * belong to the worker that opened or accepted them: use them from actors on
 * that worker (another worker gets -EXDEV).  Spawn the connection's actor
 * with AX_ON_SELF (the default) from the listener's behaviour.
 * Memory: data to send is copied at the call; received bytes are a blob the
 * engine frees after the behaviour returns, unless it keeps it
 * (ax_msg_keep_blob, then ax_blob_free).  Errors: negative errno, and a
 * failed call did nothing.  If io_uring could not be set up on the worker,
 * every call returns -ENOSYS.
 */
#ifndef AXON_IO_H
#define AXON_IO_H

#include <stdint.h>

#include "axon/axon.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message types of completions (ax_msg_t.type).  Macros, not an enum: the
 * values lie above INT_MAX, which ISO C does not allow for enumerators. */
#define AX_IO_ACCEPTED (AX_TYPE_IO + 1u)  /* handle: new connection; res < 0: accept error */
#define AX_IO_CONNECTED (AX_TYPE_IO + 2u) /* handle: new connection, or res < 0 */
#define AX_IO_DATA (AX_TYPE_IO + 3u)      /* blob payload: bytes received; handle, user */
#define AX_IO_RECV_END (AX_TYPE_IO + 4u)  /* res 0: peer closed its side; < 0: error
                                             (-ENOBUFS: closed for exceeding io_conn_max_bytes) */
#define AX_IO_SENT (AX_TYPE_IO + 5u)      /* res: bytes sent (all of them) or -errno */
#define AX_IO_SHUTDOWN (AX_TYPE_IO + 6u)  /* res 0 or -errno */
#define AX_IO_CLOSED (AX_TYPE_IO + 7u)    /* res 0: fd closed, pending ops were cancelled */
#define AX_IO_READ (AX_TYPE_IO + 8u)      /* res: bytes read (maybe short) or -errno */
#define AX_IO_WRITTEN (AX_TYPE_IO + 9u)   /* res: bytes written (maybe short) or -errno */


/* A listener or connection: worker and the io layer's id.  0 is never valid. */
typedef uint64_t ax_conn_t;

typedef struct ax_io_event {
    int64_t res;      /* >= 0 result, or -errno */
    ax_conn_t handle; /* the connection or listener concerned (0 for files) */
    uint64_t user;    /* the tag given with the request */
} ax_io_event_t;

/* The event of an AX_IO_* message. */
static inline ax_io_event_t ax_io_event(const ax_msg_t *m)
{
    ax_io_event_t e;
    if (m->flags & AX_MSG_F_BLOB) { /* AX_IO_DATA, AX_IO_READ */
        e.res = (int64_t)m->payload.blob.len;
        e.handle = m->payload.u64[2];
        e.user = m->payload.u64[3];
    } else {
        e.res = (int64_t)m->payload.u64[0];
        e.handle = m->payload.u64[1];
        e.user = m->payload.u64[2];
    }
    return e;
}

/* ---- timers ------------------------------------------------------------------
 * A timer sends the calling actor a message of the caller's `type` (a user
 * type, below AX_TYPE_SYSTEM) with `len` <= AX_INLINE_MAX bytes copied from
 * `payload`.  Millisecond accuracy or better.  A cancelled timer never
 * fires.  When the actor stops (or fails, or is restarted in place) its
 * timers are cancelled, and so is its pending I/O: completions of a stopped
 * incarnation never reach a later one (counted in io_cancelled; see
 * axon/failure.h).
 * A delay or period above AX_TIMER_MAX_MS (2^42 ms, about 139 years) is
 * refused with -EINVAL, not clamped: such a value is almost always a bug (a
 * negative number made unsigned, a unit mix-up); to wait for ever, arm no
 * timer.
 * Returns 0 and the timer's id in *id (may be NULL), or -EINVAL/-ENOMEM. */
#define AX_TIMER_MAX_MS ((uint64_t)1 << 42)
AX_API int ax_timer_after(ax_ctx_t *ctx, uint64_t ms, uint32_t type, const void *payload,
                          size_t len, uint64_t *id);
/* Every period_ms, first after period_ms; fires at start + k*period (no
 * drift); missed ticks are skipped when the worker is late. */
AX_API int ax_timer_every(ax_ctx_t *ctx, uint64_t period_ms, uint32_t type, const void *payload,
                          size_t len, uint64_t *id);
/* 0, or -ENOENT (already fired one-shot, cancelled, unknown). */
AX_API int ax_timer_cancel(ax_ctx_t *ctx, uint64_t id);

/* ---- TCP ---------------------------------------------------------------------- */

/* Listen on addr (numeric IPv4/IPv6; NULL or "": 0.0.0.0) and port (0: any)
 * with SO_REUSEPORT, on the calling actor's worker: run it in one actor per
 * worker to spread connections over workers.  The calling actor receives
 * AX_IO_ACCEPTED for each connection (owned by this worker).  *out: the
 * listener (close it with ax_tcp_close).  backlog 0: 511. */
AX_API int ax_tcp_listen(ax_ctx_t *ctx, const char *addr, uint16_t port, int backlog,
                         uint64_t user, ax_conn_t *out);
/* The local port of a listener or connection, or -errno. */
AX_API int ax_tcp_port(ax_ctx_t *ctx, ax_conn_t c);
/* Connect; AX_IO_CONNECTED follows with the connection. */
AX_API int ax_tcp_connect(ax_ctx_t *ctx, const char *addr, uint16_t port, uint64_t user);
/* Deliver received bytes to the calling actor as AX_IO_DATA, until
 * AX_IO_RECV_END.  Once per connection (-EALREADY). */
AX_API int ax_tcp_recv_start(ax_ctx_t *ctx, ax_conn_t c, uint64_t user);
/* Stop reading c until ax_tcp_recv_resume: the kernel's receive buffer
 * fills and TCP flow control then holds the peer back (a consumer that
 * cannot keep up pauses instead of buffering without bound).  The stream
 * stays on: no AX_IO_RECV_END, but AX_IO_DATA already on its way may still
 * arrive after the call.  The end of the stream (peer close) is seen after
 * resume; a close ends it as usual.  Both are idempotent.  0, -EINVAL (no
 * receive started on c), -EBADF, -EXDEV, -EPIPE (closing), -EBUSY
 * (submission queue full: nothing changed, try again later); resume also
 * -ENOMEM (still paused). */
AX_API int ax_tcp_recv_pause(ax_ctx_t *ctx, ax_conn_t c);
AX_API int ax_tcp_recv_resume(ax_ctx_t *ctx, ax_conn_t c);
/* Copy len bytes (1..AX_IO_MAX_BYTES) and send them after any earlier send
 * on c; AX_IO_SENT follows.  -ENOBUFS: io_conn_max_bytes would be exceeded: the connection
 * is being closed (logged). */
AX_API int ax_tcp_send(ax_ctx_t *ctx, ax_conn_t c, const void *buf, size_t len, uint64_t user);
/* how: SHUT_RD, SHUT_WR (half-close), SHUT_RDWR; AX_IO_SHUTDOWN follows. */
AX_API int ax_tcp_shutdown(ax_ctx_t *ctx, ax_conn_t c, int how, uint64_t user);
/* Close: pending ops end with -ECANCELED, then AX_IO_CLOSED. */
AX_API int ax_tcp_close(ax_ctx_t *ctx, ax_conn_t c, uint64_t user);

/* ---- files -------------------------------------------------------------------- */

/* The most bytes one TCP send, file read or file write takes: Linux moves
 * at most this much in one call (MAX_RW_COUNT), and every result fits the
 * completion's 32-bit res.  A larger len is refused with -EINVAL; split it. */
#define AX_IO_MAX_BYTES ((size_t)0x7ffff000)
/* Offsets are at most INT64_MAX, and off + len must not pass it (-EINVAL). */

/* Read up to len (1..AX_IO_MAX_BYTES) bytes at off into a buffer the call
 * allocates; AX_IO_READ
 * follows, as a blob message (ax_msg_data/ax_msg_len: the bytes read; res
 * in ax_io_event() is the count or -errno).  fd stays the caller's. */
AX_API int ax_file_read(ax_ctx_t *ctx, int fd, size_t len, uint64_t off, uint64_t user);
/* Copy len bytes and write them at off; AX_IO_WRITTEN follows. */
AX_API int ax_file_write(ax_ctx_t *ctx, int fd, const void *buf, size_t len, uint64_t off,
                         uint64_t user);

#ifdef __cplusplus
}
#endif
#endif /* AXON_IO_H */
