"""The analysis charts at scale: 30 days of per-minute aggregates, written straight into the
tables of a namespace of their own, are read by partition and drawn as notebook 6 draws them,
rendered to PNG without Altair's row limit getting in the way."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cassandra.concurrent import execute_concurrent_with_args

from clicklib import analysis, charts
from clicklib.pipeline import Pipeline

DAYS = 30
PAGE_TYPES = ("home", "productDetail", "cart")


@pytest.fixture(scope="module")
def pipeline(live_stack):
    settings = dataclasses.replace(live_stack, namespace=f"c{uuid.uuid4().hex[:8]}_")
    with Pipeline(settings) as pipeline:
        pipeline.cassandra.apply_schema(pipeline.definition.schema)
        yield pipeline
        pipeline.cassandra.drop_keyspace()


@pytest.fixture(scope="module")
def written(pipeline) -> int:
    """Every minute of the last 30 UTC days: page loads, failures (an alert every 97th minute),
    and page views of three page types. Returns the minutes written."""
    session, keyspace = pipeline.cassandra.session, pipeline.settings.keyspace
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS - 1)
    minutes = [first_day + timedelta(minutes=m) for m in range(DAYS * 1440)]
    status = session.prepare(
        f"INSERT INTO {keyspace}.status_per_minute (day, window_start, window_end, events, requests, errors, alert) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    rows = [
        (m.date(), m, m + timedelta(minutes=1), 90, 50, 10 if i % 97 == 0 else 1, i % 97 == 0)
        for i, m in enumerate(minutes)
    ]
    assert all(ok for ok, _ in execute_concurrent_with_args(session, status, rows, concurrency=200))
    views = session.prepare(
        f"INSERT INTO {keyspace}.pageviews_per_minute (day, window_start, page_type, window_end, views, users) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    rows = [(m.date(), m, page, m + timedelta(minutes=1), 7, 3) for m in minutes for page in PAGE_TYPES]
    assert all(ok for ok, _ in execute_concurrent_with_args(session, views, rows, concurrency=200))
    return len(minutes)


@pytest.mark.full
def test_thirty_days_of_minutes_chart_and_render_within_the_row_limit(pipeline, written, tmp_path):
    period = analysis.recent_days(DAYS)
    pageviews = pipeline.cassandra.partitions_df("pageviews_per_minute", "day", period)
    status = pipeline.cassandra.partitions_df("status_per_minute", "day", period)
    assert len(status) == written and len(pageviews) == written * len(PAGE_TYPES)

    traffic = analysis.pageviews_over_time(pageviews)
    rates = analysis.error_rate(status)
    # Thirty days do not chart per minute: the buckets grow until at most MAX_BUCKETS remain.
    assert rates["bucket"].iloc[0] != "1min" and len(rates) <= analysis.MAX_BUCKETS
    assert int(rates["requests"].sum()) == 50 * written
    assert int(rates["alerts"].sum()) == len(range(0, written, 97))
    figures = {
        "traffic_by_page_type": charts.traffic_by_page_type(traffic),
        "error_rate": charts.error_rate(rates, threshold=pipeline.settings.alert_percent / 100),
        "error_rate_brush": charts.error_rate_brush(rates),
    }
    for name, chart in figures.items():
        png, html = charts.save(chart, tmp_path / name)  # raises MaxRowsError over the limit
        assert png.stat().st_size > 5_000 and html.stat().st_size > 1_000, name
