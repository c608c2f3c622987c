/* io/uring.c - one io_uring per worker: setup, poll, park, wake, teardown.
 *
 * Threading: ax_io_create and everything else run on the owning thread; the
 * ring is SINGLE_ISSUER|DEFER_TASKRUN (created on that thread, which the
 * kernel then insists on: a submit from another thread gets -EEXIST).
 * ax_io_wake is the only entry point for other threads; it touches the
 * target's `wake_pending` word and eventfd, and its own ring when `from` is
 * given (the caller owns `from`).
 * Memory: see io_internal.h.
 *
 * Why poll can stay out of the kernel: with DEFER_TASKRUN, finished requests
 * wait as task work until the owner enters the kernel, so an empty CQ does
 * not mean "nothing finished".  We also set TASKRUN_FLAG: the kernel then
 * raises IORING_SQ_TASKRUN in the shared SQ flags when it queues such work
 * (verified on 6.18: 0 before, 4 after a peer write, 0 after GETEVENTS).  So
 * poll reads the CQ tail and the SQ flags (about 2 ns) and enters only when
 * there is something to submit, something to fetch or a CQ overflow to
 * flush.  An empty io_uring_get_events costs ~370 ns here, which is why we do
 * not simply enter every turn while operations are pending.
 *
 * Wakeups.  Each ring has a `wake_pending` word.  A waker exchanges it to 1;
 * only the waker that saw 0 sends a signal (MSG_RING from its own ring, or an
 * eventfd write), so a storm of wakes costs one CQE.  The owner exchanges it
 * back to 0 when it consumes the signal's CQE, before it returns to the
 * caller, which then re-checks its queues.  Why no wake is lost: a waker
 * publishes its work, then exchanges (acq_rel, W1).  Either it saw 0 and
 * sends a signal that stays in the CQ (or in the eventfd counter) until the
 * owner consumes it, so the next wait returns at once; or it saw 1, and a
 * signal is still unconsumed: the owner's exchange to 0 (A1) reads a value
 * at or after W1 in the word's modification order (RMWs read the latest), so
 * it synchronises with W1 and the owner's re-check sees the work.
 */
#include "io/io_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AXIO_DEFAULT_ENTRIES 256u
#define AXIO_DEFAULT_BUF_COUNT 256u
#define AXIO_DEFAULT_BUF_SIZE 16384u
#define AXIO_DEFAULT_CONN_MAX (64ull << 20)
#define AXIO_DEFAULT_SEND_POOL (4ull << 20)
/* Blocks are counted in 32 bits and the pool is one mapping: 1 GiB at most
 * (config.c bounds io_send_pool_bytes the same). */
#define AXIO_SEND_POOL_MAX (1ull << 30)

void ax__io_logf(ax_io_t *io, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (io && io->log)
        io->log(io->log_user, msg);
    else
        fprintf(stderr, "axon io: %s\n", msg);
}

static uint32_t round_pow2(uint32_t v)
{
    uint32_t p = 1;
    while (p < v && p < (1u << 15))
        p <<= 1;
    return p;
}

static void count_new_direct(ax_io_t *io);

struct io_uring_sqe *ax__io_sqe(ax_io_t *io)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
    if (!sqe) {
        /* SQ full: push what is queued, then retry once. */
        count_new_direct(io);
        io->stats.enters++;
        if (io_uring_submit(&io->ring) < 0)
            return NULL;
        sqe = io_uring_get_sqe(&io->ring);
    }
    return sqe;
}

struct io_uring_sqe *ax_io_get_sqe(ax_io_t *io) { return ax__io_sqe(io); }

void ax_io_sqe_token(struct io_uring_sqe *sqe, uint64_t token)
{
    /* A caller token must leave bit 63 clear; the owning io is not known
     * here, so the pending count is raised by the io that handed out the SQE
     * through its sq tail: see count_new_direct(). */
    io_uring_sqe_set_data64(sqe, token & ~AXIO_INTERNAL);
}

struct io_uring *ax_io_ring(ax_io_t *io) { return &io->ring; }

int ax_io_cancel(ax_io_t *io, uint64_t token)
{
    struct io_uring_sqe *sqe = ax__io_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel64(sqe, token & ~AXIO_INTERNAL, 0);
    /* The cancel's own completion is internal: nothing to report. */
    io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_IGNORE, 0));
    return 0;
}

uint32_t ax_io_pending(const ax_io_t *io) { return io->pending_direct + io->ops_live; }

void ax_io_get_stats(const ax_io_t *io, ax_io_stats_t *out)
{
    *out = io->stats;
    out->spool_blocks = io->spool_count;
    out->spool_blocks_free = io->spool_nfree;
}

/* ---- op records -------------------------------------------------------------- */

uint32_t ax__io_op_alloc(ax_io_t *io)
{
    if (io->ops_free == AXIO_NONE) {
        uint32_t ncap = io->ops_cap ? io->ops_cap * 2 : 64;
        if (ncap > (1u << 24))
            return AXIO_NONE;
        ax_io_op_t *n = realloc(io->ops, (size_t)ncap * sizeof *n);
        if (!n)
            return AXIO_NONE;
        for (uint32_t i = io->ops_cap; i < ncap; i++) {
            n[i].kind = AXIO_OP_FREE;
            n[i].next_free = (i + 1 < ncap) ? i + 1 : AXIO_NONE;
        }
        io->ops = n;
        io->ops_free = io->ops_cap;
        io->ops_cap = ncap;
    }
    uint32_t idx = io->ops_free;
    io->ops_free = io->ops[idx].next_free;
    memset(&io->ops[idx], 0, sizeof io->ops[idx]);
    io->ops_live++;
    return idx;
}

void ax__io_op_free(ax_io_t *io, uint32_t idx)
{
    io->ops[idx].kind = AXIO_OP_FREE;
    io->ops[idx].next_free = io->ops_free;
    io->ops_free = idx;
    io->ops_live--;
}

/* ---- provided buffers -------------------------------------------------------- */

void ax__io_buf_recycle(ax_io_t *io, uint32_t bid)
{
    io->buf_owner[bid] = AXIO_BUF_IN_RING;
    io_uring_buf_ring_add(io->br, io->bufs + (size_t)bid * io->buf_size, io->buf_size,
                          (unsigned short)bid, io_uring_buf_ring_mask(io->buf_count), 0);
    /* The ring tail store inside advance is a release (liburing uses
     * io_uring_smp_store_release); the kernel's acquire of the tail pairs
     * with it, so it sees the entry written just above. */
    io_uring_buf_ring_advance(io->br, 1);
    io->buf_free++;
}

static int setup_buffers(ax_io_t *io)
{
    size_t ring_bytes = (size_t)io->buf_count * sizeof(struct io_uring_buf);
    /* The ring must be page aligned: mmap (liburing 2.3 has no setup helper). */
    void *br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED)
        return -errno;
    size_t data_bytes = (size_t)io->buf_count * io->buf_size;
    void *bufs = mmap(NULL, data_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (bufs == MAP_FAILED) {
        int e = -errno;
        munmap(br, ring_bytes);
        return e;
    }
    io->buf_owner = malloc((size_t)io->buf_count * sizeof *io->buf_owner);
    if (!io->buf_owner) {
        munmap(bufs, data_bytes);
        munmap(br, ring_bytes);
        return -ENOMEM;
    }
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)br, .ring_entries = io->buf_count, .bgid = AXIO_BGID};
    int rc = io_uring_register_buf_ring(&io->ring, &reg, 0);
    if (rc < 0) {
        ax__io_logf(io, "registering a provided-buffer ring of %u x %u B failed: %s; lower "
                    "io_buf_count/io_buf_size or raise the locked-memory limit (ulimit -l)",
                    io->buf_count, io->buf_size, strerror(-rc));
        free(io->buf_owner);
        io->buf_owner = NULL;
        munmap(bufs, data_bytes);
        munmap(br, ring_bytes);
        return rc;
    }
    io->br = br;
    io->bufs = bufs;
    io_uring_buf_ring_init(io->br);
    io->buf_free = 0;
    for (uint32_t i = 0; i < io->buf_count; i++)
        ax__io_buf_recycle(io, i);
    return 0;
}

