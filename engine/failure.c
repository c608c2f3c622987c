/* engine/failure.c - failure and resource control in the engine: stop
 * reasons, monitors, links, exit trapping, kill, restart in place, release,
 * sponsors and their leases, cancellation on stop (axon/failure.h).
 *
 * Cost for actors that use none of it: the stop path tests one flag
 * (AX_ACTOR_EXT), the send path tests a->sp, the dispatch path tests flags
 * it already tested (AX_ACTOR_SLOW_MASK).  Everything here runs only for
 * actors with records or a sponsor.
 *
 * Protocols (every request between actors is a system message, so it keeps
 * per-pair order with the user's messages and needs no shared lock):
 *
 *   Monitor.  The watcher keeps a WATCHING record (target, id) and sends
 *   MONITOR(id) to the target's worker, which adds a WATCHER record
 *   (watcher, id) if the target lives, else answers DOWN(id, no-such-actor)
 *   at once.  When the target stops, each WATCHER record becomes exactly one
 *   DOWN to its watcher and is freed.  A DOWN is delivered only if the
 *   watcher still holds the WATCHING record with that id (removed as it is
 *   delivered); ax_demonitor removes the record and sends DEMONITOR so the
 *   target drops its side.  So: at most one DOWN is sent per monitor (the
 *   WATCHER record is freed as it is sent, and created at most once), at
 *   most one is delivered (the WATCHING record is removed when delivered),
 *   and none after a demonitor (the record is gone before any DOWN for it
 *   can be looked up).  A watcher that stops sends DEMONITOR for what it
 *   still watches, so targets do not keep records for the dead.
 *
 *   Link.  Each end keeps a LINK record (peer).  ax_link adds ours and sends
 *   LINK; the peer adds its own if alive, else answers EXIT(no-such-actor).
 *   A stop sends EXIT(reason) over every LINK record.  An EXIT acts only if
 *   the receiver still has a LINK record for the sender (removed on
 *   arrival): trapping, it becomes an AX_TYPE_EXIT message; otherwise an
 *   abnormal reason stops the receiver with AX_REASON_LINKED.  ax_unlink
 *   removes ours and sends UNLINK; an EXIT already in flight finds no record
 *   and is dropped.
 *
 *   Restart in place.  A restartable actor keeps a LIFE record (behaviour,
 *   init, fini, argument).  At a non-final stop it goes DORMANT: slot and
 *   generation kept, its other records handled as for any stop, messages
 *   held in LIFE's queue (I/O completions of the old incarnation are
 *   counted and dropped instead).  RESTART zeroes the state, runs init and
 *   replays the held messages in order (or drops them); RELEASE frees the
 *   slot under a new generation, the held messages become dead letters.
 *
 *   Sponsors.  The global budget (avail) is leased to workers in chunks; a
 *   worker's lease is its own counter (sp->local[w].left), so a sponsored
 *   send is a decrement.  Revoke zeroes avail and posts REVOKE to every
 *   worker, which zeroes its leases and stops its actors under the sponsor
 *   (final: restartable ones end for good).
 *
 * Threading: everything taking a worker runs on that worker's thread;
 * ax_sponsor_create / destroy / revoke / stats and ax_engine_kill on any
 * thread (atomics and the external inbox only).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cluster_glue.h"
#include "engine/engine_internal.h"

static const ax_reason_t reason_no_actor = {.kind = AX_REASON_NO_ACTOR};

const char *ax_reason_name(uint32_t kind)
{
    static const char *const names[] = {"normal", "failed", "quota", "killed",
                                        "linked", "shutdown", "no-such-actor", "unreachable",
                                        "node-stopped"};
    return kind < sizeof names / sizeof names[0] ? names[kind] : "unknown";
}

/* ---- records ------------------------------------------------------------------------ */

static ax_rec_t *rec_new(ax_worker_t *w, ax_actor_t *a, uint32_t kind, ax_ref_t ref, uint64_t id)
{
    ax_rec_t *r = ax_arena_alloc(w->arena, sizeof *r);
    if (!r)
        return NULL;
    r->kind = kind;
    r->aux = 0;
    r->ref = ref;
    r->id = id;
    r->next = a->recs;
    a->recs = r;
    a->flags |= AX_ACTOR_EXT;
    return r;
}

/* Find a record of `kind` matching ref (if not 0) and id (if not 0); *pp
 * receives the link that points to it, for removal. */
static ax_rec_t *rec_find(ax_actor_t *a, uint32_t kind, ax_ref_t ref, uint64_t id, ax_rec_t ***pp)
{
    for (ax_rec_t **p = &a->recs; *p; p = &(*p)->next) {
        ax_rec_t *r = *p;
        if (r->kind == kind && (!ref || r->ref == ref) && (!id || r->id == id)) {
            if (pp)
                *pp = p;
            return r;
        }
    }
    return NULL;
}

static bool rec_remove(ax_worker_t *w, ax_actor_t *a, uint32_t kind, ax_ref_t ref, uint64_t id)
{
    ax_rec_t **p;
    ax_rec_t *r = rec_find(a, kind, ref, id, &p);
    if (!r)
        return false;
    *p = r->next;
    ax_arena_free(w->arena, r);
    return true;
}

static ax_life_t *life_of(ax_actor_t *a)
{
    return (ax_life_t *)rec_find(a, AX_REC_LIFE, 0, 0, NULL);
}

static uint64_t next_monitor_id(ax_worker_t *w)
{
    return ((uint64_t)(w->id + 1) << 48) | (++w->mon_seq & 0xFFFFFFFFFFFFull);
}

/* ---- system messages ---------------------------------------------------------------- */

/* Send a system message from `from` (not necessarily the running actor).
 * charge: count it against the running actor's sponsor (a request the
 * actor made); engine notifications (DOWN, EXIT, DEMONITOR at a stop) are
 * not charged.  Payload: u64[0] = u0, then either the reason (bytes 8..39)
 * or u64[1] = u1. */
