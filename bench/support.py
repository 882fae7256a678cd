"""What the stages share: a namespace per stage and its clean-up, the clean rows of a
workload, starting one Flink job alone, and waiting until data has landed."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterator

from confluent_kafka import TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from clicklib import avro, produce, streaming_sql
from clicklib.events import FIELDS
from clicklib.exceptions import ClicklibError
from clicklib.generate import Workload
from clicklib.pipeline import Pipeline, unregister
from clicklib.schema_registry import register_schemas
from clicklib.settings import Settings
from clicklib.templates import EVENT_BUCKET_MS
from clicklib.topics import AVRO, CLEAN, SINK_DLQ

POLL_SECONDS = 0.2
CLEAN_JOBS = ("ingest", "enrich")  # the jobs between the raw topic and the clean one

# The columns of the clean topic, in the order ksql/09_clickstream_clean.sql declares them:
# the event's fields with `day` after `date`, then the user's profile.
CLEAN_COLUMNS = (*FIELDS[:2], "day", *FIELDS[2:], "signup_date", "home_city", "segment")
# events_by_user holds every clean column but `day`.
EVENTS_BY_USER_COLUMNS = tuple(c for c in CLEAN_COLUMNS if c != "day")


class BenchError(ClicklibError):
    """A stage could not be measured (its data never landed, a delivery failed, ...)."""


def timeout_for(events: int) -> float:
    """A generous limit for one stage's data to land: 2 minutes plus 10 ms per event."""
    return 120.0 + events / 100


# --- namespaces -------------------------------------------------------------------------


@contextlib.contextmanager
def namespaced(base: Settings, namespace: str, warnings: list[str]) -> Iterator[Pipeline]:
    """The pipeline of a fresh namespace (nothing set up), torn down (purged) afterwards
    whatever happened.

    A failed clean-up is reported in ``warnings`` (and on stderr) instead of hiding the
    stage's own error.
    """
    pipeline = Pipeline(dataclasses.replace(base, namespace=namespace))
    try:
        yield pipeline
    finally:
        for problem in teardown(pipeline):
            warnings.append(problem)
            print(f"bench: warning: {problem}", file=sys.stderr, flush=True)
        pipeline.close()


def teardown(pipeline: Pipeline) -> list[str]:
    """Stop the namespace's jobs and connectors, wait until the jobs are gone, then delete its
    topics, keyspace and consumer groups. Returns what could not be done.

    Topics are deleted only once nothing reads them: the broker auto-creates a topic that a
    still-running client asks for.
    """
    problems = []
    groups = sorted({consumer.group for consumer in pipeline.definition.consumers})
    steps = (
        # First, or the supervisor would start the stopped jobs again (it restarts a pipeline's
        # jobs while the pipeline is registered as up).
        ("stop the supervisor restarting its jobs", lambda: unregister(pipeline.settings)),
        ("cancel the Flink jobs", lambda: streaming_sql.stop(pipeline)),
        ("delete the connectors", lambda: pipeline.connect.unregister(pipeline.definition.connectors)),
        ("wait for the jobs to stop", lambda: streaming_sql.wait_stopped(pipeline)),
        ("delete topics and keyspace", lambda: pipeline.down(purge=True)),
        ("delete consumer groups", lambda: pipeline.kafka.delete_groups(groups)),
    )
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # report every step that fails, and go on with the next
            problems.append(f"namespace {pipeline.settings.namespace}: could not {what}: {exc}")
    return problems


# --- workloads --------------------------------------------------------------------------


def clean_count(workload: Workload) -> int:
    """Events that reach the clean topic and events_by_user: valid, of a known user."""
    return sum(1 for record in workload.records if record.event is not None and record.event.user_id is not None)


