/* examples/containers.c - shared containers: a price table in memory that
 * many actors read and one actor owns and writes, and an LMDB ledger that
 * actors append to, each append acknowledged once it is on disk.
 *
 * A "pricer" actor owns the memory container "prices" (the documented way
 * to avoid logical races: one writer per record set).  "shopper" actors on
 * every worker open it by name, read prices in read sections, and append
 * their purchases to the LMDB container "ledger"; each append's commit
 * message tells the shopper its purchase is durable.  At the end the main
 * thread reads the ledger back and checks the totals.
 *
 *   containers [directory]        (default: a fresh one under /tmp)
 *
 * Public API only (axon/axon.h, axon/container.h); builds out of tree with
 *   cc -std=c11 -pedantic containers.c $(pkg-config --cflags --libs axon)
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, nanosleep under -std=c11 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <axon/axon.h>
#include <axon/container.h>

#define NITEMS 16u
#define PURCHASES 200u /* per shopper */

enum { T_START = 1, T_COMMIT = 2, T_REPRICE = 3 };

static ax_cont_registry_t *g_reg; /* set before start, read-only after */
static _Atomic uint32_t g_shoppers_done;
static _Atomic uint64_t g_spent; /* sum over durable purchases, for the check */

/* ---- the pricer: the only writer of "prices" ------------------------------------- */

static void pricer(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    uint32_t *round = st;
    ax_cont_t *c;
    if (ax_cont_open(g_reg, "prices", NULL, &c) < 0)
        return;
    ax_cont_wr_t wr;
    ax_cont_write_enter(ctx, c, &wr);
    for (uint32_t i = 0; i < NITEMS; i++) {
        uint64_t price = 100 + i + (*round % 7); /* cents */
        ax_cont_put(&wr, &i, sizeof i, &price, sizeof price);
    }
    ax_cont_write_leave(&wr, 0, NULL); /* memory: visible now, no message */
    ax_cont_close(c);
    if (++*round < 50 && m->type == T_REPRICE)
        ax_send_u64(ctx, ax_self(ctx), T_REPRICE, 0);
}

/* ---- shoppers: read prices, append purchases to the ledger ------------------------- */

typedef struct shopper {
    uint32_t id, bought, durable;
    uint64_t spent_durable;
    uint64_t pending[PURCHASES]; /* price of purchase k, until its commit */
} shopper_t;

static void buy(ax_ctx_t *ctx, shopper_t *s)
{
    ax_cont_t *prices, *ledger;
    if (ax_cont_open(g_reg, "prices", NULL, &prices) < 0 || ax_cont_open(g_reg, "ledger", NULL, &ledger) < 0)
        return;
    uint32_t item = (s->id * 7 + s->bought) % NITEMS;
    uint64_t price = 0;
    ax_cont_rd_t rd;
    const void *v;
    size_t len;
    ax_cont_read_enter(ctx, prices, &rd);
    if (ax_cont_get(&rd, &item, sizeof item, &v, &len) == 0 && len == sizeof price)
        memcpy(&price, v, sizeof price); /* copy out: v is valid until leave */
    ax_cont_read_leave(&rd);
    /* The ledger key is ours alone (shopper, purchase): no logical race. */
    char key[32];
    snprintf(key, sizeof key, "s%02u-p%04u", s->id, s->bought);
    ax_cont_wr_t wr;
    ax_cont_write_enter(ctx, ledger, &wr);
    ax_cont_put(&wr, key, strlen(key), &price, sizeof price);
    s->pending[s->bought] = price;
    if (ax_cont_write_leave(&wr, T_COMMIT, NULL) == 0)
        s->bought++;
    ax_cont_close(prices);
    ax_cont_close(ledger);
}

static void shopper(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    shopper_t *s = st;
    if (m->type == T_START) {
        s->id = (uint32_t)m->payload.u64[0];
        for (int i = 0; i < 4; i++) /* four purchases in flight */
            buy(ctx, s);
        return;
    }
    if (m->type == T_COMMIT) {
        ax_cont_commit_t ack;
        memcpy(&ack, ax_msg_data(m), sizeof ack);
        if (ack.status != 0) {
            fprintf(stderr, "containers: a ledger commit failed: %s\n", strerror(-ack.status));
            return;
        }
        /* Commits come back in order: this one is our oldest pending buy. */
        s->spent_durable += s->pending[s->durable++];
        if (s->durable == PURCHASES) {
            atomic_fetch_add(&g_spent, s->spent_durable);
            atomic_fetch_add(&g_shoppers_done, 1);
            return;
        }
        if (s->bought < PURCHASES)
            buy(ctx, s);
    }
}

