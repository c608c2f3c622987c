/* cluster/mpi_boot.c - the MPI launcher (axon/cluster_mpi.h): MPI finds the
 * nodes, then leaves.  Built into libaxon_cluster_mpi only when MPI is
 * found; uses the public API only. */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/cluster_mpi.h"

#define ADDR_LEN 64

int ax_cluster_mpi_init(int *argc, char ***argv, ax_config_t *cfg, int *rank, int *size)
{
    int r = 0, s = 0, provided = 0;
    if (!cfg)
        return -EINVAL;
    /* FUNNELED: only this thread calls MPI, and only until the exchange. */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return -EIO;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    if (s > 256) {
        if (r == 0)
            fprintf(stderr, "axon: %d MPI ranks, a cluster has at most 256 nodes\n", s);
        MPI_Finalize();
        return -EINVAL;
    }
    cfg->cluster_node_id = (uint32_t)r;
    if (!cfg->cluster_listen[0])
        snprintf(cfg->cluster_listen, sizeof cfg->cluster_listen, "127.0.0.1:0");
    if (rank)
        *rank = r;
    if (size)
        *size = s;
    return 0;
}

int ax_cluster_mpi_exchange(ax_engine_t *eng)
{
    char mine[ADDR_LEN] = { 0 };
    int r = 0, s = 0, rc = 0;
    if (!ax_cluster_enabled(eng) || ax_cluster_listen_address(eng, mine, sizeof mine) < 0)
        rc = -EINVAL;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    char *all = calloc((size_t)s, ADDR_LEN);
    if (!all) {
        MPI_Abort(MPI_COMM_WORLD, 1);
        return -ENOMEM;
    }
    if (MPI_Allgather(mine, ADDR_LEN, MPI_CHAR, all, ADDR_LEN, MPI_CHAR, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
        rc = -EIO;
    /* Each pair joins once: the higher rank dials the lower. */
    for (int i = 0; !rc && i < r; i++) {
        all[(size_t)i * ADDR_LEN + ADDR_LEN - 1] = 0;
        if (ax_cluster_add_peer(eng, all + (size_t)i * ADDR_LEN) < 0) {
            fprintf(stderr, "axon: rank %d: bad join address from rank %d: \"%s\"\n", r, i,
                    all + (size_t)i * ADDR_LEN);
            rc = -EIO;
        }
    }
    free(all);
    MPI_Finalize();
    return rc;
}
