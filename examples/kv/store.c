/* examples/kv/store.c - one shard's key space (see store.h).
 *
 * Table: slots hold (hash, entry*); hash 0 marks an empty slot.  Linear
 * probing keeps a lookup to one or two cache lines at load <= 3/4; deletion
 * shifts the following run back (no tombstones), so a long-lived shard with
 * churn never degrades and never needs a cleaning rehash.
 *
 * Accounting: used = sum(entry header + key) + sum(value blobs) + slot table.
 * These are the sizes we ask malloc for, not what malloc rounds them to:
 * deterministic, so the limit behaves the same on every allocator.
 */
/* clock_gettime and strnlen are POSIX 2008, not ISO C: ask for them, so the
 * store builds with -std=c11 outside this tree too. */
#define _POSIX_C_SOURCE 200809L
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kv_entry {
    kv_blob_t *val;
    int64_t expire_at; /* absolute ms; 0: none */
    uint32_t klen;
    char key[];
};

#define MIN_CAP 16u

/* ---- hashing ----------------------------------------------------------- */

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t kv_hash(const void *key, size_t len, uint64_t seed)
{
    const unsigned char *p = (const unsigned char *)key;
    uint64_t h = seed ^ mix(len ^ 0xa0761d6478bd642full, 0xe7037ed1a0b428dbull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix(h ^ w, 0x8ebc6af09c88c6e3ull);
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < len; i++) w |= (uint64_t)p[i] << (8 * i);
    h = mix(h ^ w ^ 0x589965cc75374cc3ull, 0x1d8e4e27c47d124full);
    return mix(h, 0xa0761d6478bd642full);
}

/* ---- table ------------------------------------------------------------- */

/* Allocated at its exact size: sizeof would add the 4 bytes of padding after
 * klen, which put a 10-byte key ("key:123456") in jemalloc's 48-byte class
 * instead of the 32-byte one. */
static inline uint64_t entry_cost(size_t klen) { return offsetof(kv_entry_t, key) + klen; }
static inline uint64_t table_cost(size_t cap) { return (uint64_t)cap * sizeof(kv_slot_t); }

int kv_store_init(kv_store_t *s, uint64_t maxmemory, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->maxmemory = maxmemory;
    s->seed = seed;
    return 0;
}

static void free_entry(kv_store_t *s, kv_entry_t *e)
{
    s->used -= entry_cost(e->klen) + kv_blob_cost(e->val->len);
    if (e->expire_at) s->expires--;
    kv_blob_unref(e->val);
    free(e);
}

void kv_store_flush(kv_store_t *s)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].hash) free_entry(s, s->slots[i].e);
    s->used -= table_cost(s->cap);
    free(s->slots);
    s->slots = NULL;
    s->cap = 0;
    s->count = 0;
    s->sweep_cursor = 0;
}

void kv_store_fini(kv_store_t *s) { kv_store_flush(s); }

int kv_store_over_limit(const kv_store_t *s, uint64_t extra)
{
    return s->maxmemory && s->used + extra > s->maxmemory;
}

static inline uint64_t key_hash(const kv_store_t *s, const void *key, size_t klen)
{
    uint64_t h = kv_hash(key, klen, s->seed);
    return h ? h : 1;
}

/* Index of the key's slot, or SIZE_MAX. */
static size_t find(const kv_store_t *s, uint64_t h, const void *key, size_t klen)
{
    if (!s->cap) return SIZE_MAX;
    size_t mask = s->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const kv_slot_t *sl = &s->slots[i];
        if (!sl->hash) return SIZE_MAX;
        if (sl->hash == h && sl->e->klen == klen && memcmp(sl->e->key, key, klen) == 0) return i;
    }
}

/* Remove the entry at slot i and shift the rest of its probe run back so
 * that every key stays reachable from its home slot. */
static void remove_at(kv_store_t *s, size_t i)
{
    free_entry(s, s->slots[i].e);
    s->count--;
    size_t mask = s->cap - 1;
    size_t hole = i;
    s->slots[hole].hash = 0;
    s->slots[hole].e = NULL;
    for (size_t j = (hole + 1) & mask; s->slots[j].hash; j = (j + 1) & mask) {
        size_t home = (size_t)s->slots[j].hash & mask;
        /* The entry at j may move to the hole unless its home lies
         * cyclically in (hole, j]: then the hole is before its home. */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays) continue;
        s->slots[hole] = s->slots[j];
        s->slots[j].hash = 0;
        s->slots[j].e = NULL;
        hole = j;
    }
}

