"""Devices in the store: what the core knows about each transmitter, for the API and exports.

``identifiers`` is JSON ``{"macs": [...], "fingerprints": [...], "ble": [...]}`` so the API can
turn an alert's device into allowlist entries.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from scanner.store.db import Store
from scanner.store.where import where_clause

# ``json.dumps(..., sort_keys=True)`` as one encoder made once: ``dumps`` with any argument makes
# a new encoder each call, and the core writes every device it heard at each devices' flush.
_SORTED_JSON = json.JSONEncoder(sort_keys=True)


def upsert_devices(store: Store, devices: Iterable[dict[str, Any]]) -> int:
    """Insert or update devices (``Device.to_dict()`` shape) in one transaction."""
    rows = [_device_row(d) for d in devices]
    if not rows:
        return 0
    with store.write() as conn:
        _upsert(conn, rows)
    return len(rows)


def upsert_devices_in(conn: sqlite3.Connection, devices: Iterable[dict[str, Any]]) -> int:
    """``upsert_devices`` inside the caller's transaction."""
    rows = [_device_row(d) for d in devices]
    if rows:
        _upsert(conn, rows)
    return len(rows)


def _upsert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO devices (id, kind, vendor, first_seen, last_seen, radios, identifiers, "
        "evidence, last_rssi, in_zone, ambient) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, vendor = excluded.vendor, "
        "last_seen = excluded.last_seen, radios = excluded.radios, "
        "identifiers = excluded.identifiers, evidence = excluded.evidence, "
        "last_rssi = excluded.last_rssi, in_zone = excluded.in_zone, "
        "ambient = excluded.ambient",
        rows,
    )


def get_device(store: Store, device_id: str) -> dict[str, Any] | None:
    rows = store.query("SELECT * FROM devices WHERE id = ?", (device_id,))
    return _row(rows[0]) if rows else None


def find_devices(
    store: Store,
    *,
    in_zone: bool | None = None,
    since: float | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Devices most recently seen first, filtered by zone state and last-seen time."""
    where, params = where_clause(
        ("in_zone = ?", None if in_zone is None else int(in_zone)), ("last_seen >= ?", since)
    )
    rows = store.query(
        # Only the fixed clauses of where_clause are formatted in; every value is a parameter.
        f"SELECT * FROM devices {where} ORDER BY last_seen DESC, id LIMIT ? OFFSET ?",  # noqa: S608 - where_clause: fixed clauses
        (*params, limit, offset),
    )
    return [_row(r) for r in rows]


def list_devices(
    store: Store, since: float | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Devices heard since ``since`` (all when None), most recent first."""
    rows = store.query(
        "SELECT * FROM devices WHERE last_seen >= ? ORDER BY last_seen DESC LIMIT ?",
        (since if since is not None else float("-inf"), limit),
    )
    return [_row(r) for r in rows]


def _json(raw: Any, default: Any) -> Any:
    """A JSON column, or ``default`` when it does not parse to the expected type (a row
    written by an older or damaged program must not break the listing)."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return default
    return value if isinstance(value, type(default)) else default


def _row(r: Any) -> dict[str, Any]:
    return {
        "id": r["id"],
        "kind": r["kind"],
        "vendor": r["vendor"],
        "first_seen": r["first_seen"],
        "last_seen": r["last_seen"],
        "radios": _json(r["radios"], []),
        "identifiers": _json(r["identifiers"], {}),
        "evidence": _json(r["evidence"], []),
        "last_rssi": r["last_rssi"],
        "in_zone": bool(r["in_zone"]),
        "ambient": bool(r["ambient"]),
    }


def _device_row(d: dict[str, Any]) -> tuple[Any, ...]:
    return (
        d["id"],
        d["kind"],
        d.get("vendor"),
        d["first_seen"],
        d["last_seen"],
        json.dumps(sorted(d.get("radios") or [d.get("radio", "")])),
        _SORTED_JSON.encode(d.get("identifiers", {})),
        json.dumps(d.get("evidence", [])),
        d.get("last_rssi"),
        int(bool(d.get("in_zone"))),
        int(bool(d.get("ambient"))),
    )
