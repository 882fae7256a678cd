"""The stall bookkeeping: since when a part fails, when it is overdue, and whether a consumer moves."""

from __future__ import annotations

from clicklib.stack.stalls import Progress, Stall, StallWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_part_is_overdue_only_after_failing_for_the_whole_bound():
    clock = Clock()
    watch = StallWatch(90.0, clock)
    watch.failing("kafka", "metadata request: timed out")
    clock.now += 89
    watch.failing("kafka", "metadata request: timed out")
    assert not watch.overdue("kafka")
    clock.now += 1
    assert watch.overdue("kafka")
    assert watch.failing_for("kafka") == 90


def test_one_passing_check_ends_the_stall_and_its_clock():
    clock = Clock()
    watch = StallWatch(90.0, clock)
    watch.failing("connect", "GET /connector-plugins: timed out")
    clock.now += 60
    watch.fine("connect")
    assert watch.stalls == {}
    watch.failing("connect", "GET /connector-plugins: timed out")
    clock.now += 60
    assert not watch.overdue("connect"), "a new stall counts from its own start"


def test_a_part_waiting_for_another_is_not_overdue_while_that_one_fails():
    clock = Clock()
    watch = StallWatch(90.0, clock)
    for _ in range(10):
        watch.failing("flink-taskmanager", "waits for flink-jobmanager")
        watch.waiting("flink-taskmanager")
        clock.now += 30
    assert not watch.overdue("flink-taskmanager")
    assert "flink-taskmanager" in watch.stalls, "still shown as stalled"


def test_after_a_heal_the_part_gets_the_whole_bound_again():
    clock = Clock()
    watch = StallWatch(60.0, clock)
    watch.failing("job j", "RUNNING, no checkpoint completed for 90 s")
    clock.now += 60
    assert watch.overdue("job j")
    watch.healed("job j")
    assert not watch.overdue("job j")
    clock.now += 60
    assert watch.overdue("job j")


def test_the_stall_keeps_its_first_time_and_the_last_detail():
    clock = Clock()
    watch = StallWatch(90.0, clock)
    first = watch.failing("connector c", "RUNNING RUNNING, yet commits nothing", lag=10)
    since = first.since
    clock.now += 30
    watch.failing("connector c", "RUNNING RUNNING, yet commits nothing", lag=250)
    stall = watch.stalls["connector c"]
    assert stall.since == since and stall.lag == 250
    assert (
        stall.describe(now=since + 42)
        == "connector c stalled for 42 s, 250 record(s) behind: RUNNING RUNNING, yet commits nothing"
    )
    assert Stall(**stall.to_dict()) == stall


def test_parts_no_longer_there_are_forgotten():
    watch = StallWatch(90.0, Clock())
    watch.failing("connector gone", "UNASSIGNED")
    watch.failing("kafka", "timed out")
    watch.forget_except({"kafka"})
    assert set(watch.stalls) == {"kafka"}
    assert not watch.overdue("connector gone")


def test_a_consumer_moves_when_it_commits_or_has_nothing_left():
    progress = Progress()
    assert progress.moved("c", committed=100, lag=50), "the first reading is no evidence of a stall"
    assert not progress.moved("c", committed=100, lag=80)
    assert progress.moved("c", committed=130, lag=50)
    assert progress.moved("c", committed=130, lag=0), "caught up: nothing to commit"
    assert not progress.moved("c", committed=130, lag=1)
    assert progress.still("c") == 1
    assert not progress.moved("c", committed=130, lag=9)
    assert progress.still("c") == 2, "rounds in a row without a commit"
    progress.moved("c", committed=131, lag=9)
    assert progress.still("c") == 0
