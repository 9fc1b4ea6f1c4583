"""Synthetic cellular uplink for tests and the simulator: handset bursts over receiver noise.

Two burst shapes, close enough to the real thing for an energy detector:

* GSM-like: GMSK (BT 0.3, modulation index 0.5) at 270.833 ksymbol/s, about 200 kHz wide,
  in 577 us timeslots of a 4.615 ms TDMA frame (a handset uses one slot per frame).
* LTE-like: SC-FDMA-ish band-limited noise over ``n_prb`` x 180 kHz in 1 ms subframes.

Levels: ``power_dbfs`` is the mean burst power relative to full scale (|x| = 1). ``snr_db`` is the
in-channel SNR: burst power over the noise power inside the burst's own bandwidth, which is the
figure a receiver designer quotes and what the detection tables in the tests are measured at.
Noise is complex Gaussian with the tuner's small DC offset; :func:`quantise_cu8` then turns the
sum into 8-bit samples exactly as an RTL-SDR would deliver them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scanner.sources.sdr.samples import Complex64Array, UInt8Array, quantise_cu8

GSM_SYMBOL_RATE = 1625e3 / 6  # 270.833 ksymbol/s
GSM_TIMESLOT_S = 0.015 / 26  # 576.9 us
GSM_FRAME_S = 8 * GSM_TIMESLOT_S  # 4.615 ms
GSM_BURST_S = 148 / GSM_SYMBOL_RATE  # 546 us of the slot carry symbols (the rest is guard)
GSM_BANDWIDTH_HZ = 200e3
LTE_SUBFRAME_S = 1e-3
LTE_PRB_HZ = 180e3


@dataclass(frozen=True, slots=True)
class BurstSpec:
    """One burst to synthesise; times are seconds from the start of the buffer."""

    kind: str  # "gsm" | "lte"
    start_s: float
    duration_s: float
    offset_hz: float  # from the tuned centre frequency
    power_dbfs: float
    n_prb: int = 6  # LTE only

    @property
    def bandwidth_hz(self) -> float:
        return GSM_BANDWIDTH_HZ if self.kind == "gsm" else self.n_prb * LTE_PRB_HZ


def noise_dbfs_for(snr_db: float, power_dbfs: float, bandwidth_hz: float, rate: float) -> float:
    """Total (full-band) noise power in dBFS giving ``snr_db`` inside ``bandwidth_hz``."""
    return power_dbfs - snr_db - 10.0 * math.log10(min(bandwidth_hz, rate) / rate)


def power_dbfs_for(snr_db: float, noise_dbfs: float, bandwidth_hz: float, rate: float) -> float:
    """Burst power in dBFS that is ``snr_db`` above the noise inside ``bandwidth_hz``."""
    return noise_dbfs + 10.0 * math.log10(min(bandwidth_hz, rate) / rate) + snr_db


def receiver_noise(
    rng: np.random.Generator, n: int, noise_dbfs: float, dc_offset: float = 0.004
) -> Complex64Array:
    """Complex Gaussian noise of total power ``noise_dbfs`` plus the tuner's DC offset."""
    sigma = math.sqrt(10.0 ** (noise_dbfs / 10.0) / 2.0)
    buf = rng.standard_normal(2 * n, dtype=np.float32)
    buf *= np.float32(sigma)
    iq = buf.view(np.complex64)
    iq += np.complex64(dc_offset + 0.5j * dc_offset)
    return iq


def gmsk_burst(rng: np.random.Generator, rate: float, n: int) -> Complex64Array:
    """A unit-power GMSK-like burst of ``n`` samples with 10 us power ramps at each end."""
    sps = rate / GSM_SYMBOL_RATE
    n_sym = math.ceil(n / sps) + 8
    bits = rng.integers(0, 2, n_sym).astype(np.float32) * 2 - 1
    # NRZ at the sample rate, then a Gaussian filter of BT 0.3 (sigma in symbols = 0.3/ (2 pi BT)).
    idx = np.minimum((np.arange(n) / sps).astype(np.int64), n_sym - 1)
    nrz = bits[idx]
    sigma_sym = math.sqrt(math.log(2.0)) / (2 * math.pi * 0.3)
    half = max(1, round(2 * sigma_sym * sps))
    t = np.arange(-half, half + 1, dtype=np.float32) / np.float32(sps)
    g = np.exp(-0.5 * (t / sigma_sym) ** 2).astype(np.float32)
    g /= g.sum()
    freq = np.convolve(nrz, g, mode="same")
    # h = 0.5: phase advances pi/2 per symbol.
    phase = np.cumsum(freq, dtype=np.float64) * (math.pi / 2 / sps)
    burst: Complex64Array = np.exp(1j * phase).astype(np.complex64)
    _ramp(burst, max(1, int(10e-6 * rate)))
    return burst


