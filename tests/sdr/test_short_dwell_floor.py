"""Short dwells: a burst that fills much of a 1-4 ms capture segment must not be learnt as noise.

A triggered recording or a short dwell after a retune has no quiet stretch of its own long
enough for the block floor, so the floor is estimated from the few frames there are. These tests
put uplink bursts of known in-channel SNR into such segments (written with the SigMF writer, one
capture segment each) and check the SNR that ``read_bursts`` reports.

Tolerance: 2.5 dB at 10 dB SNR, 2 dB above. The floor of a segment comes from the quiet frames
only (at 60 % fill of a 1 ms segment, 7 frames), which scatters it by about 0.5 dB across a
burst's band; the burst's own level is measured over as few as 10 frames (about 1 dB of scatter
at 10 dB SNR, where noise is a tenth of what is measured); and the band the detector measures
(-10 dB from the peak) is not exactly the nominal channel (GSM's GMSK skirts: a few tenths of a
dB). A floor inflated by the burst, the fault these tests guard against, is off by 10 to 35 dB.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from scanner.observations import SdrBurst
from scanner.sources.sdr import synth
from scanner.sources.sdr.replay import read_bursts
from scanner.sources.sdr.samples import to_complex64
from scanner.sources.sdr.sigmf_io import Segment, open_recording, write_sigmf

RATE = 2.4e6
NOISE_DBFS = -40.0
T0 = 1_764_000_000.0
OFFSET_HZ = 300e3
N_SEGMENTS = 4
LTE_PRB = 6
GSM_CAPTURE = "sdr/gsm-uplink/gsm-uplink-4bursts.sigmf-meta"


def _tolerance_db(snr_db: float) -> float:
    return 2.5 if snr_db <= 10.0 else 2.0


def _segments(
    rng: np.random.Generator,
    kind: str,
    segment_s: float,
    burst_s: float,
    snr_db: float,
    same_centre: bool,
) -> list[Segment]:
    """``N_SEGMENTS`` segments, each holding one burst of ``burst_s`` at ``snr_db``."""
    width = synth.GSM_BANDWIDTH_HZ if kind == "gsm" else LTE_PRB * synth.LTE_PRB_HZ
    power = synth.power_dbfs_for(snr_db, NOISE_DBFS, width, RATE)
    n = round(segment_s * RATE)
    out = []
    for k in range(N_SEGMENTS):
        # The burst sits anywhere that keeps it whole inside the segment.
        start = float(rng.uniform(0.05, 0.95)) * (segment_s - burst_s)
        spec = synth.BurstSpec(kind, start, burst_s, OFFSET_HZ, power, LTE_PRB)
        iq = synth.render(rng, RATE, n, NOISE_DBFS, [spec])
        # Distinct tunings: each segment's floor must come from that segment alone.
        centre = 890e6 if same_centre else 890e6 + 5e6 * k
        out.append(Segment(T0 + 0.5 * k, centre, RATE, iq))
    return out


def _bursts_per_segment(path: Path) -> list[list[float]]:
    """SNR of each burst, grouped by the segment (half-second slot) it came from."""
    found: list[list[float]] = [[] for _ in range(N_SEGMENTS)]
    for b in read_bursts(path, Counter()):
        found[int((b.ts - T0) / 0.5 + 0.25)].append(b.snr_db)
    return found


CASES = [
    # kind, segment (s), burst (s): fill from 27 % to 60 %
    ("lte", 1e-3, 0.6e-3),
    ("lte", 2e-3, 1e-3),
    ("lte", 2e-3, 0.5e-3),
    ("lte", 4e-3, 2.4e-3),
    ("lte", 4e-3, 1e-3),
    ("gsm", 1e-3, synth.GSM_BURST_S),
    ("gsm", 2e-3, synth.GSM_BURST_S),
]


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 40.0])
@pytest.mark.parametrize(("kind", "segment_s", "burst_s"), CASES)
def test_snr_of_a_burst_filling_a_short_segment(
    tmp_path: Path, kind: str, segment_s: float, burst_s: float, snr_db: float
) -> None:
    seed = int(snr_db * 1000 + segment_s * 1e4 + burst_s * 1e5) + (kind == "gsm")
    rng = np.random.default_rng(seed)
    write_sigmf(tmp_path / "s", _segments(rng, kind, segment_s, burst_s, snr_db, False))
    per_segment = _bursts_per_segment(tmp_path / "s.sigmf-meta")
    fill = burst_s / segment_s
    print(f"{kind} {segment_s * 1e3:.0f} ms fill {fill:.0%} at {snr_db} dB (seed {seed}):")
    print(f"  reported {per_segment}")
    tol = _tolerance_db(snr_db)
    for snrs in per_segment:
        # One burst, not a burst chopped into pieces by a floor sitting at its own level.
        assert len(snrs) == 1, per_segment
        assert abs(snrs[0] - snr_db) <= tol, per_segment


def test_floor_carries_to_a_later_dwell_on_the_same_tuning(tmp_path: Path) -> None:
    """A segment almost filled by a burst is measured against the floor of an earlier dwell."""
    rng = np.random.default_rng(41)
    power = synth.power_dbfs_for(30.0, NOISE_DBFS, LTE_PRB * synth.LTE_PRB_HZ, RATE)
    n = round(2e-3 * RATE)
    quiet = synth.render(rng, RATE, n, NOISE_DBFS, [])
    full = synth.BurstSpec("lte", 0.05e-3, 1.9e-3, OFFSET_HZ, power, LTE_PRB)
    busy = [synth.render(rng, RATE, n, NOISE_DBFS, [full]) for _ in range(2)]
    segs = [
        Segment(T0, 890e6, RATE, busy[0]),  # nothing known yet at 890 MHz
        Segment(T0 + 0.5, 890e6, RATE, quiet),
        Segment(T0 + 1.0, 890e6, RATE, busy[1]),  # the same channel, later in the file
    ]
    write_sigmf(tmp_path / "c", segs)
    late = [b for b in read_bursts(tmp_path / "c.sigmf-meta", Counter()) if b.ts > T0 + 0.9]
    assert len(late) == 1
    assert abs(late[0].snr_db - 30.0) <= _tolerance_db(30.0), late


def test_noise_only_short_segments_stay_quiet(tmp_path: Path) -> None:
    """False alarms on noise-only short dwells: none expected at pfa 1e-4 per cell and frame."""
    rng = np.random.default_rng(77)
    segs = []
    t = T0
    for length_s in (1e-3, 2e-3, 4e-3):
        for k in range(40):
            iq = synth.render(rng, RATE, round(length_s * RATE), NOISE_DBFS, [])
            segs.append(Segment(t, 890e6 + 0.2e6 * (k % 4), RATE, iq))
            t += 0.1
    write_sigmf(tmp_path / "n", segs)
    counters: Counter[str] = Counter()
    bursts = list(read_bursts(tmp_path / "n.sigmf-meta", counters))
    assert counters["dwells"] == len(segs)
    # 280 ms of noise in 120 dwells, about 5000 frames of 15 cells: the long-dwell rate
    # (under one per 10 s) allows none; one is tolerated as chance.
    assert len(bursts) <= 1, [(b.ts - T0, b.snr_db) for b in bursts]


def _whole_and_split(
    shared_data: Path, tmp_path: Path, same_centre: bool
) -> tuple[list[SdrBurst], list[SdrBurst]]:
    path = shared_data / GSM_CAPTURE
    if not path.exists():
        pytest.skip(f"{path} not present")
    whole = list(read_bursts(path, Counter()))
    (dwell,) = open_recording(path)
    iq = to_complex64(dwell.raw, dwell.datatype)
    # Four dwells of about one 2.31 ms burst period each: every burst fills about a quarter
    # of its dwell. Cuts fall on the detector's 128-sample frame grid, so any change in the
    # bursts' timing comes from the floor, not from where the frames fall.
    cuts = [0, 40 * 128, 78 * 128, 118 * 128, iq.size]
    segs = [
        Segment(
            T0 + cuts[i] / dwell.rate,
            dwell.centre_hz if same_centre else dwell.centre_hz + 3e6 * i,
            dwell.rate,
            iq[cuts[i] : cuts[i + 1]],
        )
        for i in range(4)
    ]
    write_sigmf(tmp_path / "g", segs)
    split = list(read_bursts(tmp_path / "g.sigmf-meta", Counter()))
    return whole, split


@pytest.mark.parametrize("same_centre", [True, False])
def test_real_gsm_bursts_keep_their_timing_in_short_dwells(
    shared_data: Path, tmp_path: Path, same_centre: bool
) -> None:
    whole, split = _whole_and_split(shared_data, tmp_path, same_centre)
    assert len(whole) == 4
    assert len(split) == 4, [(b.ts - T0, b.snr_db) for b in split]
    for w, s in zip(whole, split, strict=True):
        assert s.ts - T0 == pytest.approx(w.ts, abs=10e-6)
        assert s.t_end - s.ts == pytest.approx(w.t_end - w.ts, abs=20e-6)
        assert s.snr_db == pytest.approx(w.snr_db, abs=2.0)
    spacing = np.diff([b.ts for b in split])
    assert np.all(np.abs(spacing - 2.31e-3) < 0.03e-3), spacing
