/* tests/unit/test_conv_typed.c - typed messages and handler tables
 * (axon/typed.h), credit windows (axon/flow.h), and the spreading spawn
 * options (AX_ON_ANY, AX_ON_MY_NODE, AX_ON_MY_L3, AX_ON_LEAST_LOADED).
 *
 * Engines run unpinned on synthetic topologies (64 workers: "pack:2 numa:2
 * l3:2 core:8 pu:2"), plus a pinned engine when this machine lets the test
 * have two CPUs, so everything passes under taskset -c 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity / CPU_COUNT */
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/axon.h"
#include "axon/flow.h"
#include "axon/typed.h"
#include "test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define ENGINE_TEST_NAME "test_conv_typed"
#define ENGINE_TEST_HANG "a lost typed message, a producer never resumed, or a spawn lost"
#include "engine_test.h"

#define SYNTH "pack:2 numa:2 l3:2 core:8 pu:2"

static ax_engine_t *make_synth(uint32_t workers)
{
    ax_config_t c;
    ax_config_init(&c);
    snprintf(c.topology_synthetic, sizeof c.topology_synthetic, "%s", SYNTH);
    c.oversubscribe = true;
    c.workers = workers;
    c.arena_bytes = 8u << 20;
    c.max_actors = 4096;
    ax_engine_t *e = NULL;
    int rc = ax_engine_create(&c, &e);
    if (rc != 0)
        fail_msg("%s: ax_engine_create: %d %s", g_test, rc, ax_engine_last_error());
    return e;
}

static void finish(ax_engine_t *e)
{
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
}

/* ---- typed messages of every size class -------------------------------------------------- */

struct tiny { uint8_t b; };
struct full { uint64_t w[5]; };                 /* exactly AX_INLINE_MAX */
struct just_over { uint64_t w[5]; uint8_t b; }; /* a blob: 48 bytes */
struct page { uint32_t w[1000]; };              /* a 4000-byte arena blob */
struct huge { uint64_t w[20000]; };             /* 160 KB: jemalloc blob */

AX_MESSAGE(tiny, 100, struct tiny);
AX_MESSAGE(full, 101, struct full);
AX_MESSAGE(just_over, 102, struct just_over);
AX_MESSAGE(page, 103, struct page);
AX_MESSAGE(huge, 104, struct huge);
AX_MESSAGE(go, 105, ax_ref_t);
AX_MESSAGE(ask, 106, struct just_over);  /* a request with a blob payload */
AX_MESSAGE(answer, 107, struct page);    /* a blob reply */

static struct {
    _Atomic uint64_t ok, bad, unhandled_hook, replies;
} g;

static void on_tiny(ax_ctx_t *c, void *s, const ax_msg_t *m)
{
    (void)c, (void)s;
    atomic_fetch_add(tiny_data(m)->b == 7 ? &g.ok : &g.bad, 1);
}
static void on_full(ax_ctx_t *c, void *s, const ax_msg_t *m)
{
    (void)c, (void)s;
    const struct full *f = full_data(m);
    atomic_fetch_add(f->w[0] == 1 && f->w[4] == 5 && !(m->flags & AX_MSG_F_BLOB) ? &g.ok : &g.bad,
                     1);
}
static void on_just_over(ax_ctx_t *c, void *s, const ax_msg_t *m)
{
    (void)c, (void)s;
    const struct just_over *j = just_over_data(m);
    atomic_fetch_add(j->w[4] == 5 && j->b == 9 && (m->flags & AX_MSG_F_BLOB) ? &g.ok : &g.bad, 1);
}
static void on_page(ax_ctx_t *c, void *s, const ax_msg_t *m)
{
    (void)c, (void)s;
    const struct page *p = page_data(m);
    atomic_fetch_add(p->w[0] == 1 && p->w[999] == 999 ? &g.ok : &g.bad, 1);
}
static void on_huge(ax_ctx_t *c, void *s, const ax_msg_t *m)
{
    (void)c, (void)s;
    const struct huge *h = huge_data(m);
    atomic_fetch_add(h->w[0] == 3 && h->w[19999] == 19999 ? &g.ok : &g.bad, 1);
}
static void on_ask(ax_ctx_t *c, void *s, const ax_msg_t *m)
{
    (void)s;
    static struct page p; /* one worker runs the receiver: no race */
    p.w[0] = (uint32_t)ask_data(m)->b;
    p.w[999] = 4242;
    if (answer_reply(c, &p) != 0)
        atomic_fetch_add(&g.bad, 1);
}
static void on_unhandled(ax_ctx_t *c, void *s, const ax_msg_t *m)
{
    (void)c, (void)s, (void)m;
    atomic_fetch_add(&g.unhandled_hook, 1);
}

