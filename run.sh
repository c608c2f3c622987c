#!/usr/bin/env bash
# run.sh - the two set-up commands of the README.
#
#   ./run.sh bench [axon-bench flags]   install what is missing, build, run the
#                                       throughput benchmark on this machine
#   ./run.sh test                       install what is missing, build, run the
#                                       whole test suite: plain build (unit,
#                                       stress, tool, fuzz tests), then the
#                                       ASan+UBSan (with LeakSanitizer) and TSan
#                                       builds of the unit, stress and install
#                                       tests
#   ./run.sh build                      install and build only
#
# Works on a fresh Debian 12 machine as root (apt-get).  Build trees: build/,
# build-asan/, build-tsan/.  Environment: JOBS (parallel build jobs, default
# nproc), CI=true (warnings become errors).
set -euo pipefail
cd "$(dirname "$0")"

PKGS=(cmake make gcc g++ pkg-config python3
      libhwloc-dev hwloc liburing-dev libjemalloc-dev libnuma-dev
      libbenchmark-dev libcmocka-dev systemtap-sdt-dev
      liburcu-dev liblmdb-dev                  # lib/container.c
      clang libclang-rt-14-dev                 # libFuzzer targets
      redis-tools redis-server                 # axon-kv tests and comparison
      gnuplot-nox                              # axon-bench --plot
      linux-perf valgrind                      # perf/scripts
      erlang-base                              # perf/scripts/restart-vs-erlang.sh, erlang-dist.sh
      iproute2                                 # tests/cluster/netns.sh
      libucx-dev ucx-utils                     # cluster transport; perf/scripts/ucx-limits.sh
      libopenmpi-dev openmpi-bin)              # optional: the MPI cluster launcher, mpirun tests
JOBS=${JOBS:-$(nproc)}
WERROR=OFF
[ "${CI:-}" = "true" ] && WERROR=ON

say() { printf 'run.sh: %s\n' "$*" >&2; }

install_deps() {
    local missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        say "missing Debian packages: ${missing[*]}"
        say "run as root, or: sudo apt-get install ${missing[*]}"
        exit 1
    fi
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure_build() { # dir [cmake args...]
    local dir=$1; shift
    cmake -S . -B "$dir" -DAXON_WERROR="$WERROR" "$@" >"$dir.configure.log" 2>&1 || {
        cat "$dir.configure.log" >&2; say "configuring $dir failed"; exit 1; }
    cmake --build "$dir" -j "$JOBS" >"$dir.build.log" 2>&1 || {
        tail -50 "$dir.build.log" >&2; say "building $dir failed (full log: $dir.build.log)"; exit 1; }
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    build)
        install_deps
        configure_build build
        ;;
    bench)
        install_deps
        configure_build build
        if [ -x build/bin/axon-bench ]; then
            exec build/bin/axon-bench "$@"
        fi
        exec build/bin/axon-topo "$@"
        ;;
    test)
        install_deps
        mkdir -p build build-asan build-tsan
        configure_build build
        say "plain build: every test"
        ctest --test-dir build --output-on-failure --timeout 600 -LE known_failing
        # Sanitizer builds: benchmarks off (they are measured, not tested).
        say "ASan+UBSan+LSan build: unit, stress and install tests"
        configure_build build-asan -DAXON_SANITIZE=address -DAXON_BENCH=OFF
        ctest --test-dir build-asan --output-on-failure -L 'unit|stress|install' --timeout 900
        say "TSan build: unit, stress and install tests"
        configure_build build-tsan -DAXON_SANITIZE=thread -DAXON_BENCH=OFF
        ctest --test-dir build-tsan --output-on-failure -L 'unit|stress|install' --timeout 900
        say "all test suites passed"
        ;;
    -h|--help|"")
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        [ -n "$cmd" ] || exit 2
        ;;
    *)
        say "unknown command '$cmd': use bench, test or build (./run.sh --help)"
        exit 2
        ;;
esac
