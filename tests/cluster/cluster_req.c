/* tests/cluster/cluster_req.c - sends from outside threads, requests and
 * sponsors across two cluster nodes (issue 15: "sending to a reference on
 * another node is the same call as a local send, with the same promises").
 *
 *   cluster_req [--seconds S]   forks node 0 (asks) and node 1 (answers)
 *
 * Node 1 (passive) runs: ctr (counts T_SEQ per outside thread, checks
 * order), srv (echo, blob replies, ax_reply_error, silence), holder (stops
 * while holding a request), holder2 (holds one; T_DIE kills its process),
 * gone (stopped before anyone asks), sink (counts a sponsored actor's
 * messages).  Node 0 checks, from its main thread and its actors:
 *  1. ax_engine_send from two outside threads to ctr: 0 every time, every
 *     message arrives once and in order per thread; to a node that is not
 *     up: -EHOSTUNREACH; ax_engine_request / ax_engine_call to another
 *     node's actor and ax_forward of an outside caller's request there:
 *     -EXDEV (documented refusal).
 *  2. ax_request from a behaviour to node 1: inline and blob replies (with
 *     and without a timeout), ax_reply_error (-EPERM), a timeout
 *     (-ETIMEDOUT), a target that stops holding the request (-ESRCH by
 *     DOWN), a stopped target (-ESRCH by the dead letter's error reply),
 *     and node 1 killed while two requests are pending (-ESRCH by DOWN
 *     "unreachable"); every continuation runs exactly once.
 *  3. A sponsored actor with a budget of 5 messages: a send to a node that
 *     is not up fails (-EHOSTUNREACH) and is refunded, then 5 of 10 sends
 *     to node 1 succeed and 5 get -EDQUOT; node 1 gets exactly 5.
 * Exit 0 when both nodes did what was expected (node 1 ends killed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "axon/axon.h"
#include "cluster_test.h"
#include "axon/cluster.h"
#include "axon/failure.h"
#include "axon/request.h"

enum { T_SEQ = 1, T_QUERY, T_ECHO, T_BLOBREQ, T_ERR, T_SILENT, T_HOLD, T_DIE, T_STOP, T_SP,
       T_GO, T_QCTR, T_QSINK, T_KILLPHASE, T_FWD };

#define NTHR 2
#define NSEQ 1000
#define SP_LIMIT 5
#define SP_SENDS 10
/* Request indexes (node 0's driver). */
#define R_ECHO_W 0     /* 0..49: echo, no timeout (watched) */
#define R_ECHO_T 50    /* 50..99: echo, 20 s timeout */
#define R_BLOB 100     /* 100..103: blob replies */
#define R_ERR_T 104    /* ax_reply_error, with a timeout */
#define R_ERR_W 105    /* ax_reply_error, watched */
#define R_SILENT 106   /* never answered: 300 ms timeout */
#define R_HOLDSTOP 107 /* target stops holding it */
#define R_GONE 108     /* target stopped before */
#define R_PHASE1 109   /* requests of phase 1 */
#define R_KILL_HOLD 109  /* holder2 holds it, then its node is killed */
#define R_KILL_SILENT 110 /* srv never answers, watched, node killed */
#define NREQ 111
#define Q_CTR 1000
#define Q_SINK 1001
static const size_t BLOBS[4] = { 100, 4097, 65536, 1u << 20 };

static uint32_t g_node, g_seconds = 120;
static ax_engine_t *g_eng;
static _Atomic uint64_t g_errors;
static ax_ref_t r_ctr, r_srv, r_holder, r_holder2, r_gone, r_sink, r_drv, r_spa, r_fwd;

typedef struct {
    _Atomic uint32_t calls, bad;
    _Atomic int status;
} res_t;
static res_t g_res[NREQ];
static _Atomic uint64_t g_ctr_recv = UINT64_MAX, g_ctr_errs, g_sink_recv = UINT64_MAX;
static _Atomic int g_sp_ok, g_sp_quota, g_sp_other, g_sp_unreach, g_sp_done;



