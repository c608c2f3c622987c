/* examples/pool.c - a data-parallel job on a work pool: blur an image in
 * row chunks, one pool item per chunk, and combine the chunks' checksums.
 *
 * A coordinator actor submits every chunk to a pool with one executor per
 * worker; each item copies its rows (plus one row above and below) into its
 * executor's scratch arena, blurs them there, writes its rows of the output
 * and returns a checksum of them inline in the completion message.  The
 * coordinator re-submits a chunk the pool refused as full (-EAGAIN) when a
 * completion frees a slot, and stops the engine when every chunk is in.
 * An outside thread then checks the output against a serial blur, through
 * one more item waited on with a future.
 *
 *   pool [width height chunk_rows]      (defaults 1024 768 16)
 *
 * Public API only (axon/axon.h, axon/pool.h); builds out of tree with
 *   cc -std=c11 -pedantic pool.c $(pkg-config --cflags --libs axon)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <axon/axon.h>
#include <axon/pool.h>

#define T_START 1u
#define T_CHUNK_DONE 2u
#define T_RETRY 3u

typedef struct job {
    const uint8_t *in;
    uint8_t *out;
    uint32_t w, h, rows; /* image size, rows per chunk */
} job_t;

/* The item's input: which rows (copied into the pool, 16 bytes). */
typedef struct chunk {
    const job_t *job;
    uint32_t y0, y1;
} chunk_t;

static uint8_t px(const uint8_t *img, uint32_t w, uint32_t h, long x, long y)
{
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x >= (long)w) x = (long)w - 1;
    if (y >= (long)h) y = (long)h - 1;
    return img[(size_t)y * w + (size_t)x];
}

/* 3x3 box blur of rows [y0, y1) from a window that starts at row wy0. */
static void blur_rows(const uint8_t *win, uint32_t w, uint32_t wh, uint32_t wy0, uint32_t y0,
                      uint32_t y1, uint8_t *out)
{
    for (uint32_t y = y0; y < y1; y++)
        for (uint32_t x = 0; x < w; x++) {
            unsigned s = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    s += px(win, w, wh, (long)x + dx, (long)y - (long)wy0 + dy);
            out[(size_t)y * w + x] = (uint8_t)(s / 9);
        }
}

static int blur_chunk(ax_pool_job_t *pj, const void *in, size_t in_len, void *out, size_t out_cap,
                      size_t *out_len)
{
    chunk_t c;
    if (in_len != sizeof c || out_cap < sizeof(uint64_t))
        return -EINVAL;
    memcpy(&c, in, sizeof c);
    const job_t *j = c.job;
    /* The rows this chunk reads, in the executor's node-local scratch. */
    uint32_t wy0 = c.y0 ? c.y0 - 1 : 0, wy1 = c.y1 < j->h ? c.y1 + 1 : j->h;
    size_t bytes = (size_t)(wy1 - wy0) * j->w;
    uint8_t *win = ax_pool_alloc(pj, bytes);
    if (!win)
        return -ENOMEM; /* the pool reports AX_POOL_R_SCRATCH anyway */
    memcpy(win, j->in + (size_t)wy0 * j->w, bytes);
    /* Edge rows clamp to the window, which is the image's edge there. */
    blur_rows(win, j->w, wy1 - wy0, wy0, c.y0, c.y1, j->out);
    uint64_t sum = 0;
    for (size_t i = (size_t)c.y0 * j->w; i < (size_t)c.y1 * j->w; i++)
        sum = sum * 31 + j->out[i];
    memcpy(out, &sum, sizeof sum);
    *out_len = sizeof sum;
    return 0;
}

typedef struct coord {
    ax_pool_t *pool;
    const job_t *job;
    uint32_t next, done, nchunks;
    uint64_t checksum; /* sum of the chunks' checksums */
    int failed;
} coord_t;

static void submit_more(ax_ctx_t *ctx, coord_t *s)
{
    while (s->next < s->nchunks) {
        chunk_t c = {s->job, s->next * s->job->rows, (s->next + 1) * s->job->rows};
        if (c.y1 > s->job->h)
            c.y1 = s->job->h;
        ax_pool_item_t it = {.fn = blur_chunk, .in = &c, .in_len = sizeof c, .out_cap = 8,
                             .tag = s->next};
        int rc = ax_pool_submit(ctx, s->pool, &it, T_CHUNK_DONE, NULL);
        if (rc == -EAGAIN) {
            /* Full: a completion calls us again; with none of ours in
             * flight (the pool full of others' items, or a slot on its way
             * back), a message to self does. */
            if (s->next == s->done)
                ax_send_u64(ctx, ax_self(ctx), T_RETRY, 0);
            return;
        }
        if (rc) {
            fprintf(stderr, "pool: submit: %s\n", strerror(-rc));
            s->failed = 1;
            ax_engine_stop(ax_ctx_engine(ctx));
            return;
        }
        s->next++;
    }
}

