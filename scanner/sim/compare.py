"""Several sensors against one, on the same recordings: the fence-loitering comparison.

Each ``fence`` scenario of a set (``scanner.sim.suites``) is recorded by a sensor inside the
zone and one at the gate. It is scored three times through the same replay: with both sensors
(the zone decided on the level difference), with the gate sensor alone and with the inside
sensor alone (the other sensor's folder ignored, as if it had never been installed).

    python -m scanner.sim.compare dev OUT_DIR [--json] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scanner import safe_json
from scanner.sim.run import replay_fast
from scanner.sim.scenario import ScenarioError
from scanner.sim.scoring import Score, pooled, score
from scanner.sim.suites import write

_LOGGER = logging.getLogger(__name__)

# What is compared: a name and the sensors replayed (None: all of them).
SETUPS: tuple[tuple[str, frozenset[str] | None], ...] = (
    ("inside+gate", None),
    ("gate only", frozenset({"gate"})),
    ("inside only", frozenset({"inside"})),
)


def compare(
    dirs: Sequence[Path], ack_after_s: float = 20.0, progress: Callable[[str], None] | None = None
) -> dict[str, Score]:
    """Pooled scores of the scenarios per setup; ``progress`` hears each scenario's score."""
    out: dict[str, Score] = {}
    for name, only in SETUPS:
        parts: list[tuple[dict[str, Any], list[dict[str, Any]], int | None]] = []
        for d in dirs:
            truth = safe_json.load_path(d / "truth.json")
            result = replay_fast(d, ack_after_s=ack_after_s, only_sensors=only)
            parts.append((truth, result.lines, result.stats.handsets_counted))
            if progress is not None:
                one = score(truth, result.lines, result.stats.handsets_counted)
                progress(json.dumps({"setup": name, "dir": str(d), **one.to_dict()}))
        out[name] = pooled(parts)
    return out


def table(scores: dict[str, Score]) -> str:
    """A Markdown table, one row per setup."""

    def f(v: float | None, digits: int = 2) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    rows = [
        "| sensors | visits | recall | false alarms | per hour | median s | p95 s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in scores.items():
        rows.append(
            f"| {name} | {s.visits} | {f(s.recall, 3)} | {s.false_alarms} | "
            f"{f(s.false_alarms_per_hour)} | {f(s.median_time_to_alert_s, 1)} | "
            f"{f(s.p95_time_to_alert_s, 1)} |"
        )
    return "\n".join(rows)


def _progress(line: str) -> None:
    sys.stderr.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanner.sim.compare")
    parser.add_argument("set", choices=("dev", "held-back"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="score the scenarios already under OUT_DIR"
    )
    args = parser.parse_args(argv)
    try:
        if args.reuse:
            dirs = sorted(p for p in args.out.glob("fence-*") if p.is_dir())
        else:
            dirs = write(args.set, args.out, ("fence",))
        scores = compare(dirs, progress=_progress)
    except (ScenarioError, OSError, ValueError) as exc:
        sys.stderr.write(f"compare: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(
            json.dumps({k: v.to_dict() for k, v in scores.items()}, sort_keys=True) + "\n"
        )
    else:
        sys.stdout.write(table(scores) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
