"""Live metrics of the pipeline, the view a Kafka control center gives, as DataFrames.

Each function takes the ``Pipeline`` and returns a small DataFrame of what its services
report now: topic end offsets and message rates from Kafka, consumer-group lag of the Flink
jobs and Connect sinks, connector and task states from Connect, job states with records in
and out and the windows' watermark from Flink's REST API, and a health line per service. ``snapshot`` gathers them
all; ``live`` refreshes them in a notebook with ipywidgets.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pandas as pd

from clicklib import stack, streaming_sql
from clicklib.exceptions import ClicklibError
from clicklib.offsets import group_lag, problem_counts, topic_messages
from clicklib.pipeline import Pipeline
from clicklib.stack import supervisor


def lags(pipeline: Pipeline) -> pd.DataFrame:
    rows = [
        {"group": lag.group, "topic": lag.topic, "committed": lag.committed, "end": lag.end, "lag": lag.lag}
        for lag in pipeline.lags()
    ]
    return pd.DataFrame(rows, columns=["group", "topic", "committed", "end", "lag"])


def topic_rates(pipeline: Pipeline, interval: float = 2.0) -> pd.DataFrame:
    """Messages per topic and the rate they arrive at, from two readings ``interval`` apart."""
    first, started = topic_messages(pipeline.definition, pipeline.kafka), time.monotonic()
    time.sleep(interval)
    second, elapsed = topic_messages(pipeline.definition, pipeline.kafka), time.monotonic() - started
    rows = [
        {"topic": topic, "messages": count, "per_second": round((count - first.get(topic, count)) / elapsed, 1)}
        for topic, count in second.items()
    ]
    return pd.DataFrame(rows, columns=["topic", "messages", "per_second"])


def problems(pipeline: Pipeline) -> pd.DataFrame:
    """Invalid messages (dead letters), events that came too late for their windows, and records
    the Cassandra sink could not write: each a count that should stay 0 for clean traffic."""
    counts = problem_counts(pipeline.definition, pipeline.kafka)
    return pd.DataFrame({"problem": list(counts), "count": list(counts.values())})


def connectors(pipeline: Pipeline) -> pd.DataFrame:
    """Each sink connector's state, its tasks' states, its table, and how often the stack's
    supervisor restarted it after it failed."""
    restarted = supervisor.connector_restarts(pipeline.settings)
    stalled = supervisor.stalls(pipeline.settings)
    rows = []
    for connector in pipeline.definition.connectors:
        status = pipeline.connect.status(connector.name)
        stall = stalled.get(f"connector {connector.name}")
        rows.append(
            {
                "connector": connector.name,
                "state": status.state,
                "tasks": " ".join(status.tasks) or "-",
                "table": connector.config.get("cassandra.table", ""),
                "restarts": restarted.get(connector.name, 0),
                "stalled": stall.describe() if stall else "",
            }
        )
    return pd.DataFrame(rows, columns=["connector", "state", "tasks", "table", "restarts", "stalled"])


JOB_COLUMNS = [
    "job",
    "state",
    "running_since",
    "restarts",
    "records_in",
    "records_out",
    "watermark",
    "behind_s",
    "stalled",
]


def flink_jobs(pipeline: Pipeline) -> pd.DataFrame:
    """The pipeline's Flink jobs: state; since when the running job has run; the records its
    sources read and its sinks sent *since then* (Flink's counters start at 0 whenever a job is
    started or resumed from its saved state: the consumer lags say what was consumed in all); and,
    for a job with windows, the event-time watermark they have reached and how far it is behind
    the clock (freshness: a window closes once the watermark passes its end). ``restarts``: how
    often Flink restarted the running job after a failure (its restart strategy)."""
    now_ms = time.time() * 1000
    rows = []
    running = streaming_sql.running_jobs(pipeline)
    stalled = supervisor.stalls(pipeline.settings)
    for plan in pipeline.definition.jobs:
        job = running[plan.flink_name]
        stall = stalled.get(f"job {plan.flink_name}")
        row = {
            "job": plan.flink_name,
            "state": job.state if job else "NOT RUNNING",
            "running_since": _utc(job.start_time) if job and job.start_time > 0 else pd.NaT,
            "restarts": pipeline.flink.job_restarts(job.job_id) if job else 0,
            "records_in": 0,
            "records_out": 0,
            "watermark": pd.NaT,
            "behind_s": float("nan"),
            "stalled": stall.describe() if stall else "",
        }
        if job:
            for vertex in pipeline.flink.vertices(job.job_id):
                names = pipeline.flink.vertex_metric_names(job.job_id, vertex["id"])
                wanted_in = [m for m in names if "Source__" in m and m.endswith(".numRecordsIn")]
                wanted_out = [m for m in names if m.endswith("__Writer.numRecordsSend")]
                values = pipeline.flink.vertex_metrics(job.job_id, vertex["id"], wanted_in + wanted_out)
                row["records_in"] += int(sum(values.get(m, 0.0) for m in wanted_in))
                row["records_out"] += int(sum(values.get(m, 0.0) for m in wanted_out))
            watermark = streaming_sql.job_watermark(pipeline, plan.name, timeout=0)
            if watermark is not None:
                row["watermark"] = _utc(watermark)
                row["behind_s"] = round((now_ms - watermark) / 1000, 1)
        rows.append(row)
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def _utc(epoch_ms: float) -> pd.Timestamp:
    return pd.Timestamp(datetime.fromtimestamp(epoch_ms / 1000, UTC))


def services(pipeline: Pipeline) -> pd.DataFrame:
    """A row per service of the stack: healthy or not, its state, how often the supervisor
    restarted it, where it answers and what its probe said."""
    rows = [
        {
            "service": row.service,
            "healthy": row.healthy,
            "state": row.state,
            "restarts": row.restarts,
            "url": row.url,
            "detail": row.detail,
        }
        for row in stack.status(pipeline.settings)
    ]
    return pd.DataFrame(rows, columns=["service", "healthy", "state", "restarts", "url", "detail"])


def job_and_sink_lags(pipeline: Pipeline) -> pd.DataFrame:
    """The consumer lag of each Flink job and each sink connector, summed over the topics it
    reads: what it has yet to read."""
    names = {plan.flink_name: ("job", plan.flink_name) for plan in pipeline.definition.jobs}
    names.update({c.consumer_group: ("sink", c.name) for c in pipeline.definition.connectors})
    totals: dict[str, int] = {}
    for lag in pipeline.lags():
        totals[lag.group] = totals.get(lag.group, 0) + lag.lag
    rows = [{"kind": names[group][0], "name": names[group][1], "lag": lag} for group, lag in totals.items()]
    return pd.DataFrame(rows, columns=["kind", "name", "lag"])


def windows_days(pipeline: Pipeline) -> tuple[list, str]:
    """The UTC days whose partitions hold the newest windows, and why those: the day of the
    aggregates job's watermark (the windows' event time; replayed traffic is days behind the
    clock) and the day before; the clock's when no watermark is known yet."""
    try:
        watermark = streaming_sql.job_watermark(pipeline, timeout=0)
    except ClicklibError:
        watermark = None  # no such job running
    if watermark:
        now, basis = datetime.fromtimestamp(watermark / 1000, UTC), "the windows' watermark"
    else:
        now, basis = datetime.now(UTC), "the clock (no watermark yet: is the aggregates job running?)"
    return [now.date(), now.date() - timedelta(days=1)], basis


