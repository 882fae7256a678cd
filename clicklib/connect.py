"""Kafka Connect: the Cassandra sink connectors of ``connect/*.json``, over the Connect REST API.

Each file holds ``{"name": ..., "config": {...}}`` with ``${...}`` placeholders filled from
settings. Connectors are created or updated idempotently (``PUT /connectors/NAME/config``),
after Connect has validated every one of them, so a bad config creates nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from clicklib.exceptions import ConnectorError, DefinitionError
from clicklib.rest import RestClient


@dataclass(frozen=True)
class Connector:
    name: str
    config: dict[str, str]
    source: str  # "connect/events-by-user.json"

    @property
    def topics(self) -> list[str]:
        return [t.strip() for t in self.config.get("topics", "").split(",") if t.strip()]

    @property
    def consumer_group(self) -> str:
        """The consumer group Connect gives a sink connector's tasks."""
        return f"connect-{self.name}"


@dataclass(frozen=True)
class ConnectorStatus:
    name: str
    state: str
    tasks: list[str] = field(default_factory=list)
    trace: str = ""

    @property
    def running(self) -> bool:
        return self.state == "RUNNING" and bool(self.tasks) and all(t == "RUNNING" for t in self.tasks)

    def __str__(self) -> str:
        return f"{self.state} {' '.join(self.tasks)}".strip()


def parse_connector(text: str, source: str) -> Connector:
    """A connector config file's text (placeholders filled) as a Connector."""
    try:
        data = json.loads(text)
        return Connector(data["name"], {k: str(v) for k, v in data["config"].items()}, source)
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise DefinitionError(
            f'{source}: not a connector config ({exc}); expected {{"name": ..., "config": {{...}}}}'
        ) from None


class ConnectClient(RestClient):
    """A thin client of one Connect cluster's REST API."""

    error = ConnectorError
    url_setting = "CLICKLIB_CONNECT_URL"
    login_settings = "CLICKLIB_CONNECT_USERNAME and CLICKLIB_CONNECT_PASSWORD"

    def info(self) -> dict:
        """The worker's version and the Kafka cluster it belongs to."""
        return self.json("get", "/", "asking for its version")

    def plugins(self) -> list[dict]:
        return self.json("get", "/connector-plugins", "listing connector plugins")

    def validate(self, connector: Connector) -> None:
        """Ask the connector plugin to check a config; raise naming every field it rejects."""
        plugin = connector.config.get("connector.class", "")
        response = self.request(
            "put",
            f"/connector-plugins/{plugin}/config/validate",
            f"validating {connector.name}",
            json={**connector.config, "name": connector.name},
        )
        if response.status_code >= 400:
            raise self.fail(f"connector {connector.name} ({connector.source}): {self.error_text(response)}")
        problems = [
            f"{item['value']['name']}: {'; '.join(item['value']['errors'])}"
            for item in response.json().get("configs", [])
            if item["value"].get("errors")
        ]
        if problems:
            raise self.fail(f"connector {connector.name} ({connector.source}) is invalid: " + " | ".join(problems))

    def put(self, connector: Connector) -> bool:
        """Create or update a connector; True when it was created."""
        response = self.request(
            "put", f"/connectors/{connector.name}/config", f"configuring {connector.name}", json=connector.config
        )
        if response.status_code >= 400:
            raise self.fail(f"connector {connector.name} ({connector.source}): {self.error_text(response)}")
        return response.status_code == 201

    def names(self) -> list[str]:
        return sorted(self.json("get", "/connectors", "listing connectors"))

    def status(self, name: str) -> ConnectorStatus:
        response = self.request("get", f"/connectors/{name}/status", f"asking for {name}'s status")
        if response.status_code == 404:
            return ConnectorStatus(name, "MISSING")
        if response.status_code >= 400:
            raise self.fail(f"connect at {self.base} refused {name}'s status: {self.error_text(response)}")
        data = response.json()
        tasks = sorted(data.get("tasks", []), key=lambda t: t["id"])
        trace = "\n".join(t.get("trace", "") for t in tasks if t.get("trace"))
        return ConnectorStatus(name, data["connector"]["state"], [t["state"] for t in tasks], trace)

    def restart_failed(self, name: str) -> None:
        """Restart the connector and only its failed tasks."""
        self.request(
            "post",
            f"/connectors/{name}/restart",
            f"restarting {name}",
            params={"includeTasks": "true", "onlyFailed": "true"},
        )

    def restart_all(self, name: str) -> None:
        """Restart the connector and every task, running or not (one stalled or unassigned)."""
        response = self.request(
            "post",
            f"/connectors/{name}/restart",
            f"restarting {name}",
            params={"includeTasks": "true", "onlyFailed": "false"},
        )
        if response.status_code >= 400:
            raise self.fail(f"connect at {self.base} refused to restart {name}: {self.error_text(response)}")

    def pause(self, name: str) -> None:
        """Stop a connector's tasks from consuming; its offsets stay where they are."""
        self.json("put", f"/connectors/{name}/pause", f"pausing {name}")

    def resume(self, name: str) -> None:
        self.json("put", f"/connectors/{name}/resume", f"resuming {name}")

    def delete(self, name: str) -> None:
        response = self.request("delete", f"/connectors/{name}", f"deleting {name}")
        if response.status_code not in (204, 404):
            raise self.fail(f"connect at {self.base} refused to delete {name}: {self.error_text(response)}")

    def wait_running(self, names: Sequence[str], timeout: float = 120.0) -> list[ConnectorStatus]:
        """Wait until every named connector and its tasks run; a failed one raises with its trace."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = [self.status(name) for name in names]
            failed = [s for s in statuses if s.state == "FAILED" or "FAILED" in s.tasks]
            if failed:
                first = failed[0]
                raise self.fail(
                    f"connector {first.name} failed: {first.trace.splitlines()[0] if first.trace else first.state}"
                )
            if all(s.running for s in statuses):
                return statuses
            if time.monotonic() > deadline:
                waiting = ", ".join(f"{s.name} ({s})" for s in statuses if not s.running)
                raise self.fail(f"connectors not running after {timeout:.0f} s: {waiting}")
            time.sleep(1.0)

    def register(self, connectors: Sequence[Connector], validated: bool = False) -> list[str]:
        """Validate every connector config (unless done already), then create or update them all and
        wait until they run. Returns their names.

        Connectors this call created are deleted again if any of them cannot be created or does
        not start.
        """
        if not validated:
            for connector in connectors:
                self.validate(connector)
        created: list[str] = []
        try:
            for connector in connectors:
                if self.put(connector):
                    created.append(connector.name)
            self.wait_running([c.name for c in connectors])
        except BaseException:
            for name in created:
                self.delete(name)
            raise
        return [c.name for c in connectors]

    def unregister(self, connectors: Sequence[Connector]) -> list[str]:
        """Delete the connectors that exist (their consumer offsets stay in Kafka)."""
        existing = set(self.names())
        names = [c.name for c in connectors if c.name in existing]
        for name in names:
            self.delete(name)
        return names
