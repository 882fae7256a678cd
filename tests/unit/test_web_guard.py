"""The web guard's rules, and the guard forwarding to a small HTTP server that answers like Flink."""

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clicklib.stack import web_guard


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8081", "localhost:8081", "LOCALHOST", "[::1]:8081", "127.3.2.1:9", "ui.localhost:8081", "localhost."],
)
def test_a_request_to_a_loopback_name_passes(host):
    assert web_guard.refusal(host, None) == ""


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "attacker.example:8081",
        "127.0.0.1.attacker.example",
        "localhost.attacker.example:8081",
        "10.0.0.5:8081",
        "[2001:db8::1]:8081",
    ],
)
def test_a_request_to_another_name_is_refused_and_told_what_to_use(host):
    # DNS rebinding points the attacker's own name at 127.0.0.1; the browser still sends that name.
    reason = web_guard.refusal(host, None)
    assert "does not name this machine" in reason and "http://127.0.0.1" in reason


@pytest.mark.parametrize("origin", ["http://attacker.example", "null", "file://", "http://127.0.0.1.nip.io:8081"])
def test_a_request_from_a_foreign_page_is_refused(origin):
    assert "are not served" in web_guard.refusal("127.0.0.1:8082", origin)


@pytest.mark.parametrize("origin", ["http://localhost:8081", "http://127.0.0.1:8888", "https://[::1]"])
def test_a_request_from_a_page_on_this_machine_passes(origin):
    assert web_guard.refusal("localhost:8081", origin) == ""


def test_cross_origin_and_hop_by_hop_headers_are_dropped_from_answers():
    kept = web_guard.response_headers(
        [
            ("Content-Type", "application/json"),
            ("Access-Control-Allow-Origin", "*"),
            ("access-control-allow-methods", "GET, POST"),
            ("Connection", "keep-alive"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "2"),
        ]
    )
    assert kept == [("Content-Type", "application/json"), ("Content-Length", "2")]


class FlinkLike(BaseHTTPRequestHandler):
    """Answers as Flink does: Access-Control-Allow-Origin on everything, chunked log files."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/log":
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"first line\n", b"x" * 100_000, b"\nlast line\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self._json({"path": self.path, "host": self.headers["Host"]})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self._json({"body": self.rfile.read(length).decode(), "length": length})

    def _json(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def guarded():
    backend = ThreadingHTTPServer(("127.0.0.1", 0), FlinkLike)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    handler = type("Handler", (web_guard.GuardHandler,), {"backend": backend.server_address, "label": "Flink"})
    guard = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=guard.serve_forever, daemon=True).start()
    yield guard.server_address[1], backend
    guard.shutdown()
    backend.shutdown()


def _request(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer, answer.read()
    finally:
        connection.close()


def test_the_guard_forwards_requests_and_answers_without_the_cross_origin_header(guarded):
    port, _ = guarded
    answer, body = _request(port, "GET", "/overview?x=1")
    assert answer.status == 200 and answer.getheader("Access-Control-Allow-Origin") is None
    assert json.loads(body)["path"] == "/overview?x=1"
    answer, body = _request(port, "POST", "/v1/sessions", body=b'{"a": 1}', headers={"Origin": "http://localhost:1"})
    assert answer.status == 200 and json.loads(body) == {"body": '{"a": 1}', "length": 8}


def test_the_guard_passes_a_chunked_body_both_ways(guarded):
    port, _ = guarded
    answer, body = _request(port, "POST", "/v1/sessions", body=iter([b"ab", b"cd"]))
    assert json.loads(body) == {"body": "abcd", "length": 4}
    answer, body = _request(port, "GET", "/log")
    assert answer.status == 200 and body == b"first line\n" + b"x" * 100_000 + b"\nlast line\n"
    assert answer.getheader("Access-Control-Allow-Origin") is None


def test_the_guard_refuses_a_foreign_page_before_the_service_sees_it(guarded):
    port, _ = guarded
    answer, body = _request(port, "POST", "/v1/sessions", body=b"{}", headers={"Origin": "http://attacker.example"})
    assert answer.status == 403 and b"are not served" in body
    answer, body = _request(port, "GET", "/overview", headers={"Host": "attacker.example:8081"})
    assert answer.status == 403 and b"does not name this machine" in body


def test_a_guarded_service_that_is_down_is_named_in_a_502(guarded):
    port, backend = guarded
    backend.shutdown()
    backend.server_close()
    answer, body = _request(port, "GET", "/overview")
    assert answer.status == 502 and b"Flink at 127.0.0.1:" in body and b"does not answer" in body
