"""Which saved state a job resumes from, and when it may not, decided without a cluster."""

import os
import time
from pathlib import Path

import pytest

from clicklib import definition, job_state
from clicklib.exceptions import ClicklibError
from clicklib.settings import Settings
from clicklib.sql_scripts import JobPlan, Statement


class NoCluster:
    """A Flink REST client whose cluster has forgotten every job (as after a JobManager crash)."""

    def latest_checkpoint(self, job_id):
        raise ClicklibError("flink is down")


def plan(*statements: str) -> JobPlan:
    parts = [Statement(text, f"ksql/x.sql:{n}") for n, text in enumerate(statements, start=1)]
    return JobPlan(
        "x", "t_clicklib-x", tuple(p for p in parts if not p.is_insert), tuple(p for p in parts if p.is_insert)
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, namespace="t_")


def checkpoint(settings: Settings, job_id: str, n: int, age: float) -> Path:
    folder = job_state.checkpoints_dir(settings) / job_id / f"chk-{n}"
    folder.mkdir(parents=True)
    (folder / "_metadata").write_text("x")
    then = time.time() - age
    os.utime(folder / "_metadata", (then, then))
    os.utime(folder.parent, (then, then))
    return folder


def test_the_fingerprint_ignores_session_options_and_sees_every_other_change():
    base = plan("SET 'a' = '1'", "CREATE TABLE t (x INT)", "INSERT INTO t SELECT 1")
    assert job_state.fingerprint(base) == job_state.fingerprint(
        plan("SET 'a' = '2'", "CREATE TABLE t (x INT)", "INSERT INTO t SELECT 1")
    )
    assert job_state.fingerprint(base) == job_state.fingerprint(
        plan("CREATE  TABLE t (x INT)", "INSERT INTO t\nSELECT 1")
    )
    assert job_state.fingerprint(base) != job_state.fingerprint(
        plan("CREATE TABLE t (x INT)", "INSERT INTO t SELECT 2")
    )


def test_the_shipped_jobs_have_distinct_fingerprints():
    jobs = definition.load(Settings(namespace="t1_")).jobs
    assert len({job_state.fingerprint(p) for p in jobs}) == len(jobs)


def test_the_newest_of_savepoints_and_retained_checkpoints_wins(settings):
    job = plan("CREATE TABLE t (x INT)", "INSERT INTO t SELECT 1")
    job_state.record_started(settings, job, "job-a")
    savepoint = settings.home / "savepoint-1"
    savepoint.mkdir()
    job_state.record_savepoint(settings, job.flink_name, "job-a", f"file:{savepoint}")
    record = job_state.load(settings, job.flink_name)
    record.savepoints[0]["taken_at"] = time.time() - 300
    job_state.save(settings, record)
    job_state.record_started(settings, job, "job-b")
    checkpoint(settings, "job-b", 3, age=600)
    newer = checkpoint(settings, "job-b", 4, age=60)

    state = job_state.newest_state(settings, NoCluster(), job.flink_name)
    assert (state.kind, state.path, state.job_id) == ("checkpoint", str(newer), "job-b")

    record = job_state.load(settings, job.flink_name)
    record.savepoints[0]["taken_at"] = time.time()
    job_state.save(settings, record)
    assert job_state.newest_state(settings, NoCluster(), job.flink_name).kind == "savepoint"


def test_a_savepoint_whose_files_are_gone_is_not_offered(settings):
    job = plan("INSERT INTO t SELECT 1")
    job_state.record_savepoint(settings, job.flink_name, "job-a", f"file:{settings.home / 'missing'}")
    assert job_state.newest_state(settings, NoCluster(), job.flink_name) is None


def test_changed_sql_is_noticed(settings):
    job_state.record_started(settings, plan("INSERT INTO t SELECT 1"), "job-a")
    assert not job_state.sql_changed(settings, plan("INSERT INTO t SELECT 1"))
    assert job_state.sql_changed(settings, plan("INSERT INTO t SELECT 2"))


def test_pruning_keeps_the_running_job_and_the_state_it_resumed_from(settings):
    job = plan("INSERT INTO t SELECT 1")
    for job_id in ("old", "resumed-from", "running"):
        job_state.record_started(settings, job, job_id)
        checkpoint(settings, job_id, 1, age=10)
    keep = job_state.SavedState(
        str(job_state.checkpoints_dir(settings) / "resumed-from" / "chk-1"), "checkpoint", 0, "resumed-from"
    )
    job_state.prune(settings, job.flink_name, keep, "running")
    left = sorted(p.name for p in job_state.checkpoints_dir(settings).iterdir())
    assert left == ["resumed-from", "running"]
    assert job_state.load(settings, job.flink_name).job_ids == ["resumed-from", "running"]


def test_forgetting_leaves_no_state_to_resume(settings):
    job = plan("INSERT INTO t SELECT 1")
    job_state.record_started(settings, job, "job-a")
    checkpoint(settings, "job-a", 1, age=10)
    job_state.forget(settings, job.flink_name)
    assert job_state.newest_state(settings, NoCluster(), job.flink_name) is None
    assert not (job_state.checkpoints_dir(settings) / "job-a").exists()


def test_the_sweep_removes_only_old_checkpoints_nobody_refers_to(settings):
    job_state.record_started(settings, plan("INSERT INTO t SELECT 1"), "recorded")
    for job_id in ("recorded", "active", "orphan-old"):
        checkpoint(settings, job_id, 1, age=3600)
    checkpoint(settings, "orphan-young", 1, age=5)
    assert job_state.sweep_orphans(settings, {"active"}) == ["orphan-old"]
    left = sorted(p.name for p in job_state.checkpoints_dir(settings).iterdir())
    assert left == ["active", "orphan-young", "recorded"]


def test_an_unreadable_record_is_named(settings):
    path = job_state.jobs_dir(settings) / "t_clicklib-x.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ClicklibError, match=r"t_clicklib-x\.json is unreadable.*delete it"):
        job_state.load(settings, "t_clicklib-x")