static inline bool expired(const kv_entry_t *e, int64_t now) { return e->expire_at && e->expire_at <= now; }

/* find() plus lazy expiry: an expired key is removed and reported absent. */
static size_t find_live(kv_store_t *s, uint64_t h, const void *key, size_t klen, int64_t now)
{
    size_t i = find(s, h, key, klen);
    if (i != SIZE_MAX && expired(s->slots[i].e, now)) {
        remove_at(s, i);
        s->expired_total++;
        return SIZE_MAX;
    }
    return i;
}

/* New table size needed before one more insert, or 0 if none. */
static size_t grow_target(const kv_store_t *s)
{
    if (!s->cap) return MIN_CAP;
    if ((s->count + 1) * 4 > s->cap * 3) return s->cap * 2;
    return 0;
}

static int rehash(kv_store_t *s, size_t ncap)
{
    kv_slot_t *ns = (kv_slot_t *)calloc(ncap, sizeof(*ns));
    if (!ns) return -ENOMEM;
    size_t mask = ncap - 1;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].hash) continue;
        size_t j = (size_t)s->slots[i].hash & mask;
        while (ns[j].hash) j = (j + 1) & mask;
        ns[j] = s->slots[i];
    }
    free(s->slots);
    s->used += table_cost(ncap) - table_cost(s->cap);
    s->slots = ns;
    s->cap = ncap;
    s->sweep_cursor = 0;
    return 0;
}

static void set_deadline(kv_store_t *s, kv_entry_t *e, int64_t at)
{
    if (e->expire_at && !at) s->expires--;
    if (!e->expire_at && at) s->expires++;
    e->expire_at = at;
}

/* Insert a new key (known absent) with val; consumes val. */
static int insert_new(kv_store_t *s, uint64_t h, const void *key, size_t klen, kv_blob_t *val,
                      int64_t expire_at)
{
    if (klen > UINT32_MAX) {
        kv_blob_unref(val);
        return -EINVAL;
    }
    size_t ncap = grow_target(s);
    uint64_t need = entry_cost(klen) + kv_blob_cost(val->len) + (ncap ? table_cost(ncap) - table_cost(s->cap) : 0);
    if (kv_store_over_limit(s, need)) {
        kv_blob_unref(val);
        return -KV_EOOM;
    }
    kv_entry_t *e = (kv_entry_t *)malloc(entry_cost(klen));
    if (!e || (ncap && rehash(s, ncap) < 0)) {
        free(e);
        kv_blob_unref(val);
        return -ENOMEM;
    }
    e->val = val;
    e->expire_at = 0;
    e->klen = (uint32_t)klen;
    memcpy(e->key, key, klen);
    set_deadline(s, e, expire_at);
    size_t mask = s->cap - 1;
    size_t j = (size_t)h & mask;
    while (s->slots[j].hash) j = (j + 1) & mask;
    s->slots[j].hash = h;
    s->slots[j].e = e;
    s->count++;
    s->used += entry_cost(klen) + kv_blob_cost(val->len);
    return 0;
}

int kv_store_set(kv_store_t *s, const void *key, size_t klen, kv_blob_t *val, unsigned flags,
                 int64_t expire_at_ms, int64_t now_ms)
{
    uint64_t h = key_hash(s, key, klen);
    size_t i = find_live(s, h, key, klen, now_ms);
    if ((i != SIZE_MAX && (flags & KV_SET_NX)) || (i == SIZE_MAX && (flags & KV_SET_XX))) {
        kv_blob_unref(val);
        return 1;
    }
    if (i == SIZE_MAX) return insert_new(s, h, key, klen, val, expire_at_ms);
    kv_entry_t *e = s->slots[i].e;
    uint64_t oldc = kv_blob_cost(e->val->len), newc = kv_blob_cost(val->len);
    if (newc > oldc && kv_store_over_limit(s, newc - oldc)) {
        kv_blob_unref(val);
        return -KV_EOOM;
    }
    s->used = s->used - oldc + newc;
    kv_blob_unref(e->val);
    e->val = val;
    if (!(flags & KV_SET_KEEPTTL)) set_deadline(s, e, expire_at_ms);
    return 0;
}

