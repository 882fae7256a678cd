import json
from collections import Counter, defaultdict
from itertools import pairwise

import pytest

from clicklib.events import invalid_reason, parse
from clicklib.generate import (
    DEFAULT_START_MS,
    LOCATIONS,
    SESSION_GAP_MS,
    Workload,
    generate,
    read_jsonl,
    write_jsonl,
)

N_EVENTS = 20_000
JITTER_MS = 5_000


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(N_EVENTS, seed=42)


@pytest.fixture(scope="module")
def sessions(workload: Workload) -> dict[str, list]:
    by_session = defaultdict(list)
    for event in workload.events:
        by_session[event.session_id].append(event)
    return by_session


def test_the_default_start_is_new_year_2026_utc():
    assert DEFAULT_START_MS == 1_767_225_600_000


def test_the_same_arguments_give_the_same_workload():
    assert generate(2_000, seed=7, invalid_ratio=0.1) == generate(2_000, seed=7, invalid_ratio=0.1)


def test_another_seed_gives_another_workload():
    first, second = generate(500, seed=1), generate(500, seed=2)
    assert [r.value for r in first.records] != [r.value for r in second.records]
    assert first.profiles != second.profiles


@pytest.mark.parametrize("n_events", [0, 1, 137, 5_000])
def test_exactly_n_events_records(n_events):
    assert len(generate(n_events).records) == n_events


@pytest.mark.parametrize(("n_events", "ratio"), [(1_000, 0.05), (999, 0.0333), (10, 1.0), (3_001, 0.5)])
def test_the_invalid_share_is_the_rounded_ratio(n_events, ratio):
    records = generate(n_events, invalid_ratio=ratio).records
    assert len(records) == n_events
    assert sum(r.event is None for r in records) == round(n_events * ratio)


def test_invalid_records_come_in_three_kinds_spread_through_the_stream():
    records = generate(6_000, invalid_ratio=0.05).records
    reasons = Counter(r.reason for r in records if r.reason is not None)
    wrong_type = sum(n for reason, n in reasons.items() if reason.startswith(("date", "status", "init_session")))
    assert reasons["malformed JSON"] == 100
    assert reasons["event_id: expected a non-empty string"] == 100
    assert wrong_type == 100
    positions = [i for i, r in enumerate(records) if r.event is None]
    assert positions[0] < 600 and positions[-1] > 5_400


def test_each_record_states_what_its_value_is():
    for record in generate(3_000, invalid_ratio=0.1).records:
        assert record.reason == invalid_reason(record.value)
        if record.event is None:
            assert record.reason is not None
        else:
            assert parse(record.value) == record.event
            assert record.key == record.event.user_id


def test_invalid_records_keep_the_key_of_their_user():
    for record in generate(3_000, invalid_ratio=0.2).records:
        if record.reason not in (None, "malformed JSON"):
            assert record.key == json.loads(record.value)["user_id"]


def test_dates_never_lag_the_latest_earlier_date_by_more_than_the_jitter(workload):
    latest = None
    for event in workload.events:
        if latest is not None:
            assert event.date >= latest - JITTER_MS
        latest = event.date if latest is None else max(latest, event.date)
    assert any(a.date > b.date for a, b in pairwise(workload.events))


def test_dates_start_at_start_ms_and_span_a_realistic_time(workload):
    dates = [e.date for e in workload.events]
    assert min(dates) >= DEFAULT_START_MS
    assert 3_600_000 <= max(dates) - min(dates) <= 2 * 3_600_000
    shifted = generate(100, start_ms=1_000_000, max_jitter_ms=0)
    assert min(e.date for e in shifted.events) >= 1_000_000


def test_event_ids_are_unique_uuid4(workload):
    ids = [e.event_id for e in workload.events]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 and i[14] == "4" for i in ids)


def test_the_funnel_narrows_at_every_step(workload, sessions):
    pageviews = Counter(e.page_type for e in workload.events if e.event == "pageview")
    purchases = sum(e.event == "purchase" for e in workload.events)
    assert 0 < purchases < pageviews["checkout"] < pageviews["cart"] < pageviews["productDetail"]
    converted = sum(any(e.event == "purchase" for e in s) for s in sessions.values()) / len(sessions)
    assert 0.01 < converted < 0.10


def test_event_names_match_their_pages(workload):
    pages_by_event = defaultdict(set)
    for event in workload.events:
        pages_by_event[event.event].add(event.page_type)
    assert set(pages_by_event) == {"pageview", "click", "add_to_cart", "purchase", "search"}
    assert pages_by_event["add_to_cart"] <= {"productDetail", "cart"}
    assert pages_by_event["purchase"] == {"purchase"}
    assert pages_by_event["search"] == {"search"}
    assert pages_by_event["pageview"] == {"home", "category", "productDetail", "search", "cart", "checkout", "purchase"}


def test_about_a_quarter_of_sessions_are_anonymous(sessions):
    anonymous = sum(s[0].user_id is None for s in sessions.values()) / len(sessions)
    assert 0.2 < anonymous < 0.3


def test_a_session_starts_with_its_only_init_session_event(sessions):
    for events in sessions.values():
        assert [e.init_session for e in events] == [True] + [False] * (len(events) - 1)
        assert events[0].event == "pageview"
        assert len({(e.user_id, e.user_agent, e.ip, e.partner_id) for e in events}) == 1


