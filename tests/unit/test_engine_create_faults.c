/* tests/unit/test_engine_create_faults.c - ax_engine_create fails cleanly at
 * every one of its allocations and mappings.
 *
 * SQLite-style failure injection, at link time (-Wl,--wrap, see
 * tests/engine.cmake), so the library carries no hook at all: while armed,
 * every malloc/calloc/realloc/aligned_alloc/mmap/mprotect/mbind that axon's
 * own code makes is counted, and call number `fail_at` fails.  The walk
 * runs create with fail_at = 1, 2, ... until a create succeeds; each failed
 * create must return a negative errno, leave *out NULL, name a reason, and
 * give back every byte and every mapping it took (tracked here, so the
 * plain build checks leaks too; LeakSanitizer checks again in the ASan
 * build).  Calls made inside shared libraries (hwloc, liburing, libc) are
 * not wrapped: only axon's own failure handling is under test.
 *
 * The second part runs create in children under a real address-space limit
 * (setrlimit(RLIMIT_AS), what `ulimit -v` sets), stepping the limit through
 * the range where create's mappings stop fitting.  Skipped under
 * sanitizers, whose shadow memory needs terabytes of address space.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "axon/axon.h"

/* ---- injection and accounting -------------------------------------------- */

#include "alloc_inject.h"

static long maps_live;       /* mappings made while armed minus unmapped */
static size_t map_len[64];
static void *map_addr[64];

void *__real_aligned_alloc(size_t a, size_t n);
void *__real_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off);
int __real_munmap(void *a, size_t n);
int __real_mprotect(void *a, size_t n, int prot);
long __real_mbind(void *a, unsigned long n, int mode, const unsigned long *mask,
                  unsigned long maxnode, unsigned flags);

void *__wrap_aligned_alloc(size_t a, size_t n);
void *__wrap_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *a, size_t n);
int __wrap_mprotect(void *a, size_t n, int prot);
long __wrap_mbind(void *a, unsigned long n, int mode, const unsigned long *mask,
                  unsigned long maxnode, unsigned flags);

void *__wrap_aligned_alloc(size_t a, size_t n)
{
    if (inject()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_aligned_alloc(a, n);
    track(p);
    return p;
}

void *__wrap_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    if (inject()) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = __real_mmap(a, n, prot, flags, fd, off);
    if (p != MAP_FAILED && atomic_load(&armed) && maps_live < 64) {
        map_addr[maps_live] = p;
        map_len[maps_live++] = n;
    }
    return p;
}

int __wrap_munmap(void *a, size_t n)
{
    for (long i = 0; i < maps_live; i++)
        if (map_addr[i] == a && map_len[i] == n) {
            map_addr[i] = map_addr[--maps_live];
            map_len[i] = map_len[maps_live];
            break;
        }
    return __real_munmap(a, n);
}

int __wrap_mprotect(void *a, size_t n, int prot)
{
    if (inject()) {
        errno = ENOMEM;
        return -1;
    }
    return __real_mprotect(a, n, prot);
}

long __wrap_mbind(void *a, unsigned long n, int mode, const unsigned long *mask,
                  unsigned long maxnode, unsigned flags)
{
    if (inject()) {
        errno = ENOMEM;
        return -1;
    }
    return __real_mbind(a, n, mode, mask, maxnode, flags);
}

static void arm(long at)
{
    nlive = 0;
    maps_live = 0;
    atomic_store(&calls, 0);
    atomic_store(&fail_at, at);
    atomic_store(&armed, 1);
}

static void disarm(void)
{
    atomic_store(&armed, 0);
    atomic_store(&fail_at, -1);
}

/* ---- the walk ---------------------------------------------------------------- */

/* Runs create with failure k = 1, 2, ... until it succeeds; returns how many
 * failure points there were. */
