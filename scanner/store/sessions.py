"""Login sessions and API tokens: random secrets handed out once, stored only as hashes.

A stolen copy of the database therefore holds no usable session or token. Both resolve to a
user; a disabled or removed user's sessions and tokens stop working at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from dataclasses import dataclass

from scanner.store.chain import append_audit
from scanner.store.db import Store
from scanner.store.users import ROLE_RANK, User, delete_tokens, get_user_in

# Tokens carry this prefix so a leaked one is recognisable in logs and secret scanners.
TOKEN_PREFIX = "cpk_"  # noqa: S105 - a label, not a secret


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token's public description (never the token itself)."""

    id: str  # the first characters of its hash: enough to name it, useless to use it
    username: str
    label: str
    created_ts: float
    expires_ts: float
    role: str  # the most it may do: its owner's role or lower
    can_mint: bool  # may create tokens (only ever true for an admin's admin-scoped token)
    parent_id: str | None  # the token that minted it, if one did


class TokenError(ValueError):
    """A token cannot be made with these properties; the message says why."""


# A token for a script: a quarter, then it is renewed; none lives longer than a year, so a
# token copied into a forgotten script stops working by itself.
DEFAULT_TOKEN_TTL_S = 90 * 86_400.0
MAX_TOKEN_TTL_S = 365 * 86_400.0


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """The user behind a valid token, with the token's own scope applied."""

    user: User  # ``role`` is the token's scope, never above the owner's current role
    token_hash: str
    can_mint: bool
    expires_ts: float


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


def create_token(
    store: Store,
    username: str,
    label: str,
    ts: float,
    actor: str,
    *,
    ttl_s: float = DEFAULT_TOKEN_TTL_S,
    role: str | None = None,
    can_mint: bool = False,
    parent: TokenGrant | None = None,
) -> str:
    """A new API token for ``username``; the secret is returned once and never stored.

    ``role`` narrows what the token may do (default: its owner's role). ``can_mint`` lets it
    create tokens, which only an admin's token scoped to admin may. ``parent`` is the token
    that is minting this one: the child can do no more and live no longer than its parent, and
    goes when the parent is revoked.
    """
    if not 0 < ttl_s <= MAX_TOKEN_TTL_S:
        raise TokenError(f"a token lives between 1 second and {MAX_TOKEN_TTL_S / 86400:.0f} days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = token_hash(token)
    expires = ts + ttl_s
    with store.write(durable=True) as conn:
        owner = get_user_in(conn, username)
        scope = role or owner.role
        if scope not in ROLE_RANK or ROLE_RANK[scope] > ROLE_RANK[owner.role]:
            raise TokenError(f"a token for {username} can have the {owner.role} role at most")
        if can_mint and scope != "admin":
            raise TokenError("only a token with the admin role may mint tokens")
        if parent is not None:
            if not parent.can_mint:
                raise TokenError("this token may not mint tokens")
            if ROLE_RANK[scope] > ROLE_RANK[parent.user.role]:
                raise TokenError("a token cannot make a token with more rights than its own")
            expires = min(expires, parent.expires_ts)
        conn.execute(
            "INSERT INTO api_tokens (token_hash, username, label, created_ts, expires_ts, role, "
            "can_mint, parent_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                digest,
                username,
                label,
                ts,
                expires,
                scope,
                int(can_mint),
                parent.token_hash if parent else None,
            ),
        )
        append_audit(
            conn,
            ts,
            actor,
            "token.create",
            {
                "username": username,
                "label": label,
                "id": digest[:12],
                "role": scope,
                "can_mint": can_mint,
                "expires_ts": expires,
                "parent": parent.token_hash[:12] if parent else None,
            },
        )
    return token


def token_grant(store: Store, token: str, ts: float | None = None) -> TokenGrant | None:
    """The enabled user behind a live token, with the token's scope; None if not valid."""
    now = time.time() if ts is None else ts
    digest = token_hash(token)
    with store.lock:
        row = store.conn.execute(
            "SELECT * FROM api_tokens WHERE token_hash = ?", (digest,)
        ).fetchone()
        if row is None or row["expires_ts"] is None or float(row["expires_ts"]) <= now:
            return None
        user = _enabled(store, row["username"])
        if user is None:
            return None
    scope = row["role"] or user.role
    if ROLE_RANK.get(scope, -1) > ROLE_RANK[user.role]:
        scope = user.role  # the owner was demoted since: the token follows
    return TokenGrant(
        user=dataclasses.replace(user, role=scope),
        token_hash=digest,
        can_mint=bool(row["can_mint"]) and scope == "admin",
        expires_ts=float(row["expires_ts"]),
    )


def token_user(store: Store, token: str, ts: float | None = None) -> User | None:
    grant = token_grant(store, token, ts)
    return grant.user if grant is not None else None


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
            expires_ts=float(r["expires_ts"]),
            role=r["role"] or "guard",
            can_mint=bool(r["can_mint"]),
            parent_id=r["parent_hash"][:12] if r["parent_hash"] else None,
        )
        for r in rows
    ]


def revoke_token(store: Store, token_id: str, ts: float, actor: str) -> bool:
    """Delete the token whose hash starts with ``token_id`` and every token minted from it."""
    if len(token_id) != 12 or any(c not in "0123456789abcdef" for c in token_id):
        return False
    with store.write(durable=True) as conn:
        gone = delete_tokens(conn, "substr(token_hash, 1, 12) = ?", (token_id,))
        if gone:
            append_audit(conn, ts, actor, "token.revoke", {"id": token_id, "revoked": gone})
        return bool(gone)


def _enabled(store: Store, username: str) -> User | None:
    row = store.conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if row is None or row["disabled"]:
        return None
    return get_user_in(store.conn, username)


def session_expiry(store: Store, token: str) -> float | None:
    """When the session of this token expires, or None when there is no such session."""
    rows = store.query("SELECT expires_ts FROM sessions WHERE token_hash = ?", (token_hash(token),))
    return float(rows[0]["expires_ts"]) if rows else None
