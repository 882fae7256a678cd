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
        # Upper case, a port, user info, another scheme: the host is still found.
        ("HTTPS://WWW.Google.COM:443/search", "google"),
        ("https://me@www.facebook.com/x", "facebook"),
        ("android-app://com.google.android.gm/", "google"),
        (f"{SHOP.upper()}/c/shoes", "internal"),
        # Without a scheme there is no host to read.
        ("google.com/search", "unknown"),
        ("//www.google.com/", "unknown"),
    ],
)
def test_referrer_source(referrer, expected):
    assert analysis.referrer_source(referrer, f"{SHOP}/p/1") == expected


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
        analysis.cities(generated),
        analysis.languages(generated),
        analysis.new_vs_returning(generated),
    ):
        assert counts["sessions"].sum() == n_sessions
        assert counts["share"].sum() == pytest.approx(1)
    visitors = analysis.new_vs_returning(generated).set_index("visitor")["sessions"]
    per_session = generated.groupby("session_id").agg(start=("date", "min"), signup=("signup_date", "first"))
    new = int((per_session["start"] - per_session["signup"] < 30 * 86_400_000).sum())
    assert 0 < visitors["new"] == new < n_sessions


def test_generated_traffic(generated):
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
    cities = analysis.cities(shop)
    top = cities.iloc[0]
    assert analysis.leading_share(cities, "city") == (
        f"{top['share']:.0%} of sessions ({top['sessions']} of {cities['sessions'].sum()}): city {top['city']}."
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


# --- the session_summary table -------------------------------------------------------------


def summary_row(session: str, user: str | None, start: str, duration_s: float, **fields) -> dict:
    """A session_summary row as the driver returns it: timezone-aware UTC timestamps."""
    begin = pd.Timestamp(start, tz="UTC")
    return {
        "day": Date(begin.value // 86_400_000_000_000),
        "session_start": begin,
        "session_id": session,
        "session_end": begin + pd.Timedelta(seconds=duration_s),
        "user_id": user,
        "duration_s": duration_s,
        "viewed_product": False,
        "reached_cart": False,
        "reached_checkout": False,
        "purchased": False,
        **fields,
    }


@pytest.fixture
def summary() -> pd.DataFrame:
    """Five sessions (2026-01-05 is a Monday):

    - a, alice, Mon 5 Jan, google, mobile, Lumen: home ... purchase, 5 pageviews, orders.
    - b, alice, Tue 13 Jan, direct, desktop, Kopi: product to cart, 3 pageviews, one failed, no order.
    - c, bob, Mon 5 Jan, google, desktop, Lumen: one home page that failed (500): a bounce.
    - d, anonymous, Mon 5 Jan, facebook, mobile, Lumen: two product pages, the last a 404.
    - e, anonymous, Tue 6 Jan, google, mobile, no partner: a click, no pageview: a bounce.
    """
    rows = [
        summary_row(
            "a", "alice", "2026-01-05 10:00", 120, channel="google", device="mobile", partner_name="Lumen",
            landing_page="home", exit_page="purchase", exit_status=200, events=8, pageviews=5, errors=0,
            viewed_product=True, reached_cart=True, reached_checkout=True, purchased=True,
        ),
        summary_row(
            "b", "alice", "2026-01-13 09:00", 60, channel="direct", device="desktop", partner_name="Kopi",
            landing_page="productDetail", exit_page="cart", exit_status=200, events=4, pageviews=3, errors=1,
            viewed_product=True, reached_cart=True,
        ),
        summary_row(
            "c", "bob", "2026-01-05 11:00", 0, channel="google", device="desktop", partner_name="Lumen",
            landing_page="home", exit_page="home", exit_status=500, events=1, pageviews=1, errors=1,
        ),
        summary_row(
            "d", None, "2026-01-05 12:00", 30, channel="facebook", device="mobile", partner_name="Lumen",
            landing_page="productDetail", exit_page="productDetail", exit_status=404, events=2, pageviews=2, errors=1,
            viewed_product=True,
        ),
        summary_row(
            "e", None, "2026-01-06 08:00", 0, channel="google", device="mobile", partner_name=None,
            landing_page=None, exit_page=None, exit_status=None, events=1, pageviews=0, errors=0, purchased=None,
        ),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=oracle.SESSION_SUMMARY_COLUMNS)


@pytest.fixture
def profiles() -> pd.DataFrame:
    """Clean events carrying the profiles: alice moved from vip to loyal, signed up Wed 31 Dec 2025;
    bob has no segment and signed up Mon 5 Jan 2026."""
    jan_5 = 1_767_571_200_000  # 2026-01-05T00:00:00Z
    alice = {"user_id": "alice", "signup_date": jan_5 - 5 * 86_400_000}
    return events_frame(
        [
            {"session_id": "a", "date": jan_5 + 10, "segment": "vip", **alice},
            {"session_id": "b", "date": jan_5 + 20, "segment": "loyal", **alice},
            {"session_id": "c", "user_id": "bob", "date": jan_5 + 15, "signup_date": jan_5},
        ]
    )


def test_summary_sessions_reads_any_timestamp_kind_and_is_idempotent(summary):
    sessions = analysis.summary_sessions(summary)
    assert list(sessions["session_id"]) == ["a", "c", "d", "e", "b"]  # by start
    a = records(sessions)[0]
    assert a["session_start"] == pd.Timestamp("2026-01-05 10:00")  # naive UTC
    assert a["session_end"] == pd.Timestamp("2026-01-05 10:02")
    assert a["day"] == pd.Timestamp("2026-01-05")
    assert list(sessions["visitor"]) == ["signed-in", "signed-in", "anonymous", "anonymous", "signed-in"]
    assert list(sessions["depth"]) == [5, 1, 2, 0, 3]
    assert list(sessions["purchased"]) == [True, False, False, False, False]  # e's missing flag is False
    assert pd.isna(sessions["exit_status"].iloc[3])
    naive = summary.assign(session_start=summary["session_start"].dt.tz_localize(None))
    since_epoch = summary["session_start"] - pd.Timestamp(0, tz="UTC")
    epoch_ms = summary.assign(session_start=since_epoch // pd.Timedelta(milliseconds=1))
    for other in (naive, epoch_ms, sessions):
        pd.testing.assert_frame_equal(analysis.summary_sessions(other), sessions)


def test_kpis(summary):
    # Bounces: c (1 pageview) and e (none); durations 120, 60, 0, 30, 0; a orders; a and b reach the cart.
    assert records(analysis.kpis(summary)) == [
        {"sessions": 5, "bounce_rate": 0.4, "median_duration_s": 30.0, "conversion": 0.2, "cart_abandonment": 0.5}
    ]
    none = analysis.kpis(summary.iloc[:0]).iloc[0]
    assert none["sessions"] == 0 and math.isnan(none["bounce_rate"]) and math.isnan(none["cart_abandonment"])
    no_cart = analysis.kpis(summary[summary["session_id"].isin(["c", "d"])]).iloc[0]
    assert math.isnan(no_cart["cart_abandonment"]) and no_cart["conversion"] == 0


def test_outcomes_by_channel_device_and_partner(summary):
    assert records(analysis.outcomes_by(summary, "channel")) == [
        {"channel": "google", "sessions": 3, "share": 0.6, "bounce_rate": 2 / 3, "conversion": 1 / 3},
        {"channel": "direct", "sessions": 1, "share": 0.2, "bounce_rate": 0.0, "conversion": 0.0},
        {"channel": "facebook", "sessions": 1, "share": 0.2, "bounce_rate": 0.0, "conversion": 0.0},
    ]
    assert records(analysis.outcomes_by(summary, "device")) == [
        {"device": "mobile", "sessions": 3, "share": 0.6, "bounce_rate": 1 / 3, "conversion": 1 / 3},
        {"device": "desktop", "sessions": 2, "share": 0.4, "bounce_rate": 0.5, "conversion": 0.0},
    ]
    partners = analysis.outcomes_by(summary, "partner_name")
    assert list(zip(partners["partner_name"], partners["sessions"], strict=True)) == [
        ("Lumen", 3),
        ("Kopi", 1),
        ("unknown", 1),
    ]


def test_with_segments(summary, profiles):
    sessions = analysis.with_segments(summary, profiles)
    # alice's latest event says loyal; bob has no segment; d and e are anonymous.
    assert dict(zip(sessions["session_id"], sessions["segment"], strict=True)) == {
        "a": "loyal",
        "b": "loyal",
        "c": "unknown",
        "d": "anonymous",
        "e": "anonymous",
    }
    assert records(analysis.outcomes_by(sessions, "segment")) == [
        {"segment": "anonymous", "sessions": 2, "share": 0.4, "bounce_rate": 0.5, "conversion": 0.0},
        {"segment": "loyal", "sessions": 2, "share": 0.4, "bounce_rate": 0.0, "conversion": 0.5},
        {"segment": "unknown", "sessions": 1, "share": 0.2, "bounce_rate": 1.0, "conversion": 0.0},
    ]


def test_landing_and_exit_pages(summary):
    assert records(analysis.landing_pages(summary)) == [
        {"landing_page": "home", "sessions": 2, "share": 0.4, "bounce_rate": 0.5},
        {"landing_page": "productDetail", "sessions": 2, "share": 0.4, "bounce_rate": 0.0},
        {"landing_page": "unknown", "sessions": 1, "share": 0.2, "bounce_rate": 1.0},
    ]
    # One exit each; c's last load was a 500 (home) and d's a 404 (productDetail).
    assert records(analysis.exit_pages(summary)) == [
        {"exit_page": page, "sessions": 1, "share": 0.2, "failed": failed, "failed_share": float(failed)}
        for page, failed in [("cart", 0), ("home", 1), ("productDetail", 1), ("purchase", 0), ("unknown", 0)]
    ]


def test_error_exits(summary):
    # b, c and d had a failed page load; c and d ended on it. a and e did not; a ordered.
    assert records(analysis.error_exits(summary)) == [
        {
            "page_loads": "some failed",
            "sessions": 3,
            "share": 0.6,
            "bounce_rate": 1 / 3,
            "conversion": 0.0,
            "failed_exit_share": 2 / 3,
        },
        {
            "page_loads": "all succeeded",
            "sessions": 2,
            "share": 0.4,
            "bounce_rate": 0.5,
            "conversion": 0.5,
            "failed_exit_share": 0.0,
        },
    ]


def test_cohort_retention(summary, profiles):
    # alice: cohort Mon 29 Dec (signed up Wed 31 Dec), sessions in the weeks of 5 Jan (week 1) and 12 Jan
    # (week 2). bob: cohort 5 Jan, a session in week 0 only. The period covers the weeks of 5 and 12 Jan.
    retention = analysis.cohort_retention(summary, profiles)
    assert records(retention) == [
        {"cohort": pd.Timestamp("2025-12-29"), "week": 1, "users": 1, "active": 1, "retention": 1.0},
        {"cohort": pd.Timestamp("2025-12-29"), "week": 2, "users": 1, "active": 1, "retention": 1.0},
        {"cohort": pd.Timestamp("2026-01-05"), "week": 0, "users": 1, "active": 1, "retention": 1.0},
        {"cohort": pd.Timestamp("2026-01-05"), "week": 1, "users": 1, "active": 0, "retention": 0.0},
    ]
    # Two weeks up to the last (12 Jan) reach back to cohort 5 Jan only.
    assert list(analysis.cohort_retention(summary, profiles, weeks=2)["cohort"].unique()) == [
        pd.Timestamp("2026-01-05")
    ]
    assert analysis.cohort_retention(summary.iloc[:0], profiles).empty
    assert analysis.week_one_retention(retention) == (
        "50% of the signed-in users seen (1 of 2, over 2 weekly cohort(s)) had a session "
        "in the calendar week after their signup week."
    )
    assert analysis.week_one_retention(retention[retention["week"] != 1]) == (
        "No cohort's week after its signup week lies in this period."
    )


@pytest.fixture
def browsing() -> pd.DataFrame:
    """Three sessions' events, not in date order:

    - x: home at 0 s, a click at 20 s, category at 10 s, productDetail at 40 s, productDetail (404) at 45 s.
    - y: home at 100 s, productDetail (500) at 130 s.
    - z: search at 200 s, redirected (301).
    """
    s = 1_000
    return events_frame(
        [
            {"session_id": "y", "date": T + 130 * s, "page_type": "productDetail", "status": 500},
            {"session_id": "x", "date": T, "page_type": "home"},
            {"session_id": "x", "date": T + 20 * s, "page_type": "category", "event": "click"},
            {"session_id": "x", "date": T + 10 * s, "page_type": "category"},
            {"session_id": "x", "date": T + 40 * s, "page_type": "productDetail"},
            {"session_id": "x", "date": T + 45 * s, "page_type": "productDetail", "status": 404},
            {"session_id": "y", "date": T + 100 * s, "page_type": "home"},
            {"session_id": "z", "date": T + 200 * s, "page_type": "search", "status": 301},
        ]
    )


def test_time_on_page_measures_until_the_next_pageview(browsing):
    # home: 10 s (x) and 30 s (y); category 30 s; productDetail 5 s (x's first); last pageviews unmeasured.
    assert records(analysis.time_on_page(browsing)) == [
        {"page_type": "home", "views": 2, "median_s": 20.0, "mean_s": 20.0},
        {"page_type": "category", "views": 1, "median_s": 30.0, "mean_s": 30.0},
        {"page_type": "productDetail", "views": 1, "median_s": 5.0, "mean_s": 5.0},
    ]


def test_transitions_end_each_session_with_an_exit(browsing):
    # productDetail has 3 views: one goes on to productDetail, two are a session's last.
    assert records(analysis.transitions(browsing, n=4)) == [
        {"from_page": "productDetail", "to_page": "exit", "count": 2, "share": 2 / 3},
        {"from_page": "category", "to_page": "productDetail", "count": 1, "share": 1.0},
        {"from_page": "home", "to_page": "category", "count": 1, "share": 0.5},
        {"from_page": "home", "to_page": "productDetail", "count": 1, "share": 0.5},
    ]
    assert len(analysis.transitions(browsing)) == 6  # every pair seen


def test_errors_by_status_class_counts_page_loads(browsing):
    # 7 pageviews (the click is no page load): 4 of 200, a 301, a 404, a 500.
    assert records(analysis.errors_by_status_class(browsing)) == [
        {"status_class": "2xx", "loads": 4, "share": 4 / 7},
        {"status_class": "3xx", "loads": 1, "share": 1 / 7},
        {"status_class": "4xx", "loads": 1, "share": 1 / 7},
        {"status_class": "5xx", "loads": 1, "share": 1 / 7},
    ]


def test_each_outcome_sentence_says_what_its_data_shows(summary, browsing):
    assert analysis.kpi_sentence(analysis.kpis(summary)) == (
        "5 sessions: 40% bounced (one pageview or none), the median lasted 30 s, 20.0% ended in an order; "
        "50% of the sessions that reached the cart left without ordering."
    )
    assert analysis.kpi_sentence(analysis.kpis(summary.iloc[:0])) == "No sessions in this period."
    channels = analysis.outcomes_by(summary, "channel")  # google 1 of 3 orders, direct and facebook 0 of 1
    assert analysis.best_and_worst(channels, "channel", min_sessions=1) == (
        "Conversion ranges from 0.0% (channel direct, 1 sessions) to 33.3% (channel google, 3 sessions) "
        "among groups of 1+ sessions."
    )
    assert analysis.best_and_worst(channels, "channel", min_sessions=2) == (
        "Only one channel has 2 sessions or more: google, conversion 33.3% over 3 sessions; "
        "2 smaller group(s) left out."
    )
    assert analysis.best_and_worst(channels, "channel") == "No channel has 30 sessions or more."
    assert analysis.bounciest_landing(analysis.landing_pages(summary), min_sessions=2) == (
        "40% of sessions (2 of 5) landed on home, and 50% of those bounced; "
        "the highest bounce rate among landing pages with 2+ sessions: home, 50%."
    )
    assert analysis.commonest_exit(analysis.exit_pages(summary)) == (
        "20% of sessions (1 of 5) left from cart (0% of them after it failed to load); "
        "40.0% of all sessions ended on a page load that failed."
    )
    assert analysis.error_cost(analysis.error_exits(summary)) == (
        "3 sessions had a failed page load; 67% of them ended on a failed one and 0.0% ordered, "
        "against 50.0% of the other sessions."
    )
    stays = analysis.time_on_page(browsing)
    assert analysis.longest_stay(stays, min_views=1) == (
        "Visitors stay longest on category pages: median 30 s over 1 measured views "
        "(a session's last page has no measured time)."
    )
    assert analysis.longest_stay(stays) == "No page type has 30 measured views or more."
    assert analysis.commonest_transition(analysis.transitions(browsing)) == (
        "The most frequent step is productDetail -> exit: 2 times, 67% of productDetail views."
    )
    assert analysis.failed_loads(analysis.errors_by_status_class(browsing)) == (
        "28.6% of page loads failed (2 of 7): 14.3% with a 4xx status, 14.3% with a 5xx."
    )
