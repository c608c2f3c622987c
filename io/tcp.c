/* io/tcp.c - listeners and connections on a worker's io_uring.
 *
 * Threading: owner thread only (see tcp.h).
 * Memory: the connection table is a libc array indexed by slot (it may move
 * when it grows: keep slots, never pointers, across calls that allocate).
 * Each conn counts its outstanding op records; a closing conn is finalised
 * (fd closed, slot freed) only when that count drops to zero, so a late
 * completion never finds a reused slot.
 *
 * Receive buffers are shared by every connection of the worker (one
 * provided-buffer ring).  A buffer handed to the consumer is charged to its
 * connection until released; when the ring runs dry the kernel ends the
 * multishot with -ENOBUFS and we park the connection on a "starved" list
 * that ax_io_tcp_buf_release drains as buffers come back.
 *
 * Pausing a receive cancels the armed multishot (by its user_data; the op
 * record stays allocated until its terminal CQE is reaped, and a queued
 * cancel is always submitted before the next reap, so it cannot hit a
 * reused record).  Its terminal CQE (-ECANCELED, or -ENOBUFS if the ring ran
 * dry first) then ends nothing: the stream stays on, unarmed, and resume
 * re-arms it.  Data CQEs already posted before the cancel are still
 * delivered.  A receive left unarmed (paused or starved) when the
 * connection closes is ended by a NOP op (AXIO_OP_RECV_END), so its
 * consumer always sees the end of the stream.
 */
#include "io/io_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { C_FREE = 0, C_LISTEN, C_CONNECTING, C_CONN };

#define SLOT_BITS 20
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define GEN_MAX ((1u << (31 - SLOT_BITS)) - 1)

struct ax_conn {
    int fd;
    uint32_t gen;
    uint8_t type;
    bool closing, recv_on, starved, close_notify;
    bool recv_paused;     /* ax_io_tcp_recv_pause: no receive armed until resume */
    bool recv_cancelling; /* our cancel of the armed multishot is in flight */
    int32_t close_reason; /* delivered to recv when we closed it ourselves */
    uint32_t ops;         /* outstanding op records */
    uint32_t next;        /* free chain or starved chain */
    uint32_t recv_op;     /* the armed multishot recv, AXIO_NONE if none */
    uint32_t send_head, send_tail; /* queued sends; head is in flight */
    uint64_t recv_token, listen_token, close_token;
    uint64_t held; /* receive buffers held by the consumer + send bytes queued */
    struct sockaddr_storage peer; /* connect target (must outlive the SQE) */
    socklen_t peer_len;
    struct send_msg *smsg; /* SENDMSG of the head send when it is a pool copy */
};

/* The msghdr and iovecs of a connection's pooled send in flight (only the
 * head send of a connection is): its own allocation, so it stays put while
 * the SQE waits to be submitted even if the connection table moves.  Made
 * at the connection's first pooled send, freed with the slot. */
struct send_msg {
    struct msghdr mh;
    struct iovec iov[AXIO_SEND_IOV];
};

static inline uint32_t conn_id(const ax_io_t *io, uint32_t slot)
{
    return (io->conns[slot].gen << SLOT_BITS) | slot;
}

static struct ax_conn *conn_get(ax_io_t *io, uint32_t id, uint32_t *slot)
{
    uint32_t s = id & SLOT_MASK;
    if (id > INT32_MAX || s >= io->conns_cap)
        return NULL;
    struct ax_conn *c = &io->conns[s];
    if (c->type == C_FREE || c->gen != (id >> SLOT_BITS))
        return NULL;
    *slot = s;
    return c;
}

static uint32_t conn_alloc(ax_io_t *io, int fd, uint8_t type)
{
    if (io->conns_free == AXIO_NONE) {
        uint32_t ncap = io->conns_cap ? io->conns_cap * 2 : 16;
        if (ncap > SLOT_MASK + 1)
            return AXIO_NONE;
        struct ax_conn *n = realloc(io->conns, (size_t)ncap * sizeof *n);
        if (!n)
            return AXIO_NONE;
        for (uint32_t i = io->conns_cap; i < ncap; i++) {
            memset(&n[i], 0, sizeof n[i]);
            n[i].fd = -1;
            n[i].next = (i + 1 < ncap) ? i + 1 : AXIO_NONE;
        }
        io->conns = n;
        io->conns_free = io->conns_cap;
        io->conns_cap = ncap;
    }
    uint32_t s = io->conns_free;
    struct ax_conn *c = &io->conns[s];
    io->conns_free = c->next;
    uint32_t gen = c->gen + 1 > GEN_MAX ? 1 : c->gen + 1;
    memset(c, 0, sizeof *c);
    c->gen = gen;
    c->fd = fd;
    c->type = type;
    c->recv_op = AXIO_NONE;
    c->send_head = c->send_tail = AXIO_NONE;
    c->next = AXIO_NONE;
    io->conns_used++;
    return s;
}

