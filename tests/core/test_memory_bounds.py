"""Memory stays bounded under MAC churn, and device ids stay unique across core restarts."""

from __future__ import annotations

import json

import pytest

from scanner.core import alerting as alerting_module
from scanner.core import ambient as ambient_module
from scanner.core import ble_tracking as ble_tracking_module
from scanner.core import fusion as fusion_module
from scanner.core.ble_tracking import BleTracker, TrackerOptions
from scanner.core.devices import MAX_DEVICES as CORE_MAX_DEVICES
from scanner.core.events import DeviceChanged, SightingMinute
from scanner.core.pipeline import Core
from scanner.core.sightings import MAX_BUCKETS, SPILL_BUCKETS, SightingAggregator
from scanner.core.wifi_tracking import WifiTracker, WifiTrackerOptions
from scanner.observations import BleAdvert, WifiFrame
from scanner.sinks.evidence import MAX_DEVICES, EvidenceKeeper
from scanner.sources.ble.classify import classify
from scanner.store.db import Store
from tests.core.helpers import START, Harness, advert, probe


def _mac(n: int) -> str:
    return f"da:00:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}:01"


def _ble(n: int) -> str:
    return f"4A:00:{(n >> 16) & 0xFF:02X}:{(n >> 8) & 0xFF:02X}:{n & 0xFF:02X}:01"


def test_a_mac_flood_leaves_bounded_state_while_a_phone_in_the_zone_stays() -> None:
    core = Core()
    n = 0
    for step in range(600):  # 5 minutes, 20 new far-away MACs a second, a phone inside
        t = step * 0.5
        for _ in range(10):
            core.handle(probe(t, _mac(n), -88, fp=f"fp-{n % 7}"))
            core.handle(advert(t, _ble(n), -90))
            n += 1
        core.handle(probe(t, "02:aa:bb:cc:dd:01", -40, fp="fp-phone"))
    t_end = 600 * 0.5
    core.tick(t_end)
    # Only transmitters heard within the presence windows (plus the phone) keep a presence.
    assert len(core._presence) < 2 * 20 * 25, len(core._presence)
    assert "wifi:02:aa:bb:cc:dd:01" in core._presence
    assert core.counters["pruned_transmitters"] > 5000
    assert core.stats().alerts["raised"] == 1
    assert core.alerting.handset is not None  # the phone's alert is still open


def test_ambient_candidates_that_cannot_qualify_are_dropped_learned_ones_kept() -> None:
    core = Core()
    for step in range(0, 1200, 2):  # 20 minutes: an AP heard throughout, passers-by
        t = float(step)
        core.handle(probe(t, "00:11:22:33:44:55", -80, fp="fp-ap", random_mac=False))
        core.handle(probe(t, _mac(step), -85, fp="fp-x"))
    core.tick(1200.0)
    assert core.ambient.is_ambient("wifi:00:11:22:33:44:55")
    # Passers-by heard once cannot fill 70% of a learning period's minutes: forgotten.
    assert core.ambient.candidates() < 300, core.ambient.candidates()
    assert core.counters["pruned_ambient_candidates"] > 200


def test_ambient_candidates_are_capped_longest_silent_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ambient_module, "MAX_CANDIDATES", 100)
    core = Core()
    for i in range(500):
        core.handle(probe(i * 0.01, _mac(i), -85, fp="fp-x"))
    core.tick(10.0)
    assert core.ambient.candidates() == 100
    assert core.ambient.watches(f"wifi:{_mac(499)}")
    assert not core.ambient.watches(f"wifi:{_mac(0)}")


