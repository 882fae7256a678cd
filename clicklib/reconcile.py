"""Reconciliation: one run's counts followed from what was sent to every table, side by side.

A run is the records one producer sent; ``RunStart.take`` notes where each topic ended before
it, and once the run is closed (``Pipeline.close_windows``) ``run`` counts what each stage
holds for it: the raw topic, the dead letters by reason, the valid events, the clean events
in Cassandra, the per-minute aggregates summed over the run's minutes, the sessions. Each
count is read from Kafka from the run's offsets on, or from Cassandra within the day
partitions and times the run covers, never from a whole table. Two counts that should agree
and do not are a finding: the report says so first.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from clicklib.generate import Workload
from clicklib.pipeline import Pipeline
from clicklib.streaming_sql import MARK_HEADER
from clicklib.templates import EVENT_BUCKET_MS
from clicklib.topics import DLQ, INTERNAL_DLQ, LATE, RAW, SINK_DLQ, VALID

TRACKED = (RAW, VALID, DLQ, LATE, INTERNAL_DLQ, SINK_DLQ)


@dataclass(frozen=True)
class RunStart:
    """Where each topic of a pipeline ended before a run: partition -> offset, per topic base."""

    offsets: dict[str, dict[int, int]]

    @classmethod
    def take(cls, pipeline: Pipeline) -> RunStart:
        return cls({base: pipeline.kafka.end_offsets(pipeline.topic(base)) for base in TRACKED})


@dataclass(frozen=True)
class Count:
    """One stage's count for the run against the count it should equal."""

    stage: str
    expected: int
    found: int
    source: str  # where ``found`` was read

    @property
    def agrees(self) -> bool:
        return self.expected == self.found


