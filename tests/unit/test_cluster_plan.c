/* tests/unit/test_cluster_plan.c - the hostfile parser (a table of good and
 * bad lines, each bad one with its FILE:LINE message) and the cluster
 * planner on the 64-core, 4-node synthetic server: 4 x 64 cores, slots
 * splitting a host along NUMA nodes, per-node worker counts, topology
 * lookup order, memory totals, and the errors a user can make.
 * Threading: single thread.  Memory: each test frees what it makes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hwloc.h>

/* open_memstream's buffer comes from libc malloc; cmocka redefines free. */
static void libc_free(void *p) { free(p); }

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "axon/topology.h"

#define SERVER "pack:2 numa:2 l3:2 core:8 pu:2" /* 64 cores, 4 nodes, 8 L3, 128 PUs */

static ax_hostfile_t *parse_ok(const char *text)
{
    ax_hostfile_t *hf = NULL;
    char err[512] = "";
    int rc = ax_hostfile_parse(text, strlen(text), "hosts", &hf, err, sizeof err);
    if (rc != 0)
        fail_msg("ax_hostfile_parse: %d %s\n--- input:\n%s", rc, err, text);
    return hf;
}

/* ---- parser: good input ----------------------------------------------------- */

static void open_mpi_lines_comments_and_directives_parse(void **state)
{
    (void)state;
    ax_hostfile_t *hf = parse_ok("# a cluster\n"
                                 "\n"
                                 "node1 slots=2 max_slots=4\n"
                                 "  node2\tslots=1   # axon: synthetic=" SERVER "  \r\n"
                                 "10.0.0.3 max-slots=1 #axon:xml=topo/n3.xml\n"
                                 "node4 # just a comment, axon: not a directive\n"
                                 "[fe80::1]");
    assert_int_equal(hf->nhosts, 5);
    assert_int_equal(hf->total_slots, 6);
    assert_string_equal(hf->path, "hosts");
    const ax_hostfile_host_t *h = hf->hosts;
    assert_string_equal(h[0].name, "node1");
    assert_int_equal(h[0].slots, 2);
    assert_int_equal(h[0].max_slots, 4);
    assert_true(h[0].slots_given);
    assert_int_equal(h[0].line, 3);
    assert_string_equal(h[1].name, "node2");
    assert_string_equal(h[1].synthetic, SERVER); /* trimmed, inner spaces kept */
    assert_string_equal(h[1].xml, "");
    assert_int_equal(h[1].line, 4);
    assert_string_equal(h[2].name, "10.0.0.3");
    assert_int_equal(h[2].slots, 1);
    assert_false(h[2].slots_given);
    assert_int_equal(h[2].max_slots, 1);
    assert_string_equal(h[2].xml, "topo/n3.xml"); /* "hosts" has no directory */
    assert_string_equal(h[3].name, "node4");
    assert_string_equal(h[3].synthetic, "");
    assert_string_equal(h[4].name, "[fe80::1]");
    assert_int_equal(h[4].line, 7);
    ax_hostfile_destroy(hf);
}

static void open_mpi_synonyms_blanks_users_and_slash_comments(void **state)
{
    (void)state;
    ax_hostfile_t *hf = parse_ok("a slots = 2\n"
                                 "u@b cpu=3 max-cpu =4 username= u cores=8 sockets=2\n"
                                 "c count=1 // a comment\n"
                                 "d slots=1 //# axon: xml=x.xml is not a directive\n"
                                 "e slots=1 # axon: xml=a//b.xml\n");
    assert_int_equal(hf->nhosts, 5);
    assert_int_equal(hf->hosts[0].slots, 2);
    assert_string_equal(hf->hosts[1].name, "b"); /* the user is Open MPI's business */
    assert_int_equal(hf->hosts[1].slots, 3);
    assert_int_equal(hf->hosts[1].max_slots, 4);
    assert_int_equal(hf->hosts[2].slots, 1);
    assert_true(hf->hosts[2].slots_given);
    assert_string_equal(hf->hosts[3].xml, "");
    assert_string_equal(hf->hosts[4].xml, "a//b.xml");
    assert_int_equal(hf->total_slots, 8);
    ax_hostfile_destroy(hf);
}

