"""The live SDR source against our rtl_tcp server and a fake librtlsdr: it survives and recovers."""

from __future__ import annotations

import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scanner.observations import SdrBurst, SensorStatus, SourceEvent
from scanner.sources.sdr.errors import CaptureError
from scanner.sources.sdr.live import SdrSource, build_source
from scanner.sources.sdr.options import SdrOptions
from scanner.sources.sdr.replay import read_bursts
from scanner.sources.sdr.rtltcp import RtlTcpClient
from scanner.sources.sdr.samples import quantise_cu8
from tests.fakes.rtl_tcp_server import FakeRtlTcpServer, synth_uplink

RATE = 1.0e6
HANDSET_HZ = 890.2e6


class Events:
    """A thread-safe sink that remembers everything."""

    def __init__(self) -> None:
        self.items: list[SourceEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: SourceEvent) -> None:
        with self._lock:
            self.items.append(event)

    def bursts(self) -> list[SdrBurst]:
        with self._lock:
            return [e for e in self.items if isinstance(e, SdrBurst)]

    def states(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(e.state, e.message) for e in self.items if isinstance(e, SensorStatus)]


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _section(port: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "transport": "rtl_tcp", "host": "127.0.0.1", "port": port, "rate": RATE,
        "centres_mhz": [890.0], "dwell_s": 0.2, "read_bytes": 16384, "stall_s": 0.5,
        "connect_timeout_s": 1.0, "backoff_scale": 0.2, "status_every_s": 0.2,
    }  # fmt: skip
    base.update(extra)
    return base


@pytest.fixture
def server() -> Iterator[FakeRtlTcpServer]:
    srv = FakeRtlTcpServer(synth_uplink([HANDSET_HZ]), speed=1.0).start()
    yield srv
    srv.stop()


@pytest.fixture
def events() -> Events:
    return Events()


def test_client_speaks_rtl_tcp(server: FakeRtlTcpServer) -> None:
    client = RtlTcpClient("127.0.0.1", server.port, 1.0, 1.0)
    info = client.open()
    assert (info.tuner, info.gain_count) == ("R820T", 29)
    client.set_sample_rate(RATE)
    client.set_center_freq(890e6)
    client.set_gain(33.8)
    client.set_freq_correction(-3)
    data = client.read(4096)
    assert data.size == 4096 and data.dtype == np.uint8
    assert wait_for(lambda: len(server.commands) >= 5)
    assert server.commands[:5] == [
        (0x02, 1_000_000),
        (0x01, 890_000_000),
        (0x03, 1),
        (0x04, 338),
        (0x05, 0xFFFFFFFD),
    ]
    client.close()


def test_client_refuses_a_peer_that_is_not_rtl_tcp() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"HTTP/1.1 400")
        time.sleep(0.2)
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    client = RtlTcpClient("127.0.0.1", listener.getsockname()[1], 1.0, 1.0)
    with pytest.raises(CaptureError) as info:
        client.open()
    assert info.value.failure.name == "protocol"
    assert "not an rtl_tcp server" in str(info.value)
    listener.close()


def test_bursts_flow_over_rtl_tcp(server: FakeRtlTcpServer, events: Events) -> None:
    src = build_source(_section(server.port), events)
    src.start()
    try:
        assert wait_for(lambda: len(events.bursts()) >= 20)
        assert src.state == "ok"
    finally:
        src.stop()
    bursts = events.bursts()
    assert all(b.band == "E-GSM-900 + LTE B8 UL" for b in bursts)
    assert abs(np.median([b.freq_mhz for b in bursts]) - HANDSET_HZ / 1e6) < 0.03
    durations = [b.t_end - b.ts for b in bursts]
    assert 450e-6 < float(np.median(durations)) < 650e-6
    # one burst per 4.615 ms TDMA frame, on the monotonic clock
    gaps = np.diff(sorted(b.mono for b in bursts))
    assert abs(float(np.median(gaps)) - 4.615e-3) < 0.2e-3
    assert (0x01, 890_000_000) in server.commands and (0x02, 1_000_000) in server.commands
    assert events.states()[-1][0] == "stopped"


def test_killed_server_is_survived_and_recovered(server: FakeRtlTcpServer, events: Events) -> None:
    src = build_source(_section(server.port), events)
    src.start()
    try:
        assert wait_for(lambda: src.state == "ok" and len(events.bursts()) > 3)
        server.stop()  # rtl_tcp killed: connection dropped, port closed
        assert wait_for(lambda: src.state == "fault")
        assert "rtl_tcp 127.0.0.1" in src.message and "is rtl_tcp running" in src.message
        detail = src.status().detail
        assert detail["failure"] in ("refused", "dropped")
        before = len(events.bursts())
        time.sleep(0.5)
        assert src.stopping is False and all(t.is_alive() for t in src._threads)
        server.accept_again()
        assert wait_for(lambda: src.state == "ok", timeout=15)
        assert wait_for(lambda: len(events.bursts()) > before + 5)
        assert src.counters["reconnects"] >= 1 and src.counters["recoveries"] >= 1
    finally:
        src.stop()


