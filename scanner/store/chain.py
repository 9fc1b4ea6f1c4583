"""Hash chains over alert history and the audit log, so an export can prove nothing was removed.

Each row's hash is ``sha256(prev_hash + canonical_json(row fields))``. The first row chains from
``GENESIS``. Deleting, altering or reordering a row breaks every hash after it.

A plain hash proves order but not origin: whoever can write the database can re-link the whole
chain. So the alert history is keyed: each link is ``HMAC-SHA256(chain_key, prev_hash +
canonical row)`` under a key derived from the site's sealing key (HKDF with its own label, so the
chain key is never the key that seals bundles). Only a process handed the sealing key (the core,
the API, a replay) can make a link that verifies. Links made before the key existed stay plain
SHA-256; ``verify`` names them as such and accepts them only before the first keyed link.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from typing import Any

GENESIS = "0" * 64
# HKDF's "info": the purpose this key derived from the sealing key serves, and nothing else.
CHAIN_KEY_LABEL = b"checkpoint alert-history chain v1"


def canonical(fields: dict[str, Any]) -> str:
    """The exact text that is hashed: sorted keys, no spaces, floats as Python prints them."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def derive_chain_key(seal_key: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) of the sealing key with the chain's label: one 32-byte block."""
    prk = hmac.new(b"\0" * hashlib.sha256().digest_size, seal_key, hashlib.sha256).digest()
    return hmac.new(prk, CHAIN_KEY_LABEL + b"\x01", hashlib.sha256).digest()


def link(prev_hash: str, fields: dict[str, Any], key: bytes | None = None) -> str:
    """The hash of one row: keyed (HMAC-SHA256) when ``key`` is given, plain SHA-256 else."""
    message = (prev_hash + canonical(fields)).encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


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
    key: bytes | None,
) -> str:
    """Append one alert transition inside the caller's transaction; returns its hash.

    ``key`` is the chain key (``Store.chain_key``); without it the link is plain SHA-256, which
    ``verify`` refuses after the chain's first keyed link."""
    prev = _head(conn, "alert_history")
    detail_text = canonical(detail)
    fields = {"alert_id": alert_id, "ts": ts, "event": event, "actor": actor, "detail": detail_text}
    digest = link(prev, fields, key)
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


def verify_rows(
    rows: list[dict[str, Any]], keys: tuple[str, ...], chain_key: bytes | None = None
) -> list[str]:
    """Check a chain given as row dicts in order; returns problems found (empty when intact).

    With ``chain_key`` every link must be keyed except plain ones before the first keyed link
    (made before the chain had a key); without it every link must be plain."""
    problems: list[str] = []
    prev = GENESIS
    keyed_seen = False
    for index, row in enumerate(rows):
        fields = {k: row[k] for k in keys}
        if row["prev_hash"] != prev:
            problems.append(
                f"row {index} (seq {row.get('seq')}): previous hash does not match; "
                "a record before it was removed, altered or reordered"
            )
        if chain_key is not None and hmac.compare_digest(
            link(row["prev_hash"], fields, chain_key), str(row["hash"])
        ):
            keyed_seen = True
        elif link(row["prev_hash"], fields) != row["hash"]:
            problems.append(f"row {index} (seq {row.get('seq')}): content altered")
        elif keyed_seen:
            problems.append(
                f"row {index} (seq {row.get('seq')}): plain SHA-256 link after a keyed one"
            )
        prev = row["hash"]
    return problems


ALERT_HISTORY_KEYS = ("alert_id", "ts", "event", "actor", "detail")
AUDIT_KEYS = ("ts", "actor", "action", "detail")
