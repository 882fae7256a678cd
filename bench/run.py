"""Run every benchmark stage on the local stack and write the results.

    python -m bench.run [--events N] [--latency-events M] [--out DIR] [--min-latency-samples K]

Writes ``<out>/<UTC timestamp>.json`` (every figure, the parameters, machine facts and
versions) and ``<out>/<UTC timestamp>.md`` (the tables), and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import report, stages
from bench.memory import RssSampler
from bench.support import BenchError, clean_count
from clicklib import generate, stack
from clicklib.exceptions import ClicklibError
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings, get_settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_EVENTS = 200_000
DEFAULT_SPARK_EVENTS = 1_000_000  # the lake's events Spark groups into retention cohorts
DEFAULT_LATENCY_EVENTS = 8_000  # about 6,000 clean events: above the 5,000 samples asked for
DEFAULT_MIN_LATENCY_SAMPLES = 5_000
DEFAULT_SEED = 20260101
WARMUP_EVENTS = 200
PIPELINE_STAGES = ("producer", "streaming_sql", "sink")  # what every event passes through


def _versions(settings: Settings) -> dict:
    with Pipeline(settings) as pipeline:
        return report.versions(pipeline)


def run(
    settings: Settings,
    events: int = DEFAULT_EVENTS,
    latency_events: int = DEFAULT_LATENCY_EVENTS,
    out_dir: Path | str = RESULTS_DIR,
    min_latency_samples: int = DEFAULT_MIN_LATENCY_SAMPLES,
    seed: int = DEFAULT_SEED,
    latency_rate: float | None = None,
    warmup_events: int = WARMUP_EVENTS,
    log: Callable[[str], None] | None = None,
    spark_events: int = DEFAULT_SPARK_EVENTS,
) -> dict:
    """Measure every stage once and write ``<out_dir>/<timestamp>.json`` and ``.md``.

    ``latency_rate`` defaults to half the end-to-end rate just measured. Returns the result
    (as written to the JSON file) with the two file paths under ``files``.
    """
    log = log or (lambda message: print(f"bench: {message}", file=sys.stderr, flush=True))
    workload = generate.generate(events, seed=seed)
    latency_workload = generate.generate(latency_events, seed=seed + 1)
    warmup = generate.generate(warmup_events, seed=seed + 2)
    samples = clean_count(latency_workload)
    if samples < min_latency_samples:
        raise BenchError(
            f"{latency_events} latency events hold {samples} clean events to sample, fewer than the minimum "
            f"{min_latency_samples}: produce more (about {int(min_latency_samples * latency_events / max(samples, 1))}"
            " events) or lower the minimum (python -m bench.run --min-latency-samples)"
        )

    services = stack.status(settings)
    unhealthy = [f"{row.service} ({row.state})" for row in services if not row.healthy]
    if unhealthy:
        raise BenchError(f"the stack is not healthy: {', '.join(unhealthy)}; start it with `clicklib stack up`")

    started = datetime.now(UTC)
    prefix = f"b{uuid.uuid4().hex[:6]}"
    result: dict = {
        "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "namespace_prefix": prefix,
        "parameters": {
            "events": events,
            "latency_events": latency_events,
            "spark_events": spark_events,
            "warmup_events": warmup_events,
            "min_latency_samples": min_latency_samples,
            "seed": seed,
            "latency_seed": seed + 1,
            "warmup_seed": seed + 2,
            "invalid_ratio": 0.0,
            "clean_events": clean_count(workload),
            "cassandra_concurrency": stages.CASSANDRA_CONCURRENCY,
            "raw_partitions": settings.raw_partitions,
            # The secure profile: every client logs in (SASL/SCRAM, Cassandra roles, Connect's REST).
            "secure": settings.secure,
            "flink_parallelism": settings.flink_parallelism,
            "checkpoint_interval": settings.checkpoint_interval,
        },
        "machine": report.machine(),
        "versions": _versions(settings),
        "stages": {},
        "warnings": [],
    }
    warnings = result["warnings"]
    throughput = (
        ("producer", stages.producer_alone),
        ("streaming_sql", stages.streaming_sql_alone),
        ("sink", stages.sink_alone),
        ("cassandra", stages.cassandra_alone),
        ("end_to_end", stages.end_to_end),
    )
    with RssSampler(services) as memory:
        for name, stage in throughput:
            memory.stage = name
            log(f"{name}: the {events:,}-event workload in namespace {prefix}{name}_")
            figures = result["stages"][name] = stage(settings, f"{prefix}{name}_", workload, warnings)
            log(f"{name}: {figures['events']:,} in {figures['seconds']:.1f} s, {figures['events_per_s']:,.0f}/s")
        # Every stage handled the same workload (stages 3 and 4 its clean rows only), so comparing
        # the seconds compares throughput in the same unit: workloads per second.
        e2e = result["stages"]["end_to_end"]
        slowest = max(PIPELINE_STAGES, key=lambda s: result["stages"][s]["seconds"])
        e2e["slowest_stage"] = slowest
        e2e["ratio_to_slowest_stage"] = round(result["stages"][slowest]["seconds"] / e2e["seconds"], 3)

        memory.stage = "spark"
        log(f"spark: retention cohorts over {spark_events:,} events in a lake folder of {prefix}spark_")
        result["spark"] = stages.spark_cohorts(settings, f"{prefix}spark_", workload, spark_events, warnings)
        log(f"spark: {result['spark']['seconds']:.1f} s after {result['spark']['spark_start_seconds']:.1f} s to start")

        memory.stage = "collector"
        log(f"collector: the workload over UDP and HTTP in namespace {prefix}collector_")
        result["collector"] = stages.collector_alone(settings, f"{prefix}collector_", workload, warnings)
        for path, figures in result["collector"].items():
            rate = figures["events_per_s"]
            log(f"collector {path}: {figures['events']:,} in {figures['seconds']:.1f} s, {rate:,.0f}/s")

        rate = latency_rate or e2e["events_per_s"] / 2
        result["parameters"]["latency_rate"] = round(rate, 1)
        memory.stage = "latency"
        log(f"latency: {latency_events:,} events at {rate:,.0f} events/s in namespace {prefix}latency_")
        result["latency"] = stages.latency(settings, f"{prefix}latency_", warmup, latency_workload, rate, warnings)
        log(f"latency: p50 {result['latency']['p50_ms']:,.0f} ms, p99 {result['latency']['p99_ms']:,.0f} ms")
    result["memory"] = memory.result()
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["duration_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y%m%dT%H%M%SZ")
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(report.markdown(result))
    return {**result, "files": {"json": str(json_path), "markdown": str(md_path)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="events of each throughput stage")
    parser.add_argument(
        "--latency-events", type=int, default=DEFAULT_LATENCY_EVENTS, help="events produced at a fixed rate"
    )
    parser.add_argument(
        "--spark-events", type=int, default=DEFAULT_SPARK_EVENTS, help="lake events of Spark's cohort question"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)")
    parser.add_argument("--min-latency-samples", type=int, default=DEFAULT_MIN_LATENCY_SAMPLES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--latency-rate", type=float, default=None, help="default: half the end-to-end rate")
    args = parser.parse_args(argv)
    # The Cassandra driver warns about defaults and full-table COUNT(*)s, which the harness means.
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    started = time.monotonic()
    try:
        result = run(
            get_settings(),
            args.events,
            args.latency_events,
            args.out,
            min_latency_samples=args.min_latency_samples,
            seed=args.seed,
            latency_rate=args.latency_rate,
            spark_events=args.spark_events,
        )
    except ClicklibError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    print(Path(result["files"]["markdown"]).read_text())
    print(f"results: {result['files']['json']} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
