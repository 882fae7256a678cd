"""The questions of the analysis notebook, answered with pandas.

Each function takes a frame as :func:`clicklib.cassandra.query_df` returns it (columns are
the CQL columns of ``schema.cql``) and returns a tidy DataFrame, ready for
:mod:`clicklib.charts`. Event times come from the integer ``date`` (epoch milliseconds,
UTC), never from ``day``, whose Python type depends on the driver. Times come out as
naive UTC datetimes, like the driver's timestamps.

"Per session" questions (city, language, device, referrer) look at each session's first
event: the generator, like a real site, keeps these fixed within a session.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

# The funnel: every session, then the steps towards an order. A step is done by a successful
# load (status below 400) of its page, the cart also by an add_to_cart, and the purchase only by a
# successful purchase event: a confirmation page that failed to load is no order.
FUNNEL_STEPS = ("session", "product", "cart", "checkout", "purchase")
FUNNEL_PAGES = {"product": "productDetail", "cart": "cart", "checkout": "checkout"}
# Time charts bucket their data so that they hold at most MAX_BUCKETS points per line, whatever
# the span: per minute for up to 10 hours of data, then coarser (a browser chart of 30 days per
# minute would embed 43,200 rows per line, and Altair refuses more than 5,000).
TIME_BUCKETS = ("1min", "5min", "15min", "1h", "6h", "1D", "7D")
MAX_BUCKETS = 600
BUCKET_WORDS = {"1min": "minute", "5min": "5 minutes", "15min": "15 minutes", "1h": "hour", "6h": "6 hours"}
BUCKET_WORDS |= {"1D": "day", "7D": "week"}
# A signed-in user counts as new for this long after signing up, then as returning.
NEW_USER_DAYS = 30
MOBILE_USER_AGENT = re.compile(r"Mobile|Android|iPhone|iPad")
# Host keywords that name a traffic source; any other host is reported as itself.
KNOWN_SOURCES = (
    "google",
    "bing",
    "yahoo",
    "duckduckgo",
    "facebook",
    "instagram",
    "twitter",
    "tiktok",
    "youtube",
    "linkedin",
    "pinterest",
    "newsletter",
)
UNKNOWN = "unknown"


def recent_days(days: int, today: date | None = None) -> list[date]:
    """The last ``days`` UTC days, today included, oldest first: the day partitions a notebook reads."""
    today = today or datetime.now(UTC).date()
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def as_datetime(values: pd.Series) -> pd.Series:
    """Naive UTC datetimes from driver timestamps or from epoch milliseconds (as the oracle writes them)."""
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="ms")
    times = pd.to_datetime(values)
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times


def event_times(events: pd.DataFrame) -> pd.Series:
    """When each event happened, as naive UTC datetimes."""
    return pd.to_datetime(events["date"].astype("int64"), unit="ms")


def bucket_for(times: pd.Series, max_buckets: int = MAX_BUCKETS) -> str:
    """The finest of :data:`TIME_BUCKETS` that cuts the span of ``times`` into at most ``max_buckets``."""
    present = times.dropna()
    if present.empty:
        return TIME_BUCKETS[0]
    span = present.max() - present.min()
    return next((f for f in TIME_BUCKETS if span / pd.Timedelta(f) < max_buckets), TIME_BUCKETS[-1])


def traffic_over_time(events: pd.DataFrame, freq: str | None = None) -> pd.DataFrame:
    """Events, distinct users and distinct sessions per time bucket (``freq``, by default the finest
    that keeps the chart small, see :func:`bucket_for`); buckets without events count zero. The
    bucket is in the ``bucket`` column."""
    times = event_times(events)
    freq = freq or bucket_for(times)
    frame = pd.DataFrame({"time": times, "user_id": events["user_id"], "session_id": events["session_id"]})
    traffic = frame.groupby(pd.Grouper(key="time", freq=freq)).agg(
        events=("session_id", "size"), users=("user_id", "nunique"), sessions=("session_id", "nunique")
    )
    return traffic.reset_index().assign(bucket=freq)


def pageviews_over_time(pageviews_per_minute: pd.DataFrame, freq: str | None = None) -> pd.DataFrame:
    """Pageviews per time bucket and page type, summed from the per-minute table, at most
    MAX_BUCKETS / 6 buckets by default (one line per page type)."""
    starts = as_datetime(pageviews_per_minute["window_start"])
    freq = freq or bucket_for(starts, MAX_BUCKETS // 6)
    frame = pd.DataFrame(
        {"window_start": starts.dt.floor(freq), "page_type": pageviews_per_minute["page_type"]}
    ).assign(views=pageviews_per_minute["views"].astype("int64"))
    views = frame.groupby(["window_start", "page_type"], as_index=False)["views"].sum()
    return views.assign(bucket=freq)


def views_per_page_type(events: pd.DataFrame) -> pd.DataFrame:
    """Pageviews per page type, most viewed first, with each type's share of all pageviews."""
    return _counts(_pageviews(events), ["page_type"], "views")


