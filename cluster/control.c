/* cluster/control.c - the control plane (see control.h and docs/cluster.md).
 *
 * One thread, poll() over: a self-pipe (stop, new peers, data path errors),
 * the listener, and every connection.  Every connection runs the same
 * symmetric handshake, frame by frame from a buffer, so a slow or garbage
 * peer costs only its own connection:
 *
 *   both send HELLO (magic, wire version, byte order, node, incarnation,
 *   nonce, challenge, worker count, listen address)
 *   -> both send AUTH (SipHash of the peer's challenge under the cookie)
 *   -> both send ADDRS (UCP worker addresses) and MEMBERS (who they know)
 *   -> on ADDRS: node_known (inbound data accepted), then READY
 *   -> on READY: node_up (outbound data may start)
 *   then HB frames every heartbeat; silence for timeout_ms, EOF or a data
 *   path error on an up connection -> node_down.
 *
 * A clean stop (ax_ctl_leave, called by the engine before its UCP endpoints
 * close) sends LEAVE on every connection; the peer takes the node down as
 * left (node_down with left = true, no failure logged) and closes the
 * connection, and the leaving node waits (bounded) for those closes.  So
 * the peer has forgotten the node's session before any endpoint to it
 * fails: the data path's errors that follow name an old session and are
 * ignored, and nothing looks like a crash.
 *
 * Two nodes that dial each other at once end with two connections.  Only
 * the node with the lower id decides which one stays: the first whose HELLO
 * it read; it closes any later one to the same incarnation at its HELLO,
 * before sending AUTH on it.  The higher node never drops a duplicate
 * itself: the connection the lower node dropped never receives AUTH, so it
 * never gets past C_AUTH there and closes without a node down.  (Both
 * sides deciding from their own view of the connections' states once let
 * them keep different connections: each closed the one the other had up,
 * and a live node was declared down.)
 *
 * Sessions.  Every connection that gets up is a new session, numbered by
 * both sides' HELLO challenges (my_chal ^ peer_chal: the same number on
 * both ends, different for every connection).  The data path keys its
 * channels and sequence numbers by session, so a node that goes down and
 * comes back (even the same incarnation, after a spurious down) restarts
 * every channel at 0 on both sides, and nothing of the old session can be
 * taken for the new one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cluster/control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { F_HELLO = 1, F_AUTH, F_ADDRS, F_READY, F_HB, F_ERROR, F_MEMBERS, F_LEAVE };
enum { C_DIAL, C_HELLO, C_AUTH, C_ADDRS, C_READY, C_UP };
#define FRAME_MAX (1u << 20)
#define CONNS_MAX 512u
#define WANT_MAX 64u
#define HANDSHAKE_NS (5ull * 1000000000ull)
#define REDIAL_NS (200ull * 1000000ull)
static const char MAGIC[8] = "AXONCTL";

typedef struct conn {
    int fd;
    int state;
    bool initiator, dup;
    int want;               /* index in wanted[] for a dialled connection, else -1 */
    uint32_t node;          /* peer, known after HELLO */
    uint64_t nonce, my_chal, peer_chal, session;
    uint32_t inc_tag, nworkers;
    bool got_addrs, got_ready;
    bool addrs_made; /* addrs_for succeeded for this connection's session */
    bool left; /* the peer sent LEAVE: it stops cleanly */
    uint64_t since, last_rx, last_tx;
    uint8_t *rx;
    size_t rxlen, rxcap;
    char peer_listen[AX_CTL_LISTEN_MAX];
} conn_t;

typedef struct node_rec {
    int state; /* 0 none, 1 known, 2 up, 3 down */
    uint64_t nonce, session; /* incarnation; session of its up connection */
    uint32_t inc_tag, last_tag;
    conn_t *conn;
} node_rec_t;

struct ax_ctl {
    ax_ctl_opts_t o;
    uint8_t key[16];
    char cookie[256], listen_spec[AX_CTL_LISTEN_MAX], listen_addr[AX_CTL_LISTEN_MAX];
    void **addr;
    size_t *alen;
    int lfd, pipe_r, pipe_w;
    pthread_t thread;
    bool running;
    _Atomic bool stop;
    pthread_mutex_t mu; /* wanted[] and errs[] from other threads */
    char wanted[WANT_MAX][AX_CTL_LISTEN_MAX];
    uint64_t want_next[WANT_MAX];
    bool want_busy[WANT_MAX];
    uint32_t nwanted;
    uint64_t err_session[AX_CTL_NODES];
    bool err_pending;
    bool leave_req;  /* ax_ctl_leave asked (under mu) */
    bool leave_done; /* every connection closed after LEAVE (under mu) */
    pthread_cond_t leave_cv; /* CLOCK_MONOTONIC; signalled with leave_done */
    bool leaving;    /* control thread only: LEAVE sent, no dialling */
    conn_t *conns[CONNS_MAX];
    uint32_t nconns;
    node_rec_t nodes[AX_CTL_NODES];
    _Atomic uint32_t up_count;
    _Atomic uint8_t up[AX_CTL_NODES];
    struct {
        _Atomic uint64_t joins, downs, leaves, refused_version, refused_cookie, refused_garbage,
            refused_incarnation, hb_sent, hb_recv;
    } st;
};

