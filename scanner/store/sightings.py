"""Sightings in the store: one row per device, radio, sensor and minute (aggregated by the
core, ``scanner.core.sightings``), which is what an after-action review needs. Under a flood of
addresses the core hands some out before their minute ends, and an address heard again in that
minute has a second row: readers sum a minute's rows rather than expect one."""

from __future__ import annotations

import sqlite3
from typing import Any

from scanner.store.db import Store


def write_sightings(store: Store, rows: list[dict[str, Any]]) -> int:
    """Write sighting rows in one transaction of their own; returns how many."""
    if not rows:
        return 0
    with store.write() as conn:
        insert_sightings(conn, rows)
    return len(rows)


def insert_sightings(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Write sighting rows inside the caller's transaction."""
    conn.executemany(
        "INSERT INTO sightings (device_id, radio, sensor, first_ts, last_ts, count, "
        "rssi_min, rssi_max, rssi_mean, identifier) VALUES (:device_id, :radio, :sensor, "
        ":first_ts, :last_ts, :count, :rssi_min, :rssi_max, :rssi_mean, :identifier)",
        rows,
    )


def device_sightings(
    store: Store, device_id: str, since: float, until: float, limit: int = 2000
) -> list[dict[str, Any]]:
    """One device's sightings that overlap ``[since, until)``, oldest first: its timeline.
    At one row per radio, sensor and minute, a day of a phone that stayed is under 3000."""
    rows = store.query(
        "SELECT * FROM sightings WHERE device_id = ? AND last_ts >= ? AND first_ts < ? "
        "ORDER BY first_ts, id LIMIT ?",
        (device_id, since, until, limit),
    )
    return [dict(r) for r in rows]


def list_sightings(store: Store, since: float, until: float) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT * FROM sightings WHERE first_ts >= ? AND first_ts < ? ORDER BY first_ts",
        (since, until),
    )
    return [dict(r) for r in rows]
