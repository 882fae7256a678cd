"""Bad input stops `pipeline up` with an error that names the culprit, and leaves nothing behind."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from clicklib import resources, streaming_sql
from clicklib.definition import Sources
from clicklib.exceptions import ConnectorError, SqlError
from clicklib.pipeline import Pipeline

from .conftest import free_ports


def nothing_submitted(pipeline: Pipeline) -> None:
    assert [name for name, job in streaming_sql.running_jobs(pipeline).items() if job] == []
    namespace = pipeline.settings.namespace
    assert [n for n in pipeline.connect.names() if n.startswith(namespace)] == []


def copy_of(folder, suffix: str, tmp_path) -> object:
    copy = tmp_path / folder.name
    copy.mkdir()
    for path in resources.listing(folder, suffix):
        shutil.copy(str(path), copy / path.name)
    return copy


def test_an_invalid_sql_file_is_named_and_nothing_is_submitted(namespaced_pipeline, tmp_path):
    scripts = copy_of(resources.ksql_dir(), ".sql", tmp_path)
    broken = scripts / "11_pageviews_per_minute.sql"
    broken.write_text(broken.read_text().replace("COUNT(DISTINCT user_id)", "COUNT(DISTINCT visitor)"))
    with Pipeline(namespaced_pipeline.settings, Sources(ksql=scripts)) as pipeline, pytest.raises(SqlError) as caught:
        pipeline.up()
    assert "11_pageviews_per_minute.sql" in str(caught.value)
    assert "visitor" in str(caught.value)
    nothing_submitted(namespaced_pipeline)


def test_a_connector_naming_a_missing_table_is_named_and_nothing_is_created(namespaced_pipeline, tmp_path):
    configs = copy_of(resources.connect_dir(), ".json", tmp_path)
    bad = configs / "user-sessions.json"
    bad.write_text(bad.read_text().replace('"user_sessions"', '"user_sessions_missing"'))
    broken = Pipeline(namespaced_pipeline.settings, Sources(connect=configs))
    with broken, pytest.raises(ConnectorError) as caught:
        broken.up()
    message = str(caught.value)
    assert f"{namespaced_pipeline.settings.namespace}clicklib-user-sessions" in message
    assert "user_sessions_missing" in message
    nothing_submitted(namespaced_pipeline)


@pytest.mark.parametrize(
    ("setting", "service", "error"),
    [("sql_gateway_url", "sql-gateway", SqlError), ("connect_url", "connect", ConnectorError)],
)
def test_an_unreachable_service_is_named_and_nothing_is_submitted(namespaced_pipeline, setting, service, error):
    unreachable = dataclasses.replace(namespaced_pipeline.settings, **{setting: f"http://127.0.0.1:{free_ports(1)[0]}"})
    with Pipeline(unreachable) as pipeline, pytest.raises(error) as caught:
        pipeline.up()
    assert f"{service} at {getattr(unreachable, setting)} is not reachable" in str(caught.value)
    assert caught.value.address == getattr(unreachable, setting)
    nothing_submitted(namespaced_pipeline)


def test_the_schema_is_applied_idempotently(namespaced_pipeline):
    namespaced_pipeline.cassandra.apply_schema(namespaced_pipeline.definition.schema)
    namespaced_pipeline.cassandra.apply_schema(namespaced_pipeline.definition.schema)
    tables = namespaced_pipeline.cassandra.query_df(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [namespaced_pipeline.settings.keyspace]
    )
    assert set(tables["table_name"]) == set(namespaced_pipeline.definition.tables)
