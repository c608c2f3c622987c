/* tests/install/consumer.c - a program built against the INSTALLED axon
 * (headers and pkg-config file), the way an embedder builds.  Spawns one
 * actor, sends it a number from outside, and checks the reply arrives. */
#include <axon/axon.h>
#include <stdatomic.h>
#include <stdio.h>

static _Atomic uint64_t seen;

static void echo(ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    (void)state;
    atomic_store(&seen, m->payload.u64[0]);
    ax_engine_stop(ax_ctx_engine(ctx));
}

int main(void)
{
    ax_config_t cfg;
    ax_engine_t *eng;
    ax_ref_t ref;
    ax_config_init(&cfg);
    cfg.workers = 1;
    if (ax_engine_create(&cfg, &eng) != 0) {
        fprintf(stderr, "consumer: %s\n", ax_engine_last_error());
        return 1;
    }
    uint64_t v = 42;
    if (ax_engine_spawn(eng, echo, 0, NULL, &ref) || ax_engine_send(eng, ref, 1, &v, sizeof v) ||
        ax_engine_start(eng)) {
        fprintf(stderr, "consumer: spawn/send/start failed\n");
        return 1;
    }
    ax_engine_wait(eng);
    ax_engine_destroy(eng);
    printf("consumer: got %llu\n", (unsigned long long)atomic_load(&seen));
    return atomic_load(&seen) == 42 ? 0 : 1;
}
