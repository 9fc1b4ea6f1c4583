"""A gate core's alerts and health on the site's MQTT broker, and acknowledgements coming back.

Every gate of a site runs its own core; the command post (``checkpoint api --mode command-post``)
watches them all through the broker. This sink publishes each alert transition on the gate's
``alerts`` topic (QoS 1, in the order the core produced them) and the gate's health, retained,
on ``core/health`` (so a command post that starts later sees every gate at once). The broker's
last will marks the gate ``offline`` when its core vanishes without saying goodbye.

The core must never wait for the network: ``handle`` only appends to a bounded queue, and a
thread of this sink hands messages to paho, which keeps them (in order) while the broker is
away and re-sends what was not acknowledged after it reconnects. When even the bounded queue
is full the newest message is dropped and counted: the broker's persistent session holds the
rest for the command post.

Acknowledgements from the command post arrive on the gate's ``core/ack`` topic and are applied
exactly as the tablet's button applies them: written to the store with who acknowledged and
audited; the core then reads them from the store as it reads the tablet's.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.core.events import (
    AlertAcknowledged,
    AlertAlarmed,
    AlertUpdated,
    CoreEvent,
    SensorHealth,
    SensorHeard,
)
from scanner.mqtt.link import BrokerSettings, open_client
from scanner.mqtt.topics import GateTopics
from scanner.sinks.alert_view import ALERT_TRANSITIONS, alert_fields
from scanner.store import alerts as alert_store
from scanner.store import audit
from scanner.store.db import Store

if TYPE_CHECKING:
    import paho.mqtt.client as paho

_LOGGER = logging.getLogger(__name__)

# The message format's version, in every payload: a command post can refuse what it cannot read.
FORMAT_VERSION = 1
# Alert transitions waiting for paho. A gate produces a few alert events a minute at its worst;
# 5,000 of them (under 5 MB) are hours of a broker outage, longer than the broker's own restart
# or a site switch's reboot by far.
QUEUE_LIMIT = 5000
# Messages handed to paho and not yet acknowledged by the broker. paho keeps these in memory
# and re-sends them after a reconnect; beyond this many the rest wait in our bounded queue, so
# memory stays bounded however long the broker is away.
PAHO_OUTSTANDING = 100
# The retained health is re-published on this beat even when nothing changed: the command post
# shows a gate whose health is older than three beats as stale (its core or its link is gone).
HEALTH_EVERY_S = 10.0
# How often the publishing thread looks for the broker's acknowledgements while paho holds
# messages: a tenth of a second is nothing next to the seconds a guard takes to look up.
SETTLE_EVERY_S = 0.1
# Alerts re-stated at start (open, or resolved with the alarm still latched): a gate has a
# handful; the bound only keeps a damaged store from flooding the queue.
SNAPSHOT_LIMIT = 200
# A stopping core waits this long for the broker to take its last alert messages (systemd's
# stop timeout is 90 s; a broker on the site network answers in milliseconds when it is there).
CLOSE_FLUSH_S = 3.0
# What the command post may call itself, or a user: short names, never a message's bulk.
MAX_NAME = 64
MAX_NOTE = 500


@dataclass(frozen=True, slots=True)
class AckMessage:
    """An acknowledgement sent to a gate by a command post."""

    alert_id: str
    user: str
    note: str
    command_post: str
    ts: float

    @property
    def by(self) -> str:
        """Who acknowledged, as the gate's store and tablet show it."""
        return f"{self.user}@{self.command_post}"

    def to_payload(self) -> bytes:
        return json.dumps(
            {
                "v": FORMAT_VERSION,
                "alert_id": self.alert_id,
                "user": self.user,
                "note": self.note,
                "command_post": self.command_post,
                "ts": self.ts,
            },
            separators=(",", ":"),
        ).encode()


class BadMessageError(ValueError):
    """A payload this version cannot read (it is counted and dropped)."""


