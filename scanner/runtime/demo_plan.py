"""``checkpoint demo``: the bundled scenario replayed at real-time pace, in a loop, through the
same core and API a Pi runs, with a throw-away store and the demo accounts.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.config import ConfigError
from scanner.runtime.build import (
    ApiPlan,
    SourceHealthReporter,
    api_server_factory,
    core_loop_factory,
)
from scanner.runtime.components.replay import add_replay, check_scenario
from scanner.runtime.components.retention import RetentionSchedule, add_retention, retention_health
from scanner.runtime.plans import Plan, in_process_feed, queue_health
from scanner.runtime.serve import HealthWriter
from scanner.runtime.supervisor import Supervisor
from scanner.runtime.transport import EventQueue, FeedBell, InProcessTransport, QueueNotifier
from scanner.store.db import Store, StoreError
from scanner.store.retention import RetentionPolicy

_LOGGER = logging.getLogger(__name__)

# The scenario shipped inside the package, so a fresh clone (or a wheel) can run the demo.
BUNDLED_SCENARIO = Path(__file__).resolve().parent.parent / "demo" / "scenario"
# Several seconds of a full-rate replay fit; the demo never comes near it.
DEMO_QUEUE_SIZE = 20_000


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``checkpoint demo`` was asked for."""

    host: str = "127.0.0.1"
    port: int = 8080
    scenario: Path = BUNDLED_SCENARIO
    data_dir: Path | None = None
    speed: float = 1.0
    # 2: two sensor nodes publishing through a Mosquitto the demo starts (``scanner.mqtt.demo``).
    sensors: int = 1


def plan_demo(options: DemoOptions, clock: Clock = SYSTEM_CLOCK) -> tuple[Plan, dict[str, Any]]:
    """The demo process, and the demo accounts it created."""
    if not (options.sensors == 2 and (options.scenario / "sensors").is_dir()):
        check_scenario(options.scenario)
    cleanup: list[Callable[[], None]] = []
    if options.data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="checkpoint-demo-"))
        cleanup.append(lambda: shutil.rmtree(data_dir, ignore_errors=True))
    else:
        data_dir = options.data_dir
    try:
        return _plan_in(options, data_dir, cleanup, clock)
    except BaseException:
        for step in cleanup:
            step()
        raise


def _plan_in(
    options: DemoOptions, data_dir: Path, cleanup: list[Callable[[], None]], clock: Clock
) -> tuple[Plan, dict[str, Any]]:
    from api.settings import ApiSettings
    from scanner.store.users import ensure_demo_users

    store_path = data_dir / "checkpoint.db"
    try:
        store = Store(store_path)
        try:
            users = ensure_demo_users(store, time.time())
        finally:
            store.close()
    except (StoreError, OSError) as exc:
        raise ConfigError(f"cannot use {store_path}: {exc}") from exc

    events = EventQueue(DEMO_QUEUE_SIZE)
    transport = InProcessTransport(events)
    reporter = SourceHealthReporter(transport.sink, clock)
    supervisor = Supervisor(clock, reporter)
    bell = FeedBell()
    supervisor.add(
        "core",
        _core_factory(options, str(store_path), events, clock, bell),
    )

    # The demo keeps the appliance's default budget and age limits, enforced as on a Pi.
    retention = add_retention(
        supervisor, str(store_path), RetentionSchedule(RetentionPolicy()), clock
    )
    mqtt: dict[str, Any] = {}
    if options.sensors == 2:
        from scanner.mqtt.demo import add_demo_nodes

        mqtt = add_demo_nodes(
            supervisor, reporter, options.scenario, events, clock, options.speed, cleanup
        )
    else:
        add_replay(supervisor, reporter, options.scenario, transport.sink, clock, options.speed)
    api = ApiPlan(
        ApiSettings(store_path=str(store_path), demo=True, site_name="demo"),
        options.host,
        options.port,
        None,
        None,
    )
    try:
        factory, port = api_server_factory(api, QueueNotifier(events), in_process_feed(bell))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (choose another with --port)") from exc
    supervisor.add("api", factory, critical=False)
    shown_host = "127.0.0.1" if options.host in ("0.0.0.0", "::", "") else options.host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    plan = Plan(
        supervisor,
        f"demo replaying {options.scenario.name} on http://{shown_host}:{port}/",
        HealthWriter(
            str(store_path),
            "demo",
            extra=lambda: {
                "queue": queue_health(events),
                "retention": retention_health(retention),
            },
        ),
        cleanup=cleanup,
        url=f"http://{shown_host}:{port}/",
    )
    scenario = (
        "the bundled scenario"
        if options.scenario == BUNDLED_SCENARIO
        else f"scenario {options.scenario}"
    )
    return plan, {
        "users": users,
        "data_dir": data_dir,
        "temporary": options.data_dir is None,
        "scenario": scenario,
        **mqtt,
    }


def _core_factory(
    options: DemoOptions, store_path: str, events: EventQueue, clock: Clock, bell: FeedBell
) -> Callable[[], Any]:
    """The demo's core; a several-sensor scenario's core knows where each sensor stands."""
    if options.sensors == 2 and (options.scenario / "sensors").is_dir():
        from scanner.sim.run import load_site

        site = load_site(options.scenario)
        return core_loop_factory(
            store_path,
            site.options,
            events,
            clock,
            outside_sensors=site.outside,
            placements=site.placements,
            bell=bell,
        )
    return core_loop_factory(store_path, options_for(options.scenario), events, clock, bell=bell)


def options_for(scenario: Path) -> Any:
    """Default core options, with the scenario's own allowlist (its authorised equipment)."""
    from scanner.core.options import CoreOptions
    from scanner.sim.run import load_allowlist

    return CoreOptions(allowlist=load_allowlist(scenario))


def print_banner(plan: Plan, info: dict[str, Any], out: TextIO = sys.stdout) -> None:
    """What the person who typed ``checkpoint demo`` needs: where to go and how to sign in."""
    lines = [
        f"Checkpoint Scanner demo: replaying {info['scenario']} in a loop (receive-only).",
        f"  open   {plan.url}",
    ]
    if info.get("nodes"):
        lines.append(
            f"  nodes  {', '.join(info['nodes'])} publishing through Mosquitto at {info['broker']}"
        )
    for name, account in info["users"].items():
        extra = f", tablet PIN {account['pin']}" if account.get("pin") else ""
        lines.append(f"  login  {name} / {account['password']}   ({account['role']}{extra})")
    where = "temporary, deleted on exit" if info["temporary"] else "kept"
    lines.append(f"  data   {info['data_dir']} ({where})")
    lines.append("Press Ctrl+C to stop.")
    out.write("\n".join(lines) + "\n")
    out.flush()
