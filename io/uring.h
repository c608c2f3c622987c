/* io/uring.h - one io_uring per worker: submission, completion reaping, the
 * worker's idle wait and cross-thread wakeups.
 *
 * Threading: single issuer.  ax_io_create runs on the owning (worker) thread,
 * after pinning; every other function except ax_io_wake runs there too.
 * ax_io_wake may be called from any thread.
 *
 * Knows nothing of actors: an operation carries a 64-bit token chosen by the
 * caller, and completions come back as (token, res, flags) through a
 * callback.  engine/ turns them into messages.
 *
 * INTERFACE CONTRACT used by engine/: keep these names and semantics.
 */
#ifndef AXON_IO_URING_H
#define AXON_IO_URING_H

#include <stdbool.h>
#include <stdint.h>

struct io_uring;
struct io_uring_sqe;

typedef struct ax_io ax_io_t;

typedef struct ax_io_opts {
    uint32_t entries;   /* SQ entries; 0: 256 */
    bool sqpoll;        /* IORING_SETUP_SQPOLL */
    uint32_t buf_count; /* provided buffers for multishot recv; 0: 256 */
    uint32_t buf_size;  /* 0: 16384 */
    /* Added by io/: */
    uint64_t conn_max_bytes; /* per-connection held bytes before close; 0: 64 MiB */
    uint64_t send_pool_bytes; /* resident send pool (ax_io_tcp_send_copy), rounded up
                                 to 16 KiB blocks; 0: 4 MiB */
    void (*log)(void *user, const char *msg); /* NULL: stderr */
    void *log_user;
} ax_io_opts_t;

/* On the owning thread.  0 or -errno (with a logged reason, e.g. io_uring
 * disabled by /proc/sys/kernel/io_uring_disabled, or RLIMIT_MEMLOCK). */
int ax_io_create(const ax_io_opts_t *opts, ax_io_t **out);
/* Cancel what is pending, reap it, free everything.  NULL: does nothing.
 * Completions found meanwhile are not reported.  From a thread other than
 * the owner (allowed once the owner stopped using the ring), the ring's
 * close cancels the requests instead: no reap, same cleanup. */
void ax_io_destroy(ax_io_t *io);

/* Called once per completion.  Tokens with the top bit set are internal
 * (wakeups) and never reach the callback. */
typedef void (*ax_io_complete_fn)(void *arg, uint64_t token, int32_t res, uint32_t flags);

/* Submit queued SQEs and handle every completion already there; never
 * blocks, and makes no syscall when nothing was queued and no completion is
 * pending.  Returns completions handled (>= 0) or -errno. */
int ax_io_poll(ax_io_t *io, ax_io_complete_fn fn, void *arg);

/* Submit queued SQEs and nothing else: no completion is fetched or
 * handled, and deferred task work (the receives of a DEFER_TASKRUN ring)
 * does not run, so no new input is taken in.  The engine calls it on the
 * turns it does not poll (engine.c, "io polling"), so that sends queued by
 * behaviours go out at once.  No syscall when nothing is queued.  Returns
 * SQEs submitted (>= 0) or -errno. */
int ax_io_submit(ax_io_t *io);

/* Park: submit, then block until a completion arrives (a wakeup counts), or
 * timeout_ns passes (-1: no timeout).  Completions found are handled through
 * fn before returning.  Returns completions handled or -errno. */
int ax_io_wait(ax_io_t *io, int64_t timeout_ns, ax_io_complete_fn fn, void *arg);

/* Wake the owner of `target` out of ax_io_wait (or make its next wait return
 * at once).  `from` is the caller's own ring if it has one (then MSG_RING,
 * no extra syscall on the target), else NULL (eventfd write).  Any thread.
 * Returns 0 or -errno. */
int ax_io_wake(ax_io_t *from, ax_io_t *target);

/* Ask the kernel to cancel the caller-token operation `token` (a file read
 * or write still waiting, e.g. on a pipe).  Its completion still comes,
 * with -ECANCELED (or its result if it finished first).  Owner thread.
 * 0, or -EBUSY (no SQE even after a submit). */
int ax_io_cancel(ax_io_t *io, uint64_t token);

/* Operations still pending (timers, sockets, file ops); 0 means quiet. */
uint32_t ax_io_pending(const ax_io_t *io);

/* Counters, owner thread (plain reads; a test or the engine's stats). */
typedef struct ax_io_stats {
    uint64_t enters;           /* io_uring_enter calls made by this io */
    uint64_t polls_no_syscall; /* ax_io_poll calls that stayed in user space */
    uint64_t wakes_received;   /* wake signals consumed (MSG_RING or eventfd) */
    uint64_t wakes_msg_ring;   /* wakes this ring sent with MSG_RING */
    uint64_t enobufs;          /* multishot recvs stopped by an empty buffer ring */
    uint64_t spool_sends;      /* ax_io_tcp_send_copy calls served by the send pool */
    uint64_t spool_full;       /* ... refused with -EAGAIN: not enough free blocks */
    uint64_t sends_resumed;    /* short sends whose rest was submitted again */
    uint32_t spool_blocks;     /* blocks in the send pool (0: none) */
    uint32_t spool_blocks_free;
} ax_io_stats_t;
void ax_io_get_stats(const ax_io_t *io, ax_io_stats_t *out);

/* An SQE to fill (owner thread), or NULL when the SQ is full even after a
 * submit.  The caller sets user_data to its token via ax_io_sqe_token. */
struct io_uring_sqe *ax_io_get_sqe(ax_io_t *io);
void ax_io_sqe_token(struct io_uring_sqe *sqe, uint64_t token); /* bit 63 is cleared */
/* The underlying ring, for io/ internals (tcp.c, file.c, timer). */
struct io_uring *ax_io_ring(ax_io_t *io);

#endif /* AXON_IO_URING_H */
