"""Sensor nodes and a gate core through a real Mosquitto (TLS, certificate per node, ACL)."""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.clock import ManualClock
from scanner.core.pipeline import Core
from scanner.mqtt.batch import ClockSync, encode_batch
from scanner.mqtt.ingest import CoreIngest
from scanner.mqtt.link import BrokerSettings, open_client
from scanner.mqtt.node import NodeOptions, NodePublisher
from scanner.mqtt.topics import GateTopics
from scanner.observations import SensorStatus, SourceEvent, WifiFrame
from scanner.runtime.core_runner import CoreRunner
from scanner.runtime.demo_plan import BUNDLED_SCENARIO, options_for
from scanner.runtime.transport import EventQueue, Message
from scanner.runtime.transport.codec import InputsChanged, encode_line
from scanner.sinks.ndjson import NdjsonSink
from scanner.sources.replay import iter_scenario
from tests.mqtt.mqtt_support import GATE, SITE, Broker, Proxy, connected_client

SYNCED = ClockSync(True, "timesyncd", 0.0)


def settings(broker: Broker, name: str, port: int | None = None) -> BrokerSettings:
    cert, key = broker.certs[name]
    return BrokerSettings(
        host="127.0.0.1",
        port=port or broker.port,
        site=SITE,
        gate=GATE,
        ca_file=broker.ca,
        cert_file=cert,
        key_file=key,
        keepalive_s=5,
    )


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or check}")


def frame(node: str, n: int, ts: float) -> WifiFrame:
    """A probe request whose ``seq`` numbers it within its node's stream."""
    return WifiFrame(
        ts=ts,
        mono=ts - 1_000_000.0,
        subtype="probe_req",
        mac="02:00:00:00:00:01",
        random_mac=True,
        rssi_dbm=-60,
        freq_mhz=2437,
        ssid="",
        seq=n,
        fingerprint="f00d",
        sensor=node,
    )


