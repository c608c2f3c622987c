/* topology/topo.c - hardware discovery with hwloc: this machine, a synthetic
 * description or an XML export.
 *
 * hwloc 2.x traps handled here (see PLAYBOOK section 1):
 *  - a bad synthetic string makes set_synthetic fail and load() would then
 *    silently discover the REAL machine, so its return value is checked;
 *  - NUMA nodes are memory children (not in obj->children): a core finds its
 *    node with hwloc_get_local_numanode_objs(LARGER_LOCALITY); flags 0 finds
 *    none for a core;
 *  - synthetic and XML topologies report success for binding calls and do
 *    nothing, so "this system" is decided here once (is_thissystem and the
 *    thread-binding support flag) and bind.c refuses otherwise;
 *  - hwloc describes the whole machine even when the process may run on a
 *    few CPUs only (taskset, numactl --physcpubind; a cgroup cpuset is
 *    already applied by hwloc itself), and a later pthread_setaffinity_np
 *    is not held to the taskset mask.  So the system topology is restricted
 *    to the process's CPU binding (restrict_to_binding): the planner, the
 *    binding helpers and the summary then all see only the usable PUs.
 *    Synthetic and XML topologies describe other machines and are never
 *    restricted.
 *
 * Threading: load/destroy from one thread; a loaded topology is read-only.
 * Memory: the ax_topo_t owns its hwloc handle and the flattened arrays.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/topo_internal.h"

void ax__seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint32_t count_type(hwloc_topology_t hw, hwloc_obj_type_t type)
{
    int n = hwloc_get_nbobjs_by_type(hw, type);
    return n > 0 ? (uint32_t)n : 0;
}

/* Flatten the hwloc tree into the arrays the planner reads. */
static int flatten(ax_topo_t *t, char *err, size_t errlen)
{
    hwloc_topology_t hw = t->hw;
    t->ncores = count_type(hw, HWLOC_OBJ_CORE);
    t->npus = count_type(hw, HWLOC_OBJ_PU);
    t->nnodes = count_type(hw, HWLOC_OBJ_NUMANODE);
    if (t->ncores == 0 || t->npus == 0) {
        /* Some virtual machines expose PUs without cores; the planner needs
         * cores to place one worker per core. */
        ax__seterr(err, errlen, "topology has %u cores and %u PUs: cannot plan workers without "
               "cores; describe the machine with a synthetic string or XML that has them",
               t->ncores, t->npus);
        return -EINVAL;
    }
    t->cores = calloc(t->ncores, sizeof *t->cores);
    t->pu_os = calloc(t->npus, sizeof *t->pu_os);
    t->nodes = calloc(t->nnodes ? t->nnodes : 1, sizeof *t->nodes);
    if (!t->cores || !t->pu_os || !t->nodes) {
        ax__seterr(err, errlen, "out of memory while reading the topology (%u cores)", t->ncores);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < t->nnodes; i++) {
        hwloc_obj_t n = hwloc_get_obj_by_type(hw, HWLOC_OBJ_NUMANODE, i);
        t->nodes[i].os = n->os_index;
        t->nodes[i].memory_bytes = n->attr ? n->attr->numanode.local_memory : 0;
    }
    uint32_t pu_next = 0;
    for (uint32_t i = 0; i < t->ncores; i++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(hw, HWLOC_OBJ_CORE, i);
        ax_topo_core_t *c = &t->cores[i];
        c->logical = core->logical_index;
        hwloc_obj_t l3 = hwloc_get_ancestor_obj_by_type(hw, HWLOC_OBJ_L3CACHE, core);
        c->l3 = l3 ? l3->logical_index : AX_TOPO_NONE;
        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(hw, HWLOC_OBJ_PACKAGE, core);
        c->package = pkg ? pkg->logical_index : 0;

        struct hwloc_location loc = { .type = HWLOC_LOCATION_TYPE_CPUSET,
                                      .location.cpuset = core->cpuset };
        hwloc_obj_t local[8];
        unsigned nr = 8;
        /* LARGER_LOCALITY: nodes whose cpuset contains the core's; with flags
         * 0 hwloc wants an exact cpuset match and finds nothing for a core. */
        if (hwloc_get_local_numanode_objs(hw, &loc, &nr, local,
                                          HWLOC_LOCAL_NUMANODE_FLAG_LARGER_LOCALITY) == 0 &&
            nr > 0) {
            /* Several nodes (e.g. DRAM + HBM): the first is the nearest. */
            c->numa = local[0]->os_index;
            c->numa_idx = local[0]->logical_index;
        } else if (t->nnodes > 0) {
            c->numa = t->nodes[0].os;
            c->numa_idx = 0;
        }
        c->pu_first = pu_next;
        int pu;
        hwloc_bitmap_foreach_begin(pu, core->cpuset) {
            if (pu_next < t->npus)
                t->pu_os[pu_next++] = (uint32_t)pu;
        }
        hwloc_bitmap_foreach_end();
        c->npus = pu_next - c->pu_first;
    }

    ax_topo_summary_t *s = &t->summary;
    s->packages = count_type(hw, HWLOC_OBJ_PACKAGE);
    s->numa_nodes = t->nnodes;
    s->l3_groups = count_type(hw, HWLOC_OBJ_L3CACHE);
    s->cores = t->ncores;
    s->pus = t->npus;
    hwloc_obj_t root = hwloc_get_root_obj(hw);
    s->memory_bytes = root->total_memory;
    const struct hwloc_topology_support *sup = hwloc_topology_get_support(hw);
    t->this_system = hwloc_topology_is_thissystem(hw) && sup && sup->cpubind &&
                     sup->cpubind->set_thisthread_cpubind;
    return 0;
}

