"""Station tracking: randomised MACs grouped into handsets, on real captures and built frames."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

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


def test_a_counter_that_restarts_at_each_address_links_nothing() -> None:
    # A phone of the model that starts every address at a new counter (iPhone 11 and later):
    # two addresses, the second from a number of its own.
    tracker = WifiTracker()
    a = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 1000))
    assert tracker.observe(_frame(0.05, "02:00:00:00:00:02", 3100)) == a
    assert tracker.stations[a].counter_reset == 1
    # A second phone of the model, just stronger, whose first number happens to follow the
    # station's last (1 in 64): a coincidence, not a counter carried on, so it joins (or not)
    # on fingerprint and level alone, and is not taken for the first phone's own address.
    other = "02:00:00:00:00:03"
    assert tracker.observe(_frame(0.1, other, 3103, rssi=-45)) == a
    assert tracker.joined_by["seq"] == 0
    assert tracker.joined_by_model(other)


def test_a_counter_carried_over_keeps_linking() -> None:
    # A phone that carries its counter over (iPhone 7): every new address continues it.
    tracker = WifiTracker()
    first = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 100))
    seq = 101
    for i in range(2, 6):
        mac = f"02:00:00:00:00:{i:02x}"
        assert tracker.observe(_frame(i * 4.0, mac, seq)) == first
        assert not tracker.joined_by_model(mac)
        seq += 3
    assert tracker.joined_by["seq"] == 4
    assert tracker.stations[first].counter_kept == 4
    assert tracker.stations[first].counter_reset == 0


def test_near_fingerprint_joins_only_recent_station() -> None:
    tracker = WifiTracker()
    a = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 1))
    assert tracker.observe(_frame(60.0, "02:00:00:00:00:02", 900, fp=FP_A_NEAR)) == a
    other = WifiTracker()
    a = other.observe(_frame(0.0, "02:00:00:00:00:01", 1))
    assert other.observe(_frame(200.0, "02:00:00:00:00:02", 900, fp=FP_A_NEAR)) != a
    assert other.observe(_frame(201.0, "02:00:00:00:00:03", 901, fp=FP_B)) not in (a,)


def test_rssi_gate_and_global_macs() -> None:
    tracker = WifiTracker(WifiTrackerOptions(max_rssi_jump_db=12))
    far = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 1, rssi=-85))
    # Much stronger than the station's envelope a second later: another phone, close by.
    near = tracker.observe(_frame(1.0, "02:00:00:00:00:02", 900, rssi=-40))
    assert near != far
    # Much weaker is no veto: a close phone is heard 30-60 dB down on a neighbouring channel.
    alone = WifiTracker(WifiTrackerOptions(max_rssi_jump_db=12))
    strong = alone.observe(_frame(0.0, "02:00:00:00:00:01", 1, rssi=-30))
    assert alone.observe(_frame(0.5, "02:00:00:00:00:02", 900, rssi=-85)) == strong
    glob1 = tracker.observe(_frame(2.0, "00:11:22:33:44:55", 5, fp=FP_B, random_mac=False))
    assert glob1 not in (near, far)
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
    assert 11 <= tracker.device_count() <= 18


def test_same_model_phones_keep_their_own_station() -> None:
    tracker = WifiTracker()
    # Two phones of one model (one fingerprint), one at the door, one across the hall.
    a = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 10, rssi=-75))
    b = tracker.observe(_frame(2.0, "02:00:00:00:00:02", 3000, rssi=-40))
    assert a != b
    # A new address of each then joins the station whose level it fits.
    assert tracker.observe(_frame(20.0, "02:00:00:00:00:03", 400, rssi=-42)) == b
    assert tracker.observe(_frame(21.0, "02:00:00:00:00:04", 900, rssi=-74)) == a


def test_a_returning_address_splits_two_phones() -> None:
    tracker = WifiTracker()
    first = tracker.observe(_frame(0.0, "02:00:00:00:00:01", 10))
    # Another phone of the model probes next, joined by fingerprint ...
    assert tracker.observe(_frame(5.0, "02:00:00:00:00:02", 2000)) == first
    # ... then the first address comes back: a phone probes from one address at a time, so
    # the two were different phones.
    again = tracker.observe(_frame(9.0, "02:00:00:00:00:01", 11))
    assert again != first and tracker.joined_by["split"] == 1


def _directed(mono: float, mac: str, ssid: str, fp: str, rssi: int = -50) -> WifiFrame:
    return WifiFrame(mono, mono, "probe_req", mac, True, rssi, 2437, ssid, 100, fp)


def test_a_network_only_one_station_asked_for_links_its_other_element_list() -> None:
    # One phone, two element lists sharing only the rates and element set (the Oppo's
    # directed and wildcard probes), each list from its own address, asking for its network.
    tracker = WifiTracker()
    phone = tracker.observe(_directed(0.0, "02:00:00:00:00:01", "home-5c1d", FP_A))
    other_list = "0381aaaabbbbcccc"
    assert tracker.observe(_directed(4.0, "02:00:00:00:00:02", "home-5c1d", other_list)) == phone
    assert tracker.joined_by["ssid"] == 1
    # Another stack (other rates and element set) asking for the same network is not linked.
    assert tracker.observe(_directed(5.0, "02:00:00:00:00:03", "home-5c1d", FP_B)) != phone


def test_a_network_several_stations_ask_for_links_nothing() -> None:
    # The site's own network: two phones of one stack remember it, so naming it proves nothing.
    tracker = WifiTracker()
    a = tracker.observe(_directed(0.0, "02:00:00:00:00:01", "site", FP_A))
    b = tracker.observe(_directed(1.0, "02:00:00:00:00:02", "site", FP_B))
    assert a != b
    other_list = "0381aaaabbbbcccc"
    c = tracker.observe(_directed(2.0, "02:00:00:00:00:03", "site", other_list))
    assert c not in (a, b)
    assert tracker.joined_by["ssid"] == 0


def test_a_vendor_address_that_probes_again_sends_the_model_joins_away() -> None:
    # A phone probing from its vendor-assigned address (as the iPhone 12 Pro's capture reads),
    # and another phone of a related model whose random address joins it on a near fingerprint.
    tracker = WifiTracker()
    own = "00:11:22:33:44:55"
    phone = tracker.observe(_frame(0.0, own, 10, random_mac=False))
    other = "02:00:00:00:00:01"
    assert tracker.observe(_frame(5.0, other, 2000, fp=FP_A_NEAR)) == phone
    # The vendor address probes again: one phone probes from one address at a time, so the
    # random address was another phone. It leaves with the element list only it brought.
    assert tracker.observe(_frame(9.0, own, 11, random_mac=False)) == phone == "wifi-001122334455"
    assert tracker.joined_by["split"] == 1
    moved = tracker.observe(_frame(9.5, other, 2001, fp=FP_A_NEAR))
    assert moved != phone
    assert tracker.stations[phone].fingerprints == {FP_A}
    # The next address of that list finds the phone it came with, not the vendor address.
    assert tracker.observe(_frame(20.0, "02:00:00:00:00:02", 3000, fp=FP_A_NEAR)) == moved
    assert tracker.device_count() == 2


def test_a_phone_does_not_join_the_guards_radio_by_a_near_fingerprint() -> None:
    tracker = WifiTracker()
    radio = "00:0e:8f:a4:39:c3"
    data = WifiFrame(0.0, 0.0, "data", radio, False, -45, 2437, None, 5, "")
    assert tracker.observe(data) == "wifi-000e8fa439c3"
    tracker.observe(_frame(1.0, radio, 6, fp=FP_A, random_mac=False))
    # A phone of a related model (same rates and element set) probing from a random address.
    phone = tracker.observe(_frame(30.0, "02:00:00:00:00:09", 2000, fp=FP_A_NEAR))
    assert phone != "wifi-000e8fa439c3"


def _aligned(shared_data: Path, names: list[str]) -> tuple[int, dict[str, Counter[str]]]:
    """Devices the tracker makes of the named phones' captures all shifted to start at once."""
    by_phone: dict[str, list[WifiFrame]] = defaultdict(list)
    for _ts, phone, frame in _phones(shared_data):
        if phone in names:
            by_phone[phone].append(frame)
    shifted: list[tuple[float, str, WifiFrame]] = []
    for phone, frames in by_phone.items():
        t0 = min(f.mono for f in frames)
        shifted += [(f.mono - t0, phone, replace(f, mono=f.mono - t0)) for f in frames]
    shifted.sort(key=lambda t: t[0])
    tracker = WifiTracker()
    owners: dict[str, Counter[str]] = defaultdict(Counter)
    for _t, phone, frame in shifted:
        owners[tracker.observe(frame)][phone] += 1
    return tracker.device_count(), owners


