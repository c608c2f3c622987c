/* tests/unit/test_engine_edges.c - the engine's edges a careless or hostile
 * user can reach (issue 10, engine items): slot reuse by every kind of
 * spawn, quiescence while an outside spawn fails, oversized state, forged
 * references, init/fini of actors spawned just before stop, NULL contexts
 * and ax_engine_wait from a behaviour, per-source counts of messages that
 * waited for their actor's spawn, stop before start, and the arenas being
 * empty after ax_engine_wait.  Public API only.
 *
 * Every engine here runs unpinned on a synthetic topology, so the tests
 * behave the same on one CPU (taskset -c 0) as on many.
 *
 * Threading: behaviours record into structs the test owns (atomics); only
 * the test thread calls cmocka's assert_*.  A SIGALRM watchdog turns a hang
 * into a failure; waits that used to hang are bounded and fail with what
 * they saw.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define ENGINE_TEST_NAME "test_engine_edges"
#define ENGINE_TEST_HANG "a stop_when_idle or wait that never completes"
#include "engine_test.h"

/* Two cores, one node: the engine runs up to 2 workers unpinned anywhere. */
#define SYNTH2 "pack:1 core:2 pu:1"

enum { T_PING = 1, T_GO, T_STOP, T_KEEP };

static void cfg_synth(ax_config_t *c, uint32_t workers)
{
    ax_config_init(c);
    snprintf(c->topology_synthetic, sizeof c->topology_synthetic, "%s", SYNTH2);
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

/* ax_engine_wait on another thread, given `seconds` to return: false if it
 * did not (the engine is then left running: the caller fails the test). */
typedef struct waiter {
    ax_engine_t *eng;
    _Atomic int done;
} waiter_t;

static void *wait_thread(void *arg)
{
    waiter_t *w = arg;
    ax_engine_wait(w->eng);
    atomic_store(&w->done, 1);
    return NULL;
}

static bool wait_within(ax_engine_t *e, unsigned seconds)
{
    static waiter_t w; /* outlives a failed test: its thread may still run */
    pthread_t t;
    w.eng = e;
    atomic_store(&w.done, 0);
    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    uint64_t end = now_ns() + (uint64_t)seconds * 1000000000ull;
    while (!atomic_load(&w.done) && now_ns() < end)
        sleep_us(1000);
    if (!atomic_load(&w.done)) {
        pthread_detach(t);
        return false;
    }
    pthread_join(t, NULL);
    return true;
}

/* init: the state starts as a copy of arg */
static void copy_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    memcpy(state, arg, len);
}

static void nop(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
}

/* ---- 3: state_size beyond 32 bits ------------------------------------------------ */

typedef struct big_sh {
    _Atomic uint64_t done;
    _Atomic int64_t rc[3];
} big_sh_t;

static big_sh_t g_big;

static const size_t k_big_sizes[3] = {((size_t)4 << 30) + 64, (size_t)UINT32_MAX, SIZE_MAX};

static void big_prober(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    (void)m;
    for (int i = 0; i < 3; i++) {
        ax_ref_t r = AX_REF_NONE;
        atomic_store(&g_big.rc[i], ax_spawn(ctx, nop, k_big_sizes[i], NULL, &r));
    }
    atomic_fetch_add(&g_big.done, 1);
}

static void spawn_refuses_a_state_size_beyond_32_bits_everywhere(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_big, 0, sizeof g_big);
    ax_config_t c;
    cfg_synth(&c, 1);
    ax_engine_t *e = make_engine(&c);
    for (int i = 0; i < 3; i++) {
        ax_ref_t r = AX_REF_NONE;
        int rc = ax_engine_spawn(e, nop, k_big_sizes[i], NULL, &r);
        if (rc != -EINVAL)
            fail_msg("%s: ax_engine_spawn with state_size %zu returned %d (ref %llx), expected "
                     "-EINVAL: the size would be truncated to 32 bits",
                     g_test, k_big_sizes[i], rc, (unsigned long long)r);
    }
    /* the largest accepted size is refused by nothing but memory */
    ax_ref_t p;
    assert_int_equal(ax_engine_spawn(e, big_prober, 0, NULL, &p), 0);
    start(e);
    assert_int_equal(ax_engine_send(e, p, T_GO, NULL, 0), 0);
    WAIT_FOR(g_big.done, 1);
    for (int i = 0; i < 3; i++)
        if (atomic_load(&g_big.rc[i]) != -EINVAL)
            fail_msg("%s: ax_spawn with state_size %zu returned %lld, expected -EINVAL", g_test,
                     k_big_sizes[i], (long long)atomic_load(&g_big.rc[i]));
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
    ax_engine_destroy(e);
}

/* ---- 11: NULL ctx, and ax_engine_wait from a behaviour ------------------------------ */

typedef struct waitb_sh {
    _Atomic uint64_t done;
    _Atomic int64_t rc;
} waitb_sh_t;

static waitb_sh_t g_waitb;

static void wait_inside(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    (void)m;
    atomic_store(&g_waitb.rc, ax_engine_wait(ax_ctx_engine(ctx)));
    atomic_fetch_add(&g_waitb.done, 1);
}