static ax_table_t recv_table;

static void receiver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    ax_table_dispatch(&recv_table, ctx, state, m);
}

static void on_answer(ax_ctx_t *ctx, void *state, void *cont, int status, const ax_msg_t *r)
{
    (void)ctx, (void)state, (void)cont;
    const struct page *p = answer_get(r);
    atomic_fetch_add(status == 0 && p && p->w[0] == 9 && p->w[999] == 4242 ? &g.replies : &g.bad,
                     1);
}

static void sender(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    const ax_ref_t *to = go_get(m);
    if (!to) {
        atomic_fetch_add(&g.bad, 1);
        return;
    }
    static struct page p;
    static struct huge h;
    struct tiny t = {7};
    struct full f = {{1, 2, 3, 4, 5}};
    struct just_over j = {{1, 2, 3, 4, 5}, 9};
    p.w[0] = 1;
    p.w[999] = 999;
    h.w[0] = 3;
    h.w[19999] = 19999;
    int rc = tiny_send(ctx, *to, &t) | full_send(ctx, *to, &f) | just_over_send(ctx, *to, &j) |
             page_send(ctx, *to, &p) | huge_send(ctx, *to, &h) |
             ask_request(ctx, *to, &j, 10000, on_answer, NULL, 0);
    /* Not in the table, and a known type with the wrong size: unhandled. */
    uint32_t x = 1;
    rc |= ax_send(ctx, *to, 99, &x, sizeof x) | ax_send(ctx, *to, tiny_TYPE, &x, sizeof x);
    if (rc)
        atomic_fetch_add(&g.bad, 1);
}

static void typed_sends_of_every_size_class_reach_their_table_handlers(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    const ax_handler_t hs[] = {
        AX_ON(tiny, on_tiny), AX_ON(full, on_full), AX_ON(just_over, on_just_over),
        AX_ON(page, on_page), AX_ON(huge, on_huge), AX_ON(ask, on_ask),
    };
    assert_int_equal(ax_table_init(&recv_table, hs, sizeof hs / sizeof hs[0], on_unhandled), 0);
    ax_engine_t *e = make_synth(2);
    ax_spawn_opts_t o1 = {.size = sizeof o1, .where = AX_ON_WORKER, .worker = 1};
    ax_spawn_opts_t o0 = {.size = sizeof o0, .where = AX_ON_WORKER, .worker = 0};
    ax_ref_t r, s;
    assert_int_equal(ax_engine_spawn(e, receiver, 0, &o1, &r), 0);
    assert_int_equal(ax_engine_spawn(e, sender, 0, &o0, &s), 0);
    assert_int_equal(ax_engine_start(e), 0);
    assert_int_equal(ax_engine_send(e, s, go_TYPE, &r, sizeof r), 0);
    WAIT_FOR(g.ok, 5);
    WAIT_FOR(g.replies, 1);
    WAIT_FOR(g.unhandled_hook, 2);
    finish(e);
    assert_int_equal(atomic_load(&g.bad), 0);
    assert_int_equal(ax_table_unhandled(&recv_table), 2);
    ax_worker_stats_t ws;
    ax_engine_stats(e, &ws);
    assert_int_equal(ws.dead_letters, 0);
    ax_engine_destroy(e);
}

static void typed_get_checks_type_and_size(void **state)
{
    (void)state;
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = tiny_TYPE;
    m.len = 1;
    m.payload.data[0] = 7;
    assert_non_null(tiny_get(&m));
    assert_int_equal(tiny_get(&m)->b, 7);
    assert_null(full_get(&m)); /* other type */
    m.len = 2;
    assert_null(tiny_get(&m)); /* wrong size */
    assert_null(tiny_get(NULL));
}

static void table_init_refuses_sparse_duplicate_and_null_handlers(void **state)
{
    (void)state;
    ax_table_t t;
    ax_handler_t sparse[] = {{1, 1, on_tiny}, {1 + AX_TABLE_SPAN, 1, on_tiny}};
    ax_handler_t dup[] = {{5, 1, on_tiny}, {5, 1, on_full}};
    ax_handler_t null_fn[] = {{5, 1, NULL}};
    assert_int_equal(ax_table_init(&t, sparse, 2, NULL), -EINVAL);
    assert_int_equal(ax_table_init(&t, dup, 2, NULL), -EINVAL);
    assert_int_equal(ax_table_init(&t, null_fn, 1, NULL), -EINVAL);
    ax_handler_t edge[] = {{10, 1, on_tiny}, {10 + AX_TABLE_SPAN - 1, 1, on_full}};
    assert_int_equal(ax_table_init(&t, edge, 2, NULL), 0);
}

