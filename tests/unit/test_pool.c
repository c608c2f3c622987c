/* tests/unit/test_pool.c - work pools (axon/pool.h): items from behaviours
 * and from 8 outside threads, a full pool, failing, scratch-exhausting,
 * over-budget and cancelled items, blob input and result, bad configs; every
 * completion arrives exactly once.
 *
 * Engines have 2 workers with oversubscribe allowed, so the tests run on a
 * 1-CPU machine (taskset -c 0) as well.  Waits are bounded in seconds.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "axon/axon.h"
#include "axon/pool.h"
#include "axon/watchdog.h"

#define ENGINE_TEST_NAME "test_pool"
#define ENGINE_TEST_HANG "a completion was lost or an executor is stuck"
#include "unit/engine_test.h"

#define T_DONE 7u
#define T_GO 8u
#define T_RETRY 9u

static ax_engine_t *start_engine(uint32_t workers)
{
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_config_init(&cfg);
    cfg.workers = workers;
    cfg.oversubscribe = true;
    cfg.arena_bytes = 8u << 20;
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    return eng;
}

/* ---- items ---------------------------------------------------------------------- */

/* Sum of the input bytes plus the item's scratch round trip. */
static int item_sum(ax_pool_job_t *job, const void *in, size_t len, void *out, size_t cap,
                    size_t *out_len)
{
    const unsigned char *b = in;
    unsigned char *tmp = ax_pool_alloc(job, len ? len : 1);
    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, b, len);
    uint64_t s = 0;
    for (size_t i = 0; i < len; i++)
        s += tmp[i];
    if (cap < sizeof s)
        return -EINVAL;
    memcpy(out, &s, sizeof s);
    *out_len = sizeof s;
    return 0;
}

static _Atomic uint64_t g_ran;

static int item_fail(ax_pool_job_t *job, const void *in, size_t len, void *out, size_t cap,
                     size_t *out_len)
{
    (void)job, (void)in, (void)len, (void)out, (void)cap, (void)out_len;
    atomic_fetch_add(&g_ran, 1);
    return -EIO;
}

/* Allocates *(uint64_t *)in bytes of scratch in 1 KiB steps; returns 0
 * even when an allocation failed (the pool must fail it anyway). */
static int item_greedy(ax_pool_job_t *job, const void *in, size_t len, void *out, size_t cap,
                       size_t *out_len)
{
    (void)len, (void)out, (void)cap, (void)out_len;
    uint64_t want;
    memcpy(&want, in, sizeof want);
    for (uint64_t got = 0; got < want; got += 1024) {
        unsigned char *p = ax_pool_alloc(job, 1024);
        if (!p)
            return 0;
        memset(p, 0xAB, 1024);
    }
    atomic_fetch_add(&g_ran, 1);
    return 0;
}

static _Atomic int g_gate; /* items below wait for it (test only: they hold a worker) */
static _Atomic uint64_t g_gate_started;

static int item_gated(ax_pool_job_t *job, const void *in, size_t len, void *out, size_t cap,
                      size_t *out_len)
{
    (void)job, (void)in, (void)len, (void)out, (void)cap, (void)out_len;
    atomic_fetch_add_explicit(&g_gate_started, 1, memory_order_release);
    uint64_t end = now_ns() + 30ull * 1000000000ull;
    while (!atomic_load(&g_gate) && now_ns() < end)
        sched_yield();
    atomic_fetch_add(&g_ran, 1);
    return 0;
}

static int item_slow(ax_pool_job_t *job, const void *in, size_t len, void *out, size_t cap,
                     size_t *out_len)
{
    (void)job, (void)in, (void)len, (void)out, (void)cap, (void)out_len;
    sleep_us(5000);
    return 0;
}

static ax_pool_item_t sum_item(const void *in, size_t len, uint64_t tag)
{
    ax_pool_item_t it = {.fn = item_sum, .in = in, .in_len = len, .out_cap = 8, .tag = tag};
    return it;
}

static uint64_t expect_sum(uint64_t tag)
{
    return (tag & 0xFF) * 16;
}

/* ---- from behaviours -------------------------------------------------------------- */

#define BH_ITEMS 2000u
#define BH_WINDOW 16u

