import json

import pytest

from clicklib import cassandra, connect
from clicklib.exceptions import ConnectorError
from clicklib.settings import Settings


def test_every_connector_config_is_filled_from_settings():
    settings = Settings(namespace="t1_", connect_cassandra_hosts="cassandra", cassandra_port=19042)
    connectors = connect.load_connectors(settings)
    assert len(connectors) == len(cassandra.TABLES)
    for connector in connectors:
        assert connector.name.startswith("t1_clicklib-")
        assert connector.config["cassandra.keyspace"] == "t1_clickstream"
        assert connector.config["cassandra.contact.points"] == "cassandra"
        assert connector.config["cassandra.port"] == "19042"
        assert connector.config["errors.deadletterqueue.topic.name"] == "t1_clickstream_sink_dlq"
        assert connector.config["topics"].startswith("t1_")
    assert {c.config["cassandra.table"] for c in connectors} == set(cassandra.TABLES)


def test_a_broken_connector_file_is_named(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(ConnectorError, match=r"bad.json: not a connector config"):
        connect.load_connectors(Settings(), tmp_path)


def test_the_schema_creates_the_keyspace_and_every_table_idempotently():
    statements = cassandra.schema_statements(Settings(namespace="t1_", replication_factor=3))
    assert statements[0].startswith("CREATE KEYSPACE IF NOT EXISTS t1_clickstream")
    assert "'replication_factor': 3" in statements[0]
    created = [s.split()[5] for s in statements[1:]]
    assert created == [f"t1_clickstream.{t}" for t in cassandra.TABLES]
    assert all("IF NOT EXISTS" in s for s in statements)


def test_every_event_table_keys_on_event_id():
    for statement in cassandra.schema_statements(Settings()):
        if "events_by" in statement:
            assert "event_id)" in statement.split("PRIMARY KEY")[1]
