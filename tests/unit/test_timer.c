/* tests/unit/test_timer.c - io/timer.c: firing order, cancellation (also of
 * timers due in the same expire call), periodic phase, many timers against
 * a reference model, the caller's allocator, and real-clock accuracy with
 * the ring's wait bounded by the next deadline.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/timer.h"
#include "io/uring.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define MAXF 200000
typedef struct {
    ax_timers_t *t;
    uint64_t ids[MAXF], tokens[MAXF], at[MAXF];
    uint32_t n;
    uint64_t now;
    /* optional action from the callback */
    uint64_t cancel_on_token, cancel_id;
    int cancel_rc;
} fired_t;

static void on_fire(void *user, uint64_t id, uint64_t token)
{
    fired_t *f = user;
    if (f->n < MAXF) {
        f->ids[f->n] = id;
        f->tokens[f->n] = token;
        f->at[f->n] = f->now;
        f->n++;
    }
    if (f->cancel_on_token && token == f->cancel_on_token)
        f->cancel_rc = ax_timers_cancel(f->t, f->cancel_id);
}

static fired_t *new_fired(void)
{
    fired_t *f = calloc(1, sizeof *f);
    assert_int_equal(ax_timers_create(NULL, &f->t), 0);
    return f;
}

static void del_fired(fired_t *f)
{
    ax_timers_destroy(f->t);
    free(f);
}

static void timers_fire_in_deadline_order(void **state)
{
    (void)state;
    fired_t *f = new_fired();
    uint64_t id;
    uint64_t d[] = {50, 10, 40, 30, 20, 60, 5};
    for (unsigned i = 0; i < 7; i++)
        assert_int_equal(ax_timers_add(f->t, d[i], 0, d[i], &id), 0);
    assert_int_equal(ax_timers_next_deadline_ns(f->t), 5);
    assert_int_equal(ax_timers_expire(f->t, 4, on_fire, f), 0);
    f->now = 35;
    assert_int_equal(ax_timers_expire(f->t, 35, on_fire, f), 4);
    f->now = 100;
    assert_int_equal(ax_timers_expire(f->t, 100, on_fire, f), 3);
    uint64_t want[] = {5, 10, 20, 30, 40, 50, 60};
    for (unsigned i = 0; i < 7; i++)
        assert_int_equal(f->tokens[i], want[i]);
    assert_int_equal(ax_timers_count(f->t), 0);
    assert_int_equal(ax_timers_next_deadline_ns(f->t), AX_TIMERS_NO_DEADLINE);
    del_fired(f);
}

static void cancelled_timer_never_fires(void **state)
{
    (void)state;
    fired_t *f = new_fired();
    uint64_t a, b, c;
    ax_timers_add(f->t, 10, 0, 1, &a);
    ax_timers_add(f->t, 20, 0, 2, &b);
    ax_timers_add(f->t, 30, 0, 3, &c);
    assert_int_equal(ax_timers_cancel(f->t, b), 0);
    assert_int_equal(ax_timers_cancel(f->t, b), -ENOENT);
    assert_int_equal(ax_timers_cancel(f->t, AX_TIMER_NONE), -ENOENT);
    assert_int_equal(ax_timers_expire(f->t, 100, on_fire, f), 2);
    assert_int_equal(f->tokens[0], 1);
    assert_int_equal(f->tokens[1], 3);
    /* a fired one-shot cannot be cancelled, and its id is not reused */
    assert_int_equal(ax_timers_cancel(f->t, a), -ENOENT);
    uint64_t d;
    ax_timers_add(f->t, 200, 0, 4, &d);
    assert_true(d != a && d != b && d != c);
    assert_int_equal(ax_timers_cancel(f->t, a), -ENOENT);
    assert_int_equal(ax_timers_cancel(f->t, d), 0);
    del_fired(f);
}

