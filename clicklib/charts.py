"""Altair charts for the analysis notebook, one builder per question, and offline rendering.

Every builder takes the frame that the function of the same name in
:mod:`clicklib.analysis` returns (``traffic_by_page_type`` takes the
``pageviews_per_minute`` table, ``error_rate_brush`` the frame of
:func:`clicklib.analysis.error_rate`, ``sink_progress`` the frame of
:func:`clicklib.monitor.sink_progress`). Bar charts keep the frame's row order, which
analysis already sorts most first.

Offline rendering: Altair's default HTML output loads Vega from a CDN, which a machine
without internet cannot reach. :func:`enable_offline` shows the Vega bundle that
vl-convert ships once, as a module script, and switches Altair to a renderer whose
``text/html`` only waits for that bundle and embeds the chart: nbconvert's HTML export
of an executed notebook shows live charts. Each output also carries the Vega-Lite 5
mimetype for frontends that prefer it. JupyterLab ranks ``text/html`` first, so it too
runs the scripts, which it does for trusted notebooks only: an untrusted one (executed
elsewhere, e.g. by papermill) shows empty charts until it is trusted or re-run.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from string import Template
from typing import Any

import altair as alt
import pandas as pd
import vl_convert as vlc
from IPython import get_ipython
from IPython.display import HTML, display

from clicklib import analysis

RENDERER = "clicklib"
# vl-convert bundles several Vega-Lite versions; use the one this Altair writes specs for.
VEGALITE_VERSION = ".".join(alt.VEGALITE_VERSION.split(".")[:2])
VEGALITE_MIMETYPE = f"application/vnd.vegalite.v{alt.VEGALITE_VERSION.split('.')[0]}+json"

WIDTH = 560
HEIGHT = 240
BAR_STEP = 22
ALERT_COLOR = "#d62728"
NEUTRAL_COLOR = "#4c78a8"
UTC_TIME_FORMAT = "%Y-%m-%d %H:%M"
# An axis of bins labels at most this many ticks, each on a bin edge.
MAX_TICKS = 12
# The populations charts name in their titles.
EVERY_SESSION = "every session, anonymous visitors included"
SIGNED_IN_SESSIONS = "signed-in users' sessions"

# Waits for window.vegaEmbed, which the bundle's module script defines after the page is parsed.
_EMBED_HTML = Template(
    """<div id="$id" class="clicklib-chart"></div>
