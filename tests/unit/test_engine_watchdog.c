/* tests/unit/test_engine_watchdog.c - the watchdog (a behaviour that spins
 * 300 ms is reported while it runs: hook, stderr, counter; abort mode; off)
 * and the fault-signal report (a child that segfaults or overflows its
 * stack in a behaviour dies of the signal after naming it on stderr).
 *
 * Children are forked before they create their engine, so the parent stays
 * single-threaded at fork time.  Their stderr goes through a pipe the
 * parent reads.  One worker: the tests run under `taskset -c 0`.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "axon/axon.h"
#include "axon/watchdog.h"

#define ENGINE_TEST_NAME "test_engine_watchdog"
#define ENGINE_TEST_HANG "the watchdog or a child process hangs"
#include "unit/engine_test.h"

enum { T_SPIN = 7, T_CRASH = 9, T_RECURSE = 11, T_QUICK = 13 };

static _Atomic uint64_t g_done;

/* Spins 300 ms, three times the default watchdog period. */
static void spin_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    uint64_t ms = m->len ? m->payload.u64[0] : 300;
    uint64_t end = now_ns() + ms * 1000000ull;
    while (now_ns() < end)
        ;
    atomic_fetch_add(&g_done, 1);
}

static void spin_init(ax_ctx_t *ctx, void *state, const void *arg, size_t len)
{
    (void)ctx;
    (void)state;
    (void)arg;
    (void)len;
    uint64_t end = now_ns() + 300000000ull;
    while (now_ns() < end)
        ;
    atomic_fetch_add(&g_done, 1);
}

static void quick_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_fetch_add(&g_done, 1);
}

static void crash_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    int *volatile p = (int *)(uintptr_t)m->payload.u64[0]; /* unmapped (not NULL: UBSan) */
    *p = 42;
}

static volatile int g_sink;
static volatile int g_limit = 1 << 30; /* never reached: the stack ends first */
static int recurse(int n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    g_sink = pad[0];
    if (n >= g_limit)
        return 0;
    return recurse(n + 1) + pad[0];
}

static void overflow_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    g_sink = recurse(0);
}

/* Posts POSTS layer reports in one message (ax_watchdog_report), far more
 * than a box holds between two scans; counts what each call answered. */
#define POSTS 1000u
static _Atomic uint64_t g_posted, g_refused, g_other;
static void post_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    (void)m;
    for (uint32_t i = 0; i < POSTS; i++) {
        char what[64];
        snprintf(what, sizeof what, "layer report %u", i);
        int rc = ax_watchdog_report(ctx, (const void *)(uintptr_t)post_behaviour, what,
                                    1000000ull * (i + 1));
        atomic_fetch_add(rc == 0 ? &g_posted : rc == -EAGAIN ? &g_refused : &g_other, 1);
    }
    if (ax_watchdog_report(ctx, NULL, NULL, 0) != -EINVAL)
        atomic_fetch_add(&g_other, 1);
    atomic_fetch_add(&g_done, 1);
}

/* With the watchdog off, a layer is told to keep its own account. */
static void post_off_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    (void)m;
    if (ax_watchdog_report(ctx, NULL, "nobody listens", 1) == -ENOTSUP)
        atomic_fetch_add(&g_refused, 1);
    atomic_fetch_add(&g_done, 1);
}

/* ---- hook ---------------------------------------------------------------------- */

typedef struct seen {
    _Atomic uint32_t calls;
    uint32_t worker, type;
    ax_ref_t actor, from;
    uint64_t running_ns, done_at_report;
    const void *behaviour;
    char symbol[256], text[768], what[256];
} seen_t;

static void hook(void *user, const ax_watchdog_report_t *r)
{
    seen_t *s = user;
    if (atomic_load(&s->calls) == 0) {
        s->worker = r->worker;
        s->type = r->type;
        s->actor = r->actor;
        s->from = r->from;
        s->running_ns = r->running_ns;
        s->done_at_report = atomic_load(&g_done);
        s->behaviour = r->behaviour;
        snprintf(s->symbol, sizeof s->symbol, "%s", r->symbol);
        snprintf(s->text, sizeof s->text, "%s", r->text);
        snprintf(s->what, sizeof s->what, "%s", r->what ? r->what : "(null)");
    }
    atomic_fetch_add(&s->calls, 1); /* seq_cst: the fields above are read after */
}