static void null_ctx_is_einval_and_wait_from_a_behaviour_is_edeadlk(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_waitb, 0, sizeof g_waitb);
    ax_config_t c;
    cfg_synth(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t a;
    /* on worker 1: a wait from there would join worker 0 first, forever */
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 1};
    assert_int_equal(ax_engine_spawn(e, wait_inside, 0, &o, &a), 0);
    uint64_t word = 7, blob_stand_in[4] = {0};
    assert_int_equal(ax_send(NULL, a, T_PING, NULL, 0), -EINVAL);
    assert_int_equal(ax_send(NULL, a, T_PING, &word, sizeof word), -EINVAL);
    assert_int_equal(ax_send_u64(NULL, a, T_PING, 1), -EINVAL);
    assert_int_equal(ax_send_blob(NULL, a, T_PING, blob_stand_in, sizeof blob_stand_in), -EINVAL);
    ax_blob_free(NULL, blob_stand_in); /* documented: does nothing */
    ax_blob_free(NULL, NULL);
    assert_null(ax_blob_alloc(NULL, 64));
    start(e);
    assert_int_equal(ax_engine_send(e, a, T_GO, NULL, 0), 0);
    uint64_t end = now_ns() + 10ull * 1000000000ull;
    while (atomic_load(&g_waitb.done) == 0 && now_ns() < end)
        sleep_us(1000);
    if (atomic_load(&g_waitb.done) == 0)
        fail_msg("%s: ax_engine_wait called from a behaviour did not return within 10 s "
                 "(expected -EDEADLK at once)", g_test);
    assert_int_equal(atomic_load(&g_waitb.rc), -EDEADLK);
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
    assert_int_equal(ax_engine_wait(e), 0); /* again: still 0 */
    ax_engine_destroy(e);
}

/* ---- 1: every freed slot serves every kind of spawn ---------------------------------- */

#define BURST 1000u
#define SLOTS 4096u /* the table: each burst test spawns 12 times as many actors */

typedef struct burst_sh {
    _Atomic uint64_t fini, local_fini, pings, bursts_done, spawn_fail;
    _Atomic int64_t first_rc;
    uint32_t bursts;
} burst_sh_t;

static burst_sh_t g_burst;

static void burst_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&g_burst.fini, 1);
}

static void local_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&g_burst.local_fini, 1);
}

static void stop_on_any(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    (void)m;
    ax_stop_self(ctx);
}

/* A child: on T_STOP, spawn a short-lived local actor (so the owner takes
 * slots off its free lists while other threads claim them too), tell the
 * sender (if an actor) and stop. */
static void burst_child(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type != T_STOP)
        return;
    ax_spawn_opts_t o = {.size = sizeof o, .fini = local_fini};
    ax_ref_t r;
    if (ax_spawn(ctx, stop_on_any, 0, &o, &r) == 0)
        ax_send_u64(ctx, r, T_PING, 0);
    else
        atomic_fetch_add(&g_burst.spawn_fail, 1);
    if (ax_sender(ctx) != AX_REF_NONE)
        ax_send_u64(ctx, ax_sender(ctx), T_PING, 0);
    ax_stop_self(ctx);
}

/* On worker 0: spawn BURST children on worker 1, stop them all, wait for
 * their pings, again, `bursts` times. */
static void burst_driver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    uint64_t *pings = state;
    if (m->type == T_PING && ++*pings % BURST != 0)
        return;
    if (m->type == T_PING)
        atomic_fetch_add(&g_burst.bursts_done, 1);
    if (atomic_load(&g_burst.bursts_done) == g_burst.bursts)
        return;
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 1, .fini = burst_fini};
    for (uint32_t i = 0; i < BURST; i++) {
        ax_ref_t r;
        int rc = ax_spawn(ctx, burst_child, 0, &o, &r);
        if (rc == 0)
            rc = ax_send_u64(ctx, r, T_STOP, 0);
        if (rc) {
            int64_t zero = 0;
            atomic_compare_exchange_strong(&g_burst.first_rc, &zero, rc);
            atomic_fetch_add(&g_burst.spawn_fail, 1);
            atomic_store(&g_burst.bursts_done, g_burst.bursts); /* give up */
            return;
        }
    }
}

static void remote_and_external_spawns_reuse_every_freed_slot(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_burst, 0, sizeof g_burst);
    g_burst.bursts = 12 * SLOTS / BURST;
    ax_config_t c;
    cfg_synth(&c, 2);
    c.max_actors = SLOTS;
    ax_engine_t *e = make_engine(&c);
    ax_ref_t d;
    ax_spawn_opts_t od = {.size = sizeof od, .where = AX_ON_WORKER, .worker = 0};
    assert_int_equal(ax_engine_spawn(e, burst_driver, sizeof(uint64_t), &od, &d), 0);
    start(e);

    /* remote: spawns from a behaviour on worker 0 onto worker 1 */
    assert_int_equal(ax_engine_send(e, d, T_GO, NULL, 0), 0);
    WAIT_FOR(g_burst.bursts_done, g_burst.bursts);
    if (atomic_load(&g_burst.spawn_fail))
        fail_msg("%s: a remote ax_spawn failed with %lld after %llu of %u bursts of %u (table of "
                 "%u slots, at most %u actors alive): freed slots are not reused", g_test,
                 (long long)atomic_load(&g_burst.first_rc),
                 (unsigned long long)atomic_load(&g_burst.fini) / BURST, g_burst.bursts, BURST,
                 SLOTS, BURST);

    /* external: ax_engine_spawn from this thread onto worker 1 */
    static ax_ref_t refs[BURST];
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 1, .fini = burst_fini};
    for (uint32_t b = 0; b < g_burst.bursts; b++) {
        uint64_t base = atomic_load(&g_burst.fini);
        for (uint32_t i = 0; i < BURST; i++) {
            int rc = ax_engine_spawn(e, burst_child, 0, &o, &refs[i]);
            if (rc != 0)
                fail_msg("%s: ax_engine_spawn returned %d in burst %u of %u (table of %u slots, "
                         "at most %u actors alive): freed slots are not reused", g_test, rc, b,
                         g_burst.bursts, SLOTS, BURST);
        }
        for (uint32_t i = 0; i < BURST; i++)
            assert_int_equal(ax_engine_send(e, refs[i], T_STOP, NULL, 0), 0);
        WAIT_FOR(g_burst.fini, base + BURST);
    }
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
    assert_int_equal(atomic_load(&g_burst.spawn_fail), 0);
    assert_int_equal(atomic_load(&g_burst.local_fini), 2ull * g_burst.bursts * BURST);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.actors_spawned, 1 + 4ull * g_burst.bursts * BURST);
    assert_int_equal(st.actors_live, 0);
    assert_int_equal(st.dead_letters, 0);
    assert_int_equal(st.spawn_failed, 0);
    ax_engine_destroy(e);
}

