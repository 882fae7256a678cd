"""The pipeline's Kafka topics: their names, partitions and configs.

A topic is named everywhere in code and in the SQL and connector templates by its base
name (``clickstream_dlq``); ``topic_name`` puts it in the settings' namespace
(``t1_clickstream_dlq``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clicklib.settings import Settings

RAW = "clickstream"  # every message as it arrived, key user_id
USERS = "clickstream_users"  # user profiles, compacted: the latest per user is kept
DLQ = "clickstream_dlq"  # invalid raw messages with the reason
VALID = "clickstream_valid"  # valid events, typed, one partition per raw partition
CLEAN = "clickstream_clean"  # valid events of known users with their profile, upsert by event_id
AVRO = "clickstream_avro"  # the clean events in Avro (schemas in the registry), key user_id
PAGEVIEWS = "pageviews_per_minute"
ACTIVITY = "user_activity"
SESSIONS = "user_sessions"
STATUS = "status_per_minute"
SESSION_SUMMARY = "session_summary"  # one row per closed session, every visitor
DAILY_KPIS = "daily_kpis"  # headline numbers per day, upsert by day
SINK_DLQ = "clickstream_sink_dlq"  # records the Cassandra sink could not write
LATE = "clickstream_late"  # events that reached the windows behind their watermark
INTERNAL_DLQ = "clickstream_internal_dlq"  # records of the valid or profile topics a job could not read

TOPICS = (
    RAW,
    USERS,
    DLQ,
    VALID,
    CLEAN,
    AVRO,
    PAGEVIEWS,
    ACTIVITY,
    SESSIONS,
    STATUS,
    SESSION_SUMMARY,
    DAILY_KPIS,
    SINK_DLQ,
    LATE,
    INTERNAL_DLQ,
)
# Event topics are spread over partitions like the raw one; the rest are small.
PARTITIONED = (RAW, VALID, CLEAN, AVRO)
# Profiles are reference data: the newest per user is kept for good. The clean topic is an
# upsert stream keyed by event_id (daily_kpis by day): compaction keeps one record per key, and
# the retention below still bounds it. Every other topic keeps what settings say.
CLEANUP_POLICIES = {USERS: "compact", CLEAN: "compact,delete", DAILY_KPIS: "compact,delete"}


@dataclass(frozen=True)
class Topic:
    base: str  # the name in code and templates: "clickstream_dlq"
    name: str  # the name in Kafka, in the namespace: "t1_clickstream_dlq"
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def topic_name(settings: Settings, base: str) -> str:
    """A pipeline topic's name in the settings' namespace ("clickstream" -> "t1_clickstream")."""
    return f"{settings.namespace}{base}"


def topic_config(settings: Settings, base: str) -> dict[str, str]:
    """The Kafka topic configs of a pipeline topic: cleanup policy and retention from settings."""
    policy = CLEANUP_POLICIES.get(base, "delete")
    if policy == "compact":
        return {"cleanup.policy": policy}
    return {
        "cleanup.policy": policy,
        "retention.ms": str(int(settings.topic_retention_seconds * 1000)),
        "retention.bytes": str(settings.topic_retention_mb * 2**20),
    }


def pipeline_topics(settings: Settings) -> tuple[Topic, ...]:
    """Every topic of the pipeline, as settings size it."""
    return tuple(
        Topic(
            base,
            topic_name(settings, base),
            settings.raw_partitions if base in PARTITIONED else 1,
            settings.replication_factor,
            topic_config(settings, base),
        )
        for base in TOPICS
    )
