"""The burst detector against a plain reference: the same rules written frame by frame.

The detector is vectorised over whole reads (and measures the tracks that close in a read
together); the reference below walks one frame, one bin, one segment and one track at a time in
float64, the way the rules are stated in the detector's module docstring. Both must find the
same bursts and measure them alike within float32 rounding, on synthesised handsets and on the
real GSM uplink capture, with every FFT library installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from scanner.sources.sdr import synth
from scanner.sources.sdr.dsp import FFT_BACKENDS, Burst, BurstDetector, _load_fft
from scanner.sources.sdr.options import SUB_FRAMES, DetectorParams
from scanner.sources.sdr.samples import to_complex64
from scanner.sources.sdr.sigmf_io import open_recording

F64 = npt.NDArray[np.float64]
RATE = 2.4e6


def _backends() -> list[str]:
    out = []
    for name in FFT_BACKENDS:
        try:
            _load_fft(name)
        except ImportError:
            continue
        out.append(name)
    return out


@dataclass
class _Track:
    first: int
    c0: int
    c1: int
    frames: list[int] = field(default_factory=list)

    @property
    def last(self) -> int:
        return self.frames[-1]


@dataclass(frozen=True)
class _Ref:
    t_start: float
    t_end: float
    freq_hz: float
    bandwidth_hz: float
    power_dbfs: float
    snr_db: float
    n_frames: int
    spectrum: tuple[float, ...]


class _Plain:
    """The detector's rules, one frame at a time, float64. Constants come from the detector;
    nothing it computes does."""

    def __init__(self, det: BurstDetector, rate: float, centre_hz: float) -> None:
        p: DetectorParams = det.params
        self.p = p
        self.rate = rate
        self.centre = centre_hz
        self.n = p.fft_size
        self.h = p.half_channel_bins
        k = np.arange(self.n)
        self.hann = 0.5 - 0.5 * np.cos(2 * np.pi * (k + 0.5) / self.n)
        frame_s = self.n / rate
        self.min_frames = max(3, math.ceil(p.min_duration_s / frame_s))
        rise_db = p.floor_rise_db_per_s * p.block_frames * frame_s
        self.rise = 10.0 ** (rise_db / 10)
        self.fall = 10.0 ** (-p.floor_fall_db / 10)
        self.track = 10.0 ** (p.floor_track_db / 10)
        self.median_bias = (1.0 - 1.0 / (9 * SUB_FRAMES)) ** 3
        self.factor = float(det.factor)
        self.quiet_start = float(det._quiet_start)
        self.quiet_bias = float(det._quiet_bias)
        energy = np.cumsum(self.hann**2)
        self.curve = np.concatenate(([0.0], energy / energy[-1]))
        self.floor: F64 | None = None
        self.tracks: list[_Track] = []
        self.closed: list[_Track] = []
        self.found: list[_Ref] = []
        self.spectra: list[F64] = []

    # -- spectra and floor ---------------------------------------------------------------
    def spectrum(self, x: npt.NDArray[np.complex128]) -> F64:
        spec = np.fft.fftshift(np.fft.fft(x * self.hann))
        p: F64 = np.abs(spec) ** 2 / (self.n * np.sum(self.hann**2))
        if self.p.interpolate_dc:
            c = self.n // 2
            p[c - 1 : c + 2] = 0.5 * (p[c - 2] + p[c + 2])
        return p

    def quiet_floor(self, pp: F64) -> F64:
        h, n = self.h, self.n
        padded = np.pad(pp, ((0, 0), (h, h)), mode="reflect")
        cells = np.array([[row[k : k + 2 * h].sum() for k in range(n)] for row in padded])
        nth = min(len(pp) - 1, int(0.2 * len(pp)))
        out_sum = np.zeros(n)
        out_cnt = np.zeros(n)
        for k in range(n):
            col = cells[:, k]
            mean = sorted(col)[nth] * self.quiet_start
            quiet = col <= mean * 2.5
            for _ in range(6):
                mean = col[quiet].sum() / (max(int(quiet.sum()), 1) * self.quiet_bias)
                quiet = col <= mean * 2.5
            out_sum[k] = pp[quiet, k].sum()
            out_cnt[k] = quiet.sum()
        floor = np.zeros(n)
        for k in range(n):
            near = [abs(k + d) if k + d < n else 2 * (n - 1) - (k + d) for d in (-1, 0, 1)]
            floor[k] = sum(out_sum[j] for j in near) / (
                max(sum(out_cnt[j] for j in near), 1.0) * self.quiet_bias
            )
        return floor

    def block_estimate(self, block: F64) -> F64:
        subs = block.reshape(-1, SUB_FRAMES, self.n).mean(axis=1)
        out: F64 = np.median(subs, axis=0) / self.median_bias
        return out

    def step_floor(self, e: F64) -> None:
        if self.floor is None:
            self.floor = e.copy()
            return
        new = np.empty_like(e)
        for k in range(self.n):
            f, r = self.floor[k], e[k] / self.floor[k]
            if r < self.fall:
                new[k] = e[k]
            elif r <= self.track:
                new[k] = f + self.p.floor_alpha * (e[k] - f)
            else:
                new[k] = f * self.rise
        self.floor = new

    # -- CFAR and segments ---------------------------------------------------------------
    def cells(self, row: F64) -> list[float]:
        h = self.h
        halves = [row[j * h : (j + 1) * h].sum() for j in range(self.n // h)]
        return [halves[j] + halves[j + 1] for j in range(len(halves) - 1)]

    def segments(self, row: F64, floor: F64) -> list[tuple[int, int]]:
        thr = [c * self.factor for c in self.cells(floor)]
        hot = [c > t for c, t in zip(self.cells(row), thr, strict=True)]
        filled = [
            v or (0 < j < len(hot) - 1 and hot[j - 1] and hot[j + 1]) for j, v in enumerate(hot)
        ]
        out, j = [], 0
        while j < len(filled):
            if filled[j]:
                start = j
                while j < len(filled) and filled[j]:
                    j += 1
                out.append((start, j))
            else:
                j += 1
        return out

    # -- tracks --------------------------------------------------------------------------
    def close_before(self, limit: int) -> None:
        for t in [t for t in self.tracks if t.last < limit]:
            self.tracks.remove(t)
            if t.last - t.first + 1 >= self.min_frames:
                self.closed.append(t)

    def add_segment(self, frame: int, c0: int, c1: int) -> None:
        self.close_before(frame - 1 - self.p.max_gap_frames)
        m = self.p.merge_cells
        for t in self.tracks:
            if c0 <= t.c1 + m and t.c0 <= c1 + m:
                t.c0, t.c1 = min(t.c0, c0), max(t.c1, c1)
                if t.last != frame:
                    t.frames.append(frame)
                return
        self.tracks.append(_Track(frame, c0, c1, [frame]))

    def detect(self, rows: list[F64], floors: list[F64], base: int) -> None:
        for i, (row, floor) in enumerate(zip(rows, floors, strict=True)):
            for c0, c1 in self.segments(row, floor):
                self.add_segment(base + i, c0, c1)
        self.close_before(base + len(rows) - 1 - self.p.max_gap_frames)
        self.measure_closed()

    # -- measurement ---------------------------------------------------------------------
    def measure_closed(self) -> None:
        for t in self.closed:
            burst = self.measure(t)
            if burst is not None:
                self.found.append(burst)
        self.closed = []

    def measure(self, t: _Track) -> _Ref | None:
        assert self.floor is not None
        n, h = self.n, self.h
        lo, hi = t.c0 * h, min(n, t.c1 * h + h)
        seg = np.array([self.spectra[f][lo:hi] - self.floor[lo:hi] for f in t.frames])
        excess = seg.sum(axis=0)
        peak = excess.max()
        if peak <= 0:
            return None
        above = np.flatnonzero(excess >= peak * 10 ** (-self.p.band_threshold_db / 10))
        r0, r1 = int(above[0]), int(above[-1]) + 1
        weights = np.clip(excess[r0:r1], 0.0, None)
        centroid = lo + r0 + float(np.dot(np.arange(r1 - r0), weights) / weights.sum())
        per_frame = seg[:, r0:r1].sum(axis=1)
        edge = 10 ** (-self.p.edge_db / 10)
        if per_frame.max() <= 0:
            return None
        plateau = sorted(v for v in per_frame if v >= per_frame.max() * edge)
        level = plateau[len(plateau) // 2]
        hot = np.flatnonzero(per_frame >= level * edge)
        i0, i1 = int(hot[0]), int(hot[-1]) + 1
        if i1 - i0 < self.min_frames:
            return None
        inner = per_frame[i0:i1]
        signal = float(inner[1:-1].mean())
        if signal <= 0:
            return None
        noise = float(self.floor[lo + r0 : lo + r1].sum())
        q0 = min(max(inner[0] / signal, 0.0), 1.0)
        q1 = min(max(inner[-1] / signal, 0.0), 1.0)
        grid = np.linspace(0.0, 1.0, n + 1)
        s0 = (t.frames[i0] + float(np.interp(1.0 - q0, self.curve, grid))) * n
        s1 = (t.frames[i1 - 1] + float(np.interp(q1, self.curve, grid))) * n
        if s1 <= s0:
            s1 = s0 + n
        bin_hz = self.rate / n
        return _Ref(
            t_start=s0 / self.rate,
            t_end=s1 / self.rate,
            freq_hz=self.centre + (centroid + 0.5 - n / 2) * bin_hz,
            bandwidth_hz=(r1 - r0) * bin_hz,
            power_dbfs=10 * math.log10(signal),
            snr_db=10 * math.log10(signal / noise),
            n_frames=i1 - i0,
            spectrum=tuple(excess[r0:r1].tolist()),
        )

    # -- a dwell -------------------------------------------------------------------------
    def run(self, iq: npt.NDArray[np.complex128], read: int) -> list[_Ref]:
        """``iq`` fed in reads of ``read`` samples, as the detector is fed below."""
        n, per_block = self.n, self.p.block_frames
        done = 0  # frames processed
        have = 0  # samples read so far
        while have < iq.size:
            have = min(iq.size, have + read)
            blocks = (have // n - done) // per_block
            if not blocks:
                continue
            rows = [
                self.spectrum(iq[(done + i) * n : (done + i + 1) * n])
                for i in range(blocks * per_block)
            ]
            self.spectra.extend(rows)
            floors = []
            for b in range(blocks):
                block = np.array(rows[b * per_block : (b + 1) * per_block])
                first = done == 0 and b == 0
                self.step_floor(self.quiet_floor(block) if first else self.block_estimate(block))
                assert self.floor is not None
                floors += [self.floor] * per_block
            self.detect(rows, floors, done)
            done += blocks * per_block
        rest = iq.size // n - done
        if rest:
            rows = [self.spectrum(iq[(done + i) * n : (done + i + 1) * n]) for i in range(rest)]
            self.spectra.extend(rows)
            if self.floor is None or rest >= SUB_FRAMES:
                self.step_floor(self.quiet_floor(np.array(rows)))
            assert self.floor is not None
            self.detect(rows, [self.floor] * rest, done)
        self.closed += [t for t in self.tracks if t.last - t.first + 1 >= self.min_frames]
        self.tracks = []
        self.measure_closed()
        return self.found


def _compare(got: list[Burst], want: list[_Ref], bin_hz: float) -> None:
    assert len(got) == len(want)
    got = sorted(got, key=lambda b: (b.t_start, b.freq_hz))
    want = sorted(want, key=lambda b: (b.t_start, b.freq_hz))
    for g, w in zip(got, want, strict=True):
        assert g.n_frames == w.n_frames
        assert g.bandwidth_hz == pytest.approx(w.bandwidth_hz, abs=1e-6)
        # float32 spectra against float64: edges within a fortieth of a sample; the centroid
        # within 2e-4 of a bin (a strong real burst's weak edge bins carry float32 rounding of
        # its peak: 1.1 Hz of 16.9 kHz bins on the GSM capture).
        assert g.t_start == pytest.approx(w.t_start, abs=1e-8)
        assert g.t_end == pytest.approx(w.t_end, abs=1e-8)
        assert g.freq_hz == pytest.approx(w.freq_hz, abs=2e-4 * bin_hz)
        assert g.power_dbfs == pytest.approx(w.power_dbfs, abs=1e-3)
        assert g.snr_db == pytest.approx(w.snr_db, abs=1e-3)
        assert len(g.spectrum) == len(w.spectrum)
        assert np.allclose(g.spectrum, w.spectrum, rtol=0, atol=1e-4 * max(w.spectrum))


def _detector_run(
    det: BurstDetector, raw: npt.NDArray[np.generic], dt: str, read: int
) -> list[Burst]:
    det.begin_dwell(890e6, 0.0)
    scalars = 2 * read
    out: list[Burst] = []
    for i in range(0, raw.size, scalars):
        out += det.feed(raw[i : i + scalars], dt)
    return out + det.end_dwell()


@pytest.mark.parametrize("backend", _backends())
def test_synthesised_handsets_match_the_plain_reference(backend: str) -> None:
    rng = np.random.default_rng(11)
    seconds = 0.12
    bursts = synth.gsm_schedule(0.0, seconds, 450e3, -30.0) + synth.lte_schedule(
        rng, 0.0, seconds, -600e3, -34.0, duty=0.3, n_prb=6
    )
    # A weak GSM handset near the threshold too, where rounding could tip a frame.
    bursts += synth.gsm_schedule(0.002, seconds, 900e3, -52.0, timeslot=3)
    raw = synth.synth_cu8(rng, RATE, int(seconds * RATE), -38.0, bursts)
    read = 3 * 128 * 128 + 1000  # reads that end mid-block and mid-frame
    det = BurstDetector(RATE, fft_backend=backend)
    got = _detector_run(det, raw, "cu8", read)
    iq = (raw[0::2].astype(np.float64) - 127.5) / 127.5 + 1j * (raw[1::2] - 127.5) / 127.5
    want = _Plain(det, RATE, 890e6).run(iq, read)
    assert len(want) > 40  # both handsets' bursts, not an empty comparison
    _compare(got, want, RATE / 128)


@pytest.mark.parametrize("backend", _backends())
def test_real_gsm_uplink_matches_the_plain_reference(backend: str, shared_data: Path) -> None:
    path = shared_data / "sdr/gsm-uplink/gsm-uplink-4bursts.sigmf-meta"
    if not path.exists():
        pytest.skip(f"{path} not present")
    (dwell,) = open_recording(path)
    det = BurstDetector(dwell.rate, fft_backend=backend)
    det.begin_dwell(890e6, 0.0)
    got = det.feed(dwell.raw, dwell.datatype) + det.end_dwell()
    iq = to_complex64(dwell.raw, dwell.datatype).astype(np.complex128)
    want = _Plain(det, dwell.rate, 890e6).run(iq, iq.size)
    assert len(want) == 4
    _compare(got, want, dwell.rate / 128)


def test_fft_backends_agree_and_an_unknown_one_is_refused() -> None:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((64, 128)) + 1j * rng.standard_normal((64, 128))).astype(np.complex64)
    want = np.fft.fft(x.astype(np.complex128), axis=1)
    for name in _backends():
        got = _load_fft(name)[1](x.copy())
        assert np.abs(got - want).max() < 1e-5 * np.abs(want).max(), name
        # A misaligned, non-contiguous input is transformed just the same.
        wide = np.zeros((64, 129), np.complex64)
        wide[:, 1:] = x
        got = _load_fft(name)[1](wide[:, 1:])
        assert np.abs(got - want).max() < 1e-5 * np.abs(want).max(), name
        assert BurstDetector(RATE, fft_backend=name).fft_backend == name
    with pytest.raises(ValueError, match="fft backend"):
        BurstDetector(RATE, fft_backend="fftw4")


def test_bursts_do_not_depend_on_where_the_reads_end() -> None:
    """A GSM burst that straddles a read boundary while an LTE handset below it in frequency
    transmits through the next read comes out whole, as the reference finds it, at every read
    size: the LTE grants' lane is chained first and must not close the GSM burst's track."""
    rng = np.random.default_rng(5)
    seconds = 0.045
    boundary_s = 65536 / RATE  # a 2^16-sample read ends here (so does a 2^14 one)
    gsm = synth.gsm_schedule(0.0035, 0.04, 450e3, -32.0)
    # One more GSM burst with its middle on the boundary (its own TDMA frame is shifted: the
    # point is the cut, not the schedule), clear of the scheduled ones either side.
    straddle = boundary_s - synth.GSM_BURST_S / 2
    gsm = [b for b in gsm if abs(b.start_s - straddle) > 2 * synth.GSM_BURST_S]
    gsm.append(synth.BurstSpec("gsm", straddle, synth.GSM_BURST_S, 450e3, -32.0))
    # LTE grants on every subframe from just after the boundary to the end of the stream.
    lte = [
        synth.BurstSpec("lte", t, synth.LTE_SUBFRAME_S, -600e3, -32.0, 6)
        for t in np.arange(boundary_s + 0.001, seconds, synth.LTE_SUBFRAME_S).tolist()
    ]
    raw = synth.synth_cu8(rng, RATE, int(seconds * RATE), -38.0, gsm + lte)
    iq = (raw[0::2].astype(np.float64) - 127.5) / 127.5 + 1j * (raw[1::2] - 127.5) / 127.5
    frame_s = 128 / RATE
    found: dict[int, list[Burst]] = {}
    for read in (1 << 14, 1 << 16, 1 << 18):
        det = BurstDetector(RATE)
        got = _detector_run(det, raw, "cu8", read)
        _compare(got, _Plain(det, RATE, 890e6).run(iq, read), RATE / 128)
        found[read] = sorted(got, key=lambda b: (b.t_start, b.freq_hz))
        # The straddling burst is one burst of a timeslot's length, not two pieces.
        (whole,) = [b for b in got if b.freq_hz > 890e6 and abs(b.t_start - straddle) < 2e-4]
        assert whole.duration_s == pytest.approx(synth.GSM_BURST_S, abs=frame_s)
    # The same bursts at every read size: the same frames, so the same count and lengths. Band,
    # level and sub-frame edges are measured against the floor as it stands when the read in
    # which a burst closes ends, which differs between read sizes by the noise estimator's own
    # scatter (a few per cent of the noise): edges agree within the frame they refine, centres
    # and -10 dB band edges within a bin, levels of bursts 6 dB over the noise within 0.5 dB.
    small, *others = found.values()
    # Eight scheduled GSM bursts (the ninth gave way to the straddling one), the straddling
    # one and the LTE grants (one long burst).
    assert len(small) == 10
    for other in others:
        assert [b.n_frames for b in other] == [b.n_frames for b in small]
        for a, b in zip(small, other, strict=True):
            assert b.t_start == pytest.approx(a.t_start, abs=frame_s)
            assert b.t_end == pytest.approx(a.t_end, abs=frame_s)
            assert b.freq_hz == pytest.approx(a.freq_hz, abs=RATE / 128)
            assert b.bandwidth_hz == pytest.approx(a.bandwidth_hz, abs=RATE / 128 + 1e-6)
            assert b.power_dbfs == pytest.approx(a.power_dbfs, abs=0.5)


def test_a_track_across_two_lanes_and_a_track_near_none_follow_the_reference() -> None:
    """At a read boundary a wide burst ends as two narrow ones start inside its span, each in a
    lane of its own in the next read (the wide track is near both, so both lanes are chained
    together frame by frame), while a third burst ends at the boundary with nothing after it
    (its track is near no lane of the next read and closes after it). Every read size finds
    what the frame-by-frame reference finds."""
    rng = np.random.default_rng(8)
    seconds = 0.04
    boundary_s = 65536 / RATE
    bursts = [
        synth.BurstSpec("lte", boundary_s - 0.002, 0.002, 50e3, -30.0, 6),
        synth.BurstSpec("gsm", boundary_s, synth.GSM_BURST_S, -400e3, -30.0),
        synth.BurstSpec("gsm", boundary_s, synth.GSM_BURST_S, 400e3, -30.0),
        synth.BurstSpec("gsm", boundary_s - synth.GSM_BURST_S, synth.GSM_BURST_S, 950e3, -30.0),
        *synth.gsm_schedule(0.004, 0.015, -700e3, -32.0),
    ]
    raw = synth.synth_cu8(rng, RATE, int(seconds * RATE), -38.0, bursts)
    iq = (raw[0::2].astype(np.float64) - 127.5) / 127.5 + 1j * (raw[1::2] - 127.5) / 127.5
    counts = set()
    for read in (1 << 14, 1 << 16, 1 << 18):
        det = BurstDetector(RATE)
        got = _detector_run(det, raw, "cu8", read)
        _compare(got, _Plain(det, RATE, 890e6).run(iq, read), RATE / 128)
        counts.add(tuple(sorted((round(b.t_start, 4), b.n_frames) for b in got)))
    assert len(counts) == 1
