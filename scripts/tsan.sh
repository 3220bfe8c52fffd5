#!/bin/sh
# The ThreadSanitizer run of `make check`: `sh scripts/tsan.sh build-tsan` (a tree set up with
# -Db_sanitize=thread, see the Makefile). Runs the integration suites that exercise the server's
# threads: the audit writer thread and the group commit of writes (test_audit, test_durability), the
# notifier thread (test_notifications), concurrent logins and the throttle (test_identities), the sync
# worker (test_syncs), secret writes sharing a transaction on a writer thread (test_secrets_api);
# TSAN_SUITES="..." runs others. A data race is a failure: the harness fails a test whose server or CLI
# prints a ThreadSanitizer report. The unit tests do not run here: Criterion 2.4 aborts at start under
# TSan (its inheritable arena cannot be mapped; Snaipe/Criterion#274), so tests/unit/meson.build builds
# none in a TSan tree.
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
suites=${TSAN_SUITES:-test_audit test_durability test_notifications test_identities test_syncs test_secrets_api}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/coffer-tsan.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
# halt_on_error=0: every race of a run is reported, not only the first; exitcode: a process that reported
# one exits 66 even when it would have succeeded.
export TSAN_OPTIONS="${TSAN_OPTIONS:-suppressions=$root/tests/tsan.supp halt_on_error=0 exitcode=66 second_deadlock_stack=1 history_size=4}"

passed=0
failed=0
skipped=0
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
