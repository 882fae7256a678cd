"""Jars for the local stack, resolved once and cached under ``<home>/jars/``.

Each service has its own pom in ``clicklib/stack/poms/<service>/`` and its own
classpath folder, because Kafka, Cassandra, Connect and Flink pull conflicting versions
of the same libraries. Flink's distribution comes from PyPI (``apache-flink-libraries``);
the Cassandra sink plugin is built from ``connect/cassandra-sink`` and the Flink SQL
functions from ``ksql/functions``. A folder is
resolved again only when what it was resolved from changes, so a warm ``up`` touches
no network.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from clicklib import resources
from clicklib.exceptions import DependencyResolutionError, StackError
from clicklib.settings import Settings

POMS = Path(__file__).parent / "poms"
SINK_PLUGIN_SOURCE = Path(str(resources.connect_dir() / "cassandra-sink"))
SINK_PLUGIN_NAME = "clicklib-cassandra-sink"
FLINK_FUNCTIONS_SOURCE = Path(str(resources.ksql_dir() / "functions"))
FLINK_FUNCTIONS_NAME = "clicklib-flink-functions"
FLINK_DIST_PACKAGE = "apache-flink-libraries"
FLINK_VERSION = "2.2.0"
# The sha256 of apache_flink_libraries-2.2.0-py2.py3-none-any.whl, the file pip downloads, as PyPI
# lists it (https://pypi.org/pypi/apache-flink-libraries/json): any other file is refused, so a
# tampered mirror or proxy cannot swap the jars the stack runs. A new FLINK_VERSION needs its own.
FLINK_DIST_SHA256 = "675062484d9b04df228be80cf4179c9f92e9e11107a697ccbb1aa7d3b816772b"
SCHEMA_REGISTRY_SOURCE = POMS / "schema-registry"
AVRO_CONVERTER_POM = Path(str(resources.connect_dir() / "avro-converter" / "pom.xml"))
AVRO_CONVERTER_PLUGIN = "apicurio-avro-converter"
SCHEMA_REGISTRY_NAME = "clicklib-schema-registry"
# The secure profile's Cassandra authenticator: built into its own folder, which Cassandra's
# classpath takes after Cassandra's jars.
CASSANDRA_AUTH_SOURCE = POMS / "cassandra-auth"
CASSANDRA_AUTH_NAME = "clicklib-cassandra-auth"
CASSANDRA_AUTH = "cassandra-auth"
MAVEN_SERVICES = ("kafka", "cassandra", "connect", "flink", "flink-parquet")
# Flink loads its filesystem plugins (S3) from here, each from a folder of its own.
FLINK_PLUGINS = "flink-plugins"
S3_PLUGIN = "s3-fs-hadoop"
STAMP = ".resolved"


def jars_dir(settings: Settings, name: str) -> Path:
    return settings.home / "jars" / name


def classpath(settings: Settings, *names: str) -> str:
    """A java -cp value holding every jar of the named folders, in order."""
    jars: list[str] = []
    for name in names:
        jars.extend(str(p) for p in sorted(jars_dir(settings, name).glob("*.jar")))
    return ":".join(jars)


def resolve_all(settings: Settings, log=print) -> None:
    """Make every classpath folder current; cheap when nothing changed."""
    resolve_for(settings, ["kafka", "cassandra", "connect", "flink", "schema-registry"], log)


def resolve_for(settings: Settings, services: list[str], log=print) -> None:
    """Make the classpath folders of the named services current (flink-* count as flink)."""
    wanted = {"flink" if name.startswith("flink") or name == "sql-gateway" else name for name in services}
    if "flink" in wanted:
        wanted.add("flink-parquet")
    for service in MAVEN_SERVICES:
        if service in wanted:
            resolve_maven(settings, service, log)
    if "cassandra" in wanted:
        target = jars_dir(settings, CASSANDRA_AUTH)
        build_maven_project(settings, CASSANDRA_AUTH_SOURCE, CASSANDRA_AUTH_NAME, target, log)
    if "flink" in wanted:
        resolve_flink_dist(settings, log)
        if settings.flink_lake_url.startswith("s3a://"):
            resolve_maven(settings, "flink-s3", log, target=jars_dir(settings, FLINK_PLUGINS) / S3_PLUGIN)
        # Its tests hold it to the shared vectors of the checkout (tests/vectors): `make test` runs
        # them every time (make java-vectors); the copy built here has no vectors beside it.
        build_maven_project(
            settings,
            FLINK_FUNCTIONS_SOURCE,
            FLINK_FUNCTIONS_NAME,
            jars_dir(settings, "flink-functions"),
            log,
            run_tests=False,
        )
    if "connect" in wanted:
        plugins = jars_dir(settings, "connect-plugins")
        build_maven_project(settings, SINK_PLUGIN_SOURCE, SINK_PLUGIN_NAME, plugins / SINK_PLUGIN_NAME, log)
        resolve_maven(settings, "avro-converter", log, pom=AVRO_CONVERTER_POM, target=plugins / AVRO_CONVERTER_PLUGIN)
    if "schema-registry" in wanted:
        target = jars_dir(settings, "schema-registry")
        build_quarkus_app(settings, SCHEMA_REGISTRY_SOURCE, SCHEMA_REGISTRY_NAME, target, log)


def _fingerprint(*paths: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(path.parent)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _is_current(target: Path, fingerprint: str) -> bool:
    stamp = target / STAMP
    return stamp.is_file() and stamp.read_text().strip() == fingerprint


def _mark_current(target: Path, fingerprint: str) -> None:
    (target / STAMP).write_text(fingerprint + "\n")


def _fresh_dir(target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)


def _run_maven(args: list[str], what: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DependencyResolutionError(
            f"Maven (mvn) is not on PATH, needed to resolve {what}; install it "
            "(Debian: apt-get install maven, or conda env create -f environment.yml)"
        )
    # -C (--strict-checksums): a download whose checksum differs from the repository's .sha1 fails
    # the build; by default Maven only warns and uses the file. It checks what it downloads: what
    # ~/.m2/repository already holds is used as it is.
    result = subprocess.run([mvn, "-B", "-q", "-C", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        artifacts = missing_artifacts(output)
        named = f" could not resolve {', '.join(artifacts)}" if artifacts else " failed"
        errors = "\n".join(line for line in output.splitlines() if "ERROR" in line)[-3000:]
        if "Checksum validation failed" in output:
            advice = (
                "a download did not match the repository's checksum (a broken download, or a proxy or "
                "mirror serving another file), so Maven refused it; run again, and if it fails again, "
                "find out what serves the file before using it"
            )
        else:
            advice = "check that Maven Central is reachable and the version exists"
        raise DependencyResolutionError(f"Maven{named} while resolving {what}; {advice}.\n{errors}")


_COORDINATE = re.compile(r"\b([A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-]+:(?:jar|pom|test-jar):[A-Za-z0-9_.\-:]+)")


def missing_artifacts(maven_output: str) -> list[str]:
    """The Maven coordinates named in a failed build's error lines, without repeats."""
    found: list[str] = []
    for line in maven_output.splitlines():
        if "ERROR" not in line and "Could not" not in line:
            continue
        for coordinate in _COORDINATE.findall(line):
            coordinate = coordinate.rstrip(":.")
            # Our own poms appear as "for project io.clicklib.stack:...": not what is missing.
            if not coordinate.startswith("io.clicklib") and coordinate not in found:
                found.append(coordinate)
    return found


