/* engine/failure.h - the engine side of axon/failure.h: per-actor records
 * (monitors, links, I/O list, restart data), sponsors and their per-worker
 * leases, and the calls actor.c, io_api.c and engine.c make into
 * engine/failure.c.
 *
 * Threading: an actor's records belong to its worker's thread.  A sponsor
 * is shared: its global budget (avail) and reference count are atomics any
 * thread may change; each worker owns its slot local[w] (lease, list of its
 * actors under the sponsor), which other threads only read (stats).
 * Memory: records come from the actor's worker's arena; a sponsor is one
 * malloc'ed block, freed when its last reference goes.
 */
#ifndef AXON_ENGINE_FAILURE_H
#define AXON_ENGINE_FAILURE_H

#include <stdalign.h>
#include <stdatomic.h>

#include "axon/failure.h"
#include "engine/mq.h"
#include "engine/worker.h"

/* ---- records ---------------------------------------------------------------------
 * One singly linked list per actor (a->recs).  Each record is 32 bytes (one
 * arena class), so a monitor costs 64 bytes: a WATCHER record on the target
 * and a WATCHING record on the watcher. */
enum {
    AX_REC_WATCHER = 1,  /* ref monitors this actor with id */
    AX_REC_WATCHING = 2, /* this actor monitors ref with id */
    AX_REC_LINK = 3,     /* linked with ref */
    AX_REC_IO = 4,       /* id: head of the actor's pending I/O (io_api.c) */
    AX_REC_LIFE = 5,     /* restartable: ax_life_t */
    AX_REC_SP = 6,       /* on its sponsor's list of actors on this worker */
};

typedef struct ax_rec {
    struct ax_rec *next; /* the actor's records */
    uint32_t kind;
    uint32_t aux; /* SP: the actor's slot (the sponsor's list finds actors by it) */
    union {
        ax_ref_t ref;         /* WATCHER, WATCHING, LINK: the other actor */
        struct ax_rec *lprev; /* SP: the sponsor's list on this worker */
    };
    union {
        uint64_t id;            /* WATCHER, WATCHING: the monitor id */
        struct io_req *io_head; /* IO: first pending request (io_api.c) */
        struct ax_rec *lnext;   /* SP */
    };
} ax_rec_t;
_Static_assert(sizeof(ax_rec_t) == 32, "a record is half a cache line");

/* What a restart needs: the incarnation's starting point and the messages
 * that arrived while it was dormant. */
typedef struct ax_life {
    ax_rec_t hdr;
    ax_behaviour_fn fn;
    ax_init_fn init;
    ax_fini_fn fini;
    ax_mq_t held;
    uint32_t arg_len;
    uint32_t pad_;
    unsigned char arg[];
} ax_life_t;

/* ---- sponsors ---------------------------------------------------------------------- */

/* Leases: a worker takes budget from the sponsor's global pool in chunks so
 * a send costs a decrement of its own counter. */
typedef struct ax_sp_local {
    _Atomic uint64_t left[AX_RES_COUNT];    /* lease remaining; owner writes */
    _Atomic uint64_t granted[AX_RES_COUNT]; /* leased to this worker in total; owner writes */
    _Atomic uint64_t quota_failures;        /* owner writes */
    struct ax_sponsor *sp;
    struct ax_rec *actors;                  /* owner only: SP records of its actors here */
} ax_sp_local_t;

struct ax_sponsor {
    ax_engine_t *eng;
    uint32_t n;
    uint32_t policy;
    uint64_t limit[AX_RES_COUNT];
    alignas(64) _Atomic uint64_t avail[AX_RES_COUNT]; /* not yet leased */
    /* One reference for the creator's handle, one per actor (live or
     * dormant), one per spawn request or revoke message in flight. */
    _Atomic uint64_t refs;
    _Atomic uint64_t live, killed;
    _Atomic uint32_t revoked;
    /* Spawns from outside the engine take from avail directly. */
    _Atomic uint64_t ext_used[AX_RES_COUNT];
    _Atomic uint64_t ext_quota_failures;
    alignas(64) ax_sp_local_t local[];
};

/* Take n units of res from lease l (slow path: refill it from the pool;
 * on failure count it and, under AX_SPONSOR_FAIL_ACTOR, make `caller` (the
 * running actor, or NULL) stop with AX_REASON_QUOTA).  0 or -EDQUOT. */
int ax__sp_take_slow(ax_worker_t *w, ax_sp_local_t *l, uint32_t res, uint64_t n,
                     ax_actor_t *caller);

