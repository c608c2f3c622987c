#!/usr/bin/env bash
# cachegrind.sh - cache behaviour of a small single-worker axon-bench workload
# under valgrind's cachegrind: repeatable instruction and cache-miss counts
# (unlike hardware counters, which this VM does not have, and which vary).
#
# usage: cachegrind.sh [--workload NAME] [--param k=v]... [--bin PATH] [--timeout SEC]
#                      [--cache host|fixed] [--out DIR] [--help]
#   --workload NAME  an axon-bench workload (default pingpong_local)
#   --param k=v      passed to axon-bench; the default counts are small (see below)
#   --bin PATH       axon-bench binary (default: $AXON_BENCH or the newest build*/bin/axon-bench)
#   --timeout SEC    kill valgrind after SEC seconds (default 300) and say it hung
#   --cache MODE     fixed (default): --I1=32768,8,64 --D1=49152,12,64 --LL=33554432,16,64
#                    so results compare across machines; host: valgrind reads CPUID
#   --out DIR        where cachegrind.out and the annotation go (default perf/out/cachegrind-<time>)
#
# Runs: valgrind --tool=cachegrind --cache-sim=yes axon-bench --workers 1
#   --quick --repeat 1 --only NAME --param bench.limits=0 --param bench.prefault=0
#   --param bench.scale_pct=2, then =20   (valgrind runs ~50x slower)
# and prints per-message figures (Ir, D1 and LL misses) and the top functions
# of the DIFFERENCE of the two runs (cg_diff), so start-up, dynamic linking and
# exit cancel out.  One worker only, spinning up to 1 s before it parks
# (AXON_SCHEDULER_SPIN_US=1000000): valgrind serialises threads, and 3.19
# hangs when a thread blocks in io_uring_enter, where an idle worker parks
# (see docs/profiling.md).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WL=pingpong_local
PARAMS=()
BIN=""
TIMEOUT=300
CACHE=fixed
OUTDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --workload) WL=${2:?--workload needs a name}; shift 2 ;;
    --param) PARAMS+=(--param "${2:?--param needs k=v}"); shift 2 ;;
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    --timeout) TIMEOUT=${2:?--timeout needs SEC}; shift 2 ;;
    --cache) CACHE=${2:?--cache needs host or fixed}; shift 2 ;;
    --out) OUTDIR=${2:?--out needs a directory}; shift 2 ;;
    -h|--help) axon_usage "$0"; exit 0 ;;
    *) echo "cachegrind.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null 2>&1 || axon_die "valgrind is not installed: apt-get install valgrind"
[ -n "$BIN" ] || BIN=$(axon_find_bin) || exit 2
axon_check_workload "$BIN" "$WL" || exit 2
OUTDIR=${OUTDIR:-$AXON_REPO/perf/out/cachegrind-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR" || axon_die "cannot create $OUTDIR"
case "$CACHE" in
  fixed) CACHEARGS=(--I1=32768,8,64 --D1=49152,12,64 --LL=33554432,16,64) ;;
  host) CACHEARGS=() ;;
  *) axon_die "--cache $CACHE: expected host or fixed" ;;
esac

# Workers spin for up to 1 s instead of parking at once: a worker parks in
# io_uring_enter, and valgrind 3.19 hangs while one thread blocks there.
export AXON_SCHEDULER_SPIN_US=${AXON_SCHEDULER_SPIN_US:-1000000}
ARGS=(--workers 1 --quick --repeat 1 --only "$WL" --param bench.limits=0
      --param bench.prefault=0 --param bench.timeout_s=600)

# run NAME SCALE_PCT: one axon-bench run under cachegrind
run() {
  local name=$1 scale=$2 rc
  axon_log "AXON_SCHEDULER_SPIN_US=$AXON_SCHEDULER_SPIN_US valgrind --tool=cachegrind --cache-sim=yes ${CACHEARGS[*]} $BIN ${ARGS[*]} --param bench.scale_pct=$scale ${PARAMS[*]:-}"
  timeout -k 5 "$TIMEOUT" valgrind --tool=cachegrind --cache-sim=yes "${CACHEARGS[@]}" \
    --cachegrind-out-file="$OUTDIR/$name.cg" \
    "$BIN" "${ARGS[@]}" --param "bench.scale_pct=$scale" "${PARAMS[@]}" \
    --json "$OUTDIR/$name.json" > "$OUTDIR/$name.txt" 2> "$OUTDIR/$name.valgrind.txt"
  rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "cachegrind.sh: valgrind did not finish in ${TIMEOUT}s: it HUNG (or is very slow)." >&2
    echo "  valgrind 3.19 hangs when a thread blocks in io_uring_enter while another runs;" >&2
    echo "  the last lines of its log ($OUTDIR/$name.valgrind.txt):" >&2
    tail -5 "$OUTDIR/$name.valgrind.txt" >&2
    exit 1
  fi
  if [ $rc -ne 0 ]; then
    cat "$OUTDIR/$name.txt" >&2; tail -20 "$OUTDIR/$name.valgrind.txt" >&2
    axon_die "valgrind or axon-bench failed (exit $rc; output above)"
  fi
}
run base 2
run full 20

