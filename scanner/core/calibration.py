"""Zone calibration: a walk with a named reference phone, at the boundary and inside.

First ``phones`` lists the phones heard steadily, each by the words that say what it is (vendor,
model, BLE payload, Wi-Fi fingerprint), never by a raw MAC: random MACs change every scan. The
installer picks the reference phone from that list; its identities (Wi-Fi fingerprint, BLE
signature, which survive address rotation) are kept, and every later phase measures that phone
and nothing else. A phase where the reference phone was not heard is refused, naming what was
strongest instead (the guard's tablet, a neighbour): the old "strongest steady transmitter"
measured whatever that was.

The installer holds the phone just outside the zone's edge (``boundary``: where it must not
alert), then walks inside it (``inside``: where it must), each in hand and in a pocket
(``--carry``): a body costs 6-12 dB, so a phone walked in hand gives thresholds that miss the same
phone in a pocket. The boundary level is the loudest carry, the inside level the quietest.

``apply`` says per sensor what it set and what it could not, and why. The SDR measures uplink
energy, which names no phone: it is taken from the band heard most steadily while the reference
phone is on a call, and reported as such.

A walk recorded by every sensor of a zone (an inside sensor and one at or beyond the boundary,
``[[sensors]]``) also measures the level difference between them, copy by copy of the same
transmissions of the reference phone (``measure_difference``): it is kept as the ``difference``
entry, whose thresholds the core uses while both sides are heard.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scanner.core.allowlist import Allowlist
from scanner.core.placement import SensorSites
from scanner.core.presence import DIFFERENCE, Calibration
from scanner.observations import BleAdvert, SdrBurst, SourceEvent, WifiFrame

PHASES = ("boundary", "inside")
CARRIES = ("hand", "pocket")
PENDING_KEY = "zone_calibration_pending"
SETTING_KEY = "zone_calibration"
# A transmitter heard fewer times than this in a phase is not the phone being walked.
MIN_SAMPLES = 5
# The inside level must exceed the boundary level by this much to say anything about the zone.
MIN_SPAN_DB = 2.0


class CalibrationError(ValueError):
    """The measurements cannot make a calibration; the message says what to redo."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A phone heard steadily, as the installer picks it: words and stable identities."""

    label: str  # what it is, in words: "Apple iPhone (Nearby Info), BLE -48 dBm"
    identities: tuple[str, ...]  # "wifi-fp:<fingerprint>", "ble-sig:<signature>"
    level: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "identities": list(self.identities),
            "level": self.level,
            "samples": self.samples,
        }


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


def _ble_class(advert: BleAdvert) -> Any:
    from scanner.core.kinds import ble_classifier

    return ble_classifier()(advert)


def _wifi_words(frame: WifiFrame) -> str:
    from scanner.core.kinds import wifi_kind, wifi_vendor

    vendor = wifi_vendor(frame.mac) if not frame.random_mac else None
    kind, _reason = wifi_kind(frame)
    who = f"{vendor[1]} " if vendor else ""
    how = "randomised addresses" if frame.random_mac else "a fixed address"
    fp = f"fingerprint {frame.fingerprint[:8]}" if frame.fingerprint else f"{frame.subtype} frames"
    return f"{who}Wi-Fi {kind}, {fp}, {how}"


def candidates(
    events: Iterable[SourceEvent], allowlist: Allowlist | None = None
) -> list[Candidate]:
    """The transmitters heard steadily that may be a phone, strongest first, in words."""
    allow = allowlist or Allowlist()
    levels: dict[str, list[float]] = defaultdict(list)
    words: dict[str, str] = {}
    for event in events:
        if isinstance(event, WifiFrame) and event.rssi_dbm is not None and event.fingerprint:
            if event.subtype != "probe_req" or _allowed_wifi(allow, event):
                continue
            ident = f"wifi-fp:{event.fingerprint}"
            levels[ident].append(float(event.rssi_dbm))
            words.setdefault(ident, _wifi_words(event))
        elif isinstance(event, BleAdvert) and event.rssi_dbm is not None:
            if allow.match("ble_identity", event.address):
                continue
            cls = _ble_class(event)
            kind = str(getattr(cls, "kind", "unknown") or "unknown")
            if cls is None or kind not in ("handset", "unknown"):
                continue  # earbuds, watches, tags, beacons are not the phone being walked
            ident = f"ble-sig:{getattr(cls, 'signature', '')}"
            levels[ident].append(float(event.rssi_dbm))
            vendor = getattr(cls, "vendor", None) or ""
            model = getattr(cls, "model", None) or ""
            reason = getattr(cls, "reason", "") or ""
            words.setdefault(ident, f"{vendor} {model or kind} BLE ({reason})".strip())
    out = [
        Candidate(words[i], (i,), round(statistics.median(v), 1), len(v))
        for i, v in levels.items()
        if len(v) >= MIN_SAMPLES
    ]
    return sorted(out, key=lambda c: -c.level)