static inline int ax__sp_take_l(ax_worker_t *w, ax_sp_local_t *l, uint32_t res, uint64_t n,
                                ax_actor_t *caller)
{
    uint64_t left = atomic_load_explicit(&l->left[res], memory_order_relaxed);
    if (__builtin_expect(left >= n, 1)) {
        /* Owner-only counter; relaxed so stats readers never tear it. */
        atomic_store_explicit(&l->left[res], left - n, memory_order_relaxed);
        return 0;
    }
    return ax__sp_take_slow(w, l, res, n, caller);
}
/* The same for the running actor a (a->sp not NULL). */
static inline int ax__sp_take(ax_worker_t *w, ax_actor_t *a, uint32_t res, uint64_t n)
{
    return ax__sp_take_l(w, a->sp, res, n, a);
}
/* Give back units taken for a call that then failed. */
static inline void ax__sp_refund_l(ax_sp_local_t *l, uint32_t res, uint64_t n)
{
    atomic_store_explicit(&l->left[res],
                          atomic_load_explicit(&l->left[res], memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline void ax__sp_refund(ax_actor_t *a, uint32_t res, uint64_t n)
{
    ax__sp_refund_l(a->sp, res, n);
}

/* Sponsor references. */
void ax__sp_ref(ax_sponsor_t *sp);
void ax__sp_unref(ax_sponsor_t *sp);

/* ---- calls from actor.c ------------------------------------------------------------- */

/* Spawn-time setup of a new actor on worker w (before its init): sponsor
 * (sp, already referenced and charged), restart record, the spawner's
 * monitor/link.  0 or -ENOMEM (nothing to undo but the actor block). */
struct ax_spawn_req;
int ax__fault_place(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref, const struct ax_spawn_req *req,
                    const void *arg, size_t arg_len);
/* Charge a spawn to sponsor sp (NULL: root, free) from worker w (NULL:
 * from outside the engine); takes a reference and counts it live.
 * 0 or -EDQUOT.  ax__fault_spawn_undo gives back what a failed spawn took
 * (the budget stays consumed when the failure is on another worker). */
int ax__fault_spawn_charge(ax_worker_t *w, ax_sponsor_t *sp, size_t state_size);
void ax__fault_spawn_undo(ax_sponsor_t *sp);
/* The spawner's side of AX_SPAWN_F_MONITOR / _LINK (records on the running
 * actor for the new ref; *mon_id receives the monitor id), and its undo.
 * 0 or -ENOMEM (nothing done). */
int ax__fault_spawner_recs(ax_worker_t *w, ax_ref_t ref, uint32_t flags, uint64_t *mon_id);
void ax__fault_spawner_undo(ax_worker_t *w, ax_ref_t ref, uint32_t flags, uint64_t mon_id);
/* A spawn request that could not be placed: tell its monitor/link. */
void ax__fault_spawn_failed(ax_worker_t *w, ax_ref_t ref, const struct ax_spawn_req *req);
/* The records half of a stop (a has AX_ACTOR_EXT): cancel I/O, send DOWN
 * and EXIT, drop monitors held, leave the sponsor unless dormant.  Returns
 * true if the actor went dormant (keep it), false if it must be freed. */
bool ax__fault_stop(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref, const ax_reason_t *why,
                    bool final);
/* A system message of the failure range (AX_SYS_FAULT_FIRST..LAST), or a
 * message for a dormant or CPU-metered actor.  Counts nothing. */
void ax__fault_dispatch(ax_worker_t *w, ax_msg_t *m);
/* Shutdown: free a dormant actor's held messages (counting them as
 * dropped) and every record of a, without sending anything. */
void ax__fault_discard(ax_worker_t *w, ax_actor_t *a);
/* Free the payload of a failure-range system message that will not be
 * handled (shutdown, dead letter): drops the sponsor reference of a revoke. */
void ax__fault_free_payload(ax_worker_t *w, const ax_msg_t *m);
/* A MONITOR or LINK that became a dead letter (its target's reference is
 * stale, forged, or of another incarnation of a node): answer the watcher
 * with DOWN, the linker with EXIT, both AX_REASON_NO_ACTOR, as a target
 * that is gone would.  Any other type: nothing. */
void ax__fault_dead_request(ax_worker_t *w, const ax_msg_t *m);

/* Internal stop with a reason; final: do not go dormant. */
void ax__actor_stop_why(ax_worker_t *w, ax_actor_t *a, const ax_reason_t *why, bool final);

/* ---- calls from io_api.c ------------------------------------------------------------ */

struct io_req; /* io_api.c's request record */
/* The running actor's I/O list head (creating its AX_REC_IO record), or
 * NULL on -ENOMEM. */
struct io_req **ax__fault_io_head(ax_worker_t *w);
/* Implemented by io_api.c: cancel every request on the list at *head (the
 * actor stops); counts them in io_cancelled. */
void ax__io_cancel_list(ax_worker_t *w, struct io_req **head);
/* Implemented by io_api.c: at shutdown, take the requests off the actor's
 * list (they stay on the worker's, freed after the ring is torn down). */
void ax__io_detach_list(ax_worker_t *w, struct io_req **head);

#endif /* AXON_ENGINE_FAILURE_H */
