"""The live dashboard (`clicklib dashboard`) in headless Chromium, against a pipeline of its own
with traffic flowing: its figures move between readings and match what `clicklib.monitor`
reads at the same time; with Connect stopped it shows Connect down and keeps serving; it only
reads and only answers this machine."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest
import requests

from clicklib import monitor, produce, stack
from clicklib.generate import generate
from clicklib.offsets import problem_counts, topic_messages
from clicklib.pipeline import Pipeline
from clicklib.topics import RAW
from tests.browser import DevTools

from .conftest import free_ports

EVERY = 2  # seconds between the dashboard's readings

# What the page shows, read from its cells (each carries its value as JSON in data-value).
PAGE_FIGURES = """(() => {
  const cells = (part, field) => Object.fromEntries([...document.querySelectorAll(`#${part} tbody tr`)]
    .map((row) => [row.dataset.key, JSON.parse(row.querySelector(`td[data-field="${field}"]`).dataset.value)]));
  const error = (part) => document.querySelector(`#${part} [data-error]`)?.textContent ?? null;
  return {
    taken_at: Number(document.getElementById("reading").dataset.takenAt || 0),
    messages: cells("topics", "messages"), per_second: cells("topics", "per_second"),
    problems: cells("problems", "count"), jobs: cells("jobs", "state"), connectors: cells("connectors", "state"),
    lags: cells("lags", "lag"), healthy: cells("services", "healthy"), pageviews: cells("pageviews", "views"),
    failed: cells("errors", "errors"), alerts: cells("errors", "alert"), restarts: cells("jobs", "restarts"),
    errors: { connectors: error("connectors"), topics: error("topics") },
  };
})()"""


@pytest.fixture(scope="module")
def pipeline(live_stack) -> Iterator[Pipeline]:
    with Pipeline(dataclasses.replace(live_stack, namespace=f"d{uuid.uuid4().hex[:8]}_")) as pipeline:
        pipeline.up()
        yield pipeline
        pipeline.down(purge=True)


@pytest.fixture(scope="module")
def dashboard(pipeline: Pipeline, tmp_path_factory) -> Iterator[str]:
    settings = dataclasses.replace(pipeline.settings, dashboard_port=free_ports(1)[0])
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "clicklib.cli", "dashboard", "--every", str(EVERY)],
            env={**os.environ, **settings.to_env()},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{settings.dashboard_port}/"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            requests.get(url, timeout=2)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"the dashboard did not answer: {log.read_text()}"
            time.sleep(0.3)
    yield url
    proc.terminate()
    assert proc.wait(timeout=30) == 0, log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture
def browser(tmp_path) -> Iterator[DevTools]:
    browser = DevTools(tmp_path / "profile")
    browser.viewport(1400, 1800)
    try:
        yield browser
    finally:
        browser.close()


def by_minute(frame, column: str) -> dict:
    return {
        row.window_start.strftime("%Y-%m-%dT%H:%M:%SZ"): getattr(row, column).item()
        if hasattr(getattr(row, column), "item")
        else getattr(row, column)
        for row in frame.itertuples()
    }


def page_after(browser: DevTools, moment: float, timeout: float = 60.0) -> dict:
    """The page's figures from the first reading taken after ``moment`` (epoch seconds)."""
    browser.wait_until(f"Number(document.getElementById('reading').dataset.takenAt || 0) > {moment}", timeout)
    return browser.evaluate(PAGE_FIGURES)


