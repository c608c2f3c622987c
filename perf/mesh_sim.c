/* perf/mesh_sim.c - a many-worker engine driven turn by turn on one thread,
 * for memory-trace measurements of what 64 (or 256) workers cost on a
 * machine that has 2 cores: cache lines moved per remote message, lines
 * and instructions per turn, per park and per wake, and ring memory.
 *
 * The engine is created (synthetic topology, unpinned) but never started:
 * this thread plays every worker in turn, calling the engine's own loop
 * turn (ax__run_turn), park (ax__park with a zero timeout) and flush, as
 * perf/bench_engine_turn.c does for one worker.  Each worker has one actor;
 * every round each actor gets a local tick and sends one message to each
 * of its --peers peers (the next workers, cyclically), so at --peers N-1
 * every ordered pair carries one message per round: the all-to-all case.
 *
 * Run under valgrind's lackey with --trace-mem=yes, the client requests
 * below print markers into the same log ("AXSIM core 5" before worker 5's
 * turn, "AXSIM begin"/"end" around the measured rounds, the address ranges
 * of the stack and of the engine's shared structures); perf/scripts/
 * coherence.py replays the trace through a per-line owner/sharers model
 * (MESI without the E subtleties) and counts lines that move between the
 * simulated cores.  perf/scripts/coherence.sh does both.  Outside valgrind
 * the markers cost nothing and the program prints its message counts and
 * the resident ring memory, so it also checks lazy ring creation.
 *
 * Figures from this program are simulated: a sequential interleaving, one
 * turn per worker per round, no real concurrency, no timing.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "engine/engine_internal.h"

enum { T_SETUP = 1, T_TICK, T_DATA };

typedef struct {
    const ax_ref_t *peers;
    uint32_t npeers;
    uint64_t got;
} sim_actor_t;

static void act(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    sim_actor_t *a = state;
    if (m->type == T_SETUP) {
        a->peers = (const ax_ref_t *)(uintptr_t)m->payload.u64[0];
        a->npeers = (uint32_t)m->payload.u64[1];
    } else if (m->type == T_TICK) {
        uint64_t x = 1;
        for (uint32_t k = 0; k < a->npeers; k++)
            if (ax_send(ctx, a->peers[k], T_DATA, &x, sizeof x) < 0)
                abort();
    } else {
        a->got += m->payload.u64[0];
    }
}

static void post(ax_worker_t *w, ax_ref_t to, uint32_t type, uint64_t a, uint64_t b)
{
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = to;
    m.type = type;
    m.len = 16;
    m.payload.u64[0] = a;
    m.payload.u64[1] = b;
    if (ax__post_local(w, &m) < 0)
        abort();
}

/* One loop turn of worker i, as simulated core i: every access the engine
 * makes for worker i must be marked as core i's, or a line that worker
 * touched looks as if another core had it. */
static void turn(ax_engine_t *eng, uint32_t i)
{
    VALGRIND_PRINTF("AXSIM core %u\n", i);
    ax__run_turn(eng->w[i]);
}

static uint64_t msgs_remote(ax_engine_t *eng)
{
    ax_worker_stats_t s;
    ax_engine_stats(eng, &s);
    return s.msgs_remote;
}

/* Resident bytes of [p, p+len) (mincore), for the lazy ring figure. */
static uint64_t resident(void *p, size_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t pages = (len + (size_t)pg - 1) / (size_t)pg;
    unsigned char *vec = malloc(pages ? pages : 1);
    uint64_t n = 0;
    if (vec && mincore(p, len, vec) == 0)
        for (size_t i = 0; i < pages; i++)
            n += vec[i] & 1;
    free(vec);
    return n * (uint64_t)pg;
}

static void region(const char *name, const void *p, size_t len)
{
    VALGRIND_PRINTF("AXSIM region %s %lx %lx\n", name, (unsigned long)(uintptr_t)p,
                    (unsigned long)((uintptr_t)p + len));
}

