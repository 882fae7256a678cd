"""Kafka Connect: the Cassandra sink connectors of ``connect/*.json``, over the Connect REST API.

Each file holds ``{"name": ..., "config": {...}}`` with ``${...}`` placeholders filled from
settings. Connectors are created or updated idempotently (``PUT /connectors/NAME/config``),
after Connect has validated every one of them, so a bad config creates nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from clicklib.exceptions import ConnectorError
from clicklib.settings import Settings, get_settings
from clicklib.templates import pipeline_params, render

CONNECT_DIR = Path(__file__).resolve().parents[1] / "connect"
HTTP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Connector:
    name: str
    config: dict[str, str]
    source: str


@dataclass(frozen=True)
class ConnectorStatus:
    name: str
    state: str
    tasks: list[str]
    trace: str = ""

    @property
    def running(self) -> bool:
        return self.state == "RUNNING" and bool(self.tasks) and all(t == "RUNNING" for t in self.tasks)


def load_connectors(settings: Settings, directory: Path = CONNECT_DIR) -> list[Connector]:
    """The connector configs of a directory, placeholders filled."""
    params = pipeline_params(settings)
    connectors = []
    for path in sorted(directory.glob("*.json")):
        text = render(path.read_text(), params, str(path))
        try:
            data = json.loads(text)
            connectors.append(Connector(data["name"], {k: str(v) for k, v in data["config"].items()}, str(path)))
        except (ValueError, KeyError, AttributeError) as exc:
            raise ConnectorError(
                f'{path}: not a connector config ({exc}); expected {{"name": ..., "config": {{...}}}}'
            ) from None
    if not connectors:
        raise ConnectorError(f"no connector configs (*.json) in {directory}")
    return connectors


class ConnectClient:
    """A thin client of one Connect cluster's REST API."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.base = self.settings.connect_url.rstrip("/")

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return requests.request(method, f"{self.base}{path}", timeout=HTTP_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise ConnectorError(
                f"connect at {self.base} is not reachable while {what} ({type(exc).__name__}); "
                "start it with `clicklib stack up` or set CLICKLIB_CONNECT_URL"
            ) from exc

    def validate(self, connector: Connector) -> None:
        """Ask the connector plugin to check a config; raise naming every field it rejects."""
        plugin = connector.config.get("connector.class", "")
        response = self._request(
            "put",
            f"/connector-plugins/{plugin}/config/validate",
            f"validating {connector.name}",
            json={**connector.config, "name": connector.name},
        )
        if response.status_code >= 400:
            raise ConnectorError(f"connector {connector.name} ({connector.source}): {_error_text(response)}")
        problems = [
            f"{item['value']['name']}: {'; '.join(item['value']['errors'])}"
            for item in response.json().get("configs", [])
            if item["value"].get("errors")
        ]
        if problems:
            raise ConnectorError(f"connector {connector.name} ({connector.source}) is invalid: " + " | ".join(problems))

    def put(self, connector: Connector) -> bool:
        """Create or update a connector; True when it was created."""
        response = self._request(
            "put", f"/connectors/{connector.name}/config", f"configuring {connector.name}", json=connector.config
        )
        if response.status_code >= 400:
            raise ConnectorError(f"connector {connector.name} ({connector.source}): {_error_text(response)}")
        return response.status_code == 201

    def names(self) -> list[str]:
        response = self._request("get", "/connectors", "listing connectors")
        response.raise_for_status()
        return sorted(response.json())

    def status(self, name: str) -> ConnectorStatus:
        response = self._request("get", f"/connectors/{name}/status", f"asking for {name}'s status")
        if response.status_code == 404:
            return ConnectorStatus(name, "MISSING", [])
        response.raise_for_status()
        data = response.json()
        tasks = sorted(data.get("tasks", []), key=lambda t: t["id"])
        trace = "\n".join(t.get("trace", "") for t in tasks if t.get("trace"))
        return ConnectorStatus(name, data["connector"]["state"], [t["state"] for t in tasks], trace)

    def restart_failed(self, name: str) -> None:
        """Restart the connector and only its failed tasks."""
        self._request(
            "post",
            f"/connectors/{name}/restart",
            f"restarting {name}",
            params={"includeTasks": "true", "onlyFailed": "true"},
        )

    def pause(self, name: str) -> None:
        """Stop a connector's tasks from consuming; its offsets stay where they are."""
        self._request("put", f"/connectors/{name}/pause", f"pausing {name}").raise_for_status()

    def resume(self, name: str) -> None:
        self._request("put", f"/connectors/{name}/resume", f"resuming {name}").raise_for_status()

    def delete(self, name: str) -> None:
        response = self._request("delete", f"/connectors/{name}", f"deleting {name}")
        if response.status_code not in (204, 404):
            raise ConnectorError(f"connect refused to delete {name}: {_error_text(response)}")

    def wait_running(self, names: list[str], timeout: float = 120.0) -> list[ConnectorStatus]:
        """Wait until every named connector and its tasks run; a failed one raises with its trace."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = [self.status(name) for name in names]
            failed = [s for s in statuses if s.state == "FAILED" or "FAILED" in s.tasks]
            if failed:
                first = failed[0]
                raise ConnectorError(
                    f"connector {first.name} failed: {first.trace.splitlines()[0] if first.trace else first.state}"
                )
            if all(s.running for s in statuses):
                return statuses
            if time.monotonic() > deadline:
                waiting = ", ".join(f"{s.name} ({s.state} {s.tasks})" for s in statuses if not s.running)
                raise ConnectorError(f"connectors not running after {timeout:.0f} s: {waiting}")
            time.sleep(1.0)


def _error_text(response: requests.Response) -> str:
    try:
        return response.json().get("message", response.text)[:2000]
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"


def register(settings: Settings | None = None, directory: Path = CONNECT_DIR) -> list[str]:
    """Validate every connector config, then create or update them all and wait until they run.

    Returns the names of the connectors. Connectors this call created are deleted again
    if any of them cannot be created or does not start.
    """
    settings = settings or get_settings()
    client = ConnectClient(settings)
    connectors = load_connectors(settings, directory)
    for connector in connectors:
        client.validate(connector)
    created: list[str] = []
    try:
        for connector in connectors:
            if client.put(connector):
                created.append(connector.name)
        client.wait_running([c.name for c in connectors])
    except BaseException:
        for name in created:
            client.delete(name)
        raise
    return [c.name for c in connectors]


def unregister(settings: Settings | None = None, directory: Path = CONNECT_DIR) -> list[str]:
    """Delete the pipeline's connectors (their consumer offsets stay in Kafka)."""
    settings = settings or get_settings()
    client = ConnectClient(settings)
    existing = set(client.names())
    names = [c.name for c in load_connectors(settings, directory) if c.name in existing]
    for name in names:
        client.delete(name)
    return names
