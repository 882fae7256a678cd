"""Each service of the running stack proves itself with a real round trip."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from cassandra.cluster import Cluster
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from clicklib.cassandra import session_security
from clicklib.kafka import KafkaClient
from clicklib.secrets import cassandra_login, connect_login, flink_login
from clicklib.sql_gateway import SqlGatewayClient
from clicklib.stack.health import CASSANDRA_SINK_CLASS
from clicklib.templates import placeholders
from tests.checks import kafka_config


def create_topic(settings, topic: str) -> None:
    admin = AdminClient(kafka_config(settings))
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)


def produce(settings, topic: str, values: list[dict]) -> None:
    producer = Producer({**kafka_config(settings), "enable.idempotence": True})
    for value in values:
        producer.produce(topic, key=str(value["id"]), value=json.dumps(value))
    assert producer.flush(30) == 0


def test_kafka_produces_and_consumes(live_stack, unique_name):
    create_topic(live_stack, unique_name)
    sent = [{"id": i, "page": f"/p/{i}"} for i in range(10)]
    produce(live_stack, unique_name, sent)
    consumer = Consumer(
        {
            **kafka_config(live_stack),
            "group.id": unique_name,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([unique_name])
    received = []
    try:
        for _ in range(60):
            for message in consumer.consume(num_messages=100, timeout=1.0):
                assert message.error() is None
                received.append(json.loads(message.value()))
            if len(received) >= len(sent):
                break
    finally:
        consumer.close()
    assert received == sent


def test_cassandra_creates_inserts_and_reads(live_stack, unique_name):
    cluster = Cluster(
        live_stack.cassandra_contact_points,
        port=live_stack.cassandra_port,
        **session_security(cassandra_login(live_stack), live_stack.cassandra_ssl_ca),
    )
    session = cluster.connect()
    try:
        session.execute(
            f"CREATE KEYSPACE {unique_name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        )
        session.execute(
            f"CREATE TABLE {unique_name}.visits (user_id text, date bigint, page text, PRIMARY KEY ((user_id), date))"
        )
        session.execute(
            f"INSERT INTO {unique_name}.visits (user_id, date, page) VALUES (%s, %s, %s)",
            ("u1", 1700000000000, "/"),
        )
        rows = list(session.execute(f"SELECT user_id, date, page FROM {unique_name}.visits WHERE user_id = 'u1'"))
        assert [(r.user_id, r.date, r.page) for r in rows] == [("u1", 1700000000000, "/")]
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {unique_name}")
        cluster.shutdown()


def test_flink_takes_no_jar_from_the_web(live_stack):
    auth = flink_login(live_stack)
    config = requests.get(f"{live_stack.flink_rest_url}/config", auth=auth, timeout=10).json()
    assert config["features"]["web-submit"] is False
    # With web submission on, /jars lists the uploaded jars and an upload named *.jar is kept.
    assert requests.get(f"{live_stack.flink_rest_url}/jars", auth=auth, timeout=10).status_code == 404
    upload = requests.post(
        f"{live_stack.flink_rest_url}/jars/upload",
        files={"jarfile": ("probe.jar", b"PK\x05\x06" + bytes(18), "application/x-java-archive")},
        auth=auth,
        timeout=10,
    )
    assert upload.status_code >= 400, upload.text[:200]


@pytest.mark.parametrize("port", ["flink_rest_url", "sql_gateway_url"])
def test_a_foreign_web_page_may_not_read_flink_or_the_sql_gateway(live_stack, port):
    base, auth = getattr(live_stack, port), flink_login(live_stack)
    path = "/config" if port == "flink_rest_url" else "/v1/info"
    # Served as before to a client that is no web page, and to a page on this machine.
    for origin in (None, base):
        answered = requests.get(f"{base}{path}", headers={"Origin": origin} if origin else {}, auth=auth, timeout=10)
        assert answered.status_code == 200 and answered.json()
        assert "Access-Control-Allow-Origin" not in answered.headers
    for method, target in (("GET", path), ("OPTIONS", "/"), ("POST", "/v1/sessions")):
        foreign = {"Origin": "http://attacker.example"}
        response = requests.request(method, f"{base}{target}", headers=foreign, auth=auth, timeout=10)
        # No header at all, so no browser hands the answer to the page; and no request reaches the
        # service, so a simple POST (which needs no preflight) cannot submit SQL either.
        assert "Access-Control-Allow-Origin" not in response.headers, f"{method} {base}{target}"
        assert response.status_code == 403 and "are not served" in response.text
    # DNS rebinding: the page's own name resolves to 127.0.0.1, and the browser sends that name.
    rebound = requests.get(f"{base}{path}", headers={"Host": "attacker.example"}, auth=auth, timeout=10)
    assert rebound.status_code == 403 and "does not name this machine" in rebound.text


def test_connect_lists_the_cassandra_sink_plugin(live_stack):
    response = requests.get(f"{live_stack.connect_url}/connector-plugins", auth=connect_login(live_stack), timeout=10)
    response.raise_for_status()
    sinks = {p["class"]: p for p in response.json() if p["type"] == "sink"}
    assert CASSANDRA_SINK_CLASS in sinks


def test_sql_gateway_runs_a_flink_job_that_reads_kafka(live_stack, unique_name):
    create_topic(live_stack, unique_name)
    sent = [{"id": i, "page": f"/p/{i}"} for i in range(25)]
    produce(live_stack, unique_name, sent)
    if live_stack.secure:
        # The jobs' principal reads only what it is allowed to (access.py).
        KafkaClient(live_stack).allow(
            [
                AclBinding(
                    ResourceType.TOPIC,
                    unique_name,
                    ResourcePatternType.LITERAL,
                    "User:flink",
                    "*",
                    AclOperation.READ,
                    AclPermissionType.ALLOW,
                )
            ]
        )
    gateway = SqlGatewayClient(live_stack.sql_gateway_url, live_stack.request_timeout, auth=flink_login(live_stack))
    with gateway.session() as sql:
        sql.execute(
            f"""CREATE TABLE visits (id INT, page STRING) WITH (
                'connector' = 'kafka', 'topic' = '{unique_name}',
                'properties.bootstrap.servers' = '{live_stack.bootstrap_servers}',
                {placeholders(live_stack)["kafka_security"]}
                'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
                'format' = 'json')"""
        )
        rows = sql.execute("SELECT id, page FROM visits")
    assert sorted(rows, key=lambda r: r["id"]) == sent


def test_status_json_reports_every_service_healthy_and_the_disk_they_write_to(live_stack):
    result = subprocess.run(
        [sys.executable, "-m", "clicklib.cli", "stack", "status", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    space = report.pop("disk")
    assert set(report) == {"kafka", "cassandra", "connect", "collector", "schema-registry", "flink", "sql-gateway"}
    assert all(entry["healthy"] is True for entry in report.values()), report
    assert all(entry["pids"] for entry in report.values())
    # The disk row: this machine's disk is far from the refusal bound, and the row says where.
    assert space["healthy"] is True and space["state"] in ("ok", "low"), space
    assert "free of" in space["detail"] and f"at {live_stack.home}" in space["detail"], space


def test_up_again_leaves_running_services_alone(live_stack):
    from clicklib import stack

    before = {row.service: row.pids for row in stack.status(live_stack)}
    after = {row.service: row.pids for row in stack.up(live_stack)}
    assert after == before
