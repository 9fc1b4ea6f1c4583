"""Hash chains over alert history and the audit log, so an export can prove nothing was removed.

Each row's hash is ``sha256(prev_hash + canonical_json(row fields))``. The first row chains from
``GENESIS``. Deleting, altering or reordering a row breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

GENESIS = "0" * 64


def canonical(fields: dict[str, Any]) -> str:
    """The exact text that is hashed: sorted keys, no spaces, floats as Python prints them."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def link(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(fields)).encode()).hexdigest()


def _head(conn: sqlite3.Connection, table: str) -> str:
    row = conn.execute(f"SELECT hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()  # noqa: S608 - table is one of our fixed names
    return str(row[0]) if row else GENESIS


def append_alert_history(
    conn: sqlite3.Connection,
    alert_id: str,
    ts: float,
    event: str,
    actor: str,
    detail: dict[str, Any],
) -> str:
    """Append one alert transition inside the caller's transaction; returns its hash."""
    prev = _head(conn, "alert_history")
    detail_text = canonical(detail)
    fields = {"alert_id": alert_id, "ts": ts, "event": event, "actor": actor, "detail": detail_text}
    digest = link(prev, fields)
    conn.execute(
        "INSERT INTO alert_history (alert_id, ts, event, actor, detail, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (alert_id, ts, event, actor, detail_text, prev, digest),
    )
    return digest


def append_audit(
    conn: sqlite3.Connection,
    ts: float,
    actor: str,
    action: str,
    detail: dict[str, Any],
) -> str:
    """Append one audit record inside the caller's transaction; returns its hash."""
    prev = _head(conn, "audit")
    detail_text = canonical(detail)
    fields = {"ts": ts, "actor": actor, "action": action, "detail": detail_text}
    digest = link(prev, fields)
    conn.execute(
        "INSERT INTO audit (ts, actor, action, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
        (ts, actor, action, detail_text, prev, digest),
    )
    return digest


def verify_rows(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[str]:
    """Check a chain given as row dicts in order; returns problems found (empty when intact)."""
    problems: list[str] = []
    prev = GENESIS
    for index, row in enumerate(rows):
        fields = {k: row[k] for k in keys}
        if row["prev_hash"] != prev:
            problems.append(
                f"row {index} (seq {row.get('seq')}): previous hash does not match; "
                "a record before it was removed, altered or reordered"
            )
        expected = link(row["prev_hash"], fields)
        if expected != row["hash"]:
            problems.append(f"row {index} (seq {row.get('seq')}): content altered")
        prev = row["hash"]
    return problems


ALERT_HISTORY_KEYS = ("alert_id", "ts", "event", "actor", "detail")
AUDIT_KEYS = ("ts", "actor", "action", "detail")
