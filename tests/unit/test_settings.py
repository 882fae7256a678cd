from pathlib import Path

import pytest

from clicklib.exceptions import SettingsError
from clicklib.settings import Settings


def test_defaults_describe_the_local_stack():
    settings = Settings.from_env({})
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.cassandra_contact_points == ["127.0.0.1"]
    assert settings.cassandra_port == 9042
    assert settings.connect_url == "http://127.0.0.1:8083"
    assert settings.flink_rest_url == "http://127.0.0.1:8081"
    assert settings.sql_gateway_url == "http://127.0.0.1:8082"
    assert settings.bind_host == "127.0.0.1"


def test_a_changed_port_moves_the_client_address_too():
    settings = Settings.from_env(
        {
            "CLICKLIB_KAFKA_PORT": "19092",
            "CLICKLIB_CONNECT_PORT": "18083",
            "CLICKLIB_FLINK_REST_PORT": "18081",
            "CLICKLIB_SQL_GATEWAY_PORT": "18082",
        }
    )
    assert settings.bootstrap_servers == "127.0.0.1:19092"
    assert settings.connect_url == "http://127.0.0.1:18083"
    assert settings.flink_rest_url == "http://127.0.0.1:18081"
    assert settings.sql_gateway_url == "http://127.0.0.1:18082"
    assert settings.ports["kafka"] == 19092


def test_an_explicit_address_points_clients_at_an_existing_cluster():
    settings = Settings.from_env(
        {"CLICKLIB_BOOTSTRAP_SERVERS": "broker-1:9092,broker-2:9092", "CLICKLIB_CASSANDRA_HOSTS": "c1, c2"}
    )
    assert settings.bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert settings.cassandra_contact_points == ["c1", "c2"]


def test_home_heap_and_slots_come_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {
            "CLICKLIB_HOME": str(tmp_path / "h"),
            "CLICKLIB_KAFKA_HEAP": "768m",
            "CLICKLIB_FLINK_TASK_SLOTS": "4",
        }
    )
    assert settings.home == (tmp_path / "h").resolve()
    assert isinstance(settings.home, Path)
    assert settings.kafka_heap == "768m"
    assert settings.flink_task_slots == 4


def test_a_port_that_is_not_a_number_names_the_variable():
    with pytest.raises(SettingsError, match="CLICKLIB_KAFKA_PORT='ninety'"):
        Settings.from_env({"CLICKLIB_KAFKA_PORT": "ninety"})