int kv_store_set_copy(kv_store_t *s, const void *key, size_t klen, const void *val, size_t vlen,
                      unsigned flags, int64_t expire_at_ms, int64_t now_ms)
{
    uint64_t h = key_hash(s, key, klen);
    size_t i = find_live(s, h, key, klen, now_ms);
    if (i != SIZE_MAX && !(flags & KV_SET_NX)) {
        kv_entry_t *e = s->slots[i].e;
        /* Same size and nobody else reading it: overwrite in place, the
         * common case of a benchmark hammering a few keys. */
        if (e->val->len == vlen && kv_blob_is_unique(e->val)) {
            memcpy(e->val->data, val, vlen);
            if (!(flags & KV_SET_KEEPTTL)) set_deadline(s, e, expire_at_ms);
            return 0;
        }
    }
    if ((i != SIZE_MAX && (flags & KV_SET_NX)) || (i == SIZE_MAX && (flags & KV_SET_XX))) return 1;
    /* Refuse before copying: a value that cannot fit is not worth a malloc. */
    uint64_t oldc = i != SIZE_MAX ? kv_blob_cost(s->slots[i].e->val->len) : 0;
    uint64_t newc = kv_blob_cost(vlen) + (i == SIZE_MAX ? entry_cost(klen) : 0);
    if (newc > oldc && kv_store_over_limit(s, newc - oldc)) return -KV_EOOM;
    kv_blob_t *b = kv_blob_from(val, vlen);
    if (!b) return -ENOMEM;
    if (i == SIZE_MAX) return insert_new(s, h, key, klen, b, expire_at_ms);
    return kv_store_set(s, key, klen, b, flags & ~(unsigned)(KV_SET_NX | KV_SET_XX), expire_at_ms, now_ms);
}

int kv_store_get(kv_store_t *s, const void *key, size_t klen, int64_t now_ms, kv_blob_t **val)
{
    size_t i = find_live(s, key_hash(s, key, klen), key, klen, now_ms);
    if (i == SIZE_MAX) return -ENOENT;
    *val = s->slots[i].e->val;
    return 0;
}

int kv_store_del(kv_store_t *s, const void *key, size_t klen, int64_t now_ms)
{
    size_t i = find_live(s, key_hash(s, key, klen), key, klen, now_ms);
    if (i == SIZE_MAX) return 0;
    remove_at(s, i);
    return 1;
}

int kv_store_exists(kv_store_t *s, const void *key, size_t klen, int64_t now_ms)
{
    return find_live(s, key_hash(s, key, klen), key, klen, now_ms) != SIZE_MAX;
}

int kv_store_incrby(kv_store_t *s, const void *key, size_t klen, int64_t delta, int64_t now_ms, int64_t *out)
{
    uint64_t h = key_hash(s, key, klen);
    size_t i = find_live(s, h, key, klen, now_ms);
    int64_t old = 0;
    if (i != SIZE_MAX) {
        const kv_blob_t *v = s->slots[i].e->val;
        if (kv_parse_i64(v->data, v->len, &old) < 0) return -KV_ENOTINT;
    }
    if ((delta > 0 && old > INT64_MAX - delta) || (delta < 0 && old < INT64_MIN - delta)) return -KV_EOVERFLOW;
    int64_t nv = old + delta;
    char num[24];
    size_t n = kv_fmt_i64(num, nv);
    int rc = kv_store_set_copy(s, key, klen, num, n, KV_SET_KEEPTTL, 0, now_ms);
    if (rc < 0) return rc;
    *out = nv;
    return 0;
}

