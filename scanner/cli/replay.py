"""`checkpoint replay DIR --fast --alerts OUT [--ack-after S]`: run the core over a scenario.

With ``--fast`` the records go through the core as fast as it can take them, on the
recording's own timeline; without it, at real-time pace. ``--alerts`` writes the FORMATS.md
alert lines, ``--counts`` the handsets per minute; ``--db`` also keeps the store. A simulated
guard acknowledges every alarm ``--ack-after`` seconds after it starts (0: nobody).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from scanner.config import ConfigError
from scanner.errors import CheckpointError

if TYPE_CHECKING:
    from scanner.sinks import Sink
    from scanner.store.db import Store


def run(args: argparse.Namespace) -> int:
    from scanner.sim.run import replay_fast
    from scanner.sinks.ndjson import CountsSink, NdjsonSink
    from scanner.store.db import Store, StoreError

    if args.ack_after < 0:
        sys.stderr.write("checkpoint replay: --ack-after must not be negative\n")
        return 2
    with contextlib.ExitStack() as stack:
        try:
            sinks: list[Sink] = []
            if args.alerts:
                sinks.append(NdjsonSink.to_file(_open(stack, args.alerts)))
            if args.counts:
                sinks.append(CountsSink.to_file(_open(stack, args.counts)))
            store = None
            if args.db:
                from scanner.export.seal_key import attach_chain_key

                store = Store(args.db)
                stack.callback(store.close)
                # The replay writes the alert history as the core would: keyed links.
                attach_chain_key(store)
            if not args.fast:
                return _realtime(args.dir, store, sinks, args.ack_after, args.config)
            started = time.monotonic()
            from scanner.cli.evaluate import only_sensors

            result = replay_fast(
                args.dir,
                store=store,
                sinks=sinks,
                ack_after_s=args.ack_after,
                config=args.config,
                only_sensors=only_sensors(args.only_sensors),
            )
        except (CheckpointError, ConfigError, StoreError, OSError) as exc:
            sys.stderr.write(f"checkpoint replay: {exc}\n")
            return 1
    summary = {
        "records": result.records,
        "alerts": result.stats.alerts,
        "handsets_counted": result.stats.handsets_counted,
        "devices": result.stats.devices,
        "seconds": round(time.monotonic() - started, 2),
    }
    sys.stderr.write(json.dumps(summary, sort_keys=True) + "\n")
    return 0


def _open(stack: contextlib.ExitStack, target: str) -> IO[str]:
    if target == "-":
        return sys.stdout
    return stack.enter_context(Path(target).open("w", encoding="utf-8"))


def _realtime(
    directory: str,
    store: Store | None,
    sinks: Sequence[Sink],
    ack_after_s: float,
    config: str | None,
) -> int:
    """Real-time pace: the scenario replay source feeding the core, until the recording ends."""
    import threading

    from scanner.core.pipeline import Core
    from scanner.observations import SourceEvent
    from scanner.runtime.core_runner import CoreRunner, SimulatedGuard
    from scanner.sim.run import load_site
    from scanner.sinks.evidence import EvidenceKeeper, keeper_for_scenario
    from scanner.sinks.store import StoreInputs, StoreSink
    from scanner.sources.replay import ScenarioReplay

    site = load_site(directory, config)
    all_sinks = list(sinks)
    inputs = None
    run_tag = ""
    taps: list[EvidenceKeeper] = []
    if store is not None:
        all_sinks.append(StoreSink(store))
        inputs = StoreInputs(store)
        run_tag = inputs.next_run()
        taps.append(keeper_for_scenario(store, directory))
        all_sinks.append(taps[0])
    core = Core(
        site.options, run_tag=run_tag, outside_sensors=site.outside, placements=site.placements
    )
    guard = SimulatedGuard(ack_after_s) if ack_after_s > 0 else None
    runner = CoreRunner(core, all_sinks, inputs, guard, taps=taps)
    lock = threading.Lock()
    done = threading.Event()

    def feed(event: SourceEvent) -> None:
        with lock:
            runner.handle(event)

    replay = ScenarioReplay(directory, feed, realtime=True, loop=False)
    replay.start()
    try:
        while replay.state not in ("stopped", "fault") and not done.wait(1.0):
            with lock:
                runner.tick(core.clock.monotonic())
    except KeyboardInterrupt:
        replay.stop()
    runner.close()
    return 0 if replay.state != "fault" else 1
