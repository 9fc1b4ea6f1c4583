"""People who use the tablet and the API: accounts, roles, password and PIN checks, lockout.

Passwords and PINs are stored only as argon2 hashes. Repeated failures lock an account for a
while; the shared tablet's PIN login (no user name) has its own failure counter so guessing PINs
is throttled too. The API and the ``checkpoint user`` command both go through this module.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from scanner.store.chain import append_audit
from scanner.store.db import Store

_LOGGER = logging.getLogger(__name__)


class Role(StrEnum):
    """What a person may do; each role can do everything the roles before it can."""

    GUARD = "guard"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


ROLES = tuple(str(r) for r in Role)
ROLE_RANK: dict[str, int] = {str(role): rank for rank, role in enumerate(Role)}

# Failures before an account locks, and for how long: slow enough to make guessing a password
# or a 6-digit PIN hopeless, short enough that a guard who fumbles is back within minutes.
LOCKOUT_FAILURES = 5
LOCKOUT_S = 300.0
# The settings key holding the tablet PIN's own failure counter.
_PIN_LOCK_KEY = "tablet_pin_lock"

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
PIN_RE = re.compile(r"^[0-9]{4,12}$")
MIN_PASSWORD_LEN = 8

_HASHER = PasswordHasher()
# Verified against when a user name is unknown, so a failed login takes the same time either way.
_DUMMY_HASH = _HASHER.hash("not a real password")


class UserError(ValueError):
    """A user name, role, password or PIN is not acceptable; the message says why."""


class UserNotFoundError(LookupError):
    """No user has this name."""


@dataclass(frozen=True, slots=True)
class User:
    """One account, without its secrets."""

    username: str
    role: Role
    has_password: bool
    has_pin: bool
    disabled: bool
    failed: int
    locked_until: float
    created_ts: float

    def at_least(self, role: str) -> bool:
        """True when this user's role includes ``role``'s rights."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The outcome of a login attempt: ``user`` on success, else why it failed."""

    user: User | None
    reason: str = ""  # 'bad_credentials' | 'locked' | 'disabled'
    retry_after_s: float = 0.0


def hash_secret(secret: str) -> str:
    return str(_HASHER.hash(secret))


def _verify(hash_: str | None, secret: str) -> bool:
    try:
        return bool(_HASHER.verify(hash_ or _DUMMY_HASH, secret)) and hash_ is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _row_to_user(row: Any) -> User:
    return User(
        username=row["username"],
        role=Role(row["role"]),
        has_password=row["password_hash"] is not None,
        has_pin=row["pin_hash"] is not None,
        disabled=bool(row["disabled"]),
        failed=int(row["failed"]),
        locked_until=float(row["locked_until"]),
        created_ts=float(row["created_ts"]),
    )


def check_username(username: str) -> str:
    if not USERNAME_RE.match(username):
        raise UserError(
            "user name must be 1-32 characters: lower-case letters, digits, '_', '.', '-'"
        )
    return username


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LEN:
        raise UserError(f"password must be at least {MIN_PASSWORD_LEN} characters")
    return password


def check_pin(pin: str) -> str:
    if not PIN_RE.match(pin):
        raise UserError("PIN must be 4 to 12 digits")
    return pin


def list_users(store: Store) -> list[User]:
    return [_row_to_user(r) for r in store.query("SELECT * FROM users ORDER BY username")]


def get_user(store: Store, username: str) -> User:
    rows = store.query("SELECT * FROM users WHERE username = ?", (username,))
    if not rows:
        raise UserNotFoundError(username)
    return _row_to_user(rows[0])


