/* tests/cluster/test_ctl_dup.c - the control plane's choice between two
 * connections that two nodes dialled to each other at once (cluster/control.c,
 * "Two nodes that dial each other at once").
 *
 * A real control plane (node 1) against a scripted node 0 on raw sockets,
 * so the interleaving that once declared a live node down is played exactly:
 * node 1 dials node 0 (connection Y); node 0 answers HELLO, AUTH and ADDRS
 * on Y and reads node 1's READY (Y is up for node 0) but holds its own
 * READY back; then node 0 dials node 1 (connection X) and sends the same
 * incarnation's HELLO.  Node 1 must not close Y: node 0 already uses it.
 * (Before the fix node 1, seeing Y not yet up on its side and X dialled by
 * the lower id, closed Y; node 0 then saw "connection closed" on its up
 * connection and declared node 1 down.)  Node 0, the lower id, then drops
 * X, sends READY on Y, and node 1 must have node 0 up, never down.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster/control.h"

enum { F_HELLO = 1, F_AUTH, F_ADDRS, F_READY, F_HB, F_ERROR, F_MEMBERS };
static const char COOKIE[] = "dup-test-cookie";

typedef struct __attribute__((packed)) hello {
    char magic[8];
    uint32_t version, order, node, inc_tag;
    uint64_t nonce, challenge;
    uint32_t nworkers, pad;
    char listen[AX_CTL_LISTEN_MAX];
} hello_t;

static _Atomic int g_known, g_up, g_down;

static void cb_known(void *u, uint32_t node, uint64_t session, uint32_t tag, uint32_t nw,
                     void *const *addr, const size_t *alen)
{
    (void)u, (void)node, (void)session, (void)tag, (void)nw, (void)addr, (void)alen;
    atomic_fetch_add(&g_known, 1);
}
static void cb_up(void *u, uint32_t node, uint64_t session)
{
    (void)u, (void)node, (void)session;
    atomic_fetch_add(&g_up, 1);
}
static void cb_down(void *u, uint32_t node, uint64_t session, bool left, const char *why)
{
    (void)u, (void)session, (void)left;
    fprintf(stderr, "node_down(%u): %s\n", node, why);
    atomic_fetch_add(&g_down, 1);
}

/* ---- the scripted node 0 ---------------------------------------------------- */
static int read_full(int fd, void *p, size_t n, int ms)
{
    uint8_t *b = p;
    while (n) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        if (poll(&pf, 1, ms) <= 0)
            return -ETIMEDOUT;
        ssize_t r = recv(fd, b, n, 0);
        if (r == 0)
            return -EPIPE; /* the peer closed the connection */
        if (r < 0)
            return -errno;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The next frame of `want` type (heartbeats and MEMBERS skipped). */
static int read_frame(int fd, uint32_t want, void *buf, uint32_t cap, uint32_t *len)
{
    for (;;) {
        uint32_t h[2];
        int rc = read_full(fd, h, sizeof h, 3000);
        if (rc)
            return rc;
        uint8_t tmp[4096];
        if (h[1] > sizeof tmp)
            return -EMSGSIZE;
        if ((rc = read_full(fd, tmp, h[1], 3000)))
            return rc;
        if (h[0] == F_HB || h[0] == F_MEMBERS)
            continue;
        if (h[0] != want)
            return -EPROTO;
        if (h[1] > cap)
            return -EMSGSIZE;
        memcpy(buf, tmp, h[1]);
        if (len)
            *len = h[1];
        return 0;
    }
}

static void send_frame(int fd, uint32_t type, const void *p, uint32_t len)
{
    uint32_t h[2] = { type, len };
    assert_int_equal(send(fd, h, sizeof h, MSG_NOSIGNAL), (ssize_t)sizeof h);
    if (len)
        assert_int_equal(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

static uint64_t mac_for(uint64_t chal, uint32_t prover)
{
    static const uint8_t k1[16] = "axon-cookie-key1", k2[16] = "axon-cookie-key2";
    uint8_t key[16], buf[16];
    uint64_t h1 = ax_siphash24(k1, COOKIE, strlen(COOKIE));
    uint64_t h2 = ax_siphash24(k2, COOKIE, strlen(COOKIE));
    memcpy(key, &h1, 8);
    memcpy(key + 8, &h2, 8);
    memcpy(buf, &chal, 8);
    memcpy(buf + 8, &prover, 4);
    memcpy(buf + 12, "AXA1", 4);
    return ax_siphash24(key, buf, sizeof buf);
}

/* Node 0's HELLO on fd, after reading node 1's; returns node 1's challenge. */
static uint64_t hello_exchange(int fd, const char *listen, uint64_t chal)
{
    hello_t peer, h;
    uint32_t len;
    assert_int_equal(read_frame(fd, F_HELLO, &peer, sizeof peer, &len), 0);
    assert_int_equal(len, sizeof peer);
    assert_int_equal(peer.node, 1);
    memset(&h, 0, sizeof h);
    memcpy(h.magic, "AXONCTL", 8);
    h.version = AX_WIRE_VERSION;
    h.order = 0x01020304u;
    h.node = 0;
    h.inc_tag = 1;
    h.nonce = 0xA0A0A0A0A0A0A0A0ull; /* one incarnation on both connections */
    h.challenge = chal;
    h.nworkers = 1;
    snprintf(h.listen, sizeof h.listen, "%s", listen);
    send_frame(fd, F_HELLO, &h, sizeof h);
    return peer.challenge;
}

static bool still_open(int fd, int ms)
{
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    double end = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    end = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6 + ms;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double now = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
        if (now >= end)
            return true;
        if (poll(&pf, 1, (int)(end - now) + 1) <= 0)
            return true;
        uint8_t b[512];
        ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN))
            return false; /* closed by node 1 */
        /* heartbeats: keep reading */
    }
}

