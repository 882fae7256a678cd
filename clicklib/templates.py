"""``${name}`` placeholders in the SQL scripts and connector configs, filled from settings."""

from __future__ import annotations

import re

from clicklib.exceptions import TemplateError
from clicklib.settings import Settings

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Logical topic name -> base name; Settings.topic() adds the namespace.
TOPICS = {
    "raw": "clickstream",
    "users": "clickstream_users",
    "dlq": "clickstream_dlq",
    "valid": "clickstream_valid",
    "clean": "clickstream_clean",
    "pageviews": "pageviews_per_minute",
    "activity": "user_activity",
    "sessions": "user_sessions",
    "status": "status_per_minute",
    "sink_dlq": "clickstream_sink_dlq",
}


def pipeline_params(settings: Settings) -> dict[str, str]:
    """Every value a script or connector config may name, as text."""
    params = {f"topic_{key}": settings.topic(base) for key, base in TOPICS.items()}
    params.update(
        {
            "namespace": settings.namespace,
            "keyspace": settings.keyspace,
            "bootstrap_servers": settings.flink_bootstrap_servers,
            "cassandra_hosts": settings.connect_cassandra_hosts,
            "cassandra_port": str(settings.cassandra_port),
            "cassandra_datacenter": settings.cassandra_datacenter,
            "replication_factor": str(settings.replication_factor),
            "watermark_delay_seconds": str(settings.watermark_delay_seconds),
            "idle_timeout": settings.idle_timeout,
            "checkpoint_interval": settings.checkpoint_interval,
            "join_state_ttl": settings.join_state_ttl,
            "dedup_ttl": settings.dedup_ttl,
            "parallelism": str(settings.flink_parallelism),
            "raw_partitions": str(settings.raw_partitions),
            "alert_percent": str(settings.alert_percent),
        }
    )
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
