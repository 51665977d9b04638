#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in their own build directory and
# fuzzes each for a while. A crash or a failed property stops the script
# with its input saved under the build directory; copy that input into
# tests/fuzz/corpus/<target>/ so ctest replays it from then on.
# Usage: bash tests/fuzz/run.sh [seconds per target, default 60] [target...]
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(decode config token datagram server)
build=${TW_FUZZ_BUILD_DIR:-build-fuzz}

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DTW_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in "${targets[@]}"; do
    work="$build/fuzz-work/$t"
    mkdir -p "$work" "$build/fuzz-artifacts"
    echo "fuzz: $t for ${seconds}s"
    # New corpus entries go to $work; the checked-in seeds stay untouched.
    "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=3072 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/$t-" \
        "$work" "tests/fuzz/corpus/$t" 2>"$build/fuzz-work/$t.log" || {
        tail -40 "$build/fuzz-work/$t.log" >&2
        echo "fuzz: $t failed; inputs in $build/fuzz-artifacts/" >&2
        exit 1
    }
    grep -E "^stat::number_of_executed_units|^Done" \
        "$build/fuzz-work/$t.log" || true
done
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a finding"
