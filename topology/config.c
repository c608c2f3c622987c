/* topology/config.c - the engine configuration: defaults, text file,
 * environment, validation.
 *
 * One table (KEYS below) drives everything: the file parser, the AXON_*
 * environment names, range checks, and did-you-mean suggestions, so a key
 * cannot be documented in one place and spelled differently in another.
 * Loads parse into a copy and publish it only when every line was good:
 * a failed call leaves the caller's struct untouched.
 *
 * Rules chosen here (docs/tuning.md repeats them for users):
 *  - a key set twice in one file is an error naming both lines (a duplicate
 *    is almost always an edit mistake, and "later wins" would hide it);
 *  - an AXON_<SECTION>_* variable of a config section must be a known key,
 *    and so must a variable that is a near miss of one (AXON_WORKER_COUNT):
 *    a misspelt override that is silently ignored is the worst kind of
 *    tuning bug.  Any other AXON_* name (AXON_PREFIX, AXON_TEST_FILTER) is
 *    not ours to refuse: it belongs to the embedding program or its tools;
 *  - lines longer than AX_CONFIG_LINE_MAX, NUL bytes, numbers that overflow
 *    and texts over AX_CONFIG_TEXT_MAX are errors, never truncation.
 *
 * No hwloc here, so the libFuzzer target builds from this file alone.
 * Threading: touches only its arguments.  Memory: no allocation survives a
 * call; ax__idlist_parse writes into the caller's bitmap.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/config.h"
#include "topology/topo_internal.h"

#define AX_CONFIG_LINE_MAX 1024u          /* bytes per line, newline excluded */
#define AX_CONFIG_TEXT_MAX (1024u * 1024u) /* a whole config file */

#define KIB (1024ull)
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define TIB (1024ull * GIB)

enum kind { K_STR, K_LIST, K_ADDRS, K_U32, K_I32, K_SIZE, K_BOOL, K_SMT, K_DOORBELL, K_WD_MS, K_WD_ACTION,
            K_ONOFF, K_CLPROG };
enum { F_POW2 = 1, /* non-zero values must be powers of two */
       F_ONE = 2 };  /* K_ADDRS: exactly one address */

typedef struct key {
    const char *section, *name;
    enum kind kind;
    size_t off;
    int64_t lo, hi; /* allowed non-default range (0 is always "default") */
    unsigned flags;
    const char *expect; /* what a good value looks like, for messages */
} key_t_;