def add_user(
    store: Store,
    username: str,
    role: str,
    ts: float,
    actor: str,
    *,
    password: str | None = None,
    pin: str | None = None,
) -> User:
    """Create an account; at least one of password and PIN is required."""
    check_username(username)
    check_role(role)
    if password is None and pin is None:
        raise UserError("a new user needs a password or a PIN")
    pw_hash = hash_secret(check_password(password)) if password is not None else None
    pin_hash = hash_secret(check_pin(pin)) if pin is not None else None
    with store.write(durable=True) as conn:
        exists = conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone()
        if exists:
            raise UserError(f"user {username!r} already exists")
        conn.execute(
            "INSERT INTO users (username, role, password_hash, pin_hash, created_ts) "
            "VALUES (?, ?, ?, ?, ?)",
            (username, role, pw_hash, pin_hash, ts),
        )
        append_audit(
            conn,
            ts,
            actor,
            "user.add",
            {"username": username, "role": role, "pin": pin_hash is not None},
        )
    return get_user(store, username)


def update_user(
    store: Store,
    username: str,
    ts: float,
    actor: str,
    *,
    role: str | None = None,
    disabled: bool | None = None,
    password: str | None = None,
    pin: str | None = None,
    clear_pin: bool = False,
) -> User:
    """Change role, enable/disable, or set a new password or PIN; audited without the secrets."""
    sets: list[str] = []
    params: list[Any] = []
    detail: dict[str, Any] = {"username": username}
    if role is not None:
        sets.append("role = ?")
        params.append(check_role(role))
        detail["role"] = role
    if disabled is not None:
        sets.append("disabled = ?")
        params.append(int(disabled))
        detail["disabled"] = disabled
    if password is not None:
        sets.append("password_hash = ?")
        params.append(hash_secret(check_password(password)))
        detail["password"] = "changed"  # noqa: S105 - the audit notes the change, not the value
    if pin is not None:
        sets.append("pin_hash = ?")
        params.append(hash_secret(check_pin(pin)))
        detail["pin"] = "changed"
    elif clear_pin:
        sets.append("pin_hash = NULL")
        detail["pin"] = "removed"
    if password is not None or disabled is False:
        # A new password or re-enabling is an administrator's decision to let the user back in.
        sets.extend(["failed = 0", "locked_until = 0"])
    with store.write(durable=True) as conn:
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone() is None:
            raise UserNotFoundError(username)
        if sets:
            conn.execute(
                f"UPDATE users SET {', '.join(sets)} WHERE username = ?",  # noqa: S608 - fixed column names
                (*params, username),
            )
            if disabled or password is not None:
                # Disabling or a new password ends every open session of that user.
                conn.execute("DELETE FROM sessions WHERE username = ?", (username,))
            if disabled:
                conn.execute("DELETE FROM api_tokens WHERE username = ?", (username,))
            append_audit(conn, ts, actor, "user.update", detail)
            if password is not None and actor != "demo":
                # A demo account with a password of its own is no longer a public one.
                _forget_demo(store, conn, username)
    return get_user(store, username)


def remove_user(store: Store, username: str, ts: float, actor: str) -> None:
    with store.write(durable=True) as conn:
        cur = conn.execute("DELETE FROM users WHERE username = ?", (username,))
        if cur.rowcount == 0:
            raise UserNotFoundError(username)
        conn.execute("DELETE FROM sessions WHERE username = ?", (username,))
        conn.execute("DELETE FROM api_tokens WHERE username = ?", (username,))
        append_audit(conn, ts, actor, "user.remove", {"username": username})
        _forget_demo(store, conn, username)


def _forget_demo(store: Store, conn: Any, username: str) -> None:
    names = store.get_setting(DEMO_USERS_KEY, [])
    if username in names:
        store.set_setting(conn, DEMO_USERS_KEY, [n for n in names if n != username])


def count_admins(store: Store) -> int:
    rows = store.query("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0")
    return int(rows[0]["n"])


def login_password(store: Store, username: str, password: str, ts: float) -> LoginResult:
    """Check a user name and password, counting failures and locking after too many."""
    rows = store.query("SELECT * FROM users WHERE username = ?", (username,))
    if not rows:
        _verify(None, password)
        _audit_login(store, ts, username, ok=False, how="password", reason="unknown user")
        return LoginResult(None, "bad_credentials")
    attempt, refused = _reserve_attempt(store, username, ts)
    if refused is not None:
        return refused
    ok = _verify(attempt.password_hash, password)
    return _finish_login(store, attempt.user, ok, ts, "password")


