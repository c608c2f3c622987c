#!/usr/bin/env bash
# Install axon into a scratch prefix, then build and run a consumer with
# `pkg-config --cflags --libs axon`, shared and static.  Args: BUILD_DIR SRC_DIR
set -euo pipefail
build=$1 src=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name axon.pc -print -quit)
[ -n "$pc" ] || { echo "test_install: no axon.pc installed under $prefix"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
[ -f "$prefix/include/axon/axon.h" ] || { echo "test_install: axon/axon.h not installed"; exit 1; }
cc -std=c11 -o "$prefix/consumer_shared" "$src/tests/install/consumer.c" $(pkg-config --cflags --libs axon)
LD_LIBRARY_PATH=$(pkg-config --variable=libdir axon) "$prefix/consumer_shared"
cc -std=c11 -o "$prefix/consumer_static" "$src/tests/install/consumer.c" $(pkg-config --cflags axon) \
   -Wl,-Bstatic $(pkg-config --libs-only-L axon) -laxon -Wl,-Bdynamic $(pkg-config --libs --static axon | sed 's/-laxon//')
"$prefix/consumer_static"
# examples/supervisor.c builds out of tree as strict C11 against the
# installed headers and library (supervisors, failure API, timers).
cc -std=c11 -pedantic -Wall -Wextra -Werror -o "$prefix/supervisor" "$src/examples/supervisor.c" \
   $(pkg-config --cflags --libs axon)
LD_LIBRARY_PATH=$(pkg-config --variable=libdir axon) "$prefix/supervisor" 3 | tail -1 |
    grep -q 'tree shut down cleanly$' || { echo "test_install: examples/supervisor.c did not shut down cleanly"; exit 1; }
echo "test_install: shared and static consumers and examples/supervisor.c built with pkg-config and ran"