#define OFF(f) offsetof(ax_config_t, f)
static const key_t_ KEYS[] = {
    { "topology", "synthetic", K_STR, OFF(topology_synthetic), 0, 0, 0,
      "an hwloc synthetic description such as \"pack:2 numa:2 l3:2 core:8 pu:2\"" },
    { "topology", "xml", K_STR, OFF(topology_xml), 0, 0, 0, "the path of an hwloc XML export" },
    { "workers", "count", K_U32, OFF(workers), 1, AX_WORKERS_MAX, 0,
      "a worker count from 1 to 1024, or 0 for one per selected core" },
    { "workers", "cpus", K_LIST, OFF(cpus), 0, 0, 0,
      "a list of PU numbers such as \"0-7,16\" (empty: all)" },
    { "workers", "numa_nodes", K_LIST, OFF(numa_nodes), 0, 0, 0,
      "a list of NUMA node numbers such as \"0,2\" (empty: all)" },
    { "workers", "smt", K_SMT, OFF(smt), 0, 1, 0,
      "core (one worker per core) or all (one per hardware thread)" },
    { "workers", "reserve_cores", K_U32, OFF(reserve_cores), 0, 4096, 0,
      "a number of cores from 0 to 4096" },
    { "workers", "oversubscribe", K_BOOL, OFF(oversubscribe), 0, 1, 0,
      "true or false (also yes/no, on/off, 1/0)" },
    { "workers", "unpinned", K_BOOL, OFF(unpinned), 0, 1, 0,
      "true or false (also yes/no, on/off, 1/0)" },
    { "memory", "arena_bytes", K_SIZE, OFF(arena_bytes), (int64_t)MIB, (int64_t)TIB, 0,
      "a size from 1MiB to 1TiB such as 64MiB (suffixes K, M, G, T, KiB, MiB, GiB, TiB), "
      "or 0 for 64MiB" },
    { "memory", "prefault", K_BOOL, OFF(prefault), 0, 1, 0, "true or false" },
    { "memory", "hugepages", K_BOOL, OFF(hugepages), 0, 1, 0, "true or false" },
    { "scheduler", "ring_slots", K_U32, OFF(ring_slots), 8, 65536, F_POW2,
      "a power of two from 8 to 65536, or 0 for automatic" },
    { "scheduler", "batch", K_U32, OFF(batch), 1, 65536, 0,
      "a number from 1 to 65536, or 0 for 64" },
    { "scheduler", "spin_us", K_I32, OFF(spin_us), INT32_MIN, 1000000, 0,
      "microseconds from 1 to 1000000, 0 for 50, or a negative number to never spin" },
    { "scheduler", "max_actors", K_U32, OFF(max_actors), 1, AX_ACTORS_MAX, 0,
      "a number from 1 to 16777216 (16 Mi: a reference has 24 bits of slot), or 0 for "
      "1048576" },
    { "scheduler", "doorbell", K_DOORBELL, OFF(doorbell), 0, 2, 0,
      "auto (on above 8 workers), on or off" },
    { "scheduler", "ring_peers", K_U32, OFF(ring_peers), 1, AX_WORKERS_MAX, 0,
      "a number of workers from 1 to 4096, or 0 for all (a planning hint for the ring budget)" },
    { "scheduler", "watchdog_ms", K_WD_MS, OFF(watchdog_ms), 1, 3600000, 0,
      "milliseconds from 1 to 3600000, or 0 or off to turn the watchdog off" },
    { "scheduler", "watchdog_action", K_WD_ACTION, OFF(watchdog_action), 0, 1, 0,
      "report (report and go on) or abort (report, then abort the process)" },
    { "scheduler", "fault_report", K_ONOFF, OFF(fault_report), 0, 1, 0,
      "on (report a fault signal in a behaviour before the process ends) or off" },
    { "io", "entries", K_U32, OFF(io_entries), 1, 32768, F_POW2,
      "a power of two from 1 to 32768, or 0 for 256" },
    { "io", "sqpoll", K_BOOL, OFF(io_sqpoll), 0, 1, 0, "true or false" },
    { "io", "buf_count", K_U32, OFF(io_buf_count), 1, 32768, F_POW2,
      "a power of two from 1 to 32768, or 0 for 256" },
    { "io", "buf_size", K_SIZE, OFF(io_buf_size), 64, (int64_t)MIB, 0,
      "a size from 64 bytes to 1MiB, or 0 for 16KiB" },
    { "io", "conn_max_bytes", K_SIZE, OFF(io_conn_max_bytes), 4096, (int64_t)TIB, 0,
      "a size from 4KiB to 1TiB, or 0 for 64MiB" },
    { "io", "send_pool_bytes", K_SIZE, OFF(io_send_pool_bytes), 16 * 1024, (int64_t)GIB, 0,
      "a size from 16KiB to 1GiB, or 0 for 4MiB" },
    { "cluster", "node_id", K_U32, OFF(cluster_node_id), 1, 255, 0,
      "a node id from 0 to 255, unique in the cluster" },
    { "cluster", "listen", K_ADDRS, OFF(cluster_listen), 0, 0, F_ONE,
      "one address host:port (an IPv4 address or a name; port 0 picks a free one)" },
    { "cluster", "peers", K_ADDRS, OFF(cluster_peers), 0, 0, 0,
      "a comma-separated list of host:port addresses of other nodes (or one seed)" },
    { "cluster", "cookie", K_STR, OFF(cluster_cookie), 0, 0, 0,
      "the cluster's shared secret (any text without NUL)" },
    { "cluster", "heartbeat_ms", K_U32, OFF(cluster_heartbeat_ms), 10, 60000, 0,
      "milliseconds between heartbeats, from 10 to 60000, or 0 for 200" },
    { "cluster", "timeout_ms", K_U32, OFF(cluster_timeout_ms), 50, 600000, 0,
      "milliseconds of silence before a node is unreachable, from 50 to 600000, or 0 for 10 "
      "heartbeats" },
    { "cluster", "progress", K_CLPROG, OFF(cluster_progress), 0, 2, 0,
      "auto (the default: wakeup), wakeup (an idle worker sleeps on UCP's event fd) or spin "
      "(no UCX wakeup; an idle worker polls UCP every poll_us)" },
    { "cluster", "poll_us", K_U32, OFF(cluster_poll_us), 10, 1000000, 0,
      "microseconds between UCP polls of a parked worker with progress = spin, from 10 to "
      "1000000, or 0 for 1000" },
    { "cluster", "yield_us", K_I32, OFF(cluster_yield_us), INT32_MIN, 1000000, 0,
      "microseconds from 1 to 1000000 that an unpinned worker with remote traffic yields "
      "and re-checks before it parks, 0 for 50, or a negative number to never yield" },
    { "cluster", "state_file", K_STR, OFF(cluster_state_file), 0, 0, 0,
      "the path of a file this node may create and rewrite (its last incarnation tag)" },
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])
_Static_assert(NKEYS <= AX_CONFIG_ORIGIN_KEYS, "ax_config_origin_t has a place per key");
_Static_assert(AX_WORKERS_MAX == 1024 && AX_ACTORS_MAX == 16777216,
               "the expect texts of workers.count and scheduler.max_actors quote the limits");
static const char *const SECTIONS[] = { "topology", "workers", "memory", "scheduler", "io",
                                         "cluster" };
#define NSECTIONS (sizeof SECTIONS / sizeof SECTIONS[0])

/* ---- small helpers ------------------------------------------------------ */

/* A cluster address list: "" or host:port[,host:port...], host a name or
 * dotted IPv4 of [A-Za-z0-9.-], port 0..65535.  `one`: at most one item. */
static int addrs_check(const char *s, bool one, char *why, size_t whylen)
{
    unsigned items = 0;
    while (*s) {
        const char *start = s;
        while (*s == ' ')
            s++;
        size_t hl = 0;
        while (isalnum((unsigned char)s[hl]) || s[hl] == '.' || s[hl] == '-' || s[hl] == '_')
            hl++;
        if (!hl) {
            snprintf(why, whylen, "item %u (\"%.40s\") has no host name", items + 1, start);
            return -EINVAL;
        }
        if (s[hl] != ':') {
            snprintf(why, whylen, "item %u (\"%.40s\") has no \":port\"", items + 1, start);
            return -EINVAL;
        }
        s += hl + 1;
        unsigned long port = 0;
        size_t pl = 0;
        while (isdigit((unsigned char)s[pl]) && pl < 6)
            port = port * 10 + (unsigned long)(s[pl++] - '0');
        if (!pl || port > 65535) {
            snprintf(why, whylen, "item %u (\"%.40s\") has no port from 0 to 65535", items + 1,
                     start);
            return -EINVAL;
        }
        s += pl;
        while (*s == ' ')
            s++;
        items++;
        if (*s == ',') {
            s++;
            if (!*s) {
                snprintf(why, whylen, "ends with a comma");
                return -EINVAL;
            }
        } else if (*s) {
            snprintf(why, whylen, "item %u (\"%.40s\") has unexpected text after the port",
                     items, start);
            return -EINVAL;
        }
    }
    if (one && items > 1) {
        snprintf(why, whylen, "has %u addresses where one is expected", items);
        return -EINVAL;
    }
    return 0;
}