@dataclass(frozen=True, slots=True)
class _Attempt:
    user: User
    password_hash: str | None


def _reserve_attempt(store: Store, username: str, ts: float) -> tuple[_Attempt, LoginResult | None]:
    # The attempt counts as a failure before its (slow) hash check: guesses sent in parallel
    # each take a slot, so no more than LOCKOUT_FAILURES are ever checked before the lock.
    # Counting after the check let every concurrent guess read the same old count.
    with store.write() as conn:
        row = conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        user = _row_to_user(row)
        attempt = _Attempt(user, row["password_hash"])
        if user.locked_until > ts:
            refused = LoginResult(None, "locked", user.locked_until - ts)
        elif user.failed >= LOCKOUT_FAILURES:
            # The allowance is taken by attempts still being checked: lock now.
            conn.execute(
                "UPDATE users SET failed = 0, locked_until = ? WHERE username = ?",
                (ts + LOCKOUT_S, username),
            )
            refused = LoginResult(None, "locked", LOCKOUT_S)
        else:
            conn.execute("UPDATE users SET failed = failed + 1 WHERE username = ?", (username,))
            return attempt, None
    _audit_login(store, ts, username, ok=False, how="password", reason="locked")
    return attempt, refused


def login_pin(store: Store, pin: str, ts: float, username: str | None = None) -> LoginResult:
    """The shared tablet's PIN login: any enabled user with this PIN (or the named one)."""
    refused = _reserve_pin_attempt(store, ts)
    if refused is not None:
        _audit_login(store, ts, username or "", ok=False, how="pin", reason="pin locked")
        return refused
    if username is not None:
        rows = store.query("SELECT * FROM users WHERE username = ?", (username,))
    else:
        rows = store.query("SELECT * FROM users WHERE pin_hash IS NOT NULL ORDER BY username")
    for row in rows:
        user = _row_to_user(row)
        if user.locked_until > ts or not _verify(row["pin_hash"], pin):
            continue
        with store.write() as conn:
            lock = store.get_setting(_PIN_LOCK_KEY, {"failed": 0, "locked_until": 0.0})
            locked_until = float(lock.get("locked_until", 0.0))
            if locked_until <= ts:
                store.set_setting(conn, _PIN_LOCK_KEY, {"failed": 0, "locked_until": 0.0})
        if locked_until > ts:
            # Parallel guesses locked the PIN while this one was checked.
            return LoginResult(None, "locked", locked_until - ts)
        return _finish_login(store, user, True, ts, "pin")
    with store.write() as conn:
        lock = store.get_setting(_PIN_LOCK_KEY, {"failed": 0, "locked_until": 0.0})
        already = float(lock.get("locked_until", 0.0))
        failed = int(lock.get("failed", 0))
        locked_until = already if already > ts else 0.0
        if not locked_until and failed >= LOCKOUT_FAILURES:
            locked_until = ts + LOCKOUT_S
            store.set_setting(conn, _PIN_LOCK_KEY, {"failed": 0, "locked_until": locked_until})
        append_audit(
            conn,
            ts,
            username or "",
            "login.failed",
            {"how": "pin", "reason": "bad pin", "locked": bool(locked_until)},
        )
    if locked_until:
        if not already:
            _LOGGER.warning("tablet PIN login locked for %.0f s after repeated failures", LOCKOUT_S)
        return LoginResult(None, "locked", locked_until - ts)
    return LoginResult(None, "bad_credentials")


def _reserve_pin_attempt(store: Store, ts: float) -> LoginResult | None:
    # As for passwords: a PIN guess takes a slot of the allowance before it is checked.
    with store.write() as conn:
        lock = store.get_setting(_PIN_LOCK_KEY, {"failed": 0, "locked_until": 0.0})
        locked_until = float(lock.get("locked_until", 0.0))
        failed = int(lock.get("failed", 0))
        if locked_until > ts:
            return LoginResult(None, "locked", locked_until - ts)
        if failed >= LOCKOUT_FAILURES:
            store.set_setting(conn, _PIN_LOCK_KEY, {"failed": 0, "locked_until": ts + LOCKOUT_S})
            return LoginResult(None, "locked", LOCKOUT_S)
        store.set_setting(conn, _PIN_LOCK_KEY, {"failed": failed + 1, "locked_until": 0.0})
    return None


