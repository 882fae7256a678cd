"""What the local stack runs: one entry per process, with its command line and probe.

Seven services are reported (kafka, cassandra, connect, collector, schema-registry, flink,
sql-gateway); Flink is a JobManager and a TaskManager. Every JVM is started directly from its main class, without the
distributions' shell scripts, so that nothing but Java and the resolved jars is needed.
Flink's REST API and the SQL Gateway each sit behind a web guard, a small Python process
that owns their public port (web_guard.py says why).
"""

from __future__ import annotations

import base64
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clicklib import secrets
from clicklib.exceptions import ServiceStartError, StackError
from clicklib.settings import Settings
from clicklib.stack import configs, health, rest_tls, web_guard
from clicklib.stack.jars import CASSANDRA_AUTH, FLINK_PLUGINS, SCHEMA_REGISTRY_NAME, classpath, jars_dir
from clicklib.stack.process import home_marker, service_marker

# The module opens each JVM needs on Java 17, as the projects' own launch scripts set them.
CASSANDRA_JAVA17_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    *(
        f"--add-exports={m}=ALL-UNNAMED"
        for m in (
            "java.base/jdk.internal.misc",
            "java.base/jdk.internal.ref",
            "java.base/sun.nio.ch",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
        )
    ),
    *(
        f"--add-opens={m}=ALL-UNNAMED"
        for m in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.nio",
            "java.base/java.util.concurrent",
            "java.base/java.util",
            "java.base/java.util.concurrent.atomic",
            "java.base/java.lang",
            "java.base/java.math",
            "java.base/java.lang.reflect",
            "java.base/java.net",
        )
    ),
]

FLINK_JAVA17_OPTIONS = [
    "-XX:+IgnoreUnrecognizedVMOptions",
    *(
        f"--add-exports={m}=ALL-UNNAMED"
        for m in (
            "java.base/sun.net.util",
            "java.rmi/sun.rmi.registry",
            "jdk.compiler/com.sun.tools.javac.api",
            "jdk.compiler/com.sun.tools.javac.file",
            "jdk.compiler/com.sun.tools.javac.parser",
            "jdk.compiler/com.sun.tools.javac.tree",
            "jdk.compiler/com.sun.tools.javac.util",
            "java.security.jgss/sun.security.krb5",
        )
    ),
    *(
        f"--add-opens={m}=ALL-UNNAMED"
        for m in (
            "java.base/java.lang",
            "java.base/java.net",
            "java.base/java.io",
            "java.base/java.nio",
            "java.base/sun.nio.ch",
            "java.base/java.lang.reflect",
            "java.base/java.text",
            "java.base/java.time",
            "java.base/java.util",
            "java.base/java.util.concurrent",
            "java.base/java.util.concurrent.atomic",
            "java.base/java.util.concurrent.locks",
        )
    ),
]


@dataclass(frozen=True)
class Process:
    """One background process of the stack."""

    name: str
    service: str
    ports: tuple[str, ...]
    probe: Callable[[Settings], health.Probe]
    command: Callable[[Settings, str], list[str]]
    env: Callable[[Settings], dict[str, str]] = lambda settings: {}
    prepare: Callable[[Settings, str], None] | None = None
    # The files of the secrets folder it may read in the secure profile (sandbox.py): its own
    # login and keys, nobody else's.
    secrets: tuple[str, ...] = ()
    # Its own folders under <home>/data (configs.DATA_FOLDERS): the others are closed to it.
    data: tuple[str, ...] = ()
    # Whether it works at all, for the supervisor's stall check: the probe, unless the probe also
    # asks for what is not the process's own doing (a free slot, a reachable Kafka).
    liveness: Callable[[Settings], health.Probe] | None = None

    def alive(self, settings: Settings) -> health.Probe:
        return (self.liveness or self.probe)(settings)

    def secret_paths(self, settings: Settings) -> list[Path]:
        return [secrets.secrets_dir(settings) / name for name in self.secrets]

    def log_path(self, settings: Settings) -> Path:
        return configs.log_dir(settings) / f"{self.name}.log"

    def pid_path(self, settings: Settings) -> Path:
        return settings.home / "run" / f"{self.name}.pid"


def _jvm(settings: Settings, java: str, name: str, heap: str | None) -> list[str]:
    command = [java, home_marker(settings), service_marker(name), "-XX:+UseG1GC", "-Djava.awt.headless=true"]
    # A JVM that crashes (a SIGBUS on a memory-mapped file of a full disk) writes its report
    # beside the service's log, not into whatever folder it runs in.
    command.append(f"-XX:ErrorFile={configs.log_dir(settings) / f'{name}-hs_err_%p.log'}")
    if heap:
        command += [f"-Xms{heap}", f"-Xmx{heap}"]
    return command


def _log4j2(settings: Settings) -> str:
    return f"-Dlog4j2.configurationFile={configs.conf_dir(settings) / 'log4j2.properties'}"


def _kafka_command(settings: Settings, java: str) -> list[str]:
    return [
        *_jvm(settings, java, "kafka", settings.kafka_heap),
        *(secrets.jaas_option(secrets.kafka_server_jaas(settings)) if settings.secure else []),
        _log4j2(settings),
        "-cp",
        classpath(settings, "kafka"),
        "kafka.Kafka",
        str(configs.kafka_properties(settings)),
    ]


# Written beside the KRaft storage when it was formatted with the admin login.
SECURED_MARK = "clicklib-secure"


def java_argfile(arguments: list[str]) -> str:
    """``arguments`` as a java launcher argument file: one per line, each quoted (a path may hold
    spaces), with backslashes and quotes escaped as the launcher reads them."""
    return "".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"\n' for a in arguments)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _format_kafka_storage(settings: Settings, java: str) -> None:
    data = configs.data_dir(settings, "kafka")
    secured = data / SECURED_MARK
    if (data / "meta.properties").is_file():
        if settings.secure and not secured.is_file():
            raise ServiceStartError(
                f"kafka: its storage in {data} was made without the secure profile, so it holds no "
                "admin login; remove that folder (its topics go with it) or use another CLICKLIB_HOME",
                service="kafka",
            )
        return
    data.mkdir(parents=True, exist_ok=True)
    # The admin login has to exist before the broker can log in to itself; the other users
    # are added through it once the broker is up (access.secure_stack). Kafka's formatter takes
    # it as an argument only, so the arguments go in a private file that the java launcher
    # expands (@argfile): `ps` shows that file's name, never the password.
    admin = secrets.local_credentials(settings, create=True)["kafka"]["admin"] if settings.secure else ""
    scram = ["--add-scram", f"{secrets.LOCAL_MECHANISM}=[name=admin,password={admin}]"] if admin else []
    arguments = [
        *_jvm(settings, java, "kafka-storage-format", None)[3:],
        _log4j2(settings),
        "-cp",
        classpath(settings, "kafka"),
        "kafka.tools.StorageTool",
        "format",
        # One argument with "=": an id may start with "-", which would otherwise read as an option.
        f"--cluster-id={new_cluster_id()}",
        "--config",
        str(configs.kafka_properties(settings)),
        *scram,
    ]
    argfile = secrets.private_file(secrets.secrets_dir(settings) / "kafka-storage-format.args", java_argfile(arguments))
    try:
        # The markers stay on the command line, where `stack down` looks for the stack's processes.
        command = [*_jvm(settings, java, "kafka-storage-format", None)[:3], f"@{argfile}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise ServiceStartError(
            f"kafka: formatting the KRaft storage in {data} took over 120 s; remove that folder and try again",
            service="kafka",
        ) from None
    finally:
        argfile.unlink(missing_ok=True)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise ServiceStartError(
            f"kafka: formatting the KRaft storage in {data} failed "
            f"(exit {result.returncode}); remove that folder if it holds a broken format",
            service="kafka",
            log_tail=(output.replace(admin, "***") if admin else output)[-4000:],
        )
    if settings.secure:
        secured.touch()


def _cassandra_command(settings: Settings, java: str) -> list[str]:
    data = configs.data_dir(settings, "cassandra")
    jamm = sorted(jars_dir(settings, "cassandra").glob("jamm-*.jar"))
    return [
        *_jvm(settings, java, "cassandra", settings.cassandra_heap),
        *CASSANDRA_JAVA17_OPTIONS,
        # jamm measures object sizes for memtable accounting; it wants to be an agent.
        *([f"-javaagent:{jamm[0]}"] if jamm else []),
        f"-Dcassandra.config=file://{configs.cassandra_yaml(settings)}",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.storagedir={data}",
        f"-Dcassandra.logdir={configs.log_dir(settings)}",
        f"-Dlogback.configurationFile={configs.conf_dir(settings) / 'logback.xml'}",
        # A single node has no peers to wait for.
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        # With logins on, the first start makes its default role at once (10 s later by default),
        # so that clicklib can replace it with its own (access.secure_cassandra).
        "-Dcassandra.superuser_setup_delay_ms=0",
        # The only password the default role takes (BootstrapPasswordAuthenticator): a file's name.
        *(
            [f"-Dclicklib.cassandra.bootstrap-password-file={secrets.cassandra_bootstrap_password_file(settings)}"]
            if settings.secure
            else []
        ),
        "-cp",
        classpath(settings, "cassandra", CASSANDRA_AUTH),
        "org.apache.cassandra.service.CassandraDaemon",
    ]


