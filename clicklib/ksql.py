"""Streaming SQL: the scripts in ``ksql/``, submitted through the Flink SQL Gateway.

Scripts are numbered files. A file without a ``-- job: NAME`` line holds definitions (SET,
CREATE TABLE, CREATE VIEW) run in every job's session; a file with one (or with
``-- jobs: A, B``) adds its statements to that job (or those jobs), whose INSERTs run
together as one statement set, i.e. one Flink job named ``<namespace>clicklib-<job>``.
Submission checks every statement first (definitions run, INSERTs are EXPLAINed) and
starts nothing if any is broken; a job already running is left alone, so submitting
twice never starts a second copy.

Errors from the gateway are raised with the file and statement that caused them and the
gateway's own root cause, not its whole Java stack trace.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from clicklib.exceptions import SqlError
from clicklib.settings import Settings, get_settings
from clicklib.templates import pipeline_params, render

KSQL_DIR = Path(__file__).resolve().parents[1] / "ksql"
JOB_LINE = re.compile(r"^--\s*jobs?:\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*$", re.MULTILINE)
CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(\w+)", re.IGNORECASE)
INSERT_INTO = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
TOPIC_OPTION = re.compile(r"'topic'\s*=\s*'([^']+)'")
ACTIVE_STATES = {"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "RECONCILING"}

HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Operation:
    session: str
    handle: str
    statement: str


class SqlGatewaySession:
    """One SQL Gateway session; use as a context manager so it is closed."""

    def __init__(self, settings: Settings | None = None, properties: dict[str, str] | None = None) -> None:
        self.settings = settings or get_settings()
        self.base = self.settings.sql_gateway_url.rstrip("/")
        body = {"properties": properties or {}}
        data = self._request("post", "/v1/sessions", "opening a session", json=body)
        self.handle: str = data["sessionHandle"]

    def __enter__(self) -> SqlGatewaySession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        # The gateway expires idle sessions on its own, so a failed close loses nothing.
        with contextlib.suppress(requests.RequestException):
            requests.delete(f"{self.base}/v1/sessions/{self.handle}", timeout=HTTP_TIMEOUT)

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> dict:
        url = f"{self.base}{path}"
        try:
            response = requests.request(method, url, timeout=HTTP_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise SqlError(
                f"sql-gateway at {self.base} is not reachable while {what} ({type(exc).__name__}); "
                "start it with `clicklib stack up` or set CLICKLIB_SQL_GATEWAY_URL"
            ) from exc
        if response.status_code >= 400:
            raise SqlError(f"sql-gateway refused {what}: {root_cause(response)}")
        return response.json() if response.content else {}

    def submit(self, statement: str) -> Operation:
        """Start a statement; returns at once with its operation."""
        data = self._request(
            "post",
            f"/v1/sessions/{self.handle}/statements",
            f"submitting `{_excerpt(statement)}`",
            json={"statement": statement},
        )
        return Operation(self.handle, data["operationHandle"], statement)

    def close_operation(self, operation: Operation) -> None:
        """Stop an operation; for a streaming query this cancels its Flink job."""
        with contextlib.suppress(requests.RequestException):
            requests.delete(
                f"{self.base}/v1/sessions/{operation.session}/operations/{operation.handle}/close",
                timeout=HTTP_TIMEOUT,
            )

    def results(self, operation: Operation, poll: float = 0.2, until: float | None = None) -> Iterator[dict]:
        """Result rows as dicts (column name to value), page by page until the end (or ``until``,
        a time.monotonic() deadline, for a query that never ends)."""
        # nextResultUri carries the rowFormat on, so only the first page names it.
        path = f"/v2/sessions/{operation.session}/operations/{operation.handle}/result/0?rowFormat=JSON"
        columns: list[str] = []
        while path:
            data = self._request("get", path, f"fetching results of `{_excerpt(operation.statement)}`")
            kind = data.get("resultType")
            results = data.get("results") or {}
            if results.get("columns"):
                columns = [c["name"] for c in results["columns"]]
            for row in results.get("data", []):
                if row.get("kind", "INSERT") in ("INSERT", "UPDATE_AFTER"):
                    yield dict(zip(columns, row["fields"], strict=False))
            if kind == "EOS" or (until is not None and time.monotonic() > until):
                return
            next_uri = data.get("nextResultUri")
            if kind == "NOT_READY" or not data.get("results", {}).get("data"):
                time.sleep(poll)
            path = next_uri or path

    def execute(self, statement: str) -> list[dict]:
        """Run a statement to the end and return every row it produced."""
        return list(self.results(self.submit(statement)))

    def job_id(self, operation: Operation) -> str | None:
        """The Flink job an operation started (INSERT, or a streaming SELECT), once known."""
        path = f"/v2/sessions/{operation.session}/operations/{operation.handle}/result/0?rowFormat=JSON"
        data = self._request("get", path, "asking for the job id")
        return data.get("jobID")


def root_cause(response: requests.Response) -> str:
    """The most specific line of a gateway error: the last 'Caused by', else the first line."""
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    text = "\n".join(str(e) for e in errors)
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    if causes:
        return causes[-1].removeprefix("Caused by:").strip()
    return text.strip().splitlines()[0] if text.strip() else f"HTTP {response.status_code}"


def _excerpt(statement: str, width: int = 80) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


@dataclass(frozen=True)
class Statement:
    text: str
    source: str  # "ksql/07_clickstream_clean.sql:12"

    @property
    def is_insert(self) -> bool:
        return self.text.lstrip().upper().startswith("INSERT")


@dataclass
class JobPlan:
    """One Flink job: the definitions its session needs and the INSERTs it runs."""

    name: str
    flink_name: str
    definitions: list[Statement] = field(default_factory=list)
    inserts: list[Statement] = field(default_factory=list)

    @property
    def source_topics(self) -> list[str]:
        """The Kafka topics this job reads: its consumer-group tables that it does not write."""
        written = {m.group(1) for s in self.inserts if (m := INSERT_INTO.match(s.text))}
        topics = []
        for statement in self.definitions:
            table = CREATE_TABLE.match(statement.text)
            topic = TOPIC_OPTION.search(statement.text)
            if table and topic and "properties.group.id" in statement.text and table.group(1) not in written:
                topics.append(topic.group(1))
        return topics


@dataclass(frozen=True)
class JobInfo:
    name: str
    job_id: str
    state: str
    start_time: int


def split_statements(text: str) -> list[tuple[str, int]]:
    """Statements of a script with the line each starts on; ';' in quotes or comments is kept."""
    statements: list[tuple[str, int]] = []
    current: list[str] = []
    start_line = None
    line = 1
    i = 0
    in_quote = False
    while i < len(text):
        char = text[i]
        if not in_quote and text.startswith("--", i):
            end = text.find("\n", i)
            end = len(text) if end == -1 else end
            i = end
            continue
        if char == "'":
            in_quote = not in_quote
        if char == ";" and not in_quote:
            statement = "".join(current).strip()
            if statement:
                statements.append((statement, start_line or line))
            current, start_line = [], None
        else:
            if start_line is None and not char.isspace():
                start_line = line
            current.append(char)
        if char == "\n":
            line += 1
        i += 1
    tail = "".join(current).strip()
    if tail:
        statements.append((tail, start_line or line))
    return statements


def plan_jobs(settings: Settings, directory: Path = KSQL_DIR, group_suffix: str = "") -> list[JobPlan]:
    """Read, fill and group the scripts of a directory into jobs, in file order.

    Each job reads Kafka as consumer group ``<job name><group_suffix>``.
    """
    scripts = sorted(directory.glob("*.sql"))
    if not scripts:
        raise SqlError(f"no SQL scripts (*.sql) in {directory}")
    params = pipeline_params(settings)
    shared: list[tuple[Path, str]] = []
    by_job: dict[str, list[tuple[Path, str]]] = {}
    for path in scripts:
        text = path.read_text()
        lines = JOB_LINE.findall(text)
        if len(lines) > 1:
            raise SqlError(f"{path}: has {len(lines)} job lines; name every job of the script on one `-- jobs:` line")
        jobs = [job.strip() for job in lines[0].split(",")] if lines else []
        for job in jobs:
            by_job.setdefault(job, []).append((path, text))
        if not jobs:
            shared.append((path, text))
    plans = []
    for job, files in by_job.items():
        flink_name = f"{settings.namespace}clicklib-{job}"
        job_params = {**params, "group_id": flink_name + group_suffix}
        plan = JobPlan(job, flink_name)
        for path, text in [*shared, *files]:
            label = _label(path)
            for statement, line in split_statements(render(text, job_params, label)):
                (plan.inserts if Statement(statement, "").is_insert else plan.definitions).append(
                    Statement(statement, f"{label}:{line}")
                )
        if not plan.inserts:
            raise SqlError(f"job {job} ({', '.join(_label(p) for p, _ in files)}) has no INSERT statement")
        plans.append(plan)
    return plans


def _label(path: Path) -> str:
    try:
        return str(path.relative_to(KSQL_DIR.parent))
    except ValueError:
        return str(path)


def _statement_set(plan: JobPlan, verb: str) -> str:
    body = ";\n".join(s.text for s in plan.inserts)
    return f"{verb}STATEMENT SET BEGIN\n{body};\nEND"


def _run_definitions(session: SqlGatewaySession, plan: JobPlan) -> None:
    for statement in plan.definitions:
        try:
            session.execute(statement.text)
        except SqlError as exc:
            raise SqlError(f"{statement.source}: {exc}") from None


def check(settings: Settings, plans: list[JobPlan]) -> None:
    """Compile every statement of every job without starting anything."""
    for plan in plans:
        with SqlGatewaySession(settings) as session:
            _run_definitions(session, plan)
            for statement in plan.inserts:
                try:
                    session.execute(f"EXPLAIN {statement.text}")
                except SqlError as exc:
                    raise SqlError(f"{statement.source}: {exc}") from None


def list_jobs(settings: Settings | None = None) -> list[JobInfo]:
    """Every job the Flink cluster knows, newest first."""
    settings = settings or get_settings()
    url = f"{settings.flink_rest_url}/jobs/overview"
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise SqlError(
            f"flink at {settings.flink_rest_url} is not reachable ({type(exc).__name__}); "
            "start it with `clicklib stack up` or set CLICKLIB_FLINK_REST_URL"
        ) from exc
    jobs = [JobInfo(j["name"], j["jid"], j["state"], j.get("start-time", 0)) for j in response.json()["jobs"]]
    return sorted(jobs, key=lambda j: j.start_time, reverse=True)


def pipeline_jobs(settings: Settings, plans: list[JobPlan]) -> dict[str, JobInfo | None]:
    """The active Flink job of each planned job, or None."""
    active = _active_jobs(settings)
    return {plan.flink_name: active.get(plan.flink_name) for plan in plans}


def submit(
    settings: Settings | None = None, directory: Path = KSQL_DIR, jobs: list[str] | None = None
) -> dict[str, str]:
    """Check every script, then start each job (or only ``jobs``) that is not running.

    Returns Flink job name -> job id. If starting a job fails, the jobs this call started
    are cancelled again.
    """
    settings = settings or get_settings()
    plans = [plan for plan in plan_jobs(settings, directory) if jobs is None or plan.name in jobs]
    running = pipeline_jobs(settings, plans)
    pending = [plan for plan in plans if running[plan.flink_name] is None]
    check(settings, pending)
    started: dict[str, str] = {}
    try:
        for plan in pending:
            with SqlGatewaySession(settings) as session:
                _run_definitions(session, plan)
                session.execute(f"SET 'pipeline.name' = '{plan.flink_name}'")
                operation = session.submit(_statement_set(plan, "EXECUTE "))
                started[plan.flink_name] = _wait_for_job_id(session, operation)
    except BaseException:
        cancel(settings, list(started.values()))
        raise
    return {name: (job.job_id if job else started[name]) for name, job in running.items()}


def _wait_for_job_id(session: SqlGatewaySession, operation: Operation, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in session.results(operation):
            if "job id" in row:
                return row["job id"]
        time.sleep(0.5)
    raise SqlError(f"the SQL Gateway returned no job id for `{_excerpt(operation.statement)}` within {timeout:.0f} s")


def cancel(settings: Settings, job_ids: list[str]) -> None:
    for job_id in job_ids:
        with contextlib.suppress(requests.RequestException):
            requests.patch(f"{settings.flink_rest_url}/jobs/{job_id}", params={"mode": "cancel"}, timeout=HTTP_TIMEOUT)


def stop(settings: Settings | None = None, directory: Path = KSQL_DIR) -> list[str]:
    """Cancel the pipeline's running jobs; returns their names. Kafka keeps their offsets."""
    settings = settings or get_settings()
    running = {name: job for name, job in pipeline_jobs(settings, plan_jobs(settings, directory)).items() if job}
    cancel(settings, [job.job_id for job in running.values()])
    return sorted(running)


