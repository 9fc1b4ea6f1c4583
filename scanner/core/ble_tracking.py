"""BLE device tracking across rotating addresses: one iPhone is one device, not forty.

Phones advertise from resolvable private addresses that change every ~15 minutes, and the
payload rotates its authentication tags with the address. What survives a rotation, per
published work (Martin et al. 2019 "Handoff All Your Privacy"; Celosia and Cunche 2020
"Discontinued Privacy"; Becker et al. 2019 "Tracking Anonymized Bluetooth Devices"):

* the old address falls silent exactly as the new one appears (same advertising rhythm),
* the kind of device and the stable parts of the payload: product model and colour of AirPods,
  the advertised name, a Fast Pair model id, the Nearby Info status/data flags,
* the Handoff sequence number, which keeps counting up across the rotation,
* the received signal strength: the phone has not moved in the few hundred milliseconds.

``BleTracker`` gives each new rotating address a provisional track, then, once the address
has been heard for ``settle_s``, links it to the track that went silent just before it appeared
and matches it best (same class and payload key, close RSSI, Handoff sequence continuing).
Public and static random addresses are identities already and are never linked.

Only monotonic time (``advert.mono``) is used; the tracker is deterministic for a given input.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from scanner.observations import BleAdvert
from scanner.sources.ble.address import ROTATING
from scanner.sources.ble.classify import BleClass

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    """Thresholds of the rotation linker (units in the names)."""

    # A new address is linked after it has been heard this long (or this many times), so the
    # old address has had the chance to prove it is still alive (then it was not a rotation).
    settle_s: float = 3.0
    settle_adverts: int = 12
    # The old address must have gone silent at most this long before the new one appeared.
    link_window_s: float = 20.0
    # RSSI of the old and new address (averaged) may differ by at most this much.
    max_rssi_delta_db: float = 15.0
    # Handoff sequence numbers keep counting up; a jump beyond this is another device.
    max_handoff_step: int = 256
    # A device unheard this long is forgotten (its addresses may be reused by others).
    expire_s: float = 900.0
    # How often observe() sweeps out forgotten devices, so memory stays bounded.
    sweep_every_s: float = 60.0
    # At most this many devices are tracked (a flood of random addresses must not exhaust
    # memory): past it the longest-silent tenth goes, counted in ``evicted``.
    max_tracks: int = 10_000


# Addresses a linked device keeps (so a late advert from one still finds it). A phone's
# resolvable private address rotates about every 15 minutes and a rotated-out one is not used
# again, so the newest 64 (16 hours of rotations) are plenty; a device present for weeks would
# otherwise keep every address it ever had.
MAX_TRACK_ADDRESSES = 64


@dataclass(slots=True)
class _Track:
    device_id: str
    kind: str
    vendor: str | None
    model: str | None
    signature: str
    payload_key: str | None
    # The address it advertises from now; the ones it used before, oldest first, only once it
    # has rotated (most tracks never do: a list per track for its one address cost 64 bytes).
    address: str
    rotating: bool
    first_mono: float
    last_mono: float
    rssi: float | None
    handoff_seq: int | None
    adverts: int = 0
    settled: bool = False
    older: list[str] | None = None

    @property
    def addresses(self) -> list[str]:
        """Every address it has used (up to ``MAX_TRACK_ADDRESSES``), oldest first."""
        return [*self.older, self.address] if self.older else [self.address]


class BleTracker:
    """Links successive random addresses of one device; ``observe`` returns its device id."""

    def __init__(self, options: TrackerOptions | None = None, run_tag: str = "") -> None:
        self.options = options or TrackerOptions()
        # Ids are "ble-<run>.<n>" so a restarted core never reuses one (``ble-<n>`` without).
        self._id_prefix = f"ble-{run_tag}." if run_tag else "ble-"
        self._by_address: dict[str, _Track] = {}
        self._tracks: dict[str, _Track] = {}
        self._next = 0
        self.links = 0
        self.forgotten = 0
        self.evicted = 0  # devices dropped by the memory cap, not by silence
        self.addresses_dropped = 0  # old addresses of long-lived devices (MAX_TRACK_ADDRESSES)
        self._last_sweep: float | None = None

    # -- public surface ----------------------------------------------------------------------
    def observe(self, advert: BleAdvert, cls: BleClass) -> str:
        """Account for one advert and return the id of the device that sent it."""
        now = advert.mono
        if self._last_sweep is None:
            self._last_sweep = now
        elif now - self._last_sweep >= self.options.sweep_every_s:
            self._last_sweep = now
            self.expire(now)
        track = self._by_address.get(advert.address)
        if track is not None and now - track.last_mono > self.options.expire_s:
            self._forget(track)
            track = None
        if track is None:
            if len(self._tracks) >= self.options.max_tracks:
                self._evict_oldest()
            track = self._new_track(advert, cls)
        self._update(track, advert, cls)
        if not track.settled and (
            now - track.first_mono >= self.options.settle_s
            or track.adverts >= self.options.settle_adverts
        ):
            track = self._settle(track)
        return track.device_id

    def device_count(self, active_within_s: float | None = None, now: float | None = None) -> int:
        """Distinct devices tracked (optionally only those heard within the window)."""
        if active_within_s is None:
            return len(self._tracks)
        ref = (
            now
            if now is not None
            else max((t.last_mono for t in self._tracks.values()), default=0.0)
        )
        return sum(1 for t in self._tracks.values() if ref - t.last_mono <= active_within_s)

    def device_of(self, address: str) -> str | None:
        """The device id an address is attributed to now (after any later linking)."""
        track = self._by_address.get(address)
        return track.device_id if track else None

    def addresses_of(self, device_id: str) -> list[str]:
        """Every address the device has used, oldest first."""
        track = self._tracks.get(device_id)
        return track.addresses if track else []

    def table_sizes(self) -> dict[str, int]:
        """How many entries the tracker's tables hold (memory bounds are checked on these)."""
        return {
            "tracks": len(self._tracks),
            "addresses": len(self._by_address),
            "track_addresses": sum(1 + len(t.older or ()) for t in self._tracks.values()),
        }

    def expire(self, now: float) -> int:
        """Forget devices unheard for ``expire_s``; returns how many."""
        old = [t for t in self._tracks.values() if now - t.last_mono > self.options.expire_s]
        for t in old:
            self._forget(t)
        if old:
            self._compact()
        return len(old)

    def _evict_oldest(self) -> None:
        """Drop the longest-silent tenth of the devices (a tenth, so the sort is amortised)."""
        by_age = sorted(self._tracks.values(), key=lambda t: t.last_mono)
        for t in by_age[: max(1, len(by_age) // 10)]:
            self._forget(t)
            self.evicted += 1
        self._compact()

    def _compact(self) -> None:
        """Rebuild the two tables after removals: a dict never shrinks as entries go, and when
        its room runs out (new tracks and links use it up) it is regrown with room for three
        times its live entries, twice what a copy has; at the cap the next eviction, a tenth
        later, copies it again before it runs out. A copy keeps the order, which decides ties
        between equally good links."""
        self._tracks = dict(self._tracks)
        self._by_address = dict(self._by_address)

    # -- internals ---------------------------------------------------------------------------
    def _new_track(self, advert: BleAdvert, cls: BleClass) -> _Track:
        self._next += 1
        track = _Track(
            device_id=f"{self._id_prefix}{self._next:06d}",
            kind=cls.kind,
            vendor=cls.vendor,
            model=cls.model,
            # The classifier builds a new signature string for every advert; thousands of
            # tracks of a few kinds of device share a handful of values.
            signature=sys.intern(cls.signature),
            payload_key=cls.payload_key,
            address=advert.address,
            rotating=cls.address_kind in ROTATING,
            first_mono=advert.mono,
            last_mono=advert.mono,
            rssi=None,
            handoff_seq=None,
        )
        # Identity addresses need no linking.
        track.settled = not track.rotating
        self._tracks[track.device_id] = track
        self._by_address[advert.address] = track
        return track

    def _update(self, track: _Track, advert: BleAdvert, cls: BleClass) -> None:
        track.last_mono = max(track.last_mono, advert.mono)
        track.adverts += 1
        if advert.rssi_dbm is not None:
            # A light average: one advert's fading must not decide a link.
            track.rssi = (
                float(advert.rssi_dbm)
                if track.rssi is None
                else (0.7 * track.rssi + 0.3 * advert.rssi_dbm)
            )
        if cls.handoff_seq is not None:
            track.handoff_seq = cls.handoff_seq
        if cls.payload_key and not track.payload_key:
            track.payload_key = cls.payload_key
        # A better classification (e.g. a later advert with Nearby Info) upgrades the track.
        if track.kind == "unknown" and cls.kind != "unknown":
            track.kind, track.vendor, track.model = cls.kind, cls.vendor, cls.model
            track.signature = sys.intern(cls.signature)

    def _settle(self, new: _Track) -> _Track:
        new.settled = True
        best: _Track | None = None
        best_score = float("inf")
        for old in self._tracks.values():
            score = self._link_score(old, new)
            if score is not None and score < best_score:
                best, best_score = old, score
        if best is None:
            return new
        # Merge the new address into the old device.
        addresses = best.addresses
        addresses.extend(new.addresses)
        best.last_mono = max(best.last_mono, new.last_mono)
        best.adverts += new.adverts
        best.rssi = new.rssi if new.rssi is not None else best.rssi
        best.handoff_seq = new.handoff_seq if new.handoff_seq is not None else best.handoff_seq
        best.payload_key = best.payload_key or new.payload_key
        for address in new.addresses:
            self._by_address[address] = best
        dropped = addresses[:-MAX_TRACK_ADDRESSES]
        del addresses[:-MAX_TRACK_ADDRESSES]
        best.address = addresses.pop()
        best.older = addresses
        for address in dropped:
            if self._by_address.get(address) is best and address not in best.addresses:
                del self._by_address[address]
            self.addresses_dropped += 1
        del self._tracks[new.device_id]
        self.links += 1
        _LOGGER.debug("linked %s to %s (score %.1f)", new.addresses, best.device_id, best_score)
        return best

    def _link_score(self, old: _Track, new: _Track) -> float | None:
        """How well ``new`` continues ``old`` (lower is better), or None if it cannot."""
        o = self.options
        if old is new or not old.rotating or not old.settled:
            return None
        # The old address must have stopped before the new one started...
        gap = new.first_mono - old.last_mono
        if gap < 0 or gap > o.link_window_s:
            return None
        # ...and be the same kind of device with the same stable payload. An advert that says
        # nothing about itself is not linked on timing alone: that would chain strangers.
        if old.kind != new.kind or old.vendor != new.vendor:
            return None
        if old.kind == "unknown" and not (old.payload_key and old.payload_key == new.payload_key):
            return None
        if old.payload_key and new.payload_key and old.payload_key != new.payload_key:
            return None
        # Within a few advertising intervals every gap looks alike: the gap only breaks ties
        # between candidates far apart in time; RSSI and payload continuity decide.
        score = gap / 5.0
        if old.signature != new.signature:
            score += 5.0
        if old.model and new.model and old.model != new.model:
            return None
        if old.rssi is not None and new.rssi is not None:
            delta = abs(old.rssi - new.rssi)
            if delta > o.max_rssi_delta_db:
                return None
            score += delta / 1.5
        if old.handoff_seq is not None and new.handoff_seq is not None:
            step = (new.handoff_seq - old.handoff_seq) & 0xFFFF
            if step > o.max_handoff_step:
                return None
            score -= 2.0  # a continuing counter is strong evidence
        if old.payload_key and old.payload_key == new.payload_key:
            score -= 2.0
        return score

    def _forget(self, track: _Track) -> None:
        self._tracks.pop(track.device_id, None)
        for address in track.addresses:
            if self._by_address.get(address) is track:
                del self._by_address[address]
        self.forgotten += 1
