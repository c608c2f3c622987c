/* perf/limits.c - the machine's limits for an actor engine (see limits.h).
 *
 * Written for axon after shared/peers/c/limits.c, with the same shapes so the
 * figures compare: (a) cache-line bounce, (b) SPSC ring with cached indices
 * and a tail published every 64 items, (c) same-thread FIFO + indirect call,
 * (d) malloc + enqueue + dispatch + free.
 *
 * Threading: the two-thread limits start two fresh threads, each pinning
 * itself, and meet at a start barrier, so the caller's own affinity never
 * changes (axon-bench's main thread must stay free to run anywhere).
 * Memory: every buffer is allocated and freed inside one call.
 */
#include "limits.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIM_LINE 64
#define LIM_BATCH 64 /* producer publishes its tail at most every 64 items */

static double lim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline void lim_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ volatile("" ::: "memory");
#endif
}

/* aligned_alloc wants a size that is a multiple of the alignment (C11; ASan
 * enforces it). */
static void *lim_alloc(size_t size)
{
    return aligned_alloc(LIM_LINE, (size + LIM_LINE - 1) / LIM_LINE * LIM_LINE);
}

static int lim_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* pthreads: positive errno */
}

int ax_limits_pick_cpus(int *cpu_a, int *cpu_b)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return -errno;
    int found = 0;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        if (found++ == 0)
            *cpu_a = c;
        else
            *cpu_b = c;
    }
    return found == 2 ? 0 : -ENODEV;
}

/* ---- two pinned threads meeting at a barrier ------------------------------- */

typedef struct lim_pair lim_pair_t;
typedef void (*lim_side_fn)(lim_pair_t *p, int side);

struct lim_pair {
    alignas(LIM_LINE) _Atomic int ready; /* barrier: both sides increment */
    _Atomic int pin_err;                 /* first pinning error, 0 if none */
    int cpu[2];
    lim_side_fn fn;
    double t0, t1;                       /* side 0 stamps both */
    void *arg;
};

typedef struct lim_side {
    lim_pair_t *p;
    int side;
} lim_side_t;

static void *lim_thread(void *arg)
{
    lim_side_t *s = arg;
    int rc = lim_pin(s->p->cpu[s->side]);
    if (rc) {
        int zero = 0;
        atomic_compare_exchange_strong(&s->p->pin_err, &zero, rc);
    }
    /* Start barrier (seq_cst both ways: it runs once per measurement). */
    atomic_fetch_add(&s->p->ready, 1);
    while (atomic_load(&s->p->ready) < 2)
        lim_relax();
    if (atomic_load(&s->p->pin_err) == 0)
        s->p->fn(s->p, s->side);
    return NULL;
}

