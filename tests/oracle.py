"""What the pipeline should compute, worked out independently with pandas.

Integration tests compare every aggregate the Flink SQL jobs write with these frames,
exactly. Nothing here uses clicklib beyond reading a workload's events and profiles,
so a shared bug cannot make both sides agree. Times are epoch milliseconds (UTC);
windows are aligned to the epoch and cover [window_start, window_end).
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections import Counter
from datetime import UTC, datetime

import pandas as pd

from clicklib.events import Event
from clicklib.generate import UserProfile, Workload

MINUTE_MS = 60_000
HOP_MS = 10_000
HOPPING_SIZE_MS = 60_000
SESSION_GAP_MS = 30 * MINUTE_MS
EVENT_COLUMNS = [f.name for f in dataclasses.fields(Event)]
PROFILE_COLUMNS = ["signup_date", "home_city", "segment"]
DAY_MS = 86_400_000
FUNNEL = ("session", "product", "cart", "checkout", "purchase")
SESSION_SUMMARY_COLUMNS = [
    "day",
    "session_start",
    "session_id",
    "session_end",
    "user_id",
    "channel",
    "device",
    "partner_name",
    "landing_page",
    "exit_page",
    "exit_status",
    "events",
    "pageviews",
    "duration_s",
    "errors",
    "viewed_product",
    "reached_cart",
    "reached_checkout",
    "purchased",
]
# The channel rule, written again from its definition: no referrer is "direct", a referrer on the
# page's own host "internal", a host naming a known source that source, any other host itself.
CHANNEL_SOURCES = [
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
]
URL_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]*)")
PHONE_OR_TABLET = re.compile(r"Mobile|Android|iPhone|iPad")


def valid_events(workload: Workload) -> pd.DataFrame:
    """Every valid event, anonymous ones included, one row each."""
    rows = [dataclasses.asdict(record.event) for record in workload.records if record.event is not None]
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def clean_events(workload: Workload) -> pd.DataFrame:
    """Valid events of known users, with the user's profile (missing values when there is none)."""
    events = valid_events(workload)
    events = events[events["user_id"].notna()]
    profiles = pd.DataFrame(
        [dataclasses.asdict(p) for p in workload.profiles], columns=[f.name for f in dataclasses.fields(UserProfile)]
    )
    # The profile topic is compacted: a user's latest profile is the one that counts.
    latest = profiles.sort_values("updated_at", kind="stable").drop_duplicates("user_id", keep="last")
    clean = events.merge(latest[["user_id", *PROFILE_COLUMNS]], on="user_id", how="left")
    clean["signup_date"] = clean["signup_date"].astype("Int64")
    return clean.reset_index(drop=True)


def funnel(workload: Workload, every_visitor: bool = False) -> dict[str, dict[str, int]]:
    """Per funnel step, over the clean events' sessions (``every_visitor``: every valid event's,
    anonymous visitors included): how many did it ("did") and how many got that far or further
    ("reached"). A step is a successful (status < 400) page load of a product,
    the cart (or an add_to_cart) or checkout; the purchase is a successful purchase event."""
    events = valid_events(workload) if every_visitor else clean_events(workload)
    return _funnel_counts([_steps(rows) for _, rows in events.groupby("session_id")])


def _steps(rows: pd.DataFrame) -> set[int]:
    """The funnel steps (indexes of FUNNEL) one session's events did."""
    steps = {0}
    for row in rows.itertuples():
        if row.status >= 400:
            continue
        load = row.event == "pageview"
        if load and row.page_type == "productDetail":
            steps.add(1)
        if (load and row.page_type == "cart") or row.event == "add_to_cart":
            steps.add(2)
        if load and row.page_type == "checkout":
            steps.add(3)
        if row.event == "purchase":
            steps.add(4)
    return steps


def _funnel_counts(sessions: list[set[int]]) -> dict[str, dict[str, int]]:
    did: Counter[int] = Counter()
    for steps in sessions:
        did.update(steps)
    furthest = [max(steps) for steps in sessions]
    return {
        "did": {step: did[i] for i, step in enumerate(FUNNEL)},
        "reached": {step: sum(f >= i for f in furthest) for i, step in enumerate(FUNNEL)},
    }


def _utc_day(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).date().isoformat()


def daily_funnel(workload: Workload) -> dict[str, dict[str, dict[str, int]]]:
    """:func:`funnel` of the clean events per UTC day of each session's first event."""
    by_day: dict[str, list[set[int]]] = {}
    for _, rows in clean_events(workload).groupby("session_id"):
        by_day.setdefault(_utc_day(int(rows["date"].min())), []).append(_steps(rows))
    return {day: _funnel_counts(sessions) for day, sessions in sorted(by_day.items())}


