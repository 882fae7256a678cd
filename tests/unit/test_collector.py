"""The collector's own rules: what a body may hold, what it adds to an event, its bounds, its counters."""

import json

import pytest

from clicklib import collector
from clicklib.collector import Busy, Forwarder, Metrics, UdpBridge
from clicklib.settings import Settings


def test_a_body_is_one_event_or_an_array_of_them():
    assert collector.parse_body(b'{"event_id": "a"}', 10) == [{"event_id": "a"}]
    assert collector.parse_body(b'[{"event_id": "a"}, {"event_id": "b"}]', 10) == [{"event_id": "a"}, {"event_id": "b"}]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"event_id": "a"', "the body is not JSON: Expecting ',' delimiter at line 1 column 17"),
        (b"", "the body is not JSON: Expecting value at line 1 column 1"),
        (b"\xff\xfe", "the body is not UTF-8 text"),
        (b"[]", "the body is an empty array"),
        (b'[{"a": 1}, 3]', "item 1 of the array is a JSON int, not an event object"),
        (b'"text"', "the body is a JSON str, not an event object"),
        (b"[" * 100_000, "the body nests too deeply"),
        (json.dumps([{}] * 11).encode(), "the body holds 11 events; send at most 10 per request"),
        (b'{"a": NaN}', "the body holds NaN, which is not JSON"),
        (b"[Infinity]", "the body holds Infinity, which is not JSON"),
    ],
)
def test_a_body_that_is_no_event_says_why(body, reason):
    with pytest.raises(ValueError) as caught:
        collector.parse_body(body, 10)
    assert str(caught.value).startswith(reason)


def test_the_pixel_types_numbers_and_booleans_as_the_schema_does():
    event = collector.pixel_event({"date": "1700000000000", "status": "404", "init_session": "true", "page_type": "7"})
    assert event == {"date": 1700000000000, "status": 404, "init_session": True, "page_type": "7"}
    # A value that is no number stays text, so the pipeline dead-letters it with its reason.
    assert collector.pixel_event({"date": "noon", "init_session": "maybe"}) == {"date": "noon", "init_session": "maybe"}
    for odd in ("--1", "\u00b2", "1" * 30):
        assert collector.pixel_event({"status": odd}) == {"status": odd}


def test_the_server_adds_what_only_it_knows_and_keeps_what_the_event_says():
    added = json.loads(collector.enrich({"event_id": "a"}, "203.0.113.9", "Firefox", False, 1234))
    assert added == {"event_id": "a", "collector_date": 1234, "ip": "203.0.113.9", "user_agent": "Firefox"}
    kept = json.loads(
        collector.enrich({"ip": "198.51.100.1", "user_agent": "Own", "collector_date": 5}, "203.0.113.9", "F", False, 9)
    )
    # The event's own address and agent stay; the arrival time is always the server's.
    assert (kept["ip"], kept["user_agent"], kept["collector_date"]) == ("198.51.100.1", "Own", 9)


def test_a_lone_surrogate_is_forwarded_for_the_pipeline_to_judge():
    forwarded = collector.enrich({"city": "\ud800", "name": "Z\u00fcrich"}, None, None, False, 1)
    assert b"\\ud800" in forwarded and json.loads(forwarded)["name"] == "Z\u00fcrich"


@pytest.mark.parametrize(
    ("address", "anonymised"),
    [("203.0.113.9", "203.0.113.0"), ("2001:db8:1:2:3:4:5:6", "2001:db8:1::"), ("not an address", "not an address")],
)
def test_anonymising_zeroes_the_host_part_of_every_address(address, anonymised):
    assert collector.anonymise(address) == anonymised
    # An address the event brought itself is anonymised too.
    assert json.loads(collector.enrich({"ip": address}, "10.0.0.1", None, True, 1))["ip"] == anonymised


def test_a_datagram_event_is_keyed_by_its_user_when_it_has_one():
    assert collector.event_key(b'{"user_id": "u1"}') == b"u1"
    assert collector.event_key(b'{"user_id": null}') is None
    assert collector.event_key(b"not json") is None
    assert collector.event_key(b"[1]") is None
    # A lone surrogate (escaped in the JSON) still keys the event: the pipeline judges it.
    assert collector.event_key(b'{"user_id": "\\ud800x"}') == b"\\ud800x"