def _allowed_wifi(allow: Allowlist, frame: WifiFrame) -> bool:
    return bool(allow.match("mac", frame.mac) or allow.match("fingerprint", frame.fingerprint))


def measure(
    events: Iterable[SourceEvent],
    allowlist: Allowlist | None = None,
    reference: Iterable[str] | None = None,
) -> dict[str, Measurement]:
    """Per sensor, the median level of the reference phone (or, with no reference, the strongest
    steadily heard transmitter).

    With a reference, a sensor on which the reference phone was not heard steadily but
    something else was raises ``CalibrationError`` naming what was heard instead. Allowlisted
    equipment (the guard's tablet on its desk inside the zone) is never the phone being walked.
    """
    allow = allowlist or Allowlist()
    wanted = set(reference) if reference is not None else None
    levels: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    others: dict[tuple[str, str], list[float]] = defaultdict(list)
    for event in events:
        if isinstance(event, WifiFrame) and event.rssi_dbm is not None:
            if _allowed_wifi(allow, event):
                others[(event.sensor, "an allowlisted station")].append(float(event.rssi_dbm))
                continue
            # A phone's rotating MACs share its fingerprint: they are one transmitter here.
            source = f"fingerprint {event.fingerprint}" if event.fingerprint else event.mac
            if wanted is not None and f"wifi-fp:{event.fingerprint}" not in wanted:
                others[(event.sensor, _wifi_words(event))].append(float(event.rssi_dbm))
                continue
            levels[(event.sensor, "wifi", source)].append(float(event.rssi_dbm))
        elif isinstance(event, BleAdvert) and event.rssi_dbm is not None:
            if allow.match("ble_identity", event.address):
                others[(event.sensor, "an allowlisted BLE device")].append(float(event.rssi_dbm))
                continue
            source = event.address.lower()
            if wanted is not None:
                cls = _ble_class(event)
                sig = f"ble-sig:{getattr(cls, 'signature', '')}" if cls is not None else ""
                if sig not in wanted:
                    what = getattr(cls, "reason", "") if cls is not None else ""
                    others[(event.sensor, f"a BLE device ({what or 'unclassified'})")].append(
                        float(event.rssi_dbm)
                    )
                    continue
                source = sig
            levels[(event.sensor, "ble", source)].append(float(event.rssi_dbm))
        elif isinstance(event, SdrBurst):
            band = event.band or f"{event.freq_mhz:.1f} MHz"
            levels[(event.sensor, "sdr", f"uplink {band} (names no phone)")].append(
                float(event.snr_db)
            )
    best: dict[str, Measurement] = {}
    for (sensor, radio, source), values in levels.items():
        if len(values) < MIN_SAMPLES:
            continue
        level = round(statistics.median(values), 1)
        current = best.get(sensor)
        if current is None or level > current.level:
            best[sensor] = Measurement(sensor, radio, level, len(values), source)
    if wanted is not None:
        missed = []
        for (sensor, what), values in others.items():
            if sensor in best or len(values) < MIN_SAMPLES:
                continue
            missed.append((statistics.median(values), sensor, what))
        # Uplink energy names no phone, so it cannot show the reference was there.
        named = [m for m in best.values() if m.radio != "sdr"]
        if missed and not named:
            level, sensor, what = max(missed)
            raise CalibrationError(
                f"the reference phone was not heard; the strongest steady transmitter on "
                f"{sensor} was {what} at {level:g}: not the phone being walked. Check the "
                "phone's Wi-Fi and Bluetooth are on and walk again"
            )
    return best


