"""`checkpoint bench [--json]`: every benchmark with its baseline, measured in one run.

Benchmarks live in the top-level ``bench`` package, one module per hot path, each with
``run(quick: bool) -> dict``. Results are ratios against a baseline measured in the same run
(scapy, tshark, naive numpy), never absolute times, because machines differ.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

# name -> module; the JSON output is keyed by these names (contract: wifi_parse, sdr_dsp).
BENCHMARKS: dict[str, str] = {
    "wifi_parse": "bench.wifi_parse",
    "sdr_dsp": "bench.sdr_dsp",
    "load": "bench.load",
}


def run(args: argparse.Namespace) -> int:
    names = list(BENCHMARKS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.stderr.write(f"checkpoint bench: unknown benchmark(s): {', '.join(unknown)}\n")
        return 2
    results: dict[str, Any] = {}
    for name in names:
        try:
            module = importlib.import_module(BENCHMARKS[name])
        except ModuleNotFoundError as exc:
            if exc.name != "bench":
                raise
            # The benchmarks are not part of the installed package: they need the source tree.
            sys.stderr.write(
                "checkpoint bench: the benchmarks run from a source checkout "
                "(pip install -e . in the repository)\n"
            )
            return 2
        if not args.json:
            sys.stderr.write(f"running {name} ...\n")
        results[name] = module.run(quick=args.quick)
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2, sort_keys=True) + "\n")
    else:
        for name, result in results.items():
            sys.stdout.write(f"{name}:\n")
            for key, value in sorted(result.items()):
                sys.stdout.write(f"  {key}: {value}\n")
    return 0
