"""Reports: the notebook series executed by papermill, each exported to HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clicklib.notebook import read_records

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def export_html(notebook: Path, html: Path) -> Path:
    """An executed notebook as a standalone HTML page (charts render offline, see clicklib.charts)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    html.write_text(body)
    return html


def execute_series(
    out_dir: Path,
    parameters: dict[str, dict[str, Any]] | None = None,
    notebooks: Path = NOTEBOOKS,
    html: bool = True,
) -> dict[str, dict[str, Any]]:
    """Run every numbered notebook in order into ``out_dir``; returns what each recorded.

    ``parameters`` maps a notebook's file name to its papermill parameters.
    """
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    records = {}
    for source in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        executed = out_dir / source.name
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=(parameters or {}).get(source.name, {}),
            cwd=str(notebooks),
            progress_bar=False,
        )
        if html:
            export_html(executed, executed.with_suffix(".html"))
        records[source.name] = read_records(executed)
    return records
