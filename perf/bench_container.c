/* perf/bench_container.c - shared containers (issue 13) against a
 * pthread_rwlock-guarded hash table, in one run so the ratios hold:
 *
 *   containers/read/memory/W   W reader actors (one per worker), read
 *                              sections of one lookup each, 1% of the
 *                              operations a write section (replace a value)
 *   containers/read/lmdb/W     the same on an LMDB container (writes queued
 *                              to the writer thread, not waited for)
 *   containers/read/rwlock/W   the same actors on the same workers, the same
 *                              mix, on a chained hash table under one
 *                              pthread_rwlock_t (only the guard differs)
 *   containers/write/memory    one actor, write sections of one put
 *   containers/write/lmdb      one actor, 64 sections in flight, each
 *                              acknowledged after its synced commit
 *   containers/write/rwlock    one actor, wrlock + replace + unlock
 *   limits/shared_table/T      the floor (perf/limits.c): T pinned bare
 *                              threads, the same keys, value size and 1%
 *                              writes of random keys, on a table with the
 *                              least coherence traffic a design with atomic
 *                              visibility and never-waiting readers can
 *                              have (a pointer per key, a fresh value line
 *                              per write).  Its 2/1 ratio is what the
 *                              machine allows the read/memory 2/1 ratio.
 *
 * Items are operations (lookups or puts); items/s is the figure.  W = 1 and
 * 2 show whether reads scale with workers.  Keys: 1024 of 4 bytes; values 64
 * bytes.  Manual time stamped inside the actors/threads.
 *
 * Reads: the readers share one budget of operations, claimed CHUNK at a
 * time, so they finish together; the time runs from the first reader's
 * first operation to the last reader's finish.  (Before, each reader did
 * a fixed half and the clock started at the outside thread's first send:
 * a reader that got less CPU finished late while the other idled, and the
 * clock counted the workers' wake-up.  AXON_BENCH_FIXED_SHARE=1 runs it
 * that way, to compare.)
 *
 * Counters: cpu_ns_per_op (reads: the reader threads' CPU time over their
 * active windows, per operation; flat from 1 to 2 workers when they share
 * nothing, whatever else runs on the machine), proc_cpu_ns_per_op (the
 * whole process), and, for reads, where the workers' time in the window
 * went: idle_pct (not running, in % of workers x window), of which
 * skew_pct before a reader's first or after its last operation, and the
 * readers' voluntary (vol_csw: blocked, e.g. a futex wait or a park) and
 * involuntary (invol_csw: preempted) context switches per run.
 * Environment, for profiling runs (docs/containers.md "Figures"):
 *   AXON_BENCH_OPS=N          N operations per run, whatever the iterations
 *   AXON_BENCH_TICK_MS=N      a timer per worker, so valgrind does not hang
 *                             on a worker parked in io_uring_enter
 *   AXON_BENCH_WRITE_EVERY=N  one write per N operations (0: none; 100)
 *   AXON_BENCH_FIXED_SHARE=1  reads: the old fixed halves (see above)
 *   AXON_BENCH_KEYS=N         N keys (power of two), memory kind and the
 *                             floor only: a key space beyond the caches
 */
#include <errno.h>
#include <stdalign.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/container.h"
#include "axon/io.h"
#include "axon_bench.h"
#include "limits.h"

#define NKEYS 1024u
#define VLEN 64u
#define CHUNK 256u     /* operations per message */
#define WRITE_EVERY 100u /* 1% writes */
/* AXON_BENCH_WRITE_EVERY=N overrides it (0: no writes), to tell the cost of
 * the writes from the cost of the reads when scaling is in question. */
static uint64_t g_write_every = WRITE_EVERY;
/* AXON_BENCH_KEYS=N (a power of two): N keys instead of 1024, for the
 * memory kind and the floor only (a key space larger than the caches, as
 * extra information; the rwlock baseline keeps 1024). */
