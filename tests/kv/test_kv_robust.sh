#!/bin/bash
# tests/kv/test_kv_robust.sh BUILD_DIR [SEED] - 1,000 connections to axon-kv,
# half sending garbage or closing mid-request, while a well-behaved client
# keeps getting correct answers; the server must survive.  Then clients that
# pipeline GETs and never read: memory stays bounded, others are served, and
# the server stops reading such a client.
# Killed on exit.
set -u
if [ $# -lt 1 ] || [ "$1" = "--help" ]; then echo "usage: $0 BUILD_DIR [SEED]" >&2; exit 2; fi
KV_BIN=$1/bin/axon-kv
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/kv_lib.sh"
[ -x "$KV_BIN" ] || fail "$KV_BIN not built"
ulimit -n 8192 2>/dev/null || ulimit -n 4096 2>/dev/null
kv_start robust
SEED=${2:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
python3 "$HERE/kv_clients.py" robust "$PORT" --conns 1000 --seed "$SEED" || fail "robustness (seed $SEED)"
python3 "$HERE/kv_clients.py" robust "$PORT" --conns 1000 --seed $((SEED + 1)) || fail "robustness, second wave (seed $((SEED + 1)))"
kv_alive
[ "$(redis-cli -p "$PORT" PING)" = PONG ] || fail "server does not answer PING after the storm"
# Clients that never read their replies (issue 10, item 17): 4 x 65,536 GETs
# of a 60 KB value.  Each connection may hold max-output-bytes (64 MiB by
# default) plus what is in flight; before that bound counted bytes, one such
# client took the server to 1.4 GB.  640 MB for four is generous.
python3 "$HERE/kv_clients.py" hogs "$PORT" --pid "$PID" --hogs 4 --gets 65536 --rss-mb 640 --seconds 4 ||
    fail "clients that do not read their replies"
[ "$(redis-cli -p "$PORT" PING)" = PONG ] || fail "server does not answer PING after the hogs left"
# The same on a fresh one-worker server, counting the page faults its worker
# takes meanwhile: first touches of the memory the hogs make it use, which a
# PING from another client waits behind (~18 us each on the CI VM).  Fresh
# process, 4 x 65,536 GETs of 60 KB for 4 s: 4,460-4,730 faults when the
# receive ring, the received chunks' blobs, each parser, each gather buffer
# and each 1 MiB send window were faulted in on the first burst, 2,300-3,000
# after that, 1,700-2,100 since the worker takes io input in only when its
# local backlog is down to a batch and a paused parser reads 16 KiB ahead
# (issue 10 item 17; test_engine_fifo checks the rule itself), 285-345
# since the io layer copies sends above 4 KiB into its resident send pool
# instead of fresh jemalloc memory (1,600-2,030 in the same runs without)
# when the whole pool was made resident at the first listen, and
# 1,430-1,660 since the pool is made resident 256 KiB at a time as sends
# reach it: ~1,200 of those are the pool's own pages, now first touched in
# the run (64 per madvise, not one fault each), the price of axon-kv's
# memory (item 20: all 8 MiB per worker at the listen put it at 1.3-1.4x
# redis-server, over the 1.2 limit).  The PING goal of item 17 holds
# either way (32 of 32 quiet runs within 10 ms, docs/kv.md).  A count:
# load moves it little (and down).
# A sanitizer build's allocator and shadow memory fault on their own
# (7,600 under ASan): the bound is for the plain build.
MAX_FAULTS=2000
if grep -q '^AXON_SANITIZE:STRING=.' "$1/CMakeCache.txt" 2>/dev/null; then
    echo "test_kv_robust: sanitizer build: page faults printed, not bounded"
    MAX_FAULTS=0
fi
SAVED_PORT=$PORT SAVED_PID=$PID SAVED_LOG=$KV_LOG
kv_start hogs1 --workers 1
python3 "$HERE/kv_clients.py" hogs "$PORT" --pid "$PID" --hogs 4 --gets 65536 --rss-mb 640 --seconds 4 \
    --max-faults $MAX_FAULTS || fail "first touches while clients that do not read connect (one worker)"
PORT=$SAVED_PORT PID=$SAVED_PID KV_LOG=$SAVED_LOG
# Such a client's socket must stop being read once its parsing is paused:
# TCP flow control then holds it back (it gets a few MB written, not 256).
python3 "$HERE/kv_clients.py" rxpause "$PORT" || fail "a paused connection's socket is still read"
kv_finish
echo "PASS: test_kv_robust"