static uint8_t pat(size_t size, size_t i) { return (uint8_t)(size * 3u + i * 7u); }

/* A reference of node `node` with r's other fields (docs/cluster.md: the
 * node is bits 63..56): a node that does not exist. */
static ax_ref_t on_node(ax_ref_t r, uint32_t node)
{
    return (r & ~(0xFFull << 56)) | ((uint64_t)node << 56);
}

/* ---- node 1 ------------------------------------------------------------------ */

typedef struct {
    uint64_t next[NTHR], recv, errs;
} ctr_t;

static void on_ctr(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    ctr_t *c = state;
    if (m->type == T_SEQ) {
        uint64_t v[2];
        memcpy(v, m->payload.data, sizeof v);
        if (ax_sender(ctx) != AX_REF_NONE || v[0] >= NTHR || v[1] != c->next[v[0]]) {
            fprintf(stderr, "node 1: ctr: thread %llu seq %llu, expected %llu, from %#llx\n",
                    (unsigned long long)v[0], (unsigned long long)v[1],
                    (unsigned long long)(v[0] < NTHR ? c->next[v[0]] : 0),
                    (unsigned long long)ax_sender(ctx));
            c->errs++;
        }
        if (v[0] < NTHR)
            c->next[v[0]] = v[1] + 1;
        c->recv++;
    } else if (m->type == T_QUERY) {
        uint64_t r[2] = { c->recv, c->errs };
        ax_reply(ctx, T_QUERY, r, sizeof r);
    }
}

static void on_srv(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    ax_req_t rq = ax_request_of(m);
    switch (m->type) {
    case T_ECHO: {
        uint64_t v = m->payload.u64[0] + 1;
        if (ax_reply(ctx, T_ECHO, &v, sizeof v))
            fprintf(stderr, "node 1: echo reply failed\n");
        return;
    }
    case T_BLOBREQ: {
        size_t size = (size_t)m->payload.u64[0];
        unsigned char *p = ax_blob_alloc(ctx, size);
        if (!p) {
            ax_reply_error(ctx, rq, -ENOMEM);
            return;
        }
        for (size_t i = 0; i < size; i++)
            p[i] = pat(size, i);
        if (ax_reply_blob_to(ctx, rq, T_BLOBREQ, p, size))
            ax_blob_free(ctx, p);
        return;
    }
    case T_ERR:
        ax_reply_error(ctx, rq, -EPERM);
        return;
    default: /* T_SILENT: never answered */
        return;
    }
}

static void on_holder(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == T_HOLD && ax_msg_is_request(m))
        ax_stop_self(ctx); /* holding it, unanswered: DOWN ends it */
}

static void on_holder2(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx, (void)state;
    if (m->type == T_DIE) {
        /* After the request (same pair, in order): this node dies holding it. */
        fflush(stdout);
        raise(SIGKILL);
    }
}

static void on_gone(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type == T_STOP) {
        /* Named only now: whoever finds the name finds it stopped (the stop
         * runs when this behaviour returns, before this worker handles
         * anything else). */
        if (ax_cluster_register(ax_ctx_engine(ctx), "gone", ax_self(ctx)) != 0)
            fprintf(stderr, "node 1: register gone failed\n");
        ax_stop_self(ctx);
    }
}

static void on_sink(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    uint64_t *n = state;
    if (m->type == T_SP)
        (*n)++;
    else if (m->type == T_QUERY) {
        uint64_t r[2] = { *n, 0 };
        ax_reply(ctx, T_QUERY, r, sizeof r);
    }
}

/* ---- node 0 ------------------------------------------------------------------ */

static int expected_status(uint32_t i)
{
    if (i == R_ERR_T || i == R_ERR_W)
        return -EPERM;
    if (i == R_SILENT)
        return -ETIMEDOUT;
    if (i == R_HOLDSTOP || i == R_GONE || i == R_KILL_HOLD || i == R_KILL_SILENT)
        return -ESRCH;
    return 0;
}

