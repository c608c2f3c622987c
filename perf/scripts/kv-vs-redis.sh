#!/bin/bash
# perf/scripts/kv-vs-redis.sh - redis-benchmark against axon-kv and against
# redis-server (Debian package, started here on another loopback port with
# persistence off), in the same run, alternating, and print requests/s for
# both and the ratio.  Both servers are killed on exit.
set -u
usage() {
    cat <<'USAGE'
usage: perf/scripts/kv-vs-redis.sh [--build DIR] [--runs R] [--requests N]
                                   [--clients C] [--workers W] [--keyspace K]
                                   [--spin-us S] [--no-pin] [--client-threads T]
  --build DIR     build directory holding bin/axon-kv (default: build)
  --runs R        runs per case, alternating servers; the median is printed (default 3)
  --requests N    requests per pipelined run (default 400000; pipeline-1 runs use N/8)
  --clients C     redis-benchmark -c (default 50)
  --workers W     axon-kv --workers (default: one per core, less one for the
                  client, which runs on this machine too; at least 1)
  --keyspace K    redis-benchmark -r K (random keys; default: off = one key,
                  redis-benchmark's default)
  --spin-us S     axon-kv engine-spin-us (default: axon-kv's own, which spins
                  50 us when the workers leave a CPU free; -1: never)
  --client-threads T
                  redis-benchmark --threads T: a client that can use every core,
                  sharing them with the server, so the server that needs less CPU
                  per request leaves the client more (implies --no-pin and, unless
                  --spin-us is given, axon-kv without idle spin; requests/s come
                  from wall time, as redis-benchmark's own figure moves in 0.25 s
                  steps in this mode)
  --no-pin        do not pin: by default redis-server runs on the CPUs axon-kv's
                  workers pinned themselves to and redis-benchmark on the others
                  (when there are others), so neither server competes with the
                  client for a core and both get the same CPUs
Cases: SET and GET, pipeline 16 and pipeline 1.  Output: one line per case
  CASE  axon-kv rps  redis rps  ratio(axon/redis)  server CPU ns per request (both)
The client runs on the same machine: on 2 cores, requests/s is bounded by
redis-benchmark itself and moves with any other load; the CPU per request
is the steadier figure.  axon-kv's CPU includes its idle spin, if any.
USAGE
}
BUILD=build RUNS=3 REQ=400000 CLIENTS=50 WORKERS="" KEYSPACE="" SPIN="" PIN=1 CTHREADS=""
# redis-benchmark shares the machine: leave it a core, as single-threaded
# redis-server leaves it the others.
DEFAULT_WORKERS=$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=$2; shift 2;;
        --runs) RUNS=$2; shift 2;;
        --requests) REQ=$2; shift 2;;
        --clients) CLIENTS=$2; shift 2;;
        --workers) WORKERS=$2; shift 2;;
        --keyspace) KEYSPACE=$2; shift 2;;
        --spin-us) SPIN=$2; shift 2;;
        --no-pin) PIN=0; shift;;
        --client-threads) CTHREADS=$2; shift 2;;
        -h|--help) usage; exit 0;;
        *) echo "kv-vs-redis: unknown argument '$1'" >&2; usage >&2; exit 2;;
    esac