static int sys_send(ax_worker_t *w, ax_ref_t from, ax_ref_t to, uint32_t type, uint64_t u0,
                    uint64_t u1, const ax_reason_t *why, bool charge)
{
    int err = 0;
    uint8_t stamp;
    ax_actor_t *sv = w->cur;
    if (!charge)
        AX_WD_SET(w->cur, NULL); /* relaxed atomic: the watchdog reads it */
    ax_msg_t *m = ax__msg_slot_fast(w, to, &err, &stamp);
    AX_WD_SET(w->cur, sv);
    if (!m)
        return err;
    m->from = from;
    memset(&m->payload, 0, sizeof m->payload);
    m->payload.u64[0] = u0;
    if (why)
        memcpy(m->payload.data + 8, why, sizeof *why);
    else
        m->payload.u64[1] = u1;
    ax_msg_commit(m, type, AX_INLINE_MAX, 0, stamp);
    AX_TRACE_SEND(w->id, to, type);
    return 0;
}

/* A notification that must not be lost silently: say so if it is. */
static void notify(ax_worker_t *w, ax_ref_t from, ax_ref_t to, uint32_t type, uint64_t id,
                   const ax_reason_t *why)
{
    if (to == AX_REF_NONE && type == AX_SYS_DOWN) {
        /* The watcher is a thread outside the engine: its no-timeout
         * request's future (request.c), id = the future's id.  Counted
         * first: the completion releases the waiting thread, which may
         * read the stats at once. */
        AX_STAT_INC(w->st.downs_sent);
        ax__calls_down(w->eng, id, why ? why->kind : AX_REASON_NORMAL);
        return;
    }
    int rc = sys_send(w, from, to, type, id, 0, why, false);
    if (rc == -EHOSTUNREACH) {
        /* To an actor of a node that is down: nobody is left to tell. */
        atomic_fetch_add_explicit(&w->st.dead_letters, 1, memory_order_relaxed);
        return;
    }
    if (rc < 0 && rc != -ESHUTDOWN)
        fprintf(stderr, "axon: worker %u: %s from %#llx to %#llx lost: %s; raise "
                        "memory.arena_bytes\n",
                w->id, type == AX_SYS_DOWN ? "DOWN" : type == AX_SYS_EXIT ? "EXIT" : "notice",
                (unsigned long long)from, (unsigned long long)to, strerror(-rc));
    else if (rc == 0 && type == AX_SYS_DOWN)
        AX_STAT_INC(w->st.downs_sent);
}

static bool ref_ok(const ax_worker_t *w, ax_ref_t r)
{
    /* A local actor, or on a cluster node one of another node (its
     * transport carries the request; engine/cluster_glue.c). */
    return ax__ref_dest(w->home, r) < w->nworkers ||
           (w->cl && r != AX_REF_NONE && ax_ref_node(r) != w->home >> 14);
}

/* ---- reasons and ax_fail ------------------------------------------------------------- */

static void set_pending(ax_worker_t *w, ax_actor_t *a, const ax_reason_t *why)
{
    a->flags |= AX_ACTOR_STOPPING;
    w->after = 1; /* the drain loops' hint (worker.h) */
    w->pend = *why;
    w->pend_actor = a;
}

void ax_fail(ax_ctx_t *w, int32_t code, const char *text)
{
    if (!w || !w->cur)
        return;
    ax_reason_t r = {.kind = AX_REASON_FAILED, .code = code};
    if (text) {
        size_t n = strnlen(text, AX_REASON_TEXT_MAX - 1);
        memcpy(r.text, text, n);
    }
    set_pending(w, w->cur, &r);
}

const ax_reason_t *ax_stop_reason(const ax_ctx_t *w) { return w ? w->fini_reason : NULL; }

/* ---- monitors ------------------------------------------------------------------------ */

int ax_monitor(ax_ctx_t *w, ax_ref_t target, uint64_t *id)
{
    if (!w || !w->cur || !id || !ref_ok(w, target))
        return -EINVAL;
    uint64_t mid = next_monitor_id(w);
    ax_actor_t *a = w->cur;
    if (!rec_new(w, a, AX_REC_WATCHING, target, mid))
        return -ENOMEM;
    int rc = sys_send(w, w->head.self, target, AX_SYS_MONITOR, mid, 0, NULL, true);
    if (rc == -EHOSTUNREACH) {
        /* Its node is down (or not up yet): the answer is DOWN at once. */
        ax_reason_t why = {.kind = ax__cluster_down_reason(w, target)};
        notify(w, target, w->head.self, AX_SYS_DOWN, mid, &why);
        rc = 0;
    }
    if (rc < 0) {
        rec_remove(w, a, AX_REC_WATCHING, target, mid);
        return rc;
    }
    *id = mid;
    return 0;
}

/* Node `node` is down (engine/cluster_glue.c, on each worker): every
 * monitor of one of its actors gets DOWN with reason `kind`
 * (AX_REASON_UNREACHABLE, or AX_REASON_NODE_STOPPED when it left), every
 * link to one an EXIT with it, and its watchers' records here go.  A scan
 * of the table: node loss is rare, and the fast paths keep no per-node
 * index this way. */