def sessions_per_day(workload: Workload) -> pd.DataFrame:
    """Per UTC day of the sessions' first events, over the clean events: sessions, distinct
    users, events, the mean of (last - first event) in seconds, the mean pageviews and the
    sessions with a successful purchase."""
    per_day: dict[str, list[dict]] = {}
    for _, rows in clean_events(workload).groupby("session_id"):
        per_day.setdefault(_utc_day(int(rows["date"].min())), []).append(
            {
                "user_id": rows["user_id"].iloc[0],
                "events": len(rows),
                "duration_s": (int(rows["date"].max()) - int(rows["date"].min())) / 1000,
                "depth": int((rows["event"] == "pageview").sum()),
                "purchased": bool(((rows["event"] == "purchase") & (rows["status"] < 400)).any()),
            }
        )
    rows = [
        {
            "day": day,
            "sessions": len(sessions),
            "users": len({s["user_id"] for s in sessions}),
            "events": sum(s["events"] for s in sessions),
            "mean_duration_s": statistics.fmean(s["duration_s"] for s in sessions),
            "mean_depth": statistics.fmean(s["depth"] for s in sessions),
            "purchase_sessions": sum(s["purchased"] for s in sessions),
        }
        for day, sessions in sorted(per_day.items())
    ]
    return pd.DataFrame(rows)


def retention(workload: Workload) -> pd.DataFrame:
    """Users of the clean events by the UTC day of their first event (the cohort); for each day
    from the cohort's to the newest day of the data, how many of them had an event that day."""
    days_of: dict[str, set[str]] = {}
    for row in clean_events(workload).itertuples():
        days_of.setdefault(row.user_id, set()).add(_utc_day(row.date))
    last = max(day for days in days_of.values() for day in days)
    cohorts: dict[str, list[set[str]]] = {}
    for days in days_of.values():
        cohorts.setdefault(min(days), []).append(days)
    rows = []
    for cohort, members in sorted(cohorts.items()):
        span = (datetime.fromisoformat(last) - datetime.fromisoformat(cohort)).days
        for n in range(span + 1):
            day = (datetime.fromisoformat(cohort) + pd.Timedelta(days=n)).date().isoformat()
            users = sum(day in days for days in members)
            rows.append({"cohort": cohort, "day_number": n, "cohort_users": len(members), "users": users})
    frame = pd.DataFrame(rows)
    frame["share"] = frame["users"] / frame["cohort_users"]
    return frame


def visitors(workload: Workload, new_days: int = 30) -> dict[str, int]:
    """Clean sessions by visitor kind: "new" when the user signed up less than ``new_days`` before
    the session's first event (by the profile produced), else "returning"."""
    signup = {p.user_id: p.signup_date for p in sorted(workload.profiles, key=lambda p: p.updated_at)}
    kinds: Counter[str] = Counter()
    starts: dict[str, tuple[int, str]] = {}
    for event in (r.event for r in workload.records if r.event is not None and r.event.user_id is not None):
        start = starts.get(event.session_id)
        if start is None or event.date < start[0]:
            starts[event.session_id] = (event.date, event.user_id)
    for start, user in starts.values():
        if user not in signup:
            kinds["unknown"] += 1
        else:
            kinds["new" if start - signup[user] < new_days * DAY_MS else "returning"] += 1
    return dict(kinds)


def session_summary(workload: Workload) -> pd.DataFrame:
    """One row per session_id over every valid event, anonymous visitors included, with the
    columns of the session_summary table (times in epoch milliseconds, ``day`` as 'YYYY-MM-DD').

    The landing event is the earliest event that opened the session (``init_session``), or its
    earliest event when none did: it gives the channel, device, partner and landing page. The
    exit page is the latest pageview's. Events of the same millisecond are ordered by their
    values (referrer, url, user agent, partner, page type; for the exit page type, status), so
    the choice never depends on arrival order. Flags need a successful (status < 400) load or
    event, as the funnel's steps.
    """
    return pd.DataFrame(_summary_rows(workload), columns=SESSION_SUMMARY_COLUMNS)


