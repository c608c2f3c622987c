/* tests/cluster/test_cluster_shm_freeze.c - a node frozen (SIGSTOP) or
 * killed (SIGKILL) halfway through a UCX shared-memory send must not wedge
 * the survivors (docs/cluster.md, Failure, "A node frozen in a
 * shared-memory send").
 *
 * UCX 1.13's sysv/posix transports write an active message into the
 * receiving UCP worker's one receive FIFO: the sender claims an element,
 * packs into it, then sets its owner bit; the receiver reads strictly in
 * order.  This test stops a sender exactly between the claim and the owner
 * bit, every run: a scripted node 0 (a process of its own, control frames by
 * hand through ctl_script.h, its own UCP worker) joins real node 1 and sends
 * it an active message whose data has a UCP generic datatype; UCX calls the
 * datatype's pack callback from inside uct_mm_ep_am_common_send, after the
 * claim, and the callback stops (or kills) its own process there.  It first
 * checks from its backtrace that it is inside UCX's shared-memory send, and
 * exits with status 3 if not (so a change of transport or protocol fails the
 * test instead of testing nothing).
 *
 * The cluster: real node 1 (this process, one worker) and real node 2 (a
 * child process), exchanging ping-pongs over shared memory the whole time,
 * and node 1 monitoring an actor of node 0.  After node 0 froze, node 1
 * must get DOWN (unreachable) for it, and the ping-pong must go on: 1000
 * more round trips.  With one UCP worker per axon worker shared by all peer
 * nodes (before the fix) node 2's messages land behind node 0's unpublished
 * element in node 1's FIFO and are never read: the ping-pong stalls ("pongs
 * stalled").  The children are forked before this process makes any UCX
 * object or thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <execinfo.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ucp/api/ucp.h>

#include "axon/axon.h"
#include "axon/cluster.h"
#include "axon/failure.h"
#include "cluster/control.h"
#include "ctl_script.h"

static const char COOKIE[] = "shm-freeze-test-cookie";


enum { T_PING = 1, T_PONG, T_START, T_WATCH };
/* A node-0 reference (node 0, incarnation tag 1, worker 0, generation 1,
 * slot 0: docs/cluster.md "References"): the monitored actor. */
static const ax_ref_t REF0 = (1ull << 52) | (1ull << 24);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- node 2 (child process): answers pings ---- */

static void on_pong(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == T_PING)
        ax_send(ctx, ax_sender(ctx), T_PONG, m->payload.data, 8);
}

static ax_engine_t *real_node(uint32_t id)
{
    ax_config_t c;
    ax_config_init(&c);
    c.workers = 1;
    c.oversubscribe = true;
    c.unpinned = true;
    c.arena_bytes = 32u << 20;
    c.max_actors = 64;
    c.watchdog_ms = AX_WATCHDOG_OFF;
    c.cluster_node_id = id;
    snprintf(c.cluster_listen, sizeof c.cluster_listen, "127.0.0.1:0");
    snprintf(c.cluster_cookie, sizeof c.cluster_cookie, "%s", COOKIE);
    c.cluster_heartbeat_ms = 100;
    c.cluster_timeout_ms = 1500;
    ax_engine_t *eng = NULL;
    if (ax_engine_create(&c, &eng) != 0)
        return NULL;
    return eng;
}

/* Node 2: start, write its listen address to `out`, register "pong", run
 * until `in` closes, stop cleanly. */
static int node2_main(int in, int out)
{
    ax_engine_t *eng = real_node(2);
    if (!eng)
        return 2;
    ax_ref_t pong;
    ax_spawn_opts_t so = { .size = sizeof so, .where = AX_ON_WORKER, .worker = 0 };
    if (ax_engine_spawn(eng, on_pong, 8, &so, &pong) || ax_cluster_register(eng, "pong", pong) ||
        ax_engine_start(eng))
        return 2;
    char l[AX_CTL_LISTEN_MAX] = "";
    if (ax_cluster_listen_address(eng, l, sizeof l) < 0 || write(out, l, sizeof l) != sizeof l)
        return 2;
    char b;
    while (read(in, &b, 1) > 0) {
    }
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
    return 0;
}

