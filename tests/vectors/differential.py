"""Differential corpus for the event check: many mutated messages with Python's verdict on each,
for Java's CheckClickEvent to be held to (CheckClickEventDifferentialTest).

    python tests/vectors/differential.py /tmp/differential.jsonl [--seed 1] [--random 40000]
    CLICKLIB_DIFFERENTIAL=/tmp/differential.jsonl mvn -B -q -f ksql/functions/pom.xml test \
        -Dtest=CheckClickEventDifferentialTest

Each line has the shape of a shared vector (tests/vectors/events.jsonl) with the message always
as base64 (null for no message), checked at the vectors' clock. Messages are bytes: truncations
of valid events at every byte, random byte flips, insertions and deletions, every field set to
values of every type, duplicate keys, deep and long values, Unicode and UTF-8 edge cases,
whitespace and control characters, trailing content, JSON that is not an object, and random
byte strings.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
from collections.abc import Iterator
from pathlib import Path

from clicklib.events import FIELDS, MAX_DEPTH, DateRule, invalid_reason

NOW = 1_767_225_600_000  # the shared vectors' clock
AT_NOW = DateRule(clock=lambda: NOW)

VALID_EVENTS = [
    {
        "event_id": "e-1",
        "date": NOW,
        "session_id": "s-1",
        "user_id": "u-1",
        "event": "pageview",
        "page_type": "home",
        "current_url": "https://shop.example/a/?q=[1]{2}",
        "referrer": None,
        "partner_id": "p1",
        "partner_name": "Kopi & Co",
        "init_session": True,
        "user_agent": 'Mozilla/5.0 "quoted" \\ back',
        "ip": "203.0.113.7",
        "city": "Hồ Chí Minh",
        "country": "VN",
        "language": "vi",
        "status": 200,
    },
    {
        "event_id": "😀-é-中",
        "date": NOW - 1,
        "session_id": "",
        "event": "click",
        "page_type": "cart",
        "current_url": "u\u2028\ufeff\uffff",
        "init_session": False,
        "status": -0,
        "extra": {"nested": [1, 2.5, None, True, "x"]},
    },
]

# JSON texts to put in a field, each as it appears in the message: JSON of every type, then not JSON.
# Split from words (noqa: SIM905) so that some hundred short literals fit on a few lines.
VALUE_LITERALS = [
    *"""null true false 0 -0 1 -1 0.0 -0.0 1.0 1e3 1E3 1e+3 1e-3 1e400 -1e400 NaN -NaN Infinity -Infinity
    1767225600000 1767225600000.0 1767225600000e0 17672256000000000 1767225600 999999999999999999
    -999999999999999999 1000000000000000000 -1000000000000000000 9223372036854775807 9223372036854775808
    -9223372036854775809 "" "x" "1767225600000" "true" [] {} [1] {"a":1} [[[]]]""".split(),  # noqa: SIM905
    *["9" * 1001, "9" * 2000, "-" + "9" * 2000, "0." + "9" * 2000],
    *r""""\ud800" "\udfff" "\ud83d\ude00" "\ude00\ud83d" "\ud83dx" "x\ud83d" "\ud83d\u0041"
    "\ud83d\ud83d\ude00" "\u00e9" "\/" "\b\f\n\r\t" "\u0000" """.split(),  # noqa: SIM905
    *['"\\ud83d\U0001f600"', '"\U0001f600"', '"\ufeff"', '"\u2028"', '"\ud7ff\ue000"'],
    *r"""01 -01 00 1. .5 +1 1e 1e+ 0x10 1_000 - --1 tru nul True None 'x' "\x" "\u12" "\u12G4" "\U0041"
    "\'" 1.e5 -.5 1e5.5 [1,] {"a":1,} {"a":} {a:1} [ ] { } " /*c*/1 1//c #1""".split(),  # noqa: SIM905
    *["\uff11", "[1 2]", '{"a" 1}', '"\t"', '"\x00"', '"\x1f"', '"\x7f"'],
]

