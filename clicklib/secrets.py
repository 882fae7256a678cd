"""Credentials: the passwords the secure local profile generates, and the logins every
client of Kafka, Cassandra and Connect's REST API uses.

The secure profile (``CLICKLIB_SECURE=1``) gives each component its own Kafka principal:

- ``admin``: the broker itself and clicklib's own admin work (topics, access rules, offsets);
- ``producer``: writes the topics events and user profiles enter by, nothing else;
- ``flink``: the SQL jobs, reading and writing the pipeline's topics;
- ``connect``: the Connect worker and its sinks.

and its own Cassandra role (``clicklib_admin``, ``clicklib_sink``, ``clicklib_reader``), and
Connect's REST API one user (``clicklib``). Their passwords are made on the first ``stack up``,
one file per login under ``<home>/secrets/passwords/`` (mode 0600, in folders of mode 0700).
The JVMs read theirs from files written beside them (JAAS files, the sink's password file), and
each service may read its own files only (stack/sandbox.py). No password is in the command line
of any process, a config under ``<home>/conf``, or SQL text (Kafka's storage formatter, run
once on the first start, reads its arguments from a private file: see services.py).

Against another cluster, the ``CLICKLIB_*_USERNAME`` and ``CLICKLIB_*_PASSWORD`` settings are
used by every clicklib client instead.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from clicklib.exceptions import SettingsError
from clicklib.settings import Settings

KAFKA_PRINCIPALS = ("admin", "producer", "flink", "connect")
# Cassandra roles (named clicklib_<role> in Cassandra): admin is the only superuser and sets up
# keyspaces; sink may write the pipelines' keyspaces; reader may only read them.
CASSANDRA_ROLES = ("admin", "sink", "reader")
# The one user of Connect's REST API.
CONNECT_USERS = ("clicklib",)
# The one user of Flink's REST API and the SQL Gateway, which the web guards ask for: neither
# service has a login of its own.
FLINK_USERS = ("clicklib",)
LOGINS = {"kafka": KAFKA_PRINCIPALS, "cassandra": CASSANDRA_ROLES, "connect": CONNECT_USERS, "flink": FLINK_USERS}
# The mechanism the secure profile's client listener speaks.
LOCAL_MECHANISM = "SCRAM-SHA-256"
# Flink's Kafka connector carries the Kafka client relocated under this package.
FLINK_KAFKA_SHADE = "org.apache.flink.kafka.shaded."
# The files under <home>/secrets that services read, each given to its own service only.
KAFKA_SERVER_JAAS = "kafka-server.jaas"
CONNECT_JAAS = "connect.jaas"
CONNECT_USERS_FILE = "connect-users.properties"
GUARD_LOGIN_FILE = "web-guard.login"
CASSANDRA_BOOTSTRAP_PASSWORD_FILE = "cassandra-bootstrap-password"


def secrets_dir(settings: Settings) -> Path:
    return settings.home / "secrets"


def private_file(path: Path, content: str | bytes) -> Path:
    """Write ``content`` readable by its owner only, from the first byte on, and whole: a reader
    sees the old file or the new one, never a part.

    A file that holds ``content`` already is left as it is: a running service may be allowed to
    read that very file (stack/sandbox.py grants files, not names), and a new one in its place
    would be closed to it."""
    data = content.encode() if isinstance(content, str) else content
    try:
        if path.read_bytes() == data:
            path.chmod(0o600)
            return path
    except OSError:
        pass
    # Every folder made on the way is private too (pathlib makes parents with the umask's mode).
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    if path.parent.name == "secrets":
        os.chmod(path.parent, 0o700)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # made 0600
    try:
        with os.fdopen(descriptor, "wb" if isinstance(content, bytes) else "w") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


PASSWORDS_FOLDER = "passwords"


def password_path(settings: Settings, system: str, name: str) -> Path:
    """The file that holds one login's password: one file per login, so that each service is
    given its own (stack/sandbox.py) and no file holds every password."""
    return secrets_dir(settings) / PASSWORDS_FOLDER / f"{system}-{name}"


def _split_old_credentials(settings: Settings) -> None:
    # Homes made before the passwords had a file each kept them all in credentials.json.
    old = secrets_dir(settings) / "credentials.json"
    if not old.is_file():
        return
    try:
        stored = json.loads(old.read_text())
    except ValueError:
        raise SettingsError(
            f"{old} is not the JSON clicklib wrote; restore it from a backup. Without it the stack's "
            "logins are lost: only removing data/kafka and data/cassandra under CLICKLIB_HOME (their "
            "topics and tables go too) lets a new `CLICKLIB_SECURE=1 clicklib stack up` start afresh"
        ) from None
    for system, logins in stored.items():
        for name, password in logins.items():
            if not password_path(settings, system, name).is_file():
                private_file(password_path(settings, system, name), password + "\n")
    old.unlink()


def login_password(settings: Settings, system: str, name: str) -> str:
    """One login's password of the secure profile, read from its own file."""
    path = password_path(settings, system, name)
    try:
        return path.read_text().rstrip("\n")
    except FileNotFoundError:
        _split_old_credentials(settings)
        if path.is_file():
            return path.read_text().rstrip("\n")
        raise SettingsError(
            f"the secure profile has no credentials yet ({path}, the password of {system} {name}, is missing); "
            "start the stack with `CLICKLIB_SECURE=1 clicklib stack up`"
        ) from None
    except PermissionError:
        raise SettingsError(
            f"{path} cannot be read here: in the secure profile each service may read its own "
            f"passwords only, and {system} {name} is not this process's"
        ) from None


