"""Station tracking: randomised MACs grouped into handsets, on real captures and built frames."""

from __future__ import annotations

import csv
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from scanner.core.wifi_tracking import WifiTracker, WifiTrackerOptions
from scanner.observations import WifiFrame
from scanner.sources.wifi.replay import read_frames

FP_A = "038194dae7f8a5d2"
FP_A_NEAR = "0381bf21e7f8a5d2"
FP_B = "1111222233334444"


def _frame(
    mono: float, mac: str, seq: int, fp: str = FP_A, rssi: int | None = -50, random_mac: bool = True
) -> WifiFrame:
    return WifiFrame(mono, mono, "probe_req", mac, random_mac, rssi, 2437, "", seq, fp)


def test_random_macs_with_one_fingerprint_are_one_station() -> None:
    tracker = WifiTracker()
    ids = {tracker.observe(_frame(t * 20.0, f"02:00:00:00:00:{t:02x}", t * 7)) for t in range(10)}
    assert len(ids) == 1
    assert tracker.device_count() == 1


def test_idle_station_does_not_absorb_a_later_phone() -> None:
    tracker = WifiTracker(WifiTrackerOptions(join_window_s=300.0))
    first = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 10))
    later = tracker.observe(_frame(301.0, "02:00:00:00:00:02", 3000))
    assert first != later
    assert tracker.device_count() == 2


def test_sequence_continuity_links_different_fingerprints() -> None:
    tracker = WifiTracker()
    a = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 100, fp=""))
    b = tracker.observe(_frame(1.0, "02:00:00:00:00:02", 102, fp=""))
    c = tracker.observe(_frame(2.0, "02:00:00:00:00:03", 3000, fp=""))
    assert a == b != c
    assert tracker.joined_by["seq"] == 1


def test_near_fingerprint_joins_only_recent_station() -> None:
    tracker = WifiTracker()
    a = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 1))
    assert tracker.observe(_frame(60.0, "02:00:00:00:00:02", 900, fp=FP_A_NEAR)) == a
    other = WifiTracker()
    a = other.observe(_frame(0.0, "02:00:00:00:00:01", 1))
    assert other.observe(_frame(200.0, "02:00:00:00:00:02", 900, fp=FP_A_NEAR)) != a
    assert other.observe(_frame(201.0, "02:00:00:00:00:03", 901, fp=FP_B)) not in (a,)


def test_rssi_gate_and_global_macs() -> None:
    tracker = WifiTracker(WifiTrackerOptions(max_rssi_jump_db=20))
    near = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 1, rssi=-40))
    far = tracker.observe(_frame(1.0, "02:00:00:00:00:02", 900, rssi=-85))
    assert near != far
    glob1 = tracker.observe(_frame(2.0, "00:11:22:33:44:55", 5, fp=FP_B, random_mac=False))
    # A global MAC keeps its station after any silence.
    assert (
        tracker.observe(_frame(90_000.0, "00:11:22:33:44:55", 6, fp=FP_B, random_mac=False))
        == glob1
    )
    assert glob1 == "wifi-001122334455"


def test_forget_bounds_memory() -> None:
    tracker = WifiTracker(WifiTrackerOptions(forget_mac_after_s=10.0))
    for i in range(50):
        tracker.observe(_frame(float(i), f"02:00:00:00:01:{i:02x}", i * 100, fp=f"{i:04x}" * 4))
    assert len(tracker.stations) == 50
    assert tracker.forget(100.0) == 50
    assert not tracker.stations and tracker.device_count() == 50
    # Observing over a long time never keeps more than the recent stations.
    for i in range(5000):
        tracker.observe(
            _frame(200.0 + i, f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}", i, fp=f"{i:04x}" * 4)
        )
    assert len(tracker.stations) <= 80


def _phones(shared_data: Path) -> list[tuple[float, str, WifiFrame]]:
    frames = []
    for path in sorted((shared_data / "wifi" / "probing-patterns").glob("*.pcap")):
        phone = path.name.split("_")[0]
        frames += [(f.ts, phone, f) for f in read_frames(path)]
    return frames


