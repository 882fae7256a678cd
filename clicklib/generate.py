"""A deterministic simulator of shoppers browsing a handful of partner shops.

Visitors arrive at a steady pace; each session walks the shop funnel (home, category,
search, product, cart, checkout, purchase) with back-and-forth and drop-off at every
step. Registered users come back for several sessions, anonymous visitors do not.
Page loads fail now and then, and during short error bursts much more often, so a
status alert has something to find. Everything is drawn from one seeded
``random.Random``: the same arguments always give the same workload.

Records come out in the order they happened; the recorded ``date`` lags the true time
by a random delay of at most ``max_jitter_ms``, the bounded disorder a watermark of
that delay absorbs.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clicklib.events import Event, invalid_reason, parse
from clicklib.exceptions import InvalidEventError

DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SESSION_GAP_MS = 30 * 60_000
ANONYMOUS_SHARE = 0.25
MOBILE_SHARE = 0.6
# Sessions average about 4.8 events (most visitors bounce), so this pace gives about
# 3.7 events per second of event time: 20,000 events span about an hour and a half.
MEAN_SESSION_INTERVAL_MS = 1_300
MEAN_EVENTS_PER_SESSION = 4.8
# Enough users that most can keep 30 minutes between their sessions at this pace.
EVENTS_PER_USER = 4
MAX_PAGES_PER_SESSION = 40
ERROR_RATE = 0.02
BURST_ERROR_RATE = 0.35
# A user picked while still inside their previous session (or its 30 minute gap) is
# usually swapped for another; only after this many tries do sessions run together.
MAX_USER_PICKS = 10
EXIT = "exit"

# Values and their cumulative weights, ready for random.choices.
WeightedTable = tuple[list[Any], list[float]]


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    slug: str
    weight: float


@dataclass(frozen=True)
class Location:
    city: str
    country: str
    language: str
    weight: float


@dataclass(frozen=True)
class Segment:
    name: str
    share: float
    # How much more often than a casual user this user starts a session.
    visit_weight: float
    # Multiplies the forward steps of the funnel (to cart, to checkout, to purchase).
    buy_boost: float
    signup_days_ago: tuple[int, int]


PARTNERS = (
    Partner("p-1001", "Lumen Electronics", "lumen", 22),
    Partner("p-1002", "Kopi & Co", "kopi-co", 16),
    Partner("p-1003", "Batik House", "batik-house", 14),
    Partner("p-1004", "Urban Sneakers", "urban-sneakers", 12),
    Partner("p-1005", "Rumah Living", "rumah-living", 11),
    Partner("p-1006", "Glow Beauty", "glow-beauty", 10),
    Partner("p-1007", "Playtime Toys", "playtime", 8),
    Partner("p-1008", "Pages Bookstore", "pages", 7),
)

LOCATIONS = (
    Location("Singapore", "SG", "en", 14),
    Location("Jakarta", "ID", "id", 18),
    Location("Surabaya", "ID", "id", 6),
    Location("Kuala Lumpur", "MY", "ms", 12),
    Location("Bangkok", "TH", "th", 14),
    Location("Manila", "PH", "en", 12),
    Location("Ho Chi Minh City", "VN", "vi", 10),
    Location("Sydney", "AU", "en", 8),
    Location("Melbourne", "AU", "en", 6),
)

SEGMENTS = (
    Segment("new", 0.20, 1.0, 0.8, (1, 14)),
    Segment("casual", 0.50, 1.5, 1.0, (15, 730)),
    Segment("loyal", 0.22, 4.0, 1.5, (90, 1_500)),
    Segment("vip", 0.08, 8.0, 2.2, (180, 2_500)),
)
ANONYMOUS_BUY_BOOST = 0.7

MOBILE_USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.6312.99 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; 2201117TG) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.6261.119 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
)

DESKTOP_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 "
    "Edg/124.0.2478.67",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
)

# Where a session's first page load came from; None is a direct visit.
EXTERNAL_REFERRERS = (
    (None, 35),
    ("https://www.google.com/", 35),
    ("https://www.facebook.com/", 15),
    ("https://newsletter.shop.example/", 10),
    ("https://www.instagram.com/", 5),
)

# Fake client addresses from the documentation ranges (RFC 5737).
IP_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")

CATEGORIES = ("electronics", "fashion", "home-living", "beauty", "sports", "toys", "groceries", "books")
SEARCH_TERMS = (
    "headphones",
    "running+shoes",
    "rice+cooker",
    "sunscreen",
    "phone+case",
    "yoga+mat",
    "lego",
    "coffee+beans",
    "backpack",
    "desk+lamp",
)

ENTRY_PAGES = (("home", 45), ("category", 25), ("productDetail", 25), ("search", 5))
NEXT_PAGES = {
    "home": (("category", 45), ("search", 25), ("productDetail", 10), (EXIT, 20)),
    "category": (("productDetail", 50), ("category", 12), ("search", 8), ("home", 5), (EXIT, 25)),
    "search": (("productDetail", 50), ("search", 15), ("category", 7), (EXIT, 28)),
    "productDetail": (("productDetail", 15), ("category", 18), ("search", 7), ("cart", 14), (EXIT, 46)),
    "cart": (("checkout", 45), ("productDetail", 15), ("category", 5), (EXIT, 35)),
    "checkout": (("purchase", 55), ("cart", 10), (EXIT, 35)),
    "purchase": (("home", 5), (EXIT, 95)),
}
FUNNEL_STEPS = {("productDetail", "cart"), ("cart", "checkout"), ("checkout", "purchase")}

ERROR_STATUSES = ((404, 5), (500, 3), (503, 2))
BURST_ERROR_STATUSES = ((404, 1), (500, 4), (503, 5))


@dataclass(frozen=True)
class UserProfile:
    """A registered user, as published to the compacted ``clickstream_users`` topic."""

    user_id: str
    signup_date: int
    home_city: str
    segment: str
    updated_at: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass(frozen=True)
class GeneratedRecord:
    """One Kafka message: its key, its exact value, and what the value decodes to."""

    key: str | None
    value: str
    event: Event | None
    reason: str | None


@dataclass(frozen=True)
class Workload:
    """User profiles and the raw records to produce, in production order."""

    profiles: list[UserProfile]
    records: list[GeneratedRecord]
    start_ms: int | None = None  # the simulation's start: the same seed and start give these records again

    @property
    def events(self) -> list[Event]:
        """The valid events, in production order."""
        return [r.event for r in self.records if r.event is not None]


def generate(
    n_events: int,
    seed: int = 42,
    invalid_ratio: float = 0.0,
    start_ms: int = DEFAULT_START_MS,
    n_users: int | None = None,
    max_jitter_ms: int = 5_000,
    end_ms: int | None = None,
) -> Workload:
    """Simulate exactly ``n_events`` records starting at ``start_ms``, ``invalid_ratio`` of them broken.

    With ``end_ms`` the workload ends there instead (its last event is dated at most ``end_ms``):
    a workload that shares a pipeline with real traffic ends at the moment it is produced, so it
    never runs ahead of the clock (and of the windows' watermark).
    """
    if end_ms is not None:
        # The simulated timeline is relative to its start: one run at 0 gives the span.
        trial = generate(n_events, seed, invalid_ratio, 0, n_users, max_jitter_ms)
        span = max((e.date for e in trial.events), default=0)
        return generate(n_events, seed, invalid_ratio, end_ms - span, n_users, max_jitter_ms)
    if n_events < 0:
        raise ValueError(f"n_events must be 0 or more, got {n_events}")
    if not 0.0 <= invalid_ratio <= 1.0:
        raise ValueError(f"invalid_ratio must be between 0 and 1, got {invalid_ratio}")
    if max_jitter_ms < 0:
        raise ValueError(f"max_jitter_ms must be 0 or more, got {max_jitter_ms}")
    if n_users is None:
        n_users = max(10, n_events // EVENTS_PER_USER)
    if n_users < 1:
        raise ValueError(f"n_users must be at least 1, got {n_users}")
    rng = random.Random(seed)
    profiles = _profiles(rng, n_users, start_ms)
    shop = _Shop(rng, profiles, start_ms, n_events, max_jitter_ms)
    records = _records(rng, shop.first_events(n_events), invalid_ratio, max_jitter_ms, shop.id_salt)
    return Workload(profiles, records, start_ms)


def read_jsonl(path: str | Path) -> Workload:
    """Load a file of raw messages, one per line; a valid event is keyed by its user_id.

    Everything is held in memory: to send a file of any size, with lines that are not UTF-8,
    stream it with ``clicklib.produce.produce_file`` (``clicklib produce --file``) instead.
    """
    records = []
    with open(path, "rb") as source:
        for number, line in enumerate(source, start=1):
            try:
                value = line.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path} line {number} is not UTF-8 (byte {exc.start + 1}); "
                    "`clicklib produce --file` sends such lines as they are"
                ) from None
            if not value.strip():
                continue
            try:
                event = parse(value)
            except InvalidEventError as exc:
                records.append(GeneratedRecord(None, value, None, exc.reason))
            else:
                records.append(GeneratedRecord(event.user_id, value, event, None))
    return Workload(profiles=[], records=records)


def write_jsonl(workload: Workload, path: str | Path) -> None:
    """Write every record's value, valid or not, one per line."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.writelines(record.value + "\n" for record in workload.records)


def _profiles(rng: random.Random, n_users: int, start_ms: int) -> list[UserProfile]:
    day_ms = 86_400_000
    homes, home_weights = zip(*((loc.city, loc.weight) for loc in LOCATIONS), strict=True)
    segments = rng.choices(SEGMENTS, weights=[s.share for s in SEGMENTS], k=n_users)
    # Drawn from a space large enough that workloads with other seeds share no users.
    numbers = rng.sample(range(16**12), n_users)
    profiles = []
    for number, segment in zip(numbers, segments, strict=True):
        low, high = segment.signup_days_ago
        signup = start_ms - rng.randint(low * day_ms, high * day_ms)
        # Profiles change (segment moves, address edits) some time after signup, always before the stream.
        updated = rng.randint(signup, start_ms - 1)
        home = rng.choices(homes, weights=home_weights)[0]
        profiles.append(UserProfile(f"user-{number:012x}", signup, home, segment.name, updated))
    return profiles


def _cumulative(choices: tuple[tuple[Any, float], ...]) -> WeightedTable:
    values = [value for value, _ in choices]
    totals = []
    total = 0.0
    for _, weight in choices:
        total += weight
        totals.append(total)
    return values, totals


def _walk_tables(buy_boost: float) -> dict[str, WeightedTable]:
    tables = {}
    for page, choices in NEXT_PAGES.items():
        boosted = tuple((nxt, w * buy_boost if (page, nxt) in FUNNEL_STEPS else w) for nxt, w in choices)
        tables[page] = _cumulative(boosted)
    return tables


class _Shop:
    """The simulation state: who is browsing, when, and when the site is failing."""

    def __init__(
        self, rng: random.Random, profiles: list[UserProfile], start_ms: int, n_events: int, max_jitter_ms: int
    ) -> None:
        self.rng = rng
        self.id_salt = _id_salt(start_ms)
        self.max_jitter_ms = max_jitter_ms
        # True times start late enough that subtracting the jitter never goes before start_ms.
        self.clock = start_ms + max_jitter_ms
        self.pending: list[tuple[int, int, dict[str, Any]]] = []
        self.busy_until: dict[str, int] = {}
        segments = {s.name: s for s in SEGMENTS}
        self.visit_weights = _cumulative(tuple((p, segments[p.segment].visit_weight) for p in profiles))
        self.walks = {s.name: _walk_tables(s.buy_boost) for s in SEGMENTS}
        self.anonymous_walk = _walk_tables(ANONYMOUS_BUY_BOOST)
        self.locations = _cumulative(tuple((loc, loc.weight) for loc in LOCATIONS))
        self.by_city = {loc.city: loc for loc in LOCATIONS}
        self.partners = _cumulative(tuple((p, p.weight) for p in PARTNERS))
        self.referrers = _cumulative(EXTERNAL_REFERRERS)
        self.entries = _cumulative(ENTRY_PAGES)
        self.bursts = self._error_bursts(start_ms, n_events)
        self.burst_starts = [begin for begin, _ in self.bursts]

    def first_events(self, n_events: int) -> list[tuple[int, dict[str, Any]]]:
        """The ``n_events`` earliest events by true time, as (true time, fields)."""
        while len(self.pending) < n_events:
            self._session()
        if n_events:
            # Sessions starting up to the n-th earliest event can still interleave before it.
            horizon = sorted(t for t, _, _ in self.pending)[n_events - 1]
            while self.clock <= horizon:
                self._session()
        self.pending.sort(key=lambda item: (item[0], item[1]))
        return [(t, fields) for t, _, fields in self.pending[:n_events]]

    def _pick(self, table: WeightedTable) -> Any:
        values, totals = table
        return self.rng.choices(values, cum_weights=totals)[0]

    def _error_bursts(self, start_ms: int, n_events: int) -> list[tuple[int, int]]:
        rng = self.rng
        expected_span = int(n_events / MEAN_EVENTS_PER_SESSION * MEAN_SESSION_INTERVAL_MS)
        # The first burst comes early enough that even a short workload has one.
        begin = start_ms + int(rng.uniform(0.2, 0.5) * min(expected_span, 45 * 60_000))
        bursts = []
        while begin < start_ms + expected_span + 2 * 3_600_000:
            end = begin + rng.randint(60_000, 120_000)
            bursts.append((begin, end))
            begin = end + rng.randint(30 * 60_000, 90 * 60_000)
        return bursts

    def _status(self, t: int) -> int:
        i = bisect.bisect_right(self.burst_starts, t) - 1
        in_burst = i >= 0 and t < self.bursts[i][1]
        if self.rng.random() >= (BURST_ERROR_RATE if in_burst else ERROR_RATE):
            return 200
        statuses = BURST_ERROR_STATUSES if in_burst else ERROR_STATUSES
        return self.rng.choices([s for s, _ in statuses], weights=[w for _, w in statuses])[0]

    def _visitor(self) -> UserProfile | None:
        if self.rng.random() < ANONYMOUS_SHARE:
            return None
        for _ in range(MAX_USER_PICKS):
            profile = self._pick(self.visit_weights)
            if self.busy_until.get(profile.user_id, 0) < self.clock:
                break
        return profile

    def _session(self) -> None:
        rng = self.rng
        start = self.clock
        self.clock += 1 + int(rng.expovariate(1 / MEAN_SESSION_INTERVAL_MS))
        profile = self._visitor()
        if profile is not None and rng.random() < 0.9:
            location = self.by_city[profile.home_city]
        else:
            location = self._pick(self.locations)
        partner = self._pick(self.partners)
        agents = MOBILE_USER_AGENTS if rng.random() < MOBILE_SHARE else DESKTOP_USER_AGENTS
        base = {
            "session_id": _new_id(rng, self.id_salt),
            "user_id": profile.user_id if profile else None,
            "partner_id": partner.partner_id,
            "partner_name": partner.name,
            "user_agent": rng.choice(agents),
            "ip": f"{rng.choice(IP_PREFIXES)}{rng.randint(1, 254)}",
            "city": location.city,
            "country": location.country,
            "language": location.language,
        }
        walk = self.walks[profile.segment] if profile else self.anonymous_walk
        last = self._walk(start, base, partner.slug, walk)
        if profile is not None:
            self.busy_until[profile.user_id] = last + SESSION_GAP_MS + self.max_jitter_ms

    def _walk(self, t: int, base: dict[str, Any], slug: str, walk: dict[str, WeightedTable]) -> int:
        """Emit one session's events from true time ``t``; returns the time of its last event."""
        rng = self.rng
        page = self._pick(self.entries)
        url = _url(rng, slug, page)
        referrer = self._pick(self.referrers)
        last = t
        for n in range(MAX_PAGES_PER_SESSION):
            status = self._status(t)
            # Every event on a page carries that page load's url, referrer and status.
            on_page = {**base, "page_type": page, "current_url": url, "referrer": referrer, "status": status}
            self._emit(t, on_page, "pageview", init_session=n == 0)
            dwell = min(max(int(rng.lognormvariate(math.log(20_000), 0.8)), 2_000), 180_000)
            if status != 200:
                # A failed load is reloaded or abandoned.
                next_page = page if rng.random() < 0.5 else EXIT
            else:
                next_page = self._pick(walk[page])
                actions = []
                if page == "search":
                    actions.append("search")
                if page == "purchase":
                    actions.append("purchase")
                if (page == "productDetail" and next_page == "cart") or (page == "cart" and rng.random() < 0.1):
                    actions.append("add_to_cart")
                if rng.random() < 0.5:
                    actions.append("click")
                for action in actions:
                    at = t + rng.randint(1, dwell - 1)
                    self._emit(at, on_page, action, init_session=False)
                    last = max(last, at)
            if next_page == EXIT:
                return last
            if status == 200:
                referrer, url = url, _url(rng, slug, next_page)
            page = next_page
            t += dwell
            last = max(last, t)
        return last

    def _emit(self, t: int, on_page: dict[str, Any], event: str, init_session: bool) -> None:
        self.pending.append((t, len(self.pending), {**on_page, "event": event, "init_session": init_session}))


def _url(rng: random.Random, slug: str, page: str) -> str:
    root = f"https://shop.example/{slug}"
    if page == "home":
        return f"{root}/"
    if page == "category":
        return f"{root}/c/{rng.choice(CATEGORIES)}"
    if page == "search":
        return f"{root}/search?q={rng.choice(SEARCH_TERMS)}"
    if page == "productDetail":
        return f"{root}/p/{rng.randint(10_000, 12_999)}"
    if page == "purchase":
        return f"{root}/order/{rng.randint(100_000, 999_999)}/confirmation"
    return f"{root}/{page}"


def _id_salt(start_ms: int) -> int:
    """128 bits from the start time: the same seed at another time is another run, whose event
    and session ids must differ from the first's (a pipeline drops an event id it has seen as a
    replay, and a session id would join the earlier run's sessions)."""
    return int.from_bytes(hashlib.blake2b(str(start_ms).encode(), digest_size=16).digest(), "big")


def _new_id(rng: random.Random, salt: int) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128) ^ salt, version=4))


