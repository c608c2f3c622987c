/* tests/unit/test_container.c - shared containers (axon/container.h):
 * memory and LMDB kinds through the same enter/leave calls, from behaviours
 * and registered outside threads; names and refcounts; the LMDB writer's
 * commit messages; an LMDB crash test (kill -9 a child during a write
 * stream, reopen, every acknowledged key present and intact); open/close
 * churn from every worker.
 *
 * Engines have 2 workers with oversubscribe allowed (works under taskset -c
 * 0).  LMDB files go to a fresh directory under $TMPDIR (or /tmp).
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "axon/axon.h"
#include "axon/container.h"

#define ENGINE_TEST_NAME "test_container"
#define ENGINE_TEST_HANG "a commit message was lost or a section never ended"
#include "unit/engine_test.h"
#include "unit/container_test.h"

#define T_GO 1u
#define T_ACK 2u

static char g_dir[256];

static void make_dir(const char *sub, char *out, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, len, "%s/axon-cont-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    assert_non_null(mkdtemp(out));
    size_t n = strlen(out);
    snprintf(out + n, len - n, "/%s", sub);
}

static void rm_dir(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    int rc = system(cmd);
    (void)rc;
}

/* ---- names, refcounts, bad input ----------------------------------------------------- */

static void names_open_the_same_container_and_refuse_bad_input(void **state)
{
    (void)state;
    g_test = __func__;
    ax_cont_registry_t *reg;
    ax_engine_t *eng = cont_test_engine(2, &reg);
    assert_int_equal(ax_cont_thread_register(), 0);
    assert_int_equal(ax_cont_thread_register(), -EINVAL); /* twice */
    ax_cont_t *a, *b, *x;
    ax_cont_config_t cc = AX_CONT_CONFIG_INIT;
    assert_int_equal(ax_cont_open(reg, "t", NULL, &x), -ENOENT);
    assert_int_equal(ax_cont_open(reg, "t", &cc, &a), 0);
    assert_int_equal(ax_cont_open(reg, "t", NULL, &b), 0);
    assert_ptr_equal(a, b);
    ax_cont_config_t lc = AX_CONT_CONFIG_INIT;
    lc.kind = AX_CONT_LMDB;
    lc.path = "/nonexistent";
    assert_int_equal(ax_cont_open(reg, "t", &lc, &x), -EINVAL); /* kind differs */
    assert_int_equal(ax_cont_open(reg, "", &cc, &x), -EINVAL);
    char longname[AX_CONT_NAME_MAX + 1];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(ax_cont_open(reg, longname, &cc, &x), -EINVAL);
    cc.buckets = 1000; /* not a power of two */
    assert_int_equal(ax_cont_open(reg, "u", &cc, &x), -EINVAL);

    ax_cont_wr_t wr;
    assert_int_equal(ax_cont_write_enter(NULL, a, &wr), 0);
    assert_int_equal(ax_cont_put(&wr, "k", 1, "v1", 2), 0);
    assert_int_equal(ax_cont_put(&wr, "k", 0, "v1", 2), -EINVAL);
    char bigkey[AX_CONT_KEY_MAX + 1] = {0};
    assert_int_equal(ax_cont_put(&wr, bigkey, sizeof bigkey, "v", 1), -EINVAL);
    assert_int_equal(ax_cont_del(&wr, "nope", 4), -ENOENT);
    const void *v;
    size_t vl;
    assert_int_equal(ax_cont_wget(&wr, "k", 1, &v, &vl), 0);
    assert_int_equal(ax_cont_write_leave(&wr, 0, NULL), 0);
    ax_cont_rd_t rd;
    assert_int_equal(ax_cont_read_enter(NULL, b, &rd), 0);
    assert_int_equal(ax_cont_get(&rd, "k", 1, &v, &vl), 0);
    assert_int_equal(vl, 2);
    assert_memory_equal(v, "v1", 2);
    assert_int_equal(ax_cont_get(&rd, "zz", 2, &v, &vl), -ENOENT);
    ax_cont_read_leave(&rd);
    ax_cont_close(a);
    assert_int_equal(ax_cont_open(reg, "t", NULL, &x), 0); /* b still holds it */
    ax_cont_close(x);
    ax_cont_close(b);
    assert_int_equal(ax_cont_open(reg, "t", NULL, &x), -ENOENT); /* gone with the last close */
    ax_cont_thread_unregister();
    /* Not registered: sections from this thread are refused, not undefined. */
    assert_int_equal(ax_cont_open(reg, "t", &(ax_cont_config_t)AX_CONT_CONFIG_INIT, &a), 0);
    assert_int_equal(ax_cont_read_enter(NULL, a, &rd), -EINVAL);
    ax_cont_close(a);
    cont_test_stop(eng, reg);
}

