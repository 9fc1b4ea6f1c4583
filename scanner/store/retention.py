"""Retention: keep the store inside its age limits and its disk budget, so the SD card never
fills, and shed observation detail long before any alert could be lost.

Two mechanisms, run together by ``enforce`` (the core calls it every few minutes):

1. Age limits per table (days): evidence (behind alerts: longer than sightings), sightings,
   events, devices not seen for long, health log. Routine housekeeping, counted but not a
   health problem.
2. The disk budget (bytes, the database plus its WAL). Above ``high_water`` of the budget rows
   are shed until the store is back under ``low_water``, in this order, oldest first:

   1. evidence not tied to an alert          (raw frames nobody will ask about)
   2. sightings of devices behind no alert
   3. sightings of devices behind alerts
   4. evidence behind alerts, a whole alert's at a time, oldest first (it outlives sightings)
   5. live events older than ``min_event_age_s`` (the tablet's reconnect window)
   6. devices behind no alert, not seen for ``min_device_age_s``

   Alerts, alert history, audit, health log, allowlist, settings and users are never shed.
   Shedding turns the ``store`` health row degraded, with counters of what was shed, until
   ``clear_after_s`` passes without shedding.

Space comes back to the file system through incremental vacuum; the database is switched to
``auto_vacuum = INCREMENTAL`` once (which needs one full VACUUM), when there is room to do it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from scanner.observations import Radio, SensorState, SensorStatus
from scanner.store.db import Store
from scanner.store.health import record_status
from scanner.store.integrity import IntegrityResult

_LOGGER = logging.getLogger(__name__)

DAY_S = 86400.0
STORE_SENSOR = "store"
# Rows per DELETE: small enough that the core's next write waits milliseconds, not seconds.
BATCH_ROWS = 500
# The WAL is truncated back to this share of the budget after each checkpoint.
WAL_SHARE = 0.02
# The one-time switch to incremental vacuum rewrites the file; above this size it is skipped.
MAX_VACUUM_BYTES = 256 * 1024 * 1024
# Safety valve: a shedding pass never loops forever if deletes stop freeing space.
MAX_PASSES_PER_TIER = 500


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Age limits (days) and the disk budget (bytes); read from the ``[store]`` section."""

    evidence_days: float = 30.0  # raw records no alert asked for
    # Evidence behind an alert outlives the raw sightings: an inquiry into an incident can come
    # months after it, and the frames are what show which phone it was. Kept per whole alert,
    # so an alert's evidence is all there or all gone (its chained digest covers all of it).
    alert_evidence_days: float = 180.0
    sightings_days: float = 90.0
    events_days: float = 7.0
    devices_days: float = 90.0
    health_log_days: float = 400.0
    budget_bytes: int = 2 * 1024**3
    high_water: float = 0.85  # shed when the store passes this share of the budget...
    low_water: float = 0.70  # ...down to this share, so shedding is rare and in bulk
    min_event_age_s: float = 3600.0
    min_device_age_s: float = 3600.0
    clear_after_s: float = 3600.0

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> RetentionPolicy:
        """From the config's ``[store]`` section: ``budget_mb`` and ``*_days`` keys."""
        known = set(cls.__dataclass_fields__)
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key == "budget_mb":
                values["budget_bytes"] = int(float(value) * 1024 * 1024)
            elif key in known:
                values[key] = type(getattr(cls(), key))(value)
        policy = cls(**values)
        if not 0 < policy.low_water < policy.high_water <= 1:
            raise ValueError("store retention: need 0 < low_water < high_water <= 1")
        if policy.budget_bytes <= 0:
            raise ValueError("store retention: budget must be positive")
        return policy


@dataclass(slots=True)
class RetentionReport:
    """What one ``enforce`` run did."""

    size_before: int = 0
    size_after: int = 0
    growth: int = 0  # bytes the store grew since the previous run
    expired: dict[str, int] = field(default_factory=dict)
    shed: dict[str, int] = field(default_factory=dict)
    over_budget: bool = False
    vacuumed: bool = False
    converted_auto_vacuum: bool = False

    @property
    def shed_rows(self) -> int:
        return sum(self.shed.values())


def store_bytes(store: Store) -> int:
    """The store's footprint on disk: the database file, its WAL and shared-memory index."""
    if store.path == ":memory:":
        row = store.query("SELECT * FROM pragma_page_count(), pragma_page_size()")[0]
        return int(row[0]) * int(row[1])
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += Path(store.path + suffix).stat().st_size
        except FileNotFoundError:
            continue
    return total


def _live_bytes(store: Store) -> int:
    """Bytes the rows occupy (pages not on the free list): what shedding reduces. The WAL is
    kept small by checkpoints and ``journal_size_limit`` and is left out, since it holds copies
    of pages that shedding frees anyway."""
    row = store.query(
        "SELECT * FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()"
    )[0]
    return (int(row[0]) - int(row[1])) * int(row[2])


def _delete(store: Store, sql: str, params: tuple[Any, ...]) -> int:
    with store.write() as conn:
        return int(conn.execute(sql, params).rowcount)


