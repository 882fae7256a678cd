"""clicklib.monitor reports what Kafka really holds: end offsets and a sink's lag, counted independently."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
from confluent_kafka import Consumer

from clicklib import monitor, produce
from clicklib.generate import generate
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings


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
            "bootstrap.servers": settings.bootstrap_servers,
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
    pipeline.wait_settled(timeout=300)
    assert monitor.lags(pipeline)["lag"].sum() == 0
