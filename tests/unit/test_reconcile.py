"""The reconciliation of a period's tables: counts worked out by hand on small frames."""

from __future__ import annotations

import pandas as pd

from clicklib import reconcile


def frames(**changes):
    events = pd.DataFrame(
        {
            "session_id": ["s1", "s1", "s2"],
            "event": ["pageview", "click", "pageview"],
        }
    )
    sessions = pd.DataFrame(
        {
            "session_id": ["s1", "s2", "s3"],
            "user_id": ["u1", "u2", None],
            "purchased": [True, False, False],
            "pageviews": [1, 1, 2],
            "errors": [0, 1, 0],
        }
    )
    daily = pd.DataFrame({"day": ["2026-11-30"], "sessions": [3], "purchases": [1]})
    status = pd.DataFrame({"requests": [3, 1], "errors": [1, 0]})
    pageviews = pd.DataFrame({"views": [1, 1]})
    found = {"events": events, "sessions": sessions, "daily": daily, "status": status, "pageviews": pageviews}
    found.update(changes)
    return found


def test_tables_that_count_the_same_things_agree():
    counts = reconcile.tables(**frames())
    assert [c.agrees for c in counts] == [True] * 6
    assert reconcile.summary(counts) == "All 6 counts agree."
    assert reconcile.disagreements(counts) == []


def test_a_session_still_open_is_named_first_and_loudly():
    # s3 is not in the session table yet: the daily sums have it, the per-minute loads too.
    sessions = frames()["sessions"].iloc[:2]
    counts = reconcile.tables(**frames(sessions=sessions))
    wrong = reconcile.disagreements(counts)
    assert [c.stage for c in wrong] == [
        "sessions: daily_kpis against session_summary rows",
        "page loads: status_per_minute against session_summary",
    ]
    assert (wrong[0].expected, wrong[0].found) == (3, 2)
    text = reconcile.summary(counts)
    assert text.startswith(
        "COUNTS DISAGREE (2 of 6): sessions: daily_kpis against session_summary rows: 2 found, 3 expected"
    )
    table = reconcile.frame(counts)
    assert list(table["agrees"][:2]) == [False, False] and table["agrees"][2:].all()


def test_an_empty_period_agrees_with_itself():
    empty = {name: frame.iloc[:0] for name, frame in frames().items()}
    counts = reconcile.tables(**empty)
    assert all(c.expected == c.found == 0 for c in counts)
