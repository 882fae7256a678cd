"""The collector's own rules: what a body may hold, what it adds to an event, its bounds, its counters."""

import ipaddress
import json
import time

import pytest

from clicklib import collector
from clicklib.collector import Busy, Forwarder, Metrics, UdpBridge
from clicklib.exceptions import SettingsError
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


def test_the_server_adds_what_only_it_knows_and_its_address_replaces_the_events():
    added = json.loads(collector.enrich({"event_id": "a"}, "203.0.113.9", "Firefox", False, 1234))
    assert added == {"event_id": "a", "collector_date": 1234, "ip": "203.0.113.9", "user_agent": "Firefox"}
    told = json.loads(
        collector.enrich({"ip": "198.51.100.1", "user_agent": "Own", "collector_date": 5}, "203.0.113.9", "F", False, 9)
    )
    # The spec changed: the event's own address used to be kept. A client can claim any address,
    # so the request's always wins now. The event's agent stays (no change); the arrival time is
    # always the server's.
    assert (told["ip"], told["user_agent"], told["collector_date"]) == ("203.0.113.9", "Own", 9)


@pytest.mark.parametrize("claimed", ["198.51.100.1", "not an address", 5, ["198.51.100.1"], None, ""])
def test_an_address_the_server_does_not_know_is_not_forwarded(claimed):
    # Whatever the event says, with no address of its own the server forwards none.
    for anonymise_ip in (False, True):
        assert "ip" not in json.loads(collector.enrich({"ip": claimed}, None, None, anonymise_ip, 1))


def test_a_lone_surrogate_is_forwarded_for_the_pipeline_to_judge():
    forwarded = collector.enrich({"city": "\ud800", "name": "Z\u00fcrich"}, None, None, False, 1)
    assert b"\\ud800" in forwarded and json.loads(forwarded)["name"] == "Z\u00fcrich"


@pytest.mark.parametrize(
    ("address", "anonymised"),
    [
        ("203.0.113.9", "203.0.113.0"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1::"),
        ("::ffff:203.0.113.9", "203.0.113.0"),  # IPv4 as a dual-stack socket gives it
        ("fe80::1:2:3%eth0", "fe80::"),  # the zone names this machine's interface: it goes too
        # The spec changed: what is no address used to come back unchanged, so it was forwarded
        # unanonymised. Now nothing comes back, and nothing is forwarded.
        ("not an address", None),
        ("", None),
        (5, None),
    ],
)
def test_anonymising_zeroes_the_host_part_of_every_address_and_refuses_what_is_none(address, anonymised):
    assert collector.anonymise(address) == anonymised
    if isinstance(address, str) and address:
        # The server's address for the client is anonymised; an address the event brought is
        # replaced by it (the spec changed: it used to be kept and anonymised, or passed as it was).
        forwarded = json.loads(collector.enrich({"ip": "198.51.100.7"}, address, None, True, 1))
        assert forwarded.get("ip") == anonymised


@pytest.mark.parametrize("claimed", ["198.51.100.1", "not an address", 5, {"a": 1}])
def test_with_anonymising_on_only_the_servers_anonymised_address_is_forwarded(claimed):
    forwarded = json.loads(collector.enrich({"ip": claimed}, "203.0.113.9", None, True, 1))
    assert forwarded["ip"] == "203.0.113.0"


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:f::/48"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # An untrusted peer is the client, whatever X-Forwarded-For says.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("203.0.113.9", [], "203.0.113.9"),
        # A trusted peer without X-Forwarded-For is the client: nothing names another.
        ("10.0.0.2", [], "10.0.0.2"),
        # The first untrusted address from the right; what lies to its left is the client's word.
        ("10.0.0.2", ["198.51.100.1, 203.0.113.9"], "203.0.113.9"),
        ("10.0.0.2", ["198.51.100.1, 203.0.113.9, 10.1.1.1 , 10.2.2.2"], "203.0.113.9"),
        # Several headers are one list, in order.
        ("10.0.0.2", ["198.51.100.1", "203.0.113.9,10.1.1.1"], "203.0.113.9"),
        ("10.0.0.2", ["203.0.113.9", "10.1.1.1"], "203.0.113.9"),
        # An entry that is no address ends the walk at the nearest trusted hop to its right.
        ("10.0.0.2", ["198.51.100.1, unknown, 10.1.1.1"], "10.1.1.1"),
        ("10.0.0.2", ["198.51.100.1, 203.0.113.9:443"], "10.0.0.2"),
        ("10.0.0.2", ["198.51.100.1, "], "10.0.0.2"),
        ("10.0.0.2", [""], "10.0.0.2"),
        # Every hop trusted: the leftmost is the farthest known, the client.
        ("10.0.0.2", ["10.3.3.3, 10.1.1.1"], "10.3.3.3"),
        # IPv6, and IPv4 mapped into IPv6 (a dual-stack socket) taken as IPv4.
        ("2001:db8:f::5", ["2001:db8:1::7"], "2001:db8:1::7"),
        ("::ffff:10.0.0.2", ["::ffff:203.0.113.9"], "203.0.113.9"),
        ("::1", ["203.0.113.9"], "::1"),
        # No peer: no address.
        (None, ["203.0.113.9"], None),
    ],
)
def test_behind_trusted_proxies_the_client_is_the_first_untrusted_hop_from_the_right(peer, forwarded_for, client):
    assert collector.client_address(peer, forwarded_for, TRUSTED) == client