def scfdma_burst(rng: np.random.Generator, rate: float, n: int, n_prb: int) -> Complex64Array:
    """A unit-power band-limited burst over ``n_prb`` resource blocks, centred on 0 Hz."""
    spec = np.zeros(n, dtype=np.complex64)
    width = min(n_prb * LTE_PRB_HZ, rate * 0.95)
    k = np.fft.fftfreq(n, d=1.0 / rate)
    band = np.abs(k) <= width / 2
    count = int(np.count_nonzero(band))
    spec[band] = (rng.standard_normal(count) + 1j * rng.standard_normal(count)).astype(np.complex64)
    burst = np.fft.ifft(spec).astype(np.complex64)
    burst /= np.complex64(math.sqrt(float(np.mean(np.abs(burst) ** 2)) or 1.0))
    _ramp(burst, max(1, int(5e-6 * rate)))
    return burst


def _ramp(burst: Complex64Array, m: int) -> None:
    """Raised-cosine power ramps, as a handset's PA ramps up and down (limits splatter)."""
    m = min(m, burst.size // 2)
    if m <= 0:
        return
    w = (0.5 - 0.5 * np.cos(np.linspace(0, math.pi, m, dtype=np.float32))).astype(np.float32)
    burst[:m] *= w
    burst[-m:] *= w[::-1]


def render(
    rng: np.random.Generator,
    rate: float,
    n_samples: int,
    noise_dbfs: float,
    bursts: list[BurstSpec],
    dc_offset: float = 0.004,
) -> Complex64Array:
    """Noise plus every burst of ``bursts`` (clipped to the buffer), as complex64."""
    iq = receiver_noise(rng, n_samples, noise_dbfs, dc_offset)
    for spec in bursts:
        i0 = round(spec.start_s * rate)
        n = round(spec.duration_s * rate)
        lo, hi = max(i0, 0), min(i0 + n, n_samples)
        if hi <= lo:
            continue
        if spec.kind == "gsm":
            shape = gmsk_burst(rng, rate, n)
        else:
            shape = scfdma_burst(rng, rate, n, spec.n_prb)
        amp = math.sqrt(10.0 ** (spec.power_dbfs / 10.0))
        t = np.arange(n, dtype=np.float64) / rate
        mix = np.exp(2j * math.pi * spec.offset_hz * t + 1j * rng.uniform(0, 2 * math.pi))
        shape = (shape * mix.astype(np.complex64)) * np.complex64(amp)
        iq[lo:hi] += shape[lo - i0 : hi - i0]
    return iq


def gsm_schedule(
    start_s: float,
    duration_s: float,
    offset_hz: float,
    power_dbfs: float,
    timeslot: int = 0,
    slots_per_frame: int = 1,
) -> list[BurstSpec]:
    """A handset on a traffic channel: one 546 us burst in ``timeslot`` of every TDMA frame.

    ``slots_per_frame`` > 1 gives multislot (GPRS/EDGE) bursts in consecutive slots.
    """
    out: list[BurstSpec] = []
    t = start_s + timeslot * GSM_TIMESLOT_S
    while t < start_s + duration_s:
        for s in range(slots_per_frame):
            ts = t + s * GSM_TIMESLOT_S
            out.append(BurstSpec("gsm", ts, GSM_BURST_S, offset_hz, power_dbfs))
        t += GSM_FRAME_S
    return out


def lte_schedule(
    rng: np.random.Generator,
    start_s: float,
    duration_s: float,
    offset_hz: float,
    power_dbfs: float,
    duty: float = 0.3,
    n_prb: int = 6,
) -> list[BurstSpec]:
    """A handset's uplink grants: each 1 ms subframe is used with probability ``duty``."""
    n_sub = int(duration_s / LTE_SUBFRAME_S)
    used = rng.random(n_sub) < duty
    return [
        BurstSpec("lte", start_s + i * LTE_SUBFRAME_S, LTE_SUBFRAME_S, offset_hz, power_dbfs, n_prb)
        for i in np.flatnonzero(used)
    ]


def synth_cu8(
    rng: np.random.Generator,
    rate: float,
    n_samples: int,
    noise_dbfs: float,
    bursts: list[BurstSpec],
) -> UInt8Array:
    """:func:`render` then 8-bit quantisation: the bytes a dongle would have delivered."""
    return quantise_cu8(render(rng, rate, n_samples, noise_dbfs, bursts))
