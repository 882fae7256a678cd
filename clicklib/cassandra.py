"""Cassandra: the pipeline's schema, and queries into pandas DataFrames."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.connection import ConnectionException
from cassandra.policies import ExponentialReconnectionPolicy
from cassandra.query import SimpleStatement, dict_factory

from clicklib.exceptions import CassandraError
from clicklib.secrets import cassandra_login
from clicklib.settings import Settings
from clicklib.templates import EVENT_BUCKET_MS, render

PAGE_SIZE = 5000
DICTS = "clicklib-dicts"  # the execution profile that returns rows as dicts
TABLES = (
    "events_by_user",
    "events_by_day",
    "pageviews_per_minute",
    "user_activity",
    "user_sessions",
    "status_per_minute",
    "session_summary",
    "daily_kpis",
)


def schema_statements(text: str, params: dict[str, str], source: str) -> tuple[str, ...]:
    """The schema file's statements with the keyspace and replication filled in."""
    rendered = render(text, params, source)
    lines = [line for line in rendered.splitlines() if not line.strip().startswith("--")]
    return tuple(statement.strip() for statement in "\n".join(lines).split(";") if statement.strip())


def session_security(login: tuple[str, str] | None, ssl_ca: str) -> dict[str, Any]:
    """The driver's login and TLS arguments for a Cluster."""
    options: dict[str, Any] = {}
    if login:
        options["auth_provider"] = PlainTextAuthProvider(username=login[0], password=login[1])
    if ssl_ca:
        options["ssl_context"] = ssl.create_default_context(cafile=ssl_ca)
    return options


def refused_login(exc: NoHostAvailable) -> str:
    """The server's reason when a node refused the login, else "" (the password is not in it)."""
    for error in exc.errors.values():
        if isinstance(error, AuthenticationFailed) or "AuthenticationFailed" in type(error).__name__:
            return str(error).split("message=")[-1].strip("\"')>")[:200]
        if "Authentication" in str(error) or "authenticat" in str(error).lower():
            return str(error)[:200]
    return ""


