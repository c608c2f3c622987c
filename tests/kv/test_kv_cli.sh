#!/bin/bash
# tests/kv/test_kv_cli.sh BUILD_DIR - drive build/bin/axon-kv with the real
# redis-cli and redis-benchmark (Debian redis-tools): every command, pipelined
# input (redis-cli --pipe), errors for bad input, a 5 MB value, -OOM past
# maxmemory, expiry, reply order across shards, and a short benchmark whose
# output must report no error.  The servers are killed on exit (trap).
set -u
if [ $# -ne 1 ] || [ "$1" = "--help" ]; then
    echo "usage: $0 BUILD_DIR   (runs BUILD_DIR/bin/axon-kv)" >&2; exit 2
fi
KV_BIN=$1/bin/axon-kv
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/kv_lib.sh"
[ -x "$KV_BIN" ] || fail "$KV_BIN not built"
command -v redis-cli >/dev/null || fail "redis-cli not found: apt-get install redis-tools"

kv_start main
cli() { redis-cli -p "$PORT" "$@" 2>&1; }
expect() { local want=$1; shift; local got; got=$(cli "$@"); [ "$got" = "$want" ] || fail "redis-cli $*: expected '$want', got '$got'"; }
# TTL rounds to the nearest second: on a loaded machine half a second may
# pass between two redis-cli runs, so a TTL just set may read one less.
expect_ttl() { local want=$1; shift; local got; got=$(cli TTL "$@"); [ "$got" = "$want" ] || [ "$got" = "$((want - 1))" ] || fail "redis-cli TTL $*: expected $want (or $((want - 1))), got '$got'"; }

# --- every command -----------------------------------------------------------
expect "PONG" PING
expect "hi" PING hi
expect "hello world" ECHO "hello world"
expect "OK" SET k1 v1
expect "v1" GET k1
expect "" GET missing
expect "" SET k1 other NX
expect "v1" GET k1
expect "OK" SET k1 v2 XX
expect "" SET nokey v XX
expect "v2" GET k1
expect "OK" SET t1 v EX 100
expect_ttl 100 t1
expect "-1" TTL k1
expect "-2" TTL missing
expect "1" EXPIRE k1 50
expect_ttl 50 k1
expect "0" EXPIRE missing 50
expect "OK" SET px1 v PX 1500
expect "v" GET px1
sleep 2 # generous: the machine may be loaded
expect "" GET px1
expect "0" EXISTS px1
# active expiry: the shards' sweep timers remove keys nobody touches again
for i in $(seq 1 2000); do printf 'SET sweep:%d v PX 2000\r\n' "$i"; done | redis-cli -p "$PORT" --pipe >/dev/null
before=$(cli INFO | sed -n 's/^expired_keys:\([0-9]*\).*/\1/p')
sleep 3 # PX 2000: long enough that the pipe and the first INFO finish first on a loaded machine
after=$(cli INFO | sed -n 's/^expired_keys:\([0-9]*\).*/\1/p')
[ $((after - before)) = 2000 ] || fail "sweep: expected 2000 keys expired without access, INFO says $before -> $after"
cli INFO | grep -q '^db0:keys=[0-9]*,expires=2' || fail "sweep: expected only t1 and k1 with a deadline: $(cli INFO | grep db0)"
expect "ERR syntax error" SET k1 v NX XX
expect "ERR invalid expire time in 'set' command" SET k1 v EX 0
expect "1" INCR n
expect "11" INCRBY n 10
expect "10" DECR n
expect "ERR value is not an integer or out of range" INCR t1
expect "ERR value is not an integer or out of range" INCRBY n abc
expect "OK" MSET a 1 b 2 c 3 d 4 e 5 f 6
expect "$(printf '1\n2\n\n6\n3')" MGET a b nokey f c
expect "3" EXISTS a b nokey c
expect "2" DEL a b nokey
expect "0" EXISTS a b
expect "ERR wrong number of arguments for 'mset' command" MSET a 1 b
expect "ERR wrong number of arguments for 'get' command" GET
n=$(cli DBSIZE); [ "$n" = "7" ] || fail "DBSIZE: expected 7 (k1 t1 n c d e f), got $n"
expect "OK" FLUSHALL
expect "0" DBSIZE
expect "" COMMAND
expect "" CONFIG GET maxmemory
case "$(cli NOSUCHCMD x y)" in
    "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' 'y' ") ;;
    *) fail "unknown command: got '$(cli NOSUCHCMD x y)'";;
esac
expect "OK" QUIT
echo "ok: every command answered as Redis does; 2000 keys expired by the sweep alone"

# --- a 5 MB value: stored and returned intact -----------------------------------
head -c 3750000 /dev/urandom | base64 -w0 >"$KV_TMP/big"
expect "OK" -x SET bigval <"$KV_TMP/big"
cli GET bigval | head -c 5000000 | cmp -s - "$KV_TMP/big" || fail "GET bigval: the 5 MB value came back different"
expect "1" DEL bigval
# past the io layer's 64 MiB per-connection bound: the reply must be streamed
head -c 70000000 /dev/zero | tr '\0' v >"$KV_TMP/big70"
expect "OK" -x SET big70 <"$KV_TMP/big70"
cli GET big70 | head -c 70000000 | cmp -s - "$KV_TMP/big70" || fail "GET big70: the 70 MB value came back different"
expect "1" DEL big70
rm -f "$KV_TMP/big70"
echo "ok: 5 MB and 70 MB values round trip"

