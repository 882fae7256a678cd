"""`clicklib produce --file` against the real Kafka: a line that is not UTF-8 is delivered as it is,
a line over the message limit is reported by its number, and every other line arrives."""

from __future__ import annotations

import dataclasses
import uuid

from click.testing import CliRunner
from confluent_kafka import KafkaError, TopicPartition

from clicklib import produce
from clicklib.cli import main
from clicklib.generate import generate
from clicklib.pipeline import Pipeline
from clicklib.settings import get_settings

NOT_UTF8 = b'{"event_id": "\xff\xfe"}'


def test_a_file_with_a_non_utf8_line_and_a_huge_line_delivers_every_other_line(tmp_path):
    settings = dataclasses.replace(get_settings(), namespace=f"pf{uuid.uuid4().hex[:8]}_")
    events = [record.value.encode() for record in generate(20, seed=1).records]
    huge = b'{"event_id": "huge", "pad": "' + b"x" * 1_200_000 + b'"}'
    lines = [*events[:7], NOT_UTF8, *events[7:15], huge, *events[15:]]
    not_utf8_line, huge_line = lines.index(NOT_UTF8) + 1, lines.index(huge) + 1
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))

    with Pipeline(settings) as pipeline:
        topic = pipeline.topic("clickstream")
        pipeline.kafka.create_topics([t for t in pipeline.definition.topics if t.base == "clickstream"])
        try:
            result = CliRunner().invoke(
                main, ["produce", "--file", str(path)], env={"CLICKLIB_NAMESPACE": settings.namespace}
            )
            assert result.exit_code == 1, result.output
            assert "Traceback" not in result.output
            assert f"{len(lines)} lines: {len(lines) - 1} sent, {len(lines) - 1} delivered, 1 failed" in result.output
            assert f"failed: line {huge_line} ({len(huge):,} bytes): {produce.TOO_LARGE}" in result.output
            assert f"note: line {not_utf8_line}: {produce.NOT_UTF8}" in result.output
            assert pipeline.kafka.count_messages(topic, deadline_seconds=60) == len(lines) - 1
            assert sorted(read_values(pipeline, topic)) == sorted(line for line in lines if line != huge)
        finally:
            pipeline.kafka.delete_topics([topic])


def read_values(pipeline: Pipeline, topic: str) -> list[bytes]:
    """Every message value in the topic, read to its end."""
    ends = pipeline.kafka.end_offsets(topic)
    consumer = pipeline.kafka.consumer(f"pf-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        pending = {p for p, end in ends.items() if end > 0}
        values = []
        for _ in range(60):
            if not pending:
                break
            for message in consumer.consume(num_messages=1_000, timeout=1.0):
                if message.error() is None:
                    values.append(message.value())
                elif message.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
        return values
    finally:
        consumer.close()