def _connect_command(settings: Settings, java: str) -> list[str]:
    secrets.sink_password_file(settings)
    return [
        *_jvm(settings, java, "connect", settings.connect_heap),
        *secrets.jaas_option(secrets.connect_jaas(settings)),
        _log4j2(settings),
        "-cp",
        classpath(settings, "connect"),
        "org.apache.kafka.connect.cli.ConnectDistributed",
        str(configs.connect_properties(settings)),
    ]


def _flink_env(settings: Settings) -> dict[str, str]:
    # The plugins folder holds the S3 filesystem when the lake is in a bucket (jars.py).
    return {
        "FLINK_CONF_DIR": str(configs.flink_config(settings).parent),
        "FLINK_PLUGINS_DIR": str(jars_dir(settings, FLINK_PLUGINS)),
    }


def _flink_resource_params(settings: Settings, java: str, which: str) -> tuple[list[str], list[str]]:
    """JVM flags and dynamic options for a JobManager or TaskManager, as Flink computes them."""
    conf = configs.flink_config(settings).parent
    result = subprocess.run(
        [
            java,
            home_marker(settings),
            "-cp",
            classpath(settings, "flink-dist"),
            "org.apache.flink.runtime.util.bash.BashJavaUtils",
            f"GET_{which}_RESOURCE_PARAMS",
            "--configDir",
            str(conf),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    prefix = "BASH_JAVA_UTILS_EXEC_RESULT:"
    lines = [line[len(prefix) :] for line in result.stdout.splitlines() if line.startswith(prefix)]
    if result.returncode != 0 or len(lines) < 2:
        service = "flink-jobmanager" if which == "JM" else "flink-taskmanager"
        raise ServiceStartError(
            f"{service}: Flink could not compute its memory settings from {conf}/config.yaml "
            "(check CLICKLIB_FLINK_*_MEMORY)",
            service=service,
            log_tail=(result.stdout + result.stderr)[-4000:],
        )
    return lines[0].split(), lines[1].split()


def _flink_common(settings: Settings, java: str, name: str) -> list[str]:
    return [
        *_jvm(settings, java, name, None),
        *FLINK_JAVA17_OPTIONS,
        f"-Dlog4j.configurationFile={configs.conf_dir(settings) / 'log4j2.properties'}",
        f"-Dlog.file={configs.log_dir(settings) / (name + '.log')}",
        "-cp",
        classpath(settings, "flink-dist", "flink", "flink-parquet", "flink-functions"),
    ]


def _flink_cluster_command(settings: Settings, java: str, name: str, which: str, main_class: str) -> list[str]:
    jvm_flags, dynamic = _flink_resource_params(settings, java, which)
    common = _flink_common(settings, java, name)
    return [
        common[0],
        *jvm_flags,
        # The jobs' Kafka login: the JobManager lists partitions, the TaskManager reads and writes.
        *secrets.jaas_option(secrets.kafka_client_jaas(settings, "flink", shaded=True)),
        *common[1:],
        main_class,
        "--configDir",
        str(configs.flink_config(settings).parent),
        *dynamic,
    ]


def _jobmanager_command(settings: Settings, java: str) -> list[str]:
    return _flink_cluster_command(
        settings,
        java,
        "flink-jobmanager",
        "JM",
        "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
    )


def _taskmanager_command(settings: Settings, java: str) -> list[str]:
    return _flink_cluster_command(
        settings, java, "flink-taskmanager", "TM", "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
    )


def _sql_gateway_command(settings: Settings, java: str) -> list[str]:
    common = _flink_common(settings, java, "sql-gateway")
    return [
        common[0],
        f"-Xmx{settings.sql_gateway_heap}",
        *common[1:],
        "org.apache.flink.table.gateway.SqlGateway",
    ]


def _web_guard_command(settings: Settings, name: str, label: str, public: int, backend: int) -> list[str]:
    host = settings.code_host
    tls = rest_tls.ensure_rest_tls(settings)
    login = secrets.guard_login_file(settings)
    return [
        # Run as a file: it needs the standard library only, not clicklib and what clicklib imports.
        sys.executable,
        str(Path(web_guard.__file__)),
        f"--listen={host}:{public}",
        f"--backend={host}:{backend}",
        f"--label={label}",
        f"--backend-identity={tls.identity}",
        f"--backend-trust={tls.certificate}",
        *([f"--login-file={login}"] if login else []),
        # The markers let `stack down` and the supervisor find it like every JVM of this stack.
        home_marker(settings),
        service_marker(name),
    ]


def _flink_guard_command(settings: Settings, java: str) -> list[str]:
    return _web_guard_command(
        settings, "flink-guard", "Flink's REST API", settings.flink_rest_port, settings.flink_rest_backend_port
    )


def _sql_gateway_guard_command(settings: Settings, java: str) -> list[str]:
    return _web_guard_command(
        settings, "sql-gateway-guard", "the SQL Gateway", settings.sql_gateway_port, settings.sql_gateway_backend_port
    )


def _schema_registry_command(settings: Settings, java: str) -> list[str]:
    data = configs.data_dir(settings, "schema-registry")
    data.mkdir(parents=True, exist_ok=True)
    folder = jars_dir(settings, "schema-registry")
    return [
        *_jvm(settings, java, "schema-registry", settings.schema_registry_heap),
        f"-Dquarkus.http.host={settings.code_host}",
        f"-Dquarkus.http.port={settings.schema_registry_port}",
        # Apicurio's SQL storage on an H2 database in a file: schemas and their ids survive restarts.
        # WRITE_DELAY=0 writes each commit to the file before the registry answers; by default H2
        # waits up to 500 ms, and a registration acknowledged just before a kill -9 was lost.
        f"-Dquarkus.datasource.jdbc.url=jdbc:h2:file:{data / 'registry'};WRITE_DELAY=0",
        # No web page of another origin may call it (Apicurio allows one by default).
        "-Dquarkus.http.cors=false",
        "-jar",
        str(folder / f"{SCHEMA_REGISTRY_NAME}-runner.jar"),
    ]


def _collector_command(settings: Settings, java: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "clicklib.collector_http",
        # The markers let `stack down` and the supervisor find it like every JVM of this stack.
        home_marker(settings),
        service_marker("collector"),
    ]


# What the Flink JVMs and the web guards in front of them hold (rest_tls.py, secrets.py).
FLINK_SECRETS = (f"{rest_tls.FOLDER}/keystore.p12", f"{rest_tls.FOLDER}/truststore.p12", "kafka-client-flink.jaas")
GUARD_SECRETS = (f"{rest_tls.FOLDER}/identity.pem", f"{rest_tls.FOLDER}/certificate.pem", secrets.GUARD_LOGIN_FILE)

PROCESSES: dict[str, Process] = {
    p.name: p
    for p in (
        Process(
            "kafka",
            "kafka",
            ("kafka", "kafka-controller"),
            health.kafka,
            _kafka_command,
            prepare=_format_kafka_storage,
            secrets=(secrets.KAFKA_SERVER_JAAS,),
            data=("kafka",),
        ),
        Process(
            "cassandra",
            "cassandra",
            ("cassandra", "cassandra-storage"),
            health.cassandra,
            _cassandra_command,
            secrets=(
                secrets.CASSANDRA_BOOTSTRAP_PASSWORD_FILE,
                f"{rest_tls.CASSANDRA_FOLDER}/identity.pem",
                f"{rest_tls.CASSANDRA_FOLDER}/certificate.pem",
            ),
            data=("cassandra",),
        ),
        Process(
            "connect",
            "connect",
            ("connect",),
            health.connect,
            _connect_command,
            secrets=(secrets.CONNECT_JAAS, secrets.CONNECT_USERS_FILE, secrets.SINK_PASSWORD_FILE),
        ),
        Process(
            "schema-registry",
            "schema-registry",
            ("schema-registry",),
            health.schema_registry,
            _schema_registry_command,
            data=("schema-registry",),
        ),
        # It reads its settings from the environment, those of the stack it belongs to.
        Process(
            "collector",
            "collector",
            ("collector", "collector-udp"),
            health.collector,
            _collector_command,
            env=lambda settings: settings.to_env(),
            liveness=health.collector_answers,
            secrets=(f"{secrets.PASSWORDS_FOLDER}/kafka-producer",),
        ),
        Process(
            "flink-jobmanager",
            "flink",
            ("flink-backend", "flink-rpc"),
            health.flink_jobmanager,
            _jobmanager_command,
            env=_flink_env,
            secrets=FLINK_SECRETS,
            data=("flink",),
        ),
        Process(
            "flink-taskmanager",
            "flink",
            (),
            health.flink_taskmanager,
            _taskmanager_command,
            env=_flink_env,
            secrets=FLINK_SECRETS,
            data=("flink",),
            liveness=health.flink_taskmanager_alive,
        ),
        Process(
            "flink-guard",
            "flink",
            ("flink",),
            health.flink,
            _flink_guard_command,
            secrets=GUARD_SECRETS,
            liveness=health.flink_alive,
        ),
        Process(
            "sql-gateway",
            "sql-gateway",
            ("sql-gateway-backend",),
            health.sql_gateway_backend,
            _sql_gateway_command,
            env=_flink_env,
            secrets=FLINK_SECRETS,
            data=("flink",),
        ),
        Process(
            "sql-gateway-guard",
            "sql-gateway",
            ("sql-gateway",),
            health.sql_gateway,
            _sql_gateway_guard_command,
            secrets=GUARD_SECRETS,
        ),
    )
}

# Start order: the two slowest together, then what needs Kafka, then Flink. On two cores,
# starting every JVM at once only makes each of them slower.
PHASES: tuple[tuple[str, ...], ...] = (
    ("kafka", "cassandra"),
    ("connect", "collector", "schema-registry"),
    ("flink-jobmanager", "flink-taskmanager", "flink-guard"),
    ("sql-gateway", "sql-gateway-guard"),
)

SERVICES: dict[str, tuple[str, ...]] = {
    "kafka": ("kafka",),
    "cassandra": ("cassandra",),
    "connect": ("connect",),
    "collector": ("collector",),
    "schema-registry": ("schema-registry",),
    "flink": ("flink-jobmanager", "flink-taskmanager", "flink-guard"),
    "sql-gateway": ("sql-gateway", "sql-gateway-guard"),
}

NEEDS: dict[str, tuple[str, ...]] = {
    "connect": ("kafka",),
    "collector": ("kafka",),
    "flink-taskmanager": ("flink-jobmanager",),
    "sql-gateway": ("flink-jobmanager", "flink-taskmanager"),
}


# Started again along with the process that names them. A TaskManager stays registered with the
# JobManager it started with: standalone Flink tells it of no new one, so after the JobManager
# restarts it would sit unregistered until its heartbeat timeout (90 s) ran out.
RESTART_WITH: dict[str, tuple[str, ...]] = {"flink-jobmanager": ("flink-taskmanager",)}

# What each process's liveness check goes through: while one of these fails too, the process is
# not the one stalled (a guard answers only what its backend answers).
CHECKED_THROUGH: dict[str, tuple[str, ...]] = {
    **NEEDS,
    "flink-guard": ("flink-jobmanager",),
    "sql-gateway-guard": ("sql-gateway",),
}


def service_url(settings: Settings, service: str) -> str:
    return {
        "kafka": f"kafka://{settings.bootstrap_servers}",
        "cassandra": f"cql://{settings.cassandra_contact_points[0]}:{settings.cassandra_port}",
        "connect": settings.connect_url,
        "collector": settings.collector_url,
        "schema-registry": settings.schema_registry_url,
        "flink": settings.flink_rest_url,
        "sql-gateway": settings.sql_gateway_url,
    }[service]


def expand(services: list[str] | None) -> list[str]:
    """Process names for the named services plus what they need, in start order."""
    if not services:
        wanted = set(PROCESSES)
    else:
        unknown = [s for s in services if s not in SERVICES]
        if unknown:
            raise StackError(f"unknown service {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
        wanted = {p for s in services for p in SERVICES[s]}
    pending = list(wanted)
    while pending:
        for need in NEEDS.get(pending.pop(), ()):
            if need not in wanted:
                wanted.add(need)
                pending.append(need)
    return [p for phase in PHASES for p in phase if p in wanted]
