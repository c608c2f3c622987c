#!/bin/bash
# tests/kv/test_kv_term.sh BUILD_DIR - SIGTERM while a client has replies in
# flight that it never reads: axon-kv must exit 0 within 10 s, and in a
# sanitizer build report nothing (issue 10, item 19: LeakSanitizer found the
# send buffers still in flight at stop, exit 1).  Labelled so that CI runs
# it in its ASan and TSan builds, where the leak check is.
set -u
if [ $# -ne 1 ] || [ "$1" = "--help" ]; then
    echo "usage: $0 BUILD_DIR   (runs BUILD_DIR/bin/axon-kv)" >&2; exit 2
fi
KV_BIN=$1/bin/axon-kv
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/kv_lib.sh"
[ -x "$KV_BIN" ] || fail "$KV_BIN not built"
for round in 1 2; do
    kv_start "term$round" --workers 2
    python3 "$HERE/kv_clients.py" noread "$PORT" --seconds 30 >"$KV_TMP/noread.$round" 2>&1 &
    CPID=$!
    for _ in $(seq 1 100); do grep -q "noread: ready" "$KV_TMP/noread.$round" && break; sleep 0.1; done
    grep -q "noread: ready" "$KV_TMP/noread.$round" || fail "the non-reading client did not start: $(cat "$KV_TMP/noread.$round")"
    kv_finish # SIGTERM, exit 0 within 10 s, no sanitizer report in the log
    kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null
    echo "ok: round $round: SIGTERM with sends in flight to a client that does not read"
done
echo "PASS: test_kv_term"
