"""clicklib.analysis on hand-made frames (every expected value worked out by hand from the
definitions) and on a generated workload (invariants that must hold for any traffic)."""

import math

import pandas as pd
import pytest
from cassandra.util import Date

from clicklib import analysis
from clicklib.generate import DESKTOP_USER_AGENTS, MOBILE_USER_AGENTS, generate
from tests import oracle

T = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a minute boundary
SHOP = "https://shop.example/a"
IPHONE, ANDROID = MOBILE_USER_AGENTS[0], MOBILE_USER_AGENTS[2]
WINDOWS = DESKTOP_USER_AGENTS[0]
GOOGLE = "https://www.google.com/"
SHOP_PAGES = ("home", "category", "productDetail", "cart", "checkout", "purchase")
COLUMNS = [
    "day",
    "date",
    "event_id",
    "user_id",
    "session_id",
    "event",
    "page_type",
    "current_url",
    "referrer",
    "partner_id",
    "partner_name",
    "init_session",
    "user_agent",
    "ip",
    "city",
    "country",
    "language",
    "status",
    "signup_date",
    "home_city",
    "segment",
]


def events_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows shaped like events_by_day: every CQL column, ``day`` as the driver's Date."""
    filled = [
        {
            "day": Date(T // 86_400_000),
            "event_id": f"e{i}",
            "event": "pageview",
            "page_type": "home",
            "current_url": f"{SHOP}/",
            "init_session": False,
            "status": 200,
            **row,
        }
        for i, row in enumerate(rows)
    ]
    return pd.DataFrame(filled, columns=COLUMNS)


def pageviews(session: str, user: str | None, start_s: int, *page_types: str, **fields) -> list[dict]:
    """A session's pageviews, one every 10 s from ``start_s``; the first one opens the session."""
    return [
        {
            "session_id": session,
            "user_id": user,
            "date": T + (start_s + 10 * i) * 1000,
            "page_type": page_type,
            "current_url": f"{SHOP}/{page_type}",
            "init_session": i == 0,
            **fields,
        }
        for i, page_type in enumerate(page_types)
    ]


@pytest.fixture
def shop() -> pd.DataFrame:
    """Four sessions:

    - s1, alice (signed up 5 days before), iPhone, Jakarta, direct: walks the whole shop and buys
      (6 pageviews + a purchase).
    - s2, alice again an hour later, Windows, Singapore, from Google: home, category, then a
      click on a checkout page (not a pageview, so not a checkout visit).
    - s3, bob (signed up 400 days before), Android, Jakarta, referred from inside the shop:
      enters on a product, adds to cart.
    - s4, anonymous, Windows, no city: searches only (no funnel page).
    """
    alice = {"signup_date": T - 5 * 86_400_000}
    bob = {"signup_date": T - 400 * 86_400_000}
    s1 = pageviews(
        "s1",
        "alice",
        0,
        *SHOP_PAGES,
        **alice,
        user_agent=IPHONE,
        city="Jakarta",
        country="ID",
        language="id",
        partner_id="p1",
        partner_name="Lumen",
    )
    purchase = {**s1[-1], "event": "purchase", "date": s1[-1]["date"] + 1_000, "init_session": False}
    s2 = pageviews(
        "s2",
        "alice",
        3_600,
        "home",
        "category",
        user_agent=WINDOWS,
        city="Singapore",
        country="SG",
        language="en",
        referrer=GOOGLE,
        partner_id="p2",
        partner_name="Kopi",
        **alice,
    )
    click = {**s2[-1], "event": "click", "page_type": "checkout", "date": s2[-1]["date"] + 5_000, "init_session": False}
    s3 = pageviews(
        "s3",
        "bob",
        30,
        "productDetail",
        "cart",
        user_agent=ANDROID,
        city="Jakarta",
        country="ID",
        language="id",
        referrer=f"{SHOP}/c/shoes",
        partner_id="p1",
        partner_name="Lumen",
        **bob,
    )
    s4 = pageviews("s4", None, 125, "search", user_agent=WINDOWS, language="en", partner_id="p2", partner_name="Kopi")
    return events_frame([*s1, purchase, *s2, click, *s3, *s4])


def records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict("records")


def test_funnel_counts_sessions_reaching_each_step(shop):
    funnel = analysis.funnel(shop)
    assert list(funnel["step"]) == list(analysis.FUNNEL_STEPS)
    # Furthest steps: s1 purchase, s2 none (the checkout click is no pageview), s3 cart, s4 none.
    assert list(funnel["reached"]) == [4, 2, 2, 1, 1]
    assert list(funnel["did"]) == [4, 2, 2, 1, 1]
    assert list(funnel["of_previous"]) == pytest.approx([1, 1 / 2, 1, 1 / 2, 1])
    assert list(funnel["of_sessions"]) == pytest.approx([1, 1 / 2, 1 / 2, 1 / 4, 1 / 4])


def test_the_funnel_counts_successful_loads_and_orders_only(shop):
    failed = shop.copy()
    # s1's confirmation page and its purchase event failed (a 500): no order. s3's cart page
    # failed too, but its add_to_cart still puts it in the cart step.
    s1_last = failed.index[(failed["session_id"] == "s1") & (failed["page_type"] == "purchase")]
    failed.loc[s1_last, "status"] = 500
    s3_cart = failed.index[(failed["session_id"] == "s3") & (failed["page_type"] == "cart")]
    failed.loc[s3_cart, "status"] = 404
    add = {**failed.loc[s3_cart[0]].to_dict(), "event": "add_to_cart", "status": 200, "event_id": "e-add"}
    failed = pd.concat([failed, pd.DataFrame([add])], ignore_index=True)
    funnel = analysis.funnel(failed)
    assert list(funnel["reached"]) == [4, 2, 2, 1, 0]
    assert list(funnel["did"]) == [4, 2, 2, 1, 0]


def test_funnel_of_no_events_is_all_zero_with_undefined_percentages(shop):
    funnel = analysis.funnel(shop.iloc[:0])
    assert list(funnel["reached"]) == [0] * 5
    assert funnel["of_sessions"].isna().all()


def test_sessions(shop):
    sessions = analysis.sessions(shop)
    assert list(sessions["session_id"]) == ["s1", "s3", "s4", "s2"]  # by start
    s1, s3, s4, s2 = records(sessions)
    assert s1["user_id"] == "alice"
    assert s1["start"] == pd.Timestamp("2026-01-01 00:00:00")
    assert s1["end"] == pd.Timestamp("2026-01-01 00:00:51")  # the purchase, 1 s after the last pageview
    assert s1["duration_s"] == 51
    assert (s1["events"], s1["depth"], s1["purchased"], s1["visitor"]) == (7, 6, True, "new")
    # alice signed up 5 days before both her sessions; bob 400 days before his.
    assert (s2["events"], s2["depth"], s2["purchased"], s2["visitor"]) == (3, 2, False, "new")
    assert s2["duration_s"] == 15
    assert (s3["visitor"], s3["depth"], s3["duration_s"]) == ("returning", 2, 10)
    assert (s4["visitor"], s4["depth"], s4["duration_s"]) == ("anonymous", 1, 0)
    assert pd.isna(s4["user_id"])


def test_session_summary(shop):
    summary = records(analysis.session_summary(analysis.sessions(shop)))
    # Durations 51, 15, 10, 0; depths 6, 2, 2, 1; one bounce (s4) and one purchase (s1).
    assert summary == [
        {"sessions": 4, "median_duration_s": 12.5, "mean_depth": 2.75, "bounce_rate": 0.25, "purchase_rate": 0.25}
    ]


def test_new_vs_returning(shop):
    assert records(analysis.new_vs_returning(shop)) == [
        {"visitor": "new", "sessions": 2, "share": 0.5},
        {"visitor": "anonymous", "sessions": 1, "share": 0.25},
        {"visitor": "returning", "sessions": 1, "share": 0.25},
    ]


def test_traffic_over_time_counts_every_minute_including_empty_ones(shop):
    # s1 and s3 in minute 0 (s3 from 30 s), s4 at 125 s in minute 2, s2 an hour later.
    traffic = analysis.traffic_over_time(shop[shop["session_id"] != "s2"])
    assert records(traffic) == [
        {"time": pd.Timestamp("2026-01-01 00:00"), "events": 9, "users": 2, "sessions": 2, "bucket": "1min"},
        {"time": pd.Timestamp("2026-01-01 00:01"), "events": 0, "users": 0, "sessions": 0, "bucket": "1min"},
        {"time": pd.Timestamp("2026-01-01 00:02"), "events": 1, "users": 0, "sessions": 1, "bucket": "1min"},
    ]


def test_traffic_over_time_other_bucket_sizes(shop):
    traffic = analysis.traffic_over_time(shop, freq="1h")
    assert list(traffic["events"]) == [10, 3]
    assert list(traffic["users"]) == [2, 1]


def test_views_per_page_type(shop):
    views = analysis.views_per_page_type(shop)
    # Pageviews: s1 one of each funnel step, s2 home and category, s3 product and cart, s4 search.
    assert records(views) == [
        {"page_type": "cart", "views": 2, "share": 2 / 11},
        {"page_type": "category", "views": 2, "share": 2 / 11},
        {"page_type": "home", "views": 2, "share": 2 / 11},
        {"page_type": "productDetail", "views": 2, "share": 2 / 11},
        {"page_type": "checkout", "views": 1, "share": 1 / 11},
        {"page_type": "purchase", "views": 1, "share": 1 / 11},
        {"page_type": "search", "views": 1, "share": 1 / 11},
    ]


def test_top_partners(shop):
    assert records(analysis.top_partners(shop)) == [
        {"partner_id": "p1", "partner_name": "Lumen", "pageviews": 8, "purchases": 1, "sessions": 2},
        {"partner_id": "p2", "partner_name": "Kopi", "pageviews": 3, "purchases": 0, "sessions": 2},
    ]
    assert list(analysis.top_partners(shop, n=1)["partner_id"]) == ["p1"]


def test_top_pages(shop):
    pages = analysis.top_pages(shop, n=3)
    assert records(pages) == [
        {"current_url": f"{SHOP}/cart", "page_type": "cart", "views": 2, "sessions": 2},
        {"current_url": f"{SHOP}/category", "page_type": "category", "views": 2, "sessions": 2},
        {"current_url": f"{SHOP}/home", "page_type": "home", "views": 2, "sessions": 2},
    ]


def test_cities_and_languages_count_sessions(shop):
    assert records(analysis.cities(shop)) == [
        {"city": "Jakarta", "country": "ID", "sessions": 2, "share": 0.5},
        {"city": "Singapore", "country": "SG", "sessions": 1, "share": 0.25},
        {"city": "unknown", "country": "unknown", "sessions": 1, "share": 0.25},
    ]
    assert records(analysis.languages(shop)) == [
        {"language": "en", "sessions": 2, "share": 0.5},
        {"language": "id", "sessions": 2, "share": 0.5},
    ]


@pytest.mark.parametrize("user_agent", MOBILE_USER_AGENTS)
def test_device_mobile(user_agent):
    assert analysis.device(user_agent) == "mobile"


@pytest.mark.parametrize("user_agent", DESKTOP_USER_AGENTS)
def test_device_desktop(user_agent):
    assert analysis.device(user_agent) == "desktop"


def test_device_ipad_and_missing():
    ipad = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5"
    assert analysis.device(ipad) == "mobile"
    assert analysis.device(None) == "desktop"


def test_devices(shop):
    assert records(analysis.devices(shop)) == [
        {"device": "desktop", "sessions": 2, "share": 0.5},
        {"device": "mobile", "sessions": 2, "share": 0.5},
    ]


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        (None, "direct"),
        ("", "direct"),
        (math.nan, "direct"),
        (GOOGLE, "google"),
        ("https://www.google.co.id/search?q=shoes", "google"),
        ("https://www.facebook.com/", "facebook"),
        ("https://l.instagram.com/?u=x", "instagram"),
        ("https://newsletter.shop.example/", "newsletter"),
        (f"{SHOP}/c/shoes", "internal"),
        ("https://news.ycombinator.com/item?id=1", "news.ycombinator.com"),
    ],
)
def test_referrer_source(referrer, expected):
    assert analysis.referrer_source(referrer, f"{SHOP}/p/1") == expected


