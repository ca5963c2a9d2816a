# Sourced by .ci/run under CI: install PostgreSQL from Debian's packages if needed, start a
# throw-away server on a free local port, create a database, and export its URL as
# STRATA_TEST_POSTGRES_URL for the search tests. The server stops when .ci/run exits.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(pg_bin)" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN="$(pg_bin)"
PG_DIR="$(mktemp -d /tmp/strata-pg.XXXXXX)"
PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
if [ "$(id -u)" = 0 ]; then
  chown postgres "$PG_DIR"
  AS_PG=(runuser -u postgres --)  # the server refuses to run as root
else
  AS_PG=()
fi
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >"$PG_DIR/initdb.log"
"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
  -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null
stop_postgres() {
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || true
  rm -rf "$PG_DIR"
}
trap stop_postgres EXIT
"${AS_PG[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres strata_test
export STRATA_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PG_PORT/strata_test"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') for the tests at $STRATA_TEST_POSTGRES_URL"
