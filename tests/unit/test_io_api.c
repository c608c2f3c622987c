/* tests/unit/test_io_api.c - the actor-facing I/O API (axon/io.h) on a
 * running engine: timers (one-shot, periodic, cancelled) and file I/O with
 * completions arriving as messages, TCP errors as -errno messages, and no
 * fd left behind after the engine is destroyed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/io.h"

#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

enum { GO = 1, ONESHOT, TICK, NEVER };

static struct {
    _Atomic int oneshot, ticks, never, done, file_ok, errors_ok;
    _Atomic uint64_t oneshot_ms, start_ms;
    _Atomic int64_t write_res, read_res, connect_res;
    int fd;
} g;

typedef struct {
    uint64_t every_id;
    int ticks;
    int pending;
} st_t;

static void finish_if_done(st_t *s)
{
    if (s->pending == 0)
        atomic_store(&g.done, 1);
}

static void actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    st_t *s = state;
    switch (m->type) {
    case GO: {
        atomic_store(&g.start_ms, now_ms());
        uint64_t never_id;
        char p[8] = "payload";
        assert_int_equal(ax_timer_after(ctx, 30, ONESHOT, p, sizeof p, NULL), 0);
        assert_int_equal(ax_timer_after(ctx, 20, NEVER, NULL, 0, &never_id), 0);
        assert_int_equal(ax_timer_every(ctx, 10, TICK, NULL, 0, &s->every_id), 0);
        assert_int_equal(ax_timer_cancel(ctx, never_id), 0);
        assert_int_equal(ax_timer_cancel(ctx, never_id), -ENOENT);
        assert_int_equal(ax_timer_after(ctx, 1, AX_TYPE_SYSTEM, NULL, 0, NULL), -EINVAL);
        static const char text[] = "axon file api";
        assert_int_equal(ax_file_write(ctx, g.fd, text, sizeof text, 100, 7), 0);
        assert_int_equal(ax_tcp_connect(ctx, "127.0.0.1", 1, 9), 0); /* port 1: refused */
        assert_int_equal(ax_tcp_send(ctx, 0, "x", 1, 0), -EBADF);
        /* receive pause/resume: checked handles (io/tcp.c tests the rest) */
        assert_int_equal(ax_tcp_recv_pause(ctx, 0), -EBADF);
        assert_int_equal(ax_tcp_recv_resume(ctx, ((ax_conn_t)5 << 32) | 1), -EXDEV);
        ax_conn_t l;
        assert_int_equal(ax_tcp_listen(ctx, "127.0.0.1", 0, 0, 0, &l), 0);
        assert_int_equal(ax_tcp_recv_pause(ctx, l), -EBADF); /* a listener */
        assert_int_equal(ax_tcp_recv_resume(ctx, l), -EBADF);
        assert_int_equal(ax_tcp_close(ctx, l, 0), 0);
        s->pending = 4; /* oneshot, 5 ticks, write+read, connect */
        break;
    }
    case ONESHOT:
        assert_int_equal(ax_msg_len(m), 8);
        assert_string_equal(ax_msg_data(m), "payload");
        atomic_fetch_add(&g.oneshot, 1);
        atomic_store(&g.oneshot_ms, now_ms());
        s->pending--;
        break;
    case NEVER:
        atomic_fetch_add(&g.never, 1);
        break;
    case TICK:
        atomic_fetch_add(&g.ticks, 1);
        if (++s->ticks == 5) {
            assert_int_equal(ax_timer_cancel(ctx, s->every_id), 0);
            s->pending--;
        }
        break;
    case AX_IO_WRITTEN:
        atomic_store(&g.write_res, ax_io_event(m).res);
        assert_int_equal(ax_io_event(m).user, 7);
        assert_int_equal(ax_file_read(ctx, g.fd, 64, 100, 8), 0);
        break;
    case AX_IO_READ:
        atomic_store(&g.read_res, ax_io_event(m).res);
        atomic_store(&g.file_ok, ax_msg_len(m) == 14 && !strcmp(ax_msg_data(m), "axon file api"));
        s->pending--;
        break;
    case AX_IO_CONNECTED:
        atomic_store(&g.connect_res, ax_io_event(m).res);
        s->pending--;
        break;
    default:
        break;
    }
    finish_if_done(s);
}

static void actor_api_timers_files_and_errors_arrive_as_messages(void **state)
{
    (void)state;
    char path[] = "/tmp/axon_test_io_api_XXXXXX";
    g.fd = mkstemp(path);
    assert_true(g.fd >= 0);
    unlink(path);
    int before = count_fds();
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = 1;
    ax_engine_t *eng;
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    ax_ref_t a;
    assert_int_equal(ax_engine_spawn(eng, actor, sizeof(st_t), NULL, &a), 0);
    assert_int_equal(ax_engine_send(eng, a, GO, NULL, 0), 0);
    uint64_t t0 = now_ms();
    while (!atomic_load(&g.done) && now_ms() - t0 < 5000)
        usleep(1000);
    usleep(50 * 1000); /* a cancelled timer would have fired by now */
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
    assert_int_equal(atomic_load(&g.done), 1);
    assert_int_equal(atomic_load(&g.oneshot), 1);
    uint64_t late = atomic_load(&g.oneshot_ms) - atomic_load(&g.start_ms);
    assert_true(late >= 30 && late < 500);
    assert_int_equal(atomic_load(&g.ticks), 5);
    assert_int_equal(atomic_load(&g.never), 0);
    assert_int_equal(atomic_load(&g.write_res), 14);
    assert_int_equal(atomic_load(&g.read_res), 14);
    assert_true(atomic_load(&g.file_ok));
    assert_int_equal(atomic_load(&g.connect_res), -ECONNREFUSED);
    assert_int_equal(count_fds(), before);
    close(g.fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(actor_api_timers_files_and_errors_arrive_as_messages),
    };
    return cmocka_run_group_tests_name("io/actor-api", tests, NULL, NULL);
}
