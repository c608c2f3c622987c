/* engine/engine.c - engine lifecycle, worker threads, the worker loop,
 * parking and wakeups, quiescence, shutdown.
 *
 * Threading: ax_engine_create/start/wait/destroy on the creating thread;
 * ax_engine_stop/stop_when_idle from any thread; each worker's loop on its
 * own thread.  The cross-thread protocols are below, each with its proof.
 *
 * Memory: per worker, an arena (alloc/), an actor table (its own mapping,
 * bound to the worker's node when pinned) and its inbound rings (one mapping
 * per receiver, bound to the receiver's node); all freed at destroy.
 *
 * ---- Park / wake (no lost wakeup) -------------------------------------------------
 *   Parking worker W                    Sender S (flush, end of its turn)
 *     store W.parked = 1 (relaxed)        R1: commit ring slots (release)
 *     F1: fence(seq_cst)                  F2: fence(seq_cst)
 *     re-check every inbound ring,        if load W.parked == 1 and
 *       the inbox and the io ring           CAS(W.parked, 1 -> 2): wake W
 *     nothing: sleep while parked == 1
 *   F1 and F2 are both in the single total order S of seq_cst operations.  If
 *   F1 precedes F2, S's load of parked (after F2) sees 1 (or W's later store
 *   of 0, meaning W is already awake); if F2 precedes F1, W's re-check (after
 *   F1) sees the new slot.  Either W sees the message or S wakes W.  The
 *   CAS makes one sender pay the syscall; the sleep is on `parked` itself
 *   (futex value 1), so a wake that lands before the sleep makes it return.
 *   The fence is paid once per loop turn that published to another worker
 *   (one per batch), never per message: ax_send itself has no fence.
 *
 * ---- Doorbell (which rings to visit) ----------------------------------------------
 *   With many workers, a receiver visits only the rings whose bit is set in
 *   its bell words (set by senders with fetch_or(release) after publishing,
 *   cleared by the receiver with exchange(acquire)), plus the rings it left
 *   non-empty after a batch.  The bell is a hint: a bit a sender saw already
 *   set may be cleared by the receiver just before the sender's slot becomes
 *   visible, so every 64th turn and before every park the receiver scans all
 *   inbound rings (the park path is the F1/F2 proof above).  A message is
 *   therefore never stranded; at worst it waits 64 turns.
 *
 * ---- Quiescence (ax_engine_stop_when_idle) ------------------------------------------
 *   Each worker counts messages it enqueued (sent) and consumed (handled) and
 *   publishes both before parking; external sends count in ext_sent before
 *   they are pushed.  The engine is quiet when, between two reads of the
 *   `activity` counter (bumped by every worker leaving a park) that agree,
 *   every worker is parked, no io operation is pending, and the sums of sent
 *   and handled agree (a message in flight is sent but not handled).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_internal.h"
#include "topology/bind.h"

static _Thread_local char last_error[512];

const char *ax_engine_last_error(void) { return last_error; }

static void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

uint64_t ax__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- futex park (used when the worker has no io ring) ------------------------------ */

static void futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

static void futex_wake_n(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr) { futex_wake_n(addr, 1); }

