"""A sensor node's publisher: its capture daemons' records to the broker, in order, nothing lost.

The capture loop calls ``sink`` (never blocks). The publisher's thread cuts what arrived into
batches (``batch_records``, or whatever came within ``linger_s``), numbers them and publishes
each as one QoS 1 message on the node's observations topic. paho's own thread runs the
connection (a persistent session; it reconnects by itself).

While the broker is unreachable, or while older batches still wait on disk, a batch goes to the
spool (``scanner.mqtt.spool``) instead, so the order per node is the order of capture. When the
link comes back the spool is replayed from its oldest batch, a few in flight at a time, and each
batch is forgotten only when the broker has acknowledged it. A link that drops with batches in
flight puts them back in front (paho may also re-send them: the core drops the copy by its
sequence number). Drops happen only when the spool is over its byte budget (oldest first) or
the capture outruns the publisher, and both are counted in the node's health.

The node's health (state, link, spool, clock, counters) is published retained on its health
topic every few seconds, and the broker publishes an ``offline`` health for it (the will) when
the node vanishes without saying goodbye.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.mqtt.batch import ClockSync, encode_batch
from scanner.mqtt.link import BrokerSettings, open_client
from scanner.mqtt.spool import Spool, SpoolEntry
from scanner.mqtt.topics import GateTopics
from scanner.observations import SourceEvent
from scanner.runtime.transport.codec import encode_line

if TYPE_CHECKING:
    import paho.mqtt.client as paho

_LOGGER = logging.getLogger(__name__)

# 500 records is about 100 KB of JSON: a Pi publishes a dozen such messages a second at the
# design load (6,250 records/s), and the broker's per-message overhead stays a small share.
DEFAULT_BATCH_RECORDS = 500
# A quiet radio's records wait at most this long for company; well inside the second the
# guard's alarm budget leaves the transport.
DEFAULT_LINGER_S = 0.2
# Records accepted but not yet batched; past this the capture outruns the publisher (counted).
# Ten seconds of the design load.
DEFAULT_MAX_PENDING = 60_000
# Batches published and not yet acknowledged: enough to fill a LAN round trip at full rate,
# few enough that a dropped link puts back little.
DEFAULT_INFLIGHT = 16
# Health goes out this often (and on every connect): the core marks a node stale after three.
HEALTH_EVERY_S = 5.0
# chronyc is asked this often; the offset it reports drifts by microseconds a minute.
CLOCK_EVERY_S = 30.0
# Sequence numbers are reserved on disk this many at a time, so a restarted node never reuses
# one (the core would drop its batches as copies) without a disk write per batch.
SEQ_BLOCK = 10_000
# Default spool budget: 64 MiB is about 20 minutes of the design load, and a sliver of an SD card.
DEFAULT_SPOOL_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """Who this publisher is and how much it batches and buffers."""

    node: str
    stream: str
    spool_dir: Path
    spool_bytes: int = DEFAULT_SPOOL_BYTES
    batch_records: int = DEFAULT_BATCH_RECORDS
    linger_s: float = DEFAULT_LINGER_S
    max_pending: int = DEFAULT_MAX_PENDING
    inflight: int = DEFAULT_INFLIGHT
    health_every_s: float = HEALTH_EVERY_S


@dataclass(slots=True)
class _InFlight:
    seq: int
    payload: bytes
    records: int
    entry: SpoolEntry | None  # None: published straight from memory
    acked: bool = False


class NodePublisher:
    """Publishes one stream of a sensor node's records; see the module docstring."""

    def __init__(
        self,
        settings: BrokerSettings,
        options: NodeOptions,
        clock_sync: Callable[[], ClockSync],
        clock: Clock = SYSTEM_CLOCK,
        radios: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.topics = GateTopics(settings.site, settings.gate)
        self._clock_sync = clock_sync
        self._clock = clock
        self._radios = radios
        self.counters: Counter[str] = Counter()
        self.spool = Spool(options.spool_dir, options.spool_bytes)
        self._pending: list[bytes] = []
        self._pending_since: float | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: paho.Client | None = None
        # Filled by paho's thread, drained by ours: paho calls back holding its own locks, so
        # the callbacks only append here (deque appends are atomic) and wake our thread.
        self._acks: collections.deque[int] = collections.deque()
        self._link_events: collections.deque[bool] = collections.deque()
        self._connected = False
        self._inflight: dict[int, _InFlight] = {}
        self._spool_flight: collections.deque[_InFlight] = collections.deque()
        self._seq_file = options.spool_dir / "seq"
        self._next_seq, self._seq_reserved = self._load_seq()
        self._clock_state = ClockSync(False, "none", 0.0)
        self._next_clock = float("-inf")
        self._next_health = float("-inf")
        self._topic = self.topics.observations(options.node)
        self._health_topic = self.topics.sensor_health(options.node, options.stream)

    # -- the capture side ---------------------------------------------------------------------
    def sink(self, event: SourceEvent) -> None:
        """Take one record for the broker; never blocks (the capture loop calls this)."""
        if event.sensor != self.options.node:
            # The broker lets this node publish only under its own name; the core accepts
            # only records that carry it.
            event = replace(event, sensor=self.options.node)
        try:
            line = encode_line(event)
        except (TypeError, ValueError):
            self.counters["dropped_unencodable"] += 1
            return
        with self._cond:
            if len(self._pending) >= self.options.max_pending:
                self.counters["dropped_pending_full"] += 1
                return
            if not self._pending:
                self._pending_since = self._clock.monotonic()
            self._pending.append(line)
            self.counters["records_in"] += 1
            if len(self._pending) >= self.options.batch_records:
                self._cond.notify()

    # -- life ---------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Connect (in the background) and start publishing; the spool is replayed first."""
        client = open_client(
            self.settings, client_id=self.settings.client_id or self.default_client_id()
        )
        client.max_inflight_messages_set(self.options.inflight)
        client.will_set(self._health_topic, self._offline_payload(), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        self._stop.clear()
        client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
        client.loop_start()
        self._thread = threading.Thread(target=self._run, name="mqtt-node", daemon=True)
        self._thread.start()

    def default_client_id(self) -> str:
        return (
            f"{self.settings.site}.{self.settings.gate}.{self.options.node}.{self.options.stream}"
        )

    def close(self, flush_s: float = 2.0) -> None:
        """Publish what is pending (up to ``flush_s``), spool the rest, say goodbye, stop."""
        deadline = self._clock.monotonic() + flush_s
        with self._cond:
            self._pending_since = float("-inf")  # cut the last partial batch now
            self._cond.notify()
        while self._clock.monotonic() < deadline and self._connected and self._busy():
            self._stop.wait(0.02)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        # What was in flight is older than what is still pending: it goes to the spool first.
        self._spool_unacked()
        while self._has_pending():
            self._batch_pending(force=True)
        client, self._client = self._client, None
        if client is not None:
            if self._connected:
                info = client.publish(
                    self._health_topic, self._offline_payload("stopped"), qos=1, retain=True
                )
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=1.0)
            client.disconnect()
            client.loop_stop()
        self._connected = False

    def _has_pending(self) -> bool:
        with self._cond:
            return bool(self._pending)

    def _busy(self) -> bool:
        with self._cond:
            pending = bool(self._pending)
        return pending or bool(self._inflight) or self.spool.pending_batches > 0

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- paho's thread ------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            _LOGGER.warning("broker refused node %s: %s", self.options.node, reason)
            return
        self._link_events.append(True)
        with self._cond:
            self._cond.notify()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._link_events.append(False)
        with self._cond:
            self._cond.notify()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._acks.append(mid)
        with self._cond:
            self._cond.notify()

    # -- our thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._link_changes()
            self._take_acks()
            now = self._clock.monotonic()
            if now >= self._next_clock:
                self._refresh_clock()
                self._next_clock = now + CLOCK_EVERY_S
            self._batch_pending(force=False)
            if self._connected:
                self._replay_spool()
                if now >= self._next_health:
                    self._publish_health()
                    self._next_health = now + self.options.health_every_s
            with self._cond:
                if not self._acks and not self._link_events and not self._ready_locked():
                    self._cond.wait(timeout=self.options.linger_s / 2)

    def _ready_locked(self) -> bool:
        if len(self._pending) >= self.options.batch_records:
            return True
        since = self._pending_since
        return (
            bool(self._pending)
            and since is not None
            and (self._clock.monotonic() - since >= self.options.linger_s)
        )

    def _refresh_clock(self) -> None:
        try:
            self._clock_state = self._clock_sync()
        except Exception:
            _LOGGER.exception("reading the clock's sync state failed")

    def _link_changes(self) -> None:
        while self._link_events:
            up = self._link_events.popleft()
            if up and not self._connected:
                self._connected = True
                self.counters["connects"] += 1
                _LOGGER.info(
                    "node %s connected to %s:%d",
                    self.options.node,
                    self.settings.host,
                    self.settings.port,
                )
                self._next_health = float("-inf")
            elif not up and self._connected:
                self._connected = False
                self.counters["disconnects"] += 1
                _LOGGER.warning(
                    "node %s lost the broker; buffering to %s",
                    self.options.node,
                    self.options.spool_dir,
                )
                self._spool_unacked()

    def _spool_unacked(self) -> None:
        """Put what was in flight back in front of the spool, in order."""
        self._take_acks()
        direct = sorted(
            (f for f in self._inflight.values() if f.entry is None and not f.acked),
            key=lambda f: f.seq,
        )
        for flight in direct:
            self.spool.append(flight.payload, flight.records)
        if self._spool_flight:
            self.spool.rewind()
        self._inflight.clear()
        self._spool_flight.clear()

    def _take_acks(self) -> None:
        while self._acks:
            mid = self._acks.popleft()
            flight = self._inflight.pop(mid, None)
            if flight is None:
                continue  # a re-send paho made of a batch we already put back
            flight.acked = True
            self.counters["batches_acked"] += 1
            self.counters["records_acked"] += flight.records
            if flight.entry is not None:
                # The spool forgets entries strictly in order: only the acknowledged prefix.
                while self._spool_flight and self._spool_flight[0].acked:
                    done = self._spool_flight.popleft()
                    if done.entry is not None:
                        self.spool.commit(done.entry)

    def _batch_pending(self, force: bool) -> None:
        with self._cond:
            if not self._pending or not (force or self._ready_locked()):
                return
            lines = self._pending[: self.options.batch_records]
            del self._pending[: self.options.batch_records]
            self._pending_since = self._clock.monotonic() if self._pending else None
        seq = self._take_seq()
        payload = encode_batch(
            self.options.node,
            self.options.stream,
            seq,
            self._clock.wall(),
            self._clock_state,
            lines,
        )
        self.counters["batches"] += 1
        direct_ok = (
            self._connected
            and self.spool.pending_batches == 0
            and len(self._inflight) < self.options.inflight
            and not force
        )
        if direct_ok and self._publish(_InFlight(seq, payload, len(lines), None)):
            return
        self.spool.append(payload, len(lines))

    def _replay_spool(self) -> None:
        while self._connected and len(self._inflight) < self.options.inflight:
            entry = self.spool.read_next()
            if entry is None:
                return
            flight = _InFlight(-1, entry.payload, entry.records, entry)
            self._spool_flight.append(flight)
            if not self._publish(flight):
                self._spool_flight.pop()
                self.spool.rewind()
                self._spool_flight.clear()
                return
            self.counters["batches_replayed"] += 1

    def _publish(self, flight: _InFlight) -> bool:
        client = self._client
        if client is None:
            return False
        info = client.publish(self._topic, flight.payload, qos=1)
        if info.rc != 0:
            self.counters["publish_errors"] += 1
            return False
        self._inflight[info.mid] = flight
        return True

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        if self._next_seq >= self._seq_reserved:
            self._seq_reserved = self._next_seq + SEQ_BLOCK
            self._write_seq(self._seq_reserved)
        return seq

    def _load_seq(self) -> tuple[int, int]:
        try:
            start = int(self._seq_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            start = 0
        reserved = start + SEQ_BLOCK
        self._write_seq(reserved)
        return start, reserved

    def _write_seq(self, value: int) -> None:
        tmp = self._seq_file.with_suffix(".tmp")
        try:
            tmp.write_text(f"{value}\n", encoding="ascii")
            tmp.replace(self._seq_file)
        except OSError as exc:
            self.counters["seq_write_errors"] += 1
            _LOGGER.warning("cannot reserve sequence numbers in %s: %s", self._seq_file, exc)

    # -- health -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The node's state as published on its health topic."""
        spool = self.spool.health()
        dropped = (
            spool["dropped_records"]
            + self.counters["dropped_pending_full"]
            + self.counters["dropped_unencodable"]
        )
        state = "degraded" if not self._connected or dropped else "ok"
        out: dict[str, Any] = {
            "v": 1,
            "node": self.options.node,
            "stream": self.options.stream,
            "ts": self._clock.wall(),
            "state": state,
            "connected": self._connected,
            "clock": self._clock_state.as_json(),
            "spool": spool,
            "counters": {**dict(self.counters), "dropped_records": dropped},
            "next_seq": self._next_seq,
        }
        if self._radios is not None:
            out["radios"] = self._radios()
        return out

    def transport_counters(self) -> dict[str, int]:
        """What travels in the radios' own health: the link, the spool, and every drop."""
        spool = self.spool.health()
        return {
            "mqtt_connected": int(self._connected),
            "mqtt_batches_acked": self.counters["batches_acked"],
            "spool_bytes": spool["bytes"],
            "spool_pending_batches": spool["pending_batches"],
            "spool_dropped_records": spool["dropped_records"],
            "dropped_pending_full": self.counters["dropped_pending_full"],
        }

    def _publish_health(self) -> None:
        client = self._client
        if client is None:
            return
        payload = json.dumps(self.health(), separators=(",", ":"), default=str)
        client.publish(self._health_topic, payload, qos=1, retain=True)

    def _offline_payload(self, state: str = "offline") -> str:
        return json.dumps(
            {"v": 1, "node": self.options.node, "stream": self.options.stream, "state": state},
            separators=(",", ":"),
        )
