#!/usr/bin/env bash
# Once Kafka is up in the secure docker-compose profile: the Connect worker's access rules
# (its own topics and group), one kafka-acls.sh call per line of /run/clicklib/kafka-acls.txt,
# logged in as admin. Adding a rule that exists changes nothing, so this may run on every up.
set -euo pipefail

RULES=/run/clicklib/kafka-acls.txt
BOOTSTRAP="${BOOTSTRAP:-kafka:29092}"

while read -r -a rule; do
  [[ ${#rule[@]} -eq 0 ]] && continue
  /opt/kafka/bin/kafka-acls.sh --bootstrap-server "$BOOTSTRAP" \
    --command-config /run/clicklib/kafka-admin.properties --add "${rule[@]}" > /dev/null
done < "$RULES"
echo "kafka: $(grep -c . "$RULES") access rules in place for the Connect worker"