/* A full table: the driver fills every slot with local children, then stops
 * FEW of them (fewer than the owner caches privately).  Those slots must
 * reach outside spawners once the owner's turn is over, not stay in the
 * owner's private cache until it happens to spawn or free more. */
#define FEW 10u

typedef struct few_sh {
    _Atomic uint64_t filled, fini, go_done;
    ax_ref_t kids[4096];
} few_sh_t;

static few_sh_t g_few;

static void few_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&g_few.fini, 1);
}

static void few_driver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == T_PING) { /* fill the table */
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 0, .fini = few_fini};
        uint64_t n = 0;
        while (n < 4096 && ax_spawn(ctx, stop_on_any, 0, &o, &g_few.kids[n]) == 0)
            n++;
        atomic_store(&g_few.filled, n);
    } else if (m->type == T_GO) { /* stop FEW of them */
        for (uint32_t i = 0; i < FEW; i++)
            ax_send_u64(ctx, g_few.kids[i], T_STOP, 0);
        atomic_store(&g_few.go_done, 1);
    }
}

static void slots_freed_in_a_turn_reach_outside_spawners_when_it_ends(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_few, 0, sizeof g_few);
    ax_config_t c;
    cfg_synth(&c, 1);
    c.max_actors = 1024;
    ax_engine_t *e = make_engine(&c);
    ax_ref_t d;
    ax_spawn_opts_t od = {.size = sizeof od, .where = AX_ON_WORKER, .worker = 0};
    assert_int_equal(ax_engine_spawn(e, few_driver, 0, &od, &d), 0);
    start(e);
    assert_int_equal(ax_engine_send(e, d, T_PING, NULL, 0), 0);
    WAIT_FOR(g_few.filled, 1);
    assert_int_equal(atomic_load(&g_few.filled), 1023); /* every slot but the driver's */
    assert_int_equal(ax_engine_send(e, d, T_GO, NULL, 0), 0);
    WAIT_FOR(g_few.fini, FEW);
    /* The turn that freed them may still be running: retry for seconds. */
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 0, .fini = few_fini};
    for (uint32_t i = 0; i < FEW; i++) {
        ax_ref_t r;
        int rc;
        uint64_t end = now_ns() + 10000000000ull;
        while ((rc = ax_engine_spawn(e, stop_on_any, 0, &o, &r)) == -ENOMEM && now_ns() < end)
            sleep_us(1000);
        if (rc != 0)
            fail_msg("%s: outside spawn %u of %u returned %d for 10 s after %u actors stopped on "
                     "a full table: their slots stayed hidden in the owner's cache", g_test, i + 1,
                     FEW, rc, FEW);
    }
    ax_ref_t r;
    assert_int_equal(ax_engine_spawn(e, stop_on_any, 0, &o, &r), -ENOMEM); /* full again */
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
    assert_int_equal(atomic_load(&g_few.fini), 1023 + FEW); /* every actor's fini, once */
    ax_engine_destroy(e);
}

/* ---- 7: a forged reference, or one from another engine ------------------------------- */

typedef struct forge_sh {
    _Atomic uint64_t fini, tenant_got, tenant_got_forged;
} forge_sh_t;

static forge_sh_t g_forge;

static void forge_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&g_forge.fini, 1);
}

static void forge_victim(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == T_STOP)
        ax_stop_self(ctx);
}

static void forge_tenant(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->type == T_PING)
        atomic_fetch_add(&g_forge.tenant_got_forged, 1);
    atomic_fetch_add(&g_forge.tenant_got, 1);
}

static uint64_t dead_letters(ax_engine_t *e)
{
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    return st.dead_letters;
}

static void a_forged_ref_matching_a_free_slot_is_a_counted_dead_letter(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_forge, 0, sizeof g_forge);
    ax_config_t c;
    cfg_synth(&c, 1);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t victim, tenant;
    ax_spawn_opts_t o = {.size = sizeof o, .fini = forge_fini};
    assert_int_equal(ax_engine_spawn(e, forge_victim, 0, &o, &victim), 0);
    start(e);
    assert_int_equal(ax_engine_send(e, victim, T_STOP, NULL, 0), 0);
    WAIT_FOR(g_forge.fini, 1);
    /* The victim's slot is free; its next tenant will have the next
     * generation (bits 47..24 of a ref, api.md: refs are plain values).  A
     * ref with that generation, made up or from another engine, means
     * nothing here. */
    ax_ref_t forged = victim + (1ull << 24);
    assert_int_equal(ax_engine_send(e, forged, T_PING, NULL, 0), 0);
    uint64_t end = now_ns() + 10ull * 1000000000ull;
    while (dead_letters(e) < 1 && now_ns() < end)
        sleep_us(1000);
    if (dead_letters(e) != 1)
        fail_msg("%s: a message to a forged ref whose generation matches a free slot: %llu dead "
                 "letters counted after 10 s, expected 1", g_test,
                 (unsigned long long)dead_letters(e));
    /* The next actor in that slot gets only what is sent to it. */
    assert_int_equal(ax_engine_spawn(e, forge_tenant, 0, NULL, &tenant), 0);
    assert_int_equal(ax_engine_send(e, tenant, T_GO, NULL, 0), 0);
    WAIT_FOR(g_forge.tenant_got, 1);
    ax_engine_stop_when_idle(e);
    if (!wait_within(e, 10))
        fail_msg("%s: stop_when_idle did not stop the engine within 10 s", g_test);
    assert_int_equal(atomic_load(&g_forge.tenant_got), 1);
    assert_int_equal(atomic_load(&g_forge.tenant_got_forged), 0);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.dead_letters, 1);
    assert_int_equal(st.msgs_external, 2); /* STOP, GO */
    assert_int_equal(st.dropped_at_stop, 0);
    ax_engine_destroy(e);
}

