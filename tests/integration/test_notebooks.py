"""After the demo, every notebook runs top to bottom with its default parameters in the demo's
namespace (a test namespace with the demo's suffix), Spark in the batch notebook included. The
demo's reconciliation agrees count for count; the figures the run records match an independent
pandas computation over the demo's and that run's events; every CQL statement the notebooks send
restricts its table's partition key; the analysis report renders in a browser; and `clicklib lab`
opens the executed analysis notebook in JupyterLab, on the project's kernel, with its charts drawn.

`make test-full` adds a second run of the notebooks that send traffic, close its windows and
analyse it (02, 03, 06: the others would only repeat work), which must still reconcile."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import psutil
import pytest
import requests
from rich.console import Console

from clicklib import demo, lab, reports, resources
from clicklib.generate import Workload, generate
from clicklib.pipeline import Pipeline
from tests import oracle
from tests.browser import DevTools, chromium

from .conftest import free_ports

DEMO = {"n_events": 4_000, "seed": 20261130, "invalid_ratio": 0.01}
# The second run: traffic after the first run's, its windows closed, both runs analysed.
SECOND_RUN = ("02_produce.ipynb", "03_streaming_sql.ipynb", "06_analysis.ipynb")
CAPTURE = Path(__file__).resolve().parents[1] / "cql_capture"  # holds the sitecustomize that logs CQL


@pytest.fixture(scope="module")
def base(live_stack):
    return dataclasses.replace(live_stack, namespace=f"n{uuid.uuid4().hex[:8]}_")


@pytest.fixture(scope="module")
def demo_summary(base, tmp_path_factory):
    console = Console(file=io.StringIO(), width=200)
    try:
        yield demo.run(base, console=console, out=tmp_path_factory.mktemp("demo"), notebooks=False, **DEMO)
    finally:
        with Pipeline(dataclasses.replace(base, namespace=f"{base.namespace}{demo.DEMO_NAMESPACE}")) as pipeline:
            pipeline.down(purge=True)


@pytest.fixture(scope="module")
def namespace(base, demo_summary):
    """The demo's pipeline: the namespace it ran in, the notebooks' too."""
    assert demo_summary["namespace"] == f"{base.namespace}{demo.DEMO_NAMESPACE}"
    return dataclasses.replace(base, namespace=demo_summary["namespace"])


def execute(namespace, out: Path, notebooks: Path | None = None, captured: Path | None = None) -> dict:
    """The notebooks in ``notebooks`` (the series by default) run by papermill in the demo's
    namespace; every CQL statement their kernels send is logged to ``captured``."""
    patch = pytest.MonkeyPatch()
    patch.setenv("CLICKLIB_NAMESPACE", namespace.namespace)  # the kernels papermill starts inherit it
    if captured is not None:
        patch.setenv("CLICKLIB_CQL_CAPTURE", str(captured))
        patch.setenv("PYTHONPATH", os.pathsep.join([str(CAPTURE), os.environ.get("PYTHONPATH", "")]))
    try:
        records = reports.execute_series(out, {}, notebooks=notebooks)
    finally:
        patch.undo()
    records["out"] = out
    return records


@pytest.fixture(scope="module")
def runs(namespace, tmp_path_factory):
    """The series, once, every CQL statement the kernels send captured."""
    captured = tmp_path_factory.mktemp("cql") / "statements.jsonl"
    first = execute(namespace, tmp_path_factory.mktemp("run1"), captured=captured)
    statements = [json.loads(line) for line in captured.read_text().splitlines()] if captured.exists() else []
    return first, statements


@pytest.fixture(scope="module")
def second(runs, namespace, tmp_path_factory):
    """A second run of 02, 03 and 06 after the series (make test-full)."""
    again = tmp_path_factory.mktemp("again")
    for name in SECOND_RUN:
        (again / name).write_bytes((resources.notebooks_dir() / name).read_bytes())
    return execute(namespace, tmp_path_factory.mktemp("run2"), notebooks=again)


def demo_workload(summary: dict) -> Workload:
    return generate(DEMO["n_events"], DEMO["seed"], DEMO["invalid_ratio"], start_ms=summary["start_ms"])


def run_workload(records: dict) -> Workload:
    """What notebook 02 sent: its run straight into Kafka, then its run over UDP through the collector."""
    recorded = records["02_produce.ipynb"]["workload"]
    direct = generate(recorded["n_events"], recorded["seed"], recorded["invalid_ratio"], start_ms=recorded["start_ms"])
    udp = records["02_produce.ipynb"]["udp"]
    if not udp:
        return direct
    # Every datagram must have arrived for the figures to be exact; the notebook says if not.
    assert udp["forwarded"] == udp["sent"] == udp["n_events"], udp
    return both(direct, generate(udp["n_events"], udp["seed"], udp["invalid_ratio"], start_ms=udp["start_ms"]))


def both(*workloads: Workload) -> Workload:
    return Workload(
        [p for w in workloads for p in w.profiles],
        [r for w in workloads for r in w.records],
    )


def test_the_demo_reconciles_every_count_from_kafka_to_cassandra(demo_summary):
    rows = demo_summary["reconciliation"]
    assert demo_summary["all_counts_agree"], [r for r in rows if not r["agrees"]]
    assert all(r["expected"] == r["found"] for r in rows)
    stages = {r["stage"]: r["expected"] for r in rows}
    workload = demo_workload(demo_summary)
    assert stages["raw messages"] == len(workload.records)
    assert stages["valid events"] == len(workload.events)
    assert stages["sessions (distinct session ids) against session rows"] == len(oracle.session_summary(workload))
    headline = demo_summary["headline"]
    kpis = oracle.kpis(workload)
    assert headline["sessions"] == kpis["sessions"]
    assert headline["conversion"] == pytest.approx(kpis["conversion"], abs=1e-4)
    assert headline["bounce_rate"] == pytest.approx(kpis["bounce_rate"], abs=1e-4)


@pytest.mark.full
def test_the_producer_places_each_run_after_the_previous_one(runs, second, demo_summary):
    first, _ = runs
    demo_last = max(e.date for e in demo_workload(demo_summary).events)
    one, two = run_workload(first), run_workload(second)
    assert demo_last < min(e.date for e in one.events)
    assert max(e.date for e in one.events) < min(e.date for e in two.events)
    assert not {e.event_id for e in one.events} & {e.event_id for e in two.events}


def test_the_stack_producer_sql_sink_and_monitoring_notebooks_record_real_figures(runs, demo_summary, namespace):
    first, _ = runs
    run = run_workload(first)
    demo_records = DEMO["n_events"]
    assert first["01_stack.ipynb"]["healthy_services"] == 7
    assert first["01_stack.ipynb"]["disk"] in ("ok", "low")  # this machine's disk, far from the refusal bound
    udp_sent = first["02_produce.ipynb"]["udp"]["sent"]
    assert first["02_produce.ipynb"]["delivered"] == len(run.records) - udp_sent
    assert first["02_produce.ipynb"]["raw_topic_messages"] == demo_records + len(run.records)
    assert [name.removeprefix(namespace.namespace) for name in first["03_streaming_sql.ipynb"]["jobs"]] == [
        "clicklib-aggregates",
        "clicklib-avro",
        "clicklib-enrich",
        "clicklib-ingest",
        "clicklib-lake",
    ]
    # It decoded a message of the Avro topic, written with the schema `pipeline up` registered.
    with Pipeline(namespace) as pipeline:
        registered = pipeline.registry.latest(f"{pipeline.topic('clickstream_avro')}-value")
    assert first["03_streaming_sql.ipynb"]["avro_schema_id"] == registered.schema_id
    behind = first["04_cassandra_sink.ipynb"]["sink_behind"]
    assert set(behind) == {
        "events_by_user",
        "events_by_day",
        "pageviews_per_minute",
        "user_activity",
        "user_sessions",
        "status_per_minute",
        "session_summary",
        "daily_kpis",
    }
    assert set(behind.values()) == {0}
    monitoring = first["05_monitoring.ipynb"]
    invalid = sum(1 for r in both(demo_workload(demo_summary), run).records if r.reason is not None)
    assert monitoring["total_lag"] == 0
    assert monitoring["problems"] == {
        "dead letters": invalid,
        "late events": 0,
        "internal dead letters": 0,
        "sink dead letters": 0,
    }


def test_the_analysis_figures_match_pandas_over_every_event_read(runs, demo_summary, namespace):
    first, _ = runs
    workload = both(demo_workload(demo_summary), run_workload(first))
    recorded = first["06_analysis.ipynb"]
    funnel = oracle.funnel(workload, every_visitor=True)
    assert recorded["funnel_did"] == funnel["did"]
    assert recorded["funnel_reached"] == funnel["reached"]
    reached, steps = funnel["reached"], list(funnel["reached"])
    previous = {step: reached[steps[max(i - 1, 0)]] for i, step in enumerate(steps)}
    sessions = reached["session"]
    # Recorded values come back as JSON objects: compared by key, not by order.
    assert recorded["funnel_of_sessions"] == pytest.approx({s: reached[s] / sessions for s in steps}, abs=1e-6)
    assert recorded["funnel_of_previous"] == pytest.approx({s: reached[s] / previous[s] for s in steps}, abs=1e-6)
    assert recorded["visitors"] == oracle.visitors(workload)
    assert recorded["sessions"] == sessions == len(oracle.session_summary(workload))
    assert recorded["signed_in_sessions"] == oracle.clean_events(workload)["session_id"].nunique()
    assert recorded["events"] == len(oracle.clean_events(workload))
    kpis = oracle.kpis(workload)
    assert recorded["kpis"] == pytest.approx(kpis, abs=1e-6)
    for column in ("channel", "device", "segment", "partner_name"):
        expected = oracle.conversion_by(workload, column)
        assert set(recorded["outcomes"][column]) == set(expected), column
        for value, figures in expected.items():
            assert recorded["outcomes"][column][value] == pytest.approx(figures, abs=1e-6), (column, value)
    status = oracle.status_per_minute(workload, alert_percent=namespace.alert_percent)
    expected = {
        f"{pd.Timestamp(start, unit='ms'):%Y-%m-%dT%H:%M}": {"requests": int(r), "errors": int(e), "alert": bool(a)}
        for start, r, e, a in zip(
            status["window_start"], status["requests"], status["errors"], status["alert"], strict=True
        )
    }
    assert recorded["status_per_minute"] == expected
    assert any(minute["alert"] for minute in expected.values())
    assert all(c["expected"] == c["found"] for c in recorded["reconciliation"].values()), recorded["reconciliation"]


def test_the_batch_notebook_answers_from_the_lake_as_the_oracle_does(runs, demo_summary):
    first, _ = runs
    workload = both(demo_workload(demo_summary), run_workload(first))
    recorded = first["07_batch.ipynb"]
    assert recorded["lake_events"] == len(oracle.clean_events(workload))
    assert recorded["lake_folders"] > 0
    expected_funnel = {
        f"{day}/{step}": [counts["did"][step], counts["reached"][step]]
        for day, counts in oracle.daily_funnel(workload).items()
        for step in oracle.FUNNEL
    }
    assert recorded["funnel"] == expected_funnel
    sessions = oracle.sessions_per_day(workload)
    assert recorded["sessions_per_day"] == dict(zip(sessions["day"], sessions["sessions"], strict=True))
    cohorts = oracle.retention(workload)
    assert recorded["retention"] == {
        f"{r.cohort}/{r.day_number}": [r.cohort_users, r.users] for r in cohorts.itertuples()
    }
    # Spark over the lake, pandas over events_by_day and the streaming session rows: once the
    # run's windows are closed (notebook 03), the three agree.
    assert recorded["three_ways_agree"] is True


@pytest.mark.full
def test_the_second_run_analyses_both_runs_and_still_reconciles(runs, second, demo_summary):
    first, _ = runs
    workload = both(demo_workload(demo_summary), run_workload(first), run_workload(second))
    recorded = second["06_analysis.ipynb"]
    assert recorded["sessions"] == len(oracle.session_summary(workload))
    assert recorded["kpis"] == pytest.approx(oracle.kpis(workload), abs=1e-6)
    assert all(c["expected"] == c["found"] for c in recorded["reconciliation"].values()), recorded["reconciliation"]


def test_every_cql_statement_the_notebooks_send_restricts_the_partition_key(runs, namespace):
    _, statements = runs
    with Pipeline(namespace) as pipeline:
        keyspace = pipeline.settings.keyspace
        metadata = pipeline.cassandra.session.cluster.metadata.keyspaces[keyspace].tables
        partition_keys = {name: [c.name for c in table.partition_key] for name, table in metadata.items()}
    reads = [s["cql"] for s in statements if re.match(r"\s*SELECT\b", s["cql"], re.IGNORECASE)]
    # The stack's health check asks the node its version (system.local holds one row); every
    # other read is of the pipeline's tables.
    health = [cql for cql in reads if re.search(r"FROM\s+system\.local\b", cql)]
    ours = [cql for cql in reads if cql not in health]
    assert all(re.search(rf"FROM\s+{keyspace}\.\w+", cql) for cql in ours), ours
    tables_read = {re.search(rf"FROM\s+{keyspace}\.(\w+)", cql).group(1) for cql in ours}
    # The analysis reads these tables, and reads them only by partition.
    assert {
        "session_summary",
        "daily_kpis",
        "events_by_day",
        "status_per_minute",
        "pageviews_per_minute",
    } <= tables_read
    for cql in ours:
        table = re.search(rf"FROM\s+{keyspace}\.(\w+)", cql).group(1)
        where = re.search(r"\bWHERE\b(.*)", cql, re.IGNORECASE | re.DOTALL)
        assert where, f"reads the whole table: {cql}"
        for key in partition_keys[table]:
            assert re.search(rf"\b{key}\s*(=|IN\b)", where.group(1), re.IGNORECASE), f"{key} not restricted: {cql}"


def test_the_analysis_report_renders_its_charts_in_a_browser(runs, tmp_path):
    first, _ = runs
    page = Path(first["out"]) / "06_analysis.html"
    html = page.read_text()
    charts = len(re.findall(r'class="clicklib-chart"', html))
    assert charts >= 24
    rendered = chromium(page, tmp_path / "profile", "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    # Every chart div holds a drawn Vega view, and no script threw.
    assert rendered.stdout.count('class="marks"') >= charts, "charts did not render"
    assert "Uncaught" not in rendered.stderr, [line for line in rendered.stderr.splitlines() if "Uncaught" in line]
    shot = tmp_path / "06_analysis.png"
    chromium(page, tmp_path / "profile2", "--window-size=1280,4000", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000


# The notebook scrolls in its own panel, and renders what it scrolls to.
SCROLL_TO_SIXTH_CHART = """(() => {
  const chart = document.querySelectorAll('.jp-OutputArea-output .vega-embed')[5];
  const outer = chart?.closest('.jp-WindowedPanel-outer');
  if (outer) outer.scrollTop += chart.getBoundingClientRect().top - outer.getBoundingClientRect().top - 100;
})()"""
SIXTH_CHART_IN_VIEW = """(() => {
  const box = document.querySelectorAll('.jp-OutputArea-output .vega-embed')[5]?.getBoundingClientRect();
  return box !== undefined && box.height > 0 && box.top >= 0 && box.top < innerHeight;
})()"""
DRAWN = """(() => ({
  charts: document.querySelectorAll('.jp-OutputArea-output .vega-embed').length,
  drawn: document.querySelectorAll('.jp-OutputArea-output .vega-embed .marks').length,
  errors: [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
    + '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')].map((e) => e.textContent.slice(0, 500)),
}))()"""


def wait_for_idle_kernel(base: str, auth: dict, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        sessions = requests.get(f"{base}/api/sessions", headers=auth, timeout=10).json()
        if sessions and all(s["kernel"]["execution_state"] == "idle" for s in sessions):
            return
        assert time.monotonic() < deadline, f"the notebook's kernel did not start: {sessions}"
        time.sleep(0.5)


def chart_cells(notebook: Path) -> int:
    """Code cells that end by showing a chart (``figures["name"]``)."""
    cells = json.loads(notebook.read_text())["cells"]
    lasts = ["".join(c["source"]).strip().splitlines()[-1] for c in cells if c["cell_type"] == "code" and c["source"]]
    return sum(bool(re.fullmatch(r'figures\["\w+"\]', line)) for line in lasts)


def test_the_lab_opens_the_executed_analysis_notebook_and_draws_its_charts(runs, namespace, tmp_path):
    # The series' executed copy (papermill ran it once): the lab draws what a run left, and
    # starts the project's kernel for it, without running the notebook a second time.
    first, _ = runs
    root = tmp_path / "notebooks"
    root.mkdir()
    notebook = root / "06_analysis.ipynb"
    notebook.write_bytes((Path(first["out"]) / notebook.name).read_bytes())
    expected = chart_cells(notebook)
    assert expected >= 20
    settings = dataclasses.replace(namespace, lab_port=free_ports(1)[0])
    # A fresh JupyterLab profile, as a newcomer has.
    fresh = {"JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    running = lab.start(settings, root, tmp_path / "lab.log", env=fresh)
    browser = None
    try:
        browser = DevTools(tmp_path / "profile")
        assert running.url.startswith(f"http://127.0.0.1:{settings.lab_port}/lab?token=")
        browser.viewport(1400, 1000)
        browser.open(running.url.replace("/lab?", f"/lab/tree/{notebook.name}?"))
        browser.wait_until("document.querySelectorAll('.jp-Notebook .jp-CodeCell').length > 0", timeout=120)
        base, token = running.url.split("/lab?token=")
        auth = {"Authorization": f"token {token}"}
        wait_for_idle_kernel(base, auth)
        # JupyterLab draws an output as its cell comes near the view: every chart, then its marks.
        drawn = browser.wait_until(
            f"(({DRAWN}).charts >= {expected} && ({DRAWN}).drawn >= {expected}) && ({DRAWN})", timeout=120
        )
        # The screenshot (kept in the test's folder): the sixth chart, without JupyterLab's
        # question about news (which it cannot fetch here anyway).
        browser.evaluate("document.querySelector('button.jp-toast-button[title=No]')?.click()")
        browser.evaluate(SCROLL_TO_SIXTH_CHART)
        browser.wait_until(SIXTH_CHART_IN_VIEW, timeout=30)
        browser.idle(2)
        print(f"screenshot: {browser.screenshot(tmp_path / 'lab-06_analysis.png', whole_page=False)}")
        assert drawn["errors"] == []
        assert drawn["charts"] == expected
        assert browser.problems == [], browser.problems
        assert browser.foreign_requests() == []  # no CDN: Vega is JupyterLab's own
        # The kernel the lab started for it is this project's environment.
        sessions = requests.get(f"{base}/api/sessions", headers=auth, timeout=10).json()
        assert [s["kernel"]["name"] for s in sessions] == [lab.KERNEL_NAME]
        spec = requests.get(f"{base}/api/kernelspecs", headers=auth, timeout=10).json()["kernelspecs"][lab.KERNEL_NAME]
        assert spec["spec"]["argv"][0] == sys.executable
        assert spec["spec"]["display_name"] == lab.KERNEL_DISPLAY_NAME
        # Without the token, nothing; and nothing but this machine can reach it.
        assert requests.get(f"{base}/api/sessions", timeout=10).status_code == 403
        sockets = psutil.net_connections("tcp")
        listening = {c.laddr.ip for c in sockets if c.status == "LISTEN" and c.laddr.port == settings.lab_port}
        assert listening == {"127.0.0.1"}
    finally:
        if browser is not None:
            browser.close()
        running.stop()
