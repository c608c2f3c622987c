/* engine/watchdog.c - the watchdog thread: reports a behaviour that runs
 * longer than scheduler.watchdog_ms while it is still running.
 *
 * Threading: one thread per started engine (ax__watchdog_start, after the
 * workers; ax__watchdog_stop, after they are joined).  It sleeps on a
 * condition variable for watchdog_ms / 4 (1 ms to 250 ms) between scans, so
 * an idle engine costs four wakeups per watchdog period, nothing more.
 *
 * What the worker pays: one relaxed store per loop turn (w->wd_turn, in
 * ax__run_turn), plus the stores of w->cur, w->head.self and w->head.msg
 * that dispatch did anyway, made relaxed atomic (AX_WD_SET: the same mov).
 *
 * Protocol.  Each scan samples, per worker, the tuple (wd_turn, cur,
 * head.self, head.msg) with relaxed loads.  cur == NULL means no behaviour
 * (nor init/fini) is running.  A tuple seen unchanged at every scan for at
 * least watchdog_ms is one dispatch that has not returned: a new message
 * changes head.msg (its slot), a new turn changes wd_turn.  (The one
 * ambiguity: within one turn, a source whose queue is smaller than
 * scheduler.batch can bring the same slot back with the same target; the
 * defaults rule it out, since rings and the local FIFO hold at least 64
 * messages and a batch is 64.)  Relaxed is enough: nothing is published
 * through these fields; they are compared for change only.
 *
 * To name the message type, sender and behaviour, the watchdog must read
 * the message and the actor, which the worker may free or rewrite the
 * moment the behaviour returns.  So it reads them with process_vm_readv on
 * its own process (the kernel copies, and an unmapped address is an EFAULT,
 * never a crash; the sanitizers do not see a racing access they need not
 * report), then samples the tuple again: unchanged means the dispatch was
 * still running after the read, so what was read belonged to it.  Changed:
 * the behaviour returned meanwhile, and nothing is reported.
 *
 * Reports from layers (ax_watchdog_report).  Each worker has a box of
 * AX_WATCHDOG_POSTS entries: a single-producer (the worker, from a
 * behaviour), single-consumer (this thread) ring.  The producer fills an
 * entry and publishes it with a release store of tail (R1; the consumer's
 * acquire load of tail is A1); the consumer reports the entries, then hands
 * them back with a release store of head (R2; the producer's acquire load
 * of head is A2).  A full box refuses the report (-EAGAIN): a worker never
 * waits for this thread.  The thread empties the boxes at every scan and
 * once more when it stops (after the workers have been joined, so nothing
 * posted is lost).
 *
 * Memory: the per-worker "seen" table is allocated by the thread and freed
 * when it exits; the boxes by ax__watchdog_start (before the gate lets any
 * behaviour run) and freed by ax__watchdog_stop (after the join).
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_internal.h"
#include "engine/symbol.h"

typedef struct wd_seen {
    uint64_t turn;
    ax_actor_t *cur;
    ax_ref_t self;
    const ax_msg_t *msg;
    uint64_t since;   /* when this tuple was first seen */
    bool reported;    /* this overrun was reported already */
} wd_seen_t;

#define WD_WHAT_LEN 192u

typedef struct wd_post {
    ax_ref_t actor;
    const void *code;
    uint64_t ran_ns;
    char what[WD_WHAT_LEN];
} wd_post_t;

struct ax_wd_box {
    alignas(64) _Atomic uint32_t tail; /* the worker writes */
    alignas(64) _Atomic uint32_t head; /* the watchdog thread writes */
    wd_post_t post[AX_WATCHDOG_POSTS];
};

void ax_engine_set_watchdog_hook(ax_engine_t *eng, ax_watchdog_fn fn, void *user)
{
    if (!eng)
        return;
    eng->wd_fn = fn;
    eng->wd_user = user;
}

