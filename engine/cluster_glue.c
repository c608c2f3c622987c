/* engine/cluster_glue.c - the cluster data path: on each axon worker, one
 * UCP worker per peer node (uw[w][n]: every endpoint to node n's workers
 * lives on it, and its address is the one node n gets for worker w), all
 * progressed in the worker loop; outbound messages queued per
 * (remote node, remote worker) channel during a turn and sent as one active
 * message per channel at the end of the turn; inbound ones put back in
 * order and queued for dispatch like ring slots.  docs/cluster.md has the
 * wire format and the reasoning; cluster/control.c the membership.
 *
 * Order.  UCX active messages are not ordered (an eager message overtakes a
 * rendezvous one, lanes differ).  Every active message on a channel (local
 * worker s -> node X worker d) carries the channel's sequence number; the
 * receiver keeps, per (node, s), the next number it expects and parks early
 * arrivals in a list sorted by number until the gap is filled.  Messages
 * from one actor to another travel on one channel, in one batch or in
 * batches of increasing number, so per-pair order holds.
 *
 * Why one UCP worker per peer node.  Between processes of one host UCX
 * (1.13, sysv/posix) writes an active message into the receiving UCP
 * worker's one receive FIFO, shared by every sender: a sender claims an
 * element, copies, then sets its owner bit, and the receiver reads elements
 * strictly in order.  A sender frozen (SIGSTOP) or killed between the claim
 * and the owner bit leaves an element that is never published, and the
 * receiver never reads anything after it, from any node.  With a UCP worker
 * per peer, only that peer writes to its FIFO: a frozen peer wedges a FIFO
 * nobody else needs, and when the peer is declared down that UCP worker is
 * destroyed (a rejoin gets a fresh one).  docs/cluster.md, Failure.
 *
 * Threading: everything here runs on the owning worker's thread except the
 * control-plane callbacks (addrs_for, addrs_drop, node_known, node_up,
 * node_down), which run on the control thread and publish a node's
 * incarnation record with a release store that the workers read with
 * acquire loads (P1 below).  UCP workers are UCS_THREAD_MODE_SINGLE: the
 * control thread creates a session's set (addrs_for, one per axon worker)
 * and publishes it with the session's record (node_known, P1); from then on
 * worker w alone uses, and destroys, set member w (it takes it in
 * wnode_init).  A set whose session never got published is destroyed by
 * the control thread (addrs_drop); members never taken by their worker (the
 * session ended first) by that worker at its next session with the node,
 * or at engine destroy.  The UCP context is created with mt_workers_shared
 * for that: UCP workers are created on one thread while others use theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
#include <ucp/api/ucp.h>

#include "axon/cluster.h"
#include "cluster/control.h"
#include "engine/cluster_glue.h"
#include "engine/engine_internal.h"
#include "io/uring.h"

#define AM_ID 7u
#define WIRE_MAGIC 0x31575841u /* "AXW1" little-endian */
#define KIND_BATCH 1u
#define KIND_BLOB 2u
/* The wiring round trip (see wire_start): header only, outside the
 * channels' sequence numbers. */
#define KIND_PROBE 3u
#define KIND_PROBE_ACK 4u
/* Blobs up to this size travel inside their batch (copied); larger ones as
 * an active message of their own, sent from the blob itself (zero-copy on
 * the sender; UCX uses rendezvous above ~8 KiB, PLAYBOOK 8). */
#define EAGER_BLOB_MAX 4096u
#define BATCH_BYTES_MAX (64u * 1024u)
#define BATCH_MSGS_MAX 1024u
/* How long a stopping node waits for its peers to close their control
 * connections after its LEAVE (ax_ctl_leave). */
#define LEAVE_WAIT_MS 1000u
/* File descriptors counted per UCP worker for the cap in addrs_for
 * (measured: 10 with UCX 1.13's default transports, 6 with shared memory
 * or TCP alone), and left to the program beside them. */
#define UW_FDS 12u
#define UW_FDS_SPARE 256u

const char ax__cluster_token_tag = 0;
#define CL_TOKEN ((uint64_t)(uintptr_t)&ax__cluster_token_tag)

/* The wire header: the active message's header (docs/cluster.md). */
typedef struct wire_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t kind;
    uint16_t src_node, src_worker, dst_worker, pad;
    uint32_t count; /* messages in the batch (1 for a blob) */
    uint32_t pad2;
    uint64_t session; /* the control connection's session (control.h) */
    uint64_t seq;     /* on the channel (src node, src worker) -> (this node, dst worker) */
} wire_hdr_t;
_Static_assert(sizeof(wire_hdr_t) == 40, "the wire header is 40 bytes");

/* The UCP workers this node made for one session with one peer node, one
 * per axon worker (addrs_for); their addresses are what the peer got.
 * Before node_known: on the pending list (control thread only).  After:
 * hung on the session's pinc_t, and uw[w] belongs to axon worker w, which
 * takes it (NULL) in wnode_init or destroys it if the session ended
 * first. */
typedef struct lset {
    struct lset *next; /* pending list */
    uint64_t session;
    uint32_t node, n;
    ucp_address_t **addr; /* uw[i]'s address, released in node_known */
    ucp_worker_h uw[];
} lset_t;

/* One session with a peer node (an incarnation, as one control connection
 * carried it: control.h), as the control plane learnt it.  Never freed
 * before the engine (a worker may still read an old one). */
typedef struct pinc {
    uint64_t session;
    uint32_t nw, inc_tag;
    void **addr;
    size_t *alen;
    lset_t *ls; /* our UCP workers for this session */
    struct pinc *older;
} pinc_t;

typedef struct peer {
    /* P1: the control thread stores cur then state (release); workers load
     * state (acquire) then cur. */
    _Atomic(pinc_t *) cur;
    _Atomic uint32_t state; /* 0 unknown, 1 known (accept its data), 2 up (send), 3 down */
    /* Workers whose endpoints to the node's current session are wired
     * (wire_start): low 32 bits the count, high 32 bits the session's low
     * bits, so a late count for an old session never counts for a new one.
     * Reset by node_known (control thread, before P1's release); counted
     * by workers with a CAS (relaxed: read only as a readiness hint by
     * ax_cluster_node_up, after its acquire of state). */
    _Atomic uint64_t wired;
    /* The node's last down was an orderly leave (it stopped cleanly): set
     * by node_down before P1's release of state 3, cleared by node_known
     * before its release; read after an acquire of state.  Picks the
     * reason (AX_REASON_NODE_STOPPED) and the counter (dead_stopped) of
     * what is lost with the node. */
    _Atomic bool left;
    pinc_t *all;            /* every incarnation seen (control thread only) */
} peer_t;

typedef struct name_ent {
    char name[AX_NAME_MAX];
    ax_ref_t ref;
} name_ent_t;

typedef struct bhv {
    char name[AX_NAME_MAX];
    ax_behaviour_fn fn;
    size_t state_size;
    ax_init_fn init;
    ax_fini_fn fini;
} bhv_t;

/* The remote spawn request: the blob of an AX_SYS_RSPAWN, then the arg. */
typedef struct rspawn {
    char name[AX_NAME_MAX];
    uint32_t reply_type;
    uint32_t arg_len;
} rspawn_t;

struct ax_cl {
    ax_engine_t *eng;
    bhv_t bhv[AX_BEHAVIOURS_MAX]; /* written before start, read-only after */
    uint32_t nbhv;
    /* The registry's copy on this node: a plain array under a mutex
     * (registrations and lookups are rare next to messages; O(names)). */
    pthread_mutex_t names_mu;
    name_ent_t *names;
    uint32_t nnames, names_cap;
    ucp_context_h ctx;
    ax_ctl_t *ctl;
    uint32_t node, inc_tag;
    uint64_t nonce; /* this incarnation (HELLO) */
    /* cluster.progress resolved: true = spin (no UCP wakeup feature; UCP is
     * polled in the idle spin, and every poll_ns while parked). */
    bool spin;
    int64_t poll_ns;
    peer_t peers[AX_CTL_NODES];
    lset_t *pending; /* sets made by addrs_for, not yet published (control thread) */
    _Atomic uint32_t uws; /* per-peer UCP workers alive (stats, cap) */
};

typedef struct arrival {
    struct arrival *next;
    struct ax_clw *cw;
    uint64_t seq, session;
    uint32_t node, src, kind, count;
    ax_msg_t rec; /* KIND_BLOB: the message */
    void *buf;    /* batch bytes (malloc) or the blob (arena) */
    size_t len;
    bool done, failed, orphan, is_blob;
} arrival_t;

typedef struct och {
    ax_mq_t q;
    uint64_t seq;
    bool dirty;
} och_t;

typedef struct ich {
    uint64_t expect;
    arrival_t *pend; /* sorted by seq */
    /* An arrival on this channel was lost (its rendezvous failed: the
     * sender died or the transport broke, or it could not be kept): nothing
     * later on the channel may be delivered, or a pair would see a gap
     * (per-pair order).  Later arrivals are dead letters until the node's
     * incarnation is forgotten (wnode_clear). */
    bool broken;
} ich_t;

typedef struct wnode {
    uint64_t session; /* session the arrays below belong to; 0: none */
    uint32_t nw;
    ucp_worker_h uw;  /* this worker's UCP worker for the node (lset_t) */
    ucp_ep_h *ep;
    och_t *out;
    ich_t *in;
    uint8_t *acked;   /* wiring: the node's worker d answered our probe */
    uint8_t *ack_due; /* wiring: its worker d probed us; answer at the flush */
    uint32_t acks_left;
    bool wiring;      /* probes sent, acks_left still to come */
} wnode_t;

typedef struct sendreq {
    struct ax_clw *cw;
    uint32_t node, count, kind;
    uint64_t session;
    void *blob; /* KIND_BLOB: the sender's blob, freed at completion */
    size_t bytes;
    wire_hdr_t hdr;
    ax_msg_t rec; /* KIND_BLOB: sent as part of the header */
    unsigned char data[];
} sendreq_t;

typedef struct ep_err_arg {
    struct ep_err_arg *next;
    struct ax_cl *cl;
    uint32_t node;
    uint64_t session;
} ep_err_arg_t;

/* A UCP worker of a session that is over, with its endpoints: closed and
 * destroyed from the worker loop (uw_reap), never from inside a UCX
 * callback or a send. */
typedef struct retired {
    ucp_worker_h uw;
    ucp_ep_h *ep;
    uint32_t nw;
} retired_t;

typedef struct ax_clw {
    ax_worker_t *w;
    struct ax_cl *cl;
    /* The live per-peer UCP workers, packed (progress and arm walk them),
     * in no order. */
    ucp_worker_h live[AX_CTL_NODES];
    uint32_t nlive, rr; /* rr: the one ax__cluster_poll progressed last */
    int efd; /* an epoll set of the live UCP workers' event fds (wakeup mode) */
    bool poll_armed;
    ax_mq_t inq;  /* in-order arrivals waiting for dispatch */
    ax_mq_t dead; /* sends to stale references: dead letters at the flush */
    uint32_t *dirty;
    uint32_t ndirty, dirty_cap;
    uint64_t inflight;
    uint64_t traffic, traffic_parked; /* active messages sent or received; at the last arm */
    uint32_t acks_due; /* nodes with an ack_due set (wiring answers to send) */
    ep_err_arg_t *eargs; /* endpoint error-handler arguments, freed at destroy */
    retired_t *retired; /* UCP workers of sessions that are over (uw_retire) */
    uint32_t nretired, retired_cap;
    wnode_t node[AX_CTL_NODES];
    struct {
        _Atomic uint64_t msgs_sent, msgs_received, batches_sent, batches_received, bytes_sent,
            bytes_received, reordered, dead_unreachable, dead_stopped, dead_stale, dead_nomem,
            wire_errors, progress_calls, progress_busy, arms, fd_wakes, yields;
    } st;
} ax_clw_t;

#define CW(w) ((ax_clw_t *)(w)->cl)

/* ---- config and lifecycle ------------------------------------------------------------ */

