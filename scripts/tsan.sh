#!/bin/sh
# The ThreadSanitizer run of `make check`: `sh scripts/tsan.sh build-tsan` (a tree set up with
# -Db_sanitize=thread, see the Makefile). Runs every Criterion unit test executable, then the integration
# suites that exercise the server's threads: the audit writer thread and the group commit of writes
# (test_audit, test_durability), the notifier thread (test_notifications), concurrent logins and the throttle
# (test_identities). TSAN_SUITES="..." runs others. A data race is a failure: the harness fails a test whose
# server or CLI prints a ThreadSanitizer report, and a unit test log with one fails that executable.
# Known reports inside libraries we do not own are suppressed in tests/tsan.supp, each with its reason.
# Ends with one line `N passed, N failed[, N skipped]`; exits 1 if anything failed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build-tsan}
case $dir in /*) ;; *) dir="$root/$dir" ;; esac
if ! grep -q -e '-fsanitize=thread' "$dir/build.ninja" 2>/dev/null; then
    echo "tsan: $dir is not a ThreadSanitizer build (meson setup $dir -Db_sanitize=thread)" >&2
    exit 2
fi
suites=${TSAN_SUITES:-test_audit test_durability test_notifications test_identities}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/coffer-tsan.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
# halt_on_error=0: every race of a run is reported, not only the first; exitcode: a process that reported
# one exits 66 even when it would have succeeded.
export TSAN_OPTIONS="${TSAN_OPTIONS:-suppressions=$root/tests/tsan.supp halt_on_error=0 exitcode=66 second_deadlock_stack=1 history_size=4}"

passed=0
failed=0
skipped=0
for exe in "$dir"/tests/unit/*; do
    [ -f "$exe" ] && [ -x "$exe" ] || continue
    t=$(basename "$exe")
    log="$tmp/$t.log"
    (cd "$dir/tests/unit" && timeout 600 "$exe" --verbose -j2 >"$log" 2>&1)
    rc=$?
    line=$(grep -a 'Synthesis:' "$log" | tail -n 1)
    tested=$(echo "$line" | sed -n 's/.*Tested: *\([0-9]*\).*/\1/p')
    passing=$(echo "$line" | sed -n 's/.*Passing: *\([0-9]*\).*/\1/p')
    if [ -z "$tested" ] || [ -z "$passing" ]; then
        echo "  unit $t: no result (exit $rc)"
        tail -n 40 "$log" | sed 's/^/    | /'
        failed=$((failed + 1))
        continue
    fi
    bad=$((tested - passing))
    races=$(grep -a -c 'WARNING: ThreadSanitizer' "$log" || true)
    [ "$races" -gt 0 ] && [ "$bad" -eq 0 ] && bad=1
    [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
    skip=$(grep -a -c '^\[SKIP\]' "$log" || true)
    passed=$((passed + passing))
    failed=$((failed + bad))
    skipped=$((skipped + skip))
    note=""
    [ "$races" -gt 0 ] && note=", $races ThreadSanitizer report(s)"
    echo "  unit $t: $passing passed, $bad failed$note"
    if [ "$bad" -gt 0 ]; then
        grep -a -E -A 30 '\[FAIL\]|WARNING: ThreadSanitizer' "$log" | head -n 120 | sed 's/^/    | /'
    fi
done

log="$tmp/integration.log"
# shellcheck disable=SC2086 # suites is a list
COFFER_BIN="$dir/coffer" ITEST_START_TIMEOUT=60 ITEST_SUITE_TIMEOUT=600 \
    python3 "$root/tests/integration/run.py" $suites >"$log" 2>&1
grep -v '^RESULT ' "$log"
result=$(grep '^RESULT ' "$log" | tail -n 1)
p=$(echo "$result" | sed -n 's/.*passed=\([0-9]*\).*/\1/p')
f=$(echo "$result" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
s=$(echo "$result" | sed -n 's/.*skipped=\([0-9]*\).*/\1/p')
if [ -z "$p" ]; then
    echo "  integration: the runner produced no result"
    failed=$((failed + 1))
else
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + ${s:-0}))
fi

summary="tsan: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
