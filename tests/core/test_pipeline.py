"""The core end to end on hand-made observations: alerts open, update, resolve, and stay quiet."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.core.identity import AddressBleIdentity, AddressWifiIdentity
from scanner.core.options import CoreOptions
from scanner.observations import Radio, SensorState, SensorStatus
from scanner.store import alerts as alert_store
from scanner.store.allowlist import AllowlistEntry, replace_entries
from scanner.store.db import Store
from tests.core.helpers import START, Harness, advert, burst, classify_all_handsets, probe


def _core(store: Store | None = None, **opts: Any) -> tuple[Harness, list[dict[str, Any]]]:
    core = Harness(
        store,
        CoreOptions(**opts),
        wifi_tracker=AddressWifiIdentity(),
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )
    return core, core.lines


def _walk_in(core: Harness, mac: str, t0: float, t1: float, inside: int = -45) -> None:
    """Probe bursts every 2 s: weak outside before t0, strong inside until t1, weak after."""
    t = t0 - 20
    while t < t1 + 40:
        rssi = inside if t0 <= t < t1 else -75
        core.handle(probe(t, mac, rssi))
        core.handle(probe(t + 0.05, mac, rssi))
        t += 2.0


def test_walk_in_raises_once_and_resolves_after_leaving() -> None:
    store = Store(":memory:")
    core, lines = _core(store)
    _walk_in(core, "02:00:00:00:00:01", 100.0, 160.0)
    core.tick(300.0)
    assert [ln["event"] for ln in lines] == ["raised"]
    assert 100.0 <= lines[0]["ts"] - START <= 102.5
    assert lines[0]["sensors"] == ["wifi"]
    assert lines[0]["reasons"][0].startswith("Wi-Fi probe -45 dBm")
    (alert,) = alert_store.list_alerts(store)
    assert alert.state == "resolved" and alert.resolution == "left_zone"
    assert alert.resolved_ts is not None
    assert 160.0 < alert.resolved_ts - START < 220.0
    events = [h["event"] for h in alert_store.alert_history(store, alert.id)]
    assert events == ["raised", "resolved"]
    device = store.query("SELECT identifiers FROM devices")
    assert "02:00:00:00:00:01" in device[0]["identifiers"]


def test_boundary_phone_does_not_flap() -> None:
    core, lines = _core()
    # Walks in, then hovers between the exit and enter thresholds for ten minutes.
    for i in range(5):
        core.handle(probe(float(i), "02:00:00:00:00:02", -75))
    for i in range(4):
        core.handle(probe(10.0 + i, "02:00:00:00:00:02", -50))
    for i in range(600):
        core.handle(probe(20.0 + i, "02:00:00:00:00:02", -56 if i % 2 else -58))
    assert [ln["event"] for ln in lines] == ["raised"]
    assert core.alerting.handset is not None


def test_weak_phone_outside_never_alerts() -> None:
    core, lines = _core()
    for i in range(1000):
        core.handle(probe(float(i), "02:00:00:00:00:03", -66 + (i % 5)))
    core.tick(1100.0)
    assert lines == []


def test_wifi_and_ble_of_one_phone_are_one_handset_second_phone_updates() -> None:
    # Every transmitter entering adds a line; co-entry makes the phone's BLE the same handset.
    core, lines = _core()
    for i in range(30):
        t = 50.0 + i
        core.handle(probe(t, "02:00:00:00:00:04", -45))
        core.handle(advert(t + 0.3, "5A:00:00:00:00:04", -55))
    for i in range(10):
        core.handle(advert(90.0 + i, "5B:00:00:00:00:05", -52))
    events = [(ln["event"], ln["handsets"]) for ln in lines]
    assert events == [("raised", 1), ("updated", 1), ("updated", 2)]
    assert lines[0]["sensors"] == ["wifi"]
    assert lines[2]["sensors"] == ["ble", "wifi"]
    assert any("Apple Nearby Info -55 dBm" in r for r in lines[2]["reasons"])
    assert core.stats().handsets_counted == 2


def test_allowlisted_by_config_and_by_store_edit() -> None:
    store = Store(":memory:")
    core, lines = _core(
        store, allowlist=({"match": "mac", "value": "02:00:00:00:00:0A", "label": "guard tablet"},)
    )
    for i in range(20):
        core.handle(probe(10.0 + i, "02:00:00:00:00:0a", -40))
    assert lines == []
    replace_entries(
        store, [AllowlistEntry("mac", "00:1b:63:00:00:0b", "issued radio")], "supervisor", START
    )
    core.tick(40.0)
    for i in range(20):
        core.handle(probe(50.0 + i, "00:1b:63:00:00:0b", -40, fp="fp-radio", random_mac=False))
    assert lines == []
    counters = core.detectors.snapshot()["wifi_station_in_zone"]
    assert counters["allowlisted"] >= 30


def test_a_fingerprint_entry_exempts_no_phone() -> None:
    store = Store(":memory:")
    core, lines = _core(store)
    replace_entries(
        store, [AllowlistEntry("fingerprint", "fp-radio", "issued radio")], "supervisor", START
    )
    core.tick(40.0)
    for i in range(20):
        core.handle(probe(50.0 + i, "02:00:00:00:00:0b", -40, fp="fp-radio"))
    assert [ln["event"] for ln in lines][:1] == ["raised"]


def test_uplink_alone_is_an_unidentified_transmitter_then_supports_a_handset() -> None:
    core, lines = _core()
    for i in range(10):
        core.handle(burst(100.0 + i * 0.5, 40.0))
    assert [(ln["event"], ln["kind"]) for ln in lines] == [("raised", "unidentified_transmitter")]
    assert lines[0]["reasons"] == ["uplink burst B20 +40 dB SNR"]
    for i in range(6):
        core.handle(advert(105.0 + i, "5C:00:00:00:00:06", -50))
        core.handle(burst(105.2 + i, 40.0))
    kinds = [(ln["event"], ln["kind"]) for ln in lines]
    assert kinds[-1] == ("raised", "handset")
    assert "sdr" in lines[-1]["sensors"] or core.alerting.handset is not None
    assert core.alerting.unidentified is None


def test_weak_uplink_is_not_an_alert() -> None:
    core, lines = _core()
    for i in range(200):
        core.handle(burst(100.0 + i, 18.0))
    assert lines == []


def test_ambient_device_is_learned_then_alerts_only_when_it_comes_close() -> None:
    core, lines = _core(ambient_learning_s=300.0)
    # A phone on charge inside the zone from power-on, randomisation off (a Xiaomi OUI):
    # alerts during learning, then learned as ambient.
    for i in range(8 * 3600 // 5):
        core.handle(probe(1.0 + i * 5, "50:8e:49:33:44:55", -50 + (i % 3), random_mac=False))
    learning_lines = [ln for ln in lines if ln["ts"] - START <= 300.0 + 60.0]
    assert len(learning_lines) == len(lines) >= 1
    assert core.ambient.is_ambient("wifi:50:8e:49:33:44:55")
    lines.clear()
    t = 8 * 3600.0 + 10
    for i in range(10):
        core.handle(probe(t + i, "50:8e:49:33:44:55", -30, random_mac=False))
    assert [ln["event"] for ln in lines] == ["raised"]


def test_ambient_baseline_survives_a_restart_and_sensors_report_last_observation() -> None:
    store = Store(":memory:")
    core, lines = _core(store, ambient_learning_s=120.0)
    core.handle(
        SensorStatus(ts=START, mono=0.0, sensor="wifi", radio=Radio.WIFI, state=SensorState.OK)
    )
    for i in range(60):
        core.handle(probe(1.0 + i * 5, "50:8e:49:33:44:66", -50, random_mac=False))
    assert lines  # alerted while learning
    assert "wifi:50:8e:49:33:44:66" in store.get_setting("ambient_baseline", {})
    again, new_lines = _core(store, ambient_learning_s=120.0)
    for i in range(30):
        again.handle(probe(400.0 + i * 5, "50:8e:49:33:44:66", -50, random_mac=False))
    assert new_lines == []
    row = store.query("SELECT last_obs_ts FROM sensor_health WHERE sensor = 'wifi'")
    assert row[0]["last_obs_ts"] == pytest.approx(START + 400.0 + 29 * 5)


def test_allowlisting_the_device_of_an_open_alert_resolves_it() -> None:
    store = Store(":memory:")
    core, lines = _core(store)
    for i in range(10):
        core.handle(probe(10.0 + i, "02:00:00:00:00:0c", -40))
    (alert,) = alert_store.list_alerts(store)
    assert alert.state == "open"
    replace_entries(
        store, [AllowlistEntry("mac", "02:00:00:00:00:0C", "new tablet")], "supervisor", START + 20
    )
    core.tick(25.0)
    alert = alert_store.get_alert(store, alert.id)
    assert (alert.state, alert.resolution) == ("resolved", "allowlisted")
    for i in range(10):
        core.handle(probe(30.0 + i, "02:00:00:00:00:0c", -40))
    assert [ln["event"] for ln in lines] == ["raised"]
