import os
import socket
import stat

import pytest

from clicklib.exceptions import JavaNotFoundError, PortInUseError
from clicklib.settings import Settings
from clicklib.stack import process


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "25" 2025-09-16', 25),
        ('openjdk version "11.0.2"', 11),
        ("no version here", None),
    ],
)
def test_java_major_version_is_read_from_java_version_output(output, major):
    assert process.parse_java_major(output) == major


def test_a_missing_java_is_a_clear_error(tmp_path):
    settings = Settings(home=tmp_path, java=str(tmp_path / "no-such-java"))
    with pytest.raises(JavaNotFoundError, match=r"Java not found.*CLICKLIB_JAVA"):
        process.find_java(settings)


def test_a_java_older_than_17_is_refused(tmp_path):
    old_java = tmp_path / "java"
    old_java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    old_java.chmod(old_java.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(JavaNotFoundError, match="Java 11, older than 17"):
        process.find_java(Settings(home=tmp_path, java=str(old_java)))


def test_the_installed_java_is_accepted(tmp_path):
    java = process.find_java(Settings(home=tmp_path))
    assert os.access(java, os.X_OK)


def test_a_taken_port_names_the_port_the_service_and_the_holder(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = Settings(home=tmp_path, kafka_port=port)
        with pytest.raises(PortInUseError) as caught:
            process.check_port(settings, "kafka", "kafka", port)
    message = str(caught.value)
    assert f"port {port}" in message
    assert "kafka" in message
    assert f"pid {os.getpid()}" in message
    assert "CLICKLIB_KAFKA_PORT" in message
    assert caught.value.port == port


def test_a_free_port_passes(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process.check_port(Settings(home=tmp_path), "kafka", "kafka", port)


def test_log_tail_returns_the_last_lines(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    tail = process.log_tail(log, 3)
    assert tail == "line 97\nline 98\nline 99\n"


def test_what_a_service_writes_and_the_home_it_lives_in_are_its_owners_alone(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    process.make_private(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    proc = process.spawn(
        "writer",
        ["sh", "-c", "mkdir data && echo segment > data/file"],
        home / "writer.log",
        home / "writer.pid",
        cwd=home,
    )
    proc.wait(timeout=30)
    assert stat.S_IMODE((home / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "data" / "file").stat().st_mode) == 0o600
