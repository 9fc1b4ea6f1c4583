"""Our live capture against the real Linux radio stacks (mac80211_hwsim, BlueZ on btvirt).

The scenarios ran inside one VM (``radio_scenarios.py``); each test here judges one part of
their evidence. The frames are read back with a small pcap and 802.11 header reader of this
file's own, so the filter check does not lean on the parser it is checking.
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import pytest

from tests.kernel.kernel_vm import Evidence

# The whole suite is one VM boot in the first test's setup: give it the VM's own bound.
pytestmark = pytest.mark.timeout(1200)

CH1, CH6, CH11 = 2412, 2437, 2462
# 802.11 frame control: (type, subtype) of the frames our BPF filter must pass.
PROBE_REQ = (0, 4)
DATA_SUBTYPES = {0: "data", 4: "null", 8: "qos_data", 12: "qos_null"}


def read_pcap(path: Path) -> list[bytes]:
    """The frames of a little-endian microsecond pcap (what PcapWriter writes)."""
    blob = path.read_bytes()
    magic, _vmaj, _vmin, _tz, _sig, _snap, linktype = struct.unpack_from("<IHHiIII", blob)
    assert magic == 0xA1B2C3D4, f"{path}: not a little-endian pcap"
    assert linktype == 127, f"{path}: link type {linktype}, not radiotap"
    frames, offset = [], 24
    while offset + 16 <= len(blob):
        _sec, _usec, incl, _orig = struct.unpack_from("<IIII", blob, offset)
        frames.append(blob[offset + 16 : offset + 16 + incl])
        offset += 16 + incl
    return frames


def dot11(frame: bytes) -> bytes:
    """The 802.11 frame after its radiotap header."""
    (length,) = struct.unpack_from("<H", frame, 2)
    return frame[length:]


def wanted(body: bytes) -> bool:
    """What the filter is meant to pass: probe requests, and to-DS data and null frames."""
    ftype, subtype = (body[0] >> 2) & 3, body[0] >> 4
    to_ds, from_ds = bool(body[1] & 1), bool(body[1] & 2)
    if (ftype, subtype) == PROBE_REQ:
        return True
    return ftype == 2 and to_ds and not from_ds and subtype in DATA_SUBTYPES


def kind(body: bytes) -> str:
    ftype, subtype = (body[0] >> 2) & 3, body[0] >> 4
    return f"type{ftype}/subtype{subtype}"


def test_monitor_mode_is_set_up_by_our_code(evidence: Evidence) -> None:
    entry = evidence.scenario("wifi_monitor_filter_data")
    if not evidence.hardware:
        # hwsim's interfaces come up managed: only our ensure_monitor can have switched it.
        assert entry["type_before"] == "managed"
    assert entry["type_after"] == "monitor"
    states = [
        r["state"] for r in evidence.records("wifi_monitor.jsonl") if r["record"] == "SensorStatus"
    ]
    assert "ok" in states, states
    assert "fault" not in states[: states.index("ok")], states


def test_kernel_filter_passes_exactly_the_frames_we_use(evidence: Evidence) -> None:
    evidence.scenario("wifi_monitor_filter_data")
    ours = [dot11(f) for f in read_pcap(evidence.out / "wifi_ours.pcap")]
    reference = [dot11(f) for f in read_pcap(evidence.out / "wifi_reference.pcap")]
    assert ours, "our filtered socket captured nothing"
    passed_unwanted = Counter(kind(b) for b in ours if not wanted(b))
    assert not passed_unwanted, f"the filter let through {passed_unwanted}"
    # The unfiltered capture ran inside ours: every wanted frame it saw, ours saw too.
    dropped = Counter(b for b in reference if wanted(b)) - Counter(ours)
    assert not dropped, f"{sum(dropped.values())} wanted frames missing from ours"
    # And there was something to filter out (the access point's beacons at least).
    assert any(not wanted(b) for b in reference)


def test_data_and_null_frames_of_an_associated_station(evidence: Evidence) -> None:
    entry = evidence.scenario("wifi_monitor_filter_data")
    if evidence.hardware:
        pytest.skip("needs a station we control")
    frames = [
        r
        for r in evidence.records("wifi_monitor.jsonl")
        if r["record"] == "WifiFrame" and r["mac"] == entry["sta_mac"]
    ]
    subtypes = Counter(f["subtype"] for f in frames)
    # 40 frames sent through the station; the AP has WMM, so they go as QoS data.
    assert subtypes["qos_data"] + subtypes["data"] >= 40, subtypes
    # Going off channel to scan, mac80211 tells the AP with a null frame, and again coming back.
    assert subtypes["null"] + subtypes["qos_null"] >= 2, subtypes
    data = [f for f in frames if f["subtype"] != "probe_req"]
    assert {f["bssid"] for f in data} == {entry["ap_mac"]}
    assert {f["freq_mhz"] for f in data} == {CH6}
    assert all(isinstance(f["rssi_dbm"], int) for f in data)


def test_hopping_hears_a_scanning_station_on_every_planned_channel(evidence: Evidence) -> None:
    entry = evidence.scenario("wifi_hopping")
    probes = [
        r
        for r in evidence.records("wifi_hopping.jsonl")
        if r["record"] == "WifiFrame"
        and r["subtype"] == "probe_req"
        and r["mac"] == entry["sta_mac"]
    ]
    freqs = Counter(p["freq_mhz"] for p in probes)
    assert set(freqs) == {CH1, CH6, CH11}, freqs


def test_interface_deleted_mid_capture_is_a_fault_and_recovers(evidence: Evidence) -> None:
    entry = evidence.scenario("wifi_hopping")
    assert entry["fault_after_s"] is not None, "no fault after the interface was deleted"
    assert "wlan0" in entry["fault_message"], entry["fault_message"]
    assert entry["recovered_after_s"] is not None, "no recovery after the interface came back"
    # It came back managed; our setup put it in monitor mode again by itself.
    assert entry["type_after_recovery"] == "monitor"
    assert entry["frames_after_recovery"] > 0
    records = evidence.records("wifi_hopping.jsonl")
    deleted = next(r["t_mono"] for r in records if r.get("label") == "iface_deleted")
    added = next(r["t_mono"] for r in records if r.get("label") == "iface_added")
    while_gone = [
        r["state"]
        for r in records
        if r["record"] == "SensorStatus" and deleted <= r["t_mono"] < added
    ]
    assert "fault" in while_gone and "ok" not in while_gone[while_gone.index("fault") :]


def _adverts(evidence: Evidence) -> list[dict[str, object]]:
    return [r for r in evidence.records("ble.jsonl") if r["record"] == "BleAdvert"]


def test_bluez_stack_comes_up_with_virtual_controllers(evidence: Evidence) -> None:
    entry = evidence.scenario("ble_stack_up")
    assert len(entry["controllers"]) == 4


def test_passive_scan_hears_and_classifies_the_adverts(evidence: Evidence) -> None:
    entry = evidence.scenario("ble_passive_classified")
    assert "passive" in entry["message"]
    if evidence.hardware:
        assert _adverts(evidence), "no advert heard in a minute"
        return
    assert entry["all_heard"], entry["classes"].keys()
    expected = {
        "continuity": ("handset", "Apple", "apple:nearby_info"),
        "fast_pair": ("audio", "Google", "google:fast_pair"),
        "ibeacon": ("beacon", "Apple", "apple:ibeacon"),
    }
    for name, (kind_, vendor, protocol) in expected.items():
        got = {
            (c["kind"], c["vendor"], tuple(c["protocols"]))
            for c in entry["classes"][name]["classes"]
        }
        assert got == {(kind_, vendor, (protocol,))}, (name, got)


def test_rssi_not_available_is_unknown(evidence: Evidence) -> None:
    # btvirt reports every advert with RSSI 127, HCI's "not available".
    entry = evidence.scenario("ble_passive_classified")
    if evidence.hardware:
        pytest.skip("a real controller reports real RSSI")
    rssis = {r["rssi_dbm"] for r in _adverts(evidence)}
    assert rssis == {None}, rssis
    assert all(entry["classes"][n]["rssi"] == [None] for n in entry["classes"])


def _states_between(evidence: Evidence, start: str, end: str) -> list[tuple[str, str]]:
    """The BLE source's (state, message) reports between two scenario marks."""
    records = evidence.records("ble.jsonl")
    t0 = next(r["t_mono"] for r in records if r.get("label") == start)
    t1 = next(r["t_mono"] for r in records if r.get("label") == end)
    return [
        (r["state"], r["message"])
        for r in records
        if r["record"] == "SensorStatus" and t0 <= r["t_mono"] < t1
    ]


