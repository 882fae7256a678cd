"""Faults: a service killed with SIGKILL, or the stack or pipeline taken down and up, in the
middle of a tagged workload, with no manual step. Afterwards nothing is lost or counted twice.

Each test produces a workload (21 s at 500 events/s, 2% invalid, dated in the past), disrupts
the stack 12 s in, then produces a small closing workload three hours later in event time, which
moves the watermark past every window and session of the first (the pipeline down/up test sends
the last part of its workload and the closing one while the pipeline is down). The tests share
one pipeline, in a namespace of its own, as a user's pipeline lives through one fault after
another: each test's workload is dated after the one before it and its users are its own, and
each test asserts on its own events, windows and dead letters only. Then it asserts:

- every acknowledged clean event is in events_by_user and events_by_day;
- every window and session of the workload, in every aggregate table, equals the pandas
  oracle, those open at the fault included;
- clickstream_dlq holds each invalid message exactly once (read committed);
- the Parquet lake holds every clean event of the workload exactly once, read with pyarrow;
- the killed service came back by itself within 60 s, its jobs RUNNING again within 120 s,
  and `stack status` counts the restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest

from clicklib import produce, stack, streaming_sql
from clicklib.generate import Workload, generate
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.stack.process import read_pid, stack_processes
from clicklib.stack.services import PROCESSES
from tests import oracle
from tests.checks import lake_holds_each_once, read_committed, same_rows, table

from .conftest import RECOVERY

RATE = 500
EVENTS = 10_500  # 21 s at RATE: the fault at 12 s, after a checkpoint, with events still coming
FAULT_AFTER = 12.0
INVALID_RATIO = 0.02
SERVICE_BACK_WITHIN = 60.0
JOBS_BACK_WITHIN = 120.0


@pytest.fixture(scope="module")
def shared_pipeline(live_stack: Settings):
    """The suite's pipeline with the default idle timeout (make test shortens it for the other
    tests): a shorter one takes a partition whose writer is restarting for a quiet one."""
    default_idle = Settings.__dataclass_fields__["idle_timeout"].default
    settings = dataclasses.replace(live_stack, namespace=f"f{uuid.uuid4().hex[:8]}_", idle_timeout=default_idle)
    with Pipeline(settings) as pipeline:
        pipeline.up()
        yield pipeline
        pipeline.down(purge=True)


@pytest.fixture
def pipeline(shared_pipeline: Pipeline):
    """The shared pipeline, with whatever a failed test before this one left stopped started
    again (``up`` starts only what is not running)."""
    shared_pipeline.up()
    return shared_pipeline


# Where the next test's workload starts in event time: each after the previous test's closing
# run, so that no test's events come behind the watermark another's moved, nor share its windows.
NEXT_START_MS = [int(time.time() * 1000) - 72 * 3_600_000]


def workloads(seed: int) -> tuple[Workload, Workload]:
    """The tagged workload, dated in the past after every earlier test's, and a closing one
    three hours after it."""
    tagged = generate(EVENTS, seed=seed, invalid_ratio=INVALID_RATIO, start_ms=NEXT_START_MS[0])
    last = max(e.date for e in tagged.events)
    # The closing run's seed is far from every test's own: the same seed would give the same
    # users and event ids, and the pipeline drops an event id it has seen as a duplicate.
    closing = generate(600, seed=seed + 1_000_000, invalid_ratio=0.0, start_ms=last + 3 * 3_600_000)
    NEXT_START_MS[0] = max(e.date for e in closing.events) + 3_600_000
    assert NEXT_START_MS[0] < time.time() * 1000, "the suite's workloads no longer fit before now"
    return tagged, closing


def healthy(settings: Settings, service: str) -> bool:
    return any(row.service == service and row.healthy for row in stack.status(settings))


def jobs_running(pipeline: Pipeline) -> bool:
    try:
        jobs = streaming_sql.running_jobs(pipeline)
        if not all(jobs.values()):
            return False
        for job in jobs.values():
            detail = pipeline.flink.job(job.job_id)
            if detail["state"] != "RUNNING" or any(v["status"] != "RUNNING" for v in detail["vertices"]):
                return False
        return all(pipeline.connect.status(c.name).running for c in pipeline.definition.connectors)
    except Exception:  # a service on its way back answers with errors of every kind
        return False


def wait_for(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``condition`` holds, or None if it did not within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(1.0)
    return None


def restarts(settings: Settings, service: str) -> int:
    return next(row.restarts for row in stack.status(settings) if row.service == service)


def run_workload(pipeline: Pipeline, tagged: Workload, disrupt: Callable[[], dict]) -> dict:
    """Produce the tagged workload, disrupting the stack FAULT_AFTER seconds in."""
    result: dict = {}
    sender = threading.Thread(
        target=lambda: result.update(report=produce.produce(pipeline, tagged, rate=RATE, show_progress=False))
    )
    sender.start()
    time.sleep(FAULT_AFTER)
    figures = disrupt()
    sender.join(timeout=600)
    report = result["report"]
    assert report.delivered == len(tagged.records) and report.failed == 0, str(report)
    return figures


def dead_letters(pipeline: Pipeline) -> Counter:
    return Counter(
        (d["message"], d["reason"]) for d in read_committed(pipeline.settings, pipeline.topic("clickstream_dlq"))
    )


def assert_exact(pipeline: Pipeline, tagged: Workload, dead_before: Counter) -> None:
    """``dead_before``: the dead letters of the tests before this one."""
    clean = oracle.clean_events(tagged)
    users = set(clean["user_id"])
    first_ms = min(e.date for e in tagged.events)
    first_minute, last_ms = first_ms - first_ms % 60_000, max(e.date for e in tagged.events)
    for name in ("events_by_user", "events_by_day"):
        ids = set(table(pipeline, name)["event_id"])
        missing = set(clean["event_id"]) - ids
        assert not missing, f"{len(missing)} of {len(clean)} acknowledged clean events missing from {name}"

    by_user = {
        "user_activity": (oracle.user_activity(tagged), ["user_id", "window_start"]),
        "user_sessions": (oracle.user_sessions(tagged), ["user_id", "session_start"]),
    }
    for name, (expected, key) in by_user.items():
        actual = table(pipeline, name)
        same_rows(actual[actual["user_id"].isin(users)], expected, key, name)
    by_minute = {
        "pageviews_per_minute": (oracle.pageviews_per_minute(tagged), ["window_start", "page_type"]),
        "status_per_minute": (
            oracle.status_per_minute(tagged, pipeline.settings.alert_percent),
            ["window_start"],
        ),
    }
    for name, (expected, key) in by_minute.items():
        actual = table(pipeline, name)
        same_rows(actual[actual["window_start"].between(first_minute, last_ms)], expected, key, name)

    # The lake: exactly the clean events, each once (a crash neither loses nor repeats a file).
    written = Counter(lake_holds_each_once(pipeline.settings, set(clean["event_id"])))
    twice = {i: n for i, n in written.items() if n > 1}
    assert not twice, f"{len(twice)} events are in the lake more than once, e.g. {next(iter(twice.items()))}"
    tagged_ids = {e.event_id for e in tagged.events}
    missing = set(clean["event_id"]) - set(written)
    extra = {i for i in written if i in tagged_ids} - set(clean["event_id"])
    assert not missing and not extra, f"the lake misses {len(missing)} clean events, holds {len(extra)} others"

    invalid = Counter((r.value, r.reason) for r in tagged.records if r.reason is not None)
    dead = dead_letters(pipeline) - dead_before
    assert sum(invalid.values()) > 0
    duplicates = sum((dead - invalid).values())
    assert dead == invalid, f"clickstream_dlq: {duplicates} extra, {sum((invalid - dead).values())} missing"


def finish(pipeline: Pipeline, tagged: Workload, closing: Workload) -> float:
    """Close every window of the tagged workload with later traffic; returns the settle time.
    The closing run moves every partition's watermark past the tagged one, so only the
    consumers need to catch up: no partition has to fall idle."""
    report = produce.produce(pipeline, closing, show_progress=False)
    assert report.failed == 0
    return pipeline.wait_settled(timeout=600, windows=False)


KILLED = {
    "kafka": "kafka",
    "cassandra": "cassandra",
    "connect": "connect",
    "flink-taskmanager": "flink",
    "flink-jobmanager": "flink",
    "sql-gateway": "sql-gateway",
    "schema-registry": "schema-registry",
}
# Processes that run no part of a job: their loss disrupts nothing, so there is nothing to wait for.
# The registry's clients (the avro job, Connect's converter) keep the ids they have looked up.
DISRUPTS_NO_JOB = ("sql-gateway", "schema-registry")

# What each run kills at once: one process, or both that run no part of a job. Those two are
# killed together because each must come back and lose nothing, which one workload shows for
# both; one workload each would cost the full tier another minute and a half.
KILLED_TOGETHER = [
    ("kafka",),
    ("cassandra",),
    ("connect",),
    ("flink-taskmanager",),
    ("flink-jobmanager",),
    DISRUPTS_NO_JOB,
]

# `make test` kills the TaskManager (the jobs' state and the lake's files) and Cassandra (the sinks'
# retries); `make test-full` kills every process.
IN_EVERY_RUN = (("flink-taskmanager",), ("cassandra",))


@pytest.mark.parametrize(
    "process_names",
    [
        pytest.param(names, id="+".join(names), marks=() if names in IN_EVERY_RUN else pytest.mark.full)
        for names in KILLED_TOGETHER
    ],
)
def test_kill_9_loses_nothing_and_counts_nothing_twice(pipeline: Pipeline, process_names: tuple[str, ...]):
    settings = pipeline.settings
    services = sorted({KILLED[name] for name in process_names})
    tagged, closing = workloads(seed=7000 + KILLED_TOGETHER.index(process_names))
    before, dead_before = {service: restarts(settings, service) for service in services}, dead_letters(pipeline)

    def kill() -> dict:
        for name in process_names:
            pid = read_pid(PROCESSES[name].pid_path(settings))
            assert pid is not None, name
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # Flink notices a lost process only after its heartbeat timeout (20 s): until the jobs are
        # seen disrupted, "running" would be the state from before the kill. The SQL Gateway runs
        # no part of a job once submitted: its loss disrupts nothing, and the wait would only time out.
        if not set(process_names) <= set(DISRUPTS_NO_JOB):
            wait_for(lambda: not jobs_running(pipeline), 30)
        back = wait_for(lambda: all(healthy(settings, service) for service in services), 180)
        back_at = None if back is None else time.monotonic() - killed_at
        running = wait_for(lambda: jobs_running(pipeline), 240)
        running_at = None if running is None else time.monotonic() - killed_at
        return {
            "service back after s": None if back_at is None else round(back_at, 1),
            "jobs running after s": None if running_at is None else round(running_at, 1),
        }

    figures = run_workload(pipeline, tagged, kill)
    figures["settled after s"] = round(finish(pipeline, tagged, closing), 1)
    RECOVERY[f"kill -9 {' and '.join(process_names)}"] = figures
    assert figures["service back after s"] is not None and figures["service back after s"] <= SERVICE_BACK_WITHIN
    assert figures["jobs running after s"] is not None and figures["jobs running after s"] <= JOBS_BACK_WITHIN
    assert all(restarts(settings, service) > before[service] for service in services), before
    assert_exact(pipeline, tagged, dead_before)


# A process frozen (SIGSTOP) rather than killed: alive by every process-level measure, answering
# nothing. The stack rides out a pause shorter than its bounds and heals a longer one.
FROZEN = ("kafka", "cassandra", "connect", "flink-taskmanager", "flink-jobmanager")
FREEZE_SECONDS = 30.0
ARRIVED_AFTER_RESUME = 60.0
STACK_FREEZE_SECONDS = 120.0
ARRIVED_AFTER_STACK_RESUME = 90.0


def all_clean_events_in_cassandra(pipeline: Pipeline, tagged: Workload) -> Callable[[], bool]:
    clean = set(oracle.clean_events(tagged)["event_id"])

    def arrived() -> bool:
        try:
            return all(clean <= set(table(pipeline, name)["event_id"]) for name in ("events_by_user", "events_by_day"))
        except Exception:  # Cassandra on its way back answers with errors of every kind
            return False

    return arrived


def freeze(pids: list[int], seconds: float, during: Callable[[], None]) -> float:
    """Stop the processes, call ``during`` half-way, resume them; returns the monotonic time of the
    resume. A process the supervisor killed meanwhile (a stall past its bound) is gone: no resume."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds / 2)
        during()
        time.sleep(seconds / 2)
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    return time.monotonic()


