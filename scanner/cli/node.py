"""`checkpoint node --config FILE`: a sensor node publishing its radios to the MQTT broker."""

from __future__ import annotations

import argparse

from scanner.config import Config
from scanner.runtime.plans import plan_node
from scanner.runtime.serve import launch, load


def run(args: argparse.Namespace) -> int:
    config = load("node", args.config)
    if not isinstance(config, Config):
        return config
    return launch("node", lambda: plan_node(config))
