/* engine/io_glue.c - the worker's io_uring: created on the worker thread,
 * polled every loop turn, used as the park/wake primitive, torn down at
 * shutdown.  Completions become messages through ax__io_complete
 * (engine/io_api.c).
 *
 * Threading: every function runs on the owning worker's thread, except
 * ax__io_wake (any thread; see io/uring.h).
 * If io_uring cannot be set up (disabled by sysctl, seccomp, memlock), the
 * worker runs without it: parks on a futex, and the I/O API answers -ENOSYS.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/cluster_glue.h"
#include "engine/engine_internal.h"
#include <liburing.h>

#include "io/timer.h"
#include "io/uring.h"

/* Timer storage: the arena for what fits its classes, jemalloc beyond (a
 * worker with thousands of timers outgrows 4 KiB of heap). */
static void *timer_alloc(void *ctx, size_t size)
{
    ax_worker_t *w = ctx;
    if (size <= AX_ARENA_MAX_CLASS)
        return ax_arena_alloc(w->arena, size);
    return ax_large_alloc(w->eng->plan->pinned ? (int)w->eng->plan->workers[w->id].numa : -1, size);
}
static void timer_free(void *ctx, void *p, size_t size)
{
    ax_worker_t *w = ctx;
    if (size <= AX_ARENA_MAX_CLASS)
        ax_arena_free(w->arena, p);
    else
        ax_large_free(p, size);
}

void ax__io_start(ax_worker_t *w)
{
    ax_timers_alloc_t ta = {.alloc = timer_alloc, .free = timer_free, .ctx = w};
    int rc = ax_timers_create(&ta, &w->timers);
    if (rc < 0) {
        w->timers = NULL;
        fprintf(stderr, "axon: worker %u: cannot create its timers: %s\n", w->id, strerror(-rc));
    }
    const ax_config_t *c = &w->eng->cfg;
    ax_io_opts_t o = {
        .entries = c->io_entries,
        .sqpoll = c->io_sqpoll,
        .buf_count = c->io_buf_count,
        .buf_size = c->io_buf_size,
        .conn_max_bytes = c->io_conn_max_bytes,
        .send_pool_bytes = c->io_send_pool_bytes,
    };
    w->io_rc = ax_io_create(&o, &w->io);
    if (w->io_rc < 0) {
        w->io = NULL;
        fprintf(stderr, "axon: worker %u: io_uring unavailable (%s): this worker parks on a "
                        "futex and its I/O calls fail with -ENOSYS\n",
                w->id, strerror(-w->io_rc));
    }
}

void ax__io_stop(ax_worker_t *w)
{
    ax_io_destroy(w->io); /* cancels and reaps: the kernel is done with every buffer */
    w->io = NULL;
    ax_timers_destroy(w->timers);
    w->timers = NULL;
    ax__io_reqs_free(w); /* pending reads and sends own buffers (jemalloc above 4 KiB) */
}

static void on_timer(void *user, uint64_t id, uint64_t token)
{
    ax__timer_fire((ax_worker_t *)user, id, token);
}

/* Fire due timers.  With timers present the clock is read every 8th turn
 * (and always when `force`): a turn is far shorter than a millisecond. */
static uint32_t expire_timers(ax_worker_t *w, bool force)
{
    if (!w->timers || !ax_timers_count(w->timers))
        return 0;
    if (!force && (w->turn & 7))
        return 0;
    uint64_t now = ax__now_ns();
    if (ax_timers_next_deadline_ns(w->timers) > now)
        return 0;
    return ax_timers_expire(w->timers, now, on_timer, w);
}

static void on_cqe(void *arg, uint64_t token, int32_t res, uint32_t flags)
{
    if (token == (uint64_t)(uintptr_t)&ax__cluster_token_tag) {
        ax__cluster_efd_fired((ax_worker_t *)arg); /* UCP has events: the next turn progresses */
        return;
    }
    ax__io_complete((ax_worker_t *)arg, token, res, flags);
}

uint32_t ax__io_poll(ax_worker_t *w, bool timers_now)
{
    uint32_t n = expire_timers(w, timers_now);
    if (w->io) {
        int got = ax_io_poll(w->io, on_cqe, w);
        if (got > 0)
            n += (uint32_t)got;
    }
    return n;
}

void ax__io_submit(ax_worker_t *w)
{
    if (w->io) {
        int rc = ax_io_submit(w->io);
        (void)rc; /* a failed submit leaves the SQEs queued: the next poll retries */
    }
}

bool ax__io_cq_ready(ax_worker_t *w)
{
    return w->io && io_uring_cq_ready(ax_io_ring(w->io)) != 0;
}

bool ax__io_ready(ax_worker_t *w)
{
    if (w->io && io_uring_cq_ready(ax_io_ring(w->io)))
        return true;
    return w->timers && ax_timers_count(w->timers) &&
           ax_timers_next_deadline_ns(w->timers) <= ax__now_ns();
}

uint32_t ax__io_pending(ax_worker_t *w)
{
    /* The UCP event-fd poll of a cluster node is not work in flight. */
    uint32_t io = w->io ? ax_io_pending(w->io) : 0;
    if (io && ax__cluster_efd_armed(w))
        io--;
    return io + (w->timers ? ax_timers_count(w->timers) : 0);
}

void ax__io_park(ax_worker_t *w, int64_t timeout_ns)
{
    /* The wake protocol's state lives in w->parked (engine.c); a wake that
     * raced ahead of us left it at 2, so do not sleep at all. */
    if (atomic_load_explicit(&w->parked, memory_order_acquire) != 1)
        return;
    ax_io_wait(w->io, timeout_ns, on_cqe, w);
}

void ax__io_wake(struct ax_io *from, struct ax_io *target)
{
    if (ax_io_wake(from, target) < 0 && from)
        ax_io_wake(NULL, target); /* MSG_RING refused (SQ full): eventfd */
}

int64_t ax__next_timeout(ax_worker_t *w)
{
    if (!w->timers || !ax_timers_count(w->timers))
        return -1;
    uint64_t next = ax_timers_next_deadline_ns(w->timers), now = ax__now_ns();
    return next <= now ? 0 : (int64_t)(next - now);
}