static void on_reply(ax_ctx_t *ctx, void *state, void *cont, int status, const ax_msg_t *reply)
{
    (void)ctx, (void)state;
    uint32_t i;
    memcpy(&i, cont, sizeof i);
    if (i == Q_CTR || i == Q_SINK) {
        if (status == 0) {
            uint64_t r[2];
            memcpy(r, reply->payload.data, sizeof r);
            if (i == Q_CTR) {
                atomic_store(&g_ctr_errs, r[1]);
                atomic_store(&g_ctr_recv, r[0]);
            } else {
                atomic_store(&g_sink_recv, r[0]);
            }
        } else {
            ERR("query %u: status %d", i, status);
        }
        return;
    }
    if (i >= NREQ) {
        ERR("continuation with context %u", i);
        return;
    }
    res_t *r = &g_res[i];
    atomic_store(&r->status, status);
    bool bad = status != expected_status(i);
    if (!bad && status == 0) {
        if (i < R_BLOB) {
            bad = !reply || reply->type != T_ECHO || reply->payload.u64[0] != (uint64_t)i + 1;
        } else {
            size_t want = BLOBS[i - R_BLOB];
            bad = !reply || reply->type != T_BLOBREQ || !(reply->flags & AX_MSG_F_BLOB) ||
                  ax_msg_len(reply) != want;
            const unsigned char *p = reply ? ax_msg_data(reply) : NULL;
            for (size_t k = 0; !bad && k < want; k++)
                bad = p[k] != pat(want, k);
        }
    }
    if (bad)
        atomic_fetch_add(&r->bad, 1);
    atomic_fetch_add(&r->calls, 1);
}

static void ask(ax_ctx_t *ctx, uint32_t i, ax_ref_t to, uint32_t type, uint64_t v, uint64_t tmo)
{
    int rc = ax_request(ctx, to, type, &v, sizeof v, tmo, on_reply, &i, sizeof i);
    if (rc)
        ERR("ax_request %u to %#llx: %d", i, (unsigned long long)to, rc);
}

static void on_drv(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    switch (m->type) {
    case T_GO:
        for (uint32_t i = 0; i < 50; i++)
            ask(ctx, R_ECHO_W + i, r_srv, T_ECHO, i, 0);
        for (uint32_t i = 50; i < 100; i++)
            ask(ctx, R_ECHO_T + i - 50, r_srv, T_ECHO, i, 20000);
        for (uint32_t b = 0; b < 4; b++)
            ask(ctx, R_BLOB + b, r_srv, T_BLOBREQ, BLOBS[b], b & 1 ? 20000 : 0);
        ask(ctx, R_ERR_T, r_srv, T_ERR, 0, 20000);
        ask(ctx, R_ERR_W, r_srv, T_ERR, 0, 0);
        ask(ctx, R_SILENT, r_srv, T_SILENT, 0, 300);
        ask(ctx, R_HOLDSTOP, r_holder, T_HOLD, 0, 0);
        ask(ctx, R_GONE, r_gone, T_HOLD, 0, 20000);
        return;
    case T_QCTR:
    case T_QSINK: {
        uint32_t i = m->type == T_QCTR ? Q_CTR : Q_SINK;
        int rc = ax_request(ctx, m->type == T_QCTR ? r_ctr : r_sink, T_QUERY, NULL, 0, 20000,
                            on_reply, &i, sizeof i);
        if (rc)
            ERR("query request: %d", rc);
        return;
    }
    case T_KILLPHASE:
        ask(ctx, R_KILL_HOLD, r_holder2, T_HOLD, 0, 0);
        ask(ctx, R_KILL_SILENT, r_srv, T_SILENT, 0, 0);
        if (ax_send(ctx, r_holder2, T_DIE, NULL, 0))
            ERR("T_DIE send failed");
        return;
    default:
        return;
    }
}

