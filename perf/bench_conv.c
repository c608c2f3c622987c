/* perf/bench_conv.c - what conversations cost (issue 12), in the same binary
 * and run as the engine figures they are compared with:
 *
 *   conv/switch_send   same-worker send of a 16-byte struct + a hand-written
 *                      switch with length check and memcpy, ns per message
 *                      (the baseline for conv/typed_send)
 *   conv/typed_send    the same with AX_MESSAGE sends and ax_table_dispatch
 *                      (target: at most 1 ns above conv/switch_send)
 *   conv/request_rtt   request + reply + continuation across two pinned
 *                      workers, 10 s timeout armed each time, ns per round
 *                      trip (target: at most 1.3x engine/pingpong_rtt)
 *   conv/flow_send     w0 -> w1 one way through ax_flow_send with an
 *                      8192-message window, items/s (compare with
 *                      engine/remote_send, which keeps the same window by
 *                      hand, and with conv/unbounded_send)
 *   conv/unbounded_send  the same stream with plain ax_send and no window
 *                      (256 sends per turn): what bounding costs, and what
 *                      the overflow queues grow to without it (counter
 *                      overflow_hwm)
 *
 * Compare with: axon-microbench --benchmark_repetitions=5
 *   --benchmark_report_aggregates_only=true
 *   --benchmark_filter='engine/(local_send|pingpong_rtt|remote_send)|conv/'
 * Every figure is manual time stamped inside the actors.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "axon/axon.h"
#include "axon/flow.h"
#include "axon/request.h"
#include "axon/typed.h"
#include "axon_bench.h"

typedef struct cb_run {
    sem_t done;
    _Atomic int failed;
    uint64_t n, t0, t1;
    ax_ref_t peer;
} cb_run_t;

static uint64_t cb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cb_fail(cb_run_t *r)
{
    int z = 0;
    if (atomic_compare_exchange_strong(&r->failed, &z, 1))
        sem_post(&r->done);
}

static void cb_done(cb_run_t *r)
{
    r->t1 = cb_now();
    sem_post(&r->done);
}

static void cb_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    memcpy(state, arg, len);
}

/* Engine of `workers`, actors spawned by the caller, kicked with type 1,
 * waited for; sets the iteration time. */
static ax_engine_t *cb_engine(uint32_t workers, axon_bench_state *st)
{
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = workers;
    ax_engine_t *e = NULL;
    if (ax_engine_create(&cfg, &e) < 0) {
        axon_bench_skip(st, "ax_engine_create failed (needs as many CPUs as workers)");
        return NULL;
    }
    return e;
}

static int cb_spawn(ax_engine_t *e, ax_behaviour_fn fn, size_t size, uint32_t worker, cb_run_t *r,
                    ax_ref_t *out)
{
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = worker,
                         .init = cb_init, .arg = &r, .arg_len = sizeof r};
    return ax_engine_spawn(e, fn, size, &o, out);
}

static void cb_go(ax_engine_t *e, cb_run_t *r, ax_ref_t to, axon_bench_state *st)
{
    if (ax_engine_start(e) != 0 || ax_engine_send(e, to, 1, NULL, 0) != 0) {
        axon_bench_skip(st, "start failed");
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 60;
    while (sem_timedwait(&r->done, &ts) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "bench_conv: no result after 60 s\n");
            abort();
        }
    ax_engine_stop(e);
    ax_engine_wait(e);
    if (atomic_load(&r->failed))
        axon_bench_skip(st, "a send failed");
    else
        axon_bench_set_iteration_time(st, (double)(r->t1 - r->t0) / 1e9);
}

typedef struct cb_state {
    cb_run_t *r;
    uint64_t left;
    ax_flow_out_t out;
    uint64_t count;
} cb_state_t;

/* ---- conv/switch_send and conv/typed_send ----------------------------------------------- */

struct point { uint64_t seq; uint32_t x, y; };
enum { K_START = 1, K_POINT = 10, K_LINE = 11, K_ERASE = 12, K_FILL = 13 };

AX_MESSAGE(pt, K_POINT, struct point);
AX_MESSAGE(line, K_LINE, struct point);
AX_MESSAGE(erase, K_ERASE, uint64_t);
AX_MESSAGE(fill, K_FILL, uint32_t);

