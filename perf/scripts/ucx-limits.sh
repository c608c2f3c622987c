#!/bin/bash
# perf/scripts/ucx-limits.sh - the limits axon's cluster benchmarks are held
# to: ucx_perftest (ucx-utils) server and client on this machine, UCP active
# messages over UCX shared memory and over UCX TCP, at one message size.
#
# usage: perf/scripts/ucx-limits.sh [--tls "shm tcp"] [--size BYTES] [--iters N]
#                                   [--reps R] [--cpus S,C|none] [--timeout SEC] [--quick]
#                                   [--tests "am_lat am_bw"]
#   --tls LIST     UCX_TLS values to measure, space-separated (default "shm tcp";
#                  shm = every shared-memory transport: posix, sysv, cma)
#   --size BYTES   message size (default 64)
#   --iters N      iterations per run (default 200000; TCP runs use N/10)
#   --reps R       runs per measure; each prints a line, then the median (default 3)
#   --cpus S,C     pin server to CPU S and client to CPU C (default 0,1 when the
#                  process may use two CPUs, else none)
#   --timeout SEC  a run longer than this is killed and reported as an error (default 60)
#   --quick        2000 iterations, 1 rep: seconds, for CI
#   --tests LIST   which of am_lat, am_bw to run (default both)
# Measures, per transport: ucp_am_lat (ping-pong; ucx_perftest reports half
# the round trip) and ucp_am_bw (one-way stream: message rate and bandwidth).
# Prints one line per run and one median line per measure, e.g.
#   RESULT peer=ucx_perftest tls=shm test=am_lat size=64 rep=median iters=200000 half_rtt_us=0.455 rtt_us=0.910 half_rtt_avg_us=0.61
#   RESULT peer=ucx_perftest tls=tcp test=am_bw size=64 rep=median iters=20000 msgs_per_s=1234567 MB_per_s=75.3
# Latency is the median (p50) of the run, robust to the preemption a shared
# 2-vCPU machine causes; half_rtt_avg_us is the mean for reference.
# Exit status: 0, 1 when a run failed (its output is shown), 2 on bad usage.
# Only 127.0.0.1 is used; the server and client are killed on exit.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

tls_list="shm tcp" size=64 iters=200000 reps=3 cpus=auto tmo=60 tests="am_lat am_bw"
while [ $# -gt 0 ]; do
    case $1 in
        --tls) [ $# -ge 2 ] || axon_die "--tls needs a value"; tls_list=$2; shift 2 ;;
        --size) [ $# -ge 2 ] || axon_die "--size needs a value"; size=$2; shift 2 ;;
        --iters) [ $# -ge 2 ] || axon_die "--iters needs a value"; iters=$2; shift 2 ;;
        --reps) [ $# -ge 2 ] || axon_die "--reps needs a value"; reps=$2; shift 2 ;;
        --cpus) [ $# -ge 2 ] || axon_die "--cpus needs a value"; cpus=$2; shift 2 ;;
        --timeout) [ $# -ge 2 ] || axon_die "--timeout needs a value"; tmo=$2; shift 2 ;;
        --quick) iters=2000 reps=1; shift ;;
        --tests) [ $# -ge 2 ] || axon_die "--tests needs a value"; tests=$2; shift 2 ;;
        -h|--help) axon_usage "$0"; exit 0 ;;
        *) axon_die "unknown argument '$1' (see --help)" ;;
    esac
done
for v in size iters reps tmo; do
    case ${!v} in ''|*[!0-9]*) axon_die "--$v ${!v}: expected a positive whole number" ;; esac
    [ "${!v}" -gt 0 ] || axon_die "--$v ${!v}: expected a positive whole number"
done
[ "$size" -le 67108864 ] || axon_die "--size $size: at most 64 MiB"
for t in $tests; do
    case $t in am_lat|am_bw) ;; *) axon_die "--tests: unknown test '$t' (am_lat, am_bw)" ;; esac
done
[ -n "$tests" ] || axon_die "--tests: empty (am_lat, am_bw)"
command -v ucx_perftest >/dev/null || axon_die "ucx_perftest not found: apt-get install ucx-utils"
for t in $tls_list; do
    case $t in *[!a-z0-9_,]*) axon_die "--tls '$t': expected UCX_TLS names such as shm, sm, posix, tcp" ;; esac
