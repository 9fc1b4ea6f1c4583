"""Memory stays bounded under MAC churn, and device ids stay unique across core restarts."""

from __future__ import annotations

import json

import pytest

from scanner.core import ambient as ambient_module
from scanner.core.ble_tracking import BleTracker, TrackerOptions
from scanner.core.pipeline import Core
from scanner.core.wifi_tracking import WifiTracker, WifiTrackerOptions
from scanner.sources.ble.classify import classify
from scanner.store.db import Store
from tests.core.helpers import Harness, advert, probe


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
    assert len(tracker.stations[first].macs) <= 500


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
