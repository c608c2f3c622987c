/* tests/unit/test_arena.c - alloc/ unit tests: size classes, exhaustion,
 * stats, owner lookup, remote free, debug checks, NUMA placement, mbind
 * fault injection, large allocations.
 * Linked with -Wl,--wrap=mbind (tests/alloc.cmake): __wrap_mbind passes
 * through to the real mbind unless a test asks it to fail.
 * Threading: single-threaded, except the death tests, which fork. */
#include "alloc/arena.h"

#include <errno.h>
#include <numaif.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* ---- mbind fault injection ---------------------------------------------------- */
long __real_mbind(void *addr, unsigned long len, int mode, const unsigned long *mask,
                  unsigned long maxnode, unsigned flags);
long __wrap_mbind(void *addr, unsigned long len, int mode, const unsigned long *mask,
                  unsigned long maxnode, unsigned flags);
static int mbind_calls, mbind_fail_from; /* fail calls numbered >= from (1-based); 0: never */
long __wrap_mbind(void *addr, unsigned long len, int mode, const unsigned long *mask,
                  unsigned long maxnode, unsigned flags)
{
    mbind_calls++;
    if (mbind_fail_from && mbind_calls >= mbind_fail_from) {
        errno = EIO;
        return -1;
    }
    return __real_mbind(addr, len, mode, mask, maxnode, flags);
}

static ax_arena_group_t *make_group(uint32_t n, uint64_t bytes)
{
    ax_arena_group_opts_t o = {.narenas = n, .arena_bytes = bytes};
    ax_arena_group_t *g = NULL;
    assert_int_equal(ax_arena_group_create(&o, &g), 0);
    assert_non_null(g);
    return g;
}

/* ---- size classes ------------------------------------------------------------- */

static void every_size_maps_to_the_smallest_class_that_fits_with_bounded_waste(void **st)
{
    (void)st;
    assert_int_equal(ax_arena_class_of(0), -1);
    assert_int_equal(ax_arena_class_of(AX_ARENA_MAX_CLASS + 1), -1);
    for (size_t s = 1; s <= AX_ARENA_MAX_CLASS; s++) {
        int c = ax_arena_class_of(s);
        assert_true(c >= 0 && c < (int)AX_ARENA_NCLASSES);
        size_t cs = ax_arena_class_size((unsigned)c);
        assert_true(cs >= s);
        if (c > 0)
            assert_true(ax_arena_class_size((unsigned)c - 1) < s);
        if (s <= 128)
            assert_true(cs - s < 16);
        else
            assert_true((cs - s) * 4 < s); /* waste below 25 % of the request */
        if (s % 64 == 0)
            assert_int_equal(cs % 64, 0);
    }
    for (unsigned c = 1; c < AX_ARENA_NCLASSES; c++)
        assert_true(ax_arena_class_size(c) > ax_arena_class_size(c - 1));
    assert_int_equal(ax_arena_class_size(AX_ARENA_NCLASSES - 1), AX_ARENA_MAX_CLASS);
}

static void alloc_at_each_class_boundary_returns_an_aligned_block_of_that_class(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(1, 4u << 20);
    ax_arena_t *a = ax_arena_group_get(g, 0);
    for (unsigned c = 0; c < AX_ARENA_NCLASSES; c++) {
        size_t cs = ax_arena_class_size(c);
        size_t lo = c ? ax_arena_class_size(c - 1) + 1 : 1;
        size_t sizes[] = {lo, cs};
        for (int k = 0; k < 2; k++) {
            void *p = ax_arena_alloc(a, sizes[k]);
            assert_non_null(p);
            assert_int_equal(ax_arena_block_size(a, p), cs);
            assert_int_equal((uintptr_t)p % 16, 0);
            if (cs % 64 == 0)
                assert_int_equal((uintptr_t)p % 64, 0);
            memset(p, 0xab, cs); /* ASan: the whole class size is usable */
            assert_ptr_equal(ax_arena_owner(g, p), a);
            ax_arena_free(a, p);
        }
    }
    ax_arena_stats_t s;
    ax_arena_get_stats(a, &s);
    assert_int_equal(s.used_bytes, 0);
    assert_int_equal(s.bad_requests, 0);
    assert_null(ax_arena_alloc(a, 0));
    assert_null(ax_arena_alloc(a, AX_ARENA_MAX_CLASS + 1));
    ax_arena_get_stats(a, &s);
    assert_int_equal(s.bad_requests, 2);
    assert_int_equal(s.failed_allocs, 0);
    ax_arena_group_destroy(g);
}

