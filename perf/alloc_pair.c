/* perf/alloc_pair.c - a fixed number of same-thread alloc+free pairs, for
 * instruction counts under callgrind (repeatable, unlike time here):
 *
 *   valgrind --tool=callgrind build/bin/axon-alloc-pair arena|glibc|jemalloc [pairs] [bytes]
 *
 * Subtract a run with pairs = 0 to remove start-up; docs/benchmarks.md
 * quotes the per-pair figures. */
#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/arena.h"

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
#define ESCAPE(p) __asm__ volatile("" : : "g"(p) : "memory")

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "arena") && strcmp(argv[1], "glibc") && strcmp(argv[1], "jemalloc"))) {
        fprintf(stderr, "usage: %s arena|glibc|jemalloc [pairs (1000000)] [bytes (64)]\n", argv[0]);
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    size_t sz = argc > 3 ? (size_t)atol(argv[3]) : 64;
    int node = -1;
    ax_arena_group_t *g;
    ax_arena_group_opts_t o = {.narenas = 1, .arena_bytes = 8u << 20, .nodes = &node};
    int rc = ax_arena_group_create(&o, &g);
    if (rc < 0) {
        fprintf(stderr, "axon-alloc-pair: arena: %s\n", strerror(-rc));
        return 1;
    }
    ax_arena_t *a = ax_arena_group_get(g, 0);
    char which = argv[1][0];
    for (long i = 0; i < n; i++) {
        void *p;
        if (which == 'a') {
            p = ax_arena_alloc(a, sz);
            ESCAPE(p);
            ax_arena_free(a, p);
        } else if (which == 'g') {
            p = __libc_malloc(sz);
            ESCAPE(p);
            __libc_free(p);
        } else {
            p = mallocx(sz, 0);
            ESCAPE(p);
            sdallocx(p, sz, 0);
        }
    }
    ax_arena_group_destroy(g);
    printf("axon-alloc-pair: %ld pairs of %zu B with %s\n", n, sz, argv[1]);
    return 0;
}
