"""`make demo`: the whole pipeline end to end, with a summary of what reached Cassandra."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clicklib import generate, produce, reports, resources, stack
from clicklib.exceptions import PipelineError
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.topics import DLQ, SINK_DLQ


def reports_dir() -> Path:
    """Where the demo writes its reports: ``reports/`` in a checkout, else in the current folder."""
    return (resources.checkout_root() or Path.cwd()) / "reports"


def simulated_workload(n_events: int, seed: int, invalid_ratio: float) -> generate.Workload:
    """The demo's events, dated up to now: a simulated shop that shares the pipeline with real
    traffic must never run ahead of the clock, or the windows' watermark would run ahead with it
    and drop every real event as late."""
    return generate.generate(n_events, seed=seed, invalid_ratio=invalid_ratio, end_ms=int(time.time() * 1000))


def wait_for_rows(pipeline: Pipeline, table: str, target: int, timeout: float = 600.0) -> float:
    """Seconds until ``table`` holds ``target`` rows, counted from the call."""
    started = time.monotonic()
    while pipeline.cassandra.count_rows(table) < target:
        if time.monotonic() - started > timeout:
            raise PipelineError(
                f"{table} did not reach {target} rows within {timeout:.0f} s; "
                "`clicklib pipeline status` shows which job or connector is behind"
            )
        time.sleep(0.25)
    return time.monotonic() - started


def run(settings: Settings, n_events: int, seed: int | None, invalid_ratio: float, console: Console) -> dict:
    console.rule("stack")
    rows = stack.up(
        settings, on_event=lambda name, event, detail: event == "healthy" and console.print(f"{name}: {detail}")
    )
    console.print(f"{sum(r.healthy for r in rows)}/{len(rows)} services healthy")

    console.rule("pipeline")
    pipeline = Pipeline(settings)
    pipeline.up()
    console.print("schema applied, topics created, connectors running, SQL jobs submitted")

    console.rule("workload")
    # A fresh seed per run: events of an earlier demo are neither replayed nor mistaken for this
    # one's (event ids come from the seed).
    seed = seed if seed is not None else int(time.time())
    workload = simulated_workload(n_events, seed, invalid_ratio)
    clean = sum(1 for e in workload.events if e.user_id is not None)
    before = pipeline.cassandra.count_rows("events_by_user")
    report = produce.produce(pipeline, workload)
    console.print(f"produced {report} ({report.rate:,.0f} events/s), seed {seed}")

    latency = wait_for_rows(pipeline, "events_by_user", before + clean)
    console.print(f"last event produced -> last row in events_by_user: {latency:.1f} s")
    settled = pipeline.wait_settled()

    summary = {
        "seed": seed,
        "events": n_events,
        "invalid": sum(1 for r in workload.records if r.reason),
        "clean": clean,
        "produce_seconds": round(report.seconds, 2),
        "produce_rate": round(report.rate),
        "latency_last_event_to_cassandra_seconds": round(latency, 2),
        "settled_after_seconds": round(settled, 1),
        "dlq_messages": pipeline.kafka.count_messages(pipeline.topic(DLQ)),
        "sink_dlq_messages": sum(pipeline.kafka.end_offsets(pipeline.topic(SINK_DLQ)).values()),
        "rows": {table: pipeline.cassandra.count_rows(table) for table in pipeline.definition.tables},
    }
    table = Table(title="Cassandra after the demo", show_edge=False, box=None, header_style="bold")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary["rows"].items():
        table.add_row(f"{settings.keyspace}.{name}", f"{count:,}")
    console.print(table)
    console.print(
        f"dead letters: {summary['dlq_messages']} invalid messages in {pipeline.topic(DLQ)}, "
        f"{summary['sink_dlq_messages']} in {pipeline.topic(SINK_DLQ)}"
    )
    out = reports_dir()
    out.mkdir(exist_ok=True)
    path = out / "demo-summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    console.print(f"summary: {path}")

    console.rule("notebooks")
    # The series runs on top of the demo's data: its producer notebook adds a smaller batch
    # over the same minutes, so the analysis charts cover one continuous stretch of time.
    parameters = {
        "02_produce.ipynb": {"n_events": 2_000, "seed": seed + 1},
        "04_cassandra_sink.ipynb": {"watch_seconds": 10},
        "05_monitoring.ipynb": {"refresh": False},
        "06_analysis.ipynb": {"charts_dir": str(out / "charts")},
    }
    with console.status("executing notebooks 01-06 with papermill"):
        reports.execute_series(out, parameters)
    console.print(f"executed notebooks and their HTML: {out}/0*.ipynb, {out}/0*.html")
    console.print(f"analysis charts (PNG and HTML): {out / 'charts'}")
    return summary