/* A freed block goes on the class's free list and comes back once the
 * batch of blocks ahead of it is used up, before the arena carves anything
 * new; an alloc+free loop therefore never grows the arena. */
static void freed_block_is_handed_out_again_before_fresh_memory(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(1, 1u << 20);
    ax_arena_t *a = ax_arena_group_get(g, 0);
    void *p = ax_arena_alloc(a, 64), *q = ax_arena_alloc(a, 64);
    assert_ptr_not_equal(p, q);
    ax_arena_stats_t s;
    ax_arena_get_stats(a, &s);
    uint64_t carved = s.bump_bytes; /* one batch: more than the two blocks */
    assert_true(carved >= 128 && carved <= 64 * 64);
    ax_arena_free(a, p);
    /* the rest of the batch first, then p; nothing new is carved meanwhile */
    enum { MAX = 64 };
    void *got[MAX];
    int n = 0;
    do {
        assert_true(n < MAX);
        ax_arena_get_stats(a, &s);
        assert_int_equal(s.bump_bytes, carved); /* nothing new before p */
        got[n] = ax_arena_alloc(a, 50);
        assert_non_null(got[n]);
        assert_ptr_not_equal(got[n], q);
    } while (got[n++] != p);
    assert_int_equal(n, carved / 64 - 1);
    /* p came back alone (nothing else was free), so a spare batch was
     * carved with it: see the next test */
    ax_arena_get_stats(a, &s);
    carved = s.bump_bytes;
    for (int i = 0; i < n; i++)
        ax_arena_free(a, got[i]);
    ax_arena_free(a, q);
    /* a long alloc+free loop stays inside that first batch */
    for (int i = 0; i < 100000; i++)
        ax_arena_free(a, ax_arena_alloc(a, 64));
    ax_arena_get_stats(a, &s);
    assert_int_equal(s.bump_bytes, carved);
    assert_int_equal(s.used_bytes, 0);
    ax_arena_group_destroy(g);
}

/* A fixed number of live blocks, each free followed by an alloc (a FIFO,
 * or a window of messages in flight), leaves no block spare: every alloc
 * would swap in the single block just freed.  The arena adds one spare
 * batch the first time, and never again. */
static void no_spare_block_gets_one_spare_batch_once(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(1, 4u << 20);
    ax_arena_t *a = ax_arena_group_get(g, 0);
    enum { LIVE = 64 }; /* two whole batches of 64 B blocks */
    void *live[LIVE];
    for (int i = 0; i < LIVE; i++)
        assert_non_null(live[i] = ax_arena_alloc(a, 64));
    ax_arena_stats_t s;
    ax_arena_get_stats(a, &s);
    uint64_t before = s.bump_bytes;
    assert_int_equal(before, LIVE * 64);
    for (int i = 0; i < 10000; i++) {
        ax_arena_free(a, live[i % LIVE]);
        assert_non_null(live[i % LIVE] = ax_arena_alloc(a, 64));
    }
    ax_arena_get_stats(a, &s);
    assert_int_equal(s.bump_bytes, before + 32 * 64); /* one batch of 32 */
    assert_int_equal(s.used_bytes, LIVE * 64);
    for (int i = 0; i < LIVE; i++) /* still distinct live blocks */
        for (int j = i + 1; j < LIVE; j++)
            assert_ptr_not_equal(live[i], live[j]);
    for (int i = 0; i < LIVE; i++)
        ax_arena_free(a, live[i]);
    ax_arena_group_destroy(g);
}

