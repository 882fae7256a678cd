"""Mutual TLS between the web guards and the services they guard.

Flink's REST API and the SQL Gateway run what they are sent: a job graph (Java
deserialization) or SQL that reads and writes files. The web guards own their public ports,
but the services themselves must listen somewhere, and a port on 127.0.0.1 is reachable from
any web page in the user's browser and from every other local user. So their backend ports
speak TLS and ask every client for a certificate (``security.ssl.rest.authentication-enabled``):

- a web page cannot complete the handshake: it has no client key, and a browser neither sends
  one nor trusts the stack's self-signed certificate, so its bytes never reach Flink's HTTP
  layer, whatever Host, Origin or body it sends;
- another local user cannot either: the key is in ``<home>/secrets/rest-tls/``, a folder of
  mode 0700 holding files of mode 0600.

The guards, the stack's health probes and the SQL Gateway (which submits jobs to the
JobManager) hold the key. One self-signed certificate serves as the server's and the clients'
identity and as the only trusted one, as Flink's documentation suggests for internal
connectivity; it is made on the first ``stack up`` and kept.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from clicklib.secrets import private_file, secrets_dir
from clicklib.settings import Settings

FOLDER = "rest-tls"
# Cassandra's storage port (secure profile) has an identity of its own: the Flink JVMs hold the
# one above, and a job must not be able to speak to Cassandra as a node.
CASSANDRA_FOLDER = "cassandra-tls"
# The certificate's life: long, because it never leaves this machine and is made afresh only
# when its files are removed.
VALID_DAYS = 3650


@dataclass(frozen=True)
class RestTls:
    """The files of the backend ports' TLS: PEM for Python, PKCS12 for the JVMs."""

    folder: Path

    @property
    def certificate(self) -> Path:
        """The certificate alone: what clients trust."""
        return self.folder / "certificate.pem"

    @property
    def identity(self) -> Path:
        """The private key and the certificate in one PEM file: what a client presents."""
        return self.folder / "identity.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "keystore.p12"

    @property
    def truststore(self) -> Path:
        return self.folder / "truststore.p12"

    @property
    def store_password_file(self) -> Path:
        return self.folder / "store-password"

    def store_password(self) -> str:
        """The PKCS12 stores' password, which Java requires. The stores are protected by their
        files' mode; the password is random so that it is no more guessable than the key."""
        return self.store_password_file.read_text().strip()

    def complete(self) -> bool:
        return all(
            path.is_file()
            for path in (self.certificate, self.identity, self.keystore, self.truststore, self.store_password_file)
        )


def rest_tls(settings: Settings, folder: str = FOLDER) -> RestTls:
    return RestTls(secrets_dir(settings) / folder)


def ensure_rest_tls(settings: Settings, folder: str = FOLDER) -> RestTls:
    """The stack's REST TLS files (or another identity's, in ``folder``), made on first use (a
    set missing any file is made anew)."""
    tls = rest_tls(settings, folder)
    if tls.complete():
        return tls
    secrets_dir(settings).mkdir(mode=0o700, parents=True, exist_ok=True)
    # Imported here: only `stack up` makes certificates, and the library loads slowly.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"clicklib stack {settings.home}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        # The backends listen on a loopback address only; clients check the name they dialled.
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                    *(
                        [x509.IPAddress(ipaddress.ip_address(settings.code_host))]
                        if _is_ip(settings.code_host) and settings.code_host not in ("127.0.0.1", "::1")
                        else []
                    ),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    password = secrets.token_urlsafe(24)
    encryption = serialization.BestAvailableEncryption(password.encode())
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    private_file(tls.store_password_file, password + "\n")
    private_file(tls.certificate, certificate_pem)
    private_file(tls.identity, key_pem + certificate_pem)
    private_file(tls.keystore, pkcs12.serialize_key_and_certificates(b"clicklib", key, certificate, None, encryption))
    private_file(
        tls.truststore,
        pkcs12.serialize_java_truststore([pkcs12.PKCS12Certificate(certificate, b"clicklib")], encryption),
    )
    return tls


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def flink_options(settings: Settings) -> str:
    """Flink configuration lines that put its REST API, the SQL Gateway and its own cluster
    ports behind mutual TLS.

    The SQL Gateway reads the same file: its endpoint serves TLS and its client to the JobManager
    presents the key. Flink masks options named like *password in its logs and REST answers.
    """
    tls = ensure_rest_tls(settings)
    password = json.dumps(tls.store_password())  # a YAML string, whatever characters it holds
    return f"""\
# The backend ports speak TLS and take only clients that present the stack's key (rest_tls.py):
# no web page and no other local user can reach Flink's REST handlers or the SQL Gateway.
security.ssl.rest.enabled: true
# Flink's default cipher (TLS_RSA_WITH_AES_128_CBC_SHA) needs an RSA key and has no forward
# secrecy; the stack's key is an elliptic curve one.
security.ssl.protocol: TLSv1.2
security.ssl.algorithms: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
security.ssl.rest.authentication-enabled: true
security.ssl.rest.keystore: {tls.keystore}
security.ssl.rest.keystore-type: PKCS12
security.ssl.rest.keystore-password: {password}
security.ssl.rest.key-password: {password}
security.ssl.rest.truststore: {tls.truststore}
security.ssl.rest.truststore-type: PKCS12
security.ssl.rest.truststore-password: {password}
# The same for the JobManager's and TaskManager's own ports (RPC, the blob server, data
# exchange), which any local user can reach too: internal TLS always asks for the key.
security.ssl.internal.enabled: true
security.ssl.internal.keystore: {tls.keystore}
security.ssl.internal.keystore-type: PKCS12
security.ssl.internal.keystore-password: {password}
security.ssl.internal.key-password: {password}
security.ssl.internal.truststore: {tls.truststore}
security.ssl.internal.truststore-type: PKCS12
security.ssl.internal.truststore-password: {password}
"""
