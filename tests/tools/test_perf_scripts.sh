#!/bin/sh
# tests/tools/test_perf_scripts.sh - the profiling scripts (ctest, label tool).
# usage: test_perf_scripts.sh SCRIPTS_DIR BINARY [help|stat|instr|ucx|erlang]
#   help: every perf/scripts/*.sh answers --help with its usage and exit 0,
#         and rejects an unknown argument with exit 2
#   stat: perf-stat.sh runs end to end on a tiny workload and prints
#         per-message software counters (exit 77 = skipped when perf is missing)
#   instr: instr-count.sh runs end to end on small counts (BINARY is then
#         axon-msg-count) and prints instructions per message and the ratio
#         to the bare dispatch (exit 77 = skipped when valgrind is missing)
#   ucx: ucx-limits.sh --quick measures AM latency and rate over shm and tcp
#        and prints parseable RESULT lines; no ucx_perftest is left running
#        (exit 77 when ucx-utils is missing)
#   erlang: erlang-dist.sh --quick runs pingpong, oneway, big and mesh between
#        two Erlang nodes; bad --drop and a mesh --actors that is not a
#        multiple of --nodes are refused; no epmd or beam of its own is left running, no file
#        is left in the working directory (77 when erlang-base is missing)
set -u
dir=$(cd "$1" && pwd) bin=$2 what=${3:-help}
fail() { echo "FAIL: $*"; exit 1; }
case $what in
help)
  n=0
  for s in "$dir"/perf-stat.sh "$dir"/perf-record.sh "$dir"/cachegrind.sh "$dir"/trace.sh \
           "$dir"/ucx-limits.sh "$dir"/erlang-dist.sh "$dir"/instr-count.sh; do
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
ucx)
  command -v ucx_perftest >/dev/null 2>&1 || { echo "SKIP: ucx_perftest not installed (apt-get install ucx-utils)"; exit 77; }
  out=$("$dir"/ucx-limits.sh --quick 2>&1) || fail "ucx-limits.sh --quick exited $?: $out"
  echo "$out"
  for tls in shm tcp; do
    echo "$out" | grep -Eq "^RESULT peer=ucx_perftest tls=$tls test=am_lat size=64 rep=median iters=[0-9]+ half_rtt_us=[0-9.]+ rtt_us=[0-9.]+ " \
      || fail "no am_lat median line for $tls"
    echo "$out" | grep -Eq "^RESULT peer=ucx_perftest tls=$tls test=am_bw size=64 rep=median iters=[0-9]+ msgs_per_s=[1-9][0-9]* MB_per_s=[0-9.]+$" \
      || fail "no am_bw median line for $tls"
  done
  "$dir"/ucx-limits.sh --size 0 >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] || fail "--size 0 exited $rc, want 2"
  "$dir"/ucx-limits.sh --tls 'shm;rm' >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] || fail "--tls 'shm;rm' exited $rc, want 2"
  # a transport UCX does not have: the failure is reported, not hidden
  out=$("$dir"/ucx-limits.sh --quick --tls nosuchtl 2>&1); rc=$?
  [ $rc -eq 1 ] || fail "--tls nosuchtl exited $rc, want 1: $out"
  echo "$out" | grep -q "failed" || fail "--tls nosuchtl did not say what failed: $out"
  sleep 0.5
  if ps -eo args | grep -q '^ucx_perftest -p [0-9]* -t ucp_am'; then
    ps -eo pid,args | grep 'ucx_perftest' >&2
    fail "a ucx_perftest server was left running"
  fi
  echo "PASS: ucx-limits.sh end to end"
  ;;
erlang)
  command -v erl >/dev/null 2>&1 || { echo "SKIP: erl not installed (apt-get install erlang-base)"; exit 77; }
  work=$(mktemp -d /tmp/axon-erlang-test.XXXXXX)
  out=$(cd "$work" && "$dir"/erlang-dist.sh --quick 2>&1); rc=$?
  left=$(ls -A "$work"); rmdir "$work" 2>/dev/null
  [ $rc -eq 0 ] || fail "erlang-dist.sh --quick exited $rc: $out"
  echo "$out"
  echo "$out" | grep -Eq '^RESULT peer=erlang_dist wl=pingpong size=64 rep=median n=2000 nodes=2 rtt_us=[0-9.]+ msgs_per_s=[1-9]' \
    || fail "no pingpong median line"
  echo "$out" | grep -Eq '^RESULT peer=erlang_dist wl=oneway size=64 rep=median n=2000 nodes=2 msgs_per_s=[1-9][0-9]* ns_per_msg=[0-9.]+$' \
    || fail "no oneway median line"
  echo "$out" | grep -Eq '^RESULT peer=erlang_dist wl=big size=64 rep=median n=20 nodes=2 actors=64 msgs_per_s=[1-9]' \
    || fail "no big median line"
  echo "$out" | grep -Eq '^RESULT peer=erlang_dist wl=mesh size=64 rep=median n=20 nodes=2 actors=64 msgs_per_s=[1-9]' \
    || fail "no mesh median line"
  [ -z "$left" ] || fail "erlang-dist.sh left files in the working directory: $left"
  "$dir"/erlang-dist.sh --workloads bogus >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] || fail "--workloads bogus exited $rc, want 2"
  "$dir"/erlang-dist.sh --nodes 9 >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] || fail "--nodes 9 exited $rc, want 2"
  "$dir"/erlang-dist.sh --drop x >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] || fail "--drop x exited $rc, want 2"
  out=$("$dir"/erlang-dist.sh --workloads mesh --nodes 3 --actors 64 2>&1); rc=$?
  [ $rc -eq 2 ] && echo "$out" | grep -q "multiple of 3" || fail "mesh on 3 nodes with 64 actors: exit $rc, want 2 and why: $out"
  # the nodes are named axa<pid>, axb<pid>, ... and epmd runs on a port of its own
  sleep 0.5
  if ps -eo args | grep -E 'beam.*-sname ax[a-h][0-9]+@localhost' | grep -qv grep; then
    ps -eo pid,args | grep -E 'beam|epmd' >&2
    fail "an Erlang node of erlang-dist.sh was left running"
  fi
  if ps -eo args | grep -Eq '^epmd -port [0-9]+ -address 127.0.0.1$'; then
    ps -eo pid,args | grep epmd >&2
    fail "the private epmd was left running"
  fi
  echo "PASS: erlang-dist.sh end to end"
  ;;
*) fail "unknown mode $what" ;;
esac