/* ---- the memory kind's index: growth, tombstones, rebuilds, key lengths ------------------ */

/* Key i: 4 to 43 bytes (so 4 and 8, which hash differently, and long
 * ones), the first four bytes i itself (so all keys differ). */
static size_t idx_key(uint32_t i, unsigned char *k)
{
    size_t len = 4 + i % 40;
    for (size_t j = 4; j < len; j++)
        k[j] = (unsigned char)(i * 7 + j * 31);
    memcpy(k, &i, 4);
    return len;
}

static void idx_check(ax_cont_t *c, uint32_t n, uint32_t mod, uint32_t present_rem, const char *when)
{
    ax_cont_rd_t rd;
    assert_int_equal(ax_cont_read_enter(NULL, c, &rd), 0);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char k[44];
        size_t kl = idx_key(i, k);
        const void *v;
        size_t vl;
        int rc = ax_cont_get(&rd, k, kl, &v, &vl);
        bool want = mod == 0 || i % mod == present_rem;
        if (want != (rc == 0))
            fail_msg("%s: key %u (len %zu) %s", when, i, kl, rc == 0 ? "present" : "missing");
        if (rc == 0) {
            assert_int_equal(vl, sizeof i);
            uint32_t got;
            memcpy(&got, v, sizeof got);
            assert_int_equal(got, i);
        }
    }
    ax_cont_read_leave(&rd);
}

static void memory_index_grows_shrinks_and_keeps_every_key(void **state)
{
    (void)state;
    g_test = __func__;
    ax_cont_registry_t *reg;
    ax_engine_t *eng = cont_test_engine(2, &reg);
    assert_int_equal(ax_cont_thread_register(), 0);
    ax_cont_t *c;
    ax_cont_config_t cc = AX_CONT_CONFIG_INIT;
    cc.buckets = 2; /* 4 slots: every few puts rebuild */
    assert_int_equal(ax_cont_open(reg, "idx", &cc, &c), 0);
    enum { N = 20000 };
    ax_cont_wr_t wr;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(ax_cont_write_enter(NULL, c, &wr), 0);
        for (uint32_t i = 0; i < N; i++) {
            unsigned char k[44];
            size_t kl = idx_key(i, k);
            assert_int_equal(ax_cont_put(&wr, k, kl, &i, sizeof i), 0);
        }
        assert_int_equal(ax_cont_write_leave(&wr, 0, NULL), 0);
        idx_check(c, N, 0, 0, "after the puts");
        /* Delete two thirds: tombstones everywhere, then reinsert some
         * (they reuse tombstones) and delete them again. */
        assert_int_equal(ax_cont_write_enter(NULL, c, &wr), 0);
        for (uint32_t i = 0; i < N; i++) {
            unsigned char k[44];
            size_t kl = idx_key(i, k);
            if (i % 3 != 1)
                assert_int_equal(ax_cont_del(&wr, k, kl), 0);
        }
        for (uint32_t i = 0; i < N; i += 3) {
            unsigned char k[44];
            size_t kl = idx_key(i, k);
            assert_int_equal(ax_cont_put(&wr, k, kl, &i, sizeof i), 0);
            assert_int_equal(ax_cont_del(&wr, k, kl), 0);
            assert_int_equal(ax_cont_del(&wr, k, kl), -ENOENT);
        }
        assert_int_equal(ax_cont_write_leave(&wr, 0, NULL), 0);
        idx_check(c, N, 3, 1, "after the deletes");
        ax_cont_stats_t st;
        assert_int_equal(ax_cont_stats(c, &st), 0);
        assert_int_equal(st.entries, (N + 1) / 3);
        /* Empty it: the next round's puts rebuild from a table of tombstones. */
        assert_int_equal(ax_cont_write_enter(NULL, c, &wr), 0);
        for (uint32_t i = 1; i < N; i += 3) {
            unsigned char k[44];
            size_t kl = idx_key(i, k);
            assert_int_equal(ax_cont_del(&wr, k, kl), 0);
        }
        assert_int_equal(ax_cont_write_leave(&wr, 0, NULL), 0);
        idx_check(c, N, 1, 1, "emptied"); /* mod 1, rem 1: nothing present */
        assert_int_equal(ax_cont_stats(c, &st), 0);
        assert_int_equal(st.entries, 0);
    }
    ax_cont_close(c);
    ax_cont_thread_unregister();
    cont_test_stop(eng, reg);
}

