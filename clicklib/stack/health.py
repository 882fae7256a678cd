"""Health probes: a service is healthy only when a real request to it succeeds."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests

from clicklib.settings import Settings

CASSANDRA_SINK_CLASS = "io.clicklib.connect.cassandra.CassandraSinkConnector"
HTTP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Probe:
    healthy: bool
    detail: str


def _why(exc: Exception) -> str:
    """A one-line reason for a failed HTTP request, without urllib3's nesting."""
    if isinstance(exc, requests.ConnectionError):
        return "connection refused" if "refused" in str(exc).lower() else "not reachable"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    return str(exc).splitlines()[0][:120]


def kafka(settings: Settings) -> Probe:
    from confluent_kafka.admin import AdminClient

    # log_level 0 keeps librdkafka's connection-refused chatter out of the terminal
    # while the broker is still starting.
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=5)
    except Exception as exc:  # the client raises KafkaException and friends
        return Probe(False, f"metadata request: {str(exc)[:120]}")
    if not metadata.brokers:
        return Probe(False, "metadata lists no broker")
    return Probe(True, f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)")


def cassandra(settings: Settings) -> Probe:
    from cassandra.cluster import Cluster, NoHostAvailable

    cluster = Cluster(
        settings.cassandra_contact_points,
        port=settings.cassandra_port,
        connect_timeout=5,
        control_connection_timeout=5,
    )
    previous = logging.getLogger("cassandra").level
    # The driver warns about every failed connection attempt during startup.
    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local", timeout=10).one()
        return Probe(True, f"Cassandra {row.release_version}")
    except NoHostAvailable:
        return Probe(False, "CQL: no host answers")
    except Exception as exc:  # the driver raises many unrelated types while a node starts
        return Probe(False, f"CQL: {str(exc)[:120]}")
    finally:
        cluster.shutdown()
        logging.getLogger("cassandra").setLevel(previous)


def connect(settings: Settings) -> Probe:
    try:
        response = requests.get(f"{settings.connect_url}/connector-plugins", timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        plugins = response.json()
    except (requests.RequestException, ValueError) as exc:
        return Probe(False, f"GET /connector-plugins: {_why(exc)}")
    if any(p.get("class") == CASSANDRA_SINK_CLASS for p in plugins):
        return Probe(True, "Cassandra sink plugin loaded")
    return Probe(False, f"{CASSANDRA_SINK_CLASS} not among {len(plugins)} plugins")


def flink_overview(settings: Settings) -> dict | str:
    """Flink's /overview as a dict, or why it could not be had."""
    try:
        response = requests.get(f"{settings.flink_rest_url}/overview", timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as exc:
        return f"GET /overview: {_why(exc)}"


def flink_jobmanager(settings: Settings) -> Probe:
    overview = flink_overview(settings)
    if isinstance(overview, str):
        return Probe(False, overview)
    return Probe(True, f"Flink {overview.get('flink-version', '?')} REST answers")


def flink(settings: Settings) -> Probe:
    """The cluster as a whole: a TaskManager registered with a slot to spare."""
    overview = flink_overview(settings)
    if isinstance(overview, str):
        return Probe(False, overview)
    managers = overview.get("taskmanagers", 0)
    free = overview.get("slots-available", 0)
    total = overview.get("slots-total", 0)
    detail = f"{managers} taskmanager(s), {free}/{total} slots free, {overview.get('jobs-running', 0)} job(s) running"
    return Probe(managers >= 1 and free >= 1, detail)


def sql_gateway(settings: Settings) -> Probe:
    base = settings.sql_gateway_url
    try:
        response = requests.post(f"{base}/v1/sessions", json={}, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        handle = response.json()["sessionHandle"]
        requests.delete(f"{base}/v1/sessions/{handle}", timeout=HTTP_TIMEOUT)
    except (requests.RequestException, ValueError, KeyError) as exc:
        return Probe(False, f"POST /v1/sessions: {_why(exc)}")
    return Probe(True, "opens sessions")