def test_without_trusted_proxies_x_forwarded_for_is_ignored():
    assert collector.client_address("10.0.0.2", ["203.0.113.9"], ()) == "10.0.0.2"


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
        collector_trusted_proxies="10.0.0.5, 10.1.0.0/16,fd00::/8,",
        collector_header_timeout_seconds=2.5,
        collector_body_timeout_seconds=7,
        collector_max_connections=40,
    )
    config = collector.CollectorConfig.from_settings(settings)
    assert config.topic == "t1_clickstream"
    assert config.origins == {"https://shop.example", "http://localhost:3000"}
    assert (config.max_bytes, config.delivery_timeout_ms) == (2048, 5000)
    assert config.trusted_proxies == tuple(map(ipaddress.ip_network, ("10.0.0.5/32", "10.1.0.0/16", "fd00::/8")))
    assert (config.header_timeout, config.body_timeout, config.max_connections) == (2.5, 7, 40)
    defaults = collector.CollectorConfig.from_settings(Settings(home=tmp_path))
    assert defaults.trusted_proxies == ()
    assert (defaults.header_timeout, defaults.body_timeout, defaults.max_connections) == (10, 30, 1000)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TRUSTED_PROXIES", "10.0.0.5, proxy.local", "'proxy.local' is not an IP address or network"),
        ("TRUSTED_PROXIES", "10.0.0.5/8", "'10.0.0.5/8' is not an IP address or network (10.0.0.5/8 has host bits"),
        ("TRUSTED_PROXIES", "10.0.0.0/33", "'10.0.0.0/33' is not an IP address or network"),
        ("HEADER_TIMEOUT_SECONDS", "0", "=0.0 must be a positive number of seconds"),
        ("BODY_TIMEOUT_SECONDS", "-1", "=-1.0 must be a positive number of seconds"),
        ("BODY_TIMEOUT_SECONDS", "inf", "=inf must be a positive number of seconds"),
        ("MAX_CONNECTIONS", "0", " must be at least 1, got 0"),
    ],
)
def test_bad_collector_settings_fail_naming_the_variable_and_the_bad_entry(tmp_path, variable, value, says):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"CLICKLIB_HOME": str(tmp_path), f"CLICKLIB_COLLECTOR_{variable}": value})
    assert f"CLICKLIB_COLLECTOR_{variable}" in str(caught.value) and says in str(caught.value)


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


class FailingPollProducer(HeldProducer):
    """Its poll raises as librdkafka's does: a non-fatal error once, then a fatal one."""

    def __init__(self):
        super().__init__()
        self.polls = 0

    def poll(self, timeout):
        from confluent_kafka import KafkaError, KafkaException

        self.polls += 1
        if self.polls == 1:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down", fatal=False))
        raise KafkaException(KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED, "no producer id", fatal=True))


def test_a_fatal_producer_error_is_reported_and_a_passing_one_is_not():
    reported = []
    producer = FailingPollProducer()
    forwarder = Forwarder(producer, "clickstream", limit=5, metrics=Metrics(), on_fatal=reported.append)
    forwarder._poll()  # returns after the fatal error: the thread's whole life
    assert producer.polls == 2
    assert len(reported) == 1 and "no producer id" in reported[0]


