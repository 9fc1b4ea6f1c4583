"""Detection probability vs SNR and false alarms on noise, measured on synthesised cu8 uplink."""

from __future__ import annotations

from collections.abc import Callable

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


def test_power_snr_and_width_are_measured() -> None:
    import numpy as np

    from scanner.sources.sdr import synth
    from tests.sdr.pd_measure import NOISE_DBFS, RATE, run_detector

    rng = np.random.default_rng(21)
    cases = [("gsm", 1, 200e3), ("lte", 3, 540e3), ("lte", 10, 1.8e6)]
    for kind, prb, width in cases:
        power = synth.power_dbfs_for(15.0, NOISE_DBFS, width, RATE)
        if kind == "gsm":
            specs = synth.gsm_schedule(0.001, 0.05, 0.0, power)
        else:
            specs = [
                synth.BurstSpec("lte", 0.002 + 0.004 * i, 1e-3, 0.0, power, prb) for i in range(10)
            ]
        raw = synth.synth_cu8(rng, RATE, int(0.06 * RATE), NOISE_DBFS, specs)
        found = run_detector(raw)
        assert len(found) == len(specs), kind
        med: Callable[[list[float]], float] = lambda xs: float(np.median(xs))  # noqa: E731 - a one-line helper reads best here
        assert abs(med([b.power_dbfs for b in found]) - power) < 1.5, kind
        assert abs(med([b.snr_db for b in found]) - 15.0) < 2.5, kind
        assert 0.6 * width < med([b.bandwidth_hz for b in found]) < 1.6 * width + 100e3, kind
        expected_shape = "gsm" if kind == "gsm" else "lte"
        assert all(b.shape == expected_shape for b in found), kind