void ax__fault_node_down(ax_worker_t *w, uint32_t node, uint32_t kind)
{
    ax_reason_t why = {.kind = kind};
    uint32_t end = atomic_load_explicit(&w->fresh, memory_order_relaxed);
    if (end > w->max_slots)
        end = w->max_slots;
    for (uint32_t slot = 0; slot < end; slot++) {
        ax_actor_t *a = w->table[slot].actor;
        if (!a || (a->flags & AX_ACTOR_EMBRYO) || !a->recs)
            continue;
        ax_ref_t self = ax__ref_make(w->home, w->id, w->table[slot].gen, slot);
        for (ax_rec_t **p = &a->recs; *p;) {
            ax_rec_t *r = *p;
            bool there = (r->kind == AX_REC_WATCHING || r->kind == AX_REC_WATCHER ||
                          r->kind == AX_REC_LINK) && ax_ref_node(r->ref) == node &&
                         ax__ref_dest(w->home, r->ref) >= w->nworkers;
            if (!there) {
                p = &r->next;
                continue;
            }
            if (r->kind == AX_REC_WATCHING) {
                /* Its DOWN arrives like any other and removes the record. */
                notify(w, r->ref, self, AX_SYS_DOWN, r->id, &why);
                p = &r->next;
            } else if (r->kind == AX_REC_LINK) {
                ax_ref_t peer = r->ref;
                *p = r->next;
                ax_arena_free(w->arena, r);
                notify(w, peer, self, AX_SYS_EXIT, 0, &why);
            } else { /* a watcher on that node: nobody to tell */
                *p = r->next;
                ax_arena_free(w->arena, r);
            }
        }
    }
}

int ax_demonitor(ax_ctx_t *w, uint64_t id)
{
    if (!w || !w->cur || !id)
        return -ENOENT;
    ax_rec_t **p;
    ax_rec_t *r = rec_find(w->cur, AX_REC_WATCHING, 0, id, &p);
    if (!r)
        return -ENOENT;
    ax_ref_t target = r->ref;
    *p = r->next;
    ax_arena_free(w->arena, r);
    /* Best effort: if this cannot be sent the target keeps its record and
     * its DOWN is filtered here. */
    (void)sys_send(w, w->head.self, target, AX_SYS_DEMONITOR, id, 0, NULL, false);
    return 0;
}

/* ---- links ------------------------------------------------------------------------- */

int ax_link(ax_ctx_t *w, ax_ref_t peer)
{
    if (!w || !w->cur || !ref_ok(w, peer) || peer == w->head.self)
        return -EINVAL;
    ax_actor_t *a = w->cur;
    if (rec_find(a, AX_REC_LINK, peer, 0, NULL))
        return 0;
    if (!rec_new(w, a, AX_REC_LINK, peer, 0))
        return -ENOMEM;
    int rc = sys_send(w, w->head.self, peer, AX_SYS_LINK, 0, 0, NULL, true);
    if (rc < 0)
        rec_remove(w, a, AX_REC_LINK, peer, 0);
    return rc;
}

int ax_unlink(ax_ctx_t *w, ax_ref_t peer)
{
    if (!w || !w->cur || !rec_remove(w, w->cur, AX_REC_LINK, peer, 0))
        return -ENOENT;
    (void)sys_send(w, w->head.self, peer, AX_SYS_UNLINK, 0, 0, NULL, false);
    return 0;
}

void ax_trap_exits(ax_ctx_t *w, bool on)
{
    if (!w || !w->cur)
        return;
    if (on)
        w->cur->flags |= AX_ACTOR_TRAP;
    else
        w->cur->flags &= ~AX_ACTOR_TRAP;
}

/* ---- kill, restart, release -------------------------------------------------------- */

int ax_kill(ax_ctx_t *w, ax_ref_t target)
{
    if (!w || !ref_ok(w, target))
        return -EINVAL;
    if (w->cur && target == w->head.self) {
        ax_reason_t r = {.kind = AX_REASON_KILLED, .peer = target};
        set_pending(w, w->cur, &r);
        return 0;
    }
    return sys_send(w, w->head.self, target, AX_SYS_KILL, 0, 0, NULL, true);
}

int ax_engine_kill(ax_engine_t *eng, ax_ref_t target)
{
    if (!eng || target == AX_REF_NONE || ax__ref_dest(eng->home, target) >= eng->n)
        return -EINVAL;
    ax_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = target;
    m.type = AX_SYS_KILL;
    m.len = AX_INLINE_MAX;
    return ax__ext_post(eng, &m);
}

#define RESTART_FLAGS (AX_RESTART_F_DROP_QUEUED | AX_RESTART_F_MONITOR)

int ax_restart(ax_ctx_t *w, ax_ref_t target, uint32_t flags, uint64_t *monitor)
{
    if (!w || !ref_ok(w, target) || (flags & ~RESTART_FLAGS))
        return -EINVAL;
    uint64_t mid = 0;
    if (flags & AX_RESTART_F_MONITOR) {
        if (!monitor || !w->cur)
            return -EINVAL;
        mid = next_monitor_id(w);
        if (!rec_new(w, w->cur, AX_REC_WATCHING, target, mid))
            return -ENOMEM;
    }
    int rc = sys_send(w, w->head.self, target, AX_SYS_RESTART, flags, mid, NULL, true);
    if (rc < 0) {
        if (mid)
            rec_remove(w, w->cur, AX_REC_WATCHING, target, mid);
        return rc;
    }
    if (monitor && mid)
        *monitor = mid;
    return 0;
}

int ax_release(ax_ctx_t *w, ax_ref_t target)
{
    if (!w || !ref_ok(w, target))
        return -EINVAL;
    return sys_send(w, w->head.self, target, AX_SYS_RELEASE, 0, 0, NULL, true);
}

/* ---- spawn-time setup --------------------------------------------------------------- */

int ax__fault_spawner_recs(ax_worker_t *w, ax_ref_t ref, uint32_t flags, uint64_t *mon_id)
{
    ax_actor_t *a = w->cur;
    uint64_t mid = 0;
    if (flags & AX_SPAWN_F_MONITOR) {
        mid = next_monitor_id(w);
        if (!rec_new(w, a, AX_REC_WATCHING, ref, mid))
            return -ENOMEM;
    }
    if ((flags & AX_SPAWN_F_LINK) && !rec_new(w, a, AX_REC_LINK, ref, 0)) {
        if (mid)
            rec_remove(w, a, AX_REC_WATCHING, ref, mid);
        return -ENOMEM;
    }
    *mon_id = mid;
    return 0;
}