static void conn_free(ax_io_t *io, uint32_t s)
{
    struct ax_conn *c = &io->conns[s];
    free(c->smsg); /* no op left: the kernel is done with it */
    c->smsg = NULL;
    c->type = C_FREE;
    c->fd = -1;
    c->next = io->conns_free;
    io->conns_free = s;
    io->conns_used--;
}

uint32_t ax_io_tcp_count(const ax_io_t *io) { return io->conns_used; }

/* An op record bound to conn slot s; AXIO_NONE on -ENOMEM. */
static uint32_t op_new(ax_io_t *io, uint32_t s, uint32_t kind, uint64_t token)
{
    uint32_t op = ax__io_op_alloc(io);
    if (op == AXIO_NONE)
        return op;
    io->ops[op].kind = kind;
    io->ops[op].conn = s;
    io->ops[op].token = token;
    io->ops[op].blk = AXIO_NONE;
    io->conns[s].ops++;
    return op;
}

/* ---- send pool blocks (the pool itself: uring.c) ---- */

/* n blocks chained in order, or AXIO_NONE if fewer are free; resident
 * (the chunks of never-used blocks among them are made so first). */
static uint32_t spool_get(ax_io_t *io, uint32_t n)
{
    if (n == 0 || n > io->spool_nfree)
        return AXIO_NONE;
    uint32_t head = io->spool_free, b = head, top = head;
    for (uint32_t i = 1; i < n; i++) {
        b = io->spool_next[b];
        top = b > top ? b : top;
    }
    /* The blocks ever used are [0, spool_hwm) (uring.c): only those
     * past it need their pages, in whole chunks. */
    ax__io_spool_reserve(io, top + 1);
    io->spool_free = io->spool_next[b];
    io->spool_next[b] = AXIO_NONE;
    io->spool_nfree -= n;
    return head;
}

/* Give back the first n blocks of the chain at b (UINT32_MAX: all of it);
 * returns what is left of the chain. */
static uint32_t spool_put(ax_io_t *io, uint32_t b, uint32_t n)
{
    while (b != AXIO_NONE && n--) {
        uint32_t next = io->spool_next[b];
        io->spool_next[b] = io->spool_free;
        io->spool_free = b;
        io->spool_nfree++;
        b = next;
    }
    return b;
}

static inline char *spool_block(ax_io_t *io, uint32_t b)
{
    return io->spool + (size_t)b * AXIO_SEND_BLOCK;
}

static void op_done(ax_io_t *io, uint32_t op)
{
    ax_io_op_t *o = &io->ops[op];
    if (o->kind == AXIO_OP_SEND && o->blk != AXIO_NONE)
        o->blk = spool_put(io, o->blk, UINT32_MAX); /* completed, failed or cancelled */
    io->conns[o->conn].ops--;
    ax__io_op_free(io, op);
}

/* A new op of `kind` on conn s and the SQE to carry it, for the caller to
 * prepare: 0, -ENOMEM (no op slot) or -EBUSY (submission queue full; the op
 * is undone). */
static int op_start(ax_io_t *io, uint32_t s, uint32_t kind, uint64_t token, uint32_t *op,
                    struct io_uring_sqe **sqe)
{
    *op = op_new(io, s, kind, token);
    if (*op == AXIO_NONE)
        return -ENOMEM;
    *sqe = ax__io_sqe(io);
    if (!*sqe) {
        op_done(io, *op);
        return -EBUSY;
    }
    return 0;
}

/* Every op of a closing conn is gone: close the fd, free the slot and
 * report through a NOP carrying the close token (ax_io_tcp_close has no
 * callback in hand, the completion path does). */