bool ax__cluster_wanted(const ax_config_t *cfg)
{
    return cfg->cluster_listen[0] || cfg->cluster_peers[0];
}

/* The incarnation tag (docs/cluster.md "References").  It is part of every
 * reference the node makes, including those made before it joins (actors
 * spawned and names registered before ax_engine_start), so it is chosen
 * here, from what this machine knows: with cluster.state_file, the tag
 * after the one the file holds (1..15, so never the last one), written back
 * (temporary file, fsync, rename, fsync of the directory) before the engine
 * exists; without it, 1 + seconds mod 15 from the clock, which collides on
 * a restart within a second (the control plane refuses that rejoin:
 * refused_incarnation). */
#define STATE_MAGIC "axon-incarnation"
int ax__cluster_pick_tag(const ax_config_t *cfg, uint32_t *tag, char *err, size_t errlen)
{
    const char *path = cfg->cluster_state_file;
    if (!path[0]) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *tag = 1u + (uint32_t)(ts.tv_sec % 15);
        return 0;
    }
    uint32_t last = 0;
    FILE *f = fopen(path, "re");
    if (f) {
        char line[64] = "";
        unsigned v = 0;
        char extra;
        bool ok = fgets(line, sizeof line, f) &&
                  sscanf(line, STATE_MAGIC " %u %c", &v, &extra) == 1 && v >= 1 && v <= 15;
        bool empty = !line[0];
        fclose(f);
        if (!ok && !empty) {
            snprintf(err, errlen, "cluster.state_file = %s: not an axon incarnation state file "
                     "(expected \"" STATE_MAGIC " N\", N from 1 to 15); remove it or point "
                     "cluster.state_file at another file", path);
            return -EINVAL;
        }
        last = ok ? v : 0;
    } else if (errno != ENOENT) {
        int e = errno;
        snprintf(err, errlen, "cluster.state_file = %s: cannot read it: %s", path, strerror(e));
        return -e;
    }
    uint32_t t = last % 15u + 1u;
    char tmp[AX_CONFIG_STR_MAX + 16];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        snprintf(err, errlen, "cluster.state_file = %s: path too long", path);
        return -ENAMETOOLONG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : 0;
    if (!rc) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, STATE_MAGIC " %u\n", t);
        if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0)
            rc = errno ? -errno : -EIO;
        if (close(fd) < 0 && !rc)
            rc = -errno;
    }
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        snprintf(err, errlen, "cluster.state_file = %s: cannot write it: %s; the node must "
                 "record its incarnation to rejoin safely after a restart", path, strerror(-rc));
        return rc;
    }
    /* The rename itself survives a crash once the directory is synced. */
    char dir[AX_CONFIG_STR_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    *tag = t;
    return 0;
}

/* ---- the name registry's table ------------------------------------------------------------ */

static int names_find(const struct ax_cl *cl, const char *name)
{
    for (uint32_t i = 0; i < cl->nnames; i++)
        if (strcmp(cl->names[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* 0 (added or already there with this ref), -EEXIST, -ENOMEM. */
static int names_put(struct ax_cl *cl, const char *name, ax_ref_t ref)
{
    int rc = 0;
    pthread_mutex_lock(&cl->names_mu);
    int i = names_find(cl, name);
    if (i >= 0) {
        rc = cl->names[i].ref == ref ? 0 : -EEXIST;
    } else {
        if (cl->nnames == cl->names_cap) {
            uint32_t cap = cl->names_cap ? cl->names_cap * 2 : 64;
            name_ent_t *n = realloc(cl->names, cap * sizeof *n);
            if (!n)
                rc = -ENOMEM;
            else
                cl->names = n, cl->names_cap = cap;
        }
        if (!rc) {
            snprintf(cl->names[cl->nnames].name, AX_NAME_MAX, "%s", name);
            cl->names[cl->nnames++].ref = ref;
        }
    }
    pthread_mutex_unlock(&cl->names_mu);
    return rc;
}

/* Remove name if it maps to a ref of node `node` (UINT32_MAX: any). */
static int names_del(struct ax_cl *cl, const char *name, uint32_t node)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&cl->names_mu);
    int i = names_find(cl, name);
    if (i >= 0 && (node == UINT32_MAX || ax_ref_node(cl->names[i].ref) == node)) {
        cl->names[i] = cl->names[--cl->nnames];
        rc = 0;
    }
    pthread_mutex_unlock(&cl->names_mu);
    return rc;
}

static void names_drop_node(struct ax_cl *cl, uint32_t node)
{
    pthread_mutex_lock(&cl->names_mu);
    for (uint32_t i = 0; i < cl->nnames;)
        if (ax_ref_node(cl->names[i].ref) == node)
            cl->names[i] = cl->names[--cl->nnames];
        else
            i++;
    pthread_mutex_unlock(&cl->names_mu);
}

static void post_worker0(ax_engine_t *eng, uint32_t type, uint64_t u0, const char *name)
{
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = ax__ref_make(eng->home, 0, 0, 0); /* worker 0, not an actor */
    m.type = type;
    m.len = AX_INLINE_MAX;
    m.payload.u64[0] = u0;
    if (name)
        snprintf((char *)m.payload.data + 8, AX_NAME_MAX, "%s", name);
    ax__ext_post(eng, &m); /* -ESHUTDOWN at stop: nobody left to tell */
}

static ucs_status_t on_am(void *arg, const void *header, size_t hlen, void *data, size_t len,
                          const ucp_am_recv_param_t *param);

/* A UCP worker for axon worker `wid` (the control thread makes them for a
 * peer, addrs_for).  Its address in *addr (ucp_worker_release_address). */
static ucs_status_t uw_make(struct ax_cl *cl, uint32_t wid, ucp_worker_h *out, ucp_address_t **addr,
                            size_t *alen)
{
    ucp_worker_params_t wp = {
        .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE |
                      (cl->spin ? 0 : UCP_WORKER_PARAM_FIELD_EVENTS),
        .thread_mode = UCS_THREAD_MODE_SINGLE,
        .events = UCP_WAKEUP_RX | UCP_WAKEUP_TX,
    };
    ucs_status_t st = ucp_worker_create(cl->ctx, &wp, out);
    if (st != UCS_OK)
        return st;
    ucp_am_handler_param_t hp = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
        .id = AM_ID,
        .flags = UCP_AM_FLAG_WHOLE_MSG,
        .cb = on_am,
        .arg = cl->eng->w[wid],
    };
    if ((st = ucp_worker_set_am_recv_handler(*out, &hp)) != UCS_OK ||
        (st = ucp_worker_get_address(*out, addr, alen)) != UCS_OK) {
        ucp_worker_destroy(*out);
        *out = NULL;
    }
    return st;
}

static void lset_release_addrs(lset_t *ls)
{
    for (uint32_t i = 0; ls->addr && i < ls->n; i++)
        if (ls->addr[i])
            ucp_worker_release_address(ls->uw[i], ls->addr[i]);
    free(ls->addr);
    ls->addr = NULL;
}

static void lset_free(struct ax_cl *cl, lset_t *ls)
{
    if (!ls)
        return;
    lset_release_addrs(ls);
    for (uint32_t i = 0; i < ls->n; i++)
        if (ls->uw[i]) {
            ucp_worker_destroy(ls->uw[i]);
            atomic_fetch_sub_explicit(&cl->uws, 1, memory_order_relaxed);
        }
    free(ls);
}

/* The control plane is about to send node `node` our addresses for the
 * connection `session` (ADDRS): make one UCP worker per axon worker for
 * that peer alone and give their addresses (control.h addrs_for). */
static int addrs_for(void *user, uint32_t node, uint64_t session, void **addr, size_t *alen,
                     char *why)
{
    struct ax_cl *cl = user;
    uint32_t nw = cl->eng->n;
    /* The cap: a UCP worker holds about 10 file descriptors (UCX 1.13,
     * default transports; docs/cluster.md, Architecture).  Refuse the peer
     * with a message rather than fail somewhere inside UCX, or leave the
     * program no descriptors of its own. */
    struct rlimit rl;
    uint64_t live = atomic_load_explicit(&cl->uws, memory_order_relaxed);
    uint64_t need = (live + nw) * UW_FDS + UW_FDS_SPARE;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
        snprintf(why, 256, "node %u would hold %llu per-peer UCP workers (workers x peer nodes), "
                 "about %llu file descriptors, over its open-file limit (ulimit -n) %llu: "
                 "raise the limit or run fewer workers per node", cl->node,
                 (unsigned long long)(live + nw), (unsigned long long)need,
                 (unsigned long long)rl.rlim_cur);
        return -EMFILE;
    }
    lset_t *ls = calloc(1, sizeof *ls + nw * sizeof ls->uw[0]);
    if (!ls || !(ls->addr = calloc(nw, sizeof *ls->addr))) {
        free(ls);
        return -ENOMEM;
    }
    ls->session = session;
    ls->node = node;
    ls->n = nw;
    int rc = 0;
    for (uint32_t i = 0; i < nw && !rc; i++) {
        ucs_status_t st = uw_make(cl, i, &ls->uw[i], &ls->addr[i], &alen[i]);
        if (st != UCS_OK) {
            snprintf(why, 256, "ucp_worker_create for worker %u: %s (per-peer UCP workers "
                     "alive: %u; see docs/cluster.md, Architecture, for what they cost)",
                     i, ucs_status_string(st),
                     atomic_load_explicit(&cl->uws, memory_order_relaxed));
            rc = -EIO;
            break;
        }
        atomic_fetch_add_explicit(&cl->uws, 1, memory_order_relaxed);
        addr[i] = ls->addr[i];
    }
    if (rc) {
        lset_free(cl, ls);
        return rc;
    }
    ls->next = cl->pending;
    cl->pending = ls;
    return 0;
}

static void addrs_drop(void *user, uint32_t node, uint64_t session)
{
    struct ax_cl *cl = user;
    for (lset_t **pp = &cl->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->node == node && (*pp)->session == session) {
            lset_t *ls = *pp;
            *pp = ls->next;
            lset_free(cl, ls);
            return;
        }
}

/* AX_SYS_NODE_WIRE to every worker: take the session's UCP worker only
 * (node_known), or also wire the endpoints to the node (node_up).
 * -ESHUTDOWN at stop is ignored: nothing left to take or wire. */
static void post_wire(struct ax_cl *cl, uint32_t node, uint64_t session, bool take_only)
{
    for (uint32_t t = 0; t < cl->eng->n; t++) {
        ax_msg_t m;
        memset(&m, 0, sizeof m);
        m.to = ax__ref_make(cl->eng->home, t, 0, 0);
        m.type = AX_SYS_NODE_WIRE;
        m.len = take_only ? 24 : 16;
        m.payload.u64[0] = node;
        m.payload.u64[1] = session;
        m.payload.u64[2] = take_only; /* 1: take it only; node_up's wires it */
        ax__ext_post(cl->eng, &m);
    }
}

static void node_known(void *user, uint32_t node, uint64_t session, uint32_t inc_tag, uint32_t nw,
                       void *const *addr, const size_t *alen)
{
    struct ax_cl *cl = user;
    peer_t *p = &cl->peers[node];
    pinc_t *pi = calloc(1, sizeof *pi);
    if (!pi)
        return;
    pi->session = session;
    pi->nw = nw;
    pi->inc_tag = inc_tag;
    pi->addr = calloc(nw, sizeof *pi->addr);
    pi->alen = calloc(nw, sizeof *pi->alen);
    for (uint32_t i = 0; pi->addr && pi->alen && i < nw; i++) {
        if ((pi->addr[i] = malloc(alen[i])))
            memcpy(pi->addr[i], addr[i], alen[i]);
        pi->alen[i] = alen[i];
    }
    /* Our UCP workers for this session (addrs_for made them): from now on
     * each belongs to its axon worker (lset_t). */
    for (lset_t **pp = &cl->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->node == node && (*pp)->session == session) {
            pi->ls = *pp;
            *pp = pi->ls->next;
            pi->ls->next = NULL;
            lset_release_addrs(pi->ls); /* the peer has them: no longer needed */
            break;
        }
    pi->older = p->all;
    p->all = pi;
    atomic_store_explicit(&p->wired, (uint64_t)(uint32_t)session << 32, memory_order_relaxed);
    atomic_store_explicit(&p->cur, pi, memory_order_relaxed);
    atomic_store_explicit(&p->left, false, memory_order_relaxed);
    atomic_store_explicit(&p->state, 1, memory_order_release); /* P1 */
    /* Every worker takes its UCP worker for the session now, so what the
     * node sends after our READY is read without waiting for node_up. */
    post_wire(cl, node, session, true);
}

