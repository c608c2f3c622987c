/* axon/flow.h - credit windows between a producer and a consumer actor, so
 * a fast producer cannot fill memory with messages to a slow consumer.
 *
 * The producer keeps an ax_flow_out_t per consumer with a window of W
 * messages: ax_flow_send() refuses with -EAGAIN (and counts it) once W
 * messages are sent and not yet granted back.  The consumer calls
 * ax_flow_consumed() after handling each flow message; every W/2 messages
 * it sends the producer one AX_FLOW_GRANT message - the resume signal: the
 * producer passes it to ax_flow_on_grant() and sends again.  So at most W
 * messages per pair are queued anywhere (rings, overflow, FIFO), whatever
 * the speed ratio.  The consumer keeps no state per producer: each message
 * carries its sequence number and the grant interval in its last payload
 * word (so flow payloads are at most AX_FLOW_INLINE_MAX bytes).
 *
 * A producer that ignores -EAGAIN and calls ax_send directly bypasses all
 * this: the engine's own sends stay unbounded.  A consumer that stops
 * sends no more grants: the producer stays at -EAGAIN (watch it with a
 * monitor, or time it out).
 *
 * Header-only over axon.h (the public API).  Valid C11 and C++17.
 * Threading: [behaviour]; an ax_flow_out_t belongs to one producer actor.
 */
#ifndef AXON_FLOW_H
#define AXON_FLOW_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "axon/axon.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The grant: payload one u64, the count of messages consumed so far. */
#define AX_FLOW_GRANT (AX_TYPE_LIB + 1u)
#define AX_FLOW_INLINE_MAX 32u
#define AX_FLOW_WINDOW_MAX (1u << 20)
#define AX_FLOW_SEQ_MASK ((1ull << 48) - 1)

typedef struct ax_flow_out {
    ax_ref_t to;
    uint64_t sent;    /* messages sent */
    uint64_t acked;   /* messages the consumer has granted back */
    uint32_t window;  /* at most this many sent and not granted */
    uint32_t shift;   /* grant every 1 << shift messages (window / 2) */
    uint64_t refused; /* ax_flow_send calls answered -EAGAIN */
    uint64_t grants;  /* grants received */
} ax_flow_out_t;

/* window: a power of two in [2, AX_FLOW_WINDOW_MAX].  0 or -EINVAL. */
static inline int ax_flow_open(ax_flow_out_t *f, ax_ref_t to, uint32_t window)
{
    uint32_t s = 0;
    if (!f || to == AX_REF_NONE || window < 2 || window > AX_FLOW_WINDOW_MAX ||
        (window & (window - 1)))
        return -EINVAL;
    memset(f, 0, sizeof *f);
    f->to = to;
    f->window = window;
    while ((2u << s) < window)
        s++;
    f->shift = s; /* 1 << s == window / 2 */
    return 0;
}

/* Messages that may be sent now. */
static inline uint32_t ax_flow_credit(const ax_flow_out_t *f)
{
    return f->window - (uint32_t)(f->sent - f->acked);
}

/* Send len <= AX_FLOW_INLINE_MAX bytes within the window.  0, -EAGAIN (no
 * credit: wait for AX_FLOW_GRANT), or ax_send's errors. */
static inline int ax_flow_send(ax_ctx_t *ctx, ax_flow_out_t *f, uint32_t type, const void *buf,
                               size_t len)
{
    union {
        unsigned char b[AX_INLINE_MAX];
        uint64_t w[AX_INLINE_MAX / 8];
    } p;
    int rc;
    if (len > AX_FLOW_INLINE_MAX || (len && !buf))
        return -EINVAL;
    if (__builtin_expect(f->sent - f->acked >= f->window, 0)) {
        f->refused++;
        return -EAGAIN;
    }
    if (len)
        memcpy(p.b, buf, len);
    p.w[AX_INLINE_MAX / 8 - 1] =
        (f->sent & AX_FLOW_SEQ_MASK) | ((uint64_t)len << 48) | ((uint64_t)f->shift << 56);
    rc = ax_send(ctx, f->to, type, p.b, AX_INLINE_MAX);
    if (rc == 0)
        f->sent++;
    return rc;
}

/* Is m the grant of this flow?  Then record it (the producer may send
 * again) and return true. */
static inline bool ax_flow_on_grant(ax_flow_out_t *f, const ax_msg_t *m)
{
    uint64_t v, behind;
    if (m->type != AX_FLOW_GRANT || m->from != f->to || m->len != 8)
        return false;
    v = m->payload.u64[0];
    behind = (f->sent - v) & AX_FLOW_SEQ_MASK; /* v is a 48-bit count */
    if (behind <= f->window && f->sent - behind > f->acked)
        f->acked = f->sent - behind;
    f->grants++;
    return true;
}

/* Consumer side: the user bytes of a flow message. */
static inline const void *ax_flow_data(const ax_msg_t *m) { return m->payload.data; }
static inline size_t ax_flow_len(const ax_msg_t *m)
{
    return (size_t)((m->payload.u64[AX_INLINE_MAX / 8 - 1] >> 48) & 0xFF);
}
/* The producer's sequence number of m (0, 1, ...; 48 bits). */
static inline uint64_t ax_flow_seq(const ax_msg_t *m)
{
    return m->payload.u64[AX_INLINE_MAX / 8 - 1] & AX_FLOW_SEQ_MASK;
}

/* Call when done with flow message m (in the behaviour that handles it):
 * grants credit back every window/2 messages.  0 or ax_send's error (the
 * grant could not be sent: the producer stays blocked; retry by calling
 * again with the same message). */
static inline int ax_flow_consumed(ax_ctx_t *ctx, const ax_msg_t *m)
{
    uint64_t w = m->payload.u64[AX_INLINE_MAX / 8 - 1];
    uint64_t next = ((w & AX_FLOW_SEQ_MASK) + 1) & AX_FLOW_SEQ_MASK;
    uint32_t shift = (uint32_t)(w >> 56);
    if (shift >= 48 || (next & ((1ull << shift) - 1)) != 0)
        return 0;
    return ax_send_u64(ctx, m->from, AX_FLOW_GRANT, next);
}

#ifdef __cplusplus
}
#endif
#endif /* AXON_FLOW_H */
