#!/bin/bash
# perf/scripts/restart-vs-erlang.sh - fault/restart (axon-microbench) and the
# same loop in Erlang/OTP (perf/erlang/restart_bench.escript: a one_for_one
# supervisor restarting a gen_server), back to back and alternating, then the
# ratio of the medians.  One restart on both sides = crash + restart + the
# first request the new incarnation answers.
#
# usage: perf/scripts/restart-vs-erlang.sh [--build DIR] [--rounds R] [--restarts N]
#   --build DIR    build directory with bin/axon-microbench (default: build)
#   --rounds R     alternations (default 3); each axon round is 5 repetitions
#                  of fault/restart, each Erlang round 5 runs of N restarts
#   --restarts N   restarts per Erlang run (default 20000)
# Needs erlang-base (escript).  Prints one line per round and
#   fault/restart: axon <ns> ns, erlang <ns> ns per restart: axon is <x>x faster
set -eu
cd "$(dirname "$0")/../.."
build=build rounds=3 restarts=20000
while [ $# -gt 0 ]; do
    case $1 in
        --build) build=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --restarts) restarts=$2; shift 2 ;;
        -h|--help) sed -n 2,16p "$0"; exit 0 ;;
        *) echo "restart-vs-erlang.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
bin=$build/bin/axon-microbench
[ -x "$bin" ] || { echo "restart-vs-erlang.sh: no $bin: build it (cmake --build $build --target axon-microbench)" >&2; exit 2; }
command -v escript >/dev/null || { echo "restart-vs-erlang.sh: escript not found: apt-get install erlang-base" >&2; exit 2; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) exit 1; print a[int((NR + 1) / 2)]}'; }

ax=() er=()
for r in $(seq "$rounds"); do
    a=$("$bin" --benchmark_filter='^fault/restart' --benchmark_repetitions=5 \
            --benchmark_report_aggregates_only=true 2>/dev/null |
        awk '/fault\/restart.*_median/ {print $2; exit}')
    [ -n "$a" ] || { echo "restart-vs-erlang.sh: fault/restart gave no median (see $bin --benchmark_filter=fault/restart)" >&2; exit 1; }
    e=$(escript perf/erlang/restart_bench.escript "$restarts" 5 |
        awk '/median_ns_per_restart/ {print $NF}')
    [ -n "$e" ] || { echo "restart-vs-erlang.sh: the Erlang run printed no median" >&2; exit 1; }
    echo "round $r: axon $a ns, erlang $e ns per restart"
    ax+=("$a") er+=("$e")
done
am=$(printf '%s\n' "${ax[@]}" | median)
em=$(printf '%s\n' "${er[@]}" | median)
awk -v a="$am" -v e="$em" -v n="$rounds" 'BEGIN {printf "fault/restart: axon %.1f ns, erlang %.1f ns per restart (medians of %d rounds): axon is %.1fx faster\n", a, e, n, e / a}'