/* ---- SipHash-2-4 ------------------------------------------------------------ */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
    do { \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while (0)
static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* little-endian hosts only (x86-64, aarch64): checked at HELLO */
}
uint64_t ax_siphash24(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t k0 = rd64(key), k1 = rd64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
    uint64_t b = (uint64_t)len << 56;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = rd64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; i + j < len; j++)
        b |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- helpers ----------------------------------------------------------------- */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void logf_(const ax_ctl_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const ax_ctl_t *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "axon: cluster node %u: %s\n", c->o.node, buf);
}

static void poke(ax_ctl_t *c)
{
    char b = 1;
    ssize_t r = write(c->pipe_w, &b, 1);
    (void)r; /* a full pipe already wakes the thread */
}

/* "host:port" -> sockaddr_in (IPv4; names through getaddrinfo). */
static int parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[AX_CTL_LISTEN_MAX];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host || colon == s)
        return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port > 65535 || end == colon + 1)
        return -EINVAL;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) == 1)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -EHOSTUNREACH;
    sa->sin_addr = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

static int add_want(ax_ctl_t *c, const char *addr)
{
    if (!addr[0] || strcmp(addr, c->listen_addr) == 0)
        return 0;
    for (uint32_t i = 0; i < c->nwanted; i++)
        if (strcmp(c->wanted[i], addr) == 0)
            return 0;
    if (c->nwanted == WANT_MAX)
        return -ENOSPC;
    snprintf(c->wanted[c->nwanted], AX_CTL_LISTEN_MAX, "%s", addr);
    c->want_next[c->nwanted] = 0;
    c->want_busy[c->nwanted] = false;
    c->nwanted++;
    return 0;
}

int ax_ctl_add_peer(ax_ctl_t *c, const char *addr)
{
    struct sockaddr_in sa;
    if (!c || !addr || strlen(addr) >= AX_CTL_LISTEN_MAX || parse_addr(addr, &sa) < 0)
        return -EINVAL;
    pthread_mutex_lock(&c->mu);
    int rc = add_want(c, addr);
    pthread_mutex_unlock(&c->mu);
    if (c->running)
        poke(c);
    return rc;
}

void ax_ctl_report_error(ax_ctl_t *c, uint32_t node, uint64_t session)
{
    if (!c || node >= AX_CTL_NODES)
        return;
    pthread_mutex_lock(&c->mu);
    c->err_session[node] = session;
    c->err_pending = true;
    pthread_mutex_unlock(&c->mu);
    poke(c);
}

/* ---- frames ------------------------------------------------------------------- */
static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* Frames are small and sockets fresh: a full send buffer means
             * the peer stopped reading; wait briefly, then give up on it. */
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, 1000) <= 0)
                return -ETIMEDOUT;
            continue;
        }
        if (w <= 0)
            return -EPIPE;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_frame(conn_t *k, uint32_t type, const void *p, uint32_t len)
{
    uint32_t h[2] = {type, len};
    if (send_all(k->fd, h, sizeof h) < 0 || (len && send_all(k->fd, p, len) < 0))
        return -EPIPE;
    k->last_tx = now_ns();
    return 0;
}

typedef struct __attribute__((packed)) hello {
    char magic[8];
    uint32_t version;
    uint32_t order; /* 0x01020304 as the sender stores it */
    uint32_t node, inc_tag;
    uint64_t nonce, challenge;
    uint32_t nworkers, pad;
    char listen[AX_CTL_LISTEN_MAX];
} hello_t;

static void send_hello(ax_ctl_t *c, conn_t *k)
{
    hello_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, 8);
    h.version = c->o.wire_version;
    h.order = 0x01020304u;
    h.node = c->o.node;
    h.inc_tag = c->o.inc_tag;
    h.nonce = c->o.nonce;
    if (getrandom(&k->my_chal, sizeof k->my_chal, 0) != sizeof k->my_chal)
        k->my_chal = now_ns() ^ ((uint64_t)getpid() << 32);
    h.challenge = k->my_chal;
    h.nworkers = c->o.nworkers;
    snprintf(h.listen, sizeof h.listen, "%s", c->listen_addr);
    send_frame(k, F_HELLO, &h, sizeof h);
}

static uint64_t auth_mac(const ax_ctl_t *c, uint64_t chal, uint32_t prover)
{
    uint8_t buf[16];
    memcpy(buf, &chal, 8);
    memcpy(buf + 8, &prover, 4);
    memcpy(buf + 12, "AXA1", 4);
    return ax_siphash24(c->key, buf, sizeof buf);
}

static void send_error(conn_t *k, const char *msg)
{
    send_frame(k, F_ERROR, msg, (uint32_t)strlen(msg));
}

