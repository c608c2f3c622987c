/* engine/engine_internal.h - declarations shared by the engine's .c files
 * (engine.c: lifecycle and loop; actor.c: spawn, send, dispatch, stop;
 * inbox.c: the external MPSC inbox; io_glue.c: the worker's io_uring).
 * Not installed; not for io/, alloc/ or topology/.
 */
#ifndef AXON_ENGINE_INTERNAL_H
#define AXON_ENGINE_INTERNAL_H

#include "engine/failure.h"
#include "engine/trace.h"
#include "engine/worker.h"

/* Batch sources (w->cur_src) besides a worker index. */
#define AX_SRC_LOCAL UINT32_MAX
#define AX_SRC_EXTERNAL (UINT32_MAX - 1)
#define AX_SRC_NONE (UINT32_MAX - 3) /* no batch in flight (EMB_SRC_NONE is - 2) */

/* System message types (between AX_TYPE_SYSTEM and AX_TYPE_IO). */
#define AX_SYS_SPAWN (AX_TYPE_SYSTEM + 1)     /* blob: ax_spawn_req_t, arena */
#define AX_SYS_SPAWN_EXT (AX_TYPE_SYSTEM + 2) /* payload.u64[0]: malloc'ed ax_spawn_req_t */
#define AX_SYS_REQ_FAIL (AX_TYPE_SYSTEM + 3)  /* a reply carrying -errno in payload.u64[0] */
#define AX_SYS_REQ_TIMEOUT (AX_TYPE_SYSTEM + 4) /* to the asker: payload.u64[0] = request id */

/* Where a request's or reply's correlation id travels: the last payload word. */
#define AX_REQ_ID_WORD (AX_INLINE_MAX / 8 - 1)
/* Failure and resource control (engine/failure.c).  `from` is the actor
 * the request is about or from; see each handler. */
#define AX_SYS_MONITOR (AX_TYPE_SYSTEM + 0x10) /* from watcher; u64[0]: id */
#define AX_SYS_DEMONITOR (AX_TYPE_SYSTEM + 0x11) /* from watcher; u64[0]: id */
#define AX_SYS_DOWN (AX_TYPE_SYSTEM + 0x12)    /* from target; as AX_TYPE_DOWN */
#define AX_SYS_LINK (AX_TYPE_SYSTEM + 0x13)    /* from linker */
#define AX_SYS_UNLINK (AX_TYPE_SYSTEM + 0x14)  /* from unlinker */
#define AX_SYS_EXIT (AX_TYPE_SYSTEM + 0x15)    /* from the stopped peer; as AX_TYPE_EXIT */
#define AX_SYS_KILL (AX_TYPE_SYSTEM + 0x16)    /* from killer (or none) */
#define AX_SYS_RESTART (AX_TYPE_SYSTEM + 0x17) /* u64[0]: flags, u64[1]: monitor id */
#define AX_SYS_RELEASE (AX_TYPE_SYSTEM + 0x18)
#define AX_SYS_REVOKE (AX_TYPE_SYSTEM + 0x19)  /* to the worker; u64[0]: ax_sponsor_t * */
#define AX_SYS_CANCELLED (AX_TYPE_SYSTEM + 0x1a) /* an I/O completion of a stopped incarnation */
#define AX_SYS_FAULT_FIRST AX_SYS_MONITOR
#define AX_SYS_FAULT_LAST AX_SYS_CANCELLED

/* Engine-internal message flag: an I/O completion or timer posted by the
 * worker for a local actor (cancelled in the local FIFO when its actor
 * stops or restarts). */
#define AX_MSG_F_IO 0x80u
/* Engine-internal message flag: a system message (type in [AX_TYPE_SYSTEM,
 * AX_TYPE_IO)), set by ax_msg_commit and ax__post_local, so that the drain
 * loops find system messages, replies and blobs with one test. */
#define AX_MSG_F_SYS AX__MSG_F_SYS

