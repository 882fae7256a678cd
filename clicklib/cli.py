"""The ``clicklib`` command."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from clicklib import stack as local_stack
from clicklib.exceptions import ClicklibError
from clicklib.settings import get_settings

if TYPE_CHECKING:
    from clicklib.pipeline import PipelineStatus

# Piped output (CI logs, make) gets a wide fixed width instead of wrapping at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Print a clicklib error as a message, not a traceback, and exit 1."""
    try:
        yield
    except ClicklibError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        sys.exit(130)


@click.group()
@click.version_option(package_name="clicklib")
def main() -> None:
    """clicklib: a clickstream pipeline on Kafka, Flink SQL, Kafka Connect and Cassandra."""


@main.group()
def stack() -> None:
    """Run the local stack (real services as background processes)."""


def status_table(rows: list[local_stack.ServiceStatus]) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column in ("service", "state", "port", "pid", "rss MB", "restarts", "url", "detail"):
        table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=60 if column == "detail" else None)
    for row in rows:
        warned = row.state in ("partial", "unhealthy", "stalled", "low")
        colour = "yellow" if warned else ("green" if row.healthy else "red")
        table.add_row(
            row.service,
            f"[{colour}]{row.state}[/]",
            str(row.port) if row.port else "-",
            ",".join(map(str, row.pids)) or "-",
            f"{row.rss_mb:.0f}" if row.pids else "-",
            str(row.restarts),
            row.url,
            row.detail,
        )
    return table


@stack.command("up")
@click.argument("services", nargs=-1)
def stack_up(services: tuple[str, ...]) -> None:
    """Start SERVICES (default: all) and wait until each answers a real request."""
    with _clear_errors():
        settings = get_settings()
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[name]:<18}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def on_event(name: str, event: str, detail: str) -> None:
                if name == "jars":
                    progress.console.print(f"[dim]{detail}[/]")
                    return
                if name not in tasks:
                    tasks[name] = progress.add_task(event, name=name, total=1)
                text = {"healthy": f"[green]healthy[/] {detail}", "starting": "starting"}.get(
                    event, f"[dim]{detail[:70]}[/]"
                )
                progress.update(tasks[name], description=text, completed=1 if event == "healthy" else 0)

            rows = local_stack.up(settings, list(services) or None, on_event=on_event)
        console.print(status_table(rows))
        console.print(f"logs: {settings.home / 'logs'}")


@stack.command("resolve")
def stack_resolve() -> None:
    """Fetch and build every jar the stack runs (cached; a second run does nothing)."""
    from clicklib.stack import jars

    with _clear_errors():
        jars.resolve_all(get_settings(), log=lambda message: console.print(f"[dim]{message}[/]"))
        console.print("jars are current")


@stack.command("compose-secrets")
def stack_compose_secrets() -> None:
    """Write the logins the secure docker-compose profile's containers read (CLICKLIB_SECURE=1)."""
    from clicklib.stack import compose

    with _clear_errors():
        folder = compose.write_compose_secrets(get_settings())
        console.print(
            f"logins for docker-compose.secure.yml written to {folder}, a folder per container "
            f"(each mounted at {compose.MOUNT} in its container)"
        )
        console.print("next: docker compose -f docker-compose.yml -f docker-compose.secure.yml up -d --wait")
        console.print(
            "then, for clicklib on this machine: CLICKLIB_SECURE=1 CLICKLIB_FLINK_BOOTSTRAP_SERVERS=kafka:29092 "
            f"CLICKLIB_CONNECT_CASSANDRA_HOSTS=cassandra CLICKLIB_CONNECT_SECRETS_DIR={compose.MOUNT}"
        )


@stack.command("down")
@click.argument("services", nargs=-1)
def stack_down(services: tuple[str, ...]) -> None:
    """Stop SERVICES (default: every process of the local stack)."""
    with _clear_errors():
        with console.status("stopping the stack"):
            stopped = local_stack.down(get_settings(), list(services) or None)
        console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stack_status(as_json: bool) -> None:
    """Probe each service and show its state, port, pid, memory and URL."""
    with _clear_errors():
        rows = local_stack.status(get_settings())
    if as_json:
        click.echo(json.dumps({row.service: row.to_dict() for row in rows}, indent=2))
    else:
        console.print(status_table(rows))
        from clicklib.stack import supervisor

        watcher = supervisor.running(get_settings())
        console.print(
            f"supervisor: {f'running, pid {watcher.pid}' if watcher else 'not running (clicklib stack up starts it)'}"
        )
        for row in rows:
            if row.given_up:
                errors.print(f"[bold red]{row.service}:[/] {row.given_up}\n{row.log_tail}", highlight=False)
    if not all(row.healthy for row in rows):
        sys.exit(3)


