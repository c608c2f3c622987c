#!/usr/bin/env bash
# trace.sh - trace axon's USDT probes for one axon-bench workload and print
# per-worker message latency histograms (send -> dispatch begin).
#
# usage: trace.sh [--workload NAME] [--workers N] [--param k=v]... [--bin PATH]
#                 [--scale PCT] [--out DIR] [--keep] [--help]
#   --workload NAME  an axon-bench workload (default counting; axon-bench --list)
#   --workers N      engine workers (default: one per core)
#   --param k=v      passed to axon-bench; repeatable
#   --bin PATH       axon-bench binary (default: $AXON_BENCH or the newest build*/bin/axon-bench)
#   --scale PCT      bench.scale_pct for the --quick counts (default 5: every
#                    probe hit is a uprobe trap of ~1-3 us, so keep runs small)
#   --out DIR        where perf.data and the decoded events go (default perf/out/trace-<time>)
#   --keep           keep the decoded event text (events.txt) in DIR
#   --dispatch       also trace dispatch_end and print how long behaviours ran
#                    (dispatch_begin -> dispatch_end per worker)
#
# Needs root (perf probe creates uprobe events) and an axon-bench built with
# the probes (engine/trace.h; `readelf -n BIN | grep stapsdt`).  Steps:
#   perf probe -x BIN sdt_axon:{send,dispatch_begin,park,wake,ring_full}
#   perf record -e those -- BIN --quick --repeat 1 --only NAME --param bench.limits=0 ...
#   perf script | awk: match each dispatch_begin(worker, to) with the oldest
#     unmatched send(.., to) to the same actor (exact for one sender per
#     actor; with several senders to one actor, cross-sender order is by
#     send time, an approximation)
#   perf probe -d ...  (always, on exit)
# Latencies include the probes' own trap cost (~1-3 us here): read the shape
# and the comparison between workers, not the absolute floor.  bpftrace, if
# installed, can attach the same probes (usdt:BIN:axon:send); see
# docs/profiling.md.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WL=counting
WORKERS=""
PARAMS=()
BIN=""
SCALE=5
OUTDIR=""
KEEP=0
DISPATCH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --workload) WL=${2:?--workload needs a name}; shift 2 ;;
    --workers) WORKERS=${2:?--workers needs N}; shift 2 ;;
    --param) PARAMS+=(--param "${2:?--param needs k=v}"); shift 2 ;;
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    --scale) SCALE=${2:?--scale needs PCT}; shift 2 ;;
    --out) OUTDIR=${2:?--out needs a directory}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --dispatch) DISPATCH=1; shift ;;
    -h|--help) axon_usage "$0"; exit 0 ;;
    *) echo "trace.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
axon_need_perf
[ "$(id -u)" = 0 ] || axon_die "needs root: perf probe writes uprobe events (or use bpftrace with CAP_BPF)"
[ -d /sys/kernel/tracing ] || [ -d /sys/kernel/debug/tracing ] || axon_die "no tracefs: this kernel cannot create uprobe events (mount -t tracefs nodev /sys/kernel/tracing)"
[ -n "$BIN" ] || BIN=$(axon_find_bin) || exit 2
axon_check_workload "$BIN" "$WL" || exit 2
readelf -n "$BIN" 2>/dev/null | grep -q "Name: dispatch_begin" \
  || axon_die "$BIN has no axon USDT probes (built without engine/trace.h?)"
OUTDIR=${OUTDIR:-$AXON_REPO/perf/out/trace-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR" || axon_die "cannot create $OUTDIR"

trap 'axon_usdt_del "$BIN"' EXIT
PROBES="send dispatch_begin park wake ring_full"
[ "$DISPATCH" = 1 ] && PROBES="$PROBES dispatch_end"
EV=$(axon_usdt_add "$BIN" $PROBES)
case ",$EV," in
  *,sdt_axon:send,*) ;;
  *) axon_die "could not create sdt_axon:send (see the messages above)" ;;
esac
case ",$EV," in
  *,sdt_axon:dispatch_begin,*) ;;
  *) axon_die "could not create sdt_axon:dispatch_begin (see the messages above)" ;;
esac
EVARGS=()
IFS=, read -ra evs <<< "$EV"
for e in "${evs[@]}"; do EVARGS+=(-e "$e"); done

ARGS=(--quick --repeat 1 --only "$WL" --param bench.limits=0 --param "bench.scale_pct=$SCALE")
[ -n "$WORKERS" ] && ARGS+=(--workers "$WORKERS")
axon_log "perf record -m 8192 ${EVARGS[*]} -o $OUTDIR/perf.data -- $BIN ${ARGS[*]} ${PARAMS[*]:-}"
# -m: 32 MiB per CPU of ring buffer, so perf keeps up with a probe per message
if ! perf record -m 8192 "${EVARGS[@]}" -o "$OUTDIR/perf.data" -- "$BIN" "${ARGS[@]}" "${PARAMS[@]}" \
    > "$OUTDIR/axon-bench.txt" 2> "$OUTDIR/record.err"; then
  cat "$OUTDIR/axon-bench.txt" "$OUTDIR/record.err" >&2
  axon_die "perf record or axon-bench failed (output above)"
