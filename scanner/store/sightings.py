"""Sightings: observations aggregated per device, radio and minute before they are stored.

A busy entrance produces thousands of frames a minute; the store keeps one row per device,
radio and minute with the count and RSSI range, which is what an after-action review needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.store.db import Store


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
    """Collects observations into minute buckets; ``flush`` writes the finished ones."""

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
            b.rssi_min = rssi if b.rssi_min is None else min(b.rssi_min, rssi)
            b.rssi_max = rssi if b.rssi_max is None else max(b.rssi_max, rssi)
            b.rssi_sum += rssi
            b.rssi_n += 1

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, before_ts: float | None = None) -> list[dict[str, Any]]:
        """Remove and return the buckets of minutes that ended before ``before_ts`` (all: None)."""
        done = [k for k in self._buckets if before_ts is None or (k[4] + 1) * 60 <= before_ts]
        out: list[dict[str, Any]] = []
        for k in done:
            b = self._buckets.pop(k)
            out.append(
                {
                    "device_id": k[0],
                    "radio": k[1],
                    "sensor": k[2],
                    "identifier": k[3],
                    "first_ts": b.first_ts,
                    "last_ts": b.last_ts,
                    "count": b.count,
                    "rssi_min": b.rssi_min,
                    "rssi_max": b.rssi_max,
                    "rssi_mean": round(b.rssi_sum / b.rssi_n, 1) if b.rssi_n else None,
                }
            )
        return out

    def flush(self, store: Store, before_ts: float | None = None) -> int:
        """Write finished minutes to the store; returns the rows written."""
        rows = self.take(before_ts)
        return write_sightings(store, rows)


def write_sightings(store: Store, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO sightings (device_id, radio, sensor, first_ts, last_ts, count, "
            "rssi_min, rssi_max, rssi_mean, identifier) VALUES (:device_id, :radio, :sensor, "
            ":first_ts, :last_ts, :count, :rssi_min, :rssi_max, :rssi_mean, :identifier)",
            rows,
        )
    return len(rows)


def list_sightings(store: Store, since: float, until: float) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT * FROM sightings WHERE first_ts >= ? AND first_ts < ? ORDER BY first_ts",
        (since, until),
    )
    return [dict(r) for r in rows]
