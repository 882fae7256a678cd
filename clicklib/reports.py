"""Reports: the notebook series executed by papermill, each exported to HTML."""

from __future__ import annotations

from importlib.resources import as_file
from pathlib import Path
from typing import Any

from clicklib import resources
from clicklib.exceptions import NotebookError
from clicklib.notebook import read_records

# How long one cell may run before its notebook fails. The longest waits the notebooks make
# (a pipeline settling, windows closing, Spark over the lake) end by themselves within 600 s, so
# a cell still running after 15 minutes is waiting on a kernel that stopped answering.
CELL_TIMEOUT_SECONDS = 900.0


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
    cell_timeout: float = CELL_TIMEOUT_SECONDS,
) -> dict[str, dict[str, Any]]:
    """Run every numbered notebook in order into ``out_dir``; returns what each recorded.

    ``parameters`` maps a notebook's file name to its papermill parameters. A cell that runs
    longer than ``cell_timeout`` seconds fails its notebook with a :class:`NotebookError`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    records = {}
    with as_file(resources.notebooks_dir()) as shipped:
        folder = notebooks or shipped
        for source in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
            executed = out_dir / source.name
            execute(source, executed, (parameters or {}).get(source.name, {}), cell_timeout)
            if html:
                export_html(executed, executed.with_suffix(".html"))
            records[source.name] = read_records(executed)
    return records


def execute(source: Path, executed: Path, parameters: dict[str, Any], cell_timeout: float) -> None:
    """Run one notebook with papermill into ``executed`` (its folder is the kernel's working
    folder). A cell past ``cell_timeout``, or a kernel that died, is a NotebookError naming the
    notebook and the cell; an exception raised by a cell is papermill's own error, which shows it."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from traitlets.config import Config

    # Kernels on Unix sockets in the user's private runtime folder, not on loopback TCP ports
    # that any local user could connect to (the lab's kernels do the same).
    ipc = Config({"KernelManager": {"transport": "ipc"}})
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=parameters,
            cwd=str(executed.parent),
            progress_bar=False,
            execution_timeout=cell_timeout,
            config=ipc,
        )
    except CellTimeoutError:
        raise NotebookError(
            f"{source.name}: {running_cell(executed)} did not finish within {cell_timeout:.0f} s, so the "
            f"notebook was stopped; the executed copy is {executed}. A cell that waits on a service says "
            "what it waits for in its output: look there, and at `clicklib stack status`."
        ) from None
    except DeadKernelError:
        raise NotebookError(
            f"{source.name}: the kernel died while running {running_cell(executed)}; the executed copy is "
            f"{executed}. Run the notebook again; if it dies again, the cell's output says what it last did."
        ) from None
    trust(executed)


def trust(executed: Path) -> None:
    """Mark a notebook this user's run produced as trusted, as Jupyter does with a notebook run and
    saved in the lab: JupyterLab then draws its charts when it is opened, instead of hiding the
    outputs of a notebook it did not see run (`jupyter trust`)."""
    import nbformat
    from nbformat.sign import NotebookNotary

    NotebookNotary().sign(nbformat.read(executed, as_version=4))


def running_cell(executed: Path) -> str:
    """The cell an interrupted run stopped in: the last one papermill started ('code cell N
    (its first line)'), counted in the executed copy."""
    import nbformat

    try:
        notebook = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return "a cell"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    started = [n for n, cell in enumerate(code, start=1) if cell.metadata.get("papermill", {}).get("start_time")]
    if not started:
        return "a cell"
    first = next((line for line in code[started[-1] - 1].source.splitlines() if line.strip()), "")
    return f"code cell {started[-1]} ({first.strip()[:80]!r})"
