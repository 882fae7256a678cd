"""Fuzz: 10,000 mutated messages (tests/fuzz_messages.py) produced into the raw topic.

Afterwards no job has restarted, and every message is accounted for exactly once, as Python's
check (clicklib.events) says it should be:

- an invalid one is in clickstream_dlq once, at its own partition and offset, with Python's reason;
- a valid one is in the valid events topic once; a known user's is in Cassandra (or, when
  Cassandra cannot hold a value, such as a status beyond its int column, in the sink's dead-letter
  topic); every valid one, anonymous or not, is counted by its status_per_minute window, unless
  that window had closed when it came, and then it is in clickstream_late.

The fuzzed dates spread over 29 minutes in random order, so many events come behind the
watermark: reported late, and counted only when their minute had not closed yet (Flink drops an
event from a window when the watermark it arrives behind has reached the window's last
millisecond; with one task per operator, the watermark the late report names is that one).
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections import Counter
from datetime import datetime

from confluent_kafka import Producer
from fastavro import parse_schema, schemaless_reader

from clicklib import produce
from clicklib.events import DateRule, invalid_reason
from clicklib.generate import generate
from clicklib.pipeline import Pipeline
from tests.checks import kafka_config, read_committed, restarts, sink_dead_letters, table
from tests.fuzz_messages import fuzz_messages

MESSAGES = 10_000
# The number in "is 3 hours ahead of the clock": the pipeline checks later than Python, by its clock.
AHEAD_SPAN = re.compile(r" is [\d,]+ \w+ ahead of the clock")


def comparable(reason: str | None) -> str | None:
    return None if reason is None else AHEAD_SPAN.sub(" is … ahead of the clock", reason)


def produce_exactly(pipeline: Pipeline, messages) -> list[tuple[int, int]]:
    """Write the messages as they are; the (partition, offset) of each, in order."""
    producer = Producer(
        {
            **kafka_config(pipeline.settings, "producer"),
            "enable.idempotence": True,
            "linger.ms": 20,
            "message.max.bytes": 1_000_000,
        }
    )
    positions: dict[int, tuple[int, int]] = {}
    failures: list[str] = []
    raw = pipeline.topic("clickstream")
    for index, message in enumerate(messages):

        def report(error, delivered, index=index):
            if error is None:
                positions[index] = (delivered.partition(), delivered.offset())
            else:
                failures.append(f"message {index}: {error}")

        while True:
            try:
                producer.produce(raw, key=message.key, value=message.value, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.5)
        producer.poll(0)
    assert producer.flush(120) == 0
    assert not failures, failures[:5]
    return [positions[i] for i in range(len(messages))]


def test_ten_thousand_mutated_messages_are_each_accounted_for_once_as_python_says(running_pipeline):
    pipeline = running_pipeline
    now_ms = int(time.time() * 1000)
    rule = DateRule(pipeline.settings.date_rule.earliest_ms, pipeline.settings.date_rule.max_ahead_ms, lambda: now_ms)
    messages = fuzz_messages(MESSAGES, now_ms=now_ms, seed=20261130, id_prefix=f"fz{uuid.uuid4().hex[:6]}")
    verdicts = [invalid_reason(m.value, rule) for m in messages]
    jobs_before = restarts(pipeline)

    positions = produce_exactly(pipeline, messages)
    # Later events on every partition close every window and session of the fuzzed ones.
    closing = generate(200, seed=7, start_ms=now_ms + 35 * 60_000)
    assert produce.produce(pipeline, closing, show_progress=False).failed == 0
    # Its time mark reaches every partition first: no wait for the partitions to fall idle.
    pipeline.wait_settled(timeout=900, windows=False)
    assert restarts(pipeline) == jobs_before, "a job restarted"

    # Invalid: in the dead-letter topic once, where it was read, with Python's reason.
    dead = read_committed(pipeline.settings, pipeline.topic("clickstream_dlq"))
    dead_at = Counter((d["source_partition"], d["source_offset"]) for d in dead)
    assert max(dead_at.values(), default=0) == 1, "a message was dead-lettered twice"
    reason_at = {(d["source_partition"], d["source_offset"]): d["reason"] for d in dead}
    disagreements = [
        (messages[i].kind, verdicts[i], reason_at.get(positions[i]))
        for i in range(MESSAGES)
        if comparable(verdicts[i]) != comparable(reason_at.get(positions[i]))
    ]
    assert not disagreements, f"{len(disagreements)} disagreements, e.g. {disagreements[:5]}"
    assert len(dead) == sum(v is not None for v in verdicts)

    # Valid: in the valid events topic once.
    valid = [m for m, v in zip(messages, verdicts, strict=True) if v is None]
    valid_ids = [read_id(m.value) for m in valid]
    routed = Counter(e["event_id"] for e in read_committed(pipeline.settings, pipeline.topic("clickstream_valid")))
    assert all(routed[event_id] == 1 for event_id in valid_ids)

    # A known user's event is stored, or refused by Cassandra into the sink's dead letters.
    known = {event_id for m, event_id in zip(valid, valid_ids, strict=True) if m.key is not None}
    stored = set(table(pipeline, "events_by_user")["event_id"])
    refused = {dead_letter_id(pipeline, d["value"]) for d in sink_dead_letters(pipeline)}
    assert known <= stored | refused, f"{len(known - stored - refused)} known users' events lost"

    # Every valid event is counted by its minute's window, or reported late when it had closed.
    assert pipeline.settings.flink_parallelism == 1, "the late reports' watermark is the windows' only with one task"
    closing_ids = {e.event_id for e in closing.events}
    lates = read_committed(pipeline.settings, pipeline.topic("clickstream_late"))
    assert {e["event_id"] for e in lates} <= set(valid_ids) | closing_ids
    lates = [e for e in lates if e["event_id"] not in closing_ids]  # the closing burst may be late too
    late = {e["event_id"] for e in lates}
    assert len(late) == len(lates), "an event was reported late twice"
    still_open = sum(minute_end(e["date"]) - 1 > epoch_ms(e["missed_watermark"]) for e in lates)
    windows = table(pipeline, "status_per_minute")
    counted = int(windows[windows["window_start"] < now_ms + 30 * 60_000]["events"].sum())
    assert counted == len(valid_ids) - len(late) + still_open

    # Reasons by kind, their numbers left out ("not UTF-8 text: byte 0x# at offset #").
    kinds = [re.sub(r"(byte|offset|date) -?[\w,]+", r"\1 #", comparable(v)) if v else "valid" for v in verdicts]
    by_reason = Counter(kinds)
    print(
        f"fuzz: {MESSAGES} messages, {len(valid_ids)} valid ({len(known)} of known users, "
        f"{len(known & refused)} refused by Cassandra, {len(late)} late), "
        f"{len(dead)} dead-lettered, disagreements {len(disagreements)}; by reason: {dict(by_reason)}"
    )


def dead_letter_id(pipeline: Pipeline, value: bytes | None) -> str | None:
    """The event_id of a record the sink refused: the event sinks read the Avro topic, whose
    records are in the Confluent wire format (a zero byte, the schema's id, Avro binary), decoded
    here with fastavro from the schema the registry gives for that id; others are JSON."""
    if value and value[:1] == b"\x00" and len(value) > 5:
        schema = parse_schema(json.loads(pipeline.registry.schema(int.from_bytes(value[1:5], "big"))))
        return schemaless_reader(io.BytesIO(value[5:]), schema, schema)["event_id"]
    return read_id(value)


def read_id(value: bytes | None) -> str | None:
    try:
        return json.loads(value.decode("utf-8")).get("event_id")
    except (AttributeError, ValueError):
        return None


def minute_end(date_ms: int) -> int:
    return date_ms - date_ms % 60_000 + 60_000


def epoch_ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
