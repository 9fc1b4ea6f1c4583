"""`checkpoint api --config FILE`: the API and tablet page daemon (TLS when [api] has a cert)."""

from __future__ import annotations

import argparse

from scanner.config import Config
from scanner.runtime.launch import launch, load
from scanner.runtime.processes import plan_api


def run(args: argparse.Namespace) -> int:
    config = load("api", args.config)
    if not isinstance(config, Config):
        return config
    return launch("api", lambda: plan_api(config))
