"""The pipeline end to end against the real stack, compared exactly with pandas (tests/oracle.py).

One pipeline in its own namespace serves the module; the tests run in order: exactness,
then a replay of the same workload, then a Connect restart under load.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import Counter

import pandas as pd
import pytest

from clicklib import produce, stack, streaming_sql
from clicklib.generate import GeneratedRecord, Workload, generate
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from tests import oracle
from tests.checks import read_committed, same_rows, table

WORKLOAD = {"n_events": 20_000, "seed": 20261128, "invalid_ratio": 0.01}


@pytest.fixture(scope="module")
def pipeline(live_stack: Settings):
    with Pipeline(dataclasses.replace(live_stack, namespace=f"p{uuid.uuid4().hex[:8]}_")) as pipeline:
        pipeline.up()
        yield pipeline
        pipeline.down(purge=True)


# Landing referrers the simulator never sends, each opening an anonymous one-event session: the
# streaming SQL must name their channel as the oracle does (upper case, ports, user info,
# another scheme, no scheme, the shop itself).
ODD_REFERRERS = (
    "HTTPS://WWW.Google.COM:443/search?q=x",
    "https://me@www.facebook.com/x",
    "android-app://com.google.android.gm/",
    "google.com/no-scheme",
    "https://News.YCombinator.com/item?id=1",
    None,
)


@pytest.fixture(scope="module")
def workload():
    base = generate(**WORKLOAD)
    # Dated at the workload's earliest event, so that, sent first, none moves the watermark past it.
    earliest = min(e.date for e in base.events)
    landing = dataclasses.replace(
        next(e for e in base.events if e.init_session and e.event == "pageview"), date=earliest
    )
    odd = []
    for number, referrer in enumerate(ODD_REFERRERS):
        event = dataclasses.replace(
            landing, event_id=f"odd-{number}", session_id=f"odd-session-{number}", user_id=None, referrer=referrer
        )
        odd.append(GeneratedRecord(None, event.to_json(), event, None))
    # The shop's own host in upper case: an internal referrer.
    shop = landing.current_url.split("/", 3)
    internal = dataclasses.replace(
        landing,
        event_id="odd-internal",
        session_id="odd-session-internal",
        user_id=None,
        referrer=f"{shop[0]}//{shop[2].upper()}/elsewhere",
    )
    odd.append(GeneratedRecord(None, internal.to_json(), internal, None))
    # Sent first, as they are dated: at the workload's first event, they would come late after it.
    return Workload(base.profiles, odd + base.records, base.start_ms)


@pytest.fixture(scope="module")
def produced(pipeline, workload) -> Pipeline:
    report = produce.produce(pipeline, workload, show_progress=False)
    assert report.delivered == len(workload.records) and report.failed == 0
    pipeline.wait_settled(timeout=600)
    return pipeline


def test_every_clean_event_lands_in_cassandra_with_all_its_fields(produced, workload):
    expected = oracle.clean_events(workload)
    events = table(produced, "events_by_user")
    assert set(events["event_id"]) == set(expected["event_id"])
    same_rows(events, expected, ["event_id"])
    by_day = table(produced, "events_by_day")
    assert sorted(by_day["event_id"]) == sorted(expected["event_id"])
    utc_days = pd.to_datetime(by_day["date"], unit="ms").dt.strftime("%Y-%m-%d")
    assert (by_day["day"].astype(str) == utc_days).all()
    # The second part of the key: the 10-second slot of the UTC day.
    assert (by_day["bucket"] == by_day["date"] % 86_400_000 // 10_000).all()
    assert by_day.groupby(["day", "bucket"]).size().max() < by_day.groupby("day").size().max()


def test_the_dead_letter_topic_holds_exactly_the_invalid_messages(produced, workload):
    invalid = [(r.value, r.reason) for r in workload.records if r.reason is not None]
    assert len(invalid) == round(WORKLOAD["n_events"] * WORKLOAD["invalid_ratio"])
    dead = read_committed(produced.settings, produced.topic("clickstream_dlq"))
    assert Counter((d["message"], d["reason"]) for d in dead) == Counter(invalid)


@pytest.fixture(scope="module")
def watermark(produced) -> int:
    mark = streaming_sql.job_watermark(produced, "aggregates")
    assert mark is not None
    return mark


def test_closed_pageview_windows_equal_pandas(produced, workload, watermark):
    expected = oracle.closed(oracle.pageviews_per_minute(workload), watermark)
    assert len(expected) > 100
    same_rows(table(produced, "pageviews_per_minute"), expected, ["window_start", "page_type"])


def test_closed_sessions_equal_pandas(produced, workload, watermark):
    expected = oracle.closed(oracle.user_sessions(workload), watermark, end_column="session_end")
    assert len(expected) > 100
    same_rows(table(produced, "user_sessions"), expected, ["user_id", "session_start"])


def test_closed_status_windows_and_alerts_equal_pandas(produced, workload, watermark):
    expected = oracle.closed(oracle.status_per_minute(workload, produced.settings.alert_percent), watermark)
    assert expected["alert"].any() and not expected["alert"].all()
    same_rows(table(produced, "status_per_minute"), expected, ["window_start"])


def test_closed_activity_windows_equal_pandas(produced, workload, watermark):
    expected = oracle.closed(oracle.user_activity(workload), watermark)
    same_rows(table(produced, "user_activity"), expected, ["user_id", "window_start"])


KEYS = {
    "events_by_user": ["event_id"],
    "events_by_day": ["event_id"],
    "pageviews_per_minute": ["window_start", "page_type"],
    "user_activity": ["user_id", "window_start"],
    "user_sessions": ["user_id", "session_start"],
    "status_per_minute": ["window_start"],
}


def snapshot(pipeline: Pipeline) -> dict[str, pd.DataFrame]:
    return {name: table(pipeline, name).sort_values(key, ignore_index=True) for name, key in KEYS.items()}


def test_producing_the_same_workload_again_changes_no_row(produced, workload):
    before = snapshot(produced)
    report = produce.produce(produced, workload, show_progress=False)
    assert report.delivered == len(workload.records)
    produced.wait_settled(timeout=600)
    after = snapshot(produced)
    for name in ("events_by_user", "events_by_day"):
        pd.testing.assert_frame_equal(after[name], before[name], check_like=True, obj=name)
    # Every window row written before is still there, unchanged.
    for name in KEYS:
        kept = after[name].merge(before[name][KEYS[name]], on=KEYS[name])
        same_rows(kept, before[name][list(after[name].columns)], KEYS[name])
    # The replay wakes idle partitions, and the watermark may move on to the newest partition's
    # time: a window closed meanwhile must hold each event once, the replayed copies not counted.
    watermark = streaming_sql.job_watermark(produced, "aggregates")
    same_rows(
        after["pageviews_per_minute"],
        oracle.closed(oracle.pageviews_per_minute(workload), watermark),
        KEYS["pageviews_per_minute"],
    )
    same_rows(
        after["user_sessions"],
        oracle.closed(oracle.user_sessions(workload), watermark, end_column="session_end"),
        KEYS["user_sessions"],
    )
    same_rows(
        after["status_per_minute"],
        oracle.closed(oracle.status_per_minute(workload), watermark),
        KEYS["status_per_minute"],
    )


def test_closing_the_run_writes_every_window_and_session_as_pandas_does(produced, workload):
    # Before the close, the newest minutes and every session of the last 30 minutes are open.
    open_before = len(table(produced, "user_sessions"))
    assert open_before < len(oracle.user_sessions(workload))
    problems = produced.status().problems
    closed = produced.close_windows()
    # The jobs that hold output for the watermark: the windows, and the lake's hour folders.
    assert list(closed) == [produced.definition.job(name).flink_name for name in ("aggregates", "lake")]
    alert_percent = produced.settings.alert_percent
    same_rows(
        table(produced, "pageviews_per_minute"), oracle.pageviews_per_minute(workload), KEYS["pageviews_per_minute"]
    )
    same_rows(table(produced, "user_sessions"), oracle.user_sessions(workload), KEYS["user_sessions"])
    same_rows(
        table(produced, "status_per_minute"),
        oracle.status_per_minute(workload, alert_percent),
        KEYS["status_per_minute"],
    )
    same_rows(table(produced, "user_activity"), oracle.user_activity(workload), KEYS["user_activity"])
    # Every visitor's session, anonymous ones included, once, with its landing, exit and outcome.
    sessions = table(produced, "session_summary").assign(day=lambda f: f["day"].astype(str))
    expected = oracle.session_summary(workload)
    assert len(expected) == len(set(e.session_id for e in workload.events)) > 1000
    odd = expected[expected["session_id"].str.startswith("odd-session-")].set_index("session_id")["channel"]
    assert dict(odd) == {
        "odd-session-0": "google",
        "odd-session-1": "facebook",
        "odd-session-2": "google",
        "odd-session-3": "unknown",
        "odd-session-4": "news.ycombinator.com",
        "odd-session-5": "direct",
        "odd-session-internal": "internal",
    }
    assert expected["user_id"].isna().any()
    same_rows(sessions, expected, ["session_id"], "session_summary")
    kpis = table(produced, "daily_kpis").assign(day=lambda f: f["day"].astype(str))
    same_rows(kpis, oracle.daily_kpis(workload), ["day"], "daily_kpis")
    # The close marks are neither events nor dead letters, and nothing came late.
    assert produced.status().problems == problems
    assert problems["late events"] == problems["internal dead letters"] == problems["sink dead letters"] == 0


def test_restarting_connect_under_load_loses_and_duplicates_nothing(produced, workload):
    # A second workload after the first: later event times, other users and events.
    last = max(e.date for e in workload.events)
    second = generate(6_000, seed=7, start_ms=last + 3_600_000)
    produce.publish_profiles(produced, second.profiles)
    result: dict[str, produce.ProduceReport] = {}
    sender = threading.Thread(
        target=lambda: result.update(report=produce.produce_records(produced, second.records, 1_000, False))
    )
    sender.start()
    time.sleep(1.5)
    assert stack.down(produced.settings, ["connect"]) == ["connect"]
    time.sleep(2.0)  # events keep arriving while no worker runs
    stack.up(produced.settings, ["connect"])
    sender.join(timeout=120)
    assert result["report"].delivered == len(second.records)
    produced.wait_settled(timeout=600)
    expected = pd.concat([oracle.clean_events(workload), oracle.clean_events(second)])
    events = table(produced, "events_by_user")
    assert len(events) == len(expected)
    assert set(events["event_id"]) == set(expected["event_id"])
