/* tests/unit/test_kv_resp.c - the axon-kv RESP2 parser and reply writer.
 *
 * The parser is fed the same byte streams whole, split at every byte
 * boundary, and one byte at a time; every way must yield the same commands.
 * Bad lengths (negative, huge, non-digit), missing CRLFs and oversize lines
 * must give the Redis error message, never a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Before cmocka.h: blob.h's inline free() must stay libc's free. */
#include "examples/kv/resp.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* A growable text transcript of the commands yielded: "argc[len:bytes]...\n". */
typedef struct transcript {
    char *s;
    size_t len, cap;
} transcript_t;

static void tr_put(transcript_t *t, const void *p, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t nc = t->cap ? t->cap : 256;
        while (nc < t->len + n + 1) nc *= 2;
        t->s = realloc(t->s, nc);
        assert_non_null(t->s);
        t->cap = nc;
    }
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = 0;
}

static void tr_cmd(transcript_t *t, uint32_t argc, const kv_arg_t *argv)
{
    char head[64];
    int n = snprintf(head, sizeof(head), "%u", argc);
    tr_put(t, head, (size_t)n);
    for (uint32_t i = 0; i < argc; i++) {
        n = snprintf(head, sizeof(head), "[%zu:", argv[i].len);
        tr_put(t, head, (size_t)n);
        tr_put(t, argv[i].ptr, argv[i].len);
        tr_put(t, "]", 1);
    }
    tr_put(t, "\n", 1);
}

/* Drain every complete command; returns kv_resp_next's last result (0 or <0). */
static int drain(kv_resp_parser_t *p, transcript_t *t)
{
    uint32_t argc;
    kv_arg_t *argv;
    int rc;
    while ((rc = kv_resp_next(p, &argc, &argv)) == 1) {
        assert_true(argc >= 1);
        tr_cmd(t, argc, argv);
    }
    return rc;
}

/* Parse buf fed in pieces cut at the given points (sorted, in (0, len)). */
static int parse_split(const char *buf, size_t len, const size_t *cuts, size_t ncuts, transcript_t *t,
                       char *err, size_t errlen)
{
    kv_resp_parser_t p;
    kv_resp_init(&p, 0);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc >= 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_int_equal(kv_resp_feed(&p, buf + at, end - at), 0);
        at = end;
        rc = drain(&p, t);
    }
    if (err) snprintf(err, errlen, "%s", rc < 0 ? kv_resp_errmsg(&p) : "");
    kv_resp_fini(&p);
    return rc;
}

static int parse_whole(const char *buf, size_t len, transcript_t *t, char *err, size_t errlen)
{
    return parse_split(buf, len, NULL, 0, t, err, errlen);
}

static const char pipeline[] =
    "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
    "PING\r\n"
    "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
    "\r\n"                                   /* blank inline line: skipped */
    "*0\r\n"                                 /* empty multibulk: skipped */
    "set \"a b\" 'c\\'d' \"\\x41\\n\"\n"     /* inline with quotes, escapes, bare \n */
    "*1\r\n$0\r\n\r\n"                       /* one empty argument */
    "*2\r\n$4\r\nECHO\r\n$6\r\nx\r\ny\0z\r\n"; /* binary bulk with CR LF NUL */

static const char pipeline_expect[] =
    "3[3:SET][3:key][5:value]\n"
    "1[4:PING]\n"
    "2[3:GET][3:key]\n"
    "4[3:set][3:a b][3:c'd][2:A\n]\n"
    "1[0:]\n"
    "2[4:ECHO][6:x\r\ny\0z]\n";

static void parser_yields_each_command_of_a_mixed_pipeline(void **state)
{
    (void)state;
    transcript_t t = {0};
    assert_int_equal(parse_whole(pipeline, sizeof(pipeline) - 1, &t, NULL, 0), 0);
    assert_int_equal(t.len, sizeof(pipeline_expect) - 1);
    assert_memory_equal(t.s, pipeline_expect, t.len);
    free(t.s);
}

