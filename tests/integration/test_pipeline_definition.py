"""The pipeline definition is read once, and the package works outside the checkout."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from clicklib import monitor
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.topics import TOPICS

ROOT = Path(__file__).resolve().parents[2]
DEFINITION_FILES = {*(ROOT / "ksql").glob("*.sql"), *(ROOT / "connect").glob("*.json"), ROOT / "clicklib/schema.cql"}

# Every file the interpreter opens while `recording` is on, by its real path. An audit hook
# sees each open() whatever the code that calls it (pathlib, importlib.resources, io).
opened: Counter[Path] = Counter()
recording = False


def _on_audit(event: str, args: tuple) -> None:
    if recording and event == "open" and isinstance(args[0], str | Path):
        path = Path(os.path.realpath(args[0]))
        if path in DEFINITION_FILES:
            opened[path] += 1


sys.addaudithook(_on_audit)


@pytest.fixture
def record_opens():
    global recording
    opened.clear()
    recording = True
    try:
        yield opened
    finally:
        recording = False


def test_one_pipeline_up_reads_each_sql_and_connector_file_once(live_stack: Settings, record_opens):
    settings = dataclasses.replace(live_stack, namespace=f"d{uuid.uuid4().hex[:8]}_")
    with Pipeline(settings) as pipeline:
        try:
            pipeline.up()
            assert dict(record_opens) == dict.fromkeys(sorted(DEFINITION_FILES), 1)
            # Everything after reads the same definition: no file is opened again.
            record_opens.clear()
            report = pipeline.status()
            pipeline.wait_settled(timeout=300, windows=False)
            monitor.snapshot(pipeline, rate_interval=0.1)
            assert dict(record_opens) == {}
            assert set(report.jobs.values()) == {"RUNNING"}
        finally:
            pipeline.down(purge=True)


def test_the_audit_hook_sees_a_definition_file_being_read(record_opens):
    (ROOT / "ksql" / "00_session.sql").read_text()
    assert record_opens[ROOT / "ksql" / "00_session.sql"] == 1


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.full
def test_the_built_wheel_runs_the_pipeline_from_an_empty_directory(live_stack: Settings, tmp_path: Path):
    source, dist, venv, empty = tmp_path / "source", tmp_path / "dist", tmp_path / "venv", tmp_path / "empty"
    empty.mkdir()
    # A copy of the checkout as git would hand it over: the build leaves nothing in the checkout,
    # and nothing the checkout holds by accident (a stale build/, the stack's state) gets in.
    leftovers = shutil.ignore_patterns(
        ".git", ".venv", ".clickstack", "build", "dist", "reports", "*.egg-info", "target"
    )
    shutil.copytree(ROOT, source, symlinks=True, ignore=leftovers)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKLIB_", "PYTHON", "VIRTUAL_ENV"))}
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(source)], empty, env)
    (wheel,) = dist.glob("clicklib-*.whl")
    run([sys.executable, "-m", "venv", str(venv)], empty, env)
    run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)], empty, env)

    where = run([str(venv / "bin" / "python"), "-c", "import clicklib; print(clicklib.__file__)"], empty, env)
    assert where.stdout.strip().startswith(str(venv)), where.stdout

    namespace = f"w{uuid.uuid4().hex[:8]}_"
    env.update(
        CLICKLIB_NAMESPACE=namespace,
        CLICKLIB_BOOTSTRAP_SERVERS=live_stack.bootstrap_servers,
        CLICKLIB_CASSANDRA_HOSTS=live_stack.cassandra_hosts,
        CLICKLIB_CASSANDRA_PORT=str(live_stack.cassandra_port),
        CLICKLIB_CONNECT_URL=live_stack.connect_url,
        CLICKLIB_FLINK_REST_URL=live_stack.flink_rest_url,
        CLICKLIB_SQL_GATEWAY_URL=live_stack.sql_gateway_url,
        CLICKLIB_HOME=str(tmp_path / "home"),
    )
    clicklib = str(venv / "bin" / "clicklib")
    try:
        run([clicklib, "pipeline", "up"], empty, env)
        status = run([clicklib, "pipeline", "status"], empty, env).stdout
    finally:
        with Pipeline(dataclasses.replace(live_stack, namespace=namespace)) as pipeline:
            pipeline.down(purge=True)
    lines = [line.split() for line in status.splitlines()]
    jobs = {line[2]: line[3] for line in lines if line[:2] == ["flink", "job"]}
    names = ("ingest", "enrich", "aggregates", "avro", "lake")
    assert jobs == {f"{namespace}clicklib-{job}": "RUNNING" for job in names}
    connectors = [line for line in lines if line and line[0] == "connector"]
    assert len(connectors) == 8 and all(line[2:] == ["RUNNING", "RUNNING"] for line in connectors), status
    topics = [line for line in lines if line and line[0] == "topic"]
    # Every topic of the pipeline, from the installed package's definition.
    assert sorted(line[1] for line in topics) == sorted(f"{namespace}{base}" for base in TOPICS), status
    assert list(empty.iterdir()) == []  # nothing written where it ran