static void xml_paths_are_relative_to_the_hostfile_directory(void **state)
{
    (void)state;
    ax_hostfile_t *hf = NULL;
    char err[256];
    const char *t = "a # axon: xml=a.xml\nb # axon: xml=/abs/b.xml\n";
    assert_int_equal(ax_hostfile_parse(t, strlen(t), "/etc/cluster/hosts", &hf, err, sizeof err),
                     0);
    assert_string_equal(hf->hosts[0].xml, "/etc/cluster/a.xml");
    assert_string_equal(hf->hosts[1].xml, "/abs/b.xml");
    ax_hostfile_destroy(hf);
}

/* ---- parser: the table of mistakes ------------------------------------------- */

static const struct bad_case {
    const char *text;
    const char *message; /* expected substring, with FILE:LINE */
} bad_cases[] = {
    { "", "hosts: no host listed" },
    { "# only comments\n\n", "hosts: no host listed" },
    { "a\nslots=2\n", "hosts:2: 'slots=2' where a host name belongs" },
    { "a slots=0\n", "hosts:1: slots = '0': expected a whole number from 1 to 4096" },
    { "a slots=4097\n", "hosts:1: slots = '4097'" },
    { "a slots=-1\n", "hosts:1: slots = '-1'" },
    { "a slots=2x\n", "hosts:1: slots = '2x'" },
    { "a slots=99999999999999\n", "hosts:1: slots = '99999999999999'" },
    { "a slots=\n", "hosts:1: slots = '': expected" },
    { "a slots\n", "hosts:1: 'slots' needs a value" },
    { "a slots=1 slots=2\n", "hosts:1: the slot count is given twice (as slots)" },
    { "a slots=2 cpu=3\n", "hosts:1: the slot count is given twice (as cpu)" },
    { "a max_slots=2 count_max=3\n", "hosts:1: the slot maximum is given twice (as count_max)" },
    { "a = 2\n", "hosts:1: '=' without a key before it" },
    { "a username=\n", "hosts:1: 'username=' has no value" },
    { "a slots =\n", "hosts:1: slots = '': expected" },
    { "u@ slots=1\n", "hosts:1: 'user@' without a host after it" },
    { "a cpus=4\n", "hosts:1: 'cpus': not a hostfile key; a host line takes slots=N" },
    { "a b\n", "hosts:1: 'b': not a hostfile key" },
    { "a slots=4 max_slots=2\n", "hosts:1: slots = 4 is more than max_slots = 2" },
    { "\n\nnode1\nnode2\nnode1 slots=2\n", "hosts:5: host node1 is already listed at line 3" },
    { "no/de\n", "hosts:1: host name 'no/de' has the character '/'" },
    { "n\x01x\n", "hosts:1: host name 'n\x01x' has the character 0x01" },
    { "a # axon: cpus=1\n", "hosts:1: '# axon: cpus=1': expected xml=FILE or synthetic=DESC" },
    { "a # axon: synthetic\n", "hosts:1: '# axon: synthetic': expected" },
    { "a # axon: xml=\n", "hosts:1: '# axon: xml=' has no value" },
    { "a # axon: synthetic=pack:2\x02\n", "hosts:1: the synthetic value has a control" },
    { "   # axon: xml=a.xml\n", "hosts:1: an '# axon:' comment on a line without a host" },
    { "a\nb\x00\n", "hosts:2: a NUL byte" },
};

static void each_bad_line_is_refused_with_file_line_and_a_fix(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        /* the NUL case: its length counts past the embedded NUL */
        size_t len = strlen(c->text);
        if (strstr(c->message, "NUL"))
            len = 5;
        ax_hostfile_t *hf = (ax_hostfile_t *)1;
        char err[512] = "";
        int rc = ax_hostfile_parse(c->text, len, "hosts", &hf, err, sizeof err);
        if (rc != -EINVAL || hf != NULL || !strstr(err, c->message))
            fail_msg("case %zu: rc %d, err '%s', want '%s'", i, rc, err, c->message);
    }
}

