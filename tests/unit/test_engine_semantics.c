/* tests/unit/test_engine_semantics.c - what users may rely on from the actor
 * engine, checked through the public API only (include/axon/axon.h).
 *
 * Covered: per-pair FIFO (one worker, two pinned workers, overflowing rings,
 * eight oversubscribed workers); a behaviour never runs concurrently with
 * itself; become; stop_self and dead letters (counted and hooked); stale
 * references after slot reuse; spawn on self / on a worker / on a NUMA node;
 * init and fini exactly once; blobs intact and freed exactly once; external
 * sends from four foreign threads; send errors; stop_when_idle; two engines
 * in one process.  "Pinned" cases run unpinned when the process has fewer
 * cores than workers (taskset -c 0): see tests/test_cpus.h.
 *
 * Threading: behaviours run on worker threads and must never call cmocka's
 * assert_* (it longjmps on the wrong thread).  They record what they see in
 * a struct the test owns (atomics, or plain fields written by one actor and
 * read after ax_engine_wait, whose join orders them); the test thread
 * asserts.  No malloc from behaviours or foreign threads: cmocka's
 * test_malloc (UNIT_TESTING) is not thread-safe, so shared structs are
 * static or on the test's stack.
 *
 * A hang (lost wakeup, stop that never completes) trips a SIGALRM watchdog
 * that names the test and exits non-zero.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "axon/failure.h"
#include "test_cpus.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define ENGINE_TEST_NAME "test_engine_semantics"
#define ENGINE_TEST_HANG "a lost wakeup, a lost message or a stop that never completes"
#include "engine_test.h"

/* A 64-core, 4-node, SMT-2 server described to hwloc; with oversubscribe the
 * engine runs its workers unpinned on this 2-core machine. */
#define SYNTH64 "pack:2 numa:2 l3:2 core:8 pu:2"

enum {
    T_GO = 1, T_CONT, T_SEQ, T_MARK, T_SWITCH, T_STOP, T_PING, T_PONG,
    T_NOP, T_FLUSH, T_OLD, T_NEW, T_WHERE, T_SPAWN, T_FWD, T_HOP,
};

/* ---- helpers ---------------------------------------------------------------- */

/* This machine: pinned workers when the process has the cores, else the
 * same count unpinned (test_cpus.h), so every case runs under taskset -c 0. */
static void cfg_real(ax_config_t *c, uint32_t workers)
{
    ax_config_init(c);
    test_cfg_workers(c, workers);
    c->arena_bytes = 32u << 20;
    c->max_actors = 16384;
}

static void cfg_synth(ax_config_t *c, uint32_t workers)
{
    ax_config_init(c);
    snprintf(c->topology_synthetic, sizeof c->topology_synthetic, "%s", SYNTH64);
    c->oversubscribe = true;
    c->workers = workers;
    c->arena_bytes = 8u << 20;
    c->max_actors = 4096;
}

static ax_engine_t *make_engine(const ax_config_t *c)
{
    ax_engine_t *e = NULL;
    int rc = ax_engine_create(c, &e);
    if (rc != 0)
        fail_msg("%s: ax_engine_create returned %d: %s", g_test, rc, ax_engine_last_error());
    assert_non_null(e);
    return e;
}

static void start(ax_engine_t *e)
{
    int rc = ax_engine_start(e);
    if (rc != 0)
        fail_msg("%s: ax_engine_start returned %d", g_test, rc);
}

/* Stop once quiet and join the workers; stats stay readable until destroy. */
static void finish(ax_engine_t *e)
{
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
}

/* Every actor's state starts with this header, copied from the spawn arg. */
typedef struct hdr {
    void *sh;
    uint64_t id;
} hdr_t;

static _Atomic uint64_t g_bad_init_arg;

static void init_hdr(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    (void)ctx;
    if (arg_len != sizeof(hdr_t) || !arg) {
        atomic_fetch_add(&g_bad_init_arg, 1);
        return;
    }
    memcpy(state, arg, sizeof(hdr_t));
}

static ax_ref_t spawn_ext(ax_engine_t *e, ax_behaviour_fn fn, size_t state_size, uint32_t where,
                          uint32_t worker, void *sh, uint64_t id)
{
    hdr_t h = { sh, id };
    ax_spawn_opts_t o = { .size = sizeof o, .where = where, .worker = worker,
                          .init = init_hdr, .arg = &h, .arg_len = sizeof h };
    ax_ref_t r = AX_REF_NONE;
    int rc = ax_engine_spawn(e, fn, state_size, &o, &r);
    if (rc != 0)
        fail_msg("%s: ax_engine_spawn(where %u, worker %u) returned %d", g_test, where, worker, rc);
    assert_true(r != AX_REF_NONE);
    if (where == AX_ON_WORKER)
        assert_int_equal(ax_ref_worker(r), worker);
    return r;
}

static void ext_send_u64(ax_engine_t *e, ax_ref_t to, uint32_t type, uint64_t v)
{
    int rc = ax_engine_send(e, to, type, &v, sizeof v);
    if (rc != 0)
        fail_msg("%s: ax_engine_send(type %u) returned %d", g_test, type, rc);
}

static uint64_t payload_u64(const ax_msg_t *m)
{
    uint64_t v = 0;
    if (ax_msg_len(m) >= sizeof v)
        memcpy(&v, ax_msg_data(m), sizeof v);
    return v;
}

/* ---- per-pair FIFO and exclusive execution ------------------------------------ */

/* Keys 0..KEY_ACTORS-1 are sending actors; KEY_EXT+t is foreign thread t. */
#define KEY_ACTORS 64
#define KEY_EXT    64
#define NKEYS      (KEY_ACTORS + 8)

typedef struct pair_sh {
    ax_ref_t receiver;        /* senders send here (written before start) */
    uint32_t per_sender;      /* messages each sending actor sends */
    uint32_t chunk;           /* per behaviour turn, then a self-continue */
    uint32_t spin;            /* work inside the receiver, to widen overlap windows */
    _Atomic uint64_t received, order_errors, from_errors, where_errors, overlaps;
    _Atomic uint64_t send_errors, bad_msgs, senders_done;
    _Atomic uint64_t first_bad; /* key << 48 | expected << 24 | got (first order error) */
    uint64_t plain_count;       /* written only by one receiver: TSan sees overlap */
} pair_sh_t;

typedef struct sender_st {
    hdr_t h;
    uint32_t next;
} sender_st_t;

typedef struct recv_st {
    hdr_t h;
    _Atomic int inside; /* per actor: set while its behaviour runs */
    uint64_t count;
    uint32_t expected[NKEYS];
} recv_st_t;

static void pair_sender(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    sender_st_t *s = state;
    pair_sh_t *sh = s->h.sh;
    (void)m;
    for (uint32_t k = 0; k < sh->chunk && s->next < sh->per_sender; k++, s->next++) {
        uint64_t p[3] = { s->h.id, s->next, ax_self(ctx) };
        if (ax_send(ctx, sh->receiver, T_SEQ, p, sizeof p) != 0)
            atomic_fetch_add(&sh->send_errors, 1);
    }
    if (s->next < sh->per_sender) {
        if (ax_send_u64(ctx, ax_self(ctx), T_CONT, 0) != 0)
            atomic_fetch_add(&sh->send_errors, 1);
    } else {
        atomic_fetch_add(&sh->senders_done, 1);
    }
}

static void pair_receiver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    recv_st_t *r = state;
    pair_sh_t *sh = r->h.sh;
    if (atomic_exchange_explicit(&r->inside, 1, memory_order_acq_rel) != 0)
        atomic_fetch_add(&sh->overlaps, 1);
    if (ax_worker_id(ctx) != ax_ref_worker(ax_self(ctx)))
        atomic_fetch_add(&sh->where_errors, 1);
    uint64_t p[3];
    if (m->type != T_SEQ || ax_msg_len(m) != sizeof p) {
        atomic_fetch_add(&sh->bad_msgs, 1);
        goto out;
    }
    memcpy(p, ax_msg_data(m), sizeof p);
    if (p[0] >= NKEYS) {
        atomic_fetch_add(&sh->bad_msgs, 1);
        goto out;
    }
    /* p[2] is the ref the sender put in: its own, or AX_REF_NONE from outside. */
    if (m->from != p[2] || ax_sender(ctx) != p[2])
        atomic_fetch_add(&sh->from_errors, 1);
    if (p[1] != r->expected[p[0]]) {
        uint64_t info = p[0] << 48 | (uint64_t)(r->expected[p[0]] & 0xffffff) << 24 | (p[1] & 0xffffff);
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&sh->first_bad, &zero, info);
        atomic_fetch_add(&sh->order_errors, 1);
    }
    r->expected[p[0]] = (uint32_t)p[1] + 1;
    for (volatile uint32_t i = 0; i < sh->spin; i++) {
    }
    r->count++;
    if (r->h.id == 0) /* one writer only: the single-receiver tests use id 0 */
        sh->plain_count = r->count;
out:
    atomic_store_explicit(&r->inside, 0, memory_order_release);
    /* release: pairs with the acquire in wait_at_least */
    atomic_fetch_add_explicit(&sh->received, 1, memory_order_release);
}

static void assert_pair_clean(pair_sh_t *sh, uint64_t want)
{
    uint64_t fb = atomic_load(&sh->first_bad);
    if (atomic_load(&sh->order_errors))
        fail_msg("%s: %llu messages out of order; first: key %llu expected seq %llu got %llu",
                 g_test, (unsigned long long)atomic_load(&sh->order_errors),
                 (unsigned long long)(fb >> 48), (unsigned long long)((fb >> 24) & 0xffffff),
                 (unsigned long long)(fb & 0xffffff));
    assert_int_equal(atomic_load(&sh->send_errors), 0);
    assert_int_equal(atomic_load(&sh->bad_msgs), 0);
    assert_int_equal(atomic_load(&sh->from_errors), 0);
    assert_int_equal(atomic_load(&sh->where_errors), 0);
    assert_int_equal(atomic_load(&sh->overlaps), 0);
    assert_int_equal(atomic_load(&sh->received), want);
    assert_int_equal(sh->plain_count, want);
}

/* senders on workers chosen by sender_worker(i), receiver on recv_worker. */
static void run_fifo(const ax_config_t *c, uint32_t nsenders, uint32_t per_sender, bool local,
                     ax_worker_stats_t *stats_out)
{
    static pair_sh_t sh;
    memset(&sh, 0, sizeof sh);
    sh.per_sender = per_sender;
    sh.chunk = 37; /* odd, so continues and bursts interleave differently per pair */
    ax_engine_t *e = make_engine(c);
    uint32_t n = ax_engine_workers(e);
    uint32_t rw = local ? 0 : n - 1;
    sh.receiver = spawn_ext(e, pair_receiver, sizeof(recv_st_t), AX_ON_WORKER, rw, &sh, 0);
    ax_ref_t senders[KEY_ACTORS];
    for (uint32_t i = 0; i < nsenders; i++) {
        uint32_t w = local ? 0 : (n > 1 ? i % (n - 1) : 0);
        senders[i] = spawn_ext(e, pair_sender, sizeof(sender_st_t), AX_ON_WORKER, w, &sh, i);
    }
    start(e);
    for (uint32_t i = 0; i < nsenders; i++)
        ext_send_u64(e, senders[i], T_GO, 0);
    WAIT_FOR(sh.received, (uint64_t)nsenders * per_sender);
    WAIT_FOR(sh.senders_done, nsenders);
    finish(e);
    assert_pair_clean(&sh, (uint64_t)nsenders * per_sender);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.dead_letters, 0);
    assert_int_equal(st.dropped_at_stop, 0);
    if (local)
        assert_int_equal(st.msgs_remote, 0);
    else
        assert_true(st.msgs_remote >= (uint64_t)nsenders * per_sender);
    if (stats_out)
        *stats_out = st;
    ax_engine_destroy(e);
}

static void fifo_holds_per_pair_between_actors_on_one_worker(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t c;
    cfg_real(&c, 2);
    run_fifo(&c, 8, 20000, true, NULL);
}

static void fifo_holds_per_pair_across_two_pinned_workers(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t c;
    cfg_real(&c, 2);
    run_fifo(&c, 8, 20000, false, NULL);
}

static void fifo_holds_per_pair_when_eight_slot_rings_overflow(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t c;
    cfg_real(&c, 2);
    c.ring_slots = 8;
    ax_worker_stats_t st;
    run_fifo(&c, 8, 20000, false, &st);
    /* the test only means something if the overflow path ran */
    if (st.ring_full == 0 || st.overflow_hwm == 0)
        fail_msg("%s: 8-slot rings never overflowed (ring_full %llu, overflow_hwm %llu): "
                 "the overflow queue was not exercised",
                 g_test, (unsigned long long)st.ring_full, (unsigned long long)st.overflow_hwm);
    /* Every message, through the ring or its overflow, is counted once as
     * sent remote (the overflow path counts its own, the ring's are added
     * at the flush) and once as received from a ring. */
    assert_int_equal(st.msgs_sent_remote, st.msgs_remote);
}

