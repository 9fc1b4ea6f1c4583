"""What goes into the core besides observations, and what comes out of it.

The core never writes anything down. ``Core.handle`` and ``Core.tick`` return a list of the
**events** below (what happened at this step, in order); sinks (``scanner/sinks/``) persist
them (the store), print them (the NDJSON alert lines) or publish them. Things the core needs
from outside (the allowlist a supervisor edits, a guard's acknowledgement, the zone
calibration, the alerts a previous run left open) come in as **inputs**, through the same
``Core.handle`` as observations, so a test drives the core without any database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scanner.core.presence import Calibration
from scanner.observations import SensorStatus

# -- what the core returns -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert as it stands after a transition (what the store row and the card show)."""

    id: str
    kind: str  # "handset" | "unidentified_transmitter"
    title: str
    raised_ts: float
    confidence: float
    handsets: int
    sensors: tuple[str, ...]
    reasons: tuple[str, ...]
    device_ids: tuple[str, ...]
    duration_s: float
    acknowledged: bool = False


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """A new alert; the guard's tablet alarms (``alarm`` is always true here)."""

    ts: float
    alert: AlertView
    alarm: bool = True


@dataclass(frozen=True, slots=True)
class AlertUpdated:
    """New evidence on an open alert.

    ``gained`` is true when a transmitter entered (a new handset, or a known handset's other
    radio); ``new_sensor`` when the alert is now heard on a radio it was not; ``alarm`` when
    the update names a handset the guard has not acknowledged, so the tablet alarms because of
    it.
    """

    ts: float
    alert: AlertView
    gained: bool
    alarm: bool
    new_sensor: bool = False


@dataclass(frozen=True, slots=True)
class AlertTouched:
    """An open alert is still current (its duration grew); no new evidence."""

    ts: float
    alert_id: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class AlertAlarmed:
    """The tablet starts alarming for these handsets (a raise, or a new handset on the alert)."""

    ts: float
    alert_id: str
    handset_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlertAcknowledged:
    """A guard acknowledged the alert: the alarm for its handsets stops, the note stays."""

    ts: float
    alert: AlertView
    by: str
    note: str


@dataclass(frozen=True, slots=True)
class AlertResolved:
    """The alert closed: ``left_zone``, ``allowlisted``, ``identified``, ``cleared``
    or ``sensor_lost`` (held while the sensor that heard it was down, until the hold ran out)."""

    ts: float
    alert: AlertView
    resolution: str


@dataclass(frozen=True, slots=True)
class DeviceChanged:
    """A device record changed (``Device.to_dict()``): kind, identifiers, zone state."""

    device: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SightingMinute:
    """One device's observations on one radio and sensor during one minute."""

    device_id: str
    radio: str
    sensor: str
    identifier: str
    first_ts: float
    last_ts: float
    count: int
    rssi_min: float | None
    rssi_max: float | None
    rssi_mean: float | None

    def to_row(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "radio": self.radio,
            "sensor": self.sensor,
            "identifier": self.identifier,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "count": self.count,
            "rssi_min": self.rssi_min,
            "rssi_max": self.rssi_max,
            "rssi_mean": self.rssi_mean,
        }


@dataclass(frozen=True, slots=True)
class SensorHealth:
    """A source's health report, as the core received it."""

    status: SensorStatus


@dataclass(frozen=True, slots=True)
class SensorHeard:
    """A sensor delivered an observation at ``ts`` (at most one of these a second per sensor)."""

    sensor: str
    ts: float


@dataclass(frozen=True, slots=True)
class SettingChanged:
    """A value the core wants kept across restarts (the learned ambient baseline)."""

    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class EvidenceWanted:
    """An alert was raised: whatever keeps raw evidence should keep this stretch of it."""

    ts: float
    alert_id: str
    device_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HandsetMinute:
    """Handsets during one minute: estimated inside the zone, and heard at all."""

    ts: float  # the minute's start
    in_zone: int
    heard: int


CoreEvent = (
    AlertRaised
    | AlertUpdated
    | AlertTouched
    | AlertAlarmed
    | AlertAcknowledged
    | AlertResolved
    | DeviceChanged
    | SightingMinute
    | SensorHealth
    | SensorHeard
    | SettingChanged
    | EvidenceWanted
    | HandsetMinute
)

# -- what the core is told -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllowlistChanged:
    """The allowlist entries a supervisor keeps (they replace the previous ones)."""

    entries: tuple[Mapping[str, str], ...]


@dataclass(frozen=True, slots=True)
class CalibrationChanged:
    """Per-sensor zone calibration measured on site (replaces the previous one)."""

    calibrations: Mapping[str, Calibration]


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """A guard acknowledged an alert (the tablet's button, or a simulated guard)."""

    alert_id: str
    ts: float
    by: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class LeftOpen:
    """An alert an earlier run left open, with what identifies its transmitters."""

    id: str
    kind: str
    raised_ts: float
    duration_s: float
    handsets: int
    sensors: tuple[str, ...]
    reasons: tuple[str, ...]
    device_ids: tuple[str, ...]
    confidence: float
    acknowledged: bool
    keys: frozenset[str] = field(default_factory=frozenset)  # "wifi:<mac>", "ble:<address>"
    fingerprints: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class AdoptAlerts:
    """Take over alerts left open by the previous run (sent once, before the first record)."""

    alerts: tuple[LeftOpen, ...]


@dataclass(frozen=True, slots=True)
class RestoreAmbient:
    """The ambient baseline a previous run learned (``AmbientBaseline.snapshot()``)."""

    snapshot: Any


CoreInput = AllowlistChanged | CalibrationChanged | Acknowledge | AdoptAlerts | RestoreAmbient
