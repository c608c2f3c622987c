/* tools/bench/bench.h - axon-bench's harness, shared by its workloads.
 *
 * A workload is a set of actors written against the public API only
 * (axon/axon.h).  For each repeat the harness creates an engine, lets the
 * workload spawn its actors (setup, before start), starts the engine, lets
 * the workload send its first message (kick), and waits until an actor calls
 * bench_finish() or bench_fail().  Actors stamp the start and the end of the
 * timed part themselves (bench_start/bench_finish), so engine creation and
 * thread start-up are never timed.
 *
 * The actor-model rules every workload keeps: a behaviour never blocks and
 * never sends an unbounded number of messages in one turn.  Producers send a
 * chunk, then a "continue" message to themselves, and stop at a window of
 * unacknowledged messages (credit-based flow control), so no queue grows
 * without bound however slow the consumer is.
 *
 * Every workload checks its own result (counts, checksums, the final token)
 * and calls bench_fail() on a mismatch: the run then fails loudly instead of
 * reporting a speed.
 *
 * Threading: a bench_run_t is created by the main thread; actors on any
 * worker read its read-only fields (params, priv tables published before
 * ax_engine_start) and write only the fields marked "actors" below, through
 * bench_start/bench_finish/bench_fail, which hand over to the main thread with
 * sem_post/sem_wait (a full barrier both ways).
 * Memory: run->priv belongs to the workload (setup allocates, cleanup frees).
 */
#ifndef AXON_TOOLS_BENCH_H
#define AXON_TOOLS_BENCH_H

#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "axon/axon.h"

#define BENCH_MAX_PARAMS 10
#define BENCH_MAX_REPEAT 50

/* Which measured limit a workload is compared with (the value is in the
 * workload's unit per second; see bench_limit_rate in main.c). */
enum bench_limit {
    BL_NONE = 0,
    BL_BOUNCE,      /* 2 messages per cache-line round trip */
    BL_RING,        /* bare SPSC ring of 64-byte slots, items/s */
    BL_DISPATCH2,   /* same-thread dispatch, 2 actors */
    BL_DISPATCH503, /* same-thread dispatch, 503 actors */
    BL_CREATE,      /* malloc + enqueue + dispatch + free */
};

typedef struct bench_param_def {
    const char *name;
    uint64_t full;   /* default in a full run */
    uint64_t quick;  /* default with --quick */
    bool scaled;     /* a count: multiplied by bench.scale */
    uint64_t min, max;
    const char *help;
} bench_param_def_t;

typedef struct bench_run bench_run_t;

typedef struct bench_workload {
    const char *name;  /* result name, e.g. "pingpong_remote" */
    const char *group; /* --only and --param accept it too, e.g. "pingpong" */
    const char *what;  /* one line for --list */
    const char *unit;  /* "msgs/s", "actors/s" */
    int limit;         /* enum bench_limit, when all on one worker */
    int limit_remote;  /* enum bench_limit, when run->remote (crosses workers) */
    uint32_t min_workers;
    const bench_param_def_t *params; /* ends with {NULL} */
    /* Spawn the actors with ax_engine_spawn (engine created, not started).
     * 0 or a negative errno (the reason goes to run->why via bench_fail). */
    int (*setup)(bench_run_t *run);
    /* After start: send the first message(s) with ax_engine_send. */
    int (*kick)(bench_run_t *run);
    /* Free run->priv; may be NULL. */
    void (*cleanup)(bench_run_t *run);
    /* After the engine stopped: check the summed stats of the timed run
     * (e.g. actors spawned); 0 or bench_fail + -EIO.  May be NULL. */
    int (*check_stats)(bench_run_t *run, const ax_worker_stats_t *sum);
} bench_workload_t;

struct bench_run {
    /* ---- main thread, read-only for actors ---- */
    ax_engine_t *eng;
    uint32_t workers;
    const bench_workload_t *wl;
    uint64_t p[BENCH_MAX_PARAMS]; /* effective parameters, in wl->params order */
    void *priv;                   /* workload tables, published before start */
    ax_ref_t entry;               /* the actor the kick goes to */
    /* ---- actors ---- */
    _Atomic int abort;  /* set on failure or Ctrl-C: producers stop producing */
    _Atomic int failed; /* first bench_fail wins */
    _Atomic int finished;
    uint64_t t0_ns, t1_ns; /* timed part: first and last stamp */
    uint64_t ops;          /* messages (or actors) in [t0, t1] */
    bool remote;           /* set by setup: messages cross workers (limit_remote) */
    char why[320];
    sem_t done; /* posted once: finish, fail, or the SIGINT handler */
};

/* ---- clock ------------------------------------------------------------------ */
uint64_t bench_now_ns(void);

