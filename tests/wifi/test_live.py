"""The live Wi-Fi source without radio hardware.

The far end of the wire is faked, never our own logic: a socket that plays a pcap back (the
bytes a monitor interface would deliver), and fake ``iw``/``ip`` executables on PATH that log
their calls and fail the way nl80211 does. Everything after the socket is the real code.
"""

from __future__ import annotations

import errno
import operator
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.observations import SensorStatus
from scanner.sources.wifi import build, build_source
from scanner.sources.wifi.channels import parse_plan
from scanner.sources.wifi.constants import BPF_FILTER, IwErrorClass, classify_message
from scanner.sources.wifi.dot11 import parse_frame
from scanner.sources.wifi.errors import ChannelPlanError, MonitorError
from scanner.sources.wifi.hopper import ChannelHopper
from scanner.sources.wifi.live import WifiSource, wait_until
from scanner.sources.wifi.monitor import ensure_monitor, set_channel
from scanner.sources.wifi.options import WifiOptions
from scanner.sources.wifi.pcapfile import read_records
from scanner.sources.wifi.recorder import PcapWriter
from scanner.sources.wifi.replay import read_frames
from tests.helpers.sinks import Collector

FAKE_IW = r"""#!/bin/sh
# Fake iw: logs every call; fails like nl80211 when told to by files in its directory.
dir=$(dirname "$0")
echo "iw $*" >> "$dir/calls.log"
if [ "$2" = "nosuch0" ]; then echo "command failed: No such device (-19)" >&2; exit 237; fi
case "$3" in
  info)
    if [ -f "$dir/monitor" ]; then t=monitor; else t=managed; fi
    printf 'Interface %s\n\tifindex 1\n\ttype %s\n' "$2" "$t"; exit 0;;
  set)
    if [ "$4" = "type" ]; then
      if [ -f "$dir/fail_monitor" ]; then cat "$dir/fail_monitor" >&2; exit 161; fi
      touch "$dir/monitor"; exit 0
    fi
    if [ "$4" = "channel" ]; then
      for bad in $(cat "$dir/bad_channels" 2>/dev/null); do
        if [ "$5" = "$bad" ]; then echo "command failed: Invalid argument (-22)" >&2; exit 234; fi
      done
      exit 0
    fi;;
esac
exit 0
"""
FAKE_IP = r"""#!/bin/sh
dir=$(dirname "$0")
echo "ip $*" >> "$dir/calls.log"
exit 0
"""


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("iw", FAKE_IW), ("ip", FAKE_IP)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def _calls(bin_dir: Path) -> list[str]:
    log = bin_dir / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


class PcapSocket:
    """The far end: a monitor socket delivering a recording's frames, then an optional error."""

    def __init__(self, path: Path, fail_with: int | None = None) -> None:
        self._records = [(data, ts) for ts, _lt, data in read_records(path)]
        self._fail_with = fail_with
        self.closed = threading.Event()

    def recv_frame(self) -> tuple[bytes, float | None] | None:
        if self.closed.is_set():
            raise OSError(errno.EBADF, "socket closed")
        if self._records:
            return self._records.pop(0)
        if self._fail_with is not None:
            raise OSError(self._fail_with, os.strerror(self._fail_with))
        time.sleep(0.005)
        return None

    @property
    def exhausted(self) -> bool:
        return not self._records

    def close(self) -> None:
        self.closed.set()


def _source(
    sink: Collector,
    factory: Callable[[str, str], PcapSocket],
    iface: str = "lo",
    **section: object,
) -> WifiSource:
    options = WifiOptions.from_mapping({"interface": iface, "dwell_ms": 5, **section})
    return WifiSource(options, sink, socket_factory=factory, linktype_of=lambda _iface: 127)


