/* topology/bind.h - bind threads to PUs and memory to NUMA nodes (internal,
 * for the engine and allocator).
 *
 * hwloc reports success for binding calls on a synthetic or XML topology and
 * does nothing, so every helper here refuses unless ax_topo_is_this_system():
 * -EXDEV with a sentence naming the topology.  A plan for a foreign machine
 * therefore runs unpinned, and says so, instead of pretending.
 *
 * Threading: any thread; ax_topo_bind_thread binds the CALLING thread.
 * Memory: ax_topo_alloc_on_node memory is mmap'ed by hwloc; release it with
 * ax_topo_free (same topology, same len), never free().
 */
#ifndef AXON_TOPOLOGY_BIND_H
#define AXON_TOPOLOGY_BIND_H

#include <stddef.h>
#include <stdint.h>

#include "axon/topology.h"

/* Bind the calling thread to the PU with OS index pu_os (strictly).  Returns
 * 0, -EXDEV (topology is not this machine), -ENOTSUP (hwloc cannot bind
 * threads here), -EINVAL (no such PU) or -errno from the system; err gets
 * a sentence.  On error the thread's binding is unchanged. */
int ax_topo_bind_thread(const ax_topo_t *t, uint32_t pu_os, char *err, size_t errlen);

/* Bind [addr, addr+len) (page-aligned addr) to NUMA node node_os, migrating
 * pages already touched.  Same error contract as ax_topo_bind_thread. */
int ax_topo_bind_memory(const ax_topo_t *t, void *addr, size_t len, uint32_t node_os,
                        char *err, size_t errlen);

/* len bytes bound to node node_os (strict), or NULL with errno = EXDEV,
 * ENOTSUP, EINVAL or ENOMEM.  The caller owns the memory: ax_topo_free. */
void *ax_topo_alloc_on_node(const ax_topo_t *t, size_t len, uint32_t node_os);
void ax_topo_free(const ax_topo_t *t, void *p, size_t len); /* p NULL: does nothing */

/* The PU (OS index) the calling thread runs on now, or -errno. */
int ax_topo_current_pu(void);

#endif /* AXON_TOPOLOGY_BIND_H */