done
if [ "$cpus" = auto ]; then
    # the first two CPUs this process may use (nproc counts only those)
    cpus=none
    if [ "$(nproc)" -ge 2 ]; then
        cpus=$(python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(f"{c[0]},{c[1]}")' \
               2>/dev/null || echo none)
    fi
fi
srv_pin=() cli_pin=()
if [ "$cpus" != none ]; then
    case $cpus in [0-9]*,[0-9]*) ;; *) axon_die "--cpus $cpus: expected S,C (two CPU numbers) or none" ;; esac
    srv_pin=(-c "${cpus%,*}") cli_pin=(-c "${cpus#*,}")
fi

tmp=$(mktemp -d /tmp/axon-ucx-limits.XXXXXX)
srv_pid=
cleanup() {
    if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait (<= 5 s) until the server listens on port $1.
wait_listen() {
    local i
    for i in $(seq 1 50); do
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
        kill -0 "$srv_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# run_one TLS TEST ITERS -> sets CSV (the final numbers line) or returns 1
run_one() {
    local tls=$1 test=$2 n=$3 port try out
    for try in 1 2 3; do
        port=$((20000 + RANDOM % 40000))
        # taken already: the client must not meet someone else's server
        ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && continue
        UCX_TLS=$tls timeout -k 2 "$tmo" ucx_perftest -p "$port" -t "$test" -s "$size" -n "$n" \
            -w $((n / 10 + 1)) -f -v "${srv_pin[@]}" >"$tmp/srv" 2>&1 &
        srv_pid=$!
        if ! wait_listen "$port"; then
            kill "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; srv_pid=
            continue # port taken or server died: another port
        fi
        out=$(UCX_TLS=$tls timeout -k 2 "$tmo" ucx_perftest 127.0.0.1 -p "$port" -t "$test" \
              -s "$size" -n "$n" -w $((n / 10 + 1)) -f -v "${cli_pin[@]}" 2>&1)
        local rc=$?
        wait "$srv_pid" 2>/dev/null; srv_pid=
        CSV=$(printf '%s\n' "$out" | grep -E '^[0-9]+,[0-9.]+,' | tail -1)
        if [ $rc -eq 0 ] && [ -n "$CSV" ]; then return 0; fi
        axon_log "ucx_perftest $test over UCX_TLS=$tls failed (rc $rc):"
        printf '%s\n' "$out" | tail -8 | sed 's/^/    /' >&2
        tail -4 "$tmp/srv" | sed 's/^/    server: /' >&2
        return 1
    done
    axon_log "ucx_perftest server did not listen (3 ports tried)"
    tail -4 "$tmp/srv" | sed 's/^/    server: /' >&2
    return 1
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

status=0
for tls in $tls_list; do
    n=$iters
    case $tls in *tcp*) n=$((iters / 10 > 1000 ? iters / 10 : (iters < 1000 ? iters : 1000))) ;; esac
    for short in $tests; do
        test=ucp_$short
        vals=()
        for rep in $(seq 1 "$reps"); do
            if ! run_one "$tls" "$test" "$n"; then status=1; continue; fi
            # iterations,p50_lat,avg_lat,overall_lat,avg_bw(MB/s),overall_bw,avg_mr,overall_mr
            IFS=, read -r _ p50 avg _ _ obw _ omr <<<"$CSV"
            if [ "$test" = ucp_am_lat ]; then
                line=$(awk -v p="$p50" -v a="$avg" 'BEGIN { printf "half_rtt_us=%.3f rtt_us=%.3f half_rtt_avg_us=%.3f", p, 2 * p, a }')
                vals+=("$p50 $avg")
            else
                line=$(awk -v m="$omr" -v b="$obw" 'BEGIN { printf "msgs_per_s=%.0f MB_per_s=%.2f", m, b }')
                vals+=("$omr $obw")
            fi
            echo "RESULT peer=ucx_perftest tls=$tls test=$short size=$size rep=$rep iters=$n $line"
        done
        [ ${#vals[@]} -gt 0 ] || continue
        a=$(printf '%s\n' "${vals[@]}" | awk '{ print $1 }' | median)
        b=$(printf '%s\n' "${vals[@]}" | awk '{ print $2 }' | median)
        if [ "$test" = ucp_am_lat ]; then
            line=$(awk -v p="$a" -v v="$b" 'BEGIN { printf "half_rtt_us=%.3f rtt_us=%.3f half_rtt_avg_us=%.3f", p, 2 * p, v }')
        else
            line=$(awk -v m="$a" -v v="$b" 'BEGIN { printf "msgs_per_s=%.0f MB_per_s=%.2f", m, v }')
        fi
        echo "RESULT peer=ucx_perftest tls=$tls test=$short size=$size rep=median iters=$n $line"
    done
done
exit $status