def measure_difference(
    events: Iterable[SourceEvent],
    placements: dict[str, str],
    reference: Iterable[str],
    allowlist: Allowlist | None = None,
    pair_window_s: float = 0.3,
) -> Measurement | None:
    """The reference phone's level difference, inside minus reference sensor, per copy of one
    transmission heard on both sides; the radio paired most often. None when the placements
    have no two sides or the phone was not paired ``MIN_SAMPLES`` times.

    Uplink energy names no phone, so it is not taken: the difference would be whatever
    transmitter was loudest."""
    sites = SensorSites(dict(placements), pair_window_s, float("inf"))
    if not sites.enabled:
        return None
    allow = allowlist or Allowlist()
    wanted = set(reference)
    diffs: dict[str, list[float]] = defaultdict(list)
    for event in events:
        if isinstance(event, WifiFrame) and event.rssi_dbm is not None:
            if f"wifi-fp:{event.fingerprint}" not in wanted or _allowed_wifi(allow, event):
                continue
            radio, key = "wifi", f"wifi:{event.mac}"
        elif isinstance(event, BleAdvert) and event.rssi_dbm is not None:
            if allow.match("ble_identity", event.address):
                continue
            cls = _ble_class(event)
            if cls is None or f"ble-sig:{getattr(cls, 'signature', '')}" not in wanted:
                continue
            radio, key = "ble", f"ble:{event.address.lower()}"
        else:
            continue
        pair = sites.pair(key, event.sensor, event.mono, float(event.rssi_dbm))
        if pair is not None:
            diffs[radio].append(pair.difference_db)
    if not diffs:
        return None
    radio, values = max(diffs.items(), key=lambda kv: len(kv[1]))
    if len(values) < MIN_SAMPLES:
        return None
    return Measurement(
        DIFFERENCE,
        radio,
        round(statistics.median(values), 1),
        len(values),
        f"the reference phone's {radio} heard inside and at the boundary at once",
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``combine`` did for one sensor: set thresholds, or could not, and why."""

    sensor: str
    calibration: Calibration | None
    note: str


def combine_all(pending: dict[str, Any]) -> list[Outcome]:
    """Per sensor measured in any phase: its calibration, or why there is none."""
    boundary = _levels(pending.get("boundary"), max)
    inside = _levels(pending.get("inside"), min)
    if not boundary or not inside:
        missing = [p for p in PHASES if not pending.get(p)]
        raise CalibrationError(f"measure {' and '.join(missing)} first")
    out: list[Outcome] = []
    for sensor in sorted(set(boundary) | set(inside)):
        if sensor not in boundary or sensor not in inside:
            phase = "boundary" if sensor not in boundary else "inside"
            out.append(Outcome(sensor, None, f"not measured at the {phase}; keeps its defaults"))
            continue
        (b, b_carries), (i, i_carries) = boundary[sensor], inside[sensor]
        if i - b < MIN_SPAN_DB:
            out.append(
                Outcome(
                    sensor,
                    None,
                    f"inside ({i:g}) is not stronger than the boundary ({b:g}) by {MIN_SPAN_DB:g}"
                    " dB: the level cannot tell them apart here; keeps its defaults. Move or "
                    "turn the antenna, or walk closer to the sensor inside",
                )
            )
            continue
        note = f"boundary {b:g} ({'/'.join(b_carries)}), inside {i:g} ({'/'.join(i_carries)})"
        if "pocket" not in i_carries:
            note += "; inside was walked in hand only: a phone in a pocket reads 6-12 dB lower"
        out.append(Outcome(sensor, Calibration(sensor, b, i), note))
    return out


def _levels(phase: Any, pick: Any) -> dict[str, tuple[float, list[str]]]:
    """Per sensor, the level over the carries measured (``pick`` of them) and those carries."""
    if not isinstance(phase, dict) or not phase:
        return {}
    # One carry per phase (older pending data): {sensor: measurement}.
    by_carry = phase if all(k in CARRIES for k in phase) else {"hand": phase}
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for carry, sensors in by_carry.items():
        if not isinstance(sensors, dict):
            continue
        for sensor, m in sensors.items():
            try:
                values[sensor][carry] = float(m["level"])
            except (KeyError, TypeError, ValueError):
                continue
    return {s: (pick(v.values()), sorted(v)) for s, v in values.items() if v}


def combine(pending: dict[str, Any]) -> dict[str, Calibration]:
    """Calibrations from pending boundary and inside measurements; errors say what is missing."""
    outcomes = combine_all(pending)
    out = {o.sensor: o.calibration for o in outcomes if o.calibration is not None}
    if not out:
        raise CalibrationError("; ".join(f"{o.sensor}: {o.note}" for o in outcomes))
    return out
