"""No web page reaches a service of the stack: what a page in the user's browser can send to
every HTTP port, the guards' public ones, the services' own ports behind them, Connect, the
registry and the collector's /metrics.

The attacker is a page served by another local HTTP server under a name of its own
(``attacker.example``, resolved to 127.0.0.1 by Chromium's host rules, as a DNS-rebinding page's
name is). It sends what a page can send without a preflight: multipart and text/plain POSTs in
``no-cors`` mode, and reads with ``fetch``. A rebound page's requests carry its own name as
``Host``; those are sent from a raw socket. The secure session runs this module too.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from clicklib import secrets
from clicklib.settings import REGISTRY_API_PATH, Settings
from clicklib.stack import configs
from clicklib.stack.rest_tls import rest_tls
from tests.browser import CHROMIUM, DevTools

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Chromium (make browser)")

ATTACK = """<!doctype html><title>a page of another site</title><script>
const ports = %(ports)s, marker = %(marker)s, results = {};
async function attempt(name, url, init) {
  try {
    const answer = await fetch(url, init);
    // An opaque answer (no-cors) shows nothing; a readable one is what must not happen.
    results[name] = answer.type === "opaque" ? "sent"
      : "read " + answer.status + " " + (await answer.text()).slice(0, 200);
  } catch (error) {
    results[name] = "failed";
  }
}
async function run() {
  const jobGraph = new FormData();
  jobGraph.append("request", new Blob(['{"jobGraphFileName": "graph.bin"}'], {type: "application/json"}));
  jobGraph.append("graph.bin", new Blob([new Uint8Array([0xac, 0xed, 0x00, 0x05, 0x73, 0x72])]), "graph.bin");
  const connector = JSON.stringify({name: marker, config: {
    "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", topics: "x", file: "/tmp/" + marker}});
  const schema = JSON.stringify({schema: '"string"'});
  for (const port of ports) {
    const base = "http://127.0.0.1:" + port;
    await attempt(port + " POST /jobs", base + "/jobs", {method: "POST", mode: "no-cors", body: jobGraph});
    await attempt(port + " POST /v1/sessions", base + "/v1/sessions", {method: "POST", mode: "no-cors", body: "{}"});
    await attempt(port + " POST /connectors", base + "/connectors", {method: "POST", mode: "no-cors", body: connector});
    await attempt(port + " POST subject", base + "%(registry)s/subjects/" + marker + "/versions",
      {method: "POST", mode: "no-cors", body: schema});
    for (const path of ["/overview", "/v1/info", "/connectors", "%(registry)s/subjects", "/metrics"]) {
      await attempt(port + " GET " + path, base + path, {});
    }
  }
  // The control: the collector's public routes answer any page. Its count shows the page's
  // requests left the browser.
  await attempt("control", "%(collector)s/health", {mode: "no-cors"});
  window.finished = results;
}
run();
</script>"""


def _serve(page: str) -> ThreadingHTTPServer:
    body = page.encode()

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def _http_ports(settings: Settings) -> dict[str, int]:
    ports = settings.ports
    return {
        name: ports[name]
        for name in (
            "flink",
            "flink-backend",
            "sql-gateway",
            "sql-gateway-backend",
            "connect",
            "schema-registry",
            "collector",
        )
    }


def _health_requests(settings: Settings) -> int:
    """How many requests the collector's /health has answered, whatever their status."""
    text = requests.get(f"{settings.collector_url}/metrics", timeout=10).text
    prefix = 'clicklib_collector_requests_total{endpoint="/health",'
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def _log(settings: Settings, name: str) -> str:
    path = configs.log_dir(settings) / f"{name}.log"
    return path.read_text(errors="replace") if path.is_file() else ""


