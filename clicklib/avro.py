"""Reading and writing the pipeline's Avro topics, with confluent-kafka's Avro serializers.

A message's value is in the Confluent wire format: a zero byte, the 4-byte id of its schema
in the registry, then the Avro binary. The serializers find each schema by that id through the
pipeline's registry client (``schema_registry.SchemaRegistry``), so a message written with an
older version of a schema is still read, as the newest version or any ``reader`` schema sees it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError as RegistryRefusal
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from clicklib.exceptions import KafkaError, SchemaRegistryError
from clicklib.schema_registry import TopicSchema

if TYPE_CHECKING:
    from clicklib.pipeline import Pipeline

MAGIC_BYTE = 0


@dataclass(frozen=True)
class AvroMessage:
    """One message of an Avro topic, decoded."""

    partition: int
    offset: int
    key: str | None
    schema_id: int
    value: dict[str, Any]


def wire_schema_id(value: bytes) -> int | None:
    """The schema id of a value in the Confluent wire format, or None when it is not in it."""
    if len(value) < 5 or value[0] != MAGIC_BYTE:
        return None
    return int.from_bytes(value[1:5], "big")


def read(
    pipeline: Pipeline, topic_base: str, limit: int | None = None, reader: TopicSchema | None = None
) -> list[AvroMessage]:
    """The topic's messages from its start (at most ``limit`` of them), decoded with the schema
    each was written with, seen through ``reader`` when given. A message that is not Avro of a
    schema the registry holds is an error naming its partition and offset."""
    topic = pipeline.topic(topic_base)
    decode = AvroDeserializer(pipeline.registry.client, reader.compact if reader else None)
    ends = pipeline.kafka.end_offsets(topic)
    consumer = pipeline.kafka.consumer(f"{topic}-reader-{time.monotonic_ns()}", **{"enable.auto.commit": False})
    messages: list[AvroMessage] = []
    try:
        # From each partition's first message still kept (retention may have removed offset 0).
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p, end in ends.items() if end > 0])
        remaining = {partition for partition, end in ends.items() if end > 0}
        quiet_since = time.monotonic()
        while remaining and (limit is None or len(messages) < limit):
            message = consumer.poll(1.0)
            if message is None:
                if time.monotonic() - quiet_since > pipeline.settings.request_timeout:
                    raise KafkaError(
                        f"reading {topic}: nothing came for {pipeline.settings.request_timeout:.0f} s with "
                        f"partitions {sorted(remaining)} not read to their end",
                        topic,
                    )
                continue
            quiet_since = time.monotonic()
            if message.error():
                raise KafkaError(f"reading {topic}: {message.error()}", topic)
            if message.offset() >= ends[message.partition()] - 1:
                remaining.discard(message.partition())
            if message.value() is None:
                continue
            messages.append(_decoded(message, topic, decode))
    except KafkaException as exc:
        raise pipeline.kafka.fail(f"reading {topic}", exc) from None
    finally:
        consumer.close()
    return messages[:limit] if limit is not None else messages


def _decoded(message, topic: str, decode: AvroDeserializer) -> AvroMessage:
    value = message.value()
    schema_id = wire_schema_id(value)
    place = f"{topic} partition {message.partition()} offset {message.offset()}"
    if schema_id is None:
        raise SchemaRegistryError(f"{place} is not in the Confluent wire format (a zero byte, then a schema id)")
    try:
        decoded = decode(value, SerializationContext(topic, MessageField.VALUE))
    except (SerializationError, RegistryRefusal, ValueError, TypeError, EOFError, IndexError) as exc:
        raise SchemaRegistryError(f"{place} (schema id {schema_id}) could not be decoded: {exc}") from None
    key = message.key()
    return AvroMessage(message.partition(), message.offset(), key.decode() if key else None, schema_id, decoded)


def write(pipeline: Pipeline, topic_base: str, values: list[dict[str, Any]], schema: TopicSchema) -> int:
    """Write ``values`` with ``schema``, keyed by their user_id; returns how many were acked.

    The schema must already be registered (``schema_registry.register_schemas``): writers do not
    register schemas of their own, so every version in the registry is one the repository holds.
    """
    topic = pipeline.topic(topic_base)
    encode = AvroSerializer(
        pipeline.registry.client, schema.compact, conf={"auto.register.schemas": False, "use.latest.version": False}
    )
    context = SerializationContext(topic, MessageField.VALUE)
    # Every value is encoded before the first is sent: a value that does not fit writes nothing.
    encoded_values = []
    for index, value in enumerate(values):
        try:
            encoded_values.append(encode(value, context))
        except RegistryRefusal as exc:
            raise SchemaRegistryError(
                f"{schema.file} is not registered under {topic}-value ({exc.error_message}); register it first "
                "(`clicklib pipeline up`, or schema_registry.register_schemas)",
                address=pipeline.registry.url,
            ) from None
        except (SerializationError, ValueError, TypeError, KeyError) as exc:
            raise SchemaRegistryError(f"value {index} for {topic} does not fit {schema.file}: {exc}") from None
        except Exception as exc:  # the HTTP client's own errors, while it looks the schema's id up
            raise SchemaRegistryError(
                f"the schema registry at {pipeline.registry.url} could not be reached while encoding for {topic} "
                f"({str(exc)[:160]}); start it with `clicklib stack up schema-registry`",
                address=pipeline.registry.url,
            ) from None
    producer = pipeline.kafka.producer()
    failed: list[str] = []

    def delivered(error, _message) -> None:
        if error is not None:
            failed.append(str(error))

    for value, encoded in zip(values, encoded_values, strict=True):
        key = value.get("user_id")
        while True:
            try:
                producer.produce(topic, key=key.encode() if key else None, value=encoded, on_delivery=delivered)
                break
            except BufferError:  # the producer's queue is full: let it send some first
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(pipeline.settings.request_timeout)
    if failed or left:
        raise KafkaError(
            f"{len(failed) + left} of {len(values)} Avro messages to {topic} were not delivered {failed[:1]}", topic
        )
    return len(values)
