#!/usr/bin/env bash
# Kafka in the secure docker-compose profile (docker-compose.secure.yml).
#
# On the first start the storage is formatted with every component's SCRAM login, read from
# /run/clicklib/kafka-users.properties (`clicklib stack compose-secrets` writes it): the image's
# own start script formats without them, and the broker cannot log in to itself without admin's.
# The formatter takes them on its command line only: for the seconds it runs, other users of
# the machine could read them (as with the local stack's admin login, see clicklib/stack/services.py).
# Then the image's start script runs as usual; it finds the storage formatted and goes on.
set -euo pipefail

USERS="${USERS:-/run/clicklib/kafka-users.properties}"
# The image's paths; the tests run this script outside the image with their own.
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
IMAGE_RUN="${IMAGE_RUN:-/etc/kafka/docker/run}"
MECHANISM=SCRAM-SHA-256
# What formatting reads of the broker's settings; each one comes from its KAFKA_* variable
# (KAFKA_NODE_ID -> node.id), the variables the image turns into its own server.properties.
FORMAT_SETTINGS=(
  NODE_ID PROCESS_ROLES CONTROLLER_QUORUM_VOTERS CONTROLLER_LISTENER_NAMES LISTENERS
  ADVERTISED_LISTENERS LISTENER_SECURITY_PROTOCOL_MAP INTER_BROKER_LISTENER_NAME LOG_DIRS
  SASL_ENABLED_MECHANISMS SASL_MECHANISM_INTER_BROKER_PROTOCOL SASL_MECHANISM_CONTROLLER_PROTOCOL
  LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS
)

# The broker settings formatting needs, as server.properties lines.
server_properties() {
  local name variable
  for name in "${FORMAT_SETTINGS[@]}"; do
    variable="KAFKA_$name"
    if [[ -n "${!variable:-}" ]]; then
      name="${name,,}"
      echo "${name//_/.}=${!variable}"
    fi
  done
}

# One --add-scram argument pair per line of the users file (name=password), NUL-separated.
scram_arguments() {
  local line
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" == *=* ]] || continue
    printf '%s\0%s\0' --add-scram "$MECHANISM=[name=${line%%=*},password=${line#*=}]"
  done < "$USERS"
}

main() {
  if [[ ! -r "$USERS" ]]; then
    echo "kafka: $USERS is missing; run \`CLICKLIB_SECURE=1 clicklib stack compose-secrets\` on the host first" >&2
    exit 1
  fi
  local data="${KAFKA_LOG_DIRS%%,*}"
  if [[ ! -f "$data/meta.properties" ]]; then
    local config arguments scram=()
    config="$(mktemp)"
    server_properties > "$config"
    arguments="$(mktemp)"
    scram_arguments > "$arguments"
    while IFS= read -r -d '' argument; do scram+=("$argument"); done < "$arguments"
    rm -f "$arguments"
    if [[ ${#scram[@]} -eq 0 ]]; then
      echo "kafka: $USERS holds no login; run \`CLICKLIB_SECURE=1 clicklib stack compose-secrets\` again" >&2
      exit 1
    fi
    echo "===> Formatting $data with the logins in $USERS"
    "$KAFKA_HOME/bin/kafka-storage.sh" format --config "$config" --cluster-id="$CLUSTER_ID" "${scram[@]}" > /dev/null
    rm -f "$config"
  fi
  exec "$IMAGE_RUN"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
