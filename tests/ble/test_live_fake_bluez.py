"""The real live source, with the real bleak, against a fake bluetoothd on a private bus."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.clock import ManualClock
from scanner.observations import BleAdvert, SensorStatus, SourceEvent
from scanner.sources.base import Sink
from scanner.sources.ble.classify import classify
from scanner.sources.ble.constants import MONITOR_MAX_PATTERNS
from scanner.sources.ble.live import BleSource, build_source
from scanner.sources.ble.options import DEFAULT_OR_PATTERNS
from scanner.sources.ble.replay import read_jsonl
from tests.fakes.bluez import FLOOD_COMPANY, FakeBluez


class Collector:
    """A thread-safe sink that keeps everything it is given."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[float, SourceEvent]] = []

    def __call__(self, event: SourceEvent) -> None:
        with self.lock:
            self.events.append((time.monotonic(), event))

    def adverts(self) -> list[BleAdvert]:
        with self.lock:
            return [e for _, e in self.events if isinstance(e, BleAdvert)]

    def statuses(self) -> list[SensorStatus]:
        with self.lock:
            return [e for _, e in self.events if isinstance(e, SensorStatus)]


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


# The flood numbers its adverts in manufacturer data of the SIG's test company: a passive scan
# needs a pattern for it, since the default patterns let through only what the classifier places.
# The default or-patterns fill several advertisement monitors (the kernel's limit per monitor).
DEFAULT_MONITORS = -(-len(DEFAULT_OR_PATTERNS) // MONITOR_MAX_PATTERNS)
FLOOD_PASSIVE = {"or_patterns": [[0, 0xFF, FLOOD_COMPANY.to_bytes(2, "little").hex()]]}
ACTIVE_WARNING = "transmits scan requests"


def started(section: dict[str, object], sink: Sink, record_path: str | None = None) -> BleSource:
    source = build_source({"status_interval_s": 0, **section}, sink, record_path=record_path)
    source.start()
    return source


# Real payloads of each class (see test_classify_table.py for where each comes from).
CLASS_EXAMPLES: list[tuple[str, dict[int, bytes], dict[str, bytes], str]] = [
    ("42:11:22:33:44:01", {76: bytes.fromhex("1005031c5a0b2e")}, {}, "handset"),
    ("42:11:22:33:44:02", {76: bytes.fromhex("10050a1c5a0b2e")}, {}, "wearable"),
    (
        "42:11:22:33:44:03",
        {76: bytes.fromhex("0719010e202b998f01000400000000000000000000000000000000")},
        {},
        "audio",
    ),
    (
        "C2:11:22:33:44:04",
        {76: bytes.fromhex("121910" + "00112233445566778899aabbccddeeff001122334455" + "0100")},
        {},
        "tag",
    ),
    ("42:11:22:33:44:05", {6: bytes.fromhex("010f2002a1b2c3d4" + "00" * 16)}, {}, "computer"),
    (
        "C2:11:22:33:44:06",
        {},
        {"0000feaa-0000-1000-8000-00805f9b34fb": bytes.fromhex("00e8" + "00" * 16)},
        "beacon",
    ),
    (
        "42:11:22:33:44:07",
        {},
        {"0000fe2c-0000-1000-8000-00805f9b34fb": bytes.fromhex("2c3f9c")},
        "audio",
    ),
]


@pytest.mark.parametrize("mode", [None, "passive", "active"])
def test_adverts_of_each_class_reach_the_sink(
    fake_bluez: FakeBluez, mode: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Passive (the default: no mode configured) and active (only when asked for)."""
    caplog.set_level(logging.WARNING, logger="scanner.sources.ble")
    sink = Collector()
    source = started({} if mode is None else {"scanning_mode": mode}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        state = fake_bluez.state()
        if mode == "active":
            assert state["discovering"] is True
            # duplicate reporting on, so RSSI keeps flowing for a device that stays put
            assert state["filter"].get("DuplicateData") is True
            assert "transmits scan requests" in source.message
        else:
            # nothing transmitted: an advertisement monitor, no discovery ever started
            assert wait_until(lambda: fake_bluez.state()["monitors"] == DEFAULT_MONITORS, 5)
            assert state["discovering"] is False
            assert state["counters"].get("start_discovery", 0) == 0
            assert "(passive)" in source.message
        assert source.status().detail["scanning_mode"] == (mode or "passive")
        for address, mfr, svc, _kind in CLASS_EXAMPLES:
            assert fake_bluez.advert(address, mfr=mfr, svc=svc, rssi=-50)
        # the same device again with another RSSI: must be reported again
        fake_bluez.advert(CLASS_EXAMPLES[0][0], mfr=CLASS_EXAMPLES[0][1], rssi=-58)
        assert wait_until(lambda: len(sink.adverts()) >= len(CLASS_EXAMPLES) + 1, 5)
    finally:
        source.stop()
    got = sink.adverts()
    by_addr = {a.address: a for a in got}
    for address, mfr, svc, kind in CLASS_EXAMPLES:
        advert = by_addr[address]
        assert advert.manufacturer_data == mfr
        assert advert.service_data == svc
        assert advert.address_type == "random"
        assert classify(advert).kind == kind, (address, classify(advert))
    rssis = [a.rssi_dbm for a in got if a.address == CLASS_EXAMPLES[0][0]]
    assert rssis == [-50, -58]
    assert source.state == "stopped"
    # Active scanning is said once at warning: the appliance is then not receive-only.
    warned = [r for r in caplog.records if ACTIVE_WARNING in r.getMessage()]
    assert [r.levelno for r in warned] == ([logging.WARNING] if mode == "active" else [])


def test_rotating_address_is_reported_under_both_addresses(fake_bluez: FakeBluez) -> None:
    sink = Collector()
    source = started({}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        payload = {76: bytes.fromhex("1005031c5a0b2e")}
        fake_bluez.advert("5A:00:00:00:00:01", mfr=payload)
        fake_bluez.rotate("5A:00:00:00:00:01", "6B:00:00:00:00:02", mfr=payload)
        assert wait_until(lambda: len(sink.adverts()) >= 2, 5)
    finally:
        source.stop()
    assert [a.address for a in sink.adverts()] == ["5A:00:00:00:00:01", "6B:00:00:00:00:02"]


def test_adapter_that_refuses_power_gives_a_clear_fault(
    fake_bluez_unpowerable: FakeBluez,
) -> None:
    sink = Collector()
    source = started({}, sink)
    try:
        assert wait_until(lambda: source.state == "fault", 10)
        assert "rfkill" in source.message
        assert "hci0" in source.message
        # the operator unblocks the radio: the ladder's next rung powers it on by itself
        fake_bluez_unpowerable.refuse_power(False)
        assert wait_until(lambda: source.state == "ok", 15), source.message
    finally:
        source.stop()
    faults = [s for s in sink.statuses() if s.state == "fault"]
    assert faults and "rfkill" in faults[0].message
    assert source.counters["error_blocked"] >= 1


def test_scanning_resumes_after_bluetoothd_restart(fake_bluez: FakeBluez) -> None:
    sink = Collector()
    # An unchanging phone is reported once per re-report period: a short one keeps this quick.
    source = started({"rereport_s": 0.2}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        fake_bluez.tick("7C:00:00:00:00:01", {76: bytes.fromhex("1005031c5a0b2e")}, 0.05)
        assert wait_until(lambda: len(sink.adverts()) >= 5, 5)
        fake_bluez.restart_bluetoothd(delay=1.0)
        back = time.monotonic()  # the reply arrives as soon as org.bluez is owned again
        n_before = len(sink.adverts())
        assert wait_until(lambda: len(sink.adverts()) > n_before + 3, 10), (
            source.state,
            source.message,
            fake_bluez.state(),
        )
        with sink.lock:
            first_after = next(
                t for t, e in sink.events[n_before:] if isinstance(e, BleAdvert) and t >= back
            )
        recovery_s = first_after - back
        fake_bluez.untick()
    finally:
        source.stop()
    print(f"\nBLE: adverts again {recovery_s:.2f} s after bluetoothd returned")
    assert recovery_s < 10.0
    assert source.counters["rescans"] >= 1
    assert source.counters["scan_starts"] >= 2


def test_flood_of_2000_adverts_per_second_loses_nothing_uncounted(
    fake_bluez: FakeBluez,
) -> None:
    sink = Collector()
    source = started({"queue_size": 8192, **FLOOD_PASSIVE}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        assert wait_until(lambda: fake_bluez.state()["monitors"] == 1, 5)
        result = fake_bluez.flood(rate=2000, seconds=3.0, devices=200)
        sent = result["sent"]
        assert wait_until(lambda: source.counters["adverts_in"] >= sent, 15)
        assert wait_until(
            lambda: source.counters["delivered"] + source.counters["dropped_queue_full"] >= sent, 15
        )
    finally:
        source.stop()
    numbers = [
        int.from_bytes(a.manufacturer_data[FLOOD_COMPANY], "big")
        for a in sink.adverts()
        if FLOOD_COMPANY in a.manufacturer_data
    ]
    dropped = source.counters["dropped_queue_full"]
    print(
        f"\nBLE flood: fake sent {sent} in {result['elapsed_s']:.2f} s "
        f"({result['rate']:.0f}/s); bleak delivered {source.counters['adverts_in']} to the "
        f"source; sink got {len(numbers)}; counted drops {dropped}"
    )
    assert result["rate"] >= 1800
    assert result["suppressed"] == 0  # the monitor let every numbered advert through
    assert source.counters["adverts_in"] == sent
    assert len(set(numbers)) == len(numbers)
    assert len(numbers) + dropped == sent


def test_record_writes_ble_jsonl_that_replays_the_same(
    fake_bluez: FakeBluez, tmp_path: Path
) -> None:
    sink = Collector()
    path = tmp_path / "ble.jsonl"
    source = started({}, sink, record_path=str(path))
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        for address, mfr, svc, _kind in CLASS_EXAMPLES:
            fake_bluez.advert(address, mfr=mfr, svc=svc, name="iPhone" if mfr else None)
        assert wait_until(lambda: len(sink.adverts()) >= len(CLASS_EXAMPLES), 5)
    finally:
        source.stop()
    replayed = list(read_jsonl(path))
    live = sink.adverts()
    assert len(replayed) == len(live)
    for a, b in zip(live, replayed, strict=True):
        assert (a.address, a.rssi_dbm, a.manufacturer_data, a.service_data, a.local_name) == (
            b.address,
            b.rssi_dbm,
            b.manufacturer_data,
            b.service_data,
            b.local_name,
        )
        assert classify(a) == classify(b)
    assert json.loads(path.read_text().splitlines()[0])["adapter"] == "hci0"


def test_rssi_127_from_bluez_is_unknown_live_and_replayed(
    fake_bluez: FakeBluez, tmp_path: Path
) -> None:
    """BlueZ passes HCI's 127 ("not available") on: no level, neither live nor on replay."""
    sink = Collector()
    path = tmp_path / "ble.jsonl"
    source = started({}, sink, record_path=str(path))
    iphone = {76: bytes.fromhex("1005031c5a0b2e")}
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        fake_bluez.advert("42:11:22:33:44:21", mfr=iphone, rssi=127)
        fake_bluez.advert("42:11:22:33:44:22", mfr=iphone, rssi=-127)
        fake_bluez.advert("42:11:22:33:44:23", mfr=iphone, rssi=-61)
        assert wait_until(lambda: len(sink.adverts()) >= 3, 5)
    finally:
        source.stop()
    live = {a.address: a.rssi_dbm for a in sink.adverts()}
    assert live == {"42:11:22:33:44:21": None, "42:11:22:33:44:22": None, "42:11:22:33:44:23": -61}
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [x["rssi"] for x in lines] == [None, None, -61]
    assert {a.address: a.rssi_dbm for a in read_jsonl(path)} == live


def test_no_bus_at_all_is_a_clear_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/nobody_here")
    sink = Collector()
    source = started({}, sink)
    try:
        assert wait_until(lambda: source.state == "fault", 10)
        assert "D-Bus" in source.message
    finally:
        source.stop()


def test_stale_discovery_in_progress_is_taken_over(fake_bluez: FakeBluez) -> None:
    """Active scanning: a discovery left running by a crashed predecessor is taken over."""
    fake_bluez.stale_discovery()
    sink = Collector()
    source = started({"scanning_mode": "active"}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        assert fake_bluez.advert("42:00:00:00:00:0A", mfr={76: bytes.fromhex("1005031c5a0b2e")})
        assert wait_until(lambda: len(sink.adverts()) == 1, 5)
    finally:
        source.stop()
    assert source.counters["error_in_progress"] >= 1
    assert any(s.state == "starting" and "already running" in s.message for s in sink.statuses())


def test_passive_leaves_a_foreign_discovery_alone_and_says_it_transmits(
    fake_bluez: FakeBluez, caplog: pytest.LogCaptureFixture
) -> None:
    """Another client's discovery (bluetoothctl scan on) is not ours to stop; passive scanning
    neither starts nor stops one, and warns that the adapter transmits meanwhile."""
    caplog.set_level(logging.WARNING, logger="scanner.sources.ble")
    fake_bluez.stale_discovery()
    sink = Collector()
    source = started({}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        assert wait_until(lambda: fake_bluez.state()["monitors"] == DEFAULT_MONITORS, 5)
        assert fake_bluez.advert("42:00:00:00:00:1A", mfr={76: bytes.fromhex("1005031c5a0b2e")})
        assert wait_until(lambda: len(sink.adverts()) == 1, 5)
    finally:
        source.stop()
    state = fake_bluez.state()
    assert state["discovering"] is True
    assert state["counters"].get("start_discovery", 0) == 0
    assert source.counters["error_in_progress"] == 0
    warned = [r for r in caplog.records if "another BlueZ client" in r.getMessage()]
    assert len(warned) == 1 and "hci0" in warned[0].getMessage()


def test_passive_scanning_with_or_patterns(fake_bluez: FakeBluez) -> None:
    """Passive: no discovery, a BlueZ advertisement monitor with the default or-patterns;
    only adverts matching a pattern are reported."""
    sink = Collector()
    source = started({"scanning_mode": "passive"}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        assert "(passive)" in source.message
        assert wait_until(lambda: fake_bluez.state()["monitors"] == DEFAULT_MONITORS, 5)
        state = fake_bluez.state()
        assert state["discovering"] is False
        assert fake_bluez.advert("42:00:00:00:00:0D", mfr={76: bytes.fromhex("1005031c5a0b2e")})
        assert fake_bluez.advert(
            "42:00:00:00:00:0E", svc={"0000fd6f-0000-1000-8000-00805f9b34fb": bytes(20)}
        )
        # a Tile tracker that lists its service without data
        assert fake_bluez.advert(
            "C2:00:00:00:00:10", uuids=["0000feed-0000-1000-8000-00805f9b34fb"]
        )
        assert not fake_bluez.advert("42:00:00:00:00:0F", mfr={0x0499: b"\x05\x12"})
        assert wait_until(lambda: len(sink.adverts()) == 3, 5)
    finally:
        source.stop()
    got = {a.address: a for a in sink.adverts()}
    assert set(got) == {"42:00:00:00:00:0D", "42:00:00:00:00:0E", "C2:00:00:00:00:10"}
    assert classify(got["C2:00:00:00:00:10"]).kind == "tag"
    assert fake_bluez.state()["counters"].get("start_discovery", 0) == 0


def test_without_monitors_the_default_is_a_fault_never_active_scanning(
    fake_bluez_without_monitors: FakeBluez, caplog: pytest.LogCaptureFixture
) -> None:
    """bluetoothd without --experimental: no silent fallback to active scanning (it would
    transmit). The source faults with what to do, and scans passively as soon as bluetoothd
    comes back with advertisement monitors."""
    caplog.set_level(logging.WARNING, logger="scanner.sources.ble")
    fake = fake_bluez_without_monitors
    sink = Collector()
    source = started({}, sink)
    iphone = {76: bytes.fromhex("1005031c5a0b2e")}
    try:
        assert wait_until(lambda: source.state == "fault", 10), source.message
        assert "bluetoothd --experimental" in source.message
        assert 'scanning_mode = "active"' in source.message
        assert "transmits scan requests" in source.message
        assert source.status().detail["scanning_mode"] == "passive"
        assert source.status().detail["last_error"] == "passive_unsupported"
        assert not fake.advert("42:00:00:00:00:0B", mfr=iphone)  # the adapter hears nothing
        # the operator installs the drop-in and restarts bluetoothd
        fake.restart_bluetoothd(delay=0.5, monitors=True)
        back = time.monotonic()
        assert wait_until(lambda: source.state == "ok", 10), source.message
        recovery_s = time.monotonic() - back
        assert "(passive)" in source.message
        assert wait_until(lambda: fake.state()["monitors"] == DEFAULT_MONITORS, 5)
        assert fake.advert("42:00:00:00:00:0B", mfr=iphone)
        assert wait_until(lambda: len(sink.adverts()) == 1, 5)
    finally:
        source.stop()
    print(f"\nBLE: passive scanning {recovery_s:.2f} s after bluetoothd returned with monitors")
    state = fake.state()
    assert state["counters"].get("start_discovery", 0) == 0  # never scanned actively
    assert state["discovering"] is False
    assert source.counters["error_passive_unsupported"] >= 1
    faults = [s for s in sink.statuses() if s.state == "fault"]
    assert faults and "--experimental" in faults[0].message
    # the fault is logged once, not on every retry
    logged = [r for r in caplog.records if "--experimental" in r.getMessage()]
    assert len(logged) == 1


def test_explicit_active_scans_without_monitors(fake_bluez_without_monitors: FakeBluez) -> None:
    sink = Collector()
    source = started({"scanning_mode": "active"}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        assert fake_bluez_without_monitors.advert(
            "42:00:00:00:00:0B", mfr={76: bytes.fromhex("1005031c5a0b2e")}
        )
        assert wait_until(lambda: len(sink.adverts()) == 1, 5)
    finally:
        source.stop()
    assert fake_bluez_without_monitors.state()["counters"]["start_discovery"] == 1
    assert source.status().detail["scanning_mode"] == "active"


def test_full_handoff_counts_every_drop(fake_bluez: FakeBluez) -> None:
    """A sink slower than the radio: the bounded queue overflows, and every advert bleak
    delivered is either handed on or counted as dropped."""
    gate = threading.Event()
    inner = Collector()

    def slow_sink(event: SourceEvent) -> None:
        if isinstance(event, BleAdvert):
            gate.wait(5)
        inner(event)

    source = started({"queue_size": 16, **FLOOD_PASSIVE}, slow_sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        assert wait_until(lambda: fake_bluez.state()["monitors"] == 1, 5)
        result = fake_bluez.flood(rate=2000, seconds=0.5, devices=20)
        assert wait_until(lambda: source.counters["adverts_in"] >= result["sent"], 10)
        gate.set()
        assert wait_until(
            lambda: (
                source.counters["delivered"] + source.counters["dropped_queue_full"]
                >= result["sent"]
            ),
            10,
        )
    finally:
        gate.set()
        source.stop()
    dropped = source.counters["dropped_queue_full"]
    got = len(inner.adverts())
    print(
        f"\nBLE handoff of 16 behind a stalled sink: {result['sent']} sent, {got} delivered, "
        f"{dropped} counted drops"
    )
    assert dropped > 0
    assert got + dropped == result["sent"]
    assert source.status().counters["dropped_queue_full"] == dropped  # reaches /healthz


def test_scanning_resumes_after_the_system_bus_restarts(fake_bluez: FakeBluez) -> None:
    sink = Collector()
    source = started({}, sink)
    payload = {76: bytes.fromhex("1005031c5a0b2e")}
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        fake_bluez.restart_system_bus(delay=1.0)
        back = time.monotonic()
        assert any("D-Bus" in s.message or "bluetoothd" in s.message for s in sink.statuses())
        fake_bluez.tick("7D:00:00:00:00:01", payload, 0.05)
        assert wait_until(lambda: len(sink.adverts()) > 0, 15), (source.state, source.message)
        recovery_s = next(t for t, e in sink.events if isinstance(e, BleAdvert)) - back
        fake_bluez.untick()
    finally:
        source.stop()
    print(f"\nBLE: adverts again {recovery_s:.2f} s after the system bus returned")
    assert recovery_s < 10.0


UNCHANGING_PHONE = {76: bytes.fromhex("1005031c5a0b2e")}


def test_a_phone_lying_still_is_reported_again_each_period(fake_bluez: FakeBluez) -> None:
    """BlueZ tells a passive client of an unchanged advertiser once; the source has it told
    again every ``rereport_s`` while the phone advertises, and not after it stops."""
    sink = Collector()
    source = started({"rereport_s": 0.5}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        fake_bluez.tick("7E:00:00:00:00:01", UNCHANGING_PHONE, 0.05)
        t0 = time.monotonic()
        assert wait_until(lambda: len(sink.adverts()) >= 4, 10), fake_bluez.state()
        span = time.monotonic() - t0
        fake_bluez.untick()
        # Adverts every 50 ms, reports about every 0.5 s: BlueZ itself stayed quiet in between.
        assert fake_bluez.state()["counters"]["unchanged"] > len(sink.adverts())
        assert span >= 1.0, span
        time.sleep(1.5)  # three periods with the phone gone
        n_gone = len(sink.adverts())
        time.sleep(1.0)
        assert len(sink.adverts()) == n_gone
    finally:
        source.stop()
    assert {a.address for a in sink.adverts()} == {"7E:00:00:00:00:01"}
    assert source.counters["cached_dropped"] >= 3


def test_without_rereporting_bluez_reports_an_unchanged_phone_once(
    fake_bluez: FakeBluez,
) -> None:
    """The far end as it is: what ``rereport_s = 0`` gives (and what the source used to)."""
    sink = Collector()
    source = started({"rereport_s": 0}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        fake_bluez.tick("7E:00:00:00:00:02", UNCHANGING_PHONE, 0.05)
        assert wait_until(lambda: len(sink.adverts()) == 1, 5)
        time.sleep(1.5)
        fake_bluez.untick()
    finally:
        source.stop()
    assert len(sink.adverts()) == 1


def test_a_device_bluez_knew_before_the_scan_is_reported(fake_bluez: FakeBluez) -> None:
    """A device whose object outlived an earlier scan (BlueZ keeps it for 30 s) creates no
    InterfacesAdded: the source still hears it on its next advert."""
    first = Collector()
    earlier = started({"rereport_s": 0}, first)
    try:
        assert wait_until(lambda: earlier.state == "ok", 10), earlier.message
        fake_bluez.advert("7E:00:00:00:00:03", mfr=UNCHANGING_PHONE)
        assert wait_until(lambda: len(first.adverts()) == 1, 5)
    finally:
        earlier.stop()
    assert fake_bluez.state()["devices"] == 1  # still cached, as bluetoothd keeps it
    sink = Collector()
    source = started({}, sink)  # the default period: only the drop at scan start matters
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        assert wait_until(lambda: fake_bluez.state()["devices"] == 0, 5)
        fake_bluez.advert("7E:00:00:00:00:03", mfr=UNCHANGING_PHONE)
        assert wait_until(lambda: len(sink.adverts()) == 1, 5), fake_bluez.state()
    finally:
        source.stop()
    assert sink.adverts()[0].manufacturer_data == UNCHANGING_PHONE


def test_silence_watchdog_with_an_injected_clock(fake_bluez: FakeBluez) -> None:
    clock = ManualClock()
    sink = Collector()
    source = build_source({"status_interval_s": 0, "silence_after_s": 90}, sink, clock)
    source.start()
    try:
        assert wait_until(lambda: source.state == "ok", 10), source.message
        fake_bluez.advert("42:00:00:00:00:0C", mfr={76: bytes.fromhex("1005031c5a0b2e")})
        assert wait_until(lambda: len(sink.adverts()) == 1, 5)
        clock.advance(91.0)  # ninety seconds of radio silence, in no time
        assert wait_until(lambda: source.state == "degraded", 3)
        assert source.message.startswith("no frames for 91")
        # The phone moved: 10 dB weaker, enough for bluetoothd to report the known device again.
        fake_bluez.advert("42:00:00:00:00:0C", rssi=-70, mfr={76: bytes.fromhex("1005031c5a0b2e")})
        assert wait_until(lambda: source.state == "ok", 3)
    finally:
        source.stop()


@pytest.mark.hardware
def test_real_adapter_scans() -> None:
    """On a Pi with BlueZ: the source reaches "ok" and hears something within 30 s."""
    sink = Collector()
    source = started({}, sink)
    try:
        assert wait_until(lambda: source.state == "ok", 15), source.message
        assert wait_until(lambda: len(sink.adverts()) > 0, 30)
    finally:
        source.stop()


def test_adapter_selection(fake_bluez: FakeBluez) -> None:
    sink = Collector()
    missing = started({"adapter": "hci1"}, sink)
    try:
        assert wait_until(lambda: missing.state == "fault", 10)
        assert "hci1 not found" in missing.message
    finally:
        missing.stop()
    auto = started({"adapter": "auto"}, sink)
    try:
        assert wait_until(lambda: auto.state == "ok", 10), auto.message
        assert auto.status().detail["adapter"] == "hci0"
    finally:
        auto.stop()
