"""Configuration files the local stack generates under ``<home>/conf/`` from settings.

Written on every ``up`` so a changed port or heap reaches the service; data is kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from clicklib.secrets import LOCAL_MECHANISM, kafka_java_options, secrets_dir, sink_password_path
from clicklib.settings import Settings
from clicklib.stack import rest_tls


def conf_dir(settings: Settings) -> Path:
    return settings.home / "conf"


def data_dir(settings: Settings, service: str) -> Path:
    return settings.home / "data" / service


def log_dir(settings: Settings) -> Path:
    return settings.home / "logs"


# Each service's own folder under <home>/data: in the secure profile no other service may open it
# (a Flink job could otherwise read Kafka's segments and Cassandra's tables around every ACL).
DATA_FOLDERS = ("kafka", "cassandra", "flink", "schema-registry")


def make_home_folders(settings: Settings) -> None:
    """The folders the services write to, made up front (and the lake's, when it is a folder):
    a sandboxed service cannot use a folder made beside a hidden one after it started."""
    folders = [settings.home / name for name in ("conf", "data", "logs", "run")]
    folders += [data_dir(settings, name) for name in DATA_FOLDERS]
    if settings.flink_lake_url.startswith("file://"):
        folders.append(Path(unquote(urlsplit(settings.flink_lake_url).path)))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)


def _write(path: Path, text: str) -> Path:
    """Write a config whole, and only when it changed: a service may be reading it as the next
    one's start writes it again (Flink's TaskManager rewrites the JobManager's config.yaml, and a
    JobManager that read it half-written started on Flink's defaults)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_text() == text:
            return path
    except OSError:
        pass
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path


# Services log to stdout, which the stack redirects into logs/<service>.log, so one file
# per service holds everything, including JVM crashes.
LOG4J2_CONSOLE = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %-5p [%c{1}] %m%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = WARN
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
"""

LOGBACK_CONSOLE = """\
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%date{ISO8601} %-5level [%thread] %logger{0} %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def write_log_configs(settings: Settings) -> None:
    _write(conf_dir(settings) / "log4j2.properties", LOG4J2_CONSOLE)
    _write(conf_dir(settings) / "logback.xml", LOGBACK_CONSOLE)


def kafka_properties(settings: Settings) -> Path:
    host = settings.bind_host
    client, controller = ("SASL_PLAINTEXT", "SASL_PLAINTEXT") if settings.secure else ("PLAINTEXT", "PLAINTEXT")
    return _write(
        conf_dir(settings) / "kafka" / "server.properties",
        f"""\
# One KRaft node acting as broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{settings.kafka_controller_port}
listeners={client}://{host}:{settings.kafka_port},CONTROLLER://{host}:{settings.kafka_controller_port}
advertised.listeners={client}://{host}:{settings.kafka_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name={client}
listener.security.protocol.map={client}:{client},CONTROLLER:{controller}
log.dirs={data_dir(settings, "kafka")}
num.partitions=1
# A single broker cannot hold more than one replica of anything.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumers in tests and notebooks join one at a time; no reason to wait for more.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
{KAFKA_SECURE if settings.secure else ""}""",
    )


# The secure profile: clients log in with SCRAM (users live in the cluster metadata), the broker
# and its controller with PLAIN from the JAAS file the process is given (secrets.py); nobody may
# do anything an access rule does not allow.
KAFKA_SECURE = f"""\
sasl.enabled.mechanisms={LOCAL_MECHANISM}
sasl.mechanism.inter.broker.protocol={LOCAL_MECHANISM}
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
"""


def connect_properties(settings: Settings) -> Path:
    # The file config provider below may read only there, and Connect refuses a path that is missing.
    secrets_dir(settings).mkdir(mode=0o700, parents=True, exist_ok=True)
    return _write(
        conf_dir(settings) / "connect" / "connect-distributed.properties",
        f"""\
bootstrap.servers={settings.bootstrap_servers}
group.id=clicklib-connect
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
config.storage.topic=_clicklib-connect-configs
offset.storage.topic=_clicklib-connect-offsets
status.storage.topic=_clicklib-connect-status
# One worker: when it drops out of its group (Kafka or the worker paused past the session
# timeout) and joins again as a new member, its connectors must not wait the default five minutes
# for the old member to come back, unassigned and silent, since it never does.
scheduled.rebalance.max.delay.ms=0
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.flush.interval.ms=5000
# Cassandra acknowledges a write once its commit log group is synced: larger batches, written
# with many requests in flight, share each sync instead of waiting for one apiece.
consumer.max.poll.records=2000
# A sink task's consumer that vanished without leaving its group (stopped while Kafka was
# unreachable) holds up the group until its session expires: 10 s rather than the default 45 s.
consumer.session.timeout.ms=10000
consumer.heartbeat.interval.ms=3000
listeners=http://{settings.bind_host}:{settings.connect_port}
rest.advertised.host.name={settings.bind_host}
rest.advertised.port={settings.connect_port}
plugin.path={settings.home / "jars" / "connect-plugins"}
# Connectors may not change the Kafka clients the worker makes for them (their login, their
# topics' reach): the pipeline's connectors need no override.
connector.client.config.override.policy=None
{_connect_secrets(settings)}{connect_kafka_security(settings)}\
{connect_rest_extensions(settings)}""",
    )


def _connect_secrets(settings: Settings) -> str:
    # Only the secure profile's sinks log in to Cassandra, with a password Connect reads by reference.
    return connect_secret_provider(str(sink_password_path(settings))) if settings.secure else ""


def connect_secret_provider(password_file: str) -> str:
    """Worker properties that let connector configs name the sinks' password by reference."""
    return f"""\
# Connector configs may name a secret by reference, ${{file:path:key}}: the sinks' Cassandra
# password is given so, and Connect's REST API shows only the reference.
config.providers=file
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
# ... and from that one file only: anyone who may call the REST API could otherwise have the
# worker read any file it can, and a connector's validation error could echo another secret.
config.providers.file.param.allowed.paths={password_file}
"""


# The secure profile: every REST request must carry a user and password (the JAAS file's
# KafkaConnect section names the file that holds them).
# Refuses what a web page can send (a rebound Host, a foreign Origin), as the web guards do for
# Flink; it is in the clicklib sink's plugin jar (connect/cassandra-sink).
CONNECT_WEB_GUARD = "io.clicklib.connect.rest.WebRequestGuard"
CONNECT_BASIC_AUTH = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"


def connect_rest_extensions(settings: Settings) -> str:
    """The REST API's guard, and in the secure profile its login after it."""
    extensions = [CONNECT_WEB_GUARD, *([CONNECT_BASIC_AUTH] if settings.secure else [])]
    # A worker that binds another address is called by that name too (the secure profile only).
    allowed = "" if settings.code_host == settings.bind_host else settings.bind_host
    return f"rest.extension.classes={','.join(extensions)}\nclicklib.rest.allowed.hosts={allowed}\n"


def connect_kafka_security(settings: Settings) -> str:
    """The worker's Kafka login settings, for itself and the clients it makes for connectors;
    the password comes from the JAAS file the process is given."""
    options = kafka_java_options(settings)
    return "".join(
        f"{prefix}{key}={value}\n"
        for prefix in ("", "producer.", "consumer.", "admin.")
        for key, value in options.items()
    )


CASSANDRA_OPEN = """\
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
"""
# The secure profile: every session logs in with a role's password; a role may do only what it
# was granted (clicklib's roles: access.secure_cassandra).
CASSANDRA_SECURE = """\
# Cassandra's PasswordAuthenticator, except that the default superuser takes only the stack's
# bootstrap password, never the well-known one (stack/poms/cassandra-auth).
authenticator: io.clicklib.cassandra.BootstrapPasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
"""


def _cassandra_logins(settings: Settings) -> str:
    return CASSANDRA_SECURE + _cassandra_storage_tls(settings) if settings.secure else CASSANDRA_OPEN


def _cassandra_storage_tls(settings: Settings) -> str:
    """Mutual TLS on the storage port (secure profile): any local user can reach it, and a
    node's messages are never asked for a login, so only a peer holding the node's own key may
    speak (rest_tls.py makes it; no password: the PEM key is not encrypted, the folder is private
    and only Cassandra may read it)."""
    tls = rest_tls.ensure_rest_tls(settings, rest_tls.CASSANDRA_FOLDER)
    return f"""\
# The storage port takes only peers that present the node's own key: no other local user, and
# no Flink job, can speak to it as a node.
server_encryption_options:
  internode_encryption: all
  legacy_ssl_storage_port_enabled: false
  optional: false
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
  keystore: {tls.identity}
  truststore: {tls.certificate}
  require_client_auth: true
  require_endpoint_verification: false
"""


def cassandra_yaml(settings: Settings) -> Path:
    data = data_dir(settings, "cassandra")
    host = settings.bind_host
    return _write(
        conf_dir(settings) / "cassandra" / "cassandra.yaml",
        f"""\
cluster_name: clicklib
num_tokens: 16
allocate_tokens_for_local_replication_factor: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories:
  - {data / "data"}
commitlog_directory: {data / "commitlog"}
saved_caches_directory: {data / "saved_caches"}
hints_directory: {data / "hints"}
cdc_raw_directory: {data / "cdc_raw"}
# A write is acknowledged only once its commit log entry is on disk: the writes waiting when a
# sync starts share it. The default, periodic, acknowledges first and syncs every 10 s: a crash
# of the process or the machine can lose writes the sink was told had succeeded.
commitlog_sync: batch
# Each write holds a write thread until its sync: with the default 32 threads a node takes no
# more than 32 writes per sync; 512 let the sink's many writes in flight share each one.
concurrent_writes: 512
# A commit log or table that cannot be written (a full disk) ends the process rather than leaving
# a node that answers nothing (the default, stop): the supervisor starts it again, and it replays
# its commit log, once there is room (stack/disk.py).
commit_failure_policy: die
disk_failure_policy: die
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{host}:{settings.cassandra_storage_port}"
listen_address: {host}
rpc_address: {host}
storage_port: {settings.cassandra_storage_port}
native_transport_port: {settings.cassandra_port}
start_native_transport: true
endpoint_snitch: SimpleSnitch
{_cassandra_logins(settings)}# One node on a laptop: keep compaction and flushing from starving the other services.
concurrent_compactors: 1
""",
    )


# The TaskManager's fixed name, by which the supervisor finds it among those registered.
TASKMANAGER_ID = "clicklib-taskmanager"


def flink_config(settings: Settings) -> Path:
    host = settings.code_host
    flink_data = data_dir(settings, "flink")
    for sub in ("tmp", "web", "checkpoints", "savepoints"):
        (flink_data / sub).mkdir(parents=True, exist_ok=True)
    path = _write(
        conf_dir(settings) / "flink" / "config.yaml",
        f"""\
jobmanager.rpc.address: {host}
jobmanager.rpc.port: {settings.flink_rpc_port}
jobmanager.bind-host: {host}
jobmanager.memory.process.size: {settings.flink_jobmanager_memory}
taskmanager.host: {host}
taskmanager.bind-host: {host}
taskmanager.memory.process.size: {settings.flink_taskmanager_memory}
# The jobs keep their state on the heap (the hashmap state backend): managed memory serves only
# RocksDB and batch work, so a tenth of it is enough, and the heap gets the rest. Four jobs per
# pipeline, with a few pipelines at once, ran out of the default heap.
taskmanager.memory.managed.fraction: 0.1
taskmanager.numberOfTaskSlots: {settings.flink_task_slots}
taskmanager.resource-id: {TASKMANAGER_ID}
parallelism.default: 1
# The REST API and the SQL Gateway listen on their backend ports; the web guard owns the public
# ones (stack/web_guard.py), because Flink sends Access-Control-Allow-Origin on every answer.
# The SQL Gateway reaches the JobManager directly, on the backend port.
rest.address: {host}
rest.bind-address: {host}
rest.port: {settings.flink_rest_backend_port}
sql-gateway.endpoint.rest.address: {host}
sql-gateway.endpoint.rest.bind-address: {host}
sql-gateway.endpoint.rest.port: {settings.sql_gateway_backend_port}
io.tmp.dirs: {flink_data / "tmp"}
web.tmpdir: {flink_data / "web"}
execution.checkpointing.dir: file://{flink_data / "checkpoints"}
execution.checkpointing.savepoint-dir: file://{flink_data / "savepoints"}
execution.checkpointing.interval: 10 s
# Checkpoints outlive their job (cancelled, failed, or its JobManager killed), so `pipeline up`
# and the supervisor can resume it from the newest one; clicklib removes those no job needs.
execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION
execution.checkpointing.num-retained: 2
# A process that dies is noticed at once: its heartbeat requests are refused, and after two
# refusals (heartbeat.rpc-failure-threshold) it counts as lost. The timeout is for a process that
# does not answer: one frozen for up to a minute (a GC pause, a laptop's lid) is waited for, not
# turned into minutes of failovers in which the two keep timing each other out. One wedged for
# longer is the supervisor's to restart (stall_timeout).
heartbeat.interval: 5 s
heartbeat.timeout: 90 s
# No jar upload or run from the web UI or REST API: a jar is code, and these ports are reachable
# from any page in the user's browser (DNS rebinding defeats the same-origin rule).
web.submit.enable: false
# Flink answers every request with Access-Control-Allow-Origin set to this value ("*" by default,
# so any web page could read the API); an empty value grants no origin, and the web guard drops
# the header altogether.
web.access-control-allow-origin: ""
# Sampled flame graphs in the web UI and REST API: how the benchmarks found where CPU goes.
rest.flamegraph.enabled: true
{rest_tls.flink_options(settings)}{_flink_s3_options(settings)}""",
    )
    # The lake's S3 secret key may be in it: readable by this user alone.
    path.chmod(0o600)
    return path


def _flink_s3_options(settings: Settings) -> str:
    """The S3 filesystem's options when the lake is in a bucket (untested here: no S3 is
    reachable). Flink masks keys named like secret-key in its logs."""
    if not settings.flink_lake_url.startswith("s3a://"):
        return ""
    lines = []
    if settings.lake_s3_endpoint:
        # A self-hosted store (MinIO, Ceph) answers at its own address, buckets in the path.
        lines += [f"s3.endpoint: {settings.lake_s3_endpoint}", "s3.path.style.access: true"]
    if settings.lake_s3_access_key:
        lines += [
            f"s3.access-key: {json.dumps(settings.lake_s3_access_key)}",
            f"s3.secret-key: {json.dumps(settings.lake_s3_secret_key)}",
        ]
    return "".join(line + "\n" for line in lines)