def test_live_path_delivers_what_replay_reads(fake_tools: Path, shared_data: Path) -> None:
    path = shared_data / "wifi" / "probing-patterns" / "iPhone11-C_anonymized.pcap"
    sockets: list[PcapSocket] = []

    def factory(_iface: str, bpf: str) -> PcapSocket:
        assert bpf == BPF_FILTER
        sockets.append(PcapSocket(path))
        return sockets[-1]

    sink = Collector()
    source = _source(sink, factory)
    source.start()
    try:
        expected = list(read_frames(path))
        assert wait_until(lambda: len(sink.frames()) >= len(expected), 10.0)
    finally:
        source.stop()
    got = sink.frames()
    strip = [(f.ts, f.mac, f.seq, f.rssi_dbm, f.freq_mhz, f.ssid, f.fingerprint) for f in got]
    assert strip == [
        (f.ts, f.mac, f.seq, f.rssi_dbm, f.freq_mhz, f.ssid, f.fingerprint) for f in expected
    ]
    assert "ok" in sink.states() and sink.states()[-1] == "stopped"
    calls = _calls(fake_tools)
    assert "iw dev lo set type monitor" in calls
    assert calls.index("ip link set lo down") < calls.index("iw dev lo set type monitor")
    assert source.counters["captured"] == len(expected)


def test_record_path_writes_what_was_captured(
    fake_tools: Path, shared_data: Path, tmp_path: Path
) -> None:
    path = shared_data / "wifi" / "probing-patterns" / "iPhoneXR-A_anonymized.pcap"
    sock = PcapSocket(path)
    sink = Collector()
    out = tmp_path / "rec.pcap"
    options = WifiOptions.from_mapping({"interface": "lo", "hop": False})
    source = build_source({"interface": "lo", "hop": False}, sink, record_path=str(out))
    assert source.wifi_options.record_path == str(out) and options.record_path is None
    source._socket_factory = lambda _i, _b: sock
    source._linktype_of = lambda _iface: 127
    source.start()
    try:
        assert wait_until(lambda: sock.exhausted and source._handoff.qsize() == 0, 10.0)
    finally:
        source.stop()
    assert [d for _ts, _lt, d in read_records(out)] == [d for _ts, _lt, d in read_records(path)]


def test_hopper_drops_channels_that_fail(fake_tools: Path) -> None:
    (fake_tools / "bad_channels").write_text("13 40")
    counters: Counter[str] = Counter()
    fatal: list[MonitorError] = []
    plan = parse_plan(["1:2", "13", "6", "40", "11"], dwell_ms=5)
    hopper = ChannelHopper("lo", plan, set_channel, counters, fatal.append)
    hopper.start()
    try:
        assert wait_until(lambda: counters["channel_tunes"] >= 12, 10.0)
    finally:
        hopper.stop()
    assert sorted(hopper.dropped) == [13, 40]
    assert [c.channel for c in hopper.plan] == [1, 6, 11]
    tuned = [c.split()[-1] for c in _calls(fake_tools) if " set channel " in c]
    assert tuned.count("13") == 1 and tuned.count("40") == 1
    assert {"1", "6", "11"} <= set(tuned[-6:])
    assert not fatal


def test_hopper_dwell_follows_weights() -> None:
    plan = parse_plan(["1:3", "6", "11"], dwell_ms=100)
    # pytest.approx compares equal to a float, which mypy's overlap check cannot know.
    assert [(c.channel, c.freq_mhz, c.dwell_s) for c in plan] == [  # type: ignore[comparison-overlap]
        (1, 2412, pytest.approx(0.3)),
        (6, 2437, pytest.approx(0.1)),
        (11, 2462, pytest.approx(0.1)),
    ]
    for bad in (["0"], ["6", "6"], ["6:0"], ["x"], []):
        with pytest.raises(ChannelPlanError):
            parse_plan(bad, 100)


def test_all_channels_refused_is_a_fault(fake_tools: Path) -> None:
    (fake_tools / "bad_channels").write_text("1 6 11")
    sink = Collector()
    source = _source(sink, lambda _i, _b: PcapSocket(Path("/dev/null")))
    source.start()
    try:
        assert wait_until(lambda: source.state == "fault", 5.0)
        assert "no channel of the plan could be tuned" in source.message
    finally:
        source.stop()


