"""The local stack's disk space: a full disk is a clear state, not corruption.

Every service of the local stack writes under its home (Kafka's segments, Cassandra's commit
log and tables, Flink's checkpoints, the lake, the logs), usually on one filesystem. Two bounds,
in settings, apply to each filesystem the stack writes to:

- below ``disk_warn_mb`` free, ``stack status`` and the dashboard warn ("low"), with the free
  space and what of the stack's uses it;
- below ``disk_refuse_mb`` free ("full"), the stack takes no more data in: the collector answers
  503 and ``produce`` stops and says why. What Kafka has acknowledged still flows on to Cassandra
  in the room the bound keeps for it, and the supervisor does not count a service's exits as a
  crash loop (it starts it again once it can). Once space is freed, everything goes on by itself.

Only Kafka's filesystem decides refusal: an event Kafka has stored is safe even while Cassandra
waits for room, and an event it cannot store must not be acknowledged.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from clicklib.settings import Settings
from clicklib.stack import configs

MIB = 2**20
OK, LOW, FULL = "ok", "low", "full"
# How long the guard trusts its last look at the free space: a statvfs a second costs nothing,
# and a second of events is far less than the room the refusal bound keeps.
GUARD_EVERY_SECONDS = 1.0


def stack_folders(settings: Settings) -> dict[str, Path]:
    """What the local stack writes, by the name status gives it."""
    folders = {name: configs.data_dir(settings, name) for name in configs.DATA_FOLDERS}
    folders["logs"] = configs.log_dir(settings)
    if settings.flink_lake_url.startswith("file://"):
        folders["lake"] = Path(unquote(urlsplit(settings.flink_lake_url).path))
    return folders


def _existing(path: Path) -> Path:
    """The path, or its nearest folder that exists (before the stack's first start)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Bytes free to a process writing at ``path`` (what an unprivileged writer may use)."""
    return shutil.disk_usage(_existing(path)).free


def size_of(path: Path) -> int:
    """Bytes a folder takes on disk (allocated blocks: a sparse index counts what it holds);
    links are not followed, so the jars beside a test's home are not counted twice."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue  # gone meanwhile (a rolled segment), or not there yet
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif not entry.is_symlink():
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total


def state_of(settings: Settings, free: int) -> str:
    if free < settings.disk_refuse_mb * MIB:
        return FULL
    if free < settings.disk_warn_mb * MIB:
        return LOW
    return OK


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / MIB:.0f} MiB"


@dataclass(frozen=True)
class Filesystem:
    """One filesystem the stack writes to: its free space and what of the stack's is on it."""

    path: Path  # the stack's home, or the first of its folders found on it
    free: int
    total: int
    state: str
    uses: dict[str, int] = field(default_factory=dict)  # folder name -> bytes, measured when not ok

    def describe(self, settings: Settings) -> str:
        uses = ", ".join(f"{name} {_size(n)}" for name, n in sorted(self.uses.items(), key=lambda u: -u[1]))
        text = f"{_size(self.free)} free of {_size(self.total)} at {self.path}"
        if self.state == FULL:
            text += (
                f": below {settings.disk_refuse_mb} MiB, so no event is taken in (the collector answers 503)"
                "; free space there and everything goes on by itself"
            )
        elif self.state == LOW:
            text += f": below {settings.disk_warn_mb} MiB; at {settings.disk_refuse_mb} MiB no event is taken in"
        return f"{text}; the stack's: {uses}" if uses else text


@dataclass(frozen=True)
class DiskReport:
    state: str  # the worst of its filesystems
    filesystems: list[Filesystem]

    def detail(self, settings: Settings) -> str:
        worst = [fs for fs in self.filesystems if fs.state == self.state]
        return "; ".join(fs.describe(settings) for fs in worst)


def report(settings: Settings) -> DiskReport:
    """Each filesystem the stack writes to, worst first."""
    home = _existing(settings.home)
    # A filesystem is named by the home when the home is on it, else by the first folder found there.
    by_device: dict[int, tuple[Path, dict[str, Path]]] = {home.stat().st_dev: (home, {})}
    for name, folder in stack_folders(settings).items():
        where = _existing(folder)
        by_device.setdefault(where.stat().st_dev, (where, {}))[1][name] = folder
    filesystems = []
    for where, folders in by_device.values():
        usage = shutil.disk_usage(where)
        state = state_of(settings, usage.free)
        # What uses the room is measured only when it runs short: walking Kafka's and Cassandra's
        # files on every status (the dashboard's every reading) would cost for nothing.
        uses = {} if state == OK else {name: size_of(f) for name, f in folders.items() if f.exists()}
        filesystems.append(Filesystem(where, usage.free, usage.total, state, uses))
    rank = {FULL: 0, LOW: 1, OK: 2}
    filesystems.sort(key=lambda fs: rank[fs.state])
    return DiskReport(filesystems[0].state if filesystems else OK, filesystems)


def kafka_is_local(settings: Settings) -> bool:
    """Whether the clients' Kafka is this machine's local stack, whose segments are under its home."""
    local = f"{settings.bind_host}:{settings.kafka_port}"
    return settings.bootstrap_servers.strip() == local and configs.data_dir(settings, "kafka").is_dir()


class KafkaDiskGuard:
    """Says why no event may be taken in while Kafka's filesystem is below the refusal bound;
    looks at most once per ``GUARD_EVERY_SECONDS``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = configs.data_dir(settings, "kafka")
        self._checked_at = float("-inf")
        self._refusal: str | None = None

    def refusal(self) -> str | None:
        now = time.monotonic()
        if now - self._checked_at >= GUARD_EVERY_SECONDS:
            self._checked_at = now
            try:
                free = free_bytes(self.folder)
            except OSError:
                free = None  # no answer is no reason to refuse
            if free is not None and state_of(self.settings, free) == FULL:
                self._refusal = (
                    f"the disk of Kafka's data ({self.folder}) has {_size(free)} free, below "
                    f"{self.settings.disk_refuse_mb} MiB (CLICKLIB_DISK_REFUSE_MB): events are refused "
                    "rather than acknowledged and then lost; free space there (`clicklib stack status` "
                    "shows what the stack uses) and send again"
                )
            else:
                self._refusal = None
        return self._refusal


def guard(settings: Settings) -> KafkaDiskGuard | None:
    """A guard for clients of the local stack's Kafka; None for any other Kafka, whose disk is not here."""
    return KafkaDiskGuard(settings) if kafka_is_local(settings) and settings.disk_refuse_mb > 0 else None


def process_waits_for_space(settings: Settings, service_folder: Path) -> bool:
    """Whether a process writing to ``service_folder`` is on a filesystem below the refusal bound."""
    try:
        return state_of(settings, free_bytes(service_folder)) == FULL
    except OSError:
        return False
