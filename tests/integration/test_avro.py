"""Avro with the schema registry: the clean events on clickstream_avro, the schemas as code, their
evolution both ways, and the registry's storage through a kill.

Every message is checked byte by byte against the Confluent wire format and decoded with
fastavro from the schema the registry gives for its id, independently of the serializers
clicklib uses; the events are compared with the oracle's clean events and with Cassandra.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from fastavro import parse_schema, schemaless_reader

from clicklib import avro, produce, stack
from clicklib.definition import Sources
from clicklib.exceptions import IncompatibleSchemaError
from clicklib.generate import generate
from clicklib.pipeline import Pipeline
from clicklib.schema_registry import COMPATIBILITY, SchemaRegistry, load_schemas, register_schemas
from clicklib.stack import process, services
from tests import oracle
from tests.checks import table

SHIPPED = Path(__file__).resolve().parents[2] / "schemas" / "clickstream_avro-value.avsc"


def _schema_dir(tmp_path: Path, change) -> Path:
    """A schemas folder holding the shipped schema as ``change`` alters it."""
    schema = json.loads(SHIPPED.read_text())
    change(schema)
    folder = tmp_path / "schemas"
    folder.mkdir()
    (folder / SHIPPED.name).write_text(json.dumps(schema, indent=2))
    return folder


def _field(schema: dict, name: str) -> dict:
    return next(f for f in schema["fields"] if f["name"] == name)


def _add_optional_campaign(schema: dict) -> None:
    schema["fields"].append({"name": "campaign", "type": ["null", "string"], "default": None})


def test_every_avro_message_is_a_clean_event_in_the_wire_format_keyed_by_its_user(running_pipeline: Pipeline):
    pipeline = running_pipeline
    workload = generate(2_000, seed=61, start_ms=int(time.time() * 1000) - 2 * 3_600_000, invalid_ratio=0.02)
    assert produce.produce(pipeline, workload, show_progress=False).failed == 0
    pipeline.wait_settled(timeout=600, windows=False)

    subject = f"{pipeline.topic('clickstream_avro')}-value"
    versions = pipeline.registry.client.get_versions(subject)
    registered = pipeline.registry.latest(subject)
    # The job writes with the very schema `pipeline up` registered: one version, one id.
    assert versions == [1], versions
    assert pipeline.registry.client.get_compatibility(subject) == COMPATIBILITY
    writer = parse_schema(json.loads(pipeline.registry.schema(registered.schema_id)))

    consumer_messages = avro.read(pipeline, "clickstream_avro")
    raw = _raw_values(pipeline)
    assert len(raw) == len(consumer_messages) > 0
    events = []
    for key, value in raw:
        assert value[0] == 0, value[:5]
        assert int.from_bytes(value[1:5], "big") == registered.schema_id
        event = schemaless_reader(io.BytesIO(value[5:]), writer, writer)
        assert key == event["user_id"].encode()
        events.append(event)
    expected = oracle.clean_events(workload)
    assert {e["event_id"] for e in events} == set(expected["event_id"])
    assert {e["event_id"] for e in events} == set(table(pipeline, "events_by_day")["event_id"])
    # What clicklib's own reader decodes is what fastavro read.
    assert sorted(m.value["event_id"] for m in consumer_messages) == sorted(e["event_id"] for e in events)
    by_id = expected.set_index("event_id")
    for event in events[:200]:
        row = by_id.loc[event["event_id"]]
        assert (event["user_id"], event["date"], event["status"]) == (row["user_id"], row["date"], row["status"])


def _raw_values(pipeline: Pipeline) -> list[tuple[bytes, bytes]]:
    from confluent_kafka import TopicPartition

    topic = pipeline.topic("clickstream_avro")
    ends = pipeline.kafka.end_offsets(topic)
    consumer = pipeline.kafka.consumer(f"raw-{uuid.uuid4().hex}", **{"enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end])
    values, deadline = [], time.monotonic() + 60
    try:
        while len(values) < sum(ends.values()) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                values.append((message.key(), message.value()))
    finally:
        consumer.close()
    return values


def test_an_added_optional_field_is_written_and_read_end_to_end_with_the_old_messages(
    running_pipeline: Pipeline, tmp_path: Path
):
    pipeline = running_pipeline
    workload = generate(300, seed=62, start_ms=int(time.time() * 1000) - 2 * 3_600_000)
    assert produce.produce(pipeline, workload, show_progress=False).failed == 0
    pipeline.wait_settled(timeout=600, windows=False)
    old = avro.read(pipeline, "clickstream_avro")
    assert old and "campaign" not in old[0].value

    (newer,) = load_schemas(pipeline.settings, _schema_dir(tmp_path, _add_optional_campaign))
    ids = register_schemas(pipeline.registry, (newer,))
    assert ids[newer.subject] != old[0].schema_id
    assert pipeline.registry.client.get_versions(newer.subject) == [1, 2]

    # A message written with the new version reaches Cassandra (the sinks ignore the new field)...
    event = dict(old[0].value, event_id=f"evolved-{uuid.uuid4()}", campaign="winter")
    assert avro.write(pipeline, "clickstream_avro", [event], newer) == 1
    deadline = time.monotonic() + 120
    while event["event_id"] not in set(table(pipeline, "events_by_user")["event_id"]):
        assert time.monotonic() < deadline, "the message written with the new schema never reached Cassandra"
        time.sleep(2)

    # ...and every message, old and new, is read as the new version sees it.
    seen = avro.read(pipeline, "clickstream_avro", reader=newer)
    assert len(seen) == len(old) + 1
    assert {m.value["campaign"] for m in seen if m.value["event_id"] != event["event_id"]} == {None}
    assert [m.value["campaign"] for m in seen if m.value["event_id"] == event["event_id"]] == ["winter"]
    assert {m.schema_id for m in seen} == {old[0].schema_id, ids[newer.subject]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda schema: _field(schema, "status").update(type=["null", "string"]), "status"),
        (lambda schema: schema["fields"].append({"name": "campaign", "type": "string"}), "campaign"),
    ],
    ids=["a-changed-type", "a-new-field-without-default"],
)
def test_an_incompatible_schema_stops_pipeline_up_before_anything_is_submitted(
    namespaced_pipeline: Pipeline, tmp_path: Path, change, field: str
):
    settings = namespaced_pipeline.settings
    # The subject holds the shipped schema, as after an earlier `pipeline up`.
    shipped = load_schemas(settings)
    register_schemas(namespaced_pipeline.registry, shipped)
    changed = Sources(avro_schemas=_schema_dir(tmp_path, change))
    try:
        with Pipeline(settings, sources=changed) as pipeline:
            with pytest.raises(IncompatibleSchemaError) as refused:
                pipeline.up()
            message = str(refused.value)
            assert shipped[0].subject in message and f"'{field}'" in message, message
            assert "schemas/clickstream_avro-value.avsc" in message
            # Nothing was created or submitted.
            names = set(pipeline.kafka.topic_names())
            assert not {t.name for t in pipeline.definition.topics} & names
            assert set(pipeline.status().jobs.values()) == {"NOT RUNNING"}
            assert not [c for c in pipeline.connect.names() if c.startswith(settings.namespace)]
            assert pipeline.registry.client.get_versions(shipped[0].subject) == [1]
    finally:
        namespaced_pipeline.registry.delete_subject(shipped[0].subject)


def test_the_registry_keeps_its_schemas_and_ids_through_a_kill(live_stack, tmp_path: Path):
    settings = dataclasses.replace(live_stack, namespace=f"k{uuid.uuid4().hex[:8]}_")
    registry = SchemaRegistry(settings)
    (first,) = load_schemas(settings)
    (second,) = load_schemas(settings, _schema_dir(tmp_path, _add_optional_campaign))
    try:
        ids = [register_schemas(registry, (s,))[s.subject] for s in (first, second)]
        texts = [registry.schema(i) for i in ids]
        spec = services.PROCESSES["schema-registry"]
        killed = process.read_pid(spec.pid_path(settings))
        os.kill(killed, signal.SIGKILL)

        deadline = time.monotonic() + 120
        while True:
            row = next(r for r in stack.status(settings) if r.service == "schema-registry")
            if row.healthy and process.read_pid(spec.pid_path(settings)) not in (None, killed):
                break
            assert time.monotonic() < deadline, "the supervisor did not bring the registry back"
            time.sleep(2)

        after = SchemaRegistry(settings)
        assert after.client.get_versions(first.subject) == [1, 2]
        assert [after.client.get_version(first.subject, v).schema_id for v in (1, 2)] == ids
        assert [after.schema(i) for i in ids] == texts
        assert after.client.get_compatibility(first.subject) == COMPATIBILITY
        # The same text registered again keeps its id: nothing was renumbered.
        assert after.register(first.subject, second.compact) == ids[1]
        after.close()
    finally:
        registry.delete_subject(first.subject)
        registry.close()
