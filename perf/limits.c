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
