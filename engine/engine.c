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
 * ---- Ring slots (engine/ring.h has the proof) ---------------------------------------
 *   Sender: fill the slot, store its header word last (R1, release).
 *   Receiver (drain_ring_loop): ax_ring_ready loads the header words of the
 *   next slots back to back (A1, acquire, one per slot, pairing with that
 *   slot's R1) and counts the run whose stamps match; only then are they
 *   dispatched, so the line transfers of a run overlap instead of one per
 *   dispatch.  The slots are handed back once per batch (R2 in
 *   ax_ring_release, pairing with A2 in the sender's reserve when the ring
 *   looks full): until then the sender cannot rewrite a slot being run.
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
 * ---- Doorbell (which rings to visit; scheduler.doorbell) ---------------------------
 *   With many workers a receiver polls only its awake inbound rings (the
 *   active list); the others are asleep (ring->asleep == 1) and their
 *   sender rings the receiver's bell (bit s of its bell words) when it
 *   publishes to one.  So the bell is written on a transition from asleep
 *   to awake, not per turn: under steady traffic no sender touches it, and
 *   a message costs its slot's line and nothing else (issue 14; before,
 *   every sender's fetch_or moved the receiver's bell line every turn, 2.2
 *   lines per message at 64 workers all-to-all, now ~1.0).
 *
 *   Receiver R, ring s goes to sleep       Sender S, flush after publishing
 *   (after AX_RING_AWAKE_TURNS empty       (commits R1 before)
 *   polls, or at park):                    F2: fence(seq_cst)
 *     store s.asleep = 1 (release, R7)      if load s.asleep (acquire, A7):
 *     F4: fence(seq_cst) (F1 at park)         if bit s of R.bell is clear:
 *     peek ring s: a message?                   fetch_or(bit) (release, R3)
 *       yes: store s.asleep = 0, poll on        F2b: fence(seq_cst)
 *       no: drop s from the active list         wake R if parked (as above)
 *   F4 and F2 are in S.  If F4 precedes F2, S's load after F2 sees 1 (or a
 *   later 0: R took ring s up again and polls it), so S rings; if F2
 *   precedes F4, R's peek after F4 sees S's slot and keeps polling.  Either
 *   way a slot on a sleeping ring comes with a bell bit.  R takes bits with
 *   exchange(acquire, A3, pairing with R3: the slots committed before are
 *   visible), stores asleep = 0 (relaxed: S may ring once more, harmlessly)
 *   and puts the ring on its active list.  A7 pairs with R7 so that S, having
 *   seen asleep = 1, also sees R's exchange that cleared the bit before: its
 *   "bit already set" test then only skips bits R has not taken yet.
 *   A rung receiver may be parked: F2b and F1 are the park/wake pair for
 *   the bell (R parks: parked = 1, F1, then reads its bell words), as F2 is
 *   for awake rings (R re-peeks them after F1, having put them to sleep
 *   first; see ax__park).  The fence pair is paid per transition, never
 *   per message; a flush to awake rings pays F2 only, as without a bell.
 *
 * ---- Quiescence (ax_engine_stop_when_idle) ------------------------------------------
 *   Each worker counts messages it enqueued (sent) and consumed (handled) and
 *   publishes both before parking; external sends count in ext_sent before
 *   they are pushed.  Each worker's idle_seq (its own line) is odd while it
 *   is parked past its re-check and grows by one at each change.  The
 *   engine is quiet when, between two reads of every idle_seq that agree
 *   and are all odd, no io operation is pending and the sums of sent and
 *   handled agree (a message in flight is sent but not handled).
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

#include "engine/cluster_glue.h"
#include "engine/engine_internal.h"
#include "topology/bind.h"

/* Doorbell: a ring stays on its receiver's active list (polled every turn,
 * no bell needed) until this many polls in a row found it empty.  An empty
 * poll is a load of a line the receiver already holds; going to sleep and
 * waking again costs about three line transfers and two fences. */
#define AX_RING_AWAKE_TURNS 64u

/* The idle spin peeks at about this many inbound ring slots between two
 * looks at every source (quick_check): the one ring of a 2-worker engine
 * 8 times, 7 rings once each; see worker_loop. */