static void node_up(void *user, uint32_t node, uint64_t session)
{
    struct ax_cl *cl = user;
    peer_t *p = &cl->peers[node];
    pinc_t *pi = atomic_load_explicit(&p->cur, memory_order_relaxed);
    if (pi && pi->session == session) {
        atomic_store_explicit(&p->state, 2, memory_order_release); /* P1 */
        post_worker0(cl->eng, AX_SYS_NAME_SYNC, node, NULL); /* tell it our names */
        /* Every worker wires its endpoints to the node now (wire_start). */
        post_wire(cl, node, session, false);
    }
}

static void node_down(void *user, uint32_t node, uint64_t session, bool left, const char *why)
{
    (void)why;
    struct ax_cl *cl = user;
    ax_engine_t *eng = cl->eng;
    peer_t *p = &cl->peers[node];
    pinc_t *pi = atomic_load_explicit(&p->cur, memory_order_relaxed);
    if (!pi || pi->session != session)
        return;
    atomic_store_explicit(&p->left, left, memory_order_relaxed);
    atomic_store_explicit(&p->state, 3, memory_order_release); /* P1 */
    names_drop_node(cl, node);
    /* Every worker drops what it queued for the node, fails its monitors. */
    for (uint32_t t = 0; t < eng->n; t++) {
        ax_msg_t m;
        memset(&m, 0, sizeof m);
        m.to = ax__ref_make(eng->home, t, 0, 0); /* a worker, not an actor */
        m.type = AX_SYS_NODE_DOWN;
        m.len = 24;
        m.payload.u64[0] = node;
        m.payload.u64[1] = session;
        m.payload.u64[2] = left;
        ax__ext_post(eng, &m); /* -ESHUTDOWN at stop: nothing left to fail */
    }
}

int ax__cluster_create(ax_engine_t *eng, uint32_t inc_tag, char *err, size_t errlen)
{
    const ax_config_t *cfg = &eng->cfg;
    if (!cfg->cluster_cookie[0]) {
        snprintf(err, errlen, "cluster.cookie is empty: a node joins only with the cluster's "
                              "shared secret; set cluster.cookie (the same on every node)");
        return -EINVAL;
    }
    struct ax_cl *cl = calloc(1, sizeof *cl);
    if (!cl)
        return -ENOMEM;
    eng->cl = cl;
    cl->eng = eng;
    pthread_mutex_init(&cl->names_mu, NULL);
    cl->node = cfg->cluster_node_id;
    cl->inc_tag = inc_tag;
    if (getrandom(&cl->nonce, sizeof cl->nonce, 0) != sizeof cl->nonce || !cl->nonce)
        cl->nonce = ax__now_ns() ^ ((uint64_t)getpid() << 40) ^ 1;
    /* Progress (docs/cluster.md "Shared memory and progress"): spin mode
     * does not ask for UCX's wakeup support and polls instead (parked: every
     * poll_ns).  auto is wakeup: measured as fast while busy and far better
     * when a peer is late (a park ends at the sender's signal, not at the
     * next poll). */
    cl->spin = cfg->cluster_progress == AX_CLUSTER_PROGRESS_SPIN;
    cl->poll_ns = (int64_t)(cfg->cluster_poll_us ? cfg->cluster_poll_us : 1000) * 1000;
    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features = UCP_FEATURE_AM | (cl->spin ? 0 : UCP_FEATURE_WAKEUP),
        /* The control thread creates UCP workers (addrs_for) while the axon
         * workers use and destroy theirs: the context's shared state needs
         * its lock.  Nothing on the per-message path takes it. */
        .mt_workers_shared = 1,
    };
    /* Shared memory between the nodes of one host.  Our endpoints ask for
     * peer-failure handling (UCP_ERR_HANDLING_MODE_PEER), and UCX 1.13's
     * sysv and posix transports offer it only with
     * UCX_{SYSV,POSIX}_ERROR_HANDLING=y (off by default), so without it UCX
     * falls back to TCP over lo (docs/cluster.md "Shared memory and
     * progress").  Turned on
     * unless the user set them.  Through the environment: ucp_config_modify
     * accepts the key but 1.13 does not apply it to the shared-memory
     * interfaces (tried).  setenv is not safe against a concurrent getenv in
     * another thread of the embedding program: ax_engine_create documents
     * that a cluster node's create should not race with such calls. */
    const char *tls = getenv("UCX_TLS");
    if (!tls || strstr(tls, "sm") || strstr(tls, "shm") || strstr(tls, "sysv") ||
        strstr(tls, "posix") || strstr(tls, "all") || tls[0] == '^') {
        /* (not with UCX_TLS=tcp: UCX would warn of unused variables) */
        setenv("UCX_SYSV_ERROR_HANDLING", "y", 0);
        setenv("UCX_POSIX_ERROR_HANDLING", "y", 0);
    }
    ucp_config_t *ucfg;
    ucs_status_t st = ucp_config_read(NULL, NULL, &ucfg);
    if (st == UCS_OK) {
        st = ucp_init(&params, ucfg, &cl->ctx);
        ucp_config_release(ucfg);
    }
    if (st != UCS_OK) {
        snprintf(err, errlen, "cluster: UCX initialisation failed: %s (check UCX_* variables "
                              "and `ucx_info -d`)", ucs_status_string(st));
        return -EIO;
    }
    int rc = 0;
    for (uint32_t i = 0; i < eng->n; i++) {
        ax_worker_t *w = eng->w[i];
        ax_clw_t *cw = calloc(1, sizeof *cw);
        if (!cw) {
            rc = -ENOMEM;
            break;
        }
        w->cl = cw;
        cw->w = w;
        cw->cl = cl;
        cw->efd = -1;
        ax_mq_init(&cw->inq);
        ax_mq_init(&cw->dead);
        /* No UCP worker yet: one per peer node comes with each session
         * (addrs_for).  Their event fds join this set, which the worker's
         * io_uring polls as one fd when it parks. */
        if (!cl->spin && (cw->efd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
            rc = -errno;
            snprintf(err, errlen, "cluster: epoll_create1 for worker %u: %s", i, strerror(-rc));
            break;
        }
    }
    if (!rc) {
        ax_ctl_opts_t o = {
            .node = cl->node,
            .inc_tag = inc_tag,
            .nonce = cl->nonce,
            .cookie = cfg->cluster_cookie,
            .listen = cfg->cluster_listen,
            .peers = cfg->cluster_peers,
            .heartbeat_ms = cfg->cluster_heartbeat_ms ? cfg->cluster_heartbeat_ms : 200,
            .wire_version = AX_WIRE_VERSION,
            .nworkers = eng->n,
            .user = cl,
            .addrs_for = addrs_for,
            .addrs_drop = addrs_drop,
            .node_known = node_known,
            .node_up = node_up,
            .node_down = node_down,
        };
        o.timeout_ms = cfg->cluster_timeout_ms ? cfg->cluster_timeout_ms : 10 * o.heartbeat_ms;
        /* Tests: AXON_TEST_WIRE_VERSION speaks another version, to be refused. */
        const char *tv = getenv("AXON_TEST_WIRE_VERSION");
        if (tv && *tv)
            o.wire_version = (uint32_t)strtoul(tv, NULL, 10);
        rc = ax_ctl_create(&o, &cl->ctl, err, errlen);
    }
    return rc;
}

int ax__cluster_start(ax_engine_t *eng)
{
    return eng->cl ? ax_ctl_start(eng->cl->ctl) : 0;
}

void ax__cluster_destroy(ax_engine_t *eng)
{
    struct ax_cl *cl = eng->cl;
    if (!cl)
        return;
    ax_ctl_destroy(cl->ctl); /* no more callbacks */
    for (uint32_t i = 0; i < eng->n; i++) {
        ax_worker_t *w = eng->w[i];
        ax_clw_t *cw = w ? CW(w) : NULL;
        if (!cw)
            continue;
        /* Never started: the worker did not destroy its own. */
        for (uint32_t n = 0; n < AX_CTL_NODES; n++)
            if (cw->node[n].uw) {
                ucp_worker_destroy(cw->node[n].uw);
                cw->node[n].uw = NULL;
            }
        if (cw->efd >= 0)
            close(cw->efd);
        while (cw->eargs) {
            ep_err_arg_t *nx = cw->eargs->next;
            free(cw->eargs);
            cw->eargs = nx;
        }
        free(cw->dirty);
        free(cw);
        w->cl = NULL;
    }
    while (cl->pending) { /* sets of sessions that never got published */
        lset_t *ls = cl->pending;
        cl->pending = ls->next;
        lset_free(cl, ls);
    }
    for (uint32_t n = 0; n < AX_CTL_NODES; n++) {
        pinc_t *pi = cl->peers[n].all;
        while (pi) {
            pinc_t *o = pi->older;
            lset_free(cl, pi->ls); /* members no worker took (their session ended first) */
            for (uint32_t i = 0; pi->addr && i < pi->nw; i++)
                free(pi->addr[i]);
            free(pi->addr);
            free(pi->alen);
            free(pi);
            pi = o;
        }
    }
    if (cl->ctx)
        ucp_cleanup(cl->ctx);
    pthread_mutex_destroy(&cl->names_mu);
    free(cl->names);
    free(cl);
    eng->cl = NULL;
}

/* ---- per-node state on a worker ------------------------------------------------------------ */

static void count_dead(ax_clw_t *cw, uint64_t n, _Atomic uint64_t *why)
{
    AX_STAT_ADD(*why, n);
    atomic_fetch_add_explicit(&cw->w->st.dead_letters, n, memory_order_relaxed);
}

/* Did node n leave in order (its last down)?  The acquire pairs with
 * node_down's release of state 3 (P1), which follows its store of left. */
static bool peer_left(const struct ax_cl *cl, uint32_t n)
{
    const peer_t *p = &cl->peers[n];
    return atomic_load_explicit(&p->state, memory_order_acquire) == 3 &&
           atomic_load_explicit(&p->left, memory_order_relaxed);
}

/* The counter for messages lost with node n: it stopped, or it failed. */
static _Atomic uint64_t *lost_ctr(ax_clw_t *cw, uint32_t n)
{
    return n < AX_CTL_NODES && peer_left(cw->cl, n) ? &cw->st.dead_stopped
                                                    : &cw->st.dead_unreachable;
}

uint32_t ax__cluster_down_reason(const ax_worker_t *w, ax_ref_t ref)
{
    uint32_t n = ax_ref_node(ref);
    const ax_clw_t *cw = CW(w);
    return cw && n < AX_CTL_NODES && peer_left(cw->cl, n) ? AX_REASON_NODE_STOPPED
                                                          : AX_REASON_UNREACHABLE;
}

/* Stop progressing a node's UCP worker (it leaves the live list and the
 * epoll set) and put it aside with its endpoints; uw_reap closes and
 * destroys it from the worker loop.  wnode_clear runs inside sends
 * (ax__cluster_slot) and dead-letter hooks: closing endpoints there, and
 * progressing until the closes completed, re-entered UCX from its own
 * callbacks.  On -ENOMEM it is destroyed at once. */
