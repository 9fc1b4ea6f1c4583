"""Two gate cores and a command post on a real broker: every gate's alerts and state on one
screen's API, acknowledgements back to the right gate, a broker restart, a gate that stops."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from scanner.mqtt.link import BrokerSettings
from scanner.mqtt.topics import GateTopics
from scanner.observations import SourceEvent
from scanner.sim.scenario import simulate
from scanner.store import alerts as alert_store
from scanner.store import users as user_store
from scanner.store.audit import list_audit
from scanner.store.db import Store
from tests.gates.gates_broker import Broker, wait_for
from tests.gates.gates_support import Gate, Listener, gate_settings, records

PASSWORD = "guard-pass-1"


class Clock:
    """The command post's wall clock, which the staleness test moves on."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> list[SourceEvent]:
    out = tmp_path_factory.mktemp("scenario")
    simulate(3, 3, out, profile="demo", sdr=False)
    return records(out)


@pytest.fixture
def post_clock() -> Clock:
    return Clock()


@pytest.fixture
def command_post(
    broker: Broker, tmp_path: Path, post_clock: Clock
) -> Iterator[Callable[[], TestClient]]:
    """The command post's API (lifespan running), and a way to sign a client in."""
    store = Store(tmp_path / "post.db")
    user_store.add_user(store, "watch", "guard", 1.0, "test", password=PASSWORD)
    settings = ApiSettings(
        store_path=store.path,
        mode="command-post",
        broker=BrokerSettings(port=broker.port, client_id="cp-main", keepalive_s=5),
    )
    app = create_app(settings, clock=post_clock)
    with TestClient(app, base_url="http://localhost") as first:
        assert wait_for(lambda: app.state.command_post.wait_subscribed(0.1))

        def client() -> TestClient:
            c = TestClient(app, base_url="http://localhost")
            r = c.post("/api/v1/session", json={"username": "watch", "password": PASSWORD})
            assert r.status_code == 200, r.text
            return c

        assert first.get("/api/v1/gates").status_code == 401
        yield client
    store.close()