typedef struct bh_shared {
    ax_pool_t *pool;
    _Atomic uint64_t done_total, bad;
    _Atomic uint8_t seen[2][BH_ITEMS];
} bh_shared_t;

typedef struct bh_state {
    bh_shared_t *sh;
    uint32_t who, sent, got;
} bh_state_t;

static void bh_submit_more(ax_ctx_t *ctx, bh_state_t *s)
{
    while (s->sent < BH_ITEMS && s->sent - s->got < BH_WINDOW) {
        unsigned char in[16];
        uint64_t tag = (uint64_t)s->who << 32 | s->sent;
        memset(in, (int)(tag & 0xFF), sizeof in);
        ax_pool_item_t it = sum_item(in, sizeof in, tag);
        int rc = ax_pool_submit(ctx, s->sh->pool, &it, T_DONE, NULL);
        if (rc == -EAGAIN) {
            /* The other submitter fills the pool: retry on our next
             * completion, or, with none in flight, by a message to self
             * (-EAGAIN may also be transient: a slot on its way back). */
            if (s->sent == s->got)
                ax_send_u64(ctx, ax_self(ctx), T_RETRY, 0);
            break;
        }
        if (rc) {
            atomic_fetch_add(&s->sh->bad, 1);
            return;
        }
        s->sent++;
    }
}

static void bh_actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    bh_state_t *s = st;
    if (m->type == T_GO) {
        memcpy(&s->sh, m->payload.data, sizeof s->sh);
        s->who = (uint32_t)m->payload.u64[1];
        bh_submit_more(ctx, s);
        return;
    }
    if (m->type == T_RETRY) {
        bh_submit_more(ctx, s);
        return;
    }
    ax_pool_done_t d;
    assert_int_equal(ax_pool_done_get(m, &d), 0);
    uint64_t v;
    memcpy(&v, d.small, sizeof v);
    uint32_t who = (uint32_t)(d.tag >> 32), k = (uint32_t)d.tag;
    if (d.status != 0 || who != s->who || k >= BH_ITEMS || v != expect_sum(d.tag) ||
        d.out_len != 8)
        atomic_fetch_add(&s->sh->bad, 1);
    else
        atomic_fetch_add(&s->sh->seen[who][k], 1);
    s->got++;
    atomic_fetch_add_explicit(&s->sh->done_total, 1, memory_order_release);
    bh_submit_more(ctx, s);
}

static void pool_runs_items_from_behaviours_once_each(void **state)
{
    (void)state;
    g_test = __func__;
    ax_engine_t *eng = start_engine(2);
    static bh_shared_t sh;
    memset(&sh, 0, sizeof sh);
    ax_pool_config_t pc = AX_POOL_CONFIG_INIT;
    pc.queue_len = 24; /* smaller than both windows: -EAGAIN happens and is retried */
    assert_int_equal(ax_pool_create(eng, &pc, &sh.pool), 0);
    for (uint32_t who = 0; who < 2; who++) {
        ax_ref_t a;
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = who};
        assert_int_equal(ax_engine_spawn(eng, bh_actor, sizeof(bh_state_t), &o, &a), 0);
        uint64_t go[2] = {(uint64_t)(uintptr_t)&sh, who};
        assert_int_equal(ax_engine_send(eng, a, T_GO, go, sizeof go), 0);
    }
    if (!wait_at_least(&sh.done_total, 2 * BH_ITEMS))
        fail_msg("%llu of %u completions arrived", (unsigned long long)atomic_load(&sh.done_total),
                 2 * BH_ITEMS);
    sleep_us(20000); /* a duplicate would show up now */
    assert_int_equal(atomic_load(&sh.bad), 0);
    assert_int_equal(atomic_load(&sh.done_total), 2 * BH_ITEMS);
    for (uint32_t w = 0; w < 2; w++)
        for (uint32_t k = 0; k < BH_ITEMS; k++)
            if (atomic_load(&sh.seen[w][k]) != 1)
                fail_msg("item %u of submitter %u completed %u times", k, w, atomic_load(&sh.seen[w][k]));
    ax_pool_stats_t ps;
    assert_int_equal(ax_pool_stats(sh.pool, &ps), 0);
    assert_int_equal(ps.executors, 2);
    assert_int_equal(ps.ok, 2 * BH_ITEMS);
    assert_int_equal(ps.completed, 2 * BH_ITEMS);
    assert_int_equal(ps.in_flight, 0);
    assert_int_equal(ps.completion_lost, 0);
    ax_pool_destroy(sh.pool);
    ax_engine_destroy(eng);
}

