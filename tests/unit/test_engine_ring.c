/* tests/unit/test_engine_ring.c - the worker-to-worker ring (engine/ring.h)
 * as the drain uses it: ax_ring_ready counts the run of ready slots at the
 * head, the drain runs them, ax_ring_release hands them back.
 *
 * One thread: the run stops at the first slot whose stamp is not the head
 * lap's (an empty slot, or one a lap behind), at the caller's maximum and at
 * the end of the slot array; it works across a lap and across the 2^32 wrap
 * of the free-running indices.
 *
 * The producer's runs (ax_ring_try_reserve_run, drain_overflow's reserve):
 * a run is as long as asked, the room and the end of the slot array allow,
 * never 0 while a slot is free, all of one lap, and the next lap's stamp
 * starts after a run that ends the array; across the 2^32 wrap too.
 *
 * Two threads: a producer fills slots and commits them (R1), one at a time
 * or in runs, while the consumer drains in runs; every message arrives once, in order, with the
 * payload written before its commit (A1 pairs with R1: under TSan a missing
 * acquire or release is a reported race, in every build a torn payload is a
 * failed check).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdalign.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine/ring.h"

#define CAP 64u

typedef struct {
    ax_ring_t r;
    ax_msg_t *slots;
} ring_fx_t;

/* Static, so the alignment the ring asks for holds (cmocka's test_malloc,
 * which UNIT_TESTING puts behind malloc, aligns to 16 bytes). */
static alignas(AX_CACHELINE) ax_msg_t g_slots[CAP];
static ring_fx_t g_fx;

static ring_fx_t *fx_new(uint32_t cap)
{
    ring_fx_t *f = &g_fx;
    assert_true(cap <= CAP);
    f->slots = g_slots;
    memset(f->slots, 0, sizeof g_slots);
    ax_ring_init(&f->r, f->slots, cap);
    return f;
}

static void fx_free(ring_fx_t *f) { memset(f, 0, sizeof *f); }

/* Producer side: one message carrying v, or false when the ring is full. */
static bool put(ax_ring_t *r, uint64_t v)
{
    uint8_t stamp;
    ax_msg_t *m = ax_ring_reserve(r, &stamp);
    if (!m)
        return false;
    m->payload.u64[0] = v;
    m->payload.u64[1] = ~v;
    ax_msg_commit(m, 7, 16, 0, stamp);
    return true;
}

/* Producer side, in a run: up to want messages carrying v, v+1...; how
 * many (0 when the ring is full). */
static uint32_t put_run(ax_ring_t *r, uint64_t v, uint32_t want)
{
    ax_msg_t *m;
    uint8_t stamp;
    uint32_t n = ax_ring_try_reserve_run(r, want, &m, &stamp);
    for (uint32_t k = 0; k < n; k++) {
        m[k].payload.u64[0] = v + k;
        m[k].payload.u64[1] = ~(v + k);
        ax_msg_commit(&m[k], 7, 16, 0, stamp);
    }
    return n;
}

/* Consumer side: take k ready messages, checking they carry next, next+1... */
static void take(ax_ring_t *r, uint32_t k, uint64_t *next)
{
    for (uint32_t i = 0; i < k; i++) {
        const ax_msg_t *m = ax_ring_head(r);
        assert_int_equal(m->payload.u64[0], *next);
        assert_int_equal(m->payload.u64[1], ~*next);
        ax_ring_advance(r);
        (*next)++;
    }
    ax_ring_release(r);
}

