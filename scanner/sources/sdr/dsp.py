"""The burst detector: IQ in, uplink bursts out. numpy float32, no per-sample Python.

Stages, each vectorised over a whole batch of frames:

1. **Spectra.** IQ is cut into frames of ``fft_size`` samples, windowed (Hann, with the
   ``(-1)^n`` factor folded in so the FFT comes out already centred) and transformed. Powers are
   scaled so the bins of one frame sum to the frame's mean power: full scale (|x| = 1) is 0 dBFS.
   The RTL-SDR's DC spike is replaced by its neighbours' mean.
2. **Noise floor per bin**, updated once per block of frames from the median of sub-block means
   (a burst in fewer than half the sub-blocks cannot move it). It falls at once and rises by at
   most ``floor_rise_db_per_s``, so a handset that transmits for a while is not learnt as noise.
3. **CFAR.** Bins are summed into overlapping cells about ``2 * half_channel_bins`` wide (roughly
   one GSM channel or one LTE PRB pair); a cell is hot when it exceeds the smoothed floor by a
   factor set from the wanted false-alarm probability per cell (Gamma tail with the effective
   degrees of freedom of the window's correlated bins).
4. **Grouping.** Hot cells of one frame that touch form a segment; segments overlapping in
   frequency in consecutive frames (allowing ``max_gap_frames`` misses) form a burst. A GSM
   burst is one timeslot, an LTE grant one or more 1 ms subframes.
5. **Measurement.** Burst band (-10 dB from the peak of its mean excess spectrum), centre
   (power centroid), power (dBFS, noise removed) and SNR in that band. Start and end are refined
   below one frame from the energy of the edge frames through the window's energy curve.

Stage 4 loops in Python over segments (a handful per burst) and stage 5 over the bursts that
closed in a read (two sums each, the rest vectorised across them); nothing loops over samples.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner.sources.sdr.constants import MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ
from scanner.sources.sdr.options import SUB_FRAMES as _SUB_FRAMES
from scanner.sources.sdr.options import DetectorParams, NearnessCalibration
from scanner.sources.sdr.samples import clipped_count, to_complex64

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
_TINY = 1e-20
# A dwell's first floor comes from its quiet frames only (see ``_quiet_floor``): a frame is
# quiet in a bin when the cell centred on the bin holds under this many times the cell's noise
# mean. Noise passes 99 % of the time at this level (cells are Gamma with about 5 degrees of
# freedom), while a burst 10 dB above the noise in its channel almost never does, so a burst
# that fills most of a short dwell is left out of that dwell's floor.
_QUIET_CELL_RATIO = 2.5
# The iteration starts from this quantile of each cell over the stretch (scaled as if every
# frame were noise): with a burst in up to 60 % of the frames it lands within a factor of two
# of the noise mean, which the censoring then settles on. The minimum would be a poor start:
# with few frames the cutoff may keep that one frame alone and never climb.
_QUIET_START_QUANTILE = 0.2
_QUIET_ROUNDS = 6
# The per-bin floor of a short stretch pools this many bins either side, so a floor from a
# handful of quiet frames has the scatter of a few dozen.
_QUIET_POOL_BINS = 1


FftRows = Callable[[npt.NDArray[np.complex64]], npt.NDArray[np.complex64]]
# FFT libraries in order of preference: FFTW (pyfftw, in the sdr extra where wheels exist) runs
# the 128-point transforms about 2.5x faster than pocketfft on one core; scipy's pocketfft
# vectorises across rows (3-5x numpy for short transforms); numpy's is the last resort.
FFT_BACKENDS = ("fftw", "scipy", "numpy")
# Byte alignment of the scratch the IQ is decoded into: FFTW's SIMD plans need 32 on x86 (AVX),
# 16 on ARM (NEON); 64 covers both and AVX-512.
_ALIGN = 64
# float32 scalars of decode scratch kept between reads (16 MB: 8x the live path's 2^18-sample
# reads, which use 2 MB).
_SCRATCH_MAX = 1 << 22


def _aligned_empty(n: int, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """An uninitialised 1-D array of ``n`` items whose first byte sits on a ``_ALIGN`` boundary."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(n * itemsize + _ALIGN, np.uint8)
    off = (-raw.ctypes.data) % _ALIGN
    return raw[off : off + n * itemsize].view(dtype)