static uint32_t g_keys = NKEYS;
static int keys_from_env(void)
{
    const char *k = getenv("AXON_BENCH_KEYS");
    g_keys = NKEYS;
    if (!k)
        return 0;
    unsigned long n = strtoul(k, NULL, 10);
    if (n < 1 || n > (1ul << 26) || (n & (n - 1)))
        return -1;
    g_keys = (uint32_t)n;
    return 0;
}

static uint64_t cb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t cb_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* ---- axon containers ---------------------------------------------------------------- */

#define KIND_RWLOCK 7u /* the baseline, run in the same actors on the same workers */
static void rw_put(uint32_t key, const unsigned char *v);
static uint64_t rw_get(uint32_t key);
static void rw_setup(void);
static void rw_teardown(void);

/* The run, shared by its actors.  What every operation reads (c,
 * per_actor, kind) is on a line nothing writes during the run; what the
 * actors write (once per message or at the end) is on other lines. */
#define MAX_ACT 64u
typedef struct act_rec { /* one reader's window, written once by it at its end */
    uint64_t ws, we;     /* wall clock: its first operation, its finish */
    uint64_t cpu;        /* its thread's CPU time between the two */
    uint64_t vcs, ivcs;  /* its thread's voluntary / involuntary context switches */
    uint64_t ops;
} act_rec_t;
typedef struct cr {
    alignas(64) ax_cont_t *c;
    uint64_t per_actor;  /* writes, and reads with AXON_BENCH_FIXED_SHARE=1 */
    uint64_t total;      /* reads: operations shared by the readers, CHUNK at a time */
    uint32_t kind;
    bool fixed_share;
    alignas(64) _Atomic uint64_t claimed; /* reads: operations claimed (one add per CHUNK) */
    alignas(64) sem_t done;
    _Atomic uint32_t left;
    _Atomic uint64_t t0, t1, cpu0, cpu1;
    alignas(64) _Atomic uint64_t sink, bad;
    act_rec_t rec[MAX_ACT];
} cr_t;

typedef struct ca {
    cr_t *r;
    uint64_t done, rng, acked, inflight, until_write, quota;
    uint32_t slot;
    bool writer_only, started;
    act_rec_t rec;
} ca_t;

/* CPU time, not wall time: on a machine shared with other work, how long a
 * worker waits for a CPU says nothing about what an operation costs; the
 * CPU time each reader's thread spends per operation does, and it stays
 * flat from one worker to two exactly when the readers share nothing.
 * Read once at an actor's start and once at its end (a thread CPU clock
 * is a system call, ~0.3 us: per message it was 2-3 ns of every read). */
static uint64_t cpu_now(clockid_t which)
{
    struct timespec ts;
    clock_gettime(which, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void csw_now(uint64_t *vcs, uint64_t *ivcs)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        *vcs = (uint64_t)ru.ru_nvcsw;
        *ivcs = (uint64_t)ru.ru_nivcsw;
    } else {
        *vcs = *ivcs = 0;
    }
}

#define T_GO 1u
#define T_ACK 2u

static void ca_finish(cr_t *r, const ca_t *a)
{
    if (atomic_fetch_sub(&r->left, 1) == 1) {
        atomic_store(&r->cpu1, cpu_now(CLOCK_PROCESS_CPUTIME_ID));
        atomic_store(&r->t1, cb_now());
        sem_post(&r->done);
    }
    (void)a;
}

static void reader_start(ax_ctx_t *ctx, ca_t *a, const ax_msg_t *m)
{
    memcpy(&a->r, m->payload.data, sizeof a->r);
    a->slot = (uint32_t)m->payload.u64[2];
    a->rng = (uint64_t)ax_worker_id(ctx) * 7919 + 1;
    a->until_write = g_write_every;
    a->started = true;
    csw_now(&a->rec.vcs, &a->rec.ivcs);
    a->rec.cpu = cpu_now(CLOCK_THREAD_CPUTIME_ID);
    a->rec.ws = cb_now();
}

