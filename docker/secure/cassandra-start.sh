#!/usr/bin/env bash
# Cassandra in the secure docker-compose profile: every session logs in with a role's password,
# and a role may do only what it was granted. Then the image's own entry point runs.
set -euo pipefail

config=/etc/cassandra/cassandra.yaml
sed -i \
  -e 's/AllowAllAuthenticator/PasswordAuthenticator/' \
  -e 's/AllowAllAuthorizer/CassandraAuthorizer/' \
  "$config"
# Checked on the settings themselves, not the comments that also name these classes.
if ! grep -Eq '^[^#]*(authenticator|class_name)[^#]*PasswordAuthenticator' "$config" \
  || ! grep -Eq '^[^#]*(authorizer|class_name)[^#]*CassandraAuthorizer' "$config"; then
  echo "cassandra: $config names no authenticator or authorizer to replace; the image changed" >&2
  exit 1
fi
exec docker-entrypoint.sh "$@"
