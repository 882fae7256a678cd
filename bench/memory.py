"""Peak resident memory of the stack's processes, sampled in a background thread, and the CPU
time they use."""

from __future__ import annotations

import threading

import psutil

from clicklib.stack import ServiceStatus
from clicklib.stack.services import SERVICES

MB = 2**20


class RssSampler:
    """Samples the RSS of every process of the local stack every ``interval`` seconds.

    The processes are the pids of ``clicklib.stack.status()`` rows; a service run
    elsewhere (``external``) has none and is not sampled. ``stage``
    labels the samples, so each process also gets its peak per stage.
    """

    def __init__(self, services: list[ServiceStatus], interval: float = 0.5) -> None:
        self.interval = interval
        self.stage = "setup"
        self.samples = 0
        self.processes: dict[int, dict] = {}
        self._handles: dict[int, psutil.Process] = {}
        names = process_names(services)
        for row in services:
            for pid in row.pids:
                self.processes[pid] = {"service": row.service, "process": names[pid], "pid": pid, "start_mb": 0.0}
                self.processes[pid].update(peak_mb=0.0, peak_by_stage={})
                self._handles[pid] = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._sample()
        for entry in self.processes.values():
            entry["start_mb"] = entry["peak_mb"]
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        stage = self.stage
        for pid, handle in self._handles.items():
            try:
                rss = round(handle.memory_info().rss / MB, 1)
            except psutil.Error:  # the process is gone; keep what was seen
                continue
            entry = self.processes[pid]
            entry["peak_mb"] = max(entry["peak_mb"], rss)
            entry["peak_by_stage"][stage] = max(entry["peak_by_stage"].get(stage, 0.0), rss)
        self.samples += 1

    def result(self) -> dict:
        return {
            "interval_s": self.interval,
            "samples": self.samples,
            "processes": list(self.processes.values()),
            "sum_of_peaks_mb": round(sum(p["peak_mb"] for p in self.processes.values()), 1),
        }


def process_names(services: list[ServiceStatus]) -> dict[int, str]:
    """pid -> the stack's name for that process (a service's only process takes its name)."""
    names = {}
    for row in services:
        members = SERVICES.get(row.service, ())
        labels = members if len(members) == len(row.pids) else (row.service,) * len(row.pids)
        names.update(zip(row.pids, labels, strict=True))
    return names


def cpu_seconds(services: list[ServiceStatus]) -> dict[str, float]:
    """Process name -> the CPU seconds (user and system) it has used since it started."""
    used = {}
    for pid, name in process_names(services).items():
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:  # gone: counts as nothing
            continue
        used[name] = used.get(name, 0.0) + times.user + times.system
    return used
