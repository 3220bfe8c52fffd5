#!/bin/sh
# Runs every test suite against one or more Meson build directories: `sh scripts/test.sh build build-san`.
# For each directory: every Criterion unit test executable under DIR/tests/unit/ (the "Synthesis:" line gives
# the counts; a binary that crashes, prints no synthesis or prints a sanitizer report counts as a failure), then
# the integration suites of tests/integration/ with COFFER_BIN=DIR/coffer. Sanitizer options make ASan/UBSan
# reports fatal and the integration harness fails a test when the server or the CLI prints one.
# The web dashboard's browser suite (tests/browser/run.py: Debian's Chromium driven by playwright-core against
# a real server) runs once, with the first build directory that has no sanitizers, like the SDK suite.
# The Infisical SDK compatibility suite (tests/compat/run.py: npm ci, then Node against a real server) runs
# once, with the first build directory that has no sanitizers (the SDK exercises the same server code as the
# integration suites, and npm + Node under a sanitizer build would only cost time); its checks count like
# tests. Without node it counts as one skipped test and says why. The OpenAPI suite (tests/openapi/run.py: real
# answers validated with Ajv against the server's own /api/openapi.json) runs the same way, once, with that
# build. The JWT-auth suite with real tokens (tests/jose/run.py: tokens minted by the npm `jose` library) runs
# once too, with the first sanitizer build.
# The integration suites run on SQLite with every build, and once more on PostgreSQL with the first sanitizer
# build: scripts/pg.sh starts a throwaway cluster under the temporary directory (each test server gets a
# database of its own) and removes it at the end.
# The committed inputs of every fuzz target (fuzz/) are replayed with each build, one test per target.
# Prints one line per suite, then (when something failed) a short recap of what failed, so that the end of the
# output names it even when the failure details above are long, and ends with exactly one line
# `N passed, N failed[, N skipped]` over everything; exits 1 if anything failed.
set -u

if [ $# -eq 0 ]; then
    set -- build
fi

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/coffer-test.XXXXXX")
chmod 755 "$tmp" # the PostgreSQL cluster inside runs as an unprivileged user when we are root
pg_dir="$tmp/pg"
cleanup() {
    [ ! -d "$pg_dir" ] || sh "$root/scripts/pg.sh" stop "$pg_dir"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
recap="$tmp/recap"
: >"$recap"
# remember LINE...: keeps a line for the recap printed before the summary.
remember() {
    printf '%s\n' "$@" >>"$recap"
}
skipped=0
compat_done=0
openapi_done=0
jose_done=0
browser_done=0
pg_done=0

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-}"

# count_result LOG LABEL: adds the runner's last `RESULT passed=N failed=N skipped=N` line in LOG to the totals;
# a runner that printed none counts as one failure, with the end of its log.
count_result() {
    result=$(grep '^RESULT ' "$1" | tail -n 1)
    p=$(echo "$result" | sed -n 's/.*passed=\([0-9]*\).*/\1/p')
    f=$(echo "$result" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
    s=$(echo "$result" | sed -n 's/.*skipped=\([0-9]*\).*/\1/p')
    if [ -z "$p" ]; then
        echo "  $2: the runner produced no result"
        remember "$2: the runner produced no result"
        sed 's/^/    | /' "$1" | tail -n 40
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + ${s:-0}))
}

# failed_lines LOG PREFIX: keeps for the recap each suite line of LOG that counts failures, and the first
# lines naming a failed test (unittest's FAIL:/ERROR: headers) that follow it.
failed_lines() {
    awk -v prefix="$2" '
        /^  [a-z-]+ .* [1-9][0-9]* failed/ { print prefix substr($0, 3); shown = 0; keep = 1; next }
        /^  [a-z-]+ / { keep = 0; next }
        keep && shown < 6 && /(FAIL|ERROR): |Error: |no result/ { sub(/^ *\| /, ""); print "    | " $0; shown++ }
    ' "$1" >>"$recap"
}

sanitizer_in() {
    grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)|runtime error:' "$1"
}

