#!/bin/sh
# tests/fuzz/run_fuzz_hostfile.sh BUILD_DIR [SOURCE_DIR] [SECONDS] - build the
# hostfile parser's libFuzzer target (tests/fuzz/fuzz_hostfile.c) with clang
# (fuzzer + ASan + UBSan) and run it for a bounded time over a copy of the
# seed corpus (tests/fuzz/corpus_hostfile, never written).  Crashes are kept
# in BUILD_DIR/crashes/; add each one to bad_cases in
# tests/unit/test_cluster_plan.c.
set -eu
if [ $# -lt 1 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
    echo "usage: $0 BUILD_DIR [SOURCE_DIR] [SECONDS]   (default 10 s)" >&2
    [ $# -ge 1 ] && exit 0 || exit 2
fi
build=$1
src=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${3:-10}
cc=${FUZZ_CC:-$(command -v clang-14 || command -v clang || true)}
if [ -z "$cc" ]; then
    echo "fuzz_hostfile: clang not found; install it: apt-get install clang libclang-rt-14-dev" >&2
    exit 1
fi
mkdir -p "$build/crashes"
"$cc" -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I"$src/include" -I"$src" \
    "$src/tests/fuzz/fuzz_hostfile.c" "$src/topology/hostfile.c" -o "$build/fuzz_hostfile" || {
    echo "fuzz_hostfile: building with $cc failed; libFuzzer needs: apt-get install clang libclang-rt-14-dev" >&2
    exit 1
}
rm -rf "$build/corpus_hostfile"
cp -r "$src/tests/fuzz/corpus_hostfile" "$build/corpus_hostfile"
echo "fuzz_hostfile: running $secs s over $(ls "$build/corpus_hostfile" | wc -l) seeds"
# -runs bounds a fast machine, -max_total_time a slow one.
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
"$build/fuzz_hostfile" -max_total_time="$secs" -runs=3000000 -max_len=2048 \
    -dict="$src/tests/fuzz/hostfile.dict" \
    -artifact_prefix="$build/crashes/" -print_final_stats=1 "$build/corpus_hostfile" \
    2>"$build/fuzz_hostfile.log" || {
    tail -40 "$build/fuzz_hostfile.log" >&2
    echo "fuzz_hostfile: FAILED; inputs in $build/crashes/ (add them to test_cluster_plan.c)" >&2
    exit 1
}
grep -E '^stat::number_of_executed_units|^Done' "$build/fuzz_hostfile.log" || true
echo "fuzz_hostfile: no crash"