static void uw_retire(ax_clw_t *cw, ucp_worker_h uw, ucp_ep_h *ep, uint32_t nw)
{
    for (uint32_t i = 0; i < cw->nlive; i++)
        if (cw->live[i] == uw) {
            cw->nlive--;
            cw->live[i] = cw->live[cw->nlive];
            break;
        }
    int fd;
    if (!cw->cl->spin && cw->efd >= 0 && ucp_worker_get_efd(uw, &fd) == UCS_OK)
        epoll_ctl(cw->efd, EPOLL_CTL_DEL, fd, NULL);
    if (cw->nretired == cw->retired_cap) {
        uint32_t cap = cw->retired_cap ? cw->retired_cap * 2 : 8;
        retired_t *r = realloc(cw->retired, cap * sizeof *r);
        if (!r) {
            ucp_worker_destroy(uw); /* its endpoints go with it */
            atomic_fetch_sub_explicit(&cw->cl->uws, 1, memory_order_relaxed);
            free(ep);
            return;
        }
        cw->retired = r;
        cw->retired_cap = cap;
    }
    cw->retired[cw->nretired++] = (retired_t){.uw = uw, .ep = ep, .nw = nw};
}

/* Close and destroy the retired UCP workers: endpoints forced closed (the
 * session is over, what is in flight on them fails and is counted), the
 * closes progressed on that UCP worker alone (bounded: a forced close
 * completes locally; a wedged FIFO, the reason for all this, is never read
 * again), then the worker destroyed, which also cancels open rendezvous
 * receives (their arrivals are orphans, freed by the completion).  Outside
 * any UCX callback: from the worker loop, or at stop. */
static void uw_reap(ax_clw_t *cw)
{
    while (cw->nretired) {
        retired_t r = cw->retired[--cw->nretired];
        void *cl_req[64];
        uint32_t ncl = 0;
        for (uint32_t d = 0; d < r.nw; d++) {
            if (!r.ep[d])
                continue;
            ucp_request_param_t cp = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                                      .flags = UCP_EP_CLOSE_FLAG_FORCE};
            ucs_status_ptr_t q = ucp_ep_close_nbx(r.ep[d], &cp);
            if (q && !UCS_PTR_IS_ERR(q)) {
                if (ncl < 64)
                    cl_req[ncl++] = q;
                else
                    ucp_request_free(q); /* UCX frees it when it completes */
            }
        }
        for (int k = 0; k < 1000 && ncl; k++) {
            ucp_worker_progress(r.uw);
            for (uint32_t i = 0; i < ncl;) {
                if (ucp_request_check_status(cl_req[i]) != UCS_INPROGRESS) {
                    ucp_request_free(cl_req[i]);
                    cl_req[i] = cl_req[--ncl];
                } else {
                    i++;
                }
            }
        }
        for (uint32_t i = 0; i < ncl; i++)
            ucp_request_free(cl_req[i]);
        ucp_worker_destroy(r.uw);
        atomic_fetch_sub_explicit(&cw->cl->uws, 1, memory_order_relaxed);
        free(r.ep);
    }
}

/* Forget node n's session on this worker: queued sends become dead
 * letters (counted in dead_stopped when the node left in order, else
 * dead_unreachable), early arrivals are dropped, the node's UCP worker and
 * its endpoints retired (uw_retire: its receive FIFO may be wedged by the
 * node, frozen halfway through a send; a new session gets a new one).  The
 * node's record is detached first, so nothing run from here (a dead-letter
 * hook, a callback) can reach the old arrays through it. */
static void wnode_clear(ax_clw_t *cw, uint32_t n, bool left)
{
    ax_worker_t *w = cw->w;
    wnode_t old = cw->node[n];
    if (!old.session)
        return;
    memset(&cw->node[n], 0, sizeof cw->node[n]);
    for (uint32_t d = 0; d < old.nw; d++) {
        ax_msg_t *m;
        uint64_t lost = 0;
        while ((m = ax_mq_peek(&old.out[d].q))) {
            ax__dead_letter(w, m); /* counted, hooked, blob freed */
            w->handled++;
            lost++;
            ax_mq_pop(&old.out[d].q, w->arena);
        }
        AX_STAT_ADD(*(left ? &cw->st.dead_stopped : &cw->st.dead_unreachable), lost);
        ax_mq_fini(&old.out[d].q, w->arena);
        arrival_t *a = old.in[d].pend;
        while (a) {
            arrival_t *nx = a->next;
            if (!a->done) {
                a->orphan = true; /* its rendezvous completion frees it */
            } else {
                if (a->is_blob)
                    ax__blob_free(w, a->buf);
                else
                    free(a->buf);
                free(a);
            }
            a = nx;
        }
    }
    if (old.ack_due)
        for (uint32_t d = 0; d < old.nw; d++)
            if (old.ack_due[d] && cw->acks_due)
                cw->acks_due--;
    if (old.uw)
        uw_retire(cw, old.uw, old.ep, old.nw); /* takes old.ep */
    else
        free(old.ep);
    free(old.out);
    free(old.in);
    free(old.acked);
    free(old.ack_due);
}

/* Destroy this worker's members of node n's sets older than pi that it
 * never took (their sessions ended before it used them).  pi and its older
 * records are immutable after publication (P1); member uw[id] is this
 * worker's alone. */
static void lset_sweep(ax_clw_t *cw, const pinc_t *pi)
{
    uint32_t id = cw->w->id;
    for (const pinc_t *o = pi; o; o = o->older)
        if (o->ls && id < o->ls->n && o->ls->uw[id]) {
            ucp_worker_destroy(o->ls->uw[id]);
            o->ls->uw[id] = NULL;
            atomic_fetch_sub_explicit(&cw->cl->uws, 1, memory_order_relaxed);
        }
}

static bool wnode_init(ax_clw_t *cw, uint32_t n, const pinc_t *pi)
{
    wnode_t *wn = &cw->node[n];
    wnode_clear(cw, n, false);
    uint32_t id = cw->w->id;
    if (!pi->ls || id >= pi->ls->n || !pi->ls->uw[id])
        return false; /* no UCP worker for this session (taken and dropped already) */
    lset_sweep(cw, pi->older);
    wn->ep = calloc(pi->nw, sizeof *wn->ep);
    wn->out = calloc(pi->nw, sizeof *wn->out);
    wn->in = calloc(pi->nw, sizeof *wn->in);
    wn->acked = calloc(pi->nw, 1);
    wn->ack_due = calloc(pi->nw, 1);
    if (!wn->ep || !wn->out || !wn->in || !wn->acked || !wn->ack_due)
        goto fail;
    /* Take this worker's UCP worker for the session and start watching
     * it: progress (the live list) and wakeups (the epoll set). */
    ucp_worker_h uw = pi->ls->uw[id];
    int fd = -1;
    if (!cw->cl->spin) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = n};
        if (ucp_worker_get_efd(uw, &fd) != UCS_OK || epoll_ctl(cw->efd, EPOLL_CTL_ADD, fd, &ev) < 0)
            goto fail;
    }
    pi->ls->uw[id] = NULL;
    wn->uw = uw;
    cw->live[cw->nlive++] = uw;
    for (uint32_t d = 0; d < pi->nw; d++)
        ax_mq_init(&wn->out[d].q);
    wn->nw = pi->nw;
    wn->session = pi->session;
    return true;
fail:
    free(wn->ep);
    free(wn->out);
    free(wn->in);
    free(wn->acked);
    free(wn->ack_due);
    memset(wn, 0, sizeof *wn);
    return false;
}

/* The peer's current incarnation if it is at least `min_state`. */
static const pinc_t *peer_get(struct ax_cl *cl, uint32_t n, uint32_t min_state)
{
    peer_t *p = &cl->peers[n];
    uint32_t s = atomic_load_explicit(&p->state, memory_order_acquire); /* P1 */
    if (s < min_state || s == 3)
        return NULL;
    return atomic_load_explicit(&p->cur, memory_order_relaxed);
}

/* ---- sending ------------------------------------------------------------------------------- */

int ax__cluster_ext_route(ax_engine_t *eng, ax_ref_t to, uint32_t *worker)
{
    struct ax_cl *cl = eng->cl;
    if (!cl || to == AX_REF_NONE)
        return -EINVAL;
    uint32_t n = ax_ref_node(to);
    /* The same peer table the workers read: this acquire load of the
     * node's state pairs with the control thread's release stores in
     * node_up / node_down (P1).  A node that goes down after this check
     * makes the message a counted dead letter at the forward. */
    if (n != cl->node && !peer_get(cl, n, 2))
        return -EHOSTUNREACH;
    /* Same destination, same worker: that worker's inbox is FIFO for one
     * producer and its channel to the destination's worker is ordered, so
     * one thread's messages to one actor arrive in the order sent.  A hash
     * of the whole reference spreads destinations over the workers. */
    *worker = (uint32_t)(((to * 0x9E3779B97F4A7C15ull) >> 32) % eng->n);
    return 0;
}

void ax__cluster_forward(ax_worker_t *w, const ax_msg_t *m)
{
    ax_clw_t *cw = CW(w);
    int err = -EINVAL;
    ax_msg_t *s = cw && m->type < AX_TYPE_SYSTEM ? ax__cluster_slot(w, m->to, &err) : NULL;
    if (!s) {
        /* Its node went down after ax_engine_send checked it (or no
         * memory): a dead letter, counted with its cause. */
        if (cw && err == -ENOMEM)
            AX_STAT_INC(cw->st.dead_nomem);
        else if (cw)
            AX_STAT_INC(*lost_ctr(cw, ax_ref_node(m->to)));
        ax__dead_letter(w, m); /* counted in dead_letters, hooked, payload freed */
        return;
    }
    s->payload = m->payload;
    s->from = AX_REF_NONE; /* from outside the engine, as for a local ax_engine_send */
    ax_msg_commit(s, m->type, m->len, m->flags, 0);
}

ax_msg_t *ax__cluster_slot(ax_worker_t *w, ax_ref_t to, int *err)
{
    ax_clw_t *cw = CW(w);
    uint32_t n = ax_ref_node(to);
    ax_msg_t *m;
    if (to == AX_REF_NONE) {
        *err = -EINVAL;
        return NULL;
    }
    if (n == cw->cl->node) {
        /* This node's id, another incarnation tag (or a worker beyond
         * ours): a stale reference, a dead letter. */
        m = ax_mq_push(&cw->dead, w->arena);
        if (!m) {
            *err = -ENOMEM;
            return NULL;
        }
        AX_STAT_INC(cw->st.dead_stale);
    } else {
        const pinc_t *pi = peer_get(cw->cl, n, 2);
        if (!pi) {
            *err = -EHOSTUNREACH; /* unknown, not yet up, or down */
            return NULL;
        }
        wnode_t *wn = &cw->node[n];
        if (wn->session != pi->session && !wnode_init(cw, n, pi)) {
            *err = -ENOMEM;
            return NULL;
        }
        uint32_t d = ax_ref_worker(to);
        if (ax_ref_incarnation(to) != pi->inc_tag || d >= wn->nw) {
            m = ax_mq_push(&cw->dead, w->arena);
            if (!m) {
                *err = -ENOMEM;
                return NULL;
            }
            AX_STAT_INC(cw->st.dead_stale);
        } else {
            och_t *o = &wn->out[d];
            m = ax_mq_push(&o->q, w->arena);
            if (!m) {
                *err = -ENOMEM;
                return NULL;
            }
            if (!o->dirty) {
                if (cw->ndirty == cw->dirty_cap) {
                    uint32_t cap = cw->dirty_cap ? cw->dirty_cap * 2 : 64;
                    uint32_t *nd = realloc(cw->dirty, cap * sizeof *nd);
                    if (!nd) {
                        /* undo the push: the message was never sent */
                        o->q.count--;
                        o->q.ti--;
                        *err = -ENOMEM;
                        return NULL;
                    }
                    cw->dirty = nd;
                    cw->dirty_cap = cap;
                }
                o->dirty = true;
                cw->dirty[cw->ndirty++] = n << 16 | d;
            }
        }
    }
    m->to = to;
    m->from = w->head.self;
    w->sent++;
    return m;
}