static void reader_end(cr_t *r, ca_t *a)
{
    act_rec_t *o = &r->rec[a->slot];
    uint64_t v, iv;
    o->we = cb_now();
    o->ws = a->rec.ws;
    o->cpu = cpu_now(CLOCK_THREAD_CPUTIME_ID) - a->rec.cpu;
    csw_now(&v, &iv);
    o->vcs = v - a->rec.vcs;
    o->ivcs = iv - a->rec.ivcs;
    o->ops = a->done;
    ca_finish(r, a); /* its fetch_sub (seq_cst) publishes o to the last finisher */
}

/* How many operations this actor does next: reads share one budget, taken
 * CHUNK at a time, so a worker that got less CPU (preempted, started
 * late) does fewer and both finish within a chunk of each other; with
 * AXON_BENCH_FIXED_SHARE=1 each reader does total/workers whatever the
 * other does (the benchmark before: the first to finish then idled). */
static uint32_t reader_claim(cr_t *r, ca_t *a)
{
    if (r->fixed_share) {
        uint64_t left = r->per_actor - a->done;
        return (uint32_t)(left < CHUNK ? left : CHUNK);
    }
    if (a->quota == 0) {
        uint64_t base = atomic_fetch_add_explicit(&r->claimed, CHUNK, memory_order_relaxed);
        if (base >= r->total)
            return 0;
        a->quota = r->total - base < CHUNK ? r->total - base : CHUNK;
    }
    return (uint32_t)a->quota;
}

static void reader_actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    ca_t *a = st;
    if (m->type == T_ACK)
        return; /* LMDB commit of a 1% write: not waited for */
    if (m->type == T_GO && !a->started)
        reader_start(ctx, a, m);
    cr_t *r = a->r;
    uint32_t n = reader_claim(r, a);
    if (n == 0) {
        reader_end(r, a);
        return;
    }
    uint64_t sink = 0;
    unsigned char v[VLEN];
    ax_cont_t *c = r->c;
    bool rw = r->kind == KIND_RWLOCK;
    /* A countdown picks the 1% writes: `done % every` was a 64-bit
     * division per operation (every is a run-time value), in both
     * variants' loops. */
    uint64_t until = a->until_write, done = a->done, rng = a->rng;
    for (uint32_t i = 0; i < n; i++, done++) {
        rng = cb_mix(rng);
        uint32_t key = (uint32_t)rng & (g_keys - 1); /* was % NKEYS: the same and */
        if (g_write_every && --until == 0) {
            until = g_write_every;
            memset(v, (int)done, sizeof v);
            if (rw) {
                rw_put(key, v);
            } else {
                ax_cont_wr_t wr;
                ax_cont_write_enter(ctx, c, &wr);
                ax_cont_put(&wr, &key, sizeof key, v, sizeof v);
                ax_cont_write_leave(&wr, T_ACK, NULL);
            }
            continue;
        }
        if (rw) {
            sink += rw_get(key);
            continue;
        }
        ax_cont_rd_t rd;
        const void *p;
        size_t len;
        ax_cont_read_enter(ctx, c, &rd);
        if (ax_cont_get(&rd, &key, sizeof key, &p, &len) == 0)
            sink += *(const unsigned char *)p;
        else
            atomic_fetch_add(&r->bad, 1);
        ax_cont_read_leave(&rd);
    }
    a->until_write = until;
    a->done = done;
    a->rng = rng;
    if (!r->fixed_share)
        a->quota -= n;
    atomic_fetch_add_explicit(&r->sink, sink, memory_order_relaxed);
    ax_send_u64(ctx, ax_self(ctx), T_GO, 0); /* the next message claims, or ends */
}

