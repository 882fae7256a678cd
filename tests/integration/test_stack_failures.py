"""A stack that cannot start says why, by name, and leaves no process behind."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import time

import pytest
import requests

from clicklib import stack
from clicklib.exceptions import DependencyResolutionError, PortInUseError, ServiceStartError
from clicklib.stack import configs, jars, process, services, supervisor


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


def test_a_cluster_id_that_starts_with_a_dash_still_formats_the_storage(isolated_settings, monkeypatch):
    # About one new id in 64 starts with "-"; Kafka's formatter must not read it as an option.
    monkeypatch.setattr(services, "new_cluster_id", lambda: "-Zq3c1nXQy2h5mB1k0oQ7w")
    services.PROCESSES["kafka"].prepare(isolated_settings, process.find_java(isolated_settings))
    meta = (configs.data_dir(isolated_settings, "kafka") / "meta.properties").read_text()
    assert "cluster.id=-Zq3c1nXQy2h5mB1k0oQ7w" in meta


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


def wait_until(condition, timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not so after {timeout:.0f} s"
        time.sleep(0.5)
    return time.monotonic() - started


def bound(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def kafka_row(settings):
    return next(row for row in stack.status(settings) if row.service == "kafka")


def test_a_killed_service_comes_back_and_a_crash_loop_is_given_up_on(live_stack, isolated_settings):
    settings = dataclasses.replace(isolated_settings, crash_loop_exits=3)
    stack.up(settings, ["kafka"])
    try:
        # Killed once: the supervisor starts it again, and status counts the restart.
        os.kill(process.read_pid(settings.home / "run" / "kafka.pid"), signal.SIGKILL)
        wait_until(lambda: kafka_row(settings).healthy and kafka_row(settings).restarts == 1, 60)

        # Killed while its port is taken: every start fails, and after three exits it is left down.
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            os.kill(process.read_pid(settings.home / "run" / "kafka.pid"), signal.SIGKILL)
            wait_until(lambda: bound(squatter, settings.kafka_port), 10)  # before the supervisor's 2 s backoff
            squatter.listen()
            wait_until(lambda: kafka_row(settings).state == "crash-loop", 120)
        row = kafka_row(settings)
        assert not row.healthy
        assert "exited 3 times" in row.given_up and "clicklib stack up kafka" in row.given_up
        assert row.log_tail.strip()
        time.sleep(3)
        assert kafka_row(settings).state == "crash-loop"  # given up: no more attempts

        # Started by hand again, it runs and its history is cleared.
        assert stack.up(settings, ["kafka"])[0].healthy
        assert kafka_row(settings).restarts == 0
    finally:
        stack.down(settings)
    assert process.stack_processes(settings) == []


@pytest.mark.parametrize(
    ("guard", "service", "url", "path"),
    [
        ("flink-guard", "flink", "flink_rest_url", "/overview"),
        ("sql-gateway-guard", "sql-gateway", "sql_gateway_url", "/v1/info"),
    ],
)
def test_a_killed_web_guard_comes_back_and_still_guards(live_stack, guard, service, url, path):
    settings = live_stack
    killed = process.read_pid(services.PROCESSES[guard].pid_path(settings))
    os.kill(killed, signal.SIGKILL)

    def back() -> bool:
        row = next(row for row in stack.status(settings) if row.service == service)
        return row.healthy and process.read_pid(services.PROCESSES[guard].pid_path(settings)) not in (None, killed)

    wait_until(back, 60)
    base = getattr(settings, url)
    assert requests.get(f"{base}{path}", timeout=10).status_code == 200
    foreign = requests.get(f"{base}{path}", headers={"Origin": "http://attacker.example"}, timeout=10)
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign.headers


def test_a_supervision_that_crashes_is_started_again_and_still_heals(live_stack):
    """The supervision runs in a child of the supervisor's process: a crash of it (a native
    client library's segfault) is followed by a new one, which restarts what dies next."""
    import psutil

    settings = live_stack
    keeper = psutil.Process(process.read_pid(supervisor.pid_path(settings)))
    [crashed] = keeper.children()
    os.kill(crashed.pid, signal.SIGSEGV)

    def supervising() -> list[int]:
        return [child.pid for child in keeper.children() if child.status() != psutil.STATUS_ZOMBIE]

    wait_until(lambda: supervising() not in ([], [crashed.pid]), 10)
    assert "the supervision ended by itself (signal 11)" in (configs.log_dir(settings) / "supervisor.log").read_text()

    guard = "sql-gateway-guard"
    killed = process.read_pid(services.PROCESSES[guard].pid_path(settings))
    os.kill(killed, signal.SIGKILL)

    def back() -> bool:
        row = next(row for row in stack.status(settings) if row.service == "sql-gateway")
        return row.healthy and process.read_pid(services.PROCESSES[guard].pid_path(settings)) not in (None, killed)

    wait_until(back, 60)
