"""The streaming SQL jobs on the Flink cluster: check, submit, stop, watch and preview them.

Submission checks every statement first (definitions run, INSERTs are EXPLAINed) and
starts nothing if any is broken; a job already running is left alone, so submitting
twice never starts a second copy. The jobs are checked and started side by side, each in a
SQL Gateway session of its own: most of the time goes to the gateway's round trips.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clicklib import job_state
from clicklib.exceptions import DefinitionError, FlinkError, SqlError
from clicklib.flink import JobInfo
from clicklib.job_state import SavedState
from clicklib.sql_gateway import Operation, SqlGatewaySession, excerpt
from clicklib.sql_scripts import JobPlan, plan_jobs
from clicklib.topics import VALID

if TYPE_CHECKING:
    from clicklib.pipeline import Pipeline

# Long.MIN_VALUE is Flink's "no watermark yet".
NO_WATERMARK = -(2**62)
# The committer of an exactly-once Kafka sink, as Flink names its vertex ("t1_dlq[12]: Committer").
KAFKA_COMMITTER = re.compile(r":\s*Committer\b")


def running_jobs(pipeline: Pipeline, plans: Sequence[JobPlan] | None = None) -> dict[str, JobInfo | None]:
    """The active Flink job of each planned job (all of the pipeline's by default), or None."""
    active = pipeline.flink.active_jobs()
    return {plan.flink_name: active.get(plan.flink_name) for plan in plans or pipeline.definition.jobs}


def _run_definitions(session: SqlGatewaySession, plan: JobPlan) -> None:
    for statement in plan.definitions:
        try:
            session.execute(statement.text)
        except SqlError as exc:
            raise SqlError(f"{statement.source}: {exc}", exc.address) from None


def side_by_side(plans: Sequence[JobPlan], work: Callable[[JobPlan], None]) -> None:
    """Run ``work`` for every job at once, one thread each, and wait for all of them; then raise
    the error of the first job (in the definition's order) that failed, as a loop would have."""
    if not plans:
        return
    with ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="clicklib-job") as pool:
        futures = [pool.submit(work, plan) for plan in plans]
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error


@contextlib.contextmanager
def prepared_sessions(
    pipeline: Pipeline, plans: Sequence[JobPlan], explain: bool = True
) -> Iterator[dict[str, SqlGatewaySession]]:
    """A SQL Gateway session per job (Flink name -> session) with the job's definitions run and,
    with ``explain``, every INSERT compiled by EXPLAIN, which starts nothing. Sessions are closed
    on leaving; a broken statement raises naming its file before the block runs."""
    sessions: dict[str, SqlGatewaySession] = {}

    def prepare(plan: JobPlan) -> None:
        session = pipeline.sql_gateway.session()
        sessions[plan.flink_name] = session
        _run_definitions(session, plan)
        if explain:
            for statement in plan.inserts:
                try:
                    session.execute(f"EXPLAIN {statement.text}")
                except SqlError as exc:
                    raise SqlError(f"{statement.source}: {exc}", exc.address) from None

    try:
        side_by_side(plans, prepare)
        yield sessions
    finally:
        for session in sessions.values():
            session.close()


@dataclass(frozen=True)
class JobStart:
    """How ``submit`` left one job."""

    job_id: str
    how: str  # "already running", "resumed from ...", "started fresh ..."


def plan_starts(
    pipeline: Pipeline, plans: Sequence[JobPlan], fresh: bool, drop_unrestorable: bool
) -> dict[str, SavedState | None]:
    """The state each job will resume from (None: a fresh start), refusing before anything is
    submitted to resume a job from state its SQL no longer fits."""
    starts: dict[str, SavedState | None] = {}
    changed = []
    for plan in plans:
        state = None if fresh else job_state.newest_state(pipeline.settings, pipeline.flink, plan.flink_name)
        if state is not None and not drop_unrestorable and job_state.sql_changed(pipeline.settings, plan):
            changed.append(f"{plan.name} ({state.describe()})")
        starts[plan.flink_name] = state
    if changed:
        raise DefinitionError(
            f"the SQL of job(s) {', '.join(changed)} changed since their state was saved, so Flink could not "
            "resume them from it; nothing was submitted. Either start them with empty state "
            "(`clicklib pipeline up --fresh`: windows and sessions open now start over), or keep the state "
            "that still fits and drop the rest (`clicklib pipeline up --drop-unrestorable-state`), or put "
            "the old SQL back"
        )
    return starts


