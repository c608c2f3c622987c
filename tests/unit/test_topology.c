/* tests/unit/test_topology.c - discovery (this machine, synthetic, XML) and
 * the binding helpers: they bind for real here and refuse on any topology
 * that is not this machine; this machine's topology shrinks to the process's
 * CPU affinity, foreign ones never do.  Threading: binding tests run in
 * their own threads so the test process keeps its affinity; the affinity
 * tests change the (single-threaded) process's affinity and restore it in
 * their teardown, even when they fail.  Memory: hwloc buffers are released
 * with hwloc calls, never cmocka's free.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topology/bind.h"
#include "topology/topo_internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define SERVER "pack:2 numa:2 l3:2 core:8 pu:2"

static void this_machine_is_discovered_with_cores_pus_and_a_node(void **state)
{
    (void)state;
    ax_topo_t *t = NULL;
    char err[512] = "";
    assert_int_equal(ax_topo_load_system(&t, err, sizeof err), 0);
    ax_topo_summary_t s;
    ax_topo_summary(t, &s);
    assert_true(s.cores >= 1);
    assert_true(s.pus >= s.cores);
    assert_true(s.numa_nodes >= 1);
    assert_true(s.packages >= 1);
    assert_true(s.memory_bytes > 0);
    /* "this machine" or, when the suite runs under taskset, "this machine,
     * restricted to ..." (full_affinity_gives_the_whole_machine checks it) */
    assert_int_equal(strncmp(s.source, "this machine", 12), 0);
    assert_true(ax_topo_is_this_system(t));
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(s.pus <= (uint32_t)online);
    print_message("this machine: %u packages, %u nodes, %u L3, %u cores, %u PUs\n", s.packages,
                  s.numa_nodes, s.l3_groups, s.cores, s.pus);
    ax_topo_destroy(t);
}

static void the_64_core_synthetic_server_has_the_expected_shape(void **state)
{
    (void)state;
    ax_topo_t *t = NULL;
    char err[512] = "";
    assert_int_equal(ax_topo_load_synthetic(SERVER, &t, err, sizeof err), 0);
    ax_topo_summary_t s;
    ax_topo_summary(t, &s);
    assert_int_equal(s.packages, 2);
    assert_int_equal(s.numa_nodes, 4);
    assert_int_equal(s.l3_groups, 8);
    assert_int_equal(s.cores, 64);
    assert_int_equal(s.pus, 128);
    assert_false(ax_topo_is_this_system(t));
    assert_string_equal(s.source, "synthetic: " SERVER);
    /* core -> node through the memory-child lookup: core 63 is on node 3 */
    assert_int_equal(t->cores[63].numa, 3);
    assert_int_equal(t->cores[63].l3, 7);
    assert_int_equal(t->cores[63].npus, 2);
    ax_topo_destroy(t);
}

static void a_bad_synthetic_string_fails_instead_of_loading_this_machine(void **state)
{
    (void)state;
    ax_topo_t *t = (ax_topo_t *)1;
    char err[512] = "";
    assert_int_equal(ax_topo_load_synthetic(SERVER " oops", &t, err, sizeof err), -EINVAL);
    assert_null(t);
    assert_non_null(strstr(err, "'" SERVER " oops' is not valid hwloc syntax"));
    assert_int_equal(ax_topo_load_synthetic("", &t, err, sizeof err), -EINVAL);
    assert_int_equal(ax_topo_load_synthetic(NULL, &t, NULL, 0), -EINVAL);
}

/* Writes SERVER as hwloc XML to a new file named from the mkstemp template
 * `path`, as lstopo on the target machine would export it. */
static void export_server_xml(char *path)
{
    hwloc_topology_t hw;
    assert_int_equal(hwloc_topology_init(&hw), 0);
    assert_int_equal(hwloc_topology_set_synthetic(hw, SERVER), 0);
    assert_int_equal(hwloc_topology_load(hw), 0);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(hwloc_topology_export_xml(hw, path, 0), 0);
    hwloc_topology_destroy(hw);
}

