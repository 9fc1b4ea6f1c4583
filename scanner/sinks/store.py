"""The store as a sink of the core's events (the one writer), and the store as the source of
the inputs the core needs from outside (allowlist, calibration, acknowledgements, alerts left
open, the learned ambient baseline).

Each batch of events (one core step) is one transaction; a batch with an alert transition is
synced to disk before ``handle`` returns (an alert must survive a power cut).

A write the store refuses (locked by another writer beyond the busy timeout, an I/O error, a full
disk) does not stop the core and loses nothing: the batch waits in a bounded pending list
(``scanner.sinks.held``, as the evidence keeper's rows do) and is written, oldest first, before
anything newer, on the next batch or the next tick. Meanwhile the sink says why in its health
(and the store sensor's row says so once it can be written); only past the bound are the oldest
non-alert events dropped, and counted. The live feed the tablet's SSE stream tails is the
store's ``events`` table, appended inside the same transaction as the alert or health row it
announces, so the page never sees an alert the store lost. After each commit that added rows to
that feed the sink calls ``on_feed`` (the core's ``FeedBell``): the API then reads the new rows at
once instead of at its next poll of the store.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, cast

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
from scanner.observations import Radio, SensorState, SensorStatus
from scanner.sinks.held import RETRY_EVERY_S, HeldBatches
from scanner.store import alerts as alert_store
from scanner.store.allowlist import allowlist_version, core_entry, list_entries
from scanner.store.db import Store
from scanner.store.devices import get_device, upsert_devices_in
from scanner.store.health import note_observation_in, record_status_in
from scanner.store.retention import STORE_SENSOR
from scanner.store.sightings import insert_sightings

_LOGGER = logging.getLogger(__name__)

RUN_SETTING = "core_runs"  # how many times a core has started on this store
HANDSET = "handset"
UNIDENTIFIED = "unidentified_transmitter"
# Alerts an earlier run can have left open: one of each kind is kept open, so a handful at most;
# the bound only stops a damaged store from flooding the core at start.
MAX_LEFT_OPEN = 1000

_ALERT_EVENTS = (AlertRaised, AlertUpdated, AlertAcknowledged, AlertResolved)


def _is_alert_event(event: CoreEvent) -> bool:
    """Alert transitions are held whatever the bound: only the other events are dropped."""
    return isinstance(event, _ALERT_EVENTS)


# What this sink writes; anything else in a batch (alarm cues, evidence requests) is another
# sink's and is not held while the store fails.
_STORED = (
    DeviceChanged,
    SightingMinute,
    SensorHeard,
    SensorHealth,
    SettingChanged,
    AlertTouched,
    *_ALERT_EVENTS,
)

# Events held while the store refuses writes. A replay of the simulator's "crowded" profile
# (34 transmitters in 10 minutes) gave this sink 1,882 events, 3.1 a second: about 0.09 a
# second per transmitter (device changes, a sighting row a minute) plus each sensor's
# heard-mark a second. A busy gate with 300 transmitters about makes some 30 a second, so
# 30,000 is a quarter of an hour of it (hours of an ordinary one): time for an operator to free
# the disk or stop a stuck writer. An event pickles to about 200 bytes (a few times that as
# Python objects), so the bound costs the core some tens of MB at most.
MAX_PENDING_EVENTS = 30_000


def _ts_of(batch: Sequence[CoreEvent]) -> float:
    """When a batch happened (wall time), for the start of an outage."""
    for event in batch:
        ts = getattr(event, "ts", None)
        if isinstance(event, SensorHealth):
            ts = event.status.ts
        if isinstance(ts, int | float):
            return float(ts)
    return time.time()


class StoreSink:
    """Writes the core's events to the store, one transaction per batch.

    A batch the store refuses is held and written first on the next attempt; ``health()`` says
    what is held and why (see the module's docstring).
    """

    def __init__(
        self,
        store: Store,
        max_pending: int = MAX_PENDING_EVENTS,
        retry_every_s: float = RETRY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        on_feed: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.on_feed = on_feed
        self.counters: Counter[str] = Counter()
        self.held: HeldBatches[CoreEvent] = HeldBatches(
            store,
            self._write_and_tell,
            max_pending,
            noun="events",
            counters=self.counters,
            keep=_is_alert_event,
            retry_every_s=retry_every_s,
            clock=clock,
            on_failure=self._failed,
            on_recovered=self._recovered,
        )
        # Since when writes fail (wall time of the first refused batch); None: well.
        self.failing_since: float | None = None
        self._degraded_written = False  # the store sensor's row says so
        self._before: tuple[str, str] | None = None  # its state and message before that

    @property
    def failure(self) -> str | None:
        """Why writes fail ("disk full", "database locked", ...); None: well."""
        return self.held.failure

    @property
    def pending_events(self) -> int:
        return self.held.held

    def handle(self, events: Sequence[CoreEvent]) -> None:
        self.held.hold([e for e in events if isinstance(e, _STORED)])
        self.flush()

    def retry(self) -> None:
        """Time passed without a batch (the core's tick): write what is held, if it is time."""
        if self.held:
            self.flush()

    def flush(self, force: bool = False) -> bool:
        """Write what is held, oldest first; True when nothing is left held.

        While failing, an attempt is made at most every ``retry_every_s`` unless ``force``.
        """
        return self.held.flush(force)

    def health(self) -> dict[str, Any]:
        """For the core's runtime health: ``ok``, or ``degraded`` with why and what is held."""
        return {
            "state": "ok" if self.failure is None else "degraded",
            "message": self._message(),
            "failing_since": self.failing_since,
            "pending_events": self.pending_events,
            "write_failures": self.counters["write_failures"],
            "dropped_events": self.counters["dropped_events"],
            "rejected_events": self.counters["rejected_events"],
        }

    def _message(self) -> str:
        if self.failure is None:
            return "writing"
        dropped = self.counters["dropped_events"]
        more = f", {dropped} oldest non-alert events dropped" if dropped else ""
        return (
            f"{self.failure}: cannot write; {self.pending_events} events held{more}, "
            f"retrying every {self.held.retry_every_s:g} s"
        )

    def _failed(self, batch: Sequence[CoreEvent], first: bool) -> None:
        if first:
            self.failing_since = _ts_of(batch)
        if not self._degraded_written:
            # Best effort: a store locked by another writer refuses this too, but a full disk
            # can still take an update of an existing row.
            self._degraded_written = self._record_store_state(
                SensorState.DEGRADED, self._message(), self.failing_since
            )

    def _recovered(self) -> None:
        since = self.failing_since
        failure = self.failure or "store failure"
        self.failing_since = None
        # The store sensor's history shows the outage: degraded from its start, then back to
        # what it said before (retention's state) once the held events are in.
        if not self._degraded_written:
            self._record_store_state(
                SensorState.DEGRADED,
                f"{failure}: could not write from this time; the held events were written later",
                since,
            )
        state, message = self._before or (SensorState.OK, "writing")
        self._record_store_state(SensorState(state), message, time.time(), restore=True)
        self._degraded_written = False
        self._before = None

    def _record_store_state(
        self, state: SensorState, message: str, ts: float | None, restore: bool = False
    ) -> bool:
        """The store sensor's row (shared with retention: its counters and detail are kept)."""
        store = self.store
        try:
            with store.write() as conn:
                row = conn.execute(
                    "SELECT state, message, counters, detail FROM sensor_health WHERE sensor = ?",
                    (STORE_SENSOR,),
                ).fetchone()
                counters: dict[str, int] = {}
                detail: dict[str, Any] = {}
                if row is not None:
                    counters = {k: int(v) for k, v in json.loads(row["counters"]).items()}
                    detail = dict(json.loads(row["detail"]))
                    if not restore and self._before is None:
                        self._before = (str(row["state"]), str(row["message"]))
                for key in ("write_failures", "dropped_events", "rejected_events"):
                    counters[f"sink_{key}"] = self.counters[key]
                record_status_in(
                    store,
                    conn,
                    SensorStatus(
                        ts=time.time() if ts is None else ts,
                        mono=self.held.clock(),
                        sensor=STORE_SENSOR,
                        # sensor_health.radio is free text; the store is shown beside radios.
                        radio=cast(Radio, STORE_SENSOR),
                        state=state,
                        message=message,
                        counters=counters,
                        detail=detail,
                    ),
                )
        except sqlite3.Error as exc:
            _LOGGER.debug("cannot record the store's state (%s)", exc)
            return False
        return True

    def _write_and_tell(self, events: Sequence[CoreEvent]) -> None:
        """One batch; once committed, the word that the live feed has new rows (if it has)."""
        if self._write(events) and self.on_feed is not None:
            try:
                # Committed: the API may read it now (an alarm waits for nothing else).
                self.on_feed()
            except Exception:
                # Written is written: a failed word must not have the batch written again.
                self.counters["feed_word_errors"] += 1
                _LOGGER.exception("telling the API of new feed rows failed; it polls the store")

    def _write(self, events: Sequence[CoreEvent]) -> bool:
        """One batch in one transaction; True when it added rows to the live feed."""
        durable = any(isinstance(e, _ALERT_EVENTS) for e in events)
        fed = durable  # every alert transition is announced on the feed
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
                    # Announced on the feed only when the sensor's state or message changed.
                    fed = record_status_in(store, conn, event.status) or fed
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
        return fed


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
            entries = tuple(core_entry(e) for e in list_entries(store))
            # Marked read only once read: a read that fails is tried again on the next poll.
            self._allowlist_version = version
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
