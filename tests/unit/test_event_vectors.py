"""The shared validation vectors: Python's rules give every message of tests/vectors/events.jsonl
exactly its expected reason, as the Flink function's do (ksql/functions, CheckClickEventTest).

Dates are checked against a clock: each vector is checked at its "now", by default
2026-01-01T00:00:00Z, the date of the vectors' valid events.
"""

import json
from pathlib import Path

import pytest

from clicklib.events import DateRule, invalid_reason

VECTORS = [json.loads(line) for line in (Path(__file__).parents[1] / "vectors" / "events.jsonl").open()]
VECTOR_NOW = 1_767_225_600_000


@pytest.mark.parametrize("vector", VECTORS, ids=[v["note"] for v in VECTORS])
def test_python_gives_the_expected_reason(vector):
    clock = vector.get("now", VECTOR_NOW)
    assert invalid_reason(vector["message"], DateRule(clock=lambda: clock)) == vector["reason"]
