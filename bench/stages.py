"""The benchmark's stages, one function each. Every stage runs in a namespace of its own
(``<prefix><stage>_``), which it tears down (purges) when done, whatever happened.

A throughput stage returns a dict: ``events``, ``seconds``, ``events_per_s``, ``window``
(what the seconds were measured from and to) and ``notes``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import UNSET_VALUE
from confluent_kafka import TopicPartition

from bench.memory import cpu_seconds
from bench.support import (
    CLEAN_JOBS,
    EVENTS_BY_USER_COLUMNS,
    POLL_SECONDS,
    BenchError,
    Landing,
    check_delivered,
    clean_count,
    clean_rows,
    fill_avro_topic,
    namespaced,
    submit_jobs,
    timeout_for,
    wait_jobs_running,
)
from clicklib import batch, lake, produce, stack
from clicklib.generate import Workload
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.topics import RAW

CASSANDRA_CONCURRENCY = 100
SETTLED_QUIET_SECONDS = 5.0


def measured(events: int, started: float, ended: float, start: str, end: str, notes: str, **extra: object) -> dict:
    """A throughput figure: ``events`` over the window from ``started`` to ``ended`` (epoch s)."""
    seconds = ended - started
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1) if seconds > 0 else 0.0,
        "window": {"from": start, "to": end, "start_utc": utc(started), "end_utc": utc(ended)},
        "notes": notes,
        **extra,
    }


def utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def producer_alone(base: Settings, namespace: str, workload: Workload, warnings: list[str]) -> dict:
    """clicklib.produce into a fresh raw topic that nothing reads."""
    with namespaced(base, namespace, warnings) as pipeline:
        pipeline.create_topics()
        started = time.time()
        report = produce.produce_records(pipeline, workload.records, show_progress=False)
        check_delivered(report, len(workload.records))
    return measured(
        report.delivered,
        started,
        started + report.seconds,  # the producer's own clock: from its first produce() to flush()
        "first produce() call",
        "flush() returned: every message acknowledged",
        f"acks=all, idempotent, lz4, linger 20 ms; {base.raw_partitions} partitions; nothing consumes the topic",
    )


def streaming_sql_alone(base: Settings, namespace: str, workload: Workload, warnings: list[str]) -> dict:
    """The jobs that make clean events (ingest and enrich) alone, over a raw topic filled before they start."""
    expected = clean_count(workload)
    with namespaced(base, namespace, warnings) as pipeline:
        pipeline.create_topics()
        check_delivered(produce.produce(pipeline, workload, show_progress=False), len(workload.records))
        with Landing(pipeline) as landing:
            starts = submit_jobs(pipeline, list(CLEAN_JOBS))
            ended, messages = landing.settled(expected, SETTLED_QUIET_SECONDS, timeout_for(len(workload.records)))
        jobs = [pipeline.flink.job(start.job_id) for start in starts.values()]
    started = min(job["start-time"] for job in jobs) / 1000
    extra = (
        f" as {messages:,} messages (the extra ones: a tombstone and the joined row again for each event joined "
        "before its user's profile was read)"
        if messages > expected
        else ""
    )
    running = max(job.get("timestamps", {}).get("RUNNING", job["start-time"]) for job in jobs) / 1000
    return measured(
        len(workload.records),
        started,
        ended,
        "the first Flink job's start-time (submitted, before deployment)",
        f"the clean topic reached its final size (polled every {POLL_SECONDS} s; final once unchanged for "
        f"{SETTLED_QUIET_SECONDS:.0f} s)",
        f"jobs {' and '.join(CLEAN_JOBS)}; raw events read; {expected:,} clean events out{extra}; includes "
        f"{running - started:.1f} s from start-time to both jobs RUNNING and the tasks' start-up",
        clean_rows_out=expected,
        clean_messages_out=messages,
        job_running_after_s=round(running - started, 3),
    )


def sink_alone(base: Settings, namespace: str, workload: Workload, warnings: list[str]) -> dict:
    """The events-by-user connector alone over the Avro topic, filled before it starts."""
    rows = clean_rows(workload)
    with namespaced(base, namespace, warnings) as pipeline:
        pipeline.create_tables()
        pipeline.create_topics()
        fill_avro_topic(pipeline, rows)
        client = pipeline.connect
        connector = pipeline.definition.connector("events_by_user")
        client.validate(connector)
        with Landing(pipeline) as landing:
            started = time.time()
            client.put(connector)
            client.wait_running([connector.name])
            running = time.time()
            ended = landing.rows(len(rows), timeout_for(len(rows)))
    return measured(
        len(rows),
        started,
        ended,
        "PUT /connectors/<name>/config",
        f"events_by_user holds all {len(rows):,} rows",
        f"rows written by one sink task; includes its start-up (Connect reported it RUNNING within "
        f"{running - started:.1f} s; status polled every 1 s)",
        connector_running_after_s=round(running - started, 3),
    )


def cassandra_alone(base: Settings, namespace: str, workload: Workload, warnings: list[str]) -> dict:
    """Prepared INSERTs into events_by_user from this Python process, 100 in flight."""
    rows = clean_rows(workload)
    columns = ", ".join(EVENTS_BY_USER_COLUMNS)
    # Unset, not null: like the sink, write no tombstone for a missing value.
    params = [tuple(UNSET_VALUE if row[c] is None else row[c] for c in EVENTS_BY_USER_COLUMNS) for row in rows]
    with namespaced(base, namespace, warnings) as pipeline:
        pipeline.cassandra.apply_schema(pipeline.definition.schema)
        cql = pipeline.cassandra.session
        insert = cql.prepare(
            f"INSERT INTO {pipeline.settings.keyspace}.events_by_user ({columns}) "
            f"VALUES ({', '.join('?' * len(EVENTS_BY_USER_COLUMNS))})"
        )
        started = time.time()
        execute_concurrent_with_args(cql, insert, params, concurrency=CASSANDRA_CONCURRENCY, raise_on_first_error=True)
        ended = time.time()
        written = pipeline.cassandra.count_rows("events_by_user")
    if written != len(rows):
        raise BenchError(f"events_by_user holds {written} rows after {len(rows)} inserts")
    return measured(
        len(rows),
        started,
        ended,
        "first INSERT sent",
        "every INSERT acknowledged",
        f"Python cassandra-driver, execute_concurrent_with_args, concurrency {CASSANDRA_CONCURRENCY}, "
        "prepared statement, consistency LOCAL_ONE (driver default)",
    )


def end_to_end(base: Settings, namespace: str, workload: Workload, warnings: list[str]) -> dict:
    """The whole pipeline: producer -> Kafka -> every Flink job -> every connector -> Cassandra."""
    expected = clean_count(workload)
    with namespaced(base, namespace, warnings) as pipeline:
        pipeline.up()
        wait_jobs_running(pipeline)
        produce.publish_profiles(pipeline, workload.profiles)  # reference data, before the clock starts
        services = stack.status(base)
        with Landing(pipeline) as landing:
            cpu_before = cpu_seconds(services)
            started = time.time()
            report = produce.produce_records(pipeline, workload.records, show_progress=False)
            ended = landing.rows(expected, timeout_for(len(workload.records)))
            cpu_after = cpu_seconds(services)
            lake_ended = lake_rows(pipeline, expected, timeout_for(len(workload.records)))
        check_delivered(report, len(workload.records))
        folders = lake.partitions(pipeline.settings)
    # CPU each process spent per 1,000 raw events while the stage ran: what an event costs.
    cpu_per_1000 = {
        name: round((cpu_after[name] - cpu_before.get(name, 0.0)) * 1000 / len(workload.records), 3)
        for name in cpu_after
    }
    return measured(
        len(workload.records),
        started,
        ended,
        "first event sent (profiles were published before)",
        f"events_by_user holds every clean event ({expected:,})",
        f"whole pipeline ({', '.join(p.name for p in pipeline.definition.jobs)} jobs, "
        f"{len(pipeline.definition.connectors)} connectors); {expected:,} clean rows; "
        f"the producer alone took {report.seconds:.1f} s of it",
        clean_rows_out=expected,
        producer_seconds=round(report.seconds, 3),
        cpu_seconds_per_1000_events=cpu_per_1000,
        cpu_seconds_per_1000_events_total=round(sum(cpu_per_1000.values()), 3),
        # The lake job in the same run: when its committed files held every clean event.
        lake=measured(
            len(workload.records),
            started,
            lake_ended,
            "first event sent",
            f"the lake's committed Parquet files hold every clean event ({expected:,})",
            "the lake job writes in step with the other jobs; files are committed at each checkpoint "
            f"({pipeline.settings.checkpoint_interval}), so the figure includes up to one interval",
            clean_events_per_s=round(expected / (lake_ended - started), 1),
            files=sum(f.files for f in folders),
            bytes=sum(f.bytes for f in folders),
        ),
    )


def lake_rows(pipeline: Pipeline, expected: int, timeout: float) -> float:
    """When (epoch s) the lake's committed files first held ``expected`` rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lake.exists(pipeline.settings) and lake.dataset(pipeline.settings).count_rows() >= expected:
            return time.time()
        time.sleep(POLL_SECONDS)
    raise BenchError(f"the lake did not hold {expected:,} clean events within {timeout:.0f} s")