static int lim_run_pair(lim_pair_t *p)
{
    pthread_t t[2];
    lim_side_t s[2] = {{p, 0}, {p, 1}};
    atomic_store(&p->ready, 0);
    atomic_store(&p->pin_err, 0);
    for (int i = 0; i < 2; i++) {
        int rc = pthread_create(&t[i], NULL, lim_thread, &s[i]);
        if (rc) {
            if (i == 1) {
                /* release side 0 from the barrier with an error so it exits */
                atomic_store(&p->pin_err, -rc);
                atomic_fetch_add(&p->ready, 1);
                pthread_join(t[0], NULL);
            }
            return -rc;
        }
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    return atomic_load(&p->pin_err);
}

/* ---- (a) cache-line round trip ----------------------------------------------- */

typedef struct lim_bounce {
    alignas(LIM_LINE) _Atomic uint64_t v;
    char pad[LIM_LINE - sizeof(uint64_t)];
    uint64_t n;
} lim_bounce_t;

static void lim_bounce_side(lim_pair_t *p, int side)
{
    lim_bounce_t *b = p->arg;
    const uint64_t n = b->n;
    if (side == 0) {
        p->t0 = lim_now_ns();
        for (uint64_t i = 0; i < n; i++) {
            /* R: the responder's acquire of 2i+1 pairs with this release */
            atomic_store_explicit(&b->v, 2 * i + 1, memory_order_release);
            while (atomic_load_explicit(&b->v, memory_order_acquire) != 2 * i + 2)
                lim_relax();
        }
        p->t1 = lim_now_ns();
    } else {
        for (uint64_t i = 0; i < n; i++) {
            while (atomic_load_explicit(&b->v, memory_order_acquire) != 2 * i + 1)
                lim_relax();
            /* R: pairs with side 0's acquire of 2i+2 */
            atomic_store_explicit(&b->v, 2 * i + 2, memory_order_release);
        }
    }
}

int ax_limits_cacheline_rtt(int cpu_a, int cpu_b, uint64_t n, double *ns_out)
{
    if (n == 0 || !ns_out)
        return -EINVAL;
    lim_bounce_t *b = lim_alloc(sizeof *b);
    if (!b)
        return -ENOMEM;
    memset(b, 0, sizeof *b);
    b->n = n;
    lim_pair_t p = {.cpu = {cpu_a, cpu_b}, .fn = lim_bounce_side, .arg = b};
    int rc = lim_run_pair(&p);
    if (rc == 0)
        *ns_out = p.t1 - p.t0;
    free(b);
    return rc;
}

/* ---- (b) SPSC ring of 64-byte slots -------------------------------------------- */

typedef struct lim_slot {
    uint64_t w[8];
} lim_slot_t;

typedef struct lim_ring {
    alignas(LIM_LINE) _Atomic uint64_t tail; /* producer writes */
    alignas(LIM_LINE) _Atomic uint64_t head; /* consumer writes */
    alignas(LIM_LINE) uint64_t n;            /* read-only during the run */
    uint64_t mask;
    uint64_t sum;                            /* consumer's checksum, read after join */
    lim_slot_t *slots;
} lim_ring_t;

static void lim_ring_side(lim_pair_t *p, int side)
{
    lim_ring_t *r = p->arg;
    const uint64_t n = r->n, mask = r->mask, cap = mask + 1;
    if (side == 0) {
        uint64_t tail = 0, head_seen = 0;
        p->t0 = lim_now_ns();
        while (tail < n) {
            uint64_t want = n - tail < LIM_BATCH ? n - tail : LIM_BATCH;
            /* Refresh the cached head only when the batch does not fit.
             * A: pairs with the consumer's release of head (R2): the slots
             * below head are free to overwrite. */
            while (tail + want - head_seen > cap) {
                head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
                if (tail + want - head_seen > cap)
                    lim_relax();
            }
            for (uint64_t k = 0; k < want; k++, tail++) {
                lim_slot_t *s = &r->slots[tail & mask];
                s->w[0] = tail;
                for (int j = 1; j < 8; j++)
                    s->w[j] = 0;
            }
            /* R1: slot writes above are visible to a consumer that reads this
             * tail (its acquire A1). */
            atomic_store_explicit(&r->tail, tail, memory_order_release);
        }
    } else {
        uint64_t head = 0, tail_seen = 0, sum = 0;
        while (head < n) {
            if (head == tail_seen) {
                /* A1: pairs with R1; every slot below tail_seen is written. */
                while ((tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire)) == head)
                    lim_relax();
            }
            for (; head < tail_seen; head++) {
                const lim_slot_t *s = &r->slots[head & mask];
                sum += s->w[0] + s->w[7];
            }
            /* R2: our reads of the drained slots happen before the producer
             * reuses them (its acquire of head). */
            atomic_store_explicit(&r->head, head, memory_order_release);
        }
        p->t1 = lim_now_ns(); /* side 1 stamps the end: last item consumed */
        r->sum = sum;
    }
}

int ax_limits_spsc_ring(int cpu_a, int cpu_b, uint64_t n, uint32_t slots, double *ns_out)
{
    if (n == 0 || !ns_out || slots < LIM_BATCH || (slots & (slots - 1)))
        return -EINVAL;
    lim_ring_t *r = lim_alloc(sizeof *r);
    lim_slot_t *s = lim_alloc((size_t)slots * sizeof *s);
    if (!r || !s) {
        free(r);
        free(s);
        return -ENOMEM;
    }
    memset(r, 0, sizeof *r);
    memset(s, 0, (size_t)slots * sizeof *s);
    r->n = n;
    r->mask = slots - 1;
    r->slots = s;
    lim_pair_t p = {.cpu = {cpu_a, cpu_b}, .fn = lim_ring_side, .arg = r};
    int rc = lim_run_pair(&p);
    /* the producer wrote w[0] = i and w[7] = 0 for i in 0..n-1 */
    uint64_t expect = n % 2 ? n * ((n - 1) / 2) : (n / 2) * (n - 1);
    if (rc == 0 && r->sum != expect)
        rc = -EIO;
    if (rc == 0)
        *ns_out = p.t1 - p.t0;
    free(s);
    free(r);
    return rc;
}

