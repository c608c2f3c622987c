/* tests/unit/test_plan.c - the placement planner on the 64-core, 4-node,
 * SMT-2 synthetic server and on this machine.  Threading: single thread.
 * Memory: each test destroys what it creates (cmocka and ASan check).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* open_memstream's buffer comes from libc malloc; cmocka redefines free. */
static void libc_free(void *p) { free(p); }

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "axon/topology.h"

#define SERVER "pack:2 numa:2 l3:2 core:8 pu:2" /* 64 cores, 4 nodes, 8 L3, 128 PUs */

static int load_server(void **state)
{
    ax_topo_t *t = NULL;
    char err[512];
    if (ax_topo_load_synthetic(SERVER, &t, err, sizeof err) < 0) {
        print_error("%s\n", err);
        return -1;
    }
    *state = t;
    return 0;
}

static int unload(void **state)
{
    ax_topo_destroy(*state);
    return 0;
}

static ax_plan_t *plan_ok(const ax_topo_t *t, const ax_config_t *c)
{
    ax_plan_t *p = NULL;
    char err[512] = "";
    int rc = ax_plan_create(t, c, &p, err, sizeof err);
    if (rc != 0)
        fail_msg("ax_plan_create: %d %s", rc, err);
    return p;
}

static bool has_warning(const ax_plan_t *p, const char *phrase)
{
    for (uint32_t i = 0; i < p->nwarnings; i++)
        if (strstr(p->warnings[i], phrase))
            return true;
    return false;
}

static void default_plan_puts_64_workers_on_64_distinct_cores_16_per_node(void **state)
{
    ax_plan_t *p = plan_ok(*state, NULL);
    assert_int_equal(p->nworkers, 64);
    bool core_used[64] = { false };
    unsigned per_node[4] = { 0 };
    for (uint32_t i = 0; i < 64; i++) {
        const ax_plan_worker_t *w = &p->workers[i];
        assert_int_equal(w->worker, i);
        assert_true(w->core < 64);
        assert_false(core_used[w->core]); /* no two workers on one core */
        core_used[w->core] = true;
        assert_true(w->numa < 4);
        per_node[w->numa]++;
        /* first PU of the core: synthetic PUs run 2 per core, P#2k and P#2k+1 */
        assert_int_equal(w->pu, 2 * w->core);
        assert_int_equal(w->package, w->numa / 2);
    }
    for (int n = 0; n < 4; n++)
        assert_int_equal(per_node[n], 16);
    assert_false(p->pinned);
    assert_false(p->this_system);
    assert_false(p->oversubscribed);
    assert_int_equal(p->topo.cores, 64);
    assert_true(has_warning(p, "not this machine"));
    assert_false(has_warning(p, "share core"));
    ax_plan_destroy(p);
}

static void neighbouring_workers_share_l3_and_node(void **state)
{
    ax_plan_t *p = plan_ok(*state, NULL);
    unsigned l3_changes = 0, node_changes = 0;
    for (uint32_t i = 1; i < p->nworkers; i++) {
        const ax_plan_worker_t *a = &p->workers[i - 1], *b = &p->workers[i];
        assert_true(b->numa >= a->numa);
        assert_true(b->l3 >= a->l3);
        l3_changes += a->l3 != b->l3;
        node_changes += a->numa != b->numa;
        if (a->l3 == b->l3)
            assert_int_equal(a->numa, b->numa);
    }
    /* 8 L3 groups of 8 cores and 4 nodes: the fewest possible boundaries. */
    assert_int_equal(l3_changes, 7);
    assert_int_equal(node_changes, 3);
    ax_plan_destroy(p);
}

