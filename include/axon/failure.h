/* axon/failure.h - failure and resource control: stop reasons, ax_fail,
 * monitors, links, exit trapping, kill, restart in place, sponsors.
 *
 * These are engine primitives; supervisors (restart strategies, intensity,
 * trees) are a library built on them and on axon.h alone.
 *
 * Failure model.  Every actor stops with a reason (ax_reason_t): normal
 * (ax_stop_self), failed (ax_fail: a code and a short text), quota (its
 * sponsor's budget ran out under the fail-actor policy), killed (ax_kill,
 * or its sponsor was revoked), linked (a linked actor stopped abnormally and
 * this one does not trap exits), shutdown (the engine is stopping).  A
 * fault signal (SIGSEGV, ...) in a behaviour is NOT a failure: C cannot
 * survive memory corruption, so it ends the process.
 *
 * Who hears of a stop:
 *   - monitors: each watcher gets exactly one AX_TYPE_DOWN message per
 *     monitor (target, reason, monitor id), wherever either actor lives;
 *     monitoring an actor that is already gone gives DOWN at once with
 *     reason AX_REASON_NO_ACTOR; after ax_demonitor no DOWN for that monitor
 *     is delivered, even one that was already on its way.
 *   - links: bidirectional.  When one end stops with an abnormal reason
 *     (anything but AX_REASON_NORMAL) the other end stops with
 *     AX_REASON_LINKED, unless it traps exits: then it gets an AX_TYPE_EXIT
 *     message instead (also for normal stops).  Normal stops do not
 *     propagate.  A link to an actor that is already gone acts as if it
 *     stopped with AX_REASON_NO_ACTOR (abnormal).
 *   - fini runs once per incarnation, before any DOWN or EXIT is sent;
 *     ax_stop_reason tells it why.
 *   During engine shutdown (ax_engine_stop) no DOWN or EXIT is delivered:
 *   every actor's fini runs with reason AX_REASON_SHUTDOWN.
 *
 * Restart in place.  An actor spawned with AX_SPAWN_F_RESTARTABLE does not
 * give up its reference when it stops: it goes dormant (fini ran, monitors
 * were told), messages that reach it are held, and the actor that manages it
 * (its supervisor) decides, usually after the DOWN: ax_restart (same
 * reference, state zeroed, init runs again with the original argument; held
 * messages delivered, or counted and dropped) or ax_release (gone for good:
 * held messages become dead letters, the slot is reused under a new
 * generation).  A reference from before a plain stop (not a restart) is a
 * dead letter as always.
 *
 * Sponsors.  A sponsor is a budget: arena bytes (actor state + blobs +
 * overflowed messages), messages sent, actors spawned and optionally CPU
 * time in behaviours.  Every actor runs under one; a spawn inherits the
 * spawner's sponsor unless its options name another; the root sponsor
 * (NULL) is unbounded and costs nothing.  Budgets are consumed, not
 * refilled: bytes count when allocated and are not given back when freed
 * (the ownership of a blob moves with its message, so "live bytes per
 * sponsor" would cost every blob a header).  A call that would exceed the
 * budget fails with -EDQUOT (nothing was done) and is counted; under
 * AX_SPONSOR_FAIL_ACTOR the calling actor also stops with AX_REASON_QUOTA
 * after the current message.  Revoking a sponsor stops every actor under it
 * with AX_REASON_KILLED, cancels their timers and pending I/O and frees their
 * memory.
 *
 * Cancellation.  When an actor stops, fails, is killed or restarted, its
 * timers are cancelled and its pending I/O is cancelled (connections and
 * listeners it was receiving on are closed); a completion that was already
 * on its way is counted (ax_worker_stats_t.io_cancelled), never delivered to
 * a later incarnation.
 *
 * Threading: [behaviour] unless marked [any].  All calls return 0 or a
 * negative errno; a failed call did nothing.
 */
#ifndef AXON_FAILURE_H
#define AXON_FAILURE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "axon/axon.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- stop reasons ------------------------------------------------------------- */