/* ...but not from the last runs: in a two-run arena the spare batch would
 * take the run another class needs. */
static void spare_batch_never_takes_the_last_run(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(1, 2 * AX_ARENA_RUN_BYTES);
    ax_arena_t *a = ax_arena_group_get(g, 0);
    enum { LIVE = AX_ARENA_RUN_BYTES / 4096 }; /* fills the first run */
    void *live[LIVE];
    for (int i = 0; i < LIVE; i++)
        assert_non_null(live[i] = ax_arena_alloc(a, 4096));
    for (int i = 0; i < 1000; i++) {
        ax_arena_free(a, live[i % LIVE]);
        assert_non_null(live[i % LIVE] = ax_arena_alloc(a, 4096));
    }
    ax_arena_stats_t s;
    ax_arena_get_stats(a, &s);
    assert_int_equal(s.runs_used, 1);
    void *small = ax_arena_alloc(a, 16); /* the second run is still there */
    assert_non_null(small);
    ax_arena_free(a, small);
    for (int i = 0; i < LIVE; i++)
        ax_arena_free(a, live[i]);
    ax_arena_group_destroy(g);
}

/* ---- exhaustion and stats --------------------------------------------------------- */

static void exhausted_arena_returns_null_counts_it_and_never_borrows(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(2, 2 * AX_ARENA_RUN_BYTES);
    ax_arena_t *a = ax_arena_group_get(g, 0), *b = ax_arena_group_get(g, 1);
    void *blk[64];
    int n = 0;
    while (n < 64 && (blk[n] = ax_arena_alloc(a, 4096)) != NULL)
        n++;
    assert_int_equal(n, 2 * AX_ARENA_RUN_BYTES / 4096); /* exactly the two runs */
    assert_null(ax_arena_alloc(a, 16)); /* no run left for another class either */
    ax_arena_stats_t s;
    ax_arena_get_stats(a, &s);
    assert_int_equal(s.failed_allocs, 2);
    assert_int_equal(s.runs_used, s.runs_total);
    for (int i = 0; i < n; i++)
        assert_ptr_equal(ax_arena_owner(g, blk[i]), a);
    ax_arena_get_stats(b, &s);
    assert_int_equal(s.used_bytes, 0); /* the neighbour lent nothing */
    ax_arena_free(a, blk[3]);
    assert_ptr_equal(ax_arena_alloc(a, 4000), blk[3]);
    for (int i = 0; i < n; i++)
        ax_arena_free(a, blk[i]);
    ax_arena_group_destroy(g);
}

static void stats_report_used_bytes_high_water_and_blocks_per_class(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(1, 1u << 20);
    ax_arena_t *a = ax_arena_group_get(g, 0);
    void *p1 = ax_arena_alloc(a, 100); /* 112 */
    void *p2 = ax_arena_alloc(a, 100);
    void *p3 = ax_arena_alloc(a, 1000); /* 1024 */
    ax_arena_stats_t s;
    ax_arena_get_stats(a, &s);
    assert_int_equal(s.nclasses, AX_ARENA_NCLASSES);
    assert_int_equal(s.used_bytes, 2 * 112 + 1024);
    assert_int_equal(s.high_water_bytes, 2 * 112 + 1024);
    assert_int_equal(s.class_in_use[ax_arena_class_of(100)], 2);
    assert_int_equal(s.class_size[ax_arena_class_of(100)], 112);
    assert_int_equal(s.class_in_use[ax_arena_class_of(1000)], 1);
    assert_int_equal(s.data_bytes, 1u << 20);
    assert_true(s.reserved_bytes > s.data_bytes);
    assert_int_equal(s.node, -1);
    assert_false(s.hugepages);
    ax_arena_free(a, p3);
    ax_arena_free(a, p1);
    ax_arena_get_stats(a, &s);
    assert_int_equal(s.used_bytes, 112);
    assert_int_equal(s.high_water_bytes, 2 * 112 + 1024);
    assert_int_equal(s.class_in_use[ax_arena_class_of(1000)], 0);
    ax_arena_free(a, p2);
    ax_arena_group_destroy(g);
}

