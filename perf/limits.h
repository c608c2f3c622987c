/* perf/limits.h - this machine's limits for an actor engine, measured in the
 * same process (and the same run) as the engine figures they bound.
 *
 * Shared by axon-bench (tools/bench/) and axon-microbench (perf/bench_engine.c)
 * so both report the same floors:
 *   cache-line round trip  one line bounced between two pinned threads; the
 *                          floor of a cross-worker ping-pong
 *   SPSC ring              bounded ring of 64-byte slots between two pinned
 *                          threads, cached indices, tail published per batch;
 *                          the floor of cross-worker one-way throughput
 *   local dispatch         one thread, a FIFO of (actor, value) and a
 *                          behaviour called through a function pointer; the
 *                          floor of a same-worker send + dispatch
 *   create                 malloc a 64-byte actor, queue its one message,
 *                          dispatch it, free it; the floor of fjcreate
 *
 * This VM's host moves its vCPUs: about 1 time in 10 the two sit "far" apart
 * and a cache-line round trip jumps from ~52 ns to ~430 ns for 1-10 s.  Every
 * caller samples ax_limits_cacheline_rtt() around its runs and says which
 * state it measured in (ax_limits_placement_name()).
 *
 * Threading: each function starts and joins its own threads; the calling
 * thread's affinity is not changed.  Functions may run concurrently with
 * nothing else that is timing-sensitive; they are not reentrant (no global
 * state, but two at once would measure each other).
 * Memory: everything allocated here is freed before return.
 */
#ifndef AXON_PERF_LIMITS_H
#define AXON_PERF_LIMITS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Pick two CPUs for the two-thread limits: the first two CPUs of the
 * process's affinity mask.  Returns 0, or -ENODEV when fewer than two CPUs
 * are allowed (the cross-core limits cannot be measured). */
int ax_limits_pick_cpus(int *cpu_a, int *cpu_b);

/* n round trips of one cache line between threads pinned to cpu_a and cpu_b.
 * *ns_out: elapsed ns for all n (divide by n for one round trip).
 * Returns 0, -EINVAL (n == 0), or -errno (thread creation or pinning failed). */
int ax_limits_cacheline_rtt(int cpu_a, int cpu_b, uint64_t n, double *ns_out);

/* n 64-byte items from a producer pinned to cpu_a to a consumer pinned to
 * cpu_b through a ring of `slots` (power of two, >= 64) slots, tail published
 * every 64 items.  *ns_out: elapsed ns, producer's first write to consumer's
 * last read.  Returns 0, -EINVAL, -ENOMEM, -EIO (the consumer's checksum was
 * wrong: a bug here, never a speed) or -errno from pthreads. */
int ax_limits_spsc_ring(int cpu_a, int cpu_b, uint64_t n, uint32_t slots, double *ns_out);

/* n dispatches on the calling thread among `actors` actors passing a token
 * (2 = ping-pong shape, 503 = threadring shape).  *ns_out: elapsed ns.
 * Returns 0, -EINVAL or -ENOMEM. */
int ax_limits_dispatch(uint32_t actors, uint64_t n, double *ns_out);

/* n times: malloc an actor, queue one message for it, dispatch, free.
 * *ns_out: elapsed ns.  Returns 0, -EINVAL or -ENOMEM. */
int ax_limits_create(uint64_t n, double *ns_out);

/* The floor of a shared read-mostly table (issue 13): `threads` (1 or 2)
 * threads pinned to cpu_a (and cpu_b), each doing `ops` operations on one
 * table of `keys` (a power of two) entries of 64-byte values, one operation
 * in `write_every` (0: none) a write of a random key, the others reads of
 * a random key.  The least coherence traffic a design with atomic
 * visibility and readers that never wait can have: the entry is a pointer
 * (8 to a line), a write fills a recycled 64-byte value line and swaps it
 * in with one atomic exchange (two writers of one key each retire a
 * distinct old value); a read loads the pointer and the value's line and
 * checks its checksum.  Old values are reused after a quiescent-state
 * grace period (each thread publishes a counter every 256 operations, read
 * by the other only when its spare lines run out).
 * *ns_out: first start to last finish; *cpu_ns_out (may be NULL): the
 * threads' CPU time over their runs, summed (on a shared machine, 2 x the
 * 1-thread CPU per operation over the 2-thread one is the 2/1 ratio the
 * threads would have with a CPU each; coherence stalls count as CPU time).
 * Returns 0, -EINVAL, -ENOMEM, -EIO (a torn or wrong value was read: a bug
 * here, never a speed) or -errno from pthreads. */
int ax_limits_shared_table(int threads, int cpu_a, int cpu_b, uint32_t keys, uint64_t ops,
                           uint32_t write_every, double *ns_out, double *cpu_ns_out);

/* Placement of the two vCPUs as seen by a short bounce sample.  A sample is
 * "far" when its round trip exceeds far_ratio times the best round trip seen
 * in this process (best_ns, kept by the caller).  */
enum ax_limits_placement {
    AX_PLACE_UNKNOWN = 0, /* not sampled (fewer than two CPUs) */
    AX_PLACE_NEAR = 1,
    AX_PLACE_FAR = 2,
    AX_PLACE_MIXED = 3,   /* near and far samples around one measurement */
};
const char *ax_limits_placement_name(int placement);
/* Sample the placement now: 5000 round trips (~0.3 ms near, ~2 ms far).
 * *rtt_ns gets the sample's ns per round trip; *best_ns is lowered when this
 * sample is the best so far.  Returns an enum ax_limits_placement. */
int ax_limits_sample_placement(int cpu_a, int cpu_b, double far_ratio, double *best_ns,
                               double *rtt_ns);
/* Combine two placement states (near + far = mixed). */
int ax_limits_placement_merge(int a, int b);

#ifdef __cplusplus
}
#endif
#endif /* AXON_PERF_LIMITS_H */
