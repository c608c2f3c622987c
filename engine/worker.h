/* engine/worker.h - the engine's internal structures: engine, worker (which
 * is the behaviours' ax_ctx_t), actor, actor table; and the internal calls
 * other engine files (io_api.c) use.
 *
 * Threading: a worker's fields are written only by its own thread, except
 * the ones grouped under "shared" below, whose protocol is in engine.c.
 * Memory: a worker's actors, queues and blobs come from its arena; the actor
 * table is its own mapping, bound to the worker's node.
 */
#ifndef AXON_ENGINE_WORKER_H
#define AXON_ENGINE_WORKER_H

#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc/arena.h"
#include "axon/axon.h"
#include "axon/failure.h"
#include "axon/watchdog.h"
#include "engine/mq.h"
#include "engine/ring.h"

struct ax_io;
struct ax_timers;
struct ax_conv;
struct ax_calls;
struct ax_cl;
struct ax_clw;

/* ---- references --------------------------------------------------------------
 * See axon.h: [63..56 node][55..52 incarnation][51..42 worker][41..24 gen]
 * [23..0 slot].  A worker's "home" is bits 63..42 of its references,
 * (node << 14 | incarnation << 10 | worker); ax__ref_dest subtracts the
 * engine's home base (worker 0), so a local reference gives its worker index
 * and any other node's (or a stale incarnation's) a value >= nworkers. */
#define AX_REF_SLOT_BITS 24u
#define AX_REF_GEN_BITS 18u
#define AX_REF_GEN_MASK ((1u << AX_REF_GEN_BITS) - 1u)
#define AX_MAX_SLOTS (1u << AX_REF_SLOT_BITS)
#define AX_MAX_WORKERS 1024u
#define AX_REF_INC_MAX 15u
_Static_assert(AX_REF_SLOT_BITS + AX_REF_GEN_BITS == AX_REF_WORKER_SHIFT, "fields are contiguous");
/* ax_config_validate refuses what a reference cannot name (scheduler.max_actors,
 * workers.count) before any engine is made. */
_Static_assert(AX_ACTORS_MAX == AX_MAX_SLOTS, "max_actors's limit is the slot field's size");
_Static_assert(AX_WORKERS_MAX <= AX_MAX_WORKERS, "workers.count's limit fits a reference");

/* The home base of node `node`, incarnation `inc` (worker 0). */
static inline uint32_t ax__ref_home(uint32_t node, uint32_t inc) { return node << 14 | inc << 10; }
static inline ax_ref_t ax__ref_make(uint32_t home, uint32_t worker, uint32_t gen, uint32_t slot)
{
    return ((uint64_t)(home + worker) << AX_REF_WORKER_SHIFT) |
           ((uint64_t)(gen & AX_REF_GEN_MASK) << AX_REF_SLOT_BITS) | slot;
}
/* The local worker index of r, or a value >= the engine's worker count when
 * r lives on another node or incarnation (or is AX_REF_NONE). */
static inline uint32_t ax__ref_dest(uint32_t home, ax_ref_t r)
{
    return (uint32_t)(r >> AX_REF_WORKER_SHIFT) - home;
}
static inline uint32_t ax__ref_slot(ax_ref_t r) { return (uint32_t)(r & (AX_MAX_SLOTS - 1)); }
static inline uint32_t ax__ref_gen(ax_ref_t r) { return (uint32_t)(r >> AX_REF_SLOT_BITS) & AX_REF_GEN_MASK; }

/* ---- actors -------------------------------------------------------------------- */
enum {
    AX_ACTOR_STOPPING = 1u << 0, /* ax_stop_self/ax_fail called: stop after this message */
    AX_ACTOR_LARGE = 1u << 1,    /* block from ax_large_alloc, not the arena */
    AX_ACTOR_EMBRYO = 1u << 2,   /* remote spawn not arrived yet: messages wait */
    /* Failure and resource control (engine/failure.c): */
    AX_ACTOR_DORMANT = 1u << 3,  /* restartable, stopped: messages are held */
    AX_ACTOR_CPU = 1u << 4,      /* sponsor bounds CPU time: dispatch measures it */
    AX_ACTOR_EXT = 1u << 5,      /* has records or a sponsor: the stop path looks */
    AX_ACTOR_TRAP = 1u << 6,     /* traps exits */
    AX_ACTOR_RESTARTABLE = 1u << 7, /* goes dormant at stop (not after ax_release) */
    AX_ACTOR_CONV = 1u << 8,     /* has conversation state (requests, stash): request.c */
    AX_ACTOR_UNSTASH = 1u << 9,  /* ax_unstash_all called: replay after this message */
};
/* Flags that send a message to ax__dispatch_slow: one test in the fast path. */
#define AX_ACTOR_SLOW_MASK (AX_ACTOR_EMBRYO | AX_ACTOR_DORMANT | AX_ACTOR_CPU)

