import json

import pytest

from clicklib.events import FIELDS, MAX_DEPTH, DateRule, Event, invalid_reason, parse
from clicklib.exceptions import ClicklibError, InvalidEventError

MISSING = object()

VALID = {
    "event_id": "7d5c3e8e-2f7e-4f5e-9a59-0c6a4a0b7d21",
    "date": 1_767_225_600_000,
    "session_id": "s-1",
    "user_id": "user-000001",
    "event": "pageview",
    "page_type": "home",
    "current_url": "https://shop.example/lumen/",
    "referrer": None,
    "partner_id": "p-1001",
    "partner_name": "Lumen Electronics",
    "init_session": True,
    "user_agent": "Mozilla/5.0",
    "ip": "203.0.113.7",
    "city": "Singapore",
    "country": "SG",
    "language": "en",
    "status": 200,
}

REQUIRED_STRINGS = ["session_id", "event", "page_type", "current_url"]
NULLABLE_STRINGS = [
    "user_id",
    "referrer",
    "partner_id",
    "partner_name",
    "user_agent",
    "ip",
    "city",
    "country",
    "language",
]


def message(**changes: object) -> str:
    """VALID as JSON text, with fields replaced, or removed when set to MISSING."""
    data = {**VALID, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not MISSING})


def test_a_complete_event_is_valid():
    assert invalid_reason(message()) is None


def test_only_the_required_fields_are_needed():
    required = ["event_id", "date", *REQUIRED_STRINGS, "init_session", "status"]
    assert invalid_reason(json.dumps({k: VALID[k] for k in required})) is None


def test_unknown_fields_and_empty_strings_are_allowed():
    assert invalid_reason(message(extra={"nested": [1]}, session_id="", current_url="", city="")) is None


def test_a_record_without_a_value_is_no_message():
    assert invalid_reason(None) == "no message: the Kafka record has no value"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe{}", "not UTF-8 text: byte 0xFF at offset 0"),
        (b'{"a":"\xc3"}', "not UTF-8 text: byte 0xC3 at offset 6"),
        (b'{"a":"\xed\xa0\x80"}', "not UTF-8 text: byte 0xED at offset 6"),
        (b"{}\xe2\x82", "not UTF-8 text: byte 0xE2 at offset 2"),
    ],
)
def test_bytes_that_are_not_utf8_are_named_by_the_first_bad_byte(raw, reason):
    assert invalid_reason(raw) == reason


@pytest.mark.parametrize("raw", ['{"event_id": "x"', "", b"", "not json", b"\xef\xbb\xbf{}", '{"date": NaN}', "{} {}"])
def test_rule_1_unparseable_text_is_malformed_json(raw):
    assert invalid_reason(raw) == "malformed JSON"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 998, 999, 1000, 5000, 100_000])
def test_rule_1_nesting_deeper_than_the_limit_is_refused_before_parsing(depth):
    # The event is level 1. Without the limit, json.loads would recurse once per level: the
    # verdict would depend on the recursion limit and the caller's stack.
    deep = "[" * (depth - 1) + "]" * (depth - 1)
    assert invalid_reason(message(extra="DEEP").replace('"DEEP"', deep)) == f"nested deeper than {MAX_DEPTH} levels"


def test_rule_1_nesting_up_to_the_limit_is_parsed():
    deep = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert invalid_reason(message(extra="DEEP").replace('"DEEP"', deep)) is None


def test_rule_1_lengths_have_no_limit_of_their_own():
    # Each longer than Jackson's default limit (numbers 1,000 digits, names 50,000 chars,
    # strings 20 million); Flink's check lifts them all, as CheckClickEventTest shows.
    raw = message(**{"n" * 50_001: 1, "s": "x" * 20_000_001, "extra": "NUMBER"})
    assert invalid_reason(raw.replace('"NUMBER"', "9" * 100_000)) is None


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "42", "null", "true"])
def test_rule_2_a_json_value_that_is_not_an_object(raw):
    assert invalid_reason(raw) == "not a JSON object"


@pytest.mark.parametrize("event_id", [MISSING, None, "", 42, ["id"]])
def test_rule_3_event_id_must_be_a_non_empty_string(event_id):
    assert invalid_reason(message(event_id=event_id)) == "event_id: expected a non-empty string"


@pytest.mark.parametrize(
    "raw_date", ["1767225600000.0", "1e3", '"1767225600000"', "true", "null", "1000000000000000000"]
)
def test_rule_4_date_must_be_an_integer_of_at_most_18_digits(raw_date):
    text = message(date=0).replace('"date": 0', f'"date": {raw_date}')
    assert invalid_reason(text) == "date: expected an integer (epoch milliseconds)"


def test_rule_4_date_may_be_missing_only_to_fail():
    assert invalid_reason(message(date=MISSING)) == "date: expected an integer (epoch milliseconds)"


@pytest.mark.parametrize("date", [999_999_999_999_999_999, -999_999_999_999_999_999, 0])
def test_rule_4_integers_up_to_18_digits_pass_the_integer_rule(date):
    # Then the plausibility rule judges them, by their value, not their type.
    assert invalid_reason(message(date=date)).startswith(f"date {date} is ")


NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
AT_NOW = DateRule(clock=lambda: NOW)


