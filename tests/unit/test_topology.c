/* tests/unit/test_topology.c - discovery (this machine, synthetic, XML) and
 * the binding helpers: they bind for real here and refuse on any topology
 * that is not this machine.  Threading: binding tests run in their own
 * threads so the test process keeps its affinity.  Memory: hwloc buffers are
 * released with hwloc calls, never cmocka's free.
 */
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
    assert_string_equal(s.source, "this machine");
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

static void an_xml_export_loads_back_with_the_same_counts(void **state)
{
    (void)state;
    /* Export with hwloc directly, as lstopo on the target machine would. */
    hwloc_topology_t hw;
    assert_int_equal(hwloc_topology_init(&hw), 0);
    assert_int_equal(hwloc_topology_set_synthetic(hw, SERVER), 0);
    assert_int_equal(hwloc_topology_load(hw), 0);
    char path[] = "/tmp/axon_test_topo_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(hwloc_topology_export_xml(hw, path, 0), 0);
    hwloc_topology_destroy(hw);

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
    };
    return cmocka_run_group_tests_name("topology/topology", tests, NULL, NULL);
}
