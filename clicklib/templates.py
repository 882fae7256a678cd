"""``${name}`` placeholders in the SQL scripts, connector configs and schema, filled from settings.

A topic is named in them by its base name, ``${topic.clickstream_dlq}``, and filled with its
name in the settings' namespace.
"""

from __future__ import annotations

import re

from clicklib import lake
from clicklib.exceptions import TemplateError
from clicklib.schema_registry import TopicSchema, load_schemas
from clicklib.secrets import cassandra_login, kafka_java_options, sink_password_reference
from clicklib.settings import REGISTRY_API_PATH, Settings
from clicklib.topics import TOPICS, topic_name

# The slot of a UTC day one events_by_day partition holds: at 10,000 events a second, 100,000
# rows. Fixed, not a setting: it is part of the table's key, and of every row written.
EVENT_BUCKET_MS = 10_000
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def placeholders(settings: Settings, avro_schemas: tuple[TopicSchema, ...] | None = None) -> dict[str, str]:
    """Every value a script or connector config may name, as text; ``avro_schemas`` are the
    topics' Avro schemas (by default those the package ships)."""
    params = {f"topic.{base}": topic_name(settings, base) for base in TOPICS}
    sink_login = cassandra_login(settings, "sink")
    params.update(
        {
            "namespace": settings.namespace,
            "keyspace": settings.keyspace,
            "bootstrap_servers": settings.flink_bootstrap_servers,
            # How the jobs' Kafka clients log in, without the password: Flink's JVMs read their
            # login from a JAAS file, so no password is in the SQL or the job graphs.
            "kafka_security": "".join(
                f"'properties.{key}' = '{value}', " for key, value in kafka_java_options(settings).items()
            ),
            "cassandra_hosts": settings.connect_cassandra_hosts,
            "cassandra_port": str(settings.cassandra_port),
            "cassandra_datacenter": settings.cassandra_datacenter,
            # The sinks' Cassandra login; the password as a reference the Connect worker resolves
            # from a private file (secrets.sink_password_file), never the password itself.
            "cassandra_sink_username": sink_login[0] if sink_login else "",
            "cassandra_sink_password": sink_password_reference(settings) if sink_login else "",
            "cassandra_ssl_ca": settings.cassandra_ssl_ca,
            "replication_factor": str(settings.replication_factor),
            "watermark_delay_seconds": str(settings.watermark_delay_seconds),
            "idle_timeout": settings.idle_timeout,
            "checkpoint_interval": settings.checkpoint_interval,
            "join_state_ttl": settings.join_state_ttl,
            "dedup_ttl": settings.dedup_ttl,
            "parallelism": str(settings.flink_parallelism),
            "raw_partitions": str(settings.raw_partitions),
            "alert_percent": str(settings.alert_percent),
            "date_earliest": settings.date_earliest,
            "date_earliest_ms": str(settings.date_rule.earliest_ms),
            "date_max_ahead": settings.date_max_ahead,
            "date_max_ahead_ms": str(settings.date_rule.max_ahead_ms),
            "event_bucket_ms": str(EVENT_BUCKET_MS),
            "schema_registry_url": settings.flink_schema_registry_url,
            # The lake's clean events folder as Flink reaches it (clicklib.lake).
            "lake.clean_events": lake.table_url(settings, flink=True),
            # Connect's Avro converter is Apicurio's, which asks the registry's own API for a
            # schema by the id in the message (the Confluent wire format's).
            "apicurio_registry_url": (
                settings.connect_schema_registry_url.removesuffix(REGISTRY_API_PATH) + "/apis/registry/v2"
            ),
        }
    )
    # Each topic's Avro value schema, as a SQL string's content: the jobs write with exactly the
    # schema `pipeline up` registered.
    for schema in load_schemas(settings) if avro_schemas is None else avro_schemas:
        params[f"avro_schema.{schema.topic_base}"] = schema.compact.replace("'", "''")
    return params


def render(text: str, params: dict[str, str], source: str) -> str:
    """Fill every ``${name}``; an unknown name is an error naming the source and line."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            line = text.count("\n", 0, match.start()) + 1
            raise TemplateError(
                f"{source}:{line}: unknown placeholder ${{{name}}}; known placeholders are {', '.join(sorted(params))}"
            )
        return params[name]

    return PLACEHOLDER.sub(fill, text)
