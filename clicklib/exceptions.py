"""Every error clicklib raises on purpose, in one place.

Each message names what was wrong, where, and what to do about it.
"""

from __future__ import annotations


class ClicklibError(Exception):
    """Base of every error clicklib raises on purpose."""


class SettingsError(ClicklibError):
    """A ``CLICKLIB_*`` variable holds a value that cannot be used."""


class StackError(ClicklibError):
    """The local stack could not be started, checked or stopped."""


class JavaNotFoundError(StackError):
    """No usable Java (17 or newer) was found."""


class PortInUseError(StackError):
    """A port the stack needs is already bound by another process."""

    def __init__(self, message: str, port: int, service: str) -> None:
        super().__init__(message)
        self.port = port
        self.service = service


class DependencyResolutionError(StackError):
    """Maven (or pip, for Flink) could not fetch an artifact."""


class ServiceStartError(StackError):
    """A service exited or did not become healthy in time."""

    def __init__(self, message: str, service: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.service = service
        self.log_tail = log_tail


class SqlError(ClicklibError):
    """The SQL Gateway refused or failed a statement, or a SQL script is broken."""


class InvalidEventError(ClicklibError):
    """A clickstream message does not match the event schema."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid event: {reason}")
        self.reason = reason


class PipelineError(ClicklibError):
    """The pipeline could not be set up, checked or torn down."""


class TemplateError(PipelineError):
    """A SQL script or connector config names a placeholder that settings do not fill."""


class ConnectorError(PipelineError):
    """Kafka Connect refused a connector or a connector failed."""


class CassandraError(ClicklibError):
    """Cassandra refused a request or could not be reached."""