void ax_config_init(ax_config_t *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
}

uint64_t ax_config_arena_bytes(const ax_config_t *cfg)
{
    return cfg && cfg->arena_bytes ? cfg->arena_bytes : 64 * MIB;
}
/* The configured ring size; 0 means automatic, decided by the planner from
 * the worker count (ax_plan_auto_ring_slots).  256 here is only what a
 * caller without a plan should assume. */
uint32_t ax_config_ring_slots(const ax_config_t *cfg)
{
    return cfg && cfg->ring_slots ? cfg->ring_slots : 256;
}
uint32_t ax_config_batch(const ax_config_t *cfg)
{
    return cfg && cfg->batch ? cfg->batch : 64;
}
uint32_t ax_config_max_actors(const ax_config_t *cfg)
{
    return cfg && cfg->max_actors ? cfg->max_actors : 1048576;
}

static void full_name(const key_t_ *k, char *buf, size_t len)
{
    snprintf(buf, len, "%s.%s", k->section, k->name);
}

static void env_name(const key_t_ *k, char *buf, size_t len)
{
    snprintf(buf, len, "AXON_%s_%s", k->section, k->name);
    for (char *p = buf; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

/* ---- where keys were set --------------------------------------------------
 * Each load stamps the keys it sets with its number and the line; the
 * environment stamps its keys too.  A stamp carries a fingerprint of the
 * value it saw, so a value stored later from C (axon-topo's flags, a test)
 * is not blamed on the file.  ax__config_where turns a stamp into
 * "FILE:LINE: " or "AXON_KEY (environment): ". */

static uint32_t field_fp(const ax_config_t *cfg, const key_t_ *k)
{
    const unsigned char *f = (const unsigned char *)cfg + k->off;
    size_t n;
    switch (k->kind) {
    case K_STR:
    case K_LIST:
    case K_ADDRS: {
        const void *nul = memchr(f, '\0', AX_CONFIG_STR_MAX);
        n = nul ? (size_t)((const unsigned char *)nul - f) : AX_CONFIG_STR_MAX;
        break;
    }
    case K_BOOL:
        n = sizeof(bool);
        break;
    case K_SIZE:
        n = k->off == OFF(io_buf_size) ? sizeof(uint32_t) : sizeof(uint64_t);
        break;
    default:
        n = sizeof(uint32_t);
        break;
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ f[i]) * 16777619u;
    return h ^ (uint32_t)n;
}

static void origin_stamp(ax_config_t *cfg, const key_t_ *k, uint32_t line, bool env)
{
    size_t i = (size_t)(k - KEYS);
    cfg->origin.keys[i].load = env ? 0 : cfg->origin.loads;
    cfg->origin.keys[i].line = env ? 0 : line;
    cfg->origin.keys[i].env = env ? 1u : 0u;
    cfg->origin.keys[i].fp = field_fp(cfg, k);
}

void ax__config_where(const ax_config_t *cfg, const char *key, char *buf, size_t len)
{
    if (!len)
        return;
    buf[0] = '\0';
    if (!cfg || !key)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        char full[64];
        full_name(&KEYS[i], full, sizeof full);
        if (strcmp(full, key))
            continue;
        const ax_config_key_origin_t *o = &cfg->origin.keys[i];
        if ((!o->load && !o->env) || o->fp != field_fp(cfg, &KEYS[i]))
            return; /* set in C, or never set */
        if (o->env) {
            char en[64];
            env_name(&KEYS[i], en, sizeof en);
            snprintf(buf, len, "%s (environment): ", en);
        } else if (o->load + AX_CONFIG_ORIGIN_FILES > cfg->origin.loads) {
            snprintf(buf, len, "%s:%u: ",
                     cfg->origin.names[(o->load - 1) % AX_CONFIG_ORIGIN_FILES], o->line);
        } else {
            snprintf(buf, len, "line %u of an earlier config file: ", o->line);
        }
        return;
    }
}

/* Copy at most 60 printable characters of v for a message: the value may be
 * a 1 KiB line of fuzz, and the message must stay a readable sentence. */
static void show(char *dst, size_t dstlen, const char *v, size_t vlen)
{
    size_t j = 0, max = 60;
    for (size_t i = 0; i < vlen && j + 4 < dstlen; i++) {
        if (i == max) {
            memcpy(dst + j, "...", 3);
            j += 3;
            break;
        }
        unsigned char c = (unsigned char)v[i];
        dst[j++] = (char)(isprint(c) ? c : '?');
    }
    dst[j] = '\0';
}

/* Optimal-string-alignment distance: insertions, deletions, substitutions
 * and swaps of neighbours ("cuont" -> "count" is 1), the usual typos. */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    unsigned d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/* " (did you mean X?)" when some candidate is close: 1 edit for short
 * words, 2 up to 8 letters, a third of the word beyond. */
static void suggest(char *out, size_t outlen, const char *word, const char *const *cands,
                    size_t n)
{
    out[0] = '\0';
    unsigned best = 99;
    const char *pick = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned d = edit_distance(word, cands[i]);
        if (d < best) {
            best = d;
            pick = cands[i];
        }
    }
    size_t wl = strlen(word);
    unsigned limit = wl <= 3 ? 1u : wl < 9 ? 2u : (unsigned)(wl / 3);
    if (pick && best <= limit)
        snprintf(out, outlen, " (did you mean %s?)", pick);
}

