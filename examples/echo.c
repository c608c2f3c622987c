/* examples/echo.c - a TCP echo server on axon: one SO_REUSEPORT listener
 * actor per worker, one actor per connection (spawned on the accepting
 * worker), every byte sent back in order.
 *
 *   axon-echo [--port P] [--bind ADDR] [--workers N]     serve until killed
 *   axon-echo --selftest [--mb M] [--conns C]            serve on a free
 *       loopback port, push M MiB (default 10) through C connections
 *       (default 4) from client threads, check every byte, shut down and
 *       check that no fd leaked.  Exit 0 on success.
 *
 * Only the public API (axon/axon.h, axon/io.h) is used.
 */
/* Sockets, threads and nanosleep are POSIX, not ISO C: ask for them, so the
 * example builds with -std=c11 outside this tree. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/io.h"

enum { MSG_LISTEN = 1, MSG_START };

static char bind_addr[64] = "127.0.0.1";
static uint16_t bind_port;
static _Atomic int listen_port;    /* the port the first listener got */
static _Atomic int listeners_up, listen_err;

/* ---- connection actor: echo what arrives ---------------------------------------- */

typedef struct {
    ax_conn_t conn;
    uint64_t in_flight;
    bool ended;
} conn_st_t;

static void maybe_close(ax_ctx_t *ctx, conn_st_t *s)
{
    if (s->ended && s->in_flight == 0 && s->conn) {
        ax_tcp_close(ctx, s->conn, 0);
        s->conn = 0;
    }
}

static void conn_actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    conn_st_t *s = state;
    switch (m->type) {
    case MSG_START:
        s->conn = m->payload.u64[0];
        if (ax_tcp_recv_start(ctx, s->conn, 0) < 0) {
            ax_tcp_close(ctx, s->conn, 0);
            s->conn = 0;
        }
        break;
    case AX_IO_DATA: {
        int rc = ax_tcp_send(ctx, s->conn, ax_msg_data(m), ax_msg_len(m), 0);
        if (rc == 0)
            s->in_flight++;
        break;
    }
    case AX_IO_SENT:
        s->in_flight--;
        if (ax_io_event(m).res < 0)
            s->ended = true;
        maybe_close(ctx, s);
        break;
    case AX_IO_RECV_END:
        s->ended = true;
        maybe_close(ctx, s);
        break;
    case AX_IO_CLOSED:
        ax_stop_self(ctx);
        break;
    default:
        break;
    }
}

/* ---- listener actor ----------------------------------------------------------------- */

static void listener_actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    ax_conn_t *l = state;
    if (m->type == MSG_LISTEN) {
        uint16_t port = (uint16_t)m->payload.u64[0];
        int rc = ax_tcp_listen(ctx, bind_addr, port, 0, 0, l);
        if (rc < 0) {
            fprintf(stderr, "axon-echo: listen on %s:%u failed: %s\n", bind_addr, port,
                    strerror(-rc));
            atomic_store(&listen_err, rc);
        } else {
            int expect = 0;
            atomic_compare_exchange_strong(&listen_port, &expect, ax_tcp_port(ctx, *l));
        }
        atomic_fetch_add(&listeners_up, 1);
    } else if (m->type == AX_IO_ACCEPTED) {
        ax_io_event_t e = ax_io_event(m);
        if (e.res < 0)
            return; /* e.g. -EMFILE: the listener keeps going */
        ax_ref_t c;
        /* the connection belongs to this worker: its actor must live here */
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_SELF};
        if (ax_spawn(ctx, conn_actor, sizeof(conn_st_t), &o, &c) < 0 ||
            ax_send_u64(ctx, c, MSG_START, e.handle) < 0)
            ax_tcp_close(ctx, e.handle, 0);
    }
}

/* ---- engine ---------------------------------------------------------------------------- */