static void sw_next(ax_ctx_t *ctx, cb_state_t *s, uint64_t seq)
{
    if (seq == s->r->n) {
        cb_done(s->r);
        return;
    }
    struct point p = {seq + 1, (uint32_t)seq, 2};
    if (ax_send(ctx, ax_self(ctx), K_POINT, &p, sizeof p) != 0)
        cb_fail(s->r);
}

/* The hand-written receive side the typed one replaces. */
static void sw_beh(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    cb_state_t *s = state;
    struct point p;
    uint64_t u;
    uint32_t f;
    switch (m->type) {
    case K_START:
        s->r->t0 = cb_now();
        sw_next(ctx, s, 0);
        break;
    case K_POINT:
        if (ax_msg_len(m) != sizeof p)
            break;
        memcpy(&p, ax_msg_data(m), sizeof p);
        s->count += p.x;
        sw_next(ctx, s, p.seq);
        break;
    case K_LINE:
        if (ax_msg_len(m) != sizeof p)
            break;
        memcpy(&p, ax_msg_data(m), sizeof p);
        s->count -= p.y;
        break;
    case K_ERASE:
        if (ax_msg_len(m) != sizeof u)
            break;
        memcpy(&u, ax_msg_data(m), sizeof u);
        s->count = u;
        break;
    case K_FILL:
        if (ax_msg_len(m) != sizeof f)
            break;
        memcpy(&f, ax_msg_data(m), sizeof f);
        s->count ^= f;
        break;
    default:
        break;
    }
}

static void ty_next(ax_ctx_t *ctx, cb_state_t *s, uint64_t seq)
{
    if (seq == s->r->n) {
        cb_done(s->r);
        return;
    }
    struct point p = {seq + 1, (uint32_t)seq, 2};
    if (pt_send(ctx, ax_self(ctx), &p) != 0)
        cb_fail(s->r);
}

static void on_pt(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    cb_state_t *s = state;
    const struct point *p = pt_data(m);
    s->count += p->x;
    ty_next(ctx, s, p->seq);
}
static void on_line(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    ((cb_state_t *)state)->count -= line_data(m)->y;
}
static void on_erase(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    ((cb_state_t *)state)->count = *erase_data(m);
}
static void on_fill(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    ((cb_state_t *)state)->count ^= *fill_data(m);
}
static void on_start(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)m;
    cb_state_t *s = state;
    s->r->t0 = cb_now();
    ty_next(ctx, s, 0);
}

static ax_table_t ty_table;

static void ty_beh(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    ax_table_dispatch(&ty_table, ctx, state, m);
}

static void bm_local(axon_bench_state *st, uint64_t iters, ax_behaviour_fn fn)
{
    cb_run_t r = {.n = iters};
    sem_init(&r.done, 0, 0);
    ax_engine_t *e = cb_engine(1, st);
    ax_ref_t a;
    if (e && cb_spawn(e, fn, sizeof(cb_state_t), 0, &r, &a) == 0)
        cb_go(e, &r, a, st);
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

static void bm_switch_send(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    bm_local(st, iters, sw_beh);
}

static void bm_typed_send(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    static const ax_handler_t hs[] = {
        {K_START, 0, on_start}, AX_ON(pt, on_pt), AX_ON(line, on_line),
        AX_ON(erase, on_erase), AX_ON(fill, on_fill),
    };
    if (ax_table_init(&ty_table, hs, sizeof hs / sizeof hs[0], NULL) != 0) {
        axon_bench_skip(st, "ax_table_init failed");
        return;
    }
    bm_local(st, iters, ty_beh);
}

/* ---- conv/request_rtt ---------------------------------------------------------------------- */

static void rq_server(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    cb_state_t *s = state;
    if (ax_reply(ctx, 2, ax_msg_data(m), 8) != 0)
        cb_fail(s->r);
}

static void rq_ask(ax_ctx_t *ctx, cb_state_t *s);

static void rq_cont(ax_ctx_t *ctx, void *state, void *cont, int status, const ax_msg_t *reply)
{
    (void)cont;
    cb_state_t *s = state;
    if (status != 0 || reply->payload.u64[0] != s->count) {
        cb_fail(s->r);
        return;
    }
    if (++s->count == s->r->n) {
        cb_done(s->r);
        return;
    }
    rq_ask(ctx, s);
}

static void rq_ask(ax_ctx_t *ctx, cb_state_t *s)
{
    if (ax_request(ctx, s->r->peer, 2, &s->count, sizeof s->count, 10000, rq_cont, NULL, 0) != 0)
        cb_fail(s->r);
}

static void rq_asker(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)m;
    cb_state_t *s = state;
    s->r->t0 = cb_now();
    rq_ask(ctx, s);
}

