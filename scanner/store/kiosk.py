"""Kiosk credentials: the long-lived device credential of a wall tablet.

A guard's session ends after a shift; a screen on the guard-house wall runs for months and must
never fall back to a calm sign-in page while phones walk in. A supervisor therefore issues a
kiosk credential to that one tablet: it signs the tablet in with the guard role only (see and
acknowledge, nothing else), acknowledgements made with it are recorded as ``kiosk:LABEL``, and
the supervisor can revoke it at any time (the live feed of the tablet ends within seconds).

Like sessions and API tokens, only a hash of the secret is stored. The few kiosks of a gate are
kept as one JSON document in the settings table, so they need no schema change.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from scanner.store.chain import append_audit
from scanner.store.db import Store
from scanner.store.users import Role, User

_LOGGER = logging.getLogger(__name__)

# The settings key holding the issued kiosk credentials (hashes and labels only).
KIOSK_KEY = "kiosk_credentials"
# Recognisable in a log or a secret scanner, and distinct from API tokens (``cpk_``).
KIOSK_PREFIX = "cpkiosk_"
# What a kiosk may do: exactly what a guard at the screen may do.
KIOSK_ROLE = Role.GUARD
# A gate has one or two wall screens; a few dozen is already a misconfiguration.
MAX_KIOSKS = 50
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")


class KioskError(ValueError):
    """The request cannot be honoured (bad label, too many kiosks); the message says why."""


@dataclass(frozen=True, slots=True)
class KioskInfo:
    """A kiosk credential's public description (never the secret)."""

    id: str  # the first 12 hex characters of the secret's hash
    label: str
    created_ts: float
    created_by: str

    @property
    def actor(self) -> str:
        """The name acknowledgements and audit rows made with this kiosk carry."""
        return f"kiosk:{self.label}"

    def as_user(self) -> User:
        """The guard-role identity requests made with this credential act as."""
        return User(
            username=self.actor,
            role=KIOSK_ROLE,
            has_password=False,
            has_pin=False,
            disabled=False,
            failed=0,
            locked_until=0.0,
            created_ts=self.created_ts,
        )


def _hash(secret: str) -> str:
    # 256 random bits: a plain hash is enough, there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def _entries(store: Store) -> list[dict[str, Any]]:
    raw = store.get_setting(KIOSK_KEY, [])
    if not isinstance(raw, list):
        _LOGGER.warning("kiosk credentials in the store are not a list; treating as none")
        return []
    return [e for e in raw if isinstance(e, dict) and isinstance(e.get("hash"), str)]


def _info(entry: dict[str, Any]) -> KioskInfo:
    return KioskInfo(
        id=str(entry["hash"])[:12],
        label=str(entry.get("label", "")),
        created_ts=float(entry.get("created_ts", 0.0)),
        created_by=str(entry.get("created_by", "")),
    )


def check_label(label: str) -> str:
    label = label.strip()
    if not LABEL_RE.match(label):
        raise KioskError(
            "a kiosk label is 1-40 letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return label


def issue_kiosk(store: Store, label: str, ts: float, actor: str) -> tuple[KioskInfo, str]:
    """A new kiosk credential; the secret is returned once and never stored."""
    label = check_label(label)
    secret = KIOSK_PREFIX + secrets.token_urlsafe(32)
    entry = {"hash": _hash(secret), "label": label, "created_ts": ts, "created_by": actor}
    with store.write(durable=True) as conn:
        entries = _entries(store)
        if len(entries) >= MAX_KIOSKS:
            raise KioskError(f"already {len(entries)} kiosks; revoke one first")
        if any(e.get("label") == label for e in entries):
            raise KioskError(f"a kiosk is already called {label!r}")
        store.set_setting(conn, KIOSK_KEY, [*entries, entry])
        info = _info(entry)
        append_audit(conn, ts, actor, "kiosk.issue", {"id": info.id, "label": label})
    return info, secret


def kiosk_for_secret(store: Store, secret: str) -> KioskInfo | None:
    """The kiosk a secret belongs to, or None (revoked, or never issued)."""
    if not secret.startswith(KIOSK_PREFIX) or len(secret) > 128:
        return None
    digest = _hash(secret)
    for entry in _entries(store):
        if secrets.compare_digest(str(entry["hash"]), digest):
            return _info(entry)
    return None


def kiosk_by_id(store: Store, kiosk_id: str) -> KioskInfo | None:
    for entry in _entries(store):
        if str(entry["hash"])[:12] == kiosk_id:
            return _info(entry)
    return None


def list_kiosks(store: Store) -> list[KioskInfo]:
    return sorted((_info(e) for e in _entries(store)), key=lambda k: k.created_ts)


def revoke_kiosk(store: Store, kiosk_id: str, ts: float, actor: str) -> bool:
    """Remove the kiosk credential ``kiosk_id``; False when there is none."""
    with store.write(durable=True) as conn:
        entries = _entries(store)
        keep = [e for e in entries if str(e["hash"])[:12] != kiosk_id]
        if len(keep) == len(entries):
            return False
        store.set_setting(conn, KIOSK_KEY, keep)
        append_audit(conn, ts, actor, "kiosk.revoke", {"id": kiosk_id})
    return True