int main(int argc, char **argv)
{
    char dir[256];
    if (argc > 1) {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    } else {
        snprintf(dir, sizeof dir, "/tmp/axon-containers-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("containers: mkdtemp");
            return 1;
        }
    }
    ax_config_t cfg;
    ax_config_init(&cfg);
    ax_engine_t *eng;
    /* The registry installs the worker hooks liburcu needs: before start. */
    if (ax_engine_create(&cfg, &eng) < 0 || ax_cont_registry_create(eng, &g_reg) < 0 ||
        ax_engine_start(eng) < 0) {
        fprintf(stderr, "containers: setup failed: %s\n", ax_engine_last_error());
        return 1;
    }
    ax_cont_thread_register(); /* this thread reads and opens too */
    ax_cont_t *prices, *ledger;
    ax_cont_config_t mem = AX_CONT_CONFIG_INIT, lm = AX_CONT_CONFIG_INIT;
    lm.kind = AX_CONT_LMDB;
    lm.path = dir;
    lm.map_bytes = 64u << 20;
    /* Opened here first, so the LMDB files are opened off the workers; the
     * actors open both by name and get these. */
    if (ax_cont_open(g_reg, "prices", &mem, &prices) < 0 || ax_cont_open(g_reg, "ledger", &lm, &ledger) < 0) {
        fprintf(stderr, "containers: opening the containers in %s failed\n", dir);
        return 1;
    }
    ax_ref_t p;
    ax_engine_spawn(eng, pricer, sizeof(uint32_t), NULL, &p);
    ax_engine_send(eng, p, T_START, NULL, 0); /* the first prices */
    uint32_t nw = ax_engine_workers(eng), nshop = 2 * nw;
    /* Wait for the first prices before the shoppers start. */
    for (int tries = 0;; tries++) {
        ax_cont_rd_t rd;
        const void *v;
        size_t len;
        uint32_t k = NITEMS - 1;
        ax_cont_read_enter(NULL, prices, &rd);
        int rc = ax_cont_get(&rd, &k, sizeof k, &v, &len);
        ax_cont_read_leave(&rd);
        if (rc == 0)
            break;
        if (tries > 10000) {
            fprintf(stderr, "containers: the pricer never wrote\n");
            return 1;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    ax_engine_send(eng, p, T_REPRICE, NULL, 0); /* and keep repricing */
    for (uint32_t i = 0; i < nshop; i++) {
        ax_ref_t s;
        ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = i % nw};
        uint64_t id = i;
        ax_engine_spawn(eng, shopper, sizeof(shopper_t), &o, &s);
        ax_engine_send(eng, s, T_START, &id, sizeof id);
    }
    while (atomic_load(&g_shoppers_done) < nshop)
        nanosleep(&(struct timespec){0, 1000000}, NULL);

    /* Read the ledger back: every durable purchase is there. */
    uint64_t total = 0, n = 0;
    ax_cont_rd_t rd;
    ax_cont_read_enter(NULL, ledger, &rd);
    for (uint32_t i = 0; i < nshop; i++)
        for (uint32_t k = 0; k < PURCHASES; k++) {
            char key[32];
            const void *v;
            size_t len;
            uint64_t price;
            snprintf(key, sizeof key, "s%02u-p%04u", i, k);
            if (ax_cont_get(&rd, key, strlen(key), &v, &len) == 0 && len == sizeof price) {
                memcpy(&price, v, sizeof price);
                total += price;
                n++;
            }
        }
    ax_cont_read_leave(&rd);
    ax_cont_stats_t ls;
    ax_cont_stats(ledger, &ls);
    int ok = total == atomic_load(&g_spent) && n == (uint64_t)nshop * PURCHASES;
    printf("containers: %llu purchases by %u shoppers, %llu commits, ledger %s (total %llu cents)\n",
           (unsigned long long)n, nshop, (unsigned long long)ls.commits,
           ok ? "matches" : "DOES NOT MATCH", (unsigned long long)total);
    ax_cont_close(prices);
    ax_cont_close(ledger);
    ax_cont_thread_unregister();
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_cont_registry_destroy(g_reg);
    ax_engine_destroy(eng);
    if (argc == 1) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "containers: could not remove %s\n", dir);
    }
    return ok ? 0 : 1;
}
