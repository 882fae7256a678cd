"""clicklib.batch (Spark, local mode) and clicklib.lake (pyarrow) against the oracle of
tests/oracle.py, over a generated workload that spans three days, and over lake folders written
here the way Flink's file sink lays them out."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clicklib import batch, lake
from clicklib.exceptions import LakeError, SettingsError
from clicklib.generate import Workload, generate
from clicklib.settings import Settings
from tests import oracle

DAY_MS = 86_400_000
DAY_1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture(scope="module")
def spark():
    session = batch.spark_session(Settings(spark_master="local[1]", spark_driver_memory="1g"))
    yield session
    session.stop()


@pytest.fixture(scope="module")
def workload() -> Workload:
    """Three days of the same users: all of them on day 1, then only some sessions come back
    (those whose id hashes to a kept bucket), so each cohort's share falls below 1."""
    days = []
    for n, keep in enumerate((4, 2, 1)):
        day = generate(600, seed=7, start_ms=DAY_1 + n * DAY_MS + 3_600_000)
        sessions = sorted({r.event.session_id for r in day.records if r.event})
        kept = {s for i, s in enumerate(sessions) if i % 4 < keep}
        days.append([r for r in day.records if r.event and r.event.session_id in kept])
    first = generate(600, seed=7, start_ms=DAY_1 + 3_600_000)
    return Workload(first.profiles, [r for records in days for r in records], DAY_1)


@pytest.fixture(scope="module")
def events(spark, workload):
    return batch.from_pandas(spark, oracle.clean_events(workload)).cache()


def test_the_workload_spans_three_days_with_returning_and_lapsed_users(workload):
    days = Counter(oracle._utc_day(e.date) for e in workload.events)
    assert len(days) == 3
    cohorts = oracle.retention(workload)
    assert 0 < cohorts[cohorts["day_number"] == 1]["share"].iloc[0] < 1


def test_the_daily_funnel_equals_the_oracle_step_by_step(events, workload):
    expected = oracle.daily_funnel(workload)
    funnel = batch.daily_funnel(events)
    assert sorted(funnel["day"].unique()) == sorted(expected)
    for row in funnel.itertuples():
        assert row.did == expected[row.day]["did"][row.step], (row.day, row.step)
        assert row.reached == expected[row.day]["reached"][row.step], (row.day, row.step)
    for _, day in funnel.groupby("day"):
        reached = day["reached"].tolist()
        assert reached == sorted(reached, reverse=True)
        assert day["of_sessions"].tolist() == pytest.approx([r / reached[0] for r in reached])
        assert day["of_previous"].tolist() == pytest.approx(
            [1.0] + [r / p if p else math.nan for r, p in zip(reached[1:], reached[:-1], strict=True)], nan_ok=True
        )


def test_sessions_per_day_equal_the_oracle(events, workload):
    expected = oracle.sessions_per_day(workload)
    sessions = batch.sessions_per_day(events)
    assert sessions["day"].tolist() == expected["day"].tolist()
    for column in ("sessions", "users", "events", "purchase_sessions"):
        assert sessions[column].astype(int).tolist() == expected[column].tolist(), column
    for column in ("mean_duration_s", "mean_depth"):
        assert sessions[column].tolist() == pytest.approx(expected[column].tolist()), column


def test_retention_cohorts_equal_the_oracle_with_zero_days_filled(events, workload):
    expected = oracle.retention(workload)
    cohorts = batch.retention(events)
    columns = ["cohort", "day_number", "cohort_users", "users"]
    assert cohorts[columns].astype({"day_number": int, "cohort_users": int, "users": int}).values.tolist() == (
        expected[columns].values.tolist()
    )
    assert cohorts["share"].tolist() == pytest.approx(expected["share"].tolist())
    assert (cohorts[cohorts["day_number"] == 0]["share"] == 1.0).all()


def test_top_pages_count_views_and_sessions_per_url(events, workload):
    clean = oracle.clean_events(workload)
    views = clean[clean["event"] == "pageview"]
    counts = Counter(views["current_url"])
    top = batch.top_pages(events, n=5)
    assert len(top) == 5
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
    assert list(zip(top["current_url"], top["views"].astype(int), strict=True)) == ranked
    for row in top.itertuples():
        assert row.sessions == views[views["current_url"] == row.current_url]["session_id"].nunique()


def test_a_days_pageviews_per_minute_equal_the_oracles(events, workload):
    day = "2026-01-02"
    expected = oracle.pageviews_per_minute(workload)
    expected = expected[pd.to_datetime(expected["window_start"], unit="ms").dt.date.astype(str) == day]
    recomputed = batch.pageviews_per_minute(events, day).toPandas().sort_values(["window_start", "page_type"])
    assert len(recomputed) == len(expected) > 0
    starts = (recomputed["window_start"].astype("datetime64[ms]").astype("int64")).tolist()
    assert starts == expected["window_start"].tolist()
    assert recomputed["page_type"].tolist() == expected["page_type"].tolist()
    assert recomputed["views"].tolist() == expected["views"].tolist()
    assert recomputed["users"].tolist() == expected["users"].tolist()


def _rows(*rows: tuple[str, str, int, int]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["window_start", "page_type", "views", "users"])
    frame["window_start"] = pd.to_datetime(frame["window_start"])
    return frame


