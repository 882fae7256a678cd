"""Stalls: a part of the stack that is alive yet does no work, and how long it has been so.

A process that exits is the supervisor's plain case. A frozen or wedged one is not: a Kafka
paused for a minute, a TaskManager its JobManager no longer lists, a connector left unassigned
after a rebalance, a sink task that reports RUNNING while its lag grows, a job whose checkpoints
stopped completing. Each is alive by every process-level measure and does nothing. The
supervisor checks them in rounds and tells ``StallWatch`` what it saw; the watch remembers since
when each part has been failing and says which have failed longer than the bound, so that a
pause shorter than the bound is ridden out and a longer one is healed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Stall:
    part: str  # "flink-taskmanager", "connector clicklib-events-by-user", "job clicklib-aggregates"
    since: float  # epoch s, when it was first seen failing
    detail: str  # what the last check saw
    lag: int | None = None  # records it has yet to read, where that is known

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, now: float | None = None) -> str:
        seconds = (now if now is not None else time.time()) - self.since
        lag = f", {self.lag} record(s) behind" if self.lag is not None else ""
        return f"{self.part} stalled for {seconds:.0f} s{lag}: {self.detail}"


class StallWatch:
    """Since when each part has failed its check, by the monotonic clock (which does not run
    while a laptop sleeps: waking up does not make every part overdue at once)."""

    def __init__(self, bound: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.bound = bound
        self.clock = clock
        self._since: dict[str, float] = {}
        self.stalls: dict[str, Stall] = {}

    def failing(self, part: str, detail: str, lag: int | None = None) -> Stall:
        self._since.setdefault(part, self.clock())
        stall = self.stalls.get(part)
        if stall is None:
            stall = self.stalls[part] = Stall(part, time.time(), detail, lag)
        stall.detail, stall.lag = detail, lag
        return stall

    def fine(self, part: str) -> None:
        """The part passed its check: its stall, if any, is over."""
        self._since.pop(part, None)
        self.stalls.pop(part, None)

    def waiting(self, part: str) -> None:
        """The part fails only because something it needs fails: its clock starts again once
        that is back, so it is not restarted for another's stall."""
        self._since[part] = self.clock()

    def overdue(self, part: str) -> bool:
        since = self._since.get(part)
        return since is not None and self.clock() - since >= self.bound

    def failing_for(self, part: str) -> float:
        since = self._since.get(part)
        return 0.0 if since is None else self.clock() - since

    def healed(self, part: str) -> None:
        """Something was done about the part: give it the whole bound again before the next try."""
        if part in self._since:
            self._since[part] = self.clock()

    def forget_except(self, parts: set[str]) -> None:
        """Drop the parts that are no longer there to check (a pipeline taken down)."""
        for part in [p for p in self.stalls if p not in parts]:
            self.fine(part)
        for part in [p for p in self._since if p not in parts]:
            self._since.pop(part)


class Progress:
    """Whether a consumer moves: its committed offsets change, or it has nothing left to read.
    One round without a commit is no stall (a sink commits every few seconds, and right after a
    restart it has yet to); ``still`` counts the rounds in a row without one."""

    def __init__(self) -> None:
        self._committed: dict[str, int] = {}
        self._still: dict[str, int] = {}

    def moved(self, part: str, committed: int, lag: int) -> bool:
        previous = self._committed.get(part)
        self._committed[part] = committed
        moved = lag <= 0 or previous is None or committed != previous
        self._still[part] = 0 if moved else self._still.get(part, 0) + 1
        return moved

    def still(self, part: str) -> int:
        return self._still.get(part, 0)
