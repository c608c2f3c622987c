#!/usr/bin/env bash
# instr-count.sh - instructions per message on the engine's hot paths, under
# valgrind's callgrind: repeatable to the instruction on a noisy machine,
# where time is not.
#
# usage: instr-count.sh [--bin PATH] [--n N] [--only LIST] [--timeout SEC]
#                       [--out DIR] [--help]
#   --bin PATH     axon-msg-count binary (default: $AXON_MSG_COUNT or the newest
#                  build*/bin/axon-msg-count)
#   --n N          units in the larger run (default 200000; the smaller is N/10)
#   --only LIST    comma-separated workloads (default: all of local_send,
#                  remote_send,remote_full,pingpong,pingpong_hop,spawn,dispatch2,
#                  create; remote_full overflows its ring on purpose)
#   --timeout SEC  kill a valgrind run after SEC seconds (default 300)
#   --out DIR      where the callgrind outputs go (default perf/out/instr-<time>)
#
# For each workload, runs
#   valgrind --tool=callgrind axon-msg-count WORKLOAD N/10   and   ... WORKLOAD N
# and prints (Ir(N) - Ir(N/10)) / (N - N/10): instructions per message
# (per round trip for pingpong, per actor for spawn and create), with engine
# creation, start-up and exit cancelled out.  pingpong_hop counts only the
# critical path of a hop: from the start of the receiving worker's turn to
# the return of the send of its reply (the rest of the turn overlaps the
# reply's flight).  axon-msg-count (perf/msg_count.c)
# runs each worker's whole loop turn on one thread in a fixed order, so the
# count is exact and the same on every run of the same binary; only the
# workers' idle spin between turns is left out.  The engine figures are
# followed by their ratios to the bare-C limits (dispatch2 for local_send,
# create for spawn) and the top functions of the larger run.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=""
N=200000
ONLY="local_send,remote_send,remote_full,pingpong,pingpong_hop,spawn,dispatch2,create"
TIMEOUT=300
OUTDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    --n) N=${2:?--n needs a count}; shift 2 ;;
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --timeout) TIMEOUT=${2:?--timeout needs SEC}; shift 2 ;;
    --out) OUTDIR=${2:?--out needs a directory}; shift 2 ;;
    -h|--help) axon_usage "$0"; exit 0 ;;
    *) echo "instr-count.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$N" in ''|*[!0-9]*) axon_die "--n $N: expected a whole number >= 100" ;; esac
[ "$N" -ge 100 ] || axon_die "--n $N: expected a whole number >= 100"
command -v valgrind >/dev/null 2>&1 || axon_die "valgrind is not installed: apt-get install valgrind"
if [ -z "$BIN" ]; then
  if [ -n "${AXON_MSG_COUNT:-}" ]; then
    BIN=$AXON_MSG_COUNT
  else
    BIN=$(ls -t "$AXON_REPO"/build*/bin/axon-msg-count 2>/dev/null | head -1)
  fi
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || axon_die "no axon-msg-count found (build it: cmake --build build --target axon-msg-count, or pass --bin PATH)"
OUTDIR=${OUTDIR:-$AXON_REPO/perf/out/instr-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR" || axon_die "cannot create $OUTDIR"
N0=$((N / 10))

# total NAME WORKLOAD COUNT: run under callgrind, print the program's Ir total
total() {
  local name=$1 wl=$2 n=$3 rc at=yes
  [ "$wl" = pingpong_hop ] && at=no # the binary turns collection on and off
  timeout -k 5 "$TIMEOUT" valgrind --tool=callgrind --collect-atstart=$at \
    --callgrind-out-file="$OUTDIR/$name.cg" \
    "$BIN" "$wl" "$n" > "$OUTDIR/$name.txt" 2> "$OUTDIR/$name.valgrind.txt"
  rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    axon_die "valgrind $BIN $wl $n did not finish in ${TIMEOUT}s (log: $OUTDIR/$name.valgrind.txt)"
  fi
  if [ $rc -ne 0 ]; then
    cat "$OUTDIR/$name.txt" >&2; tail -20 "$OUTDIR/$name.valgrind.txt" >&2
    axon_die "$BIN $wl $n failed under valgrind (exit $rc; output above)"
  fi
  [ "$wl" = remote_full ] || grep -q "ring_full 0$" "$OUTDIR/$name.txt" ||
    axon_log "note: $wl $n overflowed a ring ($(cat "$OUTDIR/$name.txt")): the overflow path is in the count"
  sed -n 's/^summary: \([0-9]*\).*/\1/p' "$OUTDIR/$name.cg" | head -1
}

declare -A PER
echo "instructions per unit, callgrind, (Ir($N) - Ir($N0)) / $((N - N0)); binary $BIN"
IFS=, read -r -a WLS <<< "$ONLY"
for wl in "${WLS[@]}"; do
  case "$wl" in
    local_send|remote_send|remote_full|dispatch2) unit=message ;;
    pingpong) unit="round trip" ;;
    pingpong_hop) unit="hop, turn start to reply stored" ;;
    spawn|create) unit=actor ;;
    *) axon_die "--only: unknown workload $wl" ;;
  esac
  a=$(total "$wl-small" "$wl" "$N0") || exit $?
  b=$(total "$wl-large" "$wl" "$N") || exit $?
  [ -n "$a" ] && [ -n "$b" ] || axon_die "no instruction total in $OUTDIR/$wl-*.cg"
  PER[$wl]=$(awk -v a="$a" -v b="$b" -v d=$((N - N0)) 'BEGIN { printf "%.1f", (b - a) / d }')
  printf "  %-12s %8s Ir per %s\n" "$wl" "${PER[$wl]}" "$unit"
done
ratio() { # ratio ENGINE LIMIT
  if [ -n "${PER[$1]:-}" ] && [ -n "${PER[$2]:-}" ]; then
    awk -v a="${PER[$1]}" -v b="${PER[$2]}" -v x="$1" -v y="$2" \
      'BEGIN { if (b > 0) printf "  %s / %s: %.2fx the instructions\n", x, y, a / b }'
  fi
}
ratio local_send dispatch2
ratio spawn create
echo
for wl in "${WLS[@]}"; do
  case "$wl" in dispatch2|create|pingpong_hop) continue ;; esac
  echo "== $wl: top functions by instructions, self (larger run; callgrind_annotate $OUTDIR/$wl-large.cg)"
  callgrind_annotate "$OUTDIR/$wl-large.cg" 2>/dev/null |
    awk '/file:function/ { on = 1; next } on && NF { print } ' | head -8 | cut -c1-160
done
