"""Credentials and access rules: made private, never shown, and no wider than each part needs."""

from __future__ import annotations

import stat

import pytest

from clicklib import access, secrets
from clicklib.definition import load
from clicklib.exceptions import SettingsError
from clicklib.settings import Settings
from clicklib.stack import configs
from clicklib.templates import placeholders


@pytest.fixture
def secure(tmp_path) -> Settings:
    settings = Settings(home=tmp_path, secure=True, namespace="s_")
    secrets.local_credentials(settings, create=True)
    return settings


def test_credentials_are_made_once_readable_by_their_owner_only(secure):
    made = secrets.local_credentials(secure)
    assert set(made["kafka"]) == set(secrets.KAFKA_PRINCIPALS)
    assert len(set(made["kafka"].values())) == len(secrets.KAFKA_PRINCIPALS)
    assert secrets.local_credentials(secure, create=True) == made  # not made again
    folder = secrets.secrets_dir(secure)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / secrets.PASSWORDS_FOLDER).stat().st_mode) == 0o700
    for system, logins in made.items():
        for name, password in logins.items():
            path = secrets.password_path(secure, system, name)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert path.read_text() == password + "\n"


def test_no_file_holds_more_than_one_password(secure):
    passwords = [p for logins in secrets.local_credentials(secure).values() for p in logins.values()]
    for path in secrets.secrets_dir(secure).rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert sum(password in text for password in passwords) <= 1, path


def test_a_home_with_the_old_credentials_file_is_split_into_one_file_per_login(tmp_path):
    import json

    settings = Settings(home=tmp_path, secure=True)
    old = secrets.secrets_dir(settings) / "credentials.json"
    made = {system: {name: f"{system}-{name}-pw" for name in names} for system, names in secrets.LOGINS.items()}
    secrets.private_file(old, json.dumps(made))
    assert secrets.login_password(settings, "kafka", "producer") == "kafka-producer-pw"
    assert not old.exists()
    assert secrets.local_credentials(settings) == made


def test_the_secure_profile_without_credentials_says_how_to_make_them(tmp_path):
    with pytest.raises(SettingsError, match="CLICKLIB_SECURE=1 clicklib stack up"):
        secrets.local_credentials(Settings(home=tmp_path, secure=True))


def test_each_principal_logs_in_as_itself(secure):
    passwords = secrets.local_credentials(secure)["kafka"]
    config = secrets.kafka_client_config(secure, "producer")
    assert config == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": "producer",
        "sasl.password": passwords["producer"],
    }
    assert secrets.kafka_client_config(Settings(home=secure.home)) == {}


def test_an_explicit_login_is_used_by_every_client(tmp_path):
    settings = Settings(
        home=tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_username="alice",
        kafka_password="s3cret",
    )
    for principal in ("admin", "producer"):
        config = secrets.kafka_client_config(settings, principal)
        assert (config["sasl.username"], config["sasl.password"]) == ("alice", "s3cret")
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.mechanisms"] == "SCRAM-SHA-512"


def test_a_password_is_not_in_the_settings_repr(tmp_path):
    settings = Settings(
        home=tmp_path, kafka_security_protocol="SASL_SSL", kafka_username="alice", kafka_password="s3cret"
    )
    assert "s3cret" not in repr(settings)


def test_a_login_without_a_sasl_protocol_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="must be SASL_SSL or SASL_PLAINTEXT"):
        Settings(home=tmp_path, kafka_username="alice", kafka_password="x")
    with pytest.raises(SettingsError, match="set both"):
        Settings(home=tmp_path, kafka_security_protocol="SASL_SSL", kafka_username="alice")


def test_the_jaas_files_quote_what_they_hold(secure):
    text = secrets.kafka_client_jaas(secure, "flink", shaded=True).read_text()
    assert "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule" in text
    odd = Settings(
        home=secure.home, kafka_security_protocol="SASL_PLAINTEXT", kafka_username="a", kafka_password='p"\\q'
    )
    assert 'password="p\\"\\\\q"' in secrets.kafka_client_jaas(odd, "connect").read_text()
    assert secrets.kafka_client_jaas(Settings(home=secure.home), "connect") is None


def test_no_password_is_in_a_config_file_or_the_sql(secure):
    passwords = secrets.local_credentials(secure)["kafka"].values()
    written = [
        configs.kafka_properties(secure).read_text(),
        configs.connect_properties(secure).read_text(),
        configs.flink_config(secure).read_text(),
        *(s.text for plan in load(secure).jobs for s in (*plan.definitions, *plan.inserts)),
    ]
    assert "security.protocol=SASL_PLAINTEXT" in written[1] and "consumer.sasl.mechanism=SCRAM-SHA-256" in written[1]
    assert "'properties.sasl.mechanism' = 'SCRAM-SHA-256'" in placeholders(secure)["kafka_security"]
    for text in written:
        for password in passwords:
            assert password not in text


def test_the_default_profile_adds_no_kafka_options(tmp_path):
    assert placeholders(Settings(home=tmp_path))["kafka_security"] == ""


