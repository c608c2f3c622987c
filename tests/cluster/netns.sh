#!/bin/bash
# tests/cluster/netns.sh - two network namespaces joined by a veth pair, so
# two axon nodes on this machine talk over TCP as two hosts would.
#
#   A: namespace axon-<pid>-a, interface axa0, address 10.231.0.1/24, lo up
#   B: namespace axon-<pid>-b, interface axb0, address 10.231.0.2/24, lo up
# Only these private addresses exist in the namespaces (no route out), and
# the names carry this process's pid, so parallel runs do not collide.
#
# usage: tests/cluster/netns.sh run [--timeout SEC] --a 'CMD' --b 'CMD'
#            set up, start B's command in the background (the server), run
#            A's command (the client), wait for both, tear down; exit 0 when
#            both exit 0, else the first failure's status
#        tests/cluster/netns.sh exec A|B -- CMD [ARG...]
#            set up, run one command in namespace A or B, tear down
#        tests/cluster/netns.sh selftest
#            a TCP echo (python3) across the veth both ways, isolation from
#            the host's network, and ucx_perftest over UCX_TLS=tcp across it
#        tests/cluster/netns.sh check
#            exit 0 when namespaces can be made here, 77 with the reason if not
#        tests/cluster/netns.sh --help
# Commands run with bash -c and see AXON_NETNS_A / AXON_NETNS_B (addresses),
# AXON_NETNS_IF (their own interface) and AXON_NETNS_SELF (A or B).
#
# As a library (source it from a bash test):
#   . tests/cluster/netns.sh
#   axon_netns_setup || exit $?     # 77 = skip; installs an EXIT trap
#   axon_netns_bg B ./server ...    # sets AXON_NETNS_BG_PID
#   axon_netns_run A ./client "$AXON_NETNS_B" ...
#   axon_netns_teardown             # also done by the trap, even on failure
#
# Skips (exit 77, ctest SKIP_RETURN_CODE) only when not root, when `ip` or
# `ip netns` is missing, or when the kernel refuses to make a namespace
# (no CAP_SYS_ADMIN in a container); any other failure is an error.
# Teardown kills what runs inside the two namespaces (only this script's
# processes can be there) and deletes them; the veth pair goes with them.

AXON_NETNS_A=10.231.0.1
AXON_NETNS_B=10.231.0.2
AXON_NETNS_NAME_A=axon-$$-a
AXON_NETNS_NAME_B=axon-$$-b
AXON_NETNS_UP=0
AXON_NETNS_BG_PID=

axon_netns_log() { echo "netns.sh: $*" >&2; }

# 0 when namespaces can be made here, else 77 with the reason on stderr.
axon_netns_check() {
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP: network namespaces need root (running as uid $(id -u))" >&2
        return 77
    fi
    if ! command -v ip >/dev/null 2>&1; then
        echo "SKIP: 'ip' not found: apt-get install iproute2" >&2
        return 77
    fi
    if ! ip netns list >/dev/null 2>&1; then
        echo "SKIP: 'ip netns' is not available: $(ip netns list 2>&1 | head -1)" >&2
        return 77
    fi
    return 0
}

axon_netns_teardown() {
    [ "$AXON_NETNS_UP" = 1 ] || return 0
    local ns pid
    if [ -n "$AXON_NETNS_BG_PID" ]; then
        kill "$AXON_NETNS_BG_PID" 2>/dev/null
        wait "$AXON_NETNS_BG_PID" 2>/dev/null
        AXON_NETNS_BG_PID=
    fi
    for ns in "$AXON_NETNS_NAME_A" "$AXON_NETNS_NAME_B"; do
        # Only our commands run in our namespaces: stop them before deleting.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
        sleep 0.1
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    AXON_NETNS_UP=0
    if ip netns list 2>/dev/null | grep -Eq "^($AXON_NETNS_NAME_A|$AXON_NETNS_NAME_B)( |\$)"; then
        axon_netns_log "could not delete namespace $AXON_NETNS_NAME_A or $AXON_NETNS_NAME_B: delete it with 'ip netns del NAME'"
        return 1
    fi
    return 0
}