typedef struct ax_spawn_req {
    ax_behaviour_fn fn;
    ax_init_fn init;
    ax_fini_fn fini;
    uint32_t state_size;
    uint32_t arg_len;
    ax_sponsor_t *sponsor; /* NULL: root; holds one reference (failure.c) */
    uint32_t flags;        /* AX_SPAWN_F_* */
    uint32_t pad_;
    ax_ref_t peer;         /* AX_SPAWN_F_MONITOR / _LINK: the spawner */
    uint64_t mon_id;       /* AX_SPAWN_F_MONITOR */
    unsigned char arg[AX_SPAWN_ARG_MAX];
} ax_spawn_req_t;

typedef struct ax_inbox_node {
    struct ax_inbox_node *_Atomic next;
    char pad[56];
    ax_msg_t msg;
} ax_inbox_node_t;

uint64_t ax__now_ns(void);

/* The seq_cst fences of the park/wake and shutdown handshakes (F1, F2, F3).
 * ThreadSanitizer does not model fences (gcc refuses them under
 * -fsanitize=thread), so there every fence is a seq_cst RMW on one
 * engine-wide word: all such RMWs are totally ordered and synchronise, which
 * is at least as strong as the fences, and lets TSan check the rest. */
#if defined(__SANITIZE_THREAD__)
#define AX_FENCE_SEQ_CST(eng) atomic_fetch_add_explicit(&(eng)->tsan_fence, 1, memory_order_seq_cst)
#else
#define AX_FENCE_SEQ_CST(eng) atomic_thread_fence(memory_order_seq_cst)
#endif
static inline void ax__cpu_relax(void) { __builtin_ia32_pause(); }

/* engine.c */
void ax__flush(ax_worker_t *w);
/* One loop turn (engine.c); exposed for perf/bench_engine_turn.c, which
 * drives a worker of an engine that was created but not started. */
uint32_t ax__run_turn(ax_worker_t *w);
void ax__wake(ax_engine_t *eng, ax_worker_t *from, uint32_t t);
/* Open the ring w -> d (w's thread; the send's cold path, once per pair,
 * when the doorbell is on): its memory on d's node, published to d. */
ax_ring_t *ax__ring_open(ax_worker_t *w, uint32_t d);
/* Park the calling worker until a wake, a completion or timeout_ns (-1:
 * none); returns at once if it has work.  Exposed for perf/mesh_sim.c,
 * which parks the workers of an engine it never started (timeout 0). */
void ax__park(ax_worker_t *w, int64_t timeout_ns);
/* stop_when_idle's check: stops the engine and returns true if it is quiet. */
bool ax__try_quiesce(ax_engine_t *eng);

/* actor.c */
void ax__dispatch_slow(ax_worker_t *w, ax_msg_t *m);
ax_msg_t *ax__msg_slot_slow(ax_worker_t *w, ax_ref_t to, int *err, uint8_t *stamp);
void ax__blob_release(ax_worker_t *w, const ax_msg_t *m);
void ax__actor_stop(ax_worker_t *w, ax_actor_t *a); /* reason: what it set, else normal */
/* For engine/failure.c: */
void ax__slot_free(ax_worker_t *w, uint32_t slot);  /* bump the generation, free the slot */
/* Freed slots wait in the owner's private cache (w->pfree) at most this
 * many at a time, and at most until the end of the owner's turn. */
#define AX_PFREE_MAX 64u
void ax__slots_spill(ax_worker_t *w); /* cold: push the private cache to shared_free */
/* End of a turn: make every slot freed in it visible to other spawners. */
static inline void ax__slots_publish(ax_worker_t *w)
{
    if (w->pfree_n)
        ax__slots_spill(w);
}
void ax__actor_free(ax_worker_t *w, ax_actor_t *a); /* the block only */
void ax__free_payload(ax_worker_t *w, const ax_msg_t *m);
/* Run init as actor a (ref); stops it with its reason if init asked to. */
void ax__actor_run_init(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref, ax_init_fn init,
                        const void *arg, size_t arg_len);
/* Post a message from outside the engine to worker ax_ref_worker(msg->to)
 * (any type; the inbox path of ax_engine_send).  0, -EINVAL, -ENOMEM,
 * -ESHUTDOWN. */
int ax__ext_post(ax_engine_t *eng, const ax_msg_t *msg);
/* request.c: after a behaviour that asked to stop or to unstash (cold). */
void ax__actor_after(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref);
ax_msg_t *ax__lq_grow(ax_worker_t *w); /* cold: double the local FIFO; NULL: -ENOMEM */
void ax__lq_release_old(ax_worker_t *w); /* free the pre-growth buffer (after a dispatch) */
void ax__lq_fini(ax_worker_t *w);

/* Relaxed increment of a counter only its owner writes: a plain add, but
 * other threads may read it (stats) without a data race. */
#define AX_STAT_INC(field) \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + 1, \
                          memory_order_relaxed)

/* The slot for a message to `to` when the fast case applies (the caller
 * fills payload and finishes with ax_msg_commit(m, type, len, flags, *stamp),
 * which publishes a ring slot to its consumer): the local
 * FIFO has room in its tail chunk, or the ring to the destination has room
 * and no older message waits in its overflow.  NULL otherwise (the caller
 * then takes its cold path, which handles every case).  Makes no call, so a
 * send's fast path needs no stack frame. */
/* Local FIFO: a slot at the tail, or NULL when full (caller grows it).
 * w->lq is allocated at worker create and freed only once `closing` is set,
 * which every path checks before pushing. */
static inline ax_msg_t *ax__lq_push(ax_worker_t *w)
{
    if (__builtin_expect(w->lq_tail - w->lq_head > w->lq_mask, 0))
        return NULL;
    return &w->lq[w->lq_tail++ & w->lq_mask];
}

static inline uint32_t ax__lq_count(const ax_worker_t *w) { return w->lq_tail - w->lq_head; }

/* Give back the message the fast path charged to a lease (owner-only,
 * relaxed for stats readers): no slot was found, the slow path charges
 * again.  Inline: it reloads the sponsor, so it holds no register across
 * the fast path, and a call here (it was out of line) made the remote send
 * keep its arguments in callee-saved registers for the tail call after it
 * (a stack frame on every remote send). */
