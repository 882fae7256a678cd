"""Health probes: a service is healthy only when a real request to it succeeds.

Each probe talks to its service through the same client the pipeline uses, with the short
``probe_timeout``, and turns any failure into a one-line reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from clicklib.cassandra import refused_login, session_security
from clicklib.connect import ConnectClient
from clicklib.exceptions import ClicklibError, SettingsError
from clicklib.flink import FlinkClient
from clicklib.secrets import cassandra_login, connect_login, flink_login, kafka_client_config
from clicklib.settings import Settings
from clicklib.sql_gateway import SqlGatewayClient
from clicklib.stack.rest_tls import rest_tls

CASSANDRA_SINK_CLASS = "io.clicklib.connect.cassandra.CassandraSinkConnector"


@dataclass(frozen=True)
class Probe:
    healthy: bool
    detail: str
    # It answers, and what it answers shows it will not come right by itself (a TaskManager its
    # JobManager does not list): no pause to ride out, so the supervisor acts sooner.
    stuck: bool = False


def _reason(exc: ClicklibError) -> str:
    """The failure without the advice on how to start the stack, which status shows anyway."""
    return str(exc).split("; start it with")[0].split(" while ")[-1][:160]


def kafka(settings: Settings) -> Probe:
    from confluent_kafka.admin import AdminClient

    # log_level 0 keeps librdkafka's connection-refused chatter out of the terminal
    # while the broker is still starting.
    try:
        login = kafka_client_config(settings, "admin")
    except SettingsError as exc:
        return Probe(False, str(exc)[:160])
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 0, **login})
    try:
        metadata = admin.list_topics(timeout=settings.probe_timeout)
    except Exception as exc:  # the client raises KafkaException and friends
        return Probe(False, f"metadata request: {str(exc)[:120]}")
    if not metadata.brokers:
        return Probe(False, "metadata lists no broker")
    return Probe(True, f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)")


def cassandra(settings: Settings) -> Probe:
    from cassandra.cluster import Cluster, NoHostAvailable

    try:
        login = cassandra_login(settings, "admin")
    except SettingsError as exc:
        return Probe(False, str(exc)[:160])
    cluster = Cluster(
        settings.cassandra_contact_points,
        port=settings.cassandra_port,
        connect_timeout=settings.probe_timeout,
        control_connection_timeout=settings.probe_timeout,
        **session_security(login, settings.cassandra_ssl_ca),
    )
    previous = logging.getLogger("cassandra").level
    # The driver warns about every failed connection attempt during startup.
    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local", timeout=10).one()
        return Probe(True, f"Cassandra {row.release_version}")
    except NoHostAvailable as exc:
        refused = refused_login(exc)
        if refused and settings.secure and _default_role_answers(settings):
            # On its first start the node knows only its default role: that is as healthy as it
            # gets until clicklib's roles are made (access.secure_cassandra).
            return Probe(True, "answers CQL (clicklib's roles not made yet)")
        return Probe(False, f"CQL: {refused or 'no host answers'}")
    except Exception as exc:  # the driver raises many unrelated types while a node starts
        return Probe(False, f"CQL: {str(exc)[:120]}")
    finally:
        cluster.shutdown()
        logging.getLogger("cassandra").setLevel(previous)


def _default_role_answers(settings: Settings) -> bool:
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    from clicklib.access import default_superuser_login

    cluster = Cluster(
        settings.cassandra_contact_points,
        port=settings.cassandra_port,
        connect_timeout=settings.probe_timeout,
        auth_provider=PlainTextAuthProvider(*default_superuser_login(settings)),
    )
    try:
        cluster.connect()
        return True
    except Exception:  # refused, or not answering: either way not a node waiting for clicklib
        return False
    finally:
        cluster.shutdown()


def connect(settings: Settings) -> Probe:
    try:
        client = ConnectClient(settings.connect_url, settings.probe_timeout, auth=connect_login(settings))
    except SettingsError as exc:
        return Probe(False, str(exc)[:160])
    try:
        plugins = client.plugins()
    except ClicklibError as exc:
        return Probe(False, f"GET /connector-plugins: {_reason(exc)}")
    finally:
        client.close()
    if any(p.get("class") == CASSANDRA_SINK_CLASS for p in plugins):
        return Probe(True, "Cassandra sink plugin loaded")
    return Probe(False, f"{CASSANDRA_SINK_CLASS} not among {len(plugins)} plugins")


def collector(settings: Settings) -> Probe:
    """The collector answers /health, and reaches Kafka."""
    try:
        answer = requests.get(f"{settings.collector_url}/health", timeout=settings.probe_timeout)
        state = answer.json()
    except (requests.RequestException, ValueError) as exc:
        return Probe(False, f"GET /health: {str(exc)[:120]}")
    if answer.status_code != 200:
        return Probe(
            False,
            f"refuses events: {state['refusing']}" if state.get("refusing") else f"Kafka {state.get('kafka', '?')}",
        )
    topic = state.get("topic", "?")
    waiting = "" if state.get("topic_exists") else " (not created yet: clicklib pipeline up)"
    return Probe(True, f"into {topic}{waiting}, {state.get('in_flight', 0)} event(s) in flight")


def collector_answers(settings: Settings) -> Probe:
    """The collector answers /health, whether or not Kafka takes its events."""
    try:
        answer = requests.get(f"{settings.collector_url}/health", timeout=settings.probe_timeout)
    except requests.RequestException as exc:
        return Probe(False, f"GET /health: {str(exc)[:120]}")
    return Probe(True, f"answers /health (HTTP {answer.status_code})")


def _backend_tls(settings: Settings, url: str) -> tuple[str, str] | None:
    """The client key for a backend port (https: mutual TLS), none for a public one."""
    if not url.startswith("https://"):
        return None
    tls = rest_tls(settings)
    return str(tls.identity), str(tls.certificate)


def _guard_login(settings: Settings, url: str) -> tuple[str, str] | None:
    """The login a public port's web guard asks for (secure profile); a backend port takes the key."""
    return None if url.startswith("https://") else flink_login(settings)