/* ---- (c) local dispatch and (d) create ------------------------------------------ */

typedef struct lim_actor lim_actor_t;
typedef struct lim_fifo lim_fifo_t;
typedef void (*lim_beh_fn)(lim_actor_t *self, uint64_t v, lim_fifo_t *q);

struct lim_actor { /* one cache line, like a lean actor header */
    lim_beh_fn beh;
    lim_actor_t *next;
    uint64_t count;
    uint64_t state[5];
};

typedef struct lim_msg {
    lim_actor_t *to;
    uint64_t v;
} lim_msg_t;

#define LIM_FIFO 1024u
struct lim_fifo {
    uint32_t head, tail;
    lim_msg_t m[LIM_FIFO];
};

static inline void lim_push(lim_fifo_t *q, lim_actor_t *to, uint64_t v)
{
    q->m[q->tail++ & (LIM_FIFO - 1)] = (lim_msg_t){to, v};
}

static uint64_t lim_sink; /* keeps the behaviours' work observable */

__attribute__((noinline)) static void lim_pass(lim_actor_t *self, uint64_t v, lim_fifo_t *q)
{
    self->count++;
    if (v)
        lim_push(q, self->next, v - 1);
}
__attribute__((noinline)) static void lim_pass2(lim_actor_t *self, uint64_t v, lim_fifo_t *q)
{
    self->count += 1;
    self->state[0] ^= v;
    if (v)
        lim_push(q, self->next, v - 1);
}
/* Chosen at run time through a volatile table so the call stays indirect,
 * as an engine's behaviour call is. */
static lim_beh_fn volatile lim_behs[2] = {lim_pass, lim_pass2};

int ax_limits_dispatch(uint32_t actors, uint64_t n, double *ns_out)
{
    if (actors == 0 || n == 0 || !ns_out)
        return -EINVAL;
    lim_actor_t *a = lim_alloc((size_t)actors * sizeof *a);
    lim_fifo_t *q = lim_alloc(sizeof *q);
    if (!a || !q) {
        free(a);
        free(q);
        return -ENOMEM;
    }
    memset(a, 0, (size_t)actors * sizeof *a);
    memset(q, 0, sizeof *q);
    for (uint32_t i = 0; i < actors; i++) {
        a[i].beh = lim_behs[i & 1];
        a[i].next = &a[(i + 1) % actors];
    }
    lim_push(q, &a[0], n - 1); /* n dispatches in all */
    double t0 = lim_now_ns();
    while (q->head != q->tail) {
        lim_msg_t m = q->m[q->head++ & (LIM_FIFO - 1)];
        m.to->beh(m.to, m.v, q);
    }
    double t1 = lim_now_ns();
    uint64_t total = 0;
    for (uint32_t i = 0; i < actors; i++)
        total += a[i].count;
    lim_sink += total;
    free(q);
    free(a);
    if (total != n)
        return -EIO;
    *ns_out = t1 - t0;
    return 0;
}

static uint64_t lim_acks;
__attribute__((noinline)) static void lim_once(lim_actor_t *self, uint64_t v, lim_fifo_t *q)
{
    (void)q;
    self->count += v;
    lim_acks += self->count;
    free(self); /* the actor stops after its one message */
}
static lim_beh_fn volatile lim_once_fn = lim_once;

int ax_limits_create(uint64_t n, double *ns_out)
{
    if (n == 0 || !ns_out)
        return -EINVAL;
    lim_fifo_t *q = lim_alloc(sizeof *q);
    if (!q)
        return -ENOMEM;
    memset(q, 0, sizeof *q);
    lim_acks = 0;
    int rc = 0;
    double t0 = lim_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        lim_actor_t *a = malloc(sizeof *a);
        if (!a) {
            rc = -ENOMEM;
            break;
        }
        a->beh = lim_once_fn;
        a->next = NULL;
        a->count = 0;
        lim_push(q, a, 1);
        /* the creator yields every 256 creations; the loop drains the FIFO */
        if ((i & 255) == 255 || i + 1 == n) {
            while (q->head != q->tail) {
                lim_msg_t m = q->m[q->head++ & (LIM_FIFO - 1)];
                m.to->beh(m.to, m.v, q);
            }
        }
    }
    double t1 = lim_now_ns();
    while (q->head != q->tail) { /* only after a failed malloc */
        lim_msg_t m = q->m[q->head++ & (LIM_FIFO - 1)];
        m.to->beh(m.to, m.v, q);
    }
    free(q);
    if (rc)
        return rc;
    if (lim_acks != n)
        return -EIO;
    *ns_out = t1 - t0;
    return 0;
}