def spark_cohorts(base: Settings, namespace: str, workload: Workload, events: int, warnings: list[str]) -> dict:
    """Spark's time for the retention cohorts over ``events`` clean events: the workload's clean
    events copied onto consecutive days (new event and session ids, the same users, a varying
    share of them each day) into a lake folder of this stage's own, then read, deduplicated and
    grouped by Spark in local mode. Spark's start is timed apart."""
    settings = dataclasses.replace(base, namespace=namespace)
    frame = synthetic_lake(workload, events)
    root = lake.filesystem(settings)[1]
    try:
        pads.write_dataset(
            pa.Table.from_pandas(frame, preserve_index=False),
            root,
            format="parquet",
            partitioning=pads.partitioning(lake.PARTITIONS, flavor="hive"),
            existing_data_behavior="delete_matching",
        )
        started = time.time()
        spark = batch.spark_session(settings)
        spark_started = time.time()
        try:
            cohorts = batch.retention(batch.events(spark, settings))
            ended = time.time()
        finally:
            spark.stop()
    finally:
        lake.delete(settings)
    return measured(
        len(frame),
        spark_started,
        ended,
        "Spark session started",
        f"retention cohorts computed ({len(cohorts):,} cohort-day rows)",
        f"{settings.spark_master}; read, each event_id once, grouped",
        spark_start_seconds=round(spark_started - started, 3),
        days=int(frame["day"].nunique()),
    )