static void suggest_key(char *out, size_t outlen, const char *word)
{
    char names[NKEYS][64];
    const char *cands[NKEYS];
    bool dotted = strchr(word, '.') != NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        if (dotted)
            full_name(&KEYS[i], names[i], sizeof names[i]);
        else
            snprintf(names[i], sizeof names[i], "%s", KEYS[i].name);
        cands[i] = names[i];
    }
    suggest(out, outlen, word, cands, NKEYS);
}

static void suggest_env(char *out, size_t outlen, const char *word)
{
    char names[NKEYS][64];
    const char *cands[NKEYS];
    for (size_t i = 0; i < NKEYS; i++) {
        env_name(&KEYS[i], names[i], sizeof names[i]);
        cands[i] = names[i];
    }
    suggest(out, outlen, word, cands, NKEYS);
}

/* Whether an AXON_* name that is no key is still ours to refuse: it starts
 * with a config section (AXON_WORKERS_CONT), or it is within two edits of a
 * key's variable (AXON_WORKER_COUNT, a misspelt section).  Everything else,
 * AXON_PREFIX or AXON_TEST_FILTER, belongs to someone else. */
static bool claims_env_name(const char *name)
{
    for (size_t i = 0; i < NSECTIONS; i++) {
        char pre[32];
        snprintf(pre, sizeof pre, "AXON_%s_", SECTIONS[i]);
        for (char *p = pre; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (!strncmp(name, pre, strlen(pre)))
            return true;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        char en[64];
        env_name(&KEYS[i], en, sizeof en);
        if (edit_distance(name, en) <= 2)
            return true;
    }
    return false;
}

/* ---- value parsing -------------------------------------------------------- */

static bool ieq(const char *a, size_t alen, const char *b)
{
    size_t bl = strlen(b);
    if (alen != bl)
        return false;
    for (size_t i = 0; i < bl; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return false;
    return true;
}

/* Decimal integer, optional leading '-', optional size suffix.  Overflow of
 * int64 is an error rather than a wrap. */
static int parse_int(const char *v, size_t len, bool neg_ok, bool suffix_ok, int64_t *out,
                     char *why, size_t whylen)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (v[i] == '-' || v[i] == '+')) {
        neg = v[i] == '-';
        i++;
    }
    if (neg && !neg_ok) {
        snprintf(why, whylen, "negative numbers are not allowed here");
        return -EINVAL;
    }
    if (i == len || !isdigit((unsigned char)v[i])) {
        snprintf(why, whylen, "not a number");
        return -EINVAL;
    }
    uint64_t n = 0;
    for (; i < len && isdigit((unsigned char)v[i]); i++) {
        unsigned d = (unsigned)(v[i] - '0');
        if (n > (uint64_t)(INT64_MAX - d) / 10) {
            snprintf(why, whylen, "the number is too large");
            return -ERANGE;
        }
        n = n * 10 + d;
    }
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    uint64_t mul = 1;
    if (i < len) {
        const char *s = v + i;
        size_t sl = len - i;
        if (!suffix_ok) {
            snprintf(why, whylen, "a plain number was expected, with no unit");
            return -EINVAL;
        }
        if (ieq(s, sl, "k") || ieq(s, sl, "kib"))
            mul = KIB;
        else if (ieq(s, sl, "m") || ieq(s, sl, "mib"))
            mul = MIB;
        else if (ieq(s, sl, "g") || ieq(s, sl, "gib"))
            mul = GIB;
        else if (ieq(s, sl, "t") || ieq(s, sl, "tib"))
            mul = TIB;
        else if (ieq(s, sl, "b"))
            mul = 1;
        else {
            snprintf(why, whylen, "unknown unit (use K, M, G, T, KiB, MiB, GiB or TiB)");
            return -EINVAL;
        }
    }
    if (n > (uint64_t)INT64_MAX / mul) {
        snprintf(why, whylen, "the number is too large");
        return -ERANGE;
    }
    n *= mul;
    *out = neg ? -(int64_t)n : (int64_t)n;
    return 0;
}

int ax__idlist_parse(const char *s, uint64_t *bits, uint32_t limit, char *why, size_t whylen)
{
    const char *p = s;
    bool any = false;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        uint64_t a = 0, b;
        if (!isdigit((unsigned char)*p)) {
            snprintf(why, whylen, "'%c' is not a number; write numbers and ranges such as 0-7,16",
                     isprint((unsigned char)*p) ? *p : '?');
            return -EINVAL;
        }
        while (isdigit((unsigned char)*p) && a < limit)
            a = a * 10 + (uint64_t)(*p++ - '0');
        if (isdigit((unsigned char)*p) || a >= limit) {
            snprintf(why, whylen, "a number is %u or more; the largest allowed is %u", limit,
                     limit - 1);
            return -ERANGE;
        }
        b = a;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '-') {
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (!isdigit((unsigned char)*p)) {
                snprintf(why, whylen, "a range needs an end, as in 0-7");
                return -EINVAL;
            }
            b = 0;
            while (isdigit((unsigned char)*p) && b < limit)
                b = b * 10 + (uint64_t)(*p++ - '0');
            if (isdigit((unsigned char)*p) || b >= limit) {
                snprintf(why, whylen, "a number is %u or more; the largest allowed is %u", limit,
                         limit - 1);
                return -ERANGE;
            }
            if (b < a) {
                snprintf(why, whylen, "range %llu-%llu runs backwards; write the low end first",
                         (unsigned long long)a, (unsigned long long)b);
                return -EINVAL;
            }
        }
        if (bits)
            for (uint64_t i = a; i <= b; i++)
                bits[i / 64] |= 1ull << (i % 64);
        any = true;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p != '\0') {
            snprintf(why, whylen, "'%c' is not allowed; separate items with commas as in 0-7,16",
                     isprint((unsigned char)*p) ? *p : '?');
            return -EINVAL;
        }
    }
    (void)any; /* an empty list means "all" */
    return 0;
}

