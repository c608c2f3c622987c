#!/usr/bin/env bash
# coherence.sh - cache lines moved per remote message, per turn and per park
# at many workers, from a memory trace (valgrind lackey) of axon-mesh-sim
# replayed through a line-ownership model (perf/scripts/coherence.py).
# Simulated: one thread plays every worker in turn; see perf/mesh_sim.c.
#
# usage: coherence.sh [--bin PATH] [--out DIR] [mesh_sim options...]
#   --bin PATH   axon-mesh-sim (default: build/bin/axon-mesh-sim; not a sanitizer build)
#   --keep DIR   also keep the raw trace (hundreds of MB) in DIR; by default
#                it is piped straight into the replay
#   mesh_sim options: --workers N (64) --peers K (N-1) --rounds R (8)
#                --warmup R (3) --doorbell auto|on|off --synthetic 'desc'
#
# Example (the issue-14 figure: 64 workers, all-to-all):
#   perf/scripts/coherence.sh --workers 64 --rounds 4
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=""
KEEP=""
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    --keep) KEEP=${2:?--keep needs a directory}; shift 2 ;;
    --help|-h) sed -n "2,17p" "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ -z "$BIN" ]; then
  # The plain build: a sanitizer build's runtime does not run under valgrind.
  BIN=$ROOT/build/bin/axon-mesh-sim
fi
[ -x "$BIN" ] || { echo "coherence.sh: no axon-mesh-sim binary: build it (cmake --build build --target axon-mesh-sim) or pass --bin" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "coherence.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
echo "coherence.sh: $BIN ${ARGS[*]}" >&2
# valgrind's log (the trace and the simulator's markers) goes to fd 3, which
# is the pipe; the program's own output goes to stderr.
if [ -n "$KEEP" ]; then
  mkdir -p "$KEEP"
  valgrind --tool=lackey --trace-mem=yes --log-fd=3 "$BIN" "${ARGS[@]}" 3>&1 1>&2 |
    tee "$KEEP/lackey.trace" | python3 "$HERE/coherence.py" -
else
  valgrind --tool=lackey --trace-mem=yes --log-fd=3 "$BIN" "${ARGS[@]}" 3>&1 1>&2 |
    python3 "$HERE/coherence.py" -
fi
rc=("${PIPESTATUS[@]}")
for r in "${rc[@]}"; do
  [ "$r" = 0 ] || { echo "coherence.sh: a stage failed (exit statuses ${rc[*]})" >&2; exit 1; }
done
