"""One settings object for the library, the CLI, the notebooks and the tests.

Every value comes from a ``CLICKLIB_*`` environment variable, with defaults that
describe the local stack. Client addresses (bootstrap servers, URLs) are derived
from the service ports unless set explicitly, so changing a port moves both the
service and every client that talks to it, and setting an address points the
clients at an existing cluster instead.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from clicklib.events import DateRule
from clicklib.exceptions import SettingsError

ENV_PREFIX = "CLICKLIB_"
HOST = re.compile(r"[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]+")
PORT_FIELDS = (
    "kafka_port",
    "kafka_controller_port",
    "cassandra_port",
    "cassandra_storage_port",
    "connect_port",
    "flink_rest_port",
    "flink_rpc_port",
    "sql_gateway_port",
    "flink_rest_backend_port",
    "sql_gateway_backend_port",
    "collector_port",
    "collector_udp_port",
    "schema_registry_port",
    "lab_port",
    "dashboard_port",
)
# Where Apicurio Registry serves the Confluent Schema Registry API.
REGISTRY_API_PATH = "/apis/ccompat/v7"
URL_FIELDS = ("connect_url", "flink_rest_url", "sql_gateway_url")
# Durations are written the way Flink reads them ("30 s", "500 ms", "2 min"), since the SQL
# scripts take them verbatim.
DURATION_FIELDS = (
    "date_max_ahead",
    "idle_timeout",
    "checkpoint_interval",
    "join_state_ttl",
    "dedup_ttl",
    "crash_loop_window",
    "stall_timeout",
    "topic_retention",
    "collector_delivery_timeout",
)
KAFKA_PROTOCOLS = ("", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_MECHANISMS = ("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|sec|min|h|d)\s*")
DURATION_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "h": 3600, "d": 86400}


def _var(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def parse_duration(text: str, variable: str) -> float:
    """Seconds in a duration such as "30 s", "500 ms", "2 min"; an error names ``variable``."""
    match = DURATION.fullmatch(text)
    if match is None:
        raise SettingsError(
            f"{variable}={text!r} is not a duration; write a number and a unit (ms, s, min, h, d), like '30 s'"
        )
    return float(match.group(1)) * DURATION_UNITS[match.group(2)]


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
    # The secure profile: every service of the local stack asks for a password (see secrets.py).
    secure: bool = False
    # In the secure profile each service starts under a Landlock ruleset that lets it read its
    # own secret files only (stack/sandbox.py); off only where the kernel has no Landlock.
    sandbox: bool = True
    home: Path = field(default_factory=_default_home)

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    connect_port: int = 8083
    flink_rest_port: int = 8081
    flink_rpc_port: int = 6123
    sql_gateway_port: int = 8082
    # Flink's REST API and the SQL Gateway listen here, behind the web guard that owns the two
    # ports above (stack/web_guard.py); 0 means the public port plus 100.
    flink_rest_backend_port: int = 0
    sql_gateway_backend_port: int = 0
    # The collector: HTTP (events from browsers) and UDP (datagrams of JSON events).
    collector_port: int = 8090
    collector_udp_port: int = 8091
    # The schema registry (Apicurio Registry, speaking the Confluent Schema Registry API).
    schema_registry_port: int = 8085
    # JupyterLab over the notebooks (`clicklib lab`) and the live dashboard (`clicklib dashboard`):
    # not services of the stack, started by hand, and on loopback only.
    lab_port: int = 8888
    dashboard_port: int = 8866

    # Explicit client addresses; empty means "derive from bind_host and port".
    bootstrap_servers: str = ""
    cassandra_hosts: str = ""
    connect_url: str = ""
    flink_rest_url: str = ""
    sql_gateway_url: str = ""
    # Any Confluent-compatible registry: its base URL, which for Apicurio ends in /apis/ccompat/v7.
    schema_registry_url: str = ""
    cassandra_datacenter: str = "datacenter1"

    # How clients log in (see secrets.py). Empty: as the local stack's profile needs (no login,
    # or the secure profile's generated credentials). Passwords never appear in a repr.
    kafka_security_protocol: str = ""  # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
    kafka_sasl_mechanism: str = ""  # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
    kafka_username: str = ""
    kafka_password: str = field(default="", repr=False)
    kafka_ssl_ca: str = ""  # PEM files
    kafka_ssl_certificate: str = ""
    kafka_ssl_key: str = ""
    cassandra_username: str = ""
    cassandra_password: str = field(default="", repr=False)
    cassandra_ssl_ca: str = ""  # a PEM file: turns TLS on for the Python sessions
    connect_username: str = ""
    connect_password: str = field(default="", repr=False)

    kafka_heap: str = "1g"
    connect_heap: str = "1g"
    schema_registry_heap: str = "256m"
    cassandra_heap: str = "2g"
    flink_jobmanager_memory: str = "1g"
    flink_taskmanager_memory: str = "2g"
    sql_gateway_heap: str = "512m"
    flink_task_slots: int = 12

    java: str = ""
    startup_timeout: float = 240.0
    # One timeout policy for every client request (Kafka admin, Cassandra, the REST APIs);
    # health probes use the shorter one so a dead service is reported quickly.
    request_timeout: float = 30.0
    probe_timeout: float = 5.0

    # The pipeline. A namespace prefixes every topic, the keyspace, job and connector names,
    # so that several pipelines (tests, experiments) share one cluster without colliding.
    namespace: str = ""
    # Addresses as seen from inside the cluster (Flink tasks, Connect workers); they differ
    # from the client addresses only when the services run in containers.
    flink_bootstrap_servers: str = ""
    connect_cassandra_hosts: str = ""
    flink_schema_registry_url: str = ""
    connect_schema_registry_url: str = ""
    # The folder of clicklib's secrets (<home>/secrets) as the Connect worker sees it: the sinks
    # read their Cassandra password from there. Empty: the same path.
    connect_secrets_dir: str = ""
    raw_partitions: int = 3
    replication_factor: int = 1
    watermark_delay_seconds: int = 5
    # Longer than a supervised recovery takes (a service back within 60 s, its jobs within 120 s):
    # a partition silent because its writer is restarting must not be taken for a quiet one, or the
    # others lift the watermark past its backlog and those events are counted late.
    idle_timeout: str = "3 min"
    checkpoint_interval: str = "10 s"
    join_state_ttl: str = "1 h"
    dedup_ttl: str = "1 h"
    flink_parallelism: int = 1
    alert_percent: int = 5
    # A plausible event time: not before this day (UTC), at most this far ahead of the clock.
    date_earliest: str = "2000-01-01"
    date_max_ahead: str = "1 h"

    # Self-healing: the supervisor gives a service up after this many exits within the window.
    crash_loop_exits: int = 5
    crash_loop_window: str = "10 min"
    # A process that is alive but has not answered its health check for this long (frozen, or
    # wedged like a TaskManager its JobManager no longer knows) is killed and started again; a
    # connector that is unassigned, or that has lag and commits nothing, is restarted; a job
    # whose checkpoints stop completing is resumed from its newest one. Longer than a pause to
    # ride out (a GC pause, a process stopped for up to 60 s), shorter than a user waits.
    stall_timeout: str = "90 s"
    # Disk: each process log is rotated past log_max_mb, keeping log_keep old files; topics keep
    # messages this long and at most this many MB per partition; tables may expire rows
    # ("events_by_day=90 d, user_activity=7 d"; empty: rows are kept for good).
    log_max_mb: int = 50
    log_keep: int = 3
    # Free space on each filesystem the stack writes to (stack/disk.py): below disk_warn_mb,
    # `stack status` and the dashboard warn; below disk_refuse_mb no event is taken in (the
    # collector answers 503, produce stops), leaving room for what Kafka holds to flow on. 0: off.
    disk_warn_mb: int = 2048
    disk_refuse_mb: int = 512
    topic_retention: str = "7 d"
    topic_retention_mb: int = 1024
    cassandra_ttl: str = ""

    # The collector's bounds and manners. Site origins (comma-separated, like
    # https://shop.example) may read its answers; any page may send. A body or datagram holds
    # at most collector_max_kb; a request at most collector_max_events events; at most
    # collector_queue_limit events wait for Kafka at once (then 503). A request waits for Kafka at
    # most collector_delivery_timeout. Anonymising zeroes the last octet of a client's IPv4
    # address (the last 80 bits of IPv6).
    collector_origins: str = ""
    # Where the collector listens. It runs no code a client sends, so unlike the other services it
    # may listen beyond this machine without the secure profile: websites' visitors are its clients.
    collector_bind_host: str = "127.0.0.1"
    collector_anonymise_ip: bool = False
    collector_max_kb: int = 256
    collector_max_events: int = 500
    collector_queue_limit: int = 50_000
    collector_delivery_timeout: str = "60 s"
    # The proxies in front of the collector (IP addresses or CIDR networks, comma-separated): when
    # one of them is the TCP peer, the client's address is read from X-Forwarded-For, right to
    # left past the trusted hops. Empty: the peer is the client, and X-Forwarded-For is ignored.
    collector_trusted_proxies: str = ""
    # Slow clients: a connection must send a whole request head within the header timeout of
    # connecting or of its last answer (so an idle keep-alive connection is closed after it too),
    # and a /collect body within the body timeout; past max connections, a new one is closed at once.
    collector_header_timeout_seconds: float = 10.0
    collector_body_timeout_seconds: float = 30.0
    collector_max_connections: int = 1000

    # The Parquet lake (ksql/19_lake.sql writes it, clicklib.lake and clicklib.batch read it): a
    # folder (a path or a file:// URL) or an s3a:// URL. Empty: <home>/lake. Flink writes where
    # flink_lake_url says, the same place unless Flink runs in a container. The S3 keys are the
    # login of Flink and Spark to the bucket; empty: the machine's own (instance role, ~/.aws).
    lake_url: str = ""
    flink_lake_url: str = ""
    lake_s3_endpoint: str = ""
    lake_s3_access_key: str = ""
    lake_s3_secret_key: str = field(default="", repr=False)
    # Spark (clicklib.batch): local mode on this machine's cores unless a cluster's master is given.
    spark_master: str = "local[*]"
    spark_driver_memory: str = "2g"

    def __post_init__(self) -> None:
        # Everything is checked here, when settings are read, so a bad value fails at once
        # naming its variable instead of deep inside whatever uses it first.
        if not re.fullmatch(r"[a-z0-9_]*", self.namespace):
            raise SettingsError(
                f"{ENV_PREFIX}NAMESPACE={self.namespace!r} may hold only a-z, 0-9 and _ "
                "(it prefixes Kafka topics and the Cassandra keyspace)"
            )
        if not HOST.fullmatch(self.bind_host):
            raise SettingsError(
                f"{ENV_PREFIX}BIND_HOST={self.bind_host!r} is not a host name or IP address; "
                "the local stack binds 127.0.0.1 by default"
            )
        if not HOST.fullmatch(self.collector_bind_host):
            raise SettingsError(
                f"{ENV_PREFIX}COLLECTOR_BIND_HOST={self.collector_bind_host!r} is not a host name or IP address"
            )
        if not self.secure and not is_loopback(self.bind_host):
            # Without passwords, whoever reaches a port owns the pipeline: Flink and the SQL
            # Gateway run code they are sent. Only this machine may reach them.
            raise SettingsError(
                f"{ENV_PREFIX}BIND_HOST={self.bind_host!r} would open the stack to other machines, "
                "and without the secure profile no service asks for a password; bind 127.0.0.1, "
                f"or turn on the secure profile with {ENV_PREFIX}SECURE=1"
            )
        self._check_client_security()
        for backend, public in (
            ("flink_rest_backend_port", "flink_rest_port"),
            ("sql_gateway_backend_port", "sql_gateway_port"),
        ):
            if not getattr(self, backend):
                object.__setattr__(self, backend, getattr(self, public) + 100)
        for name in PORT_FIELDS:
            port = getattr(self, name)
            if not 1 <= port <= 65535:
                raise SettingsError(f"{_var(name)}={port} is not a port; use a number from 1 to 65535")
        taken: dict[int, str] = {}
        for name in PORT_FIELDS:
            other = taken.setdefault(getattr(self, name), name)
            if other != name:
                # A backend port is derived (public + 100) unless set: say so, it may not be obvious.
                raise SettingsError(
                    f"{_var(other)} and {_var(name)} are both {getattr(self, name)}; "
                    "each service needs a port of its own (a backend port is its public port + 100 unless set)"
                )
        for name in DURATION_FIELDS:
            parse_duration(getattr(self, name), _var(name))
        for name in ("startup_timeout", "request_timeout", "probe_timeout"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{_var(name)}={getattr(self, name)} must be a positive number of seconds")
        for name in ("collector_header_timeout_seconds", "collector_body_timeout_seconds"):
            # Not infinity either (nor NaN, which no comparison holds for): it is the bound on a slow client.
            if not 0 < getattr(self, name) < float("inf"):
                raise SettingsError(f"{_var(name)}={getattr(self, name)} must be a positive number of seconds")
        for name, minimum in (
            ("flink_task_slots", 1),
            ("raw_partitions", 1),
            ("replication_factor", 1),
            ("flink_parallelism", 1),
            ("watermark_delay_seconds", 0),
            ("alert_percent", 0),
            ("crash_loop_exits", 1),
            ("log_max_mb", 1),
            ("log_keep", 1),
            ("topic_retention_mb", 1),
            ("collector_max_kb", 1),
            ("collector_max_events", 1),
            ("collector_queue_limit", 1),
            ("collector_max_connections", 1),
            ("disk_warn_mb", 0),
            ("disk_refuse_mb", 0),
        ):
            if getattr(self, name) < minimum:
                raise SettingsError(f"{_var(name)} must be at least {minimum}, got {getattr(self, name)}")
        if self.disk_warn_mb < self.disk_refuse_mb:
            raise SettingsError(
                f"{_var('disk_warn_mb')}={self.disk_warn_mb} is below {_var('disk_refuse_mb')}={self.disk_refuse_mb}: "
                "the warning must come before the refusal"
            )
        # Derived addresses are filled in once so every reader sees the same value.
        derived = {
            "bootstrap_servers": f"{self.bind_host}:{self.kafka_port}",
            "cassandra_hosts": self.bind_host,
            "connect_url": f"http://{self.bind_host}:{self.connect_port}",
            "flink_rest_url": f"http://{self.code_host}:{self.flink_rest_port}",
            "sql_gateway_url": f"http://{self.code_host}:{self.sql_gateway_port}",
            # The local registry has no login, so like Flink it stays on this machine.
            "schema_registry_url": f"http://{self.code_host}:{self.schema_registry_port}{REGISTRY_API_PATH}",
        }
        for name, value in derived.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        for name, source in (
            ("flink_bootstrap_servers", "bootstrap_servers"),
            ("connect_cassandra_hosts", "cassandra_hosts"),
            ("flink_schema_registry_url", "schema_registry_url"),
            ("connect_schema_registry_url", "schema_registry_url"),
        ):
            if not getattr(self, name):
                object.__setattr__(self, name, getattr(self, source))
        for name in URL_FIELDS:
            url = getattr(self, name)
            if not re.fullmatch(r"https?://[^\s/:]+(:\d{1,5})?/?", url):
                raise SettingsError(f"{_var(name)}={url!r} is not a URL; write it like http://host:port")
        for name in ("schema_registry_url", "flink_schema_registry_url", "connect_schema_registry_url"):
            if not re.fullmatch(r"https?://[^\s/:]+(:\d{1,5})?(/[^\s?#']*)?", getattr(self, name)):
                raise SettingsError(
                    f"{_var(name)}={getattr(self, name)!r} is not a URL; write it like "
                    f"http://host:port{REGISTRY_API_PATH} (Apicurio) or https://host:port (Confluent)"
                )
        for name in ("bootstrap_servers", "flink_bootstrap_servers"):
            for address in getattr(self, name).split(","):
                if not re.fullmatch(r"\s*[^\s:,]+:\d{1,5}\s*", address):
                    raise SettingsError(
                        f"{_var(name)}={getattr(self, name)!r}: {address.strip()!r} is not host:port; "
                        "write it like broker-1:9092,broker-2:9092"
                    )
        for name in ("cassandra_hosts", "connect_cassandra_hosts"):
            hosts = [h.strip() for h in getattr(self, name).split(",")]
            if not all(HOST.fullmatch(h) for h in hosts):
                raise SettingsError(f"{_var(name)}={getattr(self, name)!r} is not a comma-separated list of hosts")
        self.table_ttls  # noqa: B018 - parsed here so a bad value fails when settings are read
        self.date_rule  # noqa: B018 - likewise
        self.collector_trusted_networks  # noqa: B018 - likewise
        object.__setattr__(self, "home", Path(self.home).expanduser().resolve())
        self._check_lake()

    def _check_lake(self) -> None:
        object.__setattr__(self, "lake_url", _lake_url(self.lake_url or str(self.home / "lake"), "lake_url"))
        object.__setattr__(self, "flink_lake_url", _lake_url(self.flink_lake_url or self.lake_url, "flink_lake_url"))
        if bool(self.lake_s3_access_key) != bool(self.lake_s3_secret_key):
            raise SettingsError(f"set both {_var('lake_s3_access_key')} and {_var('lake_s3_secret_key')}, or neither")
        if self.lake_s3_endpoint and not re.fullmatch(r"https?://[^\s/:']+(:\d{1,5})?/?", self.lake_s3_endpoint):
            raise SettingsError(
                f"{_var('lake_s3_endpoint')}={self.lake_s3_endpoint!r} is not a URL; write it like https://host:port"
            )
        if not re.fullmatch(r"local(\[(\d+|\*)\])?|(spark|k8s)://[^\s']+|yarn", self.spark_master):
            raise SettingsError(
                f"{_var('spark_master')}={self.spark_master!r} is not a Spark master; write local[*] (this machine), "
                "spark://host:7077, k8s://https://host:port or yarn"
            )
        if not re.fullmatch(r"\d+[kmgt]", self.spark_driver_memory.lower()):
            raise SettingsError(
                f"{_var('spark_driver_memory')}={self.spark_driver_memory!r} is not an amount of memory, like 2g"
            )

    def _check_client_security(self) -> None:
        if self.kafka_security_protocol not in KAFKA_PROTOCOLS:
            raise SettingsError(
                f"{_var('kafka_security_protocol')}={self.kafka_security_protocol!r} is not a Kafka security "
                f"protocol; choose one of {', '.join(p for p in KAFKA_PROTOCOLS if p)}"
            )
        if self.kafka_sasl_mechanism not in KAFKA_MECHANISMS:
            raise SettingsError(
                f"{_var('kafka_sasl_mechanism')}={self.kafka_sasl_mechanism!r} is not a SASL mechanism clicklib "
                f"speaks; choose one of {', '.join(m for m in KAFKA_MECHANISMS if m)}"
            )
        if bool(self.kafka_username) != bool(self.kafka_password):
            raise SettingsError(f"set both {_var('kafka_username')} and {_var('kafka_password')}, or neither")
        if self.kafka_username and "SASL" not in self.kafka_security_protocol:
            raise SettingsError(
                f"{_var('kafka_username')} is set, so {_var('kafka_security_protocol')} must be SASL_SSL or "
                "SASL_PLAINTEXT for the login to be used"
            )
        for user, password in (("cassandra_username", "cassandra_password"), ("connect_username", "connect_password")):
            if bool(getattr(self, user)) != bool(getattr(self, password)):
                raise SettingsError(f"set both {_var(user)} and {_var(password)}, or neither")
        for name in ("kafka_ssl_ca", "kafka_ssl_certificate", "kafka_ssl_key", "cassandra_ssl_ca"):
            path = getattr(self, name)
            if path and not Path(path).expanduser().is_file():
                raise SettingsError(f"{_var(name)}={path!r} is not a file; give the path of a PEM file")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``CLICKLIB_*`` variables (``os.environ`` by default)."""
        environ = os.environ if environ is None else environ
        settings_file = environ.get(f"{ENV_PREFIX}SETTINGS_FILE", "")
        if settings_file:
            # The file holds defaults; a variable set in the environment wins over it.
            environ = {**read_settings_file(Path(settings_file)), **environ}
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        return cls(**values)

    @property
    def idle_timeout_seconds(self) -> float:
        return parse_duration(self.idle_timeout, _var("idle_timeout"))

    @property
    def table_ttls(self) -> dict[str, int]:
        """Seconds each table keeps a row, from CLICKLIB_CASSANDRA_TTL ("table=duration, ...")."""
        ttls = {}
        for item in filter(None, (part.strip() for part in self.cassandra_ttl.split(","))):
            table, _, duration = item.partition("=")
            if not re.fullmatch(r"[a-z_]+", table.strip()) or not duration:
                raise SettingsError(
                    f"{_var('cassandra_ttl')}={self.cassandra_ttl!r}: {item!r} is not table=duration; "
                    "write it like 'events_by_day=90 d, user_activity=7 d'"
                )
            ttls[table.strip()] = int(parse_duration(duration, _var("cassandra_ttl")))
        return ttls

    @property
    def date_rule(self) -> DateRule:
        """The plausible event times: the same rule the pipeline's SQL check applies."""
        try:
            earliest = datetime.strptime(self.date_earliest, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise SettingsError(
                f"{_var('date_earliest')}={self.date_earliest!r} is not a date; write it like 2000-01-01"
            ) from None
        ahead = parse_duration(self.date_max_ahead, _var("date_max_ahead"))
        return DateRule(int(earliest.timestamp() * 1000), int(ahead * 1000))

    @property
    def topic_retention_seconds(self) -> float:
        return parse_duration(self.topic_retention, _var("topic_retention"))

    @property
    def crash_loop_window_seconds(self) -> float:
        return parse_duration(self.crash_loop_window, _var("crash_loop_window"))

    @property
    def stall_timeout_seconds(self) -> float:
        return parse_duration(self.stall_timeout, _var("stall_timeout"))

    @property
    def collector_delivery_timeout_seconds(self) -> float:
        return parse_duration(self.collector_delivery_timeout, _var("collector_delivery_timeout"))

    @property
    def collector_trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks of CLICKLIB_COLLECTOR_TRUSTED_PROXIES (an address is a network of one)."""
        networks = []
        for entry in filter(None, (part.strip() for part in self.collector_trusted_proxies.split(","))):
            try:
                # strict: "10.0.0.5/8" is refused, not read as all of 10.0.0.0/8 (trusting a whole
                # network by a typo would let any of its machines name any client address).
                networks.append(ipaddress.ip_network(entry, strict=True))
            except ValueError as exc:
                raise SettingsError(
                    f"{_var('collector_trusted_proxies')}={self.collector_trusted_proxies!r}: {entry!r} is not an "
                    f"IP address or network ({exc}); write them like 10.0.0.5, 10.1.0.0/16, fd00::/8"
                ) from None
        return tuple(networks)

    @property
    def checkpoint_interval_seconds(self) -> float:
        return parse_duration(self.checkpoint_interval, _var("checkpoint_interval"))

    def to_env(self) -> dict[str, str]:
        """These settings as ``CLICKLIB_*`` variables, for a process that must see the same ones."""
        return {_var(f.name): str(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def code_host(self) -> str:
        """Where Flink and the SQL Gateway listen: they run what they are sent and ask for no
        login, so they stay on this machine even when the secure profile binds the others wider."""
        return self.bind_host if is_loopback(self.bind_host) else "127.0.0.1"

    @property
    def keyspace(self) -> str:
        return f"{self.namespace}clickstream"

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
            "flink-backend": self.flink_rest_backend_port,
            "sql-gateway-backend": self.sql_gateway_backend_port,
            "collector": self.collector_port,
            "collector-udp": self.collector_udp_port,
            "schema-registry": self.schema_registry_port,
        }

    @property
    def flink_rest_backend_url(self) -> str:
        """Flink's REST API itself, behind the web guard, on mutual TLS: for the stack's own probes."""
        return f"https://{self.code_host}:{self.flink_rest_backend_port}"

    @property
    def collector_url(self) -> str:
        """The collector's HTTP side, where browsers send events (the UDP bridge is on collector_udp_port)."""
        host = "127.0.0.1" if self.collector_bind_host in ("0.0.0.0", "::") else self.collector_bind_host
        return f"http://{host}:{self.collector_port}"

    @property
    def sql_gateway_backend_url(self) -> str:
        return f"https://{self.code_host}:{self.sql_gateway_backend_port}"


def _lake_url(value: str, name: str) -> str:
    """The lake's location as a URL without a trailing slash: a path becomes a file:// URL."""
    value = value.strip().rstrip("/")
    if "'" in value or not value:
        raise SettingsError(f"{_var(name)}={value!r} is not a folder or URL (it may not hold a quote)")
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if not scheme:
        return Path(value).expanduser().resolve().as_uri()
    if scheme in ("s3", "s3n"):
        raise SettingsError(f"{_var(name)}={value!r}: write s3a://, the S3 scheme of Flink and Spark")
    if scheme not in ("file", "s3a") or not re.fullmatch(r"[a-z0-9]+://[^\s]+", value):
        raise SettingsError(f"{_var(name)}={value!r} is not a folder, a file:// URL or an s3a:// URL")
    return value


def read_settings_file(path: Path) -> dict[str, str]:
    """``CLICKLIB_*=value`` lines from a file (blank lines and # comments skipped)."""
    variable = f"{ENV_PREFIX}SETTINGS_FILE"
    try:
        text = path.expanduser().read_text()
    except OSError as exc:
        raise SettingsError(f"{variable}={str(path)!r} cannot be read: {exc.strerror}") from None
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.removeprefix("export ").partition("=")
        name = name.strip()
        if not equals or not name.startswith(ENV_PREFIX):
            # The line itself is not shown: it may hold a password.
            raise SettingsError(
                f"{path}, line {number}: expected CLICKLIB_NAME=value (a line that sets a CLICKLIB_* variable)"
            )
        values[name] = value.strip().strip("'\"")
    return values


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (localhost, 127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def _coerce(name: str, annotation: object, raw: str) -> object:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if kind == "bool":
        if raw.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            return raw.strip().lower() in TRUE_WORDS
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a yes or no; write 1 or 0")
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
