/* tests/cluster/cluster_test.h - what the cluster test programs
 * (cluster_node.c, cluster_req.c) share: ERR (count and print an error;
 * the file defines g_node and g_errors), now_s, and the launcher's
 * handshake with node 0, which writes its join address as one line on a
 * pipe for the launcher to give the nodes it forks next as their seed.
 * Header-only. */
#ifndef AXON_TESTS_CLUSTER_TEST_H
#define AXON_TESTS_CLUSTER_TEST_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "axon/cluster.h"

#define ERR(...) \
    do { \
        fprintf(stderr, "node %u: ", g_node); \
        fprintf(stderr, __VA_ARGS__); \
        fprintf(stderr, "\n"); \
        atomic_fetch_add(&g_errors, 1); \
    } while (0)

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Node 0's side: write its join address as one line to out (NULL: not
 * node 0, nothing to do) and close it. */
static void seed_write(ax_engine_t *e, FILE *out)
{
    if (!out)
        return;
    char a[64];
    ax_cluster_listen_address(e, a, sizeof a);
    fprintf(out, "%s\n", a);
    fclose(out);
}

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