static void an_xml_export_loads_back_with_the_same_counts(void **state)
{
    (void)state;
    /* Export with hwloc directly, as lstopo on the target machine would. */
    char path[] = "/tmp/axon_test_topo_XXXXXX";
    export_server_xml(path);

    ax_topo_t *t = NULL;
    char err[512] = "";
    assert_int_equal(ax_topo_load_xml(path, &t, err, sizeof err), 0);
    unlink(path);
    ax_topo_summary_t s;
    ax_topo_summary(t, &s);
    assert_int_equal(s.packages, 2);
    assert_int_equal(s.numa_nodes, 4);
    assert_int_equal(s.l3_groups, 8);
    assert_int_equal(s.cores, 64);
    assert_int_equal(s.pus, 128);
    assert_false(ax_topo_is_this_system(t));
    assert_int_equal(strncmp(s.source, "xml: /tmp/axon_test_topo_", 25), 0);
    char berr[512] = "";
    assert_int_equal(ax_topo_bind_thread(t, 0, berr, sizeof berr), -EXDEV);
    assert_non_null(strstr(berr, "topology is XML '/tmp/axon_test_topo_"));
    ax_topo_destroy(t);

    assert_true(ax_topo_load_xml("/nonexistent/topo.xml", &t, err, sizeof err) < 0);
    assert_null(t);
    assert_non_null(strstr(err, "/nonexistent/topo.xml"));
}

static void the_config_chooses_the_topology(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    strcpy(c.topology_synthetic, "pack:1 core:4 pu:2");
    ax_topo_t *t = NULL;
    char err[512];
    assert_int_equal(ax_topo_load_config(&c, &t, err, sizeof err), 0);
    ax_topo_summary_t s;
    ax_topo_summary(t, &s);
    assert_int_equal(s.cores, 4);
    assert_int_equal(s.l3_groups, 0);
    ax_topo_destroy(t);
    strcpy(c.topology_xml, "/tmp/x.xml");
    assert_int_equal(ax_topo_load_config(&c, &t, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "both set"));
    ax_topo_destroy(NULL);
    ax_topo_summary(NULL, &s);
    assert_int_equal(s.cores, 0);
}

static void binding_refuses_on_a_synthetic_topology(void **state)
{
    (void)state;
    ax_topo_t *t = NULL;
    assert_int_equal(ax_topo_load_synthetic(SERVER, &t, NULL, 0), 0);
    char err[512] = "";
    assert_int_equal(ax_topo_bind_thread(t, 100, err, sizeof err), -EXDEV);
    assert_non_null(strstr(err, "topology is synthetic '" SERVER "', not this machine: cannot "
                                "bind; plans for foreign machines run unpinned"));
    static char page[8192] __attribute__((aligned(4096)));
    assert_int_equal(ax_topo_bind_memory(t, page, 4096, 3, err, sizeof err), -EXDEV);
    errno = 0;
    assert_null(ax_topo_alloc_on_node(t, 1 << 20, 3));
    assert_int_equal(errno, EXDEV);
    ax_topo_free(t, NULL, 0);
    ax_topo_destroy(t);
}

typedef struct bind_job {
    const ax_topo_t *t;
    uint32_t pu;
    int rc, cpu_after, current;
    char err[512];
} bind_job_t;

static void *bind_thread(void *arg)
{
    bind_job_t *j = arg;
    j->rc = ax_topo_bind_thread(j->t, j->pu, j->err, sizeof j->err);
    for (volatile int i = 0; i < 1000000; i++) {
    } /* give the scheduler a chance to move us if the binding did not hold */
    j->cpu_after = sched_getcpu();
    j->current = ax_topo_current_pu();
    return NULL;
}

static void binding_a_thread_on_this_machine_runs_it_on_that_pu(void **state)
{
    (void)state;
    ax_topo_t *t = NULL;
    assert_int_equal(ax_topo_load_system(&t, NULL, 0), 0);
    for (uint32_t i = 0; i < t->npus; i++) {
        bind_job_t j = { .t = t, .pu = t->pu_os[i], .rc = -1 };
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, bind_thread, &j), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        if (j.rc != 0)
            fail_msg("bind to PU %u: %d %s", j.pu, j.rc, j.err);
        assert_int_equal(j.cpu_after, (int)j.pu);
        assert_int_equal(j.current, (int)j.pu);
    }
    char err[512] = "";
    assert_int_equal(ax_topo_bind_thread(t, 60000, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "PU 60000 does not exist"));
    assert_int_equal(ax_topo_bind_thread(NULL, 0, err, sizeof err), -EINVAL);
    ax_topo_destroy(t);
}

