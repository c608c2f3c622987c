#!/bin/sh
# tests/tools/test_perf_scripts.sh - the profiling scripts (ctest, label tool).
# usage: test_perf_scripts.sh SCRIPTS_DIR BINARY [help|stat|instr]
#   help: every perf/scripts/*.sh answers --help with its usage and exit 0,
#         and rejects an unknown argument with exit 2
#   stat: perf-stat.sh runs end to end on a tiny workload and prints
#         per-message software counters (exit 77 = skipped when perf is missing)
#   instr: instr-count.sh runs end to end on small counts (BINARY is then
#         axon-msg-count) and prints instructions per message and the ratio
#         to the bare dispatch (exit 77 = skipped when valgrind is missing)
set -u
dir=$1 bin=$2 what=${3:-help}
fail() { echo "FAIL: $*"; exit 1; }
case $what in
help)
  n=0
  for s in "$dir"/perf-stat.sh "$dir"/perf-record.sh "$dir"/cachegrind.sh "$dir"/trace.sh \
           "$dir"/instr-count.sh; do
    [ -x "$s" ] || fail "$s is missing or not executable"
    out=$("$s" --help 2>&1) || fail "$s --help exited $?"
    echo "$out" | grep -q "usage:" || fail "$s --help prints no usage line"
    "$s" --no-such-argument >/dev/null 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "$s --no-such-argument exited $rc, want 2"
    n=$((n + 1))
  done
  echo "PASS: $n scripts answer --help and reject bad arguments"
  ;;
stat)
  command -v perf >/dev/null 2>&1 || { echo "SKIP: perf not installed"; exit 77; }
  out=$("$dir"/perf-stat.sh --bin "$bin" --workload pingpong_local 2>&1) \
    || fail "perf-stat.sh exited $?: $out"
  echo "$out"
  echo "$out" | grep -q "per message" || fail "no per-message column"
  echo "$out" | grep -Eq "^task-clock +[0-9.]+ msec +[0-9.]+ ns" || fail "no task-clock per message"
  echo "$out" | grep -q "baseline:" || fail "no baseline run"
  echo "PASS: perf-stat.sh end to end"
  ;;
instr)
  command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind not installed"; exit 77; }
  out=$("$dir"/instr-count.sh --bin "$bin" --n 2000 --only local_send,pingpong,dispatch2 \
        --out "${TMPDIR:-/tmp}/axon-instr-test.$$" 2>&1) || fail "instr-count.sh exited $?: $out"
  rm -rf "${TMPDIR:-/tmp}/axon-instr-test.$$"
  echo "$out"
  echo "$out" | grep -Eq "^  local_send +[0-9.]+ Ir per message" || fail "no local_send count"
  echo "$out" | grep -Eq "^  pingpong +[0-9.]+ Ir per round trip" || fail "no pingpong count"
  echo "$out" | grep -Eq "local_send / dispatch2: [0-9.]+x" || fail "no ratio to the bare dispatch"
  "$dir"/instr-count.sh --bin "$bin" --n 12 >/dev/null 2>&1
  [ $? -eq 2 ] || fail "instr-count.sh --n 12 (too small) did not exit 2"
  echo "PASS: instr-count.sh end to end"
  ;;
*) fail "unknown mode $what" ;;
esac
