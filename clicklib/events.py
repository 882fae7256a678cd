"""The clickstream event: its schema and the rules that make a raw message valid.

The Flink SQL jobs apply the same rules to split the raw topic into clean events and
the dead-letter queue, so :func:`invalid_reason` must return exactly the reason string
the SQL returns. The rules are checked in a fixed order and the first failure wins.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, fields
from typing import Any

from clicklib.exceptions import InvalidEventError

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

# A JSON integer that fits the SQL side's BIGINT with room to spare: at most 18 digits.
_INTEGER_LIMIT = 10**18


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
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Build an event from a decoded message; unknown keys are ignored."""
        reason = _field_reason(data)
        if reason is not None:
            raise InvalidEventError(reason)
        return cls(**{name: data.get(name) for name in FIELDS})


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Event))
_field_values = operator.attrgetter(*FIELDS)
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def invalid_reason(raw: str | bytes | dict[str, Any]) -> str | None:
    """Why ``raw`` is not a valid event, or None when it is."""
    if isinstance(raw, dict):
        return _field_reason(raw)
    try:
        data = _decode(raw)
    except InvalidEventError as exc:
        return exc.reason
    return _field_reason(data)


def parse(raw: str | bytes) -> Event:
    """Decode one raw message; raises :class:`InvalidEventError` with the first failing rule."""
    return Event.from_dict(_decode(raw))


def _decode(raw: str | bytes) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_int=_parse_int_literal, parse_constant=_reject_constant)
    # Nesting deep enough to exhaust the parser's recursion is rejected like any unparseable text.
    except (ValueError, RecursionError):
        raise InvalidEventError(MALFORMED_JSON) from None


def _parse_int_literal(literal: str) -> int | float:
    # Literals too long to be valid integers stay floats: they fail the integer rules
    # either way, and Python refuses to convert very long digit strings to int at all.
    return int(literal) if len(literal.lstrip("-")) <= 18 else float(literal)


def _reject_constant(name: str) -> None:
    # NaN and Infinity are a Python extension, not JSON.
    raise ValueError(f"{name} is not JSON")


def _field_reason(data: Any) -> str | None:
    if not isinstance(data, dict):
        return NOT_AN_OBJECT
    event_id = data.get("event_id")
    if not isinstance(event_id, str) or event_id == "":
        return EVENT_ID_REASON
    if not _is_integer(data.get("date")):
        return DATE_REASON
    for name in REQUIRED_STRING_FIELDS:
        if not isinstance(data.get(name), str):
            return f"{name}: expected a string"
    if not isinstance(data.get("init_session"), bool):
        return INIT_SESSION_REASON
    if not _is_integer(data.get("status")):
        return STATUS_REASON
    for name in NULLABLE_STRING_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name}: expected a string or null"
    return None


def _is_integer(value: Any) -> bool:
    # bool is an int subclass in Python but a distinct JSON type.
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < _INTEGER_LIMIT
