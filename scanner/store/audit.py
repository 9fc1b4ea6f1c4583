"""Reading the audit log (who did what); rows are written by ``chain.append_audit``."""

from __future__ import annotations

import json
from typing import Any

from scanner.store.chain import append_audit
from scanner.store.db import Store


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
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since)
    if until is not None:
        clauses.append("ts < ?")
        params.append(until)
    if actor is not None:
        clauses.append("actor = ?")
        params.append(actor)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store.query(
        f"SELECT * FROM audit {where} ORDER BY seq DESC LIMIT ? OFFSET ?",  # noqa: S608
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
