# perf/scripts/lib.sh - shared helpers for the axon profiling scripts (sourced).
#
# axon_find_bin: the axon-bench binary: $AXON_BENCH, else the newest of
#   <repo>/build*/bin/axon-bench.  axon_usdt_add/axon_usdt_del: register and
#   remove the sdt_axon:* uprobe events for one binary (perf probe -x), so
#   perf can count or record them; see docs/profiling.md.

AXON_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AXON_REPO=$(cd "$AXON_SCRIPTS/../.." && pwd)

axon_die() { echo "$(basename "$0"): $*" >&2; exit 2; }
axon_log() { echo "$(basename "$0"): $*" >&2; }

axon_find_bin() {
  if [ -n "${AXON_BENCH:-}" ]; then
    [ -x "$AXON_BENCH" ] || axon_die "AXON_BENCH=$AXON_BENCH is not an executable"
    echo "$AXON_BENCH"; return
  fi
  local b
  b=$(ls -t "$AXON_REPO"/build*/bin/axon-bench 2>/dev/null | head -1)
  [ -n "$b" ] || axon_die "no axon-bench found under $AXON_REPO/build*/bin: build it (cmake --build build --target axon-bench) or pass --bin PATH"
  echo "$b"
}

axon_need_perf() {
  command -v perf >/dev/null 2>&1 || axon_die "perf is not installed: apt-get install linux-perf"
  local p
  p=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)
  if [ "$(id -u)" != 0 ] && [ "$p" -gt 1 ]; then
    axon_log "note: kernel.perf_event_paranoid=$p limits an unprivileged perf to your own user-space; run as root or: sysctl kernel.perf_event_paranoid=1"
  fi
}

# The probes engine/trace.h defines.
AXON_PROBES="send dispatch_begin dispatch_end ring_full park wake spawn stop watchdog"

# axon_usdt_add BIN PROBE... : make sdt_axon:PROBE events for BIN.  Prints the
# events that worked, comma-separated; says which did not.
axon_usdt_add() {
  local bin=$1; shift
  local ok="" p
  perf buildid-cache --add "$bin" >/dev/null 2>&1 || axon_log "perf buildid-cache --add $bin failed"
  for p in "$@"; do
    perf probe -d "sdt_axon:$p" >/dev/null 2>&1
    if perf probe -x "$bin" "sdt_axon:$p" >/dev/null 2>&1; then
      ok="${ok:+$ok,}sdt_axon:$p"
    else
      axon_log "no probe sdt_axon:$p in $bin (readelf -n $bin | grep -A2 stapsdt lists them)"
    fi
  done
  echo "$ok"
}

axon_usdt_del() {
  local bin=$1 p
  for p in $AXON_PROBES; do perf probe -d "sdt_axon:$p" >/dev/null 2>&1; done
  perf buildid-cache --remove "$bin" >/dev/null 2>&1 || true
}

# axon_check_workload BIN NAME: is NAME a workload of BIN?  (--list is read
# whole: grep -q on a pipe would SIGPIPE axon-bench and fail under pipefail)
axon_check_workload() {
  local list
  list=$("$1" --list 2>/dev/null) || { axon_log "$1 --list failed"; return 1; }
  if ! printf '%s\n' "$list" | grep -qE "^  $2 "; then
    axon_log "no workload '$2' in $1 (see $1 --list)"
    return 1
  fi
}

# axon_usage SCRIPT: print the script's leading comment block (its --help).
axon_usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}
