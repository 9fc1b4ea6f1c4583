"""`checkpoint calibrate boundary|inside|show|apply`: measure the zone with a known phone.

``boundary`` and ``inside`` listen for ``--seconds`` to the radios the config enables (or read a
scenario directory given with ``--recording``) and keep the strongest steady transmitter's
level per sensor as a pending measurement. ``apply`` turns the two into the per-sensor
``zone_calibration`` setting the core uses; ``show`` prints what is stored and pending.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scanner.config import ConfigError, load_config
from scanner.errors import CheckpointError
from scanner.observations import SourceEvent


def run(args: argparse.Namespace) -> int:
    from scanner.core import calibration as cal
    from scanner.store.db import Store, StoreError

    try:
        store = Store(_db_path(args))
    except (StoreError, ConfigError, OSError) as exc:
        sys.stderr.write(f"checkpoint calibrate: {exc}\n")
        return 1
    try:
        if args.phase in cal.PHASES:
            return _measure(args, store)
        if args.phase == "apply":
            return _apply(store)
        return _show(store)
    except (cal.CalibrationError, CheckpointError, ConfigError) as exc:
        sys.stderr.write(f"checkpoint calibrate: {exc}\n")
        return 1
    finally:
        store.close()


def _db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    return load_config(args.config).db_path


def _measure(args: argparse.Namespace, store: Any) -> int:
    from scanner.core import calibration as cal
    from scanner.core.allowlist import Allowlist

    if args.recording:
        from scanner.sim.run import load_allowlist
        from scanner.sources.replay import iter_scenario

        allowlist = Allowlist(load_allowlist(args.recording))
        events: Iterator[SourceEvent] = iter_scenario(args.recording)
    else:
        allowlist = Allowlist(_config_allowlist(args.config))
        events = _listen(args.config, args.seconds)
    from scanner.store.allowlist import list_entries

    allowlist.set_stored(
        [{"match": e.match, "value": e.value, "label": e.label} for e in list_entries(store)]
    )
    found = cal.measure(events, allowlist)
    if not found:
        raise cal.CalibrationError(
            "no transmitter was heard steadily; is the phone's screen on and Wi-Fi/Bluetooth on?"
        )
    pending = store.get_setting(cal.PENDING_KEY, {}) or {}
    pending[args.phase] = {s: m.to_dict() for s, m in found.items()}
    with store.write() as conn:
        store.set_setting(conn, cal.PENDING_KEY, pending)
    for m in found.values():
        sys.stdout.write(
            f"{args.phase}: {m.sensor} ({m.radio}) {m.level:g} from {m.source} "
            f"({m.samples} samples)\n"
        )
    return 0


def _config_allowlist(config_path: str) -> tuple[dict[str, str], ...]:
    from scanner.core.options import CoreOptions

    try:
        return CoreOptions.from_mapping(load_config(config_path).section("core")).allowlist
    except ConfigError:
        return ()


def _listen(config_path: str, seconds: float) -> Iterator[SourceEvent]:
    """Everything the configured radios hear for ``seconds``."""
    from scanner.clock import SYSTEM_CLOCK
    from scanner.runtime.build import source_builder

    config = load_config(config_path)
    heard: list[SourceEvent] = []
    lock = threading.Lock()

    def sink(event: SourceEvent) -> None:
        with lock:
            heard.append(event)

    sources = []
    for radio in ("wifi", "ble", "sdr"):
        if config.enabled(radio):
            make, _probe = source_builder(radio, config.section(radio), SYSTEM_CLOCK)
            sources.append(make(sink))
    if not sources:
        raise ConfigError("no radio is enabled in the config")
    for source in sources:
        source.start()
    try:
        time.sleep(seconds)
    finally:
        for source in sources:
            source.stop()
    with lock:
        return iter(list(heard))


def _apply(store: Any) -> int:
    from scanner.core import calibration as cal
    from scanner.store.chain import append_audit

    pending = store.get_setting(cal.PENDING_KEY, {}) or {}
    calibrations = cal.combine(pending)
    value = {s: c.to_dict() for s, c in calibrations.items()}
    now = time.time()
    with store.write(durable=True) as conn:
        store.set_setting(conn, cal.SETTING_KEY, value)
        store.set_setting(conn, cal.PENDING_KEY, {})
        append_audit(conn, now, "calibrate", "zone.calibrate", {"zone_calibration": value})
        store.add_event(conn, now, "zone", {"zone_calibration": value})
    for sensor, c in calibrations.items():
        t = c.thresholds()
        sys.stdout.write(
            f"{sensor}: boundary {c.boundary_dbm:g}, inside {c.inside_dbm:g} -> "
            f"enter {t.enter_dbm:g}, exit {t.exit_dbm:g}\n"
        )
    return 0


def _show(store: Any) -> int:
    from scanner.core import calibration as cal
    from scanner.core.presence import calibrations_from_setting

    stored = store.get_setting(cal.SETTING_KEY, {}) or {}
    thresholds = {s: c.thresholds().to_dict() for s, c in calibrations_from_setting(stored).items()}
    out = {
        "zone_calibration": stored,
        "thresholds": thresholds,
        "pending": store.get_setting(cal.PENDING_KEY, {}) or {},
    }
    sys.stdout.write(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0
