"""Producing clickstream events into Kafka: an idempotent, rate-limited confluent-kafka producer.

Generated workloads are sent from memory; a JSON-lines file is streamed line by line
(``produce_file``), so its size does not matter, and a line Kafka will not take is reported
by its number instead of stopping the run.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from confluent_kafka import KafkaError as DeliveryError
from confluent_kafka import KafkaException, Message, Producer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from clicklib.exceptions import ClicklibError, DiskFullError, KafkaError, WorkloadError
from clicklib.generate import GeneratedRecord, UserProfile, Workload, generate
from clicklib.kafka import KafkaClient
from clicklib.pipeline import Pipeline
from clicklib.stack import disk
from clicklib.streaming_sql import MARK_HEADER
from clicklib.topics import RAW, USERS, VALID

FLUSH_TIMEOUT = 60.0
# The largest message the file producer sends: the broker's default limit (message.max.bytes,
# 1,048,588 with the batch header). librdkafka's own default is lower (1,000,000), so the
# producer is given this value, and a line is refused here, by its number, before it is queued.
MESSAGE_MAX_BYTES = 1_048_576
# A line longer than the limit is read past in chunks of this size, never held whole.
READ_CHUNK = 1 << 20
# A failure reason lists this many line numbers, then says how many more there were.
SHOWN_LINES = 10
# How often the progress bar of a file is redrawn.
PROGRESS_SECONDS = 0.2
# Kafka's free disk is asked about before every this many messages (stack/disk.py: at most once a
# second): what is sent between two looks is far less than the room the refusal bound keeps.
DISK_CHECK_EVERY = 100


@dataclass
class ProduceReport:
    """What the broker acknowledged."""

    topic: str
    delivered: int = 0
    failed: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        text = f"{self.delivered} delivered, {self.failed} failed to {self.topic} in {self.seconds:.1f} s"
        if self.interrupted:
            text += " (interrupted)"
        return text + (f"; first error: {self.errors[0]}" if self.errors else "")


def make_producer(kafka: KafkaClient, principal: str = "producer", **overrides: Any) -> Producer:
    # Idempotence with acks=all: a retried send is never written twice; lz4 and a short
    # linger batch the small JSON messages without adding visible latency. It logs in as the
    # producer, which the secure profile lets write only the topics events enter by.
    return kafka.producer(
        principal,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "client.id": "clicklib-producer",
            **overrides,
        },
    )


def _send(
    producer: Producer,
    topic: str,
    messages: Iterable[tuple[str | None, str]],
    total: int,
    rate: float | None,
    show_progress: bool,
    space: disk.KafkaDiskGuard | None = None,
) -> ProduceReport:
    report = ProduceReport(topic)
    refused: list[DeliveryError] = []
    disk_refusal = None

    def on_delivery(error: DeliveryError | None, _: Message) -> None:
        if error is None:
            report.delivered += 1
        else:
            report.failed += 1
            if len(report.errors) < 5:
                report.errors.append(str(error))
            if _refuses_everything(error):
                refused.append(error)

    # The bar counts what the broker acknowledged, not what was queued locally.
    progress = Progress(
        TextColumn(f"producing to {topic}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8,.0f} acked/s"),
        TimeRemainingColumn(),
        disable=not show_progress,
    )
    started = time.monotonic()
    try:
        with progress:
            task = progress.add_task("produce", total=total, rate=0.0)
            for sent, (key, value) in enumerate(messages, start=1):
                if space is not None and sent % DISK_CHECK_EVERY == 1 and (disk_refusal := space.refusal()):
                    break  # Kafka may not be able to keep more: what was queued goes, the rest is not sent
                if rate:
                    # Never ahead of the schedule sent/rate; sleeping off any lead keeps the rate steady.
                    lead = sent / rate - (time.monotonic() - started)
                    if lead > 0:
                        time.sleep(lead)
                while True:
                    try:
                        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.1)  # the local queue is full: let deliveries drain it
                    except KafkaException as exc:
                        error = exc.args[0]
                        if not _refuses_everything(error):
                            raise
                        # A fatal refusal (an access rule, the producer's id): every later message
                        # would be refused alike.
                        raise KafkaError(_refusal(topic, error)) from None
                producer.poll(0)
                if refused:
                    break  # the rest would be refused alike: stop queueing them
                if sent % 500 == 0:
                    elapsed = time.monotonic() - started
                    progress.update(task, completed=report.delivered, rate=report.delivered / elapsed)
            remaining = producer.flush(FLUSH_TIMEOUT)
            elapsed = time.monotonic() - started
            progress.update(task, completed=report.delivered, rate=report.delivered / elapsed)
    except KeyboardInterrupt:
        report.interrupted = True
        remaining = producer.flush(FLUSH_TIMEOUT)
    report.failed += remaining
    report.seconds = time.monotonic() - started
    if refused:
        # Not a message that could not be sent, but a producer that may send nothing there.
        raise KafkaError(_refusal(topic, refused[0]) + f" ({report})")
    if disk_refusal:
        unsent = total - report.delivered - report.failed
        raise DiskFullError(f"produce stopped: {disk_refusal} ({report}; the other {unsent:,} not sent)")
    return report


def _refuses_everything(error: DeliveryError) -> bool:
    """Whether Kafka will take no message from this producer for the topic (not one bad message)."""
    return error.fatal() or "AUTHORIZATION" in error.name()


def _refusal(topic: str, error: DeliveryError) -> str:
    text = f"kafka refused messages for {topic}: {error.str()}"
    if "AUTHORIZATION" in error.name():
        text += (
            "; the producer's login may not write that topic: `clicklib pipeline up` lets the secure "
            "profile's producer write the pipeline's input topics; on another cluster, ask for WRITE on "
            f"{topic} for the user in CLICKLIB_KAFKA_USERNAME"
        )
    return text


def publish_profiles(pipeline: Pipeline, profiles: list[UserProfile]) -> ProduceReport:
    """Publish user profiles to the compacted profile topic, keyed by user_id."""
    messages = ((p.user_id, p.to_json()) for p in profiles)
    topic, space = pipeline.topic(USERS), disk.guard(pipeline.settings)
    report = _send(make_producer(pipeline.kafka), topic, messages, len(profiles), None, False, space)
    if report.failed:
        raise KafkaError(f"kafka did not accept every profile: {report}", pipeline.kafka.bootstrap_servers)
    return report


def produce_records(
    pipeline: Pipeline,
    records: list[GeneratedRecord],
    rate: float | None = None,
    show_progress: bool = True,
) -> ProduceReport:
    """Send raw records (valid or not) to the raw topic, keyed by user_id, at most ``rate`` per second."""
    messages = ((r.key, r.value) for r in records)
    producer, space = make_producer(pipeline.kafka), disk.guard(pipeline.settings)
    return _send(producer, pipeline.topic(RAW), messages, len(records), rate, show_progress, space)


def produce(
    pipeline: Pipeline,
    workload: Workload,
    rate: float | None = None,
    show_progress: bool = True,
) -> ProduceReport:
    """Publish a workload: its profiles first (so events find them), then its records.

    Before the records, a time mark dated just before the first event goes to every partition of
    the valid events topic (ksql/07_valid_events.sql): partitions that fell idle while nothing
    came are awake when the burst arrives, so none of its events is late for want of them
    (see :func:`mark_run_start`).
    """
    if workload.profiles:
        publish_profiles(pipeline, workload.profiles)
    mark_run_start(pipeline, workload)
    return produce_records(pipeline, workload.records, rate, show_progress)


# How long a run waits for the ingest job to read what was sent before it (mark_run_start).
MARK_WAIT_SECONDS = 120.0


def mark_run_start(pipeline: Pipeline, workload: Workload, wait_seconds: float = MARK_WAIT_SECONDS) -> bool:
    """Write a time mark dated just before the workload's first event to every partition of the
    valid events topic, once the ingest job has read all that was sent before; returns whether
    it was written.

    The mark goes straight to the valid events topic, while events take the longer way through
    the raw topic and the ingest job. Written while that job still has raw records to read (after
    a crash or a broker outage, or while a backlog drains) it would overtake them: they would reach
    the valid topic behind the watermark it set, and be counted late instead of in their windows.
    So no mark is written while the job is not running (its backlog will arrive in order), nor
    when it has not caught up within ``wait_seconds``.
    """
    first = min((e.date for e in workload.events), default=None)
    valid = pipeline.topic(VALID)
    if first is None or valid not in pipeline.kafka.topic_names():
        return False
    if not _raw_topic_read(pipeline, wait_seconds):
        return False
    pipeline.kafka.mark_every_partition(valid, {MARK_HEADER: str(first - 1).encode()})
    return True


def _raw_topic_read(pipeline: Pipeline, wait_seconds: float) -> bool:
    """Whether every running job that reads the raw topic has read what it held when asked,
    waiting up to ``wait_seconds``. A job's offsets are committed when a checkpoint completes,
    after what it wrote up to them was flushed to Kafka: so its output of them is in Kafka too."""
    raw = pipeline.topic(RAW)
    groups = sorted({c.group for c in pipeline.definition.consumers if c.topic == raw})
    try:
        active = pipeline.flink.active_jobs()
    except ClicklibError:  # Flink cannot say: no job reads the raw topic now
        return False
    if not groups or not all(group in active for group in groups):
        return False
    deadline = time.monotonic() + wait_seconds
    ends = None
    while True:
        try:
            ends = ends or pipeline.kafka.end_offsets(raw)
            read = True
            for group in groups:
                committed = pipeline.kafka.committed(group, raw, list(ends))
                read = read and all(committed.get(partition, 0) >= end for partition, end in ends.items())
        except ClicklibError:  # a broker on its way back: ask again until the deadline
            read = False
        if read:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


@dataclass
class UdpReport:
    """What the UDP producer sent, and what the collector says it forwarded meanwhile."""

    target: str
    sent: int = 0
    seconds: float = 0.0
    forwarded: int | None = None  # None: the collector's counters could not be read
    interrupted: bool = False

    @property
    def lost(self) -> int | None:
        return None if self.forwarded is None else max(self.sent - self.forwarded, 0)

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        head = f"{self.sent:,} datagrams sent to {self.target} ({rate:,.0f}/s)"
        if self.forwarded is None:
            return f"{head}; the collector's counters could not be read, so what reached Kafka is unknown"
        if self.lost:
            return (
                f"{head}; the collector forwarded {self.forwarded:,} into Kafka: {self.lost:,} lost on the way "
                "(UDP drops datagrams a busy receiver has no room for; send slower with --rate)"
            )
        return f"{head}; the collector forwarded all {self.forwarded:,} into Kafka"


def collector_forwarded(collector_url: str, timeout: float = 5.0) -> int | None:
    """How many UDP events the collector has forwarded into Kafka since it started; None if unknown."""
    import requests

    try:
        answer = requests.get(f"{collector_url}/metrics", timeout=timeout)
    except requests.RequestException:
        return None
    if answer.status_code != 200:
        # /metrics is served to this machine only: a collector elsewhere does not say.
        return None
    text = answer.text
    prefix = 'clicklib_collector_delivered_total{endpoint="udp",outcome="forwarded"} '
    return next((int(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0)


def produce_udp(
    pipeline: Pipeline,
    workload: Workload,
    address: tuple[str, int] | None = None,
    rate: float | None = None,
    settle_seconds: float = 15.0,
) -> UdpReport:
    """Send a workload's records as datagrams to the collector's UDP bridge, one event each, the
    way the original system's producer did; then read how many the collector forwarded.

    The profiles and the time mark go straight to Kafka, as with :func:`produce`: they are not
    events. The forwarded count is the collector's counter difference, so other senders at the
    same time count too.
    """
    import socket

    settings = pipeline.settings
    host, port = address or (urlsplit(settings.collector_url).hostname or "127.0.0.1", settings.collector_udp_port)
    # The counters of the collector sent to: on that host, at the HTTP port the settings name.
    counters = f"http://{host}:{settings.collector_port}"
    report = UdpReport(f"{host}:{port}")
    if workload.profiles:
        publish_profiles(pipeline, workload.profiles)
    mark_run_start(pipeline, workload)
    before = collector_forwarded(counters)
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            for index, record in enumerate(workload.records):
                if rate:
                    ahead = started + index / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                sock.sendto(record.value.encode(), (host, port))
                report.sent += 1
        except KeyboardInterrupt:
            report.interrupted = True
        except OSError as exc:
            raise ClicklibError(f"collector: cannot send datagrams to {host}:{port}: {exc.strerror}") from None
    report.seconds = time.monotonic() - started
    if before is None:
        return report
    # The bridge forwards as datagrams arrive and Kafka answers within moments: wait until the
    # count reaches what was sent, or stops moving.
    deadline, last, still_since = time.monotonic() + settle_seconds, None, time.monotonic()
    while time.monotonic() < deadline:
        now = collector_forwarded(counters)
        if now is None:
            return report
        report.forwarded = now - before
        if report.forwarded >= report.sent:
            break
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since > 2.0:
            break
        time.sleep(0.2)
    return report


FIRST_RUN_ROOM_MS = 3_600_000  # an hour: six runs of 2,000 simulated events fit after the first


def workload_after(pipeline: Pipeline, n_events: int, seed: int, invalid_ratio: float = 0.0) -> Workload:
    """A simulated workload dated after every event the pipeline has already seen, and never
    after now.

    It starts at the first whole minute after the newest event of the valid events topic, so
    that one run's events follow the previous run's instead of landing among them (behind the
    watermark, where the windows would drop them, or in a minute a close has already written).
    With no events yet it ends ``FIRST_RUN_ROOM_MS`` before now, leaving that much time for the
    runs after it. A workload that would not end by now raises
    ``WorkloadError``: an event dated in the future would move the watermark ahead of the
    clock, and every real event after it would come late.
    """
    now_ms = int(time.time() * 1000)
    newest = pipeline.kafka.newest_date(pipeline.topic(VALID))
    if newest is None:
        return generate(n_events, seed=seed, invalid_ratio=invalid_ratio, end_ms=now_ms - FIRST_RUN_ROOM_MS)
    # The next whole minute: a closed run's last minute window must not open again for this one.
    start = (newest // 60_000 + 1) * 60_000
    workload = generate(n_events, seed=seed, invalid_ratio=invalid_ratio, start_ms=start)
    last = max((e.date for e in workload.events), default=newest)
    if last > now_ms:
        span_min = (last - newest) / 60_000
        raise WorkloadError(
            f"{n_events:,} simulated events span {span_min:.0f} minutes after the newest event in "
            f"{pipeline.topic(VALID)} ({_utc(newest)}) and would run {(last - now_ms) / 60_000:.0f} minutes "
            "past now: produce fewer events, or wait until the clock has passed their end"
        )
    return workload


def _utc(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch_ms / 1000))


TOO_LARGE = f"over the {MESSAGE_MAX_BYTES:,}-byte message limit; shorten the line or leave it out"
NOT_UTF8 = "not UTF-8, sent as its bytes; the pipeline dead-letters it"


@dataclass(frozen=True)
class FileLine:
    """One non-blank line of a JSON-lines file, without its line ending."""

    number: int  # 1-based, blank lines counted
    value: bytes | None  # None: longer than the reader's limit, read past and not kept
    size: int  # bytes, without the line ending
    key: str | None  # the user_id, when the line is a JSON object with a string user_id
    utf8: bool | None  # None: not checked (a line read past)


class LineReader:
    """The lines of a binary JSON-lines file, one at a time.

    Memory stays about ``max_bytes`` whatever the file's size: a line is read with
    ``readline(limit)``, and a longer one is read past in chunks, keeping only its size.
    Blank lines are counted in ``skipped`` and not yielded; ``position`` is the bytes read so far.
    """

    def __init__(self, source: BinaryIO, max_bytes: int = MESSAGE_MAX_BYTES) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.lines = 0
        self.skipped = 0
        self.position = 0

    def __iter__(self) -> Iterator[FileLine]:
        # Two bytes over the limit: a line of exactly max_bytes still fits with its "\r\n".
        limit = self.max_bytes + 2
        while chunk := self.source.readline(limit):
            self.lines += 1
            self.position += len(chunk)
            if len(chunk) == limit and not chunk.endswith(b"\n"):
                yield FileLine(self.lines, None, self._read_past(chunk), None, None)
                continue
            value = chunk.removesuffix(b"\n").removesuffix(b"\r")
            if not value.strip():
                self.skipped += 1
            elif len(value) > self.max_bytes:
                yield FileLine(self.lines, None, len(value), None, None)
            else:
                yield _file_line(self.lines, value)

    def _read_past(self, head: bytes) -> int:
        """Read to the end of a line too long to keep; returns its size without the line ending."""
        size = len(head)
        tail = head[-2:]
        while not tail.endswith(b"\n"):
            chunk = self.source.readline(READ_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            self.position += len(chunk)
            tail = (tail + chunk)[-2:]
        return size - (2 if tail == b"\r\n" else 1 if tail.endswith(b"\n") else 0)


def _file_line(number: int, value: bytes) -> FileLine:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return FileLine(number, value, len(value), None, False)
    try:
        data = json.loads(text)
    # Deep nesting exhausts the parser like any unparseable text: such a line is simply sent unkeyed.
    except (ValueError, RecursionError):
        return FileLine(number, value, len(value), None, True)
    user_id = data.get("user_id") if isinstance(data, dict) else None
    return FileLine(number, value, len(value), user_id if isinstance(user_id, str) else None, True)


@dataclass
class LineGroup:
    """The lines that share one reason: how many, and the first few numbers."""

    reason: str
    count: int = 0
    shown: list[str] = field(default_factory=list)

    def add(self, number: int, detail: str = "") -> None:
        self.count += 1
        # Only the first few are kept: a file of millions of failing lines must not grow this.
        if len(self.shown) < SHOWN_LINES:
            self.shown.append(f"{number} ({detail})" if detail else str(number))

    def __str__(self) -> str:
        more = f" and {self.count - len(self.shown):,} more" if self.count > len(self.shown) else ""
        return f"{'line' if self.count == 1 else 'lines'} {', '.join(self.shown)}{more}: {self.reason}"


@dataclass
class FileReport:
    """What became of each line of a file: sent, delivered, failed by reason, skipped."""

    path: str
    topic: str
    lines: int = 0
    sent: int = 0
    delivered: int = 0
    skipped: int = 0
    interrupted: bool = False
    stopped: str | None = None  # why reading ended before the end of the file
    seconds: float = 0.0
    failures: dict[str, LineGroup] = field(default_factory=dict)
    notes: dict[str, LineGroup] = field(default_factory=dict)  # sent, but worth knowing

    @property
    def failed(self) -> int:
        return sum(group.count for group in self.failures.values())

    @property
    def ok(self) -> bool:
        return not (self.failed or self.stopped or self.interrupted)

    def fail(self, number: int, reason: str, detail: str = "") -> None:
        self.failures.setdefault(reason, LineGroup(reason)).add(number, detail)

    def note(self, number: int, reason: str) -> None:
        self.notes.setdefault(reason, LineGroup(reason)).add(number)

    def summary(self) -> list[str]:
        """A headline, then one line per reason with its line numbers."""
        head = (
            f"{self.lines:,} lines: {self.sent:,} sent, {self.delivered:,} delivered, {self.failed:,} failed, "
            f"{self.skipped:,} skipped (blank) to {self.topic} in {self.seconds:.1f} s"
        )
        if self.interrupted:
            head += f" (interrupted after line {self.lines:,})"
        text = [head]
        text += [f"failed: {group}" for group in self.failures.values()]
        text += [f"note: {group}" for group in self.notes.values()]
        if self.stopped:
            text.append(f"stopped: {self.stopped}")
        return text


def produce_file(
    pipeline: Pipeline,
    path: str | Path,
    rate: float | None = None,
    show_progress: bool = True,
) -> FileReport:
    """Stream a JSON-lines file into the raw topic: one message per non-blank line, as its exact
    bytes, keyed by user_id, at most ``rate`` per second.

    Nothing in the file stops the run: a line Kafka will not take is counted as failed with its
    number and reason, and the producer is always flushed. Raises only when the file cannot be
    opened or Kafka cannot be reached.
    """
    kafka = pipeline.kafka
    # Checked first: with Kafka down every message would wait out its whole delivery timeout.
    kafka.topic_names()
    try:
        source = open(path, "rb")  # noqa: SIM115 - closed by the with below, after fstat
        size = os.fstat(source.fileno()).st_size
    except OSError as exc:
        raise ClicklibError(f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions") from exc
    report = FileReport(str(path), pipeline.topic(RAW))
    reader = LineReader(source)
    with source:
        producer = make_producer(kafka, **{"message.max.bytes": MESSAGE_MAX_BYTES})
        unacknowledged = (
            f"not acknowledged within {FLUSH_TIMEOUT:.0f} s of the last send; is kafka at "
            f"{kafka.bootstrap_servers} up (`clicklib stack status`)?"
        )
        _stream_lines(
            producer, reader, size, report, rate, show_progress, unacknowledged, disk.guard(pipeline.settings)
        )
    report.lines = reader.lines
    report.skipped = reader.skipped
    return report


def _stream_lines(
    producer: Producer,
    reader: LineReader,
    size: int,
    report: FileReport,
    rate: float | None,
    show_progress: bool,
    unacknowledged: str,
    space: disk.KafkaDiskGuard | None = None,
) -> None:
    # Lines queued and not yet acknowledged: bounded by the producer's queue, not by the file.
    pending: set[int] = set()

    def on_delivery(number: int, error: DeliveryError | None, _: Message) -> None:
        pending.discard(number)
        if error is None:
            report.delivered += 1
        elif error.code() in (DeliveryError._PURGE_QUEUE, DeliveryError._PURGE_INFLIGHT):
            report.fail(number, unacknowledged)
        else:
            report.fail(number, f"not delivered: {error.str()}")

    progress = Progress(
        TextColumn(f"producing {Path(report.path).name} to {report.topic}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[delivered]:>10,} delivered"),
        TimeRemainingColumn(),
        disable=not show_progress,
    )
    started = time.monotonic()
    with progress:
        # An empty size (a pipe, a special file) gives an indeterminate bar.
        task = progress.add_task("produce", total=size or None, delivered=0)
        drawn = started
        try:
            for line in reader:
                if space is not None and report.sent % DISK_CHECK_EVERY == 0 and (refused := space.refusal()):
                    report.stopped = f"{refused}; the lines from {line.number:,} on were not sent"
                    break
                if rate:
                    # Never ahead of the schedule sent/rate; sleeping off any lead keeps the rate steady.
                    lead = report.sent / rate - (time.monotonic() - started)
                    if lead > 0:
                        time.sleep(lead)
                if _send_line(producer, report, line, functools.partial(on_delivery, line.number)):
                    pending.add(line.number)
                producer.poll(0)
                if time.monotonic() - drawn >= PROGRESS_SECONDS:
                    drawn = time.monotonic()
                    progress.update(task, completed=reader.position, delivered=report.delivered)
        except KeyboardInterrupt:
            report.interrupted = True
        except OSError as exc:
            report.stopped = f"reading {report.path} failed after line {reader.lines:,}: {exc.strerror or exc}"
        _flush(producer, pending, report, unacknowledged)
        progress.update(task, completed=reader.position, delivered=report.delivered)
    report.seconds = time.monotonic() - started


def _send_line(
    producer: Producer,
    report: FileReport,
    line: FileLine,
    on_delivery: Callable[[DeliveryError | None, Message], None],
) -> bool:
    """Queue one line; False when it was refused (and recorded as failed)."""
    if line.value is None:
        report.fail(line.number, TOO_LARGE, f"{line.size:,} bytes")
        return False
    while True:
        try:
            producer.produce(report.topic, key=line.key, value=line.value, on_delivery=on_delivery)
            break
        except BufferError:
            producer.poll(0.1)  # the local queue is full: let deliveries drain it
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], DeliveryError) else None
            if error is not None and error.code() == DeliveryError.MSG_SIZE_TOO_LARGE:
                # Under the limit by itself, over it with the key and the message framing.
                report.fail(line.number, TOO_LARGE, f"{line.size:,} bytes with its key")
            else:
                report.fail(line.number, f"refused by the producer: {error.str() if error else exc}")
            return False
    report.sent += 1
    if line.utf8 is False:
        report.note(line.number, NOT_UTF8)
    return True


def _flush(producer: Producer, pending: set[int], report: FileReport, unacknowledged: str) -> None:
    try:
        producer.flush(FLUSH_TIMEOUT)
    except KeyboardInterrupt:
        report.interrupted = True  # a second Ctrl-C: stop waiting for acknowledgements
    if pending:
        # What is still queued will not be delivered now; purging it reports each line through its callback.
        producer.purge()
        producer.poll(0)
    for number in sorted(pending):
        report.fail(number, unacknowledged)
    pending.clear()