/* Wake worker t if it is parked.  `from` is the calling worker or NULL. */
void ax__wake(ax_engine_t *eng, ax_worker_t *from, uint32_t t)
{
    ax_worker_t *tw = eng->w[t];
    uint32_t expect = 1;
    if (atomic_load_explicit(&tw->parked, memory_order_relaxed) != 1)
        return;
    if (!atomic_compare_exchange_strong_explicit(&tw->parked, &expect, 2, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    AX_TRACE_WAKE(from ? from->id : UINT32_MAX, t);
    if (from)
        atomic_fetch_add_explicit(&from->st.wakes_sent, 1, memory_order_relaxed);
    if (tw->io)
        ax__io_wake(from ? from->io : NULL, tw->io);
    futex_wake(&tw->parked);
}

/* ---- flush: publish rings, ring doorbells, wake parked receivers ----------------- */

void ax__flush(ax_worker_t *w)
{
    uint32_t nd = w->ndirty;
    if (!nd)
        return;
    ax_engine_t *eng = w->eng;
    bool any = false;
    for (uint32_t i = 0; i < nd; i++) {
        uint32_t d = w->dirty[i];
        w->is_dirty[d] = 0;
        any = true; /* each slot was published by its own commit (R1) */
        if (w->use_bell) {
            _Atomic uint64_t *word = &eng->w[d]->bell[w->id / 64];
            uint64_t bit = 1ull << (w->id % 64);
            /* R3: the slot commits (R1) are visible to a receiver whose
             * exchange (A3 in drain_rings) reads this bit. */
            if (!(atomic_load_explicit(word, memory_order_relaxed) & bit))
                atomic_fetch_or_explicit(word, bit, memory_order_release);
        }
    }
    w->ndirty = 0;
    /* Counted here, once per turn, not per send (ax__msg_slot_try). */
    AX_STAT_ADD(w->st.msgs_sent_remote, w->sent_remote);
    w->sent_remote = 0;
    if (!any)
        return;
    /* F2: pairs with F1 in park(); see the file comment. */
    AX_FENCE_SEQ_CST(eng);
    for (uint32_t i = 0; i < nd; i++)
        ax__wake(eng, w, w->dirty[i]);
}

/* ---- the worker loop ---------------------------------------------------------------- */

/* A batch's count, less the messages of it that ax__uncount_source took
 * back (system messages and dead letters are not handled messages).  The
 * take-back waits for the batch so a counter read meanwhile never runs below
 * zero; one store per batch publishes both.  The difference is taken modulo
 * 2^64: it may be "negative" when the batch took back early mail counted in
 * an earlier batch of the same source, and the sum stays exact. */
static inline uint64_t batch_count(ax_worker_t *w, uint32_t n)
{
    uint64_t c = (uint64_t)n - w->batch_unc;
    w->batch_unc = 0;
    return c;
}

/* The drain loops are written once, always inlined with `traced` constant,
 * and called through a branch on the dispatch probes' semaphores, read once
 * per batch (see ax__dispatch_batch). */
__attribute__((always_inline)) static inline uint32_t drain_local_loop(ax_worker_t *w, const bool tr)
{
    uint32_t n = 0;
    while (n < w->batch && w->lq_head != w->lq_tail) {
        ax__dispatch_batch(w, &w->lq[w->lq_head & w->lq_mask], tr);
        w->lq_head++;
        if (__builtin_expect(w->lq_old != NULL, 0))
            ax__lq_release_old(w); /* the behaviour grew the FIFO */
        n++;
    }
    return n;
}

static uint32_t drain_local(ax_worker_t *w)
{
    uint32_t n;
    w->cur_src = w->batch_src = AX_SRC_LOCAL;
    /* A growth while dispatching from a ring or the inbox (or posting an io
     * completion) left the old buffer here; nothing points into it.  It
     * must go before we dispatch in place, so that a growth during one of
     * our dispatches keeps exactly the buffer that dispatch reads from. */
    if (__builtin_expect(w->lq_old != NULL, 0))
        ax__lq_release_old(w);
    n = __builtin_expect(ax__trace_dispatch_on(), 0) ? drain_local_loop(w, true)
                                                     : drain_local_loop(w, false);
    if (n) { /* counted per batch, not per message */
        ax__run_clear(w);
        w->handled += n;
        AX_STAT_ADD(w->st.msgs_local, batch_count(w, n));
    }
    w->batch_src = AX_SRC_NONE;
    return n;
}

__attribute__((always_inline)) static inline uint32_t drain_ring_loop(ax_worker_t *w, ax_ring_t *r,
                                                                      const bool tr)
{
    uint32_t n = 0;
    ax_msg_t *m;
    while (n < w->batch && (m = ax_ring_peek(r))) {
        ax__dispatch_batch(w, m, tr);
        ax_ring_advance(r);
        n++;
    }
    return n;
}

__attribute__((always_inline)) static inline uint32_t drain_ring(ax_worker_t *w, uint32_t s)
{
    ax_ring_t *r = w->in[s];
    uint32_t n;
    w->cur_src = w->batch_src = s;
    n = __builtin_expect(ax__trace_dispatch_on(), 0) ? drain_ring_loop(w, r, true)
                                                     : drain_ring_loop(w, r, false);
    if (n) {
        ax__run_clear(w);
        ax_ring_release(r); /* R2 inside */
        w->handled += n;
        uint64_t c = batch_count(w, n);
        AX_STAT_ADD(w->st.msgs_remote, c);
        AX_STAT_ADD(w->st.from[s], c);
    }
    w->batch_src = AX_SRC_NONE;
    return n;
}

static uint32_t drain_rings(ax_worker_t *w)
{
    uint32_t n = 0, N = w->nworkers;
    if (N == 1)
        return 0;
    if (!w->use_bell || (w->turn & 63) == 0) {
        for (uint32_t s = 0; s < N; s++)
            if (s != w->id)
                n += drain_ring(w, s);
        return n;
    }
    for (uint32_t k = 0; k < w->nwords; k++) {
        uint64_t bits = w->pending[k];
        if (atomic_load_explicit(&w->bell[k], memory_order_relaxed))
            /* A3: pairs with R3 in ax__flush: the slots committed before
             * the bits we take are visible. */
            bits |= atomic_exchange_explicit(&w->bell[k], 0, memory_order_acquire);
        w->pending[k] = 0;
        while (bits) {
            uint32_t s = k * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            uint32_t got = drain_ring(w, s);
            n += got;
            if (got == w->batch)
                w->pending[k] |= 1ull << (s % 64);
        }
    }
    return n;
}

static uint32_t drain_inbox(ax_worker_t *w)
{
    uint32_t n = 0;
    ax_inbox_node_t *node;
    w->cur_src = w->batch_src = AX_SRC_EXTERNAL;
    while (n < w->batch && (node = ax__inbox_pop(w))) {
        ax__dispatch(w, &node->msg); /* rare: the out-of-line dispatch will do */
        ax__inbox_node_free(node);
        n++;
    }
    if (n) {
        w->handled += n;
        AX_STAT_ADD(w->st.msgs_external, batch_count(w, n));
    }
    w->batch_src = AX_SRC_NONE;
    return n;
}

/* Move overflowed messages into their rings, oldest first. */
static void drain_overflow(ax_worker_t *w)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < w->novf; i++) {
        uint32_t d = w->ovf_list[i];
        ax_mq_t *q = &w->ovf[d];
        ax_msg_t *src, *dst;
        uint8_t stamp;
        while ((src = ax_mq_peek(q)) && (dst = ax_ring_reserve(w->out[d], &stamp))) {
            dst->to = src->to;
            dst->from = src->from;
            dst->payload = src->payload;
            ax_msg_commit(dst, src->type, src->len, src->flags, stamp); /* R1 */
            ax_mq_pop(q, w->arena);
            if (!w->is_dirty[d]) {
                w->is_dirty[d] = 1;
                w->dirty[w->ndirty++] = d;
            }
        }
        if (q->count)
            w->ovf_list[kept++] = d;
    }
    w->novf = kept;
}

static void publish_arena_stats(ax_worker_t *w);

/* The load figure AX_ON_LEAST_LOADED reads (relaxed: a hint). */
static void publish_load(ax_worker_t *w)
{
    uint64_t live = atomic_load_explicit(&w->st.spawned, memory_order_relaxed) -
                    atomic_load_explicit(&w->st.stopped, memory_order_relaxed);
    atomic_store_explicit(&w->load, live + ax__lq_count(w), memory_order_relaxed);
}