void ax__fault_spawner_undo(ax_worker_t *w, ax_ref_t ref, uint32_t flags, uint64_t mon_id)
{
    if (!w->cur)
        return;
    if ((flags & AX_SPAWN_F_MONITOR) && mon_id)
        rec_remove(w, w->cur, AX_REC_WATCHING, ref, mon_id);
    if (flags & AX_SPAWN_F_LINK)
        rec_remove(w, w->cur, AX_REC_LINK, ref, 0);
}

void ax__fault_spawn_failed(ax_worker_t *w, ax_ref_t ref, const ax_spawn_req_t *req)
{
    if (req->flags & AX_SPAWN_F_MONITOR)
        notify(w, ref, req->peer, AX_SYS_DOWN, req->mon_id, &reason_no_actor);
    if (req->flags & AX_SPAWN_F_LINK)
        notify(w, ref, req->peer, AX_SYS_EXIT, 0, &reason_no_actor);
}

/* Put a on sp's list of actors on this worker (an SP record). */
static int sp_join(ax_worker_t *w, ax_actor_t *a, ax_sponsor_t *sp)
{
    ax_sp_local_t *l = &sp->local[w->id];
    ax_rec_t *r = rec_new(w, a, AX_REC_SP, 0, 0);
    if (!r)
        return -ENOMEM;
    r->aux = ax__actor_slot(a);
    r->lprev = NULL;
    r->lnext = l->actors;
    if (l->actors)
        l->actors->lprev = r;
    l->actors = r;
    a->sp = l;
    if (sp->limit[AX_RES_CPU_NS])
        a->flags |= AX_ACTOR_CPU;
    return 0;
}

/* Free record r of actor a (already off a's list); an SP record also takes
 * a off its sponsor (dropping the actor's reference). */
static void rec_drop(ax_worker_t *w, ax_actor_t *a, ax_rec_t *r)
{
    if (r->kind == AX_REC_SP) {
        ax_sp_local_t *l = a->sp;
        ax_sponsor_t *sp = l->sp;
        if (r->lprev)
            r->lprev->lnext = r->lnext;
        else
            l->actors = r->lnext;
        if (r->lnext)
            r->lnext->lprev = r->lprev;
        a->sp = NULL;
        a->flags &= ~AX_ACTOR_CPU;
        atomic_fetch_sub_explicit(&sp->live, 1, memory_order_relaxed);
        ax__sp_unref(sp);
    } else if (r->kind == AX_REC_LIFE) {
        ax_mq_fini(&((ax_life_t *)r)->held, w->arena); /* emptied by the caller */
    }
    ax_arena_free(w->arena, r);
}

/* Free every record of a (nothing is sent). */
static void recs_drop_all(ax_worker_t *w, ax_actor_t *a)
{
    while (a->recs) {
        ax_rec_t *r = a->recs;
        a->recs = r->next;
        rec_drop(w, a, r);
    }
}

int ax__fault_place(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref, const ax_spawn_req_t *req,
                    const void *arg, size_t arg_len)
{
    if (req->flags & AX_SPAWN_F_RESTARTABLE) {
        ax_life_t *life = ax_arena_alloc(w->arena, sizeof *life + arg_len);
        if (!life)
            return -ENOMEM;
        memset(life, 0, sizeof *life);
        life->hdr.kind = AX_REC_LIFE;
        life->fn = req->fn;
        life->init = req->init;
        life->fini = req->fini;
        ax_mq_init(&life->held);
        life->arg_len = (uint32_t)arg_len;
        if (arg_len)
            memcpy(life->arg, arg, arg_len);
        life->hdr.next = a->recs;
        a->recs = &life->hdr;
        a->flags |= AX_ACTOR_EXT | AX_ACTOR_RESTARTABLE;
    }
    if (req->flags & AX_SPAWN_F_MONITOR) {
        if (!rec_new(w, a, AX_REC_WATCHER, req->peer, req->mon_id))
            goto nomem;
    }
    if (req->flags & AX_SPAWN_F_LINK) {
        if (!rec_new(w, a, AX_REC_LINK, req->peer, 0))
            goto nomem;
    }
    /* Last: once joined, the request's sponsor reference is the actor's. */
    if (req->sponsor && sp_join(w, a, req->sponsor) < 0)
        goto nomem;
    (void)ref;
    return 0;
nomem:
    recs_drop_all(w, a); /* no SP record: the caller keeps its reference */
    a->flags &= ~(AX_ACTOR_EXT | AX_ACTOR_RESTARTABLE);
    return -ENOMEM;
}

/* ---- stop ------------------------------------------------------------------------- */

/* Completions and timer messages already posted for `ref` in the local FIFO
 * belong to the incarnation that just ended: turn them into CANCELLED
 * notices (counted, payload freed, never delivered).  Only actors that did
 * I/O pay this scan. */
static void cancel_posted(ax_worker_t *w, ax_ref_t ref)
{
    for (uint32_t i = w->lq_head; i != w->lq_tail; i++) {
        ax_msg_t *m = &w->lq[i & w->lq_mask];
        if (m->to == ref && (m->flags & AX_MSG_F_IO) && m != w->head.msg) {
            m->type = AX_SYS_CANCELLED;
            m->flags |= AX_MSG_F_SYS; /* as ax_msg_commit */
        }
    }
}

