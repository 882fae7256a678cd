"""The fault suite reports how long each fault took to recover from, at the end of the run."""

from __future__ import annotations

RECOVERY: dict[str, dict] = {}


def pytest_terminal_summary(terminalreporter) -> None:
    if not RECOVERY:
        return
    terminalreporter.section("fault suite: time to recover")
    for fault, figures in RECOVERY.items():
        terminalreporter.write_line(f"{fault:<28} " + ", ".join(f"{k} {v}" for k, v in figures.items()))