# --- pipelined input with redis-cli --pipe --------------------------------------
for i in $(seq 1 20000); do printf 'SET pipe:%d %d\r\n' "$i" "$i"; done >"$KV_TMP/pipe.txt"
printf 'INCRBY pipe:7 100\r\nGET pipe:107\r\nNOSUCH\r\n' >>"$KV_TMP/pipe.txt"
out=$(redis-cli -p "$PORT" --pipe <"$KV_TMP/pipe.txt" 2>&1)
echo "$out" | grep -q "errors: 1, replies: 20003" || fail "redis-cli --pipe: expected 1 error in 20003 replies, got: $out"
expect "107" GET pipe:7
expect "20000" DBSIZE
echo "ok: redis-cli --pipe, 20003 pipelined commands"

# --- order across shards, protocol errors (raw sockets) --------------------------
python3 "$HERE/kv_clients.py" order "$PORT" --seed 7 || fail "pipelined order"
python3 "$HERE/kv_clients.py" proto "$PORT" || fail "protocol errors"
python3 "$HERE/kv_clients.py" slowreader "$PORT" || fail "output backpressure"
python3 "$HERE/kv_clients.py" slowmixed "$PORT" || fail "replies queued by reference, read late"
python3 "$HERE/kv_clients.py" bigarg "$PORT" || fail "big arguments arriving after their header"
python3 "$HERE/kv_clients.py" manyargs "$PORT" || fail "commands of more than 1,048,576 arguments"
kv_alive

# --- redis-benchmark: no errors ----------------------------------------------------
out=$(timeout 120 redis-benchmark -p "$PORT" -q -n 20000 -P 16 -t set,get,incr,mset 2>&1 | tr '\r' '\n' | grep -v '^ *$')
echo "$out" | grep 'requests per second'
[ "$(echo "$out" | grep -c 'requests per second')" = 4 ] || fail "redis-benchmark: expected 4 results, got: $out"
echo "$out" | grep -qi 'error\|warning' && fail "redis-benchmark reported: $out"
kv_alive
echo "ok: redis-benchmark -P 16 set,get,incr,mset without errors"

# --- -OOM past maxmemory ------------------------------------------------------------
kv_start oom --maxmemory 1mb --workers 2
head -c 200000 /dev/zero | tr '\0' x >"$KV_TMP/200k"
oom=0
for i in $(seq 1 30); do
    r=$(cli -x SET "oom:$i" <"$KV_TMP/200k")
    case "$r" in
        OK) ;;
        "OOM command not allowed when used memory > 'maxmemory'.") oom=$((oom + 1));;
        *) fail "SET past maxmemory: unexpected reply '$r'";;
    esac
done
[ "$oom" -gt 0 ] || fail "30 x 200 KB into 2 shards of 1 MB: no -OOM reply"
stored=$(cli DBSIZE)
[ "$stored" -le 10 ] || fail "maxmemory 1mb per shard holds $stored values of 200 KB"
expect "1" INCR still-room-for-a-counter
cli FLUSHALL >/dev/null
expect "OK" -x SET oom:again <"$KV_TMP/200k"
kv_alive
echo "ok: -OOM after $stored values of 200 KB; FLUSHALL frees the room"

# --- config file, IPv6 ----------------------------------------------------------------
printf '# axon-kv test config\nport 0\nworkers = 1\nmaxmemory 2mb\nsweep-interval-ms 20\nmax-pipeline 3\n' >"$KV_TMP/kv.conf"
kv_start cfg --config "$KV_TMP/kv.conf" --bind ::1
grep -q '(1 workers = shards, maxmemory 2097152 bytes per shard)' "$KV_LOG" || fail "config file not applied: $(cat "$KV_LOG")"
[ "$(redis-cli -h ::1 -p "$PORT" SET six v)" = OK ] || fail "SET over IPv6 ::1"
[ "$(redis-cli -h ::1 -p "$PORT" GET six)" = v ] || fail "GET over IPv6 ::1"
# max-pipeline 3: parsing pauses every 3 commands and resumes as replies drain
kv_start cfg4 --config "$KV_TMP/kv.conf"
python3 "$HERE/kv_clients.py" order "$PORT" --seed 11 || fail "pipelined order with max-pipeline 3"
printf 'port 0\nbogus-key 1\nmaxmemory 12qq\n' >"$KV_TMP/bad.conf"
err=$("$KV_BIN" --config "$KV_TMP/bad.conf" 2>&1); rc=$?
[ $rc = 2 ] || fail "bad config: expected exit 2, got $rc"
echo "$err" | grep -q "bad.conf:3: maxmemory = 12qq: expected" || fail "bad config message: $err"
echo "ok: config file, IPv6, config errors name FILE:LINE"

# --- bad flags -----------------------------------------------------------------------
"$KV_BIN" --bogus >/dev/null 2>&1; [ $? = 2 ] || fail "axon-kv --bogus: expected exit 2"
"$KV_BIN" --port 70000 >/dev/null 2>&1; [ $? = 2 ] || fail "axon-kv --port 70000: expected exit 2"
"$KV_BIN" --help | grep -q usage || fail "axon-kv --help: no usage"
echo "ok: bad flags exit 2"
kv_finish
echo "PASS: test_kv_cli"