# Create both namespaces, the veth pair and the addresses; install the
# teardown trap.  Returns 0, 77 (skip) or 1 (error, everything undone).
axon_netns_setup() {
    axon_netns_check || return $?
    local err
    trap 'axon_netns_teardown' EXIT
    trap 'exit 130' INT TERM
    if ! err=$(ip netns add "$AXON_NETNS_NAME_A" 2>&1); then
        case $err in
            *"Operation not permitted"*|*"Permission denied"*)
                echo "SKIP: the kernel refused a network namespace: $err" >&2; return 77 ;;
        esac
        axon_netns_log "ip netns add $AXON_NETNS_NAME_A failed: $err"
        return 1
    fi
    AXON_NETNS_UP=1
    if ! err=$( { ip netns add "$AXON_NETNS_NAME_B" &&
          ip link add axa0 netns "$AXON_NETNS_NAME_A" type veth peer name axb0 netns "$AXON_NETNS_NAME_B" &&
          ip -n "$AXON_NETNS_NAME_A" addr add "$AXON_NETNS_A/24" dev axa0 &&
          ip -n "$AXON_NETNS_NAME_B" addr add "$AXON_NETNS_B/24" dev axb0 &&
          ip -n "$AXON_NETNS_NAME_A" link set lo up &&
          ip -n "$AXON_NETNS_NAME_B" link set lo up &&
          ip -n "$AXON_NETNS_NAME_A" link set axa0 up &&
          ip -n "$AXON_NETNS_NAME_B" link set axb0 up; } 2>&1); then
        axon_netns_log "setting up the veth pair failed: $err (is the veth module available? modprobe veth)"
        axon_netns_teardown
        return 1
    fi
    # The link is up when A sees carrier (a few ms; bounded at 5 s).
    local i
    for i in $(seq 1 50); do
        ip -n "$AXON_NETNS_NAME_A" link show axa0 2>/dev/null | grep -q 'LOWER_UP' && return 0
        sleep 0.1
    done
    axon_netns_log "axa0 has no carrier after 5 s"
    axon_netns_teardown
    return 1
}

# axon_netns_run A|B CMD [ARG...]: run in that namespace, in the foreground.
axon_netns_run() {
    local which=$1 ns ifname; shift
    case $which in
        A) ns=$AXON_NETNS_NAME_A ifname=axa0 ;;
        B) ns=$AXON_NETNS_NAME_B ifname=axb0 ;;
        *) axon_netns_log "namespace '$which': expected A or B"; return 2 ;;
    esac
    [ "$AXON_NETNS_UP" = 1 ] || { axon_netns_log "call axon_netns_setup first"; return 2; }
    AXON_NETNS_A=$AXON_NETNS_A AXON_NETNS_B=$AXON_NETNS_B AXON_NETNS_IF=$ifname \
    AXON_NETNS_SELF=$which ip netns exec "$ns" "$@"
}

# axon_netns_bg A|B CMD [ARG...]: the same in the background; its pid in
# AXON_NETNS_BG_PID (teardown stops it).
axon_netns_bg() {
    axon_netns_run "$@" &
    AXON_NETNS_BG_PID=$!
}

# ---- self-test ----------------------------------------------------------------

# A one-shot TCP echo server (python3): listen on ADDR:PORT, echo one line.
axon_netns_echo_server() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(20)
c, peer = s.accept()
data = c.recv(4096)
c.sendall(b"echo from " + sys.argv[1].encode() + b": " + data)
c.close()
PY
}

# Connect to ADDR:PORT (retrying while the server starts), send TEXT, print the answer.
axon_netns_echo_client() {
    python3 - "$1" "$2" "$3" <<'PY'
import socket, sys, time
deadline = time.time() + 10
while True:
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        break
    except OSError as e:
        if time.time() > deadline:
            sys.exit(f"connect to {sys.argv[1]}:{sys.argv[2]}: {e}")
        time.sleep(0.05)
c.sendall(sys.argv[3].encode())
print(c.recv(4096).decode())
PY
}

