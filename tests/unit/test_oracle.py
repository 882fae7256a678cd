"""The oracle on hand-made events (every expected value worked out by hand from the definitions),
and clicklib.analysis over the oracle's session summary of a generated workload against the
oracle's own figures: two independent computations that must agree."""

import math

import pandas as pd
import pytest

from clicklib import analysis
from clicklib.events import Event
from clicklib.generate import GeneratedRecord, UserProfile, Workload, generate
from tests import oracle

T = 1_767_225_600_000  # a minute boundary: 2026-01-01T00:00:00Z
HOME = "https://shop.example/a/"
ORDER = "https://shop.example/a/order/1/confirmation"
PRODUCT = "https://shop.example/a/p/1"


def event(n: int, user: str | None, offset_ms: int, name: str, page_type: str, url: str, status: int = 200) -> Event:
    return Event(
        event_id=f"e{n}",
        date=T + offset_ms,
        session_id=f"s-{user}",
        user_id=user,
        event=name,
        page_type=page_type,
        current_url=url,
        init_session=False,
        status=status,
    )


@pytest.fixture
def workload() -> Workload:
    events = [
        event(1, "alice", 5_000, "pageview", "home", HOME),
        event(2, "alice", 15_000, "pageview", "home", HOME),
        event(3, None, 30_000, "pageview", "home", HOME, status=500),
        event(4, "bob", 50_000, "pageview", "home", HOME, status=404),
        event(5, "alice", 70_000, "purchase", "purchase", ORDER),
        # Exactly one gap after alice's previous event: a new session.
        event(6, "alice", 1_870_000, "pageview", "productDetail", PRODUCT),
    ]
    records = [GeneratedRecord(e.user_id, e.to_json(), e, None) for e in events]
    records.insert(3, GeneratedRecord("bob", '{"event_id"', None, "malformed JSON"))
    profiles = [
        UserProfile("alice", 1_600_000_000_000, "Singapore", "vip", 1_760_000_000_000),
        UserProfile("alice", 1_600_000_000_000, "Jakarta", "loyal", 1_700_000_000_000),
    ]
    return Workload(profiles, records)


def rows(df: pd.DataFrame) -> list[tuple]:
    return [tuple(row) for row in df.itertuples(index=False)]


def test_clean_events_are_known_users_with_their_latest_profile(workload):
    clean = oracle.clean_events(workload)
    assert list(clean["event_id"]) == ["e1", "e2", "e4", "e5", "e6"]
    alice = clean[clean["user_id"] == "alice"]
    assert set(alice["segment"]) == {"vip"} and set(alice["home_city"]) == {"Singapore"}
    assert set(alice["signup_date"]) == {1_600_000_000_000}
    bob = clean[clean["user_id"] == "bob"].iloc[0]
    assert pd.isna(bob["segment"]) and pd.isna(bob["home_city"]) and pd.isna(bob["signup_date"])


def test_pageviews_per_minute(workload):
    assert rows(oracle.pageviews_per_minute(workload)) == [
        (T, T + 60_000, "home", 3, 2),
        (T + 1_860_000, T + 1_920_000, "productDetail", 1, 1),
    ]


def test_user_activity_in_hopping_windows(workload):
    alice = {-50: 1, -40: 2, -30: 2, -20: 2, -10: 2, 0: 2, 10: 1, 20: 1, 30: 1, 40: 1, 50: 1, 60: 1, 70: 1}
    alice |= {start: 1 for start in range(1_820, 1_871, 10)}
    bob = {start: 1 for start in range(0, 51, 10)}
    expected = sorted(
        [(T + s * 1000, T + s * 1000 + 60_000, "alice", n) for s, n in alice.items()]
        + [(T + s * 1000, T + s * 1000 + 60_000, "bob", n) for s, n in bob.items()]
    )
    assert rows(oracle.user_activity(workload)) == expected


def test_user_sessions(workload):
    assert rows(oracle.user_sessions(workload)) == [
        ("alice", T + 5_000, T + 1_870_000, 3, 1, True),
        ("alice", T + 1_870_000, T + 3_670_000, 1, 1, False),
        ("bob", T + 50_000, T + 1_850_000, 1, 1, False),
    ]


def test_status_per_minute_counts_page_loads_of_every_visitor(workload):
    assert rows(oracle.status_per_minute(workload)) == [
        (T, T + 60_000, 4, 4, 2, True),
        # A purchase is an event, not a page load.
        (T + 60_000, T + 120_000, 1, 0, 0, False),
        (T + 1_860_000, T + 1_920_000, 1, 1, 0, False),
    ]
    # 2 failed loads in 4 is 50 %: not above a 50 % threshold.
    assert not oracle.status_per_minute(workload, alert_percent=50)["alert"].any()


