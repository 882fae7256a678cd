"""clicklib.charts: each builder's spec (Altair validates it in to_dict), the files of save(),
and offline rendering, proven in a headless Chromium with no network."""

import re
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import pytest
import vl_convert as vlc

from clicklib import analysis, charts
from clicklib.generate import generate
from tests import oracle
from tests.browser import CHROMIUM, chromium

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def workload():
    return generate(1_500, seed=5)


@pytest.fixture(scope="module")
def events(workload) -> pd.DataFrame:
    return oracle.clean_events(workload)


@pytest.fixture(scope="module")
def rates(workload) -> pd.DataFrame:
    return analysis.error_rate(oracle.status_per_minute(workload))


@pytest.fixture(scope="module")
def pageviews_per_minute(workload) -> pd.DataFrame:
    # As Cassandra returns the table (timestamps, not epoch milliseconds), bucketed for the chart.
    table = oracle.pageviews_per_minute(workload)
    return analysis.pageviews_over_time(table.assign(window_start=analysis.as_datetime(table["window_start"])))


@pytest.fixture
def default_renderer():
    yield
    alt.renderers.enable("default")


def units(spec: dict) -> list[dict]:
    """Every single-view spec inside ``spec`` (through layers and concatenations)."""
    if "mark" in spec:
        return [spec]
    return [
        unit for key in ("layer", "hconcat", "vconcat", "concat") for part in spec.get(key, []) for unit in units(part)
    ]


def mark(unit: dict) -> str:
    return unit["mark"] if isinstance(unit["mark"], str) else unit["mark"]["type"]


def fields(unit: dict) -> dict[str, str]:
    """Encoding channel -> field name."""
    return {channel: enc["field"] for channel, enc in unit.get("encoding", {}).items() if "field" in enc}


def rows(spec: dict) -> list[dict]:
    (data,) = spec["datasets"].values()
    return data


def bars_of(spec: dict) -> dict:
    (bars,) = [u for u in units(spec) if mark(u) == "bar"]
    return bars


CATEGORY_CHARTS = [
    ("views_per_page_type", "page_type", "views"),
    ("new_vs_returning", "visitor", "sessions"),
    ("cities", "city", "sessions"),
    ("languages", "language", "sessions"),
]


@pytest.mark.parametrize(("name", "category", "count"), CATEGORY_CHARTS)
def test_category_bars_labelled_with_shares(events, name, category, count):
    frame = getattr(analysis, name)(events)
    spec = getattr(charts, name)(frame).to_dict()
    assert sorted(mark(u) for u in units(spec)) == ["bar", "text"]
    assert fields(bars_of(spec)) == {"x": count, "y": category}
    (text,) = [u for u in units(spec) if mark(u) == "text"]
    assert text["encoding"]["text"] == {"field": "share", "format": ".0%", "type": "quantitative"}
    assert [r[category] for r in rows(spec)] == list(frame[category])


def test_traffic_over_time_lines(events):
    traffic = analysis.traffic_over_time(events)
    spec = charts.traffic_over_time(traffic).to_dict()
    (unit,) = units(spec)
    assert mark(unit) == "line"
    assert fields(unit) == {"x": "time", "y": "count", "color": "measure"}
    assert unit["encoding"]["x"]["scale"] == {"type": "utc"}
    assert {"fold": ["events", "users"], "as": ["measure", "count"]} in spec["transform"]
    data = rows(spec)
    assert len(data) == len(traffic)
    # Naive UTC times leave with their offset, so a browser in any time zone places them right.
    assert data[0]["time"] == traffic["time"].iloc[0].isoformat() + "+00:00"


def test_top_partners_and_pages(events):
    partners = analysis.top_partners(events, n=5)
    spec = charts.top_partners(partners).to_dict()
    assert fields(bars_of(spec)) == {"x": "pageviews", "y": "partner_name"}
    assert [r["partner_name"] for r in rows(spec)] == list(partners["partner_name"])
    pages = analysis.top_pages(events, n=7)
    spec = charts.top_pages(pages).to_dict()
    assert fields(bars_of(spec)) == {"x": "views", "y": "current_url", "color": "page_type"}
    assert len(rows(spec)) == 7