def test_wifi_tracker_caps_macs_and_stations_evicting_least_recently_heard() -> None:
    tracker = WifiTracker(WifiTrackerOptions(max_macs=1000, max_stations=200))
    phone = "02:aa:bb:cc:dd:01"
    phone_id = tracker.observe(probe(0.0, phone, -40, fp="fp-phone"))
    for i in range(20_000):
        t = 0.001 * (i + 1)
        tracker.observe(probe(t, _mac(i), -80, fp=f"fp-{i}"))  # each its own station
        if i % 50 == 0:  # heard more recently than the 180 stations kept after a sweep
            assert tracker.observe(probe(t, phone, -40, fp="fp-phone")) == phone_id
    assert len(tracker._by_mac) <= 1000
    assert len(tracker.stations) <= 200
    assert tracker.evicted > 0
    # The phone is heard regularly: it keeps its station across the evictions.
    assert tracker.observe(probe(21.0, phone, -40, fp="fp-phone")) == phone_id


def test_wifi_tracker_mac_cap_keeps_an_active_station() -> None:
    tracker = WifiTracker(WifiTrackerOptions(max_macs=500))
    first = tracker.observe(probe(0.0, _mac(0), -60, fp="fp-one"))
    for i in range(1, 5000):  # one phone rotating its MAC every frame
        assert tracker.observe(probe(0.01 * i, _mac(i), -60, fp="fp-one")) == first
    assert len(tracker._by_mac) <= 500
    assert tracker.evicted_macs > 0
    assert _mac(4999) in tracker.macs_of(first)
    assert len(tracker.macs_of(first)) <= 500


def test_ble_tracker_caps_devices_least_recently_heard_first() -> None:
    tracker = BleTracker(TrackerOptions(max_tracks=300))
    for i in range(3000):
        a = advert(0.01 * i, _ble(i), -80)
        tracker.observe(a, classify(a))
    assert tracker.device_count() <= 300
    assert tracker.evicted >= 2700
    assert tracker.device_of(_ble(2999)) is not None
    assert tracker.device_of(_ble(0)) is None


def test_two_cores_on_one_store_never_reuse_a_device_id_for_another_device() -> None:
    store = Store(":memory:")
    seen: dict[str, str] = {}  # device id -> the first transmitter it named
    for run, base in enumerate((0, 100)):
        core = Harness(store)
        for i in range(20):
            t = float(i)
            core.handle(probe(t, _mac(base + i), -70, fp=f"fp-{base + i}"))
            core.handle(advert(t, _ble(base + i), -70))
        core.close(30.0)
        for row in store.query("SELECT id, identifiers FROM devices"):
            ident = json.loads(row["identifiers"])
            first = (ident.get("macs") or ident.get("ble") or [""])[0]
            seen.setdefault(row["id"], first)
            assert seen[row["id"]] == first, (run, row["id"])
    ids = [r["id"] for r in store.query("SELECT id FROM devices")]
    assert len(ids) == 80  # 20 stations and 20 BLE devices per run, none overwritten
    assert store.get_setting("core_runs") == 2


def test_fusion_forgets_sibling_candidates_past_the_identity_gap() -> None:
    """Each visitor's transmitters stop being join candidates once the gap has passed."""
    core = Core()
    for visit in range(40):  # one phone a minute, in the zone for 20 s
        start = visit * 60.0
        for i in range(20):
            core.handle(probe(start + i, f"02:00:00:00:{visit:02x}:01", -40, fp=f"fp-{visit}"))
        core.tick(start + 59.0)
    gap = core.options.identity_gap_s
    # Visitors within the gap (two or three a minute apart) remain; the other 37 are gone.
    assert 0 < len(core.fusion._last_active) <= gap / 60.0 + 1, len(core.fusion._last_active)


