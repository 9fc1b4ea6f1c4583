"""A command post's store of the site's gates: what each gate's core published, and the
acknowledgements the command post sent back.

Messages arrive at least once (MQTT QoS 1): each gate numbers its alert messages (``seq``
within one start of its core, ``boot``), and a message at or below the last number of the same
start is a redelivery and changes nothing. Every change appends a ``gate`` row to the events
table, which the page's live feed tails, so a command post's screen moves as the gates do.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from scanner.store.db import Store
from scanner.store.where import where_clause

# A gate re-publishes its health every ``every_s`` (10 s); three missed beats, and the
# command post shows the gate stale: its core, its Pi or its link to the broker is gone.
STALE_BEATS = 3.0
DEFAULT_EVERY_S = 10.0
# The states a gate's core can say of itself.
GATE_STATES = ("online", "offline")
# The alert transitions a gate publishes.
# ``state``: where an alert stands, as a gate's core re-states it when it starts.
ALERT_EVENTS = ("raised", "updated", "alarmed", "acknowledged", "resolved", "state")


class GateAlertNotFoundError(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class GateAlert:
    """One gate's alert as the command post knows it."""

    site: str
    gate: str
    alert_id: str
    state: str  # "open" | "resolved"
    title: str
    kind: str
    confidence: float
    handsets: int
    sensors: list[str]
    reasons: list[str]
    raised_ts: float
    updated_ts: float
    duration_s: float
    alarm: bool
    resolved_ts: float | None
    resolution: str | None
    acked_ts: float | None
    acked_by: str | None
    ack_note: str | None
    ack_sent_ts: float | None
    ack_sent_by: str | None

    @property
    def key(self) -> str:
        return f"{self.site}/{self.gate}/{self.alert_id}"

    @property
    def ack_state(self) -> str:
        """``confirmed`` (the gate recorded an acknowledgement), ``sent`` or ``none``."""
        if self.acked_ts is not None:
            return "confirmed"
        return "sent" if self.ack_sent_ts is not None else "none"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = self.key
        data["ack_state"] = self.ack_state
        # What silences the command post's alarm: someone here sent it, or the gate has it.
        data["acknowledged"] = self.ack_state != "none"
        return data


@dataclass(frozen=True, slots=True)
class GateState:
    """One gate: what its core last said of itself, and whether it is still saying it."""

    site: str
    gate: str
    state: str  # as the gate said: "online" | "offline"
    status: str  # as the command post sees it: "online" | "stale" | "offline"
    health_ts: float | None
    heard_ts: float
    age_s: float
    sensors: dict[str, Any] = field(default_factory=dict)
    open_alerts: int = 0
    alarming: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gate_row(conn: sqlite3.Connection, site: str, gate: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM gates WHERE site = ? AND gate = ?", (site, gate)
    ).fetchone()
    return row


def _touch_gate(conn: sqlite3.Connection, site: str, gate: str, now: float) -> sqlite3.Row:
    """The gate's row, made on first hearing of it."""
    row = _gate_row(conn, site, gate)
    if row is None:
        conn.execute(
            "INSERT INTO gates (site, gate, state, heard_ts) VALUES (?, ?, 'online', ?)",
            (site, gate, now),
        )
        row = _gate_row(conn, site, gate)
    if row is None:  # the insert above makes it; a None here is a broken database
        raise sqlite3.DatabaseError("gates row vanished inside its transaction")
    return row


