"""An acknowledgement (or an allowlist change) reaches the core as an input, not on its next poll
of the store: the API's word travels on the core's own queue (one process) or socket (daemons),
so a phone heard right after a guard pressed Acknowledge alarms as a new alert."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from scanner.clock import SYSTEM_CLOCK
from scanner.core.events import AlertRaised, AlertUpdated, CoreInput
from scanner.core.options import CoreOptions
from scanner.observations import WifiFrame
from scanner.runtime.build import check_store, core_loop_factory
from scanner.runtime.transport import EventQueue, QueueNotifier, SocketNotifier, SocketReceiver
from scanner.runtime.transport.codec import (
    FrameError,
    InputsChanged,
    decode_message,
    encode_inputs_changed,
)
from scanner.sinks.store import StoreInputs
from scanner.store import alerts as alert_store
from scanner.store import users as user_store
from scanner.store.db import Store
from tests.core.helpers import Harness, probe
from tests.helpers.daemons import wait_for

# A poll period no test waits for: only the API's word can bring the acknowledgement in time.
NO_POLL = CoreOptions(allowlist_poll_s=3600.0)


def _visit(harness: Harness, mac: str, fp: str, start: float) -> None:
    for i in range(6):
        harness.handle(probe(start + 0.5 * i, mac, -40, fp=fp))


def _alarmed(harness: Harness) -> list[tuple[str, str]]:
    return [
        (type(e).__name__, e.alert.id)
        for e in harness.events
        if isinstance(e, AlertRaised) or (isinstance(e, AlertUpdated) and e.alarm)
    ]


@pytest.mark.parametrize("told", [True, False])
def test_a_phone_after_an_acknowledgement_is_a_new_alert_once_the_core_is_told(
    tmp_path: Path, told: bool
) -> None:
    store = Store(tmp_path / "checkpoint.db")
    harness = Harness(store, NO_POLL)
    _visit(harness, "02:00:00:00:00:01", "fp-first", 0.0)
    (first,) = _alarmed(harness)
    alert_store.acknowledge_alert(store, first[1], time.time(), "guard")
    if told:
        harness.runner.inputs_changed("ack")
    # A second visitor walks in while the first is still inside.
    _visit(harness, "02:00:00:00:00:02", "fp-second", 4.0)
    alarms = _alarmed(harness)
    assert len(alarms) == 2
    if told:
        assert alarms[1][0] == "AlertRaised" and alarms[1][1] != first[1]
    else:
        # Without the word the core still thinks the first alert is unacknowledged, and the
        # newcomer re-arms it: the alarm a guard who just acknowledged it may take for stale.
        assert alarms[1] == ("AlertUpdated", first[1])
    store.close()


class CountingInputs(StoreInputs):
    """The store's inputs, counting how often the core reads them."""

    reads = 0

    def poll(self, unacknowledged: Sequence[str], force: bool = False) -> list[CoreInput]:
        self.reads += 1
        return super().poll(unacknowledged, force)


def test_the_word_is_read_at_most_every_few_tens_of_milliseconds(tmp_path: Path) -> None:
    store = Store(tmp_path / "checkpoint.db")
    harness = Harness(store, NO_POLL)
    inputs = CountingInputs(store)
    harness.runner.inputs = inputs
    for _ in range(50):
        harness.runner.inputs_changed("ack")
    assert inputs.reads == 1
    time.sleep(0.06)
    # A word still pending is read with the next record once the gap has passed.
    harness.handle(probe(1.0, "02:00:00:00:00:09", -90))
    assert inputs.reads == 2
    store.close()


def test_the_wire_form_carries_only_which_kind_of_change() -> None:
    line = encode_inputs_changed(InputsChanged("allowlist"))
    assert decode_message(line) == InputsChanged("allowlist")
    with pytest.raises(FrameError):
        decode_message(b'{"v":1,"t":"inputs","what":"drop every alert"}')


def test_a_notifier_with_no_core_listening_counts_and_does_not_raise(tmp_path: Path) -> None:
    notifier = SocketNotifier(tmp_path / "nobody.sock")
    notifier("ack")
    assert notifier.counters["notify_failed"] == 1


def test_acknowledgement_over_the_core_socket_reaches_the_core_loop(tmp_path: Path) -> None:
    """The daemon layout: records and the API's word arrive on the core's socket."""
    db = tmp_path / "checkpoint.db"
    check_store(db)
    events = EventQueue(1000)
    receiver = SocketReceiver(tmp_path / "core.sock", events)
    receiver.start()
    loop = core_loop_factory(str(db), NO_POLL, events, SYSTEM_CLOCK)()
    loop.start()
    store = Store(db)
    try:
        base = time.monotonic()

        def visit(mac: str, fp: str) -> None:
            for i in range(6):
                t = time.monotonic() - base + i * 0.01
                frame = probe(t, mac, -40, fp=fp)
                events.put(_at(frame, base))

        def alerts() -> list[alert_store.AlertRecord]:
            return alert_store.list_alerts(store)

        visit("02:00:00:00:00:01", "fp-first")
        assert wait_for(lambda: len(alerts()) == 1, 10.0, every=0.02)
        first = alerts()[0]
        alert_store.acknowledge_alert(store, first.id, time.time(), "guard")
        SocketNotifier(tmp_path / "core.sock")("ack")
        assert wait_for(lambda: receiver.counters["records"] >= 1, 5.0, every=0.01)
        time.sleep(0.2)  # the core loop takes the word off its queue
        visit("02:00:00:00:00:02", "fp-second")
        assert wait_for(lambda: len(alerts()) == 2, 10.0, every=0.02), alerts()
    finally:
        loop.stop(5.0)
        receiver.close()
        store.close()


def test_the_api_tells_the_core_of_acknowledgements_and_allowlist_changes(
    tmp_path: Path,
) -> None:
    from api.app import create_app
    from api.settings import ApiSettings

    store = Store(tmp_path / "checkpoint.db")
    user_store.add_user(store, "sup", "supervisor", 1.0, "test", password="a-long-password-1")
    alert_store.raise_alert(store, _record("a1"))
    told: list[str] = []
    client = TestClient(
        create_app(ApiSettings(store_path=store.path), notify=told.append),
        base_url="http://localhost",
    )
    r = client.post("/api/v1/session", json={"username": "sup", "password": "a-long-password-1"})
    assert r.status_code == 200, r.text
    assert client.post("/api/v1/alerts/a1/ack", json={"note": "checked"}).status_code == 200
    entry = {"match": "mac", "value": "a4:c3:f0:1c:a6:2e", "label": "guard tablet"}
    assert client.post("/api/v1/allowlist", json={"entry": entry}).status_code == 201
    assert told == ["ack", "allowlist"]
    store.close()


def test_in_one_process_the_word_goes_on_the_core_queue() -> None:
    events = EventQueue(2)
    QueueNotifier(events)("ack")
    assert events.get_nowait() == InputsChanged("ack")


def _at(frame: WifiFrame, base: float) -> WifiFrame:
    """The frame on the process's monotonic clock, as a capture daemon stamps it."""
    return replace(frame, mono=base + frame.mono, ts=time.time())


def _record(alert_id: str) -> alert_store.AlertRecord:
    now = time.time()
    return alert_store.AlertRecord(
        id=alert_id,
        kind="handset",
        state="open",
        title="Handset in zone",
        raised_ts=now,
        updated_ts=now,
        confidence=0.9,
        handsets=1,
        sensors=["wifi"],
        reasons=["Wi-Fi probe -40 dBm"],
        device_ids=[],
    )