static void writer_actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    ca_t *a = st;
    if (m->type == T_GO && !a->r) {
        memcpy(&a->r, m->payload.data, sizeof a->r);
        a->writer_only = m->payload.u64[1] != 0; /* LMDB: a window of acknowledged sections */
    }
    cr_t *r = a->r;
    unsigned char v[VLEN];
    if (m->type == T_ACK) {
        a->acked++;
        a->inflight--;
        if (a->acked == r->per_actor) {
            ca_finish(r, a);
            return;
        }
    }
    /* Memory: CHUNK puts per message.  LMDB: keep 64 sections in flight. */
    for (uint32_t i = 0; i < CHUNK && a->done < r->per_actor; i++) {
        if (a->writer_only && a->inflight >= 64)
            break;
        uint32_t key = (uint32_t)a->done & (g_keys - 1);
        memset(v, (int)a->done, sizeof v);
        if (r->kind == KIND_RWLOCK) {
            rw_put(key, v);
            a->done++;
            continue;
        }
        ax_cont_wr_t wr;
        ax_cont_write_enter(ctx, r->c, &wr);
        ax_cont_put(&wr, &key, sizeof key, v, sizeof v);
        ax_cont_write_leave(&wr, T_ACK, NULL);
        a->done++;
        if (a->writer_only)
            a->inflight++;
    }
    if (!a->writer_only) {
        if (a->done < r->per_actor)
            ax_send_u64(ctx, ax_self(ctx), T_GO, 0);
        else
            ca_finish(r, a);
    }
}

/* AXON_BENCH_TICK_MS=N (for valgrind runs only): an actor per worker with
 * an N ms timer, so a parked worker returns from io_uring_enter within N
 * ms.  valgrind 3.19 keeps its big lock while a thread blocks there, so
 * with two workers one parked worker hangs the whole run (profiling.md). */
static void ticker_actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    (void)st;
    if (m->type == T_GO)
        ax_timer_every(ctx, m->payload.u64[0], T_ACK, NULL, 0, NULL);
}

static void fill(ax_cont_t *c)
{
    ax_cont_wr_t wr;
    unsigned char v[VLEN] = {1};
    ax_cont_write_enter(NULL, c, &wr);
    for (uint32_t k = 0; k < g_keys; k++)
        ax_cont_put(&wr, &k, sizeof k, v, sizeof v);
    uint64_t seq = 0;
    ax_cont_write_leave(&wr, 0, &seq);
    if (seq)
        ax_cont_sync(c, seq, -1);
}