def test_closed_keeps_windows_the_watermark_has_fired(workload):
    pageviews = oracle.pageviews_per_minute(workload)
    assert len(oracle.closed(pageviews, T + 59_998)) == 0
    assert len(oracle.closed(pageviews, T + 59_999)) == 1
    sessions = oracle.closed(oracle.user_sessions(workload), T + 1_849_999, end_column="session_end")
    assert rows(sessions) == [("bob", T + 50_000, T + 1_850_000, 1, 1, False)]


# --- the session summary -------------------------------------------------------------------

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0.0.0 Safari/537.36"
CART = "https://shop.example/a/cart"
CHECKOUT = "https://shop.example/a/checkout"


def visit(n: int, session: str, user: str | None, offset_ms: int, name: str, page_type: str, url: str, **fields):
    return Event(
        event_id=f"v{n}",
        date=T + offset_ms,
        session_id=session,
        user_id=user,
        event=name,
        page_type=page_type,
        current_url=url,
        init_session=False,
        status=fields.pop("status", 200),
        **fields,
    )


@pytest.fixture
def visits() -> Workload:
    """Three sessions:

    - s1, carol on an iPhone from Google (an upper-case host): home, a product, an add to cart,
      a cart page that failed (503) and a click on it.
    - s2, anonymous on Windows from news.example.org, produced out of date order: the checkout
      page (8 s) comes before the home page (3 s), and a purchase in the same millisecond as the
      checkout page follows it.
    - s3, dave (no profile), the next day: a failed purchase event only, referred from the shop's
      own host written with www.
    """
    google = {"referrer": "https://www.Google.com/search?q=lamp", "user_agent": IPHONE, "partner_name": "Lumen"}
    news = {"referrer": "https://news.example.org/x", "user_agent": WINDOWS, "partner_name": "Kopi"}
    events = [
        visit(1, "s1", "carol", 1_000, "pageview", "home", HOME, **google),
        visit(2, "s1", "carol", 9_000, "pageview", "productDetail", PRODUCT, **google | {"referrer": HOME}),
        visit(3, "s1", "carol", 12_000, "add_to_cart", "productDetail", PRODUCT, **google | {"referrer": HOME}),
        visit(4, "s1", "carol", 20_000, "pageview", "cart", CART, status=503, **google | {"referrer": PRODUCT}),
        visit(5, "s1", "carol", 25_000, "click", "cart", CART, **google | {"referrer": PRODUCT}),
        visit(6, "s2", None, 8_000, "pageview", "checkout", CHECKOUT, **news | {"referrer": CART}),
        visit(7, "s2", None, 3_000, "pageview", "home", HOME, **news),
        visit(8, "s2", None, 8_000, "purchase", "checkout", CHECKOUT, **news | {"referrer": CART}),
        visit(9, "s3", "dave", DAY_MS + 5, "purchase", "purchase", ORDER, status=500, referrer="https://www.shop.example/b"),
    ]  # fmt: skip
    profiles = [
        UserProfile("carol", T - 40 * DAY_MS, "Jakarta", "new", 1_760_000_000_000),
        UserProfile("carol", T - 40 * DAY_MS, "Jakarta", "vip", 1_700_000_000_000),
    ]
    return Workload(profiles, [GeneratedRecord(e.user_id, e.to_json(), e, None) for e in events])


DAY_MS = oracle.DAY_MS


def test_session_summary(visits):
    summary = oracle.session_summary(visits)
    assert list(summary.columns) == oracle.SESSION_SUMMARY_COLUMNS
    s1, s2, s3 = summary.to_dict("records")
    assert s1 == {
        "day": "2026-01-01",
        "session_start": T + 1_000,
        "session_id": "s1",
        "session_end": T + 25_000,
        "user_id": "carol",
        "channel": "google",
        "device": "mobile",
        "partner_name": "Lumen",
        "landing_page": "home",
        "exit_page": "cart",
        "exit_status": 503,
        "events": 5,
        "pageviews": 3,
        "duration_s": 24.0,
        "errors": 1,
        "viewed_product": True,
        "reached_cart": True,  # the add_to_cart succeeded though the cart page failed
        "reached_checkout": False,
        "purchased": False,
    }
    # s2 starts with its home page (3 s), produced second; the purchase shares the checkout's millisecond.
    assert (s2["session_start"], s2["session_end"], s2["duration_s"]) == (T + 3_000, T + 8_000, 5.0)
    assert (s2["channel"], s2["device"], s2["landing_page"], s2["exit_page"]) == (
        "news.example.org",
        "desktop",
        "home",
        "checkout",
    )
    assert pd.isna(s2["user_id"])
    assert (s2["events"], s2["pageviews"], s2["errors"], s2["reached_checkout"], s2["purchased"]) == (
        3,
        2,
        0,
        True,
        True,
    )
    assert (s3["day"], s3["channel"], s3["device"], s3["events"], s3["pageviews"]) == (
        "2026-01-02",
        "internal",
        "desktop",
        1,
        0,
    )
    # No event opened it: its earliest event, the failed purchase, is its landing event (on the
    # purchase page); with no pageview it has no exit page.
    assert s3["landing_page"] == "purchase"
    assert pd.isna(s3["exit_page"]) and pd.isna(s3["exit_status"])
    assert not (s3["purchased"] or s3["reached_cart"] or s3["viewed_product"])  # the purchase failed


