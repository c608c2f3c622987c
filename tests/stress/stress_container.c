/* tests/stress/stress_container.c - the memory container under readers and
 * writers on every worker and on outside threads, with invariants:
 *   - no torn value: every value read is self-consistent (seq, key and a
 *     fill derived from both), also re-checked at the end of the section,
 *     so a value freed while a reader holds it shows up (ASan: as a
 *     use-after-free; otherwise as a changed value);
 *   - monotonic: a reader never sees a key's seq go back;
 *   - no lost write: writers increment a key's seq inside a write section
 *     (read-modify-write); at the end the seqs sum to the increments made.
 * Writers replace values all the time, so old ones are reclaimed through
 * call_rcu constantly (the reclaim stress).  A churn actor inserts CHURN
 * more keys and deletes them again, over and over, each fill-and-empty
 * pair of passes on the next of RANGES key ranges, so the index grows,
 * fills with tombstones and is rebuilt (larger and smaller) under the
 * readers; readers look churn keys up too (one found must be whole), and
 * a stable key must never be missing, whatever the index is doing.
 * One-put sections (applied at leave under the writer's own lock, the
 * slot swapped or claimed atomically; other writers run at the same time)
 * on a third, tiny container ("blind"): a blind writer per worker and an
 * outside one put random shared keys (inserting them concurrently into
 * tombstones and empty slots, and growing the index through rebuilds)
 * while the churn actor deletes them in whole sections; each writer also
 * owns keys nobody else writes and reads each one back after its leave
 * (its put must be the one found: none lost, none hidden behind a second
 * slot); at the end, every key has at most one slot (the entry count is
 * the count of keys found) and puts were counted once each.
 *
 *   stress_container [--seconds S] [--seed N] [--workers W]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/axon.h"
#include "axon/container.h"
#include "test_util.h"

#define NKEYS 64u   /* stable keys: always present */
#define CHURN 512u  /* keys per churn pass (see churn_key) */
#define RANGES 3u   /* churn key ranges, taken in turn */
#define PER_SECTION 8u
#define T_GO 1u

typedef struct val {
    uint64_t seq, key;
    uint64_t fill[6];
} val_t;

static uint64_t g_seed;
static _Atomic int g_stop;
static _Atomic uint64_t g_errors, g_writes, g_reads, g_active, g_churn_hits, g_churn_ops;
static ax_cont_t *g_c;
/* A second container, sized for 2 keys, where the churn actor puts key n
 * and deletes key n - 8 at every step: about 8 keys live among tombstones,
 * so its index is rebuilt every few dozen puts, and readers walking a
 * table that was just replaced must still find it allocated (freed after
 * the grace period, not at once: ASan checks). */
static ax_cont_t *g_small;
static _Atomic uint32_t g_small_step;
/* The one-put container: BKEYS shared keys, then OWN keys per writer. */
#define BKEYS 8u
#define OWN 16u
#define BLIND_WRITERS_MAX 66u /* workers (up to 64) + 1 outside + 1 spare */
static ax_cont_t *g_blind;
static _Atomic uint64_t g_blind_puts, g_blind_dels, g_blind_own_checks;

#define FAIL(...) \
    do { \
        if (atomic_fetch_add(&g_errors, 1) < 10) { \
            fprintf(stderr, "stress_container: "); \
            fprintf(stderr, __VA_ARGS__); \
            fprintf(stderr, " (rerun: stress_container --seed %" PRIu64 ")\n", g_seed); \
        } \
    } while (0)

static void make_val(val_t *v, uint64_t key, uint64_t seq)
{
    v->seq = seq;
    v->key = key;
    for (int i = 0; i < 6; i++)
        v->fill[i] = mix(seq * 131 + key * 7 + (uint64_t)i);
}

static bool val_ok(const void *p, size_t len, uint32_t key)
{
    val_t v, want;
    if (len != sizeof v)
        return false;
    memcpy(&v, p, sizeof v);
    make_val(&want, key, v.seq);
    return v.key == key && !memcmp(&v, &want, sizeof v);
}

/* One read section: PER_SECTION random keys, checked as read and again
 * before leaving (the values must still be there, unchanged). */
