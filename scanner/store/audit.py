"""Reading the audit log (who did what); rows are written by ``chain.append_audit``."""

from __future__ import annotations

import json
from typing import Any

from scanner.store.chain import append_audit
from scanner.store.db import Store
from scanner.store.where import where_clause


def record(store: Store, ts: float, actor: str, action: str, detail: dict[str, Any]) -> None:
    """Append one audit row in its own transaction."""
    with store.write() as conn:
        append_audit(conn, ts, actor, action, detail)


def list_audit(
    store: Store,
    *,
    since: float | None = None,
    until: float | None = None,
    actor: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Audit rows newest first, with their chain hashes so a reader can check them."""
    where, params = where_clause(("ts >= ?", since), ("ts < ?", until), ("actor = ?", actor))
    rows = store.query(
        f"SELECT * FROM audit {where} ORDER BY seq DESC LIMIT ? OFFSET ?",  # noqa: S608 - where_clause: fixed clauses
        (*params, limit, offset),
    )
    return [
        {
            "seq": r["seq"],
            "ts": r["ts"],
            "actor": r["actor"],
            "action": r["action"],
            "detail": json.loads(r["detail"]),
            "hash": r["hash"],
        }
        for r in rows
    ]
