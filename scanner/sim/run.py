"""Running the core over a scenario as fast as it goes: what replay and eval share."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner import safe_json
from scanner.core.options import CoreOptions
from scanner.core.pipeline import Core, CoreStats
from scanner.sources.replay import iter_scenario, scenario_files, statuses
from scanner.store.db import Store

_LOGGER = logging.getLogger(__name__)

# Time kept running after the last record so silence can resolve what is open.
TAIL_S = 60.0


@dataclass(frozen=True, slots=True)
class ReplayResult:
    lines: list[dict[str, Any]]
    stats: CoreStats
    counters: dict[str, int]
    records: int


def load_allowlist(directory: str | Path) -> tuple[dict[str, str], ...]:
    """The scenario's ``allowlist.json`` (the site's authorised equipment), if it has one."""
    path = Path(directory) / "allowlist.json"
    try:
        data = safe_json.load_path(path)
    except FileNotFoundError:
        return ()
    except (OSError, ValueError) as exc:
        _LOGGER.warning("ignoring unreadable %s: %s", path, exc)
        return ()
    entries = data.get("entries", []) if isinstance(data, dict) else []
    return tuple(
        {"match": str(e["match"]), "value": str(e["value"]), "label": str(e.get("label", ""))}
        for e in entries
        if isinstance(e, dict) and "match" in e and "value" in e
    )


def replay_fast(
    directory: str | Path,
    options: CoreOptions | None = None,
    store: Store | None = None,
    on_line: Callable[[dict[str, Any]], None] | None = None,
) -> ReplayResult:
    """Feed every record of the scenario to a fresh core; returns the alert lines and stats."""
    scenario_files(directory)  # a clear error for a directory that is not a scenario
    opts = options or CoreOptions()
    extra = load_allowlist(directory)
    if extra:
        from dataclasses import replace

        opts = replace(opts, allowlist=(*opts.allowlist, *extra))
    lines: list[dict[str, Any]] = []
    sinks: list[Callable[[dict[str, Any]], None]] = [lines.append]
    if on_line is not None:
        sinks.append(on_line)
    core = Core(store, opts, sinks=sinks)
    counters: Counter[str] = Counter()
    records = 0
    last_mono: float | None = None
    first = True
    for event in iter_scenario(directory, counters):
        if first:
            for status in statuses(directory, event.ts, event.mono, "ok", counters):
                core.handle(status)
            first = False
        core.handle(event)
        records += 1
        last_mono = event.mono
    if last_mono is not None:
        t = last_mono
        while t < last_mono + TAIL_S:
            t += 1.0
            core.tick(t)
    core.close(last_mono)
    return ReplayResult(lines, core.stats(), dict(counters), records)
