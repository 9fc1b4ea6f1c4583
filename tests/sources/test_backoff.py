"""The retry schedule the Wi-Fi, BLE and SDR ladders share: by class, doubling, capped, reset."""

from __future__ import annotations

from enum import StrEnum

import pytest

from scanner.sources.backoff import Backoff, Schedule
from scanner.sources.ble.constants import ERROR_POLICIES, BleErrorClass
from scanner.sources.sdr.constants import GONE, RETRY_SCHEDULES, STALL
from scanner.sources.wifi.constants import RETRY_SCHEDULES as WIFI_SCHEDULES
from scanner.sources.wifi.constants import IwErrorClass


class Failure(StrEnum):
    GONE = "gone"
    BUSY = "busy"
    DENIED = "denied"


SCHEDULES: dict[Failure, Schedule | None] = {
    Failure.GONE: Schedule(1.0, 30.0),
    Failure.BUSY: Schedule(5.0, 60.0),
    Failure.DENIED: None,
}


def test_a_class_doubles_from_its_first_wait_to_its_cap() -> None:
    backoff = Backoff(SCHEDULES)
    waits = [backoff.failed(Failure.GONE) for _ in range(8)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.failures(Failure.GONE) == 8


def test_each_class_keeps_its_own_count() -> None:
    backoff = Backoff(SCHEDULES)
    assert [backoff.failed(Failure.GONE) for _ in range(3)] == [1.0, 2.0, 4.0]
    # Busy after gone is a new problem: it starts at its own first wait, not at gone's 8 s.
    assert backoff.failed(Failure.BUSY) == 5.0
    assert backoff.failed(Failure.GONE) == 8.0
    assert backoff.failed(Failure.BUSY) == 10.0


def test_a_success_starts_every_class_over() -> None:
    backoff = Backoff(SCHEDULES)
    for _ in range(4):
        backoff.failed(Failure.GONE)
        backoff.failed(Failure.BUSY)
    assert backoff.failing
    backoff.reset()
    assert not backoff.failing
    assert backoff.failed(Failure.GONE) == 1.0
    assert backoff.failed(Failure.BUSY) == 5.0


def test_a_class_without_schedule_is_not_retried_but_counted() -> None:
    backoff = Backoff(SCHEDULES)
    assert backoff.failed(Failure.DENIED) is None
    assert backoff.failed(Failure.DENIED) is None
    assert backoff.failures(Failure.DENIED) == 2


def test_a_class_missing_from_the_table_is_an_error() -> None:
    backoff = Backoff({Failure.GONE: Schedule(1.0, 2.0)})
    with pytest.raises(KeyError):
        backoff.failed(Failure.BUSY)


def test_weeks_of_failures_stay_at_the_cap() -> None:
    backoff = Backoff(SCHEDULES)
    for _ in range(100_000):
        wait = backoff.failed(Failure.GONE)
    assert wait == 30.0


def test_scale_and_jitter_bound_the_wait() -> None:
    low = Backoff(SCHEDULES, scale=0.5, jitter=0.1, rand=lambda: 0.0)
    high = Backoff(SCHEDULES, scale=0.5, jitter=0.1, rand=lambda: 0.999999)
    assert low.failed(Failure.BUSY) == pytest.approx(5.0 * 0.5 * 0.9)
    assert high.failed(Failure.BUSY) == pytest.approx(5.0 * 0.5 * 1.1, rel=1e-5)


@pytest.mark.parametrize(
    ("first", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)], ids=["zero", "negative", "inverted"]
)
def test_a_schedule_that_cannot_be_is_refused(first: float, cap: float) -> None:
    with pytest.raises(ValueError):
        Schedule(first, cap)


def test_bad_scale_or_jitter_is_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(SCHEDULES, scale=0.0)
    with pytest.raises(ValueError):
        Backoff(SCHEDULES, jitter=1.0)


def test_the_three_ladders_tables_cover_their_classes() -> None:
    # Every class a ladder can raise has an entry (a Schedule, or None: do not retry).
    assert set(WIFI_SCHEDULES) == set(IwErrorClass)
    assert WIFI_SCHEDULES[IwErrorClass.PERMISSION] is None
    assert set(ERROR_POLICIES) == set(BleErrorClass)
    assert GONE in RETRY_SCHEDULES and STALL in RETRY_SCHEDULES
    # The ladders' schedules as the sources use them: a vanished interface, a bluetoothd that
    # restarts in about a second, a stalled IQ stream.
    wifi = Backoff(WIFI_SCHEDULES)
    assert [wifi.failed(IwErrorClass.NO_INTERFACE) for _ in range(7)][-2:] == [32.0, 60.0]
    ble = Backoff({cls: p.retry for cls, p in ERROR_POLICIES.items()})
    assert ble.failed(BleErrorClass.BLUEZ_GONE) == 0.5
    sdr = Backoff(RETRY_SCHEDULES)
    assert [sdr.failed(STALL) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