static void sample(ax_worker_t *w, wd_seen_t *s)
{
    s->turn = atomic_load_explicit(&w->wd_turn, memory_order_relaxed);
    s->cur = __atomic_load_n(&w->cur, __ATOMIC_RELAXED);
    s->self = __atomic_load_n(&w->head.self, __ATOMIC_RELAXED);
    s->msg = __atomic_load_n(&w->head.msg, __ATOMIC_RELAXED);
}

static bool same(const wd_seen_t *a, const wd_seen_t *b)
{
    return a->turn == b->turn && a->cur == b->cur && a->self == b->self && a->msg == b->msg;
}

/* Copy len bytes at addr of this process; false if any is unmapped. */
static bool peek(const void *addr, void *dst, size_t len)
{
    struct iovec local = { dst, len }, remote = { (void *)(uintptr_t)addr, len };
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)len;
}

/* Report s (seen on w since s->since).  False when the dispatch ended while
 * we looked: nothing was reported. */
static bool report(ax_engine_t *eng, ax_worker_t *w, const wd_seen_t *s, uint64_t now)
{
    ax_behaviour_fn fn = NULL;
    ax_msg_t m;
    ax_watchdog_report_t r;
    memset(&r, 0, sizeof r);
    r.worker = w->id;
    r.actor = s->self;
    r.type = AX_WATCHDOG_NO_MSG;
    r.running_ns = now - s->since;
    if (!peek(&s->cur->fn, &fn, sizeof fn))
        fn = NULL;
    bool msg_read = s->msg && peek(s->msg, &m, offsetof(ax_msg_t, payload));
    if (msg_read) {
        r.type = m.type;
        r.from = m.from;
    }
    wd_seen_t again;
    sample(w, &again);
    if (!same(s, &again))
        return false;
    r.behaviour = (const void *)(uintptr_t)fn;

    char sym[256], text[768];
    ax__symbolize(r.behaviour, sym, sizeof sym);
    r.symbol = sym;
    ax_sbuf_t b;
    ax__sb_init(&b, text, sizeof text);
    ax__sb_str(&b, "axon: watchdog: worker ");
    ax__sb_dec(&b, r.worker);
    ax__sb_str(&b, ": actor ");
    ax__sb_ref(&b, r.actor);
    if (s->msg) {
        ax__sb_str(&b, " has run behaviour ");
    } else {
        ax__sb_str(&b, " has run init or fini (behaviour ");
    }
    ax__sb_str(&b, sym);
    ax__sb_str(&b, " at ");
    ax__sb_hex(&b, (uint64_t)(uintptr_t)r.behaviour);
    if (s->msg) {
        ax__sb_str(&b, " for ");
        ax__sb_dec(&b, r.running_ns / 1000000);
        if (msg_read) {
            ax__sb_str(&b, " ms on message type ");
            ax__sb_dec(&b, r.type);
            ax__sb_str(&b, " from ");
            if (r.from)
                ax__sb_ref(&b, r.from);
            else
                ax__sb_str(&b, "outside the engine");
        } else { /* process_vm_readv refused (seccomp?): the rest still holds */
            ax__sb_str(&b, " ms on a message whose type could not be read");
        }
    } else {
        ax__sb_str(&b, ") for ");
        ax__sb_dec(&b, r.running_ns / 1000000);
        ax__sb_str(&b, " ms");
    }
    ax__sb_str(&b, ", and is still running (scheduler.watchdog_ms = ");
    ax__sb_dec(&b, eng->wd_ns / 1000000);
    ax__sb_str(&b, ")");
    r.text = text;

    /* The counter's only writer is this thread (relaxed: a statistic). */
    atomic_fetch_add_explicit(&w->st.watchdog, 1, memory_order_relaxed);
    AX_TRACE_WATCHDOG(r.worker, r.actor, r.type, r.running_ns / 1000000);
    fprintf(stderr, "%s\n", text);
    if (eng->wd_fn)
        eng->wd_fn(eng->wd_user, &r);
    if (eng->wd_action == AX_WATCHDOG_ABORT) {
        fprintf(stderr, "axon: watchdog: aborting the process (scheduler.watchdog_action = abort)\n");
        abort();
    }
    return true;
}