# (counter name, statement deleting up to :limit of the oldest rows in the tier)
_TIERS: tuple[tuple[str, str], ...] = (
    (
        "evidence_unlinked",
        "DELETE FROM evidence WHERE id IN (SELECT id FROM evidence WHERE alert_id IS NULL "
        "ORDER BY ts LIMIT :limit)",
    ),
    (
        "sightings_unlinked",
        "DELETE FROM sightings WHERE id IN (SELECT id FROM sightings WHERE device_id NOT IN "
        "(SELECT DISTINCT value FROM alerts, json_each(alerts.device_ids)) "
        "ORDER BY first_ts LIMIT :limit)",
    ),
    (
        "sightings_alert",
        "DELETE FROM sightings WHERE id IN "
        "(SELECT id FROM sightings ORDER BY first_ts LIMIT :limit)",
    ),
    # After the sightings: the evidence behind alerts outlives them (see RetentionPolicy),
    # the oldest alert's all at once.
    (
        "evidence_alert",
        "DELETE FROM evidence WHERE alert_id IN (SELECT alert_id FROM evidence "
        "WHERE alert_id IS NOT NULL GROUP BY alert_id ORDER BY MIN(ts) LIMIT 1)",
    ),
    (
        "events",
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < :cutoff_events "
        "ORDER BY id LIMIT :limit)",
    ),
    (
        "devices",
        "DELETE FROM devices WHERE id IN (SELECT id FROM devices WHERE last_seen < "
        ":cutoff_devices AND in_zone = 0 AND id NOT IN "
        "(SELECT DISTINCT value FROM alerts, json_each(alerts.device_ids)) "
        "ORDER BY last_seen LIMIT :limit)",
    ),
)


_WHOLE_ALERT_TIERS = frozenset({"evidence_alert"})


def enforce(
    store: Store,
    policy: RetentionPolicy,
    now: float | None = None,
    integrity: IntegrityResult | None = None,
) -> RetentionReport:
    """Apply the age limits, then the disk budget; report shedding (and ``integrity``, the
    latest quick_check) in the store's health row."""
    now = time.time() if now is None else now
    with store.lock:
        # Without a limit the WAL file keeps the size of the largest transaction ever written.
        store.conn.execute(f"PRAGMA journal_size_limit = {int(policy.budget_bytes * WAL_SHARE)}")
    report = RetentionReport(size_before=store_bytes(store))
    _checkpoint(store)
    _ensure_incremental(store, report)
    _expire(store, policy, now, report)
    # The water marks leave room for what arrives before the next run: at least the growth
    # seen since the previous run (WAL included), however often the caller runs us.
    # The very first run has no previous size: a store that is already large (an upgrade, a
    # restored card) has not grown by all of it, and must not be shed as if it had.
    previous = _previous_size(store)
    report.growth = max(0, report.size_before - previous) if previous else 0
    high = min(policy.budget_bytes * policy.high_water, policy.budget_bytes - 1.5 * report.growth)
    low = min(policy.budget_bytes * policy.low_water, policy.budget_bytes - 2.0 * report.growth)
    if _live_bytes(store) > high:
        report.over_budget = True
        _shed(store, policy, now, low, report)
    if report.over_budget or report.expired:
        _reclaim(store, report)
    report.size_after = store_bytes(store)
    _report_health(store, policy, now, report, integrity)
    if report.shed_rows:
        _LOGGER.warning(
            "store over its disk budget (%d of %d bytes): shed %s",
            report.size_before,
            policy.budget_bytes,
            ", ".join(f"{n} {k}" for k, n in report.shed.items() if n),
        )
    return report


