/* examples/kv/store.h - one shard's key space for axon-kv.
 *
 * An open-addressing hash table (linear probing, backward-shift deletion, so
 * no tombstones) of keys to refcounted values (kv_blob_t), each key with an
 * optional absolute expiry deadline in milliseconds.  Expiry is lazy (a key
 * found expired on access is deleted then) plus kv_store_sweep, which a
 * shard calls from a timer and which does bounded work per call.
 *
 * Memory accounting: every entry, value and the slot table are charged to
 * `used`; with a non-zero `maxmemory`, a write that would take `used` past it
 * is refused with KV_EOOM ("-OOM command not allowed when used memory >
 * 'maxmemory'."), so a shard never holds more than maxmemory (plus one slot
 * table resize, which is charged when it happens).  Deletes, reads, EXPIRE,
 * FLUSHALL are always allowed.
 *
 * The RESP layer (kv_store_exec) runs one command whose keys all belong to
 * this shard and appends its RESP reply.
 *
 * Threading: a store belongs to one shard actor; no locking.  Values handed
 * out by kv_store_get are borrowed (valid until the next call that may
 * modify the store); take a reference (kv_blob_ref) to keep one longer.
 * Memory: malloc/free.  kv_store_set takes ownership of the value blob on
 * success and on every error (a failed call still did nothing to the store).
 */
#ifndef AXON_KV_STORE_H
#define AXON_KV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "resp.h"

/* Errors beyond errno values, returned negated. */
#define KV_EOOM      1001 /* write refused: maxmemory */
#define KV_ENOTINT   1002 /* value is not an integer or out of range */
#define KV_EOVERFLOW 1003 /* increment or decrement would overflow */

#define KV_OOM_MSG    "OOM command not allowed when used memory > 'maxmemory'."
#define KV_NOTINT_MSG "ERR value is not an integer or out of range"

/* kv_store_set flags */
#define KV_SET_NX      0x1u /* only if the key does not exist */
#define KV_SET_XX      0x2u /* only if it exists */
#define KV_SET_KEEPTTL 0x4u /* keep the old deadline instead of clearing it */

typedef struct kv_entry kv_entry_t; /* private to store.c */

typedef struct kv_slot {
    uint64_t hash; /* 0 means empty; real hashes are forced non-zero */
    kv_entry_t *e;
} kv_slot_t;

typedef struct kv_store {
    kv_slot_t *slots;
    size_t cap;       /* power of two, or 0 before the first insert */
    size_t count;     /* keys (expired-but-not-yet-removed included) */
    size_t expires;   /* keys with a deadline */
    size_t sweep_cursor;
    uint64_t used;    /* bytes charged */
    uint64_t maxmemory; /* 0: unlimited */
    uint64_t seed;    /* hash seed */
    uint64_t expired_total; /* keys removed because they expired (lazy + sweep) */
} kv_store_t;

/* Hash used both for sharding and for the table.  Different seeds give
 * independent bits; a shard must use a seed different from the router's so
 * a shard's keys do not all land in one part of its table. */
uint64_t kv_hash(const void *key, size_t len, uint64_t seed);

/* 0 (always).  maxmemory 0: unlimited. */
int kv_store_init(kv_store_t *s, uint64_t maxmemory, uint64_t seed);
void kv_store_fini(kv_store_t *s);

/* Borrow the value of a live key.  0 or -ENOENT. */
int kv_store_get(kv_store_t *s, const void *key, size_t klen, int64_t now_ms, kv_blob_t **val);
/* Set key to a copy of vlen bytes at val; reuses the old value's memory in
 * place when it has the same length and no other holder.  Same returns as
 * kv_store_set. */
int kv_store_set_copy(kv_store_t *s, const void *key, size_t klen, const void *val, size_t vlen,
                      unsigned flags, int64_t expire_at_ms, int64_t now_ms);
/* Set key to val (ownership of val passes to the store in every case).
 * expire_at_ms: absolute deadline, or 0 for none (unless KEEPTTL).
 * Returns 0 (set), 1 (not set: NX/XX condition), -KV_EOOM, -ENOMEM. */