/* ---- placement ------------------------------------------------------------------- */

const char *ax_limits_placement_name(int placement)
{
    switch (placement) {
    case AX_PLACE_NEAR: return "near";
    case AX_PLACE_FAR: return "far";
    case AX_PLACE_MIXED: return "mixed";
    default: return "unknown";
    }
}

int ax_limits_placement_merge(int a, int b)
{
    if (a == AX_PLACE_UNKNOWN)
        return b;
    if (b == AX_PLACE_UNKNOWN || a == b)
        return a;
    return AX_PLACE_MIXED;
}

int ax_limits_sample_placement(int cpu_a, int cpu_b, double far_ratio, double *best_ns,
                               double *rtt_ns)
{
    enum { N = 5000 };
    double ns = 0; /* gcc -O2 cannot see that a failed measure returns first */
    if (ax_limits_cacheline_rtt(cpu_a, cpu_b, N, &ns) < 0)
        return AX_PLACE_UNKNOWN;
    ns /= N;
    if (rtt_ns)
        *rtt_ns = ns;
    if (*best_ns <= 0 || ns < *best_ns)
        *best_ns = ns;
    return ns > far_ratio * *best_ns ? AX_PLACE_FAR : AX_PLACE_NEAR;
}

/* ---- shared read-mostly table (issue 13's floor) ---------------------------------- */

typedef struct lim_val { /* one line: 7 words of payload and their checksum */
    alignas(LIM_LINE) uint64_t w[8];
    struct lim_val *next; /* free/retired lists: never read by readers (second line) */
} lim_val_t;

typedef struct lim_qs { /* a thread's quiescent-state counter, on its own line */
    alignas(LIM_LINE) _Atomic uint64_t n;
} lim_qs_t;
#define LIM_QS_OFFLINE UINT64_MAX

typedef struct lim_tab {
    alignas(LIM_LINE) _Atomic(lim_val_t *) *slot; /* keys entries, 64-byte aligned */
    uint64_t mask, ops;
    uint32_t write_every;
    int threads;
    lim_val_t *pool[2];    /* each thread's spare values (its own, recycled) */
    lim_val_t *reserve[2]; /* used when a grace period has not elapsed yet */
    size_t npool;
    lim_qs_t qs[2];
    alignas(LIM_LINE) _Atomic uint64_t bad, sink;
    double t0[2], t1[2], cpu[2];
} lim_tab_t;

#define LIM_QS_EVERY 256u /* a thread's quiescent point: every 256 operations (an engine turn) */
#define LIM_SPARE 256u /* spare values per thread */
#define LIM_RESERVE 8192u /* more, for when the other is slow to pass a quiescent point */

static inline uint64_t lim_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline void lim_val_fill(lim_val_t *v, uint64_t seed)
{
    uint64_t sum = 0x5bd1e995u;
    for (int i = 0; i < 7; i++) {
        v->w[i] = seed + (uint64_t)i;
        sum ^= v->w[i] * 0x9E3779B97F4A7C15ull + (uint64_t)i;
    }
    v->w[7] = sum;
}

static inline bool lim_val_ok(const lim_val_t *v, uint64_t *first)
{
    uint64_t sum = 0x5bd1e995u;
    for (int i = 0; i < 7; i++)
        sum ^= v->w[i] * 0x9E3779B97F4A7C15ull + (uint64_t)i;
    *first = v->w[0];
    return sum == v->w[7] && v->w[6] == v->w[0] + 6;
}

typedef struct lim_rec { /* a writer's reclamation, thread-local */
    lim_val_t *free, *pending, *waiting, *reserve;
    uint64_t wstamp;
} lim_rec_t;

/* Out of spare values: recycle the ones retired before the other thread's
 * last quiescent point.  The writer may wait here (readers never do). */
