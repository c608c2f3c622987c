/* examples/kv/kv.c - axon-kv: an in-memory key-value server speaking RESP2
 * (the Redis protocol), sharded over the axon engine's workers.
 *
 *   axon-kv [--port P] [--bind ADDR] [--workers N] [--config FILE]
 *           [--maxmemory BYTES] [-v] [--help]
 *
 * Actors and messages are described in server.h.  The life of a request:
 *   1. the conn actor gets AX_IO_DATA, feeds its parser, and for each
 *      command takes a sequence number (its slot in the reorder ring);
 *   2. keyed work becomes one op per key in a batch per shard (one batch per
 *      shard per read), sent as a pointer in an 8-byte message;
 *   3. the shard runs the ops on its store, writes each reply into the
 *      batch and sends it back;
 *   4. the conn puts each reply in its slot (combining the parts of MGET,
 *      MSET, DEL, EXISTS, DBSIZE, FLUSHALL), then copies every reply that is
 *      next in order into its output, and sends once no batch is out.
 * So replies leave in request order whatever the shards' timing.
 *
 * Threading: each actor's state is touched only by its behaviour; the only
 * shared data are kv_server_t (read-only once started, apart from the
 * listen handshake's atomics) and the blobs (refcounted, see blob.h).
 * Memory: batches are malloc'ed by the conn and travel conn -> shard ->
 * conn; the conn frees them once their replies are copied out.
 */
/* sched_getaffinity and CPU_COUNT are GNU: ask for them, so axon-kv builds
 * with -std=c11 outside this tree too (the tree passes -D_GNU_SOURCE). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jemalloc/jemalloc.h>

#include "axon/axon.h"
#include "axon/io.h"
#include "server.h"

#define KV_MSG_SWEEP 4u           /* shard's periodic timer */
#define KV_MSG_RX_RETRY 5u        /* conn's timer: pause/resume the socket again */
#define KV_BIG_REPLY (64u * 1024) /* GET values this long are sent from the blob */
/* A GET of a value this long is answered by reference (the shard takes a
 * reference to the value's blob instead of copying it into the batch): the
 * connection copies it once into its output, or queues the reference when
 * the output must wait anyway (see kv_seg_t).  Below it a copy costs less
 * than the two atomic refcount updates on a line other workers may share. */
#define KV_REF_REPLY (16u * 1024)
#define KV_FLUSH_BYTES (64u * 1024)
/* Output flow control.  The io layer copies what it is given and closes a
 * connection holding more than io_conn_max_bytes (64 MiB by default), so a
 * large reply goes out in chunks with a bounded window in flight; the rest
 * waits in a segment queue (owned bytes, or a reference to a value blob).
 * The io layer sends one chunk of a connection at a time and starts the
 * next itself, so two chunks keep the kernel fed; a larger window only
 * copied more (4 MiB per client that does not read, into fresh pages: the
 * bulk of a single worker's stall when such clients connect) for the same
 * throughput (2.5-2.8 GB/s to a reading client either way, 5 MB and 60 KB
 * values). */
#define KV_SEND_CHUNK (512u << 10)
#define KV_SEND_WINDOW (1u << 20)
/* A connection starts with this window and doubles it each time the kernel
 * has taken a whole window's worth of its sends, up to KV_SEND_WINDOW
 * (sends are at most half the window; TCP's slow start, counting bytes
 * completed): a client that reads reaches 1 MiB after 896 KiB, one that
 * never reads stops completing sends once its socket buffers are full and
 * keeps a small window.  Each byte in the window is a copy into memory the
 * io layer holds until the kernel takes it, so with a 1 MiB window from the
 * start four such clients made the one worker fault in 4 MiB of fresh
 * pages (~1,000 faults, ~18 us each on the CI VM) while another client's
 * PING waited (issue 10 item 17). */
#define KV_SEND_WINDOW_MIN (128u << 10)
/* The io layer copies each send above 4 KiB into its worker's resident send
 * pool (io_send_pool_bytes), and into fresh memory, faulted in per send,
 * only when the pool is full.  A connection holds at most a window plus a
 * chunk there: 4 MiB (the engine's default) held 2.7 connections at a full
 * window, and four clients that do not read made the rest fault in (~600
 * worker faults in 4 s instead of ~350 with 8 MiB, issue 10 item 17). */
#define KV_SEND_POOL (8ull << 20)
/* Queued pieces shorter than this are gathered into one send of up to
 * KV_SEND_CHUNK; a longer one is handed to the io layer straight. */
#define KV_GATHER_MAX (64u * 1024)
#define KV_BACKLOG_CLOSE (512ull << 20) /* copied bytes queued past max-output-bytes: closed */
/* Output is bounded in bytes (max-output-bytes), not only in commands:
 * before a command is parsed, what the connection holds for its client
 * (replies in flight counted at a worst-case estimate, replies waiting in
 * order, the output buffer, queued segments and bytes at the io layer) must
 * be under the bound.  A reply's size is unknown until its shard answers, so
 * a command in flight counts what it may cost: a GET up to KV_BIG_REPLY
 * copied bytes (a bigger value is sent from its blob, not copied), an MGET
 * that per key, anything else a small constant.  Its actual size replaces
 * the estimate when it comes back. */
#define KV_EST_GET ((uint64_t)KV_BIG_REPLY + 32)
#define KV_EST_SMALL 64u
#define KV_EST_INFO 1024u
/* At most this much estimated output is in flight at the shards per
 * connection: a client pipelining big GETs is served in rounds of bounded
 * work, each started when the previous one's batches come back, so the
 * worker's other connections get their turn between rounds instead of
 * waiting behind a whole pipeline of copies (messages run in FIFO order). */
#define KV_ROUND_BYTES (1ull << 20)
/* Unparsed input at which a connection whose parsing is paused stops reading
 * its socket, and below which it reads again (conn_rx_update). */
#define KV_RX_HIGH (256u << 10)
#define KV_RX_LOW (64u << 10)
/* Unparsed input a paused connection copies into its parser; what arrives
 * beyond it is kept as received (kv_conn_t.inq) and fed to the parser when
 * it has no whole command left.  16 KiB is 500 pipelined GETs, far more
 * than a round takes (16).  It was 64 KiB: each pipelining client's parser
 * then grew (doubling, into fresh pages) to 64-128 KiB on its first burst,
 * ~16-32 first-touch faults per client that another client's first PING
 * waited behind (issue 10 item 17). */
#define KV_PARSE_AHEAD (16u << 10)
/* The receive buffer size axon-kv gives the engine (io.buf_size), and how
 * many blocks of it each shard carves from its worker's arena at start:
 * one per buffer of the engine's default ring (256). */
#define KV_RECV_BUF 4096u
#define KV_RECV_WARM 256u

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ==== batches ============================================================ */

typedef struct kv_barg {
    size_t off, len;
    kv_blob_t *blob; /* owned; the value lives there instead of in bytes */
} kv_barg_t;

typedef struct kv_op {
    uint64_t seq;    /* the conn's slot */
    uint32_t part;   /* which part of a multi-key command */
    uint32_t argc;
    size_t arg0;     /* first argument in batch->args */
    size_t rep_off, rep_len; /* reply bytes in batch->out (set by the shard) */
    kv_blob_t *rep_blob;     /* or: a big GET value, referenced (set by the shard) */
} kv_op_t;

typedef struct kv_batch {
    ax_ref_t conn;
    struct kv_batch *prev, *next; /* conn side: the batches out, for shutdown */
    size_t nops, ops_cap, nargs, args_cap;
    kv_op_t *ops;
    kv_barg_t *args;
    kv_out_t bytes;   /* copies of the small arguments */
    kv_out_t out;     /* replies */
    size_t unemitted; /* conn side: replies still referenced from the ring */
} kv_batch_t;

/* Empty a batch for reuse, keeping its arrays. */
static void batch_reset(kv_batch_t *b)
{
    for (size_t i = 0; i < b->nargs; i++) kv_blob_unref(b->args[i].blob);
    for (size_t i = 0; i < b->nops; i++) kv_blob_unref(b->ops[i].rep_blob);
    b->nops = b->nargs = 0;
    b->bytes.len = b->out.len = 0;
    b->unemitted = 0;
}

static void batch_free(kv_batch_t *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->nargs; i++) kv_blob_unref(b->args[i].blob);
    for (size_t i = 0; i < b->nops; i++) kv_blob_unref(b->ops[i].rep_blob);
    free(b->ops);
    free(b->args);
    kv_out_fini(&b->bytes);
    kv_out_fini(&b->out);
    free(b);
}

/* Append one op.  Blobs of argv move into the batch (argv[i].blob is set to
 * NULL); on -ENOMEM nothing was added and argv still owns its blobs. */
static int batch_add(kv_batch_t *b, uint64_t seq, uint32_t part, uint32_t argc, kv_arg_t *argv)
{
    if (b->nops == b->ops_cap) {
        size_t nc = b->ops_cap ? b->ops_cap * 2 : 16;
        kv_op_t *n = realloc(b->ops, nc * sizeof(*n));
        if (!n) return -ENOMEM;
        b->ops = n;
        b->ops_cap = nc;
    }
    if (b->nargs + argc > b->args_cap) {
        size_t nc = b->args_cap ? b->args_cap * 2 : 32;
        while (nc < b->nargs + argc) nc *= 2;
        kv_barg_t *n = realloc(b->args, nc * sizeof(*n));
        if (!n) return -ENOMEM;
        b->args = n;
        b->args_cap = nc;
    }
    size_t need = 0;
    for (uint32_t i = 0; i < argc; i++) need += argv[i].blob ? 0 : argv[i].len;
    if (kv_out_reserve(&b->bytes, need) < 0) return -ENOMEM;
    kv_op_t *op = &b->ops[b->nops++];
    *op = (kv_op_t){.seq = seq, .part = part, .argc = argc, .arg0 = b->nargs};
    for (uint32_t i = 0; i < argc; i++) {
        kv_barg_t *a = &b->args[b->nargs++];
        a->len = argv[i].len;
        a->blob = argv[i].blob;
        argv[i].blob = NULL;
        a->off = b->bytes.len;
        if (!a->blob) {
            memcpy(b->bytes.buf + b->bytes.len, argv[i].ptr, argv[i].len);
            b->bytes.len += argv[i].len;
        }
    }
    return 0;
}

