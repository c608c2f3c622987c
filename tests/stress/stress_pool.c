/* tests/stress/stress_pool.c - work pools under load: a submitter actor on
 * every worker and 8 outside threads submit items to one small pool (so
 * -EAGAIN is common), cancel random recent items, and check that every item
 * completes exactly once with the outcome it must have: its sum, -EIO (items
 * that fail), -ENOMEM/AX_POOL_R_SCRATCH (items that overrun the scratch
 * arena), or -ECANCELED exactly when a cancel succeeded.
 *
 *   stress_pool [--seconds S] [--seed N] [--workers W]
 * Seeded: the run prints its seed and how to replay it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/axon.h"
#include "axon/pool.h"
#include "test_util.h"

#define T_GO 1u
#define T_DONE 2u
#define NTHREADS 8u
#define MAXN (1u << 18) /* items per submitter at most */
#define WINDOW 24u
#define SCRATCH 4096u

static uint64_t g_seed;
static _Atomic int g_stop;
static _Atomic uint64_t g_errors;
static ax_pool_t *g_pool;

#define FAIL(...) \
    do { \
        if (atomic_fetch_add(&g_errors, 1) < 10) { \
            fprintf(stderr, "stress_pool: "); \
            fprintf(stderr, __VA_ARGS__); \
            fprintf(stderr, " (rerun: stress_pool --seed %" PRIu64 ")\n", g_seed); \
        } \
    } while (0)

/* What an item does is decided by its tag, so the checker knows the answer. */
enum { K_SUM, K_FAIL, K_GREEDY };
static int kind_of(uint64_t tag)
{
    uint64_t h = mix(tag ^ g_seed) % 16;
    return h == 0 ? K_FAIL : h == 1 ? K_GREEDY : K_SUM;
}

static int item(ax_pool_job_t *job, const void *in, size_t len, void *out, size_t cap, size_t *out_len)
{
    uint64_t tag;
    memcpy(&tag, in, sizeof tag);
    int k = kind_of(tag);
    if (k == K_FAIL)
        return -EIO;
    size_t want = k == K_GREEDY ? SCRATCH + 16 : 256;
    unsigned char *p = ax_pool_alloc(job, want);
    if (p)
        memset(p, (int)(tag & 0xFF), want); /* ASan: a reset arena is writable again */
    uint64_t s = 0;
    const unsigned char *b = in;
    for (size_t i = 0; i < len; i++)
        s += b[i];
    if (cap < 8)
        return -EINVAL;
    memcpy(out, &s, 8);
    *out_len = 8;
    return 0;
}

static uint64_t expect_sum(uint64_t tag)
{
    uint64_t s = 0;
    for (int i = 0; i < 8; i++)
        s += (tag >> (8 * i)) & 0xFF;
    return s;
}

/* Per submitter: completions per item, and whether a cancel succeeded. */
typedef struct book {
    _Atomic uint8_t done[MAXN];
    _Atomic uint8_t cancelled[MAXN];
    _Atomic uint64_t sent, got;
} book_t;

static book_t *g_books; /* workers + NTHREADS */

static void check(book_t *b, const ax_pool_done_t *d, uint64_t small_or_out)
{
    uint32_t k = (uint32_t)d->tag;
    if (k >= MAXN) {
        FAIL("completion with tag %" PRIx64 " out of range", d->tag);
        return;
    }
    if (atomic_fetch_add(&b->done[k], 1) != 0)
        FAIL("item %" PRIx64 " completed twice", d->tag);
    if (d->status == -ECANCELED) {
        if (!atomic_load(&b->cancelled[k]))
            FAIL("item %" PRIx64 " reported cancelled but no cancel succeeded", d->tag);
        return;
    }
    if (atomic_load(&b->cancelled[k]))
        FAIL("item %" PRIx64 " was cancelled but completed with %d", d->tag, d->status);
    switch (kind_of(d->tag)) {
    case K_FAIL:
        if (d->status != -EIO || d->reason != AX_POOL_R_FAILED)
            FAIL("failing item %" PRIx64 ": status %d reason %u", d->tag, d->status, d->reason);
        break;
    case K_GREEDY:
        if (d->status != -ENOMEM || d->reason != AX_POOL_R_SCRATCH)
            FAIL("greedy item %" PRIx64 ": status %d reason %u", d->tag, d->status, d->reason);
        break;
    default:
        if (d->status != 0 || small_or_out != expect_sum(d->tag))
            FAIL("item %" PRIx64 ": status %d, result %" PRIu64 " expected %" PRIu64, d->tag,
                 d->status, small_or_out, expect_sum(d->tag));
    }
}

