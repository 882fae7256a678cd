"""A deterministic corpus of raw clickstream messages, valid and broken, for fuzzing the ingest path.

:func:`fuzz_messages` returns messages as they would sit in the ``clickstream`` topic: the key
(the user_id, UTF-8) and the exact value bytes, with the name of the mutation that made them
(``kind``). About 35% are plain valid events; the rest go through one mutation class each, from
the table ``CLASSES`` (name, weight, variants). Every mutated message starts as a valid
``clicklib.events.Event`` and is then broken as a dict, as JSON text or as bytes.

What an integration test can rely on:

- The same (count, now_ms, seed, id_prefix) always give the same messages: one seeded
  ``random.Random``, no clock read here.
- Every message that could be valid carries its own event_id (``f"{id_prefix}-{i}"``, a suffix
  after a dash in the unicode and invalid UTF-8 cases; a duplicate-key decoy gets ``-decoy``), so
  each valid one can be found by event_id exactly once.
- Events meant to be valid are dated in [now_ms - 30 min, now_ms - 1 min], except the
  2000-01-01 boundary case. No date at all falls in [now_ms + 10 min, now_ms + 2 h]: the
  checker's "at most an hour ahead" bound moves with its own clock, which runs later than
  now_ms, and dates near it would get different verdicts at different check times.
- Every message is under ``MAX_MESSAGE_BYTES`` (the broker takes up to 1 MB).

Which messages are valid is for ``clicklib.events.invalid_reason`` to say, not this module; the
variant names say what each case is meant to test.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clicklib.events import EARLIEST_MS, FIELDS, NULLABLE_STRING_FIELDS, REQUIRED_STRING_FIELDS, Event
from clicklib.generate import DESKTOP_USER_AGENTS, LOCATIONS, MOBILE_USER_AGENTS, PARTNERS

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
YEAR_MS = 31_556_952_000
MAX_MESSAGE_BYTES = 600_000
# Where the dates of events meant to be valid lie, relative to now_ms.
VALID_DATES_MS = (-30 * MINUTE_MS, -MINUTE_MS)
# Relative to now_ms, no date is ever generated in this band (see the module docstring).
FORBIDDEN_DATES_MS = (10 * MINUTE_MS, 2 * HOUR_MS)

N_USERS = 36
N_KNOWN_SESSIONS = 60
N_ANONYMOUS_SESSIONS = 30
ANONYMOUS_SHARE = 0.3

EVENT_NAMES = ("pageview", "pageview", "pageview", "click", "add_to_cart", "search", "purchase")
PAGE_TYPES = ("home", "category", "search", "productDetail", "cart", "checkout", "purchase")
STATUSES = (200,) * 17 + (404, 500, 503)
USER_AGENTS = MOBILE_USER_AGENTS + DESKTOP_USER_AGENTS
# Fields the pipeline carries through as they are: unicode and invalid bytes go there and into
# event_id, never into user_id (the key, the join with profiles) or page_type (a grouping key).
FREE_TEXT_FIELDS = ("current_url", "referrer", "partner_name", "user_agent", "city")
JSON_TYPES = ("string", "int", "float", "bool", "null", "array", "object")

# Stands for a value, or a part of a string, in JSON text until it is replaced by what json.dumps
# would not write (a literal, raw bytes, an escape).
_MARK = "@@fuzz@@"


@dataclass(frozen=True, slots=True)
class FuzzMessage:
    """One raw message for the clickstream topic and the mutation that made it."""

    key: bytes | None
    value: bytes
    kind: str


class _Fuzz:
    """The seeded state every mutation draws from: the random source, the clock and the id pools."""

    def __init__(self, rng: random.Random, now_ms: int, id_prefix: str) -> None:
        self.rng = rng
        self.now_ms = now_ms
        self.id_prefix = id_prefix
        users = [f"{id_prefix}-user-{n}" for n in range(N_USERS)]
        # A session belongs to one visitor, as in the real stream: a few sessions per known user.
        self.known_sessions = [(f"{id_prefix}-session-{n}", users[n % N_USERS]) for n in range(N_KNOWN_SESSIONS)]
        self.anonymous_sessions = [
            (f"{id_prefix}-session-{N_KNOWN_SESSIONS + n}", None) for n in range(N_ANONYMOUS_SESSIONS)
        ]

    def event_id(self, i: int, suffix: str = "") -> str:
        # The dash before a suffix keeps "p-1-x" from ever equalling "p-12".
        return f"{self.id_prefix}-{i}-{suffix}" if suffix else f"{self.id_prefix}-{i}"

    def valid_date(self) -> int:
        low, high = VALID_DATES_MS
        return self.rng.randint(self.now_ms + low, self.now_ms + high)

    def event(self, i: int, *, anonymous: bool | None = None) -> Event:
        """A valid event of message ``i``: a known user's (70%) or an anonymous visitor's (30%)."""
        rng = self.rng
        if anonymous is None:
            anonymous = rng.random() < ANONYMOUS_SHARE
        session_id, user_id = rng.choice(self.anonymous_sessions if anonymous else self.known_sessions)
        partner = rng.choice(PARTNERS)
        page = rng.choice(PAGE_TYPES)
        location = rng.choice(LOCATIONS)
        return Event(
            event_id=self.event_id(i),
            date=self.valid_date(),
            session_id=session_id,
            user_id=user_id,
            event=rng.choice(EVENT_NAMES),
            page_type=page,
            current_url=f"https://shop.example/{partner.slug}/{page}/{rng.randint(1, 9_999)}",
            referrer=rng.choice((None, "https://www.google.com/", f"https://shop.example/{partner.slug}/")),
            partner_id=partner.partner_id,
            partner_name=partner.name,
            init_session=rng.random() < 0.2,
            user_agent=rng.choice(USER_AGENTS),
            ip=f"203.0.113.{rng.randint(1, 254)}",
            city=location.city,
            country=location.country,
            language=location.language,
            status=rng.choice(STATUSES),
        )

    def data(self, i: int) -> dict[str, Any]:
        """A valid event of message ``i`` as a dict, to mutate."""
        return self.event(i).to_dict()


# A mutation returns the raw value and the user_id the message is keyed by (when it is a string).
Built = tuple[str | bytes, Any]
Builder = Callable[[_Fuzz, int, str], Built]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _built(data: dict[str, Any], text: str | bytes | None = None) -> Built:
    return (_dumps(data) if text is None else text), data.get("user_id")


def _splice(data: dict[str, Any], field: str, literal: str) -> str:
    """The JSON text of ``data`` with ``field``'s value written as ``literal``, verbatim."""
    return _dumps({**data, field: _MARK}).replace(f'"{_MARK}"', literal, 1)


