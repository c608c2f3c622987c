/* tests/unit/test_api_edges.c - sizes, counts and times at the edges of
 * their types, through the public API (issue 10, item 5): every one that
 * would wrap is refused, and the largest accepted ones work.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

        s->pending = 1; /* sentinel */
        break;
    }
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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_and_times_at_the_edges_are_refused_not_wrapped),
    };
    return cmocka_run_group_tests_name("api/edges", tests, NULL, NULL);
}