def test_comparing_pageviews_lists_each_kind_of_difference_and_nothing_else():
    lake_rows = _rows(
        ("2026-01-02 10:00", "home", 5, 3), ("2026-01-02 10:01", "cart", 2, 2), ("2026-01-02 10:02", "x", 1, 1)
    )
    streaming = _rows(
        ("2026-01-02 10:00", "home", 5, 3), ("2026-01-02 10:01", "cart", 3, 2), ("2026-01-02 10:03", "y", 4, 1)
    )
    differences = batch.compare_pageviews(lake_rows, streaming)
    assert differences[["page_type", "difference"]].values.tolist() == [
        ["cart", "counts differ"],
        ["x", "not in the streaming table"],
        ["y", "not in the lake"],
    ]
    assert differences.loc[0, ["lake_views", "streaming_views"]].tolist() == [2, 3]
    assert batch.compare_pageviews(lake_rows, lake_rows.copy()).empty


def _write_lake(settings: Settings, frame: pd.DataFrame) -> None:
    """Files laid out as Flink's file sink writes them: committed part files, a hidden
    in-progress file, and a success marker in a finished hour."""
    root = lake.table_url(settings).removeprefix("file://")
    for (day, hour), rows in frame.groupby(["day", "hour"]):
        folder = f"{root}/day={day}/hour={hour}"
        table = pa.Table.from_pandas(rows.drop(columns=["day", "hour"]), schema=lake.COLUMNS, preserve_index=False)
        pa.fs.LocalFileSystem().create_dir(folder)
        pq.write_table(table, f"{folder}/part-0001-0-0")
        pq.write_table(table, f"{folder}/.part-0001-0-1.inprogress.abc")
    pq.write_table(table, f"{folder}/part-0001-0-2")  # the last hour's events once more: a replay
    open(f"{root}/day={frame['day'].iloc[0]}/hour={frame['hour'].iloc[0]}/_SUCCESS", "w").close()


def test_the_lake_is_read_as_flink_lays_it_out_and_spark_reads_each_event_once(spark, workload, tmp_path):
    settings = Settings(home=tmp_path, namespace="t1_")
    clean = oracle.clean_events(workload)[[f.name for f in lake.COLUMNS]].head(300).copy()
    times = pd.to_datetime(clean["date"], unit="ms")
    clean["day"], clean["hour"] = times.dt.strftime("%Y-%m-%d"), times.dt.strftime("%H")
    _write_lake(settings, clean)

    partitions = lake.partitions(settings)
    assert [(p.day, p.hour) for p in partitions] == sorted(set(zip(clean["day"], clean["hour"], strict=True)))
    assert [p.finished for p in partitions] == [True] + [False] * (len(partitions) - 1)
    assert sum(p.files for p in partitions) == len(partitions) + 1
    as_written = lake.read(settings)
    last_hour = clean[clean["hour"] == clean["hour"].iloc[-1]]
    assert len(as_written) == len(clean) + len(last_hour)
    assert sorted(lake.read(settings, days=[clean["day"].iloc[0]])["day"].unique()) == [clean["day"].iloc[0]]

    read = batch.events(spark, settings).toPandas()
    assert sorted(read["event_id"]) == sorted(clean["event_id"])
    assert set(read.columns) >= {"day", "hour", "time"}


def test_a_lake_without_events_says_where_it_looked_and_what_writes_it(spark, tmp_path):
    settings = Settings(home=tmp_path)
    with pytest.raises(LakeError, match=r"no clean events at file://.*/lake/clean_events.*lake job"):
        lake.read(settings)
    with pytest.raises(LakeError, match="no clean events"):
        batch.events(spark, settings)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/data/lake/", "file:///data/lake"),
        ("file:///data/lake", "file:///data/lake"),
        ("s3a://bucket/clicks", "s3a://bucket/clicks"),
    ],
)
def test_the_lake_location_is_a_url(value, expected):
    settings = Settings(lake_url=value)
    assert settings.lake_url == expected
    assert settings.flink_lake_url == expected
    assert lake.table_url(Settings(lake_url=value, namespace="n_")) == f"{expected}/n_clean_events"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lake_url": "s3://bucket/x"}, "write s3a://"),
        ({"lake_url": "hdfs://nn/x"}, "not a folder, a file:// URL or an s3a:// URL"),
        ({"lake_url": "/tmp/it's"}, "may not hold a quote"),
        ({"lake_s3_access_key": "AK"}, "set both CLICKLIB_LAKE_S3_ACCESS_KEY and CLICKLIB_LAKE_S3_SECRET_KEY"),
        ({"lake_s3_endpoint": "minio:9000"}, "CLICKLIB_LAKE_S3_ENDPOINT='minio:9000' is not a URL"),
        ({"spark_master": "local[two]"}, "CLICKLIB_SPARK_MASTER='local\\[two\\]' is not a Spark master"),
        ({"spark_driver_memory": "lots"}, "CLICKLIB_SPARK_DRIVER_MEMORY='lots' is not an amount of memory"),
    ],
)
def test_bad_lake_and_spark_settings_are_refused_naming_the_variable(changes, message):
    with pytest.raises(SettingsError, match=message):
        Settings(**changes)


def test_the_s3_secret_key_is_not_in_the_settings_repr():
    settings = Settings(lake_url="s3a://b/x", lake_s3_access_key="AK", lake_s3_secret_key="very-secret")
    assert "very-secret" not in repr(settings)
    assert dataclasses.replace(settings).lake_s3_secret_key == "very-secret"


def test_local_spark_has_no_web_ui_and_binds_loopback(spark):
    assert spark.conf.get("spark.ui.enabled") == "false"
    assert spark.conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
