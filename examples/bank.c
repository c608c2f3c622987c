/* examples/bank.c - accounts, tellers and transfers as requests with
 * timeouts; money is conserved, and checked at the end.
 *
 *   bank [ACCOUNTS [TELLERS [TRANSFERS_PER_TELLER]]]   (default 16 4 10000)
 *
 * Each account is an actor holding a balance.  A teller asks a source
 * account to transfer an amount to a destination account; the source takes
 * the money and asks the destination to deposit it, with a timeout, and
 * answers the teller when the deposit is confirmed (a deferred reply: it
 * keeps the teller's request and replies from a continuation).
 *
 * Why money is conserved whatever happens: the engine never loses a
 * message, so a deposit request sent to a live account is applied sooner or
 * later.  A deposit that times out is therefore NOT refunded (it will land;
 * the transfer is reported late); only -ESRCH (the destination is gone, the
 * deposit was never applied) refunds the source.
 *
 * main() is a thread outside the engine: it starts every teller with a
 * request whose future it waits on, then audits the accounts with
 * ax_engine_call (gen_server:call style) before stopping the engine.
 * Public API only: axon/axon.h, axon/request.h, axon/typed.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

#include "axon/axon.h"
#include "axon/request.h"
#include "axon/typed.h"

#define MAX_ACCOUNTS 24 /* a teller's init argument holds them: 24 * 8 <= AX_SPAWN_ARG_MAX */
#define INITIAL 1000000 /* cents per account */
#define DEPOSIT_TIMEOUT_MS 2000
#define TRANSFER_TIMEOUT_MS 10000

/* ---- the protocol ---------------------------------------------------------------- */

struct transfer { int64_t amount; ax_ref_t to; };     /* teller -> source account */
struct transfer_done { int32_t status; int32_t late; }; /* its reply */
struct deposit { int64_t amount; };                   /* source -> destination */
struct balance { int64_t cents; };                    /* reply to balance_q */
struct run { uint64_t transfers; };                   /* main -> teller */
struct report { uint64_t done, refused, late, gone; }; /* teller's reply to run */

AX_MESSAGE(transfer, 10, struct transfer);
AX_MESSAGE(transfer_done, 11, struct transfer_done);
AX_MESSAGE(deposit, 12, struct deposit);
AX_MESSAGE(deposited, 13, struct deposit);
AX_MESSAGE(balance_q, 14, struct balance);
AX_MESSAGE(balance, 15, struct balance);
AX_MESSAGE(run, 16, struct run);
AX_MESSAGE(report, 17, struct report);

/* ---- accounts ---------------------------------------------------------------------- */

struct account { int64_t cents; };

/* What the source keeps while the deposit is out: copied by ax_request. */
struct pending_transfer {
    ax_req_t teller; /* to answer later */
    int64_t amount;
};

static void on_deposited(ax_ctx_t *ctx, void *state, void *cont, int status,
                         const ax_msg_t *reply)
{
    struct account *acc = state;
    struct pending_transfer *pt = cont;
    struct transfer_done d = { 0, 0 };
    (void)reply;
    if (status == -ESRCH) {
        acc->cents += pt->amount; /* never deposited: give it back */
        d.status = -ESRCH;
    } else if (status == -ETIMEDOUT) {
        d.late = 1; /* it will land: no refund */
    } else if (status != 0) {
        d.status = status;
    }
    ax_reply_to(ctx, pt->teller, transfer_done_TYPE, &d, sizeof d);
}

static void on_transfer(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    struct account *acc = state;
    const struct transfer *t = transfer_data(msg);
    if (t->amount <= 0 || acc->cents < t->amount) {
        struct transfer_done d = { -ENOSPC, 0 };
        transfer_done_reply(ctx, &d);
        return;
    }
    acc->cents -= t->amount;
    struct pending_transfer pt = { ax_request_of(msg), t->amount };
    struct deposit dep = { t->amount };
    int rc = deposit_request(ctx, t->to, &dep, DEPOSIT_TIMEOUT_MS, on_deposited, &pt, sizeof pt);
    if (rc != 0) { /* not sent: undo */
        acc->cents += t->amount;
        struct transfer_done d = { rc, 0 };
        transfer_done_reply(ctx, &d);
    }
}

static void on_deposit(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    struct account *acc = state;
    acc->cents += deposit_data(msg)->amount;
    deposited_reply(ctx, deposit_data(msg));
}

static void on_balance_q(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    (void)msg;
    struct balance b = { ((struct account *)state)->cents };
    balance_reply(ctx, &b);
}