static void run_axon(axon_bench_state *st, uint64_t iters, uint32_t workers, uint32_t kind, bool write)
{
    char dir[] = "/tmp/axon-bench-cont-XXXXXX";
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = workers;
    ax_engine_t *e = NULL;
    ax_cont_registry_t *reg = NULL;
    static cr_t r; /* alignas(64): not on this stack frame's alignment */
    memset(&r, 0, sizeof r);
    /* AXON_BENCH_OPS=N: N operations whatever the iteration count (for
     * valgrind runs, where the iteration ramp would take hours). */
    const char *fixed_ops = getenv("AXON_BENCH_OPS");
    if (fixed_ops && strtoull(fixed_ops, NULL, 10) > 0)
        iters = strtoull(fixed_ops, NULL, 10);
    r.per_actor = iters / (write ? 1 : workers);
    r.kind = kind;
    if (!r.per_actor)
        r.per_actor = 1;
    r.total = r.per_actor * (write ? 1 : workers);
    const char *fs = getenv("AXON_BENCH_FIXED_SHARE");
    r.fixed_share = fs && atoi(fs) > 0;
    sem_init(&r.done, 0, 0);
    const char *tick = getenv("AXON_BENCH_TICK_MS");
    const char *we = getenv("AXON_BENCH_WRITE_EVERY");
    g_write_every = we ? strtoull(we, NULL, 10) : WRITE_EVERY;
    if (keys_from_env() < 0) {
        axon_bench_skip(st, "AXON_BENCH_KEYS: a power of two from 1 to 2^26, please");
        sem_destroy(&r.done);
        return;
    }
    if (g_keys != NKEYS && kind != AX_CONT_MEMORY) {
        axon_bench_skip(st, "AXON_BENCH_KEYS: memory kind only (unset it for lmdb and rwlock)");
        sem_destroy(&r.done);
        return;
    }
    if (ax_engine_create(&cfg, &e) < 0 || ax_cont_registry_create(e, &reg) < 0) {
        axon_bench_skip(st, "engine or registry setup failed");
        goto out;
    }
    for (uint32_t w = 0; tick && atoi(tick) > 0 && w < workers; w++) {
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = w};
        ax_ref_t t;
        uint64_t ms = (uint64_t)atoi(tick);
        if (ax_engine_spawn(e, ticker_actor, 1, &o, &t) == 0)
            ax_engine_send(e, t, T_GO, &ms, sizeof ms);
    }
    if (ax_engine_start(e) < 0 || ax_cont_thread_register() < 0) {
        axon_bench_skip(st, "engine or registry setup failed");
        goto out;
    }
    ax_cont_config_t cc = AX_CONT_CONFIG_INIT;
    if (kind == AX_CONT_LMDB) {
        if (!mkdtemp(dir)) {
            axon_bench_skip(st, "mkdtemp failed");
            goto out;
        }
        cc.kind = AX_CONT_LMDB;
        cc.path = dir;
        cc.map_bytes = 256u << 20;
    }
    if (kind == KIND_RWLOCK) {
        rw_setup();
    } else if (ax_cont_open(reg, "bench", &cc, &r.c) < 0) {
        axon_bench_skip(st, "ax_cont_open failed");
        goto out;
    } else {
        fill(r.c);
    }
    uint32_t nact = write ? 1 : workers;
    if (nact > MAX_ACT) {
        axon_bench_skip(st, "too many workers for the benchmark's records");
        goto out;
    }
    atomic_store(&r.left, nact);
    ax_ref_t refs[64];
    for (uint32_t i = 0; i < nact; i++) {
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = i};
        if (ax_engine_spawn(e, write ? writer_actor : reader_actor, sizeof(ca_t), &o, &refs[i]) < 0) {
            axon_bench_skip(st, "spawn failed");
            goto out;
        }
    }
    atomic_store(&r.cpu0, cpu_now(CLOCK_PROCESS_CPUTIME_ID));
    atomic_store(&r.t0, cb_now());
    for (uint32_t i = 0; i < nact; i++) {
        uint64_t go[3] = {(uint64_t)(uintptr_t)&r, kind == AX_CONT_LMDB, i};
        ax_engine_send(e, refs[i], T_GO, go, sizeof go);
    }
    sem_wait(&r.done);
    uint64_t t0 = atomic_load(&r.t0), t1 = atomic_load(&r.t1);
    double ops = (double)r.total;
    if (!write) {
        /* The window: from the first reader's first operation (what the
         * workers need to wake up and take their first message is not a
         * read's cost) to the last reader's finish.  With
         * AXON_BENCH_FIXED_SHARE=1, as before: from the outside thread's
         * first send. */
        uint64_t first = UINT64_MAX;
        for (uint32_t i = 0; i < nact; i++)
            first = r.rec[i].ws < first ? r.rec[i].ws : first;
        if (!r.fixed_share && first < t1)
            t0 = first;
        /* Where the workers' time in the window went, in % of nact x the
         * window: running (their threads' CPU), waiting before their first
         * operation or after their last (start and finish skew), or off
         * their CPU in between (preempted: involuntary switches; blocked:
         * voluntary ones, i.e. a futex wait or a park). */
        double span = (double)nact * (double)(t1 - t0), busy = 0, before = 0, after = 0;
        uint64_t vcs = 0, ivcs = 0;
        for (uint32_t i = 0; i < nact; i++) {
            busy += (double)r.rec[i].cpu;
            before += r.rec[i].ws > t0 ? (double)(r.rec[i].ws - t0) : 0;
            after += (double)(t1 - r.rec[i].we);
            vcs += r.rec[i].vcs;
            ivcs += r.rec[i].ivcs;
        }
        /* Reads: CPU of the readers' threads per operation, their whole
         * active window (flat from 1 to 2 workers when nothing is shared). */
        axon_bench_counter(st, "cpu_ns_per_op", busy / ops, AXON_COUNTER_PLAIN);
        axon_bench_counter(st, "idle_pct", 100.0 * (1.0 - busy / span), AXON_COUNTER_PLAIN);
        axon_bench_counter(st, "skew_pct", 100.0 * (before + after) / span, AXON_COUNTER_PLAIN);
        axon_bench_counter(st, "vol_csw", (double)vcs, AXON_COUNTER_PLAIN);
        axon_bench_counter(st, "invol_csw", (double)ivcs, AXON_COUNTER_PLAIN);
    }
    axon_bench_set_iteration_time(st, (double)(t1 - t0) / 1e9);
    axon_bench_items(st, (int64_t)r.total);
    /* Both: CPU of the whole process per operation (workers, liburcu's
     * call_rcu thread, LMDB's writer), from the first send on. */
    axon_bench_counter(st, "proc_cpu_ns_per_op",
                       (double)(atomic_load(&r.cpu1) - atomic_load(&r.cpu0)) / ops, AXON_COUNTER_PLAIN);
    if (atomic_load(&r.bad))
        axon_bench_counter(st, "missing", (double)atomic_load(&r.bad), AXON_COUNTER_PLAIN);
