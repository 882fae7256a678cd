"""clicklib: a clickstream pipeline on Kafka, Flink SQL, Kafka Connect and Cassandra.

``Pipeline`` is the one entry point: ``Pipeline().up()``, ``.status()``, ``.wait_settled()``,
``.down()``, with its ``definition`` and one client per service (``kafka``, ``cassandra``,
``connect``, ``flink``, ``sql_gateway``) for every other step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clicklib.settings import Settings, get_settings

if TYPE_CHECKING:
    from clicklib.pipeline import Pipeline

__all__ = ["Pipeline", "Settings", "get_settings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The pipeline pulls in pandas and the service clients; `clicklib stack` does not need them.
    if name == "Pipeline":
        from clicklib.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'clicklib' has no attribute {name!r}")
