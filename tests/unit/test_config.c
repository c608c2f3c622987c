/* tests/unit/test_config.c - the config parser, environment overrides and
 * validation: every key, every error path reporting FILE:LINE, and "nothing
 * applied on error".  Threading: single thread.  Memory: none kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "axon/config.h"

#define LOAD(cfg, text, err) ax_config_load_string((cfg), (text), strlen(text), "test.conf", (err))

static void defaults_are_valid_and_documented(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    ax_config_error_t e;
    assert_int_equal(ax_config_validate(&c, &e), 0);
    assert_int_equal(c.size, sizeof c);
    assert_int_equal(ax_config_arena_bytes(&c), 64ull << 20);
    assert_int_equal(ax_config_ring_slots(&c), 256);
    assert_int_equal(ax_config_batch(&c), 64);
    assert_int_equal(ax_config_max_actors(&c), 1048576);
    ax_config_t i = AX_CONFIG_INIT;
    assert_memory_equal(&i, &c, sizeof c);
}

static void a_full_file_sets_every_key(void **state)
{
    (void)state;
    const char *text =
        "# axon config\n"
        "\n"
        "[topology]\n"
        "synthetic = \"pack:2 numa:2 l3:2 core:8 pu:2\"   # 64 cores\n"
        "[workers]\n"
        "count = 48\n"
        "cpus = 0-63, 100\n"
        "numa_nodes = 0,2\n"
        "smt = all\n"
        "reserve_cores = 2\n"
        "oversubscribe = yes\n"
        "[memory]\n"
        "arena_bytes = 128MiB\n"
        "prefault = on\n"
        "hugepages = 1\n"
        "[scheduler]\n"
        "ring_slots = 1024\n"
        "batch = 32\n"
        "spin_us = -1\n"
        "max_actors = 4096\n"
        "doorbell = off\n"
        "[io]\n"
        "entries = 512\n"
        "sqpoll = true\n"
        "buf_count = 128\n"
        "buf_size = 4K\n"
        "conn_max_bytes = 1G\n"
        "send_pool_bytes = 8M\n";
    ax_config_t c;
    ax_config_init(&c);
    ax_config_error_t e;
    assert_int_equal(LOAD(&c, text, &e), 0);
    assert_string_equal(c.topology_synthetic, "pack:2 numa:2 l3:2 core:8 pu:2");
    assert_int_equal(c.workers, 48);
    assert_string_equal(c.cpus, "0-63, 100");
    assert_string_equal(c.numa_nodes, "0,2");
    assert_int_equal(c.smt, AX_SMT_ALL);
    assert_int_equal(c.doorbell, AX_DOORBELL_OFF);
    assert_int_equal(c.reserve_cores, 2);
    assert_true(c.oversubscribe);
    assert_int_equal(c.arena_bytes, 128ull << 20);
    assert_true(c.prefault);
    assert_true(c.hugepages);
    assert_int_equal(c.ring_slots, 1024);
    assert_int_equal(c.batch, 32);
    assert_int_equal(c.spin_us, -1);
    assert_int_equal(c.max_actors, 4096);
    assert_int_equal(c.io_entries, 512);
    assert_true(c.io_sqpoll);
    assert_int_equal(c.io_buf_count, 128);
    assert_int_equal(c.io_buf_size, 4096);
    assert_int_equal(c.io_conn_max_bytes, 1ull << 30);
    assert_int_equal(c.io_send_pool_bytes, 8ull << 20);
    assert_int_equal(ax_config_validate(&c, &e), 0);
}

static void dotted_keys_work_outside_and_inside_sections(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    ax_config_error_t e;
    assert_int_equal(LOAD(&c, "workers.count = 4\n[memory]\nscheduler.ring_slots = 64\r\n"
                              "prefault=false\n  ; semicolon comment\n", &e), 0);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.ring_slots, 64);
    assert_false(c.prefault);
}

static void booleans_and_sizes_accept_every_documented_spelling(void **state)
{
    (void)state;
    static const struct { const char *v; bool b; } bools[] = {
        { "true", true }, { "TRUE", true }, { "yes", true }, { "on", true }, { "1", true },
        { "false", false }, { "no", false }, { "Off", false }, { "0", false },
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "memory.prefault = %s\n", bools[i].v);
        ax_config_t c;
        ax_config_init(&c);
        c.prefault = !bools[i].b;
        assert_int_equal(LOAD(&c, text, NULL), 0);
        assert_int_equal(c.prefault, bools[i].b);
    }
    static const struct { const char *v; uint64_t n; } sizes[] = {
        { "1048576", 1u << 20 }, { "1M", 1u << 20 }, { "1MiB", 1u << 20 }, { "2 GiB", 2ull << 30 },
        { "1024K", 1u << 20 }, { "1kib", 0 }, { "1T", 1ull << 40 }, { "0", 0 },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "memory.arena_bytes = %s\n", sizes[i].v);
        ax_config_t c;
        ax_config_init(&c);
        int rc = LOAD(&c, text, NULL);
        if (strcmp(sizes[i].v, "1kib") == 0) {
            assert_int_equal(rc, -EINVAL); /* 1 KiB is below the 1 MiB minimum */
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(c.arena_bytes, sizes[i].n);
        }
    }
}