class Drain:
    """Takes what the core's queue receives, by sensor, on a thread (as the core loop does)."""

    def __init__(self, events: EventQueue) -> None:
        self.events = events
        self.got: dict[str, list[SourceEvent]] = defaultdict(list)
        self.order: list[SourceEvent] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            event = self.events.get(timeout=0.05)
            # Only records travel over the broker (InputsChanged is the API's, in-process).
            if event is not None and not isinstance(event, InputsChanged):
                self.got[event.sensor].append(event)
                self.order.append(event)

    def frames(self, node: str) -> list[WifiFrame]:
        return [e for e in self.got[node] if isinstance(e, WifiFrame)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@pytest.fixture
def core_side(broker: Broker) -> Iterator[tuple[CoreIngest, Drain]]:
    events = EventQueue(200_000)
    ingest = CoreIngest(settings(broker, "core"), events)
    ingest.start()
    drain = Drain(events)
    wait_for(lambda: ingest.connected, what="the core's connection")
    # The subscription is in place once the broker has answered it; a retained message would
    # show it too, but nothing is retained yet: give the SUBACK a moment.
    time.sleep(0.3)
    yield ingest, drain
    ingest.close()
    drain.close()


def start_node(
    broker: Broker,
    tmp_path: Path,
    node: str,
    *,
    port: int | None = None,
    clock_sync: ClockSync = SYNCED,
    batch_records: int = 200,
    spool_bytes: int = 16 * 1024 * 1024,
    stream: str = "node",
) -> NodePublisher:
    publisher = NodePublisher(
        settings(broker, node, port),
        NodeOptions(
            node=node,
            stream=stream,
            spool_dir=tmp_path / f"spool-{node}-{stream}",
            spool_bytes=spool_bytes,
            batch_records=batch_records,
            linger_s=0.05,
        ),
        lambda: clock_sync,
    )
    publisher.start()
    return publisher


def assert_in_order(frames: list[WifiFrame], count: int) -> None:
    seqs = [f.seq for f in frames]
    assert seqs == list(range(count)), _first_difference(seqs, count)


def _first_difference(seqs: list[int], count: int) -> str:
    for i, (a, b) in enumerate(zip(seqs, range(count), strict=False)):
        if a != b:
            return f"at {i}: got {a}, expected {b} ({len(seqs)} of {count} received)"
    return f"{len(seqs)} of {count} received"


def test_two_nodes_reach_the_core_in_order_with_health(
    broker: Broker, tmp_path: Path, core_side: tuple[CoreIngest, Drain]
) -> None:
    ingest, drain = core_side
    nodes = {name: start_node(broker, tmp_path, name) for name in ("inside", "gate")}
    wait_for(lambda: all(p.connected for p in nodes.values()), what="both nodes connected")
    now = time.time()
    for n in range(3000):
        for name, publisher in nodes.items():
            publisher.sink(frame(name, n, now + n * 0.001))
    wait_for(
        lambda: all(len(drain.frames(name)) >= 3000 for name in nodes),
        what="6000 records at the core",
    )
    for name in nodes:
        assert_in_order(drain.frames(name), 3000)
        assert all(f.sensor == name for f in drain.frames(name))
    wait_for(lambda: set(ingest.health()["nodes"]) == {"inside", "gate"}, what="node health")
    seen = ingest.health()["nodes"]["inside"]
    assert seen["clock"] == {"synced": True, "source": "timesyncd", "offset_s": 0.0}
    assert seen["streams"]["node"]["records"] == 3000
    assert seen["health"]["node"]["state"] == "ok"
    for publisher in nodes.values():
        publisher.close()
    assert ingest.counters["duplicate_batches"] == 0


def test_broker_killed_and_restarted_mid_stream_loses_nothing(
    broker: Broker, tmp_path: Path, core_side: tuple[CoreIngest, Drain]
) -> None:
    ingest, drain = core_side
    nodes = {name: start_node(broker, tmp_path, name) for name in ("inside", "gate")}
    wait_for(lambda: all(p.connected for p in nodes.values()), what="both nodes connected")
    total = 6000
    sent = Counter[str]()
    stop = threading.Event()

    def capture(name: str, publisher: NodePublisher) -> None:
        # A radio at 2,000 records/s, which does not pause for the broker.
        start = time.time()
        for n in range(total):
            publisher.sink(frame(name, n, start + n / 2000))
            sent[name] += 1
            if n % 100 == 99:
                time.sleep(0.05)
            if stop.is_set():
                return

    threads = [threading.Thread(target=capture, args=item, daemon=True) for item in nodes.items()]
    for t in threads:
        t.start()
    wait_for(lambda: min(sent.values(), default=0) >= 1500, what="the stream under way")
    # Mosquitto stopped as systemd stops it (SIGTERM: it saves its sessions), then started.
    broker.stop(signal.SIGTERM)
    wait_for(lambda: not any(p.connected for p in nodes.values()), what="nodes see the outage")
    time.sleep(1.0)
    assert any(p.spool.pending_batches for p in nodes.values()), "nothing was spooled"
    broker.start()
    for t in threads:
        t.join(timeout=60)
    stop.set()
    wait_for(
        lambda: all(len(drain.frames(name)) >= total for name in nodes),
        timeout=60,
        what="every record after the restart",
    )
    time.sleep(0.5)  # a late copy, if any, would arrive now
    for name, publisher in nodes.items():
        assert_in_order(drain.frames(name), total)
        assert publisher.spool.health()["dropped_records"] == 0
        publisher.close()
    assert ingest.counters["connects"] >= 2


def test_node_offline_five_minutes_replays_its_buffer_and_alarms_at_the_right_time(
    broker: Broker, proxy: Proxy, tmp_path: Path
) -> None:
    """The gate node's network fails 30 s into the bundled six-minute scenario and comes back
    five minutes later. Its records are spooled, replayed in order once the link is back, and
    the core (ticking on its own clock all along, as it does live) places the alarms at the
    time the phones were heard, not when the records arrived."""
    records = [
        dataclasses.replace(e, sensor="gate") for e in iter_scenario(BUNDLED_SCENARIO, Counter())
    ]
    t0 = min(e.ts for e in records)
    phases = [
        [e for e in records if e.ts < t0 + 30],
        [e for e in records if t0 + 30 <= e.ts < t0 + 330],
        [e for e in records if e.ts >= t0 + 330],
    ]
    # The core's clocks: the scenario's time, moved by the test as the outage goes on.
    clock = ManualClock(start=t0)
    events = EventQueue(200_000)
    ingest = CoreIngest(settings(broker, "core"), events, clock)
    ingest.start()
    wait_for(lambda: ingest.connected, what="the core's connection")
    time.sleep(0.3)
    lines: list[dict[str, Any]] = []
    core = Core(options_for(BUNDLED_SCENARIO), clock)
    runner = CoreRunner(core, [NdjsonSink(lines.append)], None, None)
    arrived: list[SourceEvent] = []
    # What the core's side says of the node (its will: the node's radios in fault), not records.
    said: list[SensorStatus] = []

    def hand(event: Message | None) -> None:
        if event is None or isinstance(event, InputsChanged):
            return
        if isinstance(event, SensorStatus):
            said.append(event)
        else:
            arrived.append(event)
        runner.handle(event)

    def take(n: int) -> None:
        """Hand the core what arrived, as its loop does, until ``n`` records in all."""
        deadline = time.monotonic() + 60
        while len(arrived) < n and time.monotonic() < deadline:
            hand(events.get(timeout=0.1))
        assert len(arrived) == n, f"{len(arrived)} of {n} records reached the core"

    node = start_node(broker, tmp_path, "gate", port=proxy.port, batch_records=100)
    try:
        wait_for(lambda: node.connected, what="the node's connection")
        for e in phases[0]:
            node.sink(e)
        take(len(phases[0]))
        clock.advance(30)

        proxy.down()
        wait_for(lambda: not node.connected, what="the node to see the outage")
        for e in phases[1]:
            node.sink(e)
        wait_for(
            # Batches in flight when the link dropped are spooled again too (>=).
            lambda: (
                node.spool.health()["pending_records"] >= len(phases[1]) and not node._has_pending()
            ),
            what="the outage's records in the spool",
        )
        # Five minutes pass at the core: it ticks, as its loop does twice a second. A batch the
        # broker took just before the cut may still arrive (its acknowledgement was lost, so the
        # node spooled it again: the core keeps the first and drops the copy).
        for _ in range(600):
            clock.advance(0.5)
            runner.tick(clock.monotonic())
            while (event := events.get_nowait()) is not None:
                hand(event)

        proxy.up()
        wait_for(lambda: node.connected, timeout=40, what="the node back")
        for e in phases[2]:
            node.sink(e)
        take(sum(len(p) for p in phases))
        # Every record is on the core's monotonic timeline (the manual clock's, near 1,000 s).
        odd = [e for e in arrived if not 900 < e.mono < 2000]
        assert not odd, f"records off the core's timeline: {odd[:3]}"
        runner.run_out(max(e.mono for e in arrived), 60.0)
        # The broker hands a batch on to the core before its acknowledgement reaches the node,
        # which only then deletes the batch from its spool: the last one may still be on its way.
        wait_for(
            lambda: node.spool.health()["pending_batches"] == 0,
            what="the node's spool emptied by the broker's acknowledgements",
        )
        assert node.spool.health()["dropped_records"] == 0
    finally:
        node.close()
        ingest.close()

    # The node's will reached the core: every radio it had fed is in fault from the cut on.
    assert {(s.sensor, str(s.radio), str(s.state)) for s in said} == {
        ("gate", "ble", "fault"),
        ("gate", "sdr", "fault"),
        ("gate", "wifi", "fault"),
    }
    # Nothing lost, nothing twice, in capture order, with the time each was heard.
    assert [(e.ts, type(e)) for e in arrived] == [(e.ts, type(e)) for e in records]
    # Alarms: every visitor of the scenario alarmed while in the zone, at the recorded time.
    truth = json.loads((BUNDLED_SCENARIO / "truth.json").read_text())
    alarms = [ln for ln in lines if ln.get("alarm") and ln["event"] in ("raised", "updated")]
    assert alarms
    for device in truth["devices"]:
        if device["kind"] != "handset" or device["allowlisted"]:
            continue
        for start, end in device["zone_intervals"]:
            within = [a for a in alarms if t0 + start - 5 <= a["ts"] <= t0 + end + 5]
            assert within, f"no alarm for {device['id']} in the zone at {start}-{end} s"
    # An alarm raised from a replayed record carries the record's time, inside the outage,
    # and none is put at the moment the records arrived (330 s and later).
    replayed = [a for a in alarms if t0 + 30 <= a["ts"] < t0 + 330]
    assert replayed, "the outage's visitors raised nothing"
    outage_end = t0 + 330
    late_raised = [
        a for a in lines if a["event"] == "raised" and outage_end <= a["ts"] < outage_end + 1
    ]
    assert not late_raised, f"alarms placed at the arrival time: {late_raised}"
    # The visitor inside when the link went down is one alert throughout: the core could not
    # hear the node, which is no evidence the phone left (no resolve, and no second alarm when
    # the replay brings the phone back).
    cut = 30.0
    start, end = next(
        (s, e)
        for d in truth["devices"]
        if d["kind"] == "handset" and not d["allowlisted"]
        for s, e in d["zone_intervals"]
        if s < cut < e
    )
    first = next(ln for ln in lines if ln["event"] == "raised" and ln["ts"] < t0 + cut)
    assert first["ts"] >= t0 + start - 5
    closed = [
        ln for ln in lines if ln["alert_id"] == first["alert_id"] and ln["event"] == "resolved"
    ]
    assert not closed or closed[0]["ts"] >= t0 + end, f"resolved while inside: {closed}"
    again = [ln for ln in lines if ln["event"] == "raised" and t0 + cut <= ln["ts"] < t0 + end]
    assert not again, f"a second alarm for the visitor held through the outage: {again}"


def test_a_certificate_from_another_ca_is_refused(
    broker: Broker, tmp_path: Path, core_side: tuple[CoreIngest, Drain]
) -> None:
    _ingest, drain = core_side
    rogue = BrokerSettings(
        host="127.0.0.1",
        port=broker.port,
        site=SITE,
        gate=GATE,
        ca_file=broker.ca,
        cert_file=broker.certs["rogue"][0],
        key_file=broker.certs["rogue"][1],
        keepalive_s=5,
    )
    client = open_client(rogue, client_id="rogue")
    with pytest.raises(OSError):
        # The broker ends the TLS handshake: the certificate's issuer is not its CA.
        client.connect("127.0.0.1", broker.port, 5)
        for _ in range(20):
            if client.loop(timeout=0.1) != 0:
                raise ConnectionError("the broker closed the connection")
    client.loop_stop()
    assert not drain.got, "a record got through"


def test_a_node_cannot_publish_as_another(
    broker: Broker, tmp_path: Path, core_side: tuple[CoreIngest, Drain]
) -> None:
    """The ACL keeps each node under its own topics; the core also checks the batch's name."""
    ingest, drain = core_side
    topics = GateTopics(SITE, GATE)
    now = time.time()
    # Node "inside" (its own certificate) publishes a well-formed batch on gate's topic: the
    # broker acknowledges the packet (QoS 1) but delivers it to nobody (and may then close the
    # connection of a client that breaks its ACL).
    forged = encode_batch(
        "gate", "x", 0, now, SYNCED, [encode_line(frame("gate", n, now)) for n in range(50)]
    )
    for topic in (topics.observations("gate"), topics.observations("inside")):
        # The second: on its own topic, a batch that names another node: the core drops it.
        intruder = connected_client(settings(broker, "inside"), "intruder")
        try:
            info = intruder.publish(topic, forged, qos=1)
            info.wait_for_publish(timeout=10)
            assert info.is_published()
        finally:
            intruder.disconnect()
            intruder.loop_stop()
    honest = start_node(broker, tmp_path, "inside")
    wait_for(lambda: honest.connected, what="the honest node connected")
    for n in range(50):
        honest.sink(frame("inside", n, now))
    wait_for(lambda: len(drain.frames("inside")) == 50, what="the honest node's records")
    honest.close()
    assert drain.frames("gate") == []
    assert "gate" not in ingest.health()["nodes"]
    assert ingest.counters["foreign_batches"] == 1


def test_a_node_clock_off_by_two_seconds_is_corrected_from_its_offset(
    broker: Broker, tmp_path: Path, core_side: tuple[CoreIngest, Drain]
) -> None:
    """Both nodes hear the same transmission at the same instant; the gate node's clock runs
    2 s fast and it says so (offset -2 s): the core sees both at the true time."""
    _ingest, drain = core_side
    inside = start_node(broker, tmp_path, "inside")
    gate = start_node(broker, tmp_path, "gate", clock_sync=ClockSync(True, "config", -2.0))
    wait_for(lambda: inside.connected and gate.connected, what="both nodes connected")
    true_time = time.time()
    for n in range(20):
        inside.sink(frame("inside", n, true_time + n))
        gate.sink(frame("gate", n, true_time + n + 2.0))  # its clock says 2 s later
    wait_for(
        lambda: len(drain.frames("inside")) == 20 and len(drain.frames("gate")) == 20,
        what="both nodes' records",
    )
    for a, b in zip(drain.frames("inside"), drain.frames("gate"), strict=True):
        assert b.ts == pytest.approx(a.ts, abs=1e-6)
        # On the core's monotonic timeline too, which every decision uses.
        assert b.mono == pytest.approx(a.mono, abs=0.05)
    inside.close()
    gate.close()
