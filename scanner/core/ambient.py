"""The ambient baseline: devices that are always there are learned and not alerted on.

Two ways in:

* **Start-up**: a device heard from the first moments of the learning period and through most of
  its minutes, that never walked into the zone during it, is part of the site (the building's
  access points, a neighbour's TV, a parked car's head unit), at whatever level it is heard.
* **Later**: a device heard persistently, through most minutes of a learning period, and always
  below the zone's enter threshold, is learned too; this catches a new neighbour whose level
  now and then brushes the threshold.

An ambient device still alerts when it comes close: when its level rises ``ambient_margin_db``
above the 90th percentile of the levels it was learned at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scanner.core.options import CoreOptions

# Minute buckets remembered per device (enough for a learning period of up to two hours).
MAX_MINUTES = 120
# Candidates (devices not learned yet) kept at most; a MAC flood must not exhaust memory. The
# longest silent go first; learned ambient devices are never dropped by the cap.
MAX_CANDIDATES = 10_000


@dataclass(slots=True)
class _Stats:
    first_mono: float
    last_mono: float = 0.0
    minutes: set[int] = field(default_factory=set)
    # Samples per whole dBm. A plain dict: a Counter's Python __init__ was most of the cost of
    # a new transmitter's entry (a crowd brings hundreds a second).
    levels: dict[int, int] = field(default_factory=dict)
    entered_zone: bool = False
    seen_outside: bool = False
    above_enter: bool = False
    ambient: bool = False
    p90: float | None = None


class AmbientBaseline:
    """Learns ambient devices from their presence over time and their usual level."""

    def __init__(self, options: CoreOptions, start_mono: float | None = None) -> None:
        self._options = options
        self._start_mono = start_mono
        self._stats: dict[str, _Stats] = {}
        self._startup_done = False

    @property
    def learning(self) -> bool:
        """True during the start-up learning period."""
        return not self._startup_done

    def observe(self, key: str, mono: float, level: float, enter_dbm: float) -> None:
        """Note one sample of a device's level (RSSI dBm)."""
        if self._start_mono is None:
            self._start_mono = mono
        st = self._stats.get(key)
        if st is None:
            st = self._stats[key] = _Stats(first_mono=mono, last_mono=mono)
        st.last_mono = max(st.last_mono, mono)
        minute = int((mono - self._start_mono) // 60)
        if len(st.minutes) < MAX_MINUTES or minute in st.minutes:
            st.minutes.add(minute)
        else:
            st.minutes.discard(min(st.minutes))
            st.minutes.add(minute)
        levels = st.levels
        rounded = round(level)
        levels[rounded] = levels.get(rounded, 0) + 1
        if level >= enter_dbm:
            st.above_enter = True
        else:
            st.seen_outside = True

    def note_entered(self, key: str) -> None:
        """The device walked into the zone (from outside): it is a visitor, not furniture."""
        st = self._stats.get(key)
        # Only a device first heard outside has walked in; one inside from its first
        # sample (an access point on the ceiling) has not.
        if st is not None and not self._startup_done and st.seen_outside:
            st.entered_zone = True

    def tick(self, mono: float) -> list[str]:
        """Promote devices that qualify; returns the keys newly learned as ambient."""
        if self._start_mono is None:
            return []
        opts = self._options
        learned: list[str] = []
        for st in self._stats.values():
            if st.ambient:  # the usual level follows slow changes (furniture moved, doors)
                st.p90 = _percentile(st.levels, 0.9)
        period = opts.ambient_learning_s
        if not self._startup_done and mono - self._start_mono >= period:
            self._startup_done = True
            for key, st in self._stats.items():
                if (
                    st.first_mono - self._start_mono <= opts.ambient_first_seen_s
                    and not st.entered_zone
                    and self._fraction(st, self._start_mono, mono) >= opts.ambient_min_fraction
                ):
                    self._promote(st)
                    learned.append(key)
        if self._startup_done:
            for key, st in self._stats.items():
                if (
                    not st.ambient
                    and not st.above_enter
                    and mono - st.first_mono >= period
                    and self._fraction(st, st.first_mono, mono) >= opts.ambient_min_fraction
                ):
                    self._promote(st)
                    learned.append(key)
        return learned

    def suppresses(self, key: str, level: float | None) -> bool:
        """True when the device is ambient and at its usual level (not come close)."""
        st = self._stats.get(key)
        if st is None or not st.ambient or st.p90 is None:
            return False
        if level is None:
            return True
        return level <= st.p90 + self._options.ambient_margin_db

    def is_ambient(self, key: str) -> bool:
        st = self._stats.get(key)
        return st is not None and st.ambient

    def forget(self, key: str) -> None:
        self._stats.pop(key, None)

    def prune(self, mono: float) -> int:
        """Drop candidates that can no longer qualify, then cap the rest; returns how many.

        A candidate silent for more than the share of the learning period it may miss (plus
        the partial minute) cannot reach ``ambient_min_fraction`` any more.
        """
        opts = self._options
        hopeless_s = (1.0 - opts.ambient_min_fraction) * opts.ambient_learning_s + 60.0
        gone = [
            k
            for k, st in self._stats.items()
            if not st.ambient and mono - st.last_mono > hopeless_s
        ]
        for k in gone:
            del self._stats[k]
        candidates = [(st.last_mono, k) for k, st in self._stats.items() if not st.ambient]
        excess = len(candidates) - MAX_CANDIDATES
        if excess > 0:
            candidates.sort()
            for _, k in candidates[:excess]:
                del self._stats[k]
            gone.extend(k for _, k in candidates[:excess])
        return len(gone)

    def watches(self, key: str) -> bool:
        """True while the transmitter is a candidate or learned."""
        return key in self._stats

    def __len__(self) -> int:
        """Transmitters watched: candidates and learned ones."""
        return len(self._stats)

    def candidates(self) -> int:
        """Devices being watched that are not (yet) ambient."""
        return sum(1 for st in self._stats.values() if not st.ambient)

    def snapshot(self) -> dict[str, Any]:
        """The learned devices and levels, for the store's settings."""
        return {k: {"p90_dbm": st.p90} for k, st in self._stats.items() if st.ambient}

    def restore(self, data: Any, mono: float) -> None:
        """Take back a snapshot (after a restart the site need not be learned again)."""
        if not isinstance(data, dict):
            return
        for key, spec in data.items():
            try:
                p90 = float(spec["p90_dbm"])
            except (KeyError, TypeError, ValueError):
                continue
            st = self._stats.setdefault(str(key), _Stats(first_mono=mono))
            st.ambient = True
            st.p90 = p90
            st.levels[round(p90)] = st.levels.get(round(p90), 0) + 1

    def _fraction(self, st: _Stats, since: float, now: float) -> float:
        start = self._start_mono or 0.0
        first = int((since - start) // 60)
        last = int((now - start) // 60)
        total = max(last - first, 1)  # the current, partial minute does not count against it
        seen = sum(1 for m in st.minutes if first <= m < last)
        return seen / total

    @staticmethod
    def _promote(st: _Stats) -> None:
        st.ambient = True
        st.p90 = _percentile(st.levels, 0.9)


def _percentile(levels: dict[int, int], q: float) -> float | None:
    total = sum(levels.values())
    if total == 0:
        return None
    target = q * total
    running = 0
    for value in sorted(levels):
        running += levels[value]
        if running >= target:
            return float(value)
    return float(max(levels))
