"""The Parquet lake written by the lake job, and Spark over it (clicklib.batch), on the live stack.

The lake is read with pyarrow alone (tests/checks.py) and compared with events_by_day; Spark's
answers are compared with the oracle of tests/oracle.py over the same workload; the recompute
of pageviews_per_minute is compared with the streaming table, clean and after a row is altered.
A TaskManager killed with -9 in the middle of a workload is the fault suite's (tests/faults),
which checks the lake after every kind of crash.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import date

import pytest

from clicklib import batch, lake, produce
from clicklib.generate import generate
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings, get_settings
from tests import oracle
from tests.checks import lake_holds_each_once, table


@pytest.fixture(scope="module")
def spark():
    session = batch.spark_session(get_settings())
    yield session
    session.stop()


@pytest.fixture(scope="module")
def landed(live_stack: Settings):
    """A pipeline of its own with a workload three hours old, produced, read and its windows
    closed; purged at the end (the last test purges it first)."""
    with Pipeline(dataclasses.replace(live_stack, namespace=f"l{uuid.uuid4().hex[:8]}_")) as pipeline:
        pipeline.up()
        start = int(time.time() * 1000) - 3 * 3_600_000
        workload = generate(3_000, seed=77, start_ms=start, invalid_ratio=0.02)
        assert produce.produce(pipeline, workload, show_progress=False).failed == 0
        pipeline.close_windows()
        yield pipeline, workload
        pipeline.down(purge=True)


def test_the_lake_holds_exactly_the_clean_events_each_once_in_hour_folders(landed):
    pipeline, workload = landed
    clean = oracle.clean_events(workload)
    written = lake_holds_each_once(pipeline.settings, set(clean["event_id"]))
    assert Counter(written).most_common(1)[0][1] == 1
    assert set(written) == set(clean["event_id"])
    assert set(written) == set(table(pipeline, "events_by_day")["event_id"])

    # Each event in the folder of its UTC day and hour; closing the windows finished every hour.
    rows = lake.read(pipeline.settings, columns=["event_id", "date", "day", "hour"])
    times = rows["date"].astype("datetime64[ms]")
    assert (rows["day"] == times.dt.strftime("%Y-%m-%d")).all()
    assert (rows["hour"] == times.dt.strftime("%H")).all()
    partitions = lake.partitions(pipeline.settings)
    assert {(p.day, p.hour) for p in partitions} == set(zip(rows["day"], rows["hour"], strict=True))
    # A folder is marked finished at the first checkpoint after the watermark passed its hour.
    deadline = time.monotonic() + 4 * pipeline.settings.checkpoint_interval_seconds
    while not all(p.finished for p in partitions) and time.monotonic() < deadline:
        time.sleep(1.0)
        partitions = lake.partitions(pipeline.settings)
    assert all(p.finished for p in partitions), [p for p in partitions if not p.finished]

    # `clicklib lake status` lists the same folders, each finished.
    shown = subprocess.run(
        [sys.executable, "-m", "clicklib.cli", "lake", "status"],
        capture_output=True,
        text=True,
        env={**os.environ, **pipeline.settings.to_env()},
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    listed = [line.split() for line in shown.stdout.splitlines()[1:] if line.strip()]
    assert [(row[0], row[1], row[-1]) for row in listed] == [(p.day, p.hour, "yes") for p in partitions]


def test_spark_over_the_lake_answers_as_the_oracle_and_the_recompute_finds_an_altered_row(landed, spark):
    pipeline, workload = landed
    settings = pipeline.settings
    lake_holds_each_once(settings, set(oracle.clean_events(workload)["event_id"]))
    events = batch.events(spark, settings).cache()

    funnel = batch.daily_funnel(events)
    for day, expected in oracle.daily_funnel(workload).items():
        got = funnel[funnel["day"] == day].set_index("step")
        assert got["did"].to_dict() == expected["did"], day
        assert got["reached"].to_dict() == expected["reached"], day
    sessions = batch.sessions_per_day(events)
    expected_sessions = oracle.sessions_per_day(workload)
    assert sessions["day"].tolist() == expected_sessions["day"].tolist()
    assert sessions["sessions"].tolist() == expected_sessions["sessions"].tolist()
    assert sessions["mean_duration_s"].tolist() == pytest.approx(expected_sessions["mean_duration_s"].tolist())

    # The streaming table and the lake agree on every minute of every day of the workload.
    days = sorted({oracle._utc_day(e.date) for e in workload.events})
    for day in days:
        assert batch.recompute_pageviews(spark, settings, pipeline.cassandra, day).empty, day

    # One row altered in Cassandra, one deleted: both are found, with the lake's and the table's counts.
    rows = pipeline.cassandra.execute(
        f"SELECT day, window_start, page_type, views FROM {settings.keyspace}.pageviews_per_minute "
        "WHERE day = %s LIMIT 2",
        [date.fromisoformat(days[0])],
    )
    altered, deleted = [row._asdict() for row in rows]
    pipeline.cassandra.execute(
        f"UPDATE {settings.keyspace}.pageviews_per_minute SET views = %s WHERE day = %s AND window_start = %s "
        "AND page_type = %s",
        [altered["views"] + 7, altered["day"], altered["window_start"], altered["page_type"]],
    )
    pipeline.cassandra.execute(
        f"DELETE FROM {settings.keyspace}.pageviews_per_minute WHERE day = %s AND window_start = %s AND page_type = %s",
        [deleted["day"], deleted["window_start"], deleted["page_type"]],
    )
    differences = batch.recompute_pageviews(spark, settings, pipeline.cassandra, days[0])
    found_rows = {
        (row["window_start"].to_pydatetime(), row["page_type"]): (
            row["lake_views"],
            row["streaming_views"],
            row["difference"],
        )
        for row in differences.to_dict("records")
    }
    assert found_rows == {
        (altered["window_start"], altered["page_type"]): (altered["views"], altered["views"] + 7, "counts differ"),
        (deleted["window_start"], deleted["page_type"]): (deleted["views"], None, "not in the streaming table"),
    }

    # The command says the same, exits 1, and with --repair mends both rows.
    command = [sys.executable, "-m", "clicklib.cli", "lake", "recompute", "pageviews", "--day", days[0]]
    env = {**os.environ, **settings.to_env()}
    found = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "2 rows of pageviews_per_minute" in found.stdout and "counts differ" in found.stdout, found.stdout
    repaired = subprocess.run([*command, "--repair"], capture_output=True, text=True, env=env, timeout=600)
    assert repaired.returncode == 0 and "2 rows now hold the lake's counts" in repaired.stdout, repaired.stdout
    assert batch.recompute_pageviews(spark, settings, pipeline.cassandra, days[0]).empty


def test_a_purged_pipeline_leaves_no_events_in_the_lake(landed):
    pipeline, _ = landed
    assert lake.exists(pipeline.settings)
    pipeline.down(purge=True)
    assert not lake.exists(pipeline.settings)
