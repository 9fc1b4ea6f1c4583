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

from array import array
from dataclasses import dataclass, field
from typing import Any

from scanner.core.options import CoreOptions

# Minute buckets remembered per device (enough for a learning period of up to two hours).
MAX_MINUTES = 120
# Candidates (devices not learned yet) kept at most; a MAC flood must not exhaust memory. The
# longest silent go first; learned ambient devices are never dropped by the cap.
MAX_CANDIDATES = 10_000
# A restored level beyond this is no level a radio reports (RSSI is a signed byte, SNR and
# offsets tens of dB): a corrupt snapshot, which would not fit the levels' int64 either.
RESTORE_LIMIT_DB = 1000.0


@dataclass(slots=True)
class _Stats:
    first_mono: float
    last_mono: float = 0.0
    # The minutes heard (at most ``MAX_MINUTES``), as the bits of an int: bit i is minute
    # ``minute0 + i``, and bit 0 is set (``minute0`` is the earliest kept) unless none is. A
    # set of them cost 216 bytes even of one minute, and a boxed int per minute past 256; a
    # candidate heard in a few nearby minutes is a small int (often the interpreter's shared
    # one). Kept minutes lie close: a candidate silent for ``prune``'s ``hopeless_s`` goes,
    # and a learned device's minutes (read by nothing once the start-up is decided) stop.
    minute0: int = 0
    minutes: int = 0
    # Samples per whole dBm: the levels heard, in the order first heard, then the count of each
    # (``_count_level``). A dict of them cost 224 bytes and a boxed int per level even for a
    # crowd's candidate heard at one level; this is 96. A level is an RSSI (a signed byte as
    # radios report it) less a sensor's offset (checked within 40 dB), far inside an int64.
    levels: array[int] = field(default_factory=lambda: array("q"))
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
        rounded = round(level)
        if st is None:
            # Its levels made at their size (grown by ``_count_level``, the array would hold
            # room for four).
            levels = array("q", [rounded, 1])
            st = self._stats[key] = _Stats(first_mono=mono, last_mono=mono, levels=levels)
        else:
            _count_level(st.levels, rounded)
        st.last_mono = max(st.last_mono, mono)
        if not (st.ambient and self._startup_done):
            _add_minute(st, int((mono - self._start_mono) // 60))
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
            if not -RESTORE_LIMIT_DB <= p90 <= RESTORE_LIMIT_DB:
                continue  # (NaN too) no radio's level: a corrupt entry, skipped as malformed
            st = self._stats.setdefault(str(key), _Stats(first_mono=mono))
            st.ambient = True
            st.p90 = p90
            _count_level(st.levels, round(p90))

    def _fraction(self, st: _Stats, since: float, now: float) -> float:
        start = self._start_mono or 0.0
        first = int((since - start) // 60)
        last = int((now - start) // 60)
        total = max(last - first, 1)  # the current, partial minute does not count against it
        return _minutes_in(st, first, last) / total

    @staticmethod
    def _promote(st: _Stats) -> None:
        st.ambient = True
        st.p90 = _percentile(st.levels, 0.9)
        # Promoted only once the start-up is decided: only candidates' minutes are weighed.
        st.minute0 = st.minutes = 0


def _add_minute(st: _Stats, minute: int) -> None:
    """Note a minute heard; past ``MAX_MINUTES`` the earliest kept is forgotten."""
    mask, base = st.minutes, st.minute0
    if not mask:
        st.minute0, st.minutes = minute, 1
        return
    if minute >= base and mask >> (minute - base) & 1:
        return
    if mask.bit_count() >= MAX_MINUTES:
        mask >>= 1
        if not mask:
            st.minute0, st.minutes = minute, 1
            return
        skip = (mask & -mask).bit_length() - 1  # to the next minute kept
        mask >>= skip
        base += 1 + skip
    if minute >= base:
        mask |= 1 << (minute - base)
    else:  # (records of two sensors need not arrive in time order)
        mask = mask << (base - minute) | 1
        base = minute
    st.minute0, st.minutes = base, mask


def _minutes_in(st: _Stats, first: int, last: int) -> int:
    """How many of the minutes kept are in ``[first, last)``."""
    lo = max(first, st.minute0)
    if last <= lo or not st.minutes:
        return 0
    bits = st.minutes >> (lo - st.minute0)
    if bits.bit_length() > last - lo:
        bits &= (1 << (last - lo)) - 1
    return bits.bit_count()


def _count_level(levels: array[int], rounded: int) -> None:
    """One more sample at ``rounded`` dBm in a ``_Stats.levels``."""
    n = len(levels) >> 1
    try:
        i = levels.index(rounded, 0, n)
    except ValueError:  # a level not heard before
        levels.insert(n, rounded)
        levels.append(1)
    else:
        levels[n + i] += 1


def _percentile(levels: array[int], q: float) -> float | None:
    n = len(levels) >> 1
    total = sum(levels[n:])
    if total == 0:
        return None
    target = q * total
    running = 0
    for value, count in sorted(zip(levels[:n], levels[n:], strict=True)):
        running += count
        if running >= target:
            return float(value)
    return float(max(levels[:n]))