/* Every error names file:line and key, says what was expected, and leaves
 * the struct exactly as it was. */
typedef struct bad_case {
    const char *text;
    unsigned line;
    const char *key;  /* err.key */
    const char *want; /* a phrase of the message */
} bad_case_t;

static const bad_case_t BAD[] = {
    { "[workers]\ncuont = 4\n", 2, "cuont", "did you mean count?" },
    { "[wrokers]\n", 1, "", "did you mean workers?" },
    { "[workers]\ncount 4\n", 2, "", "expected 'key = value'" },
    { "count = 4\n", 1, "count", "written section.key" },
    { "[workers]\ncount = four\n", 2, "workers.count", "not a number" },
    { "[workers]\ncount = 99999999999999999999999\n", 2, "workers.count", "too large" },
    { "[workers]\ncount = 5000\n", 2, "workers.count", "from 1 to 1024" },
    { "[workers]\ncount = 1025\n", 2, "workers.count", "from 1 to 1024" },
    { "[scheduler]\nmax_actors = 16777217\n", 2, "scheduler.max_actors", "from 1 to 16777216" },
    { "[workers]\ncount = -1\n", 2, "workers.count", "negative" },
    { "[workers]\ncount = 4M\n", 2, "workers.count", "no unit" },
    { "\n\n[scheduler]\nring_slots = 100\n", 4, "scheduler.ring_slots", "power of two" },
    { "scheduler.ring_slots = 4\n", 1, "scheduler.ring_slots", "from 8 to 65536" },
    { "scheduler.ring_slots = 131072\n", 1, "scheduler.ring_slots", "power of two" },
    { "scheduler.spin_us = 2000000\n", 1, "scheduler.spin_us", "1000000" },
    { "memory.prefault = maybe\n", 1, "memory.prefault", "true or false" },
    { "workers.smt = sometimes\n", 1, "workers.smt", "core or all" },
    { "scheduler.doorbell = maybe\n", 1, "scheduler.doorbell", "auto, on or off" },
    { "scheduler.watchdog_ms = 3600001\n", 1, "scheduler.watchdog_ms", "0 or off" },
    { "scheduler.watchdog_ms = -5\n", 1, "scheduler.watchdog_ms", "negative" },
    { "scheduler.watchdog_ms = soon\n", 1, "scheduler.watchdog_ms", "not a number" },
    { "scheduler.watchdog_action = panic\n", 1, "scheduler.watchdog_action", "report or abort" },
    { "scheduler.fault_report = maybe\n", 1, "scheduler.fault_report", "on or off" },
    { "workers.cpus = 0-\n", 1, "workers.cpus", "range needs an end" },
    { "workers.cpus = 7-2\n", 1, "workers.cpus", "backwards" },
    { "workers.cpus = 0;1\n", 1, "workers.cpus", "not allowed" },
    { "workers.numa_nodes = 70000\n", 1, "workers.numa_nodes", "largest allowed" },
    { "workers.count = 4\n# c\nworkers.count = 8\n", 3, "workers.count", "already set on line 1" },
    { "[workers]\ncount = 4\n[workers]\ncount = 5\n", 4, "workers.count", "already set on line 2" },
    { "memory.arena_bytes = 64X\n", 1, "memory.arena_bytes", "unknown unit" },
    { "memory.arena_bytes = 2T\n", 1, "memory.arena_bytes", "1MiB to 1TiB" },
    { "memory.arena_bytes = 18446744073709551615K\n", 1, "memory.arena_bytes", "too large" },
    { "memory.arena_bytes = 9007199254740992K\n", 1, "memory.arena_bytes", "too large" },
    { "[io\n", 1, "", "section header" },
    { "[io] x\n", 1, "", "section header" },
    { "topology.xml = \"/tmp/x.xml\n", 1, "topology.xml", "not closed" },
    /* found by fuzz_config: both topology sources in one file loaded, then
     * failed validation; now the load refuses it at the later line */
    { "topology.xml = y.x\n[topology]\nsynthetic = \"pack:2 numa:2 l3:2 core:8 pu:2\"\n", 3,
      "topology.synthetic", "both set" },
    { "topology.synthetic = \"core:2\"\n# two lines later\n\ntopology.xml = a.xml\n", 4,
      "topology.xml", "both set" },
    { "io.buf_count = 100\n", 1, "io.buf_count", "power of two" },
    { "io.buf_size = 16\n", 1, "io.buf_size", "64 bytes" },
    { "io.conn_max_bytes = 1\n", 1, "io.conn_max_bytes", "4KiB" },
    { "io.send_pool_bytes = 4K\n", 1, "io.send_pool_bytes", "16KiB" },
    { "io.send_pool_bytes = 2G\n", 1, "io.send_pool_bytes", "1GiB" },
    { "= 4\n", 1, "", "key is missing" },
    { "[memory]\nring_slots = 8\n", 2, "ring_slots", "in [memory] (did you mean ring_slots" },
    { "workers.count =\n", 1, "workers.count", "not a number" },
    { "[cluster]\nnode_id = 256\n", 2, "cluster.node_id", "from 0 to 255" },
    { "cluster.listen = 127.0.0.1\n", 1, "cluster.listen", "no \":port\"" },
    { "cluster.listen = 127.0.0.1:99999\n", 1, "cluster.listen", "port from 0 to 65535" },
    { "cluster.listen = a:1,b:2\n", 1, "cluster.listen", "2 addresses where one" },
    { "\ncluster.peers = a:1,\n", 2, "cluster.peers", "ends with a comma" },
    { "cluster.peers = a:1;b:2\n", 1, "cluster.peers", "unexpected text after the port" },
    { "cluster.peers = :7000\n", 1, "cluster.peers", "no host name" },
    { "cluster.heartbeat_ms = 5\n", 1, "cluster.heartbeat_ms", "from 10 to 60000" },
    { "cluster.timeout_ms = 700000\n", 1, "cluster.timeout_ms", "from 50 to 600000" },
    { "[cluster]\nheartbeat = 100\n", 2, "heartbeat", "did you mean heartbeat_ms?" },
    { "\n\ncluster.progress = poll\n", 3, "cluster.progress", "write auto, wakeup or spin" },
    { "cluster.poll_us = 5\n", 1, "cluster.poll_us", "from 10 to 1000000" },
    { "[cluster]\npoll_ms = 5\n", 2, "poll_ms", "did you mean poll_us?" },
    { "cluster.yield_us = 2000000\n", 1, "cluster.yield_us", "a negative number to never yield" },
    { "workers.unpinned = sometimes\n", 1, "workers.unpinned", "true or false" },
};