@pytest.mark.full
@pytest.mark.parametrize("process_name", FROZEN)
def test_a_process_frozen_for_30_s_stalls_nothing_for_long(pipeline: Pipeline, process_name: str):
    settings = pipeline.settings
    service = KILLED[process_name]
    tagged, closing = workloads(seed=8000 + FROZEN.index(process_name))
    dead_before = dead_letters(pipeline)
    seen: dict = {}

    def look() -> None:
        seen["status"] = {row.service: row for row in stack.status(settings)}

    def pause() -> dict:
        pid = read_pid(PROCESSES[process_name].pid_path(settings))
        assert pid is not None, process_name
        seen["resumed_at"] = freeze([pid], FREEZE_SECONDS, look)
        return {}

    figures = run_workload(pipeline, tagged, pause)
    arrived = wait_for(all_clean_events_in_cassandra(pipeline, tagged), 300)
    after = None if arrived is None else round(time.monotonic() - seen["resumed_at"], 1)
    figures["every event in Cassandra after resume s"] = after
    figures["settled after s"] = round(finish(pipeline, tagged, closing), 1)
    RECOVERY[f"SIGSTOP 30 s {process_name}"] = figures
    # While it was frozen, the status named it: its service's row was not healthy, with why.
    row = seen["status"][service]
    assert not row.healthy and row.state in ("unhealthy", "stalled"), (row.state, row.detail)
    if process_name == "flink-taskmanager":
        assert "taskmanager" in row.detail, row.detail
    assert after is not None and after <= ARRIVED_AFTER_RESUME, figures
    assert_exact(pipeline, tagged, dead_before)


