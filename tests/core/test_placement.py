"""Several sensors at one zone: the core judges a transmitter heard inside and at the gate on
the difference of the two levels of the same transmission, and falls back to one sensor's
absolute level, saying so, when the other goes silent."""

from __future__ import annotations

import dataclasses

import pytest

from scanner.config import ConfigError
from scanner.core.events import AlertRaised, CoreEvent, SensorHealth
from scanner.core.options import CoreOptions
from scanner.core.pipeline import Core
from scanner.core.placement import SensorSites
from scanner.observations import BleAdvert
from tests.core.helpers import advert

PHONE = "5A:11:22:33:44:55"
BOTH = {"in": "inside", "gate": "gate"}


def _core(placements: dict[str, str]) -> Core:
    return Core(CoreOptions(), placements=placements)


def _heard(t: float, sensor: str, rssi: int, address: str = PHONE) -> BleAdvert:
    return dataclasses.replace(advert(t, address, rssi), sensor=sensor)


def _feed(core: Core, records: list[BleAdvert]) -> list[CoreEvent]:
    out: list[CoreEvent] = []
    for rec in sorted(records, key=lambda r: r.mono):
        out.extend(core.handle(rec))
    return out


def _raised(events: list[CoreEvent]) -> list[AlertRaised]:
    return [e for e in events if isinstance(e, AlertRaised)]


def _copies(seconds: int, inside: int | None, gate: int | None, t0: float = 0.0) -> list[BleAdvert]:
    """One advertisement a second, heard by each sensor given a level (None: not heard)."""
    out: list[BleAdvert] = []
    for k in range(seconds):
        t = t0 + k + 0.5
        if inside is not None:
            out.append(_heard(t, "in", inside))
        if gate is not None:
            out.append(_heard(t + 0.004, "gate", gate))
    return out


def test_a_phone_outside_loud_at_the_gate_does_not_alarm_with_both_sensors() -> None:
    # In front of the gate: 27 dB louder at the gate sensor than inside (through the fence).
    fused = _feed(_core(BOTH), _copies(40, inside=-72, gate=-45))
    assert _raised(fused) == []
    # The gate sensor alone, on its absolute level, takes the same phone for one inside.
    alone = _feed(_core({"gate": "gate"}), _copies(40, inside=None, gate=-45))
    assert len(_raised(alone)) == 1


def test_a_pocketed_phone_inside_alarms_on_the_difference_and_the_reason_says_so() -> None:
    # A phone in a pocket deep inside: weaker than the BLE enter level (-69 dBm) at the inside
    # sensor, yet 13 dB louder there than at the gate: the pocket cancels in the difference.
    core = _core(BOTH)
    events = _feed(core, _copies(20, inside=-74, gate=-87))
    raised = _raised(events)
    assert len(raised) == 1
    reasons = " ".join(raised[0].alert.reasons)
    assert "in +13 dB vs gate" in reasons
    assert core.counters["placed_pairs"] >= 3
    # The inside sensor alone, on the absolute level, misses it.
    assert _raised(_feed(_core({"in": "inside"}), _copies(20, inside=-74, gate=None))) == []


def test_a_silent_gate_sensor_degrades_to_the_absolute_level_and_says_so() -> None:
    core = _core(BOTH)
    # Both sensors hear an outside phone for a while: no alarm.
    events = _feed(core, _copies(20, inside=-72, gate=-45))
    assert _raised(events) == []
    # Then the gate sensor stops (unplugged): the inside sensor alone hears a phone close by.
    later = _feed(core, _copies(90, inside=-50, gate=None, t0=20.0))
    health = [e.status for e in later if isinstance(e, SensorHealth)]
    assert [h.sensor for h in health] == ["gate"]
    assert health[0].state == "fault"
    assert "absolute level of in" in health[0].message
    assert health[0].detail["zone_decision"] == "absolute"
    raised = _raised(later)
    assert len(raised) == 1
    # Nothing was decided until the gate sensor was known to be silent ...
    assert raised[0].alert.raised_ts - advert(0, PHONE, 0).ts >= 20.0 + 60.0
    # ... and the reason says the decision is one sensor's.
    assert "in level alone (gate silent)" in " ".join(raised[0].alert.reasons)
    # The gate sensor back: differences again, and its health says so.
    back = _feed(core, _copies(5, inside=-50, gate=-60, t0=110.0))
    status = [e.status for e in back if isinstance(e, SensorHealth)]
    assert [(s.sensor, s.state) for s in status] == [("gate", "ok")]
    assert status[0].detail["zone_decision"] == "difference"