def _number(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def apply_alert(store: Store, site: str, gate: str, message: Mapping[str, Any], now: float) -> bool:
    """Apply one alert message from a gate; False for a redelivery already applied."""
    event = message.get("event")
    alert_id = message.get("alert_id")
    if event not in ALERT_EVENTS or not isinstance(alert_id, str) or not alert_id:
        raise ValueError("not an alert message (event and alert_id)")
    boot = str(message.get("boot", ""))
    seq = int(_number(message.get("seq")))
    ts = _number(message.get("ts"), now)
    with store.write(durable=True) as conn:
        row = _touch_gate(conn, site, gate, now)
        if boot and row["boot"] == boot and seq <= row["seq"]:
            return False
        # An alert message is a sign of life as good as a health beat.
        conn.execute(
            "UPDATE gates SET boot = ?, seq = ?, heard_ts = ?, state = 'online' "
            "WHERE site = ? AND gate = ?",
            (boot, seq, now, site, gate),
        )
        current = conn.execute(
            "SELECT * FROM gate_alerts WHERE site = ? AND gate = ? AND alert_id = ?",
            (site, gate, alert_id),
        ).fetchone()
        if current is None:
            conn.execute(
                "INSERT INTO gate_alerts (site, gate, alert_id, state, raised_ts, updated_ts) "
                "VALUES (?, ?, ?, 'open', ?, ?)",
                (site, gate, alert_id, _number(message.get("raised_ts"), ts), ts),
            )
        sets: dict[str, Any] = {"updated_ts": ts}
        for key in ("title", "kind"):
            if isinstance(message.get(key), str):
                sets[key] = message[key]
        for key in ("confidence", "duration_s"):
            if key in message:
                sets[key] = _number(message[key])
        if "handsets" in message:
            sets["handsets"] = int(_number(message["handsets"]))
        for key in ("sensors", "reasons"):
            if key in message:
                sets[key] = json.dumps(_strings(message[key]))
        if event in ("raised", "updated", "alarmed") and message.get("alarm") is True:
            sets["alarm"] = 1
        acked = event == "acknowledged" or (
            event == "state" and message.get("acked_ts") is not None
        )
        if acked and (current is None or current["acked_ts"] is None):
            # The first acknowledgement is kept, as on the gate.
            sets.update(
                alarm=0,
                acked_ts=_number(message.get("acked_ts"), ts),
                acked_by=str(message.get("by") or ""),
                ack_note=str(message.get("note") or ""),
            )
        if event == "state" and not acked:
            sets["alarm"] = 1 if message.get("alarm") is True else 0
        resolved = event == "resolved" or (event == "state" and message.get("state") == "resolved")
        if resolved:
            sets.update(
                state="resolved",
                resolved_ts=_number(message.get("resolved_ts"), ts),
                resolution=str(message.get("resolution")),
            )
        assignments = ", ".join(f"{k} = ?" for k in sets)
        conn.execute(
            f"UPDATE gate_alerts SET {assignments} WHERE site = ? AND gate = ? AND alert_id = ?",  # noqa: S608 - keys are the fixed names above
            (*sets.values(), site, gate, alert_id),
        )
        store.add_event(
            conn, now, "gate", {"site": site, "gate": gate, "alert_id": alert_id, "event": event}
        )
    return True


def apply_health(
    store: Store, site: str, gate: str, message: Mapping[str, Any], now: float
) -> None:
    """The gate's health as it published it (retained: the last one is what counts)."""
    state = message.get("state")
    if state not in GATE_STATES:
        raise ValueError(f"health state must be one of {', '.join(GATE_STATES)}")
    every = _number(message.get("every_s"), DEFAULT_EVERY_S)
    health: dict[str, Any] = {
        "sensors": message.get("sensors") if isinstance(message.get("sensors"), dict) else {},
        "open_alerts": int(_number(message.get("open_alerts"))),
        "alarming": int(_number(message.get("alarming"))),
    }
    with store.write() as conn:
        _touch_gate(conn, site, gate, now)
        conn.execute(
            "UPDATE gates SET state = ?, health = ?, health_ts = ?, heard_ts = ?, every_s = ? "
            "WHERE site = ? AND gate = ?",
            (
                state,
                json.dumps(health, separators=(",", ":")),
                _number(message.get("ts"), now),
                now,
                every if every > 0 else DEFAULT_EVERY_S,
                site,
                gate,
            ),
        )
        store.add_event(conn, now, "gate", {"site": site, "gate": gate, "state": state})


def mark_ack_sent(
    store: Store, site: str, gate: str, alert_id: str, ts: float, user: str
) -> GateAlert:
    """Someone at the command post acknowledged (the first one is kept, as on a gate)."""
    with store.write(durable=True) as conn:
        row = conn.execute(
            "SELECT ack_sent_ts FROM gate_alerts WHERE site = ? AND gate = ? AND alert_id = ?",
            (site, gate, alert_id),
        ).fetchone()
        if row is None:
            raise GateAlertNotFoundError(f"{site}/{gate}/{alert_id}")
        if row["ack_sent_ts"] is None:
            conn.execute(
                "UPDATE gate_alerts SET ack_sent_ts = ?, ack_sent_by = ? "
                "WHERE site = ? AND gate = ? AND alert_id = ?",
                (ts, user, site, gate, alert_id),
            )
            store.add_event(
                conn,
                ts,
                "gate",
                {"site": site, "gate": gate, "alert_id": alert_id, "event": "ack_sent"},
            )
    return get_gate_alert(store, site, gate, alert_id)


def _alert(row: sqlite3.Row) -> GateAlert:
    return GateAlert(
        site=row["site"],
        gate=row["gate"],
        alert_id=row["alert_id"],
        state=row["state"],
        title=row["title"],
        kind=row["kind"],
        confidence=row["confidence"],
        handsets=row["handsets"],
        sensors=json.loads(row["sensors"]),
        reasons=json.loads(row["reasons"]),
        raised_ts=row["raised_ts"],
        updated_ts=row["updated_ts"],
        duration_s=row["duration_s"],
        alarm=bool(row["alarm"]),
        resolved_ts=row["resolved_ts"],
        resolution=row["resolution"],
        acked_ts=row["acked_ts"],
        acked_by=row["acked_by"],
        ack_note=row["ack_note"],
        ack_sent_ts=row["ack_sent_ts"],
        ack_sent_by=row["ack_sent_by"],
    )


def get_gate_alert(store: Store, site: str, gate: str, alert_id: str) -> GateAlert:
    rows = store.query(
        "SELECT * FROM gate_alerts WHERE site = ? AND gate = ? AND alert_id = ?",
        (site, gate, alert_id),
    )
    if not rows:
        raise GateAlertNotFoundError(f"{site}/{gate}/{alert_id}")
    return _alert(rows[0])


def list_gate_alerts(
    store: Store,
    *,
    site: str | None = None,
    gate: str | None = None,
    state: str | None = None,
    since: float | None = None,
    acknowledged: bool | None = None,
    limit: int = 200,
) -> list[GateAlert]:
    """Gate alerts newest first; ``acknowledged=False``: the alarms still latched here."""
    where, params = where_clause(
        ("site = ?", site),
        ("gate = ?", gate),
        ("state = ?", state),
        ("raised_ts >= ?", since),
        (
            "(acked_ts IS NOT NULL OR ack_sent_ts IS NOT NULL) = ?",
            None if acknowledged is None else int(acknowledged),
        ),
    )
    rows = store.query(
        f"SELECT * FROM gate_alerts {where} ORDER BY raised_ts DESC, alert_id LIMIT ?",  # noqa: S608 - where_clause: fixed clauses
        (*params, limit),
    )
    return [_alert(r) for r in rows]


def list_gates(store: Store, now: float) -> list[GateState]:
    """Every gate heard of, by site and gate name, with its status now."""
    out: list[GateState] = []
    for row in store.query("SELECT * FROM gates ORDER BY site, gate"):
        every = row["every_s"] or DEFAULT_EVERY_S
        age = max(0.0, now - row["heard_ts"])
        if row["state"] == "offline":
            status = "offline"
        elif age > STALE_BEATS * every:
            status = "stale"
        else:
            status = "online"
        health = json.loads(row["health"] or "{}")
        out.append(
            GateState(
                site=row["site"],
                gate=row["gate"],
                state=row["state"],
                status=status,
                health_ts=row["health_ts"],
                heard_ts=row["heard_ts"],
                age_s=age,
                sensors=health.get("sensors", {}),
                open_alerts=int(health.get("open_alerts", 0)),
                alarming=int(health.get("alarming", 0)),
            )
        )
    return out
