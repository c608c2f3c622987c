/* axon/container.h - shared containers: keyed tables many actors read and
 * some write, the one explicit exception to "nothing is shared".
 *
 * Two kinds behind one interface:
 *   AX_CONT_MEMORY  a hash index readers walk without locks or stores,
 *                   whose old values are reclaimed after an RCU grace
 *                   period (liburcu QSBR: each worker passes a quiescent
 *                   point every loop turn).
 *   AX_CONT_LMDB    an LMDB environment: reads are LMDB read transactions
 *                   (reads of the mapped file); writes go to a writer thread
 *                   that batches them, commits with sync, and reports each
 *                   commit as a message to the writing actor.
 *
 * Guards.  A reader enters a read section, looks keys up, and leaves; the
 * values it got stay valid (and unchanged) until it leaves.  Readers never
 * wait for writers or for each other.  A writer enters a write section
 * (writers of one container take turns: the wait is at most the longest
 * write section, which must be short and do no I/O), puts and deletes, and
 * leaves.  Each put or delete is atomic: a reader sees the old value or the
 * new one, whole.  For the memory kind the change is visible when the call
 * returns (a section's first put: at its next operation or at leave, see
 * ax_cont_put); for LMDB when the commit is acknowledged.
 *
 * What the guards prevent (physical safety): torn values, use after free of
 * a value a reader holds, lost updates between writers (write sections
 * exclude each other, so a read-modify-write inside one is atomic).  What
 * they do not prevent (logical safety): a reader acting on a value a writer
 * replaces right after, or two actors' read-then-write spread over several
 * sections.  Give each logical record one owner (a unique name, or a key
 * prefix, owned by one actor) when that matters; see docs/containers.md.
 *
 * Threads.  Worker threads are registered with liburcu by the registry's
 * worker hooks (so create the registry before ax_engine_start).  A thread
 * outside the engine calls ax_cont_thread_register first (and unregister
 * before it exits); between its read sections it is an offline QSBR reader,
 * so it never holds up reclamation.  Calls say [behaviour] (ctx from a
 * behaviour), [outside] (ctx NULL, a registered outside thread) or [any].
 * Errors are negative errnos; a failed call did nothing.
 */
#ifndef AXON_CONTAINER_H
#define AXON_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

#include "axon/axon.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ax_cont_registry ax_cont_registry_t; /* opaque: the names of one engine */
typedef struct ax_cont ax_cont_t;                   /* opaque: an open container */

/* Create the container registry of an engine and install its worker hooks
 * (liburcu registration, a quiescent point per loop turn, offline while
 * parked).  [creator, before ax_engine_start]  0, -EINVAL, -EALREADY (the
 * engine started), -ENOSPC (no hook set left), -ENOMEM. */
AX_API int ax_cont_registry_create(ax_engine_t *eng, ax_cont_registry_t **out);
/* Free the registry.  Every container must be closed and the engine's
 * workers gone (after ax_engine_wait).  Waits for LMDB writer threads to
 * finish their last commits.  NULL: does nothing.  [creator] */
AX_API void ax_cont_registry_destroy(ax_cont_registry_t *reg);

/* Register / unregister the calling outside thread as a reader/writer.
 * [outside] 0 or -EINVAL (a worker thread, or already registered). */
AX_API int ax_cont_thread_register(void);
AX_API void ax_cont_thread_unregister(void);

enum ax_cont_kind {
    AX_CONT_MEMORY = 0,
    AX_CONT_LMDB = 1,
};

#define AX_CONT_NAME_MAX 64u   /* bytes, including the terminating NUL */
#define AX_CONT_KEY_MAX 511u   /* LMDB's default key limit */
#define AX_CONT_VALUE_MAX (1u << 20)

typedef struct ax_cont_config {
    uint32_t size;     /* sizeof(ax_cont_config_t): use AX_CONT_CONFIG_INIT */
    uint32_t kind;     /* enum ax_cont_kind */
    const char *path;  /* AX_CONT_LMDB: a directory (created if missing) */
    uint64_t map_bytes; /* AX_CONT_LMDB: largest database size; 0: 1 GiB */
    uint32_t buckets;  /* AX_CONT_MEMORY: keys the index holds before it first grows
                        * (power of two); 0: 1024 */
    uint32_t pad_;
} ax_cont_config_t;
#define AX_CONT_CONFIG_INIT {sizeof(ax_cont_config_t), 0, NULL, 0, 0, 0}

/* Open the container `name`: the open one if it exists (cfg may be NULL;
 * if not, its kind must match), else a new one from cfg.  Each successful
 * open is paired with one ax_cont_close.  Opening an LMDB container the
 * first time opens files (blocking I/O): do that from an outside thread
 * where it matters.  [any registered thread or behaviour]
 * 0, -EINVAL (bad name or config), -ENOENT (not open and cfg NULL), -ENOMEM,
 * or an LMDB error mapped to -errno (-EIO for LMDB's own codes). */