/* ---- from 8 outside threads -------------------------------------------------------------- */

#define OT_THREADS 8u
#define OT_ITEMS 300u
#define OT_OUTSTANDING 4u

typedef struct ot_arg {
    ax_pool_t *pool;
    uint32_t who;
    uint32_t bad, ok, again;
} ot_arg_t;

static void *ot_thread(void *arg)
{
    ot_arg_t *a = arg;
    ax_pool_future_t fut[OT_OUTSTANDING];
    uint64_t out[OT_OUTSTANDING];
    unsigned char in[OT_OUTSTANDING][16];
    uint64_t tags[OT_OUTSTANDING];
    for (uint32_t k = 0; k < OT_ITEMS; k += OT_OUTSTANDING) {
        uint32_t n = 0;
        for (uint32_t j = 0; j < OT_OUTSTANDING && k + j < OT_ITEMS; j++) {
            tags[j] = (uint64_t)a->who << 32 | (k + j);
            memset(in[j], (int)(tags[j] & 0xFF), 16);
            ax_pool_item_t it = {.fn = item_sum, .in = in[j], .in_len = 16, .out = &out[j],
                                 .out_cap = sizeof out[j], .tag = tags[j]};
            int rc;
            while ((rc = ax_pool_submit_future(a->pool, &it, &fut[j], NULL)) == -EAGAIN) {
                a->again++;
                sched_yield();
            }
            if (rc) {
                a->bad++;
                return NULL;
            }
            n++;
        }
        for (uint32_t j = 0; j < n; j++) {
            ax_pool_done_t d;
            if (ax_pool_future_wait(&fut[j], 30ll * 1000000000ll, &d) != 0 || d.status != 0 ||
                d.tag != tags[j] || d.out_len != 8 || out[j] != expect_sum(tags[j]))
                a->bad++;
            else
                a->ok++;
            /* A second wait returns the same completion: nothing more comes. */
            ax_pool_done_t d2;
            if (ax_pool_future_wait(&fut[j], 0, &d2) != 0 || d2.id != d.id)
                a->bad++;
        }
    }
    return NULL;
}

static void pool_runs_items_from_eight_outside_threads(void **state)
{
    (void)state;
    g_test = __func__;
    ax_engine_t *eng = start_engine(2);
    ax_pool_t *pool;
    ax_pool_config_t pc = AX_POOL_CONFIG_INIT;
    pc.queue_len = 16; /* 8 threads x 4 outstanding = 32: some submits see -EAGAIN */
    assert_int_equal(ax_pool_create(eng, &pc, &pool), 0);
    pthread_t t[OT_THREADS];
    ot_arg_t a[OT_THREADS];
    for (uint32_t i = 0; i < OT_THREADS; i++) {
        a[i] = (ot_arg_t){.pool = pool, .who = i};
        assert_int_equal(pthread_create(&t[i], NULL, ot_thread, &a[i]), 0);
    }
    uint32_t ok = 0;
    for (uint32_t i = 0; i < OT_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].bad, 0);
        ok += a[i].ok;
    }
    assert_int_equal(ok, OT_THREADS * OT_ITEMS);
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    assert_int_equal(ps.completed, OT_THREADS * OT_ITEMS);
    assert_int_equal(ps.in_flight, 0);
    ax_pool_destroy(pool);
    ax_engine_destroy(eng);
}

/* ---- full pool, cancel -------------------------------------------------------------------- */

static ax_pool_t *one_executor_pool(ax_engine_t *eng, uint32_t queue_len, uint64_t scratch,
                                    uint64_t budget_ns)
{
    static const uint32_t w0[] = {0};
    ax_pool_t *pool;
    ax_pool_config_t pc = AX_POOL_CONFIG_INIT;
    pc.place = AX_POOL_ON_WORKERS;
    pc.workers = w0;
    pc.nworkers = 1;
    pc.queue_len = queue_len;
    pc.scratch_bytes = scratch;
    pc.budget_ns = budget_ns;
    assert_int_equal(ax_pool_create(eng, &pc, &pool), 0);
    return pool;
}