def local_credentials(settings: Settings, create: bool = False) -> dict[str, dict[str, str]]:
    """The secure profile's passwords by system and login; the missing ones made when ``create``
    (those made before are kept: Kafka and Cassandra hold them already)."""
    _split_old_credentials(settings)
    stored: dict[str, dict[str, str]] = {}
    for system, names in LOGINS.items():
        for name in names:
            path = password_path(settings, system, name)
            if not path.is_file():
                if not create:
                    raise SettingsError(
                        f"the secure profile has no credentials yet ({path} is missing); "
                        "start the stack with `CLICKLIB_SECURE=1 clicklib stack up`"
                    )
                private_file(path, secrets.token_urlsafe(24) + "\n")
            stored.setdefault(system, {})[name] = path.read_text().rstrip("\n")
    return stored


def kafka_login(settings: Settings, principal: str = "admin") -> tuple[str, str] | None:
    """The user name and password a Kafka client logs in with, or None for no login."""
    if settings.kafka_username:
        return settings.kafka_username, settings.kafka_password
    if settings.secure:
        return principal, login_password(settings, "kafka", principal)
    return None


def kafka_protocol(settings: Settings) -> tuple[str, str]:
    """The security protocol and SASL mechanism clients use (empty: Kafka's defaults)."""
    if settings.kafka_security_protocol:
        return settings.kafka_security_protocol, settings.kafka_sasl_mechanism
    if settings.secure:
        return "SASL_PLAINTEXT", LOCAL_MECHANISM
    return "", ""


def kafka_client_config(settings: Settings, principal: str = "admin") -> dict[str, Any]:
    """librdkafka settings for one principal: security protocol, SASL login and TLS files."""
    protocol, mechanism = kafka_protocol(settings)
    config: dict[str, Any] = {}
    if protocol:
        config["security.protocol"] = protocol
    if "SASL" in protocol:
        login = kafka_login(settings, principal)
        if login is None:
            raise SettingsError(
                f"CLICKLIB_KAFKA_SECURITY_PROTOCOL={protocol} needs CLICKLIB_KAFKA_USERNAME and CLICKLIB_KAFKA_PASSWORD"
            )
        config.update({"sasl.mechanisms": mechanism or "PLAIN", "sasl.username": login[0], "sasl.password": login[1]})
    for setting, key in (
        ("kafka_ssl_ca", "ssl.ca.location"),
        ("kafka_ssl_certificate", "ssl.certificate.location"),
        ("kafka_ssl_key", "ssl.key.location"),
    ):
        if getattr(settings, setting):
            config[key] = getattr(settings, setting)
    return config


def kafka_java_options(settings: Settings) -> dict[str, str]:
    """Java Kafka client settings without a password: the JVM's JAAS file holds the login."""
    protocol, mechanism = kafka_protocol(settings)
    options = {}
    if protocol:
        options["security.protocol"] = protocol
    if "SASL" in protocol:
        options["sasl.mechanism"] = mechanism or "PLAIN"
    if settings.kafka_ssl_ca:
        options.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": settings.kafka_ssl_ca})
    if settings.kafka_ssl_certificate and settings.kafka_ssl_key:
        # Java reads a PEM key store from one file holding the key and its certificate chain.
        options.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": settings.kafka_ssl_key})
    return options


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def login_module(module: str, **options: str) -> str:
    fields = "".join(f"\n  {key}={_jaas_quote(value)}" for key, value in options.items())
    return f"  {module} required{fields};"


def kafka_client_section(settings: Settings, principal: str, shaded: bool) -> str:
    """A JAAS KafkaClient section logging ``principal`` in, or "" when no login is needed."""
    protocol, mechanism = kafka_protocol(settings)
    login = kafka_login(settings, principal) if "SASL" in protocol else None
    if login is None:
        return ""
    package = "org.apache.kafka.common.security."
    module = "scram.ScramLoginModule" if (mechanism or "PLAIN").startswith("SCRAM") else "plain.PlainLoginModule"
    prefix = FLINK_KAFKA_SHADE if shaded else ""
    return "KafkaClient {\n" + login_module(prefix + package + module, username=login[0], password=login[1]) + "\n};\n"


def kafka_client_jaas(settings: Settings, principal: str, shaded: bool = False) -> Path | None:
    """A JAAS file whose KafkaClient section logs ``principal`` in; None when no login is needed.

    ``shaded`` names the login modules as Flink's Kafka connector relocates them.
    """
    section = kafka_client_section(settings, principal, shaded)
    return private_file(secrets_dir(settings) / f"kafka-client-{principal}.jaas", section) if section else None