static void every_bad_line_reports_file_line_key_and_changes_nothing(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const bad_case_t *b = &BAD[i];
        ax_config_t c, before;
        ax_config_init(&c);
        c.workers = 3;
        c.ring_slots = 16;
        before = c;
        ax_config_error_t e;
        int rc = LOAD(&c, b->text, &e);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "test.conf:%u: ", b->line);
        if (rc != -EINVAL || e.line != b->line || strncmp(e.message, prefix, strlen(prefix)) ||
            strcmp(e.key, b->key) || !strstr(e.message, b->want))
            fail_msg("case %zu (%s): rc %d line %u key '%s' message '%s'; wanted line %u key "
                     "'%s' and '%s'", i, b->text, rc, e.line, e.key, e.message, b->line, b->key,
                     b->want);
        assert_string_equal(e.file, "test.conf");
        assert_memory_equal(&c, &before, sizeof c);
    }
}

static void a_bad_last_line_discards_the_good_lines_before_it(void **state)
{
    (void)state;
    ax_config_t c, before;
    ax_config_init(&c);
    before = c;
    ax_config_error_t e;
    assert_int_equal(LOAD(&c, "workers.count = 8\nmemory.prefault = true\nio.entries = 3\n", &e),
                     -EINVAL);
    assert_int_equal(e.line, 3);
    assert_memory_equal(&c, &before, sizeof c);
}

