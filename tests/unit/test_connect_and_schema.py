import json
import shutil
from pathlib import Path

import pytest

from clicklib import definition, resources
from clicklib.cassandra import TABLES
from clicklib.definition import Sources
from clicklib.exceptions import DefinitionError
from clicklib.settings import Settings


def test_every_connector_config_is_filled_from_settings():
    settings = Settings(namespace="t1_", connect_cassandra_hosts="cassandra", cassandra_port=19042)
    connectors = definition.load(settings).connectors
    assert len(connectors) == len(TABLES)
    for connector in connectors:
        assert connector.name.startswith("t1_clicklib-")
        assert connector.config["cassandra.keyspace"] == "t1_clickstream"
        assert connector.config["cassandra.contact.points"] == "cassandra"
        assert connector.config["cassandra.port"] == "19042"
        assert connector.config["errors.deadletterqueue.topic.name"] == "t1_clickstream_sink_dlq"
        assert connector.config["topics"].startswith("t1_")
    assert {c.config["cassandra.table"] for c in connectors} == set(TABLES)


def copy_of_connect(tmp_path: Path) -> Path:
    folder = tmp_path / "connect"
    folder.mkdir()
    for path in resources.listing(resources.connect_dir(), ".json"):
        shutil.copy(str(path), folder / path.name)
    return folder


def test_a_broken_connector_file_is_named(tmp_path):
    folder = copy_of_connect(tmp_path)
    (folder / "bad.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(DefinitionError, match=r"connect/bad.json: not a connector config"):
        definition.load(Settings(), Sources(connect=folder))


def test_a_connector_reading_a_topic_the_pipeline_lacks_is_named(tmp_path):
    folder = copy_of_connect(tmp_path)
    path = folder / "user-sessions.json"
    path.write_text(path.read_text().replace("${topic.user_sessions}", "user_sesions"))
    with pytest.raises(DefinitionError, match=r"connect-clicklib-user-sessions reads the topic user_sesions"):
        definition.load(Settings(), Sources(connect=folder))


def test_the_schema_creates_the_keyspace_and_every_table_idempotently():
    statements = definition.load(Settings(namespace="t1_", replication_factor=3)).schema
    assert statements[0].startswith("CREATE KEYSPACE IF NOT EXISTS t1_clickstream")
    assert "'replication_factor': 3" in statements[0]
    created = [s.split()[5] for s in statements[1:]]
    assert created == [f"t1_clickstream.{t}" for t in TABLES]
    assert all("IF NOT EXISTS" in s for s in statements)


def test_every_event_table_keys_on_event_id():
    for statement in definition.load(Settings()).schema:
        if "events_by" in statement:
            assert "event_id)" in statement.split("PRIMARY KEY")[1]


def test_topics_are_named_by_base_name_in_the_namespace():
    loaded = definition.load(Settings(namespace="t1_", raw_partitions=4))
    assert loaded.topic("clickstream_dlq") == "t1_clickstream_dlq"
    partitions = {t.base: t.partitions for t in loaded.topics}
    assert partitions["clickstream"] == partitions["clickstream_valid"] == partitions["clickstream_clean"] == 4
    assert partitions["user_sessions"] == 1
    with pytest.raises(DefinitionError, match="no topic 'clickstream_missing'"):
        loaded.topic("clickstream_missing")
