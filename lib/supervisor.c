/* lib/supervisor.c - supervisors on the public API (axon/supervisor.h).
 *
 * Layering: this file includes axon/ headers only; it could live outside the
 * engine's repository (DESIGN.md "Layout").
 *
 * A supervisor is one actor.  Its state: a pointer to its spec, one record
 * per child, the restart history (a ring of `intensity` timestamps), and
 * the state of the one multi-step operation it may be in:
 *
 *   P_RUN       children running; a DOWN is handled at once (one-for-one),
 *               or starts P_GROUP (one-for-all, rest-for-one)
 *   P_GROUP     stopping children [lo, n) in reverse start order, one at a
 *               time (ax_kill, or a shutdown request to a child supervisor;
 *               the next after the previous one's DOWN), then restarting
 *               them in start order
 *   P_SHUTDOWN  the same stop sequence over all children, each released
 *               first so its stop is final (its fini runs once, its slot is
 *               freed); then the supervisor stops (or fails, escalating)
 *
 * Children are spawned with AX_SPAWN_F_RESTARTABLE, so a child that stops
 * goes dormant keeping its reference, and the supervisor (monitoring it,
 * AX_SPAWN_F_MONITOR) decides on its DOWN: ax_restart (same reference, new
 * monitor, link again) or ax_release.  A DOWN carries the monitor id: one
 * from an older monitor of the child is ignored.  Links (AX_SPAWN_F_LINK,
 * exits trapped) make children stop if the supervisor is killed; EXITs
 * from children are ignored (the DOWN says the same), an EXIT from anyone
 * else (the parent) shuts the supervisor down.
 *
 * Threading: everything runs inside the supervisor's behaviour (or init), on
 * its worker.  Memory: the state only; nothing is allocated.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "axon/axon.h"
#include "axon/failure.h"
#include "axon/supervisor.h"

#define MAX_CHILDREN 65536u
#define MAX_INTENSITY 1048576u
#define MAX_PERIOD_MS 86400000u
#define DEFAULT_INTENSITY 3u
#define DEFAULT_PERIOD_MS 5000u

enum { C_RUNNING, C_STOPPING, C_DOWN, C_GONE };
enum { P_RUN, P_GROUP, P_SHUTDOWN };

typedef struct sup_child {
    ax_ref_t ref;
    uint64_t mon;        /* monitor of the current incarnation */
    uint64_t restarts;
    ax_reason_t last;    /* why it last stopped */
    uint8_t st;          /* C_* */
    uint8_t pending;     /* stopped on its own during a group operation */
    uint8_t released;    /* ax_release sent for this incarnation: its stop is final */
    uint8_t pad_[5];
} sup_child_t;

typedef struct sup {
    const ax_sup_spec_t *spec;
    uint32_t n, intensity;
    uint64_t period_ns;
    uint32_t phase;       /* P_* */
    uint32_t lo;          /* P_GROUP/P_SHUTDOWN: the first child of the operation */
    int64_t next;         /* the next child to stop, counting down; < lo: done */
    int32_t fail_code;    /* P_SHUTDOWN: 0 to stop normally, else ax_fail's code */
    uint32_t hist_head, hist_count;
    clockid_t clock;      /* CLOCK_MONOTONIC, or _COARSE for long periods */
    uint64_t *hist;       /* intensity entries, after the children */
    sup_child_t c[];
} sup_t;

/* ---- checking specs ------------------------------------------------------------------- */

