/* perf/bench_pool.c - work pools (issue 13) against what a thread-pool user
 * would otherwise write, in one run so the ratio holds on a noisy VM:
 *
 *   pool/submit_complete   an actor keeps WINDOW tiny items in flight on a
 *                          pool with one executor per worker (2 workers);
 *                          items/s, and p50/p99 submit-to-completion ns
 *   pool/pthread_baseline  the same items through a mutex+condvar queue
 *                          feeding as many pthreads as the pool has
 *                          executors, completions back through a second
 *                          mutex+condvar queue to the submitting thread
 *
 * Latency is sampled the same way in both: one item in SAMPLE_EVERY, picked
 * by the same pseudo-random sequence, carries its submit time (tag; 0: not
 * sampled), and its completion reads the clock again.  Stamping every item
 * measured the clock more than the pool: clock_gettime on this VM's
 * kvm-clock costs 50-130 ns, against about 100 ns for a whole tiny item
 * through the pool, and the pool's driver read it at every completion
 * while the baseline's reads one clock per batch of completions.  Sampling
 * takes almost all of that off both; the baseline's cost is its locks and
 * wake-ups, so it barely moves.  Manual time: engine creation and thread
 * start are never timed.  Memory: freed per call.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "axon/axon.h"
#include "axon/pool.h"
#include "axon_bench.h"

#define WINDOW 64u
#define LAT_CAP (1u << 20) /* latency samples kept (the last LAT_CAP items) */
#define WORKERS 2u
#define SAMPLE_EVERY 8u /* a power of two */

/* The sampling sequence both benchmarks use (xorshift64). */
static bool pb_sampled(uint64_t *rng)
{
    uint64_t x = *rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    return (x & (SAMPLE_EVERY - 1)) == 0;
}
#define PB_RNG_SEED 0x9E3779B97F4A7C15ull

static uint64_t pb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The tiny item both sides run: sum 16 input bytes into 8 result bytes. */
static int tiny(ax_pool_job_t *job, const void *in, size_t len, void *out, size_t cap, size_t *out_len)
{
    (void)job;
    const unsigned char *b = in;
    uint64_t s = 0;
    for (size_t i = 0; i < len; i++)
        s += b[i];
    if (cap < sizeof s)
        return -EINVAL;
    memcpy(out, &s, sizeof s);
    *out_len = sizeof s;
    return 0;
}

typedef struct lat {
    uint32_t *v;
    uint64_t n;
} lat_t;

