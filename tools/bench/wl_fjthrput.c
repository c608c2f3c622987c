/* tools/bench/wl_fjthrput.c - fjthrput: a driver on worker 0 sends `msgs`
 * messages to each of `actors` actors spread over all workers, round robin
 * (Savina Fork-Join Throughput; the peers' fjthrput).  Result: messages/s.
 *
 * Actor i lives on worker i % workers, so with 2 workers half the messages
 * cross the ring.  Flow control: at most `window` unacknowledged messages per
 * actor; an actor acknowledges every `ack` messages; the driver sends
 * `chunk` messages per turn and continues itself.
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

enum { T_START = 1, T_CONT, T_MSG, T_ACK };

typedef struct fjt_peer {
    ax_ref_t ref;
    uint64_t sent, acked;
} fjt_peer_t;

typedef struct fjt_driver {
    bench_hdr_t h;
    uint64_t cursor, done;
    bool cont_pending;
    fjt_peer_t peer[]; /* actors entries */
} fjt_driver_t;

typedef struct fjt_actor {
    bench_hdr_t h; /* idx = index at the driver */
    uint64_t count, sum;
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
    if (s->count % run->p[P_ACK] == 0 || s->count == run->p[P_MSGS]) {
        uint64_t ack[3] = {s->h.idx, s->count, s->sum};
        bench_send(ctx, run, ax_sender(ctx), T_ACK, ack, sizeof ack);
    }
}

static void fjt_pump(ax_ctx_t *ctx, fjt_driver_t *s)
{
    bench_run_t *run = s->h.run;
    const uint64_t na = run->p[P_ACTORS], msgs = run->p[P_MSGS], window = run->p[P_WINDOW];
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
    const uint64_t na = run->p[P_ACTORS], msgs = run->p[P_MSGS];
    switch (m->type) {
    case T_START:
        for (uint64_t i = 0; i < na; i++) {
            bench_hdr_t h = {.run = run, .idx = i};
            if (!bench_spawn(ctx, run, fjt_actor_beh, sizeof(fjt_actor_t), (int64_t)i, &h,
                             &s->peer[i].ref))
                return;
        }
        bench_start(run);
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

static int fjt_setup(bench_run_t *run)
{
    if (run->p[P_WINDOW] < 2 * run->p[P_ACK]) {
        bench_fail(run, "fjthrput: window = %llu must be at least 2 x ack = %llu; raise "
                        "fjthrput.window",
                   (unsigned long long)run->p[P_WINDOW], (unsigned long long)(2 * run->p[P_ACK]));
        return -EINVAL;
    }
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
