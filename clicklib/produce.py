"""Producing clickstream events into Kafka: an idempotent, rate-limited confluent-kafka producer."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError as DeliveryError
from confluent_kafka import Message, Producer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from clicklib.exceptions import KafkaError
from clicklib.generate import GeneratedRecord, UserProfile, Workload
from clicklib.kafka import KafkaClient
from clicklib.pipeline import Pipeline
from clicklib.topics import RAW, USERS

FLUSH_TIMEOUT = 60.0


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


def make_producer(kafka: KafkaClient) -> Producer:
    # Idempotence with acks=all: a retried send is never written twice; lz4 and a short
    # linger batch the small JSON messages without adding visible latency.
    return kafka.producer(
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "client.id": "clicklib-producer",
        }
    )


def _send(
    producer: Producer,
    topic: str,
    messages: Iterable[tuple[str | None, str]],
    total: int,
    rate: float | None,
    show_progress: bool,
) -> ProduceReport:
    report = ProduceReport(topic)

    def on_delivery(error: DeliveryError | None, _: Message) -> None:
        if error is None:
            report.delivered += 1
        else:
            report.failed += 1
            if len(report.errors) < 5:
                report.errors.append(str(error))

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
                producer.poll(0)
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
    return report


def publish_profiles(pipeline: Pipeline, profiles: list[UserProfile]) -> ProduceReport:
    """Publish user profiles to the compacted profile topic, keyed by user_id."""
    messages = ((p.user_id, p.to_json()) for p in profiles)
    report = _send(make_producer(pipeline.kafka), pipeline.topic(USERS), messages, len(profiles), None, False)
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
    return _send(make_producer(pipeline.kafka), pipeline.topic(RAW), messages, len(records), rate, show_progress)


def produce(
    pipeline: Pipeline,
    workload: Workload,
    rate: float | None = None,
    show_progress: bool = True,
) -> ProduceReport:
    """Publish a workload: its profiles first (so events find them), then its records."""
    if workload.profiles:
        publish_profiles(pipeline, workload.profiles)
    return produce_records(pipeline, workload.records, rate, show_progress)
