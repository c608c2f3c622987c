/* axon/config.h - engine configuration: C struct, text file, environment.
 *
 * Precedence: the struct's defaults < a config file < AXON_* environment
 * variables.  Every field whose value is zero means "the documented default",
 * so `ax_config_t c; ax_config_init(&c);` (or AX_CONFIG_INIT) is a valid
 * configuration.  docs/tuning.md lists every key with its range.
 *
 * Threading: plain data; the functions here touch only their arguments and
 * may be called from any thread.
 */
#ifndef AXON_CONFIG_H
#define AXON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AX_API __attribute__((visibility("default")))

/* SMT policy: how many workers per physical core. */
enum ax_smt_policy {
    AX_SMT_CORE = 0, /* one worker per core, on its first PU (default) */
    AX_SMT_ALL = 1,  /* one worker per PU (hyperthread) */
};

/* Doorbell policy: with it a receiver visits only the inbound rings whose
 * senders rang, instead of polling all N-1 rings every loop turn. */
enum ax_doorbell {
    AX_DOORBELL_AUTO = 0, /* on when there are more than 8 workers (default) */
    AX_DOORBELL_ON = 1,
    AX_DOORBELL_OFF = 2,
};
#define AX_DOORBELL_AUTO_MIN 8u

/* How an idle cluster worker notices remote traffic (cluster.progress;
 * docs/cluster.md "Shared memory and progress"): sleeping on UCP's event fd,
 * or polling UCP on a timer.  A spinning worker polls UCP in every mode. */
enum ax_cluster_progress {
    AX_CLUSTER_PROGRESS_AUTO = 0,   /* the default: wakeup (docs/cluster.md has the figures) */
    AX_CLUSTER_PROGRESS_WAKEUP = 1, /* UCP event fd in the park: an idle worker sleeps */
    AX_CLUSTER_PROGRESS_SPIN = 2,   /* no UCX wakeup support; a parked worker polls UCP every
                                       cluster.poll_us */
};

/* Watchdog (scheduler.watchdog_ms): in the struct 0 means the default
 * (100 ms) and a negative value turns it off; in a file or AXON_* variable,
 * 0 or `off` turns it off. */
#define AX_WATCHDOG_OFF (-1)
#define AX_WATCHDOG_DEFAULT_MS 100
/* What the watchdog does when a behaviour overruns (scheduler.watchdog_action). */
enum ax_watchdog_action {
    AX_WATCHDOG_REPORT = 0, /* report (hook, counter, probe, stderr) and go on (default) */
    AX_WATCHDOG_ABORT = 1,  /* report, then abort() the process */
};
/* The fault-signal report (scheduler.fault_report). */
enum ax_fault_report {
    AX_FAULT_REPORT_ON = 0,  /* install the handlers (default) */
    AX_FAULT_REPORT_OFF = 1, /* leave the process's signal handlers alone */
};

#define AX_CONFIG_STR_MAX 256

/* The largest workers.count an engine runs (each worker's arena keeps a
 * return ring per peer, and the ring mesh grows as N*(N-1)). */
#define AX_WORKERS_MAX 1024u
/* The largest scheduler.max_actors: a reference has 24 bits of slot. */
#define AX_ACTORS_MAX (1u << 24)

/* Where the config's keys were set, so a later error (a plan that cannot be
 * made, a topology that cannot be loaded) can name the file and line, or the
 * environment variable.  Filled by the loaders; private to the library:
 * leave it alone (ax_config_init and AX_CONFIG_INIT zero it). */
#define AX_CONFIG_ORIGIN_FILES 4 /* the last 4 files or strings loaded keep their name */
#define AX_CONFIG_ORIGIN_KEYS 40
typedef struct ax_config_key_origin {
    uint32_t load; /* 1 + the index of the load that set it; 0: no file did */
    uint32_t line; /* its line in that load */
    uint32_t env;  /* 1: its AXON_* variable set it last */
    uint32_t fp;   /* fingerprint of the value then: a later store from C voids this */
} ax_config_key_origin_t;
typedef struct ax_config_origin {
    uint32_t loads; /* files and strings loaded into this config so far */
    char names[AX_CONFIG_ORIGIN_FILES][AX_CONFIG_STR_MAX]; /* load i's name at [i % 4] */
    ax_config_key_origin_t keys[AX_CONFIG_ORIGIN_KEYS];
} ax_config_origin_t;

