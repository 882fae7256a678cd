"""The SQL scripts of ksql/ planned into jobs, with no service involved."""

from importlib.resources.abc import Traversable
from pathlib import Path

import pytest

from clicklib import definition, resources, sql_scripts
from clicklib.exceptions import DefinitionError, TemplateError
from clicklib.settings import Settings
from clicklib.sql_scripts import Script, plan_jobs, split_statements
from clicklib.templates import placeholders, render


def scripts_of(folder: Traversable) -> list[Script]:
    return [Script(f"ksql/{p.name}", p.read_text()) for p in resources.listing(folder, ".sql")]


def test_statements_split_on_semicolons_outside_quotes_and_comments():
    text = "SET 'a' = 'x;y';\n-- a comment; with a semicolon\nCREATE TABLE t (a INT);\n\nINSERT INTO t SELECT 1"
    assert split_statements(text) == [
        ("SET 'a' = 'x;y'", 1),
        ("CREATE TABLE t (a INT)", 3),
        ("INSERT INTO t SELECT 1", 5),
    ]


def test_an_unknown_placeholder_names_the_file_and_line():
    with pytest.raises(TemplateError, match=r"ksql/x.sql:2: unknown placeholder \$\{nope\}"):
        render("SELECT 1;\nSELECT '${nope}';", {"known": "1"}, "ksql/x.sql")


def test_placeholders_take_the_namespace_and_the_in_cluster_addresses():
    params = placeholders(Settings(namespace="t1_", flink_bootstrap_servers="kafka:29092"))
    assert params["topic.clickstream"] == "t1_clickstream"
    assert params["topic.clickstream_sink_dlq"] == "t1_clickstream_sink_dlq"
    assert params["keyspace"] == "t1_clickstream"
    assert params["bootstrap_servers"] == "kafka:29092"


def test_the_shipped_scripts_plan_five_jobs_with_every_placeholder_filled():
    plans = definition.load(Settings(namespace="t1_", lake_url="/data/lake")).jobs
    assert [(p.name, p.flink_name) for p in plans] == [
        ("ingest", "t1_clicklib-ingest"),
        ("enrich", "t1_clicklib-enrich"),
        ("aggregates", "t1_clicklib-aggregates"),
        ("avro", "t1_clicklib-avro"),
        ("lake", "t1_clicklib-lake"),
    ]
    for plan in plans:
        for statement in [*plan.definitions, *plan.inserts]:
            assert "${" not in statement.text, statement.source
    ingest, enrich, aggregates, avro, lake = plans
    # The lake: the internal dead letters of the valid events, and each clean event once, in the
    # namespace's folder of the lake.
    assert [s.source.split(":")[0] for s in lake.inserts] == ["ksql/07_valid_events.sql", "ksql/19_lake.sql"]
    (files,) = [s.text for s in lake.definitions if "CREATE TABLE lake_clean_events" in s.text]
    assert "'path' = 'file:///data/lake/t1_clean_events'" in files
    assert "FROM clickstream_unique_clean_events" in lake.inserts[1].text
    # The clean events in Avro, and the clean-topic records that are not clean events.
    assert [s.source.split(":")[0] for s in avro.inserts] == ["ksql/18_clickstream_avro.sql"] * 2
    assert [s.source.split(":")[0] for s in ingest.inserts] == [
        "ksql/03_clickstream_dlq.sql",
        "ksql/05_route_valid_events.sql",
    ]
    assert [s.source.split(":")[0] for s in enrich.inserts] == [
        "ksql/07_valid_events.sql",
        "ksql/08_clickstream_users.sql",
        "ksql/09_clickstream_clean.sql",
    ]
    # The internal dead letters of the valid events, four kinds of windows (sessions twice: per
    # user and per session), the late events, and the daily figures.
    assert [s.source.split(":")[0] for s in aggregates.inserts] == [
        "ksql/07_valid_events.sql",
        "ksql/11_pageviews_per_minute.sql",
        "ksql/12_user_activity.sql",
        "ksql/13_user_sessions.sql",
        "ksql/14_status_per_minute.sql",
        "ksql/15_late_events.sql",
        "ksql/16_session_summary.sql",
        "ksql/17_daily_kpis.sql",
    ]
    # Each job that writes the internal dead-letter topic has transactions of its own.
    for plan in (enrich, aggregates, lake):
        (table,) = [s.text for s in plan.definitions if "CREATE TABLE clickstream_internal_dlq" in s.text]
        assert f"'t1_clicklib-{plan.name}-internal-dlq'" in table