static void full_pool_answers_eagain_at_once_and_recovers(void **state)
{
    (void)state;
    g_test = __func__;
    ax_engine_t *eng = start_engine(2);
    ax_pool_t *pool = one_executor_pool(eng, 4, 0, 0);
    atomic_store(&g_gate, 0);
    atomic_store(&g_ran, 0);
    ax_pool_future_t f[5];
    ax_pool_item_t it = {.fn = item_gated};
    for (int i = 0; i < 4; i++)
        assert_int_equal(ax_pool_submit_future(pool, &it, &f[i], NULL), 0);
    uint64_t t0 = now_ns();
    assert_int_equal(ax_pool_submit_future(pool, &it, &f[4], NULL), -EAGAIN);
    assert_true(now_ns() - t0 < 5ull * 1000000000ull); /* at once, never blocked on the gate */
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    assert_int_equal(ps.rejected_full, 1);
    assert_int_equal(ps.in_flight, 4);
    atomic_store(&g_gate, 1);
    for (int i = 0; i < 4; i++) {
        ax_pool_done_t d;
        assert_int_equal(ax_pool_future_wait(&f[i], 30ll * 1000000000ll, &d), 0);
        assert_int_equal(d.status, 0);
    }
    /* Room again. */
    assert_int_equal(ax_pool_submit_future(pool, &it, &f[4], NULL), 0);
    ax_pool_done_t d;
    assert_int_equal(ax_pool_future_wait(&f[4], 30ll * 1000000000ll, &d), 0);
    assert_int_equal(atomic_load(&g_ran), 5);
    ax_pool_destroy(pool);
    ax_engine_destroy(eng);
}

static void cancelled_items_complete_once_and_never_run(void **state)
{
    (void)state;
    g_test = __func__;
    ax_engine_t *eng = start_engine(2);
    ax_pool_t *pool = one_executor_pool(eng, 16, 0, 0);
    atomic_store(&g_gate, 0);
    atomic_store(&g_gate_started, 0);
    atomic_store(&g_ran, 0);
    ax_pool_future_t f[6];
    uint64_t id[6];
    ax_pool_item_t gate = {.fn = item_gated};
    ax_pool_item_t fail = {.fn = item_fail};
    assert_int_equal(ax_pool_submit_future(pool, &gate, &f[0], &id[0]), 0);
    for (int i = 1; i < 6; i++)
        assert_int_equal(ax_pool_submit_future(pool, &fail, &f[i], &id[i]), 0);
    /* Item 0 occupies the one executor once it has started; 1..5 wait. */
    assert_true(wait_at_least(&g_gate_started, 1));
    assert_int_equal(ax_pool_cancel(pool, id[0]), -EBUSY); /* running */
    assert_int_equal(ax_pool_cancel(pool, id[2]), 0);
    assert_int_equal(ax_pool_cancel(pool, id[4]), 0);
    assert_int_equal(ax_pool_cancel(pool, id[4]), -EBUSY); /* once */
    assert_int_equal(ax_pool_cancel(pool, id[2] + (1ull << 24)), -EBUSY); /* wrong generation */
    atomic_store(&g_gate, 1);
    for (int i = 0; i < 6; i++) {
        ax_pool_done_t d;
        assert_int_equal(ax_pool_future_wait(&f[i], 30ll * 1000000000ll, &d), 0);
        assert_int_equal(d.id, id[i]);
        if (i == 0) {
            assert_int_equal(d.status, 0);
        } else if (i == 2 || i == 4) {
            assert_int_equal(d.status, -ECANCELED);
            assert_int_equal(d.reason, AX_POOL_R_CANCELLED);
        } else {
            assert_int_equal(d.status, -EIO);
            assert_int_equal(d.reason, AX_POOL_R_FAILED);
        }
    }
    assert_int_equal(atomic_load(&g_ran), 1 + 3); /* the gate and the three uncancelled */
    assert_int_equal(ax_pool_cancel(pool, id[1]), -EBUSY); /* completed */
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    assert_int_equal(ps.cancelled, 2);
    assert_int_equal(ps.failed, 3);
    assert_int_equal(ps.ok, 1);
    assert_int_equal(ax_pool_cancel(pool, 16), -EINVAL); /* index 16 of a 16-slot pool */
    ax_pool_destroy(pool);
    ax_engine_destroy(eng);
}

