/* tests/fuzz/fuzz_resp.c - libFuzzer target for the axon-kv RESP2 parser.
 *
 * Input layout: 2 bytes choose a split point, the rest is the byte stream.
 * The stream is parsed three ways: whole, cut at the chosen point, and (for
 * short inputs) one byte at a time.  All three must yield the same commands
 * and end in the same state (need-more or the same protocol error); any
 * crash, leak or UB is caught by ASan/UBSan.
 *
 * Build and run: tests/fuzz/run_fuzz_resp.sh BUILD_DIR (clang -fsanitize=fuzzer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/kv/resp.h"

#define MAX_CMD (1u << 20) /* keeps the fuzzer from spending its time in 512 MB mallocs */

typedef struct out {
    unsigned char *s;
    size_t len, cap;
} out_t;

static void put(out_t *o, const void *p, size_t n)
{
    if (o->len + n > o->cap) {
        size_t nc = o->cap ? o->cap : 256;
        while (nc < o->len + n) nc *= 2;
        o->s = realloc(o->s, nc);
        if (!o->s) abort();
        o->cap = nc;
    }
    memcpy(o->s + o->len, p, n);
    o->len += n;
}

/* Drain complete commands into a transcript; returns the last rc. */
static int drain(kv_resp_parser_t *p, out_t *o)
{
    uint32_t argc;
    kv_arg_t *argv;
    int rc;
    while ((rc = kv_resp_next(p, &argc, &argv)) == 1) {
        if (argc == 0) abort();
        put(o, &argc, sizeof(argc));
        for (uint32_t i = 0; i < argc; i++) {
            put(o, &argv[i].len, sizeof(argv[i].len));
            put(o, argv[i].ptr, argv[i].len);
        }
        /* Every other command: take the blobs the way axon-kv's connection
         * does, storing each back into argv (issue 10, item 16: that gave a
         * blob two owners) and dropping them; the parser must not free a
         * taken blob again, and must free the others exactly once. */
        if (argc > 1 && (argc & 1)) {
            for (uint32_t i = 0; i < argc; i++)
                if (argv[i].blob) argv[i].blob = kv_resp_take_blob(p, i);
            for (uint32_t i = 0; i < argc; i++) kv_blob_unref(argv[i].blob);
        }
    }
    return rc;
}

/* Parse data cut at the given step (0: whole); the final rc and error text
 * are appended to the transcript so that they are compared too. */
static void parse(const uint8_t *d, size_t n, size_t first_cut, size_t step, out_t *o)
{
    kv_resp_parser_t p;
    kv_resp_init(&p, MAX_CMD);
    size_t at = 0;
    int rc = 0;
    while (at < n && rc >= 0) {
        size_t chunk = n - at;
        if (at == 0 && first_cut && first_cut < n) chunk = first_cut;
        else if (at > 0 && step && step < chunk) chunk = step;
        if (kv_resp_feed(&p, d + at, chunk) != 0) abort();
        at += chunk;
        rc = drain(&p, o);
    }
    put(o, &rc, sizeof(rc));
    if (rc < 0) put(o, kv_resp_errmsg(&p), strlen(kv_resp_errmsg(&p)));
    kv_resp_fini(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t cut = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2;
    size -= 2;
    cut = size ? cut % (size + 1) : 0;

    out_t whole = {0}, split = {0}, bytes = {0};
    parse(data, size, 0, 0, &whole);
    parse(data, size, cut, 0, &split);
    if (whole.len != split.len || memcmp(whole.s, split.s, whole.len) != 0) {
        fprintf(stderr, "fuzz_resp: split at %zu changed the commands yielded\n", cut);
        abort();
    }
    if (size <= 512) {
        parse(data, size, 1, 1, &bytes);
        if (whole.len != bytes.len || memcmp(whole.s, bytes.s, whole.len) != 0) {
            fprintf(stderr, "fuzz_resp: byte-at-a-time feeding changed the commands yielded\n");
            abort();
        }
    }
    free(whole.s);
    free(split.s);
    free(bytes.s);
    return 0;
}
