/* tests/unit/test_engine_start.c - a start that fails half way leaves
 * nothing running: no thread, no fd, a readable reason, and the engine can
 * still be destroyed.  Failures are injected at link time (-Wl,--wrap):
 * pinning (ax_topo_bind_thread) and thread creation (pthread_create).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "axon/axon.h"
#include "test_cpus.h"

/* ---- fault injection ----------------------------------------------------- */

static _Atomic int bind_fail_pu = -1; /* PU whose pinning fails, -1: none */
static _Atomic int create_fail_at = -1; /* pthread_create call that fails */
static _Atomic int create_calls;

int __real_ax_topo_bind_thread(const void *t, uint32_t pu, char *err, size_t errlen);
int __wrap_ax_topo_bind_thread(const void *t, uint32_t pu, char *err, size_t errlen);
int __wrap_ax_topo_bind_thread(const void *t, uint32_t pu, char *err, size_t errlen)
{
    if ((int)pu == atomic_load(&bind_fail_pu)) {
        snprintf(err, errlen, "injected: PU %u refused", pu);
        return -EPERM;
    }
    return __real_ax_topo_bind_thread(t, pu, err, errlen);
}

int __real_pthread_create(pthread_t *th, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    if (atomic_fetch_add(&create_calls, 1) == atomic_load(&create_fail_at))
        return EAGAIN;
    return __real_pthread_create(th, a, fn, arg);
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Two workers: pinned when the process has two cores, else unpinned
 * (thread creation fails the same way either way). */
static ax_engine_t *two_workers(void)
{
    ax_config_t cfg;
    ax_engine_t *eng = NULL;
    ax_config_init(&cfg);
    bool pinned = test_cfg_workers(&cfg, 2);
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    assert_int_equal(ax_engine_plan(eng)->pinned, pinned);
    return eng;
}

/* As many pinned workers as the process has cores, two at most: the last
 * one's pinning fails, after the others' succeeded when there are two. */
static void failed_pinning_starts_nothing_and_says_which_worker(void **state)
{
    (void)state;
    int threads = count_dir("/proc/self/task"), fds = count_dir("/proc/self/fd");
    ax_config_t cfg;
    ax_engine_t *eng = NULL;
    ax_config_init(&cfg);
    uint32_t n = test_pinnable_workers() >= 2 ? 2 : 1;
    assert_true(test_cfg_workers(&cfg, n));
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    assert_true(ax_engine_plan(eng)->pinned);
    atomic_store(&bind_fail_pu, (int)ax_engine_plan(eng)->workers[n - 1].pu);
    int rc = ax_engine_start(eng);
    atomic_store(&bind_fail_pu, -1);
    assert_int_equal(rc, -EPERM);
    char want[32];
    snprintf(want, sizeof want, "pinning worker %u", n - 1);
    assert_non_null(strstr(ax_engine_last_error(), want));
    assert_non_null(strstr(ax_engine_last_error(), "injected"));
    assert_int_equal(count_dir("/proc/self/task"), threads); /* every worker thread joined */
    assert_int_equal(ax_engine_send(eng, AX_REF_NONE, 1, NULL, 0), -EINVAL);
    ax_engine_destroy(eng);
    assert_int_equal(count_dir("/proc/self/fd"), fds); /* io rings closed by their workers */
}

static void failed_thread_creation_joins_the_threads_already_made(void **state)
{
    (void)state;
    int threads = count_dir("/proc/self/task"), fds = count_dir("/proc/self/fd");
    ax_engine_t *eng = two_workers();
    atomic_store(&create_calls, 0);
    atomic_store(&create_fail_at, 1); /* worker 0 starts, worker 1 cannot */
    int rc = ax_engine_start(eng);
    atomic_store(&create_fail_at, -1);
    assert_int_equal(rc, -EAGAIN);
    assert_non_null(strstr(ax_engine_last_error(), "worker 1"));
    assert_int_equal(count_dir("/proc/self/task"), threads);
    ax_engine_destroy(eng);
    assert_int_equal(count_dir("/proc/self/fd"), fds);
}

static void an_engine_whose_start_failed_can_be_started_again(void **state)
{
    (void)state;
    ax_engine_t *eng = two_workers();
    atomic_store(&create_calls, 0);
    atomic_store(&create_fail_at, 0);
    assert_int_equal(ax_engine_start(eng), -EAGAIN);
    atomic_store(&create_fail_at, -1);
    assert_int_equal(ax_engine_start(eng), 0);
    ax_engine_stop(eng);
    assert_int_equal(ax_engine_wait(eng), 0);
    ax_engine_destroy(eng);
}

static void *nothing(void *arg) { return arg; }

/* Sanitizer runtimes start helper threads of their own on the first thread
 * creation; make that happen before any test counts threads. */
static int warm_up_threads(void **state)
{
    (void)state;
    pthread_t t;
    if (__real_pthread_create(&t, NULL, nothing, NULL))
        return -1;
    return pthread_join(t, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(failed_pinning_starts_nothing_and_says_which_worker),
        cmocka_unit_test(failed_thread_creation_joins_the_threads_already_made),
        cmocka_unit_test(an_engine_whose_start_failed_can_be_started_again),
    };
    return cmocka_run_group_tests_name("engine/start", tests, warm_up_threads, NULL);
}