@stack.command("logs")
@click.argument("service")
@click.option("-n", "--lines", default=100, show_default=True, help="How many lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the log grows.")
def stack_logs(service: str, lines: int, follow: bool) -> None:
    """Show the log tail of SERVICE (kafka, cassandra, connect, collector, schema-registry, flink, sql-gateway)."""
    with _clear_errors():
        settings = get_settings()
        click.echo(local_stack.logs(settings, service, lines))
        if follow:
            _follow(local_stack.log_paths(settings, service))


def _follow(paths: list) -> None:
    offsets = {path: path.stat().st_size if path.exists() else 0 for path in paths}
    while True:
        for path in paths:
            if not path.exists():
                continue
            with open(path, errors="replace") as log:
                log.seek(offsets[path])
                chunk = log.read()
                offsets[path] = log.tell()
            if chunk:
                click.echo(chunk, nl=False)
        time.sleep(0.5)


@main.command("produce")
@click.option("--events", "n_events", default=20_000, show_default=True, help="How many events to generate.")
@click.option("--rate", type=float, default=None, help="Events per second (default: as fast as Kafka takes them).")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Simulator seed (default: a new one each run); a seed and a start time give the same events.",
)
@click.option("--invalid-ratio", default=0.0, show_default=True, help="Share of deliberately invalid messages.")
@click.option("--file", "jsonl", type=click.Path(exists=True, dir_okay=False), help="Replay a JSON-lines file instead.")
@click.option(
    "--udp",
    is_flag=False,
    flag_value="collector",
    default=None,
    metavar="[HOST:PORT]",
    help="Send the events as datagrams to the collector's UDP bridge (default: the stack's) instead of to Kafka.",
)
def produce_command(
    n_events: int, rate: float | None, seed: int | None, invalid_ratio: float, jsonl: str | None, udp: str | None
) -> None:
    """Generate clickstream events (or replay a file) and produce them into Kafka.

    Generated events are dated from the first whole minute after the newest event the pipeline
    holds (an hour before now on an empty one) and never after now.
    """
    from clicklib import produce
    from clicklib.pipeline import Pipeline

    with _clear_errors():
        pipeline = Pipeline(get_settings())
        if jsonl:
            # Streamed line by line: any file size, and every line accounted for by its number.
            file_report = produce.produce_file(pipeline, jsonl, rate=rate)
            head, *reasons = file_report.summary()
            console.print(head, highlight=False, markup=False, soft_wrap=True)
            for reason in reasons:
                out = console if reason.startswith("note:") else errors
                out.print(reason, highlight=False, markup=False, soft_wrap=True)
            if file_report.interrupted:
                sys.exit(130)
            if not file_report.ok:
                sys.exit(1)
            return
        seed = seed if seed is not None else time.time_ns() % 2**31
        workload = produce.workload_after(pipeline, n_events, seed, invalid_ratio)
        first = min((e.date for e in workload.events), default=workload.start_ms or 0)
        console.print(
            f"seed {seed}, events dated from {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(first / 1000))}"
        )
        if udp:
            udp_report = produce.produce_udp(pipeline, workload, _udp_address(udp), rate=rate)
            console.print(udp_report.summary(), highlight=False, soft_wrap=True)
            if udp_report.interrupted:
                sys.exit(130)
            return
        report = produce.produce(pipeline, workload, rate=rate)
        console.print(f"{report.delivered} delivered, {report.failed} failed ({report.rate:,.0f} events/s)")
        if report.errors:
            errors.print(f"first errors: {'; '.join(report.errors)}")
        if report.interrupted:
            sys.exit(130)
        if report.failed:
            sys.exit(1)


def _udp_address(text: str) -> tuple[str, int] | None:
    if text == "collector":
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise click.BadParameter(f"{text!r} is not HOST:PORT (like 127.0.0.1:8091)", param_hint="--udp")
    return host, int(port)


@main.command("collector")
def collector_command() -> None:
    """Run the collector in the foreground: HTTP events and UDP datagrams into the raw topic.

    It writes to the raw topic of CLICKLIB_NAMESPACE on the Kafka the settings name, so it serves
    an existing cluster as well as the local stack (where `clicklib stack up` runs it already).
    Ctrl-C stops it once Kafka has acknowledged what it holds.
    """
    import asyncio

    from clicklib.collector import CollectorConfig
    from clicklib.collector_http import serve

    def ready(config: CollectorConfig) -> None:
        console.print(
            f"collecting into [bold]{config.topic}[/]: HTTP on http://{config.host}:{config.http_port} "
            f"(POST /collect, GET /i, /tracker.js, /shop/, /health, /metrics), UDP on {config.host}:{config.udp_port}"
        )

    with _clear_errors():
        asyncio.run(serve(get_settings(), ready))


