"""The oracle on six hand-made events; every expected value is worked out by hand from the definitions."""

import pandas as pd
import pytest

from clicklib.events import Event
from clicklib.generate import GeneratedRecord, UserProfile, Workload
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
