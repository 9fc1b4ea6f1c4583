"""`checkpoint inspect wifi|ble|sdr FILE`: decode a recording to NDJSON on stdout.

Each radio package has an ``inspect`` module with ``inspect_file(path, out) -> Counter``; it writes
one JSON line per record and returns its counters (records, malformed lines skipped). A file
that cannot be read at all raises ``RecordingError``: one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from scanner.errors import RecordingError


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"scanner.sources.{args.radio}.inspect")
    region = getattr(args, "region", None)
    try:
        if args.radio == "sdr" and region is not None:
            counters = module.inspect_file(args.file, sys.stdout, region=region)
        else:
            counters = module.inspect_file(args.file, sys.stdout)
    except ValueError as exc:  # an unknown region
        sys.stderr.write(f"checkpoint inspect {args.radio}: {exc}\n")
        return 2
    except RecordingError as exc:
        sys.stderr.write(f"checkpoint inspect {args.radio}: {exc}\n")
        return 1
    sys.stdout.flush()
    if args.stats:
        sys.stderr.write(json.dumps(dict(counters), sort_keys=True) + "\n")
    return 0
