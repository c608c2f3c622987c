/* examples/kv/blob.h - refcounted immutable byte strings for axon-kv values.
 *
 * A value up to 512 MB is written once (by the RESP parser while the bytes
 * arrive, or by the store for small and computed values) and then only read.
 * Holding it by reference lets a large SET move from the receive path into
 * the store, and a large GET go from the store to the socket, without a copy.
 *
 * Threading: the refcount is atomic because a reader on one worker (a
 * connection sending a GET reply) may still hold a value that the owning
 * shard, on another worker, has just overwritten or deleted.  The bytes are
 * immutable once a blob has more than one holder; only a sole holder
 * (refs == 1, checked with acquire) may write into it.
 * Memory: malloc/free; the last kv_blob_unref frees.
 */
#ifndef AXON_KV_BLOB_H
#define AXON_KV_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 8 bytes of header: a small value ("42", a short string: most of a key
 * space) is then a 16-byte allocation instead of 32 (issue 10, item 20:
 * 1,000,000 small keys took 1.58x redis-server's memory).  Values are at
 * most 512 MB, so 32 bits of length are plenty. */
typedef struct kv_blob {
    _Atomic uint32_t refs;
    uint32_t len;
    char data[]; /* len bytes, then one NUL so numeric parsing may use strtoll-like code */
} kv_blob_t;

/* A new blob of len bytes (contents undefined, data[len] = 0), refs = 1.
 * NULL when memory is exhausted or len does not fit in 32 bits. */
static inline kv_blob_t *kv_blob_new(size_t len)
{
    if (len >= UINT32_MAX) return NULL;
    kv_blob_t *b = (kv_blob_t *)malloc(sizeof(kv_blob_t) + len + 1);
    if (!b) return NULL;
    atomic_init(&b->refs, 1u);
    b->len = (uint32_t)len;
    b->data[len] = 0;
    return b;
}

/* A new blob holding a copy of len bytes at p. */
static inline kv_blob_t *kv_blob_from(const void *p, size_t len)
{
    kv_blob_t *b = kv_blob_new(len);
    if (b && len) memcpy(b->data, p, len);
    return b;
}

static inline kv_blob_t *kv_blob_ref(kv_blob_t *b)
{
    /* Relaxed: taking a reference needs no ordering; the holder that gave
     * us b already keeps it alive (same reasoning as std::shared_ptr). */
    atomic_fetch_add_explicit(&b->refs, 1u, memory_order_relaxed);
    return b;
}

/* Drop a reference; NULL does nothing. */
static inline void kv_blob_unref(kv_blob_t *b)
{
    if (!b) return;
    /* acq_rel: the release half orders our reads of data before the drop;
     * the acquire half (taken by the last holder) pairs with every other
     * holder's release, so the free comes after all their reads.  (Not a
     * release + acquire fence: TSan does not model fences.) */
    if (atomic_fetch_sub_explicit(&b->refs, 1u, memory_order_acq_rel) == 1u) free(b);
}

/* True when the caller is the only holder and may write in place.
 * Acquire pairs with the release in kv_blob_unref of the last other holder. */
static inline int kv_blob_is_unique(const kv_blob_t *b)
{
    return atomic_load_explicit(&((kv_blob_t *)b)->refs, memory_order_acquire) == 1u;
}

/* Bytes charged to a shard for holding this blob (header + data + NUL). */
static inline size_t kv_blob_cost(size_t len) { return sizeof(kv_blob_t) + len + 1; }

#endif /* AXON_KV_BLOB_H */