static long walk(const ax_config_t *cfg, const char *what)
{
    for (long k = 1; k < 100000; k++) {
        ax_engine_t *eng = (ax_engine_t *)(uintptr_t)1;
        arm(k);
        int rc = ax_engine_create(cfg, &eng);
        long made = atomic_load(&calls);
        disarm();
        if (rc == 0) {
            /* The call k was never reached: every point has been failed. */
            assert_non_null(eng);
            assert_true(made < k);
            ax_engine_destroy(eng);
            printf("%s: create survived a failure at each of its %ld allocations and "
                   "mappings\n", what, k - 1);
            return k - 1;
        }
        if (rc >= 0 || eng != NULL || !ax_engine_last_error()[0] || nlive != 0 ||
            maps_live != 0) {
            fprintf(stderr, "%s: failure injected at call %ld of %ld: rc %d, out %p, reason "
                    "'%s', %zu blocks and %ld mappings left behind\n",
                    what, k, made, rc, (void *)eng, ax_engine_last_error(), nlive, maps_live);
            fail();
        }
    }
    fail_msg("%s: create never succeeded", what);
    return -1;
}

static void every_failure_point_of_create_is_clean_on_a_synthetic_topology(void **state)
{
    (void)state;
    ax_config_t cfg;
    ax_config_init(&cfg);
    /* unpinned, so it runs on one CPU; three workers: rings between all */
    snprintf(cfg.topology_synthetic, sizeof cfg.topology_synthetic, "pack:1 numa:1 core:3 pu:1");
    cfg.arena_bytes = 1u << 20;
    cfg.max_actors = 1024;
    assert_true(walk(&cfg, "synthetic, 3 workers") > 10);
}

static void every_failure_point_of_create_is_clean_on_this_machine(void **state)
{
    (void)state;
    ax_config_t cfg;
    ax_config_init(&cfg);
    cfg.workers = 1; /* pinned when possible: binds memory */
    cfg.arena_bytes = 1u << 20;
    cfg.max_actors = 1024;
    assert_true(walk(&cfg, "this machine, 1 worker") > 10);
}

/* ---- a real address-space limit ---------------------------------------------- */

#if !defined(AXON_SANITIZE_address) && !defined(AXON_SANITIZE_thread)
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb << 10;
}
#endif

static void create_under_ulimit_v_fails_cleanly_or_succeeds(void **state)
{
    (void)state;
#if defined(AXON_SANITIZE_address) || defined(AXON_SANITIZE_thread)
    skip(); /* sanitizer shadow memory does not fit under an address-space limit */
#else
    int ok = 0, failed = 0;
    /* The default config: 64 MiB arenas, a 16 MiB actor table per worker. */
    for (size_t mib = 0; mib <= 640; mib += 8) {
        fflush(stdout);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* a crash must kill the child, not run cmocka's handler in it */
            static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
            for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
                signal(sigs[i], SIG_DFL);
            struct rlimit rl = {vm_size() + (mib << 20), RLIM_INFINITY};
            rl.rlim_max = rl.rlim_cur;
            if (setrlimit(RLIMIT_AS, &rl) != 0)
                _exit(10);
            ax_config_t cfg;
            ax_config_init(&cfg);
            cfg.workers = 1;
            ax_engine_t *eng = NULL;
            int rc = ax_engine_create(&cfg, &eng);
            if (rc == 0) {
                ax_engine_destroy(eng);
                _exit(0);
            }
            _exit(rc < 0 && !eng && ax_engine_last_error()[0] ? 1 : 20);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) > 1)
            fail_msg("ulimit -v <VmSize + %zu MiB>: create %s %d", mib,
                     WIFSIGNALED(st) ? "crashed with signal" : "exited with status",
                     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        if (WEXITSTATUS(st) == 0)
            ok++;
        else
            failed++;
    }
    printf("ulimit -v: create failed cleanly %d times and succeeded %d times\n", failed, ok);
    assert_true(failed > 0); /* the range covers the limits where create must fail */
    assert_true(ok > 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_failure_point_of_create_is_clean_on_a_synthetic_topology),
        cmocka_unit_test(every_failure_point_of_create_is_clean_on_this_machine),
        cmocka_unit_test(create_under_ulimit_v_fails_cleanly_or_succeeds),
    };
    return cmocka_run_group_tests_name("engine/create_faults", tests, NULL, NULL);
}
