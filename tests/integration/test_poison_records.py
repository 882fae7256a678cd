"""No poison pill: a malformed record in any topic a job or a sink reads is dead-lettered with its
topic, partition, offset and reason, and the job or connector keeps running.

Any Kafka client can write the pipeline's own topics. Records that no checked path would produce
are written straight into them (with a plain producer, bypassing clicklib): into the valid events
read by the enrichment and the windows, into the profiles read by the enrichment, into the clean
events read by the Avro job, into the Avro events and an aggregate topic read by the Cassandra
sinks, and a tombstone into the raw topic.
Events produced before and after them must come out exact, and no job may restart.
"""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Producer

from clicklib import produce
from clicklib.generate import Workload, generate
from clicklib.pipeline import Pipeline
from tests import oracle
from tests.checks import (
    kafka_config,
    lake_holds_each_once,
    read_committed,
    restarts,
    same_rows,
    sink_dead_letters,
    table,
)

# Records no well-behaved writer produces: not JSON, the wrong JSON, bytes that are not text,
# and a valid-looking event whose date would move every window's watermark decades ahead.
BAD_VALID_EVENTS = [
    b"not json",
    b'{"event_id": 5}',
    b"\xff\xfe\x00garbage",
    b"[1, 2, 3]",
    None,  # a tombstone
]
BAD_PROFILES = [
    (b"user-poison-1", b'{"signup_date": "yesterday"}'),
    (b"user-poison-2", b"{truncated"),
    (b"user-poison-3", b"\xc3\x28"),
    (b"user-poison-4", b'{"home_city": "\\ud800"}'),
]
BAD_CLEAN_EVENTS = [b"not json", b'{"event_id": 123, "date": "noon"}', b"\xff"]
# Not the Confluent wire format, and the wire format with a schema id the registry never gave
# (the test adds a known id followed by bytes that are not that schema's Avro).
BAD_AVRO_RECORDS = [b"not avro", b"\x00\x7f\xff\xff\xf0garbage"]
# Two checkpoints and more: a job fails on a poison record as soon as it reads it, or at the checkpoint after.
HOLD_SECONDS = 30


@pytest.fixture
def pipeline(running_pipeline: Pipeline) -> Pipeline:
    return running_pipeline


