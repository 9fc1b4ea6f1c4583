"""Replay SDR recordings through exactly the DSP the live capture uses.

SigMF (one dwell per capture segment) and rtl_433-style ``.cu8`` are read in pieces and fed to
:class:`BurstDetector` the way a dongle's stream is; bursts come out as ``SdrBurst`` records
with ``mono == ts`` (a recording's own timeline is monotonic by construction).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from scanner.observations import SdrBurst
from scanner.sources.sdr.bands import ALL, BandPlan
from scanner.sources.sdr.dsp import Burst, BurstDetector, DetectorParams
from scanner.sources.sdr.sigmf_io import CHUNK_SAMPLES, Dwell, open_recording


def to_record(burst: Burst, plan: BandPlan, gain_db: float | None = None) -> SdrBurst:
    """A detector burst as the observation the core consumes."""
    return SdrBurst(
        ts=burst.t_start,
        mono=burst.t_start,
        t_end=burst.t_end,
        freq_mhz=round(burst.freq_hz / 1e6, 4),
        bandwidth_khz=round(burst.bandwidth_hz / 1e3, 1),
        power_dbfs=round(burst.power_dbfs, 2),
        snr_db=round(burst.snr_db, 2),
        band=plan.band_for(burst.freq_hz, burst.shape),
        gain_db=gain_db,
    )


def detect_dwells(
    dwells: list[Dwell],
    counters: Counter[str],
    params: DetectorParams | None = None,
) -> Iterator[tuple[Dwell, Burst]]:
    """Every burst of every dwell, in dwell order, with the dwell it came from."""
    detectors: dict[float, BurstDetector] = {}
    for dwell in dwells:
        det = detectors.get(dwell.rate)
        if det is None:
            det = detectors[dwell.rate] = BurstDetector(dwell.rate, params)
        det.begin_dwell(dwell.centre_hz, dwell.t0)
        counters["dwells"] += 1
        for chunk in dwell.chunks(CHUNK_SAMPLES):
            for burst in det.feed(chunk, dwell.datatype):
                yield dwell, burst
        for burst in det.end_dwell():
            yield dwell, burst
        counters["samples"] += dwell.n_samples
    for det in detectors.values():
        counters["clipped_scalars"] += det.stats.clipped


def read_bursts(
    path: str | Path,
    counters: Counter[str],
    params: DetectorParams | None = None,
    plan: BandPlan = ALL,
) -> Iterator[SdrBurst]:
    """The bursts of a SigMF or ``.cu8`` recording (``RecordingError`` if unreadable)."""
    dwells = open_recording(path)
    for _dwell, burst in detect_dwells(dwells, counters, params):
        counters["bursts"] += 1
        yield to_record(burst, plan)