@pytest.mark.full
def test_the_whole_stack_frozen_for_2_min_resumes_by_itself(pipeline: Pipeline):
    """A laptop's lid closed mid-stream: every process of the stack stops at once, and wakes two
    minutes later with every heartbeat and session long expired."""
    settings = pipeline.settings
    tagged, closing = workloads(seed=8100)
    dead_before = dead_letters(pipeline)
    # The site sleeps with the laptop: the first 60 % is sent and acknowledged, the stack frozen
    # at once while the pipeline is still working through it, the rest sent after the wake-up.
    cut = len(tagged.records) * 6 // 10
    before = dataclasses.replace(tagged, records=tagged.records[:cut])
    after_wake = dataclasses.replace(tagged, profiles=[], records=tagged.records[cut:])
    report = produce.produce(pipeline, before, rate=RATE, show_progress=False)
    assert report.delivered == cut and report.failed == 0, str(report)
    pids = [proc.pid for proc in stack_processes(settings)]
    assert len(pids) >= len(PROCESSES), pids
    resumed_at = freeze(pids, STACK_FREEZE_SECONDS, lambda: None)
    report = produce.produce(pipeline, after_wake, rate=RATE, show_progress=False)
    assert report.delivered == len(after_wake.records) and report.failed == 0, str(report)
    figures = {"rest sent after resume s": round(time.monotonic() - resumed_at, 1)}
    seen = {"resumed_at": resumed_at}
    arrived = wait_for(all_clean_events_in_cassandra(pipeline, tagged), 400)
    after = None if arrived is None else round(time.monotonic() - seen["resumed_at"], 1)
    figures["every event in Cassandra after resume s"] = after
    figures["settled after s"] = round(finish(pipeline, tagged, closing), 1)
    RECOVERY["SIGSTOP 120 s whole stack"] = figures
    assert after is not None and after <= ARRIVED_AFTER_STACK_RESUME, figures
    assert_exact(pipeline, tagged, dead_before)


