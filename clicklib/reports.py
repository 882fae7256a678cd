"""Reports: the notebook series executed by papermill, each exported to HTML."""

from __future__ import annotations

from importlib.resources import as_file
from pathlib import Path
from typing import Any

from clicklib import resources
from clicklib.notebook import read_records


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
    notebooks: Path | None = None,
    html: bool = True,
) -> dict[str, dict[str, Any]]:
    """Run every numbered notebook in order into ``out_dir``; returns what each recorded.

    ``parameters`` maps a notebook's file name to its papermill parameters.
    """
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    records = {}
    with as_file(resources.notebooks_dir()) as shipped:
        folder = notebooks or shipped
        for source in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
            executed = out_dir / source.name
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=(parameters or {}).get(source.name, {}),
                cwd=str(out_dir),
                progress_bar=False,
            )
            if html:
                export_html(executed, executed.with_suffix(".html"))
            records[source.name] = read_records(executed)
    return records
