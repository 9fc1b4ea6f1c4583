"""A loiterer's fade to the inside level is not an entry; a loiterer who walks in is, and a
transmitter first heard inside alarms as it always did. Through the real core, with BLE adverts
twice a second against the default BLE zone (enter -69 dBm, clearly inside from -64 dBm)."""

from __future__ import annotations

from scanner.core.identity import AddressBleIdentity, AddressWifiIdentity
from scanner.core.options import CoreOptions
from tests.core.helpers import (
    Harness,
    address_harness,
    adverts_every_half_second,
    classify_all_handsets,
    first_alarm_s,
)

LOITERER = "5B:C9:D6:DB:9C:98"
VISITOR = "71:9D:8D:80:89:F3"


def test_a_loiterers_fade_to_the_inside_level_does_not_alarm() -> None:
    core = address_harness()
    # Two minutes a metre outside, then a slow fade that lifts the level to just inside for
    # 12 s: long enough for the 16 s confirmation median to agree, not as long as a visit.
    adverts_every_half_second(core, LOITERER, 0.0, 120.0, -76)
    adverts_every_half_second(core, LOITERER, 120.0, 132.0, -67)
    adverts_every_half_second(core, LOITERER, 132.0, 160.0, -76)
    assert first_alarm_s(core) is None


def test_the_same_fade_alarms_without_a_dwell() -> None:
    # The fade above does put the loiterer inside by the level rules alone: the dwell is what
    # keeps it out.
    core = Harness(
        None,
        CoreOptions(loiter_dwell_s=0.0),
        wifi_tracker=AddressWifiIdentity(),
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )
    adverts_every_half_second(core, LOITERER, 0.0, 120.0, -76)
    adverts_every_half_second(core, LOITERER, 120.0, 132.0, -67)
    alarm = first_alarm_s(core)
    assert alarm is not None and 120.0 < alarm < 132.0


def test_a_loiterer_who_walks_in_alarms_within_the_dwell() -> None:
    core = address_harness()
    adverts_every_half_second(core, LOITERER, 0.0, 120.0, -76)
    adverts_every_half_second(core, LOITERER, 120.0, 140.0, -58)
    alarm = first_alarm_s(core)
    assert alarm is not None and 120.0 <= alarm <= 120.0 + CoreOptions().loiter_dwell_s


def test_a_loiterer_who_stays_just_inside_alarms_after_the_dwell() -> None:
    core = address_harness()
    adverts_every_half_second(core, LOITERER, 0.0, 120.0, -76)
    adverts_every_half_second(core, LOITERER, 120.0, 160.0, -67)
    alarm = first_alarm_s(core)
    dwell = CoreOptions().loiter_dwell_s
    # The confirmation median agrees after half its 16 s window, then the dwell runs.
    assert alarm is not None and 120.0 + dwell <= alarm <= 120.0 + 8.5 + dwell


def test_a_fresh_transmitter_just_inside_alarms_at_once() -> None:
    core = address_harness()
    adverts_every_half_second(core, VISITOR, 50.0, 70.0, -67)
    alarm = first_alarm_s(core)
    # As soon as the confirmation has its five samples: no history, so no dwell.
    assert alarm is not None and 50.0 <= alarm <= 52.5


def test_a_fresh_transmitter_clearly_inside_alarms_at_once() -> None:
    core = address_harness()
    adverts_every_half_second(core, VISITOR, 50.0, 70.0, -55)
    alarm = first_alarm_s(core)
    assert alarm is not None and 50.0 <= alarm <= 51.0
