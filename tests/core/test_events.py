"""The core returns what happened and writes nothing: events out, inputs in, no store."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

from scanner.core.events import (
    Acknowledge,
    AlertAcknowledged,
    AlertRaised,
    AlertResolved,
    AllowlistChanged,
    CalibrationChanged,
    DeviceChanged,
    SensorHealth,
)
from scanner.core.identity import AddressBleIdentity, AddressWifiIdentity
from scanner.core.options import CoreOptions
from scanner.core.pipeline import Core
from scanner.core.presence import Calibration
from scanner.observations import Radio, SensorState, SensorStatus, WifiFrame
from tests.core.helpers import START, classify_all_handsets, probe

CORE = Path(__file__).resolve().parents[2] / "scanner" / "core"
PHONE = "02:00:00:00:00:01"


def _core() -> Core:
    return Core(
        CoreOptions(),
        wifi_tracker=AddressWifiIdentity(),
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )


def _visit(core: Core, mac: str, t0: float, t1: float, rssi: int = -45) -> list[object]:
    events: list[object] = []
    t = t0
    while t < t1:
        events.extend(core.handle(probe(t, mac, rssi)))
        events.extend(core.handle(probe(t + 0.05, mac, rssi)))
        t += 2.0
    return events


def test_nothing_under_scanner_core_imports_the_store() -> None:
    offenders = []
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("scanner.store")]
    assert offenders == []


def test_a_visit_returns_raise_then_resolve_as_events() -> None:
    core = _core()
    events = _visit(core, PHONE, 0.0, 60.0)
    for t in range(61, 150):
        events += core.tick(float(t))
    raised = [e for e in events if isinstance(e, AlertRaised)]
    resolved = [e for e in events if isinstance(e, AlertResolved)]
    assert len(raised) == 1 and raised[0].alarm
    assert raised[0].alert.sensors == ("wifi",)
    assert len(resolved) == 1 and resolved[0].resolution == "left_zone"
    assert resolved[0].alert.id == raised[0].alert.id
    # The alert's device goes out with the alert (the API makes allowlist entries of it).
    first_alert = events.index(raised[0])
    assert any(
        isinstance(e, DeviceChanged) and PHONE in e.device["identifiers"]["macs"]
        for e in events[first_alert:]
    )


def test_health_reports_come_back_as_events() -> None:
    core = _core()
    status = SensorStatus(START, 0.0, "wifi", Radio.WIFI, SensorState.OK, "hopping")
    assert core.handle(status) == [SensorHealth(status)]


def test_an_acknowledgement_is_an_input_and_an_event() -> None:
    core = _core()
    raised = [e for e in _visit(core, PHONE, 0.0, 20.0) if isinstance(e, AlertRaised)]
    alert_id = raised[0].alert.id
    out = core.handle(Acknowledge(alert_id, START + 21.0, "guard", "courier, checked"))
    (ack,) = [e for e in out if isinstance(e, AlertAcknowledged)]
    assert (ack.alert.id, ack.by, ack.note, ack.alert.acknowledged) == (
        alert_id,
        "guard",
        "courier, checked",
        True,
    )
    # A second acknowledgement of the same alert changes nothing.
    assert [e for e in core.handle(Acknowledge(alert_id, START + 22.0, "other")) if e] == []


def test_allowlisting_the_device_in_the_zone_closes_its_alert() -> None:
    core = _core()
    _visit(core, PHONE, 0.0, 20.0)
    out = core.handle(AllowlistChanged(({"match": "mac", "value": PHONE, "label": "chief"},)))
    (resolved,) = [e for e in out if isinstance(e, AlertResolved)]
    assert resolved.resolution == "allowlisted"


def test_leaving_is_judged_by_the_sensor_own_calibration() -> None:
    """A sensor named other than its radio: its calibration decides entry and leaving alike.

    Calibrated for a quiet site (enter -70 dBm, leave -74 dBm), a phone at -72 dBm that
    entered stays inside; with the radio's default thresholds (leave below -59) it would be
    judged gone on the next tick.
    """
    core = _core()
    cal = Calibration("wifi:wlan1", boundary_dbm=-80.0, inside_dbm=-60.0)
    core.handle(CalibrationChanged({"wifi:wlan1": cal}))
    assert cal.thresholds().exit_dbm == -76.0

    def frame(t: float, rssi: int) -> WifiFrame:
        return replace(probe(t, PHONE, rssi), sensor="wifi:wlan1")

    events: list[object] = []
    for i in range(10):
        events += core.handle(frame(float(i), -68))
    for i in range(10, 30):
        events += core.handle(frame(float(i), -72))
        events += core.tick(float(i) + 0.5)
    assert [type(e) for e in events if isinstance(e, AlertRaised | AlertResolved)] == [AlertRaised]
    assert core.alerting.handset is not None and core.fusion.active