static bool range_ok(const key_t_ *k, int64_t n)
{
    if (n == 0)
        return true; /* zero is the documented default for every number */
    if (n < k->lo || n > k->hi)
        return false;
    if ((k->flags & F_POW2) && (n < 0 || (n & (n - 1)) != 0))
        return false;
    return true;
}

/* Parse text v[0..len) for key k into cfg.  On error `why` completes the
 * sentence "KEY = VALUE: ..." with what was expected and what to do. */
static int apply_value(ax_config_t *cfg, const key_t_ *k, const char *v, size_t len, char *why,
                       size_t whylen)
{
    char *field = (char *)cfg + k->off;
    char detail[160];
    int rc;
    int64_t n = 0;
    switch (k->kind) {
    case K_STR:
    case K_LIST:
    case K_ADDRS:
        if (memchr(v, '\0', len)) {
            snprintf(why, whylen, "contains a NUL byte; expected %s", k->expect);
            return -EINVAL;
        }
        if (len >= AX_CONFIG_STR_MAX) {
            snprintf(why, whylen, "is %zu characters long; at most %d fit: shorten it", len,
                     AX_CONFIG_STR_MAX - 1);
            return -EINVAL;
        }
        if (k->kind == K_ADDRS) {
            char tmp[AX_CONFIG_STR_MAX];
            memcpy(tmp, v, len);
            tmp[len] = '\0';
            if (addrs_check(tmp, (k->flags & F_ONE) != 0, detail, sizeof detail) < 0) {
                snprintf(why, whylen, "%s; expected %s", detail, k->expect);
                return -EINVAL;
            }
        }
        if (k->kind == K_LIST) {
            char tmp[AX_CONFIG_STR_MAX];
            memcpy(tmp, v, len);
            tmp[len] = '\0';
            if (ax__idlist_parse(tmp, NULL, AX_IDLIST_LIMIT, detail, sizeof detail) < 0) {
                snprintf(why, whylen, "%s; expected %s", detail, k->expect);
                return -EINVAL;
            }
        }
        memcpy(field, v, len);
        field[len] = '\0';
        return 0;
    case K_BOOL: {
        bool b;
        if (ieq(v, len, "true") || ieq(v, len, "yes") || ieq(v, len, "on") || ieq(v, len, "1"))
            b = true;
        else if (ieq(v, len, "false") || ieq(v, len, "no") || ieq(v, len, "off") ||
                 ieq(v, len, "0"))
            b = false;
        else {
            snprintf(why, whylen, "expected true or false (also yes/no, on/off, 1/0); "
                     "write one of those");
            return -EINVAL;
        }
        memcpy(field, &b, sizeof b);
        return 0;
    }
    case K_SMT: {
        uint32_t s;
        if (ieq(v, len, "core"))
            s = AX_SMT_CORE;
        else if (ieq(v, len, "all"))
            s = AX_SMT_ALL;
        else {
            snprintf(why, whylen, "expected %s; write core or all", k->expect);
            return -EINVAL;
        }
        memcpy(field, &s, sizeof s);
        return 0;
    }
    case K_DOORBELL: {
        uint32_t d;
        if (ieq(v, len, "auto"))
            d = AX_DOORBELL_AUTO;
        else if (ieq(v, len, "on"))
            d = AX_DOORBELL_ON;
        else if (ieq(v, len, "off"))
            d = AX_DOORBELL_OFF;
        else {
            snprintf(why, whylen, "expected %s; write auto, on or off", k->expect);
            return -EINVAL;
        }
        memcpy(field, &d, sizeof d);
        return 0;
    }
    case K_WD_MS: {
        /* The file's 0 means off; the struct's 0 means the default. */
        int32_t ms;
        if (ieq(v, len, "off")) {
            ms = AX_WATCHDOG_OFF;
        } else {
            rc = parse_int(v, len, false, false, &n, detail, sizeof detail);
            if (rc < 0 || (n != 0 && !range_ok(k, n))) {
                snprintf(why, whylen, "%s%sexpected %s; change the value", rc < 0 ? detail : "",
                         rc < 0 ? "; " : "", k->expect);
                return -EINVAL;
            }
            ms = n ? (int32_t)n : AX_WATCHDOG_OFF;
        }
        memcpy(field, &ms, sizeof ms);
        return 0;
    }
    case K_WD_ACTION: {
        uint32_t act;
        if (ieq(v, len, "report"))
            act = AX_WATCHDOG_REPORT;
        else if (ieq(v, len, "abort"))
            act = AX_WATCHDOG_ABORT;
        else {
            snprintf(why, whylen, "expected %s; write report or abort", k->expect);
            return -EINVAL;
        }
        memcpy(field, &act, sizeof act);
        return 0;
    }
    case K_CLPROG: {
        uint32_t pm;
        if (ieq(v, len, "auto"))
            pm = AX_CLUSTER_PROGRESS_AUTO;
        else if (ieq(v, len, "wakeup"))
            pm = AX_CLUSTER_PROGRESS_WAKEUP;
        else if (ieq(v, len, "spin"))
            pm = AX_CLUSTER_PROGRESS_SPIN;
        else {
            snprintf(why, whylen, "expected %s; write auto, wakeup or spin", k->expect);
            return -EINVAL;
        }
        memcpy(field, &pm, sizeof pm);
        return 0;
    }
    case K_ONOFF: {
        uint32_t on;
        if (ieq(v, len, "on") || ieq(v, len, "true") || ieq(v, len, "yes") || ieq(v, len, "1"))
            on = AX_FAULT_REPORT_ON;
        else if (ieq(v, len, "off") || ieq(v, len, "false") || ieq(v, len, "no") ||
                 ieq(v, len, "0"))
            on = AX_FAULT_REPORT_OFF;
        else {
            snprintf(why, whylen, "expected %s; write on or off", k->expect);
            return -EINVAL;
        }
        memcpy(field, &on, sizeof on);
        return 0;
    }
    case K_U32:
    case K_I32:
    case K_SIZE:
        rc = parse_int(v, len, k->kind == K_I32, k->kind == K_SIZE, &n, detail, sizeof detail);
        if (rc < 0 || !range_ok(k, n)) {
            snprintf(why, whylen, "%s%sexpected %s; change the value", rc < 0 ? detail : "",
                     rc < 0 ? "; " : "", k->expect);
            return -EINVAL;
        }
        if (k->kind == K_U32) {
            uint32_t u = (uint32_t)n;
            memcpy(field, &u, sizeof u);
        } else if (k->kind == K_I32) {
            int32_t s = (int32_t)n;
            memcpy(field, &s, sizeof s);
        } else if (k->off == OFF(io_buf_size)) {
            uint32_t u = (uint32_t)n;
            memcpy(field, &u, sizeof u);
        } else {
            uint64_t u = (uint64_t)n;
            memcpy(field, &u, sizeof u);
        }
        return 0;
    }
    snprintf(why, whylen, "internal error: unknown key kind");
    return -EINVAL;
}