/* ---- a behaviour writes and reads; LMDB commits come back as messages ------------------------- */

typedef struct lm_shared {
    ax_cont_registry_t *reg;
    _Atomic uint64_t acks, bad, reads_ok;
    ax_cont_commit_t last;
} lm_shared_t;

static void lm_actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    lm_shared_t *sh = *(lm_shared_t **)st;
    ax_cont_t *c;
    if (m->type == T_GO) {
        memcpy(st, m->payload.data, sizeof sh);
        sh = *(lm_shared_t **)st;
        if (ax_cont_open(sh->reg, "lm", NULL, &c) != 0) {
            atomic_fetch_add(&sh->bad, 1);
            return;
        }
        ax_cont_wr_t wr;
        uint64_t seq = 0;
        if (ax_cont_write_enter(ctx, c, &wr) || ax_cont_put(&wr, "alpha", 5, "one", 3) ||
            ax_cont_put(&wr, "beta", 4, "two", 3) || ax_cont_del(&wr, "gamma", 5) ||
            ax_cont_write_leave(&wr, T_ACK, &seq) || seq == 0)
            atomic_fetch_add(&sh->bad, 1);
        ax_cont_close(c);
        return;
    }
    if (m->type == T_ACK) {
        memcpy(&sh->last, m->payload.data, sizeof sh->last);
        /* Acknowledged: a read section now sees it, without waiting. */
        if (ax_cont_open(sh->reg, "lm", NULL, &c) == 0) {
            ax_cont_rd_t rd;
            const void *v;
            size_t vl;
            if (ax_cont_read_enter(ctx, c, &rd) == 0) {
                if (ax_cont_get(&rd, "alpha", 5, &v, &vl) == 0 && vl == 3 && !memcmp(v, "one", 3) &&
                    ax_cont_get(&rd, "gamma", 5, &v, &vl) == -ENOENT)
                    atomic_fetch_add(&sh->reads_ok, 1);
                ax_cont_read_leave(&rd);
            }
            ax_cont_close(c);
        }
        atomic_fetch_add_explicit(&sh->acks, 1, memory_order_release);
    }
}

