"""Sensor health in the store: the latest state per sensor, and a log of state changes.

Health reports arrive often (every few seconds per source); only state changes become history
rows and live events, so a healthy week costs a handful of rows.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from scanner.observations import SensorStatus
from scanner.store.db import Store


def record_status(store: Store, status: SensorStatus, last_obs_ts: float | None = None) -> bool:
    """Store a health report; returns True when the state changed (and an event was sent)."""
    with store.write() as conn:
        return record_status_in(store, conn, status, last_obs_ts)


def record_status_in(
    store: Store, conn: sqlite3.Connection, status: SensorStatus, last_obs_ts: float | None = None
) -> bool:
    """``record_status`` inside the caller's transaction."""
    row = conn.execute(
        "SELECT state, message, last_obs_ts FROM sensor_health WHERE sensor = ?",
        (status.sensor,),
    ).fetchone()
    if last_obs_ts is None and row is not None:
        last_obs_ts = row["last_obs_ts"]
    conn.execute(
        "INSERT INTO sensor_health (sensor, radio, state, message, updated_ts, last_obs_ts, "
        "counters, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(sensor) DO UPDATE SET radio = excluded.radio, state = excluded.state, "
        "message = excluded.message, updated_ts = excluded.updated_ts, "
        "last_obs_ts = excluded.last_obs_ts, counters = excluded.counters, "
        "detail = excluded.detail",
        (
            status.sensor,
            str(status.radio),
            status.state,
            status.message,
            status.ts,
            last_obs_ts,
            json.dumps(status.counters, sort_keys=True),
            json.dumps(status.detail, sort_keys=True, default=str),
        ),
    )
    changed = row is None or row["state"] != status.state or row["message"] != status.message
    if changed:
        conn.execute(
            "INSERT INTO health_log (ts, sensor, state, message) VALUES (?, ?, ?, ?)",
            (status.ts, status.sensor, status.state, status.message),
        )
        store.add_event(conn, status.ts, "health", sensor_dict_from_status(status, last_obs_ts))
    return changed


def note_observation(store: Store, sensor: str, ts: float) -> None:
    """Record the time of a sensor's latest observation (called at most once a second)."""
    with store.write() as conn:
        note_observation_in(conn, sensor, ts)


def note_observation_in(conn: sqlite3.Connection, sensor: str, ts: float) -> None:
    """``note_observation`` inside the caller's transaction."""
    conn.execute("UPDATE sensor_health SET last_obs_ts = ? WHERE sensor = ?", (ts, sensor))


def sensor_dict_from_status(status: SensorStatus, last_obs_ts: float | None) -> dict[str, Any]:
    return {
        "sensor": status.sensor,
        "radio": str(status.radio),
        "state": status.state,
        "message": status.message,
        "updated_ts": status.ts,
        "last_obs_ts": last_obs_ts,
        "counters": status.counters,
        "detail": status.detail,
    }


def list_sensors(store: Store) -> list[dict[str, Any]]:
    """Latest health of every sensor that has ever reported."""
    rows = store.query("SELECT * FROM sensor_health ORDER BY sensor")
    return [
        {
            "sensor": r["sensor"],
            "radio": r["radio"],
            "state": r["state"],
            "message": r["message"],
            "updated_ts": r["updated_ts"],
            "last_obs_ts": r["last_obs_ts"],
            "counters": json.loads(r["counters"]),
            "detail": json.loads(r["detail"]),
        }
        for r in rows
    ]