bool ax__fault_stop(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref, const ax_reason_t *why,
                    bool final)
{
    bool closing = w->closing;
    bool revoked = a->sp && atomic_load_explicit(&a->sp->sp->revoked, memory_order_relaxed);
    bool dormant = (a->flags & AX_ACTOR_RESTARTABLE) && !final && !closing && !revoked;
    ax_rec_t *r = a->recs, *keep = NULL;
    a->recs = NULL;
    while (r) {
        ax_rec_t *next = r->next;
        switch (r->kind) {
        case AX_REC_WATCHER:
            if (!closing)
                notify(w, ref, r->ref, AX_SYS_DOWN, r->id, why);
            break;
        case AX_REC_WATCHING:
            if (!closing)
                (void)sys_send(w, ref, r->ref, AX_SYS_DEMONITOR, r->id, 0, NULL, false);
            break;
        case AX_REC_LINK:
            if (!closing)
                notify(w, ref, r->ref, AX_SYS_EXIT, 0, why);
            break;
        case AX_REC_IO:
            /* At shutdown the io layer is torn down next and reports
             * nothing; otherwise cancel what is pending. */
            if (!closing) {
                ax__io_cancel_list(w, &r->io_head);
                cancel_posted(w, ref);
            } else {
                ax__io_detach_list(w, &r->io_head);
            }
            break;
        case AX_REC_LIFE:
        case AX_REC_SP:
            if (dormant) { /* a dormant actor keeps its restart data and sponsor */
                r->next = keep;
                keep = r;
                r = next;
                continue;
            }
            break;
        }
        rec_drop(w, a, r);
        r = next;
    }
    if (dormant && keep) {
        a->recs = keep;
        a->flags = (a->flags & (AX_ACTOR_LARGE | AX_ACTOR_EXT | AX_ACTOR_RESTARTABLE | AX_ACTOR_CPU)) |
                   AX_ACTOR_DORMANT;
        return true;
    }
    return false;
}

/* A dormant actor ends for good (released, revoked): its held messages
 * become dead letters, its slot is reused under a new generation. */
static void release_dormant(ax_worker_t *w, ax_actor_t *a)
{
    ax_life_t *life = life_of(a);
    if (life) {
        ax_msg_t *m;
        while ((m = ax_mq_peek(&life->held))) {
            ax__dead_letter(w, m); /* a request in it is answered -ESRCH */
            ax_mq_pop(&life->held, w->arena);
        }
    }
    recs_drop_all(w, a);
    ax__slot_free(w, ax__actor_slot(a));
    ax__actor_free(w, a);
}

void ax__fault_discard(ax_worker_t *w, ax_actor_t *a)
{
    ax_life_t *life = life_of(a);
    if (life) {
        ax_msg_t *m;
        while ((m = ax_mq_peek(&life->held))) {
            /* Counted as handled when it was held; dropped now. */
            atomic_fetch_add_explicit(&w->st.dropped_at_stop, 1, memory_order_relaxed);
            if (m->flags & AX_MSG_F_REQUEST) /* an outside caller stops waiting */
                ax__request_undeliverable(w, m, -ESHUTDOWN);
            ax__free_payload(w, m);
            ax_mq_pop(&life->held, w->arena);
        }
    }
    recs_drop_all(w, a);
}

/* ---- restart ------------------------------------------------------------------------ */

static void restart(ax_worker_t *w, ax_actor_t *a, ax_ref_t ref, uint32_t flags, ax_ref_t by,
                    uint64_t mid)
{
    ax_life_t *life = life_of(a);
    ax_mq_t held = life->held; /* replayed below; a new dormancy fills a fresh queue */
    ax_mq_init(&life->held);
    a->flags &= AX_ACTOR_LARGE | AX_ACTOR_EXT | AX_ACTOR_RESTARTABLE | AX_ACTOR_CPU;
    a->fn = life->fn;
    a->fini = life->fini;
    memset(a->state, 0, a->state_size);
    if (mid && !rec_new(w, a, AX_REC_WATCHER, by, mid))
        notify(w, ref, by, AX_SYS_DOWN, mid, &reason_no_actor);
    atomic_fetch_add_explicit(&w->st.spawned, 1, memory_order_relaxed);
    AX_STAT_INC(w->st.restarted);
    AX_TRACE_SPAWN(w->id, ref);
    ax__actor_run_init(w, a, ref, life->init, life->arg, life->arg_len);
    ax_msg_t *m;
    if (flags & AX_RESTART_F_DROP_QUEUED) {
        while ((m = ax_mq_peek(&held))) {
            AX_STAT_INC(w->st.restart_dropped);
            if (m->flags & AX_MSG_F_REQUEST) /* its asker hears: the target stopped */
                ax__request_undeliverable(w, m, -ESRCH);
            ax__free_payload(w, m);
            ax_mq_pop(&held, w->arena);
        }
    } else {
        /* In order, unless the new incarnation stops on the way: then what
         * is left stays held for the next restart (the actor is dormant
         * again, its queue empty: nothing can have arrived meanwhile). */
        while ((m = ax_mq_peek(&held))) {
            if (w->table[ax__actor_slot(a)].actor != a || (a->flags & AX_ACTOR_DORMANT))
                break;
            ax__dispatch(w, m);
            ax_mq_pop(&held, w->arena);
        }
        if (ax_mq_peek(&held)) {
            if (w->table[ax__actor_slot(a)].actor == a && (a->flags & AX_ACTOR_DORMANT)) {
                ax_mq_fini(&life_of(a)->held, w->arena);
                life_of(a)->held = held;
                return;
            }
            while ((m = ax_mq_peek(&held))) { /* cannot happen: a dormant actor keeps its slot */
                ax__free_payload(w, m);
                ax_mq_pop(&held, w->arena);
            }
        }
    }
    ax_mq_fini(&held, w->arena);
}

/* ---- sponsors ---------------------------------------------------------------------- */

/* Lease chunks: big enough that a refill (one CAS on a shared line) is rare
 * next to the work it pays for, small enough that the budget stranded in
 * other workers' leases stays small. */
static const uint64_t lease_chunk[AX_RES_COUNT] = {64 * 1024, 256, 16, 1000000};

void ax__sp_ref(ax_sponsor_t *sp)
{
    atomic_fetch_add_explicit(&sp->refs, 1, memory_order_relaxed);
}

void ax__sp_unref(ax_sponsor_t *sp)
{
    /* acq_rel: every use of sp by any thread happens before the free. */
    if (atomic_fetch_sub_explicit(&sp->refs, 1, memory_order_acq_rel) == 1)
        free(sp);
}