static void fifo_holds_per_pair_across_eight_oversubscribed_workers(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t c;
    cfg_synth(&c, 8);
    c.ring_slots = 8;
    run_fifo(&c, 32, 3000, false, NULL);
}

/* Foreign threads sending through ax_engine_send. */
typedef struct ext_thread_arg {
    ax_engine_t *eng;
    const ax_ref_t *targets;
    uint32_t ntargets;
    uint32_t tid;
    uint32_t n; /* messages per target */
    pthread_barrier_t *barrier;
    _Atomic uint64_t *errors;
    _Atomic int *first_rc;
} ext_thread_arg_t;

static void *ext_thread(void *p)
{
    ext_thread_arg_t *a = p;
    pthread_barrier_wait(a->barrier);
    for (uint32_t i = 0; i < a->n; i++) {
        for (uint32_t t = 0; t < a->ntargets; t++) {
            uint64_t m[3] = { KEY_EXT + a->tid, i, AX_REF_NONE };
            int rc = ax_engine_send(a->eng, a->targets[t], T_SEQ, m, sizeof m);
            if (rc != 0) {
                int zero = 0;
                atomic_compare_exchange_strong(a->first_rc, &zero, rc);
                atomic_fetch_add(a->errors, 1);
            }
        }
    }
    return NULL;
}

static void external_sends_from_four_threads_all_arrive_in_per_thread_order(void **state)
{
    (void)state;
    g_test = __func__;
    static pair_sh_t sh;
    memset(&sh, 0, sizeof sh);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t targets[3];
    for (uint32_t i = 0; i < 3; i++)
        targets[i] = spawn_ext(e, pair_receiver, sizeof(recv_st_t), AX_ON_WORKER, i % 2, &sh, 100 + i);
    start(e);
    enum { NT = 4, PER = 5000 };
    pthread_t th[NT];
    ext_thread_arg_t args[NT];
    pthread_barrier_t bar;
    _Atomic uint64_t errors = 0;
    _Atomic int first_rc = 0;
    pthread_barrier_init(&bar, NULL, NT);
    for (uint32_t t = 0; t < NT; t++) {
        args[t] = (ext_thread_arg_t){ e, targets, 3, t, PER, &bar, &errors, &first_rc };
        assert_int_equal(pthread_create(&th[t], NULL, ext_thread, &args[t]), 0);
    }
    for (uint32_t t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&bar);
    if (atomic_load(&errors))
        fail_msg("%s: %llu ax_engine_send calls failed, first with %d", g_test,
                 (unsigned long long)atomic_load(&errors), atomic_load(&first_rc));
    WAIT_FOR(sh.received, (uint64_t)NT * PER * 3);
    finish(e);
    /* plain_count is per receiver here, so check the rest only */
    assert_int_equal(atomic_load(&sh.order_errors), 0);
    assert_int_equal(atomic_load(&sh.from_errors), 0);
    assert_int_equal(atomic_load(&sh.bad_msgs), 0);
    assert_int_equal(atomic_load(&sh.overlaps), 0);
    assert_int_equal(atomic_load(&sh.received), (uint64_t)NT * PER * 3);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.msgs_external, (uint64_t)NT * PER * 3);
    ax_engine_destroy(e);
}

/* One receiver, 64 sending actors on 8 oversubscribed workers and 4 foreign
 * threads: the receiver's `inside` flag must never be found set, and its
 * plain counter (a data race under TSan if it ever ran twice at once) must
 * equal the number of messages. */
static void behaviour_never_runs_concurrently_with_itself(void **state)
{
    (void)state;
    g_test = __func__;
    static pair_sh_t sh;
    memset(&sh, 0, sizeof sh);
    sh.per_sender = 300;
    sh.chunk = 16;
    sh.spin = 200;
    ax_config_t c;
    cfg_synth(&c, 8);
    ax_engine_t *e = make_engine(&c);
    sh.receiver = spawn_ext(e, pair_receiver, sizeof(recv_st_t), AX_ON_WORKER, 3, &sh, 0);
    ax_ref_t senders[KEY_ACTORS];
    for (uint32_t i = 0; i < KEY_ACTORS; i++)
        senders[i] = spawn_ext(e, pair_sender, sizeof(sender_st_t), AX_ON_WORKER, i % 8, &sh, i);
    start(e);
    for (uint32_t i = 0; i < KEY_ACTORS; i++)
        ext_send_u64(e, senders[i], T_GO, 0);
    enum { NT = 4, PER = 500 };
    pthread_t th[NT];
    ext_thread_arg_t args[NT];
    pthread_barrier_t bar;
    _Atomic uint64_t errors = 0;
    _Atomic int first_rc = 0;
    pthread_barrier_init(&bar, NULL, NT);
    for (uint32_t t = 0; t < NT; t++) {
        args[t] = (ext_thread_arg_t){ e, &sh.receiver, 1, t, PER, &bar, &errors, &first_rc };
        assert_int_equal(pthread_create(&th[t], NULL, ext_thread, &args[t]), 0);
    }
    for (uint32_t t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&bar);
    assert_int_equal(atomic_load(&errors), 0);
    uint64_t want = (uint64_t)KEY_ACTORS * sh.per_sender + NT * PER;
    WAIT_FOR(sh.received, want);
    finish(e);
    assert_pair_clean(&sh, want);
    ax_engine_destroy(e);
}

/* ---- become ------------------------------------------------------------------ */

typedef struct become_sh {
    _Atomic uint32_t n;
    char log[32];
    uint64_t last_count; /* written by the actor, read after join */
    _Atomic uint64_t handled;
} become_sh_t;

typedef struct become_st {
    hdr_t h;
    uint64_t count;
} become_st_t;

static void become_b(ax_ctx_t *ctx, void *state, const ax_msg_t *m);

static void become_log(become_st_t *s, char ch)
{
    become_sh_t *sh = s->h.sh;
    uint32_t i = atomic_fetch_add(&sh->n, 1);
    if (i < sizeof sh->log - 1)
        sh->log[i] = ch;
    sh->last_count = ++s->count;
    atomic_fetch_add_explicit(&sh->handled, 1, memory_order_release);
}

static void become_a(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    if (m->type == T_SWITCH) {
        ax_become(ctx, become_b);
        become_log(state, 'A');
    } else {
        become_log(state, 'a');
    }
}

static void become_b(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    if (m->type == T_SWITCH) {
        ax_become(ctx, become_a);
        become_log(state, 'B');
    } else {
        become_log(state, 'b');
    }
}

static void become_swaps_the_behaviour_for_the_next_messages(void **state)
{
    (void)state;
    g_test = __func__;
    static become_sh_t sh;
    memset(&sh, 0, sizeof sh);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t a = spawn_ext(e, become_a, sizeof(become_st_t), AX_ON_WORKER, 1, &sh, 0);
    start(e);
    const uint32_t seq[] = { T_MARK, T_SWITCH, T_MARK, T_MARK, T_SWITCH, T_MARK, T_SWITCH, T_MARK };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++)
        ext_send_u64(e, a, seq[i], i);
    WAIT_FOR(sh.handled, 8);
    finish(e);
    /* the switching message itself is handled by the old behaviour; state survives */
    assert_string_equal(sh.log, "aAbbBaAb");
    assert_int_equal(sh.last_count, 8);
    ax_engine_destroy(e);
}

/* ---- stop_self and dead letters ------------------------------------------------ */

typedef struct dl_sh {
    ax_ref_t victim, y, z;
    _Atomic uint64_t victim_handled, fini_calls, fini_self_bad;
    _Atomic uint64_t hook_calls, hook_bad, hook_ext, hook_self, hook_y, hook_z;
    _Atomic int self_send_rc, y_rc, z_rc;
} dl_sh_t;

static void dl_hook(void *user, const ax_msg_t *m)
{
    dl_sh_t *sh = user;
    if (m->to != sh->victim || m->type != T_MARK || payload_u64(m) != 0xDEADu)
        atomic_fetch_add(&sh->hook_bad, 1);
    else if (m->from == AX_REF_NONE)
        atomic_fetch_add(&sh->hook_ext, 1);
    else if (m->from == sh->victim)
        atomic_fetch_add(&sh->hook_self, 1);
    else if (m->from == sh->y)
        atomic_fetch_add(&sh->hook_y, 1);
    else if (m->from == sh->z)
        atomic_fetch_add(&sh->hook_z, 1);
    else
        atomic_fetch_add(&sh->hook_bad, 1);
    atomic_fetch_add_explicit(&sh->hook_calls, 1, memory_order_release);
}

static void dl_victim(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *h = state;
    dl_sh_t *sh = h->sh;
    atomic_fetch_add(&sh->victim_handled, 1);
    if (m->type == T_STOP) {
        ax_stop_self(ctx);
        /* sent after stop_self: handled later, so it must be a dead letter */
        atomic_store(&sh->self_send_rc, ax_send_u64(ctx, ax_self(ctx), T_MARK, 0xDEADu));
    }
}

static void dl_victim_fini(ax_ctx_t *ctx, void *state)
{
    hdr_t *h = state;
    dl_sh_t *sh = h->sh;
    if (ax_self(ctx) != sh->victim)
        atomic_fetch_add(&sh->fini_self_bad, 1);
    atomic_fetch_add_explicit(&sh->fini_calls, 1, memory_order_release);
}

static void dl_poker(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *h = state;
    dl_sh_t *sh = h->sh;
    (void)m;
    int rc = 0;
    for (int i = 0; i < 2; i++)
        rc |= ax_send_u64(ctx, sh->victim, T_MARK, 0xDEADu);
    atomic_store(h->id == 1 ? &sh->y_rc : &sh->z_rc, rc);
}

static void stopped_actor_turns_later_messages_into_counted_dead_letters(void **state)
{
    (void)state;
    g_test = __func__;
    static dl_sh_t sh;
    memset(&sh, 0, sizeof sh);
    atomic_store(&sh.self_send_rc, 1);
    atomic_store(&sh.y_rc, 1);
    atomic_store(&sh.z_rc, 1);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_engine_set_dead_letter_hook(e, dl_hook, &sh);
    hdr_t h = { &sh, 0 };
    ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_WORKER, .worker = 1, .init = init_hdr,
                          .fini = dl_victim_fini, .arg = &h, .arg_len = sizeof h };
    assert_int_equal(ax_engine_spawn(e, dl_victim, sizeof(hdr_t), &o, &sh.victim), 0);
    sh.y = spawn_ext(e, dl_poker, sizeof(hdr_t), AX_ON_WORKER, 0, &sh, 1); /* remote to victim */
    sh.z = spawn_ext(e, dl_poker, sizeof(hdr_t), AX_ON_WORKER, 1, &sh, 2); /* same worker */
    start(e);
    ext_send_u64(e, sh.victim, T_MARK, 1);
    ext_send_u64(e, sh.victim, T_STOP, 2);
    for (int i = 0; i < 3; i++)
        ext_send_u64(e, sh.victim, T_MARK, 0xDEADu); /* after STOP in the same inbox: dead */
    WAIT_FOR(sh.fini_calls, 1);
    WAIT_FOR(sh.hook_calls, 4);
    ext_send_u64(e, sh.y, T_GO, 0);
    ext_send_u64(e, sh.z, T_GO, 0);
    WAIT_FOR(sh.hook_calls, 8);
    sleep_us(20000); /* room for a wrong extra delivery to show */
    finish(e);
    assert_int_equal(atomic_load(&sh.victim_handled), 2);
    assert_int_equal(atomic_load(&sh.fini_calls), 1);
    assert_int_equal(atomic_load(&sh.fini_self_bad), 0);
    assert_int_equal(atomic_load(&sh.self_send_rc), 0); /* stale is not an error at send */
    assert_int_equal(atomic_load(&sh.y_rc), 0);
    assert_int_equal(atomic_load(&sh.z_rc), 0);
    assert_int_equal(atomic_load(&sh.hook_bad), 0);
    assert_int_equal(atomic_load(&sh.hook_ext), 3);
    assert_int_equal(atomic_load(&sh.hook_self), 1);
    assert_int_equal(atomic_load(&sh.hook_y), 2);
    assert_int_equal(atomic_load(&sh.hook_z), 2);
    assert_int_equal(atomic_load(&sh.hook_calls), 8);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.dead_letters, 8);
    /* nothing silent: 12 sends returned 0 (5 external to the victim, 2 GOs,
     * 1 self-send, 2 + 2 from y and z); 4 were handled, 8 are dead letters */
    assert_int_equal(st.msgs_local + st.msgs_remote + st.msgs_external, 4);
    assert_int_equal(st.msgs_local + st.msgs_remote + st.msgs_external + st.dropped_at_stop +
                         st.dead_letters, 12);
    ax_engine_destroy(e);
}

