"""A stack that cannot start says why, by name, and leaves no process behind."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from clicklib import stack
from clicklib.exceptions import DependencyResolutionError, PortInUseError, ServiceStartError
from clicklib.stack import jars, process


def test_a_taken_port_stops_up_before_anything_starts(live_stack, isolated_settings):
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", isolated_settings.cassandra_port))
        squatter.listen()
        with pytest.raises(PortInUseError) as caught:
            stack.up(isolated_settings)
    message = str(caught.value)
    assert f"port {isolated_settings.cassandra_port}" in message
    assert "cassandra" in message
    assert process.stack_processes(isolated_settings) == []


def test_a_service_that_exits_is_named_with_its_log_and_cleaned_up(live_stack, isolated_settings):
    broken = dataclasses.replace(isolated_settings, connect_heap="not-a-heap-size")
    with pytest.raises(ServiceStartError) as caught:
        stack.up(broken, ["connect"])
    message = str(caught.value)
    assert caught.value.service == "connect"
    assert "connect exited during startup" in message
    assert "Invalid" in caught.value.log_tail  # the JVM's own complaint about -Xms
    # Kafka, started by the same call, was stopped again.
    assert process.stack_processes(broken) == []


def test_up_kafka_alone_on_other_ports_then_down_leaves_nothing(live_stack, isolated_settings):
    from confluent_kafka.admin import AdminClient

    rows = {row.service: row for row in stack.up(isolated_settings, ["kafka"])}
    assert rows["kafka"].healthy and rows["kafka"].port == isolated_settings.kafka_port
    metadata = AdminClient({"bootstrap.servers": isolated_settings.bootstrap_servers}).list_topics(timeout=10)
    assert [b.port for b in metadata.brokers.values()] == [isolated_settings.kafka_port]
    assert stack.down(isolated_settings) == ["kafka"]
    assert process.stack_processes(isolated_settings) == []


def test_an_unresolvable_artifact_is_named(tmp_path, monkeypatch, settings):
    poms = tmp_path / "poms"
    (poms / "kafka").mkdir(parents=True)
    (poms / "kafka" / "pom.xml").write_text(
        (jars.POMS / "kafka" / "pom.xml").read_text().replace("<version>4.1.1</version>", "<version>0.0.404</version>")
    )
    monkeypatch.setattr(jars, "POMS", poms)
    with pytest.raises(DependencyResolutionError) as caught:
        jars.resolve_maven(dataclasses.replace(settings, home=tmp_path / "home"), "kafka", log=lambda _: None)
    assert "org.apache.kafka:kafka_2.13:jar:0.0.404" in str(caught.value)
