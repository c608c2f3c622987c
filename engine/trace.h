/* engine/trace.h - USDT tracepoints of the engine (provider "axon").
 *
 * Role: static probes at send, dispatch begin/end, ring full, park, wake,
 * spawn and stop, readable by perf (`perf probe -x BIN sdt_axon:send`),
 * bpftrace (`usdt:BIN:axon:send`) or systemtap without rebuilding.  The
 * list, the arguments and how to use them are in docs/profiling.md.
 *
 * Cost: every probe is guarded by its semaphore, a global unsigned short that
 * a tracer increments while it is attached (perf >= 4.20 and bpftrace do).
 * Untraced, a probe costs one load of that global and a not-taken branch; the
 * arguments are not even computed, and the probe site itself is a NOP.
 *
 * Threading: the macros may be used from any thread; the semaphores are only
 * written by the kernel (uprobe reference counters), so a plain load is the
 * right read: a tracer attaching mid-run is seen within a few probe hits, which
 * is all a tracer can ask of a racing start.
 *
 * Memory: the semaphores are defined exactly once, in engine/trace.c
 * (compiled with AX_TRACE_DEFINE_SEMAPHORES); every other file sees the
 * extern declarations below.  sys/sdt.h with _SDT_HAS_SEMAPHORES requires a
 * declared semaphore for EVERY probe used in a file: add a probe here, its
 * semaphore here and in trace.c, never in a .c file alone.
 *
 * Argument conventions (all integers, so perf/bpftrace print them plainly):
 *   worker   uint32_t  the worker running the probe (ax_worker_id)
 *   ref      uint64_t  an actor reference (ax_ref_t)
 *   type     uint32_t  the message type tag
 *   dst/target uint32_t another worker's id
 */
#ifndef AXON_ENGINE_TRACE_H
#define AXON_ENGINE_TRACE_H

#include <stdint.h>

#ifdef _SYS_SDT_H
#error "engine/trace.h must be included before <sys/sdt.h>: the probes need _SDT_HAS_SEMAPHORES"
#endif
#define _SDT_HAS_SEMAPHORES 1
/* Arguments in registers only.  The default constraint ("nor") lets gcc pass
 * a memory operand such as 80(%rbp,%rdx), which perf cannot fetch: perf then
 * drops that argument at one site, and the kernel refuses to join sites whose
 * argument lists differ ("Argument type or name is different"), so a probe
 * inlined in two places could not be traced at all.  Registers cost nothing
 * untraced: the arguments are only computed behind the semaphore. */
#define STAP_SDT_ARG_CONSTRAINT r
#include <sys/sdt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Names are fixed by sys/sdt.h: <provider>_<probe>_semaphore, in .probes. */
#ifdef AX_TRACE_DEFINE_SEMAPHORES
#define AX__TRACE_SEM(name) \
    unsigned short axon_##name##_semaphore __attribute__((section(".probes"), used, visibility("hidden")))
#else
#define AX__TRACE_SEM(name) extern unsigned short axon_##name##_semaphore __attribute__((visibility("hidden")))
#endif

AX__TRACE_SEM(send);
AX__TRACE_SEM(dispatch_begin);
AX__TRACE_SEM(dispatch_end);
AX__TRACE_SEM(ring_full);
AX__TRACE_SEM(park);
AX__TRACE_SEM(wake);
AX__TRACE_SEM(spawn);
AX__TRACE_SEM(stop);
AX__TRACE_SEM(watchdog);

/* True while a tracer is attached to the probe.  The kernel changes the value
 * under us; a plain read through a volatile lvalue keeps the compiler from
 * hoisting it out of a worker loop (a one-time read would miss a late attach). */
#define AX__TRACE_ON(name) \
    __builtin_expect(*(volatile unsigned short *)&axon_##name##_semaphore != 0, 0)

/* A message was queued: locally, into a ring or into an overflow queue.
 * worker: sender's worker; to: target ref; type: message type. */
#define AX_TRACE_SEND(worker, to, type)                                          \
    do {                                                                         \
        if (AX__TRACE_ON(send))                                                  \
            DTRACE_PROBE3(axon, send, (uint32_t)(worker), (uint64_t)(to),        \
                          (uint32_t)(type));                                     \
    } while (0)

/* A behaviour is about to run for a message to `to` on `worker`. */
#define AX_TRACE_DISPATCH_BEGIN(worker, to, type)                                \
    do {                                                                         \
        if (AX__TRACE_ON(dispatch_begin))                                        \
            DTRACE_PROBE3(axon, dispatch_begin, (uint32_t)(worker),              \
                          (uint64_t)(to), (uint32_t)(type));                     \
    } while (0)

/* The behaviour returned (pairs with the last DISPATCH_BEGIN on `worker`). */
#define AX_TRACE_DISPATCH_END(worker, to)                                        \
    do {                                                                         \
        if (AX__TRACE_ON(dispatch_end))                                          \
            DTRACE_PROBE2(axon, dispatch_end, (uint32_t)(worker), (uint64_t)(to)); \
    } while (0)

/* A send from `worker` found its ring to `dst` full and spilled to overflow. */
#define AX_TRACE_RING_FULL(worker, dst)                                          \
    do {                                                                         \
        if (AX__TRACE_ON(ring_full))                                             \
            DTRACE_PROBE2(axon, ring_full, (uint32_t)(worker), (uint32_t)(dst)); \
    } while (0)

/* `worker` is about to sleep in the kernel (after its spin ran out). */
#define AX_TRACE_PARK(worker)                                                    \
    do {                                                                         \
        if (AX__TRACE_ON(park))                                                  \
            DTRACE_PROBE1(axon, park, (uint32_t)(worker));                       \
    } while (0)

/* `worker` (or an external thread: worker = UINT32_MAX) wakes `target`. */
#define AX_TRACE_WAKE(worker, target)                                            \
    do {                                                                         \
        if (AX__TRACE_ON(wake))                                                  \
            DTRACE_PROBE2(axon, wake, (uint32_t)(worker), (uint32_t)(target));   \
    } while (0)

/* An actor `ref` was created on / stopped on `worker`. */
#define AX_TRACE_SPAWN(worker, ref)                                              \
    do {                                                                         \
        if (AX__TRACE_ON(spawn))                                                 \
            DTRACE_PROBE2(axon, spawn, (uint32_t)(worker), (uint64_t)(ref));     \
    } while (0)

#define AX_TRACE_STOP(worker, ref)                                               \
    do {                                                                         \
        if (AX__TRACE_ON(stop))                                                  \
            DTRACE_PROBE2(axon, stop, (uint32_t)(worker), (uint64_t)(ref));      \
    } while (0)

/* The watchdog thread found `ref` on `worker` running one message of `type`
 * (UINT32_MAX: init or fini) for at least `ms` milliseconds. */
#define AX_TRACE_WATCHDOG(worker, ref, type, ms)                                 \
    do {                                                                         \
        if (AX__TRACE_ON(watchdog))                                              \
            DTRACE_PROBE4(axon, watchdog, (uint32_t)(worker), (uint64_t)(ref),   \
                          (uint32_t)(type), (uint64_t)(ms));                     \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif /* AXON_ENGINE_TRACE_H */
