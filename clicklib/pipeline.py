"""The pipeline as a whole: its definition and one client per service, built once.

``Pipeline(settings)`` reads the definition (topics, tables, SQL jobs, connectors, Avro
schemas) and builds the clients of Kafka, Cassandra, Kafka Connect, Flink, the SQL Gateway
and the schema registry; every step of clicklib takes that object. ``up`` checks the whole
definition against the services before creating anything, then applies the Cassandra schema,
creates the topics, registers the Avro schemas and the sink connectors and submits the
streaming SQL. Every step is idempotent, and a failure
part-way removes the connectors and jobs that call created, so nothing is left
half-submitted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clicklib import access, job_state, lake, schema_registry, secrets, streaming_sql
from clicklib import definition as pipeline_definition
from clicklib.cassandra import CassandraClient
from clicklib.connect import ConnectClient
from clicklib.definition import PipelineDefinition, Sources
from clicklib.exceptions import ClicklibError, PipelineError
from clicklib.flink import FlinkClient
from clicklib.kafka import KafkaClient
from clicklib.offsets import GroupLag, consumer_lags, problem_counts, topic_messages
from clicklib.schema_registry import SchemaRegistry
from clicklib.settings import Settings, get_settings
from clicklib.sql_gateway import SqlGatewayClient


@dataclass
class PipelineStatus:
    topics: dict[str, int] = field(default_factory=dict)  # topic -> messages (sum of end offsets), -1: missing
    jobs: dict[str, str] = field(default_factory=dict)  # Flink job name -> state
    connectors: dict[str, str] = field(default_factory=dict)  # connector -> "STATE task states"
    started: dict[str, str] = field(default_factory=dict)  # Flink job name -> how `up` started it
    problems: dict[str, int] = field(default_factory=dict)  # dead letters, late events, sink dead letters
    # What the stack's supervisor sees stalled: this pipeline's jobs and connectors, and the
    # stack's processes they run on (part -> what, since when, how far behind).
    stalls: dict[str, str] = field(default_factory=dict)


class Pipeline:
    """The clickstream pipeline on one cluster, in one namespace."""

    def __init__(self, settings: Settings | None = None, sources: Sources | None = None) -> None:
        self.settings = settings or get_settings()
        self.definition: PipelineDefinition = pipeline_definition.load(self.settings, sources)
        timeout = self.settings.request_timeout
        self.kafka = KafkaClient(self.settings)
        self.cassandra = CassandraClient(self.settings)
        # The analysis reads through a role that may only read (the secure profile's reader).
        self.reader = CassandraClient(self.settings, role="reader")
        self.connect = ConnectClient(self.settings.connect_url, timeout, auth=secrets.connect_login(self.settings))
        # Both behind web guards that, in the secure profile, ask for the stack's login.
        flink_login = secrets.flink_login(self.settings)
        self.flink = FlinkClient(self.settings.flink_rest_url, timeout, auth=flink_login)
        self.sql_gateway = SqlGatewayClient(self.settings.sql_gateway_url, timeout, auth=flink_login)
        self.registry = SchemaRegistry(self.settings)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.cassandra.close()
        self.reader.close()
        for client in (self.connect, self.flink, self.sql_gateway, self.registry):
            client.close()

    def topic(self, base: str) -> str:
        """A topic's name in this pipeline's namespace ("clickstream_dlq" -> "t1_clickstream_dlq")."""
        return self.definition.topic(base)

    @contextlib.contextmanager
    def lock(self, blocking: bool = True) -> Iterator[None]:
        """Held while the pipeline is set up, taken down or healed, so the supervisor and a user's
        command never submit the same job twice. Not ``blocking``: BlockingIOError when taken."""
        path = registry_dir(self.settings) / f"{self.settings.namespace or 'default'}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def up(self, fresh: bool = False, drop_unrestorable: bool = False) -> PipelineStatus:
        """Check everything, then create what is missing and start what is not running.

        Each job resumes from its newest savepoint or retained checkpoint (``fresh``: from
        empty state). Returns once every job and every connector task is RUNNING.
        """
        definition = self.definition
        with self.lock():
            # First: a schema that would break its subject stops everything before it starts.
            schema_registry.check_schemas(self.registry, definition.avro_schemas)
            self.create_tables()
            for connector in definition.connectors:
                self.connect.validate(connector)
            running = streaming_sql.running_jobs(self)
            pending = [plan for plan in definition.jobs if running[plan.flink_name] is None]
            streaming_sql.plan_starts(self, pending, fresh, drop_unrestorable)
            # The check's sessions, their definitions run, are the ones the jobs start in.
            with streaming_sql.prepared_sessions(self, pending, explain=True) as prepared:
                self.create_topics()
                existing = set(self.connect.names())
                try:
                    schema_registry.register_schemas(self.registry, definition.avro_schemas)
                    self.connect.register(definition.connectors, validated=True)
                    starts = streaming_sql.submit(
                        self, checked=True, fresh=fresh, drop_unrestorable=drop_unrestorable, prepared=prepared
                    )
                except BaseException:
                    for connector in definition.connectors:
                        if connector.name not in existing:
                            self.connect.delete(connector.name)
                    raise
            register(self.settings)
        report = self.status()
        report.started = {name: start.how for name, start in starts.items()}
        return report

    def submit_jobs(self, jobs: Sequence[str] | None = None) -> dict[str, streaming_sql.JobStart]:
        """Start each SQL job (or only ``jobs``) that is not running, from its newest saved state;
        job name -> how. Under the pipeline's lock, since the supervisor may be resuming the same
        jobs; not to be called while this process holds the lock (``up`` does, for one)."""
        with self.lock():
            return streaming_sql.submit(self, jobs=jobs)

    def create_tables(self) -> None:
        """The keyspace and its tables, what each role may do there, and the sinks' password file."""
        self.cassandra.apply_schema(self.definition.schema)
        access.grant_keyspace(self.cassandra, self.settings)
        self.cassandra.apply_ttls(self.settings.table_ttls, self.definition.tables)
        secrets.sink_password_file(self.settings)

    def create_topics(self) -> None:
        """The topics, with their settings, and what each component may do with them."""
        self.kafka.create_topics(self.definition.topics)
        self.kafka.set_topic_configs(self.definition.topics)
        access.grant_pipeline(self.kafka, self.definition)

    def status(self) -> PipelineStatus:
        report = PipelineStatus()
        messages = topic_messages(self.definition, self.kafka)
        report.topics = {t.name: messages.get(t.name, -1) for t in self.definition.topics}
        report.problems = problem_counts(self.definition, self.kafka)
        for name, job in streaming_sql.running_jobs(self).items():
            report.jobs[name] = job.state if job else "NOT RUNNING"
        for connector in self.definition.connectors:
            report.connectors[connector.name] = str(self.connect.status(connector.name))
        report.stalls = self.stalls()
        return report

    def stalls(self) -> dict[str, str]:
        """What the supervisor sees stalled now, among this pipeline's jobs and connectors and the
        stack's processes (empty when no supervisor runs here: a cluster of its own)."""
        from clicklib.stack import supervisor

        ours = {f"job {p.flink_name}" for p in self.definition.jobs}
        ours |= {f"connector {c.name}" for c in self.definition.connectors}
        return {
            part: stall.describe()
            for part, stall in supervisor.stalls(self.settings).items()
            if part in ours or not part.startswith(("job ", "connector "))
        }

    def down(self, purge: bool = False) -> dict[str, str]:
        """Stop the jobs, each with a savepoint, and remove the connectors; returns job name ->
        how it stopped. ``purge`` also deletes the topics, their schemas' subjects, the keyspace,
        the clean events in the lake and every saved state."""
        with self.lock():
            unregister(self.settings)
            stopped = streaming_sql.stop(self, savepoint=not purge)
            self.connect.unregister(self.definition.connectors)
            if purge:
                # A topic is deleted only once nothing reads it: the broker re-creates a topic that a
                # still-running consumer asks for.
                streaming_sql.wait_stopped(self)
                self.kafka.delete_topics([t.name for t in self.definition.topics])
                access.revoke_pipeline(self.kafka, self.definition)
                self.cassandra.drop_keyspace()
                for plan in self.definition.jobs:
                    job_state.forget(self.settings, plan.flink_name)
                lake.delete(self.settings)
                # Last: with the registry down, everything else is gone already, and the error
                # says what is left (purging again deletes it).
                schema_registry.delete_subjects(self.registry, self.definition.avro_schemas)
        return stopped

    def close_windows(self, timeout: float = 600.0) -> dict[str, str]:
        """End a run: wait until the SQL jobs have read everything they were sent, fire every
        window and session still open, and wait until the sink connectors have written them;
        returns job name -> what happened.

        A window closes when the watermark passes its end, and the watermark moves only with new
        events: after the last event of a run, its last minutes and every session of its last
        30 minutes stay open until more traffic comes. This closes them now. Call it once the
        traffic of a run is over: an event dated before the close that arrives afterwards is not
        late but opens a window of its own (a minute's row then holds only such events).
        """
        jobs = [plan.flink_name for plan in self.definition.jobs]
        self.wait_settled(timeout, windows=False, groups=jobs)
        with self.lock():
            closed = streaming_sql.close_windows(self)
        # What the drain wrote reaches Cassandra through the connectors registered so far.
        registered = set(self.connect.names())
        sinks = [c.consumer_group for c in self.definition.connectors if c.name in registered]
        self.wait_settled(timeout, windows=False, groups=jobs + sinks)
        return closed

    def lags(self, groups: Sequence[str] | None = None) -> list[GroupLag]:
        """How far each consumer of the pipeline (or of ``groups``) trails each topic it reads."""
        return consumer_lags(self.definition, self.kafka, groups)

    def _jobs_read_all_by(self, seen_at: float) -> float:
        """A time by which every job had read all it has read, given they were seen caught up at
        ``seen_at``: a job's consumer offsets are committed when a checkpoint completes, and hold
        what it had read when that checkpoint began; so the newest completed checkpoint bounds it,
        usually seconds before ``seen_at``."""
        newest = _newest_checkpoint_time(self)
        return min(seen_at, newest) if newest is not None else seen_at

    def wait_settled(
        self,
        timeout: float = 600.0,
        quiet_seconds: float = 3.0,
        windows: bool = True,
        groups: Sequence[str] | None = None,
    ) -> float:
        """Wait until the pipeline has done all it will do with what it was sent; returns the wait.

        That is: every consumer has caught up and stayed so for ``quiet_seconds``, and the event
        topics have been silent for longer than the idle timeout, after which every partition is
        idle, the watermark stops, and no further window will close until new events arrive.
        Flink commits its offsets at checkpoints, so this takes at least one checkpoint interval.
        A partition goes idle that long after a job *read* its last record, not after it was
        written; so the silence is counted from whichever is later: the last write, or when every
        job had read everything (see ``_jobs_read_all_by``).
        Not ``windows``: only until every consumer has caught up (no window is expected to close).
        ``groups``: only these consumer groups (Flink job names, connector groups) are waited for.
        """
        started = time.monotonic()
        idle_after = self.settings.idle_timeout_seconds + 3.0
        jobs = {plan.flink_name for plan in self.definition.jobs}
        previous: list[GroupLag] | None = None
        quiet_since = None
        jobs_caught_up_at = None
        while True:
            # Taken before the lags are read: a window that closes by this time shows in them.
            read_at = time.time()
            lags = self.lags(groups)
            if any(lag.lag for lag in lags if lag.group in jobs):
                jobs_caught_up_at = None
            elif jobs_caught_up_at is None:
                jobs_caught_up_at = self._jobs_read_all_by(read_at) if windows else read_at
            if all(lag.lag == 0 for lag in lags) and lags == previous:
                quiet_since = quiet_since or time.monotonic()
                times = (
                    [self.kafka.last_append_time(topic) for topic in self.definition.event_topics] if windows else []
                )
                silent_since = max([t for t in times if t] + [jobs_caught_up_at or read_at])
                if time.monotonic() - quiet_since >= quiet_seconds and (
                    not windows or read_at - silent_since >= idle_after
                ):
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


