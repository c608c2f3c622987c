/* tests/cluster/ucx_joinkill.c - UCX alone (no axon): does a process that
 * keeps a UCP worker survive peers killed with SIGKILL while they connect to
 * it?  A manual reproducer for docs/cluster.md, Failure ("A node killed
 * while it joins"), built but not in the ctest suite: with UCX 1.13 over
 * TCP it aborts the survivor (the server) in every mode below, sooner or
 * later (the runs are in docs/cluster.md).
 *
 *   ucx_joinkill ROUNDS MAX_MS MIN_MS MODE [pub]
 *
 * A server process keeps one UCP worker (active messages, endpoints with
 * UCP_ERR_HANDLING_MODE_PEER, closed forcibly on error).  A launcher forks
 * ROUNDS clients, one at a time, and kills each MIN_MS .. MAX_MS after its
 * fork; with pub, MIN_MS .. MAX_MS after the client published its address
 * or port (to the microsecond), so the kills land in the connection.
 * Modes (what the server does):
 *   addr   worker-address exchange, as axon does: the client creates an
 *          endpoint to the server's worker address and sends an active
 *          message; the server creates one to the client's address (both
 *          through a shared page) and sends one.
 *   defer  addr, but the error callback only records the endpoint and the
 *          server loop closes it after ucp_worker_progress returned.
 *   noforce defer, and the close is a flush close, not UCP_EP_CLOSE_FLAG_FORCE.
 *   flush  addr, but the server's first send waits for ucp_ep_flush_nbx on
 *          the fresh endpoint to complete.
 *   reply  the server makes no endpoint: the client sends with
 *          UCP_AM_SEND_FLAG_REPLY and the server answers on the reply
 *          endpoint (the one UCX made for the client's wireup request).
 *   cm     connection manager: the server listens (ucp_listener), the client
 *          connects with UCP_EP_PARAMS_FLAGS_CLIENT_SERVER, the server
 *          accepts and sends on the accepted endpoint.
 *   cmrev  connection manager the other way round: each client listens and
 *          publishes its port, the server connects to it as the CM client
 *          and sends; the client accepts and sends.
 * Exit 0 when the server survived every kill, 1 when it died (its UCX
 * assertion is on stderr).  Examples:
 *   UCX_TLS=tcp build/tests/ucx_joinkill 800 150 30 addr
 *   UCX_TLS=tcp build/tests/ucx_joinkill 800 5 0 addr pub     (aborts in seconds)
 *   UCX_TLS=tcp build/tests/ucx_joinkill 800 150 0 cmrev pub
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ucp/api/ucp.h>

#define AM_ID 7u
#define ADDR_MAX 1024u

/* The page shared by the launcher, the server and the clients. */
typedef struct shared {
    volatile int port;       /* cm: the server's listener port; addr: 1 when ready */
    volatile int stop;       /* the launcher is done */
    volatile int client_seq; /* addr: a new client published its address */
    volatile int client_port; /* cmrev: the client's listener port */
    volatile long made;       /* the server's endpoints so far (reported if it dies) */
    volatile long recvd;      /* active messages the server received from clients */
    size_t server_alen, client_alen;
    unsigned char server_addr[ADDR_MAX], client_addr[ADDR_MAX];
} shared_t;

static shared_t *g_sh;
static ucp_worker_h g_w;
static long g_made, g_failed, g_replies;
static bool g_server; /* this process is the server: it alone counts in g_sh */

enum mode { M_ADDR, M_CM, M_DEFER, M_REPLY, M_FLUSH, M_CMREV, M_NOFORCE };
static enum mode g_mode;

static void close_force(ucp_ep_h ep)
{
    /* noforce: a flush close (UCX cancels what is queued on a failed one) */
    ucp_request_param_t cp = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = g_mode == M_NOFORCE ? 0 : UCP_EP_CLOSE_FLAG_FORCE };
    ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &cp);
    if (r && !UCS_PTR_IS_ERR(r))
        ucp_request_free(r);
}

/* defer: endpoints that failed, closed by the server loop after progress
 * returned (outside any UCX callback), as axon's ep_close_retired does. */
static ucp_ep_h g_retired[4096];
static int g_nretired;

static void on_err(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    (void)arg, (void)st;
    g_failed++;
    bool defer = g_mode == M_DEFER || g_mode == M_NOFORCE;
    if (defer && g_nretired < (int)(sizeof g_retired / sizeof *g_retired))
        g_retired[g_nretired++] = ep;
    else
        close_force(ep);
}

static void send_one_flags(ucp_ep_h ep, uint32_t flags)
{
    static char buf[64];
    ucp_request_param_t prm = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS, .flags = flags };
    ucs_status_ptr_t r = ucp_am_send_nbx(ep, AM_ID, buf, 8, buf, sizeof buf, &prm);
    if (r && !UCS_PTR_IS_ERR(r))
        ucp_request_free(r);
}