static void smt_all_gives_one_worker_per_pu_siblings_adjacent(void **state)
{
    ax_config_t c;
    ax_config_init(&c);
    c.smt = AX_SMT_ALL;
    ax_plan_t *p = plan_ok(*state, &c);
    assert_int_equal(p->nworkers, 128);
    bool pu_used[128] = { false };
    for (uint32_t i = 0; i < 128; i++) {
        assert_true(p->workers[i].pu < 128);
        assert_false(pu_used[p->workers[i].pu]);
        pu_used[p->workers[i].pu] = true;
        assert_int_equal(p->workers[i].core, i / 2);
    }
    assert_true(has_warning(p, "workers 0 and 1 share core 0"));
    assert_true(has_warning(p, "more cores run more than one worker"));
    ax_plan_destroy(p);
}

static void a_cpu_list_restricts_workers_to_those_pus(void **state)
{
    ax_config_t c;
    ax_config_init(&c);
    strcpy(c.cpus, "0-31,97");
    ax_plan_t *p = plan_ok(*state, &c);
    /* PUs 0-31 are cores 0-15 (node 0); PU 97 is the second PU of core 48 */
    assert_int_equal(p->nworkers, 17);
    for (uint32_t i = 0; i < 16; i++) {
        assert_int_equal(p->workers[i].core, i);
        assert_int_equal(p->workers[i].numa, 0);
    }
    assert_int_equal(p->workers[16].pu, 97);
    assert_int_equal(p->workers[16].core, 48);
    assert_int_equal(p->workers[16].numa, 3);
    ax_plan_destroy(p);

    c.smt = AX_SMT_ALL;
    p = plan_ok(*state, &c);
    assert_int_equal(p->nworkers, 33);
    ax_plan_destroy(p);
}

static void a_numa_node_set_restricts_workers_to_those_nodes(void **state)
{
    ax_config_t c;
    ax_config_init(&c);
    strcpy(c.numa_nodes, "1,3");
    ax_plan_t *p = plan_ok(*state, &c);
    assert_int_equal(p->nworkers, 32);
    unsigned per_node[4] = { 0 };
    for (uint32_t i = 0; i < p->nworkers; i++)
        per_node[p->workers[i].numa]++;
    assert_int_equal(per_node[0], 0);
    assert_int_equal(per_node[1], 16);
    assert_int_equal(per_node[2], 0);
    assert_int_equal(per_node[3], 16);
    ax_plan_destroy(p);

    /* both filters: node 2 holds cores 32-47 = PUs 64-95 */
    strcpy(c.numa_nodes, "2");
    strcpy(c.cpus, "0-71");
    p = plan_ok(*state, &c);
    assert_int_equal(p->nworkers, 4);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(p->workers[i].core, 32 + i);
    ax_plan_destroy(p);
}

static void ids_missing_from_the_topology_are_errors(void **state)
{
    ax_config_t c;
    ax_config_init(&c);
    ax_plan_t *p = (ax_plan_t *)1;
    char err[512];
    strcpy(c.cpus, "0-200");
    assert_int_equal(ax_plan_create(*state, &c, &p, err, sizeof err), -EINVAL);
    assert_null(p);
    assert_non_null(strstr(err, "PU 128 does not exist"));
    ax_config_init(&c);
    strcpy(c.numa_nodes, "4");
    assert_int_equal(ax_plan_create(*state, &c, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "NUMA node 4 does not exist"));
}

static void more_workers_than_cores_fails_unless_oversubscription_is_allowed(void **state)
{
    ax_config_t c;
    ax_config_init(&c);
    c.workers = 96;
    ax_plan_t *p = NULL;
    char err[512];
    assert_int_equal(ax_plan_create(*state, &c, &p, err, sizeof err), -EINVAL);
    assert_null(p);
    assert_non_null(strstr(err, "workers.count = 96: the selection has 64 cores"));
    assert_non_null(strstr(err, "oversubscribe = true"));

    c.oversubscribe = true;
    p = plan_ok(*state, &c);
    assert_int_equal(p->nworkers, 96);
    assert_true(p->oversubscribed);
    assert_false(p->pinned);
    assert_true(has_warning(p, "OVERSUBSCRIBED: 96 workers on 64 cores"));
    assert_true(has_warning(p, "UNPINNED"));
    assert_true(has_warning(p, "workers 0 and 64 share core 0"));
    ax_plan_destroy(p);
}

