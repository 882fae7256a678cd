"""The pipeline definition: every topic, table, SQL job and connector, read and rendered once.

``load(settings)`` reads the SQL scripts, the connector configs, the Cassandra schema and the
topics' Avro schemas from the package's files (or from ``Sources`` given instead), fills their placeholders from
settings and returns one immutable ``PipelineDefinition``. Everything that sets the pipeline
up, reports on it, waits for it or monitors it takes that object; nothing reads the files
again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable

from clicklib import resources
from clicklib.cassandra import TABLES, schema_statements
from clicklib.connect import Connector, parse_connector
from clicklib.exceptions import DefinitionError
from clicklib.schema_registry import TopicSchema, load_schemas
from clicklib.settings import Settings
from clicklib.sql_scripts import JobPlan, Script, plan_jobs
from clicklib.templates import placeholders, render
from clicklib.topics import RAW, VALID, Topic, pipeline_topics


@dataclass(frozen=True)
class Sources:
    """Where the definition is read from: by default the files the package ships."""

    ksql: Traversable = field(default_factory=resources.ksql_dir)
    connect: Traversable = field(default_factory=resources.connect_dir)
    schema: Traversable = field(default_factory=resources.schema_file)
    avro_schemas: Traversable = field(default_factory=resources.schemas_dir)


@dataclass(frozen=True)
class Consumer:
    """One consumer of the pipeline: a Flink job or a sink connector reading one topic."""

    group: str
    topic: str


@dataclass(frozen=True)
class PipelineDefinition:
    settings: Settings
    topics: tuple[Topic, ...]
    tables: tuple[str, ...]
    schema: tuple[str, ...]  # CQL statements, keyspace first
    scripts: tuple[Script, ...]  # as read, for plans with other consumer groups (previews)
    jobs: tuple[JobPlan, ...]
    connectors: tuple[Connector, ...]
    avro_schemas: tuple[TopicSchema, ...] = ()  # the topics' Avro value schemas, for the registry

    def topic(self, base: str) -> str:
        """A topic's name in Kafka from its base name ("clickstream_dlq" -> "t1_clickstream_dlq")."""
        for topic in self.topics:
            if topic.base == base:
                return topic.name
        raise DefinitionError(f"the pipeline has no topic {base!r}; its topics are {', '.join(self.topic_bases)}")

    @property
    def topic_bases(self) -> list[str]:
        return [t.base for t in self.topics]

    def job(self, name: str) -> JobPlan:
        for plan in self.jobs:
            if plan.name == name:
                return plan
        raise DefinitionError(f"the pipeline has no job {name!r}; its jobs are {', '.join(p.name for p in self.jobs)}")

    def connector(self, table: str) -> Connector:
        """The sink connector that writes a Cassandra table."""
        for connector in self.connectors:
            if connector.config.get("cassandra.table") == table:
                return connector
        raise DefinitionError(f"no connector writes the table {table!r}")

    @property
    def consumers(self) -> tuple[Consumer, ...]:
        """Every consumer group of the pipeline with each topic it reads."""
        jobs = [Consumer(plan.flink_name, topic) for plan in self.jobs for topic in plan.source_topics]
        sinks = [Consumer(c.consumer_group, topic) for c in self.connectors for topic in c.topics]
        return (*jobs, *sinks)

    @property
    def event_topics(self) -> tuple[str, ...]:
        """The topics whose silence lets every window close (see ``Pipeline.wait_settled``)."""
        return (self.topic(RAW), self.topic(VALID))


def load(settings: Settings, sources: Sources | None = None) -> PipelineDefinition:
    """Read every file once, fill it from settings, and check that the parts fit together."""
    sources = sources or Sources()
    avro_schemas = load_schemas(settings, sources.avro_schemas)
    params = placeholders(settings, avro_schemas)
    scripts = tuple(
        Script(f"{sources.ksql.name}/{path.name}", _read(path)) for path in resources.listing(sources.ksql, ".sql")
    )
    if not scripts:
        raise DefinitionError(f"no SQL scripts (*.sql) in {sources.ksql}")
    connector_files = resources.listing(sources.connect, ".json")
    if not connector_files:
        raise DefinitionError(f"no connector configs (*.json) in {sources.connect}")
    connectors = tuple(
        parse_connector(render(_read(path), params, label), label)
        for path in connector_files
        for label in [f"{sources.connect.name}/{path.name}"]
    )
    schema = schema_statements(_read(sources.schema), params, sources.schema.name)
    definition = PipelineDefinition(
        settings=settings,
        topics=pipeline_topics(settings),
        tables=TABLES,
        schema=schema,
        scripts=scripts,
        jobs=plan_jobs(settings, list(scripts), avro_schemas=avro_schemas),
        connectors=connectors,
        avro_schemas=avro_schemas,
    )
    _check(definition)
    return definition


def _read(path: Traversable) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"cannot read {path}: {exc}") from None


def _check(definition: PipelineDefinition) -> None:
    """Every topic a job or connector reads is one the pipeline creates (a typo would otherwise
    leave a consumer waiting on an empty, auto-created topic)."""
    known = {t.name for t in definition.topics}
    for consumer in definition.consumers:
        if consumer.topic not in known:
            raise DefinitionError(
                f"{consumer.group} reads the topic {consumer.topic}, which is not one of the pipeline's topics "
                f"({', '.join(sorted(known))})"
            )