int kv_store_set(kv_store_t *s, const void *key, size_t klen, kv_blob_t *val, unsigned flags,
                 int64_t expire_at_ms, int64_t now_ms);
/* 1 deleted, 0 not found. */
int kv_store_del(kv_store_t *s, const void *key, size_t klen, int64_t now_ms);
/* 1 or 0 */
int kv_store_exists(kv_store_t *s, const void *key, size_t klen, int64_t now_ms);
/* 0 with *out = new value; -KV_ENOTINT, -KV_EOVERFLOW, -KV_EOOM, -ENOMEM. */
int kv_store_incrby(kv_store_t *s, const void *key, size_t klen, int64_t delta, int64_t now_ms, int64_t *out);
/* kv_store_expire_at conditions (Redis 7's EXPIRE options) */
#define KV_EXPIRE_NX 0x1u /* only if the key has no deadline */
#define KV_EXPIRE_XX 0x2u /* only if it has one */
#define KV_EXPIRE_GT 0x4u /* only if the new deadline is later (none counts as infinite) */
#define KV_EXPIRE_LT 0x8u /* only if the new deadline is earlier (none counts as infinite) */

/* Set an absolute deadline when the key exists and the flags' conditions
 * hold (flags 0: always); a deadline <= now deletes the key.  1 when the
 * deadline was set or the key deleted, 0 when the key does not exist or a
 * condition failed. */
int kv_store_expire_at(kv_store_t *s, const void *key, size_t klen, int64_t at_ms, unsigned flags,
                       int64_t now_ms);
/* -2 no such key, -1 no deadline, else milliseconds left (>= 0). */
int64_t kv_store_pttl(kv_store_t *s, const void *key, size_t klen, int64_t now_ms);
/* Live keys, without the ones expired but not yet removed (exact). */
size_t kv_store_dbsize(kv_store_t *s, int64_t now_ms);
/* Remove every key; the slot table is released too. */
void kv_store_flush(kv_store_t *s);
/* Look at up to max_slots slots from where the last call stopped and remove
 * the expired keys found there.  Returns keys removed.  Does nothing (and
 * returns 0) when no key has a deadline. */
size_t kv_store_sweep(kv_store_t *s, int64_t now_ms, size_t max_slots);

/* True when a write of `extra` more bytes would pass maxmemory. */
int kv_store_over_limit(const kv_store_t *s, uint64_t extra);

/* ---- RESP layer --------------------------------------------------------- */

/* Execute one command on this shard and append its reply to out.  Handles
 * GET SET DEL EXISTS INCR DECR INCRBY DECRBY MGET MSET DBSIZE FLUSHALL EXPIRE
 * PEXPIRE TTL PTTL (keys all assumed to be on this shard).  argv[i].blob, if
 * set, may be taken (set to NULL) as a stored value.  Unknown commands get
 * "-ERR unknown command".  Returns 0 or -ENOMEM (reply not appended). */
int kv_store_exec(kv_store_t *s, uint32_t argc, kv_arg_t *argv, int64_t now_ms, kv_out_t *out);

/* Case-insensitive compare of an argument with an upper-case word.  Inline
 * so that strlen of the literal folds away: command dispatch calls this a
 * dozen times per request (it showed at 1.3% of axon-kv's CPU out of line). */
static inline int kv_arg_is(const kv_arg_t *a, const char *upper)
{
    size_t n = __builtin_strlen(upper);
    if (a->len != n) return 0;
    for (size_t i = 0; i < n; i++)
        if ((a->ptr[i] & ~0x20) != upper[i]) return 0; /* ASCII letters: clearing 0x20 upper-cases */
    return 1;
}

/* The Redis reply for an unknown command (appended to out). */
int kv_reply_unknown(kv_out_t *out, uint32_t argc, const kv_arg_t *argv);
/* "-ERR wrong number of arguments for '<cmd>' command" */
int kv_reply_arity(kv_out_t *out, const kv_arg_t *cmd);

#endif /* AXON_KV_STORE_H */
