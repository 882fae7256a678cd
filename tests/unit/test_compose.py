"""docker-compose.yml, connect/Dockerfile and the Connect worker properties, checked
without Docker: the compose file against the Compose Specification schema, and every
address in them against the settings defaults that `clicklib stack` uses.

The schema is not vendored. It ships as ``compose/config/compose_spec.json`` inside the
docker-compose 1.29.2 wheel on PyPI; the wheel is downloaded once into ``tests/.cache/``
(gitignored) and read from there on later runs, offline.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from jsonschema import validators

from clicklib import secrets
from clicklib.exceptions import DependencyResolutionError
from clicklib.settings import Settings
from clicklib.stack.jars import pip_download

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CONNECT_DIR = ROOT / "connect"
DOCKERFILE = CONNECT_DIR / "Dockerfile"
WORKER_PROPERTIES = CONNECT_DIR / "connect-distributed.docker.properties"
SINK_POM = CONNECT_DIR / "cassandra-sink" / "pom.xml"

CACHE_DIR = ROOT / "tests" / ".cache"
SCHEMA_WHEEL_REQUIREMENT = "docker-compose==1.29.2"
SCHEMA_WHEEL_GLOB = "docker_compose-1.29.2-*.whl"
SCHEMA_MEMBER = "compose/config/compose_spec.json"

# Service -> the Settings field holding the host port it publishes.
PUBLISHED = {
    "kafka": "kafka_port",
    "cassandra": "cassandra_port",
    "connect": "connect_port",
    "flink-guard": "flink_rest_port",
    "sql-gateway-guard": "sql_gateway_port",
    "schema-registry-guard": "schema_registry_port",
}
FLINK_SERVICES = ("flink-jobmanager", "flink-taskmanager", "sql-gateway")
PLUGINS_DIR = "/opt/kafka/plugins"


# --------------------------------------------------------------------------- helpers


def _schema_wheel() -> Path:
    """The docker-compose wheel from the cache, downloading it on first use."""
    cached = sorted(CACHE_DIR.glob(SCHEMA_WHEEL_GLOB))
    if cached:
        return cached[0]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Download beside the cache and move in atomically, so parallel runs never read half a file.
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        try:
            downloaded = pip_download(SCHEMA_WHEEL_REQUIREMENT, Path(tmp), SCHEMA_WHEEL_GLOB)
        except DependencyResolutionError as exc:
            pytest.fail(
                f"could not fetch the Compose Specification schema: {exc}\n"
                f"Put {SCHEMA_WHEEL_REQUIREMENT}'s wheel into {CACHE_DIR} to run offline."
            )
        target = CACHE_DIR / downloaded.name
        os.replace(downloaded, target)
    return target


def _validator_class(schema: dict) -> type:
    """The jsonschema validator for the draft that the schema declares in ``$schema``."""
    declared = schema.get("$schema", "")
    bare = declared.rstrip("#")
    candidates = [declared, bare, bare + "#"]
    candidates += [c.replace("http://", "https://", 1) for c in candidates]
    for uri in candidates:
        cls = validators.validator_for({"$schema": uri}, default=None)
        if cls is not None:
            return cls
    pytest.fail(f"this jsonschema knows no validator for $schema {declared!r}")


def _split_port(entry: object) -> tuple[str | None, str | None, str]:
    """(host_ip, published, target) of one short-syntax ``ports`` entry."""
    spec = str(entry).split("/", 1)[0]
    host_ip = None
    if spec.startswith("["):  # [::1]:8080:80
        end = spec.index("]")
        host_ip, spec = spec[1:end], spec[end + 2 :]
        parts = spec.split(":")
        if len(parts) != 2:
            raise ValueError(f"{entry!r}: expected [IP]:HOST:CONTAINER")
        published, target = parts
    else:
        parts = spec.split(":")
        if len(parts) == 1:
            published, target = None, parts[0]
        elif len(parts) == 2:
            published, target = parts
        elif len(parts) == 3:
            host_ip, published, target = parts
        else:
            raise ValueError(f"{entry!r}: expected [[IP:]HOST:]CONTAINER[/PROTOCOL]")
    port = re.compile(r"^\d+(-\d+)?$")
    if not port.match(target) or (published not in (None, "") and not port.match(published)):
        raise ValueError(f"{entry!r}: ports must be numbers or ranges")
    return host_ip, published or None, target


def _format_checker() -> jsonschema.FormatChecker:
    """Checks for the two custom formats the compose schema uses."""
    checker = jsonschema.FormatChecker()

    @checker.checks("ports", raises=ValueError)
    def _ports(instance: object) -> bool:
        if isinstance(instance, (int, str)):
            _split_port(instance)
        return True

    @checker.checks("duration", raises=ValueError)
    def _duration(instance: object) -> bool:
        if isinstance(instance, str) and not re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", instance):
            raise ValueError(f"{instance!r} is not a duration such as 10s or 1m30s")
        return True

    return checker


def _published_ports(service: dict) -> list[tuple[str | None, str | None, str]]:
    result = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            published = entry.get("published")
            result.append(
                (
                    entry.get("host_ip"),
                    None if published is None else str(published),
                    str(entry.get("target")),
                )
            )
        else:
            result.append(_split_port(entry))
    return result


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _flink_properties(service: dict) -> dict[str, str]:
    props = {}
    for line in _environment(service).get("FLINK_PROPERTIES", "").splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            props[key.strip()] = value.strip()
    return props


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    result = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), " ".join(args.split())))
    return result


def _dockerfile_stages() -> list[dict]:
    """Each stage: its image, its name (AS ...) and its instructions."""
    stages: list[dict] = []
    for instruction, args in _dockerfile_instructions(DOCKERFILE.read_text()):
        if instruction == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"image": words[0], "name": name, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((instruction, args))
    return stages


def _properties(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def _pom_artifact_id() -> str | None:
    if not SINK_POM.is_file():
        return None
    root = ET.parse(SINK_POM).getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = root.find("m:artifactId", ns)
    if node is None:
        node = root.find("artifactId")
    return None if node is None else node.text.strip()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def compose() -> dict:
    with COMPOSE_FILE.open() as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    with zipfile.ZipFile(_schema_wheel()) as wheel:
        return json.loads(wheel.read(SCHEMA_MEMBER))


@pytest.fixture(scope="module")
def settings() -> Settings:
    # The defaults, whatever CLICKLIB_* variables the shell running the tests has set.
    return Settings()


# --------------------------------------------------------------------------- the compose file


def test_compose_file_matches_the_compose_specification(compose: dict, compose_schema: dict) -> None:
    cls = _validator_class(compose_schema)
    cls.check_schema(compose_schema)
    validator = cls(compose_schema, format_checker=_format_checker())
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "docker-compose.yml breaks the Compose Specification:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_compose_has_the_stack_services(services: dict) -> None:
    expected = set(PUBLISHED) | {"flink-jobmanager", "flink-taskmanager", "sql-gateway", "flink-connectors"}
    assert expected <= set(services), f"missing services: {sorted(expected - set(services))}"


@pytest.mark.parametrize("service_name", sorted(PUBLISHED))
def test_published_host_port_is_the_settings_default(services: dict, settings: Settings, service_name: str) -> None:
    expected = getattr(settings, PUBLISHED[service_name])
    ports = _published_ports(services[service_name])
    assert [published for _, published, _ in ports] == [str(expected)], (
        f"{service_name} must publish exactly host port {expected} (Settings.{PUBLISHED[service_name]}), got {ports}"
    )


def test_every_published_port_binds_loopback_only(services: dict, settings: Settings) -> None:
    published = {}
    for name, service in services.items():
        for host_ip, host_port, target in _published_ports(service):
            assert host_ip == settings.bind_host == "127.0.0.1", (
                f"{name} publishes {host_port or target} on {host_ip or 'every interface'}; "
                'publish it as "127.0.0.1:HOST:CONTAINER"'
            )
            published[name] = host_port
    # The collector publishes two (HTTP and UDP): its own test checks them.
    assert set(published) == {*PUBLISHED, "collector"}, f"services publishing ports: {sorted(published)}"


def test_kafka_advertises_the_settings_bootstrap_address_to_the_host(services: dict, settings: Settings) -> None:
    env = _environment(services["kafka"])
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["PLAINTEXT_HOST"] == settings.bootstrap_servers
    assert advertised["PLAINTEXT"].split(":")[0] == "kafka"
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    assert listeners["PLAINTEXT_HOST"].rsplit(":", 1)[1] == str(settings.kafka_port)
    assert listeners["CONTROLLER"].rsplit(":", 1)[1] == str(settings.kafka_controller_port)
    assert "broker" in env["KAFKA_PROCESS_ROLES"] and "controller" in env["KAFKA_PROCESS_ROLES"]


def test_named_volumes_are_declared(compose: dict, services: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"


def test_dependencies_wait_on_health_or_completion(services: dict) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for target, spec in depends.items() if isinstance(depends, dict) else []:
            assert target in services, f"{name} depends on unknown service {target!r}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}'s health, which has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} must run once"
    connect_depends = services["connect"]["depends_on"]
    assert {k: v["condition"] for k, v in connect_depends.items()} == {
        "kafka": "service_healthy",
        "cassandra": "service_healthy",
    }


def test_flink_services_share_one_image_and_the_kafka_connector(services: dict, settings: Settings) -> None:
    images = {services[name]["image"] for name in FLINK_SERVICES}
    assert len(images) == 1 and images.pop().startswith("flink:2.2"), images
    fetch = services["flink-connectors"]
    fetch_command = _command(fetch)
    assert "flink-sql-connector-kafka:" in fetch_command
    out = re.search(r"-DoutputDirectory=(\S+)", fetch_command).group(1)
    fetch_volume = next(v for v in fetch["volumes"] if v.split(":")[1] == out).split(":")[0]
    for name in FLINK_SERVICES:
        service = services[name]
        mounts = [v.split(":") for v in service["volumes"]]
        assert any(m[0] == fetch_volume and m[1].startswith("/opt/flink/lib/") and m[-1] == "ro" for m in mounts), (
            f"{name} must mount {fetch_volume} read-only under /opt/flink/lib/"
        )
        assert service["depends_on"]["flink-connectors"]["condition"] == "service_completed_successfully"
    jobmanager = _flink_properties(services["flink-jobmanager"])
    assert jobmanager["rest.port"] == str(settings.flink_rest_port)
    assert jobmanager["jobmanager.rpc.address"] == "flink-jobmanager"
    taskmanager = _flink_properties(services["flink-taskmanager"])
    assert taskmanager["jobmanager.rpc.address"] == "flink-jobmanager"
    assert taskmanager["taskmanager.numberOfTaskSlots"] == str(settings.flink_task_slots)


def test_sql_gateway_listens_on_the_settings_port_and_targets_the_jobmanager(
    services: dict, settings: Settings
) -> None:
    command = _command(services["sql-gateway"])
    assert "sql-gateway.sh start-foreground" in command
    assert f"-Dsql-gateway.endpoint.rest.port={settings.sql_gateway_port}" in command
    assert "-Drest.address=flink-jobmanager" in command
    assert "-Djobmanager.rpc.address=flink-jobmanager" in command
    assert "-Dweb.access-control-allow-origin=" in command.split()


def test_flink_takes_no_jar_and_grants_no_web_origin(services: dict) -> None:
    jobmanager = _flink_properties(services["flink-jobmanager"])
    assert jobmanager["web.submit.enable"] == "false"
    assert jobmanager["web.access-control-allow-origin"] in ('""', "")


# --------------------------------------------------------------------------- connect/


def test_connect_service_builds_connect_dockerfile(services: dict) -> None:
    build = services["connect"]["build"]
    context = ROOT / build["context"]
    assert context.resolve() == CONNECT_DIR.resolve()
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE.resolve()


def test_connect_dockerfile_builds_the_plugin_from_cassandra_sink() -> None:
    stages = _dockerfile_stages()
    assert len(stages) >= 2, "connect/Dockerfile must be multi-stage"
    build, final = stages[0], stages[-1]
    assert build["image"].startswith("maven:") and build["name"], build
    assert final["image"] == "apache/kafka:4.1.1", final["image"]

    build_copies = [args for ins, args in build["instructions"] if ins == "COPY"]
    assert any(args.split()[0].rstrip("/") == "cassandra-sink" for args in build_copies), build_copies
    runs = " ".join(args for ins, args in build["instructions"] if ins == "RUN")
    for needed in (
        "-f cassandra-sink/pom.xml",
        "package",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        "cassandra-sink/target/",
    ):
        assert needed in runs, f"the build stage's RUN lacks {needed!r}"

    final_copies = [args.split() for ins, args in final["instructions"] if ins == "COPY"]
    plugin_copies = [c for c in final_copies if f"--from={build['name']}" in c]
    assert plugin_copies, "the final stage must copy the plugin folder from the build stage"
    plugin_target = plugin_copies[0][-1]
    assert plugin_target.startswith(PLUGINS_DIR + "/"), plugin_target

    cmd = next(args for ins, args in final["instructions"] if ins == "CMD")
    argv = json.loads(cmd)
    assert argv[0] == "/opt/kafka/bin/connect-distributed.sh"
    assert any(c[-1] == argv[1] and WORKER_PROPERTIES.name in c for c in final_copies), (
        f"CMD reads {argv[1]}, which the image must get from {WORKER_PROPERTIES.name}"
    )


def test_connect_image_and_flink_get_what_the_avro_topic_needs(services: dict) -> None:
    # Connect: Apicurio's converter from the same pom the local stack resolves, in its own plugin folder.
    build, final = _dockerfile_stages()[0], _dockerfile_stages()[-1]
    runs = " ".join(args for ins, args in build["instructions"] if ins == "RUN")
    assert "-f avro-converter/pom.xml dependency:copy-dependencies" in runs
    assert "-DoutputDirectory=/plugins/apicurio-avro-converter" in runs
    final_copies = [args.split() for ins, args in final["instructions"] if ins == "COPY"]
    assert [PLUGINS_DIR + "/apicurio-avro-converter/"] in [c[-1:] for c in final_copies]
    assert (CONNECT_DIR / "avro-converter" / "pom.xml").is_file()
    # Flink: the avro-confluent format at the version the local stack puts on its classpath.
    flink_pom = (ROOT / "clicklib" / "stack" / "poms" / "flink" / "pom.xml").read_text()
    version = re.search(r"flink-sql-avro-confluent-registry</artifactId>\s*<version>([^<]+)<", flink_pom).group(1)
    assert f"flink-sql-avro-confluent-registry:{version}" in _command(services["flink-connectors"])


def test_connect_dockerfile_names_the_pom_artifact() -> None:
    artifact_id = _pom_artifact_id()
    if artifact_id is None:
        pytest.skip(
            f"{SINK_POM.relative_to(ROOT)} does not exist yet (written in parallel): "
            "no artifactId to compare the plugin folder name with"
        )
    stages = _dockerfile_stages()
    final = stages[-1]
    plugin_copy = next(args.split() for ins, args in final["instructions"] if ins == "COPY" and "--from=" in args)
    assert plugin_copy[-1].rstrip("/") == f"{PLUGINS_DIR}/{artifact_id}", plugin_copy
    runs = " ".join(args for ins, args in stages[0]["instructions"] if ins == "RUN")
    assert re.search(rf"-DoutputDirectory=\S*/{re.escape(artifact_id)}\b", runs), runs


def test_worker_properties_fit_the_compose_network(services: dict, settings: Settings) -> None:
    props = _properties(WORKER_PROPERTIES)
    kafka_env = _environment(services["kafka"])
    internal = dict(i.split("://", 1) for i in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(","))["PLAINTEXT"]
    assert props["bootstrap.servers"] == internal
    assert props["group.id"] == "clicklib-connect"
    assert props["key.converter"] == "org.apache.kafka.connect.storage.StringConverter"
    assert props["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert props["value.converter.schemas.enable"] == "false"
    for kind, topic in (("config", "configs"), ("offset", "offsets"), ("status", "status")):
        assert props[f"{kind}.storage.topic"] == f"_clicklib-connect-{topic}"
        assert props[f"{kind}.storage.replication.factor"] == "1"
    assert props["plugin.path"] == PLUGINS_DIR
    assert props["listeners"] == f"http://0.0.0.0:{settings.connect_port}"
    assert props["rest.advertised.host.name"] == "connect"
    ((_, _, target),) = _published_ports(services["connect"])
    assert target == str(settings.connect_port)


def test_schema_cache_is_reused(compose_schema: dict) -> None:
    # After the first run the wheel sits in tests/.cache/ and no network is needed.
    assert sorted(CACHE_DIR.glob(SCHEMA_WHEEL_GLOB)), "the schema wheel should be cached"
    assert compose_schema.get("$schema"), "the schema declares its draft"


def test_every_service_that_runs_is_restarted_when_it_dies(services: dict) -> None:
    long_running = {
        "kafka",
        "cassandra",
        "connect",
        "flink-jobmanager",
        "flink-taskmanager",
        "flink-guard",
        "sql-gateway",
        "sql-gateway-guard",
        "collector",
        "schema-registry",
        "schema-registry-guard",
    }
    assert {name for name, service in services.items() if service.get("restart") == "unless-stopped"} == long_running


def test_flink_the_sql_gateway_and_the_registry_are_reached_from_the_host_only_through_web_guards(
    services: dict,
) -> None:
    for guard, service, port, backend in (
        ("flink-guard", "flink-jobmanager", 8081, 8081),
        ("sql-gateway-guard", "sql-gateway", 8082, 8082),
        ("schema-registry-guard", "schema-registry", 8085, 8080),
    ):
        assert not _published_ports(services[service]), f"{service} must not publish a port: {guard} owns it"
        command = services[guard]["command"]
        assert f"--backend={service}:{backend}" in command and f"--listen=0.0.0.0:{port}" in command
        mount = services[guard]["volumes"][0].split(":")
        # The very file the local stack runs.
        assert (ROOT / mount[0]).resolve() == (ROOT / "clicklib" / "stack" / "web_guard.py").resolve()
        assert command[1] == mount[1] and mount[2] == "ro"


def test_the_collector_publishes_its_http_and_udp_ports_on_loopback_and_reaches_kafka_inside(
    services: dict, settings: Settings
) -> None:
    collector = services["collector"]
    assert [entry.split("/")[-1] if "/" in entry else "tcp" for entry in collector["ports"]] == ["tcp", "udp"]
    assert _published_ports(collector) == [
        ("127.0.0.1", str(settings.collector_port), str(settings.collector_port)),
        ("127.0.0.1", str(settings.collector_udp_port), str(settings.collector_udp_port)),
    ]
    environment = _environment(collector)
    assert environment["CLICKLIB_BOOTSTRAP_SERVERS"] == "kafka:29092"
    # Every folder the package is built from is mounted (the assets link to them).
    mounted = {volume.split(":")[1] for volume in collector["volumes"]}
    for name in ("pyproject.toml", "clicklib", "ksql", "connect", "notebooks", "web"):
        assert f"/src/{name}" in mounted and (ROOT / name).exists()


def test_flink_keeps_checkpoints_and_savepoints_in_a_volume(services: dict) -> None:
    for name in ("flink-jobmanager", "flink-taskmanager"):
        properties = services[name]["environment"]["FLINK_PROPERTIES"]
        assert "execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION" in properties
        assert "flink-state:/opt/flink/state" in services[name]["volumes"]


# --------------------------------------------------------------------------- the secure profile

SECURE_FILE = ROOT / "docker-compose.secure.yml"
SECURE_SCRIPTS = ROOT / "docker" / "secure"
# kafka-acls.sh --operation takes these names (Kafka's AclOperation, in camel case).
ACL_OPERATIONS = {
    "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "DescribeConfigs",
    "AlterConfigs", "IdempotentWrite", "CreateTokens", "DescribeTokens", "All",
}  # fmt: skip


@pytest.fixture(scope="module")
def secure_services() -> dict:
    return yaml.safe_load(SECURE_FILE.read_text())["services"]


@pytest.fixture()
def compose_files(tmp_path: Path) -> tuple[Settings, Path]:
    from clicklib.stack import compose

    settings = Settings(home=tmp_path / "home", secure=True)
    return settings, compose.write_compose_secrets(settings)


def test_the_secure_profile_matches_the_compose_specification(compose_schema: dict) -> None:
    cls = _validator_class(compose_schema)
    errors = list(
        cls(compose_schema, format_checker=_format_checker()).iter_errors(yaml.safe_load(SECURE_FILE.read_text()))
    )
    assert not errors, [e.message for e in errors]


def test_the_secure_profile_publishes_nothing_more(secure_services: dict, services: dict) -> None:
    assert [name for name, service in secure_services.items() if "ports" in service] == []
    assert set(secure_services) - set(services) == {"kafka-access", "cassandra-access"}


def test_each_container_is_given_the_login_files_it_reads_and_no_other(secure_services: dict, compose_files) -> None:
    from clicklib.stack import compose

    _, folder = compose_files
    given_somewhere = set()
    for name, service in secure_services.items():
        text = yaml.safe_dump(service)
        scripts = set(re.findall(r"/opt/clicklib/([\w.-]*\w)", text))
        assert scripts <= {path.name for path in SECURE_SCRIPTS.iterdir()}, name
        text += "".join((SECURE_SCRIPTS / script).read_text() for script in scripts)
        named = set(re.findall(r"/run/clicklib/([\w.-]*\w)", text))
        # And what those files name in turn (Connect's JAAS file names its users file).
        for file in sorted(named):
            if (folder / name / file).is_file():
                named |= set(re.findall(r"/run/clicklib/([\w.-]*\w)", (folder / name / file).read_text()))
        if not named:
            assert name not in compose.CONTAINER_FILES, f"{name} is given logins it never reads"
            continue
        # Its own folder, mounted where it reads, holding exactly the files it names.
        assert f"${{CLICKLIB_HOME:-./.clickstack}}/secrets/compose/{name}:/run/clicklib:ro" in service["volumes"]
        assert {path.name for path in (folder / name).iterdir()} == named, name
        given_somewhere |= named
    assert given_somewhere == set(compose.compose_files(compose_files[0])), "a file no container reads"


def test_the_login_files_are_readable_by_the_containers_and_hidden_from_other_users(compose_files) -> None:
    settings, folder = compose_files
    assert folder.parent.stat().st_mode & 0o777 == 0o700
    assert folder.stat().st_mode & 0o777 == 0o755
    modes = {str(path.relative_to(folder)): path.stat().st_mode & 0o777 for path in folder.rglob("*")}
    # The guards' login is their owner's alone (they run as root, and refuse a file others read).
    for guard in ("flink-guard", "sql-gateway-guard"):
        assert modes.pop(f"{guard}/{secrets.GUARD_LOGIN_FILE}") == 0o600
    assert set(modes.values()) == {0o644, 0o755}
    passwords = secrets.local_credentials(settings)
    login = (folder / "flink-guard" / secrets.GUARD_LOGIN_FILE).read_text()
    assert login == f"clicklib:{passwords['flink']['clicklib']}\n"
    # The same passwords as the local secure profile: one set of logins for the host's clients.
    assert f"admin={passwords['kafka']['admin']}" in (folder / "kafka" / "kafka-users.properties").read_text()
    sink = (folder / "connect" / "cassandra-sink.properties").read_text()
    assert f"password={passwords['cassandra']['sink']}" in sink
    # What the Flink containers (which run what they are sent) can read holds the flink login alone.
    flink = (folder / "flink-taskmanager" / "flink.jaas").read_text()
    others = [p for system, logins in passwords.items() for n, p in logins.items() if (system, n) != ("kafka", "flink")]
    assert passwords["kafka"]["flink"] in flink and not [p for p in others if p in flink]


def test_the_secure_profile_is_written_only_for_the_secure_profile(tmp_path: Path) -> None:
    from clicklib.exceptions import SettingsError
    from clicklib.stack import compose

    with pytest.raises(SettingsError, match="CLICKLIB_SECURE=1"):
        compose.write_compose_secrets(Settings(home=tmp_path))


@pytest.mark.parametrize("path", [COMPOSE_FILE, SECURE_FILE], ids=lambda p: p.name)
def test_every_dollar_in_the_compose_files_is_one_compose_can_read(path: Path) -> None:
    # Compose reads $NAME and ${...} as its own variables and refuses to load a file with any
    # other "$" (a shell's "$(...)" inside a health check must be written "$$(...)").
    text = re.sub(r"\$\$", "", path.read_text())
    assert re.findall(r"\$(?![{A-Za-z_])..?", text) == []


def test_the_formatter_gets_every_login_whatever_the_users_file_ends_with(tmp_path: Path) -> None:
    import subprocess

    users = tmp_path / "users"
    users.write_text("admin=a-b\nproducer=p=q\n\n")  # a blank last line; "=" inside a password
    listed = subprocess.run(
        ["bash", "-c", f'source "{SECURE_SCRIPTS / "kafka-start.sh"}"; scram_arguments'],
        env={"PATH": os.environ["PATH"], "USERS": str(users)},
        capture_output=True,
        check=True,
    )
    assert [a.decode() for a in listed.stdout.split(b"\0") if a] == [
        "--add-scram",
        "SCRAM-SHA-256=[name=admin,password=a-b]",
        "--add-scram",
        "SCRAM-SHA-256=[name=producer,password=p=q]",
    ]


def test_the_brokers_jaas_sections_name_the_compose_listeners(secure_services: dict, compose_files) -> None:
    _, folder = compose_files
    environment = secure_services["kafka"]["environment"]
    listeners = {item.split(":")[0].lower() for item in environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")}
    sections = set(
        re.findall(r"^(\w+)\.KafkaServer", (folder / "kafka" / "kafka-server.jaas").read_text(), re.MULTILINE)
    )
    assert sections == listeners
    assert environment["KAFKA_OPTS"].endswith("/run/clicklib/kafka-server.jaas")


def test_the_connect_rules_are_the_local_stacks_as_kafka_acls_arguments(compose_files) -> None:
    from clicklib import access

    _, folder = compose_files
    lines = (folder / "kafka-access" / "kafka-acls.txt").read_text().splitlines()
    assert len(lines) == len(access.stack_rules())
    for line, (principal, kind, name, pattern, operation) in zip(lines, access.stack_rules(), strict=True):
        words = line.split()
        options = dict(zip(words[::2], words[1::2], strict=True))
        assert options["--allow-principal"] == f"User:{principal}"
        assert options["--operation"] in ACL_OPERATIONS
        assert options["--operation"].lower() == operation.name.replace("_", "").lower()
        assert options[{"TOPIC": "--topic", "GROUP": "--group"}[kind.name]] == name
        assert options["--resource-pattern-type"] == pattern.name.lower()


def test_the_connect_worker_of_the_secure_profile_logs_in_and_asks_for_one(compose_files) -> None:
    _, folder = compose_files
    worker = _properties(folder / "connect" / "connect-distributed.properties")
    docker = _properties(WORKER_PROPERTIES)
    # The compose worker, with more; its REST extensions (the web guard) gain the login.
    extensions = docker.pop("rest.extension.classes")
    assert {key: worker[key] for key in docker} == docker
    assert worker["rest.extension.classes"].startswith(extensions + ",")
    for prefix in ("", "producer.", "consumer.", "admin."):
        assert worker[f"{prefix}security.protocol"] == "SASL_PLAINTEXT"
    # The sinks' password file alone: no connector can have another secret read back.
    assert worker["config.providers.file.param.allowed.paths"] == "/run/clicklib/cassandra-sink.properties"
    assert worker["rest.extension.classes"].endswith("BasicAuthSecurityRestExtension")
    assert 'file="/run/clicklib/connect-users.properties"' in (folder / "connect" / "connect.jaas").read_text()


def test_the_sink_connectors_name_their_password_where_connect_sees_it(tmp_path: Path) -> None:
    local = Settings(home=tmp_path, secure=True)
    assert secrets.sink_password_reference(local) == f"${{file:{secrets.sink_password_path(local)}:password}}"
    in_compose = Settings(home=tmp_path, secure=True, connect_secrets_dir="/run/clicklib/")
    assert secrets.sink_password_reference(in_compose) == "${file:/run/clicklib/cassandra-sink.properties:password}"


@pytest.mark.parametrize("script", sorted(p.name for p in SECURE_SCRIPTS.glob("*.sh")))
def test_the_secure_scripts_are_valid_bash(script: str) -> None:
    import subprocess

    checked = subprocess.run(["bash", "-n", str(SECURE_SCRIPTS / script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_kafka_start_formats_with_the_compose_settings_and_every_login(
    secure_services: dict, services: dict, compose_files
) -> None:
    import subprocess

    _, folder = compose_files
    environment = {**services["kafka"]["environment"], **secure_services["kafka"]["environment"]}
    environment = {name: str(value) for name, value in environment.items()}
    script = SECURE_SCRIPTS / "kafka-start.sh"
    listed = subprocess.run(
        ["bash", "-c", f'source "{script}"; server_properties; printf "\\n--\\n"; scram_arguments'],
        env={**environment, "PATH": os.environ["PATH"], "USERS": str(folder / "kafka" / "kafka-users.properties")},
        capture_output=True,
        check=True,
    )
    properties, scram = listed.stdout.split(b"\n--\n")
    rendered = dict(line.split("=", 1) for line in properties.decode().splitlines())
    assert rendered["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert rendered["inter.broker.listener.name"] == "INTERNAL"
    assert rendered["node.id"] == "1" and rendered["log.dirs"] == "/var/lib/kafka/data"
    arguments = [a.decode() for a in scram.split(b"\0") if a]
    users = sorted(re.findall(r"SCRAM-SHA-256=\[name=(\w+),password=[\w-]+\]", " ".join(arguments)))
    assert arguments[::2] == ["--add-scram"] * len(users)
    assert users == sorted(secrets.KAFKA_PRINCIPALS)


def test_the_secure_guards_ask_for_the_login_and_cassandra_never_takes_its_public_password(compose_files) -> None:
    settings, folder = compose_files
    services = yaml.safe_load(SECURE_FILE.read_text())["services"]
    for guard in ("flink-guard", "sql-gateway-guard"):
        assert "--login-file=/run/clicklib/web-guard.login" in services[guard]["command"]
        assert "guard-health.py" in " ".join(services[guard]["healthcheck"]["test"])
    options = services["cassandra"]["environment"]["JVM_EXTRA_OPTS"]
    assert "-Dclicklib.cassandra.bootstrap-password-file=/run/clicklib/cassandra-bootstrap-password" in options
    volumes = services["cassandra"]["volumes"]
    assert any(volume.endswith("/jars/cassandra-auth:/opt/clicklib-auth:ro") for volume in volumes)
    start = (SECURE_SCRIPTS / "cassandra-start.sh").read_text()
    assert "s/AllowAllAuthenticator/io.clicklib.cassandra.BootstrapPasswordAuthenticator/" in start
    access = (SECURE_SCRIPTS / "cassandra-access.sh").read_text()
    assert "cql cassandra cassandra" not in access and 'cql cassandra "$(cat "$BOOTSTRAP")"' in access
    bootstrap = secrets.cassandra_bootstrap_password_file(settings).read_text()
    for container in ("cassandra", "cassandra-access"):
        assert (folder / container / secrets.CASSANDRA_BOOTSTRAP_PASSWORD_FILE).read_text() == bootstrap