static void simultaneous_dial_keeps_the_used_connection(void **state)
{
    (void)state;
    /* node 0's listener */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    char l0[AX_CTL_LISTEN_MAX];
    snprintf(l0, sizeof l0, "127.0.0.1:%u", ntohs(sa.sin_port));

    /* node 1, real */
    char a1 = 'w';
    void *addr[1] = { &a1 };
    size_t alen[1] = { 1 };
    ax_ctl_opts_t o = { .node = 1, .inc_tag = 2, .nonce = 0xB1B1, .cookie = COOKIE,
                        .listen = "127.0.0.1:0", .peers = l0, .heartbeat_ms = 100,
                        .timeout_ms = 5000, .wire_version = AX_WIRE_VERSION, .nworkers = 1,
                        .addr = addr, .alen = alen, .node_known = cb_known, .node_up = cb_up,
                        .node_down = cb_down };
    ax_ctl_t *c;
    char err[256];
    assert_int_equal(ax_ctl_create(&o, &c, err, sizeof err), 0);
    char l1[AX_CTL_LISTEN_MAX];
    ax_ctl_listen_addr(c, l1, sizeof l1);
    assert_int_equal(ax_ctl_start(c), 0);

    /* Y: node 1 dials node 0; node 0 goes as far as reading READY. */
    int y = accept(lfd, NULL, NULL);
    assert_true(y >= 0);
    uint64_t chal1 = hello_exchange(y, l0, 0x1111);
    uint64_t mac;
    assert_int_equal(read_frame(y, F_AUTH, &mac, sizeof mac, NULL), 0);
    assert_true(mac == mac_for(0x1111, 1));
    mac = mac_for(chal1, 0);
    send_frame(y, F_AUTH, &mac, sizeof mac);
    uint8_t buf[256];
    assert_int_equal(read_frame(y, F_ADDRS, buf, sizeof buf, NULL), 0);
    uint8_t addrs[4 + 4 + 1] = { 1, 0, 0, 0, 1, 0, 0, 0, 'z' };
    send_frame(y, F_ADDRS, addrs, sizeof addrs);
    assert_int_equal(read_frame(y, F_READY, buf, sizeof buf, NULL), 0);
    assert_int_equal(atomic_load(&g_known), 1);

    /* X: node 0 dials node 1 with the same incarnation's HELLO. */
    struct sockaddr_in sb = { .sin_family = AF_INET };
    char host[64];
    snprintf(host, sizeof host, "%s", l1);
    *strrchr(host, ':') = 0;
    inet_pton(AF_INET, host, &sb.sin_addr);
    sb.sin_port = htons((uint16_t)atoi(strrchr(l1, ':') + 1));
    int x = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(x, (struct sockaddr *)&sb, sizeof sb), 0);
    hello_exchange(x, l0, 0x2222);

    /* Node 0 uses Y: node 1 must not close it. */
    assert_true(still_open(y, 500));
    /* Node 0, the lower id, keeps Y: it drops X and finishes Y. */
    close(x);
    send_frame(y, F_READY, NULL, 0);
    for (int i = 0; i < 300 && atomic_load(&g_up) < 1; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&g_up), 1);
    assert_true(still_open(y, 300));
    assert_true(ax_ctl_node_is_up(c, 0));
    assert_int_equal(atomic_load(&g_down), 0);

    close(y);
    for (int i = 0; i < 300 && atomic_load(&g_down) < 1; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&g_down), 1); /* now it is gone, once */
    ax_ctl_destroy(c);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simultaneous_dial_keeps_the_used_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