def _filler(rng: random.Random, size: int, alphabet: str) -> str:
    # A random kilobyte repeated: cheap for hundreds of kilobytes, and not compressible to nothing.
    chunk = "".join(rng.choices(alphabet, k=1_000))
    return (chunk * (size // len(chunk) + 1))[:size]


_URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


# --- Valid events, untouched --------------------------------------------------------------------


def _valid(f: _Fuzz, i: int, variant: str) -> Built:
    # Anonymous visitors come with user_id null, or without the key at all (both mean anonymous).
    data = f.event(i, anonymous=variant != "").to_dict()
    if variant == "anonymous_missing":
        del data["user_id"]
    return _built(data)


# --- Broken JSON --------------------------------------------------------------------------------


def _truncated(f: _Fuzz, i: int, variant: str) -> Built:
    # A message cut anywhere (a producer killed mid-write, a bad buffer): never valid JSON.
    data = f.data(i)
    text = _dumps(data)
    return text[: f.rng.randint(1, len(text) - 1)], data["user_id"]


_TRAILING_GARBAGE = {
    "text": " x",
    "second_object": "{}",
    "extra_brace": "}",
    "comma": ",",
    "nul": "\x00",
    "newline_then_object": "\n{}",
}


def _trailing_garbage(f: _Fuzz, i: int, variant: str) -> Built:
    # Content after the object: strict parsers (both checkers) reject it; lenient ones stop early.
    data = f.data(i)
    return _built(data, _dumps(data) + _TRAILING_GARBAGE[variant])


def _random_bytes(f: _Fuzz, i: int, variant: str) -> Built:
    # Not even built from an event: noise, including the empty message and a single byte.
    sizes = {"empty": (0, 0), "one": (1, 1), "short": (2, 64), "long": (1_000, 8_000)}
    return f.rng.randbytes(f.rng.randint(*sizes[variant])), None


_WHITESPACE = " \t\r\n"


def _whitespace(f: _Fuzz, i: int, variant: str) -> Built:
    # JSON whitespace (space, tab, CR, LF) around and between tokens is valid; other blanks are not.
    rng = f.rng
    data = f.data(i)
    text = _dumps(data)
    if variant in ("leading", "trailing"):
        blanks = "".join(rng.choices(_WHITESPACE, k=rng.randint(1, 16)))
        return _built(data, blanks + text if variant == "leading" else text + blanks)
    if variant in ("pretty", "crlf"):
        pretty = json.dumps(data, indent=rng.choice((1, 2, 4, "\t")))
        return _built(data, pretty if variant == "pretty" else pretty.replace("\n", "\r\n") + "\r\n")
    others = {"nbsp_leading": "\u00a0" + text, "vertical_tab": "\x0b" + text, "form_feed_trailing": text + "\x0c"}
    return _built(data, others[variant])


_WHITESPACE_VARIANTS = ("leading", "trailing", "pretty", "crlf", "nbsp_leading", "vertical_tab", "form_feed_trailing")


def _non_object(f: _Fuzz, i: int, variant: str) -> Built:
    # Valid JSON that is not an object: a batch by mistake, a double-encoded event, a bare scalar.
    data = f.data(i)
    texts = {
        "array": lambda: f"[{_dumps(data)}]",
        "empty_array": lambda: "[]",
        "string": lambda: _dumps(_dumps(data)),
        "number": lambda: str(data["date"]),
        "null": lambda: "null",
        "true": lambda: "true",
    }
    return _built(data, texts[variant]())


# --- Bytes that are not UTF-8 -------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"


def _bom(f: _Fuzz, i: int, variant: str) -> Built:
    # A UTF-8 byte order mark (Windows tools write one): JSON text must not start with it.
    data = f.data(i)
    return _built(data, _BOM + _dumps(data).encode())


_INVALID_UTF8 = {
    "continuation": b"\x80",
    "overlong": b"\xc0\xaf",
    "ff": b"\xff",
    "truncated_sequence": b"\xe2\x82",
    "encoded_surrogate": b"\xed\xa0\x80",
    "above_max": b"\xf4\x90\x80\x80",
    "latin1": "ç".encode("latin-1"),
}
_INVALID_UTF8_VARIANTS = tuple(f"{where}:{name}" for where in ("in_string", "at_start") for name in _INVALID_UTF8)


def _invalid_utf8(f: _Fuzz, i: int, variant: str) -> Built:
    # Meant invalid: a checker that decodes with replacement characters would accept these
    # (inside a string) with a silently changed value.
    where, name = variant.split(":")
    data = f.data(i)
    bad = _INVALID_UTF8[name]
    if where == "at_start":
        return _built(data, bad + _dumps(data).encode())
    field = f.rng.choice(("event_id", *FREE_TEXT_FIELDS))
    marked = f.event_id(i, _MARK) if field == "event_id" else (data[field] or "") + _MARK
    return _built(data, _dumps({**data, field: marked}).encode().replace(_MARK.encode(), bad))


# --- Unicode inside kept strings ----------------------------------------------------------------

# What goes inside a JSON string, verbatim: raw UTF-8 text, or escapes where the wire form matters.
_UNICODE = {
    "emoji": "😀👍🏽👨‍👩‍👧🇸🇬",
    "cjk": "点击流データ클릭",
    "combining": "e\u0301a\u0308\u0345",
    "rtl": "שלום مرحبا \u202eevil\u202c",
    "uffff": "\uffff\ufffe",
    "u2028": "\u2028\u2029",
    "nul_escape": r"\u0000",
    "surrogate_pair_escape": r"\ud83d\ude00",
    # Meant invalid: no UTF-8 text can hold them (Cassandra's text cannot).
    "lone_surrogate_high": r"\ud800",
    "lone_surrogate_low": r"\udfff",
    "reversed_surrogates": r"\ude00\ud83d",
    # Meant invalid: a control character must be escaped in JSON.
    "raw_control": "\t",
}


def _unicode(f: _Fuzz, i: int, variant: str) -> Built:
    # The edge case ends the event_id (so the round trip shows in the key the test looks up)
    # and one free-text field.
    data = f.data(i)
    field = f.rng.choice(FREE_TEXT_FIELDS)
    marked = {**data, "event_id": f.event_id(i, _MARK), field: (data[field] or "") + _MARK}
    return _built(data, _dumps(marked).replace(_MARK, _UNICODE[variant]))


# --- Fields of the wrong type, missing or doubled -----------------------------------------------

_ACCEPTED = {
    "event_id": ("string",),
    "date": ("int",),
    "init_session": ("bool",),
    "status": ("int",),
    **dict.fromkeys(REQUIRED_STRING_FIELDS, ("string",)),
    **dict.fromkeys(NULLABLE_STRING_FIELDS, ("string", "null")),
}
# Every field to every JSON type it does not accept, and an empty event_id (a string, but not valid).
_TYPE_SWAP_VARIANTS = (
    *(f"{name}:{to}" for name in FIELDS for to in JSON_TYPES if to not in _ACCEPTED[name]),
    "event_id:empty_string",
)


def _as_type(value: Any, to: str) -> Any:
    """A value of JSON type ``to`` made from ``value``, as a confused producer would write it."""
    if to == "string":
        return _dumps(value)  # 1767225600000 -> "1767225600000", true -> "true"
    if to == "empty_string":
        return ""
    if to == "int":
        return int(value) if isinstance(value, bool) else 12_345
    if to == "float":
        return float(value) if isinstance(value, int) else 1.5  # 200 -> 200.0
    if to == "bool":
        return True
    if to == "null":
        return None
    if to == "array":
        return [value]
    return {"value": value}


def _type_swap(f: _Fuzz, i: int, variant: str) -> Built:
    name, to = variant.split(":")
    data = f.data(i)
    data[name] = _as_type(data[name], to)
    return _built(data)


# A required field left out, or all of them.
def _missing(f: _Fuzz, i: int, variant: str) -> Built:
    data = f.data(i)
    if variant == "all":
        return _built(data, "{}")
    del data[variant]
    return _built(data)


_DUPLICATES = {
    # variant: (field, first value, last value); the last one counts.
    "event_id:decoy_first": ("event_id", "decoy", "real"),
    "event_id:empty_last": ("event_id", "real", ""),
    "date:invalid_first": ("date", 0, "real"),
    "date:invalid_last": ("date", "real", 0),
    "status:invalid_first": ("status", "oops", "real"),
    "status:invalid_last": ("status", "real", "oops"),
    "user_id:null_last": ("user_id", "real", None),
}


def _duplicate_key(f: _Fuzz, i: int, variant: str) -> Built:
    # A key written twice: both checkers keep the last value (Python's json, Jackson's default).
    name, first, last = _DUPLICATES[variant]
    data = f.event(i, anonymous=False).to_dict()
    values = {"real": data[name], "decoy": f.event_id(i, "decoy")}
    first, last = values.get(first, first), values.get(last, last)
    rest = _dumps({k: v for k, v in data.items() if k != name})
    text = f"{{{_dumps(name)}:{_dumps(first)},{rest[1:-1]},{_dumps(name)}:{_dumps(last)}}}"
    return text, last if name == "user_id" else data["user_id"]


# --- Numbers ------------------------------------------------------------------------------------

_NUMBERS: dict[str, Callable[[int], str]] = {
    # How an integer field goes wrong on the wire, given its valid value.
    "nan": lambda v: "NaN",
    "infinity": lambda v: "Infinity",
    "-infinity": lambda v: "-Infinity",
    "-0": lambda v: "-0",
    "1e400": lambda v: "1e400",
    "1.0": lambda v: "1.0",
    "dot_zero": lambda v: f"{v}.0",
    "exponent": lambda v: f"{v}e0",
    "leading_zero": lambda v: f"0{v}",
    "plus": lambda v: f"+{v}",
    "hex": lambda v: hex(v),
    # Integer limits: at most 18 digits are accepted (the SQL side's BIGINT with room to spare).
    "19_digits": lambda v: "1234567890123456789",
    "1e17": lambda v: str(10**17),
    "max": lambda v: "9" * 18,
    "min": lambda v: "-" + "9" * 18,
}
_NUMBER_VARIANTS = tuple(f"{name}:{literal}" for name in ("date", "status") for literal in _NUMBERS)


def _number(f: _Fuzz, i: int, variant: str) -> Built:
    name, literal = variant.split(":")
    data = f.data(i)
    return _built(data, _splice(data, name, _NUMBERS[literal](data[name])))


_BOUNDARY_DATE_VARIANTS = (
    "earliest",
    "before_earliest",
    "seconds",
    "microseconds",
    "nanoseconds",
    "negative",
    "zero",
    "future_hours",
    "future_years",
)


def _boundary_date(f: _Fuzz, i: int, variant: str) -> Built:
    # The edges of a plausible event time, and the usual unit mistakes. Only "earliest" is valid;
    # the future ones are far enough ahead that a checker running hours late still refuses them.
    rng = f.rng
    data = f.data(i)
    dates = {
        "earliest": lambda: EARLIEST_MS,
        "before_earliest": lambda: EARLIEST_MS - 1,
        "seconds": lambda: data["date"] // 1_000,
        "microseconds": lambda: data["date"] * 1_000,
        "nanoseconds": lambda: data["date"] * 1_000_000,
        "negative": lambda: -data["date"],
        "zero": lambda: 0,
        "future_hours": lambda: f.now_ms + rng.randint(6 * HOUR_MS, 48 * HOUR_MS),
        "future_years": lambda: f.now_ms + rng.randint(YEAR_MS, 1_000 * YEAR_MS),
    }
    data["date"] = dates[variant]()
    return _built(data)


# --- Unknown fields and big values --------------------------------------------------------------


def _extra_field(f: _Fuzz, i: int, variant: str) -> Built:
    # Unknown fields are allowed, wherever they are; near misses of known names stay unknown.
    data = f.data(i)
    extras = {
        "scalars": {"x_flag": True, "x_count": 7, "x_ratio": 0.5, "x_none": None},
        "object": {"extra": {"nested": [1, 2, {"a": None}], "empty": {}}},
        "empty_name": {"": "empty name"},
        "near_names": {"Event_Id": 5, "event_id ": 5, "STATUS": "x", "date_ms": "yesterday"},
        "long_name": {"x" * 5_000: 1},
    }[variant]
    ordered = {**extras, **data} if f.rng.random() < 0.5 else {**data, **extras}
    return _built(ordered)


def _huge_number(f: _Fuzz, i: int, variant: str) -> Built:
    # A 2000-digit number in an unknown field: valid JSON, and ignored by the schema.
    rng = f.rng
    digits = str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=1_999))
    literal = {"int": digits, "negative": "-" + digits, "float": f"{digits[:1_000]}.{digits[1_000:]}"}[variant]
    data = f.data(i)
    return _built(data, _splice({**data, "x_big": None}, "x_big", literal))