/* ---- owner lookup and remote free ----------------------------------------------- */

static void owner_of_any_block_is_its_arena_and_foreign_pointers_have_none(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(3, 1u << 20);
    assert_int_equal(ax_arena_group_size(g), 3);
    assert_null(ax_arena_group_get(g, 3));
    for (uint32_t i = 0; i < 3; i++) {
        ax_arena_t *a = ax_arena_group_get(g, i);
        assert_int_equal(ax_arena_index(a), i);
        void *p = ax_arena_alloc(a, 256), *q = ax_arena_alloc(a, 16);
        assert_ptr_equal(ax_arena_owner(g, p), a);
        assert_ptr_equal(ax_arena_owner(g, q), a);
        assert_null(ax_arena_owner(g, a)); /* the header is not a block */
        ax_arena_free(a, p);
        ax_arena_free(a, q);
    }
    int local;
    assert_null(ax_arena_owner(g, &local));
    assert_null(ax_arena_owner(g, NULL));
    ax_arena_group_destroy(g);
}

static void remote_frees_return_to_the_owner_in_batches_and_are_reused(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(2, 1u << 20);
    ax_arena_t *own = ax_arena_group_get(g, 0), *oth = ax_arena_group_get(g, 1);
    enum { N = AX_ARENA_BATCH + 10 };
    void *blk[N];
    for (int i = 0; i < N; i++)
        assert_non_null(blk[i] = ax_arena_alloc(own, 64));
    ax_arena_stats_t s;
    /* Fewer than a batch: nothing reaches the owner before a flush. */
    for (int i = 0; i < 10; i++)
        ax_arena_free_any(oth, blk[i]);
    assert_int_equal(ax_arena_reclaim(own), 0);
    ax_arena_get_stats(oth, &s);
    assert_int_equal(s.remote_pending, 10);
    ax_arena_flush(oth);
    assert_int_equal(ax_arena_reclaim(own), 10);
    /* A full batch pushes itself. */
    for (int i = 10; i < N; i++)
        ax_arena_free_any(oth, blk[i]);
    assert_int_equal(ax_arena_reclaim(own), AX_ARENA_BATCH);
    ax_arena_get_stats(own, &s);
    assert_int_equal(s.remote_frees_received, N);
    assert_int_equal(s.used_bytes, 0);
    ax_arena_get_stats(oth, &s);
    assert_int_equal(s.remote_frees_sent, N);
    assert_int_equal(s.remote_pending, 0);
    assert_int_equal(s.used_bytes, 0);
    /* Reused by the owner: no fresh memory needed for N more blocks. */
    uint64_t bump;
    ax_arena_get_stats(own, &s);
    bump = s.bump_bytes;
    for (int i = 0; i < N; i++) {
        blk[i] = ax_arena_alloc(own, 64);
        assert_ptr_equal(ax_arena_owner(g, blk[i]), own);
    }
    ax_arena_get_stats(own, &s);
    assert_int_equal(s.bump_bytes, bump);
    /* free_any of a local block is a plain free. */
    for (int i = 0; i < N; i++)
        ax_arena_free_any(own, blk[i]);
    ax_arena_get_stats(own, &s);
    assert_int_equal(s.used_bytes, 0);
    assert_int_equal(s.remote_frees_sent, 0);
    ax_arena_group_destroy(g);
}

/* Blocks other threads return are linked by the owner as it reclaims them,
 * which pulls them into its cache: they are handed out next, ahead of the
 * blocks already waiting, instead of going cold behind them. */