def test_hours_of_visits_leave_fusion_bounded_and_the_handset_count_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same visits through a core that never settles: the count to match.
    def visits(core: Core, hour: int) -> None:
        for visit in range(60):  # a new phone a minute, its Wi-Fi and BLE in for 20 s
            n = hour * 60 + visit
            start = n * 60.0
            mac = f"02:00:00:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}:01"
            ble = f"7A:00:00:{(n >> 8) & 0xFF:02X}:{n & 0xFF:02X}:01"
            for i in range(20):
                core.handle(probe(start + i, mac, -40, fp=f"fp-visit-{n}"))
                core.handle(advert(start + i + 0.5, ble, -45))
            for quiet in range(25, 60, 5):  # the runner ticks the core while nobody is heard
                core.tick(start + quiet)

    monkeypatch.setattr(fusion_module, "SETTLE_AFTER_S", 1e9)
    unsettled = Core()
    for hour in range(4):
        visits(unsettled, hour)
    assert unsettled.fusion.table_sizes()["nodes"] >= 2 * 240  # what used to grow per visit
    monkeypatch.undo()

    # Settled addresses are remembered up to their cap, the oldest forgotten first.
    monkeypatch.setattr(fusion_module, "MAX_SETTLED_KEYS", 100)
    core = Core()
    sizes: list[dict[str, int]] = []
    for hour in range(4):  # four hours, a visitor a minute
        visits(core, hour)
        sizes.append(core.table_sizes())
    # Only the visits of the last SETTLE_AFTER_S (15 a quarter hour, two transmitters each)
    # are held, whether after one hour or four.
    held = 2 * (fusion_module.SETTLE_AFTER_S / 60.0 + 2)
    for table in (
        "nodes",
        "radios",
        "seen",
        "spans",
        "links",
        "strict",
        "strict_first",
    ):
        assert sizes[-1][f"fusion.{table}"] <= held, (table, sizes[-1])
    assert core.fusion.settled > 200
    assert sizes[-1]["fusion.settled_keys"] == 100
    assert core.fusion.forgotten_keys > 300
    # Every table of the core is as large after four hours as after two (no per-visit
    # growth), except the two that fill up to their caps (a guard acknowledges no alarm here).
    capped = {
        "fusion.settled_keys": 100,
        "alerting.closed_unacknowledged": alerting_module.MAX_CLOSED_UNACKED,
    }
    for table, size in sizes[-1].items():
        limit = capped.get(table, sizes[1][table] + 2)
        assert size <= limit, (table, sizes[1][table], size)
    assert core.fusion.handset_count() == unsettled.fusion.handset_count()


def test_the_same_address_back_after_settling_is_the_handset_already_counted() -> None:
    core = Core()
    phone = "02:aa:bb:cc:dd:01"
    back_at = fusion_module.SETTLE_AFTER_S + 600.0
    for start in (0.0, back_at):
        for i in range(20):
            core.handle(probe(start + i, phone, -40, fp="fp-phone"))
        core.tick(start + 59.0)
        core.tick(start + fusion_module.SETTLE_AFTER_S / 2)
    core.tick(back_at + 2 * fusion_module.SETTLE_AFTER_S)  # settled again
    assert core.fusion.settled == 2
    assert core.fusion.table_sizes()["nodes"] == 0
    assert core.fusion.handset_count() == 1


def test_a_flood_of_addresses_in_the_zone_settles_early_at_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def flood(core: Core) -> list[dict[str, int]]:
        sizes = []
        for n in range(600):  # a new address in the zone every 0.2 s, each heard for 1 s
            t = n * 0.2
            for i in range(5):
                core.handle(probe(t + i * 0.2, _mac(n), -40, fp=f"fp-{n}"))
            core.tick(t + 1.0)
            sizes.append(core.fusion.table_sizes())
        for quiet in range(1, 60):  # then silence, the runner ticking
            core.tick(600 * 0.2 + quiet)
        return sizes

    monkeypatch.setattr(fusion_module, "MAX_LIVE_KEYS", 1e9)
    unsettled = Core()
    flood(unsettled)
    monkeypatch.setattr(fusion_module, "MAX_LIVE_KEYS", 100)
    core = Core()
    # Open presences (in the zone, or within their leave hold) are never settled; the cap
    # holds the rest.
    for sizes in flood(core):
        assert sizes["nodes"] <= 100 + sizes["active"], sizes
    assert core.fusion.table_sizes()["nodes"] <= 100
    assert core.fusion.settled_early > 0
    assert core.fusion.handset_count() == unsettled.fusion.handset_count() > 400


