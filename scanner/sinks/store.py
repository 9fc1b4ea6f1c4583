"""The store as a sink of the core's events (the one writer), and the store as the source of
the inputs the core needs from outside (allowlist, calibration, acknowledgements, alerts left
open, the learned ambient baseline).

Each batch of events (one core step) is one transaction; a batch with an alert transition is
synced to disk before ``handle`` returns (an alert must survive a power cut). The live feed the
tablet's SSE stream tails is the store's ``events`` table, appended inside the same transaction
as the alert or health row it announces, so the page never sees an alert the store lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from scanner.core.calibration import SETTING_KEY as CALIBRATION_KEY
from scanner.core.events import (
    Acknowledge,
    AdoptAlerts,
    AlertAcknowledged,
    AlertRaised,
    AlertResolved,
    AlertTouched,
    AlertUpdated,
    AllowlistChanged,
    CalibrationChanged,
    CoreEvent,
    CoreInput,
    DeviceChanged,
    LeftOpen,
    RestoreAmbient,
    SensorHealth,
    SensorHeard,
    SettingChanged,
    SightingMinute,
)
from scanner.core.pipeline import AMBIENT_SETTING
from scanner.core.presence import calibrations_from_setting
from scanner.store import alerts as alert_store
from scanner.store.allowlist import allowlist_version, core_entry, list_entries
from scanner.store.db import Store
from scanner.store.devices import get_device, upsert_devices_in
from scanner.store.health import note_observation_in, record_status_in
from scanner.store.sightings import insert_sightings

_LOGGER = logging.getLogger(__name__)

RUN_SETTING = "core_runs"  # how many times a core has started on this store
HANDSET = "handset"
UNIDENTIFIED = "unidentified_transmitter"
# Alerts an earlier run can have left open: one of each kind is kept open, so a handful at most;
# the bound only stops a damaged store from flooding the core at start.
MAX_LEFT_OPEN = 1000

_ALERT_EVENTS = (AlertRaised, AlertUpdated, AlertAcknowledged, AlertResolved)


class StoreSink:
    """Writes the core's events to the store, one transaction per batch."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def handle(self, events: Sequence[CoreEvent]) -> None:
        if not events:
            return
        durable = any(isinstance(e, _ALERT_EVENTS) for e in events)
        store = self.store
        with store.write(durable=durable) as conn:
            devices: list[dict[str, Any]] = []
            sightings: list[dict[str, Any]] = []
            for event in events:
                if isinstance(event, DeviceChanged):
                    devices.append(dict(event.device))
                elif isinstance(event, SightingMinute):
                    sightings.append(event.to_row())
                elif isinstance(event, SensorHeard):
                    note_observation_in(conn, event.sensor, event.ts)
                elif isinstance(event, SensorHealth):
                    record_status_in(store, conn, event.status)
                elif isinstance(event, SettingChanged):
                    store.set_setting(conn, event.key, event.value)
                elif isinstance(event, AlertRaised):
                    a = event.alert
                    record = alert_store.AlertRecord(
                        id=a.id,
                        kind=a.kind,
                        state="open",
                        title=a.title,
                        raised_ts=a.raised_ts,
                        updated_ts=a.raised_ts,
                        confidence=a.confidence,
                        handsets=a.handsets,
                        sensors=list(a.sensors),
                        reasons=list(a.reasons),
                        device_ids=list(a.device_ids),
                    )
                    alert_store.insert_alert(store, conn, record)
                elif isinstance(event, AlertUpdated):
                    a = event.alert
                    alert_store.update_alert_in(
                        store,
                        conn,
                        a.id,
                        event.ts,
                        confidence=a.confidence,
                        handsets=a.handsets,
                        sensors=list(a.sensors),
                        reasons=list(a.reasons),
                        device_ids=list(a.device_ids),
                        duration_s=a.duration_s,
                        title=a.title,
                    )
                elif isinstance(event, AlertTouched):
                    alert_store.touch_alert_in(conn, event.alert_id, event.ts, event.duration_s)
                elif isinstance(event, AlertAcknowledged):
                    # The tablet's acknowledgement is already stored (the API wrote it, and
                    # the first one is kept); a simulated guard's is stored here.
                    alert_store.acknowledge_alert_in(
                        store, conn, event.alert.id, event.ts, event.by, event.note
                    )
                elif isinstance(event, AlertResolved):
                    alert_store.resolve_alert_in(
                        store,
                        conn,
                        event.alert.id,
                        event.ts,
                        event.resolution,
                        event.alert.duration_s,
                    )
            if devices:
                upsert_devices_in(conn, devices)
            if sightings:
                insert_sightings(conn, sightings)