def test_adapter_without_monitor_mode(fake_tools: Path) -> None:
    (fake_tools / "fail_monitor").write_text("command failed: Operation not supported (-95)\n")
    sink = Collector()
    opened: list[str] = []
    # Never called (the adapter refuses monitor mode before any socket): it records, returns None.
    source = _source(sink, lambda i, _b: opened.append(i))  # type: ignore[arg-type, return-value]
    source.start()
    try:
        assert wait_until(lambda: source.state == "fault", 5.0)
        time.sleep(0.2)
    finally:
        source.stop()
    assert "cannot do monitor mode" in source.message or "cannot do monitor mode" in str(
        [e.message for e in sink.events if isinstance(e, SensorStatus)]
    )
    assert source.last_error == IwErrorClass.NO_MONITOR
    assert source.counters["restarts"] == 0  # retrying cannot help
    assert opened == []


def test_busy_interface_and_missing_interface_messages(fake_tools: Path) -> None:
    (fake_tools / "fail_monitor").write_text("command failed: Device or resource busy (-16)\n")
    with pytest.raises(MonitorError) as busy:
        ensure_monitor("lo")
    assert busy.value.cls == IwErrorClass.BUSY
    assert "NetworkManager" in str(busy.value)
    with pytest.raises(MonitorError) as missing:
        ensure_monitor("nosuch0")
    assert missing.value.cls == IwErrorClass.NO_INTERFACE
    assert "plugged in" in str(missing.value)


def test_missing_iw_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MonitorError) as exc:
        set_channel("lo", 6)
    assert exc.value.cls == IwErrorClass.NO_TOOL


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("command failed: Operation not supported (-95)", IwErrorClass.NO_MONITOR),
        ("command failed: No such device (-19)", IwErrorClass.NO_INTERFACE),
        ('Cannot find device "wlan9"', IwErrorClass.NO_INTERFACE),
        ("command failed: Device or resource busy (-16)", IwErrorClass.BUSY),
        ("command failed: Operation not permitted (-1)", IwErrorClass.PERMISSION),
        ("command failed: Invalid argument (-22)", IwErrorClass.BAD_CHANNEL),
        ("something else entirely", IwErrorClass.UNKNOWN),
    ],
)
def test_error_table(message: str, cls: IwErrorClass) -> None:
    assert classify_message(message) == cls


def test_interface_vanishing_is_a_fault_then_recovers(fake_tools: Path) -> None:
    frames = [
        build.radiotap() + build.probe_request(f"02:00:00:00:00:{i:02x}", i, b"") for i in range(3)
    ]
    first = fake_tools.parent / "first.pcap"
    with PcapWriter(first) as writer:
        for i, frame in enumerate(frames):
            writer.write(1_764_000_000.0 + i, frame)
    sockets: list[PcapSocket] = []

    def factory(_iface: str, _bpf: str) -> PcapSocket:
        # The first socket loses its interface after three frames; the reopened one works.
        sockets.append(PcapSocket(first, fail_with=errno.ENETDOWN if not sockets else None))
        return sockets[-1]

    sink = Collector()
    source = _source(sink, factory)
    source.start()
    try:
        assert wait_until(lambda: len(sockets) >= 2 and source.state == "ok", 10.0)
        assert wait_until(lambda: len(sink.frames()) == 6, 5.0)
    finally:
        source.stop()
    states = sink.states()
    assert states[:2] == ["starting", "ok"]
    assert "fault" in states and states.index("fault") < len(states) - 2
    faults = [e for e in sink.events if isinstance(e, SensorStatus) and e.state == "fault"]
    assert "interface vanished" in faults[0].message
    assert source.counters["restarts"] == 1


def test_full_queue_is_a_counted_drop() -> None:
    sink = Collector()
    source = WifiSource(WifiOptions.from_mapping({"queue_size": 2}), sink)
    frame = build.radiotap() + build.probe_request("02:00:00:00:00:01", 1, b"")
    results = [source.handle_raw(frame, 127, 1.0, 1.0) for _ in range(5)]
    assert results == [True, True, False, False, False]
    assert source.counters["dropped_queue_full"] == 3
    assert source.handle_raw(b"\x00", 127, 1.0, 1.0) is False
    assert source.counters["radiotap_short"] == 1