def test_funnel_bars_labelled_with_both_percentages(events):
    steps = analysis.funnel(events)
    spec = charts.funnel(steps).to_dict()
    bars = bars_of(spec)
    assert fields(bars) == {"x": "step", "y": "reached"}
    assert bars["encoding"]["x"]["sort"] == list(analysis.FUNNEL_STEPS)
    (text,) = [u for u in units(spec) if mark(u) == "text"]
    assert text["encoding"]["text"]["field"] == "label"
    assert [r["reached"] for r in rows(spec)] == list(steps["reached"])
    labels = [r["label"] for r in rows(spec)]
    assert labels[0] == "100% of sessions"
    last = steps.iloc[-1]
    assert labels[-1] == f"{last['of_sessions']:.0%} of sessions · {last['of_previous']:.0%} of previous"


def test_session_histograms_embed_bins_not_sessions(events):
    sessions = analysis.sessions(events)
    spec = charts.session_length(sessions, bin_s=30).to_dict()
    (unit,) = units(spec)
    assert mark(unit) == "bar"
    assert fields(unit) == {"x": "bin_start", "x2": "bin_end", "y": "count"}
    assert unit["encoding"]["x"]["bin"] == "binned"
    assert rows(spec) == analysis.histogram(sessions["duration_s"], 30).to_dict("records")
    depth = rows(charts.session_depth(sessions).to_dict())
    assert sum(r["count"] for r in depth) == len(sessions)


def test_error_rate_marks_alert_minutes(rates):
    assert rates["alert"].any()  # the generated error burst
    spec = charts.error_rate(rates).to_dict()
    assert sorted(mark(u) for u in units(spec)) == ["line", "point", "rule"]
    for unit in units(spec):
        assert ({"filter": "datum.alert"} in unit.get("transform", [])) == (mark(unit) != "line")
    assert len(rows(spec)) == len(rates)
    assert spec["title"].startswith("Error rate per minute")


def test_error_rate_draws_the_alert_threshold(rates):
    spec = charts.error_rate(rates, threshold=0.05).to_dict()
    (limit,) = [u for u in units(spec) if u.get("mark", {}).get("strokeDash")]
    assert limit["encoding"]["y"]["field"] == "threshold"
    assert [{"threshold": 0.05}] in spec["datasets"].values()


