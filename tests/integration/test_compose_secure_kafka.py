"""The secure docker-compose profile's Kafka, run without Docker: a broker from the same jars,
configured from docker-compose.yml and docker-compose.secure.yml the way the image turns
KAFKA_* variables into server.properties, its storage formatted by docker/secure/kafka-start.sh
with the logins `clicklib stack compose-secrets` writes, and its JAAS file.

Only the addresses change (free ports on 127.0.0.1, a temporary folder): every security
setting is the compose files' own. Each component then logs in with its password, and a client
without one, or with a wrong one, is refused.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from clicklib import secrets
from clicklib.settings import Settings
from clicklib.stack import compose
from clicklib.stack.jars import classpath
from clicklib.stack.process import find_java

from .conftest import free_ports

ROOT = Path(__file__).resolve().parents[2]
START_SCRIPT = ROOT / "docker" / "secure" / "kafka-start.sh"
# Variables of the image that are not broker settings.
NOT_SETTINGS = {"KAFKA_OPTS", "KAFKA_HEAP_OPTS"}


def compose_kafka_environment() -> dict[str, str]:
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["kafka"]["environment"]
    secure = yaml.safe_load((ROOT / "docker-compose.secure.yml").read_text())["services"]["kafka"]["environment"]
    return {name: str(value) for name, value in {**base, **secure}.items()}


def image_properties(environment: dict[str, str]) -> str:
    """server.properties as the image writes it: KAFKA_FOO_BAR -> foo.bar."""
    return "".join(
        f"{name[len('KAFKA_') :].lower().replace('_', '.')}={value}\n"
        for name, value in environment.items()
        if name.startswith("KAFKA_") and name not in NOT_SETTINGS
    )


def on_local_ports(environment: dict[str, str], data: Path) -> dict[str, str]:
    internal, host, controller = free_ports(3)
    ports = {"29092": internal, "9092": host, "9093": controller}
    moved = dict(environment)
    for name in ("KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_CONTROLLER_QUORUM_VOTERS"):
        value = moved[name].replace("kafka:", "127.0.0.1:").replace("://:", "://127.0.0.1:")
        for old, new in ports.items():
            value = value.replace(f":{old}", f":{new}")
        moved[name] = value
    moved["KAFKA_LOG_DIRS"] = str(data)
    return moved


@pytest.fixture(scope="module")
def compose_kafka(tmp_path_factory, settings: Settings):
    home = tmp_path_factory.mktemp("compose") / "home"
    home.mkdir()
    (home / "jars").symlink_to(settings.home / "jars")
    settings = Settings(home=home, secure=True)
    folder = compose.write_compose_secrets(settings)
    data = home / "data"
    environment = on_local_ports(compose_kafka_environment(), data)
    config = home / "server.properties"
    config.write_text(image_properties(environment))
    java, jars = find_java(settings), classpath(settings, "kafka")

    # The start script itself, with a kafka-storage.sh that runs the same jars, and no image to
    # hand over to afterwards.
    kafka_home = home / "kafka"
    (kafka_home / "bin").mkdir(parents=True)
    storage = kafka_home / "bin" / "kafka-storage.sh"
    storage.write_text(f'#!/usr/bin/env bash\nexec "{java}" -cp "{jars}" kafka.tools.StorageTool "$@"\n')
    storage.chmod(0o755)
    script_env = {
        **os.environ,
        **environment,
        "USERS": str(folder / "kafka" / "kafka-users.properties"),
        "KAFKA_HOME": str(kafka_home),
        "IMAGE_RUN": "true",
    }
    for start in (1, 2):  # the second start finds the storage formatted and leaves it
        started = subprocess.run(["bash", str(START_SCRIPT)], env=script_env, capture_output=True, text=True)
        assert started.returncode == 0, started.stdout + started.stderr
        assert ("Formatting" in started.stdout) == (start == 1)
    assert (data / "meta.properties").is_file()

    log = (home / "kafka.log").open("w")
    jaas = f"-Djava.security.auth.login.config={folder / 'kafka' / 'kafka-server.jaas'}"
    broker = subprocess.Popen(
        [java, "-Xmx256m", jaas, "-cp", jars, "kafka.Kafka", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    host_port = environment["KAFKA_ADVERTISED_LISTENERS"].split("HOST://127.0.0.1:")[1].split(",")[0]
    served = Settings(home=home, secure=True, kafka_port=int(host_port))
    try:
        yield served, home / "kafka.log"
    finally:
        broker.kill()
        broker.wait(timeout=30)
        log.close()


def topics(settings: Settings, login: dict, timeout: float = 60.0):
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 0, **login})
    deadline = time.monotonic() + timeout
    while True:
        try:
            return admin.list_topics(timeout=5)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_every_component_logs_in_with_the_password_compose_secrets_wrote(compose_kafka):
    settings, _ = compose_kafka
    for principal in secrets.KAFKA_PRINCIPALS:
        metadata = topics(settings, secrets.kafka_client_config(settings, principal))
        assert len(metadata.brokers) == 1, principal


def test_the_compose_broker_refuses_no_login_and_a_wrong_one(compose_kafka):
    settings, _ = compose_kafka
    topics(settings, secrets.kafka_client_config(settings, "admin"))  # up
    wrong = {**secrets.kafka_client_config(settings, "producer"), "sasl.password": "not-the-password"}
    for login in ({}, wrong):
        with pytest.raises(Exception):  # noqa: B017 - librdkafka reports either as a KafkaException
            topics(settings, login, timeout=5)