def test_referrer_sources_look_at_each_sessions_first_event(shop):
    # Later pageviews of s2 and s3 carry the same referrers again: a session counts once.
    assert records(analysis.referrer_sources(shop)) == [
        {"source": "direct", "sessions": 2, "share": 0.5},
        {"source": "google", "sessions": 1, "share": 0.25},
        {"source": "internal", "sessions": 1, "share": 0.25},
    ]


def test_referrer_sources_skip_sessions_without_their_first_event(shop):
    later = shop[~shop["init_session"]]
    assert analysis.referrer_sources(later).empty


def test_error_rate_from_cassandra_rows():
    minute = pd.Timestamp("2026-01-01 00:00")
    status = pd.DataFrame(
        {
            "day": [Date(T // 86_400_000)] * 3,
            "window_start": [minute + pd.Timedelta(minutes=m) for m in (2, 0, 1)],
            "window_end": [minute + pd.Timedelta(minutes=m + 1) for m in (2, 0, 1)],
            "requests": [40, 100, 50],
            "errors": [0, 2, 10],
            "alert": [None, False, True],
        }
    )
    rates = analysis.error_rate(status)
    assert list(rates.columns) == [
        "window_start",
        "window_end",
        "requests",
        "errors",
        "error_rate",
        "alerts",
        "alert",
        "bucket",
    ]
    assert list(rates["window_start"]) == [minute + pd.Timedelta(minutes=m) for m in (0, 1, 2)]
    assert list(rates["error_rate"]) == [0.02, 0.2, 0.0]
    assert list(rates["alert"]) == [False, True, False]


def test_error_rate_accepts_epoch_milliseconds_and_no_requests():
    status = pd.DataFrame({"window_start": [T], "requests": [0], "errors": [0], "alert": [False]})
    rates = analysis.error_rate(status)
    assert rates["window_start"].iloc[0] == pd.Timestamp("2026-01-01 00:00")
    assert math.isnan(rates["error_rate"].iloc[0])


def test_histogram_fills_empty_bins():
    bins = analysis.histogram(pd.Series([0, 59.9, 60, 185, None]), 60)
    assert records(bins) == [
        {"bin_start": 0, "bin_end": 60, "count": 2},
        {"bin_start": 60, "bin_end": 120, "count": 1},
        {"bin_start": 120, "bin_end": 180, "count": 0},
        {"bin_start": 180, "bin_end": 240, "count": 1},
    ]
    assert analysis.histogram(pd.Series([], dtype="float64"), 60).empty


# --- a generated workload ------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    events = oracle.clean_events(generate(4_000, seed=11))
    # As events_by_day delivers them: a `day` the driver hands over as its own Date type.
    events.insert(0, "day", [Date(d // 86_400_000) for d in events["date"]])
    return events


def test_generated_funnel_never_grows_and_percentages_are_fractions(generated):
    funnel = analysis.funnel(generated)
    assert funnel["reached"].is_monotonic_decreasing
    assert funnel["reached"].iloc[-1] > 0
    for column in ("of_previous", "of_sessions"):
        assert funnel[column].between(0, 1).all()
    assert funnel["reached"].iloc[0] == generated["session_id"].nunique()
    orders = generated[(generated["event"] == "purchase") & (generated["status"] < 400)]
    assert funnel["reached"].iloc[-1] == orders["session_id"].nunique()


def test_generated_per_session_counts_add_up(generated):
    n_sessions = generated["session_id"].nunique()
    sessions = analysis.sessions(generated)
    assert len(sessions) == n_sessions
    assert (sessions["duration_s"] >= 0).all()
    assert sessions["depth"].sum() == (generated["event"] == "pageview").sum()
    for counts in (
        analysis.devices(generated),
        analysis.cities(generated),
        analysis.languages(generated),
        analysis.new_vs_returning(generated),
    ):
        assert counts["sessions"].sum() == n_sessions
        assert counts["share"].sum() == pytest.approx(1)
    assert set(analysis.devices(generated)["device"]) == {"mobile", "desktop"}
    visitors = analysis.new_vs_returning(generated).set_index("visitor")["sessions"]
    per_session = generated.groupby("session_id").agg(start=("date", "min"), signup=("signup_date", "first"))
    new = int((per_session["start"] - per_session["signup"] < 30 * 86_400_000).sum())
    assert 0 < visitors["new"] == new < n_sessions


def test_generated_referrers_and_traffic(generated):
    sources = analysis.referrer_sources(generated)
    assert sources["sessions"].sum() == generated.loc[generated["init_session"], "session_id"].nunique()
    assert set(sources["source"]) <= {"direct", "google", "facebook", "newsletter", "instagram"}
    traffic = analysis.traffic_over_time(generated)
    assert traffic["events"].sum() == len(generated)
    assert traffic["time"].diff().dropna().eq(pd.Timedelta(minutes=1)).all()
    assert analysis.views_per_page_type(generated)["views"].sum() == (generated["event"] == "pageview").sum()


def test_the_funnel_and_visitor_kinds_agree_with_the_oracle():
    # A generated workload with its profiles, the analysis over its clean events as Cassandra holds them.
    workload = generate(4_000, seed=12, invalid_ratio=0.0)
    clean = oracle.clean_events(workload)
    steps = analysis.funnel(clean)
    expected = oracle.funnel(workload)
    assert dict(zip(steps["step"], steps["did"], strict=True)) == expected["did"]
    assert dict(zip(steps["step"], steps["reached"], strict=True)) == expected["reached"]
    visitors = analysis.new_vs_returning(clean)
    assert dict(zip(visitors["visitor"], visitors["sessions"], strict=True)) == oracle.visitors(workload)


def test_thirty_days_of_minutes_are_bucketed_to_at_most_600_points_with_nothing_lost():
    minutes = pd.date_range("2026-01-01", periods=30 * 1440, freq="1min")
    status = pd.DataFrame(
        {
            "window_start": minutes,
            "requests": 100,
            "errors": [50 if i == 4_321 else 1 for i in range(len(minutes))],
            "alert": [i == 4_321 for i in range(len(minutes))],
        }
    )
    rates = analysis.error_rate(status)
    assert len(rates) <= analysis.MAX_BUCKETS
    assert set(rates["bucket"]) == {"6h"}  # 120 six-hour buckets; hours would be 720
    assert rates["requests"].sum() == 100 * len(minutes)
    assert rates["errors"].sum() == 49 + len(minutes)
    assert rates["alerts"].sum() == 1 and rates["alert"].sum() == 1
    pageviews = pd.DataFrame(
        {"window_start": minutes.repeat(2), "page_type": ["home", "cart"] * len(minutes), "views": 3}
    )
    views = analysis.pageviews_over_time(pageviews)
    assert len(views) <= analysis.MAX_BUCKETS and views["views"].sum() == 6 * len(minutes)


def test_each_chart_sentence_says_what_its_data_shows(shop):
    traffic = analysis.traffic_over_time(shop[shop["session_id"] != "s2"])
    assert analysis.busiest(traffic) == "The busiest minute began 2026-01-01 00:00 UTC: 9 events from 2 users."
    devices = analysis.devices(shop)  # s1 iPhone, s3 Android: mobile; s2, s4 Windows: desktop
    assert analysis.leading_share(devices, "device") in (
        "50% of sessions (2 of 4): device desktop.",
        "50% of sessions (2 of 4): device mobile.",
    )
    # 11 pageviews: home, category, productDetail and cart 2 each (ties go by name), the rest 1.
    views = analysis.views_per_page_type(shop)
    assert analysis.leading_share(views, "page_type", "views") == "18% of views (2 of 11): page type cart."
    minute = pd.Timestamp("2026-01-01 00:00")
    status = pd.DataFrame(
        {
            "window_start": [minute, minute + pd.Timedelta(minutes=1)],
            "requests": [100, 50],
            "errors": [2, 10],
            "alert": [False, True],
        }
    )
    assert analysis.worst_errors(analysis.error_rate(status)) == (
        "8.0% of page loads failed overall; the worst minute began 2026-01-01 00:01 UTC with 20% failed; "
        "the pipeline raised 1 alert(s)."
    )
    assert analysis.busiest(traffic.iloc[:0]) == "No events in this period."


def test_recent_days_are_the_last_utc_days_today_included():
    from datetime import date

    assert analysis.recent_days(2, today=date(2026, 3, 1)) == [date(2026, 2, 28), date(2026, 3, 1)]
    assert analysis.recent_days(1, today=date(2026, 3, 1)) == [date(2026, 3, 1)]
