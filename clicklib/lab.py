"""JupyterLab over the notebooks, for working in them by hand: ``clicklib lab`` or ``make lab``.

The server binds 127.0.0.1 only and keeps Jupyter's token login on: a kernel runs any code it
is sent, so neither another machine nor a web page may reach it without the token. The token
is made here and handed over in the environment, not on the command line, where ``ps`` would
show it. Its kernel, "Python 3 (clicklib)", is this interpreter: the project's environment,
whatever other kernels the machine has. The charts render in JupyterLab itself, which bundles
Vega: no network is needed.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from clicklib import resources, stack
from clicklib.exceptions import ServiceStartError
from clicklib.settings import Settings

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


def command(settings: Settings, root: Path) -> list[str]:
    """The JupyterLab command line: loopback, a fixed port (a taken one is an error, not another
    port), no browser, no update checks or extension installs over a network this may not have."""
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={settings.lab_port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
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
    jupyter_path = [str(kernel_path(settings)), os.environ.get("JUPYTER_PATH", "")]
    child_env = {
        **os.environ,
        **settings.to_env(),
        **(env or {}),
        "JUPYTER_TOKEN": token,
        "JUPYTER_PATH": os.pathsep.join(p for p in jupyter_path if p),
    }
    base = f"http://127.0.0.1:{settings.lab_port}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(command(settings, root), env=child_env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServiceStartError(
                f"JupyterLab exited with {proc.returncode} while starting (is port {settings.lab_port} taken? "
                f"set CLICKLIB_LAB_PORT); its log is {log}",
                service="lab",
                log_tail=log.read_text(errors="replace")[-4000:],
            )
        try:
            answer = requests.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=2)
            if answer.status_code == 200:
                return Lab(proc, f"{base}/lab?token={token}", root, log)
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise ServiceStartError(
                f"JupyterLab did not answer on {base} within {timeout:.0f} s; its log is {log}",
                service="lab",
                log_tail=log.read_text(errors="replace")[-4000:],
            )
        time.sleep(0.3)