static int check_spec(const ax_sup_spec_t *s, unsigned depth, char *why, size_t len)
{
#define BAD(...)                                                                             \
    do {                                                                                     \
        if (why && len)                                                                      \
            snprintf(why, len, __VA_ARGS__);                                                 \
        return -EINVAL;                                                                      \
    } while (0)
    if (!s)
        BAD("supervisor spec is NULL");
    if (depth > 64)
        BAD("supervisor specs nest more than 64 deep (a spec that contains itself?)");
    if (s->size && s->size != sizeof *s)
        BAD("ax_sup_spec_t.size = %u, expected %zu or 0", s->size, sizeof *s);
    if (s->strategy > AX_SUP_REST_FOR_ONE)
        BAD("strategy %u: expected AX_SUP_ONE_FOR_ONE, _ONE_FOR_ALL or _REST_FOR_ONE", s->strategy);
    if (s->intensity > MAX_INTENSITY)
        BAD("intensity %u: at most %u restarts per period", s->intensity, MAX_INTENSITY);
    if (s->period_ms > MAX_PERIOD_MS)
        BAD("period_ms %u: at most %u (a day)", s->period_ms, MAX_PERIOD_MS);
    if (s->nchildren > MAX_CHILDREN)
        BAD("%u children: at most %u per supervisor; build a tree", s->nchildren, MAX_CHILDREN);
    if (s->nchildren && !s->children)
        BAD("nchildren is %u but children is NULL", s->nchildren);
    for (uint32_t i = 0; i < s->nchildren; i++) {
        const ax_child_spec_t *c = &s->children[i];
        const char *nm = c->name ? c->name : "(unnamed)";
        if (c->size && c->size != sizeof *c)
            BAD("child %u (%s): size = %u, expected %zu or 0", i, nm, c->size, sizeof *c);
        if (c->restart > AX_CHILD_TEMPORARY)
            BAD("child %u (%s): restart policy %u: expected AX_CHILD_PERMANENT, _TRANSIENT or "
                "_TEMPORARY", i, nm, c->restart);
        if (c->flags & ~AX_CHILD_F_DROP_QUEUED)
            BAD("child %u (%s): unknown flags 0x%x", i, nm, c->flags & ~AX_CHILD_F_DROP_QUEUED);
        if (c->where > AX_ON_NODE && c->where != AX_ON_SELF)
            BAD("child %u (%s): where = %u: expected AX_ON_DEFAULT, AX_ON_SELF, AX_ON_WORKER or "
                "AX_ON_NODE", i, nm, c->where);
        if (c->sup) {
            if (c->fn || c->state_size || c->init || c->fini || c->arg || c->arg_len)
                BAD("child %u (%s): a supervisor child (sup set) takes no fn, state_size, "
                    "init, fini or arg", i, nm);
            int rc = check_spec(c->sup, depth + 1, why, len);
            if (rc < 0)
                return rc;
        } else {
            if (!c->fn)
                BAD("child %u (%s): fn is NULL (and no sup spec)", i, nm);
            if (c->arg_len > AX_SPAWN_ARG_MAX || (c->arg_len && !c->arg))
                BAD("child %u (%s): arg_len %zu: at most %u bytes, and arg must not be NULL", i,
                    nm, c->arg_len, AX_SPAWN_ARG_MAX);
        }
    }
    return 0;
#undef BAD
}

int ax_sup_check(const ax_sup_spec_t *spec, char *why, size_t why_len)
{
    if (why && why_len)
        why[0] = '\0';
    return check_spec(spec, 0, why, why_len);
}

static uint32_t eff_intensity(const ax_sup_spec_t *s)
{
    return s->intensity ? s->intensity : DEFAULT_INTENSITY;
}

