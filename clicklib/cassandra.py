"""Cassandra: the pipeline's schema, and queries into pandas DataFrames."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd
from cassandra.cluster import Cluster, NoHostAvailable, Session
from cassandra.query import SimpleStatement, dict_factory

from clicklib.exceptions import CassandraError
from clicklib.settings import Settings, get_settings
from clicklib.templates import pipeline_params, render

SCHEMA_FILE = Path(__file__).with_name("schema.cql")
PAGE_SIZE = 5000
TABLES = (
    "events_by_user",
    "events_by_day",
    "pageviews_per_minute",
    "user_activity",
    "user_sessions",
    "status_per_minute",
)

_sessions: dict[tuple, tuple[Cluster, Session]] = {}
_lock = threading.Lock()


def session(settings: Settings | None = None) -> Session:
    """A connected session, shared per contact point (the driver pools connections itself)."""
    settings = settings or get_settings()
    key = (tuple(settings.cassandra_contact_points), settings.cassandra_port, settings.cassandra_datacenter)
    with _lock:
        if key not in _sessions:
            cluster = Cluster(settings.cassandra_contact_points, port=settings.cassandra_port)
            try:
                _sessions[key] = (cluster, cluster.connect())
            except NoHostAvailable as exc:
                cluster.shutdown()
                raise CassandraError(
                    f"cassandra at {settings.cassandra_hosts}:{settings.cassandra_port} is not reachable; "
                    "start it with `clicklib stack up` or set CLICKLIB_CASSANDRA_HOSTS"
                ) from exc
        return _sessions[key][1]


def close_all() -> None:
    with _lock:
        for cluster, _ in _sessions.values():
            cluster.shutdown()
        _sessions.clear()


def schema_statements(settings: Settings) -> list[str]:
    """The schema file's statements with the keyspace and replication filled in."""
    text = render(SCHEMA_FILE.read_text(), pipeline_params(settings), str(SCHEMA_FILE))
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


def apply_schema(settings: Settings | None = None) -> None:
    """Create the keyspace and tables that do not exist yet."""
    settings = settings or get_settings()
    cql = session(settings)
    for statement in schema_statements(settings):
        try:
            cql.execute(statement, timeout=60)
        except Exception as exc:  # the driver's errors share no useful base class
            raise CassandraError(f"{SCHEMA_FILE.name}: Cassandra refused `{statement.splitlines()[0]}`: {exc}") from exc


def drop_keyspace(settings: Settings) -> None:
    session(settings).execute(f"DROP KEYSPACE IF EXISTS {settings.keyspace}", timeout=60)


def query_df(
    cql: str, params: Any = None, settings: Settings | None = None, page_size: int = PAGE_SIZE
) -> pd.DataFrame:
    """Run a CQL query and return every row as a DataFrame, fetching page by page."""
    statement = SimpleStatement(cql, fetch_size=page_size)
    cql_session = session(settings)
    try:
        result = cql_session.execute(statement, params, timeout=120, execution_profile=_dict_profile(cql_session))
    except Exception as exc:
        raise CassandraError(f"Cassandra refused `{cql}`: {exc}") from exc
    rows = list(result)  # iterating the result set fetches the following pages
    columns = list(result.column_names or [])
    return pd.DataFrame(rows, columns=columns or None)


def _dict_profile(cql_session: Session) -> str:
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile

    name = "clicklib-dicts"
    if name not in cql_session.cluster.profile_manager.profiles:
        default = cql_session.cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
        cql_session.cluster.add_execution_profile(
            name, ExecutionProfile(load_balancing_policy=default.load_balancing_policy, row_factory=dict_factory)
        )
    return name


def count_rows(table: str, settings: Settings | None = None) -> int:
    """Rows in one of the pipeline's tables (a full scan: fine for a laptop's data)."""
    settings = settings or get_settings()
    row = session(settings).execute(f"SELECT COUNT(*) FROM {settings.keyspace}.{table}", timeout=120).one()
    return int(row[0])
