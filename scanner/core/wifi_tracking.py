"""Wi-Fi station tracking: many randomised MACs, one handset.

A phone that scans changes its MAC every few bursts (iOS and Android: per scan, per SSID, per
interval). Counting MACs counts hundreds of "devices" for one phone. The tracker groups MACs
into stations using what a phone cannot hide without breaking Wi-Fi:

1. the same MAC is the same station (a global, vendor-assigned MAC for ever; a randomised one
   while the station is active);
2. sequence-number continuity: many drivers keep one 12-bit counter across MAC changes, so a new
   MAC whose first sequence number follows an active station's last one closely is that station;
3. the information-element fingerprint (capabilities; see sources/wifi/fingerprint.py) plus
   timing: a new random MAC with the fingerprint of a station heard within ``join_window_s``,
   at a plausible RSSI, is that station. Phones of the same model share a fingerprint, so this
   only joins stations that are active together in time and space; a station idle longer than
   ``join_window_s`` can no longer absorb new MACs, and the next one starts a new station.

A MAC seen with two fingerprints (phones vary their element list between directed and broadcast
probes) links them, so later MACs with either fingerprint find the station.

Time is the frames' monotonic clock (``mono``); frames may arrive slightly out of order
(several capture interfaces) and the tracker tolerates that.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

from scanner.observations import WifiFrame
from scanner.sources.wifi.fingerprint import segments

_LOGGER = logging.getLogger(__name__)

SEQ_MODULUS = 4096


def _near(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Same base segment (rates, element set) and at least one more segment equal."""
    if not a or not b or a[0] != b[0]:
        return False
    return a[1] == b[1] or a[2] == b[2] or a[3] == b[3]


@dataclass(frozen=True, slots=True)
class WifiTrackerOptions:
    """Thresholds of the station tracker (config section [core], keys prefixed ``wifi_``)."""

    # A random MAC only joins a station heard this recently: phones scan every few seconds to
    # a few minutes while the screen is on, so 5 minutes bridges the gaps of one visit.
    join_window_s: float = 300.0
    # A near fingerprint (see _near) joins only a station heard this recently: a phone switches
    # element lists between scans seconds apart, a second phone of the same family may be there
    # minutes later.
    near_join_window_s: float = 90.0
    # Sequence continuity: the new MAC's first number within this many after the station's last.
    seq_window: int = 64
    # ... and within this time (a counter that continues after minutes is a coincidence).
    seq_window_s: float = 30.0
    # A new MAC joins by fingerprint only if its RSSI is within this of the station's last
    # (two phones of one model at the door and across the hall stay apart).
    max_rssi_jump_db: int = 400
    # A random MAC unheard this long is forgotten (memory bound); global MACs are kept longer.
    forget_mac_after_s: float = 3600.0
    # Memory caps, so a flood of random MACs cannot exhaust a 1 GB Pi: past a cap the least
    # recently heard tenth goes (counted in ``evicted_macs`` / ``evicted``). 20,000 MACs is
    # more than a hundred phones randomising per scan use in the hour a MAC is kept, and a
    # random MAC silent past ``join_window_s`` cannot rejoin its station anyway.
    max_macs: int = 20_000
    max_stations: int = 10_000

    @classmethod
    def from_mapping(cls, section: dict[str, Any]) -> WifiTrackerOptions:
        """Options from a config section; unknown keys are ignored (they belong to others)."""
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            key = f"wifi_{name}"
            if key in section:
                values[name] = type(getattr(cls(), name))(section[key])
        return cls(**values)


@dataclass(slots=True)
class Station:
    """One tracked station (a handset, usually) and what identifies it."""

    device_id: str
    first_mono: float
    last_mono: float
    last_seq: int
    global_mac: bool
    # Last RSSI per channel frequency: sensors often use one adapter per channel, with
    # different antennas and gains, so levels are only comparable on the same channel.
    last_rssi: dict[int | None, int] = field(default_factory=dict)
    fingerprints: set[str] = field(default_factory=set)
    macs: set[str] = field(default_factory=set)
    frames: int = 0
    ssids: set[str] = field(default_factory=set)
    max_rssi_dbm: int | None = None


