"""`checkpoint verify FILE.tar.gz`: exit 0 when the bundle is intact, 1 naming every problem."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    from scanner.export.verify import verify_bundle

    key = _site_key(getattr(args, "db", None))
    report = verify_bundle(args.file, key, getattr(args, "previous", None))
    for line in report.problems:
        print(line)
    for line in report.notes:
        print(f"note: {line}", file=sys.stderr if report.problems else sys.stdout)
    if report.problems:
        print(f"{args.file}: NOT intact ({len(report.problems)} problem(s))")
        return 1
    print(f"{args.file}: OK")
    return 0


def _site_key(db: str | None) -> bytes | None:
    if not db:
        return None
    from scanner.export.pseudonym import SITE_KEY_SETTING
    from scanner.store.db import Store

    store = Store(db)
    try:
        value = store.get_setting(SITE_KEY_SETTING)
    finally:
        store.close()
    return bytes.fromhex(value) if isinstance(value, str) and value else None
