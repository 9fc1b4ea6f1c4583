"""`checkpoint run --config FILE`: everything the config enables, in one process."""

from __future__ import annotations

import argparse

from scanner.config import Config
from scanner.runtime.launch import launch, load
from scanner.runtime.processes import plan_run


def run(args: argparse.Namespace) -> int:
    config = load("run", args.config)
    if not isinstance(config, Config):
        return config
    return launch("run", lambda: plan_run(config))
