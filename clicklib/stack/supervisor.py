"""The supervisor: one small process that keeps the local stack and its pipelines running.

``stack up`` starts it last; ``stack down`` stops it first. Every second it checks each
process the stack started: one that exited without ``stack down`` asking is started again,
after a backoff that doubles with each exit (1 s, 2 s, ... 30 s). A process that exits
``crash_loop_exits`` times within ``crash_loop_window`` is given up on: it stays down, and
``stack status`` says so with its log tail. Every few seconds it also looks after each
pipeline that ``pipeline up`` registered: a Flink job that failed or vanished (a killed
JobManager forgets its jobs) is resumed from its newest retained checkpoint, and failed
Connect tasks are restarted. It rotates the stack's logs and removes checkpoints no job needs.

It also heals stalls (stalls.py): what is alive but does no work for longer than
``stall_timeout``. A process that fails its liveness check (frozen, or a TaskManager no longer
registered) is killed and so started again; a connector left unassigned, or whose tasks commit
nothing while records wait, is restarted; a job whose checkpoints stop completing is cancelled
and so resumed from its newest one. What it sees stalled is in its state for ``stack status``,
``pipeline status``, the dashboard and notebook 05.

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
from typing import TYPE_CHECKING

import psutil

from clicklib import secrets
from clicklib.exceptions import ClicklibError
from clicklib.settings import Settings, get_settings
from clicklib.stack import configs, disk, process
from clicklib.stack.services import CHECKED_THROUGH, PHASES, PROCESSES, RESTART_WITH
from clicklib.stack.stalls import Progress, Stall, StallWatch

if TYPE_CHECKING:  # the stack runs without them; healing a pipeline imports them when it must
    from clicklib.connect import Connector, ConnectorStatus
    from clicklib.flink import JobInfo
    from clicklib.pipeline import Pipeline

NAME = "supervisor"
TICK_SECONDS = 1.0
HEAL_EVERY = 5.0
HOUSEKEEPING_EVERY = 60.0
MAX_BACKOFF = 30.0
# Each stall check probes every process and reads every consumer's offsets: often enough to
# heal within the bound, rarely enough to cost the pipeline little CPU.
STALL_CHECK_EVERY = 15.0
# What answers yet is plainly stuck gets this long, not the whole stall bound: Connect gives an
# unassigned connector to a worker within seconds, a TaskManager registers within seconds.
STUCK_FOR = 30.0
HEALS_KEPT = 20


def pid_path(settings: Settings) -> Path:
    return settings.home / "run" / f"{NAME}.pid"


def state_path(settings: Settings) -> Path:
    return settings.home / "run" / f"{NAME}.json"


CONNECTOR_RESTARTS = "connector_restarts"  # a key of the state beside the processes' names
STALLS = "stalls"  # part -> Stall.to_dict(), what is stalled now
HEALS = "heals"  # the newest stalls healed: {"at": epoch s, "part", "action", "detail"}


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


def stalls(settings: Settings) -> dict[str, Stall]:
    """What the supervisor sees stalled now, by part ("kafka", "connector NAME", "job NAME")."""
    found = read_state(settings).get(STALLS, {})
    try:
        return {part: Stall(**entry) for part, entry in found.items()}
    except TypeError:  # a state written by another version
        return {}


def heals(settings: Settings) -> list[dict]:
    """The newest stalls the supervisor healed, oldest first."""
    return read_state(settings).get(HEALS, [])


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


def _log(message: str) -> None:
    # On a full disk the log cannot be written: the supervision goes on without it.
    with contextlib.suppress(OSError):
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)


def _writes_to(settings: Settings, service: str) -> Path:
    """The folder whose filesystem a service needs room on: its data, or its log."""
    return configs.data_dir(settings, service) if service in configs.DATA_FOLDERS else configs.log_dir(settings)


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
        self.last_stall_check = 0.0
        self.stalls = StallWatch(settings.stall_timeout_seconds)
        self.progress = Progress()
        self.healthy_pids: dict[str, int] = {}  # process -> the pid last seen passing its check
        self.checkpoints: dict[str, tuple[float, float]] = {}  # job id -> (newest checkpoint, seen at)

    def log(self, message: str) -> None:
        _log(message)

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
        check_stalls = now - self.last_stall_check >= STALL_CHECK_EVERY
        if check_stalls:
            self.last_stall_check = now
            self.check_processes()
        if now - self.last_heal >= HEAL_EVERY or check_stalls:
            self.last_heal = now
            self.heal_pipelines(check_stalls)
        if check_stalls:
            self.save_stalls()
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
        # A process whose disk is below the refusal bound may die for want of space (Kafka halts
        # when it cannot append): no crash loop, it is started again every MAX_BACKOFF until it
        # stays up, so that it resumes by itself once space is freed.
        no_space = disk.process_waits_for_space(self.settings, _writes_to(self.settings, spec.service))
        if entry.get("dead_pid") != pid:
            # A new exit, not one already waiting out its backoff: each started process dies once.
            entry["dead_pid"] = pid
            entry["died_at"] = now
            if no_space:
                self.log(f"{name} exited while its disk is full; it is started again until it stays up")
            else:
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
        backoff = MAX_BACKOFF if no_space else min(2.0 ** (len(entry["exits"]) - 1), MAX_BACKOFF)
        _write_state(self.settings, state)
        if now - entry.get("died_at", 0.0) < backoff:
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
        for follower in RESTART_WITH.get(name, ()):
            self.restart_follower(name, follower)

    def restart_follower(self, name: str, follower: str) -> None:
        from clicklib.stack import lifecycle

        spec = PROCESSES[follower]
        proc = process.owned_process(self.settings, follower, spec.pid_path(self.settings))
        if proc is None:
            return  # down: `check` starts it, and it registers with the new one
        self.log(f"starting {follower} again too, so that it registers with the new {name} at once")
        process.terminate([proc], timeout=10)
        try:
            lifecycle.wait_healthy(self.settings, follower, lifecycle.start_process(self.settings, follower, self.java))
        except ClicklibError as exc:
            self.log(f"{follower} did not come back: {str(exc).splitlines()[0]}")
            return
        self.log(f"{follower} is healthy again")

    def check_processes(self) -> None:
        """Kill a process that has failed its liveness check for the stall bound, so that
        ``check`` starts it again; one that fails only because what it goes through fails waits."""
        failing: set[str] = set()
        for phase in PHASES:
            for name in phase:
                spec = PROCESSES[name]
                proc = process.owned_process(self.settings, name, spec.pid_path(self.settings))
                if proc is None or self.stopping:
                    self.stalls.fine(name)  # down: `check` deals with it
                    failing.add(name)  # and what goes through it is not the one to blame
                    continue
                probe = spec.alive(self.settings)
                if probe.healthy:
                    self.healthy_pids[name] = proc.pid
                    self.stalls.fine(name)
                    continue
                failing.add(name)
                if not self._started(name, proc):
                    continue  # still starting: `stack up` and `restart` wait for it
                blocked = [need for need in CHECKED_THROUGH.get(name, ()) if need in failing]
                if blocked:
                    self.stalls.failing(name, f"waits for {', '.join(blocked)} ({probe.detail})")
                    self.stalls.waiting(name)
                    continue
                self.stalls.failing(name, probe.detail)
                stuck = probe.stuck and self.stalls.failing_for(name) >= min(STUCK_FOR, self.stalls.bound)
                if self.stalls.overdue(name) or stuck:
                    seconds = self.stalls.failing_for(name)
                    self.log(
                        f"{name} has failed its health check for {seconds:.0f} s ({probe.detail}); "
                        "killing it so that it is started again"
                    )
                    with contextlib.suppress(psutil.Error):
                        proc.kill()
                    self.healed(name, "killed and started again", probe.detail)

    def _started(self, name: str, proc: psutil.Process) -> bool:
        """Whether the process has finished starting: it passed a check, or had time to."""
        if self.healthy_pids.get(name) == proc.pid:
            return True
        try:
            return time.time() - proc.create_time() > self.settings.startup_timeout
        except psutil.Error:
            return False

    def healed(self, part: str, action: str, detail: str) -> None:
        self.stalls.healed(part)
        state = read_state(self.settings)
        done = state.setdefault(HEALS, [])
        done.append({"at": time.time(), "part": part, "action": action, "detail": detail})
        del done[:-HEALS_KEPT]
        _write_state(self.settings, state)

    def save_stalls(self) -> None:
        state = read_state(self.settings)
        now = {part: stall.to_dict() for part, stall in self.stalls.stalls.items()}
        if state.get(STALLS, {}) != now:
            for part in now.keys() - state.get(STALLS, {}).keys():
                self.log(f"stalled: {self.stalls.stalls[part].describe()}")
            for part in state.get(STALLS, {}).keys() - now.keys():
                self.log(f"{part} works again")
            state[STALLS] = now
            _write_state(self.settings, state)

    def check_connector(self, pipeline: Pipeline, connector: Connector, status: ConnectorStatus) -> None:
        """A connector unassigned for long, or running while it commits nothing and records wait."""
        from clicklib.offsets import group_lag

        part = f"connector {connector.name}"
        if status.state == "UNASSIGNED" or "UNASSIGNED" in status.tasks:
            self.stalls.failing(part, f"{status}: no worker runs it")
            if self.stalls.failing_for(part) >= min(STUCK_FOR, self.stalls.bound) and not self.process_stalled():
                self.restart_connector(pipeline, part, connector.name, f"{status}")
            return
        if not status.running:
            self.stalls.fine(part)  # failed ones are restarted above; paused ones are meant so
            return
        lags = [group_lag(pipeline.kafka, connector.consumer_group, topic) for topic in connector.topics]
        committed, lag = sum(g.committed for g in lags), sum(g.lag for g in lags)
        if self.progress.moved(part, committed, lag):
            self.stalls.fine(part)
            return
        if self.progress.still(part) < 2:
            return  # one round without a commit: too soon to tell
        detail = f"{status}, yet commits nothing while records wait"
        self.stalls.failing(part, detail, lag)
        if self.stalls.overdue(part) and not self.process_stalled():
            self.restart_connector(pipeline, part, connector.name, detail)

    def process_stalled(self) -> bool:
        """A process of the stack is stalled: what waits for it is not to blame, and restarting
        it would not help."""
        return any(part in PROCESSES for part in self.stalls.stalls)

    def restart_connector(self, pipeline: Pipeline, part: str, name: str, detail: str) -> None:
        self.log(f"{part} stalled for {self.stalls.failing_for(part):.0f} s ({detail}); restarting it and its tasks")
        pipeline.connect.restart_all(name)
        self.healed(part, "restarted with its tasks", detail)

    def check_job(self, pipeline: Pipeline, name: str, job: JobInfo | None) -> None:
        """A job that runs while its checkpoints stop completing: cancelled, so that the next
        round resumes it from its newest checkpoint like a job that failed."""
        part = f"job {name}"
        if job is None or job.state != "RUNNING":
            if job is not None:
                self.checkpoints.pop(job.job_id, None)  # a restarted job counts afresh
            if job is not None and job.state in ("RESTARTING", "FAILING", "CREATED", "INITIALIZING"):
                self.stalls.failing(part, f"{job.state}: {pipeline.flink.root_cause(job.job_id) or 'no cause given'}")
            else:
                self.stalls.fine(part)
            return
        newest = pipeline.flink.latest_checkpoint(job.job_id)
        newest_at = newest[1] if newest else 0.0
        seen = self.checkpoints.get(job.job_id)
        if seen is None or seen[0] != newest_at:
            self.checkpoints[job.job_id] = (newest_at, time.monotonic())
            self.stalls.fine(part)
            return
        quiet = time.monotonic() - seen[1]
        if quiet < 3 * self.settings.checkpoint_interval_seconds + STALL_CHECK_EVERY:
            self.stalls.fine(part)
            return
        detail = f"RUNNING, no checkpoint completed for {quiet:.0f} s"
        self.stalls.failing(part, detail)
        if quiet >= self.stalls.bound and not self.process_stalled():
            self.log(f"{part}: {detail}; cancelling it so that it resumes from its newest checkpoint")
            pipeline.flink.cancel(job.job_id)
            self.checkpoints.pop(job.job_id, None)
            self.healed(part, "resumed from its newest checkpoint", detail)

    def heal_pipelines(self, check_stalls: bool = False) -> None:
        from clicklib import job_state, streaming_sql
        from clicklib.pipeline import Pipeline, registered, registry_dir

        parts: set[str] = set(PROCESSES)
        for settings in registered(self.settings):
            key = settings.namespace or "default"
            try:
                if key not in self.pipelines or self.pipelines[key].settings != settings:
                    self.pipelines[key] = Pipeline(settings)
                pipeline = self.pipelines[key]
                parts |= {f"job {p.flink_name}" for p in pipeline.definition.jobs}
                parts |= {f"connector {c.name}" for c in pipeline.definition.connectors}
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
                    if check_stalls:
                        for plan in pipeline.definition.jobs:
                            self.check_job(pipeline, plan.flink_name, running[plan.flink_name])
                    for connector in pipeline.definition.connectors:
                        status = pipeline.connect.status(connector.name)
                        if status.state == "FAILED" or "FAILED" in status.tasks:
                            self.log(f"pipeline {key}: connector {connector.name} is {status}; restarting it")
                            pipeline.connect.restart_failed(connector.name)
                            state = read_state(self.settings)
                            counts = state.setdefault(CONNECTOR_RESTARTS, {})
                            counts[connector.name] = counts.get(connector.name, 0) + 1
                            _write_state(self.settings, state)
                        elif check_stalls:
                            self.check_connector(pipeline, connector, status)
            except BlockingIOError:
                continue  # a `pipeline up` or `down` is under way
            except ClicklibError as exc:
                self.log(f"pipeline {key}: cannot heal yet: {str(exc).splitlines()[0]}")
        if check_stalls:
            self.stalls.forget_except(parts)

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
    """Supervise in a child process, and start that again if it dies. The supervision calls
    native client libraries: librdkafka once crashed it (a segfault after the whole stack had
    been frozen), and then nothing restarted the TaskManager that exited soon after."""
    settings = get_settings()
    stopping = False
    child = 0

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        child = os.fork()
        if child == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                Supervisor(settings).run()
            finally:
                os._exit(0)
        if stopping:  # asked to stop between the fork and knowing the child's pid
            stop()
        _, status = os.waitpid(child, 0)
        if stopping:
            break
        code = os.waitstatus_to_exitcode(status)
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        _log(f"the supervision ended by itself ({how}); starting it again")
        time.sleep(1.0)


if __name__ == "__main__":
    main()