class CassandraClient:
    """A thin client of one Cassandra cluster: one driver session, opened on first use and
    kept (the driver pools its connections itself)."""

    def __init__(self, settings: Settings, role: str = "admin") -> None:
        # Who the session logs in as (secrets.cassandra_login): the secure profile's admin sets up
        # keyspaces, its reader may only read them.
        self.login = cassandra_login(settings, role)
        self.ssl_ca = settings.cassandra_ssl_ca
        self.contact_points = settings.cassandra_contact_points
        self.port = settings.cassandra_port
        self.address = f"{settings.cassandra_hosts}:{settings.cassandra_port}"
        self.keyspace = settings.keyspace
        self.timeout = settings.request_timeout
        self._cluster: Cluster | None = None
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            dicts = ExecutionProfile(row_factory=dict_factory)
            cluster = Cluster(
                self.contact_points,
                port=self.port,
                connect_timeout=self.timeout,
                execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(), DICTS: dicts},
                # After Cassandra restarts, find it again within seconds (the default waits up to 10 min).
                reconnection_policy=ExponentialReconnectionPolicy(0.5, 5.0, max_attempts=None),
                **session_security(self.login, self.ssl_ca),
            )
            try:
                self._session = cluster.connect()
            except NoHostAvailable as exc:
                cluster.shutdown()
                if refused_login(exc):
                    raise CassandraError(
                        f"cassandra at {self.address} refused the login of "
                        f"{self.login[0] if self.login else 'an anonymous session'}: {refused_login(exc)}; check "
                        "CLICKLIB_CASSANDRA_USERNAME and CLICKLIB_CASSANDRA_PASSWORD, or CLICKLIB_SECURE=1 for the "
                        "secure profile",
                        self.address,
                    ) from None
                raise CassandraError(
                    f"cassandra at {self.address} is not reachable; "
                    "start it with `clicklib stack up` or set CLICKLIB_CASSANDRA_HOSTS",
                    self.address,
                ) from exc
            self._cluster = cluster
        return self._session

    def execute(self, cql: str, params: Any = None, what: str = "") -> Any:
        try:
            return self._while_reconnecting(lambda: self.session.execute(cql, params, timeout=self.timeout))
        except CassandraError:
            raise
        except Exception as exc:  # the driver's errors share no useful base class
            raise CassandraError(
                f"cassandra at {self.address} refused {what or '`' + cql.splitlines()[0] + '`'}: {exc}", self.address
            ) from exc

    def _while_reconnecting(self, request: Callable[[], Any]) -> Any:
        """Run ``request``, waiting up to the timeout while the driver has no node to send it to.

        After a node restarts, the session finds it again within seconds (the reconnection
        policy above); until then the driver tries no host at all, or only the connections the
        old node closed, and fails at once. A node that was tried and answered with an error is a
        real error, and is raised as it is."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return request()
            except NoHostAvailable as exc:
                lost = all(isinstance(error, ConnectionException) for error in exc.errors.values())
                if not lost or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def apply_schema(self, statements: Sequence[str]) -> None:
        """Create the keyspace and tables that do not exist yet."""
        for statement in statements:
            self.execute(statement, what=f"the schema statement `{statement.splitlines()[0]}`")

    def apply_ttls(self, ttls: dict[str, int], tables: Sequence[str]) -> None:
        """Give tables a default time to live (seconds; 0 keeps rows for good). New writes take it."""
        unknown = sorted(set(ttls) - set(tables))
        if unknown:
            raise CassandraError(
                f"CLICKLIB_CASSANDRA_TTL names {', '.join(unknown)}, which the pipeline does not have; "
                f"its tables are {', '.join(tables)}",
                self.address,
            )
        for table, seconds in ttls.items():
            self.execute(f"ALTER TABLE {self.keyspace}.{table} WITH default_time_to_live = {seconds}")

    def drop_keyspace(self) -> None:
        self.execute(f"DROP KEYSPACE IF EXISTS {self.keyspace}")

    def query_df(self, cql: str, params: Any = None, page_size: int = PAGE_SIZE) -> pd.DataFrame:
        """Run a CQL query and return every row as a DataFrame, fetching page by page."""
        statement = SimpleStatement(cql, fetch_size=page_size)
        try:
            result = self._while_reconnecting(
                lambda: self.session.execute(statement, params, timeout=self.timeout, execution_profile=DICTS)
            )
            rows = list(result)  # iterating the result set fetches the following pages
        except CassandraError:
            raise
        except Exception as exc:
            raise CassandraError(f"cassandra at {self.address} refused `{cql}`: {exc}", self.address) from exc
        return pd.DataFrame(rows, columns=list(result.column_names or []) or None)

    def partitions_df(self, table: str, key: str, values: Sequence[Any], chunk: int = 100) -> pd.DataFrame:
        """Every row of the given partitions of a table (``key`` its partition key), as a DataFrame:
        a read bounded by what it asks for, never a scan of the whole table."""
        frames = []
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), chunk):
            part = unique[start : start + chunk]
            marks = ", ".join(["%s"] * len(part))
            frames.append(self.query_df(f"SELECT * FROM {self.keyspace}.{table} WHERE {key} IN ({marks})", part))
        if not frames:  # no partition asked for: no rows, with the table's columns (no query)
            return pd.DataFrame(columns=self.columns(table))
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def day_buckets_df(self, table: str, days: Sequence[Any], buckets: Sequence[int] | None = None) -> pd.DataFrame:
        """Every row of a table keyed by (day, bucket), such as events_by_day, for the given UTC
        days: each day's slots (``buckets``, by default all of them) asked for by partition key,
        100 at a time, never a scan of the table."""
        slots = list(buckets) if buckets is not None else list(range(86_400_000 // EVENT_BUCKET_MS))
        frames = []
        for day in dict.fromkeys(days):
            for start in range(0, len(slots), 100):
                part = slots[start : start + 100]
                marks = ", ".join(["%s"] * len(part))
                cql = f"SELECT * FROM {self.keyspace}.{table} WHERE day = %s AND bucket IN ({marks})"
                frame = self.query_df(cql, [day, *part])
                if len(frame):
                    frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=self.columns(table))
        return pd.concat(frames, ignore_index=True)

    def columns(self, table: str) -> list[str]:
        """A table's columns in schema order, from the driver's schema metadata."""
        keyspace = self.session.cluster.metadata.keyspaces.get(self.keyspace)
        if keyspace is None or table not in keyspace.tables:
            raise CassandraError(f"cassandra at {self.address} has no table {self.keyspace}.{table}", self.address)
        return list(keyspace.tables[table].columns)

    def count_rows(self, table: str) -> int:
        """Rows in one of the pipeline's tables (a full scan: fine for a laptop's data)."""
        return int(self.execute(f"SELECT COUNT(*) FROM {self.keyspace}.{table}").one()[0])

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None
