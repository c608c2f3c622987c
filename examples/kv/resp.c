/* examples/kv/resp.c - RESP2 request parser and reply writer (see resp.h).
 *
 * The parser is a state machine over a byte buffer [base, wpos): base is the
 * first byte of the command being parsed, pos the next unparsed byte.  While
 * a command is incomplete its arguments are remembered as offsets from base,
 * so the buffer may be moved (compacted or grown) by kv_resp_feed; pointers
 * are made only when the command is complete and yielded.  Nothing before
 * base is needed, which is what lets feed compact.
 *
 * Every header line is searched from `scan` (where the previous search
 * stopped), so a line arriving one byte at a time costs O(n), not O(n^2).
 */
#include "resp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_IDLE = 0,    /* between commands */
    ST_INLINE,      /* waiting for the end of an inline line */
    ST_MB_HEADER,   /* waiting for "*<n>\r\n" */
    ST_BULK_HEADER, /* waiting for "$<len>\r\n" */
    ST_BULK_DATA,   /* waiting for <len> bytes + CRLF in the buffer */
    ST_BIG_DATA,    /* copying a big bulk into its blob */
    ST_BIG_CRLF,    /* big bulk complete, waiting for its CRLF */
    ST_YIELDED,     /* a command was handed out; release it on the next call */
};

int kv_resp_init(kv_resp_parser_t *p, uint64_t max_cmd_bytes)
{
    memset(p, 0, sizeof(*p));
    p->max_cmd_bytes = max_cmd_bytes ? max_cmd_bytes : KV_RESP_DEFAULT_MAX_CMD;
    p->state = ST_IDLE;
    return 0;
}

/* Ownership of big arguments' blobs is recorded in p->blobs, never in the
 * argv handed out: a caller may write argv[i].blob (moving a blob it took
 * into its own structures and clearing the field, say) without changing
 * what the parser frees.  When the two were one array, a caller that took a
 * blob and stored the result back into argv[i].blob gave it two owners. */
static void release_blobs(kv_resp_parser_t *p)
{
    /* Blobs may exist for args [0, argc] (the one being filled is argc). */
    for (uint32_t i = 0; i < p->argv_cap; i++) {
        if (p->blobs[i]) {
            kv_blob_unref(p->blobs[i]);
            p->blobs[i] = NULL;
        }
        p->argv[i].blob = NULL;
        if (i > p->argc) break;
    }
}

void kv_resp_fini(kv_resp_parser_t *p)
{
    if (p->argv_cap) release_blobs(p);
    free(p->buf);
    free(p->argv);
    free(p->argoff);
    free(p->blobs);
    free(p->ibuf);
    memset(p, 0, sizeof(*p));
}

/* Forget the yielded command: its bytes [base, pos) are no longer needed. */
static void release_yielded(kv_resp_parser_t *p)
{
    release_blobs(p);
    p->argc = 0;
    p->nargs = 0;
    p->cmd_bytes = 0;
    p->big_filled = 0;
    p->inline_cmd = 0;
    p->base = p->pos;
    p->scan = p->pos;
    p->state = ST_IDLE;
    if (p->base == p->wpos) p->base = p->pos = p->scan = p->wpos = 0;
}

static int proto_error(kv_resp_parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int proto_error(kv_resp_parser_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errmsg, sizeof(p->errmsg), fmt, ap);
    va_end(ap);
    p->error = -EPROTO;
    return -EPROTO;
}

static int fatal_nomem(kv_resp_parser_t *p)
{
    snprintf(p->errmsg, sizeof(p->errmsg), "out of memory while reading a request");
    p->error = -ENOMEM;
    return -ENOMEM;
}

