"""Committed notebooks carry no outputs, and each is ready for papermill."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_the_numbered_series_is_there():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_", "06_", "07_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs_and_a_parameters_cell(path):
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c.get("outputs") == [] and c.get("execution_count") is None for c in code), "strip the outputs"
    assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in code) == 1
    assert notebook["cells"][0]["cell_type"] == "markdown"
    # nbformat 4.5 gives every cell an id; one without is a warning in every run.
    assert all(c.get("id") for c in notebook["cells"]), "give every cell an id"