axon_netns_selftest() {
    local rc out port fails=0
    axon_netns_setup || return $?
    command -v python3 >/dev/null || { axon_netns_log "python3 not found"; return 1; }
    # 1. each side has only lo and its veth end, with its own address
    out=$(axon_netns_run A ip -o -4 addr show)
    if echo "$out" | grep -q "axa0 *inet $AXON_NETNS_A/24" && [ "$(echo "$out" | wc -l)" = 2 ]; then
        echo "ok   namespace A has lo and axa0 $AXON_NETNS_A only"
    else echo "FAIL namespace A addresses: $out"; fails=$((fails + 1)); fi
    # 2. TCP echo both ways across the veth
    for dir in "A B" "B A"; do
        set -- $dir
        local cli=$1 srv=$2 addr
        [ "$srv" = B ] && addr=$AXON_NETNS_B || addr=$AXON_NETNS_A
        port=$((20000 + RANDOM % 40000))
        axon_netns_bg "$srv" bash -c "$(declare -f axon_netns_echo_server); axon_netns_echo_server $addr $port"
        out=$(axon_netns_run "$cli" bash -c "$(declare -f axon_netns_echo_client); axon_netns_echo_client $addr $port hello-from-$cli" 2>&1)
        rc=$?
        wait "$AXON_NETNS_BG_PID"; local src=$?
        AXON_NETNS_BG_PID=
        if [ $rc -eq 0 ] && [ $src -eq 0 ] && [ "$out" = "echo from $addr: hello-from-$cli" ]; then
            echo "ok   TCP echo $cli -> $srv ($addr:$port)"
        else echo "FAIL TCP echo $cli -> $srv: client rc $rc, server rc $src: $out"; fails=$((fails + 1)); fi
    done
    # 3. isolation: the veth ends live only in the namespaces; the host's
    # namespace has neither interface nor an address or route of ours (a
    # connect attempt proves nothing: a host may route 10/8 to a proxy).
    out=$( { ip -o link show; ip -o -4 addr show; ip route show; } 2>&1)
    if echo "$out" | grep -Eq 'axa0|axb0|10\.231\.0\.'; then
        echo "FAIL the host namespace sees our veth or addresses: $(echo "$out" | grep -E 'axa0|axb0|10\.231\.0\.')"
        fails=$((fails + 1))
    else echo "ok   the host namespace has no axa0/axb0 and no 10.231.0.0/24 address or route"; fi
    # 4. UCX over TCP across the veth, as the cluster tests use it
    if command -v ucx_perftest >/dev/null; then
        port=$((20000 + RANDOM % 40000))
        axon_netns_bg B env UCX_TLS=tcp UCX_NET_DEVICES=axb0 \
            timeout 30 ucx_perftest -p "$port" -t ucp_am_lat -s 64 -n 2000 -f -v >/dev/null 2>&1
        local i
        for i in $(seq 1 50); do
            axon_netns_run B ss -Hltn "sport = :$port" | grep -q . && break
            sleep 0.1
        done
        out=$(axon_netns_run A env UCX_TLS=tcp UCX_NET_DEVICES=axa0 \
              timeout 30 ucx_perftest "$AXON_NETNS_B" -p "$port" -t ucp_am_lat -s 64 -n 2000 -f -v 2>&1)
        rc=$?
        wait "$AXON_NETNS_BG_PID"; AXON_NETNS_BG_PID=
        local csv
        csv=$(printf '%s\n' "$out" | grep -E '^2000,[0-9.]+,' | tail -1)
        if [ $rc -eq 0 ] && [ -n "$csv" ]; then
            echo "ok   ucx_perftest ucp_am_lat over UCX_TLS=tcp A -> B: half round trip $(echo "$csv" | cut -d, -f2) us (p50)"
        else echo "FAIL ucx_perftest across the veth: rc $rc: $(printf '%s\n' "$out" | tail -5)"; fails=$((fails + 1)); fi
    else
        echo "skip ucx_perftest across the veth: ucx-utils not installed"
    fi
    axon_netns_teardown || fails=$((fails + 1))
    if ip netns list | grep -q "^axon-$$-"; then
        echo "FAIL namespaces left after teardown"; fails=$((fails + 1))
    else echo "ok   both namespaces removed"; fi
    echo "netns self-test: $fails failure(s)"
    [ $fails -eq 0 ]
}

axon_netns_usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"; }

axon_netns_main() {
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    case $cmd in
        -h|--help) axon_netns_usage "$0"; return 0 ;;
        check) axon_netns_check && echo "network namespaces: available" ;;
        selftest) axon_netns_selftest ;;
        exec)
            local which=${1:-}
            [ "${2:-}" = "--" ] && [ $# -ge 3 ] || { axon_netns_log "usage: netns.sh exec A|B -- CMD [ARG...]"; return 2; }
            case $which in A|B) ;; *) axon_netns_log "exec $which: expected A or B"; return 2 ;; esac
            shift 2
            axon_netns_setup || return $?
            # In the background and waited for: bash runs the INT/TERM trap
            # (and so the teardown) at once during `wait`, not only after a
            # foreground command ends.
            axon_netns_run "$which" "$@" &
            wait $!
            ;;
        run)
            local a= b= tmo=60 rc rcb
            while [ $# -gt 0 ]; do
                case $1 in
                    --a) a=${2:-}; shift 2 || return 2 ;;
                    --b) b=${2:-}; shift 2 || return 2 ;;
                    --timeout) tmo=${2:-}; shift 2 || return 2 ;;
                    *) axon_netns_log "run: unknown argument '$1' (see --help)"; return 2 ;;
                esac
            done
            [ -n "$a" ] && [ -n "$b" ] || { axon_netns_log "run needs --a 'CMD' and --b 'CMD'"; return 2; }
            case $tmo in ''|*[!0-9]*) axon_netns_log "--timeout $tmo: expected seconds"; return 2 ;; esac
            axon_netns_setup || return $?
            axon_netns_bg B timeout -k 2 "$tmo" bash -c "$b"
            axon_netns_run A timeout -k 2 "$tmo" bash -c "$a" &
            wait $!
            rc=$?
            wait "$AXON_NETNS_BG_PID"; rcb=$?
            AXON_NETNS_BG_PID=
            [ $rc -ne 0 ] && { axon_netns_log "A's command exited $rc"; return $rc; }
            [ $rcb -ne 0 ] && { axon_netns_log "B's command exited $rcb"; return $rcb; }
            return 0
            ;;
        '') axon_netns_log "no command (see --help)"; return 2 ;;
        *) axon_netns_log "unknown command '$cmd' (see --help)"; return 2 ;;
    esac
}

# Run as a program, not when sourced.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    axon_netns_main "$@"
    exit $?
fi