/* ---- submitter actors --------------------------------------------------------------- */

typedef struct sub_state {
    book_t *b;
    uint32_t who;
    uint64_t rng;
    uint64_t recent[8]; /* ids of recent submits, for cancels */
    uint64_t recent_k[8];
    bool finished;
} sub_state_t;

static void sub_pump(ax_ctx_t *ctx, sub_state_t *s)
{
    book_t *b = s->b;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed) &&
           atomic_load(&b->sent) < MAXN && atomic_load(&b->sent) - atomic_load(&b->got) < WINDOW) {
        uint64_t k = atomic_load(&b->sent);
        uint64_t tag = (uint64_t)s->who << 32 | k;
        ax_pool_item_t it = {.fn = item, .in = &tag, .in_len = 8, .out_cap = 8, .tag = tag};
        uint64_t id;
        int rc = ax_pool_submit(ctx, g_pool, &it, T_DONE, &id);
        if (rc == -EAGAIN)
            break; /* a completion will come: we have items in flight, or others do */
        if (rc) {
            FAIL("submitter %u: ax_pool_submit: %d", s->who, rc);
            return;
        }
        s->recent[k % 8] = id;
        s->recent_k[k % 8] = k;
        atomic_store(&b->sent, k + 1);
    }
    if (atomic_load(&b->sent) == atomic_load(&b->got) && !s->finished) {
        /* Nothing in flight: if the pool was full of others' items, try again. */
        if (atomic_load(&g_stop) || atomic_load(&b->sent) >= MAXN)
            s->finished = true;
        else
            ax_send_u64(ctx, ax_self(ctx), T_GO, 0);
    }
}

static void sub_actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    sub_state_t *s = st;
    if (m->type == T_GO) {
        if (!s->b) {
            s->who = (uint32_t)m->payload.u64[0];
            s->b = &g_books[s->who];
            s->rng = g_seed ^ s->who;
        }
        sub_pump(ctx, s);
        return;
    }
    ax_pool_done_t d;
    if (ax_pool_done_get(m, &d) < 0) {
        FAIL("bad completion message");
        return;
    }
    uint64_t v;
    memcpy(&v, d.small, 8);
    check(s->b, &d, v);
    atomic_fetch_add(&s->b->got, 1);
    /* Now and then cancel a recent item (it may have completed: -EBUSY). */
    s->rng = mix(s->rng);
    if (s->rng % 5 == 0) {
        uint32_t j = (uint32_t)(s->rng >> 8) % 8;
        if (s->recent[j] && ax_pool_cancel(g_pool, s->recent[j]) == 0)
            atomic_store(&s->b->cancelled[s->recent_k[j]], 1);
        s->recent[j] = 0;
    }
    sub_pump(ctx, s);
}

/* ---- outside threads ------------------------------------------------------------------- */