/* The ring's buffers are filled in ring order and recycled at its tail, so
 * the first buf_count receives of a worker touch every one of them: a
 * burst from a few clients that pipeline (4 x 1 MiB arriving in one poll)
 * filled the whole ring at once, and the kernel took ~1,000 first-touch
 * page faults of 4 KiB on the worker's thread, in its io_uring_enter,
 * while every other client's request waited (axon-kv, issue 10 item 17:
 * ~20 % of the ~3,700 faults before the first PING of another client was
 * answered).  So the whole ring is made resident before the first receive
 * can use it: buf_count x buf_size bytes (4 MiB by default) per worker that
 * listens or receives; a worker that never does TCP pays nothing. */
static void populate(void *p, size_t bytes)
{
    int rc = -1;
#ifdef MADV_POPULATE_WRITE
    rc = madvise(p, bytes, MADV_POPULATE_WRITE);
#endif
    if (rc != 0) {
        /* Before Linux 5.14 (EINVAL), or ENOMEM: touch the pages.  No
         * operation uses the memory yet, so no page is the kernel's. */
        long pg = sysconf(_SC_PAGESIZE);
        for (size_t off = 0; off < bytes; off += (size_t)(pg > 0 ? pg : 4096))
            ((volatile char *)p)[off] = 0;
    }
}

void ax__io_bufs_populate(ax_io_t *io)
{
    /* The send pool's first chunk too: a server's first replies follow its
     * first receives, and should not fault either. */
    ax__io_spool_reserve(io, 1);
    if (io->bufs_resident || !io->bufs)
        return;
    io->bufs_resident = true;
    populate(io->bufs, (size_t)io->buf_count * io->buf_size);
}

/* ---- send pool ----------------------------------------------------------------
 * ax_io_tcp_send_copy copies a send into blocks of this pool instead of
 * memory of its own: every send of a worker reuses the same resident pages,
 * where a fresh allocation per send (jemalloc above 4 KiB) faulted its
 * pages in on first touch and again after jemalloc's decay gave them back
 * to the kernel: ~1 fault per 4 KiB sent on a worker's first bursts, which
 * every other connection's request waited behind (issue 10 item 17).
 * Mapped at create without backing.  Made resident a chunk
 * (AXIO_SPOOL_CHUNK blocks, 256 KiB) at a time with one MADV_POPULATE_WRITE:
 * the first chunk at the worker's first listen or receive, each next one
 * just before a send first takes a block in it.  The free chain hands out
 * freed blocks first (LIFO) and the never-used ones in index order after
 * them, so the blocks ever used are always a prefix [0, spool_hwm): a
 * worker's resident pool is its high-water mark of bytes in flight,
 * rounded up to a chunk, not the whole pool (a server holding many keys
 * and sending little keeps its memory, issue 10 item 20), and a worker
 * that never does TCP pays nothing.  Never purged (nothing here calls
 * MADV_DONTNEED on it); unmapped at destroy, after the ring is gone. */
