#!/usr/bin/env bash
# perf-stat.sh - hardware and software counters for one axon-bench workload,
# with per-message figures.
#
# usage: perf-stat.sh [--workload NAME] [--workers N] [--param k=v]... [--bin PATH]
#                     [--events LIST] [--usdt] [--keep DIR] [--help]
#   --workload NAME  an axon-bench workload (default counting; axon-bench --list)
#   --workers N      engine workers (default: one per core)
#   --param k=v      passed to axon-bench (e.g. --param counting.n=2M); repeatable
#   --bin PATH       axon-bench binary (default: $AXON_BENCH or the newest build*/bin/axon-bench)
#   --events LIST    perf events (default: cycles,instructions,cache-references,
#                    cache-misses,branches,branch-misses,L1-dcache-load-misses,
#                    LLC-load-misses,task-clock,context-switches,cpu-migrations,page-faults)
#   --usdt           also count the rare axon tracepoints (park, wake, ring_full,
#                    spawn, stop) through perf probe; needs root
#   --keep DIR       keep perf's raw output and axon-bench's JSON in DIR
#
# It runs the workload twice under perf stat (axon-bench --quick --repeat 1,
# limits off): at bench.scale_pct=1000 and at 100.  Per-message figures are
# the DIFFERENCE of the two counts over the difference of their messages, so
# engine start-up, arena prefaulting and exit cancel out.  When your --param
# fixes the counts (both runs equal), it falls back to whole-run / messages.
# Counters the kernel or VM lacks show as "not supported" (this VM has no
# hardware PMU: use cachegrind.sh for cache figures).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WL=counting
WORKERS=""
PARAMS=()
BIN=""
EVENTS="cycles,instructions,cache-references,cache-misses,branches,branch-misses,L1-dcache-load-misses,LLC-load-misses,task-clock,context-switches,cpu-migrations,page-faults"
USDT=0
KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --workload) WL=${2:?--workload needs a name}; shift 2 ;;
    --workers) WORKERS=${2:?--workers needs N}; shift 2 ;;
    --param) PARAMS+=(--param "${2:?--param needs k=v}"); shift 2 ;;
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    --events) EVENTS=${2:?--events needs a list}; shift 2 ;;
    --usdt) USDT=1; shift ;;
    --keep) KEEP=${2:?--keep needs a directory}; shift 2 ;;
    -h|--help) axon_usage "$0"; exit 0 ;;
    *) echo "perf-stat.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

axon_need_perf
[ -n "$BIN" ] || BIN=$(axon_find_bin) || exit 2
[ -x "$BIN" ] || axon_die "$BIN is not an executable"
axon_check_workload "$BIN" "$WL" || exit 2

OUT=${KEEP:-$(mktemp -d /tmp/axon-perf-stat.XXXXXX)}
mkdir -p "$OUT" || axon_die "cannot create $OUT"
cleanup() {
  [ "$USDT" = 1 ] && axon_usdt_del "$BIN"
  [ -z "$KEEP" ] && rm -rf "$OUT"
}
trap cleanup EXIT

if [ "$USDT" = 1 ]; then
  [ "$(id -u)" = 0 ] || axon_die "--usdt needs root (perf probe writes uprobe events)"
  ev=$(axon_usdt_add "$BIN" ring_full park wake spawn stop)
  [ -n "$ev" ] && EVENTS="$EVENTS,$ev"
fi

ARGS=(--quick --repeat 1 --only "$WL" --param bench.limits=0)
[ -n "$WORKERS" ] && ARGS+=(--workers "$WORKERS")