static void maybe_finalize(ax_io_t *io, uint32_t s)
{
    struct ax_conn *c = &io->conns[s];
    if (!c->closing || c->ops)
        return;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->starved) {
        /* unlink from the starved chain */
        uint32_t *pp = &io->starved_head;
        while (*pp != AXIO_NONE && *pp != s)
            pp = &io->conns[*pp].next;
        if (*pp == s)
            *pp = c->next;
        c->starved = false;
    }
    bool notify = c->close_notify && !io->destroying;
    uint64_t token = c->close_token;
    conn_free(io, s);
    if (notify) {
        struct io_uring_sqe *sqe = ax__io_sqe(io);
        if (sqe) {
            io_uring_prep_nop(sqe);
            ax_io_sqe_token(sqe, token);
        } else {
            ax__io_logf(io, "close: no SQE for the close completion of a connection; its "
                        "owner will not hear about it (raise io_entries)");
        }
    }
}

static void cancel_fd(ax_io_t *io, int fd)
{
    struct io_uring_sqe *sqe = ax__io_sqe(io);
    if (!sqe)
        return;
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ALL);
    sqe->fd = fd;
    sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_IGNORE, 0));
}

/* A receive that is on but not armed (paused, or starved for buffers) has
 * no CQE coming to end it: queue a NOP op that does (on_recv_end). */
static void end_unarmed_recv(ax_io_t *io, uint32_t s)
{
    struct ax_conn *c = &io->conns[s];
    if (!c->recv_on || c->recv_op != AXIO_NONE)
        return;
    uint32_t op;
    struct io_uring_sqe *sqe;
    if (op_start(io, s, AXIO_OP_RECV_END, c->recv_token, &op, &sqe) < 0) {
        ax__io_logf(io, "close: no SQE or op record to end the paused receive of connection %u; "
                    "its consumer will not see the end of the stream (raise io_entries)",
                    conn_id(io, s));
        return;
    }
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_OP, op));
}

static void start_close(ax_io_t *io, uint32_t s)
{
    struct ax_conn *c = &io->conns[s];
    if (c->closing)
        return;
    c->closing = true;
    if (c->type == C_CONN)
        end_unarmed_recv(io, s);
    if (c->ops) {
        /* shutdown first: an in-flight send to a stalled peer fails at
         * once instead of waiting for the cancel to find it. */
        if (c->type == C_CONN)
            shutdown(c->fd, SHUT_RDWR);
        cancel_fd(io, c->fd);
    }
    maybe_finalize(io, s);
}

int ax_io_tcp_close(ax_io_t *io, uint32_t id, uint64_t token)
{
    uint32_t s;
    struct ax_conn *c = conn_get(io, id, &s);
    if (!c)
        return -EBADF;
    if (c->closing) {
        if (c->close_notify)
            return -EALREADY;
        c->close_notify = token != 0; /* closed by us (limit); report it too */
        c->close_token = token;
        return 0;
    }
    c->close_notify = token != 0; /* 0: the caller wants no completion */
    c->close_token = token;
    start_close(io, s);
    return 0;
}

void ax__tcp_cancel_all(ax_io_t *io)
{
    for (uint32_t s = 0; s < io->conns_cap; s++)
        if (io->conns[s].type != C_FREE)
            io->conns[s].closing = true; /* the ring-wide cancel follows */
}

void ax__tcp_destroy(ax_io_t *io)
{
    for (uint32_t s = 0; s < io->conns_cap; s++) {
        struct ax_conn *c = &io->conns[s];
        if (c->type != C_FREE && c->fd >= 0)
            close(c->fd);
        free(c->smsg);
        c->smsg = NULL;
    }
    free(io->conns);
    io->conns = NULL;
    io->conns_cap = io->conns_used = 0;
}

static void force_close(ax_io_t *io, uint32_t s, const char *why)
{
    struct ax_conn *c = &io->conns[s];
    ax__io_logf(io, "connection %u: %llu bytes held exceeds io_conn_max_bytes = %llu (%s); "
                "closing it. Raise io_conn_max_bytes if this load is legitimate",
                conn_id(io, s), (unsigned long long)c->held,
                (unsigned long long)io->conn_max_bytes, why);
    c->close_reason = -ENOBUFS;
    start_close(io, s);
}

/* ---- address helpers ------------------------------------------------------------ */

int ax_sockaddr_parse(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (!addr || !*addr)
        addr = "0.0.0.0";
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return 0;
    }
    return -EINVAL;
}

