"""The sandbox a secure stack's services start in: each may read its own secrets only.

The rules are worked out from a real folder tree, and the last tests run real processes under
the kernel's Landlock (skipped where the kernel has none).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clicklib.stack import sandbox

SCRIPT = Path(sandbox.__file__)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A home with a secrets folder of two files, beside data and a file, in a project folder."""
    home = tmp_path / "project" / "home"
    for folder in ("secrets/tls", "data/kafka", "logs"):
        (home / folder).mkdir(parents=True)
    (home / "secrets" / "mine").write_text("my password\n")
    (home / "secrets" / "theirs").write_text("their password\n")
    (home / "secrets" / "tls" / "key").write_text("key\n")
    (home / "data" / "kafka" / "segment").write_text("events\n")
    (tmp_path / "project" / "notes.txt").write_text("notes\n")
    (tmp_path / "elsewhere").mkdir()
    return tmp_path


def test_the_rules_open_everything_beside_the_way_to_the_hidden_folder_and_nothing_in_it(tree: Path) -> None:
    home = tree / "project" / "home"
    rules = sandbox.open_paths([home / "secrets"], root=tree)
    assert sorted(rules) == sorted([tree / "elsewhere", tree / "project" / "notes.txt", home / "data", home / "logs"])


def test_a_link_into_or_above_the_hidden_folder_is_not_followed(tree: Path) -> None:
    home = tree / "project" / "home"
    (tree / "to-home").symlink_to(home)
    (tree / "to-secrets").symlink_to(home / "secrets")
    (tree / "to-a-secret").symlink_to(home / "secrets" / "theirs")
    (tree / "to-data").symlink_to(home / "data")
    rules = sandbox.open_paths([home / "secrets"], root=tree)
    assert home / "data" in rules  # the link to data is opened where it points
    assert not [rule for rule in rules if rule in (home, home / "secrets") or home / "secrets" in rule.parents]


def test_nothing_is_hidden_when_no_hidden_folder_is_under_the_root(tree: Path) -> None:
    assert sandbox.open_paths([tree / "elsewhere" / "secrets"], root=tree / "project") == [tree / "project"]


MOUNTINFO = """\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 22 0:21 / /proc rw - proc proc rw
31 22 254:0 /work /mnt/work\\040copy rw,relatime - ext4 /dev/vda rw
32 22 254:0 /work/main/.clickstack/data /srv/data rw,relatime - ext4 /dev/vda rw
33 22 254:0 /work/main/.clickstack/secrets /srv/secrets rw,relatime - ext4 /dev/vda rw
34 22 254:1 /work /other-disk rw - ext4 /dev/vdb rw
"""


def test_a_bind_mount_that_shows_the_hidden_folder_again_is_hidden_too() -> None:
    folder = Path("/work/main/.clickstack/secrets")
    assert sandbox.exposures(folder, MOUNTINFO) == [
        folder,
        Path("/mnt/work copy/main/.clickstack/secrets"),
        Path("/srv/secrets"),
    ]


def test_every_right_the_kernel_knows_is_handled() -> None:
    assert sandbox.handled_rights(1) == (1 << 13) - 1
    assert sandbox.handled_rights(3) == (1 << 15) - 1
    assert sandbox.handled_rights(7) == (1 << 16) - 1


landlock = pytest.mark.skipif(sandbox.abi_version() < 1, reason="this kernel offers no Landlock")


def run_sandboxed(tree: Path, script: str) -> subprocess.CompletedProcess:
    home = tree / "project" / "home"
    command = sandbox.command_line([home / "secrets"], [home / "secrets" / "mine"], [sys.executable, "-c", script])
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=tree)


def outcome(path: Path) -> str:
    return f"""
try:
    print(open({str(path)!r}).read().strip())
except OSError as exc:
    print(type(exc).__name__)
"""