def newest_windows(pipeline: Pipeline, minutes: int = 10, days: list | None = None) -> dict[str, pd.DataFrame]:
    """The newest ``minutes`` one-minute windows in Cassandra, newest first: page views per minute
    (all page types) and page loads, failed loads, error rate and alert per minute. Reads the day
    partitions ``days`` (default: :func:`windows_days`) from the newest window on, never a whole
    table."""
    days = days or windows_days(pipeline)[0]
    views = _newest_rows(pipeline, "pageviews_per_minute", "window_start, views", days, minutes)
    per_minute = views.groupby("window_start", as_index=False)["views"].sum() if len(views) else views
    statuses = _newest_rows(pipeline, "status_per_minute", "window_start, requests, errors, alert", days, minutes)
    requests = statuses["requests"].astype("float64")
    statuses["error_rate"] = (statuses["errors"].astype("float64") / requests.where(requests > 0)).round(4)
    return {
        "pageviews": per_minute.sort_values("window_start", ascending=False, ignore_index=True),
        "errors": statuses.sort_values("window_start", ascending=False, ignore_index=True)[
            ["window_start", "requests", "errors", "error_rate", "alert"]
        ],
    }


def _newest_rows(pipeline: Pipeline, table: str, columns: str, days: list, minutes: int) -> pd.DataFrame:
    """The rows of a per-minute table (partition ``day``, clustered by ``window_start``) in the
    ``minutes`` up to the newest window of ``days``."""
    reader, keyspace = pipeline.reader, pipeline.reader.keyspace
    newest = [
        frame["window_start"].iloc[0]
        for day in days
        if len(
            frame := reader.query_df(
                f"SELECT window_start FROM {keyspace}.{table} WHERE day = %s ORDER BY window_start DESC LIMIT 1",
                [day],
            )
        )
    ]
    if not newest:
        return pd.DataFrame(columns=[c.strip() for c in columns.split(",")])
    since = (pd.Timestamp(max(newest)) - timedelta(minutes=minutes - 1)).to_pydatetime()  # the driver binds datetimes
    return pd.concat(
        [
            reader.query_df(
                f"SELECT {columns} FROM {keyspace}.{table} WHERE day = %s AND window_start >= %s", [day, since]
            )
            for day in days
        ],
        ignore_index=True,
    )