static void returned_blocks_are_handed_out_before_older_free_blocks(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(2, 1u << 20);
    ax_arena_t *own = ax_arena_group_get(g, 0), *oth = ax_arena_group_get(g, 1);
    void *p = ax_arena_alloc(own, 64), *q = ax_arena_alloc(own, 64);
    ax_arena_free(own, p); /* waits behind the rest of the carved batch */
    ax_arena_free_any(oth, q);
    ax_arena_flush(oth);
    assert_int_equal(ax_arena_reclaim(own), 1);
    void *r = ax_arena_alloc(own, 64);
    assert_ptr_equal(r, q);
    ax_arena_free(own, r);
    ax_arena_stats_t s;
    ax_arena_get_stats(own, &s);
    assert_int_equal(s.used_bytes, 0);
    ax_arena_group_destroy(g);
}

static void full_return_ring_keeps_blocks_queued_until_the_owner_makes_room(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(2, 1u << 20);
    ax_arena_t *own = ax_arena_group_get(g, 0), *oth = ax_arena_group_get(g, 1);
    enum { N = AX_ARENA_RING + 44 };
    static void *blk[N];
    for (int i = 0; i < N; i++)
        assert_non_null(blk[i] = ax_arena_alloc(own, 32));
    for (int i = 0; i < N; i++)
        ax_arena_free_any(oth, blk[i]); /* the owner does not reclaim meanwhile */
    ax_arena_flush(oth);
    ax_arena_stats_t s;
    ax_arena_get_stats(oth, &s);
    assert_int_equal(s.remote_frees_sent, AX_ARENA_RING);
    assert_int_equal(s.remote_pending, 44); /* kept, not dropped */
    assert_int_equal(ax_arena_reclaim(own), AX_ARENA_RING);
    ax_arena_flush(oth); /* room now: the overflow goes out */
    ax_arena_get_stats(oth, &s);
    assert_int_equal(s.remote_pending, 0);
    assert_int_equal(s.remote_frees_sent, N);
    assert_int_equal(ax_arena_reclaim(own), 44);
    ax_arena_get_stats(own, &s);
    assert_int_equal(s.used_bytes, 0);
    assert_int_equal(s.remote_frees_received, N);
    ax_arena_group_destroy(g);
}

static void exhausted_arena_takes_back_returned_blocks_before_failing(void **st)
{
    (void)st;
    ax_arena_group_t *g = make_group(2, AX_ARENA_RUN_BYTES);
    ax_arena_t *own = ax_arena_group_get(g, 0), *oth = ax_arena_group_get(g, 1);
    void *blk[16];
    for (int i = 0; i < 16; i++)
        assert_non_null(blk[i] = ax_arena_alloc(own, 4096));
    ax_arena_free_any(oth, blk[5]);
    ax_arena_flush(oth);
    assert_ptr_equal(ax_arena_alloc(own, 4096), blk[5]); /* reclaimed on refill */
    for (int i = 0; i < 16; i++)
        ax_arena_free(own, blk[i]);
    ax_arena_group_destroy(g);
}

/* ---- debug checks: death tests in a forked child ---------------------------------- */

