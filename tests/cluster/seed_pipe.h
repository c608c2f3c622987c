/* tests/cluster/seed_pipe.h - the launchers' handshake with node 0: node 0
 * writes its join address as one line on a pipe, and the launcher reads it
 * to give the nodes it forks next as their seed.  Header-only, shared by
 * cluster_node.c and cluster_req.c. */
#ifndef AXON_TESTS_SEED_PIPE_H
#define AXON_TESTS_SEED_PIPE_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Read node 0's address line from rfd (closed here) into seed, without its
 * newline.  0, or -1 after saying so and killing node0 when none came. */
static int seed_read(int rfd, pid_t node0, char *seed, size_t len)
{
    FILE *in = fdopen(rfd, "r");
    if (!in || !fgets(seed, (int)len, in)) {
        fprintf(stderr, "node 0 did not report its address\n");
        if (in)
            fclose(in);
        else
            close(rfd);
        kill(node0, SIGKILL);
        return -1;
    }
    seed[strcspn(seed, "\n")] = 0;
    fclose(in);
    return 0;
}

#endif