static void parser_yields_the_same_commands_at_every_split_point(void **state)
{
    (void)state;
    size_t len = sizeof(pipeline) - 1;
    for (size_t cut = 1; cut < len; cut++) {
        transcript_t t = {0};
        assert_int_equal(parse_split(pipeline, len, &cut, 1, &t, NULL, 0), 0);
        if (t.len != sizeof(pipeline_expect) - 1 || memcmp(t.s, pipeline_expect, t.len) != 0)
            fail_msg("split at byte %zu gave a different transcript:\n%s", cut, t.s ? t.s : "(none)");
        free(t.s);
    }
    /* and at every pair of split points */
    for (size_t a = 1; a < len; a++) {
        for (size_t b = a + 1; b < len; b++) {
            size_t cuts[2] = {a, b};
            transcript_t t = {0};
            assert_int_equal(parse_split(pipeline, len, cuts, 2, &t, NULL, 0), 0);
            if (t.len != sizeof(pipeline_expect) - 1 || memcmp(t.s, pipeline_expect, t.len) != 0)
                fail_msg("split at %zu,%zu gave a different transcript", a, b);
            free(t.s);
        }
    }
}

static void parser_yields_the_same_commands_fed_one_byte_at_a_time(void **state)
{
    (void)state;
    size_t len = sizeof(pipeline) - 1;
    size_t cuts[sizeof(pipeline)];
    for (size_t i = 0; i + 1 < len; i++) cuts[i] = i + 1;
    transcript_t t = {0};
    assert_int_equal(parse_split(pipeline, len, cuts, len - 1, &t, NULL, 0), 0);
    assert_int_equal(t.len, sizeof(pipeline_expect) - 1);
    assert_memory_equal(t.s, pipeline_expect, t.len);
    free(t.s);
}

/* A value past KV_RESP_BIG_ARG goes into its own blob, whatever the splits. */
static void parser_streams_a_big_argument_into_a_blob_at_any_split(void **state)
{
    (void)state;
    size_t vlen = KV_RESP_BIG_ARG * 3 + 17;
    char *val = malloc(vlen);
    assert_non_null(val);
    for (size_t i = 0; i < vlen; i++) val[i] = (char)(i * 7 + 3);
    char head[64];
    int hn = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%zu\r\n", vlen);
    size_t len = (size_t)hn + vlen + 2 + 14;
    char *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, head, (size_t)hn);
    memcpy(buf + hn, val, vlen);
    memcpy(buf + hn + vlen, "\r\n*1\r\n$4\r\nPING\r\n", 2 + 14);

    /* every cut near the interesting boundaries, and a stride elsewhere */
    for (size_t cut = 1; cut < len; cut += (cut < (size_t)hn + 8 || cut + 24 > (size_t)hn + vlen) ? 1 : 509) {
        kv_resp_parser_t p;
        kv_resp_init(&p, 0);
        assert_int_equal(kv_resp_feed(&p, buf, cut), 0);
        uint32_t argc;
        kv_arg_t *argv;
        int rc = kv_resp_next(&p, &argc, &argv);
        if (rc == 0) {
            assert_int_equal(kv_resp_feed(&p, buf + cut, len - cut), 0);
            rc = kv_resp_next(&p, &argc, &argv);
        }
        assert_int_equal(rc, 1);
        assert_int_equal(argc, 3);
        assert_int_equal(argv[2].len, vlen);
        assert_memory_equal(argv[2].ptr, val, vlen);
        /* header complete, value not all buffered: it had to get its own blob */
        if (cut >= (size_t)hn && cut < (size_t)hn + vlen) assert_non_null(argv[2].blob);
        if (argv[2].blob) {
            kv_blob_t *b = kv_resp_take_blob(&p, 2);
            assert_ptr_equal(b->data, argv[2].ptr);
            assert_null(kv_resp_take_blob(&p, 2));
            kv_blob_unref(b);
        }
        if (kv_resp_next(&p, &argc, &argv) == 0) {
            /* the PING was not buffered yet: impossible, it was fed */
            fail_msg("PING after the big value not yielded (cut %zu)", cut);
        }
        assert_int_equal(argc, 1);
        assert_int_equal(kv_resp_next(&p, &argc, &argv), 0);
        kv_resp_fini(&p);
    }
    free(buf);
    free(val);
}

