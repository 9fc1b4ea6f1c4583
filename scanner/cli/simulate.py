"""`checkpoint simulate --seed N --minutes M --out DIR [--profile P] [--sensors LIST]`: write a
scenario (one sensor, or several in the ``sensors/NAME/`` layout)."""

from __future__ import annotations

import argparse
import json
import math
import sys

from scanner.errors import CheckpointError


def run(args: argparse.Namespace) -> int:
    from scanner.sim.scenario import ScenarioError, parse_sensors, simulate

    try:
        sensors = parse_sensors(args.sensors) if args.sensors else None
        offsets = _offsets(args.clock_offset)
        summary = simulate(
            args.seed,
            args.minutes,
            args.out,
            args.profile,
            sensors=sensors,
            clock_offsets_s=offsets,
        )
    except (ScenarioError, CheckpointError, OSError) as exc:
        sys.stderr.write(f"checkpoint simulate: {exc}\n")
        return 2
    sys.stdout.write(
        json.dumps(
            {
                "out": str(summary.out),
                "profile": summary.profile,
                "duration_s": summary.duration_s,
                "wifi_frames": summary.wifi_frames,
                "ble_adverts": summary.ble_adverts,
                "sdr_windows": summary.sdr_windows,
                "visits": summary.visits,
                "people": summary.counts,
                "sensors": [name for name, _ in sensors] if sensors else None,
            },
            sort_keys=True,
        )
        + "\n"
    )
    return 0


def _offsets(specs: list[str]) -> dict[str, float]:
    from scanner.sim.scenario import ScenarioError

    out: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = float("nan")
        if not sep or not name or not math.isfinite(seconds) or abs(seconds) > 3600:
            raise ScenarioError(f"--clock-offset {spec!r}: expected NAME=SECONDS (within an hour)")
        out[name] = seconds
    return out
