"""`checkpoint run --config FILE`: everything the config enables, in one process."""

from __future__ import annotations

import argparse

from scanner.config import Config
from scanner.runtime.plans import plan_run
from scanner.runtime.serve import launch, load


def run(args: argparse.Namespace) -> int:
    config = load("run", args.config)
    if not isinstance(config, Config):
        return config
    return launch("run", lambda: plan_run(config))
