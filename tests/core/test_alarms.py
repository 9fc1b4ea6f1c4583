"""The alarm a guard can rely on: every new handset alarms, even after an acknowledgement; an
acknowledgement and its note stay with the handsets they were given for; an alert never spans
an empty zone; a closed alarm no guard acknowledged can still be acknowledged."""

from __future__ import annotations

from typing import Any

from scanner.core.events import (
    Acknowledge,
    AlertAcknowledged,
    AlertRaised,
    AlertResolved,
    AlertUpdated,
    CoreEvent,
)
from scanner.core.identity import AddressBleIdentity, AddressWifiIdentity
from scanner.core.options import CoreOptions
from scanner.store import alerts as alert_store
from scanner.store.db import Store
from tests.core.helpers import START, Harness, classify_all_handsets, probe


def _core(store: Store | None = None, ack_after_s: float = 0.0) -> Harness:
    return Harness(
        store,
        CoreOptions(),
        ack_after_s=ack_after_s,
        wifi_tracker=AddressWifiIdentity(),
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )


def _phone(n: int) -> tuple[str, str]:
    return f"02:00:00:00:00:{n:02x}", f"fp-{n}"


def _inside(core: Harness, phones: dict[int, tuple[float, float]], t0: float, t1: float) -> None:
    """Every phone probes twice a second; strong inside its interval, weak in the corridor."""
    t = t0
    while t < t1:
        for n, (enter, leave) in phones.items():
            mac, fp = _phone(n)
            if enter - 30 <= t < leave + 30:
                rssi = -45 if enter <= t < leave else -80
                core.handle(probe(t, mac, rssi, fp=fp))
        core.tick(t)
        t += 0.5


def _alarms(events: list[CoreEvent]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for e in events:
        if isinstance(e, AlertRaised | AlertUpdated) and e.alarm:
            out.append((type(e).__name__, e.alert.id))
    return out


def test_four_visitors_each_acknowledged_are_four_alarms() -> None:
    """Like the demo: phones one after the other, the next entering just after the previous
    left or while it is still inside; the guard acknowledges every alarm after 20 s."""
    core = _core(ack_after_s=20.0)
    visits = {1: (100.0, 190.0), 2: (170.0, 260.0), 3: (300.0, 380.0), 4: (384.0, 460.0)}
    _inside(core, visits, 60.0, 560.0)
    alarms = _alarms(core.events)
    assert len(alarms) == 4, alarms
    # Each visitor alarms within a few seconds of entering.
    times = [
        e.ts - START for e in core.events if isinstance(e, AlertRaised | AlertUpdated) and e.alarm
    ]
    for (enter, _leave), t in zip(visits.values(), times, strict=True):
        assert enter <= t <= enter + 5.0, (enter, t)
    acks = [e for e in core.events if isinstance(e, AlertAcknowledged)]
    assert {a.alert.id for a in acks} == {alert_id for _kind, alert_id in alarms}
    # The lines say so too: four alarm lines, and none on an acknowledgement or resolution.
    assert sum(1 for ln in core.all_lines if ln["alarm"]) == 4
    assert all(not ln["alarm"] for ln in core.all_lines if ln["event"] != "raised")


def test_a_new_handset_joins_the_unacknowledged_alert_and_alarms() -> None:
    core = _core()
    _inside(core, {1: (100.0, 200.0), 2: (130.0, 200.0)}, 60.0, 150.0)
    raised = [e for e in core.events if isinstance(e, AlertRaised)]
    updated = [e for e in core.events if isinstance(e, AlertUpdated) and e.alarm]
    assert len(raised) == 1 and len(updated) == 1
    assert updated[0].alert.id == raised[0].alert.id and updated[0].alert.handsets == 2


def test_a_visitor_leaving_then_another_coming_is_a_new_alarm() -> None:
    """The first alert closes when its phone has left; the next phone is a new alert, even
    though nobody acknowledged the first (its hold had not yet run out when the next came)."""
    core = _core()
    _inside(core, {1: (100.0, 150.0), 2: (185.0, 240.0)}, 60.0, 320.0)
    raised = [e for e in core.events if isinstance(e, AlertRaised)]
    assert len(raised) == 2
    first_closed = next(e for e in core.events if isinstance(e, AlertResolved))
    assert first_closed.alert.id == raised[0].alert.id
    assert first_closed.ts <= raised[1].ts  # never one alert spanning the empty zone
    assert len(_alarms(core.events)) == 2


def test_the_same_phone_back_within_the_hold_stays_acknowledged() -> None:
    core = _core()
    _inside(core, {1: (100.0, 140.0)}, 60.0, 125.0)
    (raised,) = [e for e in core.events if isinstance(e, AlertRaised)]
    core.handle(Acknowledge(raised.alert.id, START + 125.0, "guard", "visitor badge 12"))
    # Out of range for a moment (no frames), then heard inside again.
    _inside(core, {1: (145.0, 200.0)}, 145.0, 190.0)
    assert _alarms(core.events) == [("AlertRaised", raised.alert.id)]


def test_an_acknowledgement_and_its_note_stay_with_its_handsets() -> None:
    store = Store(":memory:")
    core = _core(store)
    _inside(core, {1: (100.0, 400.0)}, 60.0, 130.0)
    (first,) = [e.alert.id for e in core.events if isinstance(e, AlertRaised)]
    # The tablet's button: the API stores the acknowledgement; the core hears of it.
    alert_store.acknowledge_alert(store, first, START + 125.0, "anna", "contractor, checked")
    _inside(core, {1: (100.0, 400.0), 2: (160.0, 400.0)}, 130.0, 200.0)
    raised = [e.alert.id for e in core.events if isinstance(e, AlertRaised)]
    assert len(raised) == 2 and raised[0] == first
    second = raised[1]
    old, new = alert_store.get_alert(store, first), alert_store.get_alert(store, second)
    # The note is about phone 1 only; phone 2's alert is unacknowledged and alarming.
    assert (old.acked_by, old.ack_note, old.handsets) == ("anna", "contractor, checked", 1)
    assert any(_phone(1)[0] in d for d in old.device_ids)
    assert (new.acked_ts, new.ack_note, new.handsets) == (None, None, 1)
    assert any(_phone(2)[0] in d for d in new.device_ids)
    assert not any(_phone(2)[0] in d for d in old.device_ids)


def test_a_closed_alarm_nobody_acknowledged_can_be_acknowledged() -> None:
    store = Store(":memory:")
    core = _core(store)
    _inside(core, {1: (100.0, 130.0)}, 60.0, 260.0)
    (alert_id,) = [e.alert.id for e in core.events if isinstance(e, AlertRaised)]
    assert alert_store.get_alert(store, alert_id).state == "resolved"
    core.handle(Acknowledge(alert_id, START + 270.0, "guard", "saw him leave"))
    (ack,) = [e for e in core.events if isinstance(e, AlertAcknowledged)]
    assert ack.alert.id == alert_id and ack.note == "saw him leave"
    stored = alert_store.get_alert(store, alert_id)
    assert (stored.state, stored.acked_by, stored.ack_note) == (
        "resolved",
        "guard",
        "saw him leave",
    )
    lines: list[dict[str, Any]] = [ln for ln in core.all_lines if ln["alert_id"] == alert_id]
    assert [ln["event"] for ln in lines] == ["raised", "resolved", "acknowledged"]