/* Run fn-messages on a 1-worker engine; returns the engine's stats. */
static void run_one(const ax_config_t *cfg, ax_behaviour_fn fn, uint32_t type, uint64_t arg,
                    bool has_arg, seen_t *seen, ax_ref_t *ref, ax_worker_stats_t *st)
{
    ax_engine_t *eng;
    atomic_store(&g_done, 0);
    assert_int_equal(ax_engine_create(cfg, &eng), 0);
    if (seen)
        ax_engine_set_watchdog_hook(eng, hook, seen);
    assert_int_equal(ax_engine_spawn(eng, fn, 0, NULL, ref), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    assert_int_equal(ax_engine_send(eng, *ref, type, &arg, has_arg ? sizeof arg : 0), 0);
    assert_true(wait_at_least(&g_done, 1));
    ax_engine_stop(eng);
    assert_int_equal(ax_engine_wait(eng), 0);
    ax_engine_stats(eng, st);
    ax_engine_destroy(eng);
}

/* Redirect our stderr to a file while fn runs; returns what was written. */
static char g_err[8192];
static void capture_begin(int *saved, FILE **tmp)
{
    fflush(stderr);
    *tmp = tmpfile();
    assert_non_null(*tmp);
    *saved = dup(2);
    assert_true(*saved >= 0);
    assert_true(dup2(fileno(*tmp), 2) >= 0);
}

static void capture_end(int saved, FILE *tmp)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(g_err, 1, sizeof g_err - 1, tmp);
    g_err[n] = '\0';
    fclose(tmp);
}

static void one_worker(ax_config_t *cfg)
{
    ax_config_init(cfg);
    cfg->workers = 1;
}

static void spinning_behaviour_is_reported_while_it_runs(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg); /* watchdog_ms 0: the default, 100 ms */
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    ax_ref_t ref;
    ax_worker_stats_t st;
    int saved;
    FILE *tmp;
    capture_begin(&saved, &tmp);
    run_one(&cfg, spin_behaviour, T_SPIN, 0, false, &seen, &ref, &st);
    capture_end(saved, tmp);
    fprintf(stderr, "captured: %s", g_err);

    assert_int_equal(atomic_load(&seen.calls), 1); /* once per overrun, not every tick */
    assert_int_equal(st.watchdog_overruns, 1);
    assert_int_equal(seen.worker, 0);
    assert_int_equal(seen.actor, ref);
    assert_int_equal(seen.type, T_SPIN);
    assert_int_equal(seen.from, AX_REF_NONE);
    assert_true(seen.behaviour == (const void *)(uintptr_t)spin_behaviour);
    assert_non_null(strstr(seen.symbol, "spin_behaviour"));
    assert_true(seen.running_ns >= 100000000ull);
    assert_int_equal(seen.done_at_report, 0); /* reported while it still ran */
    assert_non_null(strstr(g_err, "axon: watchdog: worker 0: actor "));
    assert_non_null(strstr(g_err, "spin_behaviour"));
    assert_non_null(strstr(g_err, "on message type 7 from outside the engine"));
    assert_non_null(strstr(g_err, seen.text));
}

static void short_behaviours_are_not_reported(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg);
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    ax_ref_t ref;
    ax_worker_stats_t st;
    /* 30 ms: well under the 100 ms threshold even on a loaded machine. */
    run_one(&cfg, spin_behaviour, T_SPIN, 30, true, &seen, &ref, &st);
    assert_int_equal(atomic_load(&seen.calls), 0);
    assert_int_equal(st.watchdog_overruns, 0);
}

static void watchdog_off_reports_nothing(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg);
    ax_config_error_t err;
    /* The file's 0 means off. */
    assert_int_equal(ax_config_load_string(&cfg, "scheduler.watchdog_ms = 0\n", 26, "t", &err), 0);
    assert_int_equal(cfg.watchdog_ms, AX_WATCHDOG_OFF);
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    ax_ref_t ref;
    ax_worker_stats_t st;
    run_one(&cfg, spin_behaviour, T_SPIN, 0, false, &seen, &ref, &st);
    assert_int_equal(atomic_load(&seen.calls), 0);
    assert_int_equal(st.watchdog_overruns, 0);
}