/* The CPUs the whole process may run on, as hwloc reads them (on Linux the
 * union of every thread's affinity): NULL when it cannot be read.
 * HWLOC_CPUBIND_PROCESS rather than the calling thread's mask, so a caller
 * that pinned only itself (a benchmark harness, a reserved I/O thread) does
 * not shrink the engine to its own CPU; hwloc bitmaps also have no
 * CPU_SETSIZE limit.  The caller frees the bitmap. */
static hwloc_bitmap_t process_binding(hwloc_topology_t hw)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (set && hwloc_get_cpubind(hw, set, HWLOC_CPUBIND_PROCESS) < 0) {
        hwloc_bitmap_free(set);
        set = NULL;
    }
    return set;
}

/* Restrict t->hw to the PUs of `bound` when they are a strict, non-empty
 * subset of the topology's, and say so in the summary's source.
 *
 * hwloc_topology_restrict rather than a filter in flatten: every later
 * reader (counts in the summary, the planner's cores and nodes, the node
 * memory it budgets against, bind.c's PU lookup, an XML export) then agrees
 * without each having to know about the binding.  REMOVE_CPULESS drops the
 * objects left without a PU, NUMA nodes included: a node is kept only when
 * an allowed PU is in its locality (a memory-only node attached above the
 * allowed cores stays, since its cpuset covers them).  Logical indexes are
 * renumbered over what is left; PU and node OS indexes are unchanged.
 *
 * Returns 0 (restricted or nothing to do) or a negative errno when hwloc
 * failed and the topology is no longer usable.  A binding that shares no PU
 * with the topology leaves it whole: binding would fail later and say why. */