/* ---- failures: scratch, budget --------------------------------------------------------------- */

static void scratch_exhaustion_fails_the_item_and_the_next_starts_empty(void **state)
{
    (void)state;
    g_test = __func__;
    ax_engine_t *eng = start_engine(2);
    ax_pool_t *pool = one_executor_pool(eng, 8, 16 * 1024, 0);
    atomic_store(&g_ran, 0);
    uint64_t want[4] = {16 * 1024, 16 * 1024 + 1, 12 * 1024, 12 * 1024};
    ax_pool_future_t f[4];
    for (int i = 0; i < 4; i++) {
        ax_pool_item_t it = {.fn = item_greedy, .in = &want[i], .in_len = 8};
        assert_int_equal(ax_pool_submit_future(pool, &it, &f[i], NULL), 0);
    }
    int expect[4] = {0, -ENOMEM, 0, 0}; /* 12 KiB twice: only if the arena was reset */
    for (int i = 0; i < 4; i++) {
        ax_pool_done_t d;
        assert_int_equal(ax_pool_future_wait(&f[i], 30ll * 1000000000ll, &d), 0);
        assert_int_equal(d.status, expect[i]);
        assert_int_equal(d.reason, i == 1 ? AX_POOL_R_SCRATCH : AX_POOL_R_OK);
    }
    assert_int_equal(atomic_load(&g_ran), 3);
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    assert_int_equal(ps.scratch_exhausted, 1);
    ax_pool_destroy(pool);
    ax_engine_destroy(eng);
}

static void over_budget_item_is_flagged_and_counted(void **state)
{
    (void)state;
    g_test = __func__;
    ax_engine_t *eng = start_engine(2);
    ax_pool_t *pool = one_executor_pool(eng, 8, 0, 1000000); /* 1 ms */
    ax_pool_future_t f;
    ax_pool_item_t it = {.fn = item_slow};
    assert_int_equal(ax_pool_submit_future(pool, &it, &f, NULL), 0);
    ax_pool_done_t d;
    assert_int_equal(ax_pool_future_wait(&f, 30ll * 1000000000ll, &d), 0);
    assert_int_equal(d.status, 0); /* it still completes */
    assert_true(d.flags & AX_POOL_DONE_OVER_BUDGET);
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    assert_int_equal(ps.over_budget, 1);
    assert_true(ps.max_item_ns >= 5000000);
    ax_pool_destroy(pool);
    ax_engine_destroy(eng);
}

/* What the watchdog hook saw of pool reports (layer reports: what != NULL). */
typedef struct wd_seen {
    pthread_mutex_t mu;
    _Atomic uint64_t reports, behaviour_reports;
    uint32_t worker;
    const void *code;
    uint64_t running_ns;
    char what[256], symbol[256], text[768];
} wd_seen_t;

static void wd_hook(void *user, const ax_watchdog_report_t *r)
{
    wd_seen_t *s = user;
    if (!r->what) { /* the watchdog caught a behaviour itself: not ours */
        atomic_fetch_add(&s->behaviour_reports, 1);
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->worker = r->worker;
    s->code = r->behaviour;
    s->running_ns = r->running_ns;
    snprintf(s->what, sizeof s->what, "%s", r->what);
    snprintf(s->symbol, sizeof s->symbol, "%s", r->symbol);
    snprintf(s->text, sizeof s->text, "%s", r->text);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->reports, 1); /* seq_cst, after the fields */
}

/* Two workers; watchdog_ms: 0 default, < 0 off; hook may be NULL. */
static ax_engine_t *start_engine_wd(int32_t watchdog_ms, wd_seen_t *seen)
{
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_config_init(&cfg);
    cfg.workers = 2;
    cfg.oversubscribe = true;
    cfg.arena_bytes = 8u << 20;
    cfg.watchdog_ms = watchdog_ms;
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    if (seen)
        ax_engine_set_watchdog_hook(eng, wd_hook, seen);
    assert_int_equal(ax_engine_start(eng), 0);
    return eng;
}

