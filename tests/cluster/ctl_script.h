/* tests/cluster/ctl_script.h - a scripted cluster node on raw sockets: the
 * control plane's frames (docs/cluster.md, "Wire format") written and read
 * by hand, so a test can play an exact interleaving (test_ctl_dup) or join
 * a real node and then forge its data (test_cluster_forge).  Include after
 * <cmocka.h>; static functions only (one test program each). */
#ifndef AXON_TESTS_CTL_SCRIPT_H
#define AXON_TESTS_CTL_SCRIPT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/control.h"

enum { F_HELLO = 1, F_AUTH, F_ADDRS, F_READY, F_HB, F_ERROR, F_MEMBERS, F_LEAVE };

typedef struct __attribute__((packed)) hello {
    char magic[8];
    uint32_t version, order, node, inc_tag;
    uint64_t nonce, challenge;
    uint32_t nworkers, pad;
    char listen[AX_CTL_LISTEN_MAX];
} hello_t;

/* A TCP connection to a node's control listener "IPV4:PORT" (the address
 * a real node printed), or -1. */
static int ctl_dial(const char *hostport)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    char host[64];
    snprintf(host, sizeof host, "%s", hostport);
    char *colon = strrchr(host, ':');
    if (!colon)
        return -1;
    *colon = 0;
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

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

/* AUTH's MAC: SipHash of the challenge and the prover's id under the
 * cookie's key (cluster/control.c auth_mac). */
static uint64_t mac_for(const char *cookie, uint64_t chal, uint32_t prover)
{
    static const uint8_t k1[16] = "axon-cookie-key1", k2[16] = "axon-cookie-key2";
    uint8_t key[16], buf[16];
    uint64_t h1 = ax_siphash24(k1, cookie, strlen(cookie));
    uint64_t h2 = ax_siphash24(k2, cookie, strlen(cookie));
    memcpy(key, &h1, 8);
    memcpy(key + 8, &h2, 8);
    memcpy(buf, &chal, 8);
    memcpy(buf + 8, &prover, 4);
    memcpy(buf + 12, "AXA1", 4);
    return ax_siphash24(key, buf, sizeof buf);
}

/* Read the real node's HELLO on fd (it must be node `peer`), then send ours
 * as node `self`; returns the real node's challenge. */
static uint64_t hello_exchange_as(int fd, uint32_t peer, uint32_t self, uint64_t nonce,
                                  uint32_t nworkers, const char *listen, uint64_t chal)
{
    hello_t in, h;
    uint32_t len;
    assert_int_equal(read_frame(fd, F_HELLO, &in, sizeof in, &len), 0);
    assert_int_equal(len, sizeof in);
    assert_int_equal(in.node, peer);
    memset(&h, 0, sizeof h);
    memcpy(h.magic, "AXONCTL", 8);
    h.version = AX_WIRE_VERSION;
    h.order = 0x01020304u;
    h.node = self;
    h.inc_tag = 1;
    h.nonce = nonce;
    h.challenge = chal;
    h.nworkers = nworkers;
    snprintf(h.listen, sizeof h.listen, "%s", listen);
    send_frame(fd, F_HELLO, &h, sizeof h);
    return in.challenge;
}

/* The data path's wire, for a scripted node that also sends on UCX
 * (docs/cluster.md "Data"; engine/cluster_glue.c). */
#define AM_ID 7u
#define WIRE_MAGIC 0x31575841u
#define KIND_BATCH 1u
#define KIND_PROBE 3u
#define KIND_PROBE_ACK 4u
typedef struct wire_hdr {
    uint32_t magic;
    uint16_t version, kind;
    uint16_t src_node, src_worker, dst_worker, pad;
    uint32_t count, pad2;
    uint64_t session, seq;
} wire_hdr_t;
_Static_assert(sizeof(wire_hdr_t) == 40, "the wire header is 40 bytes");

#endif /* AXON_TESTS_CTL_SCRIPT_H */
