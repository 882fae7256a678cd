"""``up``, ``down``, ``status`` and ``logs`` for the local stack."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from clicklib import access, secrets
from clicklib.exceptions import ClicklibError, ServiceStartError, StackError
from clicklib.settings import ENV_PREFIX, Settings
from clicklib.stack import configs, disk, health, jars, process, sandbox, supervisor
from clicklib.stack.services import PHASES, PROCESSES, SERVICES, expand, service_url

# (process name, event, detail): event is one of resolving, starting, waiting, healthy, failed.
EventCallback = Callable[[str, str, str], None]


@dataclass
class ServiceStatus:
    service: str
    state: str
    healthy: bool
    port: int
    url: str
    pids: list[int] = field(default_factory=list)
    rss_mb: float = 0.0
    detail: str = ""
    restarts: int = 0  # by the supervisor, since the service was last started by hand
    given_up: str = ""  # why the supervisor left it down, if it did
    log_tail: str = ""  # the log's last lines when it was given up on

    def to_dict(self) -> dict:
        return asdict(self)


def _quiet(*_: object) -> None:
    pass


def up(
    settings: Settings,
    services: list[str] | None = None,
    on_event: EventCallback | None = None,
) -> list[ServiceStatus]:
    """Start the named services (default: all) and what they need; wait until healthy.

    A running service is left alone. On any failure, every process this call started
    is stopped again before the error propagates, so nothing is left half-started.
    """
    emit = on_event or _quiet
    names = expand(services)
    java = process.find_java(settings)
    running = {name: process.owned_process(settings, name, PROCESSES[name].pid_path(settings)) for name in names}
    to_start = [name for name in names if running[name] is None]
    # Cheap checks first: a taken port is reported before minutes of jar resolution.
    for name in to_start:
        for port_name in PROCESSES[name].ports:
            process.check_port(settings, name, port_name, settings.ports[port_name])
    process.make_private(settings.home)
    check_sandbox(settings)
    jars.resolve_for(settings, names, log=lambda message: emit("jars", "resolving", message))
    configs.write_log_configs(settings)
    if settings.secure:
        secrets.local_credentials(settings, create=True)

    started: dict[str, psutil.Process] = {}
    supervisor.forgive(settings, to_start)
    try:
        for phase in PHASES:
            members = [name for name in phase if name in names]
            for name in members:
                if name in to_start:
                    started[name] = start_process(settings, name, java, emit)
            for name in members:
                wait_healthy(settings, name, started.get(name) or running[name], emit)
                # Every component's login, before anything that logs in starts.
                if name == "kafka" and settings.secure:
                    access.secure_stack(settings)
                if name == "cassandra" and settings.secure:
                    access.secure_cassandra(settings)
    except BaseException:
        # Pid files go first, so the supervisor does not start again what this call gives up on.
        for name in started:
            PROCESSES[name].pid_path(settings).unlink(missing_ok=True)
        process.terminate([*started.values(), *_strays(settings)])
        raise
    supervisor.start(settings)
    return status(settings)


def sandboxed(settings: Settings) -> bool:
    """Whether the stack's services start under sandbox.py's ruleset: in the secure profile."""
    return settings.secure and settings.sandbox


def check_sandbox(settings: Settings) -> None:
    """Refuse to start a secure stack whose services could read each other's secrets."""
    if sandboxed(settings) and sandbox.abi_version() < 1:
        raise StackError(
            "the secure profile starts each service so that it can read its own secrets only, with "
            f"Linux's Landlock, which this kernel ({platform.release()}) does not offer (it needs Linux "
            f"5.13+ with Landlock enabled); set {ENV_PREFIX}SANDBOX=0 to start without it, and every "
            "service, Flink job and connector can then read every password of the stack"
        )


def sandboxed_command(settings: Settings, name: str, command: list[str]) -> list[str]:
    """``command`` started under sandbox.py's ruleset: the secrets folder and the other services'
    data folders hidden, the process's own secret files readable."""
    spec = PROCESSES[name]
    hidden = [secrets.secrets_dir(settings)]
    hidden += [configs.data_dir(settings, folder) for folder in configs.DATA_FOLDERS if folder not in spec.data]
    return sandbox.command_line(hidden, spec.secret_paths(settings), command)


def start_process(settings: Settings, name: str, java: str, emit: EventCallback = _quiet) -> psutil.Process:
    spec = PROCESSES[name]
    emit(name, "starting", "")
    if spec.prepare is not None:
        spec.prepare(settings, java)
    command = spec.command(settings, java)
    if sandboxed(settings):
        # The folders a service writes to exist before it starts: under the ruleset, one made
        # later beside a hidden folder would be closed to it.
        configs.make_home_folders(settings)
        command = sandboxed_command(settings, name, command)
    return process.spawn(
        name,
        command,
        spec.log_path(settings),
        spec.pid_path(settings),
        env=spec.env(settings),
        cwd=settings.home,
    )


def wait_healthy(settings: Settings, name: str, proc: psutil.Process, emit: EventCallback = _quiet) -> None:
    deadline = time.monotonic() + settings.startup_timeout
    started_at = time.monotonic()
    spec = PROCESSES[name]
    while True:
        # The process object itself, not its pid file and command line: right after exec the
        # command line can read empty, and a child that died stays a zombie until reaped.
        if not process.alive(proc):
            _fail(settings, name, "exited during startup")
        probe = spec.probe(settings)
        if probe.healthy:
            emit(name, "healthy", probe.detail)
            return
        if time.monotonic() > deadline:
            _fail(
                settings,
                name,
                f"did not become healthy within {settings.startup_timeout:.0f} s ({probe.detail})",
            )
        emit(name, "waiting", f"{time.monotonic() - started_at:.0f} s: {probe.detail}")
        time.sleep(1.0)


