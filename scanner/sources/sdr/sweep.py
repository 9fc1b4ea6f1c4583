"""The sweep: which uplink channel the dongle listens to next, and for how long.

One dongle sees about 2 MHz at a time, while a region's uplink bands span well over 100 MHz,
so the tuner hops. Every tuning gets a turn (a handset may appear anywhere), but tunings where
bursts were heard recently, or whose paired downlink carries a local base station, get more
turns: stride scheduling, deterministic, no starvation. A tuning that fails to tune is dropped
and reported. Samples just after a retune are discarded by the capture loop (``settle_s``): the
PLL and the dongle's buffers still hold the previous frequency.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from scanner.sources.sdr.bands import TUNER_MAX_HZ, TUNER_MIN_HZ, BandPlan
from scanner.sources.sdr.options import SweepOptions, Tuning

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class _Slot:
    tuning: Tuning
    activity: float = 0.0  # bursts per second heard here, smoothed
    prior: float = 1.0  # from the downlink survey: a local cell's uplink is more likely
    pass_value: float = 0.0
    dropped: str = ""


@dataclass(slots=True)
class SweepScheduler:
    """Weighted round robin over the tunings of a band plan."""

    tunings: list[Tuning]
    options: SweepOptions = field(default_factory=SweepOptions)
    span_hz: float = 1.92e6  # usable width of one tuning (80 % of 2.4 MS/s)
    _slots: list[_Slot] = field(init=False)

    def __post_init__(self) -> None:
        self._slots = [_Slot(t) for t in self.tunings]

    @classmethod
    def for_plan(cls, plan: BandPlan, rate: float, options: SweepOptions) -> SweepScheduler:
        return cls([Tuning(b, c) for b, c in plan.tunings(rate)], options, rate * 0.8)

    def weight(self, tuning: Tuning) -> float:
        s = self._slot(tuning)
        w = s.prior * (1.0 + self.options.activity_gain * s.activity)
        return min(w, self.options.max_weight)

    def _slot(self, tuning: Tuning) -> _Slot:
        for s in self._slots:
            if s.tuning == tuning:
                return s
        raise KeyError(tuning)

    @property
    def active(self) -> list[Tuning]:
        return [s.tuning for s in self._slots if not s.dropped]

    def next(self) -> Tuning | None:
        """The tuning to listen to next (None when every tuning has been dropped)."""
        live = [s for s in self._slots if not s.dropped]
        if not live:
            return None
        slot = min(live, key=lambda s: s.pass_value)
        slot.pass_value += 1.0 / self.weight(slot.tuning)
        return slot.tuning

    def report(self, tuning: Tuning, bursts: int, seconds: float) -> None:
        """Bursts heard on ``tuning`` during a dwell of ``seconds``; ages the other tunings."""
        decay = 0.5 ** (seconds / self.options.activity_half_life_s)
        for s in self._slots:
            s.activity *= decay
        s = self._slot(tuning)
        s.activity += bursts / max(self.options.activity_half_life_s, 1e-9)

    def drop(self, tuning: Tuning, reason: str) -> None:
        """Stop visiting a tuning the dongle cannot reach, and say so once."""
        s = self._slot(tuning)
        if not s.dropped:
            s.dropped = reason or "failed"
            _LOGGER.warning(
                "dropping %.3f MHz (%s) from the sweep: %s", tuning.centre_hz / 1e6, tuning.band,
                s.dropped,
            )  # fmt: skip

    def dropped(self) -> dict[str, str]:
        return {f"{s.tuning.centre_hz / 1e6:.3f}": s.dropped for s in self._slots if s.dropped}

    def mark_downlink_carriers(self, plan: BandPlan, carriers_dl_hz: list[float]) -> int:
        """Weight the uplink tunings paired with base-station carriers heard on the downlink."""
        marked = 0
        for dl in carriers_dl_hz:
            for band in plan.bands:
                if not band.dl_low_hz <= dl <= band.dl_high_hz:
                    continue
                ul = band.uplink_of(dl)
                for s in self._slots:
                    half = self.span_hz / 2
                    if (
                        abs(s.tuning.centre_hz - ul) <= half
                        and s.prior < self.options.downlink_prior
                    ):
                        s.prior = self.options.downlink_prior
                        marked += 1
        return marked


def downlink_tunings(plan: BandPlan, rate: float, usable_fraction: float = 0.8) -> list[Tuning]:
    """Centres covering each band's paired downlink (for the base-station survey)."""
    span = rate * usable_fraction
    out: list[Tuning] = []
    seen: set[tuple[float, float]] = set()
    for b in plan.bands:
        key = (b.dl_low_hz, b.dl_high_hz)
        if key in seen:
            continue
        seen.add(key)
        n = max(1, math.ceil((b.dl_high_hz - b.dl_low_hz) / span))
        step = (b.dl_high_hz - b.dl_low_hz) / n
        centres = (b.dl_low_hz + step * (i + 0.5) for i in range(n))
        # B66's downlink (2110 MHz and up) is past the tuner: nothing there to survey.
        out += [Tuning(b.name, c) for c in centres if TUNER_MIN_HZ <= c <= TUNER_MAX_HZ]
    return out


def find_carriers(
    mean_power: npt.NDArray[np.float32],
    centre_hz: float,
    rate: float,
    min_excess_db: float = 10.0,
    edge_fraction: float = 0.1,
) -> list[float]:
    """Frequencies of steady carriers: bins of a long-averaged spectrum far above its median.

    Base stations transmit continuously on their downlink, so after averaging a dwell their
    carriers stand out while handsets' bursts average away. Adjacent hot bins count once.
    """
    n = mean_power.size
    lo, hi = int(n * edge_fraction), int(n * (1 - edge_fraction))
    ref = float(np.median(mean_power[lo:hi]))
    hot = np.zeros(n, dtype=bool)
    hot[lo:hi] = mean_power[lo:hi] > ref * 10 ** (min_excess_db / 10)
    c = n // 2
    hot[c - 1 : c + 2] = False  # the tuner's DC spike is not a carrier
    edges = np.diff(np.concatenate(([0], hot.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    bin_hz = rate / n
    out = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        seg = mean_power[s:e]
        k = s + int(np.argmax(seg))
        out.append(centre_hz + (k - n / 2 + 0.5) * bin_hz)
    return out


def mean_spectrum(raw_cu8: npt.NDArray[np.uint8], n: int = 256) -> npt.NDArray[np.float32]:
    """Average power spectrum (centred, linear, full scale 1) of a stretch of cu8 IQ."""
    x = np.subtract(raw_cu8[: raw_cu8.size // (2 * n) * 2 * n], np.float32(127.5),
                    dtype=np.float32) * np.float32(1 / 127.5)  # fmt: skip
    frames = x.view(np.complex64).reshape(-1, n) * np.hanning(n).astype(np.float32)
    spec = np.abs(np.fft.fftshift(np.fft.fft(frames, axis=1), axes=1)) ** 2
    out: npt.NDArray[np.float32] = spec.mean(axis=0).astype(np.float32)
    return out


def occupied_downlinks(powers: dict[Tuning, float], min_excess_db: float = 10.0) -> list[float]:
    """Downlink tunings carrying a wideband (LTE) cell: far above the band's quietest tuning."""
    by_band: dict[str, list[tuple[Tuning, float]]] = {}
    for t, p in powers.items():
        by_band.setdefault(t.band, []).append((t, p))
    out: list[float] = []
    for items in by_band.values():
        quiet = min(p for _t, p in items)
        out += [t.centre_hz for t, p in items if p > quiet * 10 ** (min_excess_db / 10)]
    return out