for dir in "$@"; do
    case $dir in /*) ;; *) dir="$root/$dir" ;; esac
    name=$(basename "$dir")
    if [ ! -d "$dir" ]; then
        echo "$name: no such build directory: $dir"
        failed=$((failed + 1))
        continue
    fi
    kind=""
    if grep -q -e '-fsanitize' "$dir/build.ninja" 2>/dev/null; then
        kind=" (sanitizers)"
    fi
    echo "== $name$kind"

    # Unit tests.
    found=0
    for exe in "$dir"/tests/unit/*; do
        if [ ! -f "$exe" ] || [ ! -x "$exe" ]; then continue; fi
        found=1
        t=$(basename "$exe")
        log="$tmp/$name-$t.log"
        (cd "$dir/tests/unit" && timeout 300 "$exe" --ascii --verbose -j2 >"$log" 2>&1)
        rc=$?
        line=$(grep -a 'Synthesis:' "$log" | tail -n 1)
        tested=$(echo "$line" | sed -n 's/.*Tested: *\([0-9]*\).*/\1/p')
        passing=$(echo "$line" | sed -n 's/.*Passing: *\([0-9]*\).*/\1/p')
        failing=$(echo "$line" | sed -n 's/.*Failing: *\([0-9]*\).*/\1/p')
        crashing=$(echo "$line" | sed -n 's/.*Crashing: *\([0-9]*\).*/\1/p')
        if [ -z "$tested" ] || [ -z "$passing" ]; then
            # No synthesis: the runner itself crashed or hung.
            echo "  unit $t: no result (exit $rc)"
            remember "$name unit $t: no result (exit $rc)"
            sed 's/^/    | /' "$log" | tail -n 60
            failed=$((failed + 1))
            continue
        fi
        bad=$((tested - passing))
        note=""
        [ "${crashing:-0}" -gt 0 ] && note=" ($crashing crashed)"
        if sanitizer_in "$log" && [ "$bad" -eq 0 ]; then
            bad=1
            note=" (sanitizer report)"
        fi
        if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
            bad=1
            note=" (exit $rc)"
        fi
        # Criterion leaves skipped tests out of its synthesis; they print a [SKIP] line (with
        # --verbose, which is how the binaries are run above, or by default for a skip with a reason).
        skip=$(grep -a -c '^\[SKIP\]' "$log" || true)
        passed=$((passed + passing))
        failed=$((failed + bad))
        skipped=$((skipped + skip))
        if [ "$skip" -gt 0 ]; then
            note="$note, $skip skipped"
            grep -a '^\[SKIP\]' "$log" | sed 's/^/    | /'
        fi
        echo "  unit $t: $passing passed, $bad failed$note"
        if [ "$bad" -gt 0 ]; then
            grep -a -E '\[FAIL\]|\[----\]|ERROR:|SUMMARY:|runtime error' "$log" | head -n 80 | sed 's/^/    | /'
            remember "$name unit $t: $bad failed$note"
            grep -a -E '\[FAIL\]|ERROR:|SUMMARY:|runtime error' "$log" | head -n 5 | sed 's/^/    | /' >>"$recap"
        fi
        : "$failing"
    done
    if [ $found -eq 0 ]; then
        echo "  unit: no test executables under $dir/tests/unit"
    fi

    # The fuzz targets' committed inputs (fuzz/corpus, fuzz/regressions), replayed without libFuzzer: one
    # test per target; a broken property aborts, a sanitizer report fails it.
    for exe in "$dir"/fuzz/replay_*; do
        [ -f "$exe" ] && [ -x "$exe" ] || continue
        t=${exe##*/replay_}
        log="$tmp/$name-fuzz-$t.log"
        inputs="$root/fuzz/corpus/$t"
        [ ! -d "$root/fuzz/regressions/$t" ] || inputs="$inputs $root/fuzz/regressions/$t"
        # shellcheck disable=SC2086 # inputs is a list of directories
        timeout 300 "$exe" $inputs >"$log" 2>&1
        rc=$?
        if [ $rc -eq 0 ] && ! sanitizer_in "$log"; then
            passed=$((passed + 1))
            echo "  fuzz corpus $t: $(sed -n 's/^replay_[a-z]*: //p' "$log" | tail -n 1), ok"
        else
            failed=$((failed + 1))
            echo "  fuzz corpus $t: FAILED (exit $rc)"
            remember "$name fuzz corpus $t: failed (exit $rc)"
            sed 's/^/    | /' "$log" | tail -n 30
        fi
    done

    # Integration suites.
    if [ ! -x "$dir/coffer" ]; then
        echo "  integration: $dir/coffer is missing"
        failed=$((failed + 1))
        continue
    fi
    backends=sqlite
    if [ -n "$kind" ] && [ $pg_done -eq 0 ]; then
        pg_done=1
        backends="sqlite postgres"
    fi
    for backend in $backends; do
        log="$tmp/$name-integration-$backend.log"
        pg_env=""
        if [ "$backend" = postgres ]; then
            if ! sh "$root/scripts/pg.sh" start "$pg_dir" >"$tmp/pg-start.log" 2>&1; then
                echo "  integration on PostgreSQL: the test cluster did not start:"
                sed 's/^/    | /' "$tmp/pg-start.log"
                failed=$((failed + 1))
                continue
            fi
            pg_env="$pg_dir"
            echo "  -- the integration suites again, on PostgreSQL"
        fi
        ITEST_PG_DIR="$pg_env" COFFER_BIN="$dir/coffer" python3 "$root/tests/integration/run.py" >"$log" 2>&1
        grep -v '^RESULT ' "$log" | sed "s/^  integration /  integration${pg_env:+-pg} /"
        count_result "$log" "integration ($backend)"
        failed_lines "$log" "$name $backend "
    done

    # The Node suites, once each: the Infisical SDK with a build without sanitizers (it exercises the same server
    # code as the integration suites), the JWT suite with real tokens with the sanitizer build (it feeds hostile
    # tokens to the verifier).
    for suite in compat openapi jose browser; do
        case $suite in
            compat) [ -z "$kind" ] && [ $compat_done -eq 0 ] || continue; compat_done=1 ;;
            openapi) [ -z "$kind" ] && [ $openapi_done -eq 0 ] || continue; openapi_done=1 ;;
            browser) [ -z "$kind" ] && [ $browser_done -eq 0 ] || continue; browser_done=1 ;;
            jose) [ -n "$kind" ] && [ $jose_done -eq 0 ] || continue; jose_done=1 ;;
        esac
        log="$tmp/$name-$suite.log"
        COFFER_BIN="$dir/coffer" python3 "$root/tests/$suite/run.py" >"$log" 2>&1
        grep -v '^RESULT ' "$log"
        count_result "$log" "$suite"
        failed_lines "$log" "$name "
    done
done

if [ -s "$recap" ]; then
    echo "== what failed"
    cat "$recap"
fi
summary="$passed passed, $failed failed"
if [ "$skipped" -gt 0 ]; then
    summary="$summary, $skipped skipped"
fi
echo "$summary"
[ "$failed" -eq 0 ]