def _ask_flink(settings: Settings, url: str, path: str, read: Callable[[FlinkClient], Any]) -> Any:
    """What ``read`` gets from Flink's REST API at ``url``, or why it could not be had (a str)."""
    try:
        login = _guard_login(settings, url)
    except SettingsError as exc:  # a secure stack that has not made its logins yet
        return str(exc)[:160]
    client = FlinkClient(url, settings.probe_timeout, auth=login, tls=_backend_tls(settings, url))
    try:
        return read(client)
    except ClicklibError as exc:
        return f"GET {path}: {_reason(exc)}"
    finally:
        client.close()


def flink_overview(settings: Settings, url: str) -> dict | str:
    """Flink's /overview at ``url`` as a dict, or why it could not be had."""
    return _ask_flink(settings, url, "/overview", FlinkClient.overview)


def flink_jobmanager(settings: Settings) -> Probe:
    """The JobManager's REST API on its backend port, behind the web guard."""
    overview = flink_overview(settings, settings.flink_rest_backend_url)
    if isinstance(overview, str):
        return Probe(False, overview)
    return Probe(True, f"Flink {overview.get('flink-version', '?')} REST answers")


def _cluster(overview: dict | str) -> Probe:
    if isinstance(overview, str):
        return Probe(False, overview)
    managers = overview.get("taskmanagers", 0)
    free = overview.get("slots-available", 0)
    total = overview.get("slots-total", 0)
    detail = f"{managers} taskmanager(s), {free}/{total} slots free, {overview.get('jobs-running', 0)} job(s) running"
    return Probe(managers >= 1 and free >= 1, detail)


# The TaskManager answers its JobManager's heartbeat every 5 s (configs.flink_config): one not
# heard from for three of them is frozen or cut off, even while the JobManager still lists it.
TASKMANAGER_SILENT_AFTER_MS = 15_000


def taskmanager_heartbeat(settings: Settings, url: str) -> Probe:
    """Whether the stack's TaskManager is registered with the JobManager at ``url`` and answers
    its heartbeats: what a frozen or wedged TaskManager fails, while a busy one passes."""
    from clicklib.stack.configs import TASKMANAGER_ID

    managers = _ask_flink(settings, url, "/taskmanagers", FlinkClient.taskmanagers)
    if isinstance(managers, str):
        return Probe(False, managers)
    ours = next((m for m in managers if m.get("id") == TASKMANAGER_ID), None)
    if ours is None:
        return Probe(False, f"{TASKMANAGER_ID} is not registered with the JobManager", stuck=True)
    # Flink names the field "timeSinceLastHeartbeat" but gives the epoch ms of the last one: 0
    # until the first, which comes within a heartbeat interval of registering.
    last_ms = ours.get("timeSinceLastHeartbeat", 0)
    if not last_ms:
        return Probe(False, f"{TASKMANAGER_ID} registered, its first heartbeat not answered yet")
    silent_ms = time.time() * 1000 - last_ms
    if silent_ms > TASKMANAGER_SILENT_AFTER_MS:
        return Probe(False, f"{TASKMANAGER_ID} has not answered a heartbeat for {silent_ms / 1000:.0f} s")
    return Probe(
        True, f"{TASKMANAGER_ID} registered, {ours.get('freeSlots', '?')}/{ours.get('slotsNumber', '?')} slots free"
    )


def flink_taskmanager(settings: Settings) -> Probe:
    """The cluster as the JobManager sees it: a TaskManager registered with a slot to spare."""
    return _cluster(flink_overview(settings, settings.flink_rest_backend_url))


def flink_taskmanager_alive(settings: Settings) -> Probe:
    """The TaskManager is registered and answers heartbeats, slots free or not."""
    return taskmanager_heartbeat(settings, settings.flink_rest_backend_url)


def flink(settings: Settings) -> Probe:
    """The cluster as clients see it: through the web guard on the public port; a TaskManager
    that stopped answering its heartbeats is named, though Flink still counts it."""
    cluster = _cluster(flink_overview(settings, settings.flink_rest_url))
    if not cluster.healthy:
        return cluster
    heartbeat = taskmanager_heartbeat(settings, settings.flink_rest_url)
    return cluster if heartbeat.healthy else Probe(False, f"{heartbeat.detail}; {cluster.detail}")


def flink_alive(settings: Settings) -> Probe:
    """The web guard passes requests to a JobManager that answers, slots free or not."""
    overview = flink_overview(settings, settings.flink_rest_url)
    if isinstance(overview, str):
        return Probe(False, overview)
    return Probe(True, f"{overview.get('taskmanagers', 0)} taskmanager(s)")


def _sql_gateway_at(settings: Settings, url: str) -> Probe:
    try:
        login = _guard_login(settings, url)
    except SettingsError as exc:  # a secure stack that has not made its logins yet
        return Probe(False, str(exc)[:160])
    client = SqlGatewayClient(url, settings.probe_timeout, auth=login, tls=_backend_tls(settings, url))
    try:
        client.session().close()
    except ClicklibError as exc:
        return Probe(False, f"POST /v1/sessions: {_reason(exc)}")
    finally:
        client.close()
    return Probe(True, "opens sessions")


def sql_gateway_backend(settings: Settings) -> Probe:
    """The SQL Gateway itself, on its backend port behind the web guard."""
    return _sql_gateway_at(settings, settings.sql_gateway_backend_url)


def sql_gateway(settings: Settings) -> Probe:
    """The SQL Gateway as clients see it: through the web guard on the public port."""
    return _sql_gateway_at(settings, settings.sql_gateway_url)


def schema_registry(settings: Settings) -> Probe:
    """The registry answers the Confluent API's list of subjects."""
    url = f"{settings.schema_registry_url.rstrip('/')}/subjects"
    try:
        answer = requests.get(url, timeout=settings.probe_timeout)
        subjects = answer.json() if answer.status_code == 200 else None
    except (requests.RequestException, ValueError) as exc:
        return Probe(False, f"GET /subjects: {str(exc)[:120]}")
    if not isinstance(subjects, list):
        return Probe(False, f"GET /subjects: HTTP {answer.status_code}")
    return Probe(True, f"{len(subjects)} subject(s)")