out:
    if (e) {
        ax_engine_stop(e);
        ax_engine_wait(e);
    }
    if (r.c)
        ax_cont_close(r.c);
    ax_cont_thread_unregister();
    ax_cont_registry_destroy(reg);
    ax_engine_destroy(e);
    sem_destroy(&r.done);
    if (kind == KIND_RWLOCK)
        rw_teardown();
    if (kind == AX_CONT_LMDB && dir[strlen(dir) - 1] != 'X') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_container: could not remove %s\n", dir);
    }
}

/* ---- the rwlock baseline ------------------------------------------------------------- */

typedef struct rw_node {
    struct rw_node *next;
    uint32_t key;
    unsigned char v[VLEN];
} rw_node_t;

typedef struct rw_table {
    pthread_rwlock_t lock;
    rw_node_t *b[NKEYS];
} rw_table_t;

static rw_table_t g_rw;

static void rw_put(uint32_t key, const unsigned char *v)
{
    rw_node_t *n = malloc(sizeof *n);
    if (!n)
        return;
    n->key = key;
    memcpy(n->v, v, VLEN);
    pthread_rwlock_wrlock(&g_rw.lock);
    uint32_t h = (uint32_t)(cb_mix(key) % NKEYS);
    rw_node_t **pp = &g_rw.b[h], *old = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->key == key) {
            old = *pp;
            n->next = old->next;
            *pp = n;
            break;
        }
    if (!old) {
        n->next = g_rw.b[h];
        g_rw.b[h] = n;
    }
    pthread_rwlock_unlock(&g_rw.lock);
    free(old);
}

static uint64_t rw_get(uint32_t key)
{
    uint64_t v = 0;
    pthread_rwlock_rdlock(&g_rw.lock);
    for (rw_node_t *n = g_rw.b[cb_mix(key) % NKEYS]; n; n = n->next)
        if (n->key == key) {
            v = n->v[0];
            break;
        }
    pthread_rwlock_unlock(&g_rw.lock);
    return v;
}

static void rw_setup(void)
{
    pthread_rwlock_init(&g_rw.lock, NULL);
    memset(g_rw.b, 0, sizeof g_rw.b);
    unsigned char v[VLEN] = {1};
    for (uint32_t k = 0; k < NKEYS; k++)
        rw_put(k, v);
}

static void rw_teardown(void)
{
    for (uint32_t k = 0; k < NKEYS; k++)
        for (rw_node_t *x = g_rw.b[k], *nx; x; x = nx) {
            nx = x->next;
            free(x);
        }
    pthread_rwlock_destroy(&g_rw.lock);
}

/* ---- the floor: a bare shared table (perf/limits.c) ---------------------------------- */