static void a_smaller_count_packs_workers_onto_the_first_l3_and_node(void **state)
{
    ax_config_t c;
    ax_config_init(&c);
    c.workers = 8;
    ax_plan_t *p = plan_ok(*state, &c);
    assert_int_equal(p->nworkers, 8);
    for (uint32_t i = 0; i < 8; i++) {
        assert_int_equal(p->workers[i].l3, 0);
        assert_int_equal(p->workers[i].numa, 0);
    }
    ax_plan_destroy(p);
}

static void reserved_cores_are_taken_from_the_end(void **state)
{
    ax_config_t c;
    ax_config_init(&c);
    c.reserve_cores = 4;
    ax_plan_t *p = plan_ok(*state, &c);
    assert_int_equal(p->nworkers, 60);
    for (uint32_t i = 0; i < 60; i++)
        assert_true(p->workers[i].core < 60);
    ax_plan_destroy(p);

    c.reserve_cores = 64;
    char err[512];
    assert_int_equal(ax_plan_create(*state, &c, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "reserve_cores = 64"));
}

/* Issue 14: 256 workers that each talk to 16 others need 64 MiB of ring
 * slots (+ one control page per worker), not the 1 GiB of the full mesh. */
static void the_ring_budget_follows_ring_peers(void **state)
{
    (void)state;
    ax_topo_t *t;
    char err[256];
    assert_int_equal(ax_topo_load_synthetic("pack:4 numa:2 l3:2 core:16 pu:2", &t, err, sizeof err), 0);
    ax_config_t c;
    ax_config_init(&c);
    c.ring_peers = 16;
    ax_plan_t *p = plan_ok(t, &c);
    assert_int_equal(p->nworkers, 256);
    assert_int_equal(p->ring_slots, 256);
    assert_true(p->rings_lazy);
    assert_int_equal(p->ring_peers, 16);
    assert_int_equal(p->ring_budget_bytes, 256ull * (16 * 256 * 64 + 4096));
    assert_true(p->ring_budget_bytes - 256ull * 4096 <= 64ull << 20);
    assert_int_equal(p->ring_mesh_bytes, 256ull * 255 * (256 * 64 + 192));
    ax_plan_destroy(p);
    /* Without the doorbell every ring is made at create: the hint is moot. */
    c.doorbell = AX_DOORBELL_OFF;
    p = plan_ok(t, &c);
    assert_false(p->rings_lazy);
    assert_int_equal(p->ring_peers, 255);
    ax_plan_destroy(p);
    ax_topo_destroy(t);
}

static void the_memory_budget_adds_arenas_and_the_ring_mesh(void **state)
{
    ax_plan_t *p = plan_ok(*state, NULL);
    assert_int_equal(p->arena_bytes, 64ull << 20);
    assert_int_equal(p->ring_slots, 256);
    assert_int_equal(p->ring_bytes, 256 * 64 + 3 * 64);
    assert_int_equal(p->ring_mesh_bytes, 64ull * 63 * (256 * 64 + 3 * 64));
    assert_int_equal(p->arena_total_bytes, 64ull * (64ull << 20));
    /* 64 workers: the doorbell is on, rings are made on first use; with
     * no ring_peers hint the budget counts every pair: 63 rings' slots and
     * their control blocks (63 x 192 B, in 3 pages) per receiver. */
    assert_true(p->rings_lazy);
    assert_int_equal(p->ring_peers, 63);
    assert_int_equal(p->ring_budget_bytes, 64ull * (63 * 256 * 64 + 3 * 4096));
    assert_int_equal(p->total_bytes, p->arena_total_bytes + p->ring_budget_bytes);
    ax_plan_destroy(p);

    ax_config_t c;
    ax_config_init(&c);
    c.ring_slots = 65536;
    c.arena_bytes = 8ull << 20;
    p = plan_ok(*state, &c);
    assert_int_equal(p->ring_bytes, 65536ull * 64 + 192);
    assert_true(has_warning(p, "rings will not fit the arenas"));
    assert_true(has_warning(p, "NUMA node 0:"));
    ax_plan_destroy(p);
}

