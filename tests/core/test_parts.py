"""The core's parts on their own: options, ambient learning, calibration, stored tables."""

from __future__ import annotations

import pytest

from scanner.config import ConfigError
from scanner.core.ambient import AmbientBaseline
from scanner.core.calibration import CalibrationError, combine, measure
from scanner.core.detectors import REGISTRY
from scanner.core.options import CoreOptions
from scanner.core.presence import Calibration, calibrations_from_setting
from scanner.core.sightings import SightingAggregator
from scanner.observations import SourceEvent
from scanner.sinks.store import StoreSink
from scanner.store.db import Store
from scanner.store.devices import get_device, upsert_devices
from scanner.store.sightings import list_sightings
from tests.core.helpers import START, advert, probe


def test_options_from_config_section() -> None:
    opts = CoreOptions.from_mapping(
        {
            "zone": {"wifi": {"enter_dbm": -50, "exit_dbm": -54}},
            "ambient_learning_s": 900,
            "min_samples": 3,
            "allowlist": [{"match": "mac", "value": "AA:BB:CC:DD:EE:FF", "label": "tablet"}],
        }
    )
    assert opts.zone["wifi"].enter_dbm == -50.0
    assert opts.zone["ble"] == CoreOptions().zone["ble"]
    assert (opts.ambient_learning_s, opts.min_samples) == (900.0, 3)
    assert opts.allowlist[0]["label"] == "tablet"
    trackers = CoreOptions.from_mapping({"wifi_join_window_s": 60, "ble_settle_s": 2})
    assert trackers.trackers == {"wifi_join_window_s": 60, "ble_settle_s": 2}
    for bad in (
        {"nonsense": 1},
        {"window_s": "long"},
        {"window_s": -1},
        {"zone": {"wifi": {"enter_dbm": -60, "exit_dbm": -50}}},
        {"allowlist": [{"match": "ssid", "value": "x"}]},
    ):
        with pytest.raises(ConfigError):
            CoreOptions.from_mapping(bad)


def test_registry_declares_thresholds_with_units() -> None:
    names = [d.name for d in REGISTRY]
    assert names == ["wifi_station_in_zone", "ble_handset_in_zone", "uplink_energy_in_zone"]
    for det in REGISTRY:
        assert det.inputs and det.description
        assert all(k.endswith(("_dbm", "_db", "_s", "_weight", "_bursts")) for k in det.thresholds)


def test_ambient_startup_and_later_learning() -> None:
    opts = CoreOptions(ambient_learning_s=300.0)
    amb = AmbientBaseline(opts, start_mono=0.0)
    for t in range(0, 1300, 10):
        amb.observe("tv", float(t), -50.0, -55.0)  # inside level from the start: furniture
        if t >= 20:
            amb.observe("visitor", float(t), -75.0 if t < 60 else -45.0, -55.0)
        if t >= 400:
            amb.observe("neighbour", float(t), -62.0, -55.0)  # always outside, arrives later
    amb.note_entered("visitor")
    learned = amb.tick(1300.0)
    assert set(learned) == {"tv", "neighbour"}
    assert amb.suppresses("tv", -50.0) and not amb.suppresses("tv", -38.0)
    assert not amb.is_ambient("visitor")
    restored = AmbientBaseline(opts)
    restored.restore(amb.snapshot(), 0.0)
    assert restored.suppresses("tv", -49.0)


def test_calibration_from_measurements() -> None:
    events: list[SourceEvent] = [
        probe(float(i), "02:00:00:00:00:01", -60 - (i % 3)) for i in range(10)
    ]
    events += [advert(float(i), "5A:00:00:00:00:01", -75) for i in range(10)]
    events += [probe(float(i), "02:00:00:00:00:09", -90, fp="fp-b") for i in range(10)]
    found = measure(events)
    assert found["wifi"].level == -61.0 and found["wifi"].source == "fingerprint fp-a"
    assert found["ble"].level == -75.0
    cal = combine({"boundary": {"wifi": {"level": -62}}, "inside": {"wifi": {"level": -48}}})
    th = cal["wifi"].thresholds()
    assert (th.enter_dbm, th.exit_dbm) == (-55.0, -59.2)
    with pytest.raises(CalibrationError, match="inside first"):
        combine({"boundary": {"wifi": {"level": -62}}})
    with pytest.raises(CalibrationError, match="not stronger"):
        combine({"boundary": {"wifi": {"level": -50}}, "inside": {"wifi": {"level": -51}}})
    parsed = calibrations_from_setting(
        {"wifi": Calibration("wifi", -62, -48).to_dict(), "ble": {"boundary_dbm": "x"}}
    )
    assert set(parsed) == {"wifi"}


def test_devices_and_sightings_tables() -> None:
    store = Store(":memory:")
    device = {
        "id": "wifi:w1",
        "radio": "wifi",
        "kind": "handset",
        "vendor": None,
        "first_seen": START,
        "last_seen": START + 5,
        "identifiers": {"macs": ["02:00:00:00:00:01"], "fingerprints": ["fp"], "ble": []},
        "evidence": ["probe requests from a randomised address"],
        "last_rssi": -50,
        "in_zone": True,
        "ambient": False,
    }
    assert upsert_devices(store, [device]) == 1
    assert upsert_devices(store, [{**device, "last_seen": START + 9, "in_zone": False}]) == 1
    row = get_device(store, "wifi:w1")
    assert row is not None
    assert row["identifiers"]["macs"] == ["02:00:00:00:00:01"]
    assert (row["last_seen"], row["in_zone"], row["radios"]) == (START + 9, False, ["wifi"])
    agg = SightingAggregator()
    for i in range(150):
        agg.add("wifi:w1", "wifi", "wifi", "02:00:00:00:00:01", START + i, -50 - i % 7)
    finished = agg.take(START + 120)
    assert len(finished) == 2  # the two finished minutes
    StoreSink(store).handle(finished)
    rest = agg.take()
    assert len(rest) == 1
    StoreSink(store).handle(rest)
    rows = list_sightings(store, START - 60, START + 300)
    assert sum(r["count"] for r in rows) == 150
    assert rows[0]["rssi_min"] == -56 and rows[0]["rssi_max"] == -50


def test_zone_thresholds_follow_a_calibration_set_after_they_were_asked() -> None:
    from scanner.core.presence import ZoneModel

    options = CoreOptions()
    zone = ZoneModel(options)
    assert zone.thresholds("wifi-1", "wifi") == options.zone["wifi"]
    zone.set_calibrations({"wifi-1": Calibration("wifi-1", -70.0, -50.0)})
    assert zone.thresholds("wifi-1", "wifi") == Calibration("wifi-1", -70.0, -50.0).thresholds()
    assert zone.thresholds("wifi-2", "wifi") == options.zone["wifi"]
    zone.set_calibrations({"ble": Calibration("ble", -80.0, -60.0)})  # a radio's, any sensor
    assert zone.thresholds("wifi-1", "wifi") == options.zone["wifi"]
    assert zone.thresholds("ble-9", "ble") == Calibration("ble", -80.0, -60.0).thresholds()
    # Sensor names come from the wire: what is remembered stays bounded.
    for i in range(1000):
        assert zone.thresholds(f"s{i}", "sdr") == options.zone["sdr"]
    assert len(zone._thresholds) <= 256