static void long_lines_nul_bytes_and_long_strings_are_rejected(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    ax_config_error_t e;
    char *big = malloc(3000);
    assert_non_null(big);
    memset(big, 'a', 3000);
    memcpy(big, "workers.cpus = ", 15);
    big[2999] = '\n';
    assert_int_equal(ax_config_load_string(&c, big, 3000, "big.conf", &e), -EINVAL);
    assert_int_equal(e.line, 1);
    assert_non_null(strstr(e.message, "big.conf:1: the line is 2999 bytes long"));
    free(big);

    const char nul[] = "workers.count = 4\nworkers.smt = c\0re\n";
    assert_int_equal(ax_config_load_string(&c, nul, sizeof nul - 1, "nul.conf", &e), -EINVAL);
    assert_int_equal(e.line, 2);
    assert_non_null(strstr(e.message, "NUL byte"));

    char longstr[400];
    int n = snprintf(longstr, sizeof longstr, "topology.xml = ");
    memset(longstr + n, 'x', 300);
    longstr[n + 300] = '\0';
    assert_int_equal(LOAD(&c, longstr, &e), -EINVAL);
    assert_non_null(strstr(e.message, "at most 255 fit"));
    /* the value is shown cut short, the sentence stays readable */
    assert_non_null(strstr(e.message, "..."));
    assert_int_equal(c.workers, 0);
}

static void a_missing_file_names_the_path_and_errno(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    ax_config_error_t e;
    assert_int_equal(ax_config_load_file(&c, "/nonexistent/axon.conf", &e), -ENOENT);
    assert_string_equal(e.file, "/nonexistent/axon.conf");
    assert_non_null(strstr(e.message, "/nonexistent/axon.conf: cannot open"));
    assert_int_equal(ax_config_load_file(&c, "/", &e), -EIO); /* a directory */
}

static void a_file_error_carries_the_file_name_and_line(void **state)
{
    (void)state;
    char path[] = "/tmp/axon_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "[workers]\ncount = 2\n\n[scheduler]\nbatch = 0x10\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    ax_config_t c;
    ax_config_init(&c);
    ax_config_error_t e;
    assert_int_equal(ax_config_load_file(&c, path, &e), -EINVAL);
    char want[128];
    snprintf(want, sizeof want, "%s:5: scheduler.batch = 0x10: ", path);
    assert_non_null(strstr(e.message, want));
    assert_int_equal(c.workers, 0);
    unlink(path);
}

