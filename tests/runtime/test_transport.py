"""The Unix-socket transport between capture daemons and the core, over real sockets."""

from __future__ import annotations

import json
import random
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from scanner.config import ConfigError
from scanner.observations import Radio, SensorState, SensorStatus, SourceEvent, WifiFrame
from scanner.runtime.transport import (
    MAX_PACKET_BYTES,
    EventQueue,
    InProcessTransport,
    SocketReceiver,
    SocketSender,
    TransportOptions,
)
from scanner.runtime.transport.codec import FrameError, InputsChanged, decode_line, encode_line
from tests.helpers.daemons import wait_for as poll
from tests.runtime.runtime_support import sample_records


@pytest.fixture
def sock_path() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="cp-", dir="/tmp"))
    yield d / "core.sock"
    shutil.rmtree(d, ignore_errors=True)


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    return poll(cond, timeout, every=0.01)


def drain(events: EventQueue, n: int, timeout: float = 10.0) -> list[SourceEvent]:
    out: list[SourceEvent] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        ev = events.get(timeout=0.05)
        if ev is not None and not isinstance(ev, InputsChanged):
            out.append(ev)
    return out


def test_codec_round_trips_every_record_type() -> None:
    for record in sample_records(3):
        line = encode_line(record)
        assert b"\n" not in line
        assert json.loads(line)["v"] == 1
        assert decode_line(line) == record


def test_codec_rejects_wrong_version_type_and_fields() -> None:
    good = json.loads(encode_line(sample_records()[0]))
    cases = [
        {**good, "v": 2},
        {**good, "t": "lte"},
        {**good, "rssi_dbm": "loud"},
        {**good, "random_mac": 1},
        {**good, "ts": None},
        {k: v for k, v in good.items() if k != "mac"},
        [1, 2, 3],
    ]
    for case in cases:
        with pytest.raises(FrameError):
            decode_line(json.dumps(case).encode())
    for raw in (b"", b"\xff\xfe", b"{", b"[" * 100_000, b"NaN"):
        with pytest.raises(FrameError):
            decode_line(raw)


def test_codec_fuzzed_bytes_only_ever_raise_frame_error() -> None:
    seed = 20261125
    rng = random.Random(seed)
    base = [encode_line(r) for r in sample_records()]
    for _ in range(3000):
        line = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(line))
            line[pos] = rng.randrange(256)
        try:
            decode_line(bytes(line))
        except FrameError:
            pass
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"seed {seed}: {bytes(line)!r} raised {exc!r}")


def test_a_health_report_crosses_with_its_state_as_the_enum() -> None:
    status = SensorStatus(1.0, 2.0, "ble", Radio.BLE, SensorState.DEGRADED, "no frames for 91 s")
    decoded = decode_line(encode_line(status))
    assert isinstance(decoded, SensorStatus)
    assert decoded.state is SensorState.DEGRADED
    line = json.loads(encode_line(status))
    assert line["state"] == "degraded"  # on the wire, the state's name
    with pytest.raises(FrameError, match="state"):
        decode_line(json.dumps({**line, "state": "sleepy"}).encode())


def test_a_state_given_by_name_becomes_the_member_and_a_wrong_one_is_refused() -> None:
    # A name, as a decoded line or an older caller gives it.
    by_name = SensorStatus(1.0, 2.0, "wifi", Radio.WIFI, "ok")  # type: ignore[arg-type]  # the name on purpose
    assert by_name.state is SensorState.OK
    with pytest.raises(ValueError):
        SensorStatus(1.0, 2.0, "wifi", Radio.WIFI, "sleepy")  # type: ignore[arg-type]  # not a state, on purpose


