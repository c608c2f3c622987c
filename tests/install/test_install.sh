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
# The examples that use lib/ (pools, containers) build out of tree as strict
# C11 and run against the installed library: liburcu and LMDB come with it.
for ex in pool containers; do
  cc -std=c11 -pedantic -Werror -Wall -o "$prefix/$ex" "$src/examples/$ex.c" $(pkg-config --cflags --libs axon)
  LD_LIBRARY_PATH=$(pkg-config --variable=libdir axon) "$prefix/$ex" >/dev/null
  cc -std=c11 -pedantic -Werror -Wall -o "$prefix/${ex}_static" "$src/examples/$ex.c" $(pkg-config --cflags axon) \
     -Wl,-Bstatic $(pkg-config --libs-only-L axon) -laxon -Wl,-Bdynamic $(pkg-config --libs --static axon | sed 's/-laxon//')
  "$prefix/${ex}_static" >/dev/null
done
echo "test_install: shared and static consumers built with pkg-config and ran"
