"""A gate core's alerts and health on a real broker, and acknowledgements coming back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from scanner.mqtt.topics import GateTopics
from scanner.observations import SourceEvent
from scanner.runtime.transport.codec import InputsChanged
from scanner.sim.scenario import simulate
from scanner.sinks.mqtt import AckMessage
from scanner.store import alerts as alert_store
from scanner.store.audit import list_audit
from scanner.store.db import Store
from tests.gates.gates_broker import Broker, wait_for
from tests.gates.gates_support import Gate, Listener, gate_settings, records


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> list[SourceEvent]:
    """Three minutes at the demo's gate: two visitors with phones, so two alerts."""
    out = tmp_path_factory.mktemp("scenario")
    simulate(3, 3, out, profile="demo", sdr=False)
    return records(out)


def store_events(db: Path) -> list[tuple[str, str]]:
    """(alert id, transition) in the order the gate's store recorded them."""
    store = Store(db)
    try:
        rows = store.query("SELECT alert_id, event FROM alert_history ORDER BY seq")
        return [(r["alert_id"], r["event"]) for r in rows]
    finally:
        store.close()


def test_every_alert_transition_is_published_in_order_with_its_fields(
    broker: Broker, tmp_path: Path, scenario: list[SourceEvent]
) -> None:
    topics = GateTopics("north", "gate-a")
    listener = Listener(broker.port, [topics.alerts, topics.core_health])
    gate = Gate(tmp_path / "a", gate_settings(broker.port, "north", "gate-a"))
    try:
        gate.feed(scenario)
        gate.run_out()
        assert gate.sink.flush(10.0)
        published = listener.of("/core/alerts")
        recorded = [(a, e) for a, e in store_events(gate.db) if e in ("raised", "resolved")]
        assert len(recorded) >= 4, recorded  # the scenario's two visitors
        assert wait_for(
            lambda: (
                [
                    (m["alert_id"], m["event"])
                    for m in listener.of("/core/alerts")
                    if m["event"] in ("raised", "resolved")
                ]
                == recorded
            )
        ), (published, recorded)
        published = listener.of("/core/alerts")
        assert [m["seq"] for m in published] == list(range(1, len(published) + 1))
        raised = next(m for m in published if m["event"] == "raised")
        assert raised["site"] == "north" and raised["gate"] == "gate-a"
        assert raised["title"] == "Handset in zone" and raised["kind"] == "handset"
        assert raised["alarm"] is True and 0 < raised["confidence"] <= 1
        assert raised["reasons"] and isinstance(raised["ts"], float)
        assert any(m["event"] == "alarmed" for m in published)
        health = listener.of("/core/health")
        assert health and health[-1]["state"] == "online"
        assert health[-1]["sensors"], health[-1]
    finally:
        gate.close()
        listener.close()
    # A clean stop leaves "offline" retained for whoever subscribes next.
    late = Listener(broker.port, [topics.core_health], client_id="late")
    try:
        assert wait_for(lambda: bool(late.of("/core/health")))
        assert late.of("/core/health")[-1]["state"] == "offline"
    finally:
        late.close()


def test_the_core_never_waits_for_an_absent_broker_and_counts_what_it_drops(
    broker: Broker, tmp_path: Path, scenario: list[SourceEvent]
) -> None:
    broker.stop()
    settings = gate_settings(broker.port, "north", "gate-b")
    gate = Gate(tmp_path / "b", settings, queue_limit=3, paho_limit=2)
    try:
        started = time.monotonic()
        gate.feed(scenario)
        gate.run_out()
        took = time.monotonic() - started
        # The same replay takes about 0.15 s with no sink; a core that waited on the network
        # even once (paho's first reconnect is 1 s away) would take far longer.
        assert took < 1.0, took
        transitions = [e for _a, e in store_events(gate.db)]
        assert len(transitions) > 3
        # Two are with paho, three wait in the queue; the rest are counted drops.
        assert wait_for(lambda: gate.sink.counters["published"] == 2)
        assert gate.sink.pending() == 3
        counters = gate.sink.counters
        kept = counters["published"] + gate.sink.pending()
        assert counters["dropped_queue_full"] > 0
        # With the broker back, the five kept arrive, oldest first, numbered without a gap.
        listener_topics = [GateTopics("north", "gate-b").alerts]
        broker.start()
        listener = Listener(broker.port, listener_topics)
        try:
            assert wait_for(lambda: len(listener.of("/core/alerts")) == kept, timeout=15)
            assert [m["seq"] for m in listener.of("/core/alerts")] == list(range(1, kept + 1))
        finally:
            listener.close()
    finally:
        gate.close()