/* ==== shard actor ======================================================== */

/* The gather buffer of this worker's connections (conn_pump): filled and
 * handed to ax_tcp_send, which copies it, within one behaviour, so one per
 * worker serves them all.  Allocated and touched by the worker's shard at
 * init (so the first clients do not fault it in), freed at its fini; a
 * worker without a shard (more than KV_MAX_SHARDS workers) leaves it NULL
 * and its connections use a buffer of their own. */
static _Thread_local kv_out_t *kv_gather_scratch;

typedef struct kv_shard {
    kv_server_t *srv;
    kv_store_t store;
    uint64_t timer;
    kv_arg_t *argv; /* scratch for one op */
    uint32_t argv_cap;
} kv_shard_t;

typedef struct kv_shard_arg {
    kv_server_t *srv;
    uint32_t index;
} kv_shard_arg_t;

static void shard_init(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    kv_shard_t *sh = state;
    kv_shard_arg_t a;
    memcpy(&a, arg, arg_len < sizeof(a) ? arg_len : sizeof(a));
    sh->srv = a.srv;
    kv_out_t *g = malloc(sizeof(*g));
    if (g) {
        kv_out_init(g);
        if (kv_out_reserve(g, KV_SEND_CHUNK) == 0) {
            memset(g->buf, 0, g->cap);
            kv_gather_scratch = g;
        } else {
            free(g);
        }
    }
    /* The blobs received chunks are copied into (KV_RECV_BUF, an arena
     * class) come from this worker's arena, which reuses its blocks and
     * never returns them: carve and touch a ring's worth now (1 MiB), so
     * the first burst of clients does not fault them in while other
     * clients' requests wait behind it (issue 10 item 17). */
    void *warm[KV_RECV_WARM];
    uint32_t nwarm = 0;
    while (nwarm < KV_RECV_WARM && (warm[nwarm] = ax_blob_alloc(ctx, KV_RECV_BUF)) != NULL)
        memset(warm[nwarm++], 0, KV_RECV_BUF);
    while (nwarm) ax_blob_free(ctx, warm[--nwarm]);
    kv_store_init(&sh->store, a.srv->opt.maxmemory, 0x5bd1e9955bd1e995ull * (a.index + 1));
    int rc = ax_timer_every(ctx, a.srv->opt.sweep_ms, KV_MSG_SWEEP, NULL, 0, &sh->timer);
    if (rc < 0)
        fprintf(stderr, "axon-kv: shard %u: expiry sweep timer failed (%s); expired keys are "
                        "removed only when accessed\n", a.index, strerror(-rc));
}

static void shard_fini(ax_ctx_t *ctx, void *state)
{
    kv_shard_t *sh = state;
    if (sh->timer) ax_timer_cancel(ctx, sh->timer);
    kv_store_fini(&sh->store);
    free(sh->argv);
    if (kv_gather_scratch) {
        kv_out_fini(kv_gather_scratch);
        free(kv_gather_scratch);
        kv_gather_scratch = NULL;
    }
}

static void shard_run(kv_shard_t *sh, kv_batch_t *b)
{
    int64_t now = now_ms();
    for (size_t i = 0; i < b->nops; i++) {
        kv_op_t *op = &b->ops[i];
        if (op->argc > sh->argv_cap) {
            uint32_t nc = sh->argv_cap ? sh->argv_cap : 8;
            while (nc < op->argc) nc *= 2;
            kv_arg_t *n = realloc(sh->argv, nc * sizeof(*n));
            if (!n) { /* answer this op with an error rather than drop it */
                op->rep_off = b->out.len;
                kv_reply_error(&b->out, "ERR out of memory in the shard");
                op->rep_len = b->out.len - op->rep_off;
                continue;
            }
            sh->argv = n;
            sh->argv_cap = nc;
        }
        kv_barg_t *a = &b->args[op->arg0];
        for (uint32_t j = 0; j < op->argc; j++) {
            sh->argv[j].ptr = a[j].blob ? a[j].blob->data : b->bytes.buf + a[j].off;
            sh->argv[j].len = a[j].len;
            sh->argv[j].blob = a[j].blob;
        }
        op->rep_off = b->out.len;
        kv_blob_t *v;
        int rc = 0;
        if (op->argc == 1 && kv_arg_is(&sh->argv[0], "INFO")) {
            /* this shard's counters, summed by the conn (K_INFO) */
            char line[128];
            int n = snprintf(line, sizeof(line), "%zu %zu %" PRIu64 " %" PRIu64 "\n",
                             kv_store_dbsize(&sh->store, now), sh->store.expires, sh->store.expired_total,
                             sh->store.used);
            rc = kv_out_append(&b->out, line, (size_t)n);
        } else if (op->argc == 2 && kv_arg_is(&sh->argv[0], "GET")) { /* the hot path, one lookup */
            if (kv_store_get(&sh->store, sh->argv[1].ptr, sh->argv[1].len, now, &v) < 0)
                rc = kv_reply_null(&b->out);
            else if (v->len >= KV_REF_REPLY)
                op->rep_blob = kv_blob_ref(v); /* copied (once) by the conn, or queued as is */
            else
                rc = kv_reply_bulk(&b->out, v->data, v->len);
        } else {
            rc = kv_store_exec(&sh->store, op->argc, sh->argv, now, &b->out);
        }
        if (rc < 0) {
            b->out.len = op->rep_off;
            kv_reply_error(&b->out, "ERR out of memory in the shard");
        }
        op->rep_len = b->out.len - op->rep_off;
        /* values the store took are its own now; drop the rest early */
        for (uint32_t j = 0; j < op->argc; j++) {
            if (a[j].blob && !sh->argv[j].blob) a[j].blob = NULL;
            kv_blob_unref(a[j].blob);
            a[j].blob = NULL;
        }
    }
}

static void shard_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    kv_shard_t *sh = state;
    if (msg->type == KV_MSG_BATCH) {
        kv_batch_t *b = (kv_batch_t *)(uintptr_t)msg->payload.u64[0];
        shard_run(sh, b);
        int rc = ax_send_u64(ctx, b->conn, KV_MSG_DONE, (uint64_t)(uintptr_t)b);
        if (rc < 0) /* the conn waits for it forever; nothing better to do than say so */
            fprintf(stderr, "axon-kv: shard: returning a batch failed (%s); its connection will hang\n",
                    strerror(-rc));
    } else if (msg->type == KV_MSG_SWEEP) {
        /* Bounded work per tick: a few rounds while they keep finding many
         * expired keys (the Redis active-expiry idea), then yield. */
        int64_t now = now_ms();
        uint32_t slots = sh->srv->opt.sweep_slots;
        for (int round = 0; round < 4; round++)
            if (kv_store_sweep(&sh->store, now, slots) < slots / 4) break;
    }
}

/* ==== connection actor =================================================== */

enum { P_EMPTY = 0, P_WAIT, P_READY };
enum { K_SINGLE = 0, K_OWN, K_SUM, K_ALLOK, K_ARRAY, K_INFO };
#define KV_INFO_FIELDS 4 /* keys, keys with a deadline, expired so far, used bytes */

typedef struct kv_pend {
    uint8_t state, kind, close_after, has_err;
    uint32_t parts_left, nparts;
    kv_batch_t *batch; /* K_SINGLE: reply in batch->out */
    size_t off, len;
    kv_blob_t *blob;   /* K_SINGLE: big GET value */
    kv_out_t own;      /* K_OWN and combined replies */
    uint64_t bytes;    /* what this slot counts in kv_conn_t.pend_bytes */
    size_t *frag;      /* K_ARRAY: (offset, length) of each part in own */
    int64_t sum;
    int64_t info[KV_INFO_FIELDS]; /* K_INFO: sums over shards */
} kv_pend_t;

/* A piece of output waiting for the send window: owned bytes, or a value
 * referenced (not copied) and sent as a bulk reply: hdr ("$<len>\r\n"),
 * the blob's bytes, "\r\n".  len counts every byte the client gets. */
typedef struct kv_seg {
    char *buf;       /* owned bytes, or NULL */
    kv_blob_t *blob; /* or a value, referenced */
    size_t len;
    uint8_t hlen;
    char hdr[23];    /* '$', at most 20 digits, CRLF */
} kv_seg_t;

typedef struct kv_in {
    void *blob; /* ax_blob_alloc'ed: the message's own, kept (ax_msg_keep_blob) */
    size_t len;
} kv_in_t;

