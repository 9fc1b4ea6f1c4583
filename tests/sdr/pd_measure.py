"""Detection probability and false alarms on synthesised uplink (shared by the tests)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scanner.sources.sdr import synth
from scanner.sources.sdr.dsp import Burst, BurstDetector

RATE = 2.4e6
NOISE_DBFS = -35.0  # a dongle with its gain set so noise sits a few LSB above the 8-bit floor


@dataclass(frozen=True)
class PdResult:
    snr_db: float
    bursts: int
    detected: int
    false_alarms: int
    seconds: float

    @property
    def pd(self) -> float:
        return self.detected / self.bursts


def run_detector(raw: np.ndarray, datatype: str = "cu8") -> list[Burst]:
    det = BurstDetector(RATE)
    det.begin_dwell(0.0, 0.0)
    out: list[Burst] = []
    chunk = 1 << 17
    for i in range(0, raw.size, 2 * chunk):
        out += det.feed(raw[i : i + 2 * chunk], datatype)
    return out + det.end_dwell()


def measure_pd(snr_db: float, n_bursts: int, seed: int, kind: str = "gsm") -> PdResult:
    """``n_bursts`` bursts (one per TDMA frame) at random offsets, quantised to cu8."""
    rng = np.random.default_rng(seed)
    frame = synth.GSM_FRAME_S
    specs = []
    for i in range(n_bursts):
        offset = float(rng.uniform(-0.8e6, 0.8e6))
        start = i * frame + float(rng.uniform(0.5e-3, 3.0e-3))
        if kind == "gsm":
            bw = synth.GSM_BANDWIDTH_HZ
            power = synth.power_dbfs_for(snr_db, NOISE_DBFS, bw, RATE)
            specs.append(synth.BurstSpec("gsm", start, synth.GSM_TIMESLOT_S, offset, power))
        else:
            bw = 6 * synth.LTE_PRB_HZ
            power = synth.power_dbfs_for(snr_db, NOISE_DBFS, bw, RATE)
            specs.append(synth.BurstSpec("lte", start, 1e-3, offset * 0.5, power, 6))
    seconds = n_bursts * frame + 0.01
    raw = synth.synth_cu8(rng, RATE, int(seconds * RATE), NOISE_DBFS, specs)
    found = run_detector(raw)
    used = [False] * len(found)
    detected = 0
    for spec in specs:
        hit = False
        for j, b in enumerate(found):
            overlap_t = b.t_start < spec.start_s + spec.duration_s and spec.start_s < b.t_end
            near_f = abs(b.freq_hz - spec.offset_hz) < spec.bandwidth_hz
            if overlap_t and near_f:
                used[j] = True
                hit = True
        detected += hit
    return PdResult(snr_db, n_bursts, detected, used.count(False), seconds)


def false_alarms_per_hour(seconds: float, seed: int) -> tuple[int, float]:
    """Bursts reported on receiver noise alone (cu8), and the rate per hour."""
    rng = np.random.default_rng(seed)
    total = 0
    step = 2.0
    t = 0.0
    while t < seconds:
        raw = synth.synth_cu8(rng, RATE, int(step * RATE), NOISE_DBFS, [])
        total += len(run_detector(raw))
        t += step
    return total, total * 3600.0 / t
