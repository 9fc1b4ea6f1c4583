"""A transmitter's recent level samples, held as two arrays of doubles.

Presence keeps, per transmitter and radio, its latest samples (``mono``, level). As a deque of
tuples each sample was a tuple and two boxed floats, some 110 bytes, and the deque's first block
alone 600 bytes: under a crowd of randomised MACs, 7,000-odd transmitters of 20 samples held
18 MB. Here a sample is 16 bytes of two ``array('d')`` and an empty window some 150 bytes.

It offers what presence reads of a deque: append, ``clear``, its length, indexing and
iteration, each sample as a ``(mono, level)`` tuple made as it is read, and the cuts presence
takes of it (the oldest samples dropped, the levels within a window, the newest below a level).
Values come back as floats: the core's times and levels are floats (a level is an RSSI less a
sensor's float offset, an SNR or a difference of levels).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator


class SampleWindow:
    """At most ``maxlen`` (mono, level) samples, oldest first; the oldest leave first."""

    __slots__ = ("_levels", "_monos", "_ordered", "maxlen")

    def __init__(self, maxlen: int) -> None:
        self._monos = array("d")
        self._levels = array("d")
        # Whether the samples are in time order (one sensor's always are; two sensors' of one
        # transmitter may not be): then the samples within a window are the newest ones.
        self._ordered = True
        self.maxlen = maxlen

    def append(self, sample: tuple[float, float]) -> None:
        """Add the newest sample; past ``maxlen`` the oldest goes, as a bounded deque's."""
        mono, level = sample
        monos = self._monos
        if monos and mono < monos[-1]:
            self._ordered = False
        monos.append(mono)
        self._levels.append(level)
        if len(monos) > self.maxlen:
            del monos[0]
            del self._levels[0]

    def levels(self) -> list[float]:
        """Every sample's level, oldest first."""
        return self._levels.tolist()

    def levels_within(self, mono: float, window_s: float) -> list[float]:
        """The levels of the samples with ``mono - t <= window_s``, oldest first: the same
        as filtering every sample, read as one cut of the array where the samples are in
        time order (where ``mono - t`` only falls, so the samples within are the newest)."""
        if not self._ordered:
            pairs = zip(self._monos, self._levels, strict=True)
            return [v for t, v in pairs if mono - t <= window_s]
        return self._levels[self._older_than(mono, window_s) :].tolist()

    def last_below(self, level: float) -> float | None:
        """The time of the newest sample below ``level``; None when none is."""
        levels = self._levels
        for i in range(len(levels) - 1, -1, -1):
            if levels[i] < level:
                return self._monos[i]
        return None

    def drop_older(self, mono: float, window_s: float) -> None:
        """Let the oldest samples go while they are more than ``window_s`` before ``mono``
        (what a deque's ``popleft`` loop did, in one cut)."""
        n = self._older_than(mono, window_s)
        if n:
            del self._monos[:n]
            del self._levels[:n]
            if not self._monos:
                self._ordered = True

    def _older_than(self, mono: float, window_s: float) -> int:
        """How many of the oldest samples, in a row, are more than ``window_s`` before
        ``mono``."""
        monos = self._monos
        n, end = 0, len(monos)
        while n < end and mono - monos[n] > window_s:
            n += 1
        return n

    def clear(self) -> None:
        del self._monos[:]
        del self._levels[:]
        self._ordered = True

    def __len__(self) -> int:
        return len(self._monos)

    def __getitem__(self, index: int) -> tuple[float, float]:
        return self._monos[index], self._levels[index]

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return zip(self._monos, self._levels, strict=True)

    def __repr__(self) -> str:
        return f"SampleWindow({list(self)!r}, maxlen={self.maxlen})"