static void long_names_and_values_are_refused_not_truncated(void **state)
{
    (void)state;
    char text[2 * AX_CONFIG_STR_MAX + 64], err[512];
    ax_hostfile_t *hf = NULL;
    memset(text, 'h', AX_HOST_NAME_MAX);
    text[AX_HOST_NAME_MAX] = '\0';
    assert_int_equal(ax_hostfile_parse(text, strlen(text), "hosts", &hf, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "hosts:1: host name of 256 characters; at most 255 fit"));
    int n = snprintf(text, sizeof text, "a # axon: synthetic=");
    memset(text + n, 'x', AX_CONFIG_STR_MAX);
    text[n + AX_CONFIG_STR_MAX] = '\0';
    assert_int_equal(ax_hostfile_parse(text, strlen(text), "hosts", &hf, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "hosts:1: synthetic description of 256 characters"));
    /* xml: the hostfile's directory counts toward the limit */
    char dir[AX_CONFIG_STR_MAX];
    memset(dir, 'd', 200);
    strcpy(dir + 200, "/hosts");
    n = snprintf(text, sizeof text, "a # axon: xml=");
    memset(text + n, 'x', 60);
    text[n + 60] = '\0';
    assert_int_equal(ax_hostfile_parse(text, strlen(text), dir, &hf, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":1: xml path of 261 characters"));
}

static void too_many_nodes_in_total_is_an_error(void **state)
{
    (void)state;
    /* 17 hosts x 4096 slots > 65536 */
    char text[600] = "";
    for (int i = 0; i < 17; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "h%d slots=4096\n", i);
    ax_hostfile_t *hf = NULL;
    char err[512];
    assert_int_equal(ax_hostfile_parse(text, strlen(text), "hosts", &hf, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "hosts:17: host h16: the cluster would have more than 65536"));
    assert_null(hf);
}