def test_the_figures_move_with_the_traffic_and_match_monitor_at_the_same_time(pipeline, dashboard, browser, tmp_path):
    workload = generate(6_000, seed=20261201, invalid_ratio=0.02)  # 30 s: traffic through both readings
    sender = threading.Thread(target=produce.produce, args=(pipeline, workload, 200.0, False))
    sender.start()
    try:
        browser.open(dashboard)
        time.sleep(3)  # traffic under way
        before_messages = topic_messages(pipeline.definition, pipeline.kafka)
        before_problems = problem_counts(pipeline.definition, pipeline.kafka)
        first = page_after(browser, time.time())
        after_messages = topic_messages(pipeline.definition, pipeline.kafka)
        after_problems = problem_counts(pipeline.definition, pipeline.kafka)
        jobs = monitor.flink_jobs(pipeline)
        connectors = monitor.connectors(pipeline)

        # Counters only grow: the page's reading, taken between two of monitor's, lies between them.
        assert set(first["messages"]) == set(before_messages)
        for topic, shown in first["messages"].items():
            assert before_messages[topic] <= shown <= after_messages[topic], topic
        assert set(first["problems"]) == set(before_problems)
        for problem, shown in first["problems"].items():
            assert before_problems[problem] <= shown <= after_problems[problem], problem
        assert first["jobs"] == dict(zip(jobs["job"], jobs["state"], strict=True)) != {}
        assert first["connectors"] == dict(zip(connectors["connector"], connectors["state"], strict=True)) != {}
        assert set(first["lags"]) == set(monitor.job_and_sink_lags(pipeline)["name"])
        assert all(first["healthy"].values()), first["healthy"]

        second = page_after(browser, first["taken_at"] + EVERY)
        raw = pipeline.topic(RAW)
        assert second["messages"][raw] > first["messages"][raw], "the raw topic's count did not move"
        assert second["per_second"][raw] > 0
    finally:
        sender.join(timeout=120)
    # The newest windows, once every window is written: the event times are months behind the clock
    # (a replay), so the page must find them by the windows' watermark.
    pipeline.wait_settled()
    third = page_after(browser, time.time())
    windows = monitor.newest_windows(pipeline)
    jobs = monitor.flink_jobs(pipeline)
    assert third["pageviews"], "no page views window shown"
    assert third["pageviews"] == by_minute(windows["pageviews"], "views")
    assert third["failed"] == by_minute(windows["errors"], "errors")
    assert third["alerts"] == by_minute(windows["errors"], "alert")
    assert third["restarts"] == {job: int(n) for job, n in zip(jobs["job"], jobs["restarts"], strict=True)}
    assert browser.problems == [], browser.problems
    assert browser.foreign_requests() == []
    browser.screenshot(tmp_path / "dashboard.png")


def test_with_connect_stopped_it_shows_connect_down_and_keeps_serving(pipeline, dashboard, browser, tmp_path):
    browser.open(dashboard)
    page_after(browser, 0)
    assert stack.down(pipeline.settings, ["connect"]) == ["connect"]
    try:
        stopped = time.time()
        down = page_after(browser, stopped)
        assert down["healthy"]["connect"] is False
        assert "connect" in down["errors"]["connectors"].lower()
        assert down["errors"]["topics"] is None, "Kafka's figures should not depend on Connect"
        assert down["healthy"]["kafka"] is True
        # And it keeps reading.
        later = page_after(browser, down["taken_at"])
        assert later["healthy"]["connect"] is False
        assert browser.problems == [], browser.problems
        browser.screenshot(tmp_path / "dashboard-connect-down.png")
    finally:
        stack.up(pipeline.settings, ["connect"])


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("GET", {"Host": "dashboard.evil.example"}, 403),  # a rebound name
        ("POST", {}, 405),
        ("DELETE", {}, 405),
    ],
)
def test_it_only_reads_and_only_answers_this_machine(dashboard, method, headers, status):
    answer = requests.request(method, f"{dashboard}api/reading", headers=headers, timeout=10)
    assert answer.status_code == status


def test_it_binds_loopback_only(dashboard):
    port = int(dashboard.rstrip("/").rsplit(":", 1)[1])
    listening = {
        (conn.laddr.ip, conn.laddr.port)
        for conn in psutil.net_connections("tcp")
        if conn.status == "LISTEN" and conn.laddr.port == port
    }
    assert listening == {("127.0.0.1", port)}
