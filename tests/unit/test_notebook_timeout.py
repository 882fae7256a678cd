"""A notebook whose kernel stops answering fails within the cell timeout, naming the notebook and
the cell, instead of waiting for good (a real kernel, no services)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.sign import NotebookNotary

from clicklib import reports
from clicklib.exceptions import NotebookError


def notebook(folder: Path, *cells: str) -> Path:
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "01_frozen.ipynb"
    nbformat.write(book, path)
    return path


def test_a_kernel_that_stops_answering_fails_its_notebook_naming_the_cell(tmp_path: Path):
    source = tmp_path / "in"
    source.mkdir()
    # The second cell freezes its own kernel (SIGSTOP): it can answer nothing, not even an interrupt.
    notebook(source, "x = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)", "x = 2")
    with pytest.raises(NotebookError) as caught:
        reports.execute_series(tmp_path / "out", notebooks=source, html=False, cell_timeout=5)
    message = str(caught.value)
    assert message.startswith("01_frozen.ipynb: code cell 2 ('import os, signal') did not finish within 5 s")
    assert str(tmp_path / "out" / "01_frozen.ipynb") in message


def test_a_cell_that_finishes_in_time_runs_on(tmp_path: Path):
    source = tmp_path / "in"
    source.mkdir()
    notebook(source, "import time\ntime.sleep(1)", "from clicklib.notebook import record\nrecord('done', 2)")
    assert reports.execute_series(tmp_path / "out", notebooks=source, html=False, cell_timeout=30) == {
        "01_frozen.ipynb": {"done": 2}
    }
    # This user's run: JupyterLab shows its outputs (charts included) when it is opened.
    executed = nbformat.read(tmp_path / "out" / "01_frozen.ipynb", as_version=4)
    assert NotebookNotary().check_signature(executed)
    executed.cells[0].source = "x = 3"
    assert not NotebookNotary().check_signature(executed)