def resolve_maven(
    settings: Settings, service: str, log=print, pom: Path | None = None, target: Path | None = None
) -> Path:
    """The jars of ``pom`` (by default ``poms/<service>/pom.xml``) with their dependencies, in
    ``target`` (by default the service's classpath folder)."""
    pom = pom or POMS / service / "pom.xml"
    target = target or jars_dir(settings, service)
    fingerprint = _fingerprint(pom)
    if _is_current(target, fingerprint):
        return target
    log(f"resolving {service} jars with Maven from {pom}")
    _fresh_dir(target)
    _run_maven(
        [
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={target}",
        ],
        f"the {service} classpath ({pom})",
    )
    _mark_current(target, fingerprint)
    return target


def resolve_flink_dist(settings: Settings, log=print) -> Path:
    """flink-dist, the table planner and runtime, from the PyPI Flink distribution."""
    target = jars_dir(settings, "flink-dist")
    fingerprint = f"{FLINK_DIST_PACKAGE}=={FLINK_VERSION}"
    if _is_current(target, fingerprint):
        return target
    log(f"fetching {fingerprint} from PyPI (the Flink distribution, ~310 MB)")
    wheel = pip_download(
        fingerprint, settings.home / "downloads", f"apache_flink_libraries-{FLINK_VERSION}-*.whl", FLINK_DIST_SHA256
    )
    _fresh_dir(target)
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            # lib/ is the distribution's classpath; BashJavaUtils computes JVM memory flags.
            if re.fullmatch(r"pyflink/lib/[^/]+\.jar|pyflink/bin/bash-java-utils\.jar", member):
                with archive.open(member) as src, open(target / Path(member).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    _mark_current(target, fingerprint)
    wheel.unlink()
    return target


def pip_download(requirement: str, directory: Path, wheel_glob: str, sha256: str | None = None) -> Path:
    """Download one wheel (no dependencies) with this interpreter's pip; returns its path.

    With ``sha256``, pip downloads in hash-checking mode and refuses any other file; the wheel
    found is checked again here, so a file left in ``directory`` is held to the same digest.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if sha256 is None:
            source = [requirement]
        else:
            # pip takes a hash only from a requirements file.
            pinned = Path(tmp) / "requirements.txt"
            pinned.write_text(f"{requirement} --hash=sha256:{sha256}\n")
            source = ["--require-hashes", "-r", str(pinned)]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                str(directory),
                *source,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if sha256 is not None and "DO NOT MATCH THE HASHES" in result.stderr:
        raise DependencyResolutionError(_hash_refusal(requirement, sha256, result.stderr[-2000:]))
    wheels = sorted(directory.glob(wheel_glob))
    if result.returncode != 0 or not wheels:
        raise DependencyResolutionError(
            f"pip could not download {requirement}; check that PyPI is reachable.\n{result.stderr[-2000:]}"
        )
    wheel = wheels[-1]
    if sha256 is not None:
        with wheel.open("rb") as file:
            actual = hashlib.file_digest(file, "sha256").hexdigest()
        if actual != sha256:
            wheel.unlink()
            raise DependencyResolutionError(_hash_refusal(requirement, sha256, f"{wheel.name} has sha256 {actual}"))
    return wheel


def _hash_refusal(requirement: str, sha256: str, detail: str) -> str:
    return (
        f"refused {requirement}: the file downloaded is not the one clicklib pins (sha256 {sha256}), "
        "so it is not used. A broken download, or a proxy or mirror serving another file: run again, "
        "and if it is refused again, find out what serves it. After changing the version in "
        f"clicklib/stack/jars.py, pin the new file's sha256 beside it, as PyPI lists it.\n{detail}"
    )


def _source_fingerprint(source: Path, name: str) -> str:
    """What a Java project is built from: its pom and its sources."""
    pom = source / "pom.xml"
    if not pom.is_file():
        raise StackError(f"the source of {name} is missing ({pom}); reinstall clicklib or use a clicklib checkout")
    return _fingerprint(pom, source / "src")


def _copy_source(source: Path, name: str, settings: Settings) -> Path:
    """A fresh copy of a Java project under ``<home>/build/``, so that an installed package,
    whose sources may be read-only, builds as a checkout does."""
    build = settings.home / "build" / name
    _fresh_dir(build)
    shutil.copy2(source / "pom.xml", build / "pom.xml")
    shutil.copytree(source / "src", build / "src")
    return build


def build_quarkus_app(settings: Settings, source: Path, name: str, target: Path, log=print) -> Path:
    """Package a Quarkus application into ``target``: its runner jar and lib/ beside it, as the
    runner jar's manifest expects; rebuilt only when the project's pom or sources change."""
    fingerprint = _source_fingerprint(source, name)
    if _is_current(target, fingerprint):
        return target
    log(f"building {name} from {source} (the first build downloads ~130 MB with Maven)")
    build = _copy_source(source, name, settings)
    _run_maven(["-f", str(build / "pom.xml"), "package", "-DskipTests"], f"{name} ({source / 'pom.xml'})")
    runner = list((build / "target").glob(f"{name}-*-runner.jar"))
    if not runner:
        raise DependencyResolutionError(f"Maven built no {name} runner jar from {source / 'pom.xml'}")
    _fresh_dir(target)
    shutil.copy2(runner[0], target / f"{name}-runner.jar")
    shutil.copytree(build / "target" / "lib", target / "lib")
    _mark_current(target, fingerprint)
    return target


def build_maven_project(
    settings: Settings, source: Path, name: str, target: Path, log=print, run_tests: bool = True
) -> Path:
    """Build one of clicklib's Java projects (and run its tests) into ``target``: its jar
    and its runtime dependencies, rebuilt only when the project's pom or sources change.

    The build runs in a copy under ``<home>/build/`` (_copy_source).
    """
    pom = source / "pom.xml"
    fingerprint = _source_fingerprint(source, name)
    if _is_current(target, fingerprint):
        return target
    log(f"building {name} from {source}")
    build = _copy_source(source, name, settings)
    _fresh_dir(target)
    _run_maven(
        [
            "-f",
            str(build / "pom.xml"),
            "package",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={target}",
            *([] if run_tests else ["-DskipTests"]),
        ],
        f"{name} ({pom})",
    )
    built = list((build / "target").glob(f"{name}-*.jar"))
    if not built:
        raise DependencyResolutionError(f"Maven built no {name} jar from {pom}")
    for jar in built:
        shutil.copy2(jar, target / jar.name)
    _mark_current(target, fingerprint)
    return target
