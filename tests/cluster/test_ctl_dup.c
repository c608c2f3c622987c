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
#include <pthread.h>
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
#include "ctl_script.h"

static const char COOKIE[] = "dup-test-cookie";

static _Atomic int g_known, g_up, g_down, g_left;

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
    (void)u, (void)session;
    fprintf(stderr, "node_down(%u, left %d): %s\n", node, (int)left, why);
    atomic_fetch_add(&g_down, 1);
    atomic_fetch_add(&g_left, left);
}

/* ---- the scripted node 0 ---------------------------------------------------- */
/* Node 0's HELLO on fd, after reading node 1's; returns node 1's challenge. */
static uint64_t hello_exchange(int fd, const char *listen, uint64_t chal)
{
    /* one incarnation on both connections */
    return hello_exchange_as(fd, 1, 0, 0xA0A0A0A0A0A0A0A0ull, 1, listen, chal);
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
    assert_true(mac == mac_for(COOKIE, 0x1111, 1));
    mac = mac_for(COOKIE, chal1, 0);
    send_frame(y, F_AUTH, &mac, sizeof mac);
    uint8_t buf[256];
    assert_int_equal(read_frame(y, F_ADDRS, buf, sizeof buf, NULL), 0);
    uint8_t addrs[4 + 4 + 1] = { 1, 0, 0, 0, 1, 0, 0, 0, 'z' };
    send_frame(y, F_ADDRS, addrs, sizeof addrs);
    assert_int_equal(read_frame(y, F_READY, buf, sizeof buf, NULL), 0);
    assert_int_equal(atomic_load(&g_known), 1);

    /* X: node 0 dials node 1 with the same incarnation's HELLO. */
    int x = ctl_dial(l1);
    assert_true(x >= 0);
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

/* ax_ctl_leave (a clean stop): node 1 sends LEAVE on its up connection and
 * returns once node 0 closed it; its own node_down says left, and it
 * counts no node down. */
static ax_ctl_t *g_leaver;
static _Atomic int g_leave_rc = 1;
static void *leave_thread(void *arg)
{
    (void)arg;
    atomic_store(&g_leave_rc, ax_ctl_leave(g_leaver, 5000));
    return NULL;
}

static void leave_sends_leave_and_waits_for_the_close(void **state)
{
    (void)state;
    atomic_store(&g_known, 0);
    atomic_store(&g_up, 0);
    atomic_store(&g_down, 0);
    atomic_store(&g_left, 0);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    char l0[AX_CTL_LISTEN_MAX];
    snprintf(l0, sizeof l0, "127.0.0.1:%u", ntohs(sa.sin_port));
    char a1 = 'w';
    void *addr[1] = { &a1 };
    size_t alen[1] = { 1 };
    ax_ctl_opts_t o = { .node = 1, .inc_tag = 2, .nonce = 0xB2B2, .cookie = COOKIE,
                        .listen = "127.0.0.1:0", .peers = l0, .heartbeat_ms = 100,
                        .timeout_ms = 30000, .wire_version = AX_WIRE_VERSION, .nworkers = 1,
                        .addr = addr, .alen = alen, .node_known = cb_known, .node_up = cb_up,
                        .node_down = cb_down };
    char err[256];
    assert_int_equal(ax_ctl_create(&o, &g_leaver, err, sizeof err), 0);
    assert_int_equal(ax_ctl_start(g_leaver), 0);
    int y = accept(lfd, NULL, NULL);
    assert_true(y >= 0);
    uint64_t chal1 = hello_exchange(y, l0, 0x3333);
    uint64_t mac;
    assert_int_equal(read_frame(y, F_AUTH, &mac, sizeof mac, NULL), 0);
    mac = mac_for(COOKIE, chal1, 0);
    send_frame(y, F_AUTH, &mac, sizeof mac);
    uint8_t buf[256];
    assert_int_equal(read_frame(y, F_ADDRS, buf, sizeof buf, NULL), 0);
    uint8_t addrs[4 + 4 + 1] = { 1, 0, 0, 0, 1, 0, 0, 0, 'z' };
    send_frame(y, F_ADDRS, addrs, sizeof addrs);
    assert_int_equal(read_frame(y, F_READY, buf, sizeof buf, NULL), 0);
    send_frame(y, F_READY, NULL, 0);
    for (int i = 0; i < 300 && !ax_ctl_node_is_up(g_leaver, 0); i++)
        usleep(10000);
    assert_true(ax_ctl_node_is_up(g_leaver, 0));

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, leave_thread, NULL), 0);
    assert_int_equal(read_frame(y, F_LEAVE, buf, sizeof buf, NULL), 0);
    assert_int_equal(atomic_load(&g_leave_rc), 1); /* still waiting for our close */
    close(y);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&g_leave_rc), 0);
    assert_int_equal(atomic_load(&g_down), 1);
    assert_int_equal(atomic_load(&g_left), 1);
    ax_ctl_stats_t st;
    ax_ctl_get_stats(g_leaver, &st);
    assert_int_equal(st.downs, 0);
    /* It no longer dials its peer, nor listens. */
    struct pollfd pf = { .fd = lfd, .events = POLLIN };
    assert_int_equal(poll(&pf, 1, 500), 0);
    ax_ctl_destroy(g_leaver);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simultaneous_dial_keeps_the_used_connection),
        cmocka_unit_test(leave_sends_leave_and_waits_for_the_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