def parse_ack(payload: bytes) -> AckMessage:
    """An acknowledgement from its payload; ``BadMessageError`` for anything else."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMessageError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        raise BadMessageError("not a version-1 acknowledgement")

    def text(key: str, limit: int, *, required: bool) -> str:
        value = data.get(key, "")
        if not isinstance(value, str) or len(value) > limit or (required and not value):
            raise BadMessageError(f"{key} must be a string of 1-{limit} characters")
        return value

    ts = data.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not 0 <= ts < 1e11:
        raise BadMessageError("ts must be unix seconds")
    return AckMessage(
        alert_id=text("alert_id", 128, required=True),
        user=text("user", MAX_NAME, required=True),
        note=text("note", MAX_NOTE, required=False),
        command_post=text("command_post", MAX_NAME, required=True),
        ts=float(ts),
    )


def record_fields(record: alert_store.AlertRecord) -> dict[str, Any]:
    """A stored alert's published fields: where it stands, and who acknowledged it."""
    return {
        "alert_id": record.id,
        "title": record.title,
        "kind": record.kind,
        "confidence": record.confidence,
        "reasons": list(record.reasons),
        "handsets": record.handsets,
        "sensors": list(record.sensors),
        "raised_ts": record.raised_ts,
        "duration_s": record.duration_s,
        "acknowledged": record.acknowledged,
        "alarm": not record.acknowledged,
        "state": record.state,
        "resolved_ts": record.resolved_ts,
        "resolution": record.resolution,
        "acked_ts": record.acked_ts,
        "by": record.acked_by,
        "note": record.ack_note or "",
    }


def alert_message(event: CoreEvent) -> dict[str, Any] | None:
    """The published form of an alert transition, or None for other events: the alert line's
    fields (``scanner.sinks.alert_view``) and the card's."""
    if isinstance(event, AlertAlarmed):
        return {
            "event": "alarmed",
            "ts": event.ts,
            "alarm": True,
            "alert_id": event.alert_id,
            "alarm_handsets": len(event.handset_keys),
        }
    if not isinstance(event, ALERT_TRANSITIONS):
        return None
    alert = event.alert
    message = alert_fields(event)
    message["title"] = alert.title
    message["raised_ts"] = alert.raised_ts
    message["duration_s"] = alert.duration_s
    message["acknowledged"] = alert.acknowledged
    if isinstance(event, AlertUpdated):
        message["gained"] = event.gained
    elif isinstance(event, AlertAcknowledged):
        message["note"] = event.note
    return message