def synthetic_lake(workload: Workload, events: int) -> pd.DataFrame:
    """``events`` rows in the lake's columns: the workload's clean events, then copies of them a
    day later each time, with ids of their own; copy k keeps the users whose number is at least
    k modulo 10, so each cohort thins out day by day."""
    clean = pd.DataFrame([dataclasses.asdict(e) for e in workload.events if e.user_id is not None])
    clean = clean[[f.name for f in lake.COLUMNS]]
    user_number = clean["user_id"].map(lambda user: int(user[-2:], 16) % 10)
    copies = []
    total, k = 0, 0
    while total < events:
        copy = clean[user_number >= k % 10].copy()
        copy["event_id"] = copy["event_id"] + f"-{k}"
        copy["session_id"] = copy["session_id"] + f"-{k}"
        copy["date"] = copy["date"] + k * 86_400_000
        copies.append(copy.head(events - total))
        total += len(copies[-1])
        k += 1
    frame = pd.concat(copies, ignore_index=True)
    times = pd.to_datetime(frame["date"], unit="ms")
    frame["day"], frame["hour"] = times.dt.strftime("%Y-%m-%d"), times.dt.strftime("%H")
    return frame


def latency(
    base: Settings,
    namespace: str,
    warmup: Workload,
    workload: Workload,
    rate: float,
    warnings: list[str],
) -> dict:
    """Producer send -> Cassandra write of each clean event, at a fixed offered rate.

    The send time is each raw message's Kafka CreateTime, which the producer stamps with its
    wall clock when produce() is called; the write time is WRITETIME(event) of the row, the
    timestamp the sink's Cassandra driver gives the write. A warm-up workload goes through
    first and is not sampled.
    """
    warmup_clean, expected = clean_count(warmup), clean_count(workload)
    with namespaced(base, namespace, warnings) as pipeline:
        pipeline.up()
        wait_jobs_running(pipeline)
        with Landing(pipeline) as landing:
            check_delivered(produce.produce(pipeline, warmup, rate=rate, show_progress=False), len(warmup.records))
            landing.rows(warmup_clean, timeout_for(len(warmup.records)))
            report = produce.produce(pipeline, workload, rate=rate, show_progress=False)
            check_delivered(report, len(workload.records))
            landing.rows(warmup_clean + expected, timeout_for(len(workload.records)))
        sampled = {r.event.event_id for r in workload.records if r.event is not None and r.event.user_id is not None}
        sent_ms = send_times(pipeline, sampled)
        written_us = write_times(pipeline, sampled)
    latencies = sorted(written_us[event_id] / 1000 - sent_ms[event_id] for event_id in sampled)
    return {
        "offered_rate": round(rate, 1),
        "achieved_send_rate": round(report.rate, 1),
        "events": len(workload.records),
        "warmup_events": len(warmup.records),
        "samples": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(latencies[-1], 1),
        "min_ms": round(latencies[0], 1),
        "mean_ms": round(sum(latencies) / len(latencies), 1),
        "note": (
            "latency = WRITETIME(event)/1000 - send time. WRITETIME is the sink's write timestamp (set by the "
            "Connect sink's Cassandra driver when it writes the row; a row written twice keeps the later one); "
            "the send time is the raw message's Kafka CreateTime, stamped by the producer at produce(). "
            "Both come from the same machine's clock."
        ),
    }


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def send_times(pipeline: Pipeline, event_ids: set[str]) -> dict[str, int]:
    """event_id -> CreateTime (epoch ms) of the raw messages carrying those events."""
    topic = pipeline.topic(RAW)
    # never commits, never joins
    consumer = pipeline.kafka.consumer(
        f"{pipeline.settings.namespace}bench-send-times", **{"enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=pipeline.kafka.timeout).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        pending = {p for p, end in ends.items() if end > 0}
        found: dict[str, int] = {}
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error() is not None:
                    continue
                try:
                    event_id = json.loads(message.value()).get("event_id")
                except (ValueError, AttributeError):  # an invalid message carries no sampled event
                    event_id = None
                if event_id in event_ids:
                    found[event_id] = message.timestamp()[1]
                if message.offset() >= ends[message.partition()] - 1:
                    pending.discard(message.partition())
    finally:
        consumer.close()
    if len(found) != len(event_ids):
        raise BenchError(f"found the send time of {len(found)} of {len(event_ids)} sampled events in {topic}")
    return found


def write_times(pipeline: Pipeline, event_ids: set[str]) -> dict[str, int]:
    """event_id -> WRITETIME(event) (epoch µs) of the sampled rows of events_by_user."""
    frame = pipeline.cassandra.query_df(
        f"SELECT event_id, WRITETIME(event) AS written FROM {pipeline.settings.keyspace}.events_by_user"
    )
    written = {e: int(w) for e, w in zip(frame["event_id"], frame["written"], strict=True) if e in event_ids}
    if len(written) != len(event_ids):
        raise BenchError(f"events_by_user holds {len(written)} of {len(event_ids)} sampled rows")
    return written


COLLECTOR_CONCURRENCY = 16  # HTTP requests in flight at once, as many browsers would send
COLLECTOR_BATCH = 50
UDP_RATE = 25_000  # datagrams a second: above the 20,000 events/s the UDP bridge is meant to carry
COLLECTOR_SINGLE_EVENTS = 10_000  # one request each: fewer, or this stage alone takes minutes


def collector_alone(base: Settings, namespace: str, workload: Workload, warnings: list[str]) -> dict:
    """The collector alone, into a raw topic nothing reads: UDP datagrams (one event each) at full
    speed and at UDP_RATE, HTTP batches of 50, and one event per HTTP request; with each request's
    latency."""
    import asyncio
    import dataclasses

    from clicklib import collector_http

    http_port, udp_port = _free_ports(2)
    with namespaced(base, namespace, warnings) as pipeline:
        pipeline.create_topics()
        settings = dataclasses.replace(pipeline.settings, collector_port=http_port, collector_udp_port=udp_port)
        proc = collector_http.spawn(settings, settings.home / "logs" / f"bench-collector-{http_port}.log")
        try:
            values = [r.value.encode() for r in workload.records]
            events = [json.loads(r.value) for r in workload.records if r.event is not None]
            # UDP, twice: as fast as the socket takes datagrams (what an overrun bridge drops), then
            # paced at UDP_RATE. Each from the first datagram sent to the forwarded count settling.
            udp = _udp_run(settings, values, None)
            udp_paced = _udp_run(settings, values, UDP_RATE)
            batches = [events[i : i + COLLECTOR_BATCH] for i in range(0, len(events), COLLECTOR_BATCH)]
            batched = asyncio.run(_post_all(settings.collector_url, batches))
            singles = asyncio.run(_post_all(settings.collector_url, [[e] for e in events[:COLLECTOR_SINGLE_EVENTS]]))
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    return {
        "udp": udp,
        "udp_paced": udp_paced,
        "http_batches": {
            **batched,
            "notes": f"POST /collect, {COLLECTOR_BATCH} events a request, "
            f"{COLLECTOR_CONCURRENCY} requests in flight; 202 once Kafka acknowledged",
        },
        "http_single": {**singles, "notes": f"POST /collect, one event a request, {COLLECTOR_CONCURRENCY} in flight"},
    }


def _udp_run(settings: Settings, values: list[bytes], rate: float | None) -> dict:
    """Send every value as a datagram (at ``rate`` a second, or as fast as the socket takes them)
    and count what the collector forwarded: the events/s is the forwarded count over the time from
    the first datagram sent to the count settling."""
    import socket

    from clicklib.produce import collector_forwarded

    def forwarded_so_far() -> int:
        return collector_forwarded(settings.collector_url) or 0

    before = forwarded_so_far()
    started = time.time()
    clock = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, value in enumerate(values):
            if rate and (ahead := clock + index / rate - time.monotonic()) > 0:
                time.sleep(ahead)
            sock.sendto(value, ("127.0.0.1", settings.collector_udp_port))
    sent_seconds = time.monotonic() - clock
    count, ended = _settled_count(forwarded_so_far)
    forwarded = count - before
    how = (
        f"paced at {rate:,.0f} a second (achieved {len(values) / sent_seconds:,.0f})"
        if rate
        else "as fast as the socket takes them"
    )
    return measured(
        forwarded,
        started,
        ended,
        "first datagram sent",
        "the collector's forwarded count settled (every event acknowledged by Kafka)",
        f"one event per datagram, {how}; {len(values) - forwarded:,} of {len(values):,} dropped by UDP",
        sent=len(values),
    )


async def _post_all(url: str, bodies: list[list[dict]]) -> dict:
    """POST every body with COLLECTOR_CONCURRENCY in flight; events/s and request latency."""
    import asyncio

    import aiohttp

    latencies: list[float] = []
    failures: list[str] = []
    queue = list(reversed(bodies))

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            sent = time.perf_counter()
            async with session.post(f"{url}/collect", json=body) as answer:
                await answer.read()
                if answer.status != 202:
                    failures.append(f"{answer.status}")
            latencies.append(time.perf_counter() - sent)

    started = time.time()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(worker(session) for _ in range(COLLECTOR_CONCURRENCY)))
    ended = time.time()
    if failures:
        raise BenchError(
            f"the collector answered {len(failures)} of {len(bodies)} requests with {failures[0]}, not 202"
        )
    latencies.sort()
    count = sum(len(b) for b in bodies)
    figures = measured(count, started, ended, "first request sent", "last 202 received", "")
    figures.update(
        requests=len(bodies),
        p50_ms=round(latencies[len(latencies) // 2] * 1000, 1),
        p99_ms=round(latencies[min(len(latencies) - 1, math.ceil(len(latencies) * 0.99) - 1)] * 1000, 1),
    )
    return figures


def _settled_count(read, quiet_seconds: float = 2.0, timeout: float = 300.0) -> tuple[int, float]:
    """A count once it stopped moving for ``quiet_seconds``, and when it last moved (epoch s)."""
    count, moved_at = read(), time.time()
    deadline = time.monotonic() + timeout
    while time.time() - moved_at < quiet_seconds and time.monotonic() < deadline:
        time.sleep(0.1)
        now = read()
        if now != count:
            count, moved_at = now, time.time()
    return count, moved_at


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
