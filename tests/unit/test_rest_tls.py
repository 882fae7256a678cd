"""The backend ports' TLS files: private, made once, and readable by Java as well as Python."""

import shutil
import stat
import subprocess

import pytest

from clicklib.settings import Settings
from clicklib.stack import configs, rest_tls


def test_the_files_are_private_and_kept_across_calls(tmp_path):
    settings = Settings(home=tmp_path)
    tls = rest_tls.ensure_rest_tls(settings)
    assert stat.S_IMODE(tls.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(tls.folder.parent.stat().st_mode) == 0o700
    for path in tls.folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    first = tls.identity.read_bytes()
    assert rest_tls.ensure_rest_tls(settings).identity.read_bytes() == first
    # A set missing a file is made anew, whole: a key never goes with another's certificate.
    tls.truststore.unlink()
    assert rest_tls.ensure_rest_tls(settings).identity.read_bytes() != first


@pytest.mark.skipif(shutil.which("keytool") is None, reason="needs the JDK's keytool")
def test_java_opens_the_stores_with_their_password(tmp_path):
    tls = rest_tls.ensure_rest_tls(Settings(home=tmp_path))
    for store, kind in ((tls.keystore, "PrivateKeyEntry"), (tls.truststore, "trustedCertEntry")):
        listed = subprocess.run(
            [
                "keytool",
                "-list",
                "-storetype",
                "PKCS12",
                "-keystore",
                str(store),
                "-storepass:file",
                str(tls.store_password_file),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0 and kind in listed.stdout, listed.stdout + listed.stderr


def test_flinks_rest_api_and_the_gateway_ask_clients_for_the_stacks_certificate(tmp_path):
    settings = Settings(home=tmp_path)
    text = configs.flink_config(settings).read_text()
    tls = rest_tls.rest_tls(settings)
    assert "security.ssl.rest.enabled: true" in text
    assert "security.ssl.rest.authentication-enabled: true" in text
    assert f"security.ssl.rest.truststore: {tls.truststore}" in text
    assert stat.S_IMODE(configs.flink_config(settings).stat().st_mode) == 0o600