ALL_PHONES = [
    "OppoFindX3Neo-A",
    "S21Ultra-M",
    "iPhone11-B",
    "iPhone11-C",
    "iPhone11-F",
    "iPhone11-M",
    "iPhone12-M",
    "iPhone12Pro-C",
    "iPhone7-F",
    "iPhoneXR-A",
    "iPhoneXR-L",
]


@pytest.mark.parametrize(
    ("names", "slack"),
    [
        (ALL_PHONES, 1),
        (["iPhone11-B", "iPhone11-C", "iPhone11-F", "iPhone11-M"], 1),
        (["iPhoneXR-A", "iPhoneXR-L"], 1),
        (["iPhone12-M", "iPhone12Pro-C"], 1),
    ],
    ids=["all-eleven", "iphone11", "iphonexr", "iphone12"],
)
def test_time_aligned_phones_count_near_truth(
    shared_data: Path, names: list[str], slack: int
) -> None:
    # The ProbingPatterns phones heard at once: same-model phones at a gate are the normal
    # case. Goal: within one device of truth. Measured: all eleven make 12, 6 of them holding
    # more than one phone (the iPhone 11s share one element list and overlapping levels, see
    # below); before the level-fit and returning-address rules, 8, one holding 1,249 MACs of 7
    # phones. The count is near truth partly because merges of different phones cancel the
    # Oppo's, S21's and iPhone 11-M's extra stations (16 with each phone heard alone, see
    # test_each_phone_alone_is_one_station).
    count, owners = _aligned(shared_data, names)
    mixed = [dict(c) for c in owners.values() if len(c) > 1]
    biggest = max((sum(c.values()) for c in owners.values() if len(c) > 1), default=0)
    print(f"{len(names)} phones aligned -> {count} devices; {len(mixed)} mixed, largest {biggest}")
    assert abs(count - len(names)) <= slack
    # No station swallows most of the mixture's frames.
    total = sum(sum(c.values()) for c in owners.values())
    assert biggest <= 0.6 * total