def test_stalled_stream_is_reported_and_recovers(server: FakeRtlTcpServer, events: Events) -> None:
    src = build_source(_section(server.port), events)
    src.start()
    try:
        assert wait_for(lambda: src.state == "ok")
        server.stall()
        assert wait_for(lambda: src.state == "degraded")
        assert "no IQ for 0.5 s" in src.message
        assert src.status().detail["failure"] == "stalled"
        server.resume()
        assert wait_for(lambda: src.state == "ok", timeout=15)
        assert src.counters["fail_stalled"] >= 1
    finally:
        src.stop()


def test_reconnects_back_off(server: FakeRtlTcpServer, events: Events) -> None:
    server.hang_up(True)  # accepts, then closes before the header
    src = build_source(_section(server.port, backoff_scale=0.1), events)
    src.start()
    try:
        assert wait_for(lambda: server.hangups >= 4, timeout=15)
        assert src.state in ("degraded", "fault")
        gaps = np.diff(server.connect_times[:4])
        assert gaps[2] > gaps[0] * 1.5  # the delay grows (0.05, 0.1, 0.2 s with jitter)
        server.hang_up(False)
        assert wait_for(lambda: src.state == "ok", timeout=15)
    finally:
        src.stop()


# -- USB through a fake librtlsdr (the library boundary) --------------------------------------
class _LibUSBError(IOError):
    def __init__(self, errno: int, msg: str = "") -> None:
        super().__init__(errno, msg)
        self.errno = errno
        self.msg = msg


class _Dongle:
    """The state of the fake USB bus: is the dongle plugged in, what does it stream."""

    def __init__(self) -> None:
        self.plugged = True
        self.flowing = threading.Event()  # cleared: reads hang (a wedged USB transfer)
        self.flowing.set()
        self.opens = 0
        self.iq = synth_uplink([HANDSET_HZ], seed=4)(890e6, RATE)
        self.pos = 0


def _fake_rtlsdr(dongle: _Dongle) -> types.ModuleType:
    mod = types.ModuleType("rtlsdr")

    class RtlSdr:
        def __init__(self, device_index: int = 0, serial_number: str | None = None) -> None:
            if not dongle.plugged:
                raise _LibUSBError(-1, f"Could not open SDR (device index = {device_index})")
            dongle.opens += 1
            self.freq = 0

        def get_gains(self) -> list[float]:
            return [0.0, 9.0, 20.7, 33.8, 49.6]

        def set_sample_rate(self, rate: int) -> None:
            pass

        def set_gain(self, gain: object) -> None:
            pass

        def set_freq_correction(self, ppm: int) -> None:
            pass

        def set_center_freq(self, hz: int) -> None:
            if hz > 1766e6:
                raise _LibUSBError(-2, f"Could not set center_freq to {hz} Hz")
            self.freq = hz

        def read_bytes(self, n: int) -> bytes:
            if not dongle.plugged:
                raise _LibUSBError(-4, f"Could not read {n} bytes")
            dongle.flowing.wait()
            time.sleep(n / 2 / RATE)
            buf = dongle.iq
            if dongle.pos + n > buf.size:
                dongle.pos = 0
            out = buf[dongle.pos : dongle.pos + n].tobytes()
            dongle.pos += n
            return out

        def close(self) -> None:
            pass

    # A stand-in module for the `rtlsdr` package: its attributes are ours to set.
    mod.RtlSdr = RtlSdr  # type: ignore[attr-defined]
    mod.LibUSBError = _LibUSBError  # type: ignore[attr-defined]
    return mod