typedef struct kv_conn {
    kv_server_t *srv;
    ax_conn_t c;
    kv_resp_parser_t parser;
    kv_pend_t *ring;
    uint64_t ring_cap, next_seq, next_emit;
    kv_batch_t **cur; /* per shard, the batch being filled */
    kv_batch_t *spare[4]; /* returned batches kept for reuse: saves ~5 mallocs a batch */
    kv_batch_t *out_list; /* batches at a shard (or in a message) */
    uint32_t nspare;
    kv_out_t out;
    uint32_t batches_out, sends_pending;
    uint64_t inflight;  /* bytes handed to ax_tcp_send, not yet reported sent */
    kv_seg_t *segs;     /* output waiting for the window, a ring */
    kv_out_t gather;    /* small queued pieces copied together for one send */
    uint32_t seg_cap, seg_head, seg_n;
    size_t seg_off;     /* bytes of the head segment already handed over */
    uint64_t seg_bytes, seg_owned_bytes; /* queued: all, and copies only */
    uint64_t pend_bytes; /* slots not emitted yet: estimates in flight, sizes ready */
    uint64_t est_out;    /* the estimates of the slots still waiting for shards */
    uint8_t closing;     /* parse no more */
    uint8_t drain_close; /* close once every reply so far is sent */
    uint8_t peer_eof, close_sent, closed, paused;
    uint8_t rx_paused;   /* the socket is not read (ax_tcp_recv_pause) */
    uint32_t window;     /* send window, KV_SEND_WINDOW_MIN..KV_SEND_WINDOW */
    uint64_t win_sent;   /* bytes the kernel took since the window last grew */
    /* Received chunks kept as they came (the io layer's blobs) while parsing
     * is paused with KV_RX_HIGH bytes already in the parser: fed to it as
     * parsing consumes its input.  Copying them into the parser instead grew
     * its buffer (doubling, into fresh pages) to hold everything received
     * before the socket pause took effect, ~1 MiB per pipelining client. */
    kv_in_t *inq;        /* a ring of inq_cap (a power of two) */
    uint32_t inq_cap, inq_head, inq_n;
    uint64_t inq_bytes;
} kv_conn_t;

typedef struct kv_conn_arg {
    kv_server_t *srv;
    ax_conn_t c;
} kv_conn_arg_t;

static void conn_start_close(ax_ctx_t *ctx, kv_conn_t *k, const char *why)
{
    k->closing = 1;
    if (k->close_sent) return;
    if (why && k->srv->opt.verbose) fprintf(stderr, "axon-kv: closing connection: %s\n", why);
    k->close_sent = 1;
    if (ax_tcp_close(ctx, k->c, 0) < 0) k->closed = 1; /* already gone: no AX_IO_CLOSED will come */
}

/* Queue owned bytes (buf, len) or a reference to a value (blob, sent as a
 * bulk reply; len is ignored). */
static int seg_push(kv_conn_t *k, char *buf, kv_blob_t *blob, size_t len)
{
    if (k->seg_n == k->seg_cap) {
        uint32_t nc = k->seg_cap ? k->seg_cap * 2 : 8;
        kv_seg_t *n = malloc(nc * sizeof(*n));
        if (!n) return -ENOMEM;
        for (uint32_t i = 0; i < k->seg_n; i++) n[i] = k->segs[(k->seg_head + i) & (k->seg_cap - 1)];
        free(k->segs);
        k->segs = n;
        k->seg_cap = nc;
        k->seg_head = 0;
    }
    kv_seg_t *sg = &k->segs[(k->seg_head + k->seg_n++) & (k->seg_cap - 1)];
    *sg = (kv_seg_t){.buf = buf, .blob = blob, .len = len};
    if (blob) {
        sg->hdr[0] = '$';
        size_t n = 1 + kv_fmt_i64(sg->hdr + 1, (int64_t)blob->len);
        sg->hdr[n++] = '\r';
        sg->hdr[n++] = '\n';
        sg->hlen = (uint8_t)n;
        sg->len = len = n + blob->len + 2;
    }
    k->seg_bytes += len;
    if (buf) k->seg_owned_bytes += len;
    return 0;
}

static void seg_pop(kv_conn_t *k)
{
    kv_seg_t *sg = &k->segs[k->seg_head];
    k->seg_bytes -= sg->len;
    if (sg->buf) k->seg_owned_bytes -= sg->len;
    free(sg->buf);
    kv_blob_unref(sg->blob);
    k->seg_head = (k->seg_head + 1) & (k->seg_cap - 1);
    k->seg_n--;
    k->seg_off = 0;
}

/* Everything this connection holds for its client, in bytes (see KV_EST_GET). */
static uint64_t conn_backlog(const kv_conn_t *k)
{
    return k->pend_bytes + k->out.len + k->seg_bytes + k->inflight;
}

/* Set what slot p counts in pend_bytes. */
static void pend_account(kv_conn_t *k, kv_pend_t *p, uint64_t bytes)
{
    k->pend_bytes = k->pend_bytes - p->bytes + bytes;
    p->bytes = bytes;
}

/* The contiguous bytes of the head segment at seg_off: a piece of owned
 * bytes, or of a referenced value's header, bytes or CRLF. */
static const char *seg_piece(const kv_conn_t *k, size_t *n)
{
    const kv_seg_t *sg = &k->segs[k->seg_head];
    size_t off = k->seg_off;
    if (!sg->blob) {
        *n = sg->len - off;
        return sg->buf + off;
    }
    if (off < sg->hlen) {
        *n = sg->hlen - off;
        return sg->hdr + off;
    }
    off -= sg->hlen;
    if (off < sg->blob->len) {
        *n = sg->blob->len - off;
        return sg->blob->data + off;
    }
    off -= sg->blob->len;
    *n = 2 - off;
    return "\r\n" + off;
}

static void seg_advance(kv_conn_t *k, size_t n)
{
    k->seg_off += n;
    if (k->seg_off == k->segs[k->seg_head].len) seg_pop(k);
}

/* Hand queued output to the io layer while the window has room, in sends of
 * up to KV_SEND_CHUNK: a long piece straight from its buffer or value,
 * short ones (headers, replies, values under KV_GATHER_MAX) gathered. */
static void conn_pump(ax_ctx_t *ctx, kv_conn_t *k)
{
    size_t chunk = k->window / 2 < KV_SEND_CHUNK ? k->window / 2 : KV_SEND_CHUNK;
    while (k->seg_n && k->inflight < k->window && !k->close_sent) {
        size_t n, direct = 0;
        const char *src = seg_piece(k, &n);
        if (n >= KV_GATHER_MAX) {
            if (n > chunk) n = chunk;
            direct = n; /* the segment is popped after the call: it owns src */
        } else {
            /* The worker's scratch (ax_tcp_send copies it) when there is
             * one, so a connection does not fault in a buffer of its own. */
            kv_out_t *g = kv_gather_scratch ? kv_gather_scratch : &k->gather;
            g->len = 0;
            if (kv_out_reserve(g, chunk) < 0) {
                conn_start_close(ctx, k, "out of memory sending output");
                return;
            }
            while (k->seg_n && g->len < chunk) {
                const char *p = seg_piece(k, &n);
                if (n >= KV_GATHER_MAX && g->len) break; /* goes out by itself next */
                if (n > chunk - g->len) n = chunk - g->len;
                memcpy(g->buf + g->len, p, n);
                g->len += n;
                seg_advance(k, n);
            }
            src = g->buf;
            n = g->len;
        }
        int rc = ax_tcp_send(ctx, k->c, src, n, 0); /* copies */
        if (rc < 0) {
            conn_start_close(ctx, k, "send failed");
            return;
        }
        if (direct) seg_advance(k, direct);
        k->inflight += n;
        k->sends_pending++;
    }
    if (!k->seg_n) kv_out_fini(&k->gather); /* 1 MiB: only while output waits */
}

static void conn_flush(ax_ctx_t *ctx, kv_conn_t *k)
{
    if (!k->out.len || k->close_sent) {
        k->out.len = 0;
        return;
    }
    if (k->seg_n == 0 && k->inflight + k->out.len <= k->window) {
        /* the common case: straight out, the io layer copies */
        int rc = ax_tcp_send(ctx, k->c, k->out.buf, k->out.len, 0);
        if (rc < 0) {
            conn_start_close(ctx, k, "send failed");
            k->out.len = 0;
            return;
        }
        k->inflight += k->out.len;
        k->sends_pending++;
        k->out.len = 0;
        if (k->out.cap > 1u << 20) kv_out_fini(&k->out); /* a big reply passed: give it back */
        return;
    }
    /* queue the buffer itself (no copy) and pump what the window allows */
    if (seg_push(k, k->out.buf, NULL, k->out.len) < 0) {
        conn_start_close(ctx, k, "out of memory queueing output");
        return;
    }
    kv_out_init(&k->out);
    /* Only a reply far beyond its estimate (an MGET of big values) can get
     * here: parsing stopped at max-output-bytes long before. */
    if (k->seg_owned_bytes > k->srv->opt.max_out_bytes + KV_BACKLOG_CLOSE) {
        conn_start_close(ctx, k, "client does not read its replies (max-output-bytes + 512 MiB queued)");
        return;
    }
    conn_pump(ctx, k);
}

/* Keep a received chunk for later (see kv_conn_t.inq): the message's blob
 * itself, or a copy if it came without one.  0 or -ENOMEM. */
static int inq_push(ax_ctx_t *ctx, kv_conn_t *k, const ax_msg_t *msg)
{
    size_t len = ax_msg_len(msg);
    if (!len) return 0;
    if (k->inq_n == k->inq_cap) {
        uint32_t nc = k->inq_cap ? k->inq_cap * 2 : 16;
        kv_in_t *n = malloc(nc * sizeof(*n));
        if (!n) return -ENOMEM;
        for (uint32_t i = 0; i < k->inq_n; i++) n[i] = k->inq[(k->inq_head + i) & (k->inq_cap - 1)];
        free(k->inq);
        k->inq = n;
        k->inq_cap = nc;
        k->inq_head = 0;
    }
    void *b = ax_msg_keep_blob(ctx, msg);
    if (!b) {
        b = ax_blob_alloc(ctx, len);
        if (!b) return -ENOMEM;
        memcpy(b, ax_msg_data(msg), len);
    }
    k->inq[(k->inq_head + k->inq_n++) & (k->inq_cap - 1)] = (kv_in_t){b, len};
    k->inq_bytes += len;
    return 0;
}

