#!/usr/bin/env bash
# A PostgreSQL server for the tests, as CI needs it on a fresh Debian machine (as root):
# installs Debian's postgresql when missing, runs a dedicated cluster "dev8test" listening on
# 127.0.0.1 only, makes a role that may create and force-drop databases (each test makes its own),
# and prints the database URL to use as DEV8_TEST_DATABASE_URL. Idempotent: a second run only
# makes sure the cluster is running and prints the URL again.
#   DEV8_TEST_PG_PORT   port of the cluster (default 54329)
set -euo pipefail
port=${DEV8_TEST_PG_PORT:-54329}
cluster=dev8test

if [ "$(id -u)" != 0 ]; then
    echo "error: scripts/postgres.sh runs as root (it installs and starts PostgreSQL)" >&2
    exit 1
fi
if ! command -v pg_createcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1 "/" $2}' | grep -qx "$version/$cluster"; then
    pg_createcluster "$version" "$cluster" -p "$port" >&2
    # Loopback only; no fsync: a test database is thrown away, and the machines are slow.
    printf "%s\n" "listen_addresses = '127.0.0.1'" "fsync = off" "max_connections = 200" \
        >"/etc/postgresql/$version/$cluster/conf.d/dev8test.conf"
fi
status=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $4}')
if [ "$status" != online ]; then
    pg_ctlcluster "$version" "$cluster" start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $3}')

secret=/var/lib/postgresql/$version/$cluster/dev8test.password
if [ ! -s "$secret" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$secret")
fi
password=$(cat "$secret")
psql_admin() { su postgres -c "psql -q -p $port -v ON_ERROR_STOP=1 $*" >&2; }
for _ in $(seq 1 50); do
    su postgres -c "pg_isready -q -p $port" && break
    sleep 0.2
done
psql_admin "-c \"DO \\\$\\\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dev8test') THEN
    CREATE ROLE dev8test LOGIN CREATEDB;
  END IF;
END \\\$\\\$\""
psql_admin "-c \"ALTER ROLE dev8test PASSWORD '$password'\""
# DROP DATABASE ... WITH (FORCE) at a test's end also ends the autovacuum worker that may be in
# that database, which a role needs pg_signal_backend for.
psql_admin "-c \"GRANT pg_signal_backend TO dev8test\""
if ! su postgres -c "psql -p $port -tAc \"SELECT 1 FROM pg_database WHERE datname = 'dev8test'\"" | grep -q 1; then
    psql_admin "-c \"CREATE DATABASE dev8test OWNER dev8test\""
fi
echo "postgresql+psycopg://dev8test:$password@127.0.0.1:$port/dev8test"
