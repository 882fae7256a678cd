"""tests/phases.py, which runs a tier's make targets in order: a failed phase ends the run, the
table and the total come at the end whatever happened, and --record writes the summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PHASES = Path(__file__).resolve().parents[1] / "phases.py"

JUNIT = (
    '<testsuites><testsuite name="pytest" tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}">'
    "</testsuite></testsuites>"
)
MAKEFILE = f"""
first:
\t@mkdir -p results && echo '{JUNIT.format(tests=5, failures=0, skipped=1)}' > results/first.xml
second:
\t@echo '{JUNIT.format(tests=3, failures=2, skipped=0)}' > results/second.xml; exit 3
third:
\t@touch third-ran
"""


def run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PHASES), *args],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "CLICKLIB_TEST_RESULTS": "results"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_failed_phase_ends_the_run_and_the_table_counts_every_phase(tmp_path: Path):
    (tmp_path / "Makefile").write_text(MAKEFILE)
    result = run(tmp_path, "--record", "summary.json", "first", "second", "third")
    assert result.returncode == 1
    assert not (tmp_path / "third-ran").exists()
    lines = result.stdout.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("phase "))) :]
    assert [line.split()[0] for line in table[1:5]] == ["first", "second", "third", "total"]
    assert "ok  4 passed, 0 failed" in table[1]
    assert "failed (exit 2)  1 passed, 2 failed" in table[2]  # make exits 2 when a recipe fails
    assert table[3].endswith("not run")
    assert table[4].endswith("5 passed, 2 failed")
    # The closing line CI reads as the run's verdict.
    assert lines[-1] == "tests: 5 passed, 2 failed"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["result"] == "failed"
    assert (summary["passed"], summary["failed"]) == (5, 2)
    assert [row["phase"] for row in summary["phases"]] == ["first", "second", "third"]


def test_a_run_whose_phases_pass_exits_0(tmp_path: Path):
    (tmp_path / "Makefile").write_text(MAKEFILE)
    result = run(tmp_path, "first", "third")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "third-ran").exists()
    assert result.stdout.splitlines()[-1] == "tests: 4 passed, 0 failed"
