/* perf/scripts/lookup_count.c - instructions per lookup of the hash tables
 * considered for the memory container's index (docs/containers.md, "The
 * index"), counted by callgrind on the same keys and nodes:
 *
 *   lfht  liburcu's cds_lfht (QSBR flavour), as the container used it:
 *         1024 buckets, auto-resize, a match callback comparing 4 bytes
 *   ck    Concurrency Kit's ck_hs in SPMC object mode (lock-free readers,
 *         one writer), a compare callback comparing 4 bytes
 *   idx   the container's own index: open addressing over node pointers
 *         with a 6-bit tag (a copy of lib/container.c's idx_find; keep in
 *         step with it)
 *   none  the loop alone (key generation and the sum), subtracted
 *
 * Every variant gets the same one-multiply hash, 1024 keys of 4 bytes,
 * 64-byte values, and the same random key sequence.  Not built by CMake
 * (it links libck, which axon does not otherwise need):
 *
 *   gcc -O2 -g -std=gnu11 perf/scripts/lookup_count.c -o /tmp/lookup_count \
 *       $(pkg-config --cflags --libs ck liburcu-qsbr liburcu-cds)
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/lc.out /tmp/lookup_count 1000000
 *   callgrind_annotate --inclusive=yes /tmp/lc.out | grep run_
 *
 * Instructions per lookup = (run_X - run_none) / N.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ck_hs.h>
#include <urcu/rculfhash.h>
#include <urcu/urcu-qsbr.h>

#define NKEYS 1024u
#define VLEN 64u
#define HASH_MUL 0x9E3779B97F4A7C15ull

typedef struct node {
    struct cds_lfht_node lnode;
    uint64_t hash;
    uint32_t klen;
    alignas(16) unsigned char data[16 + VLEN]; /* key, value at 16 */
} node_t;

static node_t *g_nodes[NKEYS];

static inline uint64_t hash4(uint32_t k)
{
    return (uint64_t)k * HASH_MUL;
}

static inline uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline bool key_is(const node_t *n, const void *key, uint32_t klen)
{
    uint32_t a, b;
    if (n->klen != klen)
        return false;
    memcpy(&a, n->data, 4);
    memcpy(&b, key, 4);
    return a == b;
}

/* ---- lfht ---- */
typedef struct mkey {
    const void *key;
    uint32_t len;
} mkey_t;

static int lfht_match(struct cds_lfht_node *ln, const void *arg)
{
    const node_t *n = caa_container_of(ln, node_t, lnode);
    const mkey_t *k = arg;
    return key_is(n, k->key, k->len);
}

static struct cds_lfht *g_lfht;

__attribute__((noinline)) static uint64_t run_lfht(uint64_t n)
{
    uint64_t rng = 1, sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        rng = mix(rng);
        uint32_t key = (uint32_t)(rng % NKEYS);
        mkey_t k = {&key, 4};
        struct cds_lfht_iter it;
        cds_lfht_lookup(g_lfht, (unsigned long)hash4(key), lfht_match, &k, &it);
        struct cds_lfht_node *ln = cds_lfht_iter_get_node(&it);
        if (ln)
            sum += caa_container_of(ln, node_t, lnode)->data[16];
    }
    return sum;
}

/* ---- ck_hs ---- */
static unsigned long hs_hash(const void *obj, unsigned long seed)
{
    (void)seed;
    return (unsigned long)((const node_t *)obj)->hash;
}

static bool hs_cmp(const void *in_table, const void *key)
{
    const node_t *k = key;
    return key_is(in_table, k->data, k->klen);
}

static void *hs_malloc(size_t sz)
{
    return malloc(sz);
}

static void hs_free(void *p, size_t sz, bool defer)
{
    (void)sz, (void)defer; /* no readers while it runs here */
    free(p);
}

static struct ck_malloc g_alloc = {.malloc = hs_malloc, .free = hs_free};
static ck_hs_t g_hs;