enum ax_reason_kind {
    AX_REASON_NORMAL = 0,      /* ax_stop_self */
    AX_REASON_FAILED = 1,      /* ax_fail: code and text are the caller's */
    AX_REASON_QUOTA = 2,       /* sponsor budget exhausted (code: enum ax_resource) */
    AX_REASON_KILLED = 3,      /* ax_kill (peer: the killer) or sponsor revoked (peer 0) */
    AX_REASON_LINKED = 4,      /* a linked actor stopped abnormally (peer: it;
                                  code: its reason kind) */
    AX_REASON_SHUTDOWN = 5,    /* the engine is stopping */
    AX_REASON_NO_ACTOR = 6,    /* monitor/link target was already gone */
    AX_REASON_UNREACHABLE = 7, /* the target's node is unreachable: it died, or its
                                  network or heartbeat failed (cluster) */
    AX_REASON_NODE_STOPPED = 8, /* the target's node stopped cleanly: it left the
                                   cluster (cluster) */
};

#define AX_REASON_TEXT_MAX 16u /* bytes of text kept, with its NUL */

/* A stop reason: a value to match on (kind, code), plus context.  32 bytes
 * so it travels inline in DOWN and EXIT messages. */
typedef struct ax_reason {
    uint32_t kind;                  /* enum ax_reason_kind */
    int32_t code;                   /* see the kinds above; 0 when unused */
    ax_ref_t peer;                  /* see the kinds above; AX_REF_NONE when unused */
    char text[AX_REASON_TEXT_MAX];  /* AX_REASON_FAILED: the text, truncated; NUL-terminated */
} ax_reason_t;
#ifdef __cplusplus
static_assert(sizeof(ax_reason_t) == 32, "a reason is 32 bytes");
#else
_Static_assert(sizeof(ax_reason_t) == 32, "a reason is 32 bytes");
#endif

/* Anything but a normal stop counts as abnormal (propagates over links). */
static inline bool ax_reason_abnormal(const ax_reason_t *r) { return r->kind != AX_REASON_NORMAL; }
/* A readable name for a kind ("normal", "failed", ...).  [any] */
AX_API const char *ax_reason_name(uint32_t kind);

/* End the running actor with a failure after this message (like
 * ax_stop_self, with reason AX_REASON_FAILED, `code` and the first
 * AX_REASON_TEXT_MAX - 1 bytes of `text`, which may be NULL).  Its fini
 * runs, its monitors get DOWN, its links propagate.  In init: the actor
 * stops right after init.  The last of ax_stop_self / ax_fail wins.
 * [behaviour] */
AX_API void ax_fail(ax_ctx_t *ctx, int32_t code, const char *text);

/* Why the running actor is stopping: valid in its fini (and NULL
 * elsewhere).  [behaviour: fini] */
AX_API const ax_reason_t *ax_stop_reason(const ax_ctx_t *ctx);

/* ---- DOWN and EXIT messages ----------------------------------------------------- */

/* System message types delivered to behaviours (above AX_TYPE_IO's range). */
#define AX_TYPE_FAULT 0xFFFF0200u
#define AX_TYPE_DOWN (AX_TYPE_FAULT + 1u) /* a monitored actor stopped */
#define AX_TYPE_EXIT (AX_TYPE_FAULT + 2u) /* a linked actor stopped (trapping exits) */

/* AX_TYPE_DOWN: ax_sender() is the target too. */
typedef struct ax_down {
    ax_ref_t target;    /* the actor that stopped (or was already gone) */
    uint64_t monitor;   /* the id ax_monitor returned */
    ax_reason_t reason;
} ax_down_t;

/* AX_TYPE_EXIT: ax_sender() is the linked actor too. */
typedef struct ax_exit {
    ax_ref_t from;      /* the linked actor that stopped */
    ax_reason_t reason;
} ax_exit_t;

/* Wire layout (engine-internal, read through the accessors below):
 * DOWN: from = target; payload.u64[0] = monitor id; bytes 8..39 = reason.
 * EXIT: from = linked actor; bytes 8..39 = reason. */

/* Decode a DOWN message.  0, or -EINVAL if m is not one. */
static inline int ax_down_decode(const ax_msg_t *m, ax_down_t *out)
{
    if (!m || !out || m->type != AX_TYPE_DOWN)
        return -EINVAL;
    out->target = m->from;
    out->monitor = m->payload.u64[0];
    memcpy(&out->reason, m->payload.data + 8, sizeof out->reason);
    return 0;
}
/* Decode an EXIT message.  0, or -EINVAL if m is not one. */
static inline int ax_exit_decode(const ax_msg_t *m, ax_exit_t *out)
{
    if (!m || !out || m->type != AX_TYPE_EXIT)
        return -EINVAL;
    out->from = m->from;
    memcpy(&out->reason, m->payload.data + 8, sizeof out->reason);
    return 0;
}