def test_the_settings_name_the_topic_origins_and_bounds(tmp_path):
    settings = Settings(
        home=tmp_path,
        namespace="t1_",
        collector_origins="https://shop.example/, http://localhost:3000",
        collector_max_kb=2,
        collector_delivery_timeout="5 s",
    )
    config = collector.CollectorConfig.from_settings(settings)
    assert config.topic == "t1_clickstream"
    assert config.origins == {"https://shop.example", "http://localhost:3000"}
    assert (config.max_bytes, config.delivery_timeout_ms) == (2048, 5000)


class HeldProducer:
    """Takes messages and never answers: Kafka unreachable, as far as the bounds can tell."""

    def __init__(self):
        self.messages = []

    def produce(self, topic, value, key, on_delivery):
        self.messages.append((topic, key, value))


def test_over_its_bound_the_forwarder_refuses_instead_of_queueing():
    forwarder = Forwarder(HeldProducer(), "clickstream", limit=5, metrics=Metrics())
    forwarder.send_nowait("udp", [(None, b"{}")] * 4)
    with pytest.raises(Busy, match="4 events are waiting for Kafka already"):
        forwarder.send_nowait("udp", [(None, b"{}")] * 2)
    forwarder.send_nowait("udp", [(None, b"{}")])
    assert forwarder.in_flight == 5


class RefusingProducer(HeldProducer):
    """Takes two messages, then refuses the rest as librdkafka does a message over its size limit."""

    def produce(self, topic, value, key, on_delivery):
        if len(self.messages) >= 2:
            from confluent_kafka import KafkaException

            raise KafkaException("Message size too large")
        super().produce(topic, value, key, on_delivery)


def test_a_refused_produce_frees_the_slots_of_the_rest_of_its_batch():
    metrics = Metrics()
    forwarder = Forwarder(RefusingProducer(), "clickstream", limit=10, metrics=metrics)
    forwarder.send_nowait("udp", [(None, b"{}")] * 5)
    # Two wait for Kafka; three were answered at once as failed, and hold no slot.
    assert forwarder.in_flight == 2
    assert metrics.delivered[("udp", "failed")] == 3


def test_the_udp_bridge_forwards_each_line_as_it_is_and_counts_what_it_drops():
    producer, metrics = HeldProducer(), Metrics()
    bridge = UdpBridge(Forwarder(producer, "raw", limit=3, metrics=metrics), metrics, max_bytes=64)
    bridge.datagram_received(b'{"user_id": "u1", "n": 1}\n\nnot json\n', ("127.0.0.1", 1))
    assert producer.messages == [("raw", b"u1", b'{"user_id": "u1", "n": 1}'), ("raw", None, b"not json")]
    bridge.datagram_received(b"x" * 65, ("127.0.0.1", 1))
    bridge.datagram_received(b"\n \n", ("127.0.0.1", 1))
    bridge.datagram_received(b"{}\n{}", ("127.0.0.1", 1))  # two more than the bound leaves room for
    assert metrics.datagrams == {"received": 4, "forwarded": 1, "rejected": 3}
    assert metrics.events[("udp", "rejected", "datagram over 64 bytes")] == 1
    assert metrics.events[("udp", "rejected", "empty datagram")] == 1
    assert metrics.events[("udp", "rejected", "too many events in flight")] == 2


def test_the_metrics_are_prometheus_text_with_a_cumulative_latency_histogram():
    metrics = Metrics()
    metrics.requests[("/collect", "202")] += 3
    metrics.events[("/collect", "rejected", 'say "why"')] += 1
    for seconds in (0.001, 0.02, 100.0):
        metrics.observe_latency(seconds)
    text = metrics.render()
    assert 'clicklib_collector_requests_total{endpoint="/collect",status="202"} 3' in text
    assert 'clicklib_collector_events_total{endpoint="/collect",outcome="rejected",reason="say \\"why\\""} 1' in text
    assert 'clicklib_collector_delivery_seconds_bucket{le="0.005"} 1' in text
    assert 'clicklib_collector_delivery_seconds_bucket{le="0.025"} 2' in text
    assert 'clicklib_collector_delivery_seconds_bucket{le="+Inf"} 3' in text
    assert "clicklib_collector_delivery_seconds_count 3" in text
