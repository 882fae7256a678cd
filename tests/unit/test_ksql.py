from pathlib import Path

import pytest

from clicklib import ksql
from clicklib.exceptions import SqlError, TemplateError
from clicklib.settings import Settings
from clicklib.templates import pipeline_params, render


def test_statements_split_on_semicolons_outside_quotes_and_comments():
    text = "SET 'a' = 'x;y';\n-- a comment; with a semicolon\nCREATE TABLE t (a INT);\n\nINSERT INTO t SELECT 1"
    assert ksql.split_statements(text) == [
        ("SET 'a' = 'x;y'", 1),
        ("CREATE TABLE t (a INT)", 3),
        ("INSERT INTO t SELECT 1", 5),
    ]


def test_an_unknown_placeholder_names_the_file_and_line():
    with pytest.raises(TemplateError, match=r"ksql/x.sql:2: unknown placeholder \$\{nope\}"):
        render("SELECT 1;\nSELECT '${nope}';", {"known": "1"}, "ksql/x.sql")


def test_placeholders_take_the_namespace_and_the_in_cluster_addresses():
    params = pipeline_params(Settings(namespace="t1_", flink_bootstrap_servers="kafka:29092"))
    assert params["topic_raw"] == "t1_clickstream"
    assert params["topic_sink_dlq"] == "t1_clickstream_sink_dlq"
    assert params["keyspace"] == "t1_clickstream"
    assert params["bootstrap_servers"] == "kafka:29092"


def test_the_shipped_scripts_plan_two_jobs_with_every_placeholder_filled():
    plans = ksql.plan_jobs(Settings(namespace="t1_"))
    assert [(p.name, p.flink_name) for p in plans] == [
        ("ingest", "t1_clicklib-ingest"),
        ("aggregates", "t1_clicklib-aggregates"),
    ]
    for plan in plans:
        for statement in [*plan.definitions, *plan.inserts]:
            assert "${" not in statement.text, statement.source
    ingest, aggregates = plans
    assert [s.source.split(":")[0] for s in ingest.inserts] == [
        "ksql/04_clickstream_dlq.sql",
        "ksql/05_clickstream_clean.sql",
    ]
    assert len(aggregates.inserts) == 4
    assert "'properties.group.id' = 't1_clicklib-aggregates'" in " ".join(s.text for s in aggregates.definitions)


def test_every_statement_in_ksql_is_preceded_by_a_comment():
    for path in sorted(ksql.KSQL_DIR.glob("*.sql")):
        text = path.read_text()
        for _statement, line in ksql.split_statements(text):
            lines = text.splitlines()[: line - 1]
            previous = next((ln for ln in reversed(lines) if ln.strip()), "")
            assert previous.lstrip().startswith("--"), f"{path.name}:{line} has no comment before it"


def test_a_script_naming_two_jobs_is_refused(tmp_path: Path):
    (tmp_path / "01_x.sql").write_text("-- job: a\n-- job: b\nINSERT INTO t SELECT 1;")
    with pytest.raises(SqlError, match=r"01_x\.sql: names 2 jobs"):
        ksql.plan_jobs(Settings(), tmp_path)


def test_a_job_without_insert_is_refused(tmp_path: Path):
    (tmp_path / "01_x.sql").write_text("-- job: a\nCREATE VIEW v AS SELECT 1;")
    with pytest.raises(SqlError, match=r"job a .* has no INSERT"):
        ksql.plan_jobs(Settings(), tmp_path)
