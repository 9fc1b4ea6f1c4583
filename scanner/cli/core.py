"""`checkpoint core --config FILE`: the detection core daemon, fed by the capture daemons."""

from __future__ import annotations

import argparse

from scanner.config import Config
from scanner.runtime.launch import launch, load
from scanner.runtime.processes import plan_core


def run(args: argparse.Namespace) -> int:
    config = load("core", args.config)
    if not isinstance(config, Config):
        return config
    return launch("core", lambda: plan_core(config))
