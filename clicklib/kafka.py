"""Kafka: one admin client for topics and consumer groups, producers and consumers, all
configured from settings, every failure raised as a KafkaError naming the brokers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, Message, Producer, TopicPartition
from confluent_kafka import KafkaError as ConfluentError
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from clicklib.exceptions import KafkaError
from clicklib.secrets import kafka_client_config
from clicklib.settings import Settings
from clicklib.topics import Topic


class KafkaClient:
    """A thin client of one Kafka cluster."""

    def __init__(self, settings: Settings, principal: str = "admin") -> None:
        self.settings = settings
        self.bootstrap_servers = settings.bootstrap_servers
        self.timeout = settings.request_timeout
        # log_level 0 keeps librdkafka's own connection chatter out of notebooks and terminals;
        # failures reach the caller as exceptions instead. clicklib's own work (topics, offsets,
        # access rules) logs in as the admin principal; a service logs in as its own (the
        # collector as producer), the only password it may read in the secure profile.
        self.base_config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "log_level": 0,
            **kafka_client_config(settings, principal),
            "error_cb": self._note_error,
        }
        self._admin: AdminClient | None = None
        self._login_refused = ""

    @property
    def admin(self) -> AdminClient:
        # Built once and kept: a collected admin client drops the futures it handed out.
        if self._admin is None:
            self._admin = AdminClient(dict(self.base_config))
            self._check_login(self._admin)
        return self._admin

    def _check_login(self, admin: AdminClient) -> None:
        """Fail at once when the broker refuses the login, instead of when a request times out."""
        deadline = time.monotonic() + self.timeout
        self._login_refused = ""
        while True:
            attempt = time.monotonic()
            try:
                admin.list_topics(timeout=1.0)
                self._login_refused = ""
                return
            except KafkaException as exc:
                admin.poll(0)
                # A broker that is down, or closes the connection, fails the request at once: a
                # slow answer is waited for, a refused login is reported as soon as it arrives.
                given_up = time.monotonic() - attempt < 0.9 or time.monotonic() > deadline
                if self._login_refused or given_up:
                    self._admin = None
                    raise self.fail("connecting", exc) from exc

    def _note_error(self, error: ConfluentError) -> None:
        # librdkafka retries a refused login until the request times out; the refusal itself
        # only reaches this callback, and it is what the user has to act on.
        if error.code() == ConfluentError._AUTHENTICATION:
            self._login_refused = error.str()

    def fail(self, what: str, exc: BaseException) -> KafkaError:
        if self._admin is not None:
            self._admin.poll(0)
        if self._login_refused:
            return KafkaError(
                f"kafka at {self.bootstrap_servers} refused the login while {what}: {self._login_refused}; "
                "check CLICKLIB_KAFKA_USERNAME and CLICKLIB_KAFKA_PASSWORD (or, for the secure local "
                "profile, that CLICKLIB_HOME holds the stack's secrets)",
                self.bootstrap_servers,
            )
        return KafkaError(
            f"kafka at {self.bootstrap_servers} failed while {what}: {exc}; "
            "is it running (`clicklib stack status`), does CLICKLIB_BOOTSTRAP_SERVERS point at it, "
            "and does it want a login (CLICKLIB_KAFKA_SECURITY_PROTOCOL, or CLICKLIB_SECURE=1 for the secure profile)?",
            self.bootstrap_servers,
        )

    def producer(self, principal: str = "admin", **config: Any) -> Producer:
        """A producer logged in as ``principal`` (the secure profile's producer may write only
        the topics events enter by)."""
        return Producer({**self.base_config, **kafka_client_config(self.settings, principal), **config})

    def consumer(self, group: str, **config: Any) -> Consumer:
        return Consumer({**self.base_config, "group.id": group, **config})

    def topic_names(self) -> set[str]:
        try:
            return set(self.admin.list_topics(timeout=self.timeout).topics)
        except KafkaException as exc:
            raise self.fail("listing topics", exc) from exc

    def create_topics(self, topics: Sequence[Topic]) -> list[str]:
        """Create the topics that do not exist yet; returns the names created."""
        existing = self.topic_names()
        missing = [
            NewTopic(t.name, num_partitions=t.partitions, replication_factor=t.replication_factor, config=t.config)
            for t in topics
            if t.name not in existing
        ]
        if not missing:
            return []
        for name, future in self.admin.create_topics(missing, operation_timeout=self.timeout).items():
            try:
                future.result()
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise self.fail(f"creating topic {name}", exc) from exc
        return [t.topic for t in missing]

    def set_topic_configs(self, topics: Sequence[Topic]) -> None:
        """Give existing topics the configs the pipeline wants (retention, cleanup policy)."""
        existing = self.topic_names()
        resources = [
            ConfigResource(
                ConfigResource.Type.TOPIC,
                t.name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in t.config.items()
                ],
            )
            for t in topics
            if t.name in existing and t.config
        ]
        if not resources:
            return
        for resource, future in self.admin.incremental_alter_configs(resources).items():
            try:
                future.result(timeout=self.timeout)
            except (KafkaException, TimeoutError) as exc:
                raise self.fail(f"setting the configs of topic {resource.name}", exc) from exc

    def count_messages(self, topic: str, deadline_seconds: float = 120.0) -> int:
        """Committed messages in a topic, read to its end: exact for transactional topics, whose end
        offsets also count commit markers and aborted records."""
        return sum(1 for _ in self.read_since(topic, {}, deadline_seconds))

    def delete_topics(self, names: Sequence[str]) -> list[str]:
        """Delete those of the named topics that exist; returns their names."""
        existing = self.topic_names()
        doomed = [name for name in names if name in existing]
        if doomed:
            for name, future in self.admin.delete_topics(doomed, operation_timeout=self.timeout).items():
                try:
                    future.result()
                except KafkaException as exc:
                    raise self.fail(f"deleting topic {name}", exc) from exc
        return doomed

    def delete_groups(self, groups: Sequence[str]) -> list[str]:
        """Delete consumer groups; returns the ones deleted. A group that never committed does not
        exist, and one that still has members (a consumer shutting down) is left: both are skipped."""
        if not groups:
            return []
        deleted = []
        for group, future in self.admin.delete_consumer_groups(list(groups), request_timeout=self.timeout).items():
            try:
                future.result(timeout=self.timeout)
                deleted.append(group)
            except TimeoutError as exc:
                raise self.fail(f"deleting consumer group {group}", exc) from exc
            except KafkaException as exc:
                if not any(code in str(exc) for code in ("GROUP_ID_NOT_FOUND", "NOT_FOUND", "NON_EMPTY_GROUP")):
                    raise self.fail(f"deleting consumer group {group}", exc) from exc
        return deleted

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Partition -> offset of the next message (the high watermark) of a topic."""
        consumer = self.consumer("clicklib-offsets")
        try:
            metadata = consumer.list_topics(topic, timeout=self.timeout)
            if topic not in metadata.topics or metadata.topics[topic].error is not None:
                raise KafkaError(f"kafka at {self.bootstrap_servers} has no topic {topic}", self.bootstrap_servers)
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=self.timeout)[1]
                for p in metadata.topics[topic].partitions
            }
        except KafkaException as exc:
            raise self.fail(f"reading the end offsets of {topic}", exc) from exc
        finally:
            consumer.close()

    def committed(self, group: str, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """A consumer group's committed offset per partition (0 where it never committed)."""
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
        try:
            result = self.admin.list_consumer_group_offsets([request])[group].result(timeout=self.timeout)
        except TimeoutError as exc:
            # Seen after a broker restart: this client's group requests kept timing out for
            # minutes while new clients were answered. The next request starts a new client.
            error = self.fail(f"reading the offsets of consumer group {group} (no answer in {self.timeout:.0f} s)", exc)
            self._admin = None
            raise error from exc
        except KafkaException as exc:
            raise self.fail(f"reading the offsets of consumer group {group}", exc) from exc
        offsets = {tp.partition: max(tp.offset, 0) for tp in result.topic_partitions}
        return {p: offsets.get(p, 0) for p in partitions}

    def set_scram_users(self, passwords: dict[str, str], mechanism: str) -> None:
        """Create or update SCRAM logins (user name -> password) in the cluster's metadata."""
        kind = ScramMechanism[mechanism.replace("-", "_")]
        upserts = [
            UserScramCredentialUpsertion(user, ScramCredentialInfo(kind, 8192), password.encode())
            for user, password in passwords.items()
        ]
        for user, future in self.admin.alter_user_scram_credentials(upserts, request_timeout=self.timeout).items():
            try:
                future.result()
            except KafkaException as exc:
                raise self.fail(f"setting the login of {user}", exc) from exc

    def allow(self, rules: Sequence[AclBinding]) -> None:
        """Add access rules (an existing rule is left as it is)."""
        if not rules:
            return
        for rule, future in self.admin.create_acls(list(rules), request_timeout=self.timeout).items():
            try:
                future.result()
            except KafkaException as exc:
                raise self.fail(f"adding the access rule {rule}", exc) from exc
        # The controller has the rules now; the broker enforces them once its metadata catches
        # up. Return only then, so a client started next is not refused.
        everything = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
        )
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                known = set(self.admin.describe_acls(everything, request_timeout=self.timeout).result())
            except KafkaException as exc:
                raise self.fail("reading the access rules", exc) from exc
            if set(rules) <= known:
                return
            if time.monotonic() > deadline:
                raise KafkaError(
                    f"kafka at {self.bootstrap_servers} took the access rules but does not apply them "
                    f"after {self.timeout:.0f} s",
                    self.bootstrap_servers,
                )
            time.sleep(0.2)

    def revoke(self, filters: Sequence[AclBindingFilter]) -> None:
        """Remove the access rules each filter matches."""
        if not filters:
            return
        for rule, future in self.admin.delete_acls(list(filters), request_timeout=self.timeout).items():
            try:
                future.result()
            except KafkaException as exc:
                raise self.fail(f"removing the access rules {rule}", exc) from exc

    def mark_every_partition(self, topic: str, headers: dict[str, bytes]) -> int:
        """Write one record without a value but with ``headers`` to each partition of a topic
        (a control mark for the jobs reading it); returns the number written."""
        partitions = sorted(self.end_offsets(topic))
        producer = self.producer(**{"enable.idempotence": True})
        failures: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                failures.append(str(error))

        for partition in partitions:
            producer.produce(
                topic, value=b"", partition=partition, headers=list(headers.items()), on_delivery=delivered
            )
        remaining = producer.flush(self.timeout)
        if failures or remaining:
            raise KafkaError(
                f"kafka at {self.bootstrap_servers} did not take the marks for {topic}: "
                f"{'; '.join(failures) or f'{remaining} not acknowledged within {self.timeout:.0f} s'}",
                self.bootstrap_servers,
            )
        return len(partitions)

    def read_since(self, topic: str, offsets: dict[int, int], deadline_seconds: float = 120.0) -> Iterator[Message]:
        """Every committed record of a topic from ``offsets`` (partition -> first offset; 0 for a
        partition not named) to the end it has now."""
        ends = self.end_offsets(topic)
        consumer = self.consumer(
            "clicklib-reader",
            **{"isolation.level": "read_committed", "enable.auto.commit": False, "enable.partition.eof": True},
        )
        try:
            pending = {p for p, end in ends.items() if end > offsets.get(p, 0)}
            consumer.assign([TopicPartition(topic, p, offsets.get(p, 0)) for p in pending])
            deadline = time.monotonic() + deadline_seconds
            while pending:
                if time.monotonic() > deadline:
                    raise KafkaError(
                        f"reading {topic} to its end took over {deadline_seconds:.0f} s (an open transaction?)",
                        self.bootstrap_servers,
                    )
                for message in consumer.consume(num_messages=1000, timeout=1.0):
                    error = message.error()
                    if error is None:
                        if message.offset() < ends[message.partition()]:
                            yield message
                        if message.offset() >= ends[message.partition()] - 1:
                            pending.discard(message.partition())
                    elif error.code() == ConfluentError._PARTITION_EOF:
                        pending.discard(message.partition())
        except KafkaException as exc:
            raise self.fail(f"reading {topic}", exc) from exc
        finally:
            consumer.close()

    def newest_date(self, topic: str, tail: int = 200) -> int | None:
        """The highest ``date`` (epoch ms) among the last ``tail`` JSON records of each partition
        of a topic of events, None when none has one. Events arrive roughly in time order, so
        the tail holds the newest; records that are not JSON objects with a whole-number date
        (close marks, damage) are skipped; a topic not created yet has none."""
        if topic not in self.topic_names():
            return None
        ends = self.end_offsets(topic)
        consumer = self.consumer("clicklib-offsets", **{"enable.auto.commit": False, "enable.partition.eof": True})
        newest = None
        try:
            for partition, end in ends.items():
                if end == 0:
                    continue
                consumer.assign([TopicPartition(topic, partition, max(0, end - tail))])
                while True:
                    message = consumer.poll(self.timeout)
                    if message is None or message.error() is not None:
                        break
                    date = _date_of(message.value())
                    if date is not None:
                        newest = max(newest or date, date)
                    if message.offset() >= end - 1:
                        break
            return newest
        except KafkaException as exc:
            raise self.fail(f"reading the newest events of {topic}", exc) from exc
        finally:
            consumer.close()

    def last_append_time(self, topic: str) -> float | None:
        """When the newest message of a topic was written (epoch seconds), None for an empty topic."""
        ends = self.end_offsets(topic)
        consumer = self.consumer("clicklib-offsets")
        try:
            newest = None
            for partition, end in ends.items():
                if end == 0:
                    continue
                consumer.assign([TopicPartition(topic, partition, end - 1)])
                message = consumer.poll(self.timeout)
                if message is not None and message.error() is None:
                    _, millis = message.timestamp()
                    newest = max(newest or 0.0, millis / 1000)
            return newest
        except KafkaException as exc:
            raise self.fail(f"reading the newest message of {topic}", exc) from exc
        finally:
            consumer.close()


def _date_of(value: bytes | None) -> int | None:
    try:
        date = json.loads(value or b"").get("date")
    except (ValueError, AttributeError):
        return None
    return date if isinstance(date, int) and not isinstance(date, bool) else None