/* The sponsored actor (budget: SP_LIMIT messages). */
static void on_spa(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type != T_GO)
        return;
    /* A failed send is refunded: the budget is whole for the loop below. */
    int rc = ax_send_u64(ctx, on_node(r_sink, 7), T_SP, 0);
    if (rc == -EHOSTUNREACH)
        atomic_fetch_add(&g_sp_unreach, 1);
    else
        ERR("sponsored send to a node that is not up: %d, expected -EHOSTUNREACH", rc);
    for (uint64_t i = 0; i < SP_SENDS; i++) {
        rc = ax_send_u64(ctx, r_sink, T_SP, i);
        if (rc == 0)
            atomic_fetch_add(&g_sp_ok, 1);
        else if (rc == -EDQUOT)
            atomic_fetch_add(&g_sp_quota, 1);
        else
            atomic_fetch_add(&g_sp_other, 1);
    }
    atomic_store(&g_sp_done, 1);
}

/* Forwards an outside caller's request to node 1: must be refused. */
static void on_fwd(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type != T_FWD)
        return;
    ax_req_t rq = ax_request_of(m);
    uint64_t v = 1;
    int rc = ax_forward(ctx, r_srv, rq, T_ECHO, &v, sizeof v);
    if (rc < 0)
        ax_reply_error(ctx, rq, rc);
}

typedef struct {
    uint64_t thr;
    int rc;
} thr_arg_t;

static void *outside_sender(void *p)
{
    thr_arg_t *a = p;
    for (uint64_t s = 0; s < NSEQ; s++) {
        uint64_t v[2] = { a->thr, s };
        int rc;
        while ((rc = ax_engine_send(g_eng, r_ctr, T_SEQ, v, sizeof v)) == -ENOMEM)
            usleep(1000);
        if (rc) {
            a->rc = rc;
            return NULL;
        }
    }
    return NULL;
}

/* Wait (bounded) until cond() or the deadline; false on timeout. */
static bool wait_for(bool (*cond)(void), double secs)
{
    double t0 = now_s();
    while (!cond()) {
        if (now_s() - t0 > secs)
            return false;
        usleep(2000);
    }
    return true;
}

static bool phase1_done(void)
{
    if (!atomic_load(&g_sp_done))
        return false;
    for (uint32_t i = 0; i < R_PHASE1; i++)
        if (!atomic_load(&g_res[i].calls))
            return false;
    return true;
}
static bool kill_done(void)
{
    return atomic_load(&g_res[R_KILL_HOLD].calls) && atomic_load(&g_res[R_KILL_SILENT].calls);
}
static bool node1_down(void) { return !ax_cluster_node_up(g_eng, 1); }

static ax_config_t node_config(uint32_t node, const char *listen, const char *peers)
{
    ax_config_t c;
    ax_config_init(&c);
    c.workers = 2;
    c.oversubscribe = true; /* unpinned: both nodes share this machine's CPUs */
    c.arena_bytes = 64u << 20;
    c.max_actors = 1024;
    c.watchdog_ms = AX_WATCHDOG_OFF;
    c.cluster_node_id = node;
    snprintf(c.cluster_listen, sizeof c.cluster_listen, "%s", listen);
    snprintf(c.cluster_peers, sizeof c.cluster_peers, "%s", peers);
    snprintf(c.cluster_cookie, sizeof c.cluster_cookie, "axon-test-cookie");
    c.cluster_heartbeat_ms = 100;
    c.cluster_timeout_ms = 2000;
    return c;
}

static int spawn(ax_behaviour_fn fn, size_t size, uint32_t worker, ax_sponsor_t *sp, ax_ref_t *out)
{
    ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_WORKER, .worker = worker, .sponsor = sp };
    int rc = ax_engine_spawn(g_eng, fn, size, &o, out);
    if (rc)
        ERR("spawn: %d", rc);
    return rc;
}

