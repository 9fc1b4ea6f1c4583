"""`checkpoint report`: the after-action HTML page for a period, from the local store."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scanner.config import ConfigError
from scanner.export.timefmt import TimeFormatError, parse_time
from scanner.store.db import StoreError


def run(args: argparse.Namespace) -> int:
    from scanner.export.cli_store import open_store
    from scanner.export.report_html import write_report

    try:
        since, until = parse_time(args.since), parse_time(args.until)
        store, config = open_store(args)
    except (TimeFormatError, ValueError, ConfigError, StoreError) as exc:
        print(f"checkpoint report: {exc}", file=sys.stderr)
        return 2
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
    finally:
        store.close()
    print(f"wrote {args.out}: {count} alerts")
    return 0