static void lat_add(lat_t *l, uint64_t ns)
{
    l->v[l->n++ & (LAT_CAP - 1)] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void lat_report(axon_bench_state *st, lat_t *l)
{
    uint64_t n = l->n < LAT_CAP ? l->n : LAT_CAP;
    if (!n)
        return;
    qsort(l->v, n, sizeof *l->v, cmp_u32);
    axon_bench_counter(st, "p50_ns", l->v[n / 2], AXON_COUNTER_PLAIN);
    axon_bench_counter(st, "p99_ns", l->v[(n * 99) / 100], AXON_COUNTER_PLAIN);
}

/* ---- pool/submit_complete ------------------------------------------------------------ */

typedef struct pr {
    sem_t done;
    ax_pool_t *pool;
    uint64_t n, sent, got, t0, t1, rng;
    lat_t lat;
    _Atomic int failed;
    char why[160];
} pr_t;

#define T_GO 1u
#define T_DONE 2u

static const unsigned char g_in[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void pr_fail(pr_t *r, const char *what, int rc)
{
    int z = 0;
    if (atomic_compare_exchange_strong(&r->failed, &z, 1)) {
        snprintf(r->why, sizeof r->why, "%s: %s", what, strerror(-rc));
        sem_post(&r->done);
    }
}

static void pr_submit(ax_ctx_t *ctx, pr_t *r)
{
    while (r->sent < r->n && r->sent - r->got < WINDOW) {
        ax_pool_item_t it = {.fn = tiny, .in = g_in, .in_len = sizeof g_in, .out_cap = 8,
                             .tag = pb_sampled(&r->rng) ? pb_now() : 0};
        int rc = ax_pool_submit(ctx, r->pool, &it, T_DONE, NULL);
        if (rc == -EAGAIN)
            return; /* cannot happen with queue_len >= WINDOW; retried on completion */
        if (rc) {
            pr_fail(r, "ax_pool_submit", rc);
            return;
        }
        r->sent++;
    }
}

static void pr_driver(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    pr_t *r = *(pr_t **)st;
    if (m->type == T_GO) {
        memcpy(st, m->payload.data, sizeof r);
        r = *(pr_t **)st;
        r->t0 = pb_now();
        pr_submit(ctx, r);
        return;
    }
    ax_pool_done_t d = {0};
    if (ax_pool_done_get(m, &d) < 0 || d.status != 0) {
        pr_fail(r, "completion", d.status ? d.status : -EBADMSG);
        return;
    }
    if (d.tag)
        lat_add(&r->lat, pb_now() - d.tag);
    if (++r->got == r->n) {
        r->t1 = pb_now();
        sem_post(&r->done); /* orders t0/t1/lat before the bench thread's reads */
        return;
    }
    pr_submit(ctx, r);
}

static void bm_submit_complete(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    pr_t r = {.n = iters, .rng = PB_RNG_SEED};
    r.lat.v = malloc(LAT_CAP * sizeof *r.lat.v);
    sem_init(&r.done, 0, 0);
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = WORKERS;
    ax_engine_t *e = NULL;
    ax_ref_t drv;
    ax_pool_config_t pc = AX_POOL_CONFIG_INIT;
    pc.queue_len = 4 * WINDOW;
    if (!r.lat.v || ax_engine_create(&cfg, &e) < 0 || ax_engine_start(e) < 0) {
        axon_bench_skip(st, "ax_engine_create/start with 2 workers failed");
        goto out;
    }
    if (ax_pool_create(e, &pc, &r.pool) < 0) {
        axon_bench_skip(st, ax_pool_last_error());
        goto out;
    }
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 0};
    pr_t *rp = &r;
    if (ax_engine_spawn(e, pr_driver, sizeof(pr_t *), &o, &drv) < 0 ||
        ax_engine_send(e, drv, T_GO, &rp, sizeof rp) < 0) {
        axon_bench_skip(st, "spawning the driver failed");
        goto out;
    }
    sem_wait(&r.done);
    if (atomic_load(&r.failed)) {
        axon_bench_skip(st, r.why);
        goto out;
    }
    axon_bench_set_iteration_time(st, (double)(r.t1 - r.t0) / 1e9);
    axon_bench_items(st, (int64_t)iters);
    lat_report(st, &r.lat);
    axon_bench_counter(st, "executors", WORKERS, AXON_COUNTER_PLAIN);
out:
    if (e)
        ax_engine_stop(e);
    if (e)
        ax_engine_wait(e);
    ax_pool_destroy(r.pool);
    ax_engine_destroy(e);
    sem_destroy(&r.done);
    free(r.lat.v);
}

/* ---- pool/pthread_baseline --------------------------------------------------------------- */

typedef struct bq_item {
    unsigned char in[16];
    uint64_t tag;
} bq_item_t;
typedef struct bq_done {
    uint64_t tag, result;
    int status;
} bq_done_t;

typedef struct bq {
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    bq_item_t q[4 * WINDOW];
    uint32_t head, tail;
    bool stop;
    pthread_mutex_t dmu;
    pthread_cond_t dnonempty;
    bq_done_t d[4 * WINDOW];
    uint32_t dhead, dtail;
} bq_t;
#define BQ_CAP (4 * WINDOW)

static void *bq_worker(void *arg)
{
    bq_t *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->head == q->tail && !q->stop)
            pthread_cond_wait(&q->nonempty, &q->mu);
        if (q->head == q->tail) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        bq_item_t it = q->q[q->head++ % BQ_CAP];
        pthread_cond_signal(&q->nonfull);
        pthread_mutex_unlock(&q->mu);
        bq_done_t d = {.tag = it.tag};
        size_t out_len;
        d.status = tiny(NULL, it.in, sizeof it.in, &d.result, sizeof d.result, &out_len);
        pthread_mutex_lock(&q->dmu);
        q->d[q->dtail++ % BQ_CAP] = d; /* at most WINDOW outstanding: never full */
        pthread_cond_signal(&q->dnonempty);
        pthread_mutex_unlock(&q->dmu);
    }
}