@main.command("lab")
@click.option(
    "--notebooks",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The folder to open (default: the project's notebooks/).",
)
def lab_command(notebooks: Path | None) -> None:
    """Open the notebooks in JupyterLab on 127.0.0.1 (CLICKLIB_LAB_PORT, default 8888).

    The kernel is this project's environment and sees the same CLICKLIB_* settings. Jupyter's
    token login stays on: open the URL printed, token included. Ctrl-C stops it.
    """
    from clicklib import lab

    with _clear_errors():
        settings = get_settings()
        warning = lab.stack_warning(settings)
        if warning:
            console.print(f"[yellow]note:[/] {warning}")
        running = lab.start(settings, notebooks)
        try:
            console.print(f"JupyterLab over {running.root}; its log is {running.log}")
            console.print(f"open [bold]{running.url}[/]", soft_wrap=True, highlight=False)
            console.print("start with 01_stack.ipynb; Ctrl-C stops the lab")
            running.process.wait()
        finally:
            running.stop()


@main.command("dashboard")
@click.option(
    "--every", type=click.FloatRange(min=1.0), default=5.0, show_default=True, help="Seconds between readings."
)
def dashboard_command(every: float) -> None:
    """Serve a live, read-only dashboard of the pipeline on 127.0.0.1 (CLICKLIB_DASHBOARD_PORT,
    default 8866): services, topic rates, lags, jobs, connectors, the newest windows and the
    late and dead-lettered counts, refreshed every few seconds. Ctrl-C stops it."""
    import asyncio

    from clicklib import dashboard

    with _clear_errors():
        settings = get_settings()

        def ready(url: str) -> None:
            console.print(f"dashboard of namespace {settings.namespace or '(default)'}: open [bold]{url}[/]")

        asyncio.run(dashboard.serve(settings, every, ready))


@main.group("pipeline")
def pipeline_group() -> None:
    """Set up, inspect and take down the pipeline (topics, SQL jobs, sink connectors)."""


@pipeline_group.command("up")
@click.option("--fresh", is_flag=True, help="Start every job with empty state instead of resuming its saved state.")
@click.option(
    "--drop-unrestorable-state",
    "drop_unrestorable",
    is_flag=True,
    help="Resume from saved state even where the SQL changed, dropping the state no operator claims.",
)
def pipeline_up(fresh: bool, drop_unrestorable: bool) -> None:
    """Apply the schema, create topics, register connectors, submit the SQL (idempotent).

    Each job resumes from its newest savepoint or retained checkpoint; the table says which.
    """
    from clicklib.pipeline import Pipeline

    with _clear_errors():
        pipeline = Pipeline(get_settings())
        with console.status("setting up the pipeline"):
            report = pipeline.up(fresh=fresh, drop_unrestorable=drop_unrestorable)
        console.print(pipeline_table(report))
        for job, how in report.started.items():
            console.print(f"{job}: {how}", highlight=False)


@pipeline_group.command("status")
def pipeline_status() -> None:
    """Show the pipeline's topics, Flink jobs and connectors."""
    from clicklib.pipeline import Pipeline

    with _clear_errors():
        console.print(pipeline_table(Pipeline(get_settings()).status()))


@pipeline_group.command("down")
@click.option(
    "--purge", is_flag=True, help="Also delete the topics, their schemas, the Cassandra keyspace and the lake's events."
)
def pipeline_down(purge: bool) -> None:
    """Stop the SQL jobs with savepoints and delete the connectors (data stays unless --purge)."""
    from clicklib.pipeline import Pipeline

    with _clear_errors():
        with console.status("stopping the jobs with savepoints"):
            stopped = Pipeline(get_settings()).down(purge=purge)
        for job, how in stopped.items():
            console.print(f"{job}: {how}", highlight=False)
        console.print("pipeline down" + (", topics, schemas, keyspace, lake and saved state deleted" if purge else ""))


@pipeline_group.command("close")
def pipeline_close() -> None:
    """End a run: write every window and session still open once all sent events are read.

    Windows close as new events move the watermark on; after the last event of a run its last
    minutes and sessions stay open until more traffic comes. Close them when the run is over:
    an event dated before the close that arrives afterwards opens a window of its own.
    """
    from clicklib.pipeline import Pipeline

    with _clear_errors():
        with console.status("waiting for the pipeline to read everything, then closing its windows"):
            closed = Pipeline(get_settings()).close_windows()
        for job, how in closed.items():
            console.print(f"{job}: {how}", highlight=False)


@main.group("lake")
def lake_group() -> None:
    """The Parquet lake of clean events, and Spark over it."""


@lake_group.command("status")
def lake_status() -> None:
    """List the lake's hour folders: committed files, size, and whether the hour is finished."""
    from clicklib import lake

    with _clear_errors():
        parts = lake.partitions(get_settings())
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for column in ("day", "hour", "files", "MB", "finished"):
            table.add_column(column, justify="right" if column in ("files", "MB") else "left")
        for part in parts:
            finished = "yes" if part.finished else "no"
            table.add_row(part.day, part.hour, f"{part.files:,}", f"{part.bytes / 1e6:,.1f}", finished)
        console.print(table if parts else f"the lake at {lake.table_url(get_settings())} has no hour folders yet")


@lake_group.command("recompute")
@click.argument("table", type=click.Choice(["pageviews"]))
@click.option("--day", required=True, help="The UTC day to recompute, like 2026-12-01.")
@click.option("--repair", is_flag=True, help="Write the lake's counts over the rows that differ.")
def lake_recompute(table: str, day: str, repair: bool) -> None:
    """Recompute one day of pageviews_per_minute from the lake with Spark and list every row that
    differs from the streaming table. Exits 1 when rows differ (and --repair was not given)."""
    import pandas as pd

    from clicklib import batch
    from clicklib.cassandra import CassandraClient

    settings = get_settings()
    with _clear_errors():
        cassandra = CassandraClient(settings)
        with console.status(f"recomputing {day} from the lake with Spark ({settings.spark_master})"):
            spark = batch.spark_session(settings)
            try:
                differences = batch.recompute_pageviews(spark, settings, cassandra, day)
            finally:
                spark.stop()
        if differences.empty:
            console.print(f"pageviews_per_minute on {day}: the lake and the streaming table agree on every row")
            return
        rows = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        columns = ["window_start", "page_type", "lake_views", "streaming_views", "lake_users", "streaming_users"]
        for column in [*columns, "difference"]:
            rows.add_column(column)
        for record in differences.to_dict("records"):
            rows.add_row(*["" if pd.isna(record[c]) else str(record[c]) for c in [*columns, "difference"]])
        console.print(rows)
        console.print(f"{len(differences):,} rows of pageviews_per_minute on {day} differ from the lake")
        if repair:
            changed = batch.repair_pageviews(cassandra, differences)
            console.print(f"repaired: {changed:,} rows now hold the lake's counts")
            return
        sys.exit(1)


def pipeline_table(report: PipelineStatus) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("state")
    for topic, messages in report.topics.items():
        table.add_row("topic", topic, "missing" if messages < 0 else f"{messages:,} messages")
    for job, state in report.jobs.items():
        table.add_row("flink job", job, state)
    for connector, state in report.connectors.items():
        table.add_row("connector", connector, state)
    for what, count in report.problems.items():
        table.add_row("problems", what, f"[{'red' if count else 'green'}]{count:,}[/]")
    for part, what in report.stalls.items():
        table.add_row("stalled", part, Text(what, style="yellow"))
    return table


@main.command("demo")
@click.option("--events", "n_events", default=20_000, show_default=True)
@click.option("--seed", type=int, default=None, help="Simulator seed (default: a new one each run).")
@click.option("--invalid-ratio", default=0.01, show_default=True)
def demo_command(n_events: int, seed: int | None, invalid_ratio: float) -> None:
    """The whole pipeline end to end: stack, pipeline, a workload, and what reached Cassandra."""
    from clicklib import demo

    with _clear_errors():
        demo.run(get_settings(), n_events, seed, invalid_ratio, console)


@main.command("bench")
@click.option("--events", type=int, help="Events of each throughput stage (default 200,000).")
@click.option("--latency-events", type=int, help="Events produced at a fixed rate for latency (default 8,000).")
@click.option("--out", type=click.Path(file_okay=False), help="Results folder (default bench/results).")
def bench_command(events: int | None, latency_events: int | None, out: str | None) -> None:
    """Measure each stage's throughput, the latency and the memory on the local stack (bench/)."""
    from clicklib.resources import checkout_root

    root = checkout_root()
    if root is None or not (root / "bench" / "run.py").is_file():
        raise click.ClickException("clicklib bench runs from a clicklib checkout: bench/ is not installed")
    sys.path.insert(0, str(root))  # bench/ sits beside the package, not inside it
    from bench.run import main as bench_main

    argv = []
    for flag, value in (("--events", events), ("--latency-events", latency_events), ("--out", out)):
        if value is not None:
            argv += [flag, str(value)]
    with _clear_errors():
        sys.exit(bench_main(argv))


if __name__ == "__main__":
    main()
