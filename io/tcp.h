/* io/tcp.h - TCP over a worker's io_uring: listeners (SO_REUSEPORT,
 * multishot accept), connections (multishot recv into the ring's provided
 * buffers, serialised sends, half-close, close) and client connect.
 *
 * Threading: the ring's owner thread only, like every ax_io call but wake.
 * Knows nothing of actors: each operation carries a caller token and its
 * completions arrive through the ax_io_poll/ax_io_wait callback as
 * (token, res, flags):
 *
 *   listen    token gets one completion per accepted connection: res = the
 *             new connection id (>= 0), flags AX_IO_F_MORE; or res = -errno
 *             (without AX_IO_F_MORE when the listener stopped, e.g. closed).
 *   connect   res = the new connection id, or -errno (no connection left).
 *   recv      res > 0: bytes in provided buffer AX_IO_BUF_ID(flags), flags
 *             AX_IO_F_BUFFER|AX_IO_F_MORE; the consumer owns that buffer
 *             until ax_io_tcp_buf_release.  res = 0: the peer closed its side.
 *             res < 0: error, -ECANCELED after close, -ENOBUFS when the
 *             connection exceeded conn_max_bytes (it is being closed).
 *             Both end the stream (no AX_IO_F_MORE).
 *   send      res = len once every byte went out, or -errno.  Sends on one
 *             connection go out in call order, one at a time.
 *   shutdown  res = 0 or -errno.
 *   close     res = 0 once every pending op of the connection completed
 *             (with -ECANCELED) and the fd is closed.
 *
 * Memory: the caller's send buffer must stay valid until its completion
 * (ax_io_tcp_send); ax_io_tcp_send_copy copies it into the send pool.
 * Connection ids are (generation << 20 | slot): positive int32, so they fit
 * in res; a stale id is refused with -EBADF, never followed.  The io owns
 * every fd it opened and closes it at ax_io_tcp_close or ax_io_destroy.
 */
#ifndef AXON_IO_TCP_H
#define AXON_IO_TCP_H

#include <stdint.h>
#include <sys/socket.h>

#include "io/uring.h"

#define AX_IO_F_BUFFER (1u << 0) /* = IORING_CQE_F_BUFFER */
#define AX_IO_F_MORE (1u << 1)   /* = IORING_CQE_F_MORE */
#define AX_IO_BUF_ID(flags) ((uint32_t)(flags) >> 16)

/* Parse a numeric IPv4/IPv6 address ("127.0.0.1", "::1", "0.0.0.0", "::";
 * NULL or "" means any IPv4) and port.  0 or -EINVAL. */
int ax_sockaddr_parse(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

/* Listen (SO_REUSEADDR|SO_REUSEPORT, so one listener per worker on the same
 * port spreads accepts) and arm a multishot accept.  *out_id names the
 * listener for ax_io_tcp_close and ax_io_tcp_local_port.  0 or -errno. */
int ax_io_tcp_listen(ax_io_t *io, const struct sockaddr *sa, socklen_t salen, int backlog,
                  uint64_t token, uint32_t *out_id);
/* The bound port of a listener or connection (useful after port 0), or -errno. */
int ax_io_tcp_local_port(ax_io_t *io, uint32_t id);

int ax_io_tcp_connect(ax_io_t *io, const struct sockaddr *sa, socklen_t salen, uint64_t token);
/* Start delivering received bytes (once per connection).  0, -EBADF,
 * -EALREADY, -ENOMEM. */
int ax_io_tcp_recv_start(ax_io_t *io, uint32_t conn, uint64_t token);
/* Stop reading the socket until resume, so the kernel's receive buffer
 * fills and TCP flow control holds the peer back; the stream stays on (no
 * end is reported).  Completions already posted may still deliver bytes
 * after the call.  Paused or not, a close ends the stream as usual.
 * Idempotent.  0, -EBADF, -EPIPE (closing), -EINVAL (no receive started),
 * -EBUSY (submission queue full; nothing changed). */
int ax_io_tcp_recv_pause(ax_io_t *io, uint32_t conn);
/* Read again after a pause.  Idempotent.  0, -EBADF, -EPIPE, -EINVAL,
 * -ENOMEM/-EBUSY (could not re-arm; still paused). */
int ax_io_tcp_recv_resume(ax_io_t *io, uint32_t conn);
/* Provided buffer `bid` (from a recv completion) and its return to the ring. */
const void *ax_io_tcp_buf(const ax_io_t *io, uint32_t bid);
void ax_io_tcp_buf_release(ax_io_t *io, uint32_t bid);
/* Queue a send.  0, -EBADF, -EPIPE (closing), -ENOMEM, or -ENOBUFS: the
 * bytes held for this connection would exceed conn_max_bytes; the
 * connection is being closed (logged) and nothing was queued. */
int ax_io_tcp_send(ax_io_t *io, uint32_t conn, const void *buf, uint32_t len, uint64_t token);
/* The same, but the bytes are first copied into the io's send pool (blocks
 * of 16 KiB, resident since the first listen or receive, or made so now;
 * io_send_pool_bytes per io): the caller's buffer is free at return, and
 * the copy reuses memory every earlier send used, so it takes no page
 * fault.  A pooled send goes out with IORING_OP_SENDMSG over its blocks;
 * blocks go back as the kernel takes them.  Same results as ax_io_tcp_send,
 * plus -EAGAIN: not enough free blocks (or no memory for the connection's
 * msghdr); nothing was queued and the connection is fine: copy the bytes
 * elsewhere and use ax_io_tcp_send. -EINVAL: buf NULL or len 0. */
int ax_io_tcp_send_copy(ax_io_t *io, uint32_t conn, const void *buf, uint32_t len,
                        uint64_t token);
/* how: SHUT_RD, SHUT_WR, SHUT_RDWR. */
int ax_io_tcp_shutdown(ax_io_t *io, uint32_t conn, int how, uint64_t token);
/* Close a connection or listener: cancels its pending ops.  token 0: no
 * close completion.  0, -EBADF, -EALREADY. */
int ax_io_tcp_close(ax_io_t *io, uint32_t id, uint64_t token);
/* Listeners and connections open (closing ones included). */
uint32_t ax_io_tcp_count(const ax_io_t *io);

#endif /* AXON_IO_TCP_H */