static void lmdb_commit_is_acknowledged_to_the_writing_actor(void **state)
{
    (void)state;
    g_test = __func__;
    make_dir("db", g_dir, sizeof g_dir);
    ax_cont_registry_t *reg;
    ax_engine_t *eng = cont_test_engine(2, &reg);
    assert_int_equal(ax_cont_thread_register(), 0);
    static lm_shared_t sh;
    memset(&sh, 0, sizeof sh);
    sh.reg = reg;
    ax_cont_t *c;
    ax_cont_config_t lc = AX_CONT_CONFIG_INIT;
    lc.kind = AX_CONT_LMDB;
    lc.path = g_dir;
    lc.map_bytes = 16u << 20;
    assert_int_equal(ax_cont_open(reg, "lm", &lc, &c), 0); /* from outside: file I/O here */
    /* An outside write first: no message, ax_cont_sync waits for it. */
    ax_cont_wr_t wr;
    uint64_t seq;
    assert_int_equal(ax_cont_write_enter(NULL, c, &wr), 0);
    assert_int_equal(ax_cont_put(&wr, "gamma", 5, "three", 5), 0);
    assert_int_equal(ax_cont_write_leave(&wr, 0, &seq), 0);
    assert_int_equal(ax_cont_sync(c, seq, 30ll * 1000000000ll), 0);
    ax_ref_t a;
    assert_int_equal(ax_engine_spawn(eng, lm_actor, sizeof(void *), NULL, &a), 0);
    lm_shared_t *p = &sh;
    assert_int_equal(ax_engine_send(eng, a, T_GO, &p, sizeof p), 0);
    assert_true(wait_at_least(&sh.acks, 1));
    assert_int_equal(atomic_load(&sh.bad), 0);
    assert_int_equal(sh.last.status, 0);
    assert_int_equal(sh.last.ops, 3);
    assert_int_equal(sh.last.seq, seq + 1);
    assert_int_equal(atomic_load(&sh.reads_ok), 1);
    ax_cont_stats_t cs;
    ax_cont_stats(c, &cs);
    assert_int_equal(cs.entries, 2);
    assert_true(cs.commits >= 2);
    assert_int_equal(cs.acks_lost, 0);
    /* An outside reader sees the same. */
    ax_cont_rd_t rd;
    const void *v;
    size_t vl;
    assert_int_equal(ax_cont_read_enter(NULL, c, &rd), 0);
    assert_int_equal(ax_cont_get(&rd, "beta", 4, &v, &vl), 0);
    assert_memory_equal(v, "two", 3);
    ax_cont_read_leave(&rd);
    ax_cont_close(c);
    /* Reopen after the last close: the writer closed the env first. */
    assert_int_equal(ax_cont_open(reg, "lm", &lc, &c), 0);
    assert_int_equal(ax_cont_read_enter(NULL, c, &rd), 0);
    assert_int_equal(ax_cont_get(&rd, "alpha", 5, &v, &vl), 0);
    ax_cont_read_leave(&rd);
    ax_cont_close(c);
    ax_cont_thread_unregister();
    cont_test_stop(eng, reg);
    rm_dir(g_dir);
}

/* ---- the crash test --------------------------------------------------------------------------- */

#define CR_BATCH 16u
#define CR_INFLIGHT 4u
#define CR_VLEN 200u

