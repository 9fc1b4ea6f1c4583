"""Detection probability vs SNR and false alarms on noise, measured on synthesised cu8 uplink."""

from __future__ import annotations

import pytest

from tests.sdr.pd_measure import false_alarms_per_hour, measure_pd


def test_577us_burst_at_10db_is_found_with_pd_099() -> None:
    result = measure_pd(10.0, n_bursts=400, seed=10)
    print(
        f"SNR 10 dB: Pd {result.pd:.4f} ({result.detected}/{result.bursts}), "
        f"unmatched detections {result.false_alarms}"
    )
    assert result.pd >= 0.99
    assert result.false_alarms <= 2


def test_detection_rises_with_snr() -> None:
    low = measure_pd(-3.0, n_bursts=150, seed=1)
    mid = measure_pd(3.0, n_bursts=150, seed=2)
    high = measure_pd(20.0, n_bursts=150, seed=3)
    assert low.pd < mid.pd <= high.pd
    assert high.pd == 1.0


def test_lte_subframes_are_found() -> None:
    result = measure_pd(10.0, n_bursts=100, seed=4, kind="lte")
    assert result.pd >= 0.98


def test_noise_alone_gives_few_false_alarms() -> None:
    count, per_hour = false_alarms_per_hour(20.0, seed=99)
    print(f"noise only: {count} false bursts in 20 s = {per_hour:.0f}/hour")
    assert per_hour < 360  # fewer than one false burst per 10 s of full-band noise


@pytest.mark.slow
def test_pd_table() -> None:
    """The full table (run with --soak -s); printed for the project notes."""
    rows = []
    for snr in (-3, 0, 3, 6, 8, 10, 12, 15, 20):
        r = measure_pd(float(snr), n_bursts=1000, seed=100 + snr)
        rows.append(r)
        print(f"{snr:>4} dB  Pd {r.pd:.4f}  ({r.detected}/{r.bursts})  extra {r.false_alarms}")
    count, per_hour = false_alarms_per_hour(600.0, seed=7)
    print(f"noise only: {count} in 600 s = {per_hour:.1f} false bursts/hour")
    assert rows[-1].pd == 1.0
