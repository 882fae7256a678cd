"""The web guard's rules, and the guard forwarding to a small HTTP server that answers like Flink."""

import base64
import http.client
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from clicklib.rest import RestClient
from clicklib.settings import Settings
from clicklib.stack import rest_tls, web_guard


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8081", "localhost:8081", "LOCALHOST", "[::1]:8081", "127.3.2.1:9", "ui.localhost:8081", "localhost."],
)
def test_a_request_to_a_loopback_name_passes(host):
    assert web_guard.refusal([host], []) == ""


@pytest.mark.parametrize(
    "host",
    [
        "",
        "attacker.example:8081",
        "127.0.0.1.attacker.example",
        "localhost.attacker.example:8081",
        "localhost:80@attacker.example",
        "10.0.0.5:8081",
        "2130706433",
        "[2001:db8::1]:8081",
    ],
)
def test_a_request_to_another_name_is_refused_and_told_what_to_use(host):
    # DNS rebinding points the attacker's own name at 127.0.0.1; the browser still sends that name.
    reason = web_guard.refusal([host], [])
    assert "does not name this machine" in reason and "http://127.0.0.1" in reason


@pytest.mark.parametrize(
    ("hosts", "origins"),
    [([], []), (["127.0.0.1:8081", "attacker.example"], []), (["127.0.0.1:8081"], ["http://127.0.0.1:8081"] * 2)],
)
def test_a_request_without_one_host_or_with_two_origins_is_refused(hosts, origins):
    assert "exactly one Host header" in web_guard.refusal(hosts, origins)


@pytest.mark.parametrize(
    "origin",
    [
        "http://attacker.example",
        "null",
        "file://",
        "http://127.0.0.1.nip.io:8082",
        # Another port of this machine is another origin: a notebook, a dev server.
        "http://127.0.0.1:8888",
        "http://localhost:8082",
        "https://127.0.0.1:8082",
    ],
)
def test_a_request_from_another_page_than_the_services_own_is_refused(origin):
    assert "are not served" in web_guard.refusal(["127.0.0.1:8082"], [origin])


def test_the_services_own_page_may_call_it():
    assert web_guard.refusal(["localhost:8081"], ["http://localhost:8081"], "same-origin") == ""
    assert web_guard.refusal(["localhost:8081"], [], "none") == ""  # typed into the address bar


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_request_a_page_of_another_site_makes_without_an_origin_is_refused(site):
    # A page's image or form GET carries no Origin; the browser still says where it comes from.
    assert f"Sec-Fetch-Site: {site}" in web_guard.refusal(["127.0.0.1:8081"], [], site)


def test_cross_origin_and_hop_by_hop_headers_are_dropped_from_answers():
    kept = web_guard.response_headers(
        [
            ("Content-Type", "application/json"),
            ("Access-Control-Allow-Origin", "*"),
            ("access-control-allow-methods", "GET, POST"),
            ("Connection", "keep-alive"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "2"),
            ("Location", "/jobs"),
        ]
    )
    # The guard frames the answer itself: the length it sends is the one it counted.
    assert kept == [("Content-Type", "application/json"), ("Location", "/jobs")]


class FlinkLike(BaseHTTPRequestHandler):
    """Answers as Flink does: Access-Control-Allow-Origin on everything, chunked log files."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []  # what reached the service, across its handler instances
    headers_seen: ClassVar[list[list[str]]] = []  # the header names of each GET that reached it

    def do_GET(self):
        FlinkLike.seen.append(f"GET {self.path}")
        FlinkLike.headers_seen.append(list(self.headers.keys()))
        if self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"nine byte")
            self.close_connection = True
            return
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
        FlinkLike.seen.append(f"POST {self.path}")
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
    FlinkLike.seen = []
    backend = ThreadingHTTPServer(("127.0.0.1", 0), FlinkLike)
    threading.Thread(target=backend.serve_forever, args=(0.05,), daemon=True).start()
    handler = type("Handler", (web_guard.GuardHandler,), {"backend": backend.server_address, "label": "Flink"})
    guard = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=guard.serve_forever, args=(0.05,), daemon=True).start()
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
    own = {"Origin": f"http://127.0.0.1:{port}", "Host": f"127.0.0.1:{port}"}
    answer, body = _request(port, "POST", "/v1/sessions", body=b'{"a": 1}', headers=own)
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


def _raw(port: int, data: bytes) -> bytes:
    """What the guard answers to bytes sent as they are, until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_a_refused_requests_body_is_never_read_as_a_request_of_its_own(guarded):
    port, _ = guarded
    smuggled = b"POST /jobs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nEVIL"
    for refused in (b"Origin: http://attacker.example\r\nHost: localhost", b"Host: attacker.example"):
        answer = _raw(
            port,
            b"POST /x HTTP/1.1\r\n%s\r\nContent-Length: %d\r\n\r\n%s" % (refused, len(smuggled), smuggled),
        )
        assert answer.startswith(b"HTTP/1.1 403") and answer.count(b"HTTP/1.1") == 1
    assert FlinkLike.seen == []