int kv_store_expire_at(kv_store_t *s, const void *key, size_t klen, int64_t at_ms, unsigned flags,
                       int64_t now_ms)
{
    size_t i = find_live(s, key_hash(s, key, klen), key, klen, now_ms);
    if (i == SIZE_MAX) return 0;
    int64_t cur = s->slots[i].e->expire_at; /* 0: none, i.e. infinite */
    if ((flags & KV_EXPIRE_NX) && cur) return 0;
    if ((flags & KV_EXPIRE_XX) && !cur) return 0;
    if ((flags & KV_EXPIRE_GT) && (!cur || at_ms <= cur)) return 0;
    if ((flags & KV_EXPIRE_LT) && cur && at_ms >= cur) return 0;
    if (at_ms <= now_ms) {
        remove_at(s, i);
        return 1;
    }
    set_deadline(s, s->slots[i].e, at_ms);
    return 1;
}

int64_t kv_store_pttl(kv_store_t *s, const void *key, size_t klen, int64_t now_ms)
{
    size_t i = find_live(s, key_hash(s, key, klen), key, klen, now_ms);
    if (i == SIZE_MAX) return -2;
    const kv_entry_t *e = s->slots[i].e;
    return e->expire_at ? e->expire_at - now_ms : -1;
}

size_t kv_store_dbsize(kv_store_t *s, int64_t now_ms)
{
    if (!s->expires) return s->count;
    /* Exact count wanted: skip keys already past their deadline. */
    size_t n = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].hash && !expired(s->slots[i].e, now_ms)) n++;
    return n;
}

size_t kv_store_sweep(kv_store_t *s, int64_t now_ms, size_t max_slots)
{
    if (!s->expires || !s->cap) return 0;
    size_t removed = 0;
    size_t c = s->sweep_cursor & (s->cap - 1);
    for (size_t looked = 0; looked < max_slots && s->cap; looked++) {
        kv_slot_t *sl = &s->slots[c];
        if (sl->hash && expired(sl->e, now_ms)) {
            /* Removing shifts the next entry of the run into c: look at c
             * again rather than advancing. */
            remove_at(s, c);
            s->expired_total++;
            removed++;
            if (!s->expires) break;
            continue;
        }
        c = (c + 1) & (s->cap - 1);
    }
    s->sweep_cursor = c;
    return removed;
}

/* ---- RESP layer ---------------------------------------------------------- */

int kv_reply_unknown(kv_out_t *out, uint32_t argc, const kv_arg_t *argv)
{
    /* Redis 7: ERR unknown command 'x', with args beginning with: 'a' 'b' */
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "ERR unknown command '%.*s', with args beginning with: ",
                     (int)(argv[0].len > 128 ? 128 : argv[0].len), argv[0].ptr);
    size_t used = (size_t)n, budget = 128;
    for (uint32_t i = 1; i < argc && budget > 0 && used + 4 < sizeof(msg); i++) {
        size_t take = argv[i].len < budget ? argv[i].len : budget;
        if (take > sizeof(msg) - used - 4) take = sizeof(msg) - used - 4;
        msg[used++] = '\'';
        memcpy(msg + used, argv[i].ptr, take);
        used += take;
        msg[used++] = '\'';
        msg[used++] = ' ';
        budget -= take;
    }
    msg[used] = 0;
    /* an argument may hold NULs: write by length, not strlen */
    int rc = kv_out_reserve(out, used + 3);
    if (rc < 0) return rc;
    out->buf[out->len++] = '-';
    for (size_t i = 0; i < used; i++)
        out->buf[out->len++] = (msg[i] == '\r' || msg[i] == '\n') ? ' ' : msg[i];
    out->buf[out->len++] = '\r';
    out->buf[out->len++] = '\n';
    return 0;
}

int kv_reply_arity(kv_out_t *out, const kv_arg_t *cmd)
{
    char name[64];
    size_t n = cmd->len < sizeof(name) - 1 ? cmd->len : sizeof(name) - 1;
    for (size_t i = 0; i < n; i++) name[i] = (char)tolower((unsigned char)cmd->ptr[i]);
    name[n] = 0;
    return kv_reply_errorf(out, "ERR wrong number of arguments for '%s' command", name);
}

static int reply_store_err(kv_out_t *out, int rc)
{
    switch (rc) {
    case -KV_EOOM: return kv_reply_error(out, KV_OOM_MSG);
    case -KV_ENOTINT: return kv_reply_error(out, KV_NOTINT_MSG);
    case -KV_EOVERFLOW: return kv_reply_error(out, "ERR increment or decrement would overflow");
    case -EINVAL: return kv_reply_error(out, "ERR key too large");
    default: return kv_reply_error(out, "ERR out of memory in the shard");
    }
}