def submit(
    pipeline: Pipeline,
    jobs: Sequence[str] | None = None,
    checked: bool = False,
    fresh: bool = False,
    drop_unrestorable: bool = False,
    prepared: Mapping[str, SqlGatewaySession] | None = None,
) -> dict[str, JobStart]:
    """Start each job (or only ``jobs``) that is not running, resuming it from its newest
    savepoint or retained checkpoint unless ``fresh``.

    Every statement is checked first (unless ``checked``), and every saved state against
    the SQL it was taken from. ``prepared``: sessions from ``prepared_sessions`` (Flink name ->
    session) to start jobs in, so their definitions are not run again. Returns Flink job name ->
    how it was left. If starting a job fails, the jobs this call started are cancelled again.
    """
    plans = [plan for plan in pipeline.definition.jobs if jobs is None or plan.name in jobs]
    running = running_jobs(pipeline, plans)
    pending = [plan for plan in plans if running[plan.flink_name] is None]
    starts = plan_starts(pipeline, pending, fresh, drop_unrestorable)
    result = {name: JobStart(job.job_id, "already running") for name, job in running.items() if job}
    given = dict(prepared or {})
    unprepared = [plan for plan in pending if plan.flink_name not in given]
    started: dict[str, str] = {}  # Flink name -> job id, of the jobs this call started

    def start(plan: JobPlan) -> None:
        state = starts[plan.flink_name]
        if fresh:
            job_state.forget(pipeline.settings, plan.flink_name)
        session = sessions[plan.flink_name]
        session.execute(f"SET 'pipeline.name' = '{plan.flink_name}'")
        if state is not None:
            session.execute(f"SET 'execution.state-recovery.path' = '{state.path}'")
            if drop_unrestorable:
                session.execute("SET 'execution.state-recovery.ignore-unclaimed-state' = 'true'")
        operation = session.submit(plan.statement_set())
        job_id = _wait_for_job_id(session, operation)
        started[plan.flink_name] = job_id
        job_state.record_started(pipeline.settings, plan, job_id)

    # Every session is prepared (and, unless checked, every statement compiled) before any job starts.
    with prepared_sessions(pipeline, unprepared, explain=not checked) as own:
        sessions = {**given, **own}
        try:
            side_by_side(pending, start)
            for plan in pending:
                state = starts[plan.flink_name]
                how = f"resumed from its {state.describe()}" if state else "started fresh (no saved state)"
                result[plan.flink_name] = JobStart(started[plan.flink_name], how)
            wait_running(pipeline, {name: start.job_id for name, start in result.items()})
        except BaseException:
            for job_id in started.values():
                pipeline.flink.cancel(job_id)
            raise
    for plan in pending:
        # The new job has taken over: older checkpoints and savepoints of this name go.
        job_state.prune(pipeline.settings, plan.flink_name, starts[plan.flink_name], result[plan.flink_name].job_id)
    return result


def wait_running(pipeline: Pipeline, jobs: dict[str, str], timeout: float = 180.0) -> None:
    """Wait until each job (name -> job id) and all its tasks are RUNNING; a job that fails or
    keeps restarting raises with Flink's root cause."""
    deadline = time.monotonic() + timeout
    pending = dict(jobs)
    while pending:
        for name, job_id in list(pending.items()):
            detail = pipeline.flink.job(job_id)
            state = detail.get("state")
            vertices = detail.get("vertices", [])
            if state == "RUNNING" and vertices and all(v.get("status") == "RUNNING" for v in vertices):
                del pending[name]
            elif state in ("FAILED", "CANCELED", "FAILING") or (
                state == "RESTARTING" and time.monotonic() > deadline - timeout / 2
            ):
                raise FlinkError(_failure(pipeline, name, job_id, state), pipeline.flink.base)
        if pending and time.monotonic() > deadline:
            raise FlinkError(
                f"job(s) {', '.join(pending)} not running after {timeout:.0f} s; "
                "`clicklib stack status` shows whether the TaskManager has free slots",
                pipeline.flink.base,
            )
        if pending:
            time.sleep(0.5)


