#!/usr/bin/env bash
# Starts Debian's PostgreSQL (installing the server if missing) with a database for the CMDB
# tests, and prints the URL to test against (tests/activities/test_cmdb_backends.py). Runs as
# root (CI), and is safe to run again.
set -euo pipefail
# Only the URL goes to stdout: the caller captures it. Everything the tools print (pg_ctlcluster
# says "Removed stale pid file." after an unclean stop, for one) goes to stderr.
# Nothing that may leave a server behind keeps fd 3, or the caller's $(...) waits for that server.
exec 3>&1 1>&2
[ "$(id -u)" -eq 0 ] || { echo "postgres.sh: run as root" >&2; exit 1; }
servers() { ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V; }
if [ -z "$(servers)" ]; then
  { DEBIAN_FRONTEND=noninteractive apt-get -qq update && \
    DEBIAN_FRONTEND=noninteractive apt-get -qq install -y postgresql; } >/dev/null 3>&-  # its postinst may start a server
fi
newest=$(servers | tail -1 | cut -d/ -f5)
# An online cluster, else one of the newest server version (created if there is none).
cluster=$(pg_lsclusters -h | awk '$4 ~ /^online/ {print; exit}')
if [ -z "$cluster" ]; then
  cluster=$(pg_lsclusters -h | awk -v v="$newest" '$1 == v {print; exit}')
  if [ -z "$cluster" ]; then
    pg_createcluster "$newest" main >/dev/null 3>&-
    cluster=$(pg_lsclusters -h | awk -v v="$newest" '$1 == v {print; exit}')
  fi
  read -r version name _ <<<"$cluster"
  pg_ctlcluster "$version" "$name" start 3>&-  # the server must not hold the caller's pipe
fi
read -r version name port _ <<<"$cluster"
as_postgres() { runuser -u postgres -- "$@"; }
as_postgres psql -p "$port" -qAtc "SELECT 1 FROM pg_roles WHERE rolname = 'itsm'" | grep -q 1 ||
  as_postgres psql -p "$port" -qc "CREATE ROLE itsm LOGIN PASSWORD 'itsm'"
as_postgres psql -p "$port" -qAtc "SELECT 1 FROM pg_database WHERE datname = 'itsm_test'" | grep -q 1 ||
  as_postgres createdb -p "$port" -O itsm itsm_test
echo "postgresql://itsm:itsm@127.0.0.1:$port/itsm_test" >&3