int ax__io_spool_setup(ax_io_t *io, uint64_t bytes)
{
    if (bytes > AXIO_SEND_POOL_MAX)
        bytes = AXIO_SEND_POOL_MAX;
    uint32_t n = (uint32_t)((bytes + AXIO_SEND_BLOCK - 1) / AXIO_SEND_BLOCK);
    if (n == 0)
        return 0;
    size_t len = (size_t)n * AXIO_SEND_BLOCK;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    io->spool_next = malloc((size_t)n * sizeof *io->spool_next);
    if (!io->spool_next) {
        munmap(p, len);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        io->spool_next[i] = i + 1 < n ? i + 1 : AXIO_NONE;
    io->spool = p;
    io->spool_count = io->spool_nfree = n;
    io->spool_free = 0;
    return 0;
}

void ax__io_spool_reserve(ax_io_t *io, uint32_t upto)
{
    if (!io->spool || upto <= io->spool_hwm)
        return;
    uint64_t end = ((uint64_t)upto + AXIO_SPOOL_CHUNK - 1) / AXIO_SPOOL_CHUNK * AXIO_SPOOL_CHUNK;
    if (end > io->spool_count)
        end = io->spool_count;
    populate(io->spool + (size_t)io->spool_hwm * AXIO_SEND_BLOCK,
             (size_t)(end - io->spool_hwm) * AXIO_SEND_BLOCK);
    io->spool_hwm = (uint32_t)end;
}

void ax__io_spool_teardown(ax_io_t *io)
{
    if (!io->spool)
        return;
    munmap(io->spool, (size_t)io->spool_count * AXIO_SEND_BLOCK);
    free(io->spool_next);
    io->spool = NULL;
    io->spool_next = NULL;
    io->spool_count = io->spool_nfree = io->spool_hwm = 0;
    io->spool_free = AXIO_NONE;
}

static void teardown_buffers(ax_io_t *io)
{
    if (!io->br)
        return;
    io_uring_unregister_buf_ring(&io->ring, AXIO_BGID);
    munmap(io->br, (size_t)io->buf_count * sizeof(struct io_uring_buf));
    munmap(io->bufs, (size_t)io->buf_count * io->buf_size);
    free(io->buf_owner);
    io->br = NULL;
    io->bufs = NULL;
    io->buf_owner = NULL;
}

/* ---- eventfd ----------------------------------------------------------------- */

static void arm_efd(ax_io_t *io)
{
    if (io->efd_armed || io->destroying)
        return;
    struct io_uring_sqe *sqe = ax__io_sqe(io);
    if (!sqe)
        return; /* retried by the next poll: efd_armed stays false */
    io_uring_prep_read(sqe, io->efd, &io->efd_buf, sizeof io->efd_buf, 0);
    io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_EFD, 0));
    io->efd_armed = true;
}

/* ---- create / destroy -------------------------------------------------------- */