/* ---- errors --------------------------------------------------------------- */

static void err_set(ax_config_error_t *err, const char *file, unsigned line, const char *key,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void err_set(ax_config_error_t *err, const char *file, unsigned line, const char *key,
                    const char *fmt, ...)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    snprintf(err->file, sizeof err->file, "%s", file);
    err->line = line;
    snprintf(err->key, sizeof err->key, "%s", key ? key : "");
    char body[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (line)
        snprintf(err->message, sizeof err->message, "%s:%u: %s", file, line, body);
    else
        snprintf(err->message, sizeof err->message, "%s: %s", file, body);
}

/* ---- the file format ------------------------------------------------------ */

static const char *trim(const char *s, const char *e, const char **end)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    *end = e;
    return s;
}

static const key_t_ *find_key(const char *section, const char *k, size_t klen)
{
    const char *dot = memchr(k, '.', klen);
    for (size_t i = 0; i < NKEYS; i++) {
        const key_t_ *d = &KEYS[i];
        if (dot) {
            size_t sl = (size_t)(dot - k);
            if (strlen(d->section) == sl && !memcmp(d->section, k, sl) &&
                strlen(d->name) == klen - sl - 1 && !memcmp(d->name, dot + 1, klen - sl - 1))
                return d;
        } else if (section && !strcmp(d->section, section) && strlen(d->name) == klen &&
                   !memcmp(d->name, k, klen)) {
            return d;
        }
    }
    return NULL;
}

