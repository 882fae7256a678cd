"""The Avro schemas as code: how their files are read, the text registered, and what the
settings and templates make of the registry's address. The registry itself is exercised by
tests/integration/test_avro.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastavro import parse_schema

from clicklib import avro
from clicklib.exceptions import DefinitionError, SettingsError
from clicklib.schema_registry import TopicSchema, _named_fields, load_schemas
from clicklib.settings import Settings
from clicklib.templates import placeholders

SHIPPED = Path(__file__).resolve().parents[2] / "schemas" / "clickstream_avro-value.avsc"


def _folder(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "schemas"
    folder.mkdir()
    (folder / name).write_text(text)
    return folder


def test_the_shipped_schema_is_the_clean_topics_value_schema_in_the_namespace():
    (schema,) = load_schemas(Settings(namespace="t1_"))
    assert (schema.topic_base, schema.subject) == ("clickstream_avro", "t1_clickstream_avro-value")
    # The columns of the Flink table that writes it (ksql/18_clickstream_avro.sql), in order.
    sql = (SHIPPED.parents[1] / "ksql" / "18_clickstream_avro.sql").read_text()
    table = sql.split("CREATE TABLE clickstream_avro (")[1].split(") WITH")[0]
    columns = [line.split()[0].strip("`") for line in table.strip().splitlines()]
    assert schema.field_names == columns
    # Every field may be absent: a reader of a later version can always fill it.
    assert all(f.get("default", "missing") is None for f in json.loads(schema.text)["fields"])


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("clickstream_avro.avsc", "{}", "named <topic>-value.avsc after a pipeline topic"),
        ("nosuch_topic-value.avsc", "{}", "the topics are clickstream,"),
        ("clickstream_avro-value.avsc", '{"type": "record",\n "name": }', "not JSON (Expecting value at line 2"),
        (
            "clickstream_avro-value.avsc",
            '{"type": "record", "name": "E", "fields": [{"name": "a", "type": "nosuch"}]}',
            "not an Avro schema",
        ),
        ("clickstream_avro-value.avsc", '{"type": "record", "name": "E"}', "not an Avro schema"),
    ],
)
def test_a_bad_schema_file_is_refused_naming_it(tmp_path: Path, name: str, text: str, says: str):
    with pytest.raises(DefinitionError) as refused:
        load_schemas(Settings(), _folder(tmp_path, name, text))
    assert f"schemas/{name}" in str(refused.value) and says in str(refused.value)


def test_the_registered_text_has_avros_key_order_whatever_the_files(tmp_path: Path):
    # Flink registers Avro's printed form; any other text would be a second version.
    original = json.loads(SHIPPED.read_text())
    shuffled = {"fields": [dict(reversed(list(f.items()))) for f in original["fields"]]}
    shuffled.update({key: value for key, value in reversed(list(original.items())) if key != "fields"})
    (schema,) = load_schemas(Settings(), _folder(tmp_path, SHIPPED.name, json.dumps(shuffled, indent=4)))
    (shipped,) = load_schemas(Settings())
    assert schema.compact == shipped.compact
    compact = json.loads(schema.compact)
    assert list(compact) == ["type", "name", "namespace", "doc", "fields"]
    assert list(compact["fields"][0]) == ["name", "type", "doc", "default"]
    assert parse_schema(compact) == parse_schema(original)


def test_a_refusal_names_the_field_behind_each_path():
    schema = TopicSchema("t", "t-value", "schemas/t-value.avsc", json.dumps({"fields": [{"name": "a"}, {"name": "b"}]}))
    reason = "reader type: STRING not compatible with writer type: LONG at /fields/1/type; also /fields/7"
    assert _named_fields(reason, schema) == (
        "reader type: STRING not compatible with writer type: LONG at /fields/1 ('b')/type; also /fields/7"
    )


def test_the_wire_format_id_is_read_only_from_a_zero_byte_and_four_more():
    assert avro.wire_schema_id(b"\x00\x00\x00\x01\x02rest") == 258
    assert avro.wire_schema_id(b"\x01\x00\x00\x00\x01") is None
    assert avro.wire_schema_id(b"\x00\x00\x01") is None
    assert avro.wire_schema_id(b'{"event_id": 1}') is None


def test_the_registry_address_defaults_to_the_local_one_and_may_have_a_path():
    assert Settings().schema_registry_url == "http://127.0.0.1:8085/apis/ccompat/v7"
    assert Settings(schema_registry_port=9185).schema_registry_url == "http://127.0.0.1:9185/apis/ccompat/v7"
    assert Settings(schema_registry_url="https://sr.example:443").schema_registry_url == "https://sr.example:443"
    with pytest.raises(SettingsError, match=re.escape("CLICKLIB_SCHEMA_REGISTRY_URL='sr.example:8081' is not a URL")):
        Settings(schema_registry_url="sr.example:8081")
    with pytest.raises(SettingsError, match="port of its own"):
        Settings(schema_registry_port=8081)


def test_connect_reads_the_registry_through_apicurios_own_api():
    assert placeholders(Settings())["apicurio_registry_url"] == "http://127.0.0.1:8085/apis/registry/v2"
    # The schema goes into a SQL string: its quotes are doubled.
    sql_text = placeholders(Settings())["avro_schema.clickstream_avro"]
    assert "user''s" in sql_text and "user's" not in sql_text


def test_flink_and_connect_reach_the_registry_by_their_own_addresses_when_set():
    inside = "http://schema-registry:8080/apis/ccompat/v7"
    default = Settings()
    assert default.flink_schema_registry_url == default.connect_schema_registry_url == default.schema_registry_url
    params = placeholders(Settings(flink_schema_registry_url=inside, connect_schema_registry_url=inside))
    assert params["schema_registry_url"] == inside
    assert params["apicurio_registry_url"] == "http://schema-registry:8080/apis/registry/v2"
    # The address goes into a SQL string: a quote could end it.
    with pytest.raises(SettingsError, match="CLICKLIB_FLINK_SCHEMA_REGISTRY_URL"):
        Settings(flink_schema_registry_url="http://x:1/a'b")