static int restrict_to_binding(ax_topo_t *t, hwloc_const_bitmap_t bound, char *err,
                               size_t errlen)
{
    hwloc_const_cpuset_t all = hwloc_topology_get_topology_cpuset(t->hw);
    hwloc_bitmap_t keep = hwloc_bitmap_alloc();
    if (!keep) {
        ax__seterr(err, errlen, "out of memory reading the process's CPU binding");
        return -ENOMEM;
    }
    hwloc_bitmap_and(keep, bound, all);
    int rc = 0;
    if (!hwloc_bitmap_iszero(keep) && !hwloc_bitmap_isequal(keep, all)) {
        char list[128];
        /* A long list ("0,2,4,...") is cut at a comma so the source line
         * stays readable; the counts in the summary remain exact. */
        if (hwloc_bitmap_list_snprintf(list, sizeof list, keep) >= (int)sizeof list) {
            /* the last comma that leaves room for ",...": what precedes
             * it is a whole entry */
            char *cut = memrchr(list, ',', sizeof list - 4);
            snprintf(cut ? cut : list + sizeof list - 5, 5, ",...");
        }
        if (hwloc_topology_restrict(t->hw, keep, HWLOC_RESTRICT_FLAG_REMOVE_CPULESS) < 0) {
            int e = errno ? errno : EINVAL;
            if (e == EINVAL) {
                /* hwloc left the topology untouched: plan for the whole
                 * machine as before; binding outside the mask may fail. */
                rc = 0;
            } else {
                ax__seterr(err, errlen, "hwloc could not restrict the topology to the process's "
                       "CPUs %s: %s; run without taskset/numactl CPU limits or free memory",
                       list, strerror(e));
                rc = -e;
            }
        } else {
            size_t len = strlen(t->summary.source);
            snprintf(t->summary.source + len, sizeof t->summary.source - len,
                     ", restricted to CPUs %s (process affinity)", list);
        }
    }
    hwloc_bitmap_free(keep);
    return rc;
}

enum src { SRC_SYSTEM, SRC_SYNTHETIC, SRC_XML };

/* `bound`: a pretend process binding applied to a synthetic topology, for
 * tests only (ax__topo_load_synthetic_bound); NULL otherwise. */