static void ready_counts_the_run_and_stops_where_it_must(void **state)
{
    (void)state;
    ring_fx_t *f = fx_new(CAP);
    ax_ring_t *r = &f->r;
    uint64_t sent = 0, next = 0;

    assert_int_equal(ax_ring_ready(r, 32), 0); /* empty: zeroed slots hold stamp 0 */
    assert_false(ax_ring_c_nonempty(r));
    for (int i = 0; i < 5; i++)
        assert_true(put(r, sent++));
    assert_true(ax_ring_c_nonempty(r));
    assert_int_equal(ax_ring_ready(r, 1), 1);  /* a run of one answered early */
    assert_int_equal(ax_ring_ready(r, 2), 2);
    assert_int_equal(ax_ring_ready(r, 3), 3);  /* the caller's maximum */
    assert_int_equal(ax_ring_ready(r, 32), 5); /* stops at the empty slot */
    take(r, 5, &next);
    assert_int_equal(ax_ring_ready(r, 32), 0);

    /* Fill to the end of the array and past it: the run stops at the end,
     * the rest (lap 1) is the next run. */
    while (sent < CAP + 5)
        assert_true(put(r, sent++));
    assert_false(put(r, sent)); /* full: the head is still at 5 */
    assert_int_equal(ax_ring_ready(r, 1000), CAP - 5);
    take(r, CAP - 6, &next);
    /* The head at the array's last slot: a run of one, never a read past
     * the array (ASan) nor lap 1's slot 0. */
    assert_int_equal(ax_ring_ready(r, 1000), 1);
    take(r, 1, &next);
    assert_int_equal(ax_ring_ready(r, 1000), 5);
    /* Slot 5 onwards still holds lap 0's stamp: not ready for lap 1. */
    take(r, 5, &next);
    assert_int_equal(ax_ring_ready(r, 1000), 0);
    assert_true(put(r, sent++));
    assert_int_equal(ax_ring_ready(r, 1000), 1);
    take(r, 1, &next);
    fx_free(f);
}

/* The indices run free: start both sides just below 2^32 and cross it. */
static void ready_works_across_the_index_wrap(void **state)
{
    (void)state;
    ring_fx_t *f = fx_new(CAP);
    ax_ring_t *r = &f->r;
    const uint32_t start = UINT32_MAX - 20u;
    ax_ring_set_index(r, start);
    for (uint32_t i = 0; i < CAP; i++) /* previous lap's stamp everywhere */
        f->slots[i].hdr = (uint64_t)(uint8_t)(r->p_stamp - 1u) << 56;
    assert_int_equal(ax_ring_ready(r, 1000), 0);

    uint64_t sent = 0, next = 0;
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < 40; i++)
            assert_true(put(r, sent++));
        uint32_t k;
        uint64_t got = 0;
        while ((k = ax_ring_ready(r, 1000)) != 0) {
            take(r, k, &next);
            got += k;
        }
        assert_int_equal(got, 40);
    }
    assert_true(ax_ring_c_index(r) < start); /* crossed 2^32 */
    assert_int_equal(atomic_load(&r->head), ax_ring_c_index(r));
    fx_free(f);
}

/* The drain's pattern with a budget that divides the capacity: every
 * batch's run ends where the budget does, and one of them at the array's
 * last slot.  ax_ring_run_end must start the next lap there (slot 0, the
 * next stamp), also when the budget is spent (drain_ring_loop ends the
 * run before it tests the budget); the release publishes the exact
 * index. */
static void run_end_starts_the_next_lap_when_the_budget_ends_there(void **state)
{
    (void)state;
    ring_fx_t *f = fx_new(CAP);
    ax_ring_t *r = &f->r;
    uint64_t sent = 0, next = 0;
    for (int lap = 0; lap < 3; lap++) {
        for (uint32_t i = 0; i < CAP; i++)
            assert_true(put(r, sent++));
        for (uint32_t b = 0; b < CAP / 8; b++) {
            assert_int_equal(ax_ring_ready(r, 8), 8);
            for (uint32_t i = 0; i < 8; i++, next++) {
                assert_int_equal(ax_ring_head(r)->payload.u64[0], next);
                ax_ring_take(r);
            }
            assert_int_equal(ax_ring_run_end(r), b == CAP / 8 - 1);
            ax_ring_release(r);
            assert_int_equal(atomic_load(&r->head), (uint32_t)next);
        }
        assert_ptr_equal(ax_ring_head(r), &f->slots[0]);
        assert_int_equal(ax_ring_c_index(r), (uint32_t)sent);
        assert_int_equal(ax_ring_ready(r, 8), 0); /* lap L's stamps, not L+1's */
        assert_false(ax_ring_c_nonempty(r));
    }
    fx_free(f);
}

/* Runs from `start` (the free-running index both sides begin at): each run
 * is min(want, free slots, slots to the array's end), never 0 with a slot
 * free, and what it committed drains in order, lap after lap. */
