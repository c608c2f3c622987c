/* lib/poison.h - AddressSanitizer poisoning for the library layers' own
 * free lists (lib/pool.c, lib/container.c): memory they keep for reuse is
 * poisoned while unused, so a use after its release is reported as a use
 * after free() would be.  No-ops in other builds. */
#ifndef AXON_LIB_POISON_H
#define AXON_LIB_POISON_H

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif
