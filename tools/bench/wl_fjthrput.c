/* tools/bench/wl_fjthrput.c - fjthrput: a driver on worker 0 sends `msgs`
 * messages to each of `actors` actors spread over all workers, round robin
 * (Savina Fork-Join Throughput; the peers' fjthrput).  Result: messages/s.
 *
 * Actor i lives on worker i % workers, so with 2 workers half the messages
 * cross the ring.  Flow control: at most `window` unacknowledged messages per
 * actor; an actor acknowledges every `ack` messages; the driver sends
 * `chunk` messages per turn and continues itself.
 *
 * fjthrput_drivers is the same fan-out written the way a program that wants
 * every core would write it: one driver per worker, each driving its share
 * of the actors (actors / workers, the remainder to the first drivers)
 * spawned next to it; a root on worker 0 starts the drivers and waits for
 * them.  Only the start and the end cross workers.
 *
 * Check: every actor received exactly msgs messages summing to
 * msgs(msgs+1)/2 (the driver sends 1..msgs to each, in order).
 */
#include "bench.h"

#include <errno.h>

enum { P_ACTORS, P_MSGS, P_CHUNK, P_WINDOW, P_ACK };
static const bench_param_def_t fjt_params[] = {
    {"actors", 64, 64, false, 1, 1000000, "receiving actors, round robin over workers"},
    {"msgs", 300000, 20000, true, 1, 1ull << 40, "messages to each actor"},
    {"chunk", 1000, 1000, false, 1, 1000000, "messages per driver turn"},
    {"window", 2048, 2048, false, 2, 1u << 24, "unacknowledged messages per actor at most"},
    {"ack", 512, 512, false, 1, 1u << 23, "an actor acknowledges every ack messages"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_CONT, T_MSG, T_ACK, T_DONE };

typedef struct fjt_peer {
    ax_ref_t ref;
    uint64_t sent, acked;
} fjt_peer_t;

typedef struct fjt_driver {
    bench_hdr_t h; /* fjthrput_drivers: idx = driver, a = its actors, b = the root */
    uint64_t na; /* actors this driver drives */
    uint64_t cursor, done;
    bool cont_pending;
    fjt_peer_t peer[]; /* actors entries */
} fjt_driver_t;

typedef struct fjt_actor {
    bench_hdr_t h; /* idx = index at the driver */
    uint64_t count, sum;
    uint64_t acked_at; /* count at the last ack: a subtraction per message, not a divide */
} fjt_actor_t;

static void fjt_actor_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    fjt_actor_t *s = st;
    bench_run_t *run = s->h.run;
    if (m->type != T_MSG) {
        bench_fail(run, "fjthrput: actor got unexpected message type %u", m->type);
        return;
    }
    s->count++;
    s->sum += m->payload.u64[0];
    if (s->count - s->acked_at == run->p[P_ACK] || s->count == run->p[P_MSGS]) {
        uint64_t ack[3] = {s->h.idx, s->count, s->sum};
        s->acked_at = s->count;
        bench_send(ctx, run, ax_sender(ctx), T_ACK, ack, sizeof ack);
    }
}

static void fjt_pump(ax_ctx_t *ctx, fjt_driver_t *s)
{
    bench_run_t *run = s->h.run;
    const uint64_t na = s->na, msgs = run->p[P_MSGS], window = run->p[P_WINDOW];
    uint64_t sent = 0, blocked = 0;
    if (bench_aborted(run))
        return;
    while (sent < run->p[P_CHUNK] && blocked < na) {
        fjt_peer_t *p = &s->peer[s->cursor];
        s->cursor = s->cursor + 1 == na ? 0 : s->cursor + 1;
        if (p->sent == msgs || p->sent - p->acked >= window) {
            blocked++;
            continue;
        }
        blocked = 0;
        p->sent++;
        if (!bench_send_u64(ctx, run, p->ref, T_MSG, p->sent))
            return;
        sent++;
    }
    /* A full pass found every actor finished or at its window: the acks
     * resume the pump.  Otherwise continue after the queued messages. */
    if (blocked < na) {
        s->cont_pending = true;
        bench_send_u64(ctx, run, ax_self(ctx), T_CONT, 0);
    }
}

