/* axon/axon.h - the actor engine: engines, actors, messages.
 *
 * An engine runs one worker thread per planned worker (one per core by
 * default, pinned).  Every actor lives on one worker; a behaviour runs one
 * message to completion and never blocks.  Messages between actors keep
 * per-pair order, locally and across workers; nothing is lost silently: a
 * send either enqueues or returns a negative errno, and a message to a
 * stopped actor is a counted dead letter.
 *
 * Who may call what (stated again at each function):
 *   [creator]  the thread that created the engine
 *   [behaviour] code running inside a behaviour (or init/fini) with its ctx
 *   [any]      any thread, including threads outside the engine
 *
 * Errors are negative errnos; a failed call did nothing.  No global state:
 * several engines may run in one process.
 */
#ifndef AXON_AXON_H
#define AXON_AXON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "axon/config.h"
#include "axon/topology.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ax_engine ax_engine_t; /* opaque */
typedef struct ax_ctx ax_ctx_t;       /* a worker's context, passed to behaviours */
typedef struct ax_sponsor ax_sponsor_t; /* a resource budget: axon/failure.h */

/* An actor reference: node, incarnation, worker, generation and slot packed
 * in 64 bits.  A plain value: copy it, compare it, put it in messages, send
 * it to another node.  A stale reference (the actor stopped, its slot
 * reused, or its node restarted) is detected, never followed.
 *
 *   bits 63..56  node id (0..255; 0 for an engine outside a cluster)
 *   bits 55..52  incarnation tag of that node (1..15, never 0: so no valid
 *                reference is 0; 1 outside a cluster; docs/cluster.md)
 *   bits 51..42  worker on that node (0..1023, AX_WORKERS_MAX)
 *   bits 41..24  generation of the slot (wraps after 262144 reuses)
 *   bits 23..0   slot in the worker's actor table (AX_ACTORS_MAX)
 *
 * Bits 63..42 (the "home" of the worker) compared against the engine's own
 * node and incarnation tell a local reference from a remote one with one
 * shift and one compare. */
typedef uint64_t ax_ref_t;
#define AX_REF_NONE ((ax_ref_t)0)
#define AX_REF_WORKER_SHIFT 42u
#define AX_REF_NODES_MAX 256u
/* Which worker a reference lives on, on its node (for placement decisions
 * and printing). */
static inline uint32_t ax_ref_worker(ax_ref_t r) { return (uint32_t)(r >> AX_REF_WORKER_SHIFT) & 0x3FFu; }
/* Which node (cluster.node_id) a reference lives on. */
static inline uint32_t ax_ref_node(ax_ref_t r) { return (uint32_t)(r >> 56); }
/* The incarnation tag (1..15) of the node when the reference was made. */
static inline uint32_t ax_ref_incarnation(ax_ref_t r) { return (uint32_t)(r >> 52) & 0xFu; }

/* Inline payload bytes in one 64-byte message. */
#define AX_INLINE_MAX 40u

/* Message flags (ax_msg_t.flags). */
#define AX_MSG_F_BLOB 0x1u /* payload is a blob: ax_msg_data() points into it */
#define AX_MSG_F_REQUEST 0x2u /* a request: the last payload word is its id (axon/request.h) */
#define AX_MSG_F_REPLY 0x4u   /* a reply: goes to a continuation, never a behaviour */

/* Reserved message types: user types must be below AX_TYPE_SYSTEM; axon's
 * libraries (axon/flow.h) use [AX_TYPE_LIB, AX_TYPE_SYSTEM): stay below
 * AX_TYPE_LIB. */
#define AX_TYPE_LIB 0xFFFE0000u
#define AX_TYPE_SYSTEM 0xFFFF0000u
#define AX_TYPE_IO     0xFFFF0100u /* completions from axon/io.h, see there */

/* A message: one cache line.  Read-only for the behaviour; valid only until
 * the behaviour returns (copy what you keep, or keep the blob). */
typedef struct ax_msg {
    ax_ref_t to;
    ax_ref_t from;  /* sender actor, or AX_REF_NONE for external/system */
#ifndef __cplusplus
    union {
        struct {
            uint32_t type; /* user tag */
            uint16_t len;  /* inline bytes; for a blob, 0 (see blob_len) */
            uint8_t flags; /* AX_MSG_F_*; other bits are engine-internal: mask them */
            uint8_t seq;   /* engine-internal (ring lap stamp): ignore */
        };
        uint64_t hdr; /* the four fields above as one word (engine-internal) */
    };
#else
    /* C++ has no anonymous structs (a GNU extension there): the same four
     * fields at the same offsets, without the engine's one-word view. */
    uint32_t type;
    uint16_t len;
    uint8_t flags;
    uint8_t seq;
#endif
    union {
        unsigned char data[AX_INLINE_MAX];
        uint64_t u64[AX_INLINE_MAX / 8];
        struct {
            void *ptr;
            uint64_t len;
        } blob;
    } payload;
} ax_msg_t;