/* Take n units from the global pool: for worker lease l (adding n plus a
 * chunk to it), or directly for a caller outside the engine (l NULL).
 * true on success. */
static bool pool_take(ax_sponsor_t *sp, ax_sp_local_t *l, uint32_t res, uint64_t n)
{
    if (atomic_load_explicit(&sp->revoked, memory_order_acquire))
        return false;
    if (!sp->limit[res]) {
        /* Unbounded: worker leases start at 2^64 - 1 and never need this;
         * outside callers just count. */
        if (l)
            return false;
        atomic_fetch_add_explicit(&sp->ext_used[res], n, memory_order_relaxed);
        return true;
    }
    uint64_t cur = atomic_load_explicit(&sp->avail[res], memory_order_relaxed), take;
    do {
        if (cur < n)
            return false;
        uint64_t spare = (cur - n) / sp->n;
        take = n + (l ? (spare < lease_chunk[res] ? spare : lease_chunk[res]) : 0);
        /* Relaxed: the budget is a counter; nothing else is published. */
    } while (!atomic_compare_exchange_weak_explicit(&sp->avail[res], &cur, cur - take,
                                                    memory_order_relaxed, memory_order_relaxed));
    if (l) {
        AX_STAT_ADD(l->left[res], take);
        AX_STAT_ADD(l->granted[res], take);
    } else {
        atomic_fetch_add_explicit(&sp->ext_used[res], n, memory_order_relaxed);
    }
    return true;
}

static void quota_failed(ax_worker_t *w, ax_sponsor_t *sp, ax_sp_local_t *l, ax_actor_t *caller,
                         uint32_t res)
{
    if (l)
        AX_STAT_INC(l->quota_failures);
    else
        atomic_fetch_add_explicit(&sp->ext_quota_failures, 1, memory_order_relaxed);
    if (w)
        AX_STAT_INC(w->st.quota_failures);
    if (w && caller && sp->policy == AX_SPONSOR_FAIL_ACTOR) {
        ax_reason_t r = {.kind = AX_REASON_QUOTA, .code = (int32_t)res};
        set_pending(w, caller, &r);
    }
}

int ax__sp_take_slow(ax_worker_t *w, ax_sp_local_t *l, uint32_t res, uint64_t n,
                     ax_actor_t *caller)
{
    uint64_t left = atomic_load_explicit(&l->left[res], memory_order_relaxed);
    if (left < n && pool_take(l->sp, l, res, n - left)) {
        AX_STAT_ADD(l->left[res], -n); /* the lease now holds at least n */
        return 0;
    }
    quota_failed(w, l->sp, l, caller && caller == w->cur ? caller : NULL, res);
    return -EDQUOT;
}

int ax__fault_spawn_charge(ax_worker_t *w, ax_sponsor_t *sp, size_t state_size)
{
    if (!sp)
        return 0;
    uint64_t bytes = sizeof(ax_actor_t) + (uint64_t)state_size;
    if (w) {
        /* Through this worker's lease of sp: the sponsor named pays, also
         * when the spawner runs under another one; the policy applies to
         * the spawner. */
        ax_sp_local_t *l = &sp->local[w->id];
        if (atomic_load_explicit(&sp->revoked, memory_order_acquire)) {
            quota_failed(w, sp, l, w->cur, AX_RES_SPAWNS);
            return -EDQUOT;
        }
        if (ax__sp_take_l(w, l, AX_RES_SPAWNS, 1, w->cur) < 0)
            return -EDQUOT;
        if (ax__sp_take_l(w, l, AX_RES_BYTES, bytes, w->cur) < 0) {
            ax__sp_refund_l(l, AX_RES_SPAWNS, 1);
            return -EDQUOT;
        }
    } else {
        if (!pool_take(sp, NULL, AX_RES_SPAWNS, 1)) {
            quota_failed(NULL, sp, NULL, NULL, AX_RES_SPAWNS);
            return -EDQUOT;
        }
        if (!pool_take(sp, NULL, AX_RES_BYTES, bytes)) {
            quota_failed(NULL, sp, NULL, NULL, AX_RES_BYTES);
            return -EDQUOT; /* the spawn unit stays consumed: rare, outside the engine */
        }
    }
    ax__sp_ref(sp);
    atomic_fetch_add_explicit(&sp->live, 1, memory_order_relaxed);
    return 0;
}

void ax__fault_spawn_undo(ax_sponsor_t *sp)
{
    if (!sp)
        return;
    atomic_fetch_sub_explicit(&sp->live, 1, memory_order_relaxed);
    ax__sp_unref(sp);
}

int ax_sponsor_create(ax_engine_t *eng, const ax_sponsor_limits_t *lim, ax_sponsor_t **out)
{
    if (!eng || !out)
        return -EINVAL;
    if (lim && ((lim->size && lim->size != sizeof *lim) || lim->policy > AX_SPONSOR_FAIL_ACTOR))
        return -EINVAL;
    uint32_t n = ax_engine_workers(eng);
    size_t bytes = sizeof(ax_sponsor_t) + (size_t)n * sizeof(ax_sp_local_t);
    bytes = (bytes + 63) & ~(size_t)63;
    ax_sponsor_t *sp = aligned_alloc(64, bytes);
    if (!sp)
        return -ENOMEM;
    memset(sp, 0, bytes);
    sp->eng = eng;
    sp->n = n;
    sp->policy = lim ? lim->policy : AX_SPONSOR_FAIL_CALL;
    for (uint32_t r = 0; r < AX_RES_COUNT; r++) {
        sp->limit[r] = lim ? lim->limit[r] : 0;
        atomic_init(&sp->avail[r], sp->limit[r]);
        atomic_init(&sp->ext_used[r], 0);
        for (uint32_t i = 0; i < n; i++) {
            /* Unbounded: a lease of 2^64 - 1 that is never refilled, so the
             * send path needs no second test. */
            uint64_t v = sp->limit[r] ? 0 : UINT64_MAX;
            atomic_init(&sp->local[i].left[r], v);
            atomic_init(&sp->local[i].granted[r], v);
        }
    }
    for (uint32_t i = 0; i < n; i++)
        sp->local[i].sp = sp;
    atomic_init(&sp->refs, 1);
    *out = sp;
    return 0;
}