def test_socket_round_trip_of_every_record_type(sock_path: Path) -> None:
    events = EventQueue(1000)
    receiver = SocketReceiver(sock_path, events)
    receiver.start()
    sender = SocketSender(sock_path, 1000)
    sender.start()
    try:
        sent = sample_records(1) + sample_records(2)
        for record in sent:
            sender.sink(record)
        got = drain(events, len(sent))
        assert got == sent
        assert receiver.counters["malformed_frames"] == 0
        # The sender counts a line once its send() returns, which can be after the core has
        # read it: wait for the count rather than race the sending thread.
        assert wait_for(lambda: sender.counters["sent"] == len(sent)), sender.counters
        assert oct(sock_path.stat().st_mode & 0o777) == oct(0o660)
    finally:
        sender.close()
        receiver.close()
    assert not sock_path.exists()


def test_several_capture_daemons_feed_one_core(sock_path: Path) -> None:
    events = EventQueue(10_000)
    receiver = SocketReceiver(sock_path, events)
    receiver.start()
    senders = [SocketSender(sock_path, 5000) for _ in range(3)]
    for s in senders:
        s.start()
    try:
        per = 1500
        for n, s in enumerate(senders):
            for i in range(per):
                s.sink(replace(sample_records(i)[0], sensor=f"wifi:{n}"))
        got = drain(events, 3 * per, timeout=20)
        assert len(got) == 3 * per
        by_sensor: dict[str, list[int]] = {}
        for ev in got:
            assert isinstance(ev, WifiFrame)
            by_sensor.setdefault(ev.sensor, []).append(ev.seq)
        # Each daemon's records arrive complete and in its own order.
        assert sorted(by_sensor) == ["wifi:0", "wifi:1", "wifi:2"]
        for seqs in by_sensor.values():
            assert seqs == [i % 4096 for i in range(per)]
        assert receiver.counters["connections"] == 3
        assert receiver.counters["packets"] < 3 * per  # records were batched
    finally:
        for s in senders:
            s.close()
        receiver.close()


def test_malformed_frames_are_counted_and_dropped(sock_path: Path) -> None:
    events = EventQueue(100)
    receiver = SocketReceiver(sock_path, events)
    receiver.start()
    good = sample_records()[4]
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    raw.connect(str(sock_path))
    try:
        raw.send(b"\x00\xff garbage")
        raw.send(b'{"v": 1, "t": "wifi"}')
        raw.send(json.dumps({**json.loads(encode_line(good)), "v": 7}).encode())
        raw.send(b"x" * (MAX_PACKET_BYTES + 5000))  # larger than any sender writes
        # One bad line inside a batch costs only that line.
        raw.send(encode_line(good) + b"\n{not json\n" + encode_line(good))
        got = drain(events, 2)
        assert got == [good, good]
        assert wait_for(lambda: receiver.counters["malformed_frames"] == 5)
        assert receiver.counters["records"] == 2
        assert events.get(timeout=0.2) is None
    finally:
        raw.close()
        receiver.close()


def test_core_restart_reconnects_and_counts_drops(sock_path: Path) -> None:
    events = EventQueue(10_000)
    receiver = SocketReceiver(sock_path, events)
    receiver.start()
    sender = SocketSender(sock_path, buffer_size=500)
    sender.start()
    frames = [sample_records(i)[0] for i in range(1500)]
    try:
        for f in frames[:100]:
            sender.sink(f)
        assert drain(events, 100) == frames[:100]
        assert sender.counters["connects"] == 1

        receiver.close()  # the core stops (systemd restarts it)
        for f in frames[100:1100]:  # 1000 records while it is down, buffer holds 500
            sender.sink(f)
        assert wait_for(lambda: not sender.connected)
        assert sender.counters["dropped_buffer_full"] == 500

        events2 = EventQueue(10_000)
        receiver2 = SocketReceiver(sock_path, events2)
        receiver2.start()
        try:
            assert wait_for(lambda: sender.counters["connects"] == 2)
            # The newest 500 survive the outage, in order, and nothing is duplicated.
            assert drain(events2, 500) == frames[600:1100]
            for f in frames[1100:]:
                sender.sink(f)
            assert drain(events2, 400) == frames[1100:]
            assert events2.get(timeout=0.2) is None
            assert sender.counters["sent"] == 100 + 500 + 400
            assert sender.counters["dropped_buffer_full"] == 500
        finally:
            sender.close()
            receiver2.close()
    finally:
        sender.close()