int ax_io_tcp_local_port(ax_io_t *io, uint32_t id)
{
    uint32_t s;
    struct ax_conn *c = conn_get(io, id, &s);
    if (!c)
        return -EBADF;
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    if (getsockname(c->fd, (struct sockaddr *)&ss, &l) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

/* ---- listen / accept ----------------------------------------------------------- */

static int arm_accept(ax_io_t *io, uint32_t s)
{
    uint32_t op;
    struct io_uring_sqe *sqe;
    int rc = op_start(io, s, AXIO_OP_ACCEPT, io->conns[s].listen_token, &op, &sqe);
    if (rc < 0)
        return rc;
    io_uring_prep_multishot_accept(sqe, io->conns[s].fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_OP, op));
    return 0;
}

int ax_io_tcp_listen(ax_io_t *io, const struct sockaddr *sa, socklen_t salen, int backlog,
                  uint64_t token, uint32_t *out_id)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, sa, salen) < 0 || listen(fd, backlog > 0 ? backlog : 511) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    uint32_t s = conn_alloc(io, fd, C_LISTEN);
    if (s == AXIO_NONE) {
        close(fd);
        return -ENOMEM;
    }
    io->conns[s].listen_token = token;
    int rc = arm_accept(io, s);
    if (rc < 0) {
        close(fd);
        conn_free(io, s);
        return rc;
    }
    /* A listening worker will receive: pay for the buffers now, not while
     * its first clients' requests wait. */
    ax__io_bufs_populate(io);
    *out_id = conn_id(io, s);
    return 0;
}

static void on_accept(ax_io_t *io, uint32_t op, const struct io_uring_cqe *cqe,
                      ax_io_complete_fn fn, void *arg)
{
    uint32_t s = io->ops[op].conn;
    uint64_t token = io->ops[op].token;
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more)
        op_done(io, op);
    struct ax_conn *l = &io->conns[s];
    if (cqe->res >= 0) {
        int fd = cqe->res;
        if (l->closing) {
            close(fd);
        } else {
            uint32_t ns = conn_alloc(io, fd, C_CONN);
            if (ns == AXIO_NONE) {
                ax__io_logf(io, "accept: connection table full (%u open); refusing fd %d",
                            io->conns_used, fd);
                close(fd);
            } else {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                fn(arg, token, (int32_t)conn_id(io, ns), AX_IO_F_MORE);
            }
        }
    } else if (!io->conns[s].closing) {
        fn(arg, token, cqe->res, AX_IO_F_MORE); /* e.g. -EMFILE: the listener goes on */
    }
    l = &io->conns[s]; /* conn_alloc may have moved the table */
    if (!more) {
        if (l->closing) {
            if (!io->destroying)
                fn(arg, token, -ECANCELED, 0);
            maybe_finalize(io, s);
        } else if (arm_accept(io, s) < 0) {
            fn(arg, token, -ENOMEM, 0);
        }
    }
}

/* ---- connect ------------------------------------------------------------------- */

int ax_io_tcp_connect(ax_io_t *io, const struct sockaddr *sa, socklen_t salen, uint64_t token)
{
    if (salen > sizeof(struct sockaddr_storage))
        return -EINVAL;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    uint32_t s = conn_alloc(io, fd, C_CONNECTING);
    if (s == AXIO_NONE) {
        close(fd);
        return -ENOMEM;
    }
    memcpy(&io->conns[s].peer, sa, salen);
    io->conns[s].peer_len = salen;
    uint32_t op;
    struct io_uring_sqe *sqe;
    if (op_start(io, s, AXIO_OP_CONNECT, token, &op, &sqe) < 0) {
        close(fd);
        conn_free(io, s);
        return -ENOMEM;
    }
    io_uring_prep_connect(sqe, fd, (struct sockaddr *)&io->conns[s].peer, salen);
    io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_OP, op));
    return 0;
}

static void on_connect(ax_io_t *io, uint32_t op, const struct io_uring_cqe *cqe,
                       ax_io_complete_fn fn, void *arg)
{
    uint32_t s = io->ops[op].conn;
    uint64_t token = io->ops[op].token;
    op_done(io, op);
    struct ax_conn *c = &io->conns[s];
    if (cqe->res == 0 && !c->closing) {
        c->type = C_CONN;
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fn(arg, token, (int32_t)conn_id(io, s), 0);
        return;
    }
    fn(arg, token, cqe->res < 0 ? cqe->res : -ECANCELED, 0);
    c->closing = true;
    c->close_notify = false;
    maybe_finalize(io, s);
}

