"""`checkpoint calibrate phones|boundary|inside|show|apply`: measure the zone with a named phone.

``phones`` listens (``--seconds``, or reads ``--recording DIR``) and lists the phones heard
steadily, numbered, in words. ``boundary`` and ``inside`` measure the reference phone picked from
that list (``--phone N``, needed once) carried as ``--carry hand|pocket``, and keep its level per
sensor as a pending measurement; a phase that heard something else is refused. ``apply`` says per
sensor what it set and what it could not, and fails when it set nothing; ``show`` prints what is
stored and pending.
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
        if args.phase == "phones":
            return _phones(args, store)
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


def _placements(args: argparse.Namespace) -> dict[str, str]:
    """The zone's ``[[sensors]]``: the recording's site.toml, else the configuration's."""
    if args.recording:
        from scanner.sim.run import load_site

        return load_site(args.recording).placements
    try:
        return {s.name: s.placement for s in load_config(args.config).sensors}
    except ConfigError:
        return {}


def _events(args: argparse.Namespace, store: Any) -> tuple[Iterator[SourceEvent], Any]:
    from scanner.core.allowlist import Allowlist

    if args.recording:
        from scanner.sim.run import load_allowlist, load_site
        from scanner.sources.replay import iter_scenario

        allowlist = Allowlist(load_allowlist(args.recording))
        # Each sensor's clock offset applied, so one transmission's copies line up.
        offsets = load_site(args.recording).clock_offsets_s
        events: Iterator[SourceEvent] = iter_scenario(args.recording, None, offsets)
    else:
        allowlist = Allowlist(_config_allowlist(args.config))
        events = _listen(args.config, args.seconds)
    from scanner.store.allowlist import list_entries

    allowlist.set_stored(
        [{"match": e.match, "value": e.value, "label": e.label} for e in list_entries(store)]
    )
    return events, allowlist


def _phones(args: argparse.Namespace, store: Any) -> int:
    from scanner.core import calibration as cal

    events, allowlist = _events(args, store)
    found = cal.candidates(events, allowlist)
    if not found:
        raise cal.CalibrationError(
            "no phone was heard steadily; hold the reference phone near the sensor with its "
            "screen on, Wi-Fi and Bluetooth on, and list again"
        )
    pending = store.get_setting(cal.PENDING_KEY, {}) or {}
    pending["candidates"] = [c.to_dict() for c in found]
    with store.write() as conn:
        store.set_setting(conn, cal.PENDING_KEY, pending)
    for n, c in enumerate(found, 1):
        sys.stdout.write(f"{n}. {c.label}: {c.level:g} dBm ({c.samples} heard)\n")
    sys.stdout.write("pick the reference phone with: checkpoint calibrate boundary --phone N\n")
    return 0


def _reference(args: argparse.Namespace, pending: dict[str, Any]) -> dict[str, Any]:
    from scanner.core import calibration as cal

    if args.phone is None:
        ref = pending.get("reference")
        if not isinstance(ref, dict):
            raise cal.CalibrationError(
                "name the reference phone: `checkpoint calibrate phones`, then --phone N"
            )
        return ref
    listed = pending.get("candidates") or []
    picked: list[dict[str, Any]] = []
    # One phone may be listed twice (its Wi-Fi and its BLE): "--phone 1,3" takes both.
    for part in str(args.phone).split(","):
        try:
            n = int(part)
            if n < 1:
                raise IndexError(n)
            picked.append(listed[n - 1])
        except (ValueError, IndexError, TypeError):
            raise cal.CalibrationError(
                f"--phone {args.phone}: pick numbers from `checkpoint calibrate phones` "
                f"(1..{len(listed)})"
            ) from None
    ref = {
        "label": " + ".join(str(p["label"]) for p in picked),
        "identities": [i for p in picked for i in p["identities"]],
    }
    if pending.get("reference") != ref:
        # Another phone: what was measured with the previous one no longer applies.
        for phase in cal.PHASES:
            pending.pop(phase, None)
    pending["reference"] = ref
    return ref


def _measure(args: argparse.Namespace, store: Any) -> int:
    from scanner.core import calibration as cal

    pending = store.get_setting(cal.PENDING_KEY, {}) or {}
    ref = _reference(args, pending)
    events, allowlist = _events(args, store)
    heard = list(events)
    found = cal.measure(heard, allowlist, ref["identities"])
    difference = cal.measure_difference(heard, _placements(args), ref["identities"], allowlist)
    if difference is not None:
        found[difference.sensor] = difference
    if not found:
        raise cal.CalibrationError(
            f"{ref['label']} was not heard steadily; is its screen on and Wi-Fi/Bluetooth on?"
        )
    phase = pending.get(args.phase)
    if not isinstance(phase, dict) or not all(k in cal.CARRIES for k in phase):
        phase = {}
    phase[args.carry] = {s: m.to_dict() for s, m in found.items()}
    pending[args.phase] = phase
    with store.write() as conn:
        store.set_setting(conn, cal.PENDING_KEY, pending)
    sys.stdout.write(f"reference phone: {ref['label']}\n")
    for m in found.values():
        sys.stdout.write(
            f"{args.phase} ({args.carry}): {m.sensor} ({m.radio}) {m.level:g} from {m.source} "
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
    outcomes = cal.combine_all(pending)
    value = {o.sensor: o.calibration.to_dict() for o in outcomes if o.calibration is not None}
    for o in outcomes:
        if o.calibration is None:
            sys.stdout.write(f"{o.sensor}: NOT SET: {o.note}\n")
            continue
        t = o.calibration.thresholds()
        sys.stdout.write(f"{o.sensor}: set enter {t.enter_dbm:g}, exit {t.exit_dbm:g} ({o.note})\n")
    if not value:
        sys.stderr.write("checkpoint calibrate: nothing was applied; see above and walk again\n")
        return 1
    now = time.time()
    with store.write(durable=True) as conn:
        store.set_setting(conn, cal.SETTING_KEY, value)
        store.set_setting(conn, cal.PENDING_KEY, {})
        append_audit(conn, now, "calibrate", "zone.calibrate", {"zone_calibration": value})
        store.add_event(conn, now, "zone", {"zone_calibration": value})
    unset = [o.sensor for o in outcomes if o.calibration is None]
    if unset:
        sys.stderr.write(
            f"checkpoint calibrate: {', '.join(unset)} kept the defaults (see above)\n"
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