static void read_section(ax_ctx_t *ctx, uint64_t *rng, uint64_t *last)
{
    ax_cont_rd_t rd;
    const void *vp[PER_SECTION];
    size_t vl[PER_SECTION];
    uint32_t keys[PER_SECTION];
    if (ax_cont_read_enter(ctx, g_c, &rd) != 0) {
        FAIL("read_enter failed");
        return;
    }
    for (uint32_t i = 0; i < PER_SECTION; i++) {
        *rng = mix(*rng);
        keys[i] = (uint32_t)(*rng % NKEYS);
        if (ax_cont_get(&rd, &keys[i], sizeof keys[i], &vp[i], &vl[i]) != 0) {
            FAIL("key %u missing", keys[i]);
            vp[i] = NULL;
            continue;
        }
        if (!val_ok(vp[i], vl[i], keys[i])) {
            FAIL("key %u: torn or foreign value", keys[i]);
            continue;
        }
        uint64_t seq;
        memcpy(&seq, vp[i], sizeof seq);
        if (seq < last[keys[i]])
            FAIL("key %u went back from seq %" PRIu64 " to %" PRIu64, keys[i], last[keys[i]], seq);
        last[keys[i]] = seq;
    }
    /* A churn key: present or not, but whole if present, and still whole
     * at the end of the section even if it was deleted meanwhile. */
    *rng = mix(*rng);
    uint32_t ck = NKEYS + (uint32_t)(*rng % (RANGES * CHURN));
    const void *cp = NULL;
    size_t cl = 0;
    int crc = ax_cont_get(&rd, &ck, sizeof ck, &cp, &cl);
    if (crc == 0 && !val_ok(cp, cl, ck))
        FAIL("churn key %u: torn or foreign value", ck);
    else if (crc != 0 && crc != -ENOENT)
        FAIL("churn key %u: get returned %d", ck, crc);
    for (uint32_t i = 0; i < PER_SECTION; i++)
        if (vp[i] && !val_ok(vp[i], vl[i], keys[i]))
            FAIL("key %u: a value changed under a reader (reclaimed too early?)", keys[i]);
    if (crc == 0) {
        if (!val_ok(cp, cl, ck))
            FAIL("churn key %u: a value changed under a reader (reclaimed too early?)", ck);
        atomic_fetch_add_explicit(&g_churn_hits, 1, memory_order_relaxed);
    }
    ax_cont_read_leave(&rd);
    /* The small container: keys step - 15 .. step, present or not. */
    if (ax_cont_read_enter(ctx, g_small, &rd) != 0) {
        FAIL("read_enter (small) failed");
        return;
    }
    uint32_t n = atomic_load_explicit(&g_small_step, memory_order_relaxed);
    for (uint32_t i = 0; i < 4; i++) {
        *rng = mix(*rng);
        uint32_t k = n - (uint32_t)(*rng % 16);
        int rc = ax_cont_get(&rd, &k, sizeof k, &cp, &cl);
        if (rc == 0 && !val_ok(cp, cl, k))
            FAIL("small key %u: torn or foreign value", k);
        else if (rc != 0 && rc != -ENOENT)
            FAIL("small key %u: get returned %d", k, rc);
    }
    ax_cont_read_leave(&rd);
    /* The one-put container: whole values, still whole at leave. */
    if (ax_cont_read_enter(ctx, g_blind, &rd) != 0) {
        FAIL("read_enter (blind) failed");
        return;
    }
    const void *bp[4] = {0};
    size_t bl[4];
    uint32_t bk[4];
    for (uint32_t i = 0; i < 4; i++) {
        *rng = mix(*rng);
        bk[i] = (uint32_t)(*rng % (BKEYS + OWN * 4));
        int rc = ax_cont_get(&rd, &bk[i], sizeof bk[i], &bp[i], &bl[i]);
        if (rc == 0 && !val_ok(bp[i], bl[i], bk[i]))
            FAIL("blind key %u: torn or foreign value", bk[i]);
        else if (rc != 0 && rc != -ENOENT)
            FAIL("blind key %u: get returned %d", bk[i], rc);
        if (rc != 0)
            bp[i] = NULL;
    }
    for (uint32_t i = 0; i < 4; i++)
        if (bp[i] && !val_ok(bp[i], bl[i], bk[i]))
            FAIL("blind key %u: a value changed under a reader (reclaimed too early?)", bk[i]);
    ax_cont_read_leave(&rd);
    atomic_fetch_add_explicit(&g_reads, 1, memory_order_relaxed);
}