/* ---- receive ------------------------------------------------------------------- */

static int arm_recv(ax_io_t *io, uint32_t s)
{
    struct ax_conn *c = &io->conns[s];
    uint32_t op;
    struct io_uring_sqe *sqe;
    int rc = op_start(io, s, AXIO_OP_RECV, c->recv_token, &op, &sqe);
    if (rc < 0)
        return rc;
    io_uring_prep_recv_multishot(sqe, io->conns[s].fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = AXIO_BGID;
    io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_OP, op));
    io->conns[s].recv_op = op;
    return 0;
}

int ax_io_tcp_recv_start(ax_io_t *io, uint32_t conn, uint64_t token)
{
    uint32_t s;
    struct ax_conn *c = conn_get(io, conn, &s);
    if (!c || c->type != C_CONN)
        return -EBADF;
    if (c->closing)
        return -EPIPE;
    if (c->recv_on)
        return -EALREADY;
    c->recv_token = token;
    ax__io_bufs_populate(io); /* before the first receive can fill them */
    int rc = arm_recv(io, s);
    if (rc == 0)
        io->conns[s].recv_on = true;
    return rc;
}

/* The checks pause and resume share: conn is an open connection whose
 * receive was started.  0 and *out, *slot set; or the error to return. */
static int recv_conn(ax_io_t *io, uint32_t conn, struct ax_conn **out, uint32_t *slot)
{
    struct ax_conn *c = conn_get(io, conn, slot);
    if (!c || c->type != C_CONN)
        return -EBADF;
    if (c->closing)
        return -EPIPE;
    if (!c->recv_on)
        return -EINVAL;
    *out = c;
    return 0;
}

int ax_io_tcp_recv_pause(ax_io_t *io, uint32_t conn)
{
    uint32_t s;
    struct ax_conn *c;
    int rc = recv_conn(io, conn, &c, &s);
    if (rc < 0)
        return rc;
    if (c->recv_paused)
        return 0;
    if (c->recv_op != AXIO_NONE && !c->recv_cancelling) {
        struct io_uring_sqe *sqe = ax__io_sqe(io);
        if (!sqe)
            return -EBUSY;
        io_uring_prep_cancel64(sqe, AXIO_UD(AXIO_K_OP, c->recv_op), 0);
        io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_IGNORE, 0));
        c->recv_cancelling = true;
    }
    if (c->starved) {
        /* unarmed already: leave the starved chain, resume re-arms */
        uint32_t *pp = &io->starved_head;
        while (*pp != AXIO_NONE && *pp != s)
            pp = &io->conns[*pp].next;
        if (*pp == s)
            *pp = c->next;
        c->starved = false;
        c->next = AXIO_NONE;
    }
    c->recv_paused = true;
    return 0;
}

int ax_io_tcp_recv_resume(ax_io_t *io, uint32_t conn)
{
    uint32_t s;
    struct ax_conn *c;
    int rc = recv_conn(io, conn, &c, &s);
    if (rc < 0)
        return rc;
    if (!c->recv_paused)
        return 0;
    /* Still armed (the cancel has not ended it yet): on_recv re-arms when
     * the cancelled multishot ends, seeing the pause gone. */
    if (c->recv_op == AXIO_NONE && io->buf_free == 0) {
        c->starved = true; /* armed when a buffer comes back */
        c->next = io->starved_head;
        io->starved_head = s;
    } else if (c->recv_op == AXIO_NONE) {
        rc = arm_recv(io, s);
        if (rc < 0)
            return rc; /* still paused: nothing changed */
    }
    io->conns[s].recv_paused = false;
    return 0;
}

const void *ax_io_tcp_buf(const ax_io_t *io, uint32_t bid)
{
    return bid < io->buf_count ? io->bufs + (size_t)bid * io->buf_size : NULL;
}