static void send_one(ucp_ep_h ep)
{
    send_one_flags(ep, g_mode == M_REPLY ? UCP_AM_SEND_FLAG_REPLY : 0);
}

static ucs_status_t on_am(void *arg, const void *h, size_t hl, void *d, size_t l,
                          const ucp_am_recv_param_t *p)
{
    (void)arg, (void)h, (void)hl, (void)d, (void)l;
    if (g_server)
        g_sh->recvd++;
    /* reply: the server answers on the endpoint UCX made for the client's
     * wireup request (no endpoint of its own to the client). */
    if (g_mode == M_REPLY && (p->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) {
        g_replies++;
        send_one_flags(p->reply_ep, 0);
    }
    return UCS_OK;
}

/* flush: the first send on a fresh endpoint waits for ucp_ep_flush_nbx. */
static void on_flushed(void *req, ucs_status_t st, void *user)
{
    if (st == UCS_OK)
        send_one((ucp_ep_h)user);
    ucp_request_free(req);
}

static void send_first(ucp_ep_h ep)
{
    if (g_mode != M_FLUSH) {
        send_one(ep);
        return;
    }
    ucp_request_param_t prm = { .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                                UCP_OP_ATTR_FIELD_USER_DATA,
                                .cb.send = on_flushed, .user_data = ep };
    ucs_status_ptr_t r = ucp_ep_flush_nbx(ep, &prm);
    if (r == NULL)
        send_one(ep);
}

static void setup(void)
{
    ucp_params_t up = { .field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_AM };
    ucp_config_t *cfg;
    ucp_context_h ctx;
    if (ucp_config_read(NULL, NULL, &cfg) != UCS_OK || ucp_init(&up, cfg, &ctx) != UCS_OK)
        exit(3);
    ucp_config_release(cfg);
    ucp_worker_params_t wp = { .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                               .thread_mode = UCS_THREAD_MODE_SINGLE };
    if (ucp_worker_create(ctx, &wp, &g_w) != UCS_OK)
        exit(3);
    ucp_am_handler_param_t hp = { .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                                UCP_AM_HANDLER_PARAM_FIELD_CB,
                                  .id = AM_ID, .cb = on_am };
    if (ucp_worker_set_am_recv_handler(g_w, &hp) != UCS_OK)
        exit(3);
}

static ucp_ep_h ep_to_addr(const void *addr)
{
    ucp_ep_params_t p = { .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLER,
                          .address = addr,
                          .err_mode = UCP_ERR_HANDLING_MODE_PEER,
                          .err_handler = { .cb = on_err } };
    ucp_ep_h ep;
    return ucp_ep_create(g_w, &p, &ep) == UCS_OK ? ep : NULL;
}

/* cm (client) and cmrev (server): an endpoint to a listener on loopback. */
static ucp_ep_h ep_to_port(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                              .sin_port = htons((uint16_t)port) };
    ucp_ep_params_t p = { .field_mask = UCP_EP_PARAM_FIELD_FLAGS |
                                        UCP_EP_PARAM_FIELD_SOCK_ADDR |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLER,
                          .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
                          .sockaddr = { .addr = (struct sockaddr *)&sa, .addrlen = sizeof sa },
                          .err_mode = UCP_ERR_HANDLING_MODE_PEER,
                          .err_handler = { .cb = on_err } };
    ucp_ep_h ep;
    return ucp_ep_create(g_w, &p, &ep) == UCS_OK ? ep : NULL;
}

static void on_conn(ucp_conn_request_h cr, void *arg)
{
    (void)arg;
    ucp_ep_params_t p = { .field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLER,
                          .conn_request = cr,
                          .err_mode = UCP_ERR_HANDLING_MODE_PEER,
                          .err_handler = { .cb = on_err } };
    ucp_ep_h ep;
    if (ucp_ep_create(g_w, &p, &ep) == UCS_OK) {
        if (++g_made, g_server)
            g_sh->made = g_made;
        send_first(ep);
    }
}

static void server_loop(void)
{
    int seen = 0;
    for (;;) {
        ucp_worker_progress(g_w);
        while (g_nretired) /* defer: outside callbacks */
            close_force(g_retired[--g_nretired]);
        if (g_sh->client_seq != seen) { /* addr: a client published its address */
            seen = g_sh->client_seq;
            __sync_synchronize();
            unsigned char ca[ADDR_MAX];
            memcpy(ca, g_sh->client_addr, g_sh->client_alen);
            ucp_ep_h ep = g_mode == M_REPLY ? NULL
                          : g_mode == M_CMREV ? ep_to_port(g_sh->client_port)
                                              : ep_to_addr(ca);
            if (ep) {
                if (++g_made, g_server)
            g_sh->made = g_made;
                send_first(ep);
            }
        }
        if (g_sh->stop) {
            fprintf(stderr, "server: %ld endpoints made, %ld failed, %ld replies\n", g_made,
                    g_failed, g_replies);
            exit(0);
        }
    }
}