class GateAcks:
    """Applies acknowledgements from the command post to the gate's store, as the tablet does."""

    def __init__(self, store: Store, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.clock = clock
        self.counters = {"acks_applied": 0, "acks_repeated": 0, "acks_unknown": 0}

    def apply(self, ack: AckMessage) -> alert_store.AlertRecord | None:
        """Record ``ack``: the alert as acknowledged, or None when the alert is unknown or was
        acknowledged already.

        A redelivered acknowledgement (QoS 1 is at least once) finds the alert acknowledged and
        changes nothing, so it is neither stored nor audited twice.
        """
        try:
            current = alert_store.get_alert(self.store, ack.alert_id)
        except alert_store.AlertNotFoundError:
            self.counters["acks_unknown"] += 1
            _LOGGER.warning(
                "acknowledgement from %s for unknown alert %r", ack.command_post, ack.alert_id
            )
            return None
        if current.acknowledged:
            self.counters["acks_repeated"] += 1
            return None
        ts = self.clock.wall()
        record = alert_store.acknowledge_alert(self.store, ack.alert_id, ts, ack.by, ack.note)
        audit.record(
            self.store,
            ts,
            ack.by,
            "alert.ack",
            {
                "alert_id": ack.alert_id,
                "note": ack.note,
                "command_post": ack.command_post,
                "sent_ts": ack.ts,
            },
        )
        self.counters["acks_applied"] += 1
        return record


class MqttSink:
    """Publishes a gate core's alert events and health; applies the command post's acks.

    ``start`` connects (in paho's thread; the broker may be away, paho keeps trying) and starts
    the publishing thread; ``close`` says ``offline`` and stops both.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        store_path: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        queue_limit: int = QUEUE_LIMIT,
        paho_limit: int = PAHO_OUTSTANDING,
        health_every_s: float = HEALTH_EVERY_S,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = GateTopics(settings.site, settings.gate)
        self.clock = clock
        self.queue_limit = queue_limit
        self.paho_limit = paho_limit
        # Tells the core an acknowledgement is in the store (its queue, thread-safe); without
        # it the core finds the acknowledgement on its periodic poll of the store.
        self.notify = notify
        self.health_every_s = health_every_s
        # A new value each start: the command post tells a restarted core's numbering from
        # a redelivered message of this one.
        self.boot = secrets.token_hex(6)
        self.counters = {"published": 0, "dropped_queue_full": 0, "bad_acks": 0}
        self._seq = 0
        self._queue: deque[bytes] = deque()
        # Message ids handed to paho, oldest first, and the broker's acknowledgements of them
        # (filled by paho's thread; read by the publishing thread alone).
        self._outstanding: deque[int] = deque()
        self._pubacks: deque[int] = deque()
        self._acked: set[int] = set()
        self._health_mids: set[int] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._health_due = True
        self._sensors: dict[str, dict[str, Any]] = {}
        self._open: set[str] = set()
        self._alarming: set[str] = set()
        self._store = Store(store_path) if store_path is not None else None
        if self._store is not None:
            from scanner.export.seal_key import attach_chain_key

            # An acknowledgement from the command post is a link of the alert history: keyed
            # like the core's own, or verify would find a plain link after keyed ones.
            attach_chain_key(self._store)
        self.acks = GateAcks(self._store, clock) if self._store is not None else None
        self._client: paho.Client = open_client(
            settings, client_id=settings.client_id or f"core-{settings.site}-{settings.gate}"
        )
        # Ours plus the health beats: paho refuses (never blocks) beyond that.
        self._client.max_queued_messages_set(paho_limit + 10)
        # Said by the broker for us when this core is gone without a clean disconnect.
        self._client.will_set(
            self.topics.core_health, self._health_payload("offline"), qos=1, retain=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._thread = threading.Thread(target=self._run, name="mqtt-sink", daemon=True)
        self._started = False

    # -- the core's side: never blocks ---------------------------------------------------------

    def handle(self, events: Sequence[CoreEvent]) -> None:
        with self._cond:
            for event in events:
                if isinstance(event, SensorHealth):
                    s = event.status
                    entry = self._sensors.setdefault(s.sensor, {})
                    entry.update(radio=s.radio, state=s.state, message=s.message, ts=s.ts)
                    self._health_due = True
                    continue
                if isinstance(event, SensorHeard):
                    self._sensors.setdefault(event.sensor, {})["heard_ts"] = event.ts
                    continue
                message = alert_message(event)
                if message is not None:
                    self._enqueue(message)
            self._cond.notify()

    def _enqueue(self, message: Mapping[str, Any]) -> None:
        """Number and queue one alert message (the caller holds the lock)."""
        self._track(message)
        if len(self._queue) >= self.queue_limit:
            self.counters["dropped_queue_full"] += 1
            return
        self._seq += 1
        body = {
            "v": FORMAT_VERSION,
            "site": self.settings.site,
            "gate": self.settings.gate,
            "boot": self.boot,
            "seq": self._seq,
            **message,
        }
        self._queue.append(json.dumps(body, separators=(",", ":")).encode())

    def _track(self, message: Mapping[str, Any]) -> None:
        """Open and alarming alerts, for the health summary."""
        alert_id = str(message["alert_id"])
        event = message["event"]
        if event == "resolved" or (event == "state" and message.get("state") != "open"):
            self._open.discard(alert_id)
        elif event != "acknowledged":
            self._open.add(alert_id)
        if event == "acknowledged" or message.get("acknowledged"):
            self._alarming.discard(alert_id)
        elif message.get("alarm"):
            self._alarming.add(alert_id)
        self._health_due = True

    # -- the network's side ----------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        self._snapshot()
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()
        self._thread.start()
        self._started = True

    def _snapshot(self) -> None:
        """Each alert still open or still alarming, as the store has it, first of this start.

        What the previous run had handed paho but the broker never took died with it; this
        re-states every alert that still matters, so the command post's picture is whole again
        whatever the last run could send.
        """
        if self._store is None:
            return
        alerts = {
            a.id: a
            for a in (
                *alert_store.list_alerts(self._store, state="open", limit=SNAPSHOT_LIMIT),
                *alert_store.list_alerts(self._store, acknowledged=False, limit=SNAPSHOT_LIMIT),
            )
        }
        with self._cond:
            for record in sorted(alerts.values(), key=lambda a: a.raised_ts):
                self._enqueue({"event": "state", "ts": record.updated_ts, **record_fields(record)})

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected())

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _on_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if getattr(reason, "is_failure", False):
            _LOGGER.warning("broker refused the gate core: %s", reason)
            return
        _LOGGER.info("gate core connected to the broker at %s", self.settings.host)
        if self.acks is not None:
            client.subscribe(self.topics.acks, qos=1)
        with self._cond:
            self._health_due = True
            self._cond.notify()

    def _on_message(self, _client: paho.Client, _userdata: Any, message: Any) -> None:
        if self.acks is None or message.topic != self.topics.acks:
            return
        try:
            ack = parse_ack(bytes(message.payload))
        except BadMessageError as exc:
            self.counters["bad_acks"] += 1
            _LOGGER.warning("acknowledgement dropped: %s", exc)
            return
        try:
            record = self.acks.apply(ack)
        except Exception:
            # The store refused (full disk, a lock held too long): paho must keep running for
            # the alerts; the command post shows the alert unacknowledged until it is applied.
            _LOGGER.exception("acknowledgement of %s could not be stored", ack.alert_id)
            return
        if record is None:
            return
        if self.notify is not None:
            try:
                self.notify("ack")
            except Exception:
                _LOGGER.exception("the core was not told of the acknowledgement (it polls)")
        # Said at once, for the command post: the core learns of it at its next look at the
        # store, and says nothing of an alert already resolved (its alarm can still be
        # latched on the tablets until someone acknowledges it).
        with self._cond:
            self._enqueue({"event": "acknowledged", "ts": record.acked_ts, **record_fields(record)})
            self._cond.notify()

    def _health_payload(self, state: str) -> bytes:
        body = {
            "v": FORMAT_VERSION,
            "site": self.settings.site,
            "gate": self.settings.gate,
            "boot": self.boot,
            "state": state,
            "ts": self.clock.wall(),
            "every_s": self.health_every_s,
            "sensors": {k: dict(v) for k, v in sorted(self._sensors.items())},
            "open_alerts": len(self._open),
            "alarming": len(self._alarming),
            "counters": dict(self.counters),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def _on_publish(
        self, _client: paho.Client, _userdata: Any, mid: int, _reason: Any, _props: Any
    ) -> None:
        # Called by paho with its own locks held: only an atomic append here, no lock of ours.
        self._pubacks.append(mid)

    def _settle(self) -> None:
        """Take the broker's acknowledgements (publishing thread only)."""
        while self._pubacks:
            mid = self._pubacks.popleft()
            if mid in self._health_mids:
                self._health_mids.discard(mid)
            else:
                self._acked.add(mid)
        outstanding = self._outstanding
        while outstanding and outstanding[0] in self._acked:
            self._acked.discard(outstanding.popleft())

    def _run(self) -> None:
        next_health = 0.0
        client = self._client
        while True:
            self._settle()
            with self._cond:
                now = self.clock.monotonic()
                if self._stop:
                    return
                room = self.paho_limit - len(self._outstanding)
                can_send = bool(self._queue) and room > 0
                health = (self._health_due or now >= next_health) and client.is_connected()
                if not can_send and not health:
                    # Woken by a new event or a connect; while paho holds messages the short
                    # wait notices the broker acknowledging them.
                    busy = self._outstanding or self._queue
                    wait = SETTLE_EVERY_S if busy else max(SETTLE_EVERY_S, next_health - now)
                    self._cond.wait(timeout=min(wait, self.health_every_s))
                    continue
                batch: list[bytes] = []
                while self._queue and len(batch) < room:
                    batch.append(self._queue.popleft())
                payload = self._health_payload("online") if health else None
                self._health_due = False
            # paho keeps what it cannot send now (the broker away) and sends it, in order,
            # after reconnecting; our count of what it holds bounds its memory.
            for body in batch:
                info = client.publish(self.topics.alerts, body, qos=1)
                self._outstanding.append(info.mid)
            self.counters["published"] += len(batch)
            if payload is not None:
                # Only while connected: a stale health queued through an outage is noise.
                info = client.publish(self.topics.core_health, payload, qos=1, retain=True)
                self._health_mids.add(info.mid)
                next_health = now + self.health_every_s

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything queued is acknowledged by the broker (a clean stop, tests)."""
        deadline = self.clock.monotonic() + timeout_s
        while self.pending() or self._outstanding:
            if self.clock.monotonic() >= deadline:
                return False
            threading.Event().wait(SETTLE_EVERY_S)
        return True

    def close(self) -> None:
        """Say ``offline`` (retained) and disconnect; the will is then not sent."""
        if self._started:
            # What the core said last (a resolution at shutdown) reaches the broker if it can.
            if not self.flush(CLOSE_FLUSH_S):
                unsent = self.pending() + len(self._outstanding)
                _LOGGER.warning("%d alert message(s) not taken by the broker at stop", unsent)
            with self._cond:
                self._stop = True
                self._cond.notify()
            self._thread.join(timeout=5.0)
            if self._client.is_connected():
                info = self._client.publish(
                    self.topics.core_health, self._health_payload("offline"), qos=1, retain=True
                )
                try:
                    info.wait_for_publish(timeout=2.0)
                except RuntimeError:
                    _LOGGER.warning("the gate's offline state was not sent (broker gone)")
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False
        if self._store is not None:
            self._store.close()
            self._store = None
