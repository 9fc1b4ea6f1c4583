"""The allowlist as the core applies it: identities that name one device, and accounting.

Entries come from two places: the ``[core]`` config (``allowlist = [{match, value, label}]``)
and the ones a supervisor edits through the API, which reach the core as an
``AllowlistChanged`` input whenever they change. An entry exempts a device only through an
identity that names exactly one device:

* ``mac``: a Wi-Fi MAC that does not rotate: a global (vendor-assigned) MAC, the per-network
  MAC a phone keeps for the site's access point (heard in its data and null frames), or the
  fixed MAC an MDM profile sets on an issued device;
* ``ble_identity``: a BLE public or random-static address (or the BLE tracker's device id);
* ``ble_irk``: a BLE Identity Resolving Key, which resolves every resolvable private address
  the device rotates through (``scanner.sources.ble.irk``).

A Wi-Fi IE fingerprint is never an identity: every phone of one model and OS version shares
it. A ``fingerprint`` entry is kept but inactive (shown to the supervisor as such, exempting
nothing). An identity entry may carry the fingerprint its device probes with while it
randomises its MAC; that only feeds the accounting below.

Accounting, for what no entry can name (randomised probes, uplink energy): while ``k``
allowlisted devices of one fingerprint are in the zone, the ``k`` earliest-entered probing
clusters of that fingerprint are theirs and the others alarm; uplink energy from at most as
many transmitters (``uplink``: a band's bursts split by carrier, timing and level) as there are
allowlisted phones in the zone is theirs, and any beyond alarms.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scanner.core.devices import Device
from scanner.observations import BleAdvert, WifiFrame
from scanner.sources.ble import irk as irk_mod

_LOGGER = logging.getLogger(__name__)

IDENTITY_KINDS = ("mac", "ble_identity", "ble_irk")
FINGERPRINT = "fingerprint"
MATCH_KINDS = (*IDENTITY_KINDS, FINGERPRINT)
# The setting the core publishes the configuration's entries under (the API shows them read-only).
CONFIG_SETTING = "allowlist_config"
# A probing transmitter stays counted in the zone this long after it was last there: a phone
# with its screen off probes every 15 s to 3 minutes, and between bursts it is still there.
CLUSTER_HOLD_S = 180.0
# Kinds of device taken to send cellular uplink: a phone, on positive evidence (as the core
# counts handsets). A laptop, tablet, watch or an address nothing has classified may have no
# modem at all; taking it for one would let a visitor's phone heard only on the uplink hide
# behind the guard's Wi-Fi tablet (a cellular tablet then costs a false alarm, not a miss).
CELLULAR_KINDS = frozenset({"handset"})
# Resolved (or not) RPAs are remembered: one AES block per key per new address, not per advert.
_RESOLVED_CACHE = 4096


def _norm(value: str) -> str:
    return value.strip().lower()


def _float_or_none(raw: Any) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


# Frames a station sends only to the access point it is associated with: the MAC in them is the
# one it keeps for that network (iOS and Android keep one per network), not a probe's rotating one.
_ASSOCIATED = frozenset({"data", "qos_data", "null", "qos_null", "pspoll"})


def stable_mac(frame: WifiFrame) -> bool:
    """Whether this frame's MAC names one device: a global (vendor-assigned) MAC, or the MAC
    it uses in the data and null frames of its association."""
    return not frame.random_mac or frame.subtype in _ASSOCIATED


def stable_ble_address(advert: BleAdvert) -> bool:
    """Whether this advertiser address names one device: public, or random static (top two
    bits 0b11, fixed until the device's power cycle at the least)."""
    if advert.address_type == "public":
        return True
    raw = irk_mod.address_bytes(advert.address)
    return raw is not None and raw[0] >> 6 == 0b11


@dataclass(frozen=True, slots=True)
class Entry:
    """One allowlist entry as the core holds it."""

    match: str
    value: str
    label: str
    source: str  # "config" (read-only, from the site's configuration) | "store"
    expires_ts: float | None = None
    fingerprint: str = ""  # what its device probes as when it randomises (accounting only)

    @property
    def active(self) -> bool:
        """Whether it can exempt anything at all (a fingerprint never does)."""
        return self.match in IDENTITY_KINDS

    def in_force(self, now_ts: float) -> bool:
        return self.active and (self.expires_ts is None or now_ts < self.expires_ts)


def entry_of(raw: Mapping[str, Any], source: str) -> Entry | None:
    """An entry from a config table or a store row; None (counted by the caller) when unusable."""
    match = str(raw.get("match", ""))
    value = _norm(str(raw.get("value", "")))
    if match not in MATCH_KINDS or not value:
        return None
    if match == "ble_irk":
        try:
            value = irk_mod.parse_irk(value).hex()
        except ValueError:
            return None
    return Entry(
        match=match,
        value=value,
        label=str(raw.get("label", "") or match),
        source=source,
        expires_ts=_float_or_none(raw.get("expires_ts")),
        fingerprint=_norm(str(raw.get("fingerprint", "") or "")),
    )


def named_id(entry: Entry) -> str:
    """The device id of the transmitters an entry names.

    A transmitter an entry names is a device of its own: a radio tracker joins addresses by
    what phones of one model share, and an exemption must never reach a transmitter the entry
    does not name. Hashed: an IRK is a secret and device ids are shown and stored.
    """
    digest = hashlib.sha256(f"{entry.match}:{entry.value}".encode()).hexdigest()[:12]
    return f"allowlisted-{digest}"


class Allowlist:
    """The entries in force; answers which entry, if any, names a device."""

    def __init__(
        self, config_entries: Iterable[Mapping[str, Any]] = (), clock_wall: Any = None
    ) -> None:
        self._wall = clock_wall or time.time
        self._config = self._parse(config_entries, "config")
        self._store_entries: list[Entry] = []
        self.version: int | None = None
        self.dropped = 0
        self._by_value: dict[tuple[str, str], Entry] = {}
        self._irks: dict[bytes, Entry] = {}
        self._resolved: dict[str, bytes | None] = {}
        self._named_ids: dict[str, Entry] = {}
        self._rebuild()

    def _parse(self, raw: Iterable[Mapping[str, Any]], source: str) -> list[Entry]:
        out: list[Entry] = []
        for item in raw:
            entry = entry_of(item, source)
            if entry is None:
                _LOGGER.warning("allowlist: unusable %s entry dropped", item.get("match", "?"))
                self.dropped = getattr(self, "dropped", 0) + 1
                continue
            out.append(entry)
        return out

    def _rebuild(self) -> None:
        by_value: dict[tuple[str, str], Entry] = {}
        irks: dict[bytes, Entry] = {}
        for entry in self.entries():
            if not entry.active:
                continue
            if entry.match == "ble_irk":
                irks[bytes.fromhex(entry.value)] = entry
            else:
                by_value[(entry.match, entry.value)] = entry
        self._by_value = by_value
        self._irks = irks
        self._resolved = {}
        self._named_ids = {named_id(e): e for e in self.entries() if e.active}

    def entries(self) -> list[Entry]:
        """Every entry, the config's first (read-only) then the supervisor's."""
        return [*self._config, *self._store_entries]

    def fingerprints_of(self, label: str) -> frozenset[str]:
        """The fingerprints the phone of this label probes with, from any of its entries (its
        Wi-Fi entry carries them; its IRK entry, under the same label, is the same phone)."""
        return frozenset(
            e.fingerprint for e in self.entries() if e.label == label and e.fingerprint
        )

    def config_view(self) -> list[dict[str, Any]]:
        """The configuration's entries, as the page and the report show them."""
        return [
            {
                "match": e.match,
                "value": e.value,
                "label": e.label,
                "expires_ts": e.expires_ts,
                "fingerprint": e.fingerprint,
            }
            for e in self._config
        ]

    def inactive(self) -> list[Entry]:
        """Entries that exempt nothing (by fingerprint): flagged for the supervisor."""
        return [e for e in self.entries() if not e.active]

    def set_stored(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Replace the supervisor's entries (the config's stay)."""
        self._store_entries = self._parse(entries, "store")
        self._rebuild()
        _LOGGER.info("allowlist: %d entries", len(self))

    def __len__(self) -> int:
        return len(self.entries())

    def next_expiry(self, now_ts: float) -> float | None:
        """When the next entry in force expires (the core checks devices again then)."""
        times = [
            e.expires_ts
            for e in self.entries()
            if e.expires_ts is not None and e.expires_ts > now_ts
        ]
        return min(times) if times else None

    def _entry(self, kind: str, value: str | None, now_ts: float) -> Entry | None:
        if not value:
            return None
        entry = self._by_value.get((kind, _norm(value)))
        return entry if entry is not None and entry.in_force(now_ts) else None

    def _irk_entry(self, address: str, now_ts: float) -> Entry | None:
        if not self._irks or not irk_mod.is_resolvable(address):
            return None
        address = _norm(address)
        if address in self._resolved:
            key = self._resolved[address]
        else:
            key = irk_mod.resolve(address, self._irks)
            if len(self._resolved) >= _RESOLVED_CACHE:
                self._resolved.clear()
            self._resolved[address] = key
        if key is None:
            return None
        entry = self._irks[key]
        return entry if entry.in_force(now_ts) else None

    def match(self, kind: str, value: str | None, now_ts: float | None = None) -> str | None:
        """The label of the entry in force matching this identifier, or None."""
        now = self._wall() if now_ts is None else now_ts
        if kind == "ble_identity" and value:
            entry = self._entry(kind, value, now) or self._irk_entry(value, now)
        else:
            entry = self._entry(kind, value, now)
        return entry.label if entry is not None else None

    def named(self, kind: str, value: str, now_ts: float) -> Entry | None:
        """The entry in force naming this one transmitter (``kind`` "mac": a Wi-Fi MAC;
        "ble": an advertiser address, exactly or through an IRK), or None."""
        if not self._by_value and not self._irks:
            return None  # no entry names anything (every record asks: keep it cheap)
        if kind == "mac":
            return self._entry("mac", value, now_ts)
        return self._entry("ble_identity", value, now_ts) or self._irk_entry(value, now_ts)

    def entry_of_id(self, device_id: str, now_ts: float) -> Entry | None:
        """The entry in force behind a device id ``named_id`` made, or None."""
        if not self._named_ids:
            return None  # no entry names a device (asked for every new address heard)
        entry = self._named_ids.get(device_id.split(":", 1)[-1])
        return entry if entry is not None and entry.in_force(now_ts) else None

    def names_all(self, device: Device, now_ts: float) -> Entry | None:
        """The entry naming every transmitter of a device a tracker made, or None.

        A device whose transmitters entries all name (the phone of an alert, allowlisted while
        it is in the zone) is exempt as it is; one with a single unnamed transmitter is not (a
        tracker may have joined a stranger's phone of the same model to it).
        """
        if not self._by_value and not self._irks:
            return None  # no entry names any transmitter (as ``named`` says of each)
        found: Entry | None = None
        for kind, values in (("mac", device.macs), ("ble", device.ble)):
            for value in values:
                entry = self.named(kind, value, now_ts)
                if entry is None:
                    return None
                found = found or entry
        return found

    def entry_for(self, device: Device, now_ts: float | None = None) -> Entry | None:
        """The first entry in force naming this device by one of its identities, or None."""
        now = self._wall() if now_ts is None else now_ts
        for mac in device.macs:
            entry = self._entry("mac", mac, now)
            if entry is not None:
                return entry
        for address in device.ble:
            entry = self._entry("ble_identity", address, now) or self._irk_entry(address, now)
            if entry is not None:
                return entry
        return self._entry("ble_identity", device.id, now)

    def match_device(self, device: Device, now_ts: float | None = None) -> str | None:
        """The label of the first entry in force naming this device, or None."""
        entry = self.entry_for(device, now_ts)
        return entry.label if entry is not None else None


class Accounting:
    """What present allowlisted devices can explain of what no entry names.

    ``present`` holds the allowlisted devices in the zone (device id -> its entry and the
    fingerprints it probes with); ``clusters`` the unnamed Wi-Fi devices in the zone by
    fingerprint, with when each entered. A phone probes from one randomised MAC at a time, so
    one allowlisted phone accounts for at most one probing cluster of its fingerprint; a phone
    on a call transmits on one uplink band at a time, as one transmitter, so it accounts for
    at most one uplink transmitter: a second phone on its band is not its.
    """

    def __init__(self, hold_s: float = 10.0) -> None:
        # A phone stays present this long after its last transmitter left the zone: the gap
        # while a rotated address builds up its own presence (fusion's ``leave_hold_s``).
        self.hold_s = hold_s
        # device id -> its entry, the fingerprints it probes with, when it left (None: inside)
        self.present: dict[str, tuple[Entry, frozenset[str], float | None]] = {}
        self.clusters: dict[str, dict[str, float]] = {}  # fingerprint -> key -> entered
        self._last: dict[tuple[str, str], tuple[float, float]] = {}  # -> (entered, last in)
        self.bands: dict[str, float] = {}  # transmitter key -> first heard in the zone
        # Present devices that may carry a cellular modem (see ``phones_present``).
        self._cellular: set[str] = set()

    def table_sizes(self) -> dict[str, int]:
        """How many entries the accounting holds (memory bounds are checked on these)."""
        return {
            "present": len(self.present),
            "cluster_members": sum(len(m) for m in self.clusters.values()),
            "cluster_last": len(self._last),
            "bands": len(self.bands),
        }

    # -- allowlisted devices ---------------------------------------------------------------
    def allowlisted(
        self,
        device: Device,
        entry: Entry | None,
        fingerprints: Iterable[str] = (),
        mono: float | None = None,
    ) -> None:
        """An allowlisted device's zone state changed (or it stopped being allowlisted);
        ``fingerprints``: what its phone probes with, from all of the phone's entries."""
        if entry is None:
            self.present.pop(device.id, None)
            self._cellular.discard(device.id)
            return
        if device.kind in CELLULAR_KINDS:
            self._cellular.add(device.id)
        else:
            self._cellular.discard(device.id)
        fps = frozenset(
            _norm(f) for f in (entry.fingerprint, *fingerprints, *device.fingerprints) if f
        )
        if device.in_zone:
            self.present[device.id] = (entry, fps, None)
        elif device.id in self.present:
            _, _, left = self.present[device.id]
            now = device.last_mono if mono is None else mono
            self.present[device.id] = (entry, fps, left if left is not None else now)

    def _here(self, mono: float) -> list[tuple[Entry, frozenset[str]]]:
        gone = [
            d
            for d, (_, _, left) in self.present.items()
            if left is not None and mono - left > self.hold_s
        ]
        for d in gone:
            del self.present[d]
            self._cellular.discard(d)
        return [(entry, fps) for entry, fps, _ in self.present.values()]

    def phones_present(self, mono: float) -> int:
        """Allowlisted phones in the zone: one per entry label (a phone's Wi-Fi and BLE
        identities, both allowlisted under one label, are one phone). Only a device that may
        carry a cellular modem counts: the guard's Wi-Fi tablet sends no uplink, and counting
        it would hide a visitor's phone heard only on the uplink."""
        self._here(mono)
        return len({e.label for d, (e, _, _) in self.present.items() if d in self._cellular})

    def _labels(self, fingerprint: str, mono: float) -> list[str]:
        return sorted({entry.label for entry, fps in self._here(mono) if fingerprint in fps})

    # -- probing clusters ------------------------------------------------------------------
    def cluster(self, key: str, fingerprints: Iterable[str], in_zone: bool, mono: float) -> None:
        """An unnamed probing transmitter (``wifi:MAC``) was heard, in the zone or not.

        Counted per transmitter, not per tracker device: a tracker may join phones of one
        model into one device, which would hide the stranger among the guards' phones. A
        transmitter stays a member until ``CLUSTER_HOLD_S`` after it was last in the zone.
        """
        if not in_zone:
            return  # (most frames under load: the crowd outside, which no cluster counts)
        for fp in {_norm(f) for f in fingerprints if f}:
            members = self.clusters.setdefault(fp, {})
            if in_zone:
                entered, _ = self._last.get((fp, key), (mono, mono))
                members[key] = entered
                self._last[(fp, key)] = (entered, mono)

    def _expire(self, mono: float) -> None:
        for (fp, key), (_, last) in list(self._last.items()):
            if mono - last > CLUSTER_HOLD_S:
                del self._last[(fp, key)]
                members = self.clusters.get(fp, {})
                members.pop(key, None)
                if not members:
                    self.clusters.pop(fp, None)

    def forget_cluster(self, key: str) -> None:
        """The transmitter's state is gone (pruned): it is no longer counted."""
        for fp, k in [fk for fk in self._last if fk[1] == key]:
            del self._last[(fp, k)]
            members = self.clusters.get(fp, {})
            members.pop(key, None)
            if not members:
                self.clusters.pop(fp, None)

    def explains(self, key: str, fingerprints: Iterable[str], mono: float) -> str | None:
        """The label of the allowlisted phone this unnamed transmitter is accounted to, or None.

        The earliest-entered transmitters of a fingerprint go to the phones present: the
        guards were in the booth first; whoever walks in with the same model is one too many.
        """
        if not self.present:
            return None  # no allowlisted phone present accounts for anything
        for fp in sorted({_norm(f) for f in fingerprints if f}):
            labels = self._labels(fp, mono)
            if not labels:
                continue
            self._expire(mono)
            members = self.clusters.get(fp, {})
            order = sorted(members, key=lambda d: (members[d], d))[: len(labels)]
            if key in order:
                return labels[order.index(key)]
        return None

    # -- uplink energy ---------------------------------------------------------------------
    def band(self, key: str, in_zone: bool, mono: float) -> bool:
        """Whether this uplink transmitter's energy (``key``: ``uplink.transmitter_key``) is
        explained by an allowlisted phone present: the earliest in the zone, one each."""
        if not in_zone:
            self.bands.pop(key, None)
            return False
        self.bands.setdefault(key, mono)
        k = self.phones_present(mono)
        order = sorted(self.bands, key=lambda b: (self.bands[b], b))
        return key in order[:k]

    def forget_band(self, key: str) -> None:
        self.bands.pop(key, None)
