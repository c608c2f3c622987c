/* tests/unit/alloc_inject.h - SQLite-style allocation failure injection at
 * link time, shared by the *_faults tests.
 *
 * Link the test with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * --wrap=free (see tests/engine.cmake, tests/topology.cmake).  While
 * `armed`, every malloc/calloc/realloc that axon's own (statically linked)
 * code makes is counted and call number `fail_at` fails with ENOMEM; blocks
 * allocated while armed are tracked in live[] until freed, so a test checks
 * nlive == 0 after a failed call (leaks, in the plain build too).  Calls made
 * inside shared libraries are not wrapped.  Include once, in one test file;
 * the test defines its own arm()/disarm() (it may track more than blocks).
 */
#ifndef AXON_TESTS_ALLOC_INJECT_H
#define AXON_TESTS_ALLOC_INJECT_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

static _Atomic int armed;  /* count and track only while the call under test runs */
static _Atomic long calls; /* wrapped calls since arming */
static _Atomic long fail_at = -1;

#define MAX_LIVE 65536
static void *live[MAX_LIVE]; /* blocks allocated while armed, not yet freed */
static size_t nlive;

static bool inject(void)
{
    if (!atomic_load(&armed))
        return false;
    return atomic_fetch_add(&calls, 1) + 1 == atomic_load(&fail_at);
}

static void track(void *p)
{
    if (p && atomic_load(&armed) && nlive < MAX_LIVE)
        live[nlive++] = p;
}

static void untrack(void *p)
{
    for (size_t i = nlive; i-- > 0;)
        if (live[i] == p) {
            live[i] = live[--nlive];
            return;
        }
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t s);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

void *__wrap_malloc(size_t n)
{
    if (inject()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_malloc(n);
    track(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t s)
{
    if (inject()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_calloc(n, s);
    track(p);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (inject()) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = __real_realloc(p, n);
    if (q && p)
        untrack(p);
    track(q);
    return q;
}

void __wrap_free(void *p)
{
    if (p)
        untrack(p);
    __real_free(p);
}

#endif
