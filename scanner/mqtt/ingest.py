"""The gate core's side of the broker: its sensor nodes' batches into the core's input queue.

The core subscribes (QoS 1, persistent session) to every node topic of its gate. For each batch:

* a batch already seen (a QoS 1 re-send, or the node's spool replaying what the broker had
  taken just before the link dropped) is dropped by ``(node, stream, seq)``;
* every record must carry the node's name (the topic, which the broker's ACL ties to the node's
  certificate): a record claiming another sensor is counted and dropped;
* timestamps move by the node's reported clock offset, and ``mono`` is put on this machine's
  monotonic timeline (another Pi's monotonic clock means nothing here), so a record buffered
  for minutes on the node keeps the time it was heard;
* records go to the same ``EventQueue`` the Unix-socket receiver feeds, so the core cannot tell
  the transports apart.

paho acknowledges a message when this callback returns, so a record is in the core's queue
before the broker forgets it. When the queue is full the callback waits (the broker then holds
the rest for us); only after ``PUT_WAIT_S`` does it count a drop.

A node's health (retained) is kept for the runtime health, and its will (``offline``) turns
the radios it was feeding to ``fault`` in the core's sensor status at once.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from scanner import safe_json
from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.mqtt.batch import Batch, ClockSync, decode_batch
from scanner.mqtt.link import BrokerSettings, open_client
from scanner.mqtt.topics import GateTopics, node_of
from scanner.observations import (
    BleAdvert,
    Radio,
    SdrBurst,
    SensorState,
    SensorStatus,
    SourceEvent,
    WifiFrame,
)
from scanner.runtime.transport import EventQueue
from scanner.runtime.transport.codec import FrameError

if TYPE_CHECKING:
    import paho.mqtt.client as paho

_LOGGER = logging.getLogger(__name__)

# How long one message may wait for room in the core's queue before its records count as
# dropped. Under the keepalive (paho's thread sends pings), long enough for a core that is busy
# writing a burst to the SD card to catch up; the broker holds everything after it meanwhile.
PUT_WAIT_S = 10.0
# Sequence numbers remembered per stream to drop copies. A node has at most a few dozen batches
# in flight when its link drops, so a copy is never further back than this.
DEDUP_WINDOW = 4096


@dataclass(slots=True)
class _Stream:
    """What the core knows of one publisher of one node."""

    highest: int = -1
    seen: set[int] = field(default_factory=set)
    order: collections.deque[int] = field(default_factory=collections.deque)
    batches: int = 0
    records: int = 0
    duplicates: int = 0
    gaps: int = 0

    def accept(self, seq: int) -> bool:
        """True the first time ``seq`` comes; False for a copy."""
        if seq in self.seen or seq <= self.highest - DEDUP_WINDOW:
            self.duplicates += 1
            return False
        if self.highest >= 0 and seq > self.highest + 1:
            # A restarted node skips to its next reserved block; a gap is not by itself a loss
            # (the node counts its own drops and reports them in its health).
            self.gaps += 1
        self.highest = max(self.highest, seq)
        self.seen.add(seq)
        self.order.append(seq)
        if len(self.order) > DEDUP_WINDOW:
            self.seen.discard(self.order.popleft())
        return True


@dataclass(slots=True)
class _Node:
    streams: dict[str, _Stream] = field(default_factory=dict)
    radios: set[Radio] = field(default_factory=set)
    clock: ClockSync | None = None
    last_batch_ts: float | None = None
    health: dict[str, dict[str, Any]] = field(default_factory=dict)  # by stream


class CoreIngest:
    """Subscribes to the gate's sensor nodes and feeds their records to the core's queue."""

    def __init__(
        self,
        settings: BrokerSettings,
        events: EventQueue,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.topics = GateTopics(settings.site, settings.gate)
        self.events = events
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self._nodes: dict[str, _Node] = {}
        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        self._connected = False
        self._logged: set[str] = set()

    @property
    def connected(self) -> bool:
        return self._connected

    def client_id(self) -> str:
        return self.settings.client_id or f"{self.settings.site}.{self.settings.gate}.core"

    def start(self) -> None:
        client = open_client(self.settings, client_id=self.client_id())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
        client.loop_start()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._connected = False

    # -- paho's thread ------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            _LOGGER.warning("broker refused the core: %s", reason)
            return
        self._connected = True
        self.counters["connects"] += 1
        # Subscribing again is harmless when the session kept the subscriptions, and needed
        # when the broker lost them (a broker without persistence restarted).
        client.subscribe([(self.topics.all_observations, 1), (self.topics.all_sensor_health, 1)])
        _LOGGER.info("core subscribed to %s", self.topics.base)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._connected:
            _LOGGER.warning("core lost the broker (%s); paho reconnects", reason)
        self._connected = False
        self.counters["disconnects"] += 1

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self.handle_message(str(message.topic), bytes(message.payload))
        except Exception:
            # Nothing a node sends may stop the core's subscription.
            self.counters["handle_errors"] += 1
            _LOGGER.exception("could not handle a message on %s", message.topic)

    # -- messages -----------------------------------------------------------------------------
    def handle_message(self, topic: str, payload: bytes) -> None:
        node = node_of(topic)
        parts = topic.split("/")
        if node is None or not topic.startswith(self.topics.base + "/"):
            self.counters["foreign_topic"] += 1
            return
        if parts[5] == "obs" and len(parts) == 6:
            self._batch(node, payload)
        elif parts[5] == "health":
            self._health(node, payload)
        else:
            self.counters["foreign_topic"] += 1

    def _batch(self, node: str, payload: bytes) -> None:
        try:
            batch = decode_batch(payload)
        except FrameError as exc:
            self._drop("malformed_batches", f"malformed batch from node {node}: {exc}")
            return
        if batch.node != node:
            self._drop("foreign_batches", f"a batch on node {node}'s topic names {batch.node}")
            return
        with self._lock:
            state = self._nodes.setdefault(node, _Node())
            stream = state.streams.setdefault(batch.stream, _Stream())
            if not stream.accept(batch.seq):
                self.counters["duplicate_batches"] += 1
                return
            stream.batches += 1
            stream.records += len(batch.records)
            state.clock = batch.clock
            state.last_batch_ts = self.clock.wall()
        self.counters["batches"] += 1
        self.counters["malformed_records"] += batch.malformed
        self._feed(node, state, batch)

    def _feed(self, node: str, state: _Node, batch: Batch) -> None:
        offset = batch.clock.offset_s
        # This machine's wall clock minus its monotonic one: a corrected timestamp minus this is
        # the record's place on the core's monotonic timeline.
        wall_minus_mono = self.clock.wall() - self.clock.monotonic()
        wait_s = PUT_WAIT_S
        for record in batch.records:
            if record.sensor != node:
                self._drop("foreign_records", f"node {node} sent a record of {record.sensor}")
                continue
            moved = corrected(record, offset, wall_minus_mono)
            # The radios a node feeds, for its will to fault them all: every record says which.
            state.radios.add(_radio_of(record))
            self.counters["records"] += 1
            if wait_s:
                started = self.clock.monotonic()
                if not self.events.put_wait(moved, wait_s):
                    wait_s = 0.0
                else:
                    wait_s = max(0.0, wait_s - (self.clock.monotonic() - started))
            else:
                self.events.put(moved)

    def _health(self, node: str, payload: bytes) -> None:
        try:
            health = safe_json.loads(payload)
        except (UnicodeDecodeError, ValueError, RecursionError):
            self.counters["malformed_health"] += 1
            return
        if not isinstance(health, dict):
            self.counters["malformed_health"] += 1
            return
        stream = str(health.get("stream", "node"))
        state_text = str(health.get("state", ""))
        with self._lock:
            state = self._nodes.setdefault(node, _Node())
            previous = state.health.get(stream, {}).get("state")
            state.health[stream] = health
            radios = sorted(state.radios)
        self.counters["health_messages"] += 1
        if state_text in ("offline", "stopped") and previous != state_text:
            why = (
                "sensor node lost its broker connection"
                if state_text == "offline"
                else "sensor node stopped"
            )
            _LOGGER.warning("node %s (%s): %s", node, stream, why)
            now_wall, now_mono = self.clock.wall(), self.clock.monotonic()
            for radio in radios:
                self.events.put(
                    SensorStatus(
                        ts=now_wall,
                        mono=now_mono,
                        sensor=node,
                        radio=radio,
                        state=SensorState.FAULT,
                        message=why,
                    )
                )

    def _drop(self, counter: str, why: str) -> None:
        self.counters[counter] += 1
        if counter not in self._logged:
            _LOGGER.warning("%s; dropped (further ones only counted)", why)
            self._logged.add(counter)

    # -- health -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The link and every node as the core sees them, for the runtime health."""
        with self._lock:
            nodes = {
                name: {
                    "clock": node.clock.as_json() if node.clock else None,
                    "last_batch_ts": node.last_batch_ts,
                    "radios": sorted(str(r) for r in node.radios),
                    "streams": {
                        s: {
                            "highest_seq": st.highest,
                            "batches": st.batches,
                            "records": st.records,
                            "duplicates": st.duplicates,
                            "gaps": st.gaps,
                        }
                        for s, st in node.streams.items()
                    },
                    "health": {
                        s: {
                            k: h.get(k)
                            for k in ("state", "connected", "spool", "counters", "clock", "ts")
                            if k in h
                        }
                        for s, h in node.health.items()
                    },
                }
                for name, node in self._nodes.items()
            }
        return {"connected": self._connected, "counters": dict(self.counters), "nodes": nodes}


def _radio_of(record: SourceEvent) -> Radio:
    if isinstance(record, SensorStatus):
        return record.radio
    if isinstance(record, WifiFrame):
        return Radio.WIFI
    if isinstance(record, BleAdvert):
        return Radio.BLE
    return Radio.SDR


def corrected(record: SourceEvent, offset_s: float, wall_minus_mono: float) -> SourceEvent:
    """A node's record on this core's clocks: true UTC, and this machine's monotonic time."""
    ts = record.ts + offset_s
    mono = ts - wall_minus_mono
    if isinstance(record, SdrBurst):
        return replace(record, ts=ts, mono=mono, t_end=record.t_end + offset_s)
    return replace(record, ts=ts, mono=mono)