static int arg_i64(const kv_arg_t *a, int64_t *v) { return kv_parse_i64(a->ptr, a->len, v); }

/* Redis validates a TTL against the Unix clock: a relative TTL of ms
 * milliseconds is refused ("invalid expire time") when now_unix_ms + ms
 * passes INT64_MAX.  Deadlines here are kept on the monotonic clock (so a
 * wall-clock step does not expire or revive keys), but the limit must be
 * Redis's: computed from CLOCK_MONOTONIC, TTLs of 292 million years were
 * accepted that Redis refuses. */
static int64_t unix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True when a relative TTL of ms (any sign) would overflow Redis's Unix
 * deadline. */
static bool ttl_too_far(int64_t ms) { return ms > 0 && ms > INT64_MAX - unix_now_ms(); }

/* now (monotonic ms, >= 0) + ms, saturating (ms was checked against the
 * larger Unix clock, so saturation is only a guard). */
static int64_t mono_deadline(int64_t now, int64_t ms)
{
    if (ms > 0 && now > INT64_MAX - ms) return INT64_MAX;
    return now + ms; /* now >= 0: cannot underflow for any ms >= INT64_MIN */
}

#define SET_EX 0x100u /* option seen, before the value is parsed */
#define SET_PX 0x200u

/* SET key value [NX|XX] [EX s|PX ms|KEEPTTL], with Redis 7's rules
 * (t_string.c parseExtendedStringArgumentsOrReply): every option is parsed
 * first, so a syntax error wins over a bad TTL; a repeated NX, XX, KEEPTTL,
 * EX or PX is allowed and the last EX (or PX) value wins; EX with PX,
 * NX with XX, KEEPTTL with EX/PX are syntax errors.  Then the TTL: not an
 * integer, <= 0, or past Redis's limit is an error.  GET, EXAT, PXAT are not
 * supported (syntax error; see docs/kv.md). */
static int exec_set(kv_store_t *s, uint32_t argc, kv_arg_t *argv, int64_t now, kv_out_t *out)
{
    unsigned flags = 0;
    const kv_arg_t *ttl = NULL;
    for (uint32_t i = 3; i < argc; i++) {
        bool next = i + 1 < argc;
        if (kv_arg_is(&argv[i], "NX") && !(flags & KV_SET_XX)) {
            flags |= KV_SET_NX;
        } else if (kv_arg_is(&argv[i], "XX") && !(flags & KV_SET_NX)) {
            flags |= KV_SET_XX;
        } else if (kv_arg_is(&argv[i], "KEEPTTL") && !(flags & (SET_EX | SET_PX))) {
            flags |= KV_SET_KEEPTTL;
        } else if (kv_arg_is(&argv[i], "EX") && !(flags & (KV_SET_KEEPTTL | SET_PX)) && next) {
            flags |= SET_EX;
            ttl = &argv[++i];
        } else if (kv_arg_is(&argv[i], "PX") && !(flags & (KV_SET_KEEPTTL | SET_EX)) && next) {
            flags |= SET_PX;
            ttl = &argv[++i];
        } else {
            return kv_reply_error(out, "ERR syntax error");
        }
    }
    int64_t at = 0;
    if (ttl) {
        int64_t ms;
        if (arg_i64(ttl, &ms) < 0) return kv_reply_error(out, KV_NOTINT_MSG);
        if (ms <= 0 || ((flags & SET_EX) && ms > INT64_MAX / 1000))
            return kv_reply_error(out, "ERR invalid expire time in 'set' command");
        if (flags & SET_EX) ms *= 1000;
        if (ttl_too_far(ms)) return kv_reply_error(out, "ERR invalid expire time in 'set' command");
        at = mono_deadline(now, ms);
    }
    flags &= ~(SET_EX | SET_PX);
    int rc;
    if (argv[2].blob) { /* a big value: move the parser's blob in, no copy */
        kv_blob_t *b = argv[2].blob;
        argv[2].blob = NULL;
        rc = kv_store_set(s, argv[1].ptr, argv[1].len, b, flags, at, now);
    } else {
        rc = kv_store_set_copy(s, argv[1].ptr, argv[1].len, argv[2].ptr, argv[2].len, flags, at, now);
    }
    if (rc < 0) return reply_store_err(out, rc);
    if (rc == 1) return kv_reply_null(out);
    return kv_out_append(out, "+OK\r\n", 5);
}

