#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]
#
# Runs CMD with LPSEC_TEST_DATABASE_URL pointing at a PostgreSQL server.
# If the variable is already set, CMD runs against that server unchanged.
# Otherwise a throwaway cluster is created in a temp dir, listening only on
# 127.0.0.1 at a free port and on a unix socket inside that dir, and is
# stopped and removed when CMD ends: on success, failure or interruption.
#
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# "postgres" user (runuser). If initdb is missing, the Debian "postgresql"
# package is installed (needs root and apt).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

if [ -n "${LPSEC_TEST_DATABASE_URL:-}" ]; then
  exec "$@"
fi

log() { echo "with-postgres: $*" >&2; }

find_pg_bin() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

if ! PGBIN=$(find_pg_bin); then
  log "initdb not found; installing the Debian postgresql package"
  if [ "$(id -u)" -ne 0 ]; then
    log "not root: install PostgreSQL (apt-get install postgresql) or set LPSEC_TEST_DATABASE_URL"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(find_pg_bin) || { log "initdb still missing after install"; exit 1; }
fi

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  as_owner=(runuser -u postgres --)
fi

free_port() {
  # Ask the kernel for a free loopback port. A race with another process
  # taking it before postgres binds is possible but harmless: startup then
  # fails loudly and the caller can rerun.
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
  else
    echo $((20000 + RANDOM % 20000))
  fi
}

PGTMP=$(mktemp -d "${TMPDIR:-/tmp}/lpsec-pg.XXXXXX")
chmod 0700 "$PGTMP"
if [ "${#as_owner[@]}" -gt 0 ]; then
  chown postgres: "$PGTMP"
fi
PGDATA_DIR="$PGTMP/data"
PGPORT_CHOSEN=$(free_port)
started=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ "$started" -eq 1 ]; then
    "${as_owner[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PGTMP"
  exit "$rc"
}
trap cleanup EXIT
child=0
on_signal() {
  # Run CMD in the background so a signal reaches this trap at once; pass
  # it on to CMD, then the EXIT trap stops the cluster.
  if [ "$child" -ne 0 ]; then kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

log "starting a throwaway PostgreSQL cluster ($PGBIN) in $PGTMP on 127.0.0.1:$PGPORT_CHOSEN"
"${as_owner[@]}" "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres -A trust -E UTF8 --no-locale >"$PGTMP/initdb.log" 2>&1 || {
  cat "$PGTMP/initdb.log" >&2
  exit 1
}
# fsync off and friends: a throwaway cluster for tests, never for data.
"${as_owner[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGTMP/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT_CHOSEN -k $PGTMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null || {
  cat "$PGTMP/server.log" >&2
  exit 1
}
started=1

export LPSEC_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT_CHOSEN/postgres?sslmode=disable"
log "LPSEC_TEST_DATABASE_URL=$LPSEC_TEST_DATABASE_URL"
set +e
"$@" &
child=$!
wait "$child"
rc=$?
set -e
exit "$rc"