__attribute__((always_inline)) static inline void ax__sp_untake_fast(ax_sp_local_t *sp)
{
    atomic_store_explicit(&sp->left[AX_RES_MSGS],
                          atomic_load_explicit(&sp->left[AX_RES_MSGS], memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Inlined into every send: the per-call overhead was a third of the send.
 * Sponsors: an actor under the root sponsor pays the a->sp test; one under
 * a bounded sponsor a test and a decrement of its worker's lease (the slow
 * path refills it or answers -EDQUOT). */
__attribute__((always_inline)) static inline ax_msg_t *ax__msg_slot_try_d(ax_worker_t *w, ax_ref_t to,
                                                                         uint32_t d, uint8_t *stamp)
{
    ax_msg_t *m;
    ax_actor_t *ca = w->cur;
    ax_sp_local_t *sp = ca ? ca->sp : NULL;
    *stamp = 0;
    /* send_nw: nworkers, 0 once closing (shutdown): one test for both. */
    if (__builtin_expect(d >= w->send_nw, 0))
        return NULL;
    /* The lease is charged here, before the slot is found, and given back
     * if none is (ax__sp_untake_fast, reloading it), so that no register holds the
     * sponsor across the rest: the fast path then needs no stack frame. */
    if (__builtin_expect(sp != NULL, 0)) {
        uint64_t left = atomic_load_explicit(&sp->left[AX_RES_MSGS], memory_order_relaxed);
        if (!left)
            return NULL; /* lease empty: the slow path refills or refuses */
        /* owner-only lease, relaxed for stats readers */
        atomic_store_explicit(&sp->left[AX_RES_MSGS], left - 1, memory_order_relaxed);
    }
    if (d == w->id) {
        uint32_t tail = w->lq_tail;
        if (__builtin_expect(tail - w->lq_head > w->lq_mask, 0))
            goto none; /* full: the slow path grows it */
        m = &w->lq[tail & w->lq_mask];
        w->lq_tail = tail + 1;
    } else {
        ax_ring_t *r = w->out[d];
        if (__builtin_expect(r->p_ovf != 0, 0) || /* older messages wait in w->ovf[d] */
            __builtin_expect(!ax_ring_try_reserve(r, &m, stamp), 0))
            goto none;
        if (!r->p_dirty) {
            r->p_dirty = 1;
            w->dirty[w->ndirty++] = d;
        }
        w->sent_remote++; /* into st.msgs_sent_remote at the flush */
    }
    m->to = to;
    m->from = w->head.self;
    w->sent++;
    return m;
none:
    if (__builtin_expect(w->cur != NULL && w->cur->sp != NULL, 0))
        ax__sp_untake_fast(w->cur->sp);
    return NULL;
}

/* The same, finding the destination worker d = ax__ref_dest(w->home, to). */
__attribute__((always_inline)) static inline ax_msg_t *ax__msg_slot_try(ax_worker_t *w, ax_ref_t to,
                                                                       uint8_t *stamp)
{
    return ax__msg_slot_try_d(w, to, ax__ref_dest(w->home, to), stamp);
}

/* The inline same-worker half of ax_send / ax_send_u64, for a destination
 * the caller found equal to w->send_self (this worker, not closing, send
 * probe off at the turn's start): the FIFO's room and the sponsor's lease,
 * as in ax__msg_slot_try.  false: the caller takes its slow path (which
 * handles every case).  Otherwise *mp is the tail slot, which the caller fills
 * (payload and ax_msg_commit with stamp 0: only local pushes) and then
 * finishes with ax__msg_local_done.  Split so that the payload is stored
 * before the tail moves: written as one function, gcc kept the tail in
 * %ecx and moved the payload argument (and the ref) to other registers on
 * every send, and tested a returned pointer for NULL. */
__attribute__((always_inline)) static inline bool ax__msg_slot_local(ax_worker_t *w, ax_msg_t **mp)
{
    uint32_t tail = w->lq_tail;
    ax_actor_t *ca = w->cur;
    if (__builtin_expect(tail - w->lq_head > w->lq_mask, 0))
        return false; /* full: the slow path grows it */
    /* The room is found first, so a lease charged here is never given back. */
    ax_sp_local_t *sp = ca ? ca->sp : NULL;
    if (__builtin_expect(sp != NULL, 0)) {
        uint64_t left = atomic_load_explicit(&sp->left[AX_RES_MSGS], memory_order_relaxed);
        if (!left)
            return false; /* lease empty: the slow path refills or refuses */
        /* owner-only lease, relaxed for stats readers */
        atomic_store_explicit(&sp->left[AX_RES_MSGS], left - 1, memory_order_relaxed);
    }
    *mp = &w->lq[tail & w->lq_mask];
    return true;
}

/* The end of a same-worker send whose slot m ax__msg_slot_local gave. */
__attribute__((always_inline)) static inline void ax__msg_local_done(ax_worker_t *w, ax_msg_t *m,
                                                                     ax_ref_t to)
{
    m->from = w->head.self;
    m->to = to;
    w->lq_tail++;
    w->sent++;
}

/* Every case, including errors (cold).  The caller fills the slot and
 * finishes with ax_msg_commit(m, ..., *stamp). */
static inline ax_msg_t *ax__msg_slot_fast(ax_worker_t *w, ax_ref_t to, int *err, uint8_t *stamp)
{
    ax_msg_t *m = ax__msg_slot_try(w, to, stamp);
    return m ? m : ax__msg_slot_slow(w, to, err, stamp);
}

/* Add n to a counter only its owner writes (relaxed: readers elsewhere
 * see a recent value, never a torn one). */
#define AX_STAT_ADD(field, n) \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
                          memory_order_relaxed)

/* The fields the watchdog thread samples (engine/watchdog.c): w->cur,
 * w->head.self, w->head.msg.  Their owner writes them with relaxed atomic
 * stores (the same single mov as a plain store on x86-64, so dispatch costs
 * nothing more) so that the watchdog's relaxed loads are not a data race;
 * the owner's own reads (ax_self, ax_sender) stay plain.  Nothing is
 * published through them: the watchdog only compares values over time and
 * re-checks them after it reads what they point to (engine/watchdog.c). */
#define AX_WD_SET(lv, v) __atomic_store_n(&(lv), (v), __ATOMIC_RELAXED)

/* Run message m as actor a (found and checked by the caller): the
 * behaviour, then the blob's release.  The caller handles a stop. */
static inline void ax__run(ax_worker_t *w, ax_actor_t *a, ax_msg_t *m)
{
    AX_WD_SET(w->cur, a);
    AX_WD_SET(w->head.self, m->to);
    AX_WD_SET(w->head.msg, m);
    AX_TRACE_DISPATCH_BEGIN(w->id, m->to, m->type);
    a->fn(w, a->state, m);
    AX_TRACE_DISPATCH_END(w->id, m->to);
    if (__builtin_expect((m->flags & AX_MSG_F_BLOB) != 0, 0))
        ax__blob_release(w, m);
    AX_WD_SET(w->cur, NULL);
    AX_WD_SET(w->head.self, AX_REF_NONE);
    AX_WD_SET(w->head.msg, NULL);
}

/* Run one message: the common case inline, everything unusual (system
 * messages, replies, embryos, dormant or CPU-metered actors, dead letters)
 * in ax__dispatch_slow.  Counts nothing: the drain loops count what they
 * take, once per batch. */
static inline void ax__dispatch(ax_worker_t *w, ax_msg_t *m)
{
    uint32_t slot = (uint32_t)m->to & w->slot_mask; /* no bound test: see slot_mask */
    ax_actor_t *a;
    if (__builtin_expect((m->type >= AX_TYPE_SYSTEM && m->type < AX_TYPE_IO) ||
                             (m->flags & AX_MSG_F_REPLY), 0))
        goto slow;
    a = w->table[slot].actor;
    /* a->ref == to: the slot's generation (and the worker bits) match. */
    if (__builtin_expect(!a || a->ref != m->to || (a->flags & AX_ACTOR_SLOW_MASK), 0))
        goto slow;
    ax__run(w, a, m);
    /* Stop and unstash share one test (request.c). */
    if (__builtin_expect((a->flags & (AX_ACTOR_STOPPING | AX_ACTOR_UNSTASH)) != 0, 0))
        ax__actor_after(w, a, m->to);
    return;
slow:
    ax__dispatch_slow(w, m);
}

/* ---- the drain loops' dispatch (engine.c) ----------------------------------------
 * ax__dispatch with the per-message costs a batch can share moved out:
 *  - inlined whole into the loop (ax__run was an out-of-line call);
 *  - the dispatch probes' semaphores are read once per batch
 *    (ax__trace_dispatch_on) and the loop is compiled twice, traced and
 *    untraced, so an untraced dispatch tests nothing; a probe attached
 *    mid-batch fires from the next batch on;
 *  - the watchdog's fields (w->cur, head.self, head.msg) are set for each
 *    behaviour but cleared once per batch (ax__run_clear), not after each:
 *    the next message's stores overwrite them, and they are cleared before
 *    anything that runs outside a behaviour (the slow path, a stop or an
 *    unstash, the end of the batch), so sends from those never see a stale
 *    w->cur or self.  Only the loop's own bookkeeping runs between two
 *    behaviours with the fields still set;
 *  - one comparison finds every type that is not a plain user message. */
static inline bool ax__trace_dispatch_on(void)
{
    return AX__TRACE_ON(dispatch_begin) || AX__TRACE_ON(dispatch_end);
}

static inline void ax__run_clear(ax_worker_t *w)
{
    AX_WD_SET(w->cur, NULL);
    AX_WD_SET(w->head.self, AX_REF_NONE);
    AX_WD_SET(w->head.msg, NULL);
}

/* After a behaviour the batch loop ran, when w->after was set (cold). */
void ax__after_batch(ax_worker_t *w, ax_actor_t *a, ax_ref_t to);

/* Sanitizer builds check that every system message carries AX_MSG_F_SYS
 * (the batch loop's one flag test relies on it; ax_msg_commit sets it). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
void ax__sys_flag_missing(const ax_msg_t *m); /* aborts */
#define AX__CHECK_SYS_FLAG(m)                                                                \
    do {                                                                                   \
        if ((m)->type - AX_TYPE_SYSTEM < AX_TYPE_IO - AX_TYPE_SYSTEM)                      \
            ax__sys_flag_missing(m);                                                       \
    } while (0)
#else
#define AX__CHECK_SYS_FLAG(m) ((void)0)
#endif

/* Run m as the live, fast-path actor a (ref `to`): the behaviour, the
 * blob's release when `blob`, and the after-hint's one test. */
__attribute__((always_inline)) static inline void ax__batch_run(ax_worker_t *w, ax_msg_t *m,
                                                                ax_actor_t *a, ax_ref_t to,
                                                                const bool traced, const bool blob)
{
    AX_WD_SET(w->cur, a);
    AX_WD_SET(w->head.self, to);
    AX_WD_SET(w->head.msg, m);
    if (traced)
        AX_TRACE_DISPATCH_BEGIN(w->id, to, m->type);
    a->fn(w, a->state, m);
    if (traced)
        AX_TRACE_DISPATCH_END(w->id, to);
    if (blob)
        ax__blob_release(w, m);
    /* Stop, unstash and a grown FIFO share one test (w->after). */
    if (__builtin_expect(w->after != 0, 0))
        ax__after_batch(w, a, to);
}

/* tbl: w->table, which never moves after the worker is created; a loop
 * that reads it once before its batch keeps it in a register across the
 * behaviour calls (the compiler must otherwise reload it after each). */
__attribute__((always_inline)) static inline void ax__dispatch_batch_t(ax_worker_t *w, ax_msg_t *m,
                                                                       ax_slot_t *const tbl,
                                                                       const bool traced)
{
    ax_ref_t to = m->to;
    /* The table has slot_mask + 1 entries: a slot at or above max_slots
     * finds a NULL entry or an actor whose ref differs, and goes slow. */
    uint32_t slot = (uint32_t)to & w->slot_mask;
    uint32_t fl = m->flags;
    ax_actor_t *a;
    /* System messages (AX_MSG_F_SYS), replies and blobs: one test. */
    if (__builtin_expect((fl & (AX_MSG_F_SYS | AX_MSG_F_REPLY | AX_MSG_F_BLOB)) != 0, 0))
        goto check;
    AX__CHECK_SYS_FLAG(m);
    a = tbl[slot].actor;
    /* The actor's own reference (its slot's generation, this worker's
     * bits): one compare instead of the slot's gen, shifted and masked. */
    if (__builtin_expect(!a || a->ref != to || (a->flags & AX_ACTOR_SLOW_MASK), 0))
        goto slow;
    ax__batch_run(w, m, a, to, traced, false);
    return;
check: /* a blob (user message or I/O completion) runs here, with its release */
    if (fl & (AX_MSG_F_SYS | AX_MSG_F_REPLY))
        goto slow;
    AX__CHECK_SYS_FLAG(m);
    a = tbl[slot].actor;
    /* The actor's own reference (its slot's generation, this worker's
     * bits): one compare instead of the slot's gen, shifted and masked. */
    if (__builtin_expect(!a || a->ref != to || (a->flags & AX_ACTOR_SLOW_MASK), 0))
        goto slow;
    ax__batch_run(w, m, a, to, traced, true);
    return;
slow:
    ax__run_clear(w);
    ax__dispatch_slow(w, m);
    if (__builtin_expect(w->after != 0, 0)) { /* handled there, but for a grown FIFO */
        w->after = 0;
        if (w->lq_old)
            ax__lq_release_old(w);
    }
}
__attribute__((always_inline)) static inline void ax__dispatch_batch(ax_worker_t *w, ax_msg_t *m,
                                                                     const bool traced)
{
    ax__dispatch_batch_t(w, m, w->table, traced);
}
void ax__worker_shutdown(ax_worker_t *w); /* on the worker thread, after its loop */
void ax__dead_letter(ax_worker_t *w, const ax_msg_t *m);

/* request.c: conversations (requests, replies, stash, outside calls) */
/* A message with AX_MSG_F_REPLY or a AX_SYS_REQ_* type reached dispatch. */
bool ax__conv_dispatch(ax_worker_t *w, ax_msg_t *m); /* false: nothing ran it (late) */
/* failure.c: a DOWN (reason kind `kind`) for monitor `mon` of live actor a
 * (ref asker) arrived and its record is removed; true if it belonged to a
 * request (then consumed: completed, or for AX_REASON_NO_ACTOR left to the
 * request's own delivery, which answers it). */
bool ax__conv_down(ax_worker_t *w, ax_actor_t *a, ax_ref_t asker, uint64_t mon, uint32_t kind);
/* Actor a (AX_ACTOR_CONV) is stopping: cancel its requests, free its stash. */
void ax__conv_actor_stop(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref);
/* A request that will not be handled (dead letter, dropped at stop):
 * complete it with status (-ESRCH, -ESHUTDOWN). */
void ax__request_undeliverable(ax_worker_t *w, const ax_msg_t *m, int status);
void ax__conv_fini(ax_worker_t *w);
int ax__calls_init(ax_engine_t *eng);
void ax__calls_fini(ax_engine_t *eng);
/* The target of outside future `id` (a no-timeout request, which monitors
 * it with watcher AX_REF_NONE) stopped: complete it with -ESRCH if pending
 * (kind AX_REASON_NO_ACTOR: only forget the monitor, see request.c).
 * Called by failure.c instead of sending a DOWN to AX_REF_NONE. [any] */
void ax__calls_down(ax_engine_t *eng, uint64_t id, uint32_t kind);

void ax__worker_discard(ax_worker_t *w);  /* engine never started: drop queued work */
int ax__claim_slot(ax_worker_t *t, uint32_t *slot, uint32_t *gen); /* any thread */

/* watchdog.c: the watchdog thread (started after the workers, stopped
 * after they are joined), and fault.c: the fault-signal report. */
int ax__watchdog_start(ax_engine_t *eng);
void ax__watchdog_stop(ax_engine_t *eng);
int ax__fault_engine_init(ax_engine_t *eng);  /* create: take a reference on the handlers */
void ax__fault_engine_fini(ax_engine_t *eng); /* destroy: drop it */
void ax__fault_worker_enter(ax_worker_t *w);  /* worker thread: altstack, thread-local */
void ax__fault_worker_leave(ax_worker_t *w);

/* failure.c: node `node` is down: DOWN / EXIT (unreachable) for what
 * watches or links to its actors (called by engine/cluster_glue.c). */
void ax__fault_node_down(ax_worker_t *w, uint32_t node, uint32_t kind);

/* inbox.c */
int ax__inbox_init(ax_worker_t *w);
void ax__inbox_fini(ax_worker_t *w);
void ax__inbox_push(ax_worker_t *w, ax_inbox_node_t *n); /* any thread */
ax_inbox_node_t *ax__inbox_pop(ax_worker_t *w);         /* owner */
bool ax__inbox_nonempty(ax_worker_t *w);                /* owner */
ax_inbox_node_t *ax__inbox_node_alloc(void);
void ax__inbox_node_free(ax_inbox_node_t *n);

/* A turn that finds more than a batch of local messages queued does not
 * poll its io (engine.c, ax__run_turn); after this many such turns in a
 * row it polls anyway, so io and timers wait a bounded number of turns. */
#define AX_IO_SKIP_MAX 64u

/* io_glue.c: the worker's io_uring and timers */
void ax__io_start(ax_worker_t *w);  /* worker thread: create the ring */
void ax__io_stop(ax_worker_t *w);   /* worker thread: cancel, reap, destroy */
uint32_t ax__io_poll(ax_worker_t *w, bool timers_now); /* timers_now: check them this turn */
void ax__io_submit(ax_worker_t *w); /* queued SQEs only: no completion, no new input */
bool ax__io_ready(ax_worker_t *w);  /* completions waiting or timers due */
bool ax__io_cq_ready(ax_worker_t *w); /* completions waiting (no clock read) */
uint32_t ax__io_pending(ax_worker_t *w);
void ax__io_park(ax_worker_t *w, int64_t timeout_ns);
void ax__io_wake(struct ax_io *from, struct ax_io *target);
int64_t ax__next_timeout(ax_worker_t *w); /* ns until the next timer, -1: none */

#endif /* AXON_ENGINE_INTERNAL_H */