/* ---- flow control -------------------------------------------------------------------------- */

#define FLOW_N 20000u
#define FLOW_WINDOW 64u
enum { T_ITEM = 1, T_START = 2 };

static struct {
    _Atomic uint64_t sent, received, max_in_flight, bad, refused, done;
} fl;

typedef struct producer {
    ax_flow_out_t out;
    uint64_t next;
} producer_t;

/* Send until the window is full, then wait for a grant. */
static void producer_pump(ax_ctx_t *ctx, producer_t *p)
{
    while (p->next < FLOW_N) {
        int rc = ax_flow_send(ctx, &p->out, T_ITEM, &p->next, sizeof p->next);
        if (rc == -EAGAIN)
            return; /* AX_FLOW_GRANT resumes us */
        if (rc != 0) {
            atomic_fetch_add(&fl.bad, 1);
            return;
        }
        p->next++;
        atomic_store(&fl.sent, p->next);
    }
    atomic_store(&fl.refused, p->out.refused);
}

static void producer(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    producer_t *p = state;
    if (m->type == T_START) {
        ax_ref_t to;
        memcpy(&to, ax_msg_data(m), sizeof to);
        if (ax_flow_open(&p->out, to, FLOW_WINDOW) != 0)
            atomic_fetch_add(&fl.bad, 1);
        producer_pump(ctx, p);
    } else if (ax_flow_on_grant(&p->out, m)) {
        producer_pump(ctx, p);
    } else {
        atomic_fetch_add(&fl.bad, 1);
    }
}

/* About 100x slower per message than the producer's send (~20-50 ns). */
static void consumer(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    uint64_t *expect = state, v;
    uint64_t end = now_ns() + 3000;
    while (now_ns() < end)
        ;
    memcpy(&v, ax_flow_data(m), sizeof v);
    if (m->type != T_ITEM || ax_flow_len(m) != sizeof v || v != *expect || ax_flow_seq(m) != v)
        atomic_fetch_add(&fl.bad, 1);
    (*expect)++;
    uint64_t in_flight = atomic_load(&fl.sent) - atomic_load(&fl.received);
    if (in_flight > atomic_load(&fl.max_in_flight))
        atomic_store(&fl.max_in_flight, in_flight);
    atomic_fetch_add(&fl.received, 1);
    if (ax_flow_consumed(ctx, m) != 0)
        atomic_fetch_add(&fl.bad, 1);
}

static void a_producer_100x_faster_than_its_consumer_stays_within_its_window(void **state)
{
    (void)state;
    memset(&fl, 0, sizeof fl);
    ax_engine_t *e = make_synth(2);
    ax_spawn_opts_t o1 = {.size = sizeof o1, .where = AX_ON_WORKER, .worker = 1};
    ax_spawn_opts_t o0 = {.size = sizeof o0, .where = AX_ON_WORKER, .worker = 0};
    ax_ref_t c, p;
    assert_int_equal(ax_engine_spawn(e, consumer, sizeof(uint64_t), &o1, &c), 0);
    assert_int_equal(ax_engine_spawn(e, producer, sizeof(producer_t), &o0, &p), 0);
    assert_int_equal(ax_engine_start(e), 0);
    assert_int_equal(ax_engine_send(e, p, T_START, &c, sizeof c), 0);
    WAIT_FOR(fl.received, FLOW_N);
    finish(e);
    /* Nothing lost, in order, never more than the window queued, and the
     * producer was told to wait (it would otherwise have run ahead). */
    assert_int_equal(atomic_load(&fl.bad), 0);
    assert_int_equal(atomic_load(&fl.received), FLOW_N);
    assert_true(atomic_load(&fl.max_in_flight) <= FLOW_WINDOW);
    assert_true(atomic_load(&fl.refused) > 0);
    ax_worker_stats_t ws;
    ax_engine_stats(e, &ws);
    assert_true(ws.overflow_hwm <= FLOW_WINDOW);
    ax_engine_destroy(e);
}