/* The drain loops index the actor table with the slot bits masked to the
 * table's size (max_actors rounded up to a power of two) instead of a bound
 * test: a ref whose slot is at or above max_actors must still be a counted
 * dead letter, whether its slot lands on a never-used entry (max_actors ..
 * the power of two) or, masked, on a live actor's entry (slot + 1024 here,
 * with the live actor's generation): that actor must not run it.  Sent
 * from outside (inbox), from the victim's worker (local FIFO) and from
 * another worker (ring). */
#define ALIAS_MAX 1000u /* not a power of two: the table has 1024 entries */

typedef struct alias_sh {
    _Atomic uint64_t victim_ref, victim_got, forger_sent, forger_fail;
} alias_sh_t;

static alias_sh_t g_alias;

static void alias_victim(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_fetch_add(&g_alias.victim_got, 1);
}

/* The forged refs: the victim's worker and generation, slots beyond max_actors. */
static void alias_refs(ax_ref_t victim, ax_ref_t out[3])
{
    ax_ref_t base = victim & ~(ax_ref_t)0xffffff;
    out[0] = base | ALIAS_MAX;                                /* NULL entry below 1024 */
    out[1] = base | ((victim & 0xffffff) + 1024u);           /* masked onto the victim */
    out[2] = base | (0xffffffu & ~(ax_ref_t)1023) | (victim & 1023); /* the last alias */
}

static void alias_forger(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    (void)m;
    ax_ref_t f[3];
    alias_refs((ax_ref_t)atomic_load(&g_alias.victim_ref), f);
    for (int i = 0; i < 3; i++) { /* same worker: the inline send and the local drain loop */
        if (ax_send_u64(ctx, f[i], T_PING, (uint64_t)i) != 0)
            atomic_fetch_add(&g_alias.forger_fail, 1);
        else
            atomic_fetch_add(&g_alias.forger_sent, 1);
    }
}

static void a_ref_beyond_max_actors_is_a_dead_letter_not_an_alias(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_alias, 0, sizeof g_alias);
    ax_config_t c;
    cfg_synth(&c, 2);
    c.max_actors = ALIAS_MAX;
    ax_engine_t *e = make_engine(&c);
    ax_ref_t victim, forger[2], f[3];
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 0};
    assert_int_equal(ax_engine_spawn(e, alias_victim, 0, &o, &victim), 0);
    /* One forger beside the victim (the local FIFO's loop), one on worker 1
     * (the ring's). */
    for (uint32_t i = 0; i < 2; i++) {
        o.worker = i;
        assert_int_equal(ax_engine_spawn(e, alias_forger, 0, &o, &forger[i]), 0);
    }
    atomic_store(&g_alias.victim_ref, victim);
    alias_refs(victim, f);
    start(e);
    for (int i = 0; i < 3; i++) /* from outside: the inbox's dispatch */
        assert_int_equal(ax_engine_send(e, f[i], T_PING, NULL, 0), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ax_engine_send(e, forger[i], T_GO, NULL, 0), 0);
    uint64_t end = now_ns() + 10ull * 1000000000ull;
    while (dead_letters(e) < 9 && now_ns() < end)
        sleep_us(1000);
    ax_engine_stop_when_idle(e);
    if (!wait_within(e, 10))
        fail_msg("%s: stop_when_idle did not stop the engine within 10 s", g_test);
    if (atomic_load(&g_alias.forger_sent) != 6 || atomic_load(&g_alias.forger_fail) != 0)
        fail_msg("%s: the forgers' 6 sends: %llu accepted, %llu refused, expected 6 and 0",
                 g_test, (unsigned long long)atomic_load(&g_alias.forger_sent),
                 (unsigned long long)atomic_load(&g_alias.forger_fail));
    if (atomic_load(&g_alias.victim_got) != 0 || dead_letters(e) != 9)
        fail_msg("%s: 9 messages to slots at or above max_actors = %u (3 from outside, 3 from "
                 "the victim's worker, 3 from the other): the live actor whose slot they "
                 "alias ran %llu of them and %llu dead letters were counted; expected 0 and 9",
                 g_test, ALIAS_MAX, (unsigned long long)atomic_load(&g_alias.victim_got),
                 (unsigned long long)dead_letters(e));
    ax_engine_destroy(e);
}

/* ---- 12: early mail of a remote spawn, counted under its own source ------------------ */

/* Worker 0's driver fills the ring to worker 1, so the spawn request that
 * follows waits in worker 0's overflow; the test thread then sends to the
 * new ref from outside, and worker 1 keeps that message until the request
 * arrives.  The driver holds worker 0 (so its overflow stays put) until
 * worker 1 has taken the external message in. */
#define EARLY_FILL 64u

typedef struct early_sh {
    ax_engine_t *eng;
    _Atomic uint64_t child_ref, sink_got, child_got, inits, finis, held_too_long, fill_fail;
    _Atomic int64_t spawn_rc;
    bool stop_in_init;
} early_sh_t;

static early_sh_t g_early;

static void early_sink(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_fetch_add(&g_early.sink_got, 1);
}

static void early_child(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_fetch_add(&g_early.child_got, 1);
}

static void early_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    atomic_fetch_add(&g_early.inits, 1);
    if (g_early.stop_in_init)
        ax_stop_self(ctx); /* the early message becomes a dead letter */
}

static void early_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&g_early.finis, 1);
}