def _failure(pipeline: Pipeline, name: str, job_id: str, state: str) -> str:
    cause = pipeline.flink.root_cause(job_id) or "Flink gave no reason"
    hint = ""
    if "state" in cause.lower() and ("restore" in cause.lower() or "map" in cause.lower()):
        hint = (
            "; its saved state does not fit its SQL: `clicklib pipeline up --fresh` starts it with empty state, "
            "`--drop-unrestorable-state` keeps what fits"
        )
    return f"job {name} is {state}: {cause}{hint}"


def _wait_for_job_id(session: SqlGatewaySession, operation: Operation, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in session.results(operation):
            if "job id" in row:
                return row["job id"]
        time.sleep(0.5)
    raise SqlError(
        f"the SQL Gateway returned no job id for `{excerpt(operation.statement)}` within {timeout:.0f} s",
        session.client.base,
    )


def stop(pipeline: Pipeline, savepoint: bool = True) -> dict[str, str]:
    """Stop the pipeline's running jobs, each with a savepoint (unless not ``savepoint``: then
    cancel them; their newest retained checkpoint stays). Returns job name -> what happened."""
    names = [name for name, job in running_jobs(pipeline).items() if job]
    if savepoint:
        return job_state.save_running(pipeline.settings, pipeline.flink, names)
    active = pipeline.flink.active_jobs()
    for name in names:
        pipeline.flink.cancel(active[name].job_id)
    return dict.fromkeys(names, "cancelled")


MARK_HEADER = "clicklib-mark"  # the Kafka header of time marks (see ksql/07_valid_events.sql)
CLOSE_MARK_TIMEOUT = 60.0  # how long a job gets to read the close marks before the close gives up


def close_windows(pipeline: Pipeline) -> dict[str, str]:
    """Fire every open window of the running jobs that have windows (and finish the lake's
    folders), then resume them; returns job name -> what happened.

    Each such job is stopped with a draining savepoint (its sources send the end of event time,
    so every open window and session is written) and resumed from that savepoint at once. The
    watermark is not part of the savepoint: the resumed job starts a new one from the next
    events, so events dated before the close that arrive afterwards open windows of their own
    instead of being late. That is why Flink advises against resuming a drained job; here the
    runs that follow are dated after the closed one (``produce.workload_after``), so no window
    the close wrote is opened again.
    """
    names = [plan.flink_name for plan in pipeline.definition.jobs if plan.holds_output_for_watermark]
    running = [name for name, job in running_jobs(pipeline).items() if job and name in names]
    if len(running) < len(names):
        stopped = ", ".join(sorted(set(names) - set(running)))
        raise FlinkError(f"cannot close the windows of {stopped}: not running; `clicklib pipeline up` starts it")
    # Flink drops the end-of-time watermark of a source that is idle (FLINK-40499), and after a
    # run every source is: a time mark on every partition (07_valid_events.sql) wakes them, and
    # the drain waits until the windows' watermark shows the mark was read. The mark is dated
    # just after the newest event, as if one more event had come: should the close fail, the
    # watermark is where the next event would have put it anyway, not ahead of the traffic.
    delay_ms = int(pipeline.settings.watermark_delay_seconds * 1000)
    windowed = [plan.name for plan in pipeline.definition.jobs if plan.flink_name in running]
    reached = [job_watermark(pipeline, name) for name in windowed]
    newest = pipeline.kafka.newest_date(pipeline.topic(VALID))
    if newest is None and all(mark is None for mark in reached):
        return dict.fromkeys(running, "no events yet: no window to close")
    mark_ms = max([newest or 0, *(mark + delay_ms + 1 for mark in reached if mark is not None)]) + 1
    pipeline.kafka.mark_every_partition(pipeline.topic(VALID), {MARK_HEADER: str(mark_ms).encode()})
    for name in windowed:
        _wait_for_watermark(pipeline, name, mark_ms - delay_ms - 1)
    done = job_state.save_running(pipeline.settings, pipeline.flink, running, drain=True)
    failed = {name: how for name, how in done.items() if "cancelled" in how}
    wait_stopped(pipeline, names=running)
    starts = submit(pipeline, jobs=windowed, checked=True)
    if failed:
        raise FlinkError(
            "; ".join(
                f"{name} did not drain its windows and resumed from its checkpoint: {how}"
                for name, how in failed.items()
            ),
            pipeline.flink.base,
        )
    return {name: f"windows closed, {starts[name].how}" for name in running}


def _wait_for_watermark(pipeline: Pipeline, job: str, target_ms: int) -> None:
    deadline = time.monotonic() + CLOSE_MARK_TIMEOUT
    while (job_watermark(pipeline, job, timeout=5.0) or 0) < target_ms:
        if time.monotonic() > deadline:
            raise FlinkError(
                f"job {job} did not read the close marks within {CLOSE_MARK_TIMEOUT:.0f} s, so its windows were "
                "not closed; `clicklib pipeline status` shows whether it is behind; close again once it has caught up",
                pipeline.flink.base,
            )
        time.sleep(0.5)


def wait_stopped(pipeline: Pipeline, timeout: float = 60.0, names: Sequence[str] | None = None) -> None:
    """Wait until none of the pipeline's jobs (or of ``names``) is active any more."""
    deadline = time.monotonic() + timeout

    def active() -> list[str]:
        return [name for name, job in running_jobs(pipeline).items() if job and (names is None or name in names)]

    while active():
        if time.monotonic() > deadline:
            still = ", ".join(active())
            raise FlinkError(f"jobs still active {timeout:.0f} s after they were stopped: {still}")
        time.sleep(0.5)


def job_watermark(pipeline: Pipeline, job: str = "aggregates", timeout: float = 30.0) -> int | None:
    """The event-time watermark a running job's windows have reached (epoch ms), if any yet.

    It is the smallest input watermark over the job's non-source vertices: a window
    [start, end) has fired once this is at least end - 1. Flink fetches metrics lazily,
    so the first asks may come back empty.
    """
    flink_name = pipeline.definition.job(job).flink_name
    info = pipeline.flink.active_jobs().get(flink_name)
    if info is None:
        raise FlinkError(f"no running Flink job named {flink_name}; start it with `clicklib pipeline up`")
    # Sources have no input watermark, nor do the committers of exactly-once Kafka sinks
    # ("<table>: Committer": they receive committables, not records): neither says how far the
    # windows are. The lake's PartitionCommitter follows the file writer in the writer's vertex.
    vertices = [
        v
        for v in pipeline.flink.vertices(info.job_id)
        if not v.get("name", "").startswith("Source") and not KAFKA_COMMITTER.search(v.get("name", ""))
    ]
    deadline = time.monotonic() + timeout
    while True:
        marks = []
        for vertex in vertices:
            marks.extend(pipeline.flink.vertex_watermarks(info.job_id, vertex["id"]))
        # A vertex whose metrics Flink has not fetched yet reads "no watermark" for a while:
        # ask again until every vertex has one, or the time is up.
        settled = len(marks) >= len(vertices) and all(m > NO_WATERMARK for m in marks)
        if settled or time.monotonic() > deadline:
            return min(marks) if marks and min(marks) > NO_WATERMARK else None
        time.sleep(1.0)


def preview(pipeline: Pipeline, query: str, limit: int = 20, timeout: float = 60.0, job: str = "ingest") -> list[dict]:
    """Up to ``limit`` rows of a streaming query over one job's tables and views, then stop it.

    Like an interactive SQL editor: the query runs as a short-lived Flink job in a session
    holding everything ``job``'s scripts define, reading its topics from the start under
    its own consumer group, without checkpoints (so it commits no offsets anywhere).
    """
    pipeline.definition.job(job)  # raises naming the jobs there are
    plans = plan_jobs(
        pipeline.settings,
        list(pipeline.definition.scripts),
        group_suffix="-preview",
        avro_schemas=pipeline.definition.avro_schemas,
    )
    plan = next(p for p in plans if p.name == job)
    rows: list[dict] = []
    with pipeline.sql_gateway.session() as session:
        _run_definitions(session, plan)
        session.execute("RESET 'execution.checkpointing.interval'")
        session.execute(f"SET 'pipeline.name' = '{plan.flink_name}-preview'")
        operation = session.submit(query)
        deadline = time.monotonic() + timeout
        try:
            for row in session.results(operation, until=deadline):
                rows.append(row)
                if len(rows) >= limit:
                    break
        finally:
            session.close_operation(operation)
    return rows