static lim_val_t *lim_refill(lim_tab_t *t, int side, lim_rec_t *r)
{
    _Atomic uint64_t *mine = &t->qs[side].n, *other = &t->qs[side ^ 1].n;
    for (;;) {
        if (t->threads == 1) { /* nobody else reads */
            r->free = r->pending;
            r->pending = NULL;
        } else {
            /* The exchanges that unpublished the pending values come before
             * the load of the other's counter (store-load: a full fence).
             * A: pairs with the other's release of its counter (R): the
             * reads it made before that quiescent point are done. */
#if defined(__SANITIZE_THREAD__)
            /* TSan has no fences (-Werror=tsan): a locked RMW, a full
             * barrier on x86-64 as the fence is. */
            atomic_fetch_add_explicit(mine, 0, memory_order_seq_cst);
#else
            atomic_thread_fence(memory_order_seq_cst);
#endif
            uint64_t q = atomic_load_explicit(other, memory_order_acquire);
            if (r->waiting && q > r->wstamp) {
                r->free = r->waiting;
                r->waiting = NULL;
            }
            if (!r->waiting && r->pending) {
                r->waiting = r->pending;
                r->pending = NULL;
                r->wstamp = q == LIM_QS_OFFLINE ? 0 : q;
                if (q == LIM_QS_OFFLINE) { /* the other finished: no reader left */
                    lim_val_t *tail = r->waiting;
                    while (tail->next)
                        tail = tail->next;
                    tail->next = r->free;
                    r->free = r->waiting;
                    r->waiting = NULL;
                }
            }
        }
        /* The other has not passed a quiescent point since (preempted, on
         * a shared machine): 64 more values from the reserve rather than
         * a wait, as a worker falls back to malloc. */
        for (int i = 0; i < 64 && !r->free && r->reserve; i++) {
            lim_val_t *v = r->reserve;
            r->reserve = v->next;
            v->next = r->free;
            r->free = v;
        }
        if (r->free) {
            lim_val_t *v = r->free;
            r->free = v->next;
            return v;
        }
        /* our own quiescent point, so a writer waiting on us moves on too */
        uint64_t me = atomic_load_explicit(mine, memory_order_relaxed);
        atomic_store_explicit(mine, me + 1, memory_order_release); /* R */
        lim_relax();
    }
}

/* One write, out of line (1% of the operations): perf/scripts/cont-lines.sh
 * counts the lines it stores to from its entry address. */
__attribute__((noinline)) static void lim_table_write(lim_tab_t *t, int side, lim_rec_t *r,
                                                      _Atomic(lim_val_t *) *slot, uint64_t seq)
{
    /* the slot's line is wanted for writing: ask for it now, so its
     * transfer overlaps the value's (the exchange waits for both) */
    __builtin_prefetch((const void *)slot, 1);
    lim_val_t *v = r->free;
    if (v)
        r->free = v->next;
    else
        v = lim_refill(t, side, r);
    lim_val_fill(v, seq);
    /* R: the value's words before the pointer (the readers' acquire A);
     * the exchange returns each old value to exactly one writer. */
    lim_val_t *old = atomic_exchange_explicit(slot, v, memory_order_acq_rel);
    old->next = r->pending;
    r->pending = old;
}

