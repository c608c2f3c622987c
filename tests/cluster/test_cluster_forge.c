/* tests/cluster/test_cluster_forge.c - what a node refuses on arrival
 * (engine/cluster_glue.c rec_ok; docs/cluster.md, "What may cross").
 *
 * A real node (node 1, one worker, a recorder actor) joins a scripted node 0
 * that speaks the control protocol by hand (ctl_script.h) and the data path
 * through its own UCP worker, so it can send what no correct node sends:
 * active messages whose records carry a request, a MONITOR or a DEMONITOR
 * from AX_REF_NONE.  On the real node such a message would name one of its
 * own outside callers' futures (their ids mean nothing across nodes).  Five
 * batches in channel order: an ordinary message, the three forged ones, an
 * ordinary message.  When the last arrives, the first two ordinary ones
 * must have been delivered and nothing else, and wire_errors must have
 * grown by exactly 3 (one per refused record: without the check each of
 * them is delivered or accepted and the count stays lower).  Then node 0
 * leaves with a LEAVE frame: node 1 counts a leave, not a node down.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ucp/api/ucp.h>

#include "axon/axon.h"
#include "axon/cluster.h"
#include "cluster/control.h"
#include "ctl_script.h"

static const char COOKIE[] = "forge-test-cookie";

/* Engine-internal failure messages (engine/engine_internal.h). */
#define SYS_MONITOR (AX_TYPE_SYSTEM + 0x10)
#define SYS_DEMONITOR (AX_TYPE_SYSTEM + 0x11)

enum { T_OK = 1, T_ASK = 2 };
static _Atomic uint64_t g_ok_sum, g_ok_n, g_other;

static void on_recorder(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx, (void)state;
    if (m->type == T_OK && !(m->flags & AX_MSG_F_REQUEST)) {
        atomic_fetch_add(&g_ok_sum, m->payload.u64[0]);
        atomic_fetch_add(&g_ok_n, 1);
    } else {
        fprintf(stderr, "recorder: got type %#x flags %#x from %#llx\n", m->type, m->flags,
                (unsigned long long)m->from);
        atomic_fetch_add(&g_other, 1);
    }
}