static void a_bad_config_is_refused_with_its_reason(void **state)
{
    ax_config_t c;
    ax_config_init(&c);
    c.ring_slots = 100;
    ax_plan_t *p = NULL;
    char err[512];
    assert_int_equal(ax_plan_create(*state, &c, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "ring_slots = 100"));
    assert_int_equal(ax_plan_create(NULL, &c, &p, err, sizeof err), -EINVAL);
    ax_plan_destroy(NULL);
}

static void a_plan_outlives_its_topology_and_prints_as_text_and_json(void **state)
{
    (void)state;
    ax_topo_t *t = NULL;
    assert_int_equal(ax_topo_load_synthetic("pack:1 core:3 pu:1", &t, NULL, 0), 0);
    ax_plan_t *p = plan_ok(t, NULL);
    ax_topo_destroy(t); /* ASan would catch a plan that still points into it */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ax_plan_print(p, f);
    fflush(f);
    assert_non_null(strstr(buf, "synthetic: pack:1 core:3 pu:1"));
    assert_non_null(strstr(buf, "     2     2     2     -     0        0")); /* no L3: "-" */
    assert_non_null(strstr(buf, "memory budget"));
    rewind(f);
    ax_plan_print_json(p, f);
    fputc('\0', f);
    fflush(f);
    assert_non_null(strstr(buf, "\"workers\":["));
    assert_non_null(strstr(buf, "{\"worker\":2,\"pu\":2,\"core\":2,\"l3\":null,\"numa\":0"));
    /* 3 workers, automatic rings: 4096 slots * 64 B + 3 control lines,
     * times N*(N-1) = 6 rings */
    assert_non_null(strstr(buf, "\"ring_mesh_bytes\":1574016"));
    assert_non_null(strstr(buf, "\"pinned\":false"));
    fclose(f);
    libc_free(buf);
    ax_plan_destroy(p);
}

/* Several single-worker engine processes on one host (cluster nodes):
 * pinned, each would take the first CPU of its selection, all the same one. */
static void workers_unpinned_leaves_placement_to_the_kernel(void **state)
{
    (void)state;
    ax_topo_t *t = NULL;
    char err[512];
    assert_int_equal(ax_topo_load_system(&t, err, sizeof err), 0);
    ax_config_t c;
    ax_config_init(&c);
    c.workers = 1;
    ax_plan_t *p = plan_ok(t, &c);
    assert_true(p->pinned);
    ax_plan_destroy(p);
    assert_int_equal(ax_config_load_string(&c, "workers.unpinned = true\n", 24, "t", NULL), 0);
    assert_true(c.unpinned);
    p = plan_ok(t, &c);
    assert_false(p->pinned);
    assert_false(p->oversubscribed);
    assert_true(p->this_system);
    ax_plan_destroy(p);
    ax_topo_destroy(t);
}

static void on_this_machine_the_default_plan_is_pinned_one_per_core(void **state)
{
    (void)state;
    ax_topo_t *t = NULL;
    char err[512];
    assert_int_equal(ax_topo_load_system(&t, err, sizeof err), 0);
    ax_topo_summary_t s;
    ax_topo_summary(t, &s);
    ax_plan_t *p = plan_ok(t, NULL);
    assert_int_equal(p->nworkers, s.cores);
    assert_true(p->pinned);
    assert_true(p->this_system);
    assert_int_equal(p->nwarnings, 0);
    ax_plan_destroy(p);
    ax_topo_destroy(t);
}