int main(int argc, char **argv)
{
    uint32_t n = 64, peers = 0, rounds = 8, warm = 3, parks = 1;
    uint64_t max_ring_kib = 0;
    const char *synth = "pack:2 numa:2 l3:2 core:8 pu:2", *bell = "auto";
    static const struct option lo[] = {
        { "workers", 1, 0, 'w' }, { "peers", 1, 0, 'p' },  { "rounds", 1, 0, 'r' },
        { "warmup", 1, 0, 'u' },  { "synthetic", 1, 0, 'y' }, { "doorbell", 1, 0, 'b' },
        { "parks", 1, 0, 'k' },   { "max-ring-kib", 1, 0, 'm' }, { 0, 0, 0, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'w': n = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'p': peers = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'r': rounds = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'u': warm = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'y': synth = optarg; break;
        case 'b': bell = optarg; break;
        case 'k': parks = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'm': max_ring_kib = strtoull(optarg, NULL, 0); break;
        default:
            fprintf(stderr, "usage: %s [--workers N] [--peers K] [--rounds R] [--warmup R] "
                            "[--synthetic 'hwloc desc'] [--doorbell auto|on|off] [--parks 0|1]\n"
                            "       [--max-ring-kib K: fail if more ring memory is resident]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 2 || n > AX_WORKERS_MAX) {
        fprintf(stderr, "mesh_sim: --workers %u: give 2..%u\n", n, AX_WORKERS_MAX);
        return 2;
    }
    if (!peers || peers > n - 1)
        peers = n - 1;

    ax_config_t cfg;
    ax_config_init(&cfg);
    if (strlen(synth) >= sizeof cfg.topology_synthetic) {
        fprintf(stderr, "mesh_sim: --synthetic is too long\n");
        return 2;
    }
    snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "%s", synth);
    cfg.workers = n;
    cfg.oversubscribe = true; /* more workers than the synthetic machine's cores: fine here */
    cfg.arena_bytes = 2u << 20;
    cfg.max_actors = 64;
    cfg.doorbell = !strcmp(bell, "on") ? AX_DOORBELL_ON : !strcmp(bell, "off") ? AX_DOORBELL_OFF
                                                                             : AX_DOORBELL_AUTO;
    ax_engine_t *eng;
    if (ax_engine_create(&cfg, &eng) < 0) {
        fprintf(stderr, "mesh_sim: engine create: %s\n", ax_engine_last_error());
        return 1;
    }
    n = ax_engine_workers(eng);
    ax_ref_t *refs = calloc(n, sizeof *refs), *pl = calloc((size_t)n * peers, sizeof *pl);
    if (!refs || !pl)
        return 1;
    for (uint32_t i = 0; i < n; i++) {
        ax_spawn_opts_t o = { .where = AX_ON_WORKER, .worker = i };
        if (ax_engine_spawn(eng, act, sizeof(sim_actor_t), &o, &refs[i]) < 0) {
            fprintf(stderr, "mesh_sim: spawn: %s\n", ax_engine_last_error());
            return 1;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        turn(eng, i); /* places the actor */
    for (uint32_t i = 0; i < n; i++) {
        VALGRIND_PRINTF("AXSIM core %u\n", i);
        for (uint32_t k = 0; k < peers; k++)
            pl[(size_t)i * peers + k] = refs[(i + 1 + k) % n];
        post(eng->w[i], refs[i], T_SETUP, (uint64_t)(uintptr_t)&pl[(size_t)i * peers], peers);
        turn(eng, i);
    }

    int on_stack;
    uintptr_t sp = (uintptr_t)&on_stack; /* the stack: 64 MiB below, 1 MiB above */
    region("stack", (void *)(sp - ((uintptr_t)64 << 20)), (size_t)65 << 20);
    region("rings", eng->ring_mem, eng->ring_mem_len);
    for (uint32_t i = 0; i < n; i++) {
        ax_worker_t *w = eng->w[i];
        region("worker", w, sizeof *w);
        region("bell", (void *)w->bell, w->nwords * sizeof *w->bell);
    }
    region("engine", eng, sizeof *eng);
    for (uint32_t i = 0; i < n; i++) /* ring control blocks, by line */
        for (uint32_t j = 0; j < n; j++)
            if (eng->w[i]->out[j])
                VALGRIND_PRINTF("AXSIM ringctl %lx\n", (unsigned long)(uintptr_t)eng->w[i]->out[j]);

    uint64_t base = 0;
    for (uint32_t r = 0; r < warm + rounds; r++) {
        if (r == warm) {
            for (uint32_t i = 0; i < n; i++) /* the warm-up's last mail */
                turn(eng, i);
            base = msgs_remote(eng);
            VALGRIND_PRINTF("AXSIM begin\n");
        }
        for (uint32_t i = 0; i < n; i++) {
            VALGRIND_PRINTF("AXSIM core %u\n", i);
            post(eng->w[i], refs[i], T_TICK, 0, 0);
            ax__run_turn(eng->w[i]);
        }
    }
    /* Deliver what the last round's later workers sent to earlier ones. */
    for (uint32_t i = 0; i < n; i++)
        turn(eng, i);
    VALGRIND_PRINTF("AXSIM end\n"); /* before this thread reads every worker's stats */
    uint64_t got = msgs_remote(eng) - base;
    VALGRIND_PRINTF("AXSIM msgs %" PRIu64 "\n", got);
    printf("mesh_sim: %u workers, %u peers each, %u rounds: %" PRIu64 " remote messages measured "
           "(expected %" PRIu64 ")\n",
           n, peers, rounds, got, (uint64_t)n * peers * rounds);

    if (parks) {
        /* Every worker parks once (zero timeout: the futex wait returns at
         * once), then one worker sends to all its peers as if they were
         * parked: the park path's and the wake path's cost. */
        VALGRIND_PRINTF("AXSIM phase park\n");
        for (uint32_t i = 0; i < n; i++) {
            VALGRIND_PRINTF("AXSIM core %u\n", i);
            ax__park(eng->w[i], 0);
        }
        VALGRIND_PRINTF("AXSIM phase end\n");
    }

    uint64_t rss = eng->ring_mem ? resident(eng->ring_mem, eng->ring_mem_len) : 0;
    printf("mesh_sim: ring memory: %" PRIu64 " KiB resident of %" PRIu64 " KiB reserved\n",
           rss >> 10, (uint64_t)eng->ring_mem_len >> 10);
    int bad = got != (uint64_t)n * peers * rounds;
    if (max_ring_kib && (rss >> 10) > max_ring_kib) {
        printf("mesh_sim: FAIL: %" PRIu64 " KiB of rings resident, more than --max-ring-kib %" PRIu64
               ": ring memory does not follow the communication graph\n",
               rss >> 10, max_ring_kib);
        bad = 1;
    }
    ax_engine_destroy(eng);
    free(refs);
    free(pl);
    return bad;
}
