/* tools/bench/wl_bank.c - bank: a teller runs `transactions` transfers
 * between `accounts` account actors (Savina Banking, with replies instead of
 * blocking asks).  One transfer is 4 messages: teller -> source (transfer),
 * source -> destination (credit), destination -> source (ack), source ->
 * teller (done).  Result: messages/s.
 *
 * The teller lives on worker 0, account i on worker i % workers.  The teller
 * keeps at most `window` transfers in flight and starts `chunk` per turn.
 * Source, destination and amount come from a seeded PRNG.
 *
 * Check: every transfer completed, the amounts done add up, and afterwards
 * each account's balance equals the teller's own bookkeeping (so the total
 * is conserved and no credit or debit was lost or doubled).
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>

enum { P_ACCOUNTS, P_TRANSACTIONS, P_WINDOW, P_CHUNK };
static const bench_param_def_t bank_params[] = {
    {"accounts", 1000, 1000, false, 2, 1000000, "account actors, round robin over workers"},
    {"transactions", 300000, 25000, true, 1, 1ull << 40, "transfers"},
    {"window", 1000, 1000, false, 1, 1u << 24, "transfers in flight at most"},
    {"chunk", 500, 500, false, 1, 1000000, "transfers started per teller turn"},
    {NULL, 0, 0, false, 0, 0, NULL},
};

enum { T_START = 1, T_CONT, T_TRANSFER, T_CREDIT, T_ACK, T_DONE, T_QUERY, T_BALANCE };

typedef struct bank_account {
    bench_hdr_t h; /* idx; a = teller */
    int64_t balance;
} bank_account_t;

typedef struct bank_teller {
    bench_hdr_t h;
    uint64_t rng, started, done, amount_started, amount_done, answers, t1;
    bool cont_pending;
    int64_t expect[]; /* accounts entries: the teller's own books */
} bank_teller_t;

static void bank_account_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    bank_account_t *s = st;
    bench_run_t *run = s->h.run;
    switch (m->type) {
    case T_TRANSFER: { /* {amount, destination} */
        const uint64_t *p = m->payload.u64;
        s->balance -= (int64_t)p[0];
        bench_send_u64(ctx, run, (ax_ref_t)p[1], T_CREDIT, p[0]);
        break;
    }
    case T_CREDIT:
        s->balance += (int64_t)m->payload.u64[0];
        bench_send_u64(ctx, run, ax_sender(ctx), T_ACK, m->payload.u64[0]);
        break;
    case T_ACK:
        bench_send_u64(ctx, run, (ax_ref_t)s->h.a, T_DONE, m->payload.u64[0]);
        break;
    case T_QUERY: {
        uint64_t b[2] = {s->h.idx, (uint64_t)s->balance};
        bench_send(ctx, run, ax_sender(ctx), T_BALANCE, b, sizeof b);
        break;
    }
    default:
        bench_fail(run, "bank: account got unexpected message type %u", m->type);
    }
}

static void bank_pump(ax_ctx_t *ctx, bank_teller_t *s)
{
    bench_run_t *run = s->h.run;
    const ax_ref_t *refs = run->priv;
    const uint64_t na = run->p[P_ACCOUNTS], n = run->p[P_TRANSACTIONS];
    const uint64_t window = run->p[P_WINDOW];
    if (bench_aborted(run))
        return;
    for (uint64_t k = 0; k < run->p[P_CHUNK] && s->started < n && s->started - s->done < window;
         k++) {
        uint64_t src = bench_rand(&s->rng) % na;
        uint64_t dst = bench_rand(&s->rng) % (na - 1);
        if (dst >= src)
            dst++;
        uint64_t amount = 1 + bench_rand(&s->rng) % 1000;
        uint64_t t[2] = {amount, refs[dst]};
        s->expect[src] -= (int64_t)amount;
        s->expect[dst] += (int64_t)amount;
        s->started++;
        s->amount_started += amount;
        if (!bench_send(ctx, run, refs[src], T_TRANSFER, t, sizeof t))
            return;
    }
    if (s->started < n && s->started - s->done < window) {
        s->cont_pending = true;
        bench_send_u64(ctx, run, ax_self(ctx), T_CONT, 0);
    }
}

static void bank_teller_beh(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    bank_teller_t *s = st;
    bench_run_t *run = s->h.run;
    const ax_ref_t *refs = run->priv;
    const uint64_t na = run->p[P_ACCOUNTS], n = run->p[P_TRANSACTIONS];
    switch (m->type) {
    case T_START:
        /* balances open at 0 on both sides (state is zeroed at spawn) and
         * may go negative: an overdraft check is not what is measured */
        s->rng = 0x5EED5EED5EEDULL;
        bench_start(run);
        bank_pump(ctx, s);
        break;
    case T_CONT:
        s->cont_pending = false;
        bank_pump(ctx, s);
        break;
    case T_DONE:
        s->done++;
        s->amount_done += m->payload.u64[0];
        if (s->done == n) {
            s->t1 = bench_now_ns();
            if (s->amount_done != s->amount_started) {
                bench_fail(run, "bank: transfers done move %llu in all, %llu were started",
                           (unsigned long long)s->amount_done,
                           (unsigned long long)s->amount_started);
                return;
            }
            for (uint64_t i = 0; i < na; i++)
                if (!bench_send_u64(ctx, run, refs[i], T_QUERY, 0))
                    return;
        } else if (!s->cont_pending) {
            bank_pump(ctx, s);
        }
        break;
    case T_BALANCE: {
        const uint64_t *b = m->payload.u64;
        if (b[0] >= na || (int64_t)b[1] != s->expect[b[0]]) {
            bench_fail(run, "bank: account %llu holds %lld, the teller's books say %lld",
                       (unsigned long long)b[0], (long long)b[1],
                       b[0] < na ? (long long)s->expect[b[0]] : 0LL);
            return;
        }
        if (++s->answers == na)
            bench_finish_at(run, 4 * n, s->t1);
        break;
    }
    default:
        bench_fail(run, "bank: teller got unexpected message type %u", m->type);
    }
}

static int bank_setup(bench_run_t *run)
{
    const uint64_t na = run->p[P_ACCOUNTS];
    ax_ref_t *refs = calloc(na, sizeof *refs);
    if (!refs) {
        bench_fail(run, "bank: no memory for %llu references", (unsigned long long)na);
        return -ENOMEM;
    }
    run->priv = refs;
    run->remote = run->workers > 1;
    bench_hdr_t h = {.run = run};
    size_t sz = sizeof(bank_teller_t) + (size_t)na * sizeof(int64_t);
    int rc = bench_spawn_ext(run, bank_teller_beh, sz, 0, &h, &run->entry);
    for (uint64_t i = 0; rc == 0 && i < na; i++) {
        bench_hdr_t a = {.run = run, .idx = i, .a = run->entry};
        rc = bench_spawn_ext(run, bank_account_beh, sizeof(bank_account_t),
                             (uint32_t)(i % run->workers), &a, &refs[i]);
    }
    return rc;
}

static void bank_cleanup(bench_run_t *run)
{
    free(run->priv);
    run->priv = NULL;
}

const bench_workload_t bench_wl_bank = {
    .name = "bank",
    .group = "bank",
    .what = "a teller runs transfers between 1000 accounts (4 messages each)",
    .unit = "msgs/s",
    .limit = BL_NONE,
    .limit_remote = BL_NONE,
    .min_workers = 1,
    .params = bank_params,
    .setup = bank_setup,
    .kick = bench_kick_entry,
    .cleanup = bank_cleanup,
};
