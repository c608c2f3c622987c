/* tests/unit/container_test.h - the engine and registry the container
 * tests run on: `workers` oversubscribed workers (functional-test mode, so
 * one CPU is enough), 8 MiB arenas, the registry created before start.
 * Header-only; include after cmocka.h. */
#ifndef AXON_TESTS_CONTAINER_TEST_H
#define AXON_TESTS_CONTAINER_TEST_H

#include "axon/axon.h"
#include "axon/config.h"
#include "axon/container.h"

static inline ax_engine_t *cont_test_engine(uint32_t workers, ax_cont_registry_t **reg)
{
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_config_init(&cfg);
    cfg.workers = workers;
    cfg.oversubscribe = true;
    cfg.arena_bytes = 8u << 20;
    assert_int_equal(ax_engine_create(&cfg, &eng), 0);
    assert_int_equal(ax_cont_registry_create(eng, reg), 0);
    assert_int_equal(ax_engine_start(eng), 0);
    return eng;
}

static inline void cont_test_stop(ax_engine_t *eng, ax_cont_registry_t *reg)
{
    ax_engine_stop(eng);
    ax_engine_wait(eng);
    ax_cont_registry_destroy(reg);
    ax_engine_destroy(eng);
}

#endif /* AXON_TESTS_CONTAINER_TEST_H */