size_t ax_sup_state_size(const ax_sup_spec_t *spec)
{
    if (!spec || check_spec(spec, 0, NULL, 0) < 0)
        return 0;
    /* At most 64 KiB children x 64 B + 1 Mi x 8 B: no overflow. */
    return sizeof(sup_t) + (size_t)spec->nchildren * sizeof(sup_child_t) +
           (size_t)eff_intensity(spec) * sizeof(uint64_t);
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* Restart times.  With a period of 100 ms or more the coarse clock (the
 * kernel's tick, 1 to 4 ms: at most 4% of the period) is enough, and it
 * costs a few ns where CLOCK_MONOTONIC's TSC read cost 40 ns a restart
 * here (8% of fault/restart in a perf profile). */
#define COARSE_MIN_PERIOD_NS 100000000u

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void event(ax_ctx_t *ctx, sup_t *s, uint32_t kind, uint32_t i)
{
    const ax_sup_spec_t *sp = s->spec;
    if (!sp->on_event)
        return;
    ax_sup_event_t ev = {.kind = kind, .index = i, .supervisor = ax_self(ctx),
                         .child = s->c[i].ref, .name = sp->children[i].name,
                         .reason = s->c[i].last, .restarts = s->c[i].restarts};
    sp->on_event(sp->user, &ev);
}

static const ax_child_spec_t *cspec(const sup_t *s, uint32_t i) { return &s->spec->children[i]; }

static int spawn_child(ax_ctx_t *ctx, sup_t *s, uint32_t i)
{
    const ax_child_spec_t *c = cspec(s, i);
    ax_spawn_opts_t o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.where = c->where;
    o.worker = c->worker;
    o.node = c->node;
    o.flags = AX_SPAWN_F_RESTARTABLE | AX_SPAWN_F_MONITOR | AX_SPAWN_F_LINK;
    o.monitor = &s->c[i].mon;
    if (c->sup) {
        o.init = ax_sup_init;
        o.fini = ax_sup_fini;
        o.arg = &c->sup; /* the field of the caller's spec: a pointer to the child's spec */
        o.arg_len = sizeof c->sup;
        return ax_spawn(ctx, ax_sup_behaviour, ax_sup_state_size(c->sup), &o, &s->c[i].ref);
    }
    o.init = c->init;
    o.fini = c->fini;
    o.arg = c->arg;
    o.arg_len = c->arg_len;
    return ax_spawn(ctx, c->fn, c->state_size, &o, &s->c[i].ref);
}

/* Restart dormant child i in place.  0 or -errno (then the supervisor gives up). */
static int restart_child(ax_ctx_t *ctx, sup_t *s, uint32_t i)
{
    sup_child_t *c = &s->c[i];
    uint32_t flags = AX_RESTART_F_MONITOR;
    if (cspec(s, i)->flags & AX_CHILD_F_DROP_QUEUED)
        flags |= AX_RESTART_F_DROP_QUEUED;
    int rc = ax_restart(ctx, c->ref, flags, &c->mon);
    if (rc < 0)
        return rc;
    c->st = C_RUNNING; /* from here a shutdown must stop it */
    c->released = 0;
    c->restarts++;
    event(ctx, s, AX_SUP_EV_RESTARTED, i);
    return ax_link(ctx, c->ref); /* links are not restored by a restart */
}

static void release_child(ax_ctx_t *ctx, sup_t *s, uint32_t i)
{
    if (!s->c[i].released)
        ax_release(ctx, s->c[i].ref); /* an error leaves it dormant until the engine stops */
    s->c[i].released = 1;
    s->c[i].st = C_GONE;
    event(ctx, s, AX_SUP_EV_STOPPED, i);
}

/* Ask running child i to stop: a supervisor child shuts its own children
 * down first; a worker child is killed. */
static void terminate_child(ax_ctx_t *ctx, sup_t *s, uint32_t i)
{
    int rc = cspec(s, i)->sup ? ax_send(ctx, s->c[i].ref, AX_SUP_TYPE_SHUTDOWN, NULL, 0)
                              : ax_kill(ctx, s->c[i].ref);
    (void)rc; /* -ENOMEM/-ESHUTDOWN: its DOWN never comes; the engine is in trouble anyway */
    s->c[i].st = C_STOPPING;
}

/* One more restart now: false when that would be more than `intensity`
 * within the period.  hist is a ring of the last restarts' times, oldest
 * at hist_head. */
static bool intensity_ok(sup_t *s)
{
    uint64_t t = now_ns(s->clock);
    if (s->hist_count == s->intensity) {
        if (t - s->hist[s->hist_head] < s->period_ns)
            return false;
        s->hist_head = (s->hist_head + 1) % s->intensity; /* forget the oldest */
        s->hist_count--;
    }
    s->hist[(s->hist_head + s->hist_count) % s->intensity] = t;
    s->hist_count++;
    return true;
}

static void step(ax_ctx_t *ctx, sup_t *s);
static void handle_stop(ax_ctx_t *ctx, sup_t *s, uint32_t i);

static void begin_shutdown(ax_ctx_t *ctx, sup_t *s, int32_t fail_code)
{
    if (s->phase == P_SHUTDOWN)
        return;
    s->phase = P_SHUTDOWN;
    s->fail_code = fail_code;
    s->lo = 0;
    s->next = (int64_t)s->n - 1;
    step(ctx, s);
}

/* Advance the stop sequence of P_GROUP / P_SHUTDOWN: stop the next running
 * child and wait for its DOWN, or finish the operation. */
static void step(ax_ctx_t *ctx, sup_t *s)
{
    for (; s->next >= (int64_t)s->lo; s->next--) {
        uint32_t k = (uint32_t)s->next;
        sup_child_t *c = &s->c[k];
        if (c->st == C_STOPPING)
            return; /* its DOWN is on its way */
        if (s->phase == P_SHUTDOWN) {
            if (c->st == C_RUNNING) {
                ax_release(ctx, c->ref); /* its stop is final: no dormant incarnation */
                c->released = 1;
                terminate_child(ctx, s, k);
                return;
            }
            if (c->st == C_DOWN)
                release_child(ctx, s, k);
            continue;
        }
        if (c->st == C_RUNNING) {
            terminate_child(ctx, s, k);
            return;
        }
    }
    if (s->phase == P_SHUTDOWN) {
        if (s->fail_code)
            ax_fail(ctx, s->fail_code, s->fail_code == AX_SUP_ESCALATED ? "intensity" : "start");
        else
            ax_stop_self(ctx);
        return;
    }
    /* P_GROUP: every child of the group is down; restart them in order. */
    s->phase = P_RUN;
    for (uint32_t k = s->lo; k < s->n; k++) {
        if (s->c[k].st != C_DOWN || s->c[k].pending)
            continue;
        if (cspec(s, k)->restart == AX_CHILD_TEMPORARY) {
            release_child(ctx, s, k);
        } else if (restart_child(ctx, s, k) < 0) {
            begin_shutdown(ctx, s, AX_SUP_START_FAILED);
            return;
        }
    }
    /* Children that stopped on their own meanwhile: handle them now, in
     * order; one may start another group operation. */
    for (uint32_t k = 0; k < s->n && s->phase == P_RUN; k++)
        if (s->c[k].pending) {
            s->c[k].pending = 0;
            handle_stop(ctx, s, k);
        }
}

/* Child i stopped on its own (its DOWN arrived while running): apply its
 * restart policy and the strategy. */
static void handle_stop(ax_ctx_t *ctx, sup_t *s, uint32_t i)
{
    sup_child_t *c = &s->c[i];
    uint32_t pol = cspec(s, i)->restart;
    c->st = C_DOWN;
    if (pol == AX_CHILD_TEMPORARY || (pol == AX_CHILD_TRANSIENT && !ax_reason_abnormal(&c->last))) {
        release_child(ctx, s, i);
        return;
    }
    if (!intensity_ok(s)) {
        event(ctx, s, AX_SUP_EV_ESCALATED, i);
        begin_shutdown(ctx, s, AX_SUP_ESCALATED);
        return;
    }
    if (s->spec->strategy == AX_SUP_ONE_FOR_ONE) {
        if (restart_child(ctx, s, i) < 0)
            begin_shutdown(ctx, s, AX_SUP_START_FAILED);
        return;
    }
    s->phase = P_GROUP;
    s->lo = s->spec->strategy == AX_SUP_ONE_FOR_ALL ? 0 : i;
    s->next = (int64_t)s->n - 1;
    step(ctx, s);
}

static int find_child(const sup_t *s, ax_ref_t ref)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->c[i].ref == ref)
            return (int)i;
    return -1;
}

