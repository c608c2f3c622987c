/* engine/trace.c - the one definition of every USDT semaphore of
 * engine/trace.h.  The kernel increments a semaphore while a tracer is
 * attached to its probe; nothing in axon writes them.  No code lives here. */
#define AX_TRACE_DEFINE_SEMAPHORES 1
#include "engine/trace.h"
