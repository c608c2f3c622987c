/* cluster/control.h - the cluster's control plane: node membership over one
 * TCP connection per pair of nodes (join handshake with wire version and
 * cookie check, UCP worker address exchange, heartbeats, node loss, orderly leave).
 *
 * It knows nothing about actors: it moves node cards (id, incarnation,
 * per-worker UCP addresses) and reports nodes coming and going through
 * callbacks.  The data path (engine/cluster_glue.c) never touches it except
 * through ax_ctl_report_error and, at a clean stop, ax_ctl_leave.
 *
 * Threading: one control thread per engine runs every callback; the other
 * calls are [any] unless marked.  Memory: malloc; nothing is shared with the
 * workers except what the callbacks copy out.
 */
#ifndef AXON_CLUSTER_CONTROL_H
#define AXON_CLUSTER_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The control protocol's version: a peer that speaks another is refused
 * with a message naming both.  Bump on any change to docs/cluster.md's
 * frames or the data path's wire header. */
#define AX_WIRE_VERSION 3u
#define AX_CTL_NODES 256u
#define AX_CTL_LISTEN_MAX 64u

typedef struct ax_ctl ax_ctl_t;

typedef struct ax_ctl_opts {
    uint32_t node;      /* this node's id */
    uint32_t inc_tag;   /* its incarnation tag (1..15) */
    uint64_t nonce;     /* its incarnation nonce (unique per start) */
    const char *cookie; /* shared secret, not empty */
    const char *listen; /* "host:port" or "" (no listener) */
    const char *peers;  /* "host:port,..." or "" */
    uint32_t heartbeat_ms, timeout_ms;
    uint32_t wire_version; /* AX_WIRE_VERSION; tests set another to be refused */
    uint32_t nworkers;
    void *const *addr;    /* per worker UCP address (copied); unused with addrs_for */
    const size_t *alen;
    void *user;
    /* The addresses to give `node` on the connection numbered `session`
     * (ADDRS): fills addr[nworkers], alen[nworkers], valid until the call
     * returns.  A data path that gives each peer node UCP workers of its own
     * (engine/cluster_glue.c) makes them here.  0, or -errno with why[256]
     * filled: the connection is closed with that text.  NULL: the static
     * addr/alen above, the same for every peer. */
    int (*addrs_for)(void *user, uint32_t node, uint64_t session, void **addr, size_t *alen,
                     char *why);
    /* addrs_for's session never reached node_known (the connection closed
     * before the peer's ADDRS): what was made for it may go.  Also at
     * ax_ctl_destroy, on the destroying thread. */
    void (*addrs_drop)(void *user, uint32_t node, uint64_t session);
    /* A node's card arrived and it was authenticated: accept its data
     * (addresses valid during the call).  `session` names this connection
     * to it (the same number on both ends, never 0, new for every
     * connection): the data path keys its channels by it, so a node that
     * went down and came back starts afresh on both sides. */
    void (*node_known)(void *user, uint32_t node, uint64_t session, uint32_t inc_tag,
                       uint32_t nworkers, void *const *addr, const size_t *alen);
    /* The node knows us too: sends to it may start. */
    void (*node_up)(void *user, uint32_t node, uint64_t session);
    /* The node's session is over: `why` says how.  `left` is true for an
     * orderly leave (the node sent LEAVE: it stopped cleanly; or this node
     * is leaving itself, ax_ctl_leave), false when it died, restarted or
     * was unreachable. */
    void (*node_down)(void *user, uint32_t node, uint64_t session, bool left, const char *why);
} ax_ctl_opts_t;

typedef struct ax_ctl_stats {
    uint64_t joins, downs, leaves, refused_version, refused_cookie, refused_garbage,
        refused_incarnation, heartbeats_sent, heartbeats_received;
} ax_ctl_stats_t;

/* Bind the listener (if any); starts nothing.  0 or -errno with err filled. */
int ax_ctl_create(const ax_ctl_opts_t *o, ax_ctl_t **out, char *err, size_t errlen);
int ax_ctl_start(ax_ctl_t *c);     /* the control thread: dials peers, accepts */
void ax_ctl_destroy(ax_ctl_t *c);  /* stops the thread, closes everything; NULL ok */
/* The bound listener's "ip:port" ("" without one). */
void ax_ctl_listen_addr(const ax_ctl_t *c, char *buf, size_t len);
/* Dial another node (kept dialling until it is up).  0, -EINVAL, -ENOSPC. */
int ax_ctl_add_peer(ax_ctl_t *c, const char *addr);
/* The data path saw an error on `node`'s session `session`: declare it
 * down now rather than at the heartbeat timeout (an older session: nothing). */
void ax_ctl_report_error(ax_ctl_t *c, uint32_t node, uint64_t session);
/* Leave the cluster (a clean stop): send LEAVE on every control connection,
 * stop dialling and close the listener, then wait up to wait_ms for the
 * peers to close their connections (each does once it has taken the node
 * down: after that, errors of the data path to this node are no news to
 * it).  Call before the data path's endpoints close.  0, or -ETIMEDOUT when
 * some peer had not closed in time (it still reads LEAVE before the
 * connection's end).  [any, once] */
int ax_ctl_leave(ax_ctl_t *c, uint32_t wait_ms);
uint32_t ax_ctl_nodes_up(const ax_ctl_t *c); /* up peers, self excluded */
bool ax_ctl_node_is_up(const ax_ctl_t *c, uint32_t node);
void ax_ctl_get_stats(const ax_ctl_t *c, ax_ctl_stats_t *out);

/* SipHash-2-4 (Aumasson, Bernstein): the cookie challenge's MAC. */
uint64_t ax_siphash24(const uint8_t key[16], const void *data, size_t len);

#endif /* AXON_CLUSTER_CONTROL_H */
