"""A transmitter's recent level samples, held in one array of doubles.

Presence keeps, per transmitter and radio, its latest samples (``mono``, level). As a deque of
tuples each sample was a tuple and two boxed floats, some 110 bytes, and the deque's first block
alone 600 bytes: under a crowd of randomised MACs, 7,000-odd transmitters of 20 samples held
18 MB. Here a sample is 16 bytes, its time then its level side by side in one ``array('d')``
(two arrays, one of times and one of levels, cost a second array's 64-byte header and its
own spare room on every transmitter).

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

    __slots__ = ("_data", "_ordered", "maxlen")

    def __init__(self, maxlen: int) -> None:
        # Sample i is ``_data[2 * i]`` (its mono) and ``_data[2 * i + 1]`` (its level).
        self._data = array("d")
        # Whether the samples are in time order (one sensor's always are; two sensors' of one
        # transmitter may not be): then the samples within a window are the newest ones.
        self._ordered = True
        self.maxlen = maxlen

    def append(self, sample: tuple[float, float]) -> None:
        """Add the newest sample; past ``maxlen`` the oldest goes, as a bounded deque's."""
        mono, level = sample
        data = self._data
        if data and mono < data[-2]:
            self._ordered = False
        data.append(mono)
        data.append(level)
        if len(data) > 2 * self.maxlen:
            del data[:2]

    def levels(self) -> list[float]:
        """Every sample's level, oldest first."""
        return self._data[1::2].tolist()

    def levels_within(self, mono: float, window_s: float) -> list[float]:
        """The levels of the samples with ``mono - t <= window_s``, oldest first: the same
        as filtering every sample, read as one cut of the array where the samples are in
        time order (where ``mono - t`` only falls, so the samples within are the newest)."""
        data = self._data
        if not self._ordered:
            return [v for t, v in self if mono - t <= window_s]
        return data[2 * self._older_than(mono, window_s) + 1 :: 2].tolist()

    def last_below(self, level: float) -> float | None:
        """The time of the newest sample below ``level``; None when none is."""
        data = self._data
        for i in range(len(data) - 1, 0, -2):
            if data[i] < level:
                return data[i - 1]
        return None

    def drop_older(self, mono: float, window_s: float) -> None:
        """Let the oldest samples go while they are more than ``window_s`` before ``mono``
        (what a deque's ``popleft`` loop did, in one cut)."""
        n = self._older_than(mono, window_s)
        if n:
            del self._data[: 2 * n]
            if not self._data:
                self._ordered = True

    def _older_than(self, mono: float, window_s: float) -> int:
        """How many of the oldest samples, in a row, are more than ``window_s`` before
        ``mono``."""
        data = self._data
        i, end = 0, len(data)
        while i < end and mono - data[i] > window_s:
            i += 2
        return i // 2

    def clear(self) -> None:
        del self._data[:]
        self._ordered = True

    def __len__(self) -> int:
        return len(self._data) // 2

    def __getitem__(self, index: int) -> tuple[float, float]:
        n = len(self._data) // 2
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError("sample window index out of range")
        return self._data[2 * i], self._data[2 * i + 1]

    def __iter__(self) -> Iterator[tuple[float, float]]:
        pairs = iter(self._data)
        return zip(pairs, pairs, strict=True)

    def __repr__(self) -> str:
        return f"SampleWindow({list(self)!r}, maxlen={self.maxlen})"
