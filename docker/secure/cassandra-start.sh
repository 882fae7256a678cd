#!/usr/bin/env bash
# Cassandra in the secure docker-compose profile: every session logs in with a role's password,
# and a role may do only what it was granted. Then the image's own entry point runs.
set -euo pipefail

config=/etc/cassandra/cassandra.yaml
# Cassandra's PasswordAuthenticator, except that the default superuser takes only the bootstrap
# password (-Dclicklib.cassandra.bootstrap-password-file), never its well-known one: the jar
# `clicklib stack resolve` builds (clicklib/stack/poms/cassandra-auth), mounted read-only.
auth_jars=(/opt/clicklib-auth/*.jar)
if [[ ! -f "${auth_jars[0]}" ]]; then
  echo "cassandra: no authenticator jar in /opt/clicklib-auth; run \`clicklib stack resolve\` on the host first" >&2
  exit 1
fi
cp "${auth_jars[@]}" /opt/cassandra/lib/
sed -i \
  -e 's/AllowAllAuthenticator/io.clicklib.cassandra.BootstrapPasswordAuthenticator/' \
  -e 's/AllowAllAuthorizer/CassandraAuthorizer/' \
  "$config"
# Checked on the settings themselves, not the comments that also name these classes.
if ! grep -Eq '^[^#]*(authenticator|class_name)[^#]*BootstrapPasswordAuthenticator' "$config" \
  || ! grep -Eq '^[^#]*(authorizer|class_name)[^#]*CassandraAuthorizer' "$config"; then
  echo "cassandra: $config names no authenticator or authorizer to replace; the image changed" >&2
  exit 1
fi
exec docker-entrypoint.sh "$@"
