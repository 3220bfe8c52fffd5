#!/bin/sh
# A throwaway PostgreSQL 15 cluster for the tests (Debian package `postgresql`):
#
#   scripts/pg.sh start DIR   creates the cluster under DIR (which must not exist yet), starts it listening on a
#                             unix socket in DIR only (no TCP port), and prints the URI prefix of its databases:
#                             postgresql:///?host=DIR&port=PORT&user=coffer  (the tests add a database name)
#   scripts/pg.sh stop DIR    stops it and removes DIR
#   scripts/pg.sh createdb DIR NAME, scripts/pg.sh dropdb DIR NAME
#   scripts/pg.sh halt DIR / resume DIR   stops the server (fast shutdown, connections cut) and starts it again,
#                             keeping its data: for tests of a database that goes away for a while
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the unprivileged user `postgres` (created by the
# Debian package) or `nobody`. Durability settings are off (fsync, synchronous_commit): the cluster lives only as
# long as a test run, and the server under test is what gets killed, not PostgreSQL. PG_DURABLE=1 turns them on
# (the store benchmark uses it, so that PostgreSQL's commits flush to disk as SQLite's do).
set -eu

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "pg.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 1
fi
port=5433

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        owner=postgres
        id -u postgres >/dev/null 2>&1 || owner=nobody
        runuser -u "$owner" -- "$@"
    else
        "$@"
    fi
}

start_server() {
    durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${PG_DURABLE:-0}" != 1 ] || durability="-c fsync=on -c synchronous_commit=on"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port $durability \
            -c max_connections=300 \
            -c shared_buffers=64MB -c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=64MB \
            -c min_wal_size=32MB" start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
}

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || { echo "usage: pg.sh start|stop|halt|resume|createdb|dropdb DIR [NAME]" >&2; exit 2; }

case $cmd in
start)
    [ ! -e "$dir" ] || { echo "pg.sh: $dir exists" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown "$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)" "$dir"
    chmod 700 "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -U coffer -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    start_server
    echo "postgresql:///?host=$dir&port=$port&user=coffer"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
createdb)
    # FILE_COPY: a new database is a copy of the template's files, not a stream of WAL
    as_owner "$bindir/createdb" -h "$dir" -p $port -U coffer --strategy=file_copy "$3"
    ;;
halt)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    start_server
    ;;
dropdb)
    as_owner "$bindir/dropdb" -h "$dir" -p $port -U coffer --force --if-exists "$3"
    ;;
*)
    echo "usage: pg.sh start|stop|halt|resume|createdb|dropdb DIR [NAME]" >&2
    exit 2
    ;;
esac