/* Feed the oldest kept chunk to the parser.  0 or -ENOMEM (the chunk stays). */
static int inq_feed(ax_ctx_t *ctx, kv_conn_t *k)
{
    kv_in_t *in = &k->inq[k->inq_head];
    if (kv_resp_feed(&k->parser, in->blob, in->len) < 0) return -ENOMEM;
    ax_blob_free(ctx, in->blob);
    k->inq_bytes -= in->len;
    k->inq_head = (k->inq_head + 1) & (k->inq_cap - 1);
    k->inq_n--;
    return 0;
}

/* Bytes received and not parsed yet: in the parser and kept. */
static uint64_t conn_unparsed(const kv_conn_t *k)
{
    return kv_resp_pending_bytes(&k->parser) + k->inq_bytes;
}

/* A connection whose parsing is paused (at a bound, or for a round of
 * batches out) stops reading its socket once KV_RX_HIGH bytes wait
 * unparsed, and reads again below KV_RX_LOW: the kernel's buffers fill and
 * TCP flow control holds the client back, instead of its whole pipeline
 * piling up in the parser.  Paused parsing resumes on replies coming back
 * or being sent, never on input, so this cannot deadlock the server; a
 * client that writes its whole pipeline before reading any reply blocks in
 * its write once its replies pass max-output-bytes (see docs/kv.md). */
static void conn_rx_update(ax_ctx_t *ctx, kv_conn_t *k)
{
    if (k->close_sent) return;
    uint64_t unparsed = conn_unparsed(k);
    bool bound = !k->closing && k->paused && unparsed >= (k->rx_paused ? KV_RX_LOW : KV_RX_HIGH);
    if (bound && !k->rx_paused) {
        int rc = ax_tcp_recv_pause(ctx, k->c);
        if (rc == 0) k->rx_paused = 1;
        /* -EBUSY: tried again at the next message; others: the read is over anyway */
    } else if (!bound && k->rx_paused) {
        int rc = ax_tcp_recv_resume(ctx, k->c);
        if (rc == 0) {
            k->rx_paused = 0;
        } else if (rc != -EBUSY && rc != -ENOMEM) {
            conn_start_close(ctx, k, "could not resume reading");
        } else if (ax_timer_after(ctx, 1, KV_MSG_RX_RETRY, NULL, 0, NULL) < 0) {
            /* no message may come to retry at: without a timer, give up */
            conn_start_close(ctx, k, "could not resume reading (no memory)");
        }
    }
}

static void conn_check_done(ax_ctx_t *ctx, kv_conn_t *k)
{
    bool idle = k->next_emit == k->next_seq && k->batches_out == 0;
    if (!k->close_sent && idle && !k->paused && (k->drain_close || k->peer_eof) && k->sends_pending == 0 &&
        k->seg_n == 0)
        conn_start_close(ctx, k, NULL);
    if (k->closed && k->batches_out == 0) ax_stop_self(ctx);
}

/* A slot for the next sequence number, growing the ring when it is full. */
static kv_pend_t *pend_new(kv_conn_t *k)
{
    if (k->next_seq - k->next_emit == k->ring_cap) {
        uint64_t nc = k->ring_cap ? k->ring_cap * 2 : 64;
        kv_pend_t *n = calloc(nc, sizeof(*n));
        if (!n) return NULL;
        for (uint64_t s = k->next_emit; s < k->next_seq; s++) n[s & (nc - 1)] = k->ring[s & (k->ring_cap - 1)];
        free(k->ring);
        k->ring = n;
        k->ring_cap = nc;
    }
    kv_pend_t *p = &k->ring[k->next_seq & (k->ring_cap - 1)];
    kv_out_t keep = p->own; /* reuse the slot's buffer */
    *p = (kv_pend_t){.own = keep};
    p->own.len = 0;
    return p;
}

/* Where an immediate reply goes: straight to the output when nothing is
 * waiting before it (the common case), else into its own slot. */
static kv_out_t *imm_begin(kv_conn_t *k, kv_pend_t **slot)
{
    *slot = NULL;
    if (k->next_emit == k->next_seq) return &k->out;
    *slot = pend_new(k);
    if (!*slot) return NULL;
    (*slot)->kind = K_OWN;
    return &(*slot)->own;
}

static void imm_end(kv_conn_t *k, kv_pend_t *slot, int close_after)
{
    if (!slot) { /* written to out: emitted already */
        k->next_seq++;
        k->next_emit++;
        if (close_after) k->drain_close = 1;
        return;
    }
    slot->state = P_READY;
    slot->close_after = (uint8_t)close_after;
    pend_account(k, slot, slot->own.len);
    k->next_seq++;
}

/* Done with a batch: keep a few small ones for the next reads. */
static void batch_done(kv_conn_t *k, kv_batch_t *b)
{
    if (k->nspare < 4 && b->bytes.cap <= 65536 && b->out.cap <= 65536 && b->ops_cap <= 1024) {
        batch_reset(b);
        k->spare[k->nspare++] = b;
    } else {
        batch_free(b);
    }
}

static kv_batch_t *cur_batch(kv_conn_t *k, uint32_t shard, ax_ref_t self)
{
    if (!k->cur[shard] && k->nspare) {
        k->cur[shard] = k->spare[--k->nspare];
    } else if (!k->cur[shard]) {
        k->cur[shard] = calloc(1, sizeof(kv_batch_t));
        if (k->cur[shard]) k->cur[shard]->conn = self;
    }
    return k->cur[shard];
}

static void out_link(kv_conn_t *k, kv_batch_t *b)
{
    b->prev = NULL;
    b->next = k->out_list;
    if (k->out_list) k->out_list->prev = b;
    k->out_list = b;
    k->batches_out++;
}

static void out_unlink(kv_conn_t *k, kv_batch_t *b)
{
    if (b->prev) b->prev->next = b->next;
    else k->out_list = b->next;
    if (b->next) b->next->prev = b->prev;
    b->prev = b->next = NULL;
    k->batches_out--;
}

static void send_batches(ax_ctx_t *ctx, kv_conn_t *k)
{
    for (uint32_t s = 0; s < k->srv->nshards; s++) {
        kv_batch_t *b = k->cur[s];
        if (!b) continue;
        k->cur[s] = NULL;
        int rc = ax_send_u64(ctx, k->srv->shards[s], KV_MSG_BATCH, (uint64_t)(uintptr_t)b);
        if (rc < 0) {
            /* Answer its ops with an error so the order machinery moves on. */
            fprintf(stderr, "axon-kv: sending a batch to shard %u failed (%s)\n", s, strerror(-rc));
            for (size_t i = 0; i < b->nops; i++) {
                b->ops[i].rep_off = b->out.len;
                kv_reply_error(&b->out, "ERR shard unavailable");
                b->ops[i].rep_len = b->out.len - b->ops[i].rep_off;
            }
            out_link(k, b);
            ax_send_u64(ctx, ax_self(ctx), KV_MSG_DONE, (uint64_t)(uintptr_t)b);
            continue;
        }
        out_link(k, b);
    }
}

/* Route a command: one op per key to the keys' shards.  *est: what its
 * reply may cost (counted in pend_bytes until the reply is back). */
static int route(ax_ctx_t *ctx, kv_conn_t *k, uint32_t argc, kv_arg_t *argv, uint64_t *est)
{
    kv_server_t *srv = k->srv;
    const kv_arg_t *c = &argv[0];
    kv_pend_t *p = pend_new(k);
    if (!p) return -ENOMEM;
    uint64_t seq = k->next_seq;
    ax_ref_t self = ax_self(ctx);
    p->state = P_WAIT;
    int rc = 0;
    kv_arg_t op[3];
    if (kv_arg_is(c, "DBSIZE") || kv_arg_is(c, "FLUSHALL") || kv_arg_is(c, "FLUSHDB") || kv_arg_is(c, "INFO")) {
        p->kind = kv_arg_is(c, "DBSIZE") ? K_SUM : kv_arg_is(c, "INFO") ? K_INFO : K_ALLOK;
        kv_arg_t info = {"INFO", 4, NULL};
        if (p->kind == K_INFO) argc = 1, argv = &info; /* sections are not told apart */
        p->nparts = p->parts_left = srv->nshards;
        for (uint32_t s = 0; s < srv->nshards && rc == 0; s++) {
            kv_batch_t *b = cur_batch(k, s, self);
            rc = b ? batch_add(b, seq, s, argc, argv) : -ENOMEM;
        }
    } else if (argc > 2 && (kv_arg_is(c, "DEL") || kv_arg_is(c, "EXISTS") || kv_arg_is(c, "MGET"))) {
        p->kind = kv_arg_is(c, "MGET") ? K_ARRAY : K_SUM;
        p->nparts = p->parts_left = argc - 1;
        if (p->kind == K_ARRAY) {
            p->frag = calloc((size_t)p->nparts * 2, sizeof(size_t));
            if (!p->frag) rc = -ENOMEM;
        }
        op[0] = p->kind == K_ARRAY ? (kv_arg_t){"GET", 3, NULL} : *c;
        for (uint32_t i = 1; i < argc && rc == 0; i++) {
            op[1] = argv[i];
            kv_batch_t *b = cur_batch(k, kv_shard_of(srv, argv[i].ptr, argv[i].len), self);
            rc = b ? batch_add(b, seq, i - 1, 2, op) : -ENOMEM;
        }
    } else if (argc > 3 && kv_arg_is(c, "MSET")) {
        p->kind = K_ALLOK;
        p->nparts = p->parts_left = (argc - 1) / 2;
        op[0] = (kv_arg_t){"SET", 3, NULL};
        for (uint32_t i = 1; i + 1 < argc && rc == 0; i += 2) {
            op[1] = argv[i];
            op[2] = argv[i + 1];
            kv_batch_t *b = cur_batch(k, kv_shard_of(srv, argv[i].ptr, argv[i].len), self);
            rc = b ? batch_add(b, seq, (i - 1) / 2, 3, op) : -ENOMEM;
            argv[i + 1].blob = op[2].blob; /* NULL if moved */
        }
    } else { /* one key: the shard runs the command as it came */
        p->kind = K_SINGLE;
        p->nparts = p->parts_left = 1;
        kv_batch_t *b = cur_batch(k, kv_shard_of(srv, argv[1].ptr, argv[1].len), self);
        rc = b ? batch_add(b, seq, 0, argc, argv) : -ENOMEM;
    }
    /* Count the slot even on failure: ops already queued reference it and
     * come back; the slot is released (with their batches) at fini. */
    *est = p->kind == K_ARRAY                              ? (uint64_t)p->nparts * KV_EST_GET
           : p->kind == K_INFO                             ? KV_EST_INFO
           : p->kind == K_SINGLE && kv_arg_is(c, "GET")    ? KV_EST_GET
                                                           : KV_EST_SMALL;
    pend_account(k, p, *est);
    k->est_out += *est;
    k->next_seq++;
    return rc; /* on -ENOMEM the connection closes */
}