int kv_resp_feed(kv_resp_parser_t *p, const void *data, size_t len)
{
    const char *src = (const char *)data;
    if (p->error) return 0;
    if (p->state == ST_YIELDED) release_yielded(p);

    /* A big bulk being received with nothing buffered ahead of it: copy
     * straight into its blob, the only copy these bytes will see. */
    if (p->state == ST_BIG_DATA && p->pos == p->wpos && len) {
        kv_blob_t *b = p->blobs[p->argc];
        size_t want = (size_t)p->bulk_len - p->big_filled;
        size_t n = len < want ? len : want;
        memcpy(b->data + p->big_filled, src, n);
        p->big_filled += n;
        src += n;
        len -= n;
    }
    if (!len) return 0;

    if (p->wpos + len > p->cap || p->wpos + len < p->wpos) {
        /* Compact (offsets are relative to base) only when the parsed
         * prefix is at least as long as what stays, else grow: a consumer
         * that parses a little at a time (a connection at its bound takes a
         * round of commands per reply) while input keeps arriving would
         * otherwise move the whole buffer for every few bytes freed. */
        size_t live = p->wpos - p->base;
        if (p->base > 0 && (p->base >= live || p->wpos + len - p->base <= p->cap / 2)) {
            memmove(p->buf, p->buf + p->base, live);
            p->pos -= p->base;
            p->scan -= p->base;
            p->wpos = live;
            p->base = 0;
        }
        if (p->wpos + len > p->cap) {
            size_t ncap = p->cap ? p->cap * 2 : 4096;
            while (ncap < p->wpos + len) ncap *= 2;
            char *nb = (char *)realloc(p->buf, ncap);
            if (!nb) return -ENOMEM;
            p->buf = nb;
            p->cap = ncap;
        }
    }
    memcpy(p->buf + p->wpos, src, len);
    p->wpos += len;
    return 0;
}

int kv_parse_i64(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) return -EINVAL;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return 0;
    }
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1) return -EINVAL;
    }
    if (s[i] < '1' || s[i] > '9') return -EINVAL;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -EINVAL;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return -EINVAL;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return -EINVAL;
        *out = (int64_t)v;
    }
    return 0;
}

/* Find the '\r' ending the header line that starts at pos.  Returns 1 with
 * *cr set when "\r\n"... is buffered (the byte after '\r' is present), 0 when
 * more bytes are needed, -1 when the line is longer than KV_RESP_MAX_INLINE. */
static int find_cr(kv_resp_parser_t *p, size_t *cr)
{
    size_t from = p->scan > p->pos ? p->scan : p->pos;
    const char *hit = from < p->wpos ? memchr(p->buf + from, '\r', p->wpos - from) : NULL;
    if (!hit) {
        p->scan = p->wpos;
        return p->wpos - p->pos > KV_RESP_MAX_INLINE ? -1 : 0;
    }
    size_t at = (size_t)(hit - p->buf);
    if (at - p->pos > KV_RESP_MAX_INLINE) return -1;
    p->scan = at; /* resume here: the '\n' may not have arrived */
    if (at + 1 >= p->wpos) return 0;
    *cr = at;
    return 1;
}

