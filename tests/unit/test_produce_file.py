"""Streaming a JSON-lines file into Kafka, without Kafka: the line reader, the per-line
accounting of the file producer (against a fake producer) and the CLI's summary."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from confluent_kafka import KafkaError, KafkaException

from clicklib import pipeline as pipeline_module
from clicklib import produce
from clicklib.cli import main
from clicklib.generate import generate
from clicklib.produce import LineGroup, LineReader
from clicklib.settings import Settings

NOT_UTF8 = b'{"event_id": "\xff\xfe"}'


def read(data: bytes, max_bytes: int = produce.MESSAGE_MAX_BYTES) -> tuple[list[produce.FileLine], LineReader]:
    reader = LineReader(io.BytesIO(data), max_bytes)
    return list(reader), reader


class OnlyBoundedReads(io.BytesIO):
    """A file that fails the test if anything reads it whole."""

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the whole file was read")
        return super().read(size)

    def readline(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("a line was read without a limit")
        return super().readline(size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        raise AssertionError("every line was read at once")

    def __iter__(self):
        raise AssertionError("lines were read without a limit")


def test_lines_keep_their_numbers_bytes_and_keys_and_blank_ones_are_counted_as_skipped():
    valid = generate(1).records[0]
    data = b"\n".join(
        [
            valid.value.encode(),  # 1
            b"",  # 2
            NOT_UTF8,  # 3
            b"   \t",  # 4
            b'{"user_id": 7}',  # 5
            b"[1, 2]",  # 6
            b'{"user_id": "user-1"',  # 7: cut short
            b'{"user_id": "user-2", "x": 1}\r',  # 8
            b'{"user_id": null}',  # 9
        ]
    )
    lines, reader = read(data)
    assert [(line.number, line.value, line.key, line.utf8) for line in lines] == [
        (1, valid.value.encode(), valid.key, True),
        (3, NOT_UTF8, None, False),
        (5, b'{"user_id": 7}', None, True),
        (6, b"[1, 2]", None, True),
        (7, b'{"user_id": "user-1"', None, True),
        (8, b'{"user_id": "user-2", "x": 1}', "user-2", True),
        (9, b'{"user_id": null}', None, True),
    ]
    assert valid.key is not None
    assert (reader.lines, reader.skipped, reader.position) == (9, 2, len(data))


def test_a_final_line_without_a_newline_and_a_trailing_newline_count_once():
    lines, reader = read(b'{"a": 1}\n{"b": 2}')
    assert [(line.number, line.value) for line in lines] == [(1, b'{"a": 1}'), (2, b'{"b": 2}')]
    lines, reader = read(b'{"a": 1}\n')
    assert [line.number for line in lines] == [1]
    assert reader.lines == 1


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_a_line_over_the_limit_is_read_past_keeping_only_its_size(ending):
    data = ending.join([b"x" * 10, b"y" * 1_000, b"z" * 100, b"w" * 101, b"v" * 5])
    lines, reader = read(data, max_bytes=100)
    assert [(line.number, line.value, line.size) for line in lines] == [
        (1, b"x" * 10, 10),
        (2, None, 1_000),
        (3, b"z" * 100, 100),
        (4, None, 101),
        (5, b"v" * 5, 5),
    ]
    assert reader.position == len(data)


def test_a_last_line_over_the_limit_without_a_newline_is_still_reported():
    lines, _ = read(b"{}\n" + b"q" * 5_000, max_bytes=100)
    assert [(line.number, line.value, line.size) for line in lines] == [(1, b"{}", 2), (2, None, 5_000)]


def test_the_size_of_a_long_crlf_line_is_right_wherever_the_chunks_split_it(monkeypatch):
    monkeypatch.setattr(produce, "READ_CHUNK", 7)
    for length in range(20, 40):
        lines, _ = read(b"a" * length + b"\r\nok\n", max_bytes=10)
        assert [(line.value, line.size) for line in lines] == [(None, length), (b"ok", 2)]


def test_the_reader_streams_and_never_reads_the_file_whole():
    data = b'{"user_id": "u"}\n' * 1_000 + b"q" * 5_000 + b"\n"
    reader = iter(LineReader(OnlyBoundedReads(data), max_bytes=1_000))
    first = next(reader)
    assert (first.number, first.key) == (1, "u")
    assert sum(1 for _ in reader) == 1_000


def test_reading_a_large_file_takes_memory_of_a_line_not_of_the_file(tmp_path):
    path = tmp_path / "big.jsonl"
    line = (json.dumps({"user_id": "user-1", "pad": "p" * 400}) + "\n").encode()
    with open(path, "wb") as out:
        for _ in range(50_000_000 // (len(line) * 1_000)):
            out.write(line * 1_000)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with open(path, "rb") as source:
            reader = LineReader(source)
            count = sum(1 for _ in reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == reader.lines == size // len(line)
    assert size > 40_000_000
    assert peak < 2_000_000, f"reading {size:,} bytes peaked at {peak:,} bytes"


def test_a_line_of_many_megabytes_is_not_held_whole():
    data = b"z" * 20_000_000 + b"\n{}\n"
    tracemalloc.start()
    try:
        lines, _ = read(data, max_bytes=1_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(line.value, line.size) for line in lines] == [(None, 20_000_000), (b"{}", 2)]
    assert peak < 3 * produce.READ_CHUNK


def test_a_reason_lists_ten_lines_and_says_how_many_more():
    group = LineGroup("not delivered: Local: Message timed out")
    for number in range(1, 26):
        group.add(number)
    assert str(group) == "lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 15 more: not delivered: Local: Message timed out"
    single = LineGroup("too big")
    single.add(7, "1,200,013 bytes")
    assert str(single) == "line 7 (1,200,013 bytes): too big"


class FakeProducer:
    """Queues messages and acknowledges them on poll/flush; a value listed in ``errors`` is
    refused by the broker with that error, one in ``refuse`` raises from produce()."""

    def __init__(self, errors=None, refuse=None, full_once=False, interrupt_at=None, acknowledge=True):
        self.errors = errors or {}
        self.refuse = refuse or {}
        self.full_once = full_once
        self.interrupt_at = interrupt_at
        self.acknowledge = acknowledge
        self.queued: list[tuple[bytes, str | None, object]] = []
        self.written: list[tuple[str | None, bytes]] = []
        self.purged = False

    def produce(self, topic, key=None, value=None, on_delivery=None):
        if value == self.interrupt_at:
            raise KeyboardInterrupt
        if self.full_once:
            self.full_once = False
            raise BufferError("queue full")
        if value in self.refuse:
            raise KafkaException(KafkaError(self.refuse[value]))
        self.queued.append((value, key, on_delivery))

    def poll(self, timeout=0):
        if not self.acknowledge:
            return 0
        queued, self.queued = self.queued, []
        for value, key, callback in queued:
            error = self.errors.get(value)
            if error is None:
                self.written.append((key, value))
            callback(KafkaError(error) if error is not None else None, None)
        return len(queued)

    def flush(self, timeout=None):
        self.poll()
        return len(self.queued)

    def purge(self):
        self.purged = True
        queued, self.queued = self.queued, []
        for _, _, callback in queued[:1]:
            callback(KafkaError(KafkaError._PURGE_QUEUE), None)
        # The rest never get a callback: the producer must still account for them.


def fake_pipeline(fake: FakeProducer, monkeypatch) -> SimpleNamespace:
    monkeypatch.setattr(produce, "make_producer", lambda kafka, **config: fake)
    kafka = SimpleNamespace(bootstrap_servers="127.0.0.1:9092", topic_names=lambda: {"ns_clickstream"})
    # A home the local stack never ran in: no disk guard, unless a test gives one.
    settings = Settings(home=Path("/nonexistent/clicklib-home"))
    return SimpleNamespace(kafka=kafka, topic=lambda base: f"ns_{base}", settings=settings)


def write_lines(tmp_path, lines: list[bytes]) -> str:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return str(path)


def event_lines(n: int) -> list[bytes]:
    return [record.value.encode() for record in generate(n, seed=3).records]


def test_every_line_is_accounted_for_by_number_and_reason(tmp_path, monkeypatch):
    events = event_lines(6)
    big = b'{"pad": "' + b"x" * 1_200_000 + b'"}'
    lines = [events[0], b"", NOT_UTF8, events[1], big, events[2], events[3], events[4], events[5]]
    fake = FakeProducer(
        errors={events[2]: KafkaError._MSG_TIMED_OUT},
        refuse={events[3]: KafkaError.MSG_SIZE_TOO_LARGE, events[4]: KafkaError._UNKNOWN_TOPIC},
        full_once=True,
    )
    report = produce.produce_file(fake_pipeline(fake, monkeypatch), write_lines(tmp_path, lines), show_progress=False)
    assert (report.lines, report.skipped, report.sent, report.delivered, report.failed) == (9, 1, 5, 4, 4)
    assert [value for _, value in fake.written] == [events[0], NOT_UTF8, events[1], events[5]]
    assert fake.written[0][0] == json.loads(events[0])["user_id"]
    too_large = report.failures[produce.TOO_LARGE]
    assert too_large.shown == ["5 (1,200,011 bytes)", f"7 ({len(events[3]):,} bytes with its key)"]
    assert report.failures["not delivered: Local: Message timed out"].shown == ["6"]
    assert [str(g) for g in report.notes.values()] == [f"line 3: {produce.NOT_UTF8}"]
    assert not report.ok
    summary = report.summary()
    assert summary[0].startswith("9 lines: 5 sent, 4 delivered, 4 failed, 1 skipped (blank) to ns_clickstream")
    assert f"failed: lines 5 (1,200,011 bytes), {too_large.shown[1]}: {produce.TOO_LARGE}" in summary
    assert any(line.startswith("failed: line 8: refused by the producer: ") for line in summary)


def test_lines_still_unacknowledged_at_the_end_fail_by_number(tmp_path, monkeypatch):
    fake = FakeProducer(acknowledge=False)
    monkeypatch.setattr(produce, "FLUSH_TIMEOUT", 0.01)
    report = produce.produce_file(
        fake_pipeline(fake, monkeypatch), write_lines(tmp_path, event_lines(3)), show_progress=False
    )
    assert fake.purged
    assert (report.sent, report.delivered, report.failed) == (3, 0, 3)
    [group] = report.failures.values()
    assert group.count == 3
    assert sorted(group.shown) == ["1", "2", "3"]
    assert "not acknowledged" in group.reason and "127.0.0.1:9092" in group.reason


def test_the_cli_prints_a_summary_and_exits_1_when_a_line_failed(tmp_path, monkeypatch):
    events = event_lines(3)
    path = write_lines(tmp_path, [events[0], NOT_UTF8, b'{"pad": "' + b"x" * 1_200_000 + b'"}', events[1], events[2]])
    fake = FakeProducer()
    monkeypatch.setattr(pipeline_module, "Pipeline", lambda settings: fake_pipeline(fake, monkeypatch))
    result = CliRunner().invoke(main, ["produce", "--file", path])
    assert result.exit_code == 1, result.output
    assert "5 lines: 4 sent, 4 delivered, 1 failed" in result.output
    assert f"failed: line 3 (1,200,011 bytes): {produce.TOO_LARGE}" in result.output
    assert f"note: line 2: {produce.NOT_UTF8}" in result.output
    assert "Traceback" not in result.output
    assert len(fake.written) == 4


def test_the_cli_exits_0_when_every_line_was_delivered(tmp_path, monkeypatch):
    fake = FakeProducer()
    monkeypatch.setattr(pipeline_module, "Pipeline", lambda settings: fake_pipeline(fake, monkeypatch))
    result = CliRunner().invoke(main, ["produce", "--file", write_lines(tmp_path, event_lines(4))])
    assert result.exit_code == 0, result.output
    assert "4 lines: 4 sent, 4 delivered, 0 failed, 0 skipped" in result.output


def test_ctrl_c_flushes_what_was_sent_reports_it_and_exits_130(tmp_path, monkeypatch):
    events = event_lines(4)
    fake = FakeProducer(interrupt_at=events[2])
    monkeypatch.setattr(pipeline_module, "Pipeline", lambda settings: fake_pipeline(fake, monkeypatch))
    started = time.monotonic()
    result = CliRunner().invoke(main, ["produce", "--file", write_lines(tmp_path, events)])
    assert result.exit_code == 130, result.output
    assert "4 lines" not in result.output
    assert "3 lines: 2 sent, 2 delivered, 0 failed" in result.output
    assert "interrupted after line 3" in result.output
    assert [value for _, value in fake.written] == events[:2]
    assert "Traceback" not in result.output
    assert time.monotonic() - started < 10


class DiskFullAfter:
    """Kafka's disk as the guard sees it: room for the first ``looks`` looks, then full."""

    def __init__(self, looks: int):
        self.looks = looks

    def refusal(self):
        self.looks -= 1
        return "the disk of Kafka's data has 10 MiB free" if self.looks < 0 else None


def test_a_file_stops_at_the_disk_refusal_and_its_report_says_from_which_line(tmp_path, monkeypatch):
    fake = FakeProducer()
    pipeline = fake_pipeline(fake, monkeypatch)
    monkeypatch.setattr(produce.disk, "guard", lambda settings: DiskFullAfter(looks=1))
    events = event_lines(produce.DISK_CHECK_EVERY + 5)
    report = produce.produce_file(pipeline, write_lines(tmp_path, events), show_progress=False)
    # Looked before the first line and again before line DISK_CHECK_EVERY + 1: full by then.
    assert [value for _, value in fake.written] == events[: produce.DISK_CHECK_EVERY]
    assert not report.ok
    assert report.stopped == (
        f"the disk of Kafka's data has 10 MiB free; the lines from {produce.DISK_CHECK_EVERY + 1} on were not sent"
    )
