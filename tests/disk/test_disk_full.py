"""A full disk: a warning first, then no event taken in, then everything back by itself once space
is freed, with nothing acknowledged lost and no file left corrupt.

The stack's home is a filesystem of its own (conftest.py); the test fills it with a ballast file
in three steps while a tagged workload (as the fault suite's: 2 % invalid, dated in the past) goes
in through `produce` and the collector:

1. below the warning bound: `stack status` says `low`, with the free space and what the stack
   uses, and events are still taken in;
2. below the refusal bound: the collector answers 503 naming the disk, `produce` stops and says
   so, the status says `full`;
3. the rest of the room too, for FULL_SECONDS: every service that writes meets a full disk
   (Kafka halts, Cassandra exits, Flink's checkpoints fail).

Then the ballast goes, and with no manual step: every service is healthy again, what was refused
is sent again and taken in, and every acknowledged event is in Cassandra, every window equals the
pandas oracle, every dead letter is there once and the lake holds each clean event once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition

from clicklib import produce, stack
from clicklib.exceptions import DiskFullError
from clicklib.generate import GeneratedRecord, Workload
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.stack import disk
from clicklib.topics import CLEAN, INTERNAL_DLQ, LATE, RAW, SINK_DLQ, VALID
from tests import oracle
from tests.checks import kafka_config, table
from tests.faults.test_faults import (
    RATE,
    all_clean_events_in_cassandra,
    assert_exact,
    dead_letters,
    finish,
    wait_for,
    workloads,
)

from .conftest import RECOVERY

MIB = 2**20
FULL_SECONDS = 30.0
# The supervisor starts a process that died for want of space again every 30 s, and Cassandra
# replays its commit log: a bound with room for one such wait and a start.
HEALTHY_AFTER_FREED = 180.0
BATCH = 100  # events per request to the collector


def free(settings: Settings) -> int:
    return os.statvfs(settings.home).f_bavail * os.statvfs(settings.home).f_frsize


def fill_to(settings: Settings, ballast: Path, free_bytes: int) -> None:
    """Grow the ballast until the home's filesystem has ``free_bytes`` left (0: nothing at all)."""
    with open(ballast, "ab", buffering=0) as file:  # unbuffered: a refused write leaves nothing to flush
        grow = free(settings) - free_bytes
        if grow > 0:
            # No room for all of it: the services wrote meanwhile, and the bound is crossed anyway.
            with contextlib.suppress(OSError):
                os.posix_fallocate(file.fileno(), file.seek(0, os.SEEK_END), grow)
        if free_bytes == 0:
            page = b"\0" * 4096
            with contextlib.suppress(OSError):  # until no page is left
                while True:
                    file.write(page)


def disk_row(settings: Settings) -> stack.ServiceStatus:
    return next(row for row in stack.status(settings) if row.service == "disk")


def collect(settings: Settings, records: list[GeneratedRecord]) -> list[requests.Response]:
    """Send clean records to the collector as a site's pages would, BATCH to a request."""
    answers = []
    for start in range(0, len(records), BATCH):
        body = "[" + ",".join(r.value for r in records[start : start + BATCH]) + "]"
        answers.append(
            requests.post(
                f"{settings.collector_url}/collect",
                data=body.encode(),
                headers={"Content-Type": "application/json"},
                timeout=70,
            )
        )
    return answers