static void a_missing_file_is_named_with_the_reason(void **state)
{
    (void)state;
    ax_hostfile_t *hf = NULL;
    char err[512];
    assert_int_equal(ax_hostfile_load("/nonexistent/hosts", &hf, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/hosts: cannot open the hostfile: No such file"));
    assert_null(hf);
}

static void add_host_checks_its_arguments(void **state)
{
    (void)state;
    ax_hostfile_t *hf = NULL;
    char err[256];
    assert_int_equal(ax_hostfile_add_host(&hf, "a", 0, NULL, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "slots = 0"));
    assert_int_equal(ax_hostfile_add_host(&hf, "a", 1, "x.xml", SERVER, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "both an XML file and a synthetic topology"));
    assert_int_equal(ax_hostfile_add_host(&hf, "", 1, NULL, NULL, err, sizeof err), -EINVAL);
    assert_null(hf);
    assert_int_equal(ax_hostfile_add_host(&hf, "a", 2, NULL, SERVER, err, sizeof err), 0);
    assert_int_equal(ax_hostfile_add_host(&hf, "b", 1, "b.xml", "", err, sizeof err), 0);
    assert_int_equal(hf->nhosts, 2);
    assert_int_equal(hf->total_slots, 3);
    assert_int_equal(hf->hosts[1].line, 0);
    ax_hostfile_destroy(hf);
}

/* ---- the cluster planner ------------------------------------------------------ */

static ax_cluster_plan_t *cplan_ok(const char *text, const ax_config_t *cfg, const char *dir)
{
    ax_hostfile_t *hf = parse_ok(text);
    ax_cluster_plan_t *p = NULL;
    char err[1024] = "";
    int rc = ax_cluster_plan_create(hf, cfg, dir, &p, err, sizeof err);
    ax_hostfile_destroy(hf);
    if (rc != 0)
        fail_msg("ax_cluster_plan_create: %d %s", rc, err);
    return p;
}

static int cplan_err(const char *text, const ax_config_t *cfg, const char *dir, char *err,
                     size_t errlen)
{
    ax_hostfile_t *hf = parse_ok(text);
    ax_cluster_plan_t *p = (ax_cluster_plan_t *)1;
    int rc = ax_cluster_plan_create(hf, cfg, dir, &p, err, errlen);
    ax_hostfile_destroy(hf);
    assert_null(p);
    return rc;
}

static bool has_cwarning(const ax_cluster_plan_t *p, const char *phrase)
{
    for (uint32_t i = 0; i < p->nwarnings; i++)
        if (strstr(p->warnings[i], phrase))
            return true;
    return false;
}

static void four_hosts_of_64_cores_from_a_laptop(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    /* every host without its own topology; 64 GB per NUMA node (hwloc's
     * synthetic default is 1 GB, too small for 16 default arenas) */
    strcpy(c.topology_synthetic, "pack:2 numa:2(memory=64GB) l3:2 core:8 pu:2");
    ax_cluster_plan_t *p = cplan_ok("n1 slots=1\nn2 slots=1\nn3 slots=1\nn4 slots=1\n", &c,
                                    NULL);
    assert_int_equal(p->nhosts, 4);
    assert_int_equal(p->nnodes, 4);
    assert_int_equal(p->workers, 256);
    uint64_t arenas = 0, rings = 0, total = 0;
    for (uint32_t i = 0; i < 4; i++) {
        const ax_cluster_node_t *n = &p->nodes[i];
        assert_int_equal(n->node, i);
        assert_int_equal(n->host, i);
        assert_int_equal(n->local, 0);
        assert_int_equal(n->plan->nworkers, 64);
        assert_int_equal(p->hosts[i].first_node, i);
        assert_int_equal(p->hosts[i].topo.cores, 64);
        assert_int_equal(p->hosts[i].total_bytes, n->plan->total_bytes);
        arenas += n->plan->arena_total_bytes;
        rings += n->plan->ring_mesh_bytes;
        total += n->plan->total_bytes;
    }
    assert_int_equal(p->arena_total_bytes, arenas);
    assert_int_equal(p->ring_mesh_bytes, rings);
    assert_int_equal(p->total_bytes, total);
    assert_int_equal(p->total_bytes, p->arena_total_bytes + p->ring_mesh_bytes);
    assert_int_equal(p->nwarnings, 0);
    ax_cluster_plan_destroy(p);
}

static void slots_split_a_host_along_numa_nodes(void **state)
{
    (void)state;
    ax_cluster_plan_t *p = cplan_ok("big slots=4 # axon: synthetic=" SERVER "\n", NULL, NULL);
    assert_int_equal(p->nnodes, 4);
    assert_int_equal(p->hosts[0].nodes, 4);
    bool core_used[64] = { false };
    for (uint32_t i = 0; i < 4; i++) {
        const ax_plan_t *np = p->nodes[i].plan;
        assert_int_equal(p->nodes[i].local, i);
        assert_int_equal(np->nworkers, 16);
        /* fewer workers: deeper auto rings than the 64-worker plan */
        assert_int_equal(np->ring_slots, ax_plan_auto_ring_slots(NULL, 16));
        for (uint32_t w = 0; w < 16; w++) {
            assert_int_equal(np->workers[w].numa, i); /* node i owns NUMA node i */
            assert_false(core_used[np->workers[w].core]);
            core_used[np->workers[w].core] = true;
        }
    }
    ax_cluster_plan_destroy(p);
}

static void uneven_shares_and_smt_all_keep_cores_whole(void **state)
{
    (void)state;
    ax_cluster_plan_t *p = cplan_ok("big slots=3 # axon: synthetic=" SERVER "\n", NULL, NULL);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < 3; i++)
        sum += p->nodes[i].plan->nworkers;
    assert_int_equal(sum, 64);
    assert_int_equal(p->nodes[0].plan->nworkers, 21);
    assert_int_equal(p->nodes[2].plan->nworkers, 22);
    ax_cluster_plan_destroy(p);

    ax_config_t c;
    ax_config_init(&c);
    c.smt = AX_SMT_ALL;
    p = cplan_ok("big slots=2 # axon: synthetic=" SERVER "\n", &c, NULL);
    for (uint32_t i = 0; i < 2; i++) {
        const ax_plan_t *np = p->nodes[i].plan;
        assert_int_equal(np->nworkers, 64);
        for (uint32_t w = 0; w < 64; w++) {
            assert_int_equal(np->workers[w].package, i); /* a socket each */
            assert_int_equal(np->workers[w].core, i * 32 + w / 2); /* siblings together */
        }
    }
    ax_cluster_plan_destroy(p);
}

static void workers_count_is_per_node_and_must_fit_its_share(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    strcpy(c.topology_synthetic, SERVER);
    c.workers = 8;
    ax_cluster_plan_t *p = cplan_ok("a slots=4\nb slots=1\n", &c, NULL);
    assert_int_equal(p->nnodes, 5);
    assert_int_equal(p->workers, 40);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(p->nodes[i].plan->nworkers, 8);
    assert_int_equal(p->nodes[4].host, 1);
    ax_cluster_plan_destroy(p);

    c.workers = 20; /* a quarter of the host has 16 cores */
    char err[1024];
    assert_int_equal(cplan_err("a slots=4\n", &c, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "hosts:1: host a, node 0 (1 of 4 there): workers.count = 20: "
                                "the selection has 16 cores"));
}

static void more_slots_than_cores_needs_oversubscription(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    strcpy(c.topology_synthetic, "core:2 pu:1");
    char err[1024];
    assert_int_equal(cplan_err("a\nsmall slots=3\n", &c, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "hosts:2: host small: slots = 3 but its selection has 2 cores"));
    c.oversubscribe = true;
    ax_cluster_plan_t *p = cplan_ok("small slots=3\n", &c, NULL);
    assert_int_equal(p->nnodes, 3);
    assert_int_equal(p->nodes[2].plan->workers[0].core, 0); /* node 2 wraps to core 0 */
    assert_true(has_cwarning(p, "host small: 3 nodes share 2 cores: OVERSUBSCRIBED"));
    ax_cluster_plan_destroy(p);
}

static void a_remote_host_without_a_topology_is_an_error(void **state)
{
    (void)state;
    char err[1024];
    assert_int_equal(cplan_err("localhost slots=1\nfar.example.org slots=1\n", NULL, NULL, err,
                               sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "hosts:2: host far.example.org: no topology for this host"));
    /* localhost alone plans on this machine */
    ax_cluster_plan_t *p = cplan_ok("localhost slots=1\n", NULL, NULL);
    assert_string_equal(p->hosts[0].topo.source, "this machine");
    ax_cluster_plan_destroy(p);
}

static void a_bad_synthetic_directive_names_its_line(void **state)
{
    (void)state;
    char err[1024];
    assert_int_equal(cplan_err("localhost\nb # axon: synthetic=pack:2 bogus:3\n", NULL, NULL, err,
                               sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "hosts:2: host b: its '# axon: synthetic=':"));
}

static void missing_slots_warns_about_what_mpirun_would_do(void **state)
{
    (void)state;
    ax_cluster_plan_t *p = cplan_ok("a # axon: synthetic=" SERVER "\n", NULL, NULL);
    assert_true(has_cwarning(p, "hosts:1: host a: no slots=: planned as one node"));
    ax_cluster_plan_destroy(p);
}

static void memory_beyond_a_host_is_a_warning(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    strcpy(c.topology_synthetic, "numa:1(memory=1GB) core:4 pu:1");
    c.arena_bytes = 256u << 20; /* 4 x 256 MiB + rings > 1 GB */
    ax_cluster_plan_t *p = cplan_ok("a slots=2\n", &c, NULL);
    assert_true(has_cwarning(p, "host a: its 2 nodes need"));
    ax_cluster_plan_destroy(p);
}

/* Export SERVER as hwloc XML to path, the way lstopo-no-graphics would. */
static void write_xml(const char *path, const char *synthetic)
{
    hwloc_topology_t t;
    assert_int_equal(hwloc_topology_init(&t), 0);
    assert_int_equal(hwloc_topology_set_synthetic(t, synthetic), 0);
    assert_int_equal(hwloc_topology_load(t), 0);
    assert_int_equal(hwloc_topology_export_xml(t, path, 0), 0);
    hwloc_topology_destroy(t);
}

static void topology_dir_and_xml_directives_are_found(void **state)
{
    (void)state;
    char dir[] = "/tmp/axon_cluster_plan.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/n1.xml", dir);
    write_xml(path, SERVER);
    snprintf(path, sizeof path, "%s/n2.xml", dir);
    write_xml(path, "numa:2 core:4 pu:1");

    /* --topology-dir: DIR/NAME.xml */
    ax_cluster_plan_t *p = cplan_ok("n1 slots=1\nn2 slots=2\n", NULL, dir);
    assert_int_equal(p->nnodes, 3);
    assert_int_equal(p->hosts[0].topo.cores, 64);
    assert_int_equal(p->hosts[1].topo.cores, 8);
    assert_int_equal(p->nodes[1].plan->nworkers, 4);
    assert_int_equal(p->workers, 72);
    ax_cluster_plan_destroy(p);
    assert_int_equal(cplan_err("n1 slots=1\nn3 slots=1\n", NULL, dir, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "hosts:2: host n3: no readable "));
    assert_non_null(strstr(err, "n3.xml"));

    /* "# axon: xml=" relative to the hostfile's own directory */
    snprintf(path, sizeof path, "%s/hosts", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("n2 slots=1 # axon: xml=n2.xml\nn9 slots=1 # axon: xml=n9.xml\n", f);
    fclose(f);
    ax_hostfile_t *hf = NULL;
    assert_int_equal(ax_hostfile_load(path, &hf, err, sizeof err), 0);
    p = (ax_cluster_plan_t *)1;
    assert_int_equal(ax_cluster_plan_create(hf, NULL, NULL, &p, err, sizeof err), -ENOENT);
    assert_null(p);
    assert_non_null(strstr(err, "/hosts:2: host n9: its '# axon: xml=':"));
    hf->nhosts = 1; /* drop n9: n2 alone plans */
    assert_int_equal(ax_cluster_plan_create(hf, NULL, NULL, &p, err, sizeof err), 0);
    assert_int_equal(p->hosts[0].topo.cores, 8);
    ax_cluster_plan_destroy(p);
    ax_hostfile_destroy(hf);

    snprintf(path, sizeof path, "%s/n1.xml", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/n2.xml", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/hosts", dir);
    unlink(path);
    rmdir(dir);
}

static void text_and_json_show_nodes_hosts_and_totals(void **state)
{
    (void)state;
    ax_config_t c;
    ax_config_init(&c);
    strcpy(c.topology_synthetic, SERVER);
    ax_cluster_plan_t *p = cplan_ok("a slots=2\nb slots=1\n", &c, NULL);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ax_cluster_plan_print(p, true, f);
    fclose(f);
    assert_non_null(strstr(buf, "3 nodes on 2 hosts, 128 workers"));
    assert_non_null(strstr(buf, "node  host              local  workers  numa"));
    assert_non_null(strstr(buf, "     0  a                     0       32  0-1"));
    assert_non_null(strstr(buf, "     2  b                     0       64  0-3"));
    assert_non_null(strstr(buf, "a: 2 nodes (0-1); 64 cores, 128 PUs, 4 NUMA nodes"));
    assert_non_null(strstr(buf, "nodes 0-2: the topology is not this machine"));
    assert_non_null(strstr(buf, "==== node 1 (host a, 2 of 2 there) ===="));
    libc_free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    ax_cluster_plan_print_json(p, f);
    fclose(f);
    assert_non_null(strstr(buf, "{\"cluster\":{\"source\":\"hosts\",\"nodes\":3,\"hosts\":2,"
                                "\"workers\":128,"));
    assert_non_null(strstr(buf, "\"node\":1,\"host\":\"a\",\"local\":1,\"workers\":32,"
                                "\"cores\":32,\"numa_nodes\":[2,3]"));
    libc_free(buf);
    ax_cluster_plan_destroy(p);
    ax_cluster_plan_print(NULL, false, stdout); /* NULL: nothing, no crash */
    ax_cluster_plan_destroy(NULL);
    ax_hostfile_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_mpi_lines_comments_and_directives_parse),
        cmocka_unit_test(open_mpi_synonyms_blanks_users_and_slash_comments),
        cmocka_unit_test(xml_paths_are_relative_to_the_hostfile_directory),
        cmocka_unit_test(each_bad_line_is_refused_with_file_line_and_a_fix),
        cmocka_unit_test(long_names_and_values_are_refused_not_truncated),
        cmocka_unit_test(too_many_nodes_in_total_is_an_error),
        cmocka_unit_test(a_missing_file_is_named_with_the_reason),
        cmocka_unit_test(add_host_checks_its_arguments),
        cmocka_unit_test(four_hosts_of_64_cores_from_a_laptop),
        cmocka_unit_test(slots_split_a_host_along_numa_nodes),
        cmocka_unit_test(uneven_shares_and_smt_all_keep_cores_whole),
        cmocka_unit_test(workers_count_is_per_node_and_must_fit_its_share),
        cmocka_unit_test(more_slots_than_cores_needs_oversubscription),
        cmocka_unit_test(a_remote_host_without_a_topology_is_an_error),
        cmocka_unit_test(a_bad_synthetic_directive_names_its_line),
        cmocka_unit_test(missing_slots_warns_about_what_mpirun_would_do),
        cmocka_unit_test(memory_beyond_a_host_is_a_warning),
        cmocka_unit_test(topology_dir_and_xml_directives_are_found),
        cmocka_unit_test(text_and_json_show_nodes_hosts_and_totals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