/* ---- connections ---------------------------------------------------------------- */
static conn_t *conn_new(ax_ctl_t *c, int fd, bool initiator, int want)
{
    if (c->nconns == CONNS_MAX) {
        close(fd);
        return NULL;
    }
    conn_t *k = calloc(1, sizeof *k);
    if (!k) {
        close(fd);
        return NULL;
    }
    k->fd = fd;
    k->initiator = initiator;
    k->want = want;
    k->node = UINT32_MAX;
    k->since = k->last_rx = now_ns();
    k->state = initiator ? C_DIAL : C_HELLO;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->conns[c->nconns++] = k;
    if (!initiator)
        send_hello(c, k);
    return k;
}

/* Close k.  If it was a node's up connection, that node is down. */
static void conn_close(ax_ctl_t *c, conn_t *k, const char *why)
{
    if (k->node < AX_CTL_NODES && c->nodes[k->node].conn == k) {
        node_rec_t *n = &c->nodes[k->node];
        n->conn = NULL;
        if (!k->dup && (n->state == 1 || n->state == 2)) {
            n->state = 3;
            n->last_tag = n->inc_tag;
            atomic_store_explicit(&c->up[k->node], 0, memory_order_relaxed);
            atomic_fetch_sub_explicit(&c->up_count, 1, memory_order_relaxed);
            /* An orderly leave (it said LEAVE, or we are leaving and it
             * closed in answer) is no failure: counted apart, not logged
             * as one. */
            bool left = k->left || c->leaving;
            if (k->left) {
                atomic_fetch_add_explicit(&c->st.leaves, 1, memory_order_relaxed);
                logf_(c, "node %u left the cluster (it stopped)", k->node);
            } else if (!c->leaving) {
                atomic_fetch_add_explicit(&c->st.downs, 1, memory_order_relaxed);
                logf_(c, "node %u is unreachable: %s", k->node, why);
            }
            c->o.node_down(c->o.user, k->node, n->session, left, why);
        }
    }
    if (k->addrs_made && !k->got_addrs && c->o.addrs_drop)
        c->o.addrs_drop(c->o.user, k->node, k->session);
    if (k->want >= 0 && (uint32_t)k->want < c->nwanted)
        c->want_busy[k->want] = false;
    close(k->fd);
    free(k->rx);
    for (uint32_t i = 0; i < c->nconns; i++)
        if (c->conns[i] == k) {
            c->conns[i] = c->conns[--c->nconns];
            break;
        }
    free(k);
}

static void refuse(ax_ctl_t *c, conn_t *k, const char *msg)
{
    logf_(c, "refused a peer: %s", msg);
    send_error(k, msg);
    conn_close(c, k, msg);
}

static void on_hello(ax_ctl_t *c, conn_t *k, const uint8_t *p, uint32_t len)
{
    char msg[400];
    hello_t h;
    if (len < 12 || memcmp(p, MAGIC, 8) != 0) {
        atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
        conn_close(c, k, "not an axon cluster peer");
        return;
    }
    uint32_t ver;
    memcpy(&ver, p + 8, 4);
    if (ver != c->o.wire_version) {
        atomic_fetch_add_explicit(&c->st.refused_version, 1, memory_order_relaxed);
        snprintf(msg, sizeof msg, "wire version %u refused: node %u speaks wire version %u; run "
                 "the same axon release on every node", ver, c->o.node, c->o.wire_version);
        refuse(c, k, msg);
        return;
    }
    if (len != sizeof h) {
        atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
        conn_close(c, k, "malformed HELLO");
        return;
    }
    memcpy(&h, p, sizeof h);
    h.listen[AX_CTL_LISTEN_MAX - 1] = 0;
    if (h.order != 0x01020304u) {
        atomic_fetch_add_explicit(&c->st.refused_version, 1, memory_order_relaxed);
        refuse(c, k, "byte order differs: axon clusters need nodes of one byte order");
        return;
    }
    if (h.node >= AX_CTL_NODES || h.node == c->o.node || !h.nworkers || h.nworkers > 1024 ||
        !h.inc_tag || h.inc_tag > 15) {
        atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
        snprintf(msg, sizeof msg, "peer announces node %u with %u workers and incarnation tag "
                 "%u: %s", h.node, h.nworkers, h.inc_tag,
                 h.node == c->o.node ? "that is this node's id; give every node its own "
                                       "cluster.node_id" : "out of range");
        refuse(c, k, msg);
        return;
    }
    k->node = h.node;
    k->nonce = h.nonce;
    k->inc_tag = h.inc_tag;
    k->nworkers = h.nworkers;
    k->peer_chal = h.challenge;
    /* Both ends compute the same number; 0 is never a session. */
    k->session = (k->my_chal ^ k->peer_chal) ? (k->my_chal ^ k->peer_chal) : 1;
    memcpy(k->peer_listen, h.listen, sizeof k->peer_listen);
    /* A second connection to the same incarnation: the lower node id keeps
     * the first whose HELLO it read and drops this one before AUTH; the
     * higher one waits for that decision (see the top of the file). */
    if (c->o.node < h.node)
        for (uint32_t i = 0; i < c->nconns; i++) {
            conn_t *e = c->conns[i];
            if (e == k || e->node != h.node || e->nonce != h.nonce || e->state < C_AUTH)
                continue;
            k->dup = true;
            conn_close(c, k, "duplicate connection");
            return;
        }
    node_rec_t *n = &c->nodes[h.node];
    if ((n->state == 1 || n->state == 2) && n->nonce != h.nonce && n->conn) {
        /* It restarted before we noticed: the old incarnation is gone. */
        conn_close(c, n->conn, "the node restarted (a new incarnation joined)");
    }
    if (n->state == 3 && n->nonce != h.nonce && n->last_tag == h.inc_tag) {
        atomic_fetch_add_explicit(&c->st.refused_incarnation, 1, memory_order_relaxed);
        snprintf(msg, sizeof msg, "node %u rejoined with incarnation tag %u, the tag of its "
                 "previous incarnation: references to its old actors would look valid; "
                 "give it a cluster.state_file (each start then takes a new tag) or "
                 "restart it a second later (without one the tag comes from the clock)",
                 h.node, h.inc_tag);
        refuse(c, k, msg);
        return;
    }
    k->state = C_AUTH;
    uint64_t mac = auth_mac(c, k->peer_chal, c->o.node);
    send_frame(k, F_AUTH, &mac, sizeof mac);
}