/* One turn.  The inbound rings come first and the housekeeping last, so
 * that in a cross-worker exchange the path from noticing a message to
 * storing its reply (which is visible at its commit, R1) holds only the
 * turn counter, the ring drain and the dispatch: the local FIFO, the flush
 * (which rings the doorbell, when doorbells are on), the inbox, io and the
 * arena's remote-free reclaim follow while the reply travels.  (The order of sources within a turn promises nothing: each
 * pair of actors uses one channel.  A reclaim at the end of a turn serves
 * the next one; an allocation that finds its class empty reclaims itself,
 * alloc/arena.c.) */
uint32_t ax__run_turn(ax_worker_t *w)
{
    uint32_t n;
    w->turn++;
    /* The watchdog's one store per turn (engine/watchdog.c). */
    atomic_store_explicit(&w->wd_turn, w->turn, memory_order_relaxed);
    if (__builtin_expect(w->novf != 0, 0))
        drain_overflow(w); /* before anything new is sent this turn */
    n = drain_rings(w);
    n += drain_local(w);
    /* Publish what the behaviours sent (doorbells, wakes) before the
     * inbox and io: with doorbells on, a reply is seen only from here. */
    if (w->ndirty)
        ax__flush(w);
    n += drain_inbox(w);
    n += ax__io_poll(w); /* io completions and due timers become local messages */
    if (w->novf)
        drain_overflow(w);
    if (w->ndirty) /* what the inbox's behaviours, io and the overflow put in rings */
        ax__flush(w);
    ax_arena_reclaim(w->arena);
    ax_arena_flush(w->arena);
    if (__builtin_expect((w->turn & 255) == 0, 0)) {
        publish_load(w);
        if ((w->turn & 4095) == 0)
            publish_arena_stats(w); /* a worker that never parks still reports */
    }
    return n;
}

/* Anything to do?  Looks at every source, not only the doorbell hints. */
static bool has_work(ax_worker_t *w)
{
    if (ax__lq_count(w) || ax__inbox_nonempty(w))
        return true;
    for (uint32_t s = 0; s < w->nworkers; s++)
        if (s != w->id && ax_ring_c_nonempty(w->in[s]))
            return true;
    return ax__io_ready(w);
}

/* Cheap "is anything waiting?" for the idle spin: the local FIFO, the
 * doorbell words (or, without bells, the head slot of every inbound ring),
 * the inbox and the io completion queue.  No side effects.  Due timers are
 * not looked at: the spin runs a full turn every 64 checks anyway. */
static bool quick_check(ax_worker_t *w)
{
    if (ax__lq_count(w))
        return true;
    if (w->use_bell) {
        for (uint32_t k = 0; k < w->nwords; k++)
            if (w->pending[k] | atomic_load_explicit(&w->bell[k], memory_order_relaxed))
                return true;
    } else {
        for (uint32_t s = 0; s < w->nworkers; s++)
            if (s != w->id && ax_ring_peek(w->in[s]))
                return true;
    }
    return ax__inbox_nonempty(w) || ax__io_cq_ready(w);
}

static void publish_arena_stats(ax_worker_t *w)
{
    ax_arena_stats_t as;
    ax_arena_get_stats(w->arena, &as);
    atomic_store_explicit(&w->st.arena_used, as.used_bytes, memory_order_relaxed);
    atomic_store_explicit(&w->st.arena_failed, as.failed_allocs, memory_order_relaxed);
    atomic_store_explicit(&w->st.arena_hwm, as.high_water_bytes, memory_order_relaxed);
    atomic_store_explicit(&w->st.arena_remote_in, as.remote_frees_received, memory_order_relaxed);
    atomic_store_explicit(&w->st.arena_remote_out, as.remote_frees_sent, memory_order_relaxed);
    for (uint32_t c = 0; c < AX_ARENA_NCLASSES; c++)
        atomic_store_explicit(&w->st.arena_class[c], as.class_in_use[c], memory_order_relaxed);
}

static void publish_counters(ax_worker_t *w)
{
    /* Release: pairs with the acquire loads in ax__try_quiesce(). */
    atomic_store_explicit(&w->pub_sent, w->sent, memory_order_release);
    atomic_store_explicit(&w->pub_handled, w->handled, memory_order_release);
    atomic_store_explicit(&w->pub_io_pending, ax__io_pending(w), memory_order_release);
    publish_arena_stats(w);
    publish_load(w);
}

bool ax__try_quiesce(ax_engine_t *eng)
{
    uint64_t e1 = atomic_load_explicit(&eng->activity, memory_order_seq_cst);
    if (atomic_load_explicit(&eng->idle_workers, memory_order_seq_cst) != eng->n)
        return false;
    uint64_t sent = atomic_load_explicit(&eng->ext_sent, memory_order_acquire), handled = 0;
    for (uint32_t i = 0; i < eng->n; i++) {
        ax_worker_t *w = eng->w[i];
        sent += atomic_load_explicit(&w->pub_sent, memory_order_acquire);
        handled += atomic_load_explicit(&w->pub_handled, memory_order_acquire);
        if (atomic_load_explicit(&w->pub_io_pending, memory_order_acquire))
            return false;
    }
    /* An outside call in flight may still push a message: refuse.  If it
     * fails instead, it runs this check again itself (ext_abort in
     * actor.c: its seq_cst decrement then load of stop_when_idle pairs with
     * the store of stop_when_idle and this seq_cst load). */
    if (atomic_load_explicit(&eng->ext_inflight, memory_order_seq_cst))
        return false;
    uint64_t e2 = atomic_load_explicit(&eng->activity, memory_order_seq_cst);
    if (e1 != e2 || sent != handled)
        return false;
    ax_engine_stop(eng);
    return true;
}

/* ---- worker hooks (ax_engine_add_worker_hooks) ---------------------------------------- */

enum { HOOK_START, HOOK_STOP, HOOK_TURN, HOOK_PARK, HOOK_UNPARK };

/* Out of line and cold: with no hook set the loop pays only the branch on
 * eng->nhooks, which is constant while workers run. */
