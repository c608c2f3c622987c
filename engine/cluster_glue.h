/* engine/cluster_glue.h - the engine's side of the cluster transport (the
 * UCP data path; the control plane is cluster/control.c).  Called by the
 * worker loop (engine.c) and the send and dispatch paths (actor.c); all
 * per-worker calls run on that worker's thread.  Not installed.
 */
#ifndef AXON_ENGINE_CLUSTER_GLUE_H
#define AXON_ENGINE_CLUSTER_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/mq.h"

struct ax_engine;
struct ax_ctx;
struct ax_cl;
struct ax_clw;

/* Worker-level system messages from the control thread (engine-internal
 * types between AX_TYPE_SYSTEM and AX_TYPE_IO). */
#define AX_SYS_NODE_DOWN (AX_TYPE_SYSTEM + 0x40)  /* u64[0]: node, u64[1]: session, u64[2]: left */
#define AX_SYS_NAME_BCAST (AX_TYPE_SYSTEM + 0x41) /* to local worker 0: tell peers; data: name */
#define AX_SYS_NAME_REG (AX_TYPE_SYSTEM + 0x42)   /* node to node: u64[0] ref, data+8: name */
#define AX_SYS_NAME_SYNC (AX_TYPE_SYSTEM + 0x43)  /* to local worker 0: u64[0] node joined */
#define AX_SYS_NAME_UNREG (AX_TYPE_SYSTEM + 0x44) /* node to node: data+8: name */
#define AX_SYS_RSPAWN (AX_TYPE_SYSTEM + 0x45)     /* to a node's worker 0; blob: rspawn_t + arg */
#define AX_SYS_NODE_WIRE (AX_TYPE_SYSTEM + 0x46)  /* u64[0]: node, u64[1]: session; u64[2]: 1 take its UCP worker, 0 wire it */
#define AX_SYS_CLUSTER_FIRST AX_SYS_NODE_DOWN
#define AX_SYS_CLUSTER_LAST AX_SYS_NODE_WIRE

/* Engine create, after the config is validated and before workers exist:
 * true if the config makes this engine a cluster node; sets *home. */
bool ax__cluster_wanted(const ax_config_t *cfg);
/* This start's incarnation tag (1..15): the one after cluster.state_file's
 * (which is rewritten), or from the clock without one.  0 or -errno. */
int ax__cluster_pick_tag(const ax_config_t *cfg, uint32_t *tag, char *err, size_t errlen);
/* After the workers are made: the UCP context, one UCP worker per axon
 * worker, the control plane (listener bound).  0 or -errno, err filled. */
int ax__cluster_create(struct ax_engine *eng, uint32_t inc_tag, char *err, size_t errlen);
int ax__cluster_start(struct ax_engine *eng);   /* the control thread */
void ax__cluster_destroy(struct ax_engine *eng); /* after the workers exited */

/* Per worker, on its thread. */
uint32_t ax__cluster_progress(struct ax_ctx *w); /* UCP progress; true-ish if it did anything */
void ax__cluster_flush(struct ax_ctx *w);       /* send what this turn queued */
ax_mq_t *ax__cluster_inq(struct ax_ctx *w);     /* delivered messages, in order */
/* The slot for a message to `to` on another node (or for a stale
 * reference, which becomes a dead letter at the flush); NULL with *err. */
ax_msg_t *ax__cluster_slot(struct ax_ctx *w, ax_ref_t to, int *err);
void ax__cluster_dispatch(struct ax_ctx *w, const ax_msg_t *m); /* AX_SYS_CLUSTER_* */
/* An outside thread's message (ax_engine_send) for a reference on another
 * node (or a stale one of this node), popped from this worker's inbox:
 * queued on this worker's channel to it, or a counted dead letter. */
void ax__cluster_forward(struct ax_ctx *w, const ax_msg_t *m);

/* [any thread] ax_engine_send to `to`, not a worker of this engine: the
 * local worker whose inbox carries it (always the same one for one `to`,
 * so one thread's messages to one actor keep their order).  0,
 * -EHOSTUNREACH (its node is not up), -EINVAL (AX_REF_NONE). */
int ax__cluster_ext_route(struct ax_engine *eng, ax_ref_t to, uint32_t *worker);
bool ax__cluster_arm(struct ax_ctx *w);          /* before parking: false if events wait */
bool ax__cluster_pending(struct ax_ctx *w);      /* queued inbound or outbound work */
bool ax__cluster_poll(struct ax_ctx *w);         /* pending, or one UCP progress found events */
bool ax__cluster_traffic(struct ax_ctx *w);      /* remote traffic since the last park */
void ax__cluster_yielded(struct ax_ctx *w);      /* count one yield before parking (stats) */
/* The park's timeout: with cluster.progress = spin at most cluster.poll_us
 * (no event fd wakes the worker for remote traffic). */
int64_t ax__cluster_park_ns(struct ax_ctx *w, int64_t timeout_ns);
void ax__cluster_efd_fired(struct ax_ctx *w);    /* the io_uring poll of the UCP fd completed */
bool ax__cluster_efd_armed(struct ax_ctx *w);
void ax__cluster_worker_stop(struct ax_ctx *w);  /* shutdown: drop queues, leave, close endpoints */
/* The reason a monitor of ref gets when ref's node is not up:
 * AX_REASON_NODE_STOPPED if the node's last down was an orderly leave,
 * else AX_REASON_UNREACHABLE. */
uint32_t ax__cluster_down_reason(const struct ax_ctx *w, ax_ref_t ref);
extern const char ax__cluster_token_tag;         /* &tag: the io_uring token of the UCP poll */

#endif /* AXON_ENGINE_CLUSTER_GLUE_H */