def _previous_size(store: Store) -> int:
    rows = store.query("SELECT detail FROM sensor_health WHERE sensor = ?", (STORE_SENSOR,))
    if not rows:
        return 0
    try:
        return int(json.loads(rows[0]["detail"]).get("size_bytes", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def _expire(store: Store, policy: RetentionPolicy, now: float, report: RetentionReport) -> None:
    limits = (
        (
            "evidence",
            "DELETE FROM evidence WHERE alert_id IS NULL AND ts < ?",
            policy.evidence_days,
        ),
        (
            "evidence_alert",
            "DELETE FROM evidence WHERE alert_id IN (SELECT alert_id FROM evidence "
            "WHERE alert_id IS NOT NULL GROUP BY alert_id HAVING MAX(ts) < ?)",
            policy.alert_evidence_days,
        ),
        # Every statement here uses an index, so a run over a large store stays cheap enough
        # to repeat every minute: sightings by first_ts (a sighting spans a minute at most),
        # events by their id order (oldest first, a bounded window of them).
        ("sightings", "DELETE FROM sightings WHERE first_ts < ?", policy.sightings_days),
        (
            "events",
            "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT 5000) "
            "AND ts < ?",
            policy.events_days,
        ),
        (
            "devices",
            "DELETE FROM devices WHERE last_seen < ? AND id NOT IN "
            "(SELECT DISTINCT value FROM alerts, json_each(alerts.device_ids))",
            policy.devices_days,
        ),
        ("health_log", "DELETE FROM health_log WHERE ts < ?", policy.health_log_days),
    )
    for name, sql, days in limits:
        n = _delete(store, sql, (now - days * DAY_S,))
        if n:
            report.expired[name] = report.expired.get(name, 0) + n


def _shed(
    store: Store, policy: RetentionPolicy, now: float, target: float, report: RetentionReport
) -> None:
    cutoffs = {
        "cutoff_events": now - policy.min_event_age_s,
        "cutoff_devices": now - policy.min_device_age_s,
    }
    for name, sql in _TIERS:
        for _ in range(MAX_PASSES_PER_TIER):
            if _live_bytes(store) <= target:
                return
            with store.write() as conn:
                n = int(conn.execute(sql, {**cutoffs, "limit": BATCH_ROWS}).rowcount)
            if n:
                report.shed[name] = report.shed.get(name, 0) + n
            # A whole-alert tier deletes one alert's rows per pass, however few they are.
            if n == 0 or (n < BATCH_ROWS and name not in _WHOLE_ALERT_TIERS):
                break


def _checkpoint(store: Store) -> None:
    # TRUNCATE may wait (up to the busy timeout) for the API's short reads; it leaves the WAL
    # empty, so the size measured after a run is the database itself.
    with store.lock:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _reclaim(store: Store, report: RetentionReport) -> None:
    """Give freed pages back to the file system and shrink the WAL."""
    with store.lock:
        mode = int(store.conn.execute("PRAGMA auto_vacuum").fetchone()[0])
        if mode == 2:
            # The pragma frees one page per step and Connection.execute steps a statement
            # without result columns only once; executescript runs it to the end.
            store.conn.executescript("PRAGMA incremental_vacuum;")
            report.vacuumed = True
    _checkpoint(store)


def _ensure_incremental(store: Store, report: RetentionReport) -> None:
    """Switch to incremental auto-vacuum once. The switch needs a full VACUUM, which rewrites
    the database through a temporary copy: only done when the disk has room for that copy."""
    with store.lock:
        if int(store.conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
            return
        size = store_bytes(store)
        if size > MAX_VACUUM_BYTES:
            # Rewriting a large database would stall the core's writes for minutes on an SD
            # card; without the switch, freed pages are still reused, the file just never shrinks.
            _LOGGER.warning("store: %d bytes is too large to enable incremental vacuum", size)
            return
        if store.path != ":memory:":
            free = shutil.disk_usage(Path(store.path).parent).free
            if free < 2 * store_bytes(store) + 16 * 1024 * 1024:
                _LOGGER.warning("store: too little free disk to enable incremental vacuum")
                return
        store.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        store.conn.execute("VACUUM")
        report.converted_auto_vacuum = True
        _LOGGER.info("store: incremental auto-vacuum enabled")


def _report_health(
    store: Store,
    policy: RetentionPolicy,
    now: float,
    report: RetentionReport,
    integrity: IntegrityResult | None = None,
) -> None:
    rows = store.query(
        "SELECT state, counters, detail FROM sensor_health WHERE sensor = ?", (STORE_SENSOR,)
    )
    counters: dict[str, int] = {}
    detail: dict[str, Any] = {}
    previous_state = None
    if rows:
        previous_state = rows[0]["state"]
        counters = {k: int(v) for k, v in json.loads(rows[0]["counters"]).items()}
        detail = dict(json.loads(rows[0]["detail"]))
    for name, n in report.shed.items():
        counters[f"shed_{name}"] = counters.get(f"shed_{name}", 0) + n
    for name, n in report.expired.items():
        counters[f"expired_{name}"] = counters.get(f"expired_{name}", 0) + n
    if report.shed_rows:
        detail["last_shed_ts"] = now
    detail.update(
        size_bytes=report.size_after,
        growth_bytes=report.growth,
        budget_bytes=policy.budget_bytes,
        used_pct=round(100.0 * report.size_after / policy.budget_bytes, 1),
    )
    last_shed = float(detail.get("last_shed_ts") or 0.0)
    shedding = bool(report.shed_rows) or (
        previous_state == "degraded" and now - last_shed < policy.clear_after_s
    )
    if integrity is not None:
        detail["integrity"] = integrity.as_dict()
    if integrity is not None and not integrity.ok:
        # Damage outranks shedding: it is what a person must act on.
        state = SensorState.DEGRADED
        message = integrity.message()
    elif shedding:
        state = SensorState.DEGRADED
        message = "disk budget reached: shedding observation detail (alerts are kept)"
    else:
        state = SensorState.OK
        message = "within disk budget"
    record_status(
        store,
        SensorStatus(
            ts=now,
            mono=now,
            sensor=STORE_SENSOR,
            # sensor_health.radio is free text; the store is shown beside the radios.
            radio=cast(Radio, STORE_SENSOR),
            state=state,
            message=message,
            counters=counters,
            detail=detail,
        ),
    )