static int grow_argv(kv_resp_parser_t *p, uint32_t need)
{
    if (need <= p->argv_cap) return 0;
    uint32_t ncap = p->argv_cap ? p->argv_cap : 8;
    while (ncap < need) ncap *= 2;
    kv_arg_t *na = (kv_arg_t *)realloc(p->argv, (size_t)ncap * sizeof(*na));
    if (!na) return -ENOMEM;
    memset(na + p->argv_cap, 0, (size_t)(ncap - p->argv_cap) * sizeof(*na));
    p->argv = na;
    size_t *no = (size_t *)realloc(p->argoff, (size_t)ncap * sizeof(*no));
    if (!no) return -ENOMEM; /* argv grew; harmless, cap stays for all below */
    p->argoff = no;
    kv_blob_t **nb = (kv_blob_t **)realloc(p->blobs, (size_t)ncap * sizeof(*nb));
    if (!nb) return -ENOMEM;
    memset(nb + p->argv_cap, 0, (size_t)(ncap - p->argv_cap) * sizeof(*nb));
    p->blobs = nb;
    p->argv_cap = ncap;
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Split an inline line the way Redis's sdssplitargs does.  Arguments are
 * unescaped into p->ibuf; on success p->argv/argc describe them.  Returns 0,
 * -EPROTO (unbalanced quotes) or -ENOMEM. */
static int split_inline(kv_resp_parser_t *p, const char *s, size_t n)
{
    if (p->ibuf_cap < n + 1) {
        size_t nc = n + 1 < 256 ? 256 : n + 1;
        char *nb = (char *)realloc(p->ibuf, nc);
        if (!nb) return -ENOMEM;
        p->ibuf = nb;
        p->ibuf_cap = nc;
    }
    char *o = p->ibuf;
    size_t i = 0;
    uint32_t argc = 0;
    for (;;) {
        while (i < n && is_blank(s[i])) i++;
        if (i >= n) break;
        char *start = o;
        bool inq = false, insq = false, done = false;
        while (!done) {
            if (inq) {
                if (i >= n) return -EPROTO; /* unterminated "..." */
                if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x' && hex_val(s[i + 2]) >= 0 &&
                    hex_val(s[i + 3]) >= 0) {
                    *o++ = (char)(hex_val(s[i + 2]) * 16 + hex_val(s[i + 3]));
                    i += 3;
                } else if (s[i] == '\\' && i + 1 < n) {
                    i++;
                    char c;
                    switch (s[i]) {
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'b': c = '\b'; break;
                    case 'a': c = '\a'; break;
                    default: c = s[i]; break;
                    }
                    *o++ = c;
                } else if (s[i] == '"') {
                    /* the closing quote must be followed by a blank or the end */
                    if (i + 1 < n && !is_blank(s[i + 1])) return -EPROTO;
                    done = true;
                } else {
                    *o++ = s[i];
                }
            } else if (insq) {
                if (i >= n) return -EPROTO;
                if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\'') {
                    i++;
                    *o++ = '\'';
                } else if (s[i] == '\'') {
                    if (i + 1 < n && !is_blank(s[i + 1])) return -EPROTO;
                    done = true;
                } else {
                    *o++ = s[i];
                }
            } else {
                if (i >= n || is_blank(s[i])) {
                    done = true;
                } else if (s[i] == '"') {
                    inq = true;
                } else if (s[i] == '\'') {
                    insq = true;
                } else {
                    *o++ = s[i];
                }
            }
            if (i < n) i++;
        }
        if (argc >= KV_RESP_MAX_ARGS) return -EPROTO;
        if (grow_argv(p, argc + 1) < 0) return -ENOMEM;
        p->argv[argc].ptr = start;
        p->argv[argc].len = (size_t)(o - start);
        p->argv[argc].blob = NULL;
        argc++;
    }
    p->argc = argc;
    return 0;
}

static int parse_inline(kv_resp_parser_t *p)
{
    size_t from = p->scan > p->pos ? p->scan : p->pos;
    const char *nl = from < p->wpos ? memchr(p->buf + from, '\n', p->wpos - from) : NULL;
    if (!nl) {
        p->scan = p->wpos;
        if (p->wpos - p->base > KV_RESP_MAX_INLINE)
            return proto_error(p, "Protocol error: too big inline request");
        return 0;
    }
    size_t end = (size_t)(nl - p->buf);
    if (end - p->base > KV_RESP_MAX_INLINE) return proto_error(p, "Protocol error: too big inline request");
    size_t n = end - p->base;
    if (n && p->buf[end - 1] == '\r') n--;
    int rc = split_inline(p, p->buf + p->base, n);
    if (rc == -ENOMEM) return fatal_nomem(p);
    if (rc < 0) return proto_error(p, "Protocol error: unbalanced quotes in request");
    p->pos = end + 1;
    p->scan = p->pos;
    p->inline_cmd = 1;
    return 1;
}

