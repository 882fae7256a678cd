"""What the stack's downloads are held to: the Flink distribution to its pinned sha256, Maven's
downloads to the repository's checksums. No network: pip reads a wheel made here, and Maven
is not run."""

from __future__ import annotations

import hashlib
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from clicklib.exceptions import DependencyResolutionError
from clicklib.settings import Settings
from clicklib.stack import jars

WHEEL_GLOB = "probe-1.0-*.whl"


def _wheel(directory: Path) -> Path:
    """A minimal wheel that pip takes from a path, as it would a download from PyPI."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / "probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("probe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: probe\nVersion: 1.0\n")
        archive.writestr(
            "probe-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr("probe-1.0.dist-info/RECORD", "")
    return wheel


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_flink_distribution_is_pinned_by_sha256(monkeypatch, tmp_path):
    assert re.fullmatch(r"[0-9a-f]{64}", jars.FLINK_DIST_SHA256)
    asked = {}

    def download(requirement, directory, wheel_glob, sha256=None):
        asked.update(requirement=requirement, sha256=sha256)
        raise DependencyResolutionError("stop here")

    monkeypatch.setattr(jars, "pip_download", download)
    with pytest.raises(DependencyResolutionError, match="stop here"):
        jars.resolve_flink_dist(Settings(home=tmp_path), log=lambda _: None)
    assert asked == {"requirement": f"apache-flink-libraries=={jars.FLINK_VERSION}", "sha256": jars.FLINK_DIST_SHA256}


def test_pip_refuses_a_download_whose_sha256_is_not_the_pinned_one(tmp_path):
    wheel = _wheel(tmp_path / "index")
    pinned = "0" * 64
    with pytest.raises(DependencyResolutionError) as refused:
        jars.pip_download(str(wheel), tmp_path / "downloads", WHEEL_GLOB, pinned)
    message = str(refused.value)
    assert message.startswith(f"refused {wheel}: the file downloaded is not the one clicklib pins (sha256 {pinned})")
    # pip's own report, with the digest the file has.
    assert _sha256(wheel) in message
    assert not list((tmp_path / "downloads").iterdir())


def test_a_download_with_the_pinned_sha256_is_returned(tmp_path):
    wheel = _wheel(tmp_path / "index")
    downloaded = jars.pip_download(str(wheel), tmp_path / "downloads", WHEEL_GLOB, _sha256(wheel))
    assert downloaded == tmp_path / "downloads" / wheel.name
    assert _sha256(downloaded) == _sha256(wheel)


def test_a_wheel_found_beside_with_another_sha256_is_refused_and_deleted(monkeypatch, tmp_path):
    # Should pip leave another file where the wheel is looked for, the digest is checked again.
    downloads = tmp_path / "downloads"
    stale = _wheel(downloads)
    monkeypatch.setattr(
        jars.subprocess, "run", lambda args, **kwargs: subprocess.CompletedProcess(args, 0, stdout="", stderr="")
    )
    with pytest.raises(DependencyResolutionError, match=f"refused probe==1.0: .*\n{stale.name} has sha256 "):
        jars.pip_download("probe==1.0", downloads, WHEEL_GLOB, "0" * 64)
    assert not stale.exists()


def test_maven_runs_with_strict_checksums_and_says_when_one_failed(monkeypatch):
    ran = []
    output = (
        "[ERROR] Failed to execute goal on project kafka: Could not resolve dependencies for project "
        "io.clicklib.stack:kafka:pom:0.1.0: Could not transfer artifact org.apache.kafka:kafka_2.13:jar:4.1.0 "
        "from/to central (https://repo.maven.apache.org/maven2): Checksum validation failed, expected 01 but is 02\n"
    )

    def run(args, **kwargs):
        ran.append(args)
        return subprocess.CompletedProcess(args, 1, stdout=output, stderr="")

    monkeypatch.setattr(jars.shutil, "which", lambda name: "/usr/bin/mvn")
    monkeypatch.setattr(jars.subprocess, "run", run)
    with pytest.raises(DependencyResolutionError) as failed:
        jars._run_maven(["-f", "pom.xml", "package"], "the kafka classpath")
    assert ran == [["/usr/bin/mvn", "-B", "-q", "-C", "-f", "pom.xml", "package"]]
    message = str(failed.value)
    assert message.startswith(
        "Maven could not resolve org.apache.kafka:kafka_2.13:jar:4.1.0 while resolving the kafka classpath; "
        "a download did not match the repository's checksum"
    )
