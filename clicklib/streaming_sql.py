"""The streaming SQL jobs on the Flink cluster: check, submit, stop, watch and preview them.

Submission checks every statement first (definitions run, INSERTs are EXPLAINed) and
starts nothing if any is broken; a job already running is left alone, so submitting
twice never starts a second copy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clicklib.exceptions import FlinkError, SqlError
from clicklib.flink import JobInfo
from clicklib.sql_gateway import Operation, SqlGatewaySession, excerpt
from clicklib.sql_scripts import JobPlan, plan_jobs

if TYPE_CHECKING:
    from clicklib.pipeline import Pipeline

# Long.MIN_VALUE is Flink's "no watermark yet".
NO_WATERMARK = -(2**62)


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


def check(pipeline: Pipeline, plans: Sequence[JobPlan]) -> None:
    """Compile every statement of the given jobs without starting anything."""
    for plan in plans:
        with pipeline.sql_gateway.session() as session:
            _run_definitions(session, plan)
            for statement in plan.inserts:
                try:
                    session.execute(f"EXPLAIN {statement.text}")
                except SqlError as exc:
                    raise SqlError(f"{statement.source}: {exc}", exc.address) from None


def submit(pipeline: Pipeline, jobs: Sequence[str] | None = None, checked: bool = False) -> dict[str, str]:
    """Check (unless ``checked``), then start each job (or only ``jobs``) that is not running.

    Returns Flink job name -> job id. If starting a job fails, the jobs this call started
    are cancelled again.
    """
    plans = [plan for plan in pipeline.definition.jobs if jobs is None or plan.name in jobs]
    running = running_jobs(pipeline, plans)
    pending = [plan for plan in plans if running[plan.flink_name] is None]
    if not checked:
        check(pipeline, pending)
    started: dict[str, str] = {}
    try:
        for plan in pending:
            with pipeline.sql_gateway.session() as session:
                _run_definitions(session, plan)
                session.execute(f"SET 'pipeline.name' = '{plan.flink_name}'")
                operation = session.submit(plan.statement_set())
                started[plan.flink_name] = _wait_for_job_id(session, operation)
    except BaseException:
        for job_id in started.values():
            pipeline.flink.cancel(job_id)
        raise
    return {name: (job.job_id if job else started[name]) for name, job in running.items()}


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


def stop(pipeline: Pipeline) -> list[str]:
    """Cancel the pipeline's running jobs; returns their names. Kafka keeps their offsets."""
    running = {name: job for name, job in running_jobs(pipeline).items() if job}
    for job in running.values():
        pipeline.flink.cancel(job.job_id)
    return sorted(running)


def wait_stopped(pipeline: Pipeline, timeout: float = 60.0) -> None:
    """Wait until none of the pipeline's jobs is active any more."""
    deadline = time.monotonic() + timeout
    while any(running_jobs(pipeline).values()):
        if time.monotonic() > deadline:
            names = ", ".join(name for name, job in running_jobs(pipeline).items() if job)
            raise FlinkError(f"jobs still active {timeout:.0f} s after they were cancelled: {names}")
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
    vertices = [v for v in pipeline.flink.vertices(info.job_id) if not v.get("name", "").startswith("Source")]
    deadline = time.monotonic() + timeout
    while True:
        marks = []
        for vertex in vertices:
            marks.extend(pipeline.flink.vertex_watermarks(info.job_id, vertex["id"]))
        if len(marks) >= len(vertices) or time.monotonic() > deadline:
            return min(marks) if marks and min(marks) > NO_WATERMARK else None
        time.sleep(1.0)


def preview(pipeline: Pipeline, query: str, limit: int = 20, timeout: float = 60.0, job: str = "ingest") -> list[dict]:
    """Up to ``limit`` rows of a streaming query over one job's tables and views, then stop it.

    Like an interactive SQL editor: the query runs as a short-lived Flink job in a session
    holding everything ``job``'s scripts define, reading its topics from the start under
    its own consumer group, without checkpoints (so it commits no offsets anywhere).
    """
    pipeline.definition.job(job)  # raises naming the jobs there are
    plans = plan_jobs(pipeline.settings, list(pipeline.definition.scripts), group_suffix="-preview")
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
