/* examples/kv/server.h - axon-kv's actors and the messages between them.
 *
 * Actors:
 *   shard     one per worker; owns a kv_store_t (its key space), runs the
 *             operations routed to it in batches, sweeps expired keys on a
 *             periodic timer.
 *   listener  one per worker; a SO_REUSEPORT listener whose accepts spawn
 *             connection actors on the same worker.
 *   conn      one per client connection; parses RESP, answers connection
 *             level commands itself (PING, ECHO, QUIT, COMMAND, CONFIG),
 *             routes each key to its shard, and writes the replies back in
 *             request order (sequence numbers + a reorder ring).
 *
 * Conn -> shard traffic goes as one kv_batch_t per (connection, shard, read
 * chunk): the pointer travels in an 8-byte message, the shard fills in the
 * replies in the same batch and sends the pointer back.  Ownership of a
 * batch is with whoever last received it; a conn never stops while one of
 * its batches is out, so a batch is never a dead letter.
 *
 * Threading: kv_server_t is written by main before the engine starts (and
 * the listener port once, with release/acquire) and read-only after.
 */
#ifndef AXON_KV_SERVER_H
#define AXON_KV_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "axon/axon.h"
#include "resp.h"
#include "store.h"

#define KV_MAX_SHARDS 256u

/* Message types (user range). */
enum {
    KV_MSG_BATCH = 1, /* conn -> shard: u64 kv_batch_t* to run */
    KV_MSG_DONE = 2,  /* shard -> conn: u64 kv_batch_t* with replies */
    KV_MSG_LISTEN = 3 /* main -> listener: start listening */
};

typedef struct kv_options {
    char bind[64];
    uint16_t port;           /* 0: any free port (printed) */
    uint32_t workers;        /* 0: engine default (one per core) */
    uint64_t maxmemory;      /* per shard, bytes; 0: unlimited */
    uint32_t sweep_ms;       /* expiry sweep period; 0: 100 */
    uint32_t sweep_slots;    /* slots looked at per sweep round; 0: 4096 */
    uint64_t max_cmd_bytes;  /* one request; 0: 1 GiB + 64 MiB */
    uint32_t max_pipeline;   /* commands in flight per connection; 0: 65536 */
    uint64_t max_out_bytes;  /* output a connection may hold for its client; 0: 64 MiB */
    int verbose;
    int spin_set;            /* engine-spin-us given */
    int32_t spin_us;         /* engine idle spin; axon-kv's default: -1, never */
    char engine_config[256]; /* optional axon engine config file */
} kv_options_t;

typedef struct kv_server {
    kv_options_t opt;
    ax_engine_t *eng;
    uint32_t nshards;
    ax_ref_t shards[KV_MAX_SHARDS];
    uint64_t route_seed;
    _Atomic int port;        /* bound port, published by the first listener */
    _Atomic int listen_err;  /* first listen failure (negative errno) */
    _Atomic uint32_t listeners_up;
} kv_server_t;

/* Which shard owns a key. */
static inline uint32_t kv_shard_of(const kv_server_t *srv, const void *key, size_t len)
{
    uint64_t h = kv_hash(key, len, srv->route_seed);
    /* multiply-shift: uniform over nshards without a division */
    return (uint32_t)(((__uint128_t)h * srv->nshards) >> 64);
}

#endif /* AXON_KV_SERVER_H */