def snapshot(pipeline: Pipeline, rate_interval: float = 2.0) -> dict[str, pd.DataFrame]:
    """Everything at once: services, topics, problems, lags, connectors, jobs."""
    return {
        "services": services(pipeline),
        "topics": topic_rates(pipeline, rate_interval),
        "problems": problems(pipeline),
        "lags": lags(pipeline),
        "connectors": connectors(pipeline),
        "jobs": flink_jobs(pipeline),
    }


def show(frames: dict[str, pd.DataFrame]) -> None:
    """Render a snapshot in a notebook: a heading and a table per part."""
    from IPython.display import Markdown, display

    display(Markdown(f"**{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC**"))
    for title, frame in frames.items():
        display(Markdown(f"#### {title}"))
        display(frame.style.hide(axis="index"))


def live(pipeline: Pipeline, every: float = 5.0, rounds: int | None = None):
    """An ipywidgets panel that refreshes the snapshot every ``every`` seconds in the background."""
    import ipywidgets as widgets

    panel = widgets.Output()
    stop = threading.Event()

    def refresh() -> None:
        done = 0
        while not stop.is_set() and (rounds is None or done < rounds):
            frames = snapshot(pipeline)
            with panel:
                panel.clear_output(wait=True)
                show(frames)
            done += 1
            stop.wait(every)

    threading.Thread(target=refresh, daemon=True, name="clicklib-monitor").start()
    panel.stop = stop.set  # lets the notebook stop the refresh: panel.stop()
    return panel


def sink_lags(pipeline: Pipeline) -> pd.DataFrame:
    """Per Cassandra table: the topic its sink connector reads, the offsets it has written
    (``written``: committed offsets, commit markers of transactional topics included) and how
    far it trails (``behind``). From Kafka offsets: no table is counted, so it costs the same at
    any size."""
    rows = []
    for connector in pipeline.definition.connectors:
        for topic in connector.topics:
            lag = group_lag(pipeline.kafka, connector.consumer_group, topic)
            rows.append(
                {
                    "table": connector.config.get("cassandra.table"),
                    "topic": topic,
                    "written": lag.committed,
                    "behind": lag.lag,
                }
            )
    return pd.DataFrame(rows, columns=["table", "topic", "written", "behind"])


def sink_progress(pipeline: Pipeline, seconds: float = 30.0, every: float = 2.0) -> pd.DataFrame:
    """:func:`sink_lags` every ``every`` seconds for ``seconds``, with the seconds elapsed."""
    frames = []
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        frames.append(sink_lags(pipeline).assign(seconds=round(elapsed, 1)))
        if elapsed >= seconds:
            return pd.concat(frames, ignore_index=True)[["seconds", "table", "topic", "written", "behind"]]
        time.sleep(every)