static void environment_overrides_the_file_and_is_checked(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    ax_config_error_t e;
    assert_int_equal(LOAD(&c, "workers.count = 4\nscheduler.ring_slots = 64\n", &e), 0);
    char *env[] = { "PATH=/bin", "AXON_WORKERS_COUNT=8", "AXON_MEMORY_ARENA_BYTES=2GiB",
                    "AXON_TOPOLOGY_SYNTHETIC=pack:1 core:2 pu:1", "AXON_WORKERS_SMT=all", NULL };
    assert_int_equal(ax_config_apply_env(&c, env, &e), 0);
    assert_int_equal(c.workers, 8);
    assert_int_equal(c.ring_slots, 64);
    assert_int_equal(c.arena_bytes, 2ull << 30);
    assert_int_equal(c.smt, AX_SMT_ALL);
    assert_string_equal(c.topology_synthetic, "pack:1 core:2 pu:1");

    ax_config_t before = c;
    char *bad[] = { "AXON_SCHEDULER_RING_SLOTS=1024", "AXON_SCHEDULER_RING_SLOTS_X=1", NULL };
    assert_int_equal(ax_config_apply_env(&c, bad, &e), -EINVAL);
    assert_string_equal(e.file, "<env>");
    assert_string_equal(e.key, "AXON_SCHEDULER_RING_SLOTS_X");
    assert_non_null(strstr(e.message, "unknown axon variable"));
    assert_non_null(strstr(e.message, "did you mean AXON_SCHEDULER_RING_SLOTS?"));
    assert_memory_equal(&c, &before, sizeof c); /* the good first variable was not applied */

    char *badval[] = { "AXON_SCHEDULER_RING_SLOTS=100", NULL };
    assert_int_equal(ax_config_apply_env(&c, badval, &e), -EINVAL);
    assert_non_null(strstr(e.message, "AXON_SCHEDULER_RING_SLOTS=100 (scheduler.ring_slots)"));
    assert_non_null(strstr(e.message, "power of two"));
    assert_memory_equal(&c, &before, sizeof c);

    char *empty[] = { NULL };
    assert_int_equal(ax_config_apply_env(&c, empty, &e), 0);
}

/* Issue 10 item 21: AXON_PREFIX=/usr/local stopped every program.  Only the
 * config sections' names are axon's: others pass, typos of keys still fail. */
static void unrelated_axon_variables_are_left_to_their_owners(void **state)
{
    (void)state;
    ax_config_t c, before;
    ax_config_init(&c);
    ax_config_error_t e;
    char *others[] = { "AXON_PREFIX=/usr/local", "AXON_TEST_FILTER=fifo*", "AXON_HOME=/x",
                       "AXON_=1", "AXON_KV_PORT=6379", "AXON_DEBUG_CLUSTER=1",
                       "AXON_WORKERS_COUNT=3", NULL };
    assert_int_equal(ax_config_apply_env(&c, others, &e), 0);
    assert_int_equal(c.workers, 3);

    before = c;
    struct {
        const char *var, *hint;
    } typos[] = {
        { "AXON_WORKERS_CONT=3", "did you mean AXON_WORKERS_COUNT?" },  /* a key of [workers] */
        { "AXON_WORKER_COUNT=3", "did you mean AXON_WORKERS_COUNT?" },  /* misspelt section */
        { "AXON_SCHEDULR_BATCH=3", "did you mean AXON_SCHEDULER_BATCH?" },
        { "AXON_IO_NO_SUCH_KEY=1", "unknown axon variable" },           /* [io], no close key */
        { "AXON_MEMORY_=1", "unknown axon variable" },
    };
    for (size_t i = 0; i < sizeof typos / sizeof typos[0]; i++) {
        char *env[] = { (char *)typos[i].var, NULL };
        assert_int_equal(ax_config_apply_env(&c, env, &e), -EINVAL);
        if (!strstr(e.message, typos[i].hint))
            fail_msg("%s: expected '%s' in: %s", typos[i].var, typos[i].hint, e.message);
        assert_memory_equal(&c, &before, sizeof c);
    }
}

