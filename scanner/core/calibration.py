"""Zone calibration: a walk with a known phone measures each sensor at the boundary and inside.

The installer holds a phone (screen on, on a call) just outside the zone's edge for a minute
(``boundary``: where it must not alert), then just inside it for a minute (``inside``: where it
must). For each phase and sensor the known phone is the strongest transmitter
heard steadily; its median level (RSSI for Wi-Fi and BLE, burst SNR for the SDR) is the
measurement. ``apply`` turns a boundary and an inside measurement into the per-sensor
``zone_calibration`` setting that presence uses (see ``presence.Calibration``).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scanner.core.allowlist import Allowlist
from scanner.core.presence import Calibration
from scanner.observations import BleAdvert, SdrBurst, SourceEvent, WifiFrame

PHASES = ("boundary", "inside")
PENDING_KEY = "zone_calibration_pending"
SETTING_KEY = "zone_calibration"
# A transmitter heard fewer times than this in a phase is not the phone being walked.
MIN_SAMPLES = 5
# The inside level must exceed the boundary level by this much to say anything about the zone.
MIN_SPAN_DB = 2.0


class CalibrationError(ValueError):
    """The measurements cannot make a calibration; the message says what to redo."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One phase's level for one sensor."""

    sensor: str
    radio: str
    level: float
    samples: int
    source: str  # the transmitter taken as the known phone (MAC, BLE address, band)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor,
            "radio": self.radio,
            "level": self.level,
            "samples": self.samples,
            "source": self.source,
        }


def measure(
    events: Iterable[SourceEvent], allowlist: Allowlist | None = None
) -> dict[str, Measurement]:
    """Per sensor, the median level of the strongest steadily heard transmitter.

    Allowlisted equipment (the guard's tablet on its desk inside the zone) is not the phone
    being walked, however strong it is.
    """
    allow = allowlist or Allowlist()
    levels: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for event in events:
        if isinstance(event, WifiFrame) and event.rssi_dbm is not None:
            if allow.match("mac", event.mac) or allow.match("fingerprint", event.fingerprint):
                continue
            # A phone's rotating MACs share its fingerprint: they are one transmitter here.
            source = f"fingerprint {event.fingerprint}" if event.fingerprint else event.mac
            levels[(event.sensor, "wifi", source)].append(float(event.rssi_dbm))
        elif isinstance(event, BleAdvert) and event.rssi_dbm is not None:
            if allow.match("ble_identity", event.address):
                continue
            levels[(event.sensor, "ble", event.address.lower())].append(float(event.rssi_dbm))
        elif isinstance(event, SdrBurst):
            band = event.band or f"{event.freq_mhz:.1f} MHz"
            levels[(event.sensor, "sdr", band)].append(float(event.snr_db))
    best: dict[str, Measurement] = {}
    for (sensor, radio, source), values in levels.items():
        if len(values) < MIN_SAMPLES:
            continue
        level = round(statistics.median(values), 1)
        current = best.get(sensor)
        if current is None or level > current.level:
            best[sensor] = Measurement(sensor, radio, level, len(values), source)
    return best


def combine(pending: dict[str, Any]) -> dict[str, Calibration]:
    """Calibrations from pending boundary and inside measurements; errors say what is missing."""
    boundary = pending.get("boundary") or {}
    inside = pending.get("inside") or {}
    if not boundary or not inside:
        missing = [p for p in PHASES if not pending.get(p)]
        raise CalibrationError(f"measure {' and '.join(missing)} first")
    out: dict[str, Calibration] = {}
    problems: list[str] = []
    for sensor in sorted(set(boundary) & set(inside)):
        b = float(boundary[sensor]["level"])
        i = float(inside[sensor]["level"])
        if i - b < MIN_SPAN_DB:
            problems.append(
                f"{sensor}: inside ({i:g}) is not stronger than the boundary ({b:g}); "
                "walk again, closer to the sensor inside"
            )
            continue
        out[sensor] = Calibration(sensor, b, i)
    if not out:
        raise CalibrationError("; ".join(problems) or "no sensor was measured in both phases")
    return out
