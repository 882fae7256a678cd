"""What the clients promise without a running service: failures become clicklib errors that
name the service and its address, and a bad setting stops the CLI with a message, not a traceback."""

import socket

import pytest
from click.testing import CliRunner

from clicklib.cli import main
from clicklib.connect import ConnectClient
from clicklib.exceptions import ConnectorError, FlinkError, PipelineError, ServiceError, SqlError
from clicklib.flink import FlinkClient
from clicklib.sql_gateway import SqlGatewayClient


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("client", "error", "service", "variable", "call"),
    [
        (FlinkClient, FlinkError, "flink", "CLICKLIB_FLINK_REST_URL", lambda c: c.jobs()),
        (ConnectClient, ConnectorError, "connect", "CLICKLIB_CONNECT_URL", lambda c: c.names()),
        (SqlGatewayClient, SqlError, "sql-gateway", "CLICKLIB_SQL_GATEWAY_URL", lambda c: c.session()),
    ],
)
def test_an_unreachable_service_is_a_clicklib_error_naming_it(client, error, service, variable, call):
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(error) as caught:
        call(client(url, timeout=2))
    assert isinstance(caught.value, ServiceError) and isinstance(caught.value, PipelineError)
    assert caught.value.address == url
    assert f"{service} at {url} is not reachable" in str(caught.value)
    assert variable in str(caught.value)


def test_an_answer_that_is_not_json_is_named(tmp_path):
    # A plain HTTP server that answers every request with HTML, like a proxy's error page.
    import http.server
    import threading

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not flink</html>")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FlinkError, match="with something that is not JSON: '<html>not flink</html>'"):
            FlinkClient(f"http://127.0.0.1:{server.server_port}", timeout=5).jobs()
    finally:
        server.shutdown()


@pytest.mark.parametrize("command", [["stack", "status"], ["pipeline", "status"], ["stack", "up"]])
def test_a_bad_setting_stops_the_cli_naming_the_variable(command, monkeypatch):
    monkeypatch.setenv("CLICKLIB_IDLE_TIMEOUT", "half a minute")
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1
    assert "CLICKLIB_IDLE_TIMEOUT='half a minute' is not a duration" in result.output
    assert "Traceback" not in result.output


def test_connect_wanting_a_login_is_named_and_the_password_is_not_shown():
    import base64
    import http.server
    import threading

    seen: list[str] = []

    class Guarded(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization", ""))
            expected = "Basic " + base64.b64encode(b"clicklib:right-pw").decode()
            if self.headers.get("Authorization") == expected:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"[]")
            else:
                self.send_response(401)
                self.end_headers()
                self.wfile.write(b'{"error_code":401,"message":"User cannot access the resource."}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Guarded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(ConnectorError, match="wants a login") as anonymous:
            ConnectClient(url, timeout=5).names()
        assert "CLICKLIB_CONNECT_USERNAME" in str(anonymous.value)
        with pytest.raises(ConnectorError, match="refused the login given") as wrong:
            ConnectClient(url, timeout=5, auth=("clicklib", "wrong-pw")).names()
        assert "wrong-pw" not in str(wrong.value)
        assert ConnectClient(url, timeout=5, auth=("clicklib", "right-pw")).names() == []
        assert seen[0] == "" and seen[-1].startswith("Basic ")
    finally:
        server.shutdown()
