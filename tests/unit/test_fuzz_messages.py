"""The fuzz corpus (tests/fuzz_messages.py) holds what an integration test needs of it: the same
messages for the same arguments, every mutation present, each valid event findable by its
event_id, a healthy mix of verdicts, messages the broker takes, and no date whose verdict
depends on when it is checked.

Verdicts are Python's (clicklib.events.invalid_reason) at now_ms; only valid or not counts here,
never the reason's words.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from clicklib.events import EARLIEST_MS, DateRule, invalid_reason
from tests.fuzz_messages import (
    CLASSES,
    FORBIDDEN_DATES_MS,
    KINDS,
    MAX_MESSAGE_BYTES,
    VALID_DATES_MS,
    FuzzMessage,
    fuzz_messages,
)

COUNT = 10_000
NOW_MS = 1_767_225_600_000
SEED = 1
PREFIX = "fz"

# What each case is meant to be; every other kind is meant invalid.
MEANT_VALID = {
    "valid",
    "valid:anonymous",
    "valid:anonymous_missing",
    "extra_field:scalars",
    "extra_field:object",
    "extra_field:empty_name",
    "extra_field:near_names",
    "extra_field:long_name",
    "huge_number:int",
    "huge_number:negative",
    "huge_number:float",
    "huge_string",
    "huge_field:current_url",
    "huge_field:user_agent",
    "deep_nesting:400:array",
    "deep_nesting:400:object",
    "unicode:emoji",
    "unicode:cjk",
    "unicode:combining",
    "unicode:rtl",
    "unicode:uffff",
    "unicode:u2028",
    "unicode:nul_escape",
    "unicode:surrogate_pair_escape",
    "number:status:-0",
    "number:status:1e17",
    "number:status:max",
    "number:status:min",
    "duplicate_key:event_id:decoy_first",
    "duplicate_key:date:invalid_first",
    "duplicate_key:status:invalid_first",
    "duplicate_key:user_id:null_last",
    "whitespace:leading",
    "whitespace:trailing",
    "whitespace:pretty",
    "whitespace:crlf",
    "boundary_date:earliest",
}
# Meant invalid, but accepted by invalid_reason until it rejects lone surrogates and nesting beyond
# its limit (under way): either verdict passes here for now.
AWAITING_THE_CHECKER = {
    "unicode:lone_surrogate_high",
    "unicode:lone_surrogate_low",
    "unicode:reversed_surrogates",
    "deep_nesting:900:object",
    "deep_nesting:900-1200:array",
}


@pytest.fixture(scope="module")
def corpus() -> list[FuzzMessage]:
    return fuzz_messages(COUNT, now_ms=NOW_MS, seed=SEED, id_prefix=PREFIX)


@dataclass(frozen=True)
class Checked:
    message: FuzzMessage
    valid: bool  # Python's verdict at now_ms
    data: Any  # the decoded JSON value (last key wins), or None when it does not decode


@pytest.fixture(scope="module")
def checked(corpus: list[FuzzMessage]) -> list[Checked]:
    rule = DateRule(clock=lambda: NOW_MS)
    # Decoded at the same stack depth as checked: a message nested about 1,000 deep decodes
    # or exhausts the recursion limit alike in both.
    return [Checked(m, invalid_reason(m.value, rule) is None, decoded(m.value)) for m in corpus]


def decoded(value: bytes) -> Any:
    try:
        return json.loads(value.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def valid_data(checked: list[Checked]) -> list[tuple[str, dict[str, Any]]]:
    """The kind and the fields of each valid message."""
    return [(c.message.kind, c.data) for c in checked if c.valid]


def test_the_same_arguments_give_the_same_messages(corpus: list[FuzzMessage]) -> None:
    assert fuzz_messages(COUNT, now_ms=NOW_MS, seed=SEED, id_prefix=PREFIX) == corpus
    assert fuzz_messages(500, now_ms=NOW_MS, seed=SEED + 1, id_prefix=PREFIX) != corpus[:500]


def test_count_messages(corpus: list[FuzzMessage]) -> None:
    assert len(corpus) == COUNT
    assert fuzz_messages(0, now_ms=NOW_MS, seed=SEED, id_prefix=PREFIX) == []


def test_every_class_and_every_kind_is_present(corpus: list[FuzzMessage]) -> None:
    kinds = Counter(m.kind for m in corpus)
    assert {kind.split(":")[0] for kind in kinds} == {cls.name for cls in CLASSES}
    assert set(kinds) == set(KINDS)
    # About 35% plain valid events, of which about 30% anonymous.
    plain = kinds["valid"] + kinds["valid:anonymous"] + kinds["valid:anonymous_missing"]
    assert 0.33 < plain / COUNT < 0.37
    assert 0.25 < (kinds["valid:anonymous"] + kinds["valid:anonymous_missing"]) / plain < 0.35


def test_a_healthy_share_of_each_verdict(checked: list[Checked]) -> None:
    n_valid = sum(c.valid for c in checked)
    assert n_valid >= 0.25 * COUNT
    assert COUNT - n_valid >= 0.40 * COUNT


def test_each_kind_gets_the_verdict_it_is_meant_to(checked: list[Checked]) -> None:
    wrong = Counter(c.message.kind for c in checked if c.valid != (c.message.kind in MEANT_VALID))
    assert not {kind: n for kind, n in wrong.items() if kind not in AWAITING_THE_CHECKER}


def test_valid_events_have_unique_event_ids(checked: list[Checked]) -> None:
    ids = [data["event_id"] for _, data in valid_data(checked)]
    assert len(set(ids)) == len(ids)


def test_no_two_messages_share_an_event_id(checked: list[Checked]) -> None:
    ids = [c.data["event_id"] for c in checked if isinstance(c.data, dict) and isinstance(c.data.get("event_id"), str)]
    ids = [i for i in ids if i]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{PREFIX}-") for i in ids)


def test_every_message_fits_the_broker(corpus: list[FuzzMessage]) -> None:
    assert max(len(m.value) for m in corpus) < MAX_MESSAGE_BYTES


def test_valid_events_are_dated_in_the_recent_past(checked: list[Checked]) -> None:
    low, high = (NOW_MS + offset for offset in VALID_DATES_MS)
    late = [(kind, data["date"]) for kind, data in valid_data(checked) if not low <= data["date"] <= high]
    assert all(date == EARLIEST_MS for _, date in late), late[:5]


def test_no_date_whose_verdict_depends_on_the_check_time(checked: list[Checked]) -> None:
    low, high = (NOW_MS + offset for offset in FORBIDDEN_DATES_MS)
    assert not [kind for kind, data in valid_data(checked) if low <= data["date"] <= high]
    # Not among the invalid messages either: a later rule change could let them through.
    dates = [(c.message.kind, c.data.get("date")) for c in checked if isinstance(c.data, dict)]
    assert not [kind for kind, date in dates if isinstance(date, int | float) and low <= date <= high]


def test_valid_events_are_keyed_by_their_user_id(checked: list[Checked]) -> None:
    for c in checked:
        if c.valid:
            user_id = c.data.get("user_id")
            assert c.message.key == (None if user_id is None else user_id.encode()), c.message.kind
    assert all(c.message.key is None for c in checked if c.message.kind.startswith("random_bytes"))