/* Issue 10, item 16: an argument of 16 KiB or more whose bytes arrive after
 * its header gets a blob.  axon-kv's connection takes every such blob and
 * stores what kv_resp_take_blob returns back into argv[i].blob (its record of
 * what it now owns), then drops the ones nobody moved.  The parser must not
 * release a taken blob again on the next call, whatever the caller wrote into
 * the argv it was handed: before the fix argv was also the parser's ownership
 * record, the blob was freed twice, and the refcount read below is a
 * use-after-free (ASan) or a wrong count (Release). */
static void parser_forgets_a_taken_blob_even_when_stored_back_in_argv(void **state)
{
    (void)state;
    const size_t vlen = KV_RESP_BIG_ARG + 5;
    char head[64];
    int hn = snprintf(head, sizeof(head), "*2\r\n$4\r\nECHO\r\n$%zu\r\n", vlen);
    char *val = malloc(vlen + 2);
    assert_non_null(val);
    memset(val, 'v', vlen);
    memcpy(val + vlen, "\r\n", 2);
    kv_resp_parser_t p;
    kv_resp_init(&p, 0);
    for (int round = 0; round < 3; round++) {
        uint32_t argc;
        kv_arg_t *argv;
        assert_int_equal(kv_resp_feed(&p, head, (size_t)hn), 0); /* the header alone */
        assert_int_equal(kv_resp_next(&p, &argc, &argv), 0);
        assert_int_equal(kv_resp_feed(&p, val, vlen + 2), 0); /* then the bytes */
        assert_int_equal(kv_resp_next(&p, &argc, &argv), 1);
        assert_int_equal(argc, 2);
        assert_non_null(argv[1].blob);
        /* what the connection does (examples/kv/kv.c, conn_process) */
        for (uint32_t i = 0; i < argc; i++)
            if (argv[i].blob) argv[i].blob = kv_resp_take_blob(&p, i);
        kv_blob_t *b = argv[1].blob;
        assert_non_null(b);
        assert_null(kv_resp_take_blob(&p, 1)); /* taken once only */
        kv_blob_t *witness = kv_blob_ref(b);   /* keeps it alive to count its holders */
        kv_blob_unref(argv[1].blob);           /* the caller drops its reference */
        assert_int_equal(kv_resp_next(&p, &argc, &argv), 0); /* releases the command */
        assert_int_equal(atomic_load(&witness->refs), 1);    /* nobody else dropped it */
        kv_blob_unref(witness);
    }
    /* and a blob that is not taken is released by the parser, once */
    uint32_t argc;
    kv_arg_t *argv;
    assert_int_equal(kv_resp_feed(&p, head, (size_t)hn), 0);
    assert_int_equal(kv_resp_next(&p, &argc, &argv), 0);
    assert_int_equal(kv_resp_feed(&p, val, vlen + 2), 0);
    assert_int_equal(kv_resp_next(&p, &argc, &argv), 1);
    kv_blob_t *witness = kv_blob_ref(argv[1].blob);
    argv[1].blob = NULL; /* a caller clearing the view changes nothing */
    assert_int_equal(kv_resp_next(&p, &argc, &argv), 0);
    assert_int_equal(atomic_load(&witness->refs), 1);
    kv_blob_unref(witness);
    kv_resp_fini(&p);
    free(val);
}

/* Issue 10, item 18: Redis 7 accepts up to INT_MAX arguments (bounded by
 * its query buffer); more than 1,048,576 used to be a protocol error that
 * closed the connection.  The count is bounded by max_cmd_bytes instead,
 * each argument charged its bookkeeping (KV_RESP_ARG_COST). */
static void parser_accepts_more_than_a_million_arguments_within_the_byte_bound(void **state)
{
    (void)state;
    const uint32_t n = 1048576u + 10u;
    char head[32];
    int hn = snprintf(head, sizeof(head), "*%u\r\n$3\r\nDEL\r\n", n);
    size_t len = (size_t)hn + (size_t)(n - 1) * 8;
    char *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, head, (size_t)hn);
    for (uint32_t i = 1; i < n; i++) memcpy(buf + hn + (size_t)(i - 1) * 8, "$2\r\nab\r\n", 8);
    kv_resp_parser_t p;
    kv_resp_init(&p, 0);
    assert_int_equal(kv_resp_feed(&p, buf, len), 0);
    uint32_t argc;
    kv_arg_t *argv;
    assert_int_equal(kv_resp_next(&p, &argc, &argv), 1);
    assert_int_equal(argc, n);
    assert_memory_equal(argv[n - 1].ptr, "ab", 2);
    kv_resp_fini(&p);
    /* the same command with a byte bound smaller than its bookkeeping */
    kv_resp_init(&p, (uint64_t)n * KV_RESP_ARG_COST / 2);
    assert_int_equal(kv_resp_feed(&p, buf, len), 0);
    assert_int_equal(kv_resp_next(&p, &argc, &argv), -EPROTO);
    assert_string_equal(kv_resp_errmsg(&p), "Protocol error: too big request");
    kv_resp_fini(&p);
    free(buf);
}

static void expect_error(const char *input, size_t len, const char *msg)
{
    transcript_t t = {0};
    char err[128];
    int rc = parse_whole(input, len, &t, err, sizeof(err));
    if (rc != -EPROTO) fail_msg("input %.*s: expected -EPROTO, got %d", (int)len, input, rc);
    if (strcmp(err, msg) != 0) fail_msg("input %.*s: expected '%s', got '%s'", (int)len, input, msg, err);
    /* the same error when the input arrives one byte at a time */
    size_t *cuts = malloc(len * sizeof(size_t) + 1);
    for (size_t i = 0; i + 1 < len; i++) cuts[i] = i + 1;
    free(t.s);
    t = (transcript_t){0};
    rc = parse_split(input, len, cuts, len ? len - 1 : 0, &t, err, sizeof(err));
    assert_int_equal(rc, -EPROTO);
    assert_string_equal(err, msg);
    free(cuts);
    free(t.s);
}

#define EXPECT_ERROR(lit, msg) expect_error(lit, sizeof(lit) - 1, msg)

static void parser_rejects_bad_multibulk_lengths(void **state)
{
    (void)state;
    const char *m = "Protocol error: invalid multibulk length";
    EXPECT_ERROR("*abc\r\n", m);
    EXPECT_ERROR("*1x\r\n", m);
    EXPECT_ERROR("*\r\n", m);
    EXPECT_ERROR("*+1\r\n", m);
    EXPECT_ERROR("*01\r\n", m);
    EXPECT_ERROR("*2147483648\r\n", m);          /* KV_RESP_MAX_ARGS + 1: INT_MAX + 1, as Redis 7 */
    EXPECT_ERROR("*99999999999999999999999\r\n", m); /* past int64 */
    EXPECT_ERROR("*-9223372036854775809\r\n", m);
    EXPECT_ERROR("*2\rX", m);                    /* CR not followed by LF */
}

static void parser_rejects_negative_huge_and_non_digit_bulk_lengths(void **state)
{
    (void)state;
    const char *m = "Protocol error: invalid bulk length";
    EXPECT_ERROR("*1\r\n$-1\r\n", m);
    EXPECT_ERROR("*1\r\n$-5\r\n", m);
    EXPECT_ERROR("*1\r\n$536870913\r\n", m);     /* 512 MB + 1 */
    EXPECT_ERROR("*1\r\n$18446744073709551616\r\n", m);
    EXPECT_ERROR("*1\r\n$1a\r\n", m);
    EXPECT_ERROR("*1\r\n$\r\n", m);
    EXPECT_ERROR("*1\r\n$ 3\r\n", m);
}

