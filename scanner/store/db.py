"""Opening the SQLite store: WAL mode, migrations, and the events feed.

The core is the main writer. The API writes only what a person does (acknowledgements, allowlist,
users, sessions, audit); SQLite's WAL mode with a busy timeout serialises those few writes with
the core's, and every write is one short transaction.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scanner.store.integrity import SQLITE_FULL, describe, is_disk_full, is_locked
from scanner.store.schema import MIGRATIONS

_LOGGER = logging.getLogger(__name__)

# A write can wait this long for another process's transaction; longer means something is stuck.
BUSY_TIMEOUT_MS = 5000


class StoreError(Exception):
    """The database cannot be opened or is newer than this program."""


class StoreFullError(sqlite3.OperationalError):
    """A write failed because the disk (or the database's size limit) is full. An
    ``OperationalError`` still, so every caller that handles store errors handles this one."""

    sqlite_errorcode = SQLITE_FULL


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (and migrate) the database at ``path``; ``":memory:"`` works for tests."""
    target = str(path)
    if target != ":memory:":
        _create_private(Path(target))
    try:
        conn = sqlite3.connect(
            target, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {target}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if target != ":memory:":
        _set_wal(conn)
    # NORMAL in WAL mode loses at most the last transactions on power loss, never corrupts;
    # alerts are written with FULL (see Store.write(durable=True)).
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn)
    return conn


def _set_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode, waiting out other first openers as a write would.

    Switching a new database to WAL takes an exclusive lock. When another process opening it at
    the same moment (the core and the API on first boot) holds its shared lock while it waits for
    the same switch, SQLite answers "database is locked" at once instead of calling the busy
    handler, since waiting could deadlock the two. Once one switch has happened the others find
    WAL set, so trying again after a short pause within the busy timeout always finishes.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _create_private(path: Path) -> None:
    """Create the database file 0600 (in a 0700 directory if that is new too), whatever the
    umask: it holds the site key, password hashes and every sighting. SQLite gives its -wal
    and -shm files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create database {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    # The umask can only have narrowed 0600; fchmod is not needed, but a file system that
    # ignores the mode at creation (some network mounts) gets it set once more here.
    try:
        path.chmod(0o600)
    except OSError:
        _LOGGER.warning("cannot set the mode of %s to 0600", path)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration newer than the database's ``user_version``.

    The version is read inside the write lock: on first boot the core and the API open a new
    database at the same moment, and a version read before the lock would make both apply
    migration 1.
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"database schema {version} is newer than this program "
                    f"({len(MIGRATIONS)}); upgrade"
                )
            if version == len(MIGRATIONS):
                conn.execute("COMMIT")
                return
            _LOGGER.info("applying store migration %d", version + 1)
            for statement in _split(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise


def rollback(conn: sqlite3.Connection) -> None:
    """End a failed transaction without hiding why it failed: after a full disk or an I/O
    error SQLite has often rolled back already, and a second ROLLBACK would replace the real
    error with "cannot rollback - no transaction is active"."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        _LOGGER.debug("rollback after a failed transaction: %s", exc)


def _split(script: str) -> Iterator[str]:
    # sqlite3.executescript would commit our BEGIN; split on statement ends instead.
    buf: list[str] = []
    for line in script.splitlines():
        buf.append(line.split("--", 1)[0])
        joined = "\n".join(buf)
        if sqlite3.complete_statement(joined):
            if joined.strip():
                yield joined
            buf = []


class Store:
    """One connection to the store with a lock, shared by the threads of one process."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.conn = connect(path)
        self.lock = threading.RLock()
        # The key of the alert-history chain, derived from the sealing key by whoever holds it
        # (``scanner.export.seal_key.attach_chain_key``); None links plain SHA-256.
        self.chain_key: bytes | None = None
        # Called after a transaction that added rows to the live feed commits (the API wakes
        # its own event streams with it: a guard's acknowledgement reaches the other tablets at
        # once rather than on their next poll of the store).
        self._feed_listeners: list[Callable[[], None]] = []
        self._feed_added = False

    def on_feed_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the writing thread) after each commit that added events."""
        self._feed_listeners.append(listener)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction. ``durable`` syncs it to disk before returning."""
        with self.lock:
            if durable:
                self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("BEGIN IMMEDIATE")
            self._feed_added = False
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException as exc:
                rollback(self.conn)
                if isinstance(exc, sqlite3.Error) and is_disk_full(exc):
                    raise StoreFullError(describe(exc)) from exc
                raise
            finally:
                if durable:
                    self.conn.execute("PRAGMA synchronous = NORMAL")
            added, self._feed_added = self._feed_added, False
        # Committed: outside the lock, the listeners only schedule their wake-ups.
        if added:
            for listener in self._feed_listeners:
                try:
                    listener()
                except Exception:
                    # A wake-up is a courtesy: the streams still poll the store.
                    _LOGGER.exception("a live-feed listener failed")

    def schema_version(self) -> int:
        """The migration the database is at (``PRAGMA user_version``)."""
        return int(self.query("PRAGMA user_version")[0][0])

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return list(self.conn.execute(sql, params))

    # -- the live events feed ----------------------------------------------------------------
    def add_event(
        self, conn: sqlite3.Connection, ts: float, type_: str, data: dict[str, Any]
    ) -> int:
        """Append an event inside the caller's transaction; returns its id (the SSE id)."""
        cur = conn.execute(
            "INSERT INTO events (ts, type, data) VALUES (?, ?, ?)",
            (ts, type_, json.dumps(data, separators=(",", ":"), sort_keys=True)),
        )
        self._feed_added = True
        return int(cur.lastrowid or 0)

    def events_after(self, last_id: int, limit: int = 500) -> list[dict[str, Any]]:
        """Events with an id greater than ``last_id``, oldest first."""
        rows = self.query(
            "SELECT id, ts, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, limit),
        )
        return [
            {"id": r["id"], "ts": r["ts"], "type": r["type"], "data": json.loads(r["data"])}
            for r in rows
        ]

    def last_event_id(self) -> int:
        row = self.query("SELECT COALESCE(MAX(id), 0) AS m FROM events")
        return int(row[0]["m"])

    # -- settings ----------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        rows = self.query("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def set_setting(self, conn: sqlite3.Connection, key: str, value: Any) -> None:
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )
