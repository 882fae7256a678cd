"""A secure node's first start, watched from outside: its default superuser's well-known
password is never accepted, and no password shows on a command line or in an environment."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable

from clicklib import secrets, stack
from clicklib.settings import Settings
from clicklib.stack import process

SAMPLE_EVERY = 0.05


class Watcher(threading.Thread):
    """Tries cassandra/cassandra on the node's port and reads the stack's processes, every 50 ms."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.stopping = threading.Event()
        self.accepted = 0  # sessions opened with the well-known password
        self.refused = 0  # attempts the node answered with an authentication error
        self.shown: set[str] = set()  # where a password was seen
        self.samples = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            self.samples += 1
            self._try_default_login()
            self._read_processes()
            self.stopping.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - started)))

    def _try_default_login(self) -> None:
        cluster = Cluster(
            self.settings.cassandra_contact_points,
            port=self.settings.cassandra_port,
            connect_timeout=1,
            control_connection_timeout=1,
            auth_provider=PlainTextAuthProvider("cassandra", "cassandra"),
        )
        try:
            cluster.connect()
            self.accepted += 1
        except NoHostAvailable as exc:
            if any(isinstance(error, AuthenticationFailed) for error in exc.errors.values()):
                self.refused += 1
        except Exception:  # a node still starting: no answer is no acceptance
            pass
        finally:
            cluster.shutdown()

    def _read_processes(self) -> None:
        passwords = _passwords(self.settings)
        for proc in process.stack_processes(self.settings):
            try:
                seen = " ".join(proc.cmdline()) + "\n" + "\n".join(f"{k}={v}" for k, v in proc.environ().items())
            except Exception:  # the process ended between listing and reading
                continue
            if any(password in seen for password in passwords):
                self.shown.add(" ".join(proc.cmdline())[:120])


def _passwords(settings: Settings) -> list[str]:
    found = []
    path = secrets.secrets_dir(settings) / "credentials.json"
    if path.is_file():
        found += [p for logins in secrets.local_credentials(settings).values() for p in logins.values()]
    bootstrap = secrets.secrets_dir(settings) / "cassandra-bootstrap-password"
    if bootstrap.is_file():
        found.append(bootstrap.read_text().strip())
    return found


@pytest.mark.full
def test_a_first_start_never_accepts_the_default_password_nor_shows_a_password(live_stack: Settings, tmp_path: Path):
    # A node of its own, on ports of its own, in a fresh home that shares the stack's jars.
    (tmp_path / "jars").symlink_to(live_stack.home / "jars")
    settings = dataclasses.replace(
        live_stack, home=tmp_path, cassandra_port=live_stack.cassandra_port + 3, cassandra_storage_port=27000
    )
    watcher = Watcher(settings)
    watcher.start()
    try:
        rows = stack.up(settings, ["cassandra"])
        assert all(row.healthy for row in rows if row.service == "cassandra"), rows
        # Some time after clicklib's roles are made, too.
        time.sleep(2)
    finally:
        watcher.stopping.set()
        watcher.join(timeout=30)
        stack.down(settings)
    assert watcher.accepted == 0, f"cassandra/cassandra was accepted {watcher.accepted} times"
    # The watcher reached the node while it answered CQL: its refusals are the node's.
    assert watcher.refused > 0 and watcher.samples > 100, (watcher.refused, watcher.samples)
    assert not watcher.shown, f"a password was on a command line or in an environment: {watcher.shown}"
