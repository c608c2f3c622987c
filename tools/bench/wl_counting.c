/* tools/bench/wl_counting.c - counting: one producer sends n integers to one
 * counter (Savina Counting; the peers' counting).
 *
 * The producer sends `chunk` messages per turn and then a "continue" to
 * itself, and never has more than `window` messages unacknowledged; the
 * counter acknowledges every `ack` messages.  So neither the producer's
 * overflow queue nor the counter's inbound queue grows without bound (the
 * peers flood an unbounded mailbox instead: CAF's reaches ~470 MB).
 * With 2+ workers and remote=1 the counter sits on worker 1, so every message
 * crosses the ring (limit: bare SPSC ring); otherwise it shares worker 0
 * (limit: same-thread dispatch).
 *
 * Check: the counter's final count is n and its sum is n(n+1)/2.
 */
#include "bench.h"

#include <errno.h>

enum { P_N, P_CHUNK, P_WINDOW, P_ACK, P_REMOTE };
static const bench_param_def_t cnt_params[] = {
    {"n", 30000000, 2000000, true, 1, UINT64_MAX / 4, "messages"},
    {"chunk", 1000, 1000, false, 1, 1000000, "messages per producer turn"},
    {"window", 16384, 16384, false, 2, 1u << 24, "unacknowledged messages at most"},
    {"ack", 4096, 4096, false, 1, 1u << 23, "counter acknowledges every ack messages"},
    {"remote", 1, 1, false, 0, 1, "1: counter on worker 1 (if 2+ workers)"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_CONT, T_INC, T_ACK };

typedef struct prod_state {
    bench_hdr_t h; /* a = counter */
    uint64_t sent, acked;
    bool cont_pending;
} prod_state_t;

typedef struct counter_state {
    bench_hdr_t h;
    uint64_t count, sum;
    uint64_t acked_at; /* count at the last ack: a subtraction per message, not a divide */
} counter_state_t;

static void counter_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    counter_state_t *s = st;
    bench_run_t *run = s->h.run;
    if (m->type != T_INC) {
        bench_fail(run, "counting: counter got unexpected message type %u", m->type);
        return;
    }
    s->count++;
    s->sum += m->payload.u64[0];
    if (s->count - s->acked_at == run->p[P_ACK] || s->count == run->p[P_N]) {
        uint64_t ack[2] = {s->count, s->sum};
        s->acked_at = s->count;
        bench_send(ctx, run, ax_sender(ctx), T_ACK, ack, sizeof ack);
    }
}

static void prod_pump(ax_ctx_t *ctx, prod_state_t *s)
{
    bench_run_t *run = s->h.run;
    const uint64_t n = run->p[P_N], window = run->p[P_WINDOW];
    uint64_t k = 0;
    if (bench_aborted(run))
        return;
    while (k < run->p[P_CHUNK] && s->sent < n && s->sent - s->acked < window) {
        s->sent++;
        if (!bench_send_u64(ctx, run, (ax_ref_t)s->h.a, T_INC, s->sent))
            return;
        k++;
    }
    /* More to send and room in the window: come back after the messages
     * already queued (a continue, not a loop).  Window full: the next ack
     * resumes the pump. */
    if (s->sent < n && s->sent - s->acked < window) {
        s->cont_pending = true;
        bench_send_u64(ctx, run, ax_self(ctx), T_CONT, 0);
    }
}

static void prod_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    prod_state_t *s = st;
    bench_run_t *run = s->h.run;
    const uint64_t n = run->p[P_N];
    switch (m->type) {
    case T_START:
        bench_start(run);
        prod_pump(ctx, s);
        break;
    case T_CONT:
        s->cont_pending = false;
        prod_pump(ctx, s);
        break;
    case T_ACK: {
        const uint64_t *a = m->payload.u64;
        if (a[0] < s->acked || a[0] > s->sent) {
            bench_fail(run, "counting: ack for %llu messages, but %llu sent and %llu acked",
                       (unsigned long long)a[0], (unsigned long long)s->sent,
                       (unsigned long long)s->acked);
            return;
        }
        s->acked = a[0];
        if (s->acked == n) {
            uint64_t want = n % 2 ? n * ((n + 1) / 2) : (n / 2) * (n + 1);
            if (a[1] != want)
                bench_fail(run, "counting: counter's sum is %llu, expected %llu",
                           (unsigned long long)a[1], (unsigned long long)want);
            else
                bench_finish(run, n);
            return;
        }
        if (!s->cont_pending)
            prod_pump(ctx, s);
        break;
    }
    default:
        bench_fail(run, "counting: producer got unexpected message type %u", m->type);
    }
}

static int cnt_setup(bench_run_t *run)
{
    if (run->p[P_WINDOW] < 2 * run->p[P_ACK]) {
        bench_fail(run, "counting: window = %llu must be at least 2 x ack = %llu, or the "
                        "producer waits for an ack that never comes; raise counting.window",
                   (unsigned long long)run->p[P_WINDOW], (unsigned long long)(2 * run->p[P_ACK]));
        return -EINVAL;
    }
    uint32_t cw = (run->p[P_REMOTE] && run->workers > 1) ? 1 : 0;
    run->remote = cw != 0;
    ax_ref_t counter;
    bench_hdr_t h = {.run = run};
    int rc = bench_spawn_ext(run, counter_beh, sizeof(counter_state_t), cw, &h, &counter);
    if (rc)
        return rc;
    h.a = counter;
    return bench_spawn_ext(run, prod_beh, sizeof(prod_state_t), 0, &h, &run->entry);
}

const bench_workload_t bench_wl_counting = {
    .name = "counting",
    .group = "counting",
    .what = "one producer sends n integers to one counter (windowed, acked)",
    .unit = "msgs/s",
    .limit = BL_DISPATCH2,
    .limit_remote = BL_RING,
    .min_workers = 1,
    .params = cnt_params,
    .setup = cnt_setup,
    .kick = bench_kick_entry,
};
