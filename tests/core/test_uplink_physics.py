"""Uplink energy on its own: decided by how it behaves and what the other radios hear."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.config import ConfigError
from scanner.core.options import CoreOptions
from tests.core.helpers import Harness, address_harness, advert, burst


def _core() -> tuple[Harness, list[dict[str, Any]]]:
    core = address_harness()
    return core, core.lines


def _kinds(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(ln["event"], ln["kind"]) for ln in lines]


def test_a_phone_inside_under_power_control_alerts_on_uplink_alone() -> None:
    # 33 dB SNR, steady: a phone in the zone the network has turned down. The former 38 dB
    # bar for uplink-only alerts missed it.
    core, lines = _core()
    for i in range(12):
        core.handle(burst(100.0 + i * 0.5, 33.0 + (i % 2)))
    assert _kinds(lines) == [("raised", "unidentified_transmitter")]


def test_a_few_bursts_are_not_an_uplink_alert() -> None:
    # A keep-alive of three bursts, however strong, is not a sustained uplink.
    core, lines = _core()
    for i in range(3):
        core.handle(burst(100.0 + i * 0.4, 42.0))
    for t in range(102, 130):
        core.tick(float(t))
    assert lines == []


def test_uplink_of_a_phone_heard_just_outside_does_not_alert_alone() -> None:
    # A phone at the door, outside: its BLE 6 dB below the exit level, its uplink at
    # in-zone strength at full power (up to 37 dB SNR from there: 6 dB above the enter level
    # of 31). The uplink is that phone, not another one inside.
    core, lines = _core()
    for i in range(30):
        core.handle(advert(100.0 + i * 0.5, "5C:00:00:00:00:07", -79))
        core.handle(burst(100.2 + i * 0.5, 36.0))
    assert lines == []
    counters = core.core.detectors.snapshot()["uplink_energy_in_zone"]
    assert counters["explained_by_nearby_handset"] > 0
    # Once the phone at the door has gone (nothing heard of it for a while), the same uplink
    # stands on its own.
    for i in range(30):
        core.handle(burst(130.0 + i * 0.5, 36.0))
    assert _kinds(lines) == [("raised", "unidentified_transmitter")]


def test_uplink_louder_than_the_phone_outside_can_send_alerts_alone() -> None:
    # A phone heard on BLE 11 dB below the exit level, well out in the corridor, can send at
    # most about 32 dB SNR at full power from there; steady 42 dB bursts are another phone,
    # in the zone, heard on the uplink only (Wi-Fi and Bluetooth off).
    core, lines = _core()
    for i in range(30):
        core.handle(advert(100.0 + i * 0.5, "5C:00:00:00:00:07", -84))
        core.handle(burst(100.2 + i * 0.5, 42.0))
    assert _kinds(lines) == [("raised", "unidentified_transmitter")]
    counters = core.core.detectors.snapshot()["uplink_energy_in_zone"]
    assert counters.get("explained_by_nearby_handset", 0) == 0


def test_a_gsm_phone_just_outside_explains_louder_uplink() -> None:
    # The same phone at the door on GSM-900 may send 10 dB more (33 dBm, not 23): 42 dB bursts
    # on a band that can carry GSM are still within what it can send.
    core, lines = _core()
    for i in range(30):
        core.handle(advert(100.0 + i * 0.5, "5C:00:00:00:00:07", -79))
        core.handle(burst(100.2 + i * 0.5, 42.0, band="E-GSM-900 + LTE B8 UL"))
    assert lines == []
    counters = core.core.detectors.snapshot()["uplink_energy_in_zone"]
    assert counters["explained_by_nearby_handset"] > 0


@pytest.mark.parametrize(
    "bad",
    [
        {"ambient_margin_db": 400.0},
        {"window_s": 86400.0},
        {"nearby_margin_db": 99.0},
        {"selection_margin_db": 60.0},
    ],
)
def test_values_that_would_switch_a_check_off_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="switch the check off"):
        CoreOptions.from_mapping(bad)


def _phone_inside_with_uplink(core: Harness, t0: float, t1: float, band: str) -> None:
    """An iPhone standing in the zone: BLE every half second, its uplink on one band."""
    t = t0
    while t < t1:
        core.handle(advert(t, "5C:00:00:00:00:01", -50))
        core.handle(burst(t + 0.2, 38.0, band=band))
        core.tick(t + 0.4)
        t += 0.5


def test_uplink_on_a_band_no_named_phone_uses_is_a_phone_more() -> None:
    # One phone named inside (BLE, its uplink on B3), acknowledged; a second phone with Wi-Fi
    # and Bluetooth off walks in and keeps its uplink busy on B20. One phone sends on one band
    # at a time, so the second band is a second phone: it alarms, though a handset is named.
    core = address_harness(ack_after_s=20.0)
    _phone_inside_with_uplink(core, 100.0, 160.0, "DCS-1800 + LTE B3 UL")
    t = 160.0
    while t < 180.0:
        core.handle(advert(t, "5C:00:00:00:00:01", -50))
        core.handle(burst(t + 0.2, 38.0, band="DCS-1800 + LTE B3 UL"))
        core.handle(burst(t + 0.3, 42.0, band="LTE B20 UL"))
        core.tick(t + 0.4)
        t += 0.5
    alarms = [(ln["kind"], ln["event"]) for ln in core.all_lines if ln["alarm"]]
    assert alarms == [("handset", "raised"), ("unidentified_transmitter", "raised")]


def test_a_named_phones_own_uplink_is_not_a_phone_more() -> None:
    core = address_harness(ack_after_s=20.0)
    _phone_inside_with_uplink(core, 100.0, 180.0, "DCS-1800 + LTE B3 UL")
    alarms = [(ln["kind"], ln["event"]) for ln in core.all_lines if ln["alarm"]]
    assert alarms == [("handset", "raised")]


def _keep_alives(core: Harness, t0: float, t1: float, snr: float, every_s: float = 8.0) -> None:
    """An idle phone's uplink: a keep-alive of two bursts every ``every_s``, the core ticking
    every second between them."""
    t = t0
    while t < t1:
        core.handle(burst(t, snr))
        core.handle(burst(t + 0.6, snr))
        for k in range(1, int(every_s)):
            core.tick(t + k)
        t += every_s


def test_an_idle_phone_inside_alerts_on_its_keep_alives_alone() -> None:
    # Wi-Fi and Bluetooth off, no call: two bursts every 8 s, never four in the 6 s window.
    # Holding the zone's level through its keep-alives for the hold is as sustained.
    core, lines = _core()
    _keep_alives(core, 100.0, 200.0, 42.0)
    assert _kinds(lines) == [("raised", "unidentified_transmitter")]
    hold = CoreOptions().sdr_idle_hold_s
    raised = lines[0]["ts"] - 1_764_000_000.0
    assert 100.6 + hold <= raised <= 100.6 + hold + 8.0


def test_an_idle_phone_passing_by_does_not_alert() -> None:
    # Two keep-alives at the zone's level while walking past, then well out in the street.
    core, lines = _core()
    _keep_alives(core, 100.0, 116.0, 42.0)
    _keep_alives(core, 116.0, 220.0, 14.0)
    assert lines == []


def test_an_idle_phone_heard_just_outside_does_not_alert_alone() -> None:
    # Someone waiting at the door with an idle phone: its keep-alives hold the zone's level,
    # and its BLE, heard just outside, explains them.
    core, lines = _core()
    t = 100.0
    while t < 200.0:
        core.handle(advert(t, "5C:00:00:00:00:07", -79))
        if int(t * 2) % 16 == 0:
            core.handle(burst(t + 0.1, 36.0))
            core.handle(burst(t + 0.7, 36.0))
        core.tick(t)
        t += 0.5
    assert lines == []
    counters = core.core.detectors.snapshot()["uplink_energy_in_zone"]
    assert counters["explained_by_nearby_handset"] > 0
