"""`checkpoint verify FILE.tar.gz`: exit 0 when the bundle is intact, 1 naming every problem."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanner.export.seal_key import SealKeys


def run(args: argparse.Namespace) -> int:
    from scanner.errors import CheckpointError
    from scanner.export.verify import verify_bundle
    from scanner.store.db import StoreError

    for what, path in (("bundle", args.file), ("previous bundle", getattr(args, "previous", None))):
        problem = _unreadable_file(path) if path else None
        if problem:
            print(f"checkpoint verify: cannot read the {what} {path}: {problem}", file=sys.stderr)
            return 2
    try:
        keys = _site_keys(getattr(args, "db", None), getattr(args, "seal_key", None))
    except (CheckpointError, StoreError) as exc:
        print(f"checkpoint verify: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        print(f"checkpoint verify: cannot read the sealing key: {exc}", file=sys.stderr)
        return 2
    report = verify_bundle(
        args.file,
        keys.all if keys else None,
        getattr(args, "previous", None),
        keys.chain_since if keys else None,
    )
    for line in report.problems:
        print(line)
    for line in report.notes:
        print(f"note: {line}", file=sys.stderr if report.problems else sys.stdout)
    if report.problems:
        print(f"{args.file}: NOT intact ({len(report.problems)} problem(s))")
        return 1
    incomplete = any(line.startswith("INCOMPLETE") for line in report.notes)
    print(f"{args.file}: OK" + (" (incomplete: see the notes above)" if incomplete else ""))
    return 0


def _unreadable_file(path: str) -> str | None:
    """Why ``path`` cannot be read as a file, in words; None when it can."""
    try:
        with Path(path).open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _site_keys(db: str | None, path: str | None) -> SealKeys | None:
    """The unit's sealing keys (current and earlier), when a store or a key file is named."""
    from scanner.export.seal_key import read_keys, seal_keys

    if path and not db:
        return read_keys(Path(path))
    if not db:
        return None
    from scanner.store.db import Store

    # Opening a path that does not exist would create an empty store there.
    problem = _unreadable_file(db)
    if problem:
        raise OSError(f"{db}: {problem}")

    store = Store(db)
    try:
        return seal_keys(store, path, create=False)
    finally:
        store.close()