def test_usb_dongle_that_disappears(monkeypatch: pytest.MonkeyPatch, events: Events) -> None:
    dongle = _Dongle()
    monkeypatch.setitem(sys.modules, "rtlsdr", _fake_rtlsdr(dongle))
    monkeypatch.setitem(sys.modules, "pyrtlsdrlib", types.ModuleType("pyrtlsdrlib"))
    section = _section(0, transport="usb", centres_mhz=[890.0, 2000.0])
    src = build_source(section, events)
    src.start()
    try:
        assert wait_for(lambda: len(events.bursts()) >= 5)

        def dropped() -> dict[str, str]:  # a probe the wait loop calls
            channels = src.status().detail["dropped_channels"]
            assert isinstance(channels, dict)
            return channels

        assert wait_for(lambda: "2000.000" in dropped())
        assert "center_freq" in dropped()["2000.000"] and "890.000" not in dropped()
        dongle.plugged = False
        assert wait_for(lambda: src.state == "fault")
        assert "unplug and replug the dongle" in src.message
        assert src.status().detail["failure"] == "dongle_gone"
        opens = dongle.opens
        time.sleep(0.6)
        assert dongle.opens == opens  # still unplugged: retries fail, nothing crashes
        dongle.plugged = True
        assert wait_for(lambda: src.state == "ok", timeout=15)
        n = len(events.bursts())
        assert wait_for(lambda: len(events.bursts()) > n + 3)
    finally:
        src.stop()


def test_missing_library_is_a_clear_fault(monkeypatch: pytest.MonkeyPatch, events: Events) -> None:
    monkeypatch.setitem(sys.modules, "rtlsdr", None)  # import fails as without librtlsdr
    src = build_source(_section(0, transport="usb"), events)
    src.start()
    try:
        assert wait_for(lambda: src.state == "fault")
        assert "pyrtlsdrlib" in src.message
    finally:
        src.stop()


def test_snippet_around_a_live_burst(
    server: FakeRtlTcpServer, events: Events, tmp_path: Path
) -> None:
    src = build_source(_section(server.port, snippet_keep_s=1.0), events)
    src.start()
    try:
        assert wait_for(lambda: len(events.bursts()) >= 8)
        burst = events.bursts()[-2]
        path = src.save_snippet(
            burst.mono, burst.mono + (burst.t_end - burst.ts), tmp_path, "alert-1"
        )
    finally:
        src.stop()
    assert path is not None and path.exists()
    found = list(read_bursts(path, Counter()))
    assert len(found) >= 1
    assert any(abs(b.freq_mhz - burst.freq_mhz) < 0.05 for b in found)


def test_each_live_burst_carries_the_iq_around_it(
    server: FakeRtlTcpServer, events: Events, tmp_path: Path
) -> None:
    src = build_source(_section(server.port, snippet_keep_s=1.0), events)
    src.start()
    try:
        assert wait_for(lambda: len(events.bursts()) >= 8)
    finally:
        src.stop()
    burst = events.bursts()[-2]
    assert burst.iq and burst.iq_meta
    # As the evidence keeps it: a SigMF pair the reader finds this burst in again.
    (tmp_path / "w.sigmf-meta").write_bytes(burst.iq_meta)
    (tmp_path / "w.sigmf-data").write_bytes(burst.iq)
    found = list(read_bursts(tmp_path / "w.sigmf-meta", Counter()))
    assert len(found) == 1
    assert abs(found[0].freq_mhz - burst.freq_mhz) < 0.05
    assert abs(found[0].ts - burst.ts) < 1e-3
    # Milliseconds of IQ, not the ring: 2 ms each side of a 577 us burst at 1 MS/s, cu8.
    assert len(burst.iq) < 2 * 1_000_000 * 0.006


def test_recording_while_capturing(
    server: FakeRtlTcpServer, events: Events, tmp_path: Path
) -> None:
    src = build_source(_section(server.port, record=str(tmp_path / "live")), events)
    src.start()
    try:
        assert wait_for(lambda: src.counters["dwells"] >= 3)
    finally:
        src.stop()
    live = len(events.bursts())
    replayed = list(read_bursts(tmp_path / "live.sigmf-meta", Counter()))
    import json

    meta = json.loads((tmp_path / "live.sigmf-meta").read_text())
    assert len(meta["captures"]) >= 3
    assert len(meta["annotations"]) == live
    # The recording replays to the same bursts through the same detector (the tail of the
    # last, unfinished dwell may differ by one).
    assert abs(len(replayed) - live) <= 2


def test_options_from_mapping() -> None:
    opts = SdrOptions.from_mapping(
        {
            "transport": "rtl_tcp",
            "host": "mast",
            "gain_db": 20.7,
            "region": "ua-ru",
            "detector": {"pfa": 1e-5},
        }
    )
    assert (opts.host, opts.gain_db, opts.detector.pfa, opts.sensor) == ("mast", 20.7, 1e-5, "sdr")
    assert any(t.band == "LTE B31 UL" for t in opts.tunings())
    assert SdrOptions.from_mapping({}).gain_db is None
    for bad in (
        {"transport": "serial"},
        {"region": "mars"},
        {"rate": 10e6},
        {"colour": 1},
        {"port": "x"},
        {"bands": ["LTE B99 UL"]},
    ):
        with pytest.raises(ValueError, match=r"\[sdr\]|unknown"):
            SdrOptions.from_mapping(bad)
    src = SdrSource(SdrOptions.from_mapping({"transport": "rtl_tcp"}), Events())
    assert src.status().detail["gain_mode"] == "auto"


