/* tests/unit/test_cluster_plan_faults.c - the hostfile parser and the
 * cluster planner fail cleanly at every one of their allocations.
 *
 * Failure injection at link time (-Wl,--wrap, tests/topology.cmake), as in
 * test_engine_create_faults.c: while armed, every malloc/calloc/realloc
 * axon's own code makes is counted and call number `fail_at` fails.  The
 * walk runs the operation with fail_at = 1, 2, ... until it succeeds; each
 * failure must return -ENOMEM, leave *out NULL, say what ran out, and give
 * back every block it took (tracked here, so the plain build checks leaks;
 * LeakSanitizer checks again under ASan).  hwloc's own allocations are in
 * a shared library and not wrapped.
 * Threading: single thread.
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

#include "axon/topology.h"

#include "alloc_inject.h"

static void arm(long at)
{
    calls = 0;
    fail_at = at;
    nlive = 0;
    armed = 1;
}

static void disarm(void) { armed = 0; }

#define SERVER "pack:2 numa:2(memory=64GB) l3:2 core:8 pu:2"

/* Enough hosts that the host array grows several times. */
static const char hosts_text[] = "# cluster\n"
                                 "a slots=2 # axon: synthetic=" SERVER "\n"
                                 "b slots=1 max_slots=2\n"
                                 "c\n"
                                 "d slots=3 # axon: synthetic=numa:1 core:4 pu:1\n"
                                 "e slots=1\n";

static void hostfile_parse_survives_every_allocation_failure(void **state)
{
    (void)state;
    long at;
    for (at = 1; at < 1000; at++) {
        ax_hostfile_t *hf = (ax_hostfile_t *)1;
        char err[512] = "";
        arm(at);
        int rc = ax_hostfile_parse(hosts_text, strlen(hosts_text), "hosts", &hf, err, sizeof err);
        disarm();
        if (rc == 0) {
            assert_int_equal(hf->nhosts, 5);
            ax_hostfile_destroy(hf);
            break;
        }
        if (rc != -ENOMEM || hf != NULL || !strstr(err, "out of memory") || nlive != 0)
            fail_msg("fail_at %ld: rc %d, out %p, err '%s', %zu blocks leaked", at, rc,
                     (void *)hf, err, nlive);
    }
    assert_true(at > 1 && at < 1000); /* it allocated, then succeeded */
}

static void hostfile_load_survives_every_allocation_failure(void **state)
{
    (void)state;
    char path[] = "/tmp/axon_hosts_faults.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, hosts_text, strlen(hosts_text)), (ssize_t)strlen(hosts_text));
    close(fd);
    long at;
    for (at = 1; at < 1000; at++) {
        ax_hostfile_t *hf = (ax_hostfile_t *)1;
        char err[512] = "";
        arm(at);
        int rc = ax_hostfile_load(path, &hf, err, sizeof err);
        disarm();
        if (rc == 0) {
            ax_hostfile_destroy(hf);
            break;
        }
        if (rc != -ENOMEM || hf != NULL || !strstr(err, "out of memory") || nlive != 0)
            fail_msg("fail_at %ld: rc %d, err '%s', %zu blocks leaked", at, rc, err, nlive);
    }
    unlink(path);
    assert_true(at > 1 && at < 1000);
}

static void cluster_plan_survives_every_allocation_failure(void **state)
{
    (void)state;
    ax_hostfile_t *hf = NULL;
    char err[1024];
    assert_int_equal(ax_hostfile_parse(hosts_text, strlen(hosts_text), "hosts", &hf, err,
                                       sizeof err),
                     0);
    ax_config_t cfg;
    ax_config_init(&cfg);
    strcpy(cfg.topology_synthetic, "pack:1 numa:2 core:4 pu:2"); /* for b, c, e */
    long at;
    for (at = 1; at < 100000; at++) {
        ax_cluster_plan_t *p = (ax_cluster_plan_t *)1;
        memset(err, 'x', sizeof err); /* stale text must not pass for a reason */
        err[sizeof err - 1] = '\0';
        arm(at);
        int rc = ax_cluster_plan_create(hf, &cfg, NULL, &p, err, sizeof err);
        disarm();
        if (rc == 0) {
            assert_int_equal(p->nnodes, 8);
            assert_true(p->nwarnings > 0); /* c has no slots=: the warning path ran */
            ax_cluster_plan_destroy(p);
            break;
        }
        if (rc != -ENOMEM || p != NULL || !strstr(err, "out of memory") || nlive != 0)
            fail_msg("fail_at %ld: rc %d, out %p, err '%.200s', %zu blocks leaked", at, rc,
                     (void *)p, err, nlive);
    }
    assert_true(at > 1 && at < 100000);
    ax_hostfile_destroy(hf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hostfile_parse_survives_every_allocation_failure),
        cmocka_unit_test(hostfile_load_survives_every_allocation_failure),
        cmocka_unit_test(cluster_plan_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
