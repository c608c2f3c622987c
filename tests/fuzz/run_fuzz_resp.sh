#!/bin/sh
# tests/fuzz/run_fuzz_resp.sh BUILD_DIR [SECONDS] - build the RESP parser fuzzer
# with clang (libFuzzer + ASan + UBSan) and run it for a bounded time.
# The seed corpus (tests/fuzz/corpus_resp) is copied, never written; new
# inputs and any crash artifact land in BUILD_DIR/fuzz/.  Exit status is 0 when
# no crash, leak or mismatch was found; a crash input is printed: keep it as
# a regression test in tests/unit/test_kv_resp.c.
set -eu
if [ $# -lt 1 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
    echo "usage: $0 BUILD_DIR [SECONDS]   (default 15 s)" >&2
    [ $# -ge 1 ] && exit 0 || exit 2
fi
BUILD=$1
SECS=${2:-15}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "run_fuzz_resp: $CC not found: apt-get install clang (or set FUZZ_CC)" >&2
    exit 1
fi
OUT=$BUILD/fuzz
mkdir -p "$OUT/corpus_resp" "$OUT/artifacts"
"$CC" -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$SRC" -I"$SRC/include" -I"$SRC/examples/kv" \
    "$SRC/tests/fuzz/fuzz_resp.c" "$SRC/examples/kv/resp.c" -o "$OUT/fuzz_resp"
cp -f "$SRC"/tests/fuzz/corpus_resp/* "$OUT/corpus_resp/"
# -rss_limit_mb: the parser must stay small; -max_len covers the 20 KB big-arg seed
"$OUT/fuzz_resp" -max_total_time="$SECS" -rss_limit_mb=1024 -max_len=65536 -timeout=10 \
    -artifact_prefix="$OUT/artifacts/" -print_final_stats=1 "$OUT/corpus_resp"
