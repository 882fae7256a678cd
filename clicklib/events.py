"""The clickstream event: its schema and the rules that make a raw message valid.

The Flink SQL jobs apply the same rules to split the raw topic into clean events and
the dead-letter queue, so :func:`invalid_reason` must return exactly the reason string
the SQL returns. The rules are checked in a fixed order and the first failure wins.

A raw message is bytes (Flink reads the raw topic as BYTES), checked in this order: no value
at all (a tombstone), bytes that are not UTF-8, text nested deeper than :data:`MAX_DEPTH`, text
that is not JSON, then the fields. Besides the nesting, no length has a limit of its own, the
same in Flink: numbers, names, strings and messages are as long as the broker lets a message be.
"""

from __future__ import annotations

import json
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from clicklib.exceptions import InvalidEventError

NO_MESSAGE = "no message: the Kafka record has no value"
MALFORMED_JSON = "malformed JSON"
NOT_AN_OBJECT = "not a JSON object"
EVENT_ID_REASON = "event_id: expected a non-empty string"
DATE_REASON = "date: expected an integer (epoch milliseconds)"
INIT_SESSION_REASON = "init_session: expected a boolean"
STATUS_REASON = "status: expected an integer"

# Checked in this order; the order is part of the contract with the SQL.
REQUIRED_STRING_FIELDS = ("session_id", "event", "page_type", "current_url")
NULLABLE_STRING_FIELDS = (
    "user_id",
    "referrer",
    "partner_id",
    "partner_name",
    "user_agent",
    "ip",
    "city",
    "country",
    "language",
)

# How deeply arrays and objects may nest, the event itself being level 1. An event needs 1 (an
# unknown field a few more). json.loads recurses once per level on the caller's stack: 500 leaves
# half of Python's default recursion limit (1,000) to the caller, so the verdict never depends on
# where it is checked from; Jackson in Flink is held to the same number (its default is 1,000).
MAX_DEPTH = 500
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
# The characters that decide the nesting depth of a text, outside and inside strings.
_DEPTH_SIGNIFICANT = re.compile(r'[\[\]{}"\\]')
# A code point that UTF-8 cannot encode: half of a surrogate pair.
_SURROGATE = re.compile("[\ud800-\udfff]")

# A JSON integer that fits the SQL side's BIGINT with room to spare: at most 18 digits.
_INTEGER_LIMIT = 10**18