struct ax_rec;
struct ax_sp_local;

/* The actor header: the hot fields (fn, flags) and two pointers an actor
 * that uses no failure or sponsor feature only tests.  48 bytes, so an idle
 * actor with no state is 48 bytes of arena + a 16-byte slot (the
 * engine/idle_actor_bytes goal is 64).  Everything else (monitors, links,
 * I/O list, restart data, the sponsor's actor list) is in records. */
typedef struct ax_actor {
    ax_behaviour_fn fn;
    ax_fini_fn fini;
    struct ax_sp_local *sp; /* its sponsor's slot for this worker; NULL: root */
    struct ax_rec *recs;    /* records (engine/failure.h); NULL: none */
    /* Its reference, set when the block is placed in its slot (an
     * embryo's is AX_REF_NONE): the drain loops' fast path compares a
     * message's `to` with it, one compare for the slot's generation and
     * the worker bits.  The slot is its low bits (ax__actor_slot). */
    ax_ref_t ref;
    uint32_t flags;
    uint32_t state_size;
    alignas(16) unsigned char state[];
} ax_actor_t;
_Static_assert(sizeof(ax_actor_t) == 48, "actor header is 48 bytes");

static inline uint32_t ax__actor_slot(const ax_actor_t *a) { return ax__ref_slot(a->ref); }

/* An embryo (placeholder for a remotely spawned actor whose spawn request
 * has not arrived) keeps the early messages in this queue. */
typedef struct ax_embryo {
    ax_actor_t hdr;
    ax_mq_t early;
    /* Source (AX_SRC_* or a worker) of the last message kept in `early`;
     * each change of source is written into `early` as a marker message
     * (to == AX_REF_NONE, payload.u64[0] = source), so a kept message is
     * taken back out of its own source's count if it dies (actor.c). */
    uint32_t src;
} ax_embryo_t;

typedef struct ax_slot {
    ax_actor_t *actor; /* NULL: free or reserved for a remote spawn */
    uint32_t gen;      /* generation of the current (or next) occupant */
    /* Next free slot + 1 (0: end) on the free stack; UINT32_MAX once a
     * spawner claimed the slot for a spawn request (actor.c); atomic
     * because spawners on other threads read and write it. */
    _Atomic uint32_t next_free;
} ax_slot_t;

/* A chain of freed slots a worker pushed onto its shared stack in one
 * spill: first and tail (slot + 1), its length, and the head it went on
 * (actor.c free_grab). */
typedef struct ax_spill_rec {
    uint32_t first, tail, n, below;
} ax_spill_rec_t;
#define AX_SPILL_RECS 32u

/* ---- the worker (= ax_ctx_t) ------------------------------------------------------ */
/* send_self's "no inline local send": never a reference's bits 63..42
 * (ref >> 42, below 2^22). */
#define AX_SEND_SELF_OFF 0x80000000u

typedef struct ax_ctx ax_worker_t;

