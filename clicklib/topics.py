"""The pipeline's Kafka topics: which exist, with how many partitions and what retention."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from clicklib.exceptions import PipelineError
from clicklib.settings import Settings
from clicklib.templates import TOPICS

ADMIN_TIMEOUT = 30.0


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 0})


def topic_specs(settings: Settings) -> list[NewTopic]:
    """Raw, valid and clean events are keyed by user or event and spread over partitions; profiles
    are compacted so the latest profile per user is kept forever; the rest are small."""
    partitions = {key: settings.raw_partitions for key in ("raw", "valid", "clean")}
    configs = {"users": {"cleanup.policy": "compact"}}
    return [
        NewTopic(
            settings.topic(base),
            num_partitions=partitions.get(key, 1),
            replication_factor=settings.replication_factor,
            config=configs.get(key, {}),
        )
        for key, base in TOPICS.items()
    ]


def create_topics(settings: Settings) -> list[str]:
    """Create the pipeline's topics that do not exist yet; returns the ones created."""
    client = admin(settings)
    try:
        existing = set(client.list_topics(timeout=ADMIN_TIMEOUT).topics)
    except KafkaException as exc:
        raise PipelineError(
            f"kafka at {settings.bootstrap_servers} is not reachable ({exc}); "
            "start it with `clicklib stack up` or set CLICKLIB_BOOTSTRAP_SERVERS"
        ) from exc
    missing = [spec for spec in topic_specs(settings) if spec.topic not in existing]
    if not missing:
        return []
    for topic, future in client.create_topics(missing, operation_timeout=ADMIN_TIMEOUT).items():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise PipelineError(f"kafka refused to create topic {topic}: {exc}") from exc
    return [spec.topic for spec in missing]


def delete_topics(settings: Settings) -> None:
    """Delete the pipeline's topics (used to clean up test namespaces)."""
    client = admin(settings)
    existing = set(client.list_topics(timeout=ADMIN_TIMEOUT).topics)
    names = [settings.topic(base) for base in TOPICS.values() if settings.topic(base) in existing]
    if names:
        for future in client.delete_topics(names, operation_timeout=ADMIN_TIMEOUT).values():
            future.result()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Partition -> offset of the next message (the high watermark) of a topic."""
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": "clicklib-offsets", "log_level": 0}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=ADMIN_TIMEOUT)
        partitions = metadata.topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=ADMIN_TIMEOUT)[1] for p in partitions
        }
    finally:
        consumer.close()


def last_append_time(settings: Settings, topic: str) -> float | None:
    """When the newest message of a topic was written (epoch seconds), None for an empty topic."""
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": "clicklib-offsets", "log_level": 0}
    )
    try:
        newest = None
        for partition, end in end_offsets(settings, topic).items():
            if end == 0:
                continue
            consumer.assign([TopicPartition(topic, partition, end - 1)])
            message = consumer.poll(ADMIN_TIMEOUT)
            if message is not None and message.error() is None:
                _, millis = message.timestamp()
                newest = max(newest or 0.0, millis / 1000)
        return newest
    finally:
        consumer.close()
