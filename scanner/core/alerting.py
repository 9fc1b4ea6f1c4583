"""Alert lifecycle: raised, updated, acknowledged, resolved, from the fusion state.

An alert is about the handsets it names, and a guard's acknowledgement is about those handsets:

* A handset (a transmitter in the zone not joined by fusion to one an open alert already names)
  that enters while an alert is open and unacknowledged joins that alert, and the tablet alarms
  for it (``AlertUpdated`` with ``alarm``). When every open alert is acknowledged, it raises an
  alert of its own: a new handset after an acknowledgement always alarms again.
* A handset an open alert already names (its other radio, a rotated address, the same phone
  back within the hold) stays with that alert: no new alarm, and the alert's acknowledgement
  and note stay with it.
* An alert closes once none of its handsets has been in the zone for ``resolve_after_s``; when
  a new handset enters while the only unacknowledged alert has none of its own left inside, that
  alert closes at once and the newcomer gets a new alert, so one alert never spans an empty
  zone between two visitors.
* A guard may acknowledge an alert after it closed: the tablet keeps an unacknowledged alarm on
  screen until it is acknowledged, even when the phone has left.

Uplink energy alone opens an "unidentified transmitter" alert of its own, resolved when the
energy stops or a handset is named. While a handset is named, energy is supporting evidence on
the alerts with handsets inside.

A core that starts over a store (after a crash, a power cut or a restart) **adopts** the alerts
its predecessor left open instead of raising them again: an adopted alert recognises the
transmitters it was about (by MAC, BLE address or IE fingerprint, as stored in the devices
table); if none is heard in the zone within ``adopt_grace_s`` it is resolved as ``left_zone``.
Monotonic time does not survive a restart, so an adopted alert's duration is its stored duration
plus the new run's monotonic time since adoption.

Nothing here writes: every transition is an event (``scanner.core.events``) handed to
``emit``; the store, the alert lines and the live feed are sinks of those events.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
# Closed alerts no guard has acknowledged yet, kept so a late acknowledgement still reaches
# every sink; beyond this many the oldest is forgotten (the store keeps it acknowledgeable).
MAX_CLOSED_UNACKED = 256
# Transmitters an open alert remembers as its own, to know its handsets when they come back. A
# visitor brings two or three, a rotating phone a new one every few minutes; an alert holding
# this many is open through a flood of addresses, and those longest out of the zone are
# forgotten first (``owned_forgotten``), so a flood lasting hours cannot grow it without end.
MAX_OWNED = 4096


@dataclass(slots=True)
class OpenAlert:
    """An alert the core currently holds open."""

    id: str
    kind: str
    raised_ts: float
    raised_mono: float
    # Transmitters this alert names, ever (to recognise its handsets), and those inside now.
    owned: set[str] = field(default_factory=set)
    present: set[str] = field(default_factory=set)
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
    # Why the alert is kept open without fresh evidence: the sensor that heard its handsets
    # is down ("held: sensor gate offline since 12:00:05Z"); None while it hears.
    held: str | None = None

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
            reasons=(*self.reasons, self.held) if self.held else tuple(self.reasons),
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
        self.handsets: list[OpenAlert] = []  # open handset alerts, oldest first
        self.unidentified: OpenAlert | None = None
        self._closed: dict[str, AlertView] = {}  # closed, not yet acknowledged
        self._seq = 0
        self._identifiers = identifiers
        self._pending: list[LeftOpen] = []
        self.counters: dict[str, int] = {
            "raised": 0,
            "updated": 0,
            "resolved": 0,
            "adopted": 0,
            "acknowledged": 0,
            "alarms": 0,
        }
        self.owned_forgotten = 0

    @property
    def handset(self) -> OpenAlert | None:
        """The newest open handset alert, if any."""
        return self.handsets[-1] if self.handsets else None

    def adopt(self, alerts: tuple[LeftOpen, ...]) -> None:
        """Alerts an earlier run left open: taken over at the next step of the timeline."""
        self._pending.extend(alerts)

    # -- adoption of what an earlier run left open -------------------------------------------
    def _adopt_pending(self, ts: float, mono: float) -> None:
        """Take over the alerts found open at start; ``mono`` starts the new run's clock."""
        pending, self._pending = self._pending, []
        for rec in sorted(pending, key=lambda p: p.raised_ts):
            # Durations come from the monotonic clock, which restarted: carry the stored one.
            alert = OpenAlert(rec.id, rec.kind, rec.raised_ts, mono - rec.duration_s)
            alert.handsets = rec.handsets
            alert.sensors = list(rec.sensors)
            alert.reasons = list(rec.reasons)
            alert.device_ids = list(rec.device_ids)
            alert.confidence = rec.confidence
            alert.acknowledged = rec.acknowledged
            alert.quiet_since = mono
            alert.touched_mono = mono
            alert.adopted = Adopted(rec.keys, rec.fingerprints)
            if rec.kind == HANDSET:
                self.handsets.append(alert)
            elif self.unidentified is None:
                self.unidentified = alert
            else:
                # Two uplink alerts left open cannot be told apart; the newer one carries on.
                _LOGGER.warning("alert %s was left open beside a newer one; clearing it", rec.id)
                self._resolve(self.unidentified, ts, mono, "cleared")
                self.unidentified = alert
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

    def _new_id(self, kind: str, ts: float) -> str:
        self._seq += 1
        digest = hashlib.sha256(f"{kind}:{ts:.6f}:{self._seq}".encode()).hexdigest()
        return f"al-{digest[:12]}"

    # -- the sync step, after every change in fusion -----------------------------------------
    def sync(self, fusion: Fusion, ts: float, mono: float) -> None:
        """Bring the alerts in line with fusion's state at this moment."""
        if self._pending:
            self._adopt_pending(ts, mono)
        self._sync_handsets(fusion, ts, mono)
        self._sync_unidentified(fusion, ts, mono)

    def _owner_of(self, fusion: Fusion, presence: Presence) -> OpenAlert | None:
        """The open alert that already names this transmitter's handset, if any.

        Only the joins an alarm can trust count (a tracker's on the phone's own evidence,
        radios entering within ``link_window_s``, and an address first heard inside where the
        one handset in the zone that could own it stood: ``Fusion._sole_owner``), and not one
        that would make one phone of two transmitters of one radio heard at once. Fusion's
        looser joins (a radio entering alone joined to a handset inside lacking it; an address
        joined on its model's fingerprint alone) are not trusted otherwise: a second visitor can
        be that radio or that address, and taking it for the same phone would hide a phone.
        """
        key = presence.key
        root = fusion.surely_handset_of(key)
        radio = presence.radio
        lookup = self._identifiers
        for alert in reversed(self.handsets):
            if any(
                fusion.surely_handset_of(k) == root
                and not (k.split(":", 1)[0] == radio and fusion.heard_at_once(k, key))
                for k in alert.owned
            ):
                return alert
            adopted = alert.adopted
            if adopted is not None and adopted.recognises(
                presence.key, lookup(presence.identity) if lookup is not None else None
            ):
                return alert
        return None

    def _sync_handsets(self, fusion: Fusion, ts: float, mono: float) -> None:
        active = fusion.active
        for alert in self.handsets:
            alert.present = {k for k in alert.owned if k in active}
        # A transmitter taken for an acknowledged phone's new address, then proved another
        # phone (its supposed old address heard again): no longer that alert's, a new handset.
        disputed = fusion.take_disputed()
        for alert in self.handsets:
            alert.owned -= disputed
            alert.present -= disputed
        owned = set().union(*(a.owned for a in self.handsets)) if self.handsets else set()
        # Each transmitter that entered since the last step goes to the alert of its handset,
        # or, a new handset, to the open unacknowledged alert, or to a new alert.
        joined: dict[str, list[bool]] = {}  # alert id -> [gained a transmitter, new handset]
        raised: list[OpenAlert] = []
        for presence in sorted(
            (p for k, p in active.items() if k not in owned), key=lambda p: p.started_mono
        ):
            target = None if presence.key in disputed else self._owner_of(fusion, presence)
            new_handset = target is None
            if target is None:
                target = self._open_unacknowledged(ts, mono)
            if target is None:
                target = OpenAlert(self._new_id(HANDSET, ts), HANDSET, ts, mono)
                self.handsets.append(target)
                raised.append(target)
            target.owned.add(presence.key)
            target.present.add(presence.key)
            if target.adopted is not None:
                # The first presence after a restart: the alert is current again. Its own
                # transmitters back are no news; another handset joins it as a new one.
                target.adopted = None
                _LOGGER.info("adopted alert %s: handsets in the zone again", target.id)
                if not new_handset:
                    continue
            flags = joined.setdefault(target.id, [False, False])
            flags[0] = True
            flags[1] = flags[1] or new_handset
            if len(target.owned) > MAX_OWNED:
                self._forget_owned(target, fusion)
        energy = list(fusion.energy.findings.values())
        # Uplink energy that stands on its own (``Finding.alone``) on a new band is a transmitter
        # entering too, even though it names no device: it is said on the alerts with handsets
        # inside (no alarm of its own).
        strong = {f.key for f in energy if f.alone}
        for alert in list(self.handsets):
            if alert.present:
                alert.quiet_since = None
                new = alert in raised
                self._refresh(alert, fusion, energy, strong, joined.get(alert.id), new, ts, mono)
                if new:
                    self._raise(alert)
            elif alert.quiet_since is None:
                alert.quiet_since = mono
            elif mono - alert.quiet_since >= self._hold_s(alert):
                self._close(alert, ts, mono, "left_zone")

    def _forget_owned(self, alert: OpenAlert, fusion: Fusion) -> None:
        """Down to nine tenths of ``MAX_OWNED`` (the sort paid once per many new ones), the
        transmitters longest out of the zone first; those inside now stay."""
        gone = sorted(alert.owned - alert.present, key=fusion.last_in_zone)
        for key in gone[: len(alert.owned) - MAX_OWNED * 9 // 10]:
            alert.owned.discard(key)
            self.owned_forgotten += 1

    def table_sizes(self) -> dict[str, int]:
        """How many entries the alerts' tables hold (memory bounds are checked on these)."""
        return {
            "open": len(self.handsets) + (self.unidentified is not None),
            "owned": sum(len(a.owned) for a in self.handsets),
            "closed_unacknowledged": len(self._closed),
        }

    def _open_unacknowledged(self, ts: float, mono: float) -> OpenAlert | None:
        """The alert a new handset joins: the newest open one not yet acknowledged, if it still
        has handsets inside (one whose handsets all left closes now: a new visitor is a new
        alert, not the tail of the previous one's)."""
        for alert in reversed(self.handsets):
            if alert.acknowledged:
                continue
            if alert.present or alert.adopted is not None:
                # (An alert left open by the previous run and not yet heard again: whether the
                # zone was empty meanwhile is unknown, so it takes the handset in, as it would
                # have before the restart.)
                return alert
            self._close(alert, ts, mono, "left_zone")
        return None

    def _refresh(
        self,
        alert: OpenAlert,
        fusion: Fusion,
        energy: list[Any],
        strong: set[str],
        joined: list[bool] | None,
        new: bool,
        ts: float,
        mono: float,
    ) -> None:
        """Bring an alert with handsets inside up to date; ``new``: it is about to be raised."""
        present = alert.present
        new_energy = bool(strong - alert.energy_keys)
        alert.energy_keys = strong
        # The radios heard (cheap): the full summary is made only when something changed.
        radios = {fusion.active[k].radio for k in present}
        if energy:
            radios.add("sdr")
        changed_sensors = not radios.issubset(alert.sensors)
        if new or joined is not None or new_energy or changed_sensors:
            presences = [fusion.active[k] for k in present]
            sensors, reasons, devices, confidence = _summary(presences, energy)
            alert.handsets = len({fusion.handset_of(k) for k in present})
            alert.sensors = sensors
            alert.reasons = reasons
            alert.device_ids = devices
            alert.confidence = confidence
            if new:
                return  # raised by the caller with this content
            gained = bool(joined and joined[0]) or new_energy
            self._update(
                alert,
                ts,
                mono,
                gained,
                new_handset=bool(joined and joined[1]),
                new_sensor=changed_sensors,
            )
        elif mono - alert.touched_mono >= TOUCH_EVERY_S:
            alert.handsets = len({fusion.handset_of(k) for k in present})
            self._touch(alert, ts, mono)

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

    # -- transitions -------------------------------------------------------------------------
    def _raise(self, alert: OpenAlert) -> None:
        self.counters["raised"] += 1
        self.counters["alarms"] += 1
        alert.touched_mono = alert.raised_mono
        _LOGGER.info("alert %s raised: %s", alert.id, "; ".join(alert.reasons))
        ts, view = alert.raised_ts, alert.view(alert.raised_mono)
        self._emit(AlertRaised(ts, view))
        self._emit(AlertAlarmed(ts, alert.id, tuple(sorted(alert.present))))
        self._emit(EvidenceWanted(ts, alert.id, view.device_ids))

    def _update(
        self,
        alert: OpenAlert,
        ts: float,
        mono: float,
        gained: bool,
        new_handset: bool,
        new_sensor: bool = False,
    ) -> None:
        self.counters["updated"] += 1
        alert.touched_mono = mono
        # Only a handset the alert did not name sounds the alarm; it joins only an alert no
        # guard has acknowledged (see the module docstring).
        alarm = new_handset and not alert.acknowledged
        view = alert.view(mono)
        self._emit(AlertUpdated(ts, view, gained=gained, alarm=alarm, new_sensor=new_sensor))
        if alarm:
            self.counters["alarms"] += 1
            self._emit(AlertAlarmed(ts, alert.id, tuple(sorted(alert.present))))

    def _touch(self, alert: OpenAlert, ts: float, mono: float) -> None:
        alert.touched_mono = mono
        self._emit(AlertTouched(ts, alert.id, round(mono - alert.raised_mono, 1)))

    def _resolve(self, alert: OpenAlert, ts: float, mono: float, resolution: str) -> None:
        self.counters["resolved"] += 1
        _LOGGER.info("alert %s resolved: %s", alert.id, resolution)
        view = alert.view(mono)
        self._emit(AlertResolved(ts, view, resolution))
        if not alert.acknowledged:
            self._closed[alert.id] = view
            while len(self._closed) > MAX_CLOSED_UNACKED:
                del self._closed[next(iter(self._closed))]

    def _close(self, alert: OpenAlert, ts: float, mono: float, resolution: str) -> None:
        self._resolve(alert, ts, mono, resolution)
        self.handsets.remove(alert)

    def acknowledge(self, ack: Acknowledge, mono: float) -> bool:
        """A guard acknowledged an alert: open, or closed but not yet acknowledged (the tablet
        keeps an unacknowledged alarm until a guard acknowledges it). False when unknown."""
        for alert in (*self.handsets, self.unidentified):
            if alert is not None and alert.id == ack.alert_id:
                if not alert.acknowledged:
                    alert.acknowledged = True
                    self.counters["acknowledged"] += 1
                    self._emit(AlertAcknowledged(ack.ts, alert.view(mono), ack.by, ack.note))
                return True
        closed = self._closed.pop(ack.alert_id, None)
        if closed is None:
            return False
        self.counters["acknowledged"] += 1
        view = replace(closed, acknowledged=True)
        self._emit(AlertAcknowledged(ack.ts, view, ack.by, ack.note))
        return True

    def open_alerts(self) -> list[OpenAlert]:
        """The alerts open now."""
        return [*self.handsets, *([self.unidentified] if self.unidentified else [])]

    def resolve_emptied(self, fusion: Fusion, ts: float, mono: float, resolution: str) -> None:
        """Close the handset alerts none of whose transmitters is in the zone any more (they
        were allowlisted), at once."""
        for alert in list(self.handsets):
            if alert.present and not any(k in fusion.active for k in alert.present):
                alert.present = set()
                self._close(alert, ts, mono, resolution)

    def hold(self, notes: Mapping[str, str], ts: float, mono: float) -> None:
        """Say on each handset alert whether it is held open by a sensor that is down
        (``notes``: transmitter key -> why it is held); an alert whose note changed is updated,
        without an alarm (no handset entered)."""
        for alert in self.handsets:
            note = next((notes[k] for k in sorted(alert.present) if k in notes), None)
            if note != alert.held:
                alert.held = note
                self._update(alert, ts, mono, gained=False, new_handset=False)

    def resolve_all(self, ts: float, mono: float, resolution: str = "cleared") -> None:
        """Close whatever is open (the core is stopping)."""
        for alert in list(self.handsets):
            self._close(alert, ts, mono, resolution)
        if self.unidentified is not None:
            self._resolve(self.unidentified, ts, mono, resolution)
            self.unidentified = None


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