def _summary_rows(workload: Workload) -> list[dict]:
    """The rows of :func:`session_summary` as plain dicts (None stays None)."""
    per_session: dict[str, list[Event]] = {}
    for event in sorted(workload.events, key=lambda e: e.date):  # sorted() is stable
        per_session.setdefault(event.session_id, []).append(event)
    rows = []
    for session_id, events in per_session.items():
        first, last = events[0], events[-1]
        openers = [e for e in events if e.init_session] or events
        landing = min(openers, key=_landing_order)
        views = [e for e in events if e.event == "pageview"]
        exit_view = max(views, key=lambda e: (e.date, e.page_type or "", str(e.status))) if views else None
        loaded = {e.page_type for e in views if e.status < 400}
        ok_actions = {e.event for e in events if e.status < 400}
        rows.append(
            {
                "day": datetime.fromtimestamp(first.date / 1000, UTC).strftime("%Y-%m-%d"),
                "session_start": first.date,
                "session_id": session_id,
                "session_end": last.date,
                # The signed-in user: the largest id, should a session have two (as Flink's MAX).
                "user_id": max((e.user_id for e in events if e.user_id is not None), default=None),
                "channel": _channel(landing.referrer, landing.current_url),
                "device": "mobile" if landing.user_agent and PHONE_OR_TABLET.search(landing.user_agent) else "desktop",
                "partner_name": landing.partner_name or None,
                "landing_page": landing.page_type or None,
                "exit_page": exit_view.page_type if exit_view else None,
                "exit_status": exit_view.status if exit_view else None,
                "events": len(events),
                "pageviews": len(views),
                "duration_s": (last.date - first.date) / 1000,
                "errors": sum(e.status >= 400 for e in views),
                "viewed_product": "productDetail" in loaded,
                "reached_cart": "cart" in loaded or "add_to_cart" in ok_actions,
                "reached_checkout": "checkout" in loaded,
                "purchased": "purchase" in ok_actions,
            }
        )
    return rows


def _landing_order(event: Event) -> tuple:
    fields = (event.referrer, event.current_url, event.user_agent, event.partner_name, event.page_type)
    return (event.date, *(value or "" for value in fields))


def kpis(workload: Workload) -> dict[str, float]:
    """Headline numbers over every session of :func:`session_summary`: sessions, bounce rate (at
    most one pageview), median duration, conversion (sessions with an order) and cart abandonment
    (sessions that reached the cart without an order, of those that reached the cart)."""
    rows = _summary_rows(workload)
    carts = [r for r in rows if r["reached_cart"]]
    n = len(rows)
    return {
        "sessions": n,
        "bounce_rate": sum(r["pageviews"] <= 1 for r in rows) / n,
        "median_duration_s": statistics.median(r["duration_s"] for r in rows),
        "conversion": sum(r["purchased"] for r in rows) / n,
        "cart_abandonment": sum(not r["purchased"] for r in carts) / len(carts) if carts else float("nan"),
    }


def conversion_by(workload: Workload, column: str) -> dict[str, dict[str, float]]:
    """Per value of a session_summary column (or "segment": the user's latest profile's segment,
    "anonymous" without a user, "unknown" without a profile): sessions, bounce rate and conversion."""
    segments = {p.user_id: p.segment for p in sorted(workload.profiles, key=lambda p: p.updated_at)}
    groups: dict[str, list[dict]] = {}
    for row in _summary_rows(workload):
        if column == "segment":
            key = "anonymous" if row["user_id"] is None else segments.get(row["user_id"], "unknown")
        else:
            key = "unknown" if row[column] is None else row[column]
        groups.setdefault(key, []).append(row)
    return {
        key: {
            "sessions": len(rows),
            "bounce_rate": sum(r["pageviews"] <= 1 for r in rows) / len(rows),
            "conversion": sum(r["purchased"] for r in rows) / len(rows),
        }
        for key, rows in groups.items()
    }


def pageviews_per_minute(workload: Workload) -> pd.DataFrame:
    """Per 1-minute tumbling window and page_type: pageviews and distinct users."""
    clean = clean_events(workload)
    views = _with_minute_window(clean[clean["event"] == "pageview"])
    result = views.groupby(["window_start", "window_end", "page_type"], as_index=False).agg(
        views=("event_id", "size"), users=("user_id", "nunique")
    )
    return result.sort_values(["window_start", "page_type"], ignore_index=True)