static void send_done(sendreq_t *sr, ucs_status_t st)
{
    ax_clw_t *cw = sr->cw;
    if (sr->kind == KIND_PROBE || sr->kind == KIND_PROBE_ACK) {
        /* Answered by a PROBE_ACK (on_am), not by this completion. */
        if (st != UCS_OK)
            ax_ctl_report_error(cw->cl->ctl, sr->node, sr->session);
        free(sr);
        return;
    }
    if (st != UCS_OK) {
        count_dead(cw, sr->count, lost_ctr(cw, sr->node));
        ax_ctl_report_error(cw->cl->ctl, sr->node, sr->session);
    } else {
        AX_STAT_ADD(cw->st.msgs_sent, sr->count);
        AX_STAT_INC(cw->st.batches_sent);
        AX_STAT_ADD(cw->st.bytes_sent, sr->bytes);
    }
    if (sr->blob)
        ax__blob_free(cw->w, sr->blob);
    free(sr);
}

static void on_sent(void *req, ucs_status_t st, void *user)
{
    sendreq_t *sr = user;
    sr->cw->inflight--;
    send_done(sr, st);
    ucp_request_free(req);
}

static void ep_err_cb(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    (void)ep, (void)status;
    ep_err_arg_t *ea = arg;
    ax_ctl_report_error(ea->cl->ctl, ea->node, ea->session);
}

static ucp_ep_h ep_get(ax_clw_t *cw, uint32_t n, uint32_t d)
{
    wnode_t *wn = &cw->node[n];
    if (wn->ep[d])
        return wn->ep[d];
    const pinc_t *pi = atomic_load_explicit(&cw->cl->peers[n].cur, memory_order_acquire);
    if (!pi || pi->session != wn->session || !pi->addr[d])
        return NULL;
    /* The error handler's argument outlives the endpoint: freed at destroy. */
    ep_err_arg_t *ea = malloc(sizeof *ea);
    if (!ea)
        return NULL;
    ea->cl = cw->cl;
    ea->node = n;
    ea->session = wn->session;
    ucp_ep_params_t ep_p = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = pi->addr[d],
        .err_mode = UCP_ERR_HANDLING_MODE_PEER,
        .err_handler = {.cb = ep_err_cb, .arg = ea},
    };
    if (!wn->uw || ucp_ep_create(wn->uw, &ep_p, &wn->ep[d]) != UCS_OK) {
        free(ea);
        wn->ep[d] = NULL;
        return NULL;
    }
    ea->next = cw->eargs;
    cw->eargs = ea;
    if (getenv("AXON_DEBUG_CLUSTER"))
        ucp_ep_print_info(wn->ep[d], stderr);
    return wn->ep[d];
}

static void am_send(ax_clw_t *cw, ucp_ep_h ep, sendreq_t *sr, size_t hlen, const void *data,
                    size_t len)
{
    ucp_request_param_t prm = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send = on_sent,
        .user_data = sr,
    };
    sr->bytes = len;
    if (!ep) {
        send_done(sr, UCS_ERR_UNREACHABLE);
        return;
    }
    cw->traffic++;
    ucs_status_ptr_t r = ucp_am_send_nbx(ep, AM_ID, &sr->hdr, hlen, data, len, &prm);
    if (r == NULL)
        send_done(sr, UCS_OK);
    else if (UCS_PTR_IS_ERR(r))
        send_done(sr, UCS_PTR_STATUS(r));
    else
        cw->inflight++;
}

static void hdr_fill(ax_clw_t *cw, wire_hdr_t *h, uint32_t kind, uint32_t n, uint32_t d,
                     uint32_t count, uint64_t seq)
{
    memset(h, 0, sizeof *h);
    h->magic = WIRE_MAGIC;
    h->version = AX_WIRE_VERSION;
    h->kind = (uint16_t)kind;
    h->src_node = (uint16_t)cw->cl->node;
    h->src_worker = (uint16_t)cw->w->id;
    h->dst_worker = (uint16_t)d;
    h->count = count;
    h->session = cw->node[n].session;
    h->seq = seq;
}

