"""One settings object for the library, the CLI, the notebooks and the tests.

Every value comes from a ``CLICKLIB_*`` environment variable, with defaults that
describe the local stack. Client addresses (bootstrap servers, URLs) are derived
from the service ports unless set explicitly, so changing a port moves both the
service and every client that talks to it, and setting an address points the
clients at an existing cluster instead.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clicklib.exceptions import SettingsError

ENV_PREFIX = "CLICKLIB_"


def _default_home() -> Path:
    # A checkout (editable install) keeps its state beside the code, where the
    # README and .gitignore expect it; an installed package falls back to ~.
    project_root = Path(__file__).resolve().parents[1]
    if (project_root / "pyproject.toml").is_file():
        return project_root / ".clickstack"
    return Path.home() / ".clickstack"


@dataclass(frozen=True)
class Settings:
    """Where every service lives and how the local stack runs it."""

    bind_host: str = "127.0.0.1"
    home: Path = field(default_factory=_default_home)

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    connect_port: int = 8083
    flink_rest_port: int = 8081
    flink_rpc_port: int = 6123
    sql_gateway_port: int = 8082

    # Explicit client addresses; empty means "derive from bind_host and port".
    bootstrap_servers: str = ""
    cassandra_hosts: str = ""
    connect_url: str = ""
    flink_rest_url: str = ""
    sql_gateway_url: str = ""
    cassandra_datacenter: str = "datacenter1"

    kafka_heap: str = "1g"
    connect_heap: str = "1g"
    cassandra_heap: str = "2g"
    flink_jobmanager_memory: str = "1g"
    flink_taskmanager_memory: str = "2g"
    sql_gateway_heap: str = "512m"
    flink_task_slots: int = 12

    java: str = ""
    startup_timeout: float = 240.0

    # The pipeline. A namespace prefixes every topic, the keyspace, job and connector names,
    # so that several pipelines (tests, experiments) share one cluster without colliding.
    namespace: str = ""
    # Addresses as seen from inside the cluster (Flink tasks, Connect workers); they differ
    # from the client addresses only when the services run in containers.
    flink_bootstrap_servers: str = ""
    connect_cassandra_hosts: str = ""
    raw_partitions: int = 3
    replication_factor: int = 1
    watermark_delay_seconds: int = 5
    idle_timeout: str = "30 s"
    checkpoint_interval: str = "10 s"
    join_state_ttl: str = "1 h"
    dedup_ttl: str = "1 h"
    flink_parallelism: int = 1
    alert_percent: int = 5

    def __post_init__(self) -> None:
        # Derived addresses are filled in once so every reader sees the same value.
        if not re.fullmatch(r"[a-z0-9_]*", self.namespace):
            raise SettingsError(
                f"{ENV_PREFIX}NAMESPACE={self.namespace!r} may hold only a-z, 0-9 and _ "
                "(it prefixes Kafka topics and the Cassandra keyspace)"
            )
        derived = {
            "bootstrap_servers": f"{self.bind_host}:{self.kafka_port}",
            "cassandra_hosts": self.bind_host,
            "connect_url": f"http://{self.bind_host}:{self.connect_port}",
            "flink_rest_url": f"http://{self.bind_host}:{self.flink_rest_port}",
            "sql_gateway_url": f"http://{self.bind_host}:{self.sql_gateway_port}",
        }
        for name, value in derived.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        for name, source in (
            ("flink_bootstrap_servers", "bootstrap_servers"),
            ("connect_cassandra_hosts", "cassandra_hosts"),
        ):
            if not getattr(self, name):
                object.__setattr__(self, name, getattr(self, source))
        object.__setattr__(self, "home", Path(self.home).expanduser().resolve())
        if self.flink_task_slots < 1:
            raise SettingsError(f"{ENV_PREFIX}FLINK_TASK_SLOTS must be at least 1, got {self.flink_task_slots}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``CLICKLIB_*`` variables (``os.environ`` by default)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        return cls(**values)

    @property
    def keyspace(self) -> str:
        return f"{self.namespace}clickstream"

    def topic(self, base: str) -> str:
        """A pipeline topic's name in this namespace ("clickstream" -> "t1_clickstream")."""
        return f"{self.namespace}{base}"

    @property
    def cassandra_contact_points(self) -> list[str]:
        return [h.strip() for h in self.cassandra_hosts.split(",") if h.strip()]

    @property
    def ports(self) -> dict[str, int]:
        """Every port the local stack binds, keyed by what uses it."""
        return {
            "kafka": self.kafka_port,
            "kafka-controller": self.kafka_controller_port,
            "cassandra": self.cassandra_port,
            "cassandra-storage": self.cassandra_storage_port,
            "connect": self.connect_port,
            "flink": self.flink_rest_port,
            "flink-rpc": self.flink_rpc_port,
            "sql-gateway": self.sql_gateway_port,
        }


def _coerce(name: str, annotation: object, raw: str) -> object:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(
            f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number; set it to a {kind} or unset it"
        ) from None
    if kind == "Path":
        return Path(raw)
    return raw


def get_settings() -> Settings:
    """Settings as the environment says now."""
    return Settings.from_env()
