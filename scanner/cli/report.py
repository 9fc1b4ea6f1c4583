"""`checkpoint report`: the after-action HTML page for a period, from the local store."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

from scanner.config import ConfigError
from scanner.export.timefmt import TimeFormatError, parse_period
from scanner.store.db import StoreError
from scanner.store.integrity import describe


def run(args: argparse.Namespace) -> int:
    from scanner.export.cli_store import open_store
    from scanner.export.report_html import write_report

    try:
        since, until = parse_period(args.since, args.until)
        store, config = open_store(args)
    except (TimeFormatError, ValueError, ConfigError, StoreError) as exc:
        print(f"checkpoint report: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:
        print(f"checkpoint report: cannot open the store: {describe(exc)}", file=sys.stderr)
        return 1
    try:
        count = write_report(
            store, since, until, Path(args.out), time.time(), config.site if config else ""
        )
    except ValueError as exc:
        print(f"checkpoint report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"checkpoint report: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:
        print(f"checkpoint report: {describe(exc)}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"wrote {args.out}: {count} alerts")
    return 0