EDGE_BYTES = [
    bytes.fromhex(sequence)
    for sequence in """efbbbf c0af c1bf e080af f08080af eda080 edbfbf eda0bdedb880 f888808080 fc8480808080 f4908080
    f5808080 fe ff 80 bf c2 e282 f09f98 e0a0 c3a9 e282ac f09f9880 efbfbe efbfbf f48fbfbf 00 1f 7f c2a0
    e280a8""".split()  # noqa: SIM905
]

SPECIAL_BYTES = b'{}[]",:\\ \t\n\r0123456789-+.eEtrufalsn\x00\x1f\x7f\x80\xbf\xc0\xc3\xe0\xed\xef\xf0\xf4\xf8\xff'
SPECIAL_ASCII = bytes(b for b in SPECIAL_BYTES if b < 0x80)
WHITESPACE = [b" ", b"\t", b"\n", b"\r", b"\x0c", b"\x0b", b"\x00", b"\xc2\xa0", b"\xe2\x80\xa8", b"\xef\xbb\xbf"]


def encodings(event: dict) -> list[bytes]:
    """A valid event written a few ways."""
    return [
        json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode(),
        json.dumps(event, ensure_ascii=True).encode(),
        json.dumps(event, indent=2, ensure_ascii=False).encode(),
    ]


def with_field(event: dict, name: str, literal: str) -> bytes:
    """The event with one field's value replaced by a JSON text (or added at the end)."""
    placeholder = "\u0001PLACEHOLDER\u0001"
    text = json.dumps({**event, name: placeholder}, separators=(",", ":"), ensure_ascii=False)
    return text.replace(json.dumps(placeholder), literal).encode("utf-8", "surrogatepass")


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)
    return '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2)