# A plausible event time: not before 2000-01-01, not more than an hour ahead of the clock that
# checks it. Dates in seconds, microseconds or nanoseconds (the usual tracker mistakes) fall
# outside and are named as such, instead of moving the watermark decades away.
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_AHEAD_MS = 3_600_000
_SPANS = (("years", 31_556_952_000), ("days", 86_400_000), ("hours", 3_600_000), ("minutes", 60_000))


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class DateRule:
    """The range of event times accepted, relative to the clock of whoever checks (injectable)."""

    earliest_ms: int = EARLIEST_MS
    max_ahead_ms: int = MAX_AHEAD_MS
    clock: Callable[[], int] = field(default=wall_clock_ms, compare=False)

    def reason(self, date: int) -> str | None:
        """Why an integer date is not a plausible event time, or None. Java's CheckClickEvent says
        the same words for the same date and clock (the shared vectors hold both to it)."""
        latest = self.clock() + self.max_ahead_ms
        if date < self.earliest_ms:
            day = datetime.fromtimestamp(self.earliest_ms / 1000, UTC).strftime("%Y-%m-%d")
            seconds = -(-self.earliest_ms // 1000) <= date <= latest // 1000
            hint = "milliseconds expected, this looks like seconds" if seconds else "epoch milliseconds expected"
            return f"date {date} is before {day}: {hint}"
        if date > latest:
            ahead = span(date - (latest - self.max_ahead_ms))
            for unit, factor in (("microseconds", 1_000), ("nanoseconds", 1_000_000)):
                if self.earliest_ms <= date // factor <= latest:
                    return f"date {date} is {ahead} ahead of the clock: milliseconds expected, this looks like {unit}"
            return f"date {date} is {ahead} ahead of the clock; at most {span(self.max_ahead_ms)} ahead is accepted"
        return None


def span(ms: int) -> str:
    """A positive duration in words, in the largest unit that gives at least 2 ("55,946 years")."""
    for unit, size in _SPANS:
        if ms >= 2 * size:
            return f"{ms // size:,} {unit}"
    return f"{ms // 1000:,} seconds"


DEFAULT_DATES = DateRule()


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One valid clickstream event; field order is the wire order of :meth:`to_json`."""

    event_id: str
    date: int
    session_id: str
    user_id: str | None = None
    event: str
    page_type: str
    current_url: str
    referrer: str | None = None
    partner_id: str | None = None
    partner_name: str | None = None
    init_session: bool
    user_agent: str | None = None
    ip: str | None = None
    city: str | None = None
    country: str | None = None
    language: str | None = None
    status: int

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its recursive deep copy would dominate generating a workload.
        return dict(zip(FIELDS, _field_values(self), strict=True))

    def to_json(self) -> str:
        return _COMPACT_JSON.encode(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], dates: DateRule = DEFAULT_DATES) -> Event:
        """Build an event from a decoded message; unknown keys are ignored."""
        reason = _field_reason(data, dates)
        if reason is not None:
            raise InvalidEventError(reason)
        return cls(**{name: data.get(name) for name in FIELDS})


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Event))
_field_values = operator.attrgetter(*FIELDS)
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def invalid_reason(raw: str | bytes | dict[str, Any] | None, dates: DateRule = DEFAULT_DATES) -> str | None:
    """Why ``raw`` is not a valid event, checked now (or at ``dates.clock``), or None when it is.

    ``raw`` is a Kafka message's value: bytes (None for a record without one), or text already
    decoded, or a dict already parsed."""
    if isinstance(raw, dict):
        return _field_reason(raw, dates)
    try:
        data = _decode(raw)
    except InvalidEventError as exc:
        return exc.reason
    return _field_reason(data, dates)


def parse(raw: str | bytes | None, dates: DateRule = DEFAULT_DATES) -> Event:
    """Decode one raw message; raises :class:`InvalidEventError` with the first failing rule."""
    return Event.from_dict(_decode(raw), dates)


def _decode(raw: str | bytes | None) -> Any:
    if raw is None:
        raise InvalidEventError(NO_MESSAGE)
    text = _utf8_text(raw) if isinstance(raw, bytes) else raw
    if _nested_too_deep(text):
        raise InvalidEventError(TOO_DEEP)
    try:
        # A byte order mark stays in the text and fails here, as it does in Flink.
        return json.loads(text, parse_int=_parse_int_literal, parse_constant=_reject_constant)
    except ValueError:
        raise InvalidEventError(MALFORMED_JSON) from None


def _utf8_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The first byte of the first ill-formed sequence; Java's strict decoder stops at the same one.
        raise InvalidEventError(not_utf8_reason(raw[exc.start], exc.start)) from None


def not_utf8_reason(byte: int, offset: int) -> str:
    return f"not UTF-8 text: byte 0x{byte:02X} at offset {offset}"


def _nested_too_deep(text: str) -> bool:
    """Whether more than MAX_DEPTH arrays and objects are open at once somewhere in ``text``.

    Counted before parsing, so that the parser never recurses deeper, and so the verdict does not
    depend on where a syntax error is: brackets inside strings (up to a closing quote that is not
    escaped, or to the end) do not count, and a closing bracket closes whatever is open. Java's
    CheckClickEvent counts the same way."""
    # Cheap first: fewer opening brackets than the limit cannot exceed it (nearly every message).
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    in_string = False
    escaped_at = -1  # the position of a character that a backslash escapes
    for match in _DEPTH_SIGNIFICANT.finditer(text):
        char, position = match.group(), match.start()
        if in_string:
            if position == escaped_at:
                continue
            if char == "\\":
                escaped_at = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _parse_int_literal(literal: str) -> int | float:
    # Literals too long to be valid integers stay floats: they fail the integer rules
    # either way, and Python refuses to convert very long digit strings to int at all.
    return int(literal) if len(literal.lstrip("-")) <= 18 else float(literal)


def _reject_constant(name: str) -> None:
    # NaN and Infinity are a Python extension, not JSON.
    raise ValueError(f"{name} is not JSON")


def _field_reason(data: Any, dates: DateRule) -> str | None:
    if not isinstance(data, dict):
        return NOT_AN_OBJECT
    event_id = data.get("event_id")
    if not isinstance(event_id, str) or event_id == "":
        return EVENT_ID_REASON
    if _has_lone_surrogate(event_id):
        return lone_surrogate_reason("event_id")
    if not _is_integer(data.get("date")):
        return DATE_REASON
    implausible = dates.reason(data["date"])
    if implausible is not None:
        return implausible
    for name in REQUIRED_STRING_FIELDS:
        value = data.get(name)
        if not isinstance(value, str):
            return f"{name}: expected a string"
        if _has_lone_surrogate(value):
            return lone_surrogate_reason(name)
    if not isinstance(data.get("init_session"), bool):
        return INIT_SESSION_REASON
    if not _is_integer(data.get("status")):
        return STATUS_REASON
    for name in NULLABLE_STRING_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{name}: expected a string or null"
        if _has_lone_surrogate(value):
            return lone_surrogate_reason(name)
    return None


def lone_surrogate_reason(name: str) -> str:
    return f"{name}: not valid Unicode (a lone surrogate)"


def _has_lone_surrogate(value: str) -> bool:
    # A kept string is written to the valid topic as UTF-8, which has no encoding for half a
    # surrogate pair: Flink's writer would fail on it, and restart on it forever. json.loads joins
    # an escaped pair ("\ud83d\ude00") into one code point, so any surrogate left is alone.
    return not value.isascii() and _SURROGATE.search(value) is not None


def _is_integer(value: Any) -> bool:
    # bool is an int subclass in Python but a distinct JSON type.
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < _INTEGER_LIMIT