def _newest_checkpoint_time(pipeline: Pipeline) -> float | None:
    """When the newest completed checkpoint of the pipeline's jobs completed (epoch s), None
    when a job has none or Flink cannot say."""
    try:
        jobs = [job for job in streaming_sql.running_jobs(pipeline).values() if job is not None]
        times = [pipeline.flink.latest_checkpoint(job.job_id) for job in jobs]
    except ClicklibError:
        return None
    if not jobs or any(t is None for t in times):
        return None
    return max(t[1] for t in times if t is not None)


def registry_dir(settings: Settings) -> Path:
    """Where the pipelines that are up are listed, for the supervisor to keep them running."""
    return settings.home / "run" / "pipelines"


def register(settings: Settings) -> None:
    # The settings hold any login given in CLICKLIB_*_PASSWORD: readable by their owner only.
    path = registry_dir(settings) / f"{settings.namespace or 'default'}.json"
    secrets.private_file(path, json.dumps(settings.to_env(), indent=2) + "\n")


def unregister(settings: Settings) -> None:
    (registry_dir(settings) / f"{settings.namespace or 'default'}.json").unlink(missing_ok=True)


def registered(settings: Settings) -> list[Settings]:
    """The settings of every pipeline that is up on this stack (as its `pipeline up` saw them)."""
    found = []
    for path in sorted(registry_dir(settings).glob("*.json")):
        with contextlib.suppress(ValueError, TypeError, ClicklibError):
            found.append(Settings.from_env(json.loads(path.read_text())))
    return found
