/* lib/container.c - shared containers (axon/container.h): an RCU hash table
 * in memory (liburcu QSBR + an open-addressing index of node pointers)
 * and LMDB with an off-worker writer.
 * A layer above the engine: uses the public API (worker hooks, external
 * sends) only.
 *
 * Threading.  liburcu's QSBR flavour: a registered thread is "online" (its
 * reads may be in progress) until it announces a quiescent state or goes
 * offline.  Workers: registered by on_start, quiescent every loop turn
 * (on_turn: no behaviour runs, none holds a pointer from an earlier
 * message), offline while parked (else a grace period would wait for a
 * sleeping worker).  Outside threads: registered by ax_cont_thread_register
 * and kept offline except inside their sections.  So a read section on a
 * worker costs nothing (QSBR read lock is empty), and a value replaced by a
 * writer is freed by call_rcu only after every worker has passed a turn.
 *
 * Write sections of one container exclude each other (short, no I/O
 * inside: that is the documented contract): a section whose only operation
 * is one put takes its own worker's lock and swaps the slot atomically;
 * any other takes every worker's lock ("write-section locks" below).  The memory kind applies
 * each put/del at once in its index (one release store a put); LMDB
 * sections become batches for the container's writer thread, which commits
 * (synced) and sends each batch's acknowledgement with ax_engine_send.
 *
 * Memory: nodes (key + value) from malloc, freed by call_rcu callbacks;
 * LMDB values are in the map.  The registry owns the name table; the last
 * close frees a container (LMDB: the writer thread does, after its last
 * commit; registry destroy waits for writer threads).
 */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <urcu/urcu-qsbr.h>

#include "axon/axon.h"
#include "axon/container.h"

/* ThreadSanitizer does not see liburcu's synchronisation (uninstrumented
 * code, inline-asm barriers), so it would report the node a writer
 * published and a reader reads, and the free after a grace period, as
 * races.  Instead of suppressing those reports we tell TSan what liburcu
 * guarantees: publication (release when the node is complete, acquire
 * where a reader first touches it) and grace periods (every quiescent or
 * offline point releases one token; a reclaim callback, which runs after
 * every reader passed such a point, acquires it). */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char tsan_grace_token;
#define TSAN_ACQ(p) __tsan_acquire((void *)(uintptr_t)(p))
#define TSAN_REL(p) __tsan_release((void *)(uintptr_t)(p))
#else
#define TSAN_ACQ(p) ((void)0)
#define TSAN_REL(p) ((void)0)
#endif
#define TSAN_QUIESCENT() TSAN_REL(&tsan_grace_token)

/* AddressSanitizer: a recycled node waits on a free list, poisoned, so a
 * reader that kept a pointer past its section is reported as it would be
 * after free(). */
#include "poison.h"

static void retire_flush(void);
static bool retire_due(void);
static void limbo_poll(void);
static void limbo_drain(void);

/* Per-thread QSBR role.  Cached per thread, decided by the hooks and by
 * ax_cont_thread_register (the only places that change it). */
enum { T_NONE = 0, T_WORKER = 1, T_OUTSIDE = 2 };
/* initial-exec: read on every section; in libaxon.so the default model
 * would make each read a __tls_get_addr call. */
#define AX_TLS_IE __attribute__((tls_model("initial-exec")))
static _Thread_local int t_role AX_TLS_IE;
static _Thread_local uint32_t t_worker_regs; /* registries that registered this worker */
static _Thread_local uint32_t t_online;      /* outside thread: open sections */
static _Thread_local uint32_t t_worker_id;
/* Memory kind, per thread (see "node reclamation" below). */
#define NCLASSES 16u /* node sizes 64, 128, ... 1024 bytes */
static _Thread_local struct mnode *t_retired;
static _Thread_local uint32_t t_nretired;
static _Thread_local uint64_t t_retired_since; /* when t_retired got its first node */
static _Thread_local struct mchain *t_limbo_head, *t_limbo_tail; /* chains in grace periods */
static _Thread_local struct mnode *t_free[NCLASSES];
static _Thread_local size_t t_free_bytes;

typedef struct batch {
    struct batch *next;
    uint64_t seq;
    ax_ref_t reply_to;
    uint32_t reply_type;
    uint32_t nops;
    size_t len, cap;
    unsigned char *buf; /* ops: [u8 op][u32 klen][u32 vlen][key][value] */
} batch_t;

struct ax_cont_registry {
    ax_engine_t *eng;
    uint32_t nworkers;
    pthread_mutex_t mu; /* the name table; open and close only */
    pthread_cond_t cv;  /* a closing LMDB container went away */
    struct ax_cont *list;
    uint32_t writers; /* LMDB writer threads still running */
};

/* A key and its value, never changed once published (a put publishes a
 * new node).  64-byte aligned (node_alloc): the index keeps a tag from the
 * hash in a slot's low 6 bits.  The header is 32 bytes, so a lookup of a
 * small key reads one line: the header, the key and the value's start.
 * What only the writing thread uses after publication (the retire and
 * free list link, the chain record: mchain_t) is in the node's tail, on
 * lines of its own after the value (node_chain), where no reader looks:
 * retiring or recycling a node writes no line a reader on another worker
 * holds (the link used to be in the header, so each put also took the
 * replaced node's first line from the other worker's cache). */
typedef struct mnode {
    uint64_t hash;
    uint32_t klen, vlen;
    uint32_t voff;             /* the value's offset in data (16-aligned) */
    uint32_t cls;              /* size class (node_alloc), or NO_CLASS */
    uint64_t pad_;
    alignas(16) unsigned char data[]; /* key, then the value at voff */
} mnode_t;
_Static_assert(offsetof(mnode_t, data) == 32, "a node's header is 32 bytes");

/* A chain of retired nodes handed to call_rcu: the record lives in the
 * tail of the chain's first node (every node has room for one). */
typedef struct mchain {
    struct mnode *link;        /* the thread's retire list, its chain, its free list */
    struct rcu_head rcu;
    struct mchain *limbo_next; /* the worker's next chain in limbo */
    mnode_t *head;             /* the chain's first node (which holds this) */
    _Atomic uint32_t gp;       /* GP_* (see retire_flush) */
} mchain_t;

/* The index: open addressing, linear probing, 2^k slots of node pointers
 * with a 6-bit tag from the hash in the low bits (SLOT_TAG), 0 for an
 * empty slot and SLOT_TOMB for a deleted one.  Writers: one-put sections
 * at once (atomic exchange / compare-exchange of a slot), or one section
 * holding every write-section lock; readers take no lock and store
 * nothing.  See "the index" below for the protocol. */
typedef struct mtab {
    uint64_t mask;     /* slots - 1 */
    uint32_t shift;    /* 64 - log2(slots): a key's first slot is hash >> shift */
    uint32_t pad_;
    struct rcu_head rcu; /* retired after a rebuild */
    alignas(64) _Atomic uintptr_t slot[];
} mtab_t;
#define SLOT_TAG ((uintptr_t)63)
#define SLOT_TOMB ((uintptr_t)1) /* not a node (no pointer bits), not empty */

typedef struct rtx { /* one worker's cached LMDB read transaction */
    alignas(64) MDB_txn *txn;
    uint32_t depth;
} rtx_t;

/* Laid out by writer: every read section reads the first line (kind, tab,
 * env, dbi, rtx, reg), which nothing writes while the container is open
 * but an index rebuild (tab).  The write-section locks (wl, one line
 * each), the writers' counts and the statistics are on lines of their
 * own: when they shared a line with the table pointer, each put by one
 * worker cost every other worker's next read a cache miss. */