def test_thirty_days_of_minutes_chart_without_hitting_the_row_limit():
    # Altair refuses to embed more than 5,000 rows: 30 days of minutes are 43,200 per line.
    minutes = pd.date_range("2026-01-01", periods=30 * 1440, freq="1min")
    status = pd.DataFrame({"window_start": minutes, "requests": 100, "errors": 2, "alert": False})
    pageviews = pd.DataFrame({"window_start": minutes.repeat(7), "page_type": list("abcdefg") * len(minutes)})
    events = pd.DataFrame(
        {"date": minutes.astype("int64") // 1_000_000, "user_id": "u", "session_id": "s", "event": "pageview"}
    )
    rates = analysis.error_rate(status)
    for chart in (
        charts.error_rate(rates, threshold=0.05),
        charts.error_rate_brush(rates),
        charts.traffic_by_page_type(analysis.pageviews_over_time(pageviews.assign(views=1))),
        charts.traffic_over_time(analysis.traffic_over_time(events)),
    ):
        spec = chart.to_dict()  # raises MaxRowsError over the limit
        assert 0 < max(len(data) for data in spec["datasets"].values()) <= analysis.MAX_BUCKETS


def test_sink_progress_line_per_table():
    progress = pd.DataFrame(
        {
            "seconds": [0.0, 0.0, 2.0, 2.0],
            "table": ["events_by_day", "user_sessions"] * 2,
            "topic": ["clickstream_clean", "user_sessions"] * 2,
            "written": [0, 0, 40, 3],
            "behind": [40, 3, 0, 0],
        }
    )
    spec = charts.sink_progress(progress).to_dict()
    (unit,) = units(spec)
    assert mark(unit) == "line"
    assert fields(unit) == {"x": "seconds", "y": "written", "color": "table"}
    assert len(rows(spec)) == 4


def test_traffic_by_page_type_click_filters_the_lines(pageviews_per_minute):
    spec = charts.traffic_by_page_type(pageviews_per_minute).to_dict()
    bars, lines = spec["hconcat"]
    (param,) = spec["params"]
    assert param["select"] == {"type": "point", "fields": ["page_type"]}
    assert param["views"] == [bars["name"]]
    assert bars["encoding"]["color"]["condition"]["param"] == param["name"]
    assert mark(lines) == "line"
    assert lines["transform"] == [{"filter": {"param": param["name"]}}]
    assert len(rows(spec)) == len(pageviews_per_minute)


def test_error_rate_brush_filters_the_totals(rates):
    spec = charts.error_rate_brush(rates).to_dict()
    timeline, totals = spec["vconcat"]
    (param,) = spec["params"]
    assert param["select"] == {"type": "interval", "encodings": ["x"]}
    (brushed,) = [u for u in units(timeline) if u.get("name") in param["views"]]
    assert mark(brushed) == "line"
    assert totals["transform"][0] == {"filter": {"param": param["name"]}}
    assert fields(totals) == {"x": "count", "y": "kind", "color": "kind"}


def test_save_writes_png_and_standalone_html(tmp_path, events):
    chart = charts.funnel(analysis.funnel(events))
    png, html = charts.save(chart, tmp_path / "out" / "funnel.v1")
    assert (png.name, html.name) == ("funnel.v1.png", "funnel.v1.html")
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    page = html.read_text()
    assert "vegaEmbed" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert "https://cdn" not in page


def test_vega_lite_version_is_one_vl_convert_bundles():
    assert alt.VEGALITE_VERSION.startswith(f"{charts.VEGALITE_VERSION}.")
    assert charts.VEGALITE_VERSION in vlc.get_vegalite_versions()
    assert charts.VEGALITE_MIMETYPE == "application/vnd.vegalite.v5+json"


def test_offline_script_defines_vega_embed_without_network():
    script = charts.offline_script()
    assert script.startswith('<script type="module">')
    assert script.endswith("</script>")
    assert script.lower().count("</script") == 1
    assert "window.vegaEmbed=" in script
    assert not re.search(r"https?://[^\s\"']*\.js\b", script)


def test_enable_offline_switches_the_renderer(events, default_renderer):
    assert charts.enable_offline() is None
    assert alt.renderers.active == charts.RENDERER
    bundle, metadata = charts.funnel(analysis.funnel(events))._repr_mimebundle_()
    assert set(bundle) == {charts.VEGALITE_MIMETYPE, "text/html", "text/plain"}
    assert bundle[charts.VEGALITE_MIMETYPE]["$schema"].endswith(f"v{alt.VEGALITE_VERSION}.json")
    html = bundle["text/html"]
    assert len(html) < 5_000  # the spec and a few lines: the bundle is not repeated per chart
    assert "vegaEmbed" in html
    assert "<script src" not in html
    assert metadata == {}


def test_enable_offline_displays_the_bundle_once_in_ipython(monkeypatch, default_renderer):
    shown = []
    monkeypatch.setattr(charts, "get_ipython", lambda: object())
    monkeypatch.setattr(charts, "display", shown.append)
    charts.enable_offline()
    (html,) = shown
    assert html.data == charts.offline_script()


def test_renderer_passes_embed_options_and_escapes_script_ends():
    spec = alt.Chart(pd.DataFrame({"label": ["</script><b>x</b>"], "n": [1]})).mark_bar().encode(y="label", x="n")
    bundle, metadata = charts.render_mimebundle(spec.to_dict(), embed_options={"actions": False})
    html = bundle["text/html"]
    assert html.count("</script>") == 1
    assert '"actions":false' in html
    assert metadata == {charts.VEGALITE_MIMETYPE: {"embed_options": {"actions": False}}}


def test_charts_render_in_a_browser_without_network(tmp_path, events, pageviews_per_minute):
    """The bundle script and two renderer outputs, as an nbconvert HTML export lays them out,
    opened in headless Chromium: each chart div ends up holding Vega's rendered marks."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    outputs = [
        charts.render_mimebundle(chart.to_dict())[0]["text/html"]
        for chart in (charts.funnel(analysis.funnel(events)), charts.traffic_by_page_type(pageviews_per_minute))
    ]
    chart_ids = [re.search(r'<div id="([^"]+)"', html).group(1) for html in outputs]

    rendered = _dump_dom(tmp_path, "offline", charts.offline_script(), *outputs)
    for chart_id in chart_ids:
        assert re.search(r'<(svg|canvas)\b[^>]*class="marks"', _chart_div(rendered, chart_id)), chart_id
    # Without the bundle the same outputs stay empty: the marks above came from it.
    bare = _dump_dom(tmp_path, "bare", *outputs)
    for chart_id in chart_ids:
        assert 'class="marks"' not in _chart_div(bare, chart_id)


def _dump_dom(tmp_path: Path, name: str, *body: str) -> str:
    page = tmp_path / f"{name}.html"
    page.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'></head><body>\n" + "\n".join(body) + "\n</body></html>"
    )
    result = chromium(page, tmp_path / f"profile-{name}", "--dump-dom", budget_ms=10_000)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _chart_div(dom: str, chart_id: str) -> str:
    """The DOM from the chart's div to the next chart's div (or the end)."""
    start = dom.index(f'id="{chart_id}"')
    following = dom.find('id="clicklib-chart-', start + 1)
    return dom[start : following if following > 0 else len(dom)]


# --- the session_summary table ------------------------------------------------------------


@pytest.fixture(scope="module")
def summary(workload) -> pd.DataFrame:
    return oracle.session_summary(workload)


def summary_charts(summary: pd.DataFrame, events: pd.DataFrame) -> dict[str, alt.TopLevelMixin]:
    """Every builder over the session_summary table and the events, keyed by name."""
    sessions = analysis.summary_sessions(summary)
    return {
        "outcomes_by": charts.outcomes_by(analysis.outcomes_by(summary, "channel"), "channel"),
        "outcomes_by_segment": charts.outcomes_by(
            analysis.outcomes_by(analysis.with_segments(summary, events), "segment"), "segment"
        ),
        "landing_pages": charts.landing_pages(analysis.landing_pages(summary)),
        "exit_pages": charts.exit_pages(analysis.exit_pages(summary)),
        "time_on_page": charts.time_on_page(analysis.time_on_page(events)),
        "transitions": charts.transitions(analysis.transitions(events)),
        "errors_by_status_class": charts.errors_by_status_class(analysis.errors_by_status_class(events)),
        "error_exits": charts.error_exits(analysis.error_exits(summary)),
        "cohort_retention": charts.cohort_retention(analysis.cohort_retention(summary, events)),
        "session_length": charts.session_length(sessions, population=charts.EVERY_SESSION),
        "session_depth": charts.session_depth(sessions, population=charts.EVERY_SESSION),
    }


def title_of(spec: dict) -> str:
    title = spec.get("title") or next(u["title"] for u in units(spec) if "title" in u)
    return title if isinstance(title, str) else title["text"]


def test_summary_charts_are_valid_and_name_their_population(summary, events):
    for name, chart in summary_charts(summary, events).items():
        spec = chart.to_dict()  # validates against the Vega-Lite schema
        assert units(spec), name
        title = title_of(spec)
        assert any(p in title for p in ("every session", "signed-in users")), (name, title)


def test_outcome_panels_draw_counts_as_integers_and_rates_as_percentages(summary):
    outcomes = analysis.outcomes_by(summary, "device")
    spec = charts.outcomes_by(outcomes, "device").to_dict()
    sessions, bounce, conversion = spec["hconcat"]
    assert [fields(p)["x"] for p in (sessions, bounce, conversion)] == ["sessions", "bounce_rate", "conversion"]
    assert sessions["encoding"]["x"]["axis"] == {"format": ",d", "tickMinStep": 1}
    assert bounce["encoding"]["x"]["axis"]["format"] == conversion["encoding"]["x"]["axis"]["format"] == "%"
    assert [r["device"] for r in rows(spec)] == list(outcomes["device"])
    assert (
        title_of(spec) == "Sessions, bounce rate and conversion per device: every session, anonymous visitors included"
    )


def test_cohort_retention_grid(summary, events):
    retention = analysis.cohort_retention(summary, events)
    spec = charts.cohort_retention(retention).to_dict()
    assert sorted(mark(u) for u in units(spec)) == ["rect", "text"]
    (cells,) = [u for u in units(spec) if mark(u) == "rect"]
    assert fields(cells) == {"x": "week", "y": "cohort", "color": "retention"}
    assert cells["encoding"]["color"]["legend"]["format"] == "%"
    assert len(rows(spec)) == len(retention)


def test_session_length_ticks_on_bin_edges_and_depth_on_whole_numbers(summary):
    sessions = analysis.summary_sessions(summary)
    for bin_s in (60, 30, 7.5):
        (unit,) = units(charts.session_length(sessions, bin_s=bin_s).to_dict())
        ticks = unit["encoding"]["x"]["axis"]["values"]
        assert 2 <= len(ticks) <= charts.MAX_TICKS + 1
        assert all((tick / bin_s).is_integer() for tick in ticks)
    (unit,) = units(charts.session_depth(sessions).to_dict())
    assert unit["encoding"]["x"]["type"] == "ordinal"
    assert unit["encoding"]["y"]["axis"] == {"format": ",d", "tickMinStep": 1}
    depth = rows(charts.session_depth(sessions).to_dict())
    assert all(isinstance(r["depth"], int) for r in depth)
    assert sum(r["count"] for r in depth) == len(sessions)


def test_thirty_days_of_sessions_chart_without_hitting_the_row_limit():
    # 30 days of about 2,000 sessions a day and 3 pageviews each: far over Altair's 5,000 rows unaggregated.
    rng = np.random.default_rng(1)
    n = 60_000
    start = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 30 * 86_400, n), unit="s")
    pageviews = rng.integers(0, 12, n)
    users = np.where(rng.random(n) < 0.25, None, [f"u{i}" for i in rng.integers(0, 5_000, n)])
    summary = pd.DataFrame(
        {
            "session_start": start,
            "session_end": start + pd.to_timedelta(pageviews * 20, unit="s"),
            "session_id": [f"s{i}" for i in range(n)],
            "user_id": users,
            "channel": rng.choice(["direct", "google", "facebook"], n),
            "landing_page": rng.choice(["home", "category", "productDetail"], n),
            "exit_page": rng.choice(["home", "cart", "productDetail"], n),
            "exit_status": rng.choice([200, 200, 200, 404, 500], n),
            "events": pageviews + 1,
            "pageviews": pageviews,
            "duration_s": pageviews * 20.0,
            "errors": rng.integers(0, 2, n),
            "viewed_product": True,
            "reached_cart": rng.random(n) < 0.2,
            "reached_checkout": False,
            "purchased": rng.random(n) < 0.05,
        }
    )
    views = summary.loc[summary.index.repeat(summary["pageviews"])]
    events = pd.DataFrame(
        {
            "date": (views["session_start"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1),
            "session_id": views["session_id"].to_numpy(),
            "user_id": views["user_id"].to_numpy(),
            "event": "pageview",
            "page_type": rng.choice(["home", "category", "search", "productDetail", "cart"], len(views)),
            "status": rng.choice([200, 200, 301, 404, 503], len(views)),
            "segment": "casual",
            "signup_date": 1_760_000_000_000 + rng.integers(0, 100 * 86_400_000, len(views)),
        }
    ).reset_index(drop=True)
    events["date"] += events.groupby("session_id").cumcount() * 20_000
    assert len(summary) > 10 * 5_000 and len(events) > 50 * 5_000
    for name, chart in summary_charts(summary, events).items():
        spec = chart.to_dict()  # raises MaxRowsError over the limit
        assert 0 < max(len(data) for data in spec["datasets"].values()) <= 200, name


def test_the_batch_charts_embed_their_rows_and_encode_their_fields():
    cohorts = pd.DataFrame(
        {
            "cohort": ["2026-01-01", "2026-01-01", "2026-01-02"],
            "day_number": [0, 1, 0],
            "cohort_users": [10, 10, 4],
            "users": [10, 3, 4],
            "share": [1.0, 0.3, 1.0],
        }
    )
    spec = charts.daily_retention(cohorts).to_dict()
    assert sorted(mark(u) for u in units(spec)) == ["rect", "text"]
    (cells,) = [u for u in units(spec) if mark(u) == "rect"]
    assert fields(cells) == {"x": "day_number", "y": "cohort", "color": "share"}
    assert len(rows(spec)) == len(cohorts)
    per_day = pd.DataFrame(
        {
            "day": ["2026-01-01", "2026-01-02"],
            "sessions": [12, 7],
            "users": [9, 5],
            "purchase_sessions": [2, 1],
            "mean_duration_s": [300.0, 120.0],
        }
    )
    spec = charts.sessions_per_day(per_day).to_dict()
    assert fields(spec) == {"x": "day", "y": "sessions"}
    assert [r["sessions"] for r in rows(spec)] == [12, 7]