typedef void (*child_fn)(void);
/* Runs fn in a child with stderr captured; returns the wait status. */
__attribute__((unused)) /* used by debug and ASan builds only */
static int run_child(child_fn fn, char *out, size_t outlen)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        fn();
        _exit(0);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < outlen && (r = read(fd[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

#ifdef AXON_ARENA_DEBUG /* the children exercise checks only debug builds have */
static void child_double_free(void)
{
    ax_arena_group_opts_t o = {.narenas = 1, .arena_bytes = 1u << 20};
    ax_arena_group_t *g = NULL;
    if (ax_arena_group_create(&o, &g))
        _exit(3);
    ax_arena_t *a = ax_arena_group_get(g, 0);
    void *p = ax_arena_alloc(a, 200);
    void *q = ax_arena_alloc(a, 200);
    ax_arena_free(a, p);
    ax_arena_free(a, q);
    ax_arena_free(a, p); /* must die here */
    _exit(4);
}

static void child_remote_double_free(void)
{
    ax_arena_group_opts_t o = {.narenas = 2, .arena_bytes = 1u << 20};
    ax_arena_group_t *g = NULL;
    if (ax_arena_group_create(&o, &g))
        _exit(3);
    ax_arena_t *a = ax_arena_group_get(g, 0), *b = ax_arena_group_get(g, 1);
    void *p = ax_arena_alloc(a, 64);
    ax_arena_free_any(b, p);
    ax_arena_free_any(b, p); /* must die here */
    _exit(4);
}

static void child_interior_free(void)
{
    ax_arena_group_opts_t o = {.narenas = 1, .arena_bytes = 1u << 20};
    ax_arena_group_t *g = NULL;
    if (ax_arena_group_create(&o, &g))
        _exit(3);
    ax_arena_t *a = ax_arena_group_get(g, 0);
    char *p = ax_arena_alloc(a, 256);
    ax_arena_free(a, p + 16); /* must die here */
    _exit(4);
}

static void expect_abort_with(child_fn fn, const char *msg)
{
    char out[8192];
    int status = run_child(fn, out, sizeof out);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
        fail_msg("child was expected to abort; status %#x, stderr: %s", status, out);
    if (!strstr(out, msg))
        fail_msg("child's stderr lacks \"%s\": %s", msg, out);
}
#endif

static void double_free_is_detected_in_debug_builds(void **st)
{
    (void)st;
#ifdef AXON_ARENA_DEBUG
    expect_abort_with(child_double_free, "double free");
    expect_abort_with(child_remote_double_free, "double free");
    expect_abort_with(child_interior_free, "not at the start of a block");
#else
    skip(); /* release build: the checks are compiled out by design; the
             * sanitizer builds (./run.sh test, CI) compile them in and run
             * this test */
#endif
}

#ifdef AX__ARENA_ASAN
static void child_use_after_free(void)
{
    ax_arena_group_opts_t o = {.narenas = 1, .arena_bytes = 1u << 20};
    ax_arena_group_t *g = NULL;
    if (ax_arena_group_create(&o, &g))
        _exit(3);
    ax_arena_t *a = ax_arena_group_get(g, 0);
    volatile char *p = ax_arena_alloc(a, 512);
    p[0] = 1;
    ax_arena_free(a, (void *)p);
    p[300] = 2; /* ASan must report use-after-poison and exit */
    _exit(0);
}

static void child_fresh_memory_overflow(void)
{
    ax_arena_group_opts_t o = {.narenas = 1, .arena_bytes = 1u << 20};
    ax_arena_group_t *g = NULL;
    if (ax_arena_group_create(&o, &g))
        _exit(3);
    volatile char *p = ax_arena_alloc(ax_arena_group_get(g, 0), 64);
    p[64] = 1; /* the next, never handed out block is poisoned */
    _exit(0);
}

static void asan_catches_use_after_free_inside_the_arena(void **st)
{
    (void)st;
    char out[16384];
    int status = run_child(child_use_after_free, out, sizeof out);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!strstr(out, "use-after-poison"))
        fail_msg("ASan did not report use-after-poison: status %#x, %s", status, out);
    status = run_child(child_fresh_memory_overflow, out, sizeof out);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!strstr(out, "use-after-poison"))
        fail_msg("ASan did not report the overflow: status %#x, %s", status, out);
}
#endif

/* ---- NUMA placement and fault injection --------------------------------------------- */

static void prefaulted_arena_pages_are_on_the_requested_node(void **st)
{
    (void)st;
    int nodes[2] = {0, 0};
    ax_arena_group_opts_t o = {.narenas = 2, .arena_bytes = 4u << 20, .nodes = nodes,
                               .prefault = true};
    ax_arena_group_t *g = NULL;
    assert_int_equal(ax_arena_group_create(&o, &g), 0);
    for (uint32_t i = 0; i < 2; i++) {
        ax_arena_t *a = ax_arena_group_get(g, i);
        ax_arena_stats_t s;
        ax_arena_get_stats(a, &s);
        assert_int_equal(s.node, 0);
        /* pages never touched by the allocator: prefault alone placed them */
        const char *base = (const char *)a;
        for (uint64_t off = 0; off < s.reserved_bytes; off += s.reserved_bytes / 8) {
            int node = -1;
            assert_int_equal(get_mempolicy(&node, NULL, 0, (void *)(uintptr_t)(base + off),
                                           MPOL_F_NODE | MPOL_F_ADDR), 0);
            assert_int_equal(node, 0);
            int mode = -1;
            unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {0};
            assert_int_equal(get_mempolicy(&mode, mask, 1024, (void *)(uintptr_t)(base + off),
                                           MPOL_F_ADDR), 0);
            assert_int_equal(mode, MPOL_BIND);
            assert_int_equal(mask[0], 1);
        }
    }
    ax_arena_group_destroy(g);
}

static long vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void failing_mbind_makes_create_fail_and_leaves_nothing_mapped(void **st)
{
    (void)st;
    int nodes[3] = {0, 0, 0};
    ax_arena_group_opts_t o = {.narenas = 3, .arena_bytes = 8u << 20, .nodes = nodes};
    ax_arena_group_t *g = (ax_arena_group_t *)&o; /* must be reset to NULL */
    long before = vm_size_kib();
    mbind_calls = 0;
    mbind_fail_from = 2; /* arena 0 binds, arena 1 fails */
    int rc = ax_arena_group_create(&o, &g);
    mbind_fail_from = 0;
    assert_int_equal(rc, -ENOMEM);
    assert_null(g);
    assert_int_equal(mbind_calls, 2);
    assert_int_equal(vm_size_kib(), before); /* the reservation is gone */
    /* a node this machine does not have: the kernel says EINVAL */
    nodes[1] = 1000;
    assert_int_equal(ax_arena_group_create(&o, &g), -EINVAL);
    assert_null(g);
    assert_int_equal(vm_size_kib(), before);
    /* and it works again once mbind does */
    nodes[1] = 0;
    assert_int_equal(ax_arena_group_create(&o, &g), 0);
    ax_arena_group_destroy(g);
    assert_int_equal(vm_size_kib(), before);
}

static void bad_options_are_refused(void **st)
{
    (void)st;
    ax_arena_group_t *g = NULL;
    ax_arena_group_opts_t o = {.narenas = 0, .arena_bytes = 1u << 20};
    assert_int_equal(ax_arena_group_create(&o, &g), -EINVAL);
    o.narenas = 1;
    o.arena_bytes = 0;
    assert_int_equal(ax_arena_group_create(&o, &g), -EINVAL);
    assert_int_equal(ax_arena_group_create(NULL, &g), -EINVAL);
    ax_arena_group_destroy(NULL);
}

static void hugepage_request_succeeds_and_says_what_it_got(void **st)
{
    (void)st;
    ax_arena_group_opts_t o = {.narenas = 1, .arena_bytes = 4u << 20, .hugepages = true,
                               .prefault = true};
    ax_arena_group_t *g = NULL;
    assert_int_equal(ax_arena_group_create(&o, &g), 0);
    ax_arena_stats_t s;
    ax_arena_get_stats(ax_arena_group_get(g, 0), &s);
    assert_non_null(s.hugepages_note);
    print_message("hugepages=%d: %s\n", s.hugepages, s.hugepages_note);
    void *p = ax_arena_alloc(ax_arena_group_get(g, 0), 64);
    assert_non_null(p);
    ax_arena_free(ax_arena_group_get(g, 0), p);
    ax_arena_group_destroy(g);
}

/* ---- large allocations ------------------------------------------------------------------ */

static void large_blocks_come_from_the_requested_node(void **st)
{
    (void)st;
    uint64_t failed = ax_large_failed_allocs();
    size_t sizes[] = {100, 8192, 4u << 20};
    for (int k = 0; k < 3; k++) {
        char *p = ax_large_alloc(0, sizes[k]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        memset(p, 7, sizes[k]);
#if !defined(AXON_SANITIZE_address) && !defined(AXON_SANITIZE_thread)
        int mode = -1;
        unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {0};
        assert_int_equal(get_mempolicy(&mode, mask, 1024, p, MPOL_F_ADDR), 0);
        assert_int_equal(mode, MPOL_BIND);
        assert_int_equal(mask[0], 1);
#endif
        ax_large_free(p, sizes[k]);
    }
    void *q = ax_large_alloc(-1, 5000);
    assert_non_null(q);
    ax_large_free(q, 0);
    ax_large_free(NULL, 0);
    assert_int_equal(ax_large_failed_allocs(), failed);
    assert_null(ax_large_alloc(0, 0));
    assert_null(ax_large_alloc(AX_LARGE_MAX_NODES, 64));
    assert_int_equal(ax_large_failed_allocs(), failed + 2);
}

static void large_alloc_fails_cleanly_when_the_node_cannot_be_bound(void **st)
{
    (void)st;
#if !defined(AXON_SANITIZE_address) && !defined(AXON_SANITIZE_thread)
    uint64_t failed = ax_large_failed_allocs();
    mbind_calls = 0;
    mbind_fail_from = 1;
    void *p = ax_large_alloc(3, 1u << 20); /* first use of node 3: a fresh arena */
    mbind_fail_from = 0;
    assert_null(p);
    assert_true(mbind_calls >= 1);
    assert_int_equal(ax_large_failed_allocs(), failed + 1);
#else
    skip(); /* sanitizer builds use the libc fallback, which binds nothing */
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_size_maps_to_the_smallest_class_that_fits_with_bounded_waste),
        cmocka_unit_test(alloc_at_each_class_boundary_returns_an_aligned_block_of_that_class),
        cmocka_unit_test(freed_block_is_handed_out_again_before_fresh_memory),
        cmocka_unit_test(no_spare_block_gets_one_spare_batch_once),
        cmocka_unit_test(spare_batch_never_takes_the_last_run),
        cmocka_unit_test(exhausted_arena_returns_null_counts_it_and_never_borrows),
        cmocka_unit_test(stats_report_used_bytes_high_water_and_blocks_per_class),
        cmocka_unit_test(owner_of_any_block_is_its_arena_and_foreign_pointers_have_none),
        cmocka_unit_test(remote_frees_return_to_the_owner_in_batches_and_are_reused),
        cmocka_unit_test(returned_blocks_are_handed_out_before_older_free_blocks),
        cmocka_unit_test(full_return_ring_keeps_blocks_queued_until_the_owner_makes_room),
        cmocka_unit_test(exhausted_arena_takes_back_returned_blocks_before_failing),
        cmocka_unit_test(double_free_is_detected_in_debug_builds),
#ifdef AX__ARENA_ASAN
        cmocka_unit_test(asan_catches_use_after_free_inside_the_arena),
#endif
        cmocka_unit_test(prefaulted_arena_pages_are_on_the_requested_node),
        cmocka_unit_test(failing_mbind_makes_create_fail_and_leaves_nothing_mapped),
        cmocka_unit_test(bad_options_are_refused),
        cmocka_unit_test(hugepage_request_succeeds_and_says_what_it_got),
        cmocka_unit_test(large_blocks_come_from_the_requested_node),
        cmocka_unit_test(large_alloc_fails_cleanly_when_the_node_cannot_be_bound),
    };
    return cmocka_run_group_tests_name("alloc/arena", tests, NULL, NULL);
}
