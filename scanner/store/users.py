"""People who use the tablet and the API: accounts, roles, password and PIN checks, lockout.

Passwords and PINs are stored only as argon2 hashes. Repeated failures lock an account for a
while; the shared tablet's PIN login (no user name) has its own failure counter so guessing PINs
is throttled too. The API and the ``checkpoint user`` command both go through this module.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
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

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
PIN_RE = re.compile(r"^[0-9]{4,12}$")
# For every role. With the common-password check below, ten characters put an online guesser
# (a handful of tries per minute past the API's throttle) centuries from a random one.
MIN_PASSWORD_LEN = 10
# Only guards may have a PIN: it is short, typed on a shared tablet in view of others.
PIN_ROLES = ("guard",)

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
    """The password policy: a length floor and not a well-known password, for every role."""
    if len(password) < MIN_PASSWORD_LEN:
        raise UserError(f"password must be at least {MIN_PASSWORD_LEN} characters")
    if common_password(password):
        raise UserError("this is a well-known password, too easy to guess; choose another")
    return password


# Letters people put digits and symbols in place of ("p@ssw0rd").
_UNLEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s",
                         "5": "s", "7": "t", "+": "t", "8": "b", "9": "g"})  # fmt: skip
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")


def _common_passwords() -> str:
    """The 30,000 most common passwords of the leaked password corpora, as shipped offline by
    the zxcvbn package (MIT licence): the "passwords" line of its frequency_lists module.

    Read from that file, not imported, and not kept: importing zxcvbn builds all its word
    lists and keyboard graphs (15 MB of RSS, half of which the allocator keeps after the
    modules are dropped), for a check made only when a password is set. The list stays the
    one comma-separated string it is there, with a comma at each end (250 kB, 2 ms a read):
    a set of its 30,000 words would leave megabytes of small strings behind in the allocator.
    """
    spec = importlib.util.find_spec("zxcvbn")  # a top-level name: found, not imported
    folders = spec.submodule_search_locations if spec is not None else None
    if not folders:
        raise UserError("the zxcvbn package is missing: cannot check passwords")
    source = Path(next(iter(folders))) / "frequency_lists.py"
    with source.open(encoding="utf-8") as lines:
        for line in lines:
            name, _, value = line.strip().partition(": ")
            if name == '"passwords"' and value.endswith('.split(","),'):
                words: str = ast.literal_eval(value.removesuffix('.split(","),'))
                return f",{words},"
    raise UserError(f"{source} holds no password list: cannot check passwords")


def common_password(password: str) -> bool:
    """True for a well-known password, also with case, digit-for-letter and added digits or
    symbols around it ("Password123!", "p@ssw0rd", "2024letmein")."""
    common = _common_passwords()
    lower = password.lower()
    stems = {lower, _DECORATION.sub("", lower), lower.translate(_UNLEET)}
    stems.add(_DECORATION.sub("", lower.translate(_UNLEET)))
    # One word repeated ("passwordpassword") is no stronger than the word.
    for n in (2, 3):
        if len(lower) % n == 0 and lower == lower[: len(lower) // n] * n:
            stems.add(lower[: len(lower) // n])
    # No word of the list holds a comma: a stem with one would match two words and the comma.
    listed = (f",{stem}," in common for stem in stems if len(stem) >= 4 and "," not in stem)
    return any(listed) or len(set(lower)) <= 2


def _check_pin_for(store: Store, role: str, pin: str, username: str) -> None:
    if role not in PIN_ROLES:
        raise UserError(
            "a PIN is only for the guard role; supervisors and admins sign in with a password"
        )
    check_pin(pin)
    # PIN sign-in on the shared tablet names no user: a PIN must pick out one person, or the
    # audit trail would name the wrong guard.
    rows = store.query(
        "SELECT pin_hash FROM users WHERE pin_hash IS NOT NULL AND username != ?", (username,)
    )
    if any(_verify(r["pin_hash"], pin) for r in rows):
        raise UserError("this PIN is already in use; choose another")


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
    if pin is not None:
        _check_pin_for(store, role, pin, username)
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
    current = get_user(store, username)
    keeps_pin = pin is not None or (current.has_pin and not clear_pin)
    if keeps_pin and (role or current.role) not in PIN_ROLES:
        raise UserError(
            "a PIN is only for the guard role: remove the PIN (clear_pin) to give this account "
            "a higher role"
        )
    if pin is not None:
        _check_pin_for(store, role or current.role, pin, username)
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
                delete_tokens(conn, "username = ?", (username,))
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
        delete_tokens(conn, "username = ?", (username,))
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
    """Check a user name and password; audited. Throttling is the caller's (api/throttle.py).

    An unknown name costs one hash check like a known one, so the time taken tells nothing.
    """
    rows = store.query("SELECT * FROM users WHERE username = ?", (username,))
    if not rows:
        _verify(None, password)
        _audit_login(store, ts, username, ok=False, how="password", reason="bad credentials")
        return LoginResult(None, "bad_credentials")
    user = _row_to_user(rows[0])
    ok = _verify(rows[0]["password_hash"], password)
    return _finish_login(store, user, ok, ts, "password")


def login_pin(store: Store, pin: str, ts: float, username: str | None = None) -> LoginResult:
    """The shared tablet's PIN login: the guard with this PIN (or the named one); audited.

    Only guard accounts are considered: a PIN is short and typed on a shared tablet, so it can
    never sign anyone in above the guard role, even from a store written before that rule.
    """
    if username is not None:
        rows = store.query(
            "SELECT * FROM users WHERE username = ? AND role = 'guard' AND pin_hash IS NOT NULL",
            (username,),
        )
    else:
        rows = store.query(
            "SELECT * FROM users WHERE role = 'guard' AND pin_hash IS NOT NULL ORDER BY username"
        )
    if not rows:
        _verify(None, pin)
    for row in rows:
        if _verify(row["pin_hash"], pin):
            return _finish_login(store, _row_to_user(row), True, ts, "pin")
    _audit_login(store, ts, username or "", ok=False, how="pin", reason="bad pin")
    return LoginResult(None, "bad_credentials")


def _finish_login(store: Store, user: User, ok: bool, ts: float, how: str) -> LoginResult:
    if ok and not user.disabled:
        _audit_login(store, ts, user.username, ok=True, how=how, reason="")
        return LoginResult(user)
    if ok:
        # Only someone who knows the secret learns that the account is disabled.
        _audit_login(store, ts, user.username, ok=False, how=how, reason="disabled")
        return LoginResult(None, "disabled")
    _audit_login(store, ts, user.username, ok=False, how=how, reason="bad credentials")
    return LoginResult(None, "bad_credentials")


def delete_tokens(conn: Any, where: str, params: tuple[str, ...]) -> int:
    """Delete the tokens matching ``where`` and, transitively, every token they minted."""
    # ``where`` is one of a few fixed clauses written in this package, never user input.
    rows = conn.execute(
        f"WITH RECURSIVE doomed(h) AS (SELECT token_hash FROM api_tokens WHERE {where} "  # noqa: S608
        "UNION SELECT t.token_hash FROM api_tokens t JOIN doomed d ON t.parent_hash = d.h) "
        "SELECT h FROM doomed",
        params,
    ).fetchall()
    hashes = [r[0] for r in rows]
    for h in hashes:
        conn.execute("DELETE FROM api_tokens WHERE token_hash = ?", (h,))
    return len(hashes)


def get_user_in(conn: Any, username: str) -> User:
    row = conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if row is None:
        raise UserNotFoundError(username)
    return _row_to_user(row)


def _audit_login(
    store: Store, ts: float, username: str, *, ok: bool, how: str, reason: str
) -> None:
    detail = {"how": how} if ok else {"how": how, "reason": reason}
    with store.write() as conn:
        append_audit(conn, ts, username, "login" if ok else "login.failed", detail)


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