def test_eleven_phones_are_not_hundreds_of_macs(shared_data: Path) -> None:
    frames = sorted(_phones(shared_data), key=lambda t: t[0])
    tracker = WifiTracker()
    owners: dict[str, Counter[str]] = defaultdict(Counter)
    for _ts, phone, frame in frames:
        owners[tracker.observe(frame)][phone] += 1
    macs = len({f.mac for _, _, f in frames})
    phones = {phone for _, phone, _ in frames}
    print(
        f"probing-patterns: {macs} MACs -> {tracker.device_count()} devices "
        f"({len(phones)} phones); joined by {tracker.joined_by}"
    )
    assert len(phones) == 11 and macs > 1500
    # Every device id belongs to exactly one phone (no two phones merged) ...
    assert all(len(c) == 1 for c in owners.values()), [c for c in owners.values() if len(c) > 1]
    # ... and every phone is one device, or a few where it sent unlinkable element lists (see
    # the report: Oppo and S21 vary their capabilities; iPhone11-M has two sessions 21 days
    # apart with different fingerprints).
    assert 11 <= tracker.device_count() <= 17


def test_simultaneous_phones(shared_data: Path) -> None:
    # All captures shifted to start at the same moment: the hard case, same-model iPhones at
    # the same time. Reported, with a loose bound: merging is expected among identical models.
    by_phone: dict[str, list[WifiFrame]] = defaultdict(list)
    for _ts, phone, frame in _phones(shared_data):
        by_phone[phone].append(frame)
    shifted = []
    for phone, frames in by_phone.items():
        t0 = min(f.mono for f in frames)
        shifted += [(f.mono - t0, phone, f) for f in frames]
    shifted.sort(key=lambda t: t[0])
    tracker = WifiTracker()
    owners: dict[str, Counter[str]] = defaultdict(Counter)
    for t, phone, frame in shifted:
        owners[
            tracker.observe(
                _frame(t, frame.mac, frame.seq, frame.fingerprint, frame.rssi_dbm, frame.random_mac)
            )
        ][phone] += 1
    merged = sum(1 for c in owners.values() if len(c) > 1)
    print(f"simultaneous: {tracker.device_count()} devices, {merged} holding several phones")
    assert 5 <= tracker.device_count() <= 30


def handsets_per_hour(frames: list[WifiFrame], near_dbm: int = -75) -> dict[int, int]:
    """Distinct randomised-MAC stations per hour with a frame at or above ``near_dbm``."""
    tracker = WifiTracker()
    seen: dict[int, set[str]] = defaultdict(set)
    for frame in frames:
        device = tracker.observe(frame)
        hour = int(frame.ts // 3600)
        seen.setdefault(hour, set())
        if frame.random_mac and frame.rssi_dbm is not None and frame.rssi_dbm >= near_dbm:
            seen[hour].add(device)
    return {hour: len(ids) for hour, ids in seen.items()}


def test_brno_handsets_follow_occupancy(shared_data: Path) -> None:
    estimates: list[float] = []
    occupancy: list[float] = []
    for day in ("2024-03-21", "2024-03-30"):
        base = shared_data / "wifi" / "brno-lab" / f"sc6-61_{day}_pos2"
        frames = list(read_frames(base.with_suffix(".pcap")))
        with open(base.with_suffix(".csv"), newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter=";"))
        people: dict[int, list[float]] = defaultdict(list)
        for frame, row in zip(frames, rows, strict=True):
            value = float(row["occupancy"] or "nan")
            if not math.isnan(value):
                people[int(frame.ts // 3600)].append(value)
        per_hour = handsets_per_hour(frames)
        for hour, values in sorted(people.items()):
            occ = statistics.mean(values)
            est = per_hour.get(hour, 0)
            print(f"brno {day} hour {hour % 24:02d}: occupancy {occ:5.1f} estimate {est}")
            estimates.append(est)
            occupancy.append(occ)
            if occ >= 10:
                assert 0.5 * occ <= est <= 2.0 * occ, (day, hour, occ, est)
            if occ == 0:
                assert est <= 5, (day, hour, est)
    corr = statistics.correlation(occupancy, estimates)
    print(f"brno: correlation of hourly estimate with occupancy {corr:.2f}")
    assert corr >= 0.8


def test_options_from_core_section() -> None:
    opts = WifiTrackerOptions.from_mapping(
        {"wifi_join_window_s": 120, "wifi_seq_window": 32, "min_rssi_dbm": -70}
    )
    assert opts.join_window_s == 120.0 and opts.seq_window == 32
    assert opts.near_join_window_s == WifiTrackerOptions().near_join_window_s
