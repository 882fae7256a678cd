"""Where each streaming SQL job's state lives between runs, and whether it can be resumed.

Flink keeps a job's state (open windows, sessions, de-duplication, Kafka offsets) in
savepoints (taken by ``pipeline down`` and ``stack down``) and retained checkpoints (taken
every checkpoint interval and kept when the job is cancelled or fails). clicklib records,
per job name, the Flink job ids it started, the savepoints it took and a fingerprint of the
SQL the job ran, under ``<home>/data/flink/jobs/``. ``pipeline up`` resumes each job from
the newest of its savepoints and retained checkpoints, and refuses, before anything is
submitted, state saved from SQL that has changed since.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clicklib.exceptions import ClicklibError
from clicklib.flink import FlinkClient
from clicklib.settings import Settings
from clicklib.sql_scripts import JobPlan

# Statements that set session options do not shape the job's state; everything else does.
OPTION_STATEMENTS = ("SET ", "RESET ")


@dataclass(frozen=True)
class SavedState:
    path: str  # what execution.state-recovery.path takes
    kind: str  # "savepoint" or "checkpoint"
    taken_at: float  # epoch seconds
    job_id: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.taken_at))
        return f"{self.kind} of {when} ({self.path})"


@dataclass
class JobRecord:
    flink_name: str
    sql_fingerprint: str = ""
    job_ids: list[str] = field(default_factory=list)
    savepoints: list[dict] = field(default_factory=list)  # {"path", "taken_at", "job_id"}


def jobs_dir(settings: Settings) -> Path:
    return settings.home / "data" / "flink" / "jobs"


def checkpoints_dir(settings: Settings) -> Path:
    return settings.home / "data" / "flink" / "checkpoints"


def savepoints_dir(settings: Settings) -> Path:
    return settings.home / "data" / "flink" / "savepoints"


def fingerprint(plan: JobPlan) -> str:
    """A digest of the statements that shape a job's state: its tables, views and INSERTs."""
    digest = hashlib.sha256()
    for statement in (*plan.definitions, *plan.inserts):
        text = " ".join(statement.text.split())
        if not text.upper().startswith(OPTION_STATEMENTS):
            digest.update(text.encode())
    return digest.hexdigest()


def load(settings: Settings, flink_name: str) -> JobRecord | None:
    path = jobs_dir(settings) / f"{flink_name}.json"
    try:
        return JobRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise ClicklibError(
            f"the saved-state record {path} is unreadable ({exc}); delete it to start {flink_name} afresh"
        ) from None


def save(settings: Settings, record: JobRecord) -> None:
    path = jobs_dir(settings) / f"{record.flink_name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(record), indent=2) + "\n")
    os.replace(temporary, path)  # a crash mid-write never leaves half a record


def record_started(settings: Settings, plan: JobPlan, job_id: str) -> None:
    record = load(settings, plan.flink_name) or JobRecord(plan.flink_name)
    record.sql_fingerprint = fingerprint(plan)
    if job_id not in record.job_ids:
        record.job_ids.append(job_id)
    save(settings, record)


def record_savepoint(settings: Settings, flink_name: str, job_id: str, path: str) -> None:
    record = load(settings, flink_name) or JobRecord(flink_name)
    record.savepoints.append({"path": path, "taken_at": time.time(), "job_id": job_id})
    save(settings, record)


def _local(path: str) -> Path | None:
    """A file: URI or path as a local path, if it is one."""
    if path.startswith("file:"):
        path = path.removeprefix("file:")
        while path.startswith("//"):
            path = path[1:]
    return Path(path) if path.startswith("/") else None


def _exists(path: str) -> bool:
    local = _local(path)
    return local is None or local.exists()  # a remote path (hdfs:, s3:) is taken on trust


def _local_checkpoints(settings: Settings, job_id: str) -> list[SavedState]:
    """Completed checkpoints of a job on this machine's checkpoint directory (those with metadata)."""
    found = []
    for metadata in (checkpoints_dir(settings) / job_id).glob("chk-*/_metadata"):
        found.append(SavedState(str(metadata.parent), "checkpoint", metadata.stat().st_mtime, job_id))
    return found