static void bm_pthread_baseline(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    bq_t *q = calloc(1, sizeof *q);
    lat_t lat = {.v = malloc(LAT_CAP * sizeof(uint32_t))};
    if (!q || !lat.v) {
        axon_bench_skip(st, "out of memory");
        free(q);
        free(lat.v);
        return;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->nonempty, NULL);
    pthread_cond_init(&q->nonfull, NULL);
    pthread_mutex_init(&q->dmu, NULL);
    pthread_cond_init(&q->dnonempty, NULL);
    pthread_t th[WORKERS];
    for (uint32_t i = 0; i < WORKERS; i++)
        pthread_create(&th[i], NULL, bq_worker, q);
    uint64_t sent = 0, got = 0, bad = 0, rng = PB_RNG_SEED;
    uint64_t t0 = pb_now();
    while (got < iters) {
        while (sent < iters && sent - got < WINDOW) {
            pthread_mutex_lock(&q->mu);
            while (q->tail - q->head == BQ_CAP)
                pthread_cond_wait(&q->nonfull, &q->mu);
            bq_item_t *it = &q->q[q->tail++ % BQ_CAP];
            memcpy(it->in, g_in, sizeof g_in);
            it->tag = pb_sampled(&rng) ? pb_now() : 0;
            pthread_cond_signal(&q->nonempty);
            pthread_mutex_unlock(&q->mu);
            sent++;
        }
        pthread_mutex_lock(&q->dmu);
        while (q->dhead == q->dtail)
            pthread_cond_wait(&q->dnonempty, &q->dmu);
        uint64_t now = 0; /* one read for the batch, if it holds a sampled item */
        while (q->dhead != q->dtail) {
            bq_done_t d = q->d[q->dhead++ % BQ_CAP];
            bad += d.status != 0;
            if (d.tag) {
                if (!now)
                    now = pb_now();
                lat_add(&lat, now - d.tag);
            }
            got++;
        }
        pthread_mutex_unlock(&q->dmu);
    }
    uint64_t t1 = pb_now();
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->mu);
    for (uint32_t i = 0; i < WORKERS; i++)
        pthread_join(th[i], NULL);
    if (bad) {
        axon_bench_skip(st, "an item failed");
    } else {
        axon_bench_set_iteration_time(st, (double)(t1 - t0) / 1e9);
        axon_bench_items(st, (int64_t)iters);
        lat_report(st, &lat);
        axon_bench_counter(st, "threads", WORKERS, AXON_COUNTER_PLAIN);
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->nonempty);
    pthread_cond_destroy(&q->nonfull);
    pthread_mutex_destroy(&q->dmu);
    pthread_cond_destroy(&q->dnonempty);
    free(q);
    free(lat.v);
}

AXON_BENCHMARK(register_pool_benchmarks)
{
    void *b = axon_bench_register("pool/submit_complete", bm_submit_complete, NULL);
    axon_bench_manual_time(b);
    axon_bench_unit_ns(b);
    b = axon_bench_register("pool/pthread_baseline", bm_pthread_baseline, NULL);
    axon_bench_manual_time(b);
    axon_bench_unit_ns(b);
}