def test_an_ack_from_the_command_post_is_applied_once_like_the_tablets(
    broker: Broker, tmp_path: Path, scenario: list[SourceEvent]
) -> None:
    topics = GateTopics("north", "gate-c")
    listener = Listener(broker.port, [topics.alerts])
    told: list[str] = []  # what the core's queue would carry (QueueNotifier in a process)
    gate = Gate(tmp_path / "c", gate_settings(broker.port, "north", "gate-c"), notify=told.append)
    try:
        assert wait_for(lambda: gate.sink.connected)
        half = scenario[: len(scenario) // 2]
        gate.feed(half)
        # An alert still open and alarming at the gate, once the command post could know it.
        open_now = gate.core.core.unacknowledged_alerts()
        assert open_now
        alert_id = open_now[0]
        assert wait_for(
            lambda: any(
                m["event"] == "raised" and m["alert_id"] == alert_id
                for m in listener.of("/core/alerts")
            )
        )
        ack = AckMessage(alert_id, "sergeant", "seen on camera 2", "cp-main", time.time())
        for _ in range(2):  # the second is a redelivery (QoS 1 is at least once)
            listener.client.publish(topics.acks, ack.to_payload(), qos=1).wait_for_publish(5)
        store = Store(gate.db)
        try:
            assert wait_for(lambda: alert_store.get_alert(store, alert_id).acknowledged)
            record = alert_store.get_alert(store, alert_id)
            assert record.acked_by == "sergeant@cp-main"
            assert record.ack_note == "seen on camera 2"
            time.sleep(0.3)  # give the redelivered copy time to arrive and be refused
            audits = [a for a in list_audit(store) if a["action"] == "alert.ack"]
            assert len(audits) == 1, audits
            assert audits[0]["actor"] == "sergeant@cp-main"
            detail = audits[0]["detail"]
            detail = json.loads(detail) if isinstance(detail, str) else detail
            assert detail["command_post"] == "cp-main" and detail["alert_id"] == alert_id
            history = [e for a, e in store_events(gate.db) if a == alert_id]
            assert history.count("acknowledged") == 1
            assert gate.sink.acks is not None
            assert gate.sink.acks.counters["acks_applied"] == 1
            assert gate.sink.acks.counters["acks_repeated"] == 1
        finally:
            store.close()
        # The core is told at once, as the API tells it of the tablet's, and takes it from the
        # store: the alert no longer alarms there, before any further record or poll.
        assert told == ["ack"]
        assert alert_id in gate.core.core.unacknowledged_alerts()
        gate.core.handle(InputsChanged("ack"))
        assert alert_id not in gate.core.core.unacknowledged_alerts()
        gate.feed(scenario[len(scenario) // 2 :])
        gate.run_out()
        assert wait_for(
            lambda: any(
                m["event"] == "acknowledged" and m["alert_id"] == alert_id
                for m in listener.of("/core/alerts")
            )
        )
        acked = next(
            m
            for m in listener.of("/core/alerts")
            if m["event"] == "acknowledged" and m["alert_id"] == alert_id
        )
        assert acked["by"] == "sergeant@cp-main" and acked["note"] == "seen on camera 2"
    finally:
        gate.close()
        listener.close()