/* The C and C++ views above must agree byte for byte. */
#ifdef __cplusplus
#define AX__STATIC_ASSERT static_assert
#else
#define AX__STATIC_ASSERT _Static_assert
#endif
AX__STATIC_ASSERT(sizeof(ax_msg_t) == 64, "a message is one cache line");
AX__STATIC_ASSERT(offsetof(ax_msg_t, type) == 16 && offsetof(ax_msg_t, len) == 20 &&
                      offsetof(ax_msg_t, flags) == 22 && offsetof(ax_msg_t, seq) == 23 &&
                      offsetof(ax_msg_t, payload) == 24,
                  "ax_msg_t has one layout in C and C++");
#undef AX__STATIC_ASSERT

static inline const void *ax_msg_data(const ax_msg_t *m)
{
    return (m->flags & AX_MSG_F_BLOB) ? m->payload.blob.ptr : (const void *)m->payload.data;
}
static inline size_t ax_msg_len(const ax_msg_t *m)
{
    return (m->flags & AX_MSG_F_BLOB) ? (size_t)m->payload.blob.len : (size_t)m->len;
}

/* A behaviour: handle one message, never block.  `state` is the actor's
 * private state (state_size bytes, zeroed at spawn). */
typedef void (*ax_behaviour_fn)(ax_ctx_t *ctx, void *state, const ax_msg_t *msg);
/* Runs on the owning worker before the first message (init) or when the
 * actor stops or the engine shuts down (fini). */
typedef void (*ax_init_fn)(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len);
typedef void (*ax_fini_fn)(ax_ctx_t *ctx, void *state);
/* Dead-letter hook: called on the worker that found the dead letter. */
typedef void (*ax_dead_letter_fn)(void *user, const ax_msg_t *msg);

/* ---- engine ---------------------------------------------------------------- */

/* Create an engine from a config (NULL: defaults + AXON_* environment is NOT
 * applied; call ax_config_apply_env yourself).  Discovers the topology, makes
 * the plan, allocates arenas and rings; starts no thread.  [any]
 * Returns 0, -EINVAL (bad config or plan: the reason is logged to stderr and
 * available from ax_engine_last_error), -ENOMEM, or another -errno.
 * A cluster node (cluster.listen or cluster.peers set) sets the environment
 * variables UCX_SYSV_ERROR_HANDLING and UCX_POSIX_ERROR_HANDLING to y unless
 * they are set (docs/cluster.md "Shared memory and progress"): do not create
 * one while another thread of the program reads or writes the environment. */
AX_API int ax_engine_create(const ax_config_t *cfg, ax_engine_t **out);
/* The reason for the last failed ax_engine_create in this thread. [any] */
AX_API const char *ax_engine_last_error(void);
/* The plan the engine runs. [any, after create] */
AX_API const ax_plan_t *ax_engine_plan(const ax_engine_t *eng);
AX_API uint32_t ax_engine_workers(const ax_engine_t *eng);

/* Optional hook for dead letters.  [creator, before start] */
AX_API void ax_engine_set_dead_letter_hook(ax_engine_t *eng, ax_dead_letter_fn fn, void *user);

/* Worker hooks: callbacks a library layer runs on every worker thread,
 * e.g. to register the thread with a userspace-RCU domain (lib/container.c
 * does: QSBR needs a quiescent point per loop turn and the thread offline
 * while it sleeps).  All run on the worker thread, outside any behaviour;
 * NULL members are skipped.  The engine costs a worker one predictable
 * branch per loop turn when no hook is set. */
typedef struct ax_worker_hooks {
    uint32_t size; /* sizeof(ax_worker_hooks_t) */
    void *user;    /* passed to every callback */
    /* Once, before the worker's first turn (before any actor runs there). */
    void (*on_start)(void *user, uint32_t worker);
    /* Once, after the worker's last actor fini (the thread then exits). */
    void (*on_stop)(void *user, uint32_t worker);
    /* Once per loop turn, between batches: no behaviour is running and none
     * holds anything it read in an earlier message (a quiescent point). */
    void (*on_turn)(void *user, uint32_t worker);
    /* Around the worker's sleep: on_park just before it blocks in the
     * kernel (no behaviour runs until on_unpark), on_unpark after. */
    void (*on_park)(void *user, uint32_t worker);
    void (*on_unpark)(void *user, uint32_t worker);
} ax_worker_hooks_t;
#define AX_WORKER_HOOKS_MAX 4u
/* Add a hook set (copied); sets run in the order added.  [creator, before
 * start]  0, -EINVAL (NULL, or size is not sizeof(ax_worker_hooks_t)),
 * -EALREADY (the engine was started: threads would miss on_start), -ENOSPC
 * (AX_WORKER_HOOKS_MAX sets already). */
