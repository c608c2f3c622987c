#!/usr/bin/env bash
# Every public header (include/axon/*.h), each included alone, must compile
# cleanly as C11 and as C++17 with every pedantic warning an error: an
# embedder's flags must never be what breaks the build.  Checked with each
# compiler given (C compiler, C++ compiler pairs), so GCC and clang both.
# Usage: test_headers.sh SRC_DIR CC CXX [CC CXX ...]
set -euo pipefail
src=$1; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
headers=("$src"/include/axon/*.h)
[ ${#headers[@]} -gt 0 ] && [ -f "${headers[0]}" ] || { echo "test_headers: no headers in $src/include/axon"; exit 1; }
fail=0 checked=0
while [ $# -ge 2 ]; do
    cc=$1 cxx=$2; shift 2
    for h in "${headers[@]}"; do
        name=$(basename "$h")
        # Used, not just parsed: a header-only inline function must compile too.
        printf '#include <axon/%s>\n#include <axon/%s>\nint main(void) { return 0; }\n' \
            "$name" "$name" >"$tmp/t.c"
        cp "$tmp/t.c" "$tmp/t.cc"
        if ! out=$("$cc" -std=c11 -Wall -Wextra -pedantic -Werror -Wstrict-prototypes \
                   -I"$src/include" -c -o "$tmp/t.o" "$tmp/t.c" 2>&1); then
            echo "FAIL: axon/$name as C11 with $cc -pedantic -Werror:"; echo "$out"; fail=1
        fi
        if ! out=$("$cxx" -std=c++17 -Wall -Wextra -pedantic -Werror \
                   -I"$src/include" -c -o "$tmp/t.o" "$tmp/t.cc" 2>&1); then
            echo "FAIL: axon/$name as C++17 with $cxx -pedantic -Werror:"; echo "$out"; fail=1
        fi
        checked=$((checked + 2))
    done
done
[ $fail -eq 0 ] || exit 1
echo "test_headers: ${#headers[@]} headers, $checked compilations (C11 and C++17, -pedantic -Werror) clean"