typedef struct ax_config {
    uint32_t size; /* sizeof(ax_config_t): set by ax_config_init/AX_CONFIG_INIT */

    /* [topology] where the plan's hardware comes from (both empty: this machine) */
    char topology_synthetic[AX_CONFIG_STR_MAX]; /* hwloc synthetic, "pack:2 numa:2 ..." */
    char topology_xml[AX_CONFIG_STR_MAX];       /* path of an hwloc XML export */

    /* [workers] placement */
    uint32_t workers;                   /* 0: one per selected core (or PU, with smt=all);
                                           at most AX_WORKERS_MAX */
    char cpus[AX_CONFIG_STR_MAX];       /* "": all; else PU OS-index list "0-7,16" */
    char numa_nodes[AX_CONFIG_STR_MAX]; /* "": all; else NUMA OS-index list "0,2" */
    uint32_t smt;                       /* enum ax_smt_policy */
    uint32_t reserve_cores;             /* cores left for the embedding program (last ones) */
    bool oversubscribe;                 /* allow more workers than PUs: unpinned, no spin */

    /* [memory] */
    uint64_t arena_bytes; /* per worker arena; 0: 64 MiB; min 1 MiB */
    bool prefault;        /* touch every arena page at create */
    bool hugepages;       /* try MAP_HUGETLB / THP for arenas; fall back with a note */

    /* [scheduler] */
    uint32_t ring_slots; /* per ordered worker pair; 0: auto (256..4096 by worker count);
                            power of two, 8..65536 */
    uint32_t batch;      /* messages per source per loop turn; 0: 64; 1..65536 */
    int32_t spin_us;     /* idle spin before parking; 0: 50 us; <0: never spin */
    uint32_t max_actors; /* actor slots per worker; 0: 1048576 (1 Mi); at most AX_ACTORS_MAX */
    uint32_t doorbell;   /* enum ax_doorbell: which inbound rings a worker visits */
    uint32_t ring_peers; /* planning hint: other workers each worker sends to, for the
                            ring budget when rings are made on first use (doorbell on);
                            0: all of them.  The engine does not enforce it. */
    int32_t watchdog_ms;      /* report a behaviour running longer; 0: 100 ms;
                                 <0 (AX_WATCHDOG_OFF): off; at most 3600000 */
    uint32_t watchdog_action; /* enum ax_watchdog_action */
    uint32_t fault_report;    /* enum ax_fault_report */

    /* [io] */
    uint32_t io_entries;        /* io_uring SQ entries per worker; 0: 256 */
    bool io_sqpoll;             /* SQPOLL thread per worker (burns a core when busy) */
    uint32_t io_buf_count;      /* provided receive buffers per worker; 0: 256 */
    uint32_t io_buf_size;       /* bytes each; 0: 16384 */
    uint64_t io_conn_max_bytes; /* per-connection buffered bytes before close; 0: 64 MiB */
    uint64_t io_send_pool_bytes; /* resident memory per worker that copies of TCP sends
                                    above 4 KiB go to; 0: 4 MiB */

    /* [cluster] (docs/cluster.md): this engine as one node of several.  A
     * node joins a cluster when listen or peers is set (or through the MPI
     * launcher, axon/cluster.h). */
    uint32_t cluster_node_id;                   /* 0..255, unique in the cluster */
    char cluster_listen[AX_CONFIG_STR_MAX];     /* "host:port" of the join listener;
                                                   "": none (port 0: any free port) */
    char cluster_peers[AX_CONFIG_STR_MAX];      /* "host:port,host:port": nodes (or one
                                                   seed) to join */
    char cluster_cookie[AX_CONFIG_STR_MAX];     /* shared secret; required in a cluster */
    uint32_t cluster_heartbeat_ms;              /* 0: 200 ms; 10..60000 */
    uint32_t cluster_timeout_ms;                /* silence before a node is unreachable;
                                                   0: 10 x heartbeat; 50..600000 */
    uint32_t cluster_progress;                  /* enum ax_cluster_progress */
    uint32_t cluster_poll_us;                   /* progress = spin: a parked worker polls UCP
                                                   this often; 0: 1000; 10..1000000 */
    char cluster_state_file[AX_CONFIG_STR_MAX]; /* file keeping this node's last incarnation
                                                   tag, so a restart takes the next one;
                                                   "": the tag comes from the clock */
    int32_t cluster_yield_us;                   /* an unpinned worker with remote traffic
                                                   since it last parked yields the CPU and
                                                   re-checks this long before it parks;
                                                   0: 50 us; <0: never (docs/cluster.md) */
    /* [workers], appended after the cluster keys so earlier fields keep
     * their offsets */
    bool unpinned; /* never bind workers to CPUs (the kernel places them, as when
                      oversubscribed): for several engine processes sharing CPUs */

    ax_config_origin_t origin; /* private: where each key was set (see above) */
} ax_config_t;

