"""Figures a notebook records for whoever executes it (scrapbook-style).

``record(name, value)`` displays a JSON value under clicklib's own MIME type (with a plain
text line for readers), kept in the executed notebook, where ``read_records`` finds it. Tests and
``make demo`` read what the notebooks computed without scraping their text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIME_TYPE = "application/x.clicklib.record+json"


def record(name: str, value: Any) -> None:
    from IPython.display import display

    display({MIME_TYPE: {"name": name, "value": value}, "text/plain": f"recorded {name} = {value!r}"}, raw=True)


def read_records(notebook_path: str | Path) -> dict[str, Any]:
    """Every value an executed notebook recorded, by name (the last one wins)."""
    notebook = json.loads(Path(notebook_path).read_text())
    records: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(MIME_TYPE)
            if data is not None:
                records[data["name"]] = data["value"]
    return records