def test_a_foreign_page_creates_runs_and_reads_nothing_on_any_port(live_stack: Settings, tmp_path: Path):
    settings = live_stack
    marker = f"attacker{uuid.uuid4().hex[:10]}"
    ports = _http_ports(settings)
    before = {name: len(_log(settings, name)) for name in ("flink-jobmanager", "sql-gateway")}
    opened_before = _log(settings, "sql-gateway").count("is opened")
    health_before = _health_requests(settings)
    page = ATTACK % {
        "ports": json.dumps(sorted(ports.values())),
        "marker": json.dumps(marker),
        "registry": REGISTRY_API_PATH,
        "collector": settings.collector_url,
    }
    attacker = _serve(page)
    browser = DevTools(tmp_path / "profile", "--host-resolver-rules=MAP attacker.example 127.0.0.1")
    try:
        browser.open(f"http://attacker.example:{attacker.server_address[1]}/")
        results = browser.wait_until("window.finished", timeout=240)
    finally:
        browser.close()
        attacker.shutdown()
    # The page ran and its requests left the browser: the collector counted the control.
    assert results["control"] == "sent"
    assert _health_requests(settings) > health_before
    readable = {name: outcome for name, outcome in results.items() if outcome.startswith("read")}
    assert not readable, f"a foreign page read answers: {readable}"

    auth = secrets.connect_login(settings)
    connectors = requests.get(f"{settings.connect_url}/connectors", auth=auth, timeout=10).json()
    assert marker not in connectors
    assert not Path(f"/tmp/{marker}").exists()
    subjects = requests.get(f"{settings.schema_registry_url}/subjects", timeout=10).json()
    assert not [s for s in subjects if marker in s]
    flink_auth = secrets.flink_login(settings)
    jobs = requests.get(f"{settings.flink_rest_url}/jobs/overview", auth=flink_auth, timeout=10).json()["jobs"]
    assert not [job for job in jobs if marker in job["name"]]
    # Nothing reached Flink's or the gateway's handlers: no job graph was deserialized, no
    # session opened (the stack's own probes open none while the test runs).
    jobmanager = _log(settings, "flink-jobmanager")[before["flink-jobmanager"] :]
    assert "deserializ" not in jobmanager.lower() and "ExecutionPlan" not in jobmanager
    assert _log(settings, "sql-gateway").count("is opened") == opened_before


def _raw_answer(port: int, request: bytes) -> bytes:
    """The first bytes a port answers to ``request`` sent as it is ("" if it closes at once)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        try:
            while len(received) < 4096 and (chunk := sock.recv(4096)):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return received


def _tls_answer_without_key(settings: Settings, port: int, path: str) -> bytes:
    """What a port answers over TLS to a client that trusts its certificate but has no key."""
    anonymous = ssl.create_default_context(cafile=str(rest_tls(settings).certificate))
    received = b""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        with anonymous.wrap_socket(sock, server_hostname="127.0.0.1") as tls_sock:
            tls_sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            while chunk := tls_sock.recv(4096):
                received += chunk
    except (ssl.SSLError, ConnectionError, TimeoutError):
        pass
    return received


@pytest.mark.parametrize(
    ("port_name", "path"),
    [
        ("flink", "/overview"),
        ("flink-backend", "/overview"),
        ("sql-gateway", "/v1/info"),
        ("sql-gateway-backend", "/v1/info"),
        ("connect", "/connectors"),
        ("schema-registry", REGISTRY_API_PATH + "/subjects"),
        ("collector", "/metrics"),
    ],
)
def test_a_rebound_page_gets_no_answer_on_any_port(live_stack: Settings, port_name: str, path: str):
    # After DNS rebinding the page's own name points at 127.0.0.1, and its requests carry that name.
    port = live_stack.ports[port_name]
    answer = _raw_answer(
        port, f"GET {path} HTTP/1.1\r\nHost: rebind.example:{port}\r\nConnection: close\r\n\r\n".encode()
    )
    status = answer.split(b"\r\n", 1)[0]
    if port_name.endswith("-backend"):
        # The service's own port speaks TLS only and wants the stack's key. To plain HTTP, Flink's
        # REST server answers only a bodiless redirect to https (its RedirectingSslHandler)...
        if answer.startswith(b"HTTP/"):
            head, _, body = answer.partition(b"\r\n\r\n")
            assert status.startswith(b"HTTP/1.1 301") and b"location: https://" in head.lower(), answer[:300]
            assert body == b"", answer[:300]
        # ...which a page cannot follow: over TLS, a client without the stack's key gets nothing.
        assert _tls_answer_without_key(live_stack, port, path) == b""
    else:
        assert status.startswith(b"HTTP/1.1 403") or status.startswith(b"HTTP/1.0 403"), answer[:300]
        assert b"does not name this machine" in answer
