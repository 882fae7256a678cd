"""The Flink SQL Gateway's REST API: sessions, statements and their results.

Errors from the gateway are raised with the gateway's own root cause, not its whole Java
stack trace.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import requests

from clicklib.exceptions import ClicklibError, SqlError
from clicklib.rest import RestClient


@dataclass(frozen=True)
class Operation:
    session: str
    handle: str
    statement: str


class SqlGatewayClient(RestClient):
    error = SqlError
    url_setting = "CLICKLIB_SQL_GATEWAY_URL"

    def error_text(self, response: requests.Response) -> str:
        """The most specific line of a gateway error: the last 'Caused by', else the first line."""
        try:
            errors = response.json().get("errors", [])
        except (ValueError, AttributeError):
            return f"HTTP {response.status_code}: {response.text[:300]}"
        text = "\n".join(str(e) for e in errors)
        causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
        if causes:
            return causes[-1].removeprefix("Caused by:").strip()
        return text.strip().splitlines()[0] if text.strip() else f"HTTP {response.status_code}"

    def session(self, properties: dict[str, str] | None = None) -> SqlGatewaySession:
        """A new session; use it as a context manager so it is closed."""
        data = self.json("post", "/v1/sessions", "opening a session", json={"properties": properties or {}})
        return SqlGatewaySession(self, data["sessionHandle"])

    def info(self) -> dict:
        return self.json("get", "/v1/info", "asking for its version")


class SqlGatewaySession:
    """One SQL Gateway session: statements run in it share its tables, views and SET options."""

    def __init__(self, client: SqlGatewayClient, handle: str) -> None:
        self.client = client
        self.handle = handle

    def __enter__(self) -> SqlGatewaySession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        # The gateway expires idle sessions on its own, so a failed close loses nothing.
        with contextlib.suppress(ClicklibError):
            self.client.request("delete", f"/v1/sessions/{self.handle}", "closing a session")

    def submit(self, statement: str) -> Operation:
        """Start a statement; returns at once with its operation."""
        data = self.client.json(
            "post",
            f"/v1/sessions/{self.handle}/statements",
            f"`{excerpt(statement)}`",
            json={"statement": statement},
        )
        return Operation(self.handle, data["operationHandle"], statement)

    def close_operation(self, operation: Operation) -> None:
        """Stop an operation; for a streaming query this cancels its Flink job."""
        with contextlib.suppress(ClicklibError):
            self.client.request(
                "delete",
                f"/v1/sessions/{operation.session}/operations/{operation.handle}/close",
                "closing an operation",
            )

    def results(self, operation: Operation, poll: float = 0.2, until: float | None = None) -> Iterator[dict]:
        """Result rows as dicts (column name to value), page by page until the end (or ``until``,
        a time.monotonic() deadline, for a query that never ends)."""
        # nextResultUri carries the rowFormat on, so only the first page names it.
        path = f"/v2/sessions/{operation.session}/operations/{operation.handle}/result/0?rowFormat=JSON"
        columns: list[str] = []
        while path:
            data = self.client.json("get", path, f"the results of `{excerpt(operation.statement)}`")
            kind = data.get("resultType")
            results = data.get("results") or {}
            if results.get("columns"):
                columns = [c["name"] for c in results["columns"]]
            for row in results.get("data", []):
                if row.get("kind", "INSERT") in ("INSERT", "UPDATE_AFTER"):
                    yield dict(zip(columns, row["fields"], strict=False))
            if kind == "EOS" or (until is not None and time.monotonic() > until):
                return
            next_uri = data.get("nextResultUri")
            if kind == "NOT_READY" or not results.get("data"):
                time.sleep(poll)
            path = next_uri or path

    def execute(self, statement: str) -> list[dict]:
        """Run a statement to the end and return every row it produced."""
        return list(self.results(self.submit(statement)))


def excerpt(statement: str, width: int = 80) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
