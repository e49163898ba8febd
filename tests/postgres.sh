#!/usr/bin/env bash
# A private, throwaway PostgreSQL cluster for the store tests (Debian's `postgresql` package).
#   tests/postgres.sh start DIR   initdb + pg_ctl start in DIR; prints the DSN
#   tests/postgres.sh stop DIR    stops it (the caller removes DIR)
# As root, the server runs as the package's `postgres` user (initdb refuses root).
set -euo pipefail
command=$1 dir=$2
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
PATH="${bindir:+$bindir:}$PATH"
# From /: the postgres user may not enter the caller's (private) working directory.
as_owner() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
case $command in
start)
    command -v initdb >/dev/null || { echo "initdb not found: apt-get install postgresql" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_owner initdb -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner pg_ctl -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner pg_ctl -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2; exit 2
    ;;
esac
