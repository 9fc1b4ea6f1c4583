"""Read one period out of the store: what the bundle and the HTML report are made of.

The period is ``[since, until)``. An alert belongs to it when its lifetime overlaps the period
(raised before ``until``, not resolved before ``since``), and it comes with its whole history.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from scanner.export.salvage import SalvageReader
from scanner.store.allowlist import config_entries
from scanner.store.db import Store, rollback

_LOGGER = logging.getLogger(__name__)

# Settings that must never leave the unit, whatever else is exported.
SECRET_WORDS = ("key", "secret", "password", "token", "pin", "salt")


@dataclass(frozen=True, slots=True)
class Period:
    since: float
    until: float

    def __post_init__(self) -> None:
        if not self.until > self.since:
            raise ValueError("the end of the period must be after its start")


@dataclass(slots=True)
class PeriodData:
    """Everything exported for one period, as plain row dicts (store column names)."""

    period: Period
    generated_ts: float
    site: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    acknowledgements: list[dict[str, Any]] = field(default_factory=list)
    sightings: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    sensors: list[dict[str, Any]] = field(default_factory=list)
    health_log: list[dict[str, Any]] = field(default_factory=list)
    outages: list[dict[str, Any]] = field(default_factory=list)
    allowlist: list[dict[str, Any]] = field(default_factory=list)
    # The site configuration's entries (read-only), as the core last published them.
    allowlist_config: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    sightings_per_hour: dict[int, int] = field(default_factory=dict)
    # Health state per sensor as segments [start, end, state, message] clipped to the period.
    uptime: dict[str, list[tuple[float, float, str, str]]] = field(default_factory=dict)
    # What a damaged store would not give back (``Unreadable.as_dict``); empty when intact.
    unreadable: list[dict[str, Any]] = field(default_factory=list)


def _json(text: Any, default: Any) -> Any:
    if not isinstance(text, str):
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact(value: Any) -> Any:
    """A config section with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if is_secret(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


@contextmanager
def snapshot(store: Store) -> Iterator[None]:
    """One read transaction: everything read inside sees the store at one instant, so an
    alert acknowledged mid-export cannot make the tables disagree with the chain."""
    with store.lock:
        store.conn.execute("BEGIN")
        try:
            yield
        finally:
            # Only read: ending it cannot lose anything. On a damaged store SQLite may refuse
            # the COMMIT after a failed read; the transaction is then rolled back instead.
            try:
                store.conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                _LOGGER.debug("ending the export's read transaction: %s", exc)
                rollback(store.conn)


def collect(store: Store, period: Period, generated_ts: float, site: str = "") -> PeriodData:
    """All rows of the period from one consistent snapshot of the store."""
    with snapshot(store):
        return collect_in_snapshot(store, period, generated_ts, site)


def collect_in_snapshot(
    store: Store, period: Period, generated_ts: float, site: str = ""
) -> PeriodData:
    """As ``collect``, for a caller that already holds ``snapshot(store)``."""
    data = PeriodData(period=period, generated_ts=generated_ts, site=site)
    reader = SalvageReader(store)
    with store.lock:
        _collect(reader, data)
    data.unreadable = reader.report()
    return data


def _collect(reader: SalvageReader, data: PeriodData) -> None:
    since, until = data.period.since, data.period.until
    alerts = reader.select(
        "alerts",
        "raised_ts < ? AND (resolved_ts IS NULL OR resolved_ts >= ?)",
        (until, since),
        ("raised_ts", "id"),
        "alerts of the period",
    )
    ids = [a["id"] for a in alerts]
    for a in alerts:
        for name in ("sensors", "reasons", "device_ids"):
            a[name] = _json(a[name], [])
        a["time_to_ack_s"] = a["acked_ts"] - a["raised_ts"] if a["acked_ts"] is not None else None
    data.alerts = alerts
    history: list[dict[str, Any]] = []
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        history += reader.select(
            "alert_history", f"alert_id IN ({marks})", chunk, ("seq",), "the alerts' history"
        )
    history.sort(key=lambda r: r["seq"])
    for h in history:
        h["detail"] = _json(h["detail"], {})
    data.history = history
    raised = {a["id"]: a["raised_ts"] for a in alerts}
    data.acknowledgements = [
        {
            "alert_id": h["alert_id"],
            "ts": h["ts"],
            "actor": h["actor"],
            "note": h["detail"].get("note", "") if isinstance(h["detail"], dict) else "",
            "raised_ts": raised.get(h["alert_id"]),
            "time_to_ack_s": h["ts"] - raised[h["alert_id"]] if h["alert_id"] in raised else None,
            "seq": h["seq"],
        }
        for h in history
        if h["event"] == "acknowledged"
    ]
    # Devices behind the alerts, and their sightings within the period.
    by_device: dict[str, list[str]] = defaultdict(list)
    for a in alerts:
        for d in a["device_ids"]:
            by_device[str(d)].append(a["id"])
    # Every handset heard in the period too, alerted or not (allowlisted, outside the zone):
    # the report lists every phone with when it was heard.
    heard = reader.select(
        "devices",
        "kind = 'handset' AND last_seen >= ? AND first_seen < ?",
        (since, until),
        ("id",),
        "the handsets heard",
        columns="id",
    )
    wanted = set(by_device) | {str(r["id"]) for r in heard}
    devices: list[dict[str, Any]] = []
    sightings: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(wanted)):
        marks = ",".join("?" * len(chunk))
        devices += reader.select("devices", f"id IN ({marks})", chunk, ("id",), "the devices heard")
        sightings += reader.select(
            "sightings",
            f"device_id IN ({marks}) AND last_ts >= ? AND first_ts < ?",
            (*chunk, since, until),
            ("first_ts", "id"),
            "the devices' sightings",
        )
    for d in devices:
        d["radios"] = _json(d["radios"], [])
        d["identifiers"] = _json(d["identifiers"], {})
        d["evidence"] = _json(d["evidence"], [])
    devices.sort(key=lambda d: d["id"])
    for s in sightings:
        s["alert_ids"] = by_device.get(s["device_id"], [])
    sightings.sort(key=lambda s: (s["first_ts"], s["id"]))
    data.devices = devices
    data.sightings = sightings
    per_hour: dict[int, int] = {}
    for r in reader.select(
        "sightings",
        "first_ts >= ? AND first_ts < ?",
        (since, until),
        ("first_ts",),
        "sightings per hour",
        columns="first_ts, count",
    ):
        hour = int(r["first_ts"] // 3600) * 3600
        per_hour[hour] = per_hour.get(hour, 0) + int(r["count"] or 0)
    data.sightings_per_hour = per_hour
    audit = reader.select("audit", "ts >= ? AND ts < ?", (since, until), ("seq",), "audit")
    for row in audit:
        row["detail"] = _json(row["detail"], {})
    data.audit = audit
    sensors = reader.select("sensor_health", order=("sensor",), what="sensor health")
    for s in sensors:
        s["counters"] = _json(s["counters"], {})
        s["detail"] = _json(s["detail"], {})
    data.sensors = sensors
    _health(reader, data)
    data.allowlist = _allowlist_in_force(reader, until)
    data.allowlist_config = reader.attempt(
        "settings", "the configured allowlist", lambda: config_entries(reader.store), []
    )
    data.settings = {
        r["key"]: _json(r["value"], r["value"])
        for r in reader.select("settings", order=("key",), what="settings")
        if not is_secret(r["key"])
    }


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    # SQLite limits bound parameters per statement; 500 stays far below every build's limit.
    return [items[i : i + size] for i in range(0, len(items), size)]


def _health(reader: SalvageReader, data: PeriodData) -> None:
    """State changes in the period, plus each sensor's state in force when the period began."""
    since, until = data.period.since, data.period.until
    before = reader.select(
        "health_log",
        "id IN (SELECT MAX(id) FROM health_log WHERE ts < ? GROUP BY sensor)",
        (since,),
        ("sensor",),
        "sensor states when the period began",
    )
    during = reader.select(
        "health_log", "ts >= ? AND ts < ?", (since, until), ("ts", "id"), "sensor health log"
    )
    data.health_log = during
    timeline: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    for r in before:
        timeline[r["sensor"]].append((since, r["state"], r["message"]))
    for r in during:
        timeline[r["sensor"]].append((r["ts"], r["state"], r["message"]))
    end_of_data = min(until, max(data.generated_ts, since))
    outages: list[dict[str, Any]] = []
    uptime: dict[str, list[tuple[float, float, str, str]]] = {}
    for sensor, changes in sorted(timeline.items()):
        segments: list[tuple[float, float, str, str]] = []
        for i, (start, state, message) in enumerate(changes):
            end = changes[i + 1][0] if i + 1 < len(changes) else end_of_data
            if end <= start:
                continue
            segments.append((start, end, state, message))
            if state != "ok":
                ongoing = i + 1 == len(changes)
                outages.append(
                    {
                        "sensor": sensor,
                        "state": state,
                        "start_ts": start,
                        "end_ts": None if ongoing else end,
                        "duration_s": end - start,
                        "message": message,
                        "ongoing": ongoing,
                    }
                )
        uptime[sensor] = segments
    data.outages = outages
    data.uptime = uptime


def _allowlist_in_force(reader: SalvageReader, until: float) -> list[dict[str, Any]]:
    """The list as the last audited edit before ``until`` left it, else the current table."""
    edits = reader.select(
        "audit",
        "action = 'allowlist.replace' AND ts < ?",
        (until,),
        ("seq",),
        "allowlist edits",
        columns="seq, ts, actor, detail",
    )
    rows = edits[-1:]
    current = reader.select("allowlist", order=("id",), what="allowlist")
    if not rows:
        return current
    detail = _json(rows[0]["detail"], {})
    entries = detail.get("entries") if isinstance(detail, dict) else None
    if not isinstance(entries, list):
        return current
    known = {(c["match"], c["value"]): c for c in current}
    out: list[dict[str, Any]] = []
    for i, e in enumerate(entries, start=1):
        if not isinstance(e, dict):
            continue
        match, value = str(e.get("match", "")), str(e.get("value", ""))
        row = known.get((match, value))
        out.append(
            {
                "id": row["id"] if row else i,
                "match": match,
                "value": value,
                "label": str(e.get("label", "")),
                "added_by": row["added_by"] if row else rows[0]["actor"],
                "added_ts": row["added_ts"] if row else rows[0]["ts"],
                "expires_ts": e.get("expires_ts"),
                "flag": row["flag"] if row else "",
            }
        )
    return out