__attribute__((noinline)) static uint64_t run_ck(uint64_t n)
{
    uint64_t rng = 1, sum = 0;
    node_t k;
    k.klen = 4;
    for (uint64_t i = 0; i < n; i++) {
        rng = mix(rng);
        uint32_t key = (uint32_t)(rng % NKEYS);
        memcpy(k.data, &key, 4);
        const node_t *m = ck_hs_get(&g_hs, (unsigned long)hash4(key), &k);
        if (m)
            sum += m->data[16];
    }
    return sum;
}

/* ---- the container's index (copy of lib/container.c idx_find) ---- */
#define SLOT_TAG ((uintptr_t)63)
typedef struct mtab {
    uint64_t mask;
    uint32_t shift;
    alignas(64) _Atomic uintptr_t slot[];
} mtab_t;
static mtab_t *g_tab;

static inline uintptr_t hash_tag(uint64_t h)
{
    return (uintptr_t)(h >> 32) & SLOT_TAG;
}

static inline const node_t *idx_find(const mtab_t *t, uint64_t h, const void *key, uint32_t klen)
{
    uintptr_t tag = hash_tag(h);
    for (uint64_t i = h >> t->shift;; i = (i + 1) & t->mask) {
        uintptr_t s = atomic_load_explicit(&t->slot[i], memory_order_acquire);
        if (!s)
            return NULL;
        if (((s ^ tag) & SLOT_TAG) == 0 && s > SLOT_TAG) {
            const node_t *m = (const node_t *)(s & ~SLOT_TAG);
            if (key_is(m, key, klen))
                return m;
        }
    }
}

__attribute__((noinline)) static uint64_t run_idx(uint64_t n)
{
    uint64_t rng = 1, sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        rng = mix(rng);
        uint32_t key = (uint32_t)(rng % NKEYS);
        const mtab_t *t = atomic_load_explicit((_Atomic(mtab_t *) *)&g_tab, memory_order_acquire);
        const node_t *m = idx_find(t, hash4(key), &key, 4);
        if (m)
            sum += m->data[16];
    }
    return sum;
}

__attribute__((noinline)) static uint64_t run_none(uint64_t n)
{
    uint64_t rng = 1, sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        rng = mix(rng);
        uint32_t key = (uint32_t)(rng % NKEYS);
        sum += g_nodes[key]->data[16];
    }
    return sum;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    urcu_qsbr_register_thread();
    g_lfht = cds_lfht_new_flavor(NKEYS, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                                 &urcu_qsbr_flavor, NULL);
    if (!g_lfht || !ck_hs_init(&g_hs, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, hs_hash, hs_cmp, &g_alloc,
                               2 * NKEYS, 6602834))
        return 1;
    uint64_t slots = 2 * NKEYS;
    g_tab = aligned_alloc(64, sizeof(mtab_t) + slots * sizeof(uintptr_t));
    memset(g_tab, 0, sizeof(mtab_t) + slots * sizeof(uintptr_t));
    g_tab->mask = slots - 1;
    g_tab->shift = 64u - (uint32_t)__builtin_ctzll(slots);
    for (uint32_t k = 0; k < NKEYS; k++) {
        node_t *m = aligned_alloc(64, 192);
        memset(m, 0, 192);
        cds_lfht_node_init(&m->lnode);
        m->hash = hash4(k);
        m->klen = 4;
        memcpy(m->data, &k, 4);
        m->data[16] = (unsigned char)k;
        g_nodes[k] = m;
        cds_lfht_add(g_lfht, (unsigned long)m->hash, &m->lnode);
        if (!ck_hs_put(&g_hs, (unsigned long)m->hash, m))
            return 1;
        uint64_t j = m->hash >> g_tab->shift;
        while (atomic_load_explicit(&g_tab->slot[j], memory_order_relaxed))
            j = (j + 1) & g_tab->mask;
        atomic_store_explicit(&g_tab->slot[j], (uintptr_t)m | hash_tag(m->hash), memory_order_relaxed);
    }
    uint64_t a = run_none(n), b = run_lfht(n), c = run_ck(n), d = run_idx(n);
    printf("sums: none %llu lfht %llu ck %llu idx %llu (equal: every lookup found its key)\n",
           (unsigned long long)a, (unsigned long long)b, (unsigned long long)c, (unsigned long long)d);
    urcu_qsbr_unregister_thread();
    return !(a == b && b == c && c == d);
}
