#!/usr/bin/env bash
# Sanitizer suite: builds with -DTW_SANITIZE=ON (ASan, UBSan, LeakSanitizer)
# in build-asan and runs the whole ctest suite there, where any report
# fails its test; then runs one loopback match with the server under
# valgrind (normal build in build/, which tests/run.sh made).
# Usage: bash tests/sanitize.sh [ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

asan=${TW_ASAN_BUILD_DIR:-build-asan}
cmake -S . -B "$asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTW_SANITIZE=ON \
    -DTW_WERROR=ON >/dev/null
cmake --build "$asan" -j2
(cd "$asan" && ctest --output-on-failure --no-tests=error "$@")

# Valgrind cannot run ASan binaries; it checks the normal build's server.
build=${TW_BUILD_DIR:-build}
if [ ! -x "$build/bin/tickwire-server" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j2
fi
echo "sanitize: loopback match with the server under valgrind"
TW_VALGRIND=1 TW_BIN="$PWD/$build/bin" TW_REPO="$PWD" PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 tests/integration/test_match.py \
    LoopbackMatch.test_32_bots_stay_in_sync