static ucs_status_t on_am_ignore(void *arg, const void *header, size_t hlen, void *data,
                                 size_t len, const ucp_am_recv_param_t *param)
{
    (void)arg, (void)header, (void)hlen, (void)data, (void)len, (void)param;
    return UCS_OK; /* node 1's wiring probes: not answered, not needed here */
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One record in one batch on channel (node 0 worker 0 -> node 1 worker 0). */
static void send_rec(ucp_worker_h uw, ucp_ep_h ep, uint64_t session, uint64_t seq,
                     const ax_msg_t *rec)
{
    wire_hdr_t h = { .magic = WIRE_MAGIC, .version = AX_WIRE_VERSION, .kind = KIND_BATCH,
                     .src_node = 0, .src_worker = 0, .dst_worker = 0, .count = 1,
                     .session = session, .seq = seq };
    ucp_request_param_t prm = { .op_attr_mask = 0 };
    ucs_status_ptr_t r = ucp_am_send_nbx(ep, AM_ID, &h, sizeof h, rec, sizeof *rec, &prm);
    assert_false(UCS_PTR_IS_ERR(r));
    if (r) {
        double t0 = now_s();
        while (ucp_request_check_status(r) == UCS_INPROGRESS && now_s() - t0 < 10)
            ucp_worker_progress(uw);
        assert_int_equal(ucp_request_check_status(r), UCS_OK);
        ucp_request_free(r);
    }
}

static void forged_records_without_sender_are_refused(void **state)
{
    (void)state;
    /* node 1, real */
    ax_config_t c;
    ax_config_init(&c);
    c.workers = 1;
    c.oversubscribe = true;
    c.arena_bytes = 16u << 20;
    c.max_actors = 64;
    c.watchdog_ms = AX_WATCHDOG_OFF;
    c.cluster_node_id = 1;
    snprintf(c.cluster_listen, sizeof c.cluster_listen, "127.0.0.1:0");
    snprintf(c.cluster_cookie, sizeof c.cluster_cookie, "%s", COOKIE);
    c.cluster_heartbeat_ms = 100;
    c.cluster_timeout_ms = 5000;
    ax_engine_t *eng;
    assert_int_equal(ax_engine_create(&c, &eng), 0);
    ax_ref_t rec_ref;
    ax_spawn_opts_t so = { .size = sizeof so, .where = AX_ON_WORKER, .worker = 0 };
    assert_int_equal(ax_engine_spawn(eng, on_recorder, 8, &so, &rec_ref), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    char l1[AX_CTL_LISTEN_MAX];
    assert_int_equal(ax_cluster_listen_address(eng, l1, sizeof l1), 0);

    /* node 0's UCP worker (after the engine's create: its UCX settings hold) */
    ucp_params_t up = { .field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_AM };
    ucp_config_t *ucfg;
    ucp_context_h uctx;
    ucp_worker_h uw;
    assert_int_equal(ucp_config_read(NULL, NULL, &ucfg), UCS_OK);
    assert_int_equal(ucp_init(&up, ucfg, &uctx), UCS_OK);
    ucp_config_release(ucfg);
    ucp_worker_params_t wp = { .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                               .thread_mode = UCS_THREAD_MODE_SINGLE };
    assert_int_equal(ucp_worker_create(uctx, &wp, &uw), UCS_OK);
    ucp_am_handler_param_t hp = { .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                                UCP_AM_HANDLER_PARAM_FIELD_CB,
                                  .id = AM_ID, .cb = on_am_ignore };
    assert_int_equal(ucp_worker_set_am_recv_handler(uw, &hp), UCS_OK);
    ucp_address_t *my_addr;
    size_t my_alen;
    assert_int_equal(ucp_worker_get_address(uw, &my_addr, &my_alen), UCS_OK);

    /* node 0 dials node 1 and joins by hand */
    int fd = ctl_dial(l1);
    assert_true(fd >= 0);
    const uint64_t my_chal = 0x5151AAAA0F0F1234ull;
    uint64_t chal1 = hello_exchange_as(fd, 1, 0, 0xC0C0, 1, "", my_chal);
    uint64_t session = my_chal ^ chal1 ? my_chal ^ chal1 : 1; /* cluster/control.c on_hello */
    uint64_t mac;
    assert_int_equal(read_frame(fd, F_AUTH, &mac, sizeof mac, NULL), 0);
    assert_true(mac == mac_for(COOKIE, my_chal, 1));
    mac = mac_for(COOKIE, chal1, 0);
    send_frame(fd, F_AUTH, &mac, sizeof mac);
    uint8_t buf[4096];
    uint32_t len;
    assert_int_equal(read_frame(fd, F_ADDRS, buf, sizeof buf, &len), 0);
    uint32_t nw, alen1;
    memcpy(&nw, buf, 4);
    memcpy(&alen1, buf + 4, 4);
    assert_int_equal(nw, 1);
    assert_true(8 + (size_t)alen1 <= len);
    uint8_t *addrs = malloc(8 + my_alen);
    assert_non_null(addrs);
    uint32_t one = 1, l = (uint32_t)my_alen;
    memcpy(addrs, &one, 4);
    memcpy(addrs + 4, &l, 4);
    memcpy(addrs + 8, my_addr, my_alen);
    send_frame(fd, F_ADDRS, addrs, (uint32_t)(8 + my_alen));
    free(addrs);
    assert_int_equal(read_frame(fd, F_READY, buf, sizeof buf, NULL), 0);
    send_frame(fd, F_READY, NULL, 0);

    /* node 0's endpoint to node 1's worker 0 */
    ucp_ep_params_t ep_p = { .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                                           UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
                             .address = (const ucp_address_t *)(buf + 8),
                             .err_mode = UCP_ERR_HANDLING_MODE_PEER };
    ucp_ep_h ep;
    assert_int_equal(ucp_ep_create(uw, &ep_p, &ep), UCS_OK);

    ax_cluster_stats_t s0, s1;
    ax_cluster_get_stats(eng, &s0);
    /* A node-0 reference (node 0, incarnation tag 1, worker 0, generation 1,
     * slot 0: docs/cluster.md "References") as the sender of the ordinary
     * messages. */
    const ax_ref_t from0 = (1ull << 52) | (1ull << 24);
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = rec_ref;
    m.from = from0;
    m.type = T_OK;
    m.len = 8;
    m.payload.u64[0] = 1;
    send_rec(uw, ep, session, 0, &m);
    /* A request with no sender: its reply would go to a future of node 1's. */
    m.from = AX_REF_NONE;
    m.type = T_ASK;
    m.flags = AX_MSG_F_REQUEST;
    m.len = 16;
    m.payload.u64[0] = 0;
    m.payload.u64[1] = 77; /* the request id: its last word */
    send_rec(uw, ep, session, 1, &m);
    /* MONITOR and DEMONITOR with no sender (the watcher would be a future). */
    m.flags = 0;
    m.type = SYS_MONITOR;
    m.len = 8;
    m.payload.u64[0] = 5;
    send_rec(uw, ep, session, 2, &m);
    m.type = SYS_DEMONITOR;
    send_rec(uw, ep, session, 3, &m);
    /* Another ordinary one: when it is in, everything before it was handled
     * (the channel is ordered). */
    m.from = from0;
    m.type = T_OK;
    m.len = 8;
    m.payload.u64[0] = 2;
    send_rec(uw, ep, session, 4, &m);
    double t0 = now_s();
    while (atomic_load(&g_ok_n) < 2 && now_s() - t0 < 20)
        ucp_worker_progress(uw);
    usleep(100000); /* anything wrongly delivered has had its turn too */
    for (int i = 0; i < 100; i++)
        ucp_worker_progress(uw);
    ax_cluster_get_stats(eng, &s1);
    printf("forged: delivered %llu ordinary (sum %llu), %llu others; wire_errors +%llu\n",
           (unsigned long long)atomic_load(&g_ok_n), (unsigned long long)atomic_load(&g_ok_sum),
           (unsigned long long)atomic_load(&g_other),
           (unsigned long long)(s1.wire_errors - s0.wire_errors));
    assert_int_equal(atomic_load(&g_ok_n), 2);
    assert_int_equal(atomic_load(&g_ok_sum), 3);
    assert_int_equal(atomic_load(&g_other), 0);
    assert_int_equal(s1.wire_errors - s0.wire_errors, 3);
    assert_int_equal(s1.msgs_received - s0.msgs_received, 2);

    /* node 0 leaves in order: node 1 counts a leave and closes. */
    send_frame(fd, F_LEAVE, NULL, 0);
    t0 = now_s();
    int closed = 0;
    while (!closed && now_s() - t0 < 10) {
        uint8_t b[512];
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        if (poll(&pf, 1, 100) > 0) {
            ssize_t r = recv(fd, b, sizeof b, 0);
            closed = r == 0 || (r < 0 && errno != EAGAIN);
        }
        ucp_worker_progress(uw);
    }
    assert_true(closed);
    ax_cluster_get_stats(eng, &s1);
    assert_int_equal(s1.node_leaves, 1);
    assert_int_equal(s1.node_downs, 0);
    assert_false(ax_cluster_node_up(eng, 0));

    ucp_request_param_t cp = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = UCP_EP_CLOSE_FLAG_FORCE };
    ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &cp);
    if (r && !UCS_PTR_IS_ERR(r)) {
        while (ucp_request_check_status(r) == UCS_INPROGRESS)
            ucp_worker_progress(uw);
        ucp_request_free(r);
    }
    close(fd);
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
    ucp_worker_release_address(uw, my_addr);
    ucp_worker_destroy(uw);
    ucp_cleanup(uctx);
}

