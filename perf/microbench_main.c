/* perf/microbench_main.c - axon-microbench: every perf/bench_*.c in one binary,
 * so ratios between benchmarks come from one run on one (noisy) machine.
 * Flags are Google Benchmark's (1.7.1): --benchmark_filter=REGEX,
 * --benchmark_format=json, --benchmark_repetitions=N, --benchmark_min_time=0.1 */
#include "axon_bench.h"

int main(int argc, char **argv) { return axon_bench_main(argc, argv); }