def test_referrer_is_external_first_then_the_previous_page(sessions):
    for events in sessions.values():
        pageviews = [e for e in events if e.event == "pageview"]
        assert pageviews[0].referrer is None or not pageviews[0].referrer.startswith("https://shop.example/")
        for before, after in pairwise(pageviews):
            assert after.referrer in (before.current_url, before.referrer)


def test_returning_users_mostly_keep_30_minutes_between_sessions(sessions):
    spans = defaultdict(list)
    for events in sessions.values():
        if events[0].user_id is not None:
            spans[events[0].user_id].append((min(e.date for e in events), max(e.date for e in events)))
    gaps = [later[0] - earlier[1] for s in spans.values() for earlier, later in pairwise(sorted(s))]
    assert len(gaps) > 300
    assert sum(gap > SESSION_GAP_MS for gap in gaps) / len(gaps) > 0.9


def test_locations_are_consistent(workload):
    places = {(loc.city, loc.country, loc.language) for loc in LOCATIONS}
    for event in workload.events:
        assert (event.city, event.country, event.language) in places
        assert event.ip.startswith(("192.0.2.", "198.51.100.", "203.0.113."))


def test_mostly_mobile_user_agents(sessions):
    mobile = sum("Mobile" in s[0].user_agent for s in sessions.values()) / len(sessions)
    assert 0.5 < mobile < 0.7


def test_errors_are_rare_except_in_bursts(workload):
    statuses = Counter(e.status for e in workload.events)
    assert set(statuses) == {200, 404, 500, 503}
    assert 0.01 < 1 - statuses[200] / len(workload.events) < 0.05
    per_minute = defaultdict(lambda: [0, 0])
    for event in workload.events:
        counts = per_minute[event.date // 60_000]
        counts[0] += 1
        counts[1] += event.status >= 400
    alerting = [minute for minute, (requests, errors) in per_minute.items() if errors * 100 > requests * 5]
    assert 1 <= len(alerting) <= 10
    assert any(errors > requests * 0.2 for requests, errors in per_minute.values())


def test_profiles_exist_before_the_stream_starts(workload):
    assert workload.profiles
    for profile in workload.profiles:
        assert profile.signup_date <= profile.updated_at < DEFAULT_START_MS
        assert profile.segment in {"new", "casual", "loyal", "vip"}
    users = {p.user_id for p in workload.profiles}
    assert {e.user_id for e in workload.events if e.user_id} <= users


def test_workloads_with_other_seeds_share_no_users():
    first, second = generate(4_000, seed=1), generate(4_000, seed=2)
    assert not {p.user_id for p in first.profiles} & {p.user_id for p in second.profiles}
    assert len({p.user_id for p in first.profiles}) == len(first.profiles)


def test_a_profile_is_json_keyed_by_its_user(workload):
    profile = workload.profiles[0]
    assert json.loads(profile.to_json()) == {
        "user_id": profile.user_id,
        "signup_date": profile.signup_date,
        "home_city": profile.home_city,
        "segment": profile.segment,
        "updated_at": profile.updated_at,
    }


def test_a_workload_round_trips_through_jsonl(tmp_path):
    original = generate(1_000, invalid_ratio=0.1)
    path = tmp_path / "events.jsonl"
    write_jsonl(original, path)
    replayed = read_jsonl(path)
    assert [r.value for r in replayed.records] == [r.value for r in original.records]
    assert [r.event for r in replayed.records] == [r.event for r in original.records]
    assert [r.reason for r in replayed.records] == [r.reason for r in original.records]
    assert [r.key for r in replayed.records if r.event] == [r.key for r in original.records if r.event]


def test_read_jsonl_skips_blank_lines_and_keys_only_valid_events(tmp_path):
    valid = generate(1).records[0]
    path = tmp_path / "events.jsonl"
    path.write_text(f"\n{valid.value}\r\n   \n[1]\n", encoding="utf-8")
    records = read_jsonl(path).records
    assert [(r.key, r.value, r.reason) for r in records] == [
        (valid.key, valid.value, None),
        (None, "[1]", "not a JSON object"),
    ]


@pytest.mark.parametrize("arguments", [{"n_events": -1}, {"invalid_ratio": 1.5}, {"n_users": 0}, {"max_jitter_ms": -1}])
def test_impossible_arguments_are_refused(arguments):
    with pytest.raises(ValueError):
        generate(**{"n_events": 10, **arguments})


def test_the_same_seed_at_another_start_is_another_run_with_other_ids():
    first = generate(300, seed=9, start_ms=1_767_225_600_000)
    again = generate(300, seed=9, start_ms=1_767_225_600_000)
    later = generate(300, seed=9, start_ms=1_767_225_600_000 + 3_600_000)
    assert [e.event_id for e in again.events] == [e.event_id for e in first.events]
    assert not {e.event_id for e in later.events} & {e.event_id for e in first.events}
    assert not {e.session_id for e in later.events} & {e.session_id for e in first.events}
    # Everything else keeps its shape: the run is the same shop an hour later.
    assert [e.date + 3_600_000 for e in first.events] == [e.date for e in later.events]
    assert later.start_ms == first.start_ms + 3_600_000
