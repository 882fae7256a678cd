"""With the secure profile every service asks who is there: no login, or a wrong one, is refused
with an authentication error; each role may do only its part; no generated password shows."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from cassandra import AuthenticationFailed, Unauthorized
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable

from clicklib import produce, secrets
from clicklib.generate import generate
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.stack import process
from clicklib.stack.health import CASSANDRA_SINK_CLASS
from tests.secure.conftest import every_password


def cql(settings: Settings, login: tuple[str, str] | None):
    auth = {"auth_provider": PlainTextAuthProvider(*login)} if login else {}
    cluster = Cluster(settings.cassandra_contact_points, port=settings.cassandra_port, connect_timeout=10, **auth)
    return cluster, cluster.connect


def refusal(settings: Settings, login: tuple[str, str] | None) -> Exception:
    """Why Cassandra refused a session with ``login``; fails if it accepted it."""
    cluster, connect = cql(settings, login)
    started = time.monotonic()
    try:
        with pytest.raises(NoHostAvailable) as caught:
            connect()
    finally:
        cluster.shutdown()
    assert time.monotonic() - started < 10, "refused only after a timeout"
    return next(iter(caught.value.errors.values()))


def test_cassandra_refuses_an_anonymous_session_and_a_wrong_password(live_stack):
    assert isinstance(refusal(live_stack, None), AuthenticationFailed)
    wrong = refusal(live_stack, ("clicklib_reader", "not-the-password"))
    assert isinstance(wrong, AuthenticationFailed) and "password" in str(wrong).lower()
    # The default superuser, whose password everyone knows, is gone.
    assert isinstance(refusal(live_stack, ("cassandra", "cassandra")), AuthenticationFailed)


@pytest.fixture(scope="module")
def secure_pipeline(live_stack: Settings):
    """One pipeline for the module's tests, purged afterwards: the reader's test, which expects an
    empty table, comes before the one that sends traffic."""
    with Pipeline(dataclasses.replace(live_stack, namespace=f"r{uuid.uuid4().hex[:8]}_")) as pipeline:
        pipeline.up()
        yield pipeline
        pipeline.down(purge=True)


@pytest.mark.full
def test_the_notebooks_role_reads_the_pipeline_but_cannot_write_it(secure_pipeline: Pipeline):
    keyspace = secure_pipeline.settings.keyspace
    reader = secure_pipeline.reader
    assert reader.login[0] == "clicklib_reader"
    assert reader.execute(f"SELECT count(*) FROM {keyspace}.pageviews_per_minute").one()[0] == 0
    session = reader.session
    with pytest.raises(Unauthorized):
        session.execute(
            f"INSERT INTO {keyspace}.pageviews_per_minute (day, window_start, page_type, views) "
            "VALUES ('2026-01-01', 0, 'home', 1)"
        )
    with pytest.raises(Unauthorized):
        session.execute(f"DROP TABLE {keyspace}.pageviews_per_minute")
    with pytest.raises(Unauthorized):
        session.execute(
            "CREATE KEYSPACE intruder WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )


def test_connect_refuses_a_request_without_its_login(live_stack):
    url = f"{live_stack.connect_url}/connectors"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=("clicklib", "not-the-password"), timeout=10).status_code == 401
    assert requests.get(url, auth=secrets.connect_login(live_stack), timeout=10).status_code == 200


@pytest.mark.parametrize(("url", "path"), [("flink_rest_url", "/overview"), ("sql_gateway_url", "/v1/info")])
def test_flink_and_the_sql_gateway_refuse_a_request_without_their_login(live_stack, url, path):
    target = f"{getattr(live_stack, url)}{path}"
    anonymous = requests.get(target, timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(target, auth=("clicklib", "not-the-password"), timeout=10).status_code == 401
    assert requests.get(target, auth=secrets.flink_login(live_stack), timeout=10).status_code == 200
    # A SQL session, the way in to the filesystem connector, needs the login too.
    sessions = f"{live_stack.sql_gateway_url}/v1/sessions"
    assert requests.post(sessions, json={}, timeout=10).status_code == 401


def read_through_sql(settings: Settings, folder: Path) -> list[str]:
    """Every line of every file under ``folder``, as a SQL session with the login reads it
    through Flink's filesystem connector: the JobManager lists the files, the TaskManager reads."""
    from clicklib.sql_gateway import SqlGatewayClient

    table = f"files_{uuid.uuid4().hex[:8]}"
    client = SqlGatewayClient(settings.sql_gateway_url, 120, auth=secrets.flink_login(settings))
    with client.session({"execution.runtime-mode": "batch"}) as session:
        session.execute(
            f"CREATE TEMPORARY TABLE {table} (line STRING) "
            f"WITH ('connector' = 'filesystem', 'path' = 'file://{folder}', 'format' = 'raw')"
        )
        return [row["line"] for row in session.execute(f"SELECT line FROM {table}")]