static void on_unknown(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    (void)ctx, (void)state;
    fprintf(stderr, "bank: an account got message type %u (%zu bytes): ignored\n", msg->type,
            ax_msg_len(msg));
}

static ax_table_t account_table; /* built in main before the engine starts */

static void account(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    ax_table_dispatch(&account_table, ctx, state, msg);
}

static void account_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx, (void)arg, (void)len;
    ((struct account *)state)->cents = INITIAL;
}

/* ---- tellers -------------------------------------------------------------------------- */

/* The teller's spawn argument (at most AX_SPAWN_ARG_MAX bytes); its state
 * begins with it. */
struct teller_arg {
    ax_ref_t accounts[MAX_ACCOUNTS];
    uint32_t naccounts;
    uint64_t seed;
};

struct teller {
    ax_ref_t accounts[MAX_ACCOUNTS];
    uint32_t naccounts;
    uint64_t seed, left;
    ax_req_t main_req; /* main's run request, answered at the end */
    struct report rep;
};

static uint64_t next_rand(struct teller *t)
{
    t->seed ^= t->seed << 13;
    t->seed ^= t->seed >> 7;
    t->seed ^= t->seed << 17;
    return t->seed;
}

static void one_transfer(ax_ctx_t *ctx, struct teller *t);

static void on_transfer_done(ax_ctx_t *ctx, void *state, void *cont, int status,
                             const ax_msg_t *reply)
{
    struct teller *t = state;
    const struct transfer_done *d = status == 0 ? transfer_done_get(reply) : NULL;
    (void)cont;
    if (!d)
        t->rep.late++; /* the source itself did not answer in time (status < 0) */
    else if (d->status == -ENOSPC)
        t->rep.refused++;
    else if (d->status == -ESRCH)
        t->rep.gone++;
    else if (d->late)
        t->rep.late++;
    else
        t->rep.done++;
    one_transfer(ctx, t);
}

static void one_transfer(ax_ctx_t *ctx, struct teller *t)
{
    if (t->left == 0) { /* the run is over: answer main's request */
        ax_reply_to(ctx, t->main_req, report_TYPE, &t->rep, sizeof t->rep);
        return;
    }
    t->left--;
    uint32_t from = (uint32_t)(next_rand(t) % t->naccounts);
    uint32_t to = (uint32_t)(next_rand(t) % (t->naccounts - 1));
    if (to >= from)
        to++; /* never to itself */
    struct transfer tr = { (int64_t)(next_rand(t) % 5000) + 1, t->accounts[to] };
    if (transfer_request(ctx, t->accounts[from], &tr, TRANSFER_TIMEOUT_MS, on_transfer_done,
                         NULL, 0) != 0) {
        t->rep.gone += t->left + 1; /* out of memory: give up the rest */
        t->left = 0;
        ax_reply_to(ctx, t->main_req, report_TYPE, &t->rep, sizeof t->rep);
    }
}

static void teller(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    struct teller *t = state;
    const struct run *r = run_get(msg);
    if (!r || !ax_msg_is_request(msg))
        return;
    t->main_req = ax_request_of(msg); /* replied to when the run is over */
    t->left = r->transfers;
    one_transfer(ctx, t);
}

