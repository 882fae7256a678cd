"""Flink's REST API: the cluster, its jobs, their vertices' metrics and watermarks."""

from __future__ import annotations

import contextlib
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
