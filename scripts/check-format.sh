#!/bin/sh
# The clang-format check of `make check`: every tracked C file of src/ (and the C++ bridge, src/*.cc), tests/unit/, bench/ and fuzz/
# must already be formatted as .clang-format says (what clang-format --dry-run -Werror checks). Prints each
# difference and ends with one line; exits 1 when a file differs. `make format` rewrites the files.
# Usage: sh scripts/check-format.sh [FILE...] (default: every tracked C file of those folders)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
    echo "check-format: $CLANG_FORMAT not found (Debian: apt-get install clang-format)" >&2
    exit 2
fi
if [ $# -eq 0 ]; then
    # shellcheck disable=SC2046 # one word per tracked path (none has a space)
    set -- $(git ls-files 'src/*.[ch]' 'src/*.cc' 'tests/unit/*.[ch]' 'bench/*.c' 'fuzz/*.c')
fi
bad=0
for f in "$@"; do
    n=$("$CLANG_FORMAT" --dry-run "$f" 2>&1 | grep -c -E '(warning|error):')
    if [ "$n" -gt 0 ]; then
        bad=$((bad + 1))
        echo "  $f: $n difference(s)"
    fi
done
if [ "$bad" -gt 0 ]; then
    echo "check-format: $bad of $# files differ from .clang-format (make format fixes them;" \
        "clang-format --dry-run FILE shows where)"
    exit 1
fi
echo "check-format: $# files formatted"
