"""The pipeline as a whole: set it up, report on it, wait for it, take it down.

``up`` applies the Cassandra schema, checks every connector config and SQL statement
before creating anything, then creates the topics, registers the sink connectors and
submits the streaming SQL. Every step is idempotent, and a failure part-way removes the
connectors and jobs that call created, so nothing is left half-submitted.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from clicklib import cassandra, connect, ksql, topics
from clicklib.exceptions import PipelineError
from clicklib.monitor import GroupLag, consumer_lags, topic_offsets
from clicklib.settings import Settings, get_settings
from clicklib.templates import TOPICS


@dataclass
class PipelineStatus:
    topics: dict[str, int] = field(default_factory=dict)  # topic -> messages (sum of end offsets)
    jobs: dict[str, str] = field(default_factory=dict)  # Flink job name -> state
    connectors: dict[str, str] = field(default_factory=dict)  # connector -> "STATE task states"


def up(
    settings: Settings | None = None,
    ksql_dir: Path = ksql.KSQL_DIR,
    connect_dir: Path = connect.CONNECT_DIR,
) -> PipelineStatus:
    settings = settings or get_settings()
    cassandra.apply_schema(settings)
    client = connect.ConnectClient(settings)
    connectors = connect.load_connectors(settings, connect_dir)
    for connector in connectors:
        client.validate(connector)
    plans = ksql.plan_jobs(settings, ksql_dir)
    running = ksql.pipeline_jobs(settings, plans)
    ksql.check(settings, [plan for plan in plans if running[plan.flink_name] is None])

    topics.create_topics(settings)
    existing = set(client.names())
    try:
        connect.register(settings, connect_dir)
        ksql.submit(settings, ksql_dir)
    except BaseException:
        for connector in connectors:
            if connector.name not in existing:
                client.delete(connector.name)
        raise
    return status(settings, ksql_dir, connect_dir)


def status(
    settings: Settings | None = None,
    ksql_dir: Path = ksql.KSQL_DIR,
    connect_dir: Path = connect.CONNECT_DIR,
) -> PipelineStatus:
    settings = settings or get_settings()
    report = PipelineStatus()
    offsets = topic_offsets(settings)
    for base in TOPICS.values():
        name = settings.topic(base)
        report.topics[name] = offsets.get(name, -1)
    for name, job in ksql.pipeline_jobs(settings, ksql.plan_jobs(settings, ksql_dir)).items():
        report.jobs[name] = job.state if job else "NOT RUNNING"
    client = connect.ConnectClient(settings)
    for connector in connect.load_connectors(settings, connect_dir):
        state = client.status(connector.name)
        report.connectors[connector.name] = f"{state.state} {' '.join(state.tasks)}".strip()
    return report


def down(
    settings: Settings | None = None,
    purge: bool = False,
    ksql_dir: Path = ksql.KSQL_DIR,
    connect_dir: Path = connect.CONNECT_DIR,
) -> None:
    """Stop the jobs and remove the connectors; ``purge`` also deletes topics and keyspace."""
    settings = settings or get_settings()
    ksql.stop(settings, ksql_dir)
    connect.unregister(settings, connect_dir)
    if purge:
        topics.delete_topics(settings)
        cassandra.drop_keyspace(settings)


def wait_settled(settings: Settings | None = None, timeout: float = 600.0, quiet_seconds: float = 3.0) -> float:
    """Wait until the pipeline has done all it will do with what it was sent; returns the wait.

    That is: every consumer has caught up and stayed so for ``quiet_seconds``, and the event
    topics have been silent for longer than the idle timeout, after which every partition is
    idle, the watermark stops, and no further window will close until new events arrive.
    Flink commits its offsets at checkpoints, so this takes at least one checkpoint interval.
    """
    settings = settings or get_settings()
    started = time.monotonic()
    idle_after = _seconds(settings.idle_timeout) + 3.0
    event_topics = [settings.topic(TOPICS["raw"]), settings.topic(TOPICS["valid"])]
    previous: list[GroupLag] | None = None
    quiet_since = None
    while True:
        lags = consumer_lags(settings)
        if all(lag.lag == 0 for lag in lags) and lags == previous:
            quiet_since = quiet_since or time.monotonic()
            times = [topics.last_append_time(settings, topic) for topic in event_topics]
            last = max((t for t in times if t), default=0.0)
            if time.monotonic() - quiet_since >= quiet_seconds and time.time() - last >= idle_after:
                return time.monotonic() - started
        else:
            quiet_since = None
        if time.monotonic() - started > timeout:
            behind = ", ".join(f"{lag.group} on {lag.topic}: {lag.lag}" for lag in lags if lag.lag)
            raise PipelineError(f"the pipeline did not settle within {timeout:.0f} s; still behind: {behind or 'none'}")
        previous = lags
        time.sleep(1.0)


def _seconds(duration: str) -> float:
    """Seconds in a Flink duration such as "30 s", "500 ms", "2 min"."""
    number, unit = re.fullmatch(r"\s*([0-9.]+)\s*([a-z]*)\s*", duration.lower()).groups()
    factor = {"": 0.001, "ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}.get(unit)
    if factor is None:
        raise PipelineError(f"cannot read the duration {duration!r}; write it like '30 s'")
    return float(number) * factor