@pytest.mark.full
def test_stack_down_and_up_loses_nothing(pipeline: Pipeline):
    settings = pipeline.settings
    tagged, closing = workloads(seed=4242)
    dead_before = dead_letters(pipeline)

    def bounce() -> dict:
        started = time.monotonic()
        stack.down(settings)
        stack.up(settings)
        pipeline.up()
        return {"stack and pipeline back after s": round(time.monotonic() - started, 1)}

    figures = run_workload(pipeline, tagged, bounce)
    figures["settled after s"] = round(finish(pipeline, tagged, closing), 1)
    RECOVERY["stack down, up, pipeline up"] = figures
    assert_exact(pipeline, tagged, dead_before)


def test_pipeline_down_and_up_changes_no_window(pipeline: Pipeline):
    """`pipeline down` in the middle of a run, the rest of that run and a later run sent while it
    is down, then `pipeline up`: every window is as if nothing had happened.

    A run's start mark goes straight to the valid events topic, while its events go through the
    raw topic and the ingest job. Sent while the job cannot read them (down here; restarting after
    a crash in the tests above), the later run's mark, three hours ahead, must not overtake the
    first run's events: they would all be counted late instead of in their windows."""
    tagged, closing = workloads(seed=4343)
    dead_before = dead_letters(pipeline)
    # The first 80 % go out at RATE with the pipeline taken down FAULT_AFTER seconds in, while
    # they still arrive; the last 20 % only once it is down, so some are certainly unread.
    cut = len(tagged.records) * 8 // 10
    during = dataclasses.replace(tagged, records=tagged.records[:cut])
    while_down = dataclasses.replace(tagged, profiles=[], records=tagged.records[cut:])

    def take_down() -> dict:
        started = time.monotonic()
        stopped = pipeline.down()
        assert all("savepoint" in how for how in stopped.values()), stopped
        return {"pipeline down after s": round(time.monotonic() - started, 1)}

    figures = run_workload(pipeline, during, take_down)
    for workload in (while_down, closing):
        report = produce.produce(pipeline, workload, show_progress=False)
        assert report.delivered == len(workload.records) and report.failed == 0, str(report)
    started = time.monotonic()
    report = pipeline.up()
    assert all(how.startswith("resumed from its savepoint") for how in report.started.values()), report.started
    figures["pipeline up after s"] = round(time.monotonic() - started, 1)
    figures["settled after s"] = round(pipeline.wait_settled(timeout=600, windows=False), 1)
    RECOVERY["pipeline down, up"] = figures
    tagged_ids = {e.event_id for e in tagged.events}
    late = read_committed(pipeline.settings, pipeline.topic("clickstream_late"))
    late = [event for event in late if event["event_id"] in tagged_ids]
    assert not late, f"{len(late)} events counted late, e.g. {late[0]}"
    assert_exact(pipeline, tagged, dead_before)