/* The file's 0 (or off) turns the watchdog off; the struct's 0 is the
 * default, negative is off. */
static void watchdog_and_fault_report_keys_parse_and_override(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_error_t e;
    ax_config_init(&c);
    assert_int_equal(c.watchdog_ms, 0);
    assert_int_equal(LOAD(&c, "[scheduler]\nwatchdog_ms = 250\nwatchdog_action = abort\n"
                              "fault_report = off\n", &e), 0);
    assert_int_equal(c.watchdog_ms, 250);
    assert_int_equal(c.watchdog_action, AX_WATCHDOG_ABORT);
    assert_int_equal(c.fault_report, AX_FAULT_REPORT_OFF);
    assert_int_equal(LOAD(&c, "scheduler.watchdog_ms = 0\n", &e), 0);
    assert_int_equal(c.watchdog_ms, AX_WATCHDOG_OFF);
    assert_int_equal(LOAD(&c, "scheduler.watchdog_ms = off\nscheduler.fault_report = on\n", &e), 0);
    assert_int_equal(c.watchdog_ms, AX_WATCHDOG_OFF);
    assert_int_equal(c.fault_report, AX_FAULT_REPORT_ON);
    char *env[] = { "AXON_SCHEDULER_WATCHDOG_MS=40", "AXON_SCHEDULER_WATCHDOG_ACTION=report", NULL };
    assert_int_equal(ax_config_apply_env(&c, env, &e), 0);
    assert_int_equal(c.watchdog_ms, 40);
    assert_int_equal(c.watchdog_action, AX_WATCHDOG_REPORT);
    c.watchdog_ms = -7; /* the struct's off */
    assert_int_equal(ax_config_validate(&c, &e), 0);
    c.watchdog_ms = 3600001;
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "scheduler.watchdog_ms = 3600001"));
    c.watchdog_ms = 0;
    c.watchdog_action = 2;
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "scheduler.watchdog_action = 2"));
}