static void parser_accepts_a_bulk_of_exactly_512_megabytes(void **state)
{
    (void)state;
    kv_resp_parser_t p;
    kv_resp_init(&p, 0);
    const char h[] = "*1\r\n$536870912\r\n";
    assert_int_equal(kv_resp_feed(&p, h, sizeof(h) - 1), 0);
    uint32_t argc;
    kv_arg_t *argv;
    assert_int_equal(kv_resp_next(&p, &argc, &argv), 0); /* waits for the bytes */
    assert_int_equal(kv_resp_pending_bytes(&p), sizeof(h) - 1);
    kv_resp_fini(&p); /* frees the half-filled 512 MB blob */
}

static void parser_rejects_a_command_larger_than_its_bound(void **state)
{
    (void)state;
    kv_resp_parser_t p;
    kv_resp_init(&p, 64);
    const char h[] = "*2\r\n$3\r\nSET\r\n$100\r\n";
    assert_int_equal(kv_resp_feed(&p, h, sizeof(h) - 1), 0);
    uint32_t argc;
    kv_arg_t *argv;
    assert_int_equal(kv_resp_next(&p, &argc, &argv), -EPROTO);
    assert_string_equal(kv_resp_errmsg(&p), "Protocol error: too big request");
    kv_resp_fini(&p);
}

static void parser_rejects_missing_crlf_after_bulk_data(void **state)
{
    (void)state;
    const char *m = "Protocol error: expected CRLF after bulk data";
    EXPECT_ERROR("*1\r\n$3\r\nfooXY", m);
    EXPECT_ERROR("*1\r\n$3\r\nfoo\rX", m);
    EXPECT_ERROR("*1\r\n$3\r\nfoo\n\r", m);
}

static void parser_rejects_a_missing_dollar(void **state)
{
    (void)state;
    EXPECT_ERROR("*1\r\n:3\r\n", "Protocol error: expected '$', got ':'");
    EXPECT_ERROR("*2\r\n$1\r\na\r\nxyz\r\n", "Protocol error: expected '$', got 'x'");
}

static void parser_rejects_oversize_lines(void **state)
{
    (void)state;
    size_t n = KV_RESP_MAX_INLINE + 16;
    char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, 'a', n);
    transcript_t t = {0};
    char err[128];
    assert_int_equal(parse_whole(buf, n, &t, err, sizeof(err)), -EPROTO);
    assert_string_equal(err, "Protocol error: too big inline request");
    buf[0] = '*';
    assert_int_equal(parse_whole(buf, n, &t, err, sizeof(err)), -EPROTO);
    assert_string_equal(err, "Protocol error: too big mbulk count string");
    memcpy(buf, "*1\r\n$", 5);
    assert_int_equal(parse_whole(buf, n, &t, err, sizeof(err)), -EPROTO);
    assert_string_equal(err, "Protocol error: too big bulk count string");
    assert_null(t.s);
    free(buf);
}

static void parser_rejects_unbalanced_quotes_inline(void **state)
{
    (void)state;
    const char *m = "Protocol error: unbalanced quotes in request";
    EXPECT_ERROR("set \"abc\r\n", m);
    EXPECT_ERROR("set 'abc\n", m);
    EXPECT_ERROR("set \"a\"b\n", m); /* closing quote must end the argument */
}

static void parser_error_is_sticky_and_later_bytes_are_ignored(void **state)
{
    (void)state;
    kv_resp_parser_t p;
    kv_resp_init(&p, 0);
    assert_int_equal(kv_resp_feed(&p, "*x\r\n", 4), 0);
    uint32_t argc;
    kv_arg_t *argv;
    assert_int_equal(kv_resp_next(&p, &argc, &argv), -EPROTO);
    assert_int_equal(kv_resp_feed(&p, "PING\r\n", 6), 0);
    assert_int_equal(kv_resp_next(&p, &argc, &argv), -EPROTO);
    kv_resp_fini(&p);
}

static void parser_keeps_memory_bounded_across_many_commands(void **state)
{
    (void)state;
    kv_resp_parser_t p;
    kv_resp_init(&p, 0);
    const char cmd[] = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    for (int i = 0; i < 100000; i++) {
        assert_int_equal(kv_resp_feed(&p, cmd, sizeof(cmd) - 1), 0);
        uint32_t argc;
        kv_arg_t *argv;
        assert_int_equal(kv_resp_next(&p, &argc, &argv), 1);
        assert_int_equal(argc, 2);
    }
    assert_true(p.cap <= 4096);
    kv_resp_fini(&p);
}