static void fjt_driver_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    fjt_driver_t *s = st;
    bench_run_t *run = s->h.run;
    const bool many = s->h.b != 0; /* one of fjthrput_drivers' drivers */
    const uint64_t msgs = run->p[P_MSGS];
    uint64_t na = s->na;
    switch (m->type) {
    case T_START:
        if (!na)
            na = s->na = many ? s->h.a : run->p[P_ACTORS];
        for (uint64_t i = 0; i < na; i++) {
            bench_hdr_t h = {.run = run, .idx = i};
            if (!bench_spawn(ctx, run, fjt_actor_beh, sizeof(fjt_actor_t),
                             many ? BENCH_HERE : (int64_t)i, &h, &s->peer[i].ref))
                return;
        }
        if (!many)
            bench_start(run);
        if (na == 0) { /* more drivers than actors */
            bench_send_u64(ctx, run, (ax_ref_t)s->h.b, T_DONE, 0);
            return;
        }
        fjt_pump(ctx, s);
        break;
    case T_CONT:
        s->cont_pending = false;
        fjt_pump(ctx, s);
        break;
    case T_ACK: {
        const uint64_t *a = m->payload.u64;
        if (a[0] >= na || a[1] > s->peer[a[0]].sent || a[1] < s->peer[a[0]].acked) {
            bench_fail(run, "fjthrput: bad ack (actor %llu, count %llu)",
                       (unsigned long long)a[0], (unsigned long long)a[1]);
            return;
        }
        s->peer[a[0]].acked = a[1];
        if (a[1] == msgs) {
            uint64_t want = msgs % 2 ? msgs * ((msgs + 1) / 2) : (msgs / 2) * (msgs + 1);
            if (a[2] != want) {
                bench_fail(run, "fjthrput: actor %llu's messages sum to %llu, expected %llu",
                           (unsigned long long)a[0], (unsigned long long)a[2],
                           (unsigned long long)want);
                return;
            }
            if (++s->done == na) {
                if (many)
                    bench_send_u64(ctx, run, (ax_ref_t)s->h.b, T_DONE, na * msgs);
                else
                    bench_finish(run, na * msgs);
                return;
            }
        }
        if (!s->cont_pending)
            fjt_pump(ctx, s);
        break;
    }
    default:
        bench_fail(run, "fjthrput: driver got unexpected message type %u", m->type);
    }
}

static int fjt_check_params(bench_run_t *run)
{
    if (run->p[P_WINDOW] < 2 * run->p[P_ACK]) {
        bench_fail(run, "fjthrput: window = %llu must be at least 2 x ack = %llu; raise "
                        "fjthrput.window",
                   (unsigned long long)run->p[P_WINDOW], (unsigned long long)(2 * run->p[P_ACK]));
        return -EINVAL;
    }
    return 0;
}

static int fjt_setup(bench_run_t *run)
{
    int rc = fjt_check_params(run);
    if (rc < 0)
        return rc;
    bench_hdr_t h = {.run = run};
    run->remote = run->workers > 1 && run->p[P_ACTORS] > 1;
    size_t sz = sizeof(fjt_driver_t) + (size_t)run->p[P_ACTORS] * sizeof(fjt_peer_t);
    return bench_spawn_ext(run, fjt_driver_beh, sz, 0, &h, &run->entry);
}

const bench_workload_t bench_wl_fjthrput = {
    .name = "fjthrput",
    .group = "fjthrput",
    .what = "one driver sends msgs messages to each of 64 actors on all workers",
    .unit = "msgs/s",
    .limit = BL_DISPATCH503,
    .limit_remote = BL_RING,
    .min_workers = 1,
    .params = fjt_params,
    .setup = fjt_setup,
    .kick = bench_kick_entry,
};

/* ---- fjthrput_drivers: one driver per worker ----------------------------------------- */

typedef struct fjt_root {
    bench_hdr_t h;
    uint64_t done, total;
} fjt_root_t;

static void fjt_root_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    fjt_root_t *s = st;
    bench_run_t *run = s->h.run;
    const uint64_t nd = run->workers, na = run->p[P_ACTORS];
    switch (m->type) {
    case T_START:
        bench_start(run);
        for (uint64_t d = 0; d < nd; d++) {
            /* driver d drives actors / nd actors, one more for the first
             * actors % nd drivers; it spawns them next to itself */
            uint64_t mine = na / nd + (d < na % nd);
            bench_hdr_t h = {.run = run, .idx = d, .a = mine, .b = ax_self(ctx)};
            ax_ref_t drv;
            size_t sz = sizeof(fjt_driver_t) + (size_t)mine * sizeof(fjt_peer_t);
            if (!bench_spawn(ctx, run, fjt_driver_beh, sz, (int64_t)d, &h, &drv) ||
                !bench_send_u64(ctx, run, drv, T_START, 0))
                return;
        }
        break;
    case T_DONE:
        s->total += m->payload.u64[0];
        if (++s->done == nd) {
            if (s->total != na * run->p[P_MSGS])
                bench_fail(run, "fjthrput_drivers: the drivers report %llu messages, expected %llu",
                           (unsigned long long)s->total,
                           (unsigned long long)(na * run->p[P_MSGS]));
            else
                bench_finish(run, s->total);
        }
        break;
    default:
        bench_fail(run, "fjthrput_drivers: root got unexpected message type %u", m->type);
    }
}

static int fjt_drivers_setup(bench_run_t *run)
{
    int rc = fjt_check_params(run);
    if (rc < 0)
        return rc;
    bench_hdr_t h = {.run = run};
    run->remote = false; /* each driver's actors are on its own worker */
    return bench_spawn_ext(run, fjt_root_beh, sizeof(fjt_root_t), 0, &h, &run->entry);
}

const bench_workload_t bench_wl_fjthrput_drivers = {
    .name = "fjthrput_drivers",
    .group = "fjthrput",
    .what = "fjthrput with one driver per worker, each fanning out to actors next to it",
    .unit = "msgs/s",
    .limit = BL_DISPATCH503,
    .limit_remote = BL_NONE,
    .min_workers = 1,
    .params = fjt_params,
    .setup = fjt_drivers_setup,
    .kick = bench_kick_entry,
};