done
KV=$BUILD/bin/axon-kv
[ -x "$KV" ] || { echo "kv-vs-redis: $KV not found: cmake --build $BUILD --target axon-kv" >&2; exit 1; }
for t in redis-server redis-benchmark redis-cli; do
    command -v $t >/dev/null || { echo "kv-vs-redis: $t not found: apt-get install redis-server redis-tools" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/kv-vs-redis.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; sleep 0.3; for p in $PIDS; do kill -9 "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

if [ -n "$CTHREADS" ]; then PIN=0; SPIN=${SPIN:--1}; fi
KVCONF=/dev/null
if [ -n "$SPIN" ]; then KVCONF=$TMP/kv.conf; echo "engine-spin-us $SPIN" >"$KVCONF"; fi
"$KV" --port 0 --workers "${WORKERS:-$DEFAULT_WORKERS}" --config "$KVCONF" >"$TMP/kv.log" 2>&1 &
KPID=$!
PIDS="$PIDS $KPID"
KPORT=""
for _ in $(seq 100); do
    KPORT=$(sed -n 's/^axon-kv: ready on [^ ]*:\([0-9]*\) .*/\1/p' "$TMP/kv.log"); [ -n "$KPORT" ] && break; sleep 0.05
done
[ -n "$KPORT" ] || { echo "kv-vs-redis: axon-kv did not start:" >&2; cat "$TMP/kv.log" >&2; exit 1; }
# CPUs: the servers get the ones axon-kv's workers pinned themselves to (the
# threads named axon-w*), the client the rest.
SRV_PIN="" CLI_PIN="" PIN_NOTE="unpinned"
if [ "$PIN" = 1 ]; then
    wcpus=$(for t in /proc/$KPID/task/*; do
                case "$(cat "$t/comm" 2>/dev/null)" in axon-w*) sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status";; esac
            done | tr '\n' ',' | sed 's/,$//')
    rest=$(python3 - "$wcpus" <<'PY'
import os, sys
def expand(s):
    out = set()
    for part in filter(None, s.split(',')):
        lo, _, hi = part.partition('-')
        out.update(range(int(lo), int(hi or lo) + 1))
    return out
w = expand(sys.argv[1])
print(','.join(str(c) for c in sorted(os.sched_getaffinity(0) - w)) if w else '')
PY
)
    if [ -n "$wcpus" ] && [ -n "$rest" ]; then
        SRV_PIN="taskset -c $wcpus" CLI_PIN="taskset -c $rest"
        PIN_NOTE="servers on CPU $wcpus, client on CPU $rest"
    else
        PIN_NOTE="unpinned (no CPU left for the client)"
    fi
fi
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$SRV_PIN redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --logfile "$TMP/redis.log" >/dev/null 2>&1 &
RPID=$!
PIDS="$PIDS $RPID"
for _ in $(seq 100); do [ "$(redis-cli -p "$RPORT" PING 2>/dev/null)" = PONG ] && break; sleep 0.05; done
[ "$(redis-cli -p "$RPORT" PING 2>/dev/null)" = PONG ] || { echo "kv-vs-redis: redis-server did not start" >&2; exit 1; }

# rps PORT PID TEST PIPELINE N -> "requests/s server-CPU-ns/request": redis-benchmark
# --csv, and the server's user+system ticks from /proc/PID/stat around the run
# (CPU per request is steadier than requests/s on a shared machine).
rps() {
    local t0 t1 r hz w0 w1
    hz=$(getconf CLK_TCK)
    t0=$(awk '{ print $14 + $15 }' "/proc/$2/stat")
    w0=$(date +%s%N)
    r=$($CLI_PIN redis-benchmark -p "$1" -c "$CLIENTS" -n "$5" -P "$4" -t "$3" ${KEYSPACE:+-r "$KEYSPACE"} \
        ${CTHREADS:+--threads "$CTHREADS"} --csv 2>/dev/null |
        awk -F'","' 'NR>1 { gsub(/"/, "", $2); print $2; exit }')
    w1=$(date +%s%N)
    t1=$(awk '{ print $14 + $15 }' "/proc/$2/stat")
    [ -n "$CTHREADS" ] && [ -n "$r" ] && r=$(awk -v n="$5" -v a="$w0" -v b="$w1" 'BEGIN { printf "%.0f", n * 1e9 / (b - a) }')
    echo "$r $(awk -v a="$t0" -v b="$t1" -v n="$5" -v hz="$hz" 'BEGIN { printf "%.0f", (b - a) * 1e9 / hz / n }')"
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) CPUs; axon-kv $(sed -n 's/.*(\([0-9]*\) workers.*/\1/p' "$TMP/kv.log") workers; redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'); -c $CLIENTS${KEYSPACE:+ -r $KEYSPACE}${CTHREADS:+ --threads $CTHREADS}; $PIN_NOTE; axon-kv spin ${SPIN:-default}; median of $RUNS"
printf '%-8s %-4s %14s %14s %8s %14s %14s\n' test P axon-kv redis ratio axon-ns/req redis-ns/req
for P in 16 1; do
    N=$REQ; [ "$P" = 1 ] && N=$((REQ / 8))
    for T in set get; do
        : >"$TMP/a"; : >"$TMP/r"
        for _ in $(seq "$RUNS"); do
            rps "$KPORT" "$KPID" "$T" "$P" "$N" >>"$TMP/a"
            rps "$RPORT" "$RPID" "$T" "$P" "$N" >>"$TMP/r"
        done
        a=$(cut -d' ' -f1 "$TMP/a" | median); r=$(cut -d' ' -f1 "$TMP/r" | median)
        ac=$(cut -d' ' -f2 "$TMP/a" | median); rc=$(cut -d' ' -f2 "$TMP/r" | median)
        ratio=$(awk -v a="$a" -v r="$r" 'BEGIN { if (r > 0) printf "%.2f", a / r; else print "n/a" }')
        printf '%-8s %-4s %14.0f %14.0f %8s %14.0f %14.0f\n' "${T^^}" "$P" "$a" "$r" "$ratio" "$ac" "$rc"
    done
done