__attribute__((noinline, cold)) static void run_hooks(ax_worker_t *w, int kind)
{
    ax_engine_t *eng = w->eng;
    for (uint32_t i = 0; i < eng->nhooks; i++) {
        const ax_worker_hooks_t *h = &eng->hooks[i];
        void (*fn)(void *, uint32_t) = kind == HOOK_START  ? h->on_start
                                       : kind == HOOK_STOP ? h->on_stop
                                       : kind == HOOK_TURN ? h->on_turn
                                       : kind == HOOK_PARK ? h->on_park
                                                           : h->on_unpark;
        if (fn)
            fn(h->user, w->id);
    }
}
#define RUN_HOOKS(w, kind) \
    do { \
        if (__builtin_expect((w)->eng->nhooks != 0, 0)) \
            run_hooks((w), (kind)); \
    } while (0)

int ax_engine_add_worker_hooks(ax_engine_t *eng, const ax_worker_hooks_t *hooks)
{
    if (!eng || !hooks || hooks->size != sizeof(ax_worker_hooks_t))
        return -EINVAL;
    if (atomic_load_explicit(&eng->started, memory_order_acquire))
        return -EALREADY;
    if (eng->nhooks >= AX_WORKER_HOOKS_MAX)
        return -ENOSPC;
    eng->hooks[eng->nhooks++] = *hooks;
    return 0;
}

static void park(ax_worker_t *w, int64_t timeout_ns)
{
    ax_engine_t *eng = w->eng;
    publish_counters(w);
    atomic_store_explicit(&w->parked, 1, memory_order_relaxed);
    /* F1: pairs with F2 in ax__flush and F3 in ax_engine_send; see top. */
    AX_FENCE_SEQ_CST(eng);
    if (has_work(w) || atomic_load_explicit(&eng->stopping, memory_order_relaxed)) {
        atomic_store_explicit(&w->parked, 0, memory_order_relaxed);
        return;
    }
    uint32_t idle = atomic_fetch_add_explicit(&eng->idle_workers, 1, memory_order_seq_cst) + 1;
    if (idle == eng->n && atomic_load_explicit(&eng->stop_when_idle, memory_order_seq_cst))
        ax__try_quiesce(eng);

    AX_TRACE_PARK(w->id);
    atomic_fetch_add_explicit(&w->st.parks, 1, memory_order_relaxed);
    uint64_t t0 = ax__now_ns();
    RUN_HOOKS(w, HOOK_PARK);
    if (w->io)
        ax__io_park(w, timeout_ns); /* returns on a wake, a completion or the timeout */
    else if (atomic_load_explicit(&w->parked, memory_order_acquire) == 1)
        futex_wait(&w->parked, 1, timeout_ns);
    RUN_HOOKS(w, HOOK_UNPARK);
    atomic_fetch_add_explicit(&w->st.parked_ns, ax__now_ns() - t0, memory_order_relaxed);

    atomic_fetch_sub_explicit(&eng->idle_workers, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&eng->activity, 1, memory_order_seq_cst);
    atomic_store_explicit(&w->parked, 0, memory_order_relaxed);
}

static void worker_loop(ax_worker_t *w)
{
    ax_engine_t *eng = w->eng;
    uint64_t idle_since = 0;
    for (;;) {
        uint32_t did = ax__run_turn(w);
        RUN_HOOKS(w, HOOK_TURN); /* a quiescent point: no behaviour runs */
        if (did && __builtin_expect(idle_since != 0, 0)) {
            atomic_fetch_add_explicit(&w->st.idle_ns, ax__now_ns() - idle_since,
                                      memory_order_relaxed);
            idle_since = 0;
        }
        /* Every turn, not only idle ones: actors that keep each other busy
         * never leave a turn empty, and a stop must still take effect.
         * What is still queued is counted as dropped_at_stop. */
        if (atomic_load_explicit(&eng->stopping, memory_order_acquire))
            break;
        /* Between turns, spin on quick_check (a few loads) rather than on
         * full turns, so a message is noticed within nanoseconds of landing;
         * after 64 empty checks run a full turn anyway (timers, remote
         * frees, overflow).  No `pause` between checks: it costs ~33 ns on
         * this CPU (half a cache-line transfer) and the engine only spins on
         * a core of its own (pinned, not oversubscribed); a compiler barrier
         * keeps the loads in the loop. */
        if (eng->spin_ns) {
            bool found = false;
            for (uint32_t i = 0; i < 64 && !(found = quick_check(w)); i++)
                __asm__ volatile("" ::: "memory");
            if (found || did)
                continue;
            /* Idle.  A clock read costs more than a turn that finds nothing,
             * and a worker in a message exchange goes idle between every two
             * messages, so the idle period (and idle_ns) starts only after
             * an empty turn and 64 empty checks: shorter lulls are neither
             * timed nor counted. */
            uint64_t now = ax__now_ns();
            if (!idle_since)
                idle_since = now;
            if ((int64_t)(now - idle_since) < eng->spin_ns)
                continue;
            atomic_fetch_add_explicit(&w->st.idle_ns, now - idle_since, memory_order_relaxed);
            idle_since = 0;
        } else if (did) {
            continue;
        }
        /* Overflow waiting for ring space: nobody will wake us for that, so
         * sleep briefly instead of indefinitely. */
        int64_t timeout = w->novf ? 50000 : ax__next_timeout(w);
        park(w, timeout);
    }
}

