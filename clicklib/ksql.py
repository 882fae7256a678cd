"""Streaming SQL through the Flink SQL Gateway REST API.

A thin client: open a session, execute statements, fetch their result pages. Errors
from the gateway are raised with the statement that caused them and the gateway's
own root cause, not its whole Java stack trace.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from clicklib.exceptions import SqlError
from clicklib.settings import Settings, get_settings

HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Operation:
    session: str
    handle: str
    statement: str


class SqlGatewaySession:
    """One SQL Gateway session; use as a context manager so it is closed."""

    def __init__(self, settings: Settings | None = None, properties: dict[str, str] | None = None) -> None:
        self.settings = settings or get_settings()
        self.base = self.settings.sql_gateway_url.rstrip("/")
        body = {"properties": properties or {}}
        data = self._request("post", "/v1/sessions", "opening a session", json=body)
        self.handle: str = data["sessionHandle"]

    def __enter__(self) -> SqlGatewaySession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        # The gateway expires idle sessions on its own, so a failed close loses nothing.
        with contextlib.suppress(requests.RequestException):
            requests.delete(f"{self.base}/v1/sessions/{self.handle}", timeout=HTTP_TIMEOUT)

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> dict:
        url = f"{self.base}{path}"
        try:
            response = requests.request(method, url, timeout=HTTP_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise SqlError(
                f"sql-gateway at {self.base} is not reachable while {what} ({type(exc).__name__}); "
                "start it with `clicklib stack up` or set CLICKLIB_SQL_GATEWAY_URL"
            ) from exc
        if response.status_code >= 400:
            raise SqlError(f"sql-gateway refused {what}: {root_cause(response)}")
        return response.json() if response.content else {}

    def submit(self, statement: str) -> Operation:
        """Start a statement; returns at once with its operation."""
        data = self._request(
            "post",
            f"/v1/sessions/{self.handle}/statements",
            f"submitting `{_excerpt(statement)}`",
            json={"statement": statement},
        )
        return Operation(self.handle, data["operationHandle"], statement)

    def results(self, operation: Operation, poll: float = 0.2) -> Iterator[dict]:
        """Result rows as dicts (column name to value), page by page until the end."""
        # nextResultUri carries the rowFormat on, so only the first page names it.
        path = f"/v2/sessions/{operation.session}/operations/{operation.handle}/result/0?rowFormat=JSON"
        columns: list[str] = []
        while path:
            data = self._request("get", path, f"fetching results of `{_excerpt(operation.statement)}`")
            kind = data.get("resultType")
            results = data.get("results") or {}
            if results.get("columns"):
                columns = [c["name"] for c in results["columns"]]
            for row in results.get("data", []):
                if row.get("kind", "INSERT") in ("INSERT", "UPDATE_AFTER"):
                    yield dict(zip(columns, row["fields"], strict=False))
            if kind == "EOS":
                return
            next_uri = data.get("nextResultUri")
            if kind == "NOT_READY" or not data.get("results", {}).get("data"):
                time.sleep(poll)
            path = next_uri or path

    def execute(self, statement: str) -> list[dict]:
        """Run a statement to the end and return every row it produced."""
        return list(self.results(self.submit(statement)))

    def job_id(self, operation: Operation) -> str | None:
        """The Flink job an operation started (INSERT, or a streaming SELECT), once known."""
        path = f"/v2/sessions/{operation.session}/operations/{operation.handle}/result/0?rowFormat=JSON"
        data = self._request("get", path, "asking for the job id")
        return data.get("jobID")


def root_cause(response: requests.Response) -> str:
    """The most specific line of a gateway error: the last 'Caused by', else the first line."""
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    text = "\n".join(str(e) for e in errors)
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    if causes:
        return causes[-1].removeprefix("Caused by:").strip()
    return text.strip().splitlines()[0] if text.strip() else f"HTTP {response.status_code}"


def _excerpt(statement: str, width: int = 80) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
