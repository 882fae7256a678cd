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

In the secure profile the guard also asks every request for the stack's login (HTTP Basic,
``--login-file``): Flink and the SQL Gateway have no login of their own.

The guarded service's own port speaks TLS and takes only clients holding the stack's key
(rest_tls.py), so a page cannot go around the guard; the guard is given that key with
``--backend-identity`` and ``--backend-trust``.

It uses the standard library only, so docker-compose runs the same file in a plain Python
image: ``python web_guard.py --listen 0.0.0.0:8081 --backend flink-jobmanager:8081``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import http.client
import ipaddress
import os
import re
import ssl
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


AUTHORITY = re.compile(r"(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
DIGITS = re.compile(r"[0-9]+")
# An origin-form request target: a path and query of visible ASCII, nothing for another server.
PATH = re.compile(r"/[\x21-\x7e]*")
HEX_DIGITS = re.compile(r"[0-9A-Fa-f]+")
# Flink's own limit on a request body (rest.server.max-content-length).
MAX_BODY = 100 * 1024 * 1024


def login_matches(authorizations: list[str], login: tuple[str, str]) -> bool:
    """Whether the Authorization headers are exactly one HTTP Basic login equal to ``login``."""
    if len(authorizations) != 1:
        return False
    scheme, _, encoded = authorizations[0].strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, colon, password = given.partition(b":")
    # Both compared in full whatever the first holds: the time taken tells nothing.
    same_user = hmac.compare_digest(user, login[0].encode())
    same_password = hmac.compare_digest(password, login[1].encode())
    return bool(colon) and same_user and same_password


def read_login(path: str) -> tuple[str, str]:
    """The ``user:password`` in a file only its owner may read."""
    mode = os.stat(path).st_mode
    if mode & 0o077:
        raise SystemExit(f"the login file {path} may be read by other users (mode {mode & 0o777:o}); chmod 600 it")
    with open(path, encoding="utf-8") as handle:
        user, colon, password = handle.read().strip().partition(":")
    if not (user and colon and password):
        raise SystemExit(f"the login file {path} does not hold user:password")
    return user, password


class BadRequest(Exception):
    """A request the guard cannot frame safely; its message says what was wrong."""


def refusal(hosts: list[str], origins: list[str], fetch_site: str | None = None) -> str:
    """Why a request must not reach the service, or "" when it may.

    ``hosts`` and ``origins`` are every value of the Host and Origin headers; ``fetch_site`` the
    Sec-Fetch-Site header, which browsers send with every request.
    """
    if len(hosts) != 1 or len(origins) > 1:
        return "a request needs exactly one Host header and at most one Origin header"
    authority = AUTHORITY.fullmatch(hosts[0].strip())
    if authority is None or not is_loopback_name(authority["host"]):
        # A browser always sends Host; a DNS-rebinding page sends its own name there.
        return f"the Host header {hosts[0]!r} does not name this machine; use http://127.0.0.1 or http://localhost"
    if origins:
        parts = urlsplit(origins[0])
        # Only the page this service serves itself (its web UI): a page of another port on this
        # machine is another origin, a notebook or a dev server included.
        if parts.scheme != "http" or parts.netloc.lower() != hosts[0].strip().lower():
            return f"requests from web pages of {origins[0]!r} are not served; only this service's own pages may call"
    if fetch_site not in (None, "same-origin", "none"):
        # A page's GET (an image, a form, a no-cors fetch) carries no Origin, but this.
        return f"requests a web page of another site makes (Sec-Fetch-Site: {fetch_site}) are not served"
    return ""


def response_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The service's headers without the hop-by-hop, framing, cross-origin and server ones."""
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in HOP_BY_HOP
        and name.lower() not in ("content-length", "server", "date")
        and not name.lower().startswith("access-control-")
    ]


class GuardHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A client that sends nothing for this long is dropped, so no idle or slow one holds a thread.
    timeout = 60
    backend: tuple[str, int] = ("127.0.0.1", 0)
    label = "the service"
    backend_timeout = 300.0
    # With mutual TLS to the service (stack/rest_tls.py): the context holding the client key.
    backend_tls: ssl.SSLContext | None = None
    # The secure profile's (user, password), which every request must present.
    login: tuple[str, str] | None = None

    def _refuse(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        # The connection is closed after a refusal: what the client sent after the headers (its
        # body) must never be read as a request of its own.
        self.close_connection = True
        body = (reason + "\n").encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_chunked(self) -> bytes:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip()
            if not HEX_DIGITS.fullmatch(line.decode("latin-1")):
                raise BadRequest(f"a chunk size {line[:20]!r} is not a hexadecimal number")
            size = int(line, 16)
            if size == 0:
                # Trailers, if any, end with an empty line.
                while self.rfile.readline(8192).strip():
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise BadRequest(f"the request body is over {MAX_BODY // 2**20} MiB")
            part = self.rfile.read(size)
            if len(part) != size or self.rfile.readline(8) not in (b"\r\n", b"\n"):
                raise BadRequest("a chunk is shorter than its size says")
            parts.append(part)

    def _request_body(self) -> bytes | None:
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings and lengths:
            raise BadRequest("a request may not have both Content-Length and Transfer-Encoding")
        if encodings:
            if [e.strip().lower() for e in encodings] != ["chunked"]:
                raise BadRequest(f"Transfer-Encoding {', '.join(encodings)!r} is not served; use chunked")
            return self._read_chunked()
        if not lengths:
            return None
        if len(lengths) > 1 or not DIGITS.fullmatch(lengths[0].strip()):
            raise BadRequest(f"Content-Length {', '.join(lengths)!r} is not one whole number")
        length = int(lengths[0])
        if length > MAX_BODY:
            raise BadRequest(f"the request body is over {MAX_BODY // 2**20} MiB")
        body = self.rfile.read(length)
        if len(body) != length:
            raise BadRequest("the request body is shorter than its Content-Length")
        return body

    def _forward(self) -> None:
        reason = refusal(
            self.headers.get_all("Host") or [], self.headers.get_all("Origin") or [], self.headers.get("Sec-Fetch-Site")
        )
        if not reason and not PATH.fullmatch(self.path):
            reason = f"the request target {self.path[:80]!r} is not a path on this service"
        if reason:
            self.log_message("refused %s %s: %s", self.command, self.path.split("?")[0][:200], reason)
            self._refuse(403, reason)
            return
        if self.login is not None and not login_matches(self.headers.get_all("Authorization") or [], self.login):
            given = "a wrong login" if self.headers.get("Authorization") else "no login"
            self.log_message("refused %s %s: %s", self.command, self.path.split("?")[0][:200], given)
            challenge = ("WWW-Authenticate", f'Basic realm="{self.label}", charset="UTF-8"')
            self._refuse(401, f"{self.label} takes only the stack's login, and this request has {given}", (challenge,))
            return
        try:
            body = self._request_body()
        except BadRequest as exc:
            self._refuse(400, str(exc))
            return
        # The login is the guard's: the service neither needs nor logs it.
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in HOP_BY_HOP and name.lower() != "authorization"
        }
        headers.pop("Content-Length", None)
        if body is not None:
            headers["Content-Length"] = str(len(body))
        if self.backend_tls is None:
            backend = http.client.HTTPConnection(*self.backend, timeout=self.backend_timeout)
        else:
            backend = http.client.HTTPSConnection(*self.backend, timeout=self.backend_timeout, context=self.backend_tls)
        try:
            try:
                backend.request(self.command, self.path, body=body, headers=headers)
                answer = backend.getresponse()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._refuse(502, f"{self.label} at {self.backend[0]}:{self.backend[1]} does not answer ({exc})")
                return
            if answer.status < 200:
                self._refuse(502, f"{self.label} answered with an interim status {answer.status} only")
                return
            self._relay(answer)
        except (BrokenPipeError, ConnectionResetError, http.client.HTTPException, OSError):
            # The client went away, or the service broke off mid-answer: nothing more can be said
            # on this connection.
            self.close_connection = True
        finally:
            backend.close()

    def _relay(self, answer: http.client.HTTPResponse) -> None:
        bodiless = self.command == "HEAD" or answer.status in (204, 304)
        # http.client has decoded the service's framing: its length, or chunks (answer.length None).
        sized = answer.length is not None and not answer.chunked
        chunked = not sized and not bodiless and self.request_version != "HTTP/1.0"
        self.send_response(answer.status, answer.reason)
        for name, value in response_headers(answer.getheaders()):
            self.send_header(name, value)
        if bodiless:
            # A HEAD answer's length is that of the body a GET would have had.
            if answer.getheader("Content-Length"):
                self.send_header("Content-Length", answer.getheader("Content-Length"))
        elif sized:
            self.send_header("Content-Length", str(answer.length))
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            # An HTTP/1.0 client: the end of the connection ends the answer.
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if bodiless:
            return
        while chunk := answer.read1(CHUNK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        if sized and answer.length:
            # The service closed before its whole answer: the client's framing is broken too.
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _forward

    def log_message(self, format: str, *args: object) -> None:
        # Only refusals and failures are logged (log_request is silenced below); never bodies.
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def client_tls(identity: str, trusted: str) -> ssl.SSLContext:
    """A TLS client context that presents ``identity`` (key and certificate in one PEM file) and
    trusts only the certificate in ``trusted``."""
    context = ssl.create_default_context(cafile=trusted)
    context.load_cert_chain(identity)
    return context


def serve(
    listen: tuple[str, int],
    backend: tuple[str, int],
    label: str,
    backend_tls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
) -> None:
    """Serve until killed."""
    handler = type(
        "Handler", (GuardHandler,), {"backend": backend, "label": label, "backend_tls": backend_tls, "login": login}
    )
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
    parser.add_argument("--backend-identity", help="PEM file with the key and certificate to present to the backend")
    parser.add_argument("--backend-trust", help="PEM file with the certificate the backend must present")
    parser.add_argument("--login-file", help="file (mode 600) holding the user:password every request must present")
    # The local stack adds -Dclicklib.* markers so that it can find its processes; they are not options.
    options, _markers = parser.parse_known_args(argv)
    if bool(options.backend_identity) != bool(options.backend_trust):
        parser.error("--backend-identity and --backend-trust go together")
    tls = client_tls(options.backend_identity, options.backend_trust) if options.backend_identity else None
    login = read_login(options.login_file) if options.login_file else None
    serve(options.listen, options.backend, options.label, tls, login)


if __name__ == "__main__":
    main()