static void coordinator(ax_ctx_t *ctx, void *st, const ax_msg_t *m)
{
    coord_t *s = st;
    if (m->type == T_START) {
        const coord_t *init;
        memcpy(&init, ax_msg_data(m), sizeof init);
        *s = *init;
        submit_more(ctx, s);
        return;
    }
    if (m->type == T_RETRY) {
        submit_more(ctx, s);
        return;
    }
    ax_pool_done_t d = {0};
    if (ax_pool_done_get(m, &d) < 0 || d.status != 0) {
        fprintf(stderr, "pool: chunk failed: status %d reason %u\n", d.status, d.reason);
        s->failed = 1;
    } else {
        uint64_t sum;
        memcpy(&sum, d.small, sizeof sum);
        s->checksum += sum;
    }
    if (++s->done == s->nchunks) {
        printf("pool: %u chunks blurred, checksum %016llx%s\n", s->nchunks,
               (unsigned long long)s->checksum, s->failed ? " (with failures)" : "");
        ax_engine_stop_when_idle(ax_ctx_engine(ctx));
        return;
    }
    submit_more(ctx, s);
}

int main(int argc, char **argv)
{
    job_t j = {NULL, NULL, 1024, 768, 16};
    if (argc == 4) {
        j.w = (uint32_t)strtoul(argv[1], NULL, 0);
        j.h = (uint32_t)strtoul(argv[2], NULL, 0);
        j.rows = (uint32_t)strtoul(argv[3], NULL, 0);
    }
    if (j.w < 1 || j.h < 1 || j.rows < 1 || j.w > 16384 || j.h > 16384) {
        fprintf(stderr, "usage: pool [width height chunk_rows] (1..16384)\n");
        return 2;
    }
    uint8_t *in = malloc((size_t)j.w * j.h), *out = calloc((size_t)j.w * j.h, 1);
    if (!in || !out)
        return 1;
    for (uint32_t y = 0; y < j.h; y++)
        for (uint32_t x = 0; x < j.w; x++)
            in[(size_t)y * j.w + x] = (uint8_t)((x * 7 + y * 13) ^ (x * y));
    j.in = in;
    j.out = out;

    ax_config_t cfg;
    ax_config_init(&cfg);
    ax_engine_t *eng;
    if (ax_engine_create(&cfg, &eng) < 0 || ax_engine_start(eng) < 0) {
        fprintf(stderr, "pool: engine: %s\n", ax_engine_last_error());
        return 1;
    }
    ax_pool_config_t pc = AX_POOL_CONFIG_INIT;
    pc.queue_len = 32;
    /* Each item needs (rows + 2) * width bytes of scratch. */
    pc.scratch_bytes = (uint64_t)(j.rows + 2) * j.w + 16; /* + alignment */
    ax_pool_t *pool;
    if (ax_pool_create(eng, &pc, &pool) < 0) {
        fprintf(stderr, "pool: %s\n", ax_pool_last_error());
        return 1;
    }
    coord_t init = {.pool = pool, .job = &j, .nchunks = (j.h + j.rows - 1) / j.rows};
    ax_ref_t c;
    ax_spawn_opts_t o = {.size = sizeof o, .where = AX_ON_WORKER, .worker = 0};
    const coord_t *initp = &init; /* stays valid: main waits for the engine */
    if (ax_engine_spawn(eng, coordinator, sizeof init, &o, &c) < 0) {
        fprintf(stderr, "pool: starting the coordinator failed\n");
        return 1;
    }

    /* First, from this outside thread: row 0 again, into its own buffer, as
     * one item waited on with a future.  Before the coordinator starts: its
     * last chunk calls ax_engine_stop_when_idle, and an engine that is idle
     * cannot know that an outside thread is about to submit. */
    uint8_t *row0 = calloc(j.w, 1);
    if (!row0)
        return 1;
    job_t pj = j;
    pj.out = row0;
    chunk_t probe = {&pj, 0, 1};
    uint64_t psum = 0;
    ax_pool_future_t f;
    ax_pool_done_t d = {0};
    ax_pool_item_t it = {.fn = blur_chunk, .in = &probe, .in_len = sizeof probe, .out = &psum,
                         .out_cap = sizeof psum};
    int rc;
    while ((rc = ax_pool_submit_future(pool, &it, &f, NULL)) == -EAGAIN)
        ;
    if (rc || ax_pool_future_wait(&f, 10ll * 1000000000ll, &d) || d.status) {
        fprintf(stderr, "pool: the outside item failed (submit %d, status %d)\n", rc, d.status);
        return 1;
    }
    if (ax_engine_send(eng, c, T_START, &initp, sizeof initp) < 0) {
        fprintf(stderr, "pool: starting the coordinator failed\n");
        return 1;
    }
    ax_engine_wait(eng);

    /* Check against a serial blur. */
    uint8_t *ref = malloc((size_t)j.w * j.h);
    if (!ref)
        return 1;
    blur_rows(in, j.w, j.h, 0, 0, j.h, ref);
    int ok = memcmp(ref, out, (size_t)j.w * j.h) == 0 && memcmp(ref, row0, j.w) == 0;
    ax_pool_stats_t ps;
    ax_pool_stats(pool, &ps);
    printf("pool: %s; %llu items on %u executors, %llu refused as full and retried\n",
           ok ? "output matches the serial blur" : "OUTPUT DIFFERS", (unsigned long long)ps.completed,
           ps.executors, (unsigned long long)ps.rejected_full);
    ax_pool_destroy(pool);
    ax_engine_destroy(eng);
    free(in);
    free(out);
    free(ref);
    free(row0);
    return ok ? 0 : 1;
}