class WifiTracker:
    """Groups Wi-Fi frames into stations; ``observe`` returns the station's device id."""

    def __init__(self, options: WifiTrackerOptions | None = None, run_tag: str = "") -> None:
        self.options = options or WifiTrackerOptions()
        # Random-MAC station ids are "wifi-r<run>.<n>-...": unique across runs on one store.
        self._id_prefix = f"wifi-r{run_tag}." if run_tag else "wifi-r"
        self._by_mac: dict[str, Station] = {}
        # Active random-MAC stations by fingerprint, most recent last.
        self._by_fingerprint: dict[str, list[Station]] = {}
        self._recent: list[Station] = []  # random-MAC stations, for sequence continuity
        self._created = 0
        self._last_forget = float("-inf")
        self.evicted = 0  # stations dropped by the memory cap, not by silence
        self.evicted_macs = 0  # MACs dropped by the memory cap, not by silence
        self.stations: dict[str, Station] = {}
        self.joined_by: dict[str, int] = {
            "mac": 0,
            "seq": 0,
            "fingerprint": 0,
            "near_fingerprint": 0,
            "new": 0,
        }

    # -- public -----------------------------------------------------------------------------
    def observe(self, frame: WifiFrame) -> str:
        """Assign ``frame`` to a station and return that station's device id."""
        now = frame.mono
        station = self._by_mac.get(frame.mac)
        if station is not None and (
            not frame.random_mac or now - station.last_mono <= self.options.join_window_s
        ):
            self.joined_by["mac"] += 1
            # Most recently heard last: the memory cap evicts from the front.
            del self._by_mac[frame.mac]
            self._by_mac[frame.mac] = station
        else:
            # A new MAC, random or not: the locally-administered bit is not trusted to decide
            # (anonymised captures scramble it, and some phones randomise with global-looking
            # OUIs); a global MAC only keeps its station for longer once assigned.
            station = self._match(frame)
            if station is None:
                station = self._new_station(frame, global_mac=not frame.random_mac)
            self._by_mac[frame.mac] = station
            station.macs.add(frame.mac)
        self._update(station, frame)
        if len(self._by_mac) > self.options.max_macs or now - self._last_forget >= 60.0:
            self._last_forget = now
            self.forget(now)
        if (
            len(self.stations) > self.options.max_stations
            or len(self._by_mac) > self.options.max_macs
        ):
            self._evict_oldest()
        return station.device_id

    def device_count(self) -> int:
        """Distinct stations seen since the tracker started."""
        return self._created

    def active_count(self, now_mono: float, window_s: float) -> int:
        """Stations heard within ``window_s`` before ``now_mono``."""
        return sum(1 for s in self.stations.values() if now_mono - s.last_mono <= window_s)

    def forget(self, now_mono: float) -> int:
        """Drop stations unheard for ``forget_mac_after_s`` (global MACs: ten times longer).

        Keeps memory bounded on an appliance that runs for months; returns the MACs dropped.
        A global MAC that comes back later gets the same device id (it is made from the MAC).
        """
        limit = self.options.forget_mac_after_s
        stale = [
            mac
            for mac, st in self._by_mac.items()
            if now_mono - st.last_mono > (limit * 10 if st.global_mac else limit)
        ]
        for mac in stale:
            del self._by_mac[mac]
        for device_id in [
            d
            for d, st in self.stations.items()
            if now_mono - st.last_mono > (limit * 10 if st.global_mac else limit)
        ]:
            del self.stations[device_id]
        for fp, stations in list(self._by_fingerprint.items()):
            alive = [s for s in stations if now_mono - s.last_mono <= limit]
            if alive:
                self._by_fingerprint[fp] = alive
            else:
                del self._by_fingerprint[fp]
        self._recent = [s for s in self._recent if now_mono - s.last_mono <= limit]
        return len(stale)

    def _evict_oldest(self) -> None:
        """Keep within the caps: drop the least recently heard tenth (stations, then MACs).

        A tenth at a time so the cost is paid once per many new MACs, not on every frame.
        ``_by_mac`` is kept in least-recently-heard order, so its oldest MACs come first.
        """
        opts = self.options
        if len(self.stations) > opts.max_stations:
            by_age = sorted(self.stations.values(), key=lambda st: st.last_mono)
            doomed = by_age[: len(by_age) - opts.max_stations * 9 // 10]
            gone = {id(st) for st in doomed}
            for st in doomed:
                del self.stations[st.device_id]
                for mac in st.macs:
                    if self._by_mac.get(mac) is st:
                        del self._by_mac[mac]
            for fp, stations in list(self._by_fingerprint.items()):
                alive = [st for st in stations if id(st) not in gone]
                if alive:
                    self._by_fingerprint[fp] = alive
                else:
                    del self._by_fingerprint[fp]
            self._recent = [st for st in self._recent if id(st) not in gone]
            self.evicted += len(doomed)
        excess = len(self._by_mac) - opts.max_macs * 9 // 10
        if len(self._by_mac) > opts.max_macs and excess > 0:
            for mac in list(itertools.islice(self._by_mac, excess)):
                self._by_mac.pop(mac).macs.discard(mac)
            self.evicted_macs += excess

    # -- matching ---------------------------------------------------------------------------
    def _match(self, frame: WifiFrame) -> Station | None:
        opts = self.options
        now = frame.mono
        # 1. sequence continuity with a station heard moments ago.
        best: Station | None = None
        best_gap = opts.seq_window + 1
        for st in reversed(self._recent):
            if now - st.last_mono > opts.seq_window_s:
                break
            gap = (frame.seq - st.last_seq) % SEQ_MODULUS
            if 0 < gap < best_gap and self._compatible(st, frame):
                best, best_gap = st, gap
        if best is not None:
            self.joined_by["seq"] += 1
            return best
        # 2. same fingerprint, active recently, plausible RSSI: the most recent such station.
        if frame.fingerprint:
            for st in reversed(self._by_fingerprint.get(frame.fingerprint, ())):
                if now - st.last_mono > opts.join_window_s:
                    break
                if self._rssi_plausible(st, frame):
                    self.joined_by["fingerprint"] += 1
                    return st
            # 3. a near fingerprint (same rates and element set, one more part equal) from a
            # station heard moments ago: the same phone scanning with another element list.
            mine = segments(frame.fingerprint)
            for st in reversed(self._recent):
                if now - st.last_mono > opts.near_join_window_s:
                    break
                near = any(_near(mine, segments(fp)) for fp in st.fingerprints)
                if near and self._rssi_plausible(st, frame):
                    self.joined_by["near_fingerprint"] += 1
                    return st
        return None

    def _compatible(self, st: Station, frame: WifiFrame) -> bool:
        """A sequence match must not contradict the fingerprint (when both have one)."""
        if frame.fingerprint and st.fingerprints and frame.fingerprint not in st.fingerprints:
            return False
        return self._rssi_plausible(st, frame)

    def _rssi_plausible(self, st: Station, frame: WifiFrame) -> bool:
        if frame.rssi_dbm is None:
            return True
        last = st.last_rssi.get(frame.freq_mhz)
        if last is None:
            return True
        return abs(last - frame.rssi_dbm) <= self.options.max_rssi_jump_db

    # -- bookkeeping ------------------------------------------------------------------------
    def _new_station(self, frame: WifiFrame, *, global_mac: bool) -> Station:
        self._created += 1
        self.joined_by["new"] += 1
        if global_mac:
            device_id = "wifi-" + frame.mac.replace(":", "")
        else:
            device_id = f"{self._id_prefix}{self._created}-{frame.fingerprint[:8] or 'data'}"
        station = Station(
            device_id=device_id,
            first_mono=frame.mono,
            last_mono=frame.mono,
            last_seq=frame.seq,
            global_mac=global_mac,
        )
        self.stations[device_id] = station
        return station

    def _update(self, station: Station, frame: WifiFrame) -> None:
        station.frames += 1
        station.last_seq = frame.seq
        rssi = frame.rssi_dbm
        if rssi is not None:
            station.last_rssi[frame.freq_mhz] = rssi
            if station.max_rssi_dbm is None or rssi > station.max_rssi_dbm:
                station.max_rssi_dbm = rssi
        station.last_mono = max(station.last_mono, frame.mono)
        if frame.ssid:
            station.ssids.add(frame.ssid)
        fp = frame.fingerprint
        if fp:
            station.fingerprints.add(fp)
            bucket = self._by_fingerprint.setdefault(fp, [])
            if not bucket or bucket[-1] is not station:
                if station in bucket:
                    bucket.remove(station)
                bucket.append(station)
        if not self._recent or self._recent[-1] is not station:
            if station in self._recent[-64:]:
                self._recent.remove(station)
            self._recent.append(station)
            if len(self._recent) > 4096:
                del self._recent[:1024]
