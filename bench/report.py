"""Facts about the machine and the services, and the markdown report of a run."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata

import confluent_kafka
import psutil

from clicklib.pipeline import Pipeline

STAGE_TITLES = {
    "producer": "1. producer alone",
    "streaming_sql": "2. streaming SQL alone (ingest + enrich jobs)",
    "sink": "3. sink alone (events-by-user connector)",
    "cassandra": "4. Cassandra alone (Python driver)",
    "end_to_end": "5. end to end",
}


def machine() -> dict:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    return {
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu_model": model,
        "memory_total_mb": round(psutil.virtual_memory().total / 2**20),
        "memory_available_mb_at_start": round(psutil.virtual_memory().available / 2**20),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(pipeline: Pipeline) -> dict:
    found: dict[str, str] = {}
    for package in ("clicklib", "confluent-kafka", "cassandra-driver", "psutil"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    found["librdkafka"] = confluent_kafka.libversion()[0]
    probes = {
        "flink": lambda: pipeline.flink.config()["flink-version"],
        "kafka_connect": lambda: pipeline.connect.info()["version"],
        "sink_plugin": lambda: next(
            p["version"] for p in pipeline.connect.plugins() if p["class"].endswith("CassandraSinkConnector")
        ),
        "cassandra": lambda: pipeline.cassandra.execute("SELECT release_version FROM system.local").one()[0],
    }
    for name, probe in probes.items():
        try:
            found[name] = str(probe())
        except Exception:  # a version we cannot read is reported as such, not fatal
            found[name] = "unknown"
    return found


COLLECTOR_TITLES = {
    "udp": "UDP datagrams, full speed",
    "udp_paced": "UDP datagrams, paced",
    "http_batches": "HTTP, batches of 50",
    "http_single": "HTTP, one event each",
}


def markdown(result: dict) -> str:
    params, host, stages = result["parameters"], result["machine"], result["stages"]
    lines = [
        f"# clicklib bench, {result['started_utc']}",
        "",
        f"{params['events']:,} events per throughput stage (seed {params['seed']}), "
        f"{'secure profile (every client logs in)' if params.get('secure') else 'default profile'}; "
        f"{host['logical_cpus']} CPUs ({host['cpu_model']}), {host['memory_total_mb'] / 1024:.1f} GiB; "
        f"load average {host['load_average_at_start'][0]} at start, {host['load_average_at_end'][0]} at end; "
        f"run took {result['duration_s']:.0f} s.",
        "",
        "| stage | events | seconds | events/s | notes |",
        "|---|---:|---:|---:|---|",
    ]
    for key, title in STAGE_TITLES.items():
        s = stages[key]
        window = f"window: {s['window']['from']} → {s['window']['to']}"
        lines.append(
            f"| {title} | {s['events']:,} | {s['seconds']:.2f} | {s['events_per_s']:,.0f} | {s['notes']}; {window} |"
        )
    e2e = stages["end_to_end"]
    lines += [
        "",
        f"**End to end / slowest pipeline stage alone: {e2e['ratio_to_slowest_stage']:.2f}** "
        f"({STAGE_TITLES[e2e['slowest_stage']]} took {stages[e2e['slowest_stage']]['seconds']:.2f} s for the "
        f"same workload, end to end {e2e['seconds']:.2f} s). Stages 1, 2 and 5 count raw events, 3 and 4 the "
        "clean rows of the same workload, so the ratio compares seconds per workload; it is taken over stages "
        "1-3, which every event passes through (stage 4 is a reference for Cassandra itself).",
        "",
    ]
    cpu = e2e.get("cpu_seconds_per_1000_events")
    if cpu:
        lines += [
            "CPU seconds each process used per 1,000 raw events during the end-to-end stage (user and system), "
            f"{e2e['cpu_seconds_per_1000_events_total']:.2f} in all: "
            + ", ".join(f"{name} {seconds:.2f}" for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])),
            "",
        ]
    lake = e2e.get("lake")
    if lake:
        lines += [
            f"**The lake inside the pipeline:** its committed Parquet files held every clean event "
            f"{lake['seconds']:.2f} s after the first was sent, {lake['events_per_s']:,.0f} raw events/s "
            f"({lake['clean_events_per_s']:,.0f} clean events/s), in {lake['files']:,} files of "
            f"{lake['bytes'] / 1e6:,.1f} MB; {lake['notes']}.",
            "",
        ]
    spark = result.get("spark")
    if spark:
        lines += [
            "## Spark over the lake",
            "",
            f"Retention cohorts over {spark['events']:,} clean events ({spark['days']} days) in the lake: "
            f"**{spark['seconds']:.1f} s** ({spark['events_per_s']:,.0f} events/s; {spark['notes']}), after "
            f"{spark['spark_start_seconds']:.1f} s to start Spark.",
            "",
        ]
    collector = result.get("collector")
    if collector:
        lines += [
            "## The collector alone (into a raw topic nothing reads)",
            "",
            "| path | events | seconds | events/s | p50 ms | p99 ms | notes |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for key, title in COLLECTOR_TITLES.items():
            c = collector[key]
            p50 = f"{c['p50_ms']:,.1f}" if "p50_ms" in c else "-"
            p99 = f"{c['p99_ms']:,.1f}" if "p99_ms" in c else "-"
            lines.append(
                f"| {title} | {c['events']:,} | {c['seconds']:.2f} | {c['events_per_s']:,.0f} | {p50} | {p99} "
                f"| {c['notes']} |"
            )
        lines.append("")
    lat = result["latency"]
    lines += [
        f"## Latency, producer send → row written in Cassandra, at {lat['offered_rate']:,.0f} events/s offered",
        "",
        f"{lat['events']:,} events ({lat['samples']:,} clean ones sampled) after {lat['warmup_events']:,} warm-up "
        f"events; achieved send rate {lat['achieved_send_rate']:,.0f} events/s.",
        "",
        "| samples | p50 ms | p95 ms | p99 ms | max ms |",
        "|---:|---:|---:|---:|---:|",
        f"| {lat['samples']:,} | {lat['p50_ms']:,.1f} | {lat['p95_ms']:,.1f} | {lat['p99_ms']:,.1f} "
        f"| {lat['max_ms']:,.1f} |",
        "",
        f"Note: {lat['note']}",
        "",
    ]
    memory = result["memory"]
    lines += [
        f"## Peak resident memory (RSS, sampled every {memory['interval_s']} s, {memory['samples']} samples)",
        "",
        "| service | process | pid | at start MB | peak MB |",
        "|---|---|---:|---:|---:|",
    ]
    for p in memory["processes"]:
        lines.append(f"| {p['service']} | {p['process']} | {p['pid']} | {p['start_mb']:,.0f} | {p['peak_mb']:,.0f} |")
    if result["warnings"]:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in result["warnings"])]
    return "\n".join(lines) + "\n"
