"""`checkpoint demo`: replay the bundled scenario in real time and serve the tablet page."""

from __future__ import annotations

import argparse
from pathlib import Path

from scanner.runtime.demo_plan import BUNDLED_SCENARIO, DemoOptions, plan_demo, print_banner
from scanner.runtime.plans import Plan
from scanner.runtime.serve import launch


def run(args: argparse.Namespace) -> int:
    options = DemoOptions(
        host=args.host,
        port=args.port,
        scenario=Path(args.scenario) if args.scenario else BUNDLED_SCENARIO,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        speed=args.speed,
        sensors=args.sensors,
    )
    info: dict[str, object] = {}

    def build() -> Plan:
        plan, details = plan_demo(options)
        info.update(details)
        return plan

    return launch("demo", build, on_ready=lambda plan: print_banner(plan, info))