def _huge_string(f: _Fuzz, i: int, variant: str) -> Built:
    # A 200 KB string in an unknown field.
    data = f.data(i)
    data["x_blob"] = _filler(f.rng, 200_000, _URL_SAFE)
    return _built(data)


def _huge_field(f: _Fuzz, i: int, variant: str) -> Built:
    # Huge values in fields the pipeline keeps: a 100 KB url, a 300 KB user agent.
    data = f.data(i)
    if variant == "current_url":
        data["current_url"] += "?q=" + _filler(f.rng, 100_000, _URL_SAFE)
    else:
        data["user_agent"] += " " + _filler(f.rng, 300_000, _URL_SAFE + " ()/;")
    return _built(data)


def _deep_nesting(f: _Fuzz, i: int, variant: str) -> Built:
    # An unknown field nested ``depth`` deep. The checker is to reject nesting beyond a fixed limit
    # (about 500): 400 is meant valid, 900 and more invalid (1,000 also exhausts Python's parser).
    depth_text, shape = variant.split(":")
    depth = f.rng.randint(900, 1_200) if depth_text == "900-1200" else int(depth_text)
    # depth arrays, or depth objects each holding the next under "a".
    opener, innermost, closer = ("[", "[]", "]") if shape == "array" else ('{"a":', "{}", "}")
    literal = opener * (depth - 1) + innermost + closer * (depth - 1)
    data = f.data(i)
    return _built(data, _splice({**data, "x_deep": None}, "x_deep", literal))