static int exec_incr(kv_store_t *s, const kv_arg_t *key, int64_t delta, int64_t now, kv_out_t *out)
{
    int64_t v;
    int rc = kv_store_incrby(s, key->ptr, key->len, delta, now, &v);
    if (rc < 0) return reply_store_err(out, rc);
    return kv_reply_int(out, v);
}

/* EXPIRE/PEXPIRE key amount [NX|XX|GT|LT], Redis 7's expireGenericCommand:
 * options first ("Unsupported option", incompatible pairs), then the
 * amount (not an integer; for EXPIRE, seconds whose milliseconds overflow,
 * either sign; a deadline past Redis's Unix-clock limit: "invalid expire
 * time"), then the key (absent: 0) and the condition.  A deadline in the
 * past deletes the key and replies 1, as Redis does. */
static int exec_expire(kv_store_t *s, uint32_t argc, kv_arg_t *argv, int64_t now, int64_t unit, kv_out_t *out)
{
    const char *name = unit == 1000 ? "expire" : "pexpire";
    unsigned flags = 0;
    for (uint32_t i = 3; i < argc; i++) {
        if (kv_arg_is(&argv[i], "NX")) flags |= KV_EXPIRE_NX;
        else if (kv_arg_is(&argv[i], "XX")) flags |= KV_EXPIRE_XX;
        else if (kv_arg_is(&argv[i], "GT")) flags |= KV_EXPIRE_GT;
        else if (kv_arg_is(&argv[i], "LT")) flags |= KV_EXPIRE_LT;
        else {
            /* Redis prints the option as a C string: up to its first NUL */
            size_t n = strnlen(argv[i].ptr, argv[i].len > 256 ? 256 : argv[i].len);
            return kv_reply_errorf(out, "ERR Unsupported option %.*s", (int)n, argv[i].ptr);
        }
    }
    if ((flags & KV_EXPIRE_NX) && (flags & (KV_EXPIRE_XX | KV_EXPIRE_GT | KV_EXPIRE_LT)))
        return kv_reply_error(out, "ERR NX and XX, GT or LT options at the same time are not compatible");
    if ((flags & KV_EXPIRE_GT) && (flags & KV_EXPIRE_LT))
        return kv_reply_error(out, "ERR GT and LT options at the same time are not compatible");
    int64_t ms;
    if (arg_i64(&argv[2], &ms) < 0) return kv_reply_error(out, KV_NOTINT_MSG);
    if (unit == 1000) {
        if (ms > INT64_MAX / 1000 || ms < INT64_MIN / 1000)
            return kv_reply_errorf(out, "ERR invalid expire time in '%s' command", name);
        ms *= 1000;
    }
    if (ttl_too_far(ms)) return kv_reply_errorf(out, "ERR invalid expire time in '%s' command", name);
    return kv_reply_int(out, kv_store_expire_at(s, argv[1].ptr, argv[1].len, mono_deadline(now, ms), flags, now));
}