static void automatic_ring_size_gives_each_worker_about_a_mebibyte(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    assert_int_equal(ax_plan_auto_ring_slots(&c, 1), 4096);
    assert_int_equal(ax_plan_auto_ring_slots(&c, 2), 4096);
    assert_int_equal(ax_plan_auto_ring_slots(&c, 8), 2048); /* 7 rings x 2048 x 64 B = 896 KiB */
    assert_int_equal(ax_plan_auto_ring_slots(&c, 16), 1024);
    assert_int_equal(ax_plan_auto_ring_slots(&c, 64), 256); /* 63 x 256 x 64 B ~ 1 MiB */
    assert_int_equal(ax_plan_auto_ring_slots(&c, 4096), 256); /* never below 256 */
    c.ring_slots = 8;
    assert_int_equal(ax_plan_auto_ring_slots(&c, 2), 8); /* an explicit size wins */
}

/* ---- errors name where the key was set (issue 10, item 13) --------------------- */

/* Load the topology the config names and plan it; the first error, or "". */
static int plan_from(const ax_config_t *c, char *err, size_t len)
{
    ax_topo_t *t = NULL;
    ax_plan_t *p = NULL;
    err[0] = '\0';
    int rc = ax_topo_load_config(c, &t, err, len);
    if (rc == 0)
        rc = ax_plan_create(t, c, &p, err, len);
    ax_plan_destroy(p);
    ax_topo_destroy(t);
    return rc;
}

#define LOADS(c, text) \
    assert_int_equal(ax_config_load_string((c), (text), strlen(text), "axon.conf", NULL), 0)

static void expect_plan_error(const ax_config_t *c, const char *want)
{
    char err[1024];
    assert_int_equal(plan_from(c, err, sizeof err), -EINVAL);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("expected an error starting '%s', got '%s'", want, err);
}

static void plan_errors_name_the_file_line_or_variable_that_set_the_key(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    LOADS(&c, "# machine\n[topology]\nsynthetic = \"pack:1 core:4 pu:1\"\n[workers]\ncount = 6\n");
    expect_plan_error(&c, "axon.conf:5: workers.count = 6: the selection has 4 cores");

    char *env[] = { "AXON_WORKERS_COUNT=7", NULL };
    assert_int_equal(ax_config_apply_env(&c, env, NULL), 0);
    expect_plan_error(&c, "AXON_WORKERS_COUNT (environment): workers.count = 7: the selection");

    c.workers = 8; /* set in C after both: neither the file nor the variable is to blame */
    expect_plan_error(&c, "workers.count = 8: the selection has 4 cores");

    ax_config_init(&c);
    LOADS(&c, "topology.synthetic = pack:1 core:4 pu:1\nworkers.cpus = 0-2,9\n");
    expect_plan_error(&c, "axon.conf:2: workers.cpus = 0-2,9: PU 9 does not exist");

    ax_config_init(&c);
    LOADS(&c, "topology.synthetic = pack:1 numa:2 core:2 pu:1\n\nworkers.numa_nodes = 5\n");
    expect_plan_error(&c, "axon.conf:3: workers.numa_nodes = 5: NUMA node 5 does not exist");

    ax_config_init(&c);
    LOADS(&c, "topology.synthetic = pack:1 core:4 pu:1\n[workers]\nreserve_cores = 4\n");
    expect_plan_error(&c, "axon.conf:3: workers.reserve_cores = 4: the selection has only 4");

    ax_config_init(&c);
    LOADS(&c, "[topology]\n\nsynthetic = \"pack:2 bogus:3\"\n");
    expect_plan_error(&c, "axon.conf:3: synthetic topology 'pack:2 bogus:3' is not valid");

    ax_config_init(&c);
    char *xml[] = { "AXON_TOPOLOGY_XML=/nonexistent/server.xml", NULL };
    assert_int_equal(ax_config_apply_env(&c, xml, NULL), 0);
    char err[1024];
    assert_true(plan_from(&c, err, sizeof err) < 0);
    if (strncmp(err, "AXON_TOPOLOGY_XML (environment): cannot use XML topology", 56) != 0)
        fail_msg("missing XML file from the environment: '%s'", err);

    /* Each load keeps its own name; past the last four, the line remains. */
    ax_config_init(&c);
    LOADS(&c, "topology.synthetic = pack:1 core:4 pu:1\n");
    assert_int_equal(ax_config_load_string(&c, "\nworkers.count = 9\n", 19, "second.conf", NULL), 0);
    assert_int_equal(ax_config_load_string(&c, "memory.prefault = on\n", 21, "third.conf", NULL), 0);
    expect_plan_error(&c, "second.conf:2: workers.count = 9");
    for (int i = 0; i < 3; i++)
        assert_int_equal(ax_config_load_string(&c, "io.sqpoll = on\n", 15, "more.conf", NULL), 0);
    expect_plan_error(&c, "line 2 of an earlier config file: workers.count = 9");
}