static void memory_on_this_machine_lands_on_the_asked_node(void **state)
{
    (void)state;
    ax_topo_t *t = NULL;
    assert_int_equal(ax_topo_load_system(&t, NULL, 0), 0);
    uint32_t node = t->nodes[0].os;
    size_t len = 4u << 20;
    char *m = ax_topo_alloc_on_node(t, len, node);
    assert_non_null(m);
    memset(m, 1, len); /* first touch places the pages */
    hwloc_nodeset_t where = hwloc_bitmap_alloc();
    assert_int_equal(hwloc_get_area_memlocation(t->hw, m, len, where, HWLOC_MEMBIND_BYNODESET),
                     0);
    assert_true(hwloc_bitmap_isset(where, node));
    assert_int_equal(hwloc_bitmap_weight(where), 1);
    hwloc_bitmap_free(where);
    char err[512] = "";
    assert_int_equal(ax_topo_bind_memory(t, m, len, node, err, sizeof err), 0);
    assert_int_equal(ax_topo_bind_memory(t, m, len, 4000, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "NUMA node 4000 does not exist"));
    ax_topo_free(t, m, len);
    errno = 0;
    assert_null(ax_topo_alloc_on_node(t, len, 4000));
    assert_int_equal(errno, EINVAL);
    ax_topo_destroy(t);
}

/* ---- process affinity ------------------------------------------------------ */

static cpu_set_t saved_affinity;

static int save_affinity(void **state)
{
    (void)state;
    return sched_getaffinity(0, sizeof saved_affinity, &saved_affinity);
}

static int restore_affinity(void **state)
{
    (void)state;
    return sched_setaffinity(0, sizeof saved_affinity, &saved_affinity);
}

/* This machine as hwloc sees it without axon: the reference the restricted
 * topology is checked against.  The caller destroys it. */
static hwloc_topology_t load_machine(void)
{
    hwloc_topology_t hw;
    assert_int_equal(hwloc_topology_init(&hw), 0);
    assert_int_equal(hwloc_topology_load(hw), 0);
    return hw;
}

/* Run this process on exactly the PUs of `set`. */
static void set_affinity(hwloc_const_cpuset_t set)
{
    cpu_set_t cs;
    CPU_ZERO(&cs);
    int pu;
    hwloc_bitmap_foreach_begin(pu, set) {
        assert_true(pu < CPU_SETSIZE);
        CPU_SET(pu, &cs);
    }
    hwloc_bitmap_foreach_end();
    /* Every thread, not only this one: the topology takes the union of the
     * process's threads, and a thread an earlier test joined can still be
     * listed in /proc/self/task for a moment, with its own mask. */
    DIR *d = opendir("/proc/self/task");
    if (!d)
        fail_msg("opendir /proc/self/task: %s", strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        pid_t tid = (pid_t)atoi(de->d_name);
        if (sched_setaffinity(tid, sizeof cs, &cs) < 0 && errno != ESRCH)
            fail_msg("sched_setaffinity(%d): %s", (int)tid, strerror(errno));
    }
    closedir(d);
}

/* Skips (with the reason) on a one-CPU machine, where no affinity is a
 * strict subset; the caller must not hold anything to free. */
static void skip_unless_two_cpus(hwloc_topology_t hw)
{
    if (hwloc_bitmap_weight(hwloc_topology_get_topology_cpuset(hw)) < 2) {
        hwloc_topology_destroy(hw);
        print_message("SKIP: this machine has a single CPU, so no affinity can be narrower "
                      "than the machine\n");
        skip();
    }
}