/* ---- monitors ------------------------------------------------------------------ */

/* Watch `target`: the running actor gets exactly one AX_TYPE_DOWN when it
 * stops, for any reason, on any worker (at once, with AX_REASON_NO_ACTOR,
 * if it is already gone or dormant).  *id (not NULL) receives the monitor's
 * id, never 0, unique in the engine.  Several monitors on one target are
 * independent.  Costs the target one flag test at stop and 64 bytes of
 * arena (32 on each side) while it lasts.
 * 0, -EINVAL (no running actor, bad ref, id NULL), -ENOMEM, -ESHUTDOWN,
 * -EDQUOT (the request is a message: sponsor budget). */
AX_API int ax_monitor(ax_ctx_t *ctx, ax_ref_t target, uint64_t *id);
/* Stop watching: no DOWN for `id` reaches the running actor after this
 * returns, even one already in flight (it is filtered on arrival).
 * Idempotent: 0 if the monitor was active, -ENOENT if it was not (already
 * DOWN, already demonitored, not this actor's). */
AX_API int ax_demonitor(ax_ctx_t *ctx, uint64_t id);

/* ---- links and exit trapping ------------------------------------------------------ */

/* Link the running actor and `peer` both ways (a second link to the same
 * peer does nothing).  If peer is already gone, the running actor is told
 * as if peer had stopped with AX_REASON_NO_ACTOR.
 * 0, -EINVAL (no running actor, bad ref, peer is self), -ENOMEM,
 * -ESHUTDOWN, -EDQUOT. */
AX_API int ax_link(ax_ctx_t *ctx, ax_ref_t peer);
/* Remove the link both ways; an EXIT from peer already in flight is
 * dropped on arrival.  0, or -ENOENT (no such link). */
AX_API int ax_unlink(ax_ctx_t *ctx, ax_ref_t peer);
/* Trap exits: linked stops arrive as AX_TYPE_EXIT messages instead of
 * stopping the running actor.  Off at spawn and after a restart. */
AX_API void ax_trap_exits(ax_ctx_t *ctx, bool on);

/* ---- kill, restart, release ------------------------------------------------------ */

/* Stop `target` with AX_REASON_KILLED (peer: the running actor): it handles
 * every message this actor sent it before, then stops (fini, DOWN, links;
 * a restartable target goes dormant).  Killing a stopped actor does
 * nothing.  Killing self: like ax_fail with AX_REASON_KILLED.
 * 0, -EINVAL (bad ref), -ENOMEM, -ESHUTDOWN, -EDQUOT. */
AX_API int ax_kill(ax_ctx_t *ctx, ax_ref_t target);
/* The same from outside the engine (peer AX_REF_NONE).  [any] */
AX_API int ax_engine_kill(ax_engine_t *eng, ax_ref_t target);

/* ax_spawn_opts_t.flags */
#define AX_SPAWN_F_RESTARTABLE 0x1u /* go dormant at stop; see ax_restart / ax_release */
#define AX_SPAWN_F_MONITOR 0x2u     /* the spawner monitors the new actor from before
                                       its init runs; id in *opts.monitor */
#define AX_SPAWN_F_LINK 0x4u        /* the spawner links to the new actor before its init */

/* ax_restart flags */
#define AX_RESTART_F_DROP_QUEUED 0x1u /* count and drop the messages held while dormant
                                         (default: deliver them, in order, after init) */
#define AX_RESTART_F_MONITOR 0x2u     /* the caller monitors the new incarnation from
                                         before its init runs; id in *monitor */

/* Restart a dormant restartable actor in place: same reference; state
 * zeroed; init runs again with the argument given at spawn; then the
 * messages held while it was dormant are delivered (or dropped and counted
 * in ax_worker_stats_t.restart_dropped with AX_RESTART_F_DROP_QUEUED).
 * Asynchronous: takes effect when the target's worker handles the request,
 * in order with everything else the caller sent to it (so ax_kill then
 * ax_restart restarts a live actor).  If the target is not dormant then
 * (alive, or gone for good), nothing happens; with AX_RESTART_F_MONITOR the
 * caller then gets DOWN at once (AX_REASON_NO_ACTOR if gone; a live actor
 * is simply monitored).  monitor may be NULL without AX_RESTART_F_MONITOR.
 * Links are not restored; the new incarnation does not trap exits.
 * 0, -EINVAL (bad ref or flags), -ENOMEM, -ESHUTDOWN, -EDQUOT. */