static int node1(const char *seed)
{
    ax_config_t c = node_config(1, "127.0.0.1:0", seed);
    if (ax_engine_create(&c, &g_eng)) {
        fprintf(stderr, "node 1: ax_engine_create: %s\n", ax_engine_last_error());
        return 1;
    }
    const char *names[] = { "ctr", "srv", "holder", "holder2", "sink" };
    ax_behaviour_fn fns[] = { on_ctr, on_srv, on_holder, on_holder2, on_sink };
    for (uint32_t i = 0; i < 5; i++) {
        ax_ref_t r;
        if (spawn(fns[i], sizeof(ctr_t), i % 2, NULL, &r) ||
            ax_cluster_register(g_eng, names[i], r) != 0)
            return 1;
    }
    if (spawn(on_gone, 8, 1, NULL, &r_gone) || ax_engine_start(g_eng)) {
        fprintf(stderr, "node 1: start: %s\n", ax_engine_last_error());
        return 1;
    }
    if (ax_engine_send(g_eng, r_gone, T_STOP, NULL, 0))
        return 1;
    /* Node 0 ends this process (T_DIE to holder2: SIGKILL). */
    double t0 = now_s();
    while (now_s() - t0 < 5.0 * g_seconds) /* node 0 waits up to g_seconds per step */
        usleep(10000);
    fprintf(stderr, "node 1: never killed after %u s\n", 5 * g_seconds);
    return 1;
}