def _finish_login(store: Store, user: User, ok: bool, ts: float, how: str) -> LoginResult:
    with store.write() as conn:
        # Re-read inside the transaction: parallel attempts may have locked the account.
        current = get_user_in(conn, user.username)
        locked = current.locked_until > ts
        if ok and not locked and not user.disabled:
            conn.execute(
                "UPDATE users SET failed = 0, locked_until = 0 WHERE username = ?",
                (user.username,),
            )
            append_audit(conn, ts, user.username, "login", {"how": how})
            return LoginResult(get_user_in(conn, user.username))
        if ok and not locked:
            # The right secret for a disabled account is not a guess: give its slot back.
            conn.execute(
                "UPDATE users SET failed = MAX(failed - 1, 0) WHERE username = ?",
                (user.username,),
            )
            append_audit(
                conn, ts, user.username, "login.failed", {"how": how, "reason": "disabled"}
            )
            return LoginResult(None, "disabled")
        locks_now = not locked and current.failed >= LOCKOUT_FAILURES
        if locks_now:
            conn.execute(
                "UPDATE users SET failed = 0, locked_until = ? WHERE username = ?",
                (ts + LOCKOUT_S, user.username),
            )
        reason = "locked" if locked else "bad credentials"
        append_audit(
            conn,
            ts,
            user.username,
            "login.failed",
            {"how": how, "reason": reason, "locked": locked or locks_now},
        )
    if locks_now:
        _LOGGER.warning(
            "user %s locked for %.0f s after repeated failures", user.username, LOCKOUT_S
        )
        return LoginResult(None, "locked", LOCKOUT_S)
    if locked:
        return LoginResult(None, "locked", current.locked_until - ts)
    return LoginResult(None, "bad_credentials")


def get_user_in(conn: Any, username: str) -> User:
    row = conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if row is None:
        raise UserNotFoundError(username)
    return _row_to_user(row)


def _audit_login(
    store: Store, ts: float, username: str, *, ok: bool, how: str, reason: str
) -> None:
    with store.write() as conn:
        append_audit(
            conn, ts, username, "login" if ok else "login.failed", {"how": how, "reason": reason}
        )


# -- the demo --------------------------------------------------------------------------------
# The settings key listing the demo's accounts; the API refuses to run outside demo mode while
# any is present, since these passwords are printed on every demo start.
DEMO_USERS_KEY = "demo_users"
_DEMO_ACCOUNTS: dict[str, dict[str, str]] = {
    "guard": {"role": "guard", "password": "guard-demo", "pin": "1234"},
    "supervisor": {"role": "supervisor", "password": "supervisor-demo"},
    "admin": {"role": "admin", "password": "admin-demo"},
}


def ensure_demo_users(store: Store, ts: float = 0.0) -> dict[str, dict[str, str]]:
    """Create (or reset) the demo's accounts; returns ``{name: {role, password[, pin]}}``.

    Only the demo calls this. The credentials are fixed so the README can name them.
    """
    for name, account in _DEMO_ACCOUNTS.items():
        try:
            get_user(store, name)
        except UserNotFoundError:
            add_user(
                store,
                name,
                account["role"],
                ts,
                "demo",
                password=account["password"],
                pin=account.get("pin"),
            )
        else:
            update_user(
                store,
                name,
                ts,
                "demo",
                role=account["role"],
                disabled=False,
                password=account["password"],
                pin=account.get("pin"),
            )
    with store.write() as conn:
        store.set_setting(conn, DEMO_USERS_KEY, sorted(_DEMO_ACCOUNTS))
    return {name: dict(account) for name, account in _DEMO_ACCOUNTS.items()}
