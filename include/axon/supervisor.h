/* axon/supervisor.h - supervisors: actors that start children from specs,
 * watch them, and restart them in place by strategy, with a restart
 * intensity beyond which the supervisor itself fails to its own supervisor.
 *
 * A library on the public API only (axon.h, failure.h), like OTP's
 * supervisor on BEAM's primitives: a supervisor spawns each child with
 * AX_SPAWN_F_RESTARTABLE | AX_SPAWN_F_MONITOR | AX_SPAWN_F_LINK and traps
 * exits; a child that stops goes dormant with its reference, the supervisor
 * hears its DOWN and calls ax_restart (same reference: peers keep sending)
 * or ax_release.
 *
 *   strategy      on a child's stop (that its restart policy restarts):
 *   ONE_FOR_ONE   restart that child
 *   ONE_FOR_ALL   stop every other running child in reverse start order,
 *                 then restart all of them in start order
 *   REST_FOR_ONE  the same for the children started after it
 *
 *   restart policy  PERMANENT: always restarted; TRANSIENT: restarted after
 *                   an abnormal stop only; TEMPORARY: never (released).
 *
 * Intensity: more than `intensity` restarts within `period_ms` and the
 * supervisor stops its children (reverse start order, each fini once) and
 * fails with AX_REASON_FAILED, code AX_SUP_ESCALATED: its own supervisor
 * (or monitor) sees the DOWN.  Trees: a child spec may name a supervisor
 * spec (ax_child_spec_t.sup).  Shutdown (ax_sup_shutdown): the supervisor
 * stops its children in reverse start order, each after the previous one's
 * DOWN (a child supervisor first shuts its own children down), then stops
 * normally.
 *
 * Lifetime: a supervisor keeps a pointer to its ax_sup_spec_t (and the spec
 * to its children's specs and arguments) and reads them at every restart:
 * they must outlive it (usually `static const`).  Children's init
 * arguments are copied at each spawn, as ax_spawn does.
 *
 * Threading: ax_sup_spawn, ax_sup_shutdown: [behaviour]; the ax_engine_*
 * forms: [any].  The event hook runs on the supervisor's worker, inside the
 * supervisor's behaviour.
 */
#ifndef AXON_SUPERVISOR_H
#define AXON_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "axon/axon.h"
#include "axon/failure.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ax_sup_strategy {
    AX_SUP_ONE_FOR_ONE = 0,
    AX_SUP_ONE_FOR_ALL = 1,
    AX_SUP_REST_FOR_ONE = 2,
};

enum ax_restart_policy {
    AX_CHILD_PERMANENT = 0,
    AX_CHILD_TRANSIENT = 1,
    AX_CHILD_TEMPORARY = 2,
};

/* ax_child_spec_t.flags */
#define AX_CHILD_F_DROP_QUEUED 0x1u /* on restart, count and drop the messages that
                                       reached the child while it was down
                                       (default: deliver them to the new incarnation) */

/* Message types the supervisor library uses between supervisors (user
 * range, just below AX_TYPE_SYSTEM): do not send them yourself except
 * through ax_sup_shutdown. */
#define AX_SUP_TYPE_SHUTDOWN (AX_TYPE_SYSTEM - 1u)

/* ax_reason_t.code of a supervisor that gave up (kind AX_REASON_FAILED). */
#define AX_SUP_ESCALATED 0x5355u          /* restart intensity exceeded */
#define AX_SUP_START_FAILED 0x5356u       /* a child could not be spawned */

typedef struct ax_sup_spec ax_sup_spec_t;

typedef struct ax_child_spec {
    uint32_t size;          /* sizeof(ax_child_spec_t) or 0 */
    uint32_t restart;       /* enum ax_restart_policy */
    const char *name;       /* for events and printing; may be NULL */
    /* A worker child: */
    ax_behaviour_fn fn;
    size_t state_size;
    ax_init_fn init;        /* runs at every start and restart, with arg */
    ax_fini_fn fini;        /* runs once per incarnation */
    const void *arg;        /* arg_len <= AX_SPAWN_ARG_MAX bytes, copied at spawn */
    size_t arg_len;
    /* ... or a supervisor child (then fn, state_size, init, fini, arg must
     * be 0/NULL): */
    const ax_sup_spec_t *sup;
    /* Placement, as ax_spawn_opts_t: AX_ON_DEFAULT (0), AX_ON_SELF (the
     * supervisor's worker), AX_ON_WORKER (worker) or AX_ON_NODE (node). */
    uint32_t where, worker, node;
    uint32_t flags;         /* AX_CHILD_F_*; any other bit: -EINVAL */
} ax_child_spec_t;