static void early_driver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    ax_ref_t sink = *(ax_ref_t *)state;
    (void)m;
    for (uint32_t i = 0; i < EARLY_FILL; i++)
        if (ax_send_u64(ctx, sink, T_PING, i) != 0)
            atomic_fetch_add(&g_early.fill_fail, 1);
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 1,
                         .init = early_init, .fini = early_fini};
    ax_ref_t child = AX_REF_NONE;
    atomic_store(&g_early.spawn_rc, ax_spawn(ctx, early_child, 0, &o, &child));
    atomic_store(&g_early.child_ref, child);
    /* hold worker 0 until worker 1 counted the external message */
    uint64_t end = now_ns() + 20ull * 1000000000ull;
    for (;;) {
        ax_worker_stats_t st;
        ax_engine_worker_stats(g_early.eng, 1, &st, NULL);
        if (st.msgs_external >= 1)
            break;
        if (now_ns() > end) {
            atomic_store(&g_early.held_too_long, 1);
            break;
        }
        sched_yield();
    }
}

static void run_early(bool stop_in_init)
{
    memset(&g_early, 0, sizeof g_early);
    g_early.stop_in_init = stop_in_init;
    ax_config_t c;
    cfg_synth(&c, 2);
    c.ring_slots = 8;
    ax_engine_t *e = make_engine(&c);
    g_early.eng = e;
    ax_ref_t sink, driver;
    ax_spawn_opts_t o1 = {.size = sizeof o1, .where = AX_ON_WORKER, .worker = 1};
    assert_int_equal(ax_engine_spawn(e, early_sink, 0, &o1, &sink), 0);
    ax_spawn_opts_t o0 = {.size = sizeof o0, .where = AX_ON_WORKER, .worker = 0,
                          .init = copy_init, .arg = &sink, .arg_len = sizeof sink};
    assert_int_equal(ax_engine_spawn(e, early_driver, sizeof sink, &o0, &driver), 0);
    start(e);
    assert_int_equal(ax_engine_send(e, driver, T_GO, NULL, 0), 0);
    WAIT_FOR(g_early.child_ref, 1);
    ax_ref_t child = atomic_load(&g_early.child_ref);
    assert_int_equal(atomic_load(&g_early.spawn_rc), 0);
    assert_int_equal(ax_engine_send(e, child, T_PING, NULL, 0), 0);
    WAIT_FOR(g_early.sink_got, EARLY_FILL);
    WAIT_FOR(g_early.inits, 1);
    ax_engine_stop_when_idle(e);
    if (!wait_within(e, 20))
        fail_msg("%s: stop_when_idle did not stop the engine within 20 s", g_test);
    assert_int_equal(atomic_load(&g_early.held_too_long), 0);
    assert_int_equal(atomic_load(&g_early.fill_fail), 0);
    assert_int_equal(atomic_load(&g_early.finis), 1);
    ax_worker_stats_t w1;
    uint64_t from[2];
    assert_int_equal(ax_engine_worker_stats(e, 1, &w1, from), 0);
    ax_worker_stats_t w0;
    assert_int_equal(ax_engine_worker_stats(e, 0, &w0, NULL), 0);
    if (w0.ring_full == 0)
        fail_msg("%s: the ring to worker 1 never filled: the spawn request did not wait and the "
                 "test proves nothing", g_test);
    /* worker 1 handled EARLY_FILL messages from worker 0 and, unless the
     * child stopped in init, the external one; a dead letter is in no
     * source's count */
    assert_int_equal(w1.msgs_remote, EARLY_FILL);
    assert_int_equal(from[0], EARLY_FILL);
    assert_int_equal(w1.msgs_external, stop_in_init ? 0 : 1);
    assert_int_equal(w1.dead_letters, stop_in_init ? 1 : 0);
    assert_int_equal(atomic_load(&g_early.child_got), stop_in_init ? 0 : 1);
    ax_engine_destroy(e);
}

static void early_mail_that_dies_is_uncounted_from_its_own_source(void **state)
{
    (void)state;
    g_test = __func__;
    run_early(true);
}

static void early_mail_delivered_after_the_spawn_counts_under_its_source(void **state)
{
    (void)state;
    g_test = __func__;
    run_early(false);
}

/* ---- 2: stop_when_idle while an outside spawn keeps failing ------------------------- */

#define FULL_SLOTS 64u
#define FULL_ROUNDS 100u

typedef struct fail_sh {
    ax_engine_t *eng;
    _Atomic uint64_t enomem, other, done;
    _Atomic int64_t last_rc;
} fail_sh_t;

static fail_sh_t g_fail;

/* Spawns until refused for shutdown (bounded: 60 s). */
static void *failing_spawner(void *arg)
{
    (void)arg;
    uint64_t end = now_ns() + 60ull * 1000000000ull;
    while (now_ns() < end) {
        ax_ref_t r;
        int rc = ax_engine_spawn(g_fail.eng, nop, 0, NULL, &r);
        if (rc == -ESHUTDOWN)
            break;
        atomic_store(&g_fail.last_rc, rc);
        atomic_fetch_add(rc == -ENOMEM ? &g_fail.enomem : &g_fail.other, 1);
    }
    atomic_store(&g_fail.done, 1);
    return NULL;
}

static void stop_when_idle_returns_while_an_outside_spawn_keeps_failing(void **state)
{
    (void)state;
    g_test = __func__;
    for (uint32_t round = 0; round < FULL_ROUNDS; round++) {
        memset(&g_fail, 0, sizeof g_fail);
        ax_config_t c;
        cfg_synth(&c, 1);
        c.max_actors = FULL_SLOTS;
        ax_engine_t *e = make_engine(&c);
        g_fail.eng = e;
        for (uint32_t i = 0; i < FULL_SLOTS; i++) {
            ax_ref_t r;
            assert_int_equal(ax_engine_spawn(e, nop, 0, NULL, &r), 0);
        }
        start(e);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, failing_spawner, NULL), 0);
        WAIT_FOR(g_fail.enomem, 1000);
        ax_engine_stop_when_idle(e);
        if (!wait_within(e, 10))
            fail_msg("%s: round %u: stop_when_idle did not stop an idle engine within 10 s while "
                     "an outside ax_engine_spawn kept failing with -ENOMEM (%llu failures)",
                     g_test, round, (unsigned long long)atomic_load(&g_fail.enomem));
        pthread_join(t, NULL);
        if (atomic_load(&g_fail.other))
            fail_msg("%s: ax_engine_spawn on a full table returned %lld", g_test,
                     (long long)atomic_load(&g_fail.last_rc));
        ax_engine_destroy(e);
    }
}