static void a_process_bound_to_one_cpu_plans_one_worker_on_that_cpu(void **state)
{
    (void)state;
    hwloc_topology_t hw = load_machine();
    skip_unless_two_cpus(hw);
    hwloc_const_cpuset_t all = hwloc_topology_get_topology_cpuset(hw);
    int last = hwloc_bitmap_last(all), first = hwloc_bitmap_first(all);
    hwloc_bitmap_t one = hwloc_bitmap_alloc();
    hwloc_bitmap_only(one, (unsigned)last);
    set_affinity(one);
    hwloc_bitmap_free(one);

    ax_topo_t *t = NULL;
    char err[512] = "";
    if (ax_topo_load_system(&t, err, sizeof err) < 0)
        fail_msg("ax_topo_load_system: %s", err);
    ax_topo_summary_t s;
    ax_topo_summary(t, &s);
    char want[128];
    snprintf(want, sizeof want, "this machine, restricted to CPUs %d (process affinity)", last);
    assert_string_equal(s.source, want);
    assert_int_equal(s.pus, 1);
    assert_int_equal(s.cores, 1);
    assert_int_equal(t->npus, 1);
    assert_int_equal(t->pu_os[0], (uint32_t)last);
    assert_true(ax_topo_is_this_system(t));
    /* Only nodes local to the allowed PU are left. */
    assert_true(s.numa_nodes >= 1);
    for (uint32_t i = 0; i < t->nnodes; i++) {
        hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(hw, t->nodes[i].os);
        assert_non_null(n);
        assert_true(hwloc_bitmap_isset(n->cpuset, (unsigned)last));
    }

    ax_plan_t *p = NULL;
    if (ax_plan_create(t, NULL, &p, err, sizeof err) < 0)
        fail_msg("ax_plan_create: %s", err);
    assert_int_equal(p->nworkers, 1);
    assert_int_equal(p->workers[0].pu, (uint32_t)last);
    assert_true(p->pinned);
    assert_string_equal(p->topo.source, want);
    ax_plan_destroy(p);

    /* A second worker would need a CPU the process may not use. */
    ax_config_t c;
    ax_config_init(&c);
    c.workers = 2;
    assert_int_equal(ax_plan_create(t, &c, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "the selection has 1 cores"));
    /* Neither may a config name one, nor a binding reach one. */
    ax_config_init(&c);
    snprintf(c.cpus, sizeof c.cpus, "%d", first);
    assert_int_equal(ax_plan_create(t, &c, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "does not exist in this topology (this machine, restricted"));
    assert_int_equal(ax_topo_bind_thread(t, (uint32_t)first, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "does not exist on this machine"));
    ax_topo_destroy(t);
    hwloc_topology_destroy(hw);
}

static void full_affinity_gives_the_whole_machine(void **state)
{
    (void)state;
    hwloc_topology_t hw = load_machine();
    skip_unless_two_cpus(hw);
    hwloc_const_cpuset_t all = hwloc_topology_get_topology_cpuset(hw);
    /* Narrow first, then widen: nothing of the narrow load may stick. */
    hwloc_bitmap_t one = hwloc_bitmap_alloc();
    hwloc_bitmap_only(one, (unsigned)hwloc_bitmap_first(all));
    set_affinity(one);
    hwloc_bitmap_free(one);
    ax_topo_t *t = NULL;
    assert_int_equal(ax_topo_load_system(&t, NULL, 0), 0);
    ax_topo_destroy(t);
    set_affinity(all);

    char err[512] = "";
    if (ax_topo_load_system(&t, err, sizeof err) < 0)
        fail_msg("ax_topo_load_system: %s", err);
    ax_topo_summary_t s;
    ax_topo_summary(t, &s);
    assert_string_equal(s.source, "this machine");
    assert_int_equal(s.pus, (uint32_t)hwloc_bitmap_weight(all));
    assert_int_equal(s.cores, (uint32_t)hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_CORE));
    assert_int_equal(s.numa_nodes, (uint32_t)hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_NUMANODE));
    ax_plan_t *p = NULL;
    assert_int_equal(ax_plan_create(t, NULL, &p, err, sizeof err), 0);
    assert_int_equal(p->nworkers, s.cores);
    ax_plan_destroy(p);
    ax_topo_destroy(t);
    hwloc_topology_destroy(hw);
}

typedef struct narrow_job {
    int cpu;
    int set_rc, load_rc;
    ax_topo_summary_t s;
} narrow_job_t;

/* Pins only this thread, then loads: the process's other threads keep
 * their wider mask. */
static void *narrow_and_load(void *arg)
{
    narrow_job_t *j = arg;
    cpu_set_t cs;
    CPU_ZERO(&cs);
    CPU_SET(j->cpu, &cs);
    j->set_rc = pthread_setaffinity_np(pthread_self(), sizeof cs, &cs);
    ax_topo_t *t = NULL;
    j->load_rc = ax_topo_load_system(&t, NULL, 0);
    ax_topo_summary(t, &j->s);
    ax_topo_destroy(t);
    return NULL;
}

