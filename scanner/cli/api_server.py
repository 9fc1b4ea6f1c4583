"""`checkpoint api --config FILE [--mode gate|command-post]`: the API and tablet page daemon
(TLS when [api] has a cert); as a command post it shows every gate of the site."""

from __future__ import annotations

import argparse

from scanner.config import Config
from scanner.runtime.plans import plan_api
from scanner.runtime.serve import launch, load


def run(args: argparse.Namespace) -> int:
    config = load("api", args.config)
    if not isinstance(config, Config):
        return config
    return launch("api", lambda: plan_api(config, args.mode))