/* ---- 2b: stop_when_idle when an outside send outlives its own delivery ----------------
 * The outside sender is still counted in flight when its message has been
 * handled and the worker has parked again: that park's check refuses, and
 * it may be the last one.  Made deterministic: the worker and the sender
 * share one CPU and the sender runs SCHED_IDLE, so the wake inside
 * ax_engine_send hands the CPU to the worker, which handles the message
 * (its behaviour asks for stop_when_idle) and parks before the sender
 * leaves the call. */

#define LEAVE_ROUNDS 10u

static ax_engine_t *g_leave_eng;
static int g_leave_cpu;
static _Atomic uint64_t g_leave_parks, g_leave_got;

static void leave_pin(void *user, uint32_t worker)
{
    (void)user, (void)worker;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(g_leave_cpu, &one);
    (void)sched_setaffinity(0, sizeof one, &one); /* a failure shows as no hang either way */
}

static void leave_parked(void *user, uint32_t worker)
{
    (void)user, (void)worker;
    atomic_fetch_add(&g_leave_parks, 1);
}

static void leave_stopper(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx, (void)state, (void)m;
    atomic_fetch_add(&g_leave_got, 1);
    ax_engine_stop_when_idle(g_leave_eng);
}

typedef struct leave_arg {
    ax_ref_t to;
    _Atomic int rc, sched_rc;
} leave_arg_t;

static void *leave_sender(void *arg)
{
    leave_arg_t *a = arg;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(g_leave_cpu, &one);
    struct sched_param sp = {0};
    int r = sched_setaffinity(0, sizeof one, &one);
    if (r == 0)
        r = sched_setscheduler(0, SCHED_IDLE, &sp);
    atomic_store(&a->sched_rc, r == 0 ? 0 : -errno);
    atomic_store(&a->rc, ax_engine_send(g_leave_eng, a->to, T_GO, NULL, 0));
    return NULL;
}

static void stop_when_idle_returns_when_the_outside_sender_leaves_last(void **state)
{
    (void)state;
    g_test = __func__;
    cpu_set_t mine;
    assert_int_equal(sched_getaffinity(0, sizeof mine, &mine), 0);
    for (g_leave_cpu = 0; !CPU_ISSET(g_leave_cpu, &mine); g_leave_cpu++)
        ;
    for (uint32_t round = 0; round < LEAVE_ROUNDS; round++) {
        atomic_store(&g_leave_parks, 0);
        atomic_store(&g_leave_got, 0);
        ax_config_t c;
        cfg_synth(&c, 1);
        ax_engine_t *e = make_engine(&c);
        g_leave_eng = e;
        ax_worker_hooks_t h = {.size = sizeof h, .on_start = leave_pin, .on_park = leave_parked};
        assert_int_equal(ax_engine_add_worker_hooks(e, &h), 0);
        static leave_arg_t a;
        atomic_store(&a.rc, 1);
        assert_int_equal(ax_engine_spawn(e, leave_stopper, 0, NULL, &a.to), 0);
        start(e);
        WAIT_FOR(g_leave_parks, 1); /* the worker sleeps: the send must wake it */
        sleep_us(2000);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, leave_sender, &a), 0);
        /* WAIT_S, not 10 s: on a loaded machine the SCHED_IDLE sender runs
         * only when its CPU has nothing else to do, so finishing its call
         * (which the stop waits for, fixed or not) can take seconds. */
        bool stopped = wait_within(e, WAIT_S);
        pthread_join(t, NULL);
        if (atomic_load(&a.sched_rc))
            fail_msg("%s: could not put the sender on CPU %d at SCHED_IDLE: %d", g_test,
                     g_leave_cpu, atomic_load(&a.sched_rc));
        if (!stopped)
            fail_msg("%s: round %u: stop_when_idle did not stop an idle engine within %u s "
                     "(ax_engine_send returned %d, %llu message handled): the last "
                     "quiescence check refused because the sender was still in its call",
                     g_test, round, WAIT_S, atomic_load(&a.rc),
                     (unsigned long long)atomic_load(&g_leave_got));
        assert_int_equal(atomic_load(&a.rc), 0);
        assert_int_equal(atomic_load(&g_leave_got), 1);
        ax_engine_destroy(e);
    }
}

/* ---- 15: the arenas are empty after ax_engine_wait ------------------------------------ */

typedef struct keep_st {
    void *blob;
} keep_st_t;

static _Atomic uint64_t g_kept, g_keep_fail;

/* Worker 1: keeps every blob it gets, frees the last one in fini (during
 * shutdown, on worker 1, a block of worker 0's arena). */
static void keeper(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    keep_st_t *k = state;
    void *b = ax_msg_keep_blob(ctx, m);
    if (!b) {
        atomic_fetch_add(&g_keep_fail, 1);
        return;
    }
    if (k->blob)
        ax_blob_free(ctx, k->blob);
    k->blob = b;
    atomic_fetch_add(&g_kept, 1);
}

static void keeper_fini(ax_ctx_t *ctx, void *state)
{
    keep_st_t *k = state;
    ax_blob_free(ctx, k->blob);
    k->blob = NULL;
}