/* Commands this server knows, with the ones the conn routes to shards. */
static const char *const kv_keyed_names[] = {"GET",    "SET",  "DEL",  "EXISTS", "INCR",    "DECR", "INCRBY",
                                             "DECRBY", "MGET", "MSET", "EXPIRE", "PEXPIRE", "TTL",  "PTTL", NULL};

static int is_keyed(const kv_arg_t *c)
{
    for (int i = 0; kv_keyed_names[i]; i++)
        if (kv_arg_is(c, kv_keyed_names[i])) return 1;
    return 0;
}

/* One command.  Returns 0, or -ENOMEM (the connection is closed).  *est:
 * the estimated reply bytes of a routed command (0 when answered here). */
static int dispatch(ax_ctx_t *ctx, kv_conn_t *k, uint32_t argc, kv_arg_t *argv, uint64_t *est)
{
    const kv_arg_t *c = &argv[0];
    *est = 0;
    /* The hot pair first: GET and SET with their arity right. */
    if ((argc == 2 && kv_arg_is(c, "GET")) || (argc >= 3 && kv_arg_is(c, "SET"))) return route(ctx, k, argc, argv, est);
    if (is_keyed(c)) {
        bool ok = argc >= 2;
        if (kv_arg_is(c, "MSET")) ok = argc >= 3 && argc % 2 == 1;
        if (ok) return route(ctx, k, argc, argv, est);
    } else if ((kv_arg_is(c, "DBSIZE") && argc == 1) || kv_arg_is(c, "FLUSHALL") || kv_arg_is(c, "FLUSHDB") ||
               kv_arg_is(c, "INFO")) {
        return route(ctx, k, argc, argv, est);
    }
    kv_pend_t *slot;
    kv_out_t *o = imm_begin(k, &slot);
    if (!o) return -ENOMEM;
    int rc, close_after = 0;
    if (is_keyed(c) || kv_arg_is(c, "DBSIZE")) {
        rc = kv_reply_arity(o, c);
    } else if (kv_arg_is(c, "PING")) {
        rc = argc == 1 ? kv_out_append(o, "+PONG\r\n", 7)
             : argc == 2 ? kv_reply_bulk(o, argv[1].ptr, argv[1].len)
                         : kv_reply_arity(o, c);
    } else if (kv_arg_is(c, "ECHO")) {
        rc = argc == 2 ? kv_reply_bulk(o, argv[1].ptr, argv[1].len) : kv_reply_arity(o, c);
    } else if (kv_arg_is(c, "QUIT")) {
        rc = kv_out_append(o, "+OK\r\n", 5);
        close_after = 1;
        k->closing = 1;
    } else if (kv_arg_is(c, "COMMAND")) {
        /* No command table to describe: an empty list (COUNT: the number we know). */
        static const char *const others[] = {"PING", "ECHO", "QUIT", "COMMAND", "CONFIG", "SELECT",
                                             "DBSIZE", "FLUSHALL", "FLUSHDB", "INFO"};
        int64_t nkeyed = 0;
        while (kv_keyed_names[nkeyed]) nkeyed++;
        if (argc >= 2 && kv_arg_is(&argv[1], "COUNT"))
            rc = kv_reply_int(o, nkeyed + (int64_t)(sizeof(others) / sizeof(others[0])));
        else rc = kv_reply_array(o, 0);
    } else if (kv_arg_is(c, "CONFIG")) {
        if (argc == 3 && kv_arg_is(&argv[1], "GET") && kv_arg_is(&argv[2], "SAVE"))
            rc = kv_out_append(o, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n", 20); /* no persistence */
        else if (argc == 3 && kv_arg_is(&argv[1], "GET") && kv_arg_is(&argv[2], "APPENDONLY"))
            rc = kv_out_append(o, "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n", 29);
        else if (argc >= 2 && kv_arg_is(&argv[1], "GET")) rc = kv_reply_array(o, 0); /* unknown: nothing */
        else if (argc >= 2 && (kv_arg_is(&argv[1], "SET") || kv_arg_is(&argv[1], "RESETSTAT")))
            rc = kv_out_append(o, "+OK\r\n", 5); /* accepted and ignored, as benchmarks expect */
        else rc = kv_reply_error(o, "ERR unknown CONFIG subcommand; try CONFIG GET");
    } else if (kv_arg_is(c, "SELECT")) {
        /* One database: 0.  As Redis: a non-integer index is "not an
         * integer", a negative or too large one "out of range"; 1..15,
         * which Redis has, are refused here with the same error. */
        int64_t db;
        if (argc != 2) rc = kv_reply_arity(o, c);
        else if (kv_parse_i64(argv[1].ptr, argv[1].len, &db) < 0) rc = kv_reply_error(o, KV_NOTINT_MSG);
        else rc = db == 0 ? kv_out_append(o, "+OK\r\n", 5) : kv_reply_error(o, "ERR DB index is out of range");
    } else {
        rc = kv_reply_unknown(o, argc, argv);
    }
    if (rc < 0) return rc;
    imm_end(k, slot, close_after);
    return 0;
}

static void conn_process(ax_ctx_t *ctx, kv_conn_t *k)
{
    uint32_t max_pipe = k->srv->opt.max_pipeline;
    uint64_t max_out = k->srv->opt.max_out_bytes;
    k->paused = 0;
    while (!k->closing) {
        /* Resumed when replies drain (KV_MSG_DONE, AX_IO_SENT).  est_out
         * > 0 means batches are out: their return (KV_MSG_DONE) resumes. */
        if (k->next_seq - k->next_emit >= max_pipe || conn_backlog(k) >= max_out || k->est_out >= KV_ROUND_BYTES) {
            k->paused = 1;
            break;
        }
        uint32_t argc;
        kv_arg_t *argv;
        int rc = kv_resp_next(&k->parser, &argc, &argv);
        if (rc == 0 && k->inq_n) { /* more input was kept aside: feed it */
            if (inq_feed(ctx, k) < 0) {
                conn_start_close(ctx, k, "out of memory buffering a request");
                break;
            }
            continue;
        }
        if (rc == 0) break;
        if (rc == 1) {
            /* Big arguments move from the parser into the batch. */
            for (uint32_t i = 0; i < argc; i++)
                if (argv[i].blob) argv[i].blob = kv_resp_take_blob(&k->parser, i);
            uint64_t est;
            rc = dispatch(ctx, k, argc, argv, &est);
            for (uint32_t i = 0; i < argc; i++) kv_blob_unref(argv[i].blob); /* not moved */
            if (rc < 0) {
                conn_start_close(ctx, k, "out of memory");
                break;
            }
            continue;
        }
        /* Protocol error: answer it in order, then close (as Redis does). */
        kv_pend_t *slot;
        kv_out_t *o = imm_begin(k, &slot);
        if (o) kv_reply_errorf(o, "ERR %s", kv_resp_errmsg(&k->parser));
        if (o) imm_end(k, slot, 1);
        k->closing = 1;
        if (!o) conn_start_close(ctx, k, "out of memory");
        break;
    }
    send_batches(ctx, k);
}

static void slot_release(kv_conn_t *k, kv_pend_t *p)
{
    pend_account(k, p, 0);
    if (p->batch && --p->batch->unemitted == 0) batch_done(k, p->batch);
    p->batch = NULL;
    kv_blob_unref(p->blob);
    p->blob = NULL;
    free(p->frag);
    p->frag = NULL;
    if (p->own.cap > 4096) kv_out_fini(&p->own);
    p->own.len = 0;
    p->state = P_EMPTY;
}

/* Copy every reply that is next in order to the output. */
static void conn_emit(ax_ctx_t *ctx, kv_conn_t *k)
{
    while (k->next_emit < k->next_seq) {
        kv_pend_t *p = &k->ring[k->next_emit & (k->ring_cap - 1)];
        if (p->state != P_READY) break;
        int rc = 0;
        if (p->kind == K_SINGLE && p->blob && p->blob->len < KV_BIG_REPLY && k->seg_n == 0 &&
            k->inflight < k->window) {
            rc = kv_reply_bulk(&k->out, p->blob->data, p->blob->len); /* the one copy */
        } else if (p->kind == K_SINGLE && p->blob) {
            /* Sent from the value's blob, never copied here: a big value
             * always (in window-sized pieces), a smaller one when output
             * waits for the window anyway, so a client that does not read
             * costs a reference per reply, not a copy.  What is in the
             * output before it goes first. */
            conn_flush(ctx, k);
            if (!k->close_sent) {
                if (seg_push(k, NULL, p->blob, 0) < 0) conn_start_close(ctx, k, "out of memory");
                else p->blob = NULL; /* the queue holds the reference now */
                conn_pump(ctx, k);
            }
        } else if (p->kind == K_SINGLE) {
            rc = kv_out_append(&k->out, p->batch->out.buf + p->off, p->len);
        } else {
            rc = kv_out_append(&k->out, p->own.buf, p->own.len);
        }
        if (rc < 0) conn_start_close(ctx, k, "out of memory for replies");
        if (p->close_after) k->drain_close = 1;
        slot_release(k, p);
        k->next_emit++;
        if (k->out.len >= KV_FLUSH_BYTES) conn_flush(ctx, k);
    }
}

/* A part's reply fragment into a combined slot. */
static void absorb_part(kv_pend_t *p, uint32_t part, const char *r, size_t n)
{
    if (p->kind == K_INFO) {
        char tmp[128];
        size_t m = n < sizeof(tmp) - 1 ? n : sizeof(tmp) - 1;
        memcpy(tmp, r, m);
        tmp[m] = 0;
        char *cur = tmp;
        for (int i = 0; i < KV_INFO_FIELDS; i++) p->info[i] += (int64_t)strtoll(cur, &cur, 10);
    } else if (p->kind == K_SUM) {
        int64_t v;
        if (n >= 3 && r[0] == ':' && kv_parse_i64(r + 1, n - 3, &v) == 0) p->sum += v;
        else if (!p->has_err && kv_out_append(&p->own, r, n) == 0) p->has_err = 1;
    } else if (p->kind == K_ALLOK) {
        if (n && r[0] == '-' && !p->has_err && kv_out_append(&p->own, r, n) == 0) p->has_err = 1;
    } else if (p->kind == K_ARRAY && part < p->nparts) {
        p->frag[2 * part] = p->own.len;
        p->frag[2 * part + 1] = kv_out_append(&p->own, r, n) == 0 ? n : 0;
    }
}

static void finish_combined(kv_pend_t *p)
{
    kv_out_t o;
    kv_out_init(&o);
    int rc = 0;
    if (p->has_err) {
        return; /* own holds the first error */
    } else if (p->kind == K_SUM) {
        rc = kv_reply_int(&o, p->sum);
    } else if (p->kind == K_ALLOK) {
        rc = kv_out_append(&o, "+OK\r\n", 5);
    } else if (p->kind == K_INFO) {
        /* The INFO fields redis-cli and monitoring scripts read first. */
        char text[512];
        int n = snprintf(text, sizeof(text),
                         "# Server\r\nredis_version:7.0.0\r\naxon_kv_shards:%u\r\n"
                         "# Memory\r\nused_memory:%" PRId64 "\r\n"
                         "# Stats\r\nexpired_keys:%" PRId64 "\r\n"
                         "# Keyspace\r\ndb0:keys=%" PRId64 ",expires=%" PRId64 "\r\n",
                         p->nparts, p->info[3], p->info[2], p->info[0], p->info[1]);
        rc = kv_reply_bulk(&o, text, (size_t)n);
    } else {
        rc = kv_reply_array(&o, p->nparts);
        for (uint32_t i = 0; i < p->nparts && rc == 0; i++)
            rc = kv_out_append(&o, p->own.buf + p->frag[2 * i], p->frag[2 * i + 1]);
    }
    if (rc < 0) {
        kv_out_fini(&o);
        p->own.len = 0;
        kv_reply_error(&p->own, "ERR out of memory assembling the reply");
        return;
    }
    kv_out_fini(&p->own);
    p->own = o;
}

static void conn_absorb(kv_conn_t *k, kv_batch_t *b)
{
    for (size_t i = 0; i < b->nops; i++) {
        kv_op_t *op = &b->ops[i];
        kv_pend_t *p = &k->ring[op->seq & (k->ring_cap - 1)];
        if (p->kind == K_SINGLE) {
            p->batch = b;
            p->off = op->rep_off;
            p->len = op->rep_len;
            p->blob = op->rep_blob;
            op->rep_blob = NULL;
            b->unemitted++;
            p->state = P_READY;
            k->est_out -= p->bytes;
            pend_account(k, p, p->len + (p->blob ? p->blob->len + 32 : 0)); /* the estimate, made exact */
            continue;
        }
        if (op->rep_blob && p->kind == K_ARRAY && op->part < p->nparts) {
            /* a value of MGET, by reference: copied once, into the reply */
            p->frag[2 * op->part] = p->own.len;
            p->frag[2 * op->part + 1] = 0;
            size_t before = p->own.len;
            if (kv_reply_bulk(&p->own, op->rep_blob->data, op->rep_blob->len) == 0) {
                p->frag[2 * op->part + 1] = p->own.len - before;
            } else {
                p->own.len = before;
                absorb_part(p, op->part, "-ERR out of memory\r\n", 20);
            }
            kv_blob_unref(op->rep_blob);
            op->rep_blob = NULL;
        } else if (op->rep_blob) { /* not expected: a GET answer in another kind of reply */
            absorb_part(p, op->part, "-ERR internal: unexpected value\r\n", 33);
            kv_blob_unref(op->rep_blob);
            op->rep_blob = NULL;
        } else {
            absorb_part(p, op->part, b->out.buf + op->rep_off, op->rep_len);
        }
        if (--p->parts_left == 0) {
            finish_combined(p);
            p->state = P_READY;
            k->est_out -= p->bytes;
            pend_account(k, p, p->own.len);
        }
    }
    if (b->unemitted == 0) batch_done(k, b);
}

static void conn_init(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    kv_conn_t *k = state;
    kv_conn_arg_t a;
    memcpy(&a, arg, arg_len < sizeof(a) ? arg_len : sizeof(a));
    k->srv = a.srv;
    k->c = a.c;
    k->window = KV_SEND_WINDOW_MIN;
    kv_resp_init(&k->parser, a.srv->opt.max_cmd_bytes);
    k->cur = calloc(a.srv->nshards, sizeof(*k->cur));
    int rc = k->cur ? ax_tcp_recv_start(ctx, k->c, 0) : -ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "axon-kv: starting to read a new connection failed (%s); closing it\n", strerror(-rc));
        conn_start_close(ctx, k, NULL);
    }
}

