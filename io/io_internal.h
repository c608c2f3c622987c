/* io/io_internal.h - private to io/: the ax_io struct, internal user_data
 * encoding and the op-record pool shared by uring.c, tcp.c and file.c.
 *
 * Threading: everything here belongs to the ring's owner thread, except
 * `wake_pending` (written by any waker) and `efd` (written by any waker).
 * Memory: ax_io and its tables come from libc (io/ knows no arena); the
 * provided receive buffers, the buffer ring and the send pool are mmap'ed
 * at create and unmapped at destroy.
 */
#ifndef AXON_IO_INTERNAL_H
#define AXON_IO_INTERNAL_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "io/tcp.h"
#include "io/uring.h"

/* user_data layout.  A token with bit 63 clear is the caller's own (set by
 * ax_io_sqe_token) and goes straight to the callback.  With bit 63 set:
 *   bits 56..62  kind (AXIO_K_*)
 *   bits  0..55  payload: an op-record index, or a pointer (user space
 *                addresses fit in 48 bits on x86-64 and arm64). */
#define AXIO_INTERNAL (1ull << 63)
#define AXIO_UD(kind, payload) (AXIO_INTERNAL | ((uint64_t)(kind) << 56) | ((uint64_t)(payload) & ((1ull << 56) - 1)))
#define AXIO_UD_KIND(ud) ((unsigned)(((ud) >> 56) & 0x7f))
#define AXIO_UD_PAYLOAD(ud) ((ud) & ((1ull << 56) - 1))

enum {
    AXIO_K_WAKE = 1,    /* MSG_RING posted into this ring by a waker */
    AXIO_K_EFD = 2,     /* our eventfd READ completed */
    AXIO_K_MSGFAIL = 3, /* our MSG_RING to payload=(ax_io_t *) failed */
    AXIO_K_OP = 4,      /* an op record (tcp.c/file.c), payload = index */
    AXIO_K_IGNORE = 5,  /* cancel requests and the like: nothing to do */
};

/* One outstanding internal operation.  Records live in a growing array and
 * are addressed by index (the array may move on growth), free ones chained
 * through `next_free`. */
enum {
    AXIO_OP_FREE = 0,
    AXIO_OP_ACCEPT,
    AXIO_OP_RECV,
    AXIO_OP_SEND,
    AXIO_OP_CONNECT,
    AXIO_OP_SHUTDOWN,
    AXIO_OP_RECV_END, /* NOP ending a receive left unarmed at close (tcp.c) */
};

typedef struct ax_io_op {
    uint64_t token;   /* the caller's token for this op */
    uint32_t kind;    /* AXIO_OP_* */
    uint32_t conn;    /* connection slot */
    const char *buf;  /* SEND: start of the caller's buffer (NULL: a pool copy) */
    uint32_t len;     /* SEND: total bytes */
    uint32_t done;    /* SEND: bytes sent so far (short sends are resumed) */
    uint32_t next_free;
    uint32_t blk;     /* SEND from the send pool: the block holding byte `done`
                       * (at done % AXIO_SEND_BLOCK), the rest chained after it
                       * through spool_next; blocks sent in full went back
                       * already.  AXIO_NONE otherwise. */
} ax_io_op_t;

struct ax_conn; /* tcp.c */

struct ax_io {
    struct io_uring ring;
    unsigned setup_flags;
    int efd;           /* eventfd for wakes from threads without a ring */
    uint64_t efd_buf;  /* target of the armed READ */
    bool efd_armed;
    bool destroying;
    uint32_t owner_tid;

    uint32_t pending_direct; /* caller-token ops in flight (ax_io_sqe_token) */
    uint32_t ops_live;       /* op records in use */

    ax_io_op_t *ops;
    uint32_t ops_cap;
    uint32_t ops_free; /* head of the free chain, UINT32_MAX: none */

    /* provided buffer ring (bgid AXIO_BGID) */
    struct io_uring_buf_ring *br;
    char *bufs;
    uint32_t buf_count, buf_size, buf_free;
    uint32_t *buf_owner; /* conn id holding each buffer, AXIO_BUF_IN_RING otherwise */
    bool bufs_resident;  /* ax__io_bufs_populate ran (at the first listen or receive) */

    /* send pool (tcp.c, ax_io_tcp_send_copy): spool_count blocks of
     * AXIO_SEND_BLOCK bytes in one mmap, made resident a chunk at a time
     * (uring.c); free blocks and each send's blocks are chained through
     * spool_next. */
    char *spool;
    uint32_t *spool_next;
    uint32_t spool_count, spool_nfree;
    uint32_t spool_free; /* head of the free chain, AXIO_NONE: empty */
    uint32_t spool_hwm;  /* blocks [0, spool_hwm) are resident */

    /* connections and listeners (tcp.c) */
    struct ax_conn *conns;
    uint32_t conns_cap, conns_used;
    uint32_t conns_free;   /* free slot chain */
    uint32_t starved_head; /* recv re-arm waiting for buffers, chain of slots */
    uint64_t conn_max_bytes;
    void (*log)(void *user, const char *msg);
    void *log_user;

    ax_io_stats_t stats;

    /* Written by other threads: keep it off the owner's lines. */
    _Alignas(64) _Atomic uint32_t wake_pending;
};

#define AXIO_BGID 7
/* Send pool block, and the most blocks one SENDMSG names (1 MiB); a longer
 * pooled send goes out in several, in order. */
#define AXIO_SEND_BLOCK 16384u
#define AXIO_SEND_IOV 64u
#define AXIO_SPOOL_CHUNK 16u /* blocks made resident at a time: 256 KiB */
#define AXIO_BUF_IN_RING UINT32_MAX
#define AXIO_NONE UINT32_MAX

/* op records (uring.c).  ax__io_op_alloc returns AXIO_NONE when the table
 * cannot grow (-ENOMEM). */
uint32_t ax__io_op_alloc(ax_io_t *io);
void ax__io_op_free(ax_io_t *io, uint32_t idx);
/* Get an SQE, submitting once if the SQ is full. */
struct io_uring_sqe *ax__io_sqe(ax_io_t *io);
void ax__io_logf(ax_io_t *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand a buffer back to the kernel's ring. */
void ax__io_buf_recycle(ax_io_t *io, uint32_t bid);
/* Make the provided buffers resident, once: called at the first listen or
 * receive of the ring, before any receive is armed (see uring.c). */
void ax__io_bufs_populate(ax_io_t *io);
/* The send pool: mapped at create (unbacked); its first chunk made
 * resident by ax__io_bufs_populate, later chunks by ax__io_spool_reserve
 * before a send first uses a block in them; unmapped at destroy. */
int ax__io_spool_setup(ax_io_t *io, uint64_t bytes);
/* Make blocks [0, upto) resident, rounded up to a whole chunk
 * (AXIO_SPOOL_CHUNK blocks) and capped at the pool: one madvise, not a
 * fault per page. */
void ax__io_spool_reserve(ax_io_t *io, uint32_t upto);
void ax__io_spool_teardown(ax_io_t *io);

/* tcp.c */
void ax__tcp_complete(ax_io_t *io, uint32_t op, const struct io_uring_cqe *cqe,
                      ax_io_complete_fn fn, void *arg);
void ax__tcp_destroy(ax_io_t *io); /* after every op was reaped: close fds, free tables */
void ax__tcp_cancel_all(ax_io_t *io);

#endif /* AXON_IO_INTERNAL_H */
