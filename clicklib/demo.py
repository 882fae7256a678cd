"""`make demo`: the whole pipeline end to end, with a summary of what reached Cassandra."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from clicklib import analysis, produce, reconcile, reports, resources, stack
from clicklib.exceptions import PipelineError
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings

DEMO_NAMESPACE = "demo_"  # added to CLICKLIB_NAMESPACE: the demo's own pipeline


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables set for the notebook kernels papermill starts, restored after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reports_dir() -> Path:
    """Where the demo writes its reports: ``reports/`` in a checkout, else in the current folder."""
    return (resources.checkout_root() or Path.cwd()) / "reports"


def wait_caught_up(pipeline: Pipeline, timeout: float = 600.0) -> float:
    """Seconds until every job and sink connector has read everything sent so far (consumer lag
    0 on every topic, from offsets: no table is counted), counted from the call."""
    started = time.monotonic()
    while any(lag.lag for lag in pipeline.lags()):
        if time.monotonic() - started > timeout:
            behind = ", ".join(f"{lag.group} on {lag.topic}: {lag.lag:,}" for lag in pipeline.lags() if lag.lag)
            raise PipelineError(f"the pipeline did not catch up within {timeout:.0f} s; still behind: {behind}")
        time.sleep(0.5)
    return time.monotonic() - started


def headline(pipeline: Pipeline, first_ms: int, last_ms: int) -> dict:
    """The run's headline figures from the closed tables: every session's bounce, conversion and
    cart abandonment, the funnel as shares of sessions, and the share of page loads that failed."""
    days = reconcile.days_between(first_ms, last_ms)
    sessions = analysis.summary_sessions(pipeline.reader.partitions_df("session_summary", "day", days))
    starts = sessions["session_start"]
    sessions = sessions[(starts >= pd.Timestamp(first_ms, unit="ms")) & (starts <= pd.Timestamp(last_ms, unit="ms"))]
    status = pipeline.reader.partitions_df("status_per_minute", "day", days)
    minutes = analysis.as_datetime(status["window_start"])
    low, high = pd.Timestamp(first_ms // 60_000 * 60_000, unit="ms"), pd.Timestamp(last_ms, unit="ms")
    status = status[(minutes >= low) & (minutes <= high)]
    kpis = analysis.kpis(sessions).iloc[0]
    steps = analysis.funnel_of_sessions(sessions)
    requests, errors = int(status["requests"].sum()), int(status["errors"].sum())
    return {
        "sessions": int(kpis["sessions"]),
        "bounce_rate": round(float(kpis["bounce_rate"]), 4),
        "conversion": round(float(kpis["conversion"]), 4),
        "cart_abandonment": round(float(kpis["cart_abandonment"]), 4),
        "median_duration_s": round(float(kpis["median_duration_s"]), 1),
        "funnel_of_sessions": {
            step: round(float(share), 4) for step, share in zip(steps["step"], steps["of_sessions"], strict=True)
        },
        "funnel_of_previous": {
            step: round(float(share), 4) for step, share in zip(steps["step"], steps["of_previous"], strict=True)
        },
        "page_loads": requests,
        "page_load_error_rate": round(errors / requests, 4) if requests else None,
        "alert_minutes": int(status["alert"].eq(True).sum()),
    }


def headline_text(figures: dict) -> str:
    """The headline figures in one paragraph."""
    funnel = ", ".join(f"{step} {share:.1%}" for step, share in figures["funnel_of_sessions"].items())
    rate, loads = figures["page_load_error_rate"], figures["page_loads"]
    errors = "no page loads" if rate is None else f"{rate:.1%} of {loads:,} page loads failed"
    return (
        f"{figures['sessions']:,} sessions (every visitor): {figures['bounce_rate']:.1%} bounced, "
        f"{figures['conversion']:.1%} ordered, {figures['cart_abandonment']:.0%} of carts abandoned; "
        f"funnel (share of sessions): {funnel}; {errors}, {figures['alert_minutes']} alert minute(s)"
    )


def run(
    settings: Settings,
    n_events: int,
    seed: int | None,
    invalid_ratio: float,
    console: Console,
    out: Path | None = None,
    notebooks: bool = True,
) -> dict:
    """Stack, pipeline, a closed run of ``n_events`` reconciled from Kafka to Cassandra, then
    (``notebooks``) the notebook series on top; reports go to ``out`` (default :func:`reports_dir`).

    The demo has a pipeline of its own, in the namespace ``<CLICKLIB_NAMESPACE>demo_``, and
    starts it empty each time: a demo's runs are dated from the newest events on, and an earlier
    demo's would leave no room before now. Nothing outside that namespace is touched.
    """
    settings = dataclasses.replace(settings, namespace=f"{settings.namespace}{DEMO_NAMESPACE}")
    console.rule("stack")
    rows = stack.up(
        settings, on_event=lambda name, event, detail: event == "healthy" and console.print(f"{name}: {detail}")
    )
    console.print(f"{sum(r.healthy for r in rows)}/{len(rows)} services healthy")

    console.rule("pipeline")
    pipeline = Pipeline(settings)
    with console.status(f"emptying the demo's pipeline (namespace {settings.namespace})"):
        pipeline.down(purge=True)
    pipeline.up()
    console.print(
        f"namespace {settings.namespace}: schema applied, topics created, connectors running, SQL jobs submitted "
        f"(explore it with CLICKLIB_NAMESPACE={settings.namespace})"
    )

    console.rule("workload")
    # A fresh seed per run; the workload is dated after every event the pipeline has seen, so
    # an earlier run's windows never receive this one's events late.
    seed = seed if seed is not None else int(time.time())
    workload = produce.workload_after(pipeline, n_events, seed, invalid_ratio)
    start = reconcile.RunStart.take(pipeline)
    report = produce.produce(pipeline, workload)
    console.print(f"produced {report} ({report.rate:,.0f} events/s), seed {seed}")

    caught_up = wait_caught_up(pipeline)
    console.print(f"last event produced -> every job and connector caught up: {caught_up:.1f} s")
    with console.status("closing the run: writing its last windows and sessions"):
        closed_after = pipeline.close_windows()
    console.print(f"run closed: {', '.join(closed_after.values())}")

    counts = reconcile.run(pipeline, workload, start)
    summary = {
        "namespace": settings.namespace,
        "seed": seed,
        "start_ms": workload.start_ms,
        "events": n_events,
        "invalid": sum(1 for r in workload.records if r.reason),
        "clean": sum(1 for e in workload.events if e.user_id is not None),
        "first_event": min(e.date for e in workload.events),
        "last_event": max(e.date for e in workload.events),
        "produce_seconds": round(report.seconds, 2),
        "produce_rate": round(report.rate),
        "caught_up_after_seconds": round(caught_up, 2),
        "reconciliation": [
            {"stage": c.stage.strip(), "expected": c.expected, "found": c.found, "source": c.source, "agrees": c.agrees}
            for c in counts
        ],
        "all_counts_agree": not reconcile.disagreements(counts),
    }
    table = Table(
        title="Reconciliation: this run from Kafka to Cassandra", show_edge=False, box=None, header_style="bold"
    )
    for column in ("stage", "expected", "found", "read from", ""):
        table.add_column(column, justify="right" if column in ("expected", "found") else "left")
    for c in counts:
        mark = "[green]agrees[/]" if c.agrees else "[bold red]DISAGREES[/]"
        table.add_row(c.stage, f"{c.expected:,}", f"{c.found:,}", c.source, mark)
    console.print(table)
    console.print(reconcile.summary(counts), style="green" if summary["all_counts_agree"] else "bold red")
    summary["headline"] = headline(pipeline, summary["first_event"], summary["last_event"])
    console.print(headline_text(summary["headline"]))
    out = out or reports_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "demo-summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    console.print(f"summary: {path}")

    if not notebooks:
        return summary
    console.rule("notebooks")
    # The series runs on top of the demo's data: its producer notebook adds a smaller run right
    # after the demo's events (notebook 3 closes it), so the analysis covers one stretch of time.
    parameters = {
        "02_produce.ipynb": {"n_events": 2_000, "seed": seed + 1},
        "04_cassandra_sink.ipynb": {"watch_seconds": 10},
        "05_monitoring.ipynb": {"refresh": False},
        "06_analysis.ipynb": {"charts_dir": str(out / "charts")},
    }
    with (
        console.status("executing notebooks 01-07 with papermill"),
        _environment(CLICKLIB_NAMESPACE=settings.namespace),
    ):
        reports.execute_series(out, parameters)
    console.print(f"executed notebooks and their HTML: {out}/0*.ipynb, {out}/0*.html")
    console.print(f"analysis charts (PNG and HTML): {out / 'charts'}")
    return summary