static void on_down(ax_ctx_t *ctx, sup_t *s, const ax_msg_t *m)
{
    ax_down_t d;
    if (ax_down_decode(m, &d) < 0)
        return;
    int k = find_child(s, d.target);
    if (k < 0 || s->c[k].mon != d.monitor)
        return; /* not ours, or from an older monitor */
    sup_child_t *c = &s->c[k];
    c->mon = 0;
    c->last = d.reason;
    switch (c->st) {
    case C_STOPPING: /* the stop we asked for */
        if (s->phase == P_SHUTDOWN)
            release_child(ctx, s, (uint32_t)k); /* dormant if a group operation stopped it */
        else
            c->st = C_DOWN;
        step(ctx, s);
        return;
    case C_RUNNING:
        if (s->phase == P_SHUTDOWN) {
            c->st = C_DOWN; /* released when the sequence reaches it */
            return;
        }
        if (s->phase == P_GROUP) {
            c->st = C_DOWN;
            c->pending = 1; /* decided when the group operation ends */
            return;
        }
        handle_stop(ctx, s, (uint32_t)k);
        return;
    default:
        return; /* C_DOWN, C_GONE: no monitor is active, cannot happen */
    }
}

/* ---- the actor ----------------------------------------------------------------------------- */

void ax_sup_init(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    sup_t *s = state;
    const ax_sup_spec_t *spec;
    if (arg_len != sizeof spec || !arg) {
        ax_fail(ctx, EINVAL, "sup arg");
        return;
    }
    memcpy(&spec, arg, sizeof spec);
    s->spec = spec;
    s->n = spec->nchildren;
    s->intensity = eff_intensity(spec);
    s->period_ns = (uint64_t)(spec->period_ms ? spec->period_ms : DEFAULT_PERIOD_MS) * 1000000u;
    s->clock = s->period_ns >= COARSE_MIN_PERIOD_NS ? CLOCK_MONOTONIC_COARSE : CLOCK_MONOTONIC;
    s->hist = (uint64_t *)(void *)&s->c[s->n];
    s->phase = P_RUN;
    ax_trap_exits(ctx, true);
    for (uint32_t i = 0; i < s->n; i++)
        s->c[i].st = C_GONE;
    for (uint32_t i = 0; i < s->n; i++) {
        if (spawn_child(ctx, s, i) < 0) {
            /* Stop what started (reverse order), then fail. */
            begin_shutdown(ctx, s, AX_SUP_START_FAILED);
            return;
        }
        s->c[i].st = C_RUNNING;
        event(ctx, s, AX_SUP_EV_STARTED, i);
    }
}