def test_the_udp_bridge_adds_what_the_server_knows_to_each_event_and_counts_what_it_drops(monkeypatch):
    # The spec changed: each line used to be forwarded as the bytes it was. An event now gets the
    # arrival time and the sender's address, as over HTTP; what is no JSON object still goes on
    # as its bytes, for the pipeline to dead-letter with the reason.
    producer, metrics = HeldProducer(), Metrics()
    bridge = UdpBridge(Forwarder(producer, "raw", limit=3, metrics=metrics), metrics, max_bytes=64, anonymise_ip=False)
    parses = []
    loads = collector.json.loads
    monkeypatch.setattr(collector.json, "loads", lambda *a, **k: parses.append(a) or loads(*a, **k))
    before = time.time_ns() // 1_000_000
    bridge.datagram_received(b'{"user_id": "u1", "ip": "6.6.6.6"}\n\nnot json\n', ("203.0.113.9", 1))
    assert len(parses) == 2  # once a line: the key and what is added come from the same parse
    [(topic, key, value), rest] = producer.messages
    event = json.loads(value)
    assert (topic, key, rest) == ("raw", b"u1", ("raw", None, b"not json"))
    assert (event["user_id"], event["ip"], "user_agent" in event) == ("u1", "203.0.113.9", False)
    assert before <= event["collector_date"] <= time.time_ns() // 1_000_000
    bridge.datagram_received(b"x" * 65, ("127.0.0.1", 1))
    bridge.datagram_received(b"\n \n", ("127.0.0.1", 1))
    bridge.datagram_received(b"{}\n{}", ("127.0.0.1", 1))  # two more than the bound leaves room for
    assert metrics.datagrams == {"received": 4, "forwarded": 1, "rejected": 3}
    assert metrics.events[("udp", "rejected", "datagram over 64 bytes")] == 1
    assert metrics.events[("udp", "rejected", "empty datagram")] == 1
    assert metrics.events[("udp", "rejected", "too many events in flight")] == 2


def test_the_udp_bridge_anonymises_the_senders_address_when_told_to():
    producer, metrics = HeldProducer(), Metrics()
    bridge = UdpBridge(Forwarder(producer, "raw", limit=9, metrics=metrics), metrics, max_bytes=999, anonymise_ip=True)
    bridge.datagram_received(b'{"ip": "6.6.6.6"}\n{"ip": "not an address"}', ("203.0.113.9", 1))
    bridge.datagram_received(b'{"n": 1}', ("::ffff:198.51.100.7", 1, 0, 0))  # a dual-stack socket's sender
    assert [json.loads(value)["ip"] for _, _, value in producer.messages] == ["203.0.113.0"] * 2 + ["198.51.100.0"]


@pytest.mark.parametrize(
    "line",
    [
        b"[1]",
        b"null",
        b'"text"',
        b"{not json",
        b'{"n": NaN}',  # json.loads reads NaN, which is no JSON
        b'{"n": 1e400}',  # read as infinity, it would be written back as Infinity
        b'{"n": 1}'.decode().encode("utf-16"),  # json.loads reads UTF-16; the pipeline reads UTF-8 only
        b'\xef\xbb\xbf{"n": 1}',  # a byte order mark: json.loads skips it, the pipeline does not
        b'{"city": "Z\xfcrich"}',  # Latin-1, not UTF-8
        b'{"deep": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",  # deeper than json.loads reads
    ],
)
def test_a_datagram_line_that_is_no_json_object_is_forwarded_as_its_bytes(line):
    producer, metrics = HeldProducer(), Metrics()
    bridge = UdpBridge(
        Forwarder(producer, "raw", limit=9, metrics=metrics), metrics, max_bytes=10**5, anonymise_ip=True
    )
    bridge.datagram_received(line, ("203.0.113.9", 1))
    assert producer.messages == [("raw", None, line)]
    assert metrics.datagrams == {"received": 1, "forwarded": 1}


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


def test_the_metrics_count_the_connections_the_server_closed():
    metrics = Metrics(open_connections=7)
    metrics.connections["refused"] += 2
    text = metrics.render()
    assert "clicklib_collector_connections_open 7" in text
    assert "clicklib_collector_connections_refused_total 2" in text
    assert "clicklib_collector_connections_timed_out_total 0" in text
