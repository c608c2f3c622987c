#!/bin/sh
# tests/fuzz/run_fuzz.sh BUILD_DIR [SOURCE_DIR] [SECONDS] - build the config
# parser's libFuzzer target with clang-14 (fuzzer + ASan + UBSan) and run it
# for a bounded time over a copy of the seed corpus.  Crashes are kept in
# BUILD_DIR/crashes/; add each one to fuzz_regressions in test_config.c.
set -eu
build=${1:?usage: run_fuzz.sh BUILD_DIR [SOURCE_DIR] [SECONDS]}
src=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${3:-15}
cc=$(command -v clang-14 || command -v clang || true)
if [ -z "$cc" ]; then
    echo "fuzz_config: clang not found; install it: apt-get install clang libclang-rt-14-dev" >&2
    exit 1
fi
mkdir -p "$build/crashes"
"$cc" -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I"$src/include" -I"$src" \
    "$src/tests/fuzz/fuzz_config.c" "$src/topology/config.c" -o "$build/fuzz_config" || {
    echo "fuzz_config: building with $cc failed; libFuzzer needs: apt-get install clang libclang-rt-14-dev" >&2
    exit 1
}
rm -rf "$build/corpus"
cp -r "$src/tests/fuzz/corpus_config" "$build/corpus"
echo "fuzz_config: running $secs s over $(ls "$build/corpus" | wc -l) seeds"
# -runs bounds a fast machine, -max_total_time a slow one.
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
"$build/fuzz_config" -max_total_time="$secs" -runs=5000000 -max_len=4096 \
    -artifact_prefix="$build/crashes/" -print_final_stats=1 "$build/corpus" 2>"$build/fuzz.log" || {
    tail -40 "$build/fuzz.log" >&2
    echo "fuzz_config: FAILED; inputs in $build/crashes/ (add them to test_config.c)" >&2
    exit 1
}
grep -E '^stat::number_of_executed_units|^Done' "$build/fuzz.log" || true
echo "fuzz_config: no crash"