struct ax_ctx {
    /* First: the part axon.h reads inline (ax_self, ax_sender). */
    struct ax_ctx_head head;
    /* ---- owner-only hot fields ---- */
    ax_engine_t *eng;
    uint32_t id;
    uint32_t nworkers;
    uint32_t home;        /* ax__ref_home of this engine: local refs decode against it */
    ax_ref_t ref_base;    /* ax__ref_make(home, id, 0, 0): this worker's refs' top bits */
    ax_arena_t *arena;
    ax_slot_t *table;
    ax_actor_t *cur;      /* running actor, NULL outside a behaviour */
    /* Set by what a behaviour may ask for after it returns (ax_stop_self,
     * ax_fail and quota stops, ax_unstash_all) and by a growth of the local
     * FIFO (lq_old): the drain loops' one test after a behaviour.  A hint:
     * ax__after_batch clears it and looks at the flags themselves, so it
     * may be set spuriously (by code outside the drain loops), never missed. */
    uint8_t after;
    bool cur_blob_kept;
    uint32_t cur_src;     /* source of the batch being drained (AX_SRC_*) */
    uint32_t batch_src;   /* source whose drained count is not yet added (AX_SRC_NONE) */
    uint32_t batch_unc;   /* messages of that batch taken back (system, dead letters) */
    bool closing;         /* shutdown phase: sends fail with -ESHUTDOWN */
    /* nworkers while sends may take the fast path, 0 once closing: the
     * send's one test for a bad destination and for shutdown. */
    uint32_t send_nw;
    /* This worker's references' bits 63..42 (home + id, so a destination
     * is compared with `to >> 42` and nothing subtracted) while a
     * same-worker send may take ax_send's inline path, AX_SEND_SELF_OFF
     * while closing or while the send probe is attached (read once per
     * turn, ax__run_turn): the inline path's one test, which also spares it
     * the probe's semaphore. */
    uint32_t send_self;
    /* Ring sends not yet added to st.msgs_sent_remote (ax__flush adds them,
     * once per turn: every such send left its ring dirty). */
    uint32_t sent_remote;
    /* Same-worker FIFO: a power-of-two ring of messages that doubles when
     * full (arena up to 4 KiB, jemalloc on the worker's node beyond).  A
     * behaviour dispatched in place may push enough to grow it, so the
     * buffer it runs from is kept (lq_old) until it returns. */
    ax_msg_t *lq;
    uint32_t lq_mask, lq_head, lq_tail;
    ax_msg_t *lq_old;
    uint32_t lq_old_cap;
    ax_ring_t **out;      /* out[d]: ring self -> d (NULL for d == self) */
    ax_ring_t **in;       /* in[s]: ring s -> self (NULL: not opened, or not rung yet) */
    ax_ring_t *no_ring;   /* out[d] until ring self -> d is opened: always full */
    ax_mq_t *ovf;         /* ovf[d]: ordered overflow behind out[d] */
    uint32_t *dirty;      /* destinations with unpublished slots */
    uint32_t ndirty;
    uint32_t *ovf_list;   /* destinations with a non-empty overflow */
    uint32_t novf;
    /* Doorbell (use_bell; engine.c "Doorbell"): the inbound rings polled
     * every turn (awake: their `asleep` word is 0), unordered; every other
     * ring is asleep and its sender rings the bell.  ring_idle[s]: empty
     * polls of ring s in a row; at AX_RING_AWAKE_TURNS it goes to sleep.
     * Without bells, active lists every inbound ring, in worker order,
     * from creation on (the idle spin walks it). */
    uint32_t *active;
    uint32_t nactive;
    uint8_t *awake;
    uint8_t *ring_idle;
    uint32_t nwords;      /* words in bell */
    uint32_t batch;
    uint32_t io_skipped;  /* turns in a row that did not poll io (ax__run_turn) */
    uint64_t turn;
    /* The turn, stored once per turn for the watchdog thread and the
     * `turns` statistic (relaxed: the watchdog only compares it for
     * change, a stats reader only counts; nothing is published through
     * it; see engine/watchdog.c). */
    _Atomic uint64_t wd_turn;
    bool use_bell;
    uint32_t fresh_next, fresh_end; /* fresh slots claimed in bulk */
    /* Freed slots cached for this worker's own spawns (actor.c): a list
     * linked through next_free (slot + 1, 0: end), at most AX_PFREE_MAX
     * long, pushed to shared_free in one CAS when full and at the end of
     * every turn, so other spawners see every freed slot by then. */
    uint32_t pfree, pfree_tail, pfree_n;
    /* Chains this owner spilled (ax__slots_spill), newest last, valid
     * while the stack's head is spill_h (nobody else pushed or popped
     * since): free_grab takes the top one back in one CAS, without
     * walking it. */
    uint64_t spill_h;
    uint32_t spill_nrec;
    ax_spill_rec_t spill_rec[AX_SPILL_RECS];
    uint32_t spread_tick; /* default placement: alternates while spreading (actor.c) */
    uint32_t max_slots;   /* actor slots (spawns use slots below it) */
    /* The table's entries - 1: max_slots rounded up to a power of two, so
     * the drain loops index it with `to & slot_mask` and need no bound
     * test (an entry at or above max_slots stays NULL; a slot above the
     * mask lands on an entry whose actor's ref has other slot bits, so the
     * fast path's ref compare sends both to the slow path's checks). */
    uint32_t slot_mask;
    size_t table_len;     /* bytes mapped for the table */
    int io_rc;            /* io_uring setup result (0, or -errno: io disabled) */
    struct ax_io *io;
    struct ax_timers *timers;
    struct ax_conv *conv; /* requests and stashes (request.c); NULL until first use */
    struct ax_clw *cl;    /* cluster data path (engine/cluster_glue.c); NULL: not a node */
    /* Failure (engine/failure.c).  pend: the reason the running actor
     * (pend_actor) set with ax_stop_self / ax_fail / a quota; saved and
     * restored around nested init/fini.  fini_reason: non-NULL in a fini. */
    ax_reason_t pend;
    ax_actor_t *pend_actor;
    const ax_reason_t *fini_reason;
    uint64_t mon_seq; /* monitor ids made here: (id + 1) << 48 | seq */
    struct io_req *io_reqs; /* live I/O and timer records (engine/io_api.c) */

