"""The pipeline as a whole: its definition and one client per service, built once.

``Pipeline(settings)`` reads the definition (topics, tables, SQL jobs, connectors) and
builds the clients of Kafka, Cassandra, Kafka Connect, Flink and the SQL Gateway; every
step of clicklib takes that object. ``up`` checks the whole definition against the services
before creating anything, then applies the Cassandra schema, creates the topics, registers
the sink connectors and submits the streaming SQL. Every step is idempotent, and a failure
part-way removes the connectors and jobs that call created, so nothing is left
half-submitted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from clicklib import definition as pipeline_definition
from clicklib import streaming_sql
from clicklib.cassandra import CassandraClient
from clicklib.connect import ConnectClient
from clicklib.definition import PipelineDefinition, Sources
from clicklib.exceptions import PipelineError
from clicklib.flink import FlinkClient
from clicklib.kafka import KafkaClient
from clicklib.offsets import GroupLag, consumer_lags, topic_messages
from clicklib.settings import Settings, get_settings
from clicklib.sql_gateway import SqlGatewayClient


@dataclass
class PipelineStatus:
    topics: dict[str, int] = field(default_factory=dict)  # topic -> messages (sum of end offsets), -1: missing
    jobs: dict[str, str] = field(default_factory=dict)  # Flink job name -> state
    connectors: dict[str, str] = field(default_factory=dict)  # connector -> "STATE task states"


class Pipeline:
    """The clickstream pipeline on one cluster, in one namespace."""

    def __init__(self, settings: Settings | None = None, sources: Sources | None = None) -> None:
        self.settings = settings or get_settings()
        self.definition: PipelineDefinition = pipeline_definition.load(self.settings, sources)
        timeout = self.settings.request_timeout
        self.kafka = KafkaClient(self.settings)
        self.cassandra = CassandraClient(self.settings)
        self.connect = ConnectClient(self.settings.connect_url, timeout)
        self.flink = FlinkClient(self.settings.flink_rest_url, timeout)
        self.sql_gateway = SqlGatewayClient(self.settings.sql_gateway_url, timeout)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.cassandra.close()
        for client in (self.connect, self.flink, self.sql_gateway):
            client.close()

    def topic(self, base: str) -> str:
        """A topic's name in this pipeline's namespace ("clickstream_dlq" -> "t1_clickstream_dlq")."""
        return self.definition.topic(base)

    def up(self) -> PipelineStatus:
        """Check everything, then create what is missing and start what is not running."""
        definition = self.definition
        self.cassandra.apply_schema(definition.schema)
        for connector in definition.connectors:
            self.connect.validate(connector)
        running = streaming_sql.running_jobs(self)
        pending = [plan for plan in definition.jobs if running[plan.flink_name] is None]
        streaming_sql.check(self, pending)

        self.kafka.create_topics(definition.topics)
        existing = set(self.connect.names())
        try:
            self.connect.register(definition.connectors, validated=True)
            streaming_sql.submit(self, checked=True)
        except BaseException:
            for connector in definition.connectors:
                if connector.name not in existing:
                    self.connect.delete(connector.name)
            raise
        return self.status()

    def status(self) -> PipelineStatus:
        report = PipelineStatus()
        messages = topic_messages(self.definition, self.kafka)
        report.topics = {t.name: messages.get(t.name, -1) for t in self.definition.topics}
        for name, job in streaming_sql.running_jobs(self).items():
            report.jobs[name] = job.state if job else "NOT RUNNING"
        for connector in self.definition.connectors:
            report.connectors[connector.name] = str(self.connect.status(connector.name))
        return report

    def down(self, purge: bool = False) -> None:
        """Stop the jobs and remove the connectors; ``purge`` also deletes topics and keyspace."""
        streaming_sql.stop(self)
        self.connect.unregister(self.definition.connectors)
        if purge:
            # A topic is deleted only once nothing reads it: the broker re-creates a topic that a
            # still-running consumer asks for.
            streaming_sql.wait_stopped(self)
            self.kafka.delete_topics([t.name for t in self.definition.topics])
            self.cassandra.drop_keyspace()

    def lags(self) -> list[GroupLag]:
        """How far each consumer of the pipeline trails each topic it reads."""
        return consumer_lags(self.definition, self.kafka)

    def wait_settled(self, timeout: float = 600.0, quiet_seconds: float = 3.0) -> float:
        """Wait until the pipeline has done all it will do with what it was sent; returns the wait.

        That is: every consumer has caught up and stayed so for ``quiet_seconds``, and the event
        topics have been silent for longer than the idle timeout, after which every partition is
        idle, the watermark stops, and no further window will close until new events arrive.
        Flink commits its offsets at checkpoints, so this takes at least one checkpoint interval.
        """
        started = time.monotonic()
        idle_after = self.settings.idle_timeout_seconds + 3.0
        previous: list[GroupLag] | None = None
        quiet_since = None
        while True:
            lags = self.lags()
            if all(lag.lag == 0 for lag in lags) and lags == previous:
                quiet_since = quiet_since or time.monotonic()
                times = [self.kafka.last_append_time(topic) for topic in self.definition.event_topics]
                last = max((t for t in times if t), default=0.0)
                if time.monotonic() - quiet_since >= quiet_seconds and time.time() - last >= idle_after:
                    return time.monotonic() - started
            else:
                quiet_since = None
            if time.monotonic() - started > timeout:
                behind = ", ".join(f"{lag.group} on {lag.topic}: {lag.lag}" for lag in lags if lag.lag)
                raise PipelineError(
                    f"the pipeline did not settle within {timeout:.0f} s; still behind: {behind or 'none'}"
                )
            previous = lags
            time.sleep(1.0)