def clean_rows(workload: Workload) -> list[dict]:
    """The clean topic's rows as the ingest job writes them: each clean event with `day`
    (its UTC date) and its user's latest profile (None when the user has none)."""
    latest = {}
    for profile in sorted(workload.profiles, key=lambda p: p.updated_at):
        latest[profile.user_id] = profile
    rows = []
    for record in workload.records:
        event = record.event
        if event is None or event.user_id is None:
            continue
        profile = latest.get(event.user_id)
        row = {
            **event.to_dict(),
            "day": time.strftime("%Y-%m-%d", time.gmtime(event.date // 1000)),
            "signup_date": profile.signup_date if profile else None,
            "home_city": profile.home_city if profile else None,
            "segment": profile.segment if profile else None,
        }
        rows.append({column: row[column] for column in CLEAN_COLUMNS})
    return rows


def fill_avro_topic(pipeline: Pipeline, rows: list[dict]) -> int:
    """Write clean rows, as the avro job would, into the Avro topic the event sinks read:
    the schema registered first, each value in Avro keyed by its user; returns how many."""
    (schema,) = [s for s in pipeline.definition.avro_schemas if s.topic_base == AVRO]
    register_schemas(pipeline.registry, (schema,))
    values = [dict(row, bucket=(row["date"] % 86_400_000) // EVENT_BUCKET_MS) for row in rows]
    return avro.write(pipeline, AVRO, values, schema)


def check_delivered(report: produce.ProduceReport, expected: int) -> None:
    if report.delivered != expected or report.failed:
        raise BenchError(f"the producer did not deliver every event: {report} (expected {expected})")


# --- Flink ------------------------------------------------------------------------------


def submit_jobs(pipeline: Pipeline, jobs: list[str]) -> dict[str, streaming_sql.JobStart]:
    """Start some jobs of ksql/ alone, exactly as ``clicklib pipeline up`` starts them;
    returns Flink job name -> its job id and how it started."""
    return streaming_sql.submit(pipeline, jobs=jobs)


def wait_jobs_running(pipeline: Pipeline, timeout: float = 180.0) -> dict[str, dict]:
    """Wait until every job of the namespace has all its tasks RUNNING; returns name -> job."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = streaming_sql.running_jobs(pipeline)
        details = {name: pipeline.flink.job(job.job_id) for name, job in jobs.items() if job is not None}
        ready = len(details) == len(jobs) and all(
            d["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in d["vertices"]) for d in details.values()
        )
        if ready:
            return details
        if time.monotonic() > deadline:
            states = {name: d["state"] for name, d in details.items()}
            raise BenchError(f"jobs of {pipeline.settings.namespace} not running after {timeout:.0f} s: {states}")
        time.sleep(0.5)


# --- waiting for data -------------------------------------------------------------------


class Landing:
    """Watches the clean topic, the Avro topic and events_by_user of one namespace.

    ``settled`` waits for the clean topic to reach its final size. ``rows`` waits until
    events_by_user holds every expected row, cheaply: the Connect sink writes each partition
    of the Avro topic in order and finishes a batch before it takes the next, so once the
    newest message of every partition is a row in Cassandra the earlier ones are too; one
    COUNT(*) then confirms it (and the wait goes on if it does not).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.topic = pipeline.topic(CLEAN)
        self.sink_topic = pipeline.topic(AVRO)  # what the event sinks read
        # never commits, never joins
        self.consumer = pipeline.kafka.consumer(
            f"{pipeline.settings.namespace}bench-landing", **{"enable.auto.commit": False}
        )
        self.timeout = pipeline.settings.request_timeout
        self.partitions = {}
        for topic in (self.topic, self.sink_topic):
            metadata = self.consumer.list_topics(topic, timeout=self.timeout)
            self.partitions[topic] = sorted(metadata.topics[topic].partitions)
        self._decode = AvroDeserializer(pipeline.registry.client)
        self._lookup = None
        self._newest: tuple[dict[int, int], list[dict]] | None = None

    def __enter__(self) -> Landing:
        return self

    def __exit__(self, *_: object) -> None:
        self.consumer.close()

    def ends(self, topic: str | None = None) -> dict[int, int]:
        """The end offset of each partition of ``topic`` (the clean topic by default)."""
        topic = topic or self.topic
        return {
            p: self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=self.timeout)[1]
            for p in self.partitions[topic]
        }

    def settled(self, at_least: int, quiet: float, timeout: float) -> tuple[float, int]:
        """When the clean topic reached its final size, and that size.

        Waits until the topic holds at least ``at_least`` messages and has not grown for
        ``quiet`` seconds; returns the wall-clock time (epoch s) of the poll that first saw
        the final size. The size can exceed the clean events: an event joined before its
        user's profile was read is written again, after a tombstone, once the profile arrives.
        """
        deadline = time.monotonic() + timeout
        size, changed = -1, time.time()
        while True:
            now, held = time.time(), sum(self.ends().values())
            if held != size:
                size, changed = held, now
            elif held >= at_least and now - changed >= quiet:
                return changed, size
            if time.monotonic() > deadline:
                raise BenchError(f"{self.topic} holds {held} messages after {timeout:.0f} s, expected {at_least}")
            time.sleep(POLL_SECONDS)

    def rows(self, expected: int, timeout: float) -> float:
        """Wall-clock time (epoch s) of the first poll at which events_by_user holds every expected row."""
        deadline = time.monotonic() + timeout
        while True:
            ends = self.ends(self.sink_topic)
            if sum(ends.values()) >= expected and self._newest_rows_written(ends):
                landed = time.time()
                if self.pipeline.cassandra.count_rows("events_by_user") >= expected:
                    return landed
                self._check_sink_dlq()
                time.sleep(1.0)  # the newest rows are in but not all: the COUNT(*) is not free
            if time.monotonic() > deadline:
                rows = self.pipeline.cassandra.count_rows("events_by_user")
                raise BenchError(
                    f"events_by_user of {self.pipeline.settings.namespace} holds {rows} of {expected} rows after "
                    f"{timeout:.0f} s ({sum(ends.values())} messages in {self.sink_topic})"
                )
            time.sleep(POLL_SECONDS)

    def _check_sink_dlq(self) -> None:
        dlq = self.pipeline.topic(SINK_DLQ)
        if dlq not in self.pipeline.kafka.topic_names():  # nothing was dead-lettered
            return
        dead = sum(self.pipeline.kafka.end_offsets(dlq).values())
        if dead:
            raise BenchError(f"the sink dead-lettered {dead} records into {dlq}; their rows will never land")

    def _newest_rows_written(self, ends: dict[int, int]) -> bool:
        if self._newest is None or self._newest[0] != ends:
            self._newest = (ends, self._newest_messages(ends))
        cql = self.pipeline.cassandra.session
        if self._lookup is None:
            self._lookup = cql.prepare(
                f"SELECT event_id FROM {self.pipeline.settings.keyspace}.events_by_user "
                "WHERE user_id = ? AND date = ? AND event_id = ?"
            )
        return all(
            cql.execute(self._lookup, (row["user_id"], row["date"], row["event_id"])).one() is not None
            for row in self._newest[1]
        )

    def _newest_messages(self, ends: dict[int, int], back: int = 5) -> list[dict]:
        """The newest message of each non-empty partition of the Avro topic, decoded."""
        starts = {p: max(end - back, 0) for p, end in ends.items() if end > 0}
        self.consumer.assign([TopicPartition(self.sink_topic, p, offset) for p, offset in starts.items()])
        context = SerializationContext(self.sink_topic, MessageField.VALUE)
        newest: dict[int, dict] = {}
        pending = set(starts)
        deadline = time.monotonic() + 30
        try:
            while pending and time.monotonic() < deadline:
                for message in self.consumer.consume(num_messages=100, timeout=0.5):
                    if message.error() is not None:
                        continue
                    if message.value() is not None:
                        newest[message.partition()] = self._decode(message.value(), context)
                    if message.offset() >= ends[message.partition()] - 1:
                        pending.discard(message.partition())
        finally:
            self.consumer.unassign()
        return list(newest.values())
