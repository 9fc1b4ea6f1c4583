"""A burst's IQ window crosses the daemon socket as raw bytes in a binary message of its own,
in order with the JSON records around it; a binary message whose lengths do not add up is
counted and dropped like any malformed frame."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from scanner.observations import SdrBurst, SourceEvent
from scanner.runtime.transport import EventQueue, SocketReceiver, SocketSender
from scanner.runtime.transport.codec import (
    BINARY_MARK,
    FrameError,
    InputsChanged,
    decode_binary,
    decode_line,
    encode_line,
    encode_message,
)
from tests.helpers.daemons import wait_for
from tests.runtime.runtime_support import sample_records

# Every byte value, newlines and NULs included, as samples hold them; the size of a real
# window (2.4 MS/s, 2 ms each side of a 577 us GSM burst, two bytes per sample).
IQ = bytes(range(256)) * 86
META = b'{"global": {"core:datatype": "cu8"}}\n'


@pytest.fixture
def sock_path() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="cp-", dir="/tmp"))
    yield d / "core.sock"
    shutil.rmtree(d, ignore_errors=True)


def _burst(n: int) -> SdrBurst:
    plain = next(r for r in sample_records(n) if isinstance(r, SdrBurst))
    return replace(plain, iq_meta=META, iq=IQ[n:] + IQ[:n])


def test_a_burst_with_iq_is_raw_bytes_not_hex() -> None:
    burst = _burst(3)
    message = encode_message(burst)
    assert message.startswith(BINARY_MARK)
    assert len(message) < len(IQ) + len(META) + 1024  # hex would double it
    back = decode_binary(message)
    assert back == burst and back.iq == burst.iq and back.iq_meta == META
    # The line form still decodes for a sender from before the binary message.
    line = decode_line(encode_line(burst))
    assert isinstance(line, SdrBurst) and line.iq == burst.iq


def test_records_without_iq_stay_json_lines() -> None:
    for record in sample_records(1):
        if not (isinstance(record, SdrBurst) and record.iq):
            assert encode_message(record) == encode_line(record)


def _header(burst: SdrBurst, **change: object) -> bytes:
    message = encode_message(burst)
    (length,) = struct.unpack_from(">I", message, 1)
    header = json.loads(message[5 : 5 + length])
    header.update(change)
    text = json.dumps(header).encode()
    return BINARY_MARK + struct.pack(">I", len(text)) + text + burst.iq_meta + burst.iq


@pytest.mark.parametrize(
    "bad",
    [
        lambda b: encode_message(b)[:-1],  # one byte short
        lambda b: encode_message(b) + b"\n",  # one byte over
        lambda b: _header(b, iq_len=-1),
        lambda b: _header(b, t="wifi"),
        lambda b: _header(b, v=9),
        lambda b: BINARY_MARK + struct.pack(">I", 10**6) + b"{}",
        lambda b: BINARY_MARK + b"\x00\x00",
    ],
)
def test_bad_binary_messages_raise_frame_error(bad: object) -> None:
    assert callable(bad)
    with pytest.raises(FrameError):
        decode_binary(bad(_burst(1)))


def _drain(events: EventQueue, n: int) -> list[SourceEvent]:
    out: list[SourceEvent] = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        event = events.get(timeout=0.05)
        if event is not None and not isinstance(event, InputsChanged):
            out.append(event)
    return out


def test_bursts_with_iq_cross_the_socket_in_order_with_other_records(sock_path: Path) -> None:
    events = EventQueue(1000)
    receiver = SocketReceiver(sock_path, events)
    receiver.start()
    sender = SocketSender(sock_path, 1000)
    sender.start()
    try:
        sent: list[SourceEvent] = []
        for n in range(1, 6):
            sent += sample_records(n)
            sent.append(_burst(n))
        for record in sent:
            sender.sink(record)
        got = _drain(events, len(sent))
        assert got == sent
        assert [g.iq for g in got if isinstance(g, SdrBurst)] == [
            s.iq for s in sent if isinstance(s, SdrBurst)
        ]
        assert receiver.counters["malformed_frames"] == 0
    finally:
        sender.close()
        receiver.close()


def test_a_malformed_binary_message_is_counted_and_dropped(sock_path: Path) -> None:
    events = EventQueue(100)
    receiver = SocketReceiver(sock_path, events)
    receiver.start()
    good = _burst(2)
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    raw.connect(str(sock_path))
    try:
        raw.send(encode_message(good)[:-7])
        raw.send(_header(good, t="ble"))
        raw.send(encode_message(good))
        got = _drain(events, 1)
        assert got == [good] and isinstance(got[0], SdrBurst) and got[0].iq == good.iq
        assert wait_for(lambda: receiver.counters["malformed_frames"] == 2, 10.0, every=0.01)
    finally:
        raw.close()
        receiver.close()
