#!/bin/sh
# A throwaway MariaDB server for the tests (Debian package `mariadb-server`):
#
#   scripts/mariadb.sh start DIR   creates a data directory under DIR (which must not exist yet), starts the
#                                  server listening on the Unix socket DIR/mysqld.sock only (no TCP port), and
#                                  prints that socket's path. Its administrator is root@localhost with no password
#                                  (reachable through the socket only); there are no anonymous users and no test
#                                  database, so that a login the tests create is the only one that can match.
#   scripts/mariadb.sh stop DIR    stops it and removes DIR
#
# With MARIADB_TLS_DIR=T (a directory holding ca.pem, server-cert.pem and server-key.pem, readable by the server's
# user) the server also offers TLS, on the socket too, with that certificate.
#
# MariaDB refuses to run as root: as root the server runs as the unprivileged user `mysql` (created by the Debian
# package) or `nobody`. Durability is off (no doublewrite, the log flushed once a second, no binary log): the
# server lives only as long as a test run. No option file is read (--no-defaults), so the machine's own MariaDB
# configuration, if any, plays no part.
set -eu

sbin=/usr/sbin/mariadbd
installdb=$(command -v mariadb-install-db || command -v mysql_install_db || true)
if [ ! -x "$sbin" ] || [ -z "$installdb" ]; then
    echo "mariadb.sh: MariaDB server binaries not found (apt-get install mariadb-server)" >&2
    exit 1
fi

owner=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
    owner=mysql
    id -u mysql >/dev/null 2>&1 || owner=nobody
fi

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$owner" -- "$@"
    else
        "$@"
    fi
}

client() {
    mariadb --no-defaults --socket="$dir/mysqld.sock" -u root "$@"
}

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || { echo "usage: mariadb.sh start|stop DIR" >&2; exit 2; }

case $cmd in
start)
    [ ! -e "$dir" ] || { echo "mariadb.sh: $dir exists" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown "$owner" "$dir"
    chmod 755 "$dir"
    as_owner "$installdb" --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve --user="$owner" >"$dir/install.log" 2>&1 || {
        cat "$dir/install.log" >&2
        exit 1
    }
    tls=""
    if [ -n "${MARIADB_TLS_DIR:-}" ]; then
        tls="--ssl-ca=$MARIADB_TLS_DIR/ca.pem --ssl-cert=$MARIADB_TLS_DIR/server-cert.pem"
        tls="$tls --ssl-key=$MARIADB_TLS_DIR/server-key.pem"
    fi
    as_owner "$sbin" --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" --skip-networking \
        --pid-file="$dir/mysqld.pid" --log-error="$dir/server.log" --skip-name-resolve --skip-log-bin \
        --performance-schema=OFF --innodb-buffer-pool-size=16M --innodb-log-file-size=16M \
        --innodb-doublewrite=0 --innodb-flush-log-at-trx-commit=0 --max-connections=100 $tls \
        >/dev/null 2>&1 </dev/null &
    tries=0
    until client -e 'SELECT 1' >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -ge 300 ] || { [ -f "$dir/server.log" ] && grep -q '\[ERROR\] Aborting' "$dir/server.log"; }; then
            echo "mariadb.sh: the server did not start:" >&2
            cat "$dir/server.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
    # the anonymous accounts mariadb-install-db may create would shadow 'user'@'%' for local logins
    client -e "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES" >/dev/null
    echo "$dir/mysqld.sock"
    ;;
stop)
    if [ -f "$dir/mysqld.pid" ]; then
        pid=$(cat "$dir/mysqld.pid")
        kill "$pid" 2>/dev/null || true
        tries=0
        while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 100 ]; do
            tries=$((tries + 1))
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: mariadb.sh start|stop DIR" >&2
    exit 2
    ;;
esac