static int load(enum src kind, const char *arg, hwloc_const_bitmap_t bound, ax_topo_t **out,
                char *err, size_t errlen)
{
    if (!out) {
        ax__seterr(err, errlen, "ax_topo_load: out is NULL; pass the address of an ax_topo_t *");
        return -EINVAL;
    }
    *out = NULL;
    if (kind != SRC_SYSTEM && (!arg || !*arg)) {
        ax__seterr(err, errlen, "%s is empty: give a %s", kind == SRC_XML ? "XML path" :
               "synthetic description", kind == SRC_XML ? "file written by lstopo --of xml" :
               "string such as 'pack:2 numa:2 l3:2 core:8 pu:2'");
        return -EINVAL;
    }
    ax_topo_t *t = calloc(1, sizeof *t);
    if (!t) {
        ax__seterr(err, errlen, "out of memory allocating a topology");
        return -ENOMEM;
    }
    if (hwloc_topology_init(&t->hw) < 0) {
        int e = errno ? errno : ENOMEM;
        free(t);
        ax__seterr(err, errlen, "hwloc_topology_init failed: %s", strerror(e));
        return -e;
    }
    int rc = 0;
    switch (kind) {
    case SRC_SYSTEM:
        snprintf(t->summary.source, sizeof t->summary.source, "this machine");
        break;
    case SRC_SYNTHETIC:
        /* A rejected string must stop here: load() would otherwise quietly
         * describe the machine we run on instead. */
        if (hwloc_topology_set_synthetic(t->hw, arg) < 0) {
            ax__seterr(err, errlen, "synthetic topology '%s' is not valid hwloc syntax; write levels "
                   "with counts, e.g. 'pack:2 numa:2 l3:2 core:8 pu:2' (check it with "
                   "lstopo-no-graphics --input \"...\")", arg);
            rc = -EINVAL;
        }
        snprintf(t->summary.source, sizeof t->summary.source, "synthetic: %.200s", arg);
        break;
    case SRC_XML:
        if (hwloc_topology_set_xml(t->hw, arg) < 0) {
            int e = errno ? errno : EINVAL;
            ax__seterr(err, errlen, "cannot use XML topology '%s': %s; export one with "
                   "'lstopo-no-graphics --of xml FILE' on the target machine", arg, strerror(e));
            rc = -e;
        }
        snprintf(t->summary.source, sizeof t->summary.source, "xml: %.230s", arg);
        break;
    }
    if (rc == 0 && hwloc_topology_load(t->hw) < 0) {
        int e = errno ? errno : EINVAL;
        ax__seterr(err, errlen, "hwloc could not load the %s topology%s%s: %s",
               kind == SRC_SYSTEM ? "machine's" : kind == SRC_XML ? "XML" : "synthetic",
               arg ? " " : "", arg ? arg : "", strerror(e));
        rc = -e;
    }
    if (rc == 0 && kind == SRC_SYSTEM) {
        /* Binding unreadable: plan for the whole machine, as before. */
        hwloc_bitmap_t mine = process_binding(t->hw);
        if (mine) {
            rc = restrict_to_binding(t, mine, err, errlen);
            hwloc_bitmap_free(mine);
        }
    } else if (rc == 0 && bound) {
        rc = restrict_to_binding(t, bound, err, errlen);
    }
    if (rc == 0)
        rc = flatten(t, err, errlen);
    if (rc < 0) {
        ax_topo_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

int ax_topo_load_system(ax_topo_t **out, char *err, size_t errlen)
{
    return load(SRC_SYSTEM, NULL, NULL, out, err, errlen);
}

int ax_topo_load_synthetic(const char *desc, ax_topo_t **out, char *err, size_t errlen)
{
    return load(SRC_SYNTHETIC, desc, NULL, out, err, errlen);
}

int ax_topo_load_xml(const char *path, ax_topo_t **out, char *err, size_t errlen)
{
    return load(SRC_XML, path, NULL, out, err, errlen);
}

int ax__topo_load_synthetic_bound(const char *desc, const char *cpus, ax_topo_t **out,
                                  char *err, size_t errlen)
{
    if (!cpus) {
        if (out)
            *out = NULL;
        ax__seterr(err, errlen, "ax__topo_load_synthetic_bound: cpus is NULL; give a list such "
               "as '0-3,8'");
        return -EINVAL;
    }
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set) {
        if (out)
            *out = NULL;
        ax__seterr(err, errlen, "out of memory for a CPU set");
        return -ENOMEM;
    }
    int rc;
    if (hwloc_bitmap_list_sscanf(set, cpus) < 0) {
        if (out)
            *out = NULL;
        ax__seterr(err, errlen, "CPU list '%s' is not a list such as '0-3,8'", cpus);
        rc = -EINVAL;
    } else {
        rc = load(SRC_SYNTHETIC, desc, set, out, err, errlen);
    }
    hwloc_bitmap_free(set);
    return rc;
}

int ax_topo_load_config(const ax_config_t *cfg, ax_topo_t **out, char *err, size_t errlen)
{
    if (!cfg)
        return ax_topo_load_system(out, err, errlen);
    if (cfg->topology_synthetic[0] && cfg->topology_xml[0]) {
        ax__seterr(err, errlen, "topology.synthetic and topology.xml are both set: keep one of them");
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    if (!cfg->topology_synthetic[0] && !cfg->topology_xml[0])
        return ax_topo_load_system(out, err, errlen);
    /* A bad description or a missing file names the line (or variable)
     * that gave it, before hwloc's reason. */
    bool synth = cfg->topology_synthetic[0] != '\0';
    char why[768];
    int rc = synth ? ax_topo_load_synthetic(cfg->topology_synthetic, out, why, sizeof why)
                   : ax_topo_load_xml(cfg->topology_xml, out, why, sizeof why);
    if (rc < 0) {
        char where[AX_CONFIG_STR_MAX + 32];
        ax__config_where(cfg, synth ? "topology.synthetic" : "topology.xml", where, sizeof where);
        ax__seterr(err, errlen, "%s%s", where, why);
    }
    return rc;
}

void ax_topo_destroy(ax_topo_t *topo)
{
    if (!topo)
        return;
    if (topo->hw)
        hwloc_topology_destroy(topo->hw);
    free(topo->cores);
    free(topo->pu_os);
    free(topo->nodes);
    free(topo);
}

bool ax_topo_is_this_system(const ax_topo_t *topo)
{
    return topo && topo->this_system;
}

void ax_topo_summary(const ax_topo_t *topo, ax_topo_summary_t *out)
{
    if (!out)
        return;
    if (!topo) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = topo->summary;
}