static void conn_fini(ax_ctx_t *ctx, void *state)
{
    kv_conn_t *k = state;
    kv_resp_fini(&k->parser);
    for (; k->inq_n; k->inq_n--, k->inq_head = (k->inq_head + 1) & (k->inq_cap - 1))
        ax_blob_free(ctx, k->inq[k->inq_head].blob);
    free(k->inq);
    if (k->ring) {
        for (uint64_t s = k->next_emit; s < k->next_seq; s++) slot_release(k, &k->ring[s & (k->ring_cap - 1)]);
        for (uint64_t i = 0; i < k->ring_cap; i++) kv_out_fini(&k->ring[i].own);
    }
    free(k->ring);
    if (k->cur)
        for (uint32_t s = 0; s < k->srv->nshards; s++) batch_free(k->cur[s]);
    free(k->cur);
    for (uint32_t i = 0; i < k->nspare; i++) batch_free(k->spare[i]);
    while (k->seg_n) seg_pop(k);
    free(k->segs);
    /* Batches still out: only at engine shutdown (a conn stops by itself only
     * once all are back).  By the time fini runs then, no behaviour runs on
     * any worker and the messages carrying them were dropped unread
     * (engine/actor.c: ax__worker_shutdown), so nobody else can touch them. */
    while (k->out_list) {
        kv_batch_t *b = k->out_list;
        out_unlink(k, b);
        batch_free(b);
    }
    kv_out_fini(&k->out);
    kv_out_fini(&k->gather);
}

static void conn_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    kv_conn_t *k = state;
    switch (msg->type) {
    case AX_IO_DATA:
        if (k->closing) break;
        /* Paused with enough to parse already: keep the chunk as it is
         * (no copy, no parser growth); in order behind any kept before. */
        if (k->inq_n || (k->paused && kv_resp_pending_bytes(&k->parser) >= KV_PARSE_AHEAD)) {
            if (inq_push(ctx, k, msg) < 0) {
                conn_start_close(ctx, k, "out of memory buffering a request");
                break;
            }
        } else if (kv_resp_feed(&k->parser, ax_msg_data(msg), ax_msg_len(msg)) < 0) {
            conn_start_close(ctx, k, "out of memory buffering a request");
            break;
        }
        if (conn_unparsed(k) > k->srv->opt.max_cmd_bytes + (64u << 20)) {
            conn_start_close(ctx, k, "query buffer past max-cmd-bytes + 64 MiB");
            break;
        }
        conn_process(ctx, k);
        conn_emit(ctx, k);
        if (k->batches_out == 0 || k->out.len >= KV_FLUSH_BYTES) conn_flush(ctx, k);
        break;
    case KV_MSG_DONE: {
        kv_batch_t *b = (kv_batch_t *)(uintptr_t)msg->payload.u64[0];
        out_unlink(k, b);
        if (k->close_sent) { /* replies nobody will read */
            conn_absorb(k, b);
            conn_check_done(ctx, k);
            return;
        }
        conn_absorb(k, b);
        conn_emit(ctx, k);
        if (k->paused) conn_process(ctx, k), conn_emit(ctx, k);
        /* Send once every batch of this read is back: one send per read
         * rather than one per shard (the output copy is cheap, a send is not). */
        if (k->batches_out == 0 || k->out.len >= KV_FLUSH_BYTES) conn_flush(ctx, k);
        break;
    }
    case AX_IO_RECV_END: {
        ax_io_event_t e = ax_io_event(msg);
        k->peer_eof = 1;
        if (e.res < 0 && e.res != -ECANCELED && k->srv->opt.verbose)
            fprintf(stderr, "axon-kv: connection read ended: %s\n", strerror((int)-e.res));
        if (e.res < 0) conn_start_close(ctx, k, NULL);
        break;
    }
    case AX_IO_SENT: {
        ax_io_event_t e = ax_io_event(msg);
        if (k->sends_pending) k->sends_pending--;
        if (e.res < 0 && !k->close_sent) conn_start_close(ctx, k, "send failed (peer gone)");
        if (e.res > 0) {
            k->inflight -= (uint64_t)e.res <= k->inflight ? (uint64_t)e.res : k->inflight;
            k->win_sent += (uint64_t)e.res;
            if (k->window < KV_SEND_WINDOW && k->win_sent >= k->window) { /* a window went out: open up */
                k->window *= 2;
                k->win_sent = 0;
            }
        }
        if (k->sends_pending == 0) k->inflight = 0; /* errors report no count */
        conn_pump(ctx, k);
        if (k->paused && !k->closing && conn_backlog(k) < k->srv->opt.max_out_bytes) {
            conn_process(ctx, k);
            conn_emit(ctx, k);
            if (k->batches_out == 0 || k->out.len >= KV_FLUSH_BYTES) conn_flush(ctx, k);
        }
        break;
    }
    case AX_IO_CLOSED:
        k->closed = 1;
        break;
    default:
        break;
    }
    conn_rx_update(ctx, k);
    conn_check_done(ctx, k);
}