static void cluster_keys_parse_and_override(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_error_t e;
    ax_config_init(&c);
    assert_int_equal(LOAD(&c, "[cluster]\nnode_id = 7\nlisten = 127.0.0.1:0\n"
                              "peers = 10.0.0.1:7400, node-b.example:7400\ncookie = s3cret\n"
                              "heartbeat_ms = 50\ntimeout_ms = 500\n"
                              "state_file = /var/lib/app/node7.inc\n", &e), 0);
    assert_int_equal(c.cluster_node_id, 7);
    assert_string_equal(c.cluster_listen, "127.0.0.1:0");
    assert_string_equal(c.cluster_peers, "10.0.0.1:7400, node-b.example:7400");
    assert_string_equal(c.cluster_cookie, "s3cret");
    assert_int_equal(c.cluster_heartbeat_ms, 50);
    assert_int_equal(c.cluster_timeout_ms, 500);
    assert_string_equal(c.cluster_state_file, "/var/lib/app/node7.inc");
    char *env[] = { "AXON_CLUSTER_NODE_ID=9", "AXON_CLUSTER_PEERS=h:1", NULL };
    assert_int_equal(ax_config_apply_env(&c, env, &e), 0);
    assert_int_equal(c.cluster_node_id, 9);
    assert_string_equal(c.cluster_peers, "h:1");
    char *bad[] = { "AXON_CLUSTER_LISTEN=nowhere", NULL };
    assert_int_equal(ax_config_apply_env(&c, bad, &e), -EINVAL);
    assert_non_null(strstr(e.message, "AXON_CLUSTER_LISTEN"));
    snprintf(c.cluster_listen, sizeof c.cluster_listen, "x:1,y:2");
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "cluster.listen"));
    /* cluster.progress and cluster.poll_us (docs/cluster.md "Progress") */
    ax_config_init(&c);
    assert_int_equal(c.cluster_progress, AX_CLUSTER_PROGRESS_AUTO);
    assert_int_equal(LOAD(&c, "[cluster]\nprogress = spin\npoll_us = 250\n", &e), 0);
    assert_int_equal(c.cluster_progress, AX_CLUSTER_PROGRESS_SPIN);
    assert_int_equal(c.cluster_poll_us, 250);
    assert_int_equal(LOAD(&c, "cluster.progress = WakeUp\n", &e), 0);
    assert_int_equal(c.cluster_progress, AX_CLUSTER_PROGRESS_WAKEUP);
    char *penv[] = { "AXON_CLUSTER_PROGRESS=auto", "AXON_CLUSTER_POLL_US=0", NULL };
    assert_int_equal(ax_config_apply_env(&c, penv, &e), 0);
    assert_int_equal(c.cluster_progress, AX_CLUSTER_PROGRESS_AUTO);
    assert_int_equal(c.cluster_poll_us, 0);
    char *pbad[] = { "AXON_CLUSTER_PROGRESS=fast", NULL };
    assert_int_equal(ax_config_apply_env(&c, pbad, &e), -EINVAL);
    assert_non_null(strstr(e.message, "AXON_CLUSTER_PROGRESS"));
    c.cluster_progress = 3;
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "cluster.progress = 3"));
    c.cluster_progress = AX_CLUSTER_PROGRESS_SPIN;
    c.cluster_poll_us = 2000000;
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "cluster.poll_us"));
    /* cluster.yield_us and workers.unpinned (docs/cluster.md "Oversubscribed nodes") */
    ax_config_init(&c);
    assert_int_equal(c.cluster_yield_us, 0);
    assert_false(c.unpinned);
    assert_int_equal(LOAD(&c, "[cluster]\nyield_us = -1\n[workers]\nunpinned = yes\n", &e), 0);
    assert_int_equal(c.cluster_yield_us, -1);
    assert_true(c.unpinned);
    char *yenv[] = { "AXON_CLUSTER_YIELD_US=200", "AXON_WORKERS_UNPINNED=false", NULL };
    assert_int_equal(ax_config_apply_env(&c, yenv, &e), 0);
    assert_int_equal(c.cluster_yield_us, 200);
    assert_false(c.unpinned);
}

static void validate_checks_values_set_in_the_struct(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_error_t e;
    ax_config_init(&c);
    c.ring_slots = 100;
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "scheduler.ring_slots = 100: expected a power of two"));
    assert_string_equal(e.key, "scheduler.ring_slots");

    ax_config_init(&c);
    c.size = 12;
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "ax_config_init"));

    ax_config_init(&c);
    strcpy(c.topology_synthetic, "pack:1 core:2");
    strcpy(c.topology_xml, "/tmp/x.xml");
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "both set"));

    ax_config_init(&c);
    strcpy(c.cpus, "3-1");
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "workers.cpus = 3-1"));

    ax_config_init(&c);
    memset(c.numa_nodes, '1', sizeof c.numa_nodes);
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "not NUL-terminated"));

    ax_config_init(&c);
    c.smt = 7;
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    c.smt = AX_SMT_ALL;
    c.spin_us = -5;
    c.workers = AX_WORKERS_MAX;
    c.max_actors = AX_ACTORS_MAX;
    assert_int_equal(ax_config_validate(&c, &e), 0);
    c.workers = AX_WORKERS_MAX + 1; /* the engine could not run it (issue 10, item 13) */
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "workers.count = 1025: expected a worker count from 1 to 1024"));
    c.workers = AX_WORKERS_MAX;
    c.max_actors = AX_ACTORS_MAX + 1; /* was clamped to 16 Mi in silence */
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_non_null(strstr(e.message, "scheduler.max_actors = 16777217"));
    c.max_actors = AX_ACTORS_MAX;
    c.batch = 65537;
    assert_int_equal(ax_config_validate(&c, &e), -EINVAL);
    assert_int_equal(ax_config_validate(NULL, &e), -EINVAL);
}