# What the captures give to tell same-model phones apart, measured per phone with read_frames:
# - iPhone 11-B, 11-C, 11-F, 11-M (second session) and a few iPhone 12-M probes send one element
#   list byte for byte (only the DS channel differs), wildcard SSIDs only, from a fresh address
#   for every channel of a scan (1 of their 1,400 addresses is heard on two channels) that starts
#   its sequence counter afresh (0-2% continue, chance); channel order is shuffled per scan.
# - So only level and timing remain. On-channel levels (probes heard on the channel they were
#   sent on, per their DS element) differ per capture adapter by up to 25 dB for one phone
#   (XR-A: -46, -25, -36 on channels 1, 6, 11), so they compare per adapter only: there 11-B
#   and 11-F are 0-15 dB apart (channel 1: -44 and -42), within per-packet fading (2-4 dB
#   standard deviation within a scan) plus the 15 dB a phone moves between scans a minute
#   apart on every adapter at once (11-C), which the walking drift must allow. Vetoing weaker
#   on-channel frames beyond fading and drift was measured: all eleven then make 12-21 devices
#   with 6-13 mixed.
# - The channels of its partial scans differ per phone (11-B adds channel 13, 11-F channel 12,
#   the networks it remembers), but a scan's first probe is most often on a shared channel,
#   and the aligned captures start every phone's first scan at the same instant.
@pytest.mark.xfail(
    strict=True,
    reason="same-model iPhones with one element list, per-channel addresses and fresh counters "
    "leave only level and timing, which do not separate them (see above)",
)
def test_time_aligned_phones_are_not_mixed(shared_data: Path) -> None:
    _count, owners = _aligned(shared_data, ALL_PHONES)
    assert sum(1 for c in owners.values() if len(c) > 1) <= 1


@pytest.mark.xfail(
    strict=True,
    reason="iPhone 11-C, 11-F and XR-A are each outnumbered in every device holding them",
)
def test_time_aligned_phones_each_keep_a_device(shared_data: Path) -> None:
    # The harm at a gate: a phone heard only inside another phone's device. Each phone should
    # at least be the larger part of one device.
    _count, owners = _aligned(shared_data, ALL_PHONES)
    leading = {c.most_common(1)[0][0] for c in owners.values()}
    assert sorted(set(ALL_PHONES) - leading) == []


# Stations the tracker makes of each ProbingPatterns phone heard alone, and why it does not yet
# for three. iPhone 11-M's capture holds two sessions 21 days apart: a random address silent for
# longer than the join window starts a new station by design, so two.
ALONE: dict[str, tuple[int, str]] = {
    "OppoFindX3Neo-A": (
        1,
        "2: one frame at -73 dBm carries a third element list, without the DS element and "
        "with other rates, so nothing links it (its two main lists are linked by the networks "
        "only it asks for)",
    ),
    "S21Ultra-M": (1, "2: two frames at +15 dBm carry another element list"),
    "iPhone11-M": (
        2,
        "4: its first session splits by level (scans at -13 and at -34..-38 dBm) and 4 "
        "frames carry an iPhone XR-family element list",
    ),
}


def _alone_cases() -> list[object]:
    cases: list[object] = []
    for phone in ALL_PHONES:
        if phone in ALONE:
            stations, why = ALONE[phone]
            mark = pytest.mark.xfail(strict=True, reason=why)
            cases.append(pytest.param(phone, stations, marks=mark, id=phone))
        else:
            cases.append(pytest.param(phone, 1, id=phone))
    return cases


@pytest.mark.parametrize(("phone", "stations"), _alone_cases())
def test_each_phone_alone_is_one_station(shared_data: Path, phone: str, stations: int) -> None:
    path = shared_data / "wifi" / "probing-patterns" / f"{phone}_anonymized.pcap"
    tracker = WifiTracker()
    for frame in sorted(read_frames(path), key=lambda f: f.mono):
        tracker.observe(frame)
    assert tracker.device_count() == stations


def test_options_from_core_section() -> None:
    opts = WifiTrackerOptions.from_mapping(
        {"wifi_join_window_s": 120, "wifi_seq_window": 32, "min_rssi_dbm": -70}
    )
    assert opts.join_window_s == 120.0 and opts.seq_window == 32
    assert opts.near_join_window_s == WifiTrackerOptions().near_join_window_s
