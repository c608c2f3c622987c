/* topology/bind.c - thread and memory binding on hwloc, refused on any
 * topology that is not this machine (see bind.h for why).
 *
 * Threading: any thread.  Memory: see bind.h.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "topology/bind.h"
#include "topology/topo_internal.h"


/* 0 when binding is real on t; else the errno and a sentence. */
static int can_bind(const ax_topo_t *t, bool memory, char *err, size_t errlen)
{
    if (!t) {
        ax__seterr(err, errlen, "no topology given: load one with ax_topo_load_system first");
        return -EINVAL;
    }
    if (!hwloc_topology_is_thissystem(t->hw)) {
        const char *src = t->summary.source;
        const char *kind = strncmp(src, "xml: ", 5) == 0 ? "XML" : "synthetic";
        const char *colon = strchr(src, ':');
        ax__seterr(err, errlen, "topology is %s '%s', not this machine: cannot bind; plans for "
               "foreign machines run unpinned", kind, colon ? colon + 2 : src);
        return -EXDEV;
    }
    const struct hwloc_topology_support *s = hwloc_topology_get_support(t->hw);
    if (!t->this_system || !s || (memory ? !s->membind->set_area_membind ||
                                               !s->membind->alloc_membind
                                         : !s->cpubind->set_thisthread_cpubind)) {
        ax__seterr(err, errlen, "hwloc cannot %s on this machine (%s): running unpinned; check "
               "that the process may call %s (containers may forbid it)",
               memory ? "bind memory" : "bind threads", t->summary.source,
               memory ? "mbind" : "sched_setaffinity");
        return -ENOTSUP;
    }
    return 0;
}

static hwloc_obj_t find_node(const ax_topo_t *t, uint32_t node_os)
{
    for (uint32_t i = 0; i < t->nnodes; i++)
        if (t->nodes[i].os == node_os)
            return hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_NUMANODE, i);
    return NULL;
}

int ax_topo_bind_thread(const ax_topo_t *t, uint32_t pu_os, char *err, size_t errlen)
{
    int rc = can_bind(t, false, err, errlen);
    if (rc < 0)
        return rc;
    hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(t->hw, pu_os);
    if (!pu) {
        ax__seterr(err, errlen, "PU %u does not exist on this machine (%u PUs); use a PU number "
               "from the plan", pu_os, t->npus);
        return -EINVAL;
    }
    if (hwloc_set_cpubind(t->hw, pu->cpuset, HWLOC_CPUBIND_THREAD | HWLOC_CPUBIND_STRICT) < 0) {
        int e = errno ? errno : EINVAL;
        ax__seterr(err, errlen, "binding this thread to PU %u failed: %s; is the PU outside the "
               "process's allowed CPUs (taskset, cgroup cpuset)?", pu_os, strerror(e));
        return -e;
    }
    return 0;
}

int ax_topo_bind_memory(const ax_topo_t *t, void *addr, size_t len, uint32_t node_os,
                        char *err, size_t errlen)
{
    int rc = can_bind(t, true, err, errlen);
    if (rc < 0)
        return rc;
    hwloc_obj_t node = find_node(t, node_os);
    if (!node) {
        ax__seterr(err, errlen, "NUMA node %u does not exist on this machine (%u nodes); use a "
               "node number from the plan", node_os, t->nnodes);
        return -EINVAL;
    }
    if (hwloc_set_area_membind(t->hw, addr, len, node->nodeset, HWLOC_MEMBIND_BIND,
                               HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_MIGRATE) < 0) {
        int e = errno ? errno : EINVAL;
        ax__seterr(err, errlen, "binding %zu bytes at %p to NUMA node %u failed: %s; the address "
               "must be page-aligned", len, addr, node_os, strerror(e));
        return -e;
    }
    return 0;
}

void *ax_topo_alloc_on_node(const ax_topo_t *t, size_t len, uint32_t node_os)
{
    int rc = can_bind(t, true, NULL, 0);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    hwloc_obj_t node = find_node(t, node_os);
    if (!node || len == 0) {
        errno = EINVAL;
        return NULL;
    }
    void *p = hwloc_alloc_membind(t->hw, len, node->nodeset, HWLOC_MEMBIND_BIND,
                                  HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_STRICT);
    if (!p && !errno)
        errno = ENOMEM;
    return p;
}

void ax_topo_free(const ax_topo_t *t, void *p, size_t len)
{
    if (t && p)
        hwloc_free(t->hw, p, len); /* mmap'ed by hwloc: not free() */
}

int ax_topo_current_pu(void)
{
    int cpu = sched_getcpu();
    return cpu < 0 ? -errno : cpu;
}
