"""Fusion: Wi-Fi, BLE and SDR findings become handset presences, one per phone in the zone.

A **handset presence** is one phone in the zone, made of the devices that are evidence of it: a
Wi-Fi station and a BLE device that walked in together are one phone, not two. A new in-zone
device joins a presence that started within ``link_window_s`` and has no device of its radio
yet; otherwise it starts a presence of its own. A presence ends when all its devices have been
out of the zone for ``leave_hold_s``.

Uplink energy names no device. While a handset presence is open it is supporting evidence for
it; on its own, for longer than ``sdr_alone_after_s``, it is an unidentified transmitter.

For the count of distinct handsets, devices are joined across presences: a device seen again
in a later presence brings that presence into the same handset.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from scanner.core.detectors import Finding
from scanner.core.options import CoreOptions


@dataclass(slots=True)
class Member:
    """One device's part in a presence."""

    radio: str
    finding: Finding
    in_zone: bool = True
    out_since: float | None = None


@dataclass(slots=True)
class HandsetPresence:
    """One phone in the zone, with the devices and findings that show it."""

    id: int
    started_mono: float
    started_ts: float
    members: dict[str, Member] = field(default_factory=dict)
    ended_mono: float | None = None

    @property
    def sensors(self) -> list[str]:
        return sorted({m.radio for m in self.members.values()})

    def radios_in(self) -> set[str]:
        return {m.radio for m in self.members.values()}

    def confidence(self) -> float:
        miss = 1.0
        for m in self.members.values():
            miss *= 1.0 - m.finding.weight
        return round(1.0 - miss, 3)

    def reasons(self) -> list[str]:
        return [m.finding.reason for m in self.members.values()]

    def device_ids(self) -> list[str]:
        return list(self.members)


@dataclass(slots=True)
class EnergyState:
    """Uplink energy heard at in-zone strength, per band key."""

    findings: dict[str, Finding] = field(default_factory=dict)
    since_mono: float | None = None
    since_ts: float | None = None


class Fusion:
    """Keeps the open handset presences and the uplink energy state."""

    def __init__(self, options: CoreOptions) -> None:
        self._options = options
        self._ids = itertools.count(1)
        self.active: dict[int, HandsetPresence] = {}
        self._by_device: dict[str, int] = {}
        self.energy = EnergyState()
        # Union-find over device ids, for counting distinct handsets across presences.
        self._parent: dict[str, str] = {}
        self.presences_total = 0

    # -- device findings ---------------------------------------------------------------------
    def device_in(self, finding: Finding, mono: float, ts: float) -> HandsetPresence | None:
        """A device is evidence in the zone; returns a presence when a new one started."""
        key = finding.key
        pid = self._by_device.get(key)
        if pid is not None and pid in self.active:
            member = self.active[pid].members[key]
            member.finding = finding
            member.in_zone = True
            member.out_since = None
            return None
        target = self._joinable(finding.radio, mono)
        if target is not None:
            target.members[key] = Member(finding.radio, finding)
            self._by_device[key] = target.id
            self._union(key, next(iter(target.members)))
            return None
        presence = HandsetPresence(next(self._ids), mono, ts)
        presence.members[key] = Member(finding.radio, finding)
        self.active[presence.id] = presence
        self._by_device[key] = presence.id
        self._parent.setdefault(key, key)
        self.presences_total += 1
        return presence

    def device_out(self, key: str, mono: float) -> None:
        """The device is no longer evidence (left, silent, allowlisted, ambient)."""
        pid = self._by_device.get(key)
        if pid is None or pid not in self.active:
            return
        member = self.active[pid].members[key]
        if member.in_zone:
            member.in_zone = False
            member.out_since = mono

    def drop_device(self, key: str) -> None:
        """Remove a device from its presence at once (it was allowlisted)."""
        pid = self._by_device.pop(key, None)
        if pid is None or pid not in self.active:
            return
        presence = self.active[pid]
        presence.members.pop(key, None)
        if not presence.members:
            del self.active[pid]

    def _joinable(self, radio: str, mono: float) -> HandsetPresence | None:
        best: HandsetPresence | None = None
        for presence in self.active.values():
            if radio in presence.radios_in():
                continue
            if mono - presence.started_mono > self._options.link_window_s:
                continue
            if best is None or presence.started_mono > best.started_mono:
                best = presence
        return best

    def expire(self, mono: float) -> list[HandsetPresence]:
        """End presences whose devices have all been out for the hold time."""
        ended: list[HandsetPresence] = []
        hold = self._options.leave_hold_s
        for pid, presence in list(self.active.items()):
            if all(
                not m.in_zone and m.out_since is not None and mono - m.out_since >= hold
                for m in presence.members.values()
            ):
                presence.ended_mono = mono
                ended.append(presence)
                del self.active[pid]
                for key in presence.members:
                    if self._by_device.get(key) == pid:
                        del self._by_device[key]
        return ended

    # -- uplink energy -----------------------------------------------------------------------
    def energy_in(self, finding: Finding, mono: float, ts: float) -> None:
        if not self.energy.findings:
            self.energy.since_mono = mono
            self.energy.since_ts = ts
        self.energy.findings[finding.key] = finding

    def energy_out(self, key: str) -> None:
        self.energy.findings.pop(key, None)
        if not self.energy.findings:
            self.energy.since_mono = None
            self.energy.since_ts = None

    def unidentified(self, mono: float) -> bool:
        """True when uplink energy has been in the zone, with no handset named, long enough."""
        since = self.energy.since_mono
        return (
            since is not None
            and not self.active
            and mono - since >= self._options.sdr_alone_after_s
        )

    # -- counting ----------------------------------------------------------------------------
    def _find(self, key: str) -> str:
        parent = self._parent.setdefault(key, key)
        while parent != self._parent.get(parent, parent):
            parent = self._parent[parent]
        self._parent[key] = parent
        return parent

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[ra] = rb

    def handset_count(self) -> int:
        """Distinct handsets seen in the zone so far (devices joined across presences)."""
        return len({self._find(k) for k in self._parent})
