"""Login sessions and API tokens: random secrets handed out once, stored only as hashes.

A stolen copy of the database therefore holds no usable session or token. Both resolve to a
user; a disabled or removed user's sessions and tokens stop working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from scanner.store.chain import append_audit
from scanner.store.db import Store
from scanner.store.users import User, get_user_in

# Tokens carry this prefix so a leaked one is recognisable in logs and secret scanners.
TOKEN_PREFIX = "cpk_"  # noqa: S105 - a label, not a secret


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token's public description (never the token itself)."""

    id: str  # the first characters of its hash: enough to name it, useless to use it
    username: str
    label: str
    created_ts: float


def token_hash(token: str) -> str:
    # A plain hash is enough: the secret has 256 random bits, so there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(store: Store, username: str, ts: float, ttl_s: float) -> str:
    """Start a session; returns the secret that goes into the cookie."""
    token = secrets.token_urlsafe(32)
    with store.write() as conn:
        # Expired sessions are swept here rather than by a timer: logins are rare enough.
        conn.execute("DELETE FROM sessions WHERE expires_ts <= ?", (ts,))
        conn.execute(
            "INSERT INTO sessions (token_hash, username, created_ts, expires_ts) "
            "VALUES (?, ?, ?, ?)",
            (token_hash(token), username, ts, ts + ttl_s),
        )
    return token


def session_user(store: Store, token: str, ts: float) -> User | None:
    """The enabled user behind a live session secret, or None."""
    with store.lock:
        row = store.conn.execute(
            "SELECT username FROM sessions WHERE token_hash = ? AND expires_ts > ?",
            (token_hash(token), ts),
        ).fetchone()
        if row is None:
            return None
        return _enabled(store, row["username"])


def end_session(store: Store, token: str, ts: float, actor: str) -> bool:
    with store.write() as conn:
        cur = conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash(token),))
        if cur.rowcount:
            append_audit(conn, ts, actor, "logout", {})
        return bool(cur.rowcount)


def create_token(store: Store, username: str, label: str, ts: float, actor: str) -> str:
    """A new API token for ``username``; the secret is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = token_hash(token)
    with store.write(durable=True) as conn:
        get_user_in(conn, username)
        conn.execute(
            "INSERT INTO api_tokens (token_hash, username, label, created_ts) VALUES (?, ?, ?, ?)",
            (digest, username, label, ts),
        )
        append_audit(
            conn,
            ts,
            actor,
            "token.create",
            {"username": username, "label": label, "id": digest[:12]},
        )
    return token


def token_user(store: Store, token: str) -> User | None:
    with store.lock:
        row = store.conn.execute(
            "SELECT username FROM api_tokens WHERE token_hash = ?", (token_hash(token),)
        ).fetchone()
        if row is None:
            return None
        return _enabled(store, row["username"])


def list_tokens(store: Store, username: str | None = None) -> list[TokenInfo]:
    if username is None:
        rows = store.query("SELECT * FROM api_tokens ORDER BY created_ts")
    else:
        rows = store.query(
            "SELECT * FROM api_tokens WHERE username = ? ORDER BY created_ts", (username,)
        )
    return [
        TokenInfo(
            id=r["token_hash"][:12],
            username=r["username"],
            label=r["label"],
            created_ts=r["created_ts"],
        )
        for r in rows
    ]


def revoke_token(store: Store, token_id: str, ts: float, actor: str) -> bool:
    """Delete the token whose hash starts with ``token_id`` (12 hex characters)."""
    if len(token_id) != 12 or any(c not in "0123456789abcdef" for c in token_id):
        return False
    with store.write(durable=True) as conn:
        cur = conn.execute(
            "DELETE FROM api_tokens WHERE substr(token_hash, 1, 12) = ?", (token_id,)
        )
        if cur.rowcount:
            append_audit(conn, ts, actor, "token.revoke", {"id": token_id})
        return bool(cur.rowcount)


def _enabled(store: Store, username: str) -> User | None:
    row = store.conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if row is None or row["disabled"]:
        return None
    return get_user_in(store.conn, username)


def session_expiry(store: Store, token: str) -> float | None:
    """When the session of this token expires, or None when there is no such session."""
    rows = store.query("SELECT expires_ts FROM sessions WHERE token_hash = ?", (token_hash(token),))
    return float(rows[0]["expires_ts"]) if rows else None