void ax_io_tcp_buf_release(ax_io_t *io, uint32_t bid)
{
    if (bid >= io->buf_count || io->buf_owner[bid] == AXIO_BUF_IN_RING) {
        ax__io_logf(io, "ax_io_tcp_buf_release(%u): not a buffer held by a consumer (double "
                    "release?); ignored", bid);
        return;
    }
    uint32_t s;
    struct ax_conn *c = conn_get(io, io->buf_owner[bid], &s);
    if (c && c->held >= io->buf_size)
        c->held -= io->buf_size;
    ax__io_buf_recycle(io, bid);
    /* Buffers are back: restart the receives the empty ring stopped. */
    while (io->starved_head != AXIO_NONE && io->buf_free > 0) {
        uint32_t ss = io->starved_head;
        struct ax_conn *sc = &io->conns[ss];
        io->starved_head = sc->next;
        sc->starved = false;
        sc->next = AXIO_NONE;
        if (!sc->closing && !sc->recv_paused && arm_recv(io, ss) < 0)
            force_close(io, ss, "could not re-arm its receive");
    }
}

/* Arm the receive of s again if the ring has buffers, else wait on the
 * starved chain for ax_io_tcp_buf_release. */
static void rearm_or_starve(ax_io_t *io, uint32_t s)
{
    struct ax_conn *c = &io->conns[s];
    if (io->buf_free > 0) {
        if (arm_recv(io, s) < 0)
            force_close(io, s, "could not re-arm its receive");
    } else if (!c->starved) {
        c->starved = true;
        c->next = io->starved_head;
        io->starved_head = s;
    }
}

static void on_recv(ax_io_t *io, uint32_t op, const struct io_uring_cqe *cqe,
                    ax_io_complete_fn fn, void *arg)
{
    uint32_t s = io->ops[op].conn;
    uint64_t token = io->ops[op].token;
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
        op_done(io, op);
        io->conns[s].recv_op = AXIO_NONE;
    }
    struct ax_conn *c = &io->conns[s];
    int32_t res = cqe->res;
    if (!more && c->recv_cancelling) {
        /* the multishot our pause cancelled has ended */
        c->recv_cancelling = false;
        if (!c->closing && (res == -ECANCELED || res == -ENOBUFS)) {
            if (res == -ENOBUFS)
                io->stats.enobufs++;
            if (!c->recv_paused) /* resumed meanwhile */
                rearm_or_starve(io, s);
            maybe_finalize(io, s);
            return;
        }
        /* data (handled below, not re-armed while paused), EOF, an error,
         * or the cancel of a close: the stream ends as usual */
    }
    if (res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
        uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        io->buf_free--;
        if (c->closing || io->destroying) {
            io->buf_owner[bid] = 0;
            ax__io_buf_recycle(io, bid); /* nobody wants it any more */
        } else {
            io->buf_owner[bid] = conn_id(io, s);
            c->held += io->buf_size;
            if (c->held > io->conn_max_bytes) {
                ax_io_tcp_buf_release(io, bid);
                force_close(io, s, "the consumer holds its receive buffers");
            } else {
                fn(arg, token, res, AX_IO_F_BUFFER | AX_IO_F_MORE | (bid << 16));
            }
        }
        c = &io->conns[s];
        if (!more && !c->closing && !c->recv_paused && arm_recv(io, s) < 0)
            force_close(io, s, "could not re-arm its receive");
    } else if (res == -ENOBUFS && !c->closing) {
        /* The shared ring ran dry: the multishot is over.  Re-arm now if
         * buffers came back meanwhile, else when one is released (or at
         * resume, if paused). */
        io->stats.enobufs++;
        if (!c->recv_paused) /* paused: stays unarmed until ax_io_tcp_recv_resume */
            rearm_or_starve(io, s);
    } else if (!more) {
        /* EOF (0) or an error ends the stream. */
        c->recv_on = false;
        if (!io->destroying)
            fn(arg, token, c->close_reason ? c->close_reason : (res > 0 ? -EIO : res), 0);
    }
    c = &io->conns[s];
    if (c->closing && c->recv_on && c->recv_op == AXIO_NONE) {
        /* closed (by us) on a CQE that also ended the multishot: no
         * cancelled CQE will follow, so end the stream here. */
        c->recv_on = false;
        if (!io->destroying)
            fn(arg, token, c->close_reason ? c->close_reason : -ECANCELED, 0);
    }
    maybe_finalize(io, s);
}

/* ---- send ---------------------------------------------------------------------- */

