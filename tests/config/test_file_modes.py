"""Files the project creates are its user's alone, whatever the umask, also outside systemd.

Reproduces the finding: run by hand with the usual umask 022, the store (password hashes, the
site key, every sighting) was created world-readable. Here with umask 000, the worst case.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from scanner.store import users as user_store
from scanner.store.db import Store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _store_files(db: Path) -> list[Path]:
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def test_the_store_is_created_0600_in_a_0700_directory_under_umask_000(tmp_path: Path) -> None:
    db = tmp_path / "state" / "checkpoint.db"
    old = os.umask(0)
    try:
        store = Store(db)
        user_store.add_user(store, "chief", "admin", 1.0, "t", password="gate-north-7731")
    finally:
        os.umask(old)
    try:
        files = _store_files(db)
        assert len(files) == 3  # the WAL files exist while the store is open
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert _mode(db.parent) == 0o700
    finally:
        store.close()


def test_the_command_line_creates_private_files_whatever_its_umask(tmp_path: Path) -> None:
    db = tmp_path / "new" / "checkpoint.db"
    env = {**os.environ, "CHECKPOINT_PASSWORD": "gate-north-7731"}
    # `sh -c 'umask 000; exec ...'`: the command starts with the loosest umask there is.
    shell = ["sh", "-c", 'umask 000; exec "$0" -m scanner.cli.main "$@"', sys.executable]
    result = subprocess.run(
        [*shell, "user", "add", "chief", "--role", "admin", "--db", str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _mode(db) == 0o600
    assert _mode(db.parent) == 0o700
    for extra in _store_files(db)[1:]:
        assert _mode(extra) & 0o077 == 0, extra


def test_an_existing_store_keeps_its_mode(tmp_path: Path) -> None:
    # An installer who chose 0640 for a reason (a backup user in the group) is not overruled.
    db = tmp_path / "checkpoint.db"
    Store(db).close()
    db.chmod(0o640)
    Store(db).close()
    assert _mode(db) == 0o640