/* ---- node 0 (child process): joins node 1 by hand, then freezes ---- */

static int g_how; /* SIGSTOP or SIGKILL */
static int g_bt_ok = -1;

static void *gen_start(void *context, const void *buffer, size_t count)
{
    (void)context, (void)count;
    return (void *)buffer;
}
static size_t gen_packed_size(void *state)
{
    (void)state;
    return sizeof(ax_msg_t);
}
/* Called by UCX inside the shared-memory send, after it claimed the FIFO
 * element and before it sets the owner bit: stop or die right here. */
static size_t gen_pack(void *state, size_t offset, void *dest, size_t max_length)
{
    (void)offset;
    void *bt[64];
    int n = backtrace(bt, 64);
    char **sym = backtrace_symbols(bt, n);
    int ok = 0;
    for (int i = 0; sym && i < n; i++) {
        fprintf(stderr, "node 0 pack: %s\n", sym[i]);
        if (strstr(sym[i], "uct_mm_ep_am_bcopy") || strstr(sym[i], "uct_mm_ep_am_common_send"))
            ok = 1;
    }
    g_bt_ok = ok;
    if (!ok) {
        fprintf(stderr, "node 0: the pack callback is not inside UCX's shared-memory send "
                        "(uct_mm_ep_am_bcopy): the test cannot place the freeze\n");
        _exit(3);
    }
    size_t len = max_length < sizeof(ax_msg_t) ? max_length : sizeof(ax_msg_t);
    memcpy(dest, state, len);
    raise(g_how); /* SIGSTOP: frozen until the test kills it; SIGKILL: dead */
    return len;
}
static ucs_status_t gen_unpack(void *state, size_t offset, const void *src, size_t length)
{
    (void)state, (void)offset, (void)src, (void)length;
    return UCS_ERR_UNSUPPORTED;
}
static void gen_finish(void *state) { (void)state; }

static int g_probes[64];
static uint32_t g_nprobes;
static ucs_status_t on_am0(void *arg, const void *header, size_t hlen, void *data, size_t len,
                           const ucp_am_recv_param_t *param)
{
    (void)arg, (void)data, (void)len, (void)param;
    wire_hdr_t h;
    if (hlen >= sizeof h) {
        memcpy(&h, header, sizeof h);
        if (h.kind == KIND_PROBE && g_nprobes < 64)
            g_probes[g_nprobes++] = h.src_worker; /* answered from the loop */
    }
    return UCS_OK;
}

static void send0(ucp_worker_h uw, ucp_ep_h ep, const wire_hdr_t *h, const void *data, size_t len)
{
    ucp_request_param_t prm = { .op_attr_mask = 0 };
    ucs_status_ptr_t r = ucp_am_send_nbx(ep, AM_ID, h, sizeof *h, data, len, &prm);
    if (UCS_PTR_IS_ERR(r))
        _exit(4);
    if (r) {
        double t0 = now_s();
        while (ucp_request_check_status(r) == UCS_INPROGRESS && now_s() - t0 < 10)
            ucp_worker_progress(uw);
        if (ucp_request_check_status(r) != UCS_OK)
            _exit(4);
        ucp_request_free(r);
    }
}

