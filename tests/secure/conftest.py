"""The secure profile's session, against a stack of its own started with CLICKLIB_SECURE=1 (see
the Makefile): `make test` runs the refusals here, `make test-full` all of these tests and the
pipeline's exactness tests.

When the session starts the stack in a fresh home (as `make secure` does), its first start is
watched from outside (test_first_start.py checks what was seen)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable

from clicklib import secrets
from clicklib.settings import Settings
from clicklib.stack import process


@pytest.fixture(scope="session", autouse=True)
def secure_profile(settings: Settings) -> None:
    assert settings.secure, "tests/secure run against the secure profile: `make test` starts it with CLICKLIB_SECURE=1"


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

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)

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
                command = " ".join(proc.cmdline())
                seen = command + "\n" + "\n".join(f"{k}={v}" for k, v in proc.environ().items())
            except Exception:  # the process ended between listing and reading
                continue
            if any(password in seen for password in passwords):
                self.shown.add(command[:120])


def every_password(settings: Settings) -> list[str]:
    """Every password clicklib generated for the stack (secrets/passwords/)."""
    stored = secrets.local_credentials(settings)
    return [password for logins in stored.values() for password in logins.values()]


def _passwords(settings: Settings) -> list[str]:
    """The passwords made so far in a first start: none, then the logins, then the bootstrap one.
    The files are only looked at, never made (secrets' own helpers would make them early)."""
    found = []
    folder = secrets.secrets_dir(settings) / secrets.PASSWORDS_FOLDER
    if folder.is_dir():
        # Read as they are made: one file per login, written whole (private_file).
        found += [path.read_text().strip() for path in folder.iterdir() if not path.name.startswith(".")]
    bootstrap = secrets.secrets_dir(settings) / "cassandra-bootstrap-password"
    if bootstrap.is_file():
        found.append(bootstrap.read_text().strip())
    return found


@pytest.fixture(scope="session")
def first_start(settings: Settings) -> Iterator[Watcher | None]:
    """A watcher of the stack's first start, or None when the home has been started before."""
    if (secrets.secrets_dir(settings) / secrets.PASSWORDS_FOLDER).exists():
        yield None
        return
    watcher = Watcher(settings)
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()


@pytest.fixture(scope="session")
def live_stack(first_start: Watcher | None, live_stack: Settings) -> Settings:
    """The stack (tests/conftest.py), its first start watched until it is up."""
    if first_start is not None:
        first_start.stop()
    return live_stack
