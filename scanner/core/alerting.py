"""Alert lifecycle: raised, updated, resolved, from the fusion state; stored and published.

There is at most one open handset alert: it is raised when the first handset presence appears,
updated each time it gains a handset (or another radio), and resolved once no handset has been
in the zone for ``resolve_after_s``. Uplink energy alone opens an "unidentified transmitter"
alert of its own, resolved when the energy stops or a handset is named.

The store is optional: ``checkpoint replay --fast`` runs without one. Sinks are called with one
line per raised or updated alert (the FORMATS.md NDJSON record) and are how replay writes it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scanner.core.fusion import Fusion, Presence
from scanner.core.options import CoreOptions
from scanner.store.db import Store

_LOGGER = logging.getLogger(__name__)

AlertSink = Callable[[dict[str, Any]], None]

HANDSET = "handset"
UNIDENTIFIED = "unidentified_transmitter"
# Store an open alert's duration at most this often when nothing else changes.
TOUCH_EVERY_S = 10.0


@dataclass(slots=True)
class OpenAlert:
    """An alert the core currently holds open."""

    id: str
    kind: str
    raised_ts: float
    raised_mono: float
    presence_keys: set[str] = field(default_factory=set)
    energy_keys: set[str] = field(default_factory=set)
    handsets: int = 0
    sensors: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    device_ids: list[str] = field(default_factory=list)
    confidence: float = 0.0
    quiet_since: float | None = None
    touched_mono: float = 0.0

    def line(self, ts: float, event: str) -> dict[str, Any]:
        """The NDJSON record of FORMATS.md, with the confidence and reasons added."""
        return {
            "ts": round(ts, 3),
            "alert_id": self.id,
            "event": event,
            "kind": self.kind,
            "handsets": self.handsets,
            "sensors": list(self.sensors),
            "confidence": self.confidence,
            "reasons": list(self.reasons),
        }


class Alerting:
    """Turns fusion state into alert transitions."""

    def __init__(
        self, options: CoreOptions, store: Store | None = None, sinks: list[AlertSink] | None = None
    ) -> None:
        self._options = options
        self._store = store
        self.sinks: list[AlertSink] = list(sinks or [])
        self.handset: OpenAlert | None = None
        self.unidentified: OpenAlert | None = None
        self._seq = 0
        self.counters: dict[str, int] = {"raised": 0, "updated": 0, "resolved": 0}

    def _new_id(self, kind: str, ts: float) -> str:
        self._seq += 1
        digest = hashlib.sha256(f"{kind}:{ts:.6f}:{self._seq}".encode()).hexdigest()
        return f"al-{digest[:12]}"

    # -- the sync step, after every change in fusion -----------------------------------------
    def sync(self, fusion: Fusion, ts: float, mono: float) -> None:
        """Bring the alerts in line with fusion's state at this moment."""
        self._sync_handset(fusion, ts, mono)
        self._sync_unidentified(fusion, ts, mono)

    def _sync_handset(self, fusion: Fusion, ts: float, mono: float) -> None:
        active = list(fusion.active.values())
        alert = self.handset
        if active:
            energy = list(fusion.energy.findings.values())
            sensors, reasons, devices, confidence = _summary(active, energy)
            handsets = fusion.handsets_now()
            keys = {p.key for p in active}
            # Strong uplink energy on a new band is a transmitter entering too, even though it
            # names no device: a phone with Wi-Fi and Bluetooth off must not hide behind another.
            strong = {f.key for f in energy if f.level >= self._options.sdr_alone_min_snr_db}
            if alert is None:
                alert = OpenAlert(self._new_id(HANDSET, ts), HANDSET, ts, mono)
                alert.presence_keys = keys
                alert.energy_keys = strong
                self._fill(alert, handsets, sensors, reasons, devices, confidence)
                self.handset = alert
                self._raise(alert)
                return
            alert.quiet_since = None
            new = (keys - alert.presence_keys) | (strong - alert.energy_keys)
            changed_sensors = sorted(set(sensors) - set(alert.sensors))
            # Remember only what is present now: a transmitter that left and comes back while
            # the alert is still open (someone else kept it open) is a new visit, and says so.
            alert.presence_keys = keys
            alert.energy_keys = strong
            if new or changed_sensors:
                self._fill(alert, handsets, sensors, reasons, devices, confidence)
                self._update(alert, ts, mono, gained=bool(new))
            elif mono - alert.touched_mono >= TOUCH_EVERY_S:
                alert.handsets = handsets
                self._touch(alert, ts, mono)
        elif alert is not None:
            if alert.quiet_since is None:
                alert.quiet_since = mono
            elif mono - alert.quiet_since >= self._options.resolve_after_s:
                self._resolve(alert, ts, mono, "left_zone")
                self.handset = None

    def _sync_unidentified(self, fusion: Fusion, ts: float, mono: float) -> None:
        alert = self.unidentified
        if fusion.unidentified(mono):
            energy = list(fusion.energy.findings.values())
            if alert is None:
                alert = OpenAlert(self._new_id(UNIDENTIFIED, ts), UNIDENTIFIED, ts, mono)
                alert.handsets = 1
                alert.sensors = ["sdr"]
                alert.reasons = [f.reason for f in energy]
                alert.device_ids = [f.key for f in energy]
                alert.confidence = round(max(f.weight for f in energy), 3)
                self.unidentified = alert
                self._raise(alert)
            else:
                alert.quiet_since = None
            return
        if alert is None:
            return
        if fusion.active:
            self._resolve(alert, ts, mono, "identified")
            self.unidentified = None
        elif alert.quiet_since is None:
            alert.quiet_since = mono
        elif mono - alert.quiet_since >= self._options.resolve_after_s:
            self._resolve(alert, ts, mono, "left_zone")
            self.unidentified = None

    @staticmethod
    def _fill(
        alert: OpenAlert,
        handsets: int,
        sensors: list[str],
        reasons: list[str],
        devices: list[str],
        confidence: float,
    ) -> None:
        alert.handsets = handsets
        alert.sensors = sensors
        alert.reasons = reasons
        alert.device_ids = devices
        alert.confidence = confidence

    # -- transitions -------------------------------------------------------------------------
    def _emit(self, line: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink(line)

    def _raise(self, alert: OpenAlert) -> None:
        self.counters["raised"] += 1
        alert.touched_mono = alert.raised_mono
        _LOGGER.info("alert %s raised: %s", alert.id, "; ".join(alert.reasons))
        if self._store is not None:
            from scanner.store.alerts import AlertRecord, raise_alert

            raise_alert(
                self._store,
                AlertRecord(
                    id=alert.id,
                    kind=alert.kind,
                    state="open",
                    title=_title(alert),
                    raised_ts=alert.raised_ts,
                    updated_ts=alert.raised_ts,
                    confidence=alert.confidence,
                    handsets=alert.handsets,
                    sensors=alert.sensors,
                    reasons=alert.reasons,
                    device_ids=alert.device_ids,
                ),
            )
        self._emit(alert.line(alert.raised_ts, "raised"))

    def _update(self, alert: OpenAlert, ts: float, mono: float, gained: bool) -> None:
        self.counters["updated"] += 1
        alert.touched_mono = mono
        if self._store is not None:
            from scanner.store.alerts import update_alert

            update_alert(
                self._store,
                alert.id,
                ts,
                confidence=alert.confidence,
                handsets=alert.handsets,
                sensors=alert.sensors,
                reasons=alert.reasons,
                device_ids=alert.device_ids,
                duration_s=round(mono - alert.raised_mono, 1),
                title=_title(alert),
            )
        # The NDJSON feed has a line each time a transmitter enters: it may be a new handset,
        # and a tracker that wrongly joined two phones must not hide the second.
        if gained:
            self._emit(alert.line(ts, "updated"))

    def _touch(self, alert: OpenAlert, ts: float, mono: float) -> None:
        alert.touched_mono = mono
        if self._store is not None:
            from scanner.store.alerts import touch_alert

            touch_alert(self._store, alert.id, ts, round(mono - alert.raised_mono, 1))

    def _resolve(self, alert: OpenAlert, ts: float, mono: float, resolution: str) -> None:
        self.counters["resolved"] += 1
        _LOGGER.info("alert %s resolved: %s", alert.id, resolution)
        if self._store is not None:
            from scanner.store.alerts import resolve_alert

            resolve_alert(self._store, alert.id, ts, resolution, round(mono - alert.raised_mono, 1))

    def resolve_handset(self, ts: float, mono: float, resolution: str) -> None:
        """Close the open handset alert now (its handsets were allowlisted)."""
        if self.handset is not None:
            self._resolve(self.handset, ts, mono, resolution)
            self.handset = None

    def resolve_all(self, ts: float, mono: float, resolution: str = "cleared") -> None:
        """Close whatever is open (the core is stopping or the allowlist covered it)."""
        for attr in ("handset", "unidentified"):
            alert = getattr(self, attr)
            if alert is not None:
                self._resolve(alert, ts, mono, resolution)
                setattr(self, attr, None)


def _summary(
    active: list[Presence], energy: list[Any]
) -> tuple[list[str], list[str], list[str], float]:
    sensors: set[str] = set()
    reasons: list[str] = []
    devices: list[str] = []
    miss = 1.0
    for presence in sorted(active, key=lambda p: p.started_mono):
        sensors.add(presence.radio)
        reasons.append(presence.finding.reason)
        if presence.identity not in devices:
            devices.append(presence.identity)
        miss *= 1.0 - presence.finding.weight
    for f in energy:
        sensors.add("sdr")
        reasons.append(f.reason)
        miss *= 1.0 - f.weight * 0.5  # energy supports a named handset, it does not name one
    return sorted(sensors), reasons[:12], devices, round(1.0 - miss, 3)


def _title(alert: OpenAlert) -> str:
    if alert.kind == UNIDENTIFIED:
        return "Unidentified transmitter in zone"
    if alert.handsets > 1:
        return f"{alert.handsets} handsets in zone"
    return "Handset in zone"
