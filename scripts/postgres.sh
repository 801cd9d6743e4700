#!/usr/bin/env bash
# A throwaway PostgreSQL cluster in a folder of its own, for the class room's tests and trials.
#
#   scripts/postgres.sh start DIR [PORT]   initdb (first time) and start it on 127.0.0.1:PORT (default: a free port)
#   scripts/postgres.sh url DIR [DB]       print its SQLAlchemy URL (database DB, default postgres)
#   scripts/postgres.sh stop DIR           stop it (fast shutdown); rm -rf DIR removes it for good
#   scripts/postgres.sh check              say which initdb/pg_ctl it would use; status 1 when none
#
# The binaries come from PATH or Debian's /usr/lib/postgresql/<version>/bin (package postgresql).
# PostgreSQL refuses to run as root, so as root the cluster runs as the user $PG_USER (default:
# postgres if it exists, else nobody) via runuser, and DIR is handed to that user; DIR's parent
# folders must let that user through (e.g. mktemp -d under /tmp, not under a 0700 home).
# Trust authentication, listening on 127.0.0.1 only: for tests, never for real data.
set -euo pipefail

find_bin() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return; fi
  done
  return 1
}

as_owner() {  # run a command as the cluster's owner
  if [ "$(id -u)" = 0 ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

free_port() {
  "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd=${1:-}
if ! initdb=$(find_bin initdb) || ! pg_ctl=$(find_bin pg_ctl); then
  echo "PostgreSQL is not installed: no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
  exit 1
fi
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
  owner=${PG_USER:-$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)}
fi

case "$cmd" in
  check)
    echo "initdb: $initdb"; echo "pg_ctl: $pg_ctl"; echo "runs as: $owner"
    ;;
  start)
    dir=${2:?usage: postgres.sh start DIR [PORT]}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown "$owner" "$dir" && chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$initdb" -D "$dir/data" -U knn --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    port=${3:-$(cat "$dir/port" 2>/dev/null || free_port)}
    echo "$port" >"$dir/port"
    # max_connections: the tests run 4 processes x 30 threads against one cluster
    as_owner "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$dir' -c max_connections=200" start >/dev/null \
      || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    echo "postgresql+psycopg://knn@127.0.0.1:$port/postgres"
    ;;
  url)
    dir=${2:?usage: postgres.sh url DIR [DB]}
    echo "postgresql+psycopg://knn@127.0.0.1:$(cat "$dir/port")/${3:-postgres}"
    ;;
  stop)
    dir=${2:?usage: postgres.sh stop DIR}
    as_owner "$pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *)
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