def test_each_job_reads_the_topics_it_does_not_write():
    ingest, enrich, aggregates, avro, lake = definition.load(Settings(namespace="t1_")).jobs
    assert ingest.source_topics == ["t1_clickstream"]
    assert lake.source_topics == ["t1_clickstream_valid"]
    assert lake.sink_topics == ["t1_clickstream_internal_dlq"]
    assert avro.source_topics == ["t1_clickstream_clean"]
    assert sorted(enrich.source_topics) == ["t1_clickstream_users", "t1_clickstream_valid"]
    assert aggregates.source_topics == ["t1_clickstream_valid"]
    assert "'properties.group.id' = 't1_clicklib-aggregates'" in " ".join(s.text for s in aggregates.definitions)


def test_a_preview_plan_reads_under_a_consumer_group_of_its_own():
    loaded = definition.load(Settings(namespace="t1_"))
    previews = plan_jobs(loaded.settings, list(loaded.scripts), group_suffix="-preview")
    text = " ".join(s.text for s in previews[0].definitions)
    assert "'properties.group.id' = 't1_clicklib-ingest-preview'" in text
    assert "'properties.group.id' = 't1_clicklib-ingest'" not in text


def test_every_statement_in_ksql_is_preceded_by_a_comment():
    for script in scripts_of(resources.ksql_dir()):
        for _statement, line in split_statements(script.text):
            lines = script.text.splitlines()[: line - 1]
            previous = next((ln for ln in reversed(lines) if ln.strip()), "")
            assert previous.lstrip().startswith("--"), f"{script.label}:{line} has no comment before it"


def test_a_script_with_two_job_lines_is_refused(tmp_path: Path):
    (tmp_path / "01_x.sql").write_text("-- job: a\n-- job: b\nINSERT INTO t SELECT 1;")
    with pytest.raises(DefinitionError, match=r"01_x\.sql: has 2 job lines"):
        plan_jobs(Settings(), scripts_of(tmp_path))


def test_a_script_shared_by_several_jobs_joins_each(tmp_path: Path):
    (tmp_path / "01_t.sql").write_text("-- jobs: a, b\n-- t\nCREATE TABLE t (x INT);")
    (tmp_path / "02_a.sql").write_text("-- job: a\n-- a\nINSERT INTO t SELECT 1;")
    (tmp_path / "03_b.sql").write_text("-- job: b\n-- b\nINSERT INTO t SELECT 2;")
    plans = plan_jobs(Settings(), scripts_of(tmp_path))
    assert [[s.text for s in p.definitions] for p in plans] == [["CREATE TABLE t (x INT)"]] * 2


def test_a_job_without_insert_is_refused(tmp_path: Path):
    (tmp_path / "01_x.sql").write_text("-- job: a\nCREATE VIEW v AS SELECT 1;")
    with pytest.raises(DefinitionError, match=r"job a .* has no INSERT"):
        plan_jobs(Settings(), scripts_of(tmp_path))


def test_job_lines_are_read_from_the_script_header():
    assert Script("ksql/x.sql", "-- jobs: a, b\nSELECT 1;").jobs == ["a", "b"]
    assert Script("ksql/x.sql", "SELECT 1;").jobs == []
    assert sql_scripts.JOB_LINE.findall("-- job: ingest") == ["ingest"]