def test_copies_further_apart_than_the_pair_window_are_not_compared() -> None:
    core = _core(BOTH)
    records = [_heard(k + 0.5, "in", -50) for k in range(20)]
    # The gate's copies half a second off (a clock offset nobody applied): not the same
    # transmission, however strong the inside copies are.
    records += [_heard(k + 1.0, "gate", -80) for k in range(20)]
    assert _raised(_feed(core, records)) == []
    assert core.counters["placed_pairs"] == 0
    assert core.counters["placed_waiting"] == 40


def test_an_outside_sensor_alone_still_never_puts_a_phone_inside() -> None:
    core = _core({"in": "inside", "street": "outside"})
    events = _feed(core, [_heard(k + 0.5, "street", -40) for k in range(100)])
    assert _raised(events) == []
    # The inside sensor has been silent for a minute: the street sensor is left alone.
    assert core.counters["outside_sensor_records"] > 0


def test_pairing_takes_the_loudest_copy_of_the_other_side() -> None:
    sites = SensorSites({"in": "inside", "gate": "gate", "road": "outside"}, 0.3, 60.0)
    assert sites.enabled
    assert sites.pair("k", "gate", 10.0, -60.0) is None
    assert sites.pair("k", "road", 10.01, -75.0) is None
    pair = sites.pair("k", "in", 10.02, -50.0)
    assert pair is not None
    assert (pair.reference_sensor, pair.difference_db) == ("gate", 10.0)
    # A copy of one side never pairs with its own side.
    assert sites.pair("j", "gate", 11.0, -60.0) is None
    assert sites.pair("j", "road", 11.0, -60.0) is None
    assert not SensorSites({"a": "gate", "b": "outside"}, 0.3, 60.0).enabled


def test_copies_near_the_inside_receivers_sensitivity_put_nobody_inside() -> None:
    # A passer-by far from both sensors: the inside sensor hears only the copies a fade lifted
    # above its sensitivity (-97 dBm), which read as loud as the gate's: a difference of +1 dB.
    core = _core(BOTH)
    events = _feed(core, _copies(30, inside=-93, gate=-94))
    assert _raised(events) == []
    assert core.counters["placed_near_sensitivity"] >= 25


def test_the_same_difference_further_above_the_sensitivity_alarms() -> None:
    # The rule is about the receiver's selection, not the difference: +1 dB heard well above
    # the sensitivity is a phone inside the zone, as before.
    assert len(_raised(_feed(_core(BOTH), _copies(30, inside=-85, gate=-86)))) == 1


def test_a_phone_inside_that_walks_away_from_the_inside_sensor_stays_inside() -> None:
    # Inside, then its copies fade towards the sensitivity at the zone's far side: being weak
    # there does not take it out (leaving is decided on the difference as before).
    core = _core(BOTH)
    entered = _feed(core, _copies(20, inside=-74, gate=-87))
    assert len(_raised(entered)) == 1
    _feed(core, _copies(20, inside=-92, gate=-95, t0=20.0))
    assert core.fusion.active


def test_the_sensitivity_is_the_installers_to_set() -> None:
    # A receiver 6 dB more sensitive than the default: the same copies are 12 dB above it.
    options = CoreOptions.from_mapping({"sensitivity_ble_dbm": -103.0})
    core = Core(options, placements=BOTH)
    assert len(_raised(_feed(core, _copies(30, inside=-93, gate=-94)))) == 1


def test_a_sensitivity_no_receiver_has_is_refused() -> None:
    with pytest.raises(ConfigError, match="sensitivity_ble_dbm"):
        CoreOptions.from_mapping({"sensitivity_ble_dbm": -40.0})
    with pytest.raises(ConfigError, match="sensitivity_wifi_dbm"):
        CoreOptions.from_mapping({"sensitivity_wifi_dbm": "low"})