static void over_budget_item_is_reported_through_the_watchdog(void **state)
{
    (void)state;
    g_test = __func__;
    static wd_seen_t seen;
    memset(&seen, 0, sizeof seen);
    pthread_mutex_init(&seen.mu, NULL);
    /* A 10 s watchdog never catches the 5 ms item itself (its scans come
     * every 250 ms), so each report the hook sees is the pool's. */
    ax_engine_t *eng = start_engine_wd(10000, &seen);
    static const uint32_t w0[] = {0};
    ax_pool_config_t pc = AX_POOL_CONFIG_INIT;
    pc.place = AX_POOL_ON_WORKERS;
    pc.workers = w0;
    pc.nworkers = 1;
    pc.budget_ns = 1000000; /* 1 ms; the item sleeps 5 */
    pc.name = "resize";
    ax_pool_t *pool;
    assert_int_equal(ax_pool_create(eng, &pc, &pool), 0);
    ax_pool_future_t f;
    uint64_t id;
    ax_pool_item_t it = {.fn = item_slow, .tag = 77};
    assert_int_equal(ax_pool_submit_future(pool, &it, &f, &id), 0);
    ax_pool_done_t d;
    assert_int_equal(ax_pool_future_wait(&f, 30ll * 1000000000ll, &d), 0);
    assert_int_equal(d.status, 0);
    assert_true(d.flags & AX_POOL_DONE_OVER_BUDGET);
    WAIT_FOR(seen.reports, 1); /* at the watchdog's next scan */
    pthread_mutex_lock(&seen.mu);
    char want[64];
    snprintf(want, sizeof want, "pool \"resize\" item 0x%llx (tag 77)", (unsigned long long)id);
    assert_non_null(strstr(seen.what, want));
    assert_non_null(strstr(seen.what, "budget of 1000 us"));
    assert_non_null(strstr(seen.text, want)); /* the stderr line names it too */
    assert_true(seen.code == (const void *)(uintptr_t)item_slow);
    assert_non_null(strstr(seen.symbol, "item_slow"));
    assert_int_equal(seen.worker, 0);
    assert_true(seen.running_ns >= 5000000);
    pthread_mutex_unlock(&seen.mu);
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    assert_int_equal(ps.over_budget, 1);
    assert_int_equal(ps.over_budget_reported, 1);
    ax_pool_destroy(pool);
    ax_engine_stop(eng);
    assert_int_equal(ax_engine_wait(eng), 0);
    ax_worker_stats_t st;
    assert_int_equal(ax_engine_worker_stats(eng, 0, &st, NULL), 0);
    assert_int_equal(st.watchdog_overruns, 1); /* the engine's counter took it */
    assert_int_equal(atomic_load(&seen.reports), 1); /* once */
    assert_int_equal(atomic_load(&seen.behaviour_reports), 0);
    ax_engine_destroy(eng);
    pthread_mutex_destroy(&seen.mu);
}

static void over_budget_item_without_a_watchdog_is_counted_in_stats(void **state)
{
    (void)state;
    g_test = __func__;
    ax_engine_t *eng = start_engine_wd(-1, NULL); /* no watchdog */
    ax_pool_t *pool = one_executor_pool(eng, 8, 0, 1000000);
    ax_pool_future_t f;
    ax_pool_item_t it = {.fn = item_slow};
    assert_int_equal(ax_pool_submit_future(pool, &it, &f, NULL), 0);
    ax_pool_done_t d;
    assert_int_equal(ax_pool_future_wait(&f, 30ll * 1000000000ll, &d), 0);
    assert_true(d.flags & AX_POOL_DONE_OVER_BUDGET);
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    assert_int_equal(ps.over_budget, 1);
    assert_int_equal(ps.over_budget_reported, 0);
    assert_true(ps.max_item_ns >= 5000000);
    ax_pool_destroy(pool);
    ax_engine_stop(eng);
    assert_int_equal(ax_engine_wait(eng), 0);
    ax_worker_stats_t st;
    assert_int_equal(ax_engine_worker_stats(eng, 0, &st, NULL), 0);
    assert_int_equal(st.watchdog_overruns, 0);
    ax_engine_destroy(eng);
}

/* ---- blobs ------------------------------------------------------------------------------- */

typedef struct blob_shared {
    ax_pool_t *pool;
    _Atomic uint64_t done;
    _Atomic int status;
    uint64_t sum;
    uint32_t len;
    bool has_blob;
} blob_shared_t;

