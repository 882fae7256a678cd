"""Who may do what under the secure profile: each component's Kafka access rules, and its
Cassandra role.

The broker denies whatever no rule allows (``allow.everyone.if.no.acl.found=false``), and
only ``admin`` is a super user. ``stack up`` gives the Connect worker its own topics and group;
``pipeline up`` gives each component exactly the topics and groups of that pipeline:

- ``producer`` writes the topics events and user profiles enter by;
- ``flink`` reads the topics its jobs read, writes those they write, commits its jobs'
  consumer groups and runs the transactions of its exactly-once sinks;
- ``connect`` reads the topics its sinks read, writes their dead-letter topic and commits
  their consumer groups.

``pipeline down --purge`` removes the pipeline's rules with its topics.

In Cassandra, ``stack up`` replaces the node's default superuser (cassandra/cassandra) with
``clicklib_admin`` and makes ``clicklib_sink`` and ``clicklib_reader``; ``pipeline up`` lets the
sink write the pipeline's keyspace and the reader (the notebooks' analysis) only read it.
Dropping a keyspace drops what was granted on it.
"""

from __future__ import annotations

import dataclasses
import time

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from clicklib import secrets
from clicklib.cassandra import CassandraClient
from clicklib.definition import PipelineDefinition
from clicklib.exceptions import CassandraError
from clicklib.kafka import KafkaClient
from clicklib.settings import Settings
from clicklib.topics import RAW, USERS

CONNECT_GROUP = "clicklib-connect"
CONNECT_TOPICS_PREFIX = "_clicklib-connect-"

Rule = tuple[str, ResourceType, str, ResourcePatternType, AclOperation]


def _binding(rule: Rule) -> AclBinding:
    principal, kind, name, pattern, operation = rule
    return AclBinding(kind, name, pattern, f"User:{principal}", "*", operation, AclPermissionType.ALLOW)


def stack_rules() -> list[Rule]:
    """What the Connect worker needs for itself, whatever pipelines run on it."""
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    prefixed, literal = ResourcePatternType.PREFIXED, ResourcePatternType.LITERAL
    return [
        *(
            ("connect", topic, CONNECT_TOPICS_PREFIX, prefixed, op)
            for op in (AclOperation.CREATE, AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE_CONFIGS)
        ),
        ("connect", group, CONNECT_GROUP, literal, AclOperation.READ),
    ]


def pipeline_rules(definition: PipelineDefinition) -> list[Rule]:
    """Each component's rights on one pipeline's topics, groups and transactions."""
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    literal = ResourcePatternType.LITERAL
    read, write = AclOperation.READ, AclOperation.WRITE
    rules: list[Rule] = [("producer", topic, definition.topic(base), literal, write) for base in (RAW, USERS)]
    for job in definition.jobs:
        rules += [("flink", topic, name, literal, read) for name in job.source_topics]
        rules += [("flink", topic, name, literal, write) for name in job.sink_topics]
        # Its own group, and the one `pipeline preview` reads under (streaming_sql.preview).
        rules += [("flink", group, f"{job.flink_name}{suffix}", literal, read) for suffix in ("", "-preview")]
    # The exactly-once sinks name their transactions after the namespace (ksql/*_dlq.sql).
    for op in (write, AclOperation.DESCRIBE):
        rules.append(
            (
                "flink",
                ResourceType.TRANSACTIONAL_ID,
                f"{definition.settings.namespace}clicklib-",
                ResourcePatternType.PREFIXED,
                op,
            )
        )
    for connector in definition.connectors:
        rules += [("connect", topic, name, literal, read) for name in connector.topics]
        dead_letters = connector.config.get("errors.deadletterqueue.topic.name")
        if dead_letters:
            rules.append(("connect", topic, dead_letters, literal, write))
        rules.append(("connect", group, connector.consumer_group, literal, read))
    return sorted(set(rules), key=str)


def secure_stack(settings: Settings) -> None:
    """Once Kafka is up in the secure profile: every component's login, and Connect's rules."""
    kafka = KafkaClient(settings)
    passwords = secrets.local_credentials(settings)["kafka"]
    kafka.set_scram_users({user: passwords[user] for user in secrets.KAFKA_PRINCIPALS}, secrets.LOCAL_MECHANISM)
    kafka.allow([_binding(rule) for rule in [*stack_rules(), COLLECTOR_PRODUCER_ID]])