/* Work the worker does between two behaviours of one batch is not a
 * behaviour: a dead letter whose hook takes 300 ms, right after a message
 * dispatched in the same batch of the local FIFO, is not reported.  (The
 * drain loops clear the fields the watchdog samples once per batch, and
 * before any slow path: without that clear this reports the actor that
 * ran before.) */
static void dl_slow_hook(void *user, const ax_msg_t *m)
{
    (void)user;
    (void)m;
    uint64_t end = now_ns() + 300000000ull;
    while (now_ns() < end)
        ;
    atomic_fetch_add(&g_done, 1);
}

static void quick_then_dead(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    if (m->type != T_SPIN) { /* T_QUICK, from itself */
        atomic_fetch_add(&g_done, 1);
        return;
    }
    /* Both land in the local FIFO, in order, drained in one batch. */
    ax_ref_t stale = ax_self(ctx) ^ ((ax_ref_t)1 << 24); /* same slot, another generation */
    if (ax_send(ctx, ax_self(ctx), T_QUICK, NULL, 0) || ax_send(ctx, stale, T_QUICK, NULL, 0))
        atomic_fetch_add(&g_done, 100); /* checked by the test: a send failed */
}

static void slow_path_after_a_behaviour_is_not_reported(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg); /* watchdog 100 ms */
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    ax_engine_t *eng;
    ax_ref_t ref;
    atomic_store(&g_done, 0);
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    ax_engine_set_watchdog_hook(eng, hook, &seen);
    ax_engine_set_dead_letter_hook(eng, dl_slow_hook, NULL);
    assert_int_equal(ax_engine_spawn(eng, quick_then_dead, 0, NULL, &ref), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    assert_int_equal(ax_engine_send(eng, ref, T_SPIN, NULL, 0), 0);
    assert_true(wait_at_least(&g_done, 2)); /* the quick message and the dead letter */
    assert_true(atomic_load(&g_done) < 100);
    ax_engine_stop(eng);
    assert_int_equal(ax_engine_wait(eng), 0);
    ax_worker_stats_t st;
    ax_engine_stats(eng, &st);
    ax_engine_destroy(eng);
    if (atomic_load(&seen.calls))
        fail_msg("the watchdog reported %s", seen.text);
    assert_int_equal(st.watchdog_overruns, 0);
    assert_int_equal(st.dead_letters, 1);
}

/* A layer's reports reach every outlet once each, in order, at the
 * watchdog's scans; a full box refuses at once; abort mode does not abort
 * for them (the work they report is over). */
static void layer_reports_are_reported_once_each_and_never_abort(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg);
    cfg.watchdog_ms = 10000; /* scans every 250 ms: the loop fills the box */
    cfg.watchdog_action = AX_WATCHDOG_ABORT;
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    atomic_store(&g_posted, 0);
    atomic_store(&g_refused, 0);
    atomic_store(&g_other, 0);
    ax_ref_t ref;
    ax_worker_stats_t st;
    int saved;
    FILE *tmp;
    capture_begin(&saved, &tmp);
    run_one(&cfg, post_behaviour, T_QUICK, 0, false, &seen, &ref, &st); /* waits for the join */
    capture_end(saved, tmp);
    uint64_t posted = atomic_load(&g_posted);
    assert_int_equal(atomic_load(&g_other), 0);
    assert_int_equal(posted + atomic_load(&g_refused), POSTS);
    assert_true(posted >= AX_WATCHDOG_POSTS);
    assert_true(atomic_load(&g_refused) > 0);
    /* Every accepted report came out once, also those left at stop. */
    assert_int_equal(atomic_load(&seen.calls), posted);
    assert_int_equal(st.watchdog_overruns, posted);
    assert_string_equal(seen.what, "layer report 0");
    assert_int_equal(seen.type, AX_WATCHDOG_NO_MSG);
    assert_int_equal(seen.actor, ref);
    assert_int_equal(seen.running_ns, 1000000);
    assert_true(seen.behaviour == (const void *)(uintptr_t)post_behaviour);
    assert_non_null(strstr(seen.symbol, "post_behaviour"));
    char want[128];
    snprintf(want, sizeof want, "axon: watchdog: worker 0: actor 0x%016llx: layer report 0",
             (unsigned long long)ref);
    assert_non_null(strstr(g_err, want));
    assert_non_null(strstr(g_err, ": layer report 0 (ran post_behaviour at 0x"));
    assert_non_null(strstr(g_err, " for 1000 us)"));
}

