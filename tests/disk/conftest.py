"""The disk-full test's own stack, on a filesystem of a fixed size that this session mounts.

`make test-full` runs it (the `disk-full` phase) with CLICKLIB_HOME set to an empty folder: the
session mounts a tmpfs of FILESYSTEM_MB there before the stack starts, links the jars of the usual
home into it (they would take most of the room), and unmounts it after the stack went down.
Mounting needs root; elsewhere the session is skipped, saying so.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from clicklib.pipeline import Pipeline
from clicklib.settings import Settings, get_settings
from tests.faults.conftest import RECOVERY, pytest_terminal_summary  # noqa: F401 - the same closing table

# Room for the stack's own writes while the test runs (Kafka's and Cassandra's data, Flink's
# checkpoints, the logs: about 150 MB) and the test's ballast; the Makefile's bounds are set
# against it.
FILESYSTEM_MB = 1024
JARS = "CLICKLIB_DISK_TEST_JARS"  # the usual home's jars, which the Makefile names


def _mounted(path: Path) -> bool:
    return any(line.split()[1] == str(path) for line in Path("/proc/mounts").read_text().splitlines())


@pytest.fixture(scope="session")
def size_limited_home() -> Path:
    home = get_settings().home
    if JARS not in os.environ:
        pytest.skip("the disk-full test runs on a stack of its own: `make disk-full` (part of `make test-full`)")
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited filesystem needs root; run `make test-full` as root")
    assert not _mounted(home), f"{home} is mounted already: a session before this one did not unmount it"
    assert home.is_dir() and not any(home.iterdir()), f"{home} must be an empty folder"
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FILESYSTEM_MB}m,mode=0700", "clicklib-disk-test", str(home)],
        check=True,
    )
    try:
        (home / "jars").symlink_to(os.environ[JARS])
        yield home
    finally:
        # The stack is down by now (live_stack's teardown ran first); a lazy unmount still
        # succeeds when a straggler holds a file open.
        subprocess.run(["umount", "--lazy", str(home)], check=False)


@pytest.fixture(scope="session")
def settings(size_limited_home: Path) -> Settings:
    """The session's settings, read once the home is on the size-limited filesystem."""
    return get_settings()


@pytest.fixture(scope="module")
def collected_pipeline(live_stack: Settings):
    """The pipeline the stack's collector sends into: the session's namespace (CLICKLIB_NAMESPACE
    when the stack started). With the default idle timeout, as in the fault suite: a partition
    whose writer is restarting must not be taken for a quiet one."""
    default_idle = Settings.__dataclass_fields__["idle_timeout"].default
    with Pipeline(dataclasses.replace(live_stack, idle_timeout=default_idle)) as pipeline:
        pipeline.up()
        yield pipeline
        pipeline.down(purge=True)