def top_partners(events: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` partner shops with the most pageviews, with their (successful) purchases and sessions."""
    frame = events.assign(pageview=events["event"].eq("pageview"), purchase=_orders(events))
    partners = frame.groupby(["partner_id", "partner_name"], dropna=False, as_index=False).agg(
        pageviews=("pageview", "sum"), purchases=("purchase", "sum"), sessions=("session_id", "nunique")
    )
    partners = partners.sort_values(["pageviews", "partner_name"], ascending=[False, True], ignore_index=True)
    return partners.head(n)


def top_pages(events: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` most viewed pages (``current_url``), with their page type and sessions."""
    pages = (
        _pageviews(events)
        .groupby("current_url", as_index=False)
        .agg(page_type=("page_type", "first"), views=("session_id", "size"), sessions=("session_id", "nunique"))
    )
    pages = pages.sort_values(["views", "current_url"], ascending=[False, True], ignore_index=True)
    return pages.head(n)


def funnel(events: pd.DataFrame) -> pd.DataFrame:
    """How far sessions get towards an order: one row per step of :data:`FUNNEL_STEPS`.

    - ``did``: sessions that did this step (the first step: every session).
    - ``reached``: sessions whose furthest step is this one or a later one. Sessions do not
      walk the steps in order (some open a cart they filled on an earlier visit), so ``did``
      may grow from one step to the next; ``reached`` never grows, and every percentage below
      is a fraction in [0, 1].
    - ``of_previous`` = reached / reached of the previous step (1.0 on the first step), and
      ``of_sessions`` = reached / every session: "67 % of those at checkout buy" is not "5.9 %
      of sessions buy", and the chart shows both. NaN when the denominator is 0.
    """
    ok = events["status"].lt(400)
    views = events["event"].eq("pageview") & ok
    done = {
        "session": pd.Series(True, index=events.index),
        "product": views & events["page_type"].eq(FUNNEL_PAGES["product"]),
        "cart": (views & events["page_type"].eq(FUNNEL_PAGES["cart"])) | (events["event"].eq("add_to_cart") & ok),
        "checkout": views & events["page_type"].eq(FUNNEL_PAGES["checkout"]),
        "purchase": _orders(events),
    }
    per_session = pd.DataFrame(done).groupby(events["session_id"]).any()
    furthest = per_session.mul(np.arange(len(FUNNEL_STEPS))).max(axis=1)
    reached = [int((furthest >= i).sum()) for i in range(len(FUNNEL_STEPS))]
    steps = pd.DataFrame(
        {
            "step": list(FUNNEL_STEPS),
            "did": [int(per_session[step].sum()) for step in FUNNEL_STEPS],
            "reached": pd.Series(reached, dtype="int64"),
        }
    )
    steps["of_previous"] = _ratio(steps["reached"], steps["reached"].shift(1, fill_value=steps["reached"].iloc[0]))
    steps["of_sessions"] = _ratio(steps["reached"], steps["reached"].iloc[0])
    return steps


def sessions(events: pd.DataFrame) -> pd.DataFrame:
    """One row per ``session_id``, in order of start.

    ``duration_s`` runs from the first to the last event (0 for a single event), ``depth``
    counts pageviews, ``purchased`` says whether a successful ``purchase`` event happened, and
    ``visitor`` is "new" when the user signed up less than :data:`NEW_USER_DAYS` days before
    the session started, "returning" when earlier, "anonymous" without a user_id and "unknown"
    for a user whose profile (signup date) is missing. (The first session in the data says
    nothing: most users had sessions long before the data begins.)
    """
    frame = events.assign(
        time=event_times(events),
        pageview=events["event"].eq("pageview"),
        purchase=_orders(events),
    )
    if "signup_date" not in frame:
        frame["signup_date"] = np.nan
    per_session = frame.groupby("session_id", as_index=False).agg(
        user_id=("user_id", "first"),
        signup_date=("signup_date", "first"),
        start=("time", "min"),
        end=("time", "max"),
        events=("time", "size"),
        depth=("pageview", "sum"),
        purchased=("purchase", "any"),
    )
    per_session = per_session.sort_values(["start", "session_id"], ignore_index=True)
    per_session["duration_s"] = (per_session["end"] - per_session["start"]).dt.total_seconds()
    since_signup_ms = per_session["start"].astype("datetime64[ms]").astype("int64") - per_session["signup_date"]
    per_session["visitor"] = np.select(
        [
            per_session["user_id"].isna(),
            per_session["signup_date"].isna(),
            since_signup_ms < NEW_USER_DAYS * 86_400_000,
        ],
        ["anonymous", UNKNOWN, "new"],
        default="returning",
    )
    columns = ["session_id", "user_id", "start", "end", "duration_s", "events", "depth", "purchased", "visitor"]
    return per_session[columns]


def session_summary(per_session: pd.DataFrame) -> pd.DataFrame:
    """One row of headline numbers over a :func:`sessions` frame.

    A bounce is a session with at most one pageview.
    """
    return pd.DataFrame(
        {
            "sessions": [len(per_session)],
            "median_duration_s": [per_session["duration_s"].median()],
            "mean_depth": [per_session["depth"].mean()],
            "bounce_rate": [per_session["depth"].le(1).mean()],
            "purchase_rate": [per_session["purchased"].astype(bool).mean()],
        }
    )


def histogram(values: pd.Series, bin_width: float) -> pd.DataFrame:
    """Counts of values in bins [bin_start, bin_end) of ``bin_width``, aligned to 0, every bin from
    the lowest filled one to the highest included (charts then embed a few rows, not every value)."""
    present = values.dropna()
    if present.empty:
        return pd.DataFrame({"bin_start": [], "bin_end": [], "count": []})
    index = np.floor(present.to_numpy(dtype="float64") / bin_width).astype("int64")
    bins = np.arange(index.min(), index.max() + 1)
    counts = pd.Series(index).value_counts().reindex(bins, fill_value=0)
    return pd.DataFrame({"bin_start": bins * bin_width, "bin_end": (bins + 1) * bin_width, "count": counts.to_numpy()})


def new_vs_returning(events: pd.DataFrame) -> pd.DataFrame:
    """Sessions per visitor kind ("new", "returning", "anonymous"), as :func:`sessions` defines them."""
    return _counts(sessions(events), ["visitor"], "sessions")


def cities(events: pd.DataFrame) -> pd.DataFrame:
    """Sessions per city (with its country), most first."""
    return _counts(_first_events(events), ["city", "country"], "sessions")


def languages(events: pd.DataFrame) -> pd.DataFrame:
    """Sessions per browser language, most first."""
    return _counts(_first_events(events), ["language"], "sessions")


def device(user_agent: str | None) -> str:
    """'mobile' when the user agent names a phone or tablet (Mobile, Android, iPhone, iPad),
    else 'desktop' (a missing user agent included)."""
    if isinstance(user_agent, str) and MOBILE_USER_AGENT.search(user_agent):
        return "mobile"
    return "desktop"


def devices(events: pd.DataFrame) -> pd.DataFrame:
    """Sessions per device kind, from each session's user agent."""
    first = _first_events(events)
    return _counts(first.assign(device=first["user_agent"].map(device)), ["device"], "sessions")


def referrer_source(referrer: str | None, current_url: str | None) -> str:
    """Where a page load came from: "direct" without a referrer, "internal" when the referrer
    is on the same host as the page, else the source keyword in the referrer's host
    (google, facebook, newsletter, ...) or, for an unknown source, the host itself."""
    if not isinstance(referrer, str) or not referrer:
        return "direct"
    host = (urlsplit(referrer).hostname or "").removeprefix("www.")
    page_host = (urlsplit(current_url).hostname or "").removeprefix("www.") if isinstance(current_url, str) else ""
    if host and host == page_host:
        return "internal"
    for source in KNOWN_SOURCES:
        if source in host:
            return source
    return host or UNKNOWN


def referrer_sources(events: pd.DataFrame) -> pd.DataFrame:
    """Sessions per traffic source, from the referrer of each session's first event (``init_session``).

    Sessions whose first event is not in the frame are left out.
    """
    first = _first_events(events[events["init_session"].eq(True)])
    source = [referrer_source(r, u) for r, u in zip(first["referrer"], first["current_url"], strict=True)]
    return _counts(first.assign(source=source), ["source"], "sessions")


def error_rate(status_per_minute: pd.DataFrame, freq: str | None = None) -> pd.DataFrame:
    """Per time bucket of the ``status_per_minute`` table (per minute while that keeps the chart
    small, see :func:`bucket_for`): requests (page loads), errors (failed page loads, status 400 or
    above), error_rate = errors / requests, the minutes
    the pipeline raised an alert for (``alerts``) and whether there was any (``alert``), in time
    order. The bucket is in the ``bucket`` column."""
    starts = as_datetime(status_per_minute["window_start"])
    freq = freq or bucket_for(starts)
    frame = pd.DataFrame(
        {
            "window_start": starts.dt.floor(freq),
            "requests": status_per_minute["requests"].astype("int64"),
            "errors": status_per_minute["errors"].astype("int64"),
            # A row the sink wrote without the flag has not raised an alert.
            "alerts": status_per_minute["alert"].eq(True).astype("int64"),
        }
    )
    rates = frame.groupby("window_start", as_index=False).sum()
    rates["window_end"] = rates["window_start"] + pd.Timedelta(freq)
    rates["error_rate"] = _ratio(rates["errors"], rates["requests"])
    rates["alert"] = rates["alerts"] > 0
    columns = ["window_start", "window_end", "requests", "errors", "error_rate", "alerts", "alert", "bucket"]
    return rates.assign(bucket=freq)[columns].sort_values("window_start", ignore_index=True)


# --- one sentence per chart, computed from the data it shows -----------------------------------


def busiest(traffic: pd.DataFrame) -> str:
    """The busiest bucket of :func:`traffic_over_time`, in words."""
    if traffic.empty or traffic["events"].max() == 0:
        return "No events in this period."
    top = traffic.loc[traffic["events"].idxmax()]
    per = BUCKET_WORDS.get(top["bucket"], top["bucket"])
    began = f"{top['time']:%Y-%m-%d %H:%M} UTC"
    return f"The busiest {per} began {began}: {top['events']:,} events from {top['users']:,} users."


def leading_share(counts: pd.DataFrame, key: str, count: str = "sessions") -> str:
    """The largest row of a share table (:func:`devices`, :func:`referrer_sources`, ...), in words:
    ``key`` names its kind, ``count`` the column counted (and the word for it)."""
    if counts.empty:
        return f"No {count}."
    top, kind = counts.iloc[0], key.replace("_", " ")
    return f"{top['share']:.0%} of {count} ({top[count]:,} of {counts[count].sum():,}): {kind} {top[key]}."


def worst_errors(rates: pd.DataFrame) -> str:
    """The bucket of :func:`error_rate` with the highest error rate, and the alerts raised, in words."""
    loaded = rates[rates["requests"] > 0]
    if loaded.empty:
        return "No page loads in this period."
    worst = loaded.loc[loaded["error_rate"].idxmax()]
    total = loaded["errors"].sum() / loaded["requests"].sum()
    per = BUCKET_WORDS.get(worst["bucket"], worst["bucket"])
    return (
        f"{total:.1%} of page loads failed overall; the worst {per} began {worst['window_start']:%Y-%m-%d %H:%M} UTC "
        f"with {worst['error_rate']:.0%} failed; the pipeline raised {int(rates['alerts'].sum())} alert(s)."
    )


def _orders(events: pd.DataFrame) -> pd.Series:
    """Which events are orders: successful purchase events (a failed one is no order)."""
    return events["event"].eq("purchase") & events["status"].lt(400)


def _pageviews(events: pd.DataFrame) -> pd.DataFrame:
    return events[events["event"] == "pageview"]


def _first_events(events: pd.DataFrame) -> pd.DataFrame:
    """Each session's earliest event."""
    ordered = events.sort_values(["date", "session_id"], kind="stable")
    return ordered.drop_duplicates("session_id").reset_index(drop=True)


def _counts(frame: pd.DataFrame, by: list[str], name: str) -> pd.DataFrame:
    """Rows per value of ``by`` (missing values as "unknown") and their share, most first."""
    keys = frame[by].astype("object").fillna(UNKNOWN)
    counts = keys.groupby(by).size().reset_index(name=name)
    counts["share"] = _ratio(counts[name], counts[name].sum())
    return counts.sort_values([name, *by], ascending=[False, *[True] * len(by)], ignore_index=True)


def _ratio(numerator: pd.Series, denominator: pd.Series | int) -> pd.Series:
    """numerator / denominator as floats, NaN where the denominator is 0."""
    if isinstance(denominator, pd.Series):
        denominator = denominator.astype("float64").where(denominator != 0)
    elif denominator == 0:
        denominator = np.nan
    return numerator.astype("float64") / denominator