/* Worker 0: sends `count` blobs of assorted sizes to the keeper. */
static void blob_sender(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    ax_ref_t keeper_ref = *(ax_ref_t *)state;
    uint64_t count = m->payload.u64[0];
    for (uint64_t i = 0; i < count; i++) {
        size_t len = 16 + (size_t)(i * 97 % 4000);
        void *b = ax_blob_alloc(ctx, len);
        if (!b || ax_send_blob(ctx, keeper_ref, T_KEEP, b, len) != 0) {
            if (b)
                ax_blob_free(ctx, b);
            atomic_fetch_add(&g_keep_fail, 1);
        }
    }
}

static void arenas_are_empty_after_wait_when_fini_freed_a_foreign_block(void **state)
{
    (void)state;
    g_test = __func__;
    atomic_store(&g_kept, 0);
    atomic_store(&g_keep_fail, 0);
    ax_config_t c;
    cfg_synth(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t k, snd;
    ax_spawn_opts_t o1 = {.size = sizeof o1, .where = AX_ON_WORKER, .worker = 1,
                          .fini = keeper_fini};
    assert_int_equal(ax_engine_spawn(e, keeper, sizeof(keep_st_t), &o1, &k), 0);
    ax_spawn_opts_t o0 = {.size = sizeof o0, .where = AX_ON_WORKER, .worker = 0,
                          .init = copy_init, .arg = &k, .arg_len = sizeof k};
    assert_int_equal(ax_engine_spawn(e, blob_sender, sizeof k, &o0, &snd), 0);
    start(e);
    uint64_t n = 1000;
    assert_int_equal(ax_engine_send(e, snd, T_GO, &n, sizeof n), 0);
    WAIT_FOR(g_kept, n);
    ax_engine_stop_when_idle(e);
    assert_int_equal(ax_engine_wait(e), 0);
    assert_int_equal(atomic_load(&g_keep_fail), 0);
    for (uint32_t i = 0; i < 2; i++) {
        ax_worker_stats_t st;
        assert_int_equal(ax_engine_worker_stats(e, i, &st, NULL), 0);
        if (st.arena_used_bytes != 0)
            fail_msg("%s: worker %u's arena has %llu bytes in use after ax_engine_wait, though "
                     "every block was freed", g_test, i, (unsigned long long)st.arena_used_bytes);
    }
    ax_engine_destroy(e);
}

/* ---- 9: every spawn that returned 0 gets init and fini, even just before stop ------ */

typedef struct late_sh {
    ax_engine_t *eng;
    _Atomic uint64_t ok, inits, finis, bad_rc, ext_ok;
    _Atomic int64_t first_bad;
    atomic_bool quit;
} late_sh_t;

static late_sh_t g_late;

static void late_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    (void)state;
    (void)arg;
    (void)len;
    atomic_fetch_add(&g_late.inits, 1);
}

static void late_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&g_late.finis, 1);
}

static void late_note(int rc)
{
    if (rc == 0) {
        atomic_fetch_add(&g_late.ok, 1);
    } else if (rc != -ESHUTDOWN) {
        int64_t zero = 0;
        atomic_compare_exchange_strong(&g_late.first_bad, &zero, rc);
        atomic_fetch_add(&g_late.bad_rc, 1);
    }
}

/* On worker 0: spawn onto worker 1 (and self), 64 per message, forever. */
static void late_driver(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    (void)m;
    for (uint32_t i = 0; i < 64; i++) {
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = i % 8 ? 1 : 0,
                             .init = late_init, .fini = late_fini};
        ax_ref_t r;
        late_note(ax_spawn(ctx, nop, 16, &o, &r));
        if (i % 8 == 1)
            ax_send_u64(ctx, r, T_PING, i); /* some mail for the newborn, too */
    }
    ax_send_u64(ctx, ax_self(ctx), T_GO, 0);
}

static void *late_spawner(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_late.quit)) {
        ax_spawn_opts_t o = {.size = sizeof o, .init = late_init, .fini = late_fini};
        ax_ref_t r;
        int rc = ax_engine_spawn(g_late.eng, nop, 16, &o, &r);
        late_note(rc);
        if (rc == 0)
            atomic_fetch_add(&g_late.ext_ok, 1);
        if (rc == -ESHUTDOWN)
            break;
    }
    return NULL;
}

static void actors_spawned_just_before_stop_get_init_and_fini(void **state)
{
    (void)state;
    g_test = __func__;
    for (uint32_t round = 0; round < 20; round++) {
        memset(&g_late, 0, sizeof g_late);
        ax_config_t c;
        cfg_synth(&c, 2);
        c.ring_slots = 8; /* some spawn requests wait in overflow at stop */
        c.max_actors = 1u << 20;
        c.arena_bytes = 64u << 20;
        ax_engine_t *e = make_engine(&c);
        g_late.eng = e;
        ax_ref_t d;
        ax_spawn_opts_t od = {.size = sizeof od, .where = AX_ON_WORKER, .worker = 0};
        assert_int_equal(ax_engine_spawn(e, late_driver, 0, &od, &d), 0);
        start(e);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, late_spawner, NULL), 0);
        assert_int_equal(ax_engine_send(e, d, T_GO, NULL, 0), 0);
        WAIT_FOR(g_late.ext_ok, 200);
        WAIT_FOR(g_late.inits, 2000);
        ax_engine_stop(e);
        assert_int_equal(ax_engine_wait(e), 0);
        atomic_store(&g_late.quit, true);
        pthread_join(t, NULL);
        if (atomic_load(&g_late.bad_rc))
            fail_msg("%s: a spawn failed with %lld", g_test, (long long)atomic_load(&g_late.first_bad));
        uint64_t ok = atomic_load(&g_late.ok), inits = atomic_load(&g_late.inits),
                 finis = atomic_load(&g_late.finis);
        if (inits != ok || finis != ok)
            fail_msg("%s: round %u: %llu spawns returned 0, %llu inits and %llu finis ran: "
                     "actors spawned just before stop must get both, once", g_test, round,
                     (unsigned long long)ok, (unsigned long long)inits, (unsigned long long)finis);
        ax_worker_stats_t st;
        ax_engine_stats(e, &st);
        assert_int_equal(st.actors_spawned, ok + 1);
        assert_int_equal(st.actors_live, 0);
        ax_engine_destroy(e);
    }
}

