#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server (Debian's postgresql package): its own cluster in a
# temp dir, a unix socket there and a 127.0.0.1 port, stopped afterwards. The command sees
# WARDEN_TEST_PG_URL (superuser on database postgres) and PG_PORT / PG_SOCKET_DIR.
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "with-postgres: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/warden-pg-XXXXXX)
chown postgres:postgres "$DIR"
PORT=${PG_PORT:-$(( 20000 + RANDOM % 20000 ))}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust >/dev/null
# PG_EXTRA_NET=10.77.0.1/24 also listens on that address and trusts its subnet (test-only network namespaces).
LISTEN=127.0.0.1
if [ -n "${PG_EXTRA_NET:-}" ]; then
  LISTEN="127.0.0.1,${PG_EXTRA_NET%/*}"
  echo "host all all $(python3 -c "import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1], strict=False))" "$PG_EXTRA_NET") trust" >>"$DIR/data/pg_hba.conf"
fi
as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -o "-k $DIR -p $PORT -c listen_addresses=$LISTEN -c fsync=on -c max_connections=300" start >/dev/null
stop() { as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap stop EXIT
export PG_PORT=$PORT PG_SOCKET_DIR=$DIR
export WARDEN_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
"$@"
