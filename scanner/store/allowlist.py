"""The allowlist in the store: authorised devices the core must never alert on.

Entries name one device: a Wi-Fi MAC that does not rotate, a BLE public or random-static
address (or a linked BLE device key), or a BLE Identity Resolving Key. Entries by Wi-Fi IE
fingerprint from before that rule are kept flagged and inactive (``flag``) for the supervisor
to replace. The API edits them; the core re-reads them when the ``allowlist_version`` setting
changes, which every edit bumps in the same transaction. The entries of the site's
configuration, which the core applies too, are published by the core as the
``allowlist_config`` setting (read-only here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from scanner.core.allowlist import CONFIG_SETTING
from scanner.store.chain import append_audit
from scanner.store.db import Store

MATCH_KINDS = ("mac", "ble_identity", "ble_irk", "fingerprint")
FINGERPRINT_FLAG = "fingerprint-not-identity"


@dataclass(frozen=True, slots=True)
class AllowlistEntry:
    match: str
    value: str
    label: str
    added_by: str = "config"
    added_ts: float = 0.0
    id: int | None = None
    expires_ts: float | None = None
    fingerprint: str = ""  # what its phone probes with (accounting only, never a match)
    flag: str = ""  # why it is inactive ("fingerprint-not-identity"), "" when it is in force

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
            expires_ts=r["expires_ts"],
            fingerprint=r["fingerprint"],
            flag=r["flag"],
        )
        for r in rows
    ]


def config_entries(store: Store) -> list[dict[str, Any]]:
    """The entries of the site's configuration, as the core last published them."""
    value = store.get_setting(CONFIG_SETTING, [])
    return [dict(e) for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def core_entry(e: AllowlistEntry) -> dict[str, str]:
    """An entry as the core's ``AllowlistChanged`` input carries it."""
    out = {"match": e.match, "value": e.value, "label": e.label}
    if e.expires_ts is not None:
        out["expires_ts"] = repr(e.expires_ts)
    if e.fingerprint:
        out["fingerprint"] = e.fingerprint
    return out


def allowlist_version(store: Store) -> int:
    return int(store.get_setting("allowlist_version", 0))


def replace_entries(store: Store, entries: list[AllowlistEntry], actor: str, ts: float) -> int:
    """Replace the whole list (PUT semantics); audited; returns the new version."""
    with store.write(durable=True) as conn:
        conn.execute("DELETE FROM allowlist")
        for e in entries:
            conn.execute(
                # An entry that stays keeps its id (the page undoes an addition by id).
                "INSERT OR REPLACE INTO allowlist (id, match, value, label, added_by, added_ts, "
                "expires_ts, fingerprint, flag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    e.id,
                    e.match,
                    normalise(e.match, e.value),
                    e.label,
                    e.added_by or actor,
                    e.added_ts or ts,
                    e.expires_ts,
                    e.fingerprint.strip().lower(),
                    FINGERPRINT_FLAG if e.match == "fingerprint" else e.flag,
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
                    {
                        "match": e.match,
                        "value": normalise(e.match, e.value),
                        "label": e.label,
                        "expires_ts": e.expires_ts,
                    }
                    for e in entries
                ]
            },
        )
        store.add_event(conn, ts, "allowlist", {"version": version, "count": len(entries)})
        return version