static int node0(FILE *addr_out)
{
    ax_config_t c = node_config(0, "127.0.0.1:0", "");
    if (ax_engine_create(&c, &g_eng)) {
        fprintf(stderr, "node 0: ax_engine_create: %s\n", ax_engine_last_error());
        return 1;
    }
    ax_sponsor_limits_t lim = { .size = sizeof lim, .policy = AX_SPONSOR_FAIL_CALL };
    lim.limit[AX_RES_MSGS] = SP_LIMIT;
    ax_sponsor_t *sp;
    if (ax_sponsor_create(g_eng, &lim, &sp))
        return 1;
    if (spawn(on_drv, 8, 0, NULL, &r_drv) || spawn(on_spa, 8, 1, sp, &r_spa) ||
        spawn(on_fwd, 8, 1, NULL, &r_fwd) || ax_engine_start(g_eng)) {
        fprintf(stderr, "node 0: start: %s\n", ax_engine_last_error());
        return 1;
    }
    seed_write(g_eng, addr_out);
    double t0 = now_s();
    if (ax_cluster_wait_nodes(g_eng, 1, g_seconds * 1000u) != 0) {
        fprintf(stderr, "node 0: node 1 not up after %u s\n", g_seconds);
        return 1;
    }
    ax_ref_t *refs[] = { &r_ctr, &r_srv, &r_holder, &r_holder2, &r_gone, &r_sink };
    const char *names[] = { "ctr", "srv", "holder", "holder2", "gone", "sink" };
    for (uint32_t i = 0; i < 6; i++) {
        while ((*refs[i] = ax_cluster_whereis(g_eng, names[i])) == AX_REF_NONE) {
            if (now_s() - t0 > g_seconds) {
                fprintf(stderr, "node 0: name %s not found\n", names[i]);
                return 1;
            }
            usleep(2000);
        }
    }

    /* 1. Outside threads. */
    int rc = ax_engine_send(g_eng, on_node(r_ctr, 7), T_SEQ, NULL, 0);
    if (rc != -EHOSTUNREACH)
        ERR("ax_engine_send to a node that is not up: %d, expected -EHOSTUNREACH", rc);
    ax_future_t *f = NULL;
    uint64_t v = 1;
    rc = ax_engine_request(g_eng, r_srv, T_ECHO, &v, sizeof v, 1000, &f);
    if (rc != -EXDEV)
        ERR("ax_engine_request to another node: %d, expected -EXDEV", rc);
    if (!rc)
        ax_future_free(f);
    uint32_t rt;
    uint64_t rv;
    rc = ax_engine_call(g_eng, r_srv, T_ECHO, &v, sizeof v, 1000, &rt, &rv, sizeof rv, NULL);
    if (rc != -EXDEV)
        ERR("ax_engine_call to another node: %d, expected -EXDEV", rc);
    rc = ax_engine_call(g_eng, r_fwd, T_FWD, NULL, 0, 20000, &rt, &rv, sizeof rv, NULL);
    if (rc != -EXDEV)
        ERR("ax_forward of an outside caller's request to another node: %d, expected -EXDEV", rc);
    pthread_t th[NTHR];
    thr_arg_t ta[NTHR];
    for (uint32_t t = 0; t < NTHR; t++) {
        ta[t] = (thr_arg_t){ t, 0 };
        pthread_create(&th[t], NULL, outside_sender, &ta[t]);
    }
    for (uint32_t t = 0; t < NTHR; t++) {
        pthread_join(th[t], NULL);
        if (ta[t].rc)
            ERR("ax_engine_send to node 1 from outside thread %u: %d", t, ta[t].rc);
    }

    /* 2 and 3: requests, the sponsored actor. */
    ax_engine_send(g_eng, r_drv, T_GO, NULL, 0);
    ax_engine_send(g_eng, r_spa, T_GO, NULL, 0);
    if (!wait_for(phase1_done, g_seconds))
        ERR("phase 1 not complete after %u s", g_seconds);
    double tq = now_s();
    while (atomic_load(&g_ctr_recv) != (uint64_t)NTHR * NSEQ && now_s() - tq < g_seconds) {
        ax_engine_send(g_eng, r_drv, T_QCTR, NULL, 0);
        usleep(50000);
    }
    usleep(100000);
    if (atomic_load(&g_ctr_recv) != (uint64_t)NTHR * NSEQ || atomic_load(&g_ctr_errs))
        ERR("outside sends: node 1 got %llu of %u, %llu out of order",
            (unsigned long long)atomic_load(&g_ctr_recv), NTHR * NSEQ,
            (unsigned long long)atomic_load(&g_ctr_errs));
    uint64_t got;
    while (((got = atomic_load(&g_sink_recv)) == UINT64_MAX || got < SP_LIMIT) &&
           now_s() - tq < g_seconds) {
        ax_engine_send(g_eng, r_drv, T_QSINK, NULL, 0);
        usleep(50000);
    }
    usleep(300000); /* anything beyond the budget would have arrived by now */
    atomic_store(&g_sink_recv, UINT64_MAX);
    ax_engine_send(g_eng, r_drv, T_QSINK, NULL, 0);
    while (atomic_load(&g_sink_recv) == UINT64_MAX && now_s() - tq < g_seconds)
        usleep(2000);
    ax_sponsor_stats_t ss;
    ax_sponsor_stats(sp, &ss);
    printf("node 0: sponsored sends: %d ok, %d -EDQUOT, %d other, %d -EHOSTUNREACH; node 1 got "
           "%llu; sponsor used %llu messages, %llu bytes\n", atomic_load(&g_sp_ok),
           atomic_load(&g_sp_quota), atomic_load(&g_sp_other), atomic_load(&g_sp_unreach),
           (unsigned long long)atomic_load(&g_sink_recv),
           (unsigned long long)ss.used[AX_RES_MSGS], (unsigned long long)ss.used[AX_RES_BYTES]);
    if (atomic_load(&g_sp_ok) != SP_LIMIT || atomic_load(&g_sp_quota) != SP_SENDS - SP_LIMIT ||
        atomic_load(&g_sp_other) || atomic_load(&g_sp_unreach) != 1 ||
        atomic_load(&g_sink_recv) != SP_LIMIT || ss.used[AX_RES_MSGS] != SP_LIMIT)
        ERR("a sponsor with a budget of %u messages: its actor's sends to node 1 were not "
            "charged (or a failed one not refunded)", SP_LIMIT);

    /* 2, last: node 1 dies while two requests wait there. */
    ax_engine_send(g_eng, r_drv, T_KILLPHASE, NULL, 0);
    if (!wait_for(kill_done, g_seconds))
        ERR("requests pending at a killed node did not end after %u s", g_seconds);
    if (!wait_for(node1_down, g_seconds))
        ERR("node 1 still up after it was killed");
    rc = ax_engine_send(g_eng, r_ctr, T_SEQ, NULL, 0);
    if (rc != -EHOSTUNREACH)
        ERR("ax_engine_send to a node that went down: %d, expected -EHOSTUNREACH", rc);
    usleep(500000); /* a second completion would come now */
    for (uint32_t i = 0; i < NREQ; i++) {
        res_t *r = &g_res[i];
        if (atomic_load(&r->calls) != 1 || atomic_load(&r->bad))
            ERR("request %u: continuation ran %u times, status %d (expected %d)%s", i,
                atomic_load(&r->calls), atomic_load(&r->status), expected_status(i),
                atomic_load(&r->bad) ? ", wrong reply" : "");
    }
    ax_cluster_stats_t cs;
    ax_cluster_get_stats(g_eng, &cs);
    ax_conv_stats_t cv;
    ax_engine_conv_stats(g_eng, &cv);
    printf("node 0: requests %llu replies %llu timeouts %llu target_gone %llu late %llu | "
           "cluster sent %llu received %llu wire_errors %llu dead(unreach %llu stale %llu) "
           "%.2f s\n", (unsigned long long)cv.requests, (unsigned long long)cv.replies,
           (unsigned long long)cv.timeouts, (unsigned long long)cv.target_gone,
           (unsigned long long)cv.late_replies, (unsigned long long)cs.msgs_sent,
           (unsigned long long)cs.msgs_received, (unsigned long long)cs.wire_errors,
           (unsigned long long)cs.dead_unreachable, (unsigned long long)cs.dead_stale,
           now_s() - t0);
    if (cs.wire_errors)
        ERR("%llu wire errors (a message node 1 sent was refused)",
            (unsigned long long)cs.wire_errors);
    fflush(stdout);
    ax_engine_stop(g_eng);
    ax_engine_wait(g_eng);
    ax_engine_destroy(g_eng);
    ax_sponsor_destroy(sp);
    return atomic_load(&g_errors) ? 1 : 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            g_seconds = (uint32_t)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: cluster_req [--seconds S]\n");
            return 2;
        }
    }
    int pfd[2];
    if (pipe(pfd))
        return 1;
    fflush(stdout);
    pid_t p0 = fork();
    if (p0 == 0) {
        close(pfd[0]);
        g_node = 0;
        exit(node0(fdopen(pfd[1], "w")));
    }
    close(pfd[1]);
    char seed[64] = "";
    if (seed_read(pfd[0], p0, seed, sizeof seed))
        return 1;
    fflush(stdout);
    pid_t p1 = fork();
    if (p1 == 0) {
        g_node = 1;
        exit(node1(seed));
    }
    int st0, st1, bad = 0;
    waitpid(p0, &st0, 0);
    if (!(WIFEXITED(st0) && WEXITSTATUS(st0) == 0)) {
        fprintf(stderr, "launcher: node 0 failed (status %#x)\n", st0);
        bad = 1;
        kill(p1, SIGKILL);
    }
    waitpid(p1, &st1, 0);
    if (!bad && !(WIFSIGNALED(st1) && WTERMSIG(st1) == SIGKILL)) {
        fprintf(stderr, "launcher: node 1 ended with status %#x, expected SIGKILL\n", st1);
        bad = 1;
    }
    printf("cluster_req: %s\n", bad ? "FAIL" : "PASS");
    return bad;
}
