# Sourced by .ci/run: a throwaway PostgreSQL server on 127.0.0.1 for the store tests.
#
# ponder_pg_start installs Debian's postgresql package if no server binaries are
# found (as root, with apt-get), creates a cluster in a temp dir, starts it on a
# free port (unix socket in the same dir, fsync off), creates the database
# ponder_test and exports PONDER_TEST_DATABASE_URL. It never fails CI: on any
# problem it says why and returns 1, and the PostgreSQL tests skip.
# ponder_pg_stop stops the server and removes the directory.

PONDER_PG_DIR=""
PONDER_PG_BIN=""

_ponder_pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

_ponder_pg_as() {  # run a server command as the postgres user when we are root
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ponder_pg_start() {
  PONDER_PG_BIN=$(_ponder_pg_bin)
  if [ -z "$PONDER_PG_BIN" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "postgres: installing Debian's postgresql package"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/tmp/ponder-pg-apt.log 2>&1; then
      apt-get update -q >>/tmp/ponder-pg-apt.log 2>&1
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >>/tmp/ponder-pg-apt.log 2>&1
    fi
    PONDER_PG_BIN=$(_ponder_pg_bin)
  fi
  if [ -z "$PONDER_PG_BIN" ] || [ ! -x "$PONDER_PG_BIN/initdb" ]; then
    echo "postgres: no server binaries (see /tmp/ponder-pg-apt.log if it exists)"
    return 1
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "postgres: running as root but there is no postgres user"
    return 1
  fi
  PONDER_PG_DIR=$(mktemp -d /tmp/ponder-pg.XXXXXX) || return 1
  [ "$(id -u)" -eq 0 ] && chown postgres "$PONDER_PG_DIR"
  local port
  port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
  if ! _ponder_pg_as "$PONDER_PG_BIN/initdb" -D "$PONDER_PG_DIR/data" -U postgres -A trust \
      --no-sync >"$PONDER_PG_DIR/initdb.log" 2>&1; then
    echo "postgres: initdb failed: $(tail -n 3 "$PONDER_PG_DIR/initdb.log")"
    return 1
  fi
  if ! _ponder_pg_as "$PONDER_PG_BIN/pg_ctl" -D "$PONDER_PG_DIR/data" -l "$PONDER_PG_DIR/server.log" \
      -w -t 60 -o "-c listen_addresses=127.0.0.1 -p $port -k $PONDER_PG_DIR -c fsync=off" \
      start >/dev/null; then
    echo "postgres: the server did not start: $(tail -n 3 "$PONDER_PG_DIR/server.log")"
    return 1
  fi
  if ! "$PONDER_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres ponder_test; then
    echo "postgres: createdb failed"
    return 1
  fi
  export PONDER_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$port/ponder_test"
  echo "postgres: serving $PONDER_TEST_DATABASE_URL"
}

ponder_pg_stop() {
  if [ -n "$PONDER_PG_DIR" ] && [ -d "$PONDER_PG_DIR/data" ]; then
    _ponder_pg_as "$PONDER_PG_BIN/pg_ctl" -D "$PONDER_PG_DIR/data" -m immediate stop \
      >/dev/null 2>&1
  fi
  [ -n "$PONDER_PG_DIR" ] && rm -rf "$PONDER_PG_DIR"
  PONDER_PG_DIR=""
}