/* Slot reuse: fill a small actor table, stop every actor, spawn as many
 * again (each must reuse a slot), then send to the old references. */
#define STALE_MAX 64
typedef struct stale_sh {
    _Atomic uint64_t fini_calls, old_handled, new_got_old, new_got_new, state_not_zero;
} stale_sh_t;

typedef struct stale_st {
    hdr_t h;
    unsigned char junk[112];
} stale_st_t;

static void stale_init(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    stale_st_t *s = state;
    static const unsigned char zero[sizeof(stale_st_t)];
    hdr_t h;
    memcpy(&h, arg, sizeof h);
    if (memcmp(s, zero, sizeof zero) != 0)
        atomic_fetch_add(&((stale_sh_t *)h.sh)->state_not_zero, 1);
    init_hdr(ctx, state, arg, arg_len);
}

static void stale_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    stale_st_t *s = state;
    atomic_fetch_add_explicit(&((stale_sh_t *)s->h.sh)->fini_calls, 1, memory_order_release);
}

static void stale_old(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    stale_st_t *s = state;
    stale_sh_t *sh = s->h.sh;
    memset(s->junk, 0xA5, sizeof s->junk); /* the next tenant must find zeroes */
    if (m->type == T_STOP)
        ax_stop_self(ctx);
    else
        atomic_fetch_add(&sh->old_handled, 1);
}

static void stale_new(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    stale_st_t *s = state;
    stale_sh_t *sh = s->h.sh;
    atomic_fetch_add_explicit(m->type == T_NEW ? &sh->new_got_new : &sh->new_got_old, 1,
                              memory_order_release);
}

static int spawn_stale(ax_engine_t *e, ax_behaviour_fn fn, stale_sh_t *sh, uint64_t id, ax_ref_t *out)
{
    hdr_t h = { sh, id };
    ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_WORKER, .worker = 0, .init = stale_init,
                          .fini = stale_fini, .arg = &h, .arg_len = sizeof h };
    return ax_engine_spawn(e, fn, sizeof(stale_st_t), &o, out);
}

/* Respawns n actors from a spawner actor on worker 0 (ax_spawn, AX_ON_SELF). */
typedef struct respawn_sh {
    stale_sh_t *sh;
    uint32_t n;
    uint32_t where; /* AX_ON_SELF, or AX_ON_WORKER (worker 0) from another worker */
    ax_ref_t fresh[STALE_MAX + 8];
    _Atomic int rc;
    _Atomic uint64_t done;
} respawn_sh_t;

static void stale_respawner(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *h = state;
    respawn_sh_t *rs = h->sh;
    (void)m;
    for (uint32_t i = 0; i < rs->n; i++) {
        hdr_t a = { rs->sh, 1000 + i };
        ax_spawn_opts_t o = { .size = sizeof o, .where = rs->where, .worker = 0, .init = stale_init,
                              .fini = stale_fini, .arg = &a, .arg_len = sizeof a };
        int rc = ax_spawn(ctx, stale_new, sizeof(stale_st_t), &o, &rs->fresh[i]);
        if (rc != 0) {
            atomic_store(&rs->rc, rc);
            break;
        }
    }
    atomic_fetch_add_explicit(&rs->done, 1, memory_order_release);
}

/* mode 0: respawn from an actor on the same worker (ax_spawn, AX_ON_SELF);
 * 1: with ax_engine_spawn from the test thread; 2: from an actor on worker 1
 * (ax_spawn, AX_ON_WORKER 0).  The old actors all live on worker 0. */
static void run_stale(int mode)
{
    bool external = mode == 1;
    static stale_sh_t sh;
    static respawn_sh_t rs;
    memset(&sh, 0, sizeof sh);
    memset(&rs, 0, sizeof rs);
    rs.sh = &sh;
    ax_config_t c;
    cfg_real(&c, mode == 2 ? 2 : 1);
    c.max_actors = STALE_MAX;
    ax_engine_t *e = make_engine(&c);
    ax_ref_t respawner = AX_REF_NONE;
    rs.where = mode == 2 ? AX_ON_WORKER : AX_ON_SELF;
    if (!external)
        respawner = spawn_ext(e, stale_respawner, sizeof(hdr_t), AX_ON_WORKER, mode == 2 ? 1 : 0,
                              &rs, 0);
    ax_ref_t old[STALE_MAX + 8];
    ax_ref_t *fresh = rs.fresh;
    uint32_t n = 0;
    int rc = 0;
    while (n < STALE_MAX + 8 && (rc = spawn_stale(e, stale_old, &sh, n, &old[n])) == 0)
        n++;
    if (rc != -ENOMEM)
        fail_msg("%s: with max_actors = %u, spawn #%u returned %d, expected -ENOMEM once the "
                 "table is full", g_test, STALE_MAX, n + 1, rc);
    assert_true(n >= 1 && n <= STALE_MAX);
    if (mode == 2)
        assert_int_equal(ax_ref_worker(respawner), 1);
    start(e);
    for (uint32_t i = 0; i < n; i++)
        ext_send_u64(e, old[i], T_STOP, 0);
    WAIT_FOR(sh.fini_calls, n);
    /* The table was full: every new actor takes a slot an old one used.  A
     * slot may be recycled a little after fini; allow that, but not forever. */
    if (external) {
        for (uint32_t i = 0; i < n; i++) {
            uint64_t end = now_ns() + 5000000000ull;
            while ((rc = spawn_stale(e, stale_new, &sh, 1000 + i, &fresh[i])) == -ENOMEM && now_ns() < end)
                sleep_us(500);
            if (rc != 0)
                fail_msg("%s: all %u actors of a full table (max_actors = %u) stopped and ran fini, "
                         "yet ax_engine_spawn #%u onto that worker returned %d for 5 s: slots freed by "
                         "a stop are never reused by external spawns", g_test, n, STALE_MAX, i + 1, rc);
        }
    } else {
        rs.n = n;
        ext_send_u64(e, respawner, T_SPAWN, 0);
        WAIT_FOR(rs.done, 1);
        if (atomic_load(&rs.rc) != 0)
            fail_msg("%s: all %u actors of a full table stopped and ran fini, yet ax_spawn %s "
                     "returned %d", g_test, n, mode == 2 ? "from worker 1 onto worker 0" : "on that worker",
                     atomic_load(&rs.rc));
        for (uint32_t i = 0; i < n; i++)
            assert_int_equal(ax_ref_worker(fresh[i]), 0);
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            if (fresh[i] == old[j])
                fail_msg("%s: new ref %#llx equals a stopped actor's ref: the generation did not "
                         "change on reuse", g_test, (unsigned long long)fresh[i]);
    for (uint32_t i = 0; i < n; i++)
        ext_send_u64(e, old[i], T_OLD, i);
    for (uint32_t i = 0; i < n; i++)
        ext_send_u64(e, fresh[i], T_NEW, i);
    WAIT_FOR(sh.new_got_new, n);
    finish(e);
    assert_int_equal(atomic_load(&sh.new_got_old), 0);
    assert_int_equal(atomic_load(&sh.old_handled), 0);
    assert_int_equal(atomic_load(&sh.state_not_zero), 0);
    assert_int_equal(atomic_load(&sh.new_got_new), n);
    assert_int_equal(atomic_load(&sh.fini_calls), 2 * n);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.dead_letters, n);
    ax_engine_destroy(e);
}

static void stale_reference_after_local_slot_reuse_is_a_dead_letter(void **state)
{
    (void)state;
    g_test = __func__;
    run_stale(0);
}

static void engine_spawn_reuses_slots_freed_by_stopped_actors(void **state)
{
    (void)state;
    g_test = __func__;
    run_stale(1);
}

static void spawn_from_another_worker_reuses_slots_freed_by_stopped_actors(void **state)
{
    (void)state;
    g_test = __func__;
    run_stale(2);
}

/* ---- placement ---------------------------------------------------------------- */

#define WHERE_MAX 256
typedef struct where_sh {
    ax_engine_t *eng;
    uint32_t mode; /* 0 self, 1 worker, 2 node */
    uint32_t nworkers;
    uint32_t nnodes;
    uint32_t nodes[16];
    uint32_t per_node;
    _Atomic uint64_t spawned, msgs, inits, bad;
    _Atomic int rc_bad_worker, rc_bad_where, rc_bad_node, rc_spawn_fail;
    uint32_t parent_worker;
    ax_ref_t ref[WHERE_MAX];
    uint32_t want_node[WHERE_MAX];
    _Atomic uint32_t init_worker[WHERE_MAX], msg_worker[WHERE_MAX];
    _Atomic uint64_t self_ok[WHERE_MAX];
} where_sh_t;

static void where_child_init(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    init_hdr(ctx, state, arg, arg_len);
    hdr_t *h = state;
    where_sh_t *sh = h->sh;
    atomic_store(&sh->init_worker[h->id], ax_worker_id(ctx) + 1);
    atomic_fetch_add_explicit(&sh->inits, 1, memory_order_release);
}

/* Gets (sh, id) from the message: children spawned with opts NULL have no init. */
static void where_child(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    hdr_t h;
    if (m->type != T_WHERE || ax_msg_len(m) != sizeof h)
        return;
    memcpy(&h, ax_msg_data(m), sizeof h);
    where_sh_t *sh = h.sh;
    atomic_store(&sh->msg_worker[h.id], ax_worker_id(ctx) + 1);
    /* ref[] was written by the parent before it sent this message */
    atomic_store(&sh->self_ok[h.id], ax_self(ctx) == sh->ref[h.id] && ax_ctx_engine(ctx) == sh->eng);
    atomic_fetch_add_explicit(&sh->msgs, 1, memory_order_release);
}

static void where_spawn_child(ax_ctx_t *ctx, where_sh_t *sh, const ax_spawn_opts_t *tmpl, uint64_t id)
{
    hdr_t h = { sh, id };
    ax_spawn_opts_t o;
    ax_ref_t r = AX_REF_NONE;
    int rc;
    if (tmpl) {
        o = *tmpl;
        o.init = where_child_init;
        o.arg = &h;
        o.arg_len = sizeof h;
        rc = ax_spawn(ctx, where_child, sizeof(hdr_t), &o, &r);
    } else {
        rc = ax_spawn(ctx, where_child, sizeof(hdr_t), NULL, &r);
    }
    if (rc != 0) {
        atomic_store(&sh->rc_spawn_fail, rc);
        return;
    }
    sh->ref[id] = r;
    if (ax_send(ctx, r, T_WHERE, &h, sizeof h) != 0)
        atomic_fetch_add(&sh->bad, 1);
}

static void where_parent(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *hp = state;
    where_sh_t *sh = hp->sh;
    (void)m;
    uint64_t id = 0;
    ax_ref_t junk;
    sh->parent_worker = ax_worker_id(ctx);
    if (sh->mode == 0) {
        where_spawn_child(ctx, sh, NULL, id++);
        ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_SELF };
        where_spawn_child(ctx, sh, &o, id++);
        ax_spawn_opts_t z = { 0 }; /* size 0 is allowed and means AX_ON_SELF defaults */
        where_spawn_child(ctx, sh, &z, id++);
    } else if (sh->mode == 1) {
        for (uint32_t w = 0; w < sh->nworkers; w++) {
            ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_WORKER, .worker = w };
            where_spawn_child(ctx, sh, &o, id++);
        }
        ax_spawn_opts_t bad = { .size = sizeof bad, .where = AX_ON_WORKER, .worker = sh->nworkers };
        atomic_store(&sh->rc_bad_worker, ax_spawn(ctx, where_child, 16, &bad, &junk));
        ax_spawn_opts_t badw = { .size = sizeof badw, .where = AX_ON_SELF + 1 }; /* one past the last */
        atomic_store(&sh->rc_bad_where, ax_spawn(ctx, where_child, 16, &badw, &junk));
    } else {
        for (uint32_t k = 0; k < sh->nnodes; k++) {
            for (uint32_t j = 0; j < sh->per_node && id < WHERE_MAX; j++) {
                ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_NODE, .node = sh->nodes[k] };
                sh->want_node[id] = sh->nodes[k];
                where_spawn_child(ctx, sh, &o, id++);
            }
        }
        ax_spawn_opts_t bad = { .size = sizeof bad, .where = AX_ON_NODE, .node = 1000 };
        atomic_store(&sh->rc_bad_node, ax_spawn(ctx, where_child, 16, &bad, &junk));
    }
    atomic_store_explicit(&sh->spawned, id, memory_order_release);
}

