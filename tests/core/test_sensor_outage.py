"""A sensor that cannot hear (its daemon died, its node lost the broker) is not evidence that
its phones left: they are held in the zone while it is down, up to ``sensor_hold_s``, and the
records it replays afterwards decide them at the times they were heard."""

from __future__ import annotations

import dataclasses

from scanner.core.events import AlertRaised, AlertResolved, AlertUpdated, CoreEvent
from scanner.core.options import CoreOptions
from scanner.core.pipeline import Core
from scanner.observations import BleAdvert, Radio, SensorState, SensorStatus
from tests.core.helpers import START, advert

PHONE = "5A:11:22:33:44:55"
# A transmitter far beyond the zone that the sensor hears all along (a neighbour's phone):
# what shows the sensor could hear while the phone was silent.
FAR = "6B:99:88:77:66:55"


def _core(**options: float) -> Core:
    return Core(CoreOptions(**options))  # type: ignore[arg-type]


def _heard(t: float, sensor: str, rssi: int, address: str = PHONE) -> BleAdvert:
    return dataclasses.replace(advert(t, address, rssi), sensor=sensor)


def _fault(t: float, sensor: str, radio: Radio = Radio.BLE) -> SensorStatus:
    return SensorStatus(
        START + t, t, sensor, radio, SensorState.FAULT, "sensor node lost its broker connection"
    )


def _visit(core: Core, sensor: str, start: float, end: float) -> list[CoreEvent]:
    """The phone close to ``sensor`` from ``start`` to ``end``, one advert a second."""
    out: list[CoreEvent] = []
    t = start
    while t < end:
        out.extend(core.handle(_heard(t, sensor, -50)))
        t += 1.0
    return out


def _ticks(core: Core, start: float, end: float) -> list[CoreEvent]:
    """The core's loop ticking twice a second with nothing arriving."""
    out: list[CoreEvent] = []
    t = start
    while t < end:
        out.extend(core.tick(t))
        t += 0.5
    return out


def _raised(events: list[CoreEvent]) -> list[AlertRaised]:
    return [e for e in events if isinstance(e, AlertRaised)]


def _resolved(events: list[CoreEvent]) -> list[AlertResolved]:
    return [e for e in events if isinstance(e, AlertResolved)]


def test_a_phone_heard_only_by_a_faulted_sensor_is_held_and_the_alert_says_why() -> None:
    core = _core()
    events = _visit(core, "gate", 0.0, 20.0)
    assert len(_raised(events)) == 1
    events = core.handle(_fault(21.0, "gate"))
    events += _ticks(core, 21.0, 330.0)
    assert _resolved(events) == []
    held = [e for e in events if isinstance(e, AlertUpdated)]
    assert held and not any(e.alarm for e in held)
    reasons = " ".join(held[0].alert.reasons)
    assert "held: sensor gate offline since" in reasons
    assert len(core.alerting.open_alerts()) == 1


def test_the_replay_after_the_outage_resolves_at_the_time_it_says_without_a_second_alarm() -> None:
    core = _core()
    events = _visit(core, "gate", 0.0, 20.0)
    events += core.handle(_fault(21.0, "gate"))
    events += _ticks(core, 21.0, 330.0)
    # The node back: its spool replays the outage in order with the recorded times (the phone
    # stayed until 40 s, the far phone was heard all along), then live records follow.
    replay = [_heard(t, "gate", -50) for t in range(21, 40)]
    replay += [_heard(t + 0.5, "gate", -92, FAR) for t in range(21, 340)]
    for record in sorted(replay, key=lambda r: r.mono):
        events += core.handle(record)
    events += _ticks(core, 340.0, 360.0)
    assert len(_raised(events)) == 1
    resolved = _resolved(events)
    assert [r.resolution for r in resolved] == ["left_zone"]
    # Left after its last advert (39 s) and the silence, leave hold and resolve delay that say
    # so (25 + 10 + 20 s), on the replay's timeline: not when the replay arrived (330 s).
    left_s = resolved[0].ts - START
    assert 39.0 + 25.0 + 10.0 + 20.0 <= left_s <= 39.0 + 25.0 + 10.0 + 20.0 + 3.0
    assert core.alerting.open_alerts() == []


def test_a_phone_still_there_after_a_restart_without_replay_stays_in_the_same_alert() -> None:
    core = _core()
    events = _visit(core, "gate", 0.0, 20.0)
    events += core.handle(_fault(21.0, "gate"))
    events += _ticks(core, 21.0, 200.0)
    # The daemon restarted with nothing spooled: the far phone is heard live at once, the
    # phone in the zone at its next advert 15 s later (within the silence allowed once the
    # sensor hears again, though 180 s after it was last heard).
    for t in range(200, 215):
        events += core.handle(_heard(t + 0.5, "gate", -92, FAR))
    events += _visit(core, "gate", 215.0, 230.0)
    assert len(_raised(events)) == 1
    assert _resolved(events) == []


def test_the_hold_ends_after_sensor_hold_s_and_the_alert_says_it_was_lost() -> None:
    core = _core(sensor_hold_s=120.0)
    events = _visit(core, "gate", 0.0, 20.0)
    events += core.handle(_fault(21.0, "gate"))
    events += _ticks(core, 21.0, 200.0)
    resolved = _resolved(events)
    assert [r.resolution for r in resolved] == ["sensor_lost"]
    assert 21.0 + 120.0 <= resolved[0].ts - START <= 21.0 + 121.0
    assert core.alerting.open_alerts() == []


def test_a_healthy_sensors_silence_still_resolves_while_another_is_down() -> None:
    core = _core()
    events = _visit(core, "lobby", 0.0, 20.0)
    assert len(_raised(events)) == 1
    events = core.handle(_fault(21.0, "gate"))
    events += _ticks(core, 21.0, 120.0)
    assert [r.resolution for r in _resolved(events)] == ["left_zone"]
    assert _resolved(events)[0].ts - START <= 19.0 + 25.0 + 10.0 + 20.0 + 2.0


def test_a_fault_on_one_radio_does_not_hold_what_the_sensors_other_radio_heard() -> None:
    core = _core()
    _visit(core, "gate", 0.0, 20.0)
    events = core.handle(_fault(21.0, "gate", Radio.WIFI))
    events += _ticks(core, 21.0, 120.0)
    assert [r.resolution for r in _resolved(events)] == ["left_zone"]