static void a_thread_that_pinned_only_itself_still_sees_the_process_cpus(void **state)
{
    (void)state;
    hwloc_topology_t hw = load_machine();
    skip_unless_two_cpus(hw);
    hwloc_const_cpuset_t all = hwloc_topology_get_topology_cpuset(hw);
    set_affinity(all);
    narrow_job_t j = { .cpu = hwloc_bitmap_last(all), .set_rc = -1, .load_rc = -1 };
    uint32_t npus = (uint32_t)hwloc_bitmap_weight(all);
    hwloc_topology_destroy(hw);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, narrow_and_load, &j), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(j.set_rc, 0);
    assert_int_equal(j.load_rc, 0);
    assert_string_equal(j.s.source, "this machine");
    assert_int_equal(j.s.pus, npus);
}

static void synthetic_and_xml_topologies_ignore_the_process_affinity(void **state)
{
    (void)state;
    hwloc_topology_t hw = load_machine();
    skip_unless_two_cpus(hw);
    hwloc_bitmap_t one = hwloc_bitmap_alloc();
    hwloc_bitmap_only(one, (unsigned)hwloc_bitmap_last(hwloc_topology_get_topology_cpuset(hw)));
    set_affinity(one);
    hwloc_bitmap_free(one);
    hwloc_topology_destroy(hw);

    /* PU 1 or the last PU is one of the server's 128: restricting would
     * leave a single core. */
    ax_topo_t *t = NULL;
    ax_topo_summary_t s;
    assert_int_equal(ax_topo_load_synthetic(SERVER, &t, NULL, 0), 0);
    ax_topo_summary(t, &s);
    assert_int_equal(s.pus, 128);
    assert_string_equal(s.source, "synthetic: " SERVER);
    ax_topo_destroy(t);

    char path[] = "/tmp/axon_test_topo_XXXXXX";
    export_server_xml(path);
    int rc = ax_topo_load_xml(path, &t, NULL, 0);
    unlink(path);
    assert_int_equal(rc, 0);
    ax_topo_summary(t, &s);
    assert_int_equal(s.pus, 128);
    assert_int_equal(s.cores, 64);
    assert_null(strstr(s.source, "restricted"));
    ax_topo_destroy(t);
}

static void restricting_a_four_node_server_drops_nodes_without_an_allowed_cpu(void **state)
{
    (void)state;
    /* SERVER numbers PUs core by core: node k has PUs 32k..32k+31.  40-47
     * are cores 20-23 on node 1, PU 100 is one PU of core 50 on node 3. */
    ax_topo_t *t = NULL;
    char err[512] = "";
    if (ax__topo_load_synthetic_bound(SERVER, "40-47,100", &t, err, sizeof err) < 0)
        fail_msg("load: %s", err);
    ax_topo_summary_t s;
    ax_topo_summary(t, &s);
    assert_string_equal(s.source, "synthetic: " SERVER ", restricted to CPUs 40-47,100 "
                                  "(process affinity)");
    assert_int_equal(s.numa_nodes, 2);
    assert_int_equal(t->nodes[0].os, 1);
    assert_int_equal(t->nodes[1].os, 3);
    assert_int_equal(s.packages, 2);
    assert_int_equal(s.l3_groups, 2);
    assert_int_equal(s.cores, 5);
    assert_int_equal(s.pus, 9);

    ax_topo_t *whole = NULL;
    assert_int_equal(ax_topo_load_synthetic(SERVER, &whole, NULL, 0), 0);
    ax_topo_summary_t ws;
    ax_topo_summary(whole, &ws);
    ax_topo_destroy(whole);
    assert_true(ws.memory_bytes > 0);
    assert_int_equal(s.memory_bytes, ws.memory_bytes / 2); /* 2 of 4 equal nodes */

    ax_plan_t *p = NULL;
    assert_int_equal(ax_plan_create(t, NULL, &p, err, sizeof err), 0);
    assert_int_equal(p->nworkers, 5);
    static const uint32_t pu[] = { 40, 42, 44, 46, 100 }, node[] = { 1, 1, 1, 1, 3 };
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(p->workers[i].pu, pu[i]);
        assert_int_equal(p->workers[i].numa, node[i]);
    }
    ax_plan_destroy(p);
    ax_config_t c;
    ax_config_init(&c);
    strcpy(c.numa_nodes, "0");
    assert_int_equal(ax_plan_create(t, &c, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "NUMA node 0 does not exist in this topology (synthetic: "));
    ax_topo_destroy(t);
}