int ax_io_create(const ax_io_opts_t *opts, ax_io_t **out)
{
    ax_io_opts_t o = {0};
    if (opts)
        o = *opts;
    *out = NULL;
    ax_io_t *io = aligned_alloc(64, (sizeof(ax_io_t) + 63) & ~(size_t)63);
    if (!io)
        return -ENOMEM;
    memset(io, 0, sizeof *io);
    io->efd = -1;
    io->ops_free = AXIO_NONE;
    io->conns_free = AXIO_NONE;
    io->starved_head = AXIO_NONE;
    io->log = o.log;
    io->log_user = o.log_user;
    io->conn_max_bytes = o.conn_max_bytes ? o.conn_max_bytes : AXIO_DEFAULT_CONN_MAX;
    io->buf_count = round_pow2(o.buf_count ? o.buf_count : AXIO_DEFAULT_BUF_COUNT);
    io->buf_size = o.buf_size ? o.buf_size : AXIO_DEFAULT_BUF_SIZE;
    io->spool_free = AXIO_NONE;
    io->owner_tid = (uint32_t)syscall(SYS_gettid);
    atomic_init(&io->wake_pending, 0);

    unsigned entries = o.entries ? o.entries : AXIO_DEFAULT_ENTRIES;
    struct io_uring_params p;
    int rc = -EINVAL;
    /* Preferred first; each fallback keeps working on older kernels. */
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    if (o.sqpoll) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_SQPOLL;
        p.sq_thread_idle = 10; /* ms of idle spinning before the SQ thread sleeps */
        rc = io_uring_queue_init_params(entries, &io->ring, &p);
        if (rc == 0)
            io->setup_flags = p.flags;
    } else {
        for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
            memset(&p, 0, sizeof p);
            p.flags = tries[i];
            rc = io_uring_queue_init_params(entries, &io->ring, &p);
            if (rc == 0) {
                io->setup_flags = p.flags;
                break;
            }
            if (rc != -EINVAL)
                break;
        }
    }
    if (rc < 0) {
        if (rc == -EPERM)
            ax__io_logf(io, "io_uring_setup refused (EPERM): io_uring is disabled for this "
                        "process; check /proc/sys/kernel/io_uring_disabled (0 allows it) or "
                        "the container's seccomp profile");
        else if (rc == -ENOMEM)
            ax__io_logf(io, "io_uring_setup with %u entries failed (ENOMEM): the locked-memory "
                        "limit is too low; raise it (ulimit -l) or lower io_entries", entries);
        else
            ax__io_logf(io, "io_uring_setup with %u entries%s failed: %s", entries,
                        o.sqpoll ? " and SQPOLL" : "", strerror(-rc));
        free(io);
        return rc;
    }

    rc = setup_buffers(io);
    if (rc < 0)
        goto fail_ring;
    rc = ax__io_spool_setup(io, o.send_pool_bytes ? o.send_pool_bytes : AXIO_DEFAULT_SEND_POOL);
    if (rc < 0) {
        ax__io_logf(io, "mapping the send pool (io_send_pool_bytes = %llu) failed: %s; lower it",
                    (unsigned long long)o.send_pool_bytes, strerror(-rc));
        goto fail_bufs;
    }
    io->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (io->efd < 0) {
        rc = -errno;
        ax__io_logf(io, "eventfd for cross-thread wakeups failed: %s", strerror(-rc));
        goto fail_bufs;
    }
    arm_efd(io);
    if (!io->efd_armed) {
        rc = -EBUSY;
        goto fail_efd;
    }
    io->stats.enters++;
    rc = io_uring_submit(&io->ring);
    if (rc < 0)
        goto fail_efd;
    *out = io;
    return 0;

fail_efd:
    close(io->efd);
fail_bufs:
    ax__io_spool_teardown(io);
    teardown_buffers(io);
fail_ring:
    io_uring_queue_exit(&io->ring);
    free(io);
    return rc;
}

static void drop_cqe(void *arg, uint64_t token, int32_t res, uint32_t flags)
{
    (void)arg, (void)token, (void)res, (void)flags;
}

static int reap(ax_io_t *io, ax_io_complete_fn fn, void *arg);

void ax_io_destroy(ax_io_t *io)
{
    if (!io)
        return;
    io->destroying = true;
    if ((uint32_t)syscall(SYS_gettid) != io->owner_tid) {
        /* Not the owner (it has exited, e.g. engine teardown from the
         * creator thread): a SINGLE_ISSUER ring refuses our submissions, so
         * skip cancel-and-reap and let the ring's close cancel everything.
         * The ring goes first, the memory its requests target after. */
        ax__tcp_destroy(io);
        io_uring_queue_exit(&io->ring);
        if (io->br) {
            munmap(io->br, (size_t)io->buf_count * sizeof(struct io_uring_buf));
            munmap(io->bufs, (size_t)io->buf_count * io->buf_size);
            free(io->buf_owner);
        }
        ax__io_spool_teardown(io);
        close(io->efd);
        free(io->ops);
        free(io);
        return;
    }
    /* Cancel every request of this ring (including the eventfd READ and
     * the multishots), then reap until nothing is outstanding.  The caller's
     * callback is gone at this point: completions are only accounted. */
    ax__tcp_cancel_all(io);
    struct io_uring_sqe *sqe = ax__io_sqe(io);
    if (sqe) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_IGNORE, 0));
    }
    for (int i = 0; i < 200 && (ax_io_pending(io) || io->efd_armed || io_uring_sq_ready(&io->ring)); i++)
        ax_io_wait(io, 10 * 1000 * 1000, drop_cqe, NULL);
    if (ax_io_pending(io) || io->efd_armed)
        ax__io_logf(io, "destroy: %u operations still pending after cancel; closing the ring "
                    "anyway (the kernel reclaims them)", ax_io_pending(io));
    reap(io, drop_cqe, NULL);
    ax__tcp_destroy(io);
    teardown_buffers(io);
    io_uring_queue_exit(&io->ring);
    ax__io_spool_teardown(io); /* after the ring: no send can still read it */
    close(io->efd);
    free(io->ops);
    free(io);
}

