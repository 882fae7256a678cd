"""The local stack for integration tests: brought up once per session, reused if running.

Tests isolate themselves by unique topic, table and keyspace names. Tests that need a
second, broken stack (a taken port, a service that fails) build one in a temporary home
on free ports, sharing the already resolved jars.
"""

from __future__ import annotations

import socket
import uuid

import pytest

from clicklib.settings import Settings


@pytest.fixture
def unique_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def isolated_settings(tmp_path, settings: Settings) -> Settings:
    """A second stack's settings: its own home and free ports, the shared jar cache."""
    home = tmp_path / "stack"
    home.mkdir()
    (home / "jars").symlink_to(settings.home / "jars")
    ports = free_ports(10)
    return Settings(
        home=home,
        kafka_port=ports[0],
        kafka_controller_port=ports[1],
        cassandra_port=ports[2],
        cassandra_storage_port=ports[3],
        connect_port=ports[4],
        flink_rest_port=ports[5],
        flink_rpc_port=ports[6],
        sql_gateway_port=ports[7],
        flink_rest_backend_port=ports[8],
        sql_gateway_backend_port=ports[9],
        kafka_heap="256m",
        startup_timeout=120,
    )