static int parse_text(ax_config_t *cfg, const char *text, size_t len, const char *name,
                      ax_config_error_t *err)
{
    if (len > AX_CONFIG_TEXT_MAX) {
        err_set(err, name, 0, NULL, "the config is %zu bytes; at most %u are read: is this "
                "the right file?", len, AX_CONFIG_TEXT_MAX);
        return -EINVAL;
    }
    unsigned set_line[NKEYS] = { 0 };
    const char *section = NULL;
    cfg->origin.loads++;
    snprintf(cfg->origin.names[(cfg->origin.loads - 1) % AX_CONFIG_ORIGIN_FILES],
             sizeof cfg->origin.names[0], "%s", name);
    const char *p = text, *end = text + len;
    unsigned lineno = 0;
    char shown[80], keyname[64], why[400], hint[96];
    while (p < end) {
        lineno++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        const char *next = nl ? nl + 1 : end;
        if (ll > AX_CONFIG_LINE_MAX) {
            err_set(err, name, lineno, NULL, "the line is %zu bytes long; lines may have at "
                    "most %u: shorten it", ll, AX_CONFIG_LINE_MAX);
            return -EINVAL;
        }
        if (memchr(p, '\0', ll)) {
            err_set(err, name, lineno, NULL, "the line contains a NUL byte: a config file is "
                    "text; remove it (is this a binary file?)");
            return -EINVAL;
        }
        const char *le2;
        const char *s = trim(p, le, &le2);
        p = next;
        if (s == le2 || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            const char *close = memchr(s, ']', (size_t)(le2 - s));
            const char *rest_end;
            const char *rest = close ? trim(close + 1, le2, &rest_end) : NULL;
            if (!close || (rest != rest_end && *rest != '#')) {
                show(shown, sizeof shown, s, (size_t)(le2 - s));
                err_set(err, name, lineno, NULL, "'%s': a section header is [name] alone on "
                        "its line; fix the brackets", shown);
                return -EINVAL;
            }
            const char *ne;
            const char *n = trim(s + 1, close, &ne);
            section = NULL;
            for (size_t i = 0; i < NSECTIONS; i++)
                if (strlen(SECTIONS[i]) == (size_t)(ne - n) && !memcmp(SECTIONS[i], n,
                                                                          (size_t)(ne - n)))
                    section = SECTIONS[i];
            if (!section) {
                show(shown, sizeof shown, n, (size_t)(ne - n));
                suggest(hint, sizeof hint, shown, SECTIONS, NSECTIONS);
                err_set(err, name, lineno, NULL, "[%s]: unknown section%s; expected one of "
                        "[topology], [workers], [memory], [scheduler], [io]", shown, hint);
                return -EINVAL;
            }
            continue;
        }
        const char *eq = memchr(s, '=', (size_t)(le2 - s));
        if (!eq) {
            show(shown, sizeof shown, s, (size_t)(le2 - s));
            err_set(err, name, lineno, NULL, "'%s': expected 'key = value', '[section]' or "
                    "'# comment'; add the '=' or comment the line out", shown);
            return -EINVAL;
        }
        const char *ke, *ve;
        const char *k = trim(s, eq, &ke);
        const char *v = trim(eq + 1, le2, &ve);
        size_t klen = (size_t)(ke - k);
        /* An inline comment starts at a '#' after blank space, outside quotes. */
        bool quoted = v < ve && *v == '"';
        if (!quoted) {
            for (const char *c = v; c < ve; c++)
                if (*c == '#' && (c == v || c[-1] == ' ' || c[-1] == '\t')) {
                    trim(v, c, &ve);
                    break;
                }
        } else {
            const char *q = memchr(v + 1, '"', (size_t)(ve - v - 1));
            const char *after_end;
            const char *after = q ? trim(q + 1, ve, &after_end) : NULL;
            if (!q || (after != after_end && *after != '#')) {
                show(keyname, sizeof keyname, k, klen);
                show(shown, sizeof shown, v, (size_t)(ve - v));
                err_set(err, name, lineno, keyname, "%s = %s: the quoted value is not closed "
                        "properly; end it with a single '\"'", keyname, shown);
                return -EINVAL;
            }
            v++;
            ve = q;
        }
        size_t vlen = (size_t)(ve - v);
        show(keyname, sizeof keyname, k, klen);
        show(shown, sizeof shown, v, vlen);
        if (klen == 0) {
            err_set(err, name, lineno, NULL, "= %s: the key is missing; write 'key = value'",
                    shown);
            return -EINVAL;
        }
        const key_t_ *d = find_key(section, k, klen);
        if (!d) {
            if (!section && !memchr(k, '.', klen)) {
                err_set(err, name, lineno, keyname, "%s = %s: a key outside any [section] must "
                        "be written section.key (e.g. workers.count); add the section", keyname,
                        shown);
                return -EINVAL;
            }
            char where[48] = "";
            if (section)
                snprintf(where, sizeof where, " in [%s]", section);
            suggest_key(hint, sizeof hint, keyname);
            err_set(err, name, lineno, keyname, "%s = %s: unknown key%s%s; see docs/tuning.md "
                    "for the keys", keyname, shown, where, hint);
            return -EINVAL;
        }
        char full[64];
        full_name(d, full, sizeof full);
        size_t idx = (size_t)(d - KEYS);
        if (set_line[idx]) {
            err_set(err, name, lineno, full, "%s = %s: %s is already set on line %u; keep one "
                    "of the two lines", full, shown, full, set_line[idx]);
            return -EINVAL;
        }
        if (apply_value(cfg, d, v, vlen, why, sizeof why) < 0) {
            err_set(err, name, lineno, full, "%s = %s: %s", full, shown, why);
            return -EINVAL;
        }
        set_line[idx] = lineno;
        origin_stamp(cfg, d, lineno, false);
    }
    /* A plan comes from one topology: refuse both sources here, at the line
     * that made it two, not only later in ax_config_validate (the fuzzer
     * found a file that loaded and then failed validation). */
    if (cfg->topology_synthetic[0] && cfg->topology_xml[0]) {
        size_t is = (size_t)(find_key("topology", "synthetic", 9) - KEYS);
        size_t ix = (size_t)(find_key("topology", "xml", 3) - KEYS);
        bool xml_later = set_line[ix] > set_line[is];
        err_set(err, name, xml_later ? set_line[ix] : set_line[is],
                xml_later ? "topology.xml" : "topology.synthetic",
                "%s: topology.synthetic and topology.xml are both set%s; a plan comes from one "
                "topology: keep one of them",
                xml_later ? "topology.xml" : "topology.synthetic",
                set_line[ix] && set_line[is] ? "" : " (one of them before this file)");
        return -EINVAL;
    }
    return 0;
}

int ax_config_load_string(ax_config_t *cfg, const char *text, size_t len, const char *name,
                          ax_config_error_t *err)
{
    if (!name)
        name = "<string>";
    if (!cfg || (!text && len)) {
        err_set(err, name, 0, NULL, "ax_config_load_string: cfg or text is NULL; pass both");
        return -EINVAL;
    }
    ax_config_t tmp = *cfg;
    int rc = parse_text(&tmp, text ? text : "", len, name, err);
    if (rc == 0)
        *cfg = tmp;
    return rc;
}

int ax_config_load_file(ax_config_t *cfg, const char *path, ax_config_error_t *err)
{
    if (!cfg || !path) {
        err_set(err, "<file>", 0, NULL, "ax_config_load_file: cfg or path is NULL; pass both");
        return -EINVAL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        err_set(err, path, 0, NULL, "cannot open the config file: %s; check the path and its "
                "permissions", strerror(e));
        return -e;
    }
    /* Read one byte past the limit so an oversized file is reported as such. */
    size_t cap = AX_CONFIG_TEXT_MAX + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        err_set(err, path, 0, NULL, "out of memory reading the config file");
        return -ENOMEM;
    }
    size_t got;
    while (len < cap && (got = fread(buf + len, 1, cap - len, f)) > 0)
        len += got;
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        err_set(err, path, 0, NULL, "reading the config file failed (is it a directory?); "
                "give the path of a text file");
        return -EIO;
    }
    int rc = ax_config_load_string(cfg, buf, len, path, err);
    free(buf);
    return rc;
}

extern char **environ;

