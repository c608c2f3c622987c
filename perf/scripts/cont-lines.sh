#!/usr/bin/env bash
# cont-lines.sh - cache lines a shared-container write moves (issue 13), and
# the same count for the bare floor (limits/shared_table), from valgrind
# lackey memory traces of axon-microbench read through sharing.py.
#
# A write's lines: the distinct 64-byte lines one write (from the entry of
# ax_cont_write_enter to the thread's next read; for the floor, one call of
# lim_table_write and the reads up to the next one) stores to that the
# other worker also uses.  Each must leave the other worker's cache for the
# write and come back for the other worker's next read of it: the count is
# exact and the same every run (the timing is not).
#
# Each reader does a fixed half (AXON_BENCH_FIXED_SHARE=1): under valgrind
# one thread would otherwise claim the whole shared budget.
#
# usage: cont-lines.sh [--bin PATH] [--ops N] [memory|limit]...  (default: both)
#   AXON_BENCH_WRITE_EVERY is passed through (default 100: 1% writes)
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$ROOT/build/bin/axon-microbench
OPS=20000
WHAT=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    --ops) OPS=${2:?--ops needs a count}; shift 2 ;;
    memory|limit) WHAT+=("$1"); shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "cont-lines.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[ ${#WHAT[@]} -gt 0 ] || WHAT=(memory limit)
[ -x "$BIN" ] || { echo "cont-lines.sh: no $BIN: build the plain build (./run.sh build), not a sanitizer one" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "cont-lines.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
BASE=0x108000 # where valgrind loads a PIE executable
addr() {
  local a
  a=$(nm "$BIN" | awk -v f="$1" '$3 == f {print $1; exit}')
  [ -n "$a" ] || { echo "cont-lines.sh: no symbol $1 in $BIN" >&2; exit 1; }
  printf '0x%x' $((0x$a + BASE))
}
run() { # filter ops-pc section-pc
  AXON_BENCH_OPS=$OPS AXON_BENCH_FIXED_SHARE=1 AXON_BENCH_TICK_MS=5 AXON_SCHEDULER_SPIN_US=1000000 \
    valgrind --tool=lackey --trace-mem=yes --trace-sched=yes --log-fd=3 \
    "$BIN" --benchmark_filter="$1" --benchmark_min_time=0.001 3>&1 >/dev/null 2>/dev/null |
    python3 "$HERE/sharing.py" --ops-pc "$2" --section-pc "$3" --nm "$BIN" --nm-base $BASE
}
for w in "${WHAT[@]}"; do
  case "$w" in
    memory)
      echo "== containers/read/memory/2 ($OPS operations)"
      run 'containers/read/memory/2/' "$(addr ax_cont_get)" "$(addr ax_cont_write_enter)" ;;
    limit)
      echo "== limits/shared_table/2 ($OPS operations; 'ops' below are writes)"
      w=$(addr lim_table_write)
      run 'limits/shared_table/2' "$w" "$w" ;;
  esac
done
