#!/bin/sh
# `make fuzz`: runs every libFuzzer target of fuzz/ (built by `make fuzz` into BUILD with clang, ASan and UBSan)
# for SECONDS each, starting from the committed corpus (fuzz/corpus/NAME) and the regression inputs
# (fuzz/regressions/NAME). New inputs go to BUILD/fuzz-corpus/NAME (kept between runs); an input that crashes or
# breaks a property is written to BUILD/fuzz-crashes/NAME-crash-... and the script names it and exits 1.
#
#   sh scripts/fuzz.sh BUILD [SECONDS] [TARGET...]      (SECONDS default 60; FUZZ_JOBS=N runs N at once)
#
# A crash found is fixed, then its input is copied into fuzz/regressions/NAME/, which `make test` replays.
set -u
build=${1:?usage: fuzz.sh BUILD [SECONDS] [TARGET...]}
seconds=${2:-60}
shift 2 2>/dev/null || shift $#
root=$(cd "$(dirname "$0")/.." && pwd)
targets=${*:-$(sed -n "s/^fuzz_targets = \[\(.*\)\]/\1/p" "$root/fuzz/meson.build" | tr -d "',")}
jobs=${FUZZ_JOBS:-1}
mkdir -p "$build/fuzz-corpus" "$build/fuzz-crashes"
failed=0

run_one() {
    t=$1
    exe="$build/fuzz/fuzz_$t"
    [ -x "$exe" ] || { echo "fuzz: $exe is missing (make fuzz builds it)"; return 1; }
    mkdir -p "$build/fuzz-corpus/$t"
    log="$build/fuzz-crashes/$t.log"
    seeds="$root/fuzz/corpus/$t"
    [ -d "$root/fuzz/regressions/$t" ] && seeds="$seeds $root/fuzz/regressions/$t"
    # shellcheck disable=SC2086 # seeds is a list of directories
    "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-crashes/$t-" "$build/fuzz-corpus/$t" $seeds >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    if [ $rc -eq 0 ]; then
        echo "fuzz $t: ${seconds}s, ${runs:-?} inputs, ${cov:-?} edges covered, no crash"
        return 0
    fi
    echo "fuzz $t: FAILED (exit $rc) after ${runs:-?} inputs; input: $(ls -t "$build"/fuzz-crashes/"$t"-* 2>/dev/null | grep -v '\.log$' | head -n 1)"
    grep -E 'fuzz property failed|ERROR: |runtime error|SUMMARY' "$log" | head -n 5 | sed 's/^/    | /'
    return 1
}

if [ "$jobs" -le 1 ]; then
    for t in $targets; do
        run_one "$t" || failed=$((failed + 1))
    done
else
    # in groups of N (each a whole core's worth of time); each prints its own line when it ends
    running=0
    for t in $targets; do
        (run_one "$t" || touch "$build/fuzz-crashes/.failed-$t") &
        running=$((running + 1))
        if [ $running -ge "$jobs" ]; then
            wait
            running=0
        fi
    done
    wait
    for t in $targets; do
        [ ! -e "$build/fuzz-crashes/.failed-$t" ] || { failed=$((failed + 1)); rm -f "$build/fuzz-crashes/.failed-$t"; }
    done
fi
[ $failed -eq 0 ] || { echo "fuzz: $failed target(s) failed"; exit 1; }
echo "fuzz: every target ran ${seconds}s without a crash"
