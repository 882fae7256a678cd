"""The files the package ships beside its code: the SQL scripts, the connector configs, the
Cassandra schema, the topics' Avro schemas, the notebooks, the collector's tracker and demo
shop, and the dashboard's page.

The repository keeps them in its top-level ``ksql/``, ``connect/``, ``notebooks/``, ``schemas/``
and ``web/`` folders; ``clicklib/assets/`` links to those folders, and a built wheel carries
copies of them, so ``importlib.resources`` finds them in a checkout and in an installed package alike.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

ASSETS = files("clicklib") / "assets"


def ksql_dir() -> Traversable:
    """The streaming SQL scripts (``*.sql``)."""
    return ASSETS / "ksql"


def connect_dir() -> Traversable:
    """The sink connector configs (``*.json``)."""
    return ASSETS / "connect"


def notebooks_dir() -> Traversable:
    """The numbered notebooks (``NN_*.ipynb``)."""
    return ASSETS / "notebooks"


def schemas_dir() -> Traversable:
    """The Avro schemas of the pipeline's topics (``<topic>-value.avsc``)."""
    return ASSETS / "schemas"


def web_asset(name: str) -> Path:
    """A file or folder served from ``web/``: the collector's ``tracker.js`` and ``shop``, the
    dashboard's ``dashboard/`` page."""
    # aiohttp serves static folders from a real path; a checkout and an installed package have one.
    return Path(str(ASSETS / "web" / name))


def schema_file() -> Traversable:
    """The Cassandra schema."""
    return files("clicklib") / "schema.cql"


def listing(directory: Traversable, suffix: str) -> list[Traversable]:
    """The files of a folder that end in ``suffix``, by name."""
    if not directory.is_dir():
        return []
    return sorted((f for f in directory.iterdir() if f.is_file() and f.name.endswith(suffix)), key=lambda f: f.name)


def checkout_root() -> Path | None:
    """The clicklib checkout this package runs from (an editable install), or None when installed."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "ksql").is_dir() else None
