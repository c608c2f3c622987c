#!/bin/bash
# perf/scripts/erlang-dist.sh - the Erlang peer of axon's cluster benchmarks:
# two Erlang nodes on this machine talking over Erlang distribution (TCP on
# 127.0.0.1), the way ../shared/peers measures Erlang on one node.
#
# usage: perf/scripts/erlang-dist.sh [--workloads "pingpong oneway big mesh"] [--n N]
#                                    [--size BYTES] [--actors A] [--reps R]
#                                    [--nodes K] [--schedulers S] [--timeout SEC] [--quick]
#                                    [--drop I]
#   --workloads W  any of pingpong, oneway, big, mesh (default all four)
#   --n N          round trips (pingpong), messages (oneway), pings per actor
#                  (big: N/100) or messages per actor (mesh: N/100) (default 200000)
#   --size BYTES   payload binary in every message (default 64)
#   --actors A     big and mesh: actors over all nodes, spread evenly (mesh:
#                  a multiple of the node count) (default 64)
#   --nodes K      nodes for big and mesh, 2 to 8 (default 2); pingpong and
#                  oneway always use two
#   --drop I       a test of mesh's count check: actor 0 does not send its
#                  message number I (0-based); the run must fail (default:
#                  $AXON_ERL_MESH_DROP, so a test can reach it through axon-bench)
#   --reps R       runs per workload; each prints a line, then the median (default 3)
#   --schedulers S schedulers per node, erl +S S:S (default 1: one core each
#                  on a 2-vCPU machine)
#   --timeout SEC  a run longer than this is killed and reported (default 120)
#   --quick        N = 2000, 1 rep: seconds, for CI
# Each run starts its own epmd on a free port bound to 127.0.0.1, two nodes
# (-sname on localhost, distribution on 127.0.0.1 only) sharing a private,
# random cookie in a private HOME, runs perf/erlang/dist_bench.erl, then
# stops both nodes and that epmd: nothing is left running.  Prints e.g.
#   RESULT peer=erlang_dist wl=pingpong size=64 rep=median n=200000 nodes=2 rtt_us=21.4 msgs_per_s=93458
#   RESULT peer=erlang_dist wl=oneway size=64 rep=median n=200000 nodes=2 msgs_per_s=812345 ns_per_msg=1231.0
#   RESULT peer=erlang_dist wl=big size=64 rep=median n=2000 nodes=2 actors=64 msgs_per_s=345678
#   RESULT peer=erlang_dist wl=mesh size=64 rep=median n=2000 nodes=2 actors=64 msgs_per_s=456789
# mesh is axon-bench's cluster mesh (tools/bench/cluster.c): every actor
# sends n messages to uniformly random actors of all nodes, 64 per turn;
# per-pair order and the count per source are checked, and a run that loses
# a message fails (exit 1, no RESULT line) after half of --timeout at most.
# Exit status: 0, 1 when a run failed (its output is shown), 2 on bad usage.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

wls="pingpong oneway big mesh" n=200000 size=64 actors=64 reps=3 sched=1 tmo=120 nodes=2 drop=${AXON_ERL_MESH_DROP:--1}
while [ $# -gt 0 ]; do
    case $1 in
        --workloads) [ $# -ge 2 ] || axon_die "--workloads needs a value"; wls=$2; shift 2 ;;
        --n) [ $# -ge 2 ] || axon_die "--n needs a value"; n=$2; shift 2 ;;
        --size) [ $# -ge 2 ] || axon_die "--size needs a value"; size=$2; shift 2 ;;
        --actors) [ $# -ge 2 ] || axon_die "--actors needs a value"; actors=$2; shift 2 ;;
        --reps) [ $# -ge 2 ] || axon_die "--reps needs a value"; reps=$2; shift 2 ;;
        --schedulers) [ $# -ge 2 ] || axon_die "--schedulers needs a value"; sched=$2; shift 2 ;;
        --nodes) [ $# -ge 2 ] || axon_die "--nodes needs a value"; nodes=$2; shift 2 ;;
        --timeout) [ $# -ge 2 ] || axon_die "--timeout needs a value"; tmo=$2; shift 2 ;;
        --drop) [ $# -ge 2 ] || axon_die "--drop needs a value"; drop=$2; shift 2 ;;
        --quick) n=2000 reps=1; shift ;;
        -h|--help) axon_usage "$0"; exit 0 ;;
        *) axon_die "unknown argument '$1' (see --help)" ;;
    esac
done
for v in n size actors reps sched tmo nodes; do
    case ${!v} in ''|*[!0-9]*) axon_die "--$v ${!v}: expected a positive whole number" ;; esac
    [ "${!v}" -gt 0 ] || axon_die "--$v ${!v}: expected a positive whole number"
done
[ "$nodes" -ge 2 ] && [ "$nodes" -le 8 ] || axon_die "--nodes $nodes: expected 2 to 8"
[ "$actors" -ge "$nodes" ] || axon_die "--actors $actors: at least one per node ($nodes)"
[ "$size" -le 16777216 ] || axon_die "--size $size: at most 16 MiB"
case $drop in -1) ;; ''|*[!0-9]*) axon_die "--drop $drop: expected a message number (0 or more)" ;; esac
for w in $wls; do
    case $w in pingpong|oneway|big|mesh) ;; *) axon_die "--workloads: unknown workload '$w' (pingpong, oneway, big, mesh)" ;; esac
    [ "$w" = mesh ] && [ $((actors % nodes)) -ne 0 ] &&
        axon_die "--actors $actors: mesh needs the same number on each of the $nodes nodes (a multiple of $nodes)"
