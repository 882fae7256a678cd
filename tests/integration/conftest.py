"""The local stack for integration tests: brought up once per session, reused if running.

Tests isolate themselves by unique topic, table and keyspace names. Tests that need a
second, broken stack (a taken port, a service that fails) build one in a temporary home
on free ports, sharing the already resolved jars.
"""

from __future__ import annotations

import dataclasses
import socket
import uuid

import pytest

from clicklib import stack
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings, get_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def live_stack(settings: Settings):
    already_up = all(row.healthy for row in stack.status(settings))
    if not already_up:
        stack.up(settings, on_event=lambda name, event, detail: print(f"[stack] {name}: {event} {detail}"))
    yield settings
    # `make test` runs the notebooks (nbval) in this session under CLICKLIB_NAMESPACE; their
    # pipeline goes before the stack does. The default namespace is never purged.
    if settings.namespace:
        with Pipeline(settings) as pipeline:
            pipeline.down(purge=True)
    if not already_up:
        stack.down(settings)


@pytest.fixture
def namespaced_pipeline(live_stack: Settings):
    """A pipeline in a namespace of its own, purged afterwards (nothing is set up yet)."""
    with Pipeline(dataclasses.replace(live_stack, namespace=f"t{uuid.uuid4().hex[:8]}_")) as pipeline:
        yield pipeline
        pipeline.down(purge=True)


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
    ports = free_ports(8)
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
        kafka_heap="256m",
        startup_timeout=120,
    )
