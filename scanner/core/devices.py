"""The device model: one physical transmitter as the core knows it, across its rotating addresses.

The radio trackers (``wifi_tracking``, ``ble_tracking``) decide which addresses belong to one
device and hand back a device id; this module keeps what is known about each device: its kind
and the evidence for it, when it was first and last heard, its identifiers and recent RSSI.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# Hard cap on device records in memory (a MAC flood); the longest silent go first.
MAX_DEVICES = 10_000

KINDS = ("handset", "wearable", "audio", "tag", "computer", "access_point", "beacon", "other")

# Kinds counted as phones: positive evidence only (see ``scanner.core.kinds``). An unknown
# station is not one: on real captures those are desk PCs, TVs and printers probing all night.
HANDSET_LIKE = frozenset({"handset"})

# A device heard over a longer span than this is part of the site, not a person's phone: a
# visitor, or someone working in the room, carries a phone in and out within a working day,
# while a TV, a desk PC or a phone left on charge is heard day and night.
STATIC_SPAN_S = 12 * 3600.0

# Identifier lists are capped so a device that rotates addresses for days stays small.
MAX_IDENTIFIERS = 64

# RSSI readings (a signed byte, as radios report them) as shared int objects: a record's own
# int (28 bytes; the interpreter shares only -5 to 256) would otherwise stay with its device.
_RSSI_MIN_DBM, _RSSI_MAX_DBM = -128, 127
_RSSI_INTS = tuple(range(_RSSI_MIN_DBM, _RSSI_MAX_DBM + 1))


@dataclass(slots=True)
class Device:
    """Everything the core knows about one device."""

    id: str
    radio: str
    first_ts: float
    first_mono: float
    last_ts: float
    last_mono: float
    kind: str = "unknown"
    vendor: str | None = None
    # Identifier and evidence lists are tuples, grown by a new tuple (``with_identifier``): a
    # crowd's device holds one or two items in all, and of six lists each an object of 56 to 88
    # bytes, five were empty. An empty tuple is one shared object, a tuple of one 48 bytes.
    evidence: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    ble: tuple[str, ...] = ()
    # Identities that name this device alone (scanner.core.allowlist): a MAC that is global or
    # that it uses associated to a network; a public or random-static BLE address.
    stable_macs: tuple[str, ...] = ()
    stable_ble: tuple[str, ...] = ()
    last_rssi: int | None = None
    count: int = 0
    allowlisted: str | None = None  # the matching entry's label, when allowlisted
    ambient: bool = False
    in_zone: bool = False
    dirty: bool = True  # changed since last written to the store

    def note(self, ts: float, mono: float, rssi: int | None) -> None:
        """One more observation of this device."""
        self.last_ts = ts
        self.last_mono = mono
        self.count += 1
        # Only the latest level is kept: presence keeps its own window of samples per
        # transmitter, and a history here (nothing read it) cost each device 2.5 kB.
        if rssi is not None:
            # (``type`` asked, not ``isinstance``: a bool or a float reading stays itself.)
            if type(rssi) is int and _RSSI_MIN_DBM <= rssi <= _RSSI_MAX_DBM:
                rssi = _RSSI_INTS[rssi - _RSSI_MIN_DBM]
            self.last_rssi = rssi
        self.dirty = True

    def with_identifier(self, bucket: tuple[str, ...], value: str) -> tuple[str, ...]:
        """``bucket`` with ``value`` added at its end, the device marked changed; ``bucket``
        itself when the value is empty, already in it or the bucket full. The caller stores
        the result: ``device.ble = device.with_identifier(device.ble, address)``."""
        if value and value not in bucket and len(bucket) < MAX_IDENTIFIERS:
            self.dirty = True
            return (*bucket, value)
        return bucket

    def with_new_identifier(self, bucket: tuple[str, ...], value: str) -> tuple[str, ...]:
        """``with_identifier`` of a value the caller found not in ``bucket``: without walking
        it again (a crowd's device holds up to ``MAX_IDENTIFIERS`` MACs, each new one asked)."""
        if value and len(bucket) < MAX_IDENTIFIERS:
            self.dirty = True
            return (*bucket, value)
        return bucket

    def set_kind(self, kind: str, vendor: str | None, reason: str) -> None:
        """Record the kind and why; a definite kind is never downgraded to unknown."""
        if kind == "unknown" and self.kind != "unknown":
            return
        if kind != self.kind or vendor != self.vendor:
            self.kind = kind
            self.vendor = vendor or self.vendor
            self.dirty = True
        if reason and reason not in self.evidence:
            # The classifiers make a reason's text anew for each record; there are few distinct
            # ones (a template per vendor), so each device keeps the one shared copy.
            self.evidence = (*self.evidence, sys.intern(reason))[-8:]
            self.dirty = True

    @property
    def handset_like(self) -> bool:
        return self.kind in HANDSET_LIKE

    @property
    def is_handset(self) -> bool:
        """A handset on positive evidence, not heard for longer than a person stays."""
        return self.kind in HANDSET_LIKE and self.last_mono - self.first_mono <= STATIC_SPAN_S

    @property
    def counts_as_handset(self) -> bool:
        """Whether this device is one of the handsets the core counts (in the zone or heard).

        A handset on positive evidence, not allowlisted, not heard for longer than a person
        stays, and not learned as part of the site with a fixed address. A phone with a
        randomised address that the ambient learner took in was someone present when the core
        started (in the Brno lab, the people at their desks): still a person's phone. It does
        not alarm while its level stays ambient (see the detectors), but it is heard.
        """
        if not self.is_handset or self.allowlisted is not None:
            return False
        return not self.ambient or self.rotating_address

    @property
    def rotating_address(self) -> bool:
        """Whether a Wi-Fi address of this device is locally administered (randomised)."""
        return any(len(m) > 1 and int(m[1], 16) & 0x2 for m in self.macs)

    def identifiers(self) -> dict[str, list[str]]:
        """What the API offers to allowlist: MACs, IE fingerprints and BLE identities."""
        return {
            "macs": list(self.macs),
            "fingerprints": list(self.fingerprints),
            "ble": list(self.ble),
            "stable_macs": list(self.stable_macs),
            "stable_ble": list(self.stable_ble),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "radio": self.radio,
            "kind": self.kind,
            "vendor": self.vendor,
            "first_seen": self.first_ts,
            "last_seen": self.last_ts,
            "identifiers": self.identifiers(),
            "evidence": list(self.evidence),
            "last_rssi": self.last_rssi,
            "in_zone": self.in_zone,
            "ambient": self.ambient,
            "allowlisted": self.allowlisted,
        }


class DeviceTable:
    """The devices the core has heard, by id; old silent devices are forgotten."""

    def __init__(self, forget_after_s: float = 6 * 3600.0) -> None:
        self._devices: dict[str, Device] = {}
        self._forget_after_s = forget_after_s

    def get(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def touch(self, device_id: str, radio: str, ts: float, mono: float) -> Device:
        """The device with this id, created on first sight."""
        device = self._devices.get(device_id)
        if device is None:
            device = Device(device_id, radio, ts, mono, ts, mono)
            self._devices[device_id] = device
        return device

    def __iter__(self) -> Iterator[Device]:
        return iter(self._devices.values())

    def __len__(self) -> int:
        return len(self._devices)

    def dirty(self) -> list[Device]:
        """Devices changed since the last call; they are marked clean."""
        out = [d for d in self._devices.values() if d.dirty]
        for d in out:
            d.dirty = False
        return out

    def forget_silent(self, now_mono: float) -> list[str]:
        """Drop devices unheard for the forget period (keeps memory bounded on a long run)."""
        gone = [
            k
            for k, d in self._devices.items()
            if now_mono - d.last_mono > self._forget_after_s and not d.in_zone
        ]
        for k in gone:
            del self._devices[k]
        return gone

    def forget(self, drop: Callable[[Device], bool]) -> int:
        """Drop the devices ``drop`` selects; returns how many."""
        gone = [k for k, d in self._devices.items() if drop(d)]
        for k in gone:
            del self._devices[k]
        return len(gone)

    def evict_oldest(self, count: int, may_drop: Callable[[Device], bool]) -> int:
        """Drop up to ``count`` of the longest-silent devices ``may_drop`` allows (memory cap)."""
        if count <= 0:
            return 0
        candidates = sorted(
            (d for d in self._devices.values() if may_drop(d)), key=lambda d: d.last_mono
        )
        for d in candidates[:count]:
            del self._devices[d.id]
        return min(count, len(candidates))