static void run_where(where_sh_t *sh, const ax_config_t *c, uint32_t parent_worker, uint64_t want)
{
    ax_engine_t *e = make_engine(c);
    sh->eng = e;
    sh->nworkers = ax_engine_workers(e);
    const ax_plan_t *plan = ax_engine_plan(e);
    assert_non_null(plan);
    assert_int_equal(plan->nworkers, sh->nworkers);
    if (sh->mode == 2) {
        for (uint32_t w = 0; w < plan->nworkers; w++) {
            bool seen = false;
            for (uint32_t k = 0; k < sh->nnodes; k++)
                seen |= sh->nodes[k] == plan->workers[w].numa;
            if (!seen && sh->nnodes < 16)
                sh->nodes[sh->nnodes++] = plan->workers[w].numa;
        }
        if (sh->nnodes != 4)
            fail_msg("%s: the plan for '%s' with %u workers spans %u NUMA nodes, expected 4",
                     g_test, SYNTH64, plan->nworkers, sh->nnodes);
        sh->per_node = 2 * plan->nworkers / sh->nnodes;
    }
    ax_ref_t p = spawn_ext(e, where_parent, sizeof(hdr_t), AX_ON_WORKER, parent_worker, sh, 0);
    start(e);
    ext_send_u64(e, p, T_GO, 0);
    WAIT_FOR(sh->spawned, 1);
    if (atomic_load(&sh->rc_spawn_fail))
        fail_msg("%s: ax_spawn failed with %d", g_test, atomic_load(&sh->rc_spawn_fail));
    assert_int_equal(atomic_load(&sh->spawned), want);
    WAIT_FOR(sh->msgs, want);
    finish(e);
    assert_int_equal(atomic_load(&sh->bad), 0);
    for (uint64_t i = 0; i < want; i++) {
        uint32_t w = ax_ref_worker(sh->ref[i]);
        if (atomic_load(&sh->msg_worker[i]) != w + 1)
            fail_msg("%s: child %llu: ref says worker %u, its behaviour ran on worker %d", g_test,
                     (unsigned long long)i, w, (int)atomic_load(&sh->msg_worker[i]) - 1);
        if (!atomic_load(&sh->self_ok[i]))
            fail_msg("%s: child %llu: ax_self or ax_ctx_engine disagree with the spawn", g_test,
                     (unsigned long long)i);
        if (sh->mode == 0 && w != sh->parent_worker)
            fail_msg("%s: child %llu spawned on self landed on worker %u, parent is on %u", g_test,
                     (unsigned long long)i, w, sh->parent_worker);
        if (sh->mode == 1 && w != i)
            fail_msg("%s: child spawned on worker %llu landed on worker %u", g_test,
                     (unsigned long long)i, w);
        if (sh->mode == 2 && plan->workers[w].numa != sh->want_node[i])
            fail_msg("%s: child %llu spawned on node %u landed on worker %u of node %u", g_test,
                     (unsigned long long)i, sh->want_node[i], w, plan->workers[w].numa);
        uint32_t iw = atomic_load(&sh->init_worker[i]);
        if (iw != 0 && iw != w + 1)
            fail_msg("%s: child %llu's init ran on worker %u, it lives on %u", g_test,
                     (unsigned long long)i, iw - 1, w);
    }
    if (sh->mode == 2) {
        /* round robin: the children of one node spread over its workers */
        for (uint32_t k = 0; k < sh->nnodes; k++) {
            uint32_t first = UINT32_MAX;
            bool spread = false;
            for (uint64_t i = 0; i < want; i++) {
                if (sh->want_node[i] != sh->nodes[k])
                    continue;
                uint32_t w = ax_ref_worker(sh->ref[i]);
                if (first == UINT32_MAX)
                    first = w;
                spread |= w != first;
            }
            if (!spread)
                fail_msg("%s: every child spawned on node %u went to worker %u (no round robin)",
                         g_test, sh->nodes[k], first);
        }
    }
    ax_engine_destroy(e);
}

static void spawn_on_self_lands_on_the_calling_worker(void **state)
{
    (void)state;
    g_test = __func__;
    static where_sh_t sh;
    memset(&sh, 0, sizeof sh);
    sh.mode = 0;
    ax_config_t c;
    cfg_real(&c, 2);
    run_where(&sh, &c, 1, 3);
    assert_int_equal(sh.parent_worker, 1);
    assert_int_equal(atomic_load(&sh.inits), 2); /* the NULL-opts child has no init */
}

static void spawn_on_a_worker_lands_there_and_rejects_bad_workers(void **state)
{
    (void)state;
    g_test = __func__;
    static where_sh_t sh;
    memset(&sh, 0, sizeof sh);
    sh.mode = 1;
    ax_config_t c;
    cfg_synth(&c, 8);
    run_where(&sh, &c, 5, 8);
    assert_int_equal(atomic_load(&sh.rc_bad_worker), -EINVAL);
    assert_int_equal(atomic_load(&sh.rc_bad_where), -EINVAL);
    assert_int_equal(atomic_load(&sh.inits), 8);
}

/* ---- default placement ------------------------------------------------------------- */

/* A driver on worker 0 queues `backlog` messages to itself, then spawns
 * DP_KIDS children with the given `where`; each child's init records its
 * worker.  The test waits until the other workers are parked before each
 * round. */
#define DP_KIDS 16u
enum { DP_ROUND = 40, DP_NOP };

typedef struct dp_sh {
    _Atomic uint64_t round_done, on_w0, on_w1, on_w2, spawn_fail;
    uint32_t where, backlog;
} dp_sh_t;

static dp_sh_t g_dp;

static void dp_child_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    uint32_t w = ax_worker_id(ctx);
    atomic_fetch_add(w == 0 ? &g_dp.on_w0 : w == 1 ? &g_dp.on_w1 : &g_dp.on_w2, 1);
}

static void dp_child(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    (void)m;
    ax_stop_self(ctx);
}

static void dp_driver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type != DP_ROUND)
        return; /* DP_NOP: the backlog, drained after the spawns */
    for (uint32_t i = 0; i < g_dp.backlog; i++)
        ax_send_u64(ctx, ax_self(ctx), DP_NOP, 0);
    ax_spawn_opts_t o = {.size = sizeof o, .where = g_dp.where, .init = dp_child_init};
    for (uint32_t i = 0; i < DP_KIDS; i++) {
        ax_ref_t c;
        if (ax_spawn(ctx, dp_child, 0, &o, &c) == 0)
            ax_send_u64(ctx, c, DP_NOP, 0);
        else
            atomic_fetch_add(&g_dp.spawn_fail, 1);
    }
    atomic_fetch_add(&g_dp.round_done, 1);
}

/* Run rounds on `nworkers` (2 or 3) until a child lands on every worker
 * but 0 or `rounds` ran; each round starts once the others have parked.
 * Returns the rounds run. */
static uint32_t dp_run_on(uint32_t nworkers, uint32_t where, uint32_t backlog, uint32_t rounds)
{
    memset(&g_dp, 0, sizeof g_dp);
    g_dp.where = where;
    g_dp.backlog = backlog;
    ax_config_t c;
    cfg_synth(&c, nworkers);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t d;
    ax_spawn_opts_t od = {.size = sizeof od, .where = AX_ON_WORKER, .worker = 0};
    assert_int_equal(ax_engine_spawn(e, dp_driver, 0, &od, &d), 0);
    assert_int_equal(ax_engine_start(e), 0);
    /* Worker 1 has nothing to do: it parks (at once on an unpinned
     * synthetic engine, else after its spin) and stays parked until a
     * child lands there, which ends the rounds. */
    ax_worker_stats_t st;
    uint64_t end = now_ns() + 10000000000ull;
    for (uint32_t i = 1; i < nworkers; i++)
        do {
            sleep_us(1000);
            ax_engine_worker_stats(e, i, &st, NULL);
        } while (!st.parks && now_ns() < end);
    uint32_t r;
    for (r = 0; r < rounds && !(atomic_load(&g_dp.on_w1) && (nworkers < 3 || atomic_load(&g_dp.on_w2)));
         r++) {
        sleep_us(1000);
        assert_int_equal(ax_engine_send(e, d, DP_ROUND, NULL, 0), 0);
        WAIT_FOR(g_dp.round_done, r + 1);
    }
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
    ax_engine_destroy(e);
    assert_int_equal(atomic_load(&g_dp.spawn_fail), 0);
    assert_int_equal(atomic_load(&g_dp.on_w0) + atomic_load(&g_dp.on_w1) + atomic_load(&g_dp.on_w2),
                     (uint64_t)r * DP_KIDS);
    return r;
}

static uint32_t dp_run(uint32_t where, uint32_t backlog, uint32_t rounds)
{
    return dp_run_on(2, where, backlog, rounds);
}

static void default_spawn_from_a_backlogged_worker_uses_a_parked_one(void **state)
{
    (void)state;
    g_test = __func__;
    dp_run(AX_ON_DEFAULT, 200, 50);
    if (!atomic_load(&g_dp.on_w1))
        fail_msg("%s: in 50 rounds of %u default spawns from worker 0 with 200 messages queued "
                 "there and worker 1 parked, none went to worker 1", g_test, DP_KIDS);
    /* every other spawn at most: the spawner keeps half its new work */
    assert_true(atomic_load(&g_dp.on_w1) <= atomic_load(&g_dp.on_w0));
}

/* With two parked workers the spread rotates over both (spread_pick's
 * walk from a rotating start, skipping the caller). */
static void default_spawn_spreads_over_every_parked_worker(void **state)
{
    (void)state;
    g_test = __func__;
    dp_run_on(3, AX_ON_DEFAULT, 200, 50);
    if (!atomic_load(&g_dp.on_w1) || !atomic_load(&g_dp.on_w2))
        fail_msg("%s: in 50 rounds of %u default spawns from worker 0 with 200 messages queued "
                 "there and workers 1 and 2 parked: %llu went to worker 1, %llu to worker 2", g_test,
                 DP_KIDS, (unsigned long long)atomic_load(&g_dp.on_w1),
                 (unsigned long long)atomic_load(&g_dp.on_w2));
    assert_true(atomic_load(&g_dp.on_w1) + atomic_load(&g_dp.on_w2) <= atomic_load(&g_dp.on_w0));
}

static void default_spawn_without_backlog_and_on_self_stay_on_the_caller(void **state)
{
    (void)state;
    g_test = __func__;
    dp_run(AX_ON_DEFAULT, 0, 5); /* nothing queued: the caller's worker keeps up */
    assert_int_equal(atomic_load(&g_dp.on_w1), 0);
    assert_int_equal(atomic_load(&g_dp.on_w0), 5 * DP_KIDS);
    dp_run(AX_ON_SELF, 200, 5); /* AX_ON_SELF never moves, backlog or not */
    assert_int_equal(atomic_load(&g_dp.on_w1), 0);
    assert_int_equal(atomic_load(&g_dp.on_w0), 5 * DP_KIDS);
}

static void spawn_on_a_numa_node_lands_on_a_worker_of_that_node(void **state)
{
    (void)state;
    g_test = __func__;
    static where_sh_t sh;
    memset(&sh, 0, sizeof sh);
    sh.mode = 2;
    ax_config_t c;
    cfg_synth(&c, 64);
    c.ring_slots = 8; /* 64*63 rings: keep the mesh small */
    run_where(&sh, &c, 0, 128);
    assert_int_equal(atomic_load(&sh.rc_bad_node), -EINVAL);
}

static void engine_spawn_from_outside_places_by_worker_and_node(void **state)
{
    (void)state;
    g_test = __func__;
    ax_config_t c;
    cfg_synth(&c, 64);
    c.ring_slots = 8;
    ax_engine_t *e = make_engine(&c);
    const ax_plan_t *plan = ax_engine_plan(e);
    assert_int_equal(plan->nworkers, 64);
    assert_false(plan->pinned);
    uint32_t node_of_last = plan->workers[63].numa;
    for (int k = 0; k < 32; k++) {
        ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_NODE, .node = node_of_last };
        ax_ref_t r;
        assert_int_equal(ax_engine_spawn(e, where_child, 16, &o, &r), 0);
        assert_int_equal(plan->workers[ax_ref_worker(r)].numa, node_of_last);
    }
    ax_spawn_opts_t ow = { .size = sizeof ow, .where = AX_ON_WORKER, .worker = 63 };
    ax_ref_t r;
    assert_int_equal(ax_engine_spawn(e, where_child, 16, &ow, &r), 0);
    assert_int_equal(ax_ref_worker(r), 63);
    ow.worker = 64;
    assert_int_equal(ax_engine_spawn(e, where_child, 16, &ow, &r), -EINVAL);
    ax_spawn_opts_t on = { .size = sizeof on, .where = AX_ON_NODE, .node = 1000 };
    assert_int_equal(ax_engine_spawn(e, where_child, 16, &on, &r), -EINVAL);
    /* default placement from outside: round robin over workers */
    uint32_t first = UINT32_MAX;
    bool spread = false;
    for (int k = 0; k < 8; k++) {
        assert_int_equal(ax_engine_spawn(e, where_child, 16, NULL, &r), 0);
        if (first == UINT32_MAX)
            first = ax_ref_worker(r);
        spread |= ax_ref_worker(r) != first;
    }
    assert_true(spread);
    start(e);
    finish(e);
    ax_engine_destroy(e);
}