def test_kpis_and_conversion_by(visits):
    # Bounces: s3 (no pageview); durations 24, 5, 0; s2 orders; s1 alone reached the cart and did not order.
    assert oracle.kpis(visits) == {
        "sessions": 3,
        "bounce_rate": 1 / 3,
        "median_duration_s": 5.0,
        "conversion": 1 / 3,
        "cart_abandonment": 1.0,
    }
    assert oracle.conversion_by(visits, "channel") == {
        "google": {"sessions": 1, "bounce_rate": 0.0, "conversion": 0.0},
        "news.example.org": {"sessions": 1, "bounce_rate": 0.0, "conversion": 1.0},
        "internal": {"sessions": 1, "bounce_rate": 1.0, "conversion": 0.0},
    }
    # carol's latest profile says new; dave has none.
    assert oracle.conversion_by(visits, "segment") == {
        "new": {"sessions": 1, "bounce_rate": 0.0, "conversion": 0.0},
        "anonymous": {"sessions": 1, "bounce_rate": 0.0, "conversion": 1.0},
        "unknown": {"sessions": 1, "bounce_rate": 1.0, "conversion": 0.0},
    }
    assert oracle.conversion_by(visits, "partner_name")["unknown"]["sessions"] == 1  # s3 names no partner


# --- clicklib.analysis against the oracle on a generated workload ---------------------------

# 2026-01-08T23:55:00Z: the sessions cross midnight.
GENERATED_START_MS = 1_767_916_500_000


@pytest.fixture(scope="module")
def generated() -> Workload:
    return generate(3_000, seed=7, start_ms=GENERATED_START_MS)


@pytest.fixture(scope="module")
def summary(generated) -> pd.DataFrame:
    return oracle.session_summary(generated)


def as_cassandra_returns(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with timezone-aware UTC timestamps instead of epoch milliseconds."""
    return summary.assign(
        session_start=pd.to_datetime(summary["session_start"], unit="ms", utc=True),
        session_end=pd.to_datetime(summary["session_end"], unit="ms", utc=True),
    )


def test_one_summary_row_per_session_every_visitor_included(generated, summary):
    events = oracle.valid_events(generated)
    assert summary["session_id"].is_unique
    assert len(summary) == events["session_id"].nunique()
    assert summary["user_id"].isna().any() and summary["user_id"].notna().any()
    assert summary["day"].nunique() == 2  # it crosses midnight
    # No session holds a 30 minute gap, so the pipeline's session windows are one per session_id.
    gaps = events.sort_values("date").groupby("session_id")["date"].diff()
    assert gaps.max() < oracle.SESSION_GAP_MS
    assert summary["pageviews"].sum() == (events["event"] == "pageview").sum()
    assert summary["events"].sum() == len(events)


def test_channel_and_device_rules_agree_with_clicklib(generated, summary):
    events = oracle.valid_events(generated)
    # The landing event: the earliest that opened the session (the simulator opens every one).
    openers = events[events["init_session"]].sort_values("date", kind="stable")
    first = openers.drop_duplicates("session_id").set_index("session_id").loc[summary["session_id"]]
    channels = [analysis.referrer_source(r, u) for r, u in zip(first["referrer"], first["current_url"], strict=True)]
    assert channels == list(summary["channel"])
    assert list(first["user_agent"].map(analysis.device)) == list(summary["device"])
    assert {"direct", "google", "facebook"} <= set(summary["channel"])


@pytest.mark.parametrize("as_read", [lambda s: s, as_cassandra_returns], ids=["epoch_ms", "timestamps"])
def test_kpis_agree_with_the_oracle(generated, summary, as_read):
    kpis = analysis.kpis(as_read(summary)).iloc[0].to_dict()
    expected = oracle.kpis(generated)
    assert kpis == pytest.approx(expected)
    assert 0 < expected["conversion"] < expected["bounce_rate"] < 1
    assert not math.isnan(expected["cart_abandonment"])


@pytest.mark.parametrize("column", ["channel", "device", "partner_name", "segment"])
def test_outcomes_by_agree_with_the_oracle(generated, summary, column):
    sessions = as_cassandra_returns(summary)
    if column == "segment":
        sessions = analysis.with_segments(sessions, oracle.clean_events(generated))
    outcomes = analysis.outcomes_by(sessions, column)
    got = {
        row[column]: {"sessions": row["sessions"], "bounce_rate": row["bounce_rate"], "conversion": row["conversion"]}
        for row in outcomes.to_dict("records")
    }
    expected = oracle.conversion_by(generated, column)
    assert set(got) == set(expected)
    for value, figures in expected.items():
        assert got[value] == pytest.approx(figures), value
    assert len(expected) > 1
    assert outcomes["sessions"].is_monotonic_decreasing
