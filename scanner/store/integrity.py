"""The store's own health: is the database file intact, and is there room to write it.

``quick_check`` runs SQLite's ``PRAGMA quick_check`` on a connection of its own (read-only), so
a damaged page anywhere in the file is found even when no query happens to touch it. The verdict
is kept twice: in the ``store`` sensor row (which the page shows), and in a small file beside the
database (``<db>.integrity.json``), because a damaged or full database may refuse exactly the write
that would tell the guard so. The API reads that file on every health request.

SQLite errors are classified here, once, by their result code: a full disk (``SQLITE_FULL``, or
the OS's ENOSPC underneath an I/O error) is "disk full", damaged pages (``SQLITE_CORRUPT``,
``SQLITE_NOTADB``) are "database damaged", so neither reaches a person as the secondary
"cannot rollback - no transaction is active" that SQLite gives after it rolled back itself.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

# SQLite primary result codes (the low byte of an extended code), from sqlite3.h.
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_NOTADB = 26
_CORRUPT_CODES = frozenset({SQLITE_CORRUPT, SQLITE_NOTADB})
# The words SQLite uses when the code is not available (an error re-raised as text).
_CORRUPT_WORDS = ("malformed", "not a database", "database corrupt")
_FULL_WORDS = ("database or disk is full", "no space left on device")

# quick_check stops after this many problems: enough to say which tables are hit, and a badly
# damaged file does not produce megabytes of messages.
MAX_PROBLEMS = 20
# The verdict file beside the database.
STATE_SUFFIX = ".integrity.json"

DISK_FULL = "disk full"
DAMAGED = "database damaged"


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_disk_full(exc: BaseException) -> bool:
    """SQLite (or the OS under it) ran out of space."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if _code(exc) == SQLITE_FULL:
        return True
    text = str(exc).lower()
    return any(word in text for word in _FULL_WORDS)


def is_locked(exc: BaseException) -> bool:
    """Another connection holds the lock SQLite needed (busy or locked, any extended code)."""
    return _code(exc) in (SQLITE_BUSY, SQLITE_LOCKED)


def is_corrupt(exc: BaseException) -> bool:
    """The database file has damaged pages (or is not a database at all)."""
    if _code(exc) in _CORRUPT_CODES:
        return True
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    text = str(exc).lower()
    return any(word in text for word in _CORRUPT_WORDS)


def describe(exc: BaseException) -> str:
    """A store error in words a guard can act on."""
    if is_disk_full(exc):
        return f"{DISK_FULL}: the store cannot record anything until space is freed"
    if is_corrupt(exc):
        return f"{DAMAGED} ({exc}): export what is readable now and replace the storage card"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class IntegrityResult:
    """One ``quick_check`` of the database file."""

    ts: float
    ok: bool
    problems: tuple[str, ...] = ()
    duration_s: float = 0.0

    def message(self) -> str:
        if self.ok:
            return "database intact"
        first = self.problems[0] if self.problems else "unknown damage"
        # SQLite's generic "malformed" line says nothing the first one has not said.
        extra = [p for p in self.problems[1:] if "malformed" not in p]
        more = f" (+{len(extra)} more)" if extra else ""
        return (
            f"{DAMAGED}: {first}{more}; the scanner keeps running, but export what is "
            "readable now and replace the storage card"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "ok": self.ok,
            "problems": list(self.problems),
            "duration_s": self.duration_s,
            "message": self.message(),
        }

    @classmethod
    def from_dict(cls, raw: object) -> IntegrityResult | None:
        if not isinstance(raw, dict):
            return None
        ts, ok, problems = raw.get("ts"), raw.get("ok"), raw.get("problems", [])
        duration = raw.get("duration_s", 0.0)
        if (
            not isinstance(ts, int | float)
            or not isinstance(ok, bool)
            or not isinstance(problems, list)
            or not isinstance(duration, int | float)
        ):
            return None
        return cls(float(ts), ok, tuple(str(p) for p in problems), float(duration))


def quick_check(path: str | Path, now: float | None = None) -> IntegrityResult:
    """Run ``PRAGMA quick_check`` on the file at ``path`` with a read-only connection of its own.

    quick_check reads every page of the file (it skips only the index-against-table comparison
    of ``integrity_check``), so it finds damage in tables no query has touched yet.
    """
    now = time.time() if now is None else now
    started = time.monotonic()
    # A file that cannot be opened at all (missing, a directory, no permission) raises: that
    # is not damage, and the caller tries again later.
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, timeout=5.0)
    try:
        try:
            rows = [str(r[0]) for r in conn.execute(f"PRAGMA quick_check({MAX_PROBLEMS})")]
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise
            # The damage stopped the check itself (a page it could not parse).
            rows = [str(exc)]
        if rows != ["ok"]:
            hit = damaged_tables(conn)
            rows.insert(0, f"unreadable rows in {', '.join(hit)}" if hit else "damaged index")
    finally:
        conn.close()
    duration = round(time.monotonic() - started, 3)
    ok = rows == ["ok"]
    if not ok:
        _LOGGER.error("store %s failed quick_check: %s", path, "; ".join(rows[:3]))
    return IntegrityResult(now, ok, () if ok else tuple(rows), duration)


def damaged_tables(conn: sqlite3.Connection) -> list[str]:
    """The tables whose rows cannot all be read (each scanned whole, without its indexes):
    what a person needs to know to judge what an export will miss. Only run after a failed
    check, since it reads the file once more."""
    try:
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " ORDER BY name"
            )
        ]
    except sqlite3.DatabaseError:
        return ["the schema"]
    hit: list[str] = []
    for name in names:
        quoted = name.replace('"', '""')
        try:
            for _ in conn.execute(f'SELECT * FROM "{quoted}" NOT INDEXED'):  # noqa: S608 - a name from sqlite_schema, quoted
                pass
        except sqlite3.DatabaseError:
            hit.append(name)
    return hit


def state_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}{STATE_SUFFIX}")


def write_state(db_path: str | Path, result: IntegrityResult) -> bool:
    """Keep the verdict beside the database (atomically); False when even that cannot be
    written (a full disk), which the disk check of health reports on its own."""
    target = state_path(db_path)
    payload = json.dumps(result.as_dict(), sort_keys=True).encode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".integrity-", dir=target.parent)
    except OSError as exc:
        _LOGGER.warning("cannot write %s: %s", target, exc.strerror or exc)
        return False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        Path(tmp).chmod(0o600)
        Path(tmp).replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        _LOGGER.warning("cannot write %s: %s", target, exc.strerror or exc)
        return False
    return True


def read_state(db_path: str | Path) -> IntegrityResult | None:
    """The last verdict kept beside the database, or None when there is none (never checked,
    or an in-memory store)."""
    if str(db_path) == ":memory:":
        return None
    try:
        raw = json.loads(state_path(db_path).read_bytes())
    except (OSError, ValueError):
        return None
    return IntegrityResult.from_dict(raw)
