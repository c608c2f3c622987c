/* tools/bench/wl_chameneos.c - chameneos: `chameneos` creatures of three
 * colours meet pairwise at a mall until `meetings` meetings happened (Savina
 * Chameneos).  Result: messages/s, 4 messages per meeting (two requests to
 * the mall, the mall's introduction, the partner's colour change).
 *
 * The mall lives on worker 0, creature i on worker i % workers.  Each
 * creature has at most one request at the mall: the flow control is built in.
 * When the meetings run out the mall answers every request (and the waiting
 * creature) with exit; each creature reports its meetings and stops.
 *
 * Check: the creatures' meetings add up to 2 x meetings, and every creature
 * reported.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>

enum { P_CHAMENEOS, P_MEETINGS };
static const bench_param_def_t ch_params[] = {
    {"chameneos", 100, 100, false, 2, 1000000, "creatures"},
    {"meetings", 600000, 50000, true, 1, 1ull << 40, "meetings at the mall"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_GO, T_MEET, T_MATCH, T_CHANGE, T_EXIT, T_EXITED };

typedef struct ch_creature {
    bench_hdr_t h; /* idx; a = mall */
    uint64_t colour, meetings;
} ch_creature_t;

typedef struct ch_mall {
    bench_hdr_t h;
    uint64_t left, exited, sum;
    ax_ref_t waiting;
    uint64_t waiting_colour;
} ch_mall_t;

static uint64_t ch_complement(uint64_t a, uint64_t b) { return a == b ? a : 3 - a - b; }

static void ch_creature_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    ch_creature_t *s = st;
    bench_run_t *run = s->h.run;
    const ax_ref_t mall = (ax_ref_t)s->h.a;
    switch (m->type) {
    case T_GO:
        s->colour = s->h.idx % 3;
        bench_send_u64(ctx, run, mall, T_MEET, s->colour);
        break;
    case T_MATCH: { /* the mall introduces a partner: {colour, ref} */
        const uint64_t *p = m->payload.u64;
        s->colour = ch_complement(s->colour, p[0]);
        s->meetings++;
        if (!bench_send_u64(ctx, run, (ax_ref_t)p[1], T_CHANGE, s->colour))
            return;
        bench_send_u64(ctx, run, mall, T_MEET, s->colour);
        break;
    }
    case T_CHANGE:
        s->colour = m->payload.u64[0];
        s->meetings++;
        bench_send_u64(ctx, run, mall, T_MEET, s->colour);
        break;
    case T_EXIT:
        bench_send_u64(ctx, run, mall, T_EXITED, s->meetings);
        ax_stop_self(ctx);
        break;
    default:
        bench_fail(run, "chameneos: creature got unexpected message type %u", m->type);
    }
}

static void ch_mall_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    ch_mall_t *s = st;
    bench_run_t *run = s->h.run;
    const ax_ref_t *refs = run->priv;
    const uint64_t nc = run->p[P_CHAMENEOS], meetings = run->p[P_MEETINGS];
    switch (m->type) {
    case T_START:
        s->left = meetings;
        bench_start(run);
        for (uint64_t i = 0; i < nc; i++)
            if (!bench_send_u64(ctx, run, refs[i], T_GO, 0))
                return;
        break;
    case T_MEET:
        if (s->left == 0 || bench_aborted(run)) {
            if (!bench_send_u64(ctx, run, ax_sender(ctx), T_EXIT, 0))
                return;
            if (s->waiting != AX_REF_NONE) {
                bench_send_u64(ctx, run, s->waiting, T_EXIT, 0);
                s->waiting = AX_REF_NONE;
            }
        } else if (s->waiting == AX_REF_NONE) {
            s->waiting = ax_sender(ctx);
            s->waiting_colour = m->payload.u64[0];
        } else {
            uint64_t match[2] = {m->payload.u64[0], ax_sender(ctx)};
            s->left--;
            if (!bench_send(ctx, run, s->waiting, T_MATCH, match, sizeof match))
                return;
            s->waiting = AX_REF_NONE;
        }
        break;
    case T_EXITED:
        s->sum += m->payload.u64[0];
        if (++s->exited == nc) {
            if (s->sum != 2 * meetings)
                bench_fail(run, "chameneos: creatures met %llu times in all, expected %llu",
                           (unsigned long long)s->sum, (unsigned long long)(2 * meetings));
            else
                bench_finish(run, 4 * meetings);
        }
        break;
    default:
        bench_fail(run, "chameneos: mall got unexpected message type %u", m->type);
    }
}

static int ch_setup(bench_run_t *run)
{
    const uint64_t nc = run->p[P_CHAMENEOS];
    ax_ref_t *refs = calloc(nc, sizeof *refs);
    if (!refs) {
        bench_fail(run, "chameneos: no memory for %llu references", (unsigned long long)nc);
        return -ENOMEM;
    }
    run->priv = refs;
    run->remote = run->workers > 1;
    bench_hdr_t h = {.run = run};
    int rc = bench_spawn_ext(run, ch_mall_beh, sizeof(ch_mall_t), 0, &h, &run->entry);
    for (uint64_t i = 0; rc == 0 && i < nc; i++) {
        bench_hdr_t c = {.run = run, .idx = i, .a = run->entry};
        rc = bench_spawn_ext(run, ch_creature_beh, sizeof(ch_creature_t),
                             (uint32_t)(i % run->workers), &c, &refs[i]);
    }
    return rc;
}

static void ch_cleanup(bench_run_t *run)
{
    free(run->priv);
    run->priv = NULL;
}

const bench_workload_t bench_wl_chameneos = {
    .name = "chameneos",
    .group = "chameneos",
    .what = "100 creatures meet pairwise at a mall (meetings)",
    .unit = "msgs/s",
    .limit = BL_NONE,
    .limit_remote = BL_NONE,
    .min_workers = 1,
    .params = ch_params,
    .setup = ch_setup,
    .kick = bench_kick_entry,
    .cleanup = ch_cleanup,
};
