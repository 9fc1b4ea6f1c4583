"""Wi-Fi station tracking: many randomised MACs, one handset.

A phone that scans changes its MAC every few bursts (iOS and Android: per scan, per SSID, per
interval). Counting MACs counts hundreds of "devices" for one phone. The tracker groups MACs
into stations using what a phone cannot hide without breaking Wi-Fi:

1. the same MAC is the same station (a global, vendor-assigned MAC for ever; a randomised one
   while the station is active);
2. sequence-number continuity: some drivers keep one 12-bit counter across MAC changes, so a new
   MAC whose first sequence number follows an active station's last one closely is that station.
   Others start every new address at a random number (on the ProbingPatterns captures the
   iPhone 7 carries its counter over at all 23 address changes; the iPhone 11, 12 and XR, the
   S21 and the Oppo at 0-5%, which is chance: 64 of 4096 numbers follow within the window). For
   such a phone a "continuing" counter is a coincidence, and with several phones of one model
   around it picks one of them at random, so a station whose new addresses have started afresh
   more often than they carried on is not joined by its counter;
3. the information-element fingerprint (capabilities; see sources/wifi/fingerprint.py) plus
   timing: a new random MAC with the fingerprint of a station heard within ``join_window_s``,
   at a plausible RSSI, is that station. Phones of the same model share a fingerprint, so this
   only joins stations that are active together in time and space; a station idle longer than
   ``join_window_s`` can no longer absorb new MACs, and the next one starts a new station;
4. the networks it asks for: a directed probe naming a network that exactly one recent station
   of the same Wi-Fi stack (rates and element set) has asked for is that station, whatever its
   other elements (phones send directed and wildcard probes with different element lists).

Phones of one model heard together (the normal case at a gate) share a fingerprint, so a new MAC
goes to the candidate station it fits best, not simply the latest: its level against the
station's envelope (a frame much stronger than that is another phone; weaker is no veto, since a
close phone leaks onto neighbouring channels), and the SSIDs the station has asked for. And a
probe address that comes back after its station moved on to a newer one proves two phones: a
phone probes from one address at a time, so the returning address gets a station of its own.

A MAC seen with two fingerprints (phones vary their element list between directed and broadcast
probes) links them, so later MACs with either fingerprint find the station.

Time is the frames' monotonic clock (``mono``); frames may arrive slightly out of order
(several capture interfaces) and the tracker tolerates that.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from scanner.config import ConfigError
from scanner.observations import WifiFrame
from scanner.sources.wifi.fingerprint import segments

_LOGGER = logging.getLogger(__name__)

SEQ_MODULUS = 4096

# Ranges that keep each tracker check meaningful (reasons at the options).
_LIMITS: dict[str, tuple[float, float]] = {
    "max_rssi_jump_db": (3.0, 40.0),
    "rssi_drift_db_per_s": (0.0, 5.0),
    "max_rssi_drift_db": (0.0, 40.0),
    "seq_window": (1.0, 2048.0),
}


# What a station's sets hold until their first member: most stations never ask for a network
# by name, send from a vendor-assigned address or take an address on their model alone, and
# an empty set of their own would cost 216 bytes each (thousands of stations in a crowd).
_NONE: frozenset[str] = frozenset()


# Stations of one phone model send the same element lists and ask for the site's networks:
# their one-member sets of those are shared (frozen, so sharing is safe), from a table of at
# most this many values. A model and OS version sends two or three lists (directed and
# wildcard probes), so a thousand covers a gate's crowd many times over; it is cleared when
# full, so a flood of made-up lists costs at most this many sets.
_MAX_SHARED = 1024


def _with(
    values: AbstractSet[str], value: str, shared: dict[str, frozenset[str]] | None = None
) -> AbstractSet[str]:
    """``values`` with ``value`` added: in place once it is a set of its own; a first member
    from ``shared`` when given. A member already there leaves ``values`` as it is, so a shared
    set stays shared while the station repeats its one list or network (every frame asks)."""
    if value in values:
        return values
    if isinstance(values, set):
        values.add(value)
        return values
    if values or shared is None:
        return {*values, value}
    one = shared.get(value)
    if one is None:
        if len(shared) >= _MAX_SHARED:
            shared.clear()
        one = shared[value] = frozenset((value,))
    return one


def _without(values: AbstractSet[str], value: str) -> AbstractSet[str]:
    """``values`` without ``value`` (in place where it is a set of its own)."""
    if isinstance(values, set):
        values.discard(value)
    return values


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
    # RSSI continuity, against the station's envelope: the strongest of its latest frames.
    # The envelope, not each frame: a sensor with one adapter per channel also hears a close
    # phone's probes on the neighbouring channels, about 30 dB down (adjacent-channel
    # rejection), so single frames of one phone a moment apart differ by 30-40 dB on real
    # captures; such leakage only ever lowers a level. A new MAC is not the station when its
    # frame is stronger than the envelope by more than fast fading explains: indoors 3-4 dB
    # standard deviation per packet, so 12 dB (about 2.5 standard deviations of a difference).
    max_rssi_jump_db: int = 12
    # (A weaker frame is no veto: a phone touching the sensor, -15 dBm, is heard 50-60 dB down
    # on an adapter two channels away, measured on the ProbingPatterns captures.)
    # The bound widens by this for each second since the station was last heard: someone walking
    # at 1.4 m/s 5-15 m from the sensor changes path loss by about 1-3 dB a second (exponent
    # 2.7); a phone that last scanned a minute ago may have crossed the room.
    rssi_drift_db_per_s: float = 0.5
    # ... up to this much (a crossed room, a phone taken out of a pocket: 20 dB and more).
    max_rssi_drift_db: float = 24.0
    # A MAC that comes back after its station moved on to a newer MAC proves the newer MAC
    # was another phone: a phone probes from one address at a time (on the ProbingPatterns
    # captures no phone ever interleaves two probe addresses). Data frames from an associated
    # address alongside random probe addresses are normal and do not count. Frames from
    # several capture interfaces arrive out of order by up to this much, so a MAC's "return"
    # must come this long after the newer MAC started to count.
    mac_return_slack_s: float = 0.5
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
        for name, (lo, hi) in _LIMITS.items():
            if name in values and not lo <= values[name] <= hi:
                # A bound of 400 dB, say, would switch the continuity check off.
                raise ConfigError(f"[core].wifi_{name} = {values[name]} is outside {lo:g}..{hi:g}")
        return cls(**values)


@dataclass(slots=True)
class Station:
    """One tracked station (a handset, usually) and what identifies it."""

    device_id: str
    last_mono: float
    last_seq: int
    global_mac: bool
    # The latest few levels on any channel; their maximum is the station's envelope.
    recent_rssi: list[int] = field(default_factory=list)
    # The address its probe requests come from now, since when, and when each was last heard.
    probe_mac: str = ""
    probe_mac_since: float = 0.0
    probe_mac_last: dict[str, float] = field(default_factory=dict)
    # Its element lists, and the following sets: ``_NONE`` until their first member.
    fingerprints: AbstractSet[str] = _NONE
    # For a station named after its vendor-assigned address: that address, and the element
    # lists it sent itself (the others came with addresses joined to it).
    own_mac: str = ""
    own_fingerprints: AbstractSet[str] = _NONE
    # (Its addresses are the keys ``WifiTracker._by_mac`` maps to it: a set of them here too
    # cost over 100 bytes an address under a churning crowd, for one station holding most.)
    # Its MACs joined on a (near) fingerprint alone: see ``WifiTracker.joined_by_model``.
    model_joined: AbstractSet[str] = _NONE
    # How often a new probe address of it carried on its sequence counter (first number
    # within ``seq_window`` after its last), and how often it started elsewhere: a phone does
    # one or the other at every address change, so the larger count says which it does.
    counter_kept: int = 0
    counter_reset: int = 0
    data_frames: int = 0
    ssids: AbstractSet[str] = _NONE


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
        self._shared: dict[str, frozenset[str]] = {}  # see _with
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
            "ssid": 0,
            "new": 0,
            "split": 0,
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
            if self._founder_returned(station, frame):
                # The station's own vendor-assigned address probes again after random
                # addresses joined it on its model alone: a phone probes from one address at
                # a time, so those were another phone of the model. They leave, with the
                # element lists only they brought; the station keeps its address and id.
                self._move_out_model_joins(station, frame)
            elif self._returned(station, frame):
                # This address was joined to a station that has since probed from a newer
                # one: two phones, not one. The returning address gets a station of its own.
                # (A global MAC never returns to another station: ``_returned``.)
                self.joined_by["split"] += 1
                station.probe_mac_last.pop(frame.mac, None)
                station = self._new_station(frame, global_mac=False)
            self._by_mac[frame.mac] = station
        else:
            # A new MAC, random or not: the locally-administered bit is not trusted to decide
            # (anonymised captures scramble it, and some phones randomise with global-looking
            # OUIs); a global MAC only keeps its station for longer once assigned.
            match = self._match(frame)
            if match is None:
                station = self._new_station(frame, global_mac=not frame.random_mac)
            else:
                station, by_model = match
                if by_model:
                    station.model_joined = _with(station.model_joined, frame.mac)
                else:  # back by its own evidence
                    station.model_joined = _without(station.model_joined, frame.mac)
            self._by_mac[frame.mac] = station
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

    def joined_by_model(self, mac: str) -> bool:
        """Whether ``mac`` is in its station on a shared fingerprint alone.

        Every phone of one model (and OS version) sends the same probe elements from its random
        addresses, so such a join says "this model, heard nearby", not "this phone": a second
        phone of that model walking in (the guards' own model, say) joins the same way. Joins
        on a sequence counter that continues, or on the address itself, are the phone's own.
        """
        station = self._by_mac.get(mac)
        return station is not None and mac in station.model_joined

    def device_count(self) -> int:
        """Distinct stations seen since the tracker started."""
        return self._created

    def active_count(self, now_mono: float, window_s: float) -> int:
        """Stations heard within ``window_s`` before ``now_mono``."""
        return sum(1 for s in self.stations.values() if now_mono - s.last_mono <= window_s)

    def table_sizes(self) -> dict[str, int]:
        """How many entries the tracker's tables hold (memory bounds are checked on these)."""
        return {
            "macs": len(self._by_mac),
            "stations": len(self.stations),
            "fingerprint_stations": sum(len(v) for v in self._by_fingerprint.values()),
            "recent": len(self._recent),
        }

    def macs_of(self, device_id: str) -> list[str]:
        """The addresses attributed to the station now, least recently heard first."""
        station = self.stations.get(device_id)
        return [mac for mac, st in self._by_mac.items() if st is station]

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
            for mac in [mac for mac, st in self._by_mac.items() if id(st) in gone]:
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
                evicted = self._by_mac.pop(mac)
                evicted.model_joined = _without(evicted.model_joined, mac)
            self.evicted_macs += excess

    # -- matching ---------------------------------------------------------------------------
    def _match(self, frame: WifiFrame) -> tuple[Station, bool] | None:
        """The station ``frame``'s new MAC belongs to, and whether only its fingerprint says
        so (see ``joined_by_model``); None: a new station."""
        opts = self.options
        now = frame.mono
        # 1. sequence continuity with a station heard moments ago.
        best: Station | None = None
        best_gap = opts.seq_window + 1
        for st in reversed(self._recent):
            if now - st.last_mono > opts.seq_window_s:
                break
            if st.counter_reset > st.counter_kept:
                # Its addresses start at new numbers: a match would be a coincidence (1 in 64
                # per station for a window of 64), not this phone's counter.
                continue
            gap = (frame.seq - st.last_seq) % SEQ_MODULUS
            if 0 < gap < best_gap and self._compatible(st, frame):
                best, best_gap = st, gap
        if best is not None:
            self.joined_by["seq"] += 1
            return best, False
        # 2. same fingerprint, active recently, plausible RSSI: of several such stations
        # (phones of one model heard together), the one whose level and SSIDs fit best.
        if frame.fingerprint:
            same = self._by_fingerprint.get(frame.fingerprint, ())
            found = self._best(same, frame, opts.join_window_s)
            if found is not None:
                self.joined_by["fingerprint"] += 1
                return found, True
            # 3. a near fingerprint (same rates and element set, one more part equal) from a
            # station heard moments ago: the same phone scanning with another element list.
            mine = segments(frame.fingerprint)
            # A weak cue: never from a random address into a station that talks on a network
            # from a vendor-assigned one (the guard's radio, a desk PC): such a station does
            # not switch to random probe addresses with another element list.
            near = [
                st
                for st in self._recent[-256:]
                if now - st.last_mono <= opts.near_join_window_s
                and not (frame.random_mac and st.global_mac and st.data_frames)
                and any(_near(mine, segments(fp)) for fp in st.fingerprints)
            ]
            found = self._best(near, frame, opts.near_join_window_s)
            if found is not None:
                self.joined_by["near_fingerprint"] += 1
                return found, True
            # 4. the network it asks for: directed probes name the networks a phone remembers,
            # and a phone sends its directed and wildcard probes with element lists that may
            # differ in all but the rates and element set (on the ProbingPatterns captures the
            # Oppo's two lists share only that segment, and every address of it asks for the
            # same five networks). A network only one station has asked for is that phone's
            # memory; one several stations ask for (the site's own network) says nothing.
            found = self._asked_by_one(frame, mine)
            if found is not None:
                self.joined_by["ssid"] += 1
                return found, False
        return None

    def _asked_by_one(self, frame: WifiFrame, mine: tuple[str, ...]) -> Station | None:
        """The one recent station of the same Wi-Fi stack that asked for ``frame.ssid``."""
        if not frame.ssid or not mine:
            return None
        window = self.options.near_join_window_s
        askers = [
            st
            for st in self._recent[-256:]
            if frame.ssid in st.ssids and frame.mono - st.last_mono <= window
        ]
        if len(askers) != 1:
            return None
        st = askers[0]
        if not any(segments(fp)[:1] == mine[:1] for fp in st.fingerprints):
            return None
        if frame.random_mac and st.global_mac and st.data_frames:
            return None
        return st if self._cost(st, frame) is not None else None

    def _best(
        self, stations: Iterable[Station], frame: WifiFrame, window_s: float
    ) -> Station | None:
        """The candidate station that fits ``frame`` best, or None when none is plausible."""
        best: Station | None = None
        best_cost = float("inf")
        # Candidates come most recently heard last: walk back and stop at the window's edge
        # (frames a little out of order can leave a slightly older one after a newer one).
        for st in reversed(list(stations)):
            age = frame.mono - st.last_mono
            if age > window_s + 60.0:
                break
            if age > window_s:
                continue
            cost = self._cost(st, frame)
            if cost is None:
                continue
            # Recency breaks ties: of two equally fitting stations, the one just heard.
            cost += 0.1 * max(age, 0.0) / max(window_s, 1.0)
            if cost < best_cost:
                best, best_cost = st, cost
        return best

    def _founder_returned(self, st: Station, frame: WifiFrame) -> bool:
        """Whether ``frame`` is a probe from the vendor address ``st`` is named after, coming
        back after ``st`` moved on to another probe address."""
        if frame.subtype != "probe_req" or frame.mac != st.own_mac or st.probe_mac == frame.mac:
            return False
        return self._moved_on_from(st, frame.mac)

    def _move_out_model_joins(self, st: Station, frame: WifiFrame) -> None:
        """Move the addresses joined to ``st`` on its model alone since its own address last
        probed into a station of their own (see ``_founder_returned``)."""
        since = st.probe_mac_last[frame.mac]
        movers = [m for m, t in st.probe_mac_last.items() if t > since and m in st.model_joined]
        if not movers:
            return
        self.joined_by["split"] += 1
        self._created += 1
        # The lists only they brought go with them; when they sent the station's own list
        # (the same model exactly), both keep it.
        brought = st.fingerprints - st.own_fingerprints
        latest = max(movers, key=lambda mac: st.probe_mac_last[mac])
        label = min(brought)[:8] if brought else frame.fingerprint[:8] or "data"
        other = Station(
            device_id=f"{self._id_prefix}{self._created}-{label}",
            last_mono=st.probe_mac_last[latest],
            last_seq=st.last_seq,
            global_mac=False,
            recent_rssi=list(st.recent_rssi),
            probe_mac=latest,
            probe_mac_since=st.probe_mac_since if latest == st.probe_mac else since,
            fingerprints=set(brought or st.fingerprints),
        )
        self.stations[other.device_id] = other
        for mac in movers:
            other.probe_mac_last[mac] = st.probe_mac_last.pop(mac)
            st.model_joined = _without(st.model_joined, mac)
            other.model_joined = _with(other.model_joined, mac)
            if self._by_mac.get(mac) is st:
                self._by_mac[mac] = other
        for fp in other.fingerprints:
            self._by_fingerprint.setdefault(fp, []).append(other)
        for fp in brought:
            bucket = self._by_fingerprint.get(fp)
            if bucket is not None and st in bucket:
                bucket.remove(st)
        st.fingerprints -= brought
        self._recent.append(other)

    def _returned(self, st: Station, frame: WifiFrame) -> bool:
        """Whether a probe from ``frame.mac`` comes after ``st`` moved on to another address."""
        if frame.subtype != "probe_req" or not st.probe_mac or st.probe_mac == frame.mac:
            return False
        if st.global_mac or not frame.random_mac:
            # A vendor-assigned address is the station's own: it keeps it (and its id).
            return False
        return self._moved_on_from(st, frame.mac)

    def _moved_on_from(self, st: Station, mac: str) -> bool:
        """Whether ``st`` probed from ``mac`` and then, past the slack, from a newer address."""
        last = st.probe_mac_last.get(mac)
        if last is None:
            return False
        return st.probe_mac_since > last + self.options.mac_return_slack_s

    def _compatible(self, st: Station, frame: WifiFrame) -> bool:
        """A sequence match must agree with the fingerprint when the frame has one.

        Not merely "not contradict": a station that has only sent data frames (the guard's
        radio on the site network) has no fingerprint to contradict, and 12-bit counters
        a few dozen apart are common enough between unrelated stations heard together.
        """
        if frame.fingerprint and frame.fingerprint not in st.fingerprints:
            return False
        return self._cost(st, frame) is not None

    def _cost(self, st: Station, frame: WifiFrame) -> float | None:
        """How badly ``frame`` fits ``st`` (0 perfect, about 1 at the limit); None: cannot."""
        opts = self.options
        cost = 0.0
        if frame.rssi_dbm is not None and st.recent_rssi:
            age = max(0.0, frame.mono - st.last_mono)
            drift = min(opts.rssi_drift_db_per_s * age, opts.max_rssi_drift_db)
            above = frame.rssi_dbm - max(st.recent_rssi)
            if above > opts.max_rssi_jump_db + drift:
                return None
            # Near the envelope fits best; below it may be leakage, so a weaker hint.
            cost += (above if above > 0 else -above / 4) / (opts.max_rssi_jump_db + drift)
        # Directed probes name the networks a phone remembers; a network this station never
        # asked for makes another phone likelier (a weak hint: lists are probed in parts).
        if frame.ssid and st.ssids and frame.ssid not in st.ssids:
            cost += 0.5
        return cost

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
            last_mono=frame.mono,
            last_seq=frame.seq,
            global_mac=global_mac,
            own_mac=frame.mac if global_mac else "",
        )
        self.stations[device_id] = station
        return station

    def _update(self, station: Station, frame: WifiFrame) -> None:
        # The first probe of an address new to the station, soon after its last frame: did
        # the counter carry on? (Counted whatever joined the address; a station that mixes two
        # phones counts resets, which only turns off a join it could not trust anyway.)
        if (
            frame.subtype == "probe_req"
            and station.probe_mac
            and frame.mac != station.probe_mac
            and frame.mac not in station.probe_mac_last
            and frame.mono - station.last_mono <= self.options.seq_window_s
        ):
            step = (frame.seq - station.last_seq) % SEQ_MODULUS
            if 0 < step <= self.options.seq_window:
                station.counter_kept += 1
            else:
                station.counter_reset += 1
        if frame.subtype != "probe_req":
            station.data_frames += 1
        station.last_seq = frame.seq
        rssi = frame.rssi_dbm
        if rssi is not None:
            # One burst is a dozen frames or so; its strongest are the envelope.
            station.recent_rssi.append(rssi)
            if len(station.recent_rssi) > 8:
                del station.recent_rssi[0]
        station.last_mono = max(station.last_mono, frame.mono)
        if frame.subtype == "probe_req":
            if station.probe_mac != frame.mac:
                station.probe_mac, station.probe_mac_since = frame.mac, frame.mono
            station.probe_mac_last[frame.mac] = frame.mono
            if len(station.probe_mac_last) > 256:
                # Only recent addresses can return meaningfully; keep the newest.
                heard = station.probe_mac_last
                for mac in sorted(heard, key=lambda m: heard[m])[:64]:
                    del heard[mac]
        if frame.ssid:
            station.ssids = _with(station.ssids, frame.ssid, self._shared)
        fp = frame.fingerprint
        if fp and frame.mac == station.own_mac:
            station.own_fingerprints = _with(station.own_fingerprints, fp, self._shared)
        if fp:
            station.fingerprints = _with(station.fingerprints, fp, self._shared)
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
