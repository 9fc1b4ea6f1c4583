"""`checkpoint simulate --seed N --minutes M --out DIR [--profile P]`: write a scenario."""

from __future__ import annotations

import argparse
import json
import sys

from scanner.errors import CheckpointError


def run(args: argparse.Namespace) -> int:
    from scanner.sim.scenario import ScenarioError, simulate

    try:
        summary = simulate(args.seed, args.minutes, args.out, args.profile)
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
            },
            sort_keys=True,
        )
        + "\n"
    )
    return 0