static int submit_send(ax_io_t *io, uint32_t op)
{
    ax_io_op_t *o = &io->ops[op];
    struct ax_conn *c = &io->conns[o->conn];
    struct io_uring_sqe *sqe = ax__io_sqe(io);
    if (!sqe)
        return -EBUSY;
    if (o->blk == AXIO_NONE) {
        io_uring_prep_send(sqe, c->fd, o->buf + o->done, o->len - o->done, MSG_NOSIGNAL);
    } else {
        /* The unsent part: from `done` in block blk, on through the chain,
         * at most AXIO_SEND_IOV blocks (the rest goes in the next SENDMSG). */
        struct send_msg *m = c->smsg;
        uint32_t off = o->done % AXIO_SEND_BLOCK, left = o->len - o->done, n = 0;
        for (uint32_t b = o->blk; b != AXIO_NONE && left && n < AXIO_SEND_IOV;
             b = io->spool_next[b], n++) {
            uint32_t k = AXIO_SEND_BLOCK - off < left ? AXIO_SEND_BLOCK - off : left;
            m->iov[n].iov_base = spool_block(io, b) + off;
            m->iov[n].iov_len = k;
            left -= k;
            off = 0;
        }
        memset(&m->mh, 0, sizeof m->mh);
        m->mh.msg_iov = m->iov;
        m->mh.msg_iovlen = n;
        io_uring_prep_sendmsg(sqe, c->fd, &m->mh, MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_OP, op));
    return 0;
}

/* Checks common to both sends: the connection, and its held-bytes bound. */
static int send_check(ax_io_t *io, uint32_t conn, uint32_t len, uint32_t *s)
{
    struct ax_conn *c = conn_get(io, conn, s);
    if (!c || c->type != C_CONN)
        return -EBADF;
    if (c->closing)
        return -EPIPE;
    if (c->held + len > io->conn_max_bytes) {
        c->held += len; /* for the log line */
        force_close(io, *s, "its peer does not read what is sent");
        io->conns[*s].held -= len;
        return -ENOBUFS;
    }
    return 0;
}

/* Queue op (a send of conn slot s) behind the connection's earlier sends,
 * or submit it if there is none.  On failure the op is undone. */
static int send_queue(ax_io_t *io, uint32_t s, uint32_t op)
{
    struct ax_conn *c = &io->conns[s];
    uint32_t len = io->ops[op].len;
    io->ops[op].next_free = AXIO_NONE; /* reused as the send-queue link */
    if (c->send_head == AXIO_NONE) {
        if (submit_send(io, op) < 0) {
            op_done(io, op);
            return -EBUSY;
        }
        c->send_head = op;
    } else {
        io->ops[c->send_tail].next_free = op;
    }
    c->send_tail = op;
    c->held += len;
    return 0;
}

int ax_io_tcp_send(ax_io_t *io, uint32_t conn, const void *buf, uint32_t len, uint64_t token)
{
    uint32_t s;
    int rc = send_check(io, conn, len, &s);
    if (rc < 0)
        return rc;
    uint32_t op = op_new(io, s, AXIO_OP_SEND, token);
    if (op == AXIO_NONE)
        return -ENOMEM;
    io->ops[op].buf = buf;
    io->ops[op].len = len;
    return send_queue(io, s, op);
}

int ax_io_tcp_send_copy(ax_io_t *io, uint32_t conn, const void *buf, uint32_t len,
                        uint64_t token)
{
    if (!buf || len == 0)
        return -EINVAL;
    uint32_t s;
    int rc = send_check(io, conn, len, &s);
    if (rc < 0)
        return rc;
    uint32_t n = (uint32_t)(((uint64_t)len + AXIO_SEND_BLOCK - 1) / AXIO_SEND_BLOCK);
    if (n > io->spool_nfree) {
        io->stats.spool_full++;
        return -EAGAIN;
    }
    if (!io->conns[s].smsg && !(io->conns[s].smsg = malloc(sizeof(struct send_msg))))
        return -EAGAIN; /* the caller's own copy still works */
    uint32_t op = op_new(io, s, AXIO_OP_SEND, token);
    if (op == AXIO_NONE)
        return -ENOMEM;
    uint32_t head = spool_get(io, n);
    const char *src = buf;
    uint32_t left = len;
    for (uint32_t b = head; b != AXIO_NONE; b = io->spool_next[b]) {
        uint32_t k = left < AXIO_SEND_BLOCK ? left : AXIO_SEND_BLOCK;
        memcpy(spool_block(io, b), src, k);
        src += k;
        left -= k;
    }
    io->ops[op].buf = NULL;
    io->ops[op].blk = head;
    io->ops[op].len = len;
    if ((rc = send_queue(io, s, op)) < 0)
        return rc; /* op_done gave the blocks back */
    io->stats.spool_sends++;
    return 0;
}