/* A one-put section on a shared key, then one on an owned key, which is
 * read back after leave: exactly this put must be found. */
static void blind_section(ax_ctx_t *ctx, uint32_t who, uint64_t *rng, uint64_t *seq)
{
    ax_cont_wr_t wr;
    val_t v;
    *rng = mix(*rng);
    uint32_t key = (uint32_t)(*rng % BKEYS);
    make_val(&v, key, ++*seq);
    if (ax_cont_write_enter(ctx, g_blind, &wr) != 0) {
        FAIL("blind: write_enter failed");
        return;
    }
    if (ax_cont_put(&wr, &key, sizeof key, &v, sizeof v) != 0)
        FAIL("blind: put of key %u failed", key);
    int rc = ax_cont_write_leave(&wr, 0, NULL);
    if (rc != 0)
        FAIL("blind: leave returned %d", rc);
    atomic_fetch_add_explicit(&g_blind_puts, 1, memory_order_relaxed);
    uint32_t own = BKEYS + who * OWN + (uint32_t)(*rng >> 40) % OWN;
    make_val(&v, own, ++*seq);
    if (ax_cont_write_enter(ctx, g_blind, &wr) != 0 || ax_cont_put(&wr, &own, sizeof own, &v, sizeof v) != 0 ||
        ax_cont_write_leave(&wr, 0, NULL) != 0) {
        FAIL("blind: put of owned key %u failed", own);
        return;
    }
    atomic_fetch_add_explicit(&g_blind_puts, 1, memory_order_relaxed);
    ax_cont_rd_t rd;
    const void *p;
    size_t len;
    if (ax_cont_read_enter(ctx, g_blind, &rd) != 0) {
        FAIL("blind: read_enter failed");
        return;
    }
    if (ax_cont_get(&rd, &own, sizeof own, &p, &len) != 0 || !val_ok(p, len, own) ||
        memcmp(p, &v, sizeof v) != 0)
        FAIL("blind: owned key %u does not hold the put that just left (lost or hidden)", own);
    ax_cont_read_leave(&rd);
    atomic_fetch_add_explicit(&g_blind_own_checks, 1, memory_order_relaxed);
}

/* The churn actor, now and then: delete a shared blind key in a whole
 * section (wget + del), leaving a tombstone for the one-put inserts. */
static void blind_reap(ax_ctx_t *ctx, uint64_t *rng)
{
    ax_cont_wr_t wr;
    *rng = mix(*rng);
    uint32_t key = (uint32_t)(*rng % BKEYS);
    const void *p;
    size_t len;
    if (ax_cont_write_enter(ctx, g_blind, &wr) != 0) {
        FAIL("reap: write_enter failed");
        return;
    }
    int got = ax_cont_wget(&wr, &key, sizeof key, &p, &len);
    if (got == 0 && !val_ok(p, len, key))
        FAIL("reap: key %u torn", key);
    if (got == 0) {
        if (ax_cont_del(&wr, &key, sizeof key) != 0)
            FAIL("reap: delete of key %u failed", key);
        else
            atomic_fetch_add_explicit(&g_blind_dels, 1, memory_order_relaxed);
    }
    ax_cont_write_leave(&wr, 0, NULL);
}

static void write_section(ax_ctx_t *ctx, uint64_t *rng)
{
    ax_cont_wr_t wr;
    *rng = mix(*rng);
    uint32_t key = (uint32_t)(*rng % NKEYS);
    if (ax_cont_write_enter(ctx, g_c, &wr) != 0) {
        FAIL("write_enter failed");
        return;
    }
    const void *p;
    size_t len;
    if (ax_cont_wget(&wr, &key, sizeof key, &p, &len) != 0 || !val_ok(p, len, key)) {
        FAIL("writer: key %u missing or torn", key);
    } else {
        uint64_t seq;
        memcpy(&seq, p, sizeof seq);
        val_t v;
        make_val(&v, key, seq + 1);
        if (ax_cont_put(&wr, &key, sizeof key, &v, sizeof v) != 0)
            FAIL("put failed");
        else
            atomic_fetch_add_explicit(&g_writes, 1, memory_order_relaxed);
    }
    ax_cont_write_leave(&wr, 0, NULL);
}

