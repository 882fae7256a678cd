"""Who may do what in Kafka under the secure profile: each component's access rules.

The broker denies whatever no rule allows (``allow.everyone.if.no.acl.found=false``), and
only ``admin`` is a super user. ``stack up`` gives the Connect worker its own topics and group;
``pipeline up`` gives each component exactly the topics and groups of that pipeline:

- ``producer`` writes the topics events and user profiles enter by;
- ``flink`` reads the topics its jobs read, writes those they write, commits its jobs'
  consumer groups and runs the transactions of its exactly-once sinks;
- ``connect`` reads the topics its sinks read, writes their dead-letter topic and commits
  their consumer groups.

``pipeline down --purge`` removes the pipeline's rules with its topics.
"""

from __future__ import annotations

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from clicklib import secrets
from clicklib.definition import PipelineDefinition
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
        rules.append(("flink", group, job.flink_name, literal, read))
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
    kafka.allow([_binding(rule) for rule in stack_rules()])


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