static void *worker_main(void *arg)
{
    ax_worker_t *w = arg;
    ax_engine_t *eng = w->eng;
    char name[16];
    snprintf(name, sizeof name, "axon-w%u", w->id);
    pthread_setname_np(pthread_self(), name); /* readable in perf, top -H, gdb */
    if (eng->plan->pinned) {
        const ax_plan_worker_t *pw = &eng->plan->workers[w->id];
        w->bind_rc = ax_topo_bind_thread(eng->topo, pw->pu, w->bind_err, sizeof w->bind_err);
    }
    if (!w->bind_rc)
        ax__io_start(w); /* io_uring is single-issuer: created on this thread */
    ax__fault_worker_enter(w); /* alternate signal stack, thread-local for the report */
    /* R5: bind_rc and io are visible to the creator once it sees `ready`
     * count us.  Pairs with A5 in ax_engine_start. */
    atomic_fetch_add_explicit(&eng->ready, 1, memory_order_release);
    futex_wake(&eng->ready);
    uint32_t st;
    /* A6: pairs with R6 in ax_engine_start. */
    while ((st = atomic_load_explicit(&eng->start_state, memory_order_acquire)) == 0)
        futex_wait(&eng->start_state, 0, -1);
    if (st == 1) {
        /* Before the shutdown too: actor fini may use what on_start set up. */
        RUN_HOOKS(w, HOOK_START);
        /* Stopped before start: not one turn; what is queued is counted
         * as dropped_at_stop by the shutdown.  Acquire: pairs with the
         * seq_cst exchange in ax_engine_stop, as the loop's own check. */
        if (!atomic_load_explicit(&eng->stopping, memory_order_acquire))
            worker_loop(w);
        ax__worker_shutdown(w);
        RUN_HOOKS(w, HOOK_STOP);
    } else {
        ax__io_stop(w); /* the start was called off: nothing ran */
    }
    ax__fault_worker_leave(w);
    return NULL;
}

/* ---- create ------------------------------------------------------------------------- */

static int alloc_rings(ax_engine_t *eng)
{
    uint32_t N = eng->n, cap = eng->plan->ring_slots;
    if (N < 2)
        return 0;
    size_t per_ring = sizeof(ax_ring_t) + (size_t)cap * sizeof(ax_msg_t);
    size_t per_recv = ((per_ring * (N - 1)) + 4095) & ~(size_t)4095;
    eng->ring_mem_len = per_recv * N;
    void *mem = mmap(NULL, eng->ring_mem_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        set_error("engine: cannot map %zu bytes for the ring mesh (%u workers x %u slots): %s; "
                  "lower scheduler.ring_slots",
                  eng->ring_mem_len, N, cap, strerror(errno));
        return -ENOMEM;
    }
    eng->ring_mem = mem;
    for (uint32_t r = 0; r < N; r++) {
        char *base = (char *)mem + per_recv * r;
        if (eng->plan->pinned) {
            char err[256];
            /* Rings live on the receiver's node: the receiver polls them on
             * every turn, the sender writes each line once per lap. */
            int rc = ax_topo_bind_memory(eng->topo, base, per_recv, eng->plan->workers[r].numa, err,
                                         sizeof err);
            if (rc < 0) {
                set_error("engine: binding worker %u's rings: %s", r, err);
                return rc;
            }
        }
        uint32_t k = 0;
        for (uint32_t s = 0; s < N; s++) {
            if (s == r)
                continue;
            ax_ring_t *ring = (ax_ring_t *)(base + per_ring * k++);
            ax_ring_init(ring, (ax_msg_t *)(ring + 1), cap);
            eng->w[r]->in[s] = ring;
            eng->w[s]->out[r] = ring;
        }
    }
    return 0;
}

static void *xcalloc_aligned(size_t n, size_t size)
{
    size_t bytes = (n * size + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p)
        memset(p, 0, bytes ? bytes : 64);
    return p;
}

