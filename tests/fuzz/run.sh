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
# Runs one target; its output goes to fuzz-work/<target>.log.
fuzz_one() {
    local t=$1 work="$build/fuzz-work/$1"
    mkdir -p "$work" "$build/fuzz-artifacts"
    # New corpus entries go to $work; the checked-in seeds stay untouched.
    if ! "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/$t-" \
        "$work" "tests/fuzz/corpus/$t" 2>"$build/fuzz-work/$t.log"; then
        tail -40 "$build/fuzz-work/$t.log" >&2
        echo "fuzz: $t failed; inputs in $build/fuzz-artifacts/" >&2
        return 1
    fi
    echo "fuzz: $t: $(grep -E '^stat::number_of_executed_units' \
        "$build/fuzz-work/$t.log" | awk '{print $2}') runs in ${seconds}s"
}

# One target per core at a time: each is single-threaded.
jobs=${TW_FUZZ_JOBS:-$(nproc)}
failed=0
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    echo "fuzz: $t for ${seconds}s"
    fuzz_one "$t" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
[ "$failed" -eq 0 ] || exit 1
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a finding"