static void send_members(ax_ctl_t *c, conn_t *k)
{
    struct __attribute__((packed)) { uint32_t node; char listen[AX_CTL_LISTEN_MAX]; } m[64];
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->nconns && n < 64; i++) {
        conn_t *e = c->conns[i];
        if (e != k && e->state == C_UP && e->peer_listen[0]) {
            m[n].node = e->node;
            memcpy(m[n].listen, e->peer_listen, AX_CTL_LISTEN_MAX);
            n++;
        }
    }
    send_frame(k, F_MEMBERS, m, (uint32_t)(n * sizeof m[0]));
}

/* Heartbeats due on the other connections, sent now: addrs_for can take
 * a while (the data path makes UCP workers there, tens of ms each). */
static void hb_send_due(ax_ctl_t *c, const conn_t *except)
{
    uint64_t now = now_ns(), hb_ns = (uint64_t)c->o.heartbeat_ms * 1000000ull;
    for (uint32_t i = 0; i < c->nconns; i++) {
        conn_t *k = c->conns[i];
        if (k != except && k->state >= C_READY && (int64_t)(now - k->last_tx) >= (int64_t)hb_ns &&
            send_frame(k, F_HB, NULL, 0) == 0)
            atomic_fetch_add_explicit(&c->st.hb_sent, 1, memory_order_relaxed);
    }
}

/* Bytes wait unread on fd: a heartbeat the control thread has not read yet
 * (it was busy) is no silence. */
static bool rx_pending(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    return poll(&pf, 1, 0) > 0 && (pf.revents & POLLIN);
}

/* false: k was closed. */
static bool send_addrs(ax_ctl_t *c, conn_t *k)
{
    void **addr = c->addr;
    size_t *alen = c->alen;
    void **va = NULL;
    size_t *vl = NULL;
    if (c->o.addrs_for) {
        /* Addresses made for this peer alone (control.h). */
        char why[256] = "";
        va = calloc(c->o.nworkers, sizeof *va);
        vl = calloc(c->o.nworkers, sizeof *vl);
        int rc = va && vl ? c->o.addrs_for(c->o.user, k->node, k->session, va, vl, why)
                          : -ENOMEM;
        hb_send_due(c, k);
        if (rc < 0) {
            free(va);
            free(vl);
            char msg[320];
            snprintf(msg, sizeof msg, "no UCP addresses for node %u: %s", k->node,
                     why[0] ? why : strerror(-rc));
            logf_(c, "%s", msg);
            send_error(k, msg);
            conn_close(c, k, msg);
            return false;
        }
        k->addrs_made = true;
        addr = va;
        alen = vl;
    }
    size_t len = 4;
    for (uint32_t i = 0; i < c->o.nworkers; i++)
        len += 4 + alen[i];
    uint8_t *b = malloc(len), *p = b;
    if (!b) {
        free(va);
        free(vl);
        conn_close(c, k, "out of memory");
        return false;
    }
    memcpy(p, &c->o.nworkers, 4);
    p += 4;
    for (uint32_t i = 0; i < c->o.nworkers; i++) {
        uint32_t l = (uint32_t)alen[i];
        memcpy(p, &l, 4);
        memcpy(p + 4, addr[i], l);
        p += 4 + l;
    }
    send_frame(k, F_ADDRS, b, (uint32_t)len);
    free(b);
    free(va);
    free(vl);
    return true;
}

static void on_auth(ax_ctl_t *c, conn_t *k, const uint8_t *p, uint32_t len)
{
    uint64_t mac, want = auth_mac(c, k->my_chal, k->node);
    if (len != 8) {
        atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
        conn_close(c, k, "malformed AUTH");
        return;
    }
    memcpy(&mac, p, 8);
    /* Constant time: no early exit on the first differing byte. */
    uint64_t diff = mac ^ want;
    if (diff) {
        char msg[300];
        atomic_fetch_add_explicit(&c->st.refused_cookie, 1, memory_order_relaxed);
        snprintf(msg, sizeof msg, "authentication failed: node %u does not know the cookie of "
                 "node %u's cluster (cluster.cookie differs)", k->node, c->o.node);
        refuse(c, k, msg);
        return;
    }
    k->state = C_ADDRS;
    if (send_addrs(c, k))
        send_members(c, k);
}