static void reserve_runs_from(uint32_t start)
{
    ring_fx_t *f = fx_new(CAP);
    ax_ring_t *r = &f->r;
    ax_ring_set_index(r, start);
    for (uint32_t i = 0; i < CAP; i++) /* previous lap's stamp everywhere */
        f->slots[i].hdr = (uint64_t)(uint8_t)(r->p_stamp - 1u) << 56;
    uint64_t sent = 0, next = 0;
    static const uint32_t wants[] = {1, 3, 7, 64, 100, 17, 2, 33};
    for (int round = 0; round < 400; round++) {
        uint32_t want = wants[round % 8];
        /* the producer's view: what is free and where the array ends */
        uint32_t used = (uint32_t)(sent - next), at = (uint32_t)(start + sent) & (CAP - 1);
        uint32_t expect = want;
        if (expect > CAP - used)
            expect = CAP - used;
        if (expect > CAP - at)
            expect = CAP - at;
        uint32_t n = put_run(r, sent, want);
        assert_int_equal(n, expect);
        sent += n;
        /* drain some, not all: the ring is rarely empty or full */
        uint32_t k, budget = (round % 3) ? 5 : 200;
        while (budget && (k = ax_ring_ready(r, budget)) != 0) {
            take(r, k, &next);
            budget -= k;
        }
    }
    /* Full: a run of 0; with one slot free: a run of 1. */
    uint32_t n;
    while ((n = put_run(r, sent, 5)) != 0)
        sent += n;
    assert_int_equal(sent - next, CAP);
    assert_int_equal(put_run(r, sent, 5), 0);
    assert_int_equal(ax_ring_ready(r, 1), 1);
    take(r, 1, &next);
    assert_int_equal(put_run(r, sent, 5), 1);
    sent++;
    uint32_t k;
    while ((k = ax_ring_ready(r, 1000)) != 0)
        take(r, k, &next);
    assert_int_equal(next, sent);
    fx_free(f);
}

static void reserve_run_stops_at_room_and_array_end(void **state)
{
    (void)state;
    reserve_runs_from(0);
    reserve_runs_from(UINT32_MAX - 20u); /* crosses the 2^32 wrap */
}

/* ---- two threads -------------------------------------------------------------- */

#define N_STRESS 1000000u

typedef struct {
    ring_fx_t *f;
} pair_t;

static void *producer(void *arg)
{
    pair_t *p = arg;
    for (uint64_t v = 0; v < N_STRESS;) {
        if (put(&p->f->r, v))
            v++;
        else
            sched_yield(); /* full: on one CPU, let the consumer run */
    }
    return NULL;
}

/* As producer, in runs of 1 to 13 (drain_overflow's pattern). */
static void *run_producer(void *arg)
{
    pair_t *p = arg;
    uint32_t want = 1;
    for (uint64_t v = 0; v < N_STRESS;) {
        uint32_t n = put_run(&p->f->r, v, (uint32_t)(N_STRESS - v < want ? N_STRESS - v : want));
        if (n)
            v += n;
        else
            sched_yield(); /* full: on one CPU, let the consumer run */
        want = want % 13 + 1;
    }
    return NULL;
}

static void drain_against(void *(*prod)(void *))
{
    pair_t p = {.f = fx_new(CAP)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, prod, &p), 0);
    uint64_t next = 0, runs = 0;
    while (next < N_STRESS) {
        /* The drain's pattern (engine.c drain_ring_loop): a run, then its
         * dispatches, one release per batch. */
        uint32_t k = ax_ring_ready(&p.f->r, 32);
        if (k) {
            take(&p.f->r, k, &next);
            runs++;
        } else {
            sched_yield();
        }
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(ax_ring_ready(&p.f->r, 32), 0);
    assert_true(runs > 0 && runs <= N_STRESS);
    fx_free(p.f);
}

static void runs_between_two_threads_arrive_once_in_order(void **state)
{
    (void)state;
    drain_against(producer);
}

static void runs_reserved_in_runs_arrive_once_in_order(void **state)
{
    (void)state;
    drain_against(run_producer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ready_counts_the_run_and_stops_where_it_must),
        cmocka_unit_test(ready_works_across_the_index_wrap),
        cmocka_unit_test(run_end_starts_the_next_lap_when_the_budget_ends_there),
        cmocka_unit_test(reserve_run_stops_at_room_and_array_end),
        cmocka_unit_test(runs_between_two_threads_arrive_once_in_order),
        cmocka_unit_test(runs_reserved_in_runs_arrive_once_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