def test_bluetoothd_restart_is_noticed_and_scanning_resumes(evidence: Evidence) -> None:
    entry = evidence.scenario("ble_bluetoothd_restart")
    assert entry["left_ok"], "still ok with bluetoothd gone"
    # bluetoothd powers its adapters off as it exits: the source says so and rescans.
    down = _states_between(evidence, "bluetoothd_stop", "bluetoothd_start")
    assert any(state != "ok" for state, _ in down), down
    assert entry["ok_again"], "not scanning again after bluetoothd came back"
    assert entry["all_heard"], "adverts did not come back"


def test_controller_removed_and_back_recovers(evidence: Evidence) -> None:
    entry = evidence.scenario("ble_controller_removed")
    assert entry["left_ok"], "still ok with the controller gone"
    gone = _states_between(evidence, "controllers_removed", "controllers_back")
    faults = [message for state, message in gone if state == "fault"]
    assert any("hci0" in m and "not found" in m for m in faults), gone
    assert gone[-1][0] == "fault", gone
    assert entry["ok_again"], "not scanning again after the controller came back"
    assert entry["all_heard"], "adverts did not come back"


def test_capture_daemons_feed_the_core(evidence: Evidence) -> None:
    """``checkpoint core``, ``capture wifi`` and ``capture ble`` as systemd runs them."""
    entry = evidence.scenario("daemons")
    assert entry["both_ok"], entry["health"]
    # bluetoothd still held the advertisers' objects from the in-process scans as the BLE
    # daemon started (their reports then change nothing and reach no D-Bus client); the daemon
    # heard them all the same, and its adverts were on disk while it ran, not only at exit.
    assert len(entry["bluez_devices_at_start"]) >= 3, entry["bluez_devices_at_start"]
    assert entry["ble_recorded"], entry["since_ble_stop_s"]
    assert entry["health"]["wifi"] == entry["health"]["ble"] == "ok", entry["health"]
    # Each stopped cleanly on SIGTERM, as systemd stops them.
    assert entry["exit_codes"] == {"wifi": 0, "ble": 0, "core": 0}
    sta = evidence.scenario("wifi_hopping")["sta_mac"]
    probes = [b for b in map(dot11, read_pcap(evidence.out / "daemon_wifi.pcap")) if wanted(b)]
    senders = {":".join(f"{x:02x}" for x in b[10:16]) for b in probes}
    assert sta in senders, senders
    records = evidence.records("daemon_ble.jsonl")
    apple = {r["manufacturer_data"].get("76", "")[:4] for r in records}
    assert {"1005", "0215"} <= apple, apple
    assert any("0000fe2c" in uuid for r in records for uuid in r["service_data"]), records[:3]
    # btvirt's RSSI 127 ("not available") is recorded as unknown here too.
    assert {r["rssi"] for r in records} == {None}