def test_options_from_mapping() -> None:
    opts = WifiOptions.from_mapping(
        {"interface": "wlan2", "channels": ["1", "6:3"], "include_5ghz": True, "dwell_ms": 100}
    )
    assert [c.channel for c in opts.plan][:2] == [1, 6]
    assert 36 in [c.channel for c in opts.plan]
    assert opts.sensor == "wifi" and opts.queue_size == 4096
    for bad in (
        {"bogus": 1},
        {"channels": ["500"]},
        {"interface": "a/b"},
        {"queue_size": 0},
        {"channels": "1,6"},
    ):
        with pytest.raises(ValueError):
            WifiOptions.from_mapping(bad)


# -- the kernel filter ------------------------------------------------------------------------


_ALU: dict[int, Callable[[int, int], int]] = {
    0x00: operator.add,
    0x10: operator.sub,
    0x20: operator.mul,
    0x30: lambda a, b: a // b if b else 0,
    0x40: operator.or_,
    0x50: operator.and_,
    0x60: operator.lshift,
    0x70: operator.rshift,
    0x80: lambda a, _b: -a,
}


def _run_bpf(program: list[tuple[int, int, int, int]], pkt: bytes) -> int:
    """A small classic-BPF interpreter (the kernel's semantics) to run the compiled filter."""
    a = x = 0
    mem = [0] * 16
    pc = 0
    n = len(pkt)

    def load(offset: int, size: int) -> int | None:
        if offset < 0 or offset + size > n:
            return None
        return int.from_bytes(pkt[offset : offset + size], "big")

    while True:
        code, jt, jf, k = program[pc]
        k &= 0xFFFFFFFF
        cls = code & 0x07
        pc += 1
        if cls in (0x00, 0x01):  # LD / LDX
            mode, size = code & 0xE0, {0x00: 4, 0x08: 2, 0x10: 1}[code & 0x18]
            value: int | None
            if mode == 0x00:
                value = k
            elif mode == 0x20:
                value = load(k, size)
            elif mode == 0x40:
                value = load(x + k, size)
            elif mode == 0x60:
                value = mem[k]
            elif mode == 0x80:
                value = n
            elif mode == 0xA0 and cls == 0x01:  # MSH
                byte = load(k, 1)
                value = None if byte is None else (byte & 0x0F) * 4
            else:
                raise AssertionError(f"unhandled load {code:#x}")
            if value is None:
                return 0
            if cls == 0x00:
                a = value
            else:
                x = value
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            operand = x if code & 0x08 else k
            op = code & 0xF0
            a = _ALU[code & 0xF0](a, operand) & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            operand = x if code & 0x08 else k
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            taken = {
                0x10: a == operand,
                0x20: a > operand,
                0x30: a >= operand,
                0x40: bool(a & operand),
            }[op]
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return a if code & 0x10 else k
        elif cls == 0x07:  # MISC
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x


def _compiled(linktype: int) -> list[tuple[int, int, int, int]]:
    common = pytest.importorskip("scapy.arch.common")
    prog = common.compile_filter(BPF_FILTER, linktype=linktype)
    return [
        (prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf, prog.bf_insns[i].k)
        for i in range(prog.bf_len)
    ]


def test_bpf_filter_compiles_and_matches_the_parser(shared_data: Path) -> None:
    programs = {127: _compiled(127), 105: _compiled(105)}
    not_used = ("skipped_mgmt", "skipped_ctrl", "skipped_data_not_to_ds", "wds")
    totals: Counter[str] = Counter()
    for path in sorted((shared_data / "wifi").rglob("*.*ap")):
        if path.name == "wpa.cap":
            continue
        for ts, linktype, data in read_records(path):
            counters: Counter[str] = Counter()
            kept = parse_frame(data, linktype, ts, ts, counters) is not None
            passed = _run_bpf(programs[linktype], data) > 0
            totals["records"] += 1
            totals["passed"] += passed
            # Everything the parser keeps passes the kernel filter ...
            assert passed or not kept, (path.name, data.hex())
            # ... and what passes but is not kept is damage, not a kind of frame we do not use.
            if passed and not kept:
                assert not any(counters[k] for k in not_used), (path.name, dict(counters))
    print(f"bpf: {dict(totals)}")
    assert totals["passed"] < totals["records"]


