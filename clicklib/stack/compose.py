"""The files the secure docker-compose profile (docker-compose.secure.yml) gives its containers.

``clicklib stack compose-secrets`` writes them into ``<home>/secrets/compose/<container>/``,
each container's own files, which it mounts read-only at ``/run/clicklib``. They hold the same passwords as the local
secure profile (``<home>/secrets/passwords/``, made on first use), so every clicklib
client on the host logs in to the containers as it does to the local stack.

The scripts in ``docker/secure/`` read them: Kafka's storage is formatted with every
component's SCRAM login, the Connect worker's access rules are added once Kafka is up, and
Cassandra's default superuser is replaced by clicklib's roles.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

from confluent_kafka.admin import ResourceType

from clicklib import access, resources, secrets
from clicklib.exceptions import SettingsError
from clicklib.settings import Settings
from clicklib.stack import configs

# Where the containers see the folder, and Connect's worker properties there.
MOUNT = "/run/clicklib"
# The broker's client listeners in docker-compose.secure.yml: the other containers' and the host's.
CLIENT_LISTENERS = ("internal", "host")
RESOURCE_OPTIONS = {
    ResourceType.TOPIC: "--topic",
    ResourceType.GROUP: "--group",
    ResourceType.TRANSACTIONAL_ID: "--transactional-id",
}


def compose_dir(settings: Settings) -> Path:
    return secrets.secrets_dir(settings) / "compose"


def acl_arguments(rule: access.Rule) -> str:
    """One access rule as the arguments of Kafka's ``kafka-acls.sh --add``."""
    principal, kind, name, pattern, operation = rule
    verb = "".join(word.capitalize() for word in operation.name.split("_"))
    return (
        f"--allow-principal User:{principal} --operation {verb} {RESOURCE_OPTIONS[kind]} {name} "
        f"--resource-pattern-type {pattern.name.lower()}"
    )


def _properties(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def compose_files(settings: Settings) -> dict[str, str]:
    """Every file's name and text."""
    credentials = secrets.local_credentials(settings, create=True)
    kafka, cassandra = credentials["kafka"], credentials["cassandra"]
    connect_user = secrets.CONNECT_USERS[0]
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    worker = (resources.connect_dir() / "connect-distributed.docker.properties").read_text()
    return {
        "kafka-server.jaas": secrets.kafka_server_jaas_text(kafka["admin"], CLIENT_LISTENERS),
        "kafka-users.properties": _properties({name: kafka[name] for name in secrets.KAFKA_PRINCIPALS}),
        # For Kafka's own tools in the containers: the health check and the access rules.
        "kafka-admin.properties": _properties(
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": secrets.LOCAL_MECHANISM,
                "sasl.jaas.config": secrets.login_module(scram, username="admin", password=kafka["admin"]).strip(),
            }
        ),
        "kafka-acls.txt": "".join(f"{acl_arguments(rule)}\n" for rule in access.stack_rules()),
        "flink.jaas": secrets.kafka_client_section(settings, "flink", shaded=True),
        "connect.jaas": secrets.connect_jaas_text(settings, f"{MOUNT}/connect-users.properties"),
        "connect-users.properties": secrets.connect_users_text(settings),
        "connect-distributed.properties": worker
        + "\n# The secure profile (written by `clicklib stack compose-secrets`).\n"
        + configs.connect_secret_provider(f"{MOUNT}/{secrets.SINK_PASSWORD_FILE}")
        + configs.connect_kafka_security(settings)
        # Replaces the worker file's own list: the guard first, then the login.
        + f"rest.extension.classes={configs.CONNECT_WEB_GUARD},{configs.CONNECT_BASIC_AUTH}\n",
        # The health check's Authorization header.
        "connect-login": base64.b64encode(f"{connect_user}:{credentials['connect'][connect_user]}".encode()).decode(),
        "cassandra-roles.properties": _properties({role: cassandra[role] for role in secrets.CASSANDRA_ROLES}),
        # The only password the node's default superuser takes (BootstrapPasswordAuthenticator,
        # which the secure profile's Cassandra runs as the local stack's does).
        secrets.CASSANDRA_BOOTSTRAP_PASSWORD_FILE: secrets.cassandra_bootstrap_password_file(settings).read_text(),
        # What Flink's and the SQL Gateway's web guards ask every request for.
        secrets.GUARD_LOGIN_FILE: f"{secrets.FLINK_USERS[0]}:{credentials['flink'][secrets.FLINK_USERS[0]]}\n",
        secrets.SINK_PASSWORD_FILE: _properties({"password": cassandra["sink"]}),
    }


# Read by containers that run as root (the web guards' Python image), so they can be the owner's
# alone: the guard refuses a login file that others may read.
OWNER_ONLY = frozenset({secrets.GUARD_LOGIN_FILE})

# The files each container is given (its folder is mounted at /run/clicklib): its own logins
# only, so that no container, Flink's running the jobs it is sent among them, reads another's.
CONTAINER_FILES: dict[str, tuple[str, ...]] = {
    # The broker formats its storage with every component's SCRAM login.
    "kafka": ("kafka-server.jaas", "kafka-users.properties", "kafka-admin.properties"),
    "kafka-access": ("kafka-admin.properties", "kafka-acls.txt"),
    "cassandra": (secrets.CASSANDRA_BOOTSTRAP_PASSWORD_FILE,),
    "cassandra-access": ("cassandra-roles.properties", secrets.CASSANDRA_BOOTSTRAP_PASSWORD_FILE),
    "connect": (
        "connect-distributed.properties",
        "connect.jaas",
        "connect-users.properties",
        "connect-login",
        secrets.SINK_PASSWORD_FILE,
    ),
    "flink-jobmanager": ("flink.jaas",),
    "flink-taskmanager": ("flink.jaas",),
    "flink-guard": (secrets.GUARD_LOGIN_FILE,),
    "sql-gateway-guard": (secrets.GUARD_LOGIN_FILE,),
}


def write_compose_secrets(settings: Settings) -> Path:
    """Write the files; returns their folder."""
    if not settings.secure:
        raise SettingsError(
            "the secure docker-compose profile uses the secure profile's logins: "
            "run `CLICKLIB_SECURE=1 clicklib stack compose-secrets`"
        )
    folder = compose_dir(settings)
    files = compose_files(settings)
    # The containers run as users of their own (uids 1000, 999, 9999), so the files must be
    # readable by anyone who reaches them; the secrets folder around them (mode 0700) keeps the
    # other users of this machine out.
    try:
        folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder.parent, 0o700)
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o755)
        for old in folder.iterdir():
            if old.is_file():  # an earlier version kept every container's files side by side
                old.unlink()
        for container, names in CONTAINER_FILES.items():
            own = folder / container
            own.mkdir(exist_ok=True)
            os.chmod(own, 0o755)
            for name in names:
                descriptor, temporary = tempfile.mkstemp(dir=own, prefix=f".{name}.")
                with os.fdopen(descriptor, "w") as handle:
                    handle.write(files[name])
                os.chmod(temporary, 0o600 if name in OWNER_ONLY else 0o644)
                os.replace(temporary, own / name)
    except PermissionError as exc:
        # Typically: `docker compose up` ran first and Docker made the folder, owned by root.
        raise SettingsError(
            f"cannot write the compose login files into {folder} ({exc.strerror}: {exc.filename}); "
            "if Docker made that folder, remove it (sudo rm -r) and run this again"
        ) from None
    return folder