class StoreInputs:
    """Reads what the core must be told from the store: at start, and when polled."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._allowlist_version: int | None = None
        self._calibration: Any = None

    def next_run(self) -> str:
        """Count this start in the store and return its number, as a tag for device ids."""
        store = self.store
        with store.write() as conn:
            runs = store.get_setting(RUN_SETTING, 0)
            run = (runs if isinstance(runs, int) and runs >= 0 else 0) + 1
            store.set_setting(conn, RUN_SETTING, run)
        return str(run)

    def at_start(self) -> list[CoreInput]:
        """Everything a core starting over this store takes over from the previous run."""
        inputs: list[CoreInput] = [RestoreAmbient(self.store.get_setting(AMBIENT_SETTING))]
        left = self.left_open()
        if left:
            inputs.append(AdoptAlerts(left))
        inputs.extend(self.poll((), force=True))
        return inputs

    def poll(self, unacknowledged: Sequence[str], force: bool = False) -> list[CoreInput]:
        """Changes since the last poll; acknowledgements of the given open alerts."""
        store = self.store
        inputs: list[CoreInput] = []
        version = allowlist_version(store)
        if force or version != self._allowlist_version:
            self._allowlist_version = version
            entries = tuple(core_entry(e) for e in list_entries(store))
            inputs.append(AllowlistChanged(entries))
        calibration = store.get_setting(CALIBRATION_KEY)
        if force or calibration != self._calibration:
            self._calibration = calibration
            inputs.append(CalibrationChanged(calibrations_from_setting(calibration)))
        for alert_id in unacknowledged:
            try:
                record = alert_store.get_alert(store, alert_id)
            except alert_store.AlertNotFoundError:
                continue
            if record.acked_ts is not None:
                inputs.append(
                    Acknowledge(
                        alert_id, record.acked_ts, record.acked_by or "", record.ack_note or ""
                    )
                )
        return inputs

    def left_open(self) -> tuple[LeftOpen, ...]:
        """The alerts an earlier run left open, with the identifiers of their devices."""
        store = self.store
        out: list[LeftOpen] = []
        for rec in alert_store.list_alerts(store, state="open", limit=MAX_LEFT_OPEN):
            if rec.kind not in (HANDSET, UNIDENTIFIED):
                continue
            keys: set[str] = set()
            fingerprints: set[str] = set()
            for device_id in rec.device_ids:
                if device_id.startswith("sdr:"):
                    keys.add(device_id)
                    continue
                row = get_device(store, device_id)
                if row is None:
                    continue
                ids = row["identifiers"]
                keys.update(f"wifi:{m}" for m in ids.get("macs", ()))
                keys.update(f"ble:{a}" for a in ids.get("ble", ()))
                fingerprints.update(ids.get("fingerprints", ()))
            out.append(
                LeftOpen(
                    id=rec.id,
                    kind=rec.kind,
                    raised_ts=rec.raised_ts,
                    duration_s=float(rec.duration_s or 0.0),
                    handsets=rec.handsets,
                    sensors=tuple(rec.sensors),
                    reasons=tuple(rec.reasons),
                    device_ids=tuple(rec.device_ids),
                    confidence=rec.confidence,
                    acknowledged=rec.acknowledged,
                    keys=frozenset(keys),
                    fingerprints=frozenset(fingerprints),
                )
            )
        return tuple(out)
