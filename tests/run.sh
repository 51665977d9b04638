#!/usr/bin/env bash
# Runs every test: installs missing Debian packages, builds with -Werror,
# and runs the ctest suite. Usage: bash tests/run.sh [ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
tw_install_deps

build=${TW_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTW_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --no-tests=error "$@"