static int item_echo_sum(ax_pool_job_t *job, const void *in, size_t len, void *out, size_t cap,
                         size_t *out_len)
{
    (void)job;
    const unsigned char *b = in;
    uint64_t s = 0;
    for (size_t i = 0; i < len; i++)
        s += b[i];
    if (cap < 1000)
        return -EINVAL;
    memset(out, 0x5A, 1000);
    memcpy(out, &s, sizeof s);
    *out_len = 1000;
    return 0;
}

static void blob_actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    blob_shared_t **sp = st;
    if (m->type == T_GO) {
        memcpy(sp, m->payload.data, sizeof *sp);
        unsigned char *in = ax_blob_alloc(ctx, 4096);
        assert_non_null(in);
        memset(in, 1, 4096);
        ax_pool_item_t it = {.fn = item_echo_sum, .in = in, .in_len = 4096,
                             .in_mode = AX_POOL_IN_BLOB, .out_cap = 1000};
        int rc = ax_pool_submit(ctx, (*sp)->pool, &it, T_DONE, NULL);
        if (rc) {
            ax_blob_free(ctx, in);
            atomic_store(&(*sp)->status, rc);
            atomic_store_explicit(&(*sp)->done, 1, memory_order_release);
        }
        return;
    }
    ax_pool_done_t d = {0};
    if (ax_pool_done_get(m, &d) < 0)
        d.status = -EBADMSG;
    const unsigned char *r = ax_pool_done_result(m);
    (*sp)->has_blob = r != NULL;
    if (r) {
        memcpy(&(*sp)->sum, r, 8);
        (*sp)->len = d.out_len;
        if (r[999] != 0x5A)
            d.status = -EBADMSG;
    }
    atomic_store(&(*sp)->status, d.status);
    atomic_store_explicit(&(*sp)->done, 1, memory_order_release);
}

static void blob_input_and_blob_result_travel_with_ownership(void **state)
{
    (void)state;
    g_test = __func__;
    ax_engine_t *eng = start_engine(2);
    static blob_shared_t sh;
    memset(&sh, 0, sizeof sh);
    assert_int_equal(ax_pool_create(eng, &(ax_pool_config_t)AX_POOL_CONFIG_INIT, &sh.pool), 0);
    ax_ref_t a;
    assert_int_equal(ax_engine_spawn(eng, blob_actor, sizeof(void *), NULL, &a), 0);
    blob_shared_t *p = &sh;
    assert_int_equal(ax_engine_send(eng, a, T_GO, &p, sizeof p), 0);
    assert_true(wait_at_least(&sh.done, 1));
    assert_int_equal(atomic_load(&sh.status), 0);
    assert_true(sh.has_blob);
    assert_int_equal(sh.sum, 4096);
    assert_int_equal(sh.len, 1000);
    ax_pool_destroy(sh.pool);
    ax_engine_destroy(eng); /* LSan: the input and result blobs were freed */
}

/* ---- bad input -------------------------------------------------------------------------- */

