/* tests/fuzz/fuzz_config.c - libFuzzer target for the config parser:
 * ax_config_load_string on arbitrary bytes, then ax_config_validate on the
 * result; also the same bytes as one AXON_* environment value.  A crash, a
 * sanitizer report or a loaded config that fails validation is a bug: the
 * parser checks every range itself, so validate must agree with it.
 * Threading: single thread.  Memory: nothing survives an iteration.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "axon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ax_config_t cfg, before;
    ax_config_init(&cfg);
    before = cfg;
    ax_config_error_t err;
    int rc = ax_config_load_string(&cfg, (const char *)data, size, "fuzz.conf", &err);
    if (rc == 0) {
        if (ax_config_validate(&cfg, &err) != 0)
            abort(); /* the parser accepted what validation refuses */
    } else {
        if (memcmp(&cfg, &before, sizeof cfg) != 0)
            abort(); /* a failed load changed the config */
        if (memchr(err.message, '\0', sizeof err.message) == NULL)
            abort();
    }

    /* The bytes as the value of an environment override. */
    if (size < 2048 && !memchr(data, '\0', size)) {
        static const char *const names[] = { "AXON_WORKERS_COUNT=", "AXON_WORKERS_CPUS=",
                                             "AXON_MEMORY_ARENA_BYTES=",
                                             "AXON_SCHEDULER_SPIN_US=", "AXON_WORKERS_SMT=" };
        const char *name = names[size % (sizeof names / sizeof names[0])];
        char buf[2100];
        size_t nl = strlen(name);
        memcpy(buf, name, nl);
        memcpy(buf + nl, data, size);
        buf[nl + size] = '\0';
        char *env[] = { buf, NULL };
        ax_config_init(&cfg);
        if (ax_config_apply_env(&cfg, env, &err) == 0 && ax_config_validate(&cfg, &err) != 0)
            abort();
    }
    return 0;
}
