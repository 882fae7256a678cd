"""The disk bounds (stack/disk.py): what status says, when events are refused, and the supervisor's
patience with a process that dies for want of space. The fault suite fills a real filesystem
(tests/disk); here the free space is what the machine has, or a number the test gives."""

from __future__ import annotations

import subprocess

import pytest

from clicklib import produce
from clicklib.collector import Forwarder, Metrics, UdpBridge
from clicklib.exceptions import DiskFullError, SettingsError
from clicklib.settings import Settings
from clicklib.stack import configs, disk, supervisor
from clicklib.stack.services import PROCESSES

MIB = 2**20


def settings_at(tmp_path, **values) -> Settings:
    return Settings.from_env({"CLICKLIB_HOME": str(tmp_path), **{f"CLICKLIB_{k}": str(v) for k, v in values.items()}})


def test_free_space_is_ok_then_low_then_full_at_the_two_bounds(tmp_path):
    settings = settings_at(tmp_path, DISK_WARN_MB=2048, DISK_REFUSE_MB=512)
    assert disk.state_of(settings, 2048 * MIB) == disk.OK
    assert disk.state_of(settings, 2048 * MIB - 1) == disk.LOW
    assert disk.state_of(settings, 512 * MIB) == disk.LOW
    assert disk.state_of(settings, 512 * MIB - 1) == disk.FULL
    # 0 turns the refusal off: only a disk with nothing left is "low" then.
    off = settings_at(tmp_path, DISK_WARN_MB=1, DISK_REFUSE_MB=0)
    assert disk.state_of(off, 0) == disk.LOW


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (
            {"DISK_WARN_MB": 100, "DISK_REFUSE_MB": 200},
            "CLICKLIB_DISK_WARN_MB=100 is below CLICKLIB_DISK_REFUSE_MB=200",
        ),
        ({"DISK_REFUSE_MB": -1}, "CLICKLIB_DISK_REFUSE_MB must be at least 0, got -1"),
    ],
)
def test_bounds_that_cannot_work_fail_naming_the_variables(tmp_path, values, says):
    with pytest.raises(SettingsError, match=says):
        settings_at(tmp_path, **values)


def test_the_report_names_the_free_space_and_what_the_stack_uses_there(tmp_path):
    # Bounds above any real disk: whatever this machine has free is "full" by them.
    settings = settings_at(tmp_path, DISK_WARN_MB=10**9, DISK_REFUSE_MB=10**9)
    kafka = configs.data_dir(settings, "kafka")
    kafka.mkdir(parents=True)
    (kafka / "00000000000000000000.log").write_bytes(b"x" * (3 * MIB))
    configs.log_dir(settings).mkdir(parents=True)
    (configs.log_dir(settings) / "kafka.log").write_bytes(b"y" * MIB)
    # A link (a test home's jars) is not counted: its files are elsewhere.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "big").write_bytes(b"z" * (5 * MIB))
    (kafka / "linked").symlink_to(tmp_path / "elsewhere")

    report = disk.report(settings)
    assert report.state == disk.FULL
    (filesystem,) = report.filesystems  # one disk under tmp_path
    assert 3 * MIB <= filesystem.uses["kafka"] < 4 * MIB
    assert MIB <= filesystem.uses["logs"] < 2 * MIB
    detail = report.detail(settings)
    assert "free of" in detail and str(filesystem.path) in detail
    assert "no event is taken in" in detail and "kafka 3 MiB" in detail and "logs 1 MiB" in detail


def test_the_guard_refuses_below_the_bound_naming_the_folder_and_looks_at_most_once_a_second(tmp_path, monkeypatch):
    settings = settings_at(tmp_path, DISK_WARN_MB=100, DISK_REFUSE_MB=50)
    configs.data_dir(settings, "kafka").mkdir(parents=True)
    assert disk.guard(settings) is not None  # the local stack's Kafka: its segments are here
    free = [10 * MIB]
    looks = []
    monkeypatch.setattr(disk, "free_bytes", lambda path: looks.append(path) or free[0])
    clock = [1000.0]
    monkeypatch.setattr(disk.time, "monotonic", lambda: clock[0])
    guard = disk.KafkaDiskGuard(settings)
    reason = guard.refusal()
    assert "10 MiB free, below 50 MiB (CLICKLIB_DISK_REFUSE_MB)" in reason
    assert str(configs.data_dir(settings, "kafka")) in reason and "free space there" in reason
    free[0] = 60 * MIB
    clock[0] += 0.5
    assert guard.refusal() == reason and len(looks) == 1  # within the second: the last look stands
    clock[0] += 0.6
    assert guard.refusal() is None and len(looks) == 2


def test_there_is_no_guard_for_a_kafka_elsewhere_or_with_the_refusal_off(tmp_path):
    configs.data_dir(settings_at(tmp_path), "kafka").mkdir(parents=True)
    assert disk.guard(settings_at(tmp_path, BOOTSTRAP_SERVERS="broker-1:9092")) is None
    assert disk.guard(settings_at(tmp_path, DISK_REFUSE_MB=0)) is None
    assert disk.guard(settings_at(tmp_path / "never-started")) is None


class Refusing:
    def __init__(self, after_looks: int = 0):
        self.looks = 0
        self.after_looks = after_looks

    def refusal(self):
        self.looks += 1
        return "the disk of Kafka's data is full" if self.looks > self.after_looks else None


class HeldProducer:
    def __init__(self):
        self.messages = []

    def produce(self, topic, value, key, on_delivery):
        self.messages.append(value)


def test_a_forwarder_refuses_every_event_while_the_disk_is_full_and_a_datagram_is_counted_rejected():
    metrics, producer = Metrics(), HeldProducer()
    forwarder = Forwarder(producer, "raw", limit=10, metrics=metrics, refusal=Refusing().refusal)
    with pytest.raises(DiskFullError, match="full"):
        forwarder.reserve(1)
    UdpBridge(forwarder, metrics, 4096, anonymise_ip=False).datagram_received(b'{"a": 1}\n{"b": 2}', ("127.0.0.1", 1))
    assert producer.messages == [] and forwarder.in_flight == 0
    assert metrics.events[("udp", "rejected", "disk full")] == 2 and metrics.datagrams["rejected"] == 1


class AnsweringProducer(HeldProducer):
    def produce(self, topic, value, key, on_delivery):
        super().produce(topic, value, key, on_delivery)
        on_delivery(None, None)

    def poll(self, timeout):
        return 0

    def flush(self, timeout):
        return 0


def test_produce_stops_at_the_refusal_and_says_what_was_delivered_and_what_was_not_sent():
    producer = AnsweringProducer()
    messages = [(None, f"{n}") for n in range(1000)]
    with pytest.raises(DiskFullError) as caught:
        produce._send(producer, "raw", iter(messages), 1000, None, False, Refusing(after_looks=2))
    # Looked before the 1st, 101st and 201st message: two passed, the third refused.
    assert len(producer.messages) == 2 * produce.DISK_CHECK_EVERY
    text = str(caught.value)
    assert "the disk of Kafka's data is full" in text
    assert f"{2 * produce.DISK_CHECK_EVERY} delivered" in text and "the other 800 not sent" in text


def test_a_process_that_dies_while_its_disk_is_full_is_started_again_and_never_given_up(tmp_path, monkeypatch):
    settings = settings_at(tmp_path, CRASH_LOOP_EXITS=3)
    name = "kafka"
    watcher = supervisor.Supervisor.__new__(supervisor.Supervisor)
    watcher.settings = settings
    watcher.log = lambda message: None
    started = []
    monkeypatch.setattr(watcher, "restart", lambda process, state: started.append(process), raising=False)
    monkeypatch.setattr(supervisor, "MAX_BACKOFF", 0.0)
    pid_path = PROCESSES[name].pid_path(settings)
    pid_path.parent.mkdir(parents=True)

    def dies_again() -> None:
        # Each start's process dies: a pid no process of ours has any more.
        exited = subprocess.Popen(["true"])
        exited.wait()
        pid_path.write_text(str(exited.pid))
        watcher.check(name)

    full = [True]
    monkeypatch.setattr(disk, "process_waits_for_space", lambda settings, folder: full[0])
    for _ in range(6):
        dies_again()
    state = supervisor.read_state(settings)[name]
    assert len(started) == 6 and state["given_up"] == "" and state["exits"] == []
    # With room again, exits count: a process that still dies is a crash loop, given up on.
    full[0] = False
    for _ in range(3):
        dies_again()
    assert "exited 3 times" in supervisor.read_state(settings)[name]["given_up"]