static void layer_reports_without_a_watchdog_are_refused(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg);
    cfg.watchdog_ms = AX_WATCHDOG_OFF;
    atomic_store(&g_refused, 0);
    ax_ref_t ref;
    ax_worker_stats_t st;
    run_one(&cfg, post_off_behaviour, T_QUICK, 0, false, NULL, &ref, &st);
    assert_int_equal(atomic_load(&g_refused), 1);
    assert_int_equal(st.watchdog_overruns, 0);
}

/* An init that spins is reported as init or fini, naming the behaviour. */
static void spinning_init_is_reported_as_init_or_fini(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg);
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    ax_engine_t *eng;
    ax_ref_t ref;
    int saved;
    FILE *tmp;
    atomic_store(&g_done, 0);
    capture_begin(&saved, &tmp);
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    ax_engine_set_watchdog_hook(eng, hook, &seen);
    ax_spawn_opts_t o = {.size = sizeof o, .init = spin_init};
    assert_int_equal(ax_engine_spawn(eng, quick_behaviour, 0, &o, &ref), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    assert_true(wait_at_least(&g_done, 1));
    ax_engine_destroy(eng);
    capture_end(saved, tmp);
    fprintf(stderr, "captured: %s", g_err);
    assert_int_equal(atomic_load(&seen.calls), 1);
    assert_int_equal(seen.type, AX_WATCHDOG_NO_MSG);
    assert_int_equal(seen.actor, ref);
    assert_non_null(strstr(seen.symbol, "quick_behaviour"));
    assert_non_null(strstr(g_err, "has run init or fini (behaviour quick_behaviour at 0x"));
    assert_non_null(strstr(g_err, " ms, and is still running"));
}

/* ---- children -------------------------------------------------------------------- */

/* Fork a child that runs fn on a fresh engine with cfg; collect its stderr
 * and its wait status. */
static void run_child(const ax_config_t *cfg, ax_behaviour_fn fn, uint32_t type, uint64_t arg,
                      int *status, ax_ref_t *ref_out)
{
    int pfd[2], rpfd[2];
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(pipe(rpfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore); /* no core files from the tests */
        /* cmocka catches SIGSEGV & co. to fail a test and go on; a program
         * normally has the default action, which the engine chains to. */
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(rpfd[0]);
        ax_engine_t *eng;
        ax_ref_t ref;
        if (ax_engine_create(cfg, &eng) || ax_engine_spawn(eng, fn, 0, NULL, &ref))
            _exit(90);
        if (write(rpfd[1], &ref, sizeof ref) != (ssize_t)sizeof ref)
            _exit(91);
        if (ax_engine_start(eng) || ax_engine_send(eng, ref, type, &arg, sizeof arg))
            _exit(92);
        sleep(20); /* the behaviour ends us long before */
        _exit(93);
    }
    close(pfd[1]);
    close(rpfd[1]);
    size_t n = 0;
    ssize_t k;
    while (n < sizeof g_err - 1 && (k = read(pfd[0], g_err + n, sizeof g_err - 1 - n)) > 0)
        n += (size_t)k;
    g_err[n] = '\0';
    close(pfd[0]);
    assert_int_equal(read(rpfd[0], ref_out, sizeof *ref_out), (ssize_t)sizeof *ref_out);
    close(rpfd[0]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    fprintf(stderr, "child stderr: %s", g_err);
}

/* The ref as the engine prints it. */
static void ref_text(ax_ref_t r, char *buf, size_t len)
{
    snprintf(buf, len, "0x%016llx", (unsigned long long)r);
}

#if defined(AXON_SANITIZE_address) || defined(AXON_SANITIZE_thread)
/* A sanitizer's handler was installed before ours and is chained to: it
 * prints its own report and exits with a failure status instead of the
 * signal.  Ours must still have come first. */
#define DIED_OF(status, sig) (WIFSIGNALED(status) ? WTERMSIG(status) == (sig) : \
                              WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) < 90)
#else
#define DIED_OF(status, sig) (WIFSIGNALED(status) && WTERMSIG(status) == (sig))
#endif