/* workers.count above what an engine runs used to pass config and plan, then
 * fail in ax_engine_create blaming memory.arena_bytes.  Config refuses the
 * number; the plan refuses a count of 0 that would give too many. */
static void worker_counts_above_the_engine_limit_are_refused_before_any_engine(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    assert_int_equal(ax_config_load_string(&c, "workers.count = 1025\n", 21, "axon.conf", NULL),
                     -EINVAL);
    c.workers = AX_WORKERS_MAX;
    c.oversubscribe = true;
    strcpy(c.topology_synthetic, "pack:1 core:4 pu:1");
    char err[1024];
    assert_int_equal(plan_from(&c, err, sizeof err), 0); /* 1024 unpinned: the limit itself */

    ax_config_init(&c);
    LOADS(&c, "[topology]\nsynthetic = pack:2 numa:2 core:300 pu:1\n");
    expect_plan_error(&c, "workers.count = 0 means one worker per selected core, and this "
                          "topology (synthetic: pack:2 numa:2 core:300 pu:1) has 1200: an engine "
                          "runs at most 1024 workers");
    strcpy(c.numa_nodes, "0-2");
    char ok[1024];
    assert_int_equal(plan_from(&c, ok, sizeof ok), 0); /* 900 cores: fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_plan_puts_64_workers_on_64_distinct_cores_16_per_node),
        cmocka_unit_test(neighbouring_workers_share_l3_and_node),
        cmocka_unit_test(smt_all_gives_one_worker_per_pu_siblings_adjacent),
        cmocka_unit_test(a_cpu_list_restricts_workers_to_those_pus),
        cmocka_unit_test(a_numa_node_set_restricts_workers_to_those_nodes),
        cmocka_unit_test(ids_missing_from_the_topology_are_errors),
        cmocka_unit_test(more_workers_than_cores_fails_unless_oversubscription_is_allowed),
        cmocka_unit_test(a_smaller_count_packs_workers_onto_the_first_l3_and_node),
        cmocka_unit_test(reserved_cores_are_taken_from_the_end),
        cmocka_unit_test(the_memory_budget_adds_arenas_and_the_ring_mesh),
        cmocka_unit_test(the_ring_budget_follows_ring_peers),
        cmocka_unit_test(a_bad_config_is_refused_with_its_reason),
        cmocka_unit_test(a_plan_outlives_its_topology_and_prints_as_text_and_json),
        cmocka_unit_test(automatic_ring_size_gives_each_worker_about_a_mebibyte),
        cmocka_unit_test(on_this_machine_the_default_plan_is_pinned_one_per_core),
        cmocka_unit_test(workers_unpinned_leaves_placement_to_the_kernel),
        cmocka_unit_test(plan_errors_name_the_file_line_or_variable_that_set_the_key),
        cmocka_unit_test(worker_counts_above_the_engine_limit_are_refused_before_any_engine),
    };
    return cmocka_run_group_tests_name("topology/plan", tests, load_server, unload);
}