static void a_binding_that_is_not_a_strict_subset_restricts_nothing(void **state)
{
    (void)state;
    ax_topo_t *t = NULL;
    ax_topo_summary_t s;
    /* every PU, and PUs the machine does not have */
    static const char *const lists[] = { "0-127", "0-1023", "500-600" };
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        assert_int_equal(ax__topo_load_synthetic_bound(SERVER, lists[i], &t, NULL, 0), 0);
        ax_topo_summary(t, &s);
        assert_string_equal(s.source, "synthetic: " SERVER);
        assert_int_equal(s.pus, 128);
        ax_topo_destroy(t);
    }
    char err[512] = "";
    t = (ax_topo_t *)1;
    assert_int_equal(ax__topo_load_synthetic_bound(SERVER, "x", &t, err, sizeof err), -EINVAL);
    assert_null(t);
    assert_non_null(strstr(err, "'x'"));
    assert_int_equal(ax__topo_load_synthetic_bound(SERVER, NULL, &t, NULL, 0), -EINVAL);
}

static void a_long_cpu_list_is_cut_at_a_comma_in_the_source(void **state)
{
    (void)state;
    /* 63 singletons, about 200 characters; starting at 2 puts the 127th
     * character inside an entry, so a cut that ignores commas shows. */
    char list[512];
    size_t len = 0;
    for (int pu = 2; pu < 128; pu += 2)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", pu > 2 ? "," : "", pu);
    ax_topo_t *t = NULL;
    char err[512] = "";
    if (ax__topo_load_synthetic_bound(SERVER, list, &t, err, sizeof err) < 0)
        fail_msg("load: %s", err);
    ax_topo_summary_t s;
    ax_topo_summary(t, &s);
    assert_int_equal(s.pus, 63);
    assert_int_equal(s.cores, 63);
    const char *lead = ", restricted to CPUs ", *tail = ",... (process affinity)";
    const char *r = strstr(s.source, lead);
    assert_non_null(r);
    r += strlen(lead);
    size_t n = strlen(s.source), tn = strlen(tail);
    assert_true(n > tn);
    assert_string_equal(s.source + n - tn, tail);
    /* What is shown is the list up to a comma: whole entries only. */
    size_t shown = (size_t)(s.source + n - tn - r);
    assert_true(shown > 100 && shown < len);
    assert_int_equal(strncmp(r, list, shown), 0);
    assert_int_equal(list[shown], ',');
    ax_topo_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(this_machine_is_discovered_with_cores_pus_and_a_node),
        cmocka_unit_test(the_64_core_synthetic_server_has_the_expected_shape),
        cmocka_unit_test(a_bad_synthetic_string_fails_instead_of_loading_this_machine),
        cmocka_unit_test(an_xml_export_loads_back_with_the_same_counts),
        cmocka_unit_test(the_config_chooses_the_topology),
        cmocka_unit_test(binding_refuses_on_a_synthetic_topology),
        cmocka_unit_test(binding_a_thread_on_this_machine_runs_it_on_that_pu),
        cmocka_unit_test(memory_on_this_machine_lands_on_the_asked_node),
        cmocka_unit_test_setup_teardown(a_process_bound_to_one_cpu_plans_one_worker_on_that_cpu,
                                        save_affinity, restore_affinity),
        cmocka_unit_test_setup_teardown(full_affinity_gives_the_whole_machine, save_affinity,
                                        restore_affinity),
        cmocka_unit_test_setup_teardown(
            a_thread_that_pinned_only_itself_still_sees_the_process_cpus, save_affinity,
            restore_affinity),
        cmocka_unit_test_setup_teardown(synthetic_and_xml_topologies_ignore_the_process_affinity,
                                        save_affinity, restore_affinity),
        cmocka_unit_test(restricting_a_four_node_server_drops_nodes_without_an_allowed_cpu),
        cmocka_unit_test(a_binding_that_is_not_a_strict_subset_restricts_nothing),
        cmocka_unit_test(a_long_cpu_list_is_cut_at_a_comma_in_the_source),
    };
    return cmocka_run_group_tests_name("topology/topology", tests, NULL, NULL);
}