static void cr_value(uint32_t k, unsigned char *v)
{
    uint64_t x = mix(k);
    for (uint32_t i = 0; i < CR_VLEN; i++) {
        if (i % 8 == 0)
            x = mix(x);
        v[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
}

typedef struct cr_state {
    ax_cont_t *c;
    int fd;
    uint32_t next, acked;
} cr_state_t;

static void cr_write_batch(ax_ctx_t *ctx, cr_state_t *s)
{
    ax_cont_wr_t wr;
    unsigned char v[CR_VLEN];
    char key[16];
    if (ax_cont_write_enter(ctx, s->c, &wr))
        _exit(10);
    for (uint32_t i = 0; i < CR_BATCH; i++, s->next++) {
        snprintf(key, sizeof key, "k%08u", s->next);
        cr_value(s->next, v);
        if (ax_cont_put(&wr, key, 9, v, sizeof v))
            _exit(11);
    }
    if (ax_cont_write_leave(&wr, T_ACK, NULL))
        _exit(12);
}

static void cr_actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    cr_state_t *s = st;
    if (m->type == T_GO) {
        memcpy(s, m->payload.data, sizeof *s);
        for (uint32_t i = 0; i < CR_INFLIGHT; i++)
            cr_write_batch(ctx, s);
        return;
    }
    ax_cont_commit_t ack;
    memcpy(&ack, m->payload.data, sizeof ack);
    if (ack.status != 0)
        _exit(13);
    /* Acks come in commit order: keys below ack.seq * CR_BATCH are durable. */
    uint32_t upto = (uint32_t)ack.seq * CR_BATCH;
    if (write(s->fd, &upto, sizeof upto) != (ssize_t)sizeof upto)
        _exit(14);
    cr_write_batch(ctx, s);
}

static void crash_child(const char *dir, int fd)
{
    ax_cont_registry_t *reg;
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_config_init(&cfg);
    cfg.workers = 2;
    cfg.oversubscribe = true;
    if (ax_engine_create(&cfg, &eng) || ax_cont_registry_create(eng, &reg) || ax_engine_start(eng))
        _exit(20);
    ax_cont_t *c;
    ax_cont_config_t lc = AX_CONT_CONFIG_INIT;
    lc.kind = AX_CONT_LMDB;
    lc.path = dir;
    lc.map_bytes = 256u << 20;
    if (ax_cont_thread_register() || ax_cont_open(reg, "crash", &lc, &c))
        _exit(21);
    cr_state_t s = {.c = c, .fd = fd};
    ax_ref_t a;
    if (ax_engine_spawn(eng, cr_actor, sizeof s, NULL, &a) || ax_engine_send(eng, a, T_GO, &s, sizeof s))
        _exit(22);
    for (;;)
        pause(); /* the parent kills us */
}

static void lmdb_keeps_every_acknowledged_write_across_kill_9(void **state)
{
    (void)state;
    g_test = __func__;
    make_dir("crash", g_dir, sizeof g_dir);
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        crash_child(g_dir, p[1]);
    }
    close(p[1]);
    /* Let it commit a while, then kill it in the middle of the stream. */
    uint32_t upto = 0, v, nacks = 0;
    uint64_t t0 = now_ns();
    uint32_t want = 20 + (uint32_t)(mix(t0) % 40);
    while (nacks < want && read(p[0], &v, sizeof v) == (ssize_t)sizeof v) {
        upto = v > upto ? v : upto;
        nacks++;
        if (now_ns() - t0 > 60ull * 1000000000ull)
            break;
    }
    kill(pid, SIGKILL);
    /* Acks the child wrote before it died count too. */
    while (read(p[0], &v, sizeof v) == (ssize_t)sizeof v)
        upto = v > upto ? v : upto;
    close(p[0]);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL)
        fail_msg("the child exited on its own (status 0x%x) instead of being killed: it failed "
                 "to set up or to write (exit codes 10..22 in test_container.c)", ws);
    assert_true(nacks >= 1);
    /* Reopen with LMDB itself and check every acknowledged key. */
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 256u << 20), 0);
    assert_int_equal(mdb_env_open(env, g_dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
    assert_int_equal(mdb_dbi_open(t, NULL, 0, &dbi), 0);
    unsigned char want_v[CR_VLEN];
    char key[16];
    for (uint32_t k = 0; k < upto; k++) {
        snprintf(key, sizeof key, "k%08u", k);
        MDB_val mk = {9, key}, mv;
        int rc = mdb_get(t, dbi, &mk, &mv);
        if (rc)
            fail_msg("acknowledged key %s (of %u) is missing after kill -9: %s", key, upto, mdb_strerror(rc));
        cr_value(k, want_v);
        if (mv.mv_size != CR_VLEN || memcmp(mv.mv_data, want_v, CR_VLEN))
            fail_msg("acknowledged key %s has a damaged value after kill -9", key);
    }
    MDB_stat ms;
    mdb_stat(t, dbi, &ms);
    print_message("crash test: %u acknowledged keys intact (%zu keys in the file)\n", upto,
                  (size_t)ms.ms_entries);
    assert_true(ms.ms_entries >= upto);
    assert_int_equal(ms.ms_entries % CR_BATCH, 0); /* whole batches only: commits are atomic */
    mdb_txn_abort(t);
    mdb_env_close(env);
    rm_dir(g_dir);
}

/* ---- open/close churn from every worker -------------------------------------------------------- */

#define CH_ROUNDS 3000u

typedef struct ch_shared {
    ax_cont_registry_t *reg;
    _Atomic uint64_t done, bad;
} ch_shared_t;

typedef struct ch_state {
    ch_shared_t *sh;
    uint32_t who, round;
} ch_state_t;

static void ch_actor(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    ch_state_t *s = st;
    if (m->type == T_GO && !s->sh) {
        memcpy(&s->sh, m->payload.data, sizeof s->sh);
        s->who = (uint32_t)m->payload.u64[1];
    }
    char name[16];
    snprintf(name, sizeof name, "churn%u", (s->round + s->who) % 3);
    ax_cont_t *c;
    ax_cont_config_t cc = AX_CONT_CONFIG_INIT;
    if (ax_cont_open(s->sh->reg, name, &cc, &c) != 0) {
        atomic_fetch_add(&s->sh->bad, 1);
    } else {
        ax_cont_wr_t wr;
        ax_cont_rd_t rd;
        const void *v;
        size_t vl;
        uint64_t val = ((uint64_t)s->who << 32) | s->round;
        ax_cont_write_enter(ctx, c, &wr);
        ax_cont_put(&wr, &s->who, sizeof s->who, &val, sizeof val);
        ax_cont_write_leave(&wr, 0, NULL);
        ax_cont_read_enter(ctx, c, &rd);
        /* Our own key: nobody else writes it while we hold the container. */
        if (ax_cont_get(&rd, &s->who, sizeof s->who, &v, &vl) != 0 || vl != 8 || memcmp(v, &val, 8))
            atomic_fetch_add(&s->sh->bad, 1);
        ax_cont_read_leave(&rd);
        ax_cont_close(c);
    }
    if (++s->round < CH_ROUNDS)
        ax_send_u64(ctx, ax_self(ctx), T_GO, 0);
    else
        atomic_fetch_add_explicit(&s->sh->done, 1, memory_order_release);
}

static void open_close_churn_from_every_worker_frees_every_container(void **state)
{
    (void)state;
    g_test = __func__;
    ax_cont_registry_t *reg;
    ax_engine_t *eng = cont_test_engine(2, &reg);
    static ch_shared_t sh;
    memset(&sh, 0, sizeof sh);
    sh.reg = reg;
    enum { NACT = 6 };
    for (uint32_t i = 0; i < NACT; i++) {
        ax_ref_t a;
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = i % 2};
        assert_int_equal(ax_engine_spawn(eng, ch_actor, sizeof(ch_state_t), &o, &a), 0);
        uint64_t go[2] = {(uint64_t)(uintptr_t)&sh, i};
        assert_int_equal(ax_engine_send(eng, a, T_GO, go, sizeof go), 0);
    }
    assert_true(wait_at_least(&sh.done, NACT));
    assert_int_equal(atomic_load(&sh.bad), 0);
    assert_int_equal(ax_cont_thread_register(), 0);
    ax_cont_t *x;
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "churn%d", i);
        assert_int_equal(ax_cont_open(reg, name, NULL, &x), -ENOENT); /* all closed and freed */
    }
    /* LMDB churn from this thread: each last close ends the env before the
     * next open of the name may open it again. */
    make_dir("churn", g_dir, sizeof g_dir);
    ax_cont_config_t lc = AX_CONT_CONFIG_INIT;
    lc.kind = AX_CONT_LMDB;
    lc.path = g_dir;
    lc.map_bytes = 8u << 20;
    for (uint32_t i = 0; i < 20; i++) {
        ax_cont_wr_t wr;
        uint64_t seq;
        assert_int_equal(ax_cont_open(reg, "lchurn", &lc, &x), 0);
        assert_int_equal(ax_cont_write_enter(NULL, x, &wr), 0);
        assert_int_equal(ax_cont_put(&wr, "n", 1, &i, sizeof i), 0);
        assert_int_equal(ax_cont_write_leave(&wr, 0, &seq), 0);
        if (i % 2)
            assert_int_equal(ax_cont_sync(x, seq, 30ll * 1000000000ll), 0);
        ax_cont_close(x); /* the writer still commits what was queued */
    }
    assert_int_equal(ax_cont_open(reg, "lchurn", &lc, &x), 0);
    ax_cont_rd_t rd;
    const void *v;
    size_t vl;
    assert_int_equal(ax_cont_read_enter(NULL, x, &rd), 0);
    assert_int_equal(ax_cont_get(&rd, "n", 1, &v, &vl), 0);
    uint32_t last;
    memcpy(&last, v, sizeof last);
    assert_int_equal(last, 19);
    ax_cont_read_leave(&rd);
    ax_cont_close(x);
    ax_cont_thread_unregister();
    cont_test_stop(eng, reg);
    rm_dir(g_dir);
}