static int node0_main(int in)
{
    char l1[AX_CTL_LISTEN_MAX];
    if (read(in, l1, sizeof l1) != sizeof l1)
        return 2;
    ucp_params_t up = { .field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_AM };
    ucp_config_t *ucfg;
    ucp_context_h uctx;
    ucp_worker_h uw;
    if (ucp_config_read(NULL, NULL, &ucfg) != UCS_OK || ucp_init(&up, ucfg, &uctx) != UCS_OK)
        return 2;
    ucp_config_release(ucfg);
    ucp_worker_params_t wp = { .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                               .thread_mode = UCS_THREAD_MODE_SINGLE };
    if (ucp_worker_create(uctx, &wp, &uw) != UCS_OK)
        return 2;
    ucp_am_handler_param_t hp = { .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                                UCP_AM_HANDLER_PARAM_FIELD_CB,
                                  .id = AM_ID, .cb = on_am0 };
    ucp_address_t *my_addr;
    size_t my_alen;
    if (ucp_worker_set_am_recv_handler(uw, &hp) != UCS_OK ||
        ucp_worker_get_address(uw, &my_addr, &my_alen) != UCS_OK)
        return 2;

    /* Join node 1 by hand (as test_cluster_forge does). */
    int fd = ctl_dial(l1);
    if (fd < 0)
        return 2;
    const uint64_t my_chal = 0x77AA55AA0F0F4321ull;
    uint64_t chal1 = hello_exchange_as(fd, 1, 0, 0xF0F0, 1, "", my_chal);
    uint64_t session = my_chal ^ chal1 ? my_chal ^ chal1 : 1; /* cluster/control.c on_hello */
    uint64_t mac;
    if (read_frame(fd, F_AUTH, &mac, sizeof mac, NULL) != 0)
        return 2;
    mac = mac_for(COOKIE, chal1, 0);
    send_frame(fd, F_AUTH, &mac, sizeof mac);
    uint8_t buf[4096];
    uint32_t len;
    if (read_frame(fd, F_ADDRS, buf, sizeof buf, &len) != 0)
        return 2;
    uint8_t *addrs = malloc(8 + my_alen);
    uint32_t one = 1, l = (uint32_t)my_alen;
    memcpy(addrs, &one, 4);
    memcpy(addrs + 4, &l, 4);
    memcpy(addrs + 8, my_addr, my_alen);
    send_frame(fd, F_ADDRS, addrs, (uint32_t)(8 + my_alen));
    free(addrs);
    if (read_frame(fd, F_READY, buf + 2048, 2048, NULL) != 0)
        return 2;
    send_frame(fd, F_READY, NULL, 0);
    ucp_ep_params_t ep_p = { .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                                           UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
                             .address = (const ucp_address_t *)(buf + 8),
                             .err_mode = UCP_ERR_HANDLING_MODE_PEER };
    ucp_ep_h ep;
    if (ucp_ep_create(uw, &ep_p, &ep) != UCS_OK)
        return 2;

    /* Answer node 1's wiring probes (so it reports node 0 up), keep the
     * heartbeat, until the test says go. */
    uint64_t seq = 0;
    double last_hb = 0;
    for (;;) {
        ucp_worker_progress(uw);
        while (g_nprobes) {
            wire_hdr_t h = { .magic = WIRE_MAGIC, .version = AX_WIRE_VERSION,
                             .kind = KIND_PROBE_ACK, .src_node = 0, .src_worker = 0,
                             .dst_worker = (uint16_t)g_probes[--g_nprobes], .session = session };
            send0(uw, ep, &h, NULL, 0);
        }
        if (now_s() - last_hb > 0.05) {
            send_frame(fd, F_HB, NULL, 0);
            last_hb = now_s();
        }
        struct pollfd pf[2] = { { .fd = in, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
        if (poll(pf, 2, 1) > 0) {
            if (pf[1].revents) { /* node 1's frames: heartbeats, MEMBERS */
                uint8_t junk[4096];
                if (recv(fd, junk, sizeof junk, MSG_DONTWAIT) == 0)
                    return 2;
            }
            if (pf[0].revents)
                break;
        }
    }
    /* An ordinary batch first (an actor of node 1 that does not exist: a
     * dead letter there), so the shared-memory lane is wired and used. */
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = ((uint64_t)1 << 56) | ((uint64_t)15 << 52); /* node 1, a tag it does not have */
    m.from = REF0;
    m.type = T_PING;
    m.len = 8;
    wire_hdr_t h = { .magic = WIRE_MAGIC, .version = AX_WIRE_VERSION, .kind = KIND_BATCH,
                     .src_node = 0, .src_worker = 0, .dst_worker = 0, .count = 1,
                     .session = session, .seq = seq++ };
    send0(uw, ep, &h, &m, sizeof m);
    for (int i = 0; i < 1000; i++)
        ucp_worker_progress(uw);
    if (getenv("AXON_DEBUG_CLUSTER"))
        ucp_ep_print_info(ep, stderr);
    /* The next one through the generic datatype: the pack callback freezes
     * this process inside the send. */
    ucp_generic_dt_ops_t ops = { .start_pack = gen_start, .start_unpack = NULL,
                                 .packed_size = gen_packed_size, .pack = gen_pack,
                                 .unpack = gen_unpack, .finish = gen_finish };
    ucp_datatype_t dt;
    if (ucp_dt_create_generic(&ops, NULL, &dt) != UCS_OK)
        return 2;
    h.seq = seq++;
    ucp_request_param_t prm = { .op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE, .datatype = dt };
    ucs_status_ptr_t r = ucp_am_send_nbx(ep, AM_ID, &h, sizeof h, &m, 1, &prm);
    for (int i = 0; i < 100000 && g_bt_ok < 0; i++)
        ucp_worker_progress(uw);
    (void)r;
    fprintf(stderr, "node 0: the pack callback was never called\n");
    return 5;
}

/* ---- node 1 (this process) ---- */

static _Atomic uint64_t g_pongs, g_downs, g_down_kind;

static void on_pinger(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    ax_ref_t *peer = state;
    if (m->type == T_START) {
        memcpy(peer, m->payload.data, sizeof *peer);
        for (int i = 0; i < 4; i++) /* four in flight */
            ax_send(ctx, *peer, T_PING, NULL, 0);
    } else if (m->type == T_PONG) {
        atomic_fetch_add(&g_pongs, 1);
        ax_send(ctx, *peer, T_PING, NULL, 0);
    }
}

static void on_watcher(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == T_WATCH) {
        uint64_t id;
        assert_int_equal(ax_monitor(ctx, REF0, &id), 0);
    } else if (m->type == AX_TYPE_DOWN) {
        ax_down_t d;
        ax_down_decode(m, &d);
        atomic_store(&g_down_kind, d.reason.kind);
        atomic_fetch_add(&g_downs, 1);
    }
}

static void freeze_scenario(int how)
{
    atomic_store(&g_pongs, 0);
    atomic_store(&g_downs, 0);
    g_how = how;
    /* Shared memory between the nodes (as the engine sets it, before any
     * process makes its UCP context). */
    setenv("UCX_SYSV_ERROR_HANDLING", "y", 0);
    setenv("UCX_POSIX_ERROR_HANDLING", "y", 0);
    int to2[2], from2[2], to0[2];
    assert_int_equal(pipe(to2), 0);
    assert_int_equal(pipe(from2), 0);
    assert_int_equal(pipe(to0), 0);
    fflush(NULL);
    pid_t p2 = fork();
    assert_true(p2 >= 0);
    if (p2 == 0) {
        close(to2[1]), close(from2[0]), close(to0[1]), close(to0[0]);
        _exit(node2_main(to2[0], from2[1]));
    }
    pid_t p0 = fork();
    assert_true(p0 >= 0);
    if (p0 == 0) {
        close(to2[1]), close(to2[0]), close(from2[0]), close(from2[1]), close(to0[1]);
        _exit(node0_main(to0[0]));
    }
    close(to2[0]), close(from2[1]), close(to0[0]);

    ax_engine_t *eng = real_node(1);
    assert_non_null(eng);
    ax_ref_t pinger, watcher;
    ax_spawn_opts_t so = { .size = sizeof so, .where = AX_ON_WORKER, .worker = 0 };
    assert_int_equal(ax_engine_spawn(eng, on_pinger, sizeof(ax_ref_t), &so, &pinger), 0);
    assert_int_equal(ax_engine_spawn(eng, on_watcher, 8, &so, &watcher), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    char l1[AX_CTL_LISTEN_MAX] = "", l2[AX_CTL_LISTEN_MAX];
    assert_int_equal(read(from2[0], l2, sizeof l2), (ssize_t)sizeof l2);
    assert_int_equal(ax_cluster_add_peer(eng, l2), 0);
    assert_int_equal(ax_cluster_wait_nodes(eng, 1, 20000), 0);
    ax_ref_t pong = AX_REF_NONE;
    double t0 = now_s();
    while ((pong = ax_cluster_whereis(eng, "pong")) == AX_REF_NONE && now_s() - t0 < 20)
        usleep(10000);
    assert_true(pong != AX_REF_NONE);
    assert_int_equal(ax_engine_send(eng, pinger, T_START, &pong, sizeof pong), 0);

    /* node 0 joins, answers the wiring, node 1 watches its actor */
    assert_int_equal(ax_cluster_listen_address(eng, l1, sizeof l1), 0);
    assert_int_equal(write(to0[1], l1, sizeof l1), (ssize_t)sizeof l1);
    t0 = now_s();
    while (!ax_cluster_node_up(eng, 0) && now_s() - t0 < 20)
        usleep(10000);
    assert_true(ax_cluster_node_up(eng, 0));
    assert_int_equal(ax_engine_send(eng, watcher, T_WATCH, NULL, 0), 0);
    t0 = now_s();
    while (atomic_load(&g_pongs) < 1000 && now_s() - t0 < 30)
        usleep(1000);
    assert_true(atomic_load(&g_pongs) >= 1000);

    /* go: node 0 sends, freezes (or dies) inside the send */
    assert_int_equal(write(to0[1], "g", 1), 1);
    int st = 0;
    pid_t got = 0;
    t0 = now_s();
    while ((got = waitpid(p0, &st, WNOHANG | WUNTRACED)) == 0 && now_s() - t0 < 20)
        usleep(1000);
    assert_int_equal(got, p0);
    if (how == SIGSTOP)
        assert_true(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    else
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    uint64_t at_freeze = atomic_load(&g_pongs);
    double t_freeze = now_s();

    /* DOWN for node 0's actor, and the ping-pong with node 2 goes on */
    while ((atomic_load(&g_downs) == 0 || atomic_load(&g_pongs) < at_freeze + 1000) &&
           now_s() - t_freeze < 30)
        usleep(1000);
    uint64_t pongs = atomic_load(&g_pongs);
    printf("node 0 %s in its send: DOWN %llu (kind %llu) after %.2f s; pongs %llu at the freeze, "
           "%llu now\n", how == SIGSTOP ? "stopped" : "killed",
           (unsigned long long)atomic_load(&g_downs), (unsigned long long)atomic_load(&g_down_kind),
           now_s() - t_freeze, (unsigned long long)at_freeze, (unsigned long long)pongs);
    if (pongs < at_freeze + 1000)
        fprintf(stderr, "pongs stalled: %llu at the freeze, %llu 30 s later: node 1 no longer "
                        "reads node 2's messages\n", (unsigned long long)at_freeze,
                (unsigned long long)pongs);
    if (how == SIGSTOP) {
        kill(p0, SIGKILL);
        waitpid(p0, &st, 0);
    }
    close(to0[1]);
    close(to2[1]); /* node 2 stops */
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
    t0 = now_s();
    while ((got = waitpid(p2, &st, WNOHANG)) == 0 && now_s() - t0 < 20)
        usleep(10000);
    if (got == 0) {
        kill(p2, SIGKILL);
        waitpid(p2, &st, 0);
    }
    close(from2[0]);
    assert_true(pongs >= at_freeze + 1000);
    assert_int_equal(atomic_load(&g_downs), 1);
    assert_int_equal(atomic_load(&g_down_kind), AX_REASON_UNREACHABLE);
    assert_true(got == p2 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void node_stopped_in_shm_send(void **state)
{
    (void)state;
    freeze_scenario(SIGSTOP);
}

static void node_killed_in_shm_send(void **state)
{
    (void)state;
    freeze_scenario(SIGKILL);
}

/* One scenario per process (`stop` or `kill`): the node children must be
 * forked before this process has made any UCX object or thread. */
int main(int argc, char **argv)
{
    const struct CMUnitTest stop[] = { cmocka_unit_test(node_stopped_in_shm_send) };
    const struct CMUnitTest kill9[] = { cmocka_unit_test(node_killed_in_shm_send) };
    if (argc == 2 && !strcmp(argv[1], "stop"))
        return cmocka_run_group_tests(stop, NULL, NULL);
    if (argc == 2 && !strcmp(argv[1], "kill"))
        return cmocka_run_group_tests(kill9, NULL, NULL);
    fprintf(stderr, "usage: %s stop|kill\n", argv[0]);
    return 2;
}
