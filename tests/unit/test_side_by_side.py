"""Jobs checked and started side by side fail as a loop over them would: every job's work has
finished (or failed) before the error is raised, and the error is the first job's in the
definition's order, whichever thread failed first."""

import threading
import time

import pytest

from clicklib.sql_scripts import JobPlan
from clicklib.streaming_sql import side_by_side


def plans(*names: str) -> list[JobPlan]:
    return [JobPlan(name, f"t_clicklib-{name}", (), ()) for name in names]


def test_every_job_runs_at_once():
    arrived = threading.Barrier(3, timeout=5)  # breaks unless all three are in their work together
    done = []

    def work(plan: JobPlan) -> None:
        arrived.wait()
        done.append(plan.name)

    side_by_side(plans("ingest", "enrich", "aggregates"), work)
    assert sorted(done) == ["aggregates", "enrich", "ingest"]


def test_the_first_job_in_order_names_the_error_after_all_have_finished():
    finished = []

    def work(plan: JobPlan) -> None:
        if plan.name == "ingest":
            time.sleep(0.3)  # fails last in time, first in order
            raise ValueError("ingest is broken")
        if plan.name == "aggregates":
            raise ValueError("aggregates is broken")
        time.sleep(0.5)
        finished.append(plan.name)

    with pytest.raises(ValueError, match="ingest is broken"):
        side_by_side(plans("ingest", "enrich", "aggregates"), work)
    assert finished == ["enrich"]


def test_no_jobs_is_nothing_to_do():
    side_by_side([], lambda plan: pytest.fail("called without a job"))