def test_a_sql_session_with_the_login_cannot_read_any_secret_nor_another_services_data(live_stack):
    """Flink runs what a SQL session sends, as the user who runs the stack: only the sandbox
    (stack/sandbox.py) keeps the other services' passwords from a job, and Kafka's segments and
    Cassandra's tables, which a job would read around every ACL and role."""
    from clicklib.exceptions import ClicklibError
    from clicklib.stack import configs

    # The control: a folder of Flink's own data reads back whole through the same SQL.
    control = configs.data_dir(live_stack, "flink") / f"sql-read-{uuid.uuid4().hex[:8]}"
    control.mkdir()
    try:
        (control / "lines.txt").write_text("a line of the stack's own")
        assert read_through_sql(live_stack, control) == ["a line of the stack's own"]
    finally:
        shutil.rmtree(control)
    passwords = every_password(live_stack)
    for folder in (secrets.secrets_dir(live_stack), configs.data_dir(live_stack, "cassandra")):
        with pytest.raises(ClicklibError) as refused:
            lines = read_through_sql(live_stack, folder)
            leaked = [p for p in passwords if any(p in line for line in lines)]
            pytest.fail(f"SQL read {len(lines)} lines of {folder}, {len(leaked)} of the stack's passwords in them")
        assert "Permission denied" in str(refused.value) or "AccessDenied" in str(refused.value), str(refused.value)


def test_every_service_runs_in_the_sandbox_that_hides_the_others_secrets(live_stack):
    """sandbox.py sets no_new_privs just before it puts a service under its ruleset: a process of
    the stack without it was started another way."""
    from clicklib.stack import services as stack_services

    markers = {process.service_marker(name) for name in stack_services.PROCESSES}
    services = [p for p in process.stack_processes(live_stack) if markers & set(p.cmdline())]
    assert len(services) == len(markers)
    for service in services:
        status = Path(f"/proc/{service.pid}/status").read_text()
        name = next(a for a in service.cmdline() if "clicklib.service=" in a)
        assert "NoNewPrivs:\t1" in status, f"{name} runs outside the sandbox"