@pytest.mark.parametrize(
    ("framing", "complaint"),
    [
        (b"Content-Length: -1", b"is not one whole number"),
        (b"Content-Length: +3", b"is not one whole number"),
        (b"Content-Length: 1000000000000", b"is over 100 MiB"),
        (b"Content-Length: 3\r\nTransfer-Encoding: chunked", b"both Content-Length and Transfer-Encoding"),
        (b"Transfer-Encoding: gzip", b"is not served; use chunked"),
    ],
)
def test_a_body_whose_length_is_unclear_is_refused_and_the_connection_closed(guarded, framing, complaint):
    port, _ = guarded
    answer = _raw(
        port, b"POST /v1/sessions HTTP/1.1\r\nHost: localhost\r\n%s\r\n\r\nabcGET /x HTTP/1.1\r\n\r\n" % framing
    )
    assert answer.startswith(b"HTTP/1.1 400") and complaint in answer and answer.count(b"HTTP/1.1") == 1
    assert FlinkLike.seen == []


@pytest.mark.parametrize("target", [b"http://attacker.example/x", b"*", b"/a\x01b"])
def test_a_request_target_that_is_no_path_here_is_refused(guarded, target):
    port, _ = guarded
    answer = _raw(port, b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target)
    assert answer.startswith(b"HTTP/1.1 403") and b"is not a path on this service" in answer
    assert FlinkLike.seen == []


def test_an_answer_the_service_breaks_off_ends_the_connection(guarded):
    port, _ = guarded
    # Kept open, the client would read the next answer as the rest of this one.
    answer = _raw(
        port, b"GET /short HTTP/1.1\r\nHost: localhost\r\n\r\nGET /overview HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200") and b"Content-Length: 100" in answer
    assert answer.endswith(b"nine byte") and answer.count(b"HTTP/1.1") == 1


@pytest.fixture
def guarded_over_tls(tmp_path):
    """The guard in front of a backend that, like Flink with security.ssl.rest.authentication-enabled,
    speaks TLS and takes only clients presenting the stack's certificate."""
    tls = rest_tls.ensure_rest_tls(Settings(home=tmp_path))
    FlinkLike.seen = []
    backend = ThreadingHTTPServer(("127.0.0.1", 0), FlinkLike)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(tls.identity)
    server_side.load_verify_locations(tls.certificate)
    server_side.verify_mode = ssl.CERT_REQUIRED
    backend.socket = server_side.wrap_socket(backend.socket, server_side=True)
    threading.Thread(target=backend.serve_forever, args=(0.05,), daemon=True).start()
    handler = type(
        "Handler",
        (web_guard.GuardHandler,),
        {
            "backend": backend.server_address,
            "label": "Flink",
            "backend_tls": web_guard.client_tls(str(tls.identity), str(tls.certificate)),
        },
    )
    guard = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=guard.serve_forever, args=(0.05,), daemon=True).start()
    yield guard.server_address[1], backend.server_address[1], tls
    guard.shutdown()
    backend.shutdown()


def test_the_guard_reaches_a_backend_that_asks_for_its_certificate(guarded_over_tls):
    port, _, _ = guarded_over_tls
    answer, body = _request(port, "POST", "/jobs", body=b"graph")
    assert answer.status == 200 and json.loads(body) == {"body": "graph", "length": 5}
    assert FlinkLike.seen == ["POST /jobs"]


def test_without_the_stacks_key_the_backend_port_takes_nothing(guarded_over_tls, tmp_path):
    _, backend_port, tls = guarded_over_tls
    # What a web page can send: plain HTTP. The TLS server reads it as a broken handshake.
    try:
        answer = _raw(backend_port, b"POST /jobs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nEVIL")
    except ConnectionError:
        answer = b""
    assert not answer.startswith(b"HTTP/")
    # TLS without a client key: the handshake fails.
    anonymous = ssl.create_default_context(cafile=str(tls.certificate))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        connection = http.client.HTTPSConnection("127.0.0.1", backend_port, timeout=10, context=anonymous)
        connection.request("POST", "/jobs", body=b"EVIL")
        connection.getresponse().read()
    # Another stack's key is not this one's.
    other = rest_tls.ensure_rest_tls(Settings(home=tmp_path / "other"))
    stranger = web_guard.client_tls(str(other.identity), str(tls.certificate))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        connection = http.client.HTTPSConnection("127.0.0.1", backend_port, timeout=10, context=stranger)
        connection.request("POST", "/jobs", body=b"EVIL")
        connection.getresponse().read()
    assert FlinkLike.seen == []