def run(pipeline: Pipeline, workload: Workload, start: RunStart) -> list[Count]:
    """The run's counts stage by stage, each against what the workload sent. Call it after
    ``Pipeline.close_windows``: before, the newest windows and sessions are still open."""
    events = pd.DataFrame([e.to_dict() for e in workload.events])
    clean = events[events["user_id"].notna()]
    invalid = Counter(r.reason for r in workload.records if r.reason is not None)
    first, last = int(events["date"].min()), int(events["date"].max())
    days = days_between(first, last)

    def since(base: str) -> list:
        return list(pipeline.kafka.read_since(pipeline.topic(base), start.offsets[base]))

    valid = [m for m in since(VALID) if not any(k == MARK_HEADER for k, _ in m.headers() or [])]
    dead = Counter(json.loads(m.value()).get("reason") for m in since(DLQ))
    counts = [
        Count("raw messages", len(workload.records), len(since(RAW)), pipeline.topic(RAW)),
        Count("valid events", len(events), len(valid), pipeline.topic(VALID)),
        Count("invalid messages", sum(invalid.values()), sum(dead.values()), pipeline.topic(DLQ)),
    ]
    for reason in sorted(set(invalid) | set(dead)):
        counts.append(Count(f"  invalid: {reason}", invalid[reason], dead[reason], pipeline.topic(DLQ)))
    keyspace = pipeline.settings.keyspace
    minute_first, minute_last = _ms(first // 60_000 * 60_000), _ms(last // 60_000 * 60_000)

    def total(cql: str, low: object, high: object) -> int:
        rows = [pipeline.reader.execute(cql, (day, low, high)).one() for day in days]
        return int(sum(row[0] or 0 for row in rows))

    def clean_rows() -> int:
        # events_by_day is keyed by (day, bucket): the run's slots of each day, 100 at a time.
        found = 0
        for day, slots in day_slots(first, last).items():
            for start in range(0, len(slots), 100):
                part = slots[start : start + 100]
                cql = (
                    f"SELECT COUNT(*) FROM {keyspace}.events_by_day WHERE day = %s AND bucket IN "
                    f"({', '.join(['%s'] * len(part))}) AND date >= %s AND date <= %s"
                )
                found += int(pipeline.reader.execute(cql, (day, *part, first, last)).one()[0])
        return found

    counts += [
        Count(
            "clean events (signed-in users) in Cassandra",
            len(clean),
            clean_rows(),
            f"{keyspace}.events_by_day",
        ),
        Count(
            "valid events counted per minute",
            len(events),
            total(
                f"SELECT SUM(events) FROM {keyspace}.status_per_minute WHERE day = %s AND window_start >= %s "
                "AND window_start <= %s",
                minute_first,
                minute_last,
            ),
            f"{keyspace}.status_per_minute",
        ),
        Count(
            "signed-in page views counted per minute",
            int((clean["event"] == "pageview").sum()),
            total(
                f"SELECT SUM(views) FROM {keyspace}.pageviews_per_minute WHERE day = %s AND window_start >= %s "
                "AND window_start <= %s",
                minute_first,
                minute_last,
            ),
            f"{keyspace}.pageviews_per_minute",
        ),
        Count(
            "sessions (distinct session ids) against session rows",
            int(events["session_id"].nunique()),
            total(
                f"SELECT COUNT(*) FROM {keyspace}.session_summary WHERE day = %s AND session_start >= %s "
                "AND session_start <= %s",
                _ms(first),
                _ms(last),
            ),
            f"{keyspace}.session_summary",
        ),
        Count("late events", 0, len(since(LATE)), pipeline.topic(LATE)),
        Count("records the jobs could not read", 0, len(since(INTERNAL_DLQ)), pipeline.topic(INTERNAL_DLQ)),
        Count("records the sink could not write", 0, len(since(SINK_DLQ)), pipeline.topic(SINK_DLQ)),
    ]
    return counts


def tables(
    events: pd.DataFrame,
    sessions: pd.DataFrame,
    daily: pd.DataFrame,
    status: pd.DataFrame,
    pageviews: pd.DataFrame,
) -> list[Count]:
    """The tables of a period against each other, from frames already read (the day partitions
    of ``events_by_day``, ``session_summary``, ``daily_kpis``, ``status_per_minute`` and
    ``pageviews_per_minute``). Each pair counts the same things two ways, so they agree once the
    run is closed; a session that crosses midnight into or out of the period, or one still
    open, makes the session counts differ, and the report says so."""
    signed_in = sessions[sessions["user_id"].notna()] if len(sessions) else sessions
    views = events[events["event"] == "pageview"] if len(events) else events

    def column(frame: pd.DataFrame, name: str) -> int:
        return int(frame[name].sum()) if len(frame) else 0

    return [
        Count(
            "sessions: daily_kpis against session_summary rows",
            column(daily, "sessions"),
            len(sessions),
            "session_summary",
        ),
        Count(
            "orders: daily_kpis against session_summary",
            column(daily, "purchases"),
            column(sessions, "purchased"),
            "session_summary",
        ),
        Count(
            "signed-in sessions: session ids in events_by_day against session rows with a user",
            int(events["session_id"].nunique()) if len(events) else 0,
            len(signed_in),
            "session_summary",
        ),
        Count(
            "signed-in page views: events_by_day against pageviews_per_minute",
            len(views),
            column(pageviews, "views"),
            "pageviews_per_minute",
        ),
        Count(
            "page loads: status_per_minute against session_summary",
            column(status, "requests"),
            column(sessions, "pageviews"),
            "session_summary",
        ),
        Count(
            "failed page loads: status_per_minute against session_summary",
            column(status, "errors"),
            column(sessions, "errors"),
            "session_summary",
        ),
    ]


def frame(counts: list[Count]) -> pd.DataFrame:
    """The counts as a table, disagreements first."""
    rows = [
        {"stage": c.stage, "expected": c.expected, "found": c.found, "read from": c.source, "agrees": c.agrees}
        for c in counts
    ]
    return pd.DataFrame(rows).sort_values("agrees", kind="stable", ignore_index=True)


def disagreements(counts: list[Count]) -> list[Count]:
    return [c for c in counts if not c.agrees]


def summary(counts: list[Count]) -> str:
    """One sentence: all agree, or which stages do not (loudly)."""
    wrong = disagreements(counts)
    if not wrong:
        return f"All {len(counts)} counts agree."
    listed = "; ".join(f"{c.stage}: {c.found:,} found, {c.expected:,} expected ({c.source})" for c in wrong)
    return f"COUNTS DISAGREE ({len(wrong)} of {len(counts)}): {listed}"


def day_slots(first_ms: int, last_ms: int) -> dict[str, list[int]]:
    """The events_by_day buckets from ``first_ms`` to ``last_ms``: UTC day -> its slots."""
    slots: dict[str, list[int]] = {}
    for start in range(first_ms // EVENT_BUCKET_MS * EVENT_BUCKET_MS, last_ms + 1, EVENT_BUCKET_MS):
        day = _ms(start).strftime("%Y-%m-%d")
        slots.setdefault(day, []).append(start % 86_400_000 // EVENT_BUCKET_MS)
    return slots


def days_between(first_ms: int, last_ms: int) -> list[str]:
    """The UTC days from the one holding ``first_ms`` to the one holding ``last_ms``, as 'YYYY-MM-DD'."""
    days = pd.date_range(_ms(first_ms).date(), _ms(last_ms).date(), freq="D")
    return [d.strftime("%Y-%m-%d") for d in days]


def _ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)
