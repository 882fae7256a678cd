"""clicklib: a clickstream pipeline on Kafka, Flink SQL, Kafka Connect and Cassandra."""

from clicklib.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
__version__ = "0.1.0"