# -- the scapy socket itself, on the loopback interface ---------------------------------------


def test_scapy_listen_socket_on_loopback() -> None:
    # The real socket class on "lo" (no monitor interface here): a kernel filter for UDP to one
    # port, a datagram sent to it, and the poll timeout when nothing comes. Needs CAP_NET_RAW.
    import socket

    from scanner.sources.wifi.live import ScapyListenSocket

    port = 47_000 + os.getpid() % 1000
    try:
        sock = ScapyListenSocket("lo", f"udp and dst port {port}")
    except (PermissionError, OSError) as exc:
        pytest.skip(f"raw sockets not permitted here: {exc}")
    try:
        assert sock.recv_frame() is None  # nothing yet: returns after the poll interval
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"checkpoint-probe", ("127.0.0.1", port))
        got = None
        deadline = time.monotonic() + 5
        while got is None and time.monotonic() < deadline:
            got = sock.recv_frame()
        assert got is not None
        data, ts = got
        assert data.endswith(b"checkpoint-probe")
        assert ts is None or abs(ts - time.time()) < 60
    finally:
        sock.close()


@pytest.mark.hardware
def test_real_monitor_interface() -> None:
    # CHECKPOINT_HARDWARE=1 CHECKPOINT_WIFI_IFACE=mon0: frames arrive from the air.
    iface = os.environ.get("CHECKPOINT_WIFI_IFACE", "mon0")
    sink = Collector()
    source = build_source({"interface": iface}, sink)
    source.start()
    try:
        assert wait_until(lambda: len(sink.frames()) > 0, 60.0), source.message
    finally:
        source.stop()


def test_bad_filter_is_a_fault_without_retry() -> None:
    from scanner.sources.wifi.live import ScapyListenSocket

    try:
        ScapyListenSocket("lo", "udp").close()
    except (PermissionError, OSError) as exc:
        pytest.skip(f"raw sockets not permitted here: {exc}")
    sink = Collector()
    options = WifiOptions.from_mapping(
        {"interface": "lo", "hop": False, "setup_monitor": False, "bpf": "this is not a filter"}
    )
    source = WifiSource(options, sink, linktype_of=lambda _iface: 127)
    source.start()
    try:
        assert wait_until(lambda: source.state == "fault", 5.0)
        time.sleep(0.1)
    finally:
        source.stop()
    assert source.last_error == IwErrorClass.BAD_FILTER
    assert "cannot open the capture socket" in next(
        e.message for e in sink.events if isinstance(e, SensorStatus) and e.state == "fault"
    )
    assert source.counters["restarts"] == 0


def test_silence_watchdog_with_injected_clock(fake_tools: Path, tmp_path: Path) -> None:
    from scanner.clock import ManualClock

    one = tmp_path / "one.pcap"
    with PcapWriter(one) as writer:
        writer.write(1.0, build.radiotap() + build.probe_request("02:00:00:00:00:01", 1, b""))
    clock = ManualClock()
    sink = Collector()
    options = WifiOptions.from_mapping(
        {"interface": "lo", "hop": False, "status_interval_s": 1, "silence_after_s": 90}
    )
    source = WifiSource(
        options,
        sink,
        clock,
        socket_factory=lambda _i, _b: PcapSocket(one),
        linktype_of=lambda _iface: 127,
    )
    source.start()
    try:
        assert wait_until(lambda: len(sink.frames()) == 1 and source.state == "ok", 5.0)
        clock.advance(91.0)  # a 90-second silence, in no time
        assert wait_until(lambda: source.state == "degraded", 5.0)
        assert source.message.startswith("no frames for 91")
    finally:
        source.stop()
    statuses = [e for e in sink.events if isinstance(e, SensorStatus)]
    assert any(s.detail.get("interface") == "lo" for s in statuses)