fi
grep -E "^$WL " "$OUTDIR/axon-bench.txt" | sed 's/^/axon-bench (traced, slowed by the probes): /'
LOST=$(perf report -i "$OUTDIR/perf.data" --stats 2>/dev/null | awk '
  /LOST/ { for (i = 1; i < NF; i++) if ($i == "events:") n += $(i + 1) }
  END { if (n > 0) print n " lost records" }')
if [ -n "$LOST" ]; then
  axon_log "WARNING: perf lost events ($LOST): sends and dispatches no longer pair up, the"
  axon_log "  latencies below are unreliable; lower --scale or raise perf's buffer (-m)"
fi
perf script -i "$OUTDIR/perf.data" --ns > "$OUTDIR/events.txt" 2> "$OUTDIR/script.err" \
  || axon_die "perf script failed: $(head -3 "$OUTDIR/script.err")"

# Latencies, one "receiver sender ns" line per matched message.
awk -v lat="$OUTDIR/latency.txt" -v run="$OUTDIR/run.txt" '
  {
    ev = ""
    for (i = 1; i <= NF; i++) if ($i ~ /^sdt_axon:/) { ev = $i; t = $(i - 1); break }
    if (ev == "") next
    sub(/:$/, "", ev); sub(/:$/, "", t); sub(/^sdt_axon:/, "", ev)
    a1 = a2 = ""
    for (j = i + 1; j <= NF; j++) {
      if ($j ~ /^arg1=/) { a1 = $j; sub(/^arg1=/, "", a1) }
      else if ($j ~ /^arg2=/) { a2 = $j; sub(/^arg2=/, "", a2) }
    }
    count[ev]++
    if (ev == "send") {
      k = qt[a2]++; st[a2, k] = t + 0; sw[a2, k] = a1
    } else if (ev == "dispatch_begin") {
      h = qh[a2] + 0
      began[a1] = t + 0
      if (h < qt[a2] + 0) {
        ns = (t - st[a2, h]) * 1e9
        printf "%s %s %.0f\n", a1, sw[a2, h], ns > lat
        delete st[a2, h]; delete sw[a2, h]; qh[a2] = h + 1
        matched++
      } else unmatched++
    } else if (ev == "dispatch_end") {
      if (a1 in began) { printf "%s %.0f\n", a1, (t - began[a1]) * 1e9 > run; delete began[a1] }
    } else if (ev == "park") { parks[a1]++ }
    else if (ev == "wake") { wakes[a2]++ }
    else if (ev == "ring_full") { full[a1 "->" a2]++ }
  }
  END {
    printf "events: %d send, %d dispatch_begin, %d park, %d wake, %d ring_full\n",
           count["send"], count["dispatch_begin"], count["park"], count["wake"], count["ring_full"]
    printf "matched %d dispatches to a send; %d without one (external sends: the kick, replies to the main thread)\n",
           matched, unmatched
    for (w in parks) printf "worker %s parked %d times\n", w, parks[w]
    for (w in wakes) printf "worker %s was woken %d times\n", w, wakes[w]
    for (p in full) printf "ring %s full %d times\n", p, full[p]
  }' "$OUTDIR/events.txt" | sort

[ -s "$OUTDIR/latency.txt" ] || axon_die "no send -> dispatch pairs matched (is $WL sending between actors?)"

# Per receiving worker, and per (sender -> receiver) pair: percentiles and a
# log2 histogram, bpftrace style.
hist() { # $1 title; stdin: ns values
  sort -n | awk -v title="$1" '
    { v[++n] = $1 + 0; b = ($1 < 1) ? 0 : int(log($1) / log(2)); h[b]++; if (b > maxb) maxb = b; if (minb == "" || b < minb) minb = b }
    END {
      if (!n) exit
      printf "\n%s: %d messages, p50 %s, p90 %s, p99 %s, max %s\n", title, n,
        fmt(v[int(n * 0.50) + (n * 0.50 > int(n * 0.50))]), fmt(v[int(n * 0.90) + (n * 0.90 > int(n * 0.90))]),
        fmt(v[int(n * 0.99) + (n * 0.99 > int(n * 0.99))]), fmt(v[n])
      peak = 0; for (b = minb; b <= maxb; b++) if (h[b] > peak) peak = h[b]
      for (b = minb; b <= maxb; b++) {
        bar = ""; w = int(50 * h[b] / peak + 0.5); for (k = 0; k < w; k++) bar = bar "@"
        printf "  [%7s, %7s) %9d |%-50s|\n", fmt(2 ^ b), fmt(2 ^ (b + 1)), h[b] + 0, bar
      }
    }
    function fmt(x) {
      if (x >= 1e9) return sprintf("%.3gs", x / 1e9)
      if (x >= 1e6) return sprintf("%.3gms", x / 1e6)
      if (x >= 1e3) return sprintf("%.3gus", x / 1e3)
      return sprintf("%dns", x)
    }'
}
echo
echo "== send -> dispatch_begin latency, by receiving worker"
for w in $(cut -d' ' -f1 "$OUTDIR/latency.txt" | sort -u); do
  awk -v w="$w" '$1 == w { print $3 }' "$OUTDIR/latency.txt" | hist "worker $w (receiver)"
done
echo
echo "== by sender -> receiver worker"
for p in $(awk '{ print $2 "->" $1 }' "$OUTDIR/latency.txt" | sort -u); do
  s=${p%->*}; r=${p#*->}
  awk -v s="$s" -v r="$r" '$2 == s && $1 == r { print $3 }' "$OUTDIR/latency.txt" | hist "worker $s -> worker $r"
done
if [ "$DISPATCH" = 1 ] && [ -s "$OUTDIR/run.txt" ]; then
  echo
  echo "== behaviour run time (dispatch_begin -> dispatch_end), by worker"
  for w in $(cut -d' ' -f1 "$OUTDIR/run.txt" | sort -u); do
    awk -v w="$w" '$1 == w { print $2 }' "$OUTDIR/run.txt" | hist "worker $w behaviours"
  done
fi
[ "$KEEP" = 1 ] || rm -f "$OUTDIR/events.txt"
echo
echo "raw: perf script -i $OUTDIR/perf.data; latencies (receiver sender ns): $OUTDIR/latency.txt"
