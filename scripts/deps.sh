#!/bin/sh
# Installs the Debian 12 packages Coffer needs to build (Node.js and npm for the dashboard), test (Chromium
# for the dashboard's browser tests), check (clang-format and libtsan2 for `make check`), package (debhelper)
# and benchmark. GPGME encrypts unseal shares to OpenPGP keys (crypto/sharewrap.c); gnupg and age are the
# tools the share holders decrypt with, run by the tests.
# Idempotent: when every package is already present it does nothing; otherwise it uses apt-get (as root) or
# tells you what to install.
set -eu

PACKAGES="build-essential meson ninja-build pkg-config python3 \
libmicrohttpd-dev libjansson-dev libsodium-dev libsqlite3-dev libpq-dev postgresql libcurl4-openssl-dev \
libmariadb-dev mariadb-server \
libcriterion-dev libcjose-dev libssl-dev zlib1g-dev liboath-dev libgfshare-dev openssl curl wrk hyperfine clang libclang-rt-14-dev \
clang-format libtsan2 zsh man-db chromium \
libhyperscan-dev libpcre2-dev libgit2-dev libyaml-dev libtomlplusplus-dev ripgrep git debhelper dpkg-dev fakeroot \
libp11-kit-dev softhsm2 opensc \
libgpgme-dev gnupg age"
# The web dashboard is built with Node.js and npm (web/, from its lock file) and tested in Debian's Chromium
# (tests/browser). A machine that already has a Node.js of its own (NodeSource's nodejs bundles npm, and
# Debian's npm package would conflict with it) keeps it; otherwise Debian's nodejs and npm are installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES="$PACKAGES nodejs npm"
fi

# The Kubernetes operator's tests check the objects they make with kubectl (Debian's kubernetes-client). A
# machine that already has a kubectl of its own (e.g. the Google Cloud SDK's kubectl package, which would
# conflict with Debian's) keeps it.
if ! command -v kubectl >/dev/null 2>&1; then
    PACKAGES="$PACKAGES kubernetes-client"
fi

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends $missing
    }
elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get install -y --no-install-recommends $missing
else
    echo "deps.sh: missing packages:$missing (run as root: apt-get install$missing)" >&2
    exit 1
fi