int ax_watchdog_report(ax_ctx_t *ctx, const void *code, const char *what, uint64_t ran_ns)
{
    if (!ctx || !what)
        return -EINVAL;
    ax_worker_t *w = ctx;
    if (!w->eng->wd_boxes)
        return -ENOTSUP;
    struct ax_wd_box *b = &w->eng->wd_boxes[w->id];
    uint32_t t = atomic_load_explicit(&b->tail, memory_order_relaxed);
    /* A2: pairs with R2 in drain_posts: the entry we reuse was read. */
    if (t - atomic_load_explicit(&b->head, memory_order_acquire) >= AX_WATCHDOG_POSTS)
        return -EAGAIN;
    wd_post_t *e = &b->post[t % AX_WATCHDOG_POSTS];
    e->actor = ax_self(ctx);
    e->code = code;
    e->ran_ns = ran_ns;
    snprintf(e->what, sizeof e->what, "%s", what);
    /* R1: pairs with A1 in drain_posts: the entry is written. */
    atomic_store_explicit(&b->tail, t + 1, memory_order_release);
    return 0;
}

/* Report what worker w's layers posted: the same outlets as report(),
 * without the abort (the work is over; see ax_watchdog_report). */
static void drain_posts(ax_engine_t *eng, ax_worker_t *w, struct ax_wd_box *b)
{
    uint32_t h = atomic_load_explicit(&b->head, memory_order_relaxed);
    /* A1: pairs with R1 in ax_watchdog_report. */
    uint32_t t = atomic_load_explicit(&b->tail, memory_order_acquire);
    for (; h != t; h++) {
        const wd_post_t *e = &b->post[h % AX_WATCHDOG_POSTS];
        ax_watchdog_report_t r;
        memset(&r, 0, sizeof r);
        r.worker = w->id;
        r.actor = e->actor;
        r.type = AX_WATCHDOG_NO_MSG;
        r.behaviour = e->code;
        r.running_ns = e->ran_ns;
        r.what = e->what;
        char sym[256], text[768];
        if (e->code)
            ax__symbolize(e->code, sym, sizeof sym);
        else
            snprintf(sym, sizeof sym, "?");
        r.symbol = sym;
        ax_sbuf_t sb;
        ax__sb_init(&sb, text, sizeof text);
        ax__sb_str(&sb, "axon: watchdog: worker ");
        ax__sb_dec(&sb, r.worker);
        ax__sb_str(&sb, ": actor ");
        ax__sb_ref(&sb, r.actor);
        ax__sb_str(&sb, ": ");
        ax__sb_str(&sb, e->what);
        ax__sb_str(&sb, " (ran ");
        ax__sb_str(&sb, sym);
        if (e->code) {
            ax__sb_str(&sb, " at ");
            ax__sb_hex(&sb, (uint64_t)(uintptr_t)e->code);
        }
        ax__sb_str(&sb, " for ");
        ax__sb_dec(&sb, r.running_ns / 1000);
        ax__sb_str(&sb, " us)");
        r.text = text;
        /* The counter's only writer is this thread (relaxed: a statistic). */
        atomic_fetch_add_explicit(&w->st.watchdog, 1, memory_order_relaxed);
        AX_TRACE_WATCHDOG(r.worker, r.actor, r.type, r.running_ns / 1000000);
        fprintf(stderr, "%s\n", text);
        if (eng->wd_fn)
            eng->wd_fn(eng->wd_user, &r);
    }
    /* R2: pairs with A2 in ax_watchdog_report: the entries are free again. */
    atomic_store_explicit(&b->head, h, memory_order_release);
}

static void drain_all_posts(ax_engine_t *eng)
{
    for (uint32_t i = 0; i < eng->n; i++)
        drain_posts(eng, eng->w[i], &eng->wd_boxes[i]);
}