static void timer_cancelled_by_an_earlier_callback_in_the_same_turn_does_not_fire(void **state)
{
    (void)state;
    fired_t *f = new_fired();
    uint64_t a, b;
    ax_timers_add(f->t, 10, 0, 1, &a);
    ax_timers_add(f->t, 11, 0, 2, &b);
    f->cancel_on_token = 1;
    f->cancel_id = b;
    assert_int_equal(ax_timers_expire(f->t, 100, on_fire, f), 1); /* both were due */
    assert_int_equal(f->cancel_rc, 0);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->tokens[0], 1);
    del_fired(f);
}

static void periodic_timer_cancelling_itself_stops(void **state)
{
    (void)state;
    fired_t *f = new_fired();
    uint64_t p;
    ax_timers_add(f->t, 10, 10, 9, &p);
    f->cancel_on_token = 9;
    f->cancel_id = p;
    ax_timers_expire(f->t, 10, on_fire, f);
    assert_int_equal(f->cancel_rc, 0);
    ax_timers_expire(f->t, 1000, on_fire, f);
    assert_int_equal(f->n, 1);
    assert_int_equal(ax_timers_count(f->t), 0);
    del_fired(f);
}

static void periodic_timer_keeps_its_phase_despite_late_expiry(void **state)
{
    (void)state;
    fired_t *f = new_fired();
    uint64_t p;
    const uint64_t start = 1000, period = 100;
    ax_timers_add(f->t, start, period, 5, &p);
    /* expire late each time by a varying amount under one period */
    uint64_t late[] = {0, 37, 99, 1, 50, 73};
    for (unsigned k = 0; k < 6; k++) {
        uint64_t due = ax_timers_next_deadline_ns(f->t);
        assert_int_equal(due, start + k * period); /* no accumulated delay */
        f->now = due + late[k];
        assert_int_equal(ax_timers_expire(f->t, f->now, on_fire, f), 1);
    }
    /* a stall of 3.5 periods: one call, missed ticks skipped, phase kept */
    uint64_t due = ax_timers_next_deadline_ns(f->t);
    f->now = due + 350;
    assert_int_equal(ax_timers_expire(f->t, f->now, on_fire, f), 1);
    assert_int_equal(ax_timers_next_deadline_ns(f->t), due + 400);
    assert_int_equal((ax_timers_next_deadline_ns(f->t) - start) % period, 0);
    del_fired(f);
}

/* 100k random timers with random cancels, expired in random steps, against
 * a brute-force model: each live timer fires exactly once, in deadline
 * order, never before its deadline; no cancelled one fires. */
static void many_timers_match_a_reference_model(void **state)
{
    (void)state;
    enum { N = 100000 };
    fired_t *f = new_fired();
    uint64_t *ids = malloc(N * sizeof *ids), *dl = malloc(N * sizeof *dl);
    char *cancelled = calloc(N, 1), *seen = calloc(N, 1);
    uint64_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        dl[i] = (seed >> 33) % 1000000;
        assert_int_equal(ax_timers_add(f->t, dl[i], 0, (uint64_t)i, &ids[i]), 0);
    }
    int ncancel = 0;
    for (int i = 0; i < N; i += 3) {
        assert_int_equal(ax_timers_cancel(f->t, ids[i]), 0);
        cancelled[i] = 1;
        ncancel++;
    }
    assert_int_equal(ax_timers_count(f->t), N - ncancel);
    uint64_t now = 0, last = 0;
    while (ax_timers_count(f->t)) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        now += (seed >> 33) % 20000;
        uint32_t from = f->n;
        f->now = now;
        ax_timers_expire(f->t, now, on_fire, f);
        for (uint32_t k = from; k < f->n; k++) {
            uint64_t tok = f->tokens[k];
            assert_false(cancelled[tok]);
            assert_false(seen[tok]);
            seen[tok] = 1;
            assert_true(dl[tok] <= now);
            assert_true(dl[tok] >= last); /* global deadline order */
            last = dl[tok];
        }
        assert_true(ax_timers_next_deadline_ns(f->t) > now);
    }
    assert_int_equal(f->n, N - ncancel);
    free(ids);
    free(dl);
    free(cancelled);
    free(seen);
    del_fired(f);
}

