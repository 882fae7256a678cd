"""The local stack: real Kafka, Cassandra, Kafka Connect and Flink as background processes.

``up`` resolves jars, writes configs, starts what is not running and waits until each
service answers a real request; ``down`` stops every process it started; ``status``
probes each service; ``logs`` shows a service's log tail.
"""

from clicklib.stack.lifecycle import ServiceStatus, down, log_paths, logs, status, up

__all__ = ["ServiceStatus", "down", "log_paths", "logs", "status", "up"]