static void bm_request_rtt(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    cb_run_t r = {.n = iters};
    sem_init(&r.done, 0, 0);
    ax_engine_t *e = cb_engine(2, st);
    ax_ref_t a;
    if (e && cb_spawn(e, rq_server, sizeof(cb_state_t), 1, &r, &r.peer) == 0 &&
        cb_spawn(e, rq_asker, sizeof(cb_state_t), 0, &r, &a) == 0)
        cb_go(e, &r, a, st);
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

/* ---- conv/flow_send ---------------------------------------------------------------------------- */

static void fl_consumer(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    cb_state_t *s = state;
    if (++s->count == s->r->n)
        cb_done(s->r);
    else if (ax_flow_consumed(ctx, m) != 0)
        cb_fail(s->r);
}

static void fl_pump(ax_ctx_t *ctx, cb_state_t *s)
{
    uint64_t v = 0;
    while (s->left) {
        int rc = ax_flow_send(ctx, &s->out, 3, &v, sizeof v);
        if (rc == -EAGAIN)
            return;
        if (rc != 0) {
            cb_fail(s->r);
            return;
        }
        s->left--;
    }
}

static void fl_producer(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    cb_state_t *s = state;
    if (ax_flow_on_grant(&s->out, m)) {
        fl_pump(ctx, s);
        return;
    }
    s->left = s->r->n;
    if (ax_flow_open(&s->out, s->r->peer, 8192) != 0) {
        cb_fail(s->r);
        return;
    }
    s->r->t0 = cb_now();
    fl_pump(ctx, s);
}

static void bm_flow_send(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    cb_run_t r = {.n = iters};
    sem_init(&r.done, 0, 0);
    ax_engine_t *e = cb_engine(2, st);
    ax_ref_t p;
    if (e && cb_spawn(e, fl_consumer, sizeof(cb_state_t), 1, &r, &r.peer) == 0 &&
        cb_spawn(e, fl_producer, sizeof(cb_state_t), 0, &r, &p) == 0) {
        cb_go(e, &r, p, st);
        axon_bench_items(st, (int64_t)iters);
    }
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

/* ---- conv/unbounded_send ---------------------------------------------------------------- */

static void ub_consumer(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx, (void)m;
    cb_state_t *s = state;
    if (++s->count == s->r->n)
        cb_done(s->r);
}

static void ub_producer(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    cb_state_t *s = state;
    if (m->type == 1) { /* start */
        s->left = s->r->n;
        s->r->t0 = cb_now();
    }
    for (uint32_t k = 0; k < 256 && s->left; k++, s->left--)
        if (ax_send_u64(ctx, s->r->peer, 3, s->left) != 0) {
            cb_fail(s->r);
            return;
        }
    if (s->left && ax_send_u64(ctx, ax_self(ctx), 2, 0) != 0)
        cb_fail(s->r);
}

static void bm_unbounded_send(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    cb_run_t r = {.n = iters};
    sem_init(&r.done, 0, 0);
    ax_engine_t *e = cb_engine(2, st);
    ax_ref_t p;
    if (e && cb_spawn(e, ub_consumer, sizeof(cb_state_t), 1, &r, &r.peer) == 0 &&
        cb_spawn(e, ub_producer, sizeof(cb_state_t), 0, &r, &p) == 0) {
        cb_go(e, &r, p, st);
        axon_bench_items(st, (int64_t)iters);
        ax_worker_stats_t ws;
        ax_engine_worker_stats(e, 0, &ws, NULL);
        axon_bench_counter(st, "overflow_hwm", (double)ws.overflow_hwm, AXON_COUNTER_PLAIN);
    }
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

static void *cb_register(const char *name, axon_bench_fn fn)
{
    void *b = axon_bench_register(name, fn, NULL);
    axon_bench_manual_time(b);
    axon_bench_unit_ns(b);
    return b;
}

AXON_BENCHMARK(register_conv_benchmarks)
{
    cb_register("conv/switch_send", bm_switch_send);
    cb_register("conv/typed_send", bm_typed_send);
    cb_register("conv/request_rtt", bm_request_rtt);
    cb_register("conv/flow_send", bm_flow_send);
    cb_register("conv/unbounded_send", bm_unbounded_send);
}