static void null_arguments_fail_cleanly(void **state)
{
    (void)state;
    ax_config_error_t e;
    assert_int_equal(ax_config_load_string(NULL, "x", 1, NULL, &e), -EINVAL);
    ax_config_t c;
    ax_config_init(&c);
    assert_int_equal(ax_config_load_string(&c, NULL, 0, NULL, NULL), 0);
    assert_int_equal(ax_config_load_string(&c, NULL, 3, NULL, &e), -EINVAL);
    assert_int_equal(ax_config_load_file(&c, NULL, NULL), -EINVAL);
    assert_int_equal(ax_config_apply_env(NULL, NULL, NULL), -EINVAL);
    ax_config_init(NULL);
}

/* Inputs the fuzzer found or that fuzzing-style edge cases suggested; each
 * must be rejected (or accepted) without a crash or sanitizer report. */
static void fuzz_regressions_do_not_crash(void **state)
{
    (void)state;
    static const struct { const char *t; size_t n; int rc; } cases[] = {
        { "[", 1, -EINVAL },
        { "]", 1, -EINVAL },
        { "=", 1, -EINVAL },
        { "\"", 1, -EINVAL },
        { "a.b=\"", 5, -EINVAL },
        { "workers.cpus=\"0-3\"", 18, 0 },
        { "workers.cpus=\"", 14, -EINVAL },
        { "workers.count=+", 15, -EINVAL },
        { "workers.count=+4", 16, 0 },
        { "scheduler.spin_us=-2147483648", 29, 0 },
        { "scheduler.spin_us=-2147483649", 29, -EINVAL },
        { "scheduler.spin_us=-9223372036854775808", 38, -EINVAL },
        { "workers.cpus=65535", 18, 0 },
        { "workers.cpus=65536", 18, -EINVAL },
        { "workers.cpus=0-999999999999999999999", 36, -EINVAL },
        { "\n\n\n\n#", 5, 0 },
        { "\xff\xfe=\x01", 4, -EINVAL },
        { "[io]\n#x\nentries=1 #", 19, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ax_config_t c;
        ax_config_init(&c);
        ax_config_error_t e;
        int rc = ax_config_load_string(&c, cases[i].t, cases[i].n, "fuzz", &e);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, wanted %d (%s)", i, rc, cases[i].rc,
                     rc ? e.message : "ok");
        if (rc == 0)
            assert_int_equal(ax_config_validate(&c, &e), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_valid_and_documented),
        cmocka_unit_test(a_full_file_sets_every_key),
        cmocka_unit_test(dotted_keys_work_outside_and_inside_sections),
        cmocka_unit_test(booleans_and_sizes_accept_every_documented_spelling),
        cmocka_unit_test(every_bad_line_reports_file_line_key_and_changes_nothing),
        cmocka_unit_test(a_bad_last_line_discards_the_good_lines_before_it),
        cmocka_unit_test(long_lines_nul_bytes_and_long_strings_are_rejected),
        cmocka_unit_test(a_missing_file_names_the_path_and_errno),
        cmocka_unit_test(a_file_error_carries_the_file_name_and_line),
        cmocka_unit_test(environment_overrides_the_file_and_is_checked),
        cmocka_unit_test(unrelated_axon_variables_are_left_to_their_owners),
        cmocka_unit_test(watchdog_and_fault_report_keys_parse_and_override),
        cmocka_unit_test(cluster_keys_parse_and_override),
        cmocka_unit_test(validate_checks_values_set_in_the_struct),
        cmocka_unit_test(null_arguments_fail_cleanly),
        cmocka_unit_test(fuzz_regressions_do_not_crash),
    };
    return cmocka_run_group_tests_name("topology/config", tests, NULL, NULL);
}