# The stack's collector starts before any pipeline grants it a topic, and its producer, which is
# idempotent, asks for a producer id at once: without a right to write some topic, Kafka refuses
# it with a cluster authorization error, fatal to the producer for good. IdempotentWrite on the
# cluster lets it have its id (and write nothing).
COLLECTOR_PRODUCER_ID: Rule = (
    "producer",
    ResourceType.BROKER,
    "kafka-cluster",
    ResourcePatternType.LITERAL,
    AclOperation.IDEMPOTENT_WRITE,
)


def default_superuser_login(settings: Settings) -> tuple[str, str]:
    """The login of the node's default superuser: the local node takes only the stack's bootstrap
    password for it, never the well-known one (secrets.cassandra_bootstrap_password_file)."""
    return "cassandra", secrets.cassandra_bootstrap_password_file(settings).read_text().strip()


DEFAULT_ROLE_WAIT = 60.0


def secure_cassandra(settings: Settings) -> None:
    """Once Cassandra is up in the secure profile: clicklib's roles instead of the default one."""
    admin = CassandraClient(settings, "admin")
    try:
        admin.session  # noqa: B018 - logging in is the question
    except CassandraError as exc:
        if admin.login is None or "refused the login" not in str(exc):
            raise
        _replace_default_superuser(settings, admin.login)
        admin = CassandraClient(settings, "admin")
    # Every time, not only on the first start: an `up` stopped between making clicklib's admin
    # and this would otherwise leave the default superuser, whose password everyone knows.
    admin.execute("DROP ROLE IF EXISTS cassandra", what="dropping the default superuser")
    passwords = secrets.local_credentials(settings)["cassandra"]
    for role in ("sink", "reader"):
        name = f"clicklib_{role}"
        existing = admin.execute("SELECT role FROM system_auth.roles WHERE role = %s", (name,), what="reading roles")
        if existing.one() is None:
            admin.execute(
                f"CREATE ROLE {name} WITH LOGIN = true AND PASSWORD = %s",
                (passwords[role],),
                what=f"creating the role {name}",
            )
        elif not _logs_in(settings, role):
            # Made before with another password (the secrets were replaced): take the stored one.
            admin.execute(
                f"ALTER ROLE {name} WITH PASSWORD = %s", (passwords[role],), what=f"setting {name}'s password"
            )
    admin.close()


def _logs_in(settings: Settings, role: str) -> bool:
    client = CassandraClient(settings, role)
    try:
        client.session  # noqa: B018
        return True
    except CassandraError:
        return False
    finally:
        client.close()


def _replace_default_superuser(settings: Settings, login: tuple[str, str]) -> None:
    """Log in with the default superuser (made at the node's first start, once it is ready),
    make clicklib's admin, and drop the default: its password is known to everyone."""
    default = dataclasses.replace(
        settings, cassandra_username="cassandra", cassandra_password=default_superuser_login(settings)[1]
    )
    deadline = time.monotonic() + DEFAULT_ROLE_WAIT
    while True:
        first = CassandraClient(default)
        try:
            first.session  # noqa: B018
            break
        except CassandraError:
            first.close()
            if time.monotonic() > deadline:
                raise CassandraError(
                    f"cassandra at {first.address} accepts neither clicklib's admin nor its default role; its "
                    "data was made with other logins: remove .clickstack/data/cassandra (its tables go with it) "
                    "or use the CLICKLIB_HOME that made it",
                    first.address,
                ) from None
            time.sleep(1.0)
    first.execute(
        f"CREATE ROLE IF NOT EXISTS {login[0]} WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = %s",
        (login[1],),
        what=f"creating the role {login[0]}",
    )
    first.close()


def grant_keyspace(cassandra: CassandraClient, settings: Settings) -> None:
    """Let the sink write the pipeline's keyspace and the reader read it."""
    if settings.secure:
        for permission, role in (("SELECT", "reader"), ("MODIFY", "sink")):
            cassandra.execute(
                f"GRANT {permission} ON KEYSPACE {settings.keyspace} TO clicklib_{role}",
                what=f"letting clicklib_{role} {permission.lower()} {settings.keyspace}",
            )


def grant_pipeline(kafka: KafkaClient, definition: PipelineDefinition) -> None:
    """Give each component its rights on the pipeline (nothing to do without an authorizer)."""
    if definition.settings.secure:
        kafka.allow([_binding(rule) for rule in pipeline_rules(definition)])


def revoke_pipeline(kafka: KafkaClient, definition: PipelineDefinition) -> None:
    if definition.settings.secure:
        filters = []
        for principal, kind, name, pattern, operation in pipeline_rules(definition):
            filters.append(
                AclBindingFilter(kind, name, pattern, f"User:{principal}", "*", operation, AclPermissionType.ALLOW)
            )
        kafka.revoke(filters)