# --- The table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MutationClass:
    """A class of messages: its share of the corpus and its variants, taken in turn."""

    name: str
    weight: float  # percent of the messages
    build: Builder
    variants: tuple[str, ...] = ("",)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f"{self.name}:{v}" if v else self.name for v in self.variants))


CLASSES: tuple[MutationClass, ...] = (
    # 70% known users, 20% anonymous with user_id null, 10% anonymous without the key.
    MutationClass("valid", 35, _valid, ("",) * 7 + ("anonymous",) * 2 + ("anonymous_missing",)),
    MutationClass("truncated", 6, _truncated),
    MutationClass("type_swap", 13.5, _type_swap, _TYPE_SWAP_VARIANTS),
    MutationClass(
        "missing", 4, _missing, ("event_id", "date", *REQUIRED_STRING_FIELDS, "init_session", "status", "all")
    ),
    MutationClass("extra_field", 3, _extra_field, ("scalars", "object", "empty_name", "near_names", "long_name")),
    MutationClass("huge_number", 0.5, _huge_number, ("int", "negative", "float")),
    MutationClass("huge_string", 0.4, _huge_string),
    MutationClass("huge_field", 0.6, _huge_field, ("current_url", "user_agent")),
    MutationClass("deep_nesting", 1.5, _deep_nesting, ("400:array", "400:object", "900:object", "900-1200:array")),
    MutationClass("random_bytes", 3, _random_bytes, ("empty", "one", "short", "long")),
    MutationClass("invalid_utf8", 3, _invalid_utf8, _INVALID_UTF8_VARIANTS),
    MutationClass("bom", 1, _bom),
    MutationClass("unicode", 6, _unicode, tuple(_UNICODE)),
    MutationClass("number", 5, _number, _NUMBER_VARIANTS),
    MutationClass("duplicate_key", 3, _duplicate_key, tuple(_DUPLICATES)),
    MutationClass("whitespace", 4, _whitespace, _WHITESPACE_VARIANTS),
    MutationClass("trailing_garbage", 3, _trailing_garbage, tuple(_TRAILING_GARBAGE)),
    MutationClass("non_object", 2.5, _non_object, ("array", "empty_array", "string", "number", "null", "true")),
    MutationClass("boundary_date", 5, _boundary_date, _BOUNDARY_DATE_VARIANTS),
)
KINDS: tuple[str, ...] = tuple(kind for cls in CLASSES for kind in cls.kinds)


