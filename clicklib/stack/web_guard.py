"""A loopback guard in front of Flink's REST API and the SQL Gateway.

Both run code they are sent, and both answer every request with an
``Access-Control-Allow-Origin`` header (Flink has no setting that leaves it out). A web
page in the user's browser can reach 127.0.0.1, and with DNS rebinding its own host name
can point there, so the same-origin rule alone protects nothing. This guard owns the public
port, forwards to the service on its backend port, and:

- refuses a request whose ``Host`` is not a loopback name (a rebound name is not);
- refuses a request whose ``Origin`` is a page not served from this machine (a page may send
  a simple POST, which no preflight stops, to submit SQL);
- drops every ``Access-Control-*`` header from the answers, so no browser hands an answer to
  a page of another origin.

It uses the standard library only, so docker-compose runs the same file in a plain Python
image: ``python web_guard.py --listen 0.0.0.0:8081 --backend jobmanager:8081``.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
CHUNK = 64 * 1024


def is_loopback_name(host: str) -> bool:
    """Whether a host name or address (no port) names this machine's loopback interface."""
    host = host.strip().rstrip(".").lower().removeprefix("[").removesuffix("]")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(authority: str) -> str:
    """The host in a ``Host`` header value (``name:port``, ``[::1]:port``, or a bare name)."""
    authority = authority.strip()
    if authority.startswith("["):
        return authority[: authority.find("]") + 1] if "]" in authority else authority
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def refusal(host: str | None, origin: str | None) -> str:
    """Why a request must not reach the service, or "" when it may."""
    if not host or not is_loopback_name(host_of(host)):
        # A browser always sends Host; a DNS-rebinding page sends its own name there.
        return f"the Host header {host!r} does not name this machine; use http://127.0.0.1 or http://localhost"
    if origin is not None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or not is_loopback_name(parts.hostname):
            return f"requests from web pages of {origin!r} are not served; only pages on this machine may call"
    return ""


def response_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The service's headers without the hop-by-hop and cross-origin ones."""
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in HOP_BY_HOP and not name.lower().startswith("access-control-")
    ]


class GuardHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    backend: tuple[str, int] = ("127.0.0.1", 0)
    label = "the service"
    timeout_seconds = 300.0

    def _refuse(self, status: int, reason: str) -> None:
        body = (reason + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _request_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers, if any, end with an empty line.
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _forward(self) -> None:
        reason = refusal(self.headers.get("Host"), self.headers.get("Origin"))
        if reason:
            self.log_message("refused %s %s: %s", self.command, self.path.split("?")[0], reason)
            self._refuse(403, reason)
            return
        try:
            body = self._request_body()
        except ValueError:
            self._refuse(400, "the request body's chunked encoding is malformed")
            return
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"
        }
        if body is not None:
            headers["Content-Length"] = str(len(body))
        backend = http.client.HTTPConnection(*self.backend, timeout=self.timeout_seconds)
        try:
            backend.request(self.command, self.path, body=body, headers=headers)
            answer = backend.getresponse()
        except OSError as exc:
            backend.close()
            self._refuse(502, f"{self.label} at {self.backend[0]}:{self.backend[1]} does not answer ({exc})")
            return
        try:
            self._relay(answer)
        finally:
            backend.close()

    def _relay(self, answer: http.client.HTTPResponse) -> None:
        self.send_response(answer.status, answer.reason)
        for name, value in response_headers(answer.getheaders()):
            self.send_header(name, value)
        length = answer.getheader("Content-Length")
        sized = length is not None and self.command != "HEAD" and answer.status not in (204, 304)
        if not sized and self.command != "HEAD" and answer.status not in (204, 304):
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD" or answer.status in (204, 304):
            return
        while chunk := answer.read1(CHUNK):
            self.wfile.write(chunk if sized else b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if not sized:
            self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _forward

    def log_message(self, format: str, *args: object) -> None:
        # Only refusals and failures are logged (log_request is silenced below); never bodies.
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def serve(listen: tuple[str, int], backend: tuple[str, int], label: str) -> None:
    """Serve until killed."""
    handler = type("Handler", (GuardHandler,), {"backend": backend, "label": label})
    server = ThreadingHTTPServer(listen, handler)
    server.daemon_threads = True
    sys.stderr.write(f"guarding {label}: {listen[0]}:{listen[1]} -> {backend[0]}:{backend[1]}\n")
    sys.stderr.flush()
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=address, required=True, help="host:port to serve on")
    parser.add_argument("--backend", type=address, required=True, help="host:port of the guarded service")
    parser.add_argument("--label", default="the service", help="the service's name, for error messages")
    # The local stack adds -Dclicklib.* markers so that it can find its processes; they are not options.
    options, _markers = parser.parse_known_args(argv)
    serve(options.listen, options.backend, options.label)


if __name__ == "__main__":
    main()
