"""A store from before the identity rule: its fingerprint entries come out flagged and inactive,
its other entries unchanged; the core is told nothing it would exempt by fingerprint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from scanner.core.allowlist import Allowlist
from scanner.sinks.store import StoreInputs
from scanner.store.allowlist import FINGERPRINT_FLAG, core_entry, list_entries
from scanner.store.db import Store, _split
from scanner.store.schema import MIGRATIONS


def _old_store(path: Path) -> None:
    conn = sqlite3.connect(path)
    for statement in _split(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.executemany(
        "INSERT INTO allowlist (match, value, label, added_by, added_ts) VALUES (?, ?, ?, ?, ?)",
        [
            ("fingerprint", "a1b2c3d4e5f60718", "chief's iPhone", "sup", 1.0),
            ("mac", "3a:00:00:00:01:01", "chief's iPhone", "sup", 1.0),
        ],
    )
    conn.commit()
    conn.close()


def test_fingerprint_entries_migrate_to_flagged_and_inactive(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_store(path)
    store = Store(str(path))
    assert store.schema_version() == len(MIGRATIONS)
    entries = {e.match: e for e in list_entries(store)}
    assert entries["fingerprint"].flag == FINGERPRINT_FLAG
    assert entries["mac"].flag == "" and entries["mac"].expires_ts is None

    allow = Allowlist()
    allow.set_stored(core_entry(e) for e in list_entries(store))
    assert [e.value for e in allow.inactive()] == ["a1b2c3d4e5f60718"]
    assert allow.match("mac", "3A:00:00:00:01:01", 2.0) == "chief's iPhone"
    inputs = StoreInputs(store).poll((), force=True)
    assert any(getattr(i, "entries", None) for i in inputs)