int ax_config_apply_env(ax_config_t *cfg, char *const *envp, ax_config_error_t *err)
{
    if (!cfg) {
        err_set(err, "<env>", 0, NULL, "ax_config_apply_env: cfg is NULL; pass a config");
        return -EINVAL;
    }
    if (!envp)
        envp = environ;
    ax_config_t tmp = *cfg;
    char shown[80], nm[80], why[400], hint[96], full[64];
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *e = envp[i];
        if (strncmp(e, "AXON_", 5) != 0)
            continue;
        const char *eq = strchr(e, '=');
        size_t nlen = eq ? (size_t)(eq - e) : strlen(e);
        const char *v = eq ? eq + 1 : "";
        show(nm, sizeof nm, e, nlen);
        show(shown, sizeof shown, v, strlen(v));
        const key_t_ *d = NULL;
        for (size_t j = 0; j < NKEYS && !d; j++) {
            char en[64];
            env_name(&KEYS[j], en, sizeof en);
            if (strlen(en) == nlen && !memcmp(en, e, nlen))
                d = &KEYS[j];
        }
        if (!d && !claims_env_name(nm))
            continue; /* not a config variable: someone else's AXON_* */
        if (!d) {
            suggest_env(hint, sizeof hint, nm);
            err_set(err, "<env>", 0, nm, "%s=%s: unknown axon variable%s; every AXON_* variable "
                    "must name a config key (AXON_<SECTION>_<KEY>, see docs/tuning.md): fix or "
                    "unset it", nm, shown, hint);
            return -EINVAL;
        }
        full_name(d, full, sizeof full);
        const char *ve;
        const char *vs = trim(v, v + strlen(v), &ve);
        if (apply_value(&tmp, d, vs, (size_t)(ve - vs), why, sizeof why) < 0) {
            err_set(err, "<env>", 0, nm, "%s=%s (%s): %s, or unset the variable", nm, shown,
                    full, why);
            return -EINVAL;
        }
        origin_stamp(&tmp, d, 0, true);
    }
    if (tmp.topology_synthetic[0] && tmp.topology_xml[0]) {
        err_set(err, "<env>", 0, "topology.xml", "topology.synthetic and topology.xml are both "
                "set (by the environment and the config before it); keep one of them");
        return -EINVAL;
    }
    *cfg = tmp;
    return 0;
}

int ax_config_validate(const ax_config_t *cfg, ax_config_error_t *err)
{
    const char *src = "<config>";
    if (!cfg) {
        err_set(err, src, 0, NULL, "config is NULL; pass one made by ax_config_init");
        return -EINVAL;
    }
    if (cfg->size != sizeof *cfg) {
        err_set(err, src, 0, "size", "size = %u: expected sizeof(ax_config_t) = %zu; start from "
                "ax_config_init() or AX_CONFIG_INIT", cfg->size, sizeof *cfg);
        return -EINVAL;
    }
    char full[64], shown[80], why[400];
    for (size_t i = 0; i < NKEYS; i++) {
        const key_t_ *k = &KEYS[i];
        const char *field = (const char *)cfg + k->off;
        full_name(k, full, sizeof full);
        int64_t n = 0;
        switch (k->kind) {
        case K_STR:
        case K_LIST:
        case K_ADDRS: {
            const char *nul = memchr(field, '\0', AX_CONFIG_STR_MAX);
            if (!nul) {
                err_set(err, src, 0, full, "%s: the text is not NUL-terminated within %d "
                        "bytes; shorten it", full, AX_CONFIG_STR_MAX);
                return -EINVAL;
            }
            if ((k->kind == K_LIST &&
                 ax__idlist_parse(field, NULL, AX_IDLIST_LIMIT, why, sizeof why) < 0) ||
                (k->kind == K_ADDRS && addrs_check(field, (k->flags & F_ONE) != 0, why, sizeof why) < 0)) {
                show(shown, sizeof shown, field, (size_t)(nul - field));
                err_set(err, src, 0, full, "%s = %s: %s; expected %s", full, shown, why,
                        k->expect);
                return -EINVAL;
            }
            continue;
        }
        case K_BOOL:
            continue; /* a C bool cannot hold anything else */
        case K_SMT:
        case K_DOORBELL:
        case K_WD_ACTION:
        case K_ONOFF:
        case K_CLPROG:
        case K_U32: {
            uint32_t u;
            memcpy(&u, field, sizeof u);
            n = u;
            break;
        }
        case K_I32:
        case K_WD_MS: {
            int32_t s;
            memcpy(&s, field, sizeof s);
            n = s;
            break;
        }
        case K_SIZE:
            if (k->off == OFF(io_buf_size)) {
                uint32_t u;
                memcpy(&u, field, sizeof u);
                n = u;
            } else {
                uint64_t u;
                memcpy(&u, field, sizeof u);
                n = u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
            }
            break;
        }
        bool ok = k->kind == K_SMT        ? (n == AX_SMT_CORE || n == AX_SMT_ALL)
                  : k->kind == K_DOORBELL ? (n >= AX_DOORBELL_AUTO && n <= AX_DOORBELL_OFF)
                  : k->kind == K_WD_MS    ? (n <= 0 || range_ok(k, n)) /* <0: off */
                                          : range_ok(k, n);
        if (!ok) {
            err_set(err, src, 0, full, "%s = %lld: expected %s; change the value", full,
                    (long long)n, k->expect);
            return -EINVAL;
        }
    }
    if (cfg->topology_synthetic[0] && cfg->topology_xml[0]) {
        err_set(err, src, 0, "topology.xml", "topology.synthetic and topology.xml are both set; "
                "keep one of them");
        return -EINVAL;
    }
    return 0;
}
