"""The shared validation vectors: Python's rules give every message of tests/vectors/events.jsonl
exactly its expected reason, as the Flink function's do (ksql/functions, CheckClickEventTest)."""

import json
from pathlib import Path

import pytest

from clicklib.events import invalid_reason

VECTORS = [json.loads(line) for line in (Path(__file__).parents[1] / "vectors" / "events.jsonl").open()]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["note"] for v in VECTORS])
def test_python_gives_the_expected_reason(vector):
    assert invalid_reason(vector["message"]) == vector["reason"]
