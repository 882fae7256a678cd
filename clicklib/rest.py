"""What the REST clients (Flink, the SQL Gateway, Kafka Connect) share: one timeout policy,
and every transport failure turned into a clicklib error naming the service and its URL."""

from __future__ import annotations

from typing import Any

import requests

from clicklib.exceptions import ServiceError


class RestClient:
    """A thin client of one service's REST API.

    ``request`` returns the response for any HTTP status (callers decide what a 404 means);
    a connection failure or timeout raises ``error`` saying where the service was expected
    and which setting points at it.
    """

    error: type[ServiceError] = ServiceError
    url_setting = ""  # the CLICKLIB_* variable that holds the URL

    login_settings = ""  # the CLICKLIB_* variables that hold its login, if it takes one

    def __init__(
        self,
        base_url: str,
        timeout: float,
        auth: tuple[str, str] | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        """``tls``, for a service that asks for a client certificate: the PEM file holding the
        client's key and certificate, and the PEM file of the one certificate to trust."""
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        # One connection pool per client, reused by every request it makes.
        self.http = requests.Session()
        self.http.auth = auth
        self.verify: str | bool = True
        if tls is not None:
            self.http.cert, self.verify = tls

    def fail(self, message: str) -> ServiceError:
        return self.error(message, self.base)

    def request(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            # `verify` per request: a session's own is overridden by REQUESTS_CA_BUNDLE or
            # CURL_CA_BUNDLE when set (psf/requests#3829), and the stack's certificate is in no
            # system bundle.
            response = self.http.request(
                method, f"{self.base}{path}", timeout=self.timeout, verify=self.verify, **kwargs
            )
        except requests.RequestException as exc:
            raise self.fail(
                f"{self.error.service} at {self.base} is not reachable while {what} ({_why(exc)}); "
                f"start it with `clicklib stack up` or set {self.url_setting}"
            ) from exc
        if response.status_code == 401:
            # The body may echo the request; the reason is all the user needs.
            given = "refused the login given" if self.http.auth else "wants a login"
            raise self.fail(
                f"{self.error.service} at {self.base} {given} while {what} (HTTP 401); "
                f"check {self.login_settings or 'its login settings'}, or CLICKLIB_SECURE=1 for the secure profile"
            )
        return response

    def json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """The JSON body of a successful request; an HTTP error or a body that is not JSON raises."""
        response = self.request(method, path, what, **kwargs)
        if response.status_code >= 400:
            raise self.fail(f"{self.error.service} at {self.base} refused {what}: {self.error_text(response)}")
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise self.fail(
                f"{self.error.service} at {self.base} answered {what} with something that is not JSON: "
                f"{response.text[:200]!r}"
            ) from None

    def error_text(self, response: requests.Response) -> str:
        """The service's own words for a failed request."""
        try:
            body = response.json()
        except ValueError:
            return f"HTTP {response.status_code}: {response.text[:500]}"
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])[:2000]
        if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
            # Flink's REST errors carry a whole Java stack trace: its first line says what went wrong.
            return str(body["errors"][0]).strip().splitlines()[0][:500]
        return f"HTTP {response.status_code}: {str(body)[:500]}"

    def close(self) -> None:
        self.http.close()


def _why(exc: requests.RequestException) -> str:
    """A short reason for a failed request, without urllib3's nesting."""
    if isinstance(exc, requests.ConnectionError):
        return "connection refused" if "refused" in str(exc).lower() else "no connection"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__