def test_each_component_gets_only_its_pipelines_topics(secure):
    definition = load(secure)
    rules = access.pipeline_rules(definition)
    by_principal: dict[str, set] = {}
    for principal, kind, name, _pattern, operation in rules:
        by_principal.setdefault(principal, set()).add((kind.name, name, operation.name))
    assert by_principal["producer"] == {
        ("TOPIC", "s_clickstream", "WRITE"),
        ("TOPIC", "s_clickstream_users", "WRITE"),
    }
    flink = by_principal["flink"]
    assert ("TOPIC", "s_clickstream", "READ") in flink and ("TOPIC", "s_clickstream", "WRITE") not in flink
    assert ("TOPIC", "s_clickstream_valid", "WRITE") in flink and ("TOPIC", "s_clickstream_dlq", "WRITE") in flink
    assert ("GROUP", "s_clicklib-ingest", "READ") in flink
    connect = by_principal["connect"]
    assert ("TOPIC", "s_clickstream_avro", "READ") in connect
    assert ("TOPIC", "s_clickstream_sink_dlq", "WRITE") in connect
    assert not any(op == "WRITE" and name == "s_clickstream" for _k, name, op in connect)
    # Nothing is granted beyond the namespace's own topics, groups and transactions.
    assert all(name.removeprefix("connect-").startswith("s_") for _p, _k, name, _pat, _op in rules)


def test_cassandra_asks_for_a_login_and_connect_for_a_user_in_the_secure_profile(secure):
    yaml = configs.cassandra_yaml(secure).read_text()
    assert "authenticator: io.clicklib.cassandra.BootstrapPasswordAuthenticator" in yaml
    assert "authorizer: CassandraAuthorizer" in yaml
    open_yaml = configs.cassandra_yaml(Settings(home=secure.home)).read_text()
    assert "authenticator: AllowAllAuthenticator" in open_yaml
    worker = configs.connect_properties(secure).read_text()
    # The web page guard first, so a page's request is refused before any login is checked.
    assert (
        "rest.extension.classes=io.clicklib.connect.rest.WebRequestGuard,"
        "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension\n" in worker
    )
    # The file provider reads the sinks' password file and nothing else, and no connector may
    # change the Kafka clients the worker makes for it.
    assert f"config.providers.file.param.allowed.paths={secrets.sink_password_path(secure)}\n" in worker
    assert "connector.client.config.override.policy=None\n" in worker
    open_worker = configs.connect_properties(Settings(home=secure.home)).read_text()
    assert "rest.extension.classes=io.clicklib.connect.rest.WebRequestGuard\n" in open_worker
    jaas = secrets.connect_jaas(secure).read_text()
    assert "KafkaClient {" in jaas and "KafkaConnect {" in jaas
    users = secrets.secrets_dir(secure) / "connect-users.properties"
    assert users.read_text() == f"clicklib={secrets.local_credentials(secure)['connect']['clicklib']}\n"
    assert stat.S_IMODE(users.stat().st_mode) == 0o600


def test_the_sinks_name_their_cassandra_password_by_reference_only(secure):
    password = secrets.local_credentials(secure)["cassandra"]["sink"]
    for connector in load(secure).connectors:
        assert connector.config["cassandra.username"] == "clicklib_sink"
        reference = connector.config["cassandra.password"]
        assert reference == f"${{file:{secrets.sink_password_path(secure)}:password}}"
        assert password not in str(connector.config)
    assert secrets.sink_password_file(secure).read_text() == f"password={password}\n"
    for connector in load(Settings(home=secure.home)).connectors:
        assert connector.config["cassandra.username"] == "" and connector.config["cassandra.password"] == ""
        assert connector.config["cassandra.ssl.ca"] == ""


def test_a_cassandra_ca_turns_tls_on_for_the_sinks_too(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    for connector in load(Settings(home=tmp_path, cassandra_ssl_ca=str(ca))).connectors:
        assert connector.config["cassandra.ssl.ca"] == str(ca)


def test_each_client_logs_in_with_its_own_cassandra_role(secure):
    passwords = secrets.local_credentials(secure)["cassandra"]
    assert secrets.cassandra_login(secure, "reader") == ("clicklib_reader", passwords["reader"])
    assert secrets.cassandra_login(Settings(home=secure.home)) is None
    given = Settings(home=secure.home, cassandra_username="ana", cassandra_password="pw")
    assert secrets.cassandra_login(given, "reader") == ("ana", "pw")


def test_a_login_file_written_again_unchanged_stays_the_same_file(tmp_path):
    # A sandboxed service is granted the file itself: replacing it would close it to the service.
    path = secrets.private_file(tmp_path / "secrets" / "login", "user:pw\n")
    inode = path.stat().st_ino
    assert secrets.private_file(path, "user:pw\n").stat().st_ino == inode
    changed = secrets.private_file(path, "user:other\n")
    assert changed.read_text() == "user:other\n" and stat.S_IMODE(changed.stat().st_mode) == 0o600
