/* tests/unit/test_api_edges.c - sizes, counts and times at the edges of
 * their types, through the public API (issue 10, items 4, 5 and 8): every
 * one that would wrap is refused or fails cleanly, the largest accepted
 * ones work, and an engine stopped with I/O in flight gives its buffers
 * back (LeakSanitizer checks that in the ASan build).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/io.h"

#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

enum { GO = 1, SENTINEL, HUGE_ONCE, HUGE_EVERY };

static struct {
    _Atomic int done, huge_fired, failed_line;
    _Atomic int64_t edge_read_res;
    int fd;
} g;

/* cmocka's asserts longjmp out of the calling thread: inside a behaviour
 * (a worker thread) record the first failing line instead. */
#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            int zero = 0;                                                                         \
            atomic_compare_exchange_strong(&g.failed_line, &zero, __LINE__);                      \
            fprintf(stderr, "test_api_edges: check failed at line %d: %s\n", __LINE__, #cond);  \
        }                                                                                         \
    } while (0)

typedef struct {
    uint64_t once_id, every_id;
    int pending;
} st_t;

static void edges(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    st_t *s = state;
    switch (m->type) {
    case GO: {
        /* item 5: delays and periods that wrapped ms * 10^6 */
        CHECK(ax_timer_after(ctx, UINT64_MAX, HUGE_ONCE, NULL, 0, NULL) == -EINVAL);
        CHECK(ax_timer_after(ctx, AX_TIMER_MAX_MS + 1, HUGE_ONCE, NULL, 0, NULL) == -EINVAL);
        CHECK(ax_timer_after(ctx, UINT64_MAX / 1000000 + 1, HUGE_ONCE, NULL, 0, NULL) == -EINVAL);
        CHECK(ax_timer_every(ctx, ((uint64_t)1 << 58) + 1, HUGE_EVERY, NULL, 0, NULL) == -EINVAL);
        CHECK(ax_timer_every(ctx, UINT64_MAX, HUGE_EVERY, NULL, 0, NULL) == -EINVAL);
        CHECK(ax_timer_every(ctx, AX_TIMER_MAX_MS + 1, HUGE_EVERY, NULL, 0, NULL) == -EINVAL);
        /* the largest accepted ones are armed and do not fire */
        CHECK(ax_timer_after(ctx, AX_TIMER_MAX_MS, HUGE_ONCE, NULL, 0, &s->once_id) == 0);
        CHECK(ax_timer_every(ctx, AX_TIMER_MAX_MS, HUGE_EVERY, NULL, 0, &s->every_id) == 0);
        CHECK(ax_timer_after(ctx, 200, SENTINEL, NULL, 0, NULL) == 0);
        CHECK(ax_timer_after(ctx, 1, SENTINEL, NULL, AX_INLINE_MAX + 1, NULL) == -EINVAL);
        CHECK(ax_timer_after(ctx, 1, SENTINEL, "x", SIZE_MAX, NULL) == -EINVAL);

        /* item 4: blob sizes whose header arithmetic wrapped */
        static const size_t bad[] = {SIZE_MAX,      SIZE_MAX - 1,  SIZE_MAX - 8,
                                     SIZE_MAX - 15, SIZE_MAX - 16, SIZE_MAX - 63,
                                     SIZE_MAX - 64, SIZE_MAX - 79, (size_t)PTRDIFF_MAX,
                                     (size_t)PTRDIFF_MAX + 1, 0};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            CHECK(ax_blob_alloc(ctx, bad[i]) == NULL);
#ifndef AXON_NO_DEBUG_CHECKS
        {   /* debug builds: a len beyond the blob is refused */
            void *b64 = ax_blob_alloc(ctx, 64), *b8k = ax_blob_alloc(ctx, 8192);
            CHECK(ax_send_blob(ctx, ax_self(ctx), SENTINEL, b64, 65) == -EINVAL);
            CHECK(ax_send_blob(ctx, ax_self(ctx), SENTINEL, b64, SIZE_MAX) == -EINVAL);
            CHECK(ax_send_blob(ctx, ax_self(ctx), SENTINEL, b8k, 8193) == -EINVAL);
            ax_blob_free(ctx, b64);
            ax_blob_free(ctx, b8k);
        }
#endif
        static const size_t good[] = {1, 4096, 4097, 65536, ((size_t)1 << 20) + 1};
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
            unsigned char *b = ax_blob_alloc(ctx, good[i]);
            CHECK(b != NULL);
            if (b) {
                b[0] = 1;
                b[good[i] - 1] = 2;
                ax_blob_free(ctx, b);
            }
        }

        /* item 4: I/O lengths and offsets past what one call can carry */
        char byte = 'x';
        size_t lens[] = {0, AX_IO_MAX_BYTES + 1, (size_t)INT32_MAX + 1, UINT32_MAX,
                         (size_t)UINT32_MAX + 1, SIZE_MAX};
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            CHECK(ax_file_read(ctx, g.fd, lens[i], 0, 0) == -EINVAL);
            CHECK(ax_file_write(ctx, g.fd, &byte, lens[i], 0, 0) == -EINVAL);
            CHECK(ax_tcp_send(ctx, 1, &byte, lens[i], 0) == -EINVAL);
        }
        CHECK(ax_file_read(ctx, g.fd, 1, UINT64_MAX, 0) == -EINVAL); /* "file position" */
        CHECK(ax_file_read(ctx, g.fd, 1, (uint64_t)INT64_MAX, 0) == -EINVAL);
        CHECK(ax_file_write(ctx, g.fd, &byte, 2, (uint64_t)INT64_MAX - 1, 0) == -EINVAL);
        /* the last offset accepted reaches the kernel and answers as a message */
        CHECK(ax_file_read(ctx, g.fd, 1, (uint64_t)INT64_MAX - 1, 5) == 0);
        s->pending = 2; /* sentinel, edge read */
        break;
    }
    case AX_IO_READ:
        atomic_store(&g.edge_read_res, ax_io_event(m).res);
        s->pending--;
        break;
    case SENTINEL:
        s->pending--;
        break;
    case HUGE_ONCE:
    case HUGE_EVERY:
        atomic_fetch_add(&g.huge_fired, 1);
        break;
    default:
        break;
    }
    if (m->type != GO && s->pending == 0) {
        CHECK(ax_timer_cancel(ctx, s->once_id) == 0);   /* still armed */
        CHECK(ax_timer_cancel(ctx, s->every_id) == 0);
        atomic_store(&g.done, 1);
    }
}

