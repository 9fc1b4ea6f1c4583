"""SDR DSP throughput: the burst detector on 2.4 MS/s cu8 vs a naive numpy baseline.

``realtime_factor`` is seconds of 2.4 MS/s IQ processed per second of one core (decode, FFT,
floor, CFAR, grouping, measurement), timed with the thread's CPU clock so other processes on a
shared machine do not count against it (``realtime_factor_wall`` is the wall-clock figure).
The baseline is the obvious numpy code: a Python loop per
frame with ``np.fft.fft`` in float64, a fresh array per step, and the same floor and threshold
logic; both run here, in this process, on the same samples.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner.sources.sdr import synth
from scanner.sources.sdr.dsp import BurstDetector

RATE = 2.4e6
CHUNK = 1 << 18  # samples per read, as the live path reads from the dongle


def _signal(seconds: float) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(2024)
    bursts = synth.gsm_schedule(0.0, seconds, 450e3, -30.0) + synth.lte_schedule(
        rng, 0.0, seconds, -600e3, -32.0, duty=0.2, n_prb=6
    )
    return synth.synth_cu8(rng, RATE, int(seconds * RATE), -38.0, bursts)


def _ours(raw: npt.NDArray[np.uint8]) -> tuple[float, float, int]:
    det = BurstDetector(RATE)
    det.begin_dwell(890e6, 0.0)
    found = 0
    cpu, wall = time.thread_time(), time.perf_counter()
    for i in range(0, raw.size, 2 * CHUNK):
        found += len(det.feed(raw[i : i + 2 * CHUNK], "cu8"))
    found += len(det.end_dwell())
    return time.thread_time() - cpu, time.perf_counter() - wall, found


def _naive(raw: npt.NDArray[np.uint8], n: int = 128) -> tuple[float, int]:
    """Per-frame loop, float64, no preallocation: what a first attempt looks like."""
    t = time.thread_time()
    window = np.hanning(n)
    floor: npt.NDArray[np.float64] | None = None
    active = np.zeros(n, dtype=bool)
    found = 0
    for i in range(0, raw.size - 2 * n + 1, 2 * n):
        x = raw[i : i + 2 * n].astype(np.float64)
        iq = (x[0::2] - 127.5) / 127.5 + 1j * (x[1::2] - 127.5) / 127.5
        spec = np.fft.fftshift(np.fft.fft(iq * window))
        power = np.abs(spec) ** 2 / (n * np.sum(window**2))
        floor = power.copy() if floor is None else np.minimum(power, floor * 1.0001)
        cells = np.convolve(power, np.ones(8), "same")
        hot = cells > 4.0 * np.convolve(floor, np.ones(8), "same")
        found += int(np.count_nonzero(hot & ~active))
        active = hot
    return time.thread_time() - t, found


def run(quick: bool) -> dict[str, Any]:
    """Measure both paths on the same synthetic 2.4 MS/s cu8 stream."""
    seconds = 2.0 if quick else 10.0
    raw = _signal(seconds)
    _ours(raw[: 2 * CHUNK])  # warm caches and the FFT plan
    best = best_wall = math.inf
    bursts = 0
    for _ in range(3):
        elapsed, wall, bursts = _ours(raw)
        best = min(best, elapsed)
        best_wall = min(best_wall, wall)
    naive_seconds = min(seconds, 0.5)
    naive_raw = raw[: int(naive_seconds * RATE) * 2]
    naive_elapsed, _ = _naive(naive_raw)
    ours_rate = raw.size / 2 / best
    naive_rate = naive_raw.size / 2 / naive_elapsed
    return {
        "sample_rate": RATE,
        "seconds_of_iq": seconds,
        "bursts_found": bursts,
        "realtime_factor": round(ours_rate / RATE, 1),
        "realtime_factor_wall": round(raw.size / 2 / best_wall / RATE, 1),
        "naive_realtime_factor": round(naive_rate / RATE, 2),
        "ratio_vs_naive_numpy": round(ours_rate / naive_rate, 1),
        "cpu_count": os.cpu_count(),
    }
