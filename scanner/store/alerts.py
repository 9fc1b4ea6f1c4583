"""Alerts in the store: every transition is one durable transaction that also appends the
hash-chained history row and the live event the tablet receives.

The core raises, updates and resolves; a person (through the API) acknowledges. Each function
takes the ``Store`` and does its own transaction, so callers cannot forget the history or event.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from scanner.store.chain import append_alert_history
from scanner.store.db import Store
from scanner.store.where import where_clause


class AlertNotFoundError(LookupError):
    """No alert has this id."""


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as stored and as the API shows it."""

    id: str
    kind: str  # 'handset' | 'unidentified_transmitter'
    state: str  # 'open' | 'resolved'
    title: str
    raised_ts: float
    updated_ts: float
    confidence: float
    handsets: int
    sensors: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    device_ids: list[str] = field(default_factory=list)
    resolved_ts: float | None = None
    # Why it closed (the first migration's column comment predates the last two):
    # 'left_zone'    its handsets left, or an adopted alert's were not heard again;
    # 'identified'   an uplink-only alert, once a phone is identified on Wi-Fi or Bluetooth;
    # 'cleared'      an uplink alert an earlier run left open beside a newer one (or any alert
    #                closed by ``Alerting.resolve_all``);
    # 'allowlisted'  every handset it named was allowlisted;
    # 'sensor_lost'  held while the sensor that heard it could not hear, past the hold.
    resolution: str | None = None
    acked_ts: float | None = None
    acked_by: str | None = None
    ack_note: str | None = None
    duration_s: float = 0.0

    @property
    def acknowledged(self) -> bool:
        return self.acked_ts is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["acknowledged"] = self.acknowledged
        return data


def _row_to_alert(row: sqlite3.Row) -> AlertRecord:
    return AlertRecord(
        id=row["id"],
        kind=row["kind"],
        state=row["state"],
        title=row["title"],
        raised_ts=row["raised_ts"],
        updated_ts=row["updated_ts"],
        confidence=row["confidence"],
        handsets=row["handsets"],
        sensors=json.loads(row["sensors"]),
        reasons=json.loads(row["reasons"]),
        device_ids=json.loads(row["device_ids"]),
        resolved_ts=row["resolved_ts"],
        resolution=row["resolution"],
        acked_ts=row["acked_ts"],
        acked_by=row["acked_by"],
        ack_note=row["ack_note"],
        duration_s=row["duration_s"],
    )


def _get(conn: sqlite3.Connection, alert_id: str) -> AlertRecord:
    row = conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFoundError(alert_id)
    return _row_to_alert(row)


def _publish(
    store: Store, conn: sqlite3.Connection, ts: float, event: str, alert: AlertRecord
) -> int:
    return store.add_event(conn, ts, "alert", {"event": event, "alert": alert.to_dict()})


def raise_alert(store: Store, alert: AlertRecord) -> int:
    """Store a new open alert; returns the live event id."""
    with store.write(durable=True) as conn:
        return insert_alert(store, conn, alert)


def insert_alert(store: Store, conn: sqlite3.Connection, alert: AlertRecord) -> int:
    """``raise_alert`` inside the caller's transaction."""
    conn.execute(
        "INSERT INTO alerts (id, kind, state, title, raised_ts, updated_ts, confidence, "
        "handsets, sensors, reasons, device_ids, duration_s) "
        "VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            alert.id,
            alert.kind,
            alert.title,
            alert.raised_ts,
            alert.updated_ts,
            alert.confidence,
            alert.handsets,
            json.dumps(alert.sensors),
            json.dumps(alert.reasons),
            json.dumps(alert.device_ids),
            alert.duration_s,
        ),
    )
    append_alert_history(
        conn,
        alert.id,
        alert.raised_ts,
        "raised",
        "core",
        {
            "title": alert.title,
            "kind": alert.kind,
            "confidence": alert.confidence,
            "handsets": alert.handsets,
            "sensors": alert.sensors,
            "reasons": alert.reasons,
            "device_ids": alert.device_ids,
        },
        store.chain_key,
    )
    return _publish(store, conn, alert.raised_ts, "raised", _get(conn, alert.id))


def update_alert(
    store: Store,
    alert_id: str,
    ts: float,
    *,
    confidence: float,
    handsets: int,
    sensors: list[str],
    reasons: list[str],
    device_ids: list[str],
    duration_s: float,
    title: str | None = None,
) -> int:
    """Record new evidence on an open alert (more handsets, another radio); returns event id."""
    with store.write(durable=True) as conn:
        return update_alert_in(
            store,
            conn,
            alert_id,
            ts,
            confidence=confidence,
            handsets=handsets,
            sensors=sensors,
            reasons=reasons,
            device_ids=device_ids,
            duration_s=duration_s,
            title=title,
        )


def update_alert_in(
    store: Store,
    conn: sqlite3.Connection,
    alert_id: str,
    ts: float,
    *,
    confidence: float,
    handsets: int,
    sensors: list[str],
    reasons: list[str],
    device_ids: list[str],
    duration_s: float,
    title: str | None = None,
) -> int:
    """``update_alert`` inside the caller's transaction."""
    current = _get(conn, alert_id)
    conn.execute(
        "UPDATE alerts SET updated_ts = ?, confidence = ?, handsets = ?, sensors = ?, "
        "reasons = ?, device_ids = ?, duration_s = ?, title = ? WHERE id = ?",
        (
            ts,
            confidence,
            handsets,
            json.dumps(sensors),
            json.dumps(reasons),
            json.dumps(device_ids),
            duration_s,
            title or current.title,
            alert_id,
        ),
    )
    append_alert_history(
        conn,
        alert_id,
        ts,
        "updated",
        "core",
        {
            "title": title or current.title,
            "confidence": confidence,
            "handsets": handsets,
            "sensors": sensors,
            "reasons": reasons,
            "device_ids": device_ids,
        },
        store.chain_key,
    )
    return _publish(store, conn, ts, "updated", _get(conn, alert_id))