def _records(
    rng: random.Random,
    timed: list[tuple[int, dict[str, Any]]],
    invalid_ratio: float,
    max_jitter_ms: int,
    id_salt: int,
) -> list[GeneratedRecord]:
    n_invalid = round(len(timed) * invalid_ratio)
    # Sorted positions take the three kinds of damage in turn: equal shares, spread through the stream.
    invalid_kinds = {
        position: _DAMAGE[i % len(_DAMAGE)]
        for i, position in enumerate(sorted(rng.sample(range(len(timed)), n_invalid)))
    }
    records = []
    for position, (t, fields) in enumerate(timed):
        event = Event(
            event_id=_new_id(rng, id_salt),
            date=t - rng.randint(0, max_jitter_ms),
            **fields,
        )
        damage = invalid_kinds.get(position)
        if damage is None:
            records.append(GeneratedRecord(event.user_id, event.to_json(), event, None))
        else:
            value = damage(rng, event)
            records.append(GeneratedRecord(event.user_id, value, None, invalid_reason(value)))
    return records


def _cut_short(rng: random.Random, event: Event) -> str:
    text = event.to_json()
    return text[: rng.randint(1, len(text) - 1)]


def _without_event_id(rng: random.Random, event: Event) -> str:
    data = event.to_dict()
    del data["event_id"]
    return json.dumps(data, separators=(",", ":"))


def _wrong_type(rng: random.Random, event: Event) -> str:
    field, bad_value = rng.choice((("date", "yesterday"), ("status", "ok"), ("init_session", "yes")))
    return json.dumps({**event.to_dict(), field: bad_value}, separators=(",", ":"))


_DAMAGE = (_cut_short, _without_event_id, _wrong_type)
