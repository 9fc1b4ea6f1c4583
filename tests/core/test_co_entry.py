"""Joining a phone's Wi-Fi and BLE by when they enter the zone: only where one phone could be
both. A transmitter heard walking in from outside is not the radio of a phone that was already
inside by then, however close together the two entered."""

from __future__ import annotations

from tests.core.helpers import Harness, address_harness, advert, probe


def _alarms(core: Harness) -> list[float]:
    return [round(ln["ts"] - 1_764_000_000.0, 1) for ln in core.all_lines if ln["alarm"]]


def _visitor_walks_in(core: Harness, t0: float, rssi_by_step: list[int]) -> None:
    # BLE about once a second, heard from the corridor first (-86 dBm and rising).
    for i, rssi in enumerate(rssi_by_step):
        core.handle(advert(t0 + i, "5C:00:00:00:00:09", rssi))
        core.tick(t0 + i + 0.5)


def test_ble_walking_in_is_not_the_radio_of_a_phone_already_inside() -> None:
    core = address_harness(ack_after_s=20.0)
    # A Wi-Fi-only phone walks in at 100 s (alarm), the guard acknowledges at 120 s; it stands
    # inside, and at 200 s its screen comes on: a new random MAC probing at -43 dBm, already
    # inside (no crossing).
    for t in (100.0, 100.05, 100.1):
        core.handle(probe(t, "02:00:00:00:00:01", -45, fp="fp-1"))
    for t in range(101, 200):
        core.tick(float(t))
    for t in (200.0, 200.05, 200.1):
        core.handle(probe(t, "06:00:00:00:00:02", -43, fp="fp-1"))
    # A second visitor, BLE only, heard in the corridor from 199 s and crossing at 204 s: its
    # BLE enters within the co-entry window of the new MAC.
    _visitor_walks_in(core, 199.0, [-86, -84, -82, -80, -78, -60, -55, -52, -50, -50])
    for t in range(210, 230):
        core.tick(float(t))
    alarms = _alarms(core)
    assert alarms[0] == 100.0
    # The walker alarms as it crosses (after the acknowledgement: a new handset).
    assert any(204.0 <= t <= 206.0 for t in alarms[1:]), alarms


def test_a_phones_own_radios_entering_together_are_still_one_handset() -> None:
    core = address_harness(ack_after_s=20.0)
    # One phone crossing: BLE heard from the corridor, then strong; its Wi-Fi burst as it
    # crosses. One alarm, one handset.
    _visitor_walks_in(core, 99.0, [-86, -84, -80, -70, -62, -55, -52, -50])
    for t in (104.0, 104.05, 104.1):
        core.handle(probe(t, "02:00:00:00:00:01", -45, fp="fp-1"))
    for t in range(107, 120):
        core.tick(float(t))
    assert len(_alarms(core)) == 1
    assert core.lines[-1]["handsets"] == 1