def write(pipeline: Pipeline, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> list[tuple[int, int]]:
    """Write records with a plain producer; the (partition, offset) of each, in order."""
    producer = Producer({**kafka_config(pipeline.settings, "producer"), "enable.idempotence": True})
    positions: dict[int, tuple[int, int]] = {}

    def delivered(index: int):
        def report(error, message):
            assert error is None, error
            positions[index] = (message.partition(), message.offset())

        return report

    for index, (key, value) in enumerate(records):
        producer.produce(pipeline.topic(topic), key=key, value=value, on_delivery=delivered(index))
    assert producer.flush(30) == 0
    return [positions[i] for i in range(len(records))]


def test_malformed_records_in_every_internal_topic_are_dead_lettered_and_no_job_restarts(pipeline):
    start = int(time.time() * 1000) - 3 * 3_600_000
    before = generate(1_500, seed=41, start_ms=start)
    after = generate(1_500, seed=42, start_ms=max(e.date for e in before.events) + 60_000)
    jobs_before = restarts(pipeline)
    assert len(jobs_before) == 5

    # Events, the poison, and events again, in one go: the events after the poison are read
    # after it. (A burst of hours of event time, produced after every partition has fallen idle,
    # would come out partly late whatever it follows: see the README, "Event time".)
    assert produce.produce(pipeline, before, show_progress=False).failed == 0
    valid_at = write(pipeline, "clickstream_valid", [(None, value) for value in BAD_VALID_EVENTS])
    profiles_at = write(pipeline, "clickstream_users", BAD_PROFILES)
    clean_at = write(pipeline, "clickstream_clean", [(b"poison", value) for value in BAD_CLEAN_EVENTS])
    known_id = pipeline.registry.latest(f"{pipeline.topic('clickstream_avro')}-value").schema_id
    # The first field's union says "string", then its length is cut off.
    truncated = b"\x00" + known_id.to_bytes(4, "big") + b"\x02\x99\x99\x99"
    avro_at = write(pipeline, "clickstream_avro", [(b"poison", v) for v in [*BAD_AVRO_RECORDS, truncated]])
    pageviews_at = write(pipeline, "pageviews_per_minute", [(None, b"{not json")])
    raw_at = write(pipeline, "clickstream", [(b"user-x", None)])
    assert produce.produce(pipeline, after, show_progress=False).failed == 0

    # The jobs and connectors hold on while the poison sits in their topics...
    deadline = time.monotonic() + HOLD_SECONDS
    while time.monotonic() < deadline:
        status = pipeline.status()
        assert set(status.jobs.values()) == {"RUNNING"}, status.jobs
        assert set(status.connectors.values()) == {"RUNNING RUNNING"}, status.connectors
        time.sleep(5)
    assert restarts(pipeline) == jobs_before

    # ...and the events around it come out exact: every clean event stored, every window right.
    closing = generate(300, seed=43, start_ms=max(e.date for e in after.events) + 3_600_000)
    assert produce.produce(pipeline, closing, show_progress=False).failed == 0
    # Its time mark reaches every partition first: no wait for the partitions to fall idle.
    pipeline.wait_settled(timeout=600, windows=False)
    assert restarts(pipeline) == jobs_before

    both = Workload(before.profiles + after.profiles, before.records + after.records)
    expected_clean = set(oracle.clean_events(both)["event_id"])
    stored = set(table(pipeline, "events_by_user")["event_id"])
    assert expected_clean <= stored, f"{len(expected_clean - stored)} clean events missing"
    # The lake too (the closing workload's events are there as well).
    ids = {e.event_id for e in both.events}
    in_lake = [i for i in lake_holds_each_once(pipeline.settings, expected_clean) if i in ids]
    assert set(in_lake) == expected_clean and len(in_lake) == len(expected_clean), "the lake's events differ"
    users = set(oracle.clean_events(both)["user_id"])
    activity = table(pipeline, "user_activity")
    same_rows(activity[activity["user_id"].isin(users)], oracle.user_activity(both), ["user_id", "window_start"])

    internal = read_committed(pipeline.settings, pipeline.topic("clickstream_internal_dlq"))
    valid_topic, users_topic = pipeline.topic("clickstream_valid"), pipeline.topic("clickstream_users")
    by_place = {(d["source_topic"], d["source_partition"], d["source_offset"], d["job"]): d for d in internal}
    assert len(by_place) == len(internal), "a record was dead-lettered twice by one job"
    # The three jobs that read the valid events report each bad one; only the enrichment reads profiles.
    expected = {(valid_topic, p, o, job) for p, o in valid_at for job in ("enrich", "aggregates", "lake")}
    expected |= {(users_topic, p, o, "enrich") for p, o in profiles_at}
    clean_topic = pipeline.topic("clickstream_clean")
    expected |= {(clean_topic, p, o, "avro") for p, o in clean_at}
    assert set(by_place) == expected
    for letter in internal:
        assert letter["reason"], letter
    assert by_place[(valid_topic, *valid_at[0], "enrich")]["message"] == "not json"
    assert by_place[(valid_topic, *valid_at[0], "enrich")]["reason"] == "malformed JSON"
    assert by_place[(valid_topic, *valid_at[2], "enrich")]["message_base64"] is not None
    assert by_place[(users_topic, *profiles_at[0], "enrich")]["reason"] == "signup_date: expected an integer or null"
    assert by_place[(users_topic, *profiles_at[0], "enrich")]["record_key"] == "user-poison-1"
    assert by_place[(users_topic, *profiles_at[2], "enrich")]["message_base64"] == "wyg="
    assert (
        by_place[(users_topic, *profiles_at[3], "enrich")]["reason"]
        == "home_city: not valid Unicode (a lone surrogate)"
    )

    assert by_place[(clean_topic, *clean_at[0], "avro")]["reason"] == "malformed JSON"
    assert by_place[(clean_topic, *clean_at[0], "avro")]["record_key"] == "poison"

    # Connect's sinks put what they cannot read or write in their dead-letter topic, with where it
    # came from and why (both connectors of the Avro topic report each record).
    letters = sink_dead_letters(pipeline)
    avro_topic, pageviews_topic = pipeline.topic("clickstream_avro"), pipeline.topic("pageviews_per_minute")
    places = [
        (d["__connect.errors.topic"], int(d["__connect.errors.partition"]), int(d["__connect.errors.offset"]))
        for d in letters
    ]
    for partition, offset in avro_at:
        assert places.count((avro_topic, partition, offset)) == 2, letters
    assert places.count((pageviews_topic, *pageviews_at[0])) == 1, letters
    assert all(d.get("__connect.errors.exception.message") for d in letters)

    # A tombstone in the raw topic is a dead letter like any other invalid message.
    dead = read_committed(pipeline.settings, pipeline.topic("clickstream_dlq"))
    tombstones = [d for d in dead if (d["source_partition"], d["source_offset"]) == raw_at[0]]
    assert len(tombstones) == 1 and tombstones[0]["reason"], dead[-3:]
    print(json.dumps({"internal dead letters": len(internal), "sink dead letters": len(letters)}))
