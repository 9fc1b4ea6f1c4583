"""`checkpoint capture wifi|ble|sdr --config FILE`: one capture daemon sending to the core."""

from __future__ import annotations

import argparse
from pathlib import Path

from scanner.config import Config
from scanner.runtime.plans import plan_capture
from scanner.runtime.serve import launch, load


def run(args: argparse.Namespace) -> int:
    config = load("capture", args.config)
    if not isinstance(config, Config):
        return config
    replay = Path(args.replay) if args.replay else None
    return launch(
        "capture",
        lambda: plan_capture(
            config, args.radio, record_path=args.record, replay=replay, speed=args.speed
        ),
    )
