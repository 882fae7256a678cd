"""The secure profile's Kafka: logins refused at once, each component limited to its part of a
pipeline, and no generated password anywhere a user or another program could read it.

A broker of its own, on free ports, in its own home: the session's stack is not touched.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import KafkaError as ConfluentError

from clicklib import access, produce, secrets, stack
from clicklib.definition import load
from clicklib.exceptions import KafkaError
from clicklib.generate import generate
from clicklib.kafka import KafkaClient
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.stack import process
from clicklib.topics import RAW, VALID

from .conftest import free_ports


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory, live_stack: Settings):
    home = tmp_path_factory.mktemp("secure") / "stack"
    home.mkdir()
    (home / "jars").symlink_to(live_stack.home / "jars")
    kafka_port, controller_port = free_ports(2)
    settings = Settings(
        home=home,
        secure=True,
        namespace="sec_",
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        kafka_heap="256m",
        startup_timeout=120,
    )
    lines: list[str] = []
    stack.up(settings, ["kafka"], on_event=lambda name, event, detail: lines.append(f"{name} {event} {detail}"))
    try:
        yield settings, lines
    finally:
        stack.down(settings)


def first_error(config: dict, timeout: float = 20.0) -> ConfluentError:
    """The first error a producer with ``config`` reports while it tries to reach the broker."""
    errors: list[ConfluentError] = []
    # Nothing to send: a new client connects to the bootstrap broker by itself.
    producer = Producer({**config, "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + timeout
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    assert errors, f"no error within {timeout:.0f} s"
    return errors[0]


def test_an_anonymous_client_is_turned_away_at_once(secure_kafka):
    settings, _ = secure_kafka
    error = first_error({"bootstrap.servers": settings.bootstrap_servers})
    assert error.code() in (ConfluentError._TRANSPORT, ConfluentError._ALL_BROKERS_DOWN), error
    # clicklib's own client, without the login, fails at once instead of waiting out its timeout,
    # where the same client with the login is served.
    anonymous = Settings(home=settings.home, kafka_port=settings.kafka_port, request_timeout=60)
    started = time.monotonic()
    with pytest.raises(KafkaError, match="want a login"):
        KafkaClient(anonymous).topic_names()
    assert time.monotonic() - started < anonymous.request_timeout / 2
    assert isinstance(KafkaClient(settings).topic_names(), set)


def test_a_wrong_password_is_refused_as_a_failed_login(secure_kafka):
    settings, _ = secure_kafka
    wrong = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": "producer",
        "sasl.password": "not-the-password",
    }
    assert first_error(wrong).code() == ConfluentError._AUTHENTICATION
    impostor = Settings(
        home=settings.home,
        kafka_port=settings.kafka_port,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_username="admin",
        kafka_password="not-the-password",
        request_timeout=60,
    )
    with pytest.raises(KafkaError, match="refused the login"):
        KafkaClient(impostor).topic_names()


def send(settings: Settings, principal: str, topic: str) -> str:
    """Send one record as ``principal``; the delivery error's name, or "" once acknowledged."""
    outcome: list[str] = []
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "log_level": 0,
            "message.timeout.ms": 15000,
            **secrets.kafka_client_config(settings, principal),
        }
    )
    producer.produce(topic, b"{}", on_delivery=lambda err, _msg: outcome.append(err.name() if err else ""))
    producer.flush(30)
    assert outcome, f"{principal} -> {topic}: no delivery report"
    return outcome[0]


def can_read(settings: Settings, principal: str, topic: str, group: str) -> bool:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "log_level": 0,
            **secrets.kafka_client_config(settings, principal),
        }
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is None:
                return True
            if message.error().code() in (
                ConfluentError.TOPIC_AUTHORIZATION_FAILED,
                ConfluentError.GROUP_AUTHORIZATION_FAILED,
            ):
                return False
        raise AssertionError(f"{principal} read nothing from {topic} and was not refused either")
    finally:
        consumer.close()


def test_each_component_may_do_its_part_of_a_pipeline_and_nothing_else(secure_kafka):
    settings, _ = secure_kafka
    definition = load(settings)
    kafka = KafkaClient(settings)
    kafka.create_topics(definition.topics)
    raw, valid = definition.topic(RAW), definition.topic(VALID)
    ingest = definition.job("ingest").flink_name
    sink = definition.connectors[0]

    # Before pipeline up grants anything, the producer may write nowhere.
    assert send(settings, "producer", raw) == "TOPIC_AUTHORIZATION_FAILED"
    access.grant_pipeline(kafka, definition)
    assert send(settings, "producer", raw) == ""
    assert send(settings, "producer", valid) == "TOPIC_AUTHORIZATION_FAILED"
    assert not can_read(settings, "producer", raw, ingest)
    # The jobs read the raw topic under their own group, and write what they produce.
    assert can_read(settings, "flink", raw, ingest)
    assert not can_read(settings, "flink", raw, "some-other-group")
    assert send(settings, "flink", valid) == ""
    assert send(settings, "flink", raw) == "TOPIC_AUTHORIZATION_FAILED"
    # The sink reads its topic, never writes into the pipeline.
    assert send(settings, "connect", raw) == "TOPIC_AUTHORIZATION_FAILED"
    assert not can_read(settings, "connect", raw, sink.consumer_group)

    access.revoke_pipeline(kafka, definition)
    assert send(settings, "producer", raw) == "TOPIC_AUTHORIZATION_FAILED"


def test_no_generated_password_is_shown_logged_or_written_outside_the_secrets(secure_kafka):
    settings, up_lines = secure_kafka
    passwords = list(secrets.local_credentials(settings)["kafka"].values())
    status = subprocess.run(
        [str(Path(sys.executable).parent / "clicklib"), "stack", "status"],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "kafka" in status.stdout
    shown = [*up_lines, status.stdout, status.stderr, repr(settings)]
    for folder in ("logs", "conf", "run"):
        for path in (settings.home / folder).rglob("*"):
            if path.is_file():
                shown.append(path.read_text(errors="replace"))
    # The command lines of the running services, which any local user may read.
    shown += [" ".join(proc.cmdline()) for proc in process.stack_processes(settings)]
    assert any("kafka.Kafka" in text for text in shown) and any("SCRAM" in text for text in shown)
    for password in passwords:
        assert not any(password in text for text in shown)


def test_producing_where_the_producer_may_not_write_is_a_clear_error(secure_kafka):
    settings, _ = secure_kafka
    pipeline = Pipeline(dataclasses.replace(settings, namespace="refused_"))
    pipeline.kafka.create_topics(pipeline.definition.topics)  # and no `pipeline up`: nothing granted
    with pytest.raises(KafkaError) as refused:
        produce.produce_records(pipeline, generate(50, seed=3).records, show_progress=False)
    message = str(refused.value)
    assert pipeline.topic(RAW) in message and "authorization" in message.lower()
    assert "clicklib pipeline up" in message