AX_API int ax_engine_add_worker_hooks(ax_engine_t *eng, const ax_worker_hooks_t *hooks);

/* Start the worker threads.  [creator]  0, -EALREADY, or -errno (thread
 * creation or pinning failed: nothing is left running). */
AX_API int ax_engine_start(ax_engine_t *eng);
/* True between a successful ax_engine_start and the first ax_engine_stop
 * (or quiescence stop): the engine runs behaviours and takes external
 * sends.  A hint for layers above the engine (lib/pool.c waits for its
 * executors only while it is true); it may change right after.  [any] */
AX_API bool ax_engine_running(const ax_engine_t *eng);
/* Ask the engine to stop: external sends fail with -ESHUTDOWN from now on;
 * each worker finishes the message it is running and stops at the end of
 * its turn; messages still queued are counted as dropped_at_stop (never
 * silently lost), then every actor's fini runs and the workers exit.  To let
 * all work finish first, use ax_engine_stop_when_idle.
 * [any, also a behaviour] Idempotent. */
AX_API void ax_engine_stop(ax_engine_t *eng);
/* Stop once no actor has a message to handle and no I/O is pending (the
 * engine went quiet).  [behaviour or any] */
AX_API void ax_engine_stop_when_idle(ax_engine_t *eng);
/* Wait until the workers have exited.  [creator]  0 or -errno. */
AX_API int ax_engine_wait(ax_engine_t *eng);
/* Free everything (stopping and waiting first if needed).  [creator]  NULL ok. */
AX_API void ax_engine_destroy(ax_engine_t *eng);

/* ---- actors ---------------------------------------------------------------- */

/* Where to spawn (ax_spawn_opts_t.where). */
enum ax_where {
    AX_ON_DEFAULT = 0, /* the calling worker, unless it has a backlog (a batch or more
                          queued locally) while another worker is parked: then every
                          other such spawn goes to a parked worker (docs/tuning.md) */
    AX_ON_WORKER = 1, /* opts.worker */
    AX_ON_NODE = 2,   /* a worker on NUMA node opts.node (OS index), round robin */
    AX_ON_ANY = 3,    /* round robin over all workers */
    AX_ON_MY_NODE = 4, /* round robin over the workers of the caller's NUMA node */
    AX_ON_MY_L3 = 5,  /* round robin over the workers sharing the caller's L3 */
    AX_ON_LEAST_LOADED = 6, /* the worker with the lowest load figure (ties: the
                               caller's worker, then the next ones after it) */
    AX_ON_SELF = 7,   /* always the calling worker: cheapest messaging */
};
/* From outside the engine (ax_engine_spawn) there is no caller's worker:
 * AX_ON_DEFAULT and AX_ON_SELF go round robin over the workers, and
 * AX_ON_MY_NODE and AX_ON_MY_L3 use worker 0's node or L3 group. */

#define AX_SPAWN_ARG_MAX 256u

typedef struct ax_spawn_opts {
    uint32_t size;       /* sizeof(ax_spawn_opts_t) or 0 */
    uint32_t where;      /* enum ax_where */
    uint32_t worker;     /* for AX_ON_WORKER */
    uint32_t node;       /* for AX_ON_NODE */
    ax_init_fn init;     /* may be NULL */
    ax_fini_fn fini;     /* may be NULL */
    const void *arg;     /* copied (arg_len <= AX_SPAWN_ARG_MAX) and given to init */
    size_t arg_len;
    /* Failure and resource control (axon/failure.h): */
    uint32_t flags;        /* AX_SPAWN_F_*; any other bit: -EINVAL */
    uint32_t pad_;         /* 0 */
    ax_sponsor_t *sponsor; /* NULL: the spawner's (root for ax_engine_spawn) */
    uint64_t *monitor;     /* with AX_SPAWN_F_MONITOR: receives the monitor id */
} ax_spawn_opts_t;

/* Spawn an actor; its reference is valid at once (messages sent to it are
 * delivered after its init).  opts may be NULL (on the calling worker, no
 * init/fini).  [behaviour]  0, -EINVAL (bad option), -ENOMEM (arena or actor
 * table full), -ESHUTDOWN, -EDQUOT (the sponsor's budget: axon/failure.h). */
