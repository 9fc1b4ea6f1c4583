"""Sightings: observations aggregated per device, radio, sensor and minute.

A busy entrance produces thousands of frames a minute; what an after-action review needs is one
row per device, radio and minute with the count and RSSI range. The core hands out each finished
minute as a ``SightingMinute`` event; the store sink writes it. A flood of addresses has its
oldest buckets handed out early (``MAX_BUCKETS``), so memory stays bounded within a minute too.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

from scanner.core.events import SightingMinute

# Open buckets at most. A bucket is one address heard on one sensor in one minute (~400 bytes
# with its key). A crowd of a few hundred people at an entrance, each phone showing a Wi-Fi and
# a BLE address or two a minute, opens under a thousand a minute; past this bound is a flood
# of randomised addresses (thousands a second from a tool or a broken sensor), and without it a
# minute of that would hold every address until the minute ends, then hand them all out at once.
MAX_BUCKETS = 4096
# Handed out at once when the bound is reached: the oldest quarter, so a flood spills in
# batches rather than one bucket per new address.
SPILL_BUCKETS = 1024


@dataclass(slots=True)
class _Bucket:
    first_ts: float
    last_ts: float
    count: int = 0
    rssi_min: float | None = None
    rssi_max: float | None = None
    rssi_sum: float = 0.0
    rssi_n: int = 0


class SightingAggregator:
    """Collects observations into minute buckets; ``take`` hands out the finished ones."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str, str, int], _Bucket] = {}
        # Buckets handed out before their minute ended (the bound above), oldest first.
        self._spilled: list[SightingMinute] = []

    def add(
        self,
        device_id: str,
        radio: str,
        sensor: str,
        identifier: str,
        ts: float,
        rssi: float | None,
    ) -> None:
        key = (device_id, radio, sensor, identifier, int(ts // 60))
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._spill()
            b = self._buckets[key] = _Bucket(ts, ts)
        b.last_ts = max(b.last_ts, ts)
        b.count += 1
        if rssi is not None:
            # Compared as ``min`` and ``max`` compare (the earlier value kept on a tie),
            # without their calls and the None checks twice: this runs on every record.
            low, high = b.rssi_min, b.rssi_max
            if low is None or rssi < low:
                b.rssi_min = rssi
            if high is None or rssi > high:
                b.rssi_max = rssi
            b.rssi_sum += rssi
            b.rssi_n += 1

    def __len__(self) -> int:
        return len(self._buckets)

    @property
    def spilled(self) -> int:
        """Rows handed out early by the bound and not yet taken."""
        return len(self._spilled)

    def _spill(self) -> None:
        """Hand out the oldest open buckets now. Each becomes a row as at the end of its minute;
        an address heard again in that minute opens a second row, so a flooded minute can come
        as more than one row per address, each with its own count and RSSI range."""
        oldest = list(islice(self._buckets, SPILL_BUCKETS))
        self._spilled.extend(self._row(k, self._buckets.pop(k)) for k in oldest)

    def take_spilled(self) -> list[SightingMinute]:
        """The rows the bound handed out early, oldest first."""
        out, self._spilled = self._spilled, []
        return out

    def take(self, before_ts: float | None = None) -> list[SightingMinute]:
        """Remove and return the buckets of minutes that ended before ``before_ts`` (all: None),
        after any the bound handed out early."""
        done = [k for k in self._buckets if before_ts is None or (k[4] + 1) * 60 <= before_ts]
        out = self.take_spilled()
        out.extend(self._row(k, self._buckets.pop(k)) for k in done)
        return out

    @staticmethod
    def _row(key: tuple[str, str, str, str, int], b: _Bucket) -> SightingMinute:
        return SightingMinute(
            device_id=key[0],
            radio=key[1],
            sensor=key[2],
            identifier=key[3],
            first_ts=b.first_ts,
            last_ts=b.last_ts,
            count=b.count,
            rssi_min=b.rssi_min,
            rssi_max=b.rssi_max,
            rssi_mean=round(b.rssi_sum / b.rssi_n, 1) if b.rssi_n else None,
        )