/* ---- init and fini ---------------------------------------------------------------- */

#define LF_MAX 256
typedef struct lf_sh {
    _Atomic uint32_t init[LF_MAX], fini[LF_MAX];
    _Atomic uint64_t self_in_init[LF_MAX];
    _Atomic uint64_t next_id, handled, state_not_zero, arg_bad, msg_before_init, fini_self_bad,
        fini_state_bad, init_worker_bad, spawn_fail;
} lf_sh_t;

typedef struct lf_arg {
    lf_sh_t *sh;
    uint64_t id;
    uint64_t pattern;
} lf_arg_t;

typedef struct lf_st {
    lf_sh_t *sh;
    uint64_t id;
    uint64_t inited;
    unsigned char pad[176];
} lf_st_t;

#define LF_PATTERN(id) (0x9E3779B97F4A7C15ull * ((id) + 1))
#define LF_INITED 0x1717171717171717ull

static void lf_init(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    static const unsigned char zero[sizeof(lf_st_t)];
    lf_st_t *s = state;
    lf_arg_t a;
    if (arg_len != sizeof a || !arg) {
        atomic_fetch_add(&g_bad_init_arg, 1);
        return;
    }
    memcpy(&a, arg, sizeof a);
    if (a.id >= LF_MAX)
        return;
    if (a.pattern != LF_PATTERN(a.id))
        atomic_fetch_add(&a.sh->arg_bad, 1);
    if (memcmp(s, zero, sizeof zero) != 0)
        atomic_fetch_add(&a.sh->state_not_zero, 1);
    if (ax_worker_id(ctx) != ax_ref_worker(ax_self(ctx)))
        atomic_fetch_add(&a.sh->init_worker_bad, 1);
    s->sh = a.sh;
    s->id = a.id;
    s->inited = LF_INITED;
    atomic_store(&a.sh->self_in_init[a.id], ax_self(ctx));
    atomic_fetch_add_explicit(&a.sh->init[a.id], 1, memory_order_release);
}

static void lf_fini(ax_ctx_t *ctx, void *state)
{
    lf_st_t *s = state;
    if (s->inited != LF_INITED || !s->sh) {
        atomic_fetch_add(&g_bad_init_arg, 1);
        return;
    }
    if (ax_self(ctx) != atomic_load(&s->sh->self_in_init[s->id]))
        atomic_fetch_add(&s->sh->fini_self_bad, 1);
    atomic_fetch_add_explicit(&s->sh->fini[s->id], 1, memory_order_release);
}

static void lf_actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    lf_st_t *s = state;
    if (s->inited != LF_INITED || !s->sh) {
        atomic_fetch_add(&g_bad_init_arg, 1); /* no sh to count in: init did not run first */
        return;
    }
    lf_sh_t *sh = s->sh;
    if (m->type == T_STOP) {
        ax_stop_self(ctx);
    } else if (m->type == T_SPAWN) {
        for (int k = 0; k < 2; k++) {
            lf_arg_t a = { sh, atomic_fetch_add(&sh->next_id, 1), 0 };
            a.pattern = LF_PATTERN(a.id);
            ax_spawn_opts_t o = { .size = sizeof o, .init = lf_init, .fini = lf_fini, .arg = &a,
                                  .arg_len = sizeof a };
            ax_ref_t r;
            if (ax_spawn(ctx, lf_actor, sizeof(lf_st_t), &o, &r) != 0)
                atomic_fetch_add(&sh->spawn_fail, 1);
            memset(&a, 0xEE, sizeof a); /* the engine must have copied it */
            if (ax_send_u64(ctx, r, T_MARK, 0) != 0)
                atomic_fetch_add(&sh->spawn_fail, 1);
        }
    }
    atomic_fetch_add_explicit(&sh->handled, 1, memory_order_release);
}

static void init_and_fini_run_exactly_once_at_stop_and_at_shutdown(void **state)
{
    (void)state;
    g_test = __func__;
    static lf_sh_t sh;
    memset(&sh, 0, sizeof sh);
    atomic_store(&g_bad_init_arg, 0);
    enum { N = 64 };
    atomic_store(&sh.next_id, N);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t refs[N];
    for (uint64_t i = 0; i < N; i++) {
        lf_arg_t a = { &sh, i, LF_PATTERN(i) };
        ax_spawn_opts_t o = { .size = sizeof o, .init = lf_init, .fini = lf_fini, .arg = &a,
                              .arg_len = sizeof a };
        assert_int_equal(ax_engine_spawn(e, lf_actor, sizeof(lf_st_t), &o, &refs[i]), 0);
        memset(&a, 0xEE, sizeof a);
    }
    start(e);
    uint64_t msgs = 0, stops = 0, spawners = 0;
    for (uint64_t i = 0; i < N; i++) {
        ext_send_u64(e, refs[i], T_MARK, 0);
        msgs++;
        if (i % 4 == 0) {
            ext_send_u64(e, refs[i], T_SPAWN, 0);
            msgs += 3; /* the spawn and a MARK to each of two children */
            spawners++;
        }
        if (i % 3 == 0) {
            ext_send_u64(e, refs[i], T_STOP, 0);
            msgs++;
            stops++;
        }
    }
    WAIT_FOR(sh.handled, msgs);
    uint64_t total = atomic_load(&sh.next_id);
    assert_int_equal(total, N + 2 * spawners);
    /* fini of the stopped ones runs at their stop, not at shutdown */
    for (uint64_t i = 0; i < N; i += 3) {
        uint64_t end = now_ns() + WAIT_S * 1000000000ull;
        while (atomic_load(&sh.fini[i]) == 0 && now_ns() < end)
            sleep_us(200);
    }
    for (uint64_t i = 0; i < total; i++) {
        uint32_t want = i < N && i % 3 == 0 ? 1u : 0u;
        if (atomic_load(&sh.init[i]) != 1 || atomic_load(&sh.fini[i]) != want)
            fail_msg("%s: before shutdown actor %llu: init ran %u times, fini %u (expected 1, %u)",
                     g_test, (unsigned long long)i, atomic_load(&sh.init[i]),
                     atomic_load(&sh.fini[i]), want);
    }
    finish(e);
    for (uint64_t i = 0; i < total; i++)
        if (atomic_load(&sh.init[i]) != 1 || atomic_load(&sh.fini[i]) != 1)
            fail_msg("%s: after ax_engine_wait actor %llu: init ran %u times, fini %u (expected 1, 1)",
                     g_test, (unsigned long long)i, atomic_load(&sh.init[i]), atomic_load(&sh.fini[i]));
    /* no spawn after stop: nothing runs its init */
    lf_arg_t a = { &sh, LF_MAX - 1, LF_PATTERN(LF_MAX - 1) };
    ax_spawn_opts_t o = { .size = sizeof o, .init = lf_init, .fini = lf_fini, .arg = &a, .arg_len = sizeof a };
    ax_ref_t r;
    assert_int_equal(ax_engine_spawn(e, lf_actor, sizeof(lf_st_t), &o, &r), -ESHUTDOWN);
    ax_engine_destroy(e);
    for (uint64_t i = 0; i < LF_MAX; i++) {
        uint32_t want = i < total ? 1u : 0u;
        if (atomic_load(&sh.init[i]) != want || atomic_load(&sh.fini[i]) != want)
            fail_msg("%s: after destroy actor %llu: init ran %u times, fini %u (expected %u)", g_test,
                     (unsigned long long)i, atomic_load(&sh.init[i]), atomic_load(&sh.fini[i]), want);
    }
    assert_int_equal(atomic_load(&g_bad_init_arg), 0);
    assert_int_equal(atomic_load(&sh.arg_bad), 0);
    assert_int_equal(atomic_load(&sh.state_not_zero), 0);
    assert_int_equal(atomic_load(&sh.init_worker_bad), 0);
    assert_int_equal(atomic_load(&sh.fini_self_bad), 0);
    assert_int_equal(atomic_load(&sh.spawn_fail), 0);
    (void)stops;
}

/* The spawn argument is copied, up to AX_SPAWN_ARG_MAX bytes; one byte
 * more is -EINVAL and spawns nothing. */
typedef struct bigarg_sh {
    _Atomic uint64_t inits, bad;
} bigarg_sh_t;
static bigarg_sh_t g_bigarg;

static void bigarg_init(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    (void)ctx;
    (void)state;
    const unsigned char *a = arg;
    bool ok = arg_len == AX_SPAWN_ARG_MAX;
    for (size_t i = 0; ok && i < arg_len; i++)
        ok = a[i] == (unsigned char)(i * 13 + 5);
    if (!ok)
        atomic_fetch_add(&g_bigarg.bad, 1);
    atomic_fetch_add_explicit(&g_bigarg.inits, 1, memory_order_release);
}

static void nop_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
}

static void spawn_copies_an_argument_of_ax_spawn_arg_max_bytes_and_rejects_more(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_bigarg, 0, sizeof g_bigarg);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    unsigned char buf[AX_SPAWN_ARG_MAX + 1];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 13 + 5);
    ax_spawn_opts_t o = { .size = sizeof o, .init = bigarg_init, .arg = buf, .arg_len = AX_SPAWN_ARG_MAX };
    ax_ref_t r = AX_REF_NONE;
    assert_int_equal(ax_engine_spawn(e, nop_behaviour, 16, &o, &r), 0);
    memset(buf, 0, sizeof buf); /* copied at the call */
    o.arg_len = AX_SPAWN_ARG_MAX + 1;
    assert_int_equal(ax_engine_spawn(e, nop_behaviour, 16, &o, &r), -EINVAL);
    start(e);
    WAIT_FOR(g_bigarg.inits, 1);
    finish(e);
    assert_int_equal(atomic_load(&g_bigarg.inits), 1);
    assert_int_equal(atomic_load(&g_bigarg.bad), 0);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.actors_spawned, 1);
    ax_engine_destroy(e);
}

/* ax_spawn from a behaviour checks its options like ax_engine_spawn: its
 * common case (no flags, no sponsor, default or AX_ON_SELF placement) is
 * tested first, so every bad option must still be refused there, and every
 * good one accepted on both paths, with blocks of every kind.  Records the first case that got an
 * unexpected result (1-based), 0 when all did as expected. */
static struct {
    _Atomic uint64_t done, inits;
    _Atomic uint32_t wrong;
} g_spopt;

static void spopt_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx, (void)state, (void)arg, (void)len;
    atomic_fetch_add(&g_spopt.inits, 1);
}

static void spopt_driver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state, (void)m;
    static const uint64_t argv = 7;
    uint64_t mon = 0;
    const ax_spawn_opts_t ok = {.size = sizeof ok, .init = spopt_init, .arg = &argv, .arg_len = sizeof argv};
    struct {
        ax_spawn_opts_t o;
        ax_behaviour_fn fn;
        size_t state_size;
        int want;
    } c[20];
    uint32_t n = 0;
#define SPOPT(field, value, fn_, size_, want_)                                                 \
    do {                                                                                   \
        c[n].o = ok;                                                                       \
        c[n].o.field = value;                                                              \
        c[n].fn = fn_;                                                                     \
        c[n].state_size = size_;                                                           \
        c[n].want = want_;                                                                 \
        n++;                                                                               \
    } while (0)
    SPOPT(size, sizeof ok, nop_behaviour, 16, 0);
    SPOPT(size, 0, nop_behaviour, 16, 0);
    SPOPT(where, AX_ON_SELF, nop_behaviour, 16, 0);
    SPOPT(arg_len, AX_SPAWN_ARG_MAX, nop_behaviour, 16, 0); /* its arg is `big` (below) */
    SPOPT(size, sizeof ok - 8, nop_behaviour, 16, -EINVAL);
    SPOPT(arg_len, AX_SPAWN_ARG_MAX + 1, nop_behaviour, 16, -EINVAL);
    SPOPT(arg, NULL, nop_behaviour, 16, -EINVAL);
    SPOPT(pad_, 1, nop_behaviour, 16, -EINVAL);
    SPOPT(flags, 1u << 30, nop_behaviour, 16, -EINVAL);
    SPOPT(flags, AX_SPAWN_F_MONITOR, nop_behaviour, 16, -EINVAL); /* no .monitor */
    SPOPT(where, 99, nop_behaviour, 16, -EINVAL);
    SPOPT(size, sizeof ok, NULL, 16, -EINVAL);
    SPOPT(size, sizeof ok, nop_behaviour, SIZE_MAX, -EINVAL);
    /* The arena's largest class with the 48-byte header, one byte more
     * (a large block), and a large one: spawn_here's block sizes. */
    SPOPT(size, sizeof ok, nop_behaviour, 4096 - 48, 0);
    SPOPT(size, sizeof ok, nop_behaviour, 4096 - 47, 0);
    SPOPT(size, sizeof ok, nop_behaviour, 1u << 20, 0);
    SPOPT(flags, AX_SPAWN_F_MONITOR, nop_behaviour, 16, 0);
    c[n - 1].o.monitor = &mon;