/* ==== listener actor ======================================================= */

typedef struct kv_listener {
    kv_server_t *srv;
    ax_conn_t l;
    uint32_t index;
} kv_listener_t;

static void listener_init(ax_ctx_t *ctx, void *state, const void *arg, size_t arg_len)
{
    (void)ctx;
    kv_listener_t *ls = state;
    kv_shard_arg_t a;
    memcpy(&a, arg, arg_len < sizeof(a) ? arg_len : sizeof(a));
    ls->srv = a.srv;
    ls->index = a.index;
}

static void listener_fini(ax_ctx_t *ctx, void *state)
{
    kv_listener_t *ls = state;
    if (ls->l) ax_tcp_close(ctx, ls->l, 0);
}

static void listener_behaviour(ax_ctx_t *ctx, void *state, const ax_msg_t *msg)
{
    kv_listener_t *ls = state;
    kv_server_t *srv = ls->srv;
    if (msg->type == KV_MSG_LISTEN) {
        uint16_t port = (uint16_t)msg->payload.u64[0];
        int rc = ax_tcp_listen(ctx, srv->opt.bind, port, 0, 0, &ls->l);
        if (rc == 0) rc = ax_tcp_port(ctx, ls->l);
        if (rc < 0) {
            fprintf(stderr, "axon-kv: listening on %s:%u (worker %u) failed: %s\n",
                    srv->opt.bind[0] ? srv->opt.bind : "0.0.0.0", port, ls->index, strerror(-rc));
            int zero = 0;
            atomic_compare_exchange_strong_explicit(&srv->listen_err, &zero, rc, memory_order_relaxed,
                                                    memory_order_relaxed);
        } else {
            /* R1: pairs with the acquire loads in wait_listeners() (main) */
            if (ls->index == 0) atomic_store_explicit(&srv->port, rc, memory_order_release);
        }
        atomic_fetch_add_explicit(&srv->listeners_up, 1u, memory_order_release);
    } else if (msg->type == AX_IO_ACCEPTED) {
        ax_io_event_t e = ax_io_event(msg);
        if (e.res < 0) {
            fprintf(stderr, "axon-kv: accept failed: %s%s\n", strerror((int)-e.res),
                    e.res == -EMFILE ? " (raise ulimit -n)" : "");
            return;
        }
        kv_conn_arg_t a = {srv, e.handle};
        ax_spawn_opts_t o = {.size = sizeof(o), .where = AX_ON_SELF, .init = conn_init, .fini = conn_fini,
                             .arg = &a, .arg_len = sizeof(a)};
        ax_ref_t r;
        int rc = ax_spawn(ctx, conn_behaviour, sizeof(kv_conn_t), &o, &r);
        if (rc < 0) {
            fprintf(stderr, "axon-kv: no actor for a new connection (%s); closing it\n", strerror(-rc));
            ax_tcp_close(ctx, e.handle, 0);
        }
    }
}

/* ==== options and main ===================================================== */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: axon-kv [--port P] [--bind ADDR] [--workers N] [--config FILE]\n"
            "               [--maxmemory BYTES] [-v] [--help]\n"
            "  --port P          TCP port (default 6380; 0: any free port, printed at start)\n"
            "  --bind ADDR       numeric IPv4/IPv6 address (default 127.0.0.1)\n"
            "  --workers N       engine workers = shards (default: one per core)\n"
            "  --config FILE     'key value' lines: port, bind, workers, maxmemory (per shard,\n"
            "                    e.g. 100mb), sweep-interval-ms, sweep-slots, max-pipeline,\n"
            "                    max-cmd-bytes, max-output-bytes (per connection, 64mb),\n"
            "                    engine-spin-us (-1: never; default: 50 when\n"
            "                    the workers leave a CPU free, else never), engine-config\n"
            "                    (an axon config file), verbose\n"
            "  --maxmemory BYTES per-shard memory bound (units b/kb/mb/gb); past it writes get -OOM\n"
            "  -v                log closed connections and their reasons\n"
            "Prints 'axon-kv: ready on ADDR:PORT ...' once it accepts connections; SIGINT or\n"
            "SIGTERM stops it.\n");
}

/* "123", "10mb", "2G": 0 or -EINVAL */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-') return -EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -EINVAL;
    uint64_t mul = 1;
    if (!strcasecmp(end, "") || !strcasecmp(end, "b")) mul = 1;
    else if (!strcasecmp(end, "k") || !strcasecmp(end, "kb")) mul = 1024;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb")) mul = 1024 * 1024;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb")) mul = 1024ull * 1024 * 1024;
    else return -EINVAL;
    if (v > UINT64_MAX / mul) return -EINVAL;
    *out = v * mul;
    return 0;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v;
    char *end;
    errno = 0;
    if (!*s || *s == '-') return -EINVAL;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* Apply one option; returns NULL or what was expected. */
static const char *set_option(kv_options_t *o, const char *key, const char *val)
{
    uint32_t u;
    uint64_t sz;
    if (!strcmp(key, "port")) {
        if (parse_u32(val, 65535, &u) < 0) return "a port number 0..65535";
        o->port = (uint16_t)u;
    } else if (!strcmp(key, "bind")) {
        if (strlen(val) >= sizeof(o->bind)) return "a numeric address";
        snprintf(o->bind, sizeof(o->bind), "%s", val);
    } else if (!strcmp(key, "workers")) {
        if (parse_u32(val, KV_MAX_SHARDS, &u) < 0) return "a worker count 0..256 (0: one per core)";
        o->workers = u;
    } else if (!strcmp(key, "maxmemory")) {
        if (parse_size(val, &sz) < 0) return "a size in bytes, with an optional kb/mb/gb unit";
        o->maxmemory = sz;
    } else if (!strcmp(key, "sweep-interval-ms")) {
        if (parse_u32(val, 60000, &u) < 0 || u == 0) return "milliseconds 1..60000";
        o->sweep_ms = u;
    } else if (!strcmp(key, "sweep-slots")) {
        if (parse_u32(val, 1u << 24, &u) < 0 || u == 0) return "a slot count 1..16777216";
        o->sweep_slots = u;
    } else if (!strcmp(key, "max-pipeline")) {
        if (parse_u32(val, 1u << 24, &u) < 0 || u == 0) return "a command count 1..16777216";
        o->max_pipeline = u;
    } else if (!strcmp(key, "max-output-bytes")) {
        if (parse_size(val, &sz) < 0 || sz < 65536) return "a size >= 64kb";
        o->max_out_bytes = sz;
    } else if (!strcmp(key, "max-cmd-bytes")) {
        if (parse_size(val, &sz) < 0 || sz < 1024) return "a size >= 1kb";
        o->max_cmd_bytes = sz;
    } else if (!strcmp(key, "engine-spin-us")) {
        char *end;
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || *end || end == val || v < -1 || v > 1000000) return "-1 (never spin) or 1..1000000 microseconds";
        o->spin_us = (int32_t)v;
        o->spin_set = 1;
    } else if (!strcmp(key, "engine-config")) {
        if (strlen(val) >= sizeof(o->engine_config)) return "a path shorter than 256 bytes";
        snprintf(o->engine_config, sizeof(o->engine_config), "%s", val);
    } else if (!strcmp(key, "verbose")) {
        if (strcmp(val, "yes") && strcmp(val, "no")) return "yes or no";
        o->verbose = !strcmp(val, "yes");
    } else {
        return "a known key (see axon-kv --help)";
    }
    return NULL;
}

