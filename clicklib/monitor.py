"""Live metrics of the pipeline: topic end offsets and consumer-group lag."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from clicklib.settings import Settings, get_settings
from clicklib.topics import ADMIN_TIMEOUT, admin, end_offsets


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return self.end - self.committed


def group_lag(group: str, topic: str, settings: Settings | None = None) -> GroupLag:
    """How far a consumer group's committed offsets trail a topic's end (a partition the
    group never committed counts from offset 0)."""
    settings = settings or get_settings()
    ends = end_offsets(settings, topic)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in ends])
    # Keep the client referenced until the answer arrives: a collected client drops its futures.
    client = admin(settings)
    result = client.list_consumer_group_offsets([request])[group].result(timeout=ADMIN_TIMEOUT)
    committed = {tp.partition: max(tp.offset, 0) for tp in result.topic_partitions}
    return GroupLag(group, topic, sum(committed.get(p, 0) for p in ends), sum(ends.values()))