def user_activity(workload: Workload) -> pd.DataFrame:
    """Events per user in 60 s hopping windows that advance every 10 s."""
    clean = clean_events(workload)
    latest_start = clean["date"] // HOP_MS * HOP_MS
    # An event lies in every window that starts at most 50 s before its own 10 s slot.
    hops = [
        pd.DataFrame({"window_start": latest_start - k * HOP_MS, "user_id": clean["user_id"]})
        for k in range(HOPPING_SIZE_MS // HOP_MS)
    ]
    windows = pd.concat(hops, ignore_index=True)
    windows["window_end"] = windows["window_start"] + HOPPING_SIZE_MS
    result = windows.groupby(["window_start", "window_end", "user_id"], as_index=False).agg(events=("user_id", "size"))
    return result.sort_values(["window_start", "user_id"], ignore_index=True)


def user_sessions(workload: Workload) -> pd.DataFrame:
    """Session windows per user, closed by 30 minutes without events (Flink session window rules)."""
    clean = clean_events(workload).sort_values(["user_id", "date"], kind="stable", ignore_index=True)
    new_user = clean["user_id"] != clean["user_id"].shift()
    # Each event stretches its window to date + gap, so the next event opens a new window
    # exactly when it comes a full gap or more after the previous one.
    new_session = new_user | (clean["date"] - clean["date"].shift() >= SESSION_GAP_MS)
    clean["session"] = new_session.cumsum()
    clean["pageview_url"] = clean["current_url"].where(clean["event"] == "pageview")
    clean["is_purchase"] = clean["event"] == "purchase"
    sessions = clean.groupby("session").agg(
        user_id=("user_id", "first"),
        session_start=("date", "min"),
        last_date=("date", "max"),
        events=("event_id", "size"),
        pages=("pageview_url", "nunique"),
        reached_purchase=("is_purchase", "any"),
    )
    sessions["session_end"] = sessions["last_date"] + SESSION_GAP_MS
    columns = ["user_id", "session_start", "session_end", "events", "pages", "reached_purchase"]
    return sessions[columns].sort_values(["user_id", "session_start"], ignore_index=True)


def status_per_minute(workload: Workload, alert_percent: float = 5) -> pd.DataFrame:
    """Per minute over all valid events: events, page loads (requests) and failed page loads
    (errors, status >= 400), and whether to alert (errors above ``alert_percent`` of requests)."""
    events = _with_minute_window(valid_events(workload))
    events["is_load"] = events["event"] == "pageview"
    events["is_error"] = events["is_load"] & (events["status"] >= 400)
    result = events.groupby(["window_start", "window_end"], as_index=False).agg(
        events=("event_id", "size"), requests=("is_load", "sum"), errors=("is_error", "sum")
    )
    result["alert"] = result["errors"] * 100 > result["requests"] * alert_percent
    return result.sort_values("window_start", ignore_index=True)


def closed(df: pd.DataFrame, watermark_ms: int, end_column: str = "window_end") -> pd.DataFrame:
    """The rows whose window Flink has fired once the watermark reached ``watermark_ms``."""
    # Flink fires a window when the watermark passes its last millisecond, end - 1.
    return df[df[end_column] <= watermark_ms + 1].reset_index(drop=True)


def _with_minute_window(events: pd.DataFrame) -> pd.DataFrame:
    events = events.copy()
    events["window_start"] = events["date"] // MINUTE_MS * MINUTE_MS
    events["window_end"] = events["window_start"] + MINUTE_MS
    return events


def _host(url: str | None) -> str:
    match = URL_HOST.match(url or "")
    host = match.group(1).lower() if match else ""
    return host[4:] if host.startswith("www.") else host


def _channel(referrer: str | None, current_url: str | None) -> str:
    if not referrer:
        return "direct"
    host = _host(referrer)
    if host and host == _host(current_url):
        return "internal"
    return next((source for source in CHANNEL_SOURCES if source in host), host or "unknown")


def daily_kpis(workload: Workload) -> pd.DataFrame:
    """Per UTC day of session start, sums over :func:`session_summary`'s sessions."""
    sessions = session_summary(workload)
    sessions["anonymous"] = sessions["user_id"].isna()
    sessions["bounce"] = sessions["pageviews"] <= 1
    sessions["duration_ms"] = sessions["session_end"] - sessions["session_start"]
    result = sessions.groupby("day", as_index=False).agg(
        sessions=("session_id", "size"),
        anonymous_sessions=("anonymous", "sum"),
        bounces=("bounce", "sum"),
        pageviews=("pageviews", "sum"),
        errors=("errors", "sum"),
        carts=("reached_cart", "sum"),
        purchases=("purchased", "sum"),
        duration_ms=("duration_ms", "sum"),
    )
    return result.sort_values("day", ignore_index=True)
