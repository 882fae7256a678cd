"""clicklib.monitor reports what Kafka really holds: end offsets and a sink's lag, counted independently."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pandas as pd
import pytest
from confluent_kafka import Consumer

from clicklib import monitor, produce
from clicklib.generate import generate
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from tests.checks import kafka_config


@pytest.fixture
def paused_sink(live_stack: Settings):
    with Pipeline(dataclasses.replace(live_stack, namespace=f"m{uuid.uuid4().hex[:8]}_")) as pipeline:
        pipeline.up()
        name = pipeline.definition.connector("events_by_user").name
        pipeline.connect.pause(name)
        yield pipeline, name
        pipeline.down(purge=True)


def count_messages(settings: Settings, topic: str) -> int:
    """Every message of a topic, read to the end by a fresh consumer."""
    consumer = Consumer(
        {
            **kafka_config(settings),
            "group.id": f"counter-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    partitions = len(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
    consumer.subscribe([topic])
    count, ended = 0, set()
    deadline = time.monotonic() + 60
    try:
        while len(ended) < partitions and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                ended.add(message.partition())
            else:
                count += 1
    finally:
        consumer.close()
    return count


def messages(pipeline: Pipeline) -> dict[str, int]:
    return dict(monitor.topic_rates(pipeline, interval=0.1)[["topic", "messages"]].itertuples(index=False))


def test_end_offsets_and_the_sink_lag_are_the_real_ones(paused_sink):
    pipeline, sink = paused_sink
    settings = pipeline.settings
    workload = generate(2_000, seed=99)
    report = produce.produce(pipeline, workload, show_progress=False)
    clean_topic = pipeline.topic("clickstream_clean")
    clean = sum(1 for e in workload.events if e.user_id is not None)
    deadline = time.monotonic() + 120
    while messages(pipeline).get(clean_topic, 0) < clean and time.monotonic() < deadline:
        time.sleep(1)

    offsets = messages(pipeline)
    raw_topic = pipeline.topic("clickstream")
    assert offsets[raw_topic] == report.delivered == count_messages(settings, raw_topic)
    lags = monitor.lags(pipeline).set_index("group")
    assert lags.loc[f"connect-{sink}", "lag"] == count_messages(settings, clean_topic) >= clean

    pipeline.connect.resume(sink)
    # Every consumer caught up is what is asserted: no window needs to close for it.
    pipeline.wait_settled(timeout=300, windows=False)
    assert monitor.lags(pipeline)["lag"].sum() == 0


def test_job_records_and_watermark_are_those_of_a_known_workload(running_pipeline):
    pipeline = running_pipeline
    workload = generate(2_000, seed=98, invalid_ratio=0.02, end_ms=int(time.time() * 1000) - 60_000)
    assert produce.produce(pipeline, workload, show_progress=False).failed == 0
    pipeline.wait_settled(timeout=300)
    valid = len(workload.events)
    invalid = len(workload.records) - valid
    written = {
        base: count_messages(pipeline.settings, pipeline.topic(base))
        for base in (
            "pageviews_per_minute",
            "user_activity",
            "user_sessions",
            "status_per_minute",
            "session_summary",
            "daily_kpis",
            "clickstream_late",
        )
    }
    # Before the workload, produce writes one time mark to each valid partition: read, not counted.
    marks = pipeline.settings.raw_partitions
    expected = {
        "ingest": (len(workload.records), valid + invalid),  # every message to the valid topic or the DLQ
        "enrich": (valid + marks + len(workload.profiles), None),  # the valid events, the marks, every profile
        "aggregates": (valid + marks, sum(written.values())),  # every row of the aggregate and late topics
    }
    # Flink fetches metrics every few seconds: the counters catch up soon after the pipeline settles.
    deadline = time.monotonic() + 60
    while True:
        jobs = monitor.flink_jobs(pipeline).set_index("job")
        got = {p.name: tuple(jobs.loc[p.flink_name, ["records_in", "records_out"]]) for p in pipeline.definition.jobs}
        if all(got[j][0] == expected[j][0] and expected[j][1] in (None, got[j][1]) for j in expected):
            break
        assert time.monotonic() < deadline, f"records (in, out) {got}, expected {expected}"
        time.sleep(2)
    clean = sum(1 for e in workload.events if e.user_id is not None)
    assert got["enrich"][1] >= clean  # each clean event once, and a correction when its profile came late
    assert (jobs["state"] == "RUNNING").all()
    assert jobs["running_since"].notna().all()

    # The windows' watermark: the newest event time less the watermark delay, at most; behind the clock.
    aggregates = jobs.loc[pipeline.definition.job("aggregates").flink_name]
    newest = max(e.date for e in workload.events)
    watermark_ms = aggregates["watermark"].timestamp() * 1000
    assert newest - 60_000 <= watermark_ms <= newest - pipeline.settings.watermark_delay_seconds * 1000 + 1
    assert aggregates["behind_s"] >= 60
    assert pd.isna(jobs.loc[pipeline.definition.job("ingest").flink_name, "watermark"])  # no windows, no event time
