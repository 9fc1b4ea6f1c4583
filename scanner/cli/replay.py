"""`checkpoint replay DIR --fast --alerts OUT`: run the core over a scenario.

With ``--fast`` the records go through the core as fast as it can take them, on the
recording's own timeline; without it, at real-time pace. ``--alerts`` writes one NDJSON line
each time an alert is raised or gains a handset (FORMATS.md); ``--db`` also keeps the store.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import IO, Any

from scanner.errors import CheckpointError


def run(args: argparse.Namespace) -> int:
    from scanner.sim.run import replay_fast
    from scanner.store.db import Store, StoreError

    out: IO[str] | None = None
    store = None
    try:
        if args.alerts:
            out = (
                sys.stdout if args.alerts == "-" else Path(args.alerts).open("w", encoding="utf-8")  # noqa: SIM115
            )
        if args.db:
            store = Store(args.db)
        sink = _writer(out) if out is not None else None
        if not args.fast:
            return _realtime(args.dir, store, sink)
        started = time.monotonic()
        result = replay_fast(args.dir, store=store, on_line=sink)
    except (CheckpointError, StoreError, OSError) as exc:
        sys.stderr.write(f"checkpoint replay: {exc}\n")
        return 1
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
        if store is not None:
            store.close()
    summary = {
        "records": result.records,
        "alerts": result.stats.alerts,
        "handsets_counted": result.stats.handsets_counted,
        "devices": result.stats.devices,
        "seconds": round(time.monotonic() - started, 2),
    }
    sys.stderr.write(json.dumps(summary, sort_keys=True) + "\n")
    return 0


def _writer(out: IO[str]) -> Any:
    def write(line: dict[str, Any]) -> None:
        out.write(json.dumps(line, separators=(",", ":")) + "\n")
        out.flush()

    return write


def _realtime(directory: str, store: Any, sink: Any) -> int:
    """Real-time pace: the scenario replay source feeding the core, until the recording ends."""
    import threading

    from scanner.core.options import CoreOptions
    from scanner.core.pipeline import Core
    from scanner.observations import SourceEvent
    from scanner.sim.run import load_allowlist
    from scanner.sources.replay import ScenarioReplay

    core = Core(
        store, CoreOptions(allowlist=load_allowlist(directory)), sinks=[sink] if sink else []
    )
    lock = threading.Lock()
    done = threading.Event()

    def feed(event: SourceEvent) -> None:
        with lock:
            core.handle(event)

    replay = ScenarioReplay(directory, feed, realtime=True, loop=False)
    replay.start()
    try:
        while replay.state not in ("stopped", "fault") and not done.wait(1.0):
            with lock:
                core.tick()
    except KeyboardInterrupt:
        replay.stop()
    core.close()
    return 0 if replay.state != "fault" else 1