def connect_users_text(settings: Settings) -> str:
    """Who may use Connect's REST API, as its basic authentication extension reads them."""
    return "".join(f"{user}={login_password(settings, 'connect', user)}\n" for user in CONNECT_USERS)


def connect_jaas_text(settings: Settings, users_file: str) -> str:
    """The Connect worker's JAAS sections: its Kafka login, and (secure profile) the file that
    holds who may use its REST API, at ``users_file`` as the worker sees it."""
    text = kafka_client_section(settings, "connect", shaded=False)
    if settings.secure:
        module = "org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule"
        text += "KafkaConnect {\n" + login_module(module, file=users_file) + "\n};\n"
    return text


def connect_jaas(settings: Settings) -> Path | None:
    """The local Connect worker's JAAS file: its Kafka login, and who may use its REST API."""
    users = secrets_dir(settings) / CONNECT_USERS_FILE
    if settings.secure:
        private_file(users, connect_users_text(settings))
    text = connect_jaas_text(settings, str(users))
    return private_file(secrets_dir(settings) / CONNECT_JAAS, text) if text else None


def cassandra_login(settings: Settings, role: str = "admin") -> tuple[str, str] | None:
    """The role and password a Cassandra session logs in with, or None for no login."""
    if settings.cassandra_username:
        return settings.cassandra_username, settings.cassandra_password
    if settings.secure:
        return f"clicklib_{role}", login_password(settings, "cassandra", role)
    return None


def connect_login(settings: Settings) -> tuple[str, str] | None:
    """The user name and password for Connect's REST API, or None for none."""
    if settings.connect_username:
        return settings.connect_username, settings.connect_password
    if settings.secure:
        return CONNECT_USERS[0], login_password(settings, "connect", CONNECT_USERS[0])
    return None


def flink_login(settings: Settings) -> tuple[str, str] | None:
    """The user name and password for Flink's REST API and the SQL Gateway (through their web
    guards), or None for none."""
    if settings.secure:
        return FLINK_USERS[0], login_password(settings, "flink", FLINK_USERS[0])
    return None


def guard_login_file(settings: Settings) -> Path | None:
    """The file the web guards read the login they ask for from (secure profile), or None."""
    login = flink_login(settings)
    if login is None:
        return None
    return private_file(secrets_dir(settings) / GUARD_LOGIN_FILE, f"{login[0]}:{login[1]}\n")


def cassandra_bootstrap_password_file(settings: Settings) -> Path:
    """The file holding the only password the local node's default superuser takes (secure
    profile): made once, random, private. The node reads it (BootstrapPasswordAuthenticator, in
    stack/poms/cassandra-auth), so its well-known password, cassandra, is never accepted."""
    path = secrets_dir(settings) / CASSANDRA_BOOTSTRAP_PASSWORD_FILE
    if not path.is_file():
        secrets_dir(settings).mkdir(mode=0o700, parents=True, exist_ok=True)
        private_file(path, secrets.token_urlsafe(24) + "\n")
    return path


def sink_password_file(settings: Settings) -> Path | None:
    """The file the sink connectors read their Cassandra password from, through the worker's
    file config provider: the connector config holds only ``${file:<path>:password}``, which is
    all Connect's REST API shows."""
    login = cassandra_login(settings, "sink")
    if login is None:
        return None
    return private_file(sink_password_path(settings), f"password={login[1]}\n")


SINK_PASSWORD_FILE = "cassandra-sink.properties"


def sink_password_path(settings: Settings) -> Path:
    return secrets_dir(settings) / SINK_PASSWORD_FILE


def sink_password_reference(settings: Settings) -> str:
    """What the connector configs hold instead of the sinks' password: a reference the Connect
    worker resolves from the password file, at the path the worker sees it."""
    folder = settings.connect_secrets_dir or str(secrets_dir(settings))
    return f"${{file:{folder.rstrip('/')}/{SINK_PASSWORD_FILE}:password}}"


def kafka_server_jaas_text(password: str, client_listeners: tuple[str, ...]) -> str:
    """A broker's JAAS sections: SCRAM on each client listener (the broker logs in to itself as
    ``admin`` on them), PLAIN on the controller listener."""
    package = "org.apache.kafka.common.security."
    scram = login_module(package + "scram.ScramLoginModule", username="admin", password=password)
    plain = login_module(package + "plain.PlainLoginModule", username="admin", password=password, user_admin=password)
    sections = [f"{listener}.KafkaServer {{\n{scram}\n}};\n" for listener in client_listeners]
    return "".join(sections) + f"controller.KafkaServer {{\n{plain}\n}};\n"


def kafka_server_jaas(settings: Settings) -> Path:
    """The local broker's JAAS file (its client listener is named after its protocol)."""
    text = kafka_server_jaas_text(login_password(settings, "kafka", "admin"), ("sasl_plaintext",))
    return private_file(secrets_dir(settings) / KAFKA_SERVER_JAAS, text)


def jaas_option(path: Path | None) -> list[str]:
    """The JVM flag that points a process at its JAAS file, if it has one."""
    return [f"-Djava.security.auth.login.config={path}"] if path else []
