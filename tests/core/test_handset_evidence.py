"""Handsets on positive evidence: vendor rules, static stations, and the Brno lab's occupancy."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path

from scanner.core.devices import STATIC_SPAN_S, Device
from scanner.core.kinds import wifi_kind, wifi_vendor
from scanner.core.options import CoreOptions
from scanner.core.pipeline import Core
from scanner.observations import WifiFrame
from scanner.sources.wifi.replay import read_frames

BIN_S = 600.0


def _frame(mac: str, subtype: str = "probe_req", random_mac: bool = False) -> WifiFrame:
    return WifiFrame(0.0, 0.0, subtype, mac, random_mac, -50, 2437, "", 1, "fp")


def test_vendor_rules() -> None:
    assert wifi_vendor("50:8E:49:12:34:56") == ("phone", "Xiaomi")
    assert wifi_vendor("00:00:f0:12:34:56") == ("mixed", "Samsung")
    assert wifi_vendor("dc:fb:48:00:00:01") == ("computer", "Intel")
    assert wifi_vendor("02:00:00:00:00:01") is None
    # A Xiaomi phone with randomisation off, probing: a handset.
    assert wifi_kind(_frame("50:8e:49:12:34:56"))[0] == "handset"
    # Samsung's OUIs are on its TVs too: a global Samsung prober is no evidence either way.
    assert wifi_kind(_frame("00:00:f0:12:34:56"))[0] == "unknown"
    # An Intel card in a desk PC, probing all night: a computer, whatever it sends.
    assert wifi_kind(_frame("dc:fb:48:00:00:01"))[0] == "computer"
    # A global address nobody listed: no evidence either way.
    assert wifi_kind(_frame("00:11:22:33:44:55"))[0] == "unknown"
    # Randomised probe addresses are what phones do.
    assert wifi_kind(_frame("02:11:22:33:44:55", random_mac=True))[0] == "handset"


def test_unknown_static_and_ambient_devices_are_not_counted() -> None:
    dev = Device("wifi-001122334455", "wifi", 0.0, 0.0, 0.0, 0.0)
    dev.macs = dev.with_identifier(dev.macs, "00:11:22:33:44:55")
    assert not dev.counts_as_handset  # unknown
    dev.set_kind("handset", "Xiaomi", "probe requests from a Xiaomi phone's global address")
    assert dev.counts_as_handset
    dev.ambient = True  # learned as part of the site, with a fixed address
    assert not dev.counts_as_handset
    dev.ambient = False
    dev.last_mono = STATIC_SPAN_S + 1.0  # heard day and night: part of the site
    assert not dev.counts_as_handset and not dev.is_handset
    phone = Device("wifi-r1", "wifi", 0.0, 0.0, 0.0, 0.0, kind="handset")
    phone.macs = phone.with_identifier(phone.macs, "4a:11:22:33:44:55")
    phone.ambient = True  # someone at their desk when the core started
    assert phone.counts_as_handset


def _brno(shared_data: Path) -> tuple[list[float], list[int], list[int]]:
    """Per 10-minute bin: mean occupancy, handsets the core heard, non-random MACs heard."""
    occupancy: list[float] = []
    heard: list[int] = []
    baseline: list[int] = []
    for day in ("2024-03-21", "2024-03-30"):
        base = shared_data / "wifi" / "brno-lab" / f"sc6-61_{day}_pos2"
        with open(base.with_suffix(".csv"), newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter=";"))
        core = Core(CoreOptions())
        people: dict[int, list[float]] = defaultdict(list)
        counted: dict[int, int] = {}
        globals_: dict[int, set[str]] = defaultdict(set)
        current: int | None = None
        frames = read_frames(base.with_suffix(".pcap"))
        for frame, row in zip(frames, rows, strict=True):
            b = int(frame.mono // BIN_S)
            if current is not None and b != current:
                counted[current] = _heard_since(core, current * BIN_S)
            current = b
            core.handle(frame)
            value = row["occupancy"]
            if value and value != "nan":
                people[b].append(float(value))
            if not frame.random_mac:
                globals_[b].add(frame.mac)
        if current is not None:
            counted[current] = _heard_since(core, current * BIN_S)
        for b in sorted(people):
            occupancy.append(statistics.mean(people[b]))
            heard.append(counted.get(b, 0))
            baseline.append(len(globals_[b]))
    return occupancy, heard, baseline


def _heard_since(core: Core, since_mono: float) -> int:
    return sum(1 for d in core.devices if d.last_mono >= since_mono and d.counts_as_handset)


def test_brno_heard_handsets_follow_occupancy(shared_data: Path) -> None:
    occupancy, heard, baseline = _brno(shared_data)
    r = statistics.correlation(occupancy, heard)
    r_base = statistics.correlation(occupancy, baseline)
    empty = [h for o, h in zip(occupancy, heard, strict=True) if o == 0]
    empty_base = [h for o, h in zip(occupancy, baseline, strict=True) if o == 0]
    print(
        f"brno 10-minute bins: r(heard handsets, occupancy) {r:.3f}, "
        f"r(non-random MACs, occupancy) {r_base:.3f}; empty room: heard mean "
        f"{statistics.mean(empty):.2f} median {statistics.median(empty)}, non-random MACs mean "
        f"{statistics.mean(empty_base):.2f}"
    )
    assert r >= 0.9
    # Near zero when the room is empty: the night's desk PCs, Raspberry Pis and USB adapters
    # are not handsets (the plain count of global MACs reads about 5 all night).
    assert statistics.median(empty) == 0
    assert statistics.mean(empty) <= 1.0 < statistics.mean(empty_base)
