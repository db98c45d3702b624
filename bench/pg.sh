#!/usr/bin/env bash
# Throwaway PostgreSQL on loopback for the backend tests: source this file, then `pg_start` and
# `pg_stop`. Installs Debian's server if it is missing; runs it as the postgres user (the server
# refuses root) with its data under a temporary folder; exports OSE_PG_URL for the tests.
pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$dir" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$dir"
}

# Run a command as the postgres user when we are root (the server will not run as root).
pg_as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_start() {
  local bin port
  bin=$(pg_bin)
  PG_TMP=$(mktemp -d /tmp/ose-pg.XXXXXX)
  chmod 755 "$PG_TMP"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$PG_TMP"; fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_as "$bin/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; return 1; }
  # Loopback only, no Unix socket outside our folder; small settings for a 2-core machine.
  pg_as "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TMP -c fsync=off -c synchronous_commit=off" start >/dev/null \
    || { cat "$PG_TMP/server.log" >&2; return 1; }
  pg_as "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE ose LOGIN PASSWORD 'ose'" -c "CREATE DATABASE ose OWNER ose" >/dev/null
  PG_BIN=$bin
  export OSE_PG_URL="postgres://ose:ose@127.0.0.1:$port/ose"
  echo "$("$bin/postgres" --version) on 127.0.0.1:$port (data in $PG_TMP/data)"
}

pg_stop() {
  if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ]; then
    pg_as "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
  PG_TMP=
}
