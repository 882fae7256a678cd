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


def test_the_shipped_scripts_plan_three_jobs_with_every_placeholder_filled():
    plans = ksql.plan_jobs(Settings(namespace="t1_"))
    assert [(p.name, p.flink_name) for p in plans] == [
        ("ingest", "t1_clicklib-ingest"),
        ("enrich", "t1_clicklib-enrich"),
        ("aggregates", "t1_clicklib-aggregates"),
    ]
    for plan in plans:
        for statement in [*plan.definitions, *plan.inserts]:
            assert "${" not in statement.text, statement.source
    ingest, enrich, aggregates = plans
    assert [s.source.split(":")[0] for s in ingest.inserts] == [
        "ksql/03_clickstream_dlq.sql",
        "ksql/05_route_valid_events.sql",
    ]
    assert [s.source.split(":")[0] for s in enrich.inserts] == ["ksql/07_clickstream_clean.sql"]
    assert len(aggregates.inserts) == 4


def test_each_job_reads_the_topics_it_does_not_write():
    ingest, enrich, aggregates = ksql.plan_jobs(Settings(namespace="t1_"))
    assert ingest.source_topics == ["t1_clickstream"]
    assert sorted(enrich.source_topics) == ["t1_clickstream_users", "t1_clickstream_valid"]
    assert aggregates.source_topics == ["t1_clickstream_valid"]
    assert "'properties.group.id' = 't1_clicklib-aggregates'" in " ".join(s.text for s in aggregates.definitions)


def test_every_statement_in_ksql_is_preceded_by_a_comment():
    for path in sorted(ksql.KSQL_DIR.glob("*.sql")):
        text = path.read_text()
        for _statement, line in ksql.split_statements(text):
            lines = text.splitlines()[: line - 1]
            previous = next((ln for ln in reversed(lines) if ln.strip()), "")
            assert previous.lstrip().startswith("--"), f"{path.name}:{line} has no comment before it"


def test_a_script_with_two_job_lines_is_refused(tmp_path: Path):
    (tmp_path / "01_x.sql").write_text("-- job: a\n-- job: b\nINSERT INTO t SELECT 1;")
    with pytest.raises(SqlError, match=r"01_x\.sql: has 2 job lines"):
        ksql.plan_jobs(Settings(), tmp_path)


def test_a_script_shared_by_several_jobs_joins_each(tmp_path: Path):
    (tmp_path / "01_t.sql").write_text("-- jobs: a, b\n-- t\nCREATE TABLE t (x INT);")
    (tmp_path / "02_a.sql").write_text("-- job: a\n-- a\nINSERT INTO t SELECT 1;")
    (tmp_path / "03_b.sql").write_text("-- job: b\n-- b\nINSERT INTO t SELECT 2;")
    plans = ksql.plan_jobs(Settings(), tmp_path)
    assert [[s.text for s in p.definitions] for p in plans] == [["CREATE TABLE t (x INT)"]] * 2


def test_a_job_without_insert_is_refused(tmp_path: Path):
    (tmp_path / "01_x.sql").write_text("-- job: a\nCREATE VIEW v AS SELECT 1;")
    with pytest.raises(SqlError, match=r"job a .* has no INSERT"):
        ksql.plan_jobs(Settings(), tmp_path)