def messages(rng: random.Random, n_random: int) -> Iterator[tuple[str, bytes | None]]:
    bases = [raw for event in VALID_EVENTS for raw in encodings(event)]
    yield "no message", None
    yield "empty", b""
    for i, raw in enumerate(bases):
        yield f"valid {i}", raw
    # Truncations at every byte, and prefixes with one byte of garbage.
    for i, raw in enumerate(bases[:4]):
        for cut in range(len(raw)):
            yield f"base {i} cut at {cut}", raw[:cut]
            yield f"base {i} cut at {cut} plus a byte", raw[:cut] + bytes([rng.choice(SPECIAL_BYTES)])
    # Every field of every type, in each base event.
    for event in VALID_EVENTS:
        for name in [*FIELDS, "extra"]:
            for literal in VALUE_LITERALS:
                yield f"{name} = {literal[:40]!r}", with_field(event, name, literal)
            data = {k: v for k, v in event.items() if k != name}
            yield f"without {name}", json.dumps(data).encode()
            good = json.dumps(event.get(name))
            yield f"{name} bad then good", with_field(event, name, "[1]")[:-1] + f',"{name}":{good}}}'.encode()
            yield f"{name} good then bad", with_field(event, name, good)[:-1] + f',"{name}":[1]}}'.encode()
    # Deep values: around the limit, Jackson's and Python's default limits, and far beyond.
    event = VALID_EVENTS[0]
    around_the_limit = range(MAX_DEPTH - 2, MAX_DEPTH + 3)
    for depth in (1, 2, *around_the_limit, 998, 999, 1000, 1001, 5000):
        for kind in ("array", "object", "mixed"):
            inner = nested(depth, kind)
            yield f"depth {depth} {kind} in an unknown field", with_field(event, "extra", inner)
            yield f"depth {depth} {kind} in current_url", with_field(event, "current_url", inner)
            yield f"depth {depth} {kind} as the root", inner.encode()
            yield f"depth {depth} {kind} cut short", with_field(event, "extra", inner[:-1])
            yield f"depth {depth} {kind} after content", with_field(event, "extra", inner).replace(b"{", b"{x", 1)
            yield f"depth {depth} {kind} in a string", with_field(event, "extra", json.dumps(inner))
            yield f"depth {depth} {kind} after the event", with_field(event, "extra", "1") + inner.encode()
            yield f"depth {depth} {kind} with a stray quote", with_field(event, "extra", '"' + inner)
            yield (
                f"depth {depth} {kind} with brackets in strings",
                with_field(event, "extra", inner.replace("[]", '["]\\"[", "\\\\"]', 1)),
            )
    # Long values.
    for length in (1000, 1001, 2000, 50_000, 50_001, 100_000):
        yield f"date of {length} digits", with_field(event, "date", "1" * length)
        yield f"unknown number of {length} digits", with_field(event, "extra", "1" * length)
        yield f"unknown float of {length} digits", with_field(event, "extra", "1." + "1" * length + "e-" + "9" * 5)
        yield f"name of {length} chars", with_field(event, "n" * length, "1")
        yield f"string of {length} chars", with_field(event, "city", json.dumps("é" * length))
    # Bytes around and inside the event.
    for i, raw in enumerate(bases[:2]):
        for edge in EDGE_BYTES + WHITESPACE:
            yield f"base {i} with {edge!r} first", edge + raw
            yield f"base {i} with {edge!r} last", raw + edge
            for _ in range(20):
                at = rng.randrange(len(raw) + 1)
                yield f"base {i} with {edge!r} at {at}", raw[:at] + edge + raw[at:]
        for garbage in (b"x", b"}", b"{}", b"[]", b",", b"//c", b"/*c*/", b"1", b'"x"', b"null", b" \n\t\r"):
            yield f"base {i} then {garbage!r}", raw + garbage
    for root in ("   ", "[1,2]", '"text"', "42", "-0", "1e400", "null", "true", "[]", "{}", '""', " {} ", "[{}]"):
        yield f"root {root}", root.encode()
    # Random damage to valid events: half of it keeps the bytes ASCII, so that it reaches the parser.
    for n in range(n_random):
        raw = bytearray(rng.choice(bases))
        ascii_only = n % 2 == 0
        for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
            action = rng.randrange(4)
            at = rng.randrange(len(raw) + 1)
            if action == 0 and at < len(raw):
                raw[at] = rng.choice(SPECIAL_ASCII if ascii_only or rng.random() < 0.7 else range(256))
            elif action == 1:
                edge = bytes([rng.choice(SPECIAL_ASCII)]) if ascii_only else rng.choice(EDGE_BYTES)
                raw[at:at] = edge if ascii_only or rng.random() < 0.3 else bytes([rng.choice(SPECIAL_BYTES)])
            elif action == 2 and at < len(raw):
                del raw[at : at + rng.choice((1, 1, 2, 4))]
            else:
                raw[at:at] = rng.choice(VALUE_LITERALS).encode("utf-8", "surrogatepass")
        yield f"random damage {n}", bytes(raw)
    # Random byte strings, for the UTF-8 decoders above all.
    for n in range(n_random):
        parts = []
        for _ in range(rng.randrange(1, 12)):
            choice = rng.random()
            if choice < 0.4:
                parts.append(rng.choice(EDGE_BYTES))
            elif choice < 0.7:
                parts.append(bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randrange(1, 4))))
            elif choice < 0.85:
                parts.append(rng.choice(["é", "€", "😀", "中", "a", '{"a":"', '"}']).encode())
            else:
                parts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6))))
        yield f"random bytes {n}", b"".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--random", type=int, default=45_000, help="messages of each random kind")
    args = parser.parse_args()
    count = 0
    with args.output.open("w") as out:
        for note, raw in messages(random.Random(args.seed), args.random):
            message = {"message": None} if raw is None else {"message_base64": base64.b64encode(raw).decode()}
            vector = {"note": note, **message, "reason": invalid_reason(raw, AT_NOW)}
            out.write(json.dumps(vector) + "\n")
            count += 1
    print(f"{count:,} messages written to {args.output}")


if __name__ == "__main__":
    main()
