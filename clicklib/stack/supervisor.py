"""The supervisor: one small process that keeps the local stack and its pipelines running.

``stack up`` starts it last; ``stack down`` stops it first. Every second it checks each
process the stack started: one that exited without ``stack down`` asking is started again,
after a backoff that doubles with each exit (1 s, 2 s, ... 30 s). A process that exits
``crash_loop_exits`` times within ``crash_loop_window`` is given up on: it stays down, and
``stack status`` says so with its log tail. Every few seconds it also looks after each
pipeline that ``pipeline up`` registered: a Flink job that failed or vanished (a killed
JobManager forgets its jobs) is resumed from its newest retained checkpoint, and failed
Connect tasks are restarted. It rotates the stack's logs and removes checkpoints no job needs.

Run it by hand with ``python -m clicklib.stack.supervisor`` (it takes the same ``CLICKLIB_*``
settings); it logs to ``<home>/logs/supervisor.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import psutil

from clicklib import secrets
from clicklib.exceptions import ClicklibError
from clicklib.settings import Settings, get_settings
from clicklib.stack import configs, process
from clicklib.stack.services import PHASES, PROCESSES

NAME = "supervisor"
TICK_SECONDS = 1.0
HEAL_EVERY = 5.0
HOUSEKEEPING_EVERY = 60.0
MAX_BACKOFF = 30.0


def pid_path(settings: Settings) -> Path:
    return settings.home / "run" / f"{NAME}.pid"


def state_path(settings: Settings) -> Path:
    return settings.home / "run" / f"{NAME}.json"


CONNECTOR_RESTARTS = "connector_restarts"  # a key of the state beside the processes' names


def read_state(settings: Settings) -> dict:
    """Per process: ``restarts``, ``exits`` (epoch s), ``given_up`` (why, or '') and ``log_tail``;
    under ``connector_restarts``, how often each failed sink connector was restarted."""
    try:
        return json.loads(state_path(settings).read_text())
    except (OSError, ValueError):
        return {}


def connector_restarts(settings: Settings) -> dict[str, int]:
    """How often the supervisor restarted each failed sink connector, by connector name."""
    return read_state(settings).get(CONNECTOR_RESTARTS, {})


def _write_state(settings: Settings, state: dict) -> None:
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(temporary, path)


def running(settings: Settings) -> psutil.Process | None:
    return process.owned_process(settings, NAME, pid_path(settings))


def start(settings: Settings) -> psutil.Process:
    """Start the supervisor unless it runs already."""
    proc = running(settings)
    if proc is not None:
        return proc
    command = [
        sys.executable,
        "-c",
        "from clicklib.stack.supervisor import main; main()",
        # The markers let `stack down` find it like every other process of this stack.
        process.home_marker(settings),
        process.service_marker(NAME),
    ]
    log = configs.log_dir(settings) / f"{NAME}.log"
    # It reads its settings from the environment: the ones of the stack it looks after.
    return process.spawn(NAME, command, log, pid_path(settings), env=settings.to_env())


def stop(settings: Settings) -> None:
    proc = running(settings)
    pid_path(settings).unlink(missing_ok=True)
    if proc is not None:
        process.terminate([proc], timeout=20)


def forgive(settings: Settings, names: list[str]) -> None:
    """Clear the exit history of processes a user starts again by hand."""
    state = read_state(settings)
    for name in names:
        state.pop(name, None)
    _write_state(settings, state)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.java = process.find_java(settings)
        self.stopping = False
        self.pipelines: dict[str, object] = {}  # registration text -> Pipeline, built once each
        self.last_heal = 0.0
        self.last_housekeeping = 0.0

    def log(self, message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        self.log(f"supervising the stack in {self.settings.home}")
        while not self.stopping:
            try:
                self.tick()
            except Exception:  # one bad round must not end the supervision
                self.log("error in a supervision round:\n" + traceback.format_exc())
            time.sleep(TICK_SECONDS)
        self.log("stopped")

    def tick(self) -> None:
        self.reap()
        for phase in PHASES:
            for name in phase:
                if not self.stopping:
                    self.check(name)
        now = time.monotonic()
        if now - self.last_heal >= HEAL_EVERY:
            self.last_heal = now
            self.heal_pipelines()
        if now - self.last_housekeeping >= HOUSEKEEPING_EVERY:
            self.last_housekeeping = now
            self.housekeeping()

    def reap(self) -> None:
        """Collect the exit status of processes this supervisor started, so none stays a zombie."""
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass

    def check(self, name: str) -> None:
        spec = PROCESSES[name]
        pid = process.read_pid(spec.pid_path(self.settings))
        if pid is None:
            return  # never started, or stopped by `stack down`
        if process.owned_process(self.settings, name, spec.pid_path(self.settings)) is not None:
            return
        state = read_state(self.settings)
        entry = state.setdefault(name, {"restarts": 0, "exits": [], "given_up": "", "log_tail": ""})
        if entry["given_up"]:
            return
        now = time.time()
        if entry.get("dead_pid") != pid:
            # A new exit, not one already waiting out its backoff: each started process dies once.
            entry["dead_pid"] = pid
            entry["exits"].append(now)
        entry["exits"] = [t for t in entry["exits"] if now - t <= self.settings.crash_loop_window_seconds]
        log_file = spec.log_path(self.settings)
        if len(entry["exits"]) >= self.settings.crash_loop_exits:
            entry["given_up"] = (
                f"exited {len(entry['exits'])} times within {self.settings.crash_loop_window}; left down. "
                f"Its log is {log_file}; start it again with `clicklib stack up {spec.service}`"
            )
            entry["log_tail"] = process.log_tail(log_file)
            spec.pid_path(self.settings).unlink(missing_ok=True)
            _write_state(self.settings, state)
            self.log(f"{name}: {entry['given_up']}")
            return
        backoff = min(2.0 ** (len(entry["exits"]) - 1), MAX_BACKOFF)
        _write_state(self.settings, state)
        if now - entry["exits"][-1] < backoff:
            return  # check again next round
        if process.read_pid(spec.pid_path(self.settings)) is None:
            return  # `stack down` stopped it meanwhile
        self.restart(name, state)

    def restart(self, name: str, state: dict) -> None:
        from clicklib.stack import lifecycle

        self.log(f"{name} exited unexpectedly; starting it again")
        started = time.monotonic()
        try:
            proc = lifecycle.start_process(self.settings, name, self.java)
            lifecycle.wait_healthy(self.settings, name, proc)
        except ClicklibError as exc:
            # Its pid file names the new process: its death counts as the next exit.
            self.log(f"{name} did not come back: {str(exc).splitlines()[0]}")
            return
        state[name]["restarts"] += 1
        state[name]["last_restart"] = time.time()
        _write_state(self.settings, state)
        self.log(f"{name} is healthy again after {time.monotonic() - started:.1f} s")

    def heal_pipelines(self) -> None:
        from clicklib import job_state, streaming_sql
        from clicklib.pipeline import Pipeline, registered, registry_dir

        for settings in registered(self.settings):
            key = settings.namespace or "default"
            try:
                if key not in self.pipelines or self.pipelines[key].settings != settings:
                    self.pipelines[key] = Pipeline(settings)
                pipeline = self.pipelines[key]
                with pipeline.lock(blocking=False):
                    if not (registry_dir(settings) / f"{key}.json").exists():
                        continue  # taken down while we waited
                    running = streaming_sql.running_jobs(pipeline)
                    # Only jobs `pipeline up` has started: a job new to the definition (after an
                    # upgrade) needs its topics and schemas first, which `pipeline up` makes.
                    missing = [
                        p.name
                        for p in pipeline.definition.jobs
                        if running[p.flink_name] is None and job_state.load(settings, p.flink_name) is not None
                    ]
                    if missing:
                        self.log(f"pipeline {key}: job(s) {', '.join(missing)} not running; resuming them")
                        for name, start in streaming_sql.submit(pipeline, jobs=missing).items():
                            self.log(f"pipeline {key}: {name} {start.how}")
                    for connector in pipeline.definition.connectors:
                        status = pipeline.connect.status(connector.name)
                        if status.state == "FAILED" or "FAILED" in status.tasks:
                            self.log(f"pipeline {key}: connector {connector.name} is {status}; restarting it")
                            pipeline.connect.restart_failed(connector.name)
                            state = read_state(self.settings)
                            counts = state.setdefault(CONNECTOR_RESTARTS, {})
                            counts[connector.name] = counts.get(connector.name, 0) + 1
                            _write_state(self.settings, state)
            except BlockingIOError:
                continue  # a `pipeline up` or `down` is under way
            except ClicklibError as exc:
                self.log(f"pipeline {key}: cannot heal yet: {str(exc).splitlines()[0]}")

    def housekeeping(self) -> None:
        rotate_logs(self.settings)
        from clicklib import job_state
        from clicklib.flink import FlinkClient

        flink = FlinkClient(
            self.settings.flink_rest_url, self.settings.probe_timeout, auth=secrets.flink_login(self.settings)
        )
        try:
            active = {job.job_id for job in flink.jobs() if job.active}
        except ClicklibError:
            return  # without Flink's word no checkpoint is known to be unneeded
        finally:
            flink.close()
        for job_id in job_state.sweep_orphans(self.settings, active):
            self.log(f"removed the checkpoints of job {job_id}, which no pipeline needs")


def rotate_logs(settings: Settings) -> list[Path]:
    """Rotate each log over ``log_max_mb``: log.N-1 -> log.N ... log -> log.1, then empty the log.

    The processes write with O_APPEND, so after the log is emptied they go on at its start.
    """
    limit = settings.log_max_mb * 2**20
    rotated = []
    for log in sorted(configs.log_dir(settings).glob("*.log")):
        try:
            if log.stat().st_size <= limit:
                continue
            for n in range(settings.log_keep - 1, 0, -1):
                older = log.with_name(f"{log.name}.{n}")
                if older.exists():
                    os.replace(older, log.with_name(f"{log.name}.{n + 1}"))
            with open(log, "rb") as source, open(log.with_name(f"{log.name}.1"), "wb") as copy:
                while chunk := source.read(2**20):
                    copy.write(chunk)
            os.truncate(log, 0)
            rotated.append(log)
        except OSError:
            continue
    return rotated


def main() -> None:
    Supervisor(get_settings()).run()


if __name__ == "__main__":
    main()