static ax_engine_t *start_engine(uint32_t workers)
{
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = workers;
    ax_engine_t *eng;
    int rc = ax_engine_create(&cfg, &eng);
    if (rc < 0) {
        fprintf(stderr, "axon-echo: engine: %s\n", ax_engine_last_error());
        return NULL;
    }
    uint32_t n = ax_engine_workers(eng);
    if (ax_engine_start(eng) < 0) {
        ax_engine_destroy(eng);
        return NULL;
    }
    /* One listener per worker on the same port (SO_REUSEPORT).  The first
     * one picks the port when 0 was asked, the others follow it. */
    for (uint32_t i = 0; i < n; i++) {
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = i};
        ax_ref_t r;
        if (ax_engine_spawn(eng, listener_actor, sizeof(ax_conn_t), &o, &r) < 0)
            break;
        uint64_t port = i == 0 ? bind_port : (uint64_t)atomic_load(&listen_port);
        ax_engine_send(eng, r, MSG_LISTEN, &port, sizeof port);
        while (atomic_load(&listeners_up) < (int)i + 1)
            nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL); /* 1 ms */
    }
    if (atomic_load(&listen_err)) {
        ax_engine_destroy(eng);
        return NULL;
    }
    return eng;
}

/* ---- self-test client ---------------------------------------------------------------------- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

typedef struct {
    int id;
    size_t bytes;
    int port;
    int ok;
} client_t;

static unsigned char pattern(size_t i, int id) { return (unsigned char)((i * 131 + (size_t)id * 7 + i / 4093) & 0xff); }

static void *client(void *arg)
{
    client_t *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("axon-echo selftest: connect");
        close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* send and receive interleaved, in chunks of varying size, so neither
     * side's socket buffer can deadlock the exchange */
    static _Thread_local unsigned char out[65536], in[65536];
    size_t sent = 0, got = 0;
    c->ok = 1;
    while (got < c->bytes) {
        if (sent < c->bytes && sent - got < 256 * 1024) {
            size_t n = 1 + (sent * 2654435761u) % sizeof out;
            if (n > c->bytes - sent)
                n = c->bytes - sent;
            for (size_t i = 0; i < n; i++)
                out[i] = pattern(sent + i, c->id);
            ssize_t w = send(fd, out, n, 0);
            if (w <= 0) {
                c->ok = 0;
                break;
            }
            sent += (size_t)w;
        }
        ssize_t r = recv(fd, in, sizeof in, sent < c->bytes ? MSG_DONTWAIT : 0);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
            fprintf(stderr, "axon-echo selftest: conn %d: recv ended after %zu of %zu bytes\n",
                    c->id, got, c->bytes);
            c->ok = 0;
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if (in[i] != pattern(got + (size_t)i, c->id)) {
                fprintf(stderr, "axon-echo selftest: conn %d: byte %zu differs\n", c->id,
                        got + (size_t)i);
                c->ok = 0;
                goto out;
            }
        if (r > 0)
            got += (size_t)r;
    }
out:
    close(fd);
    return NULL;
}

static int selftest(size_t mb, int conns)
{
    int before = count_fds();
    bind_port = 0;
    ax_engine_t *eng = start_engine(0);
    if (!eng)
        return 1;
    int port = atomic_load(&listen_port);
    pthread_t th[64];
    client_t cl[64];
    if (conns > 64)
        conns = 64;
    size_t total = mb << 20;
    for (int i = 0; i < conns; i++) {
        cl[i] = (client_t){.id = i, .bytes = total / (size_t)conns, .port = port};
        pthread_create(&th[i], NULL, client, &cl[i]);
    }
    int ok = 1;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        ok &= cl[i].ok;
    }
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
    int after = count_fds();
    printf("axon-echo selftest: %zu MiB over %d connections on port %d: %s; fds before %d, "
           "after %d\n",
           mb, conns, port, ok ? "every byte back in order" : "FAILED", before, after);
    return ok && after == before ? 0 : 1;
}

int main(int argc, char **argv)
{
    bool self = false;
    size_t mb = 10;
    int conns = 4;
    uint32_t workers = 0;
    bind_port = 7777;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--selftest"))
            self = true;
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--conns") && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            bind_port = (uint16_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bind") && i + 1 < argc)
            snprintf(bind_addr, sizeof bind_addr, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            workers = (uint32_t)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: axon-echo [--port P] [--bind ADDR] [--workers N] | "
                            "--selftest [--mb M] [--conns C]\n");
            return 2;
        }
    }
    if (self)
        return selftest(mb, conns);
    ax_engine_t *eng = start_engine(workers);
    if (!eng)
        return 1;
    printf("axon-echo: listening on %s:%d with %u workers\n", bind_addr, atomic_load(&listen_port),
           ax_engine_workers(eng));
    fflush(stdout);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
    return 0;
}