/* The caller's allocator is used for everything (the engine's arena). */
typedef struct {
    long live_blocks;
    size_t live_bytes;
    bool fail;
} pool_t;
static void *pool_alloc(void *ctx, size_t size)
{
    pool_t *p = ctx;
    if (p->fail)
        return NULL;
    p->live_blocks++;
    p->live_bytes += size;
    return malloc(size);
}
static void pool_free(void *ctx, void *ptr, size_t size)
{
    pool_t *p = ctx;
    p->live_blocks--;
    p->live_bytes -= size;
    free(ptr);
}

static void timers_use_the_callers_allocator_and_report_exhaustion(void **state)
{
    (void)state;
    pool_t pool = {0};
    ax_timers_alloc_t a = {pool_alloc, pool_free, &pool};
    ax_timers_t *t;
    assert_int_equal(ax_timers_create(&a, &t), 0);
    uint64_t id;
    for (int i = 0; i < 64; i++)
        assert_int_equal(ax_timers_add(t, (uint64_t)i, 0, 0, &id), 0);
    assert_true(pool.live_blocks >= 3);
    pool.fail = true;
    assert_int_equal(ax_timers_add(t, 1, 0, 0, &id), -ENOMEM); /* needs to grow */
    assert_int_equal(ax_timers_count(t), 64);                  /* nothing changed */
    pool.fail = false;
    assert_int_equal(ax_timers_add(t, 1, 0, 0, &id), 0);
    ax_timers_destroy(t);
    assert_int_equal(pool.live_blocks, 0);
    assert_int_equal(pool.live_bytes, 0);
    pool.fail = true;
    assert_int_equal(ax_timers_create(&a, &t), -ENOMEM);
}

static void no_io(void *arg, uint64_t token, int32_t res, uint32_t flags)
{
    (void)arg, (void)token, (void)res, (void)flags;
    fail_msg("no I/O was started, yet a completion arrived");
}

/* The worker pattern: wait on the ring until the next deadline, then
 * expire.  Each timer fires within a few ms of its deadline. */
static void timers_fire_within_milliseconds_of_their_deadline(void **state)
{
    (void)state;
    fired_t *f = new_fired();
    ax_io_t *io;
    assert_int_equal(ax_io_create(NULL, &io), 0);
    uint64_t t0 = ax_now_ns(), id;
    for (uint64_t ms = 5; ms <= 50; ms += 5)
        ax_timers_add(f->t, t0 + ms * 1000000, 0, t0 + ms * 1000000, &id);
    int64_t worst = 0;
    while (ax_timers_count(f->t)) {
        uint64_t next = ax_timers_next_deadline_ns(f->t), now = ax_now_ns();
        if (next > now)
            ax_io_wait(io, (int64_t)(next - now), no_io, NULL);
        uint32_t from = f->n;
        f->now = ax_now_ns();
        ax_timers_expire(f->t, f->now, on_fire, f);
        for (uint32_t k = from; k < f->n; k++) {
            int64_t late = (int64_t)(f->at[k] - f->tokens[k]);
            assert_true(late >= 0);
            if (late > worst)
                worst = late;
        }
    }
    print_message("worst lateness %.3f ms (10 timers, 5..50 ms)\n", (double)worst / 1e6);
    assert_true(worst < 20 * 1000000); /* generous on a shared VM; typical < 0.2 ms */
    ax_io_destroy(io);
    del_fired(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_in_deadline_order),
        cmocka_unit_test(cancelled_timer_never_fires),
        cmocka_unit_test(timer_cancelled_by_an_earlier_callback_in_the_same_turn_does_not_fire),
        cmocka_unit_test(periodic_timer_cancelling_itself_stops),
        cmocka_unit_test(periodic_timer_keeps_its_phase_despite_late_expiry),
        cmocka_unit_test(many_timers_match_a_reference_model),
        cmocka_unit_test(timers_use_the_callers_allocator_and_report_exhaustion),
        cmocka_unit_test(timers_fire_within_milliseconds_of_their_deadline),
    };
    return cmocka_run_group_tests_name("io/timer", tests, NULL, NULL);
}