static int worker_create(ax_engine_t *eng, uint32_t i, ax_worker_t **out)
{
    uint32_t N = eng->n;
    ax_worker_t *w = xcalloc_aligned(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    *out = w;
    w->eng = eng;
    w->id = i;
    w->nworkers = N;
    w->send_nw = N;
    w->batch_src = AX_SRC_NONE; /* no batch in flight until the first drain */
    w->arena = ax_arena_group_get(eng->arenas, i);
    w->batch = ax_config_batch(&eng->cfg);
    w->nwords = (N + 63) / 64;
    w->use_bell = eng->use_bell;
    /* Every per-worker array gets cache lines of its own: these are tiny
     * (N bytes to N pointers) and plain calloc packs one worker's next to
     * another's, so writing is_dirty[d] on every send bounced a line
     * between the two cores (83% of the send path's samples in a 2-worker
     * ping-pong). */
    w->out = xcalloc_aligned(N, sizeof *w->out);
    w->in = xcalloc_aligned(N, sizeof *w->in);
    w->ovf = xcalloc_aligned(N, sizeof *w->ovf);
    w->dirty = xcalloc_aligned(N, sizeof *w->dirty);
    w->is_dirty = xcalloc_aligned(N, 1);
    w->ovf_list = xcalloc_aligned(N, sizeof *w->ovf_list);
    w->pending = xcalloc_aligned(w->nwords, sizeof *w->pending);
    w->bell = xcalloc_aligned(w->nwords, sizeof *w->bell);
    w->st.from = xcalloc_aligned(N, sizeof *w->st.from);
    if (!w->out || !w->in || !w->ovf || !w->dirty || !w->is_dirty || !w->ovf_list || !w->pending ||
        !w->bell || !w->st.from)
        return -ENOMEM;
    for (uint32_t d = 0; d < N; d++)
        ax_mq_init(&w->ovf[d]);
    /* The local FIFO exists from the start (64 messages, grows on demand),
     * so the send path needs no NULL check.  Arena use before the worker
     * thread exists is ordered by pthread_create. */
    if (!ax__lq_grow(w))
        return -ENOMEM;
    w->lq_tail = 0; /* ax__lq_grow handed out a slot: take it back */
    w->max_slots = ax_config_max_actors(&eng->cfg);
    if (w->max_slots > AX_MAX_SLOTS)
        w->max_slots = AX_MAX_SLOTS;
    w->table_len = (size_t)w->max_slots * sizeof(ax_slot_t);
    void *t = mmap(NULL, w->table_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED)
        return -ENOMEM;
    w->table = t;
    if (eng->plan->pinned) {
        char err[256];
        int rc = ax_topo_bind_memory(eng->topo, t, w->table_len, eng->plan->workers[i].numa, err,
                                     sizeof err);
        if (rc < 0) {
            set_error("engine: binding worker %u's actor table: %s", i, err);
            return rc;
        }
    }
    return ax__inbox_init(w);
}

static void worker_destroy(ax_worker_t *w)
{
    if (!w)
        return;
    ax__inbox_fini(w);
    if (w->table)
        munmap(w->table, w->table_len);
    free(w->out);
    free(w->in);
    free(w->ovf);
    free(w->dirty);
    free(w->is_dirty);
    free(w->ovf_list);
    free(w->pending);
    free(w->bell);
    free(w->st.from);
    free(w);
}

int ax_engine_create(const ax_config_t *cfg_in, ax_engine_t **out)
{
    char err[512];
    ax_config_error_t cerr;
    int rc;
    last_error[0] = 0;
    if (!out) {
        set_error("ax_engine_create: out is NULL");
        return -EINVAL;
    }
    *out = NULL;
    ax_engine_t *eng = xcalloc_aligned(1, sizeof *eng);
    if (!eng) {
        set_error("engine: out of memory for the engine itself (%zu bytes)", sizeof *eng);
        return -ENOMEM;
    }
    if (cfg_in) {
        if (cfg_in->size != sizeof(ax_config_t)) {
            set_error("ax_engine_create: config size %u, expected %zu: initialise it with "
                      "ax_config_init() or AX_CONFIG_INIT",
                      cfg_in->size, sizeof(ax_config_t));
            free(eng);
            return -EINVAL;
        }
        eng->cfg = *cfg_in;
    } else {
        ax_config_init(&eng->cfg);
    }
    if ((rc = ax_config_validate(&eng->cfg, &cerr)) < 0) {
        set_error("%s", cerr.message);
        goto fail;
    }
    if ((rc = ax_topo_load_config(&eng->cfg, &eng->topo, err, sizeof err)) < 0) {
        set_error("%s", err);
        goto fail;
    }
    if ((rc = ax_plan_create(eng->topo, &eng->cfg, &eng->plan, err, sizeof err)) < 0) {
        set_error("%s", err);
        goto fail;
    }
    eng->n = eng->plan->nworkers;
    if (eng->n > AX_MAX_WORKERS) {
        set_error("engine: %u workers planned, at most %u supported", eng->n, AX_MAX_WORKERS);
        rc = -EINVAL;
        goto fail;
    }
    if (eng->plan->oversubscribed || !eng->plan->pinned)
        fprintf(stderr, "axon: %u workers run UNPINNED (%s): functional testing only, "
                        "performance figures from this engine are meaningless\n",
                eng->n, eng->plan->oversubscribed ? "oversubscribed" : "topology is not this machine");
    /* Spinning only makes sense with a core to ourselves. */
    int32_t spin_us = eng->cfg.spin_us ? eng->cfg.spin_us : 50;
    eng->spin_ns = (spin_us < 0 || !eng->plan->pinned) ? 0 : (int64_t)spin_us * 1000;
    eng->use_bell = eng->cfg.doorbell == AX_DOORBELL_ON ||
                    (eng->cfg.doorbell == AX_DOORBELL_AUTO && eng->n > AX_DOORBELL_AUTO_MIN);

    int *nodes = calloc(eng->n, sizeof *nodes);
    if (!nodes) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < eng->n; i++)
        nodes[i] = eng->plan->pinned ? (int)eng->plan->workers[i].numa : -1;
    ax_arena_group_opts_t ao = {
        .narenas = eng->n,
        .arena_bytes = eng->plan->arena_bytes,
        .nodes = nodes,
        .prefault = eng->cfg.prefault,
        .hugepages = eng->cfg.hugepages,
    };
    rc = ax_arena_group_create(&ao, &eng->arenas);
    free(nodes);
    if (rc < 0) {
        set_error("engine: cannot create %u arenas of %llu bytes: %s; lower memory.arena_bytes "
                  "or the worker count",
                  eng->n, (unsigned long long)eng->plan->arena_bytes, strerror(-rc));
        goto fail;
    }
    eng->w = calloc(eng->n, sizeof *eng->w);
    if (!eng->w) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < eng->n; i++)
        if ((rc = worker_create(eng, i, &eng->w[i])) < 0) {
            if (!last_error[0])
                set_error("engine: cannot set up worker %u: %s", i, strerror(-rc));
            goto fail;
        }
    if ((rc = alloc_rings(eng)) < 0)
        goto fail;
    if ((rc = ax__calls_init(eng)) < 0)
        goto fail;
    *out = eng;
    return 0;
fail:
    if (!last_error[0])
        set_error("engine: create failed: %s", strerror(-rc));
    ax_engine_destroy(eng);
    return rc;
}

/* ---- start / stop / wait / destroy ------------------------------------------------------ */

static void open_gate(ax_engine_t *eng, uint32_t state)
{
    /* R6: everything the creator set up is visible to workers that see
     * the state.  Pairs with A6 in worker_main. */
    atomic_store_explicit(&eng->start_state, state, memory_order_release);
    futex_wake_n(&eng->start_state, INT_MAX);
}

