"""A new phone of an acknowledged visitor's model alarms, although the Wi-Fi tracker joins it.

Phones of one model probe with one fingerprint from random addresses, so the tracker joins a
newcomer's address to the earlier visitor's station when its level fits. That join groups it
for the count; it must not make the newcomer "the phone already acknowledged".
"""

from __future__ import annotations

from dataclasses import replace

from scanner.core.events import AlertRaised, AlertUpdated
from scanner.core.identity import AddressBleIdentity
from scanner.core.options import CoreOptions
from scanner.core.wifi_tracking import WifiTracker
from tests.core.helpers import START, Harness, classify_all_handsets, probe

MODEL_FP = "fp-model-x"


def _burst(core: Harness, t: float, mac: str, seq0: int) -> None:
    """One probe burst: five frames 20 ms apart on one channel, a counter of its own."""
    for i in range(5):
        core.handle(replace(probe(t + 0.02 * i, mac, -45, fp=MODEL_FP), seq=(seq0 + i) % 4096))


def _alarm_times(core: Harness) -> list[float]:
    return [
        e.ts - START for e in core.events if isinstance(e, AlertRaised | AlertUpdated) and e.alarm
    ]


def test_a_second_phone_of_the_acknowledged_model_alarms() -> None:
    tracker = WifiTracker()
    core = Harness(
        None,
        CoreOptions(),
        ack_after_s=5.0,
        wifi_tracker=tracker,
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )
    # Visitor one probes every 8 s from t=100; the guard acknowledges its alarm after 5 s.
    t = 100.0
    while t < 140.0:
        _burst(core, t, "02:11:11:11:11:01", int(t))
        core.tick(t + 0.5)
        t += 8.0
    # Visitor two, the same model, walks in between visitor one's bursts (another counter).
    _burst(core, 141.0, "06:22:22:22:22:02", 3000)
    core.tick(141.5)
    assert tracker.joined_by_model("06:22:22:22:22:02")  # the tracker did join it
    times = _alarm_times(core)
    assert len(times) == 2, times
    assert 100.0 <= times[0] <= 103.0
    assert 141.0 <= times[1] <= 142.0


def test_an_address_joined_by_its_own_counter_is_trusted() -> None:
    tracker = WifiTracker()
    core = Harness(
        None,
        CoreOptions(),
        ack_after_s=5.0,
        wifi_tracker=tracker,
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )
    t = 100.0
    seq = 100
    while t < 140.0:
        _burst(core, t, "02:11:11:11:11:01", seq)
        core.tick(t + 0.5)
        seq += 5
        t += 8.0
    # The same phone rotates its address; its sequence counter carries on.
    _burst(core, 141.0, "06:33:33:33:33:03", seq)
    core.tick(141.5)
    assert not tracker.joined_by_model("06:33:33:33:33:03")
    assert len(_alarm_times(core)) == 1