#undef SPOPT
    static unsigned char big[AX_SPAWN_ARG_MAX];
    c[3].o.arg = big;
    for (uint32_t i = 0; i < n; i++) {
        ax_ref_t r = AX_REF_NONE;
        int rc = ax_spawn(ctx, c[i].fn, c[i].state_size, &c[i].o, &r);
        if (rc != c[i].want || (rc == 0) != (r != AX_REF_NONE)) {
            uint32_t none = 0;
            atomic_compare_exchange_strong(&g_spopt.wrong, &none, i + 1);
        }
    }
    atomic_store(&g_spopt.done, n);
}

static void spawn_from_a_behaviour_checks_every_option_on_its_fast_path(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_spopt, 0, sizeof g_spopt);
    ax_config_t c;
    cfg_real(&c, 1);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t d = AX_REF_NONE;
    assert_int_equal(ax_engine_spawn(e, spopt_driver, 16, NULL, &d), 0);
    start(e);
    assert_int_equal(ax_engine_send(e, d, 1, NULL, 0), 0);
    WAIT_FOR(g_spopt.done, 17);
    finish(e);
    assert_int_equal(atomic_load(&g_spopt.wrong), 0);
    assert_int_equal(atomic_load(&g_spopt.inits), 8); /* the 8 accepted spawns ran init */
    ax_engine_destroy(e);
}

/* A plain stop (ax_stop_self, no fini, no records) of an actor in a large
 * block (above the arena's classes) and of one in an arena block: each
 * frees its block (LSan in the ASan build) and its slot, which the next
 * spawn on the worker takes back (the private cache is LIFO) with the
 * next generation.  Rounds alternate the two sizes. */
enum { PS_GO = 1, PS_CHECK, PS_STOP };
static const size_t ps_sizes[2] = {1u << 20, 16};
static struct {
    _Atomic uint64_t rounds, wrong;
} g_ps;

static void ps_child(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == PS_STOP)
        ax_stop_self(ctx);
}

typedef struct ps_driver_st {
    ax_ref_t prev;
    uint32_t round;
} ps_driver_st_t;

static void ps_driver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    ps_driver_st_t *s = state;
    (void)m;
    ax_ref_t c;
    if (ax_spawn(ctx, ps_child, ps_sizes[s->round & 1], NULL, &c) != 0) {
        atomic_store(&g_ps.wrong, 1);
        return;
    }
    /* the slot the previous child's stop freed, one generation on */
    /* the reference layout documented in axon.h: slot bits 23..0,
     * generation 41..24 */
#define PS_SLOT(r) ((uint32_t)((r) & 0xFFFFFFu))
#define PS_GEN(r) ((uint32_t)((r) >> 24) & 0x3FFFFu)
    if (s->round && (PS_SLOT(c) != PS_SLOT(s->prev) || PS_GEN(c) != ((PS_GEN(s->prev) + 1) & 0x3FFFFu)))
        atomic_store(&g_ps.wrong, s->round + 1);
    s->prev = c;
    if (++s->round == 6) {
        atomic_store(&g_ps.rounds, s->round);
        return;
    }
    /* the child's stop runs before the driver's next round (FIFO order) */
    ax_send_u64(ctx, c, PS_STOP, 0);
    ax_send_u64(ctx, ax_self(ctx), PS_CHECK, 0);
}

static void a_plain_stop_frees_the_slot_and_block_large_or_not(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_ps, 0, sizeof g_ps);
    ax_config_t c;
    cfg_real(&c, 1);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t d = AX_REF_NONE;
    assert_int_equal(ax_engine_spawn(e, ps_driver, sizeof(ps_driver_st_t), NULL, &d), 0);
    start(e);
    assert_int_equal(ax_engine_send(e, d, PS_GO, NULL, 0), 0);
    WAIT_FOR(g_ps.rounds, 6);
    finish(e);
    assert_int_equal(atomic_load(&g_ps.wrong), 0);
    ax_engine_destroy(e);
}

/* ---- blobs ------------------------------------------------------------------------ */

#define BLOB_N      120
#define BLOB_ROUNDS 3
static const size_t blob_sizes[] = { 8, 24, 41, 100, 1000, 4000, 4096, 5000, 70000, 1u << 20 };
#define BLOB_NSIZES (sizeof blob_sizes / sizeof blob_sizes[0])

typedef struct blob_sh {
    ax_ref_t r0, r1;
    _Atomic uint32_t got[BLOB_ROUNDS + 1][BLOB_N];
    _Atomic uint64_t received, fwd_received, hand_freed, flushes, nops;
    _Atomic uint64_t bad_content, bad_len, alloc_fail, send_fail, keep_bad, nonblob_keep_bad;
} blob_sh_t;

typedef struct blob_sender_st {
    hdr_t h;
    uint64_t round;
    uint32_t next;
} blob_sender_st_t;

typedef struct blob_recv_st {
    hdr_t h;
    uint32_t nkept;
    void *kept[BLOB_N];
    size_t kept_len[BLOB_N];
} blob_recv_st_t;

static unsigned char blob_byte(uint64_t tag, size_t j)
{
    uint64_t x = (tag + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)j * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (unsigned char)(x ^ (x >> 17));
}

static void blob_fill(unsigned char *b, size_t len, uint64_t tag)
{
    memcpy(b, &tag, sizeof tag);
    for (size_t j = sizeof tag; j < len; j++)
        b[j] = blob_byte(tag, j);
}

static bool blob_check(const unsigned char *b, size_t len, uint64_t *tag)
{
    memcpy(tag, b, sizeof *tag);
    for (size_t j = sizeof *tag; j < len; j++)
        if (b[j] != blob_byte(*tag, j))
            return false;
    return true;
}

static void blob_sender(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    blob_sender_st_t *s = state;
    blob_sh_t *sh = s->h.sh;
    if (m->type == T_GO) {
        s->round = payload_u64(m);
        s->next = 0;
    }
    for (int k = 0; k < 10 && s->next < BLOB_N; k++, s->next++) {
        size_t len = blob_sizes[s->next % BLOB_NSIZES];
        unsigned char *b = ax_blob_alloc(ctx, len);
        if (!b) {
            atomic_fetch_add(&sh->alloc_fail, 1);
            continue;
        }
        blob_fill(b, len, s->round << 32 | s->next);
        ax_ref_t to = s->next % 2 ? sh->r1 : sh->r0;
        if (ax_send_blob(ctx, to, T_SEQ, b, len) != 0) {
            atomic_fetch_add(&sh->send_fail, 1);
            ax_blob_free(ctx, b);
        }
    }
    if (s->next < BLOB_N && ax_send_u64(ctx, ax_self(ctx), T_CONT, 0) != 0)
        atomic_fetch_add(&sh->send_fail, 1);
}

static void blob_receiver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    blob_recv_st_t *r = state;
    blob_sh_t *sh = r->h.sh;
    if (!(m->flags & AX_MSG_F_BLOB)) {
        if (ax_msg_keep_blob(ctx, m) != NULL)
            atomic_fetch_add(&sh->nonblob_keep_bad, 1);
        if (m->type == T_FLUSH) {
            /* half freed by hand here (a remote free for worker 0's blobs),
             * half handed on to r0 with their ownership */
            for (uint32_t i = 0; i < r->nkept; i++) {
                if (i % 2) {
                    ax_blob_free(ctx, r->kept[i]);
                    atomic_fetch_add(&sh->hand_freed, 1);
                } else if (ax_send_blob(ctx, sh->r0, T_FWD, r->kept[i], r->kept_len[i]) != 0) {
                    atomic_fetch_add(&sh->send_fail, 1);
                    ax_blob_free(ctx, r->kept[i]);
                }
            }
            r->nkept = 0;
            atomic_fetch_add_explicit(&sh->flushes, 1, memory_order_release);
        } else {
            atomic_fetch_add_explicit(&sh->nops, 1, memory_order_release);
        }
        return;
    }
    size_t len = ax_msg_len(m);
    uint64_t tag;
    if (len < 8) {
        atomic_fetch_add(&sh->bad_len, 1);
        return;
    }
    if (!blob_check(ax_msg_data(m), len, &tag))
        atomic_fetch_add(&sh->bad_content, 1);
    uint64_t round = tag >> 32, i = tag & 0xffffffffu;
    if (round > BLOB_ROUNDS || i >= BLOB_N || len != blob_sizes[i % BLOB_NSIZES]) {
        atomic_fetch_add(&sh->bad_len, 1);
        return;
    }
    if (m->type == T_FWD) {
        atomic_fetch_add_explicit(&sh->fwd_received, 1, memory_order_release);
        return;
    }
    atomic_fetch_add(&sh->got[round][i], 1);
    if (r->h.id == 1 && i % 3 == 0 && r->nkept < BLOB_N) {
        void *k = ax_msg_keep_blob(ctx, m);
        if (k != ax_msg_data(m))
            atomic_fetch_add(&sh->keep_bad, 1);
        if (k) {
            r->kept[r->nkept] = k;
            r->kept_len[r->nkept++] = len;
        }
    }
    atomic_fetch_add_explicit(&sh->received, 1, memory_order_release);
}

static uint64_t arena_used(ax_engine_t *e, uint64_t per[2])
{
    uint64_t sum = 0;
    for (uint32_t w = 0; w < 2; w++) {
        ax_worker_stats_t st;
        assert_int_equal(ax_engine_worker_stats(e, w, &st, NULL), 0);
        per[w] = st.arena_used_bytes;
        sum += st.arena_used_bytes;
    }
    return sum;
}

static uint64_t worker_parks(ax_engine_t *e, uint32_t w)
{
    ax_worker_stats_t st;
    assert_int_equal(ax_engine_worker_stats(e, w, &st, NULL), 0);
    return st.parks;
}

/* Give both workers a turn (a NOP each; each turn ends with the arena's
 * reclaim and flush), then read the arenas once both have parked again.
 * A worker publishes its arena figures when it parks (and every 4096
 * turns), so a worker kept off its CPU since its last park (TSan on a
 * loaded CI machine) would be read stale, and two stale reads alike would
 * look settled.  The park counter moves after the figures are published
 * (ax__park), so waiting for it to pass the value read before the NOPs
 * were sent reads figures from after the NOP's turn, except when a park
 * that began before the NOP is counted after that read: callers also ask
 * for three equal reads in a row. */
static uint64_t arena_used_after_nops(ax_engine_t *e, ax_ref_t r0, ax_ref_t r1,
                                      _Atomic uint64_t *nops_seen, uint64_t *nops, uint64_t per[2])
{
    uint64_t parks0[2] = {worker_parks(e, 0), worker_parks(e, 1)};
    ext_send_u64(e, r0, T_NOP, 0);
    ext_send_u64(e, r1, T_NOP, 0);
    *nops += 2;
    WAIT_FOR(*nops_seen, *nops);
    for (uint32_t w = 0; w < 2; w++) {
        unsigned waited_ms = 0;
        while (worker_parks(e, w) <= parks0[w]) {
            if (++waited_ms > WAIT_S * 1000)
                fail_msg("%s: worker %u did not park within %u s of its NOP", g_test, w, WAIT_S);
            sleep_us(1000);
        }
    }
    return arena_used(e, per);
}