static void on_addrs(ax_ctl_t *c, conn_t *k, const uint8_t *p, uint32_t len)
{
    uint32_t n;
    if (len < 4 || (memcpy(&n, p, 4), n != k->nworkers)) {
        atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
        conn_close(c, k, "malformed ADDRS");
        return;
    }
    void **addr = calloc(n, sizeof *addr);
    size_t *alen = calloc(n, sizeof *alen);
    const uint8_t *q = p + 4, *end = p + len;
    bool ok = addr && alen;
    for (uint32_t i = 0; ok && i < n; i++) {
        uint32_t l;
        if (end - q < 4) {
            ok = false;
            break;
        }
        memcpy(&l, q, 4);
        if ((size_t)(end - q - 4) < l || !l) {
            ok = false;
            break;
        }
        addr[i] = (void *)(q + 4);
        alen[i] = l;
        q += 4 + l;
    }
    if (!ok) {
        free(addr);
        free(alen);
        atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
        conn_close(c, k, "malformed ADDRS");
        return;
    }
    node_rec_t *nr = &c->nodes[k->node];
    /* Another connection still carries the node's previous session: that
     * session is over (its channels die with it) before this one starts. */
    if (nr->conn && nr->conn != k)
        conn_close(c, nr->conn, "a new connection replaced it");
    bool was = nr->state == 1 || nr->state == 2;
    nr->state = 1;
    nr->nonce = k->nonce;
    nr->session = k->session;
    nr->inc_tag = k->inc_tag;
    nr->conn = k;
    if (!was)
        atomic_fetch_add_explicit(&c->up_count, 1, memory_order_relaxed);
    c->o.node_known(c->o.user, k->node, k->session, k->inc_tag, n, addr, alen);
    free(addr);
    free(alen);
    k->got_addrs = true;
    k->state = C_READY;
    send_frame(k, F_READY, NULL, 0);
}

static void on_ready(ax_ctl_t *c, conn_t *k)
{
    k->state = C_UP;
    /* Tell the nodes already up about the newcomer, so nodes that joined
     * through this one at the same moment still find each other. */
    for (uint32_t i = 0; i < c->nconns; i++)
        if (c->conns[i] != k && c->conns[i]->state == C_UP)
            send_members(c, c->conns[i]);
    c->nodes[k->node].state = 2;
    if (k->want >= 0 && (uint32_t)k->want < c->nwanted)
        c->want_busy[k->want] = false;
    atomic_store_explicit(&c->up[k->node], 1, memory_order_release);
    atomic_fetch_add_explicit(&c->st.joins, 1, memory_order_relaxed);
    c->o.node_up(c->o.user, k->node, k->session);
}

/* One complete frame.  Order is enforced: anything out of turn is garbage. */
static void on_frame(ax_ctl_t *c, conn_t *k, uint32_t type, const uint8_t *p, uint32_t len)
{
    static int dbg = -1;
    if (dbg < 0)
        dbg = getenv("AXON_DEBUG_CLUSTER") != NULL;
    if (dbg)
        logf_(c, "conn fd %d (state %d, node %u): frame %u, %u bytes", k->fd, k->state, k->node,
              type, len);
    if (type == F_ERROR) {
        char msg[300];
        uint32_t n = len < sizeof msg - 1 ? len : (uint32_t)sizeof msg - 1;
        memcpy(msg, p, n);
        msg[n] = 0;
        for (uint32_t i = 0; i < n; i++)
            if (msg[i] < 32 || msg[i] > 126)
                msg[i] = '?';
        logf_(c, "a peer refused this node: %s", msg);
        conn_close(c, k, msg);
        return;
    }
    if (type == F_LEAVE) {
        /* The peer stops cleanly: in any state after its HELLO (it leaves
         * connections still in their handshake too).  Closing answers it. */
        if (len != 0 || k->state == C_HELLO) {
            atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
            conn_close(c, k, "protocol violation (malformed or early LEAVE)");
            return;
        }
        k->left = true;
        conn_close(c, k, "the node stopped (it left the cluster)");
        return;
    }
    switch (k->state) {
    case C_HELLO:
        if (type == F_HELLO) {
            on_hello(c, k, p, len);
            return;
        }
        break;
    case C_AUTH:
        if (type == F_AUTH) {
            on_auth(c, k, p, len);
            return;
        }
        break;
    case C_ADDRS:
        if (type == F_ADDRS) {
            on_addrs(c, k, p, len);
            return;
        }
        break;
    case C_READY:
    case C_UP:
        if (type == F_READY && k->state == C_READY) {
            on_ready(c, k);
            return;
        }
        if (type == F_HB) {
            atomic_fetch_add_explicit(&c->st.hb_recv, 1, memory_order_relaxed);
            return;
        }
        if (type == F_MEMBERS && len % (4 + AX_CTL_LISTEN_MAX) == 0) {
            pthread_mutex_lock(&c->mu);
            for (uint32_t off = 0; off < len; off += 4 + AX_CTL_LISTEN_MAX) {
                char l[AX_CTL_LISTEN_MAX];
                uint32_t node;
                memcpy(&node, p + off, 4);
                memcpy(l, p + off + 4, sizeof l);
                l[sizeof l - 1] = 0;
                struct sockaddr_in sa;
                if (node < AX_CTL_NODES && node != c->o.node && parse_addr(l, &sa) == 0)
                    add_want(c, l);
            }
            pthread_mutex_unlock(&c->mu);
            return;
        }
        break;
    default:
        break;
    }
    atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
    conn_close(c, k, "protocol violation (unexpected frame)");
}

