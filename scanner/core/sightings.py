"""Sightings: observations aggregated per device, radio, sensor and minute.

A busy entrance produces thousands of frames a minute; what an after-action review needs is one
row per device, radio and minute with the count and RSSI range. The core hands out each finished
minute as a ``SightingMinute`` event; the store sink writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.core.events import SightingMinute


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

    def take(self, before_ts: float | None = None) -> list[SightingMinute]:
        """Remove and return the buckets of minutes that ended before ``before_ts`` (all: None)."""
        done = [k for k in self._buckets if before_ts is None or (k[4] + 1) * 60 <= before_ts]
        out: list[SightingMinute] = []
        for k in done:
            b = self._buckets.pop(k)
            out.append(
                SightingMinute(
                    device_id=k[0],
                    radio=k[1],
                    sensor=k[2],
                    identifier=k[3],
                    first_ts=b.first_ts,
                    last_ts=b.last_ts,
                    count=b.count,
                    rssi_min=b.rssi_min,
                    rssi_max=b.rssi_max,
                    rssi_mean=round(b.rssi_sum / b.rssi_n, 1) if b.rssi_n else None,
                )
            )
        return out
