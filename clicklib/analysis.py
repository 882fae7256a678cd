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
# Scheme, optional user info, then the host: the same pattern as the streaming SQL's.
URL_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]*)")
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
# The outcome flags of the session_summary table, one bool per session.
SUMMARY_FLAGS = ("viewed_product", "reached_cart", "reached_checkout", "purchased")
# The next page of a session's last pageview, in transitions.
EXIT_PAGE = "exit"
# Sentences compare groups of at least this many sessions (or views): a rate over a handful
# swings on a single order.
MIN_GROUP_SESSIONS = 30


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
    return _funnel_steps(pd.DataFrame(done).groupby(events["session_id"]).any())


def funnel_of_sessions(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`funnel` over the ``session_summary`` table: every visitor's sessions, anonymous ones
    included, from the steps each row says it reached (same definitions, same columns)."""
    flags = summary_sessions(summary)
    per_session = pd.DataFrame(
        {
            "session": True,
            "product": flags["viewed_product"],
            "cart": flags["reached_cart"],
            "checkout": flags["reached_checkout"],
            "purchase": flags["purchased"],
        },
        index=flags.index,
    )
    return _funnel_steps(per_session.astype(bool))


def _funnel_steps(per_session: pd.DataFrame) -> pd.DataFrame:
    """The funnel's rows from one row of step flags per session (columns :data:`FUNNEL_STEPS`)."""
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


def referrer_source(referrer: str | None, current_url: str | None) -> str:
    """Where a page load came from, as the streaming SQL names a session's channel
    (ksql/16_session_summary.sql): "direct" without a referrer, "internal" when the referrer is
    on the same host as the page, else the source keyword in the referrer's host (google,
    facebook, newsletter, ...) or, for an unknown source, the host itself; "unknown" when the
    referrer has no host. A host is what follows the scheme (any scheme) up to a port, path,
    query or fragment, in lower case and without ``www.``."""
    if not isinstance(referrer, str) or not referrer:
        return "direct"
    host = url_host(referrer)
    if host and host == url_host(current_url):
        return "internal"
    for source in KNOWN_SOURCES:
        if source in host:
            return source
    return host or UNKNOWN


def url_host(url: str | None) -> str:
    """The host of a URL as :func:`referrer_source` reads it ("" when it has none)."""
    match = URL_HOST.match(url) if isinstance(url, str) else None
    return (match.group(1).lower() if match else "").removeprefix("www.")


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


# --- the session_summary table: one row per session, every visitor ---------------------------


def summary_sessions(summary: pd.DataFrame) -> pd.DataFrame:
    """The ``session_summary`` table as the functions below read it: one row per session, in
    order of start, every visitor included (anonymous ones have no user_id).

    ``session_start`` and ``session_end`` become naive UTC datetimes (from naive or aware driver
    timestamps, or epoch milliseconds), ``day`` the UTC midnight of the start, the counts
    integers, ``exit_status`` a nullable integer, and each outcome flag a bool (a missing flag is
    False). It adds ``visitor`` ("signed-in" or "anonymous") and ``depth`` (= ``pageviews``, so
    that :func:`clicklib.charts.session_length` and ``session_depth`` draw it). Applying it twice
    changes nothing, so every function below accepts the raw table or this frame.
    """
    frame = summary.copy()
    for column in ("session_start", "session_end"):
        frame[column] = as_datetime(frame[column])
    frame["day"] = frame["session_start"].dt.normalize()
    for column in ("events", "pageviews", "errors"):
        frame[column] = pd.to_numeric(frame[column]).fillna(0).astype("int64")
    frame["duration_s"] = pd.to_numeric(frame["duration_s"]).astype("float64")
    frame["exit_status"] = pd.to_numeric(frame["exit_status"]).astype("Int64")
    for flag in SUMMARY_FLAGS:
        frame[flag] = frame[flag].eq(True)
    frame["visitor"] = np.where(frame["user_id"].isna(), "anonymous", "signed-in")
    frame["depth"] = frame["pageviews"]
    return frame.sort_values(["session_start", "session_id"], ignore_index=True)


def kpis(summary: pd.DataFrame) -> pd.DataFrame:
    """One row of headline numbers over every session of a ``session_summary`` frame:

    - ``sessions``;
    - ``bounce_rate``: the share of sessions with at most one pageview (as :func:`session_summary`);
    - ``median_duration_s``: first to last event;
    - ``conversion``: the share of sessions with an order (a successful purchase event);
    - ``cart_abandonment``: of the sessions that reached the cart (a cart page that loaded or an
      add_to_cart), the share that did not order.

    Rates are NaN when their denominator is 0.
    """
    frame = summary_sessions(summary)
    carts = frame["reached_cart"]
    return pd.DataFrame(
        {
            "sessions": [len(frame)],
            "bounce_rate": [_share(frame["pageviews"].le(1).sum(), len(frame))],
            "median_duration_s": [frame["duration_s"].median()],
            "conversion": [_share(frame["purchased"].sum(), len(frame))],
            "cart_abandonment": [_share((carts & ~frame["purchased"]).sum(), carts.sum())],
        }
    )


def outcomes_by(summary: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per value of ``column`` (channel, device, partner_name, the segment of
    :func:`with_segments`, ...; missing values as "unknown"): sessions, their share of all
    sessions, the bounce rate (at most one pageview) and the conversion (sessions with an order),
    most sessions first."""
    frame = summary_sessions(summary)
    frame[column] = frame[column].astype("object").fillna(UNKNOWN)
    groups = frame.groupby(column, as_index=False).agg(
        sessions=("session_id", "size"),
        bounces=("pageviews", lambda pageviews: int(pageviews.le(1).sum())),
        orders=("purchased", "sum"),
    )
    groups["share"] = _ratio(groups["sessions"], groups["sessions"].sum())
    groups["bounce_rate"] = _ratio(groups["bounces"], groups["sessions"])
    groups["conversion"] = _ratio(groups["orders"], groups["sessions"])
    groups = groups.sort_values(["sessions", column], ascending=[False, True], ignore_index=True)
    return groups[[column, "sessions", "share", "bounce_rate", "conversion"]]


def with_segments(summary: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """The sessions of :func:`summary_sessions` with each user's profile ``segment``, taken from
    the clean events (whose rows carry it): "anonymous" for sessions without a user_id, "unknown"
    for a user without a profile or without events in ``events``. A segment that changed within
    the period counts as the user's latest event has it."""
    frame = summary_sessions(summary)
    known = events[events["user_id"].notna()].sort_values("date", kind="stable")
    latest = known.drop_duplicates("user_id", keep="last").set_index("user_id")["segment"].astype("object")
    segment = frame["user_id"].map(latest).astype("object")
    frame["segment"] = segment.where(segment.notna(), UNKNOWN).where(frame["user_id"].notna(), "anonymous")
    return frame


def landing_pages(summary: pd.DataFrame) -> pd.DataFrame:
    """Sessions per landing page (the page type of the session's landing event: the one that
    opened it, or its earliest; "unknown" without one), most first, with their share of all
    sessions and their bounce rate (at most one pageview)."""
    return outcomes_by(summary, "landing_page")[["landing_page", "sessions", "share", "bounce_rate"]]


def exit_pages(summary: pd.DataFrame) -> pd.DataFrame:
    """Sessions per exit page (the page type of the session's last pageview; "unknown" for a
    session without one), most first, with their share of all sessions, the exits whose last page
    load failed (``failed``: status 400 or above) and their share of the page's exits
    (``failed_share``)."""
    frame = summary_sessions(summary)
    frame["exit_page"] = frame["exit_page"].astype("object").fillna(UNKNOWN)
    frame["failed"] = frame["exit_status"].ge(400).fillna(False).astype(bool)
    pages = frame.groupby("exit_page", as_index=False).agg(sessions=("session_id", "size"), failed=("failed", "sum"))
    pages["share"] = _ratio(pages["sessions"], pages["sessions"].sum())
    pages["failed_share"] = _ratio(pages["failed"], pages["sessions"])
    pages = pages.sort_values(["sessions", "exit_page"], ascending=[False, True], ignore_index=True)
    return pages[["exit_page", "sessions", "share", "failed", "failed_share"]]


def time_on_page(events: pd.DataFrame) -> pd.DataFrame:
    """How long visitors stay on each page type: the time from a pageview to the next pageview
    of the same session (events ordered by ``date``), with its median and mean in seconds and the
    number of views measured, most measured views first.

    A session's last pageview has nothing after it to measure against, so it is left out: bounces
    (a single pageview) are never measured, and pages people often leave from (a purchase
    confirmation) are measured on the few views that went on.
    """
    views = _consecutive_pageviews(events)
    stays = views.assign(seconds=(views["next_date"] - views["date"]) / 1000).dropna(subset=["seconds"])
    pages = stays.groupby("page_type", as_index=False).agg(
        views=("seconds", "size"), median_s=("seconds", "median"), mean_s=("seconds", "mean")
    )
    pages["views"] = pages["views"].astype("int64")
    return pages.sort_values(["views", "page_type"], ascending=[False, True], ignore_index=True)


def transitions(events: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """The ``n`` most frequent steps between pageviews: ``from_page`` -> ``to_page`` (page types)
    between consecutive pageviews of a session (ordered by ``date``), where the next page of a
    session's last pageview is "exit"; ``count`` and ``share`` of the from-page's views (every
    view has one next page or the exit, so a from-page's shares add up to 1 before the cut)."""
    views = _consecutive_pageviews(events)
    steps = pd.DataFrame({"from_page": views["page_type"], "to_page": views["next_page"].fillna(EXIT_PAGE)})
    counts = steps.groupby(["from_page", "to_page"], as_index=False).size().rename(columns={"size": "count"})
    counts["share"] = _ratio(counts["count"], counts.groupby("from_page")["count"].transform("sum"))
    counts = counts.sort_values(["count", "from_page", "to_page"], ascending=[False, True, True], ignore_index=True)
    return counts.head(n)


def errors_by_status_class(events: pd.DataFrame) -> pd.DataFrame:
    """Page loads (pageview events) per HTTP status class ("2xx", "3xx", "4xx", "5xx"), with their
    share of all page loads, most first."""
    loads = _pageviews(events)
    classes = (loads["status"].astype("int64") // 100).astype(str) + "xx"
    return _counts(pd.DataFrame({"status_class": classes}), ["status_class"], "loads")


def error_exits(summary: pd.DataFrame) -> pd.DataFrame:
    """Sessions where some page load failed (status 400 or above) against sessions where every
    page load succeeded (``page_loads``: "some failed" / "all succeeded"): sessions, share,
    bounce rate, conversion, and the share whose last page load (the exit) failed, most first."""
    frame = summary_sessions(summary)
    frame["page_loads"] = np.where(frame["errors"] > 0, "some failed", "all succeeded")
    groups = outcomes_by(frame, "page_loads")
    failed_exits = frame["exit_status"].ge(400).fillna(False).astype(bool).groupby(frame["page_loads"]).sum()
    groups["failed_exit_share"] = _ratio(groups["page_loads"].map(failed_exits), groups["sessions"])
    return groups


def cohort_retention(summary: pd.DataFrame, events: pd.DataFrame, weeks: int = 8) -> pd.DataFrame:
    """Weekly retention of signed-in users by signup week, long-form, at most ``weeks`` x ``weeks`` rows.

    A user's ``cohort`` is the Monday (UTC midnight) of the week of their profile's
    ``signup_date`` (from the clean events, as :func:`with_segments` takes the segment; users
    without one are left out). ``week`` counts calendar weeks (Monday to Sunday, UTC) since the
    signup week: 0 is the signup week itself. Only the cohorts of the ``weeks`` weeks up to the
    last week of the summary are kept, and only the cells whose calendar week lies in the period
    read (from the week of the first session to that of the last).

    The denominator, ``users``, is the users of the cohort seen in the period read (with at least
    one session in ``summary``), not every user who signed up that week: the table holds no one
    who did not come back. ``active`` is those of them with a session in that week, ``retention``
    = active / users. A period of one week therefore shows 100 % by construction; the first and
    last weeks of the period may be partial.
    """
    frame = summary_sessions(summary)
    columns = ["cohort", "week", "users", "active", "retention"]
    if frame.empty:
        return pd.DataFrame({c: [] for c in columns})
    first_week, last_week = _monday(frame["session_start"]).agg(["min", "max"])
    known = events[events["user_id"].notna()].sort_values("date", kind="stable").drop_duplicates("user_id", keep="last")
    signup = pd.to_numeric(known.set_index("user_id")["signup_date"], errors="coerce").dropna()
    cohort_of = _monday(pd.to_datetime(signup.astype("int64"), unit="ms"))
    seen = frame[frame["user_id"].notna()]
    seen = pd.DataFrame({"user_id": seen["user_id"], "cohort": seen["user_id"].map(cohort_of)})
    seen["week_start"] = _monday(frame.loc[seen.index, "session_start"])
    seen = seen.dropna(subset=["cohort"])
    seen = seen[seen["cohort"].between(last_week - pd.Timedelta(weeks=weeks - 1), last_week)]
    users = seen.groupby("cohort")["user_id"].nunique()
    active = seen.groupby(["cohort", "week_start"])["user_id"].nunique()
    rows = [
        (cohort, (week_start - cohort).days // 7, users[cohort], active.get((cohort, week_start), 0))
        for cohort in users.index
        for week_start in pd.date_range(max(cohort, first_week), last_week, freq="7D")
    ]
    retention = pd.DataFrame(rows, columns=columns[:4]).astype({"week": "int64", "users": "int64", "active": "int64"})
    retention["retention"] = _ratio(retention["active"], retention["users"])
    return retention.sort_values(["cohort", "week"], ignore_index=True)


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
    """The largest row of a share table (:func:`cities`, :func:`languages`, ...), in words:
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


def kpi_sentence(kpis: pd.DataFrame) -> str:
    """The headline numbers of :func:`kpis`, in words."""
    top = kpis.iloc[0]
    if top["sessions"] == 0:
        return "No sessions in this period."
    cart = (
        "no session reached the cart"
        if pd.isna(top["cart_abandonment"])
        else f"{top['cart_abandonment']:.0%} of the sessions that reached the cart left without ordering"
    )
    return (
        f"{int(top['sessions']):,} sessions: {top['bounce_rate']:.0%} bounced (one pageview or none), "
        f"the median lasted {top['median_duration_s']:.0f} s, {top['conversion']:.1%} ended in an order; {cart}."
    )


def best_and_worst(
    outcomes: pd.DataFrame, column: str, measure: str = "conversion", min_sessions: int = MIN_GROUP_SESSIONS
) -> str:
    """The lowest and highest ``measure`` (a rate column of :func:`outcomes_by`) across the values of
    ``column``, in words. Groups of fewer than ``min_sessions`` sessions are left out (and
    counted): a rate over a handful of sessions swings on one order."""
    kind, word = column.replace("_", " "), measure.replace("_", " ")
    large = outcomes[(outcomes["sessions"] >= min_sessions) & outcomes[measure].notna()]
    small = len(outcomes) - len(large)
    left_out = f"; {small} smaller group(s) left out" if small else ""
    if large.empty:
        return f"No {kind} has {min_sessions} sessions or more."
    if len(large) == 1:
        only = large.iloc[0]
        return (
            f"Only one {kind} has {min_sessions} sessions or more: {only[column]}, "
            f"{word} {only[measure]:.1%} over {only['sessions']:,} sessions{left_out}."
        )
    low, high = large.loc[large[measure].idxmin()], large.loc[large[measure].idxmax()]
    return (
        f"{word.capitalize()} ranges from {low[measure]:.1%} ({kind} {low[column]}, {low['sessions']:,} sessions) "
        f"to {high[measure]:.1%} ({kind} {high[column]}, {high['sessions']:,} sessions) "
        f"among groups of {min_sessions}+ sessions{left_out}."
    )


def bounciest_landing(landing: pd.DataFrame, min_sessions: int = MIN_GROUP_SESSIONS) -> str:
    """The commonest landing page of :func:`landing_pages` and its bounce rate, and the landing
    page with the highest bounce rate among those of at least ``min_sessions`` sessions, in words."""
    if landing.empty:
        return "No sessions in this period."
    top = landing.iloc[0]
    sentence = (
        f"{top['share']:.0%} of sessions ({top['sessions']:,} of {landing['sessions'].sum():,}) landed on "
        f"{top['landing_page']}, and {top['bounce_rate']:.0%} of those bounced"
    )
    large = landing[landing["sessions"] >= min_sessions]
    if large.empty:
        return sentence + "."
    worst = large.loc[large["bounce_rate"].idxmax()]
    return (
        sentence + f"; the highest bounce rate among landing pages with {min_sessions}+ sessions: "
        f"{worst['landing_page']}, {worst['bounce_rate']:.0%}."
    )


def commonest_exit(exits: pd.DataFrame) -> str:
    """The commonest exit page of :func:`exit_pages`, and how many sessions ended on a failed page load, in words."""
    if exits.empty:
        return "No sessions in this period."
    top, total = exits.iloc[0], exits["sessions"].sum()
    return (
        f"{top['share']:.0%} of sessions ({top['sessions']:,} of {total:,}) left from {top['exit_page']} "
        f"({top['failed_share']:.0%} of them after it failed to load); "
        f"{exits['failed'].sum() / total:.1%} of all sessions ended on a page load that failed."
    )


def longest_stay(stays: pd.DataFrame, min_views: int = MIN_GROUP_SESSIONS) -> str:
    """The page type of :func:`time_on_page` with the longest median stay, among those with at
    least ``min_views`` measured views, in words."""
    large = stays[stays["views"] >= min_views]
    if large.empty:
        return f"No page type has {min_views} measured views or more."
    top = large.loc[large["median_s"].idxmax()]
    return (
        f"Visitors stay longest on {top['page_type']} pages: median {top['median_s']:.0f} s over "
        f"{top['views']:,} measured views (a session's last page has no measured time)."
    )


def commonest_transition(steps: pd.DataFrame) -> str:
    """The most frequent step of :func:`transitions`, in words."""
    if steps.empty:
        return "No pageviews in this period."
    top = steps.iloc[0]
    return (
        f"The most frequent step is {top['from_page']} -> {top['to_page']}: {top['count']:,} times, "
        f"{top['share']:.0%} of {top['from_page']} views."
    )


def failed_loads(classes: pd.DataFrame) -> str:
    """The share of page loads of :func:`errors_by_status_class` that failed (4xx and 5xx), in words."""
    total = classes["loads"].sum()
    if total == 0:
        return "No page loads in this period."
    per_class = classes.set_index("status_class")["loads"]
    client, server = per_class.get("4xx", 0), per_class.get("5xx", 0)
    return (
        f"{(client + server) / total:.1%} of page loads failed ({client + server:,} of {total:,}): "
        f"{client / total:.1%} with a 4xx status, {server / total:.1%} with a 5xx."
    )


def error_cost(groups: pd.DataFrame) -> str:
    """How sessions with a failed page load fare against the others (:func:`error_exits`), in words."""
    by_kind = groups.set_index("page_loads")
    if "some failed" not in by_kind.index:
        return "No session had a failed page load."
    failed = by_kind.loc["some failed"]
    sentence = (
        f"{int(failed['sessions']):,} sessions had a failed page load; {failed['failed_exit_share']:.0%} of them "
        f"ended on a failed one and {failed['conversion']:.1%} ordered"
    )
    if "all succeeded" not in by_kind.index:
        return sentence + "."
    return sentence + f", against {by_kind.loc['all succeeded', 'conversion']:.1%} of the other sessions."


def week_one_retention(retention: pd.DataFrame) -> str:
    """Over the cohorts of :func:`cohort_retention` whose week 1 lies in the period, the share of
    their users seen that had a session in the calendar week after their signup week, in words."""
    week_one = retention[retention["week"] == 1]
    users = int(week_one["users"].sum())
    if users == 0:
        return "No cohort's week after its signup week lies in this period."
    active = int(week_one["active"].sum())
    return (
        f"{active / users:.0%} of the signed-in users seen ({active:,} of {users:,}, over {len(week_one)} weekly "
        "cohort(s)) had a session in the calendar week after their signup week."
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


def _share(count: float, total: float) -> float:
    """count / total as a float, NaN when total is 0."""
    return float(count) / float(total) if total else np.nan


def _consecutive_pageviews(events: pd.DataFrame) -> pd.DataFrame:
    """Pageviews by session and ``date``, each with the date and page type of its session's next
    pageview (missing on the last). Pageviews of the same millisecond keep the frame's order."""
    views = _pageviews(events).sort_values(["session_id", "date"], kind="stable")
    following = views.groupby("session_id")
    return views.assign(next_date=following["date"].shift(-1), next_page=following["page_type"].shift(-1))


def _monday(times: pd.Series) -> pd.Series:
    """The Monday (UTC midnight) that starts each time's week."""
    return times.dt.normalize() - pd.to_timedelta(times.dt.day_of_week, unit="D")