def job_watermark(settings: Settings, flink_name: str, timeout: float = 30.0) -> int | None:
    """The event-time watermark a running job's windows have reached (epoch ms), if any yet.

    It is the smallest input watermark over the job's non-source vertices: a window
    [start, end) has fired once this is at least end - 1. Flink fetches metrics lazily,
    so the first asks may come back empty.
    """
    job = _active_jobs(settings).get(flink_name)
    if job is None:
        raise SqlError(f"no running Flink job named {flink_name}")
    base = f"{settings.flink_rest_url}/jobs/{job.job_id}"
    vertices = [
        v for v in requests.get(base, timeout=HTTP_TIMEOUT).json()["vertices"] if not v["name"].startswith("Source")
    ]
    deadline = time.monotonic() + timeout
    while True:
        marks = []
        for vertex in vertices:
            values = requests.get(f"{base}/vertices/{vertex['id']}/watermarks", timeout=HTTP_TIMEOUT).json()
            marks.extend(int(float(v["value"])) for v in values)
        if len(marks) >= len(vertices) or time.monotonic() > deadline:
            # Long.MIN_VALUE means no watermark yet.
            return min(marks) if marks and min(marks) > -(2**62) else None
        time.sleep(1.0)


def _active_jobs(settings: Settings) -> dict[str, JobInfo]:
    return {j.name: j for j in reversed(list_jobs(settings)) if j.state in ACTIVE_STATES}


def preview(
    query: str, settings: Settings | None = None, limit: int = 20, timeout: float = 60.0, job: str = "ingest"
) -> list[dict]:
    """Up to ``limit`` rows of a streaming query over one job's tables and views, then stop it.

    The seed's KSQL editor view: the query runs as a short-lived Flink job in a session
    holding everything ``job``'s scripts define, reading its topics from the start under
    its own consumer group, without checkpoints (so it commits no offsets anywhere).
    """
    settings = settings or get_settings()
    plans = {plan.name: plan for plan in plan_jobs(settings, group_suffix="-preview")}
    if job not in plans:
        raise SqlError(f"no job {job!r} in {KSQL_DIR}; jobs are {', '.join(plans)}")
    plan = plans[job]
    rows: list[dict] = []
    with SqlGatewaySession(settings) as session:
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
