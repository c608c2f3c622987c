#!/usr/bin/env bash
# perf-record.sh - CPU profile with call graphs of one axon-bench workload.
#
# usage: perf-record.sh [--workload NAME] [--workers N] [--param k=v]... [--bin PATH]
#                       [--call-graph dwarf|fp|lbr] [--freq HZ] [--out DIR] [--top N] [--help]
#   --workload NAME   an axon-bench workload (default counting; axon-bench --list)
#   --workers N       engine workers (default: one per core)
#   --param k=v       passed to axon-bench; repeatable
#   --bin PATH        axon-bench binary (default: $AXON_BENCH or the newest build*/bin/axon-bench)
#   --call-graph M    dwarf (default: works without frame pointers, bigger files),
#                     fp (needs -fno-omit-frame-pointer) or lbr (real Intel hosts)
#   --freq HZ         samples per second per CPU (default 2999)
#   --out DIR         where perf.data and the reports go (default perf/out/record-<time>)
#   --top N           lines of each report to print (default 25)
#
# Runs axon-bench --quick --repeat 1 --only NAME (limits off) under
# perf record -g, then prints: the flat profile by symbol (self time), the
# profile by thread (one per worker, plus the main thread), and the call graph of
# the top symbols.  The full reports stay in DIR (report-*.txt); explore
# interactively with: perf report -i DIR/perf.data
# On a VM without a PMU perf samples on cpu-clock (a timer), which is fine for
# time profiles; hardware events are not available here.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WL=counting
WORKERS=""
PARAMS=()
BIN=""
CG=dwarf
FREQ=2999
OUTDIR=""
TOP=25
while [ $# -gt 0 ]; do
  case "$1" in
    --workload) WL=${2:?--workload needs a name}; shift 2 ;;
    --workers) WORKERS=${2:?--workers needs N}; shift 2 ;;
    --param) PARAMS+=(--param "${2:?--param needs k=v}"); shift 2 ;;
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    --call-graph) CG=${2:?--call-graph needs dwarf, fp or lbr}; shift 2 ;;
    --freq) FREQ=${2:?--freq needs HZ}; shift 2 ;;
    --out) OUTDIR=${2:?--out needs a directory}; shift 2 ;;
    --top) TOP=${2:?--top needs N}; shift 2 ;;
    -h|--help) axon_usage "$0"; exit 0 ;;
    *) echo "perf-record.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$CG" in dwarf) CGARG="dwarf,16384" ;; fp|lbr) CGARG=$CG ;; *) axon_die "--call-graph $CG: expected dwarf, fp or lbr" ;; esac

axon_need_perf
[ -n "$BIN" ] || BIN=$(axon_find_bin) || exit 2
axon_check_workload "$BIN" "$WL" || exit 2
OUTDIR=${OUTDIR:-$AXON_REPO/perf/out/record-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR" || axon_die "cannot create $OUTDIR"

ARGS=(--quick --repeat 1 --only "$WL" --param bench.limits=0)
[ -n "$WORKERS" ] && ARGS+=(--workers "$WORKERS")
axon_log "perf record -F $FREQ --call-graph $CGARG -o $OUTDIR/perf.data -- $BIN ${ARGS[*]} ${PARAMS[*]:-}"
if ! perf record -F "$FREQ" --call-graph "$CGARG" -o "$OUTDIR/perf.data" -- \
    "$BIN" "${ARGS[@]}" "${PARAMS[@]}" > "$OUTDIR/axon-bench.txt" 2> "$OUTDIR/record.err"; then
  cat "$OUTDIR/axon-bench.txt" "$OUTDIR/record.err" >&2
  axon_die "perf record or axon-bench failed (output above)"
fi
grep -q "cpu-clock" "$OUTDIR/record.err" && axon_log "note: no hardware PMU here; sampled on cpu-clock (timer)"
grep -E "^$WL " "$OUTDIR/axon-bench.txt" | sed 's/^/axon-bench: /'

perf report -i "$OUTDIR/perf.data" --stdio --no-children -F overhead,sym --percent-limit 0.5 \
  -g none > "$OUTDIR/report-symbols.txt" 2>/dev/null
perf report -i "$OUTDIR/perf.data" --stdio --no-children -F overhead,pid,comm --percent-limit 0.5 \
  -g none > "$OUTDIR/report-threads.txt" 2>/dev/null
perf report -i "$OUTDIR/perf.data" --stdio --no-children --sort symbol --percent-limit 3 \
  -g caller,0.5,callee,function,percent > "$OUTDIR/report-callgraph.txt" 2>/dev/null

echo
echo "== self time by symbol (top $TOP; full: $OUTDIR/report-symbols.txt)"
grep -vE '^#|^$' "$OUTDIR/report-symbols.txt" | head -n "$TOP"
echo
echo "== samples by thread (the main thread has the lowest tid; workers follow in order; full: $OUTDIR/report-threads.txt)"
grep -vE '^#|^$' "$OUTDIR/report-threads.txt" | head -n 12
echo
echo "== call graphs of the symbols above 3% (first $((TOP * 3)) lines; full: $OUTDIR/report-callgraph.txt)"
grep -vE '^#|^$' "$OUTDIR/report-callgraph.txt" | head -n $((TOP * 3))
echo
echo "interactive: perf report -i $OUTDIR/perf.data"