struct ax_cont {
    alignas(64) uint32_t kind;
    MDB_dbi dbi;
    _Atomic(mtab_t *) tab; /* memory: the index (changes only on a rebuild) */
    MDB_env *env;        /* lmdb */
    rtx_t *rtx;          /* nworkers entries, each touched only by its worker */
    ax_cont_registry_t *reg;
    uint64_t min_slots;  /* memory: the index never shrinks below this */
    struct wlock *wl;    /* memory: write-section locks, nwl of them */
    uint32_t nwl;
    /* Memory kind: slots used and nodes live, changed by inserts and
     * deletes only (a put that replaces writes neither). */
    alignas(64) _Atomic uint64_t used; /* slots not empty: nodes + tombstones */
    _Atomic uint64_t live;
    alignas(64) _Atomic uint64_t entries, puts, dels, commits, commit_failed, acks_lost;
    alignas(64) struct ax_cont *next; /* the registry's list, under reg->mu */
    char name[AX_CONT_NAME_MAX];
    uint32_t refs; /* under reg->mu */
    bool closing;  /* LMDB: last close done, writer finishing */
    pthread_t writer;
    pthread_mutex_t qmu;
    pthread_cond_t qcv, dcv;
    batch_t *qhead, *qtail;
    uint64_t next_seq, done_seq;
    uint64_t fail_seq[64]; /* the last 64 failed commits, for ax_cont_sync */
    int fail_code[64];
    uint32_t nfail;
    bool stop;
};

/* Section layouts behind the public opaque arrays. */
typedef struct rd_impl {
    ax_cont_t *c;
    MDB_txn *txn;
    uintptr_t worker;  /* LMDB: worker id + 1, or 0 outside */
    uintptr_t outside; /* an outside thread's section (ctx NULL) */
} rd_impl_t;
#define RD_WORKER_MEM ((uintptr_t)2) /* rd->outside: a worker's memory section (nothing to undo) */
_Static_assert(sizeof(rd_impl_t) <= sizeof(ax_cont_rd_t), "read section fits");
/* Memory kind: a write-section lock per worker and one for outside
 * threads, each on its own line with the puts applied under it. */
typedef struct wlock {
    alignas(64) pthread_mutex_t mu;
    _Atomic uint64_t puts; /* changed under mu only (plain load and store) */
} wlock_t;
typedef struct wr_impl {
    ax_cont_t *c;
    batch_t *b;
    MDB_txn *txn; /* LMDB wget: a read transaction, begun on first use */
    uintptr_t outside;
    uintptr_t excl;   /* memory: every write-section lock taken */
    struct mnode *pending; /* memory: the section's one put so far (applied at leave) */
} wr_impl_t;
_Static_assert(sizeof(wr_impl_t) <= sizeof(ax_cont_wr_t), "write section fits");

static int mdb_err(int rc)
{
    return rc > 0 ? -rc : rc == 0 ? 0 : -EIO; /* LMDB's own codes are negative */
}

/* ---- worker hooks ------------------------------------------------------------------- */

static void hook_start(void *user, uint32_t worker)
{
    (void)user;
    if (t_worker_regs++ == 0) {
        urcu_qsbr_register_thread(); /* online from here */
        t_role = T_WORKER;
        t_worker_id = worker;
    }
}
static void hook_stop(void *user, uint32_t worker)
{
    (void)user, (void)worker;
    retire_flush();
    TSAN_QUIESCENT();
    if (--t_worker_regs == 0) {
        limbo_drain(); /* call_rcu callbacks free what is still in a grace period */
        urcu_qsbr_unregister_thread();
        t_role = T_NONE;
    }
}
static void hook_turn(void *user, uint32_t worker)
{
    (void)user, (void)worker;
    if (t_limbo_head)
        limbo_poll();
    if (t_retired && retire_due())
        retire_flush();
    TSAN_QUIESCENT();
    urcu_qsbr_quiescent_state();
}
static void hook_park(void *user, uint32_t worker)
{
    (void)user, (void)worker;
    retire_flush();
    TSAN_QUIESCENT();
    urcu_qsbr_thread_offline();
}
static void hook_unpark(void *user, uint32_t worker)
{
    (void)user, (void)worker;
    urcu_qsbr_thread_online();
}

