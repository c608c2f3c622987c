// Google Benchmark 1.7.1 shim: lets benchmarks be written in C (perf/axon_bench.h).
// The C side gets a whole batch of iterations per call (KeepRunningBatch).
#include <benchmark/benchmark.h>
#include <cstdint>

extern "C" {
#include "axon_bench.h"
}

static benchmark::State &S(axon_bench_state *st) { return *reinterpret_cast<benchmark::State *>(st); }
static benchmark::internal::Benchmark *B(void *b) { return static_cast<benchmark::internal::Benchmark *>(b); }

extern "C" {
void *axon_bench_register(const char *name, axon_bench_fn fn, void *arg) {
  return benchmark::RegisterBenchmark(name, [fn, arg](benchmark::State &state) {
    auto *cs = reinterpret_cast<axon_bench_state *>(&state);
    while (state.KeepRunningBatch(state.max_iterations)) fn(cs, (uint64_t)state.max_iterations, arg);
  });
}
void axon_bench_arg(void *b, int64_t a) { B(b)->Arg(a); }
void axon_bench_args2(void *b, int64_t a, int64_t c) { B(b)->Args({a, c}); }
void axon_bench_threads(void *b, int n) { B(b)->Threads(n)->UseRealTime(); }
void axon_bench_unit_ns(void *b) { B(b)->Unit(benchmark::kNanosecond); }
void axon_bench_unit_us(void *b) { B(b)->Unit(benchmark::kMicrosecond); }
void axon_bench_real_time(void *b) { B(b)->UseRealTime(); }
void axon_bench_manual_time(void *b) { B(b)->UseManualTime(); }
void axon_bench_iterations(void *b, int64_t n) { B(b)->Iterations(n); }
void axon_bench_min_time(void *b, double s) { B(b)->MinTime(s); }

int64_t axon_bench_range(axon_bench_state *st, int i) { return S(st).range((std::size_t)i); }
int axon_bench_thread_index(axon_bench_state *st) { return S(st).thread_index(); }
void axon_bench_pause(axon_bench_state *st) { S(st).PauseTiming(); }
void axon_bench_resume(axon_bench_state *st) { S(st).ResumeTiming(); }
void axon_bench_items(axon_bench_state *st, int64_t n) { S(st).SetItemsProcessed(n); }
void axon_bench_bytes(axon_bench_state *st, int64_t n) { S(st).SetBytesProcessed(n); }
void axon_bench_skip(axon_bench_state *st, const char *why) { S(st).SkipWithError(why); }
void axon_bench_set_iteration_time(axon_bench_state *st, double s) { S(st).SetIterationTime(s); }
void axon_bench_counter(axon_bench_state *st, const char *name, double v, int kind) {
  benchmark::Counter::Flags f = benchmark::Counter::kDefaults;
  if (kind & AXON_COUNTER_RATE) f = benchmark::Counter::Flags(f | benchmark::Counter::kIsRate);
  if (kind & AXON_COUNTER_AVG_THREADS) f = benchmark::Counter::Flags(f | benchmark::Counter::kAvgThreads);
  S(st).counters[name] = benchmark::Counter(v, f);
}

int axon_bench_main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::size_t n = benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return n ? 0 : 2;  // 2: the filter matched nothing
}
}  // extern "C"
