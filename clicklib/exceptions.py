"""Every error clicklib raises on purpose, in one place.

Each message names what was wrong, where, and what to do about it. The tree::

    ClicklibError
    ├── SettingsError              a CLICKLIB_* variable holds a value that cannot be used
    ├── InvalidEventError          a message does not match the event schema
    ├── StackError                 the local stack could not be started, checked or stopped
    │   ├── JavaNotFoundError, PortInUseError, DependencyResolutionError, ServiceStartError
    │   └── DiskFullError          the stack's disk is below its refusal bound: no event is taken in
    ├── NotebookError              a notebook of the series failed or a cell ran past its time
    └── PipelineError              the pipeline could not be defined, set up, checked or torn down
        ├── DefinitionError        a SQL script, connector config or the schema is broken
        │   └── TemplateError      ... names a placeholder that settings do not fill
        └── ServiceError           a service refused a request or could not be reached
            ├── KafkaError, CassandraError, ConnectorError, FlinkError, SqlError
"""

from __future__ import annotations


class ClicklibError(Exception):
    """Base of every error clicklib raises on purpose."""


class SettingsError(ClicklibError):
    """A ``CLICKLIB_*`` variable holds a value that cannot be used."""


class InvalidEventError(ClicklibError):
    """A clickstream message does not match the event schema."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid event: {reason}")
        self.reason = reason


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


class DiskFullError(StackError):
    """The local stack's Kafka has too little disk left to keep more events: they are refused
    rather than acknowledged and lost (stack/disk.py)."""


class WorkloadError(ClicklibError):
    """A simulated workload that cannot be placed: it would overlap earlier events or run ahead
    of the clock."""


class NotebookError(ClicklibError):
    """A notebook run by papermill failed, or one of its cells did not finish in time."""


class PipelineError(ClicklibError):
    """The pipeline could not be defined, set up, checked or torn down."""


class DefinitionError(PipelineError):
    """A SQL script, a connector config or the Cassandra schema is broken."""


class TemplateError(DefinitionError):
    """A SQL script or connector config names a placeholder that settings do not fill."""


class ServiceError(PipelineError):
    """A service refused a request or could not be reached; names the service and its address."""

    service = "a service"

    def __init__(self, message: str, address: str = "") -> None:
        super().__init__(message)
        self.address = address


class KafkaError(ServiceError):
    """Kafka refused a request or could not be reached."""

    service = "kafka"


class CassandraError(ServiceError):
    """Cassandra refused a request or could not be reached."""

    service = "cassandra"


class ConnectorError(ServiceError):
    """Kafka Connect refused a connector, a connector failed, or Connect could not be reached."""

    service = "connect"


class FlinkError(ServiceError):
    """Flink's REST API refused a request or could not be reached."""

    service = "flink"


class SqlError(ServiceError):
    """The SQL Gateway refused or failed a statement, or could not be reached."""

    service = "sql-gateway"


class SchemaRegistryError(ServiceError):
    """The schema registry refused a request or could not be reached."""

    service = "schema-registry"


class IncompatibleSchemaError(SchemaRegistryError):
    """A schema file would break the subject it is registered under (its compatibility rule)."""


class LakeError(PipelineError):
    """The Parquet lake cannot be read, or holds no clean events where settings say it is."""


class BatchError(ClicklibError):
    """Spark could not start, or a batch question was asked of data it cannot answer."""