static void conn_read(ax_ctl_t *c, conn_t *k)
{
    if (k->rxcap - k->rxlen < 4096) {
        size_t cap = k->rxcap ? k->rxcap * 2 : 8192;
        if (cap > FRAME_MAX + 8 + 4096)
            cap = FRAME_MAX + 8 + 4096;
        uint8_t *n = cap > k->rxcap ? realloc(k->rx, cap) : NULL;
        if (!n) {
            atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
            conn_close(c, k, "frame too large");
            return;
        }
        k->rx = n;
        k->rxcap = cap;
    }
    ssize_t r = recv(k->fd, k->rx + k->rxlen, k->rxcap - k->rxlen, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        conn_close(c, k, r == 0 ? "connection closed" : strerror(errno));
        return;
    }
    k->rxlen += (size_t)r;
    k->last_rx = now_ns();
    size_t off = 0;
    while (k->rxlen - off >= 8) {
        uint32_t type, len;
        memcpy(&type, k->rx + off, 4);
        memcpy(&len, k->rx + off + 4, 4);
        if (len > FRAME_MAX || type < F_HELLO || type > F_LEAVE) {
            atomic_fetch_add_explicit(&c->st.refused_garbage, 1, memory_order_relaxed);
            conn_close(c, k, "garbage on the control connection");
            return;
        }
        if (k->rxlen - off - 8 < len)
            break;
        on_frame(c, k, type, k->rx + off + 8, len);
        /* The frame may have closed k (then it is freed). */
        bool alive = false;
        for (uint32_t i = 0; i < c->nconns; i++)
            alive |= c->conns[i] == k;
        if (!alive)
            return;
        off += 8 + len;
    }
    memmove(k->rx, k->rx + off, k->rxlen - off);
    k->rxlen -= off;
}

static void dial(ax_ctl_t *c, uint32_t i)
{
    struct sockaddr_in sa;
    if (parse_addr(c->wanted[i], &sa) < 0)
        return;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc < 0 && errno != EINPROGRESS) {
        close(fd);
        return;
    }
    if (conn_new(c, fd, true, (int)i))
        c->want_busy[i] = true;
}

static void on_connected(ax_ctl_t *c, conn_t *k)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        conn_close(c, k, strerror(err));
        return;
    }
    k->state = C_HELLO;
    send_hello(c, k);
}

static bool want_satisfied(const ax_ctl_t *c, const char *addr)
{
    for (uint32_t i = 0; i < c->nconns; i++)
        if (c->conns[i]->state >= C_READY && strcmp(c->conns[i]->peer_listen, addr) == 0)
            return true;
    return false;
}

/* Control thread, outside mu.  LEAVE on every
 * connection past its dial; dialled ones not yet connected just close.  The
 * listener closes: a peer's redial is refused from now on. */
static void leave_start(ax_ctl_t *c)
{
    c->leaving = true;
    for (uint32_t i = 0; i < c->nconns;) {
        conn_t *k = c->conns[i];
        if (k->state == C_DIAL || send_frame(k, F_LEAVE, NULL, 0) < 0) {
            conn_close(c, k, "leaving");
            continue;
        }
        i++;
    }
    if (c->lfd >= 0) {
        close(c->lfd);
        c->lfd = -1;
    }
}

