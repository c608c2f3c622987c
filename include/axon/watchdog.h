/* axon/watchdog.h - run-away behaviours and fault signals: what the engine
 * reports, and the hook that receives watchdog reports.
 *
 * Watchdog: one thread per engine wakes every watchdog_ms / 4 and looks at
 * what each worker is running.  A behaviour (or init/fini) seen running the
 * same message for longer than scheduler.watchdog_ms is reported once,
 * while it is still running: through the hook below, the per-worker
 * counter ax_worker_stats_t.watchdog_overruns, the USDT probe
 * axon:watchdog and a line on stderr.  With scheduler.watchdog_action =
 * abort the process then aborts.  C cannot stop a running behaviour: the
 * report is all the engine can do.
 *
 * Layers above the engine (lib/pool.c: an item over its pool's time budget)
 * report overruns of their own limits through the same path with
 * ax_watchdog_report: the watchdog thread passes them on at its next scan.
 *
 * Fault signals: SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT on a worker
 * still end the process, after a report on stderr (worker, actor, behaviour,
 * message type and sender).  scheduler.fault_report = off leaves the
 * process's handlers alone.  docs/failure.md says what is contained and
 * what is not.
 *
 * Threading: the hook runs on the engine's watchdog thread, never on a
 * worker; it must not call behaviour-only functions.
 */
#ifndef AXON_WATCHDOG_H
#define AXON_WATCHDOG_H

#include <stdint.h>

#include "axon/axon.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ax_watchdog_report_t.type when the actor was in init or fini (no message). */
#define AX_WATCHDOG_NO_MSG UINT32_MAX

typedef struct ax_watchdog_report {
    uint32_t worker;        /* the worker running the behaviour */
    uint32_t type;          /* the message's type, or AX_WATCHDOG_NO_MSG (init/fini, or the
                               message could not be read) */
    ax_ref_t actor;         /* the actor running it */
    ax_ref_t from;          /* the message's sender (AX_REF_NONE: external/system) */
    const void *behaviour;  /* the behaviour function's address (or init/fini: NULL) */
    const char *symbol;     /* "name+0xoff", or "?" when unknown */
    uint64_t running_ns;    /* how long it has run so far, at least (resolution:
                               watchdog_ms / 4) */
    const char *text;       /* the line written to stderr, without newline */
    const char *what;       /* NULL: the watchdog caught a behaviour still running;
                               else a layer's report (ax_watchdog_report): what
                               overran, as the layer named it (behaviour, symbol:
                               the code that ran; type AX_WATCHDOG_NO_MSG; from
                               AX_REF_NONE; running_ns: how long it ran) */
} ax_watchdog_report_t;

/* Receives each overrun once, while the behaviour is still running.  The
 * report and its strings are valid during the call only.  [watchdog thread] */
typedef void (*ax_watchdog_fn)(void *user, const ax_watchdog_report_t *report);

/* Set the hook (NULL: none).  The stderr line, the counter and the probe
 * happen either way.  [creator, before ax_engine_start] */
AX_API void ax_engine_set_watchdog_hook(ax_engine_t *eng, ax_watchdog_fn fn, void *user);

/* Reports one worker can have waiting for the watchdog thread. */
#define AX_WATCHDOG_POSTS 16u
/* Report, through the watchdog, work that ran in the calling behaviour and
 * overran a limit of the layer that ran it (lib/pool.c: an item over its
 * pool's budget).  what names it (copied, at most 191 bytes kept); code is
 * the function that ran (named like a behaviour; may be NULL); ran_ns how
 * long it ran.  The watchdog thread reports it at its next scan (within
 * watchdog_ms / 4): stderr line, hook (report.what set), the counter
 * ax_worker_stats_t.watchdog_overruns and the axon:watchdog probe; never
 * an abort, whatever scheduler.watchdog_action says: the work is over.
 * [behaviour]  0; -ENOTSUP: the engine runs without a watchdog
 * (scheduler.watchdog_ms off), keep your own account; -EAGAIN:
 * AX_WATCHDOG_POSTS reports of this worker are waiting, this one is
 * dropped; -EINVAL: ctx or what is NULL. */
AX_API int ax_watchdog_report(ax_ctx_t *ctx, const void *code, const char *what, uint64_t ran_ns);

#ifdef __cplusplus
}
#endif
#endif /* AXON_WATCHDOG_H */