int kv_resp_next(kv_resp_parser_t *p, uint32_t *argc_out, kv_arg_t **argv_out)
{
    if (p->error) return p->error;
    if (p->state == ST_YIELDED) release_yielded(p);

    for (;;) {
        switch (p->state) {
        case ST_IDLE:
            if (p->pos >= p->wpos) {
                p->base = p->pos = p->scan = p->wpos = 0;
                return 0;
            }
            p->base = p->pos;
            p->scan = p->pos;
            p->state = p->buf[p->pos] == '*' ? ST_MB_HEADER : ST_INLINE;
            break;

        case ST_INLINE: {
            int rc = parse_inline(p);
            if (rc <= 0) return rc;
            if (p->argc == 0) { /* blank line: Redis ignores it */
                p->state = ST_IDLE;
                p->base = p->pos;
                break;
            }
            p->state = ST_YIELDED;
            *argc_out = p->argc;
            *argv_out = p->argv;
            return 1;
        }

        case ST_MB_HEADER: {
            size_t cr;
            int rc = find_cr(p, &cr);
            if (rc < 0) return proto_error(p, "Protocol error: too big mbulk count string");
            if (rc == 0) return 0;
            int64_t n;
            if (p->buf[cr + 1] != '\n' || kv_parse_i64(p->buf + p->pos + 1, cr - p->pos - 1, &n) < 0 ||
                n > (int64_t)KV_RESP_MAX_ARGS)
                return proto_error(p, "Protocol error: invalid multibulk length");
            p->pos = cr + 2;
            p->scan = p->pos;
            if (n <= 0) { /* "*0" and "*-1": an empty command, skipped as Redis does */
                p->state = ST_IDLE;
                p->base = p->pos;
                break;
            }
            p->nargs = (uint32_t)n;
            p->argc = 0;
            p->cmd_bytes = 0;
            p->state = ST_BULK_HEADER;
            break;
        }

        case ST_BULK_HEADER: {
            if (p->pos >= p->wpos) return 0;
            if (p->buf[p->pos] != '$') {
                unsigned char c = (unsigned char)p->buf[p->pos];
                return proto_error(p, "Protocol error: expected '$', got '%c'", c >= 32 && c < 127 ? c : '?');
            }
            size_t cr;
            int rc = find_cr(p, &cr);
            if (rc < 0) return proto_error(p, "Protocol error: too big bulk count string");
            if (rc == 0) return 0;
            int64_t n;
            if (p->buf[cr + 1] != '\n' || kv_parse_i64(p->buf + p->pos + 1, cr - p->pos - 1, &n) < 0 || n < 0 ||
                (uint64_t)n > KV_RESP_MAX_BULK)
                return proto_error(p, "Protocol error: invalid bulk length");
            p->pos = cr + 2;
            p->scan = p->pos;
            p->bulk_len = (uint64_t)n;
            /* Held so far (buffered header and small args, plus big blobs)
             * plus this argument, and the bookkeeping of every argument,
             * must fit the per-command bound. */
            if ((uint64_t)(p->pos - p->base) + p->cmd_bytes + p->bulk_len + 2 +
                    (uint64_t)(p->argc + 1) * KV_RESP_ARG_COST >
                p->max_cmd_bytes)
                return proto_error(p, "Protocol error: too big request");
            if (grow_argv(p, p->argc + 1) < 0) return fatal_nomem(p);
            size_t avail = p->wpos - p->pos;
            if (p->bulk_len >= KV_RESP_BIG_ARG && avail < p->bulk_len + 2) {
                kv_blob_t *b = kv_blob_new((size_t)p->bulk_len);
                if (!b) return fatal_nomem(p);
                p->blobs[p->argc] = b;
                p->cmd_bytes += p->bulk_len;
                p->big_filled = 0;
                p->state = ST_BIG_DATA;
            } else {
                p->state = ST_BULK_DATA;
            }
            break;
        }

        case ST_BULK_DATA: {
            size_t len = (size_t)p->bulk_len;
            if (p->wpos - p->pos < len + 2) return 0;
            if (p->buf[p->pos + len] != '\r' || p->buf[p->pos + len + 1] != '\n')
                return proto_error(p, "Protocol error: expected CRLF after bulk data");
            p->argoff[p->argc] = p->pos - p->base;
            p->argv[p->argc].len = len;
            p->argv[p->argc].blob = NULL;
            p->argc++;
            p->pos += len + 2;
            p->scan = p->pos;
            p->state = p->argc == p->nargs ? ST_YIELDED : ST_BULK_HEADER;
            break;
        }

        case ST_BIG_DATA: {
            kv_blob_t *b = p->blobs[p->argc];
            size_t want = (size_t)p->bulk_len - p->big_filled;
            size_t avail = p->wpos - p->pos;
            size_t n = avail < want ? avail : want;
            memcpy(b->data + p->big_filled, p->buf + p->pos, n);
            p->big_filled += n;
            /* The copied bytes are no longer needed in the buffer: dropping
             * them keeps the buffer small while 512 MB stream through. */
            memmove(p->buf + p->pos, p->buf + p->pos + n, avail - n);
            p->wpos -= n;
            p->scan = p->pos;
            if (p->big_filled < p->bulk_len) return 0;
            p->state = ST_BIG_CRLF;
            break;
        }

        case ST_BIG_CRLF: {
            if (p->wpos - p->pos < 2) return 0;
            if (p->buf[p->pos] != '\r' || p->buf[p->pos + 1] != '\n')
                return proto_error(p, "Protocol error: expected CRLF after bulk data");
            p->pos += 2;
            p->scan = p->pos;
            p->argv[p->argc].len = (size_t)p->bulk_len;
            p->argoff[p->argc] = SIZE_MAX; /* lives in its blob */
            p->big_filled = 0;
            p->argc++;
            p->state = p->argc == p->nargs ? ST_YIELDED : ST_BULK_HEADER;
            break;
        }

        case ST_YIELDED:
            /* a multibulk command just completed: make its pointers */
            for (uint32_t i = 0; i < p->argc; i++) {
                p->argv[i].blob = p->blobs[i];
                p->argv[i].ptr = p->blobs[i] ? p->blobs[i]->data : p->buf + p->base + p->argoff[i];
            }
            *argc_out = p->argc;
            *argv_out = p->argv;
            return 1;

        default:
            return proto_error(p, "Protocol error: internal parser state %d", p->state);
        }
    }
}