/* ---- completions ------------------------------------------------------------- */

static void on_wake_consumed(ax_io_t *io)
{
    io->stats.wakes_received++;
    /* A1: pairs with W1 in ax_io_wake: after this, the caller's re-check of
     * its queues sees whatever every coalesced waker published. */
    (void)atomic_exchange_explicit(&io->wake_pending, 0, memory_order_acq_rel);
}

static void efd_signal(ax_io_t *target)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: a wake is pending anyway. */
    ssize_t n = write(target->efd, &one, sizeof one);
    (void)n;
}

static void handle(ax_io_t *io, const struct io_uring_cqe *cqe, ax_io_complete_fn fn, void *arg)
{
    uint64_t ud = cqe->user_data;
    if (!(ud & AXIO_INTERNAL)) {
        if (!(cqe->flags & IORING_CQE_F_MORE) && io->pending_direct)
            io->pending_direct--;
        fn(arg, ud, cqe->res, cqe->flags);
        return;
    }
    switch (AXIO_UD_KIND(ud)) {
    case AXIO_K_WAKE:
        on_wake_consumed(io);
        break;
    case AXIO_K_EFD:
        io->efd_armed = false;
        on_wake_consumed(io);
        arm_efd(io);
        break;
    case AXIO_K_MSGFAIL:
        /* MSG_RING failed (the only CQE we get, thanks to SKIP_SUCCESS):
         * fall back to the target's eventfd so the wake is not lost. */
        if (cqe->res < 0)
            efd_signal((ax_io_t *)(uintptr_t)AXIO_UD_PAYLOAD(ud));
        break;
    case AXIO_K_OP:
        ax__tcp_complete(io, (uint32_t)AXIO_UD_PAYLOAD(ud), cqe, fn, arg);
        break;
    default:
        break;
    }
}

static int reap(ax_io_t *io, ax_io_complete_fn fn, void *arg)
{
    int handled = 0;
    struct io_uring_cqe *cqe;
    unsigned head, seen;
    /* Loop: a handler may queue SQEs and more CQEs may land meanwhile. */
    do {
        seen = 0;
        io_uring_for_each_cqe(&io->ring, head, cqe)
        {
            seen++;
            if (!(cqe->user_data & AXIO_INTERNAL) ||
                AXIO_UD_KIND(cqe->user_data) == AXIO_K_OP)
                handled++;
            handle(io, cqe, fn, arg);
        }
        io_uring_cq_advance(&io->ring, seen);
    } while (seen);
    return handled;
}

/* Count the caller-token SQEs queued since the last submit: they become
 * pending operations.  Internal SQEs are counted by their op records. */
static void count_new_direct(ax_io_t *io)
{
    struct io_uring_sq *sq = &io->ring.sq;
    for (unsigned i = sq->sqe_head; i != sq->sqe_tail; i++) {
        const struct io_uring_sqe *s = &sq->sqes[i & sq->ring_mask];
        if (!(s->user_data & AXIO_INTERNAL))
            io->pending_direct++;
    }
}