def newest_state(settings: Settings, flink: FlinkClient, flink_name: str) -> SavedState | None:
    """The newest savepoint or retained checkpoint of a job name, or None."""
    record = load(settings, flink_name)
    if record is None:
        return None
    candidates = [
        SavedState(s["path"], "savepoint", s["taken_at"], s["job_id"]) for s in record.savepoints if _exists(s["path"])
    ]
    for job_id in record.job_ids:
        candidates.extend(_local_checkpoints(settings, job_id))
        try:
            latest = flink.latest_checkpoint(job_id)
        except ClicklibError:
            latest = None  # Flink may be down or have forgotten the job; the disk still tells
        if latest is not None and _exists(latest[0]):
            candidates.append(SavedState(latest[0], "checkpoint", latest[1], job_id))
    return max(candidates, key=lambda s: s.taken_at, default=None)


def sql_changed(settings: Settings, plan: JobPlan) -> bool:
    """Whether the SQL of a job differs from the SQL its saved state was taken from."""
    record = load(settings, plan.flink_name)
    return record is not None and bool(record.sql_fingerprint) and record.sql_fingerprint != fingerprint(plan)


def prune(settings: Settings, flink_name: str, keep: SavedState | None, current_job: str = "") -> None:
    """Remove the retained checkpoints and savepoints of a job name except those of the job
    running now and the state in ``keep`` (the one it resumed from, whose files it may still
    refer to until its own first checkpoint)."""
    record = load(settings, flink_name)
    if record is None:
        return
    kept_jobs = {keep.job_id} if keep else set()
    if current_job:
        kept_jobs.add(current_job)
    for job_id in record.job_ids:
        if job_id not in kept_jobs:
            shutil.rmtree(checkpoints_dir(settings) / job_id, ignore_errors=True)
    savepoints = []
    for savepoint in record.savepoints:
        if keep is not None and savepoint["path"] == keep.path:
            savepoints.append(savepoint)
        elif (local := _local(savepoint["path"])) is not None:
            shutil.rmtree(local, ignore_errors=True)
    record.job_ids = [j for j in record.job_ids if j in kept_jobs]
    record.savepoints = savepoints
    save(settings, record)


def forget(settings: Settings, flink_name: str) -> None:
    """Drop every saved state of a job name: the next start is fresh."""
    prune(settings, flink_name, None)
    (jobs_dir(settings) / f"{flink_name}.json").unlink(missing_ok=True)


def recorded_names(settings: Settings) -> list[str]:
    """Every job name clicklib has recorded state for."""
    return sorted(p.stem for p in jobs_dir(settings).glob("*.json"))


def save_running(
    settings: Settings, flink: FlinkClient, names: list[str] | None = None, drain: bool = False
) -> dict[str, str]:
    """Stop each running job that clicklib started (or only ``names``) with a savepoint and record it
    (``drain``: firing every open window first, see ``FlinkClient.stop_with_savepoint``).

    Returns job name -> what happened. A job that cannot take a savepoint is cancelled: its
    newest retained checkpoint is kept, and the answer says so.
    """
    known = set(recorded_names(settings)) if names is None else set(names)
    jobs = {name: job for name, job in flink.active_jobs().items() if name in known}

    def save(name: str) -> str:
        job = jobs[name]
        try:
            path = flink.stop_with_savepoint(job.job_id, drain=drain)
        except ClicklibError as exc:
            flink.cancel(job.job_id)
            return f"cancelled without a savepoint ({exc}); its newest checkpoint is kept"
        record_savepoint(settings, name, job.job_id, path)
        return f"stopped with a savepoint at {path}"

    # Side by side: each job's savepoint waits mostly on its own checkpoint to complete.
    with ThreadPoolExecutor(max_workers=max(len(jobs), 1), thread_name_prefix="clicklib-savepoint") as pool:
        return dict(zip(jobs, pool.map(save, jobs), strict=True))


def sweep_orphans(settings: Settings, active_job_ids: set[str], min_age: float = 600.0) -> list[str]:
    """Remove checkpoint folders of jobs that no record refers to, that no longer run and that
    have not been written for ``min_age`` seconds (a purged namespace, a job of an older
    clicklib); returns their job ids."""
    referred = set(active_job_ids)
    for name in recorded_names(settings):
        record = load(settings, name)
        referred.update(record.job_ids if record else [])
    removed = []
    for folder in checkpoints_dir(settings).glob("*"):
        if folder.is_dir() and folder.name not in referred and time.time() - folder.stat().st_mtime > min_age:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed
