"""Replay SDR recordings through exactly the DSP the live capture uses.

SigMF (one dwell per capture segment) and rtl_433-style ``.cu8`` are read in pieces and fed to
:class:`BurstDetector` the way a dongle's stream is; bursts come out as ``SdrBurst`` records
with ``mono == ts`` (a recording's own timeline is monotonic by construction).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from scanner.observations import SdrBurst
from scanner.sources.sdr.bands import DEFAULT_REGION, BandPlan
from scanner.sources.sdr.dsp import Burst, BurstDetector
from scanner.sources.sdr.options import DetectorParams
from scanner.sources.sdr.sigmf_io import CHUNK_SAMPLES, Dwell, open_recording

_LOGGER = logging.getLogger(__name__)


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
        band=plan.band_for(burst.freq_hz),
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
            for burst in det.feed(chunk, dwell.datatype, dwell.full_scale):
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
    plan: BandPlan | None = None,
    region: str | None = None,
) -> Iterator[SdrBurst]:
    """The uplink bursts of a SigMF or raw IQ recording (``RecordingError`` if unreadable).

    Bursts outside every uplink band of ``plan`` (else ``region``'s, else the default
    region's: a site's ``[sdr] region`` is passed by whoever read its config) are other
    emitters (a meter, a base station, a radio microphone): counted and logged with their
    frequency, never handed on, because nothing but a handset transmits in an uplink band.
    """
    if plan is None:
        plan = BandPlan.for_region(region or DEFAULT_REGION)
    dwells = open_recording(path)
    for _dwell, burst in detect_dwells(dwells, counters, params):
        counters["bursts"] += 1
        record = to_record(burst, plan)
        if record.band is None:
            counters["other_emitter"] += 1
            _LOGGER.debug(
                "other emitter at %.4f MHz (%s, %.0f us): outside every uplink band of the plan",
                burst.freq_hz / 1e6,
                burst.shape,
                burst.duration_s * 1e6,
            )
            continue
        yield record