static void flow_open_refuses_bad_windows(void **state)
{
    (void)state;
    ax_flow_out_t f;
    assert_int_equal(ax_flow_open(&f, 1, 0), -EINVAL);
    assert_int_equal(ax_flow_open(&f, 1, 3), -EINVAL);
    assert_int_equal(ax_flow_open(&f, 1, AX_FLOW_WINDOW_MAX * 2), -EINVAL);
    assert_int_equal(ax_flow_open(&f, AX_REF_NONE, 8), -EINVAL);
    assert_int_equal(ax_flow_open(&f, 1, 2), 0);
    assert_int_equal(f.shift, 0);
    assert_int_equal(ax_flow_open(&f, 1, 64), 0);
    assert_int_equal(ax_flow_credit(&f), 64);
    assert_int_equal(1u << f.shift, 32);
}

/* ---- placement -------------------------------------------------------------------------------- */

#define MAXW 64
static struct {
    _Atomic uint64_t placed;
    _Atomic uint32_t where[4096];
    _Atomic uint64_t go, bad;
} pl;

static void placed_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)state, (void)len;
    uint32_t id;
    memcpy(&id, arg, sizeof id);
    atomic_store(&pl.where[id], ax_worker_id(ctx));
    atomic_fetch_add(&pl.placed, 1);
}

static void idle_actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx, (void)state, (void)m;
}

typedef struct spawn_cmd {
    uint32_t where, count, first_id;
} spawn_cmd_t;

static void spawner(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    spawn_cmd_t c;
    memcpy(&c, ax_msg_data(m), sizeof c);
    for (uint32_t i = 0; i < c.count; i++) {
        uint32_t id = c.first_id + i;
        ax_spawn_opts_t o = {.size = sizeof o, .where = c.where, .init = placed_init,
                             .arg = &id, .arg_len = sizeof id};
        ax_ref_t r;
        if (ax_spawn(ctx, idle_actor, 0, &o, &r) != 0)
            atomic_fetch_add(&pl.bad, 1);
    }
    atomic_fetch_add(&pl.go, 1);
}

/* Run `count` spawns with option `where` from an actor on worker `from`. */
static void spawn_from(ax_engine_t *e, ax_ref_t sp, uint32_t where, uint32_t count, uint32_t first)
{
    uint64_t before = atomic_load(&pl.placed);
    spawn_cmd_t c = {where, count, first};
    assert_int_equal(ax_engine_send(e, sp, 1, &c, sizeof c), 0);
    WAIT_FOR(pl.placed, before + count);
}

static void check_spread(ax_engine_t *e, uint32_t from, uint32_t where, uint32_t first,
                         uint32_t count, uint32_t expect_distinct)
{
    const ax_plan_t *plan = ax_engine_plan(e);
    uint32_t hits[MAXW] = {0}, distinct = 0;
    for (uint32_t i = first; i < first + count; i++) {
        uint32_t w = atomic_load(&pl.where[i]);
        assert_true(w < plan->nworkers);
        if (where == AX_ON_MY_NODE && plan->workers[w].numa != plan->workers[from].numa)
            fail_msg("AX_ON_MY_NODE placed on worker %u (node %u), caller on node %u", w,
                     plan->workers[w].numa, plan->workers[from].numa);
        if (where == AX_ON_MY_L3 && plan->workers[w].l3 != plan->workers[from].l3)
            fail_msg("AX_ON_MY_L3 placed on worker %u (L3 %u), caller in L3 %u", w,
                     plan->workers[w].l3, plan->workers[from].l3);
        distinct += hits[w]++ == 0;
    }
    if (distinct != expect_distinct)
        fail_msg("option %u: %u spawns reached %u distinct workers, expected %u", where, count,
                 distinct, expect_distinct);
}

