# tests/kv/kv_lib.sh - sourced by the axon-kv integration tests: start
# servers on free loopback ports and always kill them on exit.
KV_PIDS=""
KV_LOGS=""
KV_TMP=$(mktemp -d /tmp/axon-kv-test.XXXXXX)
kv_cleanup() {
    for p in $KV_PIDS; do kill "$p" 2>/dev/null; done
    for p in $KV_PIDS; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$KV_TMP"
}
trap kv_cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; [ -n "${KV_LOG:-}" ] && { echo "--- server log:" >&2; tail -20 "$KV_LOG" >&2; }; exit 1; }

# kv_start NAME ARGS...: starts axon-kv on port 0; sets PORT and PID.
kv_start() {
    local name=$1; shift
    KV_LOG=$KV_TMP/$name.log
    # --workers N on any machine: unpinned when the process has fewer cores
    # (taskset -c 0), pinned otherwise.
    AXON_WORKERS_OVERSUBSCRIBE=${AXON_WORKERS_OVERSUBSCRIBE:-true} \
        "$KV_BIN" --port 0 "$@" >"$KV_LOG" 2>&1 &
    PID=$!
    KV_PIDS="$KV_PIDS $PID"
    KV_LOGS="$KV_LOGS $KV_LOG"
    PORT=""
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/^axon-kv: ready on [^ ]*:\([0-9]*\) .*/\1/p' "$KV_LOG")
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || fail "axon-kv $* exited at start"
        sleep 0.05
    done
    [ -n "$PORT" ] || fail "axon-kv $* did not print its port within 5 s"
}

# kv_finish: stop every server with SIGTERM; each must exit 0 within 10 s
# with no sanitizer report in its log (ASan/UBSan/TSan builds report there).
kv_finish() {
    local p log rc
    set -- $KV_LOGS
    for p in $KV_PIDS; do
        log=$1; shift
        kill -TERM "$p" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$p" 2>/dev/null && { KV_LOG=$log; fail "axon-kv (pid $p) did not stop within 10 s of SIGTERM"; }
        wait "$p"; rc=$?
        grep -q 'Sanitizer\|runtime error' "$log" && { KV_LOG=$log; fail "sanitizer report in $log"; }
        [ "$rc" = 0 ] || { KV_LOG=$log; fail "axon-kv (pid $p) exited with status $rc"; }
    done
    KV_PIDS=""
}

kv_alive() { kill -0 "$PID" 2>/dev/null || fail "axon-kv (pid $PID) died"; }