static void sizes_and_times_at_the_edges_are_refused_not_wrapped(void **state)
{
    (void)state;
    char path[] = "/tmp/axon_test_api_edges_XXXXXX";
    g.fd = mkstemp(path);
    assert_true(g.fd >= 0);
    unlink(path);
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = 1;
    ax_engine_t *eng;
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    ax_ref_t a;
    assert_int_equal(ax_engine_spawn(eng, edges, sizeof(st_t), NULL, &a), 0);
    assert_int_equal(ax_engine_send(eng, a, GO, NULL, 0), 0);
    uint64_t t0 = now_ns();
    while (!atomic_load(&g.done) && now_ns() - t0 < 20000000000ull)
        sleep_us(1000);
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
    close(g.fd);
    assert_int_equal(atomic_load(&g.failed_line), 0);
    assert_int_equal(atomic_load(&g.done), 1);
    assert_int_equal(atomic_load(&g.huge_fired), 0);
    /* reading at INT64_MAX - 1 of a short file: 0 bytes (end of file) or a
     * kernel error, delivered as an event either way */
    assert_true(atomic_load(&g.edge_read_res) <= 0);
}

/* ---- item 8: I/O in flight at stop ------------------------------------------------ */

#define BIG_SEND ((size_t)16 << 20) /* more than loopback's socket buffers hold */
#define BIG_READ ((size_t)64 << 10) /* above the arena's 4 KiB classes */

static struct {
    _Atomic int ready, failed;
    int pipe_rd;
    ax_conn_t listener;
} p8;

static void pending_io(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == GO) {
        if (ax_file_read(ctx, p8.pipe_rd, BIG_READ, 0, 1) != 0 ||  /* nothing to read: pends */
            ax_timer_after(ctx, 100000, SENTINEL, NULL, 0, NULL) != 0 ||
            ax_tcp_listen(ctx, "127.0.0.1", 0, 0, 2, &p8.listener) != 0 ||
            ax_tcp_connect(ctx, "127.0.0.1", (uint16_t)ax_tcp_port(ctx, p8.listener), 3) != 0)
            atomic_store(&p8.failed, 1);
    } else if (m->type == AX_IO_CONNECTED) {
        /* the accepted side never reads: the sends stay in flight, one
         * copied into the send pool, one (larger than the pool) into a
         * blob of its own */
        char *buf = calloc(1, BIG_SEND);
        if (!buf || ax_io_event(m).res < 0 ||
            ax_tcp_send(ctx, ax_io_event(m).handle, buf, 100000, 4) != 0 ||
            ax_tcp_send(ctx, ax_io_event(m).handle, buf, BIG_SEND, 4) != 0)
            atomic_store(&p8.failed, 1);
        free(buf);
        atomic_store(&p8.ready, 1);
    }
}

static void stop_with_reads_and_sends_in_flight_frees_their_buffers(void **state)
{
    (void)state;
    for (int cycle = 0; cycle < 3; cycle++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        p8.pipe_rd = pfd[0];
        atomic_store(&p8.ready, 0);
        ax_config_t cfg;
        ax_config_init(&cfg);
        cfg.workers = 1;
        ax_engine_t *eng;
        assert_int_equal(ax_engine_create(&cfg, &eng), 0);
        assert_int_equal(ax_engine_start(eng), 0);
        ax_ref_t a;
        assert_int_equal(ax_engine_spawn(eng, pending_io, 8, NULL, &a), 0);
        assert_int_equal(ax_engine_send(eng, a, GO, NULL, 0), 0);
        uint64_t t0 = now_ns();
        while (!atomic_load(&p8.ready) && !atomic_load(&p8.failed) &&
               now_ns() - t0 < 20000000000ull)
            sleep_us(1000);
        sleep_us(20000); /* let the send go partly out and stall */
        ax_engine_stop(eng);
        assert_int_equal(ax_engine_wait(eng), 0);
        ax_engine_destroy(eng);
        close(pfd[0]);
        close(pfd[1]);
        assert_int_equal(atomic_load(&p8.failed), 0);
        assert_int_equal(atomic_load(&p8.ready), 1);
    }
    /* Before the fix LeakSanitizer (ASan build) reported the 64 KiB read
     * buffers and 16 MiB send copies of every cycle at exit. */
}

