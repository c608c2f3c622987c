/* axon/typed.h - typed messages and handler tables, over ax_send.
 *
 * Declare a message once:
 *
 *     struct deposit { uint64_t account; int64_t cents; };
 *     AX_MESSAGE(deposit, 10, struct deposit)
 *
 * and get, checked at compile time (type id below AX_TYPE_LIB, alignment at
 * most 8):
 *
 *     deposit_TYPE                         the type id (an enum constant)
 *     deposit_t                            the C type
 *     deposit_send(ctx, to, &d)            inline payload when it fits
 *                                          (AX_INLINE_MAX), else a blob
 *     deposit_request(ctx, to, &d, ms, fn, cont, cont_len)
 *                                          the same as a request (inline up to
 *                                          AX_REQUEST_INLINE_MAX)
 *     deposit_reply(ctx, &d)               reply to the current request
 *     deposit_get(msg)                     const deposit_t *, or NULL when msg
 *                                          is not a deposit of the right size
 *     deposit_data(msg)                    the same without checks (for
 *                                          handlers a table already checked)
 *
 * A receive side can be a table instead of a switch: ax_table_init() builds
 * a dense type -> handler array (all types of one table within
 * AX_TABLE_SPAN of each other), and ax_table_dispatch() calls the handler
 * after checking the payload size, or the table's unhandled hook (and
 * counts it) for a type the table does not know or a wrong size.
 *
 * Everything here is inline over axon.h and axon/request.h: no library code.
 * Valid C11 (-pedantic) and C++17.
 * Threading: [behaviour] for sends; a table is built once (before the
 * engine starts, or in one actor's init) and is then read-only, shared by
 * any number of actors on any workers; its counter is atomic.
 */
#ifndef AXON_TYPED_H
#define AXON_TYPED_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "axon/axon.h"
#include "axon/request.h"