    /* statistics, owner-written, read by anyone (relaxed) */
    struct {
        _Atomic uint64_t msgs_local, msgs_remote, msgs_external, msgs_sent_remote, ring_full,
            overflow_hwm, dead_letters, dropped_at_stop, spawned, stopped, parks, wakes_sent,
            idle_ns, parked_ns, spawn_failed, arena_used, arena_failed, arena_hwm, arena_remote_in,
            arena_remote_out, failed, restarted, restart_dropped, downs_sent, downs_filtered,
            io_cancelled, quota_failures;
        _Atomic uint64_t watchdog; /* written by the watchdog thread only */
        _Atomic uint64_t arena_class[AX_ARENA_NCLASSES]; /* blocks in use per class */
        _Atomic uint64_t *from; /* nworkers entries */
    } st;
    uint64_t sent;    /* messages this worker enqueued (any destination) */
    uint64_t handled; /* messages this worker consumed (dispatched or dead) */
    uint64_t idle_seq_own; /* the owner's copy of idle_seq (even: running) */

    /* ---- shared: written by other threads ---- */
    /* Doorbell: bit s set by worker s when it published to ring s->self
     * while that ring was asleep. */
    alignas(64) _Atomic uint64_t *bell;
    /* Park state: 0 running, 1 parked, 2 wake sent.  See engine.c F1/F2. */
    alignas(64) _Atomic uint32_t parked;
    /* Rings to this worker: how many senders opened one (each takes the
     * next index for its ring's memory), and each one's ring, published
     * by its sender (engine.c ax__ring_open, R8). */
    alignas(64) _Atomic uint32_t rings_open;
    ax_ring_t *_Atomic *ring_pub;
    /* Fresh (never used) slots are claimed by advancing this counter. */
    alignas(64) _Atomic uint32_t fresh;
    /* Every freed slot, for any spawner: a Treiber stack whose head packs
     * (tag << 32 | slot + 1); the tag defeats ABA.  The owner pushes what
     * its stops free (in batches, from pfree), anyone pops (actor.c). */
    alignas(64) _Atomic uint64_t shared_free;
    /* External inbox (MPSC, Vyukov): producers xchg tail. */
    alignas(64) struct ax_inbox_node *_Atomic inbox_tail;
    alignas(64) struct ax_inbox_node *inbox_head; /* consumer only */
    struct ax_inbox_node *inbox_stub;
    /* Load figure for AX_ON_LEAST_LOADED: the owner stores live actors +
     * queued local messages when it parks (and every 256 busy turns);
     * spawners add one for each spawn they place here (relaxed both: a
     * hint, no ordering is needed). */
    alignas(64) _Atomic uint64_t load;
    /* Published counters for quiescence detection (release at park). */
    alignas(64) _Atomic uint64_t pub_sent, pub_handled;
    _Atomic uint32_t pub_io_pending;
    /* Odd while parked (after the re-check), +1 at every park and unpark;
     * only the owner writes it (engine.c "Quiescence"). */
    _Atomic uint64_t idle_seq;

    /* The alternate signal stack the fault report runs on (engine/fault.c),
     * and the one it replaced (restored when the worker exits). */
    void *altstack;
    size_t altstack_len;
    stack_t altstack_old;

    pthread_t thread;
    int bind_rc;
    char bind_err[160];
};