# run NAME SCALE: perf stat one axon-bench run; CSV in $OUT/NAME.csv
run() {
  local name=$1 scale=$2
  axon_log "perf stat -e ... $BIN ${ARGS[*]} --param bench.scale_pct=$scale ${PARAMS[*]:-}"
  if ! perf stat -x, -e "$EVENTS" -o "$OUT/$name.csv" -- \
      "$BIN" "${ARGS[@]}" --param "bench.scale_pct=$scale" "${PARAMS[@]}" \
      --json "$OUT/$name.json" > "$OUT/$name.out" 2> "$OUT/$name.err"; then
    cat "$OUT/$name.out" "$OUT/$name.err" >&2
    axon_die "axon-bench failed under perf stat (output above)"
  fi
}
# The timed part must dwarf start-up noise (engine create, thread start:
# tens of ms with +-5 ms jitter), or (full - base) can even come out
# negative: with --quick's counts a fast workload runs for ~4 ms, so both
# runs are scaled up 10x (full 10x quick, base 1x quick).
run full 1000
run base 100

ops() { sed -n 's/.*"ops_per_run": \([0-9]*\).*/\1/p' "$1" | head -1; }
rate() { sed -n 's/.*"median": \([0-9.e+]*\).*/\1/p' "$1" | head -1; }
OPS_FULL=$(ops "$OUT/full.json")
OPS_BASE=$(ops "$OUT/base.json")
[ -n "$OPS_FULL" ] && [ "$OPS_FULL" -gt 0 ] || axon_die "no message count in $OUT/full.json"
UNIT=$(sed -n 's/.*"unit": "\([^"]*\)".*/\1/p' "$OUT/full.json" | head -1)
PER="message"; [ "$UNIT" = "actors/s" ] && PER="actor"

echo "perf-stat.sh: $WL on $(nproc) CPUs, $(uname -r); $BIN"
printf '  full run: %s %s in the timed part, %s %s (axon-bench median)\n' "$OPS_FULL" "${PER}s" "$(rate "$OUT/full.json")" "$UNIT"
if [ "$OPS_BASE" -lt "$OPS_FULL" ]; then
  echo "  baseline: $OPS_BASE ${PER}s (bench.scale_pct=100); per-$PER = (full - baseline) / $((OPS_FULL - OPS_BASE))"
  DIFF=1
else
  echo "  baseline has as many ${PER}s (counts fixed by --param): per-$PER = whole run / $OPS_FULL (includes start-up)"
  DIFF=0
fi
echo
awk -F, -v dops=$((OPS_FULL - OPS_BASE)) -v ops="$OPS_FULL" -v diff=$DIFF -v per="$PER" '
  FNR == 1 { f++ }
  /^#/ || NF < 3 { next }
  { ev = $3; val[f, ev] = $1; unit[ev] = $2; if (f == 1) order[++n] = ev }
  END {
    printf "%-28s %18s %16s  %s\n", "event", "full run", "per " per, "note"
    miss = 0
    for (i = 1; i <= n; i++) {
      ev = order[i]; a = val[1, ev]; b = val[2, ev]
      if (a ~ /not supported/ || a ~ /not counted/) {
        printf "%-28s %18s %16s  %s\n", ev, a, "-", "no counter here (VM without PMU?)"; miss++; continue
      }
      d = diff ? (a - b) / dops : a / ops
      u = unit[ev]
      if (u == "msec") { pu = sprintf("%.1f ns", d * 1e6) } else { pu = sprintf("%.4g", d) }
      printf "%-28s %18s %16s  %s\n", ev, a (u != "" ? " " u : ""), pu, ""
    }
    if (val[1, "instructions"] + 0 > 0 && val[1, "cycles"] + 0 > 0)
      printf "\nIPC %.2f\n", val[1, "instructions"] / val[1, "cycles"]
    if (miss)
      printf "\n%d counter(s) not supported: this kernel/VM exposes no hardware PMU (dmesg: \"PMU not available due to virtualization\").\nFor cache behaviour use perf/scripts/cachegrind.sh (valgrind, repeatable); for time use perf-record.sh.\n", miss
  }' "$OUT/full.csv" "$OUT/base.csv"
[ -n "$KEEP" ] && echo "raw output in $KEEP"
exit 0