/* ---- a failing LMDB section (map full) fails alone --------------------------------------- */

static void lmdb_section_that_does_not_fit_fails_alone(void **state)
{
    (void)state;
    g_test = __func__;
    make_dir("full", g_dir, sizeof g_dir);
    ax_cont_registry_t *reg;
    ax_engine_t *eng = cont_test_engine(2, &reg);
    assert_int_equal(ax_cont_thread_register(), 0);
    ax_cont_t *c;
    ax_cont_config_t lc = AX_CONT_CONFIG_INIT;
    lc.kind = AX_CONT_LMDB;
    lc.path = g_dir;
    lc.map_bytes = 1u << 20; /* 1 MiB: a few 200 KiB values fit, not many */
    assert_int_equal(ax_cont_open(reg, "full", &lc, &c), 0);
    static unsigned char big[200 * 1024];
    memset(big, 0xAB, sizeof big);
    int ok = 0, failed = 0;
    for (uint32_t i = 0; i < 12; i++) {
        ax_cont_wr_t wr;
        uint64_t seq;
        assert_int_equal(ax_cont_write_enter(NULL, c, &wr), 0);
        assert_int_equal(ax_cont_put(&wr, &i, sizeof i, big, sizeof big), 0);
        assert_int_equal(ax_cont_write_leave(&wr, 0, &seq), 0);
        int rc = ax_cont_sync(c, seq, 30ll * 1000000000ll);
        if (rc == 0) {
            ok++;
        } else {
            assert_int_equal(rc, -EIO); /* MDB_MAP_FULL, an LMDB code */
            failed++;
        }
    }
    assert_true(ok >= 1);
    assert_true(failed >= 1);
    /* A small section still commits: the failed ones left nothing behind. */
    ax_cont_wr_t wr;
    uint64_t seq;
    assert_int_equal(ax_cont_write_enter(NULL, c, &wr), 0);
    assert_int_equal(ax_cont_put(&wr, "small", 5, "v", 1), 0);
    assert_int_equal(ax_cont_write_leave(&wr, 0, &seq), 0);
    assert_int_equal(ax_cont_sync(c, seq, 30ll * 1000000000ll), 0);
    ax_cont_stats_t cs;
    ax_cont_stats(c, &cs);
    assert_int_equal(cs.entries, (uint64_t)ok + 1);
    ax_cont_close(c);
    ax_cont_thread_unregister();
    cont_test_stop(eng, reg);
    rm_dir(g_dir);
}

int main(void)
{
    signal(SIGALRM, watchdog);
    const struct CMUnitTest tests[] = {
        /* First: it forks, and a child of a process without threads inherits
         * no lock some other thread held (liburcu's, the engine's). */
        cmocka_unit_test_setup_teardown(lmdb_keeps_every_acknowledged_write_across_kill_9, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(names_open_the_same_container_and_refuse_bad_input, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(memory_index_grows_shrinks_and_keeps_every_key, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(lmdb_commit_is_acknowledged_to_the_writing_actor, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(open_close_churn_from_every_worker_frees_every_container, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(lmdb_section_that_does_not_fit_fails_alone, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("lib/container", tests, NULL, NULL);
}
