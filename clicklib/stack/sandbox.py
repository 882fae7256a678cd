"""Start a process that cannot open the stack's secrets, except the files named for it.

Every service of the local stack runs as the user who started it, so file modes cannot keep
one service from another's password: a Flink job (a filesystem table over
``<home>/secrets``), a connector or anything else a service can be made to run would read
them all. In the secure profile each service is therefore started through this file, which
puts it under a Landlock ruleset (Linux 5.13 and later, no privileges needed) before it
executes the service: the whole file system stays open to it, except the ``--hide`` folders,
of which it may read only the ``--read`` files. The ruleset passes to every process the
service starts and cannot be lifted.

Landlock only grants, it never denies: so the rules open every entry beside the path down to a
hidden folder, at every level, and nothing inside it. Two consequences:

- an entry made beside that path after the service started (a new file in the project folder,
  say) is closed to it; the stack makes its own folders before it starts anything;
- a second mount that shows a hidden folder again (a bind mount) is hidden too: the folder is
  looked up in every mount of its file system.

It uses the standard library only and runs as a file (``python sandbox.py --hide DIR --read
FILE -- COMMAND...``): it must not import clicklib, which reads settings and secrets itself.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from collections.abc import Iterable
from pathlib import Path

# Linux's Landlock system calls: the same numbers on every architecture.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# File system rights by the Landlock ABI version that brought them (linux/landlock.h).
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_ABI1 = (1 << 13) - 1  # execute .. make_sym
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
# Rights that make sense on a file (the others apply to directories only).
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV


class SandboxError(RuntimeError):
    """Landlock is missing or refused the ruleset."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The Landlock ABI the running kernel offers; 0 when it has none (too old, or disabled)."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(version, 0)


def handled_rights(abi: int) -> int:
    """Every file system right the kernel's ABI knows: all are denied outside the rules."""
    rights = _ABI1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def _unescape(field: str) -> str:
    # /proc/self/mountinfo writes space, tab, newline and backslash in paths as octal escapes.
    for escape, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escape, char)
    return field


def exposures(folder: Path, mountinfo: str) -> list[Path]:
    """Every path under which ``folder`` can be reached: its own, and the same folder through any
    other mount of its file system (a bind mount of it or of a folder above it)."""
    mounts = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) >= 5:
            mounts.append((fields[2], _unescape(fields[3]), Path(_unescape(fields[4]))))
    # The mount that holds the folder: the deepest mount point above it.
    holders = [m for m in mounts if folder == m[2] or m[2] in folder.parents]
    if not holders:
        return [folder]
    device, root, point = max(holders, key=lambda m: len(m[2].parts))
    inside = Path(root) / folder.relative_to(point)  # the folder's path within its file system
    found = [folder]
    for other_device, other_root, other_point in mounts:
        if other_device != device:
            continue
        other_root_path = Path(other_root)
        if inside == other_root_path or other_root_path in inside.parents:
            seen = other_point / inside.relative_to(other_root_path)
            if seen not in found:
                found.append(seen)
    return found


def open_paths(hidden: Iterable[Path], root: Path = Path("/")) -> list[Path]:
    """The paths to open: everything under ``root`` except the ``hidden`` folders, as few rules
    as it takes. Each entry beside the way down to a hidden folder is opened whole; a symbolic
    link is opened where it points, unless that is a hidden folder or above one."""
    hidden = [Path(os.path.realpath(h)) for h in hidden]

    def above_hidden(path: Path) -> bool:
        return any(path == h or path in h.parents for h in hidden)

    def inside_hidden(path: Path) -> bool:
        return any(path == h or h in path.parents for h in hidden)

    rules: list[Path] = []

    def walk(folder: Path) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            real = Path(os.path.realpath(path))
            if entry.is_symlink():
                # Opened where it points, unless that leads into or above what is hidden.
                if not above_hidden(real) and not inside_hidden(real) and real.exists():
                    rules.append(real)
            elif above_hidden(path):
                if not inside_hidden(path):
                    walk(path)
            else:
                rules.append(path)

    if not above_hidden(root):
        return [root]
    walk(root)
    return rules


def restrict(hidden: Iterable[Path], readable: Iterable[Path]) -> None:
    """Put this process (and whatever it executes) under the ruleset: all open but ``hidden``,
    of which only the ``readable`` files and folders may be read."""
    readable = [Path(path) for path in readable]
    abi = abi_version()
    if abi < 1:
        raise SandboxError(f"this kernel ({os.uname().release}) offers no Landlock (Linux 5.13+ with Landlock on)")
    libc = _libc()
    handled = handled_rights(abi)
    hidden_paths = [p for folder in hidden for p in exposures(Path(folder), _mountinfo())]
    attr = _RulesetAttr(handled)
    size = ctypes.c_size_t(ctypes.sizeof(attr))
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), size, ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(f"Landlock refused a ruleset: {os.strerror(ctypes.get_errno())}")
    grants = [(path, handled) for path in open_paths(hidden_paths)]
    # Folders may be listed everywhere (names are no secret; some programs list what they walk).
    grants.append((Path("/"), READ_DIR))
    grants += [(path, READ_FILE | READ_DIR) for path in readable]
    for path, rights in grants:
        try:
            descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError as exc:
            if path in readable:
                raise SandboxError(f"cannot open {path} to grant it: {exc.strerror}") from None
            continue  # gone since it was listed
        try:
            if not os.path.isdir(path):
                rights &= _FILE_RIGHTS
            rule = _PathBeneathAttr(rights, descriptor)
            if libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), 0):
                raise SandboxError(f"Landlock refused a rule for {path}: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(descriptor)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise SandboxError(f"cannot set no_new_privs: {os.strerror(ctypes.get_errno())}")
    if libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)):
        raise SandboxError(f"Landlock refused to restrict the process: {os.strerror(ctypes.get_errno())}")
    os.close(ruleset)


def _mountinfo() -> str:
    try:
        return Path("/proc/self/mountinfo").read_text()
    except OSError:
        return ""


def command_line(hidden: Iterable[Path], readable: Iterable[Path], command: list[str]) -> list[str]:
    """``command`` started through this file: under the ruleset, with only ``readable`` open of
    the ``hidden`` folders."""
    return [
        sys.executable,
        str(Path(__file__)),
        *(f"--hide={path}" for path in hidden),
        *(f"--read={path}" for path in readable),
        "--",
        *command,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hide", action="append", default=[], type=Path, help="a folder the command may not open")
    parser.add_argument("--read", action="append", default=[], type=Path, help="a file in it the command may read")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    arguments = parser.parse_args(argv)
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        parser.error("no command to run")
    try:
        restrict(arguments.hide, arguments.read)
    except SandboxError as exc:
        print(f"clicklib sandbox: {exc}; {command[0]} was not started", file=sys.stderr)
        return 2
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"clicklib sandbox: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
