"""Kafka offsets of the pipeline: how many messages each topic holds, and how far each
consumer (the Flink jobs, the sink connectors) trails the topics it reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clicklib.definition import PipelineDefinition
from clicklib.kafka import KafkaClient
from clicklib.topics import DLQ, INTERNAL_DLQ, LATE, SINK_DLQ

# What went wrong, by the topic that holds it. Read to the end, not taken from end offsets: the
# dead-letter and late topics are written in transactions, whose commit markers take offsets too.
PROBLEM_TOPICS = {
    "dead letters": DLQ,
    "late events": LATE,
    "internal dead letters": INTERNAL_DLQ,
    "sink dead letters": SINK_DLQ,
}


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return self.end - self.committed


def topic_messages(definition: PipelineDefinition, kafka: KafkaClient) -> dict[str, int]:
    """Messages in each pipeline topic (the sum of its partitions' end offsets); missing topics left out."""
    existing = kafka.topic_names()
    return {t.name: sum(kafka.end_offsets(t.name).values()) for t in definition.topics if t.name in existing}


def group_lag(kafka: KafkaClient, group: str, topic: str) -> GroupLag:
    """How far a consumer group's committed offsets trail a topic's end (a partition the
    group never committed counts from offset 0)."""
    ends = kafka.end_offsets(topic)
    committed = kafka.committed(group, topic, list(ends))
    return GroupLag(group, topic, sum(committed.values()), sum(ends.values()))


def consumer_lags(
    definition: PipelineDefinition, kafka: KafkaClient, groups: Sequence[str] | None = None
) -> list[GroupLag]:
    """Lag of every consumer in the pipeline (or of ``groups``): each Flink job on the topics it
    reads, each sink on its topic."""
    return [
        group_lag(kafka, consumer.group, consumer.topic)
        for consumer in definition.consumers
        if groups is None or consumer.group in groups
    ]


def problem_counts(definition: PipelineDefinition, kafka: KafkaClient) -> dict[str, int]:
    """Invalid messages, late events, internal records a job could not read and records the sink
    could not write, counted exactly."""
    existing = kafka.topic_names()
    counts = {}
    for what, base in PROBLEM_TOPICS.items():
        name = definition.topic(base)
        counts[what] = kafka.count_messages(name) if name in existing else 0
    return counts