def test_downlink_survey_weights_the_local_cell(events: Events) -> None:
    uplink = synth_uplink([HANDSET_HZ])
    cache: dict[float, np.ndarray] = {}

    def iq(centre: float, rate: float) -> np.ndarray:
        if not 925e6 <= centre <= 960e6:
            return uplink(centre, rate)
        if centre not in cache:
            from scanner.sources.sdr import synth

            rng = np.random.default_rng(int(centre) % 1000)
            n = int(0.1 * rate)
            x = synth.receiver_noise(rng, n, -35.0)
            off = 945.4e6 - centre
            if abs(off) < 0.4 * rate:  # a base station's BCCH carrier
                x += (0.05 * np.exp(2j * np.pi * off * np.arange(n) / rate)).astype(np.complex64)
            cache[centre] = quantise_cu8(x)
        return cache[centre]

    srv = FakeRtlTcpServer(iq, speed=5.0).start()
    section = _section(
        srv.port, centres_mhz=[], bands=["E-GSM-900 UL"], survey_downlink=True, survey_dwell_s=0.03
    )
    src = build_source(section, events)
    src.start()
    try:
        assert wait_for(lambda: src.counters["surveys"] >= 1, timeout=30)
        detail = src.status().detail
        assert detail["local_cells_mhz"] == [pytest.approx(945.4, abs=0.01)]
        weights = {t.centre_hz: src.scheduler.weight(t) for t in src.scheduler.tunings}
        paired = min(weights, key=lambda c: abs(c - 900.4e6))
        assert weights[paired] > 1.0 and sorted(weights.values())[-2] == 1.0
    finally:
        src.stop()
        srv.stop()


def test_quiet_band_is_not_silence(events: Events) -> None:
    srv = FakeRtlTcpServer(synth_uplink([]), speed=1.0).start()  # noise only: no handsets
    src = build_source(_section(srv.port, silence_after_s=0.3), events)
    src.start()
    try:
        assert wait_for(lambda: src.state == "ok")
        time.sleep(1.0)
        assert src.state == "ok" and not events.bursts()
        detail = src.status().detail
        assert detail["noise_floor_dbfs"] is not None and -40 < detail["noise_floor_dbfs"] < -30
        assert detail["overload"] is False
    finally:
        src.stop()
        srv.stop()


def test_usb_read_that_hangs_is_reported(monkeypatch: pytest.MonkeyPatch, events: Events) -> None:
    dongle = _Dongle()
    monkeypatch.setitem(sys.modules, "rtlsdr", _fake_rtlsdr(dongle))
    monkeypatch.setitem(sys.modules, "pyrtlsdrlib", types.ModuleType("pyrtlsdrlib"))
    src = build_source(_section(0, transport="usb", stall_s=0.3), events)
    src.start()
    try:
        assert wait_for(lambda: src.state == "ok")
        dongle.flowing.clear()
        assert wait_for(lambda: src.state == "fault")
        assert "the read hangs" in src.message and "replug" in src.message
        dongle.flowing.set()
        assert wait_for(lambda: src.state == "ok")
        assert src.counters["hung_reads"] >= 1 and src.counters["recoveries"] >= 1
    finally:
        dongle.flowing.set()
        src.stop()


def test_burst_outside_every_uplink_band_is_an_other_emitter(events: Events) -> None:
    """A dwell at the top of E-GSM-900 also hears the 915-925 MHz gap: never delivered."""
    inside, outside = 914.85e6, 915.55e6
    srv = FakeRtlTcpServer(synth_uplink([inside, outside]), speed=1.0).start()
    src = build_source(_section(srv.port, centres_mhz=[915.2]), events)
    src.start()
    try:
        assert wait_for(lambda: len(events.bursts()) >= 10 and src.counters["other_emitter"] >= 10)
    finally:
        src.stop()
        srv.stop()
    bursts = events.bursts()
    assert all(b.band == "E-GSM-900 + LTE B8 UL" for b in bursts)
    assert all(abs(b.freq_mhz - inside / 1e6) < 0.05 for b in bursts)
    detail = src.health_detail()
    assert detail["region"] == "eu"
    other_emitters = detail["other_emitters"]
    assert isinstance(other_emitters, int) and other_emitters >= 10
    assert abs(float(str(detail["last_other_emitter_mhz"])) - outside / 1e6) < 0.05
