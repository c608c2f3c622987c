#!/bin/bash
# tests/cluster/test_netns.sh - netns.sh cleans up after itself: after a
# failing command, after SIGTERM in the middle of a command, and when a test
# sources it as a library and fails; the namespaces and everything run in
# them are gone each time.  Exit 77 (skip) where netns.sh check skips.
set -u
here=$(cd "$(dirname "$0")" && pwd)
ns=$here/netns.sh
"$ns" check >/dev/null || exit $?
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
gone() { ! ip netns list | grep -Eq "^axon-$1-(a|b)( |\$)"; }

# 1. A failing command: its status comes back, the namespaces go.
"$ns" exec A -- sh -c 'exit 7' &
pid=$!
wait $pid
rc=$?
if [ $rc -eq 7 ] && gone $pid; then ok "a failing command returns its status (7) and the namespaces are removed"
else bad "failing command: rc $rc, namespaces: $(ip netns list | grep "axon-$pid")"; fi

# 2. SIGTERM while a command runs inside: the trap removes everything and
# stops the command at once (within 30 s; the command would run 120 s).
"$ns" exec B -- sleep 120 &
pid=$!
for i in $(seq 1 100); do
    ip netns pids "axon-$pid-b" 2>/dev/null | grep -q . && break
    sleep 0.1
done
inner=$(ip netns pids "axon-$pid-b" 2>/dev/null | head -1)
[ -n "$inner" ] || bad "the command did not start in axon-$pid-b"
t0=$(date +%s)
kill -TERM $pid
wait $pid 2>/dev/null
rc=$?
took=$(($(date +%s) - t0))
sleep 0.2
if [ $took -gt 30 ]; then bad "SIGTERM took $took s to take effect: the trap waited for the command"
elif gone $pid && { [ -z "$inner" ] || ! kill -0 "$inner" 2>/dev/null; }; then
    ok "SIGTERM (exit $rc) removes the namespaces and stops the command inside"
else bad "after SIGTERM: namespaces $(ip netns list | grep "axon-$pid"), command $inner alive: $(kill -0 "$inner" 2>/dev/null && echo yes)"; fi

# 3. As a library: a test that fails half way still leaves nothing.
bash -c ". '$ns'; axon_netns_setup || exit \$?
         axon_netns_bg B sleep 60
         axon_netns_run A ip -o -4 addr show dev axa0 | grep -q 10.231.0.1 || exit 9
         echo \$\$ > /dev/null; exit 5" &
pid=$!
wait $pid
rc=$?
if [ $rc -eq 5 ] && gone $pid; then ok "library use: setup, run, bg, then a failing exit leaves nothing"
else bad "library use: rc $rc (want 5), namespaces: $(ip netns list | grep "axon-$pid")"; fi

# 4. Bad usage: exit 2, nothing created.
"$ns" exec C -- true >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "exec C: exit 2" || bad "exec C: rc $rc"
"$ns" run --a true >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "run without --b: exit 2" || bad "run without --b: rc $rc"

# 5. run: B's failure is reported; both succeed -> 0 (B serves, A connects).
"$ns" run --b 'exit 4' --a 'true' 2>/dev/null; rc=$?
[ $rc -eq 4 ] && ok "run: B's failure (4) is the status" || bad "run with failing B: rc $rc"
"$ns" run --timeout 20 \
    --b 'exec python3 -c "import socket; s=socket.socket(); s.bind((\"$AXON_NETNS_B\", 7001)); s.listen(1); s.settimeout(15); c,_=s.accept(); c.sendall(c.recv(64))"' \
    --a 'exec python3 -c "
import socket, time
for i in range(200):
    try: c = socket.create_connection((\"$AXON_NETNS_B\", 7001), timeout=2); break
    except OSError: time.sleep(0.05)
c.sendall(b\"ping\"); assert c.recv(64) == b\"ping\""'
rc=$?
[ $rc -eq 0 ] && ok "run: a TCP echo from A to B at \$AXON_NETNS_B" || bad "run echo: rc $rc"

echo "netns cleanup test: $fails failure(s)"
[ $fails -eq 0 ]