class _FftwRows:
    """In-place FFTW transforms along the rows, one plan per shape (FFTW_ESTIMATE: planning
    takes well under a millisecond, leaves the data alone and gives the same plan, so the same
    figures, every run). A plan keeps no buffer of its own: it runs on the caller's array."""

    _MAX_PLANS = 8  # shapes seen in one run: the steady read, a dwell's tail, a few odd reads

    def __init__(self) -> None:
        self._pyfftw = _import_pyfftw()
        self._plans: dict[tuple[int, ...], Any] = {}

    def __call__(self, x: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
        fftw = self._pyfftw
        if x.flags.c_contiguous and fftw.is_n_byte_aligned(x, fftw.simd_alignment):
            target = x
        else:
            # A misaligned stretch (the join of a dwell's leftover and a new read) is copied
            # to aligned memory: one pass, cheaper than an unaligned plan.
            target = fftw.empty_aligned(x.shape, dtype="complex64")
            target[...] = x
        plan = self._plans.get(x.shape)
        if plan is None:
            if len(self._plans) >= self._MAX_PLANS:
                self._plans.clear()
            plan = self._plans[x.shape] = fftw.FFTW(
                target,
                target,
                axes=(1,),
                direction="FFTW_FORWARD",
                flags=("FFTW_ESTIMATE",),
                threads=1,
            )
        else:
            plan.update_arrays(target, target)
        plan.execute()
        out: npt.NDArray[np.complex64] = target
        return out


def _import_pyfftw() -> Any:
    """pyfftw without its scipy interfaces: the package's ``__init__`` imports
    ``pyfftw.interfaces``, which imports ``scipy.fftpack`` (and with it scipy.fft and
    scipy.special) only to offer scipy-shaped wrappers this detector never calls. That costs
    the SDR daemon 29 MB of RSS (61 MB against 32 MB after ``import numpy, pyfftw``, measured
    on CPython 3.11, pyFFTW 0.15, scipy 1.x). While pyfftw is imported, ``scipy.fftpack`` is
    marked missing, so the interfaces skip their scipy part; ``FFTW`` itself is the same
    class. If scipy is already loaded (another part of the process wanted it), nothing is
    saved by hiding it, so pyfftw is imported as it is."""
    if "pyfftw" in sys.modules or "scipy.fftpack" in sys.modules:
        import pyfftw

        return pyfftw
    sys.modules["scipy.fftpack"] = None  # type: ignore[assignment]
    try:
        import pyfftw
    finally:
        if sys.modules.get("scipy.fftpack", 0) is None:
            del sys.modules["scipy.fftpack"]
    return pyfftw


def _load_fft(backend: str | None = None) -> tuple[str, FftRows]:
    """The row FFT of ``backend`` (one of ``FFT_BACKENDS``), or the first available one, and
    its name.

    The result may be the input array, transformed in place.
    """
    if backend is not None and backend not in FFT_BACKENDS:
        raise ValueError(f"fft backend must be one of {', '.join(FFT_BACKENDS)}, not {backend!r}")
    if backend in (None, "fftw"):
        try:
            return "fftw", _FftwRows()
        except ImportError:
            if backend == "fftw":
                raise
            _LOGGER.debug("pyfftw not available; using scipy.fft")
    if backend in (None, "scipy"):
        try:
            import scipy.fft as sfft
        except ImportError:  # pragma: no cover - scipy is a declared dependency
            if backend == "scipy":
                raise
            _LOGGER.debug("scipy not available; using numpy.fft")
        else:

            def sp_fft(x: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
                out: npt.NDArray[np.complex64] = sfft.fft(x, axis=1, workers=1, overwrite_x=True)
                return out

            return "scipy", sp_fft

    def np_fft(x: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
        return np.fft.fft(x, axis=1).astype(np.complex64, copy=False)

    return "numpy", np_fft


@dataclass(frozen=True, slots=True)
class Burst:
    """One detected burst, in the dwell's absolute terms."""

    t_start: float
    t_end: float
    freq_hz: float
    bandwidth_hz: float
    power_dbfs: float
    snr_db: float
    centre_hz: float  # the dwell's tuning
    sample_start: int  # within the dwell
    sample_count: int
    n_frames: int
    # The mean excess power per bin across the burst's band (noise removed), kept so the
    # shape can be judged when someone asks: the live path never does, and it costs a
    # Python pass per burst.
    spectrum: tuple[float, ...] = ()

    @property
    def flat(self) -> float:
        """Share of the band's bins within 3 dB of the peak (see ``spectral_shape``)."""
        return spectral_shape(self.spectrum)[0]

    @property
    def dip_db(self) -> float:
        """The deepest valley between two humps of the spectrum, dB (0 for one hump)."""
        return 10.0 * math.log10(spectral_shape(self.spectrum)[1])

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start

    @property
    def shape(self) -> str:
        """A guess at the air interface from the burst's physics (see ``classify_shape``)."""
        return classify_shape(self)


# -- shape -------------------------------------------------------------------------------------
# Below this SNR the -10 dB band edges (``band_threshold_db``) and the -3 dB flatness are read
# off the noise, not the burst: no width, flatness or valley measured there means anything.
SHAPE_MIN_SNR_DB = 10.0
# A GSM timeslot is 577 us (normal burst 546 us of symbols, access burst 325 us); 700 us allows
# the power ramps and one frame of edge error. LTE transmits in 0.5 ms slots and 1 ms subframes,
# so a burst of 800 us or more is not one GSM timeslot.
GSM_MAX_S = 700e-6
LONG_MIN_S = 800e-6
# GMSK at 270.833 ksymbol/s spreads over about 200 kHz; its -10 dB width is never under 100 kHz
# (a narrower line is a carrier or a tone, e.g. a base station's FCCH), nor over 500 kHz.
GSM_MIN_BW_HZ = 100e3
GSM_MAX_BW_HZ = 500e3
# SC-FDMA spreads a grant evenly over its resource blocks (the DFT precoding makes the spectrum
# flat-topped with steep edges): at least this share of the -10 dB band sits within 3 dB of the
# peak. Two-tone FSK puts its power in two narrow lines and leaves the middle low.
LTE_MIN_FLAT = 0.4
# 2-FSK with a modulation index near 1 (Wireless M-Bus T1: 100 kchip/s, +-50 kHz) shows two
# spectral humps at the tones with a valley between. The valley counts when it is this deep and
# the spectrum was averaged over enough frames for each bin's scatter (1/sqrt(frames) of its
# level: 18 % or 0.7 dB at 32 frames) to make a 3 dB valley at least four standard deviations.
FSK_MIN_DIP_DB = 3.0
FSK_MIN_FRAMES = 32
# Two tones 100 kHz apart seen through the window's 2-bin skirts fill up to half the -10 dB
# band at 2.4 MS/s (their -3 dB lobes touch); flatter than that is one block, not two lines.
FSK_MAX_FLAT = 0.5


def classify_shape(b: Burst) -> str:
    """``gsm``, ``lte``, ``fsk`` or ``unknown`` from SNR, duration, width, flatness, valley.

    Every rule is a property of the air interface, not of a capture: GSM is a GMSK timeslot
    about 200 kHz wide; LTE uplink (SC-FDMA) a flat-topped block of 180 kHz resource blocks in
    0.5-1 ms units; FSK two tones with a valley between, typically long (a meter's telegram
    lasts milliseconds). Anything else, and anything too weak to measure, is ``unknown``.
    """
    if b.snr_db < SHAPE_MIN_SNR_DB:
        return "unknown"
    duration = b.duration_s
    flat, dip = spectral_shape(b.spectrum)
    two_tones = 10.0 * math.log10(dip) >= FSK_MIN_DIP_DB and b.n_frames >= FSK_MIN_FRAMES
    if two_tones and flat < FSK_MAX_FLAT:
        return "fsk"
    if duration <= GSM_MAX_S and GSM_MIN_BW_HZ <= b.bandwidth_hz <= GSM_MAX_BW_HZ:
        return "gsm"
    if duration >= LONG_MIN_S and flat >= LTE_MIN_FLAT:
        return "lte"
    return "unknown"


@dataclass(slots=True)
class DetectorStats:
    """Running figures for health reports."""

    samples: int = 0
    frames: int = 0
    clipped: int = 0
    scalars: int = 0
    bursts: int = 0
    noise_floor_dbfs: float | None = None  # total noise power across the band
    last_clip_fraction: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)


def spectral_shape(band: tuple[float, ...] | list[float]) -> tuple[float, float]:
    """Flatness and two-hump valley of a burst's mean excess spectrum over its band.

    ``flat`` is the share of the band's bins within 3 dB of the peak; ``dip`` the largest
    ratio, over every bin, of the lower of the highest bins either side of it to the bin
    itself (1.0 for a single hump or a flat top).
    """
    n = len(band)
    if not n:
        return 1.0, 1.0
    half = 0.5 * max(band)
    flat = sum(1 for v in band if v >= half) / max(n, 1)
    left = [0.0] * n
    run = 0.0
    for i, v in enumerate(band):
        left[i] = run
        run = max(run, v)
    dip = 1.0
    run = 0.0
    for i in range(n - 1, -1, -1):
        v = band[i]
        side = min(left[i], run)
        if side > 0.0:
            dip = max(dip, side / max(v, side * 1e-3))
        run = max(run, v)
    return flat, dip


def erlang_tail(k: int, x: float) -> float:
    """P(G > x) for G ~ Gamma(k, 1/k) (mean 1): the chance a noise cell exceeds ``x``."""
    kx = k * x
    term, total = 1.0, 1.0
    for i in range(1, k):
        term *= kx / i
        total += term
    return math.exp(-kx) * total


def cfar_factor(dof: float, pfa: float) -> float:
    """The threshold (times the floor) at which noise with ``dof`` degrees exceeds ``pfa``."""
    k = max(1, math.floor(dof))  # rounding down is the conservative side
    lo, hi = 1.0, 200.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if erlang_tail(k, mid) > pfa:
            lo = mid
        else:
            hi = mid
    return hi


def _gamma_pdf(dof: float, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Density of Gamma(dof, 1/dof) (mean 1) at ``x`` > 0."""
    log_pdf = dof * math.log(dof) + (dof - 1.0) * np.log(x) - dof * x - math.lgamma(dof)
    out: npt.NDArray[np.float64] = np.exp(log_pdf)
    return out


def censored_mean(dof: float, ratio: float) -> float:
    """E[G | G < ratio] for G ~ Gamma(dof, 1/dof) (mean 1): the mean of the noise kept below
    ``ratio`` times its mean, which unbiases a floor taken from quiet cells only."""
    # Numerical integration once per detector: dof need not be an integer.
    x = np.linspace(0.0, ratio, 20001)[1:]
    pdf = _gamma_pdf(dof, x)
    return float(np.sum(x * pdf) / np.sum(pdf))


def gamma_quantile(dof: float, q: float) -> float:
    """The ``q`` quantile of Gamma(dof, 1/dof) (mean 1)."""
    x = np.linspace(0.0, 10.0, 40001)[1:]
    cdf = np.cumsum(_gamma_pdf(dof, x))
    cdf /= cdf[-1]
    return float(x[min(int(np.searchsorted(cdf, q)), x.size - 1)])


def effective_dof(window: FloatArray, n_bins: int) -> float:
    """Degrees of freedom of a sum of ``n_bins`` adjacent bin powers of white noise.

    Windowed bins are correlated; the power correlation of bins ``d`` apart is ``|rho_d|^2``
    with ``rho_d`` the normalised DFT of the squared window.
    """
    w2 = window.astype(np.float64) ** 2
    n = w2.size
    rho = np.abs(np.fft.fft(w2)) / w2.sum()
    var = float(n_bins)
    for d in range(1, n_bins):
        var += 2.0 * (n_bins - d) * float(rho[d % n]) ** 2
    return n_bins**2 / var


class BurstDetector:
    """Stateful detector for one receiver: feed it dwells of IQ, get bursts back."""

    def __init__(
        self, rate: float, params: DetectorParams | None = None, fft_backend: str | None = None
    ) -> None:
        """Raises ``ValueError`` naming ``rate`` or the parameter it cannot work with.

        ``fft_backend`` (one of ``FFT_BACKENDS``) picks the FFT library; by default the fastest
        one installed. They agree to float32 rounding.
        """
        self.params = params or DetectorParams()
        p = self.params
        p.validate()
        if not (
            isinstance(rate, int | float)
            and math.isfinite(rate)
            and MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ
        ):
            raise ValueError(
                f"rate must be a sample rate from {MIN_SAMPLE_RATE_HZ:g} to "
                f"{MAX_SAMPLE_RATE_HZ:g} samples/s, not {rate!r}"
            )
        self.rate = float(rate)
        self.n = p.fft_size
        self.h = p.half_channel_bins
        self.frame_s = self.n / self.rate
        self.bin_hz = self.rate / self.n
        hann = (0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(self.n) + 0.5) / self.n)).astype(
            np.float32
        )
        # Scale so sum over bins of |X|^2 equals the mean power of the frame; the alternating
        # sign moves 0 Hz to the middle bin without an fftshift copy.
        scale = 1.0 / math.sqrt(self.n * float(np.sum(hann.astype(np.float64) ** 2)))
        sign = np.where(np.arange(self.n) % 2 == 0, 1.0, -1.0)
        # Applied to interleaved I/Q scalars, so it is repeated per pair (real multiply only).
        self._window_real = np.repeat(hann * scale * sign, 2).astype(np.float32)
        self._scale = 1.0
        self._window_scaled = self._window_real.copy()
        energy = np.cumsum(hann.astype(np.float64) ** 2)
        self._energy_curve = np.concatenate(([0.0], energy / energy[-1]))
        self._energy_grid = np.linspace(0.0, 1.0, self.n + 1)
        self._bins = np.arange(self.n)
        self._band_fraction = 10.0 ** (-p.band_threshold_db / 10)
        self._edge_fraction = 10.0 ** (-p.edge_db / 10)
        # The FFT library in use (one of FFT_BACKENDS), for the bench's report.
        self.fft_backend, self._fft = _load_fft(fft_backend)
        self._scratch: FloatArray = _aligned_empty(0, np.float32)
        self.dof = effective_dof(hann, 2 * self.h)
        self.factor = np.float32(cfar_factor(self.dof, p.pfa))
        k = _SUB_FRAMES
        # Median of a Gamma(k) mean-one variable (Wilson-Hilferty), to unbias the floor.
        self._median_bias = (1.0 - 1.0 / (9 * k)) ** 3
        self._quiet_bias = np.float32(censored_mean(self.dof, _QUIET_CELL_RATIO))
        self._quiet_start = np.float32(1.0 / gamma_quantile(self.dof, _QUIET_START_QUANTILE))
        rise_db = p.floor_rise_db_per_s * p.block_frames * self.frame_s
        # float32 holds up to about 383 dB; a larger rise per block is a misconfiguration.
        if rise_db > 300.0:
            raise ValueError(
                f"floor_rise_db_per_s * block_frames * frame time is {rise_db:g} dB per block "
                f"at rate {self.rate:g}: lower floor_rise_db_per_s or block_frames"
            )
        self._rise = 10.0 ** (rise_db / 10.0)
        self._rise32 = np.float32(self._rise)
        self._alpha = np.float32(p.floor_alpha)
        self._fall = np.float32(10.0 ** (-p.floor_fall_db / 10))
        self._track = np.float32(10.0 ** (p.floor_track_db / 10))
        # Never fewer than 3 frames: two chance hot frames in a row are common in noise.
        self._min_frames = max(3, math.ceil(p.min_duration_s / self.frame_s))
        self._max_frames = max(self._min_frames, int(p.max_burst_s / self.frame_s))
        self.stats = DetectorStats()
        self._floor_cache: dict[float, FloatArray] = {}
        self._floor: FloatArray | None = None
        self._begin_state(0.0, 0.0)

    # -- dwell lifecycle -------------------------------------------------------------------
    def _begin_state(self, centre_hz: float, t0: float) -> None:
        self.centre_hz = centre_hz
        self.t0 = t0
        self._frame = 0  # frames consumed in this dwell
        self._pending: npt.NDArray[np.complex64] = np.zeros(0, np.complex64)
        self._tracks: list[_Track] = []
        self._made = 0  # tracks opened in this dwell
        self._finished: list[_Track] = []
        self._history: list[tuple[int, FloatArray]] = []
        cached = self._floor_cache.get(centre_hz)
        self._floor = None if cached is None else cached.copy()
        self._from_cache = cached is not None

    def reset_floors(self) -> None:
        """Forget every learnt floor (after a gain change the old ones are wrong)."""
        self._floor_cache.clear()
        self._floor = None
        self._from_cache = False

    def begin_dwell(self, centre_hz: float, t0: float) -> None:
        """Start a new stretch of IQ at ``centre_hz`` whose first sample is at ``t0``."""
        self._begin_state(float(centre_hz), float(t0))

    def end_dwell(self) -> list[Burst]:
        """Flush: process the partial block at the end and close every open burst."""
        out: list[Burst] = []
        n_frames = self._pending.size // self.n
        if n_frames:
            frames = self._pending[: n_frames * self.n].copy()
            p = self._spectra(frames)
            # A short remainder (or a whole short scenario window) still informs the floor,
            # from its quiet frames: a burst may fill most of a short triggered segment.
            if self._floor is None or n_frames >= _SUB_FRAMES:
                self._floor = self._next_floor(self._floor, self._quiet_floor(p))
            floors = self._floor[None, :]
            self._detect(p, floors, n_frames, out)
            self._frame += n_frames
        self._pending = np.zeros(0, np.complex64)
        for t in self._tracks:
            self._finish(t)
        self._tracks = []
        self._measure_finished(out)
        if self._floor is not None:
            self._floor_cache[self.centre_hz] = self._floor.copy()
        return out

    def feed(
        self, raw: npt.NDArray[Any], datatype: str = "cf32_le", full_scale: float = 1.0
    ) -> list[Burst]:
        """Process more samples of the current dwell: raw scalars of ``datatype`` or complex64.

        ``full_scale`` is the float scalar magnitude taken as 0 dBFS (``cf32_le`` and complex64
        only: integer types carry their own). The caller's array is never modified; one dwell
        has one datatype and one full scale.
        """
        if datatype in ("cu8", "ci8"):
            clipped = clipped_count(raw, datatype)
            self.stats.clipped += clipped
            self.stats.scalars += raw.size
            self.stats.last_clip_fraction = clipped / max(1, raw.size)
        iq, scale = self._decode(raw, datatype)
        if datatype == "cf32_le" or raw.dtype == np.complex64:
            # The scale rides along in the window, as for cu8: no extra pass over the samples.
            scale /= full_scale
        self.stats.samples += iq.size
        if scale != self._scale:
            if self._pending.size:
                self._pending = self._pending * np.float32(self._scale / scale)
            self._scale = scale
            self._window_scaled = (self._window_real * np.float32(scale)).astype(np.float32)
        if self._pending.size:
            iq = np.concatenate((self._pending, iq))
        block = self.params.block_frames * self.n
        n_blocks = iq.size // block
        out: list[Burst] = []
        if n_blocks:
            self._process_blocks(iq[: n_blocks * block], n_blocks, out)
        self._pending = iq[n_blocks * block :].copy()
        return out

    def _decode(
        self, raw: npt.NDArray[Any], datatype: str
    ) -> tuple[npt.NDArray[np.complex64], float]:
        """A writable complex64 array of the samples (never the caller's) and the factor that
        brings it to full scale 1. cu8 is decoded into the detector's aligned scratch, reused
        by the next call, so the FFT runs in place on aligned memory with nothing allocated."""
        if raw.dtype == np.complex64:
            return np.array(raw, dtype=np.complex64, copy=True), 1.0
        if datatype == "cu8":
            # Offset only; the 1/127.5 scale rides along in the window (one pass fewer).
            u = raw.view(np.uint8)
            u = u[: u.size - (u.size % 2)]
            out = self._scratch_for(u.size)
            np.subtract(u, np.float32(127.5), dtype=np.float32, out=out)
            return out.view(np.complex64), 1.0 / 127.5
        iq = to_complex64(raw, datatype)
        if np.shares_memory(iq, raw):
            iq = iq.copy()
        return iq, 1.0

    def _scratch_for(self, n: int) -> FloatArray:
        """``n`` float32 of aligned scratch; a read larger than ``_SCRATCH_MAX`` gets its own
        array, so one huge read does not stay allocated for the detector's life."""
        if n > _SCRATCH_MAX:
            big: FloatArray = _aligned_empty(n, np.float32)
            return big
        if self._scratch.size < n:
            self._scratch = _aligned_empty(n, np.float32)
        return self._scratch[:n]

    # -- stages ----------------------------------------------------------------------------
    def _spectra(self, iq: npt.NDArray[np.complex64]) -> FloatArray:
        """Power spectra of whole frames of ``iq`` (which is windowed in place)."""
        scalars = iq.view(np.float32).reshape(-1, 2 * self.n)
        np.multiply(scalars, self._window_scaled, out=scalars)
        spec = self._fft(iq.reshape(-1, self.n))
        # |X| of complex64 is one contiguous vectorised pass; squaring in place is another.
        p: FloatArray = np.abs(spec)
        np.multiply(p, p, out=p)
        if self.params.interpolate_dc:
            c = self.n // 2
            p[:, c - 1 : c + 2] = (0.5 * (p[:, c - 2] + p[:, c + 2]))[:, None]
        self.stats.frames += p.shape[0]
        self._remember(p)
        return p

    def _remember(self, p: FloatArray) -> None:
        """Keep recent spectra so a burst's frames can be measured when it closes."""
        self._history.append((self._frame, p))
        keep_from = self._frame - self._max_frames - self.params.max_gap_frames - 2
        if self._tracks:
            keep_from = min(keep_from, *(t.first for t in self._tracks))
        while len(self._history) > 1 and (
            self._history[0][0] + self._history[0][1].shape[0] <= keep_from
        ):
            self._history.pop(0)

    def _rows(self, frames: list[int]) -> FloatArray:
        """The remembered spectra of ``frames`` (may be a view: read only)."""
        first, last = frames[0], frames[-1]
        if last - first + 1 == len(frames):
            # The common case: consecutive frames inside one batch are a slice.
            for base, p in self._history:
                if base <= first and last < base + p.shape[0]:
                    return p[first - base : last - base + 1]
        return self._rows_scattered(frames)

    def _rows_scattered(self, frames: list[int]) -> FloatArray:
        fr = np.asarray(frames)
        first, last = int(fr[0]), int(fr[-1])
        out = np.empty((fr.size, self.n), np.float32)
        for base, p in self._history:
            end = base + p.shape[0]
            if end <= first or base > last:
                continue
            sel = (fr >= base) & (fr < end)
            out[sel] = p[fr[sel] - base]
        return out

    def _process_blocks(
        self, iq: npt.NDArray[np.complex64], n_blocks: int, out: list[Burst]
    ) -> None:
        b = self.params.block_frames
        p = self._spectra(iq)
        n_sub = b // _SUB_FRAMES
        # Sub-block sums (the 1/_SUB_FRAMES of the mean is folded into the last scale; a power
        # of two, so the figures are the same), laid out bins x sub-blocks so that the sort
        # runs along contiguous memory.
        q = p.reshape(n_blocks, n_sub, _SUB_FRAMES, self.n)
        sums = q[:, :, 0] + q[:, :, 1]
        for i in range(2, _SUB_FRAMES):
            sums += q[:, :, i]
        sub = sums.transpose(0, 2, 1).copy()
        sub.sort(axis=2)
        mid = n_sub // 2
        est = (sub[:, :, mid - 1] + sub[:, :, mid]) * np.float32(
            0.5 / (self._median_bias * _SUB_FRAMES)
        )
        if self._frame == 0:
            # A dwell's first block has no floor of its own yet, and a burst in more than half
            # of it would pass the sub-block median: its quiet frames set the first estimate.
            est[0] = self._quiet_floor(p[:b])
        floors = np.empty((n_blocks, self.n), np.float32)
        floor = self._floor
        alpha, fall, track, rise = self._alpha, self._fall, self._track, self._rise32
        for j in range(n_blocks):
            e = est[j]
            if floor is None or self._from_cache:
                floors[j] = self._next_floor(floor, e)
            else:
                # ``_next_floor``'s step written into the block's row, with the same float32
                # operations in the same order: fewer numpy calls and no copy per block.
                ratio = e / floor
                lin = e - floor
                lin *= alpha
                lin += floor
                row = floors[j]
                np.multiply(floor, rise, out=row)
                np.copyto(row, lin, where=ratio <= track)
                np.copyto(row, e, where=ratio < fall)
            floor = floors[j]
        self._floor = None if floor is None else floor.copy()
        self._detect(p, floors, b, out)
        self._frame += p.shape[0]

    def _quiet_floor(self, p: FloatArray) -> FloatArray:
        """Per-bin noise of the spectra ``p`` (frames x bins), from their quiet frames only.

        A short dwell may be mostly burst, so neither the mean nor the median of its frames is
        noise. Instead each bin's cell (``2 * half_channel_bins`` bins centred on it, where a
        burst stands well clear of the noise) is censored at ``_QUIET_CELL_RATIO`` times an
        estimate of its noise mean, the estimate is re-taken as the mean of the cells kept
        (unbiased for the censoring), and this repeats from a low quantile of each cell. Bins
        then average their own powers over the frames their cell kept, pooled with their
        neighbours. Needs a quiet frame in each cell: a burst that fills the whole stretch is
        left to the floor carried from an earlier dwell at this tuning.
        """
        h = self.h
        padded = np.pad(p, ((0, 0), (h, h)), mode="reflect")
        n = p.shape[1]
        cells = padded[:, 0:n].copy()
        for i in range(1, 2 * h):
            cells += padded[:, i : i + n]
        ratio = np.float32(_QUIET_CELL_RATIO)
        bias = self._quiet_bias
        nth = min(cells.shape[0] - 1, int(_QUIET_START_QUANTILE * cells.shape[0]))
        mean = np.partition(cells, nth, axis=0)[nth] * self._quiet_start
        quiet = cells <= mean * ratio
        for _ in range(_QUIET_ROUNDS):
            kept = np.maximum(quiet.sum(axis=0), 1).astype(np.float32)
            mean = np.where(quiet, cells, np.float32(0.0)).sum(axis=0) / (kept * bias)
            quiet = cells <= mean * ratio
        sums = np.where(quiet, p, np.float32(0.0)).sum(axis=0, dtype=np.float32)
        counts = quiet.sum(axis=0).astype(np.float32)
        k = _QUIET_POOL_BINS
        sums_pad = np.pad(sums, k, mode="reflect")
        counts_pad = np.pad(counts, k, mode="reflect")
        pooled_sums = sums_pad[0:n].copy()
        pooled_counts = counts_pad[0:n].copy()
        for i in range(1, 2 * k + 1):
            pooled_sums += sums_pad[i : i + n]
            pooled_counts += counts_pad[i : i + n]
        out: FloatArray = (pooled_sums / (np.maximum(pooled_counts, 1.0) * bias)).astype(np.float32)
        return out

    def _next_floor(self, floor: FloatArray | None, e: FloatArray) -> FloatArray:
        """One block's step of the per-bin floor, from the block's estimate ``e``."""
        if floor is None:
            return e.copy()
        if self._from_cache:
            # A floor remembered from an earlier dwell at this tuning keeps a handset that
            # transmits throughout this dwell from being learnt as noise. It is kept whole (a
            # per-bin minimum with the new estimate would sit low and raise false alarms)
            # unless the band as a whole has moved by 3 dB: then the noise itself changed.
            self._from_cache = False
            ratio = float(np.median(e / floor))
            if not 0.5 < ratio < 2.0:
                return e.copy()
        # Within the estimator's own scatter: a plain average (unbiased). Far below: the noise
        # really fell (fall at once). Far above: a burst or a transmitter (rise by at most the
        # slow rate). A running minimum would sit 25 % low on noise.
        ratio_bins = e / floor
        out: FloatArray = np.where(
            ratio_bins < self._fall,
            e,
            np.where(
                ratio_bins <= self._track, floor + self._alpha * (e - floor), floor * self._rise32
            ),
        ).astype(np.float32, copy=False)
        return out

    def _cells(self, p: FloatArray) -> FloatArray:
        h = self.h
        # Half-cells of h adjacent bins; the first add makes the array (no separate copy).
        q = p.reshape(*p.shape[:-1], -1, h)
        half = q[..., 0] + q[..., 1] if h > 1 else q[..., 0].copy()
        for i in range(2, h):
            half += q[..., i]
        cells: FloatArray = half[..., :-1] + half[..., 1:]
        return cells

    def _detect(self, p: FloatArray, floors: FloatArray, per_block: int, out: list[Burst]) -> None:
        """CFAR over cells, then grouping; ``floors`` holds one floor row per ``per_block``."""
        cells = self._cells(p)
        thr = self._cells(floors) * self.factor
        n_cells = cells.shape[1]
        n_rows = floors.shape[0]
        # Hot cells, written between a cold column either side (so every run of hot cells has
        # an on and an off edge in its own frame's row).
        padded = np.zeros((n_rows, cells.shape[0] // n_rows, n_cells + 2), dtype=bool)
        np.greater(cells.reshape(n_rows, -1, n_cells), thr[:, None, :], out=padded[:, :, 1:-1])
        total = float(floors[-1].sum())
        self.stats.noise_floor_dbfs = 10.0 * math.log10(max(total, _TINY))
        base = self._frame
        # Close one-cell holes: a wide burst whose spectrum dips in one cell stays whole. The
        # map is taken as one flat row (a contiguous pass, several times faster than the same
        # on 2-D slices): a cold column has a cold column beside it (the neighbouring frame's
        # pad), so only holes inside a frame's row are filled, exactly as row by row.
        flat = padded.reshape(-1)
        flat[1:-1] |= flat[:-2] & flat[2:]
        # Edges along the whole map at once: a row ends and the next begins cold, so no edge
        # spans two frames, and each row's edges alternate on, off, on... in column order.
        edge = np.flatnonzero(flat[1:] != flat[:-1])
        if edge.size:
            width = n_cells + 2
            on = edge[0::2]
            row = on // width
            start = row * width
            self._group(row + base, on - start, edge[1::2] - start)
        self._close_stale(base + p.shape[0] - 1)
        self._measure_finished(out)

    def _group(
        self,
        frames: npt.NDArray[np.intp],
        c0s: npt.NDArray[np.intp],
        c1s: npt.NDArray[np.intp],
    ) -> None:
        """Link hot segments (frame, first cell, end cell) into bursts; frames ascend.

        Runs of frames holding a single segment that overlaps the previous frame's are
        collapsed into one chain first (vectorised), so Python sees a few chains per burst.
        """
        # Lanes: runs of cells hot somewhere in this batch, with cold cells between them.
        # Segments of different lanes never touch, so each lane is chained on its own and a
        # GSM handset and an LTE handset on the air together do not break each other's chains.
        n_cells = int(c1s.max()) + 2
        used = np.bincount(c0s, minlength=n_cells + 1) - np.bincount(c1s, minlength=n_cells + 1)
        # A cell is inside a lane when any segment covers it (prefix sum of starts and ends);
        # ends count as touching, so the lane keeps going across them.
        cover = np.cumsum(used)[:-1] > 0
        cover[c1s] = True
        # Segments up to merge_cells apart belong to one burst, so they share a lane.
        m = self.params.merge_cells
        if m:
            bridged = cover.copy()
            for k in range(1, m + 1):
                bridged[:-k] |= cover[k:] & np.logical_or.accumulate(cover)[:-k]
            cover = bridged
        starts = cover.copy()
        starts[1:] &= ~cover[:-1]
        lane_of_cell = np.cumsum(starts)  # 1, 2, ... on each lane's cells
        n_lanes = int(lane_of_cell[-1])
        tracks = self._tracks
        # The open tracks by lane. A lane's chains are linked before the next lane's, frames
        # ascending in each, so a lane may only close its own tracks as they go stale: a track
        # that a later lane extends early in this batch must still be open when that lane's
        # turn comes. A track not near any lane is left for the stale check after the batch; a
        # track near two lanes (its span grew across a gap that is cold in this batch) joins
        # them into one lane, chained frame by frame as if the batch had a single lane.
        own: list[list[_Track]] = []
        idle: list[_Track] = []
        if n_lanes > 1:
            lane = lane_of_cell[c0s] - 1
            own = [[] for _ in range(n_lanes)]
            if tracks:
                # A track is near a lane when the lane has a cell within merge_cells of the
                # track's span: only then can a chain inside the lane reach it (the test in the
                # loop below). A few tracks and a few dozen cells: plain lists beat numpy here.
                lane_at = lane_of_cell.tolist()  # a cold cell has the number of the lane below
                covered = cover.tolist()
                top = n_cells - 1
                near: list[tuple[int, int]] = []
                wide = False
                for t in tracks:
                    lo = min(max(t.c0 - m, 0), top)
                    hi = min(t.c1 + m, top)
                    first, last = lane_at[lo] - covered[lo], lane_at[hi] - 1  # from 0
                    near.append((first, last))
                    wide = wide or last > first
                merged = list(range(n_lanes))
                if wide:
                    join = [0] * n_lanes
                    for first, last in near:
                        join[first + 1 : last + 1] = [1] * (last - first)
                    k = -1
                    for i, j in enumerate(join):
                        k += 1 - j
                        merged[i] = k
                    lane = np.array(merged, dtype=np.intp)[lane]
                    n_lanes = k + 1
                    own = [[] for _ in range(n_lanes)]
                for t, (first, last) in zip(tracks, near, strict=True):
                    if first > last:
                        idle.append(t)
                    else:
                        own[merged[first]].append(t)
            order = np.lexsort((frames, lane))
            frames, c0s, c1s, lane = frames[order], c0s[order], c1s[order], lane[order]
        else:
            lane = np.zeros(frames.size, dtype=np.intp)
            own = [tracks]
        n = frames.size
        key = lane * (1 << 40) + frames
        lone = np.ones(n, dtype=bool)
        same = key[1:] == key[:-1]
        lone[1:] &= ~same
        lone[:-1] &= ~same
        cont = np.zeros(n, dtype=bool)
        cont[1:] = (
            lone[1:]
            & lone[:-1]
            & (key[1:] == key[:-1] + 1)
            & (c0s[1:] <= c1s[:-1])
            & (c0s[:-1] <= c1s[1:])
        )
        heads = np.flatnonzero(~cont)
        tails = np.append(heads[1:], n) - 1
        chain_c0 = np.minimum.reduceat(c0s, heads).tolist()
        chain_c1 = np.maximum.reduceat(c1s, heads).tolist()
        firsts = frames[heads].tolist()
        lasts = frames[tails].tolist()
        # Where each lane's chains begin and end in the chain lists.
        chain_lane = lane[heads]
        bounds = [0, *(np.flatnonzero(chain_lane[1:] != chain_lane[:-1]) + 1).tolist(), len(firsts)]
        lane_ids = chain_lane[bounds[:-1]].tolist()
        limit_gap = 1 + self.params.max_gap_frames
        merge = self.params.merge_cells
        max_frames = self._max_frames
        min_span = self._min_frames - 1
        floor_known = self._floor is not None
        finished = self._finished
        seq = self._made
        # The loop runs once per chain (tens of thousands a second with phones on the air), so
        # it is written flat: the stale tracks of the lane are closed inline (what
        # ``_close_stale`` and ``_finish`` do), and a span grows by comparison rather than by
        # calls to min and max.
        for k, i0, i1 in zip(lane_ids, bounds[:-1], bounds[1:], strict=True):
            tracks = own[k]
            cur = -1
            for fa, fb, c0, c1 in zip(
                firsts[i0:i1], lasts[i0:i1], chain_c0[i0:i1], chain_c1[i0:i1], strict=True
            ):
                if fa != cur:
                    cur = fa
                    limit = fa - limit_gap
                    for t in tracks:
                        if t.last < limit:
                            keep = []
                            for u in tracks:
                                if u.last >= limit:
                                    keep.append(u)
                                elif u.last - u.first >= min_span and floor_known:
                                    finished.append(u)
                                else:
                                    self._short_run()
                            tracks = keep
                            break
                near0, near1 = c0 - merge, c1 + merge
                for t in tracks:
                    if near0 <= t.c1 and t.c0 <= near1:  # close enough to be one
                        if c0 < t.c0:  # noqa: PLR1730 - a comparison, not a call, per chain
                            t.c0 = c0
                        if c1 > t.c1:  # noqa: PLR1730 - as above
                            t.c1 = c1
                        # The chain's frames from fa, or from fa + 1 when fa is already the
                        # track's last; a one-frame chain (the common case) is one append.
                        if t.last != fa:
                            if fa == fb:
                                t.frames.append(fa)
                            else:
                                t.frames.extend(range(fa, fb + 1))
                            t.last = fb
                        elif fb > fa:
                            t.frames.extend(range(fa + 1, fb + 1))
                            t.last = fb
                        if t.last - t.first >= max_frames:
                            # A long transmission is reported in pieces, for latency.
                            tracks.remove(t)
                            self._finish(t)
                        break
                else:
                    t = _Track(fa, c0, c1, seq)
                    seq += 1
                    if fb > fa:
                        t.frames.extend(range(fa + 1, fb + 1))
                        t.last = fb
                    tracks.append(t)
            own[k] = tracks
        self._made = seq
        if len(own) == 1 and not idle:
            self._tracks = own[0]
        else:
            # Back in the order they were opened (first frame, then cell within a frame), as one
            # frame-by-frame pass keeps them: a chain near two tracks extends the older one.
            self._tracks = sorted(idle + [t for ts in own for t in ts], key=_Track.opened)

    def _close_stale(self, frame: int) -> None:
        """Close tracks not extended by ``frame`` (allowing the permitted gap)."""
        if not self._tracks:
            return
        limit = frame - self.params.max_gap_frames
        if all(t.last >= limit for t in self._tracks):
            return
        keep: list[_Track] = []
        for t in self._tracks:
            if t.last < limit:
                self._finish(t)
            else:
                keep.append(t)
        self._tracks = keep

    def _finish(self, t: _Track) -> None:
        """Queue a closed track for measurement (see ``_measure_finished``)."""
        n_span = t.last - t.first + 1
        if n_span < self._min_frames or self._floor is None:
            self._short_run()
            return
        self._finished.append(t)

    def _short_run(self) -> None:
        self.stats.extra["short_runs"] = self.stats.extra.get("short_runs", 0) + 1

    def _measure_finished(self, out: list[Burst]) -> None:
        """Measure the tracks closed since the last call, in the order they closed.

        Tracks are measured together once per batch rather than one by one as they close: the
        floor and the remembered spectra do not change within a batch, so waiting for its end
        changes nothing, and numpy calls shared by the batch replace a dozen per burst (at a
        few hundred bursts a second with phones on the air, those per-burst calls were a
        quarter of the detector's time).
        """
        tracks = self._finished
        if not tracks:
            return
        self._finished = []
        for burst in self._measure(tracks):
            if burst is not None:
                self.stats.bursts += 1
                out.append(burst)

    def _measure(self, tracks: list[_Track]) -> list[Burst | None]:
        """Band, centre, power, SNR and sub-frame edges of each finished track.

        Per track only what needs its own rows: two sums over its remembered spectra (no
        copy). Everything after that runs on all the tracks at once, in float64: a padded
        track x bin matrix for the band and centre, and the tracks' frames end to end, cut by
        ``reduceat`` at each track's first frame, for the level and the edges.
        """
        floor = self._floor
        if floor is None or not tracks:
            return [None] * len(tracks)
        n, h = self.n, self.h
        k = len(tracks)
        # The rows of each track: a slice of the latest batch of spectra when its frames run
        # on without a gap inside it (nearly always), else gathered by ``_rows``.
        base, latest = self._history[-1]
        end = base + latest.shape[0]
        views = []
        for t in tracks:
            f0, f1 = t.first, t.last
            if f0 >= base and f1 < end and f1 - f0 + 1 == len(t.frames):
                views.append(latest[f0 - base : f1 - base + 1])
            else:
                views.append(self._rows(t.frames))
        # Rows (one per frame kept), first cell and end cell of each track.
        spans = np.array([(len(t.frames), t.c0, t.c1) for t in tracks], dtype=np.intp)
        counts = spans[:, 0]
        floor64 = floor.astype(np.float64)
        # Summed excess spectrum over the track's frames (noise removed), every bin. The sums
        # go straight into their rows (np.array of a list of row arrays copies them again).
        sums = np.empty((k, n), np.float32)
        for row, v in zip(sums, views, strict=True):
            np.add.reduce(v, 0, out=row)
        excess = sums.astype(np.float64)
        excess -= counts[:, None] * floor64
        bins = self._bins
        lo = spans[:, 1] * h
        hi = np.minimum(n, spans[:, 2] * h + h)
        spanned = np.where((bins >= lo[:, None]) & (bins < hi[:, None]), excess, -np.inf)
        peak = spanned.max(axis=1)
        # The band: first and last bins of the span at or above the cut (the peak is one).
        above = spanned >= (peak * self._band_fraction)[:, None]
        b0 = np.argmax(above, axis=1)
        b1 = n - np.argmax(above[:, ::-1], axis=1)
        in_band = (bins >= b0[:, None]) & (bins < b1[:, None])
        weights = np.where(in_band & (excess > 0.0), excess, 0.0)
        centroid = b0 + (weights * (bins - b0[:, None])).sum(axis=1) / np.maximum(
            weights.sum(axis=1), _TINY
        )
        floor_sums = np.concatenate(([0.0], np.cumsum(floor64)))
        noise = floor_sums[b1] - floor_sums[b0]
        b0_list, b1_list = b0.tolist(), b1.tolist()
        # Excess per frame over the band, every track's frames end to end.
        per_frame = np.concatenate(
            [np.add.reduce(v[:, a:b], 1) for v, a, b in zip(views, b0_list, b1_list, strict=True)]
        ).astype(np.float64)
        tid = np.repeat(np.arange(k), counts)
        per_frame -= noise[tid]
        starts = np.zeros(k, dtype=np.intp)
        np.cumsum(counts[:-1], out=starts[1:])
        total_rows = per_frame.size
        # A strong burst's ramps and the window's skirts light up frames beside it; the burst
        # is where it is within edge_db of its own level (as a handset's power-time mask is).
        # The level is the median of the frames within edge_db of the strongest, not of all
        # the track's frames: against a true floor the faint frames beside a short burst can
        # outnumber the burst's own.
        peak_frame = np.maximum.reduceat(per_frame, starts)
        in_plateau = per_frame >= (peak_frame * self._edge_fraction)[tid]
        n_plateau = np.add.reduceat(in_plateau.astype(np.intp), starts)
        # Ordered by track, then by level relative to the track's strongest frame with the
        # frames outside the plateau first: the plateau's upper median is n_plateau // 2 into
        # the track's tail. Relative levels lie in (0, 1], so a track's keys stay in its slot.
        relative = per_frame / np.where(peak_frame > 0.0, peak_frame, 1.0)[tid]
        order = np.argsort(tid * 4.0 + np.where(in_plateau, relative, -1.0), kind="stable")
        median_at = np.minimum(starts + counts - n_plateau + n_plateau // 2, total_rows - 1)
        level = per_frame[order[median_at]]
        # First and last frames at or above the cut (the level's own frame is one).
        rows = np.arange(total_rows)
        hot = per_frame >= (level * self._edge_fraction)[tid]
        first = np.minimum.reduceat(np.where(hot, rows, total_rows), starts)
        last = np.maximum.reduceat(np.where(hot, rows, -1), starts)
        n_hot = last - first + 1
        inner = (rows > first[tid]) & (rows < last[tid])
        # Every track kept has at least _min_frames (>= 3) hot frames, so the mean of the
        # inner ones is defined; the others are dropped below.
        signal = np.add.reduceat(np.where(inner, per_frame, 0.0), starts) / np.maximum(n_hot - 2, 1)
        # Sub-frame edges: the share of a full frame's energy seen in the first and last frame,
        # mapped through the window's cumulative energy curve.
        safe = np.where(signal > 0.0, signal, 1.0)
        q0 = per_frame[np.minimum(first, total_rows - 1)] / safe
        q1 = per_frame[np.maximum(last, 0)] / safe
        shares = np.concatenate((1.0 - q0, q1))
        # Clamped to [0, 1] in place (np.clip's own checks cost more than the clamp here).
        np.maximum(shares, 0.0, out=shares)
        np.minimum(shares, 1.0, out=shares)
        pos = self._energy_position(shares).tolist()
        keep = (peak > 0.0) & (peak_frame > 0.0) & (n_hot >= self._min_frames) & (signal > 0.0)
        power_db = 10.0 * np.log10(safe)
        snr_db = power_db - 10.0 * np.log10(np.maximum(noise, _TINY))
        freq = self.centre_hz + (centroid + 0.5 - n / 2) * self.bin_hz
        out: list[Burst | None] = []
        t0, rate, centre_hz = self.t0, self.rate, self.centre_hz
        bw = ((b1 - b0) * self.bin_hz).tolist()
        # Positional fields (in ``Burst``'s order): a keyword call costs half as much again,
        # at a few hundred bursts a second.
        for j, (t, ok, i0, i1, pw, snr, f, a, b, width) in enumerate(
            zip(
                tracks,
                keep.tolist(),
                (first - starts).tolist(),
                (last - starts + 1).tolist(),
                power_db.tolist(),
                snr_db.tolist(),
                freq.tolist(),
                b0_list,
                b1_list,
                bw,
                strict=True,
            )
        ):
            if not ok:
                # No excess, or fewer hot frames than a burst has (gaps do not count).
                out.append(None)
                continue
            s0 = (t.frames[i0] + pos[j]) * n
            s1 = (t.frames[i1 - 1] + pos[k + j]) * n
            if s1 <= s0:
                s1 = s0 + n
            count = round(s1 - s0)
            out.append(
                Burst(
                    t0 + s0 / rate,  # t_start
                    t0 + s1 / rate,  # t_end
                    f,  # freq_hz
                    width,  # bandwidth_hz
                    pw,  # power_dbfs
                    snr,  # snr_db
                    centre_hz,
                    round(s0),  # sample_start
                    count if count > 1 else 1,  # sample_count
                    i1 - i0,  # n_frames
                    tuple(excess[j, a:b].tolist()),  # spectrum
                )
            )
        return out

    def _energy_position(self, fraction: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Where in a frame (0..1) the window's cumulative energy reaches each ``fraction``."""
        # The curve rises strictly (every Hann sample here is above zero): a plain inverse.
        out: npt.NDArray[np.float64] = np.interp(fraction, self._energy_curve, self._energy_grid)
        return out

    def floor_dbfs(self) -> float | None:
        """Total noise power of the current floor across the band, dBFS."""
        return self.stats.noise_floor_dbfs


class _Track:
    """A burst being assembled: its cell span and the frames it was seen in."""

    __slots__ = ("c0", "c1", "first", "frames", "last", "seq")

    def __init__(self, frame: int, c0: int, c1: int, seq: int) -> None:
        self.seq = seq  # the detector's count of tracks opened before this one
        self.first = frame
        self.last = frame
        self.c0 = c0
        self.c1 = c1
        self.frames: list[int] = [frame]

    def opened(self) -> tuple[int, int]:
        """Sort key: the frame the track was opened in, then the order of opening."""
        return self.first, self.seq


# -- gain and overload -------------------------------------------------------------------------
# R820T/R828D gain steps in dB (librtlsdr reports these in tenths).
R820T_GAINS_DB = (
    0.0, 0.9, 1.4, 2.7, 3.7, 7.7, 8.7, 12.5, 14.4, 15.7, 16.6, 19.7, 20.7, 22.9, 25.4,
    28.0, 29.7, 32.8, 33.8, 36.4, 37.2, 38.6, 40.2, 42.1, 43.4, 43.9, 44.5, 48.0, 49.6,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GainPolicy:
    """How the gain is steered. ``fixed_db`` None means automatic."""

    fixed_db: float | None = None
    # 8-bit ADC: more than 0.1 % of scalars at the rails means a strong signal is distorted.
    overload_clip_fraction: float = 1e-3
    # Raise the gain only when the noise floor sits this far below full scale (ADC noise wins).
    raise_below_dbfs: float = -40.0
    hold_s: float = 2.0  # do not step again sooner (the floor needs time to settle)


class GainController:
    """Automatic gain: step down on clipping, step up when the band is far below full scale."""

    def __init__(self, policy: GainPolicy, gains_db: tuple[float, ...] = R820T_GAINS_DB) -> None:
        self.policy = policy
        self.gains = tuple(sorted(gains_db)) or (0.0,)
        start = policy.fixed_db if policy.fixed_db is not None else self.gains[len(self.gains) // 2]
        self.index = min(range(len(self.gains)), key=lambda i: abs(self.gains[i] - start))
        self.overloaded = False
        self._last_step = -math.inf

    @property
    def gain_db(self) -> float:
        return self.gains[self.index]

    def update(self, clip_fraction: float, floor_dbfs: float | None, now: float) -> float | None:
        """Feed one chunk's figures; returns a new gain to apply, or None to keep it."""
        self.overloaded = clip_fraction > self.policy.overload_clip_fraction
        if self.policy.fixed_db is not None or now - self._last_step < self.policy.hold_s:
            return None
        if self.overloaded and self.index > 0:
            self.index = max(0, self.index - 3)
        elif (
            not self.overloaded
            and floor_dbfs is not None
            and floor_dbfs < self.policy.raise_below_dbfs
            and self.index < len(self.gains) - 1
        ):
            self.index += 1
        else:
            return None
        self._last_step = now
        return self.gain_db


# -- nearness ----------------------------------------------------------------------------------
def received_dbm(power_dbfs: float, gain_db: float, cal: NearnessCalibration) -> float:
    """Burst power at the antenna in dBm."""
    return power_dbfs - gain_db + cal.dbm_at_0dbfs_0db_gain


def estimate_distance_m(power_dbfs: float, gain_db: float, cal: NearnessCalibration) -> float:
    """Log-distance path-loss guess of the handset's distance in metres."""
    loss = cal.handset_tx_dbm - received_dbm(power_dbfs, gain_db, cal)
    return float(10.0 ** ((loss - cal.path_loss_1m_db) / (10.0 * cal.path_loss_exponent)))