int ax_engine_start(ax_engine_t *eng)
{
    if (!eng)
        return -EINVAL;
    if (atomic_load_explicit(&eng->started, memory_order_acquire))
        return -EALREADY;
    if (!eng->barriers) {
        int rc = pthread_barrier_init(&eng->stop_barrier, NULL, eng->n);
        if (rc)
            return -rc;
        eng->barriers = true;
    }
    atomic_store_explicit(&eng->ready, 0, memory_order_relaxed);
    atomic_store_explicit(&eng->start_state, 0, memory_order_relaxed);
    uint32_t created = 0;
    int rc = ax__fault_engine_init(eng); /* before the workers: they set up altstacks */
    if (rc < 0) {
        set_error("engine: cannot install the fault-signal report: %s; set "
                  "scheduler.fault_report = off to start without it", strerror(-rc));
        return rc;
    }
    for (; created < eng->n; created++) {
        rc = pthread_create(&eng->w[created]->thread, NULL, worker_main, eng->w[created]);
        if (rc)
            break;
    }
    if (created < eng->n) {
        set_error("engine: cannot create the thread of worker %u: %s; nothing was started",
                  created, strerror(rc));
        open_gate(eng, 2);
        for (uint32_t i = 0; i < created; i++)
            pthread_join(eng->w[i]->thread, NULL);
        return -rc;
    }
    uint32_t r;
    /* A5: pairs with R5 in worker_main: every worker's bind_rc is set. */
    while ((r = atomic_load_explicit(&eng->ready, memory_order_acquire)) < eng->n)
        futex_wait(&eng->ready, r, -1);
    int bad = 0;
    for (uint32_t i = 0; i < eng->n && !bad; i++)
        if (eng->w[i]->bind_rc) {
            set_error("engine: pinning worker %u to PU %u failed: %s; nothing was started", i,
                      eng->plan->workers[i].pu, eng->w[i]->bind_err);
            bad = eng->w[i]->bind_rc;
        }
    if (!bad && (rc = ax__watchdog_start(eng)) < 0) {
        set_error("engine: cannot start the watchdog thread: %s; nothing was started (set "
                  "scheduler.watchdog_ms = 0 to run without it)", strerror(-rc));
        bad = rc;
    }
    if (!bad) /* before the gate: running behaviours may read it */
        atomic_store_explicit(&eng->started, true, memory_order_release);
    open_gate(eng, bad ? 2 : 1);
    if (bad) {
        for (uint32_t i = 0; i < eng->n; i++)
            pthread_join(eng->w[i]->thread, NULL);
        return bad;
    }
    return 0;
}

void ax_engine_stop(ax_engine_t *eng)
{
    if (!eng)
        return;
    /* Count as an external caller while we wake workers: a worker tears
     * its io ring (and the eventfd we write to) down only once
     * ext_inflight is 0 (ax__worker_shutdown), so no wake lands on a
     * closed or reused fd. */
    atomic_fetch_add_explicit(&eng->ext_inflight, 1, memory_order_seq_cst);
    atomic_store_explicit(&eng->ext_closed, 1, memory_order_seq_cst);
    if (!atomic_exchange_explicit(&eng->stopping, 1, memory_order_seq_cst)) {
        for (uint32_t i = 0; i < eng->n; i++) {
            ax_worker_t *w = eng->w[i];
            atomic_store_explicit(&w->parked, 2, memory_order_seq_cst);
            if (w->io)
                ax__io_wake(NULL, w->io);
            futex_wake(&w->parked);
        }
    }
    atomic_fetch_sub_explicit(&eng->ext_inflight, 1, memory_order_seq_cst);
}

void ax_engine_stop_when_idle(ax_engine_t *eng)
{
    if (!eng)
        return;
    atomic_store_explicit(&eng->stop_when_idle, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&eng->started, memory_order_acquire))
        ax__try_quiesce(eng);
}

/* After the workers are joined: send every block freed on another worker
 * home (frees queued by fini or dropped messages at shutdown, and ones an
 * idle owner never reclaimed), so arena_used_bytes is what is really in
 * use.  The arenas' owner-thread calls are made here, on the creator's
 * thread, because no worker runs any more: pthread_join ordered everything
 * they did before this.  A round publishes what fits in each return ring
 * and the owners take it in; blocks that did not fit wait for the next. */
static void arenas_settle(ax_engine_t *eng)
{
    bool pending;
    do {
        pending = false;
        for (uint32_t i = 0; i < eng->n; i++)
            ax_arena_flush(eng->w[i]->arena);
        for (uint32_t i = 0; i < eng->n; i++)
            ax_arena_reclaim_all(eng->w[i]->arena);
        for (uint32_t i = 0; i < eng->n && !pending; i++) {
            ax_arena_stats_t as;
            ax_arena_get_stats(eng->w[i]->arena, &as);
            pending = as.remote_pending != 0;
        }
    } while (pending);
}

/* Is the calling thread one of eng's workers (a behaviour, init or fini)?
 * Each w->thread was stored by ax_engine_start before the start gate
 * opened (R6), and a worker reads it only after passing the gate (A6). */
static bool on_worker_thread(const ax_engine_t *eng)
{
    pthread_t self = pthread_self();
    for (uint32_t i = 0; i < eng->n; i++)
        if (pthread_equal(self, eng->w[i]->thread))
            return true;
    return false;
}

int ax_engine_wait(ax_engine_t *eng)
{
    if (!eng || !atomic_load_explicit(&eng->started, memory_order_acquire))
        return -EINVAL;
    /* A behaviour waiting for its own workers to exit would wait forever. */
    if (!atomic_load_explicit(&eng->joined, memory_order_acquire) && on_worker_thread(eng))
        return -EDEADLK;
    if (atomic_load_explicit(&eng->joined, memory_order_acquire))
        return 0;
    for (uint32_t i = 0; i < eng->n; i++)
        pthread_join(eng->w[i]->thread, NULL);
    arenas_settle(eng);
    ax__watchdog_stop(eng); /* a fini may still have overrun until the join */
    atomic_store_explicit(&eng->joined, true, memory_order_release);
    return 0;
}

void ax_engine_destroy(ax_engine_t *eng)
{
    if (!eng)
        return;
    bool started = atomic_load_explicit(&eng->started, memory_order_acquire);
    if (started && !atomic_load_explicit(&eng->joined, memory_order_acquire)) {
        ax_engine_stop(eng);
        if (ax_engine_wait(eng) == -EDEADLK) {
            /* Freeing the engine under its own running worker cannot end well. */
            fprintf(stderr, "axon: ax_engine_destroy called from a behaviour of the engine it "
                            "destroys; call ax_engine_stop there and destroy from the thread "
                            "that created the engine\n");
            abort();
        }
    }
    ax__watchdog_stop(eng); /* after a start whose workers failed: never running then */
    ax__fault_engine_fini(eng);
    if (eng->barriers)
        pthread_barrier_destroy(&eng->stop_barrier);
    ax__calls_fini(eng); /* outside futures still waiting get -ESHUTDOWN */
    if (eng->w) {
        for (uint32_t i = 0; i < eng->n; i++)
            if (eng->w[i] && !started)
                ax__worker_discard(eng->w[i]); /* never ran: free what was queued */
        for (uint32_t i = 0; i < eng->n; i++)
            worker_destroy(eng->w[i]);
        free(eng->w);
    }
    if (eng->ring_mem)
        munmap(eng->ring_mem, eng->ring_mem_len);
    ax_arena_group_destroy(eng->arenas);
    ax_plan_destroy(eng->plan);
    ax_topo_destroy(eng->topo);
    free(eng);
}