AX_API int ax_spawn(ax_ctx_t *ctx, ax_behaviour_fn fn, size_t state_size,
                    const ax_spawn_opts_t *opts, ax_ref_t *out);
/* Spawn from outside the engine (before or after start).  Same options; the
 * default placement is round robin over workers.  [any] */
AX_API int ax_engine_spawn(ax_engine_t *eng, ax_behaviour_fn fn, size_t state_size,
                           const ax_spawn_opts_t *opts, ax_ref_t *out);

/* Swap the behaviour for the next messages. [behaviour] */
AX_API void ax_become(ax_ctx_t *ctx, ax_behaviour_fn fn);
/* Stop the running actor after this message: fini runs, later messages to it
 * are dead letters.  [behaviour] */
AX_API void ax_stop_self(ax_ctx_t *ctx);
/* The running actor, and the sender of the current message. [behaviour] */
static inline ax_ref_t ax_self(const ax_ctx_t *ctx);
static inline ax_ref_t ax_sender(const ax_ctx_t *ctx);
AX_API uint32_t ax_worker_id(const ax_ctx_t *ctx);

/* The start of every ax_ctx_t, so the two calls above are inline (a reply
 * reads its sender on every message).  Engine-internal layout: read it only
 * through ax_self and ax_sender. */
struct ax_ctx_head {
    ax_ref_t self;       /* the running actor, AX_REF_NONE outside one */
    const ax_msg_t *msg; /* the message being handled, NULL in init/fini */
};
static inline ax_ref_t ax_self(const ax_ctx_t *ctx)
{
    return ctx ? ((const struct ax_ctx_head *)(const void *)ctx)->self : AX_REF_NONE;
}
static inline ax_ref_t ax_sender(const ax_ctx_t *ctx)
{
    const struct ax_ctx_head *h = (const struct ax_ctx_head *)(const void *)ctx;
    return h && h->msg ? h->msg->from : AX_REF_NONE;
}
/* The message being handled (NULL in init/fini and outside a behaviour).
 * [behaviour] */
static inline const ax_msg_t *ax_current_msg(const ax_ctx_t *ctx)
{
    const struct ax_ctx_head *h = (const struct ax_ctx_head *)(const void *)ctx;
    return h ? h->msg : NULL;
}
AX_API ax_engine_t *ax_ctx_engine(const ax_ctx_t *ctx);

/* ---- sending ----------------------------------------------------------------- */

/* Send len <= AX_INLINE_MAX bytes (copied).  [behaviour]
 * 0, -EINVAL (len too large, type reserved, bad ref), -ENOMEM (ring full and
 * no arena memory for the overflow queue), -ESHUTDOWN.  On error nothing was
 * sent.  A stale reference is not an error here: it becomes a dead letter. */
AX_API int ax_send(ax_ctx_t *ctx, ax_ref_t to, uint32_t type, const void *buf, size_t len);
/* Send one 64-bit word (the common case).  [behaviour] */
AX_API int ax_send_u64(ax_ctx_t *ctx, ax_ref_t to, uint32_t type, uint64_t v);

/* Blobs: larger payloads from the sending worker's arena (or jemalloc on its
 * node beyond the arena's largest class).  [behaviour] NULL on exhaustion,
 * for len 0, and for len above PTRDIFF_MAX - 80 (which no allocation can
 * satisfy: the header arithmetic would wrap). */
AX_API void *ax_blob_alloc(ax_ctx_t *ctx, size_t len);
/* Free a blob you own, from any worker.  [behaviour]  A blob freed twice,
 * or a pointer ax_blob_alloc did not return (also one inside a blob, also
 * when sent with ax_send_blob and freed by the engine), aborts the process
 * with a message naming the misuse, in every build. */
AX_API void ax_blob_free(ax_ctx_t *ctx, void *blob);
/* On success the receiver owns blob (freed after its behaviour returns unless
 * it calls ax_msg_keep_blob); on error the caller still does.  [behaviour]
 * len must not exceed the size the blob was allocated with: debug builds
 * (AXON_DEBUG_CHECKS) return -EINVAL, release builds do not check. */
AX_API int ax_send_blob(ax_ctx_t *ctx, ax_ref_t to, uint32_t type, void *blob, size_t len);
/* Take ownership of the current message's blob; free it later with
 * ax_blob_free.  Returns the blob or NULL if the message has none. [behaviour] */
AX_API void *ax_msg_keep_blob(ax_ctx_t *ctx, const ax_msg_t *msg);

