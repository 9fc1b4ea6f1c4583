"""Counting handsets: a tracker's join is checked against "one address at a time"."""

from __future__ import annotations

from scanner.core.identity import AddressBleIdentity, AddressWifiIdentity
from scanner.core.options import CoreOptions
from scanner.core.pipeline import Core
from scanner.observations import WifiFrame
from tests.core.helpers import classify_all_handsets, probe


class OneModelTracker(AddressWifiIdentity):
    """A tracker that joins every MAC into one station, as a fingerprint join of phones of one
    model does when nothing else tells them apart."""

    def observe(self, frame: WifiFrame) -> str:
        return "wifi-r1-samemodel"


def _core() -> Core:
    return Core(
        CoreOptions(),
        wifi_tracker=OneModelTracker(),
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )


def test_two_phones_in_the_zone_at_once_are_two_handsets_despite_the_tracker() -> None:
    core = _core()
    # Two phones inside together, probing alternately, both joined into one tracker station.
    for i in range(40):
        t = 100.0 + i * 2
        core.handle(probe(t, "02:00:00:00:00:a1", -45))
        core.handle(probe(t + 1.0, "02:00:00:00:00:b2", -47))
    assert core.stats().handsets_counted == 2


def test_an_address_rotation_during_a_visit_stays_one_handset() -> None:
    core = _core()
    # One phone: its MAC changes once, the old one never heard again.
    for i in range(20):
        core.handle(probe(100.0 + i * 2, "02:00:00:00:00:a1", -45))
    for i in range(20):
        core.handle(probe(150.0 + i * 2, "02:00:00:00:00:a2", -45))
    assert core.stats().handsets_counted == 1


def test_a_join_is_checked_against_every_address_of_the_phone_it_joins() -> None:
    core = _core()
    # Phone A: MAC a1, then a2 (a rotation). Phone B enters while A is still inside; its MAC
    # follows a1 without overlap but overlaps a2, so B is not A.
    for i in range(10):
        core.handle(probe(100.0 + i * 2, "02:00:00:00:00:a1", -45))
    for i in range(40):
        core.handle(probe(122.0 + i * 2, "02:00:00:00:00:a2", -45))
    for i in range(20):
        core.handle(probe(161.0 + i * 2, "02:00:00:00:00:b1", -47))
    assert core.stats().handsets_counted == 2