const ax_plan_t *ax_engine_plan(const ax_engine_t *eng) { return eng ? eng->plan : NULL; }
uint32_t ax_engine_workers(const ax_engine_t *eng) { return eng ? eng->n : 0; }

bool ax_engine_running(const ax_engine_t *eng)
{
    return eng && atomic_load_explicit(&eng->started, memory_order_acquire) &&
           !atomic_load_explicit(&eng->stopping, memory_order_acquire);
}

void ax_engine_set_dead_letter_hook(ax_engine_t *eng, ax_dead_letter_fn fn, void *user)
{
    if (!eng)
        return;
    eng->dl_fn = fn;
    eng->dl_user = user;
}

/* ---- stats ------------------------------------------------------------------------------ */

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* Reads w's arena directly when its worker is not running (before start or
 * after join) and returns true; false: the caller reads what the worker
 * published. */
static bool worker_arena_stats(const ax_engine_t *eng, ax_worker_t *w, ax_arena_stats_t *as)
{
    if (atomic_load_explicit(&eng->started, memory_order_acquire) &&
        !atomic_load_explicit(&eng->joined, memory_order_acquire))
        return false;
    ax_arena_get_stats(w->arena, as);
    return true;
}

int ax_engine_worker_stats(const ax_engine_t *eng, uint32_t i, ax_worker_stats_t *o, uint64_t *from)
{
    if (!eng || !o || i >= eng->n)
        return -EINVAL;
    ax_worker_t *w = eng->w[i];
    memset(o, 0, sizeof *o);
    o->msgs_local = LD(w->st.msgs_local);
    o->msgs_remote = LD(w->st.msgs_remote);
    o->msgs_external = LD(w->st.msgs_external);
    o->msgs_sent_remote = LD(w->st.msgs_sent_remote);
    o->ring_full = LD(w->st.ring_full);
    o->overflow_hwm = LD(w->st.overflow_hwm);
    o->dead_letters = LD(w->st.dead_letters);
    o->dropped_at_stop = LD(w->st.dropped_at_stop);
    o->actors_spawned = LD(w->st.spawned);
    o->actors_stopped = LD(w->st.stopped);
    o->actors_live = o->actors_spawned - o->actors_stopped;
    o->parks = LD(w->st.parks);
    o->wakes_sent = LD(w->st.wakes_sent);
    o->idle_ns = LD(w->st.idle_ns);
    o->parked_ns = LD(w->st.parked_ns);
    o->spawn_failed = LD(w->st.spawn_failed);
    o->actors_failed = LD(w->st.failed);
    o->actors_restarted = LD(w->st.restarted);
    o->restart_dropped = LD(w->st.restart_dropped);
    o->downs_sent = LD(w->st.downs_sent);
    o->downs_filtered = LD(w->st.downs_filtered);
    o->io_cancelled = LD(w->st.io_cancelled);
    o->quota_failures = LD(w->st.quota_failures);
    o->load = LD(w->load);
    o->watchdog_overruns = LD(w->st.watchdog);
    ax_arena_stats_t as;
    o->arena_reserved_bytes = ax_arena_reserved_bytes(w->arena);
    if (worker_arena_stats(eng, w, &as)) {
        o->arena_used_bytes = as.used_bytes;
        o->arena_failed_allocs = as.failed_allocs;
        o->arena_high_water_bytes = as.high_water_bytes;
        o->arena_remote_frees_received = as.remote_frees_received;
        o->arena_remote_frees_sent = as.remote_frees_sent;
    } else { /* published by the worker when it goes idle */
        o->arena_used_bytes = LD(w->st.arena_used);
        o->arena_failed_allocs = LD(w->st.arena_failed);
        o->arena_high_water_bytes = LD(w->st.arena_hwm);
        o->arena_remote_frees_received = LD(w->st.arena_remote_in);
        o->arena_remote_frees_sent = LD(w->st.arena_remote_out);
    }
    if (from)
        for (uint32_t s = 0; s < eng->n; s++)
            from[s] = LD(w->st.from[s]);
    return 0;
}

void ax_engine_stats(const ax_engine_t *eng, ax_worker_stats_t *o)
{
    memset(o, 0, sizeof *o);
    if (!eng)
        return;
    for (uint32_t i = 0; i < eng->n; i++) {
        ax_worker_stats_t s;
        ax_engine_worker_stats(eng, i, &s, NULL);
        uint64_t hwm = o->overflow_hwm > s.overflow_hwm ? o->overflow_hwm : s.overflow_hwm;
        uint64_t *a = (uint64_t *)o, *b = (uint64_t *)&s;
        for (size_t k = 0; k < sizeof s / sizeof(uint64_t); k++)
            a[k] += b[k];
        o->overflow_hwm = hwm; /* a maximum, not a sum */
    }
}

int ax_engine_arena_classes(const ax_engine_t *eng, uint32_t worker, ax_arena_class_stats_t *out,
                            uint32_t max)
{
    if (!eng || worker >= eng->n || (max && !out))
        return -EINVAL;
    ax_worker_t *w = eng->w[worker];
    ax_arena_stats_t as;
    bool direct = worker_arena_stats(eng, w, &as);
    for (uint32_t c = 0; c < AX_ARENA_NCLASSES && c < max; c++) {
        out[c].block_bytes = ax_arena_class_size(c);
        out[c].in_use = direct ? as.class_in_use[c] : LD(w->st.arena_class[c]);
    }
    return (int)AX_ARENA_NCLASSES;
}
