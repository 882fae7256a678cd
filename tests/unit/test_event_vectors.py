"""The shared validation vectors: Python's rules give every message of tests/vectors/events.jsonl
exactly its expected reason, as the Flink function's do (ksql/functions, CheckClickEventTest).

A vector's message is the value of a Kafka record, bytes: "message" holds text (checked as its
UTF-8 encoding) or null for a record without a value; "message_base64" holds bytes that are not
text. Dates are checked against a clock: each vector is checked at its "now", by default
2026-01-01T00:00:00Z, the date of the vectors' valid events.
"""

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from clicklib.events import DateRule, invalid_reason

VECTORS = [json.loads(line) for line in (Path(__file__).parents[1] / "vectors" / "events.jsonl").open()]
VECTOR_NOW = 1_767_225_600_000


def message_of(vector: dict[str, Any]) -> bytes | None:
    if "message_base64" in vector:
        return base64.b64decode(vector["message_base64"], validate=True)
    return None if vector["message"] is None else vector["message"].encode("utf-8")


@pytest.mark.parametrize("vector", VECTORS, ids=[v["note"] for v in VECTORS])
def test_python_gives_the_expected_reason(vector):
    clock = vector.get("now", VECTOR_NOW)
    assert invalid_reason(message_of(vector), DateRule(clock=lambda: clock)) == vector["reason"]


def test_notes_are_unique():
    notes = [v["note"] for v in VECTORS]
    assert len(notes) == len(set(notes))
