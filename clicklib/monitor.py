"""Live metrics of the pipeline, the view Confluent's Control Center gave the seed.

Each function returns a small DataFrame read from the real services: topic end offsets
and message rates from Kafka, consumer-group lag of the Flink jobs and Connect sinks,
connector and task states from Connect, job states with records in and out from
Flink's REST API, and a health line per service. ``snapshot`` gathers them all;
``live`` refreshes them in a notebook with ipywidgets.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import requests
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from clicklib import connect, ksql, stack
from clicklib.settings import Settings, get_settings
from clicklib.templates import TOPICS
from clicklib.topics import ADMIN_TIMEOUT, admin, end_offsets

HTTP_TIMEOUT = 10.0


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


def consumer_lags(settings: Settings | None = None) -> list[GroupLag]:
    """Lag of every consumer in the pipeline: each Flink job on the topics it reads, each sink on its topic."""
    settings = settings or get_settings()
    lags = [
        group_lag(plan.flink_name, topic, settings) for plan in ksql.plan_jobs(settings) for topic in plan.source_topics
    ]
    for connector in connect.load_connectors(settings):
        for topic in connector.config["topics"].split(","):
            lags.append(group_lag(f"connect-{connector.name}", topic.strip(), settings))
    return lags


def lags(settings: Settings | None = None) -> pd.DataFrame:
    rows = [
        {"group": lag.group, "topic": lag.topic, "committed": lag.committed, "end": lag.end, "lag": lag.lag}
        for lag in consumer_lags(settings)
    ]
    return pd.DataFrame(rows, columns=["group", "topic", "committed", "end", "lag"])


def topic_offsets(settings: Settings | None = None) -> dict[str, int]:
    """Messages in each pipeline topic (the sum of its partitions' end offsets); missing topics left out."""
    settings = settings or get_settings()
    existing = set(admin(settings).list_topics(timeout=ADMIN_TIMEOUT).topics)
    names = [settings.topic(base) for base in TOPICS.values()]
    return {name: sum(end_offsets(settings, name).values()) for name in names if name in existing}


def topic_rates(settings: Settings | None = None, interval: float = 2.0) -> pd.DataFrame:
    """Messages per topic and the rate they arrive at, from two readings ``interval`` apart."""
    settings = settings or get_settings()
    first, started = topic_offsets(settings), time.monotonic()
    time.sleep(interval)
    second, elapsed = topic_offsets(settings), time.monotonic() - started
    rows = [
        {"topic": topic, "messages": count, "per_second": round((count - first.get(topic, count)) / elapsed, 1)}
        for topic, count in second.items()
    ]
    return pd.DataFrame(rows, columns=["topic", "messages", "per_second"])


def connectors(settings: Settings | None = None) -> pd.DataFrame:
    settings = settings or get_settings()
    client = connect.ConnectClient(settings)
    rows = []
    for connector in connect.load_connectors(settings):
        status = client.status(connector.name)
        rows.append(
            {
                "connector": connector.name,
                "state": status.state,
                "tasks": " ".join(status.tasks) or "-",
                "table": connector.config.get("cassandra.table", ""),
            }
        )
    return pd.DataFrame(rows, columns=["connector", "state", "tasks", "table"])


def _vertex_metrics(settings: Settings, job_id: str, vertex_id: str, wanted) -> float:
    base = f"{settings.flink_rest_url}/jobs/{job_id}/vertices/{vertex_id}/metrics"
    ids = [m["id"] for m in requests.get(base, timeout=HTTP_TIMEOUT).json() if wanted(m["id"])]
    if not ids:
        return 0.0
    values = requests.get(base, params={"get": ",".join(ids)}, timeout=HTTP_TIMEOUT).json()
    return sum(float(v["value"]) for v in values)


def flink_jobs(settings: Settings | None = None) -> pd.DataFrame:
    """The pipeline's Flink jobs: state, records read by their sources, records their sinks sent."""
    settings = settings or get_settings()
    active = ksql.pipeline_jobs(settings, ksql.plan_jobs(settings))
    rows = []
    for name, job in active.items():
        row = {"job": name, "state": job.state if job else "NOT RUNNING", "records_in": 0, "records_out": 0}
        if job:
            detail = requests.get(f"{settings.flink_rest_url}/jobs/{job.job_id}", timeout=HTTP_TIMEOUT).json()
            for vertex in detail["vertices"]:
                row["records_in"] += int(
                    _vertex_metrics(
                        settings, job.job_id, vertex["id"], lambda m: "Source__" in m and m.endswith(".numRecordsIn")
                    )
                )
                row["records_out"] += int(
                    _vertex_metrics(settings, job.job_id, vertex["id"], lambda m: m.endswith("__Writer.numRecordsSend"))
                )
        rows.append(row)
    return pd.DataFrame(rows, columns=["job", "state", "records_in", "records_out"])


def services(settings: Settings | None = None) -> pd.DataFrame:
    rows = [
        {"service": row.service, "healthy": row.healthy, "state": row.state, "url": row.url, "detail": row.detail}
        for row in stack.status(settings or get_settings())
    ]
    return pd.DataFrame(rows, columns=["service", "healthy", "state", "url", "detail"])


def snapshot(settings: Settings | None = None, rate_interval: float = 2.0) -> dict[str, pd.DataFrame]:
    """Everything at once: services, topics, lags, connectors, jobs."""
    settings = settings or get_settings()
    return {
        "services": services(settings),
        "topics": topic_rates(settings, rate_interval),
        "lags": lags(settings),
        "connectors": connectors(settings),
        "jobs": flink_jobs(settings),
    }


def show(frames: dict[str, pd.DataFrame]) -> None:
    """Render a snapshot in a notebook: a heading and a table per part."""
    from IPython.display import Markdown, display

    display(Markdown(f"**{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC**"))
    for title, frame in frames.items():
        display(Markdown(f"#### {title}"))
        display(frame.style.hide(axis="index"))


def live(settings: Settings | None = None, every: float = 5.0, rounds: int | None = None):
    """An ipywidgets panel that refreshes the snapshot every ``every`` seconds in the background."""
    import ipywidgets as widgets

    settings = settings or get_settings()
    panel = widgets.Output()
    stop = threading.Event()

    def refresh() -> None:
        done = 0
        while not stop.is_set() and (rounds is None or done < rounds):
            frames = snapshot(settings)
            with panel:
                panel.clear_output(wait=True)
                show(frames)
            done += 1
            stop.wait(every)

    threading.Thread(target=refresh, daemon=True, name="clicklib-monitor").start()
    panel.stop = stop.set  # lets the notebook stop the refresh: panel.stop()
    return panel


def row_counts(settings: Settings | None = None, seconds: float = 30.0, every: float = 2.0) -> pd.DataFrame:
    """Rows of each pipeline table in Cassandra, counted every ``every`` seconds for ``seconds``."""
    from clicklib import cassandra

    settings = settings or get_settings()
    rows = []
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        for table in cassandra.TABLES:
            rows.append({"seconds": round(elapsed, 1), "table": table, "rows": cassandra.count_rows(table, settings)})
        if elapsed >= seconds:
            return pd.DataFrame(rows, columns=["seconds", "table", "rows"])
        time.sleep(every)