static void lim_table_side(lim_pair_t *p, int side)
{
    lim_tab_t *t = p->arg;
    if (side >= t->threads)
        return;
    const uint64_t mask = t->mask, ops = t->ops;
    const uint32_t every = t->write_every;
    _Atomic(lim_val_t *) *slot = t->slot;
    _Atomic uint64_t *mine = &t->qs[side].n;
    lim_rec_t r = {.free = t->pool[side], .reserve = t->reserve[side]};
    uint64_t rng = (uint64_t)side * 7919 + 1, sink = 0, bad = 0, seq = (uint64_t)side << 56;
    uint32_t until = every, until_qs = LIM_QS_EVERY;
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    t->t0[side] = lim_now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        rng = lim_mix(rng);
        uint64_t k = rng & mask;
        if (every && --until == 0) {
            until = every;
            lim_table_write(t, side, &r, &slot[k], ++seq);
        } else {
            /* A: pairs with the writer's release */
            const lim_val_t *v = atomic_load_explicit(&slot[k], memory_order_acquire);
            uint64_t first;
            if (!lim_val_ok(v, &first))
                bad++;
            sink += first;
        }
        if (--until_qs == 0) {
            until_qs = LIM_QS_EVERY;
            /* R: this thread's reads so far are done (the other's acquire A) */
            uint64_t me = atomic_load_explicit(mine, memory_order_relaxed);
            atomic_store_explicit(mine, me + 1, memory_order_release);
        }
    }
    t->t1[side] = lim_now_ns();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    t->cpu[side] = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
    atomic_store_explicit(mine, LIM_QS_OFFLINE, memory_order_release); /* R: no more reads */
    atomic_fetch_add(&t->bad, bad);
    atomic_fetch_add(&t->sink, sink);
    /* hand what this writer holds back to the pool list for the final free */
    lim_val_t *lists[4] = {r.free, r.pending, r.waiting, r.reserve};
    lim_val_t *all = NULL;
    for (int l = 0; l < 4; l++)
        for (lim_val_t *v = lists[l], *nx; v; v = nx) {
            nx = v->next;
            v->next = all;
            all = v;
        }
    t->pool[side] = all;
}

int ax_limits_shared_table(int threads, int cpu_a, int cpu_b, uint32_t keys, uint64_t ops,
                           uint32_t write_every, double *ns_out, double *cpu_ns_out)
{
    if ((threads != 1 && threads != 2) || keys == 0 || (keys & (keys - 1)) || ops == 0 || !ns_out)
        return -EINVAL;
    /* values: one per key, plus 256 spares per thread, refilled from a
     * grace period only when they run out (every 256 writes: the other's
     * counter line moves once per 25600 operations at 1% writes).  Few
     * spares, so the writer's lines stay in its L1/L2 as a worker's
     * recycled nodes do. */
    size_t spare = LIM_SPARE + LIM_RESERVE;
    size_t nval = (size_t)keys + 2 * spare;
    lim_tab_t *t = lim_alloc(sizeof *t);
    lim_val_t *vals = lim_alloc(nval * sizeof *vals);
    _Atomic(lim_val_t *) *slot = lim_alloc((size_t)keys * sizeof *slot);
    if (!t || !vals || !slot) {
        free(t);
        free(vals);
        free((void *)slot);
        return -ENOMEM;
    }
    memset(t, 0, sizeof *t);
    memset(vals, 0, nval * sizeof *vals);
    t->slot = slot;
    t->mask = keys - 1;
    t->ops = ops;
    t->write_every = write_every;
    t->threads = threads;
    for (uint32_t k = 0; k < keys; k++) {
        lim_val_fill(&vals[k], (uint64_t)k << 20);
        atomic_init(&slot[k], &vals[k]);
    }
    for (int s = 0; s < 2; s++) {
        lim_val_t *base = vals + keys + (size_t)s * spare;
        for (size_t i = 0; i < spare; i++)
            base[i].next = i + 1 < spare && i + 1 != LIM_SPARE ? &base[i + 1] : NULL;
        t->pool[s] = base;
        t->reserve[s] = base + LIM_SPARE;
        atomic_init(&t->qs[s].n, 0);
    }
    lim_pair_t p = {.cpu = {cpu_a, cpu_b}, .fn = lim_table_side, .arg = t};
    int rc = lim_run_pair(&p);
    if (rc == 0 && atomic_load(&t->bad))
        rc = -EIO;
    /* every value is either in the table or on a thread's list: count them
     * (a lost or doubly retired value is a bug here) */
    size_t n = keys;
    for (int s = 0; s < threads && rc == 0; s++)
        for (lim_val_t *v = t->pool[s]; v; v = v->next)
            n++;
    if (rc == 0 && n != (size_t)keys + (size_t)threads * spare)
        rc = -EIO;
    if (rc == 0) {
        double t0 = t->t0[0], t1 = t->t1[0];
        if (threads == 2) {
            t0 = t->t0[1] < t0 ? t->t0[1] : t0;
            t1 = t->t1[1] > t1 ? t->t1[1] : t1;
        }
        *ns_out = t1 - t0;
        if (cpu_ns_out)
            *cpu_ns_out = t->cpu[0] + (threads == 2 ? t->cpu[1] : 0);
    }
    lim_sink += atomic_load(&t->sink);
    free((void *)slot);
    free(vals);
    free(t);
    return rc;
}