static void bad_configs_and_items_are_refused_with_a_reason(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_config_init(&cfg);
    cfg.workers = 2;
    cfg.oversubscribe = true;
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    ax_pool_t *pool = NULL;
    ax_pool_config_t pc = AX_POOL_CONFIG_INIT;
    assert_int_equal(ax_pool_create(eng, &pc, &pool), -EINVAL); /* not started */
    assert_non_null(strstr(ax_pool_last_error(), "ax_engine_start"));
    assert_int_equal(ax_engine_start(eng), 0);
    uint32_t bad_w[] = {0, 7};
    pc.place = AX_POOL_ON_WORKERS;
    pc.workers = bad_w;
    pc.nworkers = 2;
    assert_int_equal(ax_pool_create(eng, &pc, &pool), -EINVAL);
    assert_non_null(strstr(ax_pool_last_error(), "workers[1] = 7"));
    pc = (ax_pool_config_t)AX_POOL_CONFIG_INIT;
    pc.size = 8;
    assert_int_equal(ax_pool_create(eng, &pc, &pool), -EINVAL);
    assert_non_null(strstr(ax_pool_last_error(), "AX_POOL_CONFIG_INIT"));
    pc = (ax_pool_config_t)AX_POOL_CONFIG_INIT;
    pc.queue_len = (1u << 24) + 1;
    assert_int_equal(ax_pool_create(eng, &pc, &pool), -EINVAL);
    pc = (ax_pool_config_t)AX_POOL_CONFIG_INIT;
    pc.place = 9;
    assert_int_equal(ax_pool_create(eng, &pc, &pool), -EINVAL);
    pc = (ax_pool_config_t)AX_POOL_CONFIG_INIT;
    pc.place = AX_POOL_PER_NODE;
    pc.in_max = 16;
    assert_int_equal(ax_pool_create(eng, &pc, &pool), 0);
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    assert_int_equal(ps.executors, 1); /* this machine, or the unpinned plan: one node */
    unsigned char big[17] = {0};
    ax_pool_future_t f;
    ax_pool_item_t it = {.fn = item_sum, .in = big, .in_len = sizeof big, .out_cap = 8};
    assert_int_equal(ax_pool_submit_future(pool, &it, &f, NULL), -EINVAL); /* > in_max */
    it.in_len = 16;
    it.fn = NULL;
    assert_int_equal(ax_pool_submit_future(pool, &it, &f, NULL), -EINVAL);
    it.fn = item_sum;
    it.out_cap = 100; /* blob result: behaviours only */
    assert_int_equal(ax_pool_submit_future(pool, &it, &f, NULL), -EINVAL);
    it.out_cap = 8;
    it.in_mode = AX_POOL_IN_REF;
    assert_int_equal(ax_pool_submit_future(pool, &it, &f, NULL), 0);
    ax_pool_done_t d;
    assert_int_equal(ax_pool_future_wait(&f, 30ll * 1000000000ll, &d), 0);
    assert_int_equal(d.status, 0);
    ax_pool_destroy(pool);
    ax_engine_destroy(eng);
}

/* The engine stops with items queued behind a gated item: their futures
 * complete with -ESHUTDOWN (never left waiting), and the pool is freed by
 * destroy after the engine has stopped (LSan checks). */
static void engine_stop_completes_queued_futures_with_eshutdown(void **state)
{
    (void)state;
    g_test = __func__;
    ax_engine_t *eng = start_engine(2);
    enum { N = 200 }; /* more than one dispatch batch (64) stays queued at the stop */
    ax_pool_t *pool = one_executor_pool(eng, N, 0, 0);
    atomic_store(&g_gate, 0);
    atomic_store(&g_gate_started, 0);
    static ax_pool_future_t f[N];
    ax_pool_item_t gate = {.fn = item_gated}, fail = {.fn = item_fail};
    assert_int_equal(ax_pool_submit_future(pool, &gate, &f[0], NULL), 0);
    assert_true(wait_at_least(&g_gate_started, 1));
    for (int i = 1; i < N; i++)
        assert_int_equal(ax_pool_submit_future(pool, &fail, &f[i], NULL), 0);
    ax_engine_stop(eng);
    atomic_store(&g_gate, 1);
    ax_engine_wait(eng);
    int shut = 0;
    for (int i = 0; i < N; i++) {
        ax_pool_done_t d;
        assert_int_equal(ax_pool_future_wait(&f[i], 30ll * 1000000000ll, &d), 0);
        if (d.status == -ESHUTDOWN) {
            assert_int_equal(d.reason, AX_POOL_R_SHUTDOWN);
            shut++;
        }
    }
    assert_true(shut >= N - 1 - 64);
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    assert_int_equal(ps.completed, N);
    assert_int_equal(ps.dropped_at_stop, (uint64_t)shut);
    ax_pool_destroy(pool);
    ax_engine_destroy(eng);
}

int main(void)
{
    signal(SIGALRM, watchdog);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pool_runs_items_from_behaviours_once_each, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(pool_runs_items_from_eight_outside_threads, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(full_pool_answers_eagain_at_once_and_recovers, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(cancelled_items_complete_once_and_never_run, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(scratch_exhaustion_fails_the_item_and_the_next_starts_empty, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(over_budget_item_is_flagged_and_counted, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(over_budget_item_is_reported_through_the_watchdog, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(over_budget_item_without_a_watchdog_is_counted_in_stats, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(blob_input_and_blob_result_travel_with_ownership, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(bad_configs_and_items_are_refused_with_a_reason, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(engine_stop_completes_queued_futures_with_eshutdown, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("lib/pool", tests, NULL, NULL);
}