static void scan(ax_engine_t *eng, wd_seen_t *seen)
{
    drain_all_posts(eng);
    uint64_t now = ax__now_ns();
    for (uint32_t i = 0; i < eng->n; i++) {
        ax_worker_t *w = eng->w[i];
        wd_seen_t cur;
        sample(w, &cur);
        if (!cur.cur) {
            seen[i].cur = NULL; /* between dispatches, idle or parked */
            continue;
        }
        if (!same(&cur, &seen[i])) {
            cur.since = now;
            cur.reported = false;
            seen[i] = cur;
            continue;
        }
        if (!seen[i].reported && now - seen[i].since >= eng->wd_ns)
            seen[i].reported = report(eng, w, &seen[i], now);
    }
}

static void *wd_main(void *arg)
{
    ax_engine_t *eng = arg;
    uint64_t period = eng->wd_ns / 4;
    if (period < 1000000)
        period = 1000000;
    if (period > 250000000)
        period = 250000000;
    wd_seen_t *seen = calloc(eng->n, sizeof *seen);
    pthread_mutex_lock(&eng->wd_mu);
    while (!eng->wd_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + period;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        while (!eng->wd_stop && pthread_cond_timedwait(&eng->wd_cv, &eng->wd_mu, &ts) != ETIMEDOUT)
            ;
        if (eng->wd_stop || !seen)
            continue;
        pthread_mutex_unlock(&eng->wd_mu);
        scan(eng, seen);
        pthread_mutex_lock(&eng->wd_mu);
    }
    pthread_mutex_unlock(&eng->wd_mu);
    free(seen);
    /* Stopped after the workers were joined (ax_engine_wait), or after a
     * start that never let a behaviour run: nothing posts any more, so
     * this last look loses no report, and the hook still runs here. */
    drain_all_posts(eng);
    return NULL;
}

int ax__watchdog_start(ax_engine_t *eng)
{
    int32_t ms = eng->cfg.watchdog_ms ? eng->cfg.watchdog_ms : AX_WATCHDOG_DEFAULT_MS;
    eng->wd_ns = ms < 0 ? 0 : (uint64_t)ms * 1000000u;
    eng->wd_action = eng->cfg.watchdog_action;
    if (!eng->wd_ns || eng->wd_running)
        return 0;
    struct ax_wd_box *boxes = aligned_alloc(64, sizeof *boxes * eng->n);
    if (!boxes)
        return -ENOMEM;
    memset(boxes, 0, sizeof *boxes * eng->n);
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc) {
        free(boxes);
        return -rc;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&eng->wd_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc) {
        free(boxes);
        return -rc;
    }
    if ((rc = pthread_mutex_init(&eng->wd_mu, NULL))) {
        pthread_cond_destroy(&eng->wd_cv);
        free(boxes);
        return -rc;
    }
    eng->wd_stop = false;
    eng->wd_boxes = boxes; /* the gate orders this before any behaviour */
    if ((rc = pthread_create(&eng->wd_thread, NULL, wd_main, eng))) {
        eng->wd_boxes = NULL;
        free(boxes);
        pthread_mutex_destroy(&eng->wd_mu);
        pthread_cond_destroy(&eng->wd_cv);
        return -rc;
    }
    pthread_setname_np(eng->wd_thread, "axon-watchdog");
    eng->wd_running = true;
    return 0;
}

void ax__watchdog_stop(ax_engine_t *eng)
{
    if (!eng->wd_running)
        return;
    pthread_mutex_lock(&eng->wd_mu);
    eng->wd_stop = true;
    pthread_cond_signal(&eng->wd_cv);
    pthread_mutex_unlock(&eng->wd_mu);
    pthread_join(eng->wd_thread, NULL);
    free(eng->wd_boxes); /* emptied by the thread's last look (wd_main) */
    eng->wd_boxes = NULL;
    pthread_mutex_destroy(&eng->wd_mu);
    pthread_cond_destroy(&eng->wd_cv);
    eng->wd_running = false;
}