ops() { sed -n 's/.*"ops_per_run": \([0-9]*\).*/\1/p' "$1" | head -1; }
OPS_FULL=$(ops "$OUTDIR/full.json")
OPS_BASE=$(ops "$OUTDIR/base.json")
UNIT=$(sed -n 's/.*"unit": "\([^"]*\)".*/\1/p' "$OUTDIR/full.json" | head -1)
PER=message; [ "$UNIT" = "actors/s" ] && PER=actor
[ -n "$OPS_FULL" ] && [ -n "$OPS_BASE" ] || axon_die "no message counts in $OUTDIR/*.json"
DOPS=$((OPS_FULL - OPS_BASE))
[ "$DOPS" -gt 0 ] || axon_die "both runs timed $OPS_FULL ${PER}s: a --param fixed the counts; drop it (the script scales them with bench.scale_pct)"
grep -E "^$WL " "$OUTDIR/full.txt" | sed 's/^/axon-bench (under valgrind, slow): /'

# The difference of the two runs is the cost of DOPS more messages: start-up,
# dynamic linking (hwloc plugins) and exit cancel out.
cg_diff "$OUTDIR/base.cg" "$OUTDIR/full.cg" > "$OUTDIR/diff.cg" 2>/dev/null \
  || axon_die "cg_diff failed"
cg_annotate "$OUTDIR/diff.cg" > "$OUTDIR/annotate-diff.txt" 2>/dev/null
cg_annotate --sort=D1mr,DLmr,Ir "$OUTDIR/diff.cg" > "$OUTDIR/annotate-diff-d1.txt" 2>/dev/null
cg_annotate "$OUTDIR/full.cg" > "$OUTDIR/annotate-full.txt" 2>/dev/null

echo
echo "cache model: $( [ "$CACHE" = fixed ] && echo "I1 32K 8-way, D1 48K 12-way, LL 32M 16-way, 64 B lines (fixed)" || echo "host CPUID geometry")"
echo "runs: $OPS_BASE and $OPS_FULL ${PER}s (bench.scale_pct=2 and 20); per-$PER figures are (full - base) / $DOPS"
echo
awk -v ops="$DOPS" -v per="$PER" '
  /PROGRAM TOTALS/ && !done {
    for (i = 1; i <= NF; i++) { gsub(",", "", $i) }
    # columns: Ir (pct) I1mr (pct) ILmr (pct) Dr (pct) D1mr (pct) DLmr (pct) Dw (pct) D1mw (pct) DLmw (pct)
    n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^-?[0-9]+$/) v[++n] = $i
    printf "per %s:  Ir %.1f   Dr %.1f   Dw %.1f\n", per, v[1] / ops, v[4] / ops, v[7] / ops
    printf "          I1 misses %.3f   D1 read misses %.3f   D1 write misses %.3f   LL misses %.3f\n",
           v[2] / ops, v[5] / ops, v[8] / ops, (v[3] + v[6] + v[9]) / ops
    done = 1
  }' "$OUTDIR/annotate-diff.txt"
echo
echo "== functions by D1 read misses in the difference (top 15; full: $OUTDIR/annotate-diff-d1.txt)"
awk '/file:function/ { on = 1; getline; next } on && /^-+$/ { exit } on && NF { print }' \
  "$OUTDIR/annotate-diff-d1.txt" | head -15 | cut -c1-220
echo
echo "== functions by instructions in the difference (top 10)"
awk '/file:function/ { on = 1; getline; next } on && /^-+$/ { exit } on && NF { print }' \
  "$OUTDIR/annotate-diff.txt" | head -10 | cut -c1-220
echo
echo "annotated source: cg_annotate $OUTDIR/diff.cg --auto=yes"