/* ---- 14: stop before start ------------------------------------------------------------- */

static _Atomic uint64_t g_sbs_got;

static void sbs_actor(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_fetch_add(&g_sbs_got, 1);
}

static void a_stop_before_start_drops_the_queued_work_at_start(void **state)
{
    (void)state;
    g_test = __func__;
    memset(&g_late, 0, sizeof g_late); /* its init/fini counters */
    atomic_store(&g_sbs_got, 0);
    ax_config_t c;
    cfg_synth(&c, 2);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t a[2];
    for (uint32_t i = 0; i < 2; i++) {
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = i,
                             .init = late_init, .fini = late_fini};
        assert_int_equal(ax_engine_spawn(e, sbs_actor, 0, &o, &a[i]), 0);
        assert_int_equal(ax_engine_send(e, a[i], T_PING, NULL, 0), 0);
        assert_int_equal(ax_engine_send(e, a[i], T_PING, NULL, 0), 0);
    }
    ax_engine_stop(e);
    assert_int_equal(ax_engine_send(e, a[0], T_PING, NULL, 0), -ESHUTDOWN);
    start(e);
    if (!wait_within(e, 10))
        fail_msg("%s: the engine stopped before start did not finish within 10 s of start", g_test);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    if (atomic_load(&g_sbs_got) || st.dropped_at_stop != 4)
        fail_msg("%s: stopped before start, the engine handled %llu messages and dropped %llu at "
                 "stop: expected 0 handled, 4 dropped", g_test,
                 (unsigned long long)atomic_load(&g_sbs_got), (unsigned long long)st.dropped_at_stop);
    assert_int_equal(st.msgs_local + st.msgs_remote + st.msgs_external, 0);
    /* the actors were spawned (ax_engine_spawn returned 0): init and fini once */
    assert_int_equal(atomic_load(&g_late.inits), 2);
    assert_int_equal(atomic_load(&g_late.finis), 2);
    assert_int_equal(st.actors_live, 0);
    ax_engine_destroy(e);
}

/* ---- live counters never run backwards past zero -------------------------------------- */

/* A dead letter is taken back out of its batch's count.  The drain loop adds
 * a batch's count after the batch, so the take-back must wait for it too:
 * read in between, a counter must not wrap below zero.  Both outside sends
 * are queued before start, so they are one inbox batch: the dead letter
 * first, then a message whose behaviour reads the stats mid-batch. */
static _Atomic uint64_t g_mid_external = UINT64_MAX;

static void stats_prober(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    (void)m;
    ax_worker_stats_t s;
    if (ax_engine_worker_stats(ax_ctx_engine(ctx), ax_worker_id(ctx), &s, NULL) == 0)
        atomic_store(&g_mid_external, s.msgs_external);
    ax_engine_stop_when_idle(ax_ctx_engine(ctx));
}

static void counters_read_mid_batch_never_wrap_below_zero(void **state)
{
    (void)state;
    ax_config_t c;
    cfg_synth(&c, 1);
    ax_engine_t *e = make_engine(&c);
    ax_ref_t probe;
    assert_int_equal(ax_engine_spawn(e, stats_prober, 0, NULL, &probe), 0);
    /* the probe's reference with one generation bit flipped: stale, a dead letter */
    ax_ref_t stale = probe ^ (1ull << 24);
    assert_int_equal(ax_engine_send(e, stale, T_PING, NULL, 0), 0);
    assert_int_equal(ax_engine_send(e, probe, T_PING, NULL, 0), 0);
    start(e);
    if (!wait_within(e, WAIT_S))
        fail_msg("%s: the engine did not go idle", g_test);
    uint64_t mid = atomic_load(&g_mid_external);
    if (mid > 2)
        fail_msg("%s: msgs_external read %llu in the middle of a batch with one dead letter "
                 "and one handled message: the take-back ran before the batch was counted",
                 g_test, (unsigned long long)mid);
    ax_worker_stats_t st;
    ax_engine_stats(e, &st);
    assert_int_equal(st.dead_letters, 1);
    assert_int_equal(st.msgs_external, 1);
    ax_engine_destroy(e);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, watchdog);
    if (getenv("AXON_TEST_FILTER"))
        cmocka_set_test_filter(getenv("AXON_TEST_FILTER"));
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(remote_and_external_spawns_reuse_every_freed_slot),
        T(slots_freed_in_a_turn_reach_outside_spawners_when_it_ends),
        T(stop_when_idle_returns_while_an_outside_spawn_keeps_failing),
        T(stop_when_idle_returns_when_the_outside_sender_leaves_last),
        T(spawn_refuses_a_state_size_beyond_32_bits_everywhere),
        T(a_forged_ref_matching_a_free_slot_is_a_counted_dead_letter),
        T(a_ref_beyond_max_actors_is_a_dead_letter_not_an_alias),
        T(early_mail_that_dies_is_uncounted_from_its_own_source),
        T(early_mail_delivered_after_the_spawn_counts_under_its_source),
        T(arenas_are_empty_after_wait_when_fini_freed_a_foreign_block),
        T(actors_spawned_just_before_stop_get_init_and_fini),
        T(a_stop_before_start_drops_the_queued_work_at_start),
        T(null_ctx_is_einval_and_wait_from_a_behaviour_is_edeadlk),
        T(counters_read_mid_batch_never_wrap_below_zero),
    };
#undef T
    return cmocka_run_group_tests_name("engine/edges", tests, NULL, NULL);
}