static inline size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* ---- wiring -------------------------------------------------------------------------------
 * UCX 1.13 aborts (assertions in ucp_request_send_state_ff, "got REP
 * message", and in the wireup endpoint's purge) when a TCP connection fails
 * while wireup messages are still queued on it: a node killed while
 * endpoints to or from it were being wired.  Endpoints used to be created at
 * the first send, so a node killed in the middle of traffic was often in
 * the middle of wireups too (cluster_kill9_3's UCX assertion).  Now, when a
 * node comes up, every worker creates its endpoint to each of the node's
 * workers and sends a probe on it, and each of those answers with a probe
 * ack on its own endpoint back: a round trip on the very endpoints the data
 * travels on, so when the last ack is in, the wireup messages of both
 * directions have left both nodes.  ax_cluster_node_up (and so
 * ax_cluster_wait_nodes) reports the node only when every worker has its
 * acks.  A node that dies while it joins can still abort a survivor over
 * TCP: UCX's own wireup messages wait in a connecting TCP endpoint's queue
 * and a send failing inside that queue's dispatch trips UCX's purge
 * (docs/cluster.md, Failure, "A node killed while it joins"; openucx/ucx
 * PR 8175 removed only the "got REP message" assertion). */
static void wire_send(ax_clw_t *cw, uint32_t n, uint32_t d, uint32_t kind)
{
    wnode_t *wn = &cw->node[n];
    sendreq_t *sr = malloc(sizeof *sr);
    if (!sr) {
        ax_ctl_report_error(cw->cl->ctl, n, wn->session); /* cannot wire: start again */
        return;
    }
    sr->cw = cw;
    sr->node = n;
    sr->kind = kind;
    sr->session = wn->session;
    sr->count = 0;
    sr->blob = NULL;
    hdr_fill(cw, &sr->hdr, kind, n, d, 0, 0);
    am_send(cw, ep_get(cw, n, d), sr, sizeof sr->hdr, sr->data, 0);
}

static void wire_done(ax_clw_t *cw, uint32_t n)
{
    peer_t *p = &cw->cl->peers[n];
    uint64_t tag = (uint64_t)(uint32_t)cw->node[n].session << 32;
    uint64_t v = atomic_load_explicit(&p->wired, memory_order_relaxed);
    while ((v & ~0xffffffffull) == tag &&
           !atomic_compare_exchange_weak_explicit(&p->wired, &v, v + 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static void wire_start(ax_clw_t *cw, uint32_t n, uint64_t session)
{
    const pinc_t *pi = peer_get(cw->cl, n, 2);
    if (!pi || pi->session != session)
        return; /* that session is already over */
    wnode_t *wn = &cw->node[n];
    if (wn->session != pi->session && !wnode_init(cw, n, pi)) {
        ax_ctl_report_error(cw->cl->ctl, n, session);
        return;
    }
    if (wn->wiring || wn->acks_left)
        return;
    wn->wiring = true;
    wn->acks_left = wn->nw;
    for (uint32_t d = 0; d < wn->nw && wn->session == session; d++)
        wire_send(cw, n, d, KIND_PROBE);
}

/* node_known: take this worker's UCP worker for node n's new session. */
static void wire_take(ax_clw_t *cw, uint32_t n, uint64_t session)
{
    const pinc_t *pi = peer_get(cw->cl, n, 1);
    if (!pi || pi->session != session || cw->node[n].session == session)
        return; /* over already, or taken */
    if (!wnode_init(cw, n, pi))
        ax_ctl_report_error(cw->cl->ctl, n, session);
}

/* Send channel (n, d): batches of small messages, each large blob on its
 * own, in queue order, each with the channel's next sequence number. */
static void send_channel(ax_clw_t *cw, uint32_t n, uint32_t d)
{
    ax_worker_t *w = cw->w;
    wnode_t *wn = &cw->node[n];
    och_t *o = &wn->out[d];
    o->dirty = false;
    ucp_ep_h ep = ep_get(cw, n, d);
    ax_msg_t *m;
    while ((m = ax_mq_peek(&o->q))) {
        bool big = (m->flags & AX_MSG_F_BLOB) && m->payload.blob.len > EAGER_BLOB_MAX;
        if (big) {
            sendreq_t *sr = malloc(sizeof *sr);
            if (!sr)
                return; /* retried at the next flush (still dirty below) */
            sr->cw = cw;
            sr->node = n;
            sr->kind = KIND_BLOB;
            sr->session = wn->session;
            sr->count = 1;
            sr->blob = m->payload.blob.ptr;
            size_t blen = (size_t)m->payload.blob.len;
            hdr_fill(cw, &sr->hdr, KIND_BLOB, n, d, 1, o->seq++);
            sr->rec = *m;
            sr->rec.seq = 0;
            sr->rec.payload.blob.ptr = NULL;
            ax_mq_pop(&o->q, w->arena);
            w->handled++;
            am_send(cw, ep, sr, sizeof sr->hdr + sizeof sr->rec, sr->blob, blen);
            continue;
        }
        /* Size the batch: up to the next large blob or the limits. */
        size_t bytes = 0;
        uint32_t cnt = 0;
        ax_mq_chunk_t *c = o->q.head;
        uint32_t i = o->q.hi;
        for (uint64_t k = 0; k < o->q.count && cnt < BATCH_MSGS_MAX && bytes < BATCH_BYTES_MAX; k++) {
            if (i == AX_MQ_CHUNK_MSGS) {
                c = c->next;
                i = 0;
            }
            const ax_msg_t *x = &c->m[i++];
            size_t extra = 0;
            if (x->flags & AX_MSG_F_BLOB) {
                if (x->payload.blob.len > EAGER_BLOB_MAX)
                    break;
                extra = pad8((size_t)x->payload.blob.len);
            }
            bytes += sizeof(ax_msg_t) + extra;
            cnt++;
        }
        sendreq_t *sr = malloc(sizeof *sr + bytes);
        if (!sr)
            return;
        sr->cw = cw;
        sr->node = n;
        sr->kind = KIND_BATCH;
        sr->session = wn->session;
        sr->count = cnt;
        sr->blob = NULL;
        hdr_fill(cw, &sr->hdr, KIND_BATCH, n, d, cnt, o->seq++);
        unsigned char *p = sr->data;
        for (uint32_t k = 0; k < cnt; k++) {
            m = ax_mq_peek(&o->q);
            ax_msg_t rec = *m;
            rec.seq = 0;
            if (m->flags & AX_MSG_F_BLOB) {
                size_t bl = (size_t)m->payload.blob.len;
                rec.payload.blob.ptr = NULL;
                memcpy(p, &rec, sizeof rec);
                memcpy(p + sizeof rec, m->payload.blob.ptr, bl);
                memset(p + sizeof rec + bl, 0, pad8(bl) - bl);
                p += sizeof rec + pad8(bl);
                ax__blob_free(w, m->payload.blob.ptr);
            } else {
                memcpy(p, &rec, sizeof rec);
                p += sizeof rec;
            }
            ax_mq_pop(&o->q, w->arena);
        }
        w->handled += cnt;
        am_send(cw, ep, sr, sizeof sr->hdr, sr->data, bytes);
    }
}

static void wire_send(ax_clw_t *cw, uint32_t n, uint32_t d, uint32_t kind);

void ax__cluster_flush(ax_worker_t *w)
{
    ax_clw_t *cw = CW(w);
    ax_msg_t *m;
    for (uint32_t n = 0; n < AX_CTL_NODES && cw->acks_due; n++) {
        wnode_t *wn = &cw->node[n];
        for (uint32_t d = 0; wn->session && d < wn->nw; d++)
            if (wn->ack_due[d]) {
                wn->ack_due[d] = 0;
                cw->acks_due--;
                wire_send(cw, n, d, KIND_PROBE_ACK);
            }
    }
    while ((m = ax_mq_peek(&cw->dead))) {
        ax__dead_letter(w, m);
        w->handled++;
        ax_mq_pop(&cw->dead, w->arena);
    }
    uint32_t nd = cw->ndirty;
    cw->ndirty = 0;
    for (uint32_t i = 0; i < nd; i++) {
        uint32_t n = cw->dirty[i] >> 16, d = cw->dirty[i] & 0xFFFF;
        if (cw->node[n].session && d < cw->node[n].nw)
            send_channel(cw, n, d);
    }
    /* A channel whose batch could not be allocated stays queued: mark it
     * dirty again so the next flush retries.  (This scan of every node id
     * is 40% of this function in big/4n's profile, about 1.5% of the
     * node's CPU: docs/cluster.md "Oversubscribed nodes".) */
    for (uint32_t n = 0; n < AX_CTL_NODES && nd; n++) {
        wnode_t *wn = &cw->node[n];
        for (uint32_t d = 0; wn->session && d < wn->nw; d++)
            if (wn->out[d].q.count && !wn->out[d].dirty && cw->ndirty < cw->dirty_cap) {
                wn->out[d].dirty = true;
                cw->dirty[cw->ndirty++] = n << 16 | d;
            }
    }
}

/* ---- receiving ------------------------------------------------------------------------------ */

/* What may cross the wire: user and library types, the failure messages
 * (ids and reasons: plain values), the registry's, and an error reply
 * (AX_SYS_REQ_FAIL with AX_MSG_F_REPLY: a status and the request's id).
 * Never anything that carries a pointer (spawn requests, revokes, I/O).
 * And nothing that names a thread outside the engine (from AX_REF_NONE) as
 * the one to answer: a request, a monitor or a demonitor with no sender
 * would complete or unwatch a future of this node's outside callers (its
 * id means nothing here); no correct node sends one (ax_engine_request and
 * ax_forward refuse other nodes' references with -EXDEV). */
static bool rec_ok(const ax_msg_t *rec)
{
    uint32_t type = rec->type;
    if (rec->from == AX_REF_NONE &&
        ((rec->flags & AX_MSG_F_REQUEST) || type == AX_SYS_MONITOR || type == AX_SYS_DEMONITOR))
        return false;
    return type < AX_TYPE_SYSTEM || (type >= AX_SYS_MONITOR && type <= AX_SYS_KILL) ||
           type == AX_SYS_NAME_REG || type == AX_SYS_NAME_UNREG || type == AX_SYS_RSPAWN ||
           (type == AX_SYS_REQ_FAIL && (rec->flags & AX_MSG_F_REPLY) && !(rec->flags & AX_MSG_F_BLOB));
}

/* Queue one arrived message for dispatch (blob already local, or NULL). */
static void deliver_one(ax_clw_t *cw, const ax_msg_t *rec, void *blob)
{
    ax_worker_t *w = cw->w;
    ax_msg_t *m;
    if (ax__ref_dest(w->home, rec->to) != w->id) {
        /* Made by an earlier incarnation of this node (or malformed). */
        if (blob)
            ax__blob_free(w, blob);
        count_dead(cw, 1, &cw->st.dead_stale);
        return;
    }
    if (!(m = ax_mq_push(&cw->inq, w->arena))) {
        if (blob)
            ax__blob_free(w, blob);
        count_dead(cw, 1, &cw->st.dead_nomem);
        return;
    }
    *m = *rec;
    m->seq = 0;
    m->flags &= AX_MSG_F_BLOB | AX_MSG_F_REQUEST | AX_MSG_F_REPLY;
    if (blob)
        m->payload.blob.ptr = blob;
    w->sent++; /* balanced by the drain's handled (quiescence counts) */
    AX_STAT_INC(cw->st.msgs_received);
}

static void deliver_batch(ax_clw_t *cw, uint32_t count, const unsigned char *p, size_t len)
{
    ax_worker_t *w = cw->w;
    const unsigned char *end = p + len;
    for (uint32_t k = 0; k < count; k++) {
        ax_msg_t rec;
        if ((size_t)(end - p) < sizeof rec) {
            AX_STAT_INC(cw->st.wire_errors);
            return;
        }
        memcpy(&rec, p, sizeof rec);
        p += sizeof rec;
        void *blob = NULL;
        if (!rec_ok(&rec)) {
            AX_STAT_INC(cw->st.wire_errors);
            if (rec.flags & AX_MSG_F_BLOB)
                p += pad8((size_t)rec.payload.blob.len);
            continue;
        }
        if (rec.flags & AX_MSG_F_BLOB) {
            size_t bl = (size_t)rec.payload.blob.len;
            if (bl > EAGER_BLOB_MAX || !bl || (size_t)(end - p) < pad8(bl)) {
                AX_STAT_INC(cw->st.wire_errors);
                return;
            }
            blob = ax_blob_alloc(w, bl);
            if (!blob) {
                count_dead(cw, 1, &cw->st.dead_nomem);
                p += pad8(bl);
                continue;
            }
            memcpy(blob, p, bl);
            p += pad8(bl);
        } else if (rec.len > AX_INLINE_MAX) {
            AX_STAT_INC(cw->st.wire_errors);
            continue;
        }
        deliver_one(cw, &rec, blob);
    }
}

static void arrival_deliver(ax_clw_t *cw, arrival_t *a)
{
    AX_STAT_INC(cw->st.batches_received);
    AX_STAT_ADD(cw->st.bytes_received, a->len);
    if (a->failed) {
        count_dead(cw, a->count, lost_ctr(cw, a->node));
        if (a->is_blob)
            ax__blob_free(cw->w, a->buf);
        else
            free(a->buf);
        return;
    }
    if (a->kind == KIND_BLOB) {
        deliver_one(cw, &a->rec, a->buf);
    } else {
        deliver_batch(cw, a->count, a->buf, a->len);
        free(a->buf);
    }
}

static void ich_drain(ax_clw_t *cw, ich_t *ch)
{
    arrival_t *a;
    while ((a = ch->pend) && a->seq == ch->expect && a->done) {
        ch->pend = a->next;
        ch->expect++;
        if (a->failed && !ch->broken) {
            ch->broken = true;
            /* The node is gone or its path is broken: have the control
             * plane declare it down (monitors get DOWN, it rejoins anew). */
            ax_ctl_report_error(cw->cl->ctl, a->node, a->session);
        }
        if (ch->broken)
            a->failed = true; /* after a lost arrival: a dead letter */
        arrival_deliver(cw, a);
        free(a);
    }
}

static void on_rndv_done(void *req, ucs_status_t st, size_t length, void *user)
{
    (void)length;
    arrival_t *a = user;
    ucp_request_free(req);
    a->done = true;
    a->failed = st != UCS_OK;
    if (a->orphan) {
        if (a->is_blob)
            ax__blob_free(a->cw->w, a->buf);
        else
            free(a->buf);
        free(a);
        return;
    }
    wnode_t *wn = &a->cw->node[a->node];
    ich_drain(a->cw, &wn->in[a->src]);
}

static ucs_status_t on_am(void *arg, const void *header, size_t hlen, void *data, size_t len,
                          const ucp_am_recv_param_t *param)
{
    ax_worker_t *w = arg;
    ax_clw_t *cw = CW(w);
    wire_hdr_t h;
    bool rndv = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
    if (hlen < sizeof h)
        goto bad;
    memcpy(&h, header, sizeof h);
    if (h.magic != WIRE_MAGIC || h.version != AX_WIRE_VERSION || h.src_node >= AX_CTL_NODES ||
        h.dst_worker != w->id || h.kind < KIND_BATCH || h.kind > KIND_PROBE_ACK ||
        (h.kind == KIND_BLOB && (hlen != sizeof h + sizeof(ax_msg_t) || h.count != 1)) ||
        (h.kind != KIND_BLOB && hlen != sizeof h) ||
        (h.kind >= KIND_PROBE && (h.count || len)))
        goto bad;
    const pinc_t *pi = peer_get(cw->cl, h.src_node, 1);
    if (!pi || pi->session != h.session) {
        /* From a node we do not know (yet) or an incarnation that is gone. */
        count_dead(cw, h.count, pi ? &cw->st.dead_stale : lost_ctr(cw, h.src_node));
        return UCS_OK;
    }
    wnode_t *wn = &cw->node[h.src_node];
    if (wn->session != pi->session) {
        /* Only the UCP worker this worker took for that session (wnode_init)
         * carries it: not one of ours, so not from that node. */
        goto bad;
    }
    if (h.src_worker >= wn->nw)
        goto bad;
    if (h.kind == KIND_PROBE) { /* answered at the flush, outside this callback */
        if (!wn->ack_due[h.src_worker]) {
            wn->ack_due[h.src_worker] = 1;
            cw->acks_due++;
        }
        return UCS_OK;
    }
    if (h.kind == KIND_PROBE_ACK) {
        if (wn->wiring && !wn->acked[h.src_worker]) {
            wn->acked[h.src_worker] = 1;
            if (--wn->acks_left == 0) {
                wn->wiring = false;
                wire_done(cw, h.src_node);
            }
        }
        return UCS_OK;
    }
    cw->traffic++;
    ich_t *ch = &wn->in[h.src_worker];
    if (h.seq < ch->expect)
        goto bad; /* a duplicate: UCX never sends one, so it is forged */
    ax_msg_t rec;
    if (h.kind == KIND_BLOB) {
        memcpy(&rec, (const char *)header + sizeof h, sizeof rec);
        if (!rec_ok(&rec) || !(rec.flags & AX_MSG_F_BLOB) || rec.payload.blob.len != len ||
            !len)
            goto bad;
    }
    if (ch->broken) {
        /* After a lost arrival on this channel: see ich_t. */
        ch->expect = h.seq + 1 > ch->expect ? h.seq + 1 : ch->expect;
        count_dead(cw, h.count, &cw->st.dead_unreachable);
        return UCS_OK;
    }
    if (!rndv && h.seq == ch->expect) {
        /* In turn and in hand: no copy for a batch. */
        ch->expect++;
        AX_STAT_INC(cw->st.batches_received);
        AX_STAT_ADD(cw->st.bytes_received, len);
        if (h.kind == KIND_BATCH) {
            deliver_batch(cw, h.count, data, len);
        } else {
            void *blob = ax_blob_alloc(w, len);
            if (!blob)
                count_dead(cw, 1, &cw->st.dead_nomem);
            else {
                memcpy(blob, data, len);
                deliver_one(cw, &rec, blob);
            }
        }
        ich_drain(cw, ch);
        return UCS_OK;
    }
    /* Early, or its data is still to come: park it in sequence order. */
    arrival_t *a = calloc(1, sizeof *a);
    if (!a)
        goto nomem;
    a->cw = cw;
    a->seq = h.seq;
    a->session = h.session;
    a->node = h.src_node;
    a->src = h.src_worker;
    a->kind = h.kind;
    a->count = h.count;
    a->len = len;
    a->rec = rec;
    a->is_blob = h.kind == KIND_BLOB;
    a->buf = a->is_blob ? ax_blob_alloc(w, len) : malloc(len ? len : 1);
    if (!a->buf) {
        free(a);
        goto nomem;
    }
    if (h.seq != ch->expect)
        AX_STAT_INC(cw->st.reordered);
    arrival_t **pp = &ch->pend;
    while (*pp && (*pp)->seq < h.seq)
        pp = &(*pp)->next;
    if (*pp && (*pp)->seq == h.seq) {
        if (a->is_blob)
            ax__blob_free(w, a->buf);
        else
            free(a->buf);
        free(a);
        goto bad;
    }
    a->next = *pp;
    *pp = a;
    if (!rndv) {
        memcpy(a->buf, data, len);
        a->done = true;
        ich_drain(cw, ch);
        return UCS_OK;
    }
    ucp_request_param_t prm = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.recv_am = on_rndv_done,
        .user_data = a,
    };
    ucs_status_ptr_t r = ucp_am_recv_data_nbx(wn->uw, data, a->buf, len, &prm);
    if (r == NULL) {
        a->done = true;
        ich_drain(cw, ch);
    } else if (UCS_PTR_IS_ERR(r)) {
        a->done = true;
        a->failed = true;
        ich_drain(cw, ch);
    }
    return UCS_OK;
nomem:
    /* The arrival cannot be kept: its messages are dead letters.  In turn,
     * the channel moves past it; early, the channel waits for memory to
     * keep a later retransmission... there is none, so it stalls: counted
     * in dead_nomem, the one case that does (docs/cluster.md). */
    count_dead(cw, h.count, &cw->st.dead_nomem);
    if (h.seq == ch->expect) {
        ch->expect++;
        ch->broken = true; /* a gap now: nothing later may be delivered (ich_t) */
        ax_ctl_report_error(cw->cl->ctl, h.src_node, h.session);
        ich_drain(cw, ch);
    }
    return UCS_OK;
bad:
    AX_STAT_INC(cw->st.wire_errors);
    return UCS_OK;
}

/* ---- the worker loop's calls ------------------------------------------------------------------ */

/* One ucp_worker_progress call on each live per-peer UCP worker, each
 * counted (progress_calls, progress_busy).  No callback run from here
 * changes the live list (on_am never adopts or clears a node). */
static unsigned cw_progress(ax_clw_t *cw)
{
    unsigned r = 0, busy = 0;
    for (uint32_t i = 0; i < cw->nlive; i++) {
        unsigned k = ucp_worker_progress(cw->live[i]);
        r += k;
        busy += k != 0;
    }
    AX_STAT_ADD(cw->st.progress_calls, cw->nlive);
    AX_STAT_ADD(cw->st.progress_busy, busy);
    return r;
}

/* One ucp_worker_progress call on live[i], counted. */
static unsigned cw_progress_one(ax_clw_t *cw, uint32_t i)
{
    unsigned k = ucp_worker_progress(cw->live[i]);
    AX_STAT_INC(cw->st.progress_calls);
    if (k)
        AX_STAT_INC(cw->st.progress_busy);
    return k;
}

/* Every live UCP worker once, then again only those that had work, up to
 * 64 rounds: a peer that is quiet costs one call per turn. */
uint32_t ax__cluster_progress(ax_worker_t *w)
{
    ax_clw_t *cw = CW(w);
    uint32_t n = 0;
    uint16_t busy[AX_CTL_NODES];
    uint32_t nb = 0;
    for (uint32_t i = 0; i < cw->nlive; i++)
        if (cw_progress_one(cw, i))
            busy[nb++] = (uint16_t)i;
    for (int r = 1; r < 64 && nb; r++) {
        n++;
        uint32_t k = 0;
        for (uint32_t j = 0; j < nb; j++)
            if (cw_progress_one(cw, busy[j]))
                busy[k++] = busy[j];
        nb = k;
    }
    n += nb != 0;
    if (cw->nretired) {
        uw_reap(cw);
        n++;
    }
    return n;
}

ax_mq_t *ax__cluster_inq(ax_worker_t *w) { return &CW(w)->inq; }

/* Active messages sent or received since the worker last armed UCP to
 * park: the yield before parking (engine.c) is for a worker in an exchange. */
bool ax__cluster_traffic(ax_worker_t *w) { return CW(w)->traffic != CW(w)->traffic_parked; }

void ax__cluster_yielded(ax_worker_t *w) { AX_STAT_INC(CW(w)->st.yields); }

bool ax__cluster_pending(ax_worker_t *w)
{
    ax_clw_t *cw = CW(w);
    return cw->inq.count || cw->ndirty || cw->dead.count || cw->nretired || cw->acks_due;
}

/* The idle spin's check: one UCP worker per call, in turn, so a check
 * costs one progress call however many peers there are. */
bool ax__cluster_poll(ax_worker_t *w)
{
    ax_clw_t *cw = CW(w);
    if (cw->inq.count || cw->ndirty || cw->dead.count)
        return true;
    if (!cw->nlive)
        return false;
    if (++cw->rr >= cw->nlive)
        cw->rr = 0;
    return cw_progress_one(cw, cw->rr) != 0;
}

int64_t ax__cluster_park_ns(ax_worker_t *w, int64_t timeout_ns)
{
    const struct ax_cl *cl = CW(w)->cl;
    if (!cl->spin || (timeout_ns >= 0 && timeout_ns <= cl->poll_ns))
        return timeout_ns;
    return cl->poll_ns; /* spin mode: nothing wakes us for UCP traffic */
}

bool ax__cluster_arm(ax_worker_t *w)
{
    ax_clw_t *cw = CW(w);
    cw->traffic_parked = cw->traffic;
    if (cw_progress(cw))
        return false;
    if (cw->cl->spin)
        return true; /* no event fd: the park's timeout polls (ax__cluster_park_ns) */
    /* Arm every live UCP worker; one with events waiting (busy) means do
     * not park.  Their event fds are in cw->efd, the one fd io_uring polls. */
    ucs_status_t st = UCS_OK;
    for (uint32_t i = 0; i < cw->nlive; i++) {
        ucs_status_t s1 = ucp_worker_arm(cw->live[i]);
        if (s1 == UCS_ERR_BUSY)
            return false;
        if (s1 != UCS_OK)
            st = s1;
    }
    if (st == UCS_OK)
        AX_STAT_INC(cw->st.arms);
    if (st == UCS_OK && w->io && !cw->poll_armed) {
        struct io_uring_sqe *sqe = ax_io_get_sqe(w->io);
        if (sqe) {
            io_uring_prep_poll_add(sqe, cw->efd, POLLIN);
            ax_io_sqe_token(sqe, CL_TOKEN);
            cw->poll_armed = true;
        }
    }
    return true;
}

void ax__cluster_efd_fired(ax_worker_t *w)
{
    CW(w)->poll_armed = false;
    AX_STAT_INC(CW(w)->st.fd_wakes);
}
bool ax__cluster_efd_armed(ax_worker_t *w) { return w->cl && CW(w)->poll_armed; }

/* Send a registry message to node n's worker 0 (if it is up). */
static void name_send(ax_clw_t *cw, uint32_t n, uint32_t type, ax_ref_t ref, const char *name)
{
    const pinc_t *pi = peer_get(cw->cl, n, 2);
    if (!pi)
        return;
    int err;
    ax_msg_t *m = ax__cluster_slot(cw->w, ax__ref_make(ax__ref_home(n, pi->inc_tag), 0, 0, 0), &err);
    if (!m)
        return; /* the node went down meanwhile, or no memory: it resyncs on rejoin */
    m->from = AX_REF_NONE;
    m->payload.u64[0] = ref;
    memset(m->payload.data + 8, 0, AX_NAME_MAX);
    snprintf((char *)m->payload.data + 8, AX_NAME_MAX, "%s", name);
    ax_msg_commit(m, type, AX_INLINE_MAX, 0, 0);
}

/* Spawn registered behaviour `name` here; answer `asker` with reply_type. */
static void rspawn_run(ax_worker_t *w, ax_ref_t asker, const char *name, uint32_t reply_type,
                       const void *arg, size_t arg_len)
{
    struct ax_cl *cl = w->eng->cl;
    const bhv_t *b = NULL;
    for (uint32_t i = 0; i < cl->nbhv; i++)
        if (strcmp(cl->bhv[i].name, name) == 0)
            b = &cl->bhv[i];
    ax_ref_t ref = AX_REF_NONE;
    int64_t rc = -ENOENT;
    if (b) {
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_ANY, .init = b->init,
                             .fini = b->fini, .arg = arg, .arg_len = arg_len};
        rc = ax_spawn(w, b->fn, b->state_size, &o, &ref);
        if (rc)
            ref = AX_REF_NONE;
    }
    if (asker == AX_REF_NONE)
        return;
    int err;
    uint8_t stamp;
    ax_msg_t *m = ax__msg_slot_fast(w, asker, &err, &stamp);
    if (!m)
        return; /* the asker's node went down meanwhile: nobody to answer */
    m->from = ref;
    memset(m->payload.data, 0, AX_INLINE_MAX);
    m->payload.u64[0] = ref;
    memcpy(&m->payload.u64[1], &rc, 8);
    snprintf((char *)m->payload.data + 16, AX_INLINE_MAX - 16, "%s", name);
    ax_msg_commit(m, reply_type, AX_INLINE_MAX, 0, stamp);
}

void ax__cluster_dispatch(ax_worker_t *w, const ax_msg_t *m)
{
    ax_clw_t *cw = CW(w);
    if (!cw)
        return;
    struct ax_cl *cl = cw->cl;
    char name[AX_NAME_MAX];
    memcpy(name, m->payload.data + 8, AX_NAME_MAX);
    name[AX_NAME_MAX - 1] = 0;
    ax_ref_t ref = m->payload.u64[0];
    switch (m->type) {
    case AX_SYS_NODE_DOWN: {
        uint32_t n = (uint32_t)m->payload.u64[0];
        bool left = m->payload.u64[2] != 0;
        if (n < AX_CTL_NODES && cw->node[n].session == m->payload.u64[1]) {
            wnode_clear(cw, n, left);
        } else if (n < AX_CTL_NODES) {
            /* A session this worker never used: its UCP worker goes now
             * (a session that is down is never taken again: peer_get). */
            const pinc_t *pi = atomic_load_explicit(&cl->peers[n].cur, memory_order_acquire);
            while (pi && pi->session != m->payload.u64[1])
                pi = pi->older;
            if (pi && pi->ls && w->id < pi->ls->n && pi->ls->uw[w->id]) {
                ucp_worker_destroy(pi->ls->uw[w->id]);
                pi->ls->uw[w->id] = NULL;
                atomic_fetch_sub_explicit(&cl->uws, 1, memory_order_relaxed);
            }
        }
        if (n < AX_CTL_NODES)
            ax__fault_node_down(w, n, left ? AX_REASON_NODE_STOPPED : AX_REASON_UNREACHABLE);
        return;
    }
    case AX_SYS_NODE_WIRE: {
        uint32_t n = (uint32_t)m->payload.u64[0];
        if (n < AX_CTL_NODES && m->payload.u64[2])
            wire_take(cw, n, m->payload.u64[1]);
        else if (n < AX_CTL_NODES)
            wire_start(cw, n, m->payload.u64[1]);
        return;
    }
    case AX_SYS_NAME_BCAST: { /* the name changed here: tell every node its state */
        pthread_mutex_lock(&cl->names_mu);
        int i = names_find(cl, name);
        bool present = i >= 0 && cl->names[i].ref == ref;
        pthread_mutex_unlock(&cl->names_mu);
        for (uint32_t n = 0; n < AX_CTL_NODES; n++)
            if (n != cl->node)
                name_send(cw, n, present ? AX_SYS_NAME_REG : AX_SYS_NAME_UNREG, ref, name);
        return;
    }
    case AX_SYS_NAME_SYNC: { /* node n joined: send it every name of ours */
        uint32_t n = (uint32_t)m->payload.u64[0];
        pthread_mutex_lock(&cl->names_mu);
        uint32_t cnt = cl->nnames;
        name_ent_t *copy = cnt ? malloc(cnt * sizeof *copy) : NULL;
        if (copy)
            memcpy(copy, cl->names, cnt * sizeof *copy);
        pthread_mutex_unlock(&cl->names_mu);
        for (uint32_t i = 0; copy && i < cnt; i++)
            if (ax_ref_node(copy[i].ref) == cl->node)
                name_send(cw, n, AX_SYS_NAME_REG, copy[i].ref, copy[i].name);
        free(copy);
        return;
    }
    case AX_SYS_NAME_REG:
        if (name[0] && ax_ref_node(ref) != cl->node)
            names_put(cl, name, ref); /* -EEXIST: ours (or an earlier) stays */
        return;
    case AX_SYS_NAME_UNREG:
        if (name[0])
            names_del(cl, name, ax_ref_node(ref));
        return;
    case AX_SYS_RSPAWN: {
        if (!(m->flags & AX_MSG_F_BLOB))
            return;
        const rspawn_t *rq = m->payload.blob.ptr;
        size_t len = (size_t)m->payload.blob.len;
        if (len >= sizeof *rq && rq->arg_len <= AX_SPAWN_ARG_MAX &&
            len - sizeof *rq >= rq->arg_len && rq->reply_type < AX_TYPE_SYSTEM) {
            char bn[AX_NAME_MAX];
            memcpy(bn, rq->name, AX_NAME_MAX);
            bn[AX_NAME_MAX - 1] = 0;
            rspawn_run(w, m->from, bn, rq->reply_type, rq + 1, rq->arg_len);
        } else {
            AX_STAT_INC(cw->st.wire_errors);
        }
        ax__blob_free(w, m->payload.blob.ptr);
        return;
    }
    default:
        return;
    }
}

void ax__cluster_worker_stop(ax_worker_t *w)
{
    ax_clw_t *cw = CW(w);
    if (!cw)
        return;
    ax_msg_t *m;
    while ((m = ax_mq_peek(&cw->inq))) {
        atomic_fetch_add_explicit(&w->st.dropped_at_stop, 1, memory_order_relaxed);
        w->handled++;
        ax__free_payload(w, m);
        ax_mq_pop(&cw->inq, w->arena);
    }
    ax_mq_fini(&cw->inq, w->arena);
    while ((m = ax_mq_peek(&cw->dead))) {
        ax__dead_letter(w, m);
        w->handled++;
        ax_mq_pop(&cw->dead, w->arena);
    }
    ax_mq_fini(&cw->dead, w->arena);
    /* Let sends in flight finish (bounded: a dead peer fails them). */
    uint64_t t0 = ax__now_ns();
    while (cw->inflight && ax__now_ns() - t0 < 2000000000ull)
        cw_progress(cw);
    /* A clean stop: leave the cluster before any endpoint closes.  Every
     * worker's sends have completed (or failed) at the first barrier;
     * worker 0 then sends LEAVE on the control connections and waits
     * (bounded) until the peers have taken this node down as stopped; only
     * after the second barrier does any worker close an endpoint, so the
     * peers' endpoint errors name a session they already ended, and no
     * peer takes the stop for a crash (docs/cluster.md, Failure).  Every
     * worker of a cluster engine has its cw, so all of them get here. */
    pthread_barrier_wait(&w->eng->stop_barrier);
    if (w->id == 0 && ax_ctl_leave(cw->cl->ctl, LEAVE_WAIT_MS) < 0 &&
        getenv("AXON_DEBUG_CLUSTER"))
        fprintf(stderr, "axon: cluster node %u: a peer did not answer LEAVE in %u ms\n",
                cw->cl->node, LEAVE_WAIT_MS);
    pthread_barrier_wait(&w->eng->stop_barrier);
    /* Keep the endpoints' pending work moving while others waited. */
    cw_progress(cw);
    for (uint32_t n = 0; n < AX_CTL_NODES; n++) {
        wnode_t *wn = &cw->node[n];
        for (uint32_t d = 0; wn->session && d < wn->nw; d++) {
            uint64_t left = wn->out[d].q.count;
            atomic_fetch_add_explicit(&w->st.dropped_at_stop, left, memory_order_relaxed);
            while ((m = ax_mq_peek(&wn->out[d].q))) {
                w->handled++;
                ax__free_payload(w, m);
                ax_mq_pop(&wn->out[d].q, w->arena);
            }
        }
        wnode_clear(cw, n, false);
    }
    /* Close every endpoint and destroy every per-peer UCP worker (bounded:
     * forced closes complete locally).  Rendezvous receives still open are
     * cancelled by the destroy; their arrivals (orphans) are freed by their
     * completion, which it runs.  Members of sets this worker never took
     * are destroyed with the engine (ax__cluster_destroy). */
    uw_reap(cw);
    free(cw->retired);
    cw->retired = NULL;
    cw->retired_cap = 0;
}

/* ---- public API ---------------------------------------------------------------------------- */

static bool name_ok(const char *name)
{
    return name && name[0] && strnlen(name, AX_NAME_MAX) < AX_NAME_MAX;
}

int ax_cluster_behaviour_register(ax_engine_t *eng, const char *name, ax_behaviour_fn fn,
                                  size_t state_size, ax_init_fn init, ax_fini_fn fini)
{
    if (!eng || !eng->cl || !name_ok(name) || !fn)
        return -EINVAL;
    if (atomic_load_explicit(&eng->started, memory_order_acquire))
        return -EALREADY;
    struct ax_cl *cl = eng->cl;
    for (uint32_t i = 0; i < cl->nbhv; i++)
        if (strcmp(cl->bhv[i].name, name) == 0)
            return -EEXIST;
    if (cl->nbhv == AX_BEHAVIOURS_MAX)
        return -ENOSPC;
    bhv_t *b = &cl->bhv[cl->nbhv++];
    snprintf(b->name, sizeof b->name, "%s", name);
    b->fn = fn;
    b->state_size = state_size;
    b->init = init;
    b->fini = fini;
    return 0;
}

int ax_cluster_spawn(ax_ctx_t *ctx, uint32_t node, const char *name, const void *arg,
                     size_t arg_len, uint32_t reply_type)
{
    if (!ctx || !ctx->eng->cl || !name_ok(name) || arg_len > AX_SPAWN_ARG_MAX ||
        (arg_len && !arg) || reply_type >= AX_TYPE_SYSTEM || node >= AX_CTL_NODES)
        return -EINVAL;
    struct ax_cl *cl = ctx->eng->cl;
    if (node == cl->node) {
        rspawn_run(ctx, ax_self(ctx), name, reply_type, arg, arg_len);
        return 0;
    }
    const pinc_t *pi = peer_get(cl, node, 2);
    if (!pi)
        return -EHOSTUNREACH;
    rspawn_t *rq = ax_blob_alloc(ctx, sizeof *rq + arg_len);
    if (!rq)
        return -ENOMEM;
    memset(rq, 0, sizeof *rq);
    snprintf(rq->name, sizeof rq->name, "%s", name);
    rq->reply_type = reply_type;
    rq->arg_len = (uint32_t)arg_len;
    if (arg_len)
        memcpy(rq + 1, arg, arg_len);
    int err;
    ax_msg_t *m = ax__cluster_slot(ctx, ax__ref_make(ax__ref_home(node, pi->inc_tag), 0, 0, 0), &err);
    if (!m) {
        ax_blob_free(ctx, rq);
        return err;
    }
    m->payload.blob.ptr = rq;
    m->payload.blob.len = sizeof *rq + arg_len;
    ax_msg_commit(m, AX_SYS_RSPAWN, 0, AX_MSG_F_BLOB, 0);
    return 0;
}

int ax_cluster_register(ax_engine_t *eng, const char *name, ax_ref_t ref)
{
    if (!eng || !eng->cl || !name_ok(name) || ax__ref_dest(eng->home, ref) >= eng->n)
        return -EINVAL;
    int rc = names_put(eng->cl, name, ref);
    if (rc == 0)
        post_worker0(eng, AX_SYS_NAME_BCAST, ref, name);
    return rc;
}

int ax_cluster_unregister(ax_engine_t *eng, const char *name)
{
    if (!eng || !eng->cl || !name_ok(name))
        return -EINVAL;
    ax_ref_t ref = ax_cluster_whereis(eng, name);
    int rc = names_del(eng->cl, name, eng->cl->node);
    if (rc == 0)
        post_worker0(eng, AX_SYS_NAME_BCAST, ref, name);
    return rc;
}

ax_ref_t ax_cluster_whereis(const ax_engine_t *eng, const char *name)
{
    if (!eng || !eng->cl || !name_ok(name))
        return AX_REF_NONE;
    struct ax_cl *cl = eng->cl;
    pthread_mutex_lock(&cl->names_mu);
    int i = names_find(cl, name);
    ax_ref_t r = i >= 0 ? cl->names[i].ref : AX_REF_NONE;
    pthread_mutex_unlock(&cl->names_mu);
    return r;
}

int ax_cluster_lookup(ax_ctx_t *ctx, const char *name, uint32_t type)
{
    if (!ctx || !ctx->eng->cl || !name_ok(name) || type >= AX_TYPE_SYSTEM)
        return -EINVAL;
    unsigned char buf[AX_INLINE_MAX];
    memset(buf, 0, sizeof buf);
    ax_ref_t r = ax_cluster_whereis(ctx->eng, name);
    memcpy(buf, &r, 8);
    memcpy(buf + 8, name, strlen(name));
    return ax_send(ctx, ax_self(ctx), type, buf, sizeof buf);
}

bool ax_cluster_enabled(const ax_engine_t *eng) { return eng && eng->cl; }
uint32_t ax_cluster_node_id(const ax_engine_t *eng) { return eng && eng->cl ? eng->cl->node : 0; }

int ax_cluster_listen_address(const ax_engine_t *eng, char *buf, size_t len)
{
    if (!eng || !eng->cl || !buf)
        return -EINVAL;
    char a[AX_CTL_LISTEN_MAX];
    ax_ctl_listen_addr(eng->cl->ctl, a, sizeof a);
    if (!a[0])
        return -ENOTCONN;
    if (strlen(a) >= len)
        return -ENOSPC;
    memcpy(buf, a, strlen(a) + 1);
    return 0;
}

int ax_cluster_add_peer(ax_engine_t *eng, const char *addr)
{
    if (!eng || !eng->cl)
        return -EINVAL;
    return ax_ctl_add_peer(eng->cl->ctl, addr);
}

bool ax_cluster_node_up(const ax_engine_t *eng, uint32_t node)
{
    if (!eng || !eng->cl || node >= AX_CTL_NODES)
        return false;
    const peer_t *p = &eng->cl->peers[node];
    if (atomic_load_explicit(&p->state, memory_order_acquire) != 2)
        return false;
    /* Up for the program once every worker's endpoints to it are wired. */
    uint64_t v = atomic_load_explicit(&p->wired, memory_order_relaxed);
    return (uint32_t)v >= eng->n;
}

int ax_cluster_wait_nodes(ax_engine_t *eng, uint32_t nodes, uint32_t timeout_ms)
{
    if (!eng || !eng->cl)
        return -EINVAL;
    uint64_t t0 = ax__now_ns();
    for (;;) {
        uint32_t up = 0;
        for (uint32_t n = 0; n < AX_CTL_NODES; n++)
            up += ax_cluster_node_up(eng, n);
        if (up >= nodes)
            return 0;
        if (ax__now_ns() - t0 >= (uint64_t)timeout_ms * 1000000ull)
            return -ETIMEDOUT;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

void ax_cluster_get_stats(const ax_engine_t *eng, ax_cluster_stats_t *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    if (!eng || !eng->cl)
        return;
    ax_ctl_stats_t cs;
    ax_ctl_get_stats(eng->cl->ctl, &cs);
    for (uint32_t n = 0; n < AX_CTL_NODES; n++)
        o->nodes_up += ax_cluster_node_up(eng, n);
    o->joins = cs.joins;
    o->node_downs = cs.downs;
    o->node_leaves = cs.leaves;
    o->refused_version = cs.refused_version;
    o->refused_cookie = cs.refused_cookie;
    o->refused_garbage = cs.refused_garbage;
    o->refused_incarnation = cs.refused_incarnation;
    o->heartbeats_sent = cs.heartbeats_sent;
    o->heartbeats_received = cs.heartbeats_received;
    for (uint32_t i = 0; i < eng->n; i++) {
        ax_clw_t *cw = eng->w[i] ? CW(eng->w[i]) : NULL;
        if (!cw)
            continue;
#define SUM(f) o->f += atomic_load_explicit(&cw->st.f, memory_order_relaxed)
        SUM(msgs_sent);
        SUM(msgs_received);
        SUM(batches_sent);
        SUM(batches_received);
        SUM(bytes_sent);
        SUM(bytes_received);
        SUM(reordered);
        SUM(dead_unreachable);
        SUM(dead_stopped);
        SUM(dead_stale);
        SUM(dead_nomem);
        SUM(wire_errors);
        SUM(progress_calls);
        SUM(progress_busy);
        SUM(arms);
        SUM(fd_wakes);
        SUM(yields);
#undef SUM
    }
}