static void blobs_arrive_intact_and_are_freed_exactly_once(void **state)
{
    (void)state;
    g_test = __func__;
    static blob_sh_t sh;
    memset(&sh, 0, sizeof sh);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t s = spawn_ext(e, blob_sender, sizeof(blob_sender_st_t), AX_ON_WORKER, 0, &sh, 0);
    sh.r0 = spawn_ext(e, blob_receiver, sizeof(blob_recv_st_t), AX_ON_WORKER, 0, &sh, 0);
    sh.r1 = spawn_ext(e, blob_receiver, sizeof(blob_recv_st_t), AX_ON_WORKER, 1, &sh, 1);
    start(e);
    uint64_t used[BLOB_ROUNDS + 1], per[BLOB_ROUNDS + 1][2];
    uint64_t kept_per_round = 0;
    for (uint32_t i = 1; i < BLOB_N; i += 2)
        kept_per_round += i % 3 == 0;
    uint64_t nops = 0;
    for (uint64_t round = 1; round <= BLOB_ROUNDS; round++) {
        ext_send_u64(e, s, T_GO, round);
        WAIT_FOR(sh.received, round * BLOB_N);
        ext_send_u64(e, sh.r1, T_FLUSH, 0);
        WAIT_FOR(sh.flushes, round);
        WAIT_FOR(sh.fwd_received, round * ((kept_per_round + 1) / 2));
        /* A blob freed on worker 1 returns to worker 0 in batches, on loop
         * turns: give both workers turns, then read the arenas until they
         * stop moving. */
        uint64_t prev = UINT64_MAX, cur = 0;
        for (int settle = 0, same = 0; settle < 200; settle++) {
            cur = arena_used_after_nops(e, sh.r0, sh.r1, &sh.nops, &nops, per[round]);
            same = cur == prev ? same + 1 : 0;
            if (same >= 2 && settle >= 3)
                break;
            prev = cur;
        }
        used[round] = cur;
    }
    /* While the workers run: the class list is there, smallest first. */
    ax_arena_class_stats_t cls[64];
    int ncls = ax_engine_arena_classes(e, 0, NULL, 0);
    assert_true(ncls > 0 && ncls <= 64);
    assert_int_equal(ax_engine_arena_classes(e, 0, cls, 64), ncls);
    for (int k = 1; k < ncls; k++)
        assert_true(cls[k].block_bytes > cls[k - 1].block_bytes);
    assert_int_equal(ax_engine_arena_classes(e, 2, cls, 64), -EINVAL);
    assert_int_equal(ax_engine_arena_classes(e, 0, NULL, 1), -EINVAL);
    finish(e);
    /* After the join the arenas are read directly: the per-class blocks add
     * up to the bytes in use, the high-water mark is at least that, and the
     * blobs worker 1 freed went home to worker 0. */
    ax_worker_stats_t ws[2];
    for (uint32_t w = 0; w < 2; w++) {
        assert_int_equal(ax_engine_worker_stats(e, w, &ws[w], NULL), 0);
        assert_int_equal(ax_engine_arena_classes(e, w, cls, 64), ncls);
        uint64_t bytes = 0;
        for (int k = 0; k < ncls; k++)
            bytes += cls[k].in_use * cls[k].block_bytes;
        assert_int_equal(bytes, ws[w].arena_used_bytes);
        assert_true(ws[w].arena_high_water_bytes >= ws[w].arena_used_bytes);
    }
    assert_true(ws[0].arena_high_water_bytes >= BLOB_N * 8); /* every blob came from w0 */
    assert_true(ws[1].arena_remote_frees_sent > 0);
    assert_true(ws[0].arena_remote_frees_received > 0);
    assert_true(ws[0].arena_remote_frees_received <= ws[1].arena_remote_frees_sent);
    assert_int_equal(atomic_load(&sh.alloc_fail), 0);
    assert_int_equal(atomic_load(&sh.send_fail), 0);
    assert_int_equal(atomic_load(&sh.bad_content), 0);
    assert_int_equal(atomic_load(&sh.bad_len), 0);
    assert_int_equal(atomic_load(&sh.keep_bad), 0);
    assert_int_equal(atomic_load(&sh.nonblob_keep_bad), 0);
    for (uint32_t round = 1; round <= BLOB_ROUNDS; round++)
        for (uint32_t i = 0; i < BLOB_N; i++)
            if (atomic_load(&sh.got[round][i]) != 1)
                fail_msg("%s: round %u blob %u arrived %u times", g_test, round, i,
                         atomic_load(&sh.got[round][i]));
    /* Freed exactly once: each round moves the same blobs, so in steady state
     * the arenas hold the same bytes after every round.  A leak grows it, a
     * double free shrinks it (or corrupts the free list). */
    for (uint32_t round = 2; round <= BLOB_ROUNDS; round++)
        if (used[round] != used[1])
            fail_msg("%s: arena bytes in use after round 1: %llu (w0 %llu, w1 %llu); after round "
                     "%u: %llu (w0 %llu, w1 %llu): blobs are %s",
                     g_test, (unsigned long long)used[1], (unsigned long long)per[1][0],
                     (unsigned long long)per[1][1], round, (unsigned long long)used[round],
                     (unsigned long long)per[round][0], (unsigned long long)per[round][1],
                     used[round] > used[1] ? "leaking" : "freed more than once");
    ax_engine_destroy(e);
}

/* Blobs sent to a stopped actor are dead letters; the engine must free
 * them (the receiver never ran to own them).  Same steady-state check as
 * above: three rounds leave the arenas at the same use. */
typedef struct dlb_sh {
    ax_ref_t victim;
    _Atomic uint64_t rounds_sent, hook_blobs, hook_calls, alloc_fail, send_fail, nops, stopped;
} dlb_sh_t;

static void dlb_hook(void *user, const ax_msg_t *m)
{
    dlb_sh_t *sh = user;
    if ((m->flags & AX_MSG_F_BLOB) && ax_msg_len(m) == 1000)
        atomic_fetch_add(&sh->hook_blobs, 1);
    atomic_fetch_add_explicit(&sh->hook_calls, 1, memory_order_release);
}

static void dlb_victim(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *h = state;
    dlb_sh_t *sh = h->sh;
    if (m->type == T_STOP) {
        ax_stop_self(ctx);
        atomic_fetch_add_explicit(&sh->stopped, 1, memory_order_release);
    }
}

static void dlb_actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *h = state;
    dlb_sh_t *sh = h->sh;
    if (m->type == T_NOP) {
        atomic_fetch_add_explicit(&sh->nops, 1, memory_order_release);
        return;
    }
    for (int i = 0; i < 100; i++) {
        void *b = ax_blob_alloc(ctx, 1000);
        if (!b) {
            atomic_fetch_add(&sh->alloc_fail, 1);
            continue;
        }
        memset(b, 0x5A, 1000);
        if (ax_send_blob(ctx, sh->victim, T_SEQ, b, 1000) != 0) {
            atomic_fetch_add(&sh->send_fail, 1);
            ax_blob_free(ctx, b);
        }
    }
    atomic_fetch_add_explicit(&sh->rounds_sent, 1, memory_order_release);
}

static void blobs_sent_to_a_stopped_actor_are_freed_as_dead_letters(void **state)
{
    (void)state;
    g_test = __func__;
    static dlb_sh_t sh;
    memset(&sh, 0, sizeof sh);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_engine_set_dead_letter_hook(e, dlb_hook, &sh);
    sh.victim = spawn_ext(e, dlb_victim, sizeof(hdr_t), AX_ON_WORKER, 1, &sh, 0);
    ax_ref_t s0 = spawn_ext(e, dlb_actor, sizeof(hdr_t), AX_ON_WORKER, 0, &sh, 1); /* remote */
    ax_ref_t s1 = spawn_ext(e, dlb_actor, sizeof(hdr_t), AX_ON_WORKER, 1, &sh, 2); /* local */
    start(e);
    ext_send_u64(e, sh.victim, T_STOP, 0);
    WAIT_FOR(sh.stopped, 1);
    uint64_t used[4], per[4][2], nops = 0;
    for (uint64_t round = 1; round <= 3; round++) {
        ext_send_u64(e, s0, T_GO, round);
        ext_send_u64(e, s1, T_GO, round);
        WAIT_FOR(sh.rounds_sent, 2 * round);
        WAIT_FOR(sh.hook_calls, 200 * round);
        uint64_t prev = UINT64_MAX, cur = 0;
        for (int settle = 0, same = 0; settle < 200; settle++) {
            cur = arena_used_after_nops(e, s0, s1, &sh.nops, &nops, per[round]);
            same = cur == prev ? same + 1 : 0;
            if (same >= 2 && settle >= 3)
                break;
            prev = cur;
        }
        used[round] = cur;
    }
    finish(e);
    assert_int_equal(atomic_load(&sh.alloc_fail), 0);
    assert_int_equal(atomic_load(&sh.send_fail), 0);
    assert_int_equal(atomic_load(&sh.hook_blobs), 600);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.dead_letters, 600);
    for (int round = 2; round <= 3; round++)
        if (used[round] != used[1])
            fail_msg("%s: arena bytes in use after round 1: %llu (w0 %llu, w1 %llu); after round %d: "
                     "%llu (w0 %llu, w1 %llu): blobs that became dead letters are %s", g_test,
                     (unsigned long long)used[1], (unsigned long long)per[1][0],
                     (unsigned long long)per[1][1], round, (unsigned long long)used[round],
                     (unsigned long long)per[round][0], (unsigned long long)per[round][1],
                     used[round] > used[1] ? "leaking" : "freed more than once");
    ax_engine_destroy(e);
}

/* ---- send errors --------------------------------------------------------------------- */

typedef struct err_sh {
    ax_ref_t target;
    _Atomic int rc[16];
    _Atomic uint64_t done, got, got_len40_ok, got_len0, got_sys_minus_1, got_other;
} err_sh_t;

static void err_target(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    hdr_t *h = state;
    err_sh_t *sh = h->sh;
    if (m->type == T_SEQ && ax_msg_len(m) == AX_INLINE_MAX) {
        bool ok = true;
        const unsigned char *d = ax_msg_data(m);
        for (unsigned i = 0; i < AX_INLINE_MAX; i++)
            ok &= d[i] == (unsigned char)(i * 7 + 1);
        if (ok)
            atomic_fetch_add(&sh->got_len40_ok, 1);
    } else if (m->type == T_MARK && ax_msg_len(m) == 0) {
        atomic_fetch_add(&sh->got_len0, 1);
    } else if (m->type == AX_TYPE_SYSTEM - 1) {
        atomic_fetch_add(&sh->got_sys_minus_1, 1);
    } else {
        atomic_fetch_add(&sh->got_other, 1);
    }
    atomic_fetch_add_explicit(&sh->got, 1, memory_order_release);
}

static void err_sender(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)m;
    hdr_t *h = state;
    err_sh_t *sh = h->sh;
    unsigned char big[AX_INLINE_MAX + 1];
    for (unsigned i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7 + 1);
    ax_ref_t t = sh->target;
    /* a ref naming worker 7 of a 2-worker engine: not stale, malformed */
    ax_ref_t far = (t & ~((ax_ref_t)0x3FF << AX_REF_WORKER_SHIFT)) | ((ax_ref_t)7 << AX_REF_WORKER_SHIFT);
    atomic_store(&sh->rc[0], ax_send(ctx, t, T_SEQ, big, AX_INLINE_MAX + 1));
    atomic_store(&sh->rc[1], ax_send(ctx, t, AX_TYPE_SYSTEM, big, 8));
    atomic_store(&sh->rc[2], ax_send(ctx, t, AX_TYPE_IO, big, 8));
    atomic_store(&sh->rc[3], ax_send(ctx, t, 0xFFFFFFFFu, big, 8));
    atomic_store(&sh->rc[4], ax_send_u64(ctx, t, AX_TYPE_SYSTEM, 1));
    atomic_store(&sh->rc[5], ax_send(ctx, AX_REF_NONE, T_SEQ, big, 8));
    atomic_store(&sh->rc[6], ax_send(ctx, far, T_SEQ, big, 8));
    void *b = ax_blob_alloc(ctx, 100);
    if (b) {
        int rc = ax_send_blob(ctx, t, AX_TYPE_SYSTEM, b, 100);
        atomic_store(&sh->rc[7], rc);
        int rc2 = ax_send_blob(ctx, AX_REF_NONE, T_SEQ, b, 100);
        atomic_store(&sh->rc[8], rc2);
        if (rc != 0 && rc2 != 0)
            ax_blob_free(ctx, b); /* failed sends leave the blob with us */
    } else {
        atomic_store(&sh->rc[7], 12345);
    }
    /* the valid neighbours of each error */
    atomic_store(&sh->rc[9], ax_send(ctx, t, T_SEQ, big, AX_INLINE_MAX));
    atomic_store(&sh->rc[10], ax_send(ctx, t, T_MARK, big, 0));
    atomic_store(&sh->rc[11], ax_send(ctx, t, AX_TYPE_SYSTEM - 1, big, 1));
    atomic_fetch_add_explicit(&sh->done, 1, memory_order_release);
}