AX_API int ax_restart(ax_ctx_t *ctx, ax_ref_t target, uint32_t flags, uint64_t *monitor);
/* Give up a restartable actor: if dormant, it ends for good (its held
 * messages become dead letters, its reference goes stale); if alive, it is
 * no longer restartable (its next stop is final).  Asynchronous and ordered
 * like ax_restart.  0, -EINVAL, -ENOMEM, -ESHUTDOWN, -EDQUOT. */
AX_API int ax_release(ax_ctx_t *ctx, ax_ref_t target);

/* ---- sponsors ---------------------------------------------------------------- */

/* Budgeted resources (ax_reason_t.code for AX_REASON_QUOTA; stats index). */
enum ax_resource {
    AX_RES_BYTES = 0,  /* arena bytes: actor state at spawn, blobs, overflowed messages */
    AX_RES_MSGS = 1,   /* messages sent (any kind, including monitor/link requests) */
    AX_RES_SPAWNS = 2, /* actors spawned */
    AX_RES_CPU_NS = 3, /* nanoseconds in behaviours (measured per message) */
    AX_RES_COUNT = 4,
};

enum ax_sponsor_policy {
    AX_SPONSOR_FAIL_CALL = 0,  /* the call fails with -EDQUOT */
    AX_SPONSOR_FAIL_ACTOR = 1, /* ... and the calling actor stops with AX_REASON_QUOTA */
};

typedef struct ax_sponsor_limits {
    uint32_t size;                /* sizeof(ax_sponsor_limits_t) or 0 */
    uint32_t policy;              /* enum ax_sponsor_policy */
    uint64_t limit[AX_RES_COUNT]; /* per enum ax_resource; 0: unbounded */
} ax_sponsor_limits_t;

/* Create a sponsor with these budgets (lim NULL: all unbounded, still
 * revocable).  A bounded sponsor shared by actors on several workers hands
 * each worker its budget in small leases, so one worker may see -EDQUOT
 * while another still holds a few units; the total never exceeds the limit.
 * CPU time is checked after each message (a behaviour is never
 * interrupted), so it may overrun by one message.  [any]
 * 0, -EINVAL (bad size, policy or engine), -ENOMEM. */
AX_API int ax_sponsor_create(ax_engine_t *eng, const ax_sponsor_limits_t *lim,
                             ax_sponsor_t **out);
/* Drop the creator's handle.  The sponsor lives on while actors run under
 * it (they keep their budget); NULL does nothing.  Not revocation.  [any] */
AX_API void ax_sponsor_destroy(ax_sponsor_t *sp);
/* Revoke: every actor under sp stops with AX_REASON_KILLED (fini, DOWN,
 * links as for any stop; restartable ones end for good), its timers and
 * pending I/O are cancelled and its memory returned; spawns naming sp and
 * sends by its actors fail with -EDQUOT from now on.  Asynchronous: each
 * worker acts at its next turn.  Idempotent.  [any] 0, -EINVAL. */
AX_API int ax_sponsor_revoke(ax_sponsor_t *sp);
/* The running actor's sponsor (NULL: the root sponsor).  [behaviour] */
AX_API ax_sponsor_t *ax_sponsor_self(const ax_ctx_t *ctx);

typedef struct ax_sponsor_stats {
    uint64_t limit[AX_RES_COUNT];  /* as created (0: unbounded) */
    uint64_t used[AX_RES_COUNT];   /* consumed so far */
    uint64_t quota_failures;       /* calls answered -EDQUOT */
    uint64_t actors_live;          /* actors running (or dormant) under it */
    uint64_t killed_by_revoke;     /* actors stopped by ax_sponsor_revoke */
    uint32_t revoked;              /* 1 once revoked */
    uint32_t pad_;
} ax_sponsor_stats_t;
/* Counters, read without stopping anything (each exact, the set not a
 * snapshot).  [any] 0 or -EINVAL. */
AX_API int ax_sponsor_stats(const ax_sponsor_t *sp, ax_sponsor_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* AXON_FAILURE_H */
