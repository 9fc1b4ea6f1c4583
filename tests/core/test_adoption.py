"""A restarted core adopts the alerts its predecessor left open (a crash, a power cut)."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.core.identity import AddressBleIdentity, AddressWifiIdentity
from scanner.core.options import CoreOptions
from scanner.store import alerts as alert_store
from scanner.store.db import Store
from tests.core.helpers import START, Harness, classify_all_handsets, probe

PHONE = "02:00:00:00:00:01"


def _core(store: Store, **opts: Any) -> tuple[Harness, list[dict[str, Any]]]:
    core = Harness(
        store,
        CoreOptions(**opts),
        wifi_tracker=AddressWifiIdentity(),
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )
    return core, core.lines


def _inside(core: Harness, mac: str, t0: float, t1: float, mono0: float, fp: str = "fp-a") -> None:
    """Probes at -45 dBm every second from ``t0`` to ``t1`` (scenario time), on a monotonic
    clock that reads ``mono0`` at scenario time 0 (a restart starts it again elsewhere)."""
    t = t0
    while t < t1:
        frame = probe(t, mac, -45, fp=fp)
        core.handle(frame.__class__(**{**_fields(frame), "mono": mono0 + t}))
        t += 1.0


def _fields(frame: Any) -> dict[str, Any]:
    return {name: getattr(frame, name) for name in frame.__slots__}


def _crashed_with_open_alert(store: Store) -> alert_store.AlertRecord:
    """A core raises an alert for a phone, runs 40 s with it, then dies without closing."""
    core, lines = _core(store)
    _inside(core, PHONE, 10.0, 50.0, mono0=1000.0)
    assert [ln["event"] for ln in lines] == ["raised"]
    (alert,) = alert_store.list_alerts(store)
    assert alert.state == "open"
    assert 30.0 <= alert.duration_s <= 40.0
    return alert


def test_the_phone_still_in_the_zone_keeps_its_alert_after_a_restart() -> None:
    store = Store(":memory:")
    before = _crashed_with_open_alert(store)
    # The new run's monotonic clock starts near zero; the phone is still inside.
    again, lines = _core(store)
    _inside(again, PHONE, 55.0, 120.0, mono0=-50.0)
    assert lines == []  # no second 'raised', and the same transmitter is no new entry
    (alert,) = alert_store.list_alerts(store)
    assert (alert.id, alert.state) == (before.id, "open")
    assert again.alerting.counters["adopted"] == 1
    # Its duration carries on from the stored one: the last store was at most 10 s stale.
    assert before.duration_s + 55.0 <= alert.duration_s <= before.duration_s + 75.0
    for t in range(120, 200, 2):
        again.tick(-50.0 + t)
    alert = alert_store.get_alert(store, before.id)
    assert (alert.state, alert.resolution) == ("resolved", "left_zone")
    # Left at 120 s, out after the presence and alert holds, timed on the new clock.
    assert alert.resolved_ts is not None
    assert 120.0 < alert.resolved_ts - START < 200.0
    assert before.duration_s + 60.0 < alert.duration_s < before.duration_s + 160.0
    events = [h["event"] for h in alert_store.alert_history(store, before.id)]
    assert events.count("raised") == 1 and events[-1] == "resolved"


def test_an_alert_whose_phone_is_gone_is_resolved_after_the_grace_period() -> None:
    store = Store(":memory:")
    before = _crashed_with_open_alert(store)
    again, lines = _core(store, adopt_grace_s=45.0)
    for t in range(5, 46):
        again.tick(float(t))
    assert alert_store.get_alert(store, before.id).state == "open"  # still within the grace
    again.tick(51.0)
    alert = alert_store.get_alert(store, before.id)
    assert (alert.state, alert.resolution) == ("resolved", "left_zone")
    assert alert.duration_s == pytest.approx(before.duration_s + 46.0, abs=0.2)
    history = alert_store.alert_history(store, before.id)
    assert history[-1]["event"] == "resolved"
    assert history[-1]["detail"]["resolution"] == "left_zone"
    assert lines == []
    # Nothing is left open for ever: a later phone raises an alert of its own.
    _inside(again, "02:00:00:00:00:99", 200.0, 220.0, mono0=0.0, fp="fp-b")
    assert [ln["event"] for ln in lines] == ["raised"]
    assert len(alert_store.list_alerts(store)) == 2


def test_a_rotated_mac_is_recognised_and_another_phone_joins_as_a_new_handset() -> None:
    store = Store(":memory:")
    before = _crashed_with_open_alert(store)
    again, lines = _core(store)
    # The phone has a new random MAC but the same element fingerprint: it is the alert's own.
    _inside(again, "02:00:00:00:00:02", 55.0, 70.0, mono0=0.0)
    assert lines == []
    # A different phone (another fingerprint) enters: the open alert gains it, no new raise.
    _inside(again, "02:00:00:00:00:77", 70.0, 80.0, mono0=0.0, fp="fp-other")
    assert [ln["event"] for ln in lines] == ["updated"]
    assert lines[0]["alert_id"] == before.id
    assert len(alert_store.list_alerts(store)) == 1


def test_an_open_uplink_alert_is_adopted_too() -> None:
    from tests.core.helpers import burst

    store = Store(":memory:")
    core, lines = _core(store)
    for i in range(20):
        core.handle(burst(10.0 + i * 0.5, 45.0))
    assert [ln["kind"] for ln in lines] == ["unidentified_transmitter"]
    again, new_lines = _core(store)
    for i in range(20):
        again.handle(burst(30.0 + i * 0.5, 45.0))
    assert new_lines == []
    (alert,) = alert_store.list_alerts(store)
    assert alert.state == "open"