static int load_config(kv_options_t *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "axon-kv: cannot read config file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        if (!*s || *s == '#') continue;
        char *key = s;
        while (*s && *s != ' ' && *s != '\t' && *s != '=') s++;
        char *kend = s;
        while (*s == ' ' || *s == '\t' || *s == '=') s++;
        *kend = 0;
        const char *why = *s ? set_option(o, key, s) : "a value after the key";
        if (why) {
            fprintf(stderr, "axon-kv: %s:%u: %s = %s: expected %s; fix the line or remove it\n", path, lineno,
                    key, s, why);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

static void defaults(kv_options_t *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->bind, sizeof(o->bind), "127.0.0.1");
    o->port = 6380;
}

static void finish_defaults(kv_options_t *o)
{
    if (!o->sweep_ms) o->sweep_ms = 100;
    if (!o->sweep_slots) o->sweep_slots = 4096;
    if (!o->max_cmd_bytes) o->max_cmd_bytes = KV_RESP_DEFAULT_MAX_CMD;
    if (!o->max_pipeline) o->max_pipeline = 65536;
    if (!o->max_out_bytes) o->max_out_bytes = 64ull << 20;
}

static int wait_listeners(kv_server_t *srv, uint32_t want)
{
    for (int i = 0; i < 5000; i++) { /* 5 s */
        /* A1: pairs with R1 in listener_behaviour */
        if (atomic_load_explicit(&srv->listeners_up, memory_order_acquire) >= want) break;
        usleep(1000);
    }
    int err = atomic_load_explicit(&srv->listen_err, memory_order_relaxed);
    if (err) return err;
    if (atomic_load_explicit(&srv->listeners_up, memory_order_acquire) < want) return -ETIMEDOUT;
    return 0;
}

/* Whether `workers` engine workers (0: one per CPU) leave at least one CPU
 * of this process's affinity mask to others. */
static int spare_cpu(uint32_t workers)
{
    cpu_set_t set;
    if (workers == 0 || sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return (uint32_t)CPU_COUNT(&set) > workers;
}

int main(int argc, char **argv)
{
    static kv_server_t srv; /* big (shard table); lives for the whole run */
    kv_options_t cli;
    defaults(&srv.opt);
    memset(&cli, 0, sizeof(cli));
    const char *config = NULL;
    /* Flags override the config file: remember them and apply after it. */
    const char *flag_port = NULL, *flag_bind = NULL, *flag_workers = NULL, *flag_mem = NULL;
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},    {"bind", required_argument, NULL, 'b'},
        {"workers", required_argument, NULL, 'w'}, {"config", required_argument, NULL, 'c'},
        {"maxmemory", required_argument, NULL, 'm'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int ch, verbose = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "p:b:w:c:m:vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p': flag_port = optarg; break;
        case 'b': flag_bind = optarg; break;
        case 'w': flag_workers = optarg; break;
        case 'c': config = optarg; break;
        case 'm': flag_mem = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "axon-kv: unknown option or missing value: %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "axon-kv: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (config && load_config(&srv.opt, config) < 0) return 2;
    struct { const char *key, *val; } flags[] = {
        {"port", flag_port}, {"bind", flag_bind}, {"workers", flag_workers}, {"maxmemory", flag_mem}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (!flags[i].val) continue;
        const char *why = set_option(&srv.opt, flags[i].key, flags[i].val);
        if (why) {
            fprintf(stderr, "axon-kv: --%s %s: expected %s\n", flags[i].key, flags[i].val, why);
            usage(stderr);
            return 2;
        }
    }
    if (verbose) srv.opt.verbose = 1;
    finish_defaults(&srv.opt);

    /* jemalloc (axon's malloc) purges the pages it freed only on later
     * allocation calls unless its background threads run: an idle server
     * kept what a burst freed (a slot table outgrown, a client's buffers)
     * resident.  Redis runs with them on too (jemalloc-bg-thread yes). */
    bool bg = true;
    if (mallctl("background_thread", NULL, NULL, &bg, sizeof(bg)) != 0)
        fprintf(stderr, "axon-kv: could not start jemalloc's background purging threads; freed memory is "
                        "returned to the system only as later allocations run\n");

    ax_config_t cfg;
    ax_config_init(&cfg);
    ax_config_error_t cerr;
    if (srv.opt.engine_config[0] && ax_config_load_file(&cfg, srv.opt.engine_config, &cerr) < 0) {
        fprintf(stderr, "axon-kv: %s\n", cerr.message);
        return 2;
    }
    if (ax_config_apply_env(&cfg, NULL, &cerr) < 0) {
        fprintf(stderr, "axon-kv: %s\n", cerr.message);
        return 2;
    }
    if (srv.opt.workers) cfg.workers = srv.opt.workers;
    /* Idle spin: only when the workers leave a CPU of ours free.  A worker
     * that spins on a core its clients or other processes need takes their
     * CPU (redis-benchmark -P 16 on this 2-core box with 2 workers: 320k/404k
     * SET/GET rps with the engine's 50 us spin, 582k/632k without).  On a
     * core of its own, spinning saves every sender the cost of waking it:
     * with 1 worker, the client on the other core spent 880-910 ns per
     * request instead of 980-1000 and got 7-9 % more requests through.
     * engine-spin-us, or the engine's own config file or environment,
     * overrides this. */
    /* Receive buffers of 4 KiB, not the engine's 16 KiB: a received chunk
     * is copied into a blob, and up to AX_ARENA_MAX_CLASS (4 KiB) that blob
     * comes from the worker's arena, whose blocks are reused and stay
     * resident; a 16 KiB one is a fresh jemalloc block.  Four clients
     * pipelining GETs and never reading made the one worker fault in ~4 MiB
     * of such blocks from the first receive burst (the whole 4 MiB ring at
     * once) while another client's PING waited: worker faults before that
     * PING's answer ~1,650 -> ~790, its latency 33-47 ms -> 14-25 ms (chrt
     * -f 10, loaded VM; issue 10 item 17).  The ring shrinks to 1 MiB (256
     * x 4 KiB).  io.buf_size in engine-config or AXON_IO_BUF_SIZE wins. */
    if (cfg.io_buf_size == 0) cfg.io_buf_size = KV_RECV_BUF;
    if (cfg.io_send_pool_bytes == 0) cfg.io_send_pool_bytes = KV_SEND_POOL;
    if (srv.opt.spin_set) cfg.spin_us = srv.opt.spin_us;
    else if (cfg.spin_us == 0 && !spare_cpu(cfg.workers)) cfg.spin_us = -1;
    int rc = ax_engine_create(&cfg, &srv.eng);
    if (rc < 0) {
        fprintf(stderr, "axon-kv: creating the engine failed: %s\n", ax_engine_last_error());
        return 1;
    }
    srv.nshards = ax_engine_workers(srv.eng);
    if (srv.nshards > KV_MAX_SHARDS) srv.nshards = KV_MAX_SHARDS;
    srv.route_seed = 0x243f6a8885a308d3ull;

    ax_ref_t listeners[KV_MAX_SHARDS];
    for (uint32_t i = 0; i < srv.nshards && rc == 0; i++) {
        kv_shard_arg_t a = {&srv, i};
        ax_spawn_opts_t o = {.size = sizeof(o), .where = AX_ON_WORKER, .worker = i, .init = shard_init,
                             .fini = shard_fini, .arg = &a, .arg_len = sizeof(a)};
        rc = ax_engine_spawn(srv.eng, shard_behaviour, sizeof(kv_shard_t), &o, &srv.shards[i]);
        if (rc == 0) {
            o.init = listener_init;
            o.fini = listener_fini;
            rc = ax_engine_spawn(srv.eng, listener_behaviour, sizeof(kv_listener_t), &o, &listeners[i]);
        }
    }
    if (rc < 0) {
        fprintf(stderr, "axon-kv: spawning the shard and listener actors failed: %s\n", strerror(-rc));
        ax_engine_destroy(srv.eng);
        return 1;
    }

    /* Workers inherit this mask: the signals come to main's sigwait only. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = ax_engine_start(srv.eng);
    if (rc < 0) {
        fprintf(stderr, "axon-kv: starting the engine failed: %s\n", strerror(-rc));
        ax_engine_destroy(srv.eng);
        return 1;
    }
    /* The first listener picks the port (maybe any free one); the others
     * then join it with SO_REUSEPORT. */
    uint64_t port = srv.opt.port;
    rc = ax_engine_send(srv.eng, listeners[0], KV_MSG_LISTEN, &port, sizeof(port));
    if (rc == 0) rc = wait_listeners(&srv, 1);
    if (rc == 0) {
        port = (uint64_t)atomic_load_explicit(&srv.port, memory_order_acquire);
        for (uint32_t i = 1; i < srv.nshards && rc == 0; i++)
            rc = ax_engine_send(srv.eng, listeners[i], KV_MSG_LISTEN, &port, sizeof(port));
        if (rc == 0) rc = wait_listeners(&srv, srv.nshards);
    }
    if (rc < 0) {
        fprintf(stderr, "axon-kv: could not listen on %s:%u (%s); pick another --port or --bind\n",
                srv.opt.bind, srv.opt.port, strerror(-rc));
        ax_engine_stop(srv.eng);
        ax_engine_wait(srv.eng);
        ax_engine_destroy(srv.eng);
        return 1;
    }
    printf("axon-kv: ready on %s:%" PRIu64 " (%u workers = shards, maxmemory %" PRIu64 " bytes per shard%s)\n",
           srv.opt.bind, port, srv.nshards, srv.opt.maxmemory, srv.opt.maxmemory ? "" : ": unlimited");
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "axon-kv: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (srv.opt.verbose) {
        ax_worker_stats_t st;
        ax_engine_stats(srv.eng, &st);
        fprintf(stderr,
                "axon-kv: engine: msgs local %" PRIu64 " remote %" PRIu64 " external %" PRIu64
                ", parks %" PRIu64 ", wakes sent %" PRIu64 ", ring full %" PRIu64 ", dead letters %" PRIu64 "\n",
                st.msgs_local, st.msgs_remote, st.msgs_external, st.parks, st.wakes_sent, st.ring_full,
                st.dead_letters);
    }
    ax_engine_stop(srv.eng);
    ax_engine_wait(srv.eng);
    ax_engine_destroy(srv.eng);
    return 0;
}
