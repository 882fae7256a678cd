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


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("CLICKLIB_IDLE_TIMEOUT", "thirty seconds", "is not a duration"),
        ("CLICKLIB_IDLE_TIMEOUT", "30", "is not a duration"),
        ("CLICKLIB_CHECKPOINT_INTERVAL", "10 parsecs", "is not a duration"),
        ("CLICKLIB_KAFKA_PORT", "70000", "is not a port"),
        ("CLICKLIB_CONNECT_PORT", "0", "is not a port"),
        ("CLICKLIB_BIND_HOST", "local host", "is not a host name"),
        ("CLICKLIB_BOOTSTRAP_SERVERS", "broker-1", "is not host:port"),
        ("CLICKLIB_CONNECT_URL", "127.0.0.1:8083", "is not a URL"),
        ("CLICKLIB_CASSANDRA_HOSTS", "c1;c2", "is not a comma-separated list of hosts"),
        ("CLICKLIB_REQUEST_TIMEOUT", "-1", "must be a positive number"),
        ("CLICKLIB_RAW_PARTITIONS", "0", "must be at least 1"),
    ],
)
def test_a_bad_value_fails_when_settings_are_read_naming_the_variable(variable, value, words):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert f"{variable}=" in str(caught.value) or variable in str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "10.0.0.5", "myhost.example"])
def test_a_bind_host_beyond_this_machine_is_refused_without_the_secure_profile(host):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"CLICKLIB_BIND_HOST": host})
    assert "CLICKLIB_SECURE=1" in str(caught.value)
    assert Settings.from_env({"CLICKLIB_BIND_HOST": host, "CLICKLIB_SECURE": "1"}).bind_host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LocalHost"])
def test_loopback_bind_hosts_need_no_secure_profile(host):
    assert Settings.from_env({"CLICKLIB_BIND_HOST": host}).bind_host == host


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("On", True), ("0", False), ("false", False)])
def test_a_switch_reads_yes_and_no_words(raw, value):
    assert Settings.from_env({"CLICKLIB_SECURE": raw}).secure is value


def test_a_switch_that_is_neither_yes_nor_no_names_the_variable():
    with pytest.raises(SettingsError, match="CLICKLIB_SECURE='maybe' is not a yes or no"):
        Settings.from_env({"CLICKLIB_SECURE": "maybe"})


def test_durations_are_read_in_flink_units():
    settings = Settings.from_env({"CLICKLIB_IDLE_TIMEOUT": "2 min", "CLICKLIB_CHECKPOINT_INTERVAL": "500 ms"})
    assert settings.idle_timeout_seconds == 120.0
    assert settings.checkpoint_interval_seconds == 0.5
    assert settings.idle_timeout == "2 min"  # the SQL scripts take it verbatim


def test_settings_pass_through_the_environment_unchanged(tmp_path):
    settings = Settings(home=tmp_path, namespace="x_", kafka_port=19092, idle_timeout="2 min", cassandra_ttl="")
    assert Settings.from_env(settings.to_env()) == settings


def test_settings_come_from_a_file_and_the_environment_wins(tmp_path):
    path = tmp_path / "clicklib.env"
    path.write_text(
        "# a secured cluster\n"
        "CLICKLIB_KAFKA_SECURITY_PROTOCOL=SASL_SSL\n"
        "export CLICKLIB_KAFKA_USERNAME='alice'\n"
        'CLICKLIB_KAFKA_PASSWORD="s3cret"\n'
        "CLICKLIB_NAMESPACE=from_file_\n"
    )
    settings = Settings.from_env({"CLICKLIB_SETTINGS_FILE": str(path), "CLICKLIB_NAMESPACE": "env_"})
    assert (settings.kafka_username, settings.kafka_password) == ("alice", "s3cret")
    assert settings.namespace == "env_"


def test_a_bad_line_in_the_settings_file_is_named_without_showing_it(tmp_path):
    path = tmp_path / "clicklib.env"
    path.write_text("CLICKLIB_NAMESPACE=x_\nkafka password hunter2\n")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"CLICKLIB_SETTINGS_FILE": str(path)})
    assert "line 2" in str(caught.value) and "hunter2" not in str(caught.value)
    with pytest.raises(SettingsError, match="cannot be read"):
        Settings.from_env({"CLICKLIB_SETTINGS_FILE": str(tmp_path / "missing.env")})