/* ---- engine ---------------------------------------------------------------------- */
struct ax_engine {
    ax_config_t cfg;
    ax_plan_t *plan;
    ax_topo_t *topo;
    uint32_t n;
    ax_worker_t **w;
    uint32_t home;        /* ax__ref_home(node id, incarnation tag) */
    struct ax_cl *cl;     /* cluster node state (engine/cluster_glue.c); NULL: not a node */
    ax_arena_group_t *arenas;
    void *ring_mem;       /* one mapping per receiver; see engine.c */
    size_t ring_mem_len;
    size_t ring_recv_bytes, ring_ctl_bytes, ring_slot_bytes; /* its layout (alloc_rings) */
    ax_dead_letter_fn dl_fn;
    void *dl_user;
    /* Worker hooks (ax_engine_add_worker_hooks): written before start,
     * read-only while workers run (the start gate orders them, R6/A6). */
    uint32_t nhooks;
    ax_worker_hooks_t hooks[AX_WORKER_HOOKS_MAX];
    bool barriers, use_bell;
    _Atomic bool joined; /* read by ax_engine_worker_stats from any thread */
    /* Set (release) before the start gate opens, so behaviours and external
     * senders that read it (acquire) during or after start see it. */
    _Atomic bool started;
    int64_t spin_ns;
    int64_t yield_ns;
    pthread_barrier_t stop_barrier; /* workers: shutdown phases */
    /* Start gate (futexes, so a start that fails half way can still let
     * the threads it made go): workers count themselves in `ready` once
     * pinned and io is set up, then wait for start_state 1 (run) or 2
     * (give up). */
    _Atomic uint32_t ready, start_state;
    _Atomic uint32_t spawn_rr;
    struct ax_calls *calls; /* outside threads' pending requests (request.c) */

    alignas(64) _Atomic uint32_t stopping;       /* workers leave their loops */
    _Atomic uint32_t stop_when_idle;
    _Atomic uint32_t ext_closed;                 /* external sends refused */
    alignas(64) _Atomic uint64_t ext_inflight;   /* external sends in progress */
    _Atomic uint64_t ext_sent;
    alignas(64) _Atomic uint64_t tsan_fence;     /* AX_FENCE_SEQ_CST under TSan only */

    /* Watchdog (engine/watchdog.c): its thread, started with the workers
     * and joined after them; wd_stop under wd_mu wakes it early. */
    uint64_t wd_ns;            /* 0: off */
    uint32_t wd_action;        /* enum ax_watchdog_action */
    ax_watchdog_fn wd_fn;
    void *wd_user;
    bool wd_running, wd_stop;
    pthread_t wd_thread;
    pthread_mutex_t wd_mu;
    pthread_cond_t wd_cv;
    struct ax_wd_box *wd_boxes; /* per worker: reports layers posted (watchdog.c);
                                   NULL without a watchdog */
    bool fault_installed;      /* this engine holds a reference on the fault handlers */
};

/* ---- internal calls ---------------------------------------------------------------- */

/* Enqueue a message for a local actor from the worker's own thread (I/O
 * completions, timers).  0, -ENOMEM, or -ESHUTDOWN once the worker is
 * closing (its local FIFO is gone). */
int ax__post_local(ax_worker_t *w, const ax_msg_t *m);

/* Implemented by engine/io_api.c: turn a completion into a message. */
void ax__io_complete(ax_worker_t *w, uint64_t token, int32_t res, uint32_t flags);

/* Timers.  Each worker owns `w->timers` (io/timer.h), created on the worker
 * thread in ax__io_start with the worker's arena as allocator, destroyed at
 * shutdown.  The loop expires due timers (checking the clock every few
 * turns while any timer exists, and before parking) and bounds its park by
 * the next deadline.  Each expiry calls ax__timer_fire, implemented by
 * engine/io_api.c, which turns (id, token) into a message.  io_api.c adds
 * timers with ax_timers_add(w->timers, ...) from behaviours. */
void ax__timer_fire(ax_worker_t *w, uint64_t id, uint64_t token);
/* A timer whose token has bit 0 set is a request's timeout (request.c):
 * token >> 1 is its record index. */
void ax__request_timeout_fire(ax_worker_t *w, uint64_t token);
/* Shutdown, once the io ring and the timers are gone: frees every I/O and
 * timer record still live, with the buffers pending requests owned. */
void ax__io_reqs_free(ax_worker_t *w);

/* Free a blob owned by this worker's thread (any arena, or large). */
void ax__blob_free(ax_worker_t *w, void *blob);

#endif /* AXON_ENGINE_WORKER_H */