static void abort_mode_aborts_with_the_report(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg);
    cfg.watchdog_action = AX_WATCHDOG_ABORT;
    int status;
    ax_ref_t ref;
    char rt[32];
    run_child(&cfg, spin_behaviour, T_SPIN, 5000, &status, &ref);
    ref_text(ref, rt, sizeof rt);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(g_err, "axon: watchdog: worker 0: actor "));
    assert_non_null(strstr(g_err, rt));
    assert_non_null(strstr(g_err, "spin_behaviour"));
    assert_non_null(strstr(g_err, "aborting the process (scheduler.watchdog_action = abort)"));
}

static void segfault_in_behaviour_is_reported_then_kills(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg);
    cfg.watchdog_ms = AX_WATCHDOG_OFF;
    int status;
    ax_ref_t ref;
    char rt[32];
    run_child(&cfg, crash_behaviour, T_CRASH, 16, &status, &ref);
    ref_text(ref, rt, sizeof rt);
    assert_true(DIED_OF(status, SIGSEGV));
    assert_non_null(strstr(g_err, "axon: fatal signal SIGSEGV (fault address 0x10) on worker 0 in actor "));
    assert_non_null(strstr(g_err, rt));
    assert_non_null(strstr(g_err, "behaviour crash_behaviour at 0x"));
    assert_non_null(strstr(g_err, "message type 9 from outside the engine"));
}

static void stack_overflow_in_behaviour_is_reported(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg);
    cfg.watchdog_ms = AX_WATCHDOG_OFF;
    int status;
    ax_ref_t ref;
    run_child(&cfg, overflow_behaviour, T_RECURSE, 0, &status, &ref);
    assert_true(DIED_OF(status, SIGSEGV));
    assert_non_null(strstr(g_err, "axon: fatal signal SIGSEGV"));
    assert_non_null(strstr(g_err, "overflow_behaviour"));
    assert_non_null(strstr(g_err, "message type 11"));
}

static void fault_report_off_leaves_handlers_alone(void **state)
{
    (void)state;
    ax_config_t cfg;
    one_worker(&cfg);
    cfg.watchdog_ms = AX_WATCHDOG_OFF;
    cfg.fault_report = AX_FAULT_REPORT_OFF;
    int status;
    ax_ref_t ref;
    run_child(&cfg, crash_behaviour, T_CRASH, 16, &status, &ref);
    assert_true(DIED_OF(status, SIGSEGV));
    assert_null(strstr(g_err, "axon: fatal signal"));
}

/* After the last engine is gone, the process's old handlers are back. */
static void handlers_are_restored_after_destroy(void **state)
{
    (void)state;
    struct sigaction before, after;
    assert_int_equal(sigaction(SIGSEGV, NULL, &before), 0);
    ax_config_t cfg;
    one_worker(&cfg);
    ax_engine_t *eng;
    ax_ref_t ref;
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    assert_int_equal(ax_engine_spawn(eng, quick_behaviour, 0, NULL, &ref), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    struct sigaction during;
    assert_int_equal(sigaction(SIGSEGV, NULL, &during), 0);
    assert_true(during.sa_flags & SA_SIGINFO);
    assert_true((void *)(uintptr_t)during.sa_sigaction != (void *)(uintptr_t)before.sa_sigaction);
    ax_engine_destroy(eng);
    assert_int_equal(sigaction(SIGSEGV, NULL, &after), 0);
    assert_true((void *)(uintptr_t)after.sa_handler == (void *)(uintptr_t)before.sa_handler);
}

int main(void)
{
    signal(SIGALRM, watchdog);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(spinning_behaviour_is_reported_while_it_runs, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(short_behaviours_are_not_reported, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(watchdog_off_reports_nothing, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(slow_path_after_a_behaviour_is_not_reported, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(spinning_init_is_reported_as_init_or_fini, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(layer_reports_are_reported_once_each_and_never_abort, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(layer_reports_without_a_watchdog_are_refused, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(abort_mode_aborts_with_the_report, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(segfault_in_behaviour_is_reported_then_kills, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(stack_overflow_in_behaviour_is_reported, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(fault_report_off_leaves_handlers_alone, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(handlers_are_restored_after_destroy, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("engine/watchdog", tests, NULL, NULL);
}
