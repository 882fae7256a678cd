"""The benchmark harness (bench/) with a tiny workload against the real stack.

It checks that a run writes every figure, each one positive, and leaves nothing behind.
No test asserts a time: the figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import json
from numbers import Number
from pathlib import Path

import pytest

from bench import run as bench
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings

STAGES = ("producer", "streaming_sql", "sink", "cassandra", "end_to_end")
STAGE_FIELDS = ("events", "seconds", "events_per_s", "window", "notes")
LATENCY_FIELDS = ("offered_rate", "achieved_send_rate", "samples", "p50_ms", "p95_ms", "p99_ms", "max_ms", "note")


def numbers(value: object, path: str = "") -> list[tuple[str, Number]]:
    """Every number in a JSON value, with where it is."""
    if isinstance(value, bool):
        return []
    if isinstance(value, Number):
        return [(path, value)]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in numbers(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in numbers(item, f"{path}[{i}]")]
    return []


@pytest.mark.full
def test_a_tiny_run_writes_every_figure_and_cleans_up(live_stack: Settings, tmp_path: Path):
    result = bench.run(
        live_stack,
        events=2_000,
        latency_events=500,
        out_dir=tmp_path,
        min_latency_samples=100,
        warmup_events=100,
        spark_events=5_000,
    )

    data = json.loads(Path(result["files"]["json"]).read_text())
    assert Path(result["files"]["markdown"]).read_text().startswith("# clicklib bench")
    assert {p.suffix for p in tmp_path.iterdir()} == {".json", ".md"}
    for stage in STAGES:
        assert all(field in data["stages"][stage] for field in STAGE_FIELDS), stage
    assert data["stages"]["end_to_end"]["slowest_stage"] in ("producer", "streaming_sql", "sink")
    assert "ratio_to_slowest_stage" in data["stages"]["end_to_end"]
    assert all(field in data["latency"] for field in LATENCY_FIELDS)
    assert all(field in data["stages"]["end_to_end"]["lake"] for field in STAGE_FIELDS)
    assert data["stages"]["end_to_end"]["lake"]["files"] > 0
    assert data["spark"]["events"] == 5_000 and data["spark"]["days"] > 1
    assert data["latency"]["samples"] >= 100
    assert {p["service"] for p in data["memory"]["processes"]} >= {"kafka", "cassandra", "connect", "flink"}
    assert data["parameters"]["events"] == 2_000 and data["parameters"]["latency_events"] == 500
    assert data["machine"]["logical_cpus"] and data["machine"]["memory_total_mb"]
    assert data["versions"]["flink"] != "unknown" and data["versions"]["cassandra"] != "unknown"

    for path in ("udp", "udp_paced", "http_batches", "http_single"):
        assert all(field in data["collector"][path] for field in STAGE_FIELDS), path
    assert data["collector"]["http_batches"]["p99_ms"] >= data["collector"]["http_batches"]["p50_ms"] > 0
    assert data["collector"]["udp"]["sent"] == data["collector"]["udp_paced"]["sent"] == 2_000
    figures = numbers({key: data[key] for key in ("stages", "latency", "memory", "collector")})
    assert figures
    # A process that was idle through the end-to-end stage (a web guard, the collector) may have
    # used no measurable CPU: its figure is 0, not missing. Every other figure is positive.
    cpu = ".stages.end_to_end.cpu_seconds_per_1000_events."
    assert [(where, value) for where, value in figures if not value > 0 and not where.startswith(cpu)] == []
    spent = data["stages"]["end_to_end"]["cpu_seconds_per_1000_events"]
    assert all(value >= 0 for value in spent.values()) and spent["flink-taskmanager"] > 0 and spent["kafka"] > 0

    assert data["warnings"] == []
    prefix = data["namespace_prefix"]
    with Pipeline(live_stack) as pipeline:
        left_topics = [t for t in pipeline.kafka.topic_names() if t.startswith(prefix)]
        keyspaces = pipeline.cassandra.execute("SELECT keyspace_name FROM system_schema.keyspaces")
    left_keyspaces = [row[0] for row in keyspaces if row[0].startswith(prefix)]
    assert left_topics == [] and left_keyspaces == []
