#!/usr/bin/env bash
# Once Cassandra is up in the secure docker-compose profile: clicklib's roles instead of the
# node's default superuser (which takes only the bootstrap password, never `cassandra`), with the
# passwords in /run/clicklib/cassandra-roles.properties. May run on every up.
set -euo pipefail

ROLES=/run/clicklib/cassandra-roles.properties
# The only password the default superuser takes (BootstrapPasswordAuthenticator).
BOOTSTRAP=/run/clicklib/cassandra-bootstrap-password
HOST="${CASSANDRA_HOST:-cassandra}"

password() { sed -n "s/^$1=//p" "$ROLES"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# cqlsh as ROLE with PASSWORD, the login from a private cqlshrc, not the command line (where
# `ps` would show it); no terminal, so it can never stop to ask for a password.
cql() {
  local role="$1" secret="$2"
  shift 2
  (umask 077 && printf '[authentication]\nusername = %s\npassword = %s\n' "$role" "$secret" > "$work/cqlshrc")
  cqlsh --cqlshrc "$work/cqlshrc" --request-timeout 30 "$@" "$HOST" 9042 < /dev/null
}

admin="$(password admin)"
if ! cql clicklib_admin "$admin" -e "SELECT role FROM system_auth.roles LIMIT 1" > /dev/null 2>&1; then
  # The first start: Cassandra makes its default superuser a moment after it answers.
  for attempt in $(seq 1 30); do
    if printf "CREATE ROLE IF NOT EXISTS clicklib_admin WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = '%s';\n" \
      "$admin" > "$work/admin.cql" && cql cassandra "$(cat "$BOOTSTRAP")" -f "$work/admin.cql" > /dev/null 2>&1; then
      break
    fi
    if [[ $attempt -eq 30 ]]; then
      echo "cassandra: neither clicklib_admin (password in $ROLES) nor the default superuser can log in;" \
        "if the node was set up with other passwords, remove its volume (docker compose down -v)" >&2
      exit 1
    fi
    sleep 2
  done
fi

{
  echo "DROP ROLE IF EXISTS cassandra;"
  for role in sink reader; do
    printf "CREATE ROLE IF NOT EXISTS clicklib_%s WITH LOGIN = true AND PASSWORD = '%s';\n" "$role" "$(password $role)"
    printf "ALTER ROLE clicklib_%s WITH PASSWORD = '%s';\n" "$role" "$(password $role)"
  done
} > "$work/roles.cql"
cql clicklib_admin "$admin" -f "$work/roles.cql"
echo "cassandra: roles clicklib_admin, clicklib_sink and clicklib_reader in place; the default superuser is gone"