@pytest.mark.parametrize(
    ("date", "reason"),
    [
        (NOW, None),
        (NOW + 3_600_000, None),
        (946_684_800_000, None),
        (
            NOW * 1000,
            f"date {NOW * 1000} is 55,945 years ahead of the clock: "
            "milliseconds expected, this looks like microseconds",
        ),
        (NOW // 1000, f"date {NOW // 1000} is before 2000-01-01: milliseconds expected, this looks like seconds"),
        (
            NOW + 3_600_001,
            f"date {NOW + 3_600_001} is 60 minutes ahead of the clock; at most 60 minutes ahead is accepted",
        ),
        (
            NOW + 90 * 86_400_000,
            f"date {NOW + 90 * 86_400_000} is 90 days ahead of the clock; at most 60 minutes ahead is accepted",
        ),
        (946_684_799_999, "date 946684799999 is before 2000-01-01: epoch milliseconds expected"),
    ],
)
def test_rule_4b_the_date_is_a_plausible_event_time(date, reason):
    assert invalid_reason(message(date=date), AT_NOW) == reason


def test_rule_4b_bounds_come_from_the_rule():
    narrow = DateRule(earliest_ms=NOW - 86_400_000, max_ahead_ms=60_000, clock=lambda: NOW)
    assert invalid_reason(message(date=NOW - 86_400_001), narrow) == (
        f"date {NOW - 86_400_001} is before 2025-12-31: epoch milliseconds expected"
    )
    assert invalid_reason(message(date=NOW + 120_001), narrow) == (
        f"date {NOW + 120_001} is 2 minutes ahead of the clock; at most 60 seconds ahead is accepted"
    )


def test_rule_4_a_huge_integer_literal_fails_the_rule_rather_than_the_parser():
    text = message(date=0).replace('"date": 0', '"date": ' + "9" * 5000)
    assert invalid_reason(text) == "date: expected an integer (epoch milliseconds)"


@pytest.mark.parametrize("field", REQUIRED_STRINGS)
@pytest.mark.parametrize("value", [MISSING, None, 7, True])
def test_rule_5_required_string_fields(field, value):
    assert invalid_reason(message(**{field: value})) == f"{field}: expected a string"


@pytest.mark.parametrize("value", [MISSING, None, "yes", 1, 0])
def test_rule_6_init_session_must_be_a_boolean(value):
    assert invalid_reason(message(init_session=value)) == "init_session: expected a boolean"


@pytest.mark.parametrize("value", [MISSING, None, "ok", 200.0, True, 10**18])
def test_rule_7_status_must_be_an_integer(value):
    assert invalid_reason(message(status=value)) == "status: expected an integer"


@pytest.mark.parametrize("field", NULLABLE_STRINGS)
def test_rule_8_optional_fields_must_be_a_string_or_null(field):
    assert invalid_reason(message(**{field: 1})) == f"{field}: expected a string or null"
    assert invalid_reason(message(**{field: None})) is None
    assert invalid_reason(message(**{field: MISSING})) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"event_id": "", "date": "x", "status": "ok"}, "event_id: expected a non-empty string"),
        ({"date": "x", "session_id": None}, "date: expected an integer (epoch milliseconds)"),
        ({"current_url": 1, "page_type": 1, "init_session": "yes"}, "page_type: expected a string"),
        ({"init_session": "yes", "status": "ok"}, "init_session: expected a boolean"),
        ({"status": "ok", "user_id": 1}, "status: expected an integer"),
        ({"language": 1, "ip": 1, "referrer": 1}, "referrer: expected a string or null"),
    ],
)
def test_the_first_failing_rule_wins(changes, reason):
    assert invalid_reason(message(**changes)) == reason


@pytest.mark.parametrize("field", ["event_id", *REQUIRED_STRINGS, *NULLABLE_STRINGS])
def test_a_kept_string_with_a_lone_surrogate_is_refused(field):
    reason = f"{field}: not valid Unicode (a lone surrogate)"
    assert invalid_reason(message(**{field: "x\ud800"})) == reason
    assert invalid_reason({**VALID, field: "\udfff"}) == reason
    assert invalid_reason(message(**{field: "x\U0001f600"})) is None


def test_a_lone_surrogate_is_checked_with_its_fields_type():
    assert invalid_reason(message(city="\ud800", status="ok")) == "status: expected an integer"
    assert invalid_reason(message(event_id="\ud800", status="ok")) == "event_id: not valid Unicode (a lone surrogate)"


def test_a_lone_surrogate_in_an_unknown_field_is_not_kept():
    assert invalid_reason(message(extra="\ud800")) is None


def test_a_dict_is_checked_without_parsing():
    assert invalid_reason(dict(VALID)) is None
    assert invalid_reason({**VALID, "status": "ok"}) == "status: expected an integer"


def test_bytes_are_decoded_as_utf8():
    assert parse(message(city="Hồ Chí Minh").encode()) == parse(message(city="Hồ Chí Minh"))


def test_parse_raises_with_the_reason():
    with pytest.raises(InvalidEventError) as caught:
        parse(message(status="ok"))
    assert caught.value.reason == "status: expected an integer"
    assert isinstance(caught.value, ClicklibError)


def test_from_dict_rejects_invalid_input_and_ignores_unknown_keys():
    with pytest.raises(InvalidEventError, match="event_id"):
        Event.from_dict({**VALID, "event_id": ""})
    assert Event.from_dict({**VALID, "extra": 1}) == Event.from_dict(VALID)


def test_missing_optional_fields_become_none():
    event = Event.from_dict({k: v for k, v in VALID.items() if k not in NULLABLE_STRINGS})
    assert all(getattr(event, name) is None for name in NULLABLE_STRINGS)


def test_to_json_is_compact_in_field_order_and_round_trips():
    event = parse(message())
    text = event.to_json()
    assert text == json.dumps(VALID, separators=(",", ":"))
    assert parse(text) == event
    assert event.to_dict() == VALID


def test_fields_follow_the_schema_order():
    assert tuple(VALID) == FIELDS