<script>
(function () {
  var spec = $spec, options = $options, tries = 0;
  function embed() {
    var el = document.getElementById("$id");
    if (el && window.vegaEmbed) {
      window.vegaEmbed(el, spec, options).catch(function (err) { el.textContent = "chart error: " + err; });
    } else if (++tries < 200) {
      setTimeout(embed, 50);
    } else if (el) {
      el.textContent = "Vega is not loaded: run clicklib.charts.enable_offline() earlier in this notebook.";
    }
  }
  embed();
})();
</script>"""
)


# --- the analysis questions ---------------------------------------------------------------


def traffic_over_time(traffic: pd.DataFrame) -> alt.Chart:
    """Events and distinct users per time bucket (``analysis.traffic_over_time``), as two lines."""
    per = _bucket_words(traffic)
    data = pd.DataFrame({"time": _utc(traffic["time"]), "events": traffic["events"], "users": traffic["users"]})
    return (
        alt.Chart(data, title=f"Traffic over time: signed-in users' events and users per {per}")
        .transform_fold(["events", "users"], as_=["measure", "count"])
        .mark_line()
        .encode(
            x=_time_x("time", "time (UTC)"),
            y=alt.Y("count:Q", title=f"per {per}"),
            color=alt.Color("measure:N", title=None),
            tooltip=[_time_tooltip("time"), "measure:N", "count:Q"],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def views_per_page_type(views: pd.DataFrame) -> alt.LayerChart:
    return _share_bars(views, "page_type", "views", "Pageviews per page type")


def top_partners(partners: pd.DataFrame) -> alt.LayerChart:
    """Pageviews per partner shop, labelled with its purchases."""
    base = alt.Chart(partners, title="Top partners by pageviews").encode(
        y=alt.Y("partner_name:N", sort=None, title=None),
        x=alt.X("pageviews:Q", title="pageviews"),
        tooltip=["partner_name:N", "partner_id:N", "pageviews:Q", "purchases:Q", "sessions:Q"],
    )
    bars = base.mark_bar(color=NEUTRAL_COLOR)
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("label:N"))
    labels = labels.transform_calculate(label="datum.purchases + ' purchases'")
    return alt.layer(bars, labels).properties(width=WIDTH, height=alt.Step(BAR_STEP))


def top_pages(pages: pd.DataFrame) -> alt.Chart:
    """Pageviews per URL, coloured by page type."""
    return (
        alt.Chart(pages, title="Top pages by pageviews")
        .mark_bar()
        .encode(
            y=alt.Y("current_url:N", sort=None, title=None, axis=alt.Axis(labelLimit=360)),
            x=alt.X("views:Q", title="pageviews"),
            color=alt.Color("page_type:N", title="page type"),
            tooltip=["current_url:N", "page_type:N", "views:Q", "sessions:Q"],
        )
        .properties(width=WIDTH - 200, height=alt.Step(BAR_STEP))
    )


def funnel(steps: pd.DataFrame, population: str = "sessions") -> alt.LayerChart:
    """Sessions reaching each funnel step, labelled with the share of all sessions and of the step before."""
    data = steps.assign(
        label=[
            f"{of_sessions:.0%} of sessions" + ("" if i == 0 else f" · {of_previous:.0%} of previous")
            for i, (of_sessions, of_previous) in enumerate(zip(steps["of_sessions"], steps["of_previous"], strict=True))
        ]
    )
    base = alt.Chart(data, title=f"Funnel: {population} reaching each step").encode(
        x=alt.X("step:N", sort=list(analysis.FUNNEL_STEPS), title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("reached:Q", title="sessions"),
        tooltip=[
            "step:N",
            "reached:Q",
            alt.Tooltip("did:Q", title="did this step"),
            alt.Tooltip("of_sessions:Q", format=".1%", title="of all sessions"),
            alt.Tooltip("of_previous:Q", format=".1%", title="of the previous step"),
        ],
    )
    bars = base.mark_bar(color=NEUTRAL_COLOR)
    labels = base.mark_text(baseline="bottom", dy=-3).encode(text="label:N")
    return alt.layer(bars, labels).properties(width=WIDTH, height=HEIGHT)


def session_length(per_session: pd.DataFrame, bin_s: float = 60, population: str = SIGNED_IN_SESSIONS) -> alt.Chart:
    """Histogram of session durations (first to last event) in ``bin_s`` second bins, the axis
    ticked on bin edges (:func:`clicklib.analysis.sessions` or ``summary_sessions``)."""
    bins = analysis.histogram(per_session["duration_s"], bin_s)
    return _histogram(bins, f"Session length: {population}", "session length (s)", bin_s)


def session_depth(per_session: pd.DataFrame, population: str = SIGNED_IN_SESSIONS) -> alt.Chart:
    """Sessions per number of pageviews, one bar per whole number (the ``depth`` column of
    :func:`clicklib.analysis.sessions` or ``summary_sessions``)."""
    bins = analysis.histogram(per_session["depth"], 1)
    data = pd.DataFrame({"depth": bins["bin_start"].astype("int64"), "count": bins["count"]})
    return (
        alt.Chart(data, title=f"Session depth: {population}")
        .mark_bar(color=NEUTRAL_COLOR)
        .encode(
            x=alt.X("depth:O", title="pageviews per session", axis=alt.Axis(labelAngle=0)),
            y=_count_y("count", "sessions"),
            tooltip=[alt.Tooltip("depth:O", title="pageviews"), alt.Tooltip("count:Q", title="sessions")],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def new_vs_returning(visitors: pd.DataFrame) -> alt.LayerChart:
    title = f"New (signed up under {analysis.NEW_USER_DAYS} days before) vs returning: signed-in users' sessions"
    return _share_bars(visitors, "visitor", "sessions", title)


def cities(per_city: pd.DataFrame) -> alt.LayerChart:
    return _share_bars(per_city, "city", "sessions", "Sessions per city", extra_tooltip=["country:N"])


def languages(per_language: pd.DataFrame) -> alt.LayerChart:
    return _share_bars(per_language, "language", "sessions", "Sessions per language")


def error_rate(rates: pd.DataFrame, threshold: float | None = None) -> alt.LayerChart:
    """Error rate per time bucket (``analysis.error_rate``), all visitors; buckets with a minute the
    pipeline raised an alert for are marked in red, and the alert ``threshold`` (a fraction) is
    drawn as a dashed line."""
    per = _bucket_words(rates)
    base = alt.Chart(_error_rate_data(rates)).encode(x=_time_x("window_start", "time (UTC)"))
    tooltip = [
        _time_tooltip("window_start"),
        "requests:Q",
        "errors:Q",
        alt.Tooltip("error_rate:Q", format=".1%"),
        alt.Tooltip("alerts:Q", title="minutes alerted"),
    ]
    line = base.mark_line(color=NEUTRAL_COLOR).encode(y=_error_rate_y(), tooltip=tooltip)
    alerts = base.transform_filter("datum.alert")
    rules = alerts.mark_rule(color=ALERT_COLOR, opacity=0.35)
    points = alerts.mark_point(color=ALERT_COLOR, filled=True, size=60).encode(y=_error_rate_y(), tooltip=tooltip)
    layers = [rules, line, points]
    if threshold is not None:
        limit = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(color=ALERT_COLOR, strokeDash=[4, 4])
        layers.append(limit.encode(y="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", format=".1%")]))
    title = f"Error rate per {per}, every visitor (alerts in red" + (", threshold dashed)" if threshold else ")")
    return alt.layer(*layers, title=title).properties(width=WIDTH, height=HEIGHT)


def sink_progress(progress: pd.DataFrame) -> alt.Chart:
    """Offsets each sink connector has written to its Cassandra table while the pipeline runs,
    from :func:`clicklib.monitor.sink_progress`."""
    return (
        alt.Chart(progress, title="Records written per table (Kafka offsets of each sink connector)")
        .mark_line(point=True)
        .encode(
            x=alt.X("seconds:Q", title="seconds since the first reading"),
            y=alt.Y("written:Q", title="offsets written", axis=alt.Axis(format=",d")),
            color=alt.Color("table:N", title="table"),
            tooltip=[
                "table:N",
                "seconds:Q",
                alt.Tooltip("written:Q", format=",d"),
                alt.Tooltip("behind:Q", format=",d"),
            ],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


# --- the session_summary table ------------------------------------------------------------


def outcomes_by(outcomes: pd.DataFrame, column: str, population: str = EVERY_SESSION) -> alt.HConcatChart:
    """Sessions, bounce rate and conversion per value of ``column`` (``analysis.outcomes_by``), side by side."""
    kind = column.replace("_", " ")
    return _panels(
        outcomes,
        column,
        [("sessions", "sessions"), ("bounce_rate", "bounce rate"), ("conversion", "conversion")],
        f"Sessions, bounce rate and conversion per {kind}: {population}",
    )


def landing_pages(landing: pd.DataFrame, population: str = EVERY_SESSION) -> alt.HConcatChart:
    """Sessions and bounce rate per landing page (``analysis.landing_pages``)."""
    return _panels(
        landing,
        "landing_page",
        [("sessions", "sessions"), ("bounce_rate", "bounce rate")],
        f"Landing pages (where sessions began): {population}",
    )


def exit_pages(exits: pd.DataFrame, population: str = EVERY_SESSION) -> alt.HConcatChart:
    """Sessions per exit page and the share of those exits whose last page load failed (``analysis.exit_pages``)."""
    return _panels(
        exits,
        "exit_page",
        [("sessions", "sessions"), ("failed_share", "last page load failed")],
        f"Exit pages (the last page viewed): {population}",
    )


def time_on_page(stays: pd.DataFrame, population: str = "signed-in users' pageviews") -> alt.LayerChart:
    """Median seconds to the next pageview per page type (bars), the mean as a tick (``analysis.time_on_page``)."""
    base = alt.Chart(stays, title=f"Time on page until the next pageview: {population} (a session's last excluded)")
    base = base.encode(
        y=alt.Y("page_type:N", sort=None, title=None),
        tooltip=[
            "page_type:N",
            alt.Tooltip("views:Q", title="measured views", format=",d"),
            alt.Tooltip("median_s:Q", title="median (s)", format=".1f"),
            alt.Tooltip("mean_s:Q", title="mean (s)", format=".1f"),
        ],
    )
    bars = base.mark_bar(color=NEUTRAL_COLOR).encode(x=alt.X("median_s:Q", title="seconds (bar: median, tick: mean)"))
    means = base.mark_tick(color=ALERT_COLOR, thickness=2).encode(x="mean_s:Q")
    return alt.layer(bars, means).properties(width=WIDTH - 160, height=alt.Step(BAR_STEP))


def transitions(steps: pd.DataFrame, population: str = "signed-in users' pageviews") -> alt.LayerChart:
    """The most frequent steps between pageviews (``analysis.transitions``), labelled with their
    share of the from-page's views."""
    data = steps.assign(step=steps["from_page"] + " → " + steps["to_page"])
    base = alt.Chart(data, title=f"Most frequent steps from page to page: {population}").encode(
        y=alt.Y("step:N", sort=None, title=None),
        x=_count_x("count", "times"),
        tooltip=[
            "from_page:N",
            "to_page:N",
            alt.Tooltip("count:Q", format=",d"),
            alt.Tooltip("share:Q", format=".1%", title="of the from-page's views"),
        ],
    )
    bars = base.mark_bar(color=NEUTRAL_COLOR)
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("share:Q", format=".0%"))
    return alt.layer(bars, labels).properties(width=WIDTH - 160, height=alt.Step(BAR_STEP))


