#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for archiver's tests and benchmarks (no systemd,
# no cluster in /etc): initdb into one directory, trust authentication, durability off.
#
#   scripts/pg.sh start     initdb if needed, start, create database archiver
#   scripts/pg.sh stop      fast shutdown, keep the data
#   scripts/pg.sh clean     immediate shutdown and delete the directory
#   scripts/pg.sh env       print ARCHIVER_TEST_PG (a URL for the archiver database)
#
# Settings: PG_DIR (default /tmp/archiver-pg; the postgres user must reach it, so not below
# pytest's 0700 temporary folders) and PG_PORT (default 15432). As root, initdb and pg_ctl
# run as the postgres user (they refuse root).
set -euo pipefail

DIR=${PG_DIR:-/tmp/archiver-pg}
PORT=${PG_PORT:-15432}
BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -n "$BIN" ] && [ -x "$BIN/initdb" ] || BIN=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")

die() { echo "pg: $*" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  local pid state
  [ -f "$DIR/data/postmaster.pid" ] || return 1
  pid=$(head -1 "$DIR/data/postmaster.pid")
  [ -r "/proc/$pid/stat" ] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [ "$state" != Z ]
}

start() {
  [ -x "$BIN/initdb" ] || die "PostgreSQL is not installed (initdb missing): apt-get install postgresql"
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    mkdir -p "$DIR"
    touch "$DIR/.made-by-archiver"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    as_pg "$BIN/initdb" -D "$DIR/data" -U archiver --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync \
      >"$DIR/initdb.log" 2>&1 || die "initdb failed (see $DIR/initdb.log)"
    cat >>"$DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
max_connections = 200
EOF
  fi
  if ! running; then
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 start >/dev/null ||
      die "server did not start: $(grep -E 'FATAL|ERROR' "$DIR/server.log" | tail -1)"
  fi
  as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U archiver -d postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = 'archiver'" | grep -q 1 ||
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U archiver archiver
  echo "pg: PostgreSQL on 127.0.0.1:$PORT" >&2
}

stop() {
  running || return 0
  kill -INT "$(head -1 "$DIR/data/postmaster.pid")" 2>/dev/null || true
  for _ in $(seq 100); do running || return 0; sleep 0.05; done
}

clean() {
  [ -e "$DIR" ] || return 0
  [ -f "$DIR/.made-by-archiver" ] || die "refusing to delete $DIR: not made by this script"
  if running; then
    kill -QUIT "$(head -1 "$DIR/data/postmaster.pid")" 2>/dev/null || true
    for _ in $(seq 100); do running || break; sleep 0.05; done
  fi
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  clean) clean ;;
  env) echo "export ARCHIVER_TEST_PG=postgresql://archiver@127.0.0.1:$PORT/archiver" ;;
  *) echo "usage: $0 start|stop|clean|env" >&2; exit 2 ;;
esac