def test_the_stacks_own_clients_reach_the_backend_whatever_ca_bundle_the_environment_names(
    guarded_over_tls, monkeypatch
):
    # requests lets REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE override a session's trusted
    # certificate; many machines set them, and the stack's certificate is in no such bundle.
    _, backend_port, tls = guarded_over_tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    monkeypatch.setenv("CURL_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    client = RestClient(f"https://127.0.0.1:{backend_port}", 10, tls=(str(tls.identity), str(tls.certificate)))
    try:
        assert client.request("GET", "/overview", "asking for the overview").json()["path"] == "/overview"
    finally:
        client.http.close()


@pytest.fixture
def guarded_with_login():
    """The guard as the secure profile runs it: it asks every request for the stack's login."""
    FlinkLike.seen = []
    backend = ThreadingHTTPServer(("127.0.0.1", 0), FlinkLike)
    threading.Thread(target=backend.serve_forever, args=(0.05,), daemon=True).start()
    handler = type(
        "Handler",
        (web_guard.GuardHandler,),
        {"backend": backend.server_address, "label": "Flink", "login": ("clicklib", "s3cret:with:colons")},
    )
    guard = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=guard.serve_forever, args=(0.05,), daemon=True).start()
    yield guard.server_address[1]
    guard.shutdown()
    backend.shutdown()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        _basic("clicklib", "wrong"),
        _basic("someone", "s3cret:with:colons"),
        _basic("clicklib", "s3cret:with:colon"),
        "Basic !clicklib:s3cret:with:colons",  # not base64
        "Basic " + base64.b64encode(b"clicklib").decode(),  # no colon
        "Bearer " + base64.b64encode(b"clicklib:s3cret:with:colons").decode(),
        base64.b64encode(b"clicklib:s3cret:with:colons").decode(),
    ],
)
def test_with_a_login_the_guard_refuses_a_request_without_the_right_one(guarded_with_login, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer, body = _request(guarded_with_login, "POST", "/jobs", body=b"graph", headers=headers)
    assert answer.status == 401 and b"takes only the stack's login" in body
    assert answer.getheader("WWW-Authenticate", "").startswith("Basic realm=")
    assert FlinkLike.seen == []


def test_with_a_login_two_authorization_headers_are_refused(guarded_with_login):
    right = _basic("clicklib", "s3cret:with:colons")
    raw = _raw(
        guarded_with_login,
        f"GET /overview HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {right}\r\n"
        f"Authorization: {_basic('x', 'y')}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert raw.startswith(b"HTTP/1.1 401") and FlinkLike.seen == []


def test_with_the_right_login_the_request_passes_without_it(guarded_with_login):
    answer, body = _request(
        guarded_with_login, "GET", "/overview", headers={"Authorization": _basic("clicklib", "s3cret:with:colons")}
    )
    assert answer.status == 200 and json.loads(body)["path"] == "/overview"
    assert FlinkLike.seen == ["GET /overview"]
    assert "authorization" not in {name.lower() for name in FlinkLike.headers_seen[-1]}


def test_a_foreign_page_is_refused_before_its_login_is_looked_at(guarded_with_login):
    headers = {"Origin": "http://attacker.example", "Authorization": _basic("clicklib", "s3cret:with:colons")}
    answer, _ = _request(guarded_with_login, "GET", "/overview", headers=headers)
    assert answer.status == 403 and FlinkLike.seen == []


@pytest.mark.parametrize(
    ("mode", "content", "complaint"),
    [(0o640, "u:p\n", "may be read by other users"), (0o600, "no colon\n", "does not hold user:password")],
)
def test_a_login_file_others_may_read_or_without_a_login_is_refused_at_start(tmp_path, mode, content, complaint):
    path = tmp_path / "login"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(SystemExit, match=complaint):
        web_guard.read_login(str(path))


def test_a_private_login_file_is_read_whole_password_colons_included(tmp_path):
    path = tmp_path / "login"
    path.write_text("clicklib:a:b:c\n")
    path.chmod(0o600)
    assert web_guard.read_login(str(path)) == ("clicklib", "a:b:c")