def test_sender_buffers_until_the_core_first_appears(sock_path: Path) -> None:
    sender = SocketSender(sock_path, buffer_size=50)
    sender.start()
    try:
        frames = [sample_records(i)[0] for i in range(80)]
        for f in frames:
            sender.sink(f)
        assert sender.counters["dropped_buffer_full"] == 30
        assert sender.counters["dropped_core_down"] == 30
        events = EventQueue(100)
        receiver = SocketReceiver(sock_path, events)
        receiver.start()
        try:
            assert drain(events, 50) == frames[30:]
        finally:
            receiver.close()
    finally:
        sender.close()


def test_stale_socket_file_is_replaced_but_a_live_core_is_not(sock_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stale.bind(str(sock_path))
    stale.close()  # file left behind, nobody listening (a killed core)
    events = EventQueue(10)
    receiver = SocketReceiver(sock_path, events)
    receiver.start()
    try:
        second = SocketReceiver(sock_path, EventQueue(10))
        with pytest.raises(OSError, match="another core"):
            second.start()
    finally:
        receiver.close()


def test_full_core_queue_is_a_counted_drop() -> None:
    events = EventQueue(3)
    transport = InProcessTransport(events)
    for r in sample_records():
        transport.sink(r)
    assert events.qsize() == 3
    assert transport.counters["dropped_queue_full"] == len(sample_records()) - 3


def test_the_queue_keeps_the_deepest_backlog_the_core_found() -> None:
    events = EventQueue(100)
    records = sample_records()
    for r in records:
        events.put(r)
    assert events.deepest == 0  # measured when the core comes for a batch
    assert events.get(timeout=0) is not None
    assert events.deepest == len(records)
    while events.get_nowait() is not None:
        pass
    events.put(records[0])
    assert events.get(timeout=0) is not None
    assert events.deepest == len(records)  # a high-water mark: a shallow batch keeps it


def test_transport_options_from_config(tmp_path: Path) -> None:
    opts = TransportOptions.from_mapping({}, tmp_path)
    assert opts.socket_path == tmp_path / "core.sock"
    opts = TransportOptions.from_mapping(
        {"socket": "/run/cp/x.sock", "queue_size": 10, "socket_mode": "0600"}, tmp_path
    )
    assert (opts.socket_path, opts.queue_size, opts.socket_mode) == (
        Path("/run/cp/x.sock"),
        10,
        0o600,
    )
    for bad in ({"queue_size": 0}, {"queue_size": "big"}, {"sockets": "x"}, {"socket_mode": "rw"}):
        with pytest.raises(ConfigError):
            TransportOptions.from_mapping(bad, tmp_path)


def test_a_stalled_core_costs_counted_drops_not_a_stuck_receiver(sock_path: Path) -> None:
    events = EventQueue(10)  # nobody reads it: the core is stalled
    receiver = SocketReceiver(sock_path, events)
    receiver.start()
    sender = SocketSender(sock_path, 10_000)
    sender.start()
    try:
        frames = [sample_records(i)[0] for i in range(300)]
        t0 = time.monotonic()
        for f in frames:
            sender.sink(f)
        assert wait_for(lambda: receiver.counters["records"] == 300, 10)
        # At most about one second of waiting per message, not per record.
        assert time.monotonic() - t0 < 8
        assert events.qsize() == 10
        assert events.counters["dropped_queue_full"] == 290
        assert [events.get_nowait() for _ in range(10)] == frames[:10]
    finally:
        sender.close()
        receiver.close()