/* The cap on per-peer UCP workers (engine/cluster_glue.c addrs_for): a
 * node whose open-file limit cannot hold one more set of them refuses the
 * joining node with an ERROR that says what to change, and stays alive. */
static void join_refused_over_the_fd_cap(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    c.workers = 1;
    c.oversubscribe = true;
    c.arena_bytes = 16u << 20;
    c.max_actors = 64;
    c.watchdog_ms = AX_WATCHDOG_OFF;
    c.cluster_node_id = 1;
    snprintf(c.cluster_listen, sizeof c.cluster_listen, "127.0.0.1:0");
    snprintf(c.cluster_cookie, sizeof c.cluster_cookie, "%s", COOKIE);
    ax_engine_t *eng;
    assert_int_equal(ax_engine_create(&c, &eng), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    char l1[AX_CTL_LISTEN_MAX];
    assert_int_equal(ax_cluster_listen_address(eng, l1, sizeof l1), 0);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 200; /* below one UCP worker's share plus the spare (12 + 256) */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fd = ctl_dial(l1);
    assert_true(fd >= 0);
    const uint64_t my_chal = 0x1234ABCD5678EF01ull;
    uint64_t chal1 = hello_exchange_as(fd, 1, 0, 0xCAFE, 1, "", my_chal);
    uint64_t mac;
    assert_int_equal(read_frame(fd, F_AUTH, &mac, sizeof mac, NULL), 0);
    mac = mac_for(COOKIE, chal1, 0);
    send_frame(fd, F_AUTH, &mac, sizeof mac);
    char msg[1024] = "";
    uint32_t len = 0;
    assert_int_equal(read_frame(fd, F_ERROR, msg, sizeof msg - 1, &len), 0);
    msg[len] = 0;
    printf("refused: %s\n", msg);
    assert_non_null(strstr(msg, "open-file limit"));
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    ax_cluster_stats_t s;
    ax_cluster_get_stats(eng, &s);
    assert_int_equal(s.joins, 0);
    close(fd);
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forged_records_without_sender_are_refused),
        cmocka_unit_test(join_refused_over_the_fd_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