def _fail(settings: Settings, name: str, what: str) -> None:
    log = PROCESSES[name].log_path(settings)
    tail = process.log_tail(log)
    raise ServiceStartError(
        f"{name} {what}; its log is {log}, last {process.LOG_TAIL_LINES} lines:\n{tail}",
        service=name,
        log_tail=tail,
    )


def _strays(settings: Settings) -> list[psutil.Process]:
    """Marked processes that no pid file accounts for (a helper JVM, a lost pid file)."""
    known = {process.read_pid(PROCESSES[name].pid_path(settings)) for name in PROCESSES}
    known.add(process.read_pid(supervisor.pid_path(settings)))
    return [proc for proc in process.stack_processes(settings) if proc.pid not in known]


def down(settings: Settings, services: list[str] | None = None) -> list[str]:
    """Stop the named services (default: every process of the stack), newest phase first.

    Returns the processes that were stopped. Stopping a service does not stop what
    depends on it: Connect keeps retrying Kafka until Kafka is back.
    """
    if services:
        expand(services)  # raises naming an unknown service
    names = {p for s in services for p in SERVICES[s]} if services else set(PROCESSES)
    if not services:
        supervisor.stop(settings)  # first, so it does not start again what is being stopped
    if "flink-jobmanager" in names:
        save_flink_jobs(settings)
    stopped: list[str] = []
    for phase in reversed(PHASES):
        victims = []
        for name in phase:
            if name not in names:
                continue
            pid_path = PROCESSES[name].pid_path(settings)
            proc = process.owned_process(settings, name, pid_path)
            if proc is not None:
                victims.append(proc)
                stopped.append(name)
            pid_path.unlink(missing_ok=True)
        process.terminate(victims)
    if not services:
        process.terminate(process.stack_processes(settings))
    return stopped


def save_flink_jobs(settings: Settings) -> dict[str, str]:
    """Stop the pipelines' running jobs with savepoints, so the next `pipeline up` resumes them."""
    from clicklib import job_state
    from clicklib.flink import FlinkClient

    proc = process.owned_process(settings, "flink-jobmanager", PROCESSES["flink-jobmanager"].pid_path(settings))
    if proc is None:
        return {}
    flink = FlinkClient(settings.flink_rest_url, settings.request_timeout, auth=secrets.flink_login(settings))
    try:
        return job_state.save_running(settings, flink)
    except ClicklibError:
        return {}  # an unhealthy JobManager: its jobs' retained checkpoints remain
    finally:
        flink.close()


def status(settings: Settings) -> list[ServiceStatus]:
    """One row per service: whether it runs here, answers, what it costs in memory, and how
    often the supervisor restarted it; then a row for the disk they write to (stack/disk.py)."""
    rows = []
    supervised = supervisor.read_state(settings)
    stalled = supervisor.stalls(settings)
    for service, members in SERVICES.items():
        history = [supervised.get(name, {}) for name in members]
        given_up = next((h["given_up"] for h in history if h.get("given_up")), "")
        procs = [process.owned_process(settings, name, PROCESSES[name].pid_path(settings)) for name in members]
        local = [p for p in procs if p is not None]
        probe = PROCESSES[members[-1]].probe(settings)
        # The supervisor's word on a member that stopped working: which one, since when.
        stall = next((stalled[name] for name in members if name in stalled), None)
        if stall is not None and local:
            probe = health.Probe(False, stall.describe())
        if local and len(local) == len(members):
            state = "stalled" if stall else ("running" if probe.healthy else "unhealthy")
        elif local:
            state = "partial"
        elif given_up:
            state = "crash-loop"
        else:
            # Nothing of ours runs, yet something may answer: an existing cluster.
            state = "external" if probe.healthy else "stopped"
        rows.append(
            ServiceStatus(
                service=service,
                state=state,
                healthy=probe.healthy and state in ("running", "external"),
                port=settings.ports[service],
                url=service_url(settings, service),
                pids=[p.pid for p in local],
                rss_mb=round(sum(_rss(p) for p in local) / 2**20, 1),
                detail=given_up if state == "crash-loop" else probe.detail,
                restarts=sum(h.get("restarts", 0) for h in history),
                given_up=given_up,
                log_tail=next((h["log_tail"] for h in history if h.get("given_up")), ""),
            )
        )
    # The disk the services write to: "low" warns (still healthy), "full" refuses new events.
    space = disk.report(settings)
    rows.append(
        ServiceStatus(
            service="disk",
            state=space.state,
            healthy=space.state != disk.FULL,
            port=0,
            url=str(settings.home),
            detail=space.detail(settings),
        )
    )
    return rows


def _rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def log_paths(settings: Settings, service: str) -> list[Path]:
    """Log files of a service (Flink has two) or of a single process by name."""
    members = SERVICES.get(service) or ((service,) if service in PROCESSES else ())
    if not members:
        choices = ", ".join([*SERVICES, "flink-jobmanager", "flink-taskmanager"])
        raise StackError(f"unknown service {service!r}; choose from {choices}")
    return [PROCESSES[name].log_path(settings) for name in members]


def logs(settings: Settings, service: str, lines: int = 100) -> str:
    """The last lines of a service's log."""
    parts = []
    for path in log_paths(settings, service):
        parts.append(f"==> {path} <==\n{process.log_tail(path, lines)}")
    return "\n".join(parts)