def test_an_alert_open_through_a_flood_forgets_its_oldest_transmitters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alerting_module, "MAX_OWNED", 50)
    core = Core()
    phone = "02:aa:bb:cc:dd:01"
    for n in range(600):  # the phone stays; a new address walks in every second
        t = float(n)
        core.handle(probe(t, phone, -40, fp="fp-phone"))
        for i in range(3):
            core.handle(probe(t + i * 0.3, _mac(n), -42, fp=f"fp-{n}"))
        core.tick(t + 0.9)
    alert = core.alerting.handset
    assert alert is not None
    assert core.alerting.table_sizes()["owned"] <= 50
    assert core.alerting.owned_forgotten > 400
    assert f"wifi:{phone}" in alert.owned  # in the zone throughout: never forgotten


def test_a_ble_device_rotating_for_days_keeps_its_newest_addresses_only() -> None:
    tracker = BleTracker()
    first = None
    for n in range(300):  # 300 rotations (three days' worth), each address heard for 8 s
        t = n * 8.0
        for i in range(16):  # settles after 12 adverts, then is linked to the device
            a = advert(t + i * 0.5, _ble(n), -60)
            device = tracker.observe(a, classify(a))
        first = first or device
        assert device == first, n
    sizes = tracker.table_sizes()
    assert sizes["track_addresses"] <= ble_tracking_module.MAX_TRACK_ADDRESSES
    assert sizes["addresses"] <= ble_tracking_module.MAX_TRACK_ADDRESSES
    assert tracker.addresses_dropped >= 300 - ble_tracking_module.MAX_TRACK_ADDRESSES
    assert tracker.device_of(_ble(299)) == first
    newest = [_ble(n) for n in range(300 - ble_tracking_module.MAX_TRACK_ADDRESSES, 300)]
    assert first is not None and tracker.addresses_of(first) == newest
    assert tracker.device_of(_ble(0)) is None


def test_records_of_one_transmitter_share_their_names_as_the_wire_decoder_reads_them() -> None:
    # The JSON decoder makes a new string for every field of every record; under a crowd the
    # core's queue holds 20,000 records and its tables 20,000 addresses, so the names a
    # transmitter's records repeat are one object each.
    from dataclasses import replace

    from scanner.runtime.transport.codec import decode_line, encode_line

    mac = "".join(["da:00:00:", "00:01:01"])  # built at run time, as a decoder builds it
    frames = [
        decode_line(encode_line(replace(probe(t, mac, -70, fp="fp-x"), raw=b"\x40\x00")))
        for t in (1.0, 2.0)
    ]
    assert isinstance(frames[0], WifiFrame) and isinstance(frames[1], WifiFrame)
    for name in ("mac", "fingerprint", "subtype", "sensor"):
        assert getattr(frames[0], name) is getattr(frames[1], name), name
    adverts = [decode_line(encode_line(advert(t, _ble(7), -70))) for t in (1.0, 2.0)]
    assert isinstance(adverts[0], BleAdvert) and isinstance(adverts[1], BleAdvert)
    for name in ("address", "address_type", "sensor"):
        assert getattr(adverts[0], name) is getattr(adverts[1], name), name


def test_stations_of_one_model_share_their_element_list_while_they_repeat_it() -> None:
    # Two phones of one model, heard ten minutes apart (past every join window, so two
    # stations), each probing with the same element list and asking for the same network,
    # frame after frame: both hold the one shared set of each as long as they only repeat it;
    # a second list makes a set of the station's own.
    tracker = WifiTracker()

    def probes(mac: str, t0: float) -> str:
        ids = {
            tracker.observe(
                WifiFrame(t, t, "probe_req", mac, False, -60, 2437, "gate-net", n, "fp-model-a")
            )
            for n, t in enumerate(t0 + x * 0.5 for x in range(40))
        }
        assert len(ids) == 1
        return ids.pop()

    first_id, second_id = probes("00:17:f2:00:00:01", 0.0), probes("00:17:f2:00:00:02", 600.0)
    assert first_id != second_id
    first, second = tracker.stations[first_id], tracker.stations[second_id]
    assert first.fingerprints == {"fp-model-a"} and first.ssids == {"gate-net"}
    assert first.fingerprints is second.fingerprints
    assert first.ssids is second.ssids
    tracker.observe(WifiFrame(630.0, 630.0, "probe_req", "00:17:f2:00:00:02", False, -60, 2437,
                              "gate-net", 99, "fp-model-b"))  # fmt: skip
    assert second.fingerprints == {"fp-model-a", "fp-model-b"}
    assert first.fingerprints == {"fp-model-a"}