int kv_store_exec(kv_store_t *s, uint32_t argc, kv_arg_t *argv, int64_t now, kv_out_t *out)
{
    const kv_arg_t *c = &argv[0];
    if (kv_arg_is(c, "GET")) {
        if (argc != 2) return kv_reply_arity(out, c);
        kv_blob_t *v;
        if (kv_store_get(s, argv[1].ptr, argv[1].len, now, &v) < 0) return kv_reply_null(out);
        return kv_reply_bulk(out, v->data, v->len);
    }
    if (kv_arg_is(c, "SET")) {
        if (argc < 3) return kv_reply_arity(out, c);
        return exec_set(s, argc, argv, now, out);
    }
    if (kv_arg_is(c, "DEL") || kv_arg_is(c, "EXISTS")) {
        if (argc < 2) return kv_reply_arity(out, c);
        bool del = kv_arg_is(c, "DEL");
        int64_t n = 0;
        for (uint32_t i = 1; i < argc; i++)
            n += del ? kv_store_del(s, argv[i].ptr, argv[i].len, now)
                     : kv_store_exists(s, argv[i].ptr, argv[i].len, now);
        return kv_reply_int(out, n);
    }
    if (kv_arg_is(c, "INCR") || kv_arg_is(c, "DECR")) {
        if (argc != 2) return kv_reply_arity(out, c);
        return exec_incr(s, &argv[1], kv_arg_is(c, "INCR") ? 1 : -1, now, out);
    }
    if (kv_arg_is(c, "INCRBY") || kv_arg_is(c, "DECRBY")) {
        if (argc != 3) return kv_reply_arity(out, c);
        int64_t d;
        if (arg_i64(&argv[2], &d) < 0) return kv_reply_error(out, KV_NOTINT_MSG);
        if (kv_arg_is(c, "DECRBY")) {
            if (d == INT64_MIN) return kv_reply_error(out, "ERR decrement would overflow");
            d = -d;
        }
        return exec_incr(s, &argv[1], d, now, out);
    }
    if (kv_arg_is(c, "MGET")) {
        if (argc < 2) return kv_reply_arity(out, c);
        size_t mark = out->len;
        int rc = kv_reply_array(out, argc - 1);
        for (uint32_t i = 1; i < argc && rc == 0; i++) {
            kv_blob_t *v;
            rc = kv_store_get(s, argv[i].ptr, argv[i].len, now, &v) < 0 ? kv_reply_null(out)
                                                                          : kv_reply_bulk(out, v->data, v->len);
        }
        if (rc < 0) out->len = mark; /* all or nothing */
        return rc;
    }
    if (kv_arg_is(c, "MSET")) {
        if (argc < 3 || argc % 2 == 0) return kv_reply_arity(out, c);
        /* Refuse the whole MSET up front when it cannot fit: no partial write. */
        uint64_t need = 0;
        for (uint32_t i = 1; i < argc; i += 2) need += entry_cost(argv[i].len) + kv_blob_cost(argv[i + 1].len);
        if (kv_store_over_limit(s, need)) return kv_reply_error(out, KV_OOM_MSG);
        for (uint32_t i = 1; i < argc; i += 2) {
            int rc;
            if (argv[i + 1].blob) {
                kv_blob_t *b = argv[i + 1].blob;
                argv[i + 1].blob = NULL;
                rc = kv_store_set(s, argv[i].ptr, argv[i].len, b, 0, 0, now);
            } else {
                rc = kv_store_set_copy(s, argv[i].ptr, argv[i].len, argv[i + 1].ptr, argv[i + 1].len, 0, 0, now);
            }
            if (rc < 0) return reply_store_err(out, rc);
        }
        return kv_out_append(out, "+OK\r\n", 5);
    }
    if (kv_arg_is(c, "EXPIRE") || kv_arg_is(c, "PEXPIRE")) {
        if (argc < 3) return kv_reply_arity(out, c);
        return exec_expire(s, argc, argv, now, kv_arg_is(c, "EXPIRE") ? 1000 : 1, out);
    }
    if (kv_arg_is(c, "TTL") || kv_arg_is(c, "PTTL")) {
        if (argc != 2) return kv_reply_arity(out, c);
        int64_t ms = kv_store_pttl(s, argv[1].ptr, argv[1].len, now);
        if (ms >= 0 && kv_arg_is(c, "TTL")) ms = (ms + 500) / 1000;
        return kv_reply_int(out, ms);
    }
    if (kv_arg_is(c, "DBSIZE")) {
        if (argc != 1) return kv_reply_arity(out, c);
        return kv_reply_int(out, (int64_t)kv_store_dbsize(s, now));
    }
    if (kv_arg_is(c, "FLUSHALL") || kv_arg_is(c, "FLUSHDB")) {
        if (argc > 2 || (argc == 2 && !kv_arg_is(&argv[1], "SYNC") && !kv_arg_is(&argv[1], "ASYNC")))
            return kv_reply_error(out, "ERR syntax error");
        kv_store_flush(s);
        return kv_out_append(out, "+OK\r\n", 5);
    }
    return kv_reply_unknown(out, argc, argv);
}