static double g_best_rtt;
static void bm_shared_table(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    int a, b;
    double ns = 0, cpu = 0, rtt = 0;
    int threads = (int)axon_bench_range(st, 0);
    if (ax_limits_pick_cpus(&a, &b) < 0) {
        if (threads == 2) {
            axon_bench_skip(st, "needs 2 CPUs");
            return;
        }
        a = b = 0;
    }
    const char *we = getenv("AXON_BENCH_WRITE_EVERY");
    uint32_t every = we ? (uint32_t)strtoul(we, NULL, 10) : WRITE_EVERY;
    const char *fixed_ops = getenv("AXON_BENCH_OPS");
    if (fixed_ops && strtoull(fixed_ops, NULL, 10) > 0)
        iters = strtoull(fixed_ops, NULL, 10);
    uint64_t per = iters / (uint64_t)threads ? iters / (uint64_t)threads : 1;
    if (keys_from_env() < 0) {
        axon_bench_skip(st, "AXON_BENCH_KEYS: a power of two from 1 to 2^26, please");
        return;
    }
    int rc = ax_limits_shared_table(threads, a, b, g_keys, per, every, &ns, &cpu);
    if (rc < 0) {
        axon_bench_skip(st, rc == -EIO ? "shared table: a torn, wrong or lost value (a bug)"
                                       : "shared table failed (pinning or memory)");
        return;
    }
    axon_bench_set_iteration_time(st, ns / 1e9);
    axon_bench_items(st, (int64_t)(per * (uint64_t)threads));
    axon_bench_counter(st, "cpu_ns_per_op", cpu / (double)(per * (uint64_t)threads), AXON_COUNTER_PLAIN);
    if (a != b && !(fixed_ops && strtoull(fixed_ops, NULL, 10) > 0)) { /* not under valgrind: it spins */
        if (g_best_rtt <= 0)
            for (int i = 0; i < 9; i++)
                ax_limits_sample_placement(a, b, 2.5, &g_best_rtt, &rtt);
        ax_limits_sample_placement(a, b, 2.5, &g_best_rtt, &rtt);
        axon_bench_counter(st, "xcore_rtt_ns", rtt, AXON_COUNTER_PLAIN);
    }
}

/* ---- registration ------------------------------------------------------------------- */

static void bm_read_memory(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    run_axon(st, iters, (uint32_t)axon_bench_range(st, 0), AX_CONT_MEMORY, false);
}
static void bm_read_lmdb(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    run_axon(st, iters, (uint32_t)axon_bench_range(st, 0), AX_CONT_LMDB, false);
}
static void bm_read_rwlock(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    run_axon(st, iters, (uint32_t)axon_bench_range(st, 0), KIND_RWLOCK, false);
}
static void bm_write_memory(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    run_axon(st, iters, 1, AX_CONT_MEMORY, true);
}
static void bm_write_lmdb(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    run_axon(st, iters, 1, AX_CONT_LMDB, true);
}
static void bm_write_rwlock(axon_bench_state *st, uint64_t iters, void *arg)
{
    (void)arg;
    run_axon(st, iters, 1, KIND_RWLOCK, true);
}

static void *reg_timed(const char *name, axon_bench_fn fn)
{
    void *b = axon_bench_register(name, fn, NULL);
    axon_bench_manual_time(b);
    axon_bench_unit_ns(b);
    return b;
}

AXON_BENCHMARK(register_container_benchmarks)
{
    void *b = reg_timed("containers/read/memory", bm_read_memory);
    axon_bench_arg(b, 1);
    axon_bench_arg(b, 2);
    b = reg_timed("containers/read/lmdb", bm_read_lmdb);
    axon_bench_arg(b, 1);
    axon_bench_arg(b, 2);
    b = reg_timed("containers/read/rwlock", bm_read_rwlock);
    axon_bench_arg(b, 1);
    axon_bench_arg(b, 2);
    reg_timed("containers/write/memory", bm_write_memory);
    b = reg_timed("containers/write/lmdb", bm_write_lmdb);
    axon_bench_min_time(b, 0.5);
    reg_timed("containers/write/rwlock", bm_write_rwlock);
    b = reg_timed("limits/shared_table", bm_shared_table);
    axon_bench_arg(b, 1);
    axon_bench_arg(b, 2);
}