int ax_io_poll(ax_io_t *io, ax_io_complete_fn fn, void *arg)
{
    if (!io->efd_armed)
        arm_efd(io);
    bool queued = io_uring_sq_ready(&io->ring) > 0;
    unsigned kflags = IO_URING_READ_ONCE(*io->ring.sq.kflags);
    bool fetch = (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
    if (!queued && !fetch) {
        if (!io_uring_cq_ready(&io->ring)) {
            io->stats.polls_no_syscall++;
            return 0;
        }
        io->stats.polls_no_syscall++;
        return reap(io, fn, arg);
    }
    int rc;
    if (queued) {
        count_new_direct(io);
        io->stats.enters++;
        rc = fetch ? io_uring_submit_and_get_events(&io->ring) : io_uring_submit(&io->ring);
    } else {
        io->stats.enters++;
        rc = io_uring_get_events(&io->ring);
    }
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    return reap(io, fn, arg);
}

int ax_io_submit(ax_io_t *io)
{
    if (!io_uring_sq_ready(&io->ring))
        return 0;
    count_new_direct(io);
    io->stats.enters++;
    if (io->setup_flags & IORING_SETUP_SQPOLL)
        return io_uring_submit(&io->ring); /* the SQ thread runs the work anyway */
    /* io_uring_submit would add IORING_ENTER_GETEVENTS whenever the kernel
     * flags task work (IORING_SQ_TASKRUN), and so run the deferred receives
     * this call exists to leave alone: publish the SQ tail and enter with
     * no flags instead, as liburing's own submit does (__io_uring_flush_sq,
     * liburing 2.3; this ring is neither SQPOLL nor a registered ring fd). */
    struct io_uring_sq *sq = &io->ring.sq;
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        IO_URING_WRITE_ONCE(*sq->ktail, tail); /* read by the kernel in this enter */
    }
    unsigned n = tail - *sq->khead;
    long rc = syscall(__NR_io_uring_enter, io->ring.ring_fd, n, 0u, 0u, NULL, 0);
    if (rc < 0)
        return errno == EINTR || errno == EAGAIN || errno == EBUSY ? 0 : -errno;
    return (int)rc;
}

int ax_io_wait(ax_io_t *io, int64_t timeout_ns, ax_io_complete_fn fn, void *arg)
{
    if (!io->efd_armed)
        arm_efd(io);
    /* Something already there: no need to sleep. */
    if (io_uring_cq_ready(&io->ring) || timeout_ns == 0)
        return ax_io_poll(io, fn, arg);
    count_new_direct(io);
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts, *tsp = NULL;
    if (timeout_ns > 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    io->stats.enters++;
    int rc = io_uring_submit_and_wait_timeout(&io->ring, &cqe, 1, tsp, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    return reap(io, fn, arg);
}

int ax_io_wake(ax_io_t *from, ax_io_t *target)
{
    /* W1: pairs with A1 in on_wake_consumed.  Only the waker that moves the
     * word from 0 to 1 signals; the others ride on its signal. */
    if (atomic_exchange_explicit(&target->wake_pending, 1, memory_order_acq_rel))
        return 0;
    if (from && from != target) {
        struct io_uring_sqe *sqe = ax__io_sqe(from);
        if (sqe) {
            io_uring_prep_msg_ring(sqe, target->ring.ring_fd, 0, AXIO_UD(AXIO_K_WAKE, 0), 0);
            /* No CQE for us on success; a failure comes back as MSGFAIL
             * and falls back to the eventfd. */
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
            io_uring_sqe_set_data64(sqe, AXIO_UD(AXIO_K_MSGFAIL, (uintptr_t)target));
            count_new_direct(from);
            from->stats.enters++;
            int rc = io_uring_submit(&from->ring);
            if (rc >= 0) {
                from->stats.wakes_msg_ring++;
                return 0;
            }
            /* the SQE may still be queued and go out with the next submit:
             * a second wake signal is harmless. */
        }
    }
    efd_signal(target);
    return 0;
}