/* Send from a thread outside the engine (or from a behaviour of another
 * engine).  Safe from any thread; a cold path through a per-worker MPSC
 * inbox.  from is AX_REF_NONE.  On a cluster node `to` may be an actor of
 * another node (docs/cluster.md): one thread's messages to one actor keep
 * their order; a node that goes down before the message leaves makes it a
 * counted dead letter.  [any] 0, -EINVAL, -ENOMEM, -ESHUTDOWN,
 * -EHOSTUNREACH (to's node is not up). */
AX_API int ax_engine_send(ax_engine_t *eng, ax_ref_t to, uint32_t type, const void *buf, size_t len);

/* ---- stats ------------------------------------------------------------------- */

typedef struct ax_worker_stats {
    uint64_t msgs_local;        /* handled, sent from the same worker */
    uint64_t msgs_remote;       /* handled, sent from another worker */
    uint64_t msgs_external;     /* handled, sent from outside the engine */
    uint64_t msgs_sent_remote;  /* sent to another worker */
    uint64_t ring_full;         /* sends that could not go straight into their ring (it
                                   was full, or older messages waited in overflow) */
    uint64_t overflow_hwm;      /* deepest overflow queue (messages) */
    uint64_t dead_letters;      /* to stopped actors or stale refs */
    uint64_t dropped_at_stop;   /* messages never handled because of stop */
    uint64_t actors_spawned, actors_stopped, actors_live;
    uint64_t spawn_failed;      /* remote spawns the target could not place (ENOMEM) */
    uint64_t parks, wakes_sent;
    uint64_t idle_ns;           /* spinning with nothing to do */
    uint64_t parked_ns;         /* asleep in the kernel */
    uint64_t arena_used_bytes, arena_reserved_bytes, arena_failed_allocs;
    uint64_t arena_high_water_bytes;      /* most bytes in use at once (summed over
                                             workers by ax_engine_stats) */
    uint64_t arena_remote_frees_received; /* blocks other workers freed, back home */
    uint64_t arena_remote_frees_sent;     /* blocks of other workers freed here */
    /* Failure and resource control (axon/failure.h): */
    uint64_t actors_failed;     /* stops with an abnormal reason (failed, killed, quota, linked) */
    uint64_t actors_restarted;  /* restarts in place */
    uint64_t restart_dropped;   /* held messages dropped by AX_RESTART_F_DROP_QUEUED */
    uint64_t downs_sent;        /* DOWN messages sent (or posted) by this worker */
    uint64_t downs_filtered;    /* DOWN/EXIT dropped on arrival (demonitored, unlinked) */
    uint64_t io_cancelled;      /* timers and I/O of stopped incarnations cancelled, and
                                   completions of theirs that arrived late (never delivered) */
    uint64_t quota_failures;    /* calls on this worker answered -EDQUOT */
    uint64_t load;              /* the load figure AX_ON_LEAST_LOADED compares: live
                                   actors + queued local messages, published when the
                                   worker goes idle (and every 256 busy turns), plus
                                   one per spawn placed since */
    uint64_t watchdog_overruns; /* behaviours the watchdog reported, and layers' reports
                                   (ax_watchdog_report; axon/watchdog.h) */
    uint64_t turns;             /* loop turns run (each serves every source once; idle
                                   spinning between turns is not counted) */
} ax_worker_stats_t;

/* Per-worker counters, with msgs_from[i] (messages handled from worker i) if
 * from is not NULL (nworkers entries).  Values are read without stopping the
 * worker: each is exact, the set is not a snapshot.  [any] 0 or -EINVAL. */
AX_API int ax_engine_worker_stats(const ax_engine_t *eng, uint32_t worker, ax_worker_stats_t *out,
                                  uint64_t *from);
/* Sum over workers. [any] */
AX_API void ax_engine_stats(const ax_engine_t *eng, ax_worker_stats_t *out);

/* One size class of a worker's arena. */
typedef struct ax_arena_class_stats {
    uint64_t block_bytes; /* the class's block size */
    uint64_t in_use;      /* blocks handed out and not yet back */
} ax_arena_class_stats_t;
/* The size classes of worker's arena, smallest first: fills out[0..max) and
 * returns how many classes there are (so max 0 asks for the count).  Like
 * ax_engine_worker_stats, read without stopping the worker: while it runs,
 * the figures are those it published when it last went idle (or every 4096
 * busy turns).  [any] count, or -EINVAL. */
AX_API int ax_engine_arena_classes(const ax_engine_t *eng, uint32_t worker,
                                   ax_arena_class_stats_t *out, uint32_t max);

#ifdef __cplusplus
}
#endif
#endif /* AXON_AXON_H */
