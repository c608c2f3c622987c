/* perf/axon_bench.h - write Google Benchmark benchmarks in C.
 *
 * A benchmark is a C function that runs `iters` iterations of its own loop
 * (one call per batch, no C++->C call per iteration).  Register it from a
 * constructor so each bench_*.c file stands alone:
 *
 *     static void bm_x(axon_bench_state *st, uint64_t iters, void *arg) {...}
 *     AXON_BENCHMARK(register_x) {
 *         void *b = axon_bench_register("module/x", bm_x, NULL);
 *         axon_bench_unit_ns(b);
 *     }
 *
 * Names are "module/what[/param]" so scripts can compare them.  Speed is
 * measured here, never in a unit test.
 */
#ifndef AXON_PERF_BENCH_H
#define AXON_PERF_BENCH_H

#include <stdint.h>

typedef struct axon_bench_state axon_bench_state;
typedef void (*axon_bench_fn)(axon_bench_state *st, uint64_t iters, void *arg);
enum { AXON_COUNTER_PLAIN = 0, AXON_COUNTER_RATE = 1, AXON_COUNTER_AVG_THREADS = 2 };

void *axon_bench_register(const char *name, axon_bench_fn fn, void *arg);
void axon_bench_arg(void *b, int64_t a);
void axon_bench_args2(void *b, int64_t a, int64_t c);
void axon_bench_threads(void *b, int n);
void axon_bench_unit_ns(void *b);
void axon_bench_unit_us(void *b);
void axon_bench_real_time(void *b);
void axon_bench_iterations(void *b, int64_t n);
void axon_bench_min_time(void *b, double seconds);

int64_t axon_bench_range(axon_bench_state *st, int i);
int axon_bench_thread_index(axon_bench_state *st);
void axon_bench_pause(axon_bench_state *st);
void axon_bench_resume(axon_bench_state *st);
void axon_bench_items(axon_bench_state *st, int64_t n);
void axon_bench_bytes(axon_bench_state *st, int64_t n);
void axon_bench_skip(axon_bench_state *st, const char *why);
void axon_bench_counter(axon_bench_state *st, const char *name, double v, int kind);
/* Report a measured time per iteration (manual timing, seconds). */
void axon_bench_set_iteration_time(axon_bench_state *st, double seconds);
void axon_bench_manual_time(void *b);

int axon_bench_main(int argc, char **argv);

/* DoNotOptimize/ClobberMemory are C++ templates; C needs its own escapes.
 * Without one GCC deleted a memcpy into a non-escaping buffer (probes). */
#define AXON_ESCAPE(p) __asm__ volatile("" : : "g"(p) : "memory")
#define AXON_CLOBBER() __asm__ volatile("" : : : "memory")

#define AXON_BENCHMARK(fn) \
    static void fn(void) __attribute__((constructor)); \
    static void fn(void)

#endif
