/* axon/cluster.h - several engines (nodes) as one actor system over UCX.
 *
 * A node is one engine in one process.  It joins a cluster when its config
 * sets cluster.listen or cluster.peers (axon/config.h, docs/cluster.md), or
 * through the MPI launcher below.  A reference names its node
 * (ax_ref_node), and sending to a reference on another node is the same
 * ax_send / ax_send_blob as a local send, with the same promises: per-pair
 * order, and no silent loss (a send is on its way or returns an error; a
 * message that cannot be delivered is a counted dead letter).
 *
 * Who may call what: as in axon/axon.h.
 */
#ifndef AXON_CLUSTER_H
#define AXON_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "axon/axon.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True if the engine is a cluster node. [any] */
AX_API bool ax_cluster_enabled(const ax_engine_t *eng);
/* This node's id (cluster.node_id; 0 outside a cluster). [any] */
AX_API uint32_t ax_cluster_node_id(const ax_engine_t *eng);
/* The join listener's bound "ip:port" (useful with port 0).  0, or
 * -ENOTCONN (no listener), -EINVAL, -ENOSPC (len too small). [any] */
AX_API int ax_cluster_listen_address(const ax_engine_t *eng, char *buf, size_t len);
/* Dial another node ("host:port"), before or after start; redialled until
 * it is up and whenever it is down.  0, -EINVAL (not a cluster node, bad
 * address), -ENOSPC (too many peers). [creator, or any] */
AX_API int ax_cluster_add_peer(ax_engine_t *eng, const char *addr);
/* Wait until `nodes` other nodes are up (joined, and every worker's
 * endpoints to them wired: docs/cluster.md "Failure"), at most
 * timeout_ms.  0, -ETIMEDOUT, -EINVAL (not a cluster node).  For the
 * embedding program (never a behaviour: behaviours do not wait). [creator] */
AX_API int ax_cluster_wait_nodes(ax_engine_t *eng, uint32_t nodes, uint32_t timeout_ms);
/* Is node `node` up right now (joined and wired, as above)? [any] */
AX_API bool ax_cluster_node_up(const ax_engine_t *eng, uint32_t node);

/* ---- names ----------------------------------------------------------------------
 * A cluster-wide registry: every node keeps a full copy, so a lookup is
 * answered at once, as a message.  Registrations travel to every node that
 * is up or joins later; a node's names go away when it is down.  Two nodes
 * registering one name at once: each keeps its own until one unregisters
 * (last writer wins elsewhere). */
#define AX_NAME_MAX 32u /* bytes, with the terminating NUL */
/* Register `ref` (an actor of this node) under `name`.  [any]
 * 0, -EINVAL (not a cluster node, name empty or too long, ref not local),
 * -EEXIST (name taken), -ENOMEM. */
AX_API int ax_cluster_register(ax_engine_t *eng, const char *name, ax_ref_t ref);
/* Remove a name this node registered.  [any] 0, -EINVAL, -ENOENT. */
AX_API int ax_cluster_unregister(ax_engine_t *eng, const char *name);
/* Ask for `name`: the running actor receives a message of `type` whose
 * payload is the reference (u64[0], AX_REF_NONE when the name is unknown)
 * then the name (NUL-terminated, data + 8).  Never waits.  [behaviour]
 * 0, -EINVAL (not a cluster node, bad name or type), or ax_send's errors. */
AX_API int ax_cluster_lookup(ax_ctx_t *ctx, const char *name, uint32_t type);
/* This node's copy of the registry, for the embedding program. [any] */
AX_API ax_ref_t ax_cluster_whereis(const ax_engine_t *eng, const char *name);

/* ---- remote spawn -----------------------------------------------------------------
 * A behaviour is named by a registered name: every node registers the same
 * names (the same program), and any node can ask another to spawn one. */
#define AX_BEHAVIOURS_MAX 64u
/* Name fn (with its state size, init and fini) on this node.  [creator,
 * before start]  0, -EINVAL (not a cluster node, bad name or fn),
 * -EEXIST, -ENOSPC (AX_BEHAVIOURS_MAX), -EALREADY (started). */
AX_API int ax_cluster_behaviour_register(ax_engine_t *eng, const char *name, ax_behaviour_fn fn,
                                         size_t state_size, ax_init_fn init, ax_fini_fn fini);
/* Ask node `node` (this one too) to spawn the behaviour registered as
 * `name`, init getting a copy of arg (arg_len <= AX_SPAWN_ARG_MAX).  The
 * running actor receives a message of reply_type: u64[0] the new reference
 * (AX_REF_NONE on failure), u64[1] 0 or -errno as an int64 (-ENOENT: no
 * such behaviour there, or the spawn's error), then the name (data + 16,
 * truncated to 24 bytes).  Never waits.  [behaviour]  0, -EINVAL,
 * -EHOSTUNREACH (node not up), -ENOMEM. */
AX_API int ax_cluster_spawn(ax_ctx_t *ctx, uint32_t node, const char *name, const void *arg,
                            size_t arg_len, uint32_t reply_type);

typedef struct ax_cluster_stats {
    uint64_t nodes_up;           /* other nodes up now */
    uint64_t joins;              /* node incarnations that joined */
    uint64_t node_downs;         /* node incarnations lost (unreachable, closed, restarted) */
    uint64_t node_leaves;        /* node incarnations that left in order (stopped cleanly) */
    uint64_t refused_version;    /* peers refused: other wire version or byte order */
    uint64_t refused_cookie;     /* peers refused: wrong cookie */
    uint64_t refused_garbage;    /* control connections dropped for malformed input */
    uint64_t refused_incarnation; /* rejoins refused: same incarnation tag as before */
    uint64_t heartbeats_sent, heartbeats_received;
    uint64_t msgs_sent;          /* messages handed to the transport */
    uint64_t msgs_received;      /* messages delivered from other nodes */
    uint64_t batches_sent, batches_received; /* active messages (a batch, or one large blob) */
    uint64_t bytes_sent, bytes_received;      /* payload bytes of those */
    uint64_t reordered;          /* active messages that arrived ahead of their turn */
    uint64_t dead_unreachable;   /* messages lost because their node went down (counted
                                    in dead_letters too) */
    uint64_t dead_stopped;       /* messages lost because their node stopped cleanly
                                    (queued or in flight when it left; in dead_letters too) */
    uint64_t dead_stale;         /* messages to a reference of another incarnation */
    uint64_t dead_nomem;         /* arrivals that found no memory for their blob */
    uint64_t wire_errors;        /* malformed or unexpected active messages dropped */
    /* The data path's own cost (docs/cluster.md, "Oversubscribed nodes"): */
    uint64_t progress_calls;     /* ucp_worker_progress calls (on every per-peer UCP worker) */
    uint64_t progress_busy;      /* of those, calls that reported work */
    uint64_t arms;               /* parks on UCP's event fd (ucp_worker_arm succeeded) */
    uint64_t fd_wakes;           /* UCP event-fd polls that fired (a park it ended) */
    uint64_t yields;             /* sched_yield calls of unpinned workers before parking
                                    (cluster.yield_us) */
} ax_cluster_stats_t;
/* Counters summed over workers and the control plane. [any] */
AX_API void ax_cluster_get_stats(const ax_engine_t *eng, ax_cluster_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* AXON_CLUSTER_H */
