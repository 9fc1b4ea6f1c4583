"""Running the core over a scenario as fast as it goes: what replay and eval share.

A scenario brings its own site: ``site.toml`` (the installer's configuration: ``[core]``
calibration and allowlist, ``[[sensors]]`` names and placements) and ``allowlist.json``. A
``--config`` file given on the command line replaces the scenario's ``site.toml``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scanner import safe_json
from scanner.config import Config, ConfigError, load_config
from scanner.core.options import CoreOptions
from scanner.core.pipeline import Core, CoreStats
from scanner.observations import SensorState
from scanner.runtime.core_runner import CoreRunner, SimulatedGuard
from scanner.sinks import Sink
from scanner.sinks.evidence import EvidenceKeeper, keeper_for_scenario
from scanner.sinks.ndjson import NdjsonSink
from scanner.sinks.store import StoreInputs, StoreSink
from scanner.sources.replay import iter_scenario, scenario_files, statuses
from scanner.store.db import Store

_LOGGER = logging.getLogger(__name__)

# Time kept running after the last record so silence can resolve what is open.
TAIL_S = 60.0
# FORMATS.md: the guard acknowledges an alarm this long after it starts unless told otherwise.
DEFAULT_ACK_AFTER_S = 20.0


@dataclass(frozen=True, slots=True)
class ReplayResult:
    lines: list[dict[str, Any]]
    stats: CoreStats
    counters: dict[str, int]
    records: int


@dataclass(frozen=True, slots=True)
class Site:
    """What a scenario's site configuration tells the core."""

    options: CoreOptions
    outside: frozenset[str]  # sensors placed outside the zone
    clock_offsets_s: dict[str, float]
    placements: dict[str, str] = field(default_factory=dict)  # every [[sensors]] name


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
    # An entry's optional expiry and model fingerprint (accounting) come along as the
    # configuration's would.
    return tuple(
        {
            "match": str(e["match"]),
            "value": str(e["value"]),
            "label": str(e.get("label", "")),
            **{k: str(e[k]) for k in ("expires_ts", "fingerprint") if e.get(k) is not None},
        }
        for e in entries
        if isinstance(e, dict) and "match" in e and "value" in e
    )


def load_site(
    directory: str | Path,
    config: str | Path | None = None,
    options: CoreOptions | None = None,
    only: frozenset[str] | None = None,
) -> Site:
    """The site of a scenario: ``config`` if given, else its own ``site.toml`` if any.

    ``options`` (a caller's own core options) win over the configuration's ``[core]``; ``only``
    keeps just the named sensors (the others as if never installed). Raises ``ConfigError``
    for a configuration that does not parse.
    """
    path = Path(config) if config is not None else Path(directory) / "site.toml"
    cfg: Config | None = None
    if config is not None or path.is_file():
        cfg = load_config(path)
    if options is None:
        try:
            options = CoreOptions.from_mapping(cfg.section("core")) if cfg else CoreOptions()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: [core]: {exc}") from exc
    extra = load_allowlist(directory)
    if extra:
        options = replace(options, allowlist=(*options.allowlist, *extra))
    sensors = tuple(s for s in (cfg.sensors if cfg else ()) if only is None or s.name in only)
    return Site(
        options=options,
        outside=frozenset(s.name for s in sensors if s.placement == "outside"),
        clock_offsets_s={s.name: s.clock_offset_s for s in sensors if s.clock_offset_s},
        placements={s.name: s.placement for s in sensors},
    )


def replay_fast(
    directory: str | Path,
    options: CoreOptions | None = None,
    store: Store | None = None,
    on_line: Callable[[dict[str, Any]], None] | None = None,
    *,
    ack_after_s: float = DEFAULT_ACK_AFTER_S,
    config: str | Path | None = None,
    sinks: Sequence[Sink] = (),
    only_sensors: frozenset[str] | None = None,
) -> ReplayResult:
    """Feed every record of the scenario to a fresh core; returns the alert lines and stats.

    ``ack_after_s`` plays the guard of FORMATS.md (0: nobody acknowledges); ``sinks`` get
    every event besides the alert lines (the handset counts, say); ``only_sensors`` replays
    just those sensors of a several-sensor scenario (the other folders ignored).
    """
    scenario_files(directory)  # a clear error for a directory that is not a scenario
    site = load_site(directory, config, options, only_sensors)
    lines: list[dict[str, Any]] = []
    all_sinks: list[Sink] = [NdjsonSink(lines.append)]
    if on_line is not None:
        all_sinks.append(NdjsonSink(on_line))
    inputs = None
    run_tag = ""
    taps: list[EvidenceKeeper] = []
    if store is not None:
        all_sinks.append(StoreSink(store))
        inputs = StoreInputs(store)
        run_tag = inputs.next_run()
        # The evidence behind each alert, kept as live capture keeps it.
        taps.append(keeper_for_scenario(store, directory))
        all_sinks.append(taps[0])
    all_sinks.extend(sinks)
    core = Core(
        site.options,
        run_tag=run_tag,
        # Sighting minutes are only kept by the store: without one, not worth aggregating.
        sightings=store is not None,
        outside_sensors=site.outside,
        placements=site.placements,
    )
    guard = SimulatedGuard(ack_after_s) if ack_after_s > 0 else None
    runner = CoreRunner(core, all_sinks, inputs, guard, taps=taps)
    counters: Counter[str] = Counter()
    records = 0
    last_mono: float | None = None
    first = True
    for event in iter_scenario(directory, counters, site.clock_offsets_s, only_sensors):
        if first:
            ok = SensorState.OK
            for status in statuses(directory, event.ts, event.mono, ok, counters, only_sensors):
                runner.handle(status)
            first = False
        runner.handle(event)
        records += 1
        last_mono = event.mono
    if last_mono is not None:
        runner.run_out(last_mono, TAIL_S)
    runner.close(last_mono)
    return ReplayResult(lines, core.stats(), dict(counters), records)
