/* tests/cluster/ucx_joinkill.c - UCX alone (no axon): does a process that
 * keeps a UCP worker survive peers killed with SIGKILL while they connect to
 * it?  A manual reproducer for docs/cluster.md, Failure ("A node killed
 * while it joins"), built but not in the ctest suite: with UCX 1.13 over
 * TCP it aborts the survivor every few hundred kills.
 *
 *   ucx_joinkill ROUNDS MAX_MS MIN_MS addr|cm
 *
 * A server process keeps one UCP worker (active messages, endpoints with
 * UCP_ERR_HANDLING_MODE_PEER, closed forcibly on error).  A launcher forks
 * ROUNDS clients, one at a time, and kills each MIN_MS .. MAX_MS after its
 * fork.  Modes:
 *   addr  worker-address exchange, as axon does: the client creates an
 *         endpoint to the server's worker address and sends an active
 *         message; the server creates one to the client's address (both
 *         through a shared page) and sends one.
 *   cm    connection manager: the server listens (ucp_listener), the client
 *         connects with UCP_EP_PARAMS_FLAGS_CLIENT_SERVER, the server
 *         accepts and sends on the accepted endpoint.
 * Exit 0 when the server survived every kill, 1 when it died (its UCX
 * assertion is on stderr).  Example:
 *   UCX_TLS=tcp build/tests/ucx_joinkill 800 150 30 addr
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
    size_t server_alen, client_alen;
    unsigned char server_addr[ADDR_MAX], client_addr[ADDR_MAX];
} shared_t;

static shared_t *g_sh;
static ucp_worker_h g_w;
static long g_made, g_failed;

static void on_err(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    (void)arg, (void)st;
    g_failed++;
    ucp_request_param_t cp = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = UCP_EP_CLOSE_FLAG_FORCE };
    ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &cp);
    if (r && !UCS_PTR_IS_ERR(r))
        ucp_request_free(r);
}

static ucs_status_t on_am(void *arg, const void *h, size_t hl, void *d, size_t l,
                          const ucp_am_recv_param_t *p)
{
    (void)arg, (void)h, (void)hl, (void)d, (void)l, (void)p;
    return UCS_OK;
}

static void send_one(ucp_ep_h ep)
{
    static char buf[64];
    ucp_request_param_t prm = { .op_attr_mask = 0 };
    ucs_status_ptr_t r = ucp_am_send_nbx(ep, AM_ID, buf, 8, buf, sizeof buf, &prm);
    if (r && !UCS_PTR_IS_ERR(r))
        ucp_request_free(r);
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
        g_made++;
        send_one(ep);
    }
}

static void server_loop(void)
{
    int seen = 0;
    for (;;) {
        ucp_worker_progress(g_w);
        if (g_sh->client_seq != seen) { /* addr: a client published its address */
            seen = g_sh->client_seq;
            __sync_synchronize();
            unsigned char ca[ADDR_MAX];
            memcpy(ca, g_sh->client_addr, g_sh->client_alen);
            ucp_ep_h ep = ep_to_addr(ca);
            if (ep) {
                g_made++;
                send_one(ep);
            }
        }
        if (g_sh->stop) {
            fprintf(stderr, "server: %ld endpoints made, %ld failed\n", g_made, g_failed);
            exit(0);
        }
    }
}

static void server(bool cm)
{
    setup();
    if (cm) {
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        ucp_listener_params_t lp = {
            .field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
            .sockaddr = { .addr = (struct sockaddr *)&sa, .addrlen = sizeof sa },
            .conn_handler = { .cb = on_conn } };
        ucp_listener_h l;
        ucp_listener_attr_t la = { .field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR };
        if (ucp_listener_create(g_w, &lp, &l) != UCS_OK || ucp_listener_query(l, &la) != UCS_OK)
            exit(4);
        g_sh->port = ntohs(((struct sockaddr_in *)&la.sockaddr)->sin_port);
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

static void client(bool cm, int seq)
{
    setup();
    ucp_ep_h ep;
    if (cm) {
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                  .sin_port = htons((uint16_t)g_sh->port) };
        ucp_ep_params_t p = { .field_mask = UCP_EP_PARAM_FIELD_FLAGS |
                                            UCP_EP_PARAM_FIELD_SOCK_ADDR |
                                            UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                                            UCP_EP_PARAM_FIELD_ERR_HANDLER,
                              .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
                              .sockaddr = { .addr = (struct sockaddr *)&sa,
                                            .addrlen = sizeof sa },
                              .err_mode = UCP_ERR_HANDLING_MODE_PEER,
                              .err_handler = { .cb = on_err } };
        if (ucp_ep_create(g_w, &p, &ep) != UCS_OK)
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
    send_one(ep);
    for (;;)
        ucp_worker_progress(g_w); /* until killed */
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[4], "addr") && strcmp(argv[4], "cm"))) {
        fprintf(stderr, "usage: ucx_joinkill ROUNDS MAX_MS MIN_MS addr|cm\n");
        return 2;
    }
    int rounds = atoi(argv[1]), maxms = atoi(argv[2]), minms = atoi(argv[3]);
    bool cm = !strcmp(argv[4], "cm");
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
        fflush(stdout);
        pid_t c = fork();
        if (c == 0)
            client(cm, i + 1);
        usleep((useconds_t)ms * 1000u);
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
        int st;
        if (waitpid(s, &st, WNOHANG) == s) {
            printf("ucx_joinkill %s: the server died in round %d (client killed %d ms after its "
                   "fork): status %#x\n", argv[4], i, ms, st);
            return 1;
        }
    }
    g_sh->stop = 1;
    int st;
    waitpid(s, &st, 0);
    printf("ucx_joinkill %s: the server survived %d kills (status %#x)\n", argv[4], rounds, st);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
