"""Alert lifecycle: raised, updated, resolved, from the fusion state; stored and published.

There is at most one open handset alert: it is raised when the first handset presence appears,
updated each time it gains a handset (or another radio), and resolved once no handset has been
in the zone for ``resolve_after_s``. Uplink energy alone opens an "unidentified transmitter"
alert of its own, resolved when the energy stops or a handset is named.

A core that starts over a store (after a crash, a power cut or a restart) **adopts** the alerts
its predecessor left open instead of raising them again: an adopted alert attaches to the
transmitters it was about (by MAC, BLE address or IE fingerprint, as stored in the devices
table) and to any other handset then in the zone, like any open alert; if nothing is heard in
the zone within ``adopt_grace_s`` it is resolved as ``left_zone``. Monotonic time does not
survive a restart, so an adopted alert's duration is its stored duration plus the new run's
monotonic time since adoption.

Nothing here writes: every transition is an event (``scanner.core.events``) handed to
``emit``; the store, the alert lines and the live feed are sinks of those events.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scanner.core.events import (
    Acknowledge,
    AlertAcknowledged,
    AlertAlarmed,
    AlertRaised,
    AlertResolved,
    AlertTouched,
    AlertUpdated,
    AlertView,
    CoreEvent,
    EvidenceWanted,
    LeftOpen,
)
from scanner.core.fusion import Fusion, Presence
from scanner.core.options import CoreOptions

_LOGGER = logging.getLogger(__name__)

Emit = Callable[[CoreEvent], None]
# A device id -> its identifiers ({"macs": [...], "fingerprints": [...], "ble": [...]}).
IdentifierLookup = Callable[[str], Mapping[str, list[str]] | None]

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
    # Left open by an earlier run and not yet seen again: what it was about, to recognise it.
    adopted: Adopted | None = None
    acknowledged: bool = False

    def view(self, mono: float) -> AlertView:
        """The alert as it stands at ``mono``, for the events."""
        return AlertView(
            id=self.id,
            kind=self.kind,
            title=_title(self),
            raised_ts=self.raised_ts,
            confidence=self.confidence,
            handsets=self.handsets,
            sensors=tuple(self.sensors),
            reasons=tuple(self.reasons),
            device_ids=tuple(self.device_ids),
            duration_s=round(max(0.0, mono - self.raised_mono), 1),
            acknowledged=self.acknowledged,
        )


@dataclass(frozen=True, slots=True)
class Adopted:
    """The identifiers of the transmitters an adopted alert was about (from the store)."""

    keys: frozenset[str]  # presence keys: "wifi:<mac>", "ble:<address>"
    fingerprints: frozenset[str]

    def recognises(self, key: str, identifiers: Mapping[str, list[str]] | None) -> bool:
        """True when the transmitter ``key`` (of a device with ``identifiers``) is one of ours."""
        if key in self.keys:
            return True
        if not identifiers:
            return False
        macs = {f"wifi:{m}" for m in identifiers.get("macs", ())}
        ble = {f"ble:{a}" for a in identifiers.get("ble", ())}
        # A rotated MAC of the same station carries the same element fingerprint; phones of one
        # model share it too, but a wrong match here only spares an update line: the alert is
        # open and covers every handset in the zone either way.
        return bool(
            (macs | ble) & self.keys
            or self.fingerprints.intersection(identifiers.get("fingerprints", ()))
        )


class Alerting:
    """Turns fusion state into alert transitions."""

    def __init__(
        self,
        options: CoreOptions,
        emit: Emit,
        identifiers: IdentifierLookup | None = None,
    ) -> None:
        self._options = options
        self._emit = emit
        self.handset: OpenAlert | None = None
        self.unidentified: OpenAlert | None = None
        self._seq = 0
        self._identifiers = identifiers
        self._pending: list[LeftOpen] = []
        self.counters: dict[str, int] = {
            "raised": 0,
            "updated": 0,
            "resolved": 0,
            "adopted": 0,
            "acknowledged": 0,
        }

    def adopt(self, alerts: tuple[LeftOpen, ...]) -> None:
        """Alerts an earlier run left open: taken over at the next step of the timeline."""
        self._pending.extend(alerts)

    # -- adoption of what an earlier run left open -------------------------------------------
    def _adopt_pending(self, ts: float, mono: float) -> None:
        """Take over the alerts found open at start; ``mono`` starts the new run's clock."""
        pending, self._pending = self._pending, []
        for rec in sorted(pending, key=lambda p: p.raised_ts, reverse=True):
            attr = "handset" if rec.kind == HANDSET else "unidentified"
            # Durations come from the monotonic clock, which restarted: carry the stored one.
            duration = float(rec.duration_s or 0.0)
            alert = OpenAlert(rec.id, rec.kind, rec.raised_ts, mono - duration)
            alert.handsets = rec.handsets
            alert.sensors = list(rec.sensors)
            alert.reasons = list(rec.reasons)
            alert.device_ids = list(rec.device_ids)
            alert.confidence = rec.confidence
            alert.acknowledged = rec.acknowledged
            alert.quiet_since = mono
            alert.touched_mono = mono
            alert.adopted = Adopted(rec.keys, rec.fingerprints)
            if getattr(self, attr) is not None:
                # An older one also left open (should not happen: one per kind is kept open).
                # The newer one carries on; this one can no longer be told apart from it.
                _LOGGER.warning("alert %s was left open beside a newer one; clearing it", rec.id)
                self._resolve(alert, ts, mono, "cleared")
                continue
            setattr(self, attr, alert)
            self.counters["adopted"] += 1
            _LOGGER.info(
                "alert %s (%s) left open by the previous run adopted: %d transmitter(s) known",
                rec.id,
                rec.kind,
                len(rec.keys),
            )

    def _hold_s(self, alert: OpenAlert) -> float:
        """How long an alert may stay quiet: longer for one adopted and not yet heard again
        (the capture daemons reconnect and a phone's Wi-Fi may be silent for a minute)."""
        if alert.adopted is not None:
            return max(self._options.adopt_grace_s, self._options.resolve_after_s)
        return self._options.resolve_after_s

    def _recognised(self, alert: OpenAlert, presences: list[Presence]) -> set[str]:
        """Keys of the adopted alert's own transmitters among ``presences``."""
        adopted = alert.adopted
        if adopted is None:
            return set()
        lookup = self._identifiers
        return {
            p.key
            for p in presences
            if adopted.recognises(p.key, lookup(p.identity) if lookup is not None else None)
        }

    def _new_id(self, kind: str, ts: float) -> str:
        self._seq += 1
        digest = hashlib.sha256(f"{kind}:{ts:.6f}:{self._seq}".encode()).hexdigest()
        return f"al-{digest[:12]}"

    # -- the sync step, after every change in fusion -----------------------------------------
    def sync(self, fusion: Fusion, ts: float, mono: float) -> None:
        """Bring the alerts in line with fusion's state at this moment."""
        if self._pending:
            self._adopt_pending(ts, mono)
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
            if alert.adopted is not None:
                # The first presences after a restart: the alert's own transmitters back (not
                # new), or other handsets, which the open alert takes in as it would anyway.
                alert.presence_keys = self._recognised(alert, active)
                alert.energy_keys = strong
                alert.adopted = None
                _LOGGER.info("adopted alert %s: handsets in the zone again", alert.id)
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
            elif mono - alert.quiet_since >= self._hold_s(alert):
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
                alert.adopted = None
            return
        if alert is None:
            return
        if fusion.active:
            self._resolve(alert, ts, mono, "identified")
            self.unidentified = None
        elif alert.quiet_since is None:
            alert.quiet_since = mono
        elif mono - alert.quiet_since >= self._hold_s(alert):
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
    def _raise(self, alert: OpenAlert) -> None:
        self.counters["raised"] += 1
        alert.touched_mono = alert.raised_mono
        _LOGGER.info("alert %s raised: %s", alert.id, "; ".join(alert.reasons))
        ts, view = alert.raised_ts, alert.view(alert.raised_mono)
        self._emit(AlertRaised(ts, view))
        self._emit(AlertAlarmed(ts, alert.id, tuple(sorted(alert.presence_keys))))
        self._emit(EvidenceWanted(ts, alert.id, view.device_ids))

    def _update(self, alert: OpenAlert, ts: float, mono: float, gained: bool) -> None:
        self.counters["updated"] += 1
        alert.touched_mono = mono
        # A transmitter entering may be a new handset, and a tracker that wrongly joined two
        # phones must not hide the second: it sounds the alarm while the alert is unacknowledged.
        alarm = gained and not alert.acknowledged
        self._emit(AlertUpdated(ts, alert.view(mono), gained=gained, alarm=alarm))

    def _touch(self, alert: OpenAlert, ts: float, mono: float) -> None:
        alert.touched_mono = mono
        self._emit(AlertTouched(ts, alert.id, round(mono - alert.raised_mono, 1)))

    def _resolve(self, alert: OpenAlert, ts: float, mono: float, resolution: str) -> None:
        self.counters["resolved"] += 1
        _LOGGER.info("alert %s resolved: %s", alert.id, resolution)
        self._emit(AlertResolved(ts, alert.view(mono), resolution))

    def acknowledge(self, ack: Acknowledge, mono: float) -> bool:
        """A guard acknowledged an open alert; False when it is not open here (already closed)."""
        for alert in (self.handset, self.unidentified):
            if alert is not None and alert.id == ack.alert_id:
                if not alert.acknowledged:
                    alert.acknowledged = True
                    self.counters["acknowledged"] += 1
                    self._emit(AlertAcknowledged(ack.ts, alert.view(mono), ack.by, ack.note))
                return True
        return False

    def open_alerts(self) -> list[OpenAlert]:
        """The alerts open now."""
        return [a for a in (self.handset, self.unidentified) if a is not None]

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
