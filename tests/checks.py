"""What the integration and fault tests compare with: a table as Cassandra holds it, rows equal
value for value, and a topic read to its end as a committed reader sees it. Plain clients of
their own, independent of clicklib's, where a shared bug could make both sides agree."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import requests
from confluent_kafka import Consumer, TopicPartition

from clicklib import secrets
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.streaming_sql import MARK_HEADER


def table(pipeline: Pipeline, name: str) -> pd.DataFrame:
    """Every row of a pipeline table, timestamps as epoch milliseconds."""
    frame = pipeline.cassandra.query_df(f"SELECT * FROM {pipeline.settings.keyspace}.{name}")
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].astype("datetime64[ms]").astype("int64")
    return frame


def same_rows(actual: pd.DataFrame, expected: pd.DataFrame, key: list[str], name: str = "") -> None:
    """Equal row for row and value for value, whatever the order or the integer widths."""
    columns = list(expected.columns)
    left = actual[columns].sort_values(key, ignore_index=True)
    right = expected.sort_values(key, ignore_index=True)
    where = f"{name}: " if name else ""
    assert len(left) == len(right), f"{where}{len(left)} rows in Cassandra, {len(right)} expected"
    for column in columns:
        got, want = _values(left[column]), _values(right[column])
        if got != want:
            first = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
            raise AssertionError(
                f"{where}{column} differs at {dict(zip(key, left.loc[first, key], strict=True))}: "
                f"Cassandra has {got[first]!r}, pandas {want[first]!r}"
            )


def _values(series: pd.Series) -> list:
    # Missing values of any kind (None, NaN, pd.NA) compare equal as None; numbers by value.
    return [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in series]


def lake_event_ids(settings: Settings) -> list[str]:
    """Every event_id in the committed Parquet files of the namespace's lake folder, read with
    pyarrow alone (hidden in-progress files and _SUCCESS markers are not data)."""
    root = f"{settings.lake_url.removeprefix('file://')}/{settings.namespace}clean_events"
    if not Path(root).is_dir():
        return []
    files = [
        path
        for path in Path(root).rglob("*")
        if path.is_file() and not path.name.startswith((".", "_")) and ".inprogress" not in path.name
    ]
    return [i for path in files for i in pq.read_table(path, columns=["event_id"]).column("event_id").to_pylist()]


def lake_holds_each_once(settings: Settings, expected: set[str], timeout: float = 60.0) -> list[str]:
    """The lake's event_ids once it holds all of ``expected`` (files are committed when a
    checkpoint completes, a moment after the offsets it holds), or after ``timeout``."""
    deadline = time.monotonic() + timeout
    ids = lake_event_ids(settings)
    while not expected <= set(ids) and time.monotonic() < deadline:
        time.sleep(2.0)
        ids = lake_event_ids(settings)
    return ids


def kafka_config(settings: Settings, principal: str = "admin") -> dict:
    """A test client's Kafka settings: the brokers, and the login of ``principal`` when the
    stack wants one (the secure profile)."""
    return {"bootstrap.servers": settings.bootstrap_servers, **secrets.kafka_client_config(settings, principal)}


def read_committed(settings: Settings, topic: str, timeout: float = 120.0) -> list[dict]:
    """Every committed message of a topic, decoded, read to the end of each partition. The
    dead-letter topic is written in transactions: what a crash aborted is not a dead letter.
    Time marks (``clicklib-mark`` header, no value: ksql/07_valid_events.sql) are no messages."""
    consumer = Consumer(
        {
            **kafka_config(settings),
            "group.id": f"reader-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        values, ended = [], set()
        deadline = time.monotonic() + timeout
        while len(ended) < len(partitions) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error() is None:
                    if not any(key == MARK_HEADER for key, _ in message.headers() or []):
                        values.append(json.loads(message.value()))
                else:
                    ended.add(message.partition())
        return values
    finally:
        consumer.close()


def restarts(pipeline: Pipeline, timeout: float = 30.0) -> dict[str, int]:
    """numRestarts of each of the pipeline's running jobs, read from Flink's REST API. Flink
    fetches metrics lazily: a job that has just started answers with none for a moment."""
    base, auth = pipeline.settings.flink_rest_url, secrets.flink_login(pipeline.settings)
    counts = {}
    for job in requests.get(f"{base}/jobs/overview", auth=auth, timeout=10).json()["jobs"]:
        if job["state"] == "RUNNING" and job["name"].startswith(pipeline.settings.namespace):
            deadline = time.monotonic() + timeout
            while True:
                url = f"{base}/jobs/{job['jid']}/metrics"
                metrics = requests.get(url, params={"get": "numRestarts"}, auth=auth, timeout=10).json()
                if metrics or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert metrics, f"Flink reported no numRestarts for {job['name']} within {timeout:.0f} s"
            counts[job["name"]] = int(metrics[0]["value"])
    return counts


def sink_dead_letters(pipeline: Pipeline) -> list[dict]:
    """The sink dead-letter topic's records with Connect's error headers, decoded."""
    topic = pipeline.topic("clickstream_sink_dlq")
    consumer = Consumer(
        {
            **kafka_config(pipeline.settings),
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        letters, ended, deadline = [], set(), time.monotonic() + 60
        while len(ended) < len(partitions) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                if message.error() is not None:
                    ended.add(message.partition())
                    continue
                headers = {k: (v or b"").decode("utf-8", "replace") for k, v in message.headers() or []}
                letters.append({"value": message.value(), **headers})
        return letters
    finally:
        consumer.close()
