/* examples/kv/resp.h - RESP2 request parser and reply writer for axon-kv.
 *
 * Parser: incremental.  Bytes are fed as they arrive, split anywhere; the
 * parser yields whole commands (argc + argv into memory it manages), says
 * "need more", or reports a protocol error with the message Redis sends
 * ("Protocol error: invalid multibulk length", ...).  Two request forms:
 *   - multibulk: *<n>\r\n then n times $<len>\r\n<len bytes>\r\n
 *   - inline:    a text line ending in \n (optional \r), split on blanks,
 *                with "..." and '...' quoting as redis-cli and Redis do.
 * Every length is checked before use: multibulk count <= KV_RESP_MAX_ARGS,
 * bulk length <= KV_RESP_MAX_BULK (512 MB, as Redis), header lines and inline
 * lines <= KV_RESP_MAX_INLINE, and a whole command <= max_cmd_bytes, counting
 * its bytes plus KV_RESP_ARG_COST per argument.
 *
 * Large bulk arguments (>= KV_RESP_BIG_ARG bytes) are written straight into a
 * kv_blob_t of their exact size as they arrive (one copy, from the caller's
 * receive buffer), and the consumer may take that blob and keep it as the
 * stored value: a 512 MB SET is never copied again.
 *
 * Threading: a parser belongs to one connection; no internal locking.
 * Memory: the parser owns its buffer and blobs.  A yielded command's argv is
 * valid until the next kv_resp_feed, kv_resp_next or kv_resp_fini call, and
 * is the caller's to edit: argv[i].blob is a view (it says where the bytes
 * live), never the parser's record of what it owns, which it keeps apart.
 * A blob taken with kv_resp_take_blob belongs to the caller whatever the
 * caller then writes into argv; every blob not taken is released by the
 * parser, exactly once.
 *
 * Writer: appends RESP2 replies to a growable kv_out_t; each call either
 * appends the whole reply and returns 0, or appends nothing and returns
 * -ENOMEM.
 */
#ifndef AXON_KV_RESP_H
#define AXON_KV_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"

#define KV_RESP_MAX_BULK   (512ull * 1024 * 1024) /* Redis proto-max-bulk-len default */
#define KV_RESP_MAX_ARGS   2147483647u            /* arguments in one command: INT_MAX, as Redis 7 */
#define KV_RESP_MAX_INLINE (64u * 1024u)          /* Redis PROTO_INLINE_MAX_SIZE */
#define KV_RESP_BIG_ARG    (16u * 1024u)          /* bulk args this long get their own blob */
#define KV_RESP_DEFAULT_MAX_CMD (1024ull * 1024 * 1024 + 64 * 1024 * 1024)

typedef struct kv_arg {
    const char *ptr;
    size_t len;
    kv_blob_t *blob; /* non-NULL when the bytes live in their own blob (ptr == blob->data) */
} kv_arg_t;

/* What one argument costs the parser beyond its bytes (argv entry, offset,
 * blob slot): charged to max_cmd_bytes, so the argument count is bounded by
 * the same byte budget as the rest of a command. */
#define KV_RESP_ARG_COST (sizeof(kv_arg_t) + sizeof(size_t) + sizeof(kv_blob_t *))

typedef struct kv_resp_parser {
    char *buf;          /* bytes [base, wpos) are buffered; [base, pos) parsed */
    size_t cap, base, pos, wpos;
    size_t scan;        /* where the search for the current line end resumes */
    int state;          /* internal enum, see resp.c */
    int error;          /* 0, or the negative errno kv_resp_next returned for good */
    int inline_cmd;     /* the current command came from an inline line */
    uint32_t argc;      /* args complete so far in the current command */
    uint32_t nargs;     /* args announced by the multibulk header */
    uint32_t argv_cap;
    kv_arg_t *argv;     /* filled in when a command is yielded */
    size_t *argoff;     /* argument offsets relative to base while parsing */
    kv_blob_t **blobs;  /* the big arguments' blobs the parser owns (argv_cap) */
    uint64_t bulk_len;  /* the bulk being read */
    size_t big_filled;  /* bytes of a big bulk already in its blob */
    uint64_t cmd_bytes; /* bytes held for the current command, for max_cmd_bytes */
    uint64_t max_cmd_bytes;
    char *ibuf;         /* unescaped inline arguments */
    size_t ibuf_cap;
    char errmsg[96];    /* "Protocol error: ..." (no "-ERR ", no CRLF) */
} kv_resp_parser_t;