def gates_view(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/v1/gates")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def gate_alerts(view: dict[str, Any], gate: str) -> list[dict[str, Any]]:
    return [a for a in view["alerts"] if a["gate"] == gate]


def gate_status(view: dict[str, Any], gate: str) -> str | None:
    return next((g["status"] for g in view["gates"] if g["gate"] == gate), None)


def test_both_gates_show_and_an_ack_reaches_only_its_gate(
    broker: Broker,
    tmp_path: Path,
    scenario: list[SourceEvent],
    command_post: Callable[[], TestClient],
) -> None:
    client = command_post()
    a = Gate(tmp_path / "a", gate_settings(broker.port, "north", "gate-a"))
    b = Gate(tmp_path / "b", gate_settings(broker.port, "north", "gate-b"))
    try:
        first = scenario[: len(scenario) // 2]
        a.feed(first)
        b.feed(first)

        def both_alarming() -> bool:
            view = gates_view(client)
            return all(
                any(x["alarm"] and x["state"] == "open" for x in gate_alerts(view, g))
                for g in ("gate-a", "gate-b")
            ) and {g["gate"] for g in view["gates"]} == {"gate-a", "gate-b"}

        assert wait_for(both_alarming), gates_view(client)
        view = gates_view(client)
        assert view["command_post"] == "cp-main" and view["broker_connected"] is True
        assert gate_status(view, "gate-a") == "online" and gate_status(view, "gate-b") == "online"
        alarm_b = next(x for x in gate_alerts(view, "gate-b") if x["alarm"])
        assert alarm_b["acknowledged"] is False and alarm_b["title"] == "Handset in zone"
        assert alarm_b["id"] == f"north/gate-b/{alarm_b['alert_id']}"

        r = client.post(
            f"/api/v1/gates/north/gate-b/alerts/{alarm_b['alert_id']}/ack",
            json={"note": "patrol sent"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["delivered"] is True
        assert r.json()["alert"]["ack_state"] == "sent"

        # Recorded at gate B, as a tablet's acknowledgement is, and audited there.
        store_b = Store(b.db)
        try:
            assert wait_for(
                lambda: alert_store.get_alert(store_b, alarm_b["alert_id"]).acknowledged
            )
            rec = alert_store.get_alert(store_b, alarm_b["alert_id"])
            assert rec.acked_by == "watch@cp-main" and rec.ack_note == "patrol sent"
            assert [x["actor"] for x in list_audit(store_b) if x["action"] == "alert.ack"] == [
                "watch@cp-main"
            ]
        finally:
            store_b.close()
        # Gate A has nothing acknowledged.
        store_a = Store(a.db)
        try:
            assert not [x for x in list_audit(store_a) if x["action"] == "alert.ack"]
            assert all(not r.acknowledged for r in alert_store.list_alerts(store_a))
        finally:
            store_a.close()
        # The gate's confirmation comes back: the command post shows who, from the gate.
        assert wait_for(
            lambda: (
                next(
                    x for x in gate_alerts(gates_view(client), "gate-b") if x["id"] == alarm_b["id"]
                )["ack_state"]
                == "confirmed"
            )
        )
        confirmed = next(
            x for x in gate_alerts(gates_view(client), "gate-b") if x["id"] == alarm_b["id"]
        )
        assert confirmed["acked_by"] == "watch@cp-main"
        # Gate A still alarms at the command post.
        assert any(not x["acknowledged"] for x in gate_alerts(gates_view(client), "gate-a"))
        # An alert the gate never had is a 404, not a message into the void.
        r = client.post("/api/v1/gates/north/gate-b/alerts/al-nope/ack", json={"note": ""})
        assert r.status_code == 404

        # Gate A stops cleanly: offline on the command post at once.
        a.close()
        assert wait_for(lambda: gate_status(gates_view(client), "gate-a") == "offline")
        assert gate_status(gates_view(client), "gate-b") == "online"
    finally:
        a.close()
        b.close()


def test_broker_restart_mid_stream_loses_nothing_and_keeps_order(
    broker: Broker,
    tmp_path: Path,
    scenario: list[SourceEvent],
    command_post: Callable[[], TestClient],
) -> None:
    client = command_post()
    topics = GateTopics("north", "gate-a")
    listener = Listener(broker.port, [topics.alerts], client_id="restart-listener")
    gate = Gate(tmp_path / "a", gate_settings(broker.port, "north", "gate-a"))
    try:
        third = len(scenario) // 3
        gate.feed(scenario[:third])
        assert wait_for(lambda: bool(gate_alerts(gates_view(client), "gate-a")))
        broker.stop()
        # The gate goes on while the broker is away: raises and resolutions queue up.
        gate.feed(scenario[third:])
        gate.run_out()
        broker.start()
        assert gate.sink.flush(20.0), gate.sink.counters
        expected = gate.sink.counters["published"]
        assert gate.sink.counters["dropped_queue_full"] == 0

        def received() -> list[int]:
            return [m["seq"] for m in listener.of("/core/alerts")]

        assert wait_for(lambda: len(set(received())) >= expected, timeout=20), received()
        seqs = received()
        # At least once, never out of order: a redelivered message repeats the last one.
        assert sorted(set(seqs)) == list(range(1, expected + 1))
        assert all(b >= a for a, b in itertools.pairwise(seqs)), seqs

        store = Store(gate.db)
        try:
            at_gate = {r.id: r.state for r in alert_store.list_alerts(store)}
        finally:
            store.close()
        assert len(at_gate) >= 2 and set(at_gate.values()) == {"resolved"}

        def at_post() -> dict[str, str]:
            return {
                x["alert_id"]: x["state"]
                for x in gates_view(client)["alerts"]
                if x["gate"] == "gate-a"
            }

        # Resolved alerts stay listed while no one acknowledged them (their alarm is latched).
        assert wait_for(lambda: at_post() == at_gate, timeout=20), (at_post(), at_gate)
    finally:
        gate.close()
        listener.close()


def test_a_silent_gate_turns_stale_and_a_killed_one_offline(
    broker: Broker,
    tmp_path: Path,
    scenario: list[SourceEvent],
    command_post: Callable[[], TestClient],
    post_clock: Clock,
) -> None:
    client = command_post()
    # A gate core in its own process, killed without a goodbye: the broker's last will.
    script = (
        "import sys, time\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from tests.gates.gates_support import Gate, gate_settings\n"
        "g = Gate(__import__('pathlib').Path(sys.argv[1]),"
        " gate_settings(int(sys.argv[2]), 'north', 'gate-k', keepalive_s=5))\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "k"),
            str(broker.port),
            str(Path(__file__).resolve().parents[2]),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"up"
        assert wait_for(lambda: gate_status(gates_view(client), "gate-k") == "online", timeout=15)
        # Silence for longer than three of its health beats (10 s each) reads as stale.
        post_clock.offset = 31.0
        assert gate_status(gates_view(client), "gate-k") == "stale"
        post_clock.offset = 0.0
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        # The broker notices after 1.5 keepalives (7.5 s) and says the gate's will.
        assert wait_for(lambda: gate_status(gates_view(client), "gate-k") == "offline", timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_a_gate_restarted_while_the_broker_was_away_restates_its_alerts(
    broker: Broker,
    tmp_path: Path,
    scenario: list[SourceEvent],
    command_post: Callable[[], TestClient],
) -> None:
    client = command_post()
    settings = gate_settings(broker.port, "north", "gate-r")
    gate = Gate(tmp_path / "r", settings)
    third = len(scenario) // 3
    try:
        gate.feed(scenario[:third])
        assert wait_for(lambda: bool(gate_alerts(gates_view(client), "gate-r")))
        broker.stop()
        # Raises and resolutions while the broker is away, then the core stops: what paho
        # held in memory goes with it.
        gate.feed(scenario[third:])
        gate.run_out()
    finally:
        gate.close()
    store = Store(gate.db)
    try:
        latched = {
            r.id: r.state
            for r in alert_store.list_alerts(store)
            if r.state == "open" or not r.acknowledged
        }
    finally:
        store.close()
    assert len(latched) >= 2 and set(latched.values()) == {"resolved"}
    broker.start()
    restarted = Gate(tmp_path / "r", settings)
    try:

        def at_post() -> dict[str, str]:
            return {a["alert_id"]: a["state"] for a in gate_alerts(gates_view(client), "gate-r")}

        assert wait_for(lambda: at_post() == latched, timeout=20), (at_post(), latched)
        assert all(a["alarm"] for a in gate_alerts(gates_view(client), "gate-r"))
    finally:
        restarted.close()