kv_blob_t *kv_resp_take_blob(kv_resp_parser_t *p, uint32_t i)
{
    if (p->state != ST_YIELDED || i >= p->argc) return NULL;
    kv_blob_t *b = p->blobs[i];
    p->blobs[i] = NULL;
    return b;
}

/* ---- reply writer ------------------------------------------------------ */

void kv_out_init(kv_out_t *o) { memset(o, 0, sizeof(*o)); }

void kv_out_fini(kv_out_t *o)
{
    free(o->buf);
    memset(o, 0, sizeof(*o));
}

int kv_out_reserve(kv_out_t *o, size_t n)
{
    if (o->cap - o->len >= n) return 0;
    if (n > SIZE_MAX / 4 - o->len) return -ENOMEM;
    size_t ncap = o->cap ? o->cap : 256;
    while (ncap - o->len < n) ncap *= 2;
    char *nb = (char *)realloc(o->buf, ncap);
    if (!nb) return -ENOMEM;
    o->buf = nb;
    o->cap = ncap;
    return 0;
}

int kv_out_append(kv_out_t *o, const void *p, size_t n)
{
    if (kv_out_reserve(o, n) < 0) return -ENOMEM;
    if (n) memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

size_t kv_fmt_i64(char *dst, int64_t v)
{
    char tmp[21];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + (u % 10));
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0) dst[k++] = '-';
    while (n) dst[k++] = tmp[--n];
    return k;
}

/* <prefix><decimal>\r\n */
static int put_num_line(kv_out_t *o, char prefix, int64_t v)
{
    if (kv_out_reserve(o, 24) < 0) return -ENOMEM;
    char *d = o->buf + o->len;
    d[0] = prefix;
    size_t n = 1 + kv_fmt_i64(d + 1, v);
    d[n++] = '\r';
    d[n++] = '\n';
    o->len += n;
    return 0;
}

/* <prefix><s with CR/LF as spaces>\r\n: a status line must stay one line */
static int put_line(kv_out_t *o, char prefix, const char *s, size_t n)
{
    if (kv_out_reserve(o, n + 3) < 0) return -ENOMEM;
    char *d = o->buf + o->len;
    d[0] = prefix;
    for (size_t i = 0; i < n; i++) d[1 + i] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    d[1 + n] = '\r';
    d[2 + n] = '\n';
    o->len += n + 3;
    return 0;
}

int kv_reply_simple(kv_out_t *o, const char *s) { return put_line(o, '+', s, strlen(s)); }
int kv_reply_error(kv_out_t *o, const char *msg) { return put_line(o, '-', msg, strlen(msg)); }

int kv_reply_errorf(kv_out_t *o, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) return -EINVAL;
    return put_line(o, '-', msg, strlen(msg));
}

int kv_reply_int(kv_out_t *o, int64_t v) { return put_num_line(o, ':', v); }
int kv_reply_array(kv_out_t *o, int64_t n) { return put_num_line(o, '*', n); }
int kv_reply_null(kv_out_t *o) { return kv_out_append(o, "$-1\r\n", 5); }
int kv_reply_null_array(kv_out_t *o) { return kv_out_append(o, "*-1\r\n", 5); }

int kv_reply_bulk(kv_out_t *o, const void *p, size_t len)
{
    if (kv_out_reserve(o, len + 26) < 0) return -ENOMEM;
    put_num_line(o, '$', (int64_t)len); /* cannot fail: reserved above */
    memcpy(o->buf + o->len, p, len);
    o->len += len;
    o->buf[o->len++] = '\r';
    o->buf[o->len++] = '\n';
    return 0;
}