#define AX_CONFIG_INIT { .size = sizeof(ax_config_t) }

/* Where a config error was found, and what was wrong.  `message` is a complete
 * sentence in the form "FILE:LINE: KEY = VALUE: what was expected; what to do". */
typedef struct ax_config_error {
    char file[AX_CONFIG_STR_MAX]; /* file name, "<env>" or "<string>" */
    unsigned line;                /* 1-based; 0 when not from a file */
    char key[64];                 /* the key, "" when the line had none */
    char message[768];
} ax_config_error_t;

/* Zero the struct and set its size.  Always succeeds. */
AX_API void ax_config_init(ax_config_t *cfg);

/* Parse a config file (`key = value`, `[section]`, `# comment`) into cfg,
 * overriding only the keys it sets.  Keys are written `section.key` or inside
 * their section.  Returns 0, or -EINVAL (bad content) / -errno (cannot read);
 * on error cfg is unchanged and err (if not NULL) says where and why. */
AX_API int ax_config_load_file(ax_config_t *cfg, const char *path, ax_config_error_t *err);

/* Same as ax_config_load_file, from memory; `name` labels errors. */
AX_API int ax_config_load_string(ax_config_t *cfg, const char *text, size_t len,
                                 const char *name, ax_config_error_t *err);

/* Apply AXON_<SECTION>_<KEY> environment overrides: the file key upper-cased,
 * dot to '_' (workers.count is AXON_WORKERS_COUNT, scheduler.ring_slots is
 * AXON_SCHEDULER_RING_SLOTS).  A variable that starts with a section
 * (AXON_WORKERS_CONT) or is within two edits of a key's variable
 * (AXON_WORKER_COUNT) but names no key is an error naming it, with a
 * did-you-mean; other AXON_* variables (AXON_PREFIX) are not axon's and are
 * ignored.  envp NULL means the process environment.  Same error contract. */
AX_API int ax_config_apply_env(ax_config_t *cfg, char *const *envp, ax_config_error_t *err);

/* Check ranges and combinations (power-of-two ring, ...).  0 or -EINVAL. */
AX_API int ax_config_validate(const ax_config_t *cfg, ax_config_error_t *err);

/* The effective value of each zero-means-default field. */
AX_API uint64_t ax_config_arena_bytes(const ax_config_t *cfg);
AX_API uint32_t ax_config_ring_slots(const ax_config_t *cfg);
AX_API uint32_t ax_config_batch(const ax_config_t *cfg);
AX_API uint32_t ax_config_max_actors(const ax_config_t *cfg);

#ifdef __cplusplus
}
#endif
#endif /* AXON_CONFIG_H */
