"""Generated service configs honour the settings, so a changed port reaches every service."""

import dataclasses

import pytest

from clicklib.exceptions import SettingsError
from clicklib.settings import Settings
from clicklib.stack import configs


def moved(tmp_path) -> Settings:
    return Settings(
        home=tmp_path,
        kafka_port=19092,
        kafka_controller_port=19093,
        cassandra_port=19042,
        cassandra_storage_port=17000,
        connect_port=18083,
        flink_rest_port=18081,
        flink_rpc_port=16123,
        sql_gateway_port=18082,
    )


def test_kafka_listens_and_advertises_on_the_configured_ports(tmp_path):
    text = configs.kafka_properties(moved(tmp_path)).read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    assert "advertised.listeners=PLAINTEXT://127.0.0.1:19092" in text
    assert "controller.quorum.voters=1@127.0.0.1:19093" in text


def test_cassandra_binds_the_configured_ports(tmp_path):
    text = configs.cassandra_yaml(moved(tmp_path)).read_text()
    assert "native_transport_port: 19042" in text
    assert "storage_port: 17000" in text
    assert 'seeds: "127.0.0.1:17000"' in text
    assert "listen_address: 127.0.0.1" in text and "rpc_address: 127.0.0.1" in text


def test_connect_reaches_kafka_and_listens_where_settings_say(tmp_path):
    text = configs.connect_properties(moved(tmp_path)).read_text()
    # Without logins no connector config names a secret, so the worker reads no file for one.
    assert "config.providers" not in text
    assert "connector.client.config.override.policy=None" in text
    assert "bootstrap.servers=127.0.0.1:19092" in text
    assert "listeners=http://127.0.0.1:18083" in text


def test_flink_and_its_gateway_bind_their_backend_ports_behind_the_web_guard(tmp_path):
    text = configs.flink_config(moved(tmp_path)).read_text()
    # The public ports 18081 and 18082 belong to the web guard; the services sit 100 above them.
    assert "rest.port: 18181" in text
    assert "jobmanager.rpc.port: 16123" in text
    assert "sql-gateway.endpoint.rest.port: 18182" in text
    assert "rest.bind-address: 127.0.0.1" in text
    assert "18081" not in text and "18082" not in text


def test_backend_ports_can_be_set_and_are_checked(tmp_path):
    settings = Settings(home=tmp_path, flink_rest_backend_port=20001, sql_gateway_backend_port=20002)
    assert (settings.ports["flink-backend"], settings.ports["sql-gateway-backend"]) == (20001, 20002)
    assert settings.flink_rest_backend_url == "https://127.0.0.1:20001"
    with pytest.raises(SettingsError, match="CLICKLIB_FLINK_REST_BACKEND_PORT"):
        Settings(home=tmp_path, flink_rest_port=65530)
    with pytest.raises(
        SettingsError, match="CLICKLIB_SQL_GATEWAY_PORT and CLICKLIB_FLINK_REST_BACKEND_PORT are both 8182"
    ):
        Settings(home=tmp_path, sql_gateway_port=8182, sql_gateway_backend_port=9999, flink_rest_port=8082)


def test_every_service_binds_the_bind_host_only(tmp_path):
    settings = Settings(home=tmp_path)
    texts = [
        configs.kafka_properties(settings).read_text(),
        configs.cassandra_yaml(settings).read_text(),
        configs.connect_properties(settings).read_text(),
        configs.flink_config(settings).read_text(),
    ]
    for text in texts:
        assert "0.0.0.0" not in text


def test_flink_takes_no_jar_from_the_web_and_grants_no_origin(tmp_path):
    lines = configs.flink_config(Settings(home=tmp_path)).read_text().splitlines()
    assert "web.submit.enable: false" in lines
    assert 'web.access-control-allow-origin: ""' in lines


def test_a_config_written_again_unchanged_is_not_touched_and_a_changed_one_is_replaced_whole(tmp_path):
    # A service reads its config while the next one's start writes it again: it must never see
    # a truncated file (a JobManager that did started on Flink's defaults, on the wrong ports).
    settings = Settings(home=tmp_path)
    path = configs.flink_config(settings)
    before = path.stat()
    assert configs.flink_config(settings).stat().st_ino == before.st_ino
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    with open(path) as reader:  # a reader that opened the old file
        configs.flink_config(dataclasses.replace(settings, flink_task_slots=settings.flink_task_slots + 1))
        assert f"taskmanager.numberOfTaskSlots: {settings.flink_task_slots}\n" in reader.read()
    assert f"taskmanager.numberOfTaskSlots: {settings.flink_task_slots + 1}\n" in path.read_text()