static void on_send(ax_io_t *io, uint32_t op, const struct io_uring_cqe *cqe,
                    ax_io_complete_fn fn, void *arg)
{
    ax_io_op_t *o = &io->ops[op];
    uint32_t s = o->conn;
    struct ax_conn *c = &io->conns[s];
    int32_t res = cqe->res;
    if (res > 0) {
        uint32_t before = o->done;
        o->done += (uint32_t)res;
        if (o->blk != AXIO_NONE) /* blocks the kernel took in full go back now */
            o->blk = spool_put(io, o->blk, o->done == o->len ? UINT32_MAX
                                       : o->done / AXIO_SEND_BLOCK - before / AXIO_SEND_BLOCK);
        if (o->done < o->len && !c->closing && submit_send(io, op) == 0) {
            io->stats.sends_resumed++;
            return; /* short send: the rest goes out before any later send */
        }
    }
    /* complete this one and every queued one if the conn is closing */
    for (;;) {
        o = &io->ops[op];
        uint32_t next = o->next_free;
        int32_t r = res;
        if (res >= 0)
            r = o->done == o->len ? (int32_t)o->len : (c->closing ? -ECANCELED : -EIO);
        c->held -= o->len;
        uint64_t token = o->token;
        c->send_head = next;
        if (next == AXIO_NONE)
            c->send_tail = AXIO_NONE;
        op_done(io, op);
        if (!io->destroying)
            fn(arg, token, r, 0);
        c = &io->conns[s];
        if (next == AXIO_NONE)
            break;
        op = next;
        if (!c->closing && submit_send(io, op) == 0)
            break;
        res = -ECANCELED;
    }
    maybe_finalize(io, s);
}

/* ---- shutdown ------------------------------------------------------------------ */

int ax_io_tcp_shutdown(ax_io_t *io, uint32_t conn, int how, uint64_t token)
{
    uint32_t s;
    struct ax_conn *c = conn_get(io, conn, &s);
    if (!c || c->type != C_CONN)
        return -EBADF;
    if (c->closing)
        return -EPIPE;
    uint32_t op;
    struct io_uring_sqe *sqe;
    int rc = op_start(io, s, AXIO_OP_SHUTDOWN, token, &op, &sqe);
    if (rc < 0)
        return rc;
    io_uring_prep_shutdown(sqe, io->conns[s].fd, how);
    io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_OP, op));
    return 0;
}

void ax__tcp_complete(ax_io_t *io, uint32_t op, const struct io_uring_cqe *cqe,
                      ax_io_complete_fn fn, void *arg)
{
    switch (io->ops[op].kind) {
    case AXIO_OP_ACCEPT:
        on_accept(io, op, cqe, fn, arg);
        break;
    case AXIO_OP_RECV:
        on_recv(io, op, cqe, fn, arg);
        break;
    case AXIO_OP_SEND:
        on_send(io, op, cqe, fn, arg);
        break;
    case AXIO_OP_CONNECT:
        on_connect(io, op, cqe, fn, arg);
        break;
    case AXIO_OP_RECV_END: {
        /* the NOP that ends a receive left unarmed at close (end_unarmed_recv) */
        uint32_t s = io->ops[op].conn;
        uint64_t token = io->ops[op].token;
        op_done(io, op);
        struct ax_conn *c = &io->conns[s];
        if (c->recv_on && c->recv_op == AXIO_NONE) {
            c->recv_on = false;
            if (!io->destroying)
                fn(arg, token, c->close_reason ? c->close_reason : -ECANCELED, 0);
        }
        maybe_finalize(io, s);
        break;
    }
    case AXIO_OP_SHUTDOWN: {
        uint32_t s = io->ops[op].conn;
        uint64_t token = io->ops[op].token;
        op_done(io, op);
        if (!io->destroying)
            fn(arg, token, cqe->res, 0);
        maybe_finalize(io, s);
        break;
    }
    default:
        ax__io_logf(io, "completion for op %u of unknown kind %u: dropped", op, io->ops[op].kind);
        break;
    }
}