/* max_cmd_bytes: the most one command may hold (0: KV_RESP_DEFAULT_MAX_CMD).
 * Allocates nothing yet; always returns 0. */
int kv_resp_init(kv_resp_parser_t *p, uint64_t max_cmd_bytes);
/* Free the buffer and every blob the parser still owns. */
void kv_resp_fini(kv_resp_parser_t *p);

/* Append len bytes.  Bytes of a big bulk argument go straight into its blob.
 * 0, or -ENOMEM (nothing appended; the parser is still usable).  After a
 * protocol error, further bytes are ignored (returns 0). */
int kv_resp_feed(kv_resp_parser_t *p, const void *data, size_t len);

/* Parse the next command from the buffered bytes.
 *   1         a command: *argc and *argv are set (argv valid until the next
 *             call on this parser); argc >= 1
 *   0         need more bytes
 *   -EPROTO   protocol error: kv_resp_errmsg() says why; the connection
 *             should answer "-ERR <msg>" and close.  Sticky.
 *   -ENOMEM   allocation failed (sticky too: the stream position is lost)
 */
int kv_resp_next(kv_resp_parser_t *p, uint32_t *argc, kv_arg_t **argv);

/* Take ownership of argument i's blob of the command just yielded (NULL if it
 * has none, or it was taken already).  The argument's ptr stays valid as long
 * as the caller keeps the blob; argv[i].blob is left as it is. */
kv_blob_t *kv_resp_take_blob(kv_resp_parser_t *p, uint32_t i);

static inline const char *kv_resp_errmsg(const kv_resp_parser_t *p) { return p->errmsg; }

/* Bytes buffered and not yet yielded (for per-connection memory limits). */
static inline uint64_t kv_resp_pending_bytes(const kv_resp_parser_t *p)
{
    return (uint64_t)(p->wpos - p->base) + p->big_filled;
}

/* ---- reply writer ------------------------------------------------------ */

typedef struct kv_out {
    char *buf;
    size_t len, cap;
} kv_out_t;

void kv_out_init(kv_out_t *o);
void kv_out_fini(kv_out_t *o);
/* Make room for n more bytes.  0 or -ENOMEM. */
int kv_out_reserve(kv_out_t *o, size_t n);
int kv_out_append(kv_out_t *o, const void *p, size_t n);

/* +<s>\r\n (CR and LF in s become spaces, as Redis does) */
int kv_reply_simple(kv_out_t *o, const char *s);
/* -<msg>\r\n: msg starts with the error code, e.g. "ERR syntax error" */
int kv_reply_error(kv_out_t *o, const char *msg);
/* -<printf>\r\n */
int kv_reply_errorf(kv_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kv_reply_int(kv_out_t *o, int64_t v);
int kv_reply_bulk(kv_out_t *o, const void *p, size_t len);
int kv_reply_null(kv_out_t *o);        /* $-1\r\n */
int kv_reply_array(kv_out_t *o, int64_t n); /* *<n>\r\n, then n replies follow */
int kv_reply_null_array(kv_out_t *o);  /* *-1\r\n */

/* Length of the decimal form of v (for computing header sizes). */
size_t kv_fmt_i64(char *dst, int64_t v); /* dst: 21 bytes; returns length, no NUL */

/* Parse a whole byte string as a signed 64-bit decimal, Redis string2ll
 * rules: optional '-', no '+', no spaces, no leading zeros.  0 or -EINVAL. */
int kv_parse_i64(const char *s, size_t len, int64_t *out);

#endif /* AXON_KV_RESP_H */