@landlock
@pytest.mark.parametrize(
    ("path", "seen"),
    [
        ("project/home/secrets/mine", "my password"),
        ("project/home/secrets/theirs", "PermissionError"),
        ("project/home/secrets/tls/key", "PermissionError"),
        ("project/home/data/kafka/segment", "events"),
        ("project/notes.txt", "notes"),
    ],
)
def test_a_sandboxed_process_reads_its_own_secret_and_everything_else_but_no_other_secret(
    tree: Path, path: str, seen: str
) -> None:
    result = run_sandboxed(tree, outcome(tree / path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == seen


@landlock
def test_no_other_way_to_a_secret_opens_it(tree: Path) -> None:
    home = tree / "project" / "home"
    theirs = home / "secrets" / "theirs"
    (tree / "elsewhere" / "link").symlink_to(theirs)
    script = f"""
import errno, os, shutil
theirs, data = {str(theirs)!r}, {str(home / "data")!r}
def attempt(action):
    try:
        action()
        print("done")
    except OSError as exc:
        print(errno.errorcode[exc.errno])
attempt(lambda: open({str(tree / "elsewhere" / "link")!r}).read())  # a link made before
attempt(lambda: open("/proc/self/root" + theirs).read())  # the root, seen through /proc
attempt(lambda: open("/proc/{os.getpid()}/root" + theirs).read())  # an outside process's root
os.symlink(theirs, data + "/later")  # a link made inside
attempt(lambda: open(data + "/later").read())
attempt(lambda: shutil.copy(theirs, data + "/copy"))
attempt(lambda: os.link(theirs, data + "/hard"))
attempt(lambda: os.rename(theirs, data + "/moved"))
"""
    result = run_sandboxed(tree, script)
    assert result.returncode == 0, result.stderr
    # Each refused: a hard link across the rule boundary with EXDEV, the rest with EACCES.
    assert result.stdout.split() == ["EACCES"] * 5 + ["EXDEV", "EACCES"]
    assert theirs.read_text() == "their password\n"


@landlock
def test_what_the_service_writes_beside_its_secrets_still_works(tree: Path) -> None:
    home = tree / "project" / "home"
    script = f"""
import os, tempfile
with open({str(home / "data" / "kafka" / "new")!r}, "w") as out:
    out.write("x")
os.rename({str(home / "data" / "kafka" / "new")!r}, {str(home / "logs" / "moved")!r})
with tempfile.NamedTemporaryFile() as scratch:
    scratch.write(b"x")
print(sorted(os.listdir({str(home / "secrets")!r})))
"""
    result = run_sandboxed(tree, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['mine', 'theirs', 'tls']"  # names are no secret
    assert (home / "logs" / "moved").read_text() == "x"


@landlock
def test_a_command_that_cannot_run_is_named() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--hide=/nonexistent", "--", "/nonexistent/java"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 127
    assert "cannot run /nonexistent/java" in result.stderr


def test_a_missing_file_to_grant_stops_the_start_and_names_the_file(tmp_path: Path) -> None:
    if sandbox.abi_version() < 1:
        pytest.skip("this kernel offers no Landlock")
    missing = tmp_path / "secrets" / "absent"
    result = subprocess.run(
        [*sandbox.command_line([tmp_path / "secrets"], [missing], ["true"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"cannot open {missing} to grant it" in result.stderr and "true was not started" in result.stderr


def test_a_secure_stack_on_a_kernel_without_landlock_is_refused_and_told_what_to_do(tmp_path, monkeypatch) -> None:
    from clicklib.exceptions import StackError
    from clicklib.settings import Settings
    from clicklib.stack import lifecycle

    monkeypatch.setattr(sandbox, "abi_version", lambda: 0)
    with pytest.raises(StackError, match=r"does not offer .* set CLICKLIB_SANDBOX=0 to start without it"):
        lifecycle.check_sandbox(Settings(home=tmp_path, secure=True))
    lifecycle.check_sandbox(Settings(home=tmp_path, secure=True, sandbox=False))
    lifecycle.check_sandbox(Settings(home=tmp_path))  # the default profile starts nothing sandboxed


def test_each_service_is_started_with_only_its_own_secrets_and_data_open(tmp_path) -> None:
    from clicklib.settings import Settings
    from clicklib.stack import lifecycle

    settings = Settings(home=tmp_path, secure=True)
    command = lifecycle.sandboxed_command(settings, "flink-taskmanager", ["java", "-version"])
    assert command[-3:] == ["--", "java", "-version"]
    hidden = {argument.removeprefix("--hide=") for argument in command if argument.startswith("--hide=")}
    data = tmp_path / "data"
    others = ("kafka", "cassandra", "schema-registry")
    assert hidden == {str(tmp_path / "secrets"), *(str(data / name) for name in others)}
    readable = {argument.removeprefix("--read=") for argument in command if argument.startswith("--read=")}
    assert readable == {
        str(tmp_path / "secrets" / name)
        for name in ("rest-tls/keystore.p12", "rest-tls/truststore.p12", "kafka-client-flink.jaas")
    }
    kafka = lifecycle.sandboxed_command(settings, "kafka", ["java"])
    assert f"--hide={data / 'flink'}" in kafka and f"--hide={data / 'kafka'}" not in kafka
