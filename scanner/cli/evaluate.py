"""`checkpoint eval DIR... [--json] [--ack-after S]`: replay each scenario (with a guard who
acknowledges each alarm S seconds after it starts) and score it against truth.json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scanner import safe_json
from scanner.config import ConfigError
from scanner.errors import CheckpointError


def run(args: argparse.Namespace) -> int:
    from scanner.sim.run import replay_fast
    from scanner.sim.scoring import pooled, score

    if args.ack_after < 0:
        sys.stderr.write("checkpoint eval: --ack-after must not be negative\n")
        return 2
    parts: list[tuple[dict[str, Any], list[Any], int | None]] = []
    results: list[dict[str, Any]] = []
    for directory in args.dir:
        try:
            truth = safe_json.load_path(Path(directory) / "truth.json")
            result = replay_fast(
                directory,
                ack_after_s=args.ack_after,
                config=args.config,
                only_sensors=only_sensors(args.only_sensors),
            )
        except (OSError, ValueError, CheckpointError, ConfigError) as exc:
            sys.stderr.write(f"checkpoint eval: {directory}: {exc}\n")
            return 1
        s = score(truth, result.lines, result.stats.handsets_counted)
        parts.append((truth, result.lines, result.stats.handsets_counted))
        results.append({"dir": str(directory), **s.to_dict()})
    report: dict[str, Any] = (
        dict(results[0]) if len(results) == 1 else {**pooled(parts).to_dict(), "scenarios": results}
    )
    if args.json:
        sys.stdout.write(json.dumps(report, sort_keys=True) + "\n")
    else:
        for r in results:
            sys.stdout.write(_line(r) + "\n")
        if len(results) > 1:
            sys.stdout.write(_line({"dir": "all", **report}) + "\n")
    return 0


def only_sensors(spec: str | None) -> frozenset[str] | None:
    """``--only-sensors a,b`` as a set of names (None: every sensor)."""
    if spec is None:
        return None
    return frozenset(n.strip() for n in spec.split(",") if n.strip())


def _line(r: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    return (
        f"{r['dir']}: visits {r['visits']} recall {f(r['recall'])} "
        f"false_alarms {r['false_alarms']} ({f(r['false_alarms_per_hour'])}/h) "
        f"time_to_alert median {f(r['median_time_to_alert_s'])} s "
        f"p95 {f(r['p95_time_to_alert_s'])} s "
        f"handsets {f(r['handsets_counted'])}/{f(r['handsets_truth'])}"
    )
