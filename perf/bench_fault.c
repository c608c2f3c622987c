/* perf/bench_fault.c - failure and supervision benchmarks (issue 11):
 *
 *   fault/restart   ns per restart: a small actor under a one-for-one
 *                   supervisor (lib/supervisor.c) fails (ax_fail), the
 *                   supervisor hears its DOWN and restarts it in place, and
 *                   the first message the new incarnation handles is
 *                   answered.  One worker, like engine/local_send: the
 *                   driver, the supervisor and the child share it.
 *
 * One iteration: the driver sends the child T_FAIL and T_PING in one turn;
 * the child fails on T_FAIL (fini, DOWN to the supervisor, EXIT over the
 * link); T_PING is held while it is dormant; the supervisor's ax_restart
 * (and ax_link) run its init again and release the held T_PING, which the
 * new incarnation answers with T_PONG; the driver counts it and goes again.
 * perf/scripts/restart-vs-erlang.sh runs this beside the same loop in
 * Erlang/OTP (perf/erlang/restart_bench.escript) and prints the ratio.
 *
 * Manual time stamped inside the driver: engine creation, thread start and
 * the supervisor's start are not timed.  Threading: one engine per call;
 * the result comes back through a semaphore.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "axon/axon.h"
#include "axon/failure.h"
#include "axon/supervisor.h"
#include "axon_bench.h"

enum { F_START = 1, F_FAIL, F_PING, F_PONG };

typedef struct fb_run {
    sem_t done;
    uint64_t n, t0, t1;
    int rc;
    ax_ref_t child;
} fb_run_t;

static uint64_t fb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The supervised actor: 16 bytes of state, fails on request, answers pings. */
static void fb_child(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    uint64_t *s = state;
    if (m->type == F_FAIL) {
        ax_fail(ctx, 1, "bench");
        return;
    }
    s[0]++;
    ax_send_u64(ctx, ax_sender(ctx), F_PONG, s[0]);
}

static void fb_event(void *user, const ax_sup_event_t *ev)
{
    fb_run_t *r = user;
    if (ev->kind == AX_SUP_EV_STARTED)
        r->child = ev->child;
    else if (ev->kind == AX_SUP_EV_ESCALATED)
        r->rc = -EOVERFLOW;
}

static const ax_child_spec_t fb_kids[] = {
    {.restart = AX_CHILD_PERMANENT, .name = "child", .fn = fb_child, .state_size = 16}};

typedef struct fb_driver {
    fb_run_t *r;
    ax_sup_spec_t spec;
    ax_ref_t sup;
    uint64_t count;
} fb_driver_t;

static void fb_kick(ax_ctx_t *ctx, fb_driver_t *d)
{
    int rc = ax_send(ctx, d->r->child, F_FAIL, NULL, 0);
    if (!rc)
        rc = ax_send(ctx, d->r->child, F_PING, NULL, 0);
    if (rc) {
        d->r->rc = rc;
        d->r->t1 = fb_now();
        sem_post(&d->r->done);
    }
}

static void fb_driver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    fb_driver_t *d = state;
    fb_run_t *r = d->r;
    if (m->type == F_START) {
        /* Intensity far above the rate (the maximum, 2^20 restarts in
         * 100 ms, would be 95 ns each); its history ring is 8 MiB of the
         * supervisor's state.  A period of 100 ms or more lets the
         * supervisor read the coarse clock, as a real spec (seconds) does. */
        d->spec = (ax_sup_spec_t){.strategy = AX_SUP_ONE_FOR_ONE, .intensity = 1u << 20,
                                  .period_ms = 100, .nchildren = 1, .children = fb_kids,
                                  .on_event = fb_event, .user = r};
        int rc = ax_sup_spawn(ctx, &d->spec, NULL, &d->sup);
        if (rc || !r->child) {
            r->rc = rc ? rc : -ESRCH;
            sem_post(&r->done);
            return;
        }
        r->t0 = fb_now();
        fb_kick(ctx, d);
        return;
    }
    if (m->type != F_PONG)
        return;
    if (++d->count == r->n || r->rc) {
        r->t1 = fb_now();
        sem_post(&r->done); /* pairs with sem_timedwait: t0, t1, rc visible */
        return;
    }
    fb_kick(ctx, d);
}

static void fb_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    fb_driver_t *d = state;
    memcpy(&d->r, arg, len);
}

static void bm_restart(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    fb_run_t r = {.n = iters};
    fb_run_t *rp = &r;
    ax_config_t cfg;
    ax_engine_t *e;
    ax_ref_t drv;
    sem_init(&r.done, 0, 0);
    ax_config_init(&cfg);
    cfg.workers = 1;
    if (ax_engine_create(&cfg, &e) < 0) {
        axon_bench_skip(st, "ax_engine_create failed");
        sem_destroy(&r.done);
        return;
    }
    ax_spawn_opts_t o = {.size = sizeof o, .init = fb_init, .arg = &rp, .arg_len = sizeof rp};
    uint64_t z = 0;
    if (ax_engine_spawn(e, fb_driver, sizeof(fb_driver_t), &o, &drv) || ax_engine_start(e) ||
        ax_engine_send(e, drv, F_START, &z, sizeof z)) {
        axon_bench_skip(st, "engine start failed");
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 60;
        int rc;
        while ((rc = sem_timedwait(&r.done, &ts)) < 0 && errno == EINTR)
            ;
        if (rc < 0) {
            fprintf(stderr, "bench_fault: no result after 60 s (a restart was lost?)\n");
            abort(); /* a hung engine cannot be stopped cleanly */
        }
        if (r.rc) {
            char why[120];
            snprintf(why, sizeof why, "restart loop failed: %s", strerror(-r.rc));
            axon_bench_skip(st, why);
        } else {
            axon_bench_set_iteration_time(st, (double)(r.t1 - r.t0) / 1e9);
        }
    }
    ax_engine_stop(e);
    ax_engine_wait(e);
    ax_engine_destroy(e);
    sem_destroy(&r.done);
}

AXON_BENCHMARK(register_fault)
{
    void *b = axon_bench_register("fault/restart", bm_restart, NULL);
    axon_bench_manual_time(b);
    axon_bench_unit_ns(b);
}
