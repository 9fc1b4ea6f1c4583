"""SDR DSP throughput: the burst detector on 2.4 MS/s cu8 vs a naive numpy baseline.

``realtime_factor`` is seconds of 2.4 MS/s IQ processed per second of one core (decode, FFT,
floor, CFAR, grouping, measurement), timed with the thread's CPU clock so other processes on a
shared machine do not count against it (``realtime_factor_wall`` is the wall-clock figure).
The baseline is the obvious numpy code: a Python loop per
frame with ``np.fft.fft`` in float64, a fresh array per step, and the same floor and threshold
logic; both run here, in this process, on the same samples.

``realtime_factor_quiet`` is the same on receiver noise alone (no burst to group or measure), and
``fft_library`` the FFT library the detector used (``fftw`` with the sdr extra's pyFFTW, else
``scipy``): a Pi without pyFFTW runs the scipy figures.

``sweep_cpu_share`` is what a continuous sweep costs: the region's tunings visited in turn
(0.25 s dwells, the default), a handset on one of them and receiver noise on the rest, through
the same detector and record conversion the live DSP thread runs, as a share of one core of
this machine. A Pi's share is this machine's figure times the ratio of their single-core speeds
(hardware.md): run ``checkpoint bench`` on the Pi itself for its own figure.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner.sources.sdr import synth
from scanner.sources.sdr.bands import BandPlan
from scanner.sources.sdr.dsp import BurstDetector
from scanner.sources.sdr.replay import to_record

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


def _sweep(dwells: int) -> tuple[float, float, int]:
    """CPU seconds and IQ seconds of a sweep over the EU plan, and the bursts it found."""
    plan = BandPlan.for_region("eu")
    tunings = plan.tunings(RATE)
    dwell_s = 0.25
    n = int(dwell_s * RATE)
    rng = np.random.default_rng(7)
    quiet = synth.synth_cu8(rng, RATE, n, -38.0, [])
    busy = _signal(dwell_s)
    det = BurstDetector(RATE)
    found = 0
    cpu = time.thread_time()
    for i in range(dwells):
        _label, centre = tunings[i % len(tunings)]
        raw = busy if i % len(tunings) == 0 else quiet
        det.begin_dwell(centre, i * dwell_s)
        bursts = []
        for j in range(0, raw.size, 2 * CHUNK):
            bursts += det.feed(raw[j : j + 2 * CHUNK], "cu8")
        bursts += det.end_dwell()
        found += sum(1 for b in bursts if to_record(b, plan).band is not None)
    return time.thread_time() - cpu, dwells * dwell_s, found


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
    quiet = synth.synth_cu8(np.random.default_rng(7), RATE, int(seconds * RATE), -38.0, [])
    best_quiet = min(_ours(quiet)[0] for _ in range(3))
    naive_seconds = min(seconds, 0.5)
    naive_raw = raw[: int(naive_seconds * RATE) * 2]
    naive_elapsed, _ = _naive(naive_raw)
    sweep_cpu, sweep_iq, sweep_bursts = _sweep(len(BandPlan.for_region("eu").tunings(RATE)) * 2)
    ours_rate = raw.size / 2 / best
    naive_rate = naive_raw.size / 2 / naive_elapsed
    return {
        "sample_rate": RATE,
        "seconds_of_iq": seconds,
        "bursts_found": bursts,
        "realtime_factor": round(ours_rate / RATE, 1),
        "realtime_factor_wall": round(raw.size / 2 / best_wall / RATE, 1),
        "realtime_factor_quiet": round(quiet.size / 2 / best_quiet / RATE, 1),
        "fft_library": BurstDetector(RATE).fft_backend,
        "naive_realtime_factor": round(naive_rate / RATE, 2),
        "ratio_vs_naive_numpy": round(ours_rate / naive_rate, 1),
        "sweep_cpu_share": round(sweep_cpu / sweep_iq, 4),
        "sweep_bursts_found": sweep_bursts,
        "cpu_count": os.cpu_count(),
    }