/* ---- called by actors ---------------------------------------------------------- */
/* Stamp the start of the timed part (the first call wins). */
void bench_start(bench_run_t *run);
/* Stamp the end, record ops, wake the main thread.  Call once. */
void bench_finish(bench_run_t *run, uint64_t ops);
/* Same, with an end stamp taken earlier (checks done after the clock stops). */
void bench_finish_at(bench_run_t *run, uint64_t ops, uint64_t t1_ns);
/* Record a failed check or engine error and wake the main thread. */
void bench_fail(bench_run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline bool bench_aborted(const bench_run_t *run)
{
    /* relaxed: a late abort only costs a few more messages */
    return atomic_load_explicit(&((bench_run_t *)run)->abort, memory_order_relaxed) != 0;
}

/* Send helpers: false (after bench_fail) when the engine refused the send. */
bool bench_send_u64(ax_ctx_t *ctx, bench_run_t *run, ax_ref_t to, uint32_t type, uint64_t v);
bool bench_send(ax_ctx_t *ctx, bench_run_t *run, ax_ref_t to, uint32_t type, const void *buf,
                size_t len);

/* Every actor's state starts with this header; spawn copies it from the
 * spawn argument (32 bytes at most: AX_INLINE_MAX - 8). */
typedef struct bench_hdr {
    bench_run_t *run;
    uint64_t idx;
    uint64_t a, b; /* workload-defined */
} bench_hdr_t;

/* Spawn from a behaviour.  worker BENCH_DEFAULT: the engine's default
 * placement (no `where`); BENCH_HERE: on the calling worker (AX_ON_SELF);
 * else on worker % run->workers.  false after bench_fail. */
#define BENCH_DEFAULT (-1)
#define BENCH_HERE (-2)
bool bench_spawn(ax_ctx_t *ctx, bench_run_t *run, ax_behaviour_fn fn, size_t state_size,
                 int64_t worker, const bench_hdr_t *hdr, ax_ref_t *out);
/* Spawn from the main thread (setup).  0 or -errno (after bench_fail). */
int bench_spawn_ext(bench_run_t *run, ax_behaviour_fn fn, size_t state_size, uint32_t worker,
                    const bench_hdr_t *hdr, ax_ref_t *out);
/* Send from the main thread (kick).  0 or -errno (after bench_fail). */
int bench_kick(bench_run_t *run, ax_ref_t to, uint32_t type, uint64_t v);
/* The usual kick: message type 1 (start) to run->entry. */
int bench_kick_entry(bench_run_t *run);

/* A small deterministic PRNG for workloads (xorshift64*). */
static inline uint64_t bench_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- the cluster mode (cluster.c) --------------------------------------------------------- */

/* One result of the cluster mode, handed to main.c's table/JSON/CSV. */
typedef struct bench_cl_res {
    char name[64];
    const char *unit;
    bool lower_better;
    uint32_t nodes;
    char params[320];
    int nruns;
    double runs[BENCH_MAX_REPEAT];
    bool has_alt;                     /* pingpong: alt = mean round trip (runs: p50) */
    double alt[BENCH_MAX_REPEAT];
    double cpu_pct[BENCH_MAX_REPEAT]; /* node 0's CPU time / wall time, % (axon runs) */
    char limit[64];                   /* the name of the limit's result, "" none */
    char peer[64];                    /* the name of the peer's result (Erlang), "" none */
    char counts[200];                 /* node 0's data-path counts per message (medians) */
    bool failed, skipped;
    char why[400];
} bench_cl_res_t;

typedef struct bench_cl_opts {
    const ax_config_t *cfg; /* the nodes' base config (--config, AXON_*) */
    uint32_t reps, timeout_s, nodes_max;
    uint64_t pp_n, ow_n, window, big_pings, mesh_n, erl_pp_n, erl_ow_n;
    uint32_t big_actors, mesh_actors;
    bool ucx, erlang, wakeup, tcp, multi, pairs, multi_2n;
    volatile sig_atomic_t *interrupted;
    void (*progress)(const char *what, int rep, int reps);
    void (*emit)(const bench_cl_res_t *r);
} bench_cl_opts_t;

/* Launch the nodes, the limit and the peer; every result through emit. */
int bench_cluster_run(const bench_cl_opts_t *o);

/* ---- the workloads (wl_*.c) ------------------------------------------------------ */
extern const bench_workload_t bench_wl_pingpong_local;
extern const bench_workload_t bench_wl_pingpong_remote;
extern const bench_workload_t bench_wl_counting;
extern const bench_workload_t bench_wl_threadring;
extern const bench_workload_t bench_wl_fjcreate;
extern const bench_workload_t bench_wl_fjthrput;
extern const bench_workload_t bench_wl_fjthrput_drivers;
extern const bench_workload_t bench_wl_big;
extern const bench_workload_t bench_wl_chameneos;
extern const bench_workload_t bench_wl_fib;
extern const bench_workload_t bench_wl_bank;
extern const bench_workload_t bench_wl_skynet;

#endif /* AXON_TOOLS_BENCH_H */
