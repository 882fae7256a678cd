"""The streaming SQL scripts of ``ksql/``, read into Flink jobs (no service is called here).

Scripts are numbered files. A file without a ``-- job: NAME`` line holds definitions (SET,
CREATE TABLE, CREATE VIEW) run in every job's session; a file with one (or with
``-- jobs: A, B``) adds its statements to that job (or those jobs), whose INSERTs run
together as one statement set, i.e. one Flink job named ``<namespace>clicklib-<job>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clicklib.exceptions import DefinitionError
from clicklib.settings import Settings
from clicklib.templates import placeholders, render

WINDOW_TVF = re.compile(r"TABLE\s*\(\s*(TUMBLE|HOP|SESSION|CUMULATE)\s*\(", re.IGNORECASE)
JOB_LINE = re.compile(r"^--\s*jobs?:\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*$", re.MULTILINE)
CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(\w+)", re.IGNORECASE)
INSERT_INTO = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
TOPIC_OPTION = re.compile(r"'topic'\s*=\s*'([^']+)'")
PARTITION_TIME_COMMIT = re.compile(r"'sink\.partition-commit\.trigger'\s*=\s*'partition-time'")


@dataclass(frozen=True)
class Script:
    """One file of ``ksql/`` as read, before its placeholders are filled."""

    label: str  # "ksql/09_clickstream_clean.sql"
    text: str

    @property
    def jobs(self) -> list[str]:
        lines = JOB_LINE.findall(self.text)
        if len(lines) > 1:
            raise DefinitionError(
                f"{self.label}: has {len(lines)} job lines; name every job of the script on one `-- jobs:` line"
            )
        return [job.strip() for job in lines[0].split(",")] if lines else []


@dataclass(frozen=True)
class Statement:
    text: str
    source: str  # "ksql/09_clickstream_clean.sql:12"

    @property
    def is_insert(self) -> bool:
        return self.text.lstrip().upper().startswith("INSERT")


@dataclass(frozen=True)
class JobPlan:
    """One Flink job: the definitions its session needs and the INSERTs it runs."""

    name: str  # "aggregates"
    flink_name: str  # "t1_clicklib-aggregates", also its Kafka consumer group
    definitions: tuple[Statement, ...]
    inserts: tuple[Statement, ...]

    def _kafka_tables(self) -> list[tuple[str, str, bool, bool]]:
        """(table, topic, written by this job, read under a consumer group) per Kafka table."""
        written = {m.group(1) for s in self.inserts if (m := INSERT_INTO.match(s.text))}
        tables = []
        for statement in self.definitions:
            table = CREATE_TABLE.match(statement.text)
            topic = TOPIC_OPTION.search(statement.text)
            if table and topic:
                name = table.group(1)
                tables.append((name, topic.group(1), name in written, "properties.group.id" in statement.text))
        return tables

    @property
    def source_topics(self) -> list[str]:
        """The Kafka topics this job reads: its consumer-group tables that it does not write."""
        return [topic for _, topic, written, grouped in self._kafka_tables() if grouped and not written]

    @property
    def sink_topics(self) -> list[str]:
        """The Kafka topics this job writes: the topics of the tables it inserts into."""
        return [topic for _, topic, written, _ in self._kafka_tables() if written]

    @property
    def holds_output_for_watermark(self) -> bool:
        """Whether the job holds output back until its watermark passes: event-time windows, or
        the lake's folders, finished (their _SUCCESS file) only once the watermark passes their hour."""
        statements = (*self.definitions, *self.inserts)
        return any(WINDOW_TVF.search(s.text) or PARTITION_TIME_COMMIT.search(s.text) for s in statements)

    def statement_set(self, verb: str = "EXECUTE ") -> str:
        body = ";\n".join(s.text for s in self.inserts)
        return f"{verb}STATEMENT SET BEGIN\n{body};\nEND"


def split_statements(text: str) -> list[tuple[str, int]]:
    """Statements of a script with the line each starts on; ';' in quotes or comments is kept."""
    statements: list[tuple[str, int]] = []
    current: list[str] = []
    start_line = None
    line = 1
    i = 0
    in_quote = False
    while i < len(text):
        char = text[i]
        if not in_quote and text.startswith("--", i):
            end = text.find("\n", i)
            end = len(text) if end == -1 else end
            i = end
            continue
        if char == "'":
            in_quote = not in_quote
        if char == ";" and not in_quote:
            statement = "".join(current).strip()
            if statement:
                statements.append((statement, start_line or line))
            current, start_line = [], None
        else:
            if start_line is None and not char.isspace():
                start_line = line
            current.append(char)
        if char == "\n":
            line += 1
        i += 1
    tail = "".join(current).strip()
    if tail:
        statements.append((tail, start_line or line))
    return statements


def plan_jobs(
    settings: Settings, scripts: list[Script], group_suffix: str = "", avro_schemas: tuple | None = None
) -> tuple[JobPlan, ...]:
    """Fill and group scripts into jobs, in file order (``avro_schemas``: see ``placeholders``).

    Each job reads Kafka as consumer group ``<its Flink name><group_suffix>``.
    """
    if not scripts:
        raise DefinitionError("there are no SQL scripts (*.sql) to run")
    params = placeholders(settings, avro_schemas)
    shared: list[Script] = []
    by_job: dict[str, list[Script]] = {}
    for script in scripts:
        jobs = script.jobs
        for job in jobs:
            by_job.setdefault(job, []).append(script)
        if not jobs:
            shared.append(script)
    plans = []
    for job, files in by_job.items():
        flink_name = f"{settings.namespace}clicklib-{job}"
        job_params = {**params, "group_id": flink_name + group_suffix, "job": job}
        definitions: list[Statement] = []
        inserts: list[Statement] = []
        for script in [*shared, *files]:
            for text, line in split_statements(render(script.text, job_params, script.label)):
                statement = Statement(text, f"{script.label}:{line}")
                (inserts if statement.is_insert else definitions).append(statement)
        if not inserts:
            raise DefinitionError(f"job {job} ({', '.join(s.label for s in files)}) has no INSERT statement")
        plans.append(JobPlan(job, flink_name, tuple(definitions), tuple(inserts)))
    return tuple(plans)
