import shutil
import subprocess

import pytest

from clicklib import secrets
from clicklib.exceptions import StackError
from clicklib.settings import Settings
from clicklib.stack import jars, services, web_guard


def test_all_services_start_in_phase_order():
    assert services.expand(None) == [
        "kafka",
        "cassandra",
        "connect",
        "collector",
        "schema-registry",
        "flink-jobmanager",
        "flink-taskmanager",
        "flink-guard",
        "sql-gateway",
        "sql-gateway-guard",
    ]


def test_a_service_brings_what_it_needs():
    assert services.expand(["connect"]) == ["kafka", "connect"]
    assert services.expand(["collector"]) == ["kafka", "collector"]
    # The gateway reaches the JobManager on its backend port: Flink's web guard is not needed.
    assert services.expand(["sql-gateway"]) == [
        "flink-jobmanager",
        "flink-taskmanager",
        "sql-gateway",
        "sql-gateway-guard",
    ]
    assert services.expand(["cassandra"]) == ["cassandra"]
    # Its storage is a file of its own: it needs no other service.
    assert services.expand(["schema-registry"]) == ["schema-registry"]


def test_an_unknown_service_is_named():
    with pytest.raises(StackError, match="unknown service zookeeper"):
        services.expand(["zookeeper"])


def test_kraft_cluster_ids_are_22_url_safe_characters():
    ids = {services.new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 22 and "=" not in i and "+" not in i and "/" not in i for i in ids)


MAVEN_FAILURE = """\
[ERROR] Failed to execute goal on project kafka: Could not resolve dependencies for project \
io.clicklib.stack:kafka:pom:0.1.0: Could not find artifact org.apache.kafka:kafka_2.13:jar:9.9.9 in central \
(https://repo.maven.apache.org/maven2) -> [Help 1]
[ERROR] Re-run Maven using the -X switch to enable full debug logging.
"""


def test_maven_failures_name_the_missing_artifact():
    assert jars.missing_artifacts(MAVEN_FAILURE) == ["org.apache.kafka:kafka_2.13:jar:9.9.9"]


@pytest.mark.skipif(shutil.which("java") is None, reason="needs java")
def test_an_argument_file_gives_java_each_argument_as_it_was(tmp_path):
    # Kafka's storage formatter takes the admin password as an argument: it goes in such a file,
    # so that `ps` shows the file's name, not the password.
    echo = tmp_path / "Echo.java"
    echo.write_text(
        "public class Echo { public static void main(String[] a) { for (String s : a) System.out.println(s); } }"
    )
    arguments = ["with space", "back\\slash", 'quo"te', "SCRAM-SHA-256=[name=admin,password=a-b_C]", "$HOME", "-x"]
    argfile = tmp_path / "args"
    argfile.write_text(services.java_argfile([str(echo), *arguments]))
    shown = subprocess.run(["java", f"@{argfile}"], capture_output=True, text=True, timeout=120, check=True)
    assert shown.stdout.splitlines() == arguments


@pytest.mark.parametrize("secure", [False, True])
def test_the_web_guards_ask_for_a_login_in_the_secure_profile_only_and_never_show_it(tmp_path, secure):
    settings = Settings(home=tmp_path, secure=secure)
    if secure:
        secrets.local_credentials(settings, create=True)
    for command in (
        services._flink_guard_command(settings, "java"),
        services._sql_gateway_guard_command(settings, "java"),
    ):
        files = [arg.removeprefix("--login-file=") for arg in command if arg.startswith("--login-file=")]
        if not secure:
            assert files == []
            continue
        login = secrets.flink_login(settings)
        assert login[1] not in " ".join(command)
        # The guard, started with that command, asks for exactly the login clicklib's clients send.
        assert web_guard.read_login(files[0]) == login