def where_missing(pipeline: Pipeline, tagged: Workload, cut_a: int, cut_b: int) -> dict:
    """For a failure: the clean events missing from events_by_user, by part, and how many of
    them each of the pipeline's topics holds (read uncommitted: what was ever written)."""
    clean = set(oracle.clean_events(tagged)["event_id"])
    missing = clean - set(table(pipeline, "events_by_user")["event_id"])
    part = {
        r.event.event_id: name
        for name, records in (
            ("A", tagged.records[:cut_a]),
            ("B", tagged.records[cut_a:cut_b]),
            ("C", tagged.records[cut_b:]),
        )
        for r in records
        if r.event is not None
    }
    found: dict = {"missing by part": dict(Counter(part.get(i, "?") for i in missing))}
    for topic in (RAW, VALID, CLEAN, LATE, SINK_DLQ, INTERNAL_DLQ):
        name = pipeline.topic(topic)
        consumer = Consumer(
            {
                **kafka_config(pipeline.settings),
                "group.id": f"d-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            partitions = consumer.list_topics(name, timeout=30).topics[name].partitions
            consumer.assign([TopicPartition(name, p, 0) for p in partitions])
            seen, ended, deadline = set(), set(), time.monotonic() + 60
            while len(ended) < len(partitions) and time.monotonic() < deadline:
                for message in consumer.consume(num_messages=1000, timeout=1.0):
                    if message.error() is not None:
                        ended.add(message.partition())
                    elif message.value():
                        seen |= {i for i in missing if i.encode() in message.value()}
            found[topic] = len(seen)
        finally:
            consumer.close()
    return found


def everything_healthy(settings: Settings) -> bool:
    try:
        return all(row.healthy for row in stack.status(settings))
    except Exception:  # services on their way back answer with errors of every kind
        return False


def test_a_full_disk_warns_then_refuses_and_everything_resumes_once_space_is_freed(collected_pipeline: Pipeline):
    pipeline = collected_pipeline
    settings = pipeline.settings
    assert settings.disk_refuse_mb * MIB < free(settings) - 64 * MIB, "the bounds leave the test no room"
    ballast = settings.home / "ballast"
    tagged, closing = workloads(seed=9000)
    dead_before = dead_letters(pipeline)
    # A: the first 40 % by produce. B: the next 20 %, the clean ones through the collector while
    # the disk is low, its invalid ones by produce. C: the rest, refused while the disk is full,
    # sent again once space is freed (its clean ones through the collector again).
    cut_a, cut_b = len(tagged.records) * 4 // 10, len(tagged.records) * 6 // 10
    part_a = dataclasses.replace(tagged, records=tagged.records[:cut_a])
    part_b, part_c = tagged.records[cut_a:cut_b], tagged.records[cut_b:]
    figures: dict = {}

    assert disk_row(settings).state == disk.OK, disk_row(settings).detail
    report = produce.produce(pipeline, part_a, rate=RATE, show_progress=False)
    assert report.delivered == cut_a and report.failed == 0, str(report)

    # 1. Low: a warning, and events still taken in.
    fill_to(settings, ballast, (settings.disk_warn_mb + settings.disk_refuse_mb) // 2 * MIB)
    row = disk_row(settings)
    assert row.state == disk.LOW and row.healthy, (row.state, row.detail)
    assert "free of" in row.detail and "kafka" in row.detail and "cassandra" in row.detail, row.detail
    answers = collect(settings, [r for r in part_b if r.reason is None])
    assert all(a.status_code == 202 for a in answers), [(a.status_code, a.text) for a in answers]
    report = produce.produce_records(pipeline, [r for r in part_b if r.reason is not None], show_progress=False)
    assert report.failed == 0, str(report)

    # 2. Below the refusal bound: nothing more is taken in, and each refusal says why.
    fill_to(settings, ballast, settings.disk_refuse_mb // 2 * MIB)
    row = disk_row(settings)
    assert row.state == disk.FULL and not row.healthy and "no event is taken in" in row.detail, row.detail
    time.sleep(disk.GUARD_EVERY_SECONDS)  # the collector's last look at the disk is a second old at most
    refused = collect(settings, [r for r in part_c if r.reason is None][:BATCH])
    assert refused[0].status_code == 503 and refused[0].headers.get("Retry-After") == "60", refused[0].text
    assert "disk" in refused[0].text and "CLICKLIB_DISK_REFUSE_MB" in refused[0].text, refused[0].text
    with pytest.raises(DiskFullError) as caught:
        produce.produce_records(pipeline, part_c, show_progress=False)
    assert "0 delivered" in str(caught.value) and f"the other {len(part_c):,} not sent" in str(caught.value)
    collector_row = next(r for r in stack.status(settings) if r.service == "collector")
    assert not collector_row.healthy and "refuses events" in collector_row.detail, collector_row.detail

    # 3. Full to the last byte, for every service that writes to meet.
    fill_to(settings, ballast, 0)
    figures["free when full MiB"] = round(free(settings) / MIB, 1)
    time.sleep(FULL_SECONDS)

    ballast.unlink()
    freed_at = time.monotonic()
    back = wait_for(lambda: everything_healthy(settings), HEALTHY_AFTER_FREED + 60)
    figures["every service healthy after freeing s"] = None if back is None else round(back, 1)
    not_healthy = {r.service: (r.state, r.detail) for r in stack.status(settings) if not r.healthy}
    RECOVERY["disk full, then freed"] = figures
    assert back is not None and back <= HEALTHY_AFTER_FREED, (figures, not_healthy)

    # What was refused is taken in now.
    answers = collect(settings, [r for r in part_c if r.reason is None])
    assert all(a.status_code == 202 for a in answers), [(a.status_code, a.text) for a in answers]
    report = produce.produce_records(pipeline, [r for r in part_c if r.reason is not None], show_progress=False)
    assert report.failed == 0, str(report)
    arrived = wait_for(all_clean_events_in_cassandra(pipeline, tagged), 300)
    figures["every event in Cassandra after freeing s"] = (
        None if arrived is None else round(time.monotonic() - freed_at, 1)
    )
    figures["settled after s"] = round(finish(pipeline, tagged, closing), 1)
    assert arrived is not None, (figures, where_missing(pipeline, tagged, cut_a, cut_b))
    assert_exact(pipeline, tagged, dead_before)