#ifdef __cplusplus
#define AX_STATIC_ASSERT(c, m) static_assert(c, m)
#define AX_ALIGNOF(t) alignof(t)
extern "C" {
#else
#define AX_STATIC_ASSERT(c, m) _Static_assert(c, m)
#define AX_ALIGNOF(t) _Alignof(t)
#endif

/* Send a value of a declared message type: inline if it fits, else a copy in
 * a blob from the sender's arena (freed on error). */
static inline int ax_typed_send(ax_ctx_t *ctx, ax_ref_t to, uint32_t type, const void *v,
                                size_t size)
{
    void *b;
    int rc;
    if (size <= AX_INLINE_MAX)
        return ax_send(ctx, to, type, v, size);
    if (!(b = ax_blob_alloc(ctx, size)))
        return -ENOMEM;
    memcpy(b, v, size);
    if ((rc = ax_send_blob(ctx, to, type, b, size)) != 0)
        ax_blob_free(ctx, b);
    return rc;
}

static inline int ax_typed_request(ax_ctx_t *ctx, ax_ref_t to, uint32_t type, const void *v,
                                   size_t size, uint64_t timeout_ms, ax_cont_fn fn,
                                   const void *cont, size_t cont_len)
{
    void *b;
    int rc;
    if (size <= AX_REQUEST_INLINE_MAX)
        return ax_request(ctx, to, type, v, size, timeout_ms, fn, cont, cont_len);
    if (!(b = ax_blob_alloc(ctx, size)))
        return -ENOMEM;
    memcpy(b, v, size);
    if ((rc = ax_request_blob(ctx, to, type, b, size, timeout_ms, fn, cont, cont_len)) != 0)
        ax_blob_free(ctx, b);
    return rc;
}

static inline int ax_typed_reply(ax_ctx_t *ctx, uint32_t type, const void *v, size_t size)
{
    void *b;
    int rc;
    ax_req_t req = ax_request_of(ax_current_msg(ctx));
    if (size <= AX_REQUEST_INLINE_MAX)
        return ax_reply_to(ctx, req, type, v, size);
    if (!req.id)
        return -EINVAL;
    if (!(b = ax_blob_alloc(ctx, size)))
        return -ENOMEM;
    memcpy(b, v, size);
    if ((rc = ax_reply_blob_to(ctx, req, type, b, size)) != 0)
        ax_blob_free(ctx, b);
    return rc;
}

/* The payload of m if it has this type and size, else NULL. */
static inline const void *ax_typed_get(const ax_msg_t *m, uint32_t type, size_t size)
{
    return m && m->type == type && ax_msg_len(m) == size ? ax_msg_data(m) : NULL;
}

#define AX_MESSAGE(name, type_id, ctype)                                                        \
    enum { name##_TYPE = (type_id) };                                                           \
    typedef ctype name##_t;                                                                     \
    AX_STATIC_ASSERT((uint64_t)(type_id) < (uint64_t)AX_TYPE_LIB,                               \
                     #name ": type id must be below AX_TYPE_LIB");                              \
    AX_STATIC_ASSERT(AX_ALIGNOF(ctype) <= 8, #name ": alignment above 8 is not kept in messages"); \
    AX_STATIC_ASSERT(sizeof(ctype) <= UINT32_MAX, #name ": too large");                         \
    static inline int name##_send(ax_ctx_t *ctx, ax_ref_t to, const ctype *v)                   \
    {                                                                                           \
        return ax_typed_send(ctx, to, (uint32_t)(type_id), v, sizeof(ctype));                   \
    }                                                                                           \
    static inline int name##_request(ax_ctx_t *ctx, ax_ref_t to, const ctype *v,                \
                                     uint64_t timeout_ms, ax_cont_fn fn, const void *cont,      \
                                     size_t cont_len)                                           \
    {                                                                                           \
        return ax_typed_request(ctx, to, (uint32_t)(type_id), v, sizeof(ctype), timeout_ms, fn, \
                                cont, cont_len);                                                \
    }                                                                                           \
    static inline int name##_reply(ax_ctx_t *ctx, const ctype *v)                               \
    {                                                                                           \
        return ax_typed_reply(ctx, (uint32_t)(type_id), v, sizeof(ctype));                      \
    }                                                                                           \
    static inline const ctype *name##_get(const ax_msg_t *m)                                    \
    {                                                                                           \
        return (const ctype *)ax_typed_get(m, (uint32_t)(type_id), sizeof(ctype));              \
    }                                                                                           \
    static inline const ctype *name##_data(const ax_msg_t *m)                                   \
    {                                                                                           \
        return (const ctype *)ax_msg_data(m);                                                   \
    }                                                                                           \
    AX_STATIC_ASSERT(1, "swallow the semicolon")

/* ---- handler tables ------------------------------------------------------------- */

/* Type ids of one table lie within [base, base + AX_TABLE_SPAN). */
#define AX_TABLE_SPAN 64u

typedef struct ax_handler {
    uint32_t type;
    uint32_t size;      /* payload bytes the handler expects */
    ax_behaviour_fn fn;
} ax_handler_t;

/* One entry for a declared message: AX_ON(deposit, on_deposit). */
#define AX_ON(name, handler) {(uint32_t)(name##_TYPE), (uint32_t)sizeof(name##_t), (handler)}

typedef struct ax_table {
    uint32_t base;
    uint32_t nhandlers;
    ax_behaviour_fn unhandled; /* may be NULL: then only counted */
    uint64_t unhandled_count;  /* atomic (__atomic builtins): read with ax_table_unhandled */
    ax_handler_t slot[AX_TABLE_SPAN]; /* by type - base; fn NULL: none */
} ax_table_t;

/* Build t from n handlers.  0, or -EINVAL (NULL fn, duplicate type, or
 * types further apart than AX_TABLE_SPAN: number one protocol's messages
 * densely). */
static inline int ax_table_init(ax_table_t *t, const ax_handler_t *h, size_t n,
                                ax_behaviour_fn unhandled)
{
    uint32_t base = UINT32_MAX;
    size_t i;
    if (!t || (n && !h))
        return -EINVAL;
    memset(t, 0, sizeof *t);
    for (i = 0; i < n; i++)
        if (h[i].type < base)
            base = h[i].type;
    for (i = 0; i < n; i++) {
        uint32_t k = h[i].type - base;
        if (!h[i].fn || k >= AX_TABLE_SPAN || t->slot[k].fn)
            return -EINVAL;
        t->slot[k] = h[i];
    }
    t->base = n ? base : 0;
    t->nhandlers = (uint32_t)n;
    t->unhandled = unhandled;
    return 0;
}

/* The unknown-type path: count, then the hook. */
static inline void ax_table_miss(ax_table_t *t, ax_ctx_t *ctx, void *state, const ax_msg_t *m)
{
    __atomic_fetch_add(&t->unhandled_count, 1, __ATOMIC_RELAXED);
    if (t->unhandled)
        t->unhandled(ctx, state, m);
}

/* Call m's handler, or count it and call the unhandled hook.  Use it as the
 * whole behaviour body, or as the default: of a switch. */
static inline void ax_table_dispatch(ax_table_t *t, ax_ctx_t *ctx, void *state,
                                     const ax_msg_t *m)
{
    uint32_t k = m->type - t->base;
    if (__builtin_expect(k < AX_TABLE_SPAN, 1)) {
        const ax_handler_t *h = &t->slot[k];
        if (__builtin_expect(h->fn != NULL && ax_msg_len(m) == h->size, 1)) {
            h->fn(ctx, state, m);
            return;
        }
    }
    ax_table_miss(t, ctx, state, m);
}

/* Messages the table did not handle (unknown type or wrong size). */
static inline uint64_t ax_table_unhandled(const ax_table_t *t)
{
    return __atomic_load_n(&t->unhandled_count, __ATOMIC_RELAXED);
}

#ifdef __cplusplus
}
#endif
#endif /* AXON_TYPED_H */
