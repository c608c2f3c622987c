/* axon/cluster_mpi.h - start cluster nodes under MPI (libaxon_cluster_mpi,
 * built only when MPI is found).
 *
 *   mpirun -n 4 ./app    -> four nodes, node id = MPI rank
 *
 *   ax_config_t c; ax_config_init(&c); ... cluster.cookie etc.
 *   ax_cluster_mpi_init(&argc, &argv, &c, &rank, &size);
 *   ax_engine_create(&c, &eng);          (spawn, register, ...)
 *   ax_cluster_mpi_exchange(eng);         (MPI is finalized here)
 *   ax_engine_start(eng); ax_cluster_wait_nodes(eng, size - 1, ...);
 *
 * MPI only finds the nodes (an allgather of their join addresses); the
 * nodes then join each other as in standalone mode and MPI leaves the
 * picture: it is finalized before the engine starts, and no message ever
 * travels through it.
 */
#ifndef AXON_CLUSTER_MPI_H
#define AXON_CLUSTER_MPI_H

#include "axon/cluster.h"

#ifdef __cplusplus
extern "C" {
#endif

/* MPI_Init, then cfg->cluster_node_id = rank and, if cfg->cluster_listen is
 * empty, "127.0.0.1:0" (a single host; set cluster.listen to this host's
 * address with port 0 across hosts).  rank and size may be NULL.  0, or
 * -EINVAL (more than 256 ranks), -EIO (MPI failed). */
AX_API int ax_cluster_mpi_init(int *argc, char ***argv, ax_config_t *cfg, int *rank, int *size);
/* Allgather the nodes' join addresses, dial the lower ranks, finalize MPI.
 * Collective: every rank calls it once, after ax_engine_create.  0, -EINVAL
 * (not a cluster node), -EIO. */
AX_API int ax_cluster_mpi_exchange(ax_engine_t *eng);

#ifdef __cplusplus
}
#endif
#endif /* AXON_CLUSTER_MPI_H */