static int listen_lo(void);

static void server(bool cm)
{
    g_server = true;
    setup();
    if (cm) {
        g_sh->port = listen_lo();
    } else {
        ucp_address_t *a;
        size_t al;
        if (ucp_worker_get_address(g_w, &a, &al) != UCS_OK || al > ADDR_MAX)
            exit(4);
        memcpy(g_sh->server_addr, a, al);
        g_sh->server_alen = al;
        __sync_synchronize();
        g_sh->port = 1;
    }
    server_loop();
}

/* A listener on loopback (cm: the server's; cmrev: each client's); its port. */
static int listen_lo(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ucp_listener_params_t lp = {
        .field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
        .sockaddr = { .addr = (struct sockaddr *)&sa, .addrlen = sizeof sa },
        .conn_handler = { .cb = on_conn } };
    ucp_listener_h l;
    ucp_listener_attr_t la = { .field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR };
    if (ucp_listener_create(g_w, &lp, &l) != UCS_OK || ucp_listener_query(l, &la) != UCS_OK)
        exit(4);
    return ntohs(((struct sockaddr_in *)&la.sockaddr)->sin_port);
}

static void client(bool cm, int seq)
{
    setup();
    ucp_ep_h ep = NULL;
    if (g_mode == M_CMREV) {
        /* the survivor connects to us: listen, publish the port */
        g_sh->client_port = listen_lo();
        __sync_synchronize();
        g_sh->client_seq = seq;
    } else if (cm) {
        if (!(ep = ep_to_port(g_sh->port)))
            exit(5);
    } else {
        ucp_address_t *a;
        size_t al;
        if (ucp_worker_get_address(g_w, &a, &al) != UCS_OK || al > ADDR_MAX)
            exit(5);
        memcpy(g_sh->client_addr, a, al);
        g_sh->client_alen = al;
        __sync_synchronize();
        g_sh->client_seq = seq;
        if (!(ep = ep_to_addr(g_sh->server_addr)))
            exit(5);
    }
    if (ep)
        send_one(ep);
    for (;;)
        ucp_worker_progress(g_w); /* until killed */
}

int main(int argc, char **argv)
{
    static const char *const names[] = { "addr", "cm", "defer", "reply", "flush", "cmrev",
                                         "noforce" };
    int mi = -1;
    bool pub = argc == 6 && !strcmp(argv[5], "pub");
    for (int i = 0; (argc == 5 || pub) && i < (int)(sizeof names / sizeof *names); i++)
        if (!strcmp(argv[4], names[i]))
            mi = i;
    if (mi < 0) {
        fprintf(stderr, "usage: ucx_joinkill ROUNDS MAX_MS MIN_MS "
                        "addr|cm|defer|reply|flush|cmrev|noforce [pub]\n");
        return 2;
    }
    g_mode = (enum mode)mi;
    int rounds = atoi(argv[1]), maxms = atoi(argv[2]), minms = atoi(argv[3]);
    bool cm = g_mode == M_CM;
    if (rounds < 1 || minms < 0 || maxms < minms) {
        fprintf(stderr, "ucx_joinkill: need ROUNDS >= 1 and 0 <= MIN_MS <= MAX_MS\n");
        return 2;
    }
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_sh == MAP_FAILED)
        return 1;
    fflush(stdout);
    pid_t s = fork();
    if (s == 0)
        server(cm);
    while (!g_sh->port)
        usleep(1000);
    uint64_t r = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull | 1;
    for (int i = 0; i < rounds; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int ms = minms + (int)(r % (uint64_t)(maxms - minms + 1));
        long us = (long)ms * 1000;
        fflush(stdout);
        pid_t c = fork();
        if (c == 0)
            client(cm, i + 1);
        if (pub && !cm) {
            /* pub: MIN_MS .. MAX_MS (in microseconds here: the same numbers
             * x 1000 spread to the microsecond) after the client published
             * its address or port, so every kill lands in the connection */
            for (int t = 0; g_sh->client_seq != i + 1 && t < 5000; t++)
                usleep(1000);
            us = (long)minms * 1000 + (long)((r >> 20) % ((uint64_t)(maxms - minms) * 1000u + 1));
        }
        usleep((useconds_t)us);
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
        int st;
        if (waitpid(s, &st, WNOHANG) == s) {
            printf("ucx_joinkill %s%s: the server died in round %d (client killed %ld us after its "
                   "%s), %ld endpoints made, %ld messages received: status %#x\n", argv[4],
                   pub ? " pub" : "", i, us, pub ? "publish" : "fork", g_sh->made, g_sh->recvd, st);
            return 1;
        }
    }
    g_sh->stop = 1;
    int st;
    waitpid(s, &st, 0);
    printf("ucx_joinkill %s%s: the server survived %d kills, %ld endpoints made, %ld messages "
           "received (status %#x)\n", argv[4], pub ? " pub" : "", rounds, g_sh->made, g_sh->recvd,
           st);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