void ax_sponsor_destroy(ax_sponsor_t *sp)
{
    if (sp)
        ax__sp_unref(sp);
}

int ax_sponsor_revoke(ax_sponsor_t *sp)
{
    if (!sp)
        return -EINVAL;
    if (atomic_exchange_explicit(&sp->revoked, 1, memory_order_acq_rel))
        return 0;
    for (uint32_t r = 0; r < AX_RES_COUNT; r++)
        atomic_store_explicit(&sp->avail[r], 0, memory_order_relaxed);
    for (uint32_t t = 0; t < sp->n; t++) {
        ax_msg_t m;
        memset(&m, 0, sizeof m);
        m.to = ax__ref_make(sp->eng->home, t, 0, 0); /* a worker, not an actor */
        m.type = AX_SYS_REVOKE;
        m.len = AX_INLINE_MAX;
        m.payload.u64[0] = (uint64_t)(uintptr_t)sp;
        ax__sp_ref(sp); /* held by the message until handled or dropped */
        if (ax__ext_post(sp->eng, &m) < 0)
            ax__sp_unref(sp); /* engine stopping: its actors stop anyway */
    }
    return 0;
}

static void revoke_here(ax_worker_t *w, ax_sponsor_t *sp)
{
    ax_sp_local_t *l = &sp->local[w->id];
    for (uint32_t r = 0; r < AX_RES_COUNT; r++) { /* no more sends from leases */
        uint64_t left = atomic_load_explicit(&l->left[r], memory_order_relaxed);
        atomic_store_explicit(&l->granted[r],
                              atomic_load_explicit(&l->granted[r], memory_order_relaxed) - left,
                              memory_order_relaxed);
        atomic_store_explicit(&l->left[r], 0, memory_order_relaxed);
    }
    static const ax_reason_t killed = {.kind = AX_REASON_KILLED};
    ax_rec_t *r;
    while ((r = l->actors)) { /* each final stop takes its actor off the list */
        ax_actor_t *a = w->table[r->aux].actor;
        atomic_fetch_add_explicit(&sp->killed, 1, memory_order_relaxed);
        if (a->flags & AX_ACTOR_DORMANT)
            release_dormant(w, a);
        else
            ax__actor_stop_why(w, a, &killed, true);
    }
}

ax_sponsor_t *ax_sponsor_self(const ax_ctx_t *w)
{
    return w && w->cur && w->cur->sp ? w->cur->sp->sp : NULL;
}