done
for c in erl erlc epmd; do
    command -v $c >/dev/null || axon_die "$c not found: apt-get install erlang-base"
done

tmp=$(mktemp -d /tmp/axon-erlang-dist.XXXXXX)
epmd_port= epmd_pid=
peer_pids=()
stop_peers() {
    local p
    for p in "${peer_pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in "${peer_pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    peer_pids=()
}
cleanup() {
    stop_peers
    if [ -n "$epmd_pid" ]; then
        epmd -port "$epmd_port" -kill >/dev/null 2>&1
        kill "$epmd_pid" 2>/dev/null
        wait "$epmd_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

erlc -o "$tmp" "$AXON_REPO/perf/erlang/dist_bench.erl" || { axon_log "erlc failed"; exit 1; }

# A private cookie in a private HOME: not on any command line.
mkdir -p "$tmp/home"
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$tmp/home/.erlang.cookie"
chmod 400 "$tmp/home/.erlang.cookie"
export HOME=$tmp/home

# Our own epmd (a child of this script, not -daemon, so it is stopped by its
# pid) on a free port of 127.0.0.1.
for try in 1 2 3 4 5; do
    epmd_port=$((20000 + RANDOM % 40000))
    ss -Hltn "sport = :$epmd_port" 2>/dev/null | grep -q . && continue
    epmd -port "$epmd_port" -address 127.0.0.1 >"$tmp/epmd.err" 2>&1 &
    epmd_pid=$!
    for i in $(seq 1 50); do
        ss -Hltn "sport = :$epmd_port" 2>/dev/null | grep -q . && break 2
        kill -0 "$epmd_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$epmd_pid" 2>/dev/null; wait "$epmd_pid" 2>/dev/null; epmd_pid=
done
[ -n "$epmd_pid" ] || { axon_log "could not start epmd: $(cat "$tmp/epmd.err")"; exit 1; }
export ERL_EPMD_PORT=$epmd_port
export ERL_CRASH_DUMP=$tmp/erl_crash.dump # never in the caller's directory
cd "$tmp" || exit 1
ERL_ARGS=(-noshell +S "$sched:$sched" +P 2000000 -pa "$tmp"
          -kernel inet_dist_use_interface '{127,0,0,1}')
tag=$$

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

# run_one WL N K -> LINE: the RESULT line of one run on K nodes, or returns 1
letters=(- a b c d e f g h)
run_one() {
    local wl=$1 cnt=$2 k=$3 a=axa$tag out rc i peers="" name
    for i in $(seq 2 "$k"); do
        name=ax${letters[i]}$tag # axb<pid>, axc<pid>, ...
        erl "${ERL_ARGS[@]}" -sname "$name@localhost" >"$tmp/$name.out" 2>&1 &
        peer_pids+=($!)
        peers="${peers:+$peers,}$name@localhost"
    done
    out=$(timeout -k 5 "$tmo" erl "${ERL_ARGS[@]}" -sname "$a@localhost" \
          -run dist_bench main "$peers" "$wl" "$cnt" "$size" "$actors" \
          $((tmo / 2 > 0 ? tmo / 2 : 1)) "$drop" 2>&1)
    rc=$?
    # dist_bench halts the peers; give them a moment, then make sure.
    local p alive
    for i in $(seq 1 30); do
        alive=0
        for p in "${peer_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    stop_peers
    LINE=$(printf '%s\n' "$out" | grep '^RESULT' | tail -1)
    if [ $rc -ne 0 ] || [ -z "$LINE" ]; then
        axon_log "erlang $wl failed (rc $rc):"
        printf '%s\n' "$out" | tail -8 | sed 's/^/    /' >&2
        tail -4 "$tmp"/axb*.out | sed 's/^/    peer: /' >&2
        return 1
    fi
}

status=0
for wl in $wls; do
    cnt=$n k=2
    [ "$wl" = big ] && cnt=$((n / 100 > 10 ? n / 100 : 10)) k=$nodes
    [ "$wl" = mesh ] && cnt=$((n / 100 > 0 ? n / 100 : 1)) k=$nodes
    lines=()
    for rep in $(seq 1 "$reps"); do
        if ! run_one "$wl" "$cnt" "$k"; then status=1; continue; fi
        LINE=${LINE/ size=$size / size=$size rep=$rep }
        echo "$LINE"
        lines+=("$LINE")
    done
    [ ${#lines[@]} -gt 0 ] || continue
    # median of every numeric key=value after n=
    keys=$(printf '%s\n' "${lines[0]}" | tr ' ' '\n' | sed -n 's/^\([a-z_]*\)=[0-9.]*$/\1/p' |
           grep -vx 'size\|n\|nodes\|actors\|rep')
    med="RESULT peer=erlang_dist wl=$wl size=$size rep=median n=$cnt nodes=$k"
    case $wl in big|mesh) med="$med actors=$actors" ;; esac
    for k in $keys; do
        v=$(printf '%s\n' "${lines[@]}" | tr ' ' '\n' | sed -n "s/^$k=//p" | median)
        med="$med $k=$v"
    done
    echo "$med"
done
exit $status
