"""`checkpoint export`: write the after-action bundle for a period."""

from __future__ import annotations

import argparse
import sqlite3
import sys

from scanner.config import ConfigError
from scanner.export.bundle import build_bundle
from scanner.export.collect import Period
from scanner.export.seal_key import SealKeyError
from scanner.export.timefmt import TimeFormatError, iso, parse_period
from scanner.store.db import StoreError
from scanner.store.integrity import describe


def run(args: argparse.Namespace) -> int:
    from scanner.export.cli_store import open_store

    try:
        period = Period(*parse_period(args.since, args.until))
        store, config = open_store(args)
    except (TimeFormatError, ValueError, ConfigError, StoreError) as exc:
        print(f"checkpoint export: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:
        print(f"checkpoint export: cannot open the store: {describe(exc)}", file=sys.stderr)
        return 1
    try:
        summary = build_bundle(
            store,
            period,
            args.out,
            pseudonymise=bool(args.pseudonymise),
            actor="cli",
            config=config,
            seal_key=getattr(args, "seal_key", None),
        )
    except SealKeyError as exc:
        print(f"checkpoint export: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"checkpoint export: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:
        # What the salvage cannot work around (the site key unreadable, the store locked).
        print(f"checkpoint export: {describe(exc)}", file=sys.stderr)
        return 1
    finally:
        store.close()
    heads = summary.chains
    print(
        f"wrote {summary.path} ({summary.bytes} bytes, {summary.files} files): "
        f"{summary.alerts} alerts {iso(period.since)} to {iso(period.until)}, "
        f"{summary.evidence_files} evidence files"
    )
    for name, head in sorted(heads.items()):
        print(f"{name} chain head: seq {head['head_seq']} {head['head_hash']}")
    if summary.unreadable:
        print(
            f"checkpoint export: the store is damaged; {len(summary.unreadable)} part(s) could "
            "not be read and are listed in the bundle's unreadable.ndjson:",
            file=sys.stderr,
        )
        for line in summary.unreadable:
            print(f"  {line}", file=sys.stderr)
    if summary.unaudited:
        print(
            f"checkpoint export: not recorded in the audit log: {summary.unaudited}",
            file=sys.stderr,
        )
    return 0