def storage_port_answer(settings: Settings, identity: Path | None) -> str:
    """What a TLS client holding ``identity`` (or none) gets from Cassandra's storage port:
    "open" when the node keeps the connection after the handshake (it waits for the peer's
    first message), else how it ended."""
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if identity is not None:
        context.load_cert_chain(identity)
    with socket.create_connection((settings.bind_host, settings.cassandra_storage_port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                tls.settimeout(3)
                try:
                    return "closed" if tls.recv(1) == b"" else "answered"
                except TimeoutError:
                    return "open"
        except (ssl.SSLError, ConnectionError) as exc:
            return f"refused ({type(exc).__name__})"


def test_cassandras_storage_port_takes_only_a_peer_holding_the_nodes_key(live_stack):
    """Nodes never log in to each other: whoever speaks to the storage port is a node. So it
    speaks TLS and asks for the node's own key, which not even Flink holds."""
    import socket

    from clicklib.stack import rest_tls

    node = rest_tls.rest_tls(live_stack, rest_tls.CASSANDRA_FOLDER)
    # The control: a peer with the node's key is let in, and the port waits for its message.
    assert storage_port_answer(live_stack, node.identity) == "open"
    assert storage_port_answer(live_stack, None).startswith(("refused", "closed"))
    flink = rest_tls.rest_tls(live_stack)
    assert storage_port_answer(live_stack, flink.identity).startswith(("refused", "closed"))
    # In plain text, the start of a node's handshake (the protocol's magic number) is not read.
    with socket.create_connection((live_stack.bind_host, live_stack.cassandra_storage_port), timeout=10) as raw:
        raw.sendall(bytes.fromhex("ca552dfa") + bytes(60))
        raw.settimeout(10)
        with contextlib.suppress(ConnectionResetError):  # a reset is a refusal too
            assert raw.recv(64) == b""


def test_the_stacks_collector_takes_events_once_its_topic_is_granted(live_stack):
    """The collector starts before any pipeline grants its producer a topic; its idempotent
    producer asks for an id at once, and a refusal then would end it for good (every event
    answered 503 until a restart). Here its topic and right come as `pipeline up` gives them."""
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    from clicklib.kafka import KafkaClient
    from clicklib.topics import RAW, Topic, topic_name

    kafka = KafkaClient(live_stack)
    name = topic_name(live_stack, RAW)
    assert name not in kafka.topic_names(), "the stack's own namespace holds a pipeline already"
    right = (name, ResourcePatternType.LITERAL, "User:producer", "*", AclOperation.WRITE)
    kafka.create_topics([Topic(RAW, name, 1, 1)])
    kafka.allow([AclBinding(ResourceType.TOPIC, *right, AclPermissionType.ALLOW)])
    try:
        event = {"event_id": uuid.uuid4().hex, "user_id": "u1", "session_id": "s1", "event_type": "page_view"}
        answer = requests.post(f"{live_stack.collector_url}/collect", json=event, timeout=30)
        assert answer.status_code == 202, answer.text  # acknowledged by Kafka
        assert "Fatal error" not in (live_stack.home / "logs" / "collector.log").read_text()
    finally:
        kafka.revoke([AclBindingFilter(ResourceType.TOPIC, *right, AclPermissionType.ALLOW)])
        kafka.delete_topics([name])


def test_another_local_user_can_read_nothing_under_the_home_folder(live_stack):
    """Kafka's segments, Cassandra's tables, checkpoints, logs, configs and secrets are the stack
    owner's alone: another account on the machine can neither list nor read any of it."""
    # The other user runs the system's Python: this one may live in a folder only its owner reads.
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser") or not python:
        pytest.skip("needs root, useradd, runuser and a system python3 to act as a second local user")
    home = live_stack.home
    # Every path under the home folder, listed by its owner (symbolic links not followed). The
    # services go on working meanwhile: a folder that goes while it is listed (Kafka removing a
    # deleted topic's) is passed over.
    paths = [str(home)]
    for folder, folders, files in os.walk(home):
        paths += [entry for name in folders + files if not os.path.islink(entry := os.path.join(folder, name))]
    assert any("secrets" in path for path in paths) and any("/data/" in path for path in paths)
    probe = (
        "import os, sys\n"
        "opened = []\n"
        "for path in sys.stdin.read().splitlines():\n"
        "    try:\n"
        "        if os.path.isdir(path):\n"
        "            os.listdir(path)\n"
        "        else:\n"
        "            open(path, 'rb').read(1)\n"
        "        opened.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        "print(len(opened)); print('\\n'.join(opened[:20]))\n"
    )
    user = f"clk{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True, timeout=60)
    try:
        result = subprocess.run(
            ["runuser", "-u", user, "--", python, "-I", "-c", probe],
            # The control, a file every user may read, shows the probe can open what it may.
            input="\n".join(["/etc/passwd", *paths]),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd="/",
        )
    finally:
        subprocess.run(["userdel", user], check=False, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    count, *opened = result.stdout.splitlines()
    assert opened[:1] == ["/etc/passwd"], result.stdout[-2000:]
    assert count == "1", f"another local user opened {int(count) - 1} of {len(paths)} paths, e.g. {opened[1:]}"


def test_a_connect_login_cannot_have_a_secret_echoed_back(live_stack):
    """The worker resolves ${file:...} references before it validates a config, and shows every
    field's value but a password's: a reference in another field would show the sink's password."""
    settings, auth = live_stack, secrets.connect_login(live_stack)
    sink = secrets.sink_password_file(settings)
    references = [f"${{file:{sink}:password}}", f"${{file:{secrets.password_path(settings, 'kafka', 'admin')}:kafka}}"]
    plugin = f"{settings.connect_url}/connector-plugins/CassandraSinkConnector/config/validate"
    answers = []
    for reference in references:
        for field in ("cassandra.keyspace", "cassandra.table", "topics", "name"):
            config = {"connector.class": CASSANDRA_SINK_CLASS, "name": "probe", "topics": "t", field: reference}
            validated = requests.put(plugin, json=config, auth=auth, timeout=30)
            created = requests.post(
                f"{settings.connect_url}/connectors", json={"name": "probe", "config": config}, auth=auth, timeout=30
            )
            for answer in (validated, created):
                assert answer.status_code == 400 and "config provider reference" in answer.text, answer.text[:300]
                answers.append(answer.text)
    # Where clicklib puts it, the reference is resolved and the value hidden.
    config = {"connector.class": CASSANDRA_SINK_CLASS, "name": "probe", "topics": "t"}
    config["cassandra.password"] = references[0]
    validated = requests.put(plugin, json=config, auth=auth, timeout=30)
    assert validated.status_code == 200, validated.text[:300]
    answers.append(validated.text)
    assert "probe" not in requests.get(f"{settings.connect_url}/connectors", auth=auth, timeout=30).json()
    for password in every_password(settings):
        assert not [text for text in answers if password in text], "a password came back from Connect"


@pytest.mark.full
def test_no_generated_password_is_in_logs_configs_job_graphs_or_cli_output(secure_pipeline: Pipeline):
    settings = secure_pipeline.settings
    produce.produce(secure_pipeline, generate(500, seed=7, invalid_ratio=0.02))
    cli = Path(sys.executable).parent / "clicklib"
    texts: dict[str, str] = {}
    for command in (["stack", "status"], ["pipeline", "status"]):
        result = subprocess.run(
            [str(cli), *command],
            env={**os.environ, **settings.to_env()},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        texts[" ".join(command)] = result.stdout + result.stderr
    for folder in ("logs", "conf", "run"):
        for path in (settings.home / folder).rglob("*"):
            if path.is_file():
                texts[str(path)] = path.read_text(errors="replace")
    # The command lines and environments of the running services: what `ps` and /proc show.
    for proc in process.stack_processes(settings):
        texts[f"process {proc.pid}"] = " ".join(proc.cmdline())
        texts[f"environment of process {proc.pid}"] = "\n".join(f"{k}={v}" for k, v in proc.environ().items())
    flink, flink_auth = settings.flink_rest_url, secrets.flink_login(settings)
    jobs = requests.get(f"{flink}/jobs/overview", auth=flink_auth, timeout=10).json()["jobs"]
    assert any(job["state"] == "RUNNING" for job in jobs)
    for job in jobs:
        for view in ("", "/plan", "/config"):
            texts[f"job {job['name']}{view}"] = requests.get(
                f"{flink}/jobs/{job['jid']}{view}", auth=flink_auth, timeout=10
            ).text
    for view in ("/jobmanager/config", "/jobmanager/environment", "/taskmanagers"):
        texts[view] = requests.get(f"{flink}{view}", auth=flink_auth, timeout=10).text
    auth = secrets.connect_login(settings)
    for connector in secure_pipeline.definition.connectors:
        response = requests.get(f"{settings.connect_url}/connectors/{connector.name}", auth=auth, timeout=10)
        texts[f"connector {connector.name}"] = response.text
        assert json.loads(response.text)["config"]["cassandra.password"].startswith("${file:")
    assert any("clicklib_sink" in text for text in texts.values())  # the search reads what it should
    for password in every_password(settings):
        found = [where for where, text in texts.items() if password in text]
        assert not found, f"a generated password is readable in {found}"


def test_a_client_with_the_wrong_password_is_told_so_at_once(live_stack):
    from clicklib.exceptions import CassandraError, KafkaError

    wrong = dataclasses.replace(
        live_stack,
        secure=False,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_username="admin",
        kafka_password="not-the-password",
        cassandra_username="clicklib_admin",
        cassandra_password="not-the-password",
    )
    with Pipeline(wrong) as pipeline:
        with pytest.raises(KafkaError, match="refused the login"):
            pipeline.kafka.topic_names()
        with pytest.raises(CassandraError, match="refused the login of clicklib_admin"):
            pipeline.cassandra.session  # noqa: B018