def fuzz_messages(count: int, *, now_ms: int, seed: int, id_prefix: str) -> list[FuzzMessage]:
    """``count`` raw messages in a shuffled, reproducible order; message ``i`` has event_id
    ``f"{id_prefix}-{i}"`` (or that and a suffix) where it has one."""
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    rng = random.Random(seed)
    fuzz = _Fuzz(rng, now_ms, id_prefix)
    taken: dict[str, int] = {}
    messages = []
    for i, cls in enumerate(_plan(rng, count)):
        # Variants in turn, so each class covers all of its variants once it has as many messages.
        n = taken.get(cls.name, 0)
        taken[cls.name] = n + 1
        variant = cls.variants[n % len(cls.variants)]
        value, user_id = cls.build(fuzz, i, variant)
        raw = value.encode() if isinstance(value, str) else value
        if len(raw) >= MAX_MESSAGE_BYTES:
            raise AssertionError(f"message {i} ({cls.name}) has {len(raw):,} bytes")
        key = user_id.encode() if isinstance(user_id, str) else None
        messages.append(FuzzMessage(key, raw, f"{cls.name}:{variant}" if variant else cls.name))
    return messages


def _plan(rng: random.Random, count: int) -> list[MutationClass]:
    """Each class's share of ``count`` as exactly as whole messages allow, in a shuffled order."""
    total = sum(cls.weight for cls in CLASSES)
    exact = [count * cls.weight / total for cls in CLASSES]
    quotas = [int(share) for share in exact]
    # The messages left over go to the largest remainders (a stable sort: deterministic on ties).
    by_remainder = sorted(range(len(CLASSES)), key=lambda k: quotas[k] - exact[k])
    for k in by_remainder[: count - sum(quotas)]:
        quotas[k] += 1
    plan = [cls for cls, quota in zip(CLASSES, quotas, strict=True) for _ in range(quota)]
    rng.shuffle(plan)
    return plan