AX_API int ax_cont_open(ax_cont_registry_t *reg, const char *name, const ax_cont_config_t *cfg,
                        ax_cont_t **out);
/* Drop one reference; the last close frees the container (memory: after a
 * grace period; LMDB: after the writer committed what was queued).  Not
 * inside a read or write section.  [any thread or behaviour] */
AX_API void ax_cont_close(ax_cont_t *c);

/* ---- read sections ------------------------------------------------------------- */

/* Section state, on the caller's stack.  Layout private. */
typedef struct ax_cont_rd {
    void *opaque_[4];
} ax_cont_rd_t;

/* Enter a read section.  ctx: the behaviour's context, or NULL from a
 * registered outside thread.  [behaviour or outside]  0, -EINVAL, or (LMDB)
 * -EIO if a read transaction cannot start. */
AX_API int ax_cont_read_enter(ax_ctx_t *ctx, ax_cont_t *c, ax_cont_rd_t *rd);
/* Look a key up: *val / *vlen point at the value, valid until leave.
 * 0, -ENOENT, -EINVAL. */
AX_API int ax_cont_get(ax_cont_rd_t *rd, const void *key, size_t klen, const void **val, size_t *vlen);
AX_API void ax_cont_read_leave(ax_cont_rd_t *rd);

/* ---- write sections ------------------------------------------------------------ */

typedef struct ax_cont_wr {
    void *opaque_[6];
} ax_cont_wr_t;

/* Enter a write section.  Memory kind: sections exclude each other.  A
 * section whose only operation is one put applies it at leave, atomically
 * (as if alone), without waiting for writers on other workers; any other
 * section excludes every other writer from its second put, its first wget
 * or del on (that call waits for the writers then inside to leave).
 * [behaviour or outside]  0, -EINVAL, -ENOMEM. */
AX_API int ax_cont_write_enter(ax_ctx_t *ctx, ax_cont_t *c, ax_cont_wr_t *wr);
/* Read inside a write section: the memory kind sees this section's own
 * puts; LMDB sees the last committed state.  Pointers valid until leave. */
AX_API int ax_cont_wget(ax_cont_wr_t *wr, const void *key, size_t klen, const void **val,
                        size_t *vlen);
/* Put (insert or replace) and delete.  klen 1..AX_CONT_KEY_MAX, vlen up to
 * AX_CONT_VALUE_MAX (copied).  Memory: visible to readers at return, except
 * a section's first put, which becomes visible at the section's next
 * operation or at leave (whichever comes first).  LMDB:
 * queued for the commit at leave.  0, -EINVAL, -ENOMEM; delete: -ENOENT
 * (memory kind only: LMDB learns it at commit and ignores it). */
AX_API int ax_cont_put(ax_cont_wr_t *wr, const void *key, size_t klen, const void *val, size_t vlen);
AX_API int ax_cont_del(ax_cont_wr_t *wr, const void *key, size_t klen);

/* The message an LMDB commit sends to the writing actor (type = the
 * reply_type given at leave). */
typedef struct ax_cont_commit {
    uint64_t seq;    /* returned by ax_cont_write_leave, per container */
    int32_t status;  /* 0: durable (synced); else -errno: nothing of it applied */
    uint32_t ops;    /* puts and deletes in the section */
} ax_cont_commit_t;

/* Leave the write section.  Memory: 0 (reply_type unused, no message), or
 * -ENOMEM when a one-put section's put needed an index rebuild that could
 * not allocate (the put is not applied).
 * LMDB: hands the section's changes to the writer thread; when they are
 * committed and synced, the calling actor gets a message of reply_type
 * (< AX_TYPE_SYSTEM) carrying an ax_cont_commit_t with *seq (may be NULL);
 * from an outside thread (ctx NULL) no message is sent: wait with
 * ax_cont_sync.  A section without changes sends no message.
 * 0 or -ENOMEM (nothing queued: the changes are dropped, and said so). */
AX_API int ax_cont_write_leave(ax_cont_wr_t *wr, uint32_t reply_type, uint64_t *seq);
/* Wait until commit seq of an LMDB container is durable (or failed).
 * [outside] 0, the commit's -errno, -ETIMEDOUT, -EINVAL. */
AX_API int ax_cont_sync(ax_cont_t *c, uint64_t seq, int64_t timeout_ns);

typedef struct ax_cont_stats {
    uint64_t entries;      /* memory: current keys (approximate); LMDB: committed keys */
    uint64_t puts, dels;   /* applied */
    uint64_t commits;      /* LMDB: write transactions committed */
    uint64_t commit_failed;
    uint64_t acks_lost;    /* LMDB: commit messages ax_engine_send could not deliver */
} ax_cont_stats_t;
AX_API int ax_cont_stats(ax_cont_t *c, ax_cont_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* AXON_CONTAINER_H */