#define AX_SPIN_RING_PEEKS 8u

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
    /* One syscall per wake: a worker with an io ring sleeps in its io
     * wait (ax__io_park), never on the futex, so it needs only the io
     * signal (MSG_RING from our ring, or its eventfd). */
    if (tw->io)
        ax__io_wake(from ? from->io : NULL, tw->io);
    else
        futex_wake(&tw->parked);
}

/* ---- flush: publish rings, ring doorbells, wake parked receivers ----------------- */

void ax__flush(ax_worker_t *w)
{
    uint32_t nd = w->ndirty;
    if (!nd)
        return;
    ax_engine_t *eng = w->eng;
    for (uint32_t i = 0; i < nd; i++)
        w->out[w->dirty[i]]->p_dirty = 0; /* each slot was published by its own commit (R1) */
    w->ndirty = 0;
    /* Counted here, once per turn, not per send (ax__msg_slot_try). */
    AX_STAT_ADD(w->st.msgs_sent_remote, w->sent_remote);
    w->sent_remote = 0;
    /* F2: pairs with F1 in ax__park and F4 in sleep_rings; see the file
     * comment. */
    AX_FENCE_SEQ_CST(eng);
    if (!w->use_bell) {
        for (uint32_t i = 0; i < nd; i++)
            ax__wake(eng, w, w->dirty[i]);
        return;
    }
    /* Doorbell: only rings their receiver does not poll need a bell, and
     * only a rung receiver can be parked (an awake ring is re-checked by
     * its receiver after F1 before it parks).  The rung destinations are
     * gathered at the front of `dirty`, which is free again. */
    uint32_t rung = 0;
    uint64_t bit = 1ull << (w->id % 64);
    for (uint32_t i = 0; i < nd; i++) {
        uint32_t d = w->dirty[i];
        /* A7: pairs with R7 in sleep_rings. */
        if (!atomic_load_explicit(&w->out[d]->asleep, memory_order_acquire))
            continue;
        _Atomic uint64_t *word = &eng->w[d]->bell[w->id / 64];
        /* R3: the slot commits (R1) are visible to a receiver whose
         * exchange (A3 in take_bells) reads this bit. */
        if (!(atomic_load_explicit(word, memory_order_relaxed) & bit))
            atomic_fetch_or_explicit(word, bit, memory_order_release);
        w->dirty[rung++] = d;
    }
    if (!rung)
        return;
    /* F2b: the bell bits before this fence pair with F1 in ax__park. */
    AX_FENCE_SEQ_CST(eng);
    for (uint32_t i = 0; i < rung; i++)
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
    /* The head stays in a register: only this loop moves it while the
     * worker runs (behaviours read it: the message being run is still in
     * the FIFO until it returns), so it is stored, never reloaded, and the
     * batch's end is one index instead of a count. */
    uint32_t h = w->lq_head, end = h + w->batch;
    ax_slot_t *const tbl = w->table; /* in a register across the behaviours */
    while (h != end && h != w->lq_tail) {
        /* A behaviour that grew the FIFO set w->after: the dispatch frees
         * the buffer it ran from (lq_old) once it returned. */
        ax__dispatch_batch_t(w, &w->lq[h & w->lq_mask], tbl, tr);
        w->lq_head = ++h;
    }
    return h - (end - w->batch);
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
    uint32_t n = 0, k;
    /* Find the run of ready slots first (their header loads overlap), then
     * dispatch it.  Scan again only when the run stopped at the end of the
     * slot array: a run that ended at an empty slot ends the batch (what
     * arrived since waits for the next turn, which follows at once). */
    while ((k = ax_ring_ready(r, w->batch - n)) != 0) {
        n += k;
        do {
            ax__dispatch_batch(w, ax_ring_head(r), tr);
            ax_ring_take(r);
        } while (--k);
        if (!ax_ring_run_end(r) || n == w->batch)
            break;
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

/* Doorbell: put ring s on the active list (it was asleep, its sender rang). */
static void wake_ring(ax_worker_t *w, uint32_t s)
{
    w->ring_idle[s] = 0;
    if (w->awake[s])
        return; /* rung again before we took the first bell */
    w->awake[s] = 1;
    if (__builtin_expect(!w->in[s], 0)) /* its first bell: the ring is new */
        /* A8: pairs with R8 in ax__ring_open (A3 already orders it). */
        w->in[s] = atomic_load_explicit(&w->ring_pub[s], memory_order_acquire);
    /* Relaxed: a sender that still reads 1 rings once more, harmlessly. */
    atomic_store_explicit(&w->in[s]->asleep, 0, memory_order_relaxed);
    w->active[w->nactive++] = s;
}

/* Doorbell: take every bit set in the bell words.  True if any. */
static bool take_bells(ax_worker_t *w)
{
    bool any = false;
    for (uint32_t k = 0; k < w->nwords; k++) {
        if (!atomic_load_explicit(&w->bell[k], memory_order_relaxed))
            continue;
        /* A3: pairs with R3 in ax__flush: the slots committed before the
         * bits we take are visible. */
        uint64_t bits = atomic_exchange_explicit(&w->bell[k], 0, memory_order_acquire);
        while (bits) {
            wake_ring(w, k * 64 + (uint32_t)__builtin_ctzll(bits));
            bits &= bits - 1;
            any = true;
        }
    }
    return any;
}

/* Doorbell: put the active rings whose ring_idle reached `idle` to sleep (R7, F4; file comment), keeping any that turns
 * out to hold a message.  True if one did.  One fence per call, paid only
 * when a ring goes to sleep. */
static bool sleep_rings(ax_worker_t *w, uint32_t idle)
{
    uint32_t k, sleeping = 0;
    for (k = 0; k < w->nactive; k++) {
        uint32_t s = w->active[k];
        if (w->ring_idle[s] >= idle) {
            /* R7: pairs with A7 in ax__flush. */
            atomic_store_explicit(&w->in[s]->asleep, 1, memory_order_release);
            sleeping++;
        }
    }
    if (!sleeping)
        return false;
    /* F4: pairs with F2 in ax__flush; see the file comment. */
    AX_FENCE_SEQ_CST(w->eng);
    bool found = false;
    uint32_t kept = 0;
    for (k = 0; k < w->nactive; k++) {
        uint32_t s = w->active[k];
        if (w->ring_idle[s] >= idle) {
            if (ax_ring_c_nonempty(w->in[s])) {
                atomic_store_explicit(&w->in[s]->asleep, 0, memory_order_relaxed);
                w->ring_idle[s] = 0;
                found = true;
            } else {
                w->awake[s] = 0;
                continue;
            }
        }
        w->active[kept++] = s;
    }
    w->nactive = kept;
    return found;
}

static uint32_t drain_rings(ax_worker_t *w)
{
    uint32_t n = 0, N = w->nworkers;
    if (N == 1)
        return 0;
    if (!w->use_bell) {
        for (uint32_t s = 0; s < N; s++)
            if (s != w->id)
                n += drain_ring(w, s);
        return n;
    }
    take_bells(w);
    bool idle = false;
    for (uint32_t k = 0; k < w->nactive; k++) {
        uint32_t s = w->active[k];
        uint32_t got = drain_ring(w, s);
        n += got;
        if (got)
            w->ring_idle[s] = 0;
        else if (++w->ring_idle[s] >= AX_RING_AWAKE_TURNS)
            idle = true;
    }
    if (__builtin_expect(idle, 0))
        sleep_rings(w, AX_RING_AWAKE_TURNS);
    return n;
}

/* Messages from other nodes, in order (engine/cluster_glue.c), counted
 * with the external ones: both come from outside this engine. */
static uint32_t drain_cluster(ax_worker_t *w)
{
    uint32_t n = 0;
    ax_mq_t *q = ax__cluster_inq(w);
    ax_msg_t *m;
    w->cur_src = w->batch_src = AX_SRC_EXTERNAL;
    while (n < w->batch && (m = ax_mq_peek(q))) {
        ax__dispatch(w, m); /* nothing pushes to q during a dispatch: only UCP progress does */
        ax_mq_pop(q, w->arena);
        n++;
    }
    if (n) {
        w->handled += n;
        AX_STAT_ADD(w->st.msgs_external, batch_count(w, n));
    }
    w->batch_src = AX_SRC_NONE;
    return n;
}

static uint32_t drain_inbox(ax_worker_t *w)
{
    uint32_t n = 0;
    ax_inbox_node_t *node;
    w->cur_src = w->batch_src = AX_SRC_EXTERNAL;
    while (n < w->batch && (node = ax__inbox_pop(w))) {
        if (__builtin_expect(ax__ref_dest(w->home, node->msg.to) >= w->nworkers, 0))
            ax__dispatch_slow(w, &node->msg); /* another node's actor: forwarded */
        else
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

/* Move overflowed messages into their rings, oldest first.  In runs: as
 * many as lie in order in the queue's head chunk and fit in the ring before
 * the end of its slot array (one head load, A2, per run at most), copied
 * slot by slot, each slot published by its own R1 in order as a single
 * send's is; the queue and the ring's tail move once per run.  (It used to
 * peek, reserve, copy and pop one message at a time: ~59 instructions per
 * message on the ring-full path against ~20 now, issue 14.) */
static void drain_overflow(ax_worker_t *w)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < w->novf; i++) {
        uint32_t d = w->ovf_list[i];
        ax_mq_t *q = &w->ovf[d];
        ax_ring_t *r = w->out[d];
        ax_msg_t *src, *dst;
        uint8_t stamp;
        uint32_t n, k;
        bool moved = false;
        while ((n = ax_mq_run(q, &src)) && (n = ax_ring_try_reserve_run(r, n, &dst, &stamp))) {
            for (k = 0; k < n; k++) {
                dst[k].to = src[k].to;
                dst[k].from = src[k].from;
                dst[k].payload = src[k].payload;
                /* R1; src was committed to the overflow by ax_msg_commit */
                ax_msg_commit_copy(&dst[k], src[k].type, src[k].len, src[k].flags, stamp);
            }
            ax_mq_pop_n(q, n, w->arena);
            moved = true;
        }
        if (moved && !r->p_dirty) {
            r->p_dirty = 1;
            w->dirty[w->ndirty++] = d;
        }
        if (q->count)
            w->ovf_list[kept++] = d;
        else
            r->p_ovf = 0; /* sends may reserve again (set by ovf_pushed) */
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

/* w->send_self from the send probe's semaphore (and `closing`): the turn
 * turns the inline local send off as soon as the probe is attached; this
 * turns it back on after it is detached (every 256 turns and at a park:
 * until then local sends only take the slower, probed path). */
static void send_self_sync(ax_worker_t *w)
{
    w->send_self = AX__TRACE_ON(send) || w->closing ? AX_SEND_SELF_OFF : w->home + w->id;
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
    /* The send probe's semaphore, once per turn: attached, every send takes
     * the path that fires it, from this turn on (send_self_sync turns the
     * inline path back on within 256 turns of its detaching, or at a park). */
    if (__builtin_expect(AX__TRACE_ON(send), 0))
        w->send_self = AX_SEND_SELF_OFF;
    if (__builtin_expect(w->novf != 0, 0))
        drain_overflow(w); /* before anything new is sent this turn */
    n = drain_rings(w);
    n += drain_local(w);
    /* Publish what the behaviours sent (doorbells, wakes) before the
     * inbox and io: with doorbells on, a reply is seen only from here. */
    if (w->ndirty)
        ax__flush(w);
    n += drain_inbox(w);
    /* io polling.  Completions and due timers become local messages at
     * the FIFO's tail, so polling while the FIFO holds more than a turn's
     * batch cannot make them run sooner: it only takes input in (receives
     * copied into fresh blobs, each one more message) faster than this
     * worker handles it.  Four clients pipelining big GETs made the one
     * worker of axon-kv copy in megabytes ahead of its backlog, first-touch
     * page faults included, and another client's PING waited behind all of
     * it (issue 10 item 17).  So a turn that leaves more than a batch
     * queued only submits what its behaviours queued (their sends go out
     * now); the poll waits until the backlog is worked down, or at most
     * AX_IO_SKIP_MAX turns (a flood that never shrinks). */
    if (ax__lq_count(w) <= w->batch || ++w->io_skipped > AX_IO_SKIP_MAX) {
        /* After skipped turns, look at the timers whatever the turn number
         * (a busy worker reads the clock every 8th turn only): otherwise a
         * flood that never shrinks would see its timers once in 8 forced
         * polls. */
        bool skipped = w->io_skipped != 0;
        w->io_skipped = 0;
        n += ax__io_poll(w, skipped);
    } else {
        ax__io_submit(w);
    }
    if (w->cl) { /* a cluster node: UCP progress queues arrivals; they run like ring slots */
        n += ax__cluster_progress(w);
        n += drain_cluster(w);
    }
    if (w->novf)
        drain_overflow(w);
    ax__slots_publish(w); /* before the flush wakes anyone who may spawn here */
    if (w->ndirty) /* what the inbox's behaviours, io and the overflow put in rings */
        ax__flush(w);
    if (w->cl)
        ax__cluster_flush(w); /* one active message per remote channel written this turn */
    ax_arena_reclaim(w->arena);
    ax_arena_flush(w->arena);
    if (__builtin_expect((w->turn & 255) == 0, 0)) {
        send_self_sync(w);
        publish_load(w);
        if ((w->turn & 4095) == 0)
            publish_arena_stats(w); /* a worker that never parks still reports */
    }
    return n;
}

/* Anything to do?  After F1 in ax__park.  With the doorbell, the rings
 * still awake were put to sleep before F1 (ax__park), so the bell words
 * cover every ring; a ring that was awake and held a message is awake
 * again (sleep_rings) and counts as work. */
static bool has_work(ax_worker_t *w, bool ring_found)
{
    if (ring_found || ax__lq_count(w) || ax__inbox_nonempty(w))
        return true;
    if (w->use_bell) {
        for (uint32_t k = 0; k < w->nwords; k++)
            if (atomic_load_explicit(&w->bell[k], memory_order_relaxed))
                return true;
    } else {
        for (uint32_t s = 0; s < w->nworkers; s++)
            if (s != w->id && ax_ring_c_nonempty(w->in[s]))
                return true;
    }
    /* A cluster node arms its UCP worker's event fd here (in the io_uring
     * wait); false from the arm means events are waiting. */
    if (w->cl && (ax__cluster_pending(w) || !ax__cluster_arm(w)))
        return true;
    return ax__io_ready(w);
}

/* The head slot of every inbound ring the worker polls (with bells, the
 * awake ones): does one hold a message?  The idle spin's inner loop. */
__attribute__((always_inline)) static inline bool rings_ready(ax_worker_t *w)
{
    for (uint32_t k = 0; k < w->nactive; k++)
        if (ax_ring_c_nonempty(w->in[w->active[k]]))
            return true;
    return false;
}

/* Cheap "is anything waiting?" for the idle spin: the local FIFO, the
 * doorbell words, the inbound rings (rings_ready), the inbox and the io
 * completion queue; on a cluster node one UCP progress call (its only side
 * effect: arrivals queued for the next turn).  Due timers are not looked
 * at: the spin runs a full turn every 64 checks. */
static bool quick_check(ax_worker_t *w)
{
    if (ax__lq_count(w))
        return true;
    if (w->use_bell)
        for (uint32_t k = 0; k < w->nwords; k++)
            if (atomic_load_explicit(&w->bell[k], memory_order_relaxed))
                return true;
    if (rings_ready(w))
        return true;
    /* A cluster node polls UCP too (one progress call, tens of ns over
     * shared memory): with cluster.progress = spin nothing else tells it. */
    return ax__inbox_nonempty(w) || ax__io_cq_ready(w) || (w->cl && ax__cluster_poll(w));
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

/* Sum of every worker's idle_seq, or 0 if one is not idle (even). */
static uint64_t idle_sum(ax_engine_t *eng)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < eng->n; i++) {
        uint64_t v = atomic_load_explicit(&eng->w[i]->idle_seq, memory_order_seq_cst);
        if (!(v & 1))
            return 0;
        sum += v;
    }
    return sum;
}

bool ax__try_quiesce(ax_engine_t *eng)
{
    /* Every worker idle, and (e2 == e1) none left its park in between:
     * idle_seq only grows, so equal sums mean equal words. */
    uint64_t e1 = idle_sum(eng);
    if (!e1)
        return false;
    uint64_t sent = atomic_load_explicit(&eng->ext_sent, memory_order_acquire), handled = 0;
    for (uint32_t i = 0; i < eng->n; i++) {
        ax_worker_t *w = eng->w[i];
        sent += atomic_load_explicit(&w->pub_sent, memory_order_acquire);
        handled += atomic_load_explicit(&w->pub_handled, memory_order_acquire);
        if (atomic_load_explicit(&w->pub_io_pending, memory_order_acquire))
            return false;
    }
    /* An outside call in flight may still push a message: refuse.  It
     * runs this check again itself when it leaves, delivered or not
     * (ext_leave in actor.c: its seq_cst decrement then load of
     * stop_when_idle pairs with the store of stop_when_idle and this
     * seq_cst load). */
    if (atomic_load_explicit(&eng->ext_inflight, memory_order_seq_cst))
        return false;
    uint64_t e2 = idle_sum(eng);
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

void ax__park(ax_worker_t *w, int64_t timeout_ns)
{
    ax_engine_t *eng = w->eng;
    publish_counters(w);
    send_self_sync(w);
    /* Doorbell: every awake ring goes to sleep first (R7), so that after
     * F1 a sender either sees it asleep and rings (F2/F2b), or we see its
     * message.  sleep_rings' own fence is F1's twin; it wakes any ring
     * that already holds mail. */
    bool ring_found = w->use_bell && sleep_rings(w, 0);
    atomic_store_explicit(&w->parked, 1, memory_order_relaxed);
    /* F1: pairs with F2/F2b in ax__flush and F3 in ax_engine_send; see top. */
    AX_FENCE_SEQ_CST(eng);
    if (has_work(w, ring_found) || atomic_load_explicit(&eng->stopping, memory_order_relaxed)) {
        atomic_store_explicit(&w->parked, 0, memory_order_relaxed);
        return;
    }
    /* Idle, on this worker's own line (no engine-wide word: at 64
     * workers three seq_cst RMWs per park on two shared lines were the
     * park's contended cost).  seq_cst store, then seq_cst loads of
     * stop_when_idle and (in ax__try_quiesce) of the others' idle_seq:
     * of two workers parking at once, at least one sees the other idle,
     * so the last to park runs the full check. */
    uint64_t seq = w->idle_seq_own + 1; /* odd: idle */
    atomic_store_explicit(&w->idle_seq, seq, memory_order_seq_cst);
    if (atomic_load_explicit(&eng->stop_when_idle, memory_order_seq_cst))
        ax__try_quiesce(eng);

    AX_TRACE_PARK(w->id);
    atomic_fetch_add_explicit(&w->st.parks, 1, memory_order_relaxed);
    uint64_t t0 = ax__now_ns();
    RUN_HOOKS(w, HOOK_PARK);
    if (w->io)
        ax__io_park(w, timeout_ns); /* returns on a wake, a completion or the timeout */
    else if (atomic_load_explicit(&w->parked, memory_order_acquire) == 1)
        /* Without io_uring a cluster node cannot wait on UCP's fd: poll. */
        futex_wait(&w->parked, 1, w->cl && (timeout_ns < 0 || timeout_ns > 1000000) ? 1000000
                                                                                   : timeout_ns);
    RUN_HOOKS(w, HOOK_UNPARK);
    atomic_fetch_add_explicit(&w->st.parked_ns, ax__now_ns() - t0, memory_order_relaxed);

    /* Even again and larger: a quiescence check that saw us idle sees
     * the change (seq_cst, as the store that made us idle). */
    w->idle_seq_own = seq + 1;
    atomic_store_explicit(&w->idle_seq, seq + 1, memory_order_seq_cst);
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
            /* Between two quick_checks the inbound rings' head slots are
             * polled in a tight loop (a few instructions per ring, no
             * call), so a slot that lands is seen within a few
             * instructions, not within a quick_check's ~70 (with its calls
             * out of this file): in a request/reply exchange that wait is
             * on the critical path of every hop (issue 14).  The other
             * sources are looked at as before, once per round, and the
             * full turn follows 64 rounds; a round peeks at most about
             * AX_SPIN_RING_PEEKS slots beyond quick_check's, so many rings
             * do not stretch the time to the next look at io, the inbox
             * and (in the full turn) the timers. */
            uint32_t polls = w->nactive ? (AX_SPIN_RING_PEEKS + w->nactive - 1u) / w->nactive : 1u;
            bool found = false;
            for (uint32_t i = 0; i < 64 && !found; i++) {
                for (uint32_t j = 0; j < polls && !(found = rings_ready(w)); j++)
                    __asm__ volatile("" ::: "memory");
                if (!found)
                    found = quick_check(w);
            }
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
        } else if (eng->yield_ns && w->cl && ax__cluster_traffic(w)) {
            /* An unpinned cluster worker (no idle spin: it would take the
             * CPU its peers need) that sent or received remote messages
             * since it last parked: the reply is probably one peer's turn
             * away.  Give the CPU to whoever is runnable and look again,
             * up to cluster.yield_us, before parking.  A park costs the
             * UCP arm (three syscalls), the io_uring wait, the sender's
             * signal (sendto) and two context switches; a yield one
             * syscall, and it switches only to a task that has work.
             * docs/cluster.md, "Oversubscribed nodes". */
            uint64_t t0 = ax__now_ns();
            int64_t limit = eng->yield_ns, due = ax__next_timeout(w);
            if (due >= 0 && due < limit)
                limit = due; /* quick_check does not look at timers */
            bool found;
            do {
                sched_yield();
                ax__cluster_yielded(w);
            } while (!(found = quick_check(w)) && (int64_t)(ax__now_ns() - t0) < limit);
            if (found)
                continue;
        }
        /* Overflow waiting for ring space: nobody will wake us for that, so
         * sleep briefly instead of indefinitely. */
        int64_t timeout = w->novf ? 50000 : ax__next_timeout(w);
        if (w->cl)
            timeout = ax__cluster_park_ns(w, timeout);
        ax__park(w, timeout);
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

/* Ring memory: one mapping per receiver, bound to the receiver's node (the
 * receiver polls its rings every turn, a sender writes each slot line once
 * per lap), reserved for all N-1 inbound rings but touched only by the
 * rings that are opened: the control blocks (3 lines each) packed at the
 * front in the order the rings are opened, then each ring's slots, page
 * aligned.  So a receiver that hears from k senders has k rings' slots and
 * one page of control blocks per 21 of them resident, whatever N is.
 *
 * Without the doorbell every ring is opened here at create (index = the
 * sender's rank).  With it a ring is opened by its sender on its first
 * message to that receiver (ax__ring_open, from the send's cold path): the
 * sender's out[d] points at its `no_ring` until then, a ring that is always
 * full, so the fast path sends nothing there and the cold path opens the
 * real one.  The receiver learns of the ring through its first bell (a new
 * ring starts asleep) and reads it from ring_pub (R8/A8).  So ring memory
 * follows the communication graph (issue 14). */
ax_ring_t *ax__ring_open(ax_worker_t *w, uint32_t d)
{
    ax_engine_t *eng = w->eng;
    ax_worker_t *rw = eng->w[d];
    /* Relaxed: only the index's uniqueness matters; the ring itself is
     * published by R8.  At most N-1 senders open a ring to d, once each. */
    uint32_t k = atomic_fetch_add_explicit(&rw->rings_open, 1, memory_order_relaxed);
    char *base = (char *)eng->ring_mem + eng->ring_recv_bytes * d;
    ax_ring_t *r = (ax_ring_t *)(base + (size_t)k * sizeof(ax_ring_t));
    ax_ring_init(r, (ax_msg_t *)(base + eng->ring_ctl_bytes + (size_t)k * eng->ring_slot_bytes),
                 eng->plan->ring_slots);
    w->out[d] = r;
    /* R8: the ring's initialisation is visible to a receiver that loads
     * this pointer (A8 in wake_ring, and stop_inbound after a barrier). */
    atomic_store_explicit(&rw->ring_pub[w->id], r, memory_order_release);
    return r;
}

static int alloc_rings(ax_engine_t *eng)
{
    uint32_t N = eng->n, cap = eng->plan->ring_slots;
    if (N < 2)
        return 0;
    eng->ring_ctl_bytes = ((size_t)(N - 1) * sizeof(ax_ring_t) + 4095) & ~(size_t)4095;
    eng->ring_slot_bytes = (size_t)cap * sizeof(ax_msg_t); /* whole pages from 64 slots up */
    eng->ring_recv_bytes = eng->ring_ctl_bytes + (size_t)(N - 1) * eng->ring_slot_bytes;
    eng->ring_mem_len = eng->ring_recv_bytes * N;
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
        char *base = (char *)mem + eng->ring_recv_bytes * r;
        if (eng->plan->pinned) {
            char err[256];
            int rc = ax_topo_bind_memory(eng->topo, base, eng->ring_recv_bytes,
                                         eng->plan->workers[r].numa, err, sizeof err);
            if (rc < 0) {
                set_error("engine: binding worker %u's rings: %s", r, err);
                return rc;
            }
        }
        for (uint32_t s = 0; s < N; s++) {
            if (s == r)
                continue;
            if (eng->use_bell)
                eng->w[s]->out[r] = eng->w[s]->no_ring; /* opened on first use */
            else
                eng->w[r]->in[s] = ax__ring_open(eng->w[s], r);
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
    w->home = eng->home;
    w->ref_base = ax__ref_make(eng->home, i, 0, 0);
    w->send_nw = N;
    w->send_self = eng->home + i; /* bits 63..42 of this worker's refs */
    w->batch_src = AX_SRC_NONE; /* no batch in flight until the first drain */
    w->arena = ax_arena_group_get(eng->arenas, i);
    w->batch = ax_config_batch(&eng->cfg);
    w->nwords = (N + 63) / 64;
    w->use_bell = eng->use_bell;
    /* Every per-worker array gets cache lines of its own: these are tiny
     * (N bytes to N pointers) and plain calloc packs one worker's next to
     * another's, so writing is_dirty[d] (now the ring's p_dirty) on every
     * send bounced a line
     * between the two cores (83% of the send path's samples in a 2-worker
     * ping-pong). */
    w->out = xcalloc_aligned(N, sizeof *w->out);
    w->in = xcalloc_aligned(N, sizeof *w->in);
    w->ovf = xcalloc_aligned(N, sizeof *w->ovf);
    w->dirty = xcalloc_aligned(N, sizeof *w->dirty);
    w->ovf_list = xcalloc_aligned(N, sizeof *w->ovf_list);
    w->active = xcalloc_aligned(N, sizeof *w->active);
    w->awake = xcalloc_aligned(N, 1);
    w->ring_idle = xcalloc_aligned(N, 1);
    w->bell = xcalloc_aligned(w->nwords, sizeof *w->bell);
    w->ring_pub = xcalloc_aligned(N, sizeof *w->ring_pub);
    w->no_ring = xcalloc_aligned(1, sizeof *w->no_ring);
    w->st.from = xcalloc_aligned(N, sizeof *w->st.from);
    if (!w->out || !w->in || !w->ovf || !w->dirty || !w->ovf_list || !w->active ||
        !w->awake || !w->ring_idle || !w->bell || !w->ring_pub || !w->no_ring || !w->st.from)
        return -ENOMEM;
    /* Without bells every inbound ring is polled, always: the active list
     * is all of them, in worker order, and never changes. */
    if (!w->use_bell)
        for (uint32_t s = 0; s < N; s++)
            if (s != i)
                w->active[w->nactive++] = s;
    /* Always full (one slot, taken; head never moves): a send to a
     * worker we have no ring to yet takes the cold path, which opens it. */
    ax_ring_init_full(w->no_ring);
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
    w->slot_mask = 1;
    while (w->slot_mask < w->max_slots) /* max_slots <= 2^24: no overflow */
        w->slot_mask <<= 1;
    w->table_len = (size_t)w->slot_mask * sizeof(ax_slot_t);
    w->slot_mask -= 1;
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
    free(w->ovf_list);
    free(w->active);
    free(w->awake);
    free(w->ring_idle);
    free(w->bell);
    free(w->ring_pub);
    free(w->no_ring);
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
    /* Outside a cluster: node 0, incarnation tag 1 (axon.h). */
    uint32_t inc_tag = 1;
    if (ax__cluster_wanted(&eng->cfg) &&
        (rc = ax__cluster_pick_tag(&eng->cfg, &inc_tag, err, sizeof err)) < 0) {
        set_error("%s", err);
        goto fail;
    }
    eng->home = ax__ref_home(ax__cluster_wanted(&eng->cfg) ? eng->cfg.cluster_node_id : 0, inc_tag);
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
    /* Yield instead: only where the spin is off for want of a CPU of
     * one's own (unpinned), never where the user turned the spin off on
     * pinned workers (they asked to sleep between messages). */
    int32_t yield_us = eng->cfg.cluster_yield_us ? eng->cfg.cluster_yield_us : 50;
    eng->yield_ns = (yield_us < 0 || eng->plan->pinned) ? 0 : (int64_t)yield_us * 1000;
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
    if (ax__cluster_wanted(&eng->cfg) && (rc = ax__cluster_create(eng, inc_tag, err, sizeof err)) < 0) {
        set_error("%s", err);
        goto fail;
    }
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
    if (!bad && (rc = ax__cluster_start(eng)) < 0) {
        set_error("engine: cannot start the cluster control thread: %s; nothing was started",
                  strerror(-rc));
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
    ax__cluster_destroy(eng); /* the control thread first: it posts to workers */
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
    o->turns = LD(w->wd_turn);
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