int ax_cont_registry_create(ax_engine_t *eng, ax_cont_registry_t **out)
{
    if (!eng || !out)
        return -EINVAL;
    *out = NULL;
    ax_cont_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->eng = eng;
    r->nworkers = ax_engine_workers(eng);
    ax_worker_hooks_t h = {.size = sizeof h,
                           .user = r,
                           .on_start = hook_start,
                           .on_stop = hook_stop,
                           .on_turn = hook_turn,
                           .on_park = hook_park,
                           .on_unpark = hook_unpark};
    int rc = ax_engine_add_worker_hooks(eng, &h);
    if (rc < 0) {
        free(r);
        return rc;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    *out = r;
    return 0;
}

void ax_cont_registry_destroy(ax_cont_registry_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    while (r->writers) /* LMDB writers finishing their last commits */
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    /* Wait for every call_rcu callback (freed nodes).  rcu_barrier must not
     * run inside a read-side section: for QSBR, an offline thread. */
    bool reg = t_role == T_NONE;
    if (reg)
        urcu_qsbr_register_thread();
    if (t_role != T_OUTSIDE || t_online)
        urcu_qsbr_thread_offline();
    urcu_qsbr_barrier();
    if (t_role != T_OUTSIDE || t_online)
        urcu_qsbr_thread_online();
    if (reg)
        urcu_qsbr_unregister_thread();
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

int ax_cont_thread_register(void)
{
    if (t_role != T_NONE)
        return -EINVAL;
    urcu_qsbr_register_thread();
    urcu_qsbr_thread_offline(); /* online only inside sections */
    t_role = T_OUTSIDE;
    t_online = 0;
    return 0;
}

void ax_cont_thread_unregister(void)
{
    if (t_role != T_OUTSIDE)
        return;
    urcu_qsbr_thread_online();
    urcu_qsbr_unregister_thread();
    t_role = T_NONE;
}

/* An outside thread goes online for a section (nested sections count). */
static int section_begin(ax_ctx_t *ctx)
{
    if (ctx)
        return t_role == T_WORKER ? 0 : -EINVAL;
    if (t_role != T_OUTSIDE)
        return -EINVAL; /* call ax_cont_thread_register first */
    if (t_online++ == 0)
        urcu_qsbr_thread_online();
    return 0;
}
static void section_end(bool outside)
{
    if (outside && --t_online == 0) {
        retire_flush(); /* call_rcu needs the thread online */
        TSAN_QUIESCENT();
        urcu_qsbr_thread_offline();
    }
}

/* ---- memory kind: hashing and nodes ------------------------------------------------------ */

/* The index takes a key's first slot from the hash's top bits and its tag
 * from bits 32..37.  4- and 8-byte keys (the common ones) get one
 * multiply by a 64-bit odd constant (Fibonacci hashing: every key bit
 * reaches the top bits; an 8-byte key's high half is folded in first);
 * other lengths FNV-1a and a splitmix finaliser. */
#define HASH_MUL 0x9E3779B97F4A7C15ull
static inline uint64_t hash_key(const void *key, size_t len)
{
    if (len == 4) {
        uint32_t k;
        memcpy(&k, key, 4);
        return (uint64_t)k * HASH_MUL;
    }
    if (len == 8) {
        uint64_t k;
        memcpy(&k, key, 8);
        return (k ^ (k >> 32)) * HASH_MUL;
    }
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static inline uintptr_t hash_tag(uint64_t h)
{
    return (uintptr_t)(h >> 32) & SLOT_TAG;
}

/* Does node m hold this key?  Word compares for the common small keys
 * (constant sizes: single loads; a libc memcmp call was a tenth of a
 * read), the stored hash first for the others. */
static inline bool node_is(const mnode_t *m, uint64_t h, const void *key, size_t klen)
{
    if (m->klen != klen)
        return false;
    if (klen == 4) {
        uint32_t a, b;
        memcpy(&a, m->data, 4);
        memcpy(&b, key, 4);
        return a == b;
    }
    if (klen == 8) {
        uint64_t a, b;
        memcpy(&a, m->data, 8);
        memcpy(&b, key, 8);
        return a == b;
    }
    return m->hash == h && memcmp(m->data, key, klen) == 0;
}

/* ---- memory kind: node reclamation --------------------------------------------------------
 *
 * A replaced or deleted node may still be read by a reader on another
 * worker until that worker passes a quiescent point.  Nodes retired by a
 * thread wait on its retire list and go to call_rcu as one chain (see
 * retire_due: at a loop turn once the list is 1 ms old, or at 1024 nodes,
 * a park or a stop; an outside thread's when it leaves its section): one
 * call_rcu per node cost a futex wake of the call_rcu thread per write.
 *
 * Workers recycle.  Freeing every chain on liburcu's call_rcu thread cost a
 * worker's allocator a remote free per write and a refill per malloc (and
 * the call_rcu thread CPU time next to the workers).  So a worker's chain
 * stays the worker's: the call_rcu callback only marks it done (gp_done_cb);
 * the worker, at its next turns, moves done chains to per-size-class free
 * lists and takes new nodes from there (node_alloc).  The call_rcu thread
 * still detects the grace period; it no longer touches the nodes.
 *
 * Chain head state (mnode_t.gp):
 *   GP_PENDING    queued to call_rcu, in the worker's limbo FIFO
 *   GP_DONE       the grace period has elapsed (set by the callback)
 *   GP_ABANDONED  the worker left (hook_stop) before the callback ran: the
 *                 callback frees the chain
 * The callback and the worker each swap the state with one atomic exchange,
 * so exactly one of them frees an abandoned chain.  Outside threads have no
 * turns to poll at, so their chains are freed by the callback as before. */
enum { GP_PENDING = 0, GP_DONE = 1, GP_ABANDONED = 2 };
#define NO_CLASS 0xFFu
#define FREE_CAP_BYTES (4u << 20) /* per worker thread; more goes back to malloc */


/* The tail starts on a line of its own (a 64-byte value after a 4-byte
 * key: 112 bytes of node, the tail at 128, 192 bytes in all as before). */
static size_t chain_off(size_t voff, size_t vlen)
{
    return (offsetof(mnode_t, data) + voff + vlen + 63) & ~(size_t)63;
}

static size_t node_size(size_t voff, size_t vlen)
{
    return chain_off(voff, vlen) + sizeof(mchain_t);
}

static mchain_t *node_chain(mnode_t *m)
{
    return (mchain_t *)(void *)((char *)m + chain_off(m->voff, m->vlen));
}

/* The node's list link (in its tail: node_chain). */
#define LINK(m) (node_chain(m)->link)

static mnode_t *node_alloc(size_t voff, size_t vlen)
{
    size_t sz = node_size(voff, vlen);
    uint32_t cls = sz <= NCLASSES * 64u ? (uint32_t)((sz + 63) / 64 - 1) : NO_CLASS;
    mnode_t *m = cls != NO_CLASS ? t_free[cls] : NULL;
    if (m) {
        UNPOISON(m, (cls + 1) * 64u);
        t_free[cls] = LINK(m);
        t_free_bytes -= (cls + 1) * 64u;
    } else {
        /* 64-byte aligned: the index's tag takes a slot's low 6 bits */
        m = aligned_alloc(64, cls != NO_CLASS ? (cls + 1) * 64u : (sz + 63) & ~(size_t)63);
        if (!m)
            return NULL;
    }
    m->cls = cls;
    return m;
}

static void node_poison(mnode_t *m)
{
#ifndef AXON_NO_DEBUG_CHECKS
    memset(m->data, 0xDD, m->voff + m->vlen); /* a reader still holding it sees garbage */
#else
    (void)m;
#endif
}

static void chain_free(mnode_t *m)
{
    for (mnode_t *nx; m; m = nx) {
        nx = LINK(m);
        node_poison(m);
        free(m);
    }
}

/* A worker's done chain: its nodes to the free lists (up to the cap). */
static void chain_recycle(mnode_t *m)
{
    for (mnode_t *nx; m; m = nx) {
        nx = LINK(m);
        node_poison(m);
        size_t sz = (m->cls + 1) * 64u;
        if (m->cls == NO_CLASS || t_free_bytes + sz > FREE_CAP_BYTES) {
            free(m);
            continue;
        }
        LINK(m) = t_free[m->cls];
        t_free[m->cls] = m;
        t_free_bytes += sz;
        POISON(m, sz);
    }
}

/* Outside threads' chains: freed after the grace period (call_rcu thread). */
static void chain_free_cb(struct rcu_head *head)
{
    TSAN_ACQ(&tsan_grace_token); /* every reader passed a quiescent point */
    chain_free(caa_container_of(head, mchain_t, rcu)->head);
}

/* Workers' chains: only marked.  R1: the release half of the exchange makes
 * "the grace period has elapsed" (the callback runs after every reader
 * passed a quiescent point) visible to the worker's acquire in
 * limbo_poll (A1) before it reuses a node.  An abandoned chain is ours. */
static void gp_done_cb(struct rcu_head *head)
{
    TSAN_ACQ(&tsan_grace_token);
    mchain_t *ch = caa_container_of(head, mchain_t, rcu);
    if (atomic_exchange_explicit(&ch->gp, GP_DONE, memory_order_acq_rel) == GP_ABANDONED)
        chain_free(ch->head);
}

/* Worker, each turn: recycle the chains whose grace period has elapsed
 * (FIFO: call_rcu runs callbacks in order, so a pending head means the
 * rest are pending too, or done soon after; either way they wait a turn). */
static void limbo_poll(void)
{
    while (t_limbo_head &&
           /* A1: pairs with R1 in gp_done_cb */
           atomic_load_explicit(&t_limbo_head->gp, memory_order_acquire) == GP_DONE) {
        mchain_t *ch = t_limbo_head;
        t_limbo_head = ch->limbo_next;
        if (!t_limbo_head)
            t_limbo_tail = NULL;
        chain_recycle(ch->head); /* ch lives in that head: not touched after */
    }
}

/* Worker leaving (last hook_stop): chains still in a grace period are
 * handed to their callbacks; the free lists go back to malloc. */
static void limbo_drain(void)
{
    for (mchain_t *ch = t_limbo_head, *nx; ch; ch = nx) {
        nx = ch->limbo_next; /* read before the exchange: after it the chain may be freed */
        /* acq_rel: pairs with the callback's exchange (R1), either way round */
        if (atomic_exchange_explicit(&ch->gp, GP_ABANDONED, memory_order_acq_rel) == GP_DONE)
            chain_free(ch->head);
    }
    t_limbo_head = t_limbo_tail = NULL;
    for (uint32_t i = 0; i < NCLASSES; i++)
        for (mnode_t *m = t_free[i], *nx; m; m = nx) {
            UNPOISON(m, (i + 1) * 64u);
            nx = LINK(m);
            free(m);
        }
    memset(t_free, 0, sizeof t_free);
    t_free_bytes = 0;
}

static void retire_flush(void)
{
    if (!t_retired)
        return;
    mnode_t *m = t_retired;
    t_retired = NULL;
    t_nretired = 0;
    mchain_t *ch = node_chain(m);
    ch->head = m;
    if (t_role != T_WORKER) {
        urcu_qsbr_call_rcu(&ch->rcu, chain_free_cb);
        return;
    }
    atomic_store_explicit(&ch->gp, GP_PENDING, memory_order_relaxed); /* published by call_rcu */
    ch->limbo_next = NULL;
    if (t_limbo_tail)
        t_limbo_tail->limbo_next = ch;
    else
        t_limbo_head = ch;
    t_limbo_tail = ch;
    urcu_qsbr_call_rcu(&ch->rcu, gp_done_cb);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A worker hands its retire list to call_rcu once it is RETIRE_HOLD_NS
 * old (or RETIRE_MAX nodes long: about 200 KiB of 64-byte values; or the
 * worker parks or stops), not every
 * turn: each call_rcu wakes liburcu's call_rcu thread, which then runs a
 * grace period, spinning on the workers' counters; with a turn every ~256
 * reads and 1% writes that was a grace period per turn, a third thread
 * busy next to two workers on two CPUs.  A node waits at most this much
 * longer before its grace period starts. */
#define RETIRE_HOLD_NS 1000000u
#define RETIRE_MAX 1024u
static bool retire_due(void)
{
    return t_nretired >= RETIRE_MAX || mono_ns() - t_retired_since >= RETIRE_HOLD_NS;
}

static void retire(mnode_t *m)
{
    if (!t_retired && t_role == T_WORKER)
        t_retired_since = mono_ns();
    LINK(m) = t_retired;
    t_retired = m;
    if (++t_nretired >= RETIRE_MAX)
        retire_flush();
}

/* ---- memory kind: the index -------------------------------------------------------------
 *
 * Why not a library's table: docs/containers.md ("The index").  In short,
 * on the same keys and nodes (perf/scripts/lookup_count.c, callgrind)
 * liburcu's cds_lfht_lookup (split-ordered lists: bit-reversed hashes,
 * dummy nodes, a match callback) costs 145 instructions a lookup and
 * Concurrency Kit's ck_hs_get (SPMC) 168; this one 23, and the grace
 * periods it needs are the container's QSBR ones.
 *
 * Protocol.  One writer at a time holding every write-section lock, or
 * one-put sections at once under their own locks (put_shared: slots only
 * go empty/tombstone -> node and node -> node then, atomically); readers
 * take no lock and store nothing.  A slot goes empty -> node -> node ... ->
 * SLOT_TOMB -> node ...; it never goes back to empty while the table is
 * current, and no node ever moves within a table, so a reader walking a
 * probe sequence from the key's first slot to an empty slot sees the
 * key's node if it was there for the whole walk (and the old or the new
 * one if a put replaced it meanwhile).  The writer keeps live + tombstones
 * at most half the slots (a put that would pass that rebuilds first), so
 * every walk ends at an empty slot.
 *   P1  a put writes the whole node, then stores its pointer into the slot
 *       with release; C1: the reader's acquire load of the slot pairs with
 *       it, so the node's fields it then reads are the written ones.
 *   P2  a rebuild fills a new table, then stores c->tab with release; C2:
 *       the reader's acquire load of c->tab pairs with it.  Later puts go
 *       to the new table only; a reader still walking the old one sees it
 *       as it was at the rebuild (a consistent, older state).
 * Replaced and deleted nodes and replaced tables are freed (or recycled)
 * only after a grace period, so whatever a reader loaded stays readable
 * until it leaves its section (and its worker passes a turn). */
static inline const mnode_t *idx_find(const mtab_t *t, uint64_t h, const void *key, size_t klen)
{
    uintptr_t tag = hash_tag(h);
    for (uint64_t i = h >> t->shift;; i = (i + 1) & t->mask) {
        uintptr_t s = atomic_load_explicit(&t->slot[i], memory_order_acquire); /* C1 */
        if (!s)
            return NULL;
        if (((s ^ tag) & SLOT_TAG) == 0 && s > SLOT_TAG) {
            const mnode_t *m = (const mnode_t *)(s & ~SLOT_TAG);
            if (node_is(m, h, key, klen))
                return m;
        }
    }
}

/* Writer only.  The slot holding the key (or -1), and in *ins the first
 * tombstone or the empty slot that ended the walk (where a put inserts). */
static int64_t idx_probe(const mtab_t *t, uint64_t h, const void *key, size_t klen, uint64_t *ins)
{
    uintptr_t tag = hash_tag(h);
    bool have_ins = false;
    for (uint64_t i = h >> t->shift;; i = (i + 1) & t->mask) {
        /* relaxed: only this thread (holding every write-section lock) stores to the slots */
        uintptr_t s = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
        if (!s) {
            if (!have_ins)
                *ins = i;
            return -1;
        }
        if (s == SLOT_TOMB) {
            if (!have_ins)
                *ins = i, have_ins = true;
            continue;
        }
        if (((s ^ tag) & SLOT_TAG) == 0 && node_is((const mnode_t *)(s & ~SLOT_TAG), h, key, klen))
            return (int64_t)i;
    }
}

static uintptr_t slot_of(const mnode_t *m)
{
    return (uintptr_t)m | hash_tag(m->hash);
}

static mtab_t *tab_alloc(uint64_t slots)
{
    if (slots > ((uint64_t)1 << 40))
        return NULL; /* 8 TiB of slots: treat as out of memory */
    size_t bytes = sizeof(mtab_t) + (size_t)slots * sizeof(uintptr_t);
    mtab_t *t = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!t)
        return NULL;
    memset(t, 0, bytes);
    t->mask = slots - 1;
    t->shift = 64u - (uint32_t)__builtin_ctzll(slots);
    return t;
}

static void tab_free_cb(struct rcu_head *head)
{
    TSAN_ACQ(&tsan_grace_token); /* every reader passed a quiescent point */
    free(caa_container_of(head, mtab_t, rcu));
}

/* Writer: a new table for `need` nodes (at most a quarter full, so it
 * takes as many puts again before the next rebuild), the live nodes
 * copied, no tombstones; published with P2, the old one freed after a
 * grace period.  -ENOMEM: nothing changed. */
static int idx_rebuild(ax_cont_t *c, uint64_t need)
{
    mtab_t *old = atomic_load_explicit(&c->tab, memory_order_relaxed); /* ours (every write-section lock) */
    uint64_t slots = c->min_slots;
    while (slots / 4 < need && slots < ((uint64_t)1 << 41))
        slots *= 2;
    mtab_t *t = tab_alloc(slots);
    if (!t)
        return -ENOMEM;
    for (uint64_t i = 0; i <= old->mask; i++) {
        uintptr_t s = atomic_load_explicit(&old->slot[i], memory_order_relaxed);
        if (s <= SLOT_TAG)
            continue;
        const mnode_t *m = (const mnode_t *)(s & ~SLOT_TAG);
        uint64_t j = m->hash >> t->shift;
        while (atomic_load_explicit(&t->slot[j], memory_order_relaxed))
            j = (j + 1) & t->mask;
        atomic_store_explicit(&t->slot[j], s, memory_order_relaxed); /* published by P2 */
    }
    atomic_store_explicit(&c->tab, t, memory_order_release); /* P2: pairs with C2 */
    atomic_store_explicit(&c->used, atomic_load_explicit(&c->live, memory_order_relaxed),
                          memory_order_relaxed);
    urcu_qsbr_call_rcu(&old->rcu, tab_free_cb); /* the caller is online: in a write section */
    return 0;
}

/* A counter only one lock's holder changes: load and store, no locked
 * instruction (the lock orders its holders). */
static void wmu_add(_Atomic uint64_t *x, uint64_t d)
{
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + d, memory_order_relaxed);
}

static int mem_get(ax_cont_t *c, const void *key, size_t klen, const void **val, size_t *vlen)
{
    const mtab_t *t = atomic_load_explicit(&c->tab, memory_order_acquire); /* C2 */
    const mnode_t *m = idx_find(t, hash_key(key, klen), key, klen);
    if (!m)
        return -ENOENT;
    *val = m->data + m->voff;
    *vlen = m->vlen;
    return 0;
}

/* ---- memory kind: write-section locks ------------------------------------------------------
 *
 * Write sections exclude each other, but the common one, a section whose
 * only operation is one put, needs no more than the put's own atomicity:
 * so it must not write a line every writer writes.  One mutex per
 * container was such a line: with two workers writing 1% of their
 * operations it moved between them on about every other write (and the
 * lock's locked instruction waited for it), on top of the lines the put
 * itself must move (the slot's and the new node's).
 *
 * So there is a lock per worker (and one for outside threads), each on its
 * own line:
 *   - a section's first put builds its node and keeps it (wr->pending);
 *   - at leave, if that put was the section's only operation, the section
 *     takes its own worker's lock only and applies it with put_shared:
 *     the slot is swapped with an atomic exchange or claimed with a
 *     compare-exchange, so such puts on other workers may run at the same
 *     time (each is one atomic step: as if the sections ran one after the
 *     other).  Its own lock stays on its own worker's cache;
 *   - any other section (a second put, a wget or a del) takes every lock,
 *     in index order (wr_excl), applies the kept put first and then runs
 *     alone, as before: a read-modify-write stays atomic with respect to
 *     every other writer, and wget sees the section's own puts.  Holding
 *     every lock excludes the one-put sections too (they hold one);
 *     deletes, tombstones and index rebuilds happen only then.
 * A one-put section's put becomes visible at leave (it used to be at the
 * put's return): before leave nobody but the section could tell. */
static uint32_t wl_own(const ax_cont_t *c)
{
    uint32_t n = c->nwl - 1; /* the outside threads' lock */
    return t_role == T_WORKER && t_worker_id < n ? t_worker_id : n;
}

static void wl_lock_all(ax_cont_t *c)
{
    for (uint32_t i = 0; i < c->nwl; i++) /* index order: two such sections cannot deadlock */
        pthread_mutex_lock(&c->wl[i].mu);
}

static void wl_unlock_all(ax_cont_t *c)
{
    for (uint32_t i = c->nwl; i-- > 0;)
        pthread_mutex_unlock(&c->wl[i].mu);
}

static mnode_t *node_build(const void *key, size_t klen, const void *val, size_t vlen)
{
    size_t voff = (klen + 15) & ~(size_t)15;
    mnode_t *m = node_alloc(voff, vlen);
    if (!m)
        return NULL;
    m->klen = (uint32_t)klen;
    m->vlen = (uint32_t)vlen;
    m->voff = (uint32_t)voff;
    memcpy(m->data, key, klen);
    if (vlen)
        memcpy(m->data + voff, val, vlen);
    m->hash = hash_key(key, klen);
    return m;
}

/* Every lock held: nobody else changes the index.  Consumes m. */
static int put_excl(ax_cont_t *c, mnode_t *m)
{
    const void *key = m->data;
    size_t klen = m->klen;
    mtab_t *t = atomic_load_explicit(&c->tab, memory_order_relaxed); /* ours (every lock) */
    uint64_t ins = 0;
    int64_t at = idx_probe(t, m->hash, key, klen, &ins);
    if (at >= 0) {
        uintptr_t old = atomic_load_explicit(&t->slot[at], memory_order_relaxed);
        atomic_store_explicit(&t->slot[at], slot_of(m), memory_order_release); /* P1 */
        retire((mnode_t *)(old & ~SLOT_TAG));
    } else {
        bool fresh = atomic_load_explicit(&t->slot[ins], memory_order_relaxed) == 0;
        uint64_t used = atomic_load_explicit(&c->used, memory_order_relaxed);
        if (fresh && (used + 1) * 2 > t->mask + 1) {
            if (idx_rebuild(c, atomic_load_explicit(&c->live, memory_order_relaxed) + 1) < 0) {
                free(m);
                return -ENOMEM;
            }
            t = atomic_load_explicit(&c->tab, memory_order_relaxed);
            idx_probe(t, m->hash, key, klen, &ins); /* no tombstones: the first empty slot */
            used = atomic_load_explicit(&c->used, memory_order_relaxed);
        }
        atomic_store_explicit(&c->used, used + fresh, memory_order_relaxed);
        atomic_store_explicit(&t->slot[ins], slot_of(m), memory_order_release); /* P1 */
        wmu_add(&c->live, 1);
    }
    wmu_add(&c->wl[wl_own(c)].puts, 1);
    return 0;
}

/* Own lock held: other one-put sections may run at once (on their own
 * locks), every-lock sections do not, so no slot becomes empty or a
 * tombstone and the table does not change meanwhile; slots only go
 * empty/tombstone -> node and node -> node.  A key has one slot: two puts
 * inserting one key walk the same sequence and try the same first
 * tombstone or empty slot (nothing before it can become one), one claims
 * it, the other walks again and replaces.  Consumes m, or -EAGAIN (the
 * insert would need a rebuild: take every lock and put_excl). */
static int put_shared(ax_cont_t *c, mnode_t *m)
{
    mtab_t *t = atomic_load_explicit(&c->tab, memory_order_relaxed); /* changes under every lock only */
    uintptr_t tag = hash_tag(m->hash), mine = slot_of(m);
    for (;;) {
        uint64_t ins = UINT64_MAX, i = m->hash >> t->shift;
        uintptr_t s;
        for (;; i = (i + 1) & t->mask) {
            /* C1 (acquire): a node another one-put section published is
             * read by node_is */
            s = atomic_load_explicit(&t->slot[i], memory_order_acquire);
            if (!s)
                break;
            if (s == SLOT_TOMB) {
                if (ins == UINT64_MAX)
                    ins = i;
                continue;
            }
            if (((s ^ tag) & SLOT_TAG) == 0 && node_is((const mnode_t *)(s & ~SLOT_TAG), m->hash, m->data, m->klen)) {
                /* P1 (release: the node before its pointer) and acquire:
                 * the exchange hands each replaced node to exactly one
                 * writer, which retires it */
                uintptr_t old = atomic_exchange_explicit(&t->slot[i], mine, memory_order_acq_rel);
                retire((mnode_t *)(old & ~SLOT_TAG));
                wmu_add(&c->wl[wl_own(c)].puts, 1);
                return 0;
            }
        }
        uintptr_t expect = SLOT_TOMB;
        bool fresh = ins == UINT64_MAX;
        if (fresh) { /* a fresh slot: count it first, within the half-load bound */
            ins = i;
            expect = 0;
            uint64_t u = atomic_fetch_add_explicit(&c->used, 1, memory_order_relaxed);
            if ((u + 1) * 2 > t->mask + 1) {
                atomic_fetch_sub_explicit(&c->used, 1, memory_order_relaxed);
                return -EAGAIN;
            }
        }
        /* P1 (release) on success; acquire on failure: the slot's new node
         * is read on the next walk */
        if (atomic_compare_exchange_strong_explicit(&t->slot[ins], &expect, mine, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            atomic_fetch_add_explicit(&c->live, 1, memory_order_relaxed);
            wmu_add(&c->wl[wl_own(c)].puts, 1);
            return 0;
        }
        if (fresh) /* lost the slot: its winner counted it */
            atomic_fetch_sub_explicit(&c->used, 1, memory_order_relaxed);
    }
}

/* The section goes exclusive (its second operation, a wget or a del):
 * every lock, then the kept put.  0 or -ENOMEM (the kept put needed a
 * rebuild that failed: it is dropped). */
static int wr_excl(ax_cont_t *c, wr_impl_t *wr)
{
    if (wr->excl)
        return 0;
    wl_lock_all(c);
    wr->excl = 1;
    mnode_t *m = wr->pending;
    wr->pending = NULL;
    return m ? put_excl(c, m) : 0;
}

/* Leave: apply a one-put section's put. */
static int wr_finish(ax_cont_t *c, wr_impl_t *wr)
{
    int rc = 0;
    if (wr->excl) {
        wl_unlock_all(c);
        return 0;
    }
    mnode_t *m = wr->pending;
    if (!m)
        return 0;
    wr->pending = NULL;
    wlock_t *l = &c->wl[wl_own(c)];
    pthread_mutex_lock(&l->mu);
    rc = put_shared(c, m);
    pthread_mutex_unlock(&l->mu);
    if (rc == -EAGAIN) {
        wl_lock_all(c);
        rc = put_excl(c, m);
        wl_unlock_all(c);
    }
    return rc;
}

static int mem_put(ax_cont_t *c, wr_impl_t *wr, const void *key, size_t klen, const void *val,
                   size_t vlen)
{
    mnode_t *m = node_build(key, klen, val, vlen);
    if (!m)
        return -ENOMEM;
    if (!wr->excl && !wr->pending) {
        wr->pending = m; /* applied at leave, if it stays the only operation */
        return 0;
    }
    int rc = wr_excl(c, wr);
    if (rc < 0) {
        free(m);
        return rc;
    }
    return put_excl(c, m);
}

static int mem_del(ax_cont_t *c, const void *key, size_t klen)
{
    mtab_t *t = atomic_load_explicit(&c->tab, memory_order_relaxed); /* ours (every write-section lock) */
    uint64_t ins;
    int64_t at = idx_probe(t, hash_key(key, klen), key, klen, &ins);
    if (at < 0)
        return -ENOENT;
    uintptr_t old = atomic_load_explicit(&t->slot[at], memory_order_relaxed);
    /* relaxed: a reader does not follow a tombstone; the node it may still
     * have loaded stays valid until the grace period (retire) */
    atomic_store_explicit(&t->slot[at], SLOT_TOMB, memory_order_relaxed);
    retire((mnode_t *)(old & ~SLOT_TAG));
    wmu_add(&c->live, (uint64_t)-1);
    atomic_fetch_add_explicit(&c->dels, 1, memory_order_relaxed);
    return 0;
}

/* Last close: nobody holds the container any more.  Every node is
 * retired (the chain goes to call_rcu: a worker's chain may still be
 * read by nobody, but its recycling waits for the grace period like any
 * other); the index is freed at once. */
static void mem_destroy(ax_cont_t *c)
{
    mtab_t *t = atomic_load_explicit(&c->tab, memory_order_relaxed);
    for (uint64_t i = 0; i <= t->mask; i++) {
        uintptr_t s = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
        if (s > SLOT_TAG)
            retire((mnode_t *)(s & ~SLOT_TAG));
    }
    retire_flush();
    free(t);
}

/* ---- LMDB kind: the writer thread ------------------------------------------------------------ */

static int apply_batch(ax_cont_t *c, MDB_txn *parent, const batch_t *b)
{
    MDB_txn *t;
    int rc = mdb_txn_begin(c->env, parent, 0, &t); /* nested: a bad batch fails alone */
    if (rc)
        return mdb_err(rc);
    size_t off = 0;
    while (off < b->len && !rc) {
        uint8_t op = b->buf[off];
        uint32_t kl, vl;
        memcpy(&kl, b->buf + off + 1, 4);
        memcpy(&vl, b->buf + off + 5, 4);
        MDB_val k = {kl, b->buf + off + 9}, v = {vl, b->buf + off + 9 + kl};
        if (op == 'P')
            rc = mdb_put(t, c->dbi, &k, &v, 0);
        else if ((rc = mdb_del(t, c->dbi, &k, NULL)) == MDB_NOTFOUND)
            rc = 0; /* deleting a missing key is not an error here */
        off += 9 + (size_t)kl + vl;
    }
    if (rc) {
        mdb_txn_abort(t);
        return mdb_err(rc);
    }
    return mdb_err(mdb_txn_commit(t));
}

static void free_batch(batch_t *b)
{
    if (b) {
        free(b->buf);
        free(b);
    }
}

static void lmdb_close_env(ax_cont_t *c)
{
    if (c->rtx)
        for (uint32_t i = 0; i < c->reg->nworkers; i++)
            if (c->rtx[i].txn)
                mdb_txn_abort(c->rtx[i].txn);
    free(c->rtx);
    if (c->env) {
        mdb_dbi_close(c->env, c->dbi);
        mdb_env_close(c->env);
    }
}

static void cont_free(ax_cont_t *c)
{
    for (uint32_t i = 0; i < c->nwl; i++)
        pthread_mutex_destroy(&c->wl[i].mu);
    free(c->wl);
    if (c->kind == AX_CONT_LMDB) {
        pthread_mutex_destroy(&c->qmu);
        pthread_cond_destroy(&c->qcv);
        pthread_cond_destroy(&c->dcv);
    }
    free(c);
}

static void *writer_main(void *arg)
{
    ax_cont_t *c = arg;
    ax_cont_registry_t *r = c->reg;
    pthread_setname_np(pthread_self(), "axon-lmdb-w");
    for (;;) {
        pthread_mutex_lock(&c->qmu);
        while (!c->qhead && !c->stop)
            pthread_cond_wait(&c->qcv, &c->qmu);
        batch_t *list = c->qhead;
        c->qhead = c->qtail = NULL;
        bool stop = c->stop;
        pthread_mutex_unlock(&c->qmu);
        if (!list && stop)
            break;
        /* One write transaction (one sync) for everything queued. */
        MDB_txn *t;
        int trc = mdb_err(mdb_txn_begin(c->env, NULL, 0, &t));
        uint64_t hi = list->seq;
        for (batch_t *b = list; b; b = b->next)
            hi = b->seq; /* done_seq covers every section taken, failed or not */
        for (batch_t *b = list; b && !trc; b = b->next) {
            int rc = apply_batch(c, t, b);
            b->reply_type |= rc ? 0x80000000u : 0; /* remember which failed: bit 31 */
            if (!rc)
                atomic_fetch_add_explicit(&c->puts, b->nops, memory_order_relaxed);
        }
        if (!trc)
            trc = mdb_err(mdb_txn_commit(t)); /* syncs: the env has no MDB_NOSYNC */
        if (trc)
            atomic_fetch_add_explicit(&c->commit_failed, 1, memory_order_relaxed);
        else
            atomic_fetch_add_explicit(&c->commits, 1, memory_order_relaxed);
        MDB_stat st;
        MDB_txn *rt;
        if (!trc && mdb_txn_begin(c->env, NULL, MDB_RDONLY, &rt) == 0) {
            if (mdb_stat(rt, c->dbi, &st) == 0)
                atomic_store_explicit(&c->entries, st.ms_entries, memory_order_relaxed);
            mdb_txn_abort(rt);
        }
        for (batch_t *b = list, *nx; b; b = nx) {
            nx = b->next;
            bool failed = trc || (b->reply_type & 0x80000000u);
            ax_cont_commit_t ack = {.seq = b->seq, .status = failed ? (trc ? trc : -EIO) : 0,
                                    .ops = b->nops};
            if (failed) {
                pthread_mutex_lock(&c->qmu);
                c->fail_seq[c->nfail % 64] = b->seq;
                c->fail_code[c->nfail % 64] = ack.status;
                c->nfail++;
                pthread_mutex_unlock(&c->qmu);
            }
            if (b->reply_to != AX_REF_NONE &&
                ax_engine_send(r->eng, b->reply_to, b->reply_type & 0x7FFFFFFFu, &ack, sizeof ack) < 0)
                atomic_fetch_add_explicit(&c->acks_lost, 1, memory_order_relaxed);
            free_batch(b);
        }
        pthread_mutex_lock(&c->qmu);
        c->done_seq = hi;
        pthread_cond_broadcast(&c->dcv);
        pthread_mutex_unlock(&c->qmu);
    }
    /* Last close happened and the queue is empty: close and go. */
    lmdb_close_env(c);
    pthread_mutex_lock(&r->mu);
    for (ax_cont_t **p = &r->list; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    r->writers--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    cont_free(c);
    return NULL;
}

static int lmdb_open(ax_cont_t *c, const ax_cont_config_t *cfg)
{
    if (!cfg->path || !cfg->path[0])
        return -EINVAL;
    if (mkdir(cfg->path, 0755) < 0 && errno != EEXIST)
        return -errno;
    int rc = mdb_env_create(&c->env);
    if (rc)
        return mdb_err(rc);
    mdb_env_set_mapsize(c->env, cfg->map_bytes ? cfg->map_bytes : (size_t)1 << 30);
    mdb_env_set_maxreaders(c->env, c->reg->nworkers + 126);
    /* MDB_NOTLS: a read transaction belongs to its MDB_txn, not the thread,
     * so each worker keeps one and renews it per section. */
    if ((rc = mdb_env_open(c->env, cfg->path, MDB_NOTLS, 0644)) != 0)
        goto fail;
    MDB_txn *t;
    if ((rc = mdb_txn_begin(c->env, NULL, 0, &t)) != 0)
        goto fail;
    if ((rc = mdb_dbi_open(t, NULL, 0, &c->dbi)) != 0 || (rc = mdb_txn_commit(t)) != 0) {
        goto fail;
    }
    c->rtx = calloc(c->reg->nworkers ? c->reg->nworkers : 1, sizeof *c->rtx);
    if (!c->rtx) {
        rc = ENOMEM;
        goto fail;
    }
    pthread_mutex_init(&c->qmu, NULL);
    pthread_cond_init(&c->qcv, NULL);
    pthread_cond_init(&c->dcv, NULL);
    if ((rc = pthread_create(&c->writer, NULL, writer_main, c)) != 0) {
        pthread_mutex_destroy(&c->qmu);
        pthread_cond_destroy(&c->qcv);
        pthread_cond_destroy(&c->dcv);
        goto fail;
    }
    pthread_detach(c->writer);
    c->reg->writers++; /* under reg->mu (the caller holds it) */
    return 0;
fail:
    free(c->rtx);
    c->rtx = NULL;
    mdb_env_close(c->env);
    c->env = NULL;
    return mdb_err(rc);
}

/* ---- open / close ---------------------------------------------------------------------- */

int ax_cont_open(ax_cont_registry_t *r, const char *name, const ax_cont_config_t *cfg, ax_cont_t **out)
{
    if (!r || !name || !out || !name[0] || strlen(name) >= AX_CONT_NAME_MAX)
        return -EINVAL;
    *out = NULL;
    if (cfg && (cfg->size != sizeof(ax_cont_config_t) || cfg->kind > AX_CONT_LMDB))
        return -EINVAL;
    pthread_mutex_lock(&r->mu);
    ax_cont_t *c;
again:
    for (c = r->list; c; c = c->next)
        if (!strcmp(c->name, name))
            break;
    if (c && c->closing) { /* an LMDB env still closing: wait, never open it twice */
        pthread_cond_wait(&r->cv, &r->mu);
        goto again;
    }
    if (c) {
        if (cfg && cfg->kind != c->kind) {
            pthread_mutex_unlock(&r->mu);
            return -EINVAL;
        }
        c->refs++;
        pthread_mutex_unlock(&r->mu);
        *out = c;
        return 0;
    }
    if (!cfg) {
        pthread_mutex_unlock(&r->mu);
        return -ENOENT;
    }
    c = aligned_alloc(64, sizeof *c); /* sizeof is a multiple of 64 (alignas) */
    if (c)
        memset(c, 0, sizeof *c);
    if (!c) {
        pthread_mutex_unlock(&r->mu);
        return -ENOMEM;
    }
    c->reg = r;
    c->kind = cfg->kind;
    c->refs = 1;
    snprintf(c->name, sizeof c->name, "%s", name);
    int rc = 0;
    if (c->kind == AX_CONT_MEMORY) {
        /* Adaptive: a writer finding a lock taken spins a little before
         * it sleeps.  Write sections are short (the contract), and a futex
         * sleep and wake-up costs a worker microseconds, far longer than
         * the section it waits for. */
        c->nwl = r->nworkers + 1;
        c->wl = aligned_alloc(64, (size_t)c->nwl * sizeof *c->wl);
        if (!c->wl) {
            pthread_mutex_unlock(&r->mu);
            free(c);
            return -ENOMEM;
        }
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
        for (uint32_t i = 0; i < c->nwl; i++) {
            pthread_mutex_init(&c->wl[i].mu, &ma);
            atomic_init(&c->wl[i].puts, 0);
        }
        pthread_mutexattr_destroy(&ma);
        uint32_t b = cfg->buckets ? cfg->buckets : 1024;
        if (b & (b - 1))
            rc = -EINVAL;
        else {
            c->min_slots = 2 * (uint64_t)b; /* b keys fit at half load before a rebuild */
            mtab_t *t = tab_alloc(c->min_slots);
            atomic_init(&c->tab, t); /* published with c (the registry mutex) */
            if (!t)
                rc = -ENOMEM;
        }
    } else {
        rc = lmdb_open(c, cfg);
    }
    if (rc < 0) {
        pthread_mutex_unlock(&r->mu);
        if (c->kind == AX_CONT_LMDB)
            c->kind = AX_CONT_MEMORY; /* lmdb_open cleaned up after itself: free the rest only */
        cont_free(c);
        return rc;
    }
    c->next = r->list;
    r->list = c;
    pthread_mutex_unlock(&r->mu);
    *out = c;
    return 0;
}

void ax_cont_close(ax_cont_t *c)
{
    if (!c)
        return;
    ax_cont_registry_t *r = c->reg;
    pthread_mutex_lock(&r->mu);
    if (--c->refs) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    if (c->kind == AX_CONT_LMDB) {
        /* The writer commits what is queued, closes the env, unlinks and
         * frees the container (writer_main); opens of this name wait. */
        c->closing = true;
        pthread_mutex_unlock(&r->mu);
        pthread_mutex_lock(&c->qmu);
        c->stop = true;
        pthread_cond_signal(&c->qcv);
        pthread_mutex_unlock(&c->qmu);
        return;
    }
    for (ax_cont_t **p = &r->list; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    pthread_mutex_unlock(&r->mu);
    /* call_rcu needs a registered thread, online (QSBR): an outside thread
     * goes online as for a section; an unregistered one registers for the
     * time of the teardown. */
    bool temp = t_role == T_NONE, outside = t_role == T_OUTSIDE;
    if (temp)
        urcu_qsbr_register_thread();
    if (outside && t_online++ == 0)
        urcu_qsbr_thread_online();
    mem_destroy(c);
    section_end(outside);
    if (temp)
        urcu_qsbr_unregister_thread();
    cont_free(c);
}

/* ---- read sections -------------------------------------------------------------------------- */

static int read_enter_slow(ax_ctx_t *ctx, ax_cont_t *c, ax_cont_rd_t *prd);

/* The read path (read_enter, get, read_leave) has a fast path for the
 * common case, a memory section on a worker, and tail-calls an out-of-line
 * function for the rest, so the fast path saves no registers: with the
 * slow code inline, pushes and pops were a fifth of a read. */
int ax_cont_read_enter(ax_ctx_t *ctx, ax_cont_t *c, ax_cont_rd_t *prd)
{
    /* A worker is online (QSBR), which is the whole guard (urcu's QSBR
     * read lock is empty): nothing to do but remember the container. */
    if (__builtin_expect(ctx && c && prd && t_role == T_WORKER && c->kind == AX_CONT_MEMORY, 1)) {
        rd_impl_t *rd = (rd_impl_t *)(void *)prd;
        rd->c = c;
        rd->outside = RD_WORKER_MEM;
        return 0;
    }
    return read_enter_slow(ctx, c, prd);
}

__attribute__((noinline)) static int read_enter_slow(ax_ctx_t *ctx, ax_cont_t *c, ax_cont_rd_t *prd)
{
    if (!c || !prd)
        return -EINVAL;
    rd_impl_t *rd = (rd_impl_t *)(void *)prd;
    int rc = section_begin(ctx);
    if (rc < 0)
        return rc;
    rd->c = c;
    rd->txn = NULL;
    rd->outside = !ctx;
    if (c->kind == AX_CONT_MEMORY)
        return 0; /* QSBR: being online is the guard (its read_lock is empty) */
    rd->worker = ctx ? (uintptr_t)ax_worker_id(ctx) + 1 : 0;
    if (rd->worker && rd->worker - 1 < c->reg->nworkers) {
        /* The worker's cached read transaction: renew is a slot update,
         * no allocation, no lock.  Nested sections share it. */
        rtx_t *x = &c->rtx[rd->worker - 1];
        if (x->depth == 0) {
            rc = x->txn ? mdb_txn_renew(x->txn) : mdb_txn_begin(c->env, NULL, MDB_RDONLY, &x->txn);
            if (rc) {
                section_end(false);
                return mdb_err(rc);
            }
        }
        x->depth++;
        rd->txn = x->txn;
        return 0;
    }
    rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &rd->txn);
    if (rc) {
        section_end(!ctx);
        return mdb_err(rc);
    }
    return 0;
}

static int lmdb_get(ax_cont_t *c, MDB_txn *txn, const void *key, size_t klen, const void **val,
                    size_t *vlen)
{
    MDB_val k = {klen, (void *)(uintptr_t)key}, v;
    int rc = mdb_get(txn, c->dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc)
        return mdb_err(rc);
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

__attribute__((noinline)) static int get_slow(rd_impl_t *rd, const void *key, size_t klen,
                                               const void **val, size_t *vlen)
{
    if (rd->c->kind == AX_CONT_MEMORY)
        return mem_get(rd->c, key, klen, val, vlen);
    return lmdb_get(rd->c, rd->txn, key, klen, val, vlen);
}

int ax_cont_get(ax_cont_rd_t *prd, const void *key, size_t klen, const void **val, size_t *vlen)
{
    rd_impl_t *rd = (rd_impl_t *)(void *)prd;
    if (!rd || !rd->c || !key || klen - 1 >= AX_CONT_KEY_MAX || !val || !vlen)
        return -EINVAL; /* klen - 1 wraps for 0: one compare for 1..KEY_MAX */
    /* Fast path: 4-byte keys in a memory container, with the key length a
     * constant in the inlined lookup; everything else out of line. */
    if (__builtin_expect(klen == 4 && rd->c->kind == AX_CONT_MEMORY, 1)) {
        const mtab_t *t = atomic_load_explicit(&rd->c->tab, memory_order_acquire); /* C2 */
        const mnode_t *m = idx_find(t, hash_key(key, 4), key, 4);
        if (!m)
            return -ENOENT;
        *val = m->data + m->voff;
        *vlen = m->vlen;
        return 0;
    }
    return get_slow(rd, key, klen, val, vlen);
}

static void read_leave_slow(rd_impl_t *rd);

void ax_cont_read_leave(ax_cont_rd_t *prd)
{
    rd_impl_t *rd = (rd_impl_t *)(void *)prd;
    if (__builtin_expect(rd && rd->outside == RD_WORKER_MEM, 1)) { /* see read_enter */
        rd->c = NULL;
        rd->outside = 0;
        return;
    }
    read_leave_slow(rd);
}

__attribute__((noinline)) static void read_leave_slow(rd_impl_t *rd)
{
    if (!rd || !rd->c)
        return;
    ax_cont_t *c = rd->c;
    if (c->kind == AX_CONT_MEMORY) {
        /* nothing: the next quiescent point ends the section for reclaim */
    } else if (rd->worker && rd->worker - 1 < c->reg->nworkers) {
        rtx_t *x = &c->rtx[rd->worker - 1];
        if (--x->depth == 0)
            mdb_txn_reset(x->txn); /* releases the snapshot; kept for renew */
    } else {
        mdb_txn_abort(rd->txn);
    }
    section_end(rd->outside);
    rd->c = NULL;
}

/* ---- write sections ------------------------------------------------------------------------- */

int ax_cont_write_enter(ax_ctx_t *ctx, ax_cont_t *c, ax_cont_wr_t *pwr)
{
    if (!c || !pwr)
        return -EINVAL;
    wr_impl_t *wr = (wr_impl_t *)(void *)pwr;
    int rc = section_begin(ctx);
    if (rc < 0)
        return rc;
    memset(wr, 0, sizeof *wr);
    wr->c = c;
    wr->outside = !ctx;
    if (c->kind == AX_CONT_LMDB) {
        wr->b = calloc(1, sizeof *wr->b);
        if (!wr->b) {
            section_end(!ctx);
            return -ENOMEM;
        }
        wr->b->reply_to = ctx ? ax_self(ctx) : AX_REF_NONE;
        return 0; /* LMDB sections do not exclude each other: see leave */
    }
    return 0; /* memory: the mutex is taken at the first operation (wr_lock) */
}

int ax_cont_wget(ax_cont_wr_t *pwr, const void *key, size_t klen, const void **val, size_t *vlen)
{
    wr_impl_t *wr = (wr_impl_t *)(void *)pwr;
    if (!wr || !wr->c || !key || !klen || klen > AX_CONT_KEY_MAX || !val || !vlen)
        return -EINVAL;
    if (wr->c->kind == AX_CONT_MEMORY) {
        int rc = wr_excl(wr->c, wr);
        return rc < 0 ? rc : mem_get(wr->c, key, klen, val, vlen);
    }
    if (!wr->txn) {
        int rc = mdb_txn_begin(wr->c->env, NULL, MDB_RDONLY, &wr->txn);
        if (rc)
            return mdb_err(rc);
    }
    return lmdb_get(wr->c, wr->txn, key, klen, val, vlen);
}

static int batch_add(batch_t *b, uint8_t op, const void *key, size_t klen, const void *val, size_t vlen)
{
    size_t need = 9 + klen + vlen;
    if (b->len + need > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + need)
            cap *= 2;
        unsigned char *nb = realloc(b->buf, cap);
        if (!nb)
            return -ENOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    unsigned char *p = b->buf + b->len;
    uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
    p[0] = op;
    memcpy(p + 1, &kl, 4);
    memcpy(p + 5, &vl, 4);
    memcpy(p + 9, key, klen);
    if (vlen)
        memcpy(p + 9 + klen, val, vlen);
    b->len += need;
    b->nops++;
    return 0;
}

int ax_cont_put(ax_cont_wr_t *pwr, const void *key, size_t klen, const void *val, size_t vlen)
{
    wr_impl_t *wr = (wr_impl_t *)(void *)pwr;
    if (!wr || !wr->c || !key || !klen || klen > AX_CONT_KEY_MAX || vlen > AX_CONT_VALUE_MAX ||
        (vlen && !val))
        return -EINVAL;
    if (wr->c->kind == AX_CONT_MEMORY)
        return mem_put(wr->c, wr, key, klen, val, vlen);
    return batch_add(wr->b, 'P', key, klen, val, vlen);
}

int ax_cont_del(ax_cont_wr_t *pwr, const void *key, size_t klen)
{
    wr_impl_t *wr = (wr_impl_t *)(void *)pwr;
    if (!wr || !wr->c || !key || !klen || klen > AX_CONT_KEY_MAX)
        return -EINVAL;
    if (wr->c->kind == AX_CONT_MEMORY) {
        int rc = wr_excl(wr->c, wr);
        return rc < 0 ? rc : mem_del(wr->c, key, klen);
    }
    return batch_add(wr->b, 'D', key, klen, NULL, 0);
}

int ax_cont_write_leave(ax_cont_wr_t *pwr, uint32_t reply_type, uint64_t *seq)
{
    wr_impl_t *wr = (wr_impl_t *)(void *)pwr;
    if (!wr || !wr->c)
        return -EINVAL;
    ax_cont_t *c = wr->c;
    bool outside = wr->outside;
    int rc = 0;
    if (c->kind == AX_CONT_MEMORY) {
        rc = wr_finish(c, wr);
    } else {
        if (wr->txn)
            mdb_txn_abort(wr->txn);
        batch_t *b = wr->b;
        if (b->nops == 0 || reply_type >= AX_TYPE_SYSTEM) {
            rc = b->nops && reply_type >= AX_TYPE_SYSTEM ? -EINVAL : 0;
            free_batch(b);
        } else {
            b->reply_type = reply_type;
            /* A pointer push under the queue mutex; the writer thread does
             * the I/O.  Sequence numbers follow queue order, so the writer
             * commits them in order and done_seq covers all below it. */
            pthread_mutex_lock(&c->qmu);
            uint64_t my_seq = b->seq = ++c->next_seq;
            if (c->qtail)
                c->qtail->next = b;
            else
                c->qhead = b;
            c->qtail = b;
            pthread_cond_signal(&c->qcv);
            pthread_mutex_unlock(&c->qmu);
            /* Not b->seq: once queued, b belongs to the writer, which may
             * have committed and freed it already (TSan caught that). */
            if (seq)
                *seq = my_seq;
        }
    }
    section_end(outside);
    wr->c = NULL;
    return rc;
}

int ax_cont_sync(ax_cont_t *c, uint64_t seq, int64_t timeout_ns)
{
    if (!c || c->kind != AX_CONT_LMDB)
        return -EINVAL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (timeout_ns >= 0) {
        ts.tv_sec += (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec += (long)(timeout_ns % 1000000000);
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
    }
    int rc = 0;
    pthread_mutex_lock(&c->qmu);
    if (seq > c->next_seq) {
        pthread_mutex_unlock(&c->qmu);
        return -EINVAL;
    }
    while (c->done_seq < seq && rc == 0)
        rc = timeout_ns >= 0 ? pthread_cond_timedwait(&c->dcv, &c->qmu, &ts)
                             : pthread_cond_wait(&c->dcv, &c->qmu);
    int out = c->done_seq < seq ? -ETIMEDOUT : 0;
    for (uint32_t i = 0; i < 64 && i < c->nfail && !out; i++)
        if (c->fail_seq[i] == seq)
            out = c->fail_code[i];
    pthread_mutex_unlock(&c->qmu);
    return out;
}

int ax_cont_stats(ax_cont_t *c, ax_cont_stats_t *o)
{
    if (!c || !o)
        return -EINVAL;
    memset(o, 0, sizeof *o);
#define LD(x) atomic_load_explicit(&c->x, memory_order_relaxed)
    bool mem = c->kind == AX_CONT_MEMORY;
    o->entries = mem ? LD(live) : LD(entries);
    o->puts = LD(puts);
    for (uint32_t i = 0; mem && i < c->nwl; i++)
        o->puts += atomic_load_explicit(&c->wl[i].puts, memory_order_relaxed);
    o->dels = LD(dels);
    o->commits = LD(commits);
    o->commit_failed = LD(commit_failed);
    o->acks_lost = LD(acks_lost);
#undef LD
    return 0;
}
