"""Event time that cannot move the windows off the clock.

A simulated workload shares the pipeline with real traffic: it ends at the moment it is produced,
so events carrying the current time, produced right after it, still get their windows. A date in
microseconds (a common tracker mistake) is dead-lettered with a reason that says so, and does not
lift the watermark after a pause, so the windows of the traffic that follows stay exact.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import pytest

from clicklib import produce
from clicklib.generate import Workload, generate
from clicklib.pipeline import Pipeline
from tests import oracle
from tests.checks import read_committed, same_rows, table


@pytest.fixture
def pipeline(running_pipeline: Pipeline) -> Pipeline:
    return running_pipeline


def test_current_events_after_a_simulated_workload_and_a_microsecond_date_get_exact_windows(pipeline):
    simulated = generate(3_000, seed=31, end_ms=int(time.time() * 1000))
    assert max(e.date for e in simulated.events) <= time.time() * 1000
    assert produce.produce(pipeline, simulated, show_progress=False).failed == 0

    event = simulated.events[0]
    in_microseconds = json.dumps({**event.to_dict(), "event_id": f"micro-{uuid.uuid4()}", "date": event.date * 1000})
    micro = Workload([], [dataclasses.replace(simulated.records[0], value=in_microseconds, event=None)])
    assert produce.produce_records(pipeline, micro.records, show_progress=False).delivered == 1

    # Events with the current time: they begin after the simulated ones and are produced once
    # their last one is due, so none runs ahead of the clock. Meanwhile every partition falls
    # idle: a far-future event that got through would now lift the watermark past them all.
    current = generate(100, seed=32, start_ms=max(e.date for e in simulated.events) + 5_000)
    due = max(e.date for e in current.events) / 1000
    time.sleep(max(pipeline.settings.idle_timeout_seconds + 5, due - time.time() + 1))
    assert produce.produce(pipeline, current, show_progress=False).failed == 0
    # An event dated at the simulated workload's start: far behind the watermark by now.
    late_event = dataclasses.replace(
        simulated.events[0], event_id=f"late-{uuid.uuid4()}", user_id=f"late-{uuid.uuid4()}"
    )
    late_record = dataclasses.replace(simulated.records[0], key=late_event.user_id, value=late_event.to_json())
    assert produce.produce_records(pipeline, [late_record], show_progress=False).delivered == 1
    # Later traffic (within the hour a date may run ahead) closes every window and session above.
    closing = generate(300, seed=33, start_ms=int(time.time() * 1000) + 31 * 60_000)
    assert produce.produce(pipeline, closing, show_progress=False).failed == 0
    pipeline.wait_settled(timeout=600)

    dead = read_committed(pipeline.settings, pipeline.topic("clickstream_dlq"))
    assert [d["message"] for d in dead] == [in_microseconds]
    assert "milliseconds expected, this looks like microseconds" in dead[0]["reason"]
    # The closing traffic is there to move the watermark, all 300 events in one burst after a
    # pause: every partition is idle by then, and the first one read back lifts the watermark
    # past the others' first events, so a few closing events may be late themselves.
    closing_ids = {e.event_id for e in closing.events}
    lates = [
        e
        for e in read_committed(pipeline.settings, pipeline.topic("clickstream_late"))
        if e["event_id"] not in closing_ids
    ]
    assert [e["event_id"] for e in lates] == [late_event.event_id], lates[:5]
    (late,) = lates
    late_closing = len(read_committed(pipeline.settings, pipeline.topic("clickstream_late"))) - 1
    assert late["job"] == "aggregates"
    assert late["behind_seconds"] > 60
    assert pipeline.status().problems == {
        "dead letters": 1,
        "late events": 1 + late_closing,
        "internal dead letters": 0,
        "sink dead letters": 0,
    }

    both = Workload(simulated.profiles + current.profiles, simulated.records + current.records)
    users = set(oracle.clean_events(both)["user_id"])
    current_users = set(oracle.clean_events(current)["user_id"])
    last_ms = max(e.date for e in current.events)
    activity = table(pipeline, "user_activity")
    assert current_users & set(activity["user_id"]), "the current events got no window"
    same_rows(
        activity[activity["user_id"].isin(users)],
        oracle.user_activity(both),
        ["user_id", "window_start"],
        "user_activity",
    )
    sessions = table(pipeline, "user_sessions")
    same_rows(
        sessions[sessions["user_id"].isin(users)],
        oracle.user_sessions(both),
        ["user_id", "session_start"],
        "user_sessions",
    )
    for name, expected, key in (
        ("pageviews_per_minute", oracle.pageviews_per_minute(both), ["window_start", "page_type"]),
        ("status_per_minute", oracle.status_per_minute(both, pipeline.settings.alert_percent), ["window_start"]),
    ):
        actual = table(pipeline, name)
        same_rows(actual[actual["window_start"] <= last_ms].reset_index(drop=True), expected, key, name)
