#!/bin/bash
# tests/kv/test_kv_diff.sh BUILD_DIR [SEED] [COUNT] - random differential test:
# starts BUILD_DIR/bin/axon-kv and a redis-server of its own, each on a free
# loopback port, sends both the same random commands (test_kv_diff.py) and
# compares every reply.  Both servers are stopped on exit (trap).  The seed
# is printed; pass it back as SEED to reproduce a failure.
set -u
if [ $# -lt 1 ] || [ "$1" = "--help" ]; then
    echo "usage: $0 BUILD_DIR [SEED] [COUNT]   (runs BUILD_DIR/bin/axon-kv and redis-server)" >&2; exit 2
fi
KV_BIN=$1/bin/axon-kv
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/kv_lib.sh"
[ -x "$KV_BIN" ] || fail "$KV_BIN not built"
command -v redis-server >/dev/null || fail "redis-server not found: apt-get install redis-server"
command -v redis-cli >/dev/null || fail "redis-cli not found: apt-get install redis-tools"
SEED=${2:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
COUNT=${3:-5000}

RPID=""
diff_cleanup() { [ -n "$RPID" ] && kill "$RPID" 2>/dev/null; kv_cleanup; }
trap diff_cleanup EXIT INT TERM

# redis-server cannot pick a free port itself (--port 0 means no TCP):
# take one the kernel says is free, and retry if another process wins it.
for attempt in 1 2 3 4 5; do
    RPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --dir "$KV_TMP" --logfile "$KV_TMP/redis.log" &
    RPID=$!
    for _ in $(seq 1 50); do
        [ "$(redis-cli -h 127.0.0.1 -p "$RPORT" PING 2>/dev/null)" = PONG ] && break
        kill -0 "$RPID" 2>/dev/null || break
        sleep 0.1
    done
    [ "$(redis-cli -h 127.0.0.1 -p "$RPORT" PING 2>/dev/null)" = PONG ] && break
    kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; RPID=""
done
[ -n "$RPID" ] || fail "could not start redis-server on a free port (log: $(tail -3 "$KV_TMP/redis.log" 2>/dev/null))"
echo "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$RPORT"

kv_start diff --workers 2
python3 "$HERE/test_kv_diff.py" "$PORT" "$RPORT" --seed "$SEED" --count "$COUNT" --seconds 90 ||
    fail "axon-kv and redis-server answered differently (seed $SEED; rerun: $0 $1 $SEED $COUNT)"
kv_alive
kv_finish
kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; RPID=""
echo "PASS: test_kv_diff"
