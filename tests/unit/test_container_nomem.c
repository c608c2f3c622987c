/* tests/unit/test_container_nomem.c - the memory container when its index
 * cannot grow: the put that needs a rebuild fails with -ENOMEM and changes
 * nothing, every other key stays, and the same put succeeds once memory is
 * back.  Two paths: a one-put write section (the put is applied at
 * ax_cont_write_leave, which reports the failure) and a section of several
 * operations (the put itself reports it).
 *
 * Injection: the test links with -Wl,--wrap=aligned_alloc (the container's
 * nodes and index tables come from it).  On the test thread only, and only
 * while g_allow >= 0, the wrapper lets g_allow more calls through and fails
 * the rest: the put's node is allocated (g_allow = 1) and the index table
 * of a rebuild is refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "axon/axon.h"
#include "axon/config.h"
#include "axon/container.h"
#include "unit/container_test.h"

void *__real_aligned_alloc(size_t align, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);

static _Thread_local int g_allow = -1; /* < 0: no injection */
static _Thread_local unsigned g_refused;

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    if (g_allow == 0) {
        g_refused++;
        errno = ENOMEM;
        return NULL;
    }
    if (g_allow > 0)
        g_allow--;
    return __real_aligned_alloc(align, size);
}

/* One worker, this thread registered, and a memory container with a small
 * index (a rebuild within a few keys). */
typedef struct {
    ax_cont_registry_t *reg;
    ax_engine_t *eng;
    ax_cont_t *c;
} fixture_t;

static ax_cont_t *fx_open(fixture_t *f)
{
    f->eng = cont_test_engine(1, &f->reg);
    assert_int_equal(ax_cont_thread_register(), 0);
    ax_cont_config_t cc = AX_CONT_CONFIG_INIT;
    cc.buckets = 2;
    assert_int_equal(ax_cont_open(f->reg, "nomem", &cc, &f->c), 0);
    return f->c;
}

static void fx_close(fixture_t *f)
{
    ax_cont_close(f->c);
    ax_cont_thread_unregister();
    cont_test_stop(f->eng, f->reg);
}

static bool present(ax_cont_t *c, uint32_t k)
{
    ax_cont_rd_t rd;
    const void *v;
    size_t vl;
    assert_int_equal(ax_cont_read_enter(NULL, c, &rd), 0);
    int rc = ax_cont_get(&rd, &k, sizeof k, &v, &vl);
    if (rc == 0) {
        assert_int_equal(vl, sizeof k);
        assert_memory_equal(v, &k, sizeof k);
    } else {
        assert_int_equal(rc, -ENOENT);
    }
    ax_cont_read_leave(&rd);
    return rc == 0;
}

static uint64_t entries(ax_cont_t *c)
{
    ax_cont_stats_t st;
    assert_int_equal(ax_cont_stats(c, &st), 0);
    return st.entries;
}

static void check_keys(ax_cont_t *c, uint32_t below, uint32_t absent)
{
    for (uint32_t k = 0; k < below; k++)
        if (!present(c, k))
            fail_msg("key %u missing after a refused rebuild", k);
    if (present(c, absent))
        fail_msg("key %u present although its put failed", absent);
}

/* One-put sections: the put is kept and applied at leave. */
static void a_one_put_section_reports_a_failed_rebuild_at_leave(void **state)
{
    (void)state;
    fixture_t f;
    ax_cont_t *c = fx_open(&f);

    ax_cont_wr_t wr;
    uint32_t k = 0;
    int rc = 0;
    for (; k < 64; k++) {
        assert_int_equal(ax_cont_write_enter(NULL, c, &wr), 0);
        g_allow = 1; /* the node, not a table */
        assert_int_equal(ax_cont_put(&wr, &k, sizeof k, &k, sizeof k), 0);
        rc = ax_cont_write_leave(&wr, 0, NULL);
        g_allow = -1;
        if (rc != 0)
            break;
    }
    assert_true(k < 64); /* some put needed a rebuild */
    assert_int_equal(rc, -ENOMEM);
    assert_true(g_refused > 0);
    check_keys(c, k, k);
    assert_int_equal(entries(c), k);

    /* Memory is back: the same put goes in, and more after it. */
    for (uint32_t j = k; j < k + 200; j++) {
        assert_int_equal(ax_cont_write_enter(NULL, c, &wr), 0);
        assert_int_equal(ax_cont_put(&wr, &j, sizeof j, &j, sizeof j), 0);
        assert_int_equal(ax_cont_write_leave(&wr, 0, NULL), 0);
    }
    check_keys(c, k + 200, k + 200);
    assert_int_equal(entries(c), k + 200);

    fx_close(&f);
}

/* A section of several operations: the put that needs the rebuild fails
 * at once, the section goes on and its other puts stay. */
static void a_put_in_a_longer_section_reports_a_failed_rebuild(void **state)
{
    (void)state;
    fixture_t f;
    ax_cont_t *c = fx_open(&f);

    ax_cont_wr_t wr;
    uint32_t k = 0;
    int rc = 0;
    assert_int_equal(ax_cont_write_enter(NULL, c, &wr), 0);
    const void *v;
    size_t vl;
    /* A wget first: the section is no longer a one-put section. */
    assert_int_equal(ax_cont_wget(&wr, &k, sizeof k, &v, &vl), -ENOENT);
    for (; k < 64; k++) {
        g_allow = 1;
        rc = ax_cont_put(&wr, &k, sizeof k, &k, sizeof k);
        g_allow = -1;
        if (rc != 0)
            break;
    }
    assert_true(k < 64);
    assert_int_equal(rc, -ENOMEM);
    assert_int_equal(ax_cont_put(&wr, &k, sizeof k, &k, sizeof k), 0); /* memory back */
    assert_int_equal(ax_cont_write_leave(&wr, 0, NULL), 0);
    check_keys(c, k + 1, k + 1);
    assert_int_equal(entries(c), k + 1);

    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_one_put_section_reports_a_failed_rebuild_at_leave),
        cmocka_unit_test(a_put_in_a_longer_section_reports_a_failed_rebuild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
