"""Flink's REST API: the cluster, its jobs, their vertices' metrics and watermarks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clicklib.exceptions import FlinkError
from clicklib.rest import RestClient

ACTIVE_STATES = frozenset({"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "RECONCILING"})


@dataclass(frozen=True)
class JobInfo:
    name: str
    job_id: str
    state: str
    start_time: int

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class FlinkClient(RestClient):
    error = FlinkError
    url_setting = "CLICKLIB_FLINK_REST_URL"

    def overview(self) -> dict[str, Any]:
        """The cluster: version, TaskManagers, slots, jobs running."""
        return self.json("get", "/overview", "asking for the cluster overview")

    def taskmanagers(self) -> list[dict[str, Any]]:
        """The TaskManagers registered with the cluster, each with its ``id``, slots and last heartbeat."""
        answer = self.json("get", "/taskmanagers", "listing its taskmanagers")
        with self.reading("the list of taskmanagers"):
            return list(answer["taskmanagers"])

    def config(self) -> dict[str, Any]:
        """The cluster's version and the web UI's features (such as whether jars can be uploaded)."""
        return self.json("get", "/config", "asking for its configuration")

    def jobs(self) -> list[JobInfo]:
        """Every job the cluster knows, newest first."""
        data = self.json("get", "/jobs/overview", "listing jobs")
        with self.reading("the job list"):
            jobs = [JobInfo(j["name"], j["jid"], j["state"], j.get("start-time", 0)) for j in data["jobs"]]
        return sorted(jobs, key=lambda j: j.start_time, reverse=True)

    @contextlib.contextmanager
    def reading(self, what: str) -> Iterator[None]:
        """An answer in a shape clicklib does not know (another Flink version) is an error naming it."""
        try:
            yield
        except (KeyError, TypeError, ValueError) as exc:
            raise self.fail(
                f"flink at {self.base} answered with {what} in a form clicklib does not know "
                f"({type(exc).__name__}: {exc}); is it Flink 2.x?"
            ) from None

    def active_jobs(self) -> dict[str, JobInfo]:
        """The newest active job of each name."""
        return {j.name: j for j in reversed(self.jobs()) if j.active}

    def job(self, job_id: str) -> dict[str, Any]:
        return self.json("get", f"/jobs/{job_id}", f"asking for job {job_id}")

    def vertices(self, job_id: str) -> list[dict[str, Any]]:
        """The job's vertices, each with at least ``id`` and ``name``."""
        job = self.job(job_id)
        with self.reading(f"the vertices of job {job_id}"):
            return [{**v, "id": v["id"], "name": v["name"]} for v in job.get("vertices", [])]

    def cancel(self, job_id: str) -> None:
        response = self.request("patch", f"/jobs/{job_id}", f"cancelling job {job_id}", params={"mode": "cancel"})
        # 404: the job is gone already, which is what cancelling wants.
        if response.status_code >= 400 and response.status_code != 404:
            raise self.fail(f"flink at {self.base} refused to cancel job {job_id}: {self.error_text(response)}")

    def job_restarts(self, job_id: str) -> int:
        """How often Flink restarted the job after a failure (its ``numRestarts`` metric)."""
        values = self.json(
            "get", f"/jobs/{job_id}/metrics", f"reading metrics of job {job_id}", params={"get": "numRestarts"}
        )
        with self.reading(f"the restarts of job {job_id}"):
            return int(float(next((v["value"] for v in values if v["id"] == "numRestarts"), 0)))

    def vertex_metric_names(self, job_id: str, vertex_id: str) -> list[str]:
        path = f"/jobs/{job_id}/vertices/{vertex_id}/metrics"
        metrics = self.json("get", path, f"listing metrics of job {job_id}")
        with self.reading(f"the metric names of job {job_id}"):
            return [m["id"] for m in metrics]

    def vertex_metrics(self, job_id: str, vertex_id: str, names: list[str]) -> dict[str, float]:
        """Current values of a vertex's metrics, summed over its subtasks by Flink."""
        if not names:
            return {}
        path = f"/jobs/{job_id}/vertices/{vertex_id}/metrics"
        values = self.json("get", path, f"reading metrics of job {job_id}", params={"get": ",".join(names)})
        with self.reading(f"the metrics of job {job_id}"):
            return {v["id"]: float(v["value"]) for v in values}

    def vertex_watermarks(self, job_id: str, vertex_id: str) -> list[int]:
        """The current input watermark of each subtask of a vertex (epoch ms)."""
        path = f"/jobs/{job_id}/vertices/{vertex_id}/watermarks"
        values = self.json("get", path, f"reading watermarks of job {job_id}")
        with self.reading(f"the watermarks of job {job_id}"):
            return [int(float(v["value"])) for v in values]

    def stop_with_savepoint(self, job_id: str, timeout: float = 120.0, drain: bool = False) -> str:
        """Stop a job, taking a savepoint first; returns the savepoint's path.

        Without draining: open windows are not fired but kept in the savepoint, so a job
        resumed from it carries on as if it had never stopped. ``drain``: the sources first
        send the end of event time, so every open window fires before the savepoint.
        """
        body = {"drain": drain, "formatType": "CANONICAL"}
        trigger = self.json("post", f"/jobs/{job_id}/stop", f"stopping job {job_id} with a savepoint", json=body)
        with self.reading("the savepoint trigger"):
            request = trigger["request-id"]
        deadline = time.monotonic() + timeout
        while True:
            answer = self.json("get", f"/jobs/{job_id}/savepoints/{request}", f"the savepoint of job {job_id}")
            with self.reading(f"the savepoint of job {job_id}"):
                status = answer["status"]["id"]
                operation = answer.get("operation") or {}
            if status == "COMPLETED":
                if "location" in operation:
                    return operation["location"]
                cause = (operation.get("failure-cause") or {}).get("stack-trace", "no reason given")
                raise self.fail(f"flink could not take a savepoint of job {job_id}: {_first_cause(cause)}")
            if time.monotonic() > deadline:
                raise self.fail(f"the savepoint of job {job_id} did not complete within {timeout:.0f} s")
            time.sleep(0.5)

    def latest_checkpoint(self, job_id: str) -> tuple[str, float] | None:
        """The path and time (epoch s) of a job's newest completed checkpoint, if Flink knows the job."""
        response = self.request("get", f"/jobs/{job_id}/checkpoints", f"asking for the checkpoints of job {job_id}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise self.fail(
                f"flink at {self.base} refused the checkpoints of job {job_id}: {self.error_text(response)}"
            )
        with self.reading(f"the checkpoints of job {job_id}"):
            completed = (response.json().get("latest") or {}).get("completed")
            if not completed or not completed.get("external_path"):
                return None
            return completed["external_path"], completed["latest_ack_timestamp"] / 1000

    def root_cause(self, job_id: str) -> str:
        """The first line of the newest exception a job hit, or '' when it hit none."""
        response = self.request("get", f"/jobs/{job_id}/exceptions", f"asking for the exceptions of job {job_id}")
        if response.status_code >= 400:
            return ""
        data = response.json()
        history = (data.get("exceptionHistory") or {}).get("entries") or []
        trace = history[0].get("stacktrace", "") if history else data.get("root-exception") or ""
        return _first_cause(trace)


def _first_cause(trace: str) -> str:
    """The most specific line of a Java stack trace: the last 'Caused by', else the first line."""
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    return (causes[-1] if causes else lines[0] if lines else "")[:500]