static void *ext_thread(void *arg)
{
    uint32_t who = (uint32_t)(uintptr_t)arg;
    book_t *b = &g_books[who];
    uint64_t rng = g_seed ^ (who * 7919u);
    enum { OUT = 4 };
    ax_pool_future_t f[OUT];
    uint64_t out[OUT], tags[OUT], ids[OUT];
    while (!atomic_load(&g_stop) && atomic_load(&b->sent) + OUT <= MAXN) {
        int n = 0;
        for (; n < OUT; n++) {
            uint64_t k = atomic_load(&b->sent);
            tags[n] = (uint64_t)who << 32 | k;
            ax_pool_item_t it = {.fn = item, .in = &tags[n], .in_len = 8, .out = &out[n],
                                 .out_cap = 8, .tag = tags[n]};
            int rc = ax_pool_submit_future(g_pool, &it, &f[n], &ids[n]);
            if (rc == -EAGAIN)
                break;
            if (rc) {
                FAIL("thread %u: ax_pool_submit_future: %d", who, rc);
                return NULL;
            }
            atomic_store(&b->sent, k + 1);
        }
        rng = mix(rng);
        if (n && rng % 3 == 0) {
            int j = (int)((rng >> 8) % (uint64_t)n);
            if (ax_pool_cancel(g_pool, ids[j]) == 0)
                atomic_store(&b->cancelled[(uint32_t)tags[j]], 1);
        }
        for (int j = 0; j < n; j++) {
            ax_pool_done_t d;
            if (ax_pool_future_wait(&f[j], 60ll * 1000000000ll, &d) != 0) {
                FAIL("thread %u: item %" PRIx64 " did not complete within 60 s", who, tags[j]);
                return NULL;
            }
            check(b, &d, out[j]);
            atomic_fetch_add(&b->got, 1);
        }
        if (!n)
            sched_yield();
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned seconds = 10, workers = 2;
    g_seed = now_ns();
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds"))
            seconds = (unsigned)strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--seed"))
            g_seed = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--workers"))
            workers = (unsigned)strtoul(argv[i + 1], NULL, 0);
        else {
            fprintf(stderr, "usage: stress_pool [--seconds S] [--seed N] [--workers W]\n");
            return 2;
        }
    }
    printf("stress_pool: seed %" PRIu64 " (rerun: stress_pool --seed %" PRIu64 "), %u workers, %u s\n",
           g_seed, g_seed, workers, seconds);
    fflush(stdout);
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = workers;
    cfg.oversubscribe = true;
    cfg.arena_bytes = 16u << 20;
    ax_engine_t *eng;
    if (ax_engine_create(&cfg, &eng) || ax_engine_start(eng)) {
        fprintf(stderr, "stress_pool: engine: %s\n", ax_engine_last_error());
        return 1;
    }
    ax_pool_config_t pc = AX_POOL_CONFIG_INIT;
    pc.queue_len = 32;
    pc.scratch_bytes = SCRATCH;
    if (ax_pool_create(eng, &pc, &g_pool)) {
        fprintf(stderr, "stress_pool: %s\n", ax_pool_last_error());
        return 1;
    }
    uint32_t nb = workers + NTHREADS;
    g_books = calloc(nb, sizeof *g_books);
    if (!g_books)
        return 1;
    for (uint32_t w = 0; w < workers; w++) {
        ax_ref_t a;
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = w};
        if (ax_engine_spawn(eng, sub_actor, sizeof(sub_state_t), &o, &a) ||
            ax_engine_send(eng, a, T_GO, &(uint64_t){w}, 8)) {
            fprintf(stderr, "stress_pool: spawning submitter %u failed\n", w);
            return 1;
        }
    }
    pthread_t th[NTHREADS];
    for (uint32_t i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, ext_thread, (void *)(uintptr_t)(workers + i));
    sleep_us(seconds * 1000000u);
    atomic_store(&g_stop, 1);
    for (uint32_t i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    /* Drain: every submitted item completes. */
    uint64_t end = now_ns() + 60ull * 1000000000ull;
    for (uint32_t w = 0; w < nb; w++)
        while (atomic_load(&g_books[w].got) < atomic_load(&g_books[w].sent) && now_ns() < end)
            sleep_us(1000);
    uint64_t total = 0, cancels = 0;
    for (uint32_t w = 0; w < nb; w++) {
        book_t *b = &g_books[w];
        uint64_t sent = atomic_load(&b->sent);
        if (atomic_load(&b->got) != sent)
            FAIL("submitter %u: %" PRIu64 " completions for %" PRIu64 " items", w,
                 atomic_load(&b->got), sent);
        for (uint64_t k = 0; k < sent; k++) {
            if (atomic_load(&b->done[k]) != 1)
                FAIL("submitter %u item %" PRIu64 ": %u completions", w, k, atomic_load(&b->done[k]));
            cancels += atomic_load(&b->cancelled[k]);
        }
        total += sent;
    }
    ax_pool_stats_t ps;
    ax_pool_stats(g_pool, &ps);
    if (ps.completed != total || ps.cancelled != cancels || ps.in_flight != 0 || ps.completion_lost)
        FAIL("stats: completed %" PRIu64 " of %" PRIu64 ", cancelled %" PRIu64 " of %" PRIu64
             ", in flight %" PRIu64 ", lost %" PRIu64,
             ps.completed, total, ps.cancelled, cancels, ps.in_flight, ps.completion_lost);
    printf("stress_pool: %" PRIu64 " items, %" PRIu64 " cancelled, %" PRIu64 " failed, %" PRIu64
           " scratch-exhausted, %" PRIu64 " rejected as full, errors %" PRIu64 "\n",
           total, cancels, ps.failed, ps.scratch_exhausted, ps.rejected_full, atomic_load(&g_errors));
    ax_pool_destroy(g_pool);
    ax_engine_destroy(eng);
    free(g_books);
    return atomic_load(&g_errors) ? 1 : 0;
}
