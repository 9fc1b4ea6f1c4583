"""`checkpoint core --config FILE`: the detection core daemon, fed by the capture daemons."""

from __future__ import annotations

import argparse

from scanner.config import Config
from scanner.runtime.plans import plan_core
from scanner.runtime.serve import launch, load


def run(args: argparse.Namespace) -> int:
    config = load("core", args.config)
    if not isinstance(config, Config):
        return config
    return launch("core", lambda: plan_core(config))
