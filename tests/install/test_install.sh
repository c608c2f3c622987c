#!/usr/bin/env bash
# Install axon into a scratch prefix (not a system directory), then build
# against it exactly as an embedder would, with nothing but pkg-config:
#  1. the README one-liner, cc app.c $(pkg-config --cflags --libs axon), and
#     run the program with no LD_LIBRARY_PATH (axon.pc carries a run path);
#  2. the same program linked statically;
#  3. every example (examples/*.c, and examples/kv/ as one program) with
#     -std=c11 -Wall -Wextra -pedantic -Werror, then run the small ones.
# In a sanitizer build (SANITIZE = address or thread) axon.pc must carry the
# build's -fsanitize flags in Cflags and Libs, and everything above is built
# with them (from pkg-config alone) and must run: an instrumented libaxon in
# a program built without them crashes at start.
# Args: BUILD_DIR SRC_DIR [CC] [SANITIZE]
set -euo pipefail
build=$1 src=$2 cc=${3:-cc} san=${4:-}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "test_install: FAIL: $*"; exit 1; }
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name axon.pc -print -quit)
[ -n "$pc" ] || fail "no axon.pc installed under $prefix"
export PKG_CONFIG_PATH=$(dirname "$pc")
unset LD_LIBRARY_PATH
[ -f "$prefix/include/axon/axon.h" ] || fail "axon/axon.h not installed"
cflags=$(pkg-config --cflags axon) libs=$(pkg-config --libs axon)

# A TSan program that uses lib/container.c needs the liburcu entries of
# tests/tsan.supp (its helper threads' own handoffs; docs/containers.md).
if [ "$san" = thread ]; then
    export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}suppressions=$src/tests/tsan.supp"
fi
case "$san" in
    "") want="" ;;
    address) want="-fsanitize=address,undefined" ;;
    thread) want="-fsanitize=thread" ;;
    *) fail "unknown sanitizer '$san'" ;;
esac
if [ -n "$want" ]; then
    grep -q -- "^Cflags:.*$want" "$pc" || fail "axon.pc of a $san build lacks $want in Cflags: $(grep ^Cflags: "$pc")"
    grep -q -- "^Libs:.*$want" "$pc" || fail "axon.pc of a $san build lacks $want in Libs: $(grep ^Libs: "$pc")"
elif grep -E "^(Cflags|Libs)" "$pc" | grep -q -- "-fsanitize"; then
    fail "axon.pc of a plain build asks for a sanitizer: $(grep -- -fsanitize "$pc")"
fi
case "$(grep ^Libs: "$pc")" in
    *-rpath*) ;;
    *) fail "axon.pc installed under $prefix (not a system directory) has no run path: $(grep ^Libs: "$pc")" ;;
esac

# 1. The README one-liner; the program must find libaxon.so.0 by itself.
"$cc" -std=c11 -o "$prefix/consumer_shared" "$src/tests/install/consumer.c" $cflags $libs
"$prefix/consumer_shared" || fail "the consumer built with 'cc app.c \$(pkg-config --cflags --libs axon)' did not run"

# 2. Static.
"$cc" -std=c11 -o "$prefix/consumer_static" "$src/tests/install/consumer.c" $cflags \
   -Wl,-Bstatic $(pkg-config --libs-only-L axon) -laxon -Wl,-Bdynamic $(pkg-config --libs --static axon | sed 's/-laxon//')
"$prefix/consumer_static" || fail "the statically linked consumer did not run"

# 3. Every example, out of the tree, strict ISO C plus POSIX.
strict=(-std=c11 -Wall -Wextra -pedantic -Werror)
built=0
for f in "$src"/examples/*.c; do
    "$cc" "${strict[@]}" -o "$prefix/$(basename "$f" .c)" "$f" $cflags $libs ||
        fail "examples/$(basename "$f") does not build out of the tree with ${strict[*]}"
    built=$((built + 1))
done
if [ -d "$src/examples/kv" ]; then
    # axon-kv also calls jemalloc itself (mallctl), so it links it itself.
    "$cc" "${strict[@]}" -o "$prefix/axon-kv" "$src"/examples/kv/*.c $cflags $libs \
        $(pkg-config --cflags --libs jemalloc) ||
        fail "examples/kv does not build out of the tree with ${strict[*]}"
    built=$((built + 1))
    "$prefix/axon-kv" --help >/dev/null || fail "the out-of-tree axon-kv --help failed"
fi
out=$("$prefix/ring" 1000) || fail "the out-of-tree ring exited with $?"
echo "$out" | grep -q '^ring: result 498$' || fail "ring printed: $out"
# Two workers even on one CPU (oversubscribed, unpinned), so messages cross.
out=$(AXON_WORKERS_COUNT=2 AXON_WORKERS_OVERSUBSCRIBE=true "$prefix/pingpong" 1000) ||
    fail "the out-of-tree pingpong exited with $?"
echo "$out" | grep -q 'between worker 0 and worker 1 ' || fail "pingpong printed: $out"
# The supervision tree survives 3 injected failures and shuts down cleanly.
out=$("$prefix/supervisor" 3) || fail "the out-of-tree supervisor exited with $?"
echo "$out" | tail -1 | grep -q 'tree shut down cleanly$' || fail "supervisor printed: $out"
# The lib/ examples (issue 13) run too: liburcu and LMDB must come with
# libaxon, shared and (through Libs.private) static.
out=$("$prefix/pool" 256 128 8) || fail "the out-of-tree pool exited with $?"
echo "$out" | grep -q 'output matches the serial blur' || fail "pool printed: $out"
out=$("$prefix/containers") || fail "the out-of-tree containers exited with $?"
echo "$out" | grep -q 'ledger matches' || fail "containers printed: $out"
"$cc" "${strict[@]}" -o "$prefix/containers_static" "$src/examples/containers.c" $cflags \
    -Wl,-Bstatic $(pkg-config --libs-only-L axon) -laxon -Wl,-Bdynamic $(pkg-config --libs --static axon | sed 's/-laxon//')
out=$("$prefix/containers_static") || fail "the statically linked containers exited with $?"
echo "$out" | grep -q 'ledger matches' || fail "containers (static) printed: $out"
echo "test_install: shared and static consumers and $built examples built with pkg-config${want:+ ($want)} and ran"
