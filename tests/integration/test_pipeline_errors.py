"""Bad input stops `pipeline up` with an error that names the culprit, and leaves nothing behind."""

from __future__ import annotations

import dataclasses
import shutil
import uuid

import pytest

from clicklib import cassandra, connect, ksql, pipeline
from clicklib.exceptions import ConnectorError, SqlError
from clicklib.settings import Settings

from .conftest import free_ports


@pytest.fixture
def namespaced(live_stack: Settings):
    settings = dataclasses.replace(live_stack, namespace=f"e{uuid.uuid4().hex[:8]}_")
    yield settings
    pipeline.down(settings, purge=True)


def nothing_submitted(settings: Settings) -> None:
    jobs = [j.name for j in ksql.list_jobs(settings) if j.name.startswith(settings.namespace)]
    active = [j for j in ksql.list_jobs(settings) if j.name in jobs and j.state in ksql.ACTIVE_STATES]
    assert active == []
    assert [n for n in connect.ConnectClient(settings).names() if n.startswith(settings.namespace)] == []


def test_an_invalid_sql_file_is_named_and_nothing_is_submitted(namespaced, tmp_path):
    scripts = tmp_path / "ksql"
    shutil.copytree(ksql.KSQL_DIR, scripts)
    broken = scripts / "09_pageviews_per_minute.sql"
    broken.write_text(broken.read_text().replace("COUNT(DISTINCT user_id)", "COUNT(DISTINCT visitor)"))
    with pytest.raises(SqlError) as caught:
        pipeline.up(namespaced, ksql_dir=scripts)
    assert "09_pageviews_per_minute.sql" in str(caught.value)
    assert "visitor" in str(caught.value)
    nothing_submitted(namespaced)


def test_a_connector_naming_a_missing_table_is_named_and_nothing_is_created(namespaced, tmp_path):
    configs = tmp_path / "connect"
    configs.mkdir()
    for path in connect.CONNECT_DIR.glob("*.json"):
        shutil.copy(path, configs / path.name)
    bad = configs / "user-sessions.json"
    bad.write_text(bad.read_text().replace('"user_sessions"', '"user_sessions_missing"'))
    with pytest.raises(ConnectorError) as caught:
        pipeline.up(namespaced, connect_dir=configs)
    message = str(caught.value)
    assert f"{namespaced.namespace}clicklib-user-sessions" in message
    assert "user_sessions_missing" in message
    nothing_submitted(namespaced)


@pytest.mark.parametrize(
    ("setting", "service", "error"),
    [("sql_gateway_url", "sql-gateway", SqlError), ("connect_url", "connect", ConnectorError)],
)
def test_an_unreachable_service_is_named_and_nothing_is_submitted(namespaced, setting, service, error):
    unreachable = dataclasses.replace(namespaced, **{setting: f"http://127.0.0.1:{free_ports(1)[0]}"})
    with pytest.raises(error) as caught:
        pipeline.up(unreachable)
    assert f"{service} at {getattr(unreachable, setting)} is not reachable" in str(caught.value)
    nothing_submitted(namespaced)


def test_the_schema_is_applied_idempotently(namespaced):
    cassandra.apply_schema(namespaced)
    cassandra.apply_schema(namespaced)
    tables = cassandra.query_df(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [namespaced.keyspace], namespaced
    )
    assert set(tables["table_name"]) == set(cassandra.TABLES)