static void parse_i64_follows_redis_string2ll_rules(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(kv_parse_i64("0", 1, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(kv_parse_i64("-12", 3, &v), 0);
    assert_int_equal(v, -12);
    assert_int_equal(kv_parse_i64("9223372036854775807", 19, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(kv_parse_i64("-9223372036854775808", 20, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(kv_parse_i64("9223372036854775808", 19, &v), -EINVAL);
    assert_int_equal(kv_parse_i64("-0", 2, &v), -EINVAL);
    assert_int_equal(kv_parse_i64("007", 3, &v), -EINVAL);
    assert_int_equal(kv_parse_i64("+1", 2, &v), -EINVAL);
    assert_int_equal(kv_parse_i64(" 1", 2, &v), -EINVAL);
    assert_int_equal(kv_parse_i64("", 0, &v), -EINVAL);
    assert_int_equal(kv_parse_i64("-", 1, &v), -EINVAL);
}

static void writer_formats_every_reply_type(void **state)
{
    (void)state;
    kv_out_t o;
    kv_out_init(&o);
    assert_int_equal(kv_reply_simple(&o, "OK"), 0);
    assert_int_equal(kv_reply_error(&o, "ERR bad\r\nthing"), 0);
    assert_int_equal(kv_reply_int(&o, -42), 0);
    assert_int_equal(kv_reply_int(&o, INT64_MIN), 0);
    assert_int_equal(kv_reply_bulk(&o, "a\r\nb", 4), 0);
    assert_int_equal(kv_reply_bulk(&o, "", 0), 0);
    assert_int_equal(kv_reply_null(&o), 0);
    assert_int_equal(kv_reply_array(&o, 2), 0);
    assert_int_equal(kv_reply_null_array(&o), 0);
    assert_int_equal(kv_reply_errorf(&o, "ERR n=%d", 7), 0);
    const char want[] = "+OK\r\n-ERR bad  thing\r\n:-42\r\n:-9223372036854775808\r\n$4\r\na\r\nb\r\n$0\r\n\r\n"
                        "$-1\r\n*2\r\n*-1\r\n-ERR n=7\r\n";
    assert_int_equal(o.len, sizeof(want) - 1);
    assert_memory_equal(o.buf, want, o.len);
    kv_out_fini(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parser_yields_each_command_of_a_mixed_pipeline),
        cmocka_unit_test(parser_yields_the_same_commands_at_every_split_point),
        cmocka_unit_test(parser_yields_the_same_commands_fed_one_byte_at_a_time),
        cmocka_unit_test(parser_streams_a_big_argument_into_a_blob_at_any_split),
        cmocka_unit_test(parser_rejects_bad_multibulk_lengths),
        cmocka_unit_test(parser_rejects_negative_huge_and_non_digit_bulk_lengths),
        cmocka_unit_test(parser_accepts_a_bulk_of_exactly_512_megabytes),
        cmocka_unit_test(parser_rejects_a_command_larger_than_its_bound),
        cmocka_unit_test(parser_rejects_missing_crlf_after_bulk_data),
        cmocka_unit_test(parser_rejects_a_missing_dollar),
        cmocka_unit_test(parser_rejects_oversize_lines),
        cmocka_unit_test(parser_rejects_unbalanced_quotes_inline),
        cmocka_unit_test(parser_error_is_sticky_and_later_bytes_are_ignored),
        cmocka_unit_test(parser_keeps_memory_bounded_across_many_commands),
        cmocka_unit_test(parse_i64_follows_redis_string2ll_rules),
        cmocka_unit_test(parser_forgets_a_taken_blob_even_when_stored_back_in_argv),
        cmocka_unit_test(parser_accepts_more_than_a_million_arguments_within_the_byte_bound),
        cmocka_unit_test(writer_formats_every_reply_type),
    };
    return cmocka_run_group_tests_name("kv/resp", tests, NULL, NULL);
}