def touch_alert(store: Store, alert_id: str, ts: float, duration_s: float) -> None:
    """Note that an open alert is still current, without a history row (no new evidence)."""
    with store.write() as conn:
        touch_alert_in(conn, alert_id, ts, duration_s)


def touch_alert_in(conn: sqlite3.Connection, alert_id: str, ts: float, duration_s: float) -> None:
    """``touch_alert`` inside the caller's transaction."""
    conn.execute(
        "UPDATE alerts SET updated_ts = ?, duration_s = ? WHERE id = ?",
        (ts, duration_s, alert_id),
    )


def resolve_alert(
    store: Store,
    alert_id: str,
    ts: float,
    resolution: str,
    duration_s: float,
    actor: str = "core",
) -> int:
    """Close an alert (a resolution of ``AlertRecord.resolution``); returns the live event id."""
    with store.write(durable=True) as conn:
        return resolve_alert_in(store, conn, alert_id, ts, resolution, duration_s, actor)


def resolve_alert_in(
    store: Store,
    conn: sqlite3.Connection,
    alert_id: str,
    ts: float,
    resolution: str,
    duration_s: float,
    actor: str = "core",
) -> int:
    """``resolve_alert`` inside the caller's transaction."""
    current = _get(conn, alert_id)
    if current.state == "resolved":
        return 0
    conn.execute(
        "UPDATE alerts SET state = 'resolved', resolved_ts = ?, resolution = ?, "
        "updated_ts = ?, duration_s = ? WHERE id = ?",
        (ts, resolution, ts, duration_s, alert_id),
    )
    append_alert_history(
        conn,
        alert_id,
        ts,
        "resolved",
        actor,
        {"resolution": resolution, "duration_s": duration_s},
        store.chain_key,
    )
    return _publish(store, conn, ts, "resolved", _get(conn, alert_id))


def acknowledge_alert(
    store: Store, alert_id: str, ts: float, user: str, note: str = ""
) -> AlertRecord:
    """A guard acknowledges; a second acknowledgement keeps the first (who saw it first).

    A resolved alert no guard acknowledged is accepted too: the tablet keeps an unacknowledged
    alarm on screen after the phone left, until a guard acknowledges it.
    """
    with store.write(durable=True) as conn:
        return acknowledge_alert_in(store, conn, alert_id, ts, user, note)


def acknowledge_alert_in(
    store: Store, conn: sqlite3.Connection, alert_id: str, ts: float, user: str, note: str = ""
) -> AlertRecord:
    """``acknowledge_alert`` inside the caller's transaction."""
    current = _get(conn, alert_id)
    if current.acknowledged:
        return current
    conn.execute(
        "UPDATE alerts SET acked_ts = ?, acked_by = ?, ack_note = ? WHERE id = ?",
        (ts, user, note, alert_id),
    )
    append_alert_history(conn, alert_id, ts, "acknowledged", user, {"note": note}, store.chain_key)
    updated = _get(conn, alert_id)
    _publish(store, conn, ts, "acknowledged", updated)
    return updated


def get_alert(store: Store, alert_id: str) -> AlertRecord:
    with store.lock:
        return _get(store.conn, alert_id)


def list_alerts(
    store: Store,
    *,
    state: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    offset: int = 0,
    acknowledged: bool | None = None,
) -> list[AlertRecord]:
    """Alerts newest first, filtered by state, raise time and whether a guard acknowledged."""
    where, params = where_clause(
        ("state = ?", state),
        ("raised_ts >= ?", since),
        ("raised_ts < ?", until),
        ("(acked_ts IS NOT NULL) = ?", None if acknowledged is None else int(acknowledged)),
    )
    rows = store.query(
        f"SELECT * FROM alerts {where} ORDER BY raised_ts DESC, id LIMIT ? OFFSET ?",  # noqa: S608 - where_clause: fixed clauses
        (*params, limit, offset),
    )
    return [_row_to_alert(r) for r in rows]


def alerts_of_device(store: Store, device_id: str, limit: int = 100) -> list[AlertRecord]:
    """The alerts a device was behind, newest first."""
    rows = store.query(
        "SELECT alerts.* FROM alerts WHERE EXISTS (SELECT 1 FROM json_each(alerts.device_ids) "
        "WHERE json_each.value = ?) ORDER BY raised_ts DESC, id LIMIT ?",
        (device_id, limit),
    )
    return [_row_to_alert(r) for r in rows]


def alert_history(store: Store, alert_id: str) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT seq, ts, event, actor, detail FROM alert_history WHERE alert_id = ? ORDER BY seq",
        (alert_id,),
    )
    return [
        {
            "seq": r["seq"],
            "ts": r["ts"],
            "event": r["event"],
            "actor": r["actor"],
            "detail": json.loads(r["detail"]),
        }
        for r in rows
    ]