static void placement_options_spread_as_asked(ax_engine_t *e, uint32_t from)
{
    uint32_t n = ax_engine_workers(e), node_n = 0, l3_n = 0;
    const ax_plan_t *plan = ax_engine_plan(e);
    for (uint32_t i = 0; i < n; i++) {
        node_n += plan->workers[i].numa == plan->workers[from].numa;
        l3_n += plan->workers[i].l3 == plan->workers[from].l3;
    }
    ax_spawn_opts_t so = {.size = sizeof so, .where = AX_ON_WORKER, .worker = from};
    ax_ref_t sp;
    assert_int_equal(ax_engine_spawn(e, spawner, 0, &so, &sp), 0);
    assert_int_equal(ax_engine_start(e), 0);
    uint32_t id = 0;
    spawn_from(e, sp, AX_ON_SELF, 4, id);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&pl.where[i]), from); /* the default is unchanged */
    id += 4;
    spawn_from(e, sp, AX_ON_ANY, n, id);
    check_spread(e, from, AX_ON_ANY, id, n, n);
    id += n;
    spawn_from(e, sp, AX_ON_MY_NODE, node_n, id);
    check_spread(e, from, AX_ON_MY_NODE, id, node_n, node_n);
    id += node_n;
    spawn_from(e, sp, AX_ON_MY_L3, l3_n, id);
    check_spread(e, from, AX_ON_MY_L3, id, l3_n, l3_n);
    id += l3_n;
    /* Least loaded: each pick adds to its worker's figure, so a burst of n
     * spawns spreads over many workers instead of piling on one. */
    spawn_from(e, sp, AX_ON_LEAST_LOADED, n, id);
    {
        uint32_t hits[MAXW] = {0}, distinct = 0;
        for (uint32_t i = id; i < id + n; i++)
            distinct += hits[atomic_load(&pl.where[i])]++ == 0;
        if (distinct < (n + 1) / 2)
            fail_msg("AX_ON_LEAST_LOADED: %u spawns reached only %u workers", n, distinct);
    }
    finish(e);
    assert_int_equal(atomic_load(&pl.bad), 0);
}

static void placement_options_on_64_synthetic_workers(void **state)
{
    (void)state;
    memset(&pl, 0, sizeof pl);
    ax_engine_t *e = make_synth(64);
    placement_options_spread_as_asked(e, 21);
    ax_engine_destroy(e);
}

static void placement_options_on_two_pinned_workers(void **state)
{
    (void)state;
    memset(&pl, 0, sizeof pl);
    cpu_set_t set;
    bool two = sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 2;
    ax_engine_t *e;
    if (two) {
        ax_config_t c;
        ax_config_init(&c);
        c.workers = 2;
        c.arena_bytes = 8u << 20;
        c.max_actors = 4096;
        int rc = ax_engine_create(&c, &e);
        if (rc != 0)
            fail_msg("ax_engine_create (2 pinned): %d %s", rc, ax_engine_last_error());
    } else {
        print_message("only one CPU available: two synthetic unpinned workers instead\n");
        e = make_synth(2);
    }
    placement_options_spread_as_asked(e, 1);
    ax_engine_destroy(e);
}

/* The published load decides: with every worker but one holding actors,
 * the next least-loaded spawn lands on the empty one. */
static void least_loaded_goes_to_the_worker_with_the_fewest_actors(void **state)
{
    (void)state;
    memset(&pl, 0, sizeof pl);
    ax_engine_t *e = make_synth(8);
    uint32_t id = 0;
    for (uint32_t w = 0; w < 7; w++)
        for (uint32_t k = 0; k < 3; k++, id++) {
            ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = w,
                                 .init = placed_init, .arg = &id, .arg_len = sizeof id};
            ax_ref_t r;
            assert_int_equal(ax_engine_spawn(e, idle_actor, 0, &o, &r), 0);
        }
    assert_int_equal(ax_engine_start(e), 0);
    WAIT_FOR(pl.placed, id);
    /* Wait until every worker has published its figure (they park idle). */
    for (int tries = 0; tries < 20000; tries++) {
        ax_worker_stats_t ws;
        uint32_t ok = 0;
        for (uint32_t w = 0; w < 8; w++) {
            ax_engine_worker_stats(e, w, &ws, NULL);
            ok += ws.load == (w < 7 ? 3u : 0u);
        }
        if (ok == 8)
            break;
        sleep_us(500);
    }
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_LEAST_LOADED, .init = placed_init,
                         .arg = &id, .arg_len = sizeof id};
    ax_ref_t r;
    assert_int_equal(ax_engine_spawn(e, idle_actor, 0, &o, &r), 0);
    WAIT_FOR(pl.placed, id + 1);
    assert_int_equal(atomic_load(&pl.where[id]), 7);
    assert_int_equal(ax_ref_worker(r), 7);
    finish(e);
    ax_engine_destroy(e);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, watchdog);
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(typed_sends_of_every_size_class_reach_their_table_handlers),
        T(typed_get_checks_type_and_size),
        T(table_init_refuses_sparse_duplicate_and_null_handlers),
        T(a_producer_100x_faster_than_its_consumer_stays_within_its_window),
        T(flow_open_refuses_bad_windows),
        T(placement_options_on_64_synthetic_workers),
        T(placement_options_on_two_pinned_workers),
        T(least_loaded_goes_to_the_worker_with_the_fewest_actors),
    };
#undef T
    return cmocka_run_group_tests_name("conv/typed", tests, NULL, NULL);
}