int ax_sponsor_stats(const ax_sponsor_t *sp_c, ax_sponsor_stats_t *out)
{
    if (!sp_c || !out)
        return -EINVAL;
    ax_sponsor_t *sp = (ax_sponsor_t *)sp_c; /* atomics are read, never written */
    memset(out, 0, sizeof *out);
    for (uint32_t r = 0; r < AX_RES_COUNT; r++) {
        out->limit[r] = sp->limit[r];
        uint64_t used = atomic_load_explicit(&sp->ext_used[r], memory_order_relaxed);
        for (uint32_t i = 0; i < sp->n; i++)
            used += atomic_load_explicit(&sp->local[i].granted[r], memory_order_relaxed) -
                    atomic_load_explicit(&sp->local[i].left[r], memory_order_relaxed);
        out->used[r] = used;
    }
    out->quota_failures = atomic_load_explicit(&sp->ext_quota_failures, memory_order_relaxed);
    for (uint32_t i = 0; i < sp->n; i++)
        out->quota_failures += atomic_load_explicit(&sp->local[i].quota_failures, memory_order_relaxed);
    out->actors_live = atomic_load_explicit(&sp->live, memory_order_relaxed);
    out->killed_by_revoke = atomic_load_explicit(&sp->killed, memory_order_relaxed);
    out->revoked = atomic_load_explicit(&sp->revoked, memory_order_relaxed);
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------ */

void ax__fault_free_payload(ax_worker_t *w, const ax_msg_t *m)
{
    (void)w;
    if (m->type == AX_SYS_REVOKE)
        ax__sp_unref((ax_sponsor_t *)(uintptr_t)m->payload.u64[0]);
    else if (m->type == AX_SYS_CANCELLED && (m->flags & AX_MSG_F_BLOB))
        ax__blob_free(w, m->payload.blob.ptr);
}

static ax_reason_t msg_reason(const ax_msg_t *m)
{
    ax_reason_t r;
    memcpy(&r, m->payload.data + 8, sizeof r);
    return r;
}

/* A message for a CPU-metered actor: run it, charge the time. */
static void run_metered(ax_worker_t *w, ax_actor_t *a, ax_msg_t *m)
{
    uint64_t t0 = ax__now_ns();
    ax__run(w, a, m);
    uint64_t dt = ax__now_ns() - t0;
    if (a->sp && ax__sp_take_l(w, a->sp, AX_RES_CPU_NS, dt ? dt : 1, NULL) < 0 &&
        !(a->flags & AX_ACTOR_STOPPING)) {
        /* No call to refuse: the budget is spent, whatever the policy. */
        ax_reason_t r = {.kind = AX_REASON_QUOTA, .code = AX_RES_CPU_NS};
        set_pending(w, a, &r);
    }
    if (a->flags & (AX_ACTOR_STOPPING | AX_ACTOR_UNSTASH))
        ax__actor_after(w, a, m->to);
}

/* Deliver a DOWN or EXIT (type rewritten in place) to a live actor. */
static void deliver(ax_worker_t *w, ax_actor_t *a, ax_msg_t *m, uint32_t type)
{
    m->type = type;
    if (a->flags & AX_ACTOR_CPU) {
        run_metered(w, a, m);
        return;
    }
    ax__run(w, a, m);
    if (a->flags & (AX_ACTOR_STOPPING | AX_ACTOR_UNSTASH))
        ax__actor_after(w, a, m->to);
}

void ax__fault_dead_request(ax_worker_t *w, const ax_msg_t *m)
{
    if (m->type == AX_SYS_MONITOR)
        notify(w, m->to, m->from, AX_SYS_DOWN, m->payload.u64[0], &reason_no_actor);
    else if (m->type == AX_SYS_LINK)
        notify(w, m->to, m->from, AX_SYS_EXIT, 0, &reason_no_actor);
}

void ax__fault_dispatch(ax_worker_t *w, ax_msg_t *m)
{
    if (m->type == AX_SYS_REVOKE) {
        ax_sponsor_t *sp = (ax_sponsor_t *)(uintptr_t)m->payload.u64[0];
        revoke_here(w, sp);
        ax__sp_unref(sp);
        return;
    }
    if (m->type == AX_SYS_CANCELLED) {
        AX_STAT_INC(w->st.io_cancelled);
        ax__fault_free_payload(w, m);
        return;
    }
    uint32_t slot = ax__ref_slot(m->to);
    ax_slot_t *e = &w->table[slot];
    ax_actor_t *a = e->actor;
    if (a && (e->gen != ax__ref_gen(m->to) || (a->flags & AX_ACTOR_EMBRYO)))
        a = NULL; /* gone (or not there yet and not waiting: a dead ref) */
    bool dormant = a && (a->flags & AX_ACTOR_DORMANT);
    ax_actor_t *live = dormant ? NULL : a;

    switch (m->type) {
    case AX_SYS_MONITOR:
        if (live && rec_new(w, live, AX_REC_WATCHER, m->from, m->payload.u64[0]))
            return;
        notify(w, m->to, m->from, AX_SYS_DOWN, m->payload.u64[0], &reason_no_actor);
        return;
    case AX_SYS_DEMONITOR:
        if (live)
            rec_remove(w, live, AX_REC_WATCHER, m->from, m->payload.u64[0]);
        return;
    case AX_SYS_DOWN:
        if (live && m->payload.u64[0] && rec_remove(w, live, AX_REC_WATCHING, m->from, m->payload.u64[0])) {
            if ((live->flags & AX_ACTOR_CONV) &&
                ax__conv_down(w, live, m->to, m->payload.u64[0], msg_reason(m).kind))
                return; /* a request's monitor (request.c): its continuation ran */
            deliver(w, live, m, AX_TYPE_DOWN);
            return;
        }
        AX_STAT_INC(w->st.downs_filtered);
        return;
    case AX_SYS_LINK:
        if (live && (rec_find(live, AX_REC_LINK, m->from, 0, NULL) ||
                     rec_new(w, live, AX_REC_LINK, m->from, 0)))
            return;
        notify(w, m->to, m->from, AX_SYS_EXIT, 0, &reason_no_actor);
        return;
    case AX_SYS_UNLINK:
        if (live)
            rec_remove(w, live, AX_REC_LINK, m->from, 0);
        return;
    case AX_SYS_EXIT: {
        if (!live || !rec_remove(w, live, AX_REC_LINK, m->from, 0)) {
            AX_STAT_INC(w->st.downs_filtered);
            return;
        }
        if (live->flags & AX_ACTOR_TRAP) {
            deliver(w, live, m, AX_TYPE_EXIT);
            return;
        }
        ax_reason_t peer = msg_reason(m);
        if (ax_reason_abnormal(&peer)) {
            ax_reason_t r = {.kind = AX_REASON_LINKED, .code = (int32_t)peer.kind, .peer = m->from};
            ax__actor_stop_why(w, live, &r, false);
        }
        return;
    }
    case AX_SYS_KILL:
        if (live) {
            ax_reason_t r = {.kind = AX_REASON_KILLED, .peer = m->from};
            ax__actor_stop_why(w, live, &r, false);
        }
        return;
    case AX_SYS_RESTART: {
        uint32_t flags = (uint32_t)m->payload.u64[0];
        uint64_t mid = m->payload.u64[1];
        if (dormant) {
            restart(w, a, m->to, flags, m->from, mid);
        } else if (mid) { /* alive: just monitor it; gone: DOWN at once */
            if (!live || !rec_new(w, live, AX_REC_WATCHER, m->from, mid))
                notify(w, m->to, m->from, AX_SYS_DOWN, mid, &reason_no_actor);
        }
        return;
    }
    case AX_SYS_RELEASE:
        if (dormant)
            release_dormant(w, a);
        else if (live)
            live->flags &= ~AX_ACTOR_RESTARTABLE;
        return;
    default:
        break;
    }
    /* Not a request: a message for a dormant or CPU-metered actor. */
    if (dormant) {
        if (m->flags & AX_MSG_F_IO) { /* the old incarnation's I/O: never delivered */
            AX_STAT_INC(w->st.io_cancelled);
            ax__free_payload(w, m);
            return;
        }
        ax_life_t *life = life_of(a);
        ax_msg_t *h = life ? ax_mq_push(&life->held, w->arena) : NULL;
        if (h) {
            *h = *m; /* the blob (if any) travels with it */
            return;
        }
        ax__dead_letter(w, m);
        return;
    }
    if (live && (live->flags & AX_ACTOR_CPU)) {
        run_metered(w, live, m);
        return;
    }
    /* A system request for a dead ref that no case above took. */
    ax__free_payload(w, m);
}

/* ---- I/O list ---------------------------------------------------------------------- */

struct io_req **ax__fault_io_head(ax_worker_t *w)
{
    ax_actor_t *a = w->cur;
    if (!a)
        return NULL;
    ax_rec_t *r = rec_find(a, AX_REC_IO, 0, 0, NULL);
    if (!r && !(r = rec_new(w, a, AX_REC_IO, 0, 0)))
        return NULL;
    return &r->io_head;
}