static void teller_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    struct teller *t = state;
    const struct teller_arg *a = arg;
    (void)ctx, (void)len;
    memcpy(t->accounts, a->accounts, sizeof t->accounts);
    t->naccounts = a->naccounts;
    t->seed = a->seed;
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    uint32_t naccounts = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 16;
    uint32_t ntellers = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 4;
    uint64_t per_teller = argc > 3 ? strtoull(argv[3], NULL, 0) : 10000;
    if (naccounts < 2 || naccounts > MAX_ACCOUNTS || ntellers < 1 || ntellers > 64) {
        fprintf(stderr, "usage: %s [ACCOUNTS 2..%d [TELLERS 1..64 [TRANSFERS]]]\n", argv[0],
                MAX_ACCOUNTS);
        return 2;
    }
    const ax_handler_t handlers[] = {
        AX_ON(transfer, on_transfer), AX_ON(deposit, on_deposit),
        AX_ON(balance_q, on_balance_q),
    };
    if (ax_table_init(&account_table, handlers, sizeof handlers / sizeof handlers[0],
                      on_unknown) != 0) {
        fprintf(stderr, "bank: the account table does not build\n");
        return 1;
    }

    ax_config_t cfg;
    ax_config_error_t cerr;
    ax_config_init(&cfg);
    if (ax_config_apply_env(&cfg, NULL, &cerr) != 0) {
        fprintf(stderr, "bank: %s\n", cerr.message);
        return 1;
    }
    ax_engine_t *eng;
    int rc = ax_engine_create(&cfg, &eng);
    if (rc != 0) {
        fprintf(stderr, "bank: cannot create the engine (%s): %s\n", strerror(-rc),
                ax_engine_last_error());
        return 1;
    }

    /* Accounts and tellers spread round robin over the workers, so most
     * requests cross between cores. */
    ax_spawn_opts_t acc_opts = { .size = sizeof acc_opts, .where = AX_ON_ANY,
                                 .init = account_init };
    struct teller_arg tinit;
    memset(&tinit, 0, sizeof tinit);
    tinit.naccounts = naccounts;
    for (uint32_t i = 0; i < naccounts; i++)
        if ((rc = ax_engine_spawn(eng, account, sizeof(struct account), &acc_opts,
                                  &tinit.accounts[i])) != 0)
            goto spawn_failed;
    ax_ref_t tellers[64];
    for (uint32_t i = 0; i < ntellers; i++) {
        tinit.seed = 0x9E3779B97F4A7C15ull * (i + 1);
        ax_spawn_opts_t o = { .size = sizeof o, .where = AX_ON_ANY, .init = teller_init,
                              .arg = &tinit, .arg_len = sizeof tinit };
        if ((rc = ax_engine_spawn(eng, teller, sizeof(struct teller), &o, &tellers[i])) != 0)
            goto spawn_failed;
    }
    if ((rc = ax_engine_start(eng)) != 0) {
        fprintf(stderr, "bank: start failed: %s\n", strerror(-rc));
        ax_engine_destroy(eng);
        return 1;
    }

    /* Start every teller; each future completes with its report. */
    ax_future_t *runs[64];
    struct run r = { per_teller };
    for (uint32_t i = 0; i < ntellers; i++)
        if ((rc = ax_engine_request(eng, tellers[i], run_TYPE, &r, sizeof r, 0, &runs[i])) != 0) {
            fprintf(stderr, "bank: cannot start teller %u: %s\n", i, strerror(-rc));
            return 1;
        }
    struct report total = { 0, 0, 0, 0 };
    int failed = 0;
    for (uint32_t i = 0; i < ntellers; i++) {
        struct report rep;
        ax_future_wait(runs[i], 120000);
        rc = ax_future_result(runs[i], NULL, &rep, sizeof rep, NULL);
        ax_future_free(runs[i]);
        if (rc != 0) {
            fprintf(stderr, "bank: teller %u did not report: %s\n", i, strerror(-rc));
            failed = 1;
            continue;
        }
        total.done += rep.done;
        total.refused += rep.refused;
        total.late += rep.late;
        total.gone += rep.gone;
    }

    /* Audit from outside: ask every account for its balance.  A deposit
     * that timed out is still on its way (nothing is lost), so while the
     * sum is short and some transfer was late, look again a little later. */
    int64_t sum = 0, want = (int64_t)naccounts * INITIAL;
    for (int round = 0; round < 100; round++) {
        sum = 0;
        for (uint32_t i = 0; i < naccounts; i++) {
            struct balance q = { 0 }, b;
            rc = ax_engine_call(eng, tinit.accounts[i], balance_q_TYPE, &q, sizeof q, 10000, NULL,
                                &b, sizeof b, NULL);
            if (rc != 0) {
                fprintf(stderr, "bank: account %u did not answer: %s\n", i, strerror(-rc));
                failed = 1;
                break;
            }
            sum += b.cents;
        }
        if (failed || sum == want || total.late == 0)
            break;
        thrd_sleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
    }
    ax_engine_stop_when_idle(eng);
    ax_engine_wait(eng);
    ax_conv_stats_t cs;
    ax_engine_conv_stats(eng, &cs);
    ax_engine_destroy(eng);

    printf("bank: %u accounts, %u tellers: %llu transfers done, %llu refused (funds), %llu late, "
           "%llu to a gone account; %llu requests, %llu timeouts\n",
           naccounts, ntellers, (unsigned long long)total.done, (unsigned long long)total.refused,
           (unsigned long long)total.late, (unsigned long long)total.gone,
           (unsigned long long)cs.requests, (unsigned long long)cs.timeouts);
    if (failed || sum != want || total.done + total.refused + total.late + total.gone !=
                                     (uint64_t)ntellers * per_teller) {
        printf("bank: MONEY NOT CONSERVED or run incomplete: %lld cents, expected %lld\n",
               (long long)sum, (long long)want);
        return 1;
    }
    printf("bank: money conserved: %lld cents\n", (long long)sum);
    return 0;

spawn_failed:
    fprintf(stderr, "bank: spawn failed: %s\n", strerror(-rc));
    ax_engine_destroy(eng);
    return 1;
}
