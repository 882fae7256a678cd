"""Background processes of the local stack: start, find, stop, and read their logs.

Every process carries ``-Dclicklib.home=<home>`` on its command line, so the stack can
find its own processes even when a pid file is missing (a crashed ``up``) and never
signals a recycled pid that belongs to someone else.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

from clicklib.exceptions import JavaNotFoundError, PortInUseError, ServiceStartError
from clicklib.settings import ENV_PREFIX, Settings

MIN_JAVA = 17
LOG_TAIL_LINES = 30


def home_marker(settings: Settings) -> str:
    return f"-Dclicklib.home={settings.home}"


def service_marker(name: str) -> str:
    return f"-Dclicklib.service={name}"


def find_java(settings: Settings) -> str:
    """The java executable to run services with, checked to be Java 17 or newer."""
    candidates = []
    if settings.java:
        candidates.append(settings.java)
    elif os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    else:
        candidates.append(shutil.which("java") or "")
    java = candidates[0]
    hint = (
        f"install Java {MIN_JAVA}+ (Debian: apt-get install openjdk-17-jdk-headless) "
        f"or point {ENV_PREFIX}JAVA at a java {MIN_JAVA}+ executable"
    )
    if not java or not Path(java).exists():
        where = java or "PATH"
        raise JavaNotFoundError(f"Java not found (looked at {where}); {hint}")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise JavaNotFoundError(f"{java} cannot be run ({exc}); {hint}") from exc
    major = parse_java_major(out.stderr + out.stdout)
    if major is None:
        raise JavaNotFoundError(f"{java} -version printed no version; {hint}")
    if major < MIN_JAVA:
        raise JavaNotFoundError(f"{java} is Java {major}, older than {MIN_JAVA}; {hint}")
    return java


def parse_java_major(version_output: str) -> int | None:
    """The major version from ``java -version`` output ("1.8.0_1" is 8, "17.0.2" is 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def port_is_free(host: str, port: int, udp: bool = False) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR matches how the JVMs bind, so a port in TIME_WAIT counts as free.
        if not udp:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def describe_port_holder(port: int) -> str:
    """'pid 123 (python3 -m http.server)' for the process listening on a port, if visible."""
    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return ""
    for conn in connections:
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            if conn.pid is None:
                return ""
            try:
                cmdline = " ".join(psutil.Process(conn.pid).cmdline())
            except psutil.Error:
                cmdline = "?"
            if len(cmdline) > 120:
                cmdline = cmdline[:117] + "..."
            return f"pid {conn.pid} ({cmdline})"
    return ""


def check_port(settings: Settings, service: str, port_name: str, port: int) -> None:
    # Ports named "...-udp" take datagrams (the collector's UDP bridge); the others are TCP.
    if port_is_free(settings.bind_host, port, udp=port_name.endswith("-udp")):
        return
    holder = describe_port_holder(port)
    held_by = f" by {holder}" if holder else ""
    variable = f"{ENV_PREFIX}{port_name.upper().replace('-', '_')}_PORT"
    raise PortInUseError(
        f"port {port} on {settings.bind_host}, needed by {service} ({port_name}), "
        f"is already in use{held_by}; stop that process or set {variable} to a free port",
        port=port,
        service=service,
    )


# Files the stack's processes make are readable and writable by the user who runs the stack only.
PRIVATE_UMASK = 0o077


def make_private(home: Path) -> None:
    """The stack's home open to its owner alone: Kafka's segments, Cassandra's SSTables, the
    registry's database, checkpoints, the lake, logs and secrets are inside it, and a local user
    who could read them would go around every ACL and role."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)


def spawn(
    name: str,
    command: Sequence[str],
    log_path: Path,
    pid_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> psutil.Process:
    """Start a service in its own session, its output appended to its log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n==== clicklib starting {name} at {time.ctime()} ====\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            # Whatever a service writes (segments, SSTables, checkpoints, logs) is its owner's alone.
            umask=PRIVATE_UMASK,
        )
    pid_path.write_text(str(proc.pid))
    return psutil.Process(proc.pid)


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return None


def owned_process(settings: Settings, name: str, pid_path: Path) -> psutil.Process | None:
    """The running process of a service, if its pid file names one that is really ours."""
    pid = read_pid(pid_path)
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = proc.cmdline()
    except psutil.Error:
        return None
    if home_marker(settings) in cmdline and service_marker(name) in cmdline:
        return proc
    return None


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stack_processes(settings: Settings) -> list[psutil.Process]:
    """Every live process that carries this home's marker, pid file or not."""
    marker = home_marker(settings)
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if marker in (proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def terminate(processes: Sequence[psutil.Process], timeout: float = 45.0) -> None:
    """SIGTERM each process group, then SIGKILL whatever is left after the timeout."""
    for proc in processes:
        _signal_group(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(list(processes), timeout=timeout)
    for proc in alive:
        _signal_group(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=10)


def _signal_group(proc: psutil.Process, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(log_path, errors="replace") as log:
            return "".join(deque(log, maxlen=lines))
    except OSError:
        return f"(no log at {log_path})"


def wait_answering(
    proc: subprocess.Popen, answers: Callable[[], bool], service: str, log: Path, timeout: float, hint: str = ""
) -> None:
    """Wait until ``answers()`` is true for a process started outside the stack (the lab, a
    collector of its own); raise ServiceStartError with its log's tail if it exits first
    (``hint`` says what may be wrong) or stays silent for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServiceStartError(
                f"{service} exited with {proc.returncode} while starting{hint}; its log is {log}",
                service=service,
                log_tail=log_tail(log),
            )
        if answers():
            return
        if time.monotonic() > deadline:
            raise ServiceStartError(
                f"{service} did not answer within {timeout:.0f} s; its log is {log}",
                service=service,
                log_tail=log_tail(log),
            )
        time.sleep(0.3)