/* Key i of churn pass `pass`: passes 2n (fill) and 2n+1 (empty) use
 * range n % RANGES. */
static uint32_t churn_key(uint64_t pass, uint64_t i)
{
    return NKEYS + (uint32_t)((pass / 2) % RANGES) * CHURN + (uint32_t)i;
}

/* One churn write section: the next key of the current pass is put (in
 * a filling pass) or deleted (in an emptying pass); a pass covers all
 * CHURN keys, so the index sees every load from 64 to 64 + CHURN keys and
 * back, with tombstones in between. */
static void churn_section(ax_ctx_t *ctx, uint64_t *step)
{
    uint64_t pass = *step / CHURN;
    uint32_t key = churn_key(pass, *step % CHURN);
    (*step)++;
    ax_cont_wr_t wr;
    if (ax_cont_write_enter(ctx, g_c, &wr) != 0) {
        FAIL("churn: write_enter failed");
        return;
    }
    const void *p;
    size_t len;
    int got = ax_cont_wget(&wr, &key, sizeof key, &p, &len);
    if (pass % 2 == 0) {
        val_t v;
        make_val(&v, key, *step);
        if (got != -ENOENT)
            FAIL("churn: key %u present before its put (got %d)", key, got);
        if (ax_cont_put(&wr, &key, sizeof key, &v, sizeof v) != 0)
            FAIL("churn: put of key %u failed", key);
    } else {
        if (got != 0 || !val_ok(p, len, key))
            FAIL("churn: key %u missing or torn before its delete", key);
        if (ax_cont_del(&wr, &key, sizeof key) != 0)
            FAIL("churn: delete of key %u failed", key);
    }
    ax_cont_write_leave(&wr, 0, NULL);
    atomic_fetch_add_explicit(&g_churn_ops, 1, memory_order_relaxed);
}

static void small_section(ax_ctx_t *ctx)
{
    uint32_t n = atomic_load_explicit(&g_small_step, memory_order_relaxed) + 1;
    uint32_t old = n - 8;
    ax_cont_wr_t wr;
    if (ax_cont_write_enter(ctx, g_small, &wr) != 0) {
        FAIL("small: write_enter failed");
        return;
    }
    val_t v;
    make_val(&v, n, n);
    if (ax_cont_put(&wr, &n, sizeof n, &v, sizeof v) != 0)
        FAIL("small: put of key %u failed", n);
    if (n > 8 && ax_cont_del(&wr, &old, sizeof old) != 0)
        FAIL("small: delete of key %u failed", old);
    ax_cont_write_leave(&wr, 0, NULL);
    atomic_store_explicit(&g_small_step, n, memory_order_relaxed);
}

/* ---- actors ---------------------------------------------------------------------- */

typedef struct act {
    uint64_t rng, step, seq;
    uint64_t last[NKEYS];
    uint32_t who;
    bool writer, churn, blind, started;
} act_t;

static void actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    act_t *a = st;
    if (!a->started) {
        a->started = true;
        a->writer = m->payload.u64[0] & 1;
        a->churn = m->payload.u64[0] == UINT64_MAX;
        a->blind = m->payload.u64[0] >> 62 == 1;
        a->who = (uint32_t)(m->payload.u64[0] & 0xFFFF);
        a->rng = g_seed ^ m->payload.u64[0];
    }
    if (atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        atomic_fetch_sub(&g_active, 1);
        return;
    }
    if (a->churn) {
        for (int i = 0; i < 8; i++)
            churn_section(ctx, &a->step);
        small_section(ctx);
        for (int i = 0; i < 8; i++)
            blind_reap(ctx, &a->rng);
    } else if (a->blind) {
        for (int i = 0; i < 4; i++)
            blind_section(ctx, a->who, &a->rng, &a->seq);
    } else if (a->writer)
        write_section(ctx, &a->rng);
    else
        read_section(ctx, &a->rng, a->last);
    ax_send_u64(ctx, ax_self(ctx), T_GO, 0);
}