static void *ctl_main(void *arg)
{
    ax_ctl_t *c = arg;
    pthread_setname_np(pthread_self(), "axon-cluster");
    struct pollfd pf[CONNS_MAX + 2];
    conn_t *pk[CONNS_MAX + 2];
    uint64_t hb_ns = (uint64_t)c->o.heartbeat_ms * 1000000ull;
    uint64_t to_ns = (uint64_t)c->o.timeout_ms * 1000000ull;
    while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
        uint64_t now = now_ns();
        /* dial what we want and have no connection for */
        pthread_mutex_lock(&c->mu);
        bool leave_now = c->leave_req && !c->leaving;
        pthread_mutex_unlock(&c->mu);
        if (leave_now)
            leave_start(c); /* outside mu: it may run node_down */
        pthread_mutex_lock(&c->mu);
        if (c->leaving && !c->leave_done && !c->nconns) {
            c->leave_done = true;
            pthread_cond_broadcast(&c->leave_cv);
        }
        for (uint32_t i = 0; !c->leaving && i < c->nwanted; i++)
            if (!c->want_busy[i] && now >= c->want_next[i] && !want_satisfied(c, c->wanted[i])) {
                c->want_next[i] = now + REDIAL_NS;
                dial(c, i);
            }
        bool errs = c->err_pending;
        uint64_t err_session[AX_CTL_NODES];
        if (errs) {
            memcpy(err_session, c->err_session, sizeof err_session);
            memset(c->err_session, 0, sizeof c->err_session);
            c->err_pending = false;
        }
        pthread_mutex_unlock(&c->mu);
        if (errs)
            for (uint32_t n = 0; n < AX_CTL_NODES; n++)
                if (err_session[n] && c->nodes[n].conn && c->nodes[n].session == err_session[n])
                    conn_close(c, c->nodes[n].conn, "the data path reported an error");
        /* heartbeats and timeouts */
        for (uint32_t i = 0; i < c->nconns;) {
            conn_t *k = c->conns[i];
            if (k->state == C_UP && (int64_t)(now - k->last_rx) > (int64_t)to_ns &&
                !rx_pending(k->fd)) {
                char why[96];
                snprintf(why, sizeof why, "no heartbeat for %u ms", c->o.timeout_ms);
                conn_close(c, k, why);
                continue;
            }
            if (k->state != C_UP && (int64_t)(now - k->since) > (int64_t)HANDSHAKE_NS) {
                conn_close(c, k, "handshake timed out");
                continue;
            }
            if (k->state >= C_READY && (int64_t)(now - k->last_tx) >= (int64_t)hb_ns) {
                if (send_frame(k, F_HB, NULL, 0) < 0) {
                    conn_close(c, k, "cannot send a heartbeat");
                    continue;
                }
                atomic_fetch_add_explicit(&c->st.hb_sent, 1, memory_order_relaxed);
            }
            i++;
        }
        uint32_t n = 0;
        pf[n] = (struct pollfd){.fd = c->pipe_r, .events = POLLIN};
        pk[n++] = NULL;
        if (c->lfd >= 0) {
            pf[n] = (struct pollfd){.fd = c->lfd, .events = POLLIN};
            pk[n++] = NULL;
        }
        for (uint32_t i = 0; i < c->nconns; i++) {
            conn_t *k = c->conns[i];
            pf[n] = (struct pollfd){.fd = k->fd, .events = k->state == C_DIAL ? POLLOUT : POLLIN};
            pk[n++] = k;
        }
        int tmo = (int)(hb_ns / 2000000ull);
        if (tmo < 5)
            tmo = 5;
        if (tmo > 100)
            tmo = 100;
        int r = poll(pf, n, tmo);
        if (r <= 0)
            continue;
        if (pf[0].revents) {
            char buf[64];
            while (read(c->pipe_r, buf, sizeof buf) > 0) {
            }
        }
        if (c->lfd >= 0 && (pf[1].revents & POLLIN)) {
            int fd;
            while ((fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                conn_new(c, fd, false, -1);
        }
        for (uint32_t i = c->lfd >= 0 ? 2 : 1; i < n; i++) {
            conn_t *k = pk[i];
            bool alive = false;
            for (uint32_t j = 0; j < c->nconns; j++)
                alive |= c->conns[j] == k;
            if (!alive || !pf[i].revents)
                continue;
            if (k->state == C_DIAL)
                on_connected(c, k);
            else
                conn_read(c, k);
        }
    }
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------- */
int ax_ctl_create(const ax_ctl_opts_t *o, ax_ctl_t **out, char *err, size_t errlen)
{
    *out = NULL;
    ax_ctl_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->o = *o;
    c->lfd = c->pipe_r = c->pipe_w = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->leave_cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(c->cookie, sizeof c->cookie, "%s", o->cookie);
    c->o.cookie = c->cookie;
    /* 128-bit key from the cookie: two SipHash passes under fixed keys. */
    static const uint8_t k1[16] = "axon-cookie-key1", k2[16] = "axon-cookie-key2";
    uint64_t h1 = ax_siphash24(k1, c->cookie, strlen(c->cookie));
    uint64_t h2 = ax_siphash24(k2, c->cookie, strlen(c->cookie));
    memcpy(c->key, &h1, 8);
    memcpy(c->key + 8, &h2, 8);
    c->addr = calloc(o->nworkers, sizeof *c->addr);
    c->alen = calloc(o->nworkers, sizeof *c->alen);
    if (!c->addr || !c->alen)
        goto nomem;
    for (uint32_t i = 0; !o->addrs_for && i < o->nworkers; i++) {
        if (!(c->addr[i] = malloc(o->alen[i])))
            goto nomem;
        memcpy(c->addr[i], o->addr[i], o->alen[i]);
        c->alen[i] = o->alen[i];
    }
    int pfd[2];
    if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cluster: pipe: %s", strerror(errno));
        ax_ctl_destroy(c);
        return -errno;
    }
    c->pipe_r = pfd[0];
    c->pipe_w = pfd[1];
    if (o->listen && o->listen[0]) {
        struct sockaddr_in sa;
        int rc = parse_addr(o->listen, &sa);
        if (rc < 0) {
            snprintf(err, errlen, "cluster.listen = %s: cannot resolve the host; give an IPv4 "
                     "address or a resolvable name", o->listen);
            ax_ctl_destroy(c);
            return -EINVAL;
        }
        c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(c->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (c->lfd < 0 || bind(c->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            listen(c->lfd, 64) < 0) {
            rc = -errno;
            snprintf(err, errlen, "cluster.listen = %s: cannot listen: %s; choose a free port "
                     "(or port 0)", o->listen, strerror(errno));
            ax_ctl_destroy(c);
            return rc;
        }
        socklen_t sl = sizeof sa;
        getsockname(c->lfd, (struct sockaddr *)&sa, &sl);
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
        snprintf(c->listen_addr, sizeof c->listen_addr, "%s:%u", ip, ntohs(sa.sin_port));
    }
    if (o->peers && o->peers[0]) {
        const char *s = o->peers;
        while (*s) {
            while (*s == ' ' || *s == ',')
                s++;
            size_t l = strcspn(s, ", ");
            if (!l)
                break;
            char a[AX_CTL_LISTEN_MAX];
            struct sockaddr_in sa;
            if (l >= sizeof a || (memcpy(a, s, l), a[l] = 0, parse_addr(a, &sa) < 0)) {
                snprintf(err, errlen, "cluster.peers: cannot resolve \"%.*s\"; give IPv4 "
                         "addresses or resolvable names", (int)l, s);
                ax_ctl_destroy(c);
                return -EINVAL;
            }
            if (add_want(c, a) < 0) {
                snprintf(err, errlen, "cluster.peers: more than %u addresses", WANT_MAX);
                ax_ctl_destroy(c);
                return -EINVAL;
            }
            s += l;
        }
    }
    *out = c;
    return 0;
nomem:
    snprintf(err, errlen, "cluster: out of memory");
    ax_ctl_destroy(c);
    return -ENOMEM;
}

int ax_ctl_start(ax_ctl_t *c)
{
    int rc = pthread_create(&c->thread, NULL, ctl_main, c);
    if (rc)
        return -rc;
    c->running = true;
    return 0;
}

void ax_ctl_destroy(ax_ctl_t *c)
{
    if (!c)
        return;
    if (c->running) {
        atomic_store_explicit(&c->stop, true, memory_order_release);
        poke(c);
        pthread_join(c->thread, NULL);
    }
    while (c->nconns) {
        conn_t *k = c->conns[c->nconns - 1];
        /* Shutting down: no node_down callbacks any more. */
        if (k->node < AX_CTL_NODES && c->nodes[k->node].conn == k)
            c->nodes[k->node].conn = NULL;
        conn_close(c, k, "shutdown");
    }
    if (c->lfd >= 0)
        close(c->lfd);
    if (c->pipe_r >= 0)
        close(c->pipe_r);
    if (c->pipe_w >= 0)
        close(c->pipe_w);
    for (uint32_t i = 0; c->addr && i < c->o.nworkers; i++)
        free(c->addr[i]);
    free(c->addr);
    free(c->alen);
    pthread_cond_destroy(&c->leave_cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int ax_ctl_leave(ax_ctl_t *c, uint32_t wait_ms)
{
    if (!c || !c->running)
        return 0;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += wait_ms / 1000u;
    end.tv_nsec += (long)(wait_ms % 1000u) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    c->leave_req = true;
    pthread_mutex_unlock(&c->mu);
    poke(c);
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (!c->leave_done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->leave_cv, &c->mu, &end);
    bool done = c->leave_done;
    pthread_mutex_unlock(&c->mu);
    return done ? 0 : -ETIMEDOUT;
}

void ax_ctl_listen_addr(const ax_ctl_t *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s", c ? c->listen_addr : "");
}

uint32_t ax_ctl_nodes_up(const ax_ctl_t *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; c && i < AX_CTL_NODES; i++)
        n += atomic_load_explicit(&c->up[i], memory_order_acquire);
    return n;
}

bool ax_ctl_node_is_up(const ax_ctl_t *c, uint32_t node)
{
    return c && node < AX_CTL_NODES && atomic_load_explicit(&c->up[node], memory_order_acquire);
}

void ax_ctl_get_stats(const ax_ctl_t *c, ax_ctl_stats_t *o)
{
    memset(o, 0, sizeof *o);
    if (!c)
        return;
    o->joins = atomic_load_explicit(&c->st.joins, memory_order_relaxed);
    o->downs = atomic_load_explicit(&c->st.downs, memory_order_relaxed);
    o->leaves = atomic_load_explicit(&c->st.leaves, memory_order_relaxed);
    o->refused_version = atomic_load_explicit(&c->st.refused_version, memory_order_relaxed);
    o->refused_cookie = atomic_load_explicit(&c->st.refused_cookie, memory_order_relaxed);
    o->refused_garbage = atomic_load_explicit(&c->st.refused_garbage, memory_order_relaxed);
    o->refused_incarnation = atomic_load_explicit(&c->st.refused_incarnation, memory_order_relaxed);
    o->heartbeats_sent = atomic_load_explicit(&c->st.hb_sent, memory_order_relaxed);
    o->heartbeats_received = atomic_load_explicit(&c->st.hb_recv, memory_order_relaxed);
}