/* What the event hook is told. */
enum ax_sup_event_kind {
    AX_SUP_EV_STARTED = 0,   /* child started (first time) */
    AX_SUP_EV_RESTARTED = 1, /* child restarted in place (reason: why it stopped) */
    AX_SUP_EV_STOPPED = 2,   /* child stopped and is not restarted (policy, or shutdown) */
    AX_SUP_EV_ESCALATED = 3, /* intensity exceeded: the supervisor gives up (index: the
                                child whose stop was one too many) */
};

typedef struct ax_sup_event {
    uint32_t kind;          /* enum ax_sup_event_kind */
    uint32_t index;         /* the child's index in the spec */
    ax_ref_t supervisor;
    ax_ref_t child;         /* the child's reference (the same across restarts) */
    const char *name;       /* the child spec's name, or NULL */
    ax_reason_t reason;     /* RESTARTED / STOPPED / ESCALATED: why the child stopped */
    uint64_t restarts;      /* restarts of this child so far */
} ax_sup_event_t;
typedef void (*ax_sup_event_fn)(void *user, const ax_sup_event_t *ev);

struct ax_sup_spec {
    uint32_t size;          /* sizeof(ax_sup_spec_t) or 0 */
    uint32_t strategy;      /* enum ax_sup_strategy */
    uint32_t intensity;     /* restarts allowed within period_ms; 0: 3; at most 1048576 */
    uint32_t period_ms;     /* 0: 5000; at most 86400000 (a day) */
    uint32_t nchildren;     /* at most 65536 */
    uint32_t pad_;
    const ax_child_spec_t *children;
    ax_sup_event_fn on_event; /* may be NULL */
    void *user;
};

/* Check a spec (and its child supervisors' specs) without spawning.
 * 0, or -EINVAL with the reason in why (if not NULL). [any] */
AX_API int ax_sup_check(const ax_sup_spec_t *spec, char *why, size_t why_len);

/* Spawn a supervisor running spec; it starts its children in order at
 * once (in its init).  placement: where the supervisor itself runs (NULL:
 * the calling worker); its init/fini/arg must be NULL/0, flags may hold
 * AX_SPAWN_F_MONITOR / AX_SPAWN_F_LINK (with monitor).  [behaviour]
 * 0, -EINVAL (bad spec: see ax_sup_check), or what ax_spawn returns. */
AX_API int ax_sup_spawn(ax_ctx_t *ctx, const ax_sup_spec_t *spec,
                        const ax_spawn_opts_t *placement, ax_ref_t *out);
/* The same from outside the engine (before or after start).  [any] */
AX_API int ax_engine_sup_spawn(ax_engine_t *eng, const ax_sup_spec_t *spec,
                               const ax_spawn_opts_t *placement, ax_ref_t *out);

/* Ask a supervisor to shut down: it stops its children in reverse start
 * order (each fini once), then stops normally.  Asynchronous; monitor the
 * supervisor to hear when it is done.  [behaviour] / [any] */
AX_API int ax_sup_shutdown(ax_ctx_t *ctx, ax_ref_t sup);
AX_API int ax_engine_sup_shutdown(ax_engine_t *eng, ax_ref_t sup);

/* The behaviour, init, fini and state size a supervisor of spec runs with
 * (what ax_sup_spawn uses; exposed for programs that spawn with their own
 * options).  The init's argument is the spec pointer itself:
 * arg = &spec, arg_len = sizeof spec.  The fini releases every child not
 * yet released (ax_release), so a supervisor that is killed or fails takes
 * its children with it for good: its links stop them, and none is left
 * dormant waiting for a restart nobody can ask for. */
AX_API void ax_sup_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *msg);
AX_API void ax_sup_init(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len);
AX_API void ax_sup_fini(ax_ctx_t *ctx, void *state);
AX_API size_t ax_sup_state_size(const ax_sup_spec_t *spec);

#ifdef __cplusplus
}
#endif
#endif /* AXON_SUPERVISOR_H */
