"""Every notebook runs top to bottom under papermill against the stack, in its own namespace,
and the figures it records match an independent pandas computation over the same events."""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path

import pytest

from clicklib import reports
from clicklib.generate import generate
from clicklib.pipeline import Pipeline
from tests import oracle
from tests.browser import chromium

SMALL = {
    "01_stack.ipynb": {},
    "02_produce.ipynb": {"n_events": 3_000, "seed": 11, "invalid_ratio": 0.02},
    "03_streaming_sql.ipynb": {"preview_rows": 5, "preview_seconds": 60},
    "04_cassandra_sink.ipynb": {"watch_seconds": 6, "every": 2},
    "05_monitoring.ipynb": {"refresh": False},
    "06_analysis.ipynb": {},
}


@pytest.fixture(scope="module")
def executed(live_stack, tmp_path_factory):
    namespace = f"n{uuid.uuid4().hex[:8]}_"
    settings = dataclasses.replace(live_stack, namespace=namespace)
    out = tmp_path_factory.mktemp("notebooks")
    patch = pytest.MonkeyPatch()
    patch.setenv("CLICKLIB_NAMESPACE", namespace)  # the kernels papermill starts inherit it
    try:
        records = reports.execute_series(out, SMALL)
        records["out"] = out
        yield records
    finally:
        patch.undo()
        with Pipeline(settings) as pipeline:
            pipeline.down(purge=True)


@pytest.fixture(scope="module")
def workload():
    parameters = SMALL["02_produce.ipynb"]
    return generate(parameters["n_events"], seed=parameters["seed"], invalid_ratio=parameters["invalid_ratio"])


def test_the_stack_and_producer_notebooks_record_the_real_figures(executed, workload):
    assert executed["01_stack.ipynb"]["healthy_services"] == 5
    assert executed["02_produce.ipynb"]["delivered"] == len(workload.records)
    assert executed["02_produce.ipynb"]["raw_topic_messages"] == len(workload.records)


def test_the_sql_notebook_starts_both_jobs_and_previews_rows(executed):
    recorded = executed["03_streaming_sql.ipynb"]
    assert [name.split("_", 1)[1] for name in recorded["jobs"]] == [
        "clicklib-aggregates",
        "clicklib-enrich",
        "clicklib-ingest",
    ]
    assert recorded["preview_rows"] == SMALL["03_streaming_sql.ipynb"]["preview_rows"]


def test_the_sink_notebook_counts_every_clean_event(executed, workload):
    assert executed["04_cassandra_sink.ipynb"]["rows"]["events_by_user"] == len(oracle.clean_events(workload))


def test_the_monitoring_notebook_sees_the_pipeline_caught_up(executed, workload):
    recorded = executed["05_monitoring.ipynb"]
    assert recorded["total_lag"] == 0
    assert recorded["healthy_services"] == 5
    invalid = sum(1 for r in workload.records if r.reason is not None)
    assert recorded["problems"] == {
        "dead letters": invalid,
        "late events": 0,
        "internal dead letters": 0,
        "sink dead letters": 0,
    }
    raw = [count for topic, count in recorded["topics"].items() if topic.endswith("_clickstream")]
    assert raw == [len(workload.records)]


def test_the_analysis_notebook_funnel_and_sessions_match_pandas(executed, workload):
    clean = oracle.clean_events(workload)
    recorded = executed["06_analysis.ipynb"]
    funnel = oracle.funnel(workload)
    assert recorded["funnel_did"] == funnel["did"]
    assert recorded["funnel_reached"] == funnel["reached"]
    reached = funnel["reached"]
    sessions = clean["session_id"].nunique()
    assert reached["session"] == sessions
    steps = list(reached)
    previous = {step: reached[steps[max(i - 1, 0)]] for i, step in enumerate(steps)}
    # Recorded values come back as JSON objects: compared by step, not by order.
    assert recorded["funnel_of_sessions"] == pytest.approx({s: reached[s] / sessions for s in steps}, abs=1e-6)
    assert recorded["funnel_of_previous"] == pytest.approx({s: reached[s] / previous[s] for s in steps}, abs=1e-6)
    assert recorded["visitors"] == oracle.visitors(workload)
    pages = clean[clean["event"] == "pageview"].groupby("session_id").size().reindex(clean["session_id"].unique())
    assert recorded["bounce_rate"] == pytest.approx((pages.fillna(0) <= 1).mean(), abs=1e-6)
    ordered = clean[(clean["event"] == "purchase") & (clean["status"] < 400)]["session_id"].nunique()
    assert recorded["purchase_rate"] == pytest.approx(ordered / sessions, abs=1e-6)
    assert recorded["sessions"] == sessions
    assert recorded["events"] == len(clean)


def test_the_analysis_report_renders_its_charts_in_a_browser(executed, tmp_path):
    page = Path(executed["out"]) / "06_analysis.html"
    html = page.read_text()
    charts = len(re.findall(r'class="clicklib-chart"', html))
    assert charts >= 14
    rendered = chromium(page, tmp_path / "profile", "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    # Every chart div holds a drawn Vega view, and no script threw.
    assert rendered.stdout.count('class="marks"') >= charts, "charts did not render"
    assert "Uncaught" not in rendered.stderr, [line for line in rendered.stderr.splitlines() if "Uncaught" in line]
    shot = tmp_path / "06_analysis.png"
    chromium(page, tmp_path / "profile2", "--window-size=1280,4000", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000