static void invalid_sends_return_einval_and_send_nothing(void **state)
{
    (void)state;
    g_test = __func__;
    static err_sh_t sh;
    memset(&sh, 0, sizeof sh);
    for (int i = 0; i < 16; i++)
        atomic_store(&sh.rc[i], 12345);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    sh.target = spawn_ext(e, err_target, sizeof(hdr_t), AX_ON_WORKER, 1, &sh, 0);
    ax_ref_t s = spawn_ext(e, err_sender, sizeof(hdr_t), AX_ON_WORKER, 0, &sh, 1);
    start(e);
    unsigned char big[AX_INLINE_MAX + 1] = { 0 };
    assert_int_equal(ax_engine_send(e, sh.target, T_SEQ, big, AX_INLINE_MAX + 1), -EINVAL);
    assert_int_equal(ax_engine_send(e, sh.target, AX_TYPE_SYSTEM, big, 8), -EINVAL);
    assert_int_equal(ax_engine_send(e, sh.target, AX_TYPE_IO, big, 8), -EINVAL);
    assert_int_equal(ax_engine_send(e, AX_REF_NONE, T_SEQ, big, 8), -EINVAL);
    ext_send_u64(e, s, T_GO, 0);
    WAIT_FOR(sh.done, 1);
    WAIT_FOR(sh.got, 3);
    sleep_us(20000); /* room for a wrongly sent message to arrive */
    finish(e);
    const char *what[] = { "len AX_INLINE_MAX+1", "type AX_TYPE_SYSTEM", "type AX_TYPE_IO",
                           "type 0xFFFFFFFF", "ax_send_u64 reserved type", "to AX_REF_NONE",
                           "to worker 7 of 2", "blob with reserved type", "blob to AX_REF_NONE" };
    for (int i = 0; i <= 8; i++)
        if (atomic_load(&sh.rc[i]) != -EINVAL)
            fail_msg("%s: ax_send %s returned %d, expected -EINVAL (%d)", g_test, what[i],
                     atomic_load(&sh.rc[i]), -EINVAL);
    assert_int_equal(atomic_load(&sh.rc[9]), 0);
    assert_int_equal(atomic_load(&sh.rc[10]), 0);
    assert_int_equal(atomic_load(&sh.rc[11]), 0);
    assert_int_equal(atomic_load(&sh.got_len40_ok), 1);
    assert_int_equal(atomic_load(&sh.got_len0), 1);
    assert_int_equal(atomic_load(&sh.got_sys_minus_1), 1);
    assert_int_equal(atomic_load(&sh.got_other), 0);
    assert_int_equal(atomic_load(&sh.got), 3);
    ax_engine_destroy(e);
}

static void sends_after_stop_fail_with_eshutdown(void **state)
{
    (void)state;
    g_test = __func__;
    static pair_sh_t sh;
    memset(&sh, 0, sizeof sh);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t r = spawn_ext(e, pair_receiver, sizeof(recv_st_t), AX_ON_WORKER, 1, &sh, 0);
    start(e);
    uint64_t p[3] = { 0, 0, AX_REF_NONE };
    assert_int_equal(ax_engine_send(e, r, T_SEQ, p, sizeof p), 0);
    WAIT_FOR(sh.received, 1);
    ax_engine_stop(e);
    /* "from now on": right after stop returns, before the workers exit */
    assert_int_equal(ax_engine_send(e, r, T_SEQ, p, sizeof p), -ESHUTDOWN);
    ax_ref_t r2;
    assert_int_equal(ax_engine_spawn(e, pair_receiver, sizeof(recv_st_t), NULL, &r2), -ESHUTDOWN);
    ax_engine_stop(e); /* idempotent */
    assert_int_equal(ax_engine_wait(e), 0);
    assert_int_equal(ax_engine_send(e, r, T_SEQ, p, sizeof p), -ESHUTDOWN);
    assert_int_equal(atomic_load(&sh.received), 1);
    ax_engine_destroy(e);
}

/* len 0 with buf NULL is a valid send (nothing to copy): both paths must
 * deliver it, without touching buf (memcpy(dst, NULL, 0) is undefined
 * behaviour and UBSan aborts on it). */
static void null_sender(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)m;
    hdr_t *h = state;
    err_sh_t *sh = h->sh;
    atomic_store(&sh->rc[0], ax_send(ctx, sh->target, T_MARK, NULL, 0));
    atomic_fetch_add_explicit(&sh->done, 1, memory_order_release);
}

static void zero_length_send_with_null_buffer_is_delivered(void **state)
{
    (void)state;
    g_test = __func__;
    static err_sh_t sh;
    memset(&sh, 0, sizeof sh);
    atomic_store(&sh.rc[0], 12345);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    sh.target = spawn_ext(e, err_target, sizeof(hdr_t), AX_ON_WORKER, 1, &sh, 0);
    ax_ref_t s = spawn_ext(e, null_sender, sizeof(hdr_t), AX_ON_WORKER, 1, &sh, 1);
    start(e);
    assert_int_equal(ax_engine_send(e, sh.target, T_MARK, NULL, 0), 0);
    ext_send_u64(e, s, T_GO, 0);
    WAIT_FOR(sh.done, 1);
    WAIT_FOR(sh.got, 2);
    finish(e);
    assert_int_equal(atomic_load(&sh.rc[0]), 0);
    assert_int_equal(atomic_load(&sh.got_len0), 2);
    assert_int_equal(atomic_load(&sh.got_other), 0);
    ax_engine_destroy(e);
}

/* ---- stop_when_idle lets a running chain finish ------------------------------------------ */

typedef struct chain_sh {
    ax_ref_t a, b;
    _Atomic uint64_t hops, zero_seen, send_fail;
} chain_sh_t;

static void chain_actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *h = state;
    chain_sh_t *sh = h->sh;
    uint64_t v = payload_u64(m);
    atomic_fetch_add(&sh->hops, 1);
    if (v == 0) {
        atomic_fetch_add(&sh->zero_seen, 1);
        return;
    }
    if (ax_send_u64(ctx, h->id ? sh->a : sh->b, T_HOP, v - 1) != 0)
        atomic_fetch_add(&sh->send_fail, 1);
}

static void stop_when_idle_waits_for_a_running_message_chain(void **state)
{
    (void)state;
    g_test = __func__;
    static chain_sh_t sh;
    memset(&sh, 0, sizeof sh);
    ax_config_t c;
    cfg_real(&c, 2);
    ax_engine_t *e = make_engine(&c);
    sh.a = spawn_ext(e, chain_actor, sizeof(hdr_t), AX_ON_WORKER, 0, &sh, 0);
    sh.b = spawn_ext(e, chain_actor, sizeof(hdr_t), AX_ON_WORKER, 1, &sh, 1);
    start(e);
    ext_send_u64(e, sh.a, T_HOP, 20000);
    ax_engine_stop_when_idle(e); /* at once: the chain is still running */
    assert_int_equal(ax_engine_wait(e), 0);
    assert_int_equal(atomic_load(&sh.send_fail), 0);
    assert_int_equal(atomic_load(&sh.hops), 20001);
    assert_int_equal(atomic_load(&sh.zero_seen), 1);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.dropped_at_stop, 0);
    assert_int_equal(st.msgs_remote + st.msgs_external, 20001);
    ax_engine_destroy(e);
}

/* ---- two engines at once -------------------------------------------------------------------- */

typedef struct two_sh {
    ax_engine_t *ea, *eb;
    ax_ref_t pa, pb;
    _Atomic uint64_t done, bad_engine, send_fail, pings;
} two_sh_t;

static void two_a(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *h = state;
    two_sh_t *sh = h->sh;
    if (ax_ctx_engine(ctx) != sh->ea)
        atomic_fetch_add(&sh->bad_engine, 1);
    uint64_t v = payload_u64(m);
    if (v == 0) {
        atomic_fetch_add_explicit(&sh->done, 1, memory_order_release);
        return;
    }
    if (ax_engine_send(sh->eb, sh->pb, T_PING, &v, sizeof v) != 0)
        atomic_fetch_add(&sh->send_fail, 1);
}

static void two_b(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    hdr_t *h = state;
    two_sh_t *sh = h->sh;
    if (ax_ctx_engine(ctx) != sh->eb || m->type != T_PING || m->from != AX_REF_NONE)
        atomic_fetch_add(&sh->bad_engine, 1);
    atomic_fetch_add(&sh->pings, 1);
    uint64_t v = payload_u64(m) - 1;
    if (ax_engine_send(sh->ea, sh->pa, T_PONG, &v, sizeof v) != 0)
        atomic_fetch_add(&sh->send_fail, 1);
}

static void two_engines_run_side_by_side_in_one_process(void **state)
{
    (void)state;
    g_test = __func__;
    static two_sh_t sh;
    memset(&sh, 0, sizeof sh);
    ax_config_t ca, cb;
    cfg_real(&ca, 2);
    cfg_synth(&cb, 4);
    sh.ea = make_engine(&ca);
    sh.eb = make_engine(&cb);
    assert_int_equal(ax_engine_workers(sh.ea), 2);
    assert_int_equal(ax_engine_workers(sh.eb), 4);
    sh.pa = spawn_ext(sh.ea, two_a, sizeof(hdr_t), AX_ON_WORKER, 1, &sh, 0);
    sh.pb = spawn_ext(sh.eb, two_b, sizeof(hdr_t), AX_ON_WORKER, 3, &sh, 0);
    start(sh.ea);
    start(sh.eb);
    enum { ROUNDS = 2000 };
    ext_send_u64(sh.ea, sh.pa, T_GO, ROUNDS);
    WAIT_FOR(sh.done, 1);
    assert_int_equal(atomic_load(&sh.pings), ROUNDS);
    /* B goes away; A keeps working */
    finish(sh.eb);
    ax_worker_stats_t sb;
    ax_engine_stats(sh.eb, &sb);
    ax_engine_destroy(sh.eb);
    ext_send_u64(sh.ea, sh.pa, T_GO, 0);
    WAIT_FOR(sh.done, 2);
    finish(sh.ea);
    ax_worker_stats_t sa;
    ax_engine_stats(sh.ea, &sa);
    ax_engine_destroy(sh.ea);
    assert_int_equal(atomic_load(&sh.bad_engine), 0);
    assert_int_equal(atomic_load(&sh.send_fail), 0);
    assert_int_equal(sa.msgs_external, ROUNDS + 2);
    assert_int_equal(sb.msgs_external, ROUNDS);
    assert_int_equal(sa.msgs_local + sa.msgs_remote, 0);
    assert_int_equal(sb.msgs_local + sb.msgs_remote, 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, watchdog);
    /* AXON_TEST_FILTER / AXON_TEST_SKIP: cmocka patterns (* and ?) to run or
     * skip some tests, e.g. to get past one that aborts the binary. */
    if (getenv("AXON_TEST_FILTER"))
        cmocka_set_test_filter(getenv("AXON_TEST_FILTER"));
    if (getenv("AXON_TEST_SKIP"))
        cmocka_set_skip_filter(getenv("AXON_TEST_SKIP"));
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(fifo_holds_per_pair_between_actors_on_one_worker),
        T(fifo_holds_per_pair_across_two_pinned_workers),
        T(fifo_holds_per_pair_when_eight_slot_rings_overflow),
        T(fifo_holds_per_pair_across_eight_oversubscribed_workers),
        T(external_sends_from_four_threads_all_arrive_in_per_thread_order),
        T(behaviour_never_runs_concurrently_with_itself),
        T(become_swaps_the_behaviour_for_the_next_messages),
        T(stopped_actor_turns_later_messages_into_counted_dead_letters),
        T(stale_reference_after_local_slot_reuse_is_a_dead_letter),
        T(engine_spawn_reuses_slots_freed_by_stopped_actors),
        T(spawn_from_another_worker_reuses_slots_freed_by_stopped_actors),
        T(spawn_on_self_lands_on_the_calling_worker),
        T(spawn_on_a_worker_lands_there_and_rejects_bad_workers),
        T(default_spawn_from_a_backlogged_worker_uses_a_parked_one),
        T(default_spawn_spreads_over_every_parked_worker),
        T(default_spawn_without_backlog_and_on_self_stay_on_the_caller),
        T(spawn_on_a_numa_node_lands_on_a_worker_of_that_node),
        T(engine_spawn_from_outside_places_by_worker_and_node),
        T(init_and_fini_run_exactly_once_at_stop_and_at_shutdown),
        T(spawn_copies_an_argument_of_ax_spawn_arg_max_bytes_and_rejects_more),
        T(spawn_from_a_behaviour_checks_every_option_on_its_fast_path),
        T(a_plain_stop_frees_the_slot_and_block_large_or_not),
        T(blobs_arrive_intact_and_are_freed_exactly_once),
        T(blobs_sent_to_a_stopped_actor_are_freed_as_dead_letters),
        T(invalid_sends_return_einval_and_send_nothing),
        T(sends_after_stop_fail_with_eshutdown),
        T(zero_length_send_with_null_buffer_is_delivered),
        T(stop_when_idle_waits_for_a_running_message_chain),
        T(two_engines_run_side_by_side_in_one_process),
    };
#undef T
    return cmocka_run_group_tests_name("engine/semantics", tests, NULL, NULL);
}