/* The supervisor stops (killed, failed, shut down, or the engine stops):
 * nobody is left to restart its children, so every child not yet released
 * is released now.  Sent before the stop's EXITs go out on the same links
 * (fini runs first; one sender, so per-pair order): a running child is no
 * longer restartable when its link stops it, so it ends for good instead
 * of going dormant forever with its slot and its mail held; a child
 * already dormant ends now (its held mail becomes dead letters).  After a
 * shutdown every child is released already and this sends nothing; when
 * the engine is stopping the sends fail and the engine's own stop runs
 * each fini. */
void ax_sup_fini(ax_ctx_t *ctx, void *state)
{
    sup_t *s = state;
    if (!s->spec)
        return; /* init refused its argument */
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->c[i].ref != AX_REF_NONE && !s->c[i].released) {
            (void)ax_release(ctx, s->c[i].ref); /* -ESHUTDOWN: the engine ends them */
            s->c[i].released = 1;
        }
    }
}

void ax_sup_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    sup_t *s = state;
    switch (m->type) {
    case AX_TYPE_DOWN:
        on_down(ctx, s, m);
        break;
    case AX_TYPE_EXIT: {
        ax_exit_t e;
        if (ax_exit_decode(m, &e) == 0 && find_child(s, e.from) < 0)
            begin_shutdown(ctx, s, ax_reason_abnormal(&e.reason) ? (int32_t)AX_REASON_LINKED : 0);
        break; /* a child's EXIT: its DOWN says the same */
    }
    case AX_SUP_TYPE_SHUTDOWN:
        begin_shutdown(ctx, s, 0);
        break;
    default:
        break; /* supervisors take no other messages */
    }
}

/* ---- spawning and shutdown ----------------------------------------------------------------- */

static int sup_opts(const ax_sup_spec_t *spec, const ax_spawn_opts_t *placement,
                    const ax_sup_spec_t *const *specp, ax_spawn_opts_t *o, size_t *size)
{
    if (ax_sup_check(spec, NULL, 0) < 0)
        return -EINVAL;
    memset(o, 0, sizeof *o);
    if (placement) {
        if ((placement->size && placement->size != sizeof *placement) || placement->init ||
            placement->fini || placement->arg || placement->arg_len ||
            (placement->flags & AX_SPAWN_F_RESTARTABLE))
            return -EINVAL;
        *o = *placement;
    }
    o->size = sizeof *o;
    o->init = ax_sup_init;
    o->fini = ax_sup_fini;
    o->arg = specp;
    o->arg_len = sizeof *specp;
    *size = ax_sup_state_size(spec);
    return 0;
}

int ax_sup_spawn(ax_ctx_t *ctx, const ax_sup_spec_t *spec, const ax_spawn_opts_t *placement,
                 ax_ref_t *out)
{
    ax_spawn_opts_t o;
    size_t size;
    int rc = sup_opts(spec, placement, &spec, &o, &size);
    return rc < 0 ? rc : ax_spawn(ctx, ax_sup_behaviour, size, &o, out);
}

int ax_engine_sup_spawn(ax_engine_t *eng, const ax_sup_spec_t *spec,
                        const ax_spawn_opts_t *placement, ax_ref_t *out)
{
    ax_spawn_opts_t o;
    size_t size;
    int rc = sup_opts(spec, placement, &spec, &o, &size);
    return rc < 0 ? rc : ax_engine_spawn(eng, ax_sup_behaviour, size, &o, out);
}

int ax_sup_shutdown(ax_ctx_t *ctx, ax_ref_t sup)
{
    return ax_send(ctx, sup, AX_SUP_TYPE_SHUTDOWN, NULL, 0);
}

int ax_engine_sup_shutdown(ax_engine_t *eng, ax_ref_t sup)
{
    return ax_engine_send(eng, sup, AX_SUP_TYPE_SHUTDOWN, NULL, 0);
}
