"""The allowlist in the store: authorised devices the core must never alert on.

Entries match by Wi-Fi MAC, Wi-Fi IE fingerprint, or BLE identity (an address or a linked BLE
device key). The API edits them; the core re-reads them when the ``allowlist_version`` setting
changes, which every edit bumps in the same transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from scanner.store.chain import append_audit
from scanner.store.db import Store

MATCH_KINDS = ("mac", "fingerprint", "ble_identity")


@dataclass(frozen=True, slots=True)
class AllowlistEntry:
    match: str
    value: str
    label: str
    added_by: str = "config"
    added_ts: float = 0.0
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalise(match: str, value: str) -> str:
    """MACs and addresses compare case-insensitively; fingerprints are lower-case hex."""
    return value.strip().lower()


def list_entries(store: Store) -> list[AllowlistEntry]:
    rows = store.query("SELECT * FROM allowlist ORDER BY id")
    return [
        AllowlistEntry(
            id=r["id"],
            match=r["match"],
            value=r["value"],
            label=r["label"],
            added_by=r["added_by"],
            added_ts=r["added_ts"],
        )
        for r in rows
    ]


def allowlist_version(store: Store) -> int:
    return int(store.get_setting("allowlist_version", 0))


def replace_entries(store: Store, entries: list[AllowlistEntry], actor: str, ts: float) -> int:
    """Replace the whole list (PUT semantics); audited; returns the new version."""
    with store.write(durable=True) as conn:
        conn.execute("DELETE FROM allowlist")
        for e in entries:
            conn.execute(
                "INSERT OR REPLACE INTO allowlist (match, value, label, added_by, added_ts) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    e.match,
                    normalise(e.match, e.value),
                    e.label,
                    e.added_by or actor,
                    e.added_ts or ts,
                ),
            )
        version = int(store.get_setting("allowlist_version", 0)) + 1
        store.set_setting(conn, "allowlist_version", version)
        append_audit(
            conn,
            ts,
            actor,
            "allowlist.replace",
            {
                "entries": [
                    {"match": e.match, "value": normalise(e.match, e.value), "label": e.label}
                    for e in entries
                ]
            },
        )
        store.add_event(conn, ts, "allowlist", {"version": version, "count": len(entries)})
        return version
