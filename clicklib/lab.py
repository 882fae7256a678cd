"""JupyterLab over the notebooks, for working in them by hand: ``clicklib lab`` or ``make lab``.

The server binds 127.0.0.1 only and keeps Jupyter's token login on: a kernel runs any code it
is sent, so neither another machine nor a web page may reach it without the token. The token
is made here and handed over in a config file only its owner can read: not on the command line,
where ``ps`` would show it, nor in the environment, which every kernel and what it starts
inherits. Its kernel, "Python 3 (clicklib)", is this interpreter: the project's environment,
whatever other kernels the machine has. The charts render in JupyterLab itself, which bundles
Vega: no network is needed.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from clicklib import resources, stack
from clicklib.secrets import private_file
from clicklib.settings import Settings
from clicklib.stack import process

KERNEL_NAME = "python3"  # the notebooks' own kernelspec: ours is found first (see kernel_path)
KERNEL_DISPLAY_NAME = "Python 3 (clicklib)"


@dataclass
class Lab:
    process: subprocess.Popen
    url: str  # the lab's address with its token: open it in a browser
    root: Path
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def kernel_path(settings: Settings) -> Path:
    """A Jupyter data folder whose only kernel, ``python3``, runs this interpreter. Put first on
    JUPYTER_PATH, it wins over a ``python3`` kernel of the user's or the system's."""
    data = settings.home / "jupyter"
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }
    folder = data / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    return data


def default_root() -> Path:
    """The notebooks folder: the checkout's ``notebooks/``, or the installed package's copy."""
    return Path(str(resources.notebooks_dir())).resolve()


def command(settings: Settings, root: Path, config: Path) -> list[str]:
    """The JupyterLab command line: loopback, a fixed port (a taken one is an error, not another
    port), no browser, no update checks or extension installs over a network this may not have.
    ``config`` holds the token."""
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--config={config}",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={settings.lab_port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
        # Kernels talk to the server over Unix sockets only its user can open, not TCP ports
        # every local user could reach (the messages are signed, but not encrypted).
        "--KernelManager.transport=ipc",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        # Jupyter refuses to start as root unless told; containers and CI machines run as root.
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]


def stack_warning(settings: Settings) -> str:
    """What to tell the user when the stack is not (all) up, or '' when it is."""
    down = [f"{row.service} ({row.state})" for row in stack.status(settings) if not row.healthy]
    if not down:
        return ""
    return (
        f"the stack is not up: {', '.join(down)}. The notebooks need it: start it with "
        "`clicklib stack up` (or run notebook 01, which does)"
    )


def start(
    settings: Settings,
    root: Path | None = None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
) -> Lab:
    """Start JupyterLab over ``root`` (default: the notebooks) and wait until it answers.

    Its kernels see these settings (``CLICKLIB_*``) and ``env``. Raises ServiceStartError, with
    the log's tail, if it exits or stays silent."""
    root = (root or default_root()).resolve()
    log = log or settings.home / "logs" / "lab.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    config = private_file(
        settings.home / "run" / f"lab-{settings.lab_port}.json",
        json.dumps({"IdentityProvider": {"token": token}}),
    )
    jupyter_path = [str(kernel_path(settings)), os.environ.get("JUPYTER_PATH", "")]
    child_env = {
        **{k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN"},
        **settings.to_env(),
        **(env or {}),
        "JUPYTER_PATH": os.pathsep.join(p for p in jupyter_path if p),
    }
    base = f"http://127.0.0.1:{settings.lab_port}"
    with open(log, "ab") as out:
        # Its own session and no terminal input: Ctrl-C reaches `clicklib lab`, which stops it,
        # instead of Jupyter asking on the terminal whether to shut down.
        proc = subprocess.Popen(
            command(settings, root, config),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Lab(proc, f"{base}/lab?token={token}", root, log)

    def answers() -> bool:
        try:
            # Another server on this port does not know our token (403): ours will exit shortly.
            return requests.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=2).ok
        except requests.RequestException:
            return False

    try:
        process.wait_answering(
            proc,
            answers,
            "JupyterLab",
            log,
            timeout,
            hint=f" (is port {settings.lab_port} taken? set CLICKLIB_LAB_PORT)",
        )
    except BaseException:
        running.stop()  # nothing left holding the port
        raise
    return running
