"""Runs the phases of a test tier (each a make target) in order, timing each, and prints a
table of phases and the total at the end, also when a phase failed.

    python3 tests/phases.py [--record FILE] TARGET...

A failed phase ends the run: the phases after it are listed as not run. Pytest phases write
JUnit files under RESULTS (see the Makefile); their counts are summed into the table. With
--record, the summary (commit, passed, failed, minutes, phases) is written to FILE as JSON.
Standard library only: it runs before the project's environment exists.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

RESULTS = Path(os.environ.get("CLICKLIB_TEST_RESULTS", ".clickstack/test-results"))


def counts(target: str) -> tuple[int, int, int] | None:
    """(passed, failed, skipped) from the phase's JUnit file, or None if it wrote none."""
    path = RESULTS / f"{target}.xml"
    if not path.exists():
        return None
    passed = failed = skipped = 0
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests, skips = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        passed += tests - skips - bad
        failed += bad
        skipped += skips
    return passed, failed, skipped


def commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", type=Path, help="write the summary to this JSON file")
    parser.add_argument("targets", nargs="+")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for target in args.targets:
        (RESULTS / f"{target}.xml").unlink(missing_ok=True)
    started = time.monotonic()
    rows: list[dict] = []
    failed_phase = None
    for target in args.targets:
        if failed_phase:
            rows.append({"phase": target, "seconds": 0.0, "result": "not run"})
            continue
        print(f"\n=== {target} ===", flush=True)
        phase_started = time.monotonic()
        rc = subprocess.run(["make", "--no-print-directory", target], check=False).returncode
        row = {"phase": target, "seconds": round(time.monotonic() - phase_started, 1)}
        row["result"] = "ok" if rc == 0 else f"failed (exit {rc})"
        tests = counts(target)
        if tests:
            row["passed"], row["failed"], row["skipped"] = tests
        rows.append(row)
        if rc != 0:
            failed_phase = target
        print(f"=== {target}: {row['result']} after {minutes(row['seconds'])} ===", flush=True)
    total = time.monotonic() - started
    passed = sum(r.get("passed", 0) for r in rows)
    failed = sum(r.get("failed", 0) for r in rows)
    print("\nphase            time    result")
    for row in rows:
        tests = f"  {row['passed']} passed, {row['failed']} failed" if "passed" in row else ""
        print(f"{row['phase']:<16} {minutes(row['seconds']):>6}  {row['result']}{tests}")
    print(f"{'total':<16} {minutes(total):>6}  {passed} passed, {failed} failed", flush=True)
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        summary = {
            "commit": commit(),
            "passed": passed,
            "failed": failed,
            "minutes": round(total / 60, 1),
            "result": "failed" if failed_phase else "passed",
            "phases": rows,
        }
        args.record.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"summary written to {args.record}")
    print(f"tests: {passed} passed, {failed} failed", flush=True)
    return 1 if failed_phase else 0


if __name__ == "__main__":
    sys.exit(main())