static void *outside(void *arg)
{
    uint64_t who = (uint64_t)(uintptr_t)arg;
    uint64_t rng = g_seed ^ (who << 20), *last = calloc(NKEYS, sizeof *last);
    if (!last || ax_cont_thread_register() != 0) {
        FAIL("outside thread setup failed");
        free(last);
        return NULL;
    }
    uint64_t seq = 0;
    while (!atomic_load(&g_stop)) {
        if (who == 0)
            write_section(NULL, &rng);
        else if (who == 3)
            blind_section(NULL, BLIND_WRITERS_MAX - 1, &rng, &seq);
        else
            read_section(NULL, &rng, last);
    }
    ax_cont_thread_unregister();
    free(last);
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
            fprintf(stderr, "usage: stress_container [--seconds S] [--seed N] [--workers W]\n");
            return 2;
        }
    }
    printf("stress_container: seed %" PRIu64 " (rerun: stress_container --seed %" PRIu64
           "), %u workers, %u s\n",
           g_seed, g_seed, workers, seconds);
    fflush(stdout);
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = workers;
    cfg.oversubscribe = true;
    cfg.arena_bytes = 8u << 20;
    ax_engine_t *eng;
    ax_cont_registry_t *reg;
    if (ax_engine_create(&cfg, &eng) || ax_cont_registry_create(eng, &reg) || ax_engine_start(eng)) {
        fprintf(stderr, "stress_container: engine: %s\n", ax_engine_last_error());
        return 1;
    }
    if (ax_cont_thread_register() != 0)
        return 1;
    ax_cont_config_t cc = AX_CONT_CONFIG_INIT;
    cc.buckets = 16; /* small: the table resizes while readers run */
    if (ax_cont_open(reg, "stress", &cc, &g_c) != 0)
        return 1;
    cc.buckets = 2;
    if (ax_cont_open(reg, "small", &cc, &g_small) != 0 || ax_cont_open(reg, "blind", &cc, &g_blind) != 0)
        return 1;
    if (workers + 1 >= BLIND_WRITERS_MAX) {
        fprintf(stderr, "stress_container: at most %u workers\n", BLIND_WRITERS_MAX - 2);
        return 2;
    }
    ax_cont_wr_t wr;
    ax_cont_write_enter(NULL, g_c, &wr);
    for (uint32_t k = 0; k < NKEYS; k++) {
        val_t v;
        make_val(&v, k, 0);
        ax_cont_put(&wr, &k, sizeof k, &v, sizeof v);
    }
    ax_cont_write_leave(&wr, 0, NULL);
    /* A reader and a writer actor on every worker, plus one more reader. */
    /* ... and the churn actor, last. */
    /* ... and a blind writer on every worker. */
    uint32_t nact = 3 * workers + 2;
    atomic_store(&g_active, nact);
    for (uint32_t i = 0; i < nact; i++) {
        ax_ref_t a;
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = i % workers};
        uint64_t kind = (uint64_t)i << 1 | (i < 2 * workers ? (i / workers) & 1 : 0);
        if (i >= 2 * workers + 1 && i < nact - 1)
            kind = 1ull << 62 | (i - (2 * workers + 1)); /* blind writer, owns keys of slot i - ... */
        if (i == nact - 1)
            kind = UINT64_MAX;
        if (ax_engine_spawn(eng, actor, sizeof(act_t), &o, &a) ||
            ax_engine_send(eng, a, T_GO, &kind, sizeof kind)) {
            fprintf(stderr, "stress_container: spawn failed\n");
            return 1;
        }
    }
    enum { NOUT = 4 }; /* one writer, two readers, one blind writer */
    pthread_t th[NOUT];
    for (uintptr_t i = 0; i < NOUT; i++)
        pthread_create(&th[i], NULL, outside, (void *)i);
    sleep_us(seconds * 1000000u);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < NOUT; i++)
        pthread_join(th[i], NULL);
    uint64_t end = now_ns() + 30ull * 1000000000ull;
    while (atomic_load(&g_active) && now_ns() < end)
        sleep_us(1000);
    /* No lost write: the seqs add up to the increments. */
    uint64_t sum = 0;
    ax_cont_rd_t rd;
    ax_cont_read_enter(NULL, g_c, &rd);
    for (uint32_t k = 0; k < NKEYS; k++) {
        const void *p;
        size_t len;
        if (ax_cont_get(&rd, &k, sizeof k, &p, &len) != 0 || !val_ok(p, len, k)) {
            FAIL("final: key %u missing or torn", k);
            continue;
        }
        uint64_t seq;
        memcpy(&seq, p, sizeof seq);
        sum += seq;
    }
    ax_cont_read_leave(&rd);
    if (sum != atomic_load(&g_writes))
        FAIL("lost writes: the seqs sum to %" PRIu64 ", %" PRIu64 " increments were made", sum,
             atomic_load(&g_writes));
    /* The churn keys: exactly those the churn actor's last pass left. */
    uint64_t steps = atomic_load(&g_churn_ops), churn_left = 0;
    ax_cont_read_enter(NULL, g_c, &rd);
    for (uint32_t k = NKEYS; k < NKEYS + RANGES * CHURN; k++) {
        const void *p;
        size_t len;
        uint64_t pass = steps / CHURN, done_in_pass = steps % CHURN;
        /* present iff in this pass's range and put in this (filling) pass
         * or not yet deleted in this (emptying) one */
        uint32_t base = churn_key(pass, 0);
        bool mine = k >= base && k < base + CHURN;
        uint64_t i = k - base;
        bool want = mine && (pass % 2 == 0 ? i < done_in_pass : i >= done_in_pass);
        int rc = ax_cont_get(&rd, &k, sizeof k, &p, &len);
        if (want != (rc == 0) || (rc == 0 && !val_ok(p, len, k)))
            FAIL("final: churn key %u %s (pass %" PRIu64 ", step %" PRIu64 ")", k,
                 rc == 0 ? "present or torn" : "missing", pass, done_in_pass);
        churn_left += rc == 0;
    }
    ax_cont_read_leave(&rd);
    /* The one-put container: one slot per key (a key claimed twice by
     * concurrent inserts would count twice in the entries), each put
     * counted once. */
    uint64_t found = 0;
    ax_cont_read_enter(NULL, g_blind, &rd);
    for (uint32_t k = 0; k < BKEYS + OWN * BLIND_WRITERS_MAX; k++) {
        const void *p;
        size_t len;
        int rc = ax_cont_get(&rd, &k, sizeof k, &p, &len);
        if (rc == 0 && !val_ok(p, len, k))
            FAIL("final: blind key %u torn", k);
        found += rc == 0;
    }
    ax_cont_read_leave(&rd);
    ax_cont_stats_t cs;
    ax_cont_stats(g_blind, &cs);
    if (cs.entries != found)
        FAIL("blind: %" PRIu64 " entries, %" PRIu64 " keys found (a key in two slots?)", cs.entries, found);
    if (cs.puts != atomic_load(&g_blind_puts) || cs.dels != atomic_load(&g_blind_dels))
        FAIL("blind: stats say %" PRIu64 " puts and %" PRIu64 " deletes, %" PRIu64 " and %" PRIu64 " were made",
             cs.puts, cs.dels, atomic_load(&g_blind_puts), atomic_load(&g_blind_dels));
    if (atomic_load(&g_blind_own_checks) == 0 || atomic_load(&g_blind_dels) == 0)
        FAIL("blind: no owned-key check or no delete ran");
    ax_cont_stats(g_c, &cs);
    if (cs.entries != NKEYS + churn_left)
        FAIL("stats: %" PRIu64 " entries, expected %" PRIu64, cs.entries, NKEYS + churn_left);
    if (steps < 2 * RANGES * CHURN)
        FAIL("churn: only %" PRIu64 " churn sections (want every range filled and emptied)", steps);
    printf("stress_container: %" PRIu64 " read sections, %" PRIu64 " writes, %" PRIu64
           " churn sections (%" PRIu64 " passes), %" PRIu64 " churn keys read, %" PRIu64
           " one-put sections, %" PRIu64 " blind deletes, errors %" PRIu64 "\n",
           atomic_load(&g_reads), atomic_load(&g_writes), steps, steps / CHURN,
           atomic_load(&g_churn_hits), atomic_load(&g_blind_puts), atomic_load(&g_blind_dels),
           atomic_load(&g_errors));
    ax_cont_close(g_c);
    ax_cont_close(g_small);
    ax_cont_close(g_blind);
    ax_cont_thread_unregister();
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_cont_registry_destroy(reg);
    ax_engine_destroy(eng);
    return atomic_load(&g_errors) ? 1 : 0;
}
