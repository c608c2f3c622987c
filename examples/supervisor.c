/* examples/supervisor.c - a small supervision tree that survives injected
 * failures and prints its restarts.
 *
 *   supervisor [FAILURES]        (default 20)
 *
 *   root (one-for-one)
 *    |- counter   permanent: counts the work it is given
 *    |- store     supervisor (rest-for-one)
 *    |   |- db    permanent
 *    |   `- api   transient: restarted after a failure, not after a normal stop
 *    `- audit     temporary: never restarted
 *
 * A chaos actor sends random work to counter, db and api, and every 100 ms
 * asks one of them to fail (ax_fail): slower than the supervisors' restart
 * intensity (10 per second), so the tree survives.  The supervisors restart
 * the failed child in place: its reference stays valid, so the chaos actor
 * keeps sending to the same references, and work that arrived while the
 * child was down is delivered to the new incarnation.  rest-for-one: when db
 * fails, api (started after it) is restarted too.  After FAILURES failures
 * the chaos actor shuts the tree down (children in reverse start order,
 * every fini once) and stops the engine.
 *
 * Public API only: axon/axon.h, axon/failure.h, axon/io.h (a timer) and
 * axon/supervisor.h.  Everything runs on one worker, so the event hook and
 * the chaos actor share the table of references without locks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/axon.h"
#include "axon/failure.h"
#include "axon/io.h"
#include "axon/supervisor.h"

enum { T_START = 1, T_TICK, T_WORK, T_FAIL };
enum { C_COUNTER, C_DB, C_API, C_AUDIT, NCHILD };

/* ---- the workers ----------------------------------------------------------- */

typedef struct worker_state {
    uint64_t done; /* work handled by this incarnation */
} worker_state_t;

static void worker(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    worker_state_t *s = state;
    if (m->type == T_FAIL)
        ax_fail(ctx, 13, "injected");
    else if (m->type == T_WORK)
        s->done++;
}

static const char *const g_names[NCHILD] = {"counter", "db", "api", "audit"};
static uint64_t g_finis; /* every incarnation's fini, once */

static void worker_fini(ax_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    g_finis++;
}

/* ---- the tree ---------------------------------------------------------------- */

static ax_ref_t g_ref[NCHILD]; /* from the STARTED events; stable across restarts */
static uint64_t g_restarts;

static int child_index(const char *name)
{
    for (int i = 0; i < NCHILD; i++)
        if (name && strcmp(name, g_names[i]) == 0)
            return i;
    return -1;
}

static void on_event(void *user, const ax_sup_event_t *ev)
{
    const char *sup = user;
    int i = child_index(ev->name);
    switch (ev->kind) {
    case AX_SUP_EV_STARTED:
        if (i >= 0)
            g_ref[i] = ev->child;
        printf("%s: started %s\n", sup, ev->name);
        break;
    case AX_SUP_EV_RESTARTED:
        g_restarts++;
        printf("%s: restarted %s in place (same reference 0x%016llx) after it stopped: %s",
               sup, ev->name, (unsigned long long)ev->child, ax_reason_name(ev->reason.kind));
        if (ev->reason.kind == AX_REASON_FAILED)
            printf(" (code %d, \"%s\")", ev->reason.code, ev->reason.text);
        printf("; restart %llu of this child\n", (unsigned long long)ev->restarts);
        break;
    case AX_SUP_EV_STOPPED:
        printf("%s: %s stopped for good (%s)\n", sup, ev->name, ax_reason_name(ev->reason.kind));
        break;
    case AX_SUP_EV_ESCALATED:
        printf("%s: too many restarts: giving up\n", sup);
        break;
    default:
        break;
    }
}

#define WORKER(nm, pol)                                                                  \
    { .restart = (pol), .name = (nm), .fn = worker, .state_size = sizeof(worker_state_t), \
      .fini = worker_fini }

static const ax_child_spec_t store_kids[] = {WORKER("db", AX_CHILD_PERMANENT),
                                             WORKER("api", AX_CHILD_TRANSIENT)};
static const ax_sup_spec_t store = {.strategy = AX_SUP_REST_FOR_ONE, .intensity = 10,
                                    .period_ms = 1000, .nchildren = 2, .children = store_kids,
                                    .on_event = on_event, .user = "store"};
static const ax_child_spec_t root_kids[] = {
    WORKER("counter", AX_CHILD_PERMANENT),
    {.restart = AX_CHILD_PERMANENT, .name = "store", .sup = &store},
    WORKER("audit", AX_CHILD_TEMPORARY)};
static const ax_sup_spec_t root = {.strategy = AX_SUP_ONE_FOR_ONE, .intensity = 10,
                                   .period_ms = 1000, .nchildren = 3, .children = root_kids,
                                   .on_event = on_event, .user = "root"};

/* ---- chaos ---------------------------------------------------------------------- */

typedef struct chaos {
    uint64_t failures_left, ticks, rng, mon;
    ax_ref_t root;
} chaos_t;

static int g_result = 1; /* 0 once the tree shut down normally */

static uint64_t rnd(chaos_t *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return c->rng;
}

static void chaos(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    chaos_t *c = state;
    switch (m->type) {
    case T_START: {
        c->rng = 0x9E3779B97F4A7C15ull;
        c->failures_left = m->payload.u64[0];
        ax_spawn_opts_t o;
        memset(&o, 0, sizeof o);
        o.size = sizeof o;
        o.flags = AX_SPAWN_F_MONITOR;
        o.monitor = &c->mon;
        if (ax_sup_spawn(ctx, &root, &o, &c->root) < 0 ||
            ax_timer_every(ctx, 100, T_TICK, NULL, 0, NULL) < 0) {
            fprintf(stderr, "supervisor: cannot start the tree\n");
            ax_engine_stop(ax_ctx_engine(ctx));
        }
        ax_send(ctx, g_ref[C_AUDIT], T_FAIL, NULL, 0); /* temporary: gone for good */
        break;
    }
    case T_TICK:
        if (!c->failures_left)
            break;
        /* Some work to everyone who is still there, then one failure. */
        for (int k = 0; k < 8; k++)
            ax_send(ctx, g_ref[rnd(c) % C_AUDIT], T_WORK, NULL, 0);
        ax_send(ctx, g_ref[rnd(c) % C_AUDIT], T_FAIL, NULL, 0);
        if (--c->failures_left == 0) {
            printf("chaos: done; shutting the tree down\n");
            ax_sup_shutdown(ctx, c->root);
        }
        break;
    case AX_TYPE_DOWN: {
        ax_down_t d;
        ax_down_decode(m, &d);
        printf("chaos: the tree stopped: %s\n", ax_reason_name(d.reason.kind));
        g_result = d.reason.kind == AX_REASON_NORMAL ? 0 : 1;
        ax_engine_stop(ax_ctx_engine(ctx));
        break;
    }
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    uint64_t failures = argc > 1 ? strtoull(argv[1], NULL, 10) : 20;
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_ref_t c;
    ax_config_init(&cfg);
    cfg.workers = 1; /* everything on one worker: see the file comment */
    if (ax_config_apply_env(&cfg, NULL, NULL) < 0 || ax_engine_create(&cfg, &eng) < 0) {
        fprintf(stderr, "supervisor: %s\n", ax_engine_last_error());
        return 1;
    }
    if (ax_engine_spawn(eng, chaos, sizeof(chaos_t), NULL, &c) < 0 || ax_engine_start(eng) < 0 ||
        ax_engine_send(eng, c, T_START, &failures, sizeof failures) < 0) {
        fprintf(stderr, "supervisor: cannot start the engine\n");
        ax_engine_destroy(eng);
        return 1;
    }
    ax_engine_wait(eng);
    int result = g_result; /* written on the worker; ax_engine_wait joined it */
    printf("supervisor: %llu failures injected, %llu restarts, %llu finis; tree %s\n",
           (unsigned long long)failures, (unsigned long long)g_restarts,
           (unsigned long long)g_finis, result ? "gave up" : "shut down cleanly");
    ax_engine_destroy(eng);
    return result;
}