def errors_by_status_class(classes: pd.DataFrame, population: str = "signed-in users' page loads") -> alt.LayerChart:
    return _share_bars(classes, "status_class", "loads", f"Page loads per status class: {population}")


def error_exits(groups: pd.DataFrame, population: str = EVERY_SESSION) -> alt.HConcatChart:
    """Sessions with a failed page load against the others (``analysis.error_exits``)."""
    return _panels(
        groups,
        "page_loads",
        [
            ("sessions", "sessions"),
            ("bounce_rate", "bounce rate"),
            ("conversion", "conversion"),
            ("failed_exit_share", "ended on a failed load"),
        ],
        f"Sessions whose page loads all succeeded or some failed: {population}",
    )


def cohort_retention(retention: pd.DataFrame) -> alt.LayerChart:
    """Weekly retention per signup-week cohort (``analysis.cohort_retention``) as a grid of shares."""
    data = retention.assign(cohort=analysis.as_datetime(retention["cohort"]).dt.strftime("%Y-%m-%d"))
    base = alt.Chart(
        data,
        title=alt.TitleParams(
            "Weekly retention by signup week: signed-in users seen in the period",
            subtitle="share of each cohort's users seen that had a session in that calendar week since signup",
        ),
    ).encode(
        x=alt.X("week:O", title="weeks since the signup week", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("cohort:O", title="signup week (Monday, UTC)"),
        tooltip=[
            "cohort:O",
            "week:O",
            alt.Tooltip("users:Q", title="users seen", format=",d"),
            alt.Tooltip("active:Q", format=",d"),
            alt.Tooltip("retention:Q", format=".1%"),
        ],
    )
    return _share_grid(base, "retention")


def sessions_per_day(
    per_day: pd.DataFrame, title: str = "Signed-in users' sessions per day (from the lake)"
) -> alt.Chart:
    """Sessions per day (``batch.sessions_per_day``), with their users and buyers in the tooltip."""
    return (
        alt.Chart(per_day, title=title)
        .mark_bar(color=NEUTRAL_COLOR)
        .encode(
            x=alt.X("day:O", title="day (UTC)", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("sessions:Q", title="sessions"),
            tooltip=[
                "day:O",
                alt.Tooltip("sessions:Q", format=",d"),
                alt.Tooltip("users:Q", format=",d"),
                alt.Tooltip("purchase_sessions:Q", format=",d", title="sessions with an order"),
                alt.Tooltip("mean_duration_s:Q", format=",.0f", title="mean duration (s)"),
            ],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def daily_retention(cohorts: pd.DataFrame) -> alt.LayerChart:
    """Daily retention cohorts (``batch.retention``) as a grid of shares: a row per first day."""
    base = alt.Chart(
        cohorts,
        title=alt.TitleParams(
            "Daily retention: users by the day of their first event in the lake",
            subtitle="share of each cohort with an event on each later day",
        ),
    ).encode(
        x=alt.X("day_number:O", title="days since the first day", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("cohort:O", title="first day (UTC)"),
        tooltip=[
            "cohort:O",
            "day_number:O",
            alt.Tooltip("cohort_users:Q", title="users in the cohort", format=",d"),
            alt.Tooltip("users:Q", title="users that day", format=",d"),
            alt.Tooltip("share:Q", format=".1%"),
        ],
    )
    return _share_grid(base, "share")


def _share_grid(base: alt.Chart, share: str) -> alt.LayerChart:
    """Cells coloured by a share in [0, 1], each labelled with it as a percentage."""
    cells = base.mark_rect().encode(
        color=alt.Color(f"{share}:Q", title=share, scale=alt.Scale(domain=[0, 1]), legend=alt.Legend(format="%"))
    )
    # Dark cells (high shares) need light text.
    labels = base.mark_text(baseline="middle").encode(
        text=alt.Text(f"{share}:Q", format=".0%"),
        color=alt.condition(f"datum.{share} > 0.5", alt.value("white"), alt.value("black")),
    )
    return alt.layer(cells, labels).properties(width=WIDTH, height=alt.Step(BAR_STEP))


# --- interactive ---------------------------------------------------------------------------


def traffic_by_page_type(views: pd.DataFrame) -> alt.HConcatChart:
    """Pageviews per page type as bars; clicking a bar filters the pageviews-over-time lines
    (``analysis.pageviews_over_time``) to that page type (shift-click adds more, a click on empty
    space shows all)."""
    per = _bucket_words(views)
    data = pd.DataFrame(
        {"window_start": _utc(views["window_start"]), "page_type": views["page_type"], "views": views["views"]}
    )
    pick = alt.selection_point(fields=["page_type"], name="picked_page_type")
    base = alt.Chart(data)
    bars = (
        base.mark_bar()
        .encode(
            y=alt.Y("page_type:N", sort="-x", title=None),
            x=alt.X("sum(views):Q", title="pageviews"),
            color=alt.condition(pick, alt.Color("page_type:N", legend=None), alt.value("lightgray")),
            tooltip=["page_type:N", alt.Tooltip("sum(views):Q", title="pageviews")],
        )
        .add_params(pick)
        .properties(title="Pageviews per page type (click to filter)", width=220, height=alt.Step(BAR_STEP))
    )
    lines = (
        base.mark_line()
        .encode(
            x=_time_x("window_start", "time (UTC)"),
            y=alt.Y("sum(views):Q", title=f"pageviews per {per}"),
            color=alt.Color("page_type:N", title="page type"),
            tooltip=[_time_tooltip("window_start"), "page_type:N", alt.Tooltip("sum(views):Q", title="pageviews")],
        )
        .transform_filter(pick)
        .properties(title=f"Pageviews per {per}, signed-in users", width=WIDTH, height=HEIGHT)
    )
    return alt.hconcat(bars, lines)


def error_rate_brush(rates: pd.DataFrame) -> alt.VConcatChart:
    """Error rate per time bucket with a brush: dragging over buckets totals their requests and errors below."""
    brush = alt.selection_interval(encodings=["x"], name="selected_minutes")
    base = alt.Chart(_error_rate_data(rates))
    line = base.mark_line(color=NEUTRAL_COLOR).encode(x=_time_x("window_start", "time (UTC)"), y=_error_rate_y())
    alerts = line.transform_filter("datum.alert").mark_point(color=ALERT_COLOR, filled=True, size=60)
    timeline = alt.layer(line.add_params(brush), alerts).properties(
        title=f"Error rate per {_bucket_words(rates)}, alerts in red (drag to select)", width=WIDTH, height=HEIGHT
    )
    totals = (
        base.transform_filter(brush)
        .transform_fold(["requests", "errors"], as_=["kind", "count"])
        .mark_bar()
        .encode(
            y=alt.Y("kind:N", sort=["requests", "errors"], title=None),
            x=alt.X("sum(count):Q", title="in the selected minutes"),
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=["requests", "errors"], range=[NEUTRAL_COLOR, ALERT_COLOR]),
                legend=None,
            ),
            tooltip=["kind:N", alt.Tooltip("sum(count):Q", title="total")],
        )
        .properties(title="Requests and errors in the selection", width=WIDTH, height=alt.Step(BAR_STEP))
    )
    return alt.vconcat(timeline, totals)


# --- offline rendering and files -----------------------------------------------------------


def offline_script() -> str:
    """A module script that defines ``window.vegaEmbed`` (with Vega and Vega-Lite), no network needed."""
    return f'<script type="module">\n{vlc.javascript_bundle(vl_version=VEGALITE_VERSION)}\n</script>'


def render_mimebundle(
    spec: dict[str, Any], embed_options: dict[str, Any] | None = None, **_options: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Altair renderer: the Vega-Lite mimetype and a small ``text/html`` that embeds
    the chart once the bundle of :func:`offline_script` has loaded (HTML exports, classic notebook)."""
    options = {"mode": "vega-lite", **(embed_options or {})}
    chart_id = f"clicklib-chart-{uuid.uuid4().hex}"
    html = _EMBED_HTML.substitute(id=chart_id, spec=_script_json(spec), options=_script_json(options))
    bundle = {VEGALITE_MIMETYPE: spec, "text/html": html, "text/plain": f"<VegaLite {VEGALITE_VERSION} chart>"}
    metadata = {VEGALITE_MIMETYPE: {"embed_options": embed_options}} if embed_options else {}
    return bundle, metadata


def enable_offline() -> None:
    """Render charts without network: use the "clicklib" renderer and, in IPython, display the
    Vega bundle (about 0.9 MB) once. Call it at the top of a notebook, before any chart."""
    alt.renderers.register(RENDERER, render_mimebundle)
    alt.renderers.enable(RENDERER)
    if get_ipython() is not None:
        display(HTML(offline_script()))


def save(chart: alt.TopLevelMixin, path: str | Path) -> tuple[Path, Path]:
    """Write ``<path>.png`` (twice the chart's size) and a standalone ``<path>.html`` with Vega
    inlined; returns both paths. ``path`` has no suffix: one is added for each file."""
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    png = base.with_name(f"{base.name}.png")
    html = base.with_name(f"{base.name}.html")
    chart.save(png, scale_factor=2)
    chart.save(html, inline=True)
    return png, html


# --- helpers -------------------------------------------------------------------------------


def _share_bars(
    frame: pd.DataFrame, category: str, count: str, title: str, extra_tooltip: list[str] | None = None
) -> alt.LayerChart:
    """Horizontal bars of ``count`` per ``category`` in the frame's order, labelled with their share."""
    base = alt.Chart(frame, title=title).encode(
        y=alt.Y(f"{category}:N", sort=None, title=None),
        x=_count_x(count, count),
        tooltip=[f"{category}:N", *(extra_tooltip or []), f"{count}:Q", alt.Tooltip("share:Q", format=".1%")],
    )
    bars = base.mark_bar(color=NEUTRAL_COLOR)
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("share:Q", format=".0%"))
    return alt.layer(bars, labels).properties(width=WIDTH - 160, height=alt.Step(BAR_STEP))


def _histogram(bins: pd.DataFrame, title: str, x_title: str, bin_width: float) -> alt.Chart:
    """Bars from bin_start to bin_end, the axis ticked on bin edges (every bin's edge, or every
    k-th one so that at most :data:`MAX_TICKS` are labelled)."""
    edges = []
    if len(bins):
        every = math.ceil(len(bins) / MAX_TICKS)
        first, last = bins["bin_start"].iloc[0], bins["bin_end"].iloc[-1]
        edges = [float(first + i * bin_width) for i in range(0, len(bins) + 1, every)]
        edges = [edge for edge in edges if edge <= last]
    return (
        alt.Chart(bins, title=title)
        .mark_bar(color=NEUTRAL_COLOR)
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title=x_title, axis=alt.Axis(values=edges)),
            x2="bin_end:Q",
            y=_count_y("count", "sessions"),
            tooltip=["bin_start:Q", "bin_end:Q", alt.Tooltip("count:Q", title="sessions")],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def _panels(frame: pd.DataFrame, category: str, measures: list[tuple[str, str]], title: str) -> alt.HConcatChart:
    """One bar panel per (column, title) of ``measures`` against ``category``, in the frame's
    order: "sessions" as whole numbers, any other column as a percentage."""
    tooltip = [f"{category}:N"] + [
        alt.Tooltip(f"{field}:Q", title=name, format=",d" if field == "sessions" else ".1%") for field, name in measures
    ]
    base = alt.Chart(frame).encode(y=alt.Y(f"{category}:N", sort=None, title=None), tooltip=tooltip)
    panels = []
    for i, (field, name) in enumerate(measures):
        x = _count_x(field, name) if field == "sessions" else alt.X(f"{field}:Q", title=name, axis=alt.Axis(format="%"))
        panel = base.mark_bar(color=NEUTRAL_COLOR).encode(x=x)
        if i:
            # The categories are named once, on the first panel.
            panel = panel.encode(y=alt.Y(f"{category}:N", sort=None, title=None, axis=None))
        panels.append(panel.properties(width=(WIDTH - 160) // len(measures), height=alt.Step(BAR_STEP)))
    return alt.hconcat(*panels, title=title)


def _count_x(field: str, title: str) -> alt.X:
    return alt.X(f"{field}:Q", title=title, axis=alt.Axis(format=",d", tickMinStep=1))


def _count_y(field: str, title: str) -> alt.Y:
    return alt.Y(f"{field}:Q", title=title, axis=alt.Axis(format=",d", tickMinStep=1))


def _bucket_words(frame: pd.DataFrame) -> str:
    """The time bucket of an analysis frame in words ("minute", "6 hours")."""
    bucket = frame["bucket"].iloc[0] if "bucket" in frame and len(frame) else analysis.TIME_BUCKETS[0]
    return analysis.BUCKET_WORDS.get(bucket, bucket)


def _error_rate_data(rates: pd.DataFrame) -> pd.DataFrame:
    columns = ["requests", "errors", "error_rate", "alerts", "alert"]
    return rates[columns].assign(window_start=_utc(rates["window_start"]))


def _error_rate_y() -> alt.Y:
    return alt.Y("error_rate:Q", title="error rate", axis=alt.Axis(format="%"))


def _utc(times: pd.Series) -> pd.Series:
    # Altair writes naive datetimes without an offset, and browsers read those as local time.
    return analysis.as_datetime(times).dt.tz_localize("UTC")


def _time_x(field: str, title: str) -> alt.X:
    # Vega's default labels use a 12-hour clock without AM/PM; seconds show only on ticks
    # between minutes, which "%H:%M" alone would label twice.
    label = "utcFormat(datum.value, utcseconds(datum.value) ? '%H:%M:%S' : '%H:%M')"
    return alt.X(f"{field}:T", title=title, scale=alt.Scale(type="utc"), axis=alt.Axis(labelExpr=label))


def _time_tooltip(field: str) -> alt.Tooltip:
    return alt.Tooltip(f"{field}:T", title=f"{field} (UTC)", format=UTC_TIME_FORMAT, formatType="utc")


def _script_json(value: Any) -> str:
    # "</" would end the surrounding <script> element early.
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")
