"""clicklib.charts: each builder's spec (Altair validates it in to_dict), the files of save(),
and offline rendering, proven in a headless Chromium with no network."""

import re
from pathlib import Path

import altair as alt
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
    ("devices", "device", "sessions"),
    ("referrer_sources", "source", "sessions"),
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


def test_row_counts_line_per_table():
    counts = pd.DataFrame(
        {"seconds": [0.0, 0.0, 2.0, 2.0], "table": ["events_by_day", "user_sessions"] * 2, "rows": [0, 0, 40, 3]}
    )
    spec = charts.row_counts(counts).to_dict()
    (unit,) = units(spec)
    assert mark(unit) == "line"
    assert fields(unit) == {"x": "seconds", "y": "rows", "color": "table"}
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