def test_a_flooded_minute_spills_its_oldest_sightings_and_loses_no_observation() -> None:
    agg = SightingAggregator()
    heard = 0
    for n in range(3 * MAX_BUCKETS):  # new addresses within one minute, one phone among them
        agg.add(f"wifi:{n}", "wifi", "wifi-1", _mac(n), START + n * 0.004, -90.0)
        agg.add("wifi:phone", "wifi", "wifi-1", "02:aa:bb:cc:dd:01", START + n * 0.004, -40.0)
        heard += 2
        assert len(agg) <= MAX_BUCKETS
    assert agg.spilled > 0
    early = agg.take_spilled()
    assert agg.spilled == 0
    # Spilled oldest first, before their minute ended; the rest wait for it.
    assert [r.first_ts for r in early] == sorted(r.first_ts for r in early)
    assert agg.take(START + 30.0) == []
    rows = early + agg.take(START + 60.0)
    assert len(agg) == 0
    assert sum(r.count for r in rows) == heard
    phone = [r for r in rows if r.identifier == "02:aa:bb:cc:dd:01"]
    # The phone's minute came in more than one row, each with its own part of the count.
    assert len(phone) > 1
    assert sum(r.count for r in phone) == 3 * MAX_BUCKETS
    assert all(r.rssi_min == r.rssi_max == -40.0 for r in phone)


def test_the_core_hands_out_spilled_sightings_at_its_next_tick() -> None:
    core = Core()
    events = []
    for n in range(MAX_BUCKETS + 10):  # a flood of addresses in the first seconds of a minute
        events += core.handle(probe(n * 0.001, _mac(n), -90, fp="fp-x"))
    events += core.tick(5.0)  # long before the periodic flush (every 30 s by default)
    rows = [e for e in events if isinstance(e, SightingMinute)]
    assert len(rows) == SPILL_BUCKETS
    assert core.counters["sightings_spilled"] == SPILL_BUCKETS
    assert {r.identifier for r in rows} == {_mac(n) for n in range(SPILL_BUCKETS)}


def test_the_evidence_keeper_remembers_as_many_devices_as_the_core_holds() -> None:
    kept = EvidenceKeeper(Store(":memory:"))

    def changed(i: int) -> DeviceChanged:
        return DeviceChanged({"id": f"wifi:d{i}", "identifiers": {"macs": [_mac(i)]}})

    # A crowd's devices change; device 0 is heard throughout, so it changes at every flush.
    for first in range(0, MAX_DEVICES + 100, 1000):
        kept.handle([changed(0)] + [changed(i) for i in range(first + 1, first + 1001)])
    assert MAX_DEVICES == CORE_MAX_DEVICES
    assert len(kept._devices) == MAX_DEVICES
    assert kept._devices["wifi:d0"] == ("wifi:" + _mac(0),)
    assert "wifi:d1" not in kept._devices  # the longest unchanged went first
    assert f"wifi:d{MAX_DEVICES + 100}" in kept._devices


def test_spilled_sightings_handed_out_by_a_flush_are_counted_too() -> None:
    core = Core()
    for n in range(MAX_BUCKETS + 10):
        core.handle(probe(n * 0.001, _mac(n), -90, fp="fp-x"))
    # A flush before the next tick (as at the end of a replay) takes the spilled rows with it.
    events = core.flush(START + 5.0)
    rows = [e for e in events if isinstance(e, SightingMinute)]
    assert len(rows) == SPILL_BUCKETS
    assert core.counters["sightings_spilled"] == SPILL_BUCKETS