/* ---- sends through the send pool and its fallback ------------------------------- */

#define POOL_SENDS 24
static struct {
    _Atomic int port, sent, bad_sent, failed;
    ax_conn_t listener;
    char *src;
    size_t len[POOL_SENDS], total;
} ps;

static void pool_sender(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == GO) {
        if (ax_tcp_listen(ctx, "127.0.0.1", 0, 0, 1, &ps.listener) != 0)
            atomic_store(&ps.failed, __LINE__);
        atomic_store(&ps.port, ax_tcp_port(ctx, ps.listener));
    } else if (m->type == AX_IO_ACCEPTED) {
        /* every size class of the copy: the arena (<= 4 KiB), the pool
         * (64 KiB here: 4 blocks), and a blob when the pool is short */
        size_t off = 0;
        for (int i = 0; i < POOL_SENDS; i++) {
            if (ax_tcp_send(ctx, ax_io_event(m).handle, ps.src + off, ps.len[i], (uint64_t)i) != 0)
                atomic_store(&ps.failed, __LINE__);
            off += ps.len[i];
        }
        memset(ps.src, 0, ps.total); /* the copies are the engine's now */
    } else if (m->type == AX_IO_SENT) {
        ax_io_event_t e = ax_io_event(m);
        if (e.user >= POOL_SENDS || e.res != (int64_t)ps.len[e.user] ||
            (int)e.user != atomic_load(&ps.sent))
            atomic_store(&ps.bad_sent, 1); /* wrong length, or out of order */
        atomic_fetch_add(&ps.sent, 1);
    }
}

/* ax_tcp_send with a send pool of 4 blocks: sends that fit go to the pool,
 * others (larger than it, or when it is short of blocks) to a blob, small
 * ones to the arena; the client gets every byte, in call order, and every
 * AX_IO_SENT in order with its length. */
static void large_sends_keep_their_order_through_the_pool_and_its_fallback(void **state)
{
    (void)state;
    static const size_t lens[POOL_SENDS] = {
        1000, 40000, 40000, 100000, 5000, 4096, 4097, 65536, 65537, 16384, 16385, 300000,
        70000, 10, 30000, 30000, 30000, 200000, 4097, 50000, 1, 65536, 123457, 8192};
    ps.total = 0;
    for (int i = 0; i < POOL_SENDS; i++)
        ps.total += ps.len[i] = lens[i];
    ps.src = malloc(ps.total);
    char *want = malloc(ps.total), *got = malloc(ps.total);
    assert_non_null(ps.src);
    assert_non_null(want);
    assert_non_null(got);
    for (size_t i = 0; i < ps.total; i++)
        want[i] = ps.src[i] = (char)(i * 29 + i / 7919);
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = 1;
    cfg.io_send_pool_bytes = 64 * 1024;
    ax_engine_t *eng;
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    ax_ref_t a;
    assert_int_equal(ax_engine_spawn(eng, pool_sender, 8, NULL, &a), 0);
    assert_int_equal(ax_engine_send(eng, a, GO, NULL, 0), 0);
    uint64_t t0 = now_ns();
    while (!atomic_load(&ps.port) && now_ns() - t0 < 20000000000ull)
        sleep_us(1000);
    assert_true(atomic_load(&ps.port) > 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096; /* the kernel takes the sends in pieces */
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atomic_load(&ps.port))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t n = 0;
    while (n < ps.total) {
        ssize_t k = read(c, got + n, ps.total - n < 3000 ? ps.total - n : 3000);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    assert_int_equal(n, ps.total);
    assert_memory_equal(got, want, ps.total);
    t0 = now_ns();
    while (atomic_load(&ps.sent) < POOL_SENDS && now_ns() - t0 < 20000000000ull)
        sleep_us(1000);
    assert_int_equal(atomic_load(&ps.sent), POOL_SENDS);
    assert_int_equal(atomic_load(&ps.bad_sent), 0);
    assert_int_equal(atomic_load(&ps.failed), 0);
    close(c);
    ax_engine_stop(eng);
    assert_int_equal(ax_engine_wait(eng), 0);
    ax_engine_destroy(eng);
    free(ps.src);
    free(want);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_and_times_at_the_edges_are_refused_not_wrapped),
        cmocka_unit_test(stop_with_reads_and_sends_in_flight_frees_their_buffers),
        cmocka_unit_test(large_sends_keep_their_order_through_the_pool_and_its_fallback),
    };
    return cmocka_run_group_tests_name("api/edges", tests, NULL, NULL);
}
